/* SPDX-License-Identifier: MIT */
/* The services' SQL plumbing; see svc_sql.h. */
#include "svc_sql.h"

#include <backend/pool.h>

#include <stdarg.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "metrics.h"

int be__svc_acquire(const be__app_res *res, be_conn **out, be_error **err) {
  be__op_timer t;
  *out = NULL;
  be__metrics_begin(res->metrics, BE_OP_POOL_ACQUIRE, &t);
  int rc = be_pool_acquire_at(out, res->pool, __FILE__, __LINE__, err);
  be__metrics_end(res->metrics, &t, BE_OP_POOL_ACQUIRE, rc);
  return rc;
}

void be__svc_release(const be__app_res *res, be_conn *conn) { be_pool_release(res->pool, conn); }

int be__svc_write(const be__app_res *res, be_tx_fn fn, void *ud, be_error **err) {
  be_conn *conn = NULL;
  int rc = be__svc_acquire(res, &conn, err);
  if (rc != BE_OK) return rc;
  rc = be_tx_run(conn, BE_TX_IMMEDIATE, fn, ud, err);
  be__svc_release(res, conn);
  return rc;
}

static int bind_one(be_stmt *st, int32_t at, char type, va_list *ap, be_error **err) {
  switch (type) {
    case 'i': return be_stmt_bind_int64(st, at, va_arg(*ap, int64_t), err);
    case 't': return be_stmt_bind_text(st, at, va_arg(*ap, const char *), BE_NUL_TERMINATED, err);
    case 's': {
      const char *s = va_arg(*ap, const char *);
      return be_stmt_bind_text(st, at, s, va_arg(*ap, size_t), err);
    }
    case 'h':
      return be_stmt_bind_blob(st, at, va_arg(*ap, const uint8_t *), BE__SVC_HASH_BYTES, err);
    default: return be__error_set(err, BE_E_INTERNAL, "svc_sql: bad bind type '%c'", type);
  }
}

/* A statement to prepare: its text. */
typedef struct src {
  const char *text;
} src;

static int vprepare(be_conn *conn, be_stmt **out, be_error **err, const src *sql,
                    const char *types, va_list *ap) {
  *out = NULL;
  be_stmt *st = NULL;
  int rc = be_conn_prepare(&st, conn, sql->text, err);
  for (int32_t i = 0; rc == BE_OK && types[i] != '\0'; i++) rc = bind_one(st, i + 1, types[i], ap, err);
  if (rc != BE_OK) {
    be_stmt_finalize(st);
    return rc;
  }
  *out = st;
  return BE_OK;
}

int be__svc_exec(be_conn *conn, int64_t *out_changes, be_error **err, const char *sql,
                 const char *types, ...) {
  if (out_changes) *out_changes = 0;
  be_stmt *st = NULL;
  va_list ap;
  va_start(ap, types);
  src q = {sql};
  int rc = vprepare(conn, &st, err, &q, types, &ap);
  va_end(ap);
  if (rc != BE_OK) return rc;
  do rc = be_stmt_step(st, err);
  while (rc == BE_ROW);
  be_stmt_finalize(st);
  if (rc != BE_DONE) return rc;
  if (out_changes) *out_changes = be_conn_changes(conn);
  return BE_OK;
}

/* Step the prepared and bound st once, row(st, ud) reading a row, and
 * finalize it: be__svc_first's result. */
static int first_row(be_stmt *st, be__svc_row_fn row, void *ud, be_error **err) {
  int rc = be_stmt_step(st, err);
  if (rc == BE_ROW && row != NULL) {
    int r = row(st, ud, err);
    if (r != BE_OK) rc = r;
  }
  be_stmt_finalize(st);
  return rc;
}

static int vfirst(be_conn *conn, be__svc_row_fn row, void *ud, be_error **err, const src *sql,
                  const char *types, va_list *ap) {
  be_stmt *st = NULL;
  int rc = vprepare(conn, &st, err, sql, types, ap);
  return rc == BE_OK ? first_row(st, row, ud, err) : rc;
}

int be__svc_first(be_conn *conn, be__svc_row_fn row, void *ud, be_error **err, const char *sql,
                  const char *types, ...) {
  va_list ap;
  va_start(ap, types);
  src q = {sql};
  int rc = vfirst(conn, row, ud, err, &q, types, &ap);
  va_end(ap);
  return rc;
}

