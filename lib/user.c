/* SPDX-License-Identifier: MIT */
/*
 * UserService. Profiles are cached under "user:{id}" in the app's cache
 * as a compact binary record (see encode()), read through
 * be_cache_get_or_load (single flight), and dropped after every committed
 * write.
 *
 * Cache freshness. A writer commits, then deletes the key.
 * be_cache_get_or_load refuses to cache a load that a delete overtook.
 * be_user_get_many() and be_user_get_fresh() read the database
 * themselves; they begin a conditional fill of each key before their
 * query (cache_fill.h), which stores the row only if nothing wrote the
 * key since, so a read that started before a commit never hides it, not
 * even for a moment, and an older read never replaces a newer one.
 */
#include <backend/batch.h>
#include <backend/cache.h>
#include <backend/user.h>

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "cache_fill.h"
#include "metrics.h"
#include "audit.h"
#include "auth.h"
#include "error.h"
#include "mailer.h"
#include "permission.h"
#include "strbuf.h"
#include "svc_catalog.h"
#include "user.h"
#include "user_json.h"
#include "svc_input.h"
#include "svc_notify.h"
#include "svc_sql.h"
#include "svc_time.h"
#include "utf8.h"
#include "versioned.h"

#define CURSOR_TAG 'U'
/* The most raw bytes a string input may have before trimming and
 * validation: a view cut at the cap is never judged ("a@b.c" followed by
 * 2000 spaces and "x" is not the email "a@b.c"), and a huge input costs
 * nothing. Text is at most 4 bytes a character, plus room for trimmed
 * white space. */
#define EMAIL_RAW_MAX (BE_USER_EMAIL_MAX * 4)
#define TEXT_RAW_MAX(chars) ((size_t)(chars)*4 + 1024)

struct be_user {
  int64_t id, created_at, updated_at;
  int32_t status;
  const char *email, *name, *bio, *extra; /* into data */
  char data[];
};

struct be_user_list {
  size_t count;
  be_user **users;
  char cursor[BE__CURSOR_MAX + 1];
  int has_next;
};

/* ---- the value ---- */

typedef struct fields {
  int64_t id, created_at, updated_at;
  int32_t status;
  const char *s[4]; /* email, name, bio, extra */
  size_t n[4];
} fields;

static be_user *user_make(const fields *f) {
  size_t total = 0;
  for (int i = 0; i < 4; i++) total += f->n[i] + 1;
  be_user *u = be__malloc(sizeof *u + total);
  if (u == NULL) return NULL;
  u->id = f->id;
  u->created_at = f->created_at;
  u->updated_at = f->updated_at;
  u->status = f->status;
  char *p = u->data;
  const char **dst[4] = {&u->email, &u->name, &u->bio, &u->extra};
  for (int i = 0; i < 4; i++) {
    if (f->n[i]) memcpy(p, f->s[i], f->n[i]);
    p[f->n[i]] = '\0';
    *dst[i] = p;
    p += f->n[i] + 1;
  }
  return u;
}

/* A row of the user statements (svc_catalog.c USER_COLS). */
static void fields_from_stmt(fields *f, be_stmt *st) {
  f->id = be_stmt_column_int64(st, 0);
  for (int i = 0; i < 4; i++) {
    f->s[i] = be_stmt_column_text(st, 1 + i, &f->n[i]);
    if (f->s[i] == NULL) {
      f->s[i] = "";
      f->n[i] = 0;
    }
  }
  f->status = (int32_t)be_stmt_column_int64(st, 5);
  f->created_at = be_stmt_column_int64(st, 6);
  f->updated_at = be_stmt_column_int64(st, 7);
}

static void fields_from_rows(fields *f, const be_rows *r, size_t row) {
  f->id = be_rows_int64(r, row, 0);
  for (int i = 0; i < 4; i++) {
    f->s[i] = be_rows_text(r, row, 1 + i, &f->n[i]);
    if (f->s[i] == NULL) {
      f->s[i] = "";
      f->n[i] = 0;
    }
  }
  f->status = (int32_t)be_rows_int64(r, row, 5);
  f->created_at = be_rows_int64(r, row, 6);
  f->updated_at = be_rows_int64(r, row, 7);
}

/* Cache record: id, created, updated (int64), status (int32), the four
 * string lengths (uint32), then the strings without terminators. Read
 * back with memcpy: the cache promises no alignment. */
#define HDR (3 * 8 + 4 + 4 * 4)

/* A record fits in this much stack for most users; a longer one is
 * allocated (encode() says which by its result). */
#define RECORD_STACK 1024

/* The record of f in buf when it fits in cap bytes, else in a new
 * allocation (the caller frees a result that is not buf); NULL when out
 * of memory. */
static void *encode(const fields *f, void *buf, size_t cap, size_t *out_len) {
  size_t total = HDR;
  for (int i = 0; i < 4; i++) total += f->n[i];
  unsigned char *b = total <= cap ? buf : be__malloc(total);
  if (b == NULL) return NULL;
  memcpy(b, &f->id, 8);
  memcpy(b + 8, &f->created_at, 8);
  memcpy(b + 16, &f->updated_at, 8);
  memcpy(b + 24, &f->status, 4);
  size_t off = HDR;
  for (int i = 0; i < 4; i++) {
    uint32_t n = (uint32_t)f->n[i];
    memcpy(b + 28 + 4 * i, &n, 4);
    if (n) memcpy(b + off, f->s[i], n);
    off += n;
  }
  *out_len = total;
  return b;
}

/* The user of record v (len bytes) under id's key: BE_OK with *out set,
 * BE_E_NOMEM, or BE_E_INTERNAL for a value that is not id's record (the
 * cache is shared with the host, which may have written the key): one
 * whose lengths do not fit, that leaves bytes over, or holds another id. */
static int decode(be_user **out, const void *v, size_t len, int64_t id) {
  const unsigned char *b = v;
  *out = NULL;
  if (len < HDR) return BE_E_INTERNAL;
  fields f;
  memcpy(&f.id, b, 8);
  memcpy(&f.created_at, b + 8, 8);
  memcpy(&f.updated_at, b + 16, 8);
  memcpy(&f.status, b + 24, 4);
  size_t off = HDR;
  for (int i = 0; i < 4; i++) {
    uint32_t n;
    memcpy(&n, b + 28 + 4 * i, 4);
    if (n > len - off) return BE_E_INTERNAL;
    f.s[i] = (const char *)b + off;
    f.n[i] = n;
    off += n;
  }
  if (off != len || f.id != id) return BE_E_INTERNAL;
  return (*out = user_make(&f)) != NULL ? BE_OK : BE_E_NOMEM;
}

