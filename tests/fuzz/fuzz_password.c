/* SPDX-License-Identifier: MIT */
/* Arbitrary passwords and emails through the password policy, setting a
 * password and logging in (cheap test hashing; the database is put back
 * to its seeded state before each input). Checked:
 * - be_auth_check_password: BE_OK or BE_E_VALIDATION naming "password";
 *   never BE_OK for a text that is not UTF-8 without NUL, shorter than 12
 *   or longer than 256 characters, or over 4096 bytes;
 * - be_auth_set_password refuses what the policy refuses; when it
 *   accepts, logging in with exactly those bytes succeeds for that user
 *   (the token verifies as them) and with one byte changed fails with
 *   BE_E_UNAUTHORIZED;
 * - be_auth_login with an arbitrary email and password: BE_E_VALIDATION
 *   ("email" or "password") or BE_E_UNAUTHORIZED, BE_OK only for the
 *   seeded password of a seeded user's email. */
#include "fuzz_support.h"

#include <stdlib.h>
#include <string.h>

static size_t chars(const char *s, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
  return c;
}

static int field_is(be_error *err, const char *a, const char *b) {
  const char *f = be_error_field_count(err) ? be_error_field_name(err, 0) : "";
  return strcmp(f, a) == 0 || strcmp(f, b) == 0;
}

static void login_expect(be_app *app, const char *email, size_t elen, const char *pw,
                         size_t plen, int64_t expect_user) {
  char *tok = NULL;
  int64_t uid = 0;
  be_error *err = NULL;
  int rc = be_auth_login(&tok, &uid, app, email, elen, pw, plen, &err);
  if (expect_user > 0) {
    FZ_CHECK(rc == BE_OK && uid == expect_user, "login with the password just set: %d %s", rc,
             be_error_message(err));
    int64_t vid = 0;
    FZ_CHECK(be_auth_verify(&vid, app, tok, BE_NUL_TERMINATED, NULL) == BE_OK && vid == uid,
             "the new session does not verify");
  } else if (expect_user == 0) {
    FZ_CHECK(rc == BE_E_UNAUTHORIZED, "login with a wrong password gave %d", rc);
  } else if (rc != BE_OK) {
    FZ_CHECK(rc == BE_E_UNAUTHORIZED || (rc == BE_E_VALIDATION && field_is(err, "email", "password")),
             "login gave %d %s", rc, be_error_message(err));
  }
  be_auth_token_free(tok);
  be_error_free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  be_testkit *kit = fz_kit(3, 1);
  be_app *app = be_testkit_app(kit);
  fz_kit_reset(kit);
  fz_in in = {data, size};
  uint8_t mode = fz_u8(&in);
  const char *pw, *email;
  size_t plen = fz_bytes(&in, &pw, 4200);
  size_t elen = fz_bytes(&in, &email, 400);

  be_error *err = NULL;
  int rc = be_auth_check_password(app, pw, plen, &err);
  if (rc == BE_OK)
    FZ_CHECK(fz_text_ok(pw, plen) && plen <= 4096 && chars(pw, plen) >= 12 && chars(pw, plen) <= 256,
             "the policy accepted a password it must refuse (%zu bytes)", plen);
  else FZ_CHECK(rc == BE_E_VALIDATION && field_is(err, "password", "-"), "check_password: %d", rc);
  be_error_free(err);
  err = NULL;

  int64_t uid = be_testkit_user_id(kit, 1);
  int src = be_auth_set_password(app, 0, uid, pw, plen, &err);
  if (rc != BE_OK) FZ_CHECK(src == BE_E_VALIDATION, "set_password took what the policy refused");
  else FZ_CHECK(src == BE_OK || (src == BE_E_VALIDATION && field_is(err, "password", "-")),
                "set_password: %d %s", src, be_error_message(err));
  be_error_free(err);
  err = NULL;
  if (src == BE_OK) {
    login_expect(app, "user1@example.test", BE_NUL_TERMINATED, pw, plen, uid);
    char *wrong = malloc(plen + 1);
    memcpy(wrong, pw, plen);
    wrong[mode % plen] ^= (char)(1 + mode / 16);
    login_expect(app, "user1@example.test", BE_NUL_TERMINATED, wrong, plen, 0);
    free(wrong);
  }
  /* an arbitrary email, with the fuzzed password or the seeded one */
  if (mode & 1) login_expect(app, email, elen, pw, plen, -1);
  else login_expect(app, email, elen, BE_TESTKIT_PASSWORD, BE_NUL_TERMINATED, -1);
  return 0;
}
