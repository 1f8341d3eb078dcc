/* SPDX-License-Identifier: MIT */
/* AuthService: login, throttling, sessions, password change and reset, the
 * policy, the hash bound, and failure paths (fault driver, failing
 * allocator). Apps come from the testkit (in-memory, fake clock, mock
 * mailer) except where a test needs a file it reopens. In PostgreSQL mode
 * (meson's "auth-postgres") the kits' apps go to fresh schemas of the
 * BE_TEST_PG_DSN server (svc_testutil.h); apps on files and fault drivers
 * stay on SQLite. */
#include "svc_testutil.h"

#include <backend/auth.h>
#include <backend/fault.h>
#include <backend/mailer.h>
#include <backend/pool.h>
#include <backend/sqlite.h>
#include <backend/testkit.h>

#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <time.h>

#include "auth.h"
#include "auth_password.h"
#include "sha1.h"

#define PW BE_TESTKIT_PASSWORD
#define NEWPW "a brand new passphrase"
#define NT BE_NUL_TERMINATED
#define MIN_NS (60 * BE_NS_PER_SEC)
#define MIN_MS (60 * 1000)
#define START_MS BE_TESTKIT_START_WALL_MS

/* ---- helpers --------------------------------------------------------- */

static be_testkit *kit_with(const be_app_options *base, int32_t users) {
  be_testkit_options o = BE_TESTKIT_OPTIONS_INIT;
  o.users = users;
  o.app_options = base;
  o.database = svc_on_pg() ? svc_pg_fresh_dsn() : NULL;
  be_testkit *k = NULL;
  be_error *e = NULL;
  int rc = be_testkit_new(&k, &o, &e);
  ck_assert_msg(rc == BE_OK, "testkit: %s", be_error_message(e));
  return k;
}

static be_testkit *kit_new(int32_t users) { return kit_with(NULL, users); }

