/* SPDX-License-Identifier: MIT */
/* Internal hooks on be_conn for the layers above storage (pool, tx, query).
 * None of this is exported; the pool and the query layer link against the
 * same library and call these directly. */
#ifndef BE_LIB_STORAGE_H
#define BE_LIB_STORAGE_H

#include <backend/clock.h>
#include <backend/storage.h>

/* Default bound of the per-connection prepared-statement cache. */
#define BE__STMT_CACHE_DEFAULT 64

/* A slot a prepared statement keeps for one observer's own use across
 * runs: an observer keyed by statement text stores what it looked the
 * text up to, and finds it again in one load. The first observer that
 * finds owner NULL may claim it (owner = itself); storage clears owner
 * whenever the connection's observers change, so a claim never outlives
 * the observer's attachment. Used only on the connection's thread. */
typedef struct be__run_memo {
  const void *owner;
  void *p[2];
} be__run_memo;

/* One finished run of a statement, as its observers see it. */
typedef struct be__stmt_run {
  const char *sql;      /* the statement's text, borrowed for the call */
  uint64_t sql_hash;    /* be__sql_hash(sql) */
  int64_t duration_ns;  /* from the first step to the end (0 when weight is 0) */
  int64_t rows;         /* BE_ROW results */
  int32_t rc;           /* BE_OK, or the negative code the run ended with */
  uint32_t weight;      /* runs duration_ns stands for; 0: this run was not timed */
  uint32_t stmt_weight; /* runs of this statement on this connection it stands for */
  be__run_memo *memo;   /* the statement's memo (NULL: a be_conn_exec() run) */
} be__stmt_run;

/*
 * Statement observers. A connection carries any number of them (the query
 * layer attaches query stats, a slow-query log and N+1 scopes to the same
 * connection); each is identified by its (fn, ud) pair.
 *
 * fn is called once each time a statement finishes running: when step
 * returns BE_DONE (rc = BE_OK) or an error (rc = that negative code), when
 * a statement that returned rows is reset or finalized before BE_DONE
 * (rc = BE_OK), and after each be_conn_exec(). run->sql_hash was computed
 * once when the statement was prepared (an observer keyed by statement
 * text needs not hash it on every run); run->duration_ns is measured with
 * the connection's clock (be__conn_set_clock). Timing is sampled: with the
 * system clock, fast runs are timed about one in BE__RUN_SAMPLE_EVERY per
 * connection, at random gaps (a clock read costs as much as a tenth of a
 * short run), and a statement's first run on a connection always; a
 * timed run carries weight = itself plus the untimed runs of any
 * statement before it since the last timed one (at most
 * BE__RUN_SAMPLE_MAX), an untimed run weight 0 (count it, do not time
 * it); stmt_weight counts this statement's own untimed runs instead, for
 * an observer keeping figures per statement. Untimed runs counted before
 * an observer that reads weights is attached are dropped (the next run is
 * timed), so a weight never stands for runs an observer did not see; an
 * observer leaving drops nothing. be_conn_exec() runs and a statement's
 * first run are always timed, stand for themselves alone (weight 1) and
 * are never the sample, and a sample that proves slow (as a coarse run
 * would) stands for itself too and leaves the pending weight to the next
 * run: the weight of fast runs is never carried by a run chosen for
 * being slow or first.
 * A run is always timed, weight 1, when the previous timed run took
 * BE__RUN_TIME_ALL_NS or more, when an untimed run turns out to have
 * taken two ticks of the coarse clock or more (its duration then reads
 * long by the coarse clock's lag at its start, a tick or more: never short,
 * so a slow-query log misses nothing), when the clock is not the system clock, and when an
 * observer needs the exact duration of every run longer than less than
 * ten coarse ticks (be__conn_observer_add_ex): so every run an observer
 * with a threshold of 40 ms or more must see is timed. run is the same for every
 * observer of one run (one clock pair, one struct: each observer costs an
 * indirect call with two arguments). Observers run in the order they were
 * added, on the thread using the connection, inside the be_stmt_* call;
 * they must not use the connection, nor add or remove observers on it.
 */
typedef void (*be__stmt_observer)(void *ud, const be__stmt_run *run);

/* A 64-bit hash of NUL-terminated SQL text, never 0 (the one the
 * statement cache and the observers key statements by). */
uint64_t be__sql_hash(const char *sql);

/*
 * Called from be_conn_close() for each observer still attached, before
 * the connection goes away; the connection has already dropped every
 * observer (removing one here is a harmless no-op), so the owner only has
 * to forget conn. It must not run statements on conn.
 */
