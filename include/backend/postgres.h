/* SPDX-License-Identifier: MIT */
/**
 * @file backend/postgres.h
 * @brief The PostgreSQL driver for backend/storage.h (built when libpq is
 *        found: meson option `postgres`, default auto).
 *
 * The DSN given to be_conn_open() is a libpq connection string: a
 * `postgres://` or `postgresql://` URI, or `key=value` pairs. An app or
 * pool given such a URI and no driver (be_app_options.driver,
 * be_pool_options.driver NULL) uses this driver; any other DSN gets the
 * SQLite driver. PostgreSQL never creates a database on open: the
 * database and its user must exist.
 *
 * SQL: statements may use SQLite's placeholders (`?`, `?N`) or
 * PostgreSQL's (`$N`); `?` and `?N` outside strings, quoted identifiers,
 * comments and dollar-quoted bodies become `$N` (so the `?` jsonb
 * operators must be written as functions, e.g. jsonb_exists()). Every
 * statement is prepared on the server (PQprepare) under a name of its
 * own, which libbackend's per-connection statement cache keeps; parameter
 * types are the ones the server infers from where they are used. Values
 * travel as text (blobs in binary); results come back with their types:
 * smallint, integer, bigint and boolean as BE_TYPE_INT, real, double and
 * non-integral numeric as BE_TYPE_FLOAT, bytea as BE_TYPE_BLOB, the rest
 * (text, json, jsonb, timestamps, ...) as BE_TYPE_TEXT.
 *
 * Features: BE_FEATURE_RETURNING, BE_FEATURE_SAVEPOINTS and
 * BE_FEATURE_ARRAY_PARAM (a batch load binds every key as one array:
 * `key = ANY($1)`). be_conn_last_insert_id() asks the server for
 * lastval() (the value the session's last nextval() gave, under a
 * savepoint inside a transaction; 0 when there is none): prefer
 * `INSERT ... RETURNING id`. Every transaction mode runs BEGIN (READ
 * COMMITTED, the server's default); PostgreSQL takes row locks as it
 * writes.
 *
 * Errors are translated by SQLSTATE: 23505 (unique violation) gives
 * BE_E_CONFLICT; 23502, 23514 and 23503 (not-null, check, foreign key)
 * and class 22 (data exceptions: a value its type refuses, such as text
 * that is not JSON for a jsonb column) BE_E_VALIDATION; 40001 and 40P01 (serialization failure, deadlock)
 * BE_E_BUSY, retryable, so be_tx_run() retries the transaction; class 08
 * (connection exceptions), 57P01-57P03 (server shutting down or
 * restarting) and a connection libpq reports as gone BE_E_CONN_LOST, so
 * the connection is broken and a pool replaces it; a failed connect
 * BE_E_DB_UNREACHABLE; everything else BE_E_STORAGE. The error's message
 * is a sentence of libbackend's own (e.g. "postgres step failed: a unique
 * constraint was violated"); the server's message and SQLSTATE are only
 * in the cause, whose driver code (be_error_driver_code()) is the
 * SQLSTATE packed as PostgreSQL's MAKE_SQLSTATE does (six bits a
 * character, first character lowest).
 *
 * Notifications (be_driver version 5): listen runs `LISTEN "channel"`
 * (quoted: the channel's case is kept), notify `SELECT pg_notify($1, $2)`
 * (inside a transaction, delivered on commit), and wait_notification
 * polls the connection's socket and the wake fd. An app on PostgreSQL
 * uses them to keep cached profiles in step with the other processes on
 * the database (README, "Many processes, one database").
 *
 * A statement that fails inside a transaction aborts it on PostgreSQL
 * (every later statement fails until ROLLBACK or ROLLBACK TO a
 * savepoint), unlike SQLite: wrap a statement expected to fail in a
 * savepoint (be_tx_run() nested does).
 */
#ifndef BACKEND_POSTGRES_H
#define BACKEND_POSTGRES_H

#include <backend/common.h>
#include <backend/storage.h>

BE_BEGIN_DECLS

/**
 * The PostgreSQL driver. Thread-safety: safe.
 *
 * @return the driver table: borrowed, static; NULL when libbackend was
 *         built without libpq.
 */
BE_API const be_driver *be_postgres_driver(void);

/**
 * Whether dsn names a PostgreSQL database: it starts with `postgres://`
 * or `postgresql://` (what makes an app or pool without a driver pick
 * be_postgres_driver()). Thread-safety: safe.
 *
 * @param dsn  the DSN, NUL-terminated, or NULL (gives 0).
 * @return 1 or 0.
 */
BE_API int32_t be_postgres_dsn(const char *dsn);

BE_END_DECLS

#endif /* BACKEND_POSTGRES_H */
