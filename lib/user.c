/* SPDX-License-Identifier: MIT */
/*
 * UserService. Profiles are cached under "user:{id}" in the app's cache
 * as a compact binary record (see encode()), read through
 * be_cache_get_or_load (single flight), and dropped after every committed
 * write.
 *
 * Cache freshness. A writer commits, then bumps the app's user generation,
 * then deletes the key. be_cache_get_or_load already refuses to cache a
 * load that a delete overtook. be_user_get_many() fills the cache with
 * be_cache_set() from its batch query, which has no such guard, so it reads
 * the generation before its query and, after each set, deletes the key
 * again if the generation moved: either the writer's delete comes after
 * our set, or our re-check sees the bump.
 */
#include <backend/batch.h>
#include <backend/cache.h>
#include <backend/user.h>

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "audit.h"
#include "buf.h"
#include "error.h"
#include "permission.h"
#include "svc.h"

#define CURSOR_TAG 'U'
/* The most raw bytes a string input may have before trimming and
 * validation: a view cut at the cap is never judged ("a@b.c" followed by
 * 2000 spaces and "x" is not the email "a@b.c"), and a huge input costs
 * nothing. Text is at most 4 bytes a character, plus room for trimmed
 * white space. */
#define EMAIL_RAW_MAX (BE_USER_EMAIL_MAX * 4)
#define TEXT_RAW_MAX(chars) ((size_t)(chars) * 4 + 1024)

#define COLS "id, email, name, bio, extra, status, created_at, updated_at"

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

static void fields_from_stmt(fields *f, be_stmt *st) {
  f->id = be_stmt_column_int64(st, 0);
  for (int i = 0; i < 4; i++) {
    f->s[i] = be_stmt_column_text(st, 1 + i, &f->n[i]);
    if (f->s[i] == NULL) { f->s[i] = ""; f->n[i] = 0; }
  }
  f->status = (int32_t)be_stmt_column_int64(st, 5);
  f->created_at = be_stmt_column_int64(st, 6);
  f->updated_at = be_stmt_column_int64(st, 7);
}

static void fields_from_rows(fields *f, const be_rows *r, size_t row) {
  f->id = be_rows_int64(r, row, 0);
  for (int i = 0; i < 4; i++) {
    f->s[i] = be_rows_text(r, row, 1 + i, &f->n[i]);
    if (f->s[i] == NULL) { f->s[i] = ""; f->n[i] = 0; }
  }
  f->status = (int32_t)be_rows_int64(r, row, 5);
  f->created_at = be_rows_int64(r, row, 6);
  f->updated_at = be_rows_int64(r, row, 7);
}

/* Cache record: id, created, updated (int64), status (int32), the four
 * string lengths (uint32), then the strings without terminators. Read
 * back with memcpy: the cache promises no alignment. */
#define HDR (3 * 8 + 4 + 4 * 4)

