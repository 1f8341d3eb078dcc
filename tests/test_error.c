/* SPDX-License-Identifier: MIT */
/* The typed error system: codes, categories, HTTP mapping, field errors,
 * cause chains, RFC 9457 JSON on nasty input, and the out-of-memory path. */
#include "testutil.h"

#include <unistd.h>

#include "error.h" /* the library-internal raw constructors */

static const struct {
  int32_t code;
  int32_t status;
  int32_t category;
  int32_t retryable;
} expected[] = {
  {BE_OK, 200, BE_CAT_NONE, 0},
  {BE_E_INTERNAL, 500, BE_CAT_INTERNAL, 0},
  {BE_E_NOMEM, 500, BE_CAT_INTERNAL, 0},
  {BE_E_MISUSE, 500, BE_CAT_INTERNAL, 0},
  {BE_E_VALIDATION, 400, BE_CAT_VALIDATION, 0},
  {BE_E_UNAUTHORIZED, 401, BE_CAT_UNAUTHENTICATED, 0},
  {BE_E_FORBIDDEN, 403, BE_CAT_PERMISSION_DENIED, 0},
  {BE_E_NOT_FOUND, 404, BE_CAT_NOT_FOUND, 0},
  {BE_E_CONFLICT, 409, BE_CAT_CONFLICT, 0},
  {BE_E_RATE_LIMITED, 429, BE_CAT_RATE_LIMITED, 1},
  {BE_E_UNAVAILABLE, 503, BE_CAT_UNAVAILABLE, 1},
  {BE_E_TIMEOUT, 504, BE_CAT_TIMEOUT, 1},
  {BE_E_STORAGE, 500, BE_CAT_INTERNAL, 0},
  {BE_E_POOL_EXHAUSTED, 503, BE_CAT_UNAVAILABLE, 1},
  {BE_E_POOL_CLOSED, 503, BE_CAT_UNAVAILABLE, 0},
  {BE_E_POOL_DEADLOCK, 500, BE_CAT_INTERNAL, 0},
  {BE_E_DB_UNREACHABLE, 503, BE_CAT_UNAVAILABLE, 1},
  {BE_E_BUSY, 503, BE_CAT_UNAVAILABLE, 1},
  {BE_E_CONN_LOST, 503, BE_CAT_UNAVAILABLE, 1},
  {BE_E_SERIALIZATION, 409, BE_CAT_CONFLICT, 1},
  {BE_E_UNSUPPORTED, 501, BE_CAT_UNSUPPORTED, 0},
};
#define NCODES (sizeof expected / sizeof expected[0])

START_TEST(codes_are_stable_and_mapped) {
  /* the numbers themselves are ABI */
  ck_assert_int_eq(BE_E_VALIDATION, -4);
  ck_assert_int_eq(BE_E_POOL_EXHAUSTED, -13);
  ck_assert_int_eq(BE_E_UNSUPPORTED, -20);
  for (size_t i = 0; i < NCODES; i++) {
    int32_t c = expected[i].code;
    ck_assert_int_eq(c, -(int32_t)i); /* dense, append-only */
    ck_assert_int_eq(be_code_http_status(c), expected[i].status);
    ck_assert_int_eq(be_code_category(c), expected[i].category);
    ck_assert_int_eq(be_code_is_retryable(c), expected[i].retryable);
    ck_assert_str_ne(be_strerror(c), "unknown error");
    ck_assert(strncmp(be_code_name(c), "BE_", 3) == 0);
  }
  ck_assert_str_eq(be_code_name(BE_E_VALIDATION), "BE_E_VALIDATION");
  ck_assert_str_eq(be_strerror(-(int32_t)NCODES), "unknown error");
  ck_assert_str_eq(be_strerror(7), "unknown error");
  ck_assert_str_eq(be_code_name(INT32_MIN), "BE_E_UNKNOWN");
  ck_assert_int_eq(be_code_http_status(-9999), 500);
  ck_assert_int_eq(be_code_category(12345), BE_CAT_INTERNAL);
}
END_TEST

