/* SPDX-License-Identifier: MIT */
/* Query observability: the N+1 detector (scopes), the slow-query log and
 * per-pool query stats, all fed by the connection's statement observer. */
#include "testutil.h"

#include <sqlite3.h>

#include "sqlite.h"
#include "sqlnorm.h"
#include "storage.h"

static char *dir;
static char dsn[600];

static be_conn *open_conn(void) {
  be_conn *c = NULL;
  ck_assert_int_eq(be_conn_open(&c, be_sqlite_driver(), dsn, NULL), BE_OK);
  return c;
}

static void setup(void) {
  dir = tu_tempdir();
  snprintf(dsn, sizeof dsn, "%s/scope.db", dir);
  be_conn *c = open_conn();
  ck_assert_int_eq(be_conn_exec(c, "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT);"
                                   "INSERT INTO users VALUES (1, 'ann'), (2, 'bob'), (3, 'cy');",
                                NULL),
                   BE_OK);
  be_conn_close(c);
}

static void teardown(void) { tu_rmdir(dir); }

/* ---- captured log events ---- */
static int n_events;
static char ev_msg[256], ev_sql[512], ev_count[32], ev_hint[256];

static void capture(int32_t level, const char *message, const be_log_field *f, size_t n, void *ud) {
  (void)level;
  (void)ud;
  n_events++;
  snprintf(ev_msg, sizeof ev_msg, "%s", message);
  for (size_t i = 0; i < n; i++) {
    if (strcmp(f[i].key, "sql") == 0) snprintf(ev_sql, sizeof ev_sql, "%s", f[i].value);
    if (strcmp(f[i].key, "count") == 0) snprintf(ev_count, sizeof ev_count, "%s", f[i].value);
    if (strcmp(f[i].key, "hint") == 0) snprintf(ev_hint, sizeof ev_hint, "%s", f[i].value);
  }
}

static void run_select(be_conn *c, const char *sql, int64_t bound) {
  be_stmt *st = NULL;
  ck_assert_int_eq(be_conn_prepare(&st, c, sql, NULL), BE_OK);
  if (strchr(sql, '?')) ck_assert_int_eq(be_stmt_bind_int64(st, 1, bound, NULL), BE_OK);
  while (be_stmt_step(st, NULL) == BE_ROW) {}
  be_stmt_finalize(st);
}

START_TEST(normalize_sql) {
  char out[256];
  uint64_t a = be__sql_normalize("SELECT name FROM users WHERE id = 1", out, sizeof out);
  ck_assert_str_eq(out, "SELECT name FROM users WHERE id = ?");
  uint64_t b = be__sql_normalize("SELECT  name\n FROM users -- c\n WHERE id = ?", out, sizeof out);
  ck_assert(a == b);
  be__sql_normalize("SELECT * FROM t WHERE k IN (1, 2, 3) AND s = 'it''s' AND b = x'00' AND f = -1.5e3",
                    out, sizeof out);
  ck_assert_str_eq(out, "SELECT * FROM t WHERE k IN (?) AND s = ? AND b = ? AND f = -?");
  ck_assert(be__sql_normalize("SELECT a FROM t WHERE k IN (?,?)", out, sizeof out) ==
            be__sql_normalize("SELECT a FROM t WHERE k IN ( ?, ?, ?, ? )", out, sizeof out));
  be__sql_normalize("SELECT t1.a, \"x 1\" FROM t1 WHERE a = $1 AND b = :name AND c = @v AND d = ?12",
                    out, sizeof out);
  ck_assert_str_eq(out, "SELECT t1.a, \"x 1\" FROM t1 WHERE a = ? AND b = ? AND c = ? AND d = ?");
  char small[12];
  be__sql_normalize("SELECT something_long FROM t", small, sizeof small);
  ck_assert_str_eq(small, "SELECT s...");
}
END_TEST

