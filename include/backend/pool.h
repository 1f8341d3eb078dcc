/* SPDX-License-Identifier: MIT */
/**
 * @file backend/pool.h
 * @brief A connection pool that never hangs: min/max, FIFO waiters with a
 *        bounded wait, validation and replacement of broken connections,
 *        lifetime and idle timers, usage and leak alerts, and stats.
 *
 * A be_pool hands out be_conn connections (backend/storage.h) opened
 * through one driver and DSN. Every way an acquire can fail has its own
 * code, so a caller (and its HTTP layer) can tell them apart:
 *
 * - BE_E_POOL_EXHAUSTED (503): no connection became free within the
 *   acquire timeout; the message names in use / idle / waiting / max and
 *   where the longest-held connection was acquired.
 * - BE_E_DB_UNREACHABLE (503): a connection was needed and the driver could
 *   not open one; the cause is the driver's error. A locked database is
 *   BE_E_BUSY (503) instead, and a file that is not a usable database
 *   (not a database, encrypted, corrupt) BE_E_STORAGE (500, not
 *   retryable).
 * - BE_E_POOL_CLOSED (503): the pool is closed (waiters are woken with it).
 * - BE_E_POOL_DEADLOCK (500): the calling thread already holds a connection
 *   of this pool and the pool is full, so waiting could wait forever (the
 *   classic "query outside the transaction" self-deadlock); it fails at
 *   once instead of after the timeout.
 *
 * Waiters are served in strict FIFO order, each sleeping on its own
 * condition variable (no spinning); a released connection is handed
 * straight to the longest waiter. Idle connections are reused most
 * recently used first, and pinged before hand-out only when they sat idle
 * longer than the validation window (so the hot path pays no ping); a dead
 * one is closed and replaced without the caller seeing it.
 *
 * A connection a thread releases is kept for that thread (parked), and
 * the thread's next acquire takes it back without the pool's lock when it
 * comes back within validation_window_ms and before the connection's
 * lifetime ends. Any other caller takes parked connections when nothing
 * else is idle, and maintenance and close take them back. Parking stops
 * while the usage alert may be due: once the connections out (in use, or
 * parked for a thread) reach the alert level, usage_alert_percent of
 * max_conns rounded up, every acquire and release takes the lock, so the
 * alert counts the connections really in use, until a release brings the
 * connections out down to the re-arm level (see be_pool_usage_fn). Every
 * thread that has released a connection keeps one out, busy or not, so a
 * pool used by T threads, each holding one connection at a time, stays off
 * that path when max_conns > T * 100 / usage_alert_percent (11 for 8
 * threads at the default 80 %); or raise usage_alert_percent (0 turns the
 * alert off, and with it this). Two threads getting rows by id through a
 * pool of max_conns 2 ran 4-11 % slower than through a pool of 3.
 *
 * The pool's first connection is opened with the driver's open, which may
 * create the database; every later one with its open_existing (driver
 * version 3) when it has one, which never does: a database deleted or
 * moved while the pool runs fails the open (BE_E_DB_UNREACHABLE) instead
 * of being replaced by an empty one.
 *
 * Timers (max lifetime, idle reaping, refill to min, leak reports) run
 * when the host calls be_pool_maintain(), or from an optional background
 * thread. All times come from the pool's be_clock, so tests use a fake
 * clock; acquire timeouts also always hold in real time.
 *
 * Query statistics: every connection the pool opens has the pool's
 * be_query_stats (backend/query_stats.h) attached right after it opens, so
 * be_pool_query_stats() counts every statement and error run on the pool's
 * connections, with a latency histogram (p50/p95/p99). The pool also keeps
 * a slow-query log (backend/slowlog.h), on by default at 100 ms, read with
 * be_pool_slowlog(). Statements are timed with the pool's clock (also the
 * slow-query log's wall clock). Both come off a connection when it closes.
 *
 * Connection setup: every connection the pool opens (for min_conns, for a
 * caller, by maintenance, or to replace a broken or expired one) first
 * runs connection_init_sql, then the connection_init callback, before
 * anyone uses it, like HikariCP's connectionInitSql or knex's afterCreate.
 * When either fails the connection is closed, never handed out, and the
 * call that needed it fails with the setup error's own code (e.g.
 * BE_E_STORAGE for bad SQL; not BE_E_DB_UNREACHABLE), the message saying
 * "connection setup failed" and the setup error as its cause; the failure
 * counts in be_pool_stats.open_failures. Setup runs with the pool's query
 * stats and slow-query log already attached.
 *
 * Threads: a be_pool is safe to share between any number of threads. A
 * connection it hands out belongs to one thread at a time (it may move to
 * another thread; the acquiring thread counts as its holder for the
 * self-deadlock check until it is released).
 */
