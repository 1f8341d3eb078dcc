/* SPDX-License-Identifier: MIT */
/**
 * @file backend/status.h
 * @brief An app's operational view: status with the performance targets
 *        (pass / fail), memory by component, the incident log, statement
 *        statistics, and every figure as JSON or Prometheus text.
 *
 * Status (be_app_status_get()) gives in one call the database (reachable,
 * file, size, journal mode, migration version), the pool (total / in use
 * / idle / waiting, usage against the alert threshold, timeouts, oldest
 * waiter), the cache (entries, bytes, hit ratio) and the performance
 * table, each row with its current value and pass / fail:
 *
 * | target            | default  | measured from |
 * |-------------------|----------|---------------|
 * | API p95           | < 200 ms | every public service call (backend/metrics.h) |
 * | DB query p95      | < 100 ms | every statement on the app's pool (be_pool_query_stats) |
 * | error rate        | < 0.1 %  | service calls failing with a 5xx code / service calls |
 *
 * The targets are be_app_options.target_api_p95_ms, target_db_p95_ms and
 * target_error_rate. A target with no calls yet passes (nothing missed it).
 *
 * Export: be_app_metrics_json() and be_app_metrics_prometheus() write every
 * figure (operations, statements, pool, cache, memory, status, incidents).
 * The Prometheus text follows the text exposition format 0.0.4: a HELP and
 * a TYPE line per metric family, counters named `_total`, histograms as
 * cumulative `_bucket{le="..."}` lines (seconds) ending with `le="+Inf"`,
 * then `_sum` and `_count`, label values escaped (backslash, double quote,
 * newline). Write it to a `.prom` file for node_exporter's textfile
 * collector, or serve it on /metrics.
 *
 * Threads: every function here is safe from any thread while others use
 * the app; the figures are read without stopping recorders, so they may
 * be a few calls apart from one another.
 */
#ifndef BACKEND_STATUS_H
#define BACKEND_STATUS_H

#include <backend/app.h>
#include <backend/common.h>
#include <backend/error.h>
#include <backend/incident.h>
#include <backend/stmt_stats.h>

BE_BEGIN_DECLS

/** Bytes of be_app_status.db_journal_mode, including its NUL. */
#define BE_STATUS_TEXT_MAX 16

/** The be_app_status layout this header describes (its version field).
 * Version 2 adds the invalidation fields; be_app_status_get() fills a
 * version-1 struct too. */
#define BE_APP_STATUS_VERSION 2

/** @name be_app_status.invalidation: how cached profiles follow the other
 * processes on the same database */
/** @{ */
#define BE_APP_INVALIDATION_NONE 0      /**< not applicable: the driver has no notifications (SQLite) */
#define BE_APP_INVALIDATION_LISTENING 1 /**< listening: other processes' commits drop our copies */
#define BE_APP_INVALIDATION_DOWN 2      /**< the channel is down: cached profiles live out their TTL
                                             (user_cache_ttl_ms) while it reconnects */
/** @} */

/**
 * An app's status. Figures the database cannot give are -1 (numbers) or
 * "" (text). Only ever grows at the end.
 */
typedef struct be_app_status {
  uint32_t version;                         /**< in: BE_APP_STATUS_VERSION */
  int32_t ok;                               /**< 1 when the database is reachable and every target passes */
  int32_t db_reachable;                     /**< 1 when a pooled connection answered */
  int32_t pool_total;                       /**< open connections */
  int32_t pool_in_use;                      /**< connections handed out */
  int32_t pool_idle;                        /**< open and free */
  int32_t pool_waiting;                     /**< callers waiting now */
  int32_t pool_max;                         /**< max_conns */
  int32_t pool_alert_percent;               /**< the usage alert threshold, % of max */
  int32_t pool_usage_percent;               /**< in_use * 100 / max, now */
  int32_t api_p95_ok;                       /**< 1 when api_p95_ns < the target */
  int32_t db_p95_ok;                        /**< 1 when db_p95_ns < the target */
  int32_t error_rate_ok;                    /**< 1 when error_rate < the target */
  char db_journal_mode[BE_STATUS_TEXT_MAX]; /**< "wal", "delete", "memory", ... */
  const char *database;                     /**< be_app_options.database; borrowed, lives as long as the app */
  int64_t db_size_bytes;                    /**< database size */
  int64_t migration_version;                /**< highest migration applied */
  int64_t pool_timeouts;                    /**< acquires that timed out (BE_E_POOL_EXHAUSTED) */
  int64_t pool_oldest_waiter_ns;            /**< how long the head waiter has waited; 0 if none */
  int64_t cache_entries;                    /**< entries held */
  int64_t cache_bytes;                      /**< be_cache_charge() of the entries held */
  double cache_hit_ratio;                   /**< hits / (hits + misses); 0 before any lookup */
  int64_t api_calls;                        /**< service calls counted */
  int64_t api_p95_ns;                       /**< their p95 */
  int64_t api_p95_target_ns;                /**< the target */
  int64_t db_queries;                       /**< statements counted */
  int64_t db_p95_ns;                        /**< their p95 */
  int64_t db_p95_target_ns;                 /**< the target */
  int64_t api_server_errors;                /**< service calls that failed with a 5xx code */
  double error_rate;                        /**< api_server_errors / api_calls (0 with no calls) */
  double error_rate_target;                 /**< the target */
  int64_t incidents;                        /**< incidents recorded (be_app_incidents()) */
  /* version 2 */
  int32_t invalidation;               /**< BE_APP_INVALIDATION_* */
  int64_t invalidation_down_since_ms; /**< wall-clock ms (Unix epoch, the app's clock) the channel
                                            went down; 0 unless BE_APP_INVALIDATION_DOWN */
  int64_t invalidation_received;      /**< change notifications heard from other processes */
  int64_t invalidation_reconnects;    /**< times the channel came back after being down */
} be_app_status;

