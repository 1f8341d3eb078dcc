/* SPDX-License-Identifier: MIT */
/**
 * @file backend/storage.h
 * @brief The storage driver table, and connections and statements on top of it.
 *
 * Everything in libbackend reaches a database through one versioned table
 * of function pointers, be_driver. SQLite is built in (backend/sqlite.h);
 * a host program can bring its own database by filling a be_driver, without
 * rebuilding the library. The table's functions work on the driver's own
 * native handles (void *); libbackend wraps them in be_conn and be_stmt,
 * which add a per-connection cache of prepared statements, broken-connection
 * tracking and statement metrics.
 *
 * Threads: a be_conn and its statements belong to one thread at a time.
 * Different connections may be used from different threads at once.
 */
#ifndef BACKEND_STORAGE_H
#define BACKEND_STORAGE_H

#include <backend/common.h>
#include <backend/error.h>

BE_BEGIN_DECLS

/** @name Value types (column and bind types) @{ */
#define BE_TYPE_NULL 0
#define BE_TYPE_INT 1
#define BE_TYPE_FLOAT 2
#define BE_TYPE_TEXT 3
#define BE_TYPE_BLOB 4
/** @} */

/** @name be_stmt_step() results besides negative error codes @{ */
#define BE_ROW 100  /**< a row is ready for the column accessors */
#define BE_DONE 101 /**< the statement has finished */
/** @} */

/** @name Transaction modes for begin @{ */
#define BE_TX_DEFERRED 0  /**< take locks on first use */
#define BE_TX_IMMEDIATE 1 /**< take the write lock now (SQLite writers: no upgrade deadlock) */
#define BE_TX_EXCLUSIVE 2
/** @} */

/** @name Placeholder styles a driver's SQL uses @{ */
#define BE_PLACEHOLDER_QMARK 0  /**< ?, ?, ? (SQLite) */
#define BE_PLACEHOLDER_DOLLAR 1 /**< $1, $2, $3 (PostgreSQL) */
/** @} */

/** @name Driver feature flags (be_driver.features) @{ */
#define BE_FEATURE_RETURNING 0x1   /**< INSERT ... RETURNING */
#define BE_FEATURE_JSON_EACH 0x2   /**< a key list can be one JSON text parameter: json_each(?) */
#define BE_FEATURE_ARRAY_PARAM 0x4 /**< a key list can be one array parameter: = ANY($1) */
#define BE_FEATURE_SAVEPOINTS 0x8
/** @} */

/** The be_driver layout this header declares. Version 1 ends at
 * in_transaction; version 2 adds next_statement and table_exists. */
#define BE_DRIVER_VERSION 2

/**
 * A storage driver: a table of functions over the driver's native
 * connection and statement handles. Fill every function pointer up to
 * in_transaction; the version-2 functions after it are optional (NULL:
 * libbackend does without them, as described on each). The table must
 * outlive every connection opened through it. A version-1 table (one
 * built before version 2, which ends at in_transaction) is still
 * accepted: its optional functions count as absent and are never read.
 *
 * Contract for every function that takes `be_error **err`: return BE_OK (or
 * BE_ROW / BE_DONE for step) on success; on failure return a negative
 * BE_E_* code and, when err is not NULL, set *err to a be_error whose code
 * says what happened to the caller (BE_E_BUSY for busy/locked,
 * BE_E_SERIALIZATION for serialization failures and deadlocks,
 * BE_E_CONN_LOST when the connection is gone, BE_E_CONFLICT for unique or
 * primary-key violations, BE_E_VALIDATION for NOT NULL / CHECK / foreign
 * key violations, BE_E_STORAGE otherwise), marked retryable where a retry
 * may succeed, and whose cause carries the driver's own code
 * (be_error_set_driver_code) and message. Indexes: bind indexes start at 1,
 * column indexes at 0 (as in SQLite).
 *
 * Only ever grows at the end; `version` says which fields the caller knows.
 */