/* The profile-cache key "user:<id>" in buf, NUL-terminated; returns its length. Written by hand: every
 * be_user_get formats it, and snprintf cost a miss about 770
 * instructions, a hit more than the cache lookup itself; two digits per
 * division take a 5-digit id from about 110 instructions to 60. */
#define USER_KEY_SIZE 32

static int key_of(char buf[USER_KEY_SIZE], int64_t id) {
  static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                              "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                              "8081828384858687888990919293949596979899";
  static const uint64_t pow10[19] = {10u, 100u, 1000u, 10000u, 100000u, 1000000u, 10000000u,
                                     100000000u, 1000000000u, 10000000000u, 100000000000u,
                                     1000000000000u, 10000000000000u, 100000000000000u,
                                     1000000000000000u, 10000000000000000u, 100000000000000000u,
                                     1000000000000000000u, 10000000000000000000u};
  uint64_t v = id < 0 ? 0 - (uint64_t)id : (uint64_t)id;
  int digits = 1;
  while (digits < 20 && v >= pow10[digits - 1]) digits++;
  memcpy(buf, "user:", 5);
  int len = 5;
  if (id < 0) buf[len++] = '-';
  len += digits;
  buf[len] = '\0';
  char *p = buf + len; /* the digits backwards, two per division */
  for (; v >= 100; v /= 100) {
    p -= 2;
    memcpy(p, pairs + 2 * (v % 100), 2);
  }
  if (v >= 10) memcpy(p - 2, pairs + 2 * v, 2);
  else p[-1] = (char)('0' + v);
  return len;
}

/* ---- reading ---- */

int be_user_input_init(be_user_input *in, uint32_t version) {
  static const be_user_input defaults = BE_USER_INPUT_INIT;
  return be__versioned_init(in, sizeof *in, &defaults, version, BE_USER_INPUT_VERSION);
}


static int not_found(int64_t id, be_error **err) {
  return be__error_set(err, BE_E_NOT_FOUND, "no user with id %lld", (long long)id);
}

/* A user row read as a be_user (user) or as a cache record (blob). */
typedef struct one_user {
  int want_user, want_blob;
  be_user *user;
  void *blob; /* stack when it fits there, else allocated */
  size_t blen;
  unsigned char *stack; /* RECORD_STACK bytes for blob, or NULL */
} one_user;

static int read_one(be_stmt *st, void *ud, be_error **err) {
  one_user *o = ud;
  fields f;
  fields_from_stmt(&f, st);
  if (o->want_user && (o->user = user_make(&f)) == NULL) return be__error_oom(err);
  if (o->want_blob && (o->blob = encode(&f, o->stack, o->stack ? RECORD_STACK : 0, &o->blen)) == NULL)
    return be__error_oom(err);
  return BE_OK;
}

typedef struct get_ctx {
  be_app *app;
  int64_t id;
  be_user *user; /* the row this call loaded, made from the row itself */
} get_ctx;

static int load_user_row(be_cache_load *load, get_ctx *g, be_error **err) {
  unsigned char stack[RECORD_STACK];
  one_user o = {1, 1, NULL, NULL, 0, stack};
  int rc = be__svc_first_pooled_id(&g->app->res, read_one, &o, err,
                                   be__sql_handle(&g->app->res, BE__SQL_USER_BY_ID), g->id);
  if (rc == BE_DONE) rc = not_found(g->id, err);
  if (rc == BE_ROW) {
    rc = be_cache_load_set_value(load, o.blob, o.blen, BE_CACHE_TTL_DEFAULT, NULL);
    if (rc != BE_OK) rc = be__error_set(err, rc, "caching user %lld failed", (long long)g->id);
  }
  if (rc == BE_OK) g->user = o.user;
  else be_user_free(o.user);
  if (o.blob != stack) be__free(o.blob);
  return rc;
}

/* A cache miss: load the row, timed as operation cache.load. */
static int load_user(const void *key, size_t klen, be_cache_load *load, void *ud, be_error **err) {
  (void)key;
  (void)klen;
  get_ctx *g = ud;
  BE__OP_RECORD(g->app, BE_OP_CACHE_LOAD, load_user_row(load, g, err));
}

/* The user a cache entry of key (id's) holds, into *out; the entry is
 * released. BE_E_INTERNAL when the value is not id's record (the host
 * wrote the key in the app's cache): it is deleted, so the next read
 * loads the row. */
static int from_entry(be_user **out, be_cache *cache, const char *key, size_t klen, int64_t id,
                      be_cache_entry *e) {
  size_t len = 0;
  const void *v = be_cache_entry_value(e, &len);
  int rc = decode(out, v, len, id);
  be_cache_entry_release(e);
  if (rc == BE_E_INTERNAL) be_cache_delete(cache, key, klen, NULL);
  return rc;
}

static int user_get_body(be_user **out, be_app *app, int64_t id, be_error **err) {
  if (out == NULL || app == NULL) return be__error_set(err, BE_E_MISUSE, "be_user_get: NULL argument");
  *out = NULL;
  int rc = be__svc_check_id(id, "id", err);
  if (rc != BE_OK) return rc;
  char key[USER_KEY_SIZE];
  int klen = key_of(key, id);
  for (int tries = 0;; tries++) {
    get_ctx g = {app, id, NULL};
    be_cache_entry *e = NULL;
    rc = be_cache_get_or_load(&e, NULL, app->res.cache, key, (size_t)klen, load_user, &g, err);
    if (rc != BE_OK) {
      be_user_free(g.user);
      return rc;
    }
    if (g.user != NULL) { /* this call loaded it: the entry holds the same row */
      be_cache_entry_release(e);
      *out = g.user;
      return BE_OK;
    }
    rc = from_entry(out, app->res.cache, key, (size_t)klen, id, e);
    if (rc == BE_OK) return BE_OK;
    if (rc == BE_E_NOMEM) return be__error_oom(err);
    if (tries > 0) /* not a record twice running: the host keeps writing it */
      return be__error_set(err, BE_E_INTERNAL, "the app's cache holds no user record under %s", key);
  }
}

