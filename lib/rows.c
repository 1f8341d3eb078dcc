/* SPDX-License-Identifier: MIT */
#include <backend/rows.h>

#include <string.h>

#include "alloc.h"
#include "error.h"
#include "params.h"
#include "rows.h"
#include "storage.h"

typedef be__cell cell;

/* Bytes are bump-allocated from large chunks: one result set costs a few
 * allocations however many values it holds. */
typedef struct chunk {
  struct chunk *next;
  size_t used, cap;
  char data[];
} chunk;

#define CHUNK_MIN 16384

#if defined(__GNUC__) || defined(__clang__)
#  define UNLIKELY(x) __builtin_expect(!!(x), 0)
#  define LIKELY(x) __builtin_expect(!!(x), 1)
#  define OUT_OF_LINE __attribute__((noinline))
#else
#  define UNLIKELY(x) (x)
#  define LIKELY(x) (x)
#  define OUT_OF_LINE
#endif

/* Rows land in blocks that never move (a growing result costs no copies)
 * and stay there; be__rows_finish indexes them, in arrival order or
 * grouped. Each row carries its group. */
typedef struct block {
  struct block *next;
  size_t n, cap;  /* rows */
  int32_t whole;  /* a BE__BLOCK_SIZE block (be__block_alloc) */
  uint32_t *tags; /* per row: its group */
  cell cells[];   /* cap * ncols, row-major */
} block;

/* Blocks double from 16 rows up to BE__BLOCK_SIZE bytes: below malloc's
 * mmap threshold, so a large result costs no page faults of fresh
 * mappings on every load (4096-row blocks of 3 columns took ~150 more per
 * 10,000 rows), and whole ones are kept for the next result when freed
 * (be__block_free). */
#define BLOCK_MIN 16

struct be_rows {
  int32_t ncols;
  char **names;
  cell **rowp; /* per row: its ncols cells, once finished */
  size_t nrows;
  block *head, *tail;
  chunk *arena;
};

