/* SPDX-License-Identifier: MIT */
/*
 * The checks of user_json.h: one pass over the text, a small state
 * machine that knows whether it is inside a string, reads each \uXXXX
 * escape, and counts the depth of objects and arrays outside strings.
 * Text that is not JSON is not judged here (the database refuses it);
 * the pass only has to find what it looks for in text that is.
 */
#include <backend/user.h>

#include <stdint.h>

#include "error.h"
#include "user_json.h"

typedef struct scan {
  const unsigned char *s;
  size_t len, i;
  size_t depth;
  int in_string;
  int high; /* a high surrogate escape came last: a low one must follow */
} scan;

/* The value of the 4 hex digits at s (n bytes available), or -1. */
static long hex4(const unsigned char *s, size_t n) {
  if (n < 4) return -1;
  long v = 0;
  for (int k = 0; k < 4; k++) {
    int c = s[k], d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return -1;
    v = v * 16 + d;
  }
  return v;
}

static int lone_surrogate(const char *field, be_error **err) {
  return be__error_field(err, field,
                         "holds a lone surrogate escape (\\uD800..\\uDFFF not in a high-low pair)");
}

/* One byte (or escape) inside a string at sc->i. */
static int in_string(scan *sc, const char *field, be_error **err) {
  unsigned char c = sc->s[sc->i];
  long cp = c == '\\' && sc->i + 1 < sc->len && sc->s[sc->i + 1] == 'u'
              ? hex4(sc->s + sc->i + 2, sc->len - sc->i - 2)
              : -1;
  if (cp < 0) { /* a character, or an escape other than \uXXXX */
    if (sc->high) return lone_surrogate(field, err);
    if (c == '"') sc->in_string = 0;
    sc->i += c == '\\' ? 2 : 1;
    return BE_OK;
  }
  sc->i += 6;
  int is_low = cp >= 0xDC00 && cp <= 0xDFFF;
  if (sc->high != is_low) return lone_surrogate(field, err);
  sc->high = cp >= 0xD800 && cp <= 0xDBFF;
  if (cp == 0) return be__error_field(err, field, "holds a \\u0000 escape");
  return BE_OK;
}

int be__user_json_check(const char *json, size_t len, const char *field, be_error **err) {
  scan sc = {(const unsigned char *)json, len, 0, 0, 0, 0};
  while (sc.i < sc.len) {
    if (sc.in_string) {
      int rc = in_string(&sc, field, err);
      if (rc != BE_OK) return rc;
      continue;
    }
    unsigned char c = sc.s[sc.i++];
    if (c == '"') sc.in_string = 1;
    else if ((c == '{' || c == '[') && ++sc.depth > BE_USER_EXTRA_DEPTH_MAX)
      return be__error_field(err, field, "nests objects and arrays deeper than %d levels",
                             BE_USER_EXTRA_DEPTH_MAX);
    else if ((c == '}' || c == ']') && sc.depth > 0) sc.depth--;
  }
  return sc.high ? lone_surrogate(field, err) : BE_OK;
}
