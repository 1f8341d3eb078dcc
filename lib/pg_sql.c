/* SPDX-License-Identifier: MIT */
/* PostgreSQL's lexical structure, as much as the driver needs. */
#include "pg_sql.h"

#include <string.h>

#include "alloc.h"
#include "error.h"
#include "strbuf.h"

static int ident_char(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         ch == '_' || (unsigned char)ch >= 0x80;
}

static int ident_start(char ch) { return ident_char(ch) && !(ch >= '0' && ch <= '9'); }

/* A '...' string from the quote at i; backslash escapes when e. */
static size_t skip_string(const char *s, size_t len, size_t i, int e) {
  for (i++; i < len; i++) {
    if (e && s[i] == '\\') i++;
    else if (s[i] == '\'') {
      if (i + 1 < len && s[i + 1] == '\'') i++;
      else return i + 1;
    }
  }
  return len;
}

static size_t skip_quoted_ident(const char *s, size_t len, size_t i) {
  for (i++; i < len; i++) {
    if (s[i] != '"') continue;
    if (i + 1 < len && s[i + 1] == '"') i++;
    else return i + 1;
  }
  return len;
}

static size_t skip_block_comment(const char *s, size_t len, size_t i) {
  int depth = 0;
  while (i + 1 < len) {
    if (s[i] == '/' && s[i + 1] == '*') {
      depth++;
      i += 2;
    } else if (s[i] == '*' && s[i + 1] == '/') {
      i += 2;
      if (--depth == 0) return i;
    } else {
      i++;
    }
  }
  return len;
}

/* $tag$ ... $tag$ from the '$' at i; i when no dollar quote starts. */
static size_t skip_dollar(const char *s, size_t len, size_t i) {
  if (i > 0 && ident_char(s[i - 1])) return i;
  size_t t = i + 1;
  if (t < len && s[t] != '$' && !ident_start(s[t])) return i;
  while (t < len && s[t] != '$' && ident_char(s[t])) t++;
  if (t >= len || s[t] != '$') return i;
  size_t tag = t + 1 - i; /* "$tag$" */
  for (size_t j = t + 1; j + tag <= len; j++)
    if (s[j] == '$' && memcmp(s + j, s + i, tag) == 0) return j + tag;
  return len;
}

size_t be__pg_skip(const char *s, size_t len, size_t i) {
  char ch = s[i];
  char next = i + 1 < len ? s[i + 1] : '\0';
  switch (ch) {
    case '\'': return skip_string(s, len, i, 0);
    case 'E':
    case 'e':
      if (next == '\'' && (i == 0 || !ident_char(s[i - 1]))) return skip_string(s, len, i + 1, 1);
      return i;
    case '"': return skip_quoted_ident(s, len, i);
    case '-':
      if (next != '-') return i;
      while (i < len && s[i] != '\n') i++;
      return i;
    case '/': return next == '*' ? skip_block_comment(s, len, i) : i;
    case '$': return skip_dollar(s, len, i);
    default: return i;
  }
}

/* The digits at s[i..]: *value (capped) and the index after them. */
static size_t read_number(const char *s, size_t len, size_t i, long *value) {
  long v = 0;
  for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
    if (v < 1000000) v = v * 10 + (s[i] - '0');
  *value = v;
  return i;
}

static int bad_index(be_error **err, long v) {
  return be__error_set(err, BE_E_MISUSE, "placeholder index %ld is out of range (1 to 65535)", v);
}

int be__pg_translate(char **out, int32_t *out_params, uint8_t *used, const char *s, size_t len,
                     be_error **err) {
  *out = NULL;
  *out_params = 0;
  be__buf b;
  be__buf_init(&b);
  long max = 0;
  size_t i = 0, copied = 0;
  while (i < len) {
    size_t end = be__pg_skip(s, len, i);
    if (end != i) {
      i = end;
      continue;
    }
    int q = s[i] == '?', d = s[i] == '$' && i + 1 < len && s[i + 1] >= '0' && s[i + 1] <= '9';
    if (!q && !d) {
      i++;
      continue;
    }
    long v = 0;
    size_t after = read_number(s, len, i + 1, &v);
    if (q && after == i + 1) v = max + 1;
    if (v < 1 || v > 65535) {
      be__buf_free(&b);
      return bad_index(err, v);
    }
    if (v > max) max = v;
    if (used) used[v / 8] |= (uint8_t)(1u << (v % 8));
    if (q) {
      be__buf_append(&b, s + copied, i - copied);
      be__buf_printf(&b, "$%ld", v);
      copied = after;
    }
    i = after;
  }
  be__buf_append(&b, s + copied, len - copied);
  if (be__buf_detach(&b, out, NULL) != BE_OK) return be__error_oom(err);
  *out_params = (int32_t)max;
  return BE_OK;
}

size_t be__pg_next_statement(const char *s, size_t len) {
  size_t i = 0;
  while (i < len) {
    size_t end = be__pg_skip(s, len, i);
    if (end != i) {
      i = end;
      continue;
    }
    if (s[i] == ';') return i + 1;
    i++;
  }
  return len;
}
