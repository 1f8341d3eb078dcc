/* SPDX-License-Identifier: MIT */
/* be_tx_run: commit, rollback on any error, savepoints, retries on busy.
 * In PostgreSQL mode (meson's "tx-postgres", svc_testutil.h) the fault
 * driver wraps the PostgreSQL driver on a fresh schema of the
 * BE_TEST_PG_DSN server; tests of SQLite itself (its busy timeout, an
 * in-memory database) are skipped there with their reason. */
#include "svc_testutil.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "storage.h"

static char *tmpdir;
static char dbpath[1024];
static be_driver *fdrv;
static be_fault *flt;

static void setup(void) {
  tmpdir = tu_tempdir();
  if (svc_on_pg()) snprintf(dbpath, sizeof dbpath, "%s", svc_pg_fresh_dsn());
  else snprintf(dbpath, sizeof dbpath, "%s/tx.db", tmpdir);
  const be_driver *inner = svc_on_pg() ? be_postgres_driver() : be_sqlite_driver();
  ck_assert_int_eq(be_fault_driver_new(&fdrv, &flt, inner, NULL), BE_OK);
}
static void teardown(void) {
  be_fault_free(flt);
  tu_rmdir(tmpdir);
}

static be_conn *open_conn(const be_driver *d) {
  be_conn *c = NULL;
  ck_assert_int_eq(be_conn_open(&c, d ? d : fdrv, dbpath, NULL), BE_OK);
  ck_assert_int_eq(be_conn_exec(c, "CREATE TABLE IF NOT EXISTS t(x INTEGER UNIQUE)", NULL), BE_OK);
  return c;
}

static int64_t count_rows(be_conn *c) {
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT COUNT(*) FROM t", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  int64_t n = be_stmt_column_int64(s, 0);
  be_stmt_finalize(s);
  return n;
}

static int has_row(be_conn *c, int64_t x) {
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT 1 FROM t WHERE x = ?", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_int64(s, 1, x, NULL), BE_OK);
  int rc = be_stmt_step(s, NULL);
  be_stmt_finalize(s);
  return rc == BE_ROW;
}

static int insert(be_conn *c, int64_t x, be_error **err) {
  be_stmt *s = NULL;
  int rc = be_conn_prepare(&s, c, "INSERT INTO t VALUES (?)", err);
  if (rc) return rc;
  rc = be_stmt_bind_int64(s, 1, x, err);
  if (rc == BE_OK) rc = be_stmt_step(s, err);
  be_stmt_finalize(s);
  return rc == BE_DONE ? BE_OK : rc;
}

/* ---- callbacks ---- */

typedef struct job {
  int runs;
  int64_t value;
  int fail_code; /* return this after inserting, 0 = succeed */
  int set_error; /* set *err when failing */
  be_tx_fn inner;
  struct job *inner_job;
  int64_t after_inner; /* insert this after the inner call (0 = none) */
  int inner_rc;
} job;

static int insert_job(be_conn *c, void *ud, be_error **err) {
  job *j = ud;
  j->runs++;
  int rc = insert(c, j->value, err);
  if (rc) return rc;
  if (j->inner) {
    j->inner_rc = be_tx_run(c, BE_TX_IMMEDIATE, j->inner, j->inner_job, NULL);
    if (j->after_inner && (rc = insert(c, j->after_inner, err))) return rc;
  }
  if (j->fail_code) {
    if (j->set_error) {
      int rc2 = be_error_new(err, j->fail_code, "callback says no");
      return rc2 != BE_OK ? rc2 : j->fail_code;
    }
    return j->fail_code;
  }
  return BE_OK;
}

