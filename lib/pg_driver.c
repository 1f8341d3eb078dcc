/* SPDX-License-Identifier: MIT */
/* The PostgreSQL driver over libpq: one PGconn per connection, one
 * server-side prepared statement per be_driver statement. */
#include "pg_driver.h"

#include <errno.h>
#include <libpq-fe.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "pg_sql.h"
#include "storage.h"

/* Type OIDs of the built-in types results are read as (pg_type.dat). */
enum { OID_BOOL = 16,
       OID_BYTEA = 17,
       OID_INT8 = 20,
       OID_INT2 = 21,
       OID_INT4 = 23,
       OID_TEXT = 25,
       OID_OID = 26,
       OID_FLOAT4 = 700,
       OID_FLOAT8 = 701,
       OID_NUMERIC = 1700 };

typedef struct pg_conn {
  PGconn *pq;
  uint64_t next_name; /* prepared statements are named s<n> */
  int64_t changes;
  char **doomed; /* statements to DEALLOCATE once the transaction ended */
  size_t n_doomed, cap_doomed;
} pg_conn;

typedef struct pg_stmt {
  pg_conn *c;
  char name[32];
  int32_t nparams;
  int32_t ncols;
  char **vals;           /* bound values, text (blobs binary) */
  int *lens;             /* byte lengths */
  int *fmts;             /* 0 text, 1 binary */
  char **owned;          /* vals[i] when the statement owns it, else NULL */
  PGresult *desc;        /* the statement's description: column names */
  PGresult *res;         /* the current run's rows */
  int row, nrows;        /* row: the current one; -1 before the first step */
  int done;              /* the run ended (BE_DONE given) */
  char *intbuf;          /* nparams slots of 24 bytes for numbers */
  unsigned char **bytea; /* per column: the current row's bytea, unescaped */
  size_t *bytea_len;
} pg_stmt;

/* ---- error translation ---- */

static int state_is(const char *st, const char *want) { return st && strcmp(st, want) == 0; }

static int32_t map_state(const char *st, int conn_bad) {
  if (conn_bad) return BE_E_CONN_LOST;
  if (st == NULL) return BE_E_STORAGE;
  if (state_is(st, "23505")) return BE_E_CONFLICT;
  if (state_is(st, "23502") || state_is(st, "23514") || state_is(st, "23503") ||
      strncmp(st, "22", 2) == 0) /* data exceptions: a value the column's type refuses */
    return BE_E_VALIDATION;
  if (state_is(st, "40001") || state_is(st, "40P01") || state_is(st, "55P03")) return BE_E_BUSY;
  if (strncmp(st, "08", 2) == 0 || state_is(st, "57P01") || state_is(st, "57P02") ||
      state_is(st, "57P03"))
    return BE_E_CONN_LOST;
  if (state_is(st, "53300")) return BE_E_DB_UNREACHABLE;
  return BE_E_STORAGE;
}

static const char *state_sentence(const char *st, int conn_bad) {
  static const struct { const char *st, *text; } known[] = {
    {"23505", "a unique constraint was violated"},
    {"23502", "a NOT NULL constraint was violated"},
    {"23514", "a CHECK constraint was violated"},
    {"23503", "a foreign key constraint was violated"},
    {"40001", "the transaction could not be serialized with concurrent ones"},
    {"40P01", "a deadlock was detected"},
    {"55P03", "a lock could not be taken"},
    {"57P01", "the database server is shutting down"},
    {"57P02", "the database server is shutting down"},
    {"57P03", "the database server is starting up or shutting down"},
    {"53300", "the database server has too many connections"},
    {"25P02", "the transaction was aborted by an earlier error"},
    {"42P01", "a table does not exist"},
    {"42601", "the SQL statement has a syntax error"},
  };
  if (conn_bad) return "the connection to the database server was lost";
  if (st == NULL) return "the database failed";
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (strcmp(st, known[i].st) == 0) return known[i].text;
  if (strncmp(st, "08", 2) == 0) return "the connection to the database server failed";
  if (strncmp(st, "42", 2) == 0) return "the database refused the SQL statement";
  if (strncmp(st, "22", 2) == 0) return "a value was refused by the database";
  return "the database failed";
}

