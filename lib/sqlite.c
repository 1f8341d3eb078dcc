/* SPDX-License-Identifier: MIT */
/* The built-in SQLite driver: a be_driver over sqlite3 / sqlite3_stmt. */
#include <backend/sqlite.h>

#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "sqlite.h"
#include "storage.h"
#include "versioned.h"

/* The native connection: the sqlite3 handle plus statements for the
 * transaction verbs, prepared on first use so BEGIN/COMMIT cost a step,
 * not a parse, on the hot path. */
enum { TX_BEGIN_DEFERRED,
       TX_BEGIN_IMMEDIATE,
       TX_BEGIN_EXCLUSIVE,
       TX_COMMIT,
       TX_ROLLBACK,
       TX_N };
static const char *const tx_sql[TX_N] = {"BEGIN", "BEGIN IMMEDIATE", "BEGIN EXCLUSIVE", "COMMIT",
                                         "ROLLBACK"};

typedef struct sq_conn {
  sqlite3 *db;
  sqlite3_stmt *tx[TX_N];
} sq_conn;

typedef struct sq_driver {
  be_driver drv;
  be_sqlite_options opts;
} sq_driver;

/* ---- error translation ---- */

static int32_t map_code(int ext) {
  switch (ext & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return BE_E_BUSY;
    case SQLITE_NOMEM: return BE_E_NOMEM;
    case SQLITE_RANGE:
    case SQLITE_MISUSE: return BE_E_MISUSE;
    case SQLITE_CANTOPEN: return BE_E_DB_UNREACHABLE;
    case SQLITE_CONSTRAINT:
      switch (ext) {
        case SQLITE_CONSTRAINT_UNIQUE:
        case SQLITE_CONSTRAINT_PRIMARYKEY:
        case SQLITE_CONSTRAINT_ROWID: return BE_E_CONFLICT;
        case SQLITE_CONSTRAINT_NOTNULL:
        case SQLITE_CONSTRAINT_CHECK:
        case SQLITE_CONSTRAINT_FOREIGNKEY:
#ifdef SQLITE_CONSTRAINT_DATATYPE
        case SQLITE_CONSTRAINT_DATATYPE:
#endif
          return BE_E_VALIDATION;
        default: return BE_E_STORAGE;
      }
    default: return BE_E_STORAGE;
  }
}

/* Raise the be_error for SQLite result rc; the cause keeps SQLite's
 * extended code and message. */
static int sq_fail(be_error **err, sqlite3 *db, int rc, const char *what) {
  int ext = rc;
  if (db && (sqlite3_extended_errcode(db) & 0xff) == (rc & 0xff)) ext = sqlite3_extended_errcode(db);
  int32_t code = map_code(ext);
  if (err == NULL) return code;
  const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(ext);
  be_error *cause = NULL;
  if (be__error_wrap_raw(&cause, code, msg, msg ? strlen(msg) : 0, NULL) != BE_OK)
    return be__error_oom(err);
  be_error_set_driver_code(cause, ext);
  int rc2 = be__error_wrap(err, code, cause, "sqlite %s failed: %s", what, msg);
  be_error_set_driver_code(*err, ext);
  return rc2;
}

static int pick_journal(int32_t m, const char **out) {
  static const char *const names[] = {"WAL", "DELETE", "TRUNCATE", "PERSIST", "MEMORY", "OFF"};
  if (m == BE_SQLITE_JOURNAL_DEFAULT) {
    *out = NULL;
    return 1;
  }
  if (m < 0 || m > BE_SQLITE_JOURNAL_OFF) return 0;
  *out = names[m];
  return 1;
}

/* ---- connections ---- */

/* The tuning pragmas that are set (not at their "leave" value), one at a
 * time; *step names the one that failed. */
