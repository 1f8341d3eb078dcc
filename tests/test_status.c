/* SPDX-License-Identifier: MIT */
/* Operations: per-operation metrics, statement statistics, incidents,
 * status with its targets, memory by component and the exports
 * (backend/metrics.h, stmt_stats.h, incident.h, status.h). */
#include "svc_testutil.h"

#include "metrics.h" /* BE__METRICS_RARE_SHIFT: the sampling interval of fast calls */

#include <backend/backend.h>
#include <backend/fault.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>

/* A clock that moves forward `step` ns on every monotonic reading, so a
 * call takes as long as the test says. */
static _Atomic int64_t tick_now, tick_step;
static int64_t ticking(void *ud) {
  (void)ud;
  return atomic_fetch_add(&tick_now, atomic_load(&tick_step)) + 1;
}

static be_clock *ticking_clock(void) {
  atomic_store(&tick_now, 1000000000);
  atomic_store(&tick_step, 0);
  be_clock *c = NULL;
  ck_assert_int_eq(be_clock_custom_new(&c, ticking, NULL, NULL, NULL), BE_OK);
  return c;
}

static be_user *get_user(be_app *app, int64_t id) {
  be_user *u = NULL;
  be_error *e = NULL;
  ck_assert_msg(be_user_get(&u, app, id, &e) == BE_OK, "get: %s", be_error_message(e));
  return u;
}

START_TEST(ops_count_calls_errors_and_latency) {
  be_app *app = svc_app_ex(NULL, NULL, 4);
  int64_t id = svc_user(app, "ops@example.com", "Ops");
  for (int i = 0; i < 100; i++) be_user_free(get_user(app, id));
  be_user *u = NULL;
  ck_assert_int_eq(be_user_get(&u, app, id + 1000, NULL), BE_E_NOT_FOUND);
  be_op_stats s = BE_OP_STATS_INIT;
  ck_assert_int_eq(be_app_op_stats_get(&s, app, BE_OP_USER_GET, NULL), BE_OK);
  ck_assert_int_eq(s.op, BE_OP_USER_GET);
  ck_assert_int_eq(s.calls, 101);
  ck_assert_int_eq(s.errors, 1);
  ck_assert_int_eq(s.server_errors, 0); /* 404 is the client's */
  ck_assert_int_gt(s.p50_ns, 0);
  ck_assert_int_le(s.p50_ns, s.p95_ns);
  ck_assert_int_le(s.p95_ns, s.p99_ns);
  ck_assert_int_le(s.p99_ns, s.max_ns);
  ck_assert_int_ge(s.total_ns, s.max_ns);
  ck_assert_int_eq(be_app_op_stats_get(&s, app, BE_OP_USER_CREATE, NULL), BE_OK);
  ck_assert_int_eq(s.calls, 1);
  ck_assert_int_eq(be_user_get_fresh(&u, app, id, NULL), BE_OK);
  be_user_free(u);
  ck_assert_int_eq(be_app_op_stats_get(&s, app, BE_OP_USER_GET_FRESH, NULL), BE_OK);
  ck_assert_int_eq(s.calls, 1);
  ck_assert_int_eq(be_app_op_stats_get(&s, app, BE_OP_CACHE_LOAD, NULL), BE_OK);
  ck_assert_int_eq(s.calls, 2); /* the first get, and the missing id */
  ck_assert_int_eq(be_app_op_stats_get(&s, app, BE_OP_POOL_ACQUIRE, NULL), BE_OK);
  ck_assert_int_ge(s.calls, 3);
  /* bad input */
  be_error *e = NULL;
  ck_assert_int_eq(be_app_op_stats_get(&s, app, BE_OP_COUNT, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "op");
  be_error_free(e);
  ck_assert_int_eq(be_app_op_stats_get(NULL, app, 0, NULL), BE_E_MISUSE);
  s.version = 99;
  ck_assert_int_eq(be_app_op_stats_get(&s, app, 0, NULL), BE_E_MISUSE);
  be_app_metrics_reset(app);
  be_op_stats z = BE_OP_STATS_INIT;
  ck_assert_int_eq(be_app_op_stats_get(&z, app, BE_OP_USER_GET, NULL), BE_OK);
  ck_assert_int_eq(z.calls, 0);
  be_app_free(app);
}
END_TEST

/* Fast calls (under 1 us) are timed one in 1024, slow ones (20 us or
 * more) every time; counts are exact either way. */
START_TEST(ops_sample_fast_calls_time_slow_ones) {
  const int rare = 1 << BE__METRICS_RARE_SHIFT;
  be_clock *clk = ticking_clock();
  be_app *app = svc_app_ex(NULL, clk, 2);
  int64_t id = svc_user(app, "sample@example.com", "S");
  for (int i = 0; i < rare + 65; i++) be_user_free(get_user(app, id)); /* 0 ns each here */
  be_op_stats s = BE_OP_STATS_INIT;
  ck_assert_int_eq(be_app_op_stats_get(&s, app, BE_OP_USER_GET, NULL), BE_OK);
  ck_assert_int_eq(s.calls, rare + 65);
  ck_assert_int_eq(s.timed, 2);    /* calls 0 and rare */
  atomic_store(&tick_step, 25000); /* every reading 25 us later: calls are slow */
  for (int i = 0; i < rare + 135; i++) be_user_free(get_user(app, id));
  atomic_store(&tick_step, 0);
  be_op_stats t = BE_OP_STATS_INIT;
  ck_assert_int_eq(be_app_op_stats_get(&t, app, BE_OP_USER_GET, NULL), BE_OK);
  ck_assert_int_eq(t.calls, 2 * rare + 200);
  /* untimed until call 2 * rare, then every call */
  ck_assert_int_eq(t.timed - s.timed, 200);
  ck_assert_int_ge(t.p95_ns, 25000);
  be_app_free(app);
  be_clock_free(clk);
}
END_TEST

START_TEST(op_names_round_trip) {
  for (int32_t op = 0; op < BE_OP_COUNT; op++) {
    int32_t back = -1;
    ck_assert_int_eq(be_op_find(&back, be_op_name(op), NT, NULL), BE_OK);
    ck_assert_int_eq(back, op);
  }
  ck_assert_str_eq(be_op_name(BE_OP_USER_GET), "user.get");
  ck_assert_str_eq(be_op_name(-1), "unknown");
  int32_t op = 0;
  ck_assert_int_eq(be_op_find(&op, "user.nope", NT, NULL), BE_E_NOT_FOUND);
  ck_assert_int_eq(be_op_find(&op, "user.getXX", 8, NULL), BE_OK);
  ck_assert_int_eq(op, BE_OP_USER_GET);
}
END_TEST

/* Metrics off: nothing is recorded, calls still work. */
START_TEST(metrics_can_be_disabled) {
  be_app_options o;
  svc_fast_options(&o, ":memory:");
  o.disable_metrics = 1;
  be_app *app = NULL;
  ck_assert_int_eq(be_app_new(&app, &o, NULL), BE_OK);
  int64_t id = svc_user(app, "off@example.com", "Off");
  be_user_free(get_user(app, id));
  be_op_stats s = BE_OP_STATS_INIT;
  ck_assert_int_eq(be_app_op_stats_get(&s, app, BE_OP_USER_GET, NULL), BE_OK);
  ck_assert_int_eq(s.calls, 0);
  be_app_free(app);
  o.disable_metrics = 2;
  be_error *e = NULL;
  ck_assert_int_eq(be_app_new(&app, &o, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "disable_metrics");
  be_error_free(e);
}
END_TEST

typedef struct recorder {
  be_app *app;
  int64_t id;
} recorder;

static void *record_gets(void *arg) {
  recorder *r = arg;
  for (int i = 0; i < 2000; i++) be_user_free(get_user(r->app, r->id));
  return NULL;
}

/* Two threads recording the same operation lose no call. */
START_TEST(ops_recorded_from_threads) {
  be_app *app = svc_app_ex(NULL, NULL, 4);
  recorder r = {app, svc_user(app, "threads@example.com", "T")};
  pthread_t t[2];
  for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, record_gets, &r), 0);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  be_op_stats s = BE_OP_STATS_INIT;
  ck_assert_int_eq(be_app_op_stats_get(&s, app, BE_OP_USER_GET, NULL), BE_OK);
  ck_assert_int_eq(s.calls, 4000);
  be_app_free(app);
}
END_TEST

