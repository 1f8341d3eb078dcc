/* SPDX-License-Identifier: MIT */
/*
 * The breached-password list loaded from a file: one entry a line, either
 * a SHA-1 in hex (HIBP's "HASH:COUNT" lines included) or a password as is.
 * Held as sorted, distinct 20-byte digests (20 bytes an entry, whatever
 * the file's size); looked up by binary search. Loading builds the new
 * list aside and swaps it in under the write lock, so checks never wait
 * for a load and a failed load leaves the old list.
 */
#include "auth_breached.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "sha1.h"
#include "svc_input.h"

typedef uint8_t digest[BE__SHA1_BYTES];

struct be__breached {
  digest *d;
  size_t n;
  size_t cap;
};

void be__breached_free(struct be__breached *list) {
  if (list == NULL) return;
  be__free(list->d);
  be__free(list);
}

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = be__svc_lower(c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A line that is 40 hex digits (either case), optionally followed by ':'
 * and decimal digits, into out: 1; anything else: 0. */
static int parse_hex(const char *s, size_t n, uint8_t out[BE__SHA1_BYTES]) {
  if (n < 2 * BE__SHA1_BYTES) return 0;
  for (size_t i = 2 * BE__SHA1_BYTES; i < n; i++)
    if (!(i == 2 * BE__SHA1_BYTES ? s[i] == ':' && n > i + 1 : s[i] >= '0' && s[i] <= '9'))
      return 0;
  for (size_t i = 0; i < BE__SHA1_BYTES; i++) {
    int hi = hexval((unsigned char)s[2 * i]), lo = hexval((unsigned char)s[2 * i + 1]);
    if (hi < 0 || lo < 0) return 0;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return 1;
}

/* One line's entry appended (empty lines are skipped). BE_OK, or a
 * validation error on "path" past max entries, or BE_E_NOMEM. */
static int add_line(struct be__breached *b, const char *s, size_t n, size_t max,
                    be_error **err) {
  if (n > 0 && s[n - 1] == '\r') n--;
  if (n == 0 || n > BE_AUTH_PASSWORD_MAX_BYTES) return BE_OK; /* never a password */
  if (b->n == max)
    return be__error_field(err, "path", "holds more than max_entries (%zu) entries", max);
  if (b->n == b->cap) {
    size_t cap = b->cap == 0 ? 1024 : (b->cap > max / 2 ? max : b->cap * 2);
    digest *d = be__realloc(b->d, cap * sizeof *d);
    if (d == NULL) return be__error_oom(err);
    b->d = d;
    b->cap = cap;
  }
  if (!parse_hex(s, n, b->d[b->n])) be__sha1(s, n, b->d[b->n]);
  b->n++;
  return BE_OK;
}

/* The end of a line read: its entry added unless it ran over the cap. */
static int end_line(struct be__breached *b, const char *line, size_t n, int over, int *first,
                    size_t max, be_error **err) {
  /* A UTF-8 byte order mark before the first entry is not part of it. */
  size_t skip = *first && n >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
  *first = 0;
  return over ? BE_OK : add_line(b, line + skip, n - skip, max, err);
}

/* Every line of f into b. A line longer than the password byte cap can
 * never be a password: it is skipped (it is not a SHA-1 line either).
 * The buffer holds the cap, a byte order mark, a '\r' and one byte more,
 * so add_line sees every line that may be kept whole and the rest run
 * over. */
static int read_lines(FILE *f, struct be__breached *b, size_t max, be_error **err) {
  char line[BE_AUTH_PASSWORD_MAX_BYTES + 5];
  size_t n = 0;
  int over = 0, first = 1, c, rc = BE_OK;
  while (rc == BE_OK && (c = getc(f)) != EOF) {
    if (c == '\n') {
      rc = end_line(b, line, n, over, &first, max, err);
      n = 0;
      over = 0;
    } else if (n < sizeof line) {
      line[n++] = (char)c;
    } else {
      over = 1;
    }
  }
  if (rc == BE_OK && ferror(f))
    return be__error_field(err, "path", "could not be read: %s", strerror(errno));
  if (rc == BE_OK && (n > 0 || over)) rc = end_line(b, line, n, over, &first, max, err);
  return rc;
}

static int cmp_digest(const void *a, const void *b) { return memcmp(a, b, BE__SHA1_BYTES); }

/* The list of the file at path: sorted, duplicates dropped. */
static int load(struct be__breached **out, const char *path, size_t max, be_error **err) {
  struct be__breached *b = be__calloc(1, sizeof *b);
  if (b == NULL) return be__error_oom(err);
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    int e = errno;
    be__free(b);
    return be__error_field(err, "path", "could not be opened: %s", strerror(e));
  }
  int rc = read_lines(f, b, max, err);
  fclose(f);
  if (rc != BE_OK) {
    be__breached_free(b);
    return rc;
  }
  if (b->n > 0) qsort(b->d, b->n, sizeof *b->d, cmp_digest);
  size_t k = 0;
  for (size_t i = 0; i < b->n; i++)
    if (k == 0 || memcmp(b->d[k - 1], b->d[i], BE__SHA1_BYTES) != 0)
      memmove(b->d[k++], b->d[i], BE__SHA1_BYTES);
  b->n = k;
  *out = b;
  return BE_OK;
}

int be_auth_load_breached_passwords(int64_t *out_count, be_app *app, const char *path,
                                    int64_t max_entries, be_error **err) {
  if (out_count) *out_count = 0;
  be__auth *a = NULL;
  int rc = be__auth_get(app, &a, err);
  if (rc != BE_OK) return rc;
  if (max_entries < 0 || (uint64_t)max_entries > SIZE_MAX / BE__SHA1_BYTES)
    return be__error_field(err, "max_entries", "must be 0 (the default) or a positive count");
  size_t max = max_entries == 0 ? BE_AUTH_BREACHED_MAX_DEFAULT : (size_t)max_entries;
  struct be__breached *list = NULL;
  if (path != NULL) rc = load(&list, path, max, err);
  if (rc != BE_OK) return rc;
  pthread_rwlock_wrlock(&a->breached_mu);
  struct be__breached *old = a->breached;
  a->breached = list;
  pthread_rwlock_unlock(&a->breached_mu);
  be__breached_free(old);
  if (out_count) *out_count = list ? (int64_t)list->n : 0;
  return BE_OK;
}

int be__breached_has(be__auth *auth, const char *pw, size_t len) {
  uint8_t d[2][BE__SHA1_BYTES];
  char lower[BE_AUTH_PASSWORD_MAX_BYTES];
  int folded = 0;
  be__sha1(pw, len, d[0]);
  for (size_t i = 0; i < len && i < sizeof lower; i++) {
    lower[i] = (char)be__svc_lower((unsigned char)pw[i]);
    folded |= lower[i] != pw[i];
  }
  if (folded && len <= sizeof lower) be__sha1(lower, len, d[1]);
  int found = 0;
  pthread_rwlock_rdlock(&auth->breached_mu);
  const struct be__breached *b = auth->breached;
  for (int k = 0; b != NULL && b->n > 0 && k <= folded && !found; k++)
    found = bsearch(d[k], b->d, b->n, sizeof *b->d, cmp_digest) != NULL;
  pthread_rwlock_unlock(&auth->breached_mu);
  sodium_memzero(lower, sizeof lower);
  sodium_memzero(d, sizeof d);
  return found;
}