/* SQLSTATE packed as PostgreSQL's MAKE_SQLSTATE: six bits a character. */
static int32_t pack_state(const char *st) {
  if (st == NULL || strlen(st) != 5) return 0;
  int32_t v = 0;
  for (int i = 4; i >= 0; i--) v = (v << 6) | ((st[i] - '0') & 0x3f);
  return v;
}

/* Raise the error for a failed call: the library's sentence, the
 * server's SQLSTATE and message in the cause. res may be NULL. */
static int pg_fail(be_error **err, pg_conn *c, PGresult *res, const char *what) {
  const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  int bad = c && PQstatus(c->pq) == CONNECTION_BAD;
  int32_t code = map_state(st, bad);
  if (err == NULL) return code;
  const char *msg = res ? PQresultErrorMessage(res) : NULL;
  if ((msg == NULL || msg[0] == '\0') && c) msg = PQerrorMessage(c->pq);
  if (msg == NULL) msg = "";
  size_t n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) n--;
  char buf[4096];
  int m = snprintf(buf, sizeof buf, "SQLSTATE %s: %.*s", st ? st : "(none)", (int)n, msg);
  be_error *cause = NULL;
  if (be__error_wrap_raw(&cause, code, buf, m < 0 ? 0 : (size_t)m, NULL) != BE_OK)
    return be__error_oom(err);
  be_error_set_driver_code(cause, pack_state(st));
  int rc = be__error_wrap(err, code, cause, "postgres %s failed: %s", what, state_sentence(st, bad));
  be_error_set_driver_code(*err, pack_state(st));
  return rc;
}

/* Run sql that returns no rows; BE_OK or the translated error. */
static int run_cmd(pg_conn *c, const char *sql, const char *what, be_error **err) {
  PGresult *r = PQexec(c->pq, sql);
  ExecStatusType s = PQresultStatus(r);
  int rc = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK || s == PGRES_EMPTY_QUERY
             ? BE_OK
             : pg_fail(err, c, r, what);
  PQclear(r);
  return rc;
}

/* ---- opening ---- */

