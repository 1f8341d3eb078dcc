/* SPDX-License-Identifier: MIT */
/* Every figure of an app as JSON and as Prometheus text exposition
 * (backend/status.h). Histograms are copied into a private histogram
 * first, so the cumulative bucket counts, _sum and _count of one family
 * come from one snapshot and agree with each other. */
#include <backend/cache.h>
#include <backend/histogram.h>
#include <backend/pool.h>
#include <backend/status.h>

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "app_resources.h"
#include "error.h"
#include "metrics.h"
#include "status.h"
#include "strbuf.h"

#define TOP_JSON 20
#define TOP_PROM 50

/* Histogram bucket bounds, in ns (exported in seconds). */
static const int64_t bounds_ns[] = {10000, 25000, 50000, 100000, 250000,
                                    500000, 1000000, 2500000, 5000000, 10000000,
                                    25000000, 50000000, 100000000, 250000000, 500000000,
                                    1000000000, 2500000000, 5000000000, 10000000000};
#define N_BOUNDS (sizeof bounds_ns / sizeof bounds_ns[0])

/* ---- Prometheus text ---- */

static void family(be__buf *b, const char *name, const char *type, const char *help) {
  be__buf_printf(b, "# HELP backend_%s %s\n# TYPE backend_%s %s\n", name, help, name, type);
}

/* A label value with backslash, double quote and newline escaped. */
static void label_value(be__buf *b, const char *v) {
  for (const char *p = v; *p; p++) {
    if (*p == '\\') be__buf_puts(b, "\\\\");
    else if (*p == '"') be__buf_puts(b, "\\\"");
    else if (*p == '\n') be__buf_puts(b, "\\n");
    else be__buf_append(b, p, 1);
  }
}

/* `backend_<name>{<label>="<value>"} ` (no labels when label is NULL). */
static void sample(be__buf *b, const char *name, const char *label, const char *value) {
  be__buf_printf(b, "backend_%s", name);
  if (label) {
    be__buf_printf(b, "{%s=\"", label);
    label_value(b, value);
    be__buf_puts(b, "\"}");
  }
  be__buf_puts(b, " ");
}

static void sample_int(be__buf *b, const char *name, const char *label, const char *value, int64_t v) {
  sample(b, name, label, value);
  be__buf_printf(b, "%lld\n", (long long)v);
}

static void sample_double(be__buf *b, const char *name, const char *label, const char *value, double v) {
  sample(b, name, label, value);
  be__buf_printf(b, "%.9g\n", v);
}

/* The bucket, _sum and _count lines of histogram h (ns) in seconds. */
static void histogram_lines(be__buf *b, const char *name, const char *label, const char *value,
                            const be_histogram *h) {
  /* bucket counts only grow: the total, read after every bound, is at
   * least each cumulative count even while others record */
  int64_t total = 0;
  for (size_t i = 0; i <= N_BOUNDS; i++) {
    if (i == N_BOUNDS) total = be_histogram_count_le(h, INT64_MAX);
    be__buf_printf(b, "backend_%s_bucket{", name);
    if (label) {
      be__buf_printf(b, "%s=\"", label);
      label_value(b, value);
      be__buf_puts(b, "\",");
    }
    if (i < N_BOUNDS)
      be__buf_printf(b, "le=\"%g\"} %lld\n", (double)bounds_ns[i] / 1e9,
                     (long long)be_histogram_count_le(h, bounds_ns[i]));
    else be__buf_printf(b, "le=\"+Inf\"} %lld\n", (long long)total);
  }
  char n[96];
  snprintf(n, sizeof n, "%s_sum", name);
  sample_double(b, n, label, value, (double)be_histogram_sum(h) / 1e9);
  snprintf(n, sizeof n, "%s_count", name);
  sample_int(b, n, label, value, total);
}

