/* SPDX-License-Identifier: MIT */
/* PermissionService: wildcards, validation, idempotent audited changes,
 * and revokes that hold on the very next check from another thread. */
#include "svc_testutil.h"

#include <pthread.h>

START_TEST(wildcards_and_lists) {
  be_app *app = svc_app_ex(NULL, NULL, 0);
  int64_t u = svc_user(app, "w@x.io", "W");
  int64_t role = 0;
  ck_assert_int_eq(be_perm_role_create(&role, app, 0, "editor", NT, NULL), BE_OK);
  ck_assert_int_gt(role, 0);
  ck_assert_int_eq(be_perm_role_create(NULL, app, 0, "root", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_role_grant(app, 0, "editor", NT, "posts:*", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_role_grant(app, 0, "editor", NT, "comments:read", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_role_grant(app, 0, "root", NT, "*", NT, NULL), BE_OK);
  be_error *e = NULL;
  ck_assert_int_eq(be_perm_check(app, u, "posts:write", NT, &e), BE_E_FORBIDDEN); /* no role yet */
  ck_assert_int_eq(be_error_http_status(e), 403);
  be_error_free(e);
  ck_assert_int_eq(be_perm_user_assign(app, 0, u, "editor", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_check(app, u, "posts:write", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_check(app, u, "posts:delete", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_check(app, u, "posts:*", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_check(app, u, "comments:read", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_check(app, u, "comments:write", NT, NULL), BE_E_FORBIDDEN);
  ck_assert_int_eq(be_perm_check(app, u, "comments:*", NT, NULL), BE_E_FORBIDDEN);
  ck_assert_int_eq(be_perm_check(app, u, "*", NT, NULL), BE_E_FORBIDDEN);
  ck_assert_int_eq(be_perm_check(app, u, "postsx:read", NT, NULL), BE_E_FORBIDDEN);
  ck_assert_int_eq(be_perm_user_assign(app, 0, u, "root", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_check(app, u, "anything:goes", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_check(app, u, "*", NT, NULL), BE_OK);
  ck_assert(be_perm_covers("a:*", "a:b") && !be_perm_covers("a:*", "ab:c") && be_perm_covers("*", "x:y"));
  ck_assert(!be_perm_covers("a:b", "a:*") && !be_perm_covers(NULL, "a:b"));

  be_perm_list *l = NULL;
  ck_assert_int_eq(be_perm_user_permissions(&l, app, u, NULL), BE_OK);
  ck_assert_uint_eq(be_perm_list_count(l), 3);
  ck_assert_str_eq(be_perm_list_get(l, 0), "*");
  ck_assert_str_eq(be_perm_list_get(l, 1), "comments:read");
  ck_assert_str_eq(be_perm_list_get(l, 2), "posts:*");
  ck_assert_ptr_null(be_perm_list_get(l, 3));
  be_perm_list_free(l);
  ck_assert_int_eq(be_perm_user_roles(&l, app, u, NULL), BE_OK);
  ck_assert_uint_eq(be_perm_list_count(l), 2);
  ck_assert_str_eq(be_perm_list_get(l, 0), "editor");
  be_perm_list_free(l);
  ck_assert_int_eq(be_perm_role_permissions(&l, app, "editor", NT, NULL), BE_OK);
  ck_assert_uint_eq(be_perm_list_count(l), 2);
  be_perm_list_free(l);
  ck_assert_int_eq(be_perm_role_permissions(&l, app, "nobody", NT, NULL), BE_E_NOT_FOUND);

  /* role deletion takes the grants with it */
  ck_assert_int_eq(be_perm_role_delete(app, 0, "root", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_check(app, u, "anything:goes", NT, NULL), BE_E_FORBIDDEN);
  ck_assert_int_eq(be_perm_check(app, u, "posts:read", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_role_delete(app, 0, "root", NT, NULL), BE_E_NOT_FOUND);
  /* unknown users have nothing */
  ck_assert_int_eq(be_perm_check(app, u + 1000, "posts:read", NT, NULL), BE_E_FORBIDDEN);
  ck_assert_int_eq(be_perm_user_permissions(&l, app, u + 1000, NULL), BE_OK);
  ck_assert_uint_eq(be_perm_list_count(l), 0);
  be_perm_list_free(l);
  be_app_free(app);
}
END_TEST

START_TEST(validation_and_not_found) {
  be_app *app = svc_app_ex(NULL, NULL, 0);
  int64_t u = svc_user(app, "v@x.io", "V");
  ck_assert_int_eq(be_perm_role_create(NULL, app, 0, "r", NT, NULL), BE_OK);
  static const char *bad_perms[] = {"", "posts", "posts:", ":read", "*:read", "po sts:read",
                                    "posts:read:x", "posts:re*", "p\xc3\xa9:x", "**",
                                    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:x"};
  for (size_t i = 0; i < sizeof bad_perms / sizeof bad_perms[0]; i++) {
    be_error *e = NULL;
    svc_expect_field(be_perm_check(app, u, bad_perms[i], NT, &e), &e, BE_E_VALIDATION, "permission");
    svc_expect_field(be_perm_role_grant(app, 0, "r", NT, bad_perms[i], NT, &e), &e, BE_E_VALIDATION,
                     "permission");
  }
  be_error *e = NULL;
  svc_expect_field(be_perm_check(app, u, NULL, NT, &e), &e, BE_E_VALIDATION, "permission");
  svc_expect_field(be_perm_check(app, 0, "a:b", NT, &e), &e, BE_E_VALIDATION, "user_id");
  static const char *bad_roles[] = {"", "a b", "r\n", "r:x", "\xc3\xa9",
                                    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
  for (size_t i = 0; i < sizeof bad_roles / sizeof bad_roles[0]; i++) {
    svc_expect_field(be_perm_role_create(NULL, app, 0, bad_roles[i], NT, &e), &e, BE_E_VALIDATION, "role");
    svc_expect_field(be_perm_user_assign(app, 0, u, bad_roles[i], NT, &e), &e, BE_E_VALIDATION, "role");
  }
  svc_expect_field(be_perm_role_create(NULL, app, 0, NULL, NT, &e), &e, BE_E_VALIDATION, "role");
  svc_expect_field(be_perm_role_create(NULL, app, 0, "r", NT, &e), &e, BE_E_CONFLICT, "role");
  svc_expect_field(be_perm_role_create(NULL, app, -2, "r2", NT, &e), &e, BE_E_VALIDATION, "actor_id");
  svc_expect_field(be_perm_role_grant(app, 0, "nope", NT, "a:b", NT, &e), &e, BE_E_NOT_FOUND, "role");
  svc_expect_field(be_perm_user_assign(app, 0, u, "nope", NT, &e), &e, BE_E_NOT_FOUND, "role");
  svc_expect_field(be_perm_user_assign(app, 0, u + 50, "r", NT, &e), &e, BE_E_NOT_FOUND, "user_id");
  svc_expect_field(be_perm_user_assign(app, 0, -1, "r", NT, &e), &e, BE_E_VALIDATION, "user_id");
  ck_assert_int_eq(be_perm_check(NULL, u, "a:b", NT, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_perm_user_permissions(NULL, app, u, NULL), BE_E_MISUSE);
  /* only the role create and the user create were audited */
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM be_audit_log"), 2);
  be_app_free(app);
}
END_TEST

/* Names are (pointer, length): 0 is empty (refused, never read), a NUL
 * byte or invalid UTF-8 inside the length names the field, and an exact
 * length needs no NUL. */
START_TEST(names_take_exact_lengths) {
  be_app *app = svc_app_ex(NULL, NULL, 0);
  int64_t u = svc_user(app, "p@x.io", "P");
  const char *dangling = (const char *)1;
  be_error *e = NULL;
  svc_expect_field(be_perm_role_create(NULL, app, 0, dangling, 0, &e), &e, BE_E_VALIDATION, "role");
  svc_expect_field(be_perm_role_create(NULL, app, 0, "edi\0tor", 7, &e), &e, BE_E_VALIDATION, "role");
  svc_expect_field(be_perm_role_create(NULL, app, 0, "edit\xc3\xa9", NT, &e), &e, BE_E_VALIDATION,
                   "role");
  ck_assert_int_eq(be_perm_role_create(NULL, app, 0, "editorXYZ", 6, NULL), BE_OK);
  svc_expect_field(be_perm_role_grant(app, 0, "editor", NT, dangling, 0, &e), &e, BE_E_VALIDATION,
                   "permission");
  svc_expect_field(be_perm_role_grant(app, 0, "editor", NT, "posts:re\0ad", 11, &e), &e,
                   BE_E_VALIDATION, "permission");
  svc_expect_field(be_perm_role_grant(app, 0, "editor", NT, "posts:\xff", NT, &e), &e,
                   BE_E_VALIDATION, "permission");
  svc_expect_field(be_perm_role_revoke(app, 0, "editor\0", 7, "posts:read", NT, &e), &e,
                   BE_E_VALIDATION, "role");
  ck_assert_int_eq(be_perm_role_grant(app, 0, "editor!", 6, "posts:read!", 10, NULL), BE_OK);
  svc_expect_field(be_perm_user_assign(app, 0, u, "editor\0", 7, &e), &e, BE_E_VALIDATION, "role");
  svc_expect_field(be_perm_user_unassign(app, 0, u, dangling, 0, &e), &e, BE_E_VALIDATION, "role");
  ck_assert_int_eq(be_perm_user_assign(app, 0, u, "editor", 6, NULL), BE_OK);
  svc_expect_field(be_perm_check(app, u, "posts:read\0", 11, &e), &e, BE_E_VALIDATION, "permission");
  svc_expect_field(be_perm_check(app, u, dangling, 0, &e), &e, BE_E_VALIDATION, "permission");
  svc_expect_field(be_perm_check(app, u, "\xe2\x80\x8bposts:read", NT, &e), &e, BE_E_VALIDATION,
                   "permission");
  ck_assert_int_eq(be_perm_check(app, u, "posts:readable", 10, NULL), BE_OK);
  ck_assert_int_eq(be_perm_check(app, u, "posts:rea", 9, NULL), BE_E_FORBIDDEN);
  be_perm_list *l = NULL;
  svc_expect_field(be_perm_role_permissions(&l, app, "editor\0", 7, &e), &e, BE_E_VALIDATION, "role");
  ck_assert_int_eq(be_perm_role_permissions(&l, app, "editors", 6, NULL), BE_OK);
  ck_assert_uint_eq(be_perm_list_count(l), 1);
  ck_assert_str_eq(be_perm_list_get(l, 0), "posts:read");
  be_perm_list_free(l);
  ck_assert_int_eq(be_perm_role_delete(app, 0, "editor?", 6, NULL), BE_OK);
  be_app_free(app);
}
END_TEST

START_TEST(changes_are_idempotent_audited_and_bump_the_epoch) {
  be_app *app = svc_app_ex(NULL, NULL, 0);
  int64_t u = svc_user(app, "i@x.io", "I");
  int64_t e0 = 0, e1 = 0;
  ck_assert_int_eq(be_perm_epoch(&e0, app, NULL), BE_OK);
  ck_assert_int_eq(be_perm_role_create(NULL, app, 7, "r", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_role_grant(app, 7, "r", NT, "a:b", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_epoch(&e1, app, NULL), BE_OK);
  ck_assert_int_eq(e1, e0 + 1);
  int64_t rows = svc_int(app, "SELECT count(*) FROM be_audit_log");
  ck_assert_int_eq(be_perm_role_grant(app, 7, "r", NT, "a:b", NT, NULL), BE_OK);  /* again: no-op */
  ck_assert_int_eq(be_perm_role_revoke(app, 7, "r", NT, "x:y", NT, NULL), BE_OK); /* not held: no-op */
  ck_assert_int_eq(be_perm_user_unassign(app, 7, u, "r", NT, NULL), BE_OK);       /* not held: no-op */
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM be_audit_log"), rows);
  ck_assert_int_eq(be_perm_epoch(&e0, app, NULL), BE_OK);
  ck_assert_int_eq(e0, e1);
  ck_assert_int_eq(be_perm_user_assign(app, 7, u, "r", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_user_unassign(app, 7, u, "r", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_role_revoke(app, 7, "r", NT, "a:b", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_epoch(&e1, app, NULL), BE_OK);
  ck_assert_int_eq(e1, e0 + 3);
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM be_audit_log WHERE actor_id = 7 AND action IN"
                                " ('perm.role_create','perm.grant','perm.assign','perm.unassign',"
                                "'perm.revoke')"),
                   5);
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM be_audit_log WHERE action = 'perm.assign'"
                                " AND target_type = 'user' AND target_id = 1"),
                   1);
  int64_t bad = -1;
  ck_assert_int_eq(be_audit_verify(&bad, NULL, app, NULL), BE_OK);
  ck_assert_int_eq(bad, 0);
  be_app_free(app);
}
END_TEST

/* ---- never stale ---- */

typedef struct checker {
  be_app *app;
  int64_t user;
  const char *perm;
  int rc;
} checker;

static void *check_once(void *arg) {
  checker *c = arg;
  c->rc = be_perm_check(c->app, c->user, c->perm, NT, NULL);
  return NULL;
}

static int check_in_thread(be_app *app, int64_t user, const char *perm) {
  checker c = {app, user, perm, 0};
  pthread_t t;
  pthread_create(&t, NULL, check_once, &c);
  pthread_join(t, NULL);
  return c.rc;
}

typedef struct hammer {
  be_app *app;
  int64_t user;
  _Atomic int stop;
  _Atomic long checks;
} hammer;

static void *hammer_checks(void *arg) {
  hammer *h = arg;
  while (!atomic_load(&h->stop)) {
    int rc = be_perm_check(h->app, h->user, "docs:read", NT, NULL);
    ck_assert(rc == BE_OK || rc == BE_E_FORBIDDEN);
    atomic_fetch_add(&h->checks, 1);
  }
  return NULL;
}

START_TEST(revoke_holds_on_next_check_from_any_thread) {
  be_app *app = svc_app_ex(NULL, NULL, 6);
  int64_t u = svc_user(app, "r@x.io", "R");
  ck_assert_int_eq(be_perm_role_create(NULL, app, 0, "reader", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_user_assign(app, 0, u, "reader", NT, NULL), BE_OK);
  /* threads filling the cache all the time, racing every change */
  hammer h = {app, u, 0, 0};
  pthread_t t[3];
  for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, hammer_checks, &h);
  for (int round = 0; round < 100; round++) {
    int via_role = round % 2;
    ck_assert_int_eq(be_perm_role_grant(app, 0, "reader", NT, "docs:read", NT, NULL), BE_OK);
    ck_assert_int_eq(check_in_thread(app, u, "docs:read"), BE_OK);
    ck_assert_int_eq(be_perm_check(app, u, "docs:read", NT, NULL), BE_OK);
    if (via_role) {
      ck_assert_int_eq(be_perm_role_revoke(app, 0, "reader", NT, "docs:read", NT, NULL), BE_OK);
    } else {
      /* take the role away instead, then give it back without the grant */
      ck_assert_int_eq(be_perm_user_unassign(app, 0, u, "reader", NT, NULL), BE_OK);
    }
    ck_assert_msg(check_in_thread(app, u, "docs:read") == BE_E_FORBIDDEN, "stale allow in round %d", round);
    ck_assert_int_eq(be_perm_check(app, u, "docs:read", NT, NULL), BE_E_FORBIDDEN);
    if (!via_role) {
      ck_assert_int_eq(be_perm_role_revoke(app, 0, "reader", NT, "docs:read", NT, NULL), BE_OK);
      ck_assert_int_eq(be_perm_user_assign(app, 0, u, "reader", NT, NULL), BE_OK);
      ck_assert_int_eq(check_in_thread(app, u, "docs:read"), BE_E_FORBIDDEN);
    }
  }
  atomic_store(&h.stop, 1);
  for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
  ck_assert_int_gt(atomic_load(&h.checks), 100);
  be_app_free(app);
}
END_TEST

/* A second app object on the same database file sees a revoke made by the
 * first at once: the epoch is read from the database, not from memory. */
START_TEST(revoke_seen_by_another_app_on_the_same_file) {
  char *dir = tu_tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/perm.db", dir);
  be_app_options o;
  svc_fast_options(&o, path);
  be_app *a = NULL, *b = NULL;
  ck_assert_int_eq(be_app_new(&a, &o, NULL), BE_OK);
  ck_assert_int_eq(be_app_new(&b, &o, NULL), BE_OK);
  int64_t u = svc_user(a, "f@x.io", "F");
  ck_assert_int_eq(be_perm_role_create(NULL, a, 0, "r", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_role_grant(a, 0, "r", NT, "files:read", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_user_assign(a, 0, u, "r", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_check(b, u, "files:read", NT, NULL), BE_OK); /* cached in b */
  ck_assert_int_eq(be_perm_check(b, u, "files:read", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_role_revoke(a, 0, "r", NT, "files:read", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_check(b, u, "files:read", NT, NULL), BE_E_FORBIDDEN);
  be_app_free(a);
  be_app_free(b);
  tu_rmdir(dir);
}
END_TEST

START_TEST(audit_and_grant_roll_back_together) {
  be_driver *fd = NULL;
  be_fault *fault = NULL;
  ck_assert_int_eq(be_fault_driver_new(&fd, &fault, be_sqlite_driver(), NULL), BE_OK);
  be_app *app = svc_app_ex(fd, NULL, 2);
  int64_t u = svc_user(app, "g@x.io", "G");
  ck_assert_int_eq(be_perm_role_create(NULL, app, 0, "r", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_user_assign(app, 0, u, "r", NT, NULL), BE_OK);
  int64_t rows = svc_int(app, "SELECT count(*) FROM be_audit_log");
  int64_t e0 = 0, e1 = 0;
  ck_assert_int_eq(be_perm_epoch(&e0, app, NULL), BE_OK);
  ck_assert_int_eq(be_fault_set(fault, BE_FAULT_OP_COMMIT, BE_FAULT_NTH, 1, BE_E_STORAGE, NULL), BE_OK);
  ck_assert_int_eq(be_perm_role_grant(app, 0, "r", NT, "x:y", NT, NULL), BE_E_STORAGE);
  be_fault_clear(fault, BE_FAULT_OP_ALL);
  ck_assert_int_eq(be_perm_check(app, u, "x:y", NT, NULL), BE_E_FORBIDDEN);
  ck_assert_int_eq(be_perm_epoch(&e1, app, NULL), BE_OK);
  ck_assert_int_eq(e1, e0);
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM be_audit_log"), rows);
  be_app_free(app);
  be_fault_free(fault);
}
END_TEST

static int alloc_body(void *arg) {
  (void)arg;
  be_app_options o;
  svc_fast_options(&o, ":memory:");
  o.pool_min = 1;
  o.pool_max = 1;
  be_app *app = NULL;
  be_error *e = NULL;
  int rc = be_app_new(&app, &o, &e);
  if (rc != BE_OK) {
    be_error_free(e);
    return rc;
  }
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = "p@x.io";
  in.name = "P";
  int64_t id = 0;
  rc = be_user_create(NULL, &id, app, 0, &in, &e);
  if (rc == BE_OK) rc = be_perm_role_create(NULL, app, 0, "r", NT, &e);
  if (rc == BE_OK) rc = be_perm_role_grant(app, 0, "r", NT, "a:*", NT, &e);
  if (rc == BE_OK) rc = be_perm_user_assign(app, 0, id, "r", NT, &e);
  if (rc == BE_OK) rc = be_perm_check(app, id, "a:b", NT, &e);
  if (rc == BE_OK) {
    rc = be_perm_check(app, id, "c:d", NT, &e);
    if (rc == BE_E_FORBIDDEN) {
      be_error_free(e);
      e = NULL;
      rc = BE_OK;
    }
  }
  if (rc == BE_OK) {
    be_perm_list *l = NULL;
    rc = be_perm_user_permissions(&l, app, id, &e);
    be_perm_list_free(l);
  }
  be_error_free(e);
  be_app_free(app);
  return rc;
}

START_TEST(allocation_failures_leak_nothing) {
  TU_FOR_EACH_ALLOC_FAILURE(alloc_body, NULL);
}
END_TEST

typedef struct race_ctx {
  be_app *app;
  int64_t user;
  int assign;
  int rc;
  char field[32];
} race_ctx;

static void *grant_or_assign(void *p) {
  race_ctx *r = p;
  be_error *e = NULL;
  r->rc = r->assign ? be_perm_user_assign(r->app, 0, r->user, "racy", NT, &e)
                    : be_perm_role_grant(r->app, 0, "racy", NT, "posts:read", NT, &e);
  snprintf(r->field, sizeof r->field, "%s", be_error_field_count(e) ? be_error_field_name(e, 0) : "");
  be_error_free(e);
  return NULL;
}

/* PostgreSQL (read committed): a grant or assign whose role is deleted by
 * a transaction that commits between the role's lookup and the link's
 * insert broke the foreign key and came back as a BE_E_VALIDATION naming
 * no field. It is the role's BE_E_NOT_FOUND, naming "role". (SQLite's
 * writes are serial: no such race.) */
START_TEST(link_racing_a_role_delete_is_not_found) {
  if (!svc_on_pg()) return;
  char dsn[1024];
  snprintf(dsn, sizeof dsn, "%s", svc_pg_fresh_dsn());
  be_app_options o;
  svc_fast_options(&o, dsn);
  be_app *app = NULL;
  ck_assert_int_eq(be_app_new(&app, &o, NULL), BE_OK);
  int64_t user = svc_user(app, "racer@x.io", "Racer");
  for (int assign = 0; assign < 2; assign++) {
    ck_assert_int_eq(be_perm_role_create(NULL, app, 0, "racy", NT, NULL), BE_OK);
    be_conn *raw = NULL;
    ck_assert_int_eq(be_conn_open(&raw, be_postgres_driver(), dsn, NULL), BE_OK);
    ck_assert_int_eq(be_conn_exec(raw, "BEGIN; DELETE FROM be_roles WHERE name = 'racy'", NULL), BE_OK);
    race_ctx r = {app, user, assign, 0, ""};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, grant_or_assign, &r), 0);
    struct timespec ts = {0, 300 * 1000000L}; /* the lookup has run; the insert waits */
    nanosleep(&ts, NULL);
    ck_assert_int_eq(be_conn_exec(raw, "COMMIT", NULL), BE_OK);
    pthread_join(t, NULL);
    be_conn_close(raw);
    ck_assert_msg(r.rc == BE_E_NOT_FOUND, "%s: rc %d", assign ? "assign" : "grant", r.rc);
    ck_assert_str_eq(r.field, "role");
  }
  be_app_free(app);
}
END_TEST

static Suite *perm_suite(void) {
  be_log_set_handler(NULL, NULL, BE_LOG_ERROR, NULL);
  Suite *s = suite_create("permission");
  TCase *tc = tcase_create("permission");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, wildcards_and_lists);
  tcase_add_test(tc, validation_and_not_found);
  tcase_add_test(tc, names_take_exact_lengths);
  tcase_add_test(tc, changes_are_idempotent_audited_and_bump_the_epoch);
  tcase_add_test(tc, revoke_holds_on_next_check_from_any_thread);
  tcase_add_test(tc, revoke_seen_by_another_app_on_the_same_file);
  tcase_add_test(tc, audit_and_grant_roll_back_together);
  tcase_add_test(tc, allocation_failures_leak_nothing);
  tcase_add_test(tc, link_racing_a_role_delete_is_not_found);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(perm_suite)
