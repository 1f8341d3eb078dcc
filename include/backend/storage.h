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

/** @name Value types (column and bind types) */
/** @{ */
#define BE_TYPE_NULL 0  /**< SQL NULL */
#define BE_TYPE_INT 1   /**< a 64-bit signed integer */
#define BE_TYPE_FLOAT 2 /**< a double */
#define BE_TYPE_TEXT 3  /**< UTF-8 text */
#define BE_TYPE_BLOB 4  /**< bytes */
/** @} */

/** @name be_stmt_step() results besides negative error codes */
/** @{ */
#define BE_ROW 100  /**< a row is ready for the column accessors */
#define BE_DONE 101 /**< the statement has finished */
/** @} */

/** @name Transaction modes for begin */
/** @{ */
#define BE_TX_DEFERRED 0  /**< take locks on first use */
#define BE_TX_IMMEDIATE 1 /**< take the write lock now (SQLite writers: no upgrade deadlock) */
#define BE_TX_EXCLUSIVE 2 /**< take an exclusive lock now (SQLite: BEGIN EXCLUSIVE) */
/** @} */

/** @name Placeholder styles a driver's SQL uses */
/** @{ */
#define BE_PLACEHOLDER_QMARK 0  /**< ?, ?, ? (SQLite) */
#define BE_PLACEHOLDER_DOLLAR 1 /**< $1, $2, $3 (PostgreSQL) */
/** @} */

/** @name Driver feature flags (be_driver.features) */
/** @{ */
#define BE_FEATURE_RETURNING 0x1   /**< INSERT ... RETURNING */
#define BE_FEATURE_JSON_EACH 0x2   /**< a key list can be one JSON text parameter: json_each(?) */
#define BE_FEATURE_ARRAY_PARAM 0x4 /**< a key list can be one array parameter: = ANY($1) */
#define BE_FEATURE_SAVEPOINTS 0x8  /**< SAVEPOINT, RELEASE and ROLLBACK TO (nested transactions) */
/** @} */

/** @name What be_driver.status reports (its `what` argument) */
/** @{ */
#define BE_DRIVER_STATUS_FILE 1         /**< text: the main database file's path ("" in memory) */
#define BE_DRIVER_STATUS_SIZE_BYTES 2   /**< value: the database's size in bytes */
#define BE_DRIVER_STATUS_JOURNAL_MODE 3 /**< text: the journal mode ("wal", "delete", ...) */
#define BE_DRIVER_STATUS_MEMORY_USED 4  /**< value / highwater: bytes the database engine
                                              allocated in this process (all connections) */
#define BE_DRIVER_STATUS_CONN_CACHE 5   /**< value / highwater: this connection's page cache bytes */
#define BE_DRIVER_STATUS_CONN_STMT 6    /**< value: this connection's prepared statements' bytes */
#define BE_DRIVER_STATUS_CONN_SCHEMA 7  /**< value: this connection's schema bytes */
/** @} */

/** The be_driver layout this header describes (its version field).
 * Version 1 ends at in_transaction; version 2 adds next_statement and
 * table_exists; version 3 adds open_existing, bind_text_static and
 * column_value; version 4 adds status; version 5 adds listen, notify and
 * wait_notification. */
#define BE_DRIVER_VERSION 5

/**
 * A storage driver: a table of functions over the driver's native
 * connection and statement handles. Fill every function pointer up to
 * in_transaction; the functions after it (versions 2 and 3) are optional
 * (NULL: libbackend does without them, as described on each). The table
 * must outlive every connection opened through it. A table of an older
 * version (version 1 ends at in_transaction, version 2 at table_exists)
 * is still accepted: the functions it lacks count as absent and are
 * never read.
 *
 * Contract for every function that takes `be_error **err`: return BE_OK (or
 * BE_ROW / BE_DONE for step) on success; on failure return a negative
 * BE_E_* code and, when err is not NULL, set *err to a be_error whose code
 * says what happened to the caller (BE_E_BUSY for busy/locked,
 * BE_E_SERIALIZATION or BE_E_BUSY for serialization failures and
 * deadlocks (both retryable; the PostgreSQL driver gives BE_E_BUSY),
 * BE_E_CONN_LOST when the connection is gone, BE_E_CONFLICT for unique or
 * primary-key violations, BE_E_VALIDATION for NOT NULL / CHECK / foreign
 * key violations, BE_E_STORAGE otherwise), marked retryable where a retry
 * may succeed, and whose cause carries the driver's own code
 * (be_error_set_driver_code) and message. The error's own message is a
 * sentence of the driver's author (it becomes the `detail` of the problem
 * JSON a client sees): never the database's message, which may quote SQL,
 * names or values. Indexes: bind indexes start at 1, column indexes at 0
 * (as in SQLite).
 *
 * Only ever grows at the end; `version` says which fields the caller knows.
 */
