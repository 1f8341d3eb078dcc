/* SPDX-License-Identifier: MIT */
/**
 * @file backend/slowlog.h
 * @brief The slow-query log: statements over a threshold, in a bounded ring.
 *
 * Attach a be_slowlog to connections (a pool attaches its log to each one
 * it opens: be_pool_slowlog()); every statement that runs longer than the
 * threshold (default 100 ms, the query p95 target) is recorded with its SQL, duration, rows
 * and wall-clock time. The SQL is stored normalised: literal values in
 * the text become "?" and placeholder lists collapse to "(?)"; bound values
 * never reach the log. The ring keeps the newest `capacity` entries
 * (default 128); older ones are overwritten. Connections time only some
 * fast statements (backend/query_stats.h) but never miss one over a
 * threshold of ten coarse clock ticks (40 ms with a 4 ms tick) or more;
 * a lower threshold makes its connections time every statement. A
 * statement timed from the coarse clock reads long, never short, by as
 * much as the coarse clock lags the exact one (a tick or more: 2.3-6.3 ms
 * with a 4 ms tick on one VM).
 *
 * Threads: recording and reading are safe from any thread (one mutex,
 * taken only for a statement over the threshold), and one log may be
 * attached to connections used by many threads. Attach and detach a
 * connection from the thread using it (or while nobody uses it). A
 * connection that closes while attached is dropped by itself; free the log
 * only when none of its connections is in use.
 */
#ifndef BACKEND_SLOWLOG_H
#define BACKEND_SLOWLOG_H

#include <backend/clock.h>
#include <backend/common.h>
#include <backend/error.h>
#include <backend/storage.h>

BE_BEGIN_DECLS

/** A bounded ring of slow statements (opaque). */
typedef struct be_slowlog be_slowlog;

/** The be_slowlog_options layout this header describes (its version field). */
#define BE_SLOWLOG_OPTIONS_VERSION 1

/** Slow-query log options. Only ever grows at the end. */
typedef struct be_slowlog_options {
  uint32_t version;      /**< BE_SLOWLOG_OPTIONS_VERSION */
  int64_t threshold_ms;  /**< record statements taking longer than this many ms; default 100;
                            0 = every statement that takes any time */
  int32_t capacity;      /**< entries kept, 1..65536; default 128 */
  int32_t max_sql_bytes; /**< SQL kept per entry, 32..65536; default 1024 */
  const be_clock *clock; /**< wall time of entries; NULL = system clock (borrowed) */
} be_slowlog_options;

/** Static initializer: 100 ms threshold, 128 entries of up to 1024 bytes
 * of SQL, the system clock. */
#define BE_SLOWLOG_OPTIONS_INIT \
  { BE_SLOWLOG_OPTIONS_VERSION, INT64_C(100), 128, 1024, NULL }

/**
 * Fill *opts like BE_SLOWLOG_OPTIONS_INIT. Thread-safety: safe.
 *
 * @param opts     the struct to fill; not NULL.
 * @param version  BE_SLOWLOG_OPTIONS_VERSION.
 * @return BE_OK, or BE_E_MISUSE (opts NULL, unknown version).
 */
BE_API int be_slowlog_options_init(be_slowlog_options *opts, uint32_t version);

/**
 * New empty log. Thread-safety: safe.
 *
 * @param out   receives the log, the caller's (be_slowlog_free()); not
 *              NULL. Set to NULL on failure.
 * @param opts  the options, version set (copied; opts->clock is borrowed);
 *              NULL means BE_SLOWLOG_OPTIONS_INIT.
 * @param err   receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (out NULL, bad version); BE_E_VALIDATION (a
 *         value out of range: threshold_ms < 0, capacity or max_sql_bytes
 *         outside its range; the field is named); BE_E_NOMEM;
 *         BE_E_INTERNAL (a mutex could not be made).
 */
BE_API int be_slowlog_new(be_slowlog **out, const be_slowlog_options *opts, be_error **err);

/**
 * Detach from every connection still attached, then release.
 *
 * @param log  a log from be_slowlog_new(), or NULL (a no-op). None of its
 *             connections may be in use on another thread. Do not free a
 *             pool's own log (be_pool_slowlog()): the pool owns it.
 */