START_TEST(commit_on_success) {
  be_conn *c = open_conn(NULL);
  job j = {.value = 1};
  ck_assert_int_eq(be_tx_run(c, BE_TX_IMMEDIATE, insert_job, &j, NULL), BE_OK);
  ck_assert_int_eq(j.runs, 1);
  ck_assert_int_eq(be_conn_in_transaction(c), 0);
  be_conn *other = open_conn(NULL);
  ck_assert(has_row(other, 1));
  be_conn_close(other);
  ck_assert_int_eq(be_fault_calls(flt, BE_FAULT_OP_BEGIN), 1);
  ck_assert_int_eq(be_fault_calls(flt, BE_FAULT_OP_COMMIT), 1);
  ck_assert_int_eq(be_fault_calls(flt, BE_FAULT_OP_ROLLBACK), 0);
  be_conn_close(c);
}
END_TEST

START_TEST(rollback_on_callback_error) {
  be_conn *c = open_conn(NULL);
  job j = {.value = 1, .fail_code = BE_E_VALIDATION, .set_error = 1};
  be_error *e = NULL;
  ck_assert_int_eq(be_tx_run(c, BE_TX_IMMEDIATE, insert_job, &j, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_message(e), "callback says no");
  be_error_free(e);
  ck_assert_int_eq(count_rows(c), 0);
  ck_assert_int_eq(be_conn_in_transaction(c), 0);
  ck_assert_int_eq(j.runs, 1); /* not retryable: run once */

  /* failing without an error object: one is made from the code */
  job k = {.value = 2, .fail_code = BE_E_NOT_FOUND};
  ck_assert_int_eq(be_tx_run(c, BE_TX_DEFERRED, insert_job, &k, &e), BE_E_NOT_FOUND);
  ck_assert_int_eq(be_error_code(e), BE_E_NOT_FOUND);
  be_error_free(e);
  ck_assert_int_eq(count_rows(c), 0);

  /* a driver error inside the callback comes back with its cause */
  job ok = {.value = 3};
  ck_assert_int_eq(be_tx_run(c, BE_TX_IMMEDIATE, insert_job, &ok, NULL), BE_OK);
  job dup = {.value = 3};
  ck_assert_int_eq(be_tx_run(c, BE_TX_IMMEDIATE, insert_job, &dup, &e), BE_E_CONFLICT);
  if (svc_on_pg()) { /* unique_violation: 23505, packed as MAKE_SQLSTATE does */
    ck_assert_ptr_nonnull(strstr(be_error_message(be_error_cause(e)), "SQLSTATE 23505"));
    ck_assert_int_eq(be_error_driver_code(be_error_cause(e)), 2 | 3 << 6 | 5 << 12 | 0 << 18 | 5 << 24);
  } else
    ck_assert_int_eq(be_error_driver_code(be_error_cause(e)), 2067); /* SQLITE_CONSTRAINT_UNIQUE */
  be_error_free(e);
  ck_assert_int_eq(count_rows(c), 1);
  be_conn_close(c);
}
END_TEST

START_TEST(commit_failure_rolls_back) {
  be_conn *c = open_conn(NULL);
  ck_assert_int_eq(be_fault_set(flt, BE_FAULT_OP_COMMIT, BE_FAULT_NTH, 1, BE_E_STORAGE, NULL), BE_OK);
  job j = {.value = 1};
  be_error *e = NULL;
  ck_assert_int_eq(be_tx_run(c, BE_TX_IMMEDIATE, insert_job, &j, &e), BE_E_STORAGE);
  ck_assert_ptr_nonnull(strstr(be_error_message(e), "commit"));
  be_error_free(e);
  ck_assert_int_eq(be_conn_in_transaction(c), 0);
  ck_assert_int_eq(be_fault_calls(flt, BE_FAULT_OP_ROLLBACK), 1);
  ck_assert_int_eq(count_rows(c), 0);
  be_conn_close(c);
}
END_TEST

START_TEST(nested_calls_are_savepoints) {
  be_conn *c = open_conn(NULL);
  /* inner fails: only the inner work is undone */
  job inner = {.value = 2, .fail_code = BE_E_CONFLICT, .set_error = 1};
  job outer = {.value = 1, .inner = insert_job, .inner_job = &inner, .after_inner = 3};
  ck_assert_int_eq(be_tx_run(c, BE_TX_IMMEDIATE, insert_job, &outer, NULL), BE_OK);
  ck_assert_int_eq(outer.inner_rc, BE_E_CONFLICT);
  ck_assert(has_row(c, 1));
  ck_assert(!has_row(c, 2));
  ck_assert(has_row(c, 3));
  ck_assert_int_eq(be_fault_calls(flt, BE_FAULT_OP_SAVEPOINT), 1);
  ck_assert_int_eq(be_fault_calls(flt, BE_FAULT_OP_ROLLBACK_TO), 1);
  ck_assert_int_eq(be_fault_calls(flt, BE_FAULT_OP_RELEASE), 1);
  ck_assert_int_eq(be_fault_calls(flt, BE_FAULT_OP_BEGIN), 1);

  /* three levels, all good */
  job l3 = {.value = 30};
  job l2 = {.value = 20, .inner = insert_job, .inner_job = &l3};
  job l1 = {.value = 10, .inner = insert_job, .inner_job = &l2};
  ck_assert_int_eq(be_tx_run(c, BE_TX_IMMEDIATE, insert_job, &l1, NULL), BE_OK);
  ck_assert(has_row(c, 10) && has_row(c, 20) && has_row(c, 30));
  ck_assert_int_eq(be__conn_tx_depth(c), 0);

  /* the outer failing undoes the released inner work too */
  job i2 = {.value = 40};
  job o2 = {.value = 41, .inner = insert_job, .inner_job = &i2, .fail_code = BE_E_FORBIDDEN};
  ck_assert_int_eq(be_tx_run(c, BE_TX_IMMEDIATE, insert_job, &o2, NULL), BE_E_FORBIDDEN);
  ck_assert_int_eq(o2.inner_rc, BE_OK);
  ck_assert(!has_row(c, 40) && !has_row(c, 41));

  /* inside a manual transaction, be_tx_run is a savepoint */
  ck_assert_int_eq(be_conn_begin(c, BE_TX_IMMEDIATE, NULL), BE_OK);
  job m = {.value = 50, .fail_code = BE_E_VALIDATION};
  ck_assert_int_eq(be_tx_run(c, BE_TX_IMMEDIATE, insert_job, &m, NULL), BE_E_VALIDATION);
  ck_assert_int_eq(be_conn_in_transaction(c), 1);
  ck_assert_int_eq(be_conn_commit(c, NULL), BE_OK);
  ck_assert(!has_row(c, 50));
  be_conn_close(c);
}
END_TEST

/* The outer callback swallows a nested failure whose savepoint could not
 * be rolled back: its inner row must never be committed. */
typedef struct doomed_job {
  be_fault *flt;
  int inner_rc;
  int32_t inner_cause;
} doomed_job;

static int fail_after_insert(be_conn *c, void *ud, be_error **err) {
  (void)ud;
  int rc = insert(c, 2, err);
  if (rc == BE_OK && (rc = be_error_new(err, BE_E_CONFLICT, "inner fails")) == BE_OK)
    rc = BE_E_CONFLICT;
  return rc;
}

static int swallow_inner(be_conn *c, void *ud, be_error **err) {
  doomed_job *d = ud;
  int rc = insert(c, 1, err);
  if (rc) return rc;
  ck_assert_int_eq(be_fault_set(d->flt, BE_FAULT_OP_ROLLBACK_TO, BE_FAULT_NTH, 1, BE_E_STORAGE, NULL),
                   BE_OK);
  be_error *e = NULL;
  d->inner_rc = be_tx_run(c, BE_TX_IMMEDIATE, fail_after_insert, NULL, &e);
  d->inner_cause = be_error_code(be_error_cause(e));
  be_error_free(e);
  return BE_OK; /* carries on, as tx.h allows */
}

START_TEST(failed_savepoint_rollback_never_commits) {
  be_conn *c = open_conn(NULL);
  doomed_job d = {.flt = flt};
  be_error *e = NULL;
  int rc = be_tx_run(c, BE_TX_IMMEDIATE, swallow_inner, &d, &e);
  /* the nested call reports the failed rollback, the callback's error kept as its cause */
  ck_assert_int_eq(d.inner_rc, BE_E_STORAGE);
  ck_assert_int_eq(d.inner_cause, BE_E_CONFLICT);
  /* the outer COMMIT is refused and everything is rolled back */
  ck_assert_int_eq(rc, BE_E_STORAGE);
  ck_assert_ptr_nonnull(strstr(be_error_message(e), "COMMIT refused"));
  be_error_free(e);
  ck_assert_int_eq(be_fault_injected(flt, BE_FAULT_OP_ROLLBACK_TO), 1);
  ck_assert_int_eq(be_conn_in_transaction(c), 0);
  ck_assert_int_eq(count_rows(c), 0);

  /* the same by hand: be_conn_commit() refuses it too */
  ck_assert_int_eq(be_conn_begin(c, BE_TX_IMMEDIATE, NULL), BE_OK);
  ck_assert_int_eq(swallow_inner(c, &d, NULL), BE_OK);
  ck_assert_int_eq(be_conn_commit(c, NULL), BE_E_STORAGE);
  ck_assert_int_eq(be_conn_in_transaction(c), 0);
  ck_assert_int_eq(count_rows(c), 0);

  /* the refusal does not outlive its transaction */
  job ok = {.value = 7};
  ck_assert_int_eq(be_tx_run(c, BE_TX_IMMEDIATE, insert_job, &ok, NULL), BE_OK);
  be_conn *other = open_conn(NULL);
  ck_assert(has_row(other, 7) && !has_row(other, 1) && !has_row(other, 2));
  be_conn_close(other);
  be_conn_close(c);
}
END_TEST

/* The time budget stops retries before max_retries; a bad budget is misuse;
 * no retries means one run; backoffs sleep whole milliseconds. */
static void tx_retry_budget_and_backoff(be_conn *c, be_tx_options o) {
  job b = {.value = 4};
  /* the time budget stops retries even when max_retries is not reached */
  o.max_retries = 1000;
  o.backoff_ms = 1;
  o.max_backoff_ms = 1;
  o.retry_budget_ms = 30;
  b.runs = 0;
  ck_assert_int_eq(be_tx_run_ex(c, &o, insert_job, &b, NULL), BE_E_BUSY);
  ck_assert_int_gt(b.runs, 1);
  ck_assert_int_lt(b.runs, 200);
  o.retry_budget_ms = -1;
  ck_assert_int_eq(be_tx_run_ex(c, &o, insert_job, &b, NULL), BE_E_MISUSE);
  o.retry_budget_ms = 0;
  o.max_retries = 0;
  b.runs = 0;
  ck_assert_int_eq(be_tx_run_ex(c, &o, insert_job, &b, NULL), BE_E_BUSY);
  ck_assert_int_eq(b.runs, 1);
  /* backoffs are milliseconds: two retries sleeping in [d/2, d) with d = 20
   * take at least 20 ms (as nanoseconds they would take none) */
  o.max_retries = 2;
  o.backoff_ms = 20;
  o.max_backoff_ms = 20;
  b.runs = 0;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  ck_assert_int_eq(be_tx_run_ex(c, &o, insert_job, &b, NULL), BE_E_BUSY);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  ck_assert_int_eq(b.runs, 3);
  int64_t slept_ns = (t1.tv_sec - t0.tv_sec) * BE_NS_PER_SEC + (t1.tv_nsec - t0.tv_nsec);
  ck_assert_int_ge(slept_ns, 20 * BE_NS_PER_MS);
}

START_TEST(retry_on_busy) {
  be_conn *c = open_conn(NULL);
  /* busy at COMMIT once: the whole callback runs again and succeeds */
  ck_assert_int_eq(be_fault_set(flt, BE_FAULT_OP_COMMIT, BE_FAULT_NTH, 1, BE_E_BUSY, NULL), BE_OK);
  job j = {.value = 1};
  ck_assert_int_eq(be_tx_run(c, BE_TX_IMMEDIATE, insert_job, &j, NULL), BE_OK);
  ck_assert_int_eq(j.runs, 2);
  ck_assert_int_eq(count_rows(c), 1);

  /* busy at STEP once (inside the callback) */
  ck_assert_int_eq(be_fault_set(flt, BE_FAULT_OP_STEP, BE_FAULT_NTH, 1, BE_E_BUSY, NULL), BE_OK);
  job k = {.value = 2};
  ck_assert_int_eq(be_tx_run(c, BE_TX_IMMEDIATE, insert_job, &k, NULL), BE_OK);
  ck_assert_int_eq(k.runs, 2);
  ck_assert_int_eq(count_rows(c), 2);

  /* serialization failures retry as well */
  ck_assert_int_eq(be_fault_set(flt, BE_FAULT_OP_BEGIN, BE_FAULT_NTH, 1, BE_E_SERIALIZATION, NULL), BE_OK);
  job s = {.value = 3};
  ck_assert_int_eq(be_tx_run(c, BE_TX_IMMEDIATE, insert_job, &s, NULL), BE_OK);
  ck_assert_int_eq(s.runs, 1); /* BEGIN failed, so the callback ran once */

  /* retries run out: a bounded number of attempts, then the typed error */
  be_fault_reset_counts(flt);
  ck_assert_int_eq(be_fault_set(flt, BE_FAULT_OP_COMMIT, BE_FAULT_FROM, 1, BE_E_BUSY, NULL), BE_OK);
  be_tx_options o;
  ck_assert_int_eq(be_tx_options_init(&o, BE_TX_OPTIONS_VERSION), BE_OK);
  ck_assert_int_eq(o.mode, BE_TX_IMMEDIATE);
  o.max_retries = 2;
  o.backoff_ms = 1;
  job b = {.value = 4};
  be_error *e = NULL;
  ck_assert_int_eq(be_tx_run_ex(c, &o, insert_job, &b, &e), BE_E_BUSY);
  ck_assert_int_eq(be_error_is_retryable(e), 1);
  be_error_free(e);
  ck_assert_int_eq(b.runs, 3);
  ck_assert_int_eq(be_fault_calls(flt, BE_FAULT_OP_COMMIT), 3);
  ck_assert(!has_row(c, 4));
  tx_retry_budget_and_backoff(c, o);
  be_fault_clear(flt, BE_FAULT_OP_ALL);

  /* nested: the inner busy reaches the outer level, which retries as a whole */
  be_fault_reset_counts(flt);
  job in = {.value = 6, .fail_code = 0};
  job out = {.value = 5, .inner = insert_job, .inner_job = &in};
  ck_assert_int_eq(be_fault_set(flt, BE_FAULT_OP_RELEASE, BE_FAULT_NTH, 1, BE_E_BUSY, NULL), BE_OK);
  /* the outer callback ignores inner_rc, so make it propagate: */
  out.after_inner = 0;
  ck_assert_int_eq(be_tx_run(c, BE_TX_IMMEDIATE, insert_job, &out, NULL), BE_OK);
  ck_assert_int_eq(out.inner_rc, BE_E_BUSY); /* first run: the inner savepoint failed ... */
  ck_assert(has_row(c, 5));
  ck_assert(!has_row(c, 6)); /* ... and its work was rolled back to the savepoint */
  ck_assert_int_eq(out.runs, 1);

  /* a lost connection is not retried */
  ck_assert_int_eq(be_fault_set(flt, BE_FAULT_OP_STEP, BE_FAULT_NTH, 1, BE_E_CONN_LOST, NULL), BE_OK);
  job l = {.value = 7};
  ck_assert_int_eq(be_tx_run(c, BE_TX_IMMEDIATE, insert_job, &l, NULL), BE_E_CONN_LOST);
  ck_assert_int_eq(l.runs, 1);
  ck_assert_int_eq(be_conn_is_broken(c), 1);
  be_conn_close(c);
}
END_TEST

static int propagate_inner(be_conn *c, void *ud, be_error **err) {
  job *j = ud;
  j->runs++;
  return be_tx_run(c, BE_TX_IMMEDIATE, insert_job, j->inner_job, err);
}

START_TEST(nested_busy_retries_the_outermost) {
  be_conn *c = open_conn(NULL);
  job in = {.value = 8};
  job out = {.inner_job = &in};
  ck_assert_int_eq(be_fault_set(flt, BE_FAULT_OP_STEP, BE_FAULT_NTH, 1, BE_E_BUSY, NULL), BE_OK);
  ck_assert_int_eq(be_tx_run(c, BE_TX_IMMEDIATE, propagate_inner, &out, NULL), BE_OK);
  ck_assert_int_eq(out.runs, 2);
  ck_assert_int_eq(in.runs, 2);
  ck_assert(has_row(c, 8));
  be_conn_close(c);
}
END_TEST

/* Two real connections: one holds the write lock for a while; the other's
 * transaction waits (busy timeout), retries, and gets through once the
 * lock is gone, or gives up with BE_E_BUSY if it never is. */
static void *hold_lock(void *arg) {
  be_conn *c = arg;
  usleep(150 * 1000);
  be_conn_commit(c, NULL);
  return NULL;
}

/* Skip a test of SQLite itself in PostgreSQL mode, saying why. */
#define TX_SQLITE_ONLY(why)                                              \
  do {                                                                   \
    if (svc_on_pg()) {                                                   \
      fprintf(stderr, "%s: skipped on PostgreSQL: %s\n", __func__, why); \
      return;                                                            \
    }                                                                    \
  } while (0)

START_TEST(real_busy_retried_then_served) {
  TX_SQLITE_ONLY("SQLite's busy timeout between two connections to one file");
  be_sqlite_options so = BE_SQLITE_OPTIONS_INIT;
  so.busy_timeout_ms = 20;
  be_driver *d = NULL;
  ck_assert_int_eq(be_sqlite_driver_new(&d, &so, NULL), BE_OK);
  be_conn *a = open_conn(d), *b = open_conn(d);
  ck_assert_int_eq(be_conn_begin(a, BE_TX_IMMEDIATE, NULL), BE_OK);

  /* never released in time: bounded, typed failure */
  be_tx_options o = BE_TX_OPTIONS_INIT;
  o.max_retries = 2;
  o.backoff_ms = 1;
  job j = {.value = 1};
  be_error *e = NULL;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  ck_assert_int_eq(be_tx_run_ex(b, &o, insert_job, &j, &e), BE_E_BUSY);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
  ck_assert_double_lt(ms, 2000.0);
  ck_assert_int_eq(j.runs, 0); /* BEGIN IMMEDIATE never got the lock */
  be_error_free(e);

  /* released while b retries: served */
  pthread_t t;
  pthread_create(&t, NULL, hold_lock, a);
  o.max_retries = 50;
  o.backoff_ms = 5;
  o.max_backoff_ms = 20;
  ck_assert_int_eq(be_tx_run_ex(b, &o, insert_job, &j, NULL), BE_OK);
  pthread_join(t, NULL);
  ck_assert_int_eq(j.runs, 1);
  ck_assert(has_row(a, 1));
  be_conn_close(a);
  be_conn_close(b);
  be_sqlite_driver_free(d);
}
END_TEST

START_TEST(misuse) {
  be_conn *c = open_conn(NULL);
  job j = {.value = 1};
  ck_assert_int_eq(be_tx_run(NULL, BE_TX_IMMEDIATE, insert_job, &j, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_tx_run(c, BE_TX_IMMEDIATE, NULL, &j, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_tx_run(c, 9, insert_job, &j, NULL), BE_E_MISUSE);
  be_tx_options o = BE_TX_OPTIONS_INIT;
  o.version = 7;
  ck_assert_int_eq(be_tx_run_ex(c, &o, insert_job, &j, NULL), BE_E_MISUSE);
  o.version = BE_TX_OPTIONS_VERSION;
  o.max_retries = -1;
  ck_assert_int_eq(be_tx_run_ex(c, &o, insert_job, &j, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_tx_run_ex(c, NULL, insert_job, &j, NULL), BE_OK);
  ck_assert_int_eq(be_tx_options_init(NULL, BE_TX_OPTIONS_VERSION), BE_E_MISUSE);
  ck_assert_int_eq(be_tx_options_init(&o, 2), BE_E_MISUSE);
  ck_assert_int_eq(j.runs, 1);
  be_conn_close(c);
}
END_TEST

/* Every storage operation inside a transaction failing once: typed error,
 * nothing left open, nothing leaked (run under ASan). */
START_TEST(each_operation_fails_inside_a_transaction) {
  const int32_t ops[] = {BE_FAULT_OP_BEGIN, BE_FAULT_OP_PREPARE, BE_FAULT_OP_BIND,
                         BE_FAULT_OP_STEP, BE_FAULT_OP_COMMIT, BE_FAULT_OP_SAVEPOINT,
                         BE_FAULT_OP_RELEASE};
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
    be_conn *c = open_conn(NULL);
    ck_assert_int_eq(be_fault_set(flt, ops[i], BE_FAULT_NTH, 1, BE_E_STORAGE, NULL), BE_OK);
    job in = {.value = 101};
    job out = {.inner_job = &in};
    be_error *e = NULL;
    ck_assert_int_eq(be_tx_run(c, BE_TX_IMMEDIATE, propagate_inner, &out, &e), BE_E_STORAGE);
    ck_assert_ptr_nonnull(strstr(be_error_message(e), "injected"));
    be_error_free(e);
    ck_assert_int_eq(be_conn_in_transaction(c), 0);
    ck_assert_int_eq(be__conn_open_stmts(c), 0);
    be_fault_clear(flt, BE_FAULT_OP_ALL);
    ck_assert_int_eq(count_rows(c), 0);
    be_conn_close(c);
  }
}
END_TEST

static int tx_alloc_body(void *arg) {
  (void)arg;
  be_conn *c = NULL;
  be_error *e = NULL;
  int rc = be_conn_open(&c, be_sqlite_driver(), ":memory:", &e);
  if (rc == BE_OK) rc = be_conn_exec(c, "CREATE TABLE t(x INTEGER UNIQUE)", &e);
  if (rc == BE_OK) {
    job in = {.value = 1};
    job out = {.inner_job = &in};
    rc = be_tx_run(c, BE_TX_IMMEDIATE, propagate_inner, &out, &e);
  }
  if (rc == BE_OK) {
    job fail = {.value = 2, .fail_code = BE_E_VALIDATION, .set_error = 1};
    rc = be_tx_run(c, BE_TX_IMMEDIATE, insert_job, &fail, &e);
    rc = rc == BE_E_VALIDATION ? BE_OK : rc;
  }
  be_error_free(e);
  be_conn_close(c);
  return rc;
}

START_TEST(allocation_failures_do_not_leak) {
  TX_SQLITE_ONLY("runs on an in-memory SQLite database");
  TU_FOR_EACH_ALLOC_FAILURE(tx_alloc_body, NULL);
}
END_TEST

static Suite *tx_suite(void) {
  Suite *s = suite_create("tx");
  TCase *tc = tcase_create("tx");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, commit_on_success);
  tcase_add_test(tc, rollback_on_callback_error);
  tcase_add_test(tc, commit_failure_rolls_back);
  tcase_add_test(tc, nested_calls_are_savepoints);
  tcase_add_test(tc, failed_savepoint_rollback_never_commits);
  tcase_add_test(tc, retry_on_busy);
  tcase_add_test(tc, nested_busy_retries_the_outermost);
  tcase_add_test(tc, real_busy_retried_then_served);
  tcase_add_test(tc, misuse);
  tcase_add_test(tc, each_operation_fails_inside_a_transaction);
  tcase_add_test(tc, allocation_failures_do_not_leak);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(tx_suite)
