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

int be__utf8_valid(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < len) {
    uint32_t cp;
    size_t n = be__utf8_decode(p + i, len - i, &cp);
    if (n == 0 || cp == 0) return 0;
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