START_TEST(new_error_carries_code_status_message) {
  for (size_t i = 1; i < NCODES; i++) {
    be_error *e = NULL;
    ck_assert_int_eq(be_error_new(&e, expected[i].code, "boom"), BE_OK);
    ck_assert_int_eq(be_error_code(e), expected[i].code);
    ck_assert_int_eq(be_error_http_status(e), expected[i].status);
    ck_assert_int_eq(be_error_category(e), expected[i].category);
    ck_assert_int_eq(be_error_is_retryable(e), expected[i].retryable);
    ck_assert_str_eq(be_error_message(e), "boom");
    ck_assert_uint_eq(be_error_field_count(e), 0);
    ck_assert_ptr_null(be_error_cause(e));
    be_error_free(e);
  }
  be_error *e = NULL;
  ck_assert_int_eq(be_error_new(&e, BE_E_NOT_FOUND, NULL), BE_OK);
  ck_assert_str_eq(be_error_message(e), "not found");
  be_error_free(e);
}
END_TEST

START_TEST(misuse_is_reported) {
  be_error *e = NULL;
  ck_assert_int_eq(be_error_new(NULL, BE_E_INTERNAL, "x"), BE_E_MISUSE);
  ck_assert_int_eq(be_error_new(&e, BE_OK, "x"), BE_E_MISUSE);
  ck_assert_ptr_null(e);
  ck_assert_int_eq(be_error_add_field(NULL, "f", "m"), BE_E_MISUSE);
  ck_assert_int_eq(be_error_set_driver_code(NULL, 1), BE_E_MISUSE);
  ck_assert_int_eq(be_error_set_retryable(NULL, 1), BE_E_MISUSE);
  ck_assert_int_eq(be_error_to_json(NULL, NULL, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_error_new(&e, BE_E_INTERNAL, "x"), BE_OK);
  ck_assert_int_eq(be_error_add_field(e, NULL, "m"), BE_E_MISUSE);
  ck_assert_int_eq(be_error_to_json(NULL, NULL, e), BE_E_MISUSE);
  be_error_free(e);
  /* accessors on NULL */
  ck_assert_int_eq(be_error_code(NULL), BE_OK);
  ck_assert_ptr_null(be_error_message(NULL));
  ck_assert_uint_eq(be_error_field_count(NULL), 0);
  ck_assert_ptr_null(be_error_field_name(NULL, 0));
  ck_assert_int_eq(be_error_http_status(NULL), 0);
  be_error_free(NULL);
}
END_TEST

START_TEST(field_errors_in_order) {
  be_error *e = NULL;
  ck_assert_int_eq(be_error_new(&e, BE_E_VALIDATION, "Validation failed: email"), BE_OK);
  char name[32], msg[32];
  for (int i = 0; i < 50; i++) {
    snprintf(name, sizeof name, "field%d", i);
    snprintf(msg, sizeof msg, "message %d", i);
    ck_assert_int_eq(be_error_add_field(e, name, i == 7 ? NULL : msg), BE_OK);
  }
  ck_assert_uint_eq(be_error_field_count(e), 50);
  ck_assert_str_eq(be_error_field_name(e, 0), "field0");
  ck_assert_str_eq(be_error_field_message(e, 49), "message 49");
  ck_assert_str_eq(be_error_field_message(e, 7), "is invalid");
  ck_assert_ptr_null(be_error_field_name(e, 50));
  ck_assert_ptr_null(be_error_field_message(e, SIZE_MAX));
  be_error_free(e);
}
END_TEST

START_TEST(cause_chain_keeps_driver_detail) {
  be_error *low = NULL, *mid = NULL, *top = NULL;
  ck_assert_int_eq(be_error_new(&low, BE_E_STORAGE, "UNIQUE constraint failed: users.email"), BE_OK);
  ck_assert_int_eq(be_error_set_driver_code(low, 2067), BE_OK);
  ck_assert_int_eq(be_error_wrap(&mid, BE_E_CONFLICT, "insert user", low), BE_OK);
  ck_assert_int_eq(be_error_wrap(&top, BE_E_CONFLICT, "email already registered", mid), BE_OK);
  ck_assert_int_eq(be_error_set_retryable(top, 1), BE_OK);
  ck_assert_int_eq(be_error_is_retryable(top), 1);
  ck_assert_ptr_eq(be_error_cause(top), mid);
  ck_assert_ptr_eq(be_error_cause(be_error_cause(top)), low);
  ck_assert_int_eq(be_error_driver_code(be_error_cause(be_error_cause(top))), 2067);
  ck_assert_ptr_null(be_error_cause(low));
  be_error_free(top); /* frees the chain; ASan/valgrind would see a leak */
  /* wrap takes ownership of cause even on misuse */
  be_error *c = NULL, *w = NULL;
  ck_assert_int_eq(be_error_new(&c, BE_E_BUSY, "locked"), BE_OK);
  ck_assert_int_eq(be_error_wrap(NULL, BE_E_INTERNAL, "x", c), BE_E_MISUSE);
  ck_assert_ptr_null(w);
}
END_TEST

START_TEST(text_arguments_with_lengths) {
  be_error *e = NULL;
  /* length 0 is the empty string: the pointer is never read */
  ck_assert_int_eq(be_error_new_n(&e, BE_E_CONFLICT, (const char *)1, 0), BE_OK);
  ck_assert_str_eq(be_error_message(e), "");
  ck_assert_int_eq(be_error_add_field_n(e, "f", 1, (const char *)1, 0), BE_OK);
  ck_assert_str_eq(be_error_field_message(e, 0), "");
  ck_assert_int_eq(be_error_add_field_n(e, (const char *)1, 0, "m", BE_NUL_TERMINATED), BE_OK);
  ck_assert_str_eq(be_error_field_name(e, 1), "");
  /* an exact length: the text need not be NUL-terminated */
  ck_assert_int_eq(be_error_add_field_n(e, "emailXX", 5, "is takenXX", 8), BE_OK);
  ck_assert_str_eq(be_error_field_name(e, 2), "email");
  ck_assert_str_eq(be_error_field_message(e, 2), "is taken");
  /* embedded NUL and invalid UTF-8: refused, the error unchanged */
  ck_assert_int_eq(be_error_add_field_n(e, "a\0b", 3, "m", 1), BE_E_VALIDATION);
  ck_assert_int_eq(be_error_add_field_n(e, "f", 1, "\xff", 1), BE_E_VALIDATION);
  ck_assert_int_eq(be_error_add_field(e, "f", "\xc3"), BE_E_VALIDATION);
  ck_assert_uint_eq(be_error_field_count(e), 3);
  be_error_free(e);

  static const struct {
    const char *text;
    size_t len;
    const char *why;
  } bad[] = {
    {"a\0b", 3, "contains a NUL byte"},
    {"\xff", 1, "is not valid UTF-8"},
    {"ok \xed\xa0\x80", BE_NUL_TERMINATED, "is not valid UTF-8"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    e = NULL;
    ck_assert_int_eq(be_error_new_n(&e, BE_E_CONFLICT, bad[i].text, bad[i].len), BE_E_VALIDATION);
    ck_assert_int_eq(be_error_code(e), BE_E_VALIDATION); /* says why, naming the argument */
    ck_assert_str_eq(be_error_field_name(e, 0), "message");
    ck_assert_ptr_nonnull(strstr(be_error_field_message(e, 0), bad[i].why));
    be_error_free(e);
  }
  /* wrap: the cause is released also when the message is refused */
  be_error *cause = NULL;
  ck_assert_int_eq(be_error_new(&cause, BE_E_STORAGE, "disk"), BE_OK);
  e = NULL;
  ck_assert_int_eq(be_error_wrap_n(&e, BE_E_CONFLICT, "x\0", 2, cause), BE_E_VALIDATION);
  ck_assert_ptr_null(be_error_cause(e));
  be_error_free(e);
  /* NULL message: the code's own text, whatever the length */
  e = NULL;
  ck_assert_int_eq(be_error_new_n(&e, BE_E_CONFLICT, NULL, 5), BE_OK);
  ck_assert_str_eq(be_error_message(e), "conflict");
  be_error_free(e);
}
END_TEST

START_TEST(long_messages_are_cut_on_utf8_boundary) {
  size_t n = 10000;
  char *big = malloc(n + 1);
  for (size_t i = 0; i < n; i += 2) {
    big[i] = (char)0xC3;
    big[i + 1] = (char)0xA9;
  } /* é */
  big[n] = 0;
  be_error *e = NULL;
  ck_assert_int_eq(be_error_new(&e, BE_E_VALIDATION, big + 1), BE_E_VALIDATION); /* mid-char */
  ck_assert_str_eq(be_error_field_name(e, 0), "message");
  be_error_free(e);
  e = NULL;
  /* library-made text (a driver's message) may start mid-character */
  ck_assert_int_eq(be__error_wrap_raw(&e, BE_E_VALIDATION, big + 1, n - 1, NULL), BE_OK);
  size_t len = strlen(be_error_message(e));
  ck_assert_uint_le(len, 4096);
  ck_assert_uint_ge(len, 4090);
  /* the cut never leaves a lead byte without its continuation */
  unsigned char last = (unsigned char)be_error_message(e)[len - 1];
  ck_assert_int_ne(last, 0xC3);
  be_error_free(e);
  free(big);
}
END_TEST

/* Write lines to a temp file and run a python3 check over it; returns 1
 * when python exits 0. One python start for many documents keeps it fast. */
static int python_check(const char *lines, const char *script) {
  char path[] = "/tmp/bejson.XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  size_t len = strlen(lines);
  ck_assert_int_eq(write(fd, lines, len), (ssize_t)len);
  close(fd);
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s %s", script, path);
  int rc = system(cmd);
  unlink(path);
  return rc == 0;
}

static const char *nasty[] = {
  "",
  "plain",
  "quote\" backslash\\ slash/",
  "\n\r\t\b\f\x01\x1f\x7f",
  "\xff\xfe invalid",
  "\xc3",
  "\xe2\x82",
  "\xed\xa0\x80 surrogate",
  "\xc0\xaf overlong",
  "emoji \xf0\x9f\x98\x80 ok",
  "\xf4\x90\x80\x80 too big",
  "</script><script>alert(1)</script>",
  "\\u0000",
  "'; DROP TABLE users; --",
  "\xe2\x80\xa8 line sep",
};

START_TEST(json_is_valid_for_nasty_input) {
  /* the check: python3 -m json.tool must accept every document */
  char *all = calloc(1, 1);
  size_t all_len = 0;
  for (size_t i = 0; i < sizeof nasty / sizeof nasty[0]; i++) {
    /* the JSON writer must cope with any bytes in library-made text */
    be_error *e = NULL;
    size_t n = strlen(nasty[i]);
    ck_assert_int_eq(be__error_wrap_raw(&e, BE_E_VALIDATION, nasty[i], n, NULL), BE_OK);
    ck_assert_int_eq(be__error_add_field_raw(e, nasty[i], n, nasty[i], n), BE_OK);
    char *json = NULL;
    size_t len = 0;
    ck_assert_int_eq(be_error_to_json(&json, &len, e), BE_OK);
    ck_assert_uint_eq(len, strlen(json));
    ck_assert_ptr_null(strchr(json, '\n')); /* one document per line */
    all = realloc(all, all_len + len + 2);
    memcpy(all + all_len, json, len);
    all_len += len;
    all[all_len++] = '\n';
    all[all_len] = 0;
    be_free(json);
    be_error_free(e);
  }
  ck_assert(python_check(all, "python3 -m json.tool --json-lines >/dev/null"));
  ck_assert(!python_check("{\"broken\":\n", "python3 -m json.tool --json-lines >/dev/null 2>&1"));
  free(all);
}
END_TEST

/* Expected detail for input s: valid UTF-8 sequences kept, each byte of an
 * invalid one replaced by U+FFFD; written as hex of the UTF-8 bytes. A tiny
 * independent decoder, so python is the JSON oracle but not the model. */
static void expected_hex(const unsigned char *p, size_t n, char *hex) {
  size_t hl = 0;
  for (size_t i = 0; i < n;) {
    size_t len = 0;
    unsigned c = p[i];
    unsigned need = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2
                                 : (c & 0xF0) == 0xE0 ? 3
                                 : (c & 0xF8) == 0xF0 ? 4
                                                      : 0;
    if (need && i + need <= n) {
      unsigned long cp = need == 1 ? c : c & (0xFFu >> (need + 1));
      int ok = 1;
      for (size_t k = 1; k < need; k++) {
        if ((p[i + k] & 0xC0) != 0x80) ok = 0;
        cp = (cp << 6) | (p[i + k] & 0x3F);
      }
      unsigned long min = need == 1 ? 0 : need == 2 ? 0x80
                                        : need == 3 ? 0x800
                                                    : 0x10000;
      if (ok && cp >= min && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF)) len = need;
    }
    if (len == 0) {
      hl += (size_t)sprintf(hex + hl, "efbfbd");
      i++;
      continue;
    }
    for (size_t k = 0; k < len; k++) hl += (size_t)sprintf(hex + hl, "%02x", p[i + k]);
    i += len;
  }
  hex[hl] = 0;
}

START_TEST(json_random_bytes_round_trip) {
  srand(42);
  size_t cap = 1 << 20, used = 0;
  char *lines = malloc(cap);
  for (int round = 0; round < 300; round++) {
    char s[64];
    size_t n = (size_t)(rand() % 63);
    for (size_t i = 0; i < n; i++) s[i] = (char)(1 + rand() % 255);
    s[n] = 0;
    be_error *e = NULL;
    ck_assert_int_eq(be__error_wrap_raw(&e, BE_E_VALIDATION, s, n, NULL), BE_OK);
    ck_assert_int_eq(be__error_add_field_raw(e, s, n, "x", 1), BE_OK);
    char *json = NULL;
    ck_assert_int_eq(be_error_to_json(&json, NULL, e), BE_OK);
    char hex[64 * 6 + 1];
    expected_hex((const unsigned char *)s, n, hex);
    used += (size_t)snprintf(lines + used, cap - used, "%s\t%s\n", hex, json);
    be_free(json);
    be_error_free(e);
  }
  ck_assert(python_check(lines,
                         "python3 -c 'import json,sys\n"
                         "for line in open(sys.argv[1], encoding=\"utf-8\"):\n"
                         "  h, j = line.rstrip(\"\\n\").split(\"\\t\", 1)\n"
                         "  d = json.loads(j)\n"
                         "  assert d[\"detail\"].encode(\"utf-8\").hex() == h, (h, j)\n"
                         "  assert d[\"status\"] == 400 and d[\"errors\"][0][\"field\"] == d[\"detail\"]\n'"));
  free(lines);
}
END_TEST

START_TEST(json_shape) {
  be_error *e = NULL;
  ck_assert_int_eq(be_error_new(&e, BE_E_CONFLICT, "email taken"), BE_OK);
  char *json = NULL;
  ck_assert_int_eq(be_error_to_json(&json, NULL, e), BE_OK);
  ck_assert_str_eq(json,
                   "{\"type\":\"urn:libbackend:error:conflict\",\"title\":\"conflict\","
                   "\"status\":409,\"detail\":\"email taken\",\"code\":-8,"
                   "\"code_name\":\"BE_E_CONFLICT\"}");
  be_free(json);
  be_error_free(e);
}
END_TEST

static int build_error_with_fields(void *arg) {
  (void)arg;
  be_error *e = NULL;
  int rc = be_error_new(&e, BE_E_VALIDATION, "bad");
  if (rc != BE_OK) {
    ck_assert_int_eq(rc, BE_E_NOMEM);
    ck_assert_int_eq(be_error_code(e), BE_E_NOMEM); /* static OOM error */
    ck_assert_str_eq(be_error_message(e), "out of memory");
    ck_assert_int_eq(be_error_add_field(e, "f", "m"), BE_E_MISUSE);
    be_error_free(e); /* a no-op on the static error */
    return rc;
  }
  rc = be_error_add_field(e, "email", "is not valid");
  if (rc == BE_OK) rc = be_error_add_field(e, "name", "is empty");
  if (rc == BE_OK) {
    char *json = NULL;
    rc = be_error_to_json(&json, NULL, e);
    be_free(json);
  }
  if (rc == BE_OK) {
    be_error *w = NULL;
    rc = be_error_wrap(&w, BE_E_INTERNAL, "outer", e);
    e = w; /* on failure w is the static error and e was freed */
  }
  be_error_free(e);
  return rc;
}

START_TEST(every_allocation_failure_is_clean) {
  TU_FOR_EACH_ALLOC_FAILURE(build_error_with_fields, NULL);
}
END_TEST

Suite *error_suite(void) {
  Suite *s = suite_create("error");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, codes_are_stable_and_mapped);
  tcase_add_test(tc, new_error_carries_code_status_message);
  tcase_add_test(tc, misuse_is_reported);
  tcase_add_test(tc, field_errors_in_order);
  tcase_add_test(tc, cause_chain_keeps_driver_detail);
  tcase_add_test(tc, text_arguments_with_lengths);
  tcase_add_test(tc, long_messages_are_cut_on_utf8_boundary);
  tcase_add_test(tc, json_is_valid_for_nasty_input);
  tcase_add_test(tc, json_random_bytes_round_trip);
  tcase_add_test(tc, json_shape);
  tcase_add_test(tc, every_allocation_failure_is_clean);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(error_suite)