/* Operation histograms and counters; scratch is reset and reused. */
static void prom_ops(be__buf *b, const be__metrics *m, be_histogram *scratch) {
  be__op_counts c[BE_OP_COUNT];
  memset(c, 0, sizeof c);
  family(b, "op_duration_seconds", "histogram",
         "Duration of public service calls, pool acquires and cache loads (sampled, each sample weighted by its interval).");
  for (int32_t op = 0; op < BE_OP_COUNT; op++) {
    be_histogram_reset(scratch);
    be__metrics_merge(m, op, op + 1, scratch, &c[op]);
    if (c[op].calls) histogram_lines(b, "op_duration_seconds", "op", be_op_name(op), scratch);
  }
  family(b, "op_calls_total", "counter", "Calls finished (every call, timed or not).");
  for (int32_t op = 0; op < BE_OP_COUNT; op++)
    if (c[op].calls) sample_int(b, "op_calls_total", "op", be_op_name(op), c[op].calls);
  family(b, "op_errors_total", "counter", "Calls that returned an error.");
  for (int32_t op = 0; op < BE_OP_COUNT; op++)
    if (c[op].calls) sample_int(b, "op_errors_total", "op", be_op_name(op), c[op].errors);
  family(b, "op_server_errors_total", "counter", "Calls that failed with a 5xx error code.");
  for (int32_t op = 0; op < BE_OP_COUNT; op++)
    if (c[op].calls) sample_int(b, "op_server_errors_total", "op", be_op_name(op), c[op].server_errors);
}

static void prom_statements(be__buf *b, be_stmt_stats *ss) {
  be_stmt_stat top[TOP_PROM];
  for (size_t i = 0; i < TOP_PROM; i++) be_stmt_stat_init(&top[i], BE_STMT_STAT_VERSION);
  size_t n = 0;
  be_stmt_stats_top(top, TOP_PROM, &n, ss, NULL);
  static const struct {
    const char *name, *type, *help;
  } fams[] = {{"statement_calls_total", "counter", "Executions per normalized statement."},
              {"statement_errors_total", "counter", "Executions that failed, per normalized statement."},
              {"statement_rows_total", "counter", "Rows returned, per normalized statement."},
              {"statement_seconds_total", "counter", "Time spent, per normalized statement."},
              {"statement_max_seconds", "gauge", "Longest execution, per normalized statement."},
              {"statement_p95_seconds", "gauge", "95th percentile execution time, per normalized statement."}};
  for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++) {
    family(b, fams[f].name, fams[f].type, fams[f].help);
    for (size_t i = 0; i < n; i++) {
      const be_stmt_stat *s = &top[i];
      int64_t iv[] = {s->calls, s->errors, s->rows};
      double dv[] = {(double)s->total_ns / 1e9, (double)s->max_ns / 1e9, (double)s->p95_ns / 1e9};
      if (f < 3) sample_int(b, fams[f].name, "statement", s->sql, iv[f]);
      else sample_double(b, fams[f].name, "statement", s->sql, dv[f - 3]);
    }
  }
  family(b, "statement_overflow_calls_total", "counter",
         "Executions of statements past the tracked bound, counted together.");
  sample_int(b, "statement_overflow_calls_total", NULL, NULL, be_stmt_stats_overflow(ss));
}

