/* SPDX-License-Identifier: MIT */
/*
 * PermissionService. Why the decision cache can never serve a stale
 * answer:
 *
 * 1. Every change that can alter a decision bumps auth_epoch.epoch in the
 *    same write transaction as the change (and its audit row). So all
 *    committed states that share an epoch value hold the same grants.
 * 2. A cache entry for (E, user) is filled by one statement (one
 *    snapshot) run after E was read, so its data is at least as new as E;
 *    if a change committed in between, the epoch is past E for good and
 *    the key (E, user) is never asked for again.
 * 3. Every check reads the current committed epoch first and looks up
 *    (that epoch, user). After a revoke commits, the epoch has moved, so
 *    no entry filled before the commit has the key a later check asks for.
 *
 * Nothing here depends on in-process state, so this holds across threads,
 * app objects and processes sharing the database. The price is one
 * indexed single-row read per check (a cached prepared statement on a
 * pooled connection, a few microseconds). Entries expire 60 s after they
 * were written (not after their last access, which would keep a hot entry
 * alive for ever) and old epochs simply age out of the LRU.
 */
#include <backend/cache.h>
#include <backend/permission.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "metrics.h"
#include "audit.h"
#include "strbuf.h"
#include "error.h"
#include "permission.h"
#include "svc_catalog.h"
#include "svc_input.h"
#include "svc_sql.h"

#define PERM_CACHE_ENTRIES 10000
#define PERM_CACHE_TTL_MS INT64_C(60000)

struct be__perm {
  be_cache *cache; /* (epoch, user) -> NUL-separated permissions */
};

int be__perm_new(be__perm **out, const be__app_res *res, be_error **err) {
  be__perm *p = be__calloc(1, sizeof *p);
  if (p == NULL) return be__error_oom(err);
  be_cache_options co = BE_CACHE_OPTIONS_INIT;
  co.max_entries = PERM_CACHE_ENTRIES;
  co.default_ttl_ms = PERM_CACHE_TTL_MS;
  co.clock = res->opts.clock;
  int rc = be_cache_new(&p->cache, &co, err);
  if (rc != BE_OK) {
    be__free(p);
    return rc;
  }
  *out = p;
  return BE_OK;
}

void be__perm_free(be__perm *perm) {
  if (perm == NULL) return;
  be_cache_free(perm->cache);
  be__free(perm);
}

int be__perm_bump(const be__app_res *res, be_conn *conn, be_error **err) {
  int64_t changes = 0;
  int rc = be__svc_exec(conn, &changes, err, be__sql(res, BE__SQL_PERM_EPOCH_BUMP), "");
  if (rc == BE_OK && changes != 1)
    rc = be__error_set(err, BE_E_INTERNAL, "auth_epoch row missing");
  return rc;
}

/* ---- names ---- */

static int name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

/* Length of the run of name characters at s[0..len). */
static size_t name_run(const char *s, size_t len) {
  size_t n = 0;
  while (n < len && name_char(s[n])) n++;
  return n;
}

/* A role name or a permission string as the caller gave it: resolved,
 * validated and copied NUL-terminated into out. */
#define ROLE_BUF (BE_PERM_NAME_MAX + 1)
#define PERM_BUF (2 * BE_PERM_NAME_MAX + 2)

static int check_role(const char *role, size_t len, char out[ROLE_BUF], be_error **err) {
  size_t n = 0;
  int rc = be__svc_str(role, len, "role", BE_PERM_NAME_MAX, &n, err);
  if (rc != BE_OK) return rc;
  if (n == 0 || name_run(role, n) != n)
    return be__error_field(err, "role", "must be 1..%d bytes of [A-Za-z0-9_.-]", BE_PERM_NAME_MAX);
  memcpy(out, role, n);
  out[n] = '\0';
  return BE_OK;
}

