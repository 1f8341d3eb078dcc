/* SPDX-License-Identifier: MIT */
/*
 * The services' tables. Times are int64 nanoseconds (be_clock wall time).
 * A released migration is never edited: schema changes are new migrations.
 * The SQL names the library's tables, indexes and triggers as {name}: each
 * migration is expanded with the app's table prefix (svc_catalog.h) when
 * it is registered.
 */
#include <backend/migrate.h>

#include "alloc.h"
#include "migrate.h"
#include "svc_catalog.h"
#include "svc_schema.h"

/* Migration 5's pieces: the parameters of a stored argon2id hash string h
 * (SQLite's CAST reads the leading integer), and the trigger statements
 * that count NEW's hash and uncount OLD's (each only for an argon2id hash;
 * a pair whose count reaches 0 is dropped). */
#define PW_IS_ARGON2ID(h) "substr(" h ", 1, 10) = '$argon2id$'"
#define PW_OPS(h) "CAST(substr(" h ", instr(" h ", ',t=') + 3) AS INTEGER)"
#define PW_MEM(h) "CAST(substr(" h ", instr(" h ", '$m=') + 3) AS INTEGER)"
#define PW_COUNT_NEW                                                            \
  "INSERT INTO {password_hash_params} (opslimit, memlimit_kib, hashes)"         \
  " SELECT " PW_OPS("NEW.password_hash") ", " PW_MEM("NEW.password_hash") ", 1" \
                                                                          " WHERE " PW_IS_ARGON2ID("NEW.password_hash") " ON CONFLICT (opslimit, memlimit_kib) DO UPDATE SET hashes = hashes + 1;"
#define PW_UNCOUNT_OLD                                                                                                                                \
  "UPDATE {password_hash_params} SET hashes = hashes - 1"                                                                                             \
  " WHERE " PW_IS_ARGON2ID("OLD.password_hash") " AND opslimit = " PW_OPS("OLD.password_hash") " AND memlimit_kib = " PW_MEM("OLD.password_hash") ";" \
                                                                                                                                                  "DELETE FROM {password_hash_params} WHERE hashes <= 0;"