typedef struct ints {
  int64_t *v;
  int32_t n;
} ints;

static int read_ints(be_stmt *st, void *ud, be_error **err) {
  (void)err;
  ints *x = ud;
  for (int32_t i = 0; i < x->n; i++) x->v[i] = be_stmt_column_int64(st, i);
  return BE_OK;
}

int be__svc_ints(be_conn *conn, int64_t *out, int32_t n, be_error **err, const char *sql,
                 const char *types, ...) {
  ints x = {out, n};
  va_list ap;
  va_start(ap, types);
  src q = {sql};
  int rc = vfirst(conn, read_ints, &x, err, &q, types, &ap);
  va_end(ap);
  return rc;
}

static int veach(be_conn *conn, be__svc_row_fn row, void *ud, be_error **err, const src *sql,
                 const char *types, va_list *ap) {
  be_stmt *st = NULL;
  int rc = vprepare(conn, &st, err, sql, types, ap);
  if (rc != BE_OK) return rc;
  while ((rc = be_stmt_step(st, err)) == BE_ROW && (rc = row(st, ud, err)) == BE_OK) {}
  be_stmt_finalize(st);
  return rc == BE_DONE ? BE_OK : rc;
}

int be__svc_each(be_conn *conn, be__svc_row_fn row, void *ud, be_error **err, const char *sql,
                 const char *types, ...) {
  va_list ap;
  va_start(ap, types);
  src q = {sql};
  int rc = veach(conn, row, ud, err, &q, types, &ap);
  va_end(ap);
  return rc;
}

/* How a row walk (vfirst, veach) is run. */
typedef int (*walk_fn)(be_conn *conn, be__svc_row_fn row, void *ud, be_error **err,
                       const src *sql, const char *types, va_list *ap);

/* walk on a connection of the app's pool. */
static int vpooled(const be__app_res *res, walk_fn walk, be__svc_row_fn row, void *ud,
                   be_error **err, const src *sql, const char *types, va_list *ap) {
  be_conn *conn = NULL;
  int rc = be__svc_acquire(res, &conn, err);
  if (rc != BE_OK) return rc;
  rc = walk(conn, row, ud, err, sql, types, ap);
  be__svc_release(res, conn);
  return rc;
}

int be__svc_first_pooled(const be__app_res *res, be__svc_row_fn row, void *ud, be_error **err,
                         const char *sql, const char *types, ...) {
  va_list ap;
  va_start(ap, types);
  src q = {sql};
  int rc = vpooled(res, vfirst, row, ud, err, &q, types, &ap);
  va_end(ap);
  return rc;
}

int be__svc_first_pooled_id(const be__app_res *res, be__svc_row_fn row, void *ud, be_error **err,
                            const be_sql *sql, int64_t id) {
  be_conn *conn = NULL;
  int rc = be__svc_acquire(res, &conn, err);
  if (rc != BE_OK) return rc;
  be_stmt *st = NULL;
  rc = be_conn_prepare_sql(&st, conn, sql, err);
  if (rc == BE_OK && (rc = be_stmt_bind_int64(st, 1, id, err)) != BE_OK) be_stmt_finalize(st);
  if (rc == BE_OK) rc = first_row(st, row, ud, err);
  be__svc_release(res, conn);
  return rc;
}

int be__svc_each_pooled(const be__app_res *res, be__svc_row_fn row, void *ud, be_error **err,
                        const char *sql, const char *types, ...) {
  va_list ap;
  va_start(ap, types);
  src q = {sql};
  int rc = vpooled(res, veach, row, ud, err, &q, types, &ap);
  va_end(ap);
  return rc;
}

void be__svc_copy_text(be_stmt *st, int32_t col, char *dst, size_t cap, int *fits) {
  size_t n = 0;
  const char *s = be_stmt_column_text(st, col, &n);
  if (fits) *fits = s != NULL && n < cap;
  if (s == NULL) n = 0;
  if (n >= cap) n = cap - 1;
  memcpy(dst, s ? s : "", n);
  dst[n] = '\0';
}

char *be__svc_dup_text(be_stmt *st, int32_t col) {
  size_t n = 0;
  const char *s = be_stmt_column_text(st, col, &n);
  return be__strndup(s ? s : "", s ? n : 0);
}