static void prom_pool(be__buf *b, be_pool *pool) {
  be_pool_stats ps = BE_POOL_STATS_INIT;
  be_pool_stats_get(&ps, pool, NULL);
  family(b, "pool_connections", "gauge", "Pool connections by state.");
  sample_int(b, "pool_connections", "state", "in_use", ps.in_use);
  sample_int(b, "pool_connections", "state", "idle", ps.idle);
  sample_int(b, "pool_connections", "state", "opening", ps.opening);
  family(b, "pool_max_connections", "gauge", "The pool's max_conns.");
  sample_int(b, "pool_max_connections", NULL, NULL, ps.max_conns);
  family(b, "pool_waiting", "gauge", "Callers waiting for a connection.");
  sample_int(b, "pool_waiting", NULL, NULL, ps.waiting);
  family(b, "pool_oldest_waiter_seconds", "gauge", "How long the head of the wait queue has waited.");
  sample_double(b, "pool_oldest_waiter_seconds", NULL, NULL, (double)ps.oldest_waiter_ns / 1e9);
  static const char *const names[] = {"acquires", "waits", "timeouts", "deadlocks", "open_failures", "broken", "leaks"};
  const int64_t values[] = {ps.acquires, ps.waits, ps.timeouts, ps.deadlocks, ps.open_failures, ps.broken, ps.leaks};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char n[64], help[96];
    snprintf(n, sizeof n, "pool_%s_total", names[i]);
    snprintf(help, sizeof help, "Pool %s (be_pool_stats).", names[i]);
    family(b, n, "counter", help);
    sample_int(b, n, NULL, NULL, values[i]);
  }
  const be_query_stats *qs = be_pool_query_stats(pool);
  be_histogram *h = NULL; /* our own: two scrapes at once share no histogram */
  if (be_histogram_new(&h, NULL) != BE_OK || be_query_stats_histogram_merge(h, qs, NULL) != BE_OK)
    b->failed = 1;
  family(b, "db_query_duration_seconds", "histogram", "Duration of every statement run on the app's pool.");
  if (h) histogram_lines(b, "db_query_duration_seconds", NULL, NULL, h);
  be_histogram_free(h);
  family(b, "db_query_errors_total", "counter", "Statements that failed.");
  sample_int(b, "db_query_errors_total", NULL, NULL, be_query_stats_errors(qs));
  family(b, "db_query_rows_total", "counter", "Rows the statements returned.");
  sample_int(b, "db_query_rows_total", NULL, NULL, be_query_stats_rows(qs));
}

static void prom_cache(be__buf *b, const be_cache *cache) {
  be_cache_stats cs = BE_CACHE_STATS_INIT;
  be_cache_stats_get(&cs, cache, NULL);
  family(b, "cache_entries", "gauge", "Entries the cache holds.");
  sample_int(b, "cache_entries", NULL, NULL, cs.entries);
  family(b, "cache_bytes", "gauge", "be_cache_charge() of the entries held.");
  sample_int(b, "cache_bytes", NULL, NULL, cs.bytes);
  static const char *const names[] = {"hits", "misses", "loads", "load_errors", "evictions", "expirations", "invalidations"};
  const int64_t values[] = {cs.hits, cs.misses, cs.loads, cs.load_errors, cs.evictions_size + cs.evictions_count,
                            cs.expirations, cs.invalidations};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char n[64], help[96];
    snprintf(n, sizeof n, "cache_%s_total", names[i]);
    snprintf(help, sizeof help, "Cache %s (be_cache_stats).", names[i]);
    family(b, n, "counter", help);
    sample_int(b, n, NULL, NULL, values[i]);
  }
}

static void prom_memory(be__buf *b, const be_app_memory *m) {
  family(b, "memory_bytes", "gauge", "Bytes in use by component (-1: unknown).");
  static const char *const names[] = {"library", "cache", "metrics", "pool_histograms", "statement_stats",
                                      "incidents", "db_engine", "db_conn_cache", "db_conn_statements",
                                      "db_conn_schema"};
  const int64_t values[] = {m->library_bytes, m->cache_bytes, m->metrics_bytes, m->pool_histogram_bytes,
                            m->stmt_stats_bytes, m->incidents_bytes, m->db_memory_used,
                            m->conn_cache_bytes, m->conn_stmt_bytes, m->conn_schema_bytes};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    sample_int(b, "memory_bytes", "component", names[i], values[i]);
}