/* "*", "res:act" or "res:*". */
static int check_perm(const char *perm, size_t len, char out[PERM_BUF], be_error **err) {
  static const char *msg = "must be \"*\", \"resource:action\" or \"resource:*\"";
  size_t n = 0;
  int rc = be__svc_str(perm, len, "permission", PERM_BUF - 1, &n, err);
  if (rc != BE_OK) return rc;
  int ok = n == 1 && perm[0] == '*';
  size_t r = name_run(perm, n);
  if (!ok && r > 0 && r <= BE_PERM_NAME_MAX && r < n && perm[r] == ':') {
    size_t alen = n - r - 1, a = name_run(perm + r + 1, alen);
    ok = (alen == 1 && perm[r + 1] == '*') || (a == alen && a > 0 && a <= BE_PERM_NAME_MAX);
  }
  if (!ok) return be__error_field(err, "permission", "%s", msg);
  memcpy(out, perm, n);
  out[n] = '\0';
  return BE_OK;
}

int32_t be_perm_covers(const char *granted, const char *requested) {
  if (granted == NULL || requested == NULL) return 0;
  if (strcmp(granted, "*") == 0 || strcmp(granted, requested) == 0) return 1;
  size_t gl = strlen(granted);
  /* "res:*" covers "res:<anything>" */
  return gl >= 2 && granted[gl - 1] == '*' && granted[gl - 2] == ':' &&
         strncmp(granted, requested, gl - 1) == 0;
}

/* ---- check ---- */

typedef struct load_ctx {
  const be__app_res *res;
  be_conn *conn;
  int64_t user_id;
} load_ctx;


/* Append the row's permission to the buffer, with its NUL. */
static int add_perm(be_stmt *st, void *ud, be_error **err) {
  (void)err;
  size_t n = 0;
  const char *p = be_stmt_column_text(st, 0, &n);
  if (p) be__buf_append(ud, p, n + 1);
  return BE_OK;
}

static int load_perms(const void *key, size_t klen, be_cache_load *out, void *ud, be_error **err) {
  (void)key;
  (void)klen;
  load_ctx *c = ud;
  be__buf b;
  be__buf_init(&b);
  be__buf_append(&b, "P", 1); /* a non-empty value even with no permission */
  /* The user's permissions (none for a disabled or missing user). No
   * DISTINCT and no ORDER BY in BE__SQL_PERM_LOAD on purpose: either would
   * make SQLite build a temporary B-tree per run, whose allocation and
   * release cost ~300 us here (heap growth and trim); duplicates are
   * harmless for matching. The statement needs no epoch of its own: it
   * runs after the check read epoch E, so it sees a state at least as new
   * as E, and a later check that still reads E proves nothing committed
   * in between. */
  int rc = be__svc_each(c->conn, add_perm, &b, err, be__sql(c->res, BE__SQL_PERM_LOAD), "i",
                        c->user_id);
  if (rc == BE_OK) {
    rc = b.failed ? be__error_oom(err) : be_cache_load_set_value(out, b.data, b.len, BE_CACHE_TTL_DEFAULT, NULL);
    if (rc == BE_E_NOMEM) rc = be__error_oom(err);
  }
  be__buf_free(&b);
  return rc;
}

static int read_epoch(const be__app_res *res, be_conn *conn, int64_t *out, be_error **err) {
  int rc = be__svc_ints(conn, out, 1, err, be__sql(res, BE__SQL_PERM_EPOCH_READ), "");
  if (rc == BE_DONE) return be__error_set(err, BE_E_INTERNAL, "auth_epoch row missing");
  return rc == BE_ROW ? BE_OK : rc;
}

