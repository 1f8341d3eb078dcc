/* SPDX-License-Identifier: MIT */
/* A growable string buffer with printf and JSON-string appenders: the one
 * place libbackend writes JSON text (docs/ARCHITECTURE.md). Once an append
 * fails, the buffer is marked failed and further appends are no-ops, so
 * callers check once. The type and functions keep the short prefix be__buf. */
#ifndef BE_LIB_STRBUF_H
#define BE_LIB_STRBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct be__buf {
  char *data;
  size_t len;
  size_t cap;
  int failed; /* an allocation failed; contents are incomplete */
} be__buf;

void be__buf_init(be__buf *b);
void be__buf_free(be__buf *b);
void be__buf_append(be__buf *b, const char *s, size_t n);
void be__buf_puts(be__buf *b, const char *s);
void be__buf_printf(be__buf *b, const char *fmt, ...)
  __attribute__((format(printf, 2, 3)));
/* Append s (n bytes) as a quoted JSON string: escapes quotes, backslashes
 * and control characters; invalid UTF-8 becomes U+FFFD. */
void be__buf_json_string(be__buf *b, const char *s, size_t n);
/* Hand the NUL-terminated contents to the caller (be_free); returns
 * BE_OK or BE_E_NOMEM (then the buffer is released). */
int be__buf_detach(be__buf *b, char **out, size_t *out_len);

#endif
