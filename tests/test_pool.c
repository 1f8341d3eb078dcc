/* SPDX-License-Identifier: MIT */
/* The connection pool: FIFO under contention, bounded waits, typed errors,
 * validation and replacement, timers with a fake clock, callbacks, stats.
 * A scripted mock driver gives exact control; the SQLite and fault drivers
 * cover the real thing. */
#include "testutil.h"

#include <backend/fault.h>
#include <backend/pool.h>
#include <backend/postgres.h>
#include <backend/scope.h>
#include <backend/sqlite.h>
#include <backend/tx.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

/* internal (the tests link the static library) */
#include "pool_internal.h" /* be__pool_claims */
#include "sqlite.h"        /* be__sqlite_db */
#include "storage.h"       /* be__conn_mark_broken */

/* ---- a scripted mock driver ---- */

typedef struct mock_conn {
  int id;
  int dead; /* ping and exec fail with BE_E_CONN_LOST */
  int in_tx;
  int fail_rollback;
} mock_conn;

static _Atomic int mock_opens, mock_closes, mock_pings, mock_rollbacks, mock_next_id;
static _Atomic int mock_fail_open; /* open fails while set */

/* A gate holds a thread at a chosen point: the test arms it (1), the next
 * thread through sets 2 and waits until the test sets 3. */
enum { GATE_ARMED = 1,
       GATE_HOLDING = 2,
       GATE_OPEN = 3 };
static void gate_pass(atomic_int *g) {
  int armed = GATE_ARMED;
  if (atomic_compare_exchange_strong(g, &armed, GATE_HOLDING))
    while (atomic_load(g) != GATE_OPEN) usleep(100);
}
static void wait_at_least(atomic_int *v, int want) {
  while (atomic_load(v) < want) usleep(100);
}

static atomic_int mock_open_gate;  /* the next open */
static atomic_int mock_close_gate; /* the next close */

static void mock_reset(void) {
  atomic_store(&mock_opens, 0);
  atomic_store(&mock_closes, 0);
  atomic_store(&mock_pings, 0);
  atomic_store(&mock_rollbacks, 0);
  atomic_store(&mock_next_id, 0);
  atomic_store(&mock_fail_open, 0);
}

static int m_open(void **out, const char *dsn, void *dd, be_error **err) {
  (void)dd;
  (void)dsn;
  gate_pass(&mock_open_gate);
  if (atomic_load(&mock_fail_open)) {
    if (err) be_error_new(err, BE_E_DB_UNREACHABLE, "mock: connection refused");
    return BE_E_DB_UNREACHABLE;
  }
  mock_conn *c = calloc(1, sizeof *c);
  if (c == NULL) return BE_E_NOMEM;
  c->id = atomic_fetch_add(&mock_next_id, 1) + 1;
  atomic_fetch_add(&mock_opens, 1);
  *out = c;
  return BE_OK;
}
static void m_close(void *c) {
  gate_pass(&mock_close_gate);
  atomic_fetch_add(&mock_closes, 1);
  free(c);
}
static int m_lost(be_error **err) {
  if (err) be_error_new(err, BE_E_CONN_LOST, "mock: connection lost");
  return BE_E_CONN_LOST;
}
static int m_prepare(void *c, void **o, const char *s, size_t n, be_error **e) {
  (void)c;
  (void)o;
  (void)s;
  (void)n;
  (void)e;
  return BE_E_UNSUPPORTED;
}
static int m_bnull(void *s, int32_t i, be_error **e) {
  (void)s;
  (void)i;
  (void)e;
  return BE_OK;
}
static int m_bint(void *s, int32_t i, int64_t v, be_error **e) {
  (void)s;
  (void)i;
  (void)v;
  (void)e;
  return BE_OK;
}
static int m_bdbl(void *s, int32_t i, double v, be_error **e) {
  (void)s;
  (void)i;
  (void)v;
  (void)e;
  return BE_OK;
}
static int m_btext(void *s, int32_t i, const char *v, size_t n, be_error **e) {
  (void)s;
  (void)i;
  (void)v;
  (void)n;
  (void)e;
  return BE_OK;
}
static int m_bblob(void *s, int32_t i, const void *v, size_t n, be_error **e) {
  (void)s;
  (void)i;
  (void)v;
  (void)n;
  (void)e;
  return BE_OK;
}
static int m_step(void *s, be_error **e) {
  (void)s;
  (void)e;
  return BE_DONE;
}
static int32_t m_ccount(void *s) {
  (void)s;
  return 0;
}
static const char *m_cname(void *s, int32_t c) {
  (void)s;
  (void)c;
  return NULL;
}
static int32_t m_ctype(void *s, int32_t c) {
  (void)s;
  (void)c;
  return BE_TYPE_NULL;
}
static int64_t m_cint(void *s, int32_t c) {
  (void)s;
  (void)c;
  return 0;
}
static double m_cdbl(void *s, int32_t c) {
  (void)s;
  (void)c;
  return 0;
}
static const char *m_ctext(void *s, int32_t c, size_t *n) {
  (void)s;
  (void)c;
  if (n) *n = 0;
  return NULL;
}
static const void *m_cblob(void *s, int32_t c, size_t *n) {
  (void)s;
  (void)c;
  if (n) *n = 0;
  return NULL;
}
static int m_reset(void *s, be_error **e) {
  (void)s;
  (void)e;
  return BE_OK;
}
static void m_finalize(void *s) { (void)s; }
static int m_exec(void *c, const char *sql, be_error **e) {
  (void)sql;
  return ((mock_conn *)c)->dead ? m_lost(e) : BE_OK;
}
static int m_begin(void *c, int32_t mode, be_error **e) {
  (void)mode;
  if (((mock_conn *)c)->dead) return m_lost(e);
  ((mock_conn *)c)->in_tx = 1;
  return BE_OK;
}
static int m_commit(void *c, be_error **e) {
  (void)e;
  ((mock_conn *)c)->in_tx = 0;
  return BE_OK;
}
static int m_rollback(void *c, be_error **e) {
  mock_conn *m = c;
  atomic_fetch_add(&mock_rollbacks, 1);
  if (m->fail_rollback) {
    if (e) be_error_new(e, BE_E_STORAGE, "mock: rollback failed");
    return BE_E_STORAGE;
  }
  m->in_tx = 0;
  return BE_OK;
}
static int m_sp(void *c, const char *n, be_error **e) {
  (void)c;
  (void)n;
  (void)e;
  return BE_OK;
}
static int64_t m_lastid(void *c) {
  (void)c;
  return 0;
}
static int64_t m_changes(void *c) {
  (void)c;
  return 0;
}
static atomic_int mock_ping_gate; /* the next ping */
static int m_ping(void *c, be_error **e) {
  atomic_fetch_add(&mock_pings, 1);
  gate_pass(&mock_ping_gate);
  return ((mock_conn *)c)->dead ? m_lost(e) : BE_OK;
}
static int32_t m_blimit(void *c) {
  (void)c;
  return 999;
}
static int32_t m_intx(void *c) { return ((mock_conn *)c)->in_tx; }

static const be_driver mock_driver = {
  .version = BE_DRIVER_VERSION, .name = "mock", .open = m_open, .close = m_close, .prepare = m_prepare, .bind_null = m_bnull, .bind_int64 = m_bint, .bind_double = m_bdbl, .bind_text = m_btext, .bind_blob = m_bblob, .step = m_step, .column_count = m_ccount, .column_name = m_cname, .column_type = m_ctype, .column_int64 = m_cint, .column_double = m_cdbl, .column_text = m_ctext, .column_blob = m_cblob, .reset = m_reset, .finalize = m_finalize, .exec = m_exec, .begin = m_begin, .commit = m_commit, .rollback = m_rollback, .savepoint = m_sp, .release = m_sp, .rollback_to = m_sp, .last_insert_id = m_lastid, .changes = m_changes, .ping = m_ping, .bind_limit = m_blimit, .in_transaction = m_intx};

/* lib/storage.h (internal; the tests link the static library) */
void *be__conn_native(be_conn *conn);
static mock_conn *native(be_conn *c) { return (mock_conn *)be__conn_native(c); }

/* ---- log capture ---- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_text[16384];

static void capture_log(int32_t level, const char *msg, const be_log_field *f, size_t n, void *ud) {
  (void)ud;
  (void)level;
  pthread_mutex_lock(&log_mu);
  size_t len = strlen(log_text);
  int w = snprintf(log_text + len, sizeof log_text - len, "%s", msg);
  for (size_t i = 0; i < n && w >= 0; i++) {
    len = strlen(log_text);
    w = snprintf(log_text + len, sizeof log_text - len, " %s=%s", f[i].key, f[i].value);
  }
  len = strlen(log_text);
  if (len + 1 < sizeof log_text) strcat(log_text, "\n");
  pthread_mutex_unlock(&log_mu);
}

static int log_has(const char *s) {
  pthread_mutex_lock(&log_mu);
  int r = strstr(log_text, s) != NULL;
  pthread_mutex_unlock(&log_mu);
  return r;
}

static void setup(void) {
  mock_reset();
  log_text[0] = '\0';
  be_log_set_handler(capture_log, NULL, BE_LOG_DEBUG, NULL);
}

static void teardown(void) { be_log_set_handler(NULL, NULL, BE_LOG_WARN, NULL); }

/* ---- helpers ---- */

static be_pool_options mock_opts(int32_t min, int32_t max) {
  be_pool_options o = BE_POOL_OPTIONS_INIT;
  o.driver = &mock_driver;
  o.dsn = "mock";
  o.name = "testpool";
  o.min_conns = min;
  o.max_conns = max;
  return o;
}

static be_pool *new_pool(const be_pool_options *o) {
  be_pool *p = NULL;
  be_error *e = NULL;
  int rc = be_pool_new(&p, o, &e);
  ck_assert_msg(rc == BE_OK, "be_pool_new: %s", be_error_message(e));
  be_error_free(e);
  return p;
}

static be_pool_stats stats(be_pool *p) {
  be_pool_stats s = BE_POOL_STATS_INIT;
  ck_assert_int_eq(be_pool_stats_get(&s, p, NULL), BE_OK);
  return s;
}

static int64_t mono_ms(void) { return be_clock_now_ns(NULL) / BE_NS_PER_MS; }

static void wait_for_waiting(be_pool *p, int32_t n) {
  for (int i = 0; i < 5000; i++) {
    if (stats(p).waiting == n) return;
    usleep(1000);
  }
  ck_abort_msg("never reached %d waiters", (int)n);
}

/* ---- options and argument errors ---- */

START_TEST(options_defaults) {
  be_pool_options o;
  ck_assert_int_eq(be_pool_options_init(&o, BE_POOL_OPTIONS_VERSION), BE_OK);
  ck_assert_uint_eq(o.version, BE_POOL_OPTIONS_VERSION);
  ck_assert_int_eq(o.min_conns, 2);
  ck_assert_int_eq(o.max_conns, 10);
  ck_assert_int_eq(o.acquire_timeout_ms, 30000);
  ck_assert_int_eq(o.validation_window_ms, 500);
  ck_assert_int_eq(o.max_lifetime_ms, 30 * 60 * 1000);
  ck_assert_int_eq(o.lifetime_jitter_permille, 25);
  ck_assert_int_eq(o.idle_timeout_ms, 10 * 60 * 1000);
  ck_assert_int_eq(o.usage_alert_percent, 80);
  ck_assert_int_eq(o.deadlock_detection, 1);
  ck_assert_int_eq(o.background_thread, 0);
  ck_assert_int_eq(o.slow_query_threshold_ms, 100);
  ck_assert_int_eq(o.slow_query_capacity, 128);
  ck_assert_ptr_null(o.slowlog);
  ck_assert_ptr_null(o.driver);
  ck_assert_ptr_null(o.stmt_stats);
  ck_assert_ptr_null(o.incidents);
  ck_assert_int_eq(o.usage_alert_interval_ms, 10000);
  ck_assert_int_eq(be_pool_options_init(&o, 99), BE_E_MISUSE);
  ck_assert_int_eq(be_pool_options_init(&o, 0), BE_E_MISUSE);
  ck_assert_int_eq(be_pool_options_init(NULL, BE_POOL_OPTIONS_VERSION), BE_E_MISUSE);
}
END_TEST

/* A caller built against version 1 has a shorter struct: init writes only
 * its fields, and the pool reads only those (the rest at defaults). */
START_TEST(options_version_1_still_works) {
  size_t v1 = offsetof(be_pool_options, stmt_stats);
  unsigned char *buf = malloc(v1 + 64);
  memset(buf, 0xA5, v1 + 64);
  be_pool_options *o = (be_pool_options *)(void *)buf;
  ck_assert_int_eq(be_pool_options_init(o, 1), BE_OK);
  for (size_t i = v1; i < v1 + 64; i++) ck_assert_uint_eq(buf[i], 0xA5); /* nothing past v1 */
  ck_assert_uint_eq(o->version, 1);
  o->driver = &mock_driver;
  o->dsn = "mock";
  o->min_conns = 1;
  o->max_conns = 1;
  be_pool *p = NULL;
  ck_assert_int_eq(be_pool_new(&p, o, NULL), BE_OK); /* the 0xA5 bytes are never read */
  be_conn *c = NULL;
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
    be_pool_release(p, c);
  }
  be_pool_free(p);
  free(buf);
}
END_TEST

static void expect_bad(be_pool_options o, int code, const char *field) {
  be_pool *p = (be_pool *)1;
  be_error *e = NULL;
  ck_assert_int_eq(be_pool_new(&p, &o, &e), code);
  ck_assert_ptr_null(p);
  ck_assert_int_eq(be_error_code(e), code);
  if (field) {
    ck_assert_uint_eq(be_error_field_count(e), 1);
    ck_assert_str_eq(be_error_field_name(e, 0), field);
  }
  be_error_free(e);
}

START_TEST(bad_options) {
  be_pool_options o = mock_opts(2, 10);
  o.version = 7;
  expect_bad(o, BE_E_MISUSE, NULL);
  o = mock_opts(2, 10);
  o.driver = NULL; /* chosen by dsn, which is missing */
  o.dsn = NULL;
  expect_bad(o, BE_E_MISUSE, NULL);
  o = mock_opts(2, 10);
  o.dsn = NULL;
  expect_bad(o, BE_E_MISUSE, NULL);
  expect_bad(mock_opts(3, 2), BE_E_VALIDATION, "min_conns");
  expect_bad(mock_opts(0, 0), BE_E_VALIDATION, "max_conns");
  expect_bad(mock_opts(-1, 2), BE_E_VALIDATION, "min_conns");
  o = mock_opts(1, 2);
  o.acquire_timeout_ms = -1;
  expect_bad(o, BE_E_VALIDATION, "acquire_timeout_ms");
  o = mock_opts(1, 2);
  o.usage_alert_percent = 101;
  expect_bad(o, BE_E_VALIDATION, "usage_alert_percent");
  o = mock_opts(1, 2);
  o.validation_window_ms = -2;
  expect_bad(o, BE_E_VALIDATION, "validation_window_ms");
  o = mock_opts(1, 2);
  o.lifetime_jitter_permille = 1001;
  expect_bad(o, BE_E_VALIDATION, "lifetime_jitter_permille");
  o = mock_opts(1, 2);
  o.background_thread = 1;
  o.maintenance_interval_ms = 0;
  expect_bad(o, BE_E_VALIDATION, "maintenance_interval_ms");
  o = mock_opts(1, 2);
  o.slow_query_threshold_ms = -2;
  expect_bad(o, BE_E_VALIDATION, "slow_query_threshold_ms");
  o = mock_opts(0, 2);
  o.slow_query_capacity = 0;
  expect_bad(o, BE_E_VALIDATION, "slow_query_capacity");
  o.slow_query_threshold_ms = -1; /* no log: its capacity does not matter */
  be_pool *nolog = new_pool(&o);
  ck_assert_ptr_null(be_pool_slowlog(nolog));
  ck_assert_ptr_nonnull(be_pool_query_stats(nolog));
  be_pool_free(nolog);

  ck_assert_int_eq(be_pool_new(NULL, &o, NULL), BE_E_MISUSE);
  be_pool *p = NULL;
  ck_assert_int_eq(be_pool_new(&p, NULL, NULL), BE_E_MISUSE);
  ck_assert_int_eq(atomic_load(&mock_opens), 0);
}
END_TEST