static const struct {
  int64_t version;
  const char *name;
  const char *sql;
} migrations[] = {
  {1, "users",
   "CREATE TABLE {users} ("
   /* AUTOINCREMENT: a deleted user's id is never handed out again, so
    * audit rows, host rows and outside references to it never start
    * pointing at a new account. */
   "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
   "  email TEXT NOT NULL UNIQUE," /* normalised: trimmed, lower-case */
   "  name TEXT NOT NULL,"
   "  bio TEXT NOT NULL DEFAULT '',"
   "  extra TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(extra))," /* host-owned JSON */
   "  status INTEGER NOT NULL DEFAULT 0,"                          /* 0 active, 1 disabled */
   "  password_hash TEXT,"                                         /* crypto_pwhash_str output, NULL = no password */
   "  failed_logins INTEGER NOT NULL DEFAULT 0,"
   "  locked_until INTEGER NOT NULL DEFAULT 0,"
   "  created_at INTEGER NOT NULL,"
   "  updated_at INTEGER NOT NULL"
   ");"},
  {2, "sessions",
   "CREATE TABLE {sessions} ("
   "  token_hash BLOB PRIMARY KEY," /* BLAKE2b-256 of the 32-byte token */
   "  user_id INTEGER NOT NULL REFERENCES {users}(id) ON DELETE CASCADE,"
   "  created_at INTEGER NOT NULL,"
   "  last_seen_at INTEGER NOT NULL,"
   "  expires_at INTEGER NOT NULL," /* absolute expiry */
   "  revoked INTEGER NOT NULL DEFAULT 0"
   ");"
   "CREATE INDEX {sessions_user} ON {sessions}(user_id);"
   "CREATE TABLE {password_resets} ("
   "  token_hash BLOB PRIMARY KEY,"
   "  user_id INTEGER NOT NULL REFERENCES {users}(id) ON DELETE CASCADE,"
   "  created_at INTEGER NOT NULL,"
   "  expires_at INTEGER NOT NULL,"
   "  used INTEGER NOT NULL DEFAULT 0"
   ");"
   "CREATE INDEX {password_resets_user} ON {password_resets}(user_id);"},
  {3, "permissions",
   "CREATE TABLE {roles} ("
   "  id INTEGER PRIMARY KEY AUTOINCREMENT," /* ids never reused (audit rows name them) */
   "  name TEXT NOT NULL UNIQUE"
   ");"
   "CREATE TABLE {role_permissions} ("
   "  role_id INTEGER NOT NULL REFERENCES {roles}(id) ON DELETE CASCADE,"
   "  permission TEXT NOT NULL,"
   "  PRIMARY KEY (role_id, permission)"
   ");"
   "CREATE TABLE {user_roles} ("
   "  user_id INTEGER NOT NULL REFERENCES {users}(id) ON DELETE CASCADE,"
   "  role_id INTEGER NOT NULL REFERENCES {roles}(id) ON DELETE CASCADE,"
   "  PRIMARY KEY (user_id, role_id)"
   ");"
   "CREATE INDEX {user_roles_role} ON {user_roles}(role_id);"
   /* bumped in the same transaction as every grant or revoke */
   "CREATE TABLE {auth_epoch} (id INTEGER PRIMARY KEY CHECK (id = 1), epoch INTEGER NOT NULL);"
   "INSERT INTO {auth_epoch} (id, epoch) VALUES (1, 1);"},
  {4, "audit_log",
   "CREATE TABLE {audit_log} ("
   "  id INTEGER PRIMARY KEY,"
   "  actor_id INTEGER NOT NULL," /* 0 = the system */
   "  action TEXT NOT NULL,"      /* e.g. user.update */
   "  target_type TEXT NOT NULL," /* e.g. user */
   "  target_id INTEGER NOT NULL,"
   "  at INTEGER NOT NULL,"
   "  details TEXT NOT NULL CHECK (json_valid(details)),"
   "  prev_hash BLOB NOT NULL," /* hash of the previous row (zeros first) */
   "  hash BLOB NOT NULL"       /* BLAKE2b-256 over this row and prev_hash */
   ");"
   "CREATE INDEX {audit_actor_at} ON {audit_log}(actor_id, at);"
   "CREATE INDEX {audit_target_at} ON {audit_log}(target_type, target_id, at);"},
  {5, "password_resets_decoys",
   /* user_id may be NULL: a reset request for an email without an active
    * account stores a used row for no user (purged like any used one),
    * so every request runs the same INSERT (auth_reset.c). */
   "CREATE TABLE {password_resets_v5} ("
   "  token_hash BLOB PRIMARY KEY,"
   "  user_id INTEGER REFERENCES {users}(id) ON DELETE CASCADE,"
   "  created_at INTEGER NOT NULL,"
   "  expires_at INTEGER NOT NULL,"
   "  used INTEGER NOT NULL DEFAULT 0"
   ");"
   "INSERT INTO {password_resets_v5} (token_hash, user_id, created_at, expires_at, used)"
   "  SELECT token_hash, user_id, created_at, expires_at, used FROM {password_resets};"
   "DROP TABLE {password_resets};"
   "ALTER TABLE {password_resets_v5} RENAME TO {password_resets};"
   "CREATE INDEX {password_resets_user} ON {password_resets}(user_id);"},
  {6, "audit_key",
   /* One row when the chain is keyed (backend/audit.h, "Keyed chain"). */
   "CREATE TABLE {audit_key} ("
   "  id INTEGER PRIMARY KEY CHECK (id = 1),"
   "  keyed_from INTEGER NOT NULL," /* the first row hashed with the key */
   "  key_check BLOB NOT NULL"      /* keyed BLAKE2b-256 over keyed_from */
   ");"},
  {7, "session_ids",
   /* Sessions get a stable id, so a user's sessions can be listed and one
    * ended by id without its token (backend/auth.h). AUTOINCREMENT: an
    * ended session's id never names a new one. */
   "CREATE TABLE {sessions_new} ("
   "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
   "  token_hash BLOB NOT NULL UNIQUE," /* BLAKE2b-256 of the 32-byte token */
   "  user_id INTEGER NOT NULL REFERENCES {users}(id) ON DELETE CASCADE,"
   "  created_at INTEGER NOT NULL," /* the login */
   "  last_seen_at INTEGER NOT NULL,"
   "  expires_at INTEGER NOT NULL," /* absolute expiry */
   "  revoked INTEGER NOT NULL DEFAULT 0"
   ");"
   "INSERT INTO {sessions_new} (token_hash, user_id, created_at, last_seen_at, expires_at, revoked)"
   "  SELECT token_hash, user_id, created_at, last_seen_at, expires_at, revoked FROM {sessions}"
   "  ORDER BY created_at;"
   "DROP TABLE {sessions};"
   "ALTER TABLE {sessions_new} RENAME TO {sessions};"
   "CREATE INDEX {sessions_user} ON {sessions}(user_id);"},
  /* How many stored password hashes use each argon2id parameter pair
   * ($argon2id$v=19$m=<KiB>,t=<ops>,p=1$...), kept by triggers whoever
   * writes users (the library, a host import, a delete), so an unknown
   * email's login can verify a dummy as expensive as the most expensive
   * stored hash (auth.c). */
  {8, "password_hash_params",
   "CREATE TABLE {password_hash_params} ("
   "  opslimit INTEGER NOT NULL,"
   "  memlimit_kib INTEGER NOT NULL,"
   "  hashes INTEGER NOT NULL,"
   "  PRIMARY KEY (opslimit, memlimit_kib)"
   ") WITHOUT ROWID;"
   "INSERT INTO {password_hash_params} (opslimit, memlimit_kib, hashes)"
   "  SELECT " PW_OPS("password_hash") ", " PW_MEM("password_hash") ", count(*) FROM {users}"
                                                                    "  WHERE " PW_IS_ARGON2ID("password_hash") " GROUP BY 1, 2;"
                                                                                                               "CREATE TRIGGER {password_hash_params_insert} AFTER INSERT ON {users}"
                                                                                                               "  WHEN " PW_IS_ARGON2ID("NEW.password_hash") " BEGIN " PW_COUNT_NEW " END;"
                                                                                                                                                             "CREATE TRIGGER {password_hash_params_delete} AFTER DELETE ON {users}"
                                                                                                                                                             "  WHEN " PW_IS_ARGON2ID("OLD.password_hash") " BEGIN " PW_UNCOUNT_OLD " END;"
                                                                                                                                                                                                           "CREATE TRIGGER {password_hash_params_update} AFTER UPDATE OF password_hash ON {users}"
                                                                                                                                                                                                           "  WHEN OLD.password_hash IS NOT NEW.password_hash BEGIN " PW_UNCOUNT_OLD " " PW_COUNT_NEW " END;"},
  /* The pepper a password hash was keyed with (backend/auth.h, "Pepper"):
   * its id, never the pepper. */
  {9, "password_pepper_id",
   "ALTER TABLE {users} ADD COLUMN password_pepper_id INTEGER NOT NULL DEFAULT 0;"},
  /* PostgreSQL's JSON check function is replaced (see there); SQLite's
   * JSON check never raised: nothing to do, the version kept in step. */
  {10, "json_check_never_raises", "SELECT 1;"},
};

