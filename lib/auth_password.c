/* SPDX-License-Identifier: MIT */
/* Password policy (NIST SP 800-63B rev. 4: length, no composition rules, a
 * blocklist), argon2id through libsodium, and the bound on hashes in flight
 * (each one allocates pwhash_memlimit bytes). */
#include "auth_password.h"

#include <backend/log.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth_breached.h"
#include "clock.h"
#include "error.h"
#include "svc_input.h"
#include "utf8.h"

#define MIB ((size_t)1024 * 1024)

static const char BREACHED[] = "appears in a list of breached or banned passwords; choose another";

/* OWASP Password Storage Cheat Sheet: argon2id m = 19 MiB with t = 2, or an
 * equal-strength pair. Parameters pass when they reach any one pair. */
static const struct {
  size_t mem;
  unsigned long long ops;
} owasp_min[] = {
  {46 * MIB, 1},
  {19 * MIB, 2},
  {12 * MIB, 3},
  {9 * MIB, 4},
  {7 * MIB, 5},
};

int be__pw_check_params(unsigned long long opslimit, size_t memlimit, int insecure,
                        be_error **err) {
  if (opslimit < crypto_pwhash_argon2id_OPSLIMIT_MIN ||
      opslimit > crypto_pwhash_argon2id_OPSLIMIT_MAX)
    return be__error_field(err, "pwhash_opslimit", "must be between %u and %u",
                           (unsigned)crypto_pwhash_argon2id_OPSLIMIT_MIN,
                           (unsigned)crypto_pwhash_argon2id_OPSLIMIT_MAX);
  if (memlimit < crypto_pwhash_argon2id_MEMLIMIT_MIN ||
      memlimit > crypto_pwhash_argon2id_memlimit_max())
    return be__error_field(err, "pwhash_memlimit", "must be between %u bytes and %zu bytes",
                           (unsigned)crypto_pwhash_argon2id_MEMLIMIT_MIN,
                           crypto_pwhash_argon2id_memlimit_max());
  if (insecure) return BE_OK;
  for (size_t i = 0; i < sizeof owasp_min / sizeof owasp_min[0]; i++)
    if (memlimit >= owasp_min[i].mem && opslimit >= owasp_min[i].ops) return BE_OK;
  if (memlimit < 7 * MIB)
    return be__error_field(err, "pwhash_memlimit",
                           "is below OWASP's argon2id minimum (19 MiB with t = 2); "
                           "only insecure_test_hashing allows it");
  return be__error_field(err, "pwhash_opslimit",
                         "is below OWASP's argon2id minimum for this memlimit (t = 2 at "
                         "19 MiB); only insecure_test_hashing allows it");
}

/* ---- policy ---------------------------------------------------------- */

/* Common passwords of at least 12 characters (shorter ones fail the length
 * rule anyway), lower-case; compared case-insensitively. Drawn from the
 * long entries of public leak top lists. Patterns (one character repeated,
 * straight runs, a shorter string repeated) are refused by rule, not listed. */