static void prom_status(be__buf *b, const be_app_status *s, be_incident_log *incidents) {
  family(b, "status_ok", "gauge", "1 when the database is not unreachable and every target passes.");
  sample_int(b, "status_ok", NULL, NULL, s->ok);
  family(b, "db_reachable", "gauge", "1: a pooled connection answered; 0: none could be had; -1: all busy, not asked.");
  sample_int(b, "db_reachable", NULL, NULL, s->db_reachable);
  family(b, "db_size_bytes", "gauge", "Database size (-1: unknown).");
  sample_int(b, "db_size_bytes", NULL, NULL, s->db_size_bytes);
  family(b, "db_migration_version", "gauge", "Highest migration applied (-1: unknown).");
  sample_int(b, "db_migration_version", NULL, NULL, s->migration_version);
  family(b, "target_current", "gauge", "Current value of each performance target (seconds or ratio).");
  sample_double(b, "target_current", "target", "api_p95_seconds", (double)s->api_p95_ns / 1e9);
  sample_double(b, "target_current", "target", "db_query_p95_seconds", (double)s->db_p95_ns / 1e9);
  sample_double(b, "target_current", "target", "error_rate", s->error_rate);
  family(b, "target_limit", "gauge", "The limit of each performance target.");
  sample_double(b, "target_limit", "target", "api_p95_seconds", (double)s->api_p95_target_ns / 1e9);
  sample_double(b, "target_limit", "target", "db_query_p95_seconds", (double)s->db_p95_target_ns / 1e9);
  sample_double(b, "target_limit", "target", "error_rate", s->error_rate_target);
  family(b, "target_pass", "gauge", "1 when the target passes.");
  sample_int(b, "target_pass", "target", "api_p95_seconds", s->api_p95_ok);
  sample_int(b, "target_pass", "target", "db_query_p95_seconds", s->db_p95_ok);
  sample_int(b, "target_pass", "target", "error_rate", s->error_rate_ok);
  family(b, "invalidation_state", "gauge",
         "Cached profiles across processes: 0 not applicable (SQLite), 1 listening, 2 down (TTL fallback).");
  sample_int(b, "invalidation_state", NULL, NULL, s->invalidation);
  family(b, "invalidation_received_total", "counter", "Change notifications heard from other processes.");
  sample_int(b, "invalidation_received_total", NULL, NULL, s->invalidation_received);
  family(b, "invalidation_reconnects_total", "counter", "Times the notification channel came back after being down.");
  sample_int(b, "invalidation_reconnects_total", NULL, NULL, s->invalidation_reconnects);
  family(b, "incidents_total", "counter", "Incidents recorded, by kind.");
  for (int32_t k = 1; k < BE_INCIDENT_KIND_COUNT; k++)
    sample_int(b, "incidents_total", "kind", be_incident_kind_name(k), be_incident_log_total(incidents, k));
}

/* What both exports start from: the status, the memory figures and a
 * scratch histogram (the caller's to free). */
static int gather(be_app_status *s, be_app_memory *m, be_histogram **scratch, char **out, be_app *app,
                  const char *fn, be_error **err) {
  if (out) *out = NULL;
  if (out == NULL || app == NULL) return be__error_set(err, BE_E_MISUSE, "%s: NULL argument", fn);
  int rc = be_app_status_get(s, app, err);
  if (rc == BE_OK) rc = be_app_memory_get(m, app, err);
  if (rc == BE_OK && be__metrics_scratch(scratch) != BE_OK) rc = be__error_oom(err);
  return rc;
}

int be_app_metrics_prometheus(char **out_text, size_t *out_len, be_app *app, be_error **err) {
  be_app_status s = BE_APP_STATUS_INIT;
  be_app_memory m = BE_APP_MEMORY_INIT;
  be_histogram *scratch = NULL;
  int rc = gather(&s, &m, &scratch, out_text, app, "be_app_metrics_prometheus", err);
  if (rc != BE_OK) return rc;
  be__buf b;
  be__buf_init(&b);
  prom_status(&b, &s, app->res.incidents);
  prom_ops(&b, app->res.metrics, scratch);
  prom_statements(&b, app->res.stmt_stats);
  prom_pool(&b, app->res.pool);
  prom_cache(&b, app->res.cache);
  prom_memory(&b, &m);
  be_histogram_free(scratch);
  if (be__buf_detach(&b, out_text, out_len) != BE_OK) return be__error_oom(err);
  return BE_OK;
}