static void quiet_notices(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

static int pg_open(void **out, const char *dsn, void *data, be_error **err) {
  (void)data;
  *out = NULL;
  pg_conn *c = be__calloc(1, sizeof *c);
  if (c == NULL) return be__error_oom(err);
  c->pq = PQconnectdb(dsn);
  if (c->pq == NULL) {
    be__free(c);
    return be__error_oom(err);
  }
  if (PQstatus(c->pq) != CONNECTION_OK) {
    const char *msg = PQerrorMessage(c->pq);
    be_error *cause = NULL;
    int rc = BE_E_DB_UNREACHABLE;
    if (err && be__error_wrap_raw(&cause, rc, msg, strlen(msg), NULL) != BE_OK) rc = be__error_oom(err);
    else rc = be__error_wrap(err, rc, cause, "postgres open failed: the database server could not be reached or refused the connection");
    PQfinish(c->pq);
    be__free(c);
    return rc;
  }
  PQsetNoticeProcessor(c->pq, quiet_notices, NULL);
  *out = c;
  return BE_OK;
}

static void free_doomed(pg_conn *c) {
  for (size_t i = 0; i < c->n_doomed; i++) be__free(c->doomed[i]);
  c->n_doomed = 0;
}

static void pg_close(void *conn) {
  pg_conn *c = conn;
  if (c == NULL) return;
  free_doomed(c);
  be__free(c->doomed);
  PQfinish(c->pq);
  be__free(c);
}

/* ---- statements ---- */

static void clear_result(pg_stmt *s) {
  if (s->bytea)
    for (int32_t i = 0; i < s->ncols; i++) {
      if (s->bytea[i]) PQfreemem(s->bytea[i]);
      s->bytea[i] = NULL;
    }
  PQclear(s->res);
  s->res = NULL;
  s->row = -1;
  s->nrows = 0;
  s->done = 0;
}

static void clear_binds(pg_stmt *s) {
  for (int32_t i = 0; i < s->nparams; i++) {
    be__free(s->owned[i]);
    s->owned[i] = NULL;
    s->vals[i] = NULL;
    s->lens[i] = 0;
    s->fmts[i] = 0;
  }
}

static void stmt_free(pg_stmt *s) {
  clear_result(s);
  if (s->owned) clear_binds(s);
  PQclear(s->desc);
  be__free(s->vals);
  be__free(s->lens);
  be__free(s->fmts);
  be__free(s->owned);
  be__free(s->intbuf);
  be__free(s->bytea);
  be__free(s->bytea_len);
  be__free(s);
}

static int stmt_alloc(pg_stmt *s) {
  size_t n = s->nparams > 0 ? (size_t)s->nparams : 1;
  size_t k = s->ncols > 0 ? (size_t)s->ncols : 1;
  s->vals = be__calloc(n, sizeof *s->vals);
  s->lens = be__calloc(n, sizeof *s->lens);
  s->fmts = be__calloc(n, sizeof *s->fmts);
  s->owned = be__calloc(n, sizeof *s->owned);
  s->intbuf = be__calloc(n, 24);
  s->bytea = be__calloc(k, sizeof *s->bytea);
  s->bytea_len = be__calloc(k, sizeof *s->bytea_len);
  return s->vals && s->lens && s->fmts && s->owned && s->intbuf && s->bytea && s->bytea_len;
}

/* PQprepare under a fresh name, then describe it for the column names.
 * A parameter the text never names (an UPDATE binding every field but
 * setting some) has no type the server could infer: it is text. */
static int prepare_named(pg_conn *c, pg_stmt *s, const char *sql, int32_t nparams,
                         const uint8_t *used, be_error **err) {
  snprintf(s->name, sizeof s->name, "be_s%llu", (unsigned long long)++c->next_name);
  Oid *types = NULL;
  for (int32_t i = 1; i <= nparams; i++) {
    if (used[i / 8] & (1u << (i % 8))) continue;
    if (types == NULL && (types = be__calloc((size_t)nparams, sizeof *types)) == NULL)
      return be__error_oom(err);
    types[i - 1] = OID_TEXT;
  }
  PGresult *r = PQprepare(c->pq, s->name, sql, nparams, types);
  be__free(types);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    int rc = pg_fail(err, c, r, "prepare");
    PQclear(r);
    return rc;
  }
  PQclear(r);
  s->desc = PQdescribePrepared(c->pq, s->name);
  if (PQresultStatus(s->desc) != PGRES_COMMAND_OK) return pg_fail(err, c, s->desc, "prepare");
  s->nparams = PQnparams(s->desc);
  s->ncols = PQnfields(s->desc);
  return BE_OK;
}

static void forget_name(pg_conn *c, const char *name);

static int pg_prepare(void *conn, void **out, const char *sql, size_t len, be_error **err) {
  pg_conn *c = conn;
  *out = NULL;
  char *text = NULL;
  int32_t nparams = 0;
  uint8_t *used = be__calloc(8192, 1);
  if (used == NULL) return be__error_oom(err);
  int rc = be__pg_translate(&text, &nparams, used, sql, len, err);
  pg_stmt *s = rc == BE_OK ? be__calloc(1, sizeof *s) : NULL;
  if (s == NULL) {
    be__free(text);
    be__free(used);
    return rc == BE_OK ? be__error_oom(err) : rc;
  }
  s->c = c;
  s->row = -1;
  rc = prepare_named(c, s, text, nparams, used, err);
  be__free(text);
  be__free(used);
  if (rc == BE_OK && !stmt_alloc(s)) rc = be__error_oom(err);
  if (rc != BE_OK) {
    if (s->desc) forget_name(c, s->name);
    stmt_free(s);
    return rc;
  }
  *out = s;
  return BE_OK;
}

#define S(p) ((pg_stmt *)(p))

