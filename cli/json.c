/* SPDX-License-Identifier: MIT */
/* backend-cli: the two JSON writing helpers every command's --json output
 * uses (string literals with escaping, object keys), and making text that
 * may hold bytes that are not UTF-8 (paths, arguments, names read from a
 * database) valid UTF-8, each bad byte written as U+FFFD. */
#include "cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

size_t cli_utf8_seq(const unsigned char *s, size_t n) {
  if (n == 0) return 0;
  if (s[0] < 0x80) return 1;
  size_t len = s[0] >= 0xC2 && s[0] <= 0xDF ? 2 : s[0] >= 0xE0 && s[0] <= 0xEF ? 3
                                                : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4
                                                                               : 0;
  if (len == 0 || len > n) return 0;
  for (size_t i = 1; i < len; i++)
    if ((s[i] & 0xC0) != 0x80) return 0;
  /* no overlong forms, no surrogates, nothing past U+10FFFF */
  if (s[0] == 0xE0 && s[1] < 0xA0) return 0;
  if (s[0] == 0xED && s[1] > 0x9F) return 0;
  if (s[0] == 0xF0 && s[1] < 0x90) return 0;
  if (s[0] == 0xF4 && s[1] > 0x8F) return 0;
  return len;
}

char *cli_utf8_clean(const char *s) {
  size_t n = strlen(s);
  char *out = malloc(n * 3 + 1); /* each bad byte grows to 3 */
  if (out == NULL) return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    size_t k = cli_utf8_seq((const unsigned char *)s + i, n - i);
    if (k == 0) {
      memcpy(out + o, "\xEF\xBF\xBD", 3);
      o += 3;
      i++;
    } else {
      memcpy(out + o, s + i, k);
      o += k;
      i += k;
    }
  }
  out[o] = '\0';
  return out;
}

char *cli_vformat(const char *fmt, va_list ap) {
  va_list copy;
  va_copy(copy, ap);
  int n = vsnprintf(NULL, 0, fmt, copy);
  va_end(copy);
  char *s = n < 0 ? NULL : malloc((size_t)n + 1);
  if (s) vsnprintf(s, (size_t)n + 1, fmt, ap);
  return s;
}

char *cli_vformat_utf8(const char *fmt, va_list ap) {
  char *raw = cli_vformat(fmt, ap);
  if (raw == NULL) return NULL;
  char *clean = cli_utf8_clean(raw);
  free(raw);
  return clean;
}

char *cli_format_utf8(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = cli_vformat_utf8(fmt, ap);
  va_end(ap);
  return s;
}

void cli_json_str(FILE *f, const char *s) {
  if (s == NULL) {
    fputs("null", f);
    return;
  }
  fputc('"', f);
  size_t n = strlen(s);
  for (const unsigned char *p = (const unsigned char *)s, *end = p + n; p < end; p++) {
    switch (*p) {
      case '"': fputs("\\\"", f); break;
      case '\\': fputs("\\\\", f); break;
      case '\n': fputs("\\n", f); break;
      case '\r': fputs("\\r", f); break;
      case '\t': fputs("\\t", f); break;
      default:
        if (*p < 0x20) {
          fprintf(f, "\\u%04x", *p);
        } else if (*p >= 0x80) { /* a whole UTF-8 character, or U+FFFD for a bad byte */
          size_t k = cli_utf8_seq(p, (size_t)(end - p));
          if (k == 0) fputs("\\ufffd", f);
          else fwrite(p, 1, k, f);
          if (k > 1) p += k - 1;
        } else {
          fputc(*p, f);
        }
    }
  }
  fputc('"', f);
}

void cli_json_key(FILE *f, int first, const char *key) {
  if (!first) fputc(',', f);
  cli_json_str(f, key);
  fputc(':', f);
}