static const char *const common[] = {
  "!qaz2wsx#edc",
  "!qaz@wsx#edc",
  "1234567890qwerty",
  "1234qwerasdf",
  "1234qwerasdfzxcv",
  "123qweasdzxc",
  "1a2b3c4d5e6f",
  "1q2w3e4r5t6y",
  "1q2w3e4r5t6y7u",
  "1q2w3e4r5t6y7u8i",
  "1qaz2wsx3edc",
  "1qaz2wsx3edc4rfv",
  "a1b2c3d4e5f6",
  "abc123abc123",
  "abcd1234abcd1234",
  "abcdef123456",
  "adminadmin123",
  "administrator",
  "administrator1",
  "asdf1234asdf",
  "asdfghjkl123",
  "asdfghjkl1234",
  "asdfghjklqwe",
  "baseball1234",
  "changeme1234",
  "changemechangeme",
  "computer1234",
  "default12345",
  "defaultpassword",
  "dragon123456",
  "football1234",
  "guest1234567",
  "iloveyou1234",
  "iloveyou12345",
  "iloveyou123456",
  "iloveyouiloveyou",
  "internet1234",
  "jennifer1234",
  "letmein12345",
  "letmein123456",
  "letmeinletmein",
  "master123456",
  "michael12345",
  "monkey123456",
  "mypassword12",
  "mypassword123",
  "mypassword1234",
  "nopassword123",
  "p@ssw0rd1234",
  "p@ssword1234",
  "pa55word1234",
  "pass12345678",
  "passw0rd1234",
  "password!234",
  "password!@#$",
  "password1!password",
  "password1234",
  "password1234!",
  "password12345",
  "password123456",
  "password123456789",
  "password2020",
  "password2021",
  "password2022",
  "password2023",
  "password2024",
  "password2025",
  "password2026",
  "passwordpassword",
  "princess1234",
  "q1w2e3r4t5y6",
  "q1w2e3r4t5y6u7",
  "qazwsxedcrfv",
  "qazwsxedcrfvtgb",
  "qazwsxedcrfvtgbyhn",
  "qwe123qwe123",
  "qweasdzxc123",
  "qwer1234qwer",
  "qwerty123456",
  "qwerty1234567",
  "qwerty12345678",
  "qwertyqwerty",
  "qwertyuiop12",
  "qwertyuiop123",
  "qwertyuiopasdf",
  "qwertyuiopasdfgh",
  "qwertyuiopasdfghjkl",
  "qwertyuiopasdfghjklzxcvbnm",
  "rootpassword",
  "secretpassword",
  "shadow123456",
  "starwars1234",
  "sunshine1234",
  "superman1234",
  "supersecret123",
  "supersecretpassword",
  "temppassword",
  "temporarypassword",
  "test12345678",
  "testpassword",
  "thisismypassword",
  "trustno1trustno1",
  "useruser1234",
  "welcome12345",
  "welcome123456",
  "welcomewelcome",
  "whatever1234",
  "zaq12wsxcde3",
  "zaq1zaq1zaq1",
  "zxcvbnm12345",
  "zxcvbnm123456",
  "zxcvbnmasdfghjkl",
};

static int eq_fold(const char *a, size_t alen, const char *b, size_t blen) {
  if (alen != blen) return 0;
  for (size_t i = 0; i < alen; i++)
    if (be__svc_lower((unsigned char)a[i]) != be__svc_lower((unsigned char)b[i])) return 0;
  return 1;
}

int be__pw_is_common(const char *pw, size_t len) {
  for (size_t i = 0; i < sizeof common / sizeof common[0]; i++)
    if (eq_fold(pw, len, common[i], strlen(common[i]))) return 1;
  return 0;
}

/* 1 when pw is a shorter string repeated: its smallest period (the
 * shortest p with pw[i] == pw[i - p] for every i >= p; ASCII case folded,
 * bytewise) is at most half its length, the last repetition possibly cut
 * short ("abcabcab", "abcdeabcde", "qigc2" x 51). From the prefix function
 * (Knuth-Morris-Pratt): the smallest period is len - pi[len - 1]. O(len). */
static int is_repeated(const char *pw, size_t len) {
  const unsigned char *p = (const unsigned char *)pw;
  uint16_t pi[BE_AUTH_PASSWORD_MAX_BYTES]; /* len <= the byte cap (checked first) */
  if (len < 2) return 1;
  pi[0] = 0;
  for (size_t i = 1; i < len; i++) {
    size_t k = pi[i - 1];
    while (k > 0 && be__svc_lower(p[i]) != be__svc_lower(p[k])) k = pi[k - 1];
    if (be__svc_lower(p[i]) == be__svc_lower(p[k])) k++;
    pi[i] = (uint16_t)k;
  }
  return len - pi[len - 1] <= len / 2;
}

/* A shorter string repeated, or a straight run of letters or symbols
 * ("abcdef…", "zyxw…") or of digits wrapping at 10 ("1234567890123").
 * Bytewise after ASCII case folding. */
