/* SPDX-License-Identifier: MIT */
#include <backend/params.h>

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "params.h"
#include "utf8.h"

typedef struct value {
  int32_t type; /* BE_TYPE_* */
  size_t len;
  union {
    int64_t i;
    double d;
    char *p; /* text (NUL-terminated) or blob, owned */
  } u;
} value;

struct be_params {
  value *v;
  size_t n, cap;
};

int be_params_new(be_params **out, be_error **err) {
  if (out == NULL) return be__error_set(err, BE_E_MISUSE, "out is NULL");
  *out = be__calloc(1, sizeof **out);
  return *out ? BE_OK : be__error_oom(err);
}

void be_params_clear(be_params *params) {
  if (params == NULL) return;
  for (size_t i = 0; i < params->n; i++)
    if (params->v[i].type == BE_TYPE_TEXT || params->v[i].type == BE_TYPE_BLOB)
      be__free(params->v[i].u.p);
  params->n = 0;
}

void be_params_free(be_params *params) {
  if (params == NULL) return;
  be_params_clear(params);
  be__free(params->v);
  be__free(params);
}

size_t be_params_count(const be_params *params) { return params ? params->n : 0; }

/* Reserve the next slot; NULL on allocation failure. */
static value *next_slot(be_params *p) {
  if (p->n == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 4;
    value *v = be__realloc(p->v, cap * sizeof *v);
    if (v == NULL) return NULL;
    p->v = v;
    p->cap = cap;
  }
  return &p->v[p->n];
}

static int add_scalar(be_params *p, int32_t type, int64_t i, double d, be_error **err) {
  if (p == NULL) return be__error_set(err, BE_E_MISUSE, "params is NULL");
  value *v = next_slot(p);
  if (v == NULL) return be__error_oom(err);
  v->type = type;
  v->len = 0;
  if (type == BE_TYPE_FLOAT) v->u.d = d;
  else v->u.i = i;
  p->n++;
  return BE_OK;
}

int be_params_add_null(be_params *params, be_error **err) {
  return add_scalar(params, BE_TYPE_NULL, 0, 0, err);
}

int be_params_add_int64(be_params *params, int64_t value, be_error **err) {
  return add_scalar(params, BE_TYPE_INT, value, 0, err);
}

int be_params_add_double(be_params *params, double value, be_error **err) {
  return add_scalar(params, BE_TYPE_FLOAT, 0, value, err);
}

static int add_bytes(be_params *p, int32_t type, const void *data, size_t len, be_error **err) {
  if (p == NULL) return be__error_set(err, BE_E_MISUSE, "params is NULL");
  if (data == NULL && len != 0) return be__error_set(err, BE_E_MISUSE, "value is NULL");
  if (type == BE_TYPE_TEXT && data != NULL) data = be__text_arg(data, &len);
  if (type == BE_TYPE_TEXT && !be__utf8_valid(data ? data : "", len)) {
    char field[32];
    snprintf(field, sizeof field, "params[%zu]", p->n);
    return be__error_field(err, field, "is not valid UTF-8 text without NUL bytes");
  }
  value *v = next_slot(p);
  if (v == NULL) return be__error_oom(err);
  char *copy = be__malloc(len + 1);
  if (copy == NULL) return be__error_oom(err);
  if (len) memcpy(copy, data, len);
  copy[len] = '\0';
  v->type = type;
  v->len = len;
  v->u.p = copy;
  p->n++;
  return BE_OK;
}

int be_params_add_text(be_params *params, const char *value, size_t len, be_error **err) {
  return add_bytes(params, BE_TYPE_TEXT, value, len, err);
}

int be_params_add_blob(be_params *params, const void *value, size_t len, be_error **err) {
  return add_bytes(params, BE_TYPE_BLOB, value, len, err);
}

int be__params_bind(const be_params *params, be_stmt *stmt, int32_t first, be_error **err) {
  if (params == NULL) return BE_OK;
  for (size_t i = 0; i < params->n; i++) {
    const value *v = &params->v[i];
    int32_t idx = first + (int32_t)i;
    int rc;
    switch (v->type) {
      case BE_TYPE_INT: rc = be_stmt_bind_int64(stmt, idx, v->u.i, err); break;
      case BE_TYPE_FLOAT: rc = be_stmt_bind_double(stmt, idx, v->u.d, err); break;
      case BE_TYPE_TEXT: rc = be_stmt_bind_text(stmt, idx, v->u.p, v->len, err); break;
      case BE_TYPE_BLOB: rc = be_stmt_bind_blob(stmt, idx, v->u.p, v->len, err); break;
      default: rc = be_stmt_bind_null(stmt, idx, err); break;
    }
    if (rc != BE_OK) return rc;
  }
  return BE_OK;
}
