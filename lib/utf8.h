/* SPDX-License-Identifier: MIT */
#ifndef BE_LIB_UTF8_H
#define BE_LIB_UTF8_H

#include <backend/common.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A pointer+length text argument made concrete: BE_NUL_TERMINATED becomes
 * strlen(s) (s must not be NULL then), length 0 the empty string "" so the
 * caller's pointer is never read. Returns the pointer to use. */
static inline const char *be__text_arg(const char *s, size_t *len) {
  if (*len == BE_NUL_TERMINATED) *len = strlen(s);
  return *len == 0 ? "" : s;
}

/* Decode one UTF-8 sequence at s (len bytes available). Returns the number
 * of bytes it takes (1..4) and the code point in *cp, or 0 for an invalid,
 * overlong, surrogate or truncated sequence. */
size_t be__utf8_decode(const unsigned char *s, size_t len, uint32_t *cp);

/* 1 when s[0..len) is valid UTF-8 with no NUL byte. */
int be__utf8_valid(const char *s, size_t len);

/* The longest prefix of s[0..len) not over max bytes that does not end
 * inside a multi-byte sequence. */
size_t be__utf8_cut(const char *s, size_t len, size_t max);

/* Length of s[0..len) without a multi-byte sequence cut short at its end. */
size_t be__utf8_trim_partial(const char *s, size_t len);

/* s made valid UTF-8 for a message into out (cap bytes, NUL-terminated,
 * cut at a character): each byte that does not start a valid sequence
 * becomes U+FFFD, as the CLI writes it too. */
void be__utf8_scrub(char *out, size_t cap, const char *s);

#endif
