/* SPDX-License-Identifier: MIT */
/**
 * @file backend/query_stats.h
 * @brief Query counts, error counts, rows and a latency histogram for a
 *        set of connections (typically every connection of one pool).
 *
 * Attach a be_query_stats to each connection (every be_pool does it with
 * its own stats for each connection it opens: be_pool_query_stats()); every
 * finished statement then adds to the counters and records its duration
 * (ns) in a histogram with p50/p95/p99 (backend/histogram.h). The counters
 * are exact. Durations are sampled: with the system clock a connection
 * times about one fast statement in 16 (at random gaps, and the first run
 * of each statement it prepares), and that one is recorded as standing
 * for itself and the untimed statements before it; every
 * statement is timed while the connection's statements take 20 us or
 * more, a statement that proves to take two ticks of the coarse clock
 * (2-20 ms) or more is always timed (read long by as much as the coarse
 * clock lags the exact one, a tick or more), and every
 * statement is timed with another clock. So the histogram's count trails
 * be_query_stats_queries() by about 23 per connection at most (runs
 * before the stats were attached are never in it; right after
 * be_query_stats_reset() it may run ahead by as much), and its
 * quantiles are those of a sample (be_query_stats_record() records
 * exactly what it is given). Any number of
 * stats, slow-query logs and scopes may be attached to one connection. A
 * connection that closes while attached is dropped from the stats by
 * itself; no detach is needed first.
 *
 * Threads: recording and reading are safe from any thread, and one stats
 * may be attached to connections used by many threads. Counting a
 * statement of an attached connection takes no lock and no locked
 * instruction (each connection counts its own statements; only the
 * sampled durations and be_query_stats_record() use atomic adds), and
 * reading the counters adds up those of the attached connections under a
 * short lock (a statement still running on another thread is counted
 * when it ends).
 * Attach and detach a connection from the thread using it (or while nobody
 * uses it); free the stats only when none of its connections is in use.
 */
#ifndef BACKEND_QUERY_STATS_H
#define BACKEND_QUERY_STATS_H

#include <backend/common.h>
#include <backend/error.h>
#include <backend/histogram.h>
#include <backend/storage.h>

BE_BEGIN_DECLS

/** Query counters and a latency histogram (opaque). */
typedef struct be_query_stats be_query_stats;

/**
 * New zeroed stats.
 *
 * @param out  receives the stats, the caller's (be_query_stats_free());
 *             not NULL. Set to NULL on failure.
 * @param err  receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (out NULL) or BE_E_NOMEM.
 */
BE_API int be_query_stats_new(be_query_stats **out, be_error **err);

/**
 * Detach from every connection still attached, then release.
 *
 * @param stats  stats from be_query_stats_new(), or NULL (a no-op). None of
 *               its connections may be in use on another thread. Do not
 *               free the stats of a pool (be_pool_query_stats()): the pool
 *               owns them.
 */
BE_API void be_query_stats_free(be_query_stats *stats);

/**
 * Count conn's statements from now on, until be_query_stats_detach(),
 * be_query_stats_free() or be_conn_close(conn). Call it from the thread
 * using conn.
 *
 * @param stats  the stats; not NULL.
 * @param conn   the connection; not NULL. Attaching twice is a no-op.
 * @param err    receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (NULL) or BE_E_NOMEM.
 */
BE_API int be_query_stats_attach(be_query_stats *stats, be_conn *conn, be_error **err);

/**
 * Stop counting conn's statements. Call it from the thread using conn.
 *
 * @param stats  the stats; NULL is a no-op.
 * @param conn   the connection; NULL or one not attached is a no-op.
 */
BE_API void be_query_stats_detach(be_query_stats *stats, be_conn *conn);

/**
 * Add one statement timed by the host. Thread-safety: safe, lock-free.
 *
 * @param stats        the stats; NULL is a no-op.
 * @param duration_ns  how long it ran, in nanoseconds (negative counts as
 *                     0).
 * @param rows         rows it returned; values <= 0 add nothing.
 * @param rc           its result: BE_OK, or a negative code (counted as an
 *                     error).
 */
BE_API void be_query_stats_record(be_query_stats *stats, int64_t duration_ns, int64_t rows,
                                  int32_t rc);

/**
 * @name Counters
 * Thread-safety: safe (a short lock while the attached connections'
 * counts are added up).
 */
/** @{ */
/**
 * Statements counted.
 * @param stats  the stats, or NULL.
 * @return the count; 0 for NULL.
 */
BE_API int64_t be_query_stats_queries(const be_query_stats *stats);
/**
 * Statements that ended with an error.
 * @param stats  the stats, or NULL.
 * @return the count; 0 for NULL.
 */
BE_API int64_t be_query_stats_errors(const be_query_stats *stats);
/**
 * Rows the counted statements returned.
 * @param stats  the stats, or NULL.
 * @return the count; 0 for NULL.
 */
BE_API int64_t be_query_stats_rows(const be_query_stats *stats);
/** @} */

/**
 * The duration histogram, in nanoseconds. Threads record into stripes of
 * their own; each call merges them into this histogram, so it is a
 * snapshot as of the call (call again to see later statements). There is
 * one such histogram per stats, shared by every caller: a call on another
 * thread refreshes it while you read it (you may read zeros or counts
 * that do not add up). Threads that read durations at once each use
 * be_query_stats_histogram_merge() into a histogram of their own.
 * Thread-safety: safe to call; see above for reading the result.
 *
 * @param stats  the stats, or NULL.
 * @return the histogram, borrowed, lives as long as stats (read it with
 *         the be_histogram_* getters; do not free it); NULL for NULL.
 */
BE_API const be_histogram *be_query_stats_histogram(const be_query_stats *stats);

/**
 * Add the duration histogram (every thread's stripe) to into, a histogram
 * of the caller's (be_histogram_new(); reset it first for a snapshot of
 * the stats alone). Thread-safety: safe; into must not be used by
 * another thread meanwhile.
 *
 * @param into   the histogram added to; not NULL.
 * @param stats  the stats; not NULL.
 * @param err    receives the error on failure; may be NULL.
 * @return BE_OK, or BE_E_MISUSE (into or stats NULL).
 */
BE_API int be_query_stats_histogram_merge(be_histogram *into, const be_query_stats *stats,
                                          be_error **err);

/**
 * The stats as JSON: `{"queries":N,"errors":N,"rows":N,"p50_ns":N,
 * "p95_ns":N,"p99_ns":N,"max_ns":N}`. Thread-safety: safe.
 *
 * @param out_json  receives the NUL-terminated JSON, the caller's
 *                  (be_free()); not NULL. Set to NULL on failure.
 * @param out_len   receives its length in bytes; may be NULL.
 * @param stats     the stats; not NULL.
 * @param err       receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (NULL) or BE_E_NOMEM.
 */
BE_API int be_query_stats_to_json(char **out_json, size_t *out_len, const be_query_stats *stats,
                                  be_error **err);

/**
 * Zero every counter and the histogram (not atomic against recorders).
 *
 * @param stats  the stats; NULL is a no-op.
 */
BE_API void be_query_stats_reset(be_query_stats *stats);

BE_END_DECLS

#endif /* BACKEND_QUERY_STATS_H */
