/* SPDX-License-Identifier: MIT */
/* The PostgreSQL driver: a be_driver over libpq's PGconn and server-side
 * prepared statements. Built when libpq is found (BE_HAVE_LIBPQ). */
#include <backend/postgres.h>
#include <backend/sqlite.h>

#include <string.h>

#include "pg_driver.h"
#include "postgres.h"

int32_t be_postgres_dsn(const char *dsn) {
  if (dsn == NULL) return 0;
  return strncmp(dsn, "postgres://", 11) == 0 || strncmp(dsn, "postgresql://", 13) == 0;
}

const be_driver *be__driver_for_dsn(const char *dsn) {
  return be_postgres_dsn(dsn) ? be_postgres_driver() : be_sqlite_driver();
}

const be_driver *be_postgres_driver(void) {
#ifdef BE_HAVE_LIBPQ
  return be__pg_driver();
#else
  return NULL;
#endif
}
