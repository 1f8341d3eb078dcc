/* SPDX-License-Identifier: MIT */
/*
 * Password reset through the host's mailer, and the purge of dead rows.
 * request_reset answers BE_OK for every email, whether it exists, whether
 * the mail went out (a mailer failure is logged), after the same work:
 * any difference the caller can see or time would enumerate accounts
 * (Django CVE-2024-45231 leaked through the mail-failure path).
 */

#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "auth.h"
#include "auth_password.h"
#include "auth_token.h"
#include "error.h"
#include "mailer.h"
#include "svc_catalog.h"
#include "svc_time.h"

static const char BAD_RESET[] = "invalid or expired reset token";

/* The account a reset is for: its id (0: none), where to mail, and the
 * policy's context. */
typedef struct account {
  int64_t id;
  int email_whole; /* the email fitted (a cut address must not be mailed) */
  char email[BE__EMAIL_MAX + 1];
  char name[BE__NAME_CAP];
} account;

/* Columns id, email, name. */
static int read_account(be_stmt *st, void *ud, be_error **err) {
  (void)err;
  account *u = ud;
  u->id = be_stmt_column_int64(st, 0);
  be__svc_copy_text(st, 1, u->email, sizeof u->email, &u->email_whole);
  be__svc_copy_text(st, 2, u->name, sizeof u->name, NULL);
  return BE_OK;
}

/* ---- request --------------------------------------------------------- */

/*
 * Every request does the same work, so its time does not tell whether the
 * email is registered: a fresh token, its hash and its mail body, then one
 * write transaction running the same statements -- look the email up,
 * count the account's pending tokens, insert the token row, write the
 * audit row. A request that issues nothing (unknown email, disabled
 * account, enough tokens pending) inserts its row used and for no user
 * (user_id NULL), a row nothing can redeem, which the purge removes. Only
 * the mailer call of an issued token differs, after the commit:
 * backend/auth.h asks hosts to keep it short.
 */

typedef struct request_ctx {
  be__auth *a;
  const char *key; /* the email's lookup form */
  int64_t now;
  uint8_t token_hash[BE__TOKEN_HASH_BYTES];
  account u;  /* out: the active account with this email (id 0: none) */
  int issued; /* out: the token row was kept */
} request_ctx;

static int request_tx(be_conn *c, void *ud, be_error **err) {
  request_ctx *r = ud;
  memset(&r->u, 0, sizeof r->u);
  r->issued = 0;
  const be__app_res *res = r->a->res;
  int rc = be__svc_first(c, read_account, &r->u, err, be__sql(res, BE__SQL_RESET_ACCOUNT), "t",
                         r->key);
  if (rc < 0) return rc;
  int64_t uid = r->u.email_whole ? r->u.id : 0, pending = 0;
  rc = be__svc_ints(c, &pending, 1, err, be__sql(res, BE__SQL_RESET_PENDING), "ii", uid, r->now);
  if (rc != BE_ROW) return rc < 0 ? rc : be__error_set(err, BE_E_INTERNAL, "count returned no row");
  r->issued = uid != 0 && pending < BE_AUTH_RESET_MAX_PENDING;
  rc = be__svc_exec(c, NULL, err, be__sql(res, BE__SQL_RESET_INSERT), "hiiii",
                    r->token_hash, r->issued ? uid : 0, r->now,
                    be__ns_add(r->now, r->a->reset_ttl_ns), (int64_t)!r->issued);
  if (rc != BE_OK) return rc;
  /* Target 0: no active account has the email. */
  return be__audit_write(r->a->res, c, 0, "auth.reset_request", "user", uid,
                         r->issued ? "{\"issued\":true}" : "{\"issued\":false}", err);
}

static void discard_token(be__auth *a, const uint8_t *h) {
  be_conn *c = NULL;
  if (be__svc_acquire(a->res, &c, NULL) != BE_OK) return; /* it expires on its own */
  (void)be__svc_exec(c, NULL, NULL, be__sql(a->res, BE__SQL_RESET_DELETE_TOKEN), "h", h);
  be__svc_release(a->res, c);
}

/* The mail of a token; the token sits on a line of its own (the third) so
 * a mailer can turn it into a link. Made for every request, issued or
 * not. */
static void reset_body(char *body, size_t size, const be__auth *a, const char *token) {
  int64_t minutes = a->reset_ttl_ns / (60 * BE_NS_PER_SEC);
  snprintf(body, size,
           "Someone asked to reset the password of this account. Your reset code is:\n"
           "\n%s\n\n"
           "It can be used once and expires in %lld minute%s. If you did not ask for it, "
           "ignore this message: your password stays as it is.\n",
           token, (long long)(minutes > 0 ? minutes : 1), minutes == 1 ? "" : "s");
}

