/* SPDX-License-Identifier: MIT */
/* Choosing a driver by DSN, for the app and the pool. Not exported. */
#ifndef BE_LIB_POSTGRES_H
#define BE_LIB_POSTGRES_H

#include <backend/storage.h>

/* The driver for a caller that gave none: be_postgres_driver() for a
 * postgres:// or postgresql:// DSN (NULL when built without libpq),
 * else the default SQLite driver. */
const be_driver *be__driver_for_dsn(const char *dsn);

#endif
