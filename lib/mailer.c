/* SPDX-License-Identifier: MIT */
/* The mailer struct's initialiser (backend/mailer.h). */
#include <backend/mailer.h>

int be_mailer_init(be_mailer *mailer, uint32_t version) {
  if (mailer == NULL || version != BE_MAILER_VERSION) return BE_E_MISUSE;
  be_mailer init = BE_MAILER_INIT;
  *mailer = init;
  return BE_OK;
}
