/* SPDX-License-Identifier: MIT */
/**
 * @file backend/sqlite.h
 * @brief The built-in SQLite driver for backend/storage.h.
 *
 * The DSN given to be_conn_open() is a file path, a `file:` URI (URI
 * filenames are always enabled) or ":memory:". Each connection is opened
 * with SQLITE_OPEN_NOMUTEX (a connection belongs to one thread at a time),
 * extended result codes and a busy timeout; then, before anything is
 * written, it checks that the file is a database SQLite can read and
 * that it is writable when the open flags ask for read-write; only then
 * are the configured journal_mode, synchronous and foreign_keys pragmas
 * run, then the tuning pragmas that are set (cache_size, mmap_size,
 * secure_delete, temp_store, wal_autocheckpoint, journal_size_limit;
 * be_sqlite_options). A failed open writes nothing into the file; a
 * pragma SQLite refuses fails the open with its error. Anything else a
 * host wants on every connection (its own pragmas, functions, attached
 * databases) goes in the pool's connection_init_sql or connection_init
 * callback (backend/pool.h).
 *
 * Errors from SQLite are translated: SQLITE_BUSY / SQLITE_LOCKED (after the
 * busy timeout ran out, so a caller never hangs) give BE_E_BUSY, marked
 * retryable; UNIQUE / PRIMARY KEY / ROWID constraint violations give
 * BE_E_CONFLICT; NOT NULL / CHECK / FOREIGN KEY / DATATYPE give
 * BE_E_VALIDATION; SQLITE_NOMEM gives BE_E_NOMEM; SQLITE_RANGE and
 * SQLITE_MISUSE give BE_E_MISUSE; everything else BE_E_STORAGE. The
 * error's message (the `detail` of its problem JSON) is a sentence of
 * libbackend's own, such as "sqlite step failed: a unique constraint was
 * violated"; SQLite's message, which may quote SQL, table and column
 * names, is only in the cause. The cause (and the error itself) carries
 * SQLite's extended result code as the driver code
 * (be_error_driver_code(), e.g. 2067 for SQLITE_CONSTRAINT_UNIQUE).
 *
 * A failed open says why, naming the file: a locked database is BE_E_BUSY
 * (retryable) whatever the journal mode; a file that is not a database,
 * is encrypted, truncated or damaged is BE_E_STORAGE (500, not
 * retryable); a missing directory, a file or directory without
 * permission, a read-only file (read-write asked), a read-only directory
 * (no -wal or -journal can be made there) and a file that may not be
 * created are BE_E_DB_UNREACHABLE (503).
 *
 * A database file deleted, renamed or replaced while connections are
 * open: SQLite would keep reading and writing the old file, which no one
 * can see any more. This driver checks (SQLITE_FCNTL_HAS_MOVED, one
 * stat() of the path) in ping (which a pool runs on a connection idle
 * past its validation window) and at the start of every write
 * transaction (BE_TX_IMMEDIATE, BE_TX_EXCLUSIVE), and fails with
 * BE_E_CONN_LOST naming the path; the connection is then broken and a
 * pool drops it. Autocommit writes outside a transaction and reads are
 * not checked. The driver's open_existing (be_driver version 3) never
 * creates a database, and a pool opens every connection after its first
 * with it, so a vanished database is reported (BE_E_DB_UNREACHABLE)
 * instead of replaced by an empty file; a replacement file is used as
 * it is.
 *
 * be_conn_begin() with BE_TX_IMMEDIATE runs BEGIN IMMEDIATE: writers take
 * the write lock up front, so two writers never deadlock on a lock upgrade
 * (which SQLite reports as SQLITE_BUSY without waiting).
 *
 * Rollback when no transaction is open (SQLite may already have rolled back
 * after an I/O or disk-full error) is a successful no-op.
 */
#ifndef BACKEND_SQLITE_H
#define BACKEND_SQLITE_H

#include <backend/common.h>
#include <backend/error.h>
#include <backend/storage.h>

BE_BEGIN_DECLS

/** @name journal_mode values */
/** @{ */
#define BE_SQLITE_JOURNAL_DEFAULT -1 /**< leave SQLite's default (DELETE) */
#define BE_SQLITE_JOURNAL_WAL 0      /**< write-ahead log (default here) */
#define BE_SQLITE_JOURNAL_DELETE 1   /**< PRAGMA journal_mode=DELETE */
#define BE_SQLITE_JOURNAL_TRUNCATE 2 /**< PRAGMA journal_mode=TRUNCATE */
#define BE_SQLITE_JOURNAL_PERSIST 3  /**< PRAGMA journal_mode=PERSIST */
#define BE_SQLITE_JOURNAL_MEMORY 4   /**< PRAGMA journal_mode=MEMORY */
#define BE_SQLITE_JOURNAL_OFF 5      /**< PRAGMA journal_mode=OFF (no rollback journal) */
/** @} */

/** @name synchronous values (SQLite's own numbers) */
/** @{ */
#define BE_SQLITE_SYNC_DEFAULT -1 /**< leave SQLite's default (FULL) */
#define BE_SQLITE_SYNC_OFF 0      /**< PRAGMA synchronous=OFF: no syncs */
#define BE_SQLITE_SYNC_NORMAL 1   /**< default here: safe with WAL, fast */
#define BE_SQLITE_SYNC_FULL 2     /**< PRAGMA synchronous=FULL */
#define BE_SQLITE_SYNC_EXTRA 3    /**< PRAGMA synchronous=EXTRA */
/** @} */