static int bind_slot(pg_stmt *s, int32_t i, be_error **err) {
  if (i < 1 || i > s->nparams)
    return be__error_set(err, BE_E_MISUSE, "bind index out of range (the statement has %d parameters)",
                         (int)s->nparams);
  be__free(s->owned[i - 1]);
  s->owned[i - 1] = NULL;
  return BE_OK;
}

static int pg_bind_null(void *p, int32_t i, be_error **err) {
  int rc = bind_slot(S(p), i, err);
  if (rc == BE_OK) {
    S(p)->vals[i - 1] = NULL;
    S(p)->lens[i - 1] = 0;
    S(p)->fmts[i - 1] = 0;
  }
  return rc;
}

static int bind_number(pg_stmt *s, int32_t i, const char *fmt, int64_t iv, double dv, int is_int,
                       be_error **err) {
  int rc = bind_slot(s, i, err);
  if (rc != BE_OK) return rc;
  char *slot = s->intbuf + (size_t)(i - 1) * 24;
  int n = is_int ? snprintf(slot, 24, fmt, (long long)iv) : snprintf(slot, 24, fmt, dv);
  s->vals[i - 1] = slot;
  s->lens[i - 1] = n;
  s->fmts[i - 1] = 0;
  return BE_OK;
}

static int pg_bind_int64(void *p, int32_t i, int64_t v, be_error **err) {
  return bind_number(S(p), i, "%lld", v, 0, 1, err);
}
static int pg_bind_double(void *p, int32_t i, double v, be_error **err) {
  return bind_number(S(p), i, "%.17g", 0, v, 0, err);
}

/* Copy len bytes (text gets a NUL: libpq reads text parameters as C
 * strings). */
static int bind_copy(pg_stmt *s, int32_t i, const void *v, size_t len, int fmt, be_error **err) {
  int rc = bind_slot(s, i, err);
  if (rc != BE_OK) return rc;
  if (len > (size_t)0x3fffffff) return be__error_set(err, BE_E_VALIDATION, "value too long for postgres");
  char *copy = be__malloc(len + 1);
  if (copy == NULL) return be__error_oom(err);
  if (len) memcpy(copy, v, len);
  copy[len] = '\0';
  s->owned[i - 1] = copy;
  s->vals[i - 1] = copy;
  s->lens[i - 1] = (int)len;
  s->fmts[i - 1] = fmt;
  return BE_OK;
}

static int pg_bind_text(void *p, int32_t i, const char *v, size_t len, be_error **err) {
  return bind_copy(S(p), i, v, len, 0, err);
}
static int pg_bind_blob(void *p, int32_t i, const void *v, size_t len, be_error **err) {
  return bind_copy(S(p), i, v, len, 1, err);
}

static int64_t parse_changes(PGresult *r) {
  const char *t = PQcmdTuples(r);
  return t && t[0] ? strtoll(t, NULL, 10) : 0;
}

static int run_stmt(pg_stmt *s, be_error **err) {
  pg_conn *c = s->c;
  clear_result(s);
  s->res = PQexecPrepared(c->pq, s->name, s->nparams, (const char *const *)s->vals, s->lens,
                          s->fmts, 0);
  ExecStatusType st = PQresultStatus(s->res);
  if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
    s->nrows = st == PGRES_TUPLES_OK ? PQntuples(s->res) : 0;
    const char *tag = PQcmdStatus(s->res);
    if (tag && (strncmp(tag, "INSERT", 6) == 0 || strncmp(tag, "UPDATE", 6) == 0 ||
                strncmp(tag, "DELETE", 6) == 0 || strncmp(tag, "MERGE", 5) == 0))
      c->changes = parse_changes(s->res);
    return BE_OK;
  }
  int rc = pg_fail(err, c, s->res, "step");
  clear_result(s);
  s->done = 1;
  return rc;
}

static int pg_step(void *p, be_error **err) {
  pg_stmt *s = p;
  if (s->done) {
    /* stepped again after BE_DONE without a reset: run again, as SQLite */
    s->done = 0;
    PQclear(s->res);
    s->res = NULL;
  }
  if (s->res == NULL) {
    int rc = run_stmt(s, err);
    if (rc != BE_OK) return rc;
  }
  for (int32_t i = 0; i < s->ncols; i++)
    if (s->bytea[i]) {
      PQfreemem(s->bytea[i]);
      s->bytea[i] = NULL;
    }
  if (s->row + 1 < s->nrows) {
    s->row++;
    return BE_ROW;
  }
  s->done = 1;
  return BE_DONE;
}

