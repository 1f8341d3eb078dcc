/* SPDX-License-Identifier: MIT */
/**
 * @file backend/app.h
 * @brief The app object: one call wires database, pool, cache, migrations
 *        and the services (user, auth, permission, audit).
 *
 * The services are the be_user_*, be_auth_*, be_perm_* and be_audit_*
 * function families; each takes the app as its first argument. One app is
 * shared by any number of threads.
 *
 * Tables. The library keeps its data in tables of the app's database
 * whose names all start with be_app_options.table_prefix ("be_" unless
 * set): be_users, be_sessions, be_password_resets, be_roles,
 * be_role_permissions, be_user_roles, be_auth_epoch, be_audit_log,
 * be_audit_key, be_password_hash_params, and its migration record
 * be_schema_migrations; their indexes and triggers carry the prefix too.
 * It creates, reads and writes no other object (SQLite's own
 * sqlite_sequence aside, where its AUTOINCREMENT counters sit under their
 * prefixed table names; and what host_migrations do), so a host's own
 * tables (users, sessions, schema_migrations, ...) may share the file,
 * and two apps with different prefixes may share one file without seeing
 * each other's data. The host's migrations (host_migrations) are recorded
 * in the table its be_migrator names (be_migrator_set_table(); by default
 * schema_migrations), never in the library's record. The prefix is part
 * of where the data is: open an existing database with the prefix it was
 * created with.
 */
#ifndef BACKEND_APP_H
#define BACKEND_APP_H

#include <backend/common.h>
#include <backend/error.h>
#include <backend/clock.h>
#include <backend/storage.h>

BE_BEGIN_DECLS

/** The app: database, pool, cache and services (opaque, thread-safe). */
typedef struct be_app be_app;
/* The mailer (backend/mailer.h), migrator (backend/migrate.h), pool
 * (backend/pool.h) and cache (backend/cache.h) are named by their struct
 * tags here: C99 forbids repeating their typedefs. */
struct be_mailer;
struct be_migrator;
struct be_pool;
struct be_cache;

/** Host migration versions must be at or above this; lower ones are libbackend's
 * (be_app_new() refuses a host migrator holding one: field "host_migrations"). */
#define BE_APP_HOST_MIGRATION_MIN 1000

/** Longest be_app_options.table_prefix, in bytes: with it, every name the
 * library gives a table, index or trigger stays within 63 bytes
 * (PostgreSQL's limit for an identifier). */
#define BE_APP_TABLE_PREFIX_MAX 32

/** The be_app_options layout this header describes (its version field). */
#define BE_APP_OPTIONS_VERSION 1

/**
 * App configuration. Zero / NULL fields mean the default in brackets.
 * Times are milliseconds. Only ever grows at the end.
 */