BE_API void be_slowlog_free(be_slowlog *log);

/**
 * Record the statements of conn from now on, until be_slowlog_detach(),
 * be_slowlog_free() or be_conn_close(conn). Call it from the thread using
 * conn. The duration comes from the connection's statement timing (a
 * pooled connection is timed on the pool's clock).
 *
 * @param log   the log; not NULL.
 * @param conn  the connection; not NULL. Attaching twice is a no-op.
 * @param err   receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (NULL) or BE_E_NOMEM.
 */
BE_API int be_slowlog_attach(be_slowlog *log, be_conn *conn, be_error **err);

/**
 * Stop recording conn's statements. Call it from the thread using conn.
 *
 * @param log   the log; NULL is a no-op.
 * @param conn  the connection; NULL or one not attached is a no-op.
 */
BE_API void be_slowlog_detach(be_slowlog *log, be_conn *conn);

/**
 * Offer one finished statement (for hosts timing statements themselves).
 * Thread-safety: safe.
 *
 * @param log          the log; not NULL.
 * @param sql          the statement's SQL, NUL-terminated; stored
 *                     normalised as above (cut at max_sql_bytes). Not NULL.
 * @param duration_ns  how long it ran, in nanoseconds (a measured figure);
 *                     recorded only when above the threshold.
 * @param rows         rows it returned, stored as is.
 * @param err          receives the error on failure; may be NULL.
 * @return BE_OK (also when not slow enough to record), or BE_E_MISUSE (log
 *         or sql NULL).
 */
BE_API int be_slowlog_record(be_slowlog *log, const char *sql, int64_t duration_ns, int64_t rows,
                             be_error **err);

/**
 * Entries held now. Thread-safety: safe.
 *
 * @param log  the log, or NULL.
 * @return the count, at most capacity; 0 for NULL.
 */
BE_API size_t be_slowlog_count(be_slowlog *log);

/**
 * Entries ever recorded (since creation or be_slowlog_clear()), including
 * overwritten ones. Thread-safety: safe.
 *
 * @param log  the log, or NULL.
 * @return the count; 0 for NULL.
 */
BE_API int64_t be_slowlog_total(be_slowlog *log);

/**
 * Copy one entry. Thread-safety: safe.
 *
 * @param out_sql          receives the normalised SQL, NUL-terminated, the
 *                         caller's (be_free()); may be NULL. Set to NULL on
 *                         failure.
 * @param out_duration_ns  receives the duration in nanoseconds; may be NULL.
 * @param out_rows         receives the row count; may be NULL.
 * @param out_wall_ns      receives the wall-clock time it was recorded, in
 *                         nanoseconds since the Unix epoch; may be NULL.
 * @param log              the log; not NULL.
 * @param index            which entry: 0 is the oldest held, count - 1 the
 *                         newest.
 * @param err              receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (log NULL), BE_E_NOT_FOUND (index >= count)
 *         or BE_E_NOMEM.
 */
BE_API int be_slowlog_get(char **out_sql, int64_t *out_duration_ns, int64_t *out_rows,
                          int64_t *out_wall_ns, be_slowlog *log, size_t index, be_error **err);

/**
 * The log as JSON, oldest first: `{"threshold_ms":100,"total":3,
 * "entries":[{"sql":"...","duration_ns":...,"rows":...,"wall_ns":...}]}`.
 * Thread-safety: safe.
 *
 * @param out_json  receives the NUL-terminated JSON, the caller's
 *                  (be_free()); not NULL. Set to NULL on failure.
 * @param out_len   receives its length in bytes; may be NULL.
 * @param log       the log; not NULL.
 * @param err       receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (NULL) or BE_E_NOMEM.
 */
BE_API int be_slowlog_to_json(char **out_json, size_t *out_len, be_slowlog *log, be_error **err);

/**
 * Forget every entry (total restarts at 0). Thread-safety: safe.
 *
 * @param log  the log; NULL is a no-op.
 */
BE_API void be_slowlog_clear(be_slowlog *log);

BE_END_DECLS

#endif /* BACKEND_SLOWLOG_H */
