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
};

int be__svc_schema_register(struct be_migrator *m, const char *prefix, be_error **err) {
  char *text = NULL;
  int rc = be__svc_expand(&text, "{schema_migrations}", prefix, err);
  if (rc == BE_OK) rc = be_migrator_set_table(m, text, err);
  be__free(text);
  for (size_t i = 0; i < sizeof migrations / sizeof migrations[0] && rc == BE_OK; i++) {
    rc = be__svc_expand(&text, migrations[i].sql, prefix, err);
    if (rc == BE_OK) rc = be_migrator_add(m, migrations[i].version, migrations[i].name, text, err);
    be__free(text);
    text = NULL;
  }
  return rc;
}