static int32_t pg_column_count(void *p) { return S(p)->ncols; }

static const char *pg_column_name(void *p, int32_t col) {
  pg_stmt *s = p;
  return col >= 0 && col < s->ncols ? PQfname(s->desc, col) : NULL;
}

static int on_row(pg_stmt *s, int32_t col) {
  return s->res && s->row >= 0 && s->row < s->nrows && col >= 0 && col < s->ncols;
}

/* A numeric's text is integral when it holds no '.', 'e' or letters. */
static int integral(const char *t) { return strpbrk(t, ".eEnN") == NULL; }

static int32_t pg_column_type(void *p, int32_t col) {
  pg_stmt *s = p;
  if (!on_row(s, col) || PQgetisnull(s->res, s->row, col)) return BE_TYPE_NULL;
  switch (PQftype(s->res, col)) {
    case OID_BOOL:
    case OID_INT2:
    case OID_INT4:
    case OID_INT8:
    case OID_OID: return BE_TYPE_INT;
    case OID_FLOAT4:
    case OID_FLOAT8: return BE_TYPE_FLOAT;
    case OID_NUMERIC: return integral(PQgetvalue(s->res, s->row, col)) ? BE_TYPE_INT : BE_TYPE_FLOAT;
    case OID_BYTEA: return BE_TYPE_BLOB;
    default: return BE_TYPE_TEXT;
  }
}

static int64_t pg_column_int64(void *p, int32_t col) {
  pg_stmt *s = p;
  if (!on_row(s, col) || PQgetisnull(s->res, s->row, col)) return 0;
  const char *t = PQgetvalue(s->res, s->row, col);
  if (PQftype(s->res, col) == OID_BOOL) return t[0] == 't';
  if (pg_column_type(p, col) == BE_TYPE_FLOAT) return (int64_t)strtod(t, NULL);
  return strtoll(t, NULL, 10);
}

static double pg_column_double(void *p, int32_t col) {
  pg_stmt *s = p;
  if (!on_row(s, col) || PQgetisnull(s->res, s->row, col)) return 0.0;
  if (PQftype(s->res, col) == OID_BOOL) return PQgetvalue(s->res, s->row, col)[0] == 't';
  return strtod(PQgetvalue(s->res, s->row, col), NULL);
}

static const char *pg_column_text(void *p, int32_t col, size_t *len) {
  pg_stmt *s = p;
  *len = 0;
  if (!on_row(s, col) || PQgetisnull(s->res, s->row, col)) return NULL;
  *len = (size_t)PQgetlength(s->res, s->row, col);
  return PQgetvalue(s->res, s->row, col);
}

/* bytea arrives escaped (\x hex); other types' bytes are their text. */
static const void *pg_column_blob(void *p, int32_t col, size_t *len) {
  pg_stmt *s = p;
  *len = 0;
  if (!on_row(s, col) || PQgetisnull(s->res, s->row, col)) return NULL;
  if (PQftype(s->res, col) != OID_BYTEA) return pg_column_text(p, col, len);
  if (s->bytea[col] == NULL) {
    s->bytea[col] = PQunescapeBytea((const unsigned char *)PQgetvalue(s->res, s->row, col),
                                    &s->bytea_len[col]);
    if (s->bytea[col] == NULL) return NULL;
  }
  *len = s->bytea_len[col];
  return s->bytea[col];
}

static int32_t pg_column_value(void *p, int32_t col, int64_t *i, double *d, const void **ptr,
                               size_t *len) {
  int32_t t = pg_column_type(p, col);
  switch (t) {
    case BE_TYPE_INT: *i = pg_column_int64(p, col); break;
    case BE_TYPE_FLOAT: *d = pg_column_double(p, col); break;
    case BE_TYPE_TEXT: *ptr = pg_column_text(p, col, len); break;
    case BE_TYPE_BLOB: *ptr = pg_column_blob(p, col, len); break;
    default: break;
  }
  return t;
}