START_TEST(null_arguments) {
  be_conn *c = (be_conn *)1;
  be_error *e = NULL;
  ck_assert_int_eq(be_pool_acquire(&c, NULL, &e), BE_E_MISUSE);
  ck_assert_ptr_null(c);
  ck_assert_int_eq(be_error_code(e), BE_E_MISUSE);
  be_error_free(e);
  ck_assert_int_eq(be_pool_acquire_at(NULL, NULL, NULL, 0, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_pool_maintain(NULL, NULL), BE_E_MISUSE);
  be_pool_stats s = BE_POOL_STATS_INIT;
  ck_assert_int_eq(be_pool_stats_get(&s, NULL, NULL), BE_E_MISUSE);
  be_pool_release(NULL, NULL);
  be_pool_close(NULL);
  be_pool_free(NULL);
  ck_assert_ptr_null(be_pool_query_stats(NULL));
  ck_assert_ptr_null(be_pool_slowlog(NULL));

  be_pool_options o = mock_opts(1, 2);
  be_pool *p = new_pool(&o);
  ck_assert_int_eq(be_pool_acquire(NULL, p, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_pool_stats_get(NULL, p, NULL), BE_E_MISUSE);
  s.version = 0;
  ck_assert_int_eq(be_pool_stats_get(&s, p, NULL), BE_E_MISUSE);
  s.version = BE_POOL_STATS_VERSION + 1;
  ck_assert_int_eq(be_pool_stats_get(&s, p, NULL), BE_E_MISUSE);
  be_pool_release(p, NULL);
  be_pool_free(p);
}
END_TEST

/* ---- creation ---- */

START_TEST(new_opens_min_and_reports_unreachable) {
  be_pool_options o = mock_opts(2, 10);
  be_pool *p = new_pool(&o);
  ck_assert_int_eq(atomic_load(&mock_opens), 2);
  be_pool_stats s = stats(p);
  ck_assert_int_eq(s.total, 2);
  ck_assert_int_eq(s.idle, 2);
  ck_assert_int_eq(s.in_use, 0);
  ck_assert_int_eq(s.min_conns, 2);
  ck_assert_int_eq(s.max_conns, 10);
  ck_assert_uint_eq(s.creates, 2);
  be_pool_free(p);
  ck_assert_int_eq(atomic_load(&mock_closes), 2);

  /* unreachable: nothing is left open */
  mock_reset();
  be_pool_options o2 = mock_opts(3, 3);
  atomic_store(&mock_fail_open, 1);
  be_error *e = NULL;
  p = (be_pool *)1;
  ck_assert_int_eq(be_pool_new(&p, &o2, &e), BE_E_DB_UNREACHABLE);
  ck_assert_ptr_null(p);
  ck_assert_int_eq(be_error_http_status(e), 503);
  ck_assert_ptr_nonnull(be_error_cause(e));
  ck_assert_ptr_nonnull(strstr(be_error_message(e), "testpool"));
  be_error_free(e);
  ck_assert_int_eq(atomic_load(&mock_opens), atomic_load(&mock_closes));

  /* min 0 opens nothing up front; the first acquire opens lazily */
  mock_reset();
  be_pool_options o3 = mock_opts(0, 2);
  p = new_pool(&o3);
  ck_assert_int_eq(atomic_load(&mock_opens), 0);
  atomic_store(&mock_fail_open, 1);
  be_conn *c = NULL;
  ck_assert_int_eq(be_pool_acquire(&c, p, &e), BE_E_DB_UNREACHABLE);
  ck_assert_ptr_null(c);
  ck_assert_int_eq(be_error_code(be_error_cause(e)), BE_E_DB_UNREACHABLE);
  be_error_free(e);
  ck_assert_uint_eq(stats(p).open_failures, 1);
  ck_assert_int_eq(stats(p).total, 0);
  atomic_store(&mock_fail_open, 0);
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  be_pool_release(p, c);
  be_pool_free(p);
}
END_TEST

/* ---- hand-out order ---- */

START_TEST(idle_reused_most_recent_first) {
  be_pool_options o = mock_opts(3, 3);
  be_pool *p = new_pool(&o);
  be_conn *a, *b, *c;
  ck_assert_int_eq(be_pool_acquire(&a, p, NULL), BE_OK);
  ck_assert_int_eq(be_pool_acquire(&b, p, NULL), BE_OK);
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  ck_assert_ptr_ne(a, b);
  ck_assert_ptr_ne(b, c);
  be_pool_release(p, b);
  be_pool_release(p, a);
  be_pool_release(p, c);
  be_conn *x, *y, *z;
  ck_assert_int_eq(be_pool_acquire(&x, p, NULL), BE_OK);
  ck_assert_int_eq(be_pool_acquire(&y, p, NULL), BE_OK);
  ck_assert_int_eq(be_pool_acquire(&z, p, NULL), BE_OK);
  ck_assert_ptr_eq(x, c); /* last in, first out */
  ck_assert_ptr_eq(y, a);
  ck_assert_ptr_eq(z, b);
  be_pool_release(p, x);
  be_pool_release(p, y);
  be_pool_release(p, z);
  ck_assert_int_eq(atomic_load(&mock_pings), 0); /* hot: no validation */
  be_pool_free(p);
}
END_TEST

/* ---- FIFO under contention: 8 threads on max 2 ---- */

#define NT 8

typedef struct fifo_ctx {
  be_pool *pool;
  pthread_mutex_t mu;
  int served[NT];
  _Atomic int nserved;
  _Atomic int release_ok[NT];
  _Atomic int failures;
} fifo_ctx;

typedef struct fifo_arg {
  fifo_ctx *ctx;
  int index;
} fifo_arg;

static void *fifo_worker(void *arg) {
  fifo_arg *a = arg;
  fifo_ctx *x = a->ctx;
  be_conn *c = NULL;
  be_error *e = NULL;
  if (be_pool_acquire(&c, x->pool, &e) != BE_OK) {
    atomic_fetch_add(&x->failures, 1);
    be_error_free(e);
    return NULL;
  }
  pthread_mutex_lock(&x->mu);
  x->served[atomic_load(&x->nserved)] = a->index;
  atomic_fetch_add(&x->nserved, 1);
  pthread_mutex_unlock(&x->mu);
  while (!atomic_load(&x->release_ok[a->index])) usleep(200);
  be_pool_release(x->pool, c);
  return NULL;
}

static void wait_served(fifo_ctx *x, int n) {
  for (int i = 0; i < 10000 && atomic_load(&x->nserved) < n; i++) usleep(500);
  ck_assert_int_eq(atomic_load(&x->nserved), n);
}

START_TEST(fifo_eight_threads_on_two) {
  be_pool_options o = mock_opts(2, 2);
  o.acquire_timeout_ms = 20000;
  fifo_ctx x;
  memset(&x, 0, sizeof x);
  pthread_mutex_init(&x.mu, NULL);
  x.pool = new_pool(&o);
  be_conn *c1, *c2;
  ck_assert_int_eq(be_pool_acquire(&c1, x.pool, NULL), BE_OK);
  ck_assert_int_eq(be_pool_acquire(&c2, x.pool, NULL), BE_OK);

  pthread_t t[NT];
  fifo_arg args[NT];
  for (int i = 0; i < NT; i++) { /* enqueue order = index */
    args[i].ctx = &x;
    args[i].index = i;
    pthread_create(&t[i], NULL, fifo_worker, &args[i]);
    wait_for_waiting(x.pool, i + 1);
  }
  be_pool_stats s = stats(x.pool);
  ck_assert_int_eq(s.waiting, NT);
  ck_assert_int_gt(s.oldest_waiter_ns, 0);

  /* one grant at a time, so the served order is exactly the grant order */
  be_pool_release(x.pool, c1);
  wait_served(&x, 1);
  be_pool_release(x.pool, c2);
  wait_served(&x, 2);
  for (int k = 0; k < NT; k++) {
    atomic_store(&x.release_ok[x.served[k]], 1);
    if (k + 2 < NT) wait_served(&x, k + 3);
  }
  for (int i = 0; i < NT; i++) pthread_join(t[i], NULL);
  ck_assert_int_eq(atomic_load(&x.failures), 0);
  for (int i = 0; i < NT; i++) ck_assert_int_eq(x.served[i], i);

  s = stats(x.pool);
  ck_assert_int_eq(s.in_use, 0);
  ck_assert_int_eq(s.idle, 2);
  ck_assert_int_eq(s.waiting, 0);
  ck_assert_uint_eq(s.acquires, 2 + NT);
  ck_assert_uint_eq(s.waits, NT);
  ck_assert_uint_eq(s.handoffs, NT);
  ck_assert_uint_eq(s.timeouts, 0);
  ck_assert_uint_eq(s.creates, 2);
  ck_assert_int_gt(s.wait_max_ns, 0);
  ck_assert_int_eq(s.oldest_waiter_ns, 0);
  be_pool_free(x.pool);
  pthread_mutex_destroy(&x.mu);
}
END_TEST

/* free-running stress: nothing lost, never more than max out at once */
typedef struct stress_ctx {
  be_pool *pool;
  _Atomic int out;
  _Atomic int max_seen;
  _Atomic int fails;
  int iters;
} stress_ctx;

static void *stress_worker(void *arg) {
  stress_ctx *x = arg;
  for (int i = 0; i < x->iters; i++) {
    be_conn *c = NULL;
    be_error *e = NULL;
    if (be_pool_acquire(&c, x->pool, &e) != BE_OK) {
      atomic_fetch_add(&x->fails, 1);
      be_error_free(e);
      continue;
    }
    int now = atomic_fetch_add(&x->out, 1) + 1;
    int m = atomic_load(&x->max_seen);
    while (now > m && !atomic_compare_exchange_weak(&x->max_seen, &m, now)) {
    }
    if (i % 16 == 0) usleep(50);
    atomic_fetch_sub(&x->out, 1);
    be_pool_release(x->pool, c);
  }
  return NULL;
}

START_TEST(stress_nothing_lost) {
  be_pool_options o = mock_opts(0, 2);
  o.acquire_timeout_ms = 20000;
  stress_ctx x = {.iters = 2000};
  x.pool = new_pool(&o);
  pthread_t t[NT];
  for (int i = 0; i < NT; i++) pthread_create(&t[i], NULL, stress_worker, &x);
  for (int i = 0; i < NT; i++) pthread_join(t[i], NULL);
  ck_assert_int_eq(atomic_load(&x.fails), 0);
  ck_assert_int_le(atomic_load(&x.max_seen), 2);
  be_pool_stats s = stats(x.pool);
  ck_assert_uint_eq(s.acquires, (uint64_t)NT * 2000);
  ck_assert_int_eq(s.in_use, 0);
  ck_assert_int_le(s.total, 2);
  ck_assert_uint_le(s.creates, 2);
  ck_assert_int_ge(s.wait_p99_ns, s.wait_p50_ns);
  be_pool_free(x.pool);
  ck_assert_int_eq(atomic_load(&mock_opens), atomic_load(&mock_closes));
}
END_TEST

/* ---- exhaustion, deadlock, closed ---- */

typedef struct acq_result {
  be_pool *pool;
  int rc;
  be_error *err;
  int64_t elapsed_ms;
} acq_result;

static void *acquire_once(void *arg) {
  acq_result *r = arg;
  be_conn *c = NULL;
  int64_t t0 = mono_ms();
  r->rc = be_pool_acquire(&c, r->pool, &r->err);
  r->elapsed_ms = mono_ms() - t0;
  if (c) be_pool_release(r->pool, c);
  return NULL;
}

START_TEST(exhaustion_times_out_with_state) {
  be_pool_options o = mock_opts(1, 1);
  o.acquire_timeout_ms = 200;
  be_pool *p = new_pool(&o);
  be_conn *held;
  int held_line = __LINE__ + 1;
  ck_assert_int_eq(be_pool_acquire(&held, p, NULL), BE_OK);

  acq_result r = {.pool = p};
  pthread_t t;
  pthread_create(&t, NULL, acquire_once, &r);
  pthread_join(t, NULL);
  ck_assert_int_eq(r.rc, BE_E_POOL_EXHAUSTED);
  ck_assert_int_ge(r.elapsed_ms, 150);
  ck_assert_int_lt(r.elapsed_ms, 2000);
  ck_assert_int_eq(be_error_http_status(r.err), 503);
  const char *m = be_error_message(r.err);
  ck_assert_ptr_nonnull(strstr(m, "in_use=1"));
  ck_assert_ptr_nonnull(strstr(m, "idle=0"));
  ck_assert_ptr_nonnull(strstr(m, "waiting=0"));
  ck_assert_ptr_nonnull(strstr(m, "max=1"));
  char site[64];
  snprintf(site, sizeof site, "test_pool.c:%d", held_line);
  ck_assert_msg(strstr(m, site) != NULL, "message names the holder: %s", m);
  be_error_free(r.err);
  ck_assert(log_has("pool exhausted"));

  be_pool_stats s = stats(p);
  ck_assert_uint_eq(s.timeouts, 1);
  ck_assert_uint_eq(s.waits, 1);
  ck_assert_int_eq(s.waiting, 0);
  ck_assert_int_ge(s.wait_max_ns, 150 * BE_NS_PER_MS);

  /* timeout 0: fail at once */
  be_pool_release(p, held);
  be_pool_free(p);
  o.acquire_timeout_ms = 0;
  o.deadlock_detection = 0;
  p = new_pool(&o);
  ck_assert_int_eq(be_pool_acquire(&held, p, NULL), BE_OK);
  int64_t t0 = mono_ms();
  be_conn *c = NULL;
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_E_POOL_EXHAUSTED);
  ck_assert_int_lt(mono_ms() - t0, 100);
  be_pool_release(p, held);
  be_pool_free(p);
}
END_TEST

START_TEST(self_deadlock_fails_fast) {
  be_pool_options o = mock_opts(1, 2);
  o.acquire_timeout_ms = 30000;
  be_pool *p = new_pool(&o);
  be_conn *a, *b, *c = NULL;
  ck_assert_int_eq(be_pool_acquire(&a, p, NULL), BE_OK);
  ck_assert_int_eq(be_pool_acquire(&b, p, NULL), BE_OK); /* not full yet: fine */
  be_error *e = NULL;
  int64_t t0 = mono_ms();
  ck_assert_int_eq(be_pool_acquire(&c, p, &e), BE_E_POOL_DEADLOCK);
  ck_assert_int_lt(mono_ms() - t0, 1000);
  ck_assert_ptr_null(c);
  ck_assert_int_eq(be_error_code(e), BE_E_POOL_DEADLOCK);
  ck_assert_ptr_nonnull(strstr(be_error_message(e), "max=2"));
  be_error_free(e);
  ck_assert_uint_eq(stats(p).deadlocks, 1);
  ck_assert(log_has("self-deadlock"));

  /* another thread simply waits (and here times out) */
  be_pool_release(p, a);
  be_pool_release(p, b);
  be_pool_free(p);
  o.acquire_timeout_ms = 100;
  p = new_pool(&o);
  ck_assert_int_eq(be_pool_acquire(&a, p, NULL), BE_OK);
  ck_assert_int_eq(be_pool_acquire(&b, p, NULL), BE_OK);
  acq_result r = {.pool = p};
  pthread_t t;
  pthread_create(&t, NULL, acquire_once, &r);
  pthread_join(t, NULL);
  ck_assert_int_eq(r.rc, BE_E_POOL_EXHAUSTED);
  be_error_free(r.err);
  be_pool_release(p, a);
  be_pool_release(p, b);
  be_pool_free(p);

  /* detection off: the same thread waits out the timeout instead */
  o.deadlock_detection = 0;
  o.acquire_timeout_ms = 50;
  p = new_pool(&o);
  ck_assert_int_eq(be_pool_acquire(&a, p, NULL), BE_OK);
  ck_assert_int_eq(be_pool_acquire(&b, p, NULL), BE_OK);
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_E_POOL_EXHAUSTED);
  be_pool_release(p, a);
  be_pool_release(p, b);
  be_pool_free(p);
}
END_TEST

/* be_pool_free() while another thread's be_pool_close() is under way
 * (closing an idle connection, or joining the maintenance thread, which
 * is opening one): the free's own close returned at once and the free
 * went on, so the pool was never freed (the close had dropped its
 * reference without checking), or the maintenance thread freed it and
 * then locked its mutex (heap-use-after-free under ASan). The free now
 * waits for the close to end. */
typedef struct freer {
  be_pool *p;
  atomic_int done;
} freer;

static void *close_pool(void *p) {
  be_pool_close(p);
  return NULL;
}

static void *free_pool(void *arg) {
  freer *f = arg;
  be_pool_free(f->p);
  atomic_store(&f->done, 1);
  return NULL;
}

/* Close p on one thread while the gate holds it, free p on another;
 * the free must still be waiting when the gate opens. */
static void free_during_close(be_pool *p, atomic_int *gate) {
  pthread_t a, b;
  pthread_create(&a, NULL, close_pool, p);
  if (gate == &mock_close_gate) wait_at_least(gate, GATE_HOLDING);
  else usleep(20 * 1000); /* the close is joining the maintenance thread */
  freer f = {p, 0};
  pthread_create(&b, NULL, free_pool, &f);
  usleep(50 * 1000);
  ck_assert_msg(!atomic_load(&f.done), "be_pool_free returned during a close");
  atomic_store(gate, GATE_OPEN);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  ck_assert_int_eq(atomic_load(&f.done), 1);
}

START_TEST(free_waits_for_a_close_under_way) {
  be_pool_options o = mock_opts(1, 2);
  atomic_store(&mock_close_gate, GATE_ARMED);
  free_during_close(new_pool(&o), &mock_close_gate); /* closing its idle connection */
  ck_assert_int_eq(atomic_load(&mock_closes), atomic_load(&mock_opens));
  o.background_thread = 1;
  o.maintenance_interval_ms = 20;
  o.max_lifetime_ms = 10;
  o.lifetime_jitter_permille = 0;
  be_pool *p = new_pool(&o);
  atomic_store(&mock_open_gate, GATE_ARMED); /* maintenance reopens the expired one */
  wait_at_least(&mock_open_gate, GATE_HOLDING);
  free_during_close(p, &mock_open_gate);
  ck_assert_int_eq(atomic_load(&mock_closes), atomic_load(&mock_opens));
  /* the other way round: a close waits while the free's own close ends,
   * and the free then freed the pool under the waiting close */
  o.background_thread = 0;
  freer f = {new_pool(&o), 0};
  atomic_store(&mock_close_gate, GATE_ARMED);
  pthread_t a, b;
  pthread_create(&b, NULL, free_pool, &f);
  wait_at_least(&mock_close_gate, GATE_HOLDING); /* the free's close holds */
  pthread_create(&a, NULL, close_pool, f.p);
  usleep(20 * 1000); /* the second close waits for the first */
  atomic_store(&mock_close_gate, GATE_OPEN);
  pthread_join(b, NULL);
  pthread_join(a, NULL);
  ck_assert_int_eq(atomic_load(&mock_closes), atomic_load(&mock_opens));
}
END_TEST

/* A connection handed over by a thread that then exited is not held by
 * the next thread to start: the holder's token was once the address of a
 * thread-local, which the new thread may get, and it failed with
 * BE_E_POOL_DEADLOCK at once instead of waiting and timing out. */
typedef struct handover {
  be_pool *pool;
  be_conn *conn;
  int rc;
} handover;

static void *acquire_and_exit(void *arg) {
  handover *h = arg;
  h->rc = be_pool_acquire(&h->conn, h->pool, NULL);
  return NULL;
}

