/* SPDX-License-Identifier: MIT */
/* The fault-injecting driver: each storage operation made to fail once
 * gives the caller a typed error and leaks nothing; modes, lost
 * connections, counters, threads. */
#include "testutil.h"

#include <pthread.h>

#include "storage.h"

static be_driver *drv;
static be_fault *flt;

static void setup(void) {
  ck_assert_int_eq(be_fault_driver_new(&drv, &flt, be_sqlite_driver(), NULL), BE_OK);
}
static void teardown(void) { be_fault_free(flt); }

static be_conn *open_conn(void) {
  be_conn *c = NULL;
  ck_assert_int_eq(be_conn_open(&c, drv, ":memory:", NULL), BE_OK);
  return c;
}

/*
 * One run of a workload that touches every operation, stopping at the
 * first failure. Returns BE_OK or the first error (its object in *e).
 */
static int workload(be_conn *c, be_error **e) {
  be_stmt *s = NULL;
  int rc;
  if ((rc = be_conn_ping(c, e))) return rc;
  if ((rc = be_conn_exec(c, "CREATE TABLE IF NOT EXISTS t(a, b, c, d, e)", e))) return rc;
  if ((rc = be_conn_begin(c, BE_TX_IMMEDIATE, e))) return rc;
  if ((rc = be_conn_savepoint(c, "sp", e))) goto rollback;
  if ((rc = be_conn_prepare(&s, c, "INSERT INTO t VALUES (?, ?, ?, ?, ?)", e))) goto rollback;
  if ((rc = be_stmt_bind_int64(s, 1, 1, e)) || (rc = be_stmt_bind_double(s, 2, 2.5, e)) ||
      (rc = be_stmt_bind_text(s, 3, "x", 1, e)) || (rc = be_stmt_bind_blob(s, 4, "\0y", 2, e)) ||
      (rc = be_stmt_bind_null(s, 5, e)))
    goto rollback;
  if ((rc = be_stmt_step(s, e)) != BE_DONE) goto rollback;
  if ((rc = be_stmt_reset(s, e))) goto rollback;
  be_stmt_finalize(s);
  s = NULL;
  if ((rc = be_conn_rollback_to(c, "sp", e))) goto rollback;
  if ((rc = be_conn_release(c, "sp", e))) goto rollback;
  if ((rc = be_conn_commit(c, e))) goto rollback;
  if ((rc = be_conn_begin(c, BE_TX_DEFERRED, e))) return rc;
  if ((rc = be_conn_rollback(c, e))) return rc;
  return BE_OK;
rollback:
  if (rc == BE_DONE) rc = BE_OK;
  be_stmt_finalize(s);
  be_conn_rollback(c, NULL);
  return rc;
}

static const int32_t ops[] = {BE_FAULT_OP_PING, BE_FAULT_OP_EXEC, BE_FAULT_OP_BEGIN,
                              BE_FAULT_OP_SAVEPOINT, BE_FAULT_OP_PREPARE, BE_FAULT_OP_BIND,
                              BE_FAULT_OP_STEP, BE_FAULT_OP_RESET, BE_FAULT_OP_ROLLBACK_TO,
                              BE_FAULT_OP_RELEASE, BE_FAULT_OP_COMMIT, BE_FAULT_OP_ROLLBACK};

