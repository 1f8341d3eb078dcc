/* SPDX-License-Identifier: MIT */
/* The app's operational view (backend/status.h): status with the targets,
 * memory by component, and the JSON of both. The Prometheus text and the
 * all-figures JSON are in status_export.c. */
#include <backend/cache.h>
#include <backend/histogram.h>
#include <backend/migrate.h>
#include <backend/pool.h>
#include <backend/status.h>

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "app_resources.h"
#include "clock.h"
#include "error.h"
#include "listener.h"
#include "metrics.h"
#include "migrate.h"
#include "pool.h"
#include "status.h"
#include "storage.h"
#include "svc_catalog.h"
#include "strbuf.h"
#include "versioned.h"

int be_app_status_init(be_app_status *out, uint32_t version) {
  static const be_app_status init = BE_APP_STATUS_INIT;
  return be__versioned_init(out, sizeof *out, &init, version, BE_APP_STATUS_VERSION);
}

int be_app_memory_init(be_app_memory *out, uint32_t version) {
  static const be_app_memory init = BE_APP_MEMORY_INIT;
  return be__versioned_init(out, sizeof *out, &init, version, BE_APP_MEMORY_VERSION);
}

be_incident_log *be_app_incidents(be_app *app) { return app ? app->res.incidents : NULL; }
be_stmt_stats *be_app_stmt_stats(be_app *app) { return app ? app->res.stmt_stats : NULL; }

/* A pooled connection for a status question, or NULL: none is taken when
 * the pool is full (a status call must not wait out the acquire timeout). */
static be_conn *probe_conn(be__app_res *res, const be_pool_stats *ps) {
  if (ps->idle == 0 && ps->total >= ps->max_conns) return NULL;
  be_conn *conn = NULL;
  if (be_pool_acquire_at(&conn, res->pool, __FILE__, __LINE__, NULL) != BE_OK) return NULL;
  return conn;
}

/* The database part: reachable, size, journal mode, migration version. */
static void database_status(be_app_status *s, be__app_res *res, const be_pool_stats *ps) {
  int64_t v = 0, hw = 0;
  char text[64];
  s->database = res->database;
  s->db_size_bytes = -1;
  s->migration_version = -1;
  if (ps->idle == 0 && ps->total >= ps->max_conns) {
    s->db_reachable = -1; /* every connection is in use: not asked */
    return;
  }
  be_conn *conn = probe_conn(res, ps);
  s->db_reachable = conn != NULL;
  if (conn == NULL) return;
  if (be__conn_status(conn, BE_DRIVER_STATUS_SIZE_BYTES, &v, &hw, text, sizeof text, NULL) == BE_OK)
    s->db_size_bytes = v;
  if (be__conn_status(conn, BE_DRIVER_STATUS_JOURNAL_MODE, &v, &hw, text, sizeof text, NULL) == BE_OK)
    snprintf(s->db_journal_mode, sizeof s->db_journal_mode, "%.15s", text);
  be_migrator *m = NULL; /* libbackend's record table, under the app's table prefix */
  if (be_migrator_new(&m, NULL) == BE_OK &&
      be__migrator_set_table_folded(m, be__sql(res, BE__SQL_MIGRATIONS_TABLE), NULL) == BE_OK &&
      be_migrator_version(&v, m, conn, NULL) == BE_OK)
    s->migration_version = v;
  be_migrator_free(m);
  be_pool_release(res->pool, conn);
}

static void pool_status(be_app_status *s, const be_pool_stats *ps, const be_pool *pool) {
  s->pool_total = ps->total;
  s->pool_in_use = ps->in_use;
  s->pool_idle = ps->idle;
  s->pool_waiting = ps->waiting;
  s->pool_max = ps->max_conns;
  s->pool_alert_percent = be__pool_alert_percent(pool);
  s->pool_usage_percent = ps->max_conns ? (int32_t)((int64_t)ps->in_use * 100 / ps->max_conns) : 0;
  s->pool_timeouts = ps->timeouts;
  s->pool_oldest_waiter_ns = ps->oldest_waiter_ns;
}

static void cache_status(be_app_status *s, const be_cache *cache) {
  be_cache_stats cs = BE_CACHE_STATS_INIT;
  if (be_cache_stats_get(&cs, cache, NULL) != BE_OK) return;
  s->cache_entries = cs.entries;
  s->cache_bytes = cs.bytes;
  int64_t lookups = cs.hits + cs.misses;
  s->cache_hit_ratio = lookups ? (double)cs.hits / (double)lookups : 0.0;
}

