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
#include "metrics.h"

#include <backend/log.h>

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "audit.h"
#include "auth_breached.h"
#include "auth_password.h"
#include "auth_token.h"
#include "error.h"
#include "mailer.h"
#include "svc_catalog.h"
#include "svc_input.h"
#include "svc_time.h"
#include "utf8.h"

static const char BAD_LOGIN[] = "invalid email or password";
static const char BAD_PASSWORD[] = "invalid password";
static const char BAD_SESSION[] = "invalid or expired session";

#define MS(x) ((int64_t)(x)*BE_NS_PER_MS)

/* ---- arguments ------------------------------------------------------- */

/* Wipe and free a heap copy of a secret (strlen bytes). NULL is a no-op. */
static void secret_free(char *s) {
  if (s == NULL) return;
  sodium_memzero(s, strlen(s));
  be__free(s);
}

void be_auth_token_free(char *token) { secret_free(token); }

int be__auth_pw_arg(const char *pw, size_t len, const char *field, size_t *out_len,
                    be_error **err) {
  if (pw == NULL) return be__error_field(err, field, "is required");
  /* Never scan further than one byte past the cap: longer is refused anyway. */
  *out_len = be__svc_len(pw, len, BE_AUTH_PASSWORD_MAX_BYTES);
  return BE_OK;
}

/* A password to verify (login, the old one of a change): given, and not
 * over the byte cap, so a huge one is never hashed. */
static int pw_to_verify(const char *pw, size_t len, const char *field, size_t *out_len,
                        be_error **err) {
  int rc = be__auth_pw_arg(pw, len, field, out_len, err);
  if (rc == BE_OK && *out_len > BE_AUTH_PASSWORD_MAX_BYTES)
    rc = be__error_field(err, field, "must be at most %d bytes", BE_AUTH_PASSWORD_MAX_BYTES);
  return rc;
}

int be__auth_email_key(const char *email, size_t email_len, char *out, be_error **err) {
  size_t n = 0;
  /* Never judge a cut view: a raw email over the cap is refused, not cut. */
  int rc = be__svc_str(email, email_len, "email", BE__EMAIL_MAX * 2, &n, err);
  if (rc != BE_OK) return rc;
  const char *s = be__svc_trim(email, &n);
  if (n == 0) return be__error_field(err, "email", "must not be empty");
  if (n > BE__EMAIL_MAX) return be__error_field(err, "email", "is longer than %d bytes", BE__EMAIL_MAX);
  if (!be__utf8_valid(s, n)) return be__error_field(err, "email", "is not valid UTF-8");
  for (size_t i = 0; i < n; i++) out[i] = (char)be__svc_lower((unsigned char)s[i]);
  out[n] = '\0';
  return BE_OK;
}

int be__auth_get(be_app *app, be__auth **out, be_error **err) {
  be__auth *a = app ? app->auth : NULL;
  if (a == NULL) return be__error_set(err, BE_E_MISUSE, "auth: app is NULL");
  *out = a;
  return BE_OK;
}

int be__auth_token_arg(be_app *app, const char *token, size_t len, const char *bad,
                       be__auth **out, uint8_t hash[BE__TOKEN_HASH_BYTES], be_error **err) {
  int rc = be__auth_get(app, out, err);
  if (rc != BE_OK) return rc;
  if (be__token_hash(token, len, hash) != 0)
    return be__error_set(err, BE_E_UNAUTHORIZED, "%s", bad);
  return BE_OK;
}

/* ---- state ----------------------------------------------------------- */