typedef void (*be__conn_close_fn)(void *ud, be_conn *conn);

/*
 * Attach an observer (on_close may be NULL). Adding a (fn, ud) pair that
 * is already attached is a no-op. With no observer, stepping reads no
 * clock; the list is the connection's, so call this from the thread using
 * the connection (or while nobody uses it). Statements already running keep
 * the timing they started with.
 * Errors: BE_E_MISUSE (conn or fn NULL), BE_E_NOMEM.
 */
int be__conn_observer_add(be_conn *conn, be__stmt_observer fn, be__conn_close_fn on_close,
                          void *ud, be_error **err);

/* be__conn_observer_add_ex() flags: BE__OBS_TIMED_ONLY, call the
 * observer for timed runs only (weight > 0): one that counts runs through
 * be__conn_run_counts(), or cares about durations alone, costs an
 * untimed run nothing. */
#define BE__OBS_TIMED_ONLY 1u
/* ... BE__OBS_NO_WEIGHT, the observer never reads weight or stmt_weight
 * (it counts what it is told of, or looks at durations alone): attaching
 * it keeps the weight the untimed runs before it left pending for the
 * others (a scope attached per request would drop it every time). */
#define BE__OBS_NO_WEIGHT 2u

/* be__conn_observer_add() for an observer that needs the exact duration
 * only of runs longer than exact_over_ns (a slow-query threshold;
 * INT64_MAX: none, it can live with sampled timing), with flags.
 * be__conn_observer_add is this with 0 and 0: every run timed, every
 * run seen. */
int be__conn_observer_add_ex(be_conn *conn, be__stmt_observer fn, be__conn_close_fn on_close,
                             void *ud, int64_t exact_over_ns, uint32_t flags, be_error **err);

/* The runs observers were told of on a connection (each run that started
 * and ended with an observer attached, timed or not), with their BE_ROW
 * results and the runs that ended in an error; they only grow. Written by
 * the thread using the connection, without a locked instruction; read
 * from any thread while the connection is open (a reader may trail a run
 * in progress). An observer attached with BE__OBS_TIMED_ONLY counts
 * exactly from the difference between two readings. */
typedef struct be__run_counts {
  uint64_t runs, rows, errors;
} be__run_counts;
void be__conn_run_counts(const be_conn *conn, be__run_counts *out);

/* Statement timing (see be__stmt_run): a timed run stands for at most this
 * many runs; a timed run this long makes the next runs all timed. Under
 * valgrind every run takes longer than that, so callgrind profiles of
 * the sampled path build with -DBE__RUN_TIME_ALL_NS=INT64_MAX
 * (tests/bench/hotpath_callgrind.sh says how). */
#define BE__RUN_SAMPLE_EVERY 16
#define BE__RUN_SAMPLE_MAX (BE__RUN_SAMPLE_EVERY * 3 / 2) /* the largest weight */
#ifndef BE__RUN_TIME_ALL_NS
#  define BE__RUN_TIME_ALL_NS (20 * 1000)
#endif

/* Detach (fn, ud); returns 1 when it was attached, 0 otherwise. Same
 * thread rule as be__conn_observer_add(). No callback runs. */
int be__conn_observer_remove(be_conn *conn, be__stmt_observer fn, void *ud);

/* Observers attached now. */
int32_t be__conn_observer_count(const be_conn *conn);

/* Detach every observer from index keep on (the ones added last), calling
 * each one's on_close as be_conn_close() would; returns how many went.
 * The pool uses it on release to drop what a holder attached (a scope it
 * did not end), so it cannot observe the next holder's statements. Same
 * thread rule as be__conn_observer_add(). */
int32_t be__conn_observers_truncate(be_conn *conn, int32_t keep);

/* The clock used to time statements for the observer; NULL = system clock.
 * Borrowed: it must outlive the connection or be replaced first. */
void be__conn_set_clock(be_conn *conn, const be_clock *clock);

/* An opaque pointer the pool hangs its bookkeeping on; NULL initially. */
void be__conn_set_pool_data(be_conn *conn, void *data);
void *be__conn_pool_data(const be_conn *conn);

/* Mark a connection broken (e.g. the pool saw it fail validation). */
void be__conn_mark_broken(be_conn *conn);

/* The driver's native connection handle (borrowed). For the built-in
 * SQLite driver, lib/sqlite.h has be__sqlite_db() for the sqlite3 *. */
