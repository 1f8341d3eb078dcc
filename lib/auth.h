/* SPDX-License-Identifier: MIT */
/* Internal: the auth service's state and the helpers its files share
 * (auth.c: state, sessions and passwords; auth_session.c: a user's
 * sessions listed and ended by id; auth_reset.c: password reset;
 * auth_password.c: policy and hashing; auth_token.c: tokens), and what
 * the user service asks of it. */
#ifndef BE_LIB_AUTH_H
#define BE_LIB_AUTH_H

#include <backend/auth.h>
#include <backend/storage.h>

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>

#include "app_resources.h"
#include "svc_sql.h"

/* Bytes of a token before encoding, and of its stored BLAKE2b hash. */
#define BE__TOKEN_BYTES 32
#define BE__TOKEN_HASH_BYTES BE__SVC_HASH_BYTES /* bound as 'h' (svc_sql.h) */
/* Longest email the service looks up (RFC 5321 path limit plus slack). */
#define BE__EMAIL_MAX 320
/* Bytes of a user's name kept for the policy's "not your name" check
 * (longer names are cut). */
#define BE__NAME_CAP 512

/* A pepper the auth service holds: its own copy of the host's key. */
typedef struct be__pepper {
  int32_t id; /* 0: no pepper */
  size_t len;
  uint8_t key[BE_AUTH_PEPPER_MAX_BYTES];
} be__pepper;

typedef struct be__auth be__auth;
struct be__breached;  /* auth_breached.c */
struct be__pw_waiter; /* auth_password.c */
struct be__auth {
  const be__app_res *res;
  unsigned long long opslimit;
  size_t memlimit;
  int32_t min_chars;
  int32_t max_hashes;
  int32_t throttle_after;
  int32_t lockout_after;
  int64_t idle_ns;
  int64_t absolute_ns;
  int64_t slide_ns; /* last_seen_at is rewritten only when it moved more than this */
  int64_t lockout_ns;
  int64_t reset_ttl_ns;
  pthread_mutex_t dummy_mu;                /* guards the three dummy fields */
  char dummy_hash[crypto_pwhash_STRBYTES]; /* verified when there is no real hash */
  unsigned long long dummy_ops;            /* its parameters (0: none made yet) */
  size_t dummy_mem;
  int64_t hash_wait_ns; /* longest wait in the slot queue */
  /* [0]: the pepper new hashes use (id 0: none); then the previous ones,
   * accepted to verify. Wiped with the state. */
  be__pepper peppers[1 + BE_AUTH_PREVIOUS_PEPPERS_MAX];
  int32_t pepper_count;
  pthread_mutex_t slot_mu;         /* guards the four slot fields below */
  int32_t slots_used;              /* hash slots held */
  int32_t slots_waiting;           /* callers queued for one */
  struct be__pw_waiter *wait_head; /* the queue, oldest first (auth_password.c) */
  struct be__pw_waiter *wait_tail;
  pthread_mutex_t hook_mu; /* guards the blocklist hook pair */
  be_auth_blocklist_fn blocklist_fn;
  void *blocklist_ud;
  pthread_rwlock_t breached_mu;  /* guards breached (swapped whole) */
  struct be__breached *breached; /* the host's loaded list; NULL: none */
  /* Test hook: called while a hash slot is held, before hashing. */
  void (*slot_hook)(void *ud);
  void *slot_hook_ud;
  int locks_ready; /* the mutexes and lock above are initialised */
};

/* The resolved options' password hashing parameters: argon2id below
 * OWASP's minimum is refused unless insecure_test_hashing is set. The
 * wiring checks this before it touches the database. */
int be__auth_check_options(const be_app_options *o, be_error **err);

/* Make the auth service's state from the app's resources (the wiring,
 * app.c, does); checks the options as be__auth_check_options().
 * be__auth_free(NULL) is a no-op. */
int be__auth_new(be__auth **out, const be__app_res *res, be_error **err);
void be__auth_free(be__auth *auth);

/* Tests only: run fn(ud) inside every hash slot (NULL removes it). */
void be__auth_set_slot_hook(be__auth *auth, void (*fn)(void *), void *ud);

/* The app's auth state, or BE_E_MISUSE when app is NULL. */
int be__auth_get(be_app *app, be__auth **out, be_error **err);

/* The app's auth state and the hash of a token argument (len bytes or
 * BE_NUL_TERMINATED); a malformed token is BE_E_UNAUTHORIZED with the
 * operation's generic message bad. */
int be__auth_token_arg(be_app *app, const char *token, size_t len, const char *bad,
                       be__auth **out, uint8_t hash[BE__TOKEN_HASH_BYTES], be_error **err);

/* Resolve a (pointer, length) password argument into its byte length:
 * BE_NUL_TERMINATED is bounded so a missing NUL is never read past the
 * cap + 1; any other length is exact (0: empty). A NULL pw is a
 * validation error naming field ("is required"). */
int be__auth_pw_arg(const char *pw, size_t len, const char *field, size_t *out_len,
                    be_error **err);

/* Trim ASCII white space and lower-case ASCII letters: the lookup form of an
 * email (email_len bytes or BE_NUL_TERMINATED). out must hold
 * BE__EMAIL_MAX + 1 bytes. BE_OK, or BE_E_VALIDATION naming "email" when
 * it is NULL, empty, too long, not valid UTF-8 or holds a NUL byte. */
int be__auth_email_key(const char *email, size_t email_len, char *out, be_error **err);

/* A new password hash to store (set, change, reset). */
typedef struct be__pw_write {
  int64_t actor_id;
  int64_t user_id;
  const char *action; /* the audit action */
  const char *new_hash;
  const char *old_hash; /* must still be the stored hash; NULL: any */
  const uint8_t *keep;  /* the session that stays; NULL: none */
  int active_only;      /* the account must be active (always so with old_hash) */
  int unpeppered;       /* new_hash was made without a pepper (an imported hash) */
} be__pw_write;

/* Inside the caller's write transaction: store w->new_hash and clear the
 * failure count when the row still matches (*stored = 1), then consume
 * the user's pending reset tokens, revoke the user's sessions but w->keep
 * and write the audit row with their count. Nothing is written when the
 * row does not match (*stored = 0). */
int be__auth_store_password(be__auth *a, be_conn *conn, const be__pw_write *w, int *stored,
                            be_error **err);

/* Inside the caller's write transaction: consume (mark used) every
 * pending reset token of the user. A reset link dies with the credential
 * it would replace -- a password set, changed or reset, a successful
 * login -- and with the address it was mailed to (an email change). */
int be__auth_consume_resets(const be__app_res *res, be_conn *conn, int64_t user_id,
                            be_error **err);

/* Inside the caller's write transaction: a disabled account loses every
 * session and every pending reset token (links mailed before the disable
 * must not work after a re-enable: accounts are often disabled after a
 * mailbox takeover). */
int be__auth_end_access(const be__app_res *res, be_conn *conn, int64_t user_id, be_error **err);

/* A session as the API shows it (auth_session.c): times in ms since the
 * epoch from the stored ns; it expires at the earlier of its absolute
 * expiry and last_seen + the idle timeout. out->version is left as is. */
void be__auth_session_fill(be_auth_session_info *out, const be__auth *a, int64_t id,
                           int64_t user_id, int64_t created_at, int64_t last_seen_at,
                           int64_t expires_at);

#endif