/* The settings, from options the resources already checked and filled. */
static void configure(be__auth *a, const be_app_options *o) {
  a->opslimit = (unsigned long long)o->pwhash_opslimit;
  a->memlimit = (size_t)o->pwhash_memlimit;
  a->min_chars = o->password_min_length;
  a->max_hashes = o->max_concurrent_hashes;
  a->hash_wait_ns = MS(o->hash_wait_ms);
  be__pw_set_pepper(&a->peppers[0], o->pepper, o->pepper_len, o->pepper_id);
  for (int32_t i = 0; i < o->previous_pepper_count; i++)
    be__pw_set_pepper(&a->peppers[1 + i], o->previous_peppers[i], o->previous_pepper_lens[i],
                      o->previous_pepper_ids[i]);
  a->pepper_count = 1 + o->previous_pepper_count;
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

/* The state's mutexes and lock: all made (locks_ready) or none. */
static int init_locks(be__auth *a) {
  pthread_mutex_t *mu[] = {&a->slot_mu, &a->hook_mu, &a->dummy_mu};
  size_t n = 0;
  while (n < 3 && pthread_mutex_init(mu[n], NULL) == 0) n++;
  int rc = n == 3 ? pthread_rwlock_init(&a->breached_mu, NULL) : -1;
  if (rc != 0)
    while (n > 0) pthread_mutex_destroy(mu[--n]);
  a->locks_ready = rc == 0;
  return rc;
}

/* The parameters of the most expensive stored hash (largest m x t, then
 * largest m) among those libsodium can verify within the app's cost cap
 * (be__pw_cost_cap: a costlier one, written past the import check, is
 * not followed), or the current ones when no hash is stored. */
static int stored_max(be__auth *a, unsigned long long *ops, size_t *mem, be_error **err) {
  int64_t row[2] = {0, 0}; /* opslimit, memlimit_kib */
  uint64_t cap_mem, cap_work, max_mem = crypto_pwhash_argon2id_memlimit_max() / 1024;
  be__pw_cost_cap(a, &cap_mem, &cap_work);
  be_conn *c = NULL;
  int rc = be__svc_acquire(a->res, &c, err);
  if (rc != BE_OK) return rc;
  /* m x t is compared as t <= work / m, and ordered only within the cap:
   * no product can overflow */
  rc = be__svc_ints(c, row, 2, err, be__sql(a->res, BE__SQL_AUTH_HASH_PARAMS_MAX), "iiiii",
                    (int64_t)crypto_pwhash_argon2id_OPSLIMIT_MIN,
                    (int64_t)crypto_pwhash_argon2id_OPSLIMIT_MAX,
                    (int64_t)(crypto_pwhash_argon2id_MEMLIMIT_MIN / 1024),
                    (int64_t)(cap_mem < max_mem ? cap_mem : max_mem),
                    (int64_t)(cap_work < (uint64_t)INT64_MAX ? cap_work : (uint64_t)INT64_MAX));
  be__svc_release(a->res, c);
  if (rc < 0) return rc;
  *ops = rc == BE_ROW ? (unsigned long long)row[0] : a->opslimit;
  *mem = rc == BE_ROW ? (size_t)row[1] * 1024 : a->memlimit;
  return BE_OK;
}

/* Bring the dummy hash up to the most expensive stored hash, so an
 * unknown email's login costs what a known one's does (a hash made with
 * parameters since lowered keeps them until its next successful login).
 * A dummy that cannot be remade (out of memory) stays as it was, logged:
 * one costly hash must not stop every login; the first one falls back
 * to the app's own parameters. */
static int dummy_current(be__auth *a, be_error **err) {
  unsigned long long ops = 0, have_ops = 0;
  size_t mem = 0, have_mem = 0;
  int rc = stored_max(a, &ops, &mem, err);
  if (rc != BE_OK || be__pw_dummy_follow(a, ops, mem, NULL) == BE_OK) return rc;
  be__pw_dummy_params(a, &have_ops, &have_mem);
  be_log(BE_LOG_WARN, "auth: could not remake the dummy hash for the costliest stored hash; "
                      "unknown emails keep the current cost",
         NULL, 0, NULL);
  return have_ops != 0 ? BE_OK : be__pw_dummy_follow(a, a->opslimit, a->memlimit, err);
}

int be__auth_check_options(const be_app_options *o, be_error **err) {
  if (o->pwhash_memlimit > SIZE_MAX) return be__error_field(err, "pwhash_memlimit", "is too large");
  return be__pw_check_params((unsigned long long)o->pwhash_opslimit, (size_t)o->pwhash_memlimit,
                             o->insecure_test_hashing != 0, err);
}

int be__auth_new(be__auth **out, const be__app_res *res, be_error **err) {
  *out = NULL;
  const be_app_options *o = &res->opts;
  int rc = be__auth_check_options(o, err);
  if (rc != BE_OK) return rc;
  be__auth *a = be__calloc(1, sizeof *a);
  if (a == NULL) return be__error_oom(err);
  a->res = res;
  configure(a, o);
  if (init_locks(a) != 0) {
    be__free(a);
    return be__error_set(err, BE_E_INTERNAL, "auth: lock init failed");
  }
  rc = dummy_current(a, err);
  if (rc == BE_OK) *out = a;
  else be__auth_free(a);
  return rc;
}

void be__auth_free(be__auth *auth) {
  if (auth == NULL) return;
  if (auth->locks_ready) {
    pthread_mutex_destroy(&auth->slot_mu);
    pthread_mutex_destroy(&auth->hook_mu);
    pthread_mutex_destroy(&auth->dummy_mu);
    pthread_rwlock_destroy(&auth->breached_mu);
  }
  be__breached_free(auth->breached);
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
  size_t len = 0;
  int rc = be__auth_get(app, &a, err);
  if (rc == BE_OK) rc = be__auth_pw_arg(password, password_len, "password", &len, err);
  if (rc != BE_OK) return rc;
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
  int64_t pepper_id; /* the pepper the hash was made with (0: none) */
  char email[BE__EMAIL_MAX + 1];
  char name[BE__NAME_CAP];
} user_row;

/* A row of BE__SQL_AUTH_USER_BY_EMAIL / _BY_ID. */
static int read_user(be_stmt *st, void *ud, be_error **err) {
  (void)err;
  user_row *u = ud;
  u->found = 1;
  u->id = be_stmt_column_int64(st, 0);
  u->status = be_stmt_column_int64(st, 1);
  u->locked_until = be_stmt_column_int64(st, 2);
  if (be_stmt_column_type(st, 3) == BE_TYPE_TEXT)
    be__svc_copy_text(st, 3, u->hash, sizeof u->hash, &u->has_hash);
  be__svc_copy_text(st, 4, u->email, sizeof u->email, NULL);
  be__svc_copy_text(st, 5, u->name, sizeof u->name, NULL);
  u->pepper_id = be_stmt_column_int64(st, 6);
  return BE_OK;
}

/* Load a user by id (email NULL) or by email key. Not found is BE_OK with
 * found = 0. */
static int load_user(be__auth *a, int64_t id, const char *email, user_row *u, be_error **err) {
  memset(u, 0, sizeof *u);
  int rc = email != NULL ? be__svc_first_pooled(a->res, read_user, u, err,
                                                be__sql(a->res, BE__SQL_AUTH_USER_BY_EMAIL), "t", email)
                         : be__svc_first_pooled(a->res, read_user, u, err,
                                                be__sql(a->res, BE__SQL_AUTH_USER_BY_ID), "i", id);
  return rc < 0 ? rc : BE_OK;
}

/* An account whose password may be verified and used now. */
static int usable(const user_row *u, int64_t now) {
  return u->found && u->has_hash && u->status == 0 && now >= u->locked_until;
}

/* One verification of pw against u's hash, or against the dummy when u
 * has none (unknown, no or unusable hash): the same work on every path.
 * The dummy is first brought up to date (dummy_current). A slot must be
 * held. */
static int verify_user(be__auth *a, const user_row *u, const char *pw, size_t len, int *match,
                       be_error **err) {
  int rc = dummy_current(a, err);
  if (rc != BE_OK) return rc;
  *match = be__pw_verify(a, u->found && u->has_hash ? u->hash : NULL, u->pepper_id, pw, len);
  return BE_OK;
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
   * a larger shift would overflow into a negative block, i.e. no block. */
  if (shift > 33) return a->lockout_ns;
  int64_t d = BE_NS_PER_SEC << shift;
  return d < a->lockout_ns ? d : a->lockout_ns;
}

static int fail_tx(be_conn *c, void *ud, be_error **err) {
  fail_ctx *f = ud;
  int64_t row[2] = {0, 0}; /* failed_logins, locked_until */
  int rc = be__svc_ints(c, row, 2, err, be__sql(f->a->res, BE__SQL_AUTH_FAILURES_READ), "i",
                        f->user_id);
  if (rc == BE_DONE) return BE_OK; /* deleted meanwhile: nothing to count */
  if (rc != BE_ROW) return rc;
  int64_t failures = row[0] < 0 ? 1 : (row[0] >= INT32_MAX ? INT32_MAX : row[0] + 1);
  int lockout = 0;
  int64_t block = block_for(f->a, failures, &lockout);
  int64_t end = be__ns_add(f->now, block);
  int64_t until = block > 0 && end > row[1] ? end : row[1];
  rc = be__svc_exec(c, NULL, err, be__sql(f->a->res, BE__SQL_AUTH_FAILURES_WRITE), "iii",
                    failures, until, f->user_id);
  if (rc != BE_OK || !lockout) return rc;
  char details[160];
  snprintf(details, sizeof details, "{\"failed_logins\":%lld,\"locked_until\":%lld}",
           (long long)failures, (long long)until);
  return be__audit_write(f->a->res, c, 0, "auth.lockout", "user", f->user_id, details, err);
}

/* BE_OK when the password matched a usable account; else a real guess
 * against a live account is counted (in its own transaction) and the
 * answer is the operation's one 401, msg. */
static int judge(be__auth *a, const user_row *u, int match, int64_t now, const char *msg,
                 be_error **err) {
  if (match && usable(u, now)) return BE_OK;
  if (usable(u, now)) {
    fail_ctx f = {a, u->id, now};
    int rc = be__svc_write(a->res, fail_tx, &f, err);
    if (rc != BE_OK) return rc;
  }
  return be__error_set(err, BE_E_UNAUTHORIZED, "%s", msg);
}

/* ---- login ----------------------------------------------------------- */

typedef struct login_ctx {
  be__auth *a;
  int64_t user_id;
  int64_t now;
  const char *old_hash;
  const char *new_hash; /* NULL: keep */
  int64_t pepper_id;    /* of the hash written back */
  uint8_t token_hash[BE__TOKEN_HASH_BYTES];
  int stale; /* out: the account changed since it was read */
} login_ctx;

static int login_tx(be_conn *c, void *ud, be_error **err) {
  login_ctx *l = ud;
  l->stale = 0;
  int64_t changed = 0;
  /* Re-check what the verification was made against: a concurrent password
   * change, disable or lock must win over this login. Without a rehash the
   * hash is written back as it is. */
  int rc = be__svc_exec(c, &changed, err, be__sql(l->a->res, BE__SQL_AUTH_LOGIN_UPDATE), "tiiti",
                        l->new_hash != NULL ? l->new_hash : l->old_hash, l->pepper_id,
                        l->user_id, l->old_hash, l->now);
  if (rc != BE_OK) return rc;
  if (changed != 1) {
    l->stale = 1;
    return BE_OK;
  }
  /* The user knows the password: a pending reset link has no use left. */
  rc = be__auth_consume_resets(l->a->res, c, l->user_id, err);
  if (rc != BE_OK) return rc;
  rc = be__svc_exec(c, NULL, err, be__sql(l->a->res, BE__SQL_AUTH_SESSION_INSERT), "hiiii",
                    l->token_hash, l->user_id, l->now, l->now,
                    be__ns_add(l->now, l->a->absolute_ns));
  if (rc != BE_OK) return rc;
  /* The new session and its audit row commit together (no token in it). */
  return be__audit_write(l->a->res, c, l->user_id, "auth.login", "user", l->user_id,
                         l->new_hash != NULL ? "{\"rehashed\":true}" : "{}", err);
}

/* The session for a verified login, its token handed to the caller. */
static int open_session(char **out_token, login_ctx *l, be_error **err) {
  /* The caller's copy exists before the session does: no orphan session
   * when this allocation fails. */
  char *token = be__malloc(BE_AUTH_TOKEN_LEN + 1);
  if (token == NULL) return be__error_oom(err);
  be__token_new(token, l->token_hash);
  int rc = be__svc_write(l->a->res, login_tx, l, err);
  if (rc == BE_OK && l->stale) rc = BE_E_UNAUTHORIZED; /* the caller says why */
  if (rc != BE_OK) {
    secret_free(token);
    return rc;
  }
  *out_token = token;
  return BE_OK;
}

/* One login: verify, then write the session unless the account changed
 * since it was read (stale). With may_retry set, a stale write that
 * carried a rehash sets *again and fails without an error: the change may
 * be another login's rehash of the same password, which must not refuse
 * this one; the caller tries once more against the hash now stored. */
static int login_once(char **out_token, int64_t *out_user_id, be__auth *a, const char *key,
                      const char *password, size_t len, int may_retry, int *again, be_error **err) {
  *again = 0;
  /* The slot first: a 503 must not depend on whether the account exists. */
  int rc = be__pw_slot_acquire(a, err);
  if (rc != BE_OK) return rc;
  user_row u;
  int match = 0;
  rc = load_user(a, 0, key, &u, err);
  /* Exactly one verification on every path (two only after a race with
   * another correct login, above). */
  if (rc == BE_OK) rc = verify_user(a, &u, password, len, &match, err);
  if (rc != BE_OK) {
    be__pw_slot_release(a);
    return rc;
  }
  int64_t now = be__svc_now(a->res);
  char new_hash[crypto_pwhash_STRBYTES];
  int rehash = 0;
  if (usable(&u, now) && match && be__pw_needs_rehash(a, u.hash, u.pepper_id))
    rehash = be__pw_hash(a, new_hash, password, len, NULL) == BE_OK; /* else: next time */
  be__pw_slot_release(a);
  rc = judge(a, &u, match, now, BAD_LOGIN, err);
  if (rc != BE_OK) return rc;
  login_ctx l = {a, u.id, now, u.hash, rehash ? new_hash : NULL, rehash ? a->peppers[0].id : u.pepper_id, {0}, 0};
  rc = open_session(out_token, &l, err);
  if (rc == BE_OK && out_user_id) *out_user_id = u.id;
  if (rc != BE_OK && l.stale) {
    *again = may_retry && rehash;
    if (!*again) rc = be__error_set(err, BE_E_UNAUTHORIZED, "%s", BAD_LOGIN);
  }
  return rc;
}

static int auth_login_body(char **out_token, int64_t *out_user_id, be_app *app, const char *email,
                           size_t email_len, const char *password, size_t password_len, be_error **err) {
  if (out_token) *out_token = NULL;
  if (out_user_id) *out_user_id = 0;
  be__auth *a = NULL;
  int rc = be__auth_get(app, &a, err);
  if (rc != BE_OK) return rc;
  if (out_token == NULL) return be__error_set(err, BE_E_MISUSE, "be_auth_login: out_token is NULL");
  char key[BE__EMAIL_MAX + 1];
  size_t len = 0;
  rc = be__auth_email_key(email, email_len, key, err);
  if (rc == BE_OK) rc = pw_to_verify(password, password_len, "password", &len, err);
  if (rc != BE_OK) return rc;
  int again = 0;
  rc = login_once(out_token, out_user_id, a, key, password, len, 1, &again, err);
  if (again) rc = login_once(out_token, out_user_id, a, key, password, len, 0, &again, err);
  return rc;
}

int be_auth_login(char **out_token, int64_t *out_user_id, be_app *app, const char *email,
                  size_t email_len, const char *password, size_t password_len, be_error **err) {
  BE__OP_RECORD(app, BE_OP_AUTH_LOGIN, auth_login_body(out_token, out_user_id, app, email, email_len, password, password_len, err));
}

/* ---- sessions -------------------------------------------------------- */

/* s: a session's user_id, last_seen_at, expires_at, revoked (the first
 * columns of BE__SQL_AUTH_SESSION_CHECK and _BY_TOKEN). Live: not
 * revoked, before its absolute expiry and inside its idle timeout. */
static int session_live(const be__auth *a, const int64_t s[4], int64_t now) {
  return s[3] == 0 && now < s[2] && now < be__ns_add(s[1], a->idle_ns);
}

/* Move a live session's last_seen_at to now. The slide is an optimisation
 * of expiry, not part of the answer: a failed write (busy database) leaves
 * a valid session valid. */
static void slide(const be__app_res *res, be_conn *c, const uint8_t *h, int64_t now) {
  be_error *e = NULL;
  if (be__svc_exec(c, NULL, &e, be__sql(res, BE__SQL_AUTH_SESSION_SLIDE), "ihi", now, h, now) !=
      BE_OK) {
    be_log_field f[] = {{"code", be_code_name(be_error_code(e))}};
    be_log(BE_LOG_WARN, "auth: could not slide a session's idle timeout", f, 1, NULL);
    be_error_free(e);
  }
}

/* Check a session by its token's hash: live, and its user active. Slides
 * the idle timeout. *out (version untouched) gets the session on
 * success. */
static int check_session(be__auth *a, const uint8_t *h, be_auth_session_info *out,
                         be_error **err) {
  be_conn *c = NULL;
  int rc = be__svc_acquire(a->res, &c, err);
  if (rc != BE_OK) return rc;
  int64_t s[7] = {0}; /* see session_live(), then the user's status, the id, the login */
  rc = be__svc_ints(c, s, 7, err, be__sql(a->res, BE__SQL_AUTH_SESSION_CHECK), "h", h);
  int64_t now = be__svc_now(a->res);
  int live = rc == BE_ROW && s[4] == 0 && session_live(a, s, now);
  if (rc == BE_ROW || rc == BE_DONE) rc = BE_OK;
  if (live && now > be__ns_add(s[1], a->slide_ns)) {
    slide(a->res, c, h, now);
    s[1] = now;
  }
  be__svc_release(a->res, c);
  if (rc != BE_OK) return rc;
  if (!live) return be__error_set(err, BE_E_UNAUTHORIZED, "%s", BAD_SESSION);
  be__auth_session_fill(out, a, s[5], s[0], s[6], s[1], s[2]);
  return BE_OK;
}

static int auth_verify_body(int64_t *out_user_id, be_app *app, const char *token, size_t token_len,
                            be_error **err) {
  if (out_user_id) *out_user_id = 0;
  be__auth *a = NULL;
  uint8_t h[BE__TOKEN_HASH_BYTES];
  int rc = be__auth_token_arg(app, token, token_len, BAD_SESSION, &a, h, err);
  if (rc != BE_OK) return rc;
  be_auth_session_info info = BE_AUTH_SESSION_INFO_INIT;
  rc = check_session(a, h, &info, err);
  if (rc == BE_OK && out_user_id) *out_user_id = info.user_id;
  return rc;
}

int be_auth_verify(int64_t *out_user_id, be_app *app, const char *token, size_t token_len,
                   be_error **err) {
  BE__OP_RECORD(app, BE_OP_AUTH_VERIFY, auth_verify_body(out_user_id, app, token, token_len, err));
}

static int auth_verify_session_body(be_auth_session_info *out, be_app *app, const char *token,
                                    size_t token_len, be_error **err) {
  if (out == NULL) return be__error_set(err, BE_E_MISUSE, "be_auth_verify_session: out is NULL");
  int rc = be__svc_check_version(out->version, BE_AUTH_SESSION_INFO_VERSION,
                                 "be_auth_session_info", err);
  if (rc != BE_OK) return rc;
  be_auth_session_info init = BE_AUTH_SESSION_INFO_INIT;
  *out = init; /* what a failure leaves */
  be__auth *a = NULL;
  uint8_t h[BE__TOKEN_HASH_BYTES];
  rc = be__auth_token_arg(app, token, token_len, BAD_SESSION, &a, h, err);
  if (rc != BE_OK) return rc;
  return check_session(a, h, out, err);
}

int be_auth_verify_session(be_auth_session_info *out, be_app *app, const char *token,
                           size_t token_len, be_error **err) {
  BE__OP_RECORD(app, BE_OP_AUTH_VERIFY_SESSION, auth_verify_session_body(out, app, token, token_len, err));
}

typedef struct logout_ctx {
  be__auth *a;
  const uint8_t *token_hash;
  int64_t now;
} logout_ctx;

static int logout_tx(be_conn *c, void *ud, be_error **err) {
  logout_ctx *l = ud;
  int64_t uid = 0;
  /* live as session_live() has it: revoked, expired and idle sessions
   * have ended already */
  int rc = be__svc_ints(c, &uid, 1, err, be__sql(l->a->res, BE__SQL_AUTH_SESSION_OWNER), "hii",
                        l->token_hash, l->now, be__ns_sub(l->now, l->a->idle_ns));
  if (rc != BE_ROW) return rc == BE_DONE ? BE_OK : rc; /* unknown or ended: nothing to do */
  rc = be__svc_exec(c, NULL, err, be__sql(l->a->res, BE__SQL_AUTH_SESSION_REVOKE_TOKEN), "h",
                    l->token_hash);
  if (rc != BE_OK) return rc;
  return be__audit_write(l->a->res, c, uid, "auth.logout", "user", uid, "{}", err);
}

static int auth_logout_body(be_app *app, const char *token, size_t token_len, be_error **err) {
  be__auth *a = NULL;
  uint8_t h[BE__TOKEN_HASH_BYTES];
  int rc = be__auth_token_arg(app, token, token_len, BAD_SESSION, &a, h, err);
  if (rc != BE_OK) return rc;
  logout_ctx l = {a, h, be__svc_now(a->res)};
  return be__svc_write(a->res, logout_tx, &l, err);
}

int be_auth_logout(be_app *app, const char *token, size_t token_len, be_error **err) {
  BE__OP_RECORD(app, BE_OP_AUTH_LOGOUT, auth_logout_body(app, token, token_len, err));
}

/* Revoke a user's sessions, except the one hashed as keep (may be NULL),
 * and audit action with how many. */
static int revoke_audited(be__auth *a, be_conn *c, int64_t actor, const char *action,
                          int64_t user_id, const uint8_t *keep, be_error **err) {
  int64_t n = 0;
  int rc = keep != NULL ? be__svc_exec(c, &n, err, be__sql(a->res, BE__SQL_AUTH_SESSIONS_REVOKE_KEEP),
                                       "ih", user_id, keep)
                        : be__svc_exec(c, &n, err, be__sql(a->res, BE__SQL_AUTH_SESSIONS_REVOKE),
                                       "i", user_id);
  if (rc != BE_OK) return rc;
  char details[64];
  snprintf(details, sizeof details, "{\"sessions_revoked\":%lld}", (long long)n);
  return be__audit_write(a->res, c, actor, action, "user", user_id, details, err);
}

int be__auth_consume_resets(const be__app_res *res, be_conn *conn, int64_t user_id,
                            be_error **err) {
  return be__svc_exec(conn, NULL, err, be__sql(res, BE__SQL_AUTH_RESETS_CONSUME), "i", user_id);
}

int be__auth_end_access(const be__app_res *res, be_conn *conn, int64_t user_id, be_error **err) {
  int rc = be__svc_exec(conn, NULL, err, be__sql(res, BE__SQL_AUTH_SESSIONS_REVOKE), "i", user_id);
  if (rc == BE_OK)
    rc = be__svc_exec(conn, NULL, err, be__sql(res, BE__SQL_USER_DELETE_RESETS), "i", user_id);
  return rc;
}

typedef struct revoke_ctx {
  be__auth *a;
  int64_t actor_id;
  int64_t user_id;
  int found;
} revoke_ctx;

static int revoke_all_tx(be_conn *c, void *ud, be_error **err) {
  revoke_ctx *r = ud;
  int rc = be__svc_first(c, NULL, NULL, err, be__sql(r->a->res, BE__SQL_USER_EXISTS), "i",
                         r->user_id);
  if (rc < 0) return rc;
  r->found = rc == BE_ROW;
  if (!r->found) return BE_OK;
  return revoke_audited(r->a, c, r->actor_id, "auth.revoke_all", r->user_id, NULL, err);
}

static int user_not_found(int64_t user_id, be_error **err) {
  return be__error_set(err, BE_E_NOT_FOUND, "user %lld not found", (long long)user_id);
}

static int auth_revoke_all_body(be_app *app, int64_t actor_id, int64_t user_id, be_error **err) {
  be__auth *a = NULL;
  int rc = be__auth_get(app, &a, err);
  if (rc == BE_OK) rc = be__svc_check_id(user_id, "user_id", err);
  if (rc != BE_OK) return rc;
  revoke_ctx r = {a, actor_id, user_id, 0};
  rc = be__svc_write(a->res, revoke_all_tx, &r, err);
  if (rc == BE_OK && !r.found) return user_not_found(user_id, err);
  return rc;
}

int be_auth_revoke_all(be_app *app, int64_t actor_id, int64_t user_id, be_error **err) {
  BE__OP_RECORD(app, BE_OP_AUTH_REVOKE_ALL, auth_revoke_all_body(app, actor_id, user_id, err));
}

/* ---- set and change ---------------------------------------------------- */

int be__auth_store_password(be__auth *a, be_conn *c, const be__pw_write *w, int *stored,
                            be_error **err) {
  int64_t changed = 0;
  int rc;
  /* New hashes are always made with the current pepper; imported ones
   * with none (the next login rehashes them under it). */
  int64_t pepper = w->unpeppered ? 0 : a->peppers[0].id;
  if (w->old_hash != NULL)
    rc = be__svc_exec(c, &changed, err, be__sql(a->res, BE__SQL_AUTH_PASSWORD_REPLACE), "tiit",
                      w->new_hash, pepper, w->user_id, w->old_hash);
  else /* the fourth parameter is active_only */
    rc = be__svc_exec(c, &changed, err, be__sql(a->res, BE__SQL_AUTH_PASSWORD_SET), "tiii",
                      w->new_hash, pepper, w->user_id, (int64_t)w->active_only);
  *stored = rc == BE_OK && changed == 1;
  if (!*stored) return rc;
  rc = be__auth_consume_resets(a->res, c, w->user_id, err);
  if (rc != BE_OK) return rc;
  return revoke_audited(a, c, w->actor_id, w->action, w->user_id, w->keep, err);
}

#define NO_SESSION 1 /* keep is not a live session of the user */
#define NO_USER 2    /* the user is gone, or changed since it was read */

typedef struct setpw_ctx {
  be__auth *a;
  be__pw_write w;
  int64_t now;
  int status; /* out: 0 written, NO_SESSION or NO_USER (nothing written) */
} setpw_ctx;

static int setpw_tx(be_conn *c, void *ud, be_error **err) {
  setpw_ctx *s = ud;
  s->status = 0;
  if (s->w.keep != NULL) {
    int64_t row[4] = {0};
    int rc = be__svc_ints(c, row, 4, err, be__sql(s->a->res, BE__SQL_AUTH_SESSION_BY_TOKEN), "h",
                          s->w.keep);
    if (rc < 0) return rc;
    if (rc != BE_ROW || row[0] != s->w.user_id || !session_live(s->a, row, s->now)) {
      s->status = NO_SESSION;
      return BE_OK;
    }
  }
  int stored = 0;
  int rc = be__auth_store_password(s->a, c, &s->w, &stored, err);
  if (rc == BE_OK && !stored) s->status = NO_USER;
  return rc;
}

static int auth_set_password_body(be_app *app, int64_t actor_id, int64_t user_id, const char *password,
                                  size_t password_len, be_error **err) {
  be__auth *a = NULL;
  size_t len = 0;
  int rc = be__auth_get(app, &a, err);
  if (rc == BE_OK) rc = be__svc_check_id(user_id, "user_id", err);
  if (rc == BE_OK) rc = be__auth_pw_arg(password, password_len, "password", &len, err);
  if (rc != BE_OK) return rc;
  user_row u;
  rc = load_user(a, user_id, NULL, &u, err);
  if (rc != BE_OK) return rc;
  if (!u.found) return user_not_found(user_id, err);
  char hash[crypto_pwhash_STRBYTES];
  rc = be__pw_new_hash(a, hash, password, len, "password", u.email, u.name, err);
  if (rc != BE_OK) return rc;
  setpw_ctx s = {a, {actor_id, user_id, "auth.password_set", hash, NULL, NULL, 0, 0}, be__svc_now(a->res), 0};
  rc = be__svc_write(a->res, setpw_tx, &s, err);
  if (rc == BE_OK && s.status != 0) rc = user_not_found(user_id, err);
  /* A first password (sign-up) replaces nothing: nothing to tell. */
  if (rc == BE_OK && u.has_hash)
    be__mailer_notify(a->res, user_id, BE__NOTICE_PASSWORD_CHANGED, u.email);
  return rc;
}

int be_auth_set_password(be_app *app, int64_t actor_id, int64_t user_id, const char *password,
                         size_t password_len, be_error **err) {
  BE__OP_RECORD(app, BE_OP_AUTH_SET_PASSWORD, auth_set_password_body(app, actor_id, user_id, password, password_len, err));
}

static int auth_import_password_hash_body(be_app *app, int64_t actor_id, int64_t user_id,
                                          const char *password_hash, size_t password_hash_len,
                                          be_error **err) {
  be__auth *a = NULL;
  int rc = be__auth_get(app, &a, err);
  if (rc == BE_OK) rc = be__svc_check_id(user_id, "user_id", err);
  if (rc != BE_OK) return rc;
  if (password_hash == NULL) return be__error_field(err, "password_hash", "is required");
  size_t len = password_hash_len == BE_NUL_TERMINATED ? strnlen(password_hash, crypto_pwhash_STRBYTES)
                                                      : password_hash_len;
  rc = be__pw_check_phc(a, password_hash, len, "password_hash", err);
  if (rc != BE_OK) return rc;
  char hash[crypto_pwhash_STRBYTES];
  memcpy(hash, password_hash, len);
  hash[len] = '\0';
  user_row u;
  rc = load_user(a, user_id, NULL, &u, err);
  if (rc != BE_OK) return rc;
  if (!u.found) return user_not_found(user_id, err);
  setpw_ctx s = {a, {actor_id, user_id, "auth.password_import", hash, NULL, NULL, 0, 1}, be__svc_now(a->res), 0};
  rc = be__svc_write(a->res, setpw_tx, &s, err);
  if (rc == BE_OK && s.status != 0) rc = user_not_found(user_id, err);
  return rc;
}

int be_auth_import_password_hash(be_app *app, int64_t actor_id, int64_t user_id,
                                 const char *password_hash, size_t password_hash_len,
                                 be_error **err) {
  BE__OP_RECORD(app, BE_OP_AUTH_IMPORT_PASSWORD_HASH, auth_import_password_hash_body(app, actor_id, user_id, password_hash, password_hash_len, err));
}

/* The arguments of a change: both passwords given, the old one within the
 * byte cap, the current session's token (may be NULL) well-formed. */
static int change_args(be_app *app, be__auth **a, int64_t user_id, const char *token,
                       size_t token_len, uint8_t keep[BE__TOKEN_HASH_BYTES], const char *old_pw,
                       size_t old_len, size_t *olen, const char *new_pw, size_t new_len,
                       size_t *nlen, be_error **err) {
  int rc = be__auth_get(app, a, err);
  if (rc == BE_OK) rc = be__svc_check_id(user_id, "user_id", err);
  if (rc == BE_OK) rc = pw_to_verify(old_pw, old_len, "old_password", olen, err);
  if (rc == BE_OK) rc = be__auth_pw_arg(new_pw, new_len, "new_password", nlen, err);
  if (rc == BE_OK && token != NULL && be__token_hash(token, token_len, keep) != 0)
    rc = be__error_set(err, BE_E_UNAUTHORIZED, "%s", BAD_SESSION);
  return rc;
}

static int auth_change_password_body(be_app *app, int64_t user_id, const char *current_token,
                                     size_t current_token_len, const char *old_password, size_t old_len,
                                     const char *new_password, size_t new_len, be_error **err) {
  be__auth *a = NULL;
  uint8_t keep[BE__TOKEN_HASH_BYTES];
  size_t olen = 0, nlen = 0;
  int rc = change_args(app, &a, user_id, current_token, current_token_len, keep, old_password,
                       old_len, &olen, new_password, new_len, &nlen, err);
  if (rc != BE_OK) return rc;
  user_row u;
  rc = load_user(a, user_id, NULL, &u, err);
  if (rc != BE_OK) return rc;
  /* The old password first: the policy compares the new one with the
   * account's email and name and only runs for existing accounts, so
   * judging it before authentication would let anyone test guesses of a
   * user's email or learn which ids exist. */
  rc = be__pw_slot_acquire(a, err);
  if (rc != BE_OK) return rc;
  int match = 0;
  rc = verify_user(a, &u, old_password, olen, &match, err);
  be__pw_slot_release(a);
  if (rc != BE_OK) return rc;
  int64_t now = be__svc_now(a->res);
  rc = judge(a, &u, match, now, BAD_PASSWORD, err);
  if (rc != BE_OK) return rc;
  char hash[crypto_pwhash_STRBYTES];
  rc = be__pw_new_hash(a, hash, new_password, nlen, "new_password", u.email, u.name, err);
  if (rc != BE_OK) return rc;
  setpw_ctx s = {a, {user_id, user_id, "auth.password_change", hash, u.hash, current_token ? keep : NULL, 1, 0}, now, 0};
  rc = be__svc_write(a->res, setpw_tx, &s, err);
  if (rc == BE_OK && s.status != 0)
    rc = be__error_set(err, BE_E_UNAUTHORIZED, "%s",
                       s.status == NO_SESSION ? BAD_SESSION : BAD_PASSWORD);
  if (rc == BE_OK) be__mailer_notify(a->res, user_id, BE__NOTICE_PASSWORD_CHANGED, u.email);
  return rc;
}

int be_auth_change_password(be_app *app, int64_t user_id, const char *current_token,
                            size_t current_token_len, const char *old_password, size_t old_len,
                            const char *new_password, size_t new_len, be_error **err) {
  BE__OP_RECORD(app, BE_OP_AUTH_CHANGE_PASSWORD, auth_change_password_body(app, user_id, current_token, current_token_len, old_password, old_len, new_password, new_len, err));
}