void *be__conn_native(be_conn *conn);

/* Number of statements handed out by be_conn_prepare and not yet given
 * back with be_stmt_finalize (the pool warns about leaks on release). */
int64_t be__conn_open_stmts(const be_conn *conn);

/* Nonzero when a holder left anything on conn that a pool must clear (or
 * close the connection for) before the next holder: statements handed
 * out and not finalized, observers changed since be__conn_observers_gen()
 * read obs_gen, an open transaction (asked of the driver), or a broken
 * connection. One call for a release's common case, which has none of
 * them. */
int be__conn_leftovers(const be_conn *conn, uint64_t obs_gen);

/* A number that changes whenever an observer is added to or removed from
 * conn, or its clock is set. */
uint64_t be__conn_observers_gen(const be_conn *conn);

/* The ud of the observer at index i (0 <= i < be__conn_observer_count()):
 * which object it is. */
void *be__conn_observer_ud(const be_conn *conn, int32_t i);

/* Reset (not finalize) every statement still handed out, ending any run
 * in progress: a pending SQLite statement keeps its read snapshot, so the
 * next holder of a pooled connection would read stale data. The holder
 * still owns them (be_stmt_finalize). Returns how many were reset. */
int64_t be__conn_reset_open_stmts(be_conn *conn);

/* Nesting depth of be_tx_run on this connection (tx.c keeps it). */
int32_t be__conn_tx_depth(const be_conn *conn);
void be__conn_set_tx_depth(be_conn *conn, int32_t depth);
/* The open transaction holds work that could not be undone (a savepoint's
 * ROLLBACK TO failed): be_conn_commit() refuses it and rolls it all back.
 * Cleared by the next BEGIN or a full rollback. */
void be__conn_doom_tx(be_conn *conn);

/* 1 when name is a valid savepoint/identifier: [A-Za-z_][A-Za-z0-9_]{0,63}. */
int be__ident_valid(const char *name);

/* The SQL text of a statement (borrowed, valid until finalize). */
const char *be__stmt_sql(const be_stmt *stmt);

/*
 * The operations version 2 of be_driver added: NULL when the table is
 * version 1 (it ends before them, so they are never read) or leaves them
 * out.
 */
typedef int (*be__next_statement_fn)(void *conn, size_t *out_stmt_len, const char *sql,
                                     size_t sql_len, be_error **err);
typedef int (*be__table_exists_fn)(void *conn, int32_t *out_exists, const char *name,
                                   be_error **err);
/* The optional operation version 3 added; NULL likewise. */
typedef int (*be__bind_text_fn)(void *stmt, int32_t index, const char *value, size_t len,
                                be_error **err);
typedef int (*be__status_fn)(void *conn, int32_t what, int64_t *out_value,
                             int64_t *out_highwater, char *text, size_t text_cap, be_error **err);
/* be_driver.status (version 4); NULL when absent. */
be__status_fn be__driver_status(const be_driver *driver);
/* One BE_DRIVER_STATUS_* figure of conn's driver: *out_value and
 * *out_highwater 0 and text "" first. Errors: BE_E_UNSUPPORTED (no
 * status function, or the figure is unknown to it), the driver's. */
int be__conn_status(be_conn *conn, int32_t what, int64_t *out_value, int64_t *out_highwater,
                    char *text, size_t text_cap, be_error **err);
be__next_statement_fn be__driver_next_statement(const be_driver *driver);

/* 1 when the driver has version 5's listen, notify and wait_notification. */
int be__driver_notifies(const be_driver *driver);
/* The driver's listen / notify / wait_notification on conn (a driver that
 * has none: BE_E_UNSUPPORTED). BE_E_CONN_LOST marks conn broken.
 * channel must be a valid identifier (be__ident_valid): else
 * BE_E_VALIDATION. */
int be__conn_listen(be_conn *conn, const char *channel, be_error **err);
int be__conn_notify(be_conn *conn, const char *channel, const char *payload, size_t payload_len,
                    be_error **err);
int be__conn_wait_notification(be_conn *conn, int32_t *out_got, char *payload, size_t payload_cap,
                               size_t *out_len, int32_t wake_fd, int64_t timeout_ms,
                               be_error **err);
be__bind_text_fn be__driver_bind_text_static(const be_driver *driver);

/* A value of the current row: type BE_TYPE_*, and i (INT), d (FLOAT) or
 * p and len (TEXT, NUL-terminated; BLOB), borrowed like the column
 * accessors' results. */