typedef struct be_driver {
  uint32_t version;           /**< BE_DRIVER_VERSION */
  const char *name;           /**< "sqlite", "postgres", ... */
  void *driver_data;          /**< passed to open (its user data) */
  int32_t placeholder_style;  /**< BE_PLACEHOLDER_* */
  int32_t features;           /**< BE_FEATURE_* flags */

  int (*open)(void **out_conn, const char *dsn, void *driver_data, be_error **err);
  void (*close)(void *conn);
  int (*prepare)(void *conn, void **out_stmt, const char *sql, size_t sql_len, be_error **err);
  int (*bind_null)(void *stmt, int32_t index, be_error **err);
  int (*bind_int64)(void *stmt, int32_t index, int64_t value, be_error **err);
  int (*bind_double)(void *stmt, int32_t index, double value, be_error **err);
  /** The driver copies the bytes (they may change after the call). */
  int (*bind_text)(void *stmt, int32_t index, const char *value, size_t len, be_error **err);
  int (*bind_blob)(void *stmt, int32_t index, const void *value, size_t len, be_error **err);
  /** BE_ROW, BE_DONE, or a negative code. */
  int (*step)(void *stmt, be_error **err);
  int32_t (*column_count)(void *stmt);
  /** Borrowed, valid until the statement is finalized. */
  const char *(*column_name)(void *stmt, int32_t column);
  /** BE_TYPE_* of the current row's value. */
  int32_t (*column_type)(void *stmt, int32_t column);
  int64_t (*column_int64)(void *stmt, int32_t column);
  double (*column_double)(void *stmt, int32_t column);
  /** Borrowed until the next step/reset/finalize; *len gets the byte length. */
  const char *(*column_text)(void *stmt, int32_t column, size_t *len);
  const void *(*column_blob)(void *stmt, int32_t column, size_t *len);
  /** Make the statement ready to run again and clear its bindings. */
  int (*reset)(void *stmt, be_error **err);
  void (*finalize)(void *stmt);
  /** Run SQL text (one or more statements) that returns no rows. */
  int (*exec)(void *conn, const char *sql, be_error **err);
  int (*begin)(void *conn, int32_t mode, be_error **err);
  int (*commit)(void *conn, be_error **err);
  int (*rollback)(void *conn, be_error **err);
  /** name is a validated identifier ([A-Za-z_][A-Za-z0-9_]*). */
  int (*savepoint)(void *conn, const char *name, be_error **err);
  int (*release)(void *conn, const char *name, be_error **err);
  int (*rollback_to)(void *conn, const char *name, be_error **err);
  int64_t (*last_insert_id)(void *conn);
  int64_t (*changes)(void *conn);
  /** Cheap liveness check; BE_E_CONN_LOST when the connection is dead. */
  int (*ping)(void *conn, be_error **err);
  /** Largest number of bind parameters one statement may have. */
  int32_t (*bind_limit)(void *conn);
  /** 1 while a transaction is open on the connection. */
  int32_t (*in_transaction)(void *conn);

  /* version 2 */
  /**
   * Optional. Set *out_stmt_len to the length in bytes of the first
   * complete statement of the script sql (sql_len bytes, not necessarily
   * NUL-terminated): up to and including the `;` that ends it, in the
   * driver's own SQL dialect, so a `;` inside a string, a comment or a
   * trigger body does not end it. When no `;` ends a complete statement
   * the rest is the last statement: *out_stmt_len = sql_len. Only reads
   * the text; runs nothing. be_migrator_apply() runs a migration's script
   * one statement at a time with it, and refuses a statement that would
   * end the migration's transaction before it runs; without it, the
   * script runs as one exec, checked afterwards.
   */
  int (*next_statement)(void *conn, size_t *out_stmt_len, const char *sql, size_t sql_len,
                        be_error **err);
  /**
   * Optional. Set *out_exists to 1 when a table called name (a validated
   * identifier) exists where unqualified names resolve, else 0. Without
   * it, libbackend asks the standard information_schema.tables.
   */
  int (*table_exists)(void *conn, int32_t *out_exists, const char *name, be_error **err);
} be_driver;