#ifndef BACKEND_POOL_H
#define BACKEND_POOL_H

#include <backend/common.h>
#include <backend/error.h>
#include <backend/clock.h>
#include <backend/incident.h>
#include <backend/query_stats.h>
#include <backend/slowlog.h>
#include <backend/stmt_stats.h>
#include <backend/storage.h>
#include <backend/tx.h>

BE_BEGIN_DECLS

/** A connection pool (opaque); safe to share between threads. */
typedef struct be_pool be_pool;

/**
 * Called (outside the pool's lock, on the acquiring thread) when the number
 * of connections in use reaches the alert threshold. It fires once per
 * crossing, and is re-armed only when usage falls clearly below the
 * threshold: to the threshold minus a fifth of max_conns (at least one
 * connection; 0 when that would be below 0) or lower. The alert (its WARN
 * log line, this callback and an incident) is also rate-limited to one per
 * usage_alert_interval_ms; crossings in between are counted and the next
 * alert's log line and incident report them ("suppressed").
 * It receives the pool, the connections in use, max_conns, the callers
 * waiting and usage_alert_user_data.
 * It may call be_pool_stats_get(); it must not acquire from this pool.
 */
typedef void (*be_pool_usage_fn)(be_pool *pool, int32_t in_use, int32_t max_conns,
                                 int32_t waiting, void *user_data);

/**
 * Called (outside the pool's lock, on the thread running maintenance) once
 * for each connection held longer than the leak threshold. file and line
 * are where it was acquired (file NULL and line 0 when unknown); file is
 * borrowed for the call. held_ns is how long it has been held so far.
 */
typedef void (*be_pool_leak_fn)(be_pool *pool, const char *file, int32_t line, int64_t held_ns,
                                void *user_data);

/** The be_pool_options layout this header describes (its version field):
 * version 2 adds stmt_stats, incidents and usage_alert_interval_ms;
 * version 1 structs are still accepted (those fields at their defaults). */
#define BE_POOL_OPTIONS_VERSION 2

/**
 * Pool configuration. Start from BE_POOL_OPTIONS_INIT or
 * be_pool_options_init(), which hold the defaults in brackets, then set
 * what you need. Times are milliseconds. Only ever grows at the end.
 */
