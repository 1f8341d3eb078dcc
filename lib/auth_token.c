/* SPDX-License-Identifier: MIT */
#include "auth_token.h"

#include <string.h>

#include "svc_input.h"

#define VARIANT sodium_base64_VARIANT_URLSAFE_NO_PADDING

static void hash_raw(const uint8_t raw[BE__TOKEN_BYTES], uint8_t hash[BE__TOKEN_HASH_BYTES]) {
  crypto_generichash(hash, BE__TOKEN_HASH_BYTES, raw, BE__TOKEN_BYTES, NULL, 0);
}

void be__token_new(char out[BE_AUTH_TOKEN_LEN + 1], uint8_t hash[BE__TOKEN_HASH_BYTES]) {
  uint8_t raw[BE__TOKEN_BYTES];
  randombytes_buf(raw, sizeof raw);
  sodium_bin2base64(out, BE_AUTH_TOKEN_LEN + 1, raw, sizeof raw, VARIANT);
  hash_raw(raw, hash);
  sodium_memzero(raw, sizeof raw);
}

static int b64url_char(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

int be__token_hash(const char *token, size_t len, uint8_t hash[BE__TOKEN_HASH_BYTES]) {
  if (token == NULL) return -1;
  size_t n = be__svc_len(token, len, BE_AUTH_TOKEN_LEN);
  if (n != BE_AUTH_TOKEN_LEN) return -1;
  /* The alphabet check is cheap and keeps odd bytes away from the decoder. */
  for (size_t i = 0; i < n; i++)
    if (!b64url_char((unsigned char)token[i])) return -1;
  uint8_t raw[BE__TOKEN_BYTES];
  size_t raw_len = 0;
  const char *end = NULL;
  /* libsodium refuses non-zero padding bits, so each token has one spelling. */
  int rc = sodium_base642bin(raw, sizeof raw, token, n, NULL, &raw_len, &end, VARIANT);
  if (rc != 0 || raw_len != sizeof raw || end != token + n) {
    sodium_memzero(raw, sizeof raw);
    return -1;
  }
  hash_raw(raw, hash);
  sodium_memzero(raw, sizeof raw);
  return 0;
}
