/* SPDX-License-Identifier: MIT */
/* Internal: the services' schema -- libbackend's own tables (users, sessions,
 * password resets, roles and permissions, the audit log) as migrations
 * 1..999 (hosts use 1000 and up), recorded in <prefix>schema_migrations. */
#ifndef BE_LIB_SVC_SCHEMA_H
#define BE_LIB_SVC_SCHEMA_H

#include <backend/error.h>

struct be_migrator;

/* Register libbackend's migrations on m, every name of a table, index or
 * trigger given prefix, and make m record them in <prefix>schema_migrations. */
int be__svc_schema_register(struct be_migrator *m, const char *prefix, be_error **err);

#endif
