/* SPDX-License-Identifier: MIT */
/* The UTF-8 validator (lib/utf8.c: ASCII eight bytes at a time, then a
 * sequence at a time) against a plain byte-by-byte decoder, on exhaustive
 * short inputs, adversarial sequences at every offset of ASCII runs, every
 * prefix of valid text, and random bytes. Each input is checked from a
 * heap block of exactly its length, so a read past the end shows under
 * ASan or valgrind. */
#include "testutil.h"

#include "utf8.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The reference: decode each sequence by the definition and refuse what
 * it is not (overlong, surrogate, above U+10FFFF, cut short, NUL). */
static int ref_valid(const unsigned char *p, size_t n) {
  static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
  size_t i = 0;
  while (i < n) {
    unsigned c = p[i];
    uint32_t cp;
    size_t k;
    if (c < 0x80) cp = c, k = 1;
    else if (c >= 0xC0 && c < 0xE0) cp = c & 0x1F, k = 2;
    else if (c >= 0xE0 && c < 0xF0) cp = c & 0x0F, k = 3;
    else if (c >= 0xF0 && c < 0xF8) cp = c & 0x07, k = 4;
    else return 0;
    if (n - i < k) return 0;
    for (size_t j = 1; j < k; j++) {
      if ((p[i + j] & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (p[i + j] & 0x3F);
    }
    if (cp == 0 || cp < min[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    i += k;
  }
  return 1;
}

static long checked;

/* The validator and the reference agree on p[0..n), read from a block of
 * exactly n bytes. */
static void agree(const unsigned char *p, size_t n) {
  unsigned char *copy = malloc(n ? n : 1);
  ck_assert_ptr_nonnull(copy);
  if (n) memcpy(copy, p, n);
  int want = ref_valid(copy, n), got = be__utf8_valid((const char *)copy, n);
  if (got != want) {
    char hex[3 * 64 + 1] = "";
    for (size_t i = 0; i < n && i < 64; i++) snprintf(hex + 3 * i, 4, "%02x ", copy[i]);
    ck_abort_msg("length %zu [%s]: validator %d, reference %d", n, hex, got, want);
  }
  free(copy);
  checked++;
}

static size_t encode(uint32_t cp, unsigned char *out) {
  if (cp < 0x80) return out[0] = (unsigned char)cp, 1;
  if (cp < 0x800) {
    out[0] = (unsigned char)(0xC0 | (cp >> 6));
    out[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (unsigned char)(0xE0 | (cp >> 12));
    out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (unsigned char)(0xF0 | (cp >> 18)); /* also past U+10FFFF, to be refused */
  out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

static uint64_t rng = 0x9E3779B97F4A7C15u;
static uint32_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 16);
}

START_TEST(utf8_short_inputs_exhaustive) {
  unsigned char b[4] = {0};
  agree(b, 0);
  for (unsigned x = 0; x < 256; x++) {
    b[0] = (unsigned char)x;
    agree(b, 1);
    for (unsigned y = 0; y < 256; y++) {
      b[1] = (unsigned char)y;
      agree(b, 2);
    }
  }
  /* three bytes from every lead that is not ASCII; four from every lead
   * F0..FF with each edge of the continuation range in the last two */
  static const unsigned char edge[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF};
  for (unsigned x = 0x80; x < 256; x++)
    for (unsigned y = 0; y < 256; y++)
      for (size_t z = 0; z < sizeof edge; z++) {
        b[0] = (unsigned char)x, b[1] = (unsigned char)y, b[2] = edge[z];
        agree(b, 3);
        for (size_t w = 0; x >= 0xF0 && w < sizeof edge; w++) {
          b[3] = edge[w];
          agree(b, 4);
        }
      }
}
END_TEST

/* Sequences worth placing everywhere: valid edges, overlong forms,
 * surrogates, code points past U+10FFFF, stray and missing continuations. */
static size_t adversarial(int which, unsigned char *out) {
  static const uint32_t cps[] = {0x7F, 0x80, 0x7FF, 0x800, 0xD7FF, 0xD800,
                                 0xDFFF, 0xE000, 0xFFFF, 0x10000, 0x10FFFF, 0x110000,
                                 0x1FFFFF};
  static const char *raw[] = {"\x00", "\x80", "\xBF", "\xC0\x80", "\xC1\xBF", "\xE0\x80\x80",
                              "\xE0\x9F\xBF", "\xF0\x80\x80\x80", "\xF0\x8F\xBF\xBF", "\xF4\x90\x80\x80",
                              "\xF5\x80\x80\x80", "\xF8\x88\x80\x80\x80", "\xFE", "\xFF", "\xC2",
                              "\xE2\x82", "\xF0\x9F\x98", "\xED\xA0\x80", "\xED\x9F\xBF"};
  size_t ncps = sizeof cps / sizeof cps[0];
  if ((size_t)which < ncps) return encode(cps[which], out);
  which -= (int)ncps;
  if ((size_t)which >= sizeof raw / sizeof raw[0]) return 0;
  size_t n = raw[which][0] ? strlen(raw[which]) : 1; /* "\x00": the NUL byte */
  memcpy(out, raw[which], n);
  return n;
}

START_TEST(utf8_bad_byte_at_every_offset_of_ascii_runs) {
  unsigned char buf[128], seq[8];
  for (int which = 0;; which++) {
    size_t n = adversarial(which, seq);
    if (n == 0) break;
    for (size_t before = 0; before <= 40; before++)
      for (size_t after = 0; after <= 17; after++) {
        memset(buf, 'a', before);
        memcpy(buf + before, seq, n);
        memset(buf + before + n, 'z', after);
        agree(buf, before + n + after);
      }
  }
  /* a run of ASCII with one other byte (every value) at each offset */
  for (size_t len = 1; len <= 70; len++)
    for (size_t at = 0; at < len; at++)
      for (unsigned v = 0; v < 256; v += (v < 0x7E ? 0x3F : 1)) {
        memset(buf, 'x', len);
        buf[at] = (unsigned char)v;
        agree(buf, len);
      }
}
END_TEST

START_TEST(utf8_every_prefix_of_valid_text) {
  unsigned char buf[256];
  for (int round = 0; round < 300; round++) {
    size_t n = 0;
    while (n + 4 <= sizeof buf) {
      uint32_t r = next_rand(), cp;
      switch (r % 5) {
        case 0: cp = 1 + next_rand() % 0x7F; break;
        case 1: cp = 0x80 + next_rand() % (0x800 - 0x80); break;
        case 2: cp = 0x800 + next_rand() % (0x10000 - 0x800); break;
        case 3: cp = 0x10000 + next_rand() % (0x110000 - 0x10000); break;
        default: cp = 'a' + next_rand() % 26; break;
      }
      if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xE000;
      n += encode(cp, buf + n);
      if (next_rand() % 16 == 0) break;
    }
    ck_assert(be__utf8_valid((const char *)buf, n));
    for (size_t cut = 0; cut <= n; cut++) {
      agree(buf, cut);           /* a prefix: cut short inside a sequence or not */
      agree(buf + cut, n - cut); /* a suffix: may start on a continuation */
    }
  }
}
END_TEST

START_TEST(utf8_random_bytes) {
  unsigned char buf[80];
  for (int round = 0; round < 200000; round++) {
    size_t n = next_rand() % sizeof buf;
    uint32_t mode = next_rand() % 4;
    for (size_t i = 0; i < n; i++) {
      uint32_t r = next_rand();
      /* mostly ASCII, continuations or leads, so valid text turns up too */
      if (mode == 0) buf[i] = (unsigned char)r;
      else if (mode == 1) buf[i] = (unsigned char)(r % 3 ? 0x20 + r % 0x5F : 0x80 + r % 0x80);
      else if (mode == 2) buf[i] = (unsigned char)(r % 2 ? 0x80 + r % 0x40 : 0xC0 + r % 0x40);
      else buf[i] = (unsigned char)(r % 64 ? 'a' + r % 26 : r % 256);
    }
    agree(buf, n);
  }
  ck_assert_int_ge(checked, 200000);
}
END_TEST

Suite *utf8_suite(void) {
  Suite *s = suite_create("utf8");
  TCase *tc = tcase_create("utf8");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, utf8_short_inputs_exhaustive);
  tcase_add_test(tc, utf8_bad_byte_at_every_offset_of_ascii_runs);
  tcase_add_test(tc, utf8_every_prefix_of_valid_text);
  tcase_add_test(tc, utf8_random_bytes);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(utf8_suite)
