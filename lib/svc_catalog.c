/* SPDX-License-Identifier: MIT */
/* The services' SQL templates and their expansion; see svc_catalog.h. */
#include "svc_catalog.h"

#include <string.h>

#include "alloc.h"
#include "error.h"
#include "strbuf.h"

/* Every table, index and trigger the library makes (the migrations'
 * intermediate tables too), and its migration record. A template may
 * name these, and only these, in braces. */
static const char *const library_names[] = {
  "users",
  "user_changes", /* a notification channel, not a table */
  "sessions",
  "sessions_new",
  "sessions_user",
  "password_resets",
  "password_resets_v5",
  "password_resets_user",
  "roles",
  "role_permissions",
  "user_roles",
  "user_roles_role",
  "auth_epoch",
  "audit_log",
  "audit_actor_at",
  "audit_target_at",
  "audit_key",
  "password_hash_params",
  "password_hash_params_insert",
  "password_hash_params_delete",
  "password_hash_params_update",
  "password_hash_params_count",
  "json_object_check",
  "schema_migrations",
};

/* The columns of a user as user.c reads them. */
#define USER_COLS "id, email, name, bio, extra, status, created_at, updated_at"
#define AUTH_USER_COLS "id, status, locked_until, password_hash, email, name, password_pepper_id"
/* A session as auth.c checks it. */
#define SESSION_COLS "s.user_id, s.last_seen_at, s.expires_at, s.revoked"
#define AUDIT_COLS "id, actor_id, action, target_type, target_id, at, details"