START_TEST(exited_holders_connection_is_not_the_next_threads) {
  be_pool_options o = mock_opts(1, 1);
  o.acquire_timeout_ms = 100;
  be_pool *p = new_pool(&o);
  for (int round = 0; round < 8; round++) { /* glibc reuses an exited thread's block */
    handover h = {p, NULL, 0};
    pthread_t t;
    pthread_create(&t, NULL, acquire_and_exit, &h);
    pthread_join(t, NULL);
    ck_assert_int_eq(h.rc, BE_OK); /* h.conn is the main thread's now */
    acq_result r = {.pool = p};
    pthread_create(&t, NULL, acquire_once, &r);
    pthread_join(t, NULL);
    ck_assert_msg(r.rc == BE_E_POOL_EXHAUSTED, "round %d: rc %d (%s)", round, r.rc,
                  be_error_message(r.err));
    be_error_free(r.err);
    be_pool_release(p, h.conn);
  }
  ck_assert_uint_eq(stats(p).deadlocks, 0);
  be_pool_free(p);
}
END_TEST

START_TEST(close_wakes_waiters) {
  be_pool_options o = mock_opts(1, 1);
  o.acquire_timeout_ms = 20000;
  be_pool *p = new_pool(&o);
  be_conn *held;
  ck_assert_int_eq(be_pool_acquire(&held, p, NULL), BE_OK);
  acq_result r[3];
  pthread_t t[3];
  for (int i = 0; i < 3; i++) {
    r[i] = (acq_result){.pool = p};
    pthread_create(&t[i], NULL, acquire_once, &r[i]);
    wait_for_waiting(p, i + 1);
  }
  be_pool_close(p);
  for (int i = 0; i < 3; i++) {
    pthread_join(t[i], NULL);
    ck_assert_int_eq(r[i].rc, BE_E_POOL_CLOSED);
    ck_assert_int_lt(r[i].elapsed_ms, 10000);
    ck_assert_int_eq(be_error_http_status(r[i].err), 503);
    be_error_free(r[i].err);
  }
  be_conn *c = NULL;
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_E_POOL_CLOSED);
  ck_assert_int_eq(be_pool_maintain(p, NULL), BE_E_POOL_CLOSED);
  be_pool_close(p); /* second close: no-op */
  ck_assert_int_eq(atomic_load(&mock_closes), 0);
  be_pool_release(p, held); /* closed pool: the connection is closed */
  ck_assert_int_eq(atomic_load(&mock_closes), 1);
  be_pool_stats s = stats(p);
  ck_assert_int_eq(s.total, 0);
  ck_assert_uint_eq(s.waits, 3);
  be_pool_free(p);
}
END_TEST

START_TEST(free_with_connection_out_defers) {
  be_pool_options o = mock_opts(2, 2);
  be_pool *p = new_pool(&o);
  be_conn *held;
  ck_assert_int_eq(be_pool_acquire(&held, p, NULL), BE_OK);
  be_pool_free(p); /* the idle one closes now, the pool lives on */
  ck_assert_int_eq(atomic_load(&mock_closes), 1);
  ck_assert(log_has("still out"));
  be_pool_release(p, held); /* closes it and frees the pool (ASan checks) */
  ck_assert_int_eq(atomic_load(&mock_closes), 2);
}
END_TEST


/* be_pool_free() while callers wait and a connection is out: the waiters
 * leave with POOL_CLOSED, and whoever is last out frees (ASan/TSan check) */
START_TEST(free_with_waiters_and_holder) {
  be_pool_options o = mock_opts(1, 1);
  o.acquire_timeout_ms = 20000;
  be_pool *p = new_pool(&o);
  be_conn *held;
  ck_assert_int_eq(be_pool_acquire(&held, p, NULL), BE_OK);
  acq_result r[4];
  pthread_t t[4];
  for (int i = 0; i < 4; i++) {
    r[i] = (acq_result){.pool = p};
    pthread_create(&t[i], NULL, acquire_once, &r[i]);
    wait_for_waiting(p, i + 1);
  }
  be_pool_free(p);
  be_pool_release(p, held); /* may or may not be the last one out */
  for (int i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    ck_assert_int_eq(r[i].rc, BE_E_POOL_CLOSED);
    be_error_free(r[i].err);
  }
  ck_assert_int_eq(atomic_load(&mock_opens), atomic_load(&mock_closes));
}
END_TEST

/* ---- validation and broken connections ---- */

/* A database file deleted while the pool runs: a write on a held
 * connection is refused, an idle one is found dead when validated, and no
 * connection opened afterwards creates an empty file in its place. */
START_TEST(deleted_database_is_not_recreated) {
  be_clock *clk;
  ck_assert_int_eq(be_clock_fake_new(&clk, 0, 0, NULL), BE_OK);
  char *dir = tu_tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/pool.db", dir);
  be_pool_options o = BE_POOL_OPTIONS_INIT;
  o.driver = be_sqlite_driver();
  o.dsn = path;
  o.min_conns = 1;
  o.max_conns = 3;
  o.clock = clk;
  be_pool *p = new_pool(&o); /* its first connection creates the file */
  be_conn *a = NULL, *b = NULL;
  ck_assert_int_eq(be_pool_acquire(&a, p, NULL), BE_OK);
  ck_assert_int_eq(be_conn_exec(a, "CREATE TABLE t(x)", NULL), BE_OK);
  ck_assert_int_eq(remove(path), 0);

  /* another connection would be a new, empty database: refused */
  be_error *e = NULL;
  ck_assert_int_eq(be_pool_acquire(&b, p, &e), BE_E_DB_UNREACHABLE);
  ck_assert_ptr_nonnull(strstr(be_error_message(e), "does not exist"));
  be_error_free(e);
  ck_assert(!tu_exists(path));
  /* the held connection's writes would go nowhere: refused, and it is dropped */
  ck_assert_int_eq(be_conn_begin(a, BE_TX_IMMEDIATE, &e), BE_E_CONN_LOST);
  ck_assert_ptr_nonnull(strstr(be_error_message(e), path));
  be_error_free(e);
  be_pool_release(p, a);
  be_pool_stats s = stats(p);
  ck_assert_uint_eq(s.broken, 1);
  ck_assert_int_eq(s.total, 0);
  ck_assert_int_eq(s.in_use, 0);

  /* an idle connection past the validation window is checked too */
  ck_assert_int_eq(be_conn_open(&b, be_sqlite_driver(), path, NULL), BE_OK); /* recreate */
  be_conn_close(b);
  ck_assert_int_eq(be_pool_acquire(&a, p, NULL), BE_OK);
  be_pool_release(p, a);
  ck_assert_int_eq(remove(path), 0);
  be_clock_advance(clk, 600 * BE_NS_PER_MS, NULL);
  ck_assert_int_eq(be_pool_acquire(&a, p, &e), BE_E_DB_UNREACHABLE);
  be_error_free(e);
  s = stats(p);
  ck_assert_uint_eq(s.validations, 1);
  ck_assert_uint_eq(s.broken, 2);
  ck_assert_int_eq(s.in_use, 0);
  ck_assert_int_eq(s.total, 0);
  ck_assert(!tu_exists(path));
  be_pool_free(p);
  be_clock_free(clk);
  tu_rmdir(dir);
}
END_TEST


START_TEST(dead_idle_connection_replaced) {
  be_clock *clk;
  ck_assert_int_eq(be_clock_fake_new(&clk, 0, 0, NULL), BE_OK);
  be_pool_options o = mock_opts(2, 2);
  o.clock = clk;
  be_pool *p = new_pool(&o);
  be_conn *c;
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  ck_assert_int_eq(atomic_load(&mock_pings), 0); /* fresh: no ping */
  be_pool_release(p, c);

  be_clock_advance(clk, 400 * BE_NS_PER_MS, NULL); /* within the window */
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  ck_assert_int_eq(atomic_load(&mock_pings), 0);
  be_pool_release(p, c);

  /* both idle connections die, then sit idle past the window */
  be_conn *a, *b;
  ck_assert_int_eq(be_pool_acquire(&a, p, NULL), BE_OK);
  ck_assert_int_eq(be_pool_acquire(&b, p, NULL), BE_OK);
  native(a)->dead = 1;
  native(b)->dead = 1;
  be_pool_release(p, a);
  be_pool_release(p, b);
  be_clock_advance(clk, 600 * BE_NS_PER_MS, NULL);
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  ck_assert_int_eq(native(c)->dead, 0); /* (the address may be reused: compare ids) */
  ck_assert_int_eq(native(c)->id, 3);
  be_pool_stats s = stats(p);
  ck_assert_uint_eq(s.validations, 2);
  ck_assert_uint_eq(s.broken, 2);
  ck_assert_uint_eq(s.creates, 3);
  ck_assert_int_eq(s.total, 1);
  ck_assert_int_eq(s.in_use, 1);
  ck_assert_uint_eq(s.acquires, 5);
  be_pool_release(p, c);

  /* replacement impossible: the caller gets DB_UNREACHABLE, not a dead conn */
  native(c)->dead = 1;
  be_clock_advance(clk, 600 * BE_NS_PER_MS, NULL);
  atomic_store(&mock_fail_open, 1);
  be_error *e = NULL;
  be_conn *d = NULL;
  ck_assert_int_eq(be_pool_acquire(&d, p, &e), BE_E_DB_UNREACHABLE);
  ck_assert_ptr_null(d);
  be_error_free(e);
  atomic_store(&mock_fail_open, 0);
  ck_assert_int_eq(stats(p).total, 0);
  ck_assert_int_eq(stats(p).in_use, 0);
  be_pool_free(p);
  be_clock_free(clk);
  ck_assert_int_eq(atomic_load(&mock_opens), atomic_load(&mock_closes));
}
END_TEST

START_TEST(broken_in_use_destroyed_on_release) {
  be_pool_options o = mock_opts(1, 1);
  o.acquire_timeout_ms = 5000;
  be_pool *p = new_pool(&o);
  be_conn *c;
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  native(c)->dead = 1;
  ck_assert_int_eq(be_conn_exec(c, "SELECT 1", NULL), BE_E_CONN_LOST);
  ck_assert_int_eq(be_conn_is_broken(c), 1);
  be_pool_release(p, c);
  be_pool_stats s = stats(p);
  ck_assert_int_eq(s.total, 0);
  ck_assert_uint_eq(s.broken, 1);
  ck_assert_int_eq(atomic_load(&mock_closes), 1);
  be_conn *d;
  ck_assert_int_eq(be_pool_acquire(&d, p, NULL), BE_OK);
  ck_assert_int_eq(be_conn_is_broken(d), 0);
  be_pool_release(p, d);

  /* a waiter blocked on a full pool gets a fresh connection when the
   * holder's breaks */
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  acq_result r = {.pool = p};
  pthread_t t;
  pthread_create(&t, NULL, acquire_once, &r);
  wait_for_waiting(p, 1);
  native(c)->dead = 1;
  be_conn_ping(c, NULL);
  be_pool_release(p, c);
  pthread_join(t, NULL);
  ck_assert_int_eq(r.rc, BE_OK);
  ck_assert_uint_eq(stats(p).broken, 2);
  be_pool_free(p);
  ck_assert_int_eq(atomic_load(&mock_opens), atomic_load(&mock_closes));
}
END_TEST

START_TEST(fault_driver_lost_connections_replaced) {
  be_driver *fd;
  be_fault *f;
  ck_assert_int_eq(be_fault_driver_new(&fd, &f, be_sqlite_driver(), NULL), BE_OK);
  be_clock *clk;
  ck_assert_int_eq(be_clock_fake_new(&clk, 0, 0, NULL), BE_OK);
  char *dir = tu_tempdir();
  char dsn[512];
  snprintf(dsn, sizeof dsn, "%s/pool.db", dir);
  be_pool_options o = BE_POOL_OPTIONS_INIT;
  o.driver = fd;
  o.dsn = dsn;
  o.min_conns = 2;
  o.max_conns = 2;
  o.clock = clk;
  be_pool *p = new_pool(&o);

  ck_assert_int_eq(be_fault_lose_connections(f, NULL), BE_OK); /* "database restart" */
  be_clock_advance(clk, BE_NS_PER_SEC, NULL);
  be_conn *c;
  be_error *e = NULL;
  ck_assert_int_eq(be_pool_acquire(&c, p, &e), BE_OK);
  ck_assert_int_eq(be_conn_exec(c, "CREATE TABLE IF NOT EXISTS t(x)", &e), BE_OK);
  be_pool_release(p, c);
  be_pool_stats s = stats(p);
  ck_assert_uint_eq(s.broken, 2);
  ck_assert_uint_eq(s.creates, 3);

  /* the next ping fails with "connection lost": replaced, caller unaware */
  be_clock_advance(clk, BE_NS_PER_SEC, NULL);
  be_fault_reset_counts(f);
  ck_assert_int_eq(be_fault_set(f, BE_FAULT_OP_PING, BE_FAULT_NTH, 1, BE_E_CONN_LOST, NULL), BE_OK);
  ck_assert_int_eq(be_pool_acquire(&c, p, &e), BE_OK);
  ck_assert_int_eq(be_conn_exec(c, "INSERT INTO t VALUES (1)", &e), BE_OK);
  be_pool_release(p, c);
  ck_assert_uint_eq(stats(p).broken, 3);
  ck_assert_int_eq(be_fault_injected(f, BE_FAULT_OP_PING), 1);

  /* open failing too: a typed DB_UNREACHABLE */
  be_clock_advance(clk, BE_NS_PER_SEC, NULL);
  ck_assert_int_eq(be_fault_set(f, BE_FAULT_OP_PING, BE_FAULT_FROM, 1, BE_E_CONN_LOST, NULL), BE_OK);
  ck_assert_int_eq(be_fault_set(f, BE_FAULT_OP_OPEN, BE_FAULT_FROM, 1, BE_E_DB_UNREACHABLE, NULL), BE_OK);
  ck_assert_int_eq(be_pool_acquire(&c, p, &e), BE_E_DB_UNREACHABLE);
  be_error_free(e);
  e = NULL;
  be_fault_clear(f, BE_FAULT_OP_ALL);
  ck_assert_int_eq(be_pool_maintain(p, NULL), BE_OK); /* refills to min */
  ck_assert_int_eq(stats(p).total, 2);
  be_pool_free(p);
  be_fault_free(f);
  be_clock_free(clk);
  tu_rmdir(dir);
}
END_TEST

/* ---- transactions left open ---- */

START_TEST(release_rolls_back_open_transaction) {
  char *dir = tu_tempdir();
  char dsn[512];
  snprintf(dsn, sizeof dsn, "%s/tx.db", dir);
  be_pool_options o = BE_POOL_OPTIONS_INIT;
  o.driver = be_sqlite_driver();
  o.dsn = dsn;
  o.min_conns = 1;
  o.max_conns = 1;
  be_pool *p = new_pool(&o);
  be_conn *c;
  int line = __LINE__ + 1;
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  ck_assert_int_eq(be_conn_exec(c, "CREATE TABLE t(x INTEGER)", NULL), BE_OK);
  ck_assert_int_eq(be_conn_begin(c, BE_TX_IMMEDIATE, NULL), BE_OK);
  ck_assert_int_eq(be_conn_exec(c, "INSERT INTO t VALUES (1)", NULL), BE_OK);
  ck_assert_int_eq(be_conn_in_transaction(c), 1);
  be_pool_release(p, c);
  ck_assert(log_has("open transaction"));
  char site[64];
  snprintf(site, sizeof site, "test_pool.c:%d", line);
  ck_assert(log_has(site));
  be_pool_stats s = stats(p);
  ck_assert_uint_eq(s.rollbacks, 1);
  ck_assert_int_eq(s.total, 1); /* kept: the rollback worked */

  be_conn *d;
  ck_assert_int_eq(be_pool_acquire(&d, p, NULL), BE_OK);
  ck_assert_ptr_eq(d, c);
  ck_assert_int_eq(be_conn_in_transaction(d), 0);
  be_stmt *st;
  ck_assert_int_eq(be_conn_prepare(&st, d, "SELECT count(*) FROM t", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(st, NULL), BE_ROW);
  ck_assert_int_eq(be_stmt_column_int64(st, 0), 0);
  be_stmt_finalize(st);
  be_pool_release(p, d);
  be_pool_free(p);
  tu_rmdir(dir);
}
END_TEST

START_TEST(failed_rollback_destroys) {
  be_pool_options o = mock_opts(1, 1);
  be_pool *p = new_pool(&o);
  be_conn *c;
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  ck_assert_int_eq(be_conn_begin(c, BE_TX_DEFERRED, NULL), BE_OK);
  native(c)->fail_rollback = 1;
  be_pool_release(p, c);
  be_pool_stats s = stats(p);
  ck_assert_uint_eq(s.rollbacks, 1);
  ck_assert_int_eq(s.total, 0);
  ck_assert_uint_eq(s.broken, 1);
  be_pool_free(p);
  ck_assert_int_eq(atomic_load(&mock_opens), atomic_load(&mock_closes));
}
END_TEST

/* ---- stats after a script ---- */

START_TEST(stats_exact_after_script) {
  be_clock *clk;
  ck_assert_int_eq(be_clock_fake_new(&clk, 0, 0, NULL), BE_OK);
  be_pool_options o = mock_opts(1, 3);
  o.clock = clk;
  o.acquire_timeout_ms = 0;
  be_pool *p = new_pool(&o);
  be_conn *a, *b, *c, *d = NULL;
  ck_assert_int_eq(be_pool_acquire(&a, p, NULL), BE_OK);              /* idle one */
  ck_assert_int_eq(be_pool_acquire(&b, p, NULL), BE_OK);              /* created */
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);              /* created */
  ck_assert_int_eq(be_pool_acquire(&d, p, NULL), BE_E_POOL_DEADLOCK); /* same thread, full */
  be_pool_release(p, b);
  native(c)->dead = 1;
  be_conn_ping(c, NULL);
  be_pool_release(p, c); /* broken: destroyed */
  be_clock_advance(clk, 2 * BE_NS_PER_SEC, NULL);
  ck_assert_int_eq(be_pool_acquire(&b, p, NULL), BE_OK); /* pinged: idle 2 s */

  be_pool_stats s = stats(p);
  ck_assert_uint_eq(s.version, BE_POOL_STATS_VERSION);
  ck_assert_int_eq(s.total, 2);
  ck_assert_int_eq(s.in_use, 2);
  ck_assert_int_eq(s.idle, 0);
  ck_assert_int_eq(s.waiting, 0);
  ck_assert_int_eq(s.opening, 0);
  ck_assert_uint_eq(s.acquires, 4);
  ck_assert_uint_eq(s.waits, 0);
  ck_assert_uint_eq(s.handoffs, 0);
  ck_assert_uint_eq(s.timeouts, 0);
  ck_assert_uint_eq(s.deadlocks, 1);
  ck_assert_uint_eq(s.open_failures, 0);
  ck_assert_uint_eq(s.creates, 3);
  ck_assert_uint_eq(s.destroys, 1);
  ck_assert_uint_eq(s.validations, 1);
  ck_assert_uint_eq(s.broken, 1);
  ck_assert_uint_eq(s.expired, 0);
  ck_assert_uint_eq(s.idle_closed, 0);
  ck_assert_uint_eq(s.rollbacks, 0);
  ck_assert_uint_eq(s.leaks, 0);
  ck_assert_int_eq(s.wait_p50_ns, 0);
  ck_assert_int_eq(s.wait_p99_ns, 0);
  ck_assert_int_eq(s.oldest_waiter_ns, 0);
  ck_assert_int_eq(s.longest_held_ns, 2 * BE_NS_PER_SEC); /* a, since t=0 */
  be_pool_release(p, a);
  be_pool_release(p, b);
  be_pool_free(p);
  be_clock_free(clk);
}
END_TEST

