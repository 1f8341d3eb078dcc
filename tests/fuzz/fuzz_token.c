/* SPDX-License-Identifier: MIT */
/* Arbitrary session tokens for be_auth_verify, be_auth_verify_session and
 * be_auth_logout, next to one live session. Checked: a token is accepted
 * exactly when its bytes are the live session's token (and then it names
 * the right user); anything else is BE_E_UNAUTHORIZED, never another
 * code, and logging out with it ends nothing (the live token still
 * verifies). Inputs are arbitrary bytes, or the live token with a few
 * bytes changed, cut or extended (mode byte). */
#include "fuzz_support.h"

#include <stdlib.h>
#include <string.h>

static char *live;
static int64_t live_user;

static void login(be_testkit *kit) {
  be_error *err = NULL;
  int rc = be_auth_login(&live, &live_user, be_testkit_app(kit), "user1@example.test",
                         BE_NUL_TERMINATED, BE_TESTKIT_PASSWORD, BE_NUL_TERMINATED, &err);
  FZ_CHECK(rc == BE_OK && strlen(live) == BE_AUTH_TOKEN_LEN, "login: %s", be_error_message(err));
}

static void verify(be_app *app, const char *tok, size_t len, int expect_ok) {
  int64_t uid = -1;
  be_error *err = NULL;
  int rc = be_auth_verify(&uid, app, tok, len, &err);
  FZ_CHECK(rc == (expect_ok ? BE_OK : BE_E_UNAUTHORIZED), "be_auth_verify gave %d (%s)", rc,
           be_code_name(rc));
  if (expect_ok) FZ_CHECK(uid == live_user, "verified as user %lld", (long long)uid);
  fz_expect("be_auth_verify", rc, err, BE_OK, BE_E_UNAUTHORIZED, 1);
  be_auth_session_info info = BE_AUTH_SESSION_INFO_INIT;
  rc = be_auth_verify_session(&info, app, tok, len, &err);
  FZ_CHECK(rc == (expect_ok ? BE_OK : BE_E_UNAUTHORIZED), "be_auth_verify_session gave %d", rc);
  if (expect_ok) FZ_CHECK(info.user_id == live_user, "session of user %lld", (long long)info.user_id);
  fz_expect("be_auth_verify_session", rc, err, BE_OK, BE_E_UNAUTHORIZED, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  be_testkit *kit = fz_kit(2, 1);
  be_app *app = be_testkit_app(kit);
  if (live == NULL) login(kit);
  fz_in in = {data, size};
  uint8_t mode = fz_u8(&in);
  char tok[300];
  size_t len;
  if (mode & 1) { /* the live token, edited */
    len = BE_AUTH_TOKEN_LEN;
    memcpy(tok, live, len);
    for (int k = fz_u8(&in) % 4; k >= 0 && in.n > 0; k--) {
      uint8_t at = fz_u8(&in), op = fz_u8(&in);
      if (op % 3 == 0 && len > 0) tok[at % len] = (char)fz_u8(&in);
      else if (op % 3 == 1) len = at % (len + 1);
      else if (len < sizeof tok - 1) tok[len++] = (char)fz_u8(&in);
    }
  } else {
    const char *s;
    len = fz_bytes(&in, &s, sizeof tok - 1);
    memcpy(tok, s, len);
  }
  tok[len] = '\0';
  size_t arg_len = (mode & 2) ? BE_NUL_TERMINATED : len;
  size_t eff = (mode & 2) ? strlen(tok) : len;
  int is_live = eff == BE_AUTH_TOKEN_LEN && memcmp(tok, live, eff) == 0;
  verify(app, tok, arg_len, is_live);
  if (!is_live) {
    be_error *err = NULL;
    int rc = be_auth_logout(app, tok, arg_len, &err);
    fz_expect("be_auth_logout", rc, err, BE_OK, BE_E_UNAUTHORIZED, 1);
    verify(app, live, BE_NUL_TERMINATED, 1);
  }
  return 0;
}