/** A connection: a driver's native connection plus libbackend's state. */
typedef struct be_conn be_conn;
/** A prepared statement on a be_conn. */
typedef struct be_stmt be_stmt;

/**
 * Open a connection through a driver. dsn is the driver's connection string
 * (a path or URI for SQLite). Caller owns *out (be_conn_close).
 * Errors: BE_E_MISUSE (NULL args, unknown driver version),
 * BE_E_DB_UNREACHABLE (the driver could not connect; the cause says why),
 * BE_E_NOMEM. Thread-safety: safe (each call makes its own connection).
 */
BE_API int be_conn_open(be_conn **out, const be_driver *driver, const char *dsn, be_error **err);

/** Close a connection and every statement it cached. An open transaction is
 * rolled back. NULL is a no-op. */
BE_API void be_conn_close(be_conn *conn);

/** The driver the connection was opened with (borrowed). */
BE_API const be_driver *be_conn_driver(const be_conn *conn);

/**
 * Prepare SQL, or take it from the connection's statement cache when the
 * same text was prepared before on this connection (then no prepare is
 * paid). The statement comes back reset with no bindings. Caller owns *out
 * and gives it back with be_stmt_finalize(), which returns it to the cache.
 * Errors: BE_E_MISUSE (NULL), BE_E_STORAGE and friends from the driver
 * (syntax errors: BE_E_STORAGE with the driver's message as cause),
 * BE_E_NOMEM.
 */
BE_API int be_conn_prepare(be_stmt **out, be_conn *conn, const char *sql, be_error **err);

/** Give a statement back: reset and keep it in the cache, or finalize it
 * when the cache is full. NULL is a no-op. Every statement must be given
 * back before its connection is closed. */
BE_API void be_stmt_finalize(be_stmt *stmt);

/**
 * Bound the connection's prepared-statement cache to max_entries
 * statements (default 64, least recently used evicted first; 0 disables
 * caching, so every prepare pays a real prepare). Idle cached statements
 * are finalized; statements currently held are finalized when given back.
 * Errors: BE_E_MISUSE (NULL, max_entries outside 0..65536), BE_E_NOMEM.
 * Thread-safety: as the connection (one thread at a time).
 */
BE_API int be_conn_set_stmt_cache_size(be_conn *conn, int32_t max_entries, be_error **err);

#define BE_STMT_CACHE_STATS_VERSION 1
/**
 * A snapshot of a connection's prepared-statement cache. Set `version`
 * (BE_STMT_CACHE_STATS_INIT) before calling be_conn_stmt_cache_stats_get().
 * Only ever grows at the end.
 */
typedef struct be_stmt_cache_stats {
  uint32_t version; /**< in: BE_STMT_CACHE_STATS_VERSION */
  int32_t size;     /**< statements cached now (same type as the max_entries bound) */
  int64_t hits;     /**< prepares served from the cache */
  int64_t misses;   /**< real prepares */
} be_stmt_cache_stats;
#define BE_STMT_CACHE_STATS_INIT { BE_STMT_CACHE_STATS_VERSION, 0, 0, 0 }
/**
 * Set *out to BE_STMT_CACHE_STATS_INIT (for bindings that cannot use the macro).
 * Errors: BE_E_MISUSE (out NULL, or version is not BE_STMT_CACHE_STATS_VERSION).
 */
BE_API int be_stmt_cache_stats_init(be_stmt_cache_stats *out, uint32_t version);
/**
 * Fill *out (whose version the caller set) with the statement-cache
 * counters. Errors: BE_E_MISUSE (NULL, unknown stats version).
 * Thread-safety: as the connection.
 */
BE_API int be_conn_stmt_cache_stats_get(be_stmt_cache_stats *out, const be_conn *conn,
                                        be_error **err);

