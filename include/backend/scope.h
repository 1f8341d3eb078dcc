/* SPDX-License-Identifier: MIT */
/**
 * @file backend/scope.h
 * @brief Request scopes and the N+1 detector.
 *
 * A scope counts the statements run on its connections between
 * be_scope_begin() and be_scope_end(), by normalised SQL text: comments
 * and extra whitespace dropped, literals and placeholders replaced by "?",
 * and a list of placeholders such as an IN list collapsed to "(?)", so
 * "WHERE id = 1" and "WHERE id = 2" count as one statement. When one
 * statement runs more than repeat_threshold times (default 10) in a scope,
 * the scope reports it once through the log callback (backend/log.h) with
 * the fields sql (normalised, so no values), count, threshold and a hint
 * to batch-load; counting goes on.
 *
 * A scope counts alongside anything else attached to the connection (a
 * pool's query stats and slow-query log, other scopes).
 *
 * Threads: a scope belongs to the thread serving the request; every
 * connection attached to it must be used from that thread. Begin, attach
 * and end on a connection while no other thread uses it. End the scope
 * before its connections are returned to a pool (another thread may take
 * them next); a connection closed while attached simply leaves the scope.
 */
#ifndef BACKEND_SCOPE_H
#define BACKEND_SCOPE_H

#include <backend/common.h>
#include <backend/error.h>
#include <backend/storage.h>

BE_BEGIN_DECLS

/** A request scope counting statements by normalised SQL (opaque). */
typedef struct be_scope be_scope;

/** The be_scope_options layout this header describes (its version field). */
#define BE_SCOPE_OPTIONS_VERSION 1

/** Scope options. Only ever grows at the end. */
typedef struct be_scope_options {
  uint32_t version;         /**< BE_SCOPE_OPTIONS_VERSION */
  int32_t repeat_threshold; /**< K: report a statement run more than K times; default 10 */
  int32_t log_level;        /**< level of the report; default BE_LOG_WARN */
} be_scope_options;

/** Static initializer: report past 10 runs, at BE_LOG_WARN (30). */
#define BE_SCOPE_OPTIONS_INIT \
  { BE_SCOPE_OPTIONS_VERSION, 10, 30 }

/**
 * Fill *opts like BE_SCOPE_OPTIONS_INIT. Thread-safety: safe.
 *
 * @param opts     the struct to fill; not NULL.
 * @param version  BE_SCOPE_OPTIONS_VERSION.
 * @return BE_OK, or BE_E_MISUSE (opts NULL, unknown version).
 */
BE_API int be_scope_options_init(be_scope_options *opts, uint32_t version);

/**
 * Begin a scope counting the statements run on conn.
 *
 * @param out   receives the scope, the caller's: be_scope_end() stops
 *              counting, be_scope_free() releases. Not NULL; set to NULL on
 *              failure.
 * @param conn  the first connection to count; not NULL.
 * @param opts  the options, version set (read during the call); NULL means
 *              BE_SCOPE_OPTIONS_INIT.
 * @param err   receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (out or conn NULL, bad opts version);
 *         BE_E_VALIDATION (repeat_threshold < 1, field "repeat_threshold";
 *         log_level not a BE_LOG_* level below BE_LOG_OFF, field
 *         "log_level"); BE_E_NOMEM.
 */
BE_API int be_scope_begin(be_scope **out, be_conn *conn, const be_scope_options *opts,
                          be_error **err);

/**
 * Count the statements of one more connection in the scope (a request
 * that took a second connection).
 *
 * @param scope  the scope, not ended; not NULL.
 * @param conn   the connection; not NULL. Attaching a connection twice is
 *               a no-op.
 * @param err    receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (NULL, scope already ended) or BE_E_NOMEM.
 */
BE_API int be_scope_attach(be_scope *scope, be_conn *conn, be_error **err);

/**
 * Stop counting: detach from every connection. The counters stay
 * readable.
 *
 * @param scope  the scope; calling it again, or with NULL, is a no-op.
 */
BE_API void be_scope_end(be_scope *scope);

/**
 * End the scope if needed and release it.
 *
 * @param scope  the scope, or NULL (a no-op).
 */
BE_API void be_scope_free(be_scope *scope);

/**
 * @name Counters
 * Readable during and after the scope, until be_scope_free().
 */
/** @{ */
/**
 * Statements run in the scope.
 * @param scope  the scope, or NULL.
 * @return the count; 0 for NULL.
 */
BE_API int64_t be_scope_query_count(const be_scope *scope);
/**
 * Distinct normalised statements.
 * @param scope  the scope, or NULL.
 * @return the count; 0 for NULL.
 */
BE_API int64_t be_scope_distinct_count(const be_scope *scope);
/**
 * Runs of the most repeated statement.
 * @param scope  the scope, or NULL.
 * @return the count; 0 for NULL or when none ran.
 */
BE_API int64_t be_scope_worst_count(const be_scope *scope);
/**
 * Normalised text of the most repeated statement.
 * @param scope  the scope, or NULL.
 * @return the text, NUL-terminated, cut at 512 bytes; borrowed until the
 *         next statement in the scope or be_scope_free(). NULL when none
 *         ran or scope is NULL.
 */
BE_API const char *be_scope_worst_sql(const be_scope *scope);
/**
 * N+1 reports logged (one per offending statement).
 * @param scope  the scope, or NULL.
 * @return the count; 0 for NULL.
 */
BE_API int64_t be_scope_report_count(const be_scope *scope);
/** @} */

BE_END_DECLS

#endif /* BACKEND_SCOPE_H */