static int apply_tuning(sqlite3 *db, const be_sqlite_options *o, const char **step) {
  struct {
    const char *name;
    long long v;
    int set;
  } p[] = {
    {"cache_size", (long long)o->cache_size, o->cache_size != 0},
    {"mmap_size", (long long)o->mmap_size, o->mmap_size != -1},
    {"secure_delete", o->secure_delete, o->secure_delete != -1},
    {"temp_store", o->temp_store, o->temp_store != -1},
    {"wal_autocheckpoint", o->wal_autocheckpoint, o->wal_autocheckpoint != -1},
    {"journal_size_limit", (long long)o->journal_size_limit, o->journal_size_limit != -1},
  };
  char sql[96];
  for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) {
    if (!p[i].set) continue;
    /* SQLite reads secure_delete as a boolean but for the word FAST */
    if (i == 2 && p[i].v == 2) snprintf(sql, sizeof sql, "PRAGMA secure_delete=FAST");
    else snprintf(sql, sizeof sql, "PRAGMA %s=%lld", p[i].name, p[i].v);
    *step = p[i].name;
    /* these pragmas answer with a row; sqlite3_exec steps through it */
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

static int sq_open(void **out, const char *dsn, void *driver_data, be_error **err) {
  const be_sqlite_options *o = driver_data;
  *out = NULL;
  int flags = o->open_flags ? o->open_flags : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  flags |= SQLITE_OPEN_URI;
  if (!(flags & SQLITE_OPEN_FULLMUTEX)) flags |= SQLITE_OPEN_NOMUTEX;
  sq_conn *c = be__calloc(1, sizeof *c);
  if (c == NULL) return be__error_oom(err);
  int rc = sqlite3_open_v2(dsn, &c->db, flags, NULL);
  if (rc != SQLITE_OK) {
    int r = (rc & 0xff) == SQLITE_NOMEM
              ? be__error_oom(err)
              : sq_fail(err, c->db, rc, "open");
    if (r != BE_E_NOMEM && r != BE_E_DB_UNREACHABLE && err) {
      be_error *e = *err;
      r = be__error_wrap(err, BE_E_DB_UNREACHABLE, e, "%s", be_error_message(e));
    }
    sqlite3_close(c->db);
    be__free(c);
    return r == BE_E_NOMEM ? r : BE_E_DB_UNREACHABLE;
  }
  sqlite3_extended_result_codes(c->db, 1);
  sqlite3_busy_timeout(c->db, o->busy_timeout_ms);
  char sql[96];
  const char *journal = NULL;
  pick_journal(o->journal_mode, &journal);
  const char *step = "open";
  if (journal) {
    snprintf(sql, sizeof sql, "PRAGMA journal_mode=%s", journal);
    step = "PRAGMA journal_mode";
    rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
  }
  if (rc == SQLITE_OK && o->synchronous != BE_SQLITE_SYNC_DEFAULT) {
    snprintf(sql, sizeof sql, "PRAGMA synchronous=%d", (int)o->synchronous);
    step = "PRAGMA synchronous";
    rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
  }
  if (rc == SQLITE_OK) {
    step = "PRAGMA foreign_keys";
    rc = sqlite3_exec(c->db, o->foreign_keys ? "PRAGMA foreign_keys=ON" : "PRAGMA foreign_keys=OFF",
                      NULL, NULL, NULL);
  }
  if (rc == SQLITE_OK) rc = apply_tuning(c->db, o, &step);
  if (rc != SQLITE_OK) {
    int r = sq_fail(err, c->db, rc, step);
    sqlite3_close(c->db);
    be__free(c);
    return r;
  }
  *out = c;
  return BE_OK;
}

static void sq_close(void *conn) {
  sq_conn *c = conn;
  if (c == NULL) return;
  for (int i = 0; i < TX_N; i++) sqlite3_finalize(c->tx[i]);
  /* close_v2: statements a caller still holds keep the handle alive as a
   * zombie instead of failing the close */
  sqlite3_close_v2(c->db);
  be__free(c);
}

/* ---- statements ---- */

/* 1 when the rest of the SQL holds only whitespace, ';' and comments. */
static int only_trailing(const char *p, const char *end) {
  while (p < end && *p) {
    if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == ';') {
      p++;
    } else if (p[0] == '-' && p + 1 < end && p[1] == '-') {
      while (p < end && *p && *p != '\n') p++;
    } else if (p[0] == '/' && p + 1 < end && p[1] == '*') {
      p += 2;
      while (p + 1 < end && *p && !(p[0] == '*' && p[1] == '/')) p++;
      p = p + 2 <= end ? p + 2 : end;
    } else {
      return 0;
    }
  }
  return 1;
}

