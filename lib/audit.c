/* SPDX-License-Identifier: MIT */
/*
 * The audit log: hash-chained rows written inside the caller's
 * transaction, a verifier that walks the chain (against an anchor when
 * given one), the chain's key, and a paginated query.
 *
 * The row encoding is documented in backend/audit.h ("Row hash"), where a
 * host reads it to recompute the chain elsewhere. Length prefixes make the
 * encoding unambiguous (no "ab"+"c" == "a"+"bc"), and the id is part of
 * it so rows cannot be renumbered. The previous hash is read in the same
 * write transaction as the insert, and SQLite serialises write
 * transactions, so the chain never forks.
 *
 * With a key (app option audit_key), rows from audit_key.keyed_from on
 * are hashed with BLAKE2b in keyed mode; the audit_key row holds
 * keyed_from and a keyed check value over it, so neither a wrong key nor
 * a moved keyed_from goes unnoticed.
 */
#include <backend/audit.h>

#include <sodium.h>
#include <string.h>

#include "alloc.h"
#include "metrics.h"
#include "audit.h"
#include "error.h"
#include "pool.h"
#include "svc_catalog.h"
#include "svc_input.h"
#include "svc_sql.h"
#include "svc_time.h"
#include "utf8.h"
#include "versioned.h"

#define CURSOR_TAG 'A'
_Static_assert(BE_AUDIT_HASH_BYTES == BE__SVC_HASH_BYTES, "audit hashes are bound as 'h'");
_Static_assert(BE_AUDIT_KEY_MIN_BYTES >= crypto_generichash_KEYBYTES_MIN &&
                 BE_AUDIT_KEY_MAX_BYTES <= crypto_generichash_KEYBYTES_MAX,
               "audit keys are BLAKE2b keys");
#define DOMAIN "libbackend.audit.v1"
#define KEY_DOMAIN "libbackend.audit.key.v1"

/* The key a row is hashed with: none (len 0) below keyed_from. */
typedef struct chain_key {
  const uint8_t *key; /* NULL: the chain is unkeyed */
  size_t len;
  int64_t keyed_from; /* first keyed row id; INT64_MAX when unkeyed */
} chain_key;

static void key_of(const uint8_t **key, size_t *len, const chain_key *k, int64_t id) {
  int keyed = k->key != NULL && id >= k->keyed_from;
  *key = keyed ? k->key : NULL;
  *len = keyed ? k->len : 0;
}

static void put_u64(crypto_generichash_state *h, uint64_t v) {
  unsigned char b[8];
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (56 - 8 * i));
  crypto_generichash_update(h, b, sizeof b);
}

static void put_str(crypto_generichash_state *h, const char *s, size_t len) {
  put_u64(h, (uint64_t)len);
  if (len) crypto_generichash_update(h, (const unsigned char *)s, len);
}

/* The hashed fields of a row. */
typedef struct row_fields {
  int64_t id, actor, target, at;
  const char *action, *ttype, *details;
  size_t action_len, ttype_len, details_len;
} row_fields;

static void row_hash(unsigned char out[BE_AUDIT_HASH_BYTES], const chain_key *k,
                     const row_fields *r, const unsigned char prev[BE_AUDIT_HASH_BYTES]) {
  const uint8_t *key = NULL;
  size_t key_len = 0;
  key_of(&key, &key_len, k, r->id);
  crypto_generichash_state h;
  crypto_generichash_init(&h, key, key_len, BE_AUDIT_HASH_BYTES);
  crypto_generichash_update(&h, (const unsigned char *)DOMAIN, sizeof DOMAIN);
  put_u64(&h, (uint64_t)r->id);
  put_u64(&h, (uint64_t)r->actor);
  put_str(&h, r->action, r->action_len);
  put_str(&h, r->ttype, r->ttype_len);
  put_u64(&h, (uint64_t)r->target);
  put_u64(&h, (uint64_t)r->at);
  put_str(&h, r->details, r->details_len);
  crypto_generichash_update(&h, prev, BE_AUDIT_HASH_BYTES);
  crypto_generichash_final(&h, out, BE_AUDIT_HASH_BYTES);
  sodium_memzero(&h, sizeof h);
}