static int pg_reset(void *p, be_error **err) {
  (void)err;
  clear_result(S(p));
  clear_binds(S(p));
  return BE_OK;
}

/* DEALLOCATE now, or after the transaction when it is aborted (the
 * server refuses every command but ROLLBACK then). */
static void forget_name(pg_conn *c, const char *name) {
  if (PQstatus(c->pq) != CONNECTION_OK) return;
  if (PQtransactionStatus(c->pq) == PQTRANS_INERROR) {
    if (c->n_doomed == c->cap_doomed) {
      size_t cap = c->cap_doomed ? c->cap_doomed * 2 : 8;
      char **grown = be__realloc(c->doomed, cap * sizeof *grown);
      if (grown == NULL) return; /* the server frees it with the session */
      c->doomed = grown;
      c->cap_doomed = cap;
    }
    char *copy = be__strdup(name);
    if (copy) c->doomed[c->n_doomed++] = copy;
    return;
  }
  char sql[64];
  snprintf(sql, sizeof sql, "DEALLOCATE %s", name);
  PQclear(PQexec(c->pq, sql));
}

static void pg_finalize(void *p) {
  pg_stmt *s = p;
  if (s == NULL) return;
  forget_name(s->c, s->name);
  stmt_free(s);
}

/* After a rollback: deallocate what an aborted transaction kept. */
static void flush_doomed(pg_conn *c) {
  size_t n = c->n_doomed;
  c->n_doomed = 0;
  for (size_t i = 0; i < n; i++) {
    forget_name(c, c->doomed[i]);
    be__free(c->doomed[i]);
  }
}

static int pg_exec(void *conn, const char *sql, be_error **err) {
  return run_cmd(conn, sql, "exec", err);
}

/* ---- transactions ---- */

static int pg_begin(void *conn, int32_t mode, be_error **err) {
  (void)mode;
  return run_cmd(conn, "BEGIN", "BEGIN", err);
}

static int pg_commit(void *conn, be_error **err) {
  pg_conn *c = conn;
  int aborted = PQtransactionStatus(c->pq) == PQTRANS_INERROR;
  int rc = run_cmd(c, "COMMIT", "COMMIT", err);
  flush_doomed(c);
  /* COMMIT of an aborted transaction succeeds as a ROLLBACK */
  if (rc == BE_OK && aborted)
    return be__error_set(err, BE_E_STORAGE,
                         "postgres COMMIT failed: the transaction was aborted by an earlier error "
                         "and was rolled back");
  return rc;
}

static int pg_rollback(void *conn, be_error **err) {
  pg_conn *c = conn;
  if (PQtransactionStatus(c->pq) == PQTRANS_IDLE) return BE_OK;
  int rc = run_cmd(c, "ROLLBACK", "ROLLBACK", err);
  flush_doomed(c);
  return rc;
}

static int sp_exec(pg_conn *c, const char *verb, const char *name, be_error **err) {
  if (!be__ident_valid(name))
    return be__error_field(err, "savepoint", "savepoint name must match [A-Za-z_][A-Za-z0-9_]{0,63}");
  char sql[128];
  snprintf(sql, sizeof sql, "%s %s", verb, name);
  int rc = run_cmd(c, sql, verb, err);
  if (rc == BE_OK && PQtransactionStatus(c->pq) == PQTRANS_INTRANS) flush_doomed(c);
  return rc;
}

static int pg_savepoint(void *conn, const char *name, be_error **err) {
  return sp_exec(conn, "SAVEPOINT", name, err);
}
static int pg_release(void *conn, const char *name, be_error **err) {
  return sp_exec(conn, "RELEASE SAVEPOINT", name, err);
}
static int pg_rollback_to(void *conn, const char *name, be_error **err) {
  return sp_exec(conn, "ROLLBACK TO SAVEPOINT", name, err);
}

/* lastval(), which fails (and would abort an open transaction) when the
 * session has not used a sequence yet: under a savepoint then. */
