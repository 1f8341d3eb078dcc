/* SPDX-License-Identifier: MIT */
#include <backend/loader.h>

#include <string.h>

#include "alloc.h"
#include "batch.h"
#include "error.h"
#include "utf8.h"

struct be_loader {
  be_conn *conn;
  be_batch_options opts; /* strings point into `strings` */
  char *strings;
  const char **arrays; /* columns then order_by */
  be__key_set pending;
  be_batch_result **results; /* one per dispatch, searched newest first */
  size_t nresults, capresults;
  int64_t dispatches;
};

/* Deep-copy the strings of opts into one block. */
static int copy_opts(be_loader *l, const be_batch_options *o) {
  size_t total = strlen(o->table) + strlen(o->key_column) + 2 + (o->where ? strlen(o->where) + 1 : 0);
  for (size_t i = 0; i < o->column_count; i++) total += strlen(o->columns[i]) + 1;
  for (size_t i = 0; i < o->order_by_count; i++) total += strlen(o->order_by[i]) + 1;
  l->strings = be__malloc(total);
  l->arrays = be__malloc((o->column_count + o->order_by_count) * sizeof *l->arrays);
  if (l->strings == NULL || l->arrays == NULL) return 0;
  char *p = l->strings;
#define DUP(dst, src)            \
  do {                           \
    size_t n_ = strlen(src) + 1; \
    memcpy(p, src, n_);          \
    dst = p;                     \
    p += n_;                     \
  } while (0)
  l->opts = *o;
  DUP(l->opts.table, o->table);
  DUP(l->opts.key_column, o->key_column);
  if (o->where) DUP(l->opts.where, o->where);
  for (size_t i = 0; i < o->column_count; i++) DUP(l->arrays[i], o->columns[i]);
  for (size_t i = 0; i < o->order_by_count; i++) DUP(l->arrays[o->column_count + i], o->order_by[i]);
#undef DUP
  l->opts.columns = l->arrays;
  l->opts.order_by = o->order_by_count ? l->arrays + o->column_count : NULL;
  return 1;
}

int be_loader_new(be_loader **out, be_conn *conn, const be_batch_options *opts, int32_t key_type,
                  be_error **err) {
  if (out == NULL) return be__error_set(err, BE_E_MISUSE, "out is NULL");
  *out = NULL;
  if (conn == NULL) return be__error_set(err, BE_E_MISUSE, "conn is NULL");
  if (key_type != BE_TYPE_INT && key_type != BE_TYPE_TEXT)
    return be__error_set(err, BE_E_MISUSE, "key_type must be BE_TYPE_INT or BE_TYPE_TEXT");
  int rc = be__batch_check_opts(opts, err);
  if (rc != BE_OK) return rc;
  be_loader *l = be__calloc(1, sizeof *l);
  if (l == NULL) return be__error_oom(err);
  l->conn = conn;
  be__key_set_init(&l->pending, key_type);
  if (!copy_opts(l, opts)) {
    be_loader_free(l);
    return be__error_oom(err);
  }
  *out = l;
  return BE_OK;
}

void be_loader_clear(be_loader *loader) {
  if (loader == NULL) return;
  for (size_t i = 0; i < loader->nresults; i++) be_batch_result_free(loader->results[i]);
  loader->nresults = 0;
  be__key_set_clear(&loader->pending);
}

void be_loader_free(be_loader *loader) {
  if (loader == NULL) return;
  be_loader_clear(loader);
  be__free(loader->results);
  be__key_set_free(&loader->pending);
  be__free(loader->strings);
  be__free(loader->arrays);
  be__free(loader);
}

/* The result holding a key, and the key's index in it. */
static be_batch_result *memo(const be_loader *l, int64_t ikey, const char *tkey, size_t len,
                             size_t *index) {
  for (size_t i = l->nresults; i-- > 0;)
    if (be__batch_result_find(l->results[i], l->pending.type, ikey, tkey, len, index))
      return l->results[i];
  return NULL;
}