static const char *const templates[BE__SQL_COUNT] = {
  /* user.c */
  [BE__SQL_USERS_TABLE] = "{users}",
  [BE__SQL_USER_BY_ID] = "SELECT " USER_COLS " FROM {users} WHERE id = ?1",
  [BE__SQL_USER_READ_OLD] = "SELECT " USER_COLS " FROM {users} WHERE id = ?1", /* = USER_BY_ID */
  [BE__SQL_USER_BY_EMAIL] = "SELECT " USER_COLS " FROM {users} WHERE email = ?1",
  [BE__SQL_USER_PAGE] = "SELECT " USER_COLS " FROM {users} WHERE id > ?1 ORDER BY id LIMIT ?2",
  [BE__SQL_USER_EXISTS] = "SELECT 1 FROM {users} WHERE id = ?1",
  [BE__SQL_USER_INSERT] =
    "INSERT INTO {users} (email, name, bio, extra, status, created_at, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
  [BE__SQL_USER_UPDATE_HEAD] = "UPDATE {users} SET updated_at = ?1",
  [BE__SQL_USER_DELETE_SESSIONS] = "DELETE FROM {sessions} WHERE user_id = ?1",
  [BE__SQL_USER_DELETE_RESETS] = "DELETE FROM {password_resets} WHERE user_id = ?1",
  [BE__SQL_USER_DELETE_ROLES] = "DELETE FROM {user_roles} WHERE user_id = ?1",
  [BE__SQL_USER_DELETE] = "DELETE FROM {users} WHERE id = ?1",
  [BE__SQL_USER_CHANNEL] = "{user_changes}",
  /* auth.c */
  [BE__SQL_AUTH_HASH_PARAMS_MAX] =
    "SELECT opslimit, memlimit_kib FROM {password_hash_params} "
    "WHERE opslimit BETWEEN ? AND ? AND memlimit_kib BETWEEN ? AND ? "
    "AND CASE WHEN memlimit_kib > 0 THEN opslimit <= ? / memlimit_kib ELSE FALSE END "
    "ORDER BY opslimit * memlimit_kib DESC, memlimit_kib DESC LIMIT 1",
  [BE__SQL_AUTH_USER_BY_EMAIL] = "SELECT " AUTH_USER_COLS " FROM {users} WHERE email = ?",
  [BE__SQL_AUTH_USER_BY_ID] = "SELECT " AUTH_USER_COLS " FROM {users} WHERE id = ?",
  [BE__SQL_AUTH_FAILURES_READ] = "SELECT failed_logins, locked_until FROM {users} WHERE id = ?",
  [BE__SQL_AUTH_FAILURES_WRITE] =
    "UPDATE {users} SET failed_logins = ?, locked_until = ? WHERE id = ?",
  [BE__SQL_AUTH_LOGIN_UPDATE] =
    "UPDATE {users} SET failed_logins = 0, locked_until = 0, password_hash = ?, "
    "password_pepper_id = ? "
    "WHERE id = ? AND password_hash = ? AND status = 0 AND locked_until <= ?",
  [BE__SQL_AUTH_SESSION_INSERT] =
    "INSERT INTO {sessions} (token_hash, user_id, created_at, last_seen_at, "
    "expires_at) VALUES (?, ?, ?, ?, ?)",
  [BE__SQL_AUTH_SESSION_SLIDE] =
    "UPDATE {sessions} SET last_seen_at = ? WHERE token_hash = ? AND last_seen_at < ?",
  [BE__SQL_AUTH_SESSION_CHECK] =
    "SELECT " SESSION_COLS ", u.status, s.id, s.created_at FROM {sessions} s "
    "JOIN {users} u ON u.id = s.user_id WHERE s.token_hash = ?",
  [BE__SQL_AUTH_SESSION_BY_TOKEN] =
    "SELECT " SESSION_COLS " FROM {sessions} s WHERE s.token_hash = ?",
  [BE__SQL_AUTH_SESSION_OWNER] =
    "SELECT user_id FROM {sessions} WHERE token_hash = ? AND revoked = 0 AND expires_at > ? "
    "AND last_seen_at > ?",
  [BE__SQL_AUTH_SESSION_REVOKE_TOKEN] = "UPDATE {sessions} SET revoked = 1 WHERE token_hash = ?",
  [BE__SQL_AUTH_SESSIONS_REVOKE_KEEP] =
    "UPDATE {sessions} SET revoked = 1 WHERE user_id = ? AND revoked = 0 "
    "AND token_hash <> ?",
  [BE__SQL_AUTH_SESSIONS_REVOKE] =
    "UPDATE {sessions} SET revoked = 1 WHERE user_id = ? AND revoked = 0",
  [BE__SQL_AUTH_RESETS_CONSUME] =
    "UPDATE {password_resets} SET used = 1 WHERE user_id = ? AND used = 0",
  [BE__SQL_AUTH_PASSWORD_REPLACE] = "UPDATE {users} SET password_hash = ?, password_pepper_id = ?, "
                                    "failed_logins = 0, locked_until = 0 "
                                    "WHERE id = ? AND password_hash = ? AND status = 0",
  [BE__SQL_AUTH_PASSWORD_SET] = "UPDATE {users} SET password_hash = ?, password_pepper_id = ?, "
                                "failed_logins = 0, locked_until = 0 "
                                "WHERE id = ? AND (? = 0 OR status = 0)",
  /* auth_reset.c */
  [BE__SQL_RESET_ACCOUNT] = "SELECT id, email, name FROM {users} WHERE email = ? AND status = 0",
  [BE__SQL_RESET_PENDING] = "SELECT count(*) FROM {password_resets} WHERE user_id = ? AND used = 0 "
                            "AND expires_at > ?",
  [BE__SQL_RESET_INSERT] =
    "INSERT INTO {password_resets} (token_hash, user_id, created_at, expires_at, used) "
    "VALUES (?, NULLIF(?, 0), ?, ?, ?)",
  [BE__SQL_RESET_DELETE_TOKEN] = "DELETE FROM {password_resets} WHERE token_hash = ?",
  [BE__SQL_RESET_CONSUME_TOKEN] =
    "UPDATE {password_resets} SET used = 1 WHERE token_hash = ? AND used = 0 "
    "AND expires_at > ? AND user_id = ?",
  [BE__SQL_RESET_ACCOUNT_BY_TOKEN] = "SELECT r.user_id, u.email, u.name FROM {password_resets} r "
                                     "JOIN {users} u ON u.id = r.user_id "
                                     "WHERE r.token_hash = ? AND r.used = 0 AND r.expires_at > ? "
                                     "AND u.status = 0",
  [BE__SQL_PURGE_SESSIONS] = "DELETE FROM {sessions} WHERE revoked <> 0 OR expires_at <= ? "
                             "OR last_seen_at <= ?",
  [BE__SQL_PURGE_RESETS] = "DELETE FROM {password_resets} WHERE used <> 0 OR expires_at <= ?",
  /* auth_session.c: live sessions are not revoked, before their absolute
   * expiry, inside their idle timeout (what be_auth_verify() checks). */
  [BE__SQL_SESSION_LIST] = "SELECT u.id, s.id, s.created_at, s.last_seen_at, s.expires_at "
                           "FROM {users} u LEFT JOIN {sessions} s ON s.user_id = u.id "
                           "AND s.revoked = 0 AND s.expires_at > ?2 AND s.last_seen_at > ?3 "
                           "WHERE u.id = ?1 ORDER BY s.last_seen_at DESC, s.id DESC LIMIT ?4",
  [BE__SQL_SESSION_REVOKED] = "SELECT CASE WHEN revoked <> 0 OR expires_at <= ? OR last_seen_at <= ? "
                              "THEN 1 ELSE 0 END FROM {sessions} WHERE id = ? AND user_id = ?",
  [BE__SQL_SESSION_REVOKE_ID] = "UPDATE {sessions} SET revoked = 1 WHERE id = ?",
  /* permission.c */
  [BE__SQL_PERM_EPOCH_BUMP] = "UPDATE {auth_epoch} SET epoch = epoch + 1 WHERE id = 1",
  [BE__SQL_PERM_EPOCH_READ] = "SELECT epoch FROM {auth_epoch} WHERE id = 1",
  /* No DISTINCT and no ORDER BY: see load_perms() in permission.c. */
  [BE__SQL_PERM_LOAD] = "SELECT rp.permission FROM {users} u"
                        " JOIN {user_roles} ur ON ur.user_id = u.id"
                        " JOIN {role_permissions} rp ON rp.role_id = ur.role_id"
                        " WHERE u.id = ?1 AND u.status = 0",
  [BE__SQL_PERM_ROLE_ID] = "SELECT id FROM {roles} WHERE name = ?1",
  [BE__SQL_PERM_ROLE_INSERT] = "INSERT INTO {roles} (name) VALUES (?1)",
  [BE__SQL_PERM_ROLE_DELETE_USERS] = "DELETE FROM {user_roles} WHERE role_id = ?1",
  [BE__SQL_PERM_ROLE_DELETE_PERMS] = "DELETE FROM {role_permissions} WHERE role_id = ?1",
  [BE__SQL_PERM_ROLE_DELETE] = "DELETE FROM {roles} WHERE id = ?1",
  [BE__SQL_PERM_ASSIGN] =
    "INSERT INTO {user_roles} (user_id, role_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
  [BE__SQL_PERM_UNASSIGN] = "DELETE FROM {user_roles} WHERE user_id = ?1 AND role_id = ?2",
  [BE__SQL_PERM_GRANT] = "INSERT INTO {role_permissions} (role_id, permission) VALUES (?1, ?2)"
                         " ON CONFLICT DO NOTHING",
  [BE__SQL_PERM_REVOKE] = "DELETE FROM {role_permissions} WHERE role_id = ?1 AND permission = ?2",
  [BE__SQL_PERM_USER_PERMISSIONS] = "SELECT DISTINCT rp.permission FROM {users} u"
                                    " JOIN {user_roles} ur ON ur.user_id = u.id"
                                    " JOIN {role_permissions} rp ON rp.role_id = ur.role_id"
                                    " WHERE u.id = ?1 AND u.status = 0 ORDER BY rp.permission",
  [BE__SQL_PERM_USER_ROLES] =
    "SELECT r.name FROM {user_roles} ur JOIN {roles} r ON r.id = ur.role_id"
    " WHERE ur.user_id = ?1 ORDER BY r.name",
  [BE__SQL_PERM_ROLE_PERMISSIONS] = "SELECT permission FROM {role_permissions} WHERE role_id = ?1 "
                                    "ORDER BY permission",
  /* audit.c */
  [BE__SQL_AUDIT_LOCK] = "", /* nothing to run: BEGIN IMMEDIATE holds the write lock */
  [BE__SQL_AUDIT_HEAD] = "SELECT id, hash FROM {audit_log} ORDER BY id DESC LIMIT 1",
  [BE__SQL_AUDIT_INSERT] =
    "INSERT INTO {audit_log} (id, actor_id, action, target_type, target_id, at,"
    " details, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
  [BE__SQL_AUDIT_MAX_ID] = "SELECT coalesce(max(id), 0) FROM {audit_log}",
  [BE__SQL_AUDIT_KEY_ROW] = "SELECT keyed_from, key_check FROM {audit_key} WHERE id = 1",
  [BE__SQL_AUDIT_KEY_EXISTS] = "SELECT 1 FROM {audit_key}",
  [BE__SQL_AUDIT_KEY_INSERT] =
    "INSERT INTO {audit_key} (id, keyed_from, key_check) VALUES (1, ?1, ?2)",
  [BE__SQL_AUDIT_CHAIN] = "SELECT " AUDIT_COLS ", prev_hash, hash FROM {audit_log} ORDER BY id",
  [BE__SQL_AUDIT_QUERY_USER] = "SELECT " AUDIT_COLS " FROM {audit_log}"
                               " WHERE (actor_id = ?1 OR (target_type = 'user' AND target_id = ?1))"
                               " AND at >= ?2 AND at < ?3 AND id < ?4 ORDER BY id DESC LIMIT ?5",
  [BE__SQL_AUDIT_QUERY_ALL] =
    "SELECT " AUDIT_COLS " FROM {audit_log}"
    " WHERE ?1 = ?1 AND at >= ?2 AND at < ?3 AND id < ?4 ORDER BY id DESC LIMIT ?5",
  /* svc_input.c */
  [BE__SQL_JSON_OBJECT] = "SELECT CASE WHEN json_valid(?1) THEN json_type(?1) = 'object' ELSE 0 END",
  [BE__SQL_SETUP_LOCK] = "", /* nothing to run: BEGIN IMMEDIATE holds the write lock */
  [BE__SQL_MIGRATIONS_TABLE] = "{schema_migrations}",
};

