/* SPDX-License-Identifier: MIT */
/* libbackend's own tables, as migrations 1..999 (hosts use 1000 and up). */
#ifndef BE_LIB_SCHEMA_H
#define BE_LIB_SCHEMA_H

#include <backend/error.h>

struct be_migrator;

/* Register libbackend's migrations on m. */
int be__schema_register(struct be_migrator *m, be_error **err);

#endif