static int is_trivial(const char *pw, size_t len) {
  const unsigned char *p = (const unsigned char *)pw;
  if (is_repeated(pw, len)) return 1;
  for (int dir = -1; dir <= 1; dir += 2) {
    size_t i = 1;
    while (i < len && p[i] < 0x80 && p[i - 1] < 0x80 &&
           (int)be__svc_lower(p[i]) - (int)be__svc_lower(p[i - 1]) == dir)
      i++;
    if (i == len) return 1;
    i = 1;
    while (i < len && p[i] >= '0' && p[i] <= '9' && p[i - 1] >= '0' && p[i - 1] <= '9' &&
           (p[i] - '0') == ((p[i - 1] - '0') + 10 + dir) % 10)
      i++;
    if (i == len) return 1;
  }
  return 0;
}

/* Count the code points of pw (*chars) and, up to
 * BE_AUTH_PASSWORD_MIN_DISTINCT, the different ones (*distinct; ASCII case
 * folded). 0 when pw is not valid UTF-8. */
static int count_chars(const char *pw, size_t len, size_t *chars, size_t *distinct) {
  const unsigned char *p = (const unsigned char *)pw;
  uint32_t seen[BE_AUTH_PASSWORD_MIN_DISTINCT];
  *chars = 0;
  *distinct = 0;
  size_t i = 0;
  for (; i < len; (*chars)++) {
    uint32_t cp;
    size_t n = be__utf8_decode(p + i, len - i, &cp);
    if (n == 0) break;
    i += n;
    cp = cp < 0x80 ? be__svc_lower((unsigned char)cp) : cp;
    size_t k = 0;
    while (k < *distinct && seen[k] != cp) k++;
    if (k == *distinct && *distinct < BE_AUTH_PASSWORD_MIN_DISTINCT) seen[(*distinct)++] = cp;
  }
  sodium_memzero(seen, sizeof seen); /* the password's first characters */
  return i >= len;
}

/* pw is the account's email, the email's local part, or its name (each
 * trimmed of white space; ASCII case folded). */
static int is_context(const char *pw, size_t len, const char *email, const char *name) {
  size_t n = 0;
  if (email != NULL) {
    n = strlen(email);
    const char *s = be__svc_trim(email, &n);
    const char *at = memchr(s, '@', n);
    if (eq_fold(pw, len, s, n) || (at != NULL && eq_fold(pw, len, s, (size_t)(at - s)))) return 1;
  }
  if (name == NULL) return 0;
  n = strlen(name);
  const char *s = be__svc_trim(name, &n);
  return eq_fold(pw, len, s, n);
}

int be__pw_policy(be__auth *auth, const char *pw, size_t len, const char *field,
                  const char *email, const char *name, be_error **err) {
  if (pw == NULL) return be__error_field(err, field, "is required");
  if (len > BE_AUTH_PASSWORD_MAX_BYTES)
    return be__error_field(err, field, "must be at most %d bytes", BE_AUTH_PASSWORD_MAX_BYTES);
  if (memchr(pw, '\0', len) != NULL)
    return be__error_field(err, field, "must not contain a NUL byte");
  size_t chars = 0, distinct = 0;
  if (!count_chars(pw, len, &chars, &distinct))
    return be__error_field(err, field, "must be valid UTF-8");
  if (chars < (size_t)auth->min_chars)
    return be__error_field(err, field, "must be at least %d characters", (int)auth->min_chars);
  if (chars > BE_AUTH_PASSWORD_MAX_CHARS)
    return be__error_field(err, field, "must be at most %d characters",
                           BE_AUTH_PASSWORD_MAX_CHARS);
  if (be__pw_is_common(pw, len))
    return be__error_field(err, field, "is too common; choose a less predictable password");
  if (is_trivial(pw, len))
    return be__error_field(err, field, "is a repeated pattern or a straight run of characters");
  if (distinct < BE_AUTH_PASSWORD_MIN_DISTINCT)
    return be__error_field(err, field, "must hold at least %d different characters",
                           BE_AUTH_PASSWORD_MIN_DISTINCT);
  if (is_context(pw, len, email, name))
    return be__error_field(err, field, "must not be the account's email or name");
  if (be__breached_has(auth, pw, len)) return be__error_field(err, field, "%s", BREACHED);
  pthread_mutex_lock(&auth->hook_mu);
  be_auth_blocklist_fn fn = auth->blocklist_fn;
  void *ud = auth->blocklist_ud;
  pthread_mutex_unlock(&auth->hook_mu);
  if (fn != NULL) {
    be_error *cause = NULL;
    int rc = fn(pw, len, ud, &cause);
    if (rc != 1 && rc < 0) {
      if (cause != NULL) return be__error_wrap(err, rc, cause, "the password blocklist check failed");
      return be__error_set(err, rc, "the password blocklist check failed (%s)", be_strerror(rc));
    }
    be_error_free(cause); /* set without a failure: not ours to report */
    if (rc == 1) return be__error_field(err, field, "%s", BREACHED);
    if (rc != 0)
      return be__error_set(err, BE_E_INTERNAL, "the password blocklist hook returned %d", rc);
  }
  return BE_OK;
}

