/* SPDX-License-Identifier: MIT */
#include "utf8.h"

size_t be__utf8_decode(const unsigned char *s, size_t len, uint32_t *cp) {
  if (len == 0) return 0;
  unsigned char c = s[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  size_t n;
  uint32_t v, min;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    v = c & 0x1F;
    min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    v = c & 0x0F;
    min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    v = c & 0x07;
    min = 0x10000;
  } else return 0;
  if (len < n) return 0;
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    v = (v << 6) | (s[i] & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return n;
}

/* Bytes of the well-formed sequence starting at p (avail >= 1 bytes), by
 * the Unicode standard's table 3-7: 1 for ASCII other than NUL, 2..4 for a
 * lead byte followed by its continuations within the ranges that exclude
 * overlong forms, surrogates and code points above U+10FFFF; 0 for NUL, a
 * stray or missing continuation byte, or a sequence cut short. */
static inline size_t seq_len(const unsigned char *p, size_t avail) {
  unsigned c = p[0];
  if (c - 1u < 0x7Fu) return 1;
  if (c < 0xC2u || c > 0xF4u) return 0;
  unsigned lo = 0x80u, hi = 0xBFu; /* the second byte's range */
  size_t n;
  if (c < 0xE0u) n = 2;
  else if (c < 0xF0u) {
    n = 3;
    if (c == 0xE0u) lo = 0xA0u;      /* overlong below U+0800 */
    else if (c == 0xEDu) hi = 0x9Fu; /* surrogates */
  } else {
    n = 4;
    if (c == 0xF0u) lo = 0x90u;      /* overlong below U+10000 */
    else if (c == 0xF4u) hi = 0x8Fu; /* above U+10FFFF */
  }
  if (avail < n || p[1] < lo || p[1] > hi) return 0;
  for (size_t k = 2; k < n; k++)
    if ((p[k] & 0xC0u) != 0x80u) return 0;
  return n;
}

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* 1 when the eight bytes at p are ASCII without NUL: no high bit, and (the
 * high bits being clear) no byte that borrows when one is subtracted. */
static inline int ascii8(const unsigned char *p) {
  uint64_t w;
  memcpy(&w, p, 8);
  return ((w | ((w - ONES) & ~w)) & HIGHS) == 0;
}

/* ASCII eight bytes at a time (the last eight may overlap bytes already
 * checked); a sequence at a time from the first word that is not. */
int be__utf8_valid(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < len) {
    size_t left = len - i;
    if (left >= 8) {
      if (ascii8(p + i)) {
        i += 8;
        continue;
      }
    } else if (len >= 8 && ascii8(p + len - 8)) return 1;
    size_t n = seq_len(p + i, left);
    if (n == 0) return 0;
    i += n;
  }
  return 1;
}

size_t be__utf8_cut(const char *s, size_t len, size_t max) {
  if (len <= max) return len;
  size_t cut = max;
  /* step back over continuation bytes to the start of a sequence */
  while (cut > 0 && (((unsigned char)s[cut]) & 0xC0) == 0x80) cut--;
  return cut;
}

size_t be__utf8_trim_partial(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  size_t lead = len;
  /* find the last lead byte within the final four bytes */
  while (lead > 0 && len - lead < 4 && (p[lead - 1] & 0xC0) == 0x80) lead--;
  if (lead == 0) return len;
  lead--;
  unsigned char c = p[lead];
  size_t want = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2
                             : (c & 0xF0) == 0xE0 ? 3
                             : (c & 0xF8) == 0xF0 ? 4
                                                  : 1;
  return len - lead < want ? lead : len;
}

void be__utf8_scrub(char *out, size_t cap, const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  size_t len = strlen(s), o = 0;
  for (size_t i = 0; i < len;) {
    size_t n = seq_len(p + i, len - i);
    const char *piece = n ? s + i : "\xef\xbf\xbd";
    size_t k = n ? n : 3;
    if (o + k >= cap) break;
    memcpy(out + o, piece, k);
    o += k;
    i += n ? n : 1;
  }
  if (cap > 0) out[o] = '\0';
}