typedef struct be_pool_options {
  uint32_t version;                 /**< BE_POOL_OPTIONS_VERSION */
  const be_driver *driver;          /**< must outlive the pool [NULL: by dsn, be_postgres_driver() for postgres:// and postgresql://, else be_sqlite_driver()] */
  const char *dsn;                  /**< required; copied (":memory:", a path, a URI) */
  const char *name;                 /**< for log lines and errors; copied ["pool"] */
  int32_t min_conns;                /**< opened up front and kept open [2] */
  int32_t max_conns;                /**< hard upper bound, >= 1 [10] */
  int64_t acquire_timeout_ms;       /**< longest wait for a free connection; 0 = never wait [30000] */
  int64_t validation_window_ms;     /**< ping an idle connection before hand-out only when it
                                       sat idle longer than this; 0 = always, -1 = never [500] */
  int64_t max_lifetime_ms;          /**< close connections older than this; 0 = no limit [1800000] */
  int32_t lifetime_jitter_permille; /**< each connection's lifetime is cut by a random
                                       0..this/1000 of it, so they do not all expire
                                       together [25 = 2.5 %] */
  int32_t usage_alert_percent;      /**< alert when in_use reaches this % of max_conns
                                       (rounded up); 0 = off [80] */
  int64_t idle_timeout_ms;          /**< close connections idle longer than this, down to
                                       min_conns; 0 = never [600000] */
  int64_t leak_threshold_ms;        /**< report connections held longer than this; 0 = off [60000] */
  be_pool_usage_fn on_usage_alert;  /**< [NULL: a WARN log line only] */
  void *usage_alert_user_data;      /**< passed as is to on_usage_alert [NULL] */
  be_pool_leak_fn on_leak;          /**< [NULL: a WARN log line only] */
  void *leak_user_data;             /**< passed as is to on_leak [NULL] */
  be_clock *clock;                  /**< borrowed, must outlive the pool [system clock] */
  int32_t background_thread;        /**< 1 = run be_pool_maintain() from an internal thread [0] */
  int32_t deadlock_detection;       /**< 1 = fail fast with BE_E_POOL_DEADLOCK [1] */
  int64_t maintenance_interval_ms;  /**< background thread period [1000] */
  int64_t slow_query_threshold_ms;  /**< the pool's own slow-query log records statements
                                       taking longer than this (timed on `clock`);
                                       0 = any that takes time, -1 = no log [100] */
  int32_t slow_query_capacity;      /**< entries the pool's own log keeps, 1..65536 [128] */
  be_slowlog *slowlog;              /**< record into this log instead of one of the pool's
                                       own (the two options above are then ignored);
                                       borrowed, must outlive the pool [NULL] */
  /* Per-connection setup ("Connection setup" above). */
  const char *connection_init_sql; /**< SQL run on every new connection before its first
                                          use (may hold several statements, e.g. pragmas or
                                          CREATE TEMP ...); copied [NULL: none] */
  be_conn_init_fn connection_init; /**< called on every new connection after
                                          connection_init_sql [NULL: none] */
  void *connection_init_user_data; /**< passed as is to connection_init [NULL] */
  /* version 2: operations (backend/stmt_stats.h, backend/incident.h) */
  be_stmt_stats *stmt_stats;       /**< attached to every connection the pool opens;
                                       borrowed, must outlive the pool [NULL: none] */
  be_incident_log *incidents;      /**< records exhaustion timeouts, self-deadlocks,
                                        failed opens and usage alerts; borrowed, must
                                        outlive the pool [NULL: none] */
  int64_t usage_alert_interval_ms; /**< at most one usage alert (log line, callback,
                                       incident) per this many ms; crossings in between
                                       are counted and reported with the next one; 0 =
                                       no rate limit [10000] */
} be_pool_options;

/** The defaults, as an initializer. */
#define BE_POOL_OPTIONS_INIT                                                                   \
  {                                                                                            \
    BE_POOL_OPTIONS_VERSION, NULL, NULL, NULL, 2, 10, 30000, 500, 1800000, 25, 80, 600000,     \
      60000, NULL, NULL, NULL, NULL, NULL, 0, 1, 1000, 100, 128, NULL, NULL, NULL, NULL, NULL, \
      NULL, 10000                                                                              \
  }

/**
 * Fill *opts with the defaults of the given options version.
 * Thread-safety: safe.
 *
 * @param opts     the struct to fill; not NULL.
 * @param version  1 or 2 (BE_POOL_OPTIONS_VERSION): the layout of *opts;
 *                 only that version's fields are written.
 * @return BE_OK, or BE_E_MISUSE (opts NULL, unknown version).
 */
BE_API int be_pool_options_init(be_pool_options *opts, uint32_t version);

/** The be_pool_stats layout this header describes (its version field). */
#define BE_POOL_STATS_VERSION 1

/**
 * A snapshot of a pool. Set `version` (BE_POOL_STATS_INIT) before calling
 * be_pool_stats_get(); only the fields of that version are written. Only
 * ever grows at the end. Wait times cover every acquire that finished
 * (those that did not wait count as 0 ns); acquires that timed out or were
 * woken by close count with the time they waited.
 */
