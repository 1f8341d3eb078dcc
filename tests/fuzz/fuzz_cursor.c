/* SPDX-License-Identifier: MIT */
/* Arbitrary cursors and limits for the user list (be_user_list_page) and
 * the audit query (be_audit_query, with arbitrary filters). Checked: a
 * call succeeds or fails with BE_E_VALIDATION naming "cursor", "limit",
 * "user_id", "match_user" or "to_ms"; a page holds at most `limit` rows;
 * and the rows reached by following next cursors from the fuzzed one are
 * exactly a tail of the rows a walk from the first page gives (same
 * filter): a cursor never makes a page skip, repeat or invent a row, and
 * the walk ends. */
#include "fuzz_support.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define USERS 24
#define MAX_ROWS 4096

typedef struct walk {
  int64_t ids[MAX_ROWS];
  size_t n;
} walk;

static int field_named(be_error *err, const char *a, const char *b, const char *c) {
  const char *f = be_error_field_count(err) ? be_error_field_name(err, 0) : "";
  return strcmp(f, a) == 0 || strcmp(f, b) == 0 || strcmp(f, c) == 0;
}

/* Walk user pages from cursor; returns the first call's code. */
static int user_walk(walk *w, be_app *app, const char *cursor, size_t len, int32_t limit) {
  w->n = 0;
  char *cur = NULL;
  int first = 1, rc0 = BE_OK;
  for (;;) {
    be_user_list *page = NULL;
    be_error *err = NULL;
    int rc = be_user_list_page(&page, app, first ? cursor : cur, first ? len : BE_NUL_TERMINATED,
                               limit, &err);
    if (first) rc0 = rc;
    if (rc != BE_OK) {
      FZ_CHECK(rc == BE_E_VALIDATION && field_named(err, "cursor", "limit", "-"),
               "be_user_list_page: %d %s", rc, be_error_message(err));
      FZ_CHECK(first, "a next cursor was refused: %s", be_error_message(err));
      FZ_CHECK(limit < 0 || limit > BE_USER_PAGE_MAX || cursor != NULL, "first page refused");
      be_error_free(err);
      break;
    }
    size_t count = be_user_list_count(page);
    FZ_CHECK(count <= (size_t)(limit ? limit : 20), "page of %zu rows, limit %d", count, limit);
    for (size_t i = 0; i < count; i++) {
      FZ_CHECK(w->n < MAX_ROWS, "walk does not end");
      w->ids[w->n++] = be_user_id(be_user_list_get(page, i));
    }
    const char *next = be_user_list_next_cursor(page);
    free(cur);
    cur = next ? strdup(next) : NULL;
    be_user_list_free(page);
    first = 0;
    if (cur == NULL) break;
    FZ_CHECK(count > 0, "an empty page with a next cursor");
  }
  free(cur);
  return rc0;
}

static int audit_walk(walk *w, be_app *app, be_audit_query_options o) {
  w->n = 0;
  char *cur = NULL;
  int first = 1, rc0 = BE_OK;
  for (;;) {
    be_audit_page *page = NULL;
    be_error *err = NULL;
    if (!first) o.cursor = cur, o.cursor_len = BE_NUL_TERMINATED;
    int rc = be_audit_query(&page, app, &o, &err);
    if (first) rc0 = rc;
    if (rc != BE_OK) {
      FZ_CHECK(rc == BE_E_VALIDATION && (field_named(err, "cursor", "limit", "user_id") ||
                                         field_named(err, "match_user", "to_ms", "from_ms")),
               "be_audit_query: %d %s", rc, be_error_message(err));
      FZ_CHECK(first, "a next cursor was refused: %s", be_error_message(err));
      be_error_free(err);
      break;
    }
    size_t count = be_audit_page_count(page);
    FZ_CHECK(count <= (size_t)(o.limit ? o.limit : 50), "page of %zu rows", count);
    for (size_t i = 0; i < count; i++) {
      FZ_CHECK(w->n < MAX_ROWS, "walk does not end");
      w->ids[w->n++] = be_audit_page_id(page, i);
    }
    const char *next = be_audit_page_next_cursor(page);
    free(cur);
    cur = next ? strdup(next) : NULL;
    be_audit_page_free(page);
    first = 0;
    if (cur == NULL) break;
    FZ_CHECK(count > 0, "an empty page with a next cursor");
  }
  free(cur);
  return rc0;
}

/* part must be a tail of whole. */
static void check_tail(const walk *part, const walk *whole, const char *what) {
  FZ_CHECK(part->n <= whole->n, "%s: %zu rows from the cursor, %zu in all", what, part->n,
           whole->n);
  size_t off = whole->n - part->n;
  for (size_t i = 0; i < part->n; i++)
    FZ_CHECK(part->ids[i] == whole->ids[off + i], "%s: row %zu is id %lld, expected %lld", what,
             i, (long long)part->ids[i], (long long)whole->ids[off + i]);
}

static walk w_part, w_whole;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  be_app *app = be_testkit_app(fz_kit(USERS, 0));
  fz_in in = {data, size};
  uint8_t what = fz_u8(&in);
  int32_t limit = (int32_t)fz_u32(&in);
  if (what & 1) limit = limit % 8;
  const char *cursor;
  size_t len = fz_bytes(&in, &cursor, 255);
  int nul = what & 2;
  char buf[256];
  if (nul) memcpy(buf, cursor, len), buf[len] = '\0', cursor = buf;
  if (what & 128) { /* a well-formed cursor (tag, big-endian int64) with fuzzed contents */
    unsigned char bin[9] = {fz_u8(&in)};
    uint64_t v = (uint64_t)fz_i64(&in);
    for (int i = 0; i < 8; i++) bin[1 + i] = (unsigned char)(v >> (56 - 8 * i));
    sodium_bin2base64(buf, sizeof buf, bin, sizeof bin, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    cursor = buf;
    len = strlen(buf);
  }
  if (what & 4) {
    if (user_walk(&w_part, app, cursor, nul ? BE_NUL_TERMINATED : len, limit) == BE_OK) {
      FZ_CHECK(user_walk(&w_whole, app, NULL, 0, limit) == BE_OK, "first page failed");
      check_tail(&w_part, &w_whole, "users");
    }
    return 0;
  }
  be_audit_query_options o = BE_AUDIT_QUERY_OPTIONS_INIT;
  o.limit = limit;
  o.match_user = (what & 8) ? (int32_t)(fz_u8(&in) % 3) : 0;
  o.user_id = (what & 16) ? fz_i64(&in) : fz_u8(&in) % (USERS + 2);
  o.from_ms = (what & 32) ? fz_i64(&in) : 0;
  o.to_ms = (what & 64) ? fz_i64(&in) : 0;
  o.cursor = cursor;
  o.cursor_len = nul ? BE_NUL_TERMINATED : len;
  if (audit_walk(&w_part, app, o) == BE_OK) {
    o.cursor = NULL;
    FZ_CHECK(audit_walk(&w_whole, app, o) == BE_OK, "first page failed");
    check_tail(&w_part, &w_whole, "audit");
  }
  return 0;
}