typedef struct stats_writer {
  be_query_stats *qs;
  be_stmt_stats *ss;
  int64_t ns; /* this writer's statement duration */
} stats_writer;

static void *write_stats(void *arg) {
  stats_writer *w = arg;
  for (int i = 0; i < 5000; i++) {
    int rc = i % 100 == 0 ? BE_E_BUSY : BE_OK;
    be_query_stats_record(w->qs, w->ns, 2, rc);
    be_stmt_stats_record(w->ss, "SELECT name FROM users WHERE id = ?", w->ns, 2, rc);
  }
  return NULL;
}

/* Threads record into their own stripes (16 threads: four to a stripe);
 * every read adds them all up, and each recorded duration counts once. */
#define WRITERS 16
START_TEST(query_stats_from_threads_add_up) {
  be_query_stats *qs = NULL;
  be_stmt_stats *ss = NULL;
  ck_assert_int_eq(be_query_stats_new(&qs, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_stats_new(&ss, NULL, NULL), BE_OK);
  stats_writer w[WRITERS];
  pthread_t t[WRITERS];
  for (int i = 0; i < WRITERS; i++) {
    w[i] = (stats_writer){qs, ss, 1000 * (i % 4 + 1)};
    ck_assert_int_eq(pthread_create(&t[i], NULL, write_stats, &w[i]), 0);
  }
  for (int i = 0; i < WRITERS; i++) pthread_join(t[i], NULL);
  const int64_t n_all = 5000 * WRITERS, sum = 5000 * (WRITERS / 4) * (1000 + 2000 + 3000 + 4000);
  ck_assert_int_eq(be_query_stats_queries(qs), n_all);
  ck_assert_int_eq(be_query_stats_errors(qs), n_all / 100);
  ck_assert_int_eq(be_query_stats_rows(qs), 2 * n_all);
  const be_histogram *h = be_query_stats_histogram(qs);
  ck_assert_int_eq(be_histogram_count(h), n_all);
  ck_assert_int_eq(be_histogram_min(h), 1000);
  ck_assert_int_eq(be_histogram_max(h), 4000);
  ck_assert_int_eq(be_histogram_sum(h), sum);
  /* asking again does not count twice */
  ck_assert_int_eq(be_histogram_count(be_query_stats_histogram(qs)), n_all);
  char *json = NULL;
  ck_assert_int_eq(be_query_stats_to_json(&json, NULL, qs, NULL), BE_OK);
  ck_assert_ptr_nonnull(strstr(json, "\"queries\":80000,\"errors\":800,\"rows\":160000"));
  ck_assert_ptr_nonnull(strstr(json, "\"max_ns\":4000}"));
  be_free(json);
  be_stmt_stat top = BE_STMT_STAT_INIT;
  size_t n = 0;
  ck_assert_int_eq(be_stmt_stats_top(&top, 1, &n, ss, NULL), BE_OK);
  ck_assert_uint_eq(n, 1);
  ck_assert_int_eq(top.calls, n_all);
  ck_assert_int_eq(top.errors, n_all / 100);
  ck_assert_int_eq(top.rows, 2 * n_all);
  ck_assert_int_eq(top.total_ns, sum); /* every recorded duration once */
  ck_assert_int_eq(top.mean_ns, sum / n_all);
  be_query_stats_reset(qs);
  ck_assert_int_eq(be_query_stats_queries(qs), 0);
  ck_assert_int_eq(be_query_stats_rows(qs), 0);
  ck_assert_int_eq(be_histogram_count(be_query_stats_histogram(qs)), 0);
  be_stmt_stats_free(ss);
  be_query_stats_free(qs);
}
END_TEST

/* Two threads reading one query stats' durations at once: the shared
 * histogram be_query_stats_histogram() hands out was reset by one while
 * the other read it (counts of 0, p50 0), and to_json, the status report
 * and the Prometheus export read through it. Each reader now merges into
 * a histogram of its own. */
typedef struct dur_reader {
  be_query_stats *qs;
  int64_t p50;
  char want_json[256];
  int wrong;
} dur_reader;

static void *read_durations(void *arg) {
  dur_reader *r = arg;
  be_histogram *h = NULL;
  ck_assert_int_eq(be_histogram_new(&h, NULL), BE_OK);
  for (int i = 0; i < 3000; i++) {
    be_histogram_reset(h);
    ck_assert_int_eq(be_query_stats_histogram_merge(h, r->qs, NULL), BE_OK);
    r->wrong += be_histogram_count(h) != 1000 || be_histogram_quantile(h, 0.5) != r->p50;
    char *json = NULL;
    ck_assert_int_eq(be_query_stats_to_json(&json, NULL, r->qs, NULL), BE_OK);
    r->wrong += strcmp(json, r->want_json) != 0;
    be_free(json);
  }
  be_histogram_free(h);
  return NULL;
}

START_TEST(query_durations_read_from_threads_at_once) {
  be_query_stats *qs = NULL;
  ck_assert_int_eq(be_query_stats_new(&qs, NULL), BE_OK);
  for (int i = 0; i < 1000; i++) be_query_stats_record(qs, 5000, 0, 0);
  dur_reader r[2] = {{qs, 0, "", 0}, {qs, 0, "", 0}};
  char *json = NULL;
  ck_assert_int_eq(be_query_stats_to_json(&json, NULL, qs, NULL), BE_OK);
  for (int i = 0; i < 2; i++) {
    r[i].p50 = be_histogram_quantile(be_query_stats_histogram(qs), 0.5);
    snprintf(r[i].want_json, sizeof r[i].want_json, "%s", json);
  }
  be_free(json);
  ck_assert_int_gt(r[0].p50, 0);
  pthread_t t[2];
  for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, read_durations, &r[i]);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  ck_assert_int_eq(r[0].wrong + r[1].wrong, 0);
  be_histogram *h = NULL;
  ck_assert_int_eq(be_histogram_new(&h, NULL), BE_OK);
  ck_assert_int_eq(be_query_stats_histogram_merge(NULL, qs, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_query_stats_histogram_merge(h, NULL, NULL), BE_E_MISUSE);
  be_histogram_free(h);
  be_query_stats_free(qs);
}
END_TEST

/* ---- statement statistics ---- */

START_TEST(stmt_stats_normalize_count_top_and_reset) {
  be_stmt_stats *ss = NULL;
  ck_assert_int_eq(be_stmt_stats_new(&ss, NULL, NULL), BE_OK);
  for (int i = 0; i < 10; i++) {
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT name FROM users WHERE id = %d AND email = 'x%d@y'", i, i);
    be_stmt_stats_record(ss, sql, 1000000, 1, BE_OK); /* 1 ms each */
  }
  be_stmt_stats_record(ss, "UPDATE users SET name = ? WHERE id = ?", 50000000, 0, BE_OK);
  be_stmt_stats_record(ss, "UPDATE users SET name = ? WHERE id = ?", 30000000, 0, BE_E_BUSY);
  be_stmt_stats_record(ss, "DELETE FROM t", 10, 0, BE_OK);
  ck_assert_uint_eq(be_stmt_stats_count(ss), 3);
  be_stmt_stat top[2] = {BE_STMT_STAT_INIT, BE_STMT_STAT_INIT};
  size_t n = 0;
  ck_assert_int_eq(be_stmt_stats_top(top, 2, &n, ss, NULL), BE_OK);
  ck_assert_uint_eq(n, 2);
  ck_assert_str_eq(top[0].sql, "UPDATE users SET name = ? WHERE id = ?");
  ck_assert_int_eq(top[0].calls, 2);
  ck_assert_int_eq(top[0].errors, 1);
  ck_assert_int_eq(top[0].total_ns, 80000000);
  ck_assert_int_eq(top[0].mean_ns, 40000000);
  ck_assert_int_eq(top[0].max_ns, 50000000);
  ck_assert_str_eq(top[1].sql, "SELECT name FROM users WHERE id = ? AND email = ?");
  ck_assert_int_eq(top[1].calls, 10);
  ck_assert_int_eq(top[1].rows, 10);
  ck_assert_int_eq(top[1].total_ns, 10000000);
  double err = fabs((double)top[1].p95_ns - 1e6) / 1e6;
  ck_assert_msg(err <= 1.0 / 16, "p95 %lld", (long long)top[1].p95_ns);
  char *json = NULL;
  ck_assert_int_eq(be_stmt_stats_to_json(&json, NULL, ss, 1, NULL), BE_OK);
  ck_assert_ptr_nonnull(strstr(json, "\"statements\":3"));
  ck_assert_ptr_nonnull(strstr(json, "\"sql\":\"UPDATE users SET name = ? WHERE id = ?\""));
  ck_assert_ptr_null(strstr(json, "SELECT")); /* top 1 only */
  ck_assert_ptr_null(strstr(json, "x1@y"));   /* literals never appear */
  be_free(json);
  be_stmt_stats_reset(ss);
  ck_assert_uint_eq(be_stmt_stats_count(ss), 0);
  ck_assert_int_eq(be_stmt_stats_top(top, 2, &n, ss, NULL), BE_OK);
  ck_assert_uint_eq(n, 0);
  /* bad input */
  top[0].version = 7;
  ck_assert_int_eq(be_stmt_stats_top(top, 1, &n, ss, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_stmt_stats_top(NULL, 1, &n, ss, NULL), BE_E_MISUSE);
  be_stmt_stats_free(ss);
}
END_TEST

/* Past max_statements, new statements are counted together. */
START_TEST(stmt_stats_bound_overflows_into_other) {
  be_stmt_stats_options o = BE_STMT_STATS_OPTIONS_INIT;
  o.max_statements = 2;
  be_stmt_stats *ss = NULL;
  ck_assert_int_eq(be_stmt_stats_new(&ss, &o, NULL), BE_OK);
  const char *sqls[] = {"SELECT 1 FROM a", "SELECT 1 FROM b", "SELECT 1 FROM c", "SELECT 1 FROM d"};
  for (int round = 0; round < 3; round++)
    for (int i = 0; i < 4; i++) be_stmt_stats_record(ss, sqls[i], 100, 0, BE_OK);
  ck_assert_int_eq(be_stmt_stats_overflow(ss), 6);
  be_stmt_stat top[4] = {BE_STMT_STAT_INIT, BE_STMT_STAT_INIT, BE_STMT_STAT_INIT, BE_STMT_STAT_INIT};
  size_t n = 0;
  ck_assert_int_eq(be_stmt_stats_top(top, 4, &n, ss, NULL), BE_OK);
  ck_assert_uint_eq(n, 3);
  ck_assert_str_eq(top[0].sql, "(other statements)");
  ck_assert_int_eq(top[0].calls, 6);
  int64_t mem = be_stmt_stats_memory_bytes(ss);
  ck_assert_int_gt(mem, 0);
  be_stmt_stats_free(ss);
  /* bad options */
  be_error *e = NULL;
  o.max_statements = 0;
  ck_assert_int_eq(be_stmt_stats_new(&ss, &o, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "max_statements");
  be_error_free(e);
  o = (be_stmt_stats_options)BE_STMT_STATS_OPTIONS_INIT;
  o.burst_count = 0;
  ck_assert_int_eq(be_stmt_stats_new(&ss, &o, NULL), BE_E_VALIDATION);
  o.version = 9;
  ck_assert_int_eq(be_stmt_stats_new(&ss, &o, NULL), BE_E_MISUSE);
}
END_TEST

/* A burst of slow statements is one incident per window. */
START_TEST(slow_query_burst_is_an_incident) {
  be_clock *clk = NULL;
  ck_assert_int_eq(be_clock_fake_new(&clk, 0, 0, NULL), BE_OK);
  be_incident_log *log = NULL;
  ck_assert_int_eq(be_incident_log_new(&log, 4, clk, NULL), BE_OK);
  be_stmt_stats_options o = BE_STMT_STATS_OPTIONS_INIT;
  o.incidents = log;
  o.clock = clk;
  o.burst_count = 3;
  be_stmt_stats *ss = NULL;
  ck_assert_int_eq(be_stmt_stats_new(&ss, &o, NULL), BE_OK);
  for (int i = 0; i < 10; i++) be_stmt_stats_record(ss, "SELECT 1", 150 * BE_NS_PER_MS, 1, BE_OK);
  ck_assert_int_eq(be_incident_log_total(log, BE_INCIDENT_SLOW_QUERIES), 1);
  be_incident in = BE_INCIDENT_INIT;
  ck_assert_int_eq(be_incident_log_get(&in, log, 0, NULL), BE_OK);
  ck_assert_int_eq(in.value, 3);
  ck_assert_int_eq(in.threshold, 3);
  ck_assert_ptr_nonnull(strstr(in.message, "SELECT ?"));
  ck_assert_int_eq(be_clock_advance(clk, 11 * BE_NS_PER_SEC, NULL), BE_OK);
  for (int i = 0; i < 3; i++) be_stmt_stats_record(ss, "SELECT 1", 150 * BE_NS_PER_MS, 1, BE_OK);
  ck_assert_int_eq(be_incident_log_total(log, BE_INCIDENT_SLOW_QUERIES), 2);
  be_stmt_stats_record(ss, "SELECT 1", 99 * BE_NS_PER_MS, 1, BE_OK); /* not slow */
  ck_assert_int_eq(be_incident_log_total(log, BE_INCIDENT_SLOW_QUERIES), 2);
  be_stmt_stats_free(ss);
  be_incident_log_free(log);
  be_clock_free(clk);
}
END_TEST

START_TEST(incident_log_is_a_bounded_ring) {
  be_incident_log *log = NULL;
  ck_assert_int_eq(be_incident_log_new(&log, 2, NULL, NULL), BE_OK);
  be_incident in = BE_INCIDENT_INIT;
  for (int i = 1; i <= 3; i++) {
    in.kind = BE_INCIDENT_POOL_EXHAUSTED;
    in.value = i;
    snprintf(in.message, sizeof in.message, "number %d \"quoted\"", i);
    ck_assert_int_eq(be_incident_log_record(log, &in, NULL), BE_OK);
  }
  ck_assert_uint_eq(be_incident_log_count(log), 2);
  ck_assert_int_eq(be_incident_log_total(log, 0), 3);
  be_incident got = BE_INCIDENT_INIT;
  ck_assert_int_eq(be_incident_log_get(&got, log, 0, NULL), BE_OK);
  ck_assert_int_eq(got.value, 2); /* the oldest was overwritten */
  ck_assert_int_gt(got.wall_ns, 0);
  ck_assert_int_eq(be_incident_log_get(&got, log, 2, NULL), BE_E_NOT_FOUND);
  char *json = NULL;
  ck_assert_int_eq(be_incident_log_to_json(&json, NULL, log, NULL), BE_OK);
  ck_assert_ptr_nonnull(strstr(json, "number 3 \\\"quoted\\\""));
  be_free(json);
  be_error *e = NULL;
  in.kind = 99;
  ck_assert_int_eq(be_incident_log_record(log, &in, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "kind");
  be_error_free(e);
  be_incident_log *bad_log = NULL;
  ck_assert_int_eq(be_incident_log_new(&bad_log, -1, NULL, NULL), BE_E_VALIDATION);
  ck_assert_ptr_null(bad_log);
  be_incident_log_clear(log);
  ck_assert_int_eq(be_incident_log_total(log, 0), 0);
  ck_assert_str_eq(be_incident_kind_name(BE_INCIDENT_POOL_USAGE), "pool_usage");
  ck_assert_str_eq(be_incident_kind_name(0), "unknown");
  be_incident_log_free(log);
}
END_TEST

/* The app's pool feeds statement statistics; literals never appear. */
START_TEST(app_statement_statistics) {
  be_app *app = svc_app_ex(NULL, NULL, 4);
  int64_t id = svc_user(app, "stmts@example.com", "Stmts");
  be_cache_clear(be_app_cache(app), NULL);
  be_user_free(get_user(app, id));
  char *json = NULL;
  ck_assert_int_eq(be_stmt_stats_to_json(&json, NULL, be_app_stmt_stats(app), 0, NULL), BE_OK);
  ck_assert_ptr_nonnull(strstr(json, "FROM be_users WHERE id = ?"));
  ck_assert_ptr_null(strstr(json, "stmts@example.com"));
  be_free(json);
  be_app_free(app);
}
END_TEST

/* ---- status ---- */

START_TEST(status_passes_then_fails_on_slow_calls) {
  be_clock *clk = ticking_clock();
  be_app *app = svc_app_ex(NULL, clk, 4);
  int64_t id = svc_user(app, "status@example.com", "Status");
  for (int i = 0; i < 20; i++) be_user_free(get_user(app, id));
  be_app_status s = BE_APP_STATUS_INIT;
  ck_assert_int_eq(be_app_status_get(&s, app, NULL), BE_OK);
  ck_assert_int_eq(s.db_reachable, 1);
  ck_assert_int_eq(s.ok, 1);
  ck_assert_int_eq(s.api_p95_ok, 1);
  ck_assert_int_eq(s.db_p95_ok, 1);
  ck_assert_int_eq(s.error_rate_ok, 1);
  ck_assert_int_eq(s.api_calls, 21);
  ck_assert_int_gt(s.db_queries, 0);
  ck_assert_int_gt(s.migration_version, 0);
  ck_assert_int_eq(s.pool_alert_percent, 80);
  ck_assert_int_eq(s.pool_max, 4);
  ck_assert_int_eq(s.api_p95_target_ns, 200 * BE_NS_PER_MS);
  ck_assert_int_eq(s.db_p95_target_ns, 100 * BE_NS_PER_MS);
  ck_assert(s.error_rate_target == 0.001);
  ck_assert_int_eq(s.cache_entries, 1);
  ck_assert(s.cache_hit_ratio > 0.9);
  ck_assert_str_eq(s.database, ":memory:");
  /* every clock reading now moves 150 ms: calls take 300 ms or more */
  atomic_store(&tick_step, 150 * BE_NS_PER_MS);
  /* fast calls are timed one in 1024: the slow ones show from call 1024 on */
  for (int i = 0; i < (1 << BE__METRICS_RARE_SHIFT) + 100; i++) be_user_free(get_user(app, id));
  be_cache_clear(be_app_cache(app), NULL);
  for (int i = 0; i < 5; i++) {
    be_user_free(get_user(app, id));
    be_cache_clear(be_app_cache(app), NULL);
  }
  atomic_store(&tick_step, 0);
  ck_assert_int_eq(be_app_status_get(&s, app, NULL), BE_OK);
  ck_assert_int_eq(s.api_p95_ok, 0);
  ck_assert_int_ge(s.api_p95_ns, 290 * BE_NS_PER_MS); /* 300 ms, within the 1/32 of the histogram */
  ck_assert_int_eq(s.db_p95_ok, 0);
  ck_assert_int_eq(s.ok, 0);
  char *text = NULL;
  ck_assert_int_eq(be_app_status_text(&text, NULL, app, NULL), BE_OK);
  ck_assert_ptr_nonnull(strstr(text, "API p95        < 200 ms"));
  ck_assert_ptr_nonnull(strstr(text, "FAIL"));
  be_free(text);
  be_app_free(app);
  be_clock_free(clk);
}
END_TEST

/* Server errors from the database push the error rate over 0.1 %. */
START_TEST(status_fails_on_error_rate) {
  be_driver *drv = NULL;
  be_fault *f = NULL;
  ck_assert_int_eq(be_fault_driver_new(&drv, &f, be_sqlite_driver(), NULL), BE_OK);
  be_app *app = svc_app_ex(drv, NULL, 2);
  int64_t id = svc_user(app, "errors@example.com", "E");
  for (int i = 0; i < 50; i++) be_user_free(get_user(app, id));
  be_app_status s = BE_APP_STATUS_INIT;
  ck_assert_int_eq(be_app_status_get(&s, app, NULL), BE_OK);
  ck_assert_int_eq(s.error_rate_ok, 1);
  ck_assert_int_eq(be_fault_set(f, BE_FAULT_OP_STEP, BE_FAULT_NTH, 1, BE_E_STORAGE, NULL), BE_OK);
  be_user_input up = BE_USER_INPUT_INIT;
  up.fields = BE_USER_FIELD_NAME;
  up.name = "E2";
  ck_assert_int_lt(be_user_update(NULL, app, 0, id, &up, NULL), 0);
  be_fault_clear(f, BE_FAULT_OP_STEP);
  ck_assert_int_eq(be_app_status_get(&s, app, NULL), BE_OK);
  ck_assert_int_eq(s.api_server_errors, 1);
  ck_assert(s.error_rate > 0.001);
  ck_assert_int_eq(s.error_rate_ok, 0);
  ck_assert_int_eq(s.ok, 0);
  char *json = NULL;
  ck_assert_int_eq(be_app_status_json(&json, NULL, app, NULL), BE_OK);
  ck_assert_ptr_nonnull(strstr(json, "\"name\":\"error_rate\""));
  ck_assert_ptr_nonnull(strstr(json, "\"ok\":false"));
  be_free(json);
  be_app_free(app);
  be_fault_free(f);
}
END_TEST

/* With every connection in use, status does not wait out the acquire
 * timeout: the database is "not asked", the rest is filled. */
START_TEST(status_does_not_wait_for_a_busy_pool) {
  be_app *app = svc_app_ex(NULL, NULL, 1);
  be_conn *held = NULL;
  ck_assert_int_eq(be_pool_acquire(&held, be_app_pool(app), NULL), BE_OK);
  be_app_status s = BE_APP_STATUS_INIT;
  ck_assert_int_eq(be_app_status_get(&s, app, NULL), BE_OK);
  ck_assert_int_eq(s.db_reachable, -1);
  ck_assert_int_eq(s.pool_in_use, 1);
  ck_assert_int_eq(s.pool_usage_percent, 100);
  ck_assert_int_eq(s.db_size_bytes, -1);
  ck_assert_int_eq(s.ok, 1); /* busy is not down */
  char *json = NULL;
  ck_assert_int_eq(be_app_status_json(&json, NULL, app, NULL), BE_OK);
  ck_assert_ptr_nonnull(strstr(json, "\"reachable\":null"));
  be_free(json);
  be_app_memory m = BE_APP_MEMORY_INIT;
  ck_assert_int_eq(be_app_memory_get(&m, app, NULL), BE_OK);
  ck_assert_int_eq(m.db_memory_used, -1);
  be_pool_release(be_app_pool(app), held);
  be_app_free(app);
}
END_TEST

/* An unreachable database: status says so, and the incident log has it. */
START_TEST(status_of_an_unreachable_database) {
  be_driver *drv = NULL;
  be_fault *f = NULL;
  ck_assert_int_eq(be_fault_driver_new(&drv, &f, be_sqlite_driver(), NULL), BE_OK);
  char *dir = tu_tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/down.db", dir);
  be_app_options o;
  svc_fast_options(&o, path);
  o.driver = drv;
  o.pool_min = 1;
  o.pool_max = 2;
  be_app *app = NULL;
  ck_assert_int_eq(be_app_new(&app, &o, NULL), BE_OK);
  be_conn *held = NULL; /* the idle one is busy: status must open another */
  ck_assert_int_eq(be_pool_acquire(&held, be_app_pool(app), NULL), BE_OK);
  ck_assert_int_eq(be_fault_set(f, BE_FAULT_OP_OPEN, BE_FAULT_FROM, 1, BE_E_DB_UNREACHABLE, NULL), BE_OK);
  be_app_status s = BE_APP_STATUS_INIT;
  ck_assert_int_eq(be_app_status_get(&s, app, NULL), BE_OK);
  ck_assert_int_eq(s.db_reachable, 0);
  ck_assert_int_eq(s.ok, 0);
  ck_assert_int_ge(be_incident_log_total(be_app_incidents(app), BE_INCIDENT_DB_UNREACHABLE), 1);
  ck_assert_int_ge(s.incidents, 1);
  char *text = NULL;
  ck_assert_int_eq(be_app_status_text(&text, NULL, app, NULL), BE_OK);
  ck_assert_ptr_nonnull(strstr(text, "UNREACHABLE"));
  be_free(text);
  be_fault_clear(f, BE_FAULT_OP_OPEN);
  be_pool_release(be_app_pool(app), held);
  be_app_free(app);
  be_fault_free(f);
  tu_rmdir(dir);
}
END_TEST

/* Targets are options; bad ones are named. */
START_TEST(status_targets_are_options) {
  be_app_options o;
  svc_fast_options(&o, ":memory:");
  o.target_api_p95_ms = 50;
  o.target_db_p95_ms = 20;
  o.target_error_rate = 0.05;
  be_app *app = NULL;
  ck_assert_int_eq(be_app_new(&app, &o, NULL), BE_OK);
  be_app_status s = BE_APP_STATUS_INIT;
  ck_assert_int_eq(be_app_status_get(&s, app, NULL), BE_OK);
  ck_assert_int_eq(s.api_p95_target_ns, 50 * BE_NS_PER_MS);
  ck_assert_int_eq(s.db_p95_target_ns, 20 * BE_NS_PER_MS);
  ck_assert(s.error_rate_target == 0.05);
  be_app_free(app);
  be_error *e = NULL;
  o.target_error_rate = 1.5;
  ck_assert_int_eq(be_app_new(&app, &o, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "target_error_rate");
  be_error_free(e);
  o.target_error_rate = 0;
  o.statement_stats_max = -3;
  ck_assert_int_eq(be_app_new(&app, &o, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "statement_stats_max");
  be_error_free(e);
  s.version = 0;
  ck_assert_int_eq(be_app_status_get(&s, NULL, NULL), BE_E_MISUSE);
}
END_TEST

/* A file database: its size, journal mode and file. */
START_TEST(status_of_a_file_database) {
  char *dir = tu_tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/status.db", dir);
  be_app_options o;
  svc_fast_options(&o, path);
  be_app *app = NULL;
  ck_assert_int_eq(be_app_new(&app, &o, NULL), BE_OK);
  be_app_status s = BE_APP_STATUS_INIT;
  ck_assert_int_eq(be_app_status_get(&s, app, NULL), BE_OK);
  ck_assert_int_eq(s.db_reachable, 1);
  ck_assert_int_gt(s.db_size_bytes, 4096);
  ck_assert_str_eq(s.db_journal_mode, "wal");
  ck_assert_str_eq(s.database, path);
  be_app_free(app);
  tu_rmdir(dir);
}
END_TEST

/* SQLite: no notifications, no listener thread, and status says so. */
START_TEST(invalidation_not_applicable_on_sqlite) {
  be_app *app = svc_app_ex(NULL, NULL, 2);
  be_app_status s = BE_APP_STATUS_INIT;
  s.invalidation = 7; /* overwritten */
  ck_assert_int_eq(be_app_status_get(&s, app, NULL), BE_OK);
  ck_assert_int_eq(s.invalidation, BE_APP_INVALIDATION_NONE);
  ck_assert_int_eq(s.invalidation_down_since_ms, 0);
  ck_assert_int_eq(s.invalidation_received, 0);
  char *text = NULL;
  ck_assert_int_eq(be_app_status_text(&text, NULL, app, NULL), BE_OK);
  ck_assert_ptr_nonnull(strstr(text, "Invalidation not applicable (SQLite"));
  be_free(text);
  ck_assert_int_eq(be_app_status_json(&text, NULL, app, NULL), BE_OK);
  ck_assert_ptr_nonnull(strstr(text, "\"invalidation\":{\"state\":\"not_applicable\",\"down_since_ms\":0"));
  be_free(text);
  ck_assert_int_eq(be_app_metrics_prometheus(&text, NULL, app, NULL), BE_OK);
  ck_assert_ptr_nonnull(strstr(text, "# TYPE backend_invalidation_state gauge\nbackend_invalidation_state 0\n"));
  ck_assert_ptr_nonnull(strstr(text, "backend_invalidation_received_total 0\n"));
  be_free(text);
  be_app_free(app);
}
END_TEST

/* A version-1 be_app_status (before the invalidation fields) is filled up
 * to its own end; a version the library does not know is refused. */
START_TEST(status_version_1_is_filled_to_its_end) {
  be_app *app = svc_app_ex(NULL, NULL, 2);
  be_app_status s;
  memset(&s, 0xAB, sizeof s);
  s.version = 1;
  ck_assert_int_eq(be_app_status_get(&s, app, NULL), BE_OK);
  ck_assert_uint_eq(s.version, 1);
  ck_assert_int_eq(s.db_reachable, 1);
  ck_assert_int_eq(s.incidents, 0);
  const unsigned char *tail = (const unsigned char *)&s.invalidation;
  for (size_t i = 0; i < sizeof s - offsetof(be_app_status, invalidation); i++)
    ck_assert_uint_eq(tail[i], 0xAB);
  s.version = 3;
  be_error *e = NULL;
  ck_assert_int_eq(be_app_status_get(&s, app, &e), BE_E_MISUSE);
  be_error_free(e);
  s.version = 0;
  ck_assert_int_eq(be_app_status_get(&s, app, NULL), BE_E_MISUSE);
  be_app_free(app);
}
END_TEST

/* ---- memory ---- */

START_TEST(memory_figures_are_plausible) {
  be_app *app = svc_app_ex(NULL, NULL, 4);
  int64_t id = svc_user(app, "mem@example.com", "Mem");
  be_user_free(get_user(app, id));
  be_app_memory m = BE_APP_MEMORY_INIT;
  ck_assert_int_eq(be_app_memory_get(&m, app, NULL), BE_OK);
  ck_assert_int_gt(m.cache_bytes, 0);
  ck_assert_int_gt(m.cache_charge_bytes, 0);
  ck_assert_int_gt(m.metrics_bytes, be_histogram_memory_bytes()); /* at least one histogram */
  ck_assert_int_gt(m.stmt_stats_bytes, 0);
  ck_assert_int_gt(m.incidents_bytes, 0);
  ck_assert_int_ge(m.pool_connections, 1);
  ck_assert_int_eq(m.library_bytes, m.cache_bytes + m.metrics_bytes + m.pool_histogram_bytes +
                                      m.stmt_stats_bytes + m.incidents_bytes);
  ck_assert_int_gt(m.db_memory_used, 100000); /* SQLite's own, all connections */
  ck_assert_int_ge(m.db_memory_highwater, m.db_memory_used);
  ck_assert_int_gt(m.conn_cache_bytes, 0);
  ck_assert_int_gt(m.conn_stmt_bytes, 0);
  ck_assert_int_gt(m.conn_schema_bytes, 0);
  ck_assert_int_lt(m.library_bytes, 64 * 1024 * 1024);
  char *json = NULL;
  ck_assert_int_eq(be_app_memory_json(&json, NULL, app, NULL), BE_OK);
  ck_assert_ptr_nonnull(strstr(json, "\"db_memory_used\":"));
  be_free(json);
  m.version = 5;
  ck_assert_int_eq(be_app_memory_get(&m, app, NULL), BE_E_MISUSE);
  be_app_free(app);
}
END_TEST

/* A host may turn SQLite's memory statistics off (they cost a global
 * mutex per allocation): SQLite then counts nothing, and the report says
 * unknown rather than 0 bytes. SQLite reads the setting when it starts,
 * so the test restarts it, with no connection open, both ways. */
static void restart_sqlite(int memstatus) {
  ck_assert_int_eq(sqlite3_shutdown(), SQLITE_OK);
  ck_assert_int_eq(sqlite3_config(SQLITE_CONFIG_MEMSTATUS, memstatus), SQLITE_OK);
  ck_assert_int_eq(sqlite3_initialize(), SQLITE_OK);
}

START_TEST(memory_of_sqlite_is_unknown_when_it_keeps_no_statistics) {
  restart_sqlite(0);
  be_app *app = svc_app_ex(NULL, NULL, 4);
  be_app_memory off = BE_APP_MEMORY_INIT, on = BE_APP_MEMORY_INIT;
  int rc_off = be_app_memory_get(&off, app, NULL);
  char *json = NULL;
  int rc_json = be_app_memory_json(&json, NULL, app, NULL);
  int json_says_unknown = json && strstr(json, "\"db_memory_used\":-1") != NULL;
  be_free(json);
  be_app_free(app);
  restart_sqlite(1); /* before any assertion: a failure must not leave it off */
  app = svc_app_ex(NULL, NULL, 4);
  int rc_on = be_app_memory_get(&on, app, NULL);
  be_app_free(app);
  ck_assert_int_eq(rc_off, BE_OK);
  ck_assert_int_eq(off.db_memory_used, -1);
  ck_assert_int_eq(off.db_memory_highwater, -1);
  ck_assert_int_gt(off.conn_cache_bytes, 0); /* per connection: still counted */
  ck_assert_int_gt(off.cache_bytes, 0);
  ck_assert_int_eq(rc_json, BE_OK);
  ck_assert(json_says_unknown);
  ck_assert_int_eq(rc_on, BE_OK);
  ck_assert_int_gt(on.db_memory_used, 0);
}
END_TEST

/* ---- export ---- */

START_TEST(prometheus_and_json_exports) {
  be_app *app = svc_app_ex(NULL, NULL, 4);
  int64_t id = svc_user(app, "prom@example.com", "Prom");
  for (int i = 0; i < 10; i++) be_user_free(get_user(app, id));
  char *text = NULL;
  size_t len = 0;
  ck_assert_int_eq(be_app_metrics_prometheus(&text, &len, app, NULL), BE_OK);
  ck_assert_uint_eq(strlen(text), len);
  ck_assert_ptr_nonnull(strstr(text, "# TYPE backend_op_duration_seconds histogram\n"));
  ck_assert_ptr_nonnull(strstr(text, "backend_op_calls_total{op=\"user.get\"} 10\n"));
  be_op_stats st = BE_OP_STATS_INIT; /* the histogram holds the timed calls */
  ck_assert_int_eq(be_app_op_stats_get(&st, app, BE_OP_USER_GET, NULL), BE_OK);
  ck_assert_int_ge(st.timed, 1);
  ck_assert_int_lt(st.timed, 10);
  ck_assert_ptr_nonnull(strstr(text, "backend_op_duration_seconds_count{op=\"user.get\"} "));
  ck_assert_ptr_nonnull(strstr(text, "# TYPE backend_op_errors_total counter\n"));
  ck_assert_ptr_nonnull(strstr(text, "backend_target_pass{target=\"api_p95_seconds\"} 1\n"));
  ck_assert_ptr_nonnull(strstr(text, "backend_incidents_total{kind=\"pool_exhausted\"} 0\n"));
  ck_assert_ptr_null(strstr(text, "prom@example.com"));
  const char *path = getenv("BE_PROM_OUT");
  if (path) { /* the Python parser test reads it back */
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
  }
  be_free(text);
  char *json = NULL;
  ck_assert_int_eq(be_app_metrics_json(&json, NULL, app, NULL), BE_OK);
  ck_assert_ptr_nonnull(strstr(json, "\"op\":\"user.get\",\"calls\":10"));
  ck_assert_ptr_nonnull(strstr(json, "\"statements\":{"));
  ck_assert_ptr_nonnull(strstr(json, "\"incidents\":{"));
  be_free(json);
  ck_assert_int_eq(be_app_metrics_prometheus(NULL, NULL, app, NULL), BE_E_MISUSE);
  be_app_free(app);
}
END_TEST

/* The exports and accessors refuse NULL arguments with BE_E_MISUSE (or
 * answer NULL / 0) and hand out no buffer. */
START_TEST(exports_refuse_null_arguments) {
  be_app *app = svc_app_ex(NULL, NULL, 2);
  char *out = (char *)1;
  be_error *e = NULL;
  ck_assert_int_eq(be_app_memory_json(NULL, NULL, app, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_app_memory_json(&out, NULL, NULL, &e), BE_E_MISUSE);
  ck_assert_ptr_null(out);
  ck_assert_int_eq(be_error_code(e), BE_E_MISUSE);
  be_error_free(e);
  out = (char *)1;
  ck_assert_int_eq(be_app_metrics_json(&out, NULL, NULL, NULL), BE_E_MISUSE);
  ck_assert_ptr_null(out);
  ck_assert_int_eq(be_app_metrics_json(NULL, NULL, app, NULL), BE_E_MISUSE);
  out = (char *)1;
  ck_assert_int_eq(be_incident_log_to_json(&out, NULL, NULL, NULL), BE_E_MISUSE);
  ck_assert_ptr_null(out);
  ck_assert_int_eq(be_incident_log_to_json(NULL, NULL, be_app_incidents(app), NULL), BE_E_MISUSE);
  out = (char *)1;
  ck_assert_int_eq(be_stmt_stats_to_json(&out, NULL, NULL, 5, NULL), BE_E_MISUSE);
  ck_assert_ptr_null(out);
  ck_assert_int_eq(be_stmt_stats_to_json(NULL, NULL, be_app_stmt_stats(app), 5, NULL), BE_E_MISUSE);
  ck_assert_ptr_null(be_app_incidents(NULL));
  ck_assert_ptr_null(be_app_stmt_stats(NULL));
  ck_assert_ptr_nonnull(be_app_incidents(app));
  ck_assert_ptr_nonnull(be_app_stmt_stats(app));
  be_app_metrics_reset(NULL); /* no-op */
  ck_assert_int_eq(be_histogram_count_le(NULL, 10), 0);
  ck_assert_int_eq(be_histogram_sum(NULL), 0);
  be_app_free(app);
}
END_TEST

/* A label value with a backslash, a quote and a newline is escaped. */
START_TEST(prometheus_escapes_label_values) {
  be_app *app = svc_app_ex(NULL, NULL, 2);
  svc_exec(app, "CREATE TABLE \"we\"\"ird\\\n\" (x)");
  char *text = NULL;
  ck_assert_int_eq(be_app_metrics_prometheus(&text, NULL, app, NULL), BE_OK);
  ck_assert_ptr_nonnull(strstr(text, "statement=\"CREATE TABLE \\\"we\\\"\\\"ird\\\\\\n\\\" (x)\"}"));
  be_free(text);
  be_app_free(app);
}
END_TEST

/* Every allocation failure of the recording paths surfaces as an error
 * and leaks nothing (metrics allocate lazily, statistics up front). */
static int alloc_body(void *arg) {
  (void)arg;
  be_app_options o;
  svc_fast_options(&o, ":memory:");
  be_app *app = NULL;
  int rc = be_app_new(&app, &o, NULL);
  if (rc != BE_OK) return rc;
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = "alloc@example.com";
  in.name = "A";
  int64_t id = 0;
  rc = be_user_create(NULL, &id, app, 0, &in, NULL);
  be_user *u = NULL;
  if (rc == BE_OK) rc = be_user_get(&u, app, id, NULL);
  be_user_free(u);
  char *t = NULL;
  if (rc == BE_OK) rc = be_app_metrics_prometheus(&t, NULL, app, NULL);
  be_free(t);
  t = NULL;
  if (rc == BE_OK) rc = be_app_metrics_json(&t, NULL, app, NULL);
  be_free(t);
  t = NULL;
  if (rc == BE_OK) rc = be_app_status_text(&t, NULL, app, NULL);
  be_free(t);
  be_app_free(app);
  return rc;
}

START_TEST(allocation_failures_leak_nothing) {
  TU_FOR_EACH_ALLOC_FAILURE(alloc_body, NULL);
}
END_TEST

static Suite *status_suite(void) {
  Suite *s = suite_create("status");
  TCase *tc = tcase_create("ops");
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, ops_count_calls_errors_and_latency);
  tcase_add_test(tc, ops_sample_fast_calls_time_slow_ones);
  tcase_add_test(tc, op_names_round_trip);
  tcase_add_test(tc, metrics_can_be_disabled);
  tcase_add_test(tc, ops_recorded_from_threads);
  tcase_add_test(tc, query_stats_from_threads_add_up);
  tcase_add_test(tc, query_durations_read_from_threads_at_once);
  tcase_add_test(tc, stmt_stats_normalize_count_top_and_reset);
  tcase_add_test(tc, stmt_stats_bound_overflows_into_other);
  tcase_add_test(tc, slow_query_burst_is_an_incident);
  tcase_add_test(tc, incident_log_is_a_bounded_ring);
  tcase_add_test(tc, app_statement_statistics);
  tcase_add_test(tc, status_passes_then_fails_on_slow_calls);
  tcase_add_test(tc, status_fails_on_error_rate);
  tcase_add_test(tc, status_does_not_wait_for_a_busy_pool);
  tcase_add_test(tc, status_of_an_unreachable_database);
  tcase_add_test(tc, status_targets_are_options);
  tcase_add_test(tc, status_of_a_file_database);
  tcase_add_test(tc, invalidation_not_applicable_on_sqlite);
  tcase_add_test(tc, status_version_1_is_filled_to_its_end);
  tcase_add_test(tc, memory_figures_are_plausible);
  tcase_add_test(tc, memory_of_sqlite_is_unknown_when_it_keeps_no_statistics);
  tcase_add_test(tc, prometheus_and_json_exports);
  tcase_add_test(tc, prometheus_escapes_label_values);
  tcase_add_test(tc, exports_refuse_null_arguments);
  tcase_add_test(tc, allocation_failures_leak_nothing);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(status_suite)
