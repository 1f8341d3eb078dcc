/* SPDX-License-Identifier: MIT */
/* Internal: password policy, argon2id hashing and the hash-slot bound. */
#ifndef BE_LIB_AUTH_PASSWORD_H
#define BE_LIB_AUTH_PASSWORD_H

#include <stddef.h>

#include "auth.h"

/* Refuse argon2id parameters below OWASP's minimum unless insecure is set,
 * and any outside libsodium's limits. BE_OK or BE_E_VALIDATION naming
 * "pwhash_opslimit" / "pwhash_memlimit". */
int be__pw_check_params(unsigned long long opslimit, size_t memlimit, int insecure, be_error **err);

/* The policy of backend/auth.h. len must already be resolved (no
 * BE_NUL_TERMINATED); field names the argument in errors; email and
 * name (may be NULL) are the account's, which the password must not be. */
int be__pw_policy(be__auth *auth, const char *pw, size_t len, const char *field,
                  const char *email, const char *name, be_error **err);

/* Take one of the app's hash slots: at once when one is free and nobody
 * queues, else in FIFO order as slots are released, waiting at most
 * hash_wait_ms; then BE_E_UNAVAILABLE (503). Release hands the slot to the
 * oldest waiter. */
int be__pw_slot_acquire(be__auth *auth, be_error **err);
void be__pw_slot_release(be__auth *auth);

/* Callers queued for a slot now (tests). */
int32_t be__pw_slots_waiting(be__auth *auth);

/* argon2id hash of pw (keyed by the current pepper, if any) with the
 * current parameters into out. A slot must be
 * held. BE_OK or BE_E_NOMEM (libsodium could not get its memory). */
int be__pw_hash(be__auth *auth, char out[crypto_pwhash_STRBYTES], const char *pw, size_t len,
                be_error **err);

/* A new password for an account: the policy (field, email and name as for
 * be__pw_policy), then a hash slot, then the hash into out. The one path
 * every set/change/reset of a password takes. */
int be__pw_new_hash(be__auth *auth, char out[crypto_pwhash_STRBYTES], const char *pw, size_t len,
                    const char *field, const char *email, const char *name, be_error **err);

/* Remake the dummy hash with parameters (ops, mem) unless it already has
 * them. BE_OK or BE_E_NOMEM (the old dummy stays). Thread-safe. */
int be__pw_dummy_follow(be__auth *auth, unsigned long long ops, size_t mem, be_error **err);

/* The dummy hash's parameters (tests). */
void be__pw_dummy_params(be__auth *auth, unsigned long long *ops, size_t *mem);

/* Copy a pepper (key NULL: none) into p. */
void be__pw_set_pepper(be__pepper *p, const uint8_t *key, size_t len, int32_t id);

/* 1 when pw matches the stored hash, made under the pepper with id
 * pepper_id (0: none). When stored is NULL or malformed, or that pepper
 * is not configured (logged), the dummy hash is verified instead, so the
 * work is the same, and the answer is 0. A slot must be held. */
int be__pw_verify(be__auth *auth, const char *stored, int64_t pepper_id, const char *pw,
                  size_t len);

/* The costliest hash the app verifies or imports, and the most its dummy
 * follows: m at most *mem_kib KiB and m x t at most *work KiB passes, the
 * larger of 2 GiB / 4 GiB passes and the app's own parameters. One stored
 * hash beyond it would make every login, and every unknown email's,
 * cost that much. */
void be__pw_cost_cap(const be__auth *auth, uint64_t *mem_kib, uint64_t *work);

/* Check an argon2id hash in PHC string form for import: exactly
 * "$argon2id$v=19$m=M,t=T,p=P$SALT$HASH" with M, T, P decimal within
 * libsodium's limits (M >= 8 * P KiB) and the app's cost cap
 * (be__pw_cost_cap), SALT 8..64 and HASH 16..64 bytes of unpadded
 * standard base64, under crypto_pwhash_STRBYTES bytes in all, and
 * libsodium able to read it. len is resolved (no BE_NUL_TERMINATED).
 * BE_OK, or BE_E_VALIDATION naming `field`. */
int be__pw_check_phc(const be__auth *auth, const char *s, size_t len, const char *field,
                     be_error **err);

/* 1 when a stored hash was made with other parameters or another pepper
 * than the current, or has a shape libsodium's own hashes do not (more
 * than one lane, another hash length: an imported hash). */
int be__pw_needs_rehash(be__auth *auth, const char *stored, int64_t pepper_id);

/* Case-insensitive (ASCII) check against the built-in common list. */
int be__pw_is_common(const char *pw, size_t len);

#endif