typedef struct be_pool_stats {
  uint32_t version;         /**< in: BE_POOL_STATS_VERSION */
  int32_t total;            /**< open connections, including ones being opened */
  int32_t in_use;           /**< handed out to callers */
  int32_t idle;             /**< open and free */
  int32_t waiting;          /**< callers queued for a connection now */
  int32_t opening;          /**< connections being opened now (for a caller or to reach min) */
  int32_t min_conns;        /**< the pool's min_conns option */
  int32_t max_conns;        /**< the pool's max_conns option */
  int64_t acquires;         /**< successful acquires */
  int64_t waits;            /**< acquires that had to queue (any outcome) */
  int64_t handoffs;         /**< connections passed straight from a release to a waiter */
  int64_t timeouts;         /**< BE_E_POOL_EXHAUSTED results */
  int64_t deadlocks;        /**< BE_E_POOL_DEADLOCK results */
  int64_t open_failures;    /**< failed opens (BE_E_DB_UNREACHABLE) */
  int64_t creates;          /**< connections opened */
  int64_t destroys;         /**< connections closed (any reason) */
  int64_t validations;      /**< pings before hand-out */
  int64_t broken;           /**< closed because broken (failed ping or connection lost) */
  int64_t expired;          /**< closed at max lifetime */
  int64_t idle_closed;      /**< closed by idle reaping */
  int64_t rollbacks;        /**< released with an open transaction, rolled back */
  int64_t leaks;            /**< leak reports */
  int64_t wait_p50_ns;      /**< acquire wait time quantiles */
  int64_t wait_p95_ns;      /**< 95th percentile of acquire wait times */
  int64_t wait_p99_ns;      /**< 99th percentile of acquire wait times */
  int64_t wait_max_ns;      /**< longest acquire wait */
  int64_t oldest_waiter_ns; /**< how long the head of the queue has waited; 0 if none */
  int64_t longest_held_ns;  /**< how long the oldest checked-out connection is held */
} be_pool_stats;

/** Static initializer: the current version, every field 0. */
#define BE_POOL_STATS_INIT \
  { BE_POOL_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }
/**
 * Set *out to BE_POOL_STATS_INIT (for bindings that cannot use the macro).
 * Thread-safety: safe.
 *
 * @param out      the struct to fill; not NULL.
 * @param version  BE_POOL_STATS_VERSION.
 * @return BE_OK, or BE_E_MISUSE (out NULL, or version is not
 *         BE_POOL_STATS_VERSION).
 */
BE_API int be_pool_stats_init(be_pool_stats *out, uint32_t version);

/**
 * Create a pool and open min_conns connections. Thread-safety: safe.
 *
 * @param out   receives the pool, the caller's (be_pool_free()); not NULL.
 *              Set to NULL on failure.
 * @param opts  the options, version set; not NULL. Read during the call
 *              (the strings are copied); driver, clock and slowlog are
 *              borrowed and must outlive the pool.
 * @param err   receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (out or opts NULL, unknown options version,
 *         dsn NULL); BE_E_UNSUPPORTED (driver NULL and a PostgreSQL dsn
 *         in a build without libpq); BE_E_VALIDATION (a bad value; the field
 *         error names it: max_conns < 1, min_conns negative or > max_conns,
 *         negative times, validation_window_ms < -1, jitter outside
 *         0..1000, percent outside 0..100, maintenance_interval_ms <= 0
 *         with a background thread, slow_query_threshold_ms < -1,
 *         slow_query_capacity out of range); BE_E_DB_UNREACHABLE (the first
 *         connections could not be opened; the cause is the driver's
 *         error); BE_E_BUSY (the database is locked); BE_E_STORAGE (not
 *         a usable database); BE_E_NOMEM.
 */
BE_API int be_pool_new(be_pool **out, const be_pool_options *opts, be_error **err);