static int perm_check_body(be_app *app, int64_t user_id, const char *permission_in, size_t permission_len,
                           be_error **err) {
  if (app == NULL) return be__error_set(err, BE_E_MISUSE, "be_perm_check: app is NULL");
  char permission[PERM_BUF];
  int rc = be__svc_check_id(user_id, "user_id", err);
  if (rc == BE_OK) rc = check_perm(permission_in, permission_len, permission, err);
  if (rc != BE_OK) return rc;
  be__perm *perm = app->perm;
  be_conn *conn = NULL;
  rc = be__svc_acquire(&app->res, &conn, err);
  if (rc != BE_OK) return rc;
  int64_t epoch = 0;
  be_cache_entry *entry = NULL;
  rc = read_epoch(&app->res, conn, &epoch, err);
  if (rc == BE_OK) {
    char key[48];
    int klen = snprintf(key, sizeof key, "%lld:%lld", (long long)epoch, (long long)user_id);
    load_ctx ctx = {&app->res, conn, user_id};
    rc = be_cache_get_or_load(&entry, NULL, perm->cache, key, (size_t)klen, load_perms, &ctx, err);
  }
  be__svc_release(&app->res, conn);
  if (rc != BE_OK) return rc;
  size_t len = 0;
  const char *v = be_cache_entry_value(entry, &len);
  int allowed = 0;
  for (size_t i = 1; i < len && !allowed;) {
    const char *g = v + i;
    size_t gl = strnlen(g, len - i);
    allowed = be_perm_covers(g, permission);
    i += gl + 1;
  }
  be_cache_entry_release(entry);
  if (!allowed) return be__error_set(err, BE_E_FORBIDDEN, "permission denied: %s", permission);
  return BE_OK;
}

int be_perm_check(be_app *app, int64_t user_id, const char *permission_in, size_t permission_len,
                  be_error **err) {
  BE__OP_RECORD(app, BE_OP_PERM_CHECK, perm_check_body(app, user_id, permission_in, permission_len, err));
}

