/* SPDX-License-Identifier: MIT */
/* The mailer struct's initialiser (backend/mailer.h), and the send the
 * services mail through (mailer.h). */
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
