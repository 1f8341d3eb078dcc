/* SPDX-License-Identifier: MIT */
/**
 * @file backend/migrate.h
 * @brief Ordered, versioned SQL migrations recorded in a table of their own.
 *
 * A migrator is a list of migrations (version, name, SQL) and the name of
 * the table that records which ones ran: schema_migrations unless
 * be_migrator_set_table() names another. Migrators with different record
 * tables keep separate histories in one database: be_app records its own
 * migrations in its table prefix followed by schema_migrations
 * (be_schema_migrations by default), a host's in the host migrator's
 * table. be_migrator_apply() creates the record table
 *
 *   TABLE(version INTEGER PRIMARY KEY, name TEXT NOT NULL,
 *         applied_at INTEGER NOT NULL)   -- applied_at: Unix seconds
 *
 * if needed, then applies every registered migration not recorded there,
 * in ascending version order, each in its own transaction (BEGIN
 * IMMEDIATE on SQLite) together with its record row. Running it
 * again is a no-op. A migration that fails is rolled back completely and
 * apply stops: the database stays at the last version that succeeded, and
 * the error names the failing version. A registered version below the
 * database's current version that was never applied (a host added it
 * later) is applied as well, in order. A database recorded at a version
 * above every registered one (a newer build migrated it) is left as it
 * is and apply succeeds, so an older build can still run on it during a
 * rollback; apply logs a warning (BE_LOG_WARN, fields "table", "version"
 * and "latest"), and a caller that must refuse such a database compares
 * be_migrator_version() with be_migrator_latest_version().
 *
 * Migration SQL may hold several statements; it must not manage
 * transactions itself (no BEGIN/COMMIT), and statements SQLite refuses
 * inside a transaction (VACUUM, PRAGMA journal_mode, PRAGMA foreign_keys)
 * do not belong in a migration. When the driver splits scripts
 * (be_driver.next_statement; the SQLite driver does), the statements run
 * one at a time and one that would end the transaction (BEGIN, COMMIT,
 * END, ROLLBACK but not ROLLBACK TO) is refused before it runs; otherwise
 * the script runs as one, and a transaction it ended is reported after it
 * ran. Either way the migration fails with BE_E_VALIDATION (its cause
 * names the field "sql") and its version is not recorded. With a driver
 * that does not split scripts, what the script ran before its own COMMIT
 * is committed and stays (and a script that commits, then begins again,
 * is not caught at all): that is the one case where a failed migration
 * is not rolled back completely. Both built-in drivers split scripts.
 *
 * Two processes applying at once are safe: each migration re-checks its
 * row inside its write transaction.
 */
#ifndef BACKEND_MIGRATE_H
#define BACKEND_MIGRATE_H

#include <backend/common.h>
#include <backend/error.h>
#include <backend/storage.h>

BE_BEGIN_DECLS

/** A set of migrations. */
typedef struct be_migrator be_migrator;

/**
 * Make an empty migrator. Thread-safety: safe.
 *
 * @param out  receives the migrator, the caller's (be_migrator_free());
 *             not NULL.
 * @param err  receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (out NULL) or BE_E_NOMEM.
 */
BE_API int be_migrator_new(be_migrator **out, be_error **err);

/**
 * Name the table that records the applied migrations (schema_migrations
 * until this is called). Set it before the first be_migrator_apply():
 * a migrator applied to a database once must keep its table there.
 * Thread-safety: one thread per migrator while configuring.
 *
 * The name must be in lower case: SQLite ignores a table name's case and
 * PostgreSQL folds an unquoted one to lower case, so "Schema_Migrations"
 * would be the table schema_migrations, and this migrator would take the
 * versions another migrator recorded there for its own and skip them. On
 * SQLite a record table created in another case (by hand, say) is found
 * and used, as PostgreSQL finds one created unquoted.
 *
 * @param m      the migrator; not NULL.
 * @param table  the table's name, NUL-terminated, copied: a lower-case
 *               ASCII letter or '_', then lower-case ASCII letters, digits
 *               or '_', 1..64 bytes (used as written, unquoted); not an
 *               SQL keyword SQLite refuses as a table name or one
 *               PostgreSQL reserves (select, order, user, ...: a fixed
 *               list, so a newer SQLite cannot refuse a name that worked;
 *               keywords SQLite takes as names, such as key or plan, are
 *               fine) and not starting with sqlite_ in any case (SQLite
 *               reserves those names).
 * @param err    receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (m NULL); BE_E_VALIDATION (field "table":
 *         NULL, empty, too long, not such a name, holding upper case, a
 *         keyword or starting with sqlite_; the migrator keeps its
 *         table).
 */