typedef struct be_app_options {
  uint32_t version;                    /**< BE_APP_OPTIONS_VERSION */
  const char *database;                /**< DSN for the driver, copied ["backend.db"; ":memory:" works] */
  const be_driver *driver;             /**< [the built-in SQLite driver] */
  int32_t pool_min;                    /**< [2] */
  int32_t pool_max;                    /**< [10] */
  int64_t acquire_timeout_ms;          /**< [30000] */
  int64_t cache_max_entries;           /**< [100000] */
  int64_t cache_max_bytes;             /**< [64 MiB] */
  int64_t user_cache_ttl_ms;           /**< profile cache TTL, key user:{id} [300000] */
  uint64_t pwhash_opslimit;            /**< argon2id t [crypto_pwhash_OPSLIMIT_INTERACTIVE] */
  uint64_t pwhash_memlimit;            /**< argon2id m in bytes [crypto_pwhash_MEMLIMIT_INTERACTIVE] */
  int32_t insecure_test_hashing;       /**< 1 allows parameters below OWASP's minimum (tests only) [0] */
  int32_t password_min_length;         /**< in characters, 12..256 [12] */
  int32_t max_concurrent_hashes;       /**< argon2id runs at once; more wait up to hash_wait_ms [4] */
  int64_t session_idle_ms;             /**< [30 min] */
  int64_t session_absolute_ms;         /**< [12 h] */
  int32_t throttle_after;              /**< consecutive failures before backoff [5] */
  int32_t lockout_after;               /**< consecutive failures before lockout [10] */
  int64_t lockout_ms;                  /**< lockout duration [15 min] */
  int64_t reset_token_ttl_ms;          /**< password reset token lifetime [1 h] */
  be_clock *clock;                     /**< borrowed; must outlive the app [system clock] */
  const struct be_mailer *mailer;      /**< borrowed; password reset mail [none: reset fails with BE_E_UNSUPPORTED] */
  struct be_migrator *host_migrations; /**< borrowed; versions >= BE_APP_HOST_MIGRATION_MIN; applied after libbackend's, recorded in the migrator's own table (be_migrator_set_table()) [none] */
  /* The audit chain's key (backend/audit.h "Keyed chain"). */
  const uint8_t *audit_key; /**< secret keying the audit chain, kept outside the database; copied by be_app_new() [NULL: unkeyed] */
  size_t audit_key_len;     /**< bytes of audit_key, 32..64 (BE_AUDIT_KEY_MIN_BYTES..BE_AUDIT_KEY_MAX_BYTES) [0] */
  int32_t audit_key_adopt;  /**< 1: key a log that already holds unkeyed rows, from its next row on [0: refuse] */
  /* Password hashing: the queue for hash slots, and the pepper with its
   * rotation (backend/auth.h, "Pepper"). be_app_new() copies the peppers;
   * no pointer to them is kept. */
  int64_t hash_wait_ms;                   /**< longest wait for a hash slot (FIFO), then 503; 1..60000 [1000] */
  const uint8_t *pepper;                  /**< secret key of BE_AUTH_PEPPER_MIN_BYTES..MAX_BYTES that keys every new password hash; keep it outside the database [none] */
  size_t pepper_len;                      /**< bytes of pepper [0] */
  int32_t pepper_id;                      /**< 1..INT32_MAX, stored with each hash the pepper keys; required with a pepper [0: none] */
  const uint8_t *const *previous_peppers; /**< retired peppers, still accepted to verify (that login rehashes under pepper) [none] */
  const size_t *previous_pepper_lens;     /**< their byte lengths */
  const int32_t *previous_pepper_ids;     /**< their ids (as stored), distinct, not pepper_id */
  int32_t previous_pepper_count;          /**< entries of the three arrays, 0..BE_AUTH_PREVIOUS_PEPPERS_MAX [0] */
  /* Where the library's tables live (see "Tables" above). */
  const char *table_prefix; /**< prefix of every table, index and trigger the library makes, and of its migration record; an ASCII letter or '_', then letters, digits or '_', 1..BE_APP_TABLE_PREFIX_MAX bytes, not starting with sqlite_ in any case (SQLite reserves those names); copied ["be_"] */
  /* Host knobs: setup of every pooled connection (backend/pool.h
   * "Connection setup"; SQLite pragmas such as cache_size belong in the
   * driver: be_sqlite_driver_new()), and the cache's layout
   * (backend/cache.h). */
  int32_t cache_lru_mode;          /**< the cache's recency policy: BE_CACHE_LRU_DEFAULT (0), BE_CACHE_LRU_EXACT (1) or BE_CACHE_LRU_APPROX (2) [0: approximate] */
  int32_t cache_shard_count;       /**< the cache's shards, 1..1024, rounded up to a power of two [0: 16] */
  const char *connection_init_sql; /**< SQL run on every new pooled connection before its first use (not on the connection that applies the migrations before the pool opens); copied [NULL: none] */
  be_conn_init_fn connection_init; /**< called on every new pooled connection after connection_init_sql [NULL: none] */
  void *connection_init_user_data; /**< passed as is to connection_init [NULL] */
  /* Operations: metrics, statement statistics, incidents and the status
   * targets (backend/metrics.h, backend/stmt_stats.h, backend/status.h). */
  int32_t disable_metrics;     /**< 1: service calls record no metrics (no clock reads) [0] */
  int32_t statement_stats_max; /**< distinct statements tracked, 1..100000 [200] */
  int32_t incident_capacity;   /**< incidents kept, 1..65536 [256] */
  int64_t target_api_p95_ms;   /**< status target: service calls' p95 below this [200] */
  int64_t target_db_p95_ms;    /**< status target: statements' p95 below this [100] */
  double target_error_rate;    /**< status target: server errors / calls below this, 0 < x <= 1 [0.001] */
} be_app_options;

