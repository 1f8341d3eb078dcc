/* SPDX-License-Identifier: MIT */
/*
 * A user's sessions, listed and ended one at a time by id (a "where you
 * are logged in" page). A session is shown by its id and times, never by
 * its token (only the token's hash is stored, and that is not shown
 * either). Checking a token and reading its session is auth.c's.
 */
#include "auth.h"
#include "metrics.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "audit.h"
#include "error.h"
#include "svc_catalog.h"
#include "svc_input.h"
#include "svc_time.h"
#include "versioned.h"

void be__auth_session_fill(be_auth_session_info *out, const be__auth *a, int64_t id,
                           int64_t user_id, int64_t created_at, int64_t last_seen_at,
                           int64_t expires_at) {
  int64_t idle_end = be__ns_add(last_seen_at, a->idle_ns);
  out->session_id = id;
  out->user_id = user_id;
  out->created_at_ms = be__svc_ns_to_ms(created_at);
  out->last_used_at_ms = be__svc_ns_to_ms(last_seen_at);
  out->expires_at_ms = be__svc_ns_to_ms(idle_end < expires_at ? idle_end : expires_at);
}

int be_auth_session_info_init(be_auth_session_info *info, uint32_t version) {
  static const be_auth_session_info defaults = BE_AUTH_SESSION_INFO_INIT;
  return be__versioned_init(info, sizeof *info, &defaults, version, BE_AUTH_SESSION_INFO_VERSION);
}

/* ---- listing --------------------------------------------------------- */

struct be_auth_session_list {
  size_t count;
  size_t cap;
  be_auth_session_info *items;
};

typedef struct list_ctx {
  const be__auth *a;
  be_auth_session_list *list;
  int user_found;
} list_ctx;

/* One row: the user's id, then a live session's id, created_at,
 * last_seen_at, expires_at (NULL when the user has none). */
static int add_session(be_stmt *st, void *ud, be_error **err) {
  list_ctx *l = ud;
  be_auth_session_list *list = l->list;
  l->user_found = 1;
  if (be_stmt_column_type(st, 1) == BE_TYPE_NULL) return BE_OK;
  if (list->count == list->cap) {
    size_t cap = list->cap ? list->cap * 2 : 8;
    be_auth_session_info *items = be__realloc(list->items, cap * sizeof *items);
    if (items == NULL) return be__error_oom(err);
    list->items = items;
    list->cap = cap;
  }
  be_auth_session_info *s = &list->items[list->count++];
  be_auth_session_info init = BE_AUTH_SESSION_INFO_INIT;
  *s = init;
  be__auth_session_fill(s, l->a, be_stmt_column_int64(st, 1), be_stmt_column_int64(st, 0),
                        be_stmt_column_int64(st, 2), be_stmt_column_int64(st, 3),
                        be_stmt_column_int64(st, 4));
  return BE_OK;
}

static int auth_list_sessions_body(be_auth_session_list **out, be_app *app, int64_t user_id,
                                   be_error **err) {
  if (out == NULL) return be__error_set(err, BE_E_MISUSE, "be_auth_list_sessions: out is NULL");
  *out = NULL;
  be__auth *a = NULL;
  int rc = be__auth_get(app, &a, err);
  if (rc == BE_OK) rc = be__svc_check_id(user_id, "user_id", err);
  if (rc != BE_OK) return rc;
  be_auth_session_list *list = be__calloc(1, sizeof *list);
  if (list == NULL) return be__error_oom(err);
  list_ctx l = {a, list, 0};
  int64_t now = be__svc_now(a->res);
  /* Live: not revoked, before its absolute expiry, inside its idle
   * timeout (the conditions be_auth_verify() checks). */
  rc = be__svc_each_pooled(a->res, add_session, &l, err, be__sql(a->res, BE__SQL_SESSION_LIST), "iiii",
                           user_id, now, be__ns_sub(now, a->idle_ns),
                           (int64_t)BE_AUTH_SESSIONS_MAX);
  if (rc == BE_OK && !l.user_found)
    rc = be__error_set(err, BE_E_NOT_FOUND, "user %lld not found", (long long)user_id);
  if (rc != BE_OK) {
    be_auth_session_list_free(list);
    return rc;
  }
  *out = list;
  return BE_OK;
}