/* The performance table: API p95, DB query p95, error rate. */
static int targets(be_app_status *s, be__app_res *res) {
  be_histogram *api = NULL;
  if (be__metrics_scratch(&api) != BE_OK) return BE_E_NOMEM;
  be__op_counts c = {0, 0, 0, 0};
  be__metrics_merge(res->metrics, 0, BE_OP_SERVICE_COUNT, api, &c);
  s->api_calls = c.calls;
  s->api_server_errors = c.server_errors;
  s->api_p95_ns = be_histogram_quantile(api, 0.95);
  be_histogram_free(api);
  be_histogram *db = NULL; /* our own: two status calls at once share no histogram */
  if (be_histogram_new(&db, NULL) != BE_OK) return BE_E_NOMEM;
  int rc = be_query_stats_histogram_merge(db, be_pool_query_stats(res->pool), NULL);
  s->db_queries = be_histogram_count(db);
  s->db_p95_ns = be_histogram_quantile(db, 0.95);
  be_histogram_free(db);
  if (rc != BE_OK) return rc;
  s->api_p95_target_ns = be__ms_to_ns(res->opts.target_api_p95_ms);
  s->db_p95_target_ns = be__ms_to_ns(res->opts.target_db_p95_ms);
  s->error_rate = s->api_calls ? (double)s->api_server_errors / (double)s->api_calls : 0.0;
  s->error_rate_target = res->opts.target_error_rate;
  s->api_p95_ok = s->api_p95_ns < s->api_p95_target_ns;
  s->db_p95_ok = s->db_p95_ns < s->db_p95_target_ns;
  s->error_rate_ok = s->error_rate < s->error_rate_target;
  return BE_OK;
}

/* Whether cached profiles follow the other processes (listener.h). */
static void invalidation_status(be_app_status *s, const be__app_res *res) {
  if (res->listener == NULL) return; /* BE_APP_INVALIDATION_NONE */
  be__listener_state ls;
  be__listener_get(res->listener, &ls);
  s->invalidation = ls.listening ? BE_APP_INVALIDATION_LISTENING : BE_APP_INVALIDATION_DOWN;
  s->invalidation_down_since_ms = ls.listening ? 0 : ls.down_since_ms;
  s->invalidation_received = ls.received;
  s->invalidation_reconnects = ls.reconnects;
}

/* The struct size of a be_app_status version the library fills. */
static size_t status_size(uint32_t version) {
  if (version == 1) return offsetof(be_app_status, invalidation);
  return version == BE_APP_STATUS_VERSION ? sizeof(be_app_status) : 0;
}

