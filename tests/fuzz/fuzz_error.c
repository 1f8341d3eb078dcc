/* SPDX-License-Identifier: MIT */
/* Errors built from arbitrary bytes (backend/error.h): be_error_new_n,
 * be_error_wrap_n, be_error_add_field_n with any code, message, field
 * name and field message, given by length or NUL-terminated. Checked:
 * a text is accepted exactly when it is UTF-8 without NUL (else
 * BE_E_VALIDATION, and *out still gets an error); the problem JSON of
 * every error made, the validation ones included, is valid JSON (strict
 * validator in fuzz_support.c) whose "detail" decodes to the message and
 * whose "code_name" is the code's. */
#include "fuzz_support.h"

#include <stdlib.h>
#include <string.h>

static const int32_t codes[] = {BE_E_INTERNAL, BE_E_NOMEM, BE_E_MISUSE, BE_E_VALIDATION,
                                BE_E_UNAUTHORIZED, BE_E_FORBIDDEN, BE_E_NOT_FOUND,
                                BE_E_CONFLICT, BE_E_RATE_LIMITED, BE_E_SERIALIZATION,
                                BE_E_UNSUPPORTED, BE_OK};

/* A text from the input: NULL (sometimes, when allowed), by length, or
 * NUL-terminated (a copy in *owned). The library's view of it goes to
 * *eff / *eff_len. */
static const char *text(fz_in *in, size_t *len, char **owned, const char **eff, size_t *eff_len,
                        int allow_null) {
  uint8_t how = fz_u8(in);
  const char *s;
  size_t n = fz_bytes(in, &s, 5000);
  *owned = NULL;
  if (allow_null && how % 8 == 0) {
    *eff = NULL;
    *len = 0;
    return NULL;
  }
  if (how % 2 == 1) {
    *owned = malloc(n + 1);
    memcpy(*owned, s, n);
    (*owned)[n] = '\0';
    *len = BE_NUL_TERMINATED;
    *eff = *owned;
    *eff_len = strlen(*owned);
    return *owned;
  }
  *len = n;
  *eff = s;
  *eff_len = n;
  return s;
}

static void check_json(const be_error *e) {
  char *json = NULL;
  size_t len = 0;
  int rc = be_error_to_json(&json, &len, e);
  FZ_CHECK(rc == BE_OK, "be_error_to_json: %d", rc);
  FZ_CHECK(strlen(json) == len, "length %zu, strlen %zu", len, strlen(json));
  FZ_CHECK(fz_json_valid(json, len), "invalid JSON: %s", json);
  size_t dlen = 0;
  char *detail = fz_json_member_string(json, len, "detail", &dlen);
  const char *msg = be_error_message(e);
  FZ_CHECK(detail != NULL && dlen == strlen(msg) && memcmp(detail, msg, dlen) == 0,
           "detail does not decode to the message: %s", json);
  char *name = fz_json_member_string(json, len, "code_name", NULL);
  FZ_CHECK(name != NULL && strcmp(name, be_code_name(be_error_code(e))) == 0, "code_name: %s",
           json);
  free(detail);
  free(name);
  be_free(json);
}

/* Make an error (new or wrapping cause) from the input and check it. */
static be_error *make(fz_in *in, be_error *cause) {
  uint8_t pick = fz_u8(in);
  int32_t code = pick < 200 ? codes[pick % (sizeof codes / sizeof codes[0])] : (int32_t)fz_u32(in);
  size_t len, eff_len = 0;
  char *owned;
  const char *eff;
  const char *msg = text(in, &len, &owned, &eff, &eff_len, 1);
  be_error *e = NULL;
  int rc = cause ? be_error_wrap_n(&e, code, msg, len, cause) : be_error_new_n(&e, code, msg, len);
  if (code == BE_OK) {
    FZ_CHECK(rc == BE_E_MISUSE, "code 0 gave %d", rc);
  } else if (eff != NULL && !fz_text_ok(eff, eff_len)) {
    FZ_CHECK(rc == BE_E_VALIDATION && e != NULL && be_error_code(e) == BE_E_VALIDATION,
             "bad message gave %d", rc);
    FZ_CHECK(be_error_field_count(e) == 1 && strcmp(be_error_field_name(e, 0), "message") == 0,
             "the validation error names no field \"message\"");
  } else {
    FZ_CHECK(rc == BE_OK && e != NULL && be_error_code(e) == code, "good message gave %d", rc);
    const char *m = be_error_message(e);
    if (eff != NULL && eff_len <= 4096)
      FZ_CHECK(strlen(m) == eff_len && memcmp(m, eff, eff_len) == 0, "message changed");
    else if (eff != NULL)
      FZ_CHECK(strlen(m) <= 4096 && memcmp(m, eff, strlen(m)) == 0, "long message not cut");
  }
  free(owned);
  if (e != NULL) check_json(e);
  return e;
}

static void add_field(fz_in *in, be_error *e) {
  size_t flen, mlen, feff_len = 0, meff_len = 0;
  char *fown, *mown;
  const char *feff, *meff;
  const char *field = text(in, &flen, &fown, &feff, &feff_len, 0);
  const char *msg = text(in, &mlen, &mown, &meff, &meff_len, 1);
  size_t before = be_error_field_count(e);
  int rc = be_error_add_field_n(e, field, flen, msg, mlen);
  int good = fz_text_ok(feff, feff_len) && (meff == NULL || fz_text_ok(meff, meff_len));
  FZ_CHECK(rc == (good ? BE_OK : BE_E_VALIDATION), "add_field gave %d, expected %s", rc,
           good ? "ok" : "validation");
  FZ_CHECK(be_error_field_count(e) == before + (rc == BE_OK), "field count %zu after %zu",
           be_error_field_count(e), before);
  free(fown);
  free(mown);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  be_error *e = make(&in, NULL);
  for (int ops = 0; e != NULL && in.n > 0 && ops < 64; ops++) {
    switch (fz_u8(&in) % 4) {
      case 0: add_field(&in, e); break;
      case 1: e = make(&in, e); break;
      case 2: be_error_set_driver_code(e, fz_i64(&in)); break;
      default: be_error_set_retryable(e, (int32_t)fz_u32(&in)); break;
    }
    if (e != NULL) check_json(e);
  }
  be_error_free(e);
  return 0;
}

/* The validator must be able to fail: known texts, once per process. */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  static const char *good[] = {"{}", " [1, -0.5e+3, \"a\\u00e9\\ud83d\\ude00\", true, null] ",
                               "{\"a\":{\"b\":[]}}", "\"\xc3\xa9\""};
  static const char *bad[] = {"", "{", "[1,]", "{\"a\" 1}", "01", "1.", "\"\x01\"",
                              "\"\\ud800\"", "\"\\x\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"",
                              "[] []", "tru", "{\"a\":1,}", "-"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    FZ_CHECK(fz_json_valid(good[i], strlen(good[i])), "valid JSON refused: %s", good[i]);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    FZ_CHECK(!fz_json_valid(bad[i], strlen(bad[i])), "invalid JSON accepted: %s", bad[i]);
  char *d = fz_json_member_string("{\"x\":[\"q\"],\"detail\":\"a\\nb\\u00e9\"}", 34, "detail", NULL);
  FZ_CHECK(d != NULL && strcmp(d, "a\nb\xc3\xa9") == 0, "member decoding");
  free(d);
  return 0;
}