/* ---- hashing --------------------------------------------------------- */

/* A caller queued for a hash slot, on its own stack. */
struct be__pw_waiter {
  struct be__pw_waiter *next;
  pthread_cond_t cv;
  int granted; /* the releaser handed its slot over */
};

/* Drop w from the queue (it timed out). slot_mu is held. */
static void unlink_waiter(be__auth *a, struct be__pw_waiter *w) {
  struct be__pw_waiter **link = &a->wait_head, *prev = NULL;
  while (*link != w) {
    prev = *link;
    link = &(*link)->next;
  }
  *link = w->next;
  if (a->wait_tail == w) a->wait_tail = prev;
  a->slots_waiting--;
}

/* Queue at the tail and wait until a releaser hands over its slot (1) or
 * hash_wait_ns passed (0). slot_mu is held. */
static int wait_turn(be__auth *a) {
  struct be__pw_waiter w;
  memset(&w, 0, sizeof w);
  if (be__cond_init_monotonic(&w.cv) != 0) return 0;
  struct timespec deadline;
  be__clock_deadline_after(&deadline, a->hash_wait_ns);
  if (a->wait_tail != NULL) a->wait_tail->next = &w;
  else a->wait_head = &w;
  a->wait_tail = &w;
  a->slots_waiting++;
  while (!w.granted)
    if (pthread_cond_timedwait(&w.cv, &a->slot_mu, &deadline) == ETIMEDOUT && !w.granted) {
      unlink_waiter(a, &w);
      break;
    }
  pthread_cond_destroy(&w.cv);
  return w.granted;
}

int be__pw_slot_acquire(be__auth *auth, be_error **err) {
  pthread_mutex_lock(&auth->slot_mu);
  /* Nobody overtakes the queue: a free slot goes to its head first. */
  int ok = auth->wait_head == NULL && auth->slots_used < auth->max_hashes;
  if (ok) auth->slots_used++;
  else ok = wait_turn(auth);
  pthread_mutex_unlock(&auth->slot_mu);
  if (!ok)
    return be__error_set(err, BE_E_UNAVAILABLE,
                         "too many password hashes in progress (limit %d, waited %lld ms); "
                         "retry later",
                         (int)auth->max_hashes, (long long)(auth->hash_wait_ns / BE_NS_PER_MS));
  if (auth->slot_hook != NULL) auth->slot_hook(auth->slot_hook_ud);
  return BE_OK;
}

void be__pw_slot_release(be__auth *auth) {
  pthread_mutex_lock(&auth->slot_mu);
  struct be__pw_waiter *w = auth->wait_head;
  if (w != NULL) { /* the slot passes straight to the oldest waiter */
    auth->wait_head = w->next;
    if (auth->wait_head == NULL) auth->wait_tail = NULL;
    auth->slots_waiting--;
    w->granted = 1;
    pthread_cond_signal(&w->cv);
  } else {
    auth->slots_used--;
  }
  pthread_mutex_unlock(&auth->slot_mu);
}

