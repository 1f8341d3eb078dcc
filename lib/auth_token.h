/* SPDX-License-Identifier: MIT */
/* Internal: opaque tokens (sessions, password resets). A token is 32 bytes
 * from randombytes_buf, base64url without padding (43 characters); only
 * its BLAKE2b-256 hash is stored. */
#ifndef BE_LIB_AUTH_TOKEN_H
#define BE_LIB_AUTH_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"

/* Make a fresh token: out gets BE_AUTH_TOKEN_LEN characters and a NUL,
 * hash its BLAKE2b-256. Wipes its raw bytes. Never fails. */
void be__token_new(char out[BE_AUTH_TOKEN_LEN + 1], uint8_t hash[BE__TOKEN_HASH_BYTES]);

/* Parse a token the caller gave us (len bytes, or BE_NUL_TERMINATED) and
 * compute its hash. Returns 0, or -1 for NULL, a wrong length, a character
 * outside base64url (a NUL byte included) or a non-canonical encoding;
 * reads at most BE_AUTH_TOKEN_LEN + 1 bytes. */
int be__token_hash(const char *token, size_t len, uint8_t hash[BE__TOKEN_HASH_BYTES]);

#endif