/* PostgreSQL's statements where its dialect differs (NULL: the one
 * above). */
static const char *const pg_templates[BE__SQL_COUNT] = {
  [BE__SQL_JSON_OBJECT] = "SELECT {json_object_check}(?1)",
  /* writers of the hash chain one at a time (SQLite's BEGIN IMMEDIATE
   * does it there): the head read after it sees the last commit */
  [BE__SQL_AUDIT_LOCK] = "LOCK TABLE {audit_log} IN SHARE ROW EXCLUSIVE MODE",
  /* apps of several processes opening at once set up one after another
   * (the migrations' CREATE TABLEs would collide), until commit */
  /* concurrent updates of one user read its row one after another, so
   * each audit row's "from" is the previous one's "to" */
  [BE__SQL_USER_READ_OLD] = "SELECT " USER_COLS " FROM {users} WHERE id = ?1 FOR UPDATE",
  /* concurrent failed logins count one after another (SQLite: BEGIN
   * IMMEDIATE); the row lock makes the second read the first's count */
  [BE__SQL_AUTH_FAILURES_READ] =
    "SELECT failed_logins, locked_until FROM {users} WHERE id = ? FOR UPDATE",
  [BE__SQL_SETUP_LOCK] = "SELECT 1 FROM (SELECT pg_advisory_xact_lock("
                         "hashtext('libbackend setup {schema_migrations}'))) AS l",
  /* NULLIF(?, 0) would make the parameter a 32-bit integer */
  [BE__SQL_RESET_INSERT] =
    "INSERT INTO {password_resets} (token_hash, user_id, created_at, expires_at, used) "
    "VALUES (?, NULLIF(CAST(? AS bigint), 0), ?, ?, ?)",
  /* ?1 = ?1: a parameter of no type; say which */
  [BE__SQL_AUDIT_QUERY_ALL] =
    "SELECT " AUDIT_COLS " FROM {audit_log}"
    " WHERE CAST(?1 AS bigint) = ?1 AND at >= ?2 AND at < ?3 AND id < ?4 ORDER BY id DESC LIMIT ?5",
};