/* The check value of the audit_key row: keyed BLAKE2b-256 of KEY_DOMAIN,
 * its NUL and keyed_from. */
static void key_check(unsigned char out[BE_AUDIT_HASH_BYTES], const be__app_res *res,
                      int64_t keyed_from) {
  crypto_generichash_state h;
  crypto_generichash_init(&h, res->audit_key, res->audit_key_len, BE_AUDIT_HASH_BYTES);
  crypto_generichash_update(&h, (const unsigned char *)KEY_DOMAIN, sizeof KEY_DOMAIN);
  put_u64(&h, (uint64_t)keyed_from);
  crypto_generichash_final(&h, out, BE_AUDIT_HASH_BYTES);
  sodium_memzero(&h, sizeof h);
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

/* The chain head (BE__SQL_AUDIT_HEAD): columns id, hash. */
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
  const char *lock = be__sql(res, BE__SQL_AUDIT_LOCK);
  int rc = lock[0] ? be__svc_exec(conn, NULL, err, lock, "") : BE_OK;
  if (rc == BE_OK) rc = be__svc_first(conn, read_head, &h, err, be__sql(res, BE__SQL_AUDIT_HEAD), "");
  if (rc < 0) return rc;
  if (h.id < 0 || h.id == INT64_MAX) /* written past the library: no id follows it */
    return be__error_set(err, BE_E_STORAGE, "the audit log's last row has id %lld: the log is "
                                            "damaged (be_audit_verify() says where)",
                         (long long)h.id);
  int64_t id = h.id + 1;
  int64_t at = be__svc_now(res);
  unsigned char hash[BE_AUDIT_HASH_BYTES];
  /* be__audit_open() made sure a keyed app writes on a keyed log. */
  chain_key k = {res->audit_key_len ? res->audit_key : NULL, res->audit_key_len, 1};
  row_fields r = {id, actor_id, target_id, at, action, ttype, details,
                  action_len, ttype_len, details_len};
  row_hash(hash, &k, &r, prev);
  rc = be__svc_exec(conn, NULL, err, be__sql(res, BE__SQL_AUDIT_INSERT), "iissiishh",
                    id, actor_id, action, action_len, ttype, ttype_len, target_id, at,
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

static int audit_write_body(int64_t *out_id, be_app *app, be_conn *conn, int64_t actor_id,
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
  if (rc == BE_OK) rc = be__svc_json_object(conn, be__sql(&app->res, BE__SQL_JSON_OBJECT), details_json, dlen, "details", err);
  if (rc != BE_OK) return rc;
  return append(out_id, &app->res, conn, actor_id, action, alen, target_type, tlen, target_id,
                details_json, dlen, err);
}

int be_audit_write(int64_t *out_id, be_app *app, be_conn *conn, int64_t actor_id,
                   const char *action, size_t action_len, const char *target_type,
                   size_t target_type_len, int64_t target_id, const char *details_json,
                   size_t details_json_len, be_error **err) {
  BE__OP_RECORD(app, BE_OP_AUDIT_WRITE, audit_write_body(out_id, app, conn, actor_id, action, action_len, target_type, target_type_len, target_id, details_json, details_json_len, err));
}

/* ---- the chain's key ---- */

/* The audit_key row as read with the app's key (BE__SQL_AUDIT_KEY_ROW):
 * columns keyed_from, key_check. */
typedef struct key_row {
  const be__app_res *res;
  int found;
  int64_t keyed_from;
  int check_ok; /* key_check is the keyed check value of keyed_from */
} key_row;

static int read_key_row(be_stmt *st, void *ud, be_error **err) {
  (void)err;
  key_row *k = ud;
  size_t len = 0;
  const void *check = be_stmt_column_blob(st, 1, &len);
  k->found = 1;
  k->keyed_from = be_stmt_column_int64(st, 0);
  if (k->res->audit_key_len == 0 || check == NULL || len != BE_AUDIT_HASH_BYTES) return BE_OK;
  unsigned char want[BE_AUDIT_HASH_BYTES];
  key_check(want, k->res, k->keyed_from);
  k->check_ok = sodium_memcmp(want, check, sizeof want) == 0;
  return BE_OK;
}

/* Why a keyed app may not write on this log (0: it may). */
#define KEY_WRONG 1
#define KEY_UNKEYED_ROWS 2

typedef struct key_open {
  key_row row;
  int adopt;
  int problem;
} key_open;

/* A keyed app's first look at the log, in a write transaction: an
 * existing key record must check out with the key; otherwise the log is
 * keyed from its next row on, which for a log holding unkeyed rows only
 * an explicit audit_key_adopt allows (a deleted key record must not turn
 * a keyed log back into an unkeyed one silently). */
static int key_open_tx(be_conn *c, void *ud, be_error **err) {
  key_open *o = ud;
  o->problem = 0;
  o->row.found = o->row.check_ok = 0;
  const be__app_res *res = o->row.res;
  int rc = be__svc_first(c, read_key_row, &o->row, err, be__sql(res, BE__SQL_AUDIT_KEY_ROW), "");
  if (rc < 0) return rc;
  if (o->row.found) {
    o->problem = o->row.check_ok ? 0 : KEY_WRONG;
    return BE_OK;
  }
  int64_t head = 0;
  rc = be__svc_ints(c, &head, 1, err, be__sql(res, BE__SQL_AUDIT_MAX_ID), "");
  if (rc != BE_ROW) return rc < 0 ? rc : be__error_set(err, BE_E_INTERNAL, "no audit head");
  if (head > 0 && !o->adopt) {
    o->problem = KEY_UNKEYED_ROWS;
    return BE_OK;
  }
  unsigned char check[BE_AUDIT_HASH_BYTES];
  key_check(check, res, head + 1);
  return be__svc_exec(c, NULL, err, be__sql(res, BE__SQL_AUDIT_KEY_INSERT), "ih", head + 1, check);
}

int be__audit_open(const be__app_res *res, be_conn *conn, be_error **err) {
  if (res->audit_key_len == 0) {
    int rc = be__svc_first(conn, NULL, NULL, err, be__sql(res, BE__SQL_AUDIT_KEY_EXISTS), "");
    if (rc == BE_ROW)
      return be__error_field(err, "audit_key",
                             "is required: this database's audit log is keyed");
    return rc < 0 ? rc : BE_OK;
  }
  key_open o = {{res, 0, 0, 0}, res->opts.audit_key_adopt == 1, 0};
  int rc = key_open_tx(conn, &o, err);
  if (rc != BE_OK) return rc;
  if (o.problem == KEY_WRONG)
    return be__error_field(err, "audit_key",
                           "does not match the key this database's audit log is keyed with");
  if (o.problem == KEY_UNKEYED_ROWS)
    return be__error_field(err, "audit_key",
                           "the audit log already holds unkeyed rows: set audit_key_adopt = 1 "
                           "once to key it from its next row on");
  return BE_OK;
}

/* The key to verify with. A key record that does not check out (edited
 * or deleted) cannot move where the keyed rows start: every row must
 * then be keyed. */
static int verify_key(chain_key *k, const be__app_res *res, be_error **err) {
  k->key = NULL;
  k->len = 0;
  k->keyed_from = INT64_MAX;
  if (res->audit_key_len == 0) return BE_OK;
  key_row row = {res, 0, 0, 0};
  int rc = be__svc_first_pooled(res, read_key_row, &row, err, be__sql(res, BE__SQL_AUDIT_KEY_ROW), "");
  if (rc < 0) return rc;
  k->key = res->audit_key;
  k->len = res->audit_key_len;
  k->keyed_from = row.found && row.check_ok && row.keyed_from > 0 ? row.keyed_from : 1;
  return BE_OK;
}

/* ---- verify ---- */

typedef struct chain {
  chain_key key;
  unsigned char prev[BE_AUDIT_HASH_BYTES]; /* the hash the next row must link to */
  int64_t prev_id;
  int64_t rows;
  int64_t bad;           /* the first row that breaks the chain; 0: none */
  int64_t anchor_id;     /* 0: no anchor */
  const uint8_t *anchor; /* the anchor row's hash */
} chain;

/* 1 when each column of a chain row holds the type append() wrote. SQLite
 * keeps whatever type a write gives: an "at" or "target_id" rewritten as
 * the text '17x' reads as 17 (the hash holds) but drops out of every
 * query's comparisons, hiding the row. */
static int typed_as_written(be_stmt *st) {
  static const int32_t want[] = {BE_TYPE_INT, BE_TYPE_INT, BE_TYPE_TEXT,
                                 BE_TYPE_TEXT, BE_TYPE_INT, BE_TYPE_INT,
                                 BE_TYPE_TEXT, BE_TYPE_BLOB, BE_TYPE_BLOB};
  for (int32_t i = 0; i < (int32_t)(sizeof want / sizeof want[0]); i++)
    if (be_stmt_column_type(st, i) != want[i]) return 0;
  return 1;
}

/* One row of the walk: its columns' types, its link, its id and its own
 * hash must all hold, and the anchor row must have the anchor's hash. */
static int check_link(be_stmt *st, void *ud, be_error **err) {
  (void)err;
  chain *c = ud;
  c->rows++;
  row_fields r;
  memset(&r, 0, sizeof r);
  r.id = be_stmt_column_int64(st, 0);
  r.actor = be_stmt_column_int64(st, 1);
  r.action = be_stmt_column_text(st, 2, &r.action_len);
  r.ttype = be_stmt_column_text(st, 3, &r.ttype_len);
  r.target = be_stmt_column_int64(st, 4);
  r.at = be_stmt_column_int64(st, 5);
  r.details = be_stmt_column_text(st, 6, &r.details_len);
  if (!r.action) r.action_len = 0;
  if (!r.ttype) r.ttype_len = 0;
  if (!r.details) r.details_len = 0;
  size_t pl = 0, hl = 0;
  const unsigned char *ph = be_stmt_column_blob(st, 7, &pl);
  const unsigned char *h = be_stmt_column_blob(st, 8, &hl);
  int linked = ph && pl == BE_AUDIT_HASH_BYTES;
  unsigned char want[BE_AUDIT_HASH_BYTES];
  row_hash(want, &c->key, &r, linked ? ph : c->prev);
  int ok = typed_as_written(st) && r.id == c->prev_id + 1 && linked &&
           sodium_memcmp(ph, c->prev, BE_AUDIT_HASH_BYTES) == 0 && h &&
           hl == BE_AUDIT_HASH_BYTES && sodium_memcmp(h, want, BE_AUDIT_HASH_BYTES) == 0 &&
           (r.id != c->anchor_id || sodium_memcmp(h, c->anchor, BE_AUDIT_HASH_BYTES) == 0);
  if (!ok) { /* a row with an id at or below the last good one: the next id is missing */
    c->bad = r.id > c->prev_id ? r.id : c->prev_id + 1;
    return BE_DONE;
  }
  memcpy(c->prev, h, BE_AUDIT_HASH_BYTES);
  c->prev_id = r.id;
  return BE_OK;
}

/* Walk the whole chain; an anchor row missing at the end (rows cut off)
 * makes the first missing id the first bad one. */
static int walk(int64_t *out_first_bad_id, int64_t *out_rows, be_app *app, int64_t anchor_id,
                const uint8_t *anchor, be_error **err) {
  chain c;
  memset(&c, 0, sizeof c);
  c.anchor_id = anchor_id;
  c.anchor = anchor;
  int rc = verify_key(&c.key, &app->res, err);
  if (rc == BE_OK)
    rc = be__svc_each_pooled(&app->res, check_link, &c, err, be__sql(&app->res, BE__SQL_AUDIT_CHAIN),
                             "");
  if (rc != BE_OK) return rc;
  if (c.bad == 0 && c.prev_id < anchor_id) c.bad = c.prev_id + 1;
  *out_first_bad_id = c.bad;
  if (out_rows) *out_rows = c.rows;
  return BE_OK;
}

static int audit_verify_body(int64_t *out_first_bad_id, int64_t *out_rows, be_app *app, be_error **err) {
  if (out_first_bad_id) *out_first_bad_id = 0;
  if (out_rows) *out_rows = 0;
  if (out_first_bad_id == NULL || app == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_audit_verify: NULL argument");
  return walk(out_first_bad_id, out_rows, app, 0, NULL, err);
}

int be_audit_verify(int64_t *out_first_bad_id, int64_t *out_rows, be_app *app, be_error **err) {
  BE__OP_RECORD(app, BE_OP_AUDIT_VERIFY, audit_verify_body(out_first_bad_id, out_rows, app, err));
}

int be_audit_verify_anchor(int64_t *out_first_bad_id, int64_t *out_rows, be_app *app,
                           int64_t anchor_id, const uint8_t *anchor_hash, be_error **err) {
  if (out_first_bad_id) *out_first_bad_id = 0;
  if (out_rows) *out_rows = 0;
  if (out_first_bad_id == NULL || app == NULL || anchor_hash == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_audit_verify_anchor: NULL argument");
  if (anchor_id < 0) return be__error_field(err, "anchor_id", "must not be negative");
  static const uint8_t zero[BE_AUDIT_HASH_BYTES];
  if (anchor_id == 0 && sodium_memcmp(anchor_hash, zero, sizeof zero) != 0)
    return be__error_field(err, "anchor_hash", "must be 32 zero bytes with anchor_id 0");
  return walk(out_first_bad_id, out_rows, app, anchor_id, anchor_hash, err);
}

static int audit_head_body(int64_t *out_id, uint8_t *out_hash, be_app *app, be_error **err) {
  if (out_id == NULL || out_hash == NULL || app == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_audit_head: NULL argument");
  *out_id = 0;
  memset(out_hash, 0, BE_AUDIT_HASH_BYTES);
  head h = {0, out_hash};
  int rc = be__svc_first_pooled(&app->res, read_head, &h, err,
                                be__sql(&app->res, BE__SQL_AUDIT_HEAD), "");
  if (rc < 0) return rc;
  *out_id = h.id;
  return BE_OK;
}

int be_audit_head(int64_t *out_id, uint8_t *out_hash, be_app *app, be_error **err) {
  BE__OP_RECORD(app, BE_OP_AUDIT_HEAD, audit_head_body(out_id, out_hash, app, err));
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
  q->from = o->from_ms ? be__svc_ms_to_ns(o->from_ms) : INT64_MIN; /* 0: rows before 1970 too */
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

static int audit_query_body(be_audit_page **out, be_app *app, const be_audit_query_options *opts,
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
  if (page->rows == NULL) {
    be__free(page);
    return be__error_oom(err);
  }
  const char *sql =
    be__sql(&app->res, q.o.match_user ? BE__SQL_AUDIT_QUERY_USER : BE__SQL_AUDIT_QUERY_ALL);
  /* one extra row tells whether there is a next page */
  rc = be__svc_each_pooled(&app->res, add_row, page, err, sql, "iiiii", q.o.user_id, q.from, q.to,
                           q.before, (int64_t)page->limit + 1);
  if (rc != BE_OK) {
    be_audit_page_free(page);
    return rc;
  }
  if (page->has_next) be__svc_cursor_encode(page->cursor, CURSOR_TAG, page->rows[page->count - 1].id);
  *out = page;
  return BE_OK;
}

int be_audit_query(be_audit_page **out, be_app *app, const be_audit_query_options *opts,
                   be_error **err) {
  BE__OP_RECORD(app, BE_OP_AUDIT_QUERY, audit_query_body(out, app, opts, err));
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
