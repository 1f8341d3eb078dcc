/* SPDX-License-Identifier: MIT */
/* The growable string buffer (strbuf.h). */
#include <backend/error.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "strbuf.h"
#include "utf8.h"

void be__buf_init(be__buf *b) { memset(b, 0, sizeof *b); }

void be__buf_free(be__buf *b) {
  be__free(b->data);
  be__buf_init(b);
}

/* Make room for n more bytes plus a NUL; returns 0 on failure. */
static int reserve(be__buf *b, size_t n) {
  if (b->failed) return 0;
  if (n > SIZE_MAX - b->len - 1) {
    b->failed = 1;
    return 0;
  }
  size_t need = b->len + n + 1;
  if (need <= b->cap) return 1;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  char *p = be__realloc(b->data, cap);
  if (p == NULL) {
    b->failed = 1;
    return 0;
  }
  b->data = p;
  b->cap = cap;
  return 1;
}

void be__buf_append(be__buf *b, const char *s, size_t n) {
  if (!reserve(b, n)) return;
  if (n) memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void be__buf_puts(be__buf *b, const char *s) { be__buf_append(b, s, strlen(s)); }

void be__buf_printf(be__buf *b, const char *fmt, ...) {
  char small[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->failed = 1;
    return;
  }
  if ((size_t)n < sizeof small) {
    be__buf_append(b, small, (size_t)n);
    return;
  }
  if (!reserve(b, (size_t)n)) return;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void be__buf_json_string(be__buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s;
  be__buf_append(b, "\"", 1);
  size_t i = 0;
  while (i < n) {
    size_t run = i; /* copy plain ASCII runs in one go */
    while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
      run++;
    if (run > i) {
      be__buf_append(b, s + i, run - i);
      i = run;
      continue;
    }
    unsigned char c = p[i];
    if (c == '"') {
      be__buf_append(b, "\\\"", 2);
      i++;
      continue;
    }
    if (c == '\\') {
      be__buf_append(b, "\\\\", 2);
      i++;
      continue;
    }
    if (c < 0x20) {
      char esc[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
      switch (c) {
        case '\n': be__buf_append(b, "\\n", 2); break;
        case '\r': be__buf_append(b, "\\r", 2); break;
        case '\t': be__buf_append(b, "\\t", 2); break;
        default: be__buf_append(b, esc, 6); break;
      }
      i++;
      continue;
    }
    uint32_t cp;
    size_t len = be__utf8_decode(p + i, n - i, &cp);
    if (len == 0) {
      be__buf_append(b, "\xEF\xBF\xBD", 3);
      i++;
      continue;
    }
    be__buf_append(b, s + i, len);
    i += len;
  }
  be__buf_append(b, "\"", 1);
}

int be__buf_detach(be__buf *b, char **out, size_t *out_len) {
  if (!reserve(b, 0)) {
    be__buf_free(b);
    return BE_E_NOMEM;
  }
  *out = b->data;
  if (out_len) *out_len = b->len;
  be__buf_init(b);
  return BE_OK;
}