static int sq_prepare(void *conn, void **out, const char *sql, size_t len, be_error **err) {
  sq_conn *c = conn;
  *out = NULL;
  if (len >= INT_MAX) return be__error_set(err, BE_E_MISUSE, "SQL text too long");
  sqlite3_stmt *st = NULL;
  const char *tail = NULL;
  /* len + 1: the caller's text is NUL-terminated, which saves SQLite a copy */
  int rc = sqlite3_prepare_v3(c->db, sql, (int)len + 1, SQLITE_PREPARE_PERSISTENT, &st, &tail);
  if (rc != SQLITE_OK) return sq_fail(err, c->db, rc, "prepare");
  if (st == NULL) return be__error_set(err, BE_E_MISUSE, "SQL text holds no statement");
  if (tail && !only_trailing(tail, sql + len)) {
    sqlite3_finalize(st);
    return be__error_set(err, BE_E_MISUSE,
                         "SQL text holds more than one statement (use be_conn_exec for scripts)");
  }
  *out = st;
  return BE_OK;
}

#define ST(s) ((sqlite3_stmt *)(s))

static inline int bind_rc(void *stmt, int rc, be_error **err) {
  if (rc == SQLITE_OK) return BE_OK;
  if (rc == SQLITE_RANGE)
    return be__error_set(err, BE_E_MISUSE, "bind index out of range (the statement has %d parameters)",
                         sqlite3_bind_parameter_count(ST(stmt)));
  return sq_fail(err, sqlite3_db_handle(ST(stmt)), rc, "bind");
}

static int sq_bind_null(void *s, int32_t i, be_error **err) {
  return bind_rc(s, sqlite3_bind_null(ST(s), i), err);
}
static int sq_bind_int64(void *s, int32_t i, int64_t v, be_error **err) {
  return bind_rc(s, sqlite3_bind_int64(ST(s), i, v), err);
}
static int sq_bind_double(void *s, int32_t i, double v, be_error **err) {
  return bind_rc(s, sqlite3_bind_double(ST(s), i, v), err);
}
static int sq_bind_text(void *s, int32_t i, const char *v, size_t len, be_error **err) {
  return bind_rc(s, sqlite3_bind_text64(ST(s), i, v, len, SQLITE_TRANSIENT, SQLITE_UTF8), err);
}
static int sq_bind_blob(void *s, int32_t i, const void *v, size_t len, be_error **err) {
  /* SQLite binds NULL for a NULL pointer; an empty blob is a zeroblob */
  if (v == NULL) return bind_rc(s, sqlite3_bind_zeroblob(ST(s), i, 0), err);
  return bind_rc(s, sqlite3_bind_blob64(ST(s), i, v, len, SQLITE_TRANSIENT), err);
}

static int sq_step(void *s, be_error **err) {
  int rc = sqlite3_step(ST(s));
  if (rc == SQLITE_ROW) return BE_ROW;
  if (rc == SQLITE_DONE) return BE_DONE;
  return sq_fail(err, sqlite3_db_handle(ST(s)), rc, "step");
}

static int32_t sq_column_count(void *s) { return sqlite3_column_count(ST(s)); }
static const char *sq_column_name(void *s, int32_t col) { return sqlite3_column_name(ST(s), col); }

