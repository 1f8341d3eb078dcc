/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "sqlnorm.h"

typedef struct out {
  char *p;
  size_t cap, len;
  int cut;
  uint64_t h;
  char last;   /* last emitted byte, 0 at the start */
  int ph_list; /* "(" then only placeholders and commas so far */
  int comma;   /* a comma waits to be written */
  int space;   /* whitespace waits to be written */
} out;

static void emit(out *o, char c) {
  o->h = (o->h ^ (unsigned char)c) * 0x100000001b3u;
  o->last = c;
  if (o->len + 1 < o->cap) o->p[o->len++] = c;
  else o->cut = 1;
}

static int is_word(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c >= 0x80;
}

/* Write pending separators before a token starting with byte c. */
static void flush(out *o, char c, int placeholder) {
  if (o->comma) {
    o->comma = 0;
    o->space = 0;
    if (placeholder && o->ph_list) return; /* ", ?" inside a placeholder list: drop */
    emit(o, ',');
    emit(o, ' ');
    o->ph_list = 0;
  }
  if (o->space) {
    o->space = 0;
    if (o->last && o->last != '(' && o->last != ' ' && c != ')' && c != ',') emit(o, ' ');
  }
}

static void token_placeholder(out *o) {
  int in_list = o->comma && o->ph_list;
  flush(o, '?', 1);
  if (in_list) return;
  int after_paren = o->last == '(';
  emit(o, '?');
  o->ph_list = after_paren;
}

uint64_t be__sql_normalize(const char *sql, char *buf, size_t cap) {
  out o = {buf, cap, 0, 0, 0xcbf29ce484222325u, 0, 0, 0, 0};
  const unsigned char *s = (const unsigned char *)(sql ? sql : "");
  while (*s) {
    unsigned char c = *s;
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      o.space = 1;
      s++;
    } else if (c == '-' && s[1] == '-') {
      while (*s && *s != '\n') s++;
      o.space = 1;
    } else if (c == '/' && s[1] == '*') {
      s += 2;
      while (*s && !(s[0] == '*' && s[1] == '/')) s++;
      if (*s) s += 2;
      o.space = 1;
    } else if (c == '\'' || ((c == 'x' || c == 'X') && s[1] == '\'' && !is_word(o.last))) {
      s += c == '\'' ? 1 : 2; /* string or blob literal; '' is an escaped quote */
      for (; *s; s++)
        if (*s == '\'') {
          if (s[1] == '\'') s++;
          else {
            s++;
            break;
          }
        }
      token_placeholder(&o);
    } else if ((c >= '0' && c <= '9') || (c == '.' && s[1] >= '0' && s[1] <= '9')) {
      if (is_word(o.last) && !o.space) { /* part of a name such as t1 */
        flush(&o, (char)c, 0);
        emit(&o, (char)*s++);
        continue;
      }
      while (is_word(*s) || *s == '.' ||
             ((*s == '+' || *s == '-') && (s[-1] == 'e' || s[-1] == 'E')))
        s++;
      token_placeholder(&o);
    } else if (c == '?' || ((c == '$' || c == ':' || c == '@') && is_word(s[1]) && o.last != ':')) {
      s++;
      while (is_word(*s)) s++;
      token_placeholder(&o);
    } else if (c == '"' || c == '`' || c == '[') {
      char close = c == '[' ? ']' : (char)c;
      flush(&o, (char)c, 0);
      emit(&o, (char)*s++);
      while (*s && *s != (unsigned char)close) emit(&o, (char)*s++);
      if (*s) emit(&o, (char)*s++);
      o.ph_list = 0;
    } else if (c == ',') {
      if (o.comma) flush(&o, ',', 0);
      o.comma = 1;
      o.space = 0;
      s++;
    } else {
      flush(&o, (char)c, 0);
      emit(&o, (char)c);
      if (c != ')') o.ph_list = 0;
      s++;
    }
  }
  o.space = 0;
  flush(&o, 0, 0);
  if (cap > 0) {
    if (o.cut && cap >= 4) {
      size_t n = o.len;
      while (n > 0 && ((unsigned char)buf[n - 1] & 0xC0) == 0x80) n--; /* keep UTF-8 whole */
      if (n > 0 && (unsigned char)buf[n - 1] >= 0xC0) n--;
      if (n > cap - 4) n = cap - 4;
      memcpy(buf + n, "...", 3);
      o.len = n + 3;
    }
    buf[o.len < cap ? o.len : cap - 1] = '\0';
  }
  return o.h;
}