START_TEST(each_operation_fails_once_with_a_typed_error) {
  const int32_t codes[] = {BE_E_STORAGE, BE_E_BUSY, BE_E_CONN_LOST, BE_E_SERIALIZATION};
  for (size_t ci = 0; ci < sizeof codes / sizeof *codes; ci++) {
    for (size_t oi = 0; oi < sizeof ops / sizeof *ops; oi++) {
      int32_t op = ops[oi], code = codes[ci];
      be_conn *c = open_conn();
      be_fault_reset_counts(flt);
      ck_assert_int_eq(be_fault_set(flt, op, BE_FAULT_NTH, 1, code, NULL), BE_OK);
      be_error *e = NULL;
      int rc = workload(c, &e);
      ck_assert_msg(rc == code, "op %s code %d: got %d", be_fault_op_name(op), code, rc);
      ck_assert_int_eq(be_error_code(e), code);
      ck_assert_int_eq(be_error_is_retryable(e), be_code_is_retryable(code));
      ck_assert_ptr_nonnull(strstr(be_error_message(e), "injected fault"));
      ck_assert_ptr_nonnull(strstr(be_error_message(e), be_fault_op_name(op)));
      ck_assert_int_eq(be_fault_injected(flt, op), 1);
      be_error_free(e);
      ck_assert_int_eq(be__conn_open_stmts(c), 0);
      ck_assert_int_eq(be_conn_is_broken(c), code == BE_E_CONN_LOST);
      be_fault_clear(flt, op);
      /* a failed ROLLBACK leaves the transaction open, as it would for real */
      if (code != BE_E_CONN_LOST && be_conn_in_transaction(c))
        ck_assert_int_eq(be_conn_rollback(c, NULL), BE_OK);
      e = NULL;
      rc = workload(c, &e);
      if (code == BE_E_CONN_LOST) {
        /* a lost connection stays lost, like a dead socket */
        ck_assert_int_eq(rc, BE_E_CONN_LOST);
        ck_assert_int_eq(be_conn_ping(c, NULL), BE_E_CONN_LOST);
      } else {
        /* otherwise the connection is still good and the failure was one-off */
        ck_assert_msg(rc == BE_OK, "op %s: %s", be_fault_op_name(op), be_error_message(e));
        ck_assert_int_eq(be_conn_in_transaction(c), 0);
      }
      be_error_free(e);
      be_conn_close(c);
    }
  }
}
END_TEST

START_TEST(open_failure_is_db_unreachable) {
  be_conn *c = NULL;
  be_error *e = NULL;
  ck_assert_int_eq(be_fault_set(flt, BE_FAULT_OP_OPEN, BE_FAULT_NTH, 1, BE_E_CONN_LOST, NULL), BE_OK);
  ck_assert_int_eq(be_conn_open(&c, drv, ":memory:", &e), BE_E_DB_UNREACHABLE);
  ck_assert_ptr_null(c);
  ck_assert_int_eq(be_error_code(be_error_cause(e)), BE_E_CONN_LOST);
  be_error_free(e);
  ck_assert_int_eq(be_conn_open(&c, drv, ":memory:", NULL), BE_OK); /* only the first */
  be_conn_close(c);
  ck_assert_int_eq(be_fault_calls(flt, BE_FAULT_OP_OPEN), 2);
  ck_assert_int_eq(be_fault_calls(flt, BE_FAULT_OP_CLOSE), 1);
  ck_assert_int_eq(be_fault_set(flt, BE_FAULT_OP_OPEN, BE_FAULT_NTH, 1, BE_E_NOMEM, NULL), BE_OK);
  ck_assert_int_eq(be_conn_open(&c, drv, ":memory:", NULL), BE_E_NOMEM);
}
END_TEST

static int step_once(be_conn *c) {
  be_stmt *s = NULL;
  int rc = be_conn_prepare(&s, c, "SELECT 1", NULL);
  if (rc == BE_OK) rc = be_stmt_step(s, NULL);
  be_stmt_finalize(s);
  return rc;
}

