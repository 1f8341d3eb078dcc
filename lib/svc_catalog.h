/* SPDX-License-Identifier: MIT */
/*
 * Internal: the services' SQL, named. Every statement the services run is
 * a template in svc_catalog.c that writes the library's tables, indexes
 * and triggers as {name}; be_app_new() expands the templates once with
 * the app's table prefix (be_app_options.table_prefix, "be_" by default)
 * into res->sql, so a statement's text is fixed for the app's life (the
 * statement cache keys on it) and nothing is formatted per call.
 *
 * be__svc_expand() is the one place that turns a library name into the
 * database's name for it: the migrations (svc_schema.c) and the
 * migration record go through it as well.
 */
#ifndef BE_LIB_SVC_CATALOG_H
#define BE_LIB_SVC_CATALOG_H

#include <backend/error.h>
#include <backend/storage.h>

#include "app_resources.h"

/* The statements, grouped by the service that runs them. */
typedef enum be__sql_id {
  /* user.c */
  BE__SQL_USERS_TABLE, /* the users table's name alone (batch loads) */
  BE__SQL_USER_BY_ID,
  BE__SQL_USER_READ_OLD, /* an update's read of the row it changes (PostgreSQL: locked) */
  BE__SQL_USER_BY_EMAIL,
  BE__SQL_USER_PAGE,
  BE__SQL_USER_EXISTS,
  BE__SQL_USER_INSERT,
  BE__SQL_USER_UPDATE_HEAD, /* "UPDATE users SET updated_at = ?1", the columns appended per call */
  BE__SQL_USER_DELETE_SESSIONS,
  BE__SQL_USER_DELETE_RESETS,
  BE__SQL_USER_DELETE_ROLES,
  BE__SQL_USER_DELETE,
  BE__SQL_USER_CHANNEL, /* the notification channel of committed user changes (svc_notify.h) */
  /* auth.c */
  BE__SQL_AUTH_HASH_PARAMS_MAX,
  BE__SQL_AUTH_USER_BY_EMAIL,
  BE__SQL_AUTH_USER_BY_ID,
  BE__SQL_AUTH_FAILURES_READ,
  BE__SQL_AUTH_FAILURES_WRITE,
  BE__SQL_AUTH_LOGIN_UPDATE,
  BE__SQL_AUTH_SESSION_INSERT,
  BE__SQL_AUTH_SESSION_SLIDE,
  BE__SQL_AUTH_SESSION_CHECK,
  BE__SQL_AUTH_SESSION_BY_TOKEN,
  BE__SQL_AUTH_SESSION_OWNER,
  BE__SQL_AUTH_SESSION_REVOKE_TOKEN,
  BE__SQL_AUTH_SESSIONS_REVOKE_KEEP,
  BE__SQL_AUTH_SESSIONS_REVOKE,
  BE__SQL_AUTH_RESETS_CONSUME,
  BE__SQL_AUTH_PASSWORD_REPLACE,
  BE__SQL_AUTH_PASSWORD_SET,
  /* auth_reset.c */
  BE__SQL_RESET_ACCOUNT,
  BE__SQL_RESET_PENDING,
  BE__SQL_RESET_INSERT,
  BE__SQL_RESET_DELETE_TOKEN,
  BE__SQL_RESET_CONSUME_TOKEN,
  BE__SQL_RESET_ACCOUNT_BY_TOKEN,
  BE__SQL_PURGE_SESSIONS,
  BE__SQL_PURGE_RESETS,
  /* auth_session.c */
  BE__SQL_SESSION_LIST,
  BE__SQL_SESSION_REVOKED,
  BE__SQL_SESSION_REVOKE_ID,
  /* permission.c */
  BE__SQL_PERM_EPOCH_BUMP,
  BE__SQL_PERM_EPOCH_READ,
  BE__SQL_PERM_LOAD,
  BE__SQL_PERM_ROLE_ID,
  BE__SQL_PERM_ROLE_INSERT,
  BE__SQL_PERM_ROLE_DELETE_USERS,
  BE__SQL_PERM_ROLE_DELETE_PERMS,
  BE__SQL_PERM_ROLE_DELETE,
  BE__SQL_PERM_ASSIGN,
  BE__SQL_PERM_UNASSIGN,
  BE__SQL_PERM_GRANT,
  BE__SQL_PERM_REVOKE,
  BE__SQL_PERM_USER_PERMISSIONS,
  BE__SQL_PERM_USER_ROLES,
  BE__SQL_PERM_ROLE_PERMISSIONS,
  /* audit.c */
  BE__SQL_AUDIT_LOCK, /* "" (run nothing) or the statement that serializes chain writers */
  BE__SQL_AUDIT_HEAD,
  BE__SQL_AUDIT_INSERT,
  BE__SQL_AUDIT_MAX_ID,
  BE__SQL_AUDIT_KEY_ROW,
  BE__SQL_AUDIT_KEY_EXISTS,
  BE__SQL_AUDIT_KEY_INSERT,
  BE__SQL_AUDIT_CHAIN,
  BE__SQL_AUDIT_QUERY_USER,
  BE__SQL_AUDIT_QUERY_ALL,
  /* the library's migration record (svc_schema.c) */
  BE__SQL_JSON_OBJECT, /* one int: 1 when ?1 is JSON text holding an object (svc_input.c) */
  BE__SQL_SETUP_LOCK,  /* "" (run nothing) or the statement that serializes apps setting up */
  BE__SQL_MIGRATIONS_TABLE,
  BE__SQL_COUNT
} be__sql_id;

/* SQL dialects: the catalog and the migrations pick their statements by
 * it once, when the app opens. */
#define BE__DIALECT_SQLITE 0
#define BE__DIALECT_POSTGRES 1

/* The dialect of a driver: BE__DIALECT_POSTGRES for the PostgreSQL
 * driver (or a fault driver around it: by name), else SQLite's. */
int32_t be__svc_dialect(const be_driver *driver);

/* *out = tmpl with every {name} of a library object replaced by the name
 * it has in the database (prefix + name). A brace not around a library
 * name is copied as it is ('{}' in a JSON default); {name} of an unknown
 * object is BE_E_INTERNAL (a typo in a template). *out is the caller's
 * (be__free). */
int be__svc_expand(char **out, const char *tmpl, const char *prefix, be_error **err);

/* Expand every statement of dialect with prefix into *out, an array of
 * BE__SQL_COUNT be_sql handles (be__svc_catalog_free()). */
int be__svc_catalog_new(be_sql ***out, const char *prefix, int32_t dialect, be_error **err);
void be__svc_catalog_free(be_sql **sql);

/* The app's handle of statement id (be_conn_prepare_sql finds its cached
 * statement without hashing the text: for the hot reads). */
static inline const be_sql *be__sql_handle(const be__app_res *res, be__sql_id id) {
  return res->sql[id];
}

/* The app's text of statement id. */
static inline const char *be__sql(const be__app_res *res, be__sql_id id) {
  return be_sql_text(res->sql[id], NULL);
}

#endif