typedef struct be_driver {
  uint32_t version;          /**< BE_DRIVER_VERSION */
  const char *name;          /**< "sqlite", "postgres", ... */
  void *driver_data;         /**< passed to open (its user data) */
  int32_t placeholder_style; /**< BE_PLACEHOLDER_* */
  int32_t features;          /**< BE_FEATURE_* flags */

  /** Open a native connection to dsn (the NUL-terminated string given to
   * be_conn_open()) and set *out_conn; driver_data is the table's
   * driver_data. A failure to connect should be BE_E_DB_UNREACHABLE; a
   * locked database BE_E_BUSY; what dsn names exists but is not a usable
   * database (not a database, encrypted, corrupt) BE_E_STORAGE, which is
   * not retryable. Other codes than these, BE_E_NOMEM and BE_E_MISUSE
   * are wrapped in BE_E_DB_UNREACHABLE. Nothing may be written into the
   * database before every check that can fail has passed. */
  int (*open)(void **out_conn, const char *dsn, void *driver_data, be_error **err);
  /** Close a native connection; libbackend has finalized the statements it
   * cached on it. Cannot fail. */
  void (*close)(void *conn);
  /** Prepare one statement and set *out_stmt. sql is sql_len bytes and is
   * followed by a NUL (sql[sql_len] == '\0'). */
  int (*prepare)(void *conn, void **out_stmt, const char *sql, size_t sql_len, be_error **err);
  /** Bind SQL NULL to parameter index. */
  int (*bind_null)(void *stmt, int32_t index, be_error **err);
  /** Bind a 64-bit integer to parameter index. */
  int (*bind_int64)(void *stmt, int32_t index, int64_t value, be_error **err);
  /** Bind a double to parameter index. */
  int (*bind_double)(void *stmt, int32_t index, double value, be_error **err);
  /** Bind len bytes of valid UTF-8 without NUL bytes (not NUL-terminated).
   * The driver copies the bytes (they may change after the call). */
  int (*bind_text)(void *stmt, int32_t index, const char *value, size_t len, be_error **err);
  /** Bind len bytes, copied; value may be NULL when len is 0 (an empty
   * blob). */
  int (*bind_blob)(void *stmt, int32_t index, const void *value, size_t len, be_error **err);
  /** BE_ROW, BE_DONE, or a negative code. */
  int (*step)(void *stmt, be_error **err);
  /** Number of result columns (0 for a statement that returns no rows). */
  int32_t (*column_count)(void *stmt);
  /** Borrowed, valid until the statement's next step, reset or finalize
   * (a step may prepare it again after a schema change). */
  const char *(*column_name)(void *stmt, int32_t column);
  /** BE_TYPE_* of the current row's value. */
  int32_t (*column_type)(void *stmt, int32_t column);
  /** The current row's value as an integer (the driver converts). */
  int64_t (*column_int64)(void *stmt, int32_t column);
  /** The current row's value as a double (the driver converts). */
  double (*column_double)(void *stmt, int32_t column);
  /** Borrowed until the next step/reset/finalize; *len gets the byte length. */
  const char *(*column_text)(void *stmt, int32_t column, size_t *len);
  /** The current row's value as bytes, borrowed like column_text; *len gets
   * the byte length. */
  const void *(*column_blob)(void *stmt, int32_t column, size_t *len);
  /** Make the statement ready to run again and clear its bindings. */
  int (*reset)(void *stmt, be_error **err);
  /** Destroy a statement. Cannot fail. */
  void (*finalize)(void *stmt);
  /** Run SQL text (one or more statements) that returns no rows. */
  int (*exec)(void *conn, const char *sql, be_error **err);
  /** Begin a transaction in mode BE_TX_DEFERRED, _IMMEDIATE or _EXCLUSIVE
   * (libbackend checked the value). */
  int (*begin)(void *conn, int32_t mode, be_error **err);
  /** Commit the open transaction. */
  int (*commit)(void *conn, be_error **err);
  /** Roll back the open transaction. */
  int (*rollback)(void *conn, be_error **err);
  /** name is a validated identifier ([A-Za-z_][A-Za-z0-9_]{0,63}). */
  int (*savepoint)(void *conn, const char *name, be_error **err);
  /** Release savepoint name (validated as for savepoint). */
  int (*release)(void *conn, const char *name, be_error **err);
  /** Roll back to savepoint name (validated as for savepoint), keeping it. */
  int (*rollback_to)(void *conn, const char *name, be_error **err);
  /** Row id of the connection's last insert. */
  int64_t (*last_insert_id)(void *conn);
  /** Rows changed by the connection's last INSERT, UPDATE or DELETE. */
  int64_t (*changes)(void *conn);
  /** Cheap liveness check; BE_E_CONN_LOST when the connection is dead
   * (SQLite: also when its database file was deleted, renamed or
   * replaced since the connection opened). */
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

  /* version 3 */
  /**
   * Optional. Like open, but never creates a database: when dsn names
   * none, fail with BE_E_DB_UNREACHABLE and create nothing. A pool opens
   * its first connection with open (which creates the database when the
   * driver's settings say so) and every later one with this, so a
   * database deleted or moved while the pool runs is reported instead of
   * being replaced by an empty one. Without it, the pool uses open.
   */
  int (*open_existing)(void **out_conn, const char *dsn, void *driver_data, be_error **err);
  /**
   * Optional. Bind len bytes of valid UTF-8 without NUL bytes (not
   * NUL-terminated) without copying them: libbackend guarantees they stay
   * unchanged until the parameter is bound again or the statement is
   * reset or finalized (be_stmt_bind_text_static(); be_stmt_bind_text()
   * also lends its own copies of short text through it). Without it,
   * those binds go to bind_text, which copies.
   */
  int (*bind_text_static)(void *stmt, int32_t index, const char *value, size_t len,
                          be_error **err);
  /**
   * Optional. The current row's value of column in one call: return its
   * BE_TYPE_* and set *out_int (BE_TYPE_INT), *out_double
   * (BE_TYPE_FLOAT), or *out_ptr and *out_len (BE_TYPE_TEXT, as
   * column_text gives it; BE_TYPE_BLOB, as column_blob), leaving the
   * others alone. libbackend reads whole rows with it (be_rows, batch
   * loads); without it, it asks column_type and then the typed accessor.
   */
  int32_t (*column_value)(void *stmt, int32_t column, int64_t *out_int, double *out_double,
                          const void **out_ptr, size_t *out_len);

  /* version 4 */
  /**
   * Optional. One figure about the connection's database or the engine,
   * for status and memory reports (backend/status.h): `what` is a
   * BE_DRIVER_STATUS_* value. A number goes to *out_value (and a peak to
   * *out_highwater where the engine keeps one, else the same value); a
   * text is written NUL-terminated into text (text_cap bytes, cut to fit).
   * out_value, out_highwater and text are never NULL. Return
   * BE_E_UNSUPPORTED for a figure the driver does not know. Without it,
   * those reports say "unknown".
   */
  int (*status)(void *conn, int32_t what, int64_t *out_value, int64_t *out_highwater, char *text,
                size_t text_cap, be_error **err);

  /* version 5 */
  /**
   * Optional, with notify and wait_notification (a driver has all three
   * or none). Subscribe the connection to channel (a validated
   * identifier, case-sensitive): notifications any connection to the
   * same database sends on it from now on are queued on this one for
   * wait_notification. Subscribing again is harmless (and a round trip:
   * libbackend uses it as a liveness check). Without these functions,
   * apps on the driver keep their caches by TTL only (PostgreSQL: LISTEN).
   */
  int (*listen)(void *conn, const char *channel, be_error **err);
  /**
   * Optional (see listen). Send payload (payload_len bytes of UTF-8, no
   * NUL) on channel. Inside a transaction it is delivered only when the
   * transaction commits, and never when it rolls back (PostgreSQL:
   * pg_notify()).
   */
  int (*notify)(void *conn, const char *channel, const char *payload, size_t payload_len,
                be_error **err);
  /**
   * Optional (see listen). Take one queued notification of a listening
   * connection, waiting up to timeout_ms (0: do not wait) for one to
   * arrive, or until wake_fd (a file descriptor, or -1 for none) becomes
   * readable, whichever comes first. On a notification, *out_got is 1,
   * its payload is written NUL-terminated into payload (payload_cap
   * bytes, cut to fit) and *out_len gets its full length; otherwise
   * *out_got is 0. A lost connection is BE_E_CONN_LOST.
   */
  int (*wait_notification)(void *conn, int32_t *out_got, char *payload, size_t payload_cap,
                           size_t *out_len, int32_t wake_fd, int64_t timeout_ms, be_error **err);
} be_driver;

