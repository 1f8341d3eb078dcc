/* SPDX-License-Identifier: MIT */
/**
 * @file backend/stmt_stats.h
 * @brief Statement statistics per normalized statement, like PostgreSQL's
 *        pg_stat_statements: calls, rows, total / mean / max / p95 time
 *        and errors; top N by total time; reset.
 *
 * Attach a be_stmt_stats to connections (a pool attaches the one given in
 * be_pool_options.stmt_stats to each connection it opens; an app makes
 * one: be_app_stmt_stats()). Every finished statement is counted under
 * its normalized text (the slow-query log's normalization: literals and
 * placeholders become "?", IN lists "(?)"), so literal values never
 * appear and `WHERE id = 1` and `WHERE id = 2` are one statement.
 *
 * Bounded: at most `max_statements` distinct statements are tracked. All
 * their memory is allocated by be_stmt_stats_new(), so recording never
 * allocates and never fails: per statement about 5 KiB (512 bytes of
 * normalized text, longer texts cut with "...", and a compact latency
 * histogram whose quantiles are within 1/16 = 6.25 % of the exact ones;
 * about 1 MiB for the default 200). Past the bound, new
 * statements are counted together under the one entry whose sql is
 * "(other statements)" (so the totals stay right) and
 * be_stmt_stats_overflow() counts their calls. be_stmt_stats_reset() zeroes
 * every counter but keeps the statements already seen (and their memory):
 * entries with no calls since the reset are not listed.
 *
 * Calls, rows and errors are exact. Times are sampled as in
 * backend/query_stats.h (about one fast execution in 16 timed, at random
 * gaps, and each statement's first on a connection; a timed one stands
 * for the statement's untimed executions before it; slow ones always
 * timed), so total_ns,
 * mean_ns and the quantiles are estimates from the timed executions, and
 * max_ns the longest timed one. The executions the timed ones stand for
 * trail `calls` by the untimed ones since each connection's last timed
 * one; right after be_stmt_stats_reset() they may run ahead of `calls`
 * by as much (untimed executions from before the reset, carried by the
 * next timed one).
 *
 * Slow-query bursts: when an incident log is given, `burst_count`
 * statements over `slow_threshold_ms` within `burst_window_ms` record one
 * BE_INCIDENT_SLOW_QUERIES incident per window (backend/incident.h).
 *
 * Threads: recording is lock-free for a statement text seen before (a
 * 64-bit hash of the raw text finds its entry, so two texts whose hashes
 * collide would share an entry; atomic counters); the first
 * execution of a new text takes a mutex to normalize and register it.
 * Reading is safe from any thread. Attach and detach a connection from the
 * thread using it; free the stats only when none of its connections is in
 * use.
 */
#ifndef BACKEND_STMT_STATS_H
#define BACKEND_STMT_STATS_H

#include <backend/clock.h>
#include <backend/common.h>
#include <backend/error.h>
#include <backend/incident.h>
#include <backend/storage.h>

BE_BEGIN_DECLS

/** Per-statement statistics (opaque, thread-safe). */
typedef struct be_stmt_stats be_stmt_stats;

/** The be_stmt_stats_options layout this header describes (its version field). */
#define BE_STMT_STATS_OPTIONS_VERSION 1

/** Statement statistics options. Only ever grows at the end. */
typedef struct be_stmt_stats_options {
  uint32_t version;           /**< BE_STMT_STATS_OPTIONS_VERSION */
  int32_t max_statements;     /**< distinct statements tracked, 1..100000 [200] */
  int64_t slow_threshold_ms;  /**< a statement longer than this is slow (bursts) [100] */
  int32_t burst_count;        /**< slow statements within the window that make a burst, >= 1 [10] */
  int64_t burst_window_ms;    /**< the burst window, >= 1 [10000] */
  be_incident_log *incidents; /**< records bursts; borrowed [NULL: none] */
  const be_clock *clock;      /**< the burst window's clock; borrowed [system clock] */
} be_stmt_stats_options;

/** Static initializer: the defaults in brackets above. */
#define BE_STMT_STATS_OPTIONS_INIT \
  { BE_STMT_STATS_OPTIONS_VERSION, 200, INT64_C(100), 10, INT64_C(10000), NULL, NULL }

/**
 * Fill *opts like BE_STMT_STATS_OPTIONS_INIT. Thread-safety: safe.
 *
 * @param opts     the struct to fill; not NULL.
 * @param version  BE_STMT_STATS_OPTIONS_VERSION.
 * @return BE_OK, or BE_E_MISUSE (opts NULL, unknown version).
 */
BE_API int be_stmt_stats_options_init(be_stmt_stats_options *opts, uint32_t version);

/** The be_stmt_stat layout this header describes (its version field). */
#define BE_STMT_STAT_VERSION 1

/** One statement's figures (be_stmt_stats_top()). Only ever grows at the end. */
typedef struct be_stmt_stat {
  uint32_t version; /**< in: BE_STMT_STAT_VERSION */
  const char *sql;  /**< the normalized statement, NUL-terminated; borrowed, lives as long
                         as the stats */
  int64_t calls;    /**< executions finished */
  int64_t errors;   /**< executions that ended with an error */
  int64_t rows;     /**< rows returned */
  int64_t total_ns; /**< time spent, summed (estimated from the timed executions) */
  int64_t mean_ns;  /**< mean of the timed executions (times are sampled) */
  int64_t max_ns;   /**< the longest execution */
  int64_t p50_ns;   /**< median execution time (compact histogram: within 1/16) */
  int64_t p95_ns;   /**< 95th percentile */
  int64_t p99_ns;   /**< 99th percentile */
} be_stmt_stat;