/* PostgreSQL's migrations: the same versions and names, the same tables
 * in its dialect. 64-bit integers (times are nanoseconds), BYTEA for
 * blobs, identity columns for AUTOINCREMENT (never reused either), the
 * JSON checks through jsonb (text that is not JSON fails the cast:
 * SQLSTATE 22P02, a validation error), and the hash-parameter counts kept
 * by a PL/pgSQL trigger function. */
#define PG_PW_IS_ARGON2ID(h) "substr(" h ", 1, 10) = '$argon2id$'"
#define PG_PW_OPS(h) "CAST(substring(" h " from ',t=([0-9]+)') AS BIGINT)"
#define PG_PW_MEM(h) "CAST(substring(" h " from '[$]m=([0-9]+)') AS BIGINT)"

static const struct {
  int64_t version;
  const char *name;
  const char *sql;
} pg_migrations[] = {
  {1, "users",
   /* 1 when t is JSON text holding an object, else 0, without raising:
    * a failed statement would abort the caller's transaction */
   "CREATE FUNCTION {json_object_check}(t text) RETURNS integer LANGUAGE plpgsql IMMUTABLE AS $fn$"
   " BEGIN RETURN CASE WHEN jsonb_typeof(t::jsonb) = 'object' THEN 1 ELSE 0 END;"
   " EXCEPTION WHEN invalid_text_representation THEN RETURN 0; END $fn$;"
   "CREATE TABLE {users} ("
   "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
   "  email TEXT NOT NULL UNIQUE,"
   "  name TEXT NOT NULL,"
   "  bio TEXT NOT NULL DEFAULT '',"
   "  extra TEXT NOT NULL DEFAULT '{}' CHECK (CAST(extra AS jsonb) IS NOT NULL),"
   "  status INTEGER NOT NULL DEFAULT 0,"
   "  password_hash TEXT,"
   "  failed_logins BIGINT NOT NULL DEFAULT 0,"
   "  locked_until BIGINT NOT NULL DEFAULT 0,"
   "  created_at BIGINT NOT NULL,"
   "  updated_at BIGINT NOT NULL"
   ");"},
  {2, "sessions",
   "CREATE TABLE {sessions} ("
   "  token_hash BYTEA PRIMARY KEY,"
   "  user_id BIGINT NOT NULL REFERENCES {users}(id) ON DELETE CASCADE,"
   "  created_at BIGINT NOT NULL,"
   "  last_seen_at BIGINT NOT NULL,"
   "  expires_at BIGINT NOT NULL,"
   "  revoked INTEGER NOT NULL DEFAULT 0"
   ");"
   "CREATE INDEX {sessions_user} ON {sessions}(user_id);"
   "CREATE TABLE {password_resets} ("
   "  token_hash BYTEA PRIMARY KEY,"
   "  user_id BIGINT NOT NULL REFERENCES {users}(id) ON DELETE CASCADE,"
   "  created_at BIGINT NOT NULL,"
   "  expires_at BIGINT NOT NULL,"
   "  used INTEGER NOT NULL DEFAULT 0"
   ");"
   "CREATE INDEX {password_resets_user} ON {password_resets}(user_id);"},
  {3, "permissions",
   "CREATE TABLE {roles} ("
   "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
   "  name TEXT NOT NULL UNIQUE"
   ");"
   "CREATE TABLE {role_permissions} ("
   "  role_id BIGINT NOT NULL REFERENCES {roles}(id) ON DELETE CASCADE,"
   "  permission TEXT NOT NULL,"
   "  PRIMARY KEY (role_id, permission)"
   ");"
   "CREATE TABLE {user_roles} ("
   "  user_id BIGINT NOT NULL REFERENCES {users}(id) ON DELETE CASCADE,"
   "  role_id BIGINT NOT NULL REFERENCES {roles}(id) ON DELETE CASCADE,"
   "  PRIMARY KEY (user_id, role_id)"
   ");"
   "CREATE INDEX {user_roles_role} ON {user_roles}(role_id);"
   "CREATE TABLE {auth_epoch} (id INTEGER PRIMARY KEY CHECK (id = 1), epoch BIGINT NOT NULL);"
   "INSERT INTO {auth_epoch} (id, epoch) VALUES (1, 1);"},
  {4, "audit_log",
   "CREATE TABLE {audit_log} ("
   "  id BIGINT PRIMARY KEY,"
   "  actor_id BIGINT NOT NULL,"
   "  action TEXT NOT NULL,"
   "  target_type TEXT NOT NULL,"
   "  target_id BIGINT NOT NULL,"
   "  at BIGINT NOT NULL,"
   "  details TEXT NOT NULL CHECK (CAST(details AS jsonb) IS NOT NULL),"
   "  prev_hash BYTEA NOT NULL,"
   "  hash BYTEA NOT NULL"
   ");"
   "CREATE INDEX {audit_actor_at} ON {audit_log}(actor_id, at);"
   "CREATE INDEX {audit_target_at} ON {audit_log}(target_type, target_id, at);"},
  {5, "password_resets_decoys",
   "ALTER TABLE {password_resets} ALTER COLUMN user_id DROP NOT NULL;"},
  {6, "audit_key",
   "CREATE TABLE {audit_key} ("
   "  id INTEGER PRIMARY KEY CHECK (id = 1),"
   "  keyed_from BIGINT NOT NULL,"
   "  key_check BYTEA NOT NULL"
   ");"},
  {7, "session_ids",
   "ALTER TABLE {sessions} DROP CONSTRAINT {sessions}_pkey;"
   "ALTER TABLE {sessions} ADD COLUMN id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY;"
   "ALTER TABLE {sessions} ADD UNIQUE (token_hash);"},
  {8, "password_hash_params",
   "CREATE TABLE {password_hash_params} ("
   "  opslimit BIGINT NOT NULL,"
   "  memlimit_kib BIGINT NOT NULL,"
   "  hashes BIGINT NOT NULL,"
   "  PRIMARY KEY (opslimit, memlimit_kib)"
   ");"
   "INSERT INTO {password_hash_params} (opslimit, memlimit_kib, hashes)"
   "  SELECT " PG_PW_OPS("password_hash") ", " PG_PW_MEM("password_hash") ", count(*) FROM {users}"
                                                                          "  WHERE " PG_PW_IS_ARGON2ID("password_hash") " GROUP BY 1, 2;"
                                                                                                                        "CREATE FUNCTION {password_hash_params_count}() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN"
                                                                                                                        "  IF TG_OP <> 'INSERT' AND " PG_PW_IS_ARGON2ID("OLD.password_hash") " THEN"
                                                                                                                                                                                             "    UPDATE {password_hash_params} SET hashes = hashes - 1"
                                                                                                                                                                                             "     WHERE opslimit = " PG_PW_OPS("OLD.password_hash") "       AND memlimit_kib = " PG_PW_MEM("OLD.password_hash") ";"
                                                                                                                                                                                                                                                                                                                 "    DELETE FROM {password_hash_params} WHERE hashes <= 0;"
                                                                                                                                                                                                                                                                                                                 "  END IF;"
                                                                                                                                                                                                                                                                                                                 "  IF TG_OP <> 'DELETE' AND " PG_PW_IS_ARGON2ID("NEW.password_hash") " THEN"
                                                                                                                                                                                                                                                                                                                                                                                      "    INSERT INTO {password_hash_params} (opslimit, memlimit_kib, hashes)"
                                                                                                                                                                                                                                                                                                                                                                                      "    VALUES (" PG_PW_OPS("NEW.password_hash") ", " PG_PW_MEM("NEW.password_hash") ", 1)"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                        "    ON CONFLICT (opslimit, memlimit_kib) DO UPDATE SET hashes = {password_hash_params}.hashes + 1;"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                        "  END IF;"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                        "  RETURN NULL;"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                        " END $fn$;"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                        "CREATE TRIGGER {password_hash_params_insert} AFTER INSERT ON {users}"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                        "  FOR EACH ROW EXECUTE FUNCTION {password_hash_params_count}();"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                        "CREATE TRIGGER {password_hash_params_delete} AFTER DELETE ON {users}"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                        "  FOR EACH ROW EXECUTE FUNCTION {password_hash_params_count}();"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                        "CREATE TRIGGER {password_hash_params_update} AFTER UPDATE OF password_hash ON {users}"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                        "  FOR EACH ROW WHEN (OLD.password_hash IS DISTINCT FROM NEW.password_hash)"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                        "  EXECUTE FUNCTION {password_hash_params_count}();"},
  {9, "password_pepper_id",
   "ALTER TABLE {users} ADD COLUMN password_pepper_id INTEGER NOT NULL DEFAULT 0;"},
  /* Migration 1's JSON check caught only 22P02, so text jsonb refuses
   * otherwise raised and aborted the caller's transaction: \u0000 (22P05),
   * nesting past the stack depth (54001). Any data exception or program
   * limit now answers 0 (not an object). */
  {10, "json_check_never_raises",
   "CREATE OR REPLACE FUNCTION {json_object_check}(t text) RETURNS integer LANGUAGE plpgsql"
   " IMMUTABLE AS $fn$"
   " BEGIN RETURN CASE WHEN jsonb_typeof(t::jsonb) = 'object' THEN 1 ELSE 0 END;"
   " EXCEPTION WHEN data_exception OR program_limit_exceeded THEN RETURN 0; END $fn$;"},
};

static int add_one(struct be_migrator *m, int64_t version, const char *name, const char *sql,
                   const char *prefix, be_error **err) {
  char *text = NULL;
  int rc = be__svc_expand(&text, sql, prefix, err);
  if (rc == BE_OK) rc = be_migrator_add(m, version, name, text, err);
  be__free(text);
  return rc;
}

int be__svc_schema_register(struct be_migrator *m, const char *prefix, int32_t dialect,
                            be_error **err) {
  char *text = NULL;
  int rc = be__svc_expand(&text, "{schema_migrations}", prefix, err);
  if (rc == BE_OK) rc = be__migrator_set_table_folded(m, text, err);
  be__free(text);
  if (dialect == BE__DIALECT_POSTGRES) {
    for (size_t i = 0; i < sizeof pg_migrations / sizeof pg_migrations[0] && rc == BE_OK; i++)
      rc = add_one(m, pg_migrations[i].version, pg_migrations[i].name, pg_migrations[i].sql, prefix,
                   err);
    return rc;
  }
  for (size_t i = 0; i < sizeof migrations / sizeof migrations[0] && rc == BE_OK; i++)
    rc = add_one(m, migrations[i].version, migrations[i].name, migrations[i].sql, prefix, err);
  return rc;
}
