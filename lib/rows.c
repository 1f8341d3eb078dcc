/* SPDX-License-Identifier: MIT */
#include <backend/rows.h>

#include <string.h>

#include "alloc.h"
#include "error.h"
#include "params.h"
#include "rows.h"
#include "storage.h"

typedef struct cell {
  int32_t type;
  size_t len;
  union {
    int64_t i;
    double d;
    const char *p; /* into the arena */
  } u;
} cell;

/* Bytes are bump-allocated from large chunks: one result set costs a few
 * allocations however many values it holds. */
typedef struct chunk {
  struct chunk *next;
  size_t used, cap;
  char data[];
} chunk;

#define CHUNK_MIN 16384

struct be_rows {
  int32_t ncols;
  char **names;
  cell *cells; /* nrows * ncols, row-major */
  size_t nrows, cap_rows;
  chunk *arena;
};

static char *arena_alloc(be_rows *r, size_t n) {
  chunk *c = r->arena;
  if (c == NULL || c->cap - c->used < n) {
    size_t cap = n > CHUNK_MIN ? n : CHUNK_MIN;
    if (c && c->cap * 2 > cap && c->cap < (1u << 20)) cap = c->cap * 2;
    chunk *nc = be__malloc(sizeof *nc + cap);
    if (nc == NULL) return NULL;
    nc->used = 0;
    nc->cap = cap;
    nc->next = c;
    r->arena = c = nc;
  }
  char *p = c->data + c->used;
  c->used += n;
  return p;
}

static const char *arena_copy(be_rows *r, const void *src, size_t n) {
  char *p = arena_alloc(r, n + 1);
  if (p == NULL) return NULL;
  if (n) memcpy(p, src, n);
  p[n] = '\0';
  return p;
}

void be_rows_free(be_rows *rows) {
  if (rows == NULL) return;
  for (chunk *c = rows->arena, *next; c; c = next) {
    next = c->next;
    be__free(c);
  }
  be__free(rows->names);
  be__free(rows->cells);
  be__free(rows);
}

int be__rows_new(be_rows **out, int32_t ncols, const char *const *names, be_stmt *stmt,
                 be_error **err) {
  *out = NULL;
  be_rows *r = be__calloc(1, sizeof *r);
  if (r == NULL) return be__error_oom(err);
  r->ncols = ncols;
  if (ncols > 0) {
    r->names = be__calloc((size_t)ncols, sizeof *r->names);
    if (r->names == NULL) goto oom;
  }
  for (int32_t c = 0; c < ncols; c++) {
    const char *name = names ? names[c] : be_stmt_column_name(stmt, c);
    if (name == NULL) name = "";
    r->names[c] = (char *)arena_copy(r, name, strlen(name));
    if (r->names[c] == NULL) goto oom;
  }
  *out = r;
  return BE_OK;
oom:
  be_rows_free(r);
  return be__error_oom(err);
}

static int grow_rows(be_rows *r) {
  size_t cap = r->cap_rows ? r->cap_rows * 2 : 16;
  size_t per = (size_t)(r->ncols > 0 ? r->ncols : 1);
  if (cap > SIZE_MAX / sizeof(cell) / per) return 0;
  cell *cells = be__realloc(r->cells, cap * per * sizeof(cell));
  if (cells == NULL) return 0;
  r->cells = cells;
  r->cap_rows = cap;
  return 1;
}

int be__rows_add(be_rows *r, be_stmt *stmt, be_error **err) {
  if (r->nrows == r->cap_rows && !grow_rows(r)) return be__error_oom(err);
  cell *row = r->cells + r->nrows * (size_t)r->ncols;
  for (int32_t c = 0; c < r->ncols; c++) {
    cell *v = &row[c];
    be__value x;
    be__stmt_column_value(stmt, c, &x);
    v->type = x.type;
    v->len = 0;
    switch (x.type) {
      case BE_TYPE_INT: v->u.i = x.i; break;
      case BE_TYPE_FLOAT: v->u.d = x.d; break;
      case BE_TYPE_TEXT:
      case BE_TYPE_BLOB:
        v->u.p = arena_copy(r, x.p, x.p ? x.len : 0);
        if (v->u.p == NULL) return be__error_oom(err);
        v->len = x.p ? x.len : 0;
        break;
      default:
        v->type = BE_TYPE_NULL;
        v->u.i = 0;
        break;
    }
  }
  r->nrows++;
  return BE_OK;
}

int be__rows_permute(be_rows *r, const size_t *order, be_error **err) {
  if (r->nrows < 2 || r->ncols == 0) return BE_OK;
  size_t per = (size_t)r->ncols;
  cell *cells = be__malloc(r->nrows * per * sizeof(cell));
  if (cells == NULL) return be__error_oom(err);
  for (size_t i = 0; i < r->nrows; i++)
    memcpy(cells + i * per, r->cells + order[i] * per, per * sizeof(cell));
  be__free(r->cells);
  r->cells = cells;
  r->cap_rows = r->nrows;
  return BE_OK;
}