static int32_t sq_column_type(void *s, int32_t col) {
  switch (sqlite3_column_type(ST(s), col)) {
    case SQLITE_INTEGER: return BE_TYPE_INT;
    case SQLITE_FLOAT: return BE_TYPE_FLOAT;
    case SQLITE_TEXT: return BE_TYPE_TEXT;
    case SQLITE_BLOB: return BE_TYPE_BLOB;
    default: return BE_TYPE_NULL;
  }
}
static int64_t sq_column_int64(void *s, int32_t col) { return sqlite3_column_int64(ST(s), col); }
static double sq_column_double(void *s, int32_t col) { return sqlite3_column_double(ST(s), col); }
static const char *sq_column_text(void *s, int32_t col, size_t *len) {
  const char *t = (const char *)sqlite3_column_text(ST(s), col);
  *len = (size_t)sqlite3_column_bytes(ST(s), col);
  return t;
}
static const void *sq_column_blob(void *s, int32_t col, size_t *len) {
  const void *b = sqlite3_column_blob(ST(s), col);
  *len = (size_t)sqlite3_column_bytes(ST(s), col);
  return b;
}

static int sq_reset(void *s, be_error **err) {
  (void)err;
  /* sqlite3_reset repeats the last step's error; the reset itself worked */
  sqlite3_reset(ST(s));
  sqlite3_clear_bindings(ST(s));
  return BE_OK;
}

static void sq_finalize(void *s) { sqlite3_finalize(ST(s)); }

static int sq_exec(void *conn, const char *sql, be_error **err) {
  sq_conn *c = conn;
  int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? BE_OK : sq_fail(err, c->db, rc, "exec");
}

/* ---- transactions ---- */

static int run_tx(sq_conn *c, int which, be_error **err) {
  if (c->tx[which] == NULL) {
    int rc = sqlite3_prepare_v3(c->db, tx_sql[which], -1, SQLITE_PREPARE_PERSISTENT, &c->tx[which],
                                NULL);
    if (rc != SQLITE_OK) return sq_fail(err, c->db, rc, tx_sql[which]);
  }
  int rc = sqlite3_step(c->tx[which]);
  int r = rc == SQLITE_DONE ? BE_OK : sq_fail(err, c->db, rc, tx_sql[which]);
  sqlite3_reset(c->tx[which]);
  return r;
}

static int sq_begin(void *conn, int32_t mode, be_error **err) {
  int which = mode == BE_TX_IMMEDIATE   ? TX_BEGIN_IMMEDIATE
              : mode == BE_TX_EXCLUSIVE ? TX_BEGIN_EXCLUSIVE
                                        : TX_BEGIN_DEFERRED;
  return run_tx(conn, which, err);
}

static int sq_commit(void *conn, be_error **err) { return run_tx(conn, TX_COMMIT, err); }

static int sq_rollback(void *conn, be_error **err) {
  sq_conn *c = conn;
  if (sqlite3_get_autocommit(c->db)) return BE_OK; /* nothing open (maybe SQLite rolled back) */
  return run_tx(c, TX_ROLLBACK, err);
}

static int sp_exec(sq_conn *c, const char *verb, const char *name, be_error **err) {
  if (!be__ident_valid(name))
    return be__error_field(err, "savepoint", "savepoint name must match [A-Za-z_][A-Za-z0-9_]{0,63}");
  char sql[128];
  snprintf(sql, sizeof sql, "%s %s", verb, name);
  int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? BE_OK : sq_fail(err, c->db, rc, verb);
}

static int sq_savepoint(void *conn, const char *name, be_error **err) {
  return sp_exec(conn, "SAVEPOINT", name, err);
}
static int sq_release(void *conn, const char *name, be_error **err) {
  return sp_exec(conn, "RELEASE SAVEPOINT", name, err);
}
static int sq_rollback_to(void *conn, const char *name, be_error **err) {
  return sp_exec(conn, "ROLLBACK TO SAVEPOINT", name, err);
}

static int64_t sq_last_insert_id(void *conn) {
  return sqlite3_last_insert_rowid(((sq_conn *)conn)->db);
}

static int64_t sq_changes(void *conn) {
#if SQLITE_VERSION_NUMBER >= 3037000
  return sqlite3_changes64(((sq_conn *)conn)->db);
#else
  return sqlite3_changes(((sq_conn *)conn)->db);
#endif
}