int be_auth_list_sessions(be_auth_session_list **out, be_app *app, int64_t user_id,
                          be_error **err) {
  BE__OP_RECORD(app, BE_OP_AUTH_LIST_SESSIONS, auth_list_sessions_body(out, app, user_id, err));
}

static const be_auth_session_info *item(const be_auth_session_list *list, size_t i) {
  return (list && i < list->count) ? &list->items[i] : NULL;
}

size_t be_auth_session_list_count(const be_auth_session_list *list) {
  return list ? list->count : 0;
}
int64_t be_auth_session_list_id(const be_auth_session_list *list, size_t i) {
  const be_auth_session_info *s = item(list, i);
  return s ? s->session_id : 0;
}
int64_t be_auth_session_list_created_at_ms(const be_auth_session_list *list, size_t i) {
  const be_auth_session_info *s = item(list, i);
  return s ? s->created_at_ms : 0;
}
int64_t be_auth_session_list_last_used_at_ms(const be_auth_session_list *list, size_t i) {
  const be_auth_session_info *s = item(list, i);
  return s ? s->last_used_at_ms : 0;
}
int64_t be_auth_session_list_expires_at_ms(const be_auth_session_list *list, size_t i) {
  const be_auth_session_info *s = item(list, i);
  return s ? s->expires_at_ms : 0;
}

void be_auth_session_list_free(be_auth_session_list *list) {
  if (list == NULL) return;
  be__free(list->items);
  be__free(list);
}

/* ---- ending one ------------------------------------------------------- */

typedef struct end_ctx {
  be__auth *a;
  int64_t actor_id;
  int64_t user_id;
  int64_t session_id;
  int64_t now;
  int found; /* out: the user has (or had) this session */
} end_ctx;

static int end_tx(be_conn *c, void *ud, be_error **err) {
  end_ctx *e = ud;
  int64_t ended = 0; /* revoked, expired or idle past its timeout */
  int rc = be__svc_ints(c, &ended, 1, err, be__sql(e->a->res, BE__SQL_SESSION_REVOKED), "iiii",
                        e->now, be__ns_sub(e->now, e->a->idle_ns), e->session_id, e->user_id);
  if (rc < 0) return rc;
  e->found = rc == BE_ROW;
  if (!e->found || ended != 0) return BE_OK; /* unknown, or ended already: nothing to write */
  rc = be__svc_exec(c, NULL, err, be__sql(e->a->res, BE__SQL_SESSION_REVOKE_ID), "i",
                    e->session_id);
  if (rc != BE_OK) return rc;
  char details[64];
  snprintf(details, sizeof details, "{\"session_id\":%lld}", (long long)e->session_id);
  return be__audit_write(e->a->res, c, e->actor_id, "auth.session_end", "user", e->user_id,
                         details, err);
}

static int auth_end_session_body(be_app *app, int64_t actor_id, int64_t user_id, int64_t session_id,
                                 be_error **err) {
  be__auth *a = NULL;
  int rc = be__auth_get(app, &a, err);
  if (rc == BE_OK) rc = be__svc_check_actor(actor_id, err);
  if (rc == BE_OK) rc = be__svc_check_id(user_id, "user_id", err);
  if (rc == BE_OK) rc = be__svc_check_id(session_id, "session_id", err);
  if (rc != BE_OK) return rc;
  end_ctx e = {a, actor_id, user_id, session_id, be__svc_now(a->res), 0};
  rc = be__svc_write(a->res, end_tx, &e, err);
  if (rc == BE_OK && !e.found)
    rc = be__error_set(err, BE_E_NOT_FOUND, "session %lld of user %lld not found",
                       (long long)session_id, (long long)user_id);
  return rc;
}

int be_auth_end_session(be_app *app, int64_t actor_id, int64_t user_id, int64_t session_id,
                        be_error **err) {
  BE__OP_RECORD(app, BE_OP_AUTH_END_SESSION, auth_end_session_body(app, actor_id, user_id, session_id, err));
}