/* ---- callbacks with a fake clock ---- */

typedef struct cb_log {
  int usage_calls;
  int32_t usage_in_use, usage_max;
  int leak_calls;
  char leak_file[128];
  int32_t leak_line;
  int64_t leak_held;
} cb_log;

static void on_usage(be_pool *p, int32_t in_use, int32_t max, int32_t waiting, void *ud) {
  cb_log *l = ud;
  (void)waiting;
  be_pool_stats s = BE_POOL_STATS_INIT;
  ck_assert_int_eq(be_pool_stats_get(&s, p, NULL), BE_OK); /* allowed: called unlocked */
  l->usage_calls++;
  l->usage_in_use = in_use;
  l->usage_max = max;
}

static void on_leak(be_pool *p, const char *file, int32_t line, int64_t held, void *ud) {
  cb_log *l = ud;
  (void)p;
  l->leak_calls++;
  snprintf(l->leak_file, sizeof l->leak_file, "%s", file ? file : "(null)");
  l->leak_line = line;
  l->leak_held = held;
}

START_TEST(usage_alert_fires_once_per_crossing) {
  cb_log l;
  memset(&l, 0, sizeof l);
  be_pool_options o = mock_opts(2, 10);
  o.on_usage_alert = on_usage;
  o.usage_alert_user_data = &l;
  o.usage_alert_interval_ms = 0; /* hysteresis alone */
  be_pool *p = new_pool(&o);
  be_conn *c[10];
  for (int i = 0; i < 7; i++) ck_assert_int_eq(be_pool_acquire(&c[i], p, NULL), BE_OK);
  ck_assert_int_eq(l.usage_calls, 0);
  ck_assert_int_eq(be_pool_acquire(&c[7], p, NULL), BE_OK); /* 8 of 10 = 80 % */
  ck_assert_int_eq(l.usage_calls, 1);
  ck_assert_int_eq(l.usage_in_use, 8);
  ck_assert_int_eq(l.usage_max, 10);
  ck_assert(log_has("pool usage high pool=testpool in_use=8 max=10"));
  ck_assert_int_eq(be_pool_acquire(&c[8], p, NULL), BE_OK);
  ck_assert_int_eq(l.usage_calls, 1); /* still above: no repeat */
  be_pool_release(p, c[8]);
  ck_assert_int_eq(be_pool_acquire(&c[8], p, NULL), BE_OK);
  ck_assert_int_eq(l.usage_calls, 1); /* never dropped below */
  be_pool_release(p, c[8]);
  be_pool_release(p, c[7]); /* 7 in use: just below, not clearly below */
  ck_assert_int_eq(be_pool_acquire(&c[7], p, NULL), BE_OK);
  ck_assert_int_eq(l.usage_calls, 1);
  be_pool_release(p, c[7]);
  be_pool_release(p, c[6]); /* 6 in use: 80 % - 20 % of max: re-armed */
  ck_assert_int_eq(be_pool_acquire(&c[6], p, NULL), BE_OK);
  ck_assert_int_eq(l.usage_calls, 1);
  ck_assert_int_eq(be_pool_acquire(&c[7], p, NULL), BE_OK); /* crosses again */
  ck_assert_int_eq(l.usage_calls, 2);
  for (int i = 0; i < 8; i++) be_pool_release(p, c[i]);
  be_pool_free(p);
}
END_TEST

/* Crossings within usage_alert_interval_ms are counted, not reported; the
 * next alert after the interval says how many were left out. */
START_TEST(usage_alert_is_rate_limited) {
  cb_log l;
  memset(&l, 0, sizeof l);
  be_clock *clk;
  ck_assert_int_eq(be_clock_fake_new(&clk, 0, 0, NULL), BE_OK);
  be_incident_log *inc = NULL;
  ck_assert_int_eq(be_incident_log_new(&inc, 16, clk, NULL), BE_OK);
  be_pool_options o = mock_opts(1, 2);
  o.on_usage_alert = on_usage;
  o.usage_alert_user_data = &l;
  o.usage_alert_interval_ms = 10000;
  o.incidents = inc;
  o.clock = clk;
  be_pool *p = new_pool(&o);
  be_conn *a, *b;
  for (int i = 0; i < 5; i++) { /* alert at 2 of 2, re-armed at 1 */
    ck_assert_int_eq(be_pool_acquire(&a, p, NULL), BE_OK);
    ck_assert_int_eq(be_pool_acquire(&b, p, NULL), BE_OK);
    be_pool_release(p, b);
    be_pool_release(p, a);
  }
  ck_assert_int_eq(l.usage_calls, 1);
  ck_assert_int_eq(be_incident_log_total(inc, BE_INCIDENT_POOL_USAGE), 1);
  ck_assert_int_eq(be_clock_advance(clk, 10 * BE_NS_PER_SEC, NULL), BE_OK);
  ck_assert_int_eq(be_pool_acquire(&a, p, NULL), BE_OK);
  ck_assert_int_eq(be_pool_acquire(&b, p, NULL), BE_OK);
  ck_assert_int_eq(l.usage_calls, 2);
  ck_assert(log_has("pool usage high pool=testpool in_use=2 max=2 waiting=0 suppressed=4"));
  be_incident in = BE_INCIDENT_INIT;
  ck_assert_int_eq(be_incident_log_get(&in, inc, 1, NULL), BE_OK);
  ck_assert_int_eq(in.kind, BE_INCIDENT_POOL_USAGE);
  ck_assert_int_eq(in.suppressed, 4);
  ck_assert_int_eq(in.in_use, 2);
  ck_assert_int_eq(in.value, 100);
  ck_assert_int_eq(in.threshold, 80);
  be_pool_release(p, b);
  be_pool_release(p, a);
  be_pool_free(p);
  be_incident_log_free(inc);
  be_clock_free(clk);
}
END_TEST

static _Atomic long usage_lines;
static void count_usage_lines(int32_t level, const char *msg, const be_log_field *f, size_t n, void *ud) {
  (void)level, (void)f, (void)n, (void)ud;
  if (strcmp(msg, "pool usage high") == 0) atomic_fetch_add(&usage_lines, 1);
}

/* With max 1 every acquire reaches 100 %: the alert must not log a WARN
 * line per acquire (a benchmark once wrote ~913,000 of them). */
START_TEST(usage_alert_with_max_one_logs_a_handful) {
  atomic_store(&usage_lines, 0);
  be_log_set_handler(count_usage_lines, NULL, BE_LOG_DEBUG, NULL);
  be_pool_options o = mock_opts(1, 1);
  be_pool *p = new_pool(&o);
  for (int i = 0; i < 10000; i++) {
    be_conn *c = NULL;
    ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
    be_pool_release(p, c);
  }
  be_pool_free(p);
  ck_assert_int_ge(atomic_load(&usage_lines), 1);
  ck_assert_int_le(atomic_load(&usage_lines), 5);
}
END_TEST

/* A crossing of the alert level by a checkout that unlocks before its own
 * check (here a validation ping) is reported by the next check, not lost:
 * in use went 2 -> 3 (pinging) -> 4 while the alert is at 3. */
static void *acquire_keep(void *arg) {
  be_conn *c = NULL;
  ck_assert_int_eq(be_pool_acquire(&c, arg, NULL), BE_OK);
  return c;
}

/* A pool of o whose usage alert, at percent and without a rate limit,
 * reports to l. */
static be_pool *alerting_pool(be_pool_options *o, int32_t percent, cb_log *l) {
  o->usage_alert_percent = percent;
  o->usage_alert_interval_ms = 0;
  memset(l, 0, sizeof *l);
  o->on_usage_alert = on_usage;
  o->usage_alert_user_data = l;
  return new_pool(o);
}

START_TEST(usage_alert_sees_a_crossing_during_a_ping) {
  be_pool_options o = mock_opts(4, 4);
  o.validation_window_ms = 0; /* every idle hand-out pings */
  cb_log l;
  be_pool *p = alerting_pool(&o, 75, &l); /* alert at 3 */
  be_conn *c[4];
  for (int i = 0; i < 2; i++) ck_assert_int_eq(be_pool_acquire(&c[i], p, NULL), BE_OK);
  atomic_store(&mock_ping_gate, GATE_ARMED);
  pthread_t t;
  pthread_create(&t, NULL, acquire_keep, p); /* the third: its ping waits */
  wait_at_least(&mock_ping_gate, GATE_HOLDING);
  ck_assert_int_eq(be_pool_acquire(&c[3], p, NULL), BE_OK); /* the fourth */
  atomic_store(&mock_ping_gate, GATE_OPEN);
  void *third = NULL;
  pthread_join(t, &third);
  c[2] = third;
  ck_assert_int_eq(stats(p).in_use, 4);
  ck_assert_int_eq(l.usage_calls, 1);
  ck_assert_int_ge(l.usage_in_use, 3);
  for (int i = 0; i < 4; i++) be_pool_release(p, c[i]);
  be_pool_free(p);
}
END_TEST

/* An alert level so low that a fifth of max_conns below it is under 0:
 * the alert re-arms (and parking resumes) once nothing is out, instead of
 * never. */
START_TEST(usage_alert_rearms_below_a_low_level) {
  be_pool_options o = mock_opts(0, 20);
  cb_log l;
  be_pool *p = alerting_pool(&o, 10, &l); /* alert at 2; 2 - 20 / 5 < 0 */
  be_conn *c[2];
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < 2; i++) ck_assert_int_eq(be_pool_acquire(&c[i], p, NULL), BE_OK);
    for (int i = 0; i < 2; i++) be_pool_release(p, c[i]);
  }
  ck_assert_int_eq(l.usage_calls, 2);
  uint64_t claims = be__pool_claims(p);
  for (int i = 0; i < 100; i++) { /* one at a time: parked and claimed again */
    ck_assert_int_eq(be_pool_acquire(&c[0], p, NULL), BE_OK);
    be_pool_release(p, c[0]);
  }
  ck_assert_uint_ge(be__pool_claims(p) - claims, 99);
  be_pool_free(p);
}
END_TEST

/* Exhaustion, a self-deadlock and a failed open each leave an incident
 * with the pool's figures at the time. */
/* A pool of o recording into a new incident log, *inc. */
static be_pool *pool_with_incidents(be_pool_options *o, be_incident_log **inc) {
  ck_assert_int_eq(be_incident_log_new(inc, 0, NULL, NULL), BE_OK);
  o->incidents = *inc;
  return new_pool(o);
}

START_TEST(incidents_recorded_for_pool_failures) {
  be_incident_log *inc = NULL;
  be_pool_options o = mock_opts(0, 1);
  o.acquire_timeout_ms = 0;
  be_pool *p = pool_with_incidents(&o, &inc);
  be_conn *a = NULL, *b = NULL;
  ck_assert_int_eq(be_pool_acquire(&a, p, NULL), BE_OK);
  ck_assert_int_eq(be_pool_acquire(&b, p, NULL), BE_E_POOL_DEADLOCK);
  ck_assert_int_eq(be_incident_log_total(inc, BE_INCIDENT_POOL_DEADLOCK), 1);
  be_incident in = BE_INCIDENT_INIT;
  ck_assert_int_eq(be_incident_log_get(&in, inc, be_incident_log_count(inc) - 1, NULL), BE_OK);
  ck_assert_int_eq(in.kind, BE_INCIDENT_POOL_DEADLOCK);
  ck_assert_int_eq(in.in_use, 1);
  ck_assert_int_eq(in.max_conns, 1);
  ck_assert_int_gt(in.wall_ns, 0);
  be_pool_release(p, a);
  be_pool_free(p);
  /* another thread's acquire times out */
  o.deadlock_detection = 0;
  p = new_pool(&o);
  ck_assert_int_eq(be_pool_acquire(&a, p, NULL), BE_OK);
  ck_assert_int_eq(be_pool_acquire(&b, p, NULL), BE_E_POOL_EXHAUSTED);
  ck_assert_int_eq(be_incident_log_total(inc, BE_INCIDENT_POOL_EXHAUSTED), 1);
  ck_assert_int_eq(be_incident_log_get(&in, inc, be_incident_log_count(inc) - 1, NULL), BE_OK);
  ck_assert_int_eq(in.kind, BE_INCIDENT_POOL_EXHAUSTED);
  ck_assert_ptr_nonnull(strstr(in.message, "no connection free within 0 ms"));
  be_pool_release(p, a);
  /* the database cannot be reached */
  mock_fail_open = 1;
  be_pool_free(p);
  p = new_pool(&o);
  ck_assert_int_eq(be_pool_acquire(&a, p, NULL), BE_E_DB_UNREACHABLE);
  ck_assert_int_eq(be_incident_log_total(inc, BE_INCIDENT_DB_UNREACHABLE), 1);
  mock_fail_open = 0;
  ck_assert_int_eq(be_incident_log_total(inc, 0), 3 + be_incident_log_total(inc, BE_INCIDENT_POOL_USAGE));
  char *json = NULL;
  ck_assert_int_eq(be_incident_log_to_json(&json, NULL, inc, NULL), BE_OK);
  ck_assert_ptr_nonnull(strstr(json, "\"pool_deadlock\":1"));
  ck_assert_ptr_nonnull(strstr(json, "\"kind\":\"db_unreachable\""));
  be_free(json);
  be_pool_free(p);
  be_incident_log_free(inc);
}
END_TEST

START_TEST(leak_report_names_acquire_site) {
  cb_log l;
  memset(&l, 0, sizeof l);
  be_clock *clk;
  ck_assert_int_eq(be_clock_fake_new(&clk, 0, 0, NULL), BE_OK);
  be_pool_options o = mock_opts(1, 2);
  o.clock = clk;
  o.leak_threshold_ms = 1000;
  o.on_leak = on_leak;
  o.leak_user_data = &l;
  be_pool *p = new_pool(&o);
  be_conn *c, *d;
  int line = __LINE__ + 1;
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  be_clock_advance(clk, 500 * BE_NS_PER_MS, NULL);
  ck_assert_int_eq(be_pool_maintain(p, NULL), BE_OK);
  ck_assert_int_eq(l.leak_calls, 0);
  be_clock_advance(clk, 1500 * BE_NS_PER_MS, NULL);
  ck_assert_int_eq(be_pool_maintain(p, NULL), BE_OK);
  ck_assert_int_eq(l.leak_calls, 1);
  ck_assert_ptr_nonnull(strstr(l.leak_file, "test_pool.c"));
  ck_assert_int_eq(l.leak_line, line);
  ck_assert_int_eq(l.leak_held, 2 * BE_NS_PER_SEC);
  ck_assert(log_has("leak threshold"));
  ck_assert_int_eq(be_pool_maintain(p, NULL), BE_OK);
  ck_assert_int_eq(l.leak_calls, 1); /* reported once */
  ck_assert_uint_eq(stats(p).leaks, 1);

  /* the plain function (as from FFI) has no site */
  ck_assert_int_eq((be_pool_acquire)(&d, p, NULL), BE_OK);
  be_clock_advance(clk, 1500 * BE_NS_PER_MS, NULL);
  ck_assert_int_eq(be_pool_maintain(p, NULL), BE_OK);
  ck_assert_int_eq(l.leak_calls, 2);
  ck_assert_str_eq(l.leak_file, "(null)");
  ck_assert_int_eq(l.leak_line, 0);
  be_pool_release(p, c);
  ck_assert(log_has("leak resolved"));
  be_pool_release(p, d);
  be_pool_free(p);
  be_clock_free(clk);
}
END_TEST

START_TEST(background_thread_runs_timers) {
  cb_log l;
  memset(&l, 0, sizeof l);
  be_pool_options o = mock_opts(1, 2);
  o.background_thread = 1;
  o.maintenance_interval_ms = 5;
  o.leak_threshold_ms = 20;
  o.on_leak = on_leak;
  o.leak_user_data = &l;
  be_pool *p = new_pool(&o);
  be_conn *c;
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  for (int i = 0; i < 2000 && stats(p).leaks == 0; i++) usleep(1000);
  ck_assert_uint_eq(stats(p).leaks, 1);
  be_pool_release(p, c);
  be_pool_free(p); /* stops and joins the thread */
  ck_assert_int_eq(l.leak_calls, 1);
}
END_TEST