/** Static initializer: the current version, every field 0 / NULL. */
#define BE_APP_STATUS_INIT                                                                  \
  { BE_APP_STATUS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, {0}, NULL, 0, 0, 0, 0, 0, 0, \
    0.0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0.0, 0, 0, 0, 0, 0 }

/**
 * Set *out to BE_APP_STATUS_INIT. Thread-safety: safe.
 *
 * @param out      the struct to fill; not NULL.
 * @param version  BE_APP_STATUS_VERSION.
 * @return BE_OK, or BE_E_MISUSE (out NULL, unknown version).
 */
BE_API int be_app_status_init(be_app_status *out, uint32_t version);

/**
 * Fill *out with the app's status. Takes an idle pooled connection to ask
 * the database; when every connection is in use it does not wait
 * (db_reachable -1), and when none can be opened the database counts as
 * unreachable (0); the rest is filled either way. Not a service call: it
 * is not counted in the metrics. A channel that is down
 * (BE_APP_INVALIDATION_DOWN) leaves `ok` alone: profiles are then as
 * fresh as user_cache_ttl_ms promises, and the listener reconnects; alert
 * on `invalidation` itself.
 *
 * @param out  the status; its version set by the caller
 *             (BE_APP_STATUS_INIT, or 1 for the fields of version 1
 *             only); not NULL.
 * @param app  the app; not NULL.
 * @param err  receives the error on failure; may be NULL.
 * @return BE_OK (also when the database is unreachable: see db_reachable);
 *         BE_E_MISUSE (NULL, unknown version); BE_E_NOMEM.
 */
BE_API int be_app_status_get(be_app_status *out, be_app *app, be_error **err);

/**
 * The status as JSON (reachable is null when not asked): `{"ok":true,"database":{"reachable":true,"file":"...",
 * "size_bytes":N,"journal_mode":"wal","migration_version":N},"pool":{...},
 * "cache":{...},"targets":[{"name":"api_p95","current":...,"target":...,
 * "unit":"ms","ok":true},...],"incidents":N,"invalidation":{"state":"listening",
 * "down_since_ms":0,"received":N,"reconnects":N}}` (state "listening", "down"
 * or "not_applicable").
 *
 * @param out_json  receives the NUL-terminated JSON, the caller's
 *                  (be_free()); not NULL. Set to NULL on failure.
 * @param out_len   receives its length in bytes; may be NULL.
 * @param app       the app; not NULL.
 * @param err       receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (NULL) or BE_E_NOMEM.
 */
BE_API int be_app_status_json(char **out_json, size_t *out_len, be_app *app, be_error **err);

/**
 * The status as a human table (plain text, lines ending in "\n"): the
 * database, pool and cache lines, then the performance table with columns
 * Metric, Target, Current and Status (PASS / FAIL).
 *
 * @param out_text  receives the NUL-terminated text, the caller's
 *                  (be_free()); not NULL. Set to NULL on failure.
 * @param out_len   receives its length in bytes; may be NULL.
 * @param app       the app; not NULL.
 * @param err       receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (NULL) or BE_E_NOMEM.
 */
BE_API int be_app_status_text(char **out_text, size_t *out_len, be_app *app, be_error **err);

/** The be_app_memory layout this header describes (its version field). */
#define BE_APP_MEMORY_VERSION 1

/**
 * Bytes in use by component. Figures the database driver cannot give are
 * -1. Only ever grows at the end.
 */
