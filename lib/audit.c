/* SPDX-License-Identifier: MIT */
/*
 * The audit log: hash-chained rows written inside the caller's
 * transaction, a verifier that walks the chain, and a paginated query.
 *
 * Row hash = BLAKE2b-256 over
 *   "libbackend.audit.v1" NUL, u64be(id), u64be(actor_id), lp(action),
 *   lp(target_type), u64be(target_id), u64be(at), lp(details), prev_hash
 * where lp(s) = u64be(byte length) followed by the bytes. Length prefixes
 * make the encoding unambiguous (no "ab"+"c" == "a"+"bc"), and the id is
 * part of it so rows cannot be renumbered. The previous hash is read in
 * the same write transaction as the insert, and SQLite serialises write
 * transactions, so the chain never forks.
 */
#include <backend/audit.h>

#include <sodium.h>
#include <string.h>

#include "alloc.h"
#include "audit.h"
#include "error.h"
#include "pool.h"
#include "svc_input.h"
#include "svc_sql.h"
#include "svc_time.h"
#include "utf8.h"
#include "versioned.h"

#define CURSOR_TAG 'A'
_Static_assert(BE_AUDIT_HASH_BYTES == BE__SVC_HASH_BYTES, "audit hashes are bound as 'h'");
#define DOMAIN "libbackend.audit.v1"

static void put_u64(crypto_generichash_state *h, uint64_t v) {
  unsigned char b[8];
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (56 - 8 * i));
  crypto_generichash_update(h, b, sizeof b);
}

static void put_str(crypto_generichash_state *h, const char *s, size_t len) {
  put_u64(h, (uint64_t)len);
  if (len) crypto_generichash_update(h, (const unsigned char *)s, len);
}

static void row_hash(unsigned char out[BE_AUDIT_HASH_BYTES], int64_t id, int64_t actor,
                     const char *action, size_t action_len, const char *ttype, size_t ttype_len,
                     int64_t target, int64_t at, const char *details, size_t details_len,
                     const unsigned char prev[BE_AUDIT_HASH_BYTES]) {
  crypto_generichash_state h;
  crypto_generichash_init(&h, NULL, 0, BE_AUDIT_HASH_BYTES);
  crypto_generichash_update(&h, (const unsigned char *)DOMAIN, sizeof DOMAIN);
  put_u64(&h, (uint64_t)id);
  put_u64(&h, (uint64_t)actor);
  put_str(&h, action, action_len);
  put_str(&h, ttype, ttype_len);
  put_u64(&h, (uint64_t)target);
  put_u64(&h, (uint64_t)at);
  put_str(&h, details, details_len);
  crypto_generichash_update(&h, prev, BE_AUDIT_HASH_BYTES);
  crypto_generichash_final(&h, out, BE_AUDIT_HASH_BYTES);
}

/* 1..BE_AUDIT_NAME_MAX bytes of [a-z0-9_.]. */
static int valid_name(const char *s, size_t len) {
  if (len == 0 || len > BE_AUDIT_NAME_MAX) return 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.')) return 0;
  }
  return 1;
}

/* The checks every row passes, whoever writes it. */
static int check_row(be_conn *conn, int64_t actor_id, const char *action, size_t action_len,
                     const char *ttype, size_t ttype_len, const char *details, size_t details_len,
                     be_error **err) {
  int rc = be__svc_check_actor(actor_id, err);
  if (rc != BE_OK) return rc;
  if (!valid_name(action, action_len))
    return be__error_field(err, "action", "must be 1..%d bytes of [a-z0-9_.]", BE_AUDIT_NAME_MAX);
  if (!valid_name(ttype, ttype_len))
    return be__error_field(err, "target_type", "must be 1..%d bytes of [a-z0-9_.]",
                           BE_AUDIT_NAME_MAX);
  if (details_len > BE_AUDIT_DETAILS_MAX)
    return be__error_field(err, "details", "is longer than %d bytes", BE_AUDIT_DETAILS_MAX);
  if (!be_conn_in_transaction(conn))
    return be__error_set(err, BE_E_MISUSE, "audit rows must be written inside a transaction");
  if (!be__utf8_valid(details, details_len))
    return be__error_field(err, "details", "is not valid UTF-8");
  return BE_OK;
}

/* The chain head: columns id, hash. */
#define HEAD_SQL "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1"

typedef struct head {
  int64_t id;
  unsigned char *hash; /* BE_AUDIT_HASH_BYTES */
} head;

static int read_head(be_stmt *st, void *ud, be_error **err) {
  (void)err;
  head *h = ud;
  size_t hl = 0;
  const void *hash = be_stmt_column_blob(st, 1, &hl);
  h->id = be_stmt_column_int64(st, 0);
  /* A damaged head still chains: its bytes (whatever they are) are
   * hashed in, and verify reports the damage. */
  if (hash && hl == BE_AUDIT_HASH_BYTES) memcpy(h->hash, hash, hl);
  return BE_OK;
}