/* One integer from a query with one int64 parameter (or none if sql has no '?'). */
static int64_t q_int(be_app *app, const char *sql, int64_t arg) {
  be_conn *c = NULL;
  ck_assert_int_eq(be_pool_acquire(&c, be_app_pool(app), NULL), BE_OK);
  be_stmt *st = NULL;
  ck_assert_int_eq(be_conn_prepare(&st, c, sql, NULL), BE_OK);
  if (strchr(sql, '?')) ck_assert_int_eq(be_stmt_bind_int64(st, 1, arg, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(st, NULL), BE_ROW);
  int64_t v = be_stmt_column_int64(st, 0);
  be_stmt_finalize(st);
  be_pool_release(be_app_pool(app), c);
  return v;
}

static char *q_text(be_app *app, const char *sql, int64_t arg) {
  be_conn *c = NULL;
  ck_assert_int_eq(be_pool_acquire(&c, be_app_pool(app), NULL), BE_OK);
  be_stmt *st = NULL;
  ck_assert_int_eq(be_conn_prepare(&st, c, sql, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_int64(st, 1, arg, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(st, NULL), BE_ROW);
  const char *s = be_stmt_column_text(st, 0, NULL);
  char *copy = strdup(s ? s : "");
  be_stmt_finalize(st);
  be_pool_release(be_app_pool(app), c);
  return copy;
}

static void q_exec(be_app *app, const char *sql, int64_t arg) {
  be_conn *c = NULL;
  ck_assert_int_eq(be_pool_acquire(&c, be_app_pool(app), NULL), BE_OK);
  be_stmt *st = NULL;
  ck_assert_int_eq(be_conn_prepare(&st, c, sql, NULL), BE_OK);
  if (strchr(sql, '?')) ck_assert_int_eq(be_stmt_bind_int64(st, 1, arg, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(st, NULL), BE_DONE);
  be_stmt_finalize(st);
  be_pool_release(be_app_pool(app), c);
}

static int64_t audit_count(be_app *app, const char *action) {
  be_conn *c = NULL;
  ck_assert_int_eq(be_pool_acquire(&c, be_app_pool(app), NULL), BE_OK);
  be_stmt *st = NULL;
  ck_assert_int_eq(be_conn_prepare(&st, c, "SELECT count(*) FROM be_audit_log WHERE action = ?", NULL),
                   BE_OK);
  ck_assert_int_eq(be_stmt_bind_text(st, 1, action, BE_NUL_TERMINATED, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(st, NULL), BE_ROW);
  int64_t v = be_stmt_column_int64(st, 0);
  be_stmt_finalize(st);
  be_pool_release(be_app_pool(app), c);
  return v;
}

/* Log in and expect success; returns the token (be_auth_token_free). */
static char *login_ok(be_app *app, const char *email, const char *pw, int64_t expect_id) {
  char *tok = NULL;
  int64_t uid = -1;
  be_error *e = NULL;
  int rc = be_auth_login(&tok, &uid, app, email, NT, pw, NT, &e);
  ck_assert_msg(rc == BE_OK, "login %s: %s", email, be_error_message(e));
  ck_assert_ptr_nonnull(tok);
  ck_assert_uint_eq(strlen(tok), BE_AUTH_TOKEN_LEN);
  if (expect_id) ck_assert_int_eq(uid, expect_id);
  return tok;
}

/* Expect a login to fail with the generic answer. */
static void login_denied(be_app *app, const char *email, const char *pw) {
  char *tok = (char *)"x";
  int64_t uid = 77;
  be_error *e = NULL;
  ck_assert_int_eq(be_auth_login(&tok, &uid, app, email, NT, pw, NT, &e), BE_E_UNAUTHORIZED);
  ck_assert_ptr_null(tok);
  ck_assert_int_eq(uid, 0);
  ck_assert_str_eq(be_error_message(e), "invalid email or password");
  ck_assert_int_eq(be_error_http_status(e), 401);
  ck_assert_uint_eq(be_error_field_count(e), 0);
  be_error_free(e);
}

static int verify_code(be_app *app, const char *tok, int64_t *uid) {
  return be_auth_verify(uid, app, tok, NT, NULL);
}

/* rc and *ep are code with a field error naming field; frees *ep. */
static void expect_field(int rc, be_error **ep, int32_t code, const char *field) {
  ck_assert_int_eq(rc, code);
  ck_assert_int_eq(be_error_code(*ep), code);
  ck_assert_uint_ge(be_error_field_count(*ep), 1);
  ck_assert_str_eq(be_error_field_name(*ep, 0), field);
  be_error_free(*ep);
  *ep = NULL;
}

static be_auth_session_list *sessions_of(be_app *app, int64_t user_id) {
  be_auth_session_list *l = NULL;
  be_error *e = NULL;
  ck_assert_msg(be_auth_list_sessions(&l, app, user_id, &e) == BE_OK, "%s", be_error_message(e));
  return l;
}

/* The reset token from the last captured mail: the body's third line. */
static void last_reset_token(be_testkit *k, char out[BE_AUTH_TOKEN_LEN + 1]) {
  char *to = NULL, *subject = NULL, *body = NULL;
  ck_assert_int_eq(be_testkit_mail_get(&to, &subject, &body, k, -1, NULL), BE_OK);
  ck_assert_str_eq(subject, "Password reset");
  const char *p = body;
  for (int line = 0; line < 2; line++) {
    p = strchr(p, '\n');
    ck_assert_ptr_nonnull(p);
    p++;
  }
  const char *end = strchr(p, '\n');
  ck_assert_ptr_nonnull(end);
  ck_assert_int_eq(end - p, BE_AUTH_TOKEN_LEN);
  memcpy(out, p, BE_AUTH_TOKEN_LEN);
  out[BE_AUTH_TOKEN_LEN] = '\0';
  be_free(to);
  be_free(subject);
  sodium_memzero(body, strlen(body));
  be_free(body);
}

/* ---- login ----------------------------------------------------------- */

START_TEST(login_success_and_verify) {
  be_testkit *k = kit_new(2);
  be_app *app = be_testkit_app(k);
  int64_t id1 = be_testkit_user_id(k, 1);
  char *tok = login_ok(app, "user1@example.test", PW, id1);
  int64_t uid = 0;
  ck_assert_int_eq(be_auth_verify(&uid, app, tok, NT, NULL), BE_OK);
  ck_assert_int_eq(uid, id1);
  /* the email is matched trimmed and case-insensitively (as stored) */
  char *tok2 = login_ok(app, "  USER1@Example.TEST ", PW, id1);
  ck_assert_str_ne(tok, tok2); /* a fresh session every time */
  /* only the hash is stored */
  ck_assert_int_eq(q_int(app, "SELECT count(*) FROM be_sessions WHERE user_id = ?", id1), 2);
  ck_assert_int_eq(q_int(app, "SELECT length(token_hash) FROM be_sessions LIMIT 1", 0), 32);
  be_auth_token_free(tok);
  be_auth_token_free(tok2);
  be_auth_token_free(NULL);
  /* argument checks */
  be_error *e = NULL;
  ck_assert_int_eq(be_auth_login(&tok, NULL, NULL, "a@b.c", NT, PW, NT, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_auth_login(NULL, NULL, app, "a@b.c", NT, PW, NT, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_auth_login(&tok, NULL, app, NULL, NT, PW, NT, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "email");
  be_error_free(e);
  ck_assert_int_eq(be_auth_login(&tok, NULL, app, "   ", NT, PW, NT, NULL), BE_E_VALIDATION);
  char long_email[1000];
  memset(long_email, ' ', sizeof long_email - 1);
  memcpy(long_email, "user1@example.test", 18); /* then 981 spaces and an x: not trimmed away */
  long_email[sizeof long_email - 2] = 'x';
  long_email[sizeof long_email - 1] = '\0';
  ck_assert_int_eq(be_auth_login(&tok, NULL, app, long_email, NT, PW, NT, NULL), BE_E_VALIDATION);
  ck_assert_int_eq(be_auth_login(&tok, NULL, app, "user1@example.test", NT, NULL, NT, NULL),
                   BE_E_VALIDATION);
  char big[BE_AUTH_PASSWORD_MAX_BYTES + 2];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  ck_assert_int_eq(be_auth_login(&tok, NULL, app, "user1@example.test", NT, big, NT, NULL),
                   BE_E_VALIDATION);
  ck_assert_int_eq(be_auth_verify(NULL, NULL, "x", NT, NULL), BE_E_MISUSE);
  be_testkit_free(k);
}
END_TEST

START_TEST(failures_share_one_answer) {
  be_testkit *k = kit_new(3);
  be_app *app = be_testkit_app(k);
  login_denied(app, "user1@example.test", "wrong password here"); /* wrong password */
  login_denied(app, "nobody@example.test", PW);                   /* unknown user */
  q_exec(app, "UPDATE be_users SET status = 1 WHERE id = ?", be_testkit_user_id(k, 2));
  login_denied(app, "user2@example.test", PW); /* disabled, right pw */
  q_exec(app, "UPDATE be_users SET password_hash = NULL WHERE id = ?", be_testkit_user_id(k, 0));
  login_denied(app, "user0@example.test", PW); /* no password */
  q_exec(app, "UPDATE be_users SET password_hash = 'garbage' WHERE id = ?", be_testkit_user_id(k, 0));
  login_denied(app, "user0@example.test", "garbage"); /* unusable hash */
  /* the wrong password counted; the others touched nothing */
  ck_assert_int_eq(q_int(app, "SELECT failed_logins FROM be_users WHERE id = ?",
                         be_testkit_user_id(k, 1)),
                   1);
  ck_assert_int_eq(q_int(app, "SELECT failed_logins FROM be_users WHERE id = ?",
                         be_testkit_user_id(k, 2)),
                   0);
  ck_assert_int_eq(q_int(app, "SELECT count(*) FROM be_sessions", 0), 0);
  be_testkit_free(k);
}
END_TEST

static be_app_options throttle_opts(void) {
  be_app_options o = BE_APP_OPTIONS_INIT;
  o.throttle_after = 3;
  o.lockout_after = 6;
  o.lockout_ms = 10 * 60 * 1000;
  return o;
}

START_TEST(backoff_doubles_and_ignores_attempts_inside_window) {
  be_app_options o = throttle_opts();
  be_testkit *k = kit_with(&o, 1);
  be_app *app = be_testkit_app(k);
  int64_t id = be_testkit_user_id(k, 0);
  const char *em = "user0@example.test";
  for (int i = 0; i < 2; i++) login_denied(app, em, "wrong password here");
  ck_assert_int_eq(q_int(app, "SELECT locked_until FROM be_users WHERE id = ?", id), 0);
  login_denied(app, em, "wrong password here"); /* 3rd: blocked for 1 s */
  int64_t now = be_clock_wall_ns(be_testkit_clock(k));
  ck_assert_int_eq(q_int(app, "SELECT locked_until FROM be_users WHERE id = ?", id), now + BE_NS_PER_SEC);
  login_denied(app, em, PW);                                                              /* right password inside the window: same answer */
  ck_assert_int_eq(q_int(app, "SELECT failed_logins FROM be_users WHERE id = ?", id), 3); /* not counted */
  be_testkit_advance_ms(k, 1000, NULL);
  login_denied(app, em, "wrong password here"); /* 4th: blocked for 2 s */
  be_testkit_advance_ms(k, 1000, NULL);
  login_denied(app, em, PW);
  be_testkit_advance_ms(k, 1000, NULL);
  char *tok = login_ok(app, em, PW, id); /* window over: success resets */
  ck_assert_int_eq(q_int(app, "SELECT failed_logins FROM be_users WHERE id = ?", id), 0);
  ck_assert_int_eq(q_int(app, "SELECT locked_until FROM be_users WHERE id = ?", id), 0);
  be_auth_token_free(tok);
  be_testkit_free(k);
}
END_TEST

START_TEST(lockout_then_reset_on_success) {
  be_app_options o = throttle_opts();
  be_testkit *k = kit_with(&o, 1);
  be_app *app = be_testkit_app(k);
  int64_t id = be_testkit_user_id(k, 0);
  const char *em = "user0@example.test";
  for (int i = 0; i < 6; i++) {
    login_denied(app, em, "wrong password here");
    be_testkit_advance_ms(k, 60 * 1000, NULL); /* wait out each backoff window */
  }
  /* the 6th failure locked the account for lockout_ms (minus the minute waited) */
  ck_assert_int_eq(audit_count(app, "auth.lockout"), 1);
  login_denied(app, em, PW);
  be_testkit_advance_ms(k, 8 * 60 * 1000, NULL);
  login_denied(app, em, PW); /* still locked: 9 of 10 minutes */
  be_testkit_advance_ms(k, 60 * 1000, NULL);
  char *tok = login_ok(app, em, PW, id);
  ck_assert_int_eq(q_int(app, "SELECT failed_logins FROM be_users WHERE id = ?", id), 0);
  /* after a success the count starts again from zero */
  login_denied(app, em, "wrong password here");
  ck_assert_int_eq(q_int(app, "SELECT locked_until FROM be_users WHERE id = ?", id), 0);
  be_auth_token_free(tok);
  be_testkit_free(k);
}
END_TEST

/* The backoff doubles 1 s per failure: past 33 doublings 1 s << n no longer
 * fits int64 ns. It must stay capped at lockout_ms, never wrap to "no block". */
START_TEST(backoff_never_overflows_into_no_block) {
  be_app_options o = BE_APP_OPTIONS_INIT;
  o.throttle_after = 1;
  o.lockout_after = 1000; /* far away: only the backoff applies */
  o.lockout_ms = 60 * 60 * 1000;
  be_testkit *k = kit_with(&o, 1);
  be_app *app = be_testkit_app(k);
  int64_t id = be_testkit_user_id(k, 0);
  const char *em = "user0@example.test";
  for (int i = 1; i <= 40; i++) {
    login_denied(app, em, "wrong password here");
    int64_t now = be_clock_wall_ns(be_testkit_clock(k));
    int64_t until = q_int(app, "SELECT locked_until FROM be_users WHERE id = ?", id);
    ck_assert_msg(until > now, "failure %d: no block (locked_until %lld)", i, (long long)until);
    ck_assert_int_le(until, now + 60 * MIN_NS);
    login_denied(app, em, PW); /* the right password inside the window */
    be_testkit_advance_ms(k, 2 * 60 * 60 * 1000, NULL);
  }
  ck_assert_int_eq(q_int(app, "SELECT failed_logins FROM be_users WHERE id = ?", id), 40);
  be_testkit_free(k);
}
END_TEST

/* ---- rehash (file database reopened with raised parameters) ---------- */

/* The database a "file" app opens at path: the path itself, or in
 * PostgreSQL mode a schema of the test server named after it, created on
 * first use, so reopening the path reopens the same data (static buffer). */
static const char *db_at(const char *path) {
  if (!svc_on_pg()) return path;
  uint64_t h = 1469598103934665603u; /* FNV-1a */
  for (const char *p = path; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211u;
  char schema[64];
  snprintf(schema, sizeof schema, "auth_%ld_%016llx", (long)getpid(), (unsigned long long)h);
  const char *base = getenv("BE_TEST_PG_DSN");
  be_conn *c = NULL;
  be_error *e = NULL;
  ck_assert_msg(be_conn_open(&c, be_postgres_driver(), base, &e) == BE_OK, "%s", be_error_message(e));
  char sql[128];
  snprintf(sql, sizeof sql, "CREATE SCHEMA IF NOT EXISTS %s", schema);
  ck_assert_int_eq(be_conn_exec(c, sql, NULL), BE_OK);
  be_conn_close(c);
  static char dsn[1024];
  snprintf(dsn, sizeof dsn, "%s%soptions=-csearch_path%%3D%s", base, strchr(base, '?') ? "&" : "?",
           schema);
  return dsn;
}

static be_app *file_app_drv(const char *path, be_clock *clock, uint64_t ops, uint64_t mem,
                            const be_driver *drv) {
  be_app_options o = BE_APP_OPTIONS_INIT;
  o.database = drv == NULL ? db_at(path) : path; /* fault drivers wrap SQLite */
  o.driver = drv;
  o.clock = clock;
  o.insecure_test_hashing = 1;
  o.pwhash_opslimit = ops;
  o.pwhash_memlimit = mem;
  be_app *app = NULL;
  be_error *e = NULL;
  int rc = be_app_new(&app, &o, &e);
  ck_assert_msg(rc == BE_OK, "app: %s", be_error_message(e));
  return app;
}

static be_app *file_app(const char *path, be_clock *clock, uint64_t ops, uint64_t mem) {
  return file_app_drv(path, clock, ops, mem, NULL);
}

/* A user with password PW on a plain app; returns the id. */
static int64_t add_user(be_app *app, const char *email) {
  char sql[256];
  snprintf(sql, sizeof sql, "INSERT INTO be_users (email, name, created_at, updated_at) "
                            "VALUES ('%s', 'Someone', 0, 0)",
           email);
  q_exec(app, sql, 0);
  int64_t id = q_int(app, "SELECT max(id) FROM be_users", 0);
  ck_assert_int_eq(be_auth_set_password(app, 0, id, PW, NT, NULL), BE_OK);
  return id;
}

typedef struct pair_login {
  be_app *app;
  const char *email;
  pthread_barrier_t *start;
  int rc;
} pair_login;

static void *login_at_once(void *p) {
  pair_login *l = p;
  char *tok = NULL;
  pthread_barrier_wait(l->start);
  l->rc = be_auth_login(&tok, NULL, l->app, l->email, NT, PW, NT, NULL);
  be_auth_token_free(tok);
  return NULL;
}

/* Two correct logins at once to an account whose hash needs a rehash
 * (the parameters went up): the first to write replaces the hash, and
 * the second, whose write finds it changed, used to be refused with the
 * generic 401. It now verifies once more against the hash stored. */
START_TEST(concurrent_logins_survive_each_others_rehash) {
  char *dir = tu_tempdir();
  char path[512], email[64];
  snprintf(path, sizeof path, "%s/rehash.db", dir);
  be_app *app = file_app(path, NULL, 1, 64 * 1024);
  enum { USERS = 8 };
  for (int i = 0; i < USERS; i++) {
    snprintf(email, sizeof email, "pair%d@example.test", i);
    add_user(app, email);
  }
  be_app_free(app);
  app = file_app(path, NULL, 2, 64 * 1024); /* every stored hash needs a rehash */
  int refused = 0;
  for (int i = 0; i < USERS; i++) {
    snprintf(email, sizeof email, "pair%d@example.test", i);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    pair_login l[2] = {{app, email, &start, -1}, {app, email, &start, -1}};
    pthread_t t[2];
    for (int k = 0; k < 2; k++) ck_assert_int_eq(pthread_create(&t[k], NULL, login_at_once, &l[k]), 0);
    for (int k = 0; k < 2; k++) pthread_join(t[k], NULL);
    pthread_barrier_destroy(&start);
    refused += (l[0].rc != BE_OK) + (l[1].rc != BE_OK);
  }
  ck_assert_msg(refused == 0, "%d of %d correct logins refused", refused, 2 * USERS);
  be_app_free(app);
  tu_rmdir(dir);
}
END_TEST

/* Migration 7 gives sessions made before it an id and keeps their tokens
 * working: the sessions table is put back to its migration-2 shape, then
 * the app reopens and migrates it again. */
START_TEST(session_ids_migration_keeps_live_sessions) {
  if (svc_on_pg()) { /* migration 7's rebuild is SQLite's (PostgreSQL starts at its shape) */
    fprintf(stderr, "%s: skipped on PostgreSQL: rewinds a SQLite table to migration 2\n", __func__);
    return;
  }
  char *dir = tu_tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/sessions.db", dir);
  be_clock *clock = NULL;
  ck_assert_int_eq(be_clock_fake_new(&clock, 0, START_MS * BE_NS_PER_MS, NULL), BE_OK);
  be_app *app = file_app(path, clock, 1, 64 * 1024);
  int64_t id = add_user(app, "old@example.test");
  char *t1 = login_ok(app, "old@example.test", PW, id);
  char *t2 = login_ok(app, "old@example.test", PW, id);
  ck_assert_int_eq(be_auth_logout(app, t2, NT, NULL), BE_OK);
  q_exec(app, "CREATE TABLE old_sessions (token_hash BLOB PRIMARY KEY, user_id INTEGER NOT NULL"
              " REFERENCES be_users(id) ON DELETE CASCADE, created_at INTEGER NOT NULL,"
              " last_seen_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,"
              " revoked INTEGER NOT NULL DEFAULT 0)",
         0);
  q_exec(app, "INSERT INTO old_sessions SELECT token_hash, user_id, created_at, last_seen_at,"
              " expires_at, revoked FROM be_sessions",
         0);
  q_exec(app, "DROP TABLE be_sessions", 0);
  q_exec(app, "ALTER TABLE old_sessions RENAME TO be_sessions", 0);
  q_exec(app, "DELETE FROM be_schema_migrations WHERE version = 7", 0);
  be_app_free(app);

  app = file_app(path, clock, 1, 64 * 1024);
  ck_assert_int_eq(verify_code(app, t1, NULL), BE_OK);
  ck_assert_int_eq(verify_code(app, t2, NULL), BE_E_UNAUTHORIZED);
  be_auth_session_list *l = sessions_of(app, id);
  ck_assert_uint_eq(be_auth_session_list_count(l), 1);
  ck_assert_int_gt(be_auth_session_list_id(l, 0), 0);
  ck_assert_int_eq(be_auth_session_list_created_at_ms(l, 0), START_MS);
  be_auth_session_list_free(l);
  char *t3 = login_ok(app, "old@example.test", PW, id);
  ck_assert_int_eq(q_int(app, "SELECT count(DISTINCT id) FROM be_sessions", 0), 3);
  be_auth_token_free(t1);
  be_auth_token_free(t2);
  be_auth_token_free(t3);
  be_app_free(app);
  be_clock_free(clock);
  tu_rmdir(dir);
}
END_TEST

START_TEST(rehash_when_parameters_rise) {
  char *dir = tu_tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/auth.db", dir);
  be_clock *clock = NULL;
  ck_assert_int_eq(be_clock_fake_new(&clock, 0, BE_TESTKIT_START_WALL_MS * BE_NS_PER_MS, NULL), BE_OK);
  be_app *app = file_app(path, clock, 1, 64 * 1024);
  q_exec(app, "INSERT INTO be_users (email, name, created_at, updated_at) VALUES "
              "('rehash@example.test', 'Re Hash', 0, 0)",
         0);
  int64_t id = q_int(app, "SELECT id FROM be_users WHERE email = 'rehash@example.test'", 0);
  ck_assert_int_eq(be_auth_set_password(app, 0, id, NEWPW, NT, NULL), BE_OK);
  char *h1 = q_text(app, "SELECT password_hash FROM be_users WHERE id = ?", id);
  ck_assert_ptr_nonnull(strstr(h1, "$argon2id$"));
  ck_assert_ptr_nonnull(strstr(h1, "m=64,t=1"));
  be_auth_token_free(login_ok(app, "rehash@example.test", NEWPW, id));
  char *same = q_text(app, "SELECT password_hash FROM be_users WHERE id = ?", id);
  ck_assert_str_eq(h1, same); /* same parameters: untouched */
  be_app_free(app);

  app = file_app(path, clock, 2, 128 * 1024);
  be_auth_token_free(login_ok(app, "rehash@example.test", NEWPW, id));
  char *h2 = q_text(app, "SELECT password_hash FROM be_users WHERE id = ?", id);
  ck_assert_str_ne(h1, h2);
  ck_assert_ptr_nonnull(strstr(h2, "m=128,t=2"));
  ck_assert_int_eq(crypto_pwhash_str_verify(h2, NEWPW, strlen(NEWPW)), 0);
  ck_assert_int_eq(crypto_pwhash_str_needs_rehash(h2, 2, 128 * 1024), 0);
  be_auth_token_free(login_ok(app, "rehash@example.test", NEWPW, id)); /* still works */
  login_denied(app, "rehash@example.test", "wrong password here");
  free(h1);
  free(h2);
  free(same);
  be_app_free(app);
  be_clock_free(clock);
  tu_rmdir(dir);
}
END_TEST

static void expect_dummy(be_app *app, unsigned long long ops, size_t kib) {
  unsigned long long o = 0;
  size_t m = 0;
  be__pw_dummy_params(app->auth, &o, &m);
  ck_assert_msg(o == ops && m == kib * 1024, "dummy t=%llu m=%zu KiB, want t=%llu m=%zu KiB", o,
                m / 1024, ops, kib);
}

/* A hash of PW with (ops, KiB), as a host import would store it. */
static void store_hash(be_app *app, int64_t id, unsigned long long ops, size_t kib) {
  char h[crypto_pwhash_STRBYTES], sql[300];
  ck_assert_int_eq(crypto_pwhash_str_alg(h, PW, strlen(PW), ops, kib * 1024,
                                         crypto_pwhash_ALG_ARGON2ID13),
                   0);
  snprintf(sql, sizeof sql, "UPDATE be_users SET password_hash = '%s' WHERE id = ?", h);
  q_exec(app, sql, id);
}

/* The dummy an unknown email's login verifies costs what the most
 * expensive stored hash costs (largest m x t, then m), whoever wrote it,
 * and follows it down as old hashes are rehashed, deleted or cleared. */
START_TEST(dummy_follows_most_expensive_stored_hash) {
  char *dir = tu_tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/dummy.db", dir);
  be_app *app = file_app(path, NULL, 3, 256 * 1024);
  expect_dummy(app, 3, 256); /* no hash stored: the current parameters */
  int64_t a = add_user(app, "a@example.test");
  int64_t b = add_user(app, "b@example.test");
  int64_t c = add_user(app, "c@example.test");
  be_app_free(app);

  app = file_app(path, NULL, 1, 64 * 1024); /* parameters lowered */
  expect_dummy(app, 3, 256);                /* the stored hashes' */
  ck_assert_int_eq(q_int(app, "SELECT hashes FROM be_password_hash_params WHERE opslimit = 3 "
                              "AND memlimit_kib = 256",
                         0),
                   3);
  login_denied(app, "nobody@example.test", PW);
  expect_dummy(app, 3, 256);
  /* a host import with costlier ones: the tie on m x t goes to the larger m */
  store_hash(app, c, 8, 128);
  store_hash(app, b, 2, 512);
  login_denied(app, "nobody@example.test", PW);
  expect_dummy(app, 2, 512);
  q_exec(app, "DELETE FROM be_users WHERE id = ?", b);
  login_denied(app, "nobody@example.test", PW);
  expect_dummy(app, 8, 128);
  q_exec(app, "UPDATE be_users SET password_hash = NULL WHERE id = ?", c);
  login_denied(app, "nobody@example.test", PW);
  expect_dummy(app, 3, 256);
  /* the last old hash is rehashed at its login: the dummy follows down */
  be_auth_token_free(login_ok(app, "a@example.test", PW, a));
  login_denied(app, "nobody@example.test", PW);
  expect_dummy(app, 1, 64);
  ck_assert_int_eq(q_int(app, "SELECT count(*) FROM be_password_hash_params", 0), 1);
  ck_assert_int_eq(q_int(app, "SELECT hashes FROM be_password_hash_params", 0), 1);
  /* a wrong old password in a change verifies through it too */
  ck_assert_int_eq(be_auth_change_password(app, a, NULL, 0, "wrong password here", NT, NEWPW, NT,
                                           NULL),
                   BE_E_UNAUTHORIZED);
  be_app_free(app);
  tu_rmdir(dir);
}
END_TEST

START_TEST(parameters_below_owasp_refused) {
  char *dir = tu_tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/p.db", dir);
  be_app_options o = BE_APP_OPTIONS_INIT;
  o.database = path;
  o.pwhash_opslimit = 1;
  o.pwhash_memlimit = 4 * 1024 * 1024;
  be_app *app = NULL;
  be_error *e = NULL;
  ck_assert_int_eq(be_app_new(&app, &o, &e), BE_E_VALIDATION);
  ck_assert_ptr_null(app);
  ck_assert_str_eq(be_error_field_name(e, 0), "pwhash_memlimit");
  be_error_free(e);
  e = NULL;
  o.pwhash_memlimit = 19 * 1024 * 1024; /* t = 1 needs 46 MiB */
  e = NULL;
  ck_assert_int_eq(be_app_new(&app, &o, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "pwhash_opslimit");
  be_error_free(e);
  o.pwhash_opslimit = 2; /* OWASP minimum: accepted */
  ck_assert_int_eq(be_app_new(&app, &o, NULL), BE_OK);
  be_app_free(app);
  app = NULL;
  o.password_min_length = 11;
  ck_assert_int_eq(be_app_new(&app, &o, NULL), BE_E_VALIDATION);
  tu_rmdir(dir);
}
END_TEST

/* ---- the pepper ------------------------------------------------------ */

static const uint8_t PEPPER_A[] = "pepper A: 0123456789abcdef-secret";
static const uint8_t PEPPER_B[] = "pepper B: fedcba9876543210-secret";
#define PEPPER_LEN (sizeof PEPPER_A - 1)

/* A file app with the cheapest parameters, keyed by pepper (id; NULL:
 * none) and accepting prev (prev_id; NULL: none) to verify. */
static be_app *pepper_app(const char *path, const uint8_t *pepper, int32_t id,
                          const uint8_t *prev, int32_t prev_id) {
  be_app_options o = BE_APP_OPTIONS_INIT;
  o.database = db_at(path);
  o.insecure_test_hashing = 1;
  o.pwhash_opslimit = 1;
  o.pwhash_memlimit = 64 * 1024;
  o.pepper = pepper;
  o.pepper_len = pepper ? PEPPER_LEN : 0;
  o.pepper_id = pepper ? id : 0;
  const uint8_t *keys[1] = {prev};
  size_t lens[1] = {PEPPER_LEN};
  int32_t ids[1] = {prev_id};
  if (prev != NULL) {
    o.previous_peppers = keys;
    o.previous_pepper_lens = lens;
    o.previous_pepper_ids = ids;
    o.previous_pepper_count = 1;
  }
  be_app *app = NULL;
  be_error *e = NULL;
  int rc = be_app_new(&app, &o, &e);
  ck_assert_msg(rc == BE_OK, "app: %s", be_error_message(e));
  return app;
}

static int64_t pepper_of(be_app *app, int64_t id) {
  return q_int(app, "SELECT password_pepper_id FROM be_users WHERE id = ?", id);
}

/* A hash made under pepper A verifies after rotation to B while A is
 * listed as previous, and that login rehashes it under B; without A it
 * fails like any wrong password. */
START_TEST(pepper_rotation_rehashes_at_login) {
  char *dir = tu_tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/pepper.db", dir);
  be_app *app = pepper_app(path, PEPPER_A, 1, NULL, 0);
  int64_t u1 = add_user(app, "one@example.test");
  int64_t u2 = add_user(app, "two@example.test");
  char *h1 = q_text(app, "SELECT password_hash FROM be_users WHERE id = ?", u1);
  ck_assert_int_eq(pepper_of(app, u1), 1);
  /* keyed: the hash does not verify the password alone */
  ck_assert_int_ne(crypto_pwhash_str_verify(h1, PW, strlen(PW)), 0);
  be_auth_token_free(login_ok(app, "one@example.test", PW, u1));
  be_app_free(app);

  /* rotation: B current, A previous */
  app = pepper_app(path, PEPPER_B, 2, PEPPER_A, 1);
  be_auth_token_free(login_ok(app, "one@example.test", PW, u1));
  char *h2 = q_text(app, "SELECT password_hash FROM be_users WHERE id = ?", u1);
  ck_assert_str_ne(h1, h2); /* rehashed under B */
  ck_assert_int_eq(pepper_of(app, u1), 2);
  ck_assert_int_eq(pepper_of(app, u2), 1); /* not logged in yet: still A */
  be_auth_token_free(login_ok(app, "one@example.test", PW, u1));
  char *h3 = q_text(app, "SELECT password_hash FROM be_users WHERE id = ?", u1);
  ck_assert_str_eq(h2, h3); /* current now: untouched */
  login_denied(app, "one@example.test", "wrong password here");
  be_app_free(app);

  /* A dropped: u1 (B) logs in, u2 (A) cannot; a warning names the id */
  app = pepper_app(path, PEPPER_B, 2, NULL, 0);
  be_auth_token_free(login_ok(app, "one@example.test", PW, u1));
  ck_assert_int_eq(be_log_set_handler(NULL, NULL, BE_LOG_OFF, NULL), BE_OK);
  login_denied(app, "two@example.test", PW);
  ck_assert_int_eq(be_log_set_handler(NULL, NULL, BE_LOG_WARN, NULL), BE_OK);
  ck_assert_int_eq(pepper_of(app, u2), 1);
  be_app_free(app);
  /* nor without any pepper, nor with A under another id */
  app = pepper_app(path, NULL, 0, NULL, 0);
  ck_assert_int_eq(be_log_set_handler(NULL, NULL, BE_LOG_OFF, NULL), BE_OK);
  login_denied(app, "one@example.test", PW);
  be_app_free(app);
  app = pepper_app(path, PEPPER_B, 2, PEPPER_A, 3);
  login_denied(app, "two@example.test", PW);
  ck_assert_int_eq(be_log_set_handler(NULL, NULL, BE_LOG_WARN, NULL), BE_OK);
  be_app_free(app);
  /* A back as previous: u2 logs in and moves to B */
  app = pepper_app(path, PEPPER_B, 2, PEPPER_A, 1);
  be_auth_token_free(login_ok(app, "two@example.test", PW, u2));
  ck_assert_int_eq(pepper_of(app, u2), 2);
  ck_assert_int_eq(q_int(app, "SELECT count(*) FROM be_users WHERE password_pepper_id = 1", 0), 0);
  /* a password set or changed is keyed by the current pepper */
  ck_assert_int_eq(be_auth_change_password(app, u2, NULL, 0, PW, NT, NEWPW, NT, NULL), BE_OK);
  ck_assert_int_eq(pepper_of(app, u2), 2);
  be_app_free(app);
  /* removing the pepper: B as previous, none current -> rehashed unkeyed */
  app = pepper_app(path, NULL, 0, PEPPER_B, 2);
  be_auth_token_free(login_ok(app, "one@example.test", PW, u1));
  ck_assert_int_eq(pepper_of(app, u1), 0);
  char *h4 = q_text(app, "SELECT password_hash FROM be_users WHERE id = ?", u1);
  ck_assert_int_eq(crypto_pwhash_str_verify(h4, PW, strlen(PW)), 0);
  be_app_free(app);
  free(h1);
  free(h2);
  free(h3);
  free(h4);
  tu_rmdir(dir);
}
END_TEST

/* Every event logged while installed, one "message key=value ..." line each. */
typedef struct log_capture {
  pthread_mutex_t mu;
  char text[16384];
  size_t n;
} log_capture;

static void capture_log(int32_t level, const char *message, const be_log_field *fields,
                        size_t count, void *ud) {
  (void)level;
  log_capture *c = ud;
  pthread_mutex_lock(&c->mu);
  c->n += (size_t)snprintf(c->text + c->n, sizeof c->text - c->n, "%s", message);
  for (size_t i = 0; i < count && c->n < sizeof c->text; i++)
    c->n += (size_t)snprintf(c->text + c->n, sizeof c->text - c->n, " %s=%s", fields[i].key,
                             fields[i].value);
  if (c->n < sizeof c->text) c->n += (size_t)snprintf(c->text + c->n, sizeof c->text - c->n, "\n");
  if (c->n > sizeof c->text - 1) c->n = sizeof c->text - 1;
  pthread_mutex_unlock(&c->mu);
}

/* The log of the mailer tests: log_start() clears it and installs it. */
static log_capture logged = {PTHREAD_MUTEX_INITIALIZER, {0}, 0};

static void log_start(void) {
  logged.text[0] = '\0';
  logged.n = 0;
  ck_assert_int_eq(be_log_set_handler(capture_log, &logged, BE_LOG_INFO, NULL), BE_OK);
}

static void log_stop(void) {
  ck_assert_int_eq(be_log_set_handler(NULL, NULL, BE_LOG_WARN, NULL), BE_OK);
}

/* 1 when the file at path holds needle (n bytes), or its first half. */
static int file_holds(const char *path, const void *needle, size_t n) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return 0;
  static char buf[4 << 20];
  size_t got = fread(buf, 1, sizeof buf, f);
  fclose(f);
  return memmem(buf, got, needle, n) != NULL || memmem(buf, got, needle, n / 2) != NULL;
}

/* The pepper reaches neither the database (file and WAL) nor a log line,
 * at any level, nor an error. */
START_TEST(pepper_never_stored_or_logged) {
  char *dir = tu_tempdir();
  char path[512], wal[600];
  snprintf(path, sizeof path, "%s/secret.db", dir);
  snprintf(wal, sizeof wal, "%s-wal", path);
  log_capture cap = {PTHREAD_MUTEX_INITIALIZER, {0}, 0};
  ck_assert_int_eq(be_log_set_handler(capture_log, &cap, BE_LOG_DEBUG, NULL), BE_OK);
  be_app *app = pepper_app(path, PEPPER_A, 1, NULL, 0);
  int64_t id = add_user(app, "one@example.test");
  be_auth_token_free(login_ok(app, "one@example.test", PW, id));
  login_denied(app, "one@example.test", "wrong password here");
  be_app_free(app);
  app = pepper_app(path, PEPPER_B, 2, PEPPER_A, 1);
  be_auth_token_free(login_ok(app, "one@example.test", PW, id)); /* rehash */
  ck_assert_int_eq(file_holds(path, PEPPER_A, PEPPER_LEN) || file_holds(wal, PEPPER_A, PEPPER_LEN),
                   0);
  ck_assert_int_eq(file_holds(path, PEPPER_B, PEPPER_LEN) || file_holds(wal, PEPPER_B, PEPPER_LEN),
                   0);
  be_app_free(app);
  app = pepper_app(path, PEPPER_A, 3, NULL, 0); /* B unknown: the warning path */
  login_denied(app, "one@example.test", PW);
  be_app_free(app);
  ck_assert_int_eq(be_log_set_handler(NULL, NULL, BE_LOG_WARN, NULL), BE_OK);
  ck_assert_ptr_nonnull(strstr(cap.text, "pepper_id=2"));
  ck_assert_ptr_null(memmem(cap.text, cap.n, PEPPER_A, 8));
  ck_assert_ptr_null(memmem(cap.text, cap.n, PEPPER_B, 8));
  ck_assert_ptr_null(strstr(cap.text, "0123456789abcdef"));
  ck_assert_ptr_null(strstr(cap.text, "fedcba9876543210"));
  ck_assert_int_eq(file_holds(path, PEPPER_A, PEPPER_LEN), 0);
  ck_assert_int_eq(file_holds(path, PEPPER_B, PEPPER_LEN), 0);
  tu_rmdir(dir);
}
END_TEST

/* be_app_new(o) fails with a field error naming field. */
static void expect_option_error(const be_app_options *o, const char *field) {
  be_app *app = NULL;
  be_error *e = NULL;
  ck_assert_int_eq(be_app_new(&app, o, &e), BE_E_VALIDATION);
  ck_assert_ptr_null(app);
  int found = 0;
  for (size_t i = 0; i < be_error_field_count(e); i++)
    found |= strcmp(be_error_field_name(e, i), field) == 0;
  ck_assert_msg(found, "no field error \"%s\" in: %s", field, be_error_message(e));
  be_error_free(e);
}

/* The pepper options are checked, each bad one named. */
START_TEST(pepper_options_checked) {
  be_app_options o = BE_APP_OPTIONS_INIT;
  o.database = ":memory:";
  be_app *app = NULL;
  be_error *e = NULL;
  o.pepper = PEPPER_A;
  o.pepper_len = 15;
  o.pepper_id = 1;
  ck_assert_int_eq(be_app_new(&app, &o, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "pepper_len");
  char *json = NULL;
  ck_assert_int_eq(be_error_to_json(&json, NULL, e), BE_OK);
  ck_assert_ptr_null(strstr(json, "0123456789abcdef")); /* never quoted */
  be_free(json);
  be_error_free(e);
  o.pepper_len = PEPPER_LEN;
  o.pepper_id = 0; /* an id is required: a rotation must not reuse one */
  expect_option_error(&o, "pepper_id");
  o.pepper = NULL;
  expect_option_error(&o, "pepper_len");
  o.pepper_len = 0;
  o.pepper_id = 4;
  expect_option_error(&o, "pepper_id");
  o.pepper = PEPPER_B;
  o.pepper_len = PEPPER_LEN;
  o.pepper_id = 2;
  const uint8_t *keys[2] = {PEPPER_A, PEPPER_A};
  size_t lens[2] = {PEPPER_LEN, PEPPER_LEN};
  int32_t ids[2] = {1, 1};
  o.previous_pepper_count = 2;
  expect_option_error(&o, "previous_peppers");
  o.previous_peppers = keys;
  o.previous_pepper_lens = lens;
  o.previous_pepper_ids = ids;
  expect_option_error(&o, "previous_pepper_ids");
  ids[1] = 2; /* the current id */
  expect_option_error(&o, "previous_pepper_ids");
  ids[1] = 3;
  lens[1] = 65;
  expect_option_error(&o, "previous_pepper_lens");
  lens[1] = PEPPER_LEN;
  keys[1] = NULL;
  expect_option_error(&o, "previous_peppers");
  keys[1] = PEPPER_A;
  o.previous_pepper_count = BE_AUTH_PREVIOUS_PEPPERS_MAX + 1;
  expect_option_error(&o, "previous_pepper_count");
  o.previous_pepper_count = 2;
  ck_assert_int_eq(be_app_new(&app, &o, NULL), BE_OK);
  be_app_free(app);
}
END_TEST

/* ---- sessions -------------------------------------------------------- */

START_TEST(idle_timeout_slides_and_expires) {
  be_testkit *k = kit_new(1);
  be_app *app = be_testkit_app(k);
  char *tok = login_ok(app, "user0@example.test", PW, 0);
  int64_t uid;
  for (int i = 0; i < 5; i++) { /* 5 x 29 min: alive because each verify slides it */
    be_testkit_advance_ms(k, 29 * 60 * 1000, NULL);
    ck_assert_int_eq(verify_code(app, tok, &uid), BE_OK);
  }
  be_testkit_advance_ms(k, 30 * 60 * 1000, NULL); /* idle 30 min: gone */
  ck_assert_int_eq(verify_code(app, tok, &uid), BE_E_UNAUTHORIZED);
  ck_assert_int_eq(uid, 0);
  be_auth_token_free(tok);
  /* the slide is throttled: verifies within 18 s (1 % of 30 min) write nothing */
  tok = login_ok(app, "user0@example.test", PW, 0);
  int64_t seen0 = q_int(app, "SELECT max(last_seen_at) FROM be_sessions", 0);
  be_testkit_advance_ms(k, 10 * 1000, NULL);
  ck_assert_int_eq(verify_code(app, tok, NULL), BE_OK);
  ck_assert_int_eq(q_int(app, "SELECT max(last_seen_at) FROM be_sessions", 0), seen0);
  be_testkit_advance_ms(k, 10 * 1000, NULL);
  ck_assert_int_eq(verify_code(app, tok, NULL), BE_OK);
  ck_assert_int_eq(q_int(app, "SELECT max(last_seen_at) FROM be_sessions", 0),
                   seen0 + 20 * BE_NS_PER_SEC);
  be_auth_token_free(tok);
  be_testkit_free(k);
}
END_TEST

START_TEST(absolute_timeout) {
  be_testkit *k = kit_new(1);
  be_app *app = be_testkit_app(k);
  char *tok = login_ok(app, "user0@example.test", PW, 0);
  for (int i = 0; i < 12 * 3 - 1; i++) { /* active every 20 min for 11 h 40 min */
    be_testkit_advance_ms(k, 20 * 60 * 1000, NULL);
    ck_assert_int_eq(verify_code(app, tok, NULL), BE_OK);
  }
  be_testkit_advance_ms(k, 20 * 60 * 1000, NULL); /* 12 h after login */
  ck_assert_int_eq(verify_code(app, tok, NULL), BE_E_UNAUTHORIZED);
  int64_t n = -1;
  ck_assert_int_eq(be_auth_purge_expired(&n, app, NULL), BE_OK);
  ck_assert_int_eq(n, 1);
  ck_assert_int_eq(q_int(app, "SELECT count(*) FROM be_sessions", 0), 0);
  be_auth_token_free(tok);
  be_testkit_free(k);
}
END_TEST

/* ---- a user's sessions: listed, ended by id, login time readable ---- */

/* Ending and listing sessions with bad arguments: typed errors, l stays NULL. */
static void session_calls_reject_bad_arguments(be_app *app, int64_t u0, int64_t ida) {
  be_error *e = NULL;
  be_auth_session_list *l = (be_auth_session_list *)1; /* must come back NULL */
  expect_field(be_auth_end_session(app, -1, u0, ida, &e), &e, BE_E_VALIDATION, "actor_id");
  expect_field(be_auth_end_session(app, 0, 0, ida, &e), &e, BE_E_VALIDATION, "user_id");
  expect_field(be_auth_end_session(app, 0, u0, 0, &e), &e, BE_E_VALIDATION, "session_id");
  ck_assert_int_eq(be_auth_end_session(NULL, 0, u0, ida, NULL), BE_E_MISUSE);
  expect_field(be_auth_list_sessions(&l, app, -3, &e), &e, BE_E_VALIDATION, "user_id");
  ck_assert_ptr_null(l);
  TU_EXPECT_ERR(BE_E_NOT_FOUND, be_auth_list_sessions(&l, app, 9999, &tu_e));
  ck_assert_int_eq(be_auth_list_sessions(NULL, app, u0, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_auth_list_sessions(&l, NULL, u0, NULL), BE_E_MISUSE);
}

START_TEST(sessions_listed_and_ended_by_id) {
  be_testkit *k = kit_new(2);
  be_app *app = be_testkit_app(k);
  int64_t u0 = be_testkit_user_id(k, 0), u1 = be_testkit_user_id(k, 1);
  char *a = login_ok(app, "user0@example.test", PW, u0); /* t = 0 */
  be_testkit_advance_ms(k, 5 * MIN_MS, NULL);
  char *b = login_ok(app, "user0@example.test", PW, u0); /* t = 5 min */
  char *c = login_ok(app, "user1@example.test", PW, u1);
  be_testkit_advance_ms(k, 5 * MIN_MS, NULL);
  ck_assert_int_eq(verify_code(app, a, NULL), BE_OK); /* a used at t = 10 min */

  be_auth_session_list *l = sessions_of(app, u0);
  ck_assert_uint_eq(be_auth_session_list_count(l), 2);
  /* most recently used first */
  int64_t ida = be_auth_session_list_id(l, 0), idb = be_auth_session_list_id(l, 1);
  ck_assert_int_gt(ida, 0);
  ck_assert_int_gt(idb, ida);
  ck_assert_int_eq(be_auth_session_list_created_at_ms(l, 0), START_MS);
  ck_assert_int_eq(be_auth_session_list_last_used_at_ms(l, 0), START_MS + 10 * MIN_MS);
  ck_assert_int_eq(be_auth_session_list_expires_at_ms(l, 0), START_MS + 40 * MIN_MS); /* idle */
  ck_assert_int_eq(be_auth_session_list_created_at_ms(l, 1), START_MS + 5 * MIN_MS);
  ck_assert_int_eq(be_auth_session_list_last_used_at_ms(l, 1), START_MS + 5 * MIN_MS);
  ck_assert_int_eq(be_auth_session_list_expires_at_ms(l, 1), START_MS + 35 * MIN_MS);
  /* out of range and NULL read as 0 */
  ck_assert_int_eq(be_auth_session_list_id(l, 2), 0);
  ck_assert_int_eq(be_auth_session_list_expires_at_ms(l, 9), 0);
  ck_assert_uint_eq(be_auth_session_list_count(NULL), 0);
  ck_assert_int_eq(be_auth_session_list_created_at_ms(NULL, 0), 0);
  be_auth_session_list_free(l);
  be_auth_session_list_free(NULL);

  /* end b by its id: its token dies at once, a lives on, one audit row */
  ck_assert_int_eq(be_auth_end_session(app, u0, u0, idb, NULL), BE_OK);
  ck_assert_int_eq(verify_code(app, b, NULL), BE_E_UNAUTHORIZED);
  ck_assert_int_eq(verify_code(app, a, NULL), BE_OK);
  ck_assert_int_eq(audit_count(app, "auth.session_end"), 1);
  ck_assert_int_eq(q_int(app, "SELECT count(*) FROM be_audit_log WHERE action = 'auth.session_end'"
                              " AND actor_id = ? AND details = '{\"session_id\":' || ("
                              "SELECT max(id) FROM be_sessions WHERE revoked = 1) || '}'",
                         u0),
                   1);
  l = sessions_of(app, u0);
  ck_assert_uint_eq(be_auth_session_list_count(l), 1);
  ck_assert_int_eq(be_auth_session_list_id(l, 0), ida);
  be_auth_session_list_free(l);
  /* again: already ended, nothing written */
  ck_assert_int_eq(be_auth_end_session(app, 0, u0, idb, NULL), BE_OK);
  ck_assert_int_eq(audit_count(app, "auth.session_end"), 1);

  /* another user's session, an unknown id: not found, nothing ended */
  l = sessions_of(app, u1);
  ck_assert_uint_eq(be_auth_session_list_count(l), 1);
  int64_t idc = be_auth_session_list_id(l, 0);
  be_auth_session_list_free(l);
  TU_EXPECT_ERR(BE_E_NOT_FOUND, be_auth_end_session(app, u0, u0, idc, &tu_e));
  TU_EXPECT_ERR(BE_E_NOT_FOUND, be_auth_end_session(app, 0, u0, 9999, &tu_e));
  ck_assert_int_eq(verify_code(app, c, NULL), BE_OK);

  session_calls_reject_bad_arguments(app, u0, ida);

  /* expired and revoked sessions are not listed */
  be_testkit_advance_ms(k, 31 * MIN_MS, NULL); /* past c's idle timeout */
  l = sessions_of(app, u1);
  ck_assert_uint_eq(be_auth_session_list_count(l), 0);
  be_auth_session_list_free(l);
  a = (be_auth_token_free(a), login_ok(app, "user0@example.test", PW, u0));
  ck_assert_int_eq(be_auth_revoke_all(app, 0, u0, NULL), BE_OK);
  l = sessions_of(app, u0);
  ck_assert_uint_eq(be_auth_session_list_count(l), 0);
  be_auth_session_list_free(l);
  be_auth_token_free(a);
  be_auth_token_free(b);
  be_auth_token_free(c);
  be_testkit_free(k);
}
END_TEST

/* Logout and end by id of a session that already ended (idle past its
 * timeout, or past its absolute expiry) are BE_OK and write nothing, as
 * for a revoked one: they used to write an "auth.logout" or
 * "auth.session_end" row for a session that had ended long before. A
 * live one still writes its row. */
static void end_twice_writes_nothing(be_testkit *k, int64_t advance_ms, int64_t step_ms) {
  be_app *app = be_testkit_app(k);
  int64_t u0 = be_testkit_user_id(k, 0);
  char *a = login_ok(app, "user0@example.test", PW, u0), *b = login_ok(app, "user0@example.test", PW, u0);
  be_auth_session_info info = BE_AUTH_SESSION_INFO_INIT;
  ck_assert_int_eq(be_auth_verify_session(&info, app, b, NT, NULL), BE_OK);
  int64_t sid = info.session_id;
  for (int64_t t = 0; t < advance_ms; t += step_ms) { /* verifying keeps idle away */
    be_testkit_advance_ms(k, step_ms, NULL);
    if (step_ms < advance_ms) be_auth_verify_session(&info, app, b, NT, NULL);
  }
  ck_assert_int_eq(verify_code(app, a, NULL), BE_E_UNAUTHORIZED);
  ck_assert_int_eq(verify_code(app, b, NULL), BE_E_UNAUTHORIZED);
  int64_t logouts = audit_count(app, "auth.logout"), ends = audit_count(app, "auth.session_end");
  ck_assert_int_eq(be_auth_logout(app, a, NT, NULL), BE_OK);
  ck_assert_int_eq(be_auth_end_session(app, 0, u0, sid, NULL), BE_OK);
  ck_assert_int_eq(audit_count(app, "auth.logout"), logouts);
  ck_assert_int_eq(audit_count(app, "auth.session_end"), ends);
  char *live = login_ok(app, "user0@example.test", PW, u0);
  ck_assert_int_eq(be_auth_logout(app, live, NT, NULL), BE_OK);
  ck_assert_int_eq(audit_count(app, "auth.logout"), logouts + 1);
  be_auth_token_free(a);
  be_auth_token_free(b);
  be_auth_token_free(live);
}

START_TEST(ended_sessions_end_again_without_a_trace) {
  be_testkit *k = kit_new(1);
  end_twice_writes_nothing(k, 31 * MIN_MS, 31 * MIN_MS); /* idle past 30 min */
  be_testkit_free(k);
  be_app_options o = BE_APP_OPTIONS_INIT;
  o.session_absolute_ms = 20 * MIN_MS;
  k = kit_with(&o, 1);
  end_twice_writes_nothing(k, 21 * MIN_MS, 7 * MIN_MS); /* used, but past 20 min */
  be_testkit_free(k);
}
END_TEST

START_TEST(session_info_gives_login_time) {
  be_app_options o = BE_APP_OPTIONS_INIT;
  o.session_absolute_ms = 20 * MIN_MS; /* shorter than idle: the absolute expiry shows */
  be_testkit *k = kit_with(&o, 1);
  be_app *app = be_testkit_app(k);
  int64_t u0 = be_testkit_user_id(k, 0);
  be_testkit_advance_ms(k, 3 * MIN_MS, NULL);
  char *tok = login_ok(app, "user0@example.test", PW, u0); /* login at t = 3 min */
  be_testkit_advance_ms(k, 10 * MIN_MS, NULL);
  be_auth_session_info info = BE_AUTH_SESSION_INFO_INIT;
  be_error *e = NULL;
  ck_assert_msg(be_auth_verify_session(&info, app, tok, NT, &e) == BE_OK, "%s",
                be_error_message(e));
  ck_assert_uint_eq(info.version, BE_AUTH_SESSION_INFO_VERSION);
  ck_assert_int_eq(info.user_id, u0);
  ck_assert_int_eq(info.created_at_ms, START_MS + 3 * MIN_MS);    /* the login */
  ck_assert_int_eq(info.last_used_at_ms, START_MS + 13 * MIN_MS); /* this use (slid) */
  ck_assert_int_eq(info.expires_at_ms, START_MS + 23 * MIN_MS);   /* absolute */
  be_auth_session_list *l = sessions_of(app, u0);
  ck_assert_int_eq(info.session_id, be_auth_session_list_id(l, 0));
  ck_assert_int_eq(be_auth_session_list_last_used_at_ms(l, 0), info.last_used_at_ms);
  be_auth_session_list_free(l);
  /* the login time stays put while the session is used */
  be_testkit_advance_ms(k, 5 * MIN_MS, NULL);
  ck_assert_int_eq(be_auth_verify_session(&info, app, tok, NT, NULL), BE_OK);
  ck_assert_int_eq(info.created_at_ms, START_MS + 3 * MIN_MS);
  ck_assert_int_eq(info.last_used_at_ms, START_MS + 18 * MIN_MS);

  /* failures: the generic 401 with the fields cleared; bad version; NULL */
  be_testkit_advance_ms(k, 5 * MIN_MS, NULL); /* past the absolute expiry */
  TU_EXPECT_ERR(BE_E_UNAUTHORIZED, be_auth_verify_session(&info, app, tok, NT, &tu_e));
  ck_assert_int_eq(info.session_id, 0);
  ck_assert_int_eq(info.user_id, 0);
  ck_assert_int_eq(info.created_at_ms, 0);
  ck_assert_uint_eq(info.version, BE_AUTH_SESSION_INFO_VERSION);
  TU_EXPECT_ERR(BE_E_UNAUTHORIZED, be_auth_verify_session(&info, app, "short", NT, &tu_e));
  info.version = BE_AUTH_SESSION_INFO_VERSION + 1;
  ck_assert_int_eq(be_auth_verify_session(&info, app, tok, NT, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_auth_verify_session(NULL, app, tok, NT, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_auth_session_info_init(&info, BE_AUTH_SESSION_INFO_VERSION), BE_OK);
  ck_assert_int_eq(be_auth_verify_session(&info, NULL, tok, NT, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_auth_session_info_init(NULL, BE_AUTH_SESSION_INFO_VERSION), BE_E_MISUSE);
  be_auth_token_free(tok);
  be_testkit_free(k);
}
END_TEST

/* A wall clock near the end of int64 ns: expiry times saturate instead of
 * wrapping negative (which made a fresh session, reset token or block
 * already over). */
START_TEST(times_saturate_near_the_end_of_the_clock) {
  be_app_options o = BE_APP_OPTIONS_INIT;
  o.throttle_after = 1;
  be_testkit *k = kit_with(&o, 1);
  be_app *app = be_testkit_app(k);
  int64_t id = be_testkit_user_id(k, 0);
  ck_assert_int_eq(be_clock_set_wall(be_testkit_clock(k), INT64_MAX - 1000, NULL), BE_OK);
  char *tok = login_ok(app, "user0@example.test", PW, id);
  ck_assert_int_eq(verify_code(app, tok, NULL), BE_OK);
  ck_assert_int_eq(q_int(app, "SELECT max(expires_at) FROM be_sessions", 0), INT64_MAX);
  ck_assert_int_eq(be_auth_request_reset(app, "user0@example.test", NT, NULL), BE_OK);
  ck_assert_int_eq(q_int(app, "SELECT max(expires_at) FROM be_password_resets", 0), INT64_MAX);
  login_denied(app, "user0@example.test", "wrong password here");
  ck_assert_int_eq(q_int(app, "SELECT locked_until FROM be_users WHERE id = ?", id), INT64_MAX);
  login_denied(app, "user0@example.test", PW); /* blocked */
  int64_t n = -1;
  ck_assert_int_eq(be_auth_purge_expired(&n, app, NULL), BE_OK);
  ck_assert_int_eq(n, 0);
  be_auth_token_free(tok);
  be_testkit_free(k);
}
END_TEST

START_TEST(malformed_tokens_refused_without_database) {
  be_testkit *k = kit_new(1);
  be_app *app = be_testkit_app(k);
  char *tok = login_ok(app, "user0@example.test", PW, 0);
  char buf[64];
  const char *bad[8];
  int nb = 0;
  bad[nb++] = "";
  bad[nb++] = "short";
  memset(buf, 'A', 44);
  buf[44] = '\0';
  bad[nb++] = strdup(buf); /* too long */
  memcpy(buf, tok, 44);
  buf[10] = '+'; /* base64, but not base64url */
  bad[nb++] = strdup(buf);
  memcpy(buf, tok, 44);
  buf[5] = '=';
  bad[nb++] = strdup(buf);
  memcpy(buf, tok, 44);
  buf[42] = buf[42] == 'B' ? 'C' : 'B'; /* non-zero padding bits: not canonical */
  bad[nb++] = strdup(buf);
  for (int i = 0; i < nb; i++) {
    be_error *e = NULL;
    ck_assert_int_eq(be_auth_verify(NULL, app, bad[i], NT, &e), BE_E_UNAUTHORIZED);
    ck_assert_str_eq(be_error_message(e), "invalid or expired session");
    be_error_free(e);
    ck_assert_int_eq(be_auth_logout(app, bad[i], NT, NULL), BE_E_UNAUTHORIZED);
    if (i >= 2) free((void *)bad[i]);
  }
  ck_assert_int_eq(be_auth_verify(NULL, app, NULL, NT, NULL), BE_E_UNAUTHORIZED);
  /* well formed but unknown */
  char other[BE_AUTH_TOKEN_LEN + 1];
  unsigned char raw[32];
  randombytes_buf(raw, sizeof raw);
  sodium_bin2base64(other, sizeof other, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  ck_assert_int_eq(be_auth_verify(NULL, app, other, NT, NULL), BE_E_UNAUTHORIZED);
  ck_assert_int_eq(be_auth_verify(NULL, app, tok, NT, NULL), BE_OK);
  be_auth_token_free(tok);
  be_testkit_free(k);
}
END_TEST

/* The first field error's name, or "" (frees e). */
static const char *field_of(be_error *e, char *buf, size_t cap) {
  snprintf(buf, cap, "%s", be_error_field_count(e) ? be_error_field_name(e, 0) : "");
  be_error_free(e);
  return buf;
}

/* Emails and tokens are (pointer, length): 0 is empty and never read, a
 * NUL byte or invalid UTF-8 in an email is a 400 naming "email", an exact
 * length needs no NUL, and a token with a NUL byte is just malformed. */
START_TEST(emails_and_tokens_take_exact_lengths) {
  be_testkit *k = kit_new(1);
  be_app *app = be_testkit_app(k);
  const char *dangling = (const char *)1;
  char f[32];
  static const struct {
    const char *s;
    size_t len;
  } bad[] = {
    {(const char *)1, 0},
    {"user0@example.test\0x", 20},
    {"user0\xff@example.test", NT},
    {"   ", NT},
    {NULL, NT},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char *tok = NULL;
    be_error *e = NULL;
    ck_assert_int_eq(be_auth_login(&tok, NULL, app, bad[i].s, bad[i].len, PW, NT, &e),
                     BE_E_VALIDATION);
    ck_assert_ptr_null(tok);
    ck_assert_str_eq(field_of(e, f, sizeof f), "email");
    e = NULL;
    ck_assert_int_eq(be_auth_request_reset(app, bad[i].s, bad[i].len, &e), BE_E_VALIDATION);
    ck_assert_str_eq(field_of(e, f, sizeof f), "email");
  }
  ck_assert_int_eq(be_testkit_mail_count(k), 0);
  /* exact lengths: no NUL needed after the email, the password or the token */
  char *tok = NULL;
  ck_assert_int_eq(be_auth_login(&tok, NULL, app, "user0@example.testXYZ", 18, PW "XYZ",
                                 strlen(PW), NULL),
                   BE_OK);
  char padded[BE_AUTH_TOKEN_LEN + 4];
  memcpy(padded, tok, BE_AUTH_TOKEN_LEN);
  memcpy(padded + BE_AUTH_TOKEN_LEN, "XYZ", 4);
  int64_t uid = 0;
  ck_assert_int_eq(be_auth_verify(&uid, app, padded, BE_AUTH_TOKEN_LEN, NULL), BE_OK);
  ck_assert_int_eq(uid, be_testkit_user_id(k, 0));
  ck_assert_int_eq(be_auth_verify(&uid, app, padded, BE_AUTH_TOKEN_LEN + 1, NULL),
                   BE_E_UNAUTHORIZED);
  ck_assert_int_eq(be_auth_verify(&uid, app, dangling, 0, NULL), BE_E_UNAUTHORIZED);
  padded[5] = '\0';
  ck_assert_int_eq(be_auth_verify(&uid, app, padded, BE_AUTH_TOKEN_LEN, NULL), BE_E_UNAUTHORIZED);
  ck_assert_int_eq(be_auth_logout(app, padded, BE_AUTH_TOKEN_LEN, NULL), BE_E_UNAUTHORIZED);
  ck_assert_int_eq(be_auth_verify(&uid, app, tok, NT, NULL), BE_OK); /* still live */
  ck_assert_int_eq(be_auth_request_reset(app, " USER0@example.test ", 20, NULL), BE_OK);
  ck_assert_int_eq(be_testkit_mail_count(k), 1);
  ck_assert_int_eq(be_auth_logout(app, tok, BE_AUTH_TOKEN_LEN, NULL), BE_OK);
  ck_assert_int_eq(be_auth_verify(&uid, app, tok, NT, NULL), BE_E_UNAUTHORIZED);
  be_auth_token_free(tok);
  /* an empty password by length is an empty password, not strlen */
  be_error *e = NULL;
  ck_assert_int_eq(be_auth_check_password(app, dangling, 0, &e), BE_E_VALIDATION);
  ck_assert_str_eq(field_of(e, f, sizeof f), "password");
  be_testkit_free(k);
}
END_TEST

START_TEST(logout_and_revoke_all) {
  be_testkit *k = kit_new(2);
  be_app *app = be_testkit_app(k);
  int64_t id = be_testkit_user_id(k, 1);
  char *a = login_ok(app, "user1@example.test", PW, id);
  char *b = login_ok(app, "user1@example.test", PW, id);
  char *c = login_ok(app, "user1@example.test", PW, id);
  char *other = login_ok(app, "user0@example.test", PW, 0);
  /* every login and logout is audited with the session's user as actor */
  ck_assert_int_eq(audit_count(app, "auth.login"), 4);
  ck_assert_int_eq(q_int(app, "SELECT count(*) FROM be_audit_log WHERE action = 'auth.login'"
                              " AND actor_id = ? AND target_id = actor_id",
                         id),
                   3);
  ck_assert_int_eq(be_auth_logout(app, a, NT, NULL), BE_OK);
  ck_assert_int_eq(verify_code(app, a, NULL), BE_E_UNAUTHORIZED);
  ck_assert_int_eq(be_auth_logout(app, a, NT, NULL), BE_OK); /* idempotent */
  ck_assert_int_eq(q_int(app, "SELECT count(*) FROM be_audit_log WHERE action = 'auth.logout'"
                              " AND actor_id = ?",
                         id),
                   1); /* the no-op wrote nothing */
  ck_assert_int_eq(verify_code(app, b, NULL), BE_OK);
  ck_assert_int_eq(be_auth_revoke_all(app, 0, id, NULL), BE_OK);
  ck_assert_int_eq(verify_code(app, b, NULL), BE_E_UNAUTHORIZED);
  ck_assert_int_eq(verify_code(app, c, NULL), BE_E_UNAUTHORIZED);
  ck_assert_int_eq(verify_code(app, other, NULL), BE_OK); /* another user's */
  ck_assert_int_eq(audit_count(app, "auth.revoke_all"), 1);
  ck_assert_int_eq(be_auth_revoke_all(app, 0, 999999, NULL), BE_E_NOT_FOUND);
  ck_assert_int_eq(be_auth_revoke_all(app, 0, 0, NULL), BE_E_VALIDATION);
  ck_assert_int_eq(audit_count(app, "auth.revoke_all"), 1);
  /* disabling a user ends their sessions at the next verify */
  q_exec(app, "UPDATE be_users SET status = 1 WHERE id = ?", be_testkit_user_id(k, 0));
  ck_assert_int_eq(verify_code(app, other, NULL), BE_E_UNAUTHORIZED);
  be_auth_token_free(a);
  be_auth_token_free(b);
  be_auth_token_free(c);
  be_auth_token_free(other);
  be_testkit_free(k);
}
END_TEST

/* ---- password set / change ------------------------------------------ */

START_TEST(change_password_revokes_other_sessions) {
  be_testkit *k = kit_new(2);
  be_app *app = be_testkit_app(k);
  int64_t id = be_testkit_user_id(k, 1);
  const char *em = "user1@example.test";
  char *cur = login_ok(app, em, PW, id);
  char *old = login_ok(app, em, PW, id);
  char *foreign = login_ok(app, "user0@example.test", PW, 0);
  be_error *e = NULL;
  ck_assert_int_eq(be_auth_change_password(app, id, cur, NT, "not the password", NT, NEWPW, NT, &e),
                   BE_E_UNAUTHORIZED);
  ck_assert_str_eq(be_error_message(e), "invalid password");
  be_error_free(e);
  e = NULL;
  ck_assert_int_eq(be_auth_change_password(app, id, cur, NT, PW, NT, "short", NT, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "new_password");
  be_error_free(e);
  /* without the old password the new one is not judged: the policy's
   * "not your email" rule must not confirm a guessed email, and a bad new
   * password must not tell existing ids from unknown ones */
  e = NULL;
  ck_assert_int_eq(be_auth_change_password(app, id, NULL, NT, "not the password", NT, em, NT, &e),
                   BE_E_UNAUTHORIZED);
  ck_assert_str_eq(be_error_message(e), "invalid password");
  be_error_free(e);
  ck_assert_int_eq(be_auth_change_password(app, id, NULL, NT, "not the password", NT, "short", NT,
                                           NULL),
                   BE_E_UNAUTHORIZED);
  ck_assert_int_eq(be_auth_change_password(app, 999999, NULL, NT, "not the password", NT, "short", NT,
                                           NULL),
                   BE_E_UNAUTHORIZED);
  /* another user's session is not "current" */
  ck_assert_int_eq(be_auth_change_password(app, id, foreign, NT, PW, NT, NEWPW, NT, NULL),
                   BE_E_UNAUTHORIZED);
  ck_assert_int_eq(be_auth_change_password(app, id, cur, NT, PW, NT, NEWPW, NT, NULL), BE_OK);
  ck_assert_int_eq(verify_code(app, cur, NULL), BE_OK);
  ck_assert_int_eq(verify_code(app, old, NULL), BE_E_UNAUTHORIZED);
  ck_assert_int_eq(verify_code(app, foreign, NULL), BE_OK);
  login_denied(app, em, PW);
  be_auth_token_free(login_ok(app, em, NEWPW, id));
  ck_assert_int_eq(audit_count(app, "auth.password_change"), 1);
  /* without a current session every session goes */
  ck_assert_int_eq(be_auth_change_password(app, id, NULL, NT, NEWPW, NT, "yet another passphrase", NT,
                                           NULL),
                   BE_OK);
  ck_assert_int_eq(verify_code(app, cur, NULL), BE_E_UNAUTHORIZED);
  be_auth_token_free(cur);
  be_auth_token_free(old);
  be_auth_token_free(foreign);
  be_testkit_free(k);
}
END_TEST

START_TEST(set_password_revokes_and_audits) {
  be_testkit *k = kit_new(2);
  be_app *app = be_testkit_app(k);
  int64_t id = be_testkit_user_id(k, 1);
  char *tok = login_ok(app, "user1@example.test", PW, id);
  int64_t before = audit_count(app, "auth.password_set");
  ck_assert_int_eq(be_auth_set_password(app, be_testkit_user_id(k, 0), id, NEWPW, NT, NULL), BE_OK);
  ck_assert_int_eq(verify_code(app, tok, NULL), BE_E_UNAUTHORIZED);
  ck_assert_int_eq(audit_count(app, "auth.password_set"), before + 1);
  be_auth_token_free(login_ok(app, "user1@example.test", NEWPW, id));
  ck_assert_int_eq(be_auth_set_password(app, 0, 999999, NEWPW, NT, NULL), BE_E_NOT_FOUND);
  ck_assert_int_eq(be_auth_set_password(app, 0, -1, NEWPW, NT, NULL), BE_E_VALIDATION);
  ck_assert_int_eq(be_auth_set_password(NULL, 0, id, NEWPW, NT, NULL), BE_E_MISUSE);
  be_auth_token_free(tok);
  be_testkit_free(k);
}
END_TEST

/* ---- policy ---------------------------------------------------------- */

static int expect_policy(be_app *app, const char *pw, size_t len, const char *needle) {
  be_error *e = NULL;
  int rc = be_auth_check_password(app, pw, len, &e);
  if (needle != NULL) {
    ck_assert_int_eq(rc, BE_E_VALIDATION);
    ck_assert_str_eq(be_error_field_name(e, 0), "password");
    ck_assert_msg(strstr(be_error_field_message(e, 0), needle) != NULL, "'%s' lacks '%s'",
                  be_error_field_message(e, 0), needle);
  }
  be_error_free(e);
  return rc;
}

static int host_blocklist(const char *pw, size_t len, void *ud, be_error **err) {
  atomic_int *calls = ud; /* the user_data given with the hook */
  if (calls) atomic_fetch_add(calls, 1);
  if (len == 20 && memcmp(pw, "breached passphrase!", 20) == 0) return 1;
  if (len == 20 && memcmp(pw, "service down phrase!", 20) == 0) {
    if (err) be_error_new(err, BE_E_UNAVAILABLE, "breach corpus unreachable");
    return BE_E_UNAVAILABLE;
  }
  return 0;
}

START_TEST(password_policy) {
  be_testkit *k = kit_new(1);
  be_app *app = be_testkit_app(k);
  ck_assert_int_eq(expect_policy(app, "elevenchars", NT, "at least 12"), BE_E_VALIDATION);
  ck_assert_int_eq(expect_policy(app, "twelve chars", NT, NULL), BE_OK); /* exactly the minimum */
  /* characters, not bytes: 12 two-byte letters pass, 11 fail */
  ck_assert_int_eq(expect_policy(app, "\xc3\xa9t\xc3\xa9 \xc3\xa0 la plage", NT, NULL), BE_OK);
  ck_assert_int_eq(expect_policy(app, "\xc3\xa9\xc3\xa8\xc3\xa0\xc3\xb9\xc3\xa7\xc3\xa9\xc3\xa8"
                                      "\xc3\xa0\xc3\xb9\xc3\xa7\xc3\xa9",
                                 NT, "at least 12"),
                   BE_E_VALIDATION);
  char big[BE_AUTH_PASSWORD_MAX_BYTES + 1];
  uint32_t x = 1; /* letters from an LCG: no repeated unit */
  for (size_t i = 0; i < sizeof big; i++, x = x * 1103515245u + 12345u)
    big[i] = (char)('a' + (x >> 16) % 26);
  ck_assert_int_eq(expect_policy(app, big, sizeof big, "4096 bytes"), BE_E_VALIDATION); /* 4097 */
  ck_assert_int_eq(expect_policy(app, big, 257, "at most 256 characters"), BE_E_VALIDATION);
  ck_assert_int_eq(expect_policy(app, big, 256, NULL), BE_OK);
  ck_assert_int_eq(expect_policy(app, "bad utf8 \xff\xfe here", NT, "UTF-8"), BE_E_VALIDATION);
  ck_assert_int_eq(expect_policy(app, "overlong \xc0\xaf slash!", NT, "UTF-8"), BE_E_VALIDATION);
  ck_assert_int_eq(expect_policy(app, "embedded\0nul byte", 17, "NUL"), BE_E_VALIDATION);
  ck_assert_int_eq(expect_policy(app, "PassWord1234", NT, "common"), BE_E_VALIDATION);
  ck_assert_int_eq(expect_policy(app, "QWERTY123456", NT, "common"), BE_E_VALIDATION);
  ck_assert_int_eq(expect_policy(app, "aaaaaaaaaaaaaaa", NT, "pattern"), BE_E_VALIDATION);
  ck_assert_int_eq(expect_policy(app, "abcabcabcabcab", NT, "pattern"), BE_E_VALIDATION);
  ck_assert_int_eq(expect_policy(app, "abcdefghijklmn", NT, "run"), BE_E_VALIDATION);
  ck_assert_int_eq(expect_policy(app, "8901234567890", NT, "run"), BE_E_VALIDATION);
  ck_assert_int_eq(expect_policy(app, NULL, NT, "required"), BE_E_VALIDATION);
  /* the account's own email or name */
  be_error *e = NULL;
  int64_t id = be_testkit_user_id(k, 0);
  int64_t sets = audit_count(app, "auth.password_set");
  char *hash0 = q_text(app, "SELECT password_hash FROM be_users WHERE id = ?", id);
  ck_assert_int_eq(be_auth_set_password(app, 0, id, "USER0@example.test", NT, &e), BE_E_VALIDATION);
  ck_assert_ptr_nonnull(strstr(be_error_field_message(e, 0), "email or name"));
  be_error_free(e);
  /* the host hook */
  atomic_int calls = 0;
  ck_assert_int_eq(be_auth_set_blocklist_fn(app, host_blocklist, &calls, NULL), BE_OK);
  ck_assert_int_eq(expect_policy(app, "breached passphrase!", NT, "breached"), BE_E_VALIDATION);
  ck_assert_int_eq(atomic_load(&calls), 1);
  ck_assert_int_eq(be_auth_check_password(app, "service down phrase!", NT, &e), BE_E_UNAVAILABLE);
  ck_assert_int_eq(atomic_load(&calls), 2);
  /* the hook's own error is kept as the cause */
  ck_assert_ptr_nonnull(be_error_cause(e));
  ck_assert_str_eq(be_error_message(be_error_cause(e)), "breach corpus unreachable");
  be_error_free(e);
  e = NULL;
  ck_assert_int_eq(expect_policy(app, "a fine passphrase", NT, NULL), BE_OK);
  ck_assert_int_eq(be_auth_set_blocklist_fn(app, NULL, NULL, NULL), BE_OK);
  ck_assert_int_eq(expect_policy(app, "breached passphrase!", NT, NULL), BE_OK);
  ck_assert_int_eq(be_auth_set_blocklist_fn(NULL, NULL, NULL, NULL), BE_E_MISUSE);
  /* a policy failure writes nothing */
  ck_assert_int_eq(be_auth_set_password(app, 0, id, "breached passphrase!", NT, NULL), BE_OK);
  ck_assert_int_eq(audit_count(app, "auth.password_set"), sets + 1); /* only the success */
  ck_assert_int_eq(be_auth_set_password(app, 0, id, "aaaaaaaaaaaaaaa", NT, NULL), BE_E_VALIDATION);
  ck_assert_int_eq(audit_count(app, "auth.password_set"), sets + 1);
  char *hash1 = q_text(app, "SELECT password_hash FROM be_users WHERE id = ?", id);
  ck_assert_str_ne(hash0, hash1); /* the one success changed it */
  free(hash0);
  free(hash1);
  be_testkit_free(k);

  be_app_options o = BE_APP_OPTIONS_INIT;
  o.password_min_length = 15; /* NIST rev. 4, password as the only factor */
  k = kit_with(&o, 0);
  ck_assert_int_eq(expect_policy(be_testkit_app(k), "fourteen chars", NT, "at least 15"),
                   BE_E_VALIDATION);
  ck_assert_int_eq(expect_policy(be_testkit_app(k), "fifteen chars!!", NT, NULL), BE_OK);
  be_testkit_free(k);
}
END_TEST

/* "Short pattern repeated" is any unit of at most half the length (the
 * last repetition may be cut short), and a password needs
 * BE_AUTH_PASSWORD_MIN_DISTINCT different characters (auth.h). */
START_TEST(password_policy_repeats_and_variety) {
  be_testkit *k = kit_new(0);
  be_app *app = be_testkit_app(k);
  ck_assert_int_eq(expect_policy(app, "abcdeabcdeabcde", NT, "pattern"), BE_E_VALIDATION);
  ck_assert_int_eq(expect_policy(app, "abcdeABCDEabcd", NT, "pattern"), BE_E_VALIDATION);
  char big[256];
  for (int i = 0; i < 51; i++) memcpy(big + 5 * i, "qigc2", 5); /* 255 characters */
  ck_assert_int_eq(expect_policy(app, big, 255, "pattern"), BE_E_VALIDATION);
  /* a unit of exactly half the length, and one of 128 characters twice */
  ck_assert_int_eq(expect_policy(app, "my password my password ", NT, "pattern"), BE_E_VALIDATION);
  for (int i = 0; i < 128; i++) big[i] = big[128 + i] = (char)('a' + (i * 7 + i / 26) % 26);
  ck_assert_int_eq(expect_policy(app, big, 256, "pattern"), BE_E_VALIDATION);
  ck_assert_int_eq(expect_policy(app, big, 255, NULL), BE_OK);                           /* 128 of 255: over half */
  ck_assert_int_eq(expect_policy(app, "abcdeabcdeabc", NT, "pattern"), BE_E_VALIDATION); /* cut short */
  ck_assert_int_eq(expect_policy(app, "correct horse correct", NT, NULL), BE_OK);        /* 14 of 21 */
  ck_assert_int_eq(expect_policy(app, "\xc3\xa9t\xc3\xa9 \xc3\xa9t\xc3\xa9 \xc3\xa9t\xc3\xa9 ",
                                 NT, "pattern"),
                   BE_E_VALIDATION); /* multi-byte units too */
  /* too few different characters, though not periodic */
  ck_assert_int_eq(expect_policy(app, "aabbaabbccaacc", NT, "5 different"), BE_E_VALIDATION);
  ck_assert_int_eq(expect_policy(app, "AaBbaabbCcaaDd", NT, "5 different"), BE_E_VALIDATION);
  ck_assert_int_eq(expect_policy(app, "aabbaabbccaaccd", NT, "5 different"), BE_E_VALIDATION);
  ck_assert_int_eq(expect_policy(app, "aabbaabbccaaccde", NT, NULL), BE_OK);
  be_testkit_free(k);
}
END_TEST

static void sha1_hex(const char *s, size_t n, char out[41]) {
  uint8_t d[BE__SHA1_BYTES];
  be__sha1(s, n, d);
  sodium_bin2hex(out, 41, d, sizeof d);
}

START_TEST(sha1_vectors) {
  char hex[41];
  sha1_hex("abc", 3, hex);
  ck_assert_str_eq(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
  sha1_hex("", 0, hex);
  ck_assert_str_eq(hex, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 56: two tail blocks */
  sha1_hex(m, strlen(m), hex);
  ck_assert_str_eq(hex, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  char *mil = malloc(1000000);
  memset(mil, 'a', 1000000);
  sha1_hex(mil, 1000000, hex);
  ck_assert_str_eq(hex, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  free(mil);
}
END_TEST

static void write_file(const char *path, const char *data, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(data, 1, n, f), n);
  ck_assert_int_eq(fclose(f), 0);
}

/* A list file: plain passwords and SHA-1 hex (either case, HIBP's
 * ":count" suffix), CRLF and LF, a BOM; refused from then on, replaced by
 * the next load, removed with NULL. */
#if defined(__has_include)
#  if __has_include(<valgrind/memcheck.h>)
#    include <valgrind/memcheck.h>
#    define HAVE_MEMCHECK_H 1
#  endif
#endif

/* 1 when the finished thread's stack at p may be read: valgrind marks it
 * no-access when the thread ends; its client request makes it readable
 * again, and without the header (valgrind installed after the build)
 * the scan is skipped under valgrind. */
static int stack_readable(void *p, size_t n) {
#ifdef HAVE_MEMCHECK_H
  if (RUNNING_ON_VALGRIND) VALGRIND_MAKE_MEM_DEFINED(p, n);
  return 1;
#else
  (void)p, (void)n;
  const char *preload = getenv("LD_PRELOAD");
  return preload == NULL || strstr(preload, "vgpreload") == NULL;
#endif
}

typedef struct stack_check {
  be_app *app;
  const char *pw;
  int rc;
} stack_check;

static void *check_on_thread(void *p) {
  stack_check *s = p;
  s->rc = be_auth_check_password(s->app, s->pw, BE_NUL_TERMINATED, NULL);
  return NULL;
}

/* The policy check hashes the password with SHA-1 for the breached list
 * (loaded or not); no copy of it, as given or in lower case, may stay on
 * the stack of the thread that checked it (auth.h: secrets are wiped).
 * The check runs on a thread whose stack is a buffer read afterwards.
 * SHA-1's last block used to keep the lower-case copy. */
START_TEST(password_check_leaves_no_copy_on_the_stack) {
  be_testkit *k = kit_new(1);
  static const char pw[] = "Vq7-Probe-SECRET-xk3", lower[] = "vq7-probe-secret-xk3";
  size_t size = (size_t)1 << 20;
  void *stack = NULL;
  ck_assert_int_eq(posix_memalign(&stack, 4096, size), 0);
  memset(stack, 0, size);
  pthread_attr_t a;
  pthread_attr_init(&a);
  ck_assert_int_eq(pthread_attr_setstack(&a, stack, size), 0);
  stack_check s = {be_testkit_app(k), pw, -1};
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, &a, check_on_thread, &s), 0);
  pthread_join(t, NULL);
  pthread_attr_destroy(&a);
  ck_assert_int_eq(s.rc, BE_OK);
  if (!stack_readable(stack, size)) {
    fprintf(stderr, "%s: skipped under valgrind without its headers\n", __func__);
    free(stack);
    be_testkit_free(k);
    return;
  }
  ck_assert_msg(memmem(stack, size, pw, sizeof pw - 1) == NULL, "the password stayed on the stack");
  ck_assert_msg(memmem(stack, size, lower, sizeof lower - 1) == NULL,
                "its lower-case copy stayed on the stack");
  const uint32_t first[] = {'v', 'q', '7', '-', 'p'}; /* the distinct-character count's */
  ck_assert_msg(memmem(stack, size, first, sizeof first) == NULL,
                "its first distinct characters stayed on the stack");
  free(stack);
  be_testkit_free(k);
}
END_TEST

/* A line of more than BE_AUTH_PASSWORD_MAX_BYTES bytes (not counting a
 * '\r' or a leading byte order mark) is skipped, so it cannot count
 * against max_entries: lines of 4097 and 4098 bytes used to be kept, and
 * a first line of a byte order mark and 4096 bytes skipped. */
START_TEST(breached_lines_over_the_byte_cap_are_skipped) {
  be_testkit *k = kit_new(1);
  be_app *app = be_testkit_app(k);
  char *dir = tu_tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/breached.txt", dir);
  enum { CAP = BE_AUTH_PASSWORD_MAX_BYTES };
  static char data[8 * (CAP + 8)];
  size_t n = 0;
  memcpy(data, "\xEF\xBB\xBF", 3); /* kept: BOM + CAP bytes */
  n = 3;
  const struct {
    char c;
    size_t len;
    const char *end;
  } lines[] = {
    {'a', CAP, "\n"}, {'b', CAP, "\r\n"}, {'c', CAP + 1, "\n"}, {'d', CAP + 2, "\r\n"}, {'e', CAP + 3, "\n"}, {'g', CAP + 2, "\n"}, {'f', CAP, ""}};
  for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
    memset(data + n, lines[i].c, lines[i].len);
    n += lines[i].len;
    memcpy(data + n, lines[i].end, strlen(lines[i].end));
    n += strlen(lines[i].end);
  }
  write_file(path, data, n);
  int64_t count = -1;
  be_error *e = NULL;
  ck_assert_msg(be_auth_load_breached_passwords(&count, app, path, 3, &e) == BE_OK, "%s",
                be_error_message(e));
  ck_assert_int_eq(count, 3); /* a, b and f */
  ck_assert_int_eq(be_auth_load_breached_passwords(&count, app, path, 2, &e), BE_E_VALIDATION);
  be_error_free(e);
  tu_rmdir(dir);
  be_testkit_free(k);
}
END_TEST

START_TEST(breached_list_from_file) {
  be_testkit *k = kit_new(1);
  be_app *app = be_testkit_app(k);
  char *dir = tu_tempdir();
  char path[512], hex[41], upper[41];
  snprintf(path, sizeof path, "%s/breached.txt", dir);
  char data[1024], overlong[BE_AUTH_PASSWORD_MAX_BYTES + 40];
  sha1_hex("hex listed phrase", 17, hex);
  for (int i = 0; i < 41; i++) upper[i] = (char)toupper((unsigned char)hex[i]);
  sha1_hex("lower hex phrase", 16, hex);
  memset(overlong, 'z', sizeof overlong);
  int n = snprintf(data, sizeof data, "\xEF\xBB\xBFplain listed phrase\r\n\n%s:4711\r\n%s\n"
                                      "  spaced phrase kept  \nplain listed phrase\nlast line no newline",
                   upper, hex);
  write_file(path, data, (size_t)n);
  int64_t count = -1;
  be_error *e = NULL;
  ck_assert_int_eq(be_auth_load_breached_passwords(&count, app, path, 0, &e), BE_OK);
  ck_assert_int_eq(count, 5); /* the duplicate kept once */
  ck_assert_int_eq(expect_policy(app, "plain listed phrase", NT, "breached"), BE_E_VALIDATION);
  ck_assert_int_eq(expect_policy(app, "Plain Listed PHRASE", NT, "breached"), BE_E_VALIDATION);
  ck_assert_int_eq(expect_policy(app, "hex listed phrase", NT, "breached"), BE_E_VALIDATION);
  ck_assert_int_eq(expect_policy(app, "lower hex phrase", NT, "breached"), BE_E_VALIDATION);
  ck_assert_int_eq(expect_policy(app, "  spaced phrase kept  ", NT, "breached"), BE_E_VALIDATION);
  ck_assert_int_eq(expect_policy(app, "last line no newline", NT, "breached"), BE_E_VALIDATION);
  ck_assert_int_eq(expect_policy(app, "spaced phrase kept", NT, NULL), BE_OK); /* exact bytes */
  ck_assert_int_eq(expect_policy(app, "a fine passphrase", NT, NULL), BE_OK);
  /* it guards setting a password too */
  ck_assert_int_eq(be_auth_set_password(app, 0, be_testkit_user_id(k, 0), "hex listed phrase", NT,
                                        &e),
                   BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "password");
  be_error_free(e);
  e = NULL;
  /* bounded: more entries than max_entries is refused and the old list stays */
  ck_assert_int_eq(be_auth_load_breached_passwords(&count, app, path, 5, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "path");
  ck_assert_int_eq(count, 0);
  be_error_free(e);
  e = NULL;
  ck_assert_int_eq(expect_policy(app, "plain listed phrase", NT, "breached"), BE_E_VALIDATION);
  /* a new load replaces the list; an overlong line is skipped */
  memcpy(overlong + sizeof overlong - 20, "\nnew listed phrase\n", 19);
  write_file(path, overlong, sizeof overlong - 1);
  ck_assert_int_eq(be_auth_load_breached_passwords(&count, app, path, 1, NULL), BE_OK);
  ck_assert_int_eq(count, 1);
  ck_assert_int_eq(expect_policy(app, "plain listed phrase", NT, NULL), BE_OK);
  ck_assert_int_eq(expect_policy(app, "new listed phrase", NT, "breached"), BE_E_VALIDATION);
  write_file(path, "", 0);
  ck_assert_int_eq(be_auth_load_breached_passwords(&count, app, path, 0, NULL), BE_OK);
  ck_assert_int_eq(count, 0);
  ck_assert_int_eq(expect_policy(app, "new listed phrase", NT, NULL), BE_OK);
  ck_assert_int_eq(be_auth_load_breached_passwords(NULL, app, path, 0, NULL), BE_OK);
  ck_assert_int_eq(be_auth_load_breached_passwords(&count, app, NULL, 0, NULL), BE_OK);
  ck_assert_int_eq(count, 0);
  /* argument errors */
  char missing[600];
  snprintf(missing, sizeof missing, "%s/none.txt", dir);
  ck_assert_int_eq(be_auth_load_breached_passwords(NULL, app, missing, 0, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "path");
  be_error_free(e);
  e = NULL;
  ck_assert_int_eq(be_auth_load_breached_passwords(NULL, app, path, -1, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "max_entries");
  be_error_free(e);
  ck_assert_int_eq(be_auth_load_breached_passwords(NULL, NULL, path, 0, NULL), BE_E_MISUSE);
  tu_rmdir(dir);
  be_testkit_free(k);
}
END_TEST

/* ---- password reset -------------------------------------------------- */

START_TEST(reset_single_use) {
  be_testkit *k = kit_new(2);
  be_app *app = be_testkit_app(k);
  int64_t id = be_testkit_user_id(k, 1);
  char *sess = login_ok(app, "user1@example.test", PW, id);
  be_testkit_mail_clear(k);
  ck_assert_int_eq(be_auth_request_reset(app, " User1@Example.test", NT, NULL), BE_OK);
  ck_assert_int_eq(be_testkit_mail_count(k), 1);
  char *to = NULL;
  ck_assert_int_eq(be_testkit_mail_get(&to, NULL, NULL, k, 0, NULL), BE_OK);
  ck_assert_str_eq(to, "user1@example.test");
  be_free(to);
  char tok[BE_AUTH_TOKEN_LEN + 1];
  last_reset_token(k, tok);
  /* only the hash is stored */
  ck_assert_int_eq(q_int(app, "SELECT count(*) FROM be_password_resets WHERE user_id = ?", id), 1);
  be_error *e = NULL;
  ck_assert_int_eq(be_auth_reset_password(app, tok, NT, "short", NT, &e), BE_E_VALIDATION);
  be_error_free(e);
  ck_assert_int_eq(be_auth_reset_password(app, tok, NT, NEWPW, NT, NULL), BE_OK); /* not consumed above */
  ck_assert_int_eq(verify_code(app, sess, NULL), BE_E_UNAUTHORIZED);              /* all sessions ended */
  e = NULL;
  ck_assert_int_eq(be_auth_reset_password(app, tok, NT, "another passphrase", NT, &e), BE_E_UNAUTHORIZED);
  ck_assert_str_eq(be_error_message(e), "invalid or expired reset token");
  be_error_free(e);
  login_denied(app, "user1@example.test", PW);
  be_auth_token_free(login_ok(app, "user1@example.test", NEWPW, id));
  ck_assert_int_eq(audit_count(app, "auth.password_reset"), 1);
  ck_assert_int_eq(be_auth_reset_password(app, NULL, NT, NEWPW, NT, NULL), BE_E_UNAUTHORIZED);
  ck_assert_int_eq(be_auth_reset_password(app, "garbage", NT, NEWPW, NT, NULL), BE_E_UNAUTHORIZED);
  sodium_memzero(tok, sizeof tok);
  be_auth_token_free(sess);
  be_testkit_free(k);
}
END_TEST

START_TEST(reset_expires_and_clears_lockout) {
  be_app_options o = throttle_opts();
  be_testkit *k = kit_with(&o, 1);
  be_app *app = be_testkit_app(k);
  int64_t id = be_testkit_user_id(k, 0);
  ck_assert_int_eq(be_auth_request_reset(app, "user0@example.test", NT, NULL), BE_OK);
  char tok[BE_AUTH_TOKEN_LEN + 1];
  last_reset_token(k, tok);
  be_testkit_advance_ms(k, 60 * 60 * 1000, NULL); /* the default TTL: 1 h */
  ck_assert_int_eq(be_auth_reset_password(app, tok, NT, NEWPW, NT, NULL), BE_E_UNAUTHORIZED);
  /* a fresh token works, and lifts a lockout */
  for (int i = 0; i < 6; i++) {
    login_denied(app, "user0@example.test", "wrong password here");
    be_testkit_advance_ms(k, 60 * 1000, NULL);
  }
  ck_assert_int_gt(q_int(app, "SELECT locked_until FROM be_users WHERE id = ?", id),
                   be_clock_wall_ns(be_testkit_clock(k)));
  ck_assert_int_eq(be_auth_request_reset(app, "user0@example.test", NT, NULL), BE_OK);
  last_reset_token(k, tok);
  be_testkit_advance_ms(k, 59 * 60 * 1000, NULL);
  ck_assert_int_eq(be_auth_reset_password(app, tok, NT, NEWPW, NT, NULL), BE_OK);
  be_auth_token_free(login_ok(app, "user0@example.test", NEWPW, id));
  int64_t n = 0;
  ck_assert_int_eq(be_auth_purge_expired(&n, app, NULL), BE_OK);
  ck_assert_int_eq(q_int(app, "SELECT count(*) FROM be_password_resets", 0), 0);
  be_testkit_free(k);
}
END_TEST

/* A reset link mailed before a disable dies with it: re-enabling the
 * account does not bring it back. */
START_TEST(disable_kills_pending_reset_tokens) {
  be_testkit *k = kit_new(2);
  be_app *app = be_testkit_app(k);
  int64_t uid = be_testkit_user_id(k, 1);
  ck_assert_int_eq(be_auth_request_reset(app, "user1@example.test", NT, NULL), BE_OK);
  char tok[BE_AUTH_TOKEN_LEN + 1];
  last_reset_token(k, tok);
  be_user_input up = BE_USER_INPUT_INIT;
  up.fields = BE_USER_FIELD_STATUS;
  up.status = BE_USER_DISABLED;
  ck_assert_int_eq(be_user_update(NULL, app, 0, uid, &up, NULL), BE_OK);
  up.status = BE_USER_ACTIVE;
  ck_assert_int_eq(be_user_update(NULL, app, 0, uid, &up, NULL), BE_OK);
  ck_assert_int_eq(be_auth_reset_password(app, tok, NT, NEWPW, NT, NULL), BE_E_UNAUTHORIZED);
  ck_assert_int_eq(q_int(app, "SELECT count(*) FROM be_password_resets", 0), 0);
  /* a link requested after the re-enable works */
  ck_assert_int_eq(be_auth_request_reset(app, "user1@example.test", NT, NULL), BE_OK);
  last_reset_token(k, tok);
  ck_assert_int_eq(be_auth_reset_password(app, tok, NT, NEWPW, NT, NULL), BE_OK);
  be_testkit_free(k);
}
END_TEST

/* Pending reset tokens of a user (unused; expired ones count). */
static int64_t pending_resets(be_app *app, int64_t id) {
  return q_int(app, "SELECT count(*) FROM be_password_resets WHERE user_id = ? AND used = 0", id);
}

static void request_token(be_testkit *k, const char *email, char tok[BE_AUTH_TOKEN_LEN + 1]) {
  ck_assert_int_eq(be_auth_request_reset(be_testkit_app(k), email, NT, NULL), BE_OK);
  last_reset_token(k, tok);
}

/* A reset link dies with the credential it would replace and with the
 * address it was mailed to: a successful login, a password change, a
 * password set by an administrator and an email change each consume the
 * user's pending reset tokens in their own transaction. A failed login
 * does not (anyone can make one). */
START_TEST(reset_links_die_with_the_credential) {
  be_testkit *k = kit_new(1);
  be_app *app = be_testkit_app(k);
  int64_t id = be_testkit_user_id(k, 0);
  const char *em = "user0@example.test";
  char tok[BE_AUTH_TOKEN_LEN + 1];
  request_token(k, em, tok);
  login_denied(app, em, "wrong password here");
  ck_assert_int_eq(pending_resets(app, id), 1);
  be_auth_token_free(login_ok(app, em, PW, id));
  ck_assert_int_eq(pending_resets(app, id), 0);
  ck_assert_int_eq(be_auth_reset_password(app, tok, NT, NEWPW, NT, NULL), BE_E_UNAUTHORIZED);

  request_token(k, em, tok);
  ck_assert_int_eq(be_auth_change_password(app, id, NULL, NT, PW, NT, NEWPW, NT, NULL), BE_OK);
  ck_assert_int_eq(pending_resets(app, id), 0);
  ck_assert_int_eq(be_auth_reset_password(app, tok, NT, "a third passphrase", NT, NULL),
                   BE_E_UNAUTHORIZED);

  request_token(k, em, tok);
  ck_assert_int_eq(be_auth_set_password(app, 0, id, "an admin's passphrase", NT, NULL), BE_OK);
  ck_assert_int_eq(pending_resets(app, id), 0);
  ck_assert_int_eq(be_auth_reset_password(app, tok, NT, "a third passphrase", NT, NULL),
                   BE_E_UNAUTHORIZED);

  request_token(k, em, tok);
  be_user_input up = BE_USER_INPUT_INIT;
  up.fields = BE_USER_FIELD_NAME; /* not the email: the link stays */
  up.name = "Renamed";
  ck_assert_int_eq(be_user_update(NULL, app, 0, id, &up, NULL), BE_OK);
  ck_assert_int_eq(pending_resets(app, id), 1);
  up.fields = BE_USER_FIELD_EMAIL;
  up.email = "Moved@example.test";
  ck_assert_int_eq(be_user_update(NULL, app, 0, id, &up, NULL), BE_OK);
  ck_assert_int_eq(pending_resets(app, id), 0);
  ck_assert_int_eq(be_auth_reset_password(app, tok, NT, "a third passphrase", NT, NULL),
                   BE_E_UNAUTHORIZED);
  /* the new address gets links that work */
  request_token(k, "moved@example.test", tok);
  ck_assert_int_eq(be_auth_reset_password(app, tok, NT, "a third passphrase", NT, NULL), BE_OK);
  sodium_memzero(tok, sizeof tok);
  be_testkit_free(k);
}
END_TEST

START_TEST(reset_does_not_enumerate) {
  be_testkit *k = kit_new(2);
  be_app *app = be_testkit_app(k);
  be_testkit_mail_clear(k);
  ck_assert_int_eq(be_auth_request_reset(app, "nobody@example.test", NT, NULL), BE_OK);
  q_exec(app, "UPDATE be_users SET status = 1 WHERE id = ?", be_testkit_user_id(k, 1));
  ck_assert_int_eq(be_auth_request_reset(app, "user1@example.test", NT, NULL), BE_OK); /* disabled */
  ck_assert_int_eq(be_testkit_mail_count(k), 0);
  ck_assert_int_eq(q_int(app, "SELECT count(*) FROM be_password_resets WHERE used = 0", 0), 0);
  /* a failing mailer gives the same BE_OK, and the unsent token is dropped */
  ck_assert_int_eq(be_testkit_mail_fail_next(k, 1, BE_E_UNAVAILABLE, NULL), BE_OK);
  ck_assert_int_eq(be_log_set_handler(NULL, NULL, BE_LOG_OFF, NULL), BE_OK); /* keep test output quiet */
  ck_assert_int_eq(be_auth_request_reset(app, "user0@example.test", NT, NULL), BE_OK);
  ck_assert_int_eq(be_log_set_handler(NULL, NULL, BE_LOG_WARN, NULL), BE_OK);
  ck_assert_int_eq(q_int(app, "SELECT count(*) FROM be_password_resets WHERE used = 0", 0), 0);
  ck_assert_int_eq(be_auth_request_reset(app, NULL, NT, NULL), BE_E_VALIDATION);
  /* at most BE_AUTH_RESET_MAX_PENDING live tokens per user: no mail bombing */
  be_testkit_mail_clear(k);
  for (int i = 0; i < BE_AUTH_RESET_MAX_PENDING + 2; i++)
    ck_assert_int_eq(be_auth_request_reset(app, "user0@example.test", NT, NULL), BE_OK);
  ck_assert_int_eq(be_testkit_mail_count(k), BE_AUTH_RESET_MAX_PENDING);
  be_testkit_advance_ms(k, 60 * 60 * 1000, NULL); /* they expire: a new one may go out */
  ck_assert_int_eq(be_auth_request_reset(app, "user0@example.test", NT, NULL), BE_OK);
  ck_assert_int_eq(be_testkit_mail_count(k), BE_AUTH_RESET_MAX_PENDING + 1);
  be_testkit_free(k);

  /* no mailer at all */
  char *dir = tu_tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/m.db", dir);
  be_app *plain = file_app(path, NULL, 1, 64 * 1024);
  ck_assert_int_eq(be_auth_request_reset(plain, "nobody@example.test", NT, NULL), BE_E_UNSUPPORTED);
  be_app_free(plain);
  tu_rmdir(dir);
}
END_TEST

/* ---- the mailer ------------------------------------------------------ */

/* A transport that fails the careless way: an error code, *err left NULL. */
static int bare_failing_send(const char *to, const char *subject, const char *body, void *ud,
                             be_error **err) {
  (void)to;
  (void)subject;
  (void)body;
  (void)err;
  ++*(int *)ud;
  return BE_E_UNAVAILABLE;
}

/* A file app (cheap hashing, system clock) whose mailer is m. */
static be_app *mailer_app(const char *path, const be_mailer *m) {
  be_app_options o = BE_APP_OPTIONS_INIT;
  o.database = db_at(path);
  o.mailer = m;
  o.insecure_test_hashing = 1;
  o.pwhash_opslimit = 1;
  o.pwhash_memlimit = 64 * 1024;
  be_app *app = NULL;
  be_error *e = NULL;
  int rc = be_app_new(&app, &o, &e);
  ck_assert_msg(rc == BE_OK, "app: %s", be_error_message(e));
  return app;
}

/* A transport that accepts every message and counts them. */
static int counting_send(const char *to, const char *subject, const char *body, void *ud,
                         be_error **err) {
  (void)to;
  (void)subject;
  (void)body;
  (void)err;
  ++*(int *)ud;
  return BE_OK;
}

/* What one reset request costs the driver, per operation. */
static void reset_request_calls(be_app *app, be_fault *f, const char *email, int64_t out[4]) {
  static const int32_t ops[4] = {BE_FAULT_OP_BEGIN, BE_FAULT_OP_BIND, BE_FAULT_OP_STEP,
                                 BE_FAULT_OP_COMMIT};
  be_fault_reset_counts(f);
  ck_assert_int_eq(be_auth_request_reset(app, email, NT, NULL), BE_OK);
  for (int i = 0; i < 4; i++) out[i] = be_fault_calls(f, ops[i]);
}

/* Reset requests do the same database work whatever the email: one that
 * gets a token (stored and mailed), one whose account has enough tokens
 * pending, a disabled account's and an unknown one run the same
 * statements in one write transaction, so their timing tells nothing
 * (measured by bench_auth, auth_reset_timing). Each is audited. */
START_TEST(reset_requests_do_equal_work) {
  be_driver *drv = NULL;
  be_fault *f = NULL;
  ck_assert_int_eq(be_fault_driver_new(&drv, &f, be_sqlite_driver(), NULL), BE_OK);
  char *dir = tu_tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/equal.db", dir);
  int sent = 0;
  be_mailer m = BE_MAILER_INIT;
  m.send = counting_send;
  m.user_data = &sent;
  be_app_options o = BE_APP_OPTIONS_INIT;
  o.database = path;
  o.driver = drv;
  o.mailer = &m;
  o.insecure_test_hashing = 1;
  o.pwhash_opslimit = 1;
  o.pwhash_memlimit = 64 * 1024;
  be_app *app = NULL;
  ck_assert_int_eq(be_app_new(&app, &o, NULL), BE_OK);
  int64_t known = add_user(app, "known@example.test");
  int64_t full = add_user(app, "full@example.test");
  q_exec(app, "UPDATE be_users SET status = 1 WHERE id = ?", add_user(app, "off@example.test"));
  for (int i = 0; i < BE_AUTH_RESET_MAX_PENDING; i++)
    ck_assert_int_eq(be_auth_request_reset(app, "full@example.test", NT, NULL), BE_OK);
  static const char *const emails[] = {"known@example.test", "full@example.test",
                                       "off@example.test", "nobody@example.test"};
  for (int i = 0; i < 4; i++) /* warm the statement cache */
    ck_assert_int_eq(be_auth_request_reset(app, emails[i], NT, NULL), BE_OK);
  int64_t audits = audit_count(app, "auth.reset_request");
  sent = 0;
  int64_t want[4], got[4];
  reset_request_calls(app, f, emails[0], want);
  ck_assert_int_eq(want[0], 1); /* one write transaction */
  ck_assert_int_eq(want[3], 1);
  for (int i = 1; i < 4; i++) {
    reset_request_calls(app, f, emails[i], got);
    for (int op = 0; op < 4; op++)
      ck_assert_msg(got[op] == want[op], "%s: op %d: %lld calls, %lld for a known email",
                    emails[i], op, (long long)got[op], (long long)want[op]);
  }
  ck_assert_int_eq(sent, 1); /* only the known email got mail */
  ck_assert_int_eq(audit_count(app, "auth.reset_request"), audits + 4);
  /* 2 + 3 tokens issued; the 6 other requests (full, off and nobody,
   * twice each) left used rows of no user, which the purge removes */
  ck_assert_int_eq(q_int(app, "SELECT count(*) FROM be_password_resets WHERE user_id = ?", known), 2);
  ck_assert_int_eq(q_int(app, "SELECT count(*) FROM be_password_resets WHERE user_id = ?", full),
                   BE_AUTH_RESET_MAX_PENDING);
  ck_assert_int_eq(q_int(app, "SELECT count(*) FROM be_password_resets WHERE used = 0", 0),
                   2 + BE_AUTH_RESET_MAX_PENDING);
  ck_assert_int_eq(q_int(app, "SELECT count(*) FROM be_password_resets WHERE user_id IS NULL "
                              "AND used = 1",
                         0),
                   6);
  int64_t purged = 0;
  ck_assert_int_eq(be_auth_purge_expired(&purged, app, NULL), BE_OK);
  ck_assert_int_eq(purged, 6);
  ck_assert_int_eq(q_int(app, "SELECT count(*) FROM be_password_resets", 0), 2 + BE_AUTH_RESET_MAX_PENDING);
  be_app_free(app);
  be_fault_free(f);
  tu_rmdir(dir);
}
END_TEST

/* A mailer that fails without filling *err is logged with its own code,
 * never as code=BE_OK. */
START_TEST(mailer_failure_logs_the_mailers_code) {
  char *dir = tu_tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/mail.db", dir);
  int calls = 0;
  be_mailer m = BE_MAILER_INIT;
  m.send = bare_failing_send;
  m.user_data = &calls;
  be_app *app = mailer_app(path, &m);
  int64_t id = add_user(app, "user0@example.test");
  log_start();
  ck_assert_int_eq(be_auth_request_reset(app, "user0@example.test", NT, NULL), BE_OK);
  log_stop();
  ck_assert_int_eq(calls, 1);
  char want[64];
  snprintf(want, sizeof want, "user_id=%lld code=BE_E_UNAVAILABLE", (long long)id);
  ck_assert_msg(strstr(logged.text, want) != NULL, "logged: %s", logged.text);
  ck_assert_ptr_null(strstr(logged.text, "code=BE_OK"));
  be_app_free(app);
  tu_rmdir(dir);
}
END_TEST

/* Captured message i goes to `to` with `subject`, and its body holds
 * none of the secrets (NULL-terminated list). */
static void expect_notice(be_testkit *k, int64_t i, const char *to, const char *subject,
                          const char *const *secrets) {
  char *t = NULL, *sub = NULL, *body = NULL;
  ck_assert_int_eq(be_testkit_mail_get(&t, &sub, &body, k, i, NULL), BE_OK);
  ck_assert_str_eq(t, to);
  ck_assert_str_eq(sub, subject);
  for (const char *const *p = secrets; *p; p++)
    ck_assert_msg(strstr(body, *p) == NULL, "mail %lld holds a secret", (long long)i);
  be_free(t);
  be_free(sub);
  be_free(body);
}

/* The holder of an account hears, through the mailer, of every change to
 * its password or email -- the old address too -- in a mail with no
 * secret in it. Giving a password to an account that had none is no
 * change. A mailer failure does not fail the change: it is logged. */
START_TEST(credential_changes_are_notified) {
  be_testkit *k = kit_new(2);
  be_app *app = be_testkit_app(k);
  int64_t id = be_testkit_user_id(k, 1);
  const char *em = "user1@example.test";
  char tok[BE_AUTH_TOKEN_LEN + 1] = "(no token issued yet)"; /* a secret only once filled */
  const char *const secrets[] = {PW, NEWPW, "an admin's passphrase", "a third passphrase", tok,
                                 NULL};
  be_testkit_mail_clear(k);
  ck_assert_int_eq(be_auth_change_password(app, id, NULL, NT, PW, NT, NEWPW, NT, NULL), BE_OK);
  ck_assert_int_eq(be_testkit_mail_count(k), 1);
  expect_notice(k, 0, em, "Your password was changed", secrets);
  ck_assert_int_eq(be_auth_set_password(app, 0, id, "an admin's passphrase", NT, NULL), BE_OK);
  ck_assert_int_eq(be_testkit_mail_count(k), 2);
  expect_notice(k, 1, em, "Your password was changed", secrets);
  request_token(k, em, tok);
  ck_assert_int_eq(be_auth_reset_password(app, tok, NT, "a third passphrase", NT, NULL), BE_OK);
  ck_assert_int_eq(be_testkit_mail_count(k), 4);
  expect_notice(k, 3, em, "Your password was reset", secrets);
  be_user_input up = BE_USER_INPUT_INIT;
  up.fields = BE_USER_FIELD_NAME | BE_USER_FIELD_EMAIL;
  up.name = "Moved";
  up.email = em; /* the same address: no change to tell */
  ck_assert_int_eq(be_user_update(NULL, app, 0, id, &up, NULL), BE_OK);
  ck_assert_int_eq(be_testkit_mail_count(k), 4);
  up.email = "moved@example.test";
  ck_assert_int_eq(be_user_update(NULL, app, 0, id, &up, NULL), BE_OK);
  ck_assert_int_eq(be_testkit_mail_count(k), 6);
  expect_notice(k, 4, em, "Your email address was changed", secrets);
  expect_notice(k, 5, "moved@example.test", "Your email address was changed", secrets);

  /* a first password (sign-up) replaces nothing: no mail */
  int64_t fresh = 0;
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = "fresh@example.test";
  in.name = "Fresh";
  ck_assert_int_eq(be_user_create(NULL, &fresh, app, 0, &in, NULL), BE_OK);
  ck_assert_int_eq(be_auth_set_password(app, 0, fresh, NEWPW, NT, NULL), BE_OK);
  ck_assert_int_eq(be_testkit_mail_count(k), 6);

  /* the mailer fails: the change stands, the failure is logged */
  ck_assert_int_eq(be_testkit_mail_fail_next(k, 1, BE_E_UNAVAILABLE, NULL), BE_OK);
  log_start();
  ck_assert_int_eq(be_auth_change_password(app, fresh, NULL, NT, NEWPW, NT, PW, NT, NULL), BE_OK);
  log_stop();
  ck_assert_int_eq(be_testkit_mail_count(k), 6);
  be_auth_token_free(login_ok(app, "fresh@example.test", PW, fresh));
  char want[96];
  snprintf(want, sizeof want, "password-changed notice user_id=%lld code=BE_E_UNAVAILABLE",
           (long long)fresh);
  ck_assert_msg(strstr(logged.text, want) != NULL, "logged: %s", logged.text);
  sodium_memzero(tok, sizeof tok);
  be_testkit_free(k);
}
END_TEST

/* ---- the hash bound -------------------------------------------------- */

/* Holds every caller inside its hash slot until given a permit, and
 * records the order callers got their slot in (by job id). */
typedef struct gate {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int inside;  /* callers that reached their slot so far */
  int permits; /* callers that may leave; INT_MAX: all */
  int order[16];
} gate;

static _Thread_local int tls_job; /* the job id of this thread's login */

static void gate_hook(void *ud) {
  gate *g = ud;
  pthread_mutex_lock(&g->mu);
  if (g->inside < 16) g->order[g->inside] = tls_job;
  g->inside++;
  pthread_cond_broadcast(&g->cv);
  while (g->permits == 0) pthread_cond_wait(&g->cv, &g->mu);
  if (g->permits != INT_MAX) g->permits--;
  pthread_mutex_unlock(&g->mu);
}

static void gate_permit(gate *g, int n) {
  pthread_mutex_lock(&g->mu);
  g->permits = n == INT_MAX ? INT_MAX : g->permits + n;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
}

static void gate_wait_inside(gate *g, int n) {
  pthread_mutex_lock(&g->mu);
  while (g->inside < n) pthread_cond_wait(&g->cv, &g->mu);
  pthread_mutex_unlock(&g->mu);
}

/* Poll until n callers queue for a slot (they block in the library);
 * fails after 20 s. */
static void wait_queued(be_app *app, int32_t n) {
  for (int i = 0; be__pw_slots_waiting(app->auth) != n; i++) {
    ck_assert_msg(i < 20000, "%d callers never queued", (int)n);
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
}

typedef struct login_job {
  be_app *app;
  int id;
  int rc;
  pthread_t t;
} login_job;

static void *login_thread(void *arg) {
  login_job *j = arg;
  tls_job = j->id;
  char *tok = NULL;
  j->rc = be_auth_login(&tok, NULL, j->app, "user0@example.test", NT, PW, NT, NULL);
  be_auth_token_free(tok);
  return NULL;
}

static void start_login(login_job *j, be_app *app, int id) {
  j->app = app;
  j->id = id;
  j->rc = 1;
  ck_assert_int_eq(pthread_create(&j->t, NULL, login_thread, j), 0);
}

/* With every slot taken, a 5th login queues and is served when a slot
 * frees, instead of failing at once. */
START_TEST(hash_slots_queue_then_serve) {
  be_testkit *k = kit_new(1);
  be_app *app = be_testkit_app(k);
  gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, {0}};
  be__auth_set_slot_hook(app->auth, gate_hook, &g);
  login_job j[5];
  for (int i = 0; i < 4; i++) start_login(&j[i], app, i + 1); /* the default limit: 4 */
  gate_wait_inside(&g, 4);
  start_login(&j[4], app, 5);
  wait_queued(app, 1); /* the 5th waits */
  ck_assert_int_eq(j[4].rc, 1);
  gate_permit(&g, 1); /* one of the four finishes: its slot goes to the 5th */
  gate_wait_inside(&g, 5);
  ck_assert_int_eq(be__pw_slots_waiting(app->auth), 0);
  ck_assert_int_eq(g.order[4], 5);
  gate_permit(&g, INT_MAX);
  for (int i = 0; i < 5; i++) {
    pthread_join(j[i].t, NULL);
    ck_assert_int_eq(j[i].rc, BE_OK);
  }
  be__auth_set_slot_hook(app->auth, NULL, NULL);
  be_testkit_free(k);
}
END_TEST

/* Waiters get slots in the order they came, newcomers never overtake. */
START_TEST(hash_slots_fifo) {
  be_app_options o = BE_APP_OPTIONS_INIT;
  o.max_concurrent_hashes = 1;
  o.hash_wait_ms = 60000;
  be_testkit *k = kit_with(&o, 1);
  be_app *app = be_testkit_app(k);
  gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, {0}};
  be__auth_set_slot_hook(app->auth, gate_hook, &g);
  login_job j[5];
  start_login(&j[0], app, 1);
  gate_wait_inside(&g, 1);
  for (int i = 1; i < 5; i++) {
    start_login(&j[i], app, i + 1);
    wait_queued(app, i); /* queued before the next one starts */
  }
  gate_permit(&g, INT_MAX);
  for (int i = 0; i < 5; i++) {
    pthread_join(j[i].t, NULL);
    ck_assert_int_eq(j[i].rc, BE_OK);
    ck_assert_int_eq(g.order[i], i + 1);
  }
  be__auth_set_slot_hook(app->auth, NULL, NULL);
  be_testkit_free(k);
}
END_TEST

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A waiter gives up after hash_wait_ms with the retryable 503, whatever
 * the account; the queue is left clean. */
START_TEST(hash_slots_wait_times_out) {
  be_app_options o = BE_APP_OPTIONS_INIT;
  o.max_concurrent_hashes = 1;
  o.hash_wait_ms = 100;
  be_testkit *k = kit_with(&o, 1);
  be_app *app = be_testkit_app(k);
  gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, {0}};
  be__auth_set_slot_hook(app->auth, gate_hook, &g);
  login_job holder;
  start_login(&holder, app, 1);
  gate_wait_inside(&g, 1);
  char *tok = NULL;
  be_error *e = NULL;
  int64_t t0 = mono_ms();
  ck_assert_int_eq(be_auth_login(&tok, NULL, app, "user0@example.test", NT, PW, NT, &e),
                   BE_E_UNAVAILABLE);
  ck_assert_int_ge(mono_ms() - t0, 100); /* it did wait */
  ck_assert_int_eq(be_error_http_status(e), 503);
  ck_assert_int_eq(be_error_is_retryable(e), 1);
  ck_assert_ptr_nonnull(strstr(be_error_message(e), "waited 100 ms"));
  be_error_free(e);
  ck_assert_int_eq(be_auth_login(&tok, NULL, app, "nobody@example.test", NT, PW, NT, NULL),
                   BE_E_UNAVAILABLE); /* same for unknown users */
  ck_assert_int_eq(be_auth_set_password(app, 0, be_testkit_user_id(k, 0), NEWPW, NT, NULL),
                   BE_E_UNAVAILABLE);
  /* two waiters time out together */
  login_job late[2];
  for (int i = 0; i < 2; i++) start_login(&late[i], app, 2 + i);
  for (int i = 0; i < 2; i++) {
    pthread_join(late[i].t, NULL);
    ck_assert_int_eq(late[i].rc, BE_E_UNAVAILABLE);
  }
  ck_assert_int_eq(be__pw_slots_waiting(app->auth), 0);
  gate_permit(&g, INT_MAX);
  pthread_join(holder.t, NULL);
  ck_assert_int_eq(holder.rc, BE_OK);
  be__auth_set_slot_hook(app->auth, NULL, NULL);
  be_auth_token_free(login_ok(app, "user0@example.test", PW, 0)); /* the slot is free again */
  be_testkit_free(k);

  /* the wait is an option: 0 is the default, out of range is named */
  o.hash_wait_ms = 60001;
  be_app *bad = NULL;
  ck_assert_int_eq(be_app_new(&bad, &o, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "hash_wait_ms");
  be_error_free(e);
  o.hash_wait_ms = -1;
  ck_assert_int_eq(be_app_new(&bad, &o, NULL), BE_E_VALIDATION);
}
END_TEST

static void *login_loop(void *arg) {
  be_app *app = arg;
  for (int i = 0; i < 20; i++) {
    char *tok = NULL;
    int rc = be_auth_login(&tok, NULL, app, "user0@example.test", NT, PW, NT, NULL);
    if (rc == BE_OK) {
      if (be_auth_verify(NULL, app, tok, NT, NULL) != BE_OK) return (void *)1;
      be_auth_logout(app, tok, NT, NULL);
      be_auth_token_free(tok);
    } else if (rc != BE_E_UNAVAILABLE) {
      return (void *)1;
    }
  }
  return NULL;
}

START_TEST(concurrent_logins) {
  be_testkit *k = kit_new(1);
  be_app *app = be_testkit_app(k);
  pthread_t t[4];
  for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, login_loop, app);
  for (int i = 0; i < 4; i++) {
    void *r;
    pthread_join(t[i], &r);
    ck_assert_ptr_null(r);
  }
  be_testkit_free(k);
}
END_TEST

/* ---- failure paths --------------------------------------------------- */

START_TEST(commit_failure_leaves_nothing) {
  /* The testkit always uses SQLite in memory: a file app takes the fault driver. */
  be_driver *drv = NULL;
  be_fault *f = NULL;
  ck_assert_int_eq(be_fault_driver_new(&drv, &f, be_sqlite_driver(), NULL), BE_OK);
  char *dir = tu_tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/fault.db", dir);
  be_clock *clock = NULL;
  ck_assert_int_eq(be_clock_fake_new(&clock, 0, BE_TESTKIT_START_WALL_MS * BE_NS_PER_MS, NULL), BE_OK);
  be_app *app = file_app_drv(path, clock, 1, 64 * 1024, drv);
  int64_t id = add_user(app, "user0@example.test");

  /* login: the session insert's commit fails -> no session, no token, no audit row */
  int64_t audits = q_int(app, "SELECT count(*) FROM be_audit_log", 0);
  ck_assert_int_eq(be_fault_set(f, BE_FAULT_OP_COMMIT, BE_FAULT_NTH, 1, BE_E_STORAGE, NULL), BE_OK);
  char *tok = (char *)"x";
  ck_assert_int_eq(be_auth_login(&tok, NULL, app, "user0@example.test", NT, PW, NT, NULL), BE_E_STORAGE);
  ck_assert_ptr_null(tok);
  be_fault_clear(f, BE_FAULT_OP_ALL);
  ck_assert_int_eq(q_int(app, "SELECT count(*) FROM be_sessions", 0), 0);
  ck_assert_int_eq(q_int(app, "SELECT count(*) FROM be_audit_log", 0), audits);

  /* set password: the commit fails -> old password still works, nothing revoked */
  tok = login_ok(app, "user0@example.test", PW, id);
  audits = q_int(app, "SELECT count(*) FROM be_audit_log", 0);
  ck_assert_int_eq(be_fault_set(f, BE_FAULT_OP_COMMIT, BE_FAULT_NTH, 1, BE_E_STORAGE, NULL), BE_OK);
  ck_assert_int_eq(be_auth_set_password(app, 0, id, NEWPW, NT, NULL), BE_E_STORAGE);
  be_fault_clear(f, BE_FAULT_OP_ALL);
  ck_assert_int_eq(verify_code(app, tok, NULL), BE_OK);
  ck_assert_int_eq(q_int(app, "SELECT count(*) FROM be_audit_log", 0), audits);
  be_auth_token_free(login_ok(app, "user0@example.test", PW, id));
  audits = q_int(app, "SELECT count(*) FROM be_audit_log", 0);

  /* logout: the commit fails -> the session stays live, no audit row */
  char *other = login_ok(app, "user0@example.test", PW, id);
  audits = q_int(app, "SELECT count(*) FROM be_audit_log", 0);
  ck_assert_int_eq(be_fault_set(f, BE_FAULT_OP_COMMIT, BE_FAULT_NTH, 1, BE_E_STORAGE, NULL), BE_OK);
  ck_assert_int_eq(be_auth_logout(app, other, NT, NULL), BE_E_STORAGE);
  be_fault_clear(f, BE_FAULT_OP_ALL);
  ck_assert_int_eq(verify_code(app, other, NULL), BE_OK);
  ck_assert_int_eq(q_int(app, "SELECT count(*) FROM be_audit_log", 0), audits);
  ck_assert_int_eq(be_auth_logout(app, other, NT, NULL), BE_OK);
  ck_assert_int_eq(q_int(app, "SELECT count(*) FROM be_audit_log", 0), audits + 1);
  be_auth_token_free(other);
  audits++;

  /* revoke-all with a failing step inside the transaction */
  ck_assert_int_eq(be_fault_set(f, BE_FAULT_OP_STEP, BE_FAULT_FROM, 3, BE_E_STORAGE, NULL), BE_OK);
  ck_assert_int_eq(be_auth_revoke_all(app, 0, id, NULL), BE_E_STORAGE);
  be_fault_clear(f, BE_FAULT_OP_ALL);
  ck_assert_int_eq(verify_code(app, tok, NULL), BE_OK);
  ck_assert_int_eq(q_int(app, "SELECT count(*) FROM be_audit_log", 0), audits);

  /* malformed tokens never reach the driver */
  be_fault_reset_counts(f);
  ck_assert_int_eq(be_auth_verify(NULL, app, "not-a-token", NT, NULL), BE_E_UNAUTHORIZED);
  ck_assert_int_eq(be_auth_logout(app, "", NT, NULL), BE_E_UNAUTHORIZED);
  ck_assert_int_eq(be_fault_calls(f, BE_FAULT_OP_PREPARE), 0);
  ck_assert_int_eq(be_fault_calls(f, BE_FAULT_OP_STEP), 0);

  /* the slide write failing does not fail a valid verify */
  be_clock_advance(clock, 5 * MIN_NS, NULL);
  ck_assert_int_eq(be_log_set_handler(NULL, NULL, BE_LOG_OFF, NULL), BE_OK);
  ck_assert_int_eq(be_fault_set(f, BE_FAULT_OP_STEP, BE_FAULT_NTH, 2, BE_E_BUSY, NULL), BE_OK);
  ck_assert_int_eq(verify_code(app, tok, NULL), BE_OK);
  be_fault_clear(f, BE_FAULT_OP_ALL);
  ck_assert_int_eq(be_log_set_handler(NULL, NULL, BE_LOG_WARN, NULL), BE_OK);

  be_auth_token_free(tok);
  be_app_free(app);
  be_fault_free(f);
  be_clock_free(clock);
  tu_rmdir(dir);
}
END_TEST

static be_app *oom_app;

static int auth_round(void *arg) {
  (void)arg;
  char *tok = NULL;
  int rc = be_auth_login(&tok, NULL, oom_app, "user0@example.test", NT, PW, NT, NULL);
  if (rc != BE_OK) return rc;
  be_error *e = NULL;
  rc = be_auth_verify(NULL, oom_app, tok, NT, &e);
  be_error_free(e);
  if (rc == BE_OK) rc = be_auth_logout(oom_app, tok, NT, NULL);
  be_auth_token_free(tok);
  if (rc != BE_OK) return rc;
  e = NULL;
  rc = be_auth_login(&tok, NULL, oom_app, "user0@example.test", NT, "wrong password here", NT, &e);
  be_error_free(e);
  return rc == BE_E_UNAUTHORIZED ? BE_OK : rc;
}

START_TEST(failing_allocator_leaks_nothing) {
  be_testkit *k = kit_new(1);
  oom_app = be_testkit_app(k);
  ck_assert_int_eq(auth_round(NULL), BE_OK); /* warm caches (statements, pool) */
  ck_assert_int_eq(auth_round(NULL), BE_OK);
  TU_FOR_EACH_ALLOC_FAILURE(auth_round, NULL);
  q_exec(oom_app, "UPDATE be_users SET failed_logins = 0", 0);
  be_testkit_free(k);
}
END_TEST

/* ---- imported argon2id hashes (PHC strings) ---------------------------- */

#define MIGRATED_PW "migrated pass phrase 2024"

/* Made by argon2-cffi 21.1.0 (python3-argon2) from MIGRATED_PW. */
static const char *const CFFI_HASHES[] = {
  "$argon2id$v=19$m=64,t=1,p=4$BDA7brXddh+I4jFdj1tB1w$k0l5757etJKV6pfi4hnwsQ",
  "$argon2id$v=19$m=1024,t=2,p=1$ItYIcQq9sGpK0RuwhhNu3w$D2Fd6Wfvl731q1dnA01Pdt584B0c2pYGafOL5zpXnMg",
  "$argon2id$v=19$m=8,t=1,p=1$vl6WP3z7cIJeRTc61ZB+5w$VWWwqjlfl47rCPj6Y5eq5Q",
};

static int64_t new_user(be_app *app, const char *email) {
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = email;
  in.email_len = NT;
  in.name = "Migrated";
  in.name_len = NT;
  int64_t id = 0;
  ck_assert_int_eq(be_user_create(NULL, &id, app, 0, &in, NULL), BE_OK);
  return id;
}

/* Import h for a new user, check it is stored as is and unpeppered, log
 * in with MIGRATED_PW, and return whether that login replaced it. */
static int import_and_login(be_app *app, const char *email, const char *h) {
  int64_t id = new_user(app, email);
  be_error *e = NULL;
  int rc = be_auth_import_password_hash(app, 0, id, h, NT, &e);
  ck_assert_msg(rc == BE_OK, "import %s: %s", h, be_error_message(e));
  char *stored = q_text(app, "SELECT password_hash FROM be_users WHERE id = ?", id);
  ck_assert_str_eq(stored, h);
  free(stored);
  ck_assert_int_eq(pepper_of(app, id), 0);
  login_denied(app, email, "not the migrated pass phrase");
  be_auth_token_free(login_ok(app, email, MIGRATED_PW, id));
  stored = q_text(app, "SELECT password_hash FROM be_users WHERE id = ?", id);
  int replaced = strcmp(stored, h) != 0;
  if (replaced) /* rehashed with the app's parameters: the same password still works */
    be_auth_token_free(login_ok(app, email, MIGRATED_PW, id));
  free(stored);
  return replaced;
}

/* libsodium hashes (made here) and argon2-cffi hashes log in; those below
 * the app's parameters, of another shape (lanes, hash length) or without
 * the app's pepper are rehashed, under the pepper, at that login. */
START_TEST(imported_hashes_log_in_and_are_rehashed) {
  char *dir = tu_tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/import.db", dir);
  /* no pepper; parameters t = 1, m = 64 KiB */
  be_app *app = pepper_app(path, NULL, 0, NULL, 0);
  char h[crypto_pwhash_STRBYTES];
  ck_assert_int_eq(crypto_pwhash_str(h, MIGRATED_PW, strlen(MIGRATED_PW), 1, 64 * 1024), 0);
  ck_assert_int_eq(import_and_login(app, "same@import.test", h), 0); /* the app's own shape */
  ck_assert_int_eq(crypto_pwhash_str(h, MIGRATED_PW, strlen(MIGRATED_PW), 1, 8192), 0);
  ck_assert_int_eq(import_and_login(app, "weak@import.test", h), 1);               /* below: rehashed */
  ck_assert_int_eq(import_and_login(app, "cffi0@import.test", CFFI_HASHES[0]), 1); /* p = 4 */
  ck_assert_int_eq(import_and_login(app, "cffi1@import.test", CFFI_HASHES[1]), 1); /* stronger */
  ck_assert_int_eq(import_and_login(app, "cffi2@import.test", CFFI_HASHES[2]), 1);
  int64_t id = q_int(app, "SELECT id FROM be_users WHERE email = 'weak@import.test'", 0);
  char *now = q_text(app, "SELECT password_hash FROM be_users WHERE id = ?", id);
  ck_assert_int_eq(crypto_pwhash_str_needs_rehash(now, 1, 64 * 1024), 0);
  free(now);
  ck_assert_int_eq(audit_count(app, "auth.password_import"), 5);
  be_app_free(app);

  /* with a pepper: an imported hash verifies without it, and its first
   * login rehashes it under the pepper */
  app = pepper_app(path, PEPPER_A, 1, NULL, 0);
  ck_assert_int_eq(crypto_pwhash_str(h, MIGRATED_PW, strlen(MIGRATED_PW), 1, 64 * 1024), 0);
  ck_assert_int_eq(import_and_login(app, "peppered@import.test", h), 1);
  id = q_int(app, "SELECT id FROM be_users WHERE email = 'peppered@import.test'", 0);
  ck_assert_int_eq(pepper_of(app, id), 1);
  now = q_text(app, "SELECT password_hash FROM be_users WHERE id = ?", id);
  ck_assert_int_ne(crypto_pwhash_str_verify(now, MIGRATED_PW, strlen(MIGRATED_PW)), 0); /* keyed */
  free(now);

  /* hashes argon2-cffi makes now, when this machine has it */
  FILE *py = popen("/usr/bin/python3 -c \"from argon2 import PasswordHasher as P; "
                   "print(P(time_cost=2, memory_cost=256, parallelism=2).hash('" MIGRATED_PW "'))\" "
                   "2>/dev/null",
                   "r");
  char line[256] = "";
  if (py != NULL) {
    if (fgets(line, sizeof line, py) == NULL) line[0] = '\0';
    pclose(py);
  }
  line[strcspn(line, "\n")] = '\0';
  if (strncmp(line, "$argon2id$", 10) == 0)
    ck_assert_int_eq(import_and_login(app, "live-cffi@import.test", line), 1);
  else
    fprintf(stderr, "argon2-cffi not available: only the committed argon2-cffi hashes tested\n");
  be_app_free(app);
  tu_rmdir(dir);
}
END_TEST

/* Anything but a well-formed argon2id PHC string is a field error on
 * "password_hash", and nothing is written. */
START_TEST(imported_hash_must_be_argon2id_phc) {
  char *dir = tu_tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/import-bad.db", dir);
  be_app *app = pepper_app(path, NULL, 0, NULL, 0);
  int64_t id = new_user(app, "bad@import.test");
  char good[crypto_pwhash_STRBYTES];
  ck_assert_int_eq(crypto_pwhash_str(good, MIGRATED_PW, strlen(MIGRATED_PW), 1, 8192), 0);
  ck_assert_int_eq(be_auth_import_password_hash(app, 0, id, good, NT, NULL), BE_OK);
  char long_salt[200];
  snprintf(long_salt, sizeof long_salt, "$argon2id$v=19$m=64,t=1,p=1$%s$%s",
           "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB",
           "k0l5757etJKV6pfi4hnwsQ");
  const char *const bad[] = {
    "",
    "garbage",
    "$argon2i$v=19$m=64,t=1,p=1$UrvNFrs6WchKHKTrd8HmyQ$GIDUwwkK+voFGC+YwlsgEA",
    "$argon2d$v=19$m=64,t=1,p=1$7BWhk6q7zJPIlSXZO1Va9w$FX5ipfrCrHI4ELjXmDTijg",
    "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
    "$argon2id$v=16$m=64,t=1,p=1$BDA7brXddh+I4jFdj1tB1w$k0l5757etJKV6pfi4hnwsQ",
    "$argon2id$m=64,t=1,p=1$BDA7brXddh+I4jFdj1tB1w$k0l5757etJKV6pfi4hnwsQ",
    "$argon2id$v=19$m=0,t=1,p=1$BDA7brXddh+I4jFdj1tB1w$k0l5757etJKV6pfi4hnwsQ",
    "$argon2id$v=19$m=64,t=0,p=1$BDA7brXddh+I4jFdj1tB1w$k0l5757etJKV6pfi4hnwsQ",
    "$argon2id$v=19$m=64,t=1,p=0$BDA7brXddh+I4jFdj1tB1w$k0l5757etJKV6pfi4hnwsQ",
    "$argon2id$v=19$m=8,t=1,p=2$BDA7brXddh+I4jFdj1tB1w$k0l5757etJKV6pfi4hnwsQ",
    "$argon2id$v=19$m=064,t=1,p=1$BDA7brXddh+I4jFdj1tB1w$k0l5757etJKV6pfi4hnwsQ",
    "$argon2id$v=19$m=99999999999,t=1,p=1$BDA7brXddh+I4jFdj1tB1w$k0l5757etJKV6pfi4hnwsQ",
    "$argon2id$v=19$t=1,m=64,p=1$BDA7brXddh+I4jFdj1tB1w$k0l5757etJKV6pfi4hnwsQ",
    "$argon2id$v=19$m=64,t=1,p=1$BDA7brXddh+I4jFd!1tB1w$k0l5757etJKV6pfi4hnwsQ",
    "$argon2id$v=19$m=64,t=1,p=1$BDA7brXddh+I4jFdj1tB1w==$k0l5757etJKV6pfi4hnwsQ",
    "$argon2id$v=19$m=64,t=1,p=1$BDA7brXddh+I4jFdj1tB1w$k0l5757etJKV6pfi4hnwsQ$",
    "$argon2id$v=19$m=64,t=1,p=1$BDA7brXddh+I4jFdj1tB1w",
    "$argon2id$v=19$m=64,t=1,p=1$QUFB$k0l5757etJKV6pfi4hnwsQ",     /* 3-byte salt */
    "$argon2id$v=19$m=64,t=1,p=1$BDA7brXddh+I4jFdj1tB1w$k0l5757e", /* 6-byte hash */
    " $argon2id$v=19$m=64,t=1,p=1$BDA7brXddh+I4jFdj1tB1w$k0l5757etJKV6pfi4hnwsQ",
    long_salt,
  };
  int64_t imports = audit_count(app, "auth.password_import");
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    be_error *e = NULL;
    int rc = be_auth_import_password_hash(app, 0, id, bad[i], NT, &e);
    ck_assert_msg(rc == BE_E_VALIDATION, "accepted: %s", bad[i]);
    ck_assert_str_eq(be_error_field_name(e, 0), "password_hash");
    be_error_free(e);
  }
  /* an embedded NUL, with an exact length */
  be_error *e = NULL;
  char withnul[crypto_pwhash_STRBYTES + 8];
  size_t glen = strlen(good);
  memcpy(withnul, good, glen);
  withnul[10] = '\0';
  ck_assert_int_eq(be_auth_import_password_hash(app, 0, id, withnul, glen, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "password_hash");
  be_error_free(e);
  e = NULL;
  /* an exact length takes only those bytes: cut before its hash, refused */
  size_t cut = (size_t)(strrchr(good, '$') - good);
  ck_assert_int_eq(be_auth_import_password_hash(app, 0, id, good, cut, NULL), BE_E_VALIDATION);
  ck_assert_int_eq(be_auth_import_password_hash(app, 0, id, good, cut + 1, NULL), BE_E_VALIDATION);
  ck_assert_int_eq(be_auth_import_password_hash(app, 0, id, NULL, NT, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "password_hash");
  be_error_free(e);
  char *stored = q_text(app, "SELECT password_hash FROM be_users WHERE id = ?", id);
  ck_assert_str_eq(stored, good); /* nothing written */
  free(stored);
  ck_assert_int_eq(audit_count(app, "auth.password_import"), imports);

  e = NULL;
  ck_assert_int_eq(be_auth_import_password_hash(app, 0, 99999, good, NT, &e), BE_E_NOT_FOUND);
  be_error_free(e);
  e = NULL;
  ck_assert_int_eq(be_auth_import_password_hash(app, 0, 0, good, NT, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "user_id");
  be_error_free(e);
  ck_assert_int_eq(be_auth_import_password_hash(NULL, 0, id, good, NT, NULL), BE_E_MISUSE);
  be_app_free(app);
  tu_rmdir(dir);
}
END_TEST

static void count_dummy_warnings(int32_t level, const char *message, const be_log_field *fields,
                                 size_t n, void *ud) {
  (void)level, (void)fields, (void)n;
  if (strstr(message, "dummy hash")) __atomic_add_fetch((int *)ud, 1, __ATOMIC_RELAXED);
}

/* One costly hash must not stop every login: the dummy follows the
 * costliest stored hash, so an imported m of 4 TiB made every login, and
 * opening the app, fail with BE_E_NOMEM (and t = 2^32 - 1 hang). Imports
 * beyond the cap (m 2 GiB, m x t 4 GiB passes, or the app's own if more)
 * are refused; a hash written past the import is not followed. */
START_TEST(costly_hashes_cannot_stop_logins) {
  char *dir = tu_tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/import-costly.db", dir);
  be_app *app = pepper_app(path, NULL, 0, NULL, 0);
  int64_t id = new_user(app, "costly@import.test"), other = new_user(app, "other@import.test");
  char good[crypto_pwhash_STRBYTES];
  ck_assert_int_eq(crypto_pwhash_str(good, MIGRATED_PW, strlen(MIGRATED_PW), 1, 8192), 0);
  ck_assert_int_eq(be_auth_import_password_hash(app, 0, other, good, NT, NULL), BE_OK);
#define PHC(mt) "$argon2id$v=19$" mt "$BDA7brXddh+I4jFdj1tB1w$k0l5757etJKV6pfi4hnwsQ"
  const char *const over[] = {PHC("m=4294967295,t=1,p=1"), PHC("m=8,t=4294967295,p=1"),
                              PHC("m=2097153,t=1,p=1"), PHC("m=1048576,t=5,p=1")};
  for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) {
    be_error *e = NULL;
    ck_assert_int_eq(be_auth_import_password_hash(app, 0, id, over[i], NT, &e), BE_E_VALIDATION);
    ck_assert_str_eq(be_error_field_name(e, 0), "password_hash");
    ck_assert_msg(strstr(be_error_field_message(e, 0), "more than this app verifies"), "%s",
                  be_error_field_message(e, 0));
    be_error_free(e);
  }
  /* at the cap: imported (and replaced at once, before any login hashes) */
  ck_assert_int_eq(be_auth_import_password_hash(app, 0, id, PHC("m=2097152,t=1,p=1"), NT, NULL), BE_OK);
  ck_assert_int_eq(be_auth_import_password_hash(app, 0, id, PHC("m=1048576,t=4,p=1"), NT, NULL), BE_OK);
  /* past the import: the dummy does not even try to follow it (no
   * warning that it could not), and logins go on */
  q_exec(app, "UPDATE be_users SET password_hash = '" PHC("m=4294967295,t=1,p=1") "' WHERE id = ?", id);
#undef PHC
  int warnings = 0;
  ck_assert_int_eq(be_log_set_handler(count_dummy_warnings, &warnings, BE_LOG_WARN, NULL), BE_OK);
  be_auth_token_free(login_ok(app, "other@import.test", MIGRATED_PW, other));
  login_denied(app, "nobody@import.test", MIGRATED_PW);
  ck_assert_int_eq(be_log_set_handler(NULL, NULL, BE_LOG_OFF, NULL), BE_OK);
  ck_assert_int_eq(warnings, 0);
  be_app_free(app);
  app = pepper_app(path, NULL, 0, NULL, 0); /* and the app opens */
  login_denied(app, "nobody@import.test", MIGRATED_PW);
  be_app_free(app);
  tu_rmdir(dir);
}
END_TEST

static Suite *auth_suite(void) {
  Suite *s = suite_create("auth");
  TCase *tc = tcase_create("auth");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, login_success_and_verify);
  tcase_add_test(tc, failures_share_one_answer);
  tcase_add_test(tc, backoff_doubles_and_ignores_attempts_inside_window);
  tcase_add_test(tc, lockout_then_reset_on_success);
  tcase_add_test(tc, backoff_never_overflows_into_no_block);
  tcase_add_test(tc, rehash_when_parameters_rise);
  tcase_add_test(tc, parameters_below_owasp_refused);
  tcase_add_test(tc, dummy_follows_most_expensive_stored_hash);
  tcase_add_test(tc, pepper_rotation_rehashes_at_login);
  tcase_add_test(tc, pepper_never_stored_or_logged);
  tcase_add_test(tc, pepper_options_checked);
  tcase_add_test(tc, idle_timeout_slides_and_expires);
  tcase_add_test(tc, absolute_timeout);
  tcase_add_test(tc, times_saturate_near_the_end_of_the_clock);
  tcase_add_test(tc, sessions_listed_and_ended_by_id);
  tcase_add_test(tc, session_info_gives_login_time);
  tcase_add_test(tc, session_ids_migration_keeps_live_sessions);
  tcase_add_test(tc, malformed_tokens_refused_without_database);
  tcase_add_test(tc, emails_and_tokens_take_exact_lengths);
  tcase_add_test(tc, logout_and_revoke_all);
  tcase_add_test(tc, change_password_revokes_other_sessions);
  tcase_add_test(tc, set_password_revokes_and_audits);
  tcase_add_test(tc, password_policy);
  tcase_add_test(tc, password_policy_repeats_and_variety);
  tcase_add_test(tc, sha1_vectors);
  tcase_add_test(tc, breached_list_from_file);
  tcase_add_test(tc, breached_lines_over_the_byte_cap_are_skipped);
  tcase_add_test(tc, password_check_leaves_no_copy_on_the_stack);
  tcase_add_test(tc, reset_single_use);
  tcase_add_test(tc, reset_expires_and_clears_lockout);
  tcase_add_test(tc, reset_does_not_enumerate);
  tcase_add_test(tc, disable_kills_pending_reset_tokens);
  tcase_add_test(tc, reset_links_die_with_the_credential);
  tcase_add_test(tc, credential_changes_are_notified);
  tcase_add_test(tc, mailer_failure_logs_the_mailers_code);
  tcase_add_test(tc, reset_requests_do_equal_work);
  tcase_add_test(tc, hash_slots_queue_then_serve);
  tcase_add_test(tc, hash_slots_fifo);
  tcase_add_test(tc, hash_slots_wait_times_out);
  tcase_add_test(tc, concurrent_logins);
  tcase_add_test(tc, commit_failure_leaves_nothing);
  tcase_add_test(tc, failing_allocator_leaks_nothing);
  tcase_add_test(tc, imported_hashes_log_in_and_are_rehashed);
  tcase_add_test(tc, imported_hash_must_be_argon2id_phc);
  tcase_add_test(tc, costly_hashes_cannot_stop_logins);
  tcase_add_test(tc, ended_sessions_end_again_without_a_trace);
  tcase_add_test(tc, concurrent_logins_survive_each_others_rehash);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(auth_suite)