int be_perm_epoch(int64_t *out_epoch, be_app *app, be_error **err) {
  if (out_epoch == NULL || app == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_perm_epoch: NULL argument");
  be_conn *conn = NULL;
  int rc = be__svc_acquire(&app->res, &conn, err);
  if (rc != BE_OK) return rc;
  rc = read_epoch(&app->res, conn, out_epoch, err);
  be__svc_release(&app->res, conn);
  return rc;
}

/* ---- changes ---- */

enum { OP_ROLE_CREATE,
       OP_ROLE_DELETE,
       OP_GRANT,
       OP_REVOKE,
       OP_ASSIGN,
       OP_UNASSIGN };

typedef struct change {
  be_app *app;
  int op;
  int64_t actor_id;
  int64_t user_id;
  const char *role_in; /* as given */
  size_t role_len;
  const char *perm_in;
  size_t perm_len;
  char role[ROLE_BUF]; /* validated copies */
  char perm[PERM_BUF];
  const char *permission; /* perm, or NULL when the change has none */
  int64_t role_id;        /* out */
} change;

/* A field error on a NOT_FOUND or CONFLICT already in *err. */
static void name_field(be_error **err, const char *field, const char *msg) {
  if (err && *err && !be__error_is_static(*err)) be_error_add_field(*err, field, msg);
}

static int role_id(const be__app_res *res, be_conn *conn, const char *role, int64_t *out,
                   be_error **err) {
  int rc = be__svc_ints(conn, out, 1, err, be__sql(res, BE__SQL_PERM_ROLE_ID), "t", role);
  if (rc == BE_DONE) {
    rc = be__error_set(err, BE_E_NOT_FOUND, "no role named %s", role);
    name_field(err, "role", "does not exist");
  }
  return rc == BE_ROW ? BE_OK : rc;
}

static int user_exists(const be__app_res *res, be_conn *conn, int64_t user_id, be_error **err) {
  int rc = be__svc_first(conn, NULL, NULL, err, be__sql(res, BE__SQL_USER_EXISTS), "i", user_id);
  if (rc == BE_DONE) {
    rc = be__error_set(err, BE_E_NOT_FOUND, "no user with id %lld", (long long)user_id);
    name_field(err, "user_id", "does not exist");
  }
  return rc == BE_ROW ? BE_OK : rc;
}

static int audit(change *c, be_conn *conn, const char *action, const char *ttype, int64_t tid,
                 be_error **err) {
  be__buf b;
  be__buf_init(&b);
  be__buf_puts(&b, "{\"role\":");
  be__buf_json_string(&b, c->role, strlen(c->role));
  if (c->permission) {
    be__buf_puts(&b, ",\"permission\":");
    be__buf_json_string(&b, c->permission, strlen(c->permission));
  }
  if (c->op == OP_ASSIGN || c->op == OP_UNASSIGN) be__buf_printf(&b, ",\"role_id\":%lld", (long long)c->role_id);
  be__buf_puts(&b, "}");
  int rc;
  if (b.failed) rc = be__error_oom(err);
  else {
    be__buf_append(&b, "", 1);
    rc = b.failed ? be__error_oom(err)
                  : be__audit_write(&c->app->res, conn, c->actor_id, action, ttype, tid, b.data, err);
  }
  be__buf_free(&b);
  return rc;
}

/* After a change that altered n rows: the epoch bump and the audit row,
 * or nothing when nothing changed. */
static int changed(change *c, be_conn *conn, int64_t n, const char *action, const char *ttype,
                   int64_t tid, be_error **err) {
  if (n == 0) return BE_OK;
  int rc = be__perm_bump(&c->app->res, conn, err);
  return rc == BE_OK ? audit(c, conn, action, ttype, tid, err) : rc;
}

static int role_create(change *c, be_conn *conn, be_error **err) {
  int rc = be__svc_exec(conn, NULL, err, be__sql(&c->app->res, BE__SQL_PERM_ROLE_INSERT), "t",
                        c->role);
  if (rc == BE_E_CONFLICT) {
    char msg[BE_PERM_NAME_MAX + 16];
    snprintf(msg, sizeof msg, "role %s exists", c->role);
    return be__svc_field_error(rc, err, "role", "already exists", msg);
  }
  if (rc != BE_OK) return rc;
  c->role_id = be_conn_last_insert_id(conn);
  return audit(c, conn, "perm.role_create", "role", c->role_id, err);
}

static int role_delete(change *c, be_conn *conn, be_error **err) {
  static const be__sql_id sqls[] = {BE__SQL_PERM_ROLE_DELETE_USERS, BE__SQL_PERM_ROLE_DELETE_PERMS,
                                    BE__SQL_PERM_ROLE_DELETE};
  int rc = role_id(&c->app->res, conn, c->role, &c->role_id, err);
  for (size_t i = 0; i < sizeof sqls / sizeof sqls[0] && rc == BE_OK; i++)
    rc = be__svc_exec(conn, NULL, err, be__sql(&c->app->res, sqls[i]), "i", c->role_id);
  return rc == BE_OK ? changed(c, conn, 1, "perm.role_delete", "role", c->role_id, err) : rc;
}

/* A link's insert that broke a foreign key: the role (or the user) it
 * was found a moment before was deleted by a transaction that committed
 * in between (PostgreSQL, read committed; SQLite's writes are serial).
 * That is the not-found the lookup would have answered. */
static int deleted_meanwhile(const change *c, int on_user, be_error **err) {
  be_error *cause = err ? *err : NULL;
  if (err) *err = NULL;
  int rc = on_user ? be__error_set(err, BE_E_NOT_FOUND,
                                   "role %s or user %lld was deleted meanwhile", c->role,
                                   (long long)c->user_id)
                   : be__error_set(err, BE_E_NOT_FOUND, "role %s was deleted meanwhile", c->role);
  name_field(err, "role", on_user ? "or the user was deleted meanwhile" : "was deleted meanwhile");
  if (on_user) name_field(err, "user_id", "or the role was deleted meanwhile");
  be_error_free(cause);
  return rc;
}

/* Grant or revoke a permission of a role, assign or unassign a role to a
 * user: the link added or removed, then (when a row changed) the bump and
 * the audit row. */
static int link_change(change *c, be_conn *conn, be_error **err) {
  static const char *const actions[] = {[OP_GRANT] = "perm.grant", [OP_REVOKE] = "perm.revoke", [OP_ASSIGN] = "perm.assign", [OP_UNASSIGN] = "perm.unassign"};
  int on_user = c->op == OP_ASSIGN || c->op == OP_UNASSIGN;
  int adds = c->op == OP_GRANT || c->op == OP_ASSIGN;
  int64_t n = 0;
  const be__app_res *res = &c->app->res;
  int rc = on_user ? user_exists(res, conn, c->user_id, err) : BE_OK;
  if (rc == BE_OK) rc = role_id(res, conn, c->role, &c->role_id, err);
  if (rc == BE_OK && on_user)
    rc = be__svc_exec(conn, &n, err, be__sql(res, adds ? BE__SQL_PERM_ASSIGN : BE__SQL_PERM_UNASSIGN),
                      "ii", c->user_id, c->role_id);
  else if (rc == BE_OK)
    rc = be__svc_exec(conn, &n, err, be__sql(res, adds ? BE__SQL_PERM_GRANT : BE__SQL_PERM_REVOKE),
                      "it", c->role_id, c->permission);
  if (rc == BE_E_VALIDATION && adds) return deleted_meanwhile(c, on_user, err);
  if (rc != BE_OK) return rc;
  return changed(c, conn, n, actions[c->op], on_user ? "user" : "role",
                 on_user ? c->user_id : c->role_id, err);
}

static int change_tx(be_conn *conn, void *ud, be_error **err) {
  change *c = ud;
  switch (c->op) {
    case OP_ROLE_CREATE: return role_create(c, conn, err);
    case OP_ROLE_DELETE: return role_delete(c, conn, err);
    case OP_GRANT:
    case OP_REVOKE:
    case OP_ASSIGN:
    case OP_UNASSIGN: return link_change(c, conn, err);
    default: return be__error_set(err, BE_E_INTERNAL, "unknown permission change");
  }
}

static int run_change(change *c, be_error **err) {
  if (c->app == NULL) return be__error_set(err, BE_E_MISUSE, "permission service: app is NULL");
  int rc = be__svc_check_actor(c->actor_id, err);
  if (rc == BE_OK && (c->op == OP_ASSIGN || c->op == OP_UNASSIGN))
    rc = be__svc_check_id(c->user_id, "user_id", err);
  if (rc == BE_OK) rc = check_role(c->role_in, c->role_len, c->role, err);
  if (rc == BE_OK && (c->op == OP_GRANT || c->op == OP_REVOKE)) {
    rc = check_perm(c->perm_in, c->perm_len, c->perm, err);
    c->permission = c->perm;
  }
  if (rc != BE_OK) return rc;
  return be__svc_write(&c->app->res, change_tx, c, err);
}

static int perm_role_create_body(int64_t *out_role_id, be_app *app, int64_t actor_id, const char *role,
                                 size_t role_len, be_error **err) {
  change c = {.app = app, .op = OP_ROLE_CREATE, .actor_id = actor_id, .role_in = role, .role_len = role_len};
  int rc = run_change(&c, err);
  if (rc == BE_OK && out_role_id) *out_role_id = c.role_id;
  return rc;
}

int be_perm_role_create(int64_t *out_role_id, be_app *app, int64_t actor_id, const char *role,
                        size_t role_len, be_error **err) {
  BE__OP_RECORD(app, BE_OP_PERM_ROLE_CREATE, perm_role_create_body(out_role_id, app, actor_id, role, role_len, err));
}

static int perm_role_delete_body(be_app *app, int64_t actor_id, const char *role, size_t role_len,
                                 be_error **err) {
  change c = {.app = app, .op = OP_ROLE_DELETE, .actor_id = actor_id, .role_in = role, .role_len = role_len};
  return run_change(&c, err);
}

int be_perm_role_delete(be_app *app, int64_t actor_id, const char *role, size_t role_len,
                        be_error **err) {
  BE__OP_RECORD(app, BE_OP_PERM_ROLE_DELETE, perm_role_delete_body(app, actor_id, role, role_len, err));
}

static int perm_role_grant_body(be_app *app, int64_t actor_id, const char *role, size_t role_len,
                                const char *permission, size_t permission_len, be_error **err) {
  change c = {.app = app, .op = OP_GRANT, .actor_id = actor_id, .role_in = role, .role_len = role_len, .perm_in = permission, .perm_len = permission_len};
  return run_change(&c, err);
}

int be_perm_role_grant(be_app *app, int64_t actor_id, const char *role, size_t role_len,
                       const char *permission, size_t permission_len, be_error **err) {
  BE__OP_RECORD(app, BE_OP_PERM_ROLE_GRANT, perm_role_grant_body(app, actor_id, role, role_len, permission, permission_len, err));
}

static int perm_role_revoke_body(be_app *app, int64_t actor_id, const char *role, size_t role_len,
                                 const char *permission, size_t permission_len, be_error **err) {
  change c = {.app = app, .op = OP_REVOKE, .actor_id = actor_id, .role_in = role, .role_len = role_len, .perm_in = permission, .perm_len = permission_len};
  return run_change(&c, err);
}

int be_perm_role_revoke(be_app *app, int64_t actor_id, const char *role, size_t role_len,
                        const char *permission, size_t permission_len, be_error **err) {
  BE__OP_RECORD(app, BE_OP_PERM_ROLE_REVOKE, perm_role_revoke_body(app, actor_id, role, role_len, permission, permission_len, err));
}

static int perm_user_assign_body(be_app *app, int64_t actor_id, int64_t user_id, const char *role,
                                 size_t role_len, be_error **err) {
  change c = {.app = app, .op = OP_ASSIGN, .actor_id = actor_id, .user_id = user_id, .role_in = role, .role_len = role_len};
  return run_change(&c, err);
}

int be_perm_user_assign(be_app *app, int64_t actor_id, int64_t user_id, const char *role,
                        size_t role_len, be_error **err) {
  BE__OP_RECORD(app, BE_OP_PERM_USER_ASSIGN, perm_user_assign_body(app, actor_id, user_id, role, role_len, err));
}

static int perm_user_unassign_body(be_app *app, int64_t actor_id, int64_t user_id, const char *role,
                                   size_t role_len, be_error **err) {
  change c = {.app = app, .op = OP_UNASSIGN, .actor_id = actor_id, .user_id = user_id, .role_in = role, .role_len = role_len};
  return run_change(&c, err);
}

int be_perm_user_unassign(be_app *app, int64_t actor_id, int64_t user_id, const char *role,
                          size_t role_len, be_error **err) {
  BE__OP_RECORD(app, BE_OP_PERM_USER_UNASSIGN, perm_user_unassign_body(app, actor_id, user_id, role, role_len, err));
}

/* ---- lists ---- */

struct be_perm_list {
  size_t count;
  char **items;
};

void be_perm_list_free(be_perm_list *list) {
  if (list == NULL) return;
  for (size_t i = 0; i < list->count; i++) be__free(list->items[i]);
  be__free(list->items);
  be__free(list);
}

size_t be_perm_list_count(const be_perm_list *l) { return l ? l->count : 0; }
const char *be_perm_list_get(const be_perm_list *l, size_t i) {
  return (l && i < l->count) ? l->items[i] : NULL;
}

static int add_item(be_stmt *st, void *ud, be_error **err) {
  be_perm_list *l = ud;
  if ((l->count & (l->count - 1)) == 0) { /* 0, 1, 2, 4, ...: full */
    char **grown = be__realloc(l->items, (l->count ? l->count * 2 : 1) * sizeof *grown);
    if (grown == NULL) return be__error_oom(err);
    l->items = grown;
  }
  l->items[l->count] = be__svc_dup_text(st, 0);
  if (l->items[l->count] == NULL) return be__error_oom(err);
  l->count++;
  return BE_OK;
}

/* Column 0 of sql (parameter ?1 = id) on conn, as a list. */
static int query_list(be_perm_list **out, be_conn *conn, const char *sql, int64_t id,
                      be_error **err) {
  be_perm_list *l = be__calloc(1, sizeof *l);
  if (l == NULL) return be__error_oom(err);
  int rc = be__svc_each(conn, add_item, l, err, sql, "i", id);
  if (rc != BE_OK) {
    be_perm_list_free(l);
    return rc;
  }
  *out = l;
  return BE_OK;
}

/* The list of a user's permissions or roles: a user id argument, the
 * list on a pooled connection. */
static int user_list(be_perm_list **out, be_app *app, int64_t user_id, const char *what,
                     be__sql_id sql, be_error **err) {
  if (out == NULL || app == NULL)
    return be__error_set(err, BE_E_MISUSE, "%s: NULL argument", what);
  *out = NULL;
  int rc = be__svc_check_id(user_id, "user_id", err);
  be_conn *conn = NULL;
  if (rc == BE_OK) rc = be__svc_acquire(&app->res, &conn, err);
  if (rc != BE_OK) return rc;
  rc = query_list(out, conn, be__sql(&app->res, sql), user_id, err);
  be__svc_release(&app->res, conn);
  return rc;
}

static int perm_user_permissions_body(be_perm_list **out, be_app *app, int64_t user_id, be_error **err) {
  return user_list(out, app, user_id, "be_perm_user_permissions", BE__SQL_PERM_USER_PERMISSIONS,
                   err);
}

int be_perm_user_permissions(be_perm_list **out, be_app *app, int64_t user_id, be_error **err) {
  BE__OP_RECORD(app, BE_OP_PERM_USER_PERMISSIONS, perm_user_permissions_body(out, app, user_id, err));
}

static int perm_user_roles_body(be_perm_list **out, be_app *app, int64_t user_id, be_error **err) {
  return user_list(out, app, user_id, "be_perm_user_roles", BE__SQL_PERM_USER_ROLES, err);
}

int be_perm_user_roles(be_perm_list **out, be_app *app, int64_t user_id, be_error **err) {
  BE__OP_RECORD(app, BE_OP_PERM_USER_ROLES, perm_user_roles_body(out, app, user_id, err));
}

static int perm_role_permissions_body(be_perm_list **out, be_app *app, const char *role_in,
                                      size_t role_len, be_error **err) {
  if (out == NULL || app == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_perm_role_permissions: NULL argument");
  *out = NULL;
  char role[ROLE_BUF];
  int rc = check_role(role_in, role_len, role, err);
  be_conn *conn = NULL;
  if (rc == BE_OK) rc = be__svc_acquire(&app->res, &conn, err);
  if (rc != BE_OK) return rc;
  /* An unknown role is NOT_FOUND rather than an empty list. */
  int64_t id = 0;
  rc = role_id(&app->res, conn, role, &id, err);
  if (rc == BE_OK)
    rc = query_list(out, conn, be__sql(&app->res, BE__SQL_PERM_ROLE_PERMISSIONS), id, err);
  be__svc_release(&app->res, conn);
  return rc;
}

int be_perm_role_permissions(be_perm_list **out, be_app *app, const char *role_in,
                             size_t role_len, be_error **err) {
  BE__OP_RECORD(app, BE_OP_PERM_ROLE_PERMISSIONS, perm_role_permissions_body(out, app, role_in, role_len, err));
}