BE_API int be_migrator_set_table(be_migrator *m, const char *table, be_error **err);

/**
 * Register a migration. Any order; applied ascending.
 * Thread-safety: one thread per migrator while adding.
 *
 * @param m        the migrator; not NULL.
 * @param version  the migration's version, >= 1 and not yet registered.
 * @param name     its name, NUL-terminated, 1..200 bytes of UTF-8, copied
 *                 (stored in the record table).
 * @param sql      its SQL, NUL-terminated, non-empty UTF-8, copied; may
 *                 hold several statements (see the file comment).
 * @param err      receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (m NULL); BE_E_VALIDATION (version < 1, name
 *         or sql NULL, empty or not valid UTF-8; the field error names
 *         "version", "name" or "sql"); BE_E_CONFLICT (version already
 *         registered); BE_E_NOMEM.
 */
BE_API int be_migrator_add(be_migrator *m, int64_t version, const char *name, const char *sql,
                           be_error **err);

/**
 * Apply every pending migration on conn (see the file comment).
 * Thread-safety: the migrator may be shared by threads applying on
 * different connections; the connection as usual.
 *
 * @param out_version  receives the database's version afterwards, also on
 *                     failure (the last good version); may be NULL. It
 *                     may exceed be_migrator_latest_version() (a newer
 *                     build's database; see the file comment).
 * @param m            the migrations; not NULL.
 * @param conn         the connection; not NULL, not inside a transaction.
 * @param err          receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (NULL m or conn, conn in a transaction); the
 *         failing migration's error (BE_E_STORAGE for bad SQL, BE_E_BUSY,
 *         ...), wrapped so the message reads "migration <version> (<name>)
 *         failed: ..." with the driver error as cause and a field error
 *         "version"; BE_E_NOMEM.
 */
BE_API int be_migrator_apply(int64_t *out_version, be_migrator *m, be_conn *conn, be_error **err);

/**
 * The database's schema version as the default record table,
 * schema_migrations, holds it (be_migrator_version() reads a migrator's
 * own table). Whether the table exists is asked of the driver
 * (be_driver.table_exists), or else of the standard
 * information_schema.tables. Thread-safety: as conn.
 *
 * @param out_version  receives the highest version in schema_migrations,
 *                     0 when the table is missing or empty; not NULL.
 * @param conn         the connection; not NULL.
 * @param err          receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (NULL) or a driver error.
 */
BE_API int be_migrator_current_version(int64_t *out_version, be_conn *conn, be_error **err);

/**
 * The version m's record table holds: like be_migrator_current_version()
 * on the table be_migrator_set_table() named. Thread-safety: safe while
 * no thread configures m; conn as usual.
 *
 * @param out_version  receives the highest version recorded, 0 when the
 *                     table is missing or empty; not NULL.
 * @param m            the migrator; not NULL.
 * @param conn         the connection; not NULL.
 * @param err          receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (NULL) or a driver error.
 */
BE_API int be_migrator_version(int64_t *out_version, const be_migrator *m, be_conn *conn,
                               be_error **err);

/**
 * The highest registered version. Thread-safety: safe while no thread adds.
 *
 * @param m  the migrator, or NULL.
 * @return the version; 0 when none is registered or m is NULL.
 */
BE_API int64_t be_migrator_latest_version(const be_migrator *m);

/**
 * Number of registered migrations. Thread-safety: safe while no thread
 * adds.
 *
 * @param m  the migrator, or NULL.
 * @return the count; 0 for NULL.
 */
BE_API size_t be_migrator_count(const be_migrator *m);

/**
 * Free a migrator.
 *
 * @param m  the migrator, or NULL (a no-op).
 */
BE_API void be_migrator_free(be_migrator *m);

BE_END_DECLS

#endif /* BACKEND_MIGRATE_H */