static int want(be_loader *l, int32_t type, int64_t ikey, const char *tkey, size_t len,
                be_error **err) {
  if (l == NULL) return be__error_set(err, BE_E_MISUSE, "loader is NULL");
  if (type != l->pending.type) return be__error_set(err, BE_E_MISUSE, "key type does not match the loader");
  if (type == BE_TYPE_TEXT) {
    if (tkey == NULL) return be__error_set(err, BE_E_MISUSE, "key is NULL");
    if (!be__utf8_valid(tkey, len)) return be__error_field(err, "key", "must be UTF-8 text without NUL bytes");
  }
  size_t idx;
  if (memo(l, ikey, tkey, len, &idx)) return BE_OK;
  int added = type == BE_TYPE_INT ? be__key_set_add_int(&l->pending, ikey, NULL)
                                  : be__key_set_add_text(&l->pending, tkey, len, NULL);
  return added < 0 ? be__error_oom(err) : BE_OK;
}

int be_loader_want_int64(be_loader *loader, int64_t key, be_error **err) {
  return want(loader, BE_TYPE_INT, key, NULL, 0, err);
}

int be_loader_want_text(be_loader *loader, const char *key, size_t len, be_error **err) {
  if (key) key = be__text_arg(key, &len);
  return want(loader, BE_TYPE_TEXT, 0, key, len, err);
}

int be_loader_dispatch(be_loader *loader, be_error **err) {
  if (loader == NULL) return be__error_set(err, BE_E_MISUSE, "loader is NULL");
  if (loader->pending.n == 0) return BE_OK;
  if (loader->nresults == loader->capresults) {
    size_t cap = loader->capresults ? loader->capresults * 2 : 4;
    be_batch_result **r = be__realloc(loader->results, cap * sizeof *r);
    if (r == NULL) {
      be__key_set_clear(&loader->pending);
      return be__error_oom(err);
    }
    loader->results = r;
    loader->capresults = cap;
  }
  be_batch_result *res = NULL;
  int rc = be__batch_run(&res, loader->conn, &loader->opts, &loader->pending, err);
  if (rc != BE_OK) return rc;
  loader->results[loader->nresults++] = res;
  loader->dispatches++;
  return BE_OK;
}

static int get(const be_rows **out_rows, size_t *out_first, size_t *out_count, be_loader *l,
               int32_t type, int64_t ikey, const char *tkey, size_t len, be_error **err) {
  if (out_rows) *out_rows = NULL;
  if (out_first) *out_first = 0;
  if (out_count) *out_count = 0;
  if (out_rows == NULL || out_first == NULL || out_count == NULL)
    return be__error_set(err, BE_E_MISUSE, "an out pointer is NULL");
  if (l == NULL) return be__error_set(err, BE_E_MISUSE, "loader is NULL");
  if (type != l->pending.type) return be__error_set(err, BE_E_MISUSE, "key type does not match the loader");
  if (type == BE_TYPE_TEXT && tkey == NULL) return be__error_set(err, BE_E_MISUSE, "key is NULL");
  size_t idx;
  be_batch_result *r = memo(l, ikey, tkey, len, &idx);
  if (r == NULL) {
    int rc = want(l, type, ikey, tkey, len, err);
    if (rc == BE_OK) rc = be_loader_dispatch(l, err);
    if (rc != BE_OK) return rc;
    r = memo(l, ikey, tkey, len, &idx);
    if (r == NULL) return be__error_set(err, BE_E_INTERNAL, "loaded key is missing from the memo");
  }
  *out_rows = be_batch_result_rows(r);
  *out_count = be_batch_result_group(r, idx, out_first);
  return BE_OK;
}

int be_loader_get_int64(const be_rows **out_rows, size_t *out_first, size_t *out_count,
                        be_loader *loader, int64_t key, be_error **err) {
  return get(out_rows, out_first, out_count, loader, BE_TYPE_INT, key, NULL, 0, err);
}

int be_loader_get_text(const be_rows **out_rows, size_t *out_first, size_t *out_count,
                       be_loader *loader, const char *key, size_t len, be_error **err) {
  if (key) key = be__text_arg(key, &len);
  return get(out_rows, out_first, out_count, loader, BE_TYPE_TEXT, 0, key, len, err);
}

int64_t be_loader_dispatch_count(const be_loader *loader) { return loader ? loader->dispatches : 0; }

size_t be_loader_pending_count(const be_loader *loader) { return loader ? loader->pending.n : 0; }