/* Append a checked row (check_row) on conn. */
static int append(int64_t *out_id, const be__app_res *res, be_conn *conn, int64_t actor_id,
                  const char *action, size_t action_len, const char *ttype, size_t ttype_len,
                  int64_t target_id, const char *details, size_t details_len, be_error **err) {
  unsigned char prev[BE_AUDIT_HASH_BYTES] = {0};
  head h = {0, prev}; /* read inside the caller's write transaction */
  int rc = be__svc_first(conn, read_head, &h, err, HEAD_SQL, "");
  if (rc < 0) return rc;
  int64_t id = h.id + 1;
  int64_t at = be__svc_now(res);
  unsigned char hash[BE_AUDIT_HASH_BYTES];
  row_hash(hash, id, actor_id, action, action_len, ttype, ttype_len, target_id, at, details,
           details_len, prev);
  rc = be__svc_exec(conn, NULL, err,
                    "INSERT INTO audit_log (id, actor_id, action, target_type, target_id, at,"
                    " details, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    "iissiishh", id, actor_id, action, action_len, ttype, ttype_len, target_id, at,
                    details, details_len, prev, hash);
  /* The CHECK (json_valid(details)) constraint refused the row. */
  if (rc == BE_E_VALIDATION)
    return be__svc_field_error(rc, err, "details", "must be valid JSON", "invalid details");
  if (rc == BE_OK && out_id) *out_id = id;
  return rc;
}

int be__audit_write(const be__app_res *res, be_conn *conn, int64_t actor_id, const char *action,
                    const char *target_type, int64_t target_id, const char *details_json,
                    be_error **err) {
  if (res == NULL || conn == NULL || action == NULL || target_type == NULL)
    return be__error_set(err, BE_E_MISUSE, "be__audit_write: NULL argument");
  if (details_json == NULL) details_json = "{}";
  size_t alen = strlen(action), tlen = strlen(target_type);
  size_t dlen = strnlen(details_json, BE_AUDIT_DETAILS_MAX + 1);
  int rc = check_row(conn, actor_id, action, alen, target_type, tlen, details_json, dlen, err);
  if (rc != BE_OK) return rc;
  return append(NULL, res, conn, actor_id, action, alen, target_type, tlen, target_id,
                details_json, dlen, err);
}

/* libbackend's own actions: a host row may not pass for one of them. */
static int reserved_action(const char *action, size_t len) {
  static const char *const prefixes[] = {"user.", "auth.", "perm."};
  for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
    if (len >= 5 && memcmp(action, prefixes[i], 5) == 0) return 1;
  return 0;
}