/** A connection: a driver's native connection plus libbackend's state. */
typedef struct be_conn be_conn;
/** A prepared statement on a be_conn. */
typedef struct be_stmt be_stmt;

/**
 * Per-connection setup (be_pool_options.connection_init,
 * be_app_options.connection_init): run once on every new connection a pool
 * opens, after its connection_init_sql and before the connection's first
 * use, on the thread that opened it. It may run any statement on conn and
 * must leave no transaction open; it must not close conn nor use the pool.
 * Return BE_OK, or a negative BE_E_* code (with *err set, or not): the
 * connection is then closed and never handed out, and the acquire (or
 * be_pool_new(), or the maintenance pass) that opened it fails with that
 * code, its error as the cause.
 */
typedef int (*be_conn_init_fn)(be_conn *conn, void *user_data, be_error **err);

/**
 * Open a connection through a driver. Thread-safety: safe (each call makes
 * its own connection).
 *
 * @param out     receives the connection, the caller's (be_conn_close());
 *                not NULL. Set to NULL on failure.
 * @param driver  the driver table, borrowed: it must outlive the
 *                connection (be_sqlite_driver() for SQLite); not NULL.
 * @param dsn     the driver's connection string, NUL-terminated (a path or
 *                URI for SQLite); not NULL.
 * @param err     receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (a NULL argument, an unknown driver table
 *         version, a function pointer missing from the table);
 *         BE_E_DB_UNREACHABLE (the driver could not connect; the cause says
 *         why); BE_E_BUSY (the database is locked); BE_E_STORAGE (dsn names
 *         something that is not a usable database: not a database,
 *         encrypted, truncated or damaged; not retryable); BE_E_NOMEM.
 */
