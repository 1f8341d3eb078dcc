/* SPDX-License-Identifier: MIT */
/**
 * @file backend/slowlog.h
 * @brief The slow-query log: statements over a threshold, in a bounded ring.
 *
 * Attach a be_slowlog to connections (a pool attaches its log to each one
 * it opens: be_pool_slowlog()); every statement that runs longer than the
 * threshold (default
 * 100 ms, the query p95 target) is recorded with its SQL, duration, rows
 * and wall-clock time. The SQL is stored normalised: literal values in
 * the text become "?" and placeholder lists collapse to "(?)"; bound values
 * never reach the log. The ring keeps the newest `capacity` entries
 * (default 128); older ones are overwritten.
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

typedef struct be_slowlog be_slowlog;

#define BE_SLOWLOG_OPTIONS_VERSION 1

/** Slow-query log options. Only ever grows at the end. */
typedef struct be_slowlog_options {
  uint32_t version;     /**< BE_SLOWLOG_OPTIONS_VERSION */
  int64_t threshold_ms; /**< record statements taking longer than this many ms; default 100;
                            0 = every statement that takes any time */
  int32_t capacity;     /**< entries kept, 1..65536; default 128 */
  int32_t max_sql_bytes; /**< SQL kept per entry, 32..65536; default 1024 */
  const be_clock *clock; /**< wall time of entries; NULL = system clock (borrowed) */
} be_slowlog_options;

#define BE_SLOWLOG_OPTIONS_INIT { BE_SLOWLOG_OPTIONS_VERSION, INT64_C(100), 128, 1024, NULL }

/** Fill *opts like BE_SLOWLOG_OPTIONS_INIT. Errors: BE_E_MISUSE (NULL, unknown version). */
BE_API int be_slowlog_options_init(be_slowlog_options *opts, uint32_t version);

/**
 * New empty log (opts NULL = defaults). Caller owns *out (be_slowlog_free).
 * Errors: BE_E_MISUSE (out NULL, bad version), BE_E_VALIDATION (a value
 * out of range; the field is named), BE_E_NOMEM.
 */
BE_API int be_slowlog_new(be_slowlog **out, const be_slowlog_options *opts, be_error **err);

/** Detach from every connection still attached (none of them may be in
 * use on another thread), then release. NULL is a no-op. Do not free a
 * pool's own log (be_pool_slowlog()): the pool owns it. */
BE_API void be_slowlog_free(be_slowlog *log);

/**
 * Record the statements of conn from now on (twice is a no-op), until
 * be_slowlog_detach(), be_slowlog_free() or be_conn_close(conn). Call it
 * from the thread using conn. The duration comes from the connection's
 * statement timing (a pooled connection is timed on the pool's clock).
 * Errors: BE_E_MISUSE (NULL), BE_E_NOMEM.
 */
BE_API int be_slowlog_attach(be_slowlog *log, be_conn *conn, be_error **err);

/** Stop recording conn's statements. NULL arguments are a no-op. */
BE_API void be_slowlog_detach(be_slowlog *log, be_conn *conn);

/**
 * Offer one finished statement (for hosts timing statements themselves):
 * recorded when duration_ns (nanoseconds: a measured figure) exceeds the
 * threshold. sql is normalised as above.
 * Errors: BE_E_MISUSE (log or sql NULL).
 */
BE_API int be_slowlog_record(be_slowlog *log, const char *sql, int64_t duration_ns, int64_t rows,
                             be_error **err);

/** Entries held now (at most capacity). */
BE_API size_t be_slowlog_count(be_slowlog *log);

/** Entries ever recorded, including overwritten ones. */
BE_API int64_t be_slowlog_total(be_slowlog *log);

/**
 * Copy entry index (0 = oldest held). *out_sql is the caller's (be_free);
 * any out pointer may be NULL. Errors: BE_E_MISUSE (log NULL),
 * BE_E_NOT_FOUND (index >= count), BE_E_NOMEM.
 */
BE_API int be_slowlog_get(char **out_sql, int64_t *out_duration_ns, int64_t *out_rows,
                          int64_t *out_wall_ns, be_slowlog *log, size_t index, be_error **err);

/**
 * The log as JSON, oldest first: `{"threshold_ms":100,"total":3,
 * "entries":[{"sql":"...","duration_ns":...,"rows":...,"wall_ns":...}]}`.
 * *out_json is NUL-terminated, the caller's (be_free); out_len may be NULL.
 * Errors: BE_E_MISUSE (NULL), BE_E_NOMEM.
 */
BE_API int be_slowlog_to_json(char **out_json, size_t *out_len, be_slowlog *log, be_error **err);

/** Forget every entry (total restarts at 0). NULL is a no-op. */
BE_API void be_slowlog_clear(be_slowlog *log);

BE_END_DECLS

#endif /* BACKEND_SLOWLOG_H */