int be_audit_write(int64_t *out_id, be_app *app, be_conn *conn, int64_t actor_id,
                   const char *action, size_t action_len, const char *target_type,
                   size_t target_type_len, int64_t target_id, const char *details_json,
                   size_t details_json_len, be_error **err) {
  if (out_id) *out_id = 0;
  if (app == NULL || conn == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_audit_write: NULL app or connection");
  if (!be__pool_holds(app->res.pool, conn))
    return be__error_set(err, BE_E_MISUSE,
                         "be_audit_write: conn is not a connection the caller holds from the "
                         "app's pool");
  size_t alen = 0, tlen = 0, dlen = 2;
  int rc = be__svc_str(action, action_len, "action", BE_AUDIT_NAME_MAX, &alen, err);
  if (rc == BE_OK && reserved_action(action, alen))
    rc = be__error_field(err, "action", "must not start with \"user.\", \"auth.\" or \"perm.\"");
  if (rc == BE_OK)
    rc = be__svc_str(target_type, target_type_len, "target_type", BE_AUDIT_NAME_MAX, &tlen, err);
  if (details_json == NULL) details_json = "{}";
  else if (rc == BE_OK)
    rc = be__svc_str(details_json, details_json_len, "details", BE_AUDIT_DETAILS_MAX, &dlen, err);
  if (rc == BE_OK)
    rc = check_row(conn, actor_id, action, alen, target_type, tlen, details_json, dlen, err);
  if (rc == BE_OK) rc = be__svc_json_object(conn, details_json, dlen, "details", err);
  if (rc != BE_OK) return rc;
  return append(out_id, &app->res, conn, actor_id, action, alen, target_type, tlen, target_id,
                details_json, dlen, err);
}

/* ---- verify ---- */

typedef struct chain {
  unsigned char prev[BE_AUDIT_HASH_BYTES]; /* the hash the next row must link to */
  int64_t prev_id;
  int64_t rows;
  int64_t bad; /* the first row that breaks the chain; 0: none */
} chain;

/* One row of the walk: its link, its id and its own hash must all hold. */
static int check_link(be_stmt *st, void *ud, be_error **err) {
  (void)err;
  chain *c = ud;
  c->rows++;
  int64_t id = be_stmt_column_int64(st, 0);
  size_t al = 0, tl = 0, dl = 0, pl = 0, hl = 0;
  const char *action = be_stmt_column_text(st, 2, &al);
  const char *ttype = be_stmt_column_text(st, 3, &tl);
  const char *details = be_stmt_column_text(st, 6, &dl);
  const unsigned char *ph = be_stmt_column_blob(st, 7, &pl);
  const unsigned char *h = be_stmt_column_blob(st, 8, &hl);
  int linked = ph && pl == BE_AUDIT_HASH_BYTES;
  unsigned char want[BE_AUDIT_HASH_BYTES];
  row_hash(want, id, be_stmt_column_int64(st, 1), action ? action : "", action ? al : 0,
           ttype ? ttype : "", ttype ? tl : 0, be_stmt_column_int64(st, 4),
           be_stmt_column_int64(st, 5), details ? details : "", details ? dl : 0,
           linked ? ph : c->prev);
  int ok = id == c->prev_id + 1 && linked && sodium_memcmp(ph, c->prev, BE_AUDIT_HASH_BYTES) == 0 &&
           h && hl == BE_AUDIT_HASH_BYTES && sodium_memcmp(h, want, BE_AUDIT_HASH_BYTES) == 0;
  if (!ok) {
    c->bad = id;
    return BE_DONE;
  }
  memcpy(c->prev, h, BE_AUDIT_HASH_BYTES);
  c->prev_id = id;
  return BE_OK;
}

int be_audit_verify(int64_t *out_first_bad_id, int64_t *out_rows, be_app *app, be_error **err) {
  if (out_first_bad_id == NULL || app == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_audit_verify: NULL argument");
  *out_first_bad_id = 0;
  if (out_rows) *out_rows = 0;
  chain c;
  memset(&c, 0, sizeof c);
  int rc = be__svc_each_pooled(&app->res, check_link, &c, err,
                               "SELECT id, actor_id, action, target_type, target_id, at, details,"
                               " prev_hash, hash FROM audit_log ORDER BY id",
                               "");
  if (rc != BE_OK) return rc;
  *out_first_bad_id = c.bad;
  if (out_rows) *out_rows = c.rows;
  return BE_OK;
}

int be_audit_head(int64_t *out_id, uint8_t *out_hash, be_app *app, be_error **err) {
  if (out_id == NULL || out_hash == NULL || app == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_audit_head: NULL argument");
  *out_id = 0;
  memset(out_hash, 0, BE_AUDIT_HASH_BYTES);
  head h = {0, out_hash};
  int rc = be__svc_first_pooled(&app->res, read_head, &h, err, HEAD_SQL, "");
  if (rc < 0) return rc;
  *out_id = h.id;
  return BE_OK;
}

/* ---- query ---- */

typedef struct audit_row {
  int64_t id, actor_id, target_id, at;
  char *action, *target_type, *details;
} audit_row;

struct be_audit_page {
  size_t count;
  size_t limit;
  audit_row *rows;
  char cursor[BE__CURSOR_MAX + 1];
  int has_next;
};

int be_audit_query_options_init(be_audit_query_options *opts, uint32_t version) {
  static const be_audit_query_options defaults = BE_AUDIT_QUERY_OPTIONS_INIT;
  return be__versioned_init(opts, sizeof *opts, &defaults, version, BE_AUDIT_QUERY_OPTIONS_VERSION);
}

void be_audit_page_free(be_audit_page *page) {
  if (page == NULL) return;
  for (size_t i = 0; i < page->count; i++) {
    be__free(page->rows[i].action);
    be__free(page->rows[i].target_type);
    be__free(page->rows[i].details);
  }
  be__free(page->rows);
  be__free(page);
}

/* A query's parameters: the options with defaults, checked; the time
 * range in ns and the id the page starts below. */
typedef struct query {
  be_audit_query_options o;
  int64_t from, to, before;
} query;

static int query_args(query *q, const be_audit_query_options *opts, be_error **err) {
  be_audit_query_options init = BE_AUDIT_QUERY_OPTIONS_INIT;
  q->o = init;
  if (opts) {
    int rc = be__svc_check_version(opts->version, BE_AUDIT_QUERY_OPTIONS_VERSION,
                                   "be_audit_query_options", err);
    if (rc != BE_OK) return rc;
    q->o = *opts;
  }
  be_audit_query_options *o = &q->o;
  if (o->limit == 0) o->limit = 50;
  if (o->limit < 1 || o->limit > BE_AUDIT_PAGE_MAX)
    return be__error_field(err, "limit", "must be 1..%d", BE_AUDIT_PAGE_MAX);
  if (o->match_user != 0 && o->match_user != 1)
    return be__error_field(err, "match_user", "must be 0 or 1");
  if (o->match_user && o->user_id < 0)
    return be__error_field(err, "user_id", "must be 0 (the system) or a user id");
  if (o->to_ms != 0 && o->to_ms <= o->from_ms)
    return be__error_field(err, "to_ms", "must be after from_ms");
  /* Rows store nanoseconds: [from_ms, to_ms) in ms is [from, to) in ns. */
  q->from = be__svc_ms_to_ns(o->from_ms);
  q->to = o->to_ms ? be__svc_ms_to_ns(o->to_ms) : INT64_MAX;
  q->before = INT64_MAX;
  if (o->cursor) return be__svc_cursor_decode(o->cursor, o->cursor_len, CURSOR_TAG, &q->before, err);
  return BE_OK;
}

static int add_row(be_stmt *st, void *ud, be_error **err) {
  be_audit_page *page = ud;
  if (page->count == page->limit) {
    page->has_next = 1;
    return BE_DONE;
  }
  audit_row *r = &page->rows[page->count++];
  r->id = be_stmt_column_int64(st, 0);
  r->actor_id = be_stmt_column_int64(st, 1);
  r->target_id = be_stmt_column_int64(st, 4);
  r->at = be_stmt_column_int64(st, 5);
  r->action = be__svc_dup_text(st, 2);
  r->target_type = be__svc_dup_text(st, 3);
  r->details = be__svc_dup_text(st, 6);
  if (!r->action || !r->target_type || !r->details) return be__error_oom(err);
  return BE_OK;
}

#define QUERY_COLS "SELECT id, actor_id, action, target_type, target_id, at, details FROM audit_log"

int be_audit_query(be_audit_page **out, be_app *app, const be_audit_query_options *opts,
                   be_error **err) {
  if (out == NULL || app == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_audit_query: NULL argument");
  *out = NULL;
  query q;
  int rc = query_args(&q, opts, err);
  if (rc != BE_OK) return rc;
  be_audit_page *page = be__calloc(1, sizeof *page);
  if (page == NULL) return be__error_oom(err);
  page->limit = (size_t)q.o.limit;
  page->rows = be__calloc(page->limit, sizeof *page->rows);
  if (page->rows == NULL) { be__free(page); return be__error_oom(err); }
  const char *sql = q.o.match_user
                        ? QUERY_COLS " WHERE (actor_id = ?1 OR (target_type = 'user' AND target_id = ?1))"
                          " AND at >= ?2 AND at < ?3 AND id < ?4 ORDER BY id DESC LIMIT ?5"
                        : QUERY_COLS " WHERE ?1 = ?1 AND at >= ?2 AND at < ?3 AND id < ?4"
                          " ORDER BY id DESC LIMIT ?5";
  /* one extra row tells whether there is a next page */
  rc = be__svc_each_pooled(&app->res, add_row, page, err, sql, "iiiii", q.o.user_id, q.from, q.to,
                           q.before, (int64_t)page->limit + 1);
  if (rc != BE_OK) { be_audit_page_free(page); return rc; }
  if (page->has_next) be__svc_cursor_encode(page->cursor, CURSOR_TAG, page->rows[page->count - 1].id);
  *out = page;
  return BE_OK;
}

size_t be_audit_page_count(const be_audit_page *p) { return p ? p->count : 0; }
const char *be_audit_page_next_cursor(const be_audit_page *p) {
  return (p && p->has_next) ? p->cursor : NULL;
}

static const audit_row *row_at(const be_audit_page *p, size_t i) {
  return (p && i < p->count) ? &p->rows[i] : NULL;
}

int64_t be_audit_page_id(const be_audit_page *p, size_t i) {
  const audit_row *r = row_at(p, i);
  return r ? r->id : 0;
}
int64_t be_audit_page_actor_id(const be_audit_page *p, size_t i) {
  const audit_row *r = row_at(p, i);
  return r ? r->actor_id : 0;
}
const char *be_audit_page_action(const be_audit_page *p, size_t i) {
  const audit_row *r = row_at(p, i);
  return r ? r->action : NULL;
}
const char *be_audit_page_target_type(const be_audit_page *p, size_t i) {
  const audit_row *r = row_at(p, i);
  return r ? r->target_type : NULL;
}
int64_t be_audit_page_target_id(const be_audit_page *p, size_t i) {
  const audit_row *r = row_at(p, i);
  return r ? r->target_id : 0;
}
int64_t be_audit_page_at_ms(const be_audit_page *p, size_t i) {
  const audit_row *r = row_at(p, i);
  return r ? be__svc_ns_to_ms(r->at) : 0;
}
const char *be_audit_page_details(const be_audit_page *p, size_t i) {
  const audit_row *r = row_at(p, i);
  return r ? r->details : NULL;
}