/* An in-process database has no socket to lose; a handle that exists is
 * alive. */
static int sq_ping(void *conn, be_error **err) {
  if (conn == NULL || ((sq_conn *)conn)->db == NULL)
    return be__error_set(err, BE_E_CONN_LOST, "sqlite connection is closed");
  return BE_OK;
}

static int32_t sq_bind_limit(void *conn) {
  return sqlite3_limit(((sq_conn *)conn)->db, SQLITE_LIMIT_VARIABLE_NUMBER, -1);
}

static int32_t sq_in_transaction(void *conn) {
  return !sqlite3_get_autocommit(((sq_conn *)conn)->db);
}

/* ---- scripts and the catalog ---- */

/* SQLite's lexer decides: at each ';' the text up to it is a complete
 * statement when sqlite3_complete() says so, which keeps a ';' inside a
 * string, a comment or a trigger body (BEGIN ... END;) inside the
 * statement. The prefix is copied to be NUL-terminated, growing from one
 * candidate ';' to the next. */
static int sq_next_statement(void *conn, size_t *out_len, const char *sql, size_t len,
                             be_error **err) {
  (void)conn;
  *out_len = len;
  char *buf = NULL;
  size_t have = 0, cap = 0;
  for (size_t i = 0; i < len; i++) {
    if (sql[i] != ';') continue;
    if (i + 2 > cap) {
      size_t ncap = cap ? cap : 256;
      while (ncap < i + 2) ncap *= 2;
      char *grown = be__realloc(buf, ncap);
      if (grown == NULL) {
        be__free(buf);
        return be__error_oom(err);
      }
      buf = grown;
      cap = ncap;
    }
    memcpy(buf + have, sql + have, i + 1 - have);
    have = i + 1;
    buf[have] = '\0';
    if (sqlite3_complete(buf)) {
      *out_len = have;
      break;
    }
  }
  be__free(buf);
  return BE_OK;
}

static int sq_table_exists(void *conn, int32_t *out, const char *name, be_error **err) {
  sq_conn *c = conn;
  *out = 0;
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(c->db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                              -1, &st, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK) rc = sqlite3_step(st);
  *out = rc == SQLITE_ROW;
  int r = rc == SQLITE_ROW || rc == SQLITE_DONE ? BE_OK : sq_fail(err, c->db, rc, "table_exists");
  sqlite3_finalize(st);
  return r;
}

/* ---- driver tables ---- */

static int32_t detect_features(void) {
  int v = sqlite3_libversion_number();
  int32_t f = BE_FEATURE_SAVEPOINTS;
  if (v >= 3035000) f |= BE_FEATURE_RETURNING;
  int json = v >= 3038000 ? !sqlite3_compileoption_used("OMIT_JSON")
                          : sqlite3_compileoption_used("ENABLE_JSON1");
  if (json) f |= BE_FEATURE_JSON_EACH;
  return f;
}

static const be_driver template = {
  .version = BE_DRIVER_VERSION,
  .name = "sqlite",
  .driver_data = NULL,
  .placeholder_style = BE_PLACEHOLDER_QMARK,
  .features = 0,
  .open = sq_open,
  .close = sq_close,
  .prepare = sq_prepare,
  .bind_null = sq_bind_null,
  .bind_int64 = sq_bind_int64,
  .bind_double = sq_bind_double,
  .bind_text = sq_bind_text,
  .bind_blob = sq_bind_blob,
  .step = sq_step,
  .column_count = sq_column_count,
  .column_name = sq_column_name,
  .column_type = sq_column_type,
  .column_int64 = sq_column_int64,
  .column_double = sq_column_double,
  .column_text = sq_column_text,
  .column_blob = sq_column_blob,
  .reset = sq_reset,
  .finalize = sq_finalize,
  .exec = sq_exec,
  .begin = sq_begin,
  .commit = sq_commit,
  .rollback = sq_rollback,
  .savepoint = sq_savepoint,
  .release = sq_release,
  .rollback_to = sq_rollback_to,
  .last_insert_id = sq_last_insert_id,
  .changes = sq_changes,
  .ping = sq_ping,
  .bind_limit = sq_bind_limit,
  .in_transaction = sq_in_transaction,
  .next_statement = sq_next_statement,
  .table_exists = sq_table_exists,
};

