/* SPDX-License-Identifier: MIT */
/* The built-in SQLite driver: a be_driver over sqlite3 / sqlite3_stmt. */
#include <backend/sqlite.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"
#include "sqlite.h"
#include "storage.h"
#include "utf8.h"
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

typedef struct sq_config sq_config;
typedef struct sq_driver sq_driver;

/* ---- error translation ---- */

static int32_t map_code(int ext) {
  switch (ext & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return BE_E_BUSY;
    case SQLITE_NOMEM: return BE_E_NOMEM;
    case SQLITE_RANGE:
    case SQLITE_MISUSE: return BE_E_MISUSE;
    case SQLITE_CANTOPEN: return BE_E_DB_UNREACHABLE;
    case SQLITE_READONLY: return ext == SQLITE_READONLY_DBMOVED ? BE_E_CONN_LOST : BE_E_STORAGE;
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

/* The library's own words for an extended result code: what reaches a
 * client's `detail`. SQLite's message (which may quote SQL, table and
 * column names) stays in the cause. */
static const char *constraint_sentence(int ext) {
  switch (ext) {
    case SQLITE_CONSTRAINT_UNIQUE: return "a unique constraint was violated";
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_ROWID: return "a primary key constraint was violated";
    case SQLITE_CONSTRAINT_NOTNULL: return "a NOT NULL constraint was violated";
    case SQLITE_CONSTRAINT_CHECK: return "a CHECK constraint was violated";
    case SQLITE_CONSTRAINT_FOREIGNKEY: return "a foreign key constraint was violated";
    default: return "a constraint was violated";
  }
}

static const char *sentence(int ext) {
  static const char *const primary[] = {
    [SQLITE_ERROR] = "the database refused the SQL statement",
    [SQLITE_INTERNAL] = "the database hit an internal error",
    [SQLITE_PERM] = "the database denied access",
    [SQLITE_ABORT] = "the statement was aborted",
    [SQLITE_BUSY] = "another connection holds a lock on the database",
    [SQLITE_LOCKED] = "a table is locked by another statement",
    [SQLITE_NOMEM] = "the database ran out of memory",
    [SQLITE_READONLY] = "the database is read-only",
    [SQLITE_INTERRUPT] = "the statement was interrupted",
    [SQLITE_IOERR] = "the database hit an I/O error",
    [SQLITE_CORRUPT] = "the database file is corrupt",
    [SQLITE_FULL] = "the disk or the database is full",
    [SQLITE_CANTOPEN] = "the database file could not be opened",
    [SQLITE_PROTOCOL] = "the database's locking protocol failed",
    [SQLITE_SCHEMA] = "the database schema changed",
    [SQLITE_TOOBIG] = "a text or blob is too big",
    [SQLITE_MISMATCH] = "a value has the wrong type",
    [SQLITE_MISUSE] = "the database library was misused",
    [SQLITE_NOLFS] = "the database is too large for this system",
    [SQLITE_AUTH] = "the statement was not authorized",
    [SQLITE_RANGE] = "a parameter index is out of range",
    [SQLITE_NOTADB] = "the file is not an SQLite database, or it is encrypted",
  };
  if (ext == SQLITE_READONLY_DBMOVED)
    return "the database file was deleted, renamed or replaced while open";
  if (ext == SQLITE_READONLY_DIRECTORY)
    return "the database's directory is read-only (no journal or WAL file can be made there)";
  int p = ext & 0xff;
  if (p == SQLITE_CONSTRAINT) return constraint_sentence(ext);
  if (p > 0 && p < (int)(sizeof primary / sizeof primary[0]) && primary[p]) return primary[p];
  return "the database failed";
}

/* The extended result code behind result rc on db. */
static int extended(sqlite3 *db, int rc) {
  if (db && (sqlite3_extended_errcode(db) & 0xff) == (rc & 0xff)) return sqlite3_extended_errcode(db);
  return rc;
}

/* The cause of every SQLite error: code and message as SQLite gives them. */
static int driver_cause(be_error **out, sqlite3 *db, int ext) {
  const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(ext);
  if (be__error_wrap_raw(out, map_code(ext), msg, msg ? strlen(msg) : 0, NULL) != BE_OK)
    return BE_E_NOMEM;
  be_error_set_driver_code(*out, ext);
  return BE_OK;
}

/* Raise the be_error for SQLite result rc: the library's sentence, and a
 * cause keeping SQLite's extended code and message. */
static int sq_fail(be_error **err, sqlite3 *db, int rc, const char *what) {
  int ext = extended(db, rc);
  int32_t code = map_code(ext);
  if (err == NULL) return code;
  be_error *cause = NULL;
  if (driver_cause(&cause, db, ext) != BE_OK) return be__error_oom(err);
  int rc2 = be__error_wrap(err, code, cause, "sqlite %s failed: %s", what, sentence(ext));
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

/* ---- opening ---- */

/* What a driver table opens with: the host's options, and whether opening
 * sets the journal mode (the app's setup connection leaves the file's
 * mode alone until its setup committed). */
struct sq_config {
  be_sqlite_options o;
  int32_t set_journal;
};

/* The file a DSN names, for messages and file-system checks: the DSN, or a
 * file: URI's path (without authority or query; left as is when it holds
 * %-escapes). Empty for in-memory databases. */
static void dsn_path(char *out, size_t size, const char *dsn) {
  out[0] = '\0';
  if (strcmp(dsn, ":memory:") == 0 || dsn[0] == '\0') return;
  if (strncmp(dsn, "file:", 5) != 0) {
    snprintf(out, size, "%s", dsn);
    return;
  }
  const char *p = dsn + 5;
  if (strstr(p, "mode=memory") || strstr(p, "vfs=memdb")) return;
  if (p[0] == '/' && p[1] == '/') {
    p = strchr(p + 2, '/');
    if (p == NULL) return;
  }
  size_t n = strcspn(p, "?#");
  snprintf(out, size, "%.*s", (int)(n < size ? n : size - 1), p);
}

/* Why path could not be opened, from the file system itself (SQLite
 * retries a failed read-write open read-only, so errno is not reliable). */
static const char *cantopen_reason(const char *path, int create) {
  struct stat st;
  if (path[0] == '\0') return "the database could not be opened";
  if (stat(path, &st) == 0) {
    if (S_ISDIR(st.st_mode)) return "it is a directory";
    if (access(path, R_OK) != 0) return "permission denied (the file cannot be read)";
    return "the file could not be opened";
  }
  if (errno == EACCES) return "permission denied (a directory on the path cannot be searched)";
  if (errno == ENOTDIR) return "a part of the path is not a directory";
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash == dir) slash[1] = '\0';
  else if (slash) *slash = '\0';
  else snprintf(dir, sizeof dir, ".");
  if (stat(dir, &st) != 0)
    return errno == EACCES ? "permission denied (its directory cannot be searched)"
                           : "its directory does not exist";
  if (!create)
    return "the file does not exist (and this open may not create it: deleted or moved?)";
  if (access(dir, W_OK | X_OK) != 0)
    return "its directory is not writable (permission denied), so the file cannot be created";
  return "the file could not be created";
}

/* The error for an open of dsn that failed with SQLite result rc (db may
 * be NULL): a locked file is busy, a file that is not a database (or is
 * encrypted, truncated or damaged) a permanent storage error, the rest
 * unreachable. The detail names the path; SQLite's words are the cause. */
static int open_fail(be_error **err, sqlite3 *db, int rc, const char *dsn, int create,
                     const char *why) {
  int ext = extended(db, rc);
  int p = ext & 0xff;
  if (p == SQLITE_NOMEM) return be__error_oom(err);
  int32_t code = p == SQLITE_BUSY || p == SQLITE_LOCKED      ? BE_E_BUSY
                 : p == SQLITE_NOTADB || p == SQLITE_CORRUPT ? BE_E_STORAGE
                                                             : BE_E_DB_UNREACHABLE;
  if (err == NULL) return code;
  char path[PATH_MAX];
  dsn_path(path, sizeof path, dsn);
  if (why == NULL) why = p == SQLITE_CANTOPEN ? cantopen_reason(path, create) : sentence(ext);
  be_error *cause = NULL;
  if (driver_cause(&cause, db, ext) != BE_OK) return be__error_oom(err);
  char shown[PATH_MAX * 3 / 2];
  be__utf8_scrub(shown, sizeof shown, path); /* a message is UTF-8; the path need not be */
  int r = be__error_wrap(err, code, cause, "cannot open the database %s: %s",
                         shown[0] ? shown : "(in memory)", why);
  be_error_set_driver_code(*err, ext);
  return r;
}

static int exec_pragma(sqlite3 *db, const char *fmt, const char *arg) {
  char sql[96];
  snprintf(sql, sizeof sql, fmt, arg);
  return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* The checks that write nothing: the file is a database SQLite can read
 * (page 1 and the schema), and writable when read-write was asked. */
static int probe(sqlite3 *db, int flags, const char *dsn, be_error **err) {
  int rc = sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
  if (rc != SQLITE_OK) return open_fail(err, db, rc, dsn, 0, NULL);
  if (!(flags & SQLITE_OPEN_READONLY) && sqlite3_db_readonly(db, "main") == 1)
    return open_fail(err, db, SQLITE_READONLY, dsn, 0,
                     "the file is read-only (no write permission) but the driver opens read-write");
  return BE_OK;
}

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

/* PRAGMA journal_mode=WAL writes the file's header without SQLite's busy
 * handler: while another connection writes (a process migrating the same
 * database) it answers SQLITE_BUSY at once. Try again, 1 ms apart for the
 * first 10 ms and then 10 ms apart, for up to the busy timeout. */
static int set_journal(sqlite3 *db, const char *journal, int32_t timeout_ms) {
  int rc;
  for (int32_t waited = 0;;) {
    rc = exec_pragma(db, "PRAGMA journal_mode=%s", journal);
    if ((rc & 0xff) != SQLITE_BUSY || waited >= timeout_ms) return rc;
    int32_t step = waited < 10 ? 1 : 10;
    struct timespec ts = {0, (long)step * 1000000L};
    nanosleep(&ts, NULL);
    waited += step;
  }
}

/* The per-connection settings, after the probes: the journal mode (which
 * WAL writes into the file) only when the table says so. */
static int apply_settings(sqlite3 *db, const sq_config *cfg, const char *dsn, be_error **err) {
  const be_sqlite_options *o = &cfg->o;
  const char *journal = NULL;
  pick_journal(o->journal_mode, &journal);
  int rc = SQLITE_OK;
  if (journal && cfg->set_journal) {
    rc = set_journal(db, journal, o->busy_timeout_ms);
    if (rc != SQLITE_OK) return open_fail(err, db, rc, dsn, 0, NULL);
  }
  const char *step = "PRAGMA synchronous";
  if (o->synchronous != BE_SQLITE_SYNC_DEFAULT) {
    char n[16];
    snprintf(n, sizeof n, "%d", (int)o->synchronous);
    rc = exec_pragma(db, "PRAGMA synchronous=%s", n);
  }
  if (rc == SQLITE_OK) {
    step = "PRAGMA foreign_keys";
    rc = exec_pragma(db, "PRAGMA foreign_keys=%s", o->foreign_keys ? "ON" : "OFF");
  }
  if (rc == SQLITE_OK) rc = apply_tuning(db, o, &step);
  return rc == SQLITE_OK ? BE_OK : sq_fail(err, db, rc, step);
}

/* Open dsn; `existing` drops SQLITE_OPEN_CREATE from the flags. */
static int open_conn(void **out, const char *dsn, const sq_config *cfg, int existing,
                     be_error **err) {
  const be_sqlite_options *o = &cfg->o;
  *out = NULL;
  int flags = o->open_flags ? o->open_flags : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  if (existing) flags &= ~SQLITE_OPEN_CREATE;
  flags |= SQLITE_OPEN_URI;
  if (!(flags & SQLITE_OPEN_FULLMUTEX)) flags |= SQLITE_OPEN_NOMUTEX;
  sq_conn *c = be__calloc_lines(sizeof *c);
  if (c == NULL) return be__error_oom(err);
  int rc = sqlite3_open_v2(dsn, &c->db, flags, NULL);
  int r = BE_OK;
  if (rc != SQLITE_OK) {
    r = open_fail(err, c->db, rc, dsn, (flags & SQLITE_OPEN_CREATE) != 0, NULL);
  } else {
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, o->busy_timeout_ms);
    r = probe(c->db, flags, dsn, err);
    if (r == BE_OK) r = apply_settings(c->db, cfg, dsn, err);
  }
  if (r != BE_OK) {
    sqlite3_close(c->db);
    be__free_lines(c);
    return r;
  }
  *out = c;
  return BE_OK;
}

static int sq_open(void **out, const char *dsn, void *driver_data, be_error **err) {
  return open_conn(out, dsn, driver_data, 0, err);
}

static int sq_open_existing(void **out, const char *dsn, void *driver_data, be_error **err) {
  return open_conn(out, dsn, driver_data, 1, err);
}

static void sq_close(void *conn) {
  sq_conn *c = conn;
  if (c == NULL) return;
  for (int i = 0; i < TX_N; i++) sqlite3_finalize(c->tx[i]);
  /* close_v2: statements a caller still holds keep the handle alive as a
   * zombie instead of failing the close */
  sqlite3_close_v2(c->db);
  be__free_lines(c);
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

/* Borrowed until rebound, reset or finalized (storage.h's contract);
 * SQLite's reset keeps bindings, but the driver's reset clears them. */
static int sq_bind_text_static(void *s, int32_t i, const char *v, size_t len, be_error **err) {
  return bind_rc(s, sqlite3_bind_text64(ST(s), i, v, len, SQLITE_STATIC, SQLITE_UTF8), err);
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
/* Text and blob through the column's value: one column lookup instead of
 * two (sqlite3_column_text then sqlite3_column_bytes each look the column
 * up and leave through the API's exit check). The value is unprotected,
 * which is fine on a connection one thread uses (as sq_column_value). */
static const char *sq_column_text(void *s, int32_t col, size_t *len) {
  sqlite3_value *v = sqlite3_column_value(ST(s), col);
  const char *t = (const char *)sqlite3_value_text(v);
  *len = (size_t)sqlite3_value_bytes(v);
  return t;
}
static const void *sq_column_blob(void *s, int32_t col, size_t *len) {
  sqlite3_value *v = sqlite3_column_value(ST(s), col);
  const void *b = sqlite3_value_blob(v);
  *len = (size_t)sqlite3_value_bytes(v);
  return b;
}

/* One sqlite3_column_value, then the value's own accessors: a row read
 * whole pays SQLite's column lookup once per value, not twice. The
 * value is unprotected, which is fine on a connection one thread uses. */
static inline void sq_value(sqlite3_stmt *st, int32_t col, be__cell *out) {
  sqlite3_value *v = sqlite3_column_value(st, col);
  switch (sqlite3_value_type(v)) {
    case SQLITE_INTEGER:
      out->type = BE_TYPE_INT;
      out->u.i = sqlite3_value_int64(v);
      break;
    case SQLITE_FLOAT:
      out->type = BE_TYPE_FLOAT;
      out->u.d = sqlite3_value_double(v);
      break;
    case SQLITE_TEXT:
      out->type = BE_TYPE_TEXT;
      out->u.p = sqlite3_value_text(v);
      out->len = (size_t)sqlite3_value_bytes(v);
      break;
    case SQLITE_BLOB:
      out->type = BE_TYPE_BLOB;
      out->u.p = sqlite3_value_blob(v);
      out->len = (size_t)sqlite3_value_bytes(v);
      break;
    default:
      out->type = BE_TYPE_NULL;
      out->u.i = 0;
      out->len = 0;
      break;
  }
}

static int32_t sq_column_value(void *s, int32_t col, int64_t *i, double *d, const void **p,
                               size_t *len) {
  be__cell c;
  sq_value(ST(s), col, &c);
  if (c.type == BE_TYPE_INT) *i = c.u.i;
  else if (c.type == BE_TYPE_FLOAT) *d = c.u.d;
  else if (c.type != BE_TYPE_NULL) {
    *p = c.u.p;
    *len = c.len;
  }
  return c.type;
}

/* be__row_fn: a whole row in one call (a batch load reads 10,000 rows). */
static void sq_row(void *s, int32_t ncols, be__cell *out) {
  sqlite3_stmt *st = ST(s);
  for (int32_t c = 0; c < ncols; c++) sq_value(st, c, out + c);
}

be__row_fn be__sqlite_row_fn(const be_driver *d) {
  return d != NULL && d->version >= 3 && d->column_value == sq_column_value ? sq_row : NULL;
}

static int sq_reset(void *s, be_error **err) {
  (void)err;
  /* sqlite3_reset repeats the last step's error; the reset itself worked */
  sqlite3_reset(ST(s));
  sqlite3_clear_bindings(ST(s));
  return BE_OK;
}

/* be__reset_keep_fn: sqlite3_reset alone (it keeps the bindings; storage
 * binds NULL to what the next use leaves unbound before it steps). */
static void sq_reset_keep(void *s) { sqlite3_reset(ST(s)); }

be__reset_keep_fn be__sqlite_reset_keep_fn(const be_driver *d) {
  return d != NULL && d->reset == sq_reset ? sq_reset_keep : NULL;
}

int be__sqlite_checks_columns(const be_driver *d) {
  return d != NULL && d->column_count == sq_column_count && d->column_name == sq_column_name &&
         d->column_type == sq_column_type && d->column_int64 == sq_column_int64 &&
         d->column_double == sq_column_double && d->column_text == sq_column_text &&
         d->column_blob == sq_column_blob &&
         (d->version < 3 || d->column_value == NULL || d->column_value == sq_column_value);
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

/* 1 when the file the connection opened is no longer at its name:
 * deleted, renamed, or replaced by another file (one stat; in-memory and
 * other VFSs without the check say no). */
static int has_moved(sq_conn *c) {
  int moved = 0;
  if (sqlite3_file_control(c->db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) != SQLITE_OK) return 0;
  return moved != 0;
}

static int moved_error(sq_conn *c, be_error **err) {
  const char *path = sqlite3_db_filename(c->db, "main");
  return be__error_set(err, BE_E_CONN_LOST,
                       "the database file %s was deleted, renamed or replaced while open; "
                       "this connection can no longer reach it",
                       path && path[0] ? path : "(unnamed)");
}

/* A write transaction first checks that its writes would reach the file
 * at the database's name (not an unlinked or replaced one). */
static int sq_begin(void *conn, int32_t mode, be_error **err) {
  int which = mode == BE_TX_IMMEDIATE   ? TX_BEGIN_IMMEDIATE
              : mode == BE_TX_EXCLUSIVE ? TX_BEGIN_EXCLUSIVE
                                        : TX_BEGIN_DEFERRED;
  if (which != TX_BEGIN_DEFERRED && has_moved(conn)) return moved_error(conn, err);
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

/* An in-process database has no socket to lose: a handle that exists is
 * alive while its file is still the one at the database's name. */
static int sq_ping(void *conn, be_error **err) {
  if (conn == NULL || ((sq_conn *)conn)->db == NULL)
    return be__error_set(err, BE_E_CONN_LOST, "sqlite connection is closed");
  if (has_moved(conn)) return moved_error(conn, err);
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

/* One integer of a PRAGMA (page_count, page_size) into *out. */
static int sq_pragma_int(sqlite3 *db, const char *sql, int64_t *out) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    *out = sqlite3_column_int64(st, 0);
    rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  return rc;
}

static int sq_journal_mode(sqlite3 *db, char *text, size_t cap, be_error **err) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL);
  if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    const unsigned char *v = sqlite3_column_text(st, 0);
    snprintf(text, cap, "%s", v ? (const char *)v : "");
    rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  return rc == SQLITE_OK ? BE_OK : sq_fail(err, db, rc, "journal_mode");
}

static int sq_size(sqlite3 *db, int64_t *out, be_error **err) {
  int64_t pages = 0, page_size = 0;
  int rc = sq_pragma_int(db, "PRAGMA page_count", &pages);
  if (rc == SQLITE_OK) rc = sq_pragma_int(db, "PRAGMA page_size", &page_size);
  if (rc != SQLITE_OK) return sq_fail(err, db, rc, "database size");
  *out = pages * page_size;
  return BE_OK;
}

/* A sqlite3_db_status figure of this connection. */
static int sq_db_status(sqlite3 *db, int op, int64_t *out_value, int64_t *out_hw) {
  int cur = 0, hw = 0;
  sqlite3_db_status(db, op, &cur, &hw, 0);
  *out_value = cur;
  *out_hw = hw > cur ? hw : cur;
  return BE_OK;
}

static int sq_status(void *conn, int32_t what, int64_t *out_value, int64_t *out_hw, char *text,
                     size_t cap, be_error **err) {
  sq_conn *c = conn;
  const char *file = NULL;
  sqlite3_int64 cur = 0, hw = 0;
  switch (what) {
    case BE_DRIVER_STATUS_FILE:
      file = sqlite3_db_filename(c->db, "main");
      snprintf(text, cap, "%s", file ? file : "");
      return BE_OK;
    case BE_DRIVER_STATUS_SIZE_BYTES: return sq_size(c->db, out_value, err);
    case BE_DRIVER_STATUS_JOURNAL_MODE: return sq_journal_mode(c->db, text, cap, err);
    case BE_DRIVER_STATUS_MEMORY_USED:
      sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &cur, &hw, 0);
      /* c itself is SQLite's memory: none counted means the host turned
       * the statistics off (SQLITE_CONFIG_MEMSTATUS), not that none is
       * used; the peak is then stale (from before) or 0 */
      if (cur == 0)
        return be__error_set(err, BE_E_UNSUPPORTED,
                             "sqlite: memory statistics are off (SQLITE_CONFIG_MEMSTATUS)");
      *out_value = cur;
      *out_hw = hw;
      return BE_OK;
    case BE_DRIVER_STATUS_CONN_CACHE: return sq_db_status(c->db, SQLITE_DBSTATUS_CACHE_USED, out_value, out_hw);
    case BE_DRIVER_STATUS_CONN_STMT: return sq_db_status(c->db, SQLITE_DBSTATUS_STMT_USED, out_value, out_hw);
    case BE_DRIVER_STATUS_CONN_SCHEMA:
      return sq_db_status(c->db, SQLITE_DBSTATUS_SCHEMA_USED, out_value, out_hw);
    default: return be__error_set(err, BE_E_UNSUPPORTED, "sqlite: no status figure %d", (int)what);
  }
}

/* SQLite's table names ignore (ASCII) case: schema_migrations and
 * Schema_Migrations are one table, so the check must ignore it too. */
static int sq_table_exists(void *conn, int32_t *out, const char *name, be_error **err) {
  sq_conn *c = conn;
  *out = 0;
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(
    c->db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE", -1, &st,
    NULL);
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
  .open_existing = sq_open_existing,
  .bind_text_static = sq_bind_text_static,
  .column_value = sq_column_value,
  .status = sq_status,
};

sqlite3 *be__sqlite_db(be_conn *conn) {
  const be_driver *d = be_conn_driver(conn);
  if (d == NULL || d->open != sq_open) return NULL;
  return ((sq_conn *)be__conn_native(conn))->db;
}

/* A driver table and the configuration its driver_data points at. */
struct sq_driver {
  be_driver drv;
  sq_config cfg;
};

static sq_driver default_driver;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static const be_sqlite_options defaults = BE_SQLITE_OPTIONS_INIT;

/* A driver table for options o: the template, pointing at its own copy. */
static void driver_init(sq_driver *d, const be_sqlite_options *o, int set_journal) {
  d->drv = template;
  d->cfg.o = *o;
  d->cfg.set_journal = set_journal;
  d->drv.driver_data = &d->cfg;
  d->drv.features = detect_features();
}

static void default_init(void) { driver_init(&default_driver, &defaults, 1); }

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
  driver_init(d, &o, 1);
  *out = &d->drv;
  return BE_OK;
}

int be__sqlite_driver_keep_journal(be_driver **out, const be_driver *base, be_error **err) {
  *out = NULL;
  if (base == NULL || base->open != sq_open) return BE_OK;
  const sq_config *cfg = base->driver_data;
  sq_driver *d = be__calloc(1, sizeof *d);
  if (d == NULL) return be__error_oom(err);
  driver_init(d, &cfg->o, 0);
  *out = &d->drv;
  return BE_OK;
}

int be__sqlite_driver_creates(const be_driver *d) {
  if (d == NULL || d->open != sq_open) return 0;
  int flags = ((const sq_config *)d->driver_data)->o.open_flags;
  return flags == 0 || ((flags & SQLITE_OPEN_CREATE) && !(flags & SQLITE_OPEN_READONLY));
}

void be_sqlite_driver_free(be_driver *driver) {
  if (driver == NULL || driver == &default_driver.drv) return;
  be__free((sq_driver *)driver); /* drv is the first member */
}
