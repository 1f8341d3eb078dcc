/* SPDX-License-Identifier: MIT */
/* Internal: the auth service's state and the helpers its files share
 * (auth.c: state, sessions and passwords; auth_reset.c: password reset;
 * auth_password.c: policy and hashing; auth_token.c: tokens). */
#ifndef BE_LIB_AUTH_H
#define BE_LIB_AUTH_H

#include <backend/auth.h>
#include <backend/storage.h>

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>

#include "app_resources.h"

/* Bytes of a token before encoding, and of its stored BLAKE2b hash. */
#define BE__TOKEN_BYTES 32
#define BE__TOKEN_HASH_BYTES 32
/* Longest email the service looks up (RFC 5321 path limit plus slack). */
#define BE__EMAIL_MAX 320

typedef struct be__auth be__auth;
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
  int64_t slide_ns;     /* last_seen_at is rewritten only when it moved more than this */
  int64_t lockout_ns;
  int64_t reset_ttl_ns;
  char dummy_hash[crypto_pwhash_STRBYTES]; /* verified when there is no real hash */
  atomic_int hashing;                      /* hash slots in use */
  pthread_mutex_t hook_mu;                 /* guards the blocklist hook pair */
  be_auth_blocklist_fn blocklist_fn;
  void *blocklist_ud;
  /* Test hook: called while a hash slot is held, before hashing. */
  void (*slot_hook)(void *ud);
  void *slot_hook_ud;
};

/* Make the auth service's state from the app's resources (the wiring,
 * app.c, does); refuses argon2id parameters below OWASP's minimum unless
 * insecure_test_hashing is set. be__auth_free(NULL) is a no-op. */
int be__auth_new(be__auth **out, const be__app_res *res, be_error **err);
void be__auth_free(be__auth *auth);

/* Tests only: run fn(ud) inside every hash slot (NULL removes it). */
void be__auth_set_slot_hook(be__auth *auth, void (*fn)(void *), void *ud);

/* The app's auth state, or BE_E_MISUSE when app is NULL. */
int be__auth_get(be_app *app, be__auth **out, be_error **err);

/* The app's wall clock now, in nanoseconds. */
int64_t be__auth_now(const be__auth *auth);

/* Wipe and free a heap copy of a secret (strlen bytes). NULL is a no-op. */
void be__auth_secret_free(char *s);

/* Resolve a (pointer, length) password argument: BE_NUL_TERMINATED means
 * strlen, bounded so a missing NUL is never read past the cap + 1; any
 * other length is exact (0: empty). Returns 0, or -1 when pw is NULL. */
int be__auth_pw_len(const char *pw, size_t len, size_t *out_len);

/* Trim ASCII white space and lower-case ASCII letters: the lookup form of an
 * email (email_len bytes or BE_NUL_TERMINATED). out must hold
 * BE__EMAIL_MAX + 1 bytes. BE_OK, or BE_E_VALIDATION naming "email" when
 * it is NULL, empty, too long, not valid UTF-8 or holds a NUL byte. */
int be__auth_email_key(const char *email, size_t email_len, char *out, be_error **err);

#endif
