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

/* PostgreSQL mode (meson's "<suite>-postgres" entries set
 * BE_TEST_SVC_ON_PG=1): apps opened without a driver go to a fresh schema
 * of the server BE_TEST_PG_DSN names instead of a private in-memory
 * SQLite database. Without a server the suite exits 77 (SKIP, never a
 * pass). Apps opened with a driver of their own (fault drivers around
 * SQLite) stay on SQLite. */
static inline int svc_on_pg(void) {
  const char *v = getenv("BE_TEST_SVC_ON_PG");
  return v != NULL && v[0] == '1';
}

__attribute__((constructor)) static void svc_pg_skip_without_server(void) {
  if (!svc_on_pg()) return;
  const char *base = getenv("BE_TEST_PG_DSN");
  if (be_postgres_driver() == NULL || base == NULL || base[0] == '\0') {
    fprintf(stderr, "SKIPPED: service suite on PostgreSQL: %s -- NOT RUN, NOT PASSED\n",
            be_postgres_driver() == NULL ? "built without libpq" : "BE_TEST_PG_DSN is not set");
    exit(77);
  }
}

/* A DSN for a new, empty schema on the test server (static buffer). Each
 * test process says how many apps it opened there. */
static int svc_pg_apps;
static void svc_pg_say(void) {
  if (svc_pg_apps > 0) fprintf(stderr, "apps on PostgreSQL in this process: %d\n", svc_pg_apps);
}
static inline const char *svc_pg_fresh_dsn(void) {
  static char dsn[1024];
  static int n;
  if (svc_pg_apps++ == 0) atexit(svc_pg_say);
  const char *base = getenv("BE_TEST_PG_DSN");
  char schema[64];
  snprintf(schema, sizeof schema, "svc_%ld_%d", (long)getpid(), ++n);
  be_conn *c = NULL;
  be_error *e = NULL;
  ck_assert_msg(be_conn_open(&c, be_postgres_driver(), base, &e) == BE_OK, "%s", be_error_message(e));
  char sql[256];
  snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema, schema);
  ck_assert_int_eq(be_conn_exec(c, sql, NULL), BE_OK);
  be_conn_close(c);
  snprintf(dsn, sizeof dsn, "%s%soptions=-csearch_path%%3D%s", base, strchr(base, '?') ? "&" : "?",
           schema);
  return dsn;
}

/* An app on a private in-memory database (PostgreSQL mode: a fresh
 * schema), on the given driver (NULL: SQLite, or PostgreSQL in PostgreSQL
 * mode) and clock (NULL: the system clock; borrowed). */
static inline be_app *svc_app_ex(const be_driver *driver, be_clock *clock, int32_t pool_max) {
  be_app_options o;
  svc_fast_options(&o, driver == NULL && svc_on_pg() ? svc_pg_fresh_dsn() : ":memory:");
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

/* The tests' raw SQL is SQLite's; on an app on PostgreSQL its one
 * SQLite-only function, zeroblob(32), becomes PostgreSQL's 32 zero bytes
 * (into buf, size bytes). */
static inline const char *svc_dialect_sql(be_app *app, const char *sql, char *buf, size_t size) {
  be_conn *c = NULL;
  ck_assert_int_eq(be_pool_acquire(&c, be_app_pool(app), NULL), BE_OK);
  int pg = strcmp(be_conn_driver(c)->name, "postgres") == 0;
  be_pool_release(be_app_pool(app), c);
  if (!pg) return sql;
  size_t n = 0;
  for (const char *p = sql; *p && n + 40 < size;) {
    if (strncmp(p, "zeroblob(32)", 12) == 0) {
      n += (size_t)snprintf(buf + n, size - n, "decode(repeat('00', 32), 'hex')");
      p += 12;
    } else {
      buf[n++] = *p++;
    }
  }
  buf[n] = '\0';
  return buf;
}

/* Run SQL text (no rows). */
static inline void svc_exec(be_app *app, const char *sql) {
  char buf[2048];
  sql = svc_dialect_sql(app, sql, buf, sizeof buf);
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