BE_API int be_conn_open(be_conn **out, const be_driver *driver, const char *dsn, be_error **err);

/**
 * Close a connection and every statement it cached. An open transaction is
 * rolled back (unless the connection is broken).
 *
 * @param conn  the connection, or NULL (a no-op). Finalize its statements
 *              first; one still held is finalized here and its handle is
 *              invalid from then on (a pool closing a broken connection
 *              does this for a holder that forgot one).
 */
BE_API void be_conn_close(be_conn *conn);

/**
 * The driver the connection was opened with.
 *
 * @param conn  the connection, or NULL.
 * @return the driver table, borrowed; NULL when conn is NULL.
 */
BE_API const be_driver *be_conn_driver(const be_conn *conn);

/**
 * Prepare SQL, or take it from the connection's statement cache when the
 * same text was prepared before on this connection (then no prepare is
 * paid). The statement comes back reset with no bindings. When the cached
 * statement for the same text is held at that moment, a fresh one is
 * prepared. Thread-safety: as the connection (one thread at a time).
 *
 * @param out   receives the statement, the caller's until it is given back
 *              with be_stmt_finalize(), which returns it to the cache; not
 *              NULL. Set to NULL on failure.
 * @param conn  the connection; not NULL.
 * @param sql   one SQL statement, NUL-terminated, in the driver's
 *              placeholder style; not NULL. (SQLite: more than one
 *              statement, or none, is BE_E_MISUSE; use be_conn_exec() for
 *              scripts.)
 * @param err   receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (NULL); BE_E_STORAGE and friends from the
 *         driver (syntax errors: BE_E_STORAGE with the driver's message as
 *         cause); BE_E_NOMEM.
 */
