/* SPDX-License-Identifier: MIT */
/* The mailer struct's initialiser (backend/mailer.h). */
#include <backend/mailer.h>

#include "versioned.h"

int be_mailer_init(be_mailer *mailer, uint32_t version) {
  static const be_mailer defaults = BE_MAILER_INIT;
  return be__versioned_init(mailer, sizeof *mailer, &defaults, version, BE_MAILER_VERSION);
}
