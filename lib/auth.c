/* SPDX-License-Identifier: MIT */
/*
 * AuthService: state, login with throttling, sessions, password set and
 * change. Password reset lives in auth_reset.c, the policy and hashing in
 * auth_password.c, tokens in auth_token.c.
 *
 * Two rules shape every function here:
 * - a database connection is never held while argon2id runs (60 ms at the
 *   default parameters would starve the pool): read, release, hash, then
 *   write in a fresh transaction that re-checks what was read;
 * - every login path costs one verification and gives one answer.
 */
#include "auth.h"

#include <backend/log.h>
#include <backend/pool.h>
#include <backend/tx.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "audit.h"
#include "auth_password.h"
#include "auth_sql.h"
#include "auth_token.h"
#include "error.h"
#include "svc.h"
#include "utf8.h"

static const char BAD_LOGIN[] = "invalid email or password";
static const char BAD_PASSWORD[] = "invalid password";
static const char BAD_SESSION[] = "invalid or expired session";

#define MS(x) ((int64_t)(x) * BE_NS_PER_MS)

/* ---- small shared helpers ------------------------------------------- */

int64_t be__auth_now(const be__auth *auth) { return be__svc_now(auth->res); }

void be__auth_secret_free(char *s) {
  if (s == NULL) return;
  sodium_memzero(s, strlen(s));
  be__free(s);
}

void be_auth_token_free(char *token) { be__auth_secret_free(token); }

int be__auth_pw_len(const char *pw, size_t len, size_t *out_len) {
  if (pw == NULL) return -1;
  /* Never scan further than one byte past the cap: longer is refused anyway. */
  *out_len = len == BE_NUL_TERMINATED ? strnlen(pw, BE_AUTH_PASSWORD_MAX_BYTES + 1) : len;
  return 0;
}

static int is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

