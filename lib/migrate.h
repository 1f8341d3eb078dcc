/* SPDX-License-Identifier: MIT */
/* Internal view of the migrator (app.c checks the host's versions). */
#ifndef BE_LIB_MIGRATE_H
#define BE_LIB_MIGRATE_H

#include <backend/migrate.h>

/* The lowest registered version, or 0 when m is NULL or empty. */
int64_t be__migrator_first_version(const be_migrator *m);

#endif