int32_t be__pw_slots_waiting(be__auth *auth) {
  pthread_mutex_lock(&auth->slot_mu);
  int32_t n = auth->slots_waiting;
  pthread_mutex_unlock(&auth->slot_mu);
  return n;
}

/* ---- the pepper ------------------------------------------------------ */

void be__pw_set_pepper(be__pepper *p, const uint8_t *key, size_t len, int32_t id) {
  memset(p, 0, sizeof *p);
  if (key == NULL || len > sizeof p->key) return; /* none (the options were checked) */
  memcpy(p->key, key, len);
  p->len = len;
  p->id = id;
}

/* The pepper a hash stored with pepper id uses: "none" for 0, NULL when
 * that pepper is not configured. */
static const be__pepper *pepper_for(const be__auth *a, int64_t id) {
  static const be__pepper none = {0, 0, {0}};
  if (id == 0) return &none;
  for (int32_t i = 0; i < a->pepper_count; i++)
    if (a->peppers[i].id == id) return &a->peppers[i];
  return NULL;
}

/* What argon2id takes for pw under pepper p: pw itself without a pepper,
 * else HMAC-SHA-256(key, pw) in buf (the caller wipes it). *out_len gets
 * its length. */
static const char *keyed(const be__pepper *p, const char *pw, size_t len,
                         unsigned char buf[crypto_auth_hmacsha256_BYTES], size_t *out_len) {
  *out_len = len;
  if (p->id == 0) return pw;
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, p->key, p->len);
  crypto_auth_hmacsha256_update(&st, (const unsigned char *)pw, len);
  crypto_auth_hmacsha256_final(&st, buf);
  sodium_memzero(&st, sizeof st);
  *out_len = crypto_auth_hmacsha256_BYTES;
  return (const char *)buf;
}

/* argon2id of in (n bytes) with (ops, mem) into out. */
static int hash_with(char out[crypto_pwhash_STRBYTES], const char *in, size_t n,
                     unsigned long long ops, size_t mem, be_error **err) {
  if (crypto_pwhash_str_alg(out, in, n, ops, mem, crypto_pwhash_ALG_ARGON2ID13) != 0)
    return be__error_set(err, BE_E_NOMEM, "password hashing could not allocate %zu bytes", mem);
  return BE_OK;
}

int be__pw_hash(be__auth *auth, char out[crypto_pwhash_STRBYTES], const char *pw, size_t len,
                be_error **err) {
  unsigned char buf[crypto_auth_hmacsha256_BYTES];
  size_t n = 0;
  const char *in = keyed(&auth->peppers[0], pw, len, buf, &n);
  int rc = hash_with(out, in, n, auth->opslimit, auth->memlimit, err);
  sodium_memzero(buf, sizeof buf);
  return rc;
}

int be__pw_new_hash(be__auth *auth, char out[crypto_pwhash_STRBYTES], const char *pw, size_t len,
                    const char *field, const char *email, const char *name, be_error **err) {
  int rc = be__pw_policy(auth, pw, len, field, email, name, err);
  if (rc != BE_OK) return rc;
  rc = be__pw_slot_acquire(auth, err);
  if (rc != BE_OK) return rc;
  rc = be__pw_hash(auth, out, pw, len, err);
  be__pw_slot_release(auth);
  return rc;
}

static int stored_usable(const char *stored) {
  return stored != NULL && strnlen(stored, crypto_pwhash_STRBYTES) < crypto_pwhash_STRBYTES &&
         strncmp(stored, crypto_pwhash_argon2id_STRPREFIX,
                 sizeof crypto_pwhash_argon2id_STRPREFIX - 1) == 0;
}

int be__pw_dummy_follow(be__auth *auth, unsigned long long ops, size_t mem, be_error **err) {
  int rc = BE_OK;
  pthread_mutex_lock(&auth->dummy_mu);
  if (auth->dummy_ops != ops || auth->dummy_mem != mem) {
    /* A random secret nobody knows: the hash only has to cost the same. */
    unsigned char secret[32];
    char h[crypto_pwhash_STRBYTES];
    randombytes_buf(secret, sizeof secret);
    rc = hash_with(h, (const char *)secret, sizeof secret, ops, mem, err);
    if (rc == BE_OK) {
      memcpy(auth->dummy_hash, h, sizeof h);
      auth->dummy_ops = ops;
      auth->dummy_mem = mem;
    }
    sodium_memzero(secret, sizeof secret);
  }
  pthread_mutex_unlock(&auth->dummy_mu);
  return rc;
}