START_TEST(modes_nth_from_random) {
  be_conn *c = open_conn();
  ck_assert_int_eq(be_fault_set(flt, BE_FAULT_OP_STEP, BE_FAULT_NTH, 3, BE_E_BUSY, NULL), BE_OK);
  int got[6];
  for (int i = 0; i < 6; i++) got[i] = step_once(c);
  ck_assert_int_eq(got[0], BE_ROW);
  ck_assert_int_eq(got[1], BE_ROW);
  ck_assert_int_eq(got[2], BE_E_BUSY);
  ck_assert_int_eq(got[3], BE_ROW);
  ck_assert_int_eq(got[5], BE_ROW);

  ck_assert_int_eq(be_fault_set(flt, BE_FAULT_OP_STEP, BE_FAULT_FROM, 2, BE_E_STORAGE, NULL), BE_OK);
  ck_assert_int_eq(step_once(c), BE_ROW);
  for (int i = 0; i < 5; i++) ck_assert_int_eq(step_once(c), BE_E_STORAGE);
  be_fault_clear(flt, BE_FAULT_OP_STEP);
  ck_assert_int_eq(step_once(c), BE_ROW);

  /* random: the same seed fails the same calls */
  int pattern[2][200];
  int fails = 0;
  for (int run = 0; run < 2; run++) {
    ck_assert_int_eq(be_fault_set_random(flt, BE_FAULT_OP_STEP, 0.3, 42, BE_E_BUSY, NULL), BE_OK);
    for (int i = 0; i < 200; i++) pattern[run][i] = step_once(c);
  }
  for (int i = 0; i < 200; i++) {
    ck_assert_int_eq(pattern[0][i], pattern[1][i]);
    fails += pattern[0][i] == BE_E_BUSY;
  }
  ck_assert_int_gt(fails, 30);
  ck_assert_int_lt(fails, 100);
  ck_assert_int_eq(be_fault_set_random(flt, BE_FAULT_OP_STEP, 0.0, 1, BE_E_BUSY, NULL), BE_OK);
  for (int i = 0; i < 50; i++) ck_assert_int_eq(step_once(c), BE_ROW);
  ck_assert_int_eq(be_fault_set_random(flt, BE_FAULT_OP_ALL, 1.0, 1, BE_E_BUSY, NULL), BE_OK);
  ck_assert_int_eq(step_once(c), BE_E_BUSY); /* the prepare fails already */
  ck_assert_int_eq(be_conn_ping(c, NULL), BE_E_BUSY);
  be_fault_clear(flt, BE_FAULT_OP_ALL);
  ck_assert_int_eq(step_once(c), BE_ROW);

  /* misuse */
  ck_assert_int_eq(be_fault_set(NULL, BE_FAULT_OP_STEP, BE_FAULT_NTH, 1, BE_E_BUSY, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_fault_set(flt, 99, BE_FAULT_NTH, 1, BE_E_BUSY, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_fault_set(flt, BE_FAULT_OP_CLOSE, BE_FAULT_NTH, 1, BE_E_BUSY, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_fault_set(flt, BE_FAULT_OP_STEP, 9, 1, BE_E_BUSY, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_fault_set(flt, BE_FAULT_OP_STEP, BE_FAULT_NTH, 0, BE_E_BUSY, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_fault_set(flt, BE_FAULT_OP_STEP, BE_FAULT_NTH, 1, BE_OK, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_fault_set(flt, BE_FAULT_OP_STEP, BE_FAULT_RANDOM, 1, BE_E_BUSY, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_fault_set_random(flt, BE_FAULT_OP_STEP, 1.5, 1, BE_E_BUSY, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_fault_set(flt, BE_FAULT_OP_STEP, BE_FAULT_OFF, 0, 0, NULL), BE_OK);
  ck_assert_int_eq(be_fault_lose_connections(NULL, NULL), BE_E_MISUSE);
  TU_EXPECT_ERR(BE_E_MISUSE, be_fault_lose_connections(NULL, &tu_e));
  TU_EXPECT_ERR(BE_E_MISUSE, be_fault_set(flt, BE_FAULT_OP_STEP, BE_FAULT_NTH, 0, BE_E_BUSY, &tu_e));
  TU_EXPECT_ERR(BE_E_MISUSE, be_fault_set_random(flt, BE_FAULT_OP_STEP, 1.5, 1, BE_E_BUSY, &tu_e));
  ck_assert_int_eq(be_fault_calls(NULL, 0), 0);
  ck_assert_int_eq(be_fault_calls(flt, 99), 0);
  ck_assert_str_eq(be_fault_op_name(BE_FAULT_OP_ROLLBACK_TO), "rollback_to");
  ck_assert_str_eq(be_fault_op_name(-5), "unknown");
  be_fault_clear(NULL, 0);
  be_fault_free(NULL);
  be_driver *d2;
  be_fault *f2;
  ck_assert_int_eq(be_fault_driver_new(&d2, &f2, NULL, NULL), BE_E_MISUSE);
  be_driver bad = *be_sqlite_driver();
  bad.version = 0;
  ck_assert_int_eq(be_fault_driver_new(&d2, &f2, &bad, NULL), BE_E_MISUSE);
  be_conn_close(c);
}
END_TEST

START_TEST(lose_connections_kills_open_ones_only) {
  be_conn *a = open_conn();
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, a, "SELECT 1", NULL), BE_OK);
  ck_assert_int_eq(be_fault_lose_connections(flt, NULL), BE_OK);
  be_conn *b = open_conn();
  be_error *e = NULL;
  ck_assert_int_eq(be_stmt_step(s, &e), BE_E_CONN_LOST);
  ck_assert_int_eq(be_error_is_retryable(e), 1);
  be_error_free(e);
  ck_assert_int_eq(be_conn_is_broken(a), 1);
  be_stmt_finalize(s);
  ck_assert_int_eq(be_conn_ping(a, NULL), BE_E_CONN_LOST);
  ck_assert_int_eq(be_conn_ping(b, NULL), BE_OK);
  ck_assert_int_eq(step_once(b), BE_ROW);
  ck_assert_int_eq(be_conn_is_broken(b), 0);
  /* statements of a broken connection are not cached again */
  be_stmt_cache_stats st = BE_STMT_CACHE_STATS_INIT;
  st.size = -1;
  ck_assert_int_eq(be_conn_stmt_cache_stats_get(&st, a, NULL), BE_OK);
  ck_assert_int_eq(st.size, 0);
  be_conn_close(a);
  be_conn_close(b);
}
END_TEST

/* The optional operations of a version-2 driver pass through, uncounted;
 * a lost connection fails them too; an inner driver without them (a
 * version-1 table) gives a fault driver without them. */
START_TEST(optional_operations_pass_through) {
  ck_assert_ptr_nonnull(drv->next_statement);
  ck_assert_ptr_nonnull(drv->table_exists);
  be_conn *c = open_conn();
  size_t n = 0;
  ck_assert_int_eq(be__conn_next_statement(c, &n, "SELECT 1; SELECT 2", 18, NULL), BE_OK);
  ck_assert_uint_eq(n, 9);
  int32_t exists = -1;
  ck_assert_int_eq(be_conn_exec(c, "CREATE TABLE t(x)", NULL), BE_OK);
  ck_assert_int_eq(be__conn_table_exists(c, &exists, "t", NULL), BE_OK);
  ck_assert_int_eq(exists, 1);
  ck_assert_int_eq(be_fault_calls(flt, BE_FAULT_OP_PREPARE), 0);
  ck_assert_int_eq(be_fault_set(flt, BE_FAULT_OP_ALL, BE_FAULT_FROM, 1, BE_E_STORAGE, NULL), BE_OK);
  ck_assert_int_eq(be__conn_table_exists(c, &exists, "t", NULL), BE_OK); /* no rule applies */
  be_fault_clear(flt, BE_FAULT_OP_ALL);
  ck_assert_int_eq(be_fault_lose_connections(flt, NULL), BE_OK);
  be_error *e = NULL;
  ck_assert_int_eq(be__conn_next_statement(c, &n, "SELECT 1", 8, &e), BE_E_CONN_LOST);
  be_error_free(e);
  ck_assert_int_eq(be__conn_table_exists(c, &exists, "t", NULL), BE_E_CONN_LOST);
  ck_assert_int_eq(be_conn_is_broken(c), 1);
  be_conn_close(c);

  be_driver d1 = *be_sqlite_driver();
  d1.version = 1;
  be_driver *fd = NULL;
  be_fault *f = NULL;
  ck_assert_int_eq(be_fault_driver_new(&fd, &f, &d1, NULL), BE_OK);
  ck_assert_ptr_null(fd->next_statement);
  ck_assert_ptr_null(fd->table_exists);
  be_fault_free(f);
}
END_TEST

static void *hammer(void *arg) {
  (void)arg;
  be_conn *c = NULL;
  if (be_conn_open(&c, drv, ":memory:", NULL) != BE_OK) return NULL;
  for (int i = 0; i < 2000; i++) step_once(c);
  be_conn_close(c);
  return NULL;
}

START_TEST(counters_are_thread_safe) {
  pthread_t t[4];
  for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, hammer, NULL);
  for (int i = 0; i < 200; i++) {
    be_fault_set_random(flt, BE_FAULT_OP_STEP, 0.1, (uint64_t)i, BE_E_BUSY, NULL);
    be_fault_clear(flt, BE_FAULT_OP_STEP);
  }
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  ck_assert_int_eq(be_fault_calls(flt, BE_FAULT_OP_STEP), 8000);
  ck_assert_int_eq(be_fault_calls(flt, BE_FAULT_OP_OPEN), 4);
  ck_assert_int_le(be_fault_injected(flt, BE_FAULT_OP_STEP), 8000);
}
END_TEST

static Suite *fault_suite(void) {
  Suite *s = suite_create("fault");
  TCase *tc = tcase_create("fault");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, each_operation_fails_once_with_a_typed_error);
  tcase_add_test(tc, open_failure_is_db_unreachable);
  tcase_add_test(tc, modes_nth_from_random);
  tcase_add_test(tc, lose_connections_kills_open_ones_only);
  tcase_add_test(tc, optional_operations_pass_through);
  tcase_add_test(tc, counters_are_thread_safe);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(fault_suite)