int be_app_status_get(be_app_status *out, be_app *app, be_error **err) {
  if (out == NULL || app == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_app_status_get: %s is NULL", out ? "app" : "out");
  size_t size = status_size(out->version);
  if (size == 0)
    return be__error_set(err, BE_E_MISUSE, "unknown be_app_status version %u", (unsigned)out->version);
  be_app_status s = BE_APP_STATUS_INIT;
  be_pool_stats ps = BE_POOL_STATS_INIT;
  be_pool_stats_get(&ps, app->res.pool, NULL);
  pool_status(&s, &ps, app->res.pool);
  database_status(&s, &app->res, &ps);
  cache_status(&s, app->res.cache);
  if (targets(&s, &app->res) != BE_OK) return be__error_oom(err);
  s.incidents = be_incident_log_total(app->res.incidents, 0);
  s.ok = s.db_reachable != 0 && s.api_p95_ok && s.db_p95_ok && s.error_rate_ok;
  invalidation_status(&s, &app->res);
  s.version = out->version;
  memcpy(out, &s, size);
  return BE_OK;
}

static const char *jbool(int v) { return v ? "true" : "false"; }

void be__status_json(be__buf *b, const be_app_status *s) {
  be__buf_printf(b, "{\"ok\":%s,\"database\":{\"reachable\":%s,\"file\":", jbool(s->ok),
                 s->db_reachable < 0 ? "null" : jbool(s->db_reachable));
  be__buf_json_string(b, s->database, strlen(s->database));
  be__buf_printf(b, ",\"size_bytes\":%lld,\"journal_mode\":", (long long)s->db_size_bytes);
  be__buf_json_string(b, s->db_journal_mode, strlen(s->db_journal_mode));
  be__buf_printf(b,
                 ",\"migration_version\":%lld},\"pool\":{\"total\":%d,\"in_use\":%d,\"idle\":%d,"
                 "\"waiting\":%d,\"max\":%d,\"usage_percent\":%d,\"alert_percent\":%d,"
                 "\"timeouts\":%lld,\"oldest_waiter_ns\":%lld},",
                 (long long)s->migration_version, (int)s->pool_total, (int)s->pool_in_use,
                 (int)s->pool_idle, (int)s->pool_waiting, (int)s->pool_max,
                 (int)s->pool_usage_percent, (int)s->pool_alert_percent,
                 (long long)s->pool_timeouts, (long long)s->pool_oldest_waiter_ns);
  be__buf_printf(b, "\"cache\":{\"entries\":%lld,\"bytes\":%lld,\"hit_ratio\":%.6f},",
                 (long long)s->cache_entries, (long long)s->cache_bytes, s->cache_hit_ratio);
  be__buf_printf(b,
                 "\"targets\":[{\"name\":\"api_p95\",\"current\":%.3f,\"target\":%.3f,\"unit\":\"ms\","
                 "\"samples\":%lld,\"ok\":%s},{\"name\":\"db_query_p95\",\"current\":%.3f,"
                 "\"target\":%.3f,\"unit\":\"ms\",\"samples\":%lld,\"ok\":%s},{\"name\":\"error_rate\","
                 "\"current\":%.4f,\"target\":%.4f,\"unit\":\"%%\",\"samples\":%lld,\"ok\":%s}],",
                 (double)s->api_p95_ns / 1e6, (double)s->api_p95_target_ns / 1e6,
                 (long long)s->api_calls, jbool(s->api_p95_ok), (double)s->db_p95_ns / 1e6,
                 (double)s->db_p95_target_ns / 1e6, (long long)s->db_queries, jbool(s->db_p95_ok),
                 s->error_rate * 100.0, s->error_rate_target * 100.0, (long long)s->api_calls,
                 jbool(s->error_rate_ok));
  be__buf_printf(b,
                 "\"incidents\":%lld,\"invalidation\":{\"state\":\"%s\",\"down_since_ms\":%lld,"
                 "\"received\":%lld,\"reconnects\":%lld}}",
                 (long long)s->incidents, be__invalidation_name(s->invalidation),
                 (long long)s->invalidation_down_since_ms, (long long)s->invalidation_received,
                 (long long)s->invalidation_reconnects);
}

const char *be__invalidation_name(int32_t state) {
  return state == BE_APP_INVALIDATION_LISTENING ? "listening"
         : state == BE_APP_INVALIDATION_DOWN    ? "down"
                                                : "not_applicable";
}

/* The invalidation line of the text status. */
static void invalidation_text(be__buf *b, const be_app_status *s) {
  if (s->invalidation == BE_APP_INVALIDATION_LISTENING) {
    be__buf_printf(b, "Invalidation listening  received %lld  reconnects %lld\n",
                   (long long)s->invalidation_received, (long long)s->invalidation_reconnects);
  } else if (s->invalidation == BE_APP_INVALIDATION_DOWN) {
    time_t t = (time_t)(s->invalidation_down_since_ms / 1000);
    struct tm tm;
    char when[32] = "unknown";
    if (gmtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    be__buf_printf(b, "Invalidation DOWN since %s (TTL fallback, reconnecting)  reconnects %lld\n",
                   when, (long long)s->invalidation_reconnects);
  } else {
    be__buf_puts(b, "Invalidation not applicable (SQLite: one process's cache)\n");
  }
}

/* Run fill on a fresh status of app and hand the buffer out. */
static int status_out(char **out, size_t *out_len, be_app *app, void (*fill)(be__buf *, const be_app_status *),
                      const char *fn, be_error **err) {
  if (out) *out = NULL;
  if (out == NULL || app == NULL) return be__error_set(err, BE_E_MISUSE, "%s: NULL argument", fn);
  be_app_status s = BE_APP_STATUS_INIT;
  int rc = be_app_status_get(&s, app, err);
  if (rc != BE_OK) return rc;
  be__buf b;
  be__buf_init(&b);
  fill(&b, &s);
  if (be__buf_detach(&b, out, out_len) != BE_OK) return be__error_oom(err);
  return BE_OK;
}

int be_app_status_json(char **out_json, size_t *out_len, be_app *app, be_error **err) {
  return status_out(out_json, out_len, app, be__status_json, "be_app_status_json", err);
}

/* A duration in ms with enough digits for sub-millisecond figures. */
static void ms_cell(char *buf, size_t cap, int64_t ns, int64_t samples) {
  if (samples == 0) snprintf(buf, cap, "n/a");
  else snprintf(buf, cap, "%.3f ms", (double)ns / 1e6);
}

static void size_cell(char *buf, size_t cap, int64_t bytes) {
  if (bytes < 0) snprintf(buf, cap, "unknown");
  else if (bytes >= 1024 * 1024) snprintf(buf, cap, "%.1f MiB", (double)bytes / (1024.0 * 1024.0));
  else snprintf(buf, cap, "%.1f KiB", (double)bytes / 1024.0);
}

static void status_text(be__buf *b, const be_app_status *s) {
  char c1[32], c2[32], c3[32];
  size_cell(c1, sizeof c1, s->db_size_bytes);
  be__buf_printf(b, "Database   %s  %s  size %s  journal %s  migration %lld\n", s->database,
                 s->db_reachable > 0 ? "reachable" : s->db_reachable < 0 ? "busy (not checked)"
                                                                         : "UNREACHABLE",
                 c1,
                 s->db_journal_mode[0] ? s->db_journal_mode : "unknown", (long long)s->migration_version);
  be__buf_printf(b,
                 "Pool       total %d  in use %d  idle %d  waiting %d  max %d  usage %d%% (alert at %d%%)"
                 "  timeouts %lld  oldest waiter %lld ms\n",
                 (int)s->pool_total, (int)s->pool_in_use, (int)s->pool_idle, (int)s->pool_waiting,
                 (int)s->pool_max, (int)s->pool_usage_percent, (int)s->pool_alert_percent,
                 (long long)s->pool_timeouts, (long long)(s->pool_oldest_waiter_ns / BE_NS_PER_MS));
  be__buf_printf(b, "Cache      entries %lld  bytes %lld  hit ratio %.1f%%\n", (long long)s->cache_entries,
                 (long long)s->cache_bytes, s->cache_hit_ratio * 100.0);
  invalidation_text(b, s);
  be__buf_printf(b, "Incidents  %lld\n\n", (long long)s->incidents);
  be__buf_printf(b, "%-14s %-11s %-13s %s\n", "Metric", "Target", "Current", "Status");
  ms_cell(c1, sizeof c1, s->api_p95_ns, s->api_calls);
  snprintf(c2, sizeof c2, "< %lld ms", (long long)(s->api_p95_target_ns / BE_NS_PER_MS));
  be__buf_printf(b, "%-14s %-11s %-13s %s\n", "API p95", c2, c1, s->api_p95_ok ? "PASS" : "FAIL");
  ms_cell(c1, sizeof c1, s->db_p95_ns, s->db_queries);
  snprintf(c2, sizeof c2, "< %lld ms", (long long)(s->db_p95_target_ns / BE_NS_PER_MS));
  be__buf_printf(b, "%-14s %-11s %-13s %s\n", "DB query p95", c2, c1, s->db_p95_ok ? "PASS" : "FAIL");
  snprintf(c3, sizeof c3, "%.3f %%", s->error_rate * 100.0);
  snprintf(c2, sizeof c2, "< %g %%", s->error_rate_target * 100.0);
  be__buf_printf(b, "%-14s %-11s %-13s %s\n", "Error rate", c2, s->api_calls ? c3 : "n/a",
                 s->error_rate_ok ? "PASS" : "FAIL");
  be__buf_printf(b, "Overall    %s\n", s->ok ? "OK" : "FAILING");
}

int be_app_status_text(char **out_text, size_t *out_len, be_app *app, be_error **err) {
  return status_out(out_text, out_len, app, status_text, "be_app_status_text", err);
}

/* The database engine's figures, through the driver (-1 when unknown). */
static void engine_memory(be_app_memory *m, be__app_res *res) {
  m->db_memory_used = m->db_memory_highwater = -1;
  m->conn_cache_bytes = m->conn_stmt_bytes = m->conn_schema_bytes = -1;
  be_pool_stats ps = BE_POOL_STATS_INIT;
  be_pool_stats_get(&ps, res->pool, NULL);
  m->pool_connections = ps.total;
  be_conn *conn = probe_conn(res, &ps);
  if (conn == NULL) return;
  int64_t v = 0, hw = 0;
  char t[8];
  if (be__conn_status(conn, BE_DRIVER_STATUS_MEMORY_USED, &v, &hw, t, sizeof t, NULL) == BE_OK) {
    m->db_memory_used = v;
    m->db_memory_highwater = hw;
  }
  if (be__conn_status(conn, BE_DRIVER_STATUS_CONN_CACHE, &v, &hw, t, sizeof t, NULL) == BE_OK)
    m->conn_cache_bytes = v;
  if (be__conn_status(conn, BE_DRIVER_STATUS_CONN_STMT, &v, &hw, t, sizeof t, NULL) == BE_OK)
    m->conn_stmt_bytes = v;
  if (be__conn_status(conn, BE_DRIVER_STATUS_CONN_SCHEMA, &v, &hw, t, sizeof t, NULL) == BE_OK)
    m->conn_schema_bytes = v;
  be_pool_release(res->pool, conn);
}

int be_app_memory_get(be_app_memory *out, be_app *app, be_error **err) {
  if (out == NULL || app == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_app_memory_get: %s is NULL", out ? "app" : "out");
  if (out->version != BE_APP_MEMORY_VERSION)
    return be__error_set(err, BE_E_MISUSE, "unknown be_app_memory version %u", (unsigned)out->version);
  be_app_memory m = BE_APP_MEMORY_INIT;
  be_cache_stats cs = BE_CACHE_STATS_INIT;
  if (be_cache_stats_get(&cs, app->res.cache, NULL) == BE_OK) {
    m.cache_bytes = cs.memory_bytes;
    m.cache_charge_bytes = cs.bytes;
  }
  m.metrics_bytes = be__metrics_memory_bytes(app->res.metrics);
  m.pool_histogram_bytes = 2 * be_histogram_memory_bytes(); /* acquire waits, query latency */
  m.stmt_stats_bytes = be_stmt_stats_memory_bytes(app->res.stmt_stats);
  m.incidents_bytes = be_incident_log_memory_bytes(app->res.incidents);
  m.library_bytes = m.cache_bytes + m.metrics_bytes + m.pool_histogram_bytes + m.stmt_stats_bytes +
                    m.incidents_bytes;
  engine_memory(&m, &app->res);
  *out = m;
  return BE_OK;
}

void be__memory_json(be__buf *b, const be_app_memory *m) {
  be__buf_printf(b,
                 "{\"library_bytes\":%lld,\"cache_bytes\":%lld,\"cache_charge_bytes\":%lld,"
                 "\"metrics_bytes\":%lld,\"pool_histogram_bytes\":%lld,\"stmt_stats_bytes\":%lld,"
                 "\"incidents_bytes\":%lld,\"pool_connections\":%d,\"db_memory_used\":%lld,"
                 "\"db_memory_highwater\":%lld,\"conn_cache_bytes\":%lld,\"conn_stmt_bytes\":%lld,"
                 "\"conn_schema_bytes\":%lld}",
                 (long long)m->library_bytes, (long long)m->cache_bytes,
                 (long long)m->cache_charge_bytes, (long long)m->metrics_bytes,
                 (long long)m->pool_histogram_bytes, (long long)m->stmt_stats_bytes,
                 (long long)m->incidents_bytes, (int)m->pool_connections,
                 (long long)m->db_memory_used, (long long)m->db_memory_highwater,
                 (long long)m->conn_cache_bytes, (long long)m->conn_stmt_bytes,
                 (long long)m->conn_schema_bytes);
}

int be_app_memory_json(char **out_json, size_t *out_len, be_app *app, be_error **err) {
  if (out_json) *out_json = NULL;
  if (out_json == NULL || app == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_app_memory_json: NULL argument");
  be_app_memory m = BE_APP_MEMORY_INIT;
  be_app_memory_get(&m, app, NULL);
  be__buf b;
  be__buf_init(&b);
  be__memory_json(&b, &m);
  if (be__buf_detach(&b, out_json, out_len) != BE_OK) return be__error_oom(err);
  return BE_OK;
}