BE_API int be_conn_prepare(be_stmt **out, be_conn *conn, const char *sql, be_error **err);

/**
 * SQL text made ready once for repeated prepares (opaque, immutable). A
 * statement prepared from it with be_conn_prepare_sql() is found in a
 * connection's statement cache by the handle, without measuring, hashing
 * or comparing the text, on any connection it is used with. Create the
 * handles a program runs often once (at start-up, next to the pool) and
 * share them between threads: a be_sql is never written after
 * be_sql_new().
 */
typedef struct be_sql be_sql;

/**
 * Make a be_sql of one SQL statement. Nothing is prepared yet (the text is
 * checked by the driver at the first be_conn_prepare_sql()).
 * Thread-safety: safe.
 *
 * @param out   receives the handle, the caller's (be_sql_free()); not
 *              NULL. Set to NULL on failure.
 * @param sql   one SQL statement in the driver's placeholder style, copied;
 *              not NULL.
 * @param len   its length in bytes, or BE_NUL_TERMINATED.
 * @param err   receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (out or sql NULL); BE_E_VALIDATION (the text
 *         holds a NUL byte; field "sql"); BE_E_NOMEM.
 */
BE_API int be_sql_new(be_sql **out, const char *sql, size_t len, be_error **err);

/**
 * Release a be_sql. Statements prepared from it stay valid and cached (a
 * connection finds them again by their text); only the handle goes.
 * Thread-safety: no other thread may be using the handle.
 *
 * @param sql  the handle, or NULL (a no-op).
 */
BE_API void be_sql_free(be_sql *sql);

/**
 * The text of a be_sql.
 *
 * @param sql  the handle, or NULL.
 * @param len  receives its length in bytes (0 for NULL); may be NULL.
 * @return the NUL-terminated text, borrowed until be_sql_free(); NULL for
 *         NULL.
 */
BE_API const char *be_sql_text(const be_sql *sql, size_t *len);

/**
 * be_conn_prepare() by handle: the connection's cached statement for the
 * handle is found in one lookup (no hashing of the text), so a statement
 * survives be_stmt_finalize() and comes back for the cost of a pointer
 * check. On the first use on a connection, or when the statement was
 * evicted, it is looked up by text and prepared as be_conn_prepare()
 * would (a statement prepared from the same text either way is the same
 * cached statement). Thread-safety: as the connection.
 *
 * @param out   receives the statement, reset with no bindings, the
 *              caller's until be_stmt_finalize(); not NULL. Set to NULL on
 *              failure.
 * @param conn  the connection; not NULL.
 * @param sql   the handle (be_sql_new()); not NULL. It may be freed while
 *              statements prepared from it are still held.
 * @param err   receives the error on failure; may be NULL.
 * @return as be_conn_prepare(): BE_OK; BE_E_MISUSE (NULL; SQLite: not
 *         exactly one statement); the driver's errors; BE_E_NOMEM.
 */
BE_API int be_conn_prepare_sql(be_stmt **out, be_conn *conn, const be_sql *sql, be_error **err);

/**
 * Give a statement back: reset and keep it in the cache, or finalize it
 * when it is not cached (cache full or disabled, or the connection broken).
 *
 * @param stmt  a statement from be_conn_prepare(), or NULL (a no-op). Every
 *              statement must be given back before its connection is
 *              closed; stmt must not be used afterwards.
 */
BE_API void be_stmt_finalize(be_stmt *stmt);

/**
 * Bound the connection's prepared-statement cache (least recently used
 * evicted first). Idle cached statements are finalized; statements
 * currently held are finalized when given back.
 * Thread-safety: as the connection (one thread at a time).
 *
 * @param conn         the connection; not NULL.
 * @param max_entries  the most statements kept, 0 to 65536 (default 64);
 *                     0 disables caching, so every prepare pays a real
 *                     prepare.
 * @param err          receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (conn NULL, max_entries outside 0..65536) or
 *         BE_E_NOMEM.
 */
BE_API int be_conn_set_stmt_cache_size(be_conn *conn, int32_t max_entries, be_error **err);

/** The be_stmt_cache_stats layout this header describes. */
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
/** Static initializer: the current version, every counter 0. */
#define BE_STMT_CACHE_STATS_INIT \
  { BE_STMT_CACHE_STATS_VERSION, 0, 0, 0 }