int be__auth_email_key(const char *email, size_t email_len, char *out, be_error **err) {
  size_t n = 0;
  /* Never judge a cut view: a raw email over the cap is refused, not cut. */
  int rc = be__svc_str(email, email_len, "email", BE__EMAIL_MAX * 2, &n, err);
  if (rc != BE_OK) return rc;
  const char *s = email;
  while (n > 0 && is_space((unsigned char)*s)) { s++; n--; }
  while (n > 0 && is_space((unsigned char)s[n - 1])) n--;
  if (n == 0) return be__error_field(err, "email", "must not be empty");
  if (n > BE__EMAIL_MAX) return be__error_field(err, "email", "is longer than %d bytes", BE__EMAIL_MAX);
  if (!be__utf8_valid(s, n)) return be__error_field(err, "email", "is not valid UTF-8");
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    out[i] = (char)((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
  }
  out[n] = '\0';
  return BE_OK;
}

int be__auth_get(be_app *app, be__auth **out, be_error **err) {
  be__auth *a = app ? app->auth : NULL;
  if (a == NULL) return be__error_set(err, BE_E_MISUSE, "auth: app is NULL");
  *out = a;
  return BE_OK;
}

/* ---- state ----------------------------------------------------------- */

/* The settings, from options the resources already checked and filled. */
static void configure(be__auth *a, const be_app_options *o) {
  a->opslimit = (unsigned long long)o->pwhash_opslimit;
  a->memlimit = (size_t)o->pwhash_memlimit;
  a->min_chars = o->password_min_length;
  a->max_hashes = o->max_concurrent_hashes;
  a->throttle_after = o->throttle_after;
  a->lockout_after = o->lockout_after;
  a->idle_ns = MS(o->session_idle_ms);
  a->absolute_ns = MS(o->session_absolute_ms);
  a->lockout_ns = MS(o->lockout_ms);
  a->reset_ttl_ns = MS(o->reset_token_ttl_ms);
  /* Rewrite last_seen_at at most once per 1 % of the idle timeout (60 s
   * at most): a session may end that much early, and verify stays a read. */
  a->slide_ns = a->idle_ns / 100 < 60 * BE_NS_PER_SEC ? a->idle_ns / 100 : 60 * BE_NS_PER_SEC;
}

int be__auth_new(be__auth **out, const be__app_res *res, be_error **err) {
  *out = NULL;
  const be_app_options *o = &res->opts;
  if (o->pwhash_memlimit > SIZE_MAX) return be__error_field(err, "pwhash_memlimit", "is too large");
  int rc = be__pw_check_params((unsigned long long)o->pwhash_opslimit, (size_t)o->pwhash_memlimit,
                               o->insecure_test_hashing != 0, err);
  if (rc != BE_OK) return rc;
  be__auth *a = be__calloc(1, sizeof *a);
  if (a == NULL) return be__error_oom(err);
  a->res = res;
  configure(a, o);
  atomic_init(&a->hashing, 0);
  if (pthread_mutex_init(&a->hook_mu, NULL) != 0) {
    be__free(a);
    return be__error_set(err, BE_E_INTERNAL, "auth: mutex init failed");
  }
  /* The dummy hash: what an unknown user's login verifies against, made
   * with the current parameters so it costs what a real one costs. */
  char secret[BE_AUTH_TOKEN_LEN + 1];
  uint8_t unused[BE__TOKEN_HASH_BYTES];
  be__token_new(secret, unused);
  rc = be__pw_hash(a, a->dummy_hash, secret, strlen(secret), err);
  sodium_memzero(secret, sizeof secret);
  if (rc != BE_OK) {
    be__auth_free(a);
    return rc;
  }
  *out = a;
  return BE_OK;
}

void be__auth_free(be__auth *auth) {
  if (auth == NULL) return;
  pthread_mutex_destroy(&auth->hook_mu);
  sodium_memzero(auth, sizeof *auth);
  be__free(auth);
}

void be__auth_set_slot_hook(be__auth *auth, void (*fn)(void *), void *ud) {
  auth->slot_hook = fn;
  auth->slot_hook_ud = ud;
}

int be_auth_set_blocklist_fn(be_app *app, be_auth_blocklist_fn fn, void *user_data,
                             be_error **err) {
  be__auth *a = NULL;
  int rc = be__auth_get(app, &a, err);
  if (rc != BE_OK) return rc;
  pthread_mutex_lock(&a->hook_mu);
  a->blocklist_fn = fn;
  a->blocklist_ud = fn ? user_data : NULL;
  pthread_mutex_unlock(&a->hook_mu);
  return BE_OK;
}

int be_auth_check_password(be_app *app, const char *password, size_t password_len,
                           be_error **err) {
  be__auth *a = NULL;
  int rc = be__auth_get(app, &a, err);
  if (rc != BE_OK) return rc;
  size_t len;
  if (be__auth_pw_len(password, password_len, &len) != 0)
    return be__error_field(err, "password", "is required");
  return be__pw_policy(a, password, len, "password", NULL, NULL, err);
}

/* ---- users ----------------------------------------------------------- */

typedef struct user_row {
  int found;
  int64_t id;
  int64_t status;
  int64_t locked_until;
  int has_hash; /* a stored hash that fits the buffer */
  char hash[crypto_pwhash_STRBYTES];
  char email[BE__EMAIL_MAX + 1];
  char name[512]; /* only for the policy's "not your name" check; longer names are cut */
} user_row;

/* Load a user by id (email NULL) or by email key. Not found is BE_OK with
 * found = 0. */
static int load_user(be__auth *a, int64_t id, const char *email, user_row *u, be_error **err) {
  memset(u, 0, sizeof *u);
  be_conn *c = NULL;
  int rc = be__auth_acquire(a, &c, err);
  if (rc != BE_OK) return rc;
  be_stmt *st = NULL;
  if (email != NULL)
    rc = be__sql(c, &st, err,
                 "SELECT id, status, locked_until, password_hash, email, name FROM users "
                 "WHERE email = ?", "t", email);
  else
    rc = be__sql(c, &st, err,
                 "SELECT id, status, locked_until, password_hash, email, name FROM users "
                 "WHERE id = ?", "i", id);
  if (rc == BE_OK) {
    rc = be_stmt_step(st, err);
    if (rc == BE_ROW) {
      u->found = 1;
      u->id = be_stmt_column_int64(st, 0);
      u->status = be_stmt_column_int64(st, 1);
      u->locked_until = be_stmt_column_int64(st, 2);
      if (be_stmt_column_type(st, 3) == BE_TYPE_TEXT)
        be__sql_copy_text(st, 3, u->hash, sizeof u->hash, &u->has_hash);
      be__sql_copy_text(st, 4, u->email, sizeof u->email, NULL);
      be__sql_copy_text(st, 5, u->name, sizeof u->name, NULL);
      rc = BE_OK;
    } else if (rc == BE_DONE) {
      rc = BE_OK;
    }
  }
  be_stmt_finalize(st);
  be__auth_release(a, c);
  return rc;
}

/* ---- failure bookkeeping --------------------------------------------- */

typedef struct fail_ctx {
  be__auth *a;
  int64_t user_id;
  int64_t now;
} fail_ctx;

/* The block a failure count earns: 0 below throttle_after, then 1 s
 * doubling per failure (capped at lockout_ms), then lockout_ms. */
static int64_t block_for(const be__auth *a, int64_t failures, int *lockout) {
  *lockout = failures >= a->lockout_after;
  if (*lockout) return a->lockout_ns;
  if (failures < a->throttle_after) return 0;
  int64_t shift = failures - a->throttle_after;
  /* 1 s << 33 is the largest doubling that fits int64 ns (about 272 years);
   * a larger shift overflowed into a negative block, i.e. no block at all. */
  if (shift > 33) return a->lockout_ns;
  int64_t d = BE_NS_PER_SEC << shift;
  return d < a->lockout_ns ? d : a->lockout_ns;
}

static int fail_tx(be_conn *c, void *ud, be_error **err) {
  fail_ctx *f = ud;
  be_stmt *st = NULL;
  int rc = be__sql(c, &st, err, "SELECT failed_logins, locked_until FROM users WHERE id = ?", "i",
                   f->user_id);
  if (rc != BE_OK) return rc;
  rc = be_stmt_step(st, err);
  int64_t failures = 0, locked = 0;
  if (rc == BE_ROW) {
    failures = be_stmt_column_int64(st, 0);
    locked = be_stmt_column_int64(st, 1);
  }
  be_stmt_finalize(st);
  if (rc == BE_DONE) return BE_OK; /* deleted meanwhile: nothing to count */
  if (rc != BE_ROW) return rc;
  failures = failures < 0 ? 1 : (failures >= INT32_MAX ? INT32_MAX : failures + 1);
  int lockout = 0;
  int64_t block = block_for(f->a, failures, &lockout);
  int64_t end = be__ns_add(f->now, block);
  int64_t until = block > 0 && end > locked ? end : locked;
  rc = be__sql_exec(c, NULL, err, "UPDATE users SET failed_logins = ?, locked_until = ? WHERE id = ?",
                    "iii", failures, until, f->user_id);
  if (rc != BE_OK || !lockout) return rc;
  char details[160];
  snprintf(details, sizeof details, "{\"failed_logins\":%lld,\"locked_until\":%lld}",
           (long long)failures, (long long)until);
  return be__audit_write(f->a->res, c, 0, "auth.lockout", "user", f->user_id, details, err);
}

/* Count a wrong password for a user (inside its own transaction). */
static int record_failure(be__auth *a, int64_t user_id, int64_t now, be_error **err) {
  fail_ctx f = {a, user_id, now};
  return be__auth_tx(a, fail_tx, &f, err);
}

/* ---- login ----------------------------------------------------------- */

typedef struct login_ctx {
  be__auth *a;
  int64_t user_id;
  int64_t now;
  const char *old_hash;
  const char *new_hash; /* NULL: keep */
  uint8_t token_hash[BE__TOKEN_HASH_BYTES];
  int stale; /* out: the account changed since it was read */
} login_ctx;

static int login_tx(be_conn *c, void *ud, be_error **err) {
  login_ctx *l = ud;
  l->stale = 0;
  int64_t changed = 0;
  /* Re-check what the verification was made against: a concurrent password
   * change, disable or lock must win over this login. */
  int rc;
  if (l->new_hash != NULL)
    rc = be__sql_exec(c, &changed, err,
                      "UPDATE users SET failed_logins = 0, locked_until = 0, password_hash = ? "
                      "WHERE id = ? AND password_hash = ? AND status = 0 AND locked_until <= ?",
                      "titi", l->new_hash, l->user_id, l->old_hash, l->now);
  else
    rc = be__sql_exec(c, &changed, err,
                      "UPDATE users SET failed_logins = 0, locked_until = 0 "
                      "WHERE id = ? AND password_hash = ? AND status = 0 AND locked_until <= ?",
                      "iti", l->user_id, l->old_hash, l->now);
  if (rc != BE_OK) return rc;
  if (changed != 1) {
    l->stale = 1;
    return BE_OK;
  }
  rc = be__sql_exec(c, NULL, err,
                    "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, "
                    "expires_at) VALUES (?, ?, ?, ?, ?)",
                    "hiiii", l->token_hash, l->user_id, l->now, l->now,
                    be__ns_add(l->now, l->a->absolute_ns));
  if (rc != BE_OK) return rc;
  /* The new session and its audit row commit together (no token in it). */
  return be__audit_write(l->a->res, c, l->user_id, "auth.login", "user", l->user_id,
                         l->new_hash != NULL ? "{\"rehashed\":true}" : "{}", err);
}

int be_auth_login(char **out_token, int64_t *out_user_id, be_app *app, const char *email,
                  size_t email_len, const char *password, size_t password_len, be_error **err) {
  if (out_token) *out_token = NULL;
  if (out_user_id) *out_user_id = 0;
  be__auth *a = NULL;
  int rc = be__auth_get(app, &a, err);
  if (rc != BE_OK) return rc;
  if (out_token == NULL) return be__error_set(err, BE_E_MISUSE, "be_auth_login: out_token is NULL");
  char key[BE__EMAIL_MAX + 1];
  rc = be__auth_email_key(email, email_len, key, err);
  if (rc != BE_OK) return rc;
  size_t len;
  if (be__auth_pw_len(password, password_len, &len) != 0)
    return be__error_field(err, "password", "is required");
  if (len > BE_AUTH_PASSWORD_MAX_BYTES)
    return be__error_field(err, "password", "must be at most %d bytes",
                           BE_AUTH_PASSWORD_MAX_BYTES);

  /* The slot first: a 503 must not depend on whether the account exists. */
  rc = be__pw_slot_acquire(a, err);
  if (rc != BE_OK) return rc;
  user_row u;
  rc = load_user(a, 0, key, &u, err);
  if (rc != BE_OK) {
    be__pw_slot_release(a);
    return rc;
  }
  /* Exactly one verification on every path (the dummy hash when the user is
   * unknown or has no usable hash). */
  int match = be__pw_verify(a, u.found && u.has_hash ? u.hash : NULL, password, len);
  int64_t now = be__auth_now(a);
  int usable = u.found && u.has_hash && u.status == 0 && now >= u.locked_until;
  char new_hash[crypto_pwhash_STRBYTES];
  int rehash = 0;
  if (usable && match && be__pw_needs_rehash(a, u.hash))
    rehash = be__pw_hash(a, new_hash, password, len, NULL) == BE_OK; /* else: next time */
  be__pw_slot_release(a);

  if (!usable || !match) {
    if (usable) { /* a real guess against a live account: count it */
      rc = record_failure(a, u.id, now, err);
      if (rc != BE_OK) return rc;
    }
    return be__error_set(err, BE_E_UNAUTHORIZED, "%s", BAD_LOGIN);
  }

  login_ctx l = {a, u.id, now, u.hash, rehash ? new_hash : NULL, {0}, 0};
  /* The caller's copy exists before the session does: no orphan session
   * when this allocation fails. */
  char *token = be__malloc(BE_AUTH_TOKEN_LEN + 1);
  if (token == NULL) return be__error_oom(err);
  be__token_new(token, l.token_hash);
  rc = be__auth_tx(a, login_tx, &l, err);
  if (rc == BE_OK && l.stale) rc = be__error_set(err, BE_E_UNAUTHORIZED, "%s", BAD_LOGIN);
  if (rc != BE_OK) {
    be__auth_secret_free(token);
    return rc;
  }
  *out_token = token;
  if (out_user_id) *out_user_id = u.id;
  return BE_OK;
}

/* ---- sessions -------------------------------------------------------- */

int be_auth_verify(int64_t *out_user_id, be_app *app, const char *token, size_t token_len,
                   be_error **err) {
  if (out_user_id) *out_user_id = 0;
  be__auth *a = NULL;
  int rc = be__auth_get(app, &a, err);
  if (rc != BE_OK) return rc;
  uint8_t h[BE__TOKEN_HASH_BYTES];
  if (be__token_hash(token, token_len, h) != 0)
    return be__error_set(err, BE_E_UNAUTHORIZED, "%s", BAD_SESSION);
  be_conn *c = NULL;
  rc = be__auth_acquire(a, &c, err);
  if (rc != BE_OK) return rc;
  be_stmt *st = NULL;
  rc = be__sql(c, &st, err,
               "SELECT s.user_id, s.last_seen_at, s.expires_at, s.revoked, u.status "
               "FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?",
               "h", h);
  int64_t uid = 0, seen = 0;
  int live = 0;
  if (rc == BE_OK) {
    rc = be_stmt_step(st, err);
    int64_t now = be__auth_now(a);
    if (rc == BE_ROW) {
      uid = be_stmt_column_int64(st, 0);
      seen = be_stmt_column_int64(st, 1);
      int64_t expires = be_stmt_column_int64(st, 2);
      live = be_stmt_column_int64(st, 3) == 0 && be_stmt_column_int64(st, 4) == 0 &&
             now < expires && now < be__ns_add(seen, a->idle_ns);
      rc = BE_OK;
    } else if (rc == BE_DONE) {
      rc = BE_OK;
    }
    be_stmt_finalize(st);
    if (rc == BE_OK && live && now > be__ns_add(seen, a->slide_ns)) {
      /* The slide is an optimisation of expiry, not part of the answer: a
       * failed write (busy database) leaves a valid session valid. */
      be_error *e = NULL;
      if (be__sql_exec(c, NULL, &e,
                       "UPDATE sessions SET last_seen_at = ? WHERE token_hash = ? "
                       "AND last_seen_at < ?", "ihi", now, h, now) != BE_OK) {
        be_log_field f[] = {{"code", be_code_name(be_error_code(e))}};
        be_log(BE_LOG_WARN, "auth: could not slide a session's idle timeout", f, 1);
        be_error_free(e);
      }
    }
  }
  be__auth_release(a, c);
  if (rc != BE_OK) return rc;
  if (!live) return be__error_set(err, BE_E_UNAUTHORIZED, "%s", BAD_SESSION);
  if (out_user_id) *out_user_id = uid;
  return BE_OK;
}

typedef struct logout_ctx {
  be__auth *a;
  const uint8_t *token_hash;
} logout_ctx;

static int logout_tx(be_conn *c, void *ud, be_error **err) {
  logout_ctx *l = ud;
  be_stmt *st = NULL;
  int rc = be__sql(c, &st, err, "SELECT user_id FROM sessions WHERE token_hash = ? AND revoked = 0",
                   "h", l->token_hash);
  if (rc != BE_OK) return rc;
  rc = be_stmt_step(st, err);
  int64_t uid = rc == BE_ROW ? be_stmt_column_int64(st, 0) : 0;
  be_stmt_finalize(st);
  if (rc != BE_ROW) return rc == BE_DONE ? BE_OK : rc; /* unknown or ended: nothing to do */
  rc = be__sql_exec(c, NULL, err, "UPDATE sessions SET revoked = 1 WHERE token_hash = ?", "h",
                    l->token_hash);
  if (rc != BE_OK) return rc;
  return be__audit_write(l->a->res, c, uid, "auth.logout", "user", uid, "{}", err);
}

int be_auth_logout(be_app *app, const char *token, size_t token_len, be_error **err) {
  be__auth *a = NULL;
  int rc = be__auth_get(app, &a, err);
  if (rc != BE_OK) return rc;
  uint8_t h[BE__TOKEN_HASH_BYTES];
  if (be__token_hash(token, token_len, h) != 0)
    return be__error_set(err, BE_E_UNAUTHORIZED, "%s", BAD_SESSION);
  logout_ctx l = {a, h};
  return be__auth_tx(a, logout_tx, &l, err);
}

/* Revoke a user's sessions, except the one hashed as keep (may be NULL). */
int be__auth_revoke(be_conn *c, int64_t user_id, const uint8_t *keep, int64_t *out_n,
                    be_error **err) {
  if (keep != NULL)
    return be__sql_exec(c, out_n, err,
                        "UPDATE sessions SET revoked = 1 WHERE user_id = ? AND revoked = 0 "
                        "AND token_hash <> ?", "ih", user_id, keep);
  return be__sql_exec(c, out_n, err,
                      "UPDATE sessions SET revoked = 1 WHERE user_id = ? AND revoked = 0", "i",
                      user_id);
}

typedef struct revoke_ctx {
  be__auth *a;
  int64_t actor_id;
  int64_t user_id;
  int found;
} revoke_ctx;

static int user_exists(be_conn *c, int64_t id, int *found, be_error **err) {
  be_stmt *st = NULL;
  int rc = be__sql(c, &st, err, "SELECT 1 FROM users WHERE id = ?", "i", id);
  if (rc != BE_OK) return rc;
  rc = be_stmt_step(st, err);
  be_stmt_finalize(st);
  if (rc < 0) return rc;
  *found = rc == BE_ROW;
  return BE_OK;
}

static int audit_revoked(be__auth *a, be_conn *c, int64_t actor, const char *action,
                         int64_t user_id, int64_t revoked, be_error **err) {
  char details[64];
  snprintf(details, sizeof details, "{\"sessions_revoked\":%lld}", (long long)revoked);
  return be__audit_write(a->res, c, actor, action, "user", user_id, details, err);
}

static int revoke_all_tx(be_conn *c, void *ud, be_error **err) {
  revoke_ctx *r = ud;
  int rc = user_exists(c, r->user_id, &r->found, err);
  if (rc != BE_OK || !r->found) return rc;
  int64_t n = 0;
  rc = be__auth_revoke(c, r->user_id, NULL, &n, err);
  if (rc != BE_OK) return rc;
  return audit_revoked(r->a, c, r->actor_id, "auth.revoke_all", r->user_id, n, err);
}

int be_auth_revoke_all(be_app *app, int64_t actor_id, int64_t user_id, be_error **err) {
  be__auth *a = NULL;
  int rc = be__auth_get(app, &a, err);
  if (rc != BE_OK) return rc;
  if (user_id < 1) return be__error_field(err, "user_id", "must be a user id (>= 1)");
  revoke_ctx r = {a, actor_id, user_id, 0};
  rc = be__auth_tx(a, revoke_all_tx, &r, err);
  if (rc == BE_OK && !r.found)
    return be__error_set(err, BE_E_NOT_FOUND, "user %lld not found", (long long)user_id);
  return rc;
}

/* ---- set and change ---------------------------------------------------- */

#define NO_SESSION 1 /* keep is not a live session of the user */
#define NO_USER 2    /* the user is gone, or changed since it was read */

typedef struct setpw_ctx {
  be__auth *a;
  int64_t actor_id;
  int64_t user_id;
  const char *action;
  const char *new_hash;
  const char *old_hash; /* change: must still be the stored hash */
  const uint8_t *keep;  /* change: the session that stays */
  int64_t now;
  int status; /* out: 0 written, NO_SESSION or NO_USER (nothing written) */
} setpw_ctx;

static int session_is_live(be__auth *a, be_conn *c, const uint8_t *h, int64_t user_id,
                           int64_t now, int *live, be_error **err) {
  be_stmt *st = NULL;
  int rc = be__sql(c, &st, err,
                   "SELECT user_id, last_seen_at, expires_at, revoked FROM sessions "
                   "WHERE token_hash = ?", "h", h);
  if (rc != BE_OK) return rc;
  rc = be_stmt_step(st, err);
  *live = rc == BE_ROW && be_stmt_column_int64(st, 0) == user_id &&
          be_stmt_column_int64(st, 3) == 0 && now < be_stmt_column_int64(st, 2) &&
          now < be__ns_add(be_stmt_column_int64(st, 1), a->idle_ns);
  be_stmt_finalize(st);
  return rc < 0 ? rc : BE_OK;
}

static int setpw_tx(be_conn *c, void *ud, be_error **err) {
  setpw_ctx *s = ud;
  s->status = 0;
  int64_t changed = 0;
  int rc;
  if (s->keep != NULL) {
    int live = 0;
    rc = session_is_live(s->a, c, s->keep, s->user_id, s->now, &live, err);
    if (rc != BE_OK) return rc;
    if (!live) {
      s->status = NO_SESSION;
      return BE_OK;
    }
  }
  if (s->old_hash != NULL)
    rc = be__sql_exec(c, &changed, err,
                      "UPDATE users SET password_hash = ?, failed_logins = 0, locked_until = 0 "
                      "WHERE id = ? AND password_hash = ? AND status = 0",
                      "tit", s->new_hash, s->user_id, s->old_hash);
  else
    rc = be__sql_exec(c, &changed, err,
                      "UPDATE users SET password_hash = ?, failed_logins = 0, locked_until = 0 "
                      "WHERE id = ?", "ti", s->new_hash, s->user_id);
  if (rc != BE_OK) return rc;
  if (changed != 1) {
    s->status = NO_USER;
    return BE_OK;
  }
  int64_t n = 0;
  rc = be__auth_revoke(c, s->user_id, s->keep, &n, err);
  if (rc != BE_OK) return rc;
  return audit_revoked(s->a, c, s->actor_id, s->action, s->user_id, n, err);
}

int be_auth_set_password(be_app *app, int64_t actor_id, int64_t user_id, const char *password,
                         size_t password_len, be_error **err) {
  be__auth *a = NULL;
  int rc = be__auth_get(app, &a, err);
  if (rc != BE_OK) return rc;
  if (user_id < 1) return be__error_field(err, "user_id", "must be a user id (>= 1)");
  size_t len;
  if (be__auth_pw_len(password, password_len, &len) != 0)
    return be__error_field(err, "password", "is required");
  user_row u;
  rc = load_user(a, user_id, NULL, &u, err);
  if (rc != BE_OK) return rc;
  if (!u.found) return be__error_set(err, BE_E_NOT_FOUND, "user %lld not found", (long long)user_id);
  char hash[crypto_pwhash_STRBYTES];
  rc = be__pw_new_hash(a, hash, password, len, "password", u.email, u.name, err);
  if (rc != BE_OK) return rc;
  setpw_ctx s = {a, actor_id, user_id, "auth.password_set", hash, NULL, NULL, be__auth_now(a), 0};
  rc = be__auth_tx(a, setpw_tx, &s, err);
  if (rc == BE_OK && s.status != 0)
    rc = be__error_set(err, BE_E_NOT_FOUND, "user %lld not found", (long long)user_id);
  return rc;
}

int be_auth_change_password(be_app *app, int64_t user_id, const char *current_token,
                            size_t current_token_len, const char *old_password, size_t old_len,
                            const char *new_password, size_t new_len, be_error **err) {
  be__auth *a = NULL;
  int rc = be__auth_get(app, &a, err);
  if (rc != BE_OK) return rc;
  if (user_id < 1) return be__error_field(err, "user_id", "must be a user id (>= 1)");
  size_t olen, nlen;
  if (be__auth_pw_len(old_password, old_len, &olen) != 0)
    return be__error_field(err, "old_password", "is required");
  if (olen > BE_AUTH_PASSWORD_MAX_BYTES)
    return be__error_field(err, "old_password", "must be at most %d bytes",
                           BE_AUTH_PASSWORD_MAX_BYTES);
  if (be__auth_pw_len(new_password, new_len, &nlen) != 0)
    return be__error_field(err, "new_password", "is required");
  uint8_t keep[BE__TOKEN_HASH_BYTES];
  if (current_token != NULL && be__token_hash(current_token, current_token_len, keep) != 0)
    return be__error_set(err, BE_E_UNAUTHORIZED, "%s", BAD_SESSION);

  user_row u;
  rc = load_user(a, user_id, NULL, &u, err);
  if (rc != BE_OK) return rc;
  /* The old password first: the policy compares the new one with the
   * account's email and name and only runs for existing accounts, so
   * judging it before authentication would let anyone test guesses of a
   * user's email or learn which ids exist. */
  rc = be__pw_slot_acquire(a, err);
  if (rc != BE_OK) return rc;
  int match = be__pw_verify(a, u.found && u.has_hash ? u.hash : NULL, old_password, olen);
  be__pw_slot_release(a);
  int64_t now = be__auth_now(a);
  int usable = u.found && u.has_hash && u.status == 0 && now >= u.locked_until;
  if (!usable || !match) {
    if (usable) {
      rc = record_failure(a, u.id, now, err);
      if (rc != BE_OK) return rc;
    }
    return be__error_set(err, BE_E_UNAUTHORIZED, "%s", BAD_PASSWORD);
  }
  char hash[crypto_pwhash_STRBYTES];
  rc = be__pw_new_hash(a, hash, new_password, nlen, "new_password", u.email, u.name, err);
  if (rc != BE_OK) return rc;
  setpw_ctx s = {a,    user_id, user_id, "auth.password_change", hash, u.hash,
                 current_token ? keep : NULL, now, 0};
  rc = be__auth_tx(a, setpw_tx, &s, err);
  if (rc == BE_OK && s.status != 0)
    rc = be__error_set(err, BE_E_UNAUTHORIZED, "%s",
                       s.status == NO_SESSION ? BAD_SESSION : BAD_PASSWORD);
  return rc;
}