/** @name Binding (index from 1; text and blob are copied) @{
 * Errors: BE_E_MISUSE (NULL stmt, index out of range per driver),
 * BE_E_VALIDATION (text not valid UTF-8 for be_stmt_bind_text),
 * driver errors. */
BE_API int be_stmt_bind_null(be_stmt *stmt, int32_t index, be_error **err);
BE_API int be_stmt_bind_int64(be_stmt *stmt, int32_t index, int64_t value, be_error **err);
BE_API int be_stmt_bind_double(be_stmt *stmt, int32_t index, double value, be_error **err);
/** len may be BE_NUL_TERMINATED; 0 is the empty string (backend/common.h). */
BE_API int be_stmt_bind_text(be_stmt *stmt, int32_t index, const char *value, size_t len,
                             be_error **err);
BE_API int be_stmt_bind_blob(be_stmt *stmt, int32_t index, const void *value, size_t len,
                             be_error **err);
/** @} */

/**
 * Run the statement one step: BE_ROW when a row is ready, BE_DONE when
 * finished, or a negative error code (the connection is marked broken when
 * it is BE_E_CONN_LOST).
 */
BE_API int be_stmt_step(be_stmt *stmt, be_error **err);

/** Reset to run again; bindings are cleared. */
BE_API int be_stmt_reset(be_stmt *stmt, be_error **err);

/** @name Columns of the current row (index from 0) @{
 * Out-of-range indexes give BE_TYPE_NULL, 0, 0.0 or NULL. Text and blob
 * pointers are borrowed until the next step, reset or finalize. */
BE_API int32_t be_stmt_column_count(be_stmt *stmt);
BE_API const char *be_stmt_column_name(be_stmt *stmt, int32_t column);
BE_API int32_t be_stmt_column_type(be_stmt *stmt, int32_t column);
BE_API int64_t be_stmt_column_int64(be_stmt *stmt, int32_t column);
BE_API double be_stmt_column_double(be_stmt *stmt, int32_t column);
BE_API const char *be_stmt_column_text(be_stmt *stmt, int32_t column, size_t *len);
BE_API const void *be_stmt_column_blob(be_stmt *stmt, int32_t column, size_t *len);
/** @} */

/** Run SQL that returns no rows (may hold several statements). */
BE_API int be_conn_exec(be_conn *conn, const char *sql, be_error **err);

/** @name Transactions and savepoints on one connection @{
 * Most code wants be_tx_run() (backend/tx.h) instead. Savepoint names must
 * match [A-Za-z_][A-Za-z0-9_]{0,63} (BE_E_VALIDATION otherwise). */
BE_API int be_conn_begin(be_conn *conn, int32_t mode, be_error **err);
BE_API int be_conn_commit(be_conn *conn, be_error **err);
BE_API int be_conn_rollback(be_conn *conn, be_error **err);
BE_API int be_conn_savepoint(be_conn *conn, const char *name, be_error **err);
BE_API int be_conn_release(be_conn *conn, const char *name, be_error **err);
BE_API int be_conn_rollback_to(be_conn *conn, const char *name, be_error **err);
/** 1 while a transaction is open. */
BE_API int32_t be_conn_in_transaction(be_conn *conn);
/** @} */

/** Row id of the last insert, and rows changed by the last statement. */
BE_API int64_t be_conn_last_insert_id(be_conn *conn);
BE_API int64_t be_conn_changes(be_conn *conn);

/** Check the connection is alive; marks it broken on BE_E_CONN_LOST. */
BE_API int be_conn_ping(be_conn *conn, be_error **err);

/** The driver's bind-parameter limit for one statement. */
BE_API int32_t be_conn_bind_limit(be_conn *conn);

/** 1 once an operation on the connection failed with BE_E_CONN_LOST; a pool
 * destroys such a connection instead of reusing it. */
BE_API int32_t be_conn_is_broken(const be_conn *conn);

BE_END_DECLS

#endif /* BACKEND_STORAGE_H */