void be__pw_dummy_params(be__auth *auth, unsigned long long *ops, size_t *mem) {
  pthread_mutex_lock(&auth->dummy_mu);
  *ops = auth->dummy_ops;
  *mem = auth->dummy_mem;
  pthread_mutex_unlock(&auth->dummy_mu);
}

/* A usable hash whose pepper is gone: it can never match. Say so (the
 * id, never a key), so an operator sees why such logins fail. */
static void log_unknown_pepper(int64_t id) {
  char text[24];
  snprintf(text, sizeof text, "%lld", (long long)id);
  be_log_field f[] = {{"pepper_id", text}};
  be_log(BE_LOG_WARN, "auth: a stored password hash uses a pepper that is not configured", f, 1,
         NULL);
}

int be__pw_verify(be__auth *auth, const char *stored, int64_t pepper_id, const char *pw,
                  size_t len) {
  const be__pepper *p = pepper_for(auth, pepper_id);
  int real = stored_usable(stored) && p != NULL;
  if (stored_usable(stored) && p == NULL) log_unknown_pepper(pepper_id);
  char dummy[crypto_pwhash_STRBYTES];
  if (!real) {
    pthread_mutex_lock(&auth->dummy_mu);
    memcpy(dummy, auth->dummy_hash, sizeof dummy);
    pthread_mutex_unlock(&auth->dummy_mu);
    p = &auth->peppers[0]; /* the same keying work as a real one */
  }
  unsigned char buf[crypto_auth_hmacsha256_BYTES];
  size_t n = 0;
  const char *in = keyed(p, pw, len, buf, &n);
  /* Without a real hash the result is meaningless; the work is the point. */
  int ok = crypto_pwhash_str_verify(real ? stored : dummy, in, n) == 0;
  sodium_memzero(buf, sizeof buf);
  return real && ok;
}

/* 1 when a usable stored hash is not shaped like crypto_pwhash_str()'s:
 * one lane and a 32-byte hash (43 base64 characters after the last '$'). */
static int foreign_shape(const char *stored) {
  const char *last = strrchr(stored, '$');
  return strstr(stored, ",p=1$") == NULL || last == NULL || strlen(last + 1) != 43;
}

int be__pw_needs_rehash(be__auth *auth, const char *stored, int64_t pepper_id) {
  if (!stored_usable(stored)) return 0;
  return pepper_id != auth->peppers[0].id || foreign_shape(stored) ||
         crypto_pwhash_str_needs_rehash(stored, auth->opslimit, auth->memlimit) != 0;
}

/* ---- imported hashes (PHC strings) ----------------------------------- */

/* A decimal of 1..10 digits, no sign and no leading zero, at *p (up to
 * end) into *v; *p moves past it. 0 when there is none or it is over max. */
static int phc_num(const char **p, const char *end, uint64_t max, uint64_t *v) {
  const char *q = *p;
  uint64_t x = 0;
  while (q < end && *q >= '0' && *q <= '9' && q - *p < 11) x = x * 10 + (uint64_t)(*q++ - '0');
  if (q == *p || q - *p > 10 || (**p == '0' && q - *p > 1) || x > max) return 0;
  *v = x;
  *p = q;
  return 1;
}

/* *p starts with lit (advancing past it). */
static int phc_lit(const char **p, const char *end, const char *lit) {
  size_t n = strlen(lit);
  if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0) return 0;
  *p += n;
  return 1;
}