int be_rows_query(be_rows **out, be_conn *conn, const char *sql, const be_params *params,
                  be_error **err) {
  if (out == NULL) return be__error_set(err, BE_E_MISUSE, "out is NULL");
  *out = NULL;
  if (conn == NULL || sql == NULL)
    return be__error_set(err, BE_E_MISUSE, "conn or sql is NULL");
  be_stmt *stmt = NULL;
  be_rows *r = NULL;
  int rc = be_conn_prepare(&stmt, conn, sql, err);
  if (rc != BE_OK) return rc;
  rc = be__params_bind(params, stmt, 1, err);
  if (rc == BE_OK) rc = be__rows_new(&r, be_stmt_column_count(stmt), NULL, stmt, err);
  while (rc == BE_OK) {
    int s = be_stmt_step(stmt, err);
    if (s == BE_DONE) break;
    rc = s == BE_ROW ? be__rows_add(r, stmt, err) : (s < 0 ? s : BE_E_INTERNAL);
  }
  be_stmt_finalize(stmt);
  if (rc != BE_OK) {
    be_rows_free(r);
    return rc;
  }
  *out = r;
  return BE_OK;
}

size_t be_rows_count(const be_rows *rows) { return rows ? rows->nrows : 0; }

int32_t be_rows_column_count(const be_rows *rows) { return rows ? rows->ncols : 0; }

const char *be_rows_column_name(const be_rows *rows, int32_t column) {
  if (rows == NULL || column < 0 || column >= rows->ncols) return NULL;
  return rows->names[column];
}

int32_t be_rows_column_index(const be_rows *rows, const char *name) {
  if (rows == NULL || name == NULL) return -1;
  for (int32_t c = 0; c < rows->ncols; c++)
    if (strcmp(rows->names[c], name) == 0) return c;
  return -1;
}

static const cell *cell_at(const be_rows *r, size_t row, int32_t column) {
  if (r == NULL || row >= r->nrows || column < 0 || column >= r->ncols) return NULL;
  return &r->cells[row * (size_t)r->ncols + (size_t)column];
}

int32_t be_rows_type(const be_rows *rows, size_t row, int32_t column) {
  const cell *v = cell_at(rows, row, column);
  return v ? v->type : BE_TYPE_NULL;
}

int64_t be_rows_int64(const be_rows *rows, size_t row, int32_t column) {
  const cell *v = cell_at(rows, row, column);
  if (v == NULL) return 0;
  if (v->type == BE_TYPE_INT) return v->u.i;
  if (v->type == BE_TYPE_FLOAT) {
    /* out-of-range doubles clamp instead of invoking undefined behaviour */
    if (v->u.d >= 9223372036854775807.0) return INT64_MAX;
    if (v->u.d <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)v->u.d;
  }
  return 0;
}

double be_rows_double(const be_rows *rows, size_t row, int32_t column) {
  const cell *v = cell_at(rows, row, column);
  if (v == NULL) return 0.0;
  if (v->type == BE_TYPE_FLOAT) return v->u.d;
  if (v->type == BE_TYPE_INT) return (double)v->u.i;
  return 0.0;
}

const char *be_rows_text(const be_rows *rows, size_t row, int32_t column, size_t *len) {
  const cell *v = cell_at(rows, row, column);
  int ok = v && v->type == BE_TYPE_TEXT;
  if (len) *len = ok ? v->len : 0;
  return ok ? v->u.p : NULL;
}

const void *be_rows_blob(const be_rows *rows, size_t row, int32_t column, size_t *len) {
  const cell *v = cell_at(rows, row, column);
  int ok = v && (v->type == BE_TYPE_TEXT || v->type == BE_TYPE_BLOB);
  if (len) *len = ok ? v->len : 0;
  return ok ? v->u.p : NULL;
}

int32_t be_rows_type_by_name(const be_rows *rows, size_t row, const char *name) {
  return be_rows_type(rows, row, be_rows_column_index(rows, name));
}

int64_t be_rows_int64_by_name(const be_rows *rows, size_t row, const char *name) {
  return be_rows_int64(rows, row, be_rows_column_index(rows, name));
}

double be_rows_double_by_name(const be_rows *rows, size_t row, const char *name) {
  return be_rows_double(rows, row, be_rows_column_index(rows, name));
}

const char *be_rows_text_by_name(const be_rows *rows, size_t row, const char *name, size_t *len) {
  return be_rows_text(rows, row, be_rows_column_index(rows, name), len);
}

const void *be_rows_blob_by_name(const be_rows *rows, size_t row, const char *name, size_t *len) {
  return be_rows_blob(rows, row, be_rows_column_index(rows, name), len);
}