static void *encode(const fields *f, size_t *out_len) {
  size_t total = HDR;
  for (int i = 0; i < 4; i++) total += f->n[i];
  unsigned char *b = be__malloc(total);
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

static be_user *decode(const void *v, size_t len) {
  const unsigned char *b = v;
  if (len < HDR) return NULL;
  fields f;
  memcpy(&f.id, b, 8);
  memcpy(&f.created_at, b + 8, 8);
  memcpy(&f.updated_at, b + 16, 8);
  memcpy(&f.status, b + 24, 4);
  size_t off = HDR;
  for (int i = 0; i < 4; i++) {
    uint32_t n;
    memcpy(&n, b + 28 + 4 * i, 4);
    if (n > len - off) return NULL;
    f.s[i] = (const char *)b + off;
    f.n[i] = n;
    off += n;
  }
  return user_make(&f);
}

static int key_of(char *buf, size_t size, int64_t id) {
  return snprintf(buf, size, "user:%lld", (long long)id);
}

/* ---- reading ---- */

int be_user_input_init(be_user_input *in, uint32_t version) {
  if (in == NULL || version != BE_USER_INPUT_VERSION) return BE_E_MISUSE;
  be_user_input init = BE_USER_INPUT_INIT;
  *in = init;
  return BE_OK;
}

/* Read one user by a statement with one parameter (id or email). */
static int select_one(be_conn *conn, const char *sql, int64_t id, const char *text, size_t tlen,
                      fields *f, be_user **out_user, void **out_blob, size_t *out_blen,
                      be_error **err) {
  be_stmt *st = NULL;
  int rc = be_conn_prepare(&st, conn, sql, err);
  if (rc != BE_OK) return rc;
  rc = text ? be_stmt_bind_text(st, 1, text, tlen, err) : be_stmt_bind_int64(st, 1, id, err);
  if (rc == BE_OK) rc = be_stmt_step(st, err);
  if (rc == BE_ROW) {
    fields_from_stmt(f, st);
    rc = BE_OK;
    if (out_user && (*out_user = user_make(f)) == NULL) rc = be__error_oom(err);
    if (rc == BE_OK && out_blob && (*out_blob = encode(f, out_blen)) == NULL) rc = be__error_oom(err);
  } else if (rc == BE_DONE) {
    rc = text ? be__error_set(err, BE_E_NOT_FOUND, "no user with this email")
              : be__error_set(err, BE_E_NOT_FOUND, "no user with id %lld", (long long)id);
  }
  be_stmt_finalize(st);
  return rc;
}

typedef struct get_ctx {
  be_app *app;
  int64_t id;
} get_ctx;

static int load_user(void *ud, const void *key, size_t klen, be_cache_load *load, be_error **err) {
  (void)key;
  (void)klen;
  get_ctx *g = ud;
  be_conn *conn = NULL;
  int rc = be__svc_acquire(&g->app->res, &conn, err);
  if (rc != BE_OK) return rc;
  fields f;
  void *blob = NULL;
  size_t blen = 0;
  rc = select_one(conn, "SELECT " COLS " FROM users WHERE id = ?1", g->id, NULL, 0, &f, NULL,
                  &blob, &blen, err);
  be__svc_release(&g->app->res, conn);
  if (rc == BE_OK) {
    rc = be_cache_load_set_value(load, blob, blen, BE_CACHE_TTL_DEFAULT);
    if (rc != BE_OK) rc = be__error_set(err, rc, "caching user %lld failed", (long long)g->id);
  }
  be__free(blob);
  return rc;
}

int be_user_get(be_user **out, be_app *app, int64_t id, be_error **err) {
  if (out == NULL || app == NULL) return be__error_set(err, BE_E_MISUSE, "be_user_get: NULL argument");
  *out = NULL;
  int rc = be__svc_check_id(id, "id", err);
  if (rc != BE_OK) return rc;
  char key[32];
  int klen = key_of(key, sizeof key, id);
  get_ctx g = {app, id};
  be_cache_entry *e = NULL;
  rc = be_cache_get_or_load(&e, NULL, app->res.cache, key, (size_t)klen, load_user, &g, err);
  if (rc != BE_OK) return rc;
  size_t len = 0;
  const void *v = be_cache_entry_value(e, &len);
  *out = decode(v, len);
  be_cache_entry_release(e);
  if (*out == NULL) return be__error_oom(err);
  return BE_OK;
}

int be_user_get_by_email(be_user **out, be_app *app, const char *email, size_t email_len,
                         be_error **err) {
  if (out == NULL || app == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_user_get_by_email: NULL argument");
  *out = NULL;
  char norm[BE_USER_EMAIL_MAX + 1];
  size_t nlen = 0, len = 0;
  int rc = be__svc_str(email, email_len, "email", EMAIL_RAW_MAX, &len, err);
  if (rc == BE_OK) rc = be__svc_email(email, len, norm, &nlen, err);
  if (rc != BE_OK) return rc;
  be_conn *conn = NULL;
  rc = be__svc_acquire(&app->res, &conn, err);
  if (rc != BE_OK) return rc;
  fields f;
  rc = select_one(conn, "SELECT " COLS " FROM users WHERE email = ?1", 0, norm, nlen, &f, out,
                  NULL, NULL, err);
  be__svc_release(&app->res, conn);
  return rc;
}

static be_user_list *list_new(size_t n) {
  be_user_list *l = be__calloc(1, sizeof *l);
  if (l == NULL) return NULL;
  l->users = be__calloc(n ? n : 1, sizeof *l->users);
  if (l->users == NULL) { be__free(l); return NULL; }
  return l;
}

void be_user_list_free(be_user_list *l) {
  if (l == NULL) return;
  for (size_t i = 0; i < l->count; i++) be__free(l->users[i]);
  be__free(l->users);
  be__free(l);
}

int be_user_get_many(be_user_list **out, be_app *app, const int64_t *ids, size_t n,
                     be_error **err) {
  if (out == NULL || app == NULL || (ids == NULL && n > 0))
    return be__error_set(err, BE_E_MISUSE, "be_user_get_many: NULL argument");
  *out = NULL;
  if (n > BE_USER_MANY_MAX)
    return be__error_field(err, "ids", "holds more than %d ids", BE_USER_MANY_MAX);
  for (size_t i = 0; i < n; i++) {
    if (ids[i] <= 0) {
      char field[32];
      snprintf(field, sizeof field, "ids[%zu]", i);
      return be__error_field(err, field, "must be a positive id");
    }
  }
  be_user_list *l = list_new(n);
  if (l == NULL) return be__error_oom(err);
  l->count = n;
  be_cache *cache = app->res.cache;
  _Atomic uint64_t *gen = &app->user_gen;
  uint64_t gen0 = atomic_load(gen);
  int64_t *miss = be__malloc((n ? n : 1) * sizeof *miss);
  size_t *miss_at = be__malloc((n ? n : 1) * sizeof *miss_at);
  size_t nmiss = 0;
  int rc = (miss && miss_at) ? BE_OK : be__error_oom(err);
  for (size_t i = 0; i < n && rc == BE_OK; i++) {
    char key[32];
    int klen = key_of(key, sizeof key, ids[i]);
    be_cache_entry *e = NULL;
    if (be_cache_get(&e, cache, key, (size_t)klen) == BE_OK) {
      size_t len = 0;
      const void *v = be_cache_entry_value(e, &len);
      l->users[i] = decode(v, len);
      be_cache_entry_release(e);
      if (l->users[i] == NULL) rc = be__error_oom(err);
    } else {
      miss[nmiss] = ids[i];
      miss_at[nmiss++] = i;
    }
  }
  if (rc == BE_OK && nmiss > 0) {
    static const char *const cols[] = {"id", "email", "name", "bio", "extra",
                                       "status", "created_at", "updated_at"};
    be_batch_opts bo = BE_BATCH_OPTS_INIT;
    bo.table = "users";
    bo.columns = cols;
    bo.column_count = sizeof cols / sizeof cols[0];
    bo.key_column = "id";
    bo.relation = BE_BATCH_ONE;
    be_batch_result *res = NULL;
    be_conn *conn = NULL;
    rc = be__svc_acquire(&app->res, &conn, err);
    if (rc == BE_OK) {
      rc = be_batch_load_int64(&res, conn, &bo, miss, nmiss, err);
      be__svc_release(&app->res, conn);
    }
    const be_rows *rows = be_batch_result_rows(res);
    for (size_t k = 0; k < nmiss && rc == BE_OK; k++) {
      size_t first = 0;
      if (be_batch_result_find_int64(res, miss[k], &first) == 0) continue; /* no such user */
      fields f;
      fields_from_rows(&f, rows, first);
      size_t i = miss_at[k];
      if ((l->users[i] = user_make(&f)) == NULL) { rc = be__error_oom(err); break; }
      size_t blen = 0;
      void *blob = encode(&f, &blen);
      if (blob) {
        char key[32];
        int klen = key_of(key, sizeof key, miss[k]);
        /* Best effort: a failed set only costs a later miss. */
        if (be_cache_set(cache, key, (size_t)klen, blob, blen, BE_CACHE_TTL_DEFAULT, NULL) == BE_OK &&
            atomic_load(gen) != gen0)
          be_cache_delete(cache, key, (size_t)klen);
        be__free(blob);
      }
    }
    be_batch_result_free(res);
  }
  be__free(miss);
  be__free(miss_at);
  if (rc != BE_OK) { be_user_list_free(l); return rc; }
  *out = l;
  return BE_OK;
}

int be_user_list_page(be_user_list **out, be_app *app, const char *cursor, size_t cursor_len,
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
  be_user_list *l = list_new((size_t)limit);
  if (l == NULL) return be__error_oom(err);
  be_conn *conn = NULL;
  int rc = be__svc_acquire(&app->res, &conn, err);
  if (rc != BE_OK) { be_user_list_free(l); return rc; }
  be_stmt *st = NULL;
  rc = be_conn_prepare(&st, conn, "SELECT " COLS " FROM users WHERE id > ?1 ORDER BY id LIMIT ?2",
                       err);
  if (rc == BE_OK) rc = be_stmt_bind_int64(st, 1, after, err);
  if (rc == BE_OK) rc = be_stmt_bind_int64(st, 2, (int64_t)limit + 1, err);
  while (rc == BE_OK && (rc = be_stmt_step(st, err)) == BE_ROW) {
    if (l->count == (size_t)limit) { l->has_next = 1; rc = BE_DONE; break; }
    fields f;
    fields_from_stmt(&f, st);
    if ((l->users[l->count] = user_make(&f)) == NULL) { rc = be__error_oom(err); break; }
    l->count++;
    rc = BE_OK;
  }
  if (rc == BE_DONE) rc = BE_OK;
  be_stmt_finalize(st);
  be__svc_release(&app->res, conn);
  if (rc != BE_OK) { be_user_list_free(l); return rc; }
  if (l->has_next) be__svc_cursor_encode(l->cursor, CURSOR_TAG, l->users[l->count - 1]->id);
  *out = l;
  return BE_OK;
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
  if (*acc == NULL) { *acc = e; return BE_OK; }
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

/* Validate every field in mask; all field errors are reported together. */
static int check_input(input *v, const be_user_input *in, uint32_t mask, be_error **err) {
  memset(v, 0, sizeof *v);
  v->fields = mask;
  be_error *acc = NULL, *e = NULL;
  int rc = BE_OK;
  if (mask & BE_USER_FIELD_EMAIL) {
    size_t len = 0;
    int r = be__svc_str(in->email, in->email_len, "email", EMAIL_RAW_MAX, &len, &e);
    if (r == BE_OK) r = be__svc_email(in->email, len, v->email, &v->email_len, &e);
    rc = collect(&acc, r, e);
    if (rc != BE_OK) goto fail;
  }
  if (mask & BE_USER_FIELD_NAME) {
    size_t len = 0;
    e = NULL;
    int r = be__svc_str(in->name, in->name_len, "name", TEXT_RAW_MAX(BE_USER_NAME_MAX), &len, &e);
    if (r == BE_OK)
      r = be__svc_text(in->name, len, "name", 1, BE_USER_NAME_MAX, BE__TEXT_TRIM, &v->name,
                       &v->name_len, &e);
    rc = collect(&acc, r, e);
    if (rc != BE_OK) goto fail;
  }
  if (mask & BE_USER_FIELD_BIO) {
    size_t len = 0;
    e = NULL;
    int r = be__svc_str(in->bio, in->bio_len, "bio", TEXT_RAW_MAX(BE_USER_BIO_MAX), &len, &e);
    if (r == BE_OK)
      r = be__svc_text(in->bio, len, "bio", 0, BE_USER_BIO_MAX, BE__TEXT_MULTILINE, &v->bio,
                       &v->bio_len, &e);
    rc = collect(&acc, r, e);
    if (rc != BE_OK) goto fail;
  }
  if (mask & BE_USER_FIELD_EXTRA) {
    size_t len = 0;
    e = NULL;
    int r = be__svc_str(in->extra, in->extra_len, "extra", BE_USER_EXTRA_MAX, &len, &e);
    /* text rules only: JSON is checked by SQLite inside the transaction */
    if (r == BE_OK)
      r = be__svc_text(in->extra, len, "extra", 0, BE_USER_EXTRA_MAX, BE__TEXT_MULTILINE | 0,
                       &v->extra, &v->extra_len, &e);
    rc = collect(&acc, r, e);
    if (rc != BE_OK) goto fail;
  }
  if (mask & BE_USER_FIELD_STATUS) {
    if (in->status != BE_USER_ACTIVE && in->status != BE_USER_DISABLED) {
      e = NULL;
      int r = be__error_field(&e, "status", "must be BE_USER_ACTIVE or BE_USER_DISABLED");
      rc = collect(&acc, r, e);
      if (rc != BE_OK) goto fail;
    }
    v->status = in->status;
  }
  if (acc) return be__error_give(err, acc);
  return BE_OK;
fail:
  return be__error_give(err, acc);
}

typedef struct write_ctx {
  be_app *app;
  int64_t actor_id;
  int64_t id;
  int want_row; /* the caller asked for the written row */
  input v;
  be_user *result;
} write_ctx;

static int conflict_email(int rc, be_error **err) {
  if (rc != BE_E_CONFLICT) return rc;
  be_error *cause = *err;
  *err = NULL;
  be__error_wrap(err, BE_E_CONFLICT, cause, "email already in use");
  if (*err && !be__error_is_static(*err)) be_error_add_field(*err, "email", "is already in use");
  return be_error_code(*err);
}

static int audit_json(write_ctx *c, be_conn *conn, const char *action, be__buf *b, be_error **err) {
  be__buf_append(b, "", 1);
  int rc = b->failed ? be__error_oom(err)
                     : be__audit_write(&c->app->res, conn, c->actor_id, action, "user", c->id, b->data, err);
  be__buf_free(b);
  return rc;
}

static int create_tx(be_conn *conn, void *ud, be_error **err) {
  write_ctx *c = ud;
  be_user_free(c->result); /* a retried transaction starts over */
  c->result = NULL;
  int rc = be__svc_json_object(conn, c->v.extra, c->v.extra_len, "extra", err);
  if (rc != BE_OK) return rc;
  int64_t now = be__svc_now(&c->app->res);
  be_stmt *st = NULL;
  rc = be_conn_prepare(&st, conn,
                       "INSERT INTO users (email, name, bio, extra, status, created_at, updated_at)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                       err);
  if (rc != BE_OK) return rc;
  rc = be_stmt_bind_text(st, 1, c->v.email, c->v.email_len, err);
  if (rc == BE_OK) rc = be_stmt_bind_text(st, 2, c->v.name, c->v.name_len, err);
  if (rc == BE_OK) rc = be_stmt_bind_text(st, 3, c->v.bio, c->v.bio_len, err);
  if (rc == BE_OK) rc = be_stmt_bind_text(st, 4, c->v.extra, c->v.extra_len, err);
  if (rc == BE_OK) rc = be_stmt_bind_int64(st, 5, c->v.status, err);
  if (rc == BE_OK) rc = be_stmt_bind_int64(st, 6, now, err);
  if (rc == BE_OK) rc = be_stmt_step(st, err);
  if (rc == BE_DONE) rc = BE_OK;
  be_stmt_finalize(st);
  if (rc != BE_OK) return conflict_email(rc, err);
  c->id = be_conn_last_insert_id(conn);
  /* The stored row is exactly what was bound (no read-back statement). */
  fields f = {.id = c->id, .created_at = now, .updated_at = now, .status = c->v.status,
              .s = {c->v.email, c->v.name, c->v.bio, c->v.extra},
              .n = {c->v.email_len, c->v.name_len, c->v.bio_len, c->v.extra_len}};
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

int be_user_create(be_user **out, int64_t *out_id, be_app *app, int64_t actor_id,
                   const be_user_input *in, be_error **err) {
  if (out) *out = NULL;
  if (out_id) *out_id = 0;
  if (app == NULL || in == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_user_create: NULL argument");
  if (in->version != BE_USER_INPUT_VERSION)
    return be__error_set(err, BE_E_MISUSE, "be_user_input: unknown version %u", (unsigned)in->version);
  int rc = be__svc_check_actor(actor_id, err);
  if (rc != BE_OK) return rc;
  be_user_input full = *in;
  if (full.bio == NULL) { full.bio = ""; full.bio_len = 0; }
  if (full.extra == NULL) { full.extra = "{}"; full.extra_len = 2; }
  write_ctx c;
  memset(&c, 0, sizeof c);
  c.app = app;
  c.actor_id = actor_id;
  rc = check_input(&c.v, &full, BE_USER_FIELD_ALL, err);
  if (rc != BE_OK) return rc;
  rc = be__svc_write(&app->res, create_tx, &c, err);
  if (rc != BE_OK) { be_user_free(c.result); return rc; }
  if (out_id) *out_id = c.id;
  if (out) *out = c.result;
  else be_user_free(c.result);
  return BE_OK;
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

static int not_found(int64_t id, be_error **err) {
  return be__error_set(err, BE_E_NOT_FOUND, "no user with id %lld", (long long)id);
}

/* 1 when no user has this id (a failed read counts as "exists": the
 * caller then keeps the error it already has). */
static int user_missing(be_conn *conn, int64_t id) {
  be_stmt *st = NULL;
  if (be_conn_prepare(&st, conn, "SELECT 1 FROM users WHERE id = ?1", NULL) != BE_OK) return 0;
  int rc = be_stmt_bind_int64(st, 1, id, NULL);
  if (rc == BE_OK) rc = be_stmt_step(st, NULL);
  be_stmt_finalize(st);
  return rc == BE_DONE;
}

/* Read the current row (one primary-key lookup) and, from it and the new
 * values, write the audit details into b (the "from" of email and name,
 * the status change) and, when want_row, build the row as it will be after
 * the UPDATE into c->result. */
static int read_old(write_ctx *c, be_conn *conn, int want_row, int64_t now,
                    int32_t *old_status, be__buf *b, be_error **err) {
  uint32_t m = c->v.fields;
  be_stmt *st = NULL;
  int rc = be_conn_prepare(&st, conn, "SELECT " COLS " FROM users WHERE id = ?1", err);
  if (rc != BE_OK) return rc;
  rc = be_stmt_bind_int64(st, 1, c->id, err);
  if (rc == BE_OK) rc = be_stmt_step(st, err);
  if (rc == BE_ROW) {
    rc = BE_OK;
    fields f;
    fields_from_stmt(&f, st);
    *old_status = f.status;
    if (m & BE_USER_FIELD_EMAIL) change_str(b, "email", f.s[0], f.n[0], c->v.email, c->v.email_len);
    if (m & BE_USER_FIELD_NAME) change_str(b, "name", f.s[1], f.n[1], c->v.name, c->v.name_len);
    if (m & BE_USER_FIELD_STATUS)
      be__buf_printf(b, ",\"status\":{\"from\":%d,\"to\":%d}", (int)f.status, (int)c->v.status);
    if (want_row) {
      /* exactly the values the UPDATE binds, over the rest of the row */
      if (m & BE_USER_FIELD_EMAIL) { f.s[0] = c->v.email; f.n[0] = c->v.email_len; }
      if (m & BE_USER_FIELD_NAME) { f.s[1] = c->v.name; f.n[1] = c->v.name_len; }
      if (m & BE_USER_FIELD_BIO) { f.s[2] = c->v.bio; f.n[2] = c->v.bio_len; }
      if (m & BE_USER_FIELD_EXTRA) { f.s[3] = c->v.extra; f.n[3] = c->v.extra_len; }
      if (m & BE_USER_FIELD_STATUS) f.status = c->v.status;
      f.updated_at = now;
      if ((c->result = user_make(&f)) == NULL) rc = be__error_oom(err);
    }
  } else if (rc == BE_DONE) {
    rc = not_found(c->id, err);
  }
  be_stmt_finalize(st);
  return rc;
}

/*
 * One update, in the caller's write transaction: [read the current row,
 * when the audit row or the caller needs it], [check `extra`], UPDATE by
 * id, [status rules], the audit row. The returned row is built from the
 * row read and the values bound, so there is no read-back statement (and
 * no UPDATE ... RETURNING: in SQLite that costs an ephemeral table per
 * statement, more than a primary-key read). The UPDATE's text depends
 * only on the field mask, so the statement cache serves it.
 */
static int update_tx(be_conn *conn, void *ud, be_error **err) {
  write_ctx *c = ud;
  uint32_t m = c->v.fields;
  be_user_free(c->result); /* a retried transaction starts over */
  c->result = NULL;
  int64_t now = be__svc_now(&c->app->res);

  be__buf b;
  be__buf_init(&b);
  be__buf_puts(&b, "{\"fields\":[");
  static const char *names[] = {"email", "name", "bio", "extra", "status"};
  int first = 1;
  for (int i = 0; i < 5; i++) {
    if (!(m & (1u << i))) continue;
    be__buf_puts(&b, first ? "\"" : ",\"");
    be__buf_puts(&b, names[i]);
    be__buf_puts(&b, "\"");
    first = 0;
  }
  be__buf_puts(&b, "]");

  int32_t old_status = 0;
  int read = c->want_row || (m & OLD_NEEDED);
  int rc = read ? read_old(c, conn, c->want_row, now, &old_status, &b, err) : BE_OK;
  be__buf_puts(&b, "}");
  if (rc == BE_OK && (m & BE_USER_FIELD_EXTRA)) {
    rc = be__svc_json_object(conn, c->v.extra, c->v.extra_len, "extra", err);
    /* Without the read nothing has told a missing user yet: that answer
     * (404) comes before the one about the JSON, as it always has. */
    if (rc == BE_E_VALIDATION && !read && user_missing(conn, c->id)) {
      if (err) { be_error_free(*err); *err = NULL; }
      rc = not_found(c->id, err);
    }
  }
  if (rc != BE_OK) { be__buf_free(&b); return rc; }

  char sql[256] = "UPDATE users SET updated_at = ?1";
  if (m & BE_USER_FIELD_EMAIL) strcat(sql, ", email = ?2");
  if (m & BE_USER_FIELD_NAME) strcat(sql, ", name = ?3");
  if (m & BE_USER_FIELD_BIO) strcat(sql, ", bio = ?4");
  if (m & BE_USER_FIELD_EXTRA) strcat(sql, ", extra = ?5");
  if (m & BE_USER_FIELD_STATUS) strcat(sql, ", status = ?6");
  strcat(sql, " WHERE id = ?7");
  be_stmt *st = NULL;
  rc = be_conn_prepare(&st, conn, sql, err);
  if (rc == BE_OK) rc = be_stmt_bind_int64(st, 1, now, err);
  if (rc == BE_OK && (m & BE_USER_FIELD_EMAIL)) rc = be_stmt_bind_text(st, 2, c->v.email, c->v.email_len, err);
  if (rc == BE_OK && (m & BE_USER_FIELD_NAME)) rc = be_stmt_bind_text(st, 3, c->v.name, c->v.name_len, err);
  if (rc == BE_OK && (m & BE_USER_FIELD_BIO)) rc = be_stmt_bind_text(st, 4, c->v.bio, c->v.bio_len, err);
  if (rc == BE_OK && (m & BE_USER_FIELD_EXTRA)) rc = be_stmt_bind_text(st, 5, c->v.extra, c->v.extra_len, err);
  if (rc == BE_OK && (m & BE_USER_FIELD_STATUS)) rc = be_stmt_bind_int64(st, 6, c->v.status, err);
  if (rc == BE_OK) rc = be_stmt_bind_int64(st, 7, c->id, err);
  if (rc == BE_OK) rc = be_stmt_step(st, err);
  if (rc == BE_DONE) rc = (read || be_conn_changes(conn) > 0) ? BE_OK : not_found(c->id, err);
  be_stmt_finalize(st);
  if (rc != BE_OK) { be__buf_free(&b); return conflict_email(rc, err); }

  int status_changed = (m & BE_USER_FIELD_STATUS) && c->v.status != old_status;
  if (status_changed) rc = be__perm_bump(conn, err);
  if (rc == BE_OK && status_changed && c->v.status == BE_USER_DISABLED) {
    rc = be__svc_exec_i64(conn, "UPDATE sessions SET revoked = 1 WHERE user_id = ?1 AND revoked = 0",
                          &c->id, 1, NULL, err);
    /* Reset links mailed before the disable must not work after a
     * re-enable (accounts are often disabled after a mailbox takeover). */
    if (rc == BE_OK)
      rc = be__svc_exec_i64(conn, "DELETE FROM password_resets WHERE user_id = ?1", &c->id, 1,
                            NULL, err);
  }
  if (rc != BE_OK) { be__buf_free(&b); return rc; }
  return audit_json(c, conn, "user.update", &b, err);
}

/* After a committed write: readers must not keep the old value. */
static void invalidate(be_app *app, int64_t id) {
  atomic_fetch_add(&app->user_gen, 1);
  char key[32];
  int klen = key_of(key, sizeof key, id);
  be_cache_delete(app->res.cache, key, (size_t)klen);
}

int be_user_update(be_user **out, be_app *app, int64_t actor_id, int64_t id,
                   const be_user_input *in, be_error **err) {
  if (out) *out = NULL;
  if (app == NULL || in == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_user_update: NULL argument");
  if (in->version != BE_USER_INPUT_VERSION)
    return be__error_set(err, BE_E_MISUSE, "be_user_input: unknown version %u", (unsigned)in->version);
  int rc = be__svc_check_actor(actor_id, err);
  if (rc == BE_OK) rc = be__svc_check_id(id, "id", err);
  if (rc != BE_OK) return rc;
  if (in->fields == 0 || (in->fields & ~(uint32_t)BE_USER_FIELD_ALL))
    return be__error_field(err, "fields", "must name one or more BE_USER_FIELD_* bits and no other");
  write_ctx c;
  memset(&c, 0, sizeof c);
  c.app = app;
  c.actor_id = actor_id;
  c.id = id;
  c.want_row = out != NULL;
  rc = check_input(&c.v, in, in->fields, err);
  if (rc != BE_OK) return rc;
  rc = be__svc_write(&app->res, update_tx, &c, err);
  if (rc != BE_OK) { be_user_free(c.result); return rc; }
  invalidate(app, id);
  if (out) *out = c.result;
  else be_user_free(c.result);
  return BE_OK;
}

static int delete_tx(be_conn *conn, void *ud, be_error **err) {
  write_ctx *c = ud;
  fields f;
  be_user *u = NULL;
  int rc = select_one(conn, "SELECT " COLS " FROM users WHERE id = ?1", c->id, NULL, 0, &f, &u,
                      NULL, NULL, err);
  if (rc != BE_OK) return rc;
  /* Explicit deletes, not only ON DELETE CASCADE: correct even on a
   * connection with foreign keys off. */
  static const char *const sqls[] = {
      "DELETE FROM sessions WHERE user_id = ?1", "DELETE FROM password_resets WHERE user_id = ?1",
      "DELETE FROM user_roles WHERE user_id = ?1", "DELETE FROM users WHERE id = ?1"};
  for (size_t i = 0; i < sizeof sqls / sizeof sqls[0] && rc == BE_OK; i++)
    rc = be__svc_exec_i64(conn, sqls[i], &c->id, 1, NULL, err);
  if (rc == BE_OK) rc = be__perm_bump(conn, err);
  if (rc == BE_OK) {
    be__buf b;
    be__buf_init(&b);
    be__buf_puts(&b, "{\"email\":");
    be__buf_json_string(&b, u->email, strlen(u->email));
    be__buf_puts(&b, "}");
    rc = audit_json(c, conn, "user.delete", &b, err);
  }
  be_user_free(u);
  return rc;
}

int be_user_delete(be_app *app, int64_t actor_id, int64_t id, be_error **err) {
  if (app == NULL) return be__error_set(err, BE_E_MISUSE, "be_user_delete: app is NULL");
  int rc = be__svc_check_actor(actor_id, err);
  if (rc == BE_OK) rc = be__svc_check_id(id, "id", err);
  if (rc != BE_OK) return rc;
  write_ctx c;
  memset(&c, 0, sizeof c);
  c.app = app;
  c.actor_id = actor_id;
  c.id = id;
  rc = be__svc_write(&app->res, delete_tx, &c, err);
  if (rc == BE_OK) invalidate(app, id);
  return rc;
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