/** Static initializer: the current version, every other field zero/NULL
 * (the defaults). */
#define BE_APP_OPTIONS_INIT                                                                                  \
  { BE_APP_OPTIONS_VERSION, NULL, NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, \
    NULL, 0, 0, 0, NULL, 0, 0, NULL, NULL, NULL, 0, NULL, 0, 0, NULL, NULL, NULL, 0, 0, 0, 0, 0, 0.0 }

/**
 * Fill *opts like BE_APP_OPTIONS_INIT. Thread-safety: safe.
 *
 * @param opts     the struct to fill; not NULL.
 * @param version  BE_APP_OPTIONS_VERSION.
 * @return BE_OK, or BE_E_MISUSE (opts NULL, bad version).
 */
BE_API int be_app_options_init(be_app_options *opts, uint32_t version);

/**
 * Open the database, create the pool and the cache, apply libbackend's
 * migrations and then the host's. With the SQLite driver, ":memory:" is
 * one private in-memory database shared by the app's connections.
 *
 * An open that fails changes nothing in the database: every option is
 * checked first; then one connection, which leaves the file's journal
 * mode alone, applies libbackend's migrations, the host's and the audit
 * key check as one transaction; only once that committed does the pool
 * open, and its connections set the driver's journal mode (WAL by
 * default). A database file that does not exist is created (as the
 * driver's open flags allow) while be_app_new() runs; connections the
 * pool opens later never create it (backend/pool.h).
 * Thread-safety: safe.
 *
 * @param out   receives the app, the caller's (be_app_free()); not NULL.
 *              Set to NULL on failure.
 * @param opts  the options, version set; NULL means all defaults. Read
 *              during the call (database, audit_key, table_prefix and
 *              connection_init_sql are copied; driver, clock, mailer,
 *              host_migrations and connection_init_user_data are borrowed
 *              and must outlive the app).
 * @param err   receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (out NULL, bad options version);
 *         BE_E_VALIDATION (options out of range, each named as a field
 *         error, before anything is opened: field "table_prefix" for a
 *         prefix that is not an identifier or starts with sqlite_;
 *         field "audit_key" when the
 *         key does not fit the database's audit log, see
 *         backend/audit.h "Keyed chain");
 *         BE_E_DB_UNREACHABLE (the database cannot be opened: missing
 *         directory, permissions, a read-only file or directory; the
 *         detail names the path); BE_E_BUSY (another program holds a
 *         lock on it, in either journal mode); BE_E_STORAGE (the file is
 *         not a database, or is encrypted, truncated or damaged: not
 *         retryable); migration errors; BE_E_NOMEM; BE_E_INTERNAL
 *         (libsodium failed to start).
 */
BE_API int be_app_new(be_app **out, const be_app_options *opts, be_error **err);

/**
 * Close the pool and release everything.
 *
 * @param app  the app, or NULL (a no-op). No other thread may be using it.
 */
BE_API void be_app_free(be_app *app);

/**
 * The app's connection pool (backend/pool.h), for the host's own queries.
 *
 * @param app  the app, or NULL.
 * @return the pool, borrowed, valid as long as the app; NULL for NULL.
 */
BE_API struct be_pool *be_app_pool(be_app *app);
/**
 * The app's cache (backend/cache.h); the user service keeps profiles
 * under the "user:" prefix.
 *
 * @param app  the app, or NULL.
 * @return the cache, borrowed, valid as long as the app; NULL for NULL.
 */
BE_API struct be_cache *be_app_cache(be_app *app);
/**
 * The clock the app's services read.
 *
 * @param app  the app, or NULL.
 * @return the clock given in be_app_options.clock or the system clock,
 *         borrowed; NULL for NULL.
 */
BE_API be_clock *be_app_clock(be_app *app);

BE_END_DECLS

#endif /* BACKEND_APP_H */