typedef struct be__value {
  int32_t type;
  int64_t i;
  double d;
  const void *p;
  size_t len;
} be__value;

/* Column col (a valid index of the current row) into *v, in one driver
 * call when the driver has column_value, else column_type and then the
 * typed accessor. */
void be__stmt_column_value(be_stmt *stmt, int32_t col, be__value *v);

/* The driver's column_value, as be_driver declares it. */
typedef int32_t (*be__column_value_fn)(void *stmt, int32_t column, int64_t *out_int,
                                       double *out_double, const void **out_ptr, size_t *out_len);

/* One value of a row as a result set keeps it: type BE_TYPE_*, then i
 * (INT), d (FLOAT), or p and len (TEXT, NUL-terminated; BLOB). */
typedef struct be__cell {
  int32_t type;
  size_t len;
  union {
    int64_t i;
    double d;
    const void *p;
  } u;
} be__cell;

/* Columns [0, ncols) of the current row into out[0..ncols), the bytes of
 * text and blob values borrowed like column_text's (ncols at most the
 * row's column count). */
typedef void (*be__row_fn)(void *stmt, int32_t ncols, be__cell *out);

/* The built-in SQLite driver's whole-row read when driver is that driver
 * (or a copy of its table), else NULL (sqlite.c). A driver table has no
 * entry for it: others are read a value at a time through column_value. */
be__row_fn be__sqlite_row_fn(const be_driver *driver);

/* Make a statement ready to run again keeping its bindings (unlike
 * be_driver.reset, which clears them). */
typedef void (*be__reset_keep_fn)(void *stmt);

/* The built-in SQLite driver's reset that keeps bindings when driver's
 * reset is that driver's (the driver itself or a copy of its table), else
 * NULL (sqlite.c). Storage returns a cached statement with it and binds
 * NULL, before the next use's first step, to each parameter that use left
 * unbound: clearing every binding on every return costs more than that. */
be__reset_keep_fn be__sqlite_reset_keep_fn(const be_driver *driver);

/* 1 when every column accessor of driver is the built-in SQLite driver's
 * (the driver itself or a copy of its table), else 0 (sqlite.c). SQLite
 * checks column indexes itself (one past the count reads NULL), so
 * storage keeps a statement's column count from its prepare instead of
 * asking at every run's first row, and asks again only when an index is
 * past it or a whole row is read: a re-prepare after a schema change may
 * have changed it. */
int be__sqlite_checks_columns(const be_driver *driver);

/* What reading many rows of one statement needs, taken once after a run's
 * first BE_ROW (it holds until the statement is reset): the driver's
 * native statement, its whole-row read (NULL unless it has one), its
 * column_value (NULL when the driver has none: read through
 * be__stmt_column_value then) and column_int64, and the column count of
 * the run's rows (indexes below it need no check). */
typedef struct be__row_reader {
  void *native;
  be__row_fn row;
  be__column_value_fn value;
  int64_t (*int64)(void *stmt, int32_t column);
  int32_t ncols;
} be__row_reader;
void be__stmt_row_reader(be_stmt *stmt, be__row_reader *out);
be__table_exists_fn be__driver_table_exists(const be_driver *driver);
/* Version 3's open_existing: NULL for older tables or when left out. */
typedef int (*be__open_fn)(void **out_conn, const char *dsn, void *driver_data, be_error **err);
be__open_fn be__driver_open_existing(const be_driver *driver);

/* be_conn_open() through the driver's open_existing (its open when it has
 * none): a database that does not exist is not created. Errors as
 * be_conn_open(). */
int be__conn_open_existing(be_conn **out, const be_driver *driver, const char *dsn,
                           be_error **err);

/* 1 when the connection's driver splits scripts into statements
 * (be_driver.next_statement). */
int be__conn_splits_scripts(const be_conn *conn);

/* The length of the first complete statement of sql (sql_len bytes), by
 * the driver's next_statement. Errors: BE_E_UNSUPPORTED when the driver
 * has none (be__conn_splits_scripts() says so beforehand), the driver's. */
int be__conn_next_statement(be_conn *conn, size_t *out_stmt_len, const char *sql, size_t sql_len,
                            be_error **err);

/* *out_exists = 1 when table name exists: by the driver's table_exists,
 * else by the standard information_schema.tables. Errors:
 * BE_E_VALIDATION (name not an identifier), the driver's. */
int be__conn_table_exists(be_conn *conn, int32_t *out_exists, const char *name, be_error **err);

#endif