START_TEST(detector_fires_after_k_not_at_k) {
  be_conn *c = open_conn();
  be_log_set_handler(capture, NULL, BE_LOG_DEBUG, NULL);
  n_events = 0;
  be_scope *s = NULL;
  ck_assert_int_eq(be_scope_begin(&s, c, NULL, NULL), BE_OK); /* K = 10 */
  for (int i = 0; i < 10; i++) run_select(c, "SELECT name FROM users WHERE id = ?", i);
  ck_assert_int_eq(n_events, 0);
  ck_assert_int_eq(be_scope_worst_count(s), 10);
  run_select(c, "SELECT name FROM users WHERE id = ?", 11);
  ck_assert_int_eq(n_events, 1);
  ck_assert_str_eq(ev_sql, "SELECT name FROM users WHERE id = ?");
  ck_assert_str_eq(ev_count, "11");
  ck_assert_ptr_nonnull(strstr(ev_hint, "batch-load"));
  ck_assert_ptr_nonnull(strstr(ev_msg, "N+1"));
  for (int i = 0; i < 20; i++) run_select(c, "SELECT name FROM users WHERE id = ?", i);
  ck_assert_int_eq(n_events, 1); /* once per statement */
  /* literals differ, shape is the same: counted together */
  run_select(c, "SELECT id FROM users WHERE name = 'ann'", 0);
  run_select(c, "SELECT id FROM users WHERE name = 'bob'", 0);
  ck_assert_int_eq(be_scope_query_count(s), 33);
  ck_assert_int_eq(be_scope_distinct_count(s), 2);
  ck_assert_int_eq(be_scope_worst_count(s), 31);
  ck_assert_str_eq(be_scope_worst_sql(s), "SELECT name FROM users WHERE id = ?");
  ck_assert_int_eq(be_scope_report_count(s), 1);
  be_scope_end(s);
  run_select(c, "SELECT 1", 0);
  ck_assert_int_eq(be_scope_query_count(s), 33); /* ended: no more counting */
  ck_assert_int_eq(be_scope_attach(s, c, NULL), BE_E_MISUSE);
  be_scope_end(s);
  be_scope_free(s);
  /* custom K, two connections in one scope, exec counted too */
  be_conn *c2 = open_conn();
  be_scope_options o;
  ck_assert_int_eq(be_scope_options_init(&o, BE_SCOPE_OPTIONS_VERSION), BE_OK);
  o.repeat_threshold = 2;
  ck_assert_int_eq(be_scope_begin(&s, c, &o, NULL), BE_OK);
  ck_assert_int_eq(be_scope_attach(s, c2, NULL), BE_OK);
  ck_assert_int_eq(be_scope_attach(s, c2, NULL), BE_OK); /* twice: no-op */
  run_select(c, "SELECT name FROM users WHERE id IN (1, 2)", 0);
  run_select(c2, "SELECT name FROM users WHERE id IN (1, 2, 3)", 0);
  ck_assert_int_eq(n_events, 1);
  ck_assert_int_eq(be_conn_exec(c2, "SELECT name FROM users WHERE id IN (3)", NULL), BE_OK);
  ck_assert_int_eq(n_events, 2);
  ck_assert_str_eq(ev_sql, "SELECT name FROM users WHERE id IN (?)");
  ck_assert_str_eq(ev_count, "3");
  be_scope_free(s);
  /* bad options */
  be_error *e = NULL;
  o.repeat_threshold = 0;
  ck_assert_int_eq(be_scope_begin(&s, c, &o, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "repeat_threshold");
  be_error_free(e);
  o.repeat_threshold = 3;
  o.log_level = 12;
  ck_assert_int_eq(be_scope_begin(&s, c, &o, NULL), BE_E_VALIDATION);
  o.version = 42;
  ck_assert_int_eq(be_scope_begin(&s, c, &o, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_scope_begin(&s, NULL, NULL, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_scope_begin(NULL, c, NULL, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_scope_options_init(NULL, BE_SCOPE_OPTIONS_VERSION), BE_E_MISUSE);
  ck_assert_int_eq(be_scope_query_count(NULL), 0);
  ck_assert_ptr_null(be_scope_worst_sql(NULL));
  be_scope_free(NULL);
  be_scope_end(NULL);
  be_log_set_handler(NULL, NULL, BE_LOG_WARN, NULL);
  be_conn_close(c2);
  be_conn_close(c);
}
END_TEST

START_TEST(loader_keeps_detector_quiet) {
  /* the N+1 loop the detector flags, and the loader version it does not */
  be_conn *c = open_conn();
  be_log_set_handler(capture, NULL, BE_LOG_DEBUG, NULL);
  n_events = 0;
  be_scope *s = NULL;
  ck_assert_int_eq(be_scope_begin(&s, c, NULL, NULL), BE_OK);
  const char *cols[] = {"name"};
  be_batch_options o = BE_BATCH_OPTIONS_INIT;
  o.table = "users";
  o.columns = cols;
  o.column_count = 1;
  o.key_column = "id";
  be_loader *l = NULL;
  ck_assert_int_eq(be_loader_new(&l, c, &o, BE_TYPE_INT, NULL), BE_OK);
  for (int64_t i = 0; i < 50; i++) be_loader_want_int64(l, i, NULL);
  for (int64_t i = 0; i < 50; i++) {
    const be_rows *r;
    size_t first, n;
    ck_assert_int_eq(be_loader_get_int64(&r, &first, &n, l, i, NULL), BE_OK);
    ck_assert_uint_eq(n, i >= 1 && i <= 3 ? 1 : 0);
  }
  ck_assert_int_eq(be_scope_query_count(s), 1);
  ck_assert_int_eq(n_events, 0);
  be_loader_free(l);
  be_scope_free(s);
  be_log_set_handler(NULL, NULL, BE_LOG_WARN, NULL);
  be_conn_close(c);
}
END_TEST

/* ---- slow-query log with a fake clock ---- */

/* SQL function slow(ms): advances the fake clock, as if the statement took ms. */
static void slow_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  be_clock_advance(sqlite3_user_data(ctx), sqlite3_value_int64(argv[0]) * BE_NS_PER_MS, NULL);
  sqlite3_result_int(ctx, 1);
}

/* Capacity 3, five slow statements: the oldest fall out, the JSON is redacted. */
static void slowlog_check_wrap(be_conn *c, be_slowlog *log) {
  char *sql = NULL;
  int64_t dur = 0;
  for (int i = 1; i <= 4; i++) {
    char q[96];
    snprintf(q, sizeof q, "SELECT slow(%d) AS run%d", 100 + i, i);
    run_select(c, q, 0);
  }
  ck_assert_uint_eq(be_slowlog_count(log), 3);
  ck_assert_uint_eq(be_slowlog_total(log), 5);
  ck_assert_int_eq(be_slowlog_get(&sql, &dur, NULL, NULL, log, 0, NULL), BE_OK); /* oldest held */
  ck_assert_str_eq(sql, "SELECT slow(?) AS run2");
  ck_assert_int_eq(dur, 102 * BE_NS_PER_MS);
  be_free(sql);
  ck_assert_int_eq(be_slowlog_get(&sql, NULL, NULL, NULL, log, 2, NULL), BE_OK);
  ck_assert_str_eq(sql, "SELECT slow(?) AS run4");
  be_free(sql);
  be_error *e = NULL;
  ck_assert_int_eq(be_slowlog_get(&sql, NULL, NULL, NULL, log, 3, &e), BE_E_NOT_FOUND);
  ck_assert_ptr_null(sql);
  be_error_free(e);
  char *json = NULL;
  size_t jl = 0;
  ck_assert_int_eq(be_slowlog_to_json(&json, &jl, log, NULL), BE_OK);
  ck_assert_ptr_nonnull(strstr(json, "\"total\":5"));
  ck_assert_ptr_nonnull(strstr(json, "\"sql\":\"SELECT slow(?) AS run3\",\"duration_ns\":103000000"));
  ck_assert_ptr_null(strstr(json, "secret"));
  ck_assert_uint_eq(jl, strlen(json));
  be_free(json);
}

/* Bad options and misuse get typed errors. */
static void slowlog_check_misuse(be_slowlog *log, be_conn *c, be_slowlog_options o) {
  be_error *e = NULL;
  be_slowlog *l2 = log;
  o.capacity = 0;
  ck_assert_int_eq(be_slowlog_new(&l2, &o, &e), BE_E_VALIDATION);
  ck_assert_ptr_null(l2);
  ck_assert_str_eq(be_error_field_name(e, 0), "capacity");
  be_error_free(e);
  o.capacity = 3;
  o.threshold_ms = -1;
  ck_assert_int_eq(be_slowlog_new(&l2, &o, NULL), BE_E_VALIDATION);
  o.version = 9;
  ck_assert_int_eq(be_slowlog_new(&l2, &o, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_slowlog_attach(NULL, c, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_slowlog_attach(log, NULL, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_slowlog_to_json(NULL, NULL, log, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_query_stats_attach(NULL, c, NULL), BE_E_MISUSE);
  ck_assert_uint_eq(be_slowlog_count(NULL), 0);
}

START_TEST(slowlog_records_redacts_and_wraps) {
  be_conn *c = open_conn();
  be_clock *clk = NULL;
  ck_assert_int_eq(be_clock_fake_new(&clk, 0, 1700000000 * BE_NS_PER_SEC, NULL), BE_OK);
  be__conn_set_clock(c, clk);
  ck_assert_int_eq(sqlite3_create_function(be__sqlite_db(c), "slow", 1, SQLITE_UTF8, clk, slow_fn,
                                           NULL, NULL),
                   SQLITE_OK);
  be_slowlog_options o = BE_SLOWLOG_OPTIONS_INIT;
  ck_assert_int_eq(o.threshold_ms, 100);
  o.capacity = 3;
  o.clock = clk;
  be_slowlog *log = NULL;
  ck_assert_int_eq(be_slowlog_new(&log, &o, NULL), BE_OK);
  be_query_stats *qs = NULL;
  ck_assert_int_eq(be_query_stats_new(&qs, NULL), BE_OK);
  ck_assert_int_eq(be_slowlog_attach(log, c, NULL), BE_OK);
  ck_assert_int_eq(be_query_stats_attach(qs, c, NULL), BE_OK);
  run_select(c, "SELECT slow(100)", 0); /* exactly the threshold: not slow */
  ck_assert_uint_eq(be_slowlog_count(log), 0);
  run_select(c, "SELECT slow(150), name FROM users WHERE name = 'secret-literal' OR id > ?", 2);
  ck_assert_uint_eq(be_slowlog_count(log), 1);
  char *sql = NULL;
  int64_t dur = 0, rows = 0, wall = 0;
  ck_assert_int_eq(be_slowlog_get(&sql, &dur, &rows, &wall, log, 0, NULL), BE_OK);
  ck_assert_str_eq(sql, "SELECT slow(?), name FROM users WHERE name = ? OR id > ?");
  ck_assert_int_eq(dur, 150 * BE_NS_PER_MS);
  ck_assert_int_eq(rows, 1);
  ck_assert_int_eq(wall, 1700000000 * BE_NS_PER_SEC + 250 * BE_NS_PER_MS);
  be_free(sql);
  slowlog_check_wrap(c, log);
  /* stats saw every statement; errors are counted */
  char *json = NULL;
  run_select(c, "SELECT json('not json')", 0);
  ck_assert_uint_eq(be_query_stats_queries(qs), 7);
  ck_assert_uint_eq(be_query_stats_errors(qs), 1);
  ck_assert_uint_eq(be_query_stats_rows(qs), 6);
  ck_assert_uint_eq(be_histogram_count(be_query_stats_histogram(qs)), 7);
  ck_assert_int_eq(be_histogram_max(be_query_stats_histogram(qs)), 150 * BE_NS_PER_MS);
  ck_assert_int_eq(be_query_stats_to_json(&json, NULL, qs, NULL), BE_OK);
  ck_assert_ptr_nonnull(strstr(json, "\"queries\":7,\"errors\":1,\"rows\":6"));
  be_free(json);
  /* detach one: the other keeps observing */
  be_slowlog_detach(log, c);
  run_select(c, "SELECT slow(500)", 0);
  ck_assert_uint_eq(be_slowlog_total(log), 5);
  ck_assert_uint_eq(be_query_stats_queries(qs), 8);
  ck_assert_int_eq(be_slowlog_record(log, "SELECT 'x' FROM host", 200 * BE_NS_PER_MS, 2, NULL), BE_OK);
  ck_assert_uint_eq(be_slowlog_total(log), 6);
  be_slowlog_clear(log);
  ck_assert_uint_eq(be_slowlog_count(log), 0);
  be_query_stats_reset(qs);
  ck_assert_uint_eq(be_query_stats_queries(qs), 0);
  slowlog_check_misuse(log, c, o);
  be_slowlog_free(log); /* frees while still attached elsewhere: detaches */
  be_query_stats_free(qs);
  be_slowlog_free(NULL);
  be_query_stats_free(NULL);
  run_select(c, "SELECT 1", 0); /* nothing attached any more */
  be_conn_close(c);
  be_clock_free(clk);
}
END_TEST

START_TEST(slow_recursive_cte_with_system_clock) {
  be_conn *c = open_conn();
  be_slowlog_options o = BE_SLOWLOG_OPTIONS_INIT;
  o.threshold_ms = 1;
  be_slowlog *log = NULL;
  ck_assert_int_eq(be_slowlog_new(&log, &o, NULL), BE_OK);
  ck_assert_int_eq(be_slowlog_attach(log, c, NULL), BE_OK);
  run_select(c, "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 300000)"
                " SELECT sum(x) FROM n WHERE x > 7",
             0);
  ck_assert_uint_eq(be_slowlog_count(log), 1);
  int64_t dur = 0;
  char *sql = NULL;
  ck_assert_int_eq(be_slowlog_get(&sql, &dur, NULL, NULL, log, 0, NULL), BE_OK);
  ck_assert_int_gt(dur, BE_NS_PER_MS);
  ck_assert_ptr_null(strstr(sql, "300000"));
  be_free(sql);
  be_slowlog_free(log);
  be_conn_close(c);
}
END_TEST

START_TEST(closing_connection_detaches) {
  /* close with everything attached: nothing is left behind (ASan) */
  be_query_stats *qs = NULL;
  be_slowlog *log = NULL;
  be_scope *sc = NULL;
  ck_assert_int_eq(be_query_stats_new(&qs, NULL), BE_OK);
  ck_assert_int_eq(be_slowlog_new(&log, NULL, NULL), BE_OK);
  be_conn *c = open_conn(), *c2 = open_conn();
  ck_assert_ptr_nonnull(be__sqlite_db(c));
  ck_assert_ptr_null(be__sqlite_db(NULL));
  ck_assert_int_eq(be_scope_begin(&sc, c, NULL, NULL), BE_OK);
  ck_assert_int_eq(be_scope_attach(sc, c2, NULL), BE_OK);
  ck_assert_int_eq(be_query_stats_attach(qs, c, NULL), BE_OK);
  ck_assert_int_eq(be_query_stats_attach(qs, c2, NULL), BE_OK);
  ck_assert_int_eq(be_slowlog_attach(log, c, NULL), BE_OK);
  ck_assert_int_eq(be__conn_observer_count(c), 3);
  run_select(c, "SELECT 1", 0);
  run_select(c2, "SELECT 2", 0);
  ck_assert_int_eq(be_scope_query_count(sc), 2);
  be_conn_close(c);
  /* a new connection, quite possibly at c's address, inherits nothing */
  be_conn *c3 = open_conn();
  ck_assert_int_eq(be__conn_observer_count(c3), 0);
  run_select(c3, "SELECT 3", 0);
  ck_assert_uint_eq(be_query_stats_queries(qs), 2);
  ck_assert_int_eq(be_scope_query_count(sc), 2);
  run_select(c2, "SELECT 4", 0); /* c2 still observed by both */
  ck_assert_uint_eq(be_query_stats_queries(qs), 3);
  ck_assert_int_eq(be_scope_query_count(sc), 3);
  be_scope_free(sc); /* detaches from c2 only */
  ck_assert_int_eq(be__conn_observer_count(c2), 1);
  be_query_stats_free(qs);
  ck_assert_int_eq(be__conn_observer_count(c2), 0);
  be_slowlog_free(log);
  be_conn_close(c2);
  be_conn_close(c3);
}
END_TEST

static int obs_alloc_body(void *arg) {
  (void)arg;
  be_conn *c = NULL;
  be_scope *s = NULL;
  be_slowlog *log = NULL;
  be_query_stats *qs = NULL;
  char *json = NULL;
  int rc = be_conn_open(&c, be_sqlite_driver(), dsn, NULL);
  if (rc != BE_OK) return rc;
  be_slowlog_options o = BE_SLOWLOG_OPTIONS_INIT;
  o.threshold_ms = 0;
  if ((rc = be_scope_begin(&s, c, NULL, NULL)) != BE_OK) goto done;
  if ((rc = be_slowlog_new(&log, &o, NULL)) != BE_OK) goto done;
  if ((rc = be_slowlog_attach(log, c, NULL)) != BE_OK) goto done;
  if ((rc = be_query_stats_new(&qs, NULL)) != BE_OK) goto done;
  if ((rc = be_query_stats_attach(qs, c, NULL)) != BE_OK) goto done;
  for (int i = 0; i < 40; i++) {
    char q[64];
    snprintf(q, sizeof q, "SELECT %d AS c%d", i, i % 37); /* many distinct shapes */
    if ((rc = be_conn_exec(c, q, NULL)) != BE_OK) goto done;
  }
  if ((rc = be_slowlog_to_json(&json, NULL, log, NULL)) != BE_OK) goto done;
  be_free(json);
  if ((rc = be_query_stats_to_json(&json, NULL, qs, NULL)) != BE_OK) goto done;
  be_free(json);
  char *sql = NULL;
  if ((rc = be_slowlog_get(&sql, NULL, NULL, NULL, log, 0, NULL)) != BE_OK) goto done;
  be_free(sql);
done:
  be_scope_free(s);
  be_slowlog_free(log);
  be_query_stats_free(qs);
  be_conn_close(c);
  return rc;
}

START_TEST(observers_allocation_failures_do_not_leak) {
  TU_FOR_EACH_ALLOC_FAILURE(obs_alloc_body, NULL);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("scope");
  TCase *tc = tcase_create("scope");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, normalize_sql);
  tcase_add_test(tc, detector_fires_after_k_not_at_k);
  tcase_add_test(tc, loader_keeps_detector_quiet);
  tcase_add_test(tc, slowlog_records_redacts_and_wraps);
  tcase_add_test(tc, slow_recursive_cte_with_system_clock);
  tcase_add_test(tc, closing_connection_detaches);
  tcase_add_test(tc, observers_allocation_failures_do_not_leak);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(suite)