/**
 * Take a connection: the most recently used idle one (pinged first if it
 * sat idle longer than the validation window; replaced if dead), else a new
 * one while below max_conns, else wait in FIFO order up to the acquire
 * timeout. This is the ABI entry point; C callers use the be_pool_acquire()
 * macro, which passes __FILE__ and __LINE__.
 *
 * The common path (an idle connection, nobody waiting) allocates nothing
 * and makes no system call. An open is not bounded by acquire_timeout_ms:
 * that is the driver's connect timeout. Thread-safety: safe.
 *
 * @param out   receives the connection, the caller's until
 *              be_pool_release() (do not close it); not NULL. Set to NULL
 *              on failure.
 * @param pool  the pool; not NULL.
 * @param file  the call site for leak reports, borrowed until the
 *              release: a string literal such as __FILE__, or NULL.
 * @param line  the call site's line, or 0.
 * @param err   receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (pool or out NULL); BE_E_POOL_EXHAUSTED,
 *         BE_E_DB_UNREACHABLE, BE_E_POOL_CLOSED, BE_E_POOL_DEADLOCK (see
 *         the file description); BE_E_BUSY, BE_E_STORAGE and BE_E_NOMEM
 *         (only when a new connection had to be opened).
 */
BE_API int be_pool_acquire_at(be_conn **out, be_pool *pool, const char *file, int32_t line,
                              be_error **err);

/**
 * be_pool_acquire_at() with an unknown call site. C code gets the macro
 * below instead, which records __FILE__:__LINE__; bindings call this
 * function (or the _at one) directly.
 *
 * @param out   as for be_pool_acquire_at().
 * @param pool  as for be_pool_acquire_at().
 * @param err   receives the error on failure; may be NULL.
 * @return as be_pool_acquire_at().
 */
BE_API int be_pool_acquire(be_conn **out, be_pool *pool, be_error **err);
/** C callers' be_pool_acquire(): be_pool_acquire_at() with __FILE__ and
 * __LINE__ as the call site. */
#define be_pool_acquire(out, pool, err) be_pool_acquire_at((out), (pool), __FILE__, __LINE__, (err))

/**
 * Give a connection back. Statements not finalized are reset (and
 * logged). An open transaction is rolled back first (and logged; the
 * connection is closed if the rollback fails); a broken connection
 * (be_conn_is_broken()), one past its max lifetime, or any connection of a
 * closed pool is closed instead of kept. Otherwise it goes to the longest
 * waiter, or to the idle list. Thread-safety: safe; any thread may release.
 *
 * @param pool  the pool it came from; NULL is a no-op.
 * @param conn  a connection acquired from pool; NULL is a no-op, a
 *              connection of another pool is logged and ignored. The caller
 *              must not use it afterwards.
 */
BE_API void be_pool_release(be_pool *pool, be_conn *conn);

/**
 * Run the pool's timers once: close idle connections past max lifetime or
 * idle longer than idle_timeout_ms (never below min_conns), reopen up to
 * min_conns, report connections held longer than the leak threshold, and
 * time out waiters whose deadline passed on the pool's clock. Call it
 * every second or so unless background_thread is on. Thread-safety: safe;
 * a call while another thread is maintaining returns BE_OK at once.
 *
 * @param pool  the pool; not NULL.
 * @param err   receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (pool NULL); BE_E_POOL_CLOSED;
 *         BE_E_DB_UNREACHABLE, BE_E_BUSY or BE_E_STORAGE (a connection
 *         needed to reach min_conns could not be opened; the other work
 *         was still done).
 */
BE_API int be_pool_maintain(be_pool *pool, be_error **err);

/**
 * Fill *out with a consistent snapshot. Thread-safety: safe.
 *
 * @param out   the snapshot to fill; its version set by the caller
 *              (BE_POOL_STATS_INIT); not NULL.
 * @param pool  the pool (also after be_pool_close()); not NULL.
 * @param err   receives the error on failure; may be NULL.
 * @return BE_OK, or BE_E_MISUSE (NULL, unknown stats version).
 */
BE_API int be_pool_stats_get(be_pool_stats *out, be_pool *pool, be_error **err);

/**
 * Close the pool: waiters wake with BE_E_POOL_CLOSED, later acquires fail
 * with it, idle connections are closed now and checked-out ones when they
 * are released; the background thread is stopped. The pool stays valid
 * for release and stats until be_pool_free(). Does not wait for
 * checked-out connections. Thread-safety: safe, except from the pool's
 * own callbacks.
 *
 * @param pool  the pool; NULL and a second call are no-ops.
 */
BE_API void be_pool_close(be_pool *pool);