typedef struct be_app_memory {
  uint32_t version;             /**< in: BE_APP_MEMORY_VERSION */
  int32_t pool_connections;     /**< open connections (each has its own page and statement caches) */
  int64_t cache_bytes;          /**< the cache's allocations (be_cache_stats.memory_bytes) */
  int64_t cache_charge_bytes;   /**< be_cache_charge() of its entries */
  int64_t metrics_bytes;        /**< operation metrics: recorder and histograms */
  int64_t pool_histogram_bytes; /**< the pool's wait and query-latency histograms */
  int64_t stmt_stats_bytes;     /**< statement statistics (be_stmt_stats_memory_bytes) */
  int64_t incidents_bytes;      /**< the incident log */
  int64_t db_memory_used;       /**< the database engine's allocations in this process
                                       (SQLite: sqlite3_status MEMORY_USED; -1 when the
                                       host turned SQLITE_CONFIG_MEMSTATUS off) */
  int64_t db_memory_highwater;  /**< their peak (-1 when db_memory_used is) */
  int64_t conn_cache_bytes;     /**< page cache of one pooled connection (SQLITE_DBSTATUS_CACHE_USED) */
  int64_t conn_stmt_bytes;      /**< prepared statements of one pooled connection (STMT_USED) */
  int64_t conn_schema_bytes;    /**< schema of one pooled connection (SCHEMA_USED) */
  int64_t library_bytes;        /**< the sum of libbackend's own figures above (cache, metrics,
                                       pool histograms, statement statistics, incidents) */
} be_app_memory;

/** Static initializer: the current version, every field 0. */
#define BE_APP_MEMORY_INIT \
  { BE_APP_MEMORY_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/**
 * Set *out to BE_APP_MEMORY_INIT. Thread-safety: safe.
 *
 * @param out      the struct to fill; not NULL.
 * @param version  BE_APP_MEMORY_VERSION.
 * @return BE_OK, or BE_E_MISUSE (out NULL, unknown version).
 */
BE_API int be_app_memory_init(be_app_memory *out, uint32_t version);

/**
 * Fill *out with the memory figures. The database figures come through
 * the driver (be_driver.status); they need a pooled connection, and are -1
 * when none can be had or the driver does not report them.
 *
 * @param out  the figures; its version set by the caller
 *             (BE_APP_MEMORY_INIT); not NULL.
 * @param app  the app; not NULL.
 * @param err  receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (NULL, unknown version).
 */
BE_API int be_app_memory_get(be_app_memory *out, be_app *app, be_error **err);

/**
 * The memory figures as JSON: `{"library_bytes":N,"cache_bytes":N,...}`,
 * one key per be_app_memory field.
 *
 * @param out_json  receives the NUL-terminated JSON, the caller's
 *                  (be_free()); not NULL. Set to NULL on failure.
 * @param out_len   receives its length in bytes; may be NULL.
 * @param app       the app; not NULL.
 * @param err       receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (NULL) or BE_E_NOMEM.
 */
BE_API int be_app_memory_json(char **out_json, size_t *out_len, be_app *app, be_error **err);

/**
 * The app's incident log: pool exhaustion, self-deadlocks, an unreachable
 * database, pool usage alerts and slow-query bursts (backend/incident.h).
 *
 * @param app  the app, or NULL.
 * @return the log, borrowed, valid as long as the app; NULL for NULL.
 */
BE_API be_incident_log *be_app_incidents(be_app *app);

/**
 * The app's statement statistics: every statement run on its pool, per
 * normalized statement (backend/stmt_stats.h).
 *
 * @param app  the app, or NULL.
 * @return the statistics, borrowed, valid as long as the app; NULL for
 *         NULL.
 */
BE_API be_stmt_stats *be_app_stmt_stats(be_app *app);

/**
 * Every figure as JSON: `{"status":{...},"operations":[{"op":"user.get",
 * "calls":N,"errors":N,"server_errors":N,"total_ns":N,"p50_ns":N,
 * "p95_ns":N,"p99_ns":N,"max_ns":N},...],"statements":{...},"pool":{...},
 * "cache":{...},"memory":{...},"incidents":{...}}` (operations with no
 * calls are left out; statements are the top 20 by total time).
 *
 * @param out_json  receives the NUL-terminated JSON, the caller's
 *                  (be_free()); not NULL. Set to NULL on failure.
 * @param out_len   receives its length in bytes; may be NULL.
 * @param app       the app; not NULL.
 * @param err       receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (NULL) or BE_E_NOMEM.
 */
BE_API int be_app_metrics_json(char **out_json, size_t *out_len, be_app *app, be_error **err);

/**
 * Every figure as Prometheus text exposition (format 0.0.4; see the file
 * description), metric names prefixed "backend_": operation latency
 * histograms and call / error counters labelled op, statement counters
 * and time labelled statement (the normalized text, top 50 by total
 * time), pool, cache and memory gauges and counters, the status targets
 * and pass / fail, incident counters labelled kind.
 *
 * @param out_text  receives the NUL-terminated text, the caller's
 *                  (be_free()); not NULL. Set to NULL on failure.
 * @param out_len   receives its length in bytes; may be NULL.
 * @param app       the app; not NULL.
 * @param err       receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (NULL) or BE_E_NOMEM.
 */
BE_API int be_app_metrics_prometheus(char **out_text, size_t *out_len, be_app *app,
                                     be_error **err);

BE_END_DECLS

#endif /* BACKEND_STATUS_H */