static int64_t pg_last_insert_id(void *conn) {
  pg_conn *c = conn;
  int in_tx = PQtransactionStatus(c->pq) == PQTRANS_INTRANS;
  if (PQtransactionStatus(c->pq) == PQTRANS_INERROR) return 0;
  if (in_tx && run_cmd(c, "SAVEPOINT be__lastval", "SAVEPOINT", NULL) != BE_OK) return 0;
  PGresult *r = PQexec(c->pq, "SELECT lastval()");
  int64_t id = 0;
  int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
  if (ok) id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  if (in_tx)
    run_cmd(c, ok ? "RELEASE SAVEPOINT be__lastval" : "ROLLBACK TO SAVEPOINT be__lastval; RELEASE SAVEPOINT be__lastval",
            "lastval", NULL);
  return id;
}

static int64_t pg_changes(void *conn) { return ((pg_conn *)conn)->changes; }

/* A round trip: a server that restarted or a dropped socket shows. */
static int pg_ping(void *conn, be_error **err) {
  pg_conn *c = conn;
  if (c == NULL || PQstatus(c->pq) != CONNECTION_OK)
    return be__error_set(err, BE_E_CONN_LOST, "postgres ping failed: the connection is closed");
  PGresult *r = PQexec(c->pq, "");
  int rc = PQresultStatus(r) == PGRES_EMPTY_QUERY ? BE_OK : pg_fail(err, c, r, "ping");
  PQclear(r);
  if (rc != BE_OK && PQstatus(c->pq) == CONNECTION_BAD && rc != BE_E_CONN_LOST)
    rc = BE_E_CONN_LOST;
  return rc;
}

/* The server takes 65535 parameters, but libpq drops the connection
 * ("lost synchronization with server") on a ParameterDescription message
 * longer than 30000 bytes, which PQdescribePrepared receives for a
 * statement of more than 7498 parameters (6 + 4 bytes each). Batch loads
 * chunk their IN lists under this limit; one array parameter has none. */
#define PG_LIBPQ_PARAM_LIMIT ((30000 - 6) / 4)

static int32_t pg_bind_limit(void *conn) {
  (void)conn;
  return PG_LIBPQ_PARAM_LIMIT;
}

