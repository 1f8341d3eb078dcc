/* SPDX-License-Identifier: MIT */
/**
 * @file backend/tx.h
 * @brief Transactions that roll back on any error, nest as savepoints and
 *        retry on busy/serialization failures.
 *
 * be_tx_run() runs a callback inside a transaction on one connection:
 *
 *   BEGIN (IMMEDIATE for writers on SQLite) -> callback -> COMMIT
 *
 * If the callback returns an error, or the commit fails, the transaction is
 * rolled back and the error is returned (with its cause chain: the
 * driver's code and message). When the connection is already inside a
 * transaction (a be_tx_run() inside a be_tx_run() callback, or after a
 * manual be_conn_begin()), the call becomes a savepoint instead: success
 * releases it, failure rolls back to it and releases it, so only the inner
 * work is undone and the outer transaction goes on.
 *
 * Retries: at the outermost level, when BEGIN, the callback or COMMIT fails
 * with BE_E_BUSY or BE_E_SERIALIZATION, everything is rolled back and the
 * whole callback runs again, up to max_retries more times (and not after
 * retry_budget_ms), sleeping a jittered, doubling backoff in between. The
 * callback must therefore be safe to run again: keep side effects outside the database (sending mail,
 * bumping counters in memory) out of it, or make them idempotent. Nested
 * calls never retry on their own; their error reaches the outer level,
 * which retries as a whole.
 *
 * Thread-safety: as the connection (one thread at a time).
 */
#ifndef BACKEND_TX_H
#define BACKEND_TX_H

#include <backend/common.h>
#include <backend/error.h>
#include <backend/storage.h>

BE_BEGIN_DECLS

/**
 * The work done inside a transaction. Return BE_OK (or any value >= 0) to
 * commit, or a negative BE_E_* code to roll back; on failure set *err
 * (err is never NULL here) to say why — the error reaches be_tx_run()'s
 * caller as is. Use only conn for database work; do not commit or roll
 * back yourself.
 */
typedef int (*be_tx_fn)(be_conn *conn, void *user_data, be_error **err);

/** The be_tx_options layout this header describes (its version field). */
#define BE_TX_OPTIONS_VERSION 1

/** How be_tx_run_ex() runs a transaction. Grows only at the end. */
typedef struct be_tx_options {
  uint32_t version;       /**< BE_TX_OPTIONS_VERSION */
  int32_t mode;           /**< BE_TX_DEFERRED / IMMEDIATE (default) / EXCLUSIVE */
  int32_t max_retries;    /**< extra runs after a retryable failure; default 5, 0 = none */
  int64_t backoff_ms;     /**< first sleep before a retry, ms; default 1, doubled per retry */
  int64_t max_backoff_ms; /**< cap of one sleep, ms; default 100 */
  /** No retry starts once this long has passed since the first attempt
   * (milliseconds, default 2000; 0 = no time bound). Each attempt can
   * itself wait up to the driver's busy timeout, so this keeps the worst case near
   * retry_budget_ms + one busy timeout instead of a multiple of it. */
  int64_t retry_budget_ms;
} be_tx_options;

/** Static initializer: IMMEDIATE, 5 retries, 1 ms first backoff, 100 ms
 * cap, 2000 ms retry budget. */
#define BE_TX_OPTIONS_INIT \
  { BE_TX_OPTIONS_VERSION, BE_TX_IMMEDIATE, 5, INT64_C(1), INT64_C(100), INT64_C(2000) }

/**
 * Fill *opts like BE_TX_OPTIONS_INIT. Thread-safety: safe.
 *
 * @param opts     the struct to fill; not NULL.
 * @param version  BE_TX_OPTIONS_VERSION.
 * @return BE_OK, or BE_E_MISUSE (opts NULL, unknown version).
 */
BE_API int be_tx_options_init(be_tx_options *opts, uint32_t version);

/**
 * Run fn(conn, user_data, &e) in a transaction, with the default retry
 * policy of BE_TX_OPTIONS_INIT. See the file comment for nesting and
 * retries. Thread-safety: as the connection.
 *
 * @param conn       the connection; not NULL. Not usable by anyone else
 *                   during the call.
 * @param mode       BE_TX_DEFERRED, BE_TX_IMMEDIATE (for anything that
 *                   writes on SQLite) or BE_TX_EXCLUSIVE; unused when the
 *                   call becomes a savepoint.
 * @param fn         the work; not NULL. May run several times (retries).
 * @param user_data  passed as is to fn; may be NULL.
 * @param err        receives the error on failure; may be NULL.
 * @return BE_OK when committed (or the savepoint released). Otherwise the
 *         callback's error (if the callback fails without setting one, one
 *         is made from its code); BEGIN/COMMIT failures from the driver
 *         (BE_E_BUSY after the retries ran out, BE_E_SERIALIZATION,
 *         BE_E_CONN_LOST, ...); BE_E_MISUSE (NULL conn or fn, unknown
 *         mode); BE_E_NOMEM.
 */
BE_API int be_tx_run(be_conn *conn, int32_t mode, be_tx_fn fn, void *user_data, be_error **err);

/**
 * be_tx_run() with options: mode, retries and backoff.
 *
 * @param conn       as for be_tx_run().
 * @param opts       the options, version set; NULL means
 *                   BE_TX_OPTIONS_INIT. Read during the call only.
 * @param fn         as for be_tx_run().
 * @param user_data  as for be_tx_run().
 * @param err        receives the error on failure; may be NULL.
 * @return as be_tx_run(), and BE_E_MISUSE for an unknown options version
 *         or negative values.
 */
BE_API int be_tx_run_ex(be_conn *conn, const be_tx_options *opts, be_tx_fn fn, void *user_data,
                        be_error **err);

BE_END_DECLS

#endif /* BACKEND_TX_H */
