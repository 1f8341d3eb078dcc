/* SPDX-License-Identifier: MIT */
/* The mailer struct's initialiser (backend/mailer.h), the send the
 * services mail through and the account notices (mailer.h). */
#include "mailer.h"

#include <backend/log.h>

#include <stdio.h>

#include "error.h"
#include "versioned.h"

int be_mailer_init(be_mailer *mailer, uint32_t version) {
  static const be_mailer defaults = BE_MAILER_INIT;
  return be__versioned_init(mailer, sizeof *mailer, &defaults, version, BE_MAILER_VERSION);
}

int be__mailer_send(const be__app_res *res, int64_t user_id, const char *what, const char *to,
                    const char *subject, const char *body) {
  const be_mailer *m = res->opts.mailer;
  be_error *e = NULL;
  int rc = m->send(to, subject, body, m->user_data, &e);
  be_error_free(e);
  if (rc == BE_OK) return BE_OK;
  /* The code the mailer returned, not its *err's: a mailer may fail
   * without filling *err. */
  char id[24], code[16];
  snprintf(id, sizeof id, "%lld", (long long)user_id);
  snprintf(code, sizeof code, "%d", rc);
  be_log_field f[] = {{"user_id", id}, {"code", be_code_name(rc)}, {"rc", code}};
  be_log(BE_LOG_ERROR, what, f, 3, NULL);
  return rc;
}

static const struct {
  const char *what, *subject, *body;
} notices[] = {
  [BE__NOTICE_PASSWORD_CHANGED] =
    {"mailer: could not send a password-changed notice", "Your password was changed",
     "The password of your account was just changed.\n\nIf you did not do this, reset "
     "your password now and contact support: someone else may know it.\n"},
  [BE__NOTICE_PASSWORD_RESET] =
    {"mailer: could not send a password-reset notice", "Your password was reset",
     "The password of your account was just reset with a reset code mailed to this "
     "address.\n\nIf you did not do this, contact support now: someone else may be "
     "reading your mail.\n"},
  [BE__NOTICE_EMAIL_OLD] =
    {"mailer: could not send an email-changed notice to the old address",
     "Your email address was changed",
     "The email address of your account was just changed: from now on, mail about the "
     "account (password resets too) goes to the new address, not to this one.\n\nIf you "
     "did not do this, contact support now: someone else may control your account.\n"},
  [BE__NOTICE_EMAIL_NEW] =
    {"mailer: could not send an email-changed notice to the new address",
     "Your email address was changed",
     "This address is now the email address of your account.\n\nIf you did not ask for "
     "this, contact support.\n"},
};

void be__mailer_notify(const be__app_res *res, int64_t user_id, be__notice notice, const char *to) {
  const be_mailer *m = res->opts.mailer;
  if (m == NULL || m->send == NULL || to == NULL || to[0] == '\0') return;
  (void)be__mailer_send(res, user_id, notices[notice].what, to, notices[notice].subject,
                        notices[notice].body);
}