/**
 * Set *out to BE_STMT_CACHE_STATS_INIT (for bindings that cannot use the
 * macro). Thread-safety: safe.
 *
 * @param out      the struct to fill; not NULL.
 * @param version  BE_STMT_CACHE_STATS_VERSION.
 * @return BE_OK, or BE_E_MISUSE (out NULL, or version is not
 *         BE_STMT_CACHE_STATS_VERSION).
 */
BE_API int be_stmt_cache_stats_init(be_stmt_cache_stats *out, uint32_t version);
/**
 * Fill *out with the statement-cache counters.
 * Thread-safety: as the connection.
 *
 * @param out   the snapshot to fill; its version set by the caller
 *              (BE_STMT_CACHE_STATS_INIT); not NULL.
 * @param conn  the connection; not NULL.
 * @param err   receives the error on failure; may be NULL.
 * @return BE_OK, or BE_E_MISUSE (NULL, unknown stats version).
 */
BE_API int be_conn_stmt_cache_stats_get(be_stmt_cache_stats *out, const be_conn *conn,
                                        be_error **err);

/**
 * @name Binding
 * Parameter indexes start at 1; text and blob are copied. Every function
 * returns BE_OK, BE_E_MISUSE (NULL stmt, index out of range per driver) or
 * a driver error. Thread-safety: as the connection.
 */
/** @{ */
/**
 * Bind SQL NULL.
 * @param stmt   the statement; not NULL.
 * @param index  the parameter, from 1.
 * @param err    receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE or a driver error.
 */
BE_API int be_stmt_bind_null(be_stmt *stmt, int32_t index, be_error **err);
/**
 * Bind a 64-bit integer.
 * @param stmt   the statement; not NULL.
 * @param index  the parameter, from 1.
 * @param value  the value.
 * @param err    receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE or a driver error.
 */
BE_API int be_stmt_bind_int64(be_stmt *stmt, int32_t index, int64_t value, be_error **err);
/**
 * Bind a double.
 * @param stmt   the statement; not NULL.
 * @param index  the parameter, from 1.
 * @param value  the value.
 * @param err    receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE or a driver error.
 */
BE_API int be_stmt_bind_double(be_stmt *stmt, int32_t index, double value, be_error **err);
/**
 * Bind text.
 * @param stmt   the statement; not NULL.
 * @param index  the parameter, from 1.
 * @param value  the text, UTF-8 without NUL bytes, copied; not NULL.
 * @param len    its length in bytes, or BE_NUL_TERMINATED; 0 is the empty
 *               string (backend/common.h).
 * @param err    receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (also value NULL); BE_E_VALIDATION (text not
 *         valid UTF-8 or holding a NUL byte; field "parameter"); a driver
 *         error.
 */
BE_API int be_stmt_bind_text(be_stmt *stmt, int32_t index, const char *value, size_t len,
                             be_error **err);
/**
 * Bind text the caller vouches for, without checking or copying it: for
 * hot loops (bulk inserts) binding text already known to be valid UTF-8,
 * such as text this program wrote or read back from the database.
 * be_stmt_bind_text() stays the default: it checks and copies. Here the
 * bytes are not checked (text that is not UTF-8 without NUL bytes is
 * stored as given, which the database may then refuse or mangle), and a
 * driver that can borrow them (SQLite can; be_driver.bind_text_static)
 * does not copy them: they must stay valid and unchanged until the
 * parameter is bound again, or the statement is reset (be_stmt_reset())
 * or finalized (be_stmt_finalize()); a statement stepped again after
 * BE_DONE without a reset reads them again.
 * @param stmt   the statement; not NULL.
 * @param index  the parameter, from 1.
 * @param value  the text, valid UTF-8 without NUL bytes, borrowed as
 *               described; not NULL.
 * @param len    its length in bytes, or BE_NUL_TERMINATED; 0 is the empty
 *               string.
 * @param err    receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (also value NULL); a driver error.
 */
BE_API int be_stmt_bind_text_static(be_stmt *stmt, int32_t index, const char *value, size_t len,
                                    be_error **err);