/* ---- lifetime and idle reaping ---- */

START_TEST(lifetime_and_idle_reaping) {
  be_clock *clk;
  ck_assert_int_eq(be_clock_fake_new(&clk, 0, 0, NULL), BE_OK);
  be_pool_options o = mock_opts(1, 4);
  o.clock = clk;
  o.max_lifetime_ms = 10000;
  o.lifetime_jitter_permille = 0;
  o.idle_timeout_ms = 5000;
  be_pool *p = new_pool(&o);
  be_conn *c[3];
  for (int i = 0; i < 3; i++) ck_assert_int_eq(be_pool_acquire(&c[i], p, NULL), BE_OK);
  for (int i = 0; i < 3; i++) be_pool_release(p, c[i]);
  ck_assert_int_eq(stats(p).total, 3);

  be_clock_advance(clk, 4 * BE_NS_PER_SEC, NULL);
  ck_assert_int_eq(be_pool_maintain(p, NULL), BE_OK);
  ck_assert_int_eq(stats(p).total, 3);            /* not idle long enough */
  be_clock_advance(clk, 2 * BE_NS_PER_SEC, NULL); /* t = 6 s */
  ck_assert_int_eq(be_pool_maintain(p, NULL), BE_OK);
  be_pool_stats s = stats(p);
  ck_assert_int_eq(s.total, 1); /* reaped down to min */
  ck_assert_uint_eq(s.idle_closed, 2);

  /* the survivor is the most recently used one; it expires at 10 s */
  be_conn *x;
  ck_assert_int_eq(be_pool_acquire(&x, p, NULL), BE_OK);
  ck_assert_ptr_eq(x, c[2]);
  be_pool_release(p, x);
  be_clock_advance(clk, 5 * BE_NS_PER_SEC, NULL); /* t = 11 s */
  ck_assert_int_eq(be_pool_maintain(p, NULL), BE_OK);
  s = stats(p);
  ck_assert_uint_eq(s.expired, 1);
  ck_assert_int_eq(s.total, 1); /* refilled to min */
  ck_assert_uint_eq(s.creates, 4);

  /* a connection that expires while in use is closed on release */
  ck_assert_int_eq(be_pool_acquire(&x, p, NULL), BE_OK);
  be_clock_advance(clk, 11 * BE_NS_PER_SEC, NULL);
  be_pool_release(p, x);
  s = stats(p);
  ck_assert_uint_eq(s.expired, 2);
  ck_assert_int_eq(s.total, 0);

  /* an idle one past its lifetime is never handed out */
  ck_assert_int_eq(be_pool_maintain(p, NULL), BE_OK);
  ck_assert_int_eq(stats(p).total, 1);
  be_clock_advance(clk, 11 * BE_NS_PER_SEC, NULL);
  ck_assert_int_eq(be_pool_acquire(&x, p, NULL), BE_OK);
  ck_assert_uint_eq(stats(p).expired, 3);
  ck_assert_int_eq(native(x)->id, 6);
  be_pool_release(p, x);
  be_pool_free(p);
  be_clock_free(clk);
  ck_assert_int_eq(atomic_load(&mock_opens), atomic_load(&mock_closes));
}
END_TEST

START_TEST(lifetime_jitter_spreads_expiry) {
  be_clock *clk;
  ck_assert_int_eq(be_clock_fake_new(&clk, 0, 0, NULL), BE_OK);
  be_pool_options o = mock_opts(32, 32);
  o.clock = clk;
  o.max_lifetime_ms = 1000;
  o.lifetime_jitter_permille = 500; /* lifetimes in [500, 1000] ms */
  o.idle_timeout_ms = 0;
  be_pool *p = new_pool(&o);
  be_clock_advance(clk, 499 * BE_NS_PER_MS, NULL);
  ck_assert_int_eq(be_pool_maintain(p, NULL), BE_OK);
  ck_assert_uint_eq(stats(p).expired, 0);
  be_clock_advance(clk, 251 * BE_NS_PER_MS, NULL);
  ck_assert_int_eq(be_pool_maintain(p, NULL), BE_OK);
  uint64_t mid = stats(p).expired;
  be_clock_advance(clk, 251 * BE_NS_PER_MS, NULL);
  ck_assert_int_eq(be_pool_maintain(p, NULL), BE_OK);
  ck_assert_uint_eq(stats(p).expired, 32); /* all originals gone by 1001 ms */
  ck_assert_uint_gt(mid, 0);               /* but not all at once */
  ck_assert_uint_lt(mid, 32);              /* (either fails with p = 2^-32) */
  ck_assert_int_eq(stats(p).total, 32);    /* and refilled */
  be_pool_free(p);
  be_clock_free(clk);
}
END_TEST

START_TEST(fake_clock_deadline_times_out_waiter) {
  be_clock *clk;
  ck_assert_int_eq(be_clock_fake_new(&clk, 0, 0, NULL), BE_OK);
  be_pool_options o = mock_opts(1, 1);
  o.clock = clk;
  o.acquire_timeout_ms = 30000;
  be_pool *p = new_pool(&o);
  be_conn *held;
  ck_assert_int_eq(be_pool_acquire(&held, p, NULL), BE_OK);
  acq_result r = {.pool = p};
  pthread_t t;
  pthread_create(&t, NULL, acquire_once, &r);
  wait_for_waiting(p, 1);
  be_clock_advance(clk, 31 * BE_NS_PER_SEC, NULL);
  ck_assert_int_eq(stats(p).oldest_waiter_ns, 31 * BE_NS_PER_SEC);
  ck_assert_int_eq(be_pool_maintain(p, NULL), BE_OK);
  pthread_join(t, NULL);
  ck_assert_int_eq(r.rc, BE_E_POOL_EXHAUSTED);
  ck_assert_int_lt(r.elapsed_ms, 10000);
  be_error_free(r.err);
  be_pool_stats s = stats(p);
  ck_assert_uint_eq(s.timeouts, 1);
  ck_assert_int_eq(s.wait_max_ns, 31 * BE_NS_PER_SEC);
  /* 1 immediate acquire + 1 wait of 31 s: p50 is 0, p99 the wait */
  ck_assert_int_eq(s.wait_p50_ns, 0);
  ck_assert_int_eq(s.wait_p99_ns, 31 * BE_NS_PER_SEC);
  be_pool_release(p, held);
  be_pool_free(p);
  be_clock_free(clk);
}
END_TEST

/* ---- misuse on release ---- */

START_TEST(release_misuse_is_ignored) {
  be_pool_options o = mock_opts(1, 1);
  be_pool *p1 = new_pool(&o);
  be_pool *p2 = new_pool(&o);
  be_conn *c;
  ck_assert_int_eq(be_pool_acquire(&c, p1, NULL), BE_OK);
  be_pool_release(p2, c); /* wrong pool */
  ck_assert(log_has("does not belong"));
  ck_assert_int_eq(stats(p1).in_use, 1);
  be_pool_release(p1, c);
  be_pool_release(p1, c); /* twice */
  ck_assert(log_has("released twice"));
  be_pool_stats s = stats(p1);
  ck_assert_int_eq(s.in_use, 0);
  ck_assert_int_eq(s.idle, 1);
  be_conn *own = NULL;
  ck_assert_int_eq(be_conn_open(&own, &mock_driver, "x", NULL), BE_OK);
  be_pool_release(p1, own); /* not from any pool */
  be_conn_close(own);
  be_pool_free(p1);
  be_pool_free(p2);
}
END_TEST


/* ---- pool-level transactions ---- */

typedef struct tx_ctx {
  int calls;
  int fail;
} tx_ctx;

static int insert_row(be_conn *c, void *ud, be_error **err) {
  tx_ctx *t = ud;
  t->calls++;
  int rc = be_conn_exec(c, "INSERT INTO t VALUES (42)", err);
  if (rc != BE_OK) return rc;
  if (t->fail) return be_error_new(err, BE_E_VALIDATION, "callback says no") == BE_OK ? BE_E_VALIDATION : BE_E_NOMEM;
  return BE_OK;
}