/* ---- JSON ---- */

static void json_ops(be__buf *b, const be__metrics *m, be_histogram *scratch) {
  be__buf_puts(b, "\"operations\":[");
  int first = 1;
  for (int32_t op = 0; op < BE_OP_COUNT; op++) {
    be__op_counts c = {0, 0, 0, 0};
    be_histogram_reset(scratch);
    be__metrics_merge(m, op, op + 1, scratch, &c);
    if (c.calls == 0) continue;
    be__buf_printf(b,
                   "%s{\"op\":\"%s\",\"calls\":%lld,\"errors\":%lld,\"server_errors\":%lld,"
                   "\"timed\":%lld,\"total_ns\":%lld,\"p50_ns\":%lld,\"p95_ns\":%lld,\"p99_ns\":%lld,"
                   "\"max_ns\":%lld}",
                   first ? "" : ",", be_op_name(op), (long long)c.calls, (long long)c.errors,
                   (long long)c.server_errors, (long long)c.timed,
                   (long long)be__metrics_estimate_total(scratch, c.calls),
                   (long long)be_histogram_quantile(scratch, 0.50),
                   (long long)be_histogram_quantile(scratch, 0.95),
                   (long long)be_histogram_quantile(scratch, 0.99), (long long)be_histogram_max(scratch));
    first = 0;
  }
  be__buf_puts(b, "]");
}

/* Append `,"key":` and a JSON text another writer made (taken). */
static void json_part(be__buf *b, const char *key, char *json, int rc) {
  be__buf_printf(b, ",\"%s\":", key);
  if (rc == BE_OK) be__buf_puts(b, json);
  else b->failed = 1;
  be__free(json);
}

static void json_cache(be__buf *b, const be_cache *cache) {
  be_cache_stats cs = BE_CACHE_STATS_INIT;
  be_cache_stats_get(&cs, cache, NULL);
  be__buf_printf(b,
                 ",\"cache\":{\"entries\":%lld,\"bytes\":%lld,\"hits\":%lld,\"misses\":%lld,\"loads\":%lld,"
                 "\"load_errors\":%lld,\"evictions\":%lld,\"expirations\":%lld,\"invalidations\":%lld}",
                 (long long)cs.entries, (long long)cs.bytes, (long long)cs.hits, (long long)cs.misses,
                 (long long)cs.loads, (long long)cs.load_errors,
                 (long long)(cs.evictions_size + cs.evictions_count), (long long)cs.expirations,
                 (long long)cs.invalidations);
}

int be_app_metrics_json(char **out_json, size_t *out_len, be_app *app, be_error **err) {
  be_app_status s = BE_APP_STATUS_INIT;
  be_app_memory m = BE_APP_MEMORY_INIT;
  be_histogram *scratch = NULL;
  int rc = gather(&s, &m, &scratch, out_json, app, "be_app_metrics_json", err);
  if (rc != BE_OK) return rc;
  be__buf b;
  be__buf_init(&b);
  be__buf_puts(&b, "{\"status\":");
  be__status_json(&b, &s);
  be__buf_puts(&b, ",");
  json_ops(&b, app->res.metrics, scratch);
  be_histogram_free(scratch);
  char *part = NULL;
  rc = be_stmt_stats_to_json(&part, NULL, app->res.stmt_stats, TOP_JSON, NULL);
  json_part(&b, "statements", part, rc);
  rc = be_query_stats_to_json(&part, NULL, be_pool_query_stats(app->res.pool), NULL);
  json_part(&b, "queries", part, rc);
  json_cache(&b, app->res.cache);
  be__buf_puts(&b, ",\"memory\":");
  be__memory_json(&b, &m);
  rc = be_incident_log_to_json(&part, NULL, app->res.incidents, NULL);
  json_part(&b, "incidents", part, rc);
  be__buf_puts(&b, "}");
  if (be__buf_detach(&b, out_json, out_len) != BE_OK) return be__error_oom(err);
  return BE_OK;
}
