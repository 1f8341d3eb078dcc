/* SPDX-License-Identifier: MIT */
#include "auth_sql.h"

#include <stdarg.h>
#include <string.h>

#include "error.h"
#include "svc.h"

/* The services' shared plumbing (svc.c), so every service takes and
 * returns connections and runs write transactions the same way. */
int be__auth_acquire(be__auth *auth, be_conn **out, be_error **err) {
  return be__svc_acquire(auth->res, out, err);
}

void be__auth_release(be__auth *auth, be_conn *conn) { be__svc_release(auth->res, conn); }

int be__auth_tx(be__auth *auth, be_tx_fn fn, void *ud, be_error **err) {
  return be__svc_write(auth->res, fn, ud, err);
}

void be__sql_copy_text(be_stmt *st, int32_t col, char *dst, size_t cap, int *fits) {
  size_t n = 0;
  const char *s = be_stmt_column_text(st, col, &n);
  if (fits) *fits = s != NULL && n < cap;
  if (s == NULL) n = 0;
  if (n >= cap) n = cap - 1;
  memcpy(dst, s ? s : "", n);
  dst[n] = '\0';
}

static int bind_all(be_stmt *st, const char *types, va_list ap, be_error **err) {
  for (int32_t i = 0; types[i] != '\0'; i++) {
    int rc;
    switch (types[i]) {
      case 'i': rc = be_stmt_bind_int64(st, i + 1, va_arg(ap, int64_t), err); break;
      case 't': rc = be_stmt_bind_text(st, i + 1, va_arg(ap, const char *), (size_t)-1, err); break;
      case 'h':
        rc = be_stmt_bind_blob(st, i + 1, va_arg(ap, const uint8_t *), BE__TOKEN_HASH_BYTES, err);
        break;
      default: rc = be__error_set(err, BE_E_INTERNAL, "auth: bad bind type '%c'", types[i]);
    }
    if (rc != BE_OK) return rc;
  }
  return BE_OK;
}

static int vsql(be_conn *conn, be_stmt **out, be_error **err, const char *sql, const char *types,
                va_list ap) {
  *out = NULL;
  be_stmt *st = NULL;
  int rc = be_conn_prepare(&st, conn, sql, err);
  if (rc != BE_OK) return rc;
  rc = bind_all(st, types, ap, err);
  if (rc != BE_OK) {
    be_stmt_finalize(st);
    return rc;
  }
  *out = st;
  return BE_OK;
}

int be__sql(be_conn *conn, be_stmt **out, be_error **err, const char *sql, const char *types, ...) {
  va_list ap;
  va_start(ap, types);
  int rc = vsql(conn, out, err, sql, types, ap);
  va_end(ap);
  return rc;
}

int be__sql_exec(be_conn *conn, int64_t *out_changes, be_error **err, const char *sql,
                 const char *types, ...) {
  if (out_changes) *out_changes = 0;
  be_stmt *st = NULL;
  va_list ap;
  va_start(ap, types);
  int rc = vsql(conn, &st, err, sql, types, ap);
  va_end(ap);
  if (rc != BE_OK) return rc;
  do rc = be_stmt_step(st, err);
  while (rc == BE_ROW);
  be_stmt_finalize(st);
  if (rc != BE_DONE) return rc;
  if (out_changes) *out_changes = be_conn_changes(conn);
  return BE_OK;
}