/**
 * Bind bytes.
 * @param stmt   the statement; not NULL.
 * @param index  the parameter, from 1.
 * @param value  the bytes, copied; may be NULL only when len is 0 (an
 *               empty blob).
 * @param len    the number of bytes.
 * @param err    receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (also value NULL with len > 0) or a driver
 *         error.
 */
BE_API int be_stmt_bind_blob(be_stmt *stmt, int32_t index, const void *value, size_t len,
                             be_error **err);
/** @} */

/**
 * Run the statement one step. Thread-safety: as the connection.
 *
 * @param stmt  the statement; not NULL.
 * @param err   receives the error on failure; may be NULL.
 * @return BE_ROW when a row is ready, BE_DONE when finished, or a negative
 *         error code: BE_E_MISUSE (stmt NULL) or the driver's (the
 *         connection is marked broken when it is BE_E_CONN_LOST).
 */
BE_API int be_stmt_step(be_stmt *stmt, be_error **err);

/**
 * Reset to run again; bindings are cleared. Thread-safety: as the
 * connection.
 *
 * @param stmt  the statement; not NULL.
 * @param err   receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (stmt NULL) or a driver error.
 */
BE_API int be_stmt_reset(be_stmt *stmt, be_error **err);

/**
 * @name Columns of the current row
 * Column indexes start at 0. A NULL statement or an out-of-range index
 * gives BE_TYPE_NULL, 0, 0.0 or NULL. Text and blob pointers are borrowed
 * until the next step, reset or finalize. Thread-safety: as the
 * connection.
 */
/** @{ */
/**
 * Number of result columns.
 * @param stmt  the statement, or NULL.
 * @return the count; 0 for NULL or a statement that returns no rows.
 */
BE_API int32_t be_stmt_column_count(be_stmt *stmt);
/**
 * A result column's name.
 * @param stmt    the statement, or NULL.
 * @param column  the column, from 0.
 * @return the name, borrowed until the next be_stmt_step(),
 *         be_stmt_reset() or be_stmt_finalize() of this statement (after
 *         a schema change a step prepares it again, and SQLite frees the
 *         old names); NULL when out of range.
 */
BE_API const char *be_stmt_column_name(be_stmt *stmt, int32_t column);
/**
 * The type of a value of the current row.
 * @param stmt    the statement, or NULL.
 * @param column  the column, from 0.
 * @return a BE_TYPE_* value; BE_TYPE_NULL when out of range.
 */
BE_API int32_t be_stmt_column_type(be_stmt *stmt, int32_t column);
/**
 * A value of the current row as an integer (the driver converts).
 * @param stmt    the statement, or NULL.
 * @param column  the column, from 0.
 * @return the value; 0 when out of range.
 */
BE_API int64_t be_stmt_column_int64(be_stmt *stmt, int32_t column);
/**
 * A value of the current row as a double (the driver converts).
 * @param stmt    the statement, or NULL.
 * @param column  the column, from 0.
 * @return the value; 0.0 when out of range.
 */
BE_API double be_stmt_column_double(be_stmt *stmt, int32_t column);
/**
 * A value of the current row as text.
 * @param stmt    the statement, or NULL.
 * @param column  the column, from 0.
 * @param len     receives the length in bytes (0 when out of range); may
 *                be NULL.
 * @return the text, borrowed until the next step, reset or finalize; NULL
 *         when out of range (and, with SQLite, for an SQL NULL).
 */
BE_API const char *be_stmt_column_text(be_stmt *stmt, int32_t column, size_t *len);
/**
 * A value of the current row as bytes.
 * @param stmt    the statement, or NULL.
 * @param column  the column, from 0.
 * @param len     receives the number of bytes (0 when out of range); may be
 *                NULL.
 * @return the bytes, borrowed until the next step, reset or finalize; NULL
 *         when out of range (and, with SQLite, for an SQL NULL or an empty
 *         blob).
 */
BE_API const void *be_stmt_column_blob(be_stmt *stmt, int32_t column, size_t *len);
/** @} */

/**
 * Run SQL that returns no rows. Thread-safety: as the connection.
 *
 * @param conn  the connection; not NULL.
 * @param sql   the SQL, NUL-terminated; may hold several statements. Not
 *              NULL.
 * @param err   receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (NULL) or a driver error.
 */