int32_t be__svc_dialect(const be_driver *driver) {
  return driver && driver->name && strcmp(driver->name, "postgres") == 0 ? BE__DIALECT_POSTGRES
                                                                         : BE__DIALECT_SQLITE;
}

static int ident_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static int is_library_name(const char *s, size_t n) {
  for (size_t i = 0; i < sizeof library_names / sizeof library_names[0]; i++)
    if (strlen(library_names[i]) == n && memcmp(library_names[i], s, n) == 0) return 1;
  return 0;
}

/* The database's name of a library object: the prefix, then its name. A
 * driver that puts the library's objects elsewhere (a schema) changes
 * this function only. */
static void put_name(be__buf *b, const char *prefix, const char *name, size_t n) {
  be__buf_puts(b, prefix);
  be__buf_append(b, name, n);
}

int be__svc_expand(char **out, const char *tmpl, const char *prefix, be_error **err) {
  *out = NULL;
  be__buf b;
  be__buf_init(&b);
  const char *p = tmpl;
  while (*p != '\0') {
    size_t n = 0;
    while (p[0] == '{' && ident_char(p[1 + n])) n++;
    if (n == 0 || p[1 + n] != '}') {
      be__buf_append(&b, p++, 1);
      continue;
    }
    if (!is_library_name(p + 1, n)) {
      be__buf_free(&b);
      return be__error_set(err, BE_E_INTERNAL, "SQL template names an unknown object {%.*s}",
                           (int)n, p + 1);
    }
    put_name(&b, prefix, p + 1, n);
    p += n + 2;
  }
  be__buf_append(&b, "", 1);
  if (b.failed) {
    be__buf_free(&b);
    return be__error_oom(err);
  }
  *out = b.data;
  return BE_OK;
}