int be_user_get(be_user **out, be_app *app, int64_t id, be_error **err) {
  BE__OP_RECORD(app, BE_OP_USER_GET, user_get_body(out, app, id, err));
}

static int user_get_by_email_body(be_user **out, be_app *app, const char *email, size_t email_len,
                                  be_error **err) {
  if (out == NULL || app == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_user_get_by_email: NULL argument");
  *out = NULL;
  char norm[BE_USER_EMAIL_MAX + 1];
  size_t nlen = 0, len = 0;
  int rc = be__svc_str(email, email_len, "email", EMAIL_RAW_MAX, &len, err);
  if (rc == BE_OK) rc = be__svc_email(email, len, norm, &nlen, err);
  if (rc != BE_OK) return rc;
  one_user o = {1, 0, NULL, NULL, 0, NULL};
  rc = be__svc_first_pooled(&app->res, read_one, &o, err, be__sql(&app->res, BE__SQL_USER_BY_EMAIL),
                            "s", norm, nlen);
  if (rc == BE_DONE) return be__error_set(err, BE_E_NOT_FOUND, "no user with this email");
  if (rc != BE_ROW) return rc;
  *out = o.user;
  return BE_OK;
}

int be_user_get_by_email(be_user **out, be_app *app, const char *email, size_t email_len,
                         be_error **err) {
  BE__OP_RECORD(app, BE_OP_USER_GET_BY_EMAIL, user_get_by_email_body(out, app, email, email_len, err));
}

static be_user_list *list_new(size_t n) {
  be_user_list *l = be__calloc(1, sizeof *l);
  if (l == NULL) return NULL;
  l->users = be__calloc(n ? n : 1, sizeof *l->users);
  if (l->users == NULL) {
    be__free(l);
    return NULL;
  }
  return l;
}

void be_user_list_free(be_user_list *l) {
  if (l == NULL) return;
  for (size_t i = 0; i < l->count; i++) be__free(l->users[i]);
  be__free(l->users);
  be__free(l);
}

static int check_ids(const int64_t *ids, size_t n, be_error **err) {
  if (n > BE_USER_MANY_MAX)
    return be__error_field(err, "ids", "holds more than %d ids", BE_USER_MANY_MAX);
  for (size_t i = 0; i < n; i++) {
    if (ids[i] <= 0) {
      char field[32];
      snprintf(field, sizeof field, "ids[%zu]", i);
      return be__error_field(err, field, "must be a positive id");
    }
  }
  return BE_OK;
}

/* The ids of a batch read the cache did not have, and their places. */
typedef struct misses {
  int64_t *ids;
  size_t *at;
  size_t n;
} misses;

/* Fill l->users[i] from the cache; the misses go to m. */
static int from_cache(be_user_list *l, be_cache *cache, const int64_t *ids, misses *m,
                      be_error **err) {
  for (size_t i = 0; i < l->count; i++) {
    char key[USER_KEY_SIZE];
    int klen = key_of(key, ids[i]);
    be_cache_entry *e = NULL;
    int rc = be_cache_get(&e, cache, key, (size_t)klen, NULL) != BE_OK
               ? BE_E_NOT_FOUND
               : from_entry(&l->users[i], cache, key, (size_t)klen, ids[i], e);
    if (rc == BE_E_NOMEM) return be__error_oom(err);
    if (rc != BE_OK) { /* a miss, or not a record (deleted): read the row */
      m->ids[m->n] = ids[i];
      m->at[m->n++] = i;
    }
  }
  return BE_OK;
}

/* A conditional fill of id's key, begun before reading its row (NULL
 * when out of memory: a fill is best effort, a miss costs a later load). */
static be__cache_fill *fill_begin(be_app *app, int64_t id) {
  char key[USER_KEY_SIZE];
  int klen = key_of(key, id);
  return be__cache_fill_begin(app->res.cache, key, (size_t)klen);
}

/* Drop id's cached copy: after a committed write, or a read that found
 * the row changed or gone and could not cache it. */
static void invalidate(be_app *app, int64_t id) {
  char key[USER_KEY_SIZE];
  int klen = key_of(key, id);
  be_cache_delete(app->res.cache, key, (size_t)klen, NULL);
}

/* End id's fill with blob, the record of the row read (found; blob NULL:
 * out of memory). Without a fill (out of memory when it began) or a
 * record, a row read still makes the cached copy go: it may be older. */
static void fill_end_or_drop(be_app *app, int64_t id, be__cache_fill *fill, int found,
                             const void *blob, size_t blen) {
  if (fill != NULL) be__cache_fill_end(fill, found ? blob : NULL, blen);
  if (found && (fill == NULL || blob == NULL)) invalidate(app, id);
}

/* fill_end_or_drop() with the record of f (NULL f: not found). */
static void fill_end(be_app *app, int64_t id, be__cache_fill *fill, const fields *f) {
  size_t blen = 0;
  unsigned char stack[RECORD_STACK];
  void *blob = f ? encode(f, stack, sizeof stack, &blen) : NULL;
  fill_end_or_drop(app, id, fill, f != NULL, blob, blen);
  if (blob != NULL && blob != stack) be__free(blob);
}

static int user_get_fresh_body(be_user **out, be_app *app, int64_t id, be_error **err) {
  if (out == NULL || app == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_user_get_fresh: NULL argument");
  *out = NULL;
  int rc = be__svc_check_id(id, "id", err);
  if (rc != BE_OK) return rc;
  /* Begun before the query: see the file's comment. */
  be__cache_fill *fill = fill_begin(app, id);
  unsigned char stack[RECORD_STACK];
  one_user o = {1, 1, NULL, NULL, 0, stack};
  rc = be__svc_first_pooled_id(&app->res, read_one, &o, err,
                               be__sql_handle(&app->res, BE__SQL_USER_BY_ID), id);
  fill_end_or_drop(app, id, fill, rc == BE_ROW, o.blob, o.blen);
  if (rc == BE_ROW) {
    *out = o.user;
    rc = BE_OK;
  } else {
    be_user_free(o.user);
    if (rc == BE_DONE) { /* gone behind the app's back: so is its cached copy */
      invalidate(app, id);
      rc = not_found(id, err);
    }
  }
  if (o.blob != stack) be__free(o.blob);
  return rc;
}

int be_user_get_fresh(be_user **out, be_app *app, int64_t id, be_error **err) {
  BE__OP_RECORD(app, BE_OP_USER_GET_FRESH, user_get_fresh_body(out, app, id, err));
}

/* Fill the misses from the database (one batch query) and the cache. */
static int from_db(be_user_list *l, be_app *app, const misses *m, be_error **err) {
  static const char *const cols[] = {"id", "email", "name", "bio", "extra",
                                     "status", "created_at", "updated_at"};
  be_batch_options bo = BE_BATCH_OPTIONS_INIT;
  bo.table = be__sql(&app->res, BE__SQL_USERS_TABLE);
  bo.columns = cols;
  bo.column_count = sizeof cols / sizeof cols[0];
  bo.key_column = "id";
  bo.relation = BE_BATCH_ONE;
  /* Begun before the query: see the file's comment. */
  be__cache_fill **fills = be__calloc(m->n, sizeof *fills);
  for (size_t k = 0; fills && k < m->n; k++) fills[k] = fill_begin(app, m->ids[k]);
  be_batch_result *res = NULL;
  be_conn *conn = NULL;
  int rc = be__svc_acquire(&app->res, &conn, err);
  if (rc == BE_OK) {
    rc = be_batch_load_int64(&res, conn, &bo, m->ids, m->n, err);
    be__svc_release(&app->res, conn);
  }
  const be_rows *rows = be_batch_result_rows(res);
  /* every fill ends, stored or not; the last begun first, so each is found
   * at the head of its list of flights (oldest first walked the list
   * whole) */
  for (size_t k = m->n; k-- > 0;) {
    size_t first = 0;
    int found = rc == BE_OK && be_batch_result_find_int64(res, m->ids[k], &first) != 0;
    fields f;
    if (found) fields_from_rows(&f, rows, first);
    if (found && (l->users[m->at[k]] = user_make(&f)) == NULL) {
      rc = be__error_oom(err);
      found = 0;
    }
    fill_end(app, m->ids[k], fills ? fills[k] : NULL, found ? &f : NULL);
  }
  be__free(fills);
  be_batch_result_free(res);
  return rc;
}

static int user_get_many_body(be_user_list **out, be_app *app, const int64_t *ids, size_t n,
                              be_error **err) {
  if (out == NULL || app == NULL || (ids == NULL && n > 0))
    return be__error_set(err, BE_E_MISUSE, "be_user_get_many: NULL argument");
  *out = NULL;
  int rc = check_ids(ids, n, err);
  if (rc != BE_OK) return rc;
  be_user_list *l = list_new(n);
  if (l == NULL) return be__error_oom(err);
  l->count = n;
  misses m = {be__malloc((n ? n : 1) * sizeof *m.ids), be__malloc((n ? n : 1) * sizeof *m.at), 0};
  rc = (m.ids && m.at) ? from_cache(l, app->res.cache, ids, &m, err) : be__error_oom(err);
  if (rc == BE_OK && m.n > 0) rc = from_db(l, app, &m, err);
  be__free(m.ids);
  be__free(m.at);
  if (rc != BE_OK) {
    be_user_list_free(l);
    return rc;
  }
  *out = l;
  return BE_OK;
}

int be_user_get_many(be_user_list **out, be_app *app, const int64_t *ids, size_t n,
                     be_error **err) {
  BE__OP_RECORD(app, BE_OP_USER_GET_MANY, user_get_many_body(out, app, ids, n, err));
}

/* A page of users: limit rows, one more tells there is a next page. */
typedef struct page_ctx {
  be_user_list *l;
  size_t limit;
} page_ctx;

static int add_user(be_stmt *st, void *ud, be_error **err) {
  page_ctx *p = ud;
  if (p->l->count == p->limit) {
    p->l->has_next = 1;
    return BE_DONE;
  }
  fields f;
  fields_from_stmt(&f, st);
  if ((p->l->users[p->l->count] = user_make(&f)) == NULL) return be__error_oom(err);
  p->l->count++;
  return BE_OK;
}

static int user_list_page_body(be_user_list **out, be_app *app, const char *cursor, size_t cursor_len,
                               int32_t limit, be_error **err) {
  if (out == NULL || app == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_user_list_page: NULL argument");
  *out = NULL;
  if (limit == 0) limit = 20;
  if (limit < 1 || limit > BE_USER_PAGE_MAX)
    return be__error_field(err, "limit", "must be 1..%d", BE_USER_PAGE_MAX);
  int64_t after = 0;
  if (cursor) {
    int rc = be__svc_cursor_decode(cursor, cursor_len, CURSOR_TAG, &after, err);
    if (rc != BE_OK) return rc;
  }
  page_ctx p = {list_new((size_t)limit), (size_t)limit};
  if (p.l == NULL) return be__error_oom(err);
  int rc = be__svc_each_pooled(&app->res, add_user, &p, err,
                               be__sql(&app->res, BE__SQL_USER_PAGE), "ii", after,
                               (int64_t)limit + 1);
  if (rc != BE_OK) {
    be_user_list_free(p.l);
    return rc;
  }
  if (p.l->has_next) be__svc_cursor_encode(p.l->cursor, CURSOR_TAG, p.l->users[p.l->count - 1]->id);
  *out = p.l;
  return BE_OK;
}

int be_user_list_page(be_user_list **out, be_app *app, const char *cursor, size_t cursor_len,
                      int32_t limit, be_error **err) {
  BE__OP_RECORD(app, BE_OP_USER_LIST, user_list_page_body(out, app, cursor, cursor_len, limit, err));
}

/* ---- writing ---- */

typedef struct input {
  uint32_t fields;
  char email[BE_USER_EMAIL_MAX + 1];
  size_t email_len;
  const char *name, *bio, *extra;
  size_t name_len, bio_len, extra_len;
  int32_t status;
} input;

/* Merge a validation error into acc (field errors accumulate). */
static int collect(be_error **acc, int rc, be_error *e) {
  if (rc == BE_OK) return BE_OK;
  if (rc != BE_E_VALIDATION || e == NULL || be__error_is_static(e)) {
    be_error_free(*acc);
    *acc = e;
    return rc;
  }
  if (*acc == NULL) {
    *acc = e;
    return BE_OK;
  }
  for (size_t i = 0; i < be_error_field_count(e); i++) {
    if (be_error_add_field(*acc, be_error_field_name(e, i), be_error_field_message(e, i)) != BE_OK) {
      be_error_free(e);
      be_error_free(*acc);
      *acc = NULL;
      return be__error_oom(acc);
    }
  }
  be_error_free(e);
  return BE_OK;
}

/* A text field: its raw bytes bounded, then the text rules. */
static int check_text(const char *s, size_t len, const char *field, size_t raw_max,
                      size_t min_chars, size_t max_chars, int flags, const char **out,
                      size_t *out_len, be_error **err) {
  size_t n = 0;
  int rc = be__svc_str(s, len, field, raw_max, &n, err);
  if (rc == BE_OK) rc = be__svc_text(s, n, field, min_chars, max_chars, flags, out, out_len, err);
  return rc;
}

/* extra's bytes: present, at most BE_USER_EXTRA_MAX, no NUL, valid UTF-8.
 * Not the text rules: a JSON string may hold DEL and U+0080..U+009F (RFC
 * 8259 asks only U+0000..U+001F to be escaped, and the JSON check refuses
 * those raw). Whether it is a JSON object is checked in the transaction. */
static int check_extra_text(const char *s, size_t len, const char **out, size_t *out_len,
                            be_error **err) {
  size_t n = 0;
  int rc = be__svc_str(s, len, "extra", BE_USER_EXTRA_MAX, &n, err);
  if (rc != BE_OK) return rc;
  if (!be__utf8_valid(s, n)) return be__error_field(err, "extra", "is not valid UTF-8");
  *out = n ? s : "";
  *out_len = n;
  return BE_OK;
}

/* Validate the field bit of in into v. */
static int check_field(input *v, const be_user_input *in, uint32_t bit, be_error **err) {
  size_t len = 0;
  int rc;
  switch (bit) {
    case BE_USER_FIELD_EMAIL:
      rc = be__svc_str(in->email, in->email_len, "email", EMAIL_RAW_MAX, &len, err);
      return rc == BE_OK ? be__svc_email(in->email, len, v->email, &v->email_len, err) : rc;
    case BE_USER_FIELD_NAME:
      return check_text(in->name, in->name_len, "name", TEXT_RAW_MAX(BE_USER_NAME_MAX), 1,
                        BE_USER_NAME_MAX, BE__TEXT_TRIM, &v->name, &v->name_len, err);
    case BE_USER_FIELD_BIO:
      return check_text(in->bio, in->bio_len, "bio", TEXT_RAW_MAX(BE_USER_BIO_MAX), 0,
                        BE_USER_BIO_MAX, BE__TEXT_MULTILINE, &v->bio, &v->bio_len, err);
    case BE_USER_FIELD_EXTRA:
      return check_extra_text(in->extra, in->extra_len, &v->extra, &v->extra_len, err);
    default: /* BE_USER_FIELD_STATUS */
      v->status = in->status;
      if (in->status == BE_USER_ACTIVE || in->status == BE_USER_DISABLED) return BE_OK;
      return be__error_field(err, "status", "must be BE_USER_ACTIVE or BE_USER_DISABLED");
  }
}

/* Validate every field in mask; all field errors are reported together. */
static int check_input(input *v, const be_user_input *in, uint32_t mask, be_error **err) {
  memset(v, 0, sizeof *v);
  v->fields = mask;
  be_error *acc = NULL;
  for (uint32_t bit = 1; bit <= BE_USER_FIELD_STATUS; bit <<= 1) {
    if (!(mask & bit)) continue;
    be_error *e = NULL;
    int rc = check_field(v, in, bit, &e);
    if (collect(&acc, rc, e) != BE_OK) return be__error_give(err, acc);
  }
  return acc ? be__error_give(err, acc) : BE_OK;
}

typedef struct write_ctx {
  be_app *app;
  int64_t actor_id;
  int64_t id;
  int want_row; /* the caller asked for the written row */
  input v;
  be_user *result;
  /* An update's email change: the old address, when it fits (else "") */
  int email_changed;
  char old_email[BE_USER_EMAIL_MAX + 1];
} write_ctx;

/* A UNIQUE failure on users.email is the caller's email taken. */
static int conflict_email(int rc, be_error **err) {
  if (rc != BE_E_CONFLICT) return rc;
  return be__svc_field_error(rc, err, "email", "is already in use", "email already in use");
}

static int audit_json(write_ctx *c, be_conn *conn, const char *action, be__buf *b, be_error **err) {
  be__buf_append(b, "", 1);
  int rc = b->failed ? be__error_oom(err)
                     : be__audit_write(&c->app->res, conn, c->actor_id, action, "user", c->id, b->data, err);
  be__buf_free(b);
  return rc;
}

/* The new extra must be a JSON object, judged alike on every database:
 * the rule of user_json.h first, then the database's JSON check. */
static int extra_is_object(write_ctx *c, be_conn *conn, be_error **err) {
  int rc = be__user_json_check(c->v.extra, c->v.extra_len, "extra", err);
  if (rc != BE_OK) return rc;
  return be__svc_json_object(conn, be__sql(&c->app->res, BE__SQL_JSON_OBJECT), c->v.extra,
                             c->v.extra_len, "extra", err);
}

static int create_tx(be_conn *conn, void *ud, be_error **err) {
  write_ctx *c = ud;
  be_user_free(c->result); /* a retried transaction starts over */
  c->result = NULL;
  int rc = extra_is_object(c, conn, err);
  if (rc != BE_OK) return rc;
  int64_t now = be__svc_now(&c->app->res);
  rc = be__svc_exec(conn, NULL, err, be__sql(&c->app->res, BE__SQL_USER_INSERT), "ssssii",
                    c->v.email, c->v.email_len, c->v.name, c->v.name_len, c->v.bio,
                    c->v.bio_len, c->v.extra, c->v.extra_len, (int64_t)c->v.status, now);
  if (rc != BE_OK) return conflict_email(rc, err);
  c->id = be_conn_last_insert_id(conn);
  /* The stored row is exactly what was bound (no read-back statement). */
  fields f = {.id = c->id, .created_at = now, .updated_at = now, .status = c->v.status, .s = {c->v.email, c->v.name, c->v.bio, c->v.extra}, .n = {c->v.email_len, c->v.name_len, c->v.bio_len, c->v.extra_len}};
  if ((c->result = user_make(&f)) == NULL) return be__error_oom(err);
  be__buf b;
  be__buf_init(&b);
  be__buf_puts(&b, "{\"email\":");
  be__buf_json_string(&b, c->v.email, c->v.email_len);
  be__buf_puts(&b, ",\"name\":");
  be__buf_json_string(&b, c->v.name, c->v.name_len);
  be__buf_printf(&b, ",\"status\":%d}", (int)c->v.status);
  return audit_json(c, conn, "user.create", &b, err);
}

/* A write's context, its actor checked. */
static int write_begin(write_ctx *c, be_app *app, int64_t actor_id, int64_t id, be_error **err) {
  memset(c, 0, sizeof *c);
  c->app = app;
  c->actor_id = actor_id;
  c->id = id;
  return be__svc_check_actor(actor_id, err);
}

/* The written row to the caller, or freed when out is NULL. */
static void give_row(be_user **out, be_user *row) {
  if (out) *out = row;
  else be_user_free(row);
}

static int user_create_body(be_user **out, int64_t *out_id, be_app *app, int64_t actor_id,
                            const be_user_input *in, be_error **err) {
  if (out) *out = NULL;
  if (out_id) *out_id = 0;
  if (app == NULL || in == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_user_create: NULL argument");
  write_ctx c;
  int rc = be__svc_check_version(in->version, BE_USER_INPUT_VERSION, "be_user_input", err);
  if (rc == BE_OK) rc = write_begin(&c, app, actor_id, 0, err);
  if (rc != BE_OK) return rc;
  be_user_input full = *in;
  if (full.bio == NULL) {
    full.bio = "";
    full.bio_len = 0;
  }
  if (full.extra == NULL) {
    full.extra = "{}";
    full.extra_len = 2;
  }
  rc = check_input(&c.v, &full, BE_USER_FIELD_ALL, err);
  if (rc == BE_OK) rc = be__svc_write(&app->res, create_tx, &c, err);
  if (rc != BE_OK) {
    be_user_free(c.result);
    return rc;
  }
  if (out_id) *out_id = c.id;
  give_row(out, c.result);
  return BE_OK;
}

int be_user_create(be_user **out, int64_t *out_id, be_app *app, int64_t actor_id,
                   const be_user_input *in, be_error **err) {
  BE__OP_RECORD(app, BE_OP_USER_CREATE, user_create_body(out, out_id, app, actor_id, in, err));
}

static void change_str(be__buf *b, const char *field, const char *from, size_t flen,
                       const char *to, size_t tlen) {
  be__buf_puts(b, ",\"");
  be__buf_puts(b, field);
  be__buf_puts(b, "\":{\"from\":");
  be__buf_json_string(b, from, flen);
  be__buf_puts(b, ",\"to\":");
  be__buf_json_string(b, to, tlen);
  be__buf_puts(b, "}");
}

/* The fields whose old values an update needs: email and name for the
 * audit row's "from", status for the disable rules. */
#define OLD_NEEDED (BE_USER_FIELD_EMAIL | BE_USER_FIELD_NAME | BE_USER_FIELD_STATUS)

/* 1 when no user has this id (a failed read counts as "exists": the
 * caller then keeps the error it already has). */
static int user_missing(const be__app_res *res, be_conn *conn, int64_t id) {
  return be__svc_first(conn, NULL, NULL, NULL, be__sql(res, BE__SQL_USER_EXISTS), "i", id) ==
         BE_DONE;
}

/* The row before an update, and what the update makes of it. */
typedef struct old_row {
  write_ctx *c;
  int64_t now;
  int32_t status; /* out: the status before */
  be__buf *b;     /* the audit details */
} old_row;

/* From the current row and the new values, write the audit details (the
 * "from" of email and name, the status change) and, when the caller wants
 * the row, build it as it will be after the UPDATE into c->result. */
static int read_old_row(be_stmt *st, void *ud, be_error **err) {
  old_row *o = ud;
  write_ctx *c = o->c;
  uint32_t m = c->v.fields;
  fields f;
  fields_from_stmt(&f, st);
  o->status = f.status;
  if (m & BE_USER_FIELD_EMAIL) {
    change_str(o->b, "email", f.s[0], f.n[0], c->v.email, c->v.email_len);
    /* both normalised (trimmed, lower-case): bytes tell a change */
    c->email_changed = f.n[0] != c->v.email_len || memcmp(f.s[0], c->v.email, f.n[0]) != 0;
    c->old_email[0] = '\0';
    if (f.n[0] < sizeof c->old_email) {
      memcpy(c->old_email, f.s[0], f.n[0]);
      c->old_email[f.n[0]] = '\0';
    }
  }
  if (m & BE_USER_FIELD_NAME) change_str(o->b, "name", f.s[1], f.n[1], c->v.name, c->v.name_len);
  if (m & BE_USER_FIELD_STATUS)
    be__buf_printf(o->b, ",\"status\":{\"from\":%d,\"to\":%d}", (int)f.status, (int)c->v.status);
  if (!c->want_row) return BE_OK;
  /* exactly the values the UPDATE binds, over the rest of the row */
  if (m & BE_USER_FIELD_EMAIL) {
    f.s[0] = c->v.email;
    f.n[0] = c->v.email_len;
  }
  if (m & BE_USER_FIELD_NAME) {
    f.s[1] = c->v.name;
    f.n[1] = c->v.name_len;
  }
  if (m & BE_USER_FIELD_BIO) {
    f.s[2] = c->v.bio;
    f.n[2] = c->v.bio_len;
  }
  if (m & BE_USER_FIELD_EXTRA) {
    f.s[3] = c->v.extra;
    f.n[3] = c->v.extra_len;
  }
  if (m & BE_USER_FIELD_STATUS) f.status = c->v.status;
  f.updated_at = o->now;
  return (c->result = user_make(&f)) == NULL ? be__error_oom(err) : BE_OK;
}

/* Read the current row (one primary-key lookup) for the audit details and
 * the returned row. */
static int read_old(write_ctx *c, be_conn *conn, int64_t now, int32_t *old_status, be__buf *b,
                    be_error **err) {
  old_row o = {c, now, 0, b};
  int rc = be__svc_first(conn, read_old_row, &o, err,
                         be__sql(&c->app->res, BE__SQL_USER_READ_OLD), "i", c->id);
  if (rc == BE_DONE) return not_found(c->id, err);
  *old_status = o.status;
  return rc == BE_ROW ? BE_OK : rc;
}

/* The audit details' start: {"fields":["email",...] (closed by the caller). */
static void audit_fields(be__buf *b, uint32_t m) {
  static const char *names[] = {"email", "name", "bio", "extra", "status"};
  be__buf_puts(b, "{\"fields\":[");
  const char *sep = "\"";
  for (int i = 0; i < 5; i++) {
    if (!(m & (1u << i))) continue;
    be__buf_puts(b, sep);
    be__buf_puts(b, names[i]);
    be__buf_puts(b, "\"");
    sep = ",\"";
  }
  be__buf_puts(b, "]");
}

/* The new extra must be a JSON object. Without the read nothing has told
 * a missing user yet: that answer (404) comes before the one about the
 * JSON. */
static int check_extra(write_ctx *c, be_conn *conn, int read, be_error **err) {
  int rc = extra_is_object(c, conn, err);
  if (rc == BE_E_VALIDATION && !read && user_missing(&c->app->res, conn, c->id)) {
    if (err) {
      be_error_free(*err);
      *err = NULL;
    }
    rc = not_found(c->id, err);
  }
  return rc;
}

/* The UPDATE by id of the fields in the mask. Its text depends only on the
 * mask, so the statement cache serves it. Every parameter is bound: those
 * of fields outside the mask are unused (?7 makes them all valid). */
static int update_row(write_ctx *c, be_conn *conn, int64_t now, int read, be_error **err) {
  uint32_t m = c->v.fields;
  const input *v = &c->v;
  char sql[256];
  strcpy(sql, be__sql(&c->app->res, BE__SQL_USER_UPDATE_HEAD)); /* 64 bytes at most */
  if (m & BE_USER_FIELD_EMAIL) strcat(sql, ", email = ?2");
  if (m & BE_USER_FIELD_NAME) strcat(sql, ", name = ?3");
  if (m & BE_USER_FIELD_BIO) strcat(sql, ", bio = ?4");
  if (m & BE_USER_FIELD_EXTRA) strcat(sql, ", extra = ?5");
  if (m & BE_USER_FIELD_STATUS) strcat(sql, ", status = ?6");
  strcat(sql, " WHERE id = ?7");
  int64_t changes = 0;
  int rc = be__svc_exec(conn, &changes, err, sql, "issssii", now, v->email, v->email_len,
                        v->name ? v->name : "", v->name_len, v->bio ? v->bio : "", v->bio_len,
                        v->extra ? v->extra : "", v->extra_len, (int64_t)v->status, c->id);
  if (rc == BE_OK && !read && changes == 0) rc = not_found(c->id, err);
  return conflict_email(rc, err);
}

/*
 * One update, in the caller's write transaction: [read the current row,
 * when the audit row or the caller needs it], [check `extra`], UPDATE by
 * id, [status rules], the audit row. The returned row is built from the
 * row read and the values bound, so there is no read-back statement (and
 * no UPDATE ... RETURNING: in SQLite that costs an ephemeral table per
 * statement, more than a primary-key read).
 */
static int update_tx(be_conn *conn, void *ud, be_error **err) {
  write_ctx *c = ud;
  uint32_t m = c->v.fields;
  be_user_free(c->result); /* a retried transaction starts over */
  c->result = NULL;
  c->email_changed = 0;
  int64_t now = be__svc_now(&c->app->res);
  be__buf b;
  be__buf_init(&b);
  audit_fields(&b, m);
  int32_t old_status = 0;
  int read = c->want_row || (m & OLD_NEEDED);
  int rc = read ? read_old(c, conn, now, &old_status, &b, err) : BE_OK;
  be__buf_puts(&b, "}");
  if (rc == BE_OK && (m & BE_USER_FIELD_EXTRA)) rc = check_extra(c, conn, read, err);
  if (rc == BE_OK) rc = update_row(c, conn, now, read, err);
  int status_changed = (m & BE_USER_FIELD_STATUS) && c->v.status != old_status;
  const be__app_res *res = &c->app->res;
  if (rc == BE_OK && status_changed) rc = be__perm_bump(res, conn, err);
  if (rc == BE_OK && status_changed && c->v.status == BE_USER_DISABLED)
    rc = be__auth_end_access(res, conn, c->id, err);
  /* Reset links mailed to the old address die with it. */
  if (rc == BE_OK && c->email_changed) rc = be__auth_consume_resets(res, conn, c->id, err);
  /* the other apps on the database drop their copy once this commits */
  if (rc == BE_OK) rc = be__svc_notify_id(res, conn, BE__SQL_USER_CHANNEL, c->id, err);
  if (rc != BE_OK) {
    be__buf_free(&b);
    return rc;
  }
  return audit_json(c, conn, "user.update", &b, err);
}

int be__user_changed_elsewhere(void *ud, const char *payload, size_t len) {
  be_app *app = ud;
  int64_t id = be__svc_notified_id(&app->res, payload, len);
  if (id > 0) invalidate(app, id);
  return id > 0;
}

void be__user_resync(void *ud) {
  be_app *app = ud;
  be_cache_invalidate_prefix(app->res.cache, "user:", 5, NULL);
}

static int user_update_body(be_user **out, be_app *app, int64_t actor_id, int64_t id,
                            const be_user_input *in, be_error **err) {
  if (out) *out = NULL;
  if (app == NULL || in == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_user_update: NULL argument");
  write_ctx c;
  int rc = be__svc_check_version(in->version, BE_USER_INPUT_VERSION, "be_user_input", err);
  if (rc == BE_OK) rc = write_begin(&c, app, actor_id, id, err);
  if (rc == BE_OK) rc = be__svc_check_id(id, "id", err);
  if (rc != BE_OK) return rc;
  if (in->fields == 0 || (in->fields & ~(uint32_t)BE_USER_FIELD_ALL))
    return be__error_field(err, "fields", "must name one or more BE_USER_FIELD_* bits and no other");
  c.want_row = out != NULL;
  rc = check_input(&c.v, in, in->fields, err);
  if (rc == BE_OK) rc = be__svc_write(&app->res, update_tx, &c, err);
  if (rc != BE_OK) {
    be_user_free(c.result);
    return rc;
  }
  invalidate(app, id);
  if (c.email_changed) { /* both addresses hear of it */
    be__mailer_notify(&app->res, id, BE__NOTICE_EMAIL_OLD, c.old_email);
    be__mailer_notify(&app->res, id, BE__NOTICE_EMAIL_NEW, c.v.email);
  }
  give_row(out, c.result);
  return BE_OK;
}

int be_user_update(be_user **out, be_app *app, int64_t actor_id, int64_t id,
                   const be_user_input *in, be_error **err) {
  BE__OP_RECORD(app, BE_OP_USER_UPDATE, user_update_body(out, app, actor_id, id, in, err));
}

static int delete_tx(be_conn *conn, void *ud, be_error **err) {
  write_ctx *c = ud;
  one_user o = {1, 0, NULL, NULL, 0, NULL};
  int rc = be__svc_first(conn, read_one, &o, err, be__sql(&c->app->res, BE__SQL_USER_BY_ID), "i",
                         c->id);
  if (rc == BE_DONE) return not_found(c->id, err);
  if (rc != BE_ROW) return rc;
  /* Explicit deletes, not only ON DELETE CASCADE: correct even on a
   * connection with foreign keys off. */
  static const be__sql_id sqls[] = {BE__SQL_USER_DELETE_SESSIONS, BE__SQL_USER_DELETE_RESETS,
                                    BE__SQL_USER_DELETE_ROLES, BE__SQL_USER_DELETE};
  rc = BE_OK;
  for (size_t i = 0; i < sizeof sqls / sizeof sqls[0] && rc == BE_OK; i++)
    rc = be__svc_exec(conn, NULL, err, be__sql(&c->app->res, sqls[i]), "i", c->id);
  if (rc == BE_OK) rc = be__perm_bump(&c->app->res, conn, err);
  if (rc == BE_OK) rc = be__svc_notify_id(&c->app->res, conn, BE__SQL_USER_CHANNEL, c->id, err);
  if (rc == BE_OK) {
    be__buf b;
    be__buf_init(&b);
    be__buf_puts(&b, "{\"email\":");
    be__buf_json_string(&b, o.user->email, strlen(o.user->email));
    be__buf_puts(&b, "}");
    rc = audit_json(c, conn, "user.delete", &b, err);
  }
  be_user_free(o.user);
  return rc;
}

static int user_delete_body(be_app *app, int64_t actor_id, int64_t id, be_error **err) {
  if (app == NULL) return be__error_set(err, BE_E_MISUSE, "be_user_delete: app is NULL");
  write_ctx c;
  int rc = write_begin(&c, app, actor_id, id, err);
  if (rc == BE_OK) rc = be__svc_check_id(id, "id", err);
  if (rc == BE_OK) rc = be__svc_write(&app->res, delete_tx, &c, err);
  if (rc == BE_OK) invalidate(app, id);
  return rc;
}

int be_user_delete(be_app *app, int64_t actor_id, int64_t id, be_error **err) {
  BE__OP_RECORD(app, BE_OP_USER_DELETE, user_delete_body(app, actor_id, id, err));
}

/* ---- accessors ---- */

int64_t be_user_id(const be_user *u) { return u ? u->id : 0; }
const char *be_user_email(const be_user *u) { return u ? u->email : NULL; }
const char *be_user_name(const be_user *u) { return u ? u->name : NULL; }
const char *be_user_bio(const be_user *u) { return u ? u->bio : NULL; }
const char *be_user_extra(const be_user *u) { return u ? u->extra : NULL; }
int32_t be_user_status(const be_user *u) { return u ? u->status : 0; }
int64_t be_user_created_at_ms(const be_user *u) {
  return u ? be__svc_ns_to_ms(u->created_at) : 0;
}
int64_t be_user_updated_at_ms(const be_user *u) {
  return u ? be__svc_ns_to_ms(u->updated_at) : 0;
}
void be_user_free(be_user *u) { be__free(u); }

int be_user_to_json(char **out_json, size_t *out_len, const be_user *u, be_error **err) {
  if (out_json) *out_json = NULL;
  if (out_len) *out_len = 0;
  if (u == NULL || out_json == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_user_to_json: NULL argument");
  be__buf b;
  be__buf_init(&b);
  be__buf_printf(&b, "{\"id\":%lld,\"email\":", (long long)u->id);
  be__buf_json_string(&b, u->email, strlen(u->email));
  be__buf_puts(&b, ",\"name\":");
  be__buf_json_string(&b, u->name, strlen(u->name));
  be__buf_puts(&b, ",\"bio\":");
  be__buf_json_string(&b, u->bio, strlen(u->bio));
  /* extra passed json_valid() on the way in (and the column's CHECK) */
  be__buf_puts(&b, ",\"extra\":");
  be__buf_puts(&b, u->extra[0] ? u->extra : "{}");
  be__buf_printf(&b, ",\"status\":%d,\"created_at\":%lld,\"updated_at\":%lld}", (int)u->status,
                 (long long)be__svc_ns_to_ms(u->created_at),
                 (long long)be__svc_ns_to_ms(u->updated_at));
  int rc = be__buf_detach(&b, out_json, out_len);
  return rc == BE_OK ? BE_OK : be__error_oom(err);
}

size_t be_user_list_count(const be_user_list *l) { return l ? l->count : 0; }
const be_user *be_user_list_get(const be_user_list *l, size_t i) {
  return (l && i < l->count) ? l->users[i] : NULL;
}
const char *be_user_list_next_cursor(const be_user_list *l) {
  return (l && l->has_next) ? l->cursor : NULL;
}