OUT_OF_LINE static char *arena_alloc(be_rows *r, size_t n) {
  chunk *c = r->arena;
  if (c == NULL || c->cap - c->used < n) {
    size_t cap = n > CHUNK_MIN ? n : CHUNK_MIN, whole = BE__BLOCK_SIZE - sizeof *c;
    if (c && cap < whole) { /* double towards a whole block, then stay there */
      size_t next = c->cap < whole / 2 ? c->cap * 2 : whole;
      if (next > cap) cap = next;
    }
    chunk *nc = cap == whole ? be__block_alloc() : be__malloc(sizeof *nc + cap);
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

static void free_blocks(be_rows *r) {
  for (block *b = r->head, *next; b; b = next) {
    next = b->next;
    if (b->whole) be__block_free(b);
    else be__free(b);
  }
  r->head = r->tail = NULL;
}

void be_rows_free(be_rows *rows) {
  if (rows == NULL) return;
  for (chunk *c = rows->arena, *next; c; c = next) {
    next = c->next;
    if (sizeof *c + c->cap == BE__BLOCK_SIZE) be__block_free(c);
    else be__free(c);
  }
  free_blocks(rows);
  be__free(rows->names);
  be__free(rows->rowp);
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

OUT_OF_LINE static block *add_block(be_rows *r) {
  size_t per = (size_t)(r->ncols > 0 ? r->ncols : 1);
  size_t cap = r->tail ? r->tail->cap * 2 : BLOCK_MIN;
  size_t most = (BE__BLOCK_SIZE - sizeof(block)) / (per * sizeof(cell) + sizeof(uint32_t));
  int whole = cap >= most && most >= BLOCK_MIN;
  if (cap > most) cap = most > BLOCK_MIN ? most : BLOCK_MIN;
  if (per > (SIZE_MAX - sizeof(block)) / cap / (sizeof(cell) + sizeof(uint32_t))) return NULL;
  block *b = whole ? be__block_alloc()
                   : be__malloc(sizeof *b + cap * per * sizeof(cell) + cap * sizeof(uint32_t));
  if (b == NULL) return NULL;
  b->whole = whole;
  b->next = NULL;
  b->n = 0;
  b->cap = cap;
  b->tags = (uint32_t *)(b->cells + cap * per);
  if (r->tail) r->tail->next = b;
  else r->head = b;
  r->tail = b;
  return b;
}

/* Text and blob bytes of v (read from the driver) into the arena. */
static inline int keep_bytes(be_rows *r, cell *v) {
  size_t n = v->u.p ? v->len : 0;
  chunk *c = r->arena;
  char *p;
  if (LIKELY(c != NULL && c->cap - c->used > n)) {
    p = c->data + c->used;
    c->used += n + 1;
  } else if ((p = arena_alloc(r, n + 1)) == NULL) {
    return 0;
  }
  if (n) memcpy(p, v->u.p, n);
  p[n] = '\0';
  v->u.p = p;
  v->len = n;
  return 1;
}

/* Column c of the current row through storage's checked read (a driver
 * without column_value, or a row shorter than the result). */
static int32_t read_checked(be_stmt *stmt, int32_t c, cell *v) {
  be__value x;
  be__stmt_column_value(stmt, c, &x);
  v->len = x.len;
  if (x.type == BE_TYPE_INT) v->u.i = x.i;
  else if (x.type == BE_TYPE_FLOAT) v->u.d = x.d;
  else v->u.p = x.p;
  return x.type;
}

/* Columns [0, ncols) of the current row a value at a time (a driver
 * without a whole-row read). */
OUT_OF_LINE static void read_values(const be__row_reader *rd, be_stmt *stmt, int32_t ncols,
                                    cell *v) {
  /* a short row (schema change) or no column_value: storage's checked read */
  be__column_value_fn value = rd->ncols >= ncols ? rd->value : NULL;
  for (int32_t c = 0; c < ncols; c++, v++) {
    v->len = 0;
    v->u.p = NULL;
    v->type = value ? value(rd->native, c, &v->u.i, &v->u.d, &v->u.p, &v->len) : read_checked(stmt, c, v);
  }
}

int be__rows_add(be_rows *r, const be__row_reader *rd, be_stmt *stmt, uint32_t group,
                 be_error **err) {
  block *b = r->tail;
  if (UNLIKELY(b == NULL || b->n == b->cap) && (b = add_block(r)) == NULL) return be__error_oom(err);
  int32_t ncols = r->ncols;
  cell *row = b->cells + b->n * (size_t)ncols;
  if (LIKELY(rd->row != NULL && rd->ncols >= ncols)) rd->row(rd->native, ncols, row);
  else read_values(rd, stmt, ncols, row);
  for (cell *v = row; v < row + ncols; v++) {
    int32_t type = v->type;
    if (type == BE_TYPE_TEXT || type == BE_TYPE_BLOB) {
      if (!keep_bytes(r, v)) return be__error_oom(err);
    } else if (type != BE_TYPE_INT && type != BE_TYPE_FLOAT) {
      v->type = BE_TYPE_NULL;
      v->u.i = 0;
    }
  }
  b->tags[b->n++] = group;
  r->nrows++;
  return BE_OK;
}

/* Index the rows in arrival order (ngroups 0), or grouped: the rows of
 * group g at [first[g], first[g] + count[g]), in arrival order inside a
 * group (a stable counting sort). */
int be__rows_finish(be_rows *r, size_t ngroups, size_t *first, size_t *count, be_error **err) {
  size_t per = (size_t)r->ncols;
  if ((r->rowp = be__malloc((r->nrows ? r->nrows : 1) * sizeof *r->rowp)) == NULL) return be__error_oom(err);
  if (ngroups == 0) {
    size_t at = 0;
    for (block *b = r->head; b; b = b->next)
      for (size_t i = 0; i < b->n; i++) r->rowp[at++] = b->cells + i * per;
    return BE_OK;
  }
  memset(count, 0, ngroups * sizeof *count);
  for (block *b = r->head; b; b = b->next)
    for (size_t i = 0; i < b->n; i++) count[b->tags[i]]++;
  size_t at = 0;
  for (size_t g = 0; g < ngroups; g++) {
    first[g] = at;
    at += count[g];
  }
  /* first[] doubles as the fill cursor, then is restored */
  for (block *b = r->head; b; b = b->next)
    for (size_t i = 0; i < b->n; i++) r->rowp[first[b->tags[i]]++] = b->cells + i * per;
  for (size_t g = 0; g < ngroups; g++) first[g] -= count[g];
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
  /* The shape is read after the first step: a statement prepared (and
   * cached) before a schema change is prepared again by that step, and
   * until then reports the old columns. */
  int s = rc == BE_OK ? be_stmt_step(stmt, err) : rc;
  if (s == BE_ROW || s == BE_DONE) rc = be__rows_new(&r, be_stmt_column_count(stmt), NULL, stmt, err);
  be__row_reader rd = {0};
  if (rc == BE_OK && s == BE_ROW) be__stmt_row_reader(stmt, &rd);
  while (rc == BE_OK && s == BE_ROW) {
    rc = be__rows_add(r, &rd, stmt, 0, err);
    if (rc == BE_OK) s = be_stmt_step(stmt, err);
  }
  if (rc == BE_OK && s != BE_DONE) rc = s < 0 ? s : BE_E_INTERNAL;
  if (rc == BE_OK) rc = be__rows_finish(r, 0, NULL, NULL, err);
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

/* What an out-of-range row or column reads as. */
static const cell null_cell = {BE_TYPE_NULL, 0, {0}};

static inline const cell *cell_at(const be_rows *r, size_t row, int32_t column) {
  /* ncols >= 0: one unsigned compare checks both ends of column */
  if (UNLIKELY(r == NULL || row >= r->nrows || (uint32_t)column >= (uint32_t)r->ncols)) return &null_cell;
  return &r->rowp[row][column];
}

int32_t be_rows_type(const be_rows *rows, size_t row, int32_t column) {
  return cell_at(rows, row, column)->type;
}

int64_t be_rows_int64(const be_rows *rows, size_t row, int32_t column) {
  const cell *v = cell_at(rows, row, column);
  if (LIKELY(v->type == BE_TYPE_INT)) return v->u.i;
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
  if (v->type == BE_TYPE_FLOAT) return v->u.d;
  if (v->type == BE_TYPE_INT) return (double)v->u.i;
  return 0.0;
}

const char *be_rows_text(const be_rows *rows, size_t row, int32_t column, size_t *len) {
  const cell *v = cell_at(rows, row, column);
  int ok = v->type == BE_TYPE_TEXT;
  if (len) *len = ok ? v->len : 0;
  return ok ? v->u.p : NULL;
}

const void *be_rows_blob(const be_rows *rows, size_t row, int32_t column, size_t *len) {
  const cell *v = cell_at(rows, row, column);
  int ok = v->type == BE_TYPE_TEXT || v->type == BE_TYPE_BLOB;
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