static int32_t pg_in_transaction(void *conn) {
  PGTransactionStatusType t = PQtransactionStatus(((pg_conn *)conn)->pq);
  return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

static int pg_next_statement(void *conn, size_t *out_len, const char *sql, size_t len,
                             be_error **err) {
  (void)conn;
  (void)err;
  *out_len = be__pg_next_statement(sql, len);
  return BE_OK;
}

static int pg_table_exists(void *conn, int32_t *out, const char *name, be_error **err) {
  pg_conn *c = conn;
  *out = 0;
  const char *vals[1] = {name};
  PGresult *r = PQexecParams(c->pq, "SELECT to_regclass($1::text) IS NOT NULL", 1, NULL, vals, NULL,
                             NULL, 0);
  int rc = BE_OK;
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
    *out = PQgetvalue(r, 0, 0)[0] == 't';
  else
    rc = pg_fail(err, c, r, "table_exists");
  PQclear(r);
  return rc;
}

/* ---- notifications: LISTEN / pg_notify() ---- */

static int pg_listen(void *conn, const char *channel, be_error **err) {
  if (!be__ident_valid(channel))
    return be__error_field(err, "channel", "must match [A-Za-z_][A-Za-z0-9_]{0,63}");
  char sql[96];
  snprintf(sql, sizeof sql, "LISTEN \"%s\"", channel); /* quoted: the name's case is kept */
  return run_cmd(conn, sql, "LISTEN", err);
}

static int pg_notify(void *conn, const char *channel, const char *payload, size_t len,
                     be_error **err) {
  pg_conn *c = conn;
  if (len > 7999) return be__error_field(err, "payload", "must be shorter than 8000 bytes");
  char text[8000];
  memcpy(text, payload, len);
  text[len] = '\0';
  const char *vals[2] = {channel, text};
  PGresult *r = PQexecParams(c->pq, "SELECT pg_notify($1, $2)", 2, NULL, vals, NULL, NULL, 0);
  int rc = PQresultStatus(r) == PGRES_TUPLES_OK ? BE_OK : pg_fail(err, c, r, "notify");
  PQclear(r);
  return rc;
}

/* One notification libpq has already read, into payload. */
static int take_notify(pg_conn *c, int32_t *got, char *payload, size_t cap, size_t *out_len) {
  PGnotify *n = PQnotifies(c->pq);
  if (n == NULL) return 0;
  size_t len = strlen(n->extra);
  *out_len = len;
  if (cap > 0) {
    size_t k = len < cap - 1 ? len : cap - 1;
    memcpy(payload, n->extra, k);
    payload[k] = '\0';
  }
  PQfreemem(n);
  *got = 1;
  return 1;
}

static int pg_wait_notification(void *conn, int32_t *got, char *payload, size_t cap,
                                size_t *out_len, int32_t wake_fd, int64_t timeout_ms,
                                be_error **err) {
  pg_conn *c = conn;
  *got = 0;
  *out_len = 0;
  if (take_notify(c, got, payload, cap, out_len)) return BE_OK;
  if (PQstatus(c->pq) != CONNECTION_OK || PQsocket(c->pq) < 0)
    return be__error_set(err, BE_E_CONN_LOST, "postgres wait failed: the connection is closed");
  struct pollfd fds[2] = {{PQsocket(c->pq), POLLIN, 0}, {wake_fd, POLLIN, 0}};
  int ms = timeout_ms < 0 ? 0 : timeout_ms > INT_MAX ? INT_MAX
                                                     : (int)timeout_ms;
  int n = poll(fds, wake_fd >= 0 ? 2 : 1, ms);
  if (n < 0 && errno != EINTR)
    return be__error_set(err, BE_E_STORAGE, "postgres wait failed: poll: %s", strerror(errno));
  if (n > 0 && fds[0].revents != 0) {
    if (!PQconsumeInput(c->pq) || PQstatus(c->pq) == CONNECTION_BAD)
      return pg_fail(err, c, NULL, "wait");
    take_notify(c, got, payload, cap, out_len);
  }
  return BE_OK;
}

static const be_driver pg_table = {
  .version = BE_DRIVER_VERSION,
  .name = "postgres",
  .driver_data = NULL,
  .placeholder_style = BE_PLACEHOLDER_DOLLAR,
  .features = BE_FEATURE_RETURNING | BE_FEATURE_SAVEPOINTS | BE_FEATURE_ARRAY_PARAM,
  .open = pg_open,
  .close = pg_close,
  .prepare = pg_prepare,
  .bind_null = pg_bind_null,
  .bind_int64 = pg_bind_int64,
  .bind_double = pg_bind_double,
  .bind_text = pg_bind_text,
  .bind_blob = pg_bind_blob,
  .step = pg_step,
  .column_count = pg_column_count,
  .column_name = pg_column_name,
  .column_type = pg_column_type,
  .column_int64 = pg_column_int64,
  .column_double = pg_column_double,
  .column_text = pg_column_text,
  .column_blob = pg_column_blob,
  .reset = pg_reset,
  .finalize = pg_finalize,
  .exec = pg_exec,
  .begin = pg_begin,
  .commit = pg_commit,
  .rollback = pg_rollback,
  .savepoint = pg_savepoint,
  .release = pg_release,
  .rollback_to = pg_rollback_to,
  .last_insert_id = pg_last_insert_id,
  .changes = pg_changes,
  .ping = pg_ping,
  .bind_limit = pg_bind_limit,
  .in_transaction = pg_in_transaction,
  .next_statement = pg_next_statement,
  .table_exists = pg_table_exists,
  .open_existing = pg_open,
  .bind_text_static = NULL,
  .column_value = pg_column_value,
  .status = NULL,
  .listen = pg_listen,
  .notify = pg_notify,
  .wait_notification = pg_wait_notification,
};

const be_driver *be__pg_driver(void) { return &pg_table; }