/** The be_sqlite_options layout this header describes (its version field). */
#define BE_SQLITE_OPTIONS_VERSION 1

/**
 * How the SQLite driver opens connections. Fill with BE_SQLITE_OPTIONS_INIT
 * or be_sqlite_options_init(), then change what you need. Only grows at
 * the end; `version` says which fields the caller knows.
 */
typedef struct be_sqlite_options {
  uint32_t version;        /**< BE_SQLITE_OPTIONS_VERSION */
  int32_t journal_mode;    /**< BE_SQLITE_JOURNAL_*, default WAL */
  int32_t synchronous;     /**< BE_SQLITE_SYNC_*, default NORMAL */
  int32_t foreign_keys;    /**< 1 (default) = PRAGMA foreign_keys=ON, 0 = off */
  int32_t busy_timeout_ms; /**< wait this long on a lock before BE_E_BUSY; default 5000 */
  /** sqlite3_open_v2 flags; 0 (default) = READWRITE|CREATE. URI is always
   * added, and NOMUTEX unless the flags hold SQLITE_OPEN_FULLMUTEX. */
  int32_t open_flags;
  /* Tuning pragmas, run on every connection after the ones above. Each
   * one's "leave" value runs no pragma, so SQLite's own default (or the
   * database file's setting) stays. */
  int64_t cache_size;         /**< PRAGMA cache_size: pages when positive, KiB when negative
                                   (-2000 is SQLite's default of 2 MB); 0 (default) = leave
                                   SQLite's default. |value| at most INT32_MAX */
  int64_t mmap_size;          /**< PRAGMA mmap_size in bytes (0 turns memory mapping off;
                                   SQLite caps it at its compile-time maximum); -1 (default)
                                   = leave SQLite's default */
  int32_t secure_delete;      /**< PRAGMA secure_delete: 0 off, 1 on (deleted content is
                                   overwritten with zeros), 2 FAST; -1 (default) = leave
                                   SQLite's default */
  int32_t temp_store;         /**< PRAGMA temp_store: 0 DEFAULT, 1 FILE, 2 MEMORY; -1
                                   (default) = leave SQLite's default */
  int32_t wal_autocheckpoint; /**< PRAGMA wal_autocheckpoint in pages (0 turns automatic
                                   checkpoints off); -1 (default) = leave SQLite's default
                                   (1000 pages) */
  int64_t journal_size_limit; /**< PRAGMA journal_size_limit in bytes: the WAL or rollback
                                   journal is truncated to this after a checkpoint or
                                   transaction; -1 (default) = leave SQLite's default (no
                                   limit) */
} be_sqlite_options;

/** Static initializer: WAL, synchronous NORMAL, foreign keys on, 5 s busy
 * timeout, default open flags, every tuning pragma left at SQLite's
 * default. */
#define BE_SQLITE_OPTIONS_INIT \
  { BE_SQLITE_OPTIONS_VERSION, BE_SQLITE_JOURNAL_WAL, BE_SQLITE_SYNC_NORMAL, 1, 5000, 0, 0, -1, -1, -1, -1, -1 }

/**
 * Fill *opts like BE_SQLITE_OPTIONS_INIT for the given version.
 * Thread-safety: safe.
 *
 * @param opts     the struct to fill; not NULL.
 * @param version  BE_SQLITE_OPTIONS_VERSION.
 * @return BE_OK, or BE_E_MISUSE (opts NULL, unknown version).
 */
BE_API int be_sqlite_options_init(be_sqlite_options *opts, uint32_t version);

/**
 * The SQLite driver with the default options (WAL, foreign keys on,
 * synchronous NORMAL, 5 s busy timeout). Thread-safety: safe.
 *
 * @return the driver table: borrowed, static, never NULL.
 */
BE_API const be_driver *be_sqlite_driver(void);

/**
 * A SQLite driver with the given options. Thread-safety: safe.
 *
 * @param out   receives the driver, the caller's: free it with
 *              be_sqlite_driver_free() after every connection opened
 *              through it is closed. Not NULL; set to NULL on failure.
 * @param opts  the options (copied), version set; NULL means the defaults.
 * @param err   receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (out NULL, unknown options version, a
 *         journal_mode or synchronous value out of range, negative busy
 *         timeout); BE_E_VALIDATION (a tuning pragma out of range, each
 *         named as a field error: "cache_size", "mmap_size",
 *         "secure_delete", "temp_store", "wal_autocheckpoint",
 *         "journal_size_limit"); BE_E_NOMEM.
 */
BE_API int be_sqlite_driver_new(be_driver **out, const be_sqlite_options *opts, be_error **err);

/**
 * Free a driver made by be_sqlite_driver_new().
 *
 * @param driver  a driver from be_sqlite_driver_new() (no other table), or
 *                NULL (a no-op); the static default driver is ignored.
 */
BE_API void be_sqlite_driver_free(be_driver *driver);

BE_END_DECLS

#endif /* BACKEND_SQLITE_H */