/* Unpadded standard base64 from p to end decoding to min..max bytes. */
static int phc_b64(const char *p, const char *end, size_t min, size_t max) {
  unsigned char bin[64];
  size_t n = 0;
  const char *stop = NULL;
  if (sodium_base642bin(bin, sizeof bin, p, (size_t)(end - p), NULL, &n, &stop,
                        sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0)
    return 0;
  return stop == end && n >= min && n <= max;
}

/* m (KiB) and t of "m=M,t=T,p=P" at *p, within libsodium's limits. */
static int phc_params(const char **p, const char *end, uint64_t *m, uint64_t *t) {
  uint64_t lanes = 0;
  if (!phc_lit(p, end, "m=") || !phc_num(p, end, crypto_pwhash_argon2id_memlimit_max() / 1024, m) ||
      !phc_lit(p, end, ",t=") || !phc_num(p, end, crypto_pwhash_argon2id_OPSLIMIT_MAX, t) ||
      !phc_lit(p, end, ",p=") || !phc_num(p, end, 0xffffff, &lanes))
    return 0;
  return *t >= crypto_pwhash_argon2id_OPSLIMIT_MIN && lanes >= 1 && *m >= 8 * lanes;
}

/* The costliest hash an app verifies (auth_password.h): RFC 9106's first
 * recommendation (2 GiB, t = 1) and libsodium's SENSITIVE (1 GiB, t = 4)
 * fit; the app's own parameters always do. */
#define CAP_MEM_KIB (UINT64_C(2) << 20) /* 2 GiB */
#define CAP_WORK (UINT64_C(4) << 20)    /* KiB x passes: 1 GiB x 4 */

void be__pw_cost_cap(const be__auth *auth, uint64_t *mem_kib, uint64_t *work) {
  uint64_t m = auth->memlimit / 1024, t = auth->opslimit;
  *mem_kib = m > CAP_MEM_KIB ? m : CAP_MEM_KIB;
  /* both within libsodium's limits (2^32), so m * t cannot wrap */
  *work = m * t > CAP_WORK ? m * t : CAP_WORK;
}

static const char PHC_FORM[] = "must be an argon2id hash in PHC string form: "
                               "$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>";

int be__pw_check_phc(const be__auth *auth, const char *s, size_t len, const char *field,
                     be_error **err) {
  if (len >= crypto_pwhash_STRBYTES)
    return be__error_field(err, field, "must be shorter than %d bytes", crypto_pwhash_STRBYTES);
  if (memchr(s, '\0', len) != NULL) return be__error_field(err, field, "must not hold a NUL byte");
  const char *p = s, *end = s + len;
  if (!phc_lit(&p, end, crypto_pwhash_argon2id_STRPREFIX)) return be__error_field(err, field, "%s", PHC_FORM);
  if (!phc_lit(&p, end, "v=19$"))
    return be__error_field(err, field, "must be argon2 version 19 (v=19)");
  uint64_t m = 0, t = 0;
  if (!phc_params(&p, end, &m, &t) || !phc_lit(&p, end, "$"))
    return be__error_field(err, field, "has m, t or p missing or out of range (%s)", PHC_FORM);
  uint64_t cap_mem, cap_work;
  be__pw_cost_cap(auth, &cap_mem, &cap_work);
  if (m > cap_mem || t > cap_work / m) /* m >= 8: no division by 0 */
    return be__error_field(err, field,
                           "asks for more than this app verifies: m at most %llu KiB and m x t at "
                           "most %llu KiB",
                           (unsigned long long)cap_mem, (unsigned long long)cap_work);
  const char *salt = p;
  while (p < end && *p != '$') p++;
  if (p == end || !phc_b64(salt, p, 8, 64) || !phc_b64(p + 1, end, 16, 64))
    return be__error_field(err, field, "has a salt (8..64 bytes) or hash (16..64 bytes) that is "
                                       "not unpadded standard base64 of that size");
  char copy[crypto_pwhash_STRBYTES];
  memcpy(copy, s, len);
  copy[len] = '\0';
  if (crypto_pwhash_str_needs_rehash(copy, crypto_pwhash_argon2id_OPSLIMIT_MIN,
                                     crypto_pwhash_argon2id_MEMLIMIT_MIN) < 0)
    return be__error_field(err, field, "is not an argon2id hash libsodium can verify");
  return BE_OK;
}