sqlite3 *be__sqlite_db(be_conn *conn) {
  const be_driver *d = be_conn_driver(conn);
  if (d == NULL || d->open != sq_open) return NULL;
  return ((sq_conn *)be__conn_native(conn))->db;
}

static sq_driver default_driver;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static const be_sqlite_options defaults = BE_SQLITE_OPTIONS_INIT;

/* A driver table for options o: the template, pointing at its own copy. */
static void driver_init(sq_driver *d, const be_sqlite_options *o) {
  d->drv = template;
  d->opts = *o;
  d->drv.driver_data = &d->opts;
  d->drv.features = detect_features();
}

static void default_init(void) { driver_init(&default_driver, &defaults); }

const be_driver *be_sqlite_driver(void) {
  pthread_once(&default_once, default_init);
  return &default_driver.drv;
}

int be_sqlite_options_init(be_sqlite_options *o, uint32_t version) {
  return be__versioned_init(o, sizeof *o, &defaults, version, BE_SQLITE_OPTIONS_VERSION);
}

/* Each tuning pragma in range, else BE_E_VALIDATION naming it. */
static int check_tuning(const be_sqlite_options *o, be_error **err) {
  if (o->cache_size < -INT32_MAX || o->cache_size > INT32_MAX)
    return be__error_field(err, "cache_size", "must be within -2147483647..2147483647 (0 = leave)");
  if (o->mmap_size < -1) return be__error_field(err, "mmap_size", "must be -1 (leave) or >= 0 bytes");
  if (o->secure_delete < -1 || o->secure_delete > 2)
    return be__error_field(err, "secure_delete", "must be -1 (leave), 0, 1 or 2 (FAST)");
  if (o->temp_store < -1 || o->temp_store > 2)
    return be__error_field(err, "temp_store", "must be -1 (leave), 0, 1 (FILE) or 2 (MEMORY)");
  if (o->wal_autocheckpoint < -1)
    return be__error_field(err, "wal_autocheckpoint", "must be -1 (leave) or >= 0 pages");
  if (o->journal_size_limit < -1)
    return be__error_field(err, "journal_size_limit", "must be -1 (leave) or >= 0 bytes");
  return BE_OK;
}

int be_sqlite_driver_new(be_driver **out, const be_sqlite_options *opts, be_error **err) {
  if (out == NULL) return be__error_set(err, BE_E_MISUSE, "be_sqlite_driver_new: out is NULL");
  *out = NULL;
  be_sqlite_options o;
  int rc = be__versioned_read(&o, sizeof o, opts, &defaults, BE_SQLITE_OPTIONS_VERSION,
                              "be_sqlite_options", err);
  if (rc != BE_OK) return rc;
  const char *j;
  if (!pick_journal(o.journal_mode, &j))
    return be__error_set(err, BE_E_MISUSE, "unknown journal_mode %d", (int)o.journal_mode);
  if (o.synchronous < BE_SQLITE_SYNC_DEFAULT || o.synchronous > BE_SQLITE_SYNC_EXTRA)
    return be__error_set(err, BE_E_MISUSE, "unknown synchronous %d", (int)o.synchronous);
  if (o.busy_timeout_ms < 0)
    return be__error_set(err, BE_E_MISUSE, "busy_timeout_ms must be >= 0");
  rc = check_tuning(&o, err);
  if (rc != BE_OK) return rc;
  sq_driver *d = be__calloc(1, sizeof *d);
  if (d == NULL) return be__error_oom(err);
  driver_init(d, &o);
  *out = &d->drv;
  return BE_OK;
}

void be_sqlite_driver_free(be_driver *driver) {
  if (driver == NULL || driver == &default_driver.drv) return;
  be__free((sq_driver *)driver); /* drv is the first member */
}