/* Statement i of the catalog in dialect, expanded with prefix, as a handle. */
static int catalog_entry(be_sql **out, int i, const char *prefix, int32_t dialect, be_error **err) {
  const char *t = dialect == BE__DIALECT_POSTGRES && pg_templates[i] ? pg_templates[i] : templates[i];
  if (t == NULL) return be__error_set(err, BE_E_INTERNAL, "SQL template %d is missing", i);
  char *text = NULL;
  int rc = be__svc_expand(&text, t, prefix, err);
  if (rc == BE_OK) rc = be_sql_new(out, text, BE_NUL_TERMINATED, err);
  be__free(text);
  return rc;
}

int be__svc_catalog_new(be_sql ***out, const char *prefix, int32_t dialect, be_error **err) {
  *out = be__calloc(BE__SQL_COUNT, sizeof **out);
  if (*out == NULL) return be__error_oom(err);
  for (int i = 0; i < BE__SQL_COUNT; i++) {
    int rc = catalog_entry(&(*out)[i], i, prefix, dialect, err);
    if (rc != BE_OK) {
      be__svc_catalog_free(*out);
      *out = NULL;
      return rc;
    }
  }
  return BE_OK;
}

void be__svc_catalog_free(be_sql **sql) {
  if (sql == NULL) return;
  for (int i = 0; i < BE__SQL_COUNT; i++) be_sql_free(sql[i]);
  be__free(sql);
}