/**
 * Close the pool (as be_pool_close()) and release it. Connections still
 * checked out keep it alive until they are released: their
 * be_pool_release() closes them and the last one frees the pool.
 *
 * @param pool  the pool, or NULL (a no-op). No other call may use the
 *              handle afterwards, except be_pool_release() of the
 *              connections still checked out.
 */
BE_API void be_pool_free(be_pool *pool);

/**
 * Run fn in a transaction on a connection of the pool: acquire,
 * be_tx_run(conn, mode, fn, user_data) (backend/tx.h: BEGIN, callback,
 * COMMIT; rolled back on any error; busy/serialization failures retried
 * with the default policy), release. If BEGIN fails with
 * BE_E_CONN_LOST before the callback ran (a connection that died while
 * idle within the validation window), the dead connection is dropped and
 * the whole call is tried once more on a fresh one; once the callback has
 * run, nothing is retried on a lost connection (the commit may have
 * happened). Leak reports name "be_pool_tx_run" as the acquisition site.
 *
 * Do not call it from inside another transaction callback of the same pool
 * to nest: that takes a second connection (use be_tx_run() on the
 * callback's conn, which becomes a savepoint). When the pool is full this
 * fails fast with BE_E_POOL_DEADLOCK.
 *
 * Thread-safety: safe.
 *
 * @param pool       the pool; not NULL.
 * @param mode       BE_TX_DEFERRED, BE_TX_IMMEDIATE or BE_TX_EXCLUSIVE.
 * @param fn         the work, run with the acquired connection; not NULL.
 *                   May run several times (retries).
 * @param user_data  passed as is to fn; may be NULL.
 * @param err        receives the error on failure; may be NULL.
 * @return BE_OK when committed; BE_E_MISUSE (pool or fn NULL, unknown
 *         mode); the acquire errors (BE_E_POOL_EXHAUSTED,
 *         BE_E_DB_UNREACHABLE, BE_E_POOL_CLOSED, BE_E_POOL_DEADLOCK); and
 *         be_tx_run()'s (the callback's own error, BUSY after the retries,
 *         ...).
 */
BE_API int be_pool_tx_run(be_pool *pool, int32_t mode, be_tx_fn fn, void *user_data,
                          be_error **err);

/**
 * be_pool_tx_run() with transaction options.
 *
 * @param pool       as for be_pool_tx_run().
 * @param opts       the options, version set; NULL means
 *                   BE_TX_OPTIONS_INIT.
 * @param fn         as for be_pool_tx_run().
 * @param user_data  as for be_pool_tx_run().
 * @param err        receives the error on failure; may be NULL.
 * @return as be_pool_tx_run(), and be_tx_run_ex()'s option checks
 *         (BE_E_MISUSE).
 */
BE_API int be_pool_tx_run_ex(be_pool *pool, const be_tx_options *opts, be_tx_fn fn,
                             void *user_data, be_error **err);

/**
 * The pool's query statistics: every statement finished on any of its
 * connections (a step to the end or to an error, a statement reset or
 * finalized early, a be_conn_exec()), with errors, rows and the latency
 * histogram; read it with the be_query_stats_* getters or
 * be_query_stats_to_json(). Thread-safety: safe; reading is lock-free
 * while other threads record.
 *
 * @param pool  the pool, or NULL.
 * @return the statistics, borrowed: owned by the pool, valid until
 *         be_pool_free() (also after be_pool_close()); NULL only for a
 *         NULL pool.
 */
BE_API const be_query_stats *be_pool_query_stats(const be_pool *pool);

/**
 * The slow-query log the pool's connections record into: the pool's own
 * (by default, statements over 100 ms), or the one given in
 * be_pool_options.slowlog. Read it with be_slowlog_get(),
 * be_slowlog_to_json(), ...; it may be cleared (be_slowlog_clear()) but
 * not freed. Thread-safety: safe.
 *
 * @param pool  the pool, or NULL.
 * @return the log, borrowed (the pool's own lives until be_pool_free());
 *         NULL when slow_query_threshold_ms is -1 (and no log was given) or
 *         for a NULL pool.
 */
BE_API be_slowlog *be_pool_slowlog(const be_pool *pool);

BE_END_DECLS

#endif /* BACKEND_POOL_H */