static int64_t count_rows(be_pool *p) {
  be_conn *c;
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  be_stmt *st;
  ck_assert_int_eq(be_conn_prepare(&st, c, "SELECT count(*) FROM t", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(st, NULL), BE_ROW);
  int64_t n = be_stmt_column_int64(st, 0);
  be_stmt_finalize(st);
  be_pool_release(p, c);
  return n;
}

START_TEST(pool_tx_run_commits_and_rolls_back) {
  char *dir = tu_tempdir();
  char dsn[512];
  snprintf(dsn, sizeof dsn, "%s/ptx.db", dir);
  be_driver *fd;
  be_fault *f;
  ck_assert_int_eq(be_fault_driver_new(&fd, &f, be_sqlite_driver(), NULL), BE_OK);
  be_pool_options o = BE_POOL_OPTIONS_INIT;
  o.driver = fd;
  o.dsn = dsn;
  o.min_conns = 1;
  o.max_conns = 2;
  o.acquire_timeout_ms = 2000;
  be_pool *p = new_pool(&o);
  be_conn *c;
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  ck_assert_int_eq(be_conn_exec(c, "CREATE TABLE t(x INTEGER)", NULL), BE_OK);
  be_pool_release(p, c);

  tx_ctx t = {0, 0};
  be_error *e = NULL;
  ck_assert_int_eq(be_pool_tx_run(p, BE_TX_IMMEDIATE, insert_row, &t, &e), BE_OK);
  ck_assert_ptr_null(e);
  ck_assert_int_eq(t.calls, 1);
  ck_assert_int_eq(count_rows(p), 1);
  ck_assert_int_eq(stats(p).in_use, 0);

  /* callback error: rolled back, the error comes through as is */
  t = (tx_ctx){0, 1};
  ck_assert_int_eq(be_pool_tx_run(p, BE_TX_IMMEDIATE, insert_row, &t, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_message(e), "callback says no");
  be_error_free(e);
  e = NULL;
  ck_assert_int_eq(count_rows(p), 1);
  ck_assert_int_eq(stats(p).in_use, 0);
  ck_assert_uint_eq(stats(p).rollbacks, 0); /* be_tx_run rolled back, not the pool */

  /* BEGIN on a connection that died: dropped and retried on a fresh one */
  t = (tx_ctx){0, 0};
  ck_assert_int_eq(be_fault_set(f, BE_FAULT_OP_BEGIN, BE_FAULT_NTH, 1, BE_E_CONN_LOST, NULL), BE_OK);
  uint64_t broken0 = stats(p).broken;
  ck_assert_int_eq(be_pool_tx_run_ex(p, NULL, insert_row, &t, &e), BE_OK);
  ck_assert_int_eq(t.calls, 1);
  ck_assert_uint_eq(stats(p).broken, broken0 + 1);
  ck_assert_int_eq(count_rows(p), 2);

  /* lost at COMMIT, after the callback ran: no retry, typed error */
  t = (tx_ctx){0, 0};
  ck_assert_int_eq(be_fault_set(f, BE_FAULT_OP_COMMIT, BE_FAULT_NTH, 1, BE_E_CONN_LOST, NULL), BE_OK);
  ck_assert_int_eq(be_pool_tx_run(p, BE_TX_IMMEDIATE, insert_row, &t, &e), BE_E_CONN_LOST);
  ck_assert_int_eq(t.calls, 1);
  be_error_free(e);
  e = NULL;
  be_fault_clear(f, BE_FAULT_OP_ALL);
  ck_assert_int_eq(stats(p).in_use, 0);

  /* holding the only free capacity and asking again: fails fast */
  be_conn *a, *b;
  ck_assert_int_eq(be_pool_acquire(&a, p, NULL), BE_OK);
  ck_assert_int_eq(be_pool_acquire(&b, p, NULL), BE_OK);
  ck_assert_int_eq(be_pool_tx_run(p, BE_TX_IMMEDIATE, insert_row, &t, &e), BE_E_POOL_DEADLOCK);
  be_error_free(e);
  be_pool_release(p, a);
  be_pool_release(p, b);

  ck_assert_int_eq(be_pool_tx_run(NULL, BE_TX_IMMEDIATE, insert_row, &t, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_pool_tx_run(p, BE_TX_IMMEDIATE, NULL, &t, NULL), BE_E_MISUSE);
  be_pool_free(p);
  be_fault_free(f);
  tu_rmdir(dir);
}
END_TEST

/* a saturated pool hands connections over without re-firing the alert */
START_TEST(handoff_keeps_usage_alert_quiet) {
  cb_log l;
  memset(&l, 0, sizeof l);
  be_pool_options o = mock_opts(1, 1);
  o.acquire_timeout_ms = 10000;
  o.on_usage_alert = on_usage;
  o.usage_alert_user_data = &l;
  be_pool *p = new_pool(&o);
  be_conn *c;
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  ck_assert_int_eq(l.usage_calls, 1);
  acq_result r = {.pool = p};
  pthread_t t;
  pthread_create(&t, NULL, acquire_once, &r);
  wait_for_waiting(p, 1);
  be_pool_release(p, c); /* straight to the waiter */
  pthread_join(t, NULL);
  ck_assert_int_eq(r.rc, BE_OK);
  ck_assert_int_eq(l.usage_calls, 1);
  ck_assert_uint_eq(stats(p).handoffs, 1);
  be_pool_free(p);
}
END_TEST

/* ---- allocation failures ---- */

/* ---- query statistics and the slow-query log ---- */

/* A SQLite file database with t(x) = 1..10, for the pools below. */
static char *make_db(char *dsn, size_t n) {
  char *dir = tu_tempdir();
  snprintf(dsn, n, "%s/qstats.db", dir);
  be_conn *c = NULL;
  ck_assert_int_eq(be_conn_open(&c, be_sqlite_driver(), dsn, NULL), BE_OK);
  ck_assert_int_eq(be_conn_exec(c, "CREATE TABLE t(x INTEGER PRIMARY KEY);"
                                   "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
                                   " WHERE i < 10) INSERT INTO t SELECT i FROM n",
                                NULL),
                   BE_OK);
  be_conn_close(c);
  return dir;
}

static be_pool_options sqlite_opts(const char *dsn, int32_t min, int32_t max) {
  be_pool_options o = BE_POOL_OPTIONS_INIT;
  o.driver = be_sqlite_driver();
  o.dsn = dsn;
  o.name = "qpool";
  o.min_conns = min;
  o.max_conns = max;
  return o;
}

/* One run of a statement; returns its result code. */
static int run_once(be_conn *c, const char *sql, int64_t bound) {
  be_stmt *st = NULL;
  int rc = be_conn_prepare(&st, c, sql, NULL);
  ck_assert_int_eq(rc, BE_OK);
  if (strchr(sql, '?')) ck_assert_int_eq(be_stmt_bind_int64(st, 1, bound, NULL), BE_OK);
  while ((rc = be_stmt_step(st, NULL)) == BE_ROW) {
  }
  be_stmt_finalize(st);
  return rc == BE_DONE ? BE_OK : rc;
}

#define QT_ITERS 300

typedef struct qt_arg {
  be_pool *pool;
  int ok_rows; /* rows the thread read */
  int errors;  /* statements that failed */
} qt_arg;

static void *query_thread(void *arg) {
  qt_arg *a = arg;
  for (int i = 0; i < QT_ITERS; i++) {
    be_conn *c = NULL;
    if (be_pool_acquire(&c, a->pool, NULL) != BE_OK) return (void *)1;
    if (run_once(c, "SELECT x FROM t WHERE x = ?", i % 20 + 1) == BE_OK) a->ok_rows += i % 20 < 10;
    if (i % 10 == 0 && run_once(c, "SELECT json('not json')", 0) < 0) a->errors++;
    be_pool_release(a->pool, c);
  }
  return NULL;
}

START_TEST(pool_query_stats_count_every_statement_from_two_threads) {
  char dsn[512];
  char *dir = make_db(dsn, sizeof dsn);
  be_pool_options o = sqlite_opts(dsn, 2, 2);
  be_pool *p = new_pool(&o);
  const be_query_stats *qs = be_pool_query_stats(p);
  ck_assert_ptr_nonnull(qs);
  ck_assert_ptr_nonnull(be_pool_slowlog(p)); /* on by default */
  ck_assert_uint_eq(be_query_stats_queries(qs), 0);

  qt_arg a[2] = {{p, 0, 0}, {p, 0, 0}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_create(&th[i], NULL, query_thread, &a[i]), 0);
  for (int i = 0; i < 2; i++) {
    void *r = NULL;
    pthread_join(th[i], &r);
    ck_assert_ptr_null(r);
  }
  ck_assert_int_eq(stats(p).creates, 2); /* both connections did the work */
  uint64_t per_thread = QT_ITERS + QT_ITERS / 10;
  ck_assert_int_eq(a[0].errors + a[1].errors, 2 * (QT_ITERS / 10));
  ck_assert_uint_eq(be_query_stats_queries(qs), 2 * per_thread);
  ck_assert_uint_eq(be_query_stats_errors(qs), 2 * (QT_ITERS / 10));
  ck_assert_uint_eq(be_query_stats_rows(qs), (uint64_t)(a[0].ok_rows + a[1].ok_rows));
  ck_assert_uint_eq(be_query_stats_rows(qs), 2 * QT_ITERS / 2);
  /* durations are sampled: each timed run stands for itself and the
   * untimed runs before it, so the histogram lags by at most the untimed
   * runs since each connection's last timed one */
  uint64_t timed = (uint64_t)be_histogram_count(be_query_stats_histogram(qs));
  ck_assert_uint_le(timed, 2 * per_thread);
  ck_assert_uint_ge(timed, 2 * per_thread - 2 * (BE__RUN_SAMPLE_MAX - 1));
  char *json = NULL;
  ck_assert_int_eq(be_query_stats_to_json(&json, NULL, qs, NULL), BE_OK);
  char want[96];
  snprintf(want, sizeof want, "{\"queries\":%d,\"errors\":%d,\"rows\":%d,",
           (int)(2 * per_thread), 2 * (QT_ITERS / 10), QT_ITERS);
  ck_assert_ptr_nonnull(strstr(json, want));
  be_free(json);
  be_pool_close(p); /* closed pool: the stats stay readable until free */
  ck_assert_uint_eq(be_query_stats_queries(be_pool_query_stats(p)), 2 * per_thread);
  be_pool_free(p);
  tu_rmdir(dir);
}
END_TEST

/* SQL function slow(ms): advances the fake clock, as if the statement took ms. */
static void slow_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  be_clock_advance(sqlite3_user_data(ctx), sqlite3_value_int64(argv[0]) * BE_NS_PER_MS, NULL);
  sqlite3_result_int(ctx, 1);
}

static void add_slow_fn(be_conn *c, be_clock *clk) {
  sqlite3 *db = be__sqlite_db(c);
  ck_assert_ptr_nonnull(db);
  ck_assert_int_eq(sqlite3_create_function(db, "slow", 1, SQLITE_UTF8, clk, slow_fn, NULL, NULL),
                   SQLITE_OK);
}

START_TEST(pool_slowlog_uses_pool_clock) {
  char dsn[512];
  char *dir = make_db(dsn, sizeof dsn);
  be_clock *clk;
  ck_assert_int_eq(be_clock_fake_new(&clk, 0, 1700000000 * BE_NS_PER_SEC, NULL), BE_OK);
  be_pool_options o = sqlite_opts(dsn, 1, 2);
  o.clock = clk; /* the pool's clock times its connections' statements */
  o.slow_query_capacity = 4;
  be_pool *p = new_pool(&o);
  be_slowlog *log = be_pool_slowlog(p);
  ck_assert_ptr_nonnull(log);

  be_conn *c;
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  add_slow_fn(c, clk);
  ck_assert_int_eq(run_once(c, "SELECT slow(100)", 0), BE_OK); /* at the threshold: not slow */
  ck_assert_uint_eq(be_slowlog_count(log), 0);
  ck_assert_int_eq(run_once(c, "SELECT slow(250), x FROM t WHERE x = ? OR x = 70", 3), BE_OK);
  ck_assert_uint_eq(be_slowlog_count(log), 1);
  be_pool_release(p, c);

  char *sql = NULL;
  int64_t dur = 0, rows = 0, wall = 0;
  ck_assert_int_eq(be_slowlog_get(&sql, &dur, &rows, &wall, log, 0, NULL), BE_OK);
  ck_assert_str_eq(sql, "SELECT slow(?), x FROM t WHERE x = ? OR x = ?");
  ck_assert_int_eq(dur, 250 * BE_NS_PER_MS);
  ck_assert_int_eq(rows, 1);
  ck_assert_int_eq(wall, 1700000000 * BE_NS_PER_SEC + 350 * BE_NS_PER_MS); /* the pool's clock */
  be_free(sql);
  char *json = NULL;
  ck_assert_int_eq(be_slowlog_to_json(&json, NULL, log, NULL), BE_OK);
  ck_assert_ptr_nonnull(strstr(json, "\"threshold_ms\":100,\"total\":1,"));
  be_free(json);
  const be_query_stats *qs = be_pool_query_stats(p);
  ck_assert_uint_eq(be_query_stats_queries(qs), 2);
  ck_assert_int_eq(be_histogram_max(be_query_stats_histogram(qs)), 250 * BE_NS_PER_MS);
  be_pool_free(p);

  /* a log of the host's own, shared by two pools and read after both */
  be_slowlog_options so = BE_SLOWLOG_OPTIONS_INIT;
  so.threshold_ms = 10;
  be_slowlog *mine = NULL;
  ck_assert_int_eq(be_slowlog_new(&mine, &so, NULL), BE_OK);
  o.slowlog = mine;
  o.slow_query_threshold_ms = 5000; /* ignored with a log given */
  be_pool *p1 = new_pool(&o), *p2 = new_pool(&o);
  ck_assert_ptr_eq(be_pool_slowlog(p1), mine);
  ck_assert_ptr_eq(be_pool_slowlog(p2), mine);
  be_pool *pools[2] = {p1, p2};
  for (int i = 0; i < 2; i++) {
    ck_assert_int_eq(be_pool_acquire(&c, pools[i], NULL), BE_OK);
    add_slow_fn(c, clk);
    ck_assert_int_eq(run_once(c, "SELECT slow(20)", 0), BE_OK);
    be_pool_release(pools[i], c);
  }
  be_pool_free(p1);
  be_pool_free(p2);
  ck_assert_uint_eq(be_slowlog_count(mine), 2);
  be_slowlog_free(mine);
  be_clock_free(clk);
  tu_rmdir(dir);
}
END_TEST

START_TEST(closed_connections_leave_no_observer_behind) {
  char dsn[512];
  char *dir = make_db(dsn, sizeof dsn);
  be_clock *clk;
  ck_assert_int_eq(be_clock_fake_new(&clk, 0, 0, NULL), BE_OK);
  be_pool_options o = sqlite_opts(dsn, 0, 2);
  o.clock = clk;
  o.idle_timeout_ms = 1000;
  o.max_lifetime_ms = 0;
  be_pool *p = new_pool(&o);
  const be_query_stats *pool_qs = be_pool_query_stats(p);

  /* the host adds its own observers to a pooled connection, then gives
   * it back without detaching: the scope ends, the stats stay on */
  be_query_stats *mine = NULL;
  ck_assert_int_eq(be_query_stats_new(&mine, NULL), BE_OK);
  be_conn *c;
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  ck_assert_int_eq(be_query_stats_attach(mine, c, NULL), BE_OK);
  be_scope *sc = NULL;
  ck_assert_int_eq(be_scope_begin(&sc, c, NULL, NULL), BE_OK);
  ck_assert_int_eq(run_once(c, "SELECT x FROM t WHERE x = ?", 1), BE_OK);
  ck_assert_int_eq(be_scope_query_count(sc), 1);
  ck_assert_uint_eq(be_query_stats_queries(mine), 1);
  be_pool_release(p, c);

  /* reaped: the connection closes with mine, the scope and the pool's
   * stats and log still attached */
  be_clock_advance(clk, 2 * BE_NS_PER_SEC, NULL);
  ck_assert_int_eq(be_pool_maintain(p, NULL), BE_OK);
  ck_assert_int_eq(stats(p).total, 0);
  ck_assert_uint_eq(stats(p).idle_closed, 1);

  /* a new connection (often at the same address) starts clean */
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  ck_assert_int_eq(run_once(c, "SELECT x FROM t WHERE x = ?", 2), BE_OK);
  ck_assert_uint_eq(be_query_stats_queries(mine), 1);
  ck_assert_int_eq(be_scope_query_count(sc), 1);
  ck_assert_uint_eq(be_query_stats_queries(pool_qs), 2); /* the pool's stats are on it */

  /* freeing mine and the scope touches no closed connection (ASan) */
  be_scope_free(sc);
  be_query_stats_free(mine);
  ck_assert_int_eq(run_once(c, "SELECT 1", 0), BE_OK);
  ck_assert_uint_eq(be_query_stats_queries(pool_qs), 3);

  /* broken on release: closed with the pool's observers on it */
  ck_assert_int_eq(be_query_stats_new(&mine, NULL), BE_OK);
  ck_assert_int_eq(be_query_stats_attach(mine, c, NULL), BE_OK);
  be__conn_mark_broken(c);
  be_pool_release(p, c);
  ck_assert_uint_eq(stats(p).broken, 1);
  be_query_stats_free(mine);
  be_pool_free(p);
  be_clock_free(clk);
  tu_rmdir(dir);
}
END_TEST

START_TEST(scope_on_pooled_connection_counts) {
  char dsn[512];
  char *dir = make_db(dsn, sizeof dsn);
  be_pool_options o = sqlite_opts(dsn, 1, 1);
  be_pool *p = new_pool(&o);
  be_conn *c;
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  be_scope_options so = BE_SCOPE_OPTIONS_INIT;
  so.repeat_threshold = 5;
  be_scope *sc = NULL;
  ck_assert_int_eq(be_scope_begin(&sc, c, &so, NULL), BE_OK);
  for (int64_t i = 1; i <= 8; i++) ck_assert_int_eq(run_once(c, "SELECT x FROM t WHERE x = ?", i), BE_OK);
  ck_assert_int_eq(run_once(c, "SELECT count(*) FROM t", 0), BE_OK);
  ck_assert_int_eq(be_scope_query_count(sc), 9);
  ck_assert_int_eq(be_scope_distinct_count(sc), 2);
  ck_assert_int_eq(be_scope_worst_count(sc), 8);
  ck_assert_int_eq(be_scope_report_count(sc), 1); /* N+1 on a pooled connection */
  ck_assert(log_has("N+1 query"));
  ck_assert_uint_eq(be_query_stats_queries(be_pool_query_stats(p)), 9); /* both observers ran */
  be_scope_end(sc);
  be_pool_release(p, c);
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  ck_assert_int_eq(run_once(c, "SELECT 1", 0), BE_OK);
  ck_assert_int_eq(be_scope_query_count(sc), 9); /* ended */
  ck_assert_uint_eq(be_query_stats_queries(be_pool_query_stats(p)), 10);
  be_pool_release(p, c);
  be_scope_free(sc);
  be_pool_free(p);
  tu_rmdir(dir);
}
END_TEST

static int insert_twelve(be_conn *c, void *ud, be_error **err) {
  (void)ud;
  return be_conn_exec(c, "INSERT INTO t VALUES (12)", err);
}

/* A statement left pending keeps its read snapshot in WAL mode: the next
 * holder of the connection must not read through it. */
START_TEST(release_resets_pending_statements) {
  char dsn[512];
  char *dir = make_db(dsn, sizeof dsn);
  be_pool_options o = sqlite_opts(dsn, 1, 1);
  be_pool *p = new_pool(&o);
  be_conn *c;
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  be_stmt *leaked = NULL;
  ck_assert_int_eq(be_conn_prepare(&leaked, c, "SELECT x FROM t", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(leaked, NULL), BE_ROW); /* read transaction open */
  be_pool_release(p, c);
  ck_assert(log_has("statements not finalized; reset"));

  be_conn *w = NULL; /* another writer adds a row */
  ck_assert_int_eq(be_conn_open(&w, be_sqlite_driver(), dsn, NULL), BE_OK);
  ck_assert_int_eq(be_conn_exec(w, "INSERT INTO t VALUES (11)", NULL), BE_OK);
  be_conn_close(w);

  be_conn *c2;
  ck_assert_int_eq(be_pool_acquire(&c2, p, NULL), BE_OK);
  ck_assert_ptr_eq(c2, c);
  be_stmt *st = NULL;
  ck_assert_int_eq(be_conn_prepare(&st, c2, "SELECT count(*) FROM t", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(st, NULL), BE_ROW);
  ck_assert_int_eq(be_stmt_column_int64(st, 0), 11); /* not the stale 10 */
  be_stmt_finalize(st);
  /* a writer on the pooled connection is not stuck behind the old snapshot */
  ck_assert_int_eq(be_tx_run(c2, BE_TX_IMMEDIATE, insert_twelve, NULL, NULL),
                   BE_OK);
  be_stmt_finalize(leaked); /* still the first holder's to give back */
  be_pool_release(p, c2);
  be_pool_free(p);
  tu_rmdir(dir);
}
END_TEST

/* A scope the holder forgot to end must not count (or race on) the next
 * holder's statements. */
START_TEST(release_detaches_scope_left_attached) {
  char dsn[512];
  char *dir = make_db(dsn, sizeof dsn);
  be_pool_options o = sqlite_opts(dsn, 1, 1);
  be_pool *p = new_pool(&o);
  be_conn *c;
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  int32_t base = be__conn_observer_count(c);
  be_scope *sc = NULL;
  ck_assert_int_eq(be_scope_begin(&sc, c, NULL, NULL), BE_OK);
  ck_assert_int_eq(run_once(c, "SELECT 1", 0), BE_OK);
  ck_assert_int_eq(be_scope_query_count(sc), 1);
  be_pool_release(p, c); /* scope not ended */
  ck_assert(log_has("observers attached"));
  ck_assert_int_eq(be__conn_observer_count(c), base);

  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  ck_assert_int_eq(run_once(c, "SELECT 2", 0), BE_OK);
  ck_assert_int_eq(be_scope_query_count(sc), 1);                        /* the next holder's query is not counted */
  ck_assert_uint_eq(be_query_stats_queries(be_pool_query_stats(p)), 2); /* the pool's stay */
  be_scope_free(sc);                                                    /* must not touch the connection another holder uses */
  ck_assert_int_eq(be__conn_observer_count(c), base);
  be_pool_release(p, c);
  be_pool_free(p);
  tu_rmdir(dir);
}
END_TEST

/* A holder that detaches one of the pool's own observers (its slow-query
 * log, which be_pool_slowlog() hands out) and attaches one of its own
 * leaves as many observers as the pool attached: release compared counts
 * only, so the holder's stats went on counting the next holder's
 * statements and the pool's log stayed detached. */
START_TEST(release_restores_the_pools_own_observers) {
  char dsn[512];
  char *dir = make_db(dsn, sizeof dsn);
  be_pool_options o = sqlite_opts(dsn, 1, 1);
  o.slow_query_threshold_ms = 0; /* every statement is slow: the log shows it is attached */
  be_pool *p = new_pool(&o);
  be_conn *c;
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  int32_t base = be__conn_observer_count(c);
  be_slowlog_detach(be_pool_slowlog(p), c);
  be_query_stats *mine = NULL;
  ck_assert_int_eq(be_query_stats_new(&mine, NULL), BE_OK);
  ck_assert_int_eq(be_query_stats_attach(mine, c, NULL), BE_OK);
  ck_assert_int_eq(be__conn_observer_count(c), base);
  be_pool_release(p, c);

  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  int64_t logged = be_slowlog_total(be_pool_slowlog(p));
  ck_assert_int_eq(run_once(c, "SELECT 2", 0), BE_OK);
  ck_assert_int_eq(be_query_stats_queries(mine), 0); /* not the next holder's */
  ck_assert_int_eq(be_slowlog_total(be_pool_slowlog(p)), logged + 1);
  ck_assert_int_eq(be__conn_observer_count(c), base);
  ck_assert(log_has("without the pool's own observers"));
  be_pool_release(p, c);
  be_pool_free(p);
  be_query_stats_free(mine);
  tu_rmdir(dir);
}
END_TEST

/* Observers a connection_init attaches are the connection's for its
 * life, as the pool's own are: a release whose holder changed the
 * observers (a scope begun and ended) keeps them. */
static int attach_host_stats(be_conn *conn, void *ud, be_error **err) {
  return be_query_stats_attach(ud, conn, err);
}

START_TEST(release_keeps_what_connection_init_attached) {
  char dsn[512];
  char *dir = make_db(dsn, sizeof dsn);
  be_query_stats *host = NULL;
  ck_assert_int_eq(be_query_stats_new(&host, NULL), BE_OK);
  be_pool_options o = sqlite_opts(dsn, 1, 1);
  o.connection_init = attach_host_stats;
  o.connection_init_user_data = host;
  be_pool *p = new_pool(&o);
  for (int round = 0; round < 3; round++) {
    be_conn *c;
    ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
    be_scope *sc = NULL;
    ck_assert_int_eq(be_scope_begin(&sc, c, NULL, NULL), BE_OK);
    ck_assert_int_eq(run_once(c, "SELECT 1", 0), BE_OK);
    be_scope_end(sc);
    be_scope_free(sc);
    be_pool_release(p, c);
    ck_assert_int_eq(be_query_stats_queries(host), round + 1);
  }
  be_pool_free(p);
  be_query_stats_free(host);
  tu_rmdir(dir);
}
END_TEST

/* A release checks every observer it keeps, however many connection_init
 * attached (it once checked the first eight by identity): a holder that
 * swapped the last of nine host stats for its own does not keep it for
 * the next holder. */
enum { HOST_STATS = 9 };

static int attach_many_host_stats(be_conn *conn, void *ud, be_error **err) {
  be_query_stats **hs = ud;
  int rc = BE_OK;
  for (int i = 0; rc == BE_OK && i < HOST_STATS; i++) rc = be_query_stats_attach(hs[i], conn, err);
  return rc;
}

START_TEST(release_checks_every_kept_observer) {
  char dsn[512];
  char *dir = make_db(dsn, sizeof dsn);
  be_query_stats *hs[HOST_STATS], *mine = NULL;
  for (int i = 0; i < HOST_STATS; i++) ck_assert_int_eq(be_query_stats_new(&hs[i], NULL), BE_OK);
  ck_assert_int_eq(be_query_stats_new(&mine, NULL), BE_OK);
  be_pool_options o = sqlite_opts(dsn, 1, 1);
  o.connection_init = attach_many_host_stats;
  o.connection_init_user_data = hs;
  be_pool *p = new_pool(&o);
  be_conn *c;
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  int32_t base = be__conn_observer_count(c);
  ck_assert_int_gt(base, 8 + 1);
  be_query_stats_detach(hs[HOST_STATS - 1], c);
  ck_assert_int_eq(be_query_stats_attach(mine, c, NULL), BE_OK);
  ck_assert_int_eq(be__conn_observer_count(c), base);
  be_pool_release(p, c);

  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  ck_assert_int_eq(run_once(c, "SELECT 2", 0), BE_OK);
  ck_assert_int_eq(be_query_stats_queries(mine), 0); /* not the next holder's */
  ck_assert_int_eq(be_query_stats_queries(hs[0]), 1);
  be_pool_release(p, c);
  be_pool_free(p);
  for (int i = 0; i < HOST_STATS; i++) be_query_stats_free(hs[i]);
  be_query_stats_free(mine);
  tu_rmdir(dir);
}
END_TEST

/* A huge acquire timeout saturates to INT64_MAX ns: the waiter must wait,
 * not see a deadline wrapped into the past and time out at once. */
typedef struct long_wait {
  be_pool *pool;
  be_conn *got;
  int rc;
} long_wait;

static void *long_wait_worker(void *arg) {
  long_wait *w = arg;
  w->rc = be_pool_acquire(&w->got, w->pool, NULL);
  return NULL;
}

START_TEST(huge_acquire_timeout_waits) {
  be_pool_options o = mock_opts(1, 1);
  o.acquire_timeout_ms = INT64_MAX;
  be_pool *p = new_pool(&o);
  be_conn *c;
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  long_wait w = {p, NULL, 1};
  pthread_t t;
  pthread_create(&t, NULL, long_wait_worker, &w);
  wait_for_waiting(p, 1);
  usleep(20000);
  be_pool_stats s = stats(p);
  ck_assert_int_eq(s.waiting, 1);
  ck_assert_uint_eq(s.timeouts, 0);
  be_pool_release(p, c);
  pthread_join(t, NULL);
  ck_assert_int_eq(w.rc, BE_OK);
  ck_assert_ptr_eq(w.got, c);
  be_pool_release(p, w.got);
  be_pool_free(p);
}
END_TEST

static int alloc_body(void *arg) {
  (void)arg;
  be_pool_options o = mock_opts(2, 3);
  be_pool *p = NULL;
  be_error *e = NULL;
  int rc = be_pool_new(&p, &o, &e);
  if (rc != BE_OK) {
    ck_assert_ptr_null(p);
    ck_assert_int_eq(be_error_code(e), rc);
    be_error_free(e);
    return rc;
  }
  be_conn *a = NULL, *b = NULL, *c = NULL;
  rc = be_pool_acquire(&a, p, NULL);
  if (rc == BE_OK) rc = be_pool_acquire(&b, p, NULL);
  if (rc == BE_OK) rc = be_pool_acquire(&c, p, &e); /* opens a third */
  if (rc != BE_OK) {
    ck_assert_int_eq(rc, BE_E_NOMEM);
    be_error_free(e);
  }
  be_pool_stats s = BE_POOL_STATS_INIT;
  ck_assert_int_eq(be_pool_stats_get(&s, p, NULL), BE_OK);
  be_pool_release(p, a);
  be_pool_release(p, b);
  be_pool_release(p, c);
  be_pool_maintain(p, NULL);
  be_pool_free(p);
  return rc;
}

START_TEST(allocation_failures_leak_nothing) {
  TU_FOR_EACH_ALLOC_FAILURE(alloc_body, NULL);
  ck_assert_int_eq(atomic_load(&mock_opens), atomic_load(&mock_closes));
}
END_TEST

/* A connection lost while a statement is being reset (finalize returning
 * it to the statement cache, or release resetting one left open) is
 * marked broken and replaced: the next caller, with no fault, succeeds. */
static int select_one(be_conn *c, int finalize) {
  be_stmt *s = NULL;
  int rc = be_conn_prepare(&s, c, "SELECT 1", NULL);
  if (rc != BE_OK) return rc;
  rc = be_stmt_step(s, NULL);
  if (finalize) be_stmt_finalize(s);
  return rc == BE_ROW ? BE_OK : rc;
}

START_TEST(conn_lost_on_reset_is_replaced) {
  be_driver *fd;
  be_fault *f;
  ck_assert_int_eq(be_fault_driver_new(&fd, &f, be_sqlite_driver(), NULL), BE_OK);
  be_pool_options o = BE_POOL_OPTIONS_INIT;
  o.driver = fd;
  o.dsn = ":memory:";
  o.min_conns = 1;
  o.max_conns = 1;
  be_pool *p = new_pool(&o);
  for (int finalize = 1; finalize >= 0; finalize--) {
    be_conn *c;
    ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
    ck_assert_int_eq(be_fault_set(f, BE_FAULT_OP_RESET, BE_FAULT_NTH, 1, BE_E_CONN_LOST, NULL),
                     BE_OK);
    uint64_t broken0 = stats(p).broken;
    ck_assert_int_eq(select_one(c, finalize), BE_OK);
    ck_assert_int_eq(be_conn_is_broken(c), finalize); /* finalize resets now, release later */
    be_pool_release(p, c);
    ck_assert_int_eq(be_fault_injected(f, BE_FAULT_OP_RESET), 1);
    be_fault_clear(f, BE_FAULT_OP_ALL);
    be_fault_reset_counts(f);
    ck_assert_uint_eq(stats(p).broken, broken0 + 1);
    ck_assert_int_eq(stats(p).in_use, 0);
    ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
    ck_assert_int_eq(select_one(c, 1), BE_OK);
    be_pool_release(p, c);
  }
  be_pool_free(p);
  be_fault_free(f);
}
END_TEST

/* No driver: the DSN picks it (SQLite, or PostgreSQL for its URIs). */
START_TEST(driver_follows_the_dsn) {
  ck_assert_int_eq(be_postgres_dsn("postgres://h/db"), 1);
  ck_assert_int_eq(be_postgres_dsn("postgresql:///db?host=/tmp"), 1);
  ck_assert_int_eq(be_postgres_dsn("postgres:/x"), 0);
  ck_assert_int_eq(be_postgres_dsn("app.db"), 0);
  ck_assert_int_eq(be_postgres_dsn(NULL), 0);
  be_pool_options o = BE_POOL_OPTIONS_INIT;
  o.dsn = ":memory:";
  o.min_conns = 1;
  o.max_conns = 1;
  be_pool *p = NULL;
  ck_assert_int_eq(be_pool_new(&p, &o, NULL), BE_OK);
  be_conn *c = NULL;
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  ck_assert_ptr_eq(be_conn_driver(c), be_sqlite_driver());
  be_pool_release(p, c);
  be_pool_free(p);
  /* a PostgreSQL URI: its driver, or a typed refusal in a build without libpq */
  o.dsn = "postgresql:///none?host=/nonexistent-be-dir&connect_timeout=2";
  be_error *e = NULL;
  int32_t want = be_postgres_driver() ? BE_E_DB_UNREACHABLE : BE_E_UNSUPPORTED;
  ck_assert_int_eq(be_pool_new(&p, &o, &e), want);
  ck_assert_ptr_null(p);
  ck_assert_int_eq(be_error_code(e), want);
  be_error_free(e);
}
END_TEST

/* ---- connection setup: connection_init_sql and connection_init ---- */

typedef struct init_seen {
  _Atomic int calls;
  _Atomic int fail_from; /* the call number from which it fails; 0 = never */
  int set_error;         /* 1: fail with *err set, 0: just a code */
  be_conn *conns[16];
} init_seen;

static int count_init(be_conn *conn, void *ud, be_error **err) {
  init_seen *is = ud;
  int n = atomic_fetch_add(&is->calls, 1) + 1;
  /* the SQL ran first: the temp table is there already */
  be_stmt *st = NULL;
  ck_assert_int_eq(be_conn_prepare(&st, conn, "SELECT count(*) FROM temp.host_setup", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(st, NULL), BE_ROW);
  be_stmt_finalize(st);
  int fail = atomic_load(&is->fail_from);
  if (fail && n >= fail) {
    if (!is->set_error) return BE_E_FORBIDDEN;
    char msg[64];
    snprintf(msg, sizeof msg, "host refuses connection %d", n);
    ck_assert_int_eq(be_error_new(err, BE_E_VALIDATION, msg), BE_OK);
    return BE_E_VALIDATION;
  }
  if (n <= 16) is->conns[n - 1] = conn;
  return BE_OK;
}

static be_pool_options init_opts(const char *dsn, init_seen *is) {
  be_pool_options o = BE_POOL_OPTIONS_INIT;
  o.driver = be_sqlite_driver();
  o.dsn = dsn;
  o.name = "initpool";
  o.min_conns = 1;
  o.max_conns = 4;
  o.connection_init_sql = "CREATE TEMP TABLE host_setup(x); PRAGMA cache_size=-1234";
  o.connection_init = count_init;
  o.connection_init_user_data = is;
  return o;
}

START_TEST(connection_init_runs_once_per_new_connection) {
  char *dir = tu_tempdir(), dsn[600];
  snprintf(dsn, sizeof dsn, "%s/init.db", dir);
  init_seen is = {0};
  be_pool_options o = init_opts(dsn, &is);
  o.max_lifetime_ms = 60000;
  o.lifetime_jitter_permille = 0;
  be_clock *clk = NULL;
  ck_assert_int_eq(be_clock_fake_new(&clk, 1000000000, 1000000000, NULL), BE_OK);
  o.clock = clk;
  char sql[128];
  strcpy(sql, o.connection_init_sql);
  o.connection_init_sql = sql; /* copied: scribbling over it later changes nothing */
  be_pool *p = NULL;
  ck_assert_int_eq(be_pool_new(&p, &o, NULL), BE_OK);
  memset(sql, 0, sizeof sql);
  ck_assert_int_eq(atomic_load(&is.calls), 1); /* min_conns */
  be_conn *c[4];
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 4; i++) {
      ck_assert_int_eq(be_pool_acquire(&c[i], p, NULL), BE_OK);
      ck_assert_int_eq(tu_conn_int(c[i], "SELECT count(*) FROM temp.host_setup"), 0);
      ck_assert_int_eq(tu_conn_int(c[i], "PRAGMA cache_size"), -1234);
    }
    for (int i = 0; i < 4; i++) be_pool_release(p, c[i]);
    ck_assert_int_eq(atomic_load(&is.calls), 4); /* reuse runs nothing */
  }
  for (int i = 0; i < 4; i++) {
    int seen = 0;
    for (int j = 0; j < 4; j++) seen += is.conns[j] == c[i];
    ck_assert_int_eq(seen, 1); /* each connection handed out was set up, once */
  }
  /* replacements (max lifetime) are new connections: set up too */
  ck_assert_int_eq(be_clock_advance(clk, INT64_C(120000) * 1000000, NULL), BE_OK);
  ck_assert_int_eq(be_pool_maintain(p, NULL), BE_OK);
  ck_assert_int_eq(be_pool_acquire(&c[0], p, NULL), BE_OK);
  ck_assert_int_eq(tu_conn_int(c[0], "PRAGMA cache_size"), -1234);
  be_pool_release(p, c[0]);
  be_pool_stats st = BE_POOL_STATS_INIT;
  ck_assert_int_eq(be_pool_stats_get(&st, p, NULL), BE_OK);
  ck_assert_int_gt(st.creates, 4);
  ck_assert_int_eq(atomic_load(&is.calls), st.creates);
  be_pool_free(p);
  be_clock_free(clk);
  tu_rmdir(dir);
}
END_TEST

/* Maintenance refilling to min_conns reports the setup's code too. */
static void init_failure_on_maintain(const char *dsn) {
  init_seen is2 = {0};
  be_pool_options o = init_opts(dsn, &is2);
  atomic_store(&is2.fail_from, 2);
  is2.set_error = 1;
  o.max_lifetime_ms = 1000;
  o.lifetime_jitter_permille = 0;
  be_clock *clk = NULL;
  ck_assert_int_eq(be_clock_fake_new(&clk, 1000000000, 1000000000, NULL), BE_OK);
  o.clock = clk;
  be_pool *p = NULL;
  ck_assert_int_eq(be_pool_new(&p, &o, NULL), BE_OK);
  ck_assert_int_eq(be_clock_advance(clk, INT64_C(2000) * 1000000, NULL), BE_OK);
  be_error *e = NULL;
  ck_assert_int_eq(be_pool_maintain(p, &e), BE_E_VALIDATION);
  ck_assert_ptr_nonnull(strstr(be_error_message(e), "connection setup failed"));
  be_error_free(e);
  be_pool_stats st = BE_POOL_STATS_INIT;
  ck_assert_int_eq(be_pool_stats_get(&st, p, NULL), BE_OK);
  ck_assert_int_eq(st.total, 0);
  be_pool_free(p);
  be_clock_free(clk);
}

START_TEST(connection_init_failure_is_typed_and_leaks_nothing) {
  char *dir = tu_tempdir(), dsn[600];
  snprintf(dsn, sizeof dsn, "%s/init.db", dir);
  init_seen is = {0};
  /* bad SQL: be_pool_new fails with the SQL's own code, the cause kept */
  be_pool_options o = init_opts(dsn, &is);
  o.connection_init_sql = "CREATE TEMP TABLE host_setup(x); SELEC oops";
  be_pool *p = NULL;
  be_error *e = NULL;
  ck_assert_int_eq(be_pool_new(&p, &o, &e), BE_E_STORAGE);
  ck_assert_ptr_null(p);
  ck_assert_ptr_nonnull(strstr(be_error_message(e), "connection setup failed"));
  ck_assert_ptr_nonnull(be_error_cause(e));
  ck_assert_int_eq(be_error_code(be_error_cause(e)), BE_E_STORAGE);
  be_error_free(e);
  ck_assert_int_eq(atomic_load(&is.calls), 0); /* the callback never ran */

  /* the same on acquire: nothing handed out, nothing left open */
  o.min_conns = 0;
  ck_assert_int_eq(be_pool_new(&p, &o, NULL), BE_OK);
  be_conn *c = NULL;
  e = NULL;
  ck_assert_int_eq(be_pool_acquire(&c, p, &e), BE_E_STORAGE);
  ck_assert_ptr_null(c);
  be_error_free(e);
  be_pool_stats st = BE_POOL_STATS_INIT;
  ck_assert_int_eq(be_pool_stats_get(&st, p, NULL), BE_OK);
  ck_assert_int_eq(st.total, 0);
  ck_assert_int_eq(st.open_failures, 1);
  ck_assert_int_eq(st.creates, 0);
  be_pool_free(p);

  /* the callback fails from its second call: the first connection is
   * served, the second never is, and the pool keeps only the first */
  o = init_opts(dsn, &is);
  o.min_conns = 0;
  atomic_store(&is.fail_from, 2);
  is.set_error = 1;
  ck_assert_int_eq(be_pool_new(&p, &o, NULL), BE_OK);
  be_conn *a = NULL;
  ck_assert_int_eq(be_pool_acquire(&a, p, NULL), BE_OK);
  e = NULL;
  ck_assert_int_eq(be_pool_acquire(&c, p, &e), BE_E_VALIDATION);
  ck_assert_ptr_nonnull(strstr(be_error_message(e), "host refuses connection 2"));
  ck_assert_str_eq(be_error_message(be_error_cause(e)), "host refuses connection 2");
  be_error_free(e);
  /* a code without an error object is still that code */
  is.set_error = 0;
  e = NULL;
  ck_assert_int_eq(be_pool_acquire(&c, p, &e), BE_E_FORBIDDEN);
  ck_assert_ptr_nonnull(e);
  be_error_free(e);
  ck_assert_int_eq(be_pool_stats_get(&st, p, NULL), BE_OK);
  ck_assert_int_eq(st.total, 1);
  ck_assert_int_eq(st.in_use, 1);
  ck_assert_int_eq(st.open_failures, 2);
  be_pool_release(p, a);
  /* the connection that was set up is reused: no new setup */
  ck_assert_int_eq(be_pool_acquire(&a, p, NULL), BE_OK);
  ck_assert_int_eq(atomic_load(&is.calls), 3);
  be_pool_release(p, a);
  be_pool_free(p);

  init_failure_on_maintain(dsn);
  tu_rmdir(dir);
}
END_TEST

/* ---- affinity: the parked-slot path (pool_internal.h) ---- */

typedef struct spin_ctx {
  be_pool *pool;
  int rounds;
  _Atomic int stop;
  _Atomic int ok, closed, other;
} spin_ctx;

/* acquire + release in a loop, counting how each acquire ended */
static void *spin_worker(void *arg) {
  spin_ctx *x = arg;
  for (int i = 0; i < x->rounds && !atomic_load(&x->stop); i++) {
    be_conn *c = NULL;
    be_error *e = NULL;
    int rc = be_pool_acquire(&c, x->pool, &e);
    if (rc == BE_OK) {
      atomic_fetch_add(&x->ok, 1);
      be_pool_release(x->pool, c);
    } else {
      atomic_fetch_add(rc == BE_E_POOL_CLOSED ? &x->closed : &x->other, 1);
    }
    be_error_free(e);
  }
  return NULL;
}

static void run_spinners(spin_ctx *x, int nthreads) {
  pthread_t t[8];
  for (int i = 0; i < nthreads; i++) pthread_create(&t[i], NULL, spin_worker, x);
  for (int i = 0; i < nthreads; i++) pthread_join(t[i], NULL);
}

/* Acquires claimed without the lock are counted per slot: the sum is exact
 * however many threads, and a quiet pool shows everything idle. */
START_TEST(affinity_stats_exact_under_threads) {
  static const int threads[] = {2, 4, 8};
  for (int k = 0; k < 3; k++) {
    be_pool_options o = mock_opts(0, 3);
    o.acquire_timeout_ms = 20000;
    spin_ctx x = {.pool = new_pool(&o), .rounds = 2000};
    run_spinners(&x, threads[k]);
    ck_assert_int_eq(atomic_load(&x.other), 0);
    be_pool_stats s = stats(x.pool);
    ck_assert_uint_eq(s.acquires, (uint64_t)(threads[k] * 2000));
    ck_assert_int_eq(atomic_load(&x.ok), threads[k] * 2000);
    ck_assert_int_eq(s.in_use, 0);
    ck_assert_int_eq(s.idle, s.total);
    ck_assert_int_eq(s.waiting, 0);
    ck_assert_int_le(s.total, 3);
    be_pool_free(x.pool);
  }
}
END_TEST

/* A thread that just released (its connection parked for it) asks again
 * while another thread waits: the waiter is served first. */
START_TEST(affinity_release_does_not_barge_past_waiter) {
  be_pool_options o = mock_opts(1, 1);
  o.acquire_timeout_ms = 20000;
  be_pool *p = new_pool(&o);
  be_conn *c;
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  be_pool_release(p, c); /* parked for this thread */
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  ck_assert_int_eq(stats(p).idle, 0);

  acq_result r = {.pool = p};
  pthread_t t;
  pthread_create(&t, NULL, acquire_once, &r);
  for (int i = 0; i < 10000 && stats(p).waiting < 1; i++) usleep(200);
  ck_assert_int_eq(stats(p).waiting, 1);
  be_pool_release(p, c); /* must go to the waiter, not be parked */
  pthread_join(t, NULL); /* it acquired and released */
  ck_assert_int_eq(r.rc, BE_OK);
  be_pool_stats s = stats(p);
  ck_assert_uint_eq(s.handoffs, 1);
  ck_assert_int_eq(s.in_use, 0);
  ck_assert_int_eq(s.idle, 1);
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  be_pool_release(p, c);
  be_pool_free(p);
}
END_TEST

/* Parked connections count as idle: the usage alert fires on the real
 * number in use, once per crossing, with threads parking and claiming. */
START_TEST(affinity_usage_alert_counts_real_use) {
  be_pool_options o = mock_opts(0, 4);
  o.usage_alert_percent = 75; /* alert at 3 */
  o.usage_alert_interval_ms = 0;
  o.acquire_timeout_ms = 20000;
  cb_log l;
  memset(&l, 0, sizeof l);
  o.on_usage_alert = on_usage;
  o.usage_alert_user_data = &l;
  spin_ctx x = {.pool = new_pool(&o), .rounds = 500};
  run_spinners(&x, 2); /* at most 2 in use: never an alert */
  ck_assert_int_eq(atomic_load(&x.other), 0);
  ck_assert_int_eq(l.usage_calls, 0);
  be_conn *c[3];
  for (int i = 0; i < 3; i++) ck_assert_int_eq(be_pool_acquire(&c[i], x.pool, NULL), BE_OK);
  ck_assert_int_eq(l.usage_calls, 1);
  ck_assert_int_eq(l.usage_in_use, 3);
  ck_assert_int_eq(stats(x.pool).in_use, 3);
  for (int i = 0; i < 3; i++) be_pool_release(x.pool, c[i]);
  ck_assert_int_eq(stats(x.pool).in_use, 0);
  for (int i = 0; i < 3; i++) ck_assert_int_eq(be_pool_acquire(&c[i], x.pool, NULL), BE_OK);
  ck_assert_int_eq(l.usage_calls, 2); /* re-armed by the releases */
  for (int i = 0; i < 3; i++) be_pool_release(x.pool, c[i]);
  be_pool_free(x.pool);
}
END_TEST

/* Claims racing close and maintenance: every acquire succeeds or says the
 * pool is closed, and nothing leaks (ASan / valgrind). */
START_TEST(affinity_claims_race_close_and_maintenance) {
  for (int round = 0; round < 20; round++) {
    be_pool_options o = mock_opts(1, 3);
    o.acquire_timeout_ms = 20000;
    o.idle_timeout_ms = 1;
    spin_ctx x = {.pool = new_pool(&o), .rounds = 1000000};
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, spin_worker, &x);
    for (int i = 0; i < 20; i++) {
      be_pool_maintain(x.pool, NULL);
      usleep(100);
    }
    be_pool_close(x.pool);
    usleep(1000);
    atomic_store(&x.stop, 1);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    ck_assert_int_eq(atomic_load(&x.other), 0);
    be_pool_stats s = stats(x.pool);
    ck_assert_int_eq(s.in_use, 0);
    ck_assert_int_eq(s.total, 0);
    ck_assert_uint_eq(s.creates, s.destroys);
    be_pool_free(x.pool);
  }
}
END_TEST


static void *acquire_expecting_unreachable(void *arg) {
  be_conn *c = NULL;
  ck_assert_int_eq(be_pool_acquire(&c, arg, NULL), BE_E_DB_UNREACHABLE);
  return NULL;
}

/* A connection released (parked) while another caller's open was under
 * way is idle, not in use, in that open's failure incident. */
START_TEST(open_failure_incident_counts_parked_as_idle) {
  be_incident_log *inc = NULL;
  be_pool_options o = mock_opts(0, 3);
  o.usage_alert_percent = 0;
  be_pool *p = pool_with_incidents(&o, &inc);
  be_conn *c = NULL;
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  atomic_store(&mock_fail_open, 1);
  atomic_store(&mock_open_gate, GATE_ARMED);
  pthread_t t;
  pthread_create(&t, NULL, acquire_expecting_unreachable, p);
  wait_at_least(&mock_open_gate, GATE_HOLDING);
  be_pool_release(p, c); /* parked for this thread meanwhile */
  atomic_store(&mock_open_gate, GATE_OPEN);
  pthread_join(t, NULL);
  atomic_store(&mock_fail_open, 0);
  be_incident in = BE_INCIDENT_INIT;
  ck_assert_int_eq(be_incident_log_total(inc, BE_INCIDENT_DB_UNREACHABLE), 1);
  ck_assert_int_eq(be_incident_log_get(&in, inc, be_incident_log_count(inc) - 1, NULL), BE_OK);
  ck_assert_int_eq(in.kind, BE_INCIDENT_DB_UNREACHABLE);
  ck_assert_int_eq(in.in_use, 0);
  ck_assert_int_eq(in.idle, 1);
  be_pool_free(p);
  be_incident_log_free(inc);
}
END_TEST

/* A clock whose gate holds the thread that marked itself inside its next
 * read: here, a claim between its compare-and-swap and its staleness
 * check. */
static _Atomic int64_t held_clock_now;
static _Thread_local int held_clock_mine;
static atomic_int held_clock_gate;
static int64_t held_clock_read(void *ud) {
  (void)ud;
  if (held_clock_mine) {
    held_clock_mine = 0;
    gate_pass(&held_clock_gate);
  }
  return atomic_load(&held_clock_now);
}

typedef struct stale_claimer {
  be_pool *p;
  atomic_int step, done;
  int rc;
} stale_claimer;

static void *stale_claimer_run(void *arg) {
  stale_claimer *a = arg;
  be_conn *c = NULL;
  ck_assert_int_eq(be_pool_acquire(&c, a->p, NULL), BE_OK);
  atomic_store(&a->done, 1);
  wait_at_least(&a->step, 1);
  be_pool_release(a->p, c); /* parked for this thread */
  atomic_store(&a->done, 2);
  wait_at_least(&a->step, 2);
  held_clock_mine = 1; /* held after claiming its slot, before the mutex */
  c = NULL;
  a->rc = be_pool_acquire(&c, a->p, NULL);
  if (c) be_pool_release(a->p, c);
  return NULL;
}

/* A waiter's timeout report names where the longest holder acquired its
 * connection. The holder may release it meanwhile without the pool's
 * mutex (parking it) and then free or reuse its file string ("borrowed
 * until the release"): the report read it anyway (a heap-use-after-free
 * under ASan). The clock holds the waiter inside its report, after it
 * found the holder and before it reads the site. */
static _Thread_local int site_waiter, site_calls;
static _Thread_local int64_t site_start;
static atomic_int site_gate;

static int64_t site_clock_read(void *ud) {
  (void)ud;
  int64_t now = be_clock_now_ns(NULL);
  /* after the deadline: the wait's own read, then the report's */
  if (site_waiter && now - site_start > 100 * BE_NS_PER_MS && ++site_calls == 2)
    gate_pass(&site_gate);
  return now;
}

static void *site_waiter_run(void *arg) {
  site_waiter = 1;
  site_start = be_clock_now_ns(NULL);
  return acquire_once(arg);
}

START_TEST(timeout_report_never_reads_a_released_site) {
  be_clock *clk;
  ck_assert_int_eq(be_clock_custom_new(&clk, site_clock_read, NULL, NULL, NULL), BE_OK);
  atomic_store(&site_gate, GATE_ARMED);
  be_pool_options o = mock_opts(1, 1);
  o.clock = clk;
  o.usage_alert_percent = 0; /* parking allowed on a full pool */
  o.acquire_timeout_ms = 100;
  o.validation_window_ms = -1;
  be_pool *p = new_pool(&o);
  char file[32] = "holder_site.c";
  be_conn *c;
  ck_assert_int_eq(be_pool_acquire_at(&c, p, file, 42, NULL), BE_OK);
  acq_result r = {.pool = p};
  pthread_t t;
  pthread_create(&t, NULL, site_waiter_run, &r);
  wait_at_least(&site_gate, GATE_HOLDING); /* in its report, holding the mutex */
  be_pool_release(p, c);                   /* parks: no mutex */
  snprintf(file, sizeof file, "reused_buffer.c");
  atomic_store(&site_gate, GATE_OPEN);
  pthread_join(t, NULL);
  ck_assert_int_eq(r.rc, BE_E_POOL_EXHAUSTED);
  const char *msg = be_error_message(r.err);
  ck_assert_msg(strstr(msg, "reused_buffer") == NULL, "read after the release: %s", msg);
  be_error_free(r.err);
  be_pool_free(p);
  be_clock_free(clk);
}
END_TEST

/* A thread claims its parked connection, finds it past its lifetime and
 * closes it under the mutex, while a waiter queued meanwhile on the full
 * pool: the capacity goes to the waiter (it opens a connection), which
 * before waited out its timeout with a slot free. */
START_TEST(affinity_stale_claim_grants_capacity_to_waiters) {
  be_clock *clk;
  ck_assert_int_eq(be_clock_custom_new(&clk, held_clock_read, NULL, NULL, NULL), BE_OK);
  atomic_store(&held_clock_now, BE_NS_PER_SEC);
  atomic_store(&held_clock_gate, GATE_ARMED);
  be_pool_options o = mock_opts(0, 2);
  o.clock = clk;
  o.max_lifetime_ms = 10000;
  o.lifetime_jitter_permille = 0;
  o.usage_alert_percent = 0;
  o.acquire_timeout_ms = 5000;
  be_pool *p = new_pool(&o);
  stale_claimer a = {.p = p};
  pthread_t ta;
  pthread_create(&ta, NULL, stale_claimer_run, &a);
  wait_at_least(&a.done, 1);
  be_conn *m;
  ck_assert_int_eq(be_pool_acquire(&m, p, NULL), BE_OK); /* the pool is full */
  atomic_store(&a.step, 1);
  wait_at_least(&a.done, 2);
  atomic_fetch_add(&held_clock_now, 20 * BE_NS_PER_SEC); /* past the lifetime */
  atomic_store(&a.step, 2);
  wait_at_least(&held_clock_gate, GATE_HOLDING); /* claimed, not yet under the mutex */
  acq_result w = {.pool = p};
  pthread_t tw;
  pthread_create(&tw, NULL, acquire_once, &w);
  wait_for_waiting(p, 1);
  atomic_store(&held_clock_gate, GATE_OPEN);
  pthread_join(tw, NULL);
  pthread_join(ta, NULL);
  ck_assert_msg(w.rc == BE_OK, "waiter: %s", be_error_message(w.err));
  ck_assert_int_lt(w.elapsed_ms, 4000);
  ck_assert_int_eq(a.rc, BE_OK);
  be_error_free(w.err);
  be_pool_release(p, m);
  be_pool_free(p);
  be_clock_free(clk);
}
END_TEST

/* A connection parked past the validation window is pinged before reuse,
 * and one parked past its lifetime is replaced. */
START_TEST(affinity_stale_parked_validated) {
  be_clock *clk;
  ck_assert_int_eq(be_clock_fake_new(&clk, 0, 0, NULL), BE_OK);
  be_pool_options o = mock_opts(1, 2);
  o.clock = clk;
  o.validation_window_ms = 500;
  o.max_lifetime_ms = 10000;
  o.lifetime_jitter_permille = 0;
  be_pool *p = new_pool(&o);
  be_conn *c, *d;
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  be_pool_release(p, c); /* parked */
  be_clock_advance(clk, BE_NS_PER_SEC, NULL);
  ck_assert_int_eq(be_pool_acquire(&d, p, NULL), BE_OK);
  ck_assert_ptr_eq(d, c);
  ck_assert_uint_eq(stats(p).validations, 1);
  be_pool_release(p, d);
  be_clock_advance(clk, 10 * BE_NS_PER_SEC, NULL);
  ck_assert_int_eq(be_pool_acquire(&d, p, NULL), BE_OK);
  be_pool_stats s = stats(p);
  ck_assert_uint_eq(s.expired, 1);
  ck_assert_uint_eq(s.creates, 2);
  ck_assert_uint_eq(s.acquires, 3);
  ck_assert_int_eq(s.in_use, 1);
  be_pool_release(p, d);
  be_pool_free(p);
  be_clock_free(clk);
}
END_TEST

typedef struct free_race {
  be_pool *pool;
  be_conn *conn[4];
  _Atomic int go;
} free_race;

typedef struct free_race_arg {
  free_race *r;
  int i;
} free_race_arg;

static void *release_on_go(void *arg) {
  free_race_arg *a = arg;
  while (!atomic_load(&a->r->go)) {
  }
  be_pool_release(a->r->pool, a->r->conn[a->i]);
  return NULL;
}

/* Releases racing be_pool_free(): a release that is parking its
 * connection while close takes the parked ones must not touch the pool
 * after the last one out freed it (ASan / TSan). */
START_TEST(affinity_release_racing_free) {
  for (int round = 0; round < 200; round++) {
    be_pool_options o = mock_opts(0, 4);
    free_race r = {.pool = new_pool(&o)};
    for (int i = 0; i < 4; i++) ck_assert_int_eq(be_pool_acquire(&r.conn[i], r.pool, NULL), BE_OK);
    pthread_t t[4];
    free_race_arg a[4];
    for (int i = 0; i < 4; i++) {
      a[i] = (free_race_arg){&r, i};
      pthread_create(&t[i], NULL, release_on_go, &a[i]);
    }
    atomic_store(&r.go, 1);
    be_pool_free(r.pool); /* the last release frees it */
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  }
}
END_TEST

static Suite *pool_suite(void) {
  Suite *s = suite_create("pool");
  TCase *tc = tcase_create("pool");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, options_defaults);
  tcase_add_test(tc, options_version_1_still_works);
  tcase_add_test(tc, bad_options);
  tcase_add_test(tc, driver_follows_the_dsn);
  tcase_add_test(tc, null_arguments);
  tcase_add_test(tc, new_opens_min_and_reports_unreachable);
  tcase_add_test(tc, idle_reused_most_recent_first);
  tcase_add_test(tc, fifo_eight_threads_on_two);
  tcase_add_test(tc, stress_nothing_lost);
  tcase_add_test(tc, exhaustion_times_out_with_state);
  tcase_add_test(tc, self_deadlock_fails_fast);
  tcase_add_test(tc, exited_holders_connection_is_not_the_next_threads);
  tcase_add_test(tc, free_waits_for_a_close_under_way);
  tcase_add_test(tc, close_wakes_waiters);
  tcase_add_test(tc, free_with_connection_out_defers);
  tcase_add_test(tc, free_with_waiters_and_holder);
  tcase_add_test(tc, dead_idle_connection_replaced);
  tcase_add_test(tc, deleted_database_is_not_recreated);
  tcase_add_test(tc, broken_in_use_destroyed_on_release);
  tcase_add_test(tc, fault_driver_lost_connections_replaced);
  tcase_add_test(tc, release_rolls_back_open_transaction);
  tcase_add_test(tc, failed_rollback_destroys);
  tcase_add_test(tc, stats_exact_after_script);
  tcase_add_test(tc, usage_alert_fires_once_per_crossing);
  tcase_add_test(tc, usage_alert_is_rate_limited);
  tcase_add_test(tc, usage_alert_with_max_one_logs_a_handful);
  tcase_add_test(tc, usage_alert_sees_a_crossing_during_a_ping);
  tcase_add_test(tc, usage_alert_rearms_below_a_low_level);
  tcase_add_test(tc, incidents_recorded_for_pool_failures);
  tcase_add_test(tc, leak_report_names_acquire_site);
  tcase_add_test(tc, background_thread_runs_timers);
  tcase_add_test(tc, lifetime_and_idle_reaping);
  tcase_add_test(tc, lifetime_jitter_spreads_expiry);
  tcase_add_test(tc, fake_clock_deadline_times_out_waiter);
  tcase_add_test(tc, release_misuse_is_ignored);
  tcase_add_test(tc, pool_tx_run_commits_and_rolls_back);
  tcase_add_test(tc, handoff_keeps_usage_alert_quiet);
  tcase_add_test(tc, allocation_failures_leak_nothing);
  tcase_add_test(tc, pool_query_stats_count_every_statement_from_two_threads);
  tcase_add_test(tc, pool_slowlog_uses_pool_clock);
  tcase_add_test(tc, closed_connections_leave_no_observer_behind);
  tcase_add_test(tc, scope_on_pooled_connection_counts);
  tcase_add_test(tc, release_resets_pending_statements);
  tcase_add_test(tc, release_detaches_scope_left_attached);
  tcase_add_test(tc, release_restores_the_pools_own_observers);
  tcase_add_test(tc, release_keeps_what_connection_init_attached);
  tcase_add_test(tc, release_checks_every_kept_observer);
  tcase_add_test(tc, huge_acquire_timeout_waits);
  tcase_add_test(tc, conn_lost_on_reset_is_replaced);
  tcase_add_test(tc, connection_init_runs_once_per_new_connection);
  tcase_add_test(tc, connection_init_failure_is_typed_and_leaks_nothing);
  tcase_add_test(tc, affinity_stats_exact_under_threads);
  tcase_add_test(tc, affinity_release_does_not_barge_past_waiter);
  tcase_add_test(tc, affinity_usage_alert_counts_real_use);
  tcase_add_test(tc, affinity_claims_race_close_and_maintenance);
  tcase_add_test(tc, affinity_stale_parked_validated);
  tcase_add_test(tc, affinity_stale_claim_grants_capacity_to_waiters);
  tcase_add_test(tc, timeout_report_never_reads_a_released_site);
  tcase_add_test(tc, open_failure_incident_counts_parked_as_idle);
  tcase_add_test(tc, affinity_release_racing_free);
  suite_add_tcase(s, tc);
  return s;
}


TU_MAIN(pool_suite)