/** Static initializer: the current version, every field 0 / NULL. */
#define BE_STMT_STAT_INIT \
  { BE_STMT_STAT_VERSION, NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/**
 * Set *out to BE_STMT_STAT_INIT. Thread-safety: safe.
 *
 * @param out      the struct to fill; not NULL.
 * @param version  BE_STMT_STAT_VERSION.
 * @return BE_OK, or BE_E_MISUSE (out NULL, unknown version).
 */
BE_API int be_stmt_stat_init(be_stmt_stat *out, uint32_t version);

/**
 * New empty statistics. Thread-safety: safe.
 *
 * @param out   receives the stats, the caller's (be_stmt_stats_free()); not
 *              NULL. Set to NULL on failure.
 * @param opts  the options, version set; NULL means
 *              BE_STMT_STATS_OPTIONS_INIT. incidents and clock are borrowed.
 * @param err   receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (out NULL, unknown version); BE_E_VALIDATION
 *         (a value out of range; the field is named); BE_E_NOMEM;
 *         BE_E_INTERNAL (no mutex).
 */
BE_API int be_stmt_stats_new(be_stmt_stats **out, const be_stmt_stats_options *opts,
                             be_error **err);

/**
 * Detach from every connection still attached, then release.
 *
 * @param stats  the stats, or NULL (a no-op). None of its connections may be
 *               in use on another thread.
 */
BE_API void be_stmt_stats_free(be_stmt_stats *stats);

/**
 * Count conn's statements from now on, until be_stmt_stats_detach(),
 * be_stmt_stats_free() or be_conn_close(conn). Call it from the thread
 * using conn.
 *
 * @param stats  the stats; not NULL.
 * @param conn   the connection; not NULL. Attaching twice is a no-op.
 * @param err    receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (NULL) or BE_E_NOMEM.
 */
BE_API int be_stmt_stats_attach(be_stmt_stats *stats, be_conn *conn, be_error **err);

/**
 * Stop counting conn's statements. Call it from the thread using conn.
 *
 * @param stats  the stats; NULL is a no-op.
 * @param conn   the connection; NULL or one not attached is a no-op.
 */
BE_API void be_stmt_stats_detach(be_stmt_stats *stats, be_conn *conn);

/**
 * Count one statement timed by the host. Thread-safety: safe.
 *
 * @param stats        the stats; NULL is a no-op.
 * @param sql          the statement's SQL, NUL-terminated (normalized
 *                     here); NULL is a no-op.
 * @param duration_ns  how long it ran (negative counts as 0).
 * @param rows         rows it returned; values <= 0 add nothing.
 * @param rc           BE_OK, or a negative code (counted as an error).
 */
BE_API void be_stmt_stats_record(be_stmt_stats *stats, const char *sql, int64_t duration_ns,
                                 int64_t rows, int32_t rc);

/**
 * The statements with the most total time, most first (statements with no
 * calls since the last reset are left out). Thread-safety: safe; a
 * statement recorded meanwhile may or may not be counted.
 *
 * @param out     receives up to cap entries; each entry's version is set by
 *                the caller (BE_STMT_STAT_INIT); may be NULL when cap is 0.
 * @param cap     room in out.
 * @param out_n   receives how many entries were written; not NULL.
 * @param stats   the stats; not NULL.
 * @param err     receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (NULL, unknown version); BE_E_NOMEM.
 */
BE_API int be_stmt_stats_top(be_stmt_stat *out, size_t cap, size_t *out_n, be_stmt_stats *stats,
                             be_error **err);

/**
 * Distinct statements with calls since the last reset (the overflow entry
 * counts as one). Thread-safety: safe.
 *
 * @param stats  the stats, or NULL.
 * @return the count; 0 for NULL.
 */
BE_API size_t be_stmt_stats_count(be_stmt_stats *stats);

/**
 * Calls counted under "(other statements)" because max_statements distinct
 * statements were already tracked. Thread-safety: safe.
 *
 * @param stats  the stats, or NULL.
 * @return the count; 0 for NULL.
 */
BE_API int64_t be_stmt_stats_overflow(const be_stmt_stats *stats);

/**
 * The top statements as JSON: `{"statements":N,"overflow_calls":N,
 * "top":[{"sql":"...","calls":N,"errors":N,"rows":N,"total_ns":N,
 * "mean_ns":N,"max_ns":N,"p50_ns":N,"p95_ns":N,"p99_ns":N}]}`, most total
 * time first. Thread-safety: safe.
 *
 * @param out_json  receives the NUL-terminated JSON, the caller's
 *                  (be_free()); not NULL. Set to NULL on failure.
 * @param out_len   receives its length in bytes; may be NULL.
 * @param stats     the stats; not NULL.
 * @param top_n     at most this many statements; 0 = all.
 * @param err       receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (NULL) or BE_E_NOMEM.
 */
BE_API int be_stmt_stats_to_json(char **out_json, size_t *out_len, be_stmt_stats *stats,
                                 size_t top_n, be_error **err);

/**
 * Bytes the stats allocated: the table, the statement texts and their
 * histograms. Thread-safety: safe.
 *
 * @param stats  the stats, or NULL.
 * @return the bytes; 0 for NULL.
 */
BE_API int64_t be_stmt_stats_memory_bytes(be_stmt_stats *stats);

/**
 * Zero every statement's counters and histogram, and the overflow count
 * (not atomic against concurrent recorders). The statements seen stay
 * registered. Thread-safety: safe.
 *
 * @param stats  the stats; NULL is a no-op.
 */
BE_API void be_stmt_stats_reset(be_stmt_stats *stats);

BE_END_DECLS

#endif /* BACKEND_STMT_STATS_H */
