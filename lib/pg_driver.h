/* SPDX-License-Identifier: MIT */
/* The libpq driver table (lib/pg_driver.c, built only with libpq). Not
 * exported: be_postgres_driver() hands it out. */
#ifndef BE_LIB_PG_DRIVER_H
#define BE_LIB_PG_DRIVER_H

#include <backend/storage.h>

/* The static PostgreSQL driver table. */
const be_driver *be__pg_driver(void);

#endif