BE_API int be_conn_exec(be_conn *conn, const char *sql, be_error **err);

/**
 * @name Transactions and savepoints on one connection
 * Most code wants be_tx_run() (backend/tx.h) instead. Savepoint names must
 * match [A-Za-z_][A-Za-z0-9_]{0,63} (BE_E_VALIDATION otherwise, field
 * "savepoint"). Every function returns BE_OK, BE_E_MISUSE (conn NULL) or a
 * driver error unless it says more. Thread-safety: as the connection.
 */
/** @{ */
/**
 * Begin a transaction.
 * @param conn  the connection; not NULL.
 * @param mode  BE_TX_DEFERRED, BE_TX_IMMEDIATE or BE_TX_EXCLUSIVE.
 * @param err   receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (also an unknown mode) or a driver error.
 */
BE_API int be_conn_begin(be_conn *conn, int32_t mode, be_error **err);
/**
 * Commit the open transaction.
 * @param conn  the connection; not NULL.
 * @param err   receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE or a driver error; BE_E_STORAGE when a nested
 *         transaction failed and its savepoint could not be rolled back:
 *         then the whole transaction is rolled back instead.
 */
BE_API int be_conn_commit(be_conn *conn, be_error **err);
/**
 * Roll back the open transaction.
 * @param conn  the connection; not NULL.
 * @param err   receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE or a driver error.
 */
BE_API int be_conn_rollback(be_conn *conn, be_error **err);
/**
 * Set a savepoint inside the open transaction.
 * @param conn  the connection; not NULL.
 * @param name  the savepoint's name, NUL-terminated.
 * @param err   receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE, BE_E_VALIDATION (bad name) or a driver error.
 */
BE_API int be_conn_savepoint(be_conn *conn, const char *name, be_error **err);
/**
 * Release a savepoint (keep its work in the enclosing transaction).
 * @param conn  the connection; not NULL.
 * @param name  the savepoint's name, NUL-terminated.
 * @param err   receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE, BE_E_VALIDATION (bad name) or a driver error.
 */
BE_API int be_conn_release(be_conn *conn, const char *name, be_error **err);
/**
 * Undo the work done since a savepoint; the savepoint stays set.
 * @param conn  the connection; not NULL.
 * @param name  the savepoint's name, NUL-terminated.
 * @param err   receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE, BE_E_VALIDATION (bad name) or a driver error.
 */
BE_API int be_conn_rollback_to(be_conn *conn, const char *name, be_error **err);
/**
 * Whether a transaction is open.
 * @param conn  the connection, or NULL.
 * @return 1 while a transaction is open, else 0 (also for NULL).
 */
BE_API int32_t be_conn_in_transaction(be_conn *conn);
/** @} */

/**
 * Row id of the connection's last insert. Thread-safety: as the
 * connection.
 *
 * @param conn  the connection, or NULL.
 * @return the driver's last insert id; 0 for NULL.
 */
BE_API int64_t be_conn_last_insert_id(be_conn *conn);
/**
 * Rows changed by the connection's last INSERT, UPDATE or DELETE.
 * Thread-safety: as the connection.
 *
 * @param conn  the connection, or NULL.
 * @return the count; 0 for NULL.
 */
BE_API int64_t be_conn_changes(be_conn *conn);

/**
 * Check the connection is alive; marks it broken on BE_E_CONN_LOST.
 * Thread-safety: as the connection.
 *
 * @param conn  the connection; not NULL.
 * @param err   receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (conn NULL), BE_E_CONN_LOST or another driver
 *         error.
 */
BE_API int be_conn_ping(be_conn *conn, be_error **err);

/**
 * The driver's bind-parameter limit for one statement.
 *
 * @param conn  the connection, or NULL.
 * @return the most parameters one statement may have; 0 for NULL.
 */
BE_API int32_t be_conn_bind_limit(be_conn *conn);

/**
 * Whether the connection is broken: an operation on it failed with
 * BE_E_CONN_LOST. A pool destroys such a connection instead of reusing it.
 *
 * @param conn  the connection, or NULL.
 * @return 1 once broken, else 0 (also for NULL).
 */
BE_API int32_t be_conn_is_broken(const be_conn *conn);

BE_END_DECLS

#endif /* BACKEND_STORAGE_H */
