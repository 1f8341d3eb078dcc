/* SPDX-License-Identifier: MIT */
/* The app object (options, migrations, :memory: handling, teardown) and
 * the public test kit. */
#include "svc_testutil.h"

#include "app_resources.h"

#include <pthread.h>
#include <unistd.h>
#include <stdatomic.h>

START_TEST(options_are_validated) {
  be_app_options o;
  ck_assert_int_eq(be_app_options_init(&o, BE_APP_OPTIONS_VERSION), BE_OK);
  ck_assert_int_eq(be_app_options_init(&o, 77), BE_E_MISUSE);
  ck_assert_int_eq(be_app_options_init(NULL, BE_APP_OPTIONS_VERSION), BE_E_MISUSE);
  be_app *app = NULL;
  be_error *e = NULL;
  ck_assert_int_eq(be_app_new(NULL, NULL, NULL), BE_E_MISUSE);
  o.version = 2;
  ck_assert_int_eq(be_app_new(&app, &o, NULL), BE_E_MISUSE);
  ck_assert_ptr_null(app);

  be_app_options_init(&o, BE_APP_OPTIONS_VERSION);
  o.database = ":memory:";
  o.pool_min = 5;
  o.pool_max = 2;
  o.user_cache_ttl_ms = -1;
  o.password_min_length = 8;
  o.insecure_test_hashing = 2;
  ck_assert_int_eq(be_app_new(&app, &o, &e), BE_E_VALIDATION);
  ck_assert_ptr_null(app);
  ck_assert_uint_eq(be_error_field_count(e), 4); /* all reported at once */
  be_error_free(e);
  be_app_options_init(&o, BE_APP_OPTIONS_VERSION);
  o.database = "";
  e = NULL;
  svc_expect_field(be_app_new(&app, &o, &e), &e, BE_E_VALIDATION, "database");
  be_app_options_init(&o, BE_APP_OPTIONS_VERSION);
  o.database = ":memory:";
  o.acquire_timeout_ms = -5;
  svc_expect_field(be_app_new(&app, &o, &e), &e, BE_E_VALIDATION, "acquire_timeout_ms");
  o.acquire_timeout_ms = 0;
  o.cache_max_bytes = -1;
  svc_expect_field(be_app_new(&app, &o, &e), &e, BE_E_VALIDATION, "cache_max_bytes");
  o.cache_max_bytes = 0;
  o.max_concurrent_hashes = 5000;
  svc_expect_field(be_app_new(&app, &o, &e), &e, BE_E_VALIDATION, "max_concurrent_hashes");
  o.max_concurrent_hashes = 0;
  be_mailer m = {0, NULL, NULL};
  o.mailer = &m;
  svc_expect_field(be_app_new(&app, &o, &e), &e, BE_E_VALIDATION, "mailer");
  o.mailer = NULL;
  /* the auth times' ten-year bound is judged with every other option */
  o.session_idle_ms = INT64_C(11) * 366 * 24 * 3600 * 1000;
  o.pool_max = -1;
  ck_assert_int_eq(be_app_new(&app, &o, &e), BE_E_VALIDATION);
  ck_assert_uint_eq(be_error_field_count(e), 2);
  ck_assert_str_eq(be_error_field_name(e, 0), "pool_max");
  ck_assert_str_eq(be_error_field_name(e, 1), "session_idle_ms");
  be_error_free(e);
  e = NULL;
  o.session_idle_ms = 0;
  o.pool_max = 0;
  /* below OWASP without the test flag: refused by the auth service */
  o.pwhash_opslimit = 1;
  o.pwhash_memlimit = 8192;
  ck_assert_int_eq(be_app_new(&app, &o, NULL), BE_E_VALIDATION);
  ck_assert_ptr_null(app);
}
END_TEST

START_TEST(memory_apps_are_private_and_shared_by_the_pool) {
  be_app *a = svc_app_ex(NULL, NULL, 4);
  be_app *b = svc_app_ex(NULL, NULL, 4);
  int64_t id = svc_user(a, "only@a.io", "A");
  be_user *u = NULL;
  ck_assert_int_eq(be_user_get(&u, b, id, NULL), BE_E_NOT_FOUND);
  /* every pooled connection of a sees the same database */
  be_conn *c[4];
  for (int i = 0; i < 4; i++) ck_assert_int_eq(be_pool_acquire(&c[i], be_app_pool(a), NULL), BE_OK);
  for (int i = 0; i < 4; i++) {
    be_stmt *st = NULL;
    ck_assert_int_eq(be_conn_prepare(&st, c[i], "SELECT count(*) FROM be_users", NULL), BE_OK);
    ck_assert_int_eq(be_stmt_step(st, NULL), BE_ROW);
    ck_assert_int_eq(be_stmt_column_int64(st, 0), 1);
    be_stmt_finalize(st);
  }
  for (int i = 0; i < 4; i++) be_pool_release(be_app_pool(a), c[i]);
  ck_assert_ptr_nonnull(be_app_cache(a));
  ck_assert_ptr_eq(be_app_clock(a), be_clock_system());
  ck_assert_ptr_null(be_app_pool(NULL));
  be_app_free(a);
  be_app_free(b);
  be_app_free(NULL);
}
END_TEST

START_TEST(file_database_migrates_once_with_host_migrations) {
  char *dir = tu_tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/app.db", dir);
  be_migrator *m = NULL;
  ck_assert_int_eq(be_migrator_new(&m, NULL), BE_OK);
  ck_assert_int_eq(be_migrator_add(m, 1000, "posts",
                                   "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER"
                                   " NOT NULL REFERENCES be_users(id), title TEXT NOT NULL)",
                                   NULL),
                   BE_OK);
  be_app_options o;
  svc_fast_options(&o, path);
  o.host_migrations = m;
  be_app *app = NULL;
  be_error *e = NULL;
  ck_assert_msg(be_app_new(&app, &o, &e) == BE_OK, "%s", be_error_message(e));
  int64_t id = svc_user(app, "file@x.io", "F");
  /* the host's migration in its migrator's record, libbackend's 1..N,
   * each once, in its own */
  ck_assert_int_eq(svc_int(app, "SELECT max(version) FROM schema_migrations"), 1000);
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM schema_migrations"), 1);
  int64_t own = svc_int(app, "SELECT count(*) FROM be_schema_migrations");
  ck_assert_int_ge(own, 4);
  ck_assert_int_eq(svc_int(app, "SELECT max(version) FROM be_schema_migrations"), own);
  be_app_free(app);
  /* reopen: nothing applied twice, data kept */
  ck_assert_int_eq(be_app_new(&app, &o, NULL), BE_OK);
  be_user *u = NULL;
  ck_assert_int_eq(be_user_get(&u, app, id, NULL), BE_OK);
  be_user_free(u);
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM be_schema_migrations"), own);
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM schema_migrations"), 1);
  be_app_free(app);
  /* a failing host migration fails be_app_new and leaves nothing open */
  ck_assert_int_eq(be_migrator_add(m, 1001, "broken", "CREATE TABLE nope (", NULL), BE_OK);
  ck_assert_int_ne(be_app_new(&app, &o, NULL), BE_OK);
  ck_assert_ptr_null(app);
  be_migrator_free(m);
  /* a host version in libbackend's range would be taken as applied and
   * skipped: refused, with nothing created */
  ck_assert_int_eq(be_migrator_new(&m, NULL), BE_OK);
  ck_assert_int_eq(be_migrator_add(m, 3, "clash", "CREATE TABLE clash (id INTEGER)", NULL), BE_OK);
  o.host_migrations = m;
  be_error *ce = NULL;
  svc_expect_field(be_app_new(&app, &o, &ce), &ce, BE_E_VALIDATION, "host_migrations");
  ck_assert_ptr_null(app);
  be_migrator_free(m);
  /* unreachable database */
  o.database = "/nonexistent-dir/x/y.db";
  o.host_migrations = NULL;
  ck_assert_int_eq(be_app_new(&app, &o, NULL), BE_E_DB_UNREACHABLE);
  tu_rmdir(dir);
}
END_TEST

