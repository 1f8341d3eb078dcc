/* SPDX-License-Identifier: MIT */
/* The app object (options, migrations, :memory: handling, teardown) and
 * the public test kit. */
#include "svc_testutil.h"

#include <pthread.h>
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
    ck_assert_int_eq(be_conn_prepare(&st, c[i], "SELECT count(*) FROM users", NULL), BE_OK);
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
                                   " NOT NULL REFERENCES users(id), title TEXT NOT NULL)",
                                   NULL),
                   BE_OK);
  be_app_options o;
  svc_fast_options(&o, path);
  o.host_migrations = m;
  be_app *app = NULL;
  be_error *e = NULL;
  ck_assert_msg(be_app_new(&app, &o, &e) == BE_OK, "%s", be_error_message(e));
  int64_t id = svc_user(app, "file@x.io", "F");
  ck_assert_int_eq(svc_int(app, "SELECT max(version) FROM schema_migrations"), 1000);
  /* libbackend's own: 1..N, each once */
  int64_t own = svc_int(app, "SELECT count(*) FROM schema_migrations WHERE version < 1000");
  ck_assert_int_ge(own, 4);
  ck_assert_int_eq(svc_int(app, "SELECT max(version) FROM schema_migrations WHERE version < 1000"),
                   own);
  be_app_free(app);
  /* reopen: nothing applied twice, data kept */
  ck_assert_int_eq(be_app_new(&app, &o, NULL), BE_OK);
  be_user *u = NULL;
  ck_assert_int_eq(be_user_get(&u, app, id, NULL), BE_OK);
  be_user_free(u);
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM schema_migrations"), own + 1);
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
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM users"), 5);
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
  ck_assert_int_eq(svc_int(be_testkit_app(kit), "SELECT count(*) FROM roles"), 2);
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

static Suite *app_suite(void) {
  be_log_set_handler(NULL, NULL, BE_LOG_OFF, NULL);
  Suite *s = suite_create("app");
  TCase *tc = tcase_create("app");
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, options_are_validated);
  tcase_add_test(tc, memory_apps_are_private_and_shared_by_the_pool);
  tcase_add_test(tc, file_database_migrates_once_with_host_migrations);
  tcase_add_test(tc, app_allocation_failures_leak_nothing);
  tcase_add_test(tc, testkit_seeds_users_roles_and_host_rows);
  tcase_add_test(tc, testkit_bad_options_and_failing_seed);
  tcase_add_test(tc, mock_mailer_is_thread_safe);
  tcase_add_test(tc, host_mailer_and_testkit_calls_report_errors);
  tcase_add_test(tc, testkit_allocation_failures_leak_nothing);
  tcase_add_test(tc, connection_setup_reaches_every_pooled_connection);
  tcase_add_test(tc, cache_recency_mode_and_shards_are_options);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(app_suite)