int be_auth_request_reset(be_app *app, const char *email, size_t email_len, be_error **err) {
  be__auth *a = NULL;
  int rc = be__auth_get(app, &a, err);
  if (rc != BE_OK) return rc;
  const be_mailer *m = a->res->opts.mailer;
  if (m == NULL || m->send == NULL)
    return be__error_set(err, BE_E_UNSUPPORTED, "password reset needs a mailer (be_app_options.mailer)");
  char key[BE__EMAIL_MAX + 1];
  rc = be__auth_email_key(email, email_len, key, err);
  if (rc != BE_OK) return rc;
  request_ctx r = {a, key, be__svc_now(a->res), {0}, {0}, 0};
  char token[BE_AUTH_TOKEN_LEN + 1], body[512];
  be__token_new(token, r.token_hash);
  reset_body(body, sizeof body, a, token);
  sodium_memzero(token, sizeof token);
  /* A failure here is no oracle: every email runs this transaction. */
  rc = be__svc_write(a->res, request_tx, &r, err);
  if (rc == BE_OK && r.issued &&
      be__mailer_send(a->res, r.u.id, "auth: the mailer could not send a password reset", r.u.email,
                      "Password reset", body) != BE_OK)
    discard_token(a, r.token_hash); /* nobody got it */
  sodium_memzero(body, sizeof body);
  return rc;
}

/* ---- reset ----------------------------------------------------------- */

typedef struct reset_ctx {
  be__auth *a;
  const uint8_t *token_hash;
  int64_t now;
  be__pw_write w;
  int ok; /* out: the token was consumed and the password set */
} reset_ctx;

static int reset_tx(be_conn *c, void *ud, be_error **err) {
  reset_ctx *r = ud;
  r->ok = 0;
  int64_t n = 0;
  /* Consuming the token is the check: of two concurrent resets with one
   * token, only one changes this row. */
  int rc = be__svc_exec(c, &n, err, be__sql(r->a->res, BE__SQL_RESET_CONSUME_TOKEN), "hii",
                        r->token_hash, r->now, r->w.user_id);
  if (rc != BE_OK || n != 1) return rc;
  /* The store consumes the user's other tokens. */
  rc = be__auth_store_password(r->a, c, &r->w, &r->ok, err);
  if (rc == BE_OK && !r->ok)
    rc = be__error_set(err, BE_E_UNAUTHORIZED, "%s", BAD_RESET); /* rolls back */
  return rc;
}

int be_auth_reset_password(be_app *app, const char *token, size_t token_len,
                           const char *new_password, size_t new_len, be_error **err) {
  be__auth *a = NULL;
  uint8_t h[BE__TOKEN_HASH_BYTES];
  size_t len = 0;
  int rc = be__auth_token_arg(app, token, token_len, BAD_RESET, &a, h, err);
  if (rc == BE_OK) rc = be__auth_pw_arg(new_password, new_len, "new_password", &len, err);
  if (rc != BE_OK) return rc;
  /* The user a live reset token belongs to, with the policy's context. */
  account u = {0};
  rc = be__svc_first_pooled(a->res, read_account, &u, err,
                            be__sql(a->res, BE__SQL_RESET_ACCOUNT_BY_TOKEN), "hi", h,
                            be__svc_now(a->res));
  if (rc < 0) return rc;
  if (u.id == 0) return be__error_set(err, BE_E_UNAUTHORIZED, "%s", BAD_RESET);
  char hash[crypto_pwhash_STRBYTES];
  rc = be__pw_new_hash(a, hash, new_password, len, "new_password", u.email, u.name, err);
  if (rc != BE_OK) return rc;
  /* Expiry is judged again at write time: hashing took a while. */
  reset_ctx r = {a, h, be__svc_now(a->res), {u.id, u.id, "auth.password_reset", hash, NULL, NULL, 1, 0}, 0};
  rc = be__svc_write(a->res, reset_tx, &r, err);
  if (rc == BE_OK && !r.ok) rc = be__error_set(err, BE_E_UNAUTHORIZED, "%s", BAD_RESET);
  if (rc == BE_OK) be__mailer_notify(a->res, u.id, BE__NOTICE_PASSWORD_RESET, u.email);
  return rc;
}

/* ---- purge ----------------------------------------------------------- */

typedef struct purge_ctx {
  be__auth *a;
  int64_t now;
  int64_t deleted;
} purge_ctx;

static int purge_tx(be_conn *c, void *ud, be_error **err) {
  purge_ctx *p = ud;
  int64_t n1 = 0, n2 = 0;
  int rc = be__svc_exec(c, &n1, err, be__sql(p->a->res, BE__SQL_PURGE_SESSIONS), "ii",
                        p->now, be__ns_sub(p->now, p->a->idle_ns));
  if (rc != BE_OK) return rc;
  rc = be__svc_exec(c, &n2, err, be__sql(p->a->res, BE__SQL_PURGE_RESETS), "i", p->now);
  p->deleted = n1 + n2;
  return rc;
}

int be_auth_purge_expired(int64_t *out_deleted, be_app *app, be_error **err) {
  if (out_deleted) *out_deleted = 0;
  be__auth *a = NULL;
  int rc = be__auth_get(app, &a, err);
  if (rc != BE_OK) return rc;
  purge_ctx p = {a, be__svc_now(a->res), 0};
  rc = be__svc_write(a->res, purge_tx, &p, err);
  if (rc == BE_OK && out_deleted) *out_deleted = p.deleted;
  return rc;
}
