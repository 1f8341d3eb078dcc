/* SPDX-License-Identifier: MIT */
/* Helpers for the service suites (user, permission, audit, app): an
 * in-memory app with cheap hashing, raw SQL on a pooled connection. */
#ifndef BE_SVC_TESTUTIL_H
#define BE_SVC_TESTUTIL_H

/* Shorthand for string lengths in the service tests. */
#define NT BE_NUL_TERMINATED

#include "testutil.h"

#include <sodium.h>

/* App options for tests: the given database and the cheapest argon2id
 * parameters libsodium allows (test mode), so hashing costs microseconds. */
static inline void svc_fast_options(be_app_options *o, const char *database) {
  be_app_options init = BE_APP_OPTIONS_INIT;
  *o = init;
  o->database = database;
  o->insecure_test_hashing = 1;
  o->pwhash_opslimit = crypto_pwhash_argon2id_OPSLIMIT_MIN;
  o->pwhash_memlimit = crypto_pwhash_argon2id_MEMLIMIT_MIN;
}

/* An app on a private in-memory database, on the given driver (NULL:
 * SQLite) and clock (NULL: the system clock; borrowed). */
static inline be_app *svc_app_ex(const be_driver *driver, be_clock *clock, int32_t pool_max) {
  be_app_options o;
  svc_fast_options(&o, ":memory:");
  o.driver = driver;
  o.clock = clock;
  o.pool_max = pool_max;
  be_app *app = NULL;
  be_error *e = NULL;
  int rc = be_app_new(&app, &o, &e);
  ck_assert_msg(rc == BE_OK, "be_app_new: %s", be_error_message(e));
  return app;
}

/* Run SQL returning one integer (first column of the first row). */
static inline int64_t svc_int(be_app *app, const char *sql) {
  be_conn *c = NULL;
  ck_assert_int_eq(be_pool_acquire(&c, be_app_pool(app), NULL), BE_OK);
  be_stmt *st = NULL;
  be_error *e = NULL;
  ck_assert_msg(be_conn_prepare(&st, c, sql, &e) == BE_OK, "%s: %s", sql, be_error_message(e));
  ck_assert_int_eq(be_stmt_step(st, NULL), BE_ROW);
  int64_t v = be_stmt_column_int64(st, 0);
  be_stmt_finalize(st);
  be_pool_release(be_app_pool(app), c);
  return v;
}

/* Run SQL text (no rows). */
static inline void svc_exec(be_app *app, const char *sql) {
  be_conn *c = NULL;
  ck_assert_int_eq(be_pool_acquire(&c, be_app_pool(app), NULL), BE_OK);
  be_error *e = NULL;
  int rc = be_conn_exec(c, sql, &e);
  ck_assert_msg(rc == BE_OK, "%s: %s", sql, be_error_message(e));
  be_pool_release(be_app_pool(app), c);
}

static inline int64_t svc_user(be_app *app, const char *email, const char *name) {
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = email;
  in.name = name;
  int64_t id = 0;
  be_error *e = NULL;
  int rc = be_user_create(NULL, &id, app, 0, &in, &e);
  ck_assert_msg(rc == BE_OK, "create %s: %s", email, be_error_message(e));
  ck_assert_int_gt(id, 0);
  return id;
}

/* The field of a validation error is the expected one; frees e. */
static inline void svc_expect_field(int rc, be_error **ep, int32_t code, const char *field) {
  be_error *e = *ep;
  *ep = NULL;
  ck_assert_msg(rc == code, "rc %d (%s), want %d", rc, be_error_message(e), code);
  ck_assert_int_eq(be_error_code(e), code);
  if (field) {
    int found = 0;
    for (size_t i = 0; i < be_error_field_count(e); i++)
      if (strcmp(be_error_field_name(e, i), field) == 0) found = 1;
    ck_assert_msg(found, "no field error \"%s\" in: %s", field, be_error_message(e));
  }
  be_error_free(e);
}

#endif