static int app_alloc_body(void *arg) {
  (void)arg;
  be_app *app = NULL;
  be_app_options o;
  svc_fast_options(&o, ":memory:");
  be_error *e = NULL;
  int rc = be_app_new(&app, &o, &e);
  if (rc != BE_OK && app != NULL) return BE_E_INTERNAL; /* *out must stay NULL */
  be_error_free(e);
  be_app_free(app);
  return rc;
}

START_TEST(app_allocation_failures_leak_nothing) {
  TU_FOR_EACH_ALLOC_FAILURE(app_alloc_body, NULL);
}
END_TEST

/* ---- testkit ---- */

static int seed_posts(be_conn *conn, void *ud, be_error **err) {
  int *calls = ud;
  (*calls)++;
  return be_conn_exec(conn,
                      "INSERT INTO posts (user_id, title) VALUES (1, 'hello'), (2, 'world')", err);
}

START_TEST(testkit_seeds_users_roles_and_host_rows) {
  be_migrator *m = NULL;
  ck_assert_int_eq(be_migrator_new(&m, NULL), BE_OK);
  ck_assert_int_eq(be_migrator_add(m, 1000, "posts",
                                   "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER"
                                   " NOT NULL, title TEXT NOT NULL)",
                                   NULL),
                   BE_OK);
  be_app_options ao = BE_APP_OPTIONS_INIT;
  ao.host_migrations = m;
  ao.lockout_after = 3;
  int calls = 0;
  be_testkit_options to;
  ck_assert_int_eq(be_testkit_options_init(&to, BE_TESTKIT_OPTIONS_VERSION), BE_OK);
  to.users = 5;
  to.seed = seed_posts;
  to.seed_user_data = &calls;
  to.app_options = &ao;
  be_testkit *kit = NULL;
  be_error *e = NULL;
  ck_assert_msg(be_testkit_new(&kit, &to, &e) == BE_OK, "%s", be_error_message(e));
  be_app *app = be_testkit_app(kit);
  ck_assert_int_eq(calls, 1);
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM posts"), 2);
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM be_users"), 5);
  ck_assert_ptr_eq(be_app_clock(app), be_testkit_clock(kit));
  ck_assert_int_eq(be_clock_wall_ns(be_testkit_clock(kit)), BE_TESTKIT_START_WALL_MS * BE_NS_PER_MS);
  be_user *u = NULL;
  ck_assert_int_eq(be_user_get(&u, app, be_testkit_user_id(kit, 3), NULL), BE_OK);
  ck_assert_str_eq(be_user_email(u), "user3@example.test");
  ck_assert_str_eq(be_user_name(u), "User 3");
  be_user_free(u);
  ck_assert_int_eq(be_testkit_user_id(kit, 5), 0);
  ck_assert_int_eq(be_testkit_user_id(kit, -1), 0);
  /* roles */
  int64_t admin = be_testkit_user_id(kit, 0), member = be_testkit_user_id(kit, 1);
  ck_assert_int_eq(be_perm_check(app, admin, "anything:at_all", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_check(app, member, "posts:write", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_check(app, member, "users:delete", NT, NULL), BE_E_FORBIDDEN);
  /* the known password logs in; sessions expire on the fake clock */
  char *token = NULL;
  ck_assert_int_eq(be_auth_login(&token, NULL, app, "user2@example.test", NT, BE_TESTKIT_PASSWORD,
                                 BE_NUL_TERMINATED, NULL),
                   BE_OK);
  ck_assert_int_eq(be_auth_verify(NULL, app, token, NT, NULL), BE_OK);
  ck_assert_int_eq(be_testkit_advance_ms(kit, 31 * 60 * 1000, NULL), BE_OK);
  ck_assert_int_eq(be_auth_verify(NULL, app, token, NT, NULL), BE_E_UNAUTHORIZED);
  ck_assert_int_eq(be_testkit_advance_ms(kit, -1, NULL), BE_E_MISUSE);
  /* a step past the end of int64 ns is refused, not wrapped to a negative time */
  int64_t wall = be_clock_wall_ns(be_testkit_clock(kit));
  ck_assert_int_eq(be_testkit_advance_ms(kit, INT64_MAX / BE_NS_PER_MS, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_clock_wall_ns(be_testkit_clock(kit)), wall);
  be_auth_token_free(token);
  /* the mock mailer captures the reset mail */
  ck_assert_int_eq(be_testkit_mail_count(kit), 0);
  ck_assert_int_eq(be_auth_request_reset(app, "user4@example.test", NT, NULL), BE_OK);
  ck_assert_int_eq(be_testkit_mail_count(kit), 1);
  char *to_addr = NULL, *subject = NULL, *body = NULL;
  ck_assert_int_eq(be_testkit_mail_get(&to_addr, &subject, &body, kit, -1, NULL), BE_OK);
  ck_assert_str_eq(to_addr, "user4@example.test");
  ck_assert_str_eq(subject, "Password reset");
  ck_assert_uint_gt(strlen(body), BE_AUTH_TOKEN_LEN);
  be_free(to_addr);
  be_free(subject);
  be_free(body);
  ck_assert_int_eq(be_testkit_mail_get(NULL, NULL, NULL, kit, 1, NULL), BE_E_NOT_FOUND);
  ck_assert_int_eq(be_testkit_mail_fail_next(kit, 1, BE_E_UNAVAILABLE, NULL), BE_OK);
  ck_assert_int_eq(be_auth_request_reset(app, "user4@example.test", NT, NULL), BE_OK); /* hidden */
  ck_assert_int_eq(be_testkit_mail_count(kit), 1);
  ck_assert_int_eq(be_testkit_mail_fail_next(kit, 1, 5, NULL), BE_E_MISUSE);
  be_testkit_mail_clear(kit);
  ck_assert_int_eq(be_testkit_mail_count(kit), 0);
  ck_assert_ptr_nonnull(be_testkit_mailer(kit));
  be_testkit_free(kit);
  be_testkit_free(NULL);
  be_migrator_free(m);
}
END_TEST

static int failing_seed(be_conn *conn, void *ud, be_error **err) {
  (void)ud;
  (void)conn;
  return be_error_new(err, BE_E_CONFLICT, "seed says no") == BE_OK ? BE_E_CONFLICT : BE_E_NOMEM;
}

START_TEST(testkit_bad_options_and_failing_seed) {
  be_testkit *kit = NULL;
  be_testkit_options to = BE_TESTKIT_OPTIONS_INIT;
  be_error *e = NULL;
  to.users = -1;
  svc_expect_field(be_testkit_new(&kit, &to, &e), &e, BE_E_VALIDATION, "users");
  to.users = 1;
  to.version = 5;
  ck_assert_int_eq(be_testkit_new(&kit, &to, NULL), BE_E_MISUSE);
  to.version = BE_TESTKIT_OPTIONS_VERSION;
  to.seed = failing_seed;
  ck_assert_int_eq(be_testkit_new(&kit, &to, &e), BE_E_CONFLICT);
  ck_assert_str_eq(be_error_message(e), "seed says no");
  be_error_free(e);
  ck_assert_ptr_null(kit);
  ck_assert_int_eq(be_testkit_new(NULL, NULL, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_testkit_new(&kit, NULL, NULL), BE_OK); /* no users */
  ck_assert_int_eq(svc_int(be_testkit_app(kit), "SELECT count(*) FROM be_roles"), 2);
  be_testkit_free(kit);
}
END_TEST

typedef struct mailer_thread {
  const be_mailer *m;
  int n;
} mailer_thread;

static void *send_mail(void *arg) {
  mailer_thread *t = arg;
  for (int i = 0; i < t->n; i++)
    ck_assert_int_eq(t->m->send("a@b.c", "s", "body", t->m->user_data, NULL), BE_OK);
  return NULL;
}

START_TEST(mock_mailer_is_thread_safe) {
  be_testkit *kit = NULL;
  ck_assert_int_eq(be_testkit_new(&kit, NULL, NULL), BE_OK);
  mailer_thread mt = {be_testkit_mailer(kit), 500};
  pthread_t t[4];
  for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, send_mail, &mt);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  ck_assert_int_eq(be_testkit_mail_count(kit), 2000);
  be_testkit_free(kit);
}
END_TEST

static int kit_alloc_body(void *arg) {
  (void)arg;
  be_testkit_options to = BE_TESTKIT_OPTIONS_INIT;
  to.users = 2;
  be_testkit *kit = NULL;
  be_error *e = NULL;
  int rc = be_testkit_new(&kit, &to, &e);
  if (rc == BE_OK) {
    rc = be_auth_request_reset(be_testkit_app(kit), "user1@example.test", NT, &e);
    char *body = NULL;
    /* a mailer failure (here: out of memory) is hidden from the caller
     * by design (no account enumeration): then no mail was captured */
    if (rc == BE_OK && be_testkit_mail_count(kit) != 1) rc = BE_E_NOMEM;
    if (rc == BE_OK) rc = be_testkit_mail_get(NULL, NULL, &body, kit, 0, &e);
    be_free(body);
  }
  be_error_free(e);
  be_testkit_free(kit);
  return rc;
}

/* A host mailer gets its user_data last (before err), and be_mailer_init
 * fills the struct like BE_MAILER_INIT. */
typedef struct host_mail {
  int sent;
  char to[64];
} host_mail;

static int host_send(const char *to, const char *subject, const char *body, void *user_data,
                     be_error **err) {
  (void)subject;
  (void)body;
  (void)err;
  host_mail *h = user_data;
  h->sent++;
  snprintf(h->to, sizeof h->to, "%s", to);
  return BE_OK;
}

START_TEST(host_mailer_and_testkit_calls_report_errors) {
  be_mailer m;
  ck_assert_int_eq(be_mailer_init(&m, BE_MAILER_VERSION), BE_OK);
  ck_assert_int_eq(m.version, BE_MAILER_VERSION);
  ck_assert_ptr_null(m.user_data);
  ck_assert_int_eq(be_mailer_init(&m, 99), BE_E_MISUSE);
  ck_assert_int_eq(be_mailer_init(NULL, BE_MAILER_VERSION), BE_E_MISUSE);
  host_mail h = {0, ""};
  ck_assert_int_eq(be_mailer_init(&m, BE_MAILER_VERSION), BE_OK);
  m.send = host_send;
  m.user_data = &h;
  be_app_options o;
  svc_fast_options(&o, ":memory:");
  o.mailer = &m;
  be_app *app = NULL;
  ck_assert_int_eq(be_app_new(&app, &o, NULL), BE_OK);
  int64_t id = svc_user(app, "mail@x.io", "M");
  ck_assert_int_eq(be_auth_set_password(app, 0, id, "a long fine passphrase", NT, NULL), BE_OK);
  ck_assert_int_eq(be_auth_request_reset(app, "mail@x.io", NT, NULL), BE_OK);
  ck_assert_int_eq(h.sent, 1);
  ck_assert_str_eq(h.to, "mail@x.io");
  be_app_free(app);

  /* testkit calls that can fail say why */
  be_testkit *kit = NULL;
  ck_assert_int_eq(be_testkit_new(&kit, NULL, NULL), BE_OK);
  be_error *e = NULL;
  ck_assert_int_eq(be_testkit_advance_ms(kit, -1, &e), BE_E_MISUSE);
  ck_assert_ptr_nonnull(e);
  be_error_free(e);
  e = NULL;
  ck_assert_int_eq(be_testkit_mail_fail_next(kit, 1, 5, &e), BE_E_MISUSE);
  ck_assert_ptr_nonnull(e);
  be_error_free(e);
  be_testkit_free(kit);
}
END_TEST

/* ---- the table prefix: beside a host's own tables ---------------------- */

#define HOST_PW "host-table-pass-9Xr4"
#define HOST_PW2 "host-table-pass-2Zk8"

/* One string or integer from the first row of sql on c ("" for none). */
static void conn_text(be_conn *c, const char *sql, char *out, size_t cap) {
  be_stmt *st = NULL;
  be_error *e = NULL;
  ck_assert_msg(be_conn_prepare(&st, c, sql, &e) == BE_OK, "%s: %s", sql, be_error_message(e));
  out[0] = '\0';
  if (be_stmt_step(st, NULL) == BE_ROW) {
    size_t n = 0;
    const char *t = be_stmt_column_text(st, 0, &n);
    ck_assert_uint_lt(n, cap);
    memcpy(out, t ? t : "", t ? n : 0);
    out[t ? n : 0] = '\0';
  }
  be_stmt_finalize(st);
}

/* A text dump of a host's tables (NULL-terminated names): their schema
 * objects (the tables and every index and trigger on them), their
 * sqlite_sequence rows, then each table's rows in rowid order, every
 * column quoted. Equal dumps mean unchanged tables. */
static char *host_dump(const char *path, const char *const *tables) {
  be_conn *c = NULL;
  ck_assert_int_eq(be_conn_open(&c, be_sqlite_driver(), path, NULL), BE_OK);
  size_t cap = 1 << 16, len = 0;
  char *out = calloc(1, cap);
  char sql[2048], part[8192];
  for (const char *const *t = tables; *t; t++) {
    snprintf(sql, sizeof sql,
             "SELECT group_concat(type || ' ' || name || ': ' || coalesce(sql, ''), char(10))"
             " FROM (SELECT * FROM sqlite_master WHERE tbl_name = '%s' ORDER BY type, name)",
             *t);
    conn_text(c, sql, part, sizeof part);
    len += (size_t)snprintf(out + len, cap - len, "%s\n", part);
    snprintf(sql, sizeof sql, "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = '%s'), 'none')", *t);
    conn_text(c, sql, part, sizeof part);
    len += (size_t)snprintf(out + len, cap - len, "seq %s\n", part);
    /* SELECT quote(a) || ',' || quote(b) ... FROM t ORDER BY rowid */
    char cols[1024];
    snprintf(sql, sizeof sql,
             "SELECT group_concat('quote(' || name || ')', ' || '','' || ') FROM pragma_table_info('%s')",
             *t);
    conn_text(c, sql, cols, sizeof cols);
    ck_assert_msg(cols[0] != '\0', "host table %s is gone", *t);
    snprintf(sql, sizeof sql, "SELECT group_concat(r, char(10)) FROM (SELECT %s AS r FROM %s ORDER BY rowid)",
             cols, *t);
    conn_text(c, sql, part, sizeof part);
    len += (size_t)snprintf(out + len, cap - len, "%s rows:\n%s\n", *t, part);
    ck_assert_uint_lt(len, cap - 1);
  }
  be_conn_close(c);
  return out;
}

/* A host database of its own: users, sessions, roles and schema_migrations
 * (the names the library used to take), with rows, an index and a trigger. */
static void make_host_db(const char *path) {
  be_conn *c = NULL;
  ck_assert_int_eq(be_conn_open(&c, be_sqlite_driver(), path, NULL), BE_OK);
  be_error *e = NULL;
  int rc = be_conn_exec(
    c,
    "CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, login TEXT NOT NULL UNIQUE, karma INTEGER);"
    "CREATE INDEX users_karma ON users(karma);"
    "CREATE TABLE sessions (sid TEXT PRIMARY KEY, user_id INTEGER REFERENCES users(id), data BLOB);"
    "CREATE TABLE roles (name TEXT PRIMARY KEY, level INTEGER NOT NULL);"
    "CREATE TABLE schema_migrations (version TEXT PRIMARY KEY);" /* Rails' shape */
    "CREATE TRIGGER users_count AFTER INSERT ON users BEGIN"
    "  UPDATE roles SET level = level + 1 WHERE name = 'counter'; END;"
    "INSERT INTO roles VALUES ('counter', 0), ('admin', 9);"
    "INSERT INTO users (login, karma) VALUES ('alice', 10), ('bob', NULL), ('carol', -3);"
    "INSERT INTO sessions VALUES ('s1', 1, x'00ff10'), ('s2', 3, NULL);"
    "INSERT INTO schema_migrations VALUES ('20240101000000'), ('20240202000000');",
    &e);
  ck_assert_msg(rc == BE_OK, "%s", be_error_message(e));
  be_conn_close(c);
}

/* The reset token of the kit's last mail: the body's third line. */
static void mailed_token(be_testkit *kit, char out[BE_AUTH_TOKEN_LEN + 1]) {
  char *to = NULL, *subject = NULL, *body = NULL;
  ck_assert_int_eq(be_testkit_mail_get(&to, &subject, &body, kit, -1, NULL), BE_OK);
  const char *line = strchr(strchr(body, '\n') + 1, '\n') + 1;
  ck_assert_ptr_nonnull(strchr(line, '\n'));
  ck_assert_int_eq(strchr(line, '\n') - line, BE_AUTH_TOKEN_LEN);
  memcpy(out, line, BE_AUTH_TOKEN_LEN);
  out[BE_AUTH_TOKEN_LEN] = '\0';
  be_free(to);
  be_free(subject);
  be_free(body);
}

#define OK(call)                                                            \
  do {                                                                      \
    be_error *ok_e = NULL;                                                  \
    int ok_rc = (call);                                                     \
    ck_assert_msg(ok_rc == BE_OK, "%s: %s", #call, be_error_message(ok_e)); \
  } while (0)

/* Users, login, sessions, update, roles and permissions, audit. */
static void use_identity_services(be_app *app, int64_t *out_id, char **out_token) {
  int64_t id = svc_user(app, "host@example.test", "Host User");
  OK(be_auth_set_password(app, 0, id, HOST_PW, NT, &ok_e));
  int64_t uid = 0;
  OK(be_auth_login(out_token, &uid, app, "host@example.test", NT, HOST_PW, NT, &ok_e));
  ck_assert_int_eq(uid, id);
  OK(be_auth_verify(&uid, app, *out_token, NT, &ok_e));
  be_auth_session_list *l = NULL;
  OK(be_auth_list_sessions(&l, app, id, &ok_e));
  ck_assert_uint_eq(be_auth_session_list_count(l), 1);
  be_auth_session_list_free(l);
  be_user_input in = BE_USER_INPUT_INIT;
  in.fields = BE_USER_FIELD_NAME;
  in.name = "Renamed";
  OK(be_user_update(NULL, app, id, id, &in, &ok_e));
  OK(be_perm_role_create(NULL, app, 0, "editor", NT, &ok_e));
  OK(be_perm_role_grant(app, 0, "editor", NT, "posts:write", NT, &ok_e));
  OK(be_perm_user_assign(app, 0, id, "editor", NT, &ok_e));
  OK(be_perm_check(app, id, "posts:write", NT, &ok_e));
  OK(be_perm_role_revoke(app, 0, "editor", NT, "posts:write", NT, &ok_e));
  ck_assert_int_eq(be_perm_check(app, id, "posts:write", NT, NULL), BE_E_FORBIDDEN);
  be_conn *c = NULL;
  OK(be_pool_acquire(&c, be_app_pool(app), &ok_e));
  OK(be_conn_begin(c, BE_TX_IMMEDIATE, &ok_e));
  OK(be_audit_write(NULL, app, c, id, "host.note", NT, "post", NT, 1, "{}", NT, &ok_e));
  OK(be_conn_commit(c, &ok_e));
  be_pool_release(be_app_pool(app), c);
  *out_id = id;
}

/* Password reset (through the kit's mailer), logout, purge, verify, delete. */
static void use_account_services(be_app *app, be_testkit *kit, int64_t id, char *token) {
  OK(be_auth_request_reset(app, "host@example.test", NT, &ok_e));
  char reset[BE_AUTH_TOKEN_LEN + 1];
  mailed_token(kit, reset);
  OK(be_auth_reset_password(app, reset, NT, HOST_PW2, NT, &ok_e));
  ck_assert_int_eq(be_auth_verify(NULL, app, token, NT, NULL), BE_E_UNAUTHORIZED); /* reset ended it */
  be_auth_token_free(token);
  token = NULL;
  OK(be_auth_login(&token, NULL, app, "host@example.test", NT, HOST_PW2, NT, &ok_e));
  OK(be_auth_logout(app, token, NT, &ok_e));
  be_auth_token_free(token);
  OK(be_auth_purge_expired(NULL, app, &ok_e));
  int64_t bad = -1, rows = 0;
  OK(be_audit_verify(&bad, &rows, app, &ok_e));
  ck_assert_int_eq(bad, 0);
  ck_assert_int_gt(rows, 5);
  OK(be_user_delete(app, 0, id, &ok_e));
  OK(be_perm_role_delete(app, 0, "editor", NT, &ok_e));
}

START_TEST(host_tables_stay_unchanged) {
  char *dir = tu_tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/host.db", dir);
  make_host_db(path);
  static const char *const host[] = {"users", "sessions", "roles", "schema_migrations", NULL};
  char *before = host_dump(path, host);
  /* The host's own migrations keep their own record too. */
  be_migrator *m = NULL;
  ck_assert_int_eq(be_migrator_new(&m, NULL), BE_OK);
  ck_assert_int_eq(be_migrator_set_table(m, "host_migrations", NULL), BE_OK);
  ck_assert_int_eq(be_migrator_add(m, 1000, "posts", "CREATE TABLE posts (id INTEGER PRIMARY KEY)", NULL),
                   BE_OK);
  be_testkit *kit = NULL;
  ck_assert_int_eq(be_testkit_new(&kit, NULL, NULL), BE_OK); /* for its capturing mailer */
  be_app_options o;
  svc_fast_options(&o, path);
  o.host_migrations = m;
  o.mailer = be_testkit_mailer(kit);
  for (int round = 0; round < 2; round++) { /* a first open, then a reopen */
    be_app *app = NULL;
    be_error *e = NULL;
    ck_assert_msg(be_app_new(&app, &o, &e) == BE_OK, "%s", be_error_message(e));
    int64_t id = 0;
    char *token = NULL;
    use_identity_services(app, &id, &token);
    use_account_services(app, kit, id, token);
    ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM host_migrations"), 1);
    ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM be_users"), 0); /* deleted */
    be_app_free(app);
  }
  char *after = host_dump(path, host);
  ck_assert_str_eq(after, before);
  free(before);
  free(after);
  be_testkit_free(kit);
  be_migrator_free(m);
  tu_rmdir(dir);
}
END_TEST

/* Every object the app made carries the prefix (SQLite's own
 * sqlite_sequence and automatic indexes aside). */
static void only_prefixed(be_app *app, const char *prefix) {
  char sql[512];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM sqlite_master WHERE name <> 'sqlite_sequence' AND"
           " (substr(tbl_name, 1, %d) <> '%s' OR (substr(name, 1, %d) <> '%s'"
           " AND name NOT LIKE 'sqlite\\_autoindex\\_%s%%' ESCAPE '\\'))",
           (int)strlen(prefix), prefix, (int)strlen(prefix), prefix, prefix);
  ck_assert_int_eq(svc_int(app, sql), 0);
}

static be_app *prefixed_app(const char *path, const char *prefix) {
  be_app_options o;
  svc_fast_options(&o, path);
  o.table_prefix = prefix;
  be_app *app = NULL;
  be_error *e = NULL;
  ck_assert_msg(be_app_new(&app, &o, &e) == BE_OK, "%s: %s", prefix, be_error_message(e));
  return app;
}

static int64_t listed_users(be_app *app) {
  be_user_list *l = NULL;
  ck_assert_int_eq(be_user_list_page(&l, app, NULL, 0, 100, NULL), BE_OK);
  int64_t n = (int64_t)be_user_list_count(l);
  be_user_list_free(l);
  return n;
}

START_TEST(two_prefixes_share_one_file) {
  char *dir = tu_tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/two.db", dir);
  char prefix_a[8];
  strcpy(prefix_a, "shop_"); /* the app copies the prefix */
  be_app *a = prefixed_app(path, prefix_a);
  strcpy(prefix_a, "xxxx_");
  be_app *b = prefixed_app(path, "Blog2_");
  int64_t a1 = svc_user(a, "same@example.test", "A one");
  svc_user(a, "only-a@example.test", "A two");
  int64_t b1 = svc_user(b, "same@example.test", "B one"); /* no clash with a's */
  ck_assert_int_eq(a1, 1);
  ck_assert_int_eq(b1, 1);
  ck_assert_int_eq(listed_users(a), 2);
  ck_assert_int_eq(listed_users(b), 1);
  be_user *u = NULL;
  ck_assert_int_eq(be_user_get_by_email(&u, b, "only-a@example.test", NT, NULL), BE_E_NOT_FOUND);
  ck_assert_int_eq(be_user_get_by_email(&u, b, "same@example.test", NT, NULL), BE_OK);
  ck_assert_str_eq(be_user_name(u), "B one");
  be_user_free(u);
  /* a's password and session mean nothing to b */
  ck_assert_int_eq(be_auth_set_password(a, 0, a1, HOST_PW, NT, NULL), BE_OK);
  char *token = NULL;
  ck_assert_int_eq(be_auth_login(&token, NULL, a, "same@example.test", NT, HOST_PW, NT, NULL), BE_OK);
  ck_assert_int_eq(be_auth_verify(NULL, b, token, NT, NULL), BE_E_UNAUTHORIZED);
  be_auth_token_free(token);
  token = NULL;
  ck_assert_int_eq(be_auth_login(&token, NULL, b, "same@example.test", NT, HOST_PW, NT, NULL),
                   BE_E_UNAUTHORIZED);
  ck_assert_ptr_null(token);
  ck_assert_int_eq(svc_int(a, "SELECT count(*) FROM shop_audit_log"), 4);
  ck_assert_int_eq(svc_int(a, "SELECT count(*) FROM Blog2_audit_log"), 1);
  int64_t va = svc_int(a, "SELECT max(version) FROM shop_schema_migrations");
  ck_assert_int_eq(svc_int(a, "SELECT max(version) FROM Blog2_schema_migrations"), va);
  be_app_free(b);
  /* only the two prefixes are in the file */
  ck_assert_int_eq(svc_int(a, "SELECT count(*) FROM sqlite_master WHERE name <> 'sqlite_sequence'"
                              " AND tbl_name NOT LIKE 'shop\\_%' ESCAPE '\\'"
                              " AND tbl_name NOT LIKE 'Blog2\\_%' ESCAPE '\\'"),
                   0);
  ck_assert_int_eq(svc_int(a, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name LIKE "
                              "'shop\\_%' ESCAPE '\\'"),
                   svc_int(a, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name LIKE "
                              "'Blog2\\_%' ESCAPE '\\'"));
  be_app_free(a);
  /* each reopens with its own data */
  b = prefixed_app(path, "Blog2_");
  ck_assert_int_eq(listed_users(b), 1);
  be_app_free(b);
  tu_rmdir(dir);
}
END_TEST

START_TEST(default_prefix_and_bounds) {
  be_app *app = prefixed_app(":memory:", NULL);
  only_prefixed(app, "be_");
  ck_assert_int_ge(svc_int(app, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"), 11);
  ck_assert_int_ge(svc_int(app, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"), 3);
  be_app_free(app);
  /* the longest prefix, and one of a single underscore */
  char longest[BE_APP_TABLE_PREFIX_MAX + 1];
  memset(longest, 'p', BE_APP_TABLE_PREFIX_MAX);
  longest[BE_APP_TABLE_PREFIX_MAX] = '\0';
  app = prefixed_app(":memory:", longest);
  only_prefixed(app, longest);
  svc_user(app, "long@example.test", "L");
  be_app_free(app);
  app = prefixed_app(":memory:", "_");
  only_prefixed(app, "_");
  be_app_free(app);
  /* the test kit passes the prefix on */
  be_app_options base = BE_APP_OPTIONS_INIT;
  base.table_prefix = "kit_";
  be_testkit_options to = BE_TESTKIT_OPTIONS_INIT;
  to.users = 2;
  to.no_passwords = 1;
  to.app_options = &base;
  be_testkit *kit = NULL;
  ck_assert_int_eq(be_testkit_new(&kit, &to, NULL), BE_OK);
  ck_assert_int_eq(svc_int(be_testkit_app(kit), "SELECT count(*) FROM kit_users"), 2);
  be_testkit_free(kit);
}
END_TEST

START_TEST(bad_prefixes_are_refused_before_anything_is_made) {
  char *dir = tu_tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/none.db", dir);
  char overlong[BE_APP_TABLE_PREFIX_MAX + 2];
  memset(overlong, 'p', sizeof overlong - 1);
  overlong[sizeof overlong - 1] = '\0';
  const char *const bad[] = {
    "",             /* no prefix: the library's tables would take the host's names */
    "a'b_",         /* quote */
    "a b_",         /* space */
    "--",           /* comment */
    "x--",          /* comment after a letter */
    "a;DROP_",      /* statement end */
    "1st_",         /* digit first */
    "b\xd0\xb5_",   /* "be_" with a Cyrillic e */
    "caf\xc3\xa9_", /* non-ASCII letter */
    "a.b_",         /* schema-qualified */
    "\"be\"",       /* quoted identifier */
    overlong,
    "SQLite_", /* SQLite reserves sqlite_ names (its refusal came only at the open) */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    be_app_options o;
    svc_fast_options(&o, path);
    o.table_prefix = bad[i];
    be_app *app = NULL;
    be_error *e = NULL;
    svc_expect_field(be_app_new(&app, &o, &e), &e, BE_E_VALIDATION, "table_prefix");
    ck_assert_ptr_null(app);
    ck_assert_msg(access(path, F_OK) != 0, "prefix %zu created the database file", i);
  }
  /* with other bad options, all are reported at once */
  be_app_options o;
  svc_fast_options(&o, path);
  o.table_prefix = "no way";
  o.pool_max = -1;
  be_app *app = NULL;
  be_error *e = NULL;
  ck_assert_int_eq(be_app_new(&app, &o, &e), BE_E_VALIDATION);
  ck_assert_uint_eq(be_error_field_count(e), 2);
  be_error_free(e);
  ck_assert_int_ne(access(path, F_OK), 0);
  tu_rmdir(dir);
}
END_TEST

START_TEST(testkit_allocation_failures_leak_nothing) {
  TU_FOR_EACH_ALLOC_FAILURE(kit_alloc_body, NULL);
}
END_TEST

/* ---- host knobs: connection setup, the cache's recency mode and shards ---- */

static int count_app_conn(be_conn *conn, void *ud, be_error **err) {
  (void)conn;
  (void)err;
  atomic_fetch_add((_Atomic int *)ud, 1);
  return BE_OK;
}

START_TEST(connection_setup_reaches_every_pooled_connection) {
  _Atomic int calls = 0;
  be_app_options o;
  svc_fast_options(&o, ":memory:");
  o.pool_min = 1;
  o.pool_max = 3;
  o.connection_init_sql = "PRAGMA cache_size=-777; CREATE TEMP TABLE host_scratch(x)";
  o.connection_init = count_app_conn;
  o.connection_init_user_data = &calls;
  be_app *app = NULL;
  ck_assert_int_eq(be_app_new(&app, &o, NULL), BE_OK);
  svc_user(app, "knob@a.io", "Knob"); /* the services run on set-up connections */
  be_conn *c[3];
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(be_pool_acquire(&c[i], be_app_pool(app), NULL), BE_OK);
    ck_assert_int_eq(tu_conn_int(c[i], "PRAGMA cache_size"), -777);
    ck_assert_int_eq(tu_conn_int(c[i], "SELECT count(*) FROM temp.host_scratch"), 0);
  }
  for (int i = 0; i < 3; i++) be_pool_release(be_app_pool(app), c[i]);
  be_pool_stats st = BE_POOL_STATS_INIT;
  ck_assert_int_eq(be_pool_stats_get(&st, be_app_pool(app), NULL), BE_OK);
  ck_assert_int_eq(st.creates, 3);
  ck_assert_int_eq(atomic_load(&calls), 3);
  be_app_free(app);

  /* failing setup: the app does not open, with the setup's own error */
  o.connection_init_sql = "PRAGMA cache_size=-777; THIS IS NOT SQL";
  be_error *e = NULL;
  ck_assert_int_eq(be_app_new(&app, &o, &e), BE_E_STORAGE);
  ck_assert_ptr_null(app);
  ck_assert_ptr_nonnull(strstr(be_error_message(e), "connection setup failed"));
  be_error_free(e);
}
END_TEST

/* set a, b, c; read b, a, c; set d: exact LRU drops b (read longest
 * ago), CLOCK drops a (the oldest stored, every entry having been read). */
static int survives_exact_vs_clock(be_cache *cache, const char *key) {
  const char *keys[] = {"a", "b", "c"};
  for (int i = 0; i < 3; i++) ck_assert_int_eq(be_cache_set(cache, keys[i], 1, "v", 1, 0, NULL), BE_OK);
  char buf[4];
  size_t n = 0;
  const char *reads[] = {"b", "a", "c"};
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(be_cache_get_copy(buf, sizeof buf, &n, cache, reads[i], 1, NULL), BE_OK);
  ck_assert_int_eq(be_cache_set(cache, "d", 1, "v", 1, 0, NULL), BE_OK);
  return be_cache_get_copy(buf, sizeof buf, &n, cache, key, 1, NULL) == BE_OK;
}

START_TEST(cache_recency_mode_and_shards_are_options) {
  be_app_options o;
  svc_fast_options(&o, ":memory:");
  o.cache_max_entries = 3;
  o.cache_shard_count = 1;
  o.cache_lru_mode = BE_CACHE_LRU_EXACT;
  be_app *app = NULL;
  ck_assert_int_eq(be_app_new(&app, &o, NULL), BE_OK);
  be_cache_stats st = BE_CACHE_STATS_INIT;
  ck_assert_int_eq(be_cache_stats_get(&st, be_app_cache(app), NULL), BE_OK);
  ck_assert_uint_eq(st.shard_count, 1);
  ck_assert_int_eq(survives_exact_vs_clock(be_app_cache(app), "a"), 1);
  ck_assert_int_eq(survives_exact_vs_clock(be_app_cache(app), "b"), 0);
  be_app_free(app);

  o.cache_lru_mode = BE_CACHE_LRU_DEFAULT; /* CLOCK */
  ck_assert_int_eq(be_app_new(&app, &o, NULL), BE_OK);
  ck_assert_int_eq(survives_exact_vs_clock(be_app_cache(app), "b"), 1);
  be_app_free(app);
  o.cache_lru_mode = BE_CACHE_LRU_APPROX;
  ck_assert_int_eq(be_app_new(&app, &o, NULL), BE_OK);
  ck_assert_int_eq(survives_exact_vs_clock(be_app_cache(app), "a"), 0);
  be_app_free(app);

  svc_fast_options(&o, ":memory:");
  o.cache_shard_count = 3; /* rounded up to a power of two */
  ck_assert_int_eq(be_app_new(&app, &o, NULL), BE_OK);
  ck_assert_int_eq(be_cache_stats_get(&st, be_app_cache(app), NULL), BE_OK);
  ck_assert_uint_eq(st.shard_count, 4);
  be_app_free(app);
  svc_fast_options(&o, ":memory:");
  ck_assert_int_eq(be_app_new(&app, &o, NULL), BE_OK);
  ck_assert_int_eq(be_cache_stats_get(&st, be_app_cache(app), NULL), BE_OK);
  ck_assert_uint_eq(st.shard_count, 16); /* the default */
  be_app_free(app);

  be_error *e = NULL;
  const int32_t bad_modes[] = {-1, 3};
  for (int i = 0; i < 2; i++) {
    svc_fast_options(&o, ":memory:");
    o.cache_lru_mode = bad_modes[i];
    svc_expect_field(be_app_new(&app, &o, &e), &e, BE_E_VALIDATION, "cache_lru_mode");
  }
  const int32_t bad_shards[] = {-1, 1025, INT32_MAX};
  for (int i = 0; i < 3; i++) {
    svc_fast_options(&o, ":memory:");
    o.cache_shard_count = bad_shards[i];
    svc_expect_field(be_app_new(&app, &o, &e), &e, BE_E_VALIDATION, "cache_shard_count");
  }
  ck_assert_ptr_null(app);
}
END_TEST

/* ---- an open that fails changes nothing ---- */

/* be_app_new(o) fails with code (and field, when not NULL) and leaves the
 * database at path as it was: same bytes, no journal or WAL file left
 * behind (the journal mode is in the bytes; tu_journal_mode() reads it
 * once the other program holds no lock). */
static void expect_open_changes_nothing(const be_app_options *o, const char *path, int32_t code,
                                        const char *field) {
  size_t n0 = 0, n1 = 0;
  unsigned char *before = tu_read_file(path, &n0);
  ck_assert_ptr_nonnull(before);
  be_app *app = NULL;
  be_error *e = NULL;
  svc_expect_field(be_app_new(&app, o, &e), &e, code, field);
  ck_assert_ptr_null(app);
  unsigned char *after = tu_read_file(path, &n1);
  ck_assert_uint_eq(n0, n1);
  ck_assert_msg(memcmp(before, after, n0) == 0, "a failed open changed the file");
  ck_assert(!tu_exists_with(path, "-wal"));
  ck_assert(!tu_exists_with(path, "-shm"));
  ck_assert(!tu_exists_with(path, "-journal"));
  free(before);
  free(after);
}

/* Another program's database (rollback journal) and an app open that
 * fails at each point it can: the file is exactly as it was. */
START_TEST(failed_open_leaves_another_programs_database_alone) {
  char *dir = tu_tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/theirs.db", dir);
  tu_make_foreign_db(path);
  be_app_options o;
  svc_fast_options(&o, path);

  /* an option refused only by the auth service (argon2id below OWASP) */
  o.insecure_test_hashing = 0;
  expect_open_changes_nothing(&o, path, BE_E_VALIDATION, "pwhash_memlimit");
  ck_assert_str_eq(tu_journal_mode(path), "delete");
  o.insecure_test_hashing = 1;

  /* a host migration that fails after libbackend's applied theirs */
  be_migrator *m = NULL;
  ck_assert_int_eq(be_migrator_new(&m, NULL), BE_OK);
  ck_assert_int_eq(be_migrator_add(m, 1000, "ok", "CREATE TABLE posts(id INTEGER)", NULL), BE_OK);
  ck_assert_int_eq(be_migrator_add(m, 1001, "clash", "CREATE TABLE notes(x)", NULL), BE_OK);
  o.host_migrations = m;
  expect_open_changes_nothing(&o, path, BE_E_STORAGE, NULL);
  ck_assert_str_eq(tu_journal_mode(path), "delete");
  be_error *e = NULL;
  ck_assert_int_eq(be_app_new(&(be_app *){NULL}, &o, &e), BE_E_STORAGE);
  TU_ASSERT_TEXT_ONLY_IN_CAUSE(e, "already exists"); /* SQLite's words: the cause only */
  be_error_free(e);
  o.host_migrations = NULL;

  /* locked by the other program: busy (not unreachable) in rollback mode */
  be_sqlite_options so = BE_SQLITE_OPTIONS_INIT;
  so.busy_timeout_ms = 50;
  be_driver *drv = NULL;
  ck_assert_int_eq(be_sqlite_driver_new(&drv, &so, NULL), BE_OK);
  o.driver = drv;
  sqlite3 *other = tu_raw_open(path);
  tu_raw_exec(other, "BEGIN EXCLUSIVE; SELECT count(*) FROM notes");
  expect_open_changes_nothing(&o, path, BE_E_BUSY, NULL);
  tu_raw_exec(other, "ROLLBACK; BEGIN IMMEDIATE; SELECT count(*) FROM notes");
  expect_open_changes_nothing(&o, path, BE_E_BUSY, NULL);
  tu_raw_exec(other, "ROLLBACK");
  sqlite3_close(other);
  ck_assert_str_eq(tu_journal_mode(path), "delete");

  /* the audit key of an app that used the file before (with the rollback
   * journal), refused: the other key's check writes nothing */
  be_sqlite_options keep = BE_SQLITE_OPTIONS_INIT;
  keep.journal_mode = BE_SQLITE_JOURNAL_DELETE;
  be_driver *delete_drv = NULL;
  ck_assert_int_eq(be_sqlite_driver_new(&delete_drv, &keep, NULL), BE_OK);
  uint8_t k1[32] = {1}, k2[32] = {2};
  o.driver = delete_drv;
  o.audit_key = k1;
  o.audit_key_len = sizeof k1;
  be_app *app = NULL;
  ck_assert_int_eq(be_app_new(&app, &o, NULL), BE_OK);
  be_app_free(app);
  ck_assert_str_eq(tu_journal_mode(path), "delete");
  o.driver = NULL; /* the default: WAL, which must not be switched on */
  o.audit_key = k2;
  expect_open_changes_nothing(&o, path, BE_E_VALIDATION, "audit_key");
  ck_assert_str_eq(tu_journal_mode(path), "delete");

  /* and an open that succeeds switches to WAL, the other program's rows kept */
  o.audit_key = k1;
  ck_assert_int_eq(be_app_new(&app, &o, NULL), BE_OK);
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM notes"), 200);
  be_app_free(app);
  ck_assert_str_eq(tu_journal_mode(path), "wal");
  be_migrator_free(m);
  be_sqlite_driver_free(drv);
  be_sqlite_driver_free(delete_drv);
  tu_rmdir(dir);
}
END_TEST

/* A failed open at a path where no database was leaves no file there. */
START_TEST(failed_open_creates_no_database) {
  char *dir = tu_tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/new.db", dir);
  be_migrator *m = NULL;
  ck_assert_int_eq(be_migrator_new(&m, NULL), BE_OK);
  ck_assert_int_eq(be_migrator_add(m, 1000, "broken", "CREATE TABLE nope (", NULL), BE_OK);
  be_app_options o;
  svc_fast_options(&o, path);
  o.host_migrations = m;
  be_app *app = NULL;
  ck_assert_int_eq(be_app_new(&app, &o, NULL), BE_E_STORAGE);
  ck_assert(!tu_exists(path));
  ck_assert(!tu_exists_with(path, "-journal"));
  o.insecure_test_hashing = 0; /* refused before anything is opened */
  o.host_migrations = NULL;
  ck_assert_int_eq(be_app_new(&app, &o, NULL), BE_E_VALIDATION);
  ck_assert(!tu_exists(path));
  /* an empty file that was there before stays */
  tu_write_file(path, "", 0);
  o.insecure_test_hashing = 1;
  o.host_migrations = m;
  ck_assert_int_eq(be_app_new(&app, &o, NULL), BE_E_STORAGE);
  ck_assert(tu_exists(path));
  be_migrator_free(m);
  tu_rmdir(dir);
}
END_TEST

/* After a failed open the setup deletes only the file it made itself
 * (O_EXCL, then the same device and inode): a file at the path that is
 * not that one, such as another process's new database, still empty in
 * its first transaction, stays. It used to delete any empty file where
 * it had seen none: a racing process's committed database ended up in
 * an unlinked file. */
START_TEST(failed_setup_deletes_only_its_own_file) {
  char *dir = tu_tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/own.db", dir);
  be__app_res res;
  memset(&res, 0, sizeof res);
  res.opts.driver = be_sqlite_driver();
  res.dsn = path;
  be_conn *c = NULL;
  ck_assert_int_eq(be__app_res_setup_conn(&res, &c, NULL), BE_OK);
  ck_assert(tu_exists(path));
  be__app_res_setup_close(&res, c, 1);
  ck_assert_msg(!tu_exists(path), "its own file stayed");
  ck_assert_int_eq(be__app_res_setup_conn(&res, &c, NULL), BE_OK);
  ck_assert_int_eq(unlink(path), 0); /* another process's file now */
  tu_write_file(path, "", 0);
  be__app_res_setup_close(&res, c, 1);
  ck_assert_msg(tu_exists(path), "another process's file was deleted");
  ck_assert_int_eq(be__app_res_setup_conn(&res, &c, NULL), BE_OK); /* there before */
  be__app_res_setup_close(&res, c, 1);
  ck_assert(tu_exists(path));
  tu_rmdir(dir);
}
END_TEST

/* A driver whose open flags may not create the file (READWRITE without
 * CREATE, or READONLY) must not get one made for it: app.h says a missing
 * file is created as the driver's open flags allow. d7ae10a made the file
 * itself whatever the flags (the READWRITE app then opened and migrated
 * it). */
START_TEST(open_flags_without_create_make_no_file) {
  char *dir = tu_tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/nocreate.db", dir);
  const int flags[] = {SQLITE_OPEN_READWRITE, SQLITE_OPEN_READONLY};
  for (int i = 0; i < 2; i++) {
    be_sqlite_options so = BE_SQLITE_OPTIONS_INIT;
    so.open_flags = flags[i];
    be_driver *drv = NULL;
    ck_assert_int_eq(be_sqlite_driver_new(&drv, &so, NULL), BE_OK);
    be_app_options o;
    svc_fast_options(&o, path);
    o.driver = drv;
    be_app *app = NULL;
    ck_assert_int_ne(be_app_new(&app, &o, NULL), BE_OK);
    ck_assert_msg(!tu_exists(path), "flags %#x: a file was made", flags[i]);
    be_sqlite_driver_free(drv);
  }
  tu_rmdir(dir);
}
END_TEST

START_TEST(unusable_file_fails_the_open_permanently) {
  char *dir = tu_tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/junk.db", dir);
  char junk[4096];
  for (size_t i = 0; i < sizeof junk; i++) junk[i] = (char)(i * 7 + 3);
  tu_write_file(path, junk, sizeof junk);
  be_app_options o;
  svc_fast_options(&o, path);
  be_app *app = NULL;
  be_error *e = NULL;
  ck_assert_int_eq(be_app_new(&app, &o, &e), BE_E_STORAGE);
  ck_assert_int_eq(be_error_is_retryable(e), 0);
  ck_assert_int_eq(be_error_http_status(e), 500);
  ck_assert_ptr_nonnull(strstr(be_error_message(e), path));
  be_error_free(e);
  size_t n = 0;
  unsigned char *after = tu_read_file(path, &n);
  ck_assert_uint_eq(n, sizeof junk);
  ck_assert_int_eq(memcmp(after, junk, n), 0);
  free(after);
  tu_rmdir(dir);
}
END_TEST

/* ---- a database that disappears under a running app ---- */

static void vanish_under_app(tu_gone_how how) {
  char *dir = tu_tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/app.db", dir);
  be_app_options o;
  svc_fast_options(&o, path);
  o.pool_min = 2;
  o.pool_max = 4;
  be_app *app = NULL;
  ck_assert_int_eq(be_app_new(&app, &o, NULL), BE_OK);
  svc_user(app, "before@x.io", "Before");
  tu_make_gone(path, dir, how);
  /* every write fails with a typed error; none is acknowledged into a
   * file nobody can see */
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = "after@x.io";
  in.name = "After";
  for (int i = 0; i < 6; i++) {
    be_error *e = NULL;
    int rc = be_user_create(NULL, NULL, app, 0, &in, &e);
    ck_assert_msg(rc == BE_E_CONN_LOST || rc == BE_E_DB_UNREACHABLE || rc == BE_E_STORAGE,
                  "write %d after the file went: rc %d (%s)", i, rc, be_error_message(e));
    if (how != TU_GONE_REPLACED) ck_assert(rc == BE_E_CONN_LOST || rc == BE_E_DB_UNREACHABLE);
    be_error_free(e);
  }
  ck_assert_int_ne(be_pool_maintain(be_app_pool(app), NULL), BE_E_POOL_CLOSED);
  /* nothing created where the database was; the replacement untouched */
  if (how == TU_GONE_REPLACED) {
    sqlite3 *db = tu_raw_open(path);
    sqlite3_stmt *st = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_int_eq(sqlite3_column_int(st, 0), 1); /* its notes table, nothing of ours */
    sqlite3_finalize(st);
    sqlite3_close(db);
  } else {
    ck_assert(!tu_exists(path));
  }
  be_pool_stats st = BE_POOL_STATS_INIT;
  ck_assert_int_eq(be_pool_stats_get(&st, be_app_pool(app), NULL), BE_OK);
  ck_assert_int_eq(st.in_use, 0);
  ck_assert_int_eq(st.waiting, 0);
  be_app_free(app);
  if (how != TU_GONE_REPLACED) ck_assert(!tu_exists(path));
  tu_rmdir(dir);
}

START_TEST(deleted_database_fails_writes) { vanish_under_app(TU_GONE_DELETED); }
END_TEST

START_TEST(renamed_database_fails_writes) { vanish_under_app(TU_GONE_RENAMED); }
END_TEST

START_TEST(replaced_database_fails_writes_and_is_not_migrated) { vanish_under_app(TU_GONE_REPLACED); }
END_TEST

/* A PostgreSQL URI and no driver: the PostgreSQL driver (an unreachable
 * server is a 503), or in a build without libpq a 400 on "database". */
START_TEST(postgres_uri_picks_its_driver) {
  be_app_options o = BE_APP_OPTIONS_INIT;
  o.database = "postgresql:///none?host=/nonexistent-be-dir&connect_timeout=2";
  be_app *app = NULL;
  be_error *e = NULL;
  if (be_postgres_driver() == NULL) {
    ck_assert_int_eq(be_app_new(&app, &o, &e), BE_E_VALIDATION);
    ck_assert_str_eq(be_error_field_name(e, 0), "database");
  } else {
    ck_assert_int_eq(be_app_new(&app, &o, &e), BE_E_DB_UNREACHABLE);
  }
  ck_assert_ptr_null(app);
  be_error_free(e);
}
END_TEST

static Suite *app_suite(void) {
  be_log_set_handler(NULL, NULL, BE_LOG_OFF, NULL);
  Suite *s = suite_create("app");
  TCase *tc = tcase_create("app");
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, options_are_validated);
  tcase_add_test(tc, postgres_uri_picks_its_driver);
  tcase_add_test(tc, memory_apps_are_private_and_shared_by_the_pool);
  tcase_add_test(tc, file_database_migrates_once_with_host_migrations);
  tcase_add_test(tc, app_allocation_failures_leak_nothing);
  tcase_add_test(tc, testkit_seeds_users_roles_and_host_rows);
  tcase_add_test(tc, testkit_bad_options_and_failing_seed);
  tcase_add_test(tc, mock_mailer_is_thread_safe);
  tcase_add_test(tc, host_mailer_and_testkit_calls_report_errors);
  tcase_add_test(tc, testkit_allocation_failures_leak_nothing);
  tcase_add_test(tc, host_tables_stay_unchanged);
  tcase_add_test(tc, two_prefixes_share_one_file);
  tcase_add_test(tc, default_prefix_and_bounds);
  tcase_add_test(tc, bad_prefixes_are_refused_before_anything_is_made);
  tcase_add_test(tc, failed_open_leaves_another_programs_database_alone);
  tcase_add_test(tc, failed_open_creates_no_database);
  tcase_add_test(tc, failed_setup_deletes_only_its_own_file);
  tcase_add_test(tc, open_flags_without_create_make_no_file);
  tcase_add_test(tc, unusable_file_fails_the_open_permanently);
  tcase_add_test(tc, deleted_database_fails_writes);
  tcase_add_test(tc, renamed_database_fails_writes);
  tcase_add_test(tc, replaced_database_fails_writes_and_is_not_migrated);
  tcase_add_test(tc, connection_setup_reaches_every_pooled_connection);
  tcase_add_test(tc, cache_recency_mode_and_shards_are_options);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(app_suite)
