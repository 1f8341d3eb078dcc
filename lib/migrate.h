/* SPDX-License-Identifier: MIT */
/* Internal view of the migrator (app.c checks the host's versions). */
#ifndef BE_LIB_MIGRATE_H
#define BE_LIB_MIGRATE_H

#include <backend/migrate.h>

/* The lowest registered version, or 0 when m is NULL or empty. */
int64_t be__migrator_first_version(const be_migrator *m);

/* be_migrator_apply() inside the transaction open on c: each migration
 * runs in a savepoint, and all of them become permanent only when the
 * caller commits (the app applies its own and the host's migrations, and
 * checks the audit key, as one transaction). BE_E_MISUSE when c is not in
 * a transaction; else as be_migrator_apply(). */
int be__migrator_apply_in_tx(be_migrator *m, be_conn *c, be_error **err);

/* be_migrator_set_table() with table folded to lower case first: for the
 * app, whose table prefix may hold upper case (its tables are the same
 * ones in any case, on SQLite and, unquoted, on PostgreSQL). */
int be__migrator_set_table_folded(be_migrator *m, const char *table, be_error **err);

#endif
