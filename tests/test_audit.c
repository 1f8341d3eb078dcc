/* SPDX-License-Identifier: MIT */
/* Audit log: rows written with their change, hash-chain verification,
 * queries by user and time range with pagination. */
#include "svc_testutil.h"

#include "audit.h"

#include <pthread.h>

static int64_t rows(be_app *app) { return svc_int(app, "SELECT count(*) FROM be_audit_log"); }

START_TEST(chain_verifies_and_detects_tampering) {
  be_app *app = svc_app_ex(NULL, NULL, 0);
  for (int i = 0; i < 6; i++) {
    char email[32];
    snprintf(email, sizeof email, "a%d@x.io", i);
    svc_user(app, email, "A");
  }
  int64_t bad = -1, n = 0;
  ck_assert_int_eq(be_audit_verify(&bad, &n, app, NULL), BE_OK);
  ck_assert_int_eq(bad, 0);
  ck_assert_int_eq(n, 6);
  int64_t head = 0;
  uint8_t hash[BE_AUDIT_HASH_BYTES];
  ck_assert_int_eq(be_audit_head(&head, hash, app, NULL), BE_OK);
  ck_assert_int_eq(head, 6);
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM be_audit_log WHERE length(hash) = 32"
                                " AND prev_hash = (SELECT hash FROM be_audit_log p WHERE p.id = be_audit_log.id - 1)"),
                   5);

  /* an edited row is found at that row */
  svc_exec(app, "UPDATE be_audit_log SET details = '{\"email\":\"evil@x.io\"}' WHERE id = 3");
  ck_assert_int_eq(be_audit_verify(&bad, &n, app, NULL), BE_OK);
  ck_assert_int_eq(bad, 3);
  ck_assert_int_eq(n, 3);
  svc_exec(app, "UPDATE be_audit_log SET details = (SELECT details FROM be_audit_log WHERE id = 4) WHERE id = 3");
  ck_assert_int_eq(be_audit_verify(&bad, NULL, app, NULL), BE_OK);
  ck_assert_int_eq(bad, 3); /* still wrong (other email) */
  be_app_free(app);

  /* other kinds of tampering, each on a fresh log */
  static const char *const edits[] = {
    "UPDATE be_audit_log SET actor_id = 99 WHERE id = 2",
    "UPDATE be_audit_log SET at = at + 1 WHERE id = 2",
    "UPDATE be_audit_log SET action = 'user.delete' WHERE id = 2",
    "UPDATE be_audit_log SET target_id = 5 WHERE id = 2",
    "UPDATE be_audit_log SET hash = zeroblob(32) WHERE id = 2",
    "UPDATE be_audit_log SET prev_hash = zeroblob(32) WHERE id = 2",
    "DELETE FROM be_audit_log WHERE id = 2",
    "UPDATE be_audit_log SET id = 10 WHERE id = 2",
  };
  for (size_t k = 0; k < sizeof edits / sizeof edits[0]; k++) {
    app = svc_app_ex(NULL, NULL, 0);
    for (int i = 0; i < 4; i++) {
      char email[32];
      snprintf(email, sizeof email, "b%d@x.io", i);
      svc_user(app, email, "B");
    }
    svc_exec(app, edits[k]);
    ck_assert_int_eq(be_audit_verify(&bad, NULL, app, NULL), BE_OK);
    ck_assert_msg(bad == 2 || bad == 3, "edit %zu: first bad %lld", k, (long long)bad);
    be_app_free(app);
  }
  ck_assert_int_eq(be_audit_verify(NULL, NULL, NULL, NULL), BE_E_MISUSE);
}
END_TEST

/* Walks every audit row newest first in pages of 10; checks the ids fall. */
static int64_t audit_count_all_pages(be_app *app) {
  be_audit_query_options q = BE_AUDIT_QUERY_OPTIONS_INIT;
  q.limit = 10;
  int64_t last = INT64_MAX, total = 0;
  char cursor[64] = "";
  for (;;) {
    be_audit_page *p = NULL;
    q.cursor = cursor[0] ? cursor : NULL;
    be_error *e = NULL;
    ck_assert_msg(be_audit_query(&p, app, &q, &e) == BE_OK, "%s", be_error_message(e));
    for (size_t i = 0; i < be_audit_page_count(p); i++) {
      ck_assert_int_lt(be_audit_page_id(p, i), last);
      last = be_audit_page_id(p, i);
      total++;
    }
    const char *next = be_audit_page_next_cursor(p);
    if (!next) {
      be_audit_page_free(p);
      break;
    }
    snprintf(cursor, sizeof cursor, "%s", next);
    be_audit_page_free(p);
  }
  return total;
}

/* Bad query options get a typed error naming the field. */
static void audit_query_rejects_bad_input(be_app *app) {
  be_error *e = NULL;
  be_audit_page *p = NULL;
  be_audit_query_options q = BE_AUDIT_QUERY_OPTIONS_INIT;
  q.limit = BE_AUDIT_PAGE_MAX + 1;
  svc_expect_field(be_audit_query(&p, app, &q, &e), &e, BE_E_VALIDATION, "limit");
  q.limit = 0;
  q.cursor = "garbage";
  svc_expect_field(be_audit_query(&p, app, &q, &e), &e, BE_E_VALIDATION, "cursor");
  q.cursor = NULL;
  q.from_ms = 5;
  q.to_ms = 5;
  svc_expect_field(be_audit_query(&p, app, &q, &e), &e, BE_E_VALIDATION, "to_ms");
  q.to_ms = 0;
  q.match_user = 1;
  q.user_id = -1;
  svc_expect_field(be_audit_query(&p, app, &q, &e), &e, BE_E_VALIDATION, "user_id");
  q.version = 9;
  ck_assert_int_eq(be_audit_query(&p, app, &q, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_audit_query_options_init(&q, 9), BE_E_MISUSE);
}

START_TEST(query_by_user_and_time_with_pages) {
  be_clock *clock = NULL;
  ck_assert_int_eq(be_clock_fake_new(&clock, BE_NS_PER_SEC, 1000 * BE_NS_PER_SEC, NULL), BE_OK);
  be_app *app = svc_app_ex(NULL, clock, 0);
  int64_t alice = svc_user(app, "alice@x.io", "Alice"); /* t = 1000 s: row 1 */
  be_clock_advance(clock, BE_NS_PER_SEC, NULL);
  int64_t bob = svc_user(app, "bob@x.io", "Bob"); /* t = 1001: row 2 */
  be_user_input up = BE_USER_INPUT_INIT;
  up.fields = BE_USER_FIELD_BIO;
  for (int i = 0; i < 25; i++) { /* t = 1002 .. 1026: alice edits bob */
    be_clock_advance(clock, BE_NS_PER_SEC, NULL);
    up.bio = i % 2 ? "odd" : "even";
    ck_assert_int_eq(be_user_update(NULL, app, alice, bob, &up, NULL), BE_OK);
  }
  be_clock_advance(clock, BE_NS_PER_SEC, NULL);
  ck_assert_int_eq(be_user_update(NULL, app, bob, bob, &up, NULL), BE_OK); /* t = 1027 */

  /* everything, newest first, in pages of 10 */
  ck_assert_int_eq(audit_count_all_pages(app), 28);

  /* by user: alice is actor of 25 and target of her own create (actor 0) */
  be_audit_query_options q = BE_AUDIT_QUERY_OPTIONS_INIT;
  q.match_user = 1;
  q.user_id = alice;
  q.limit = 100;
  be_audit_page *p = NULL;
  ck_assert_int_eq(be_audit_query(&p, app, &q, NULL), BE_OK);
  ck_assert_uint_eq(be_audit_page_count(p), 26);
  ck_assert_str_eq(be_audit_page_action(p, 0), "user.update");
  ck_assert_int_eq(be_audit_page_actor_id(p, 0), alice);
  ck_assert_str_eq(be_audit_page_target_type(p, 0), "user");
  ck_assert_int_eq(be_audit_page_target_id(p, 0), bob);
  ck_assert_ptr_nonnull(strstr(be_audit_page_details(p, 0), "\"fields\":[\"bio\"]"));
  ck_assert_str_eq(be_audit_page_action(p, 25), "user.create");
  ck_assert_int_eq(be_audit_page_at_ms(p, 25), 1000 * 1000);
  ck_assert_ptr_null(be_audit_page_action(p, 26));
  ck_assert_ptr_null(be_audit_page_next_cursor(p));
  be_audit_page_free(p);
  /* by user and time range: bob, [1010 s, 1020 s) */
  q.user_id = bob;
  q.from_ms = 1010 * 1000;
  q.to_ms = 1020 * 1000;
  ck_assert_int_eq(be_audit_query(&p, app, &q, NULL), BE_OK);
  ck_assert_uint_eq(be_audit_page_count(p), 10);
  for (size_t i = 0; i < 10; i++) {
    ck_assert_int_ge(be_audit_page_at_ms(p, i), q.from_ms);
    ck_assert_int_lt(be_audit_page_at_ms(p, i), q.to_ms);
  }
  be_audit_page_free(p);
  /* the system (actor 0) */
  q = (be_audit_query_options)BE_AUDIT_QUERY_OPTIONS_INIT;
  q.match_user = 1;
  q.user_id = 0;
  ck_assert_int_eq(be_audit_query(&p, app, &q, NULL), BE_OK);
  ck_assert_uint_eq(be_audit_page_count(p), 2);
  be_audit_page_free(p);
  /* defaults */
  ck_assert_int_eq(be_audit_query(&p, app, NULL, NULL), BE_OK);
  ck_assert_uint_eq(be_audit_page_count(p), 28);
  be_audit_page_free(p);

  audit_query_rejects_bad_input(app);
  be_app_free(app);
  be_clock_free(clock);
}
END_TEST

/* The internal writer refuses bad input and writing outside a transaction. */
typedef struct wctx {
  be_app *app;
  const char *action;
  const char *details;
} wctx;

static int write_one(be_conn *conn, void *ud, be_error **err) {
  wctx *w = ud;
  return be_audit_write(NULL, w->app, conn, 1, w->action, NT, "thing", NT, 7, w->details, NT, err);
}

START_TEST(writer_validates_input) {
  be_app *app = svc_app_ex(NULL, NULL, 0);
  be_conn *conn = NULL;
  ck_assert_int_eq(be_pool_acquire(&conn, be_app_pool(app), NULL), BE_OK);
  wctx ok = {app, "thing.poke", "{\"n\":1}"};
  ck_assert_int_eq(be_tx_run(conn, BE_TX_IMMEDIATE, write_one, &ok, NULL), BE_OK);
  wctx nul = {app, "thing.poke", NULL};
  ck_assert_int_eq(be_tx_run(conn, BE_TX_IMMEDIATE, write_one, &nul, NULL), BE_OK);
  const wctx bad[] = {
    {app, "Thing.Poke", "{}"},
    {app, "", "{}"},
    {app, NULL, "{}"},
    {app, "thing.poke", "{nope"},
    {app, "thing.poke", "\xff"},
  };
  const char *fields[] = {"action", "action", "action", "details", "details"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    be_error *e = NULL;
    int rc = be_tx_run(conn, BE_TX_IMMEDIATE, write_one, (void *)&bad[i], &e);
    svc_expect_field(rc, &e, BE_E_VALIDATION, fields[i]);
  }
  /* outside a transaction */
  ck_assert_int_eq(be_audit_write(NULL, app, conn, 1, "a.b", NT, "t", NT, 1, "{}", NT, NULL),
                   BE_E_MISUSE);
  be_pool_release(be_app_pool(app), conn);
  ck_assert_int_eq(rows(app), 2);
  ck_assert_int_eq(svc_int(app, "SELECT details = '{}' FROM be_audit_log WHERE id = 2"), 1);
  int64_t bad_id = -1;
  ck_assert_int_eq(be_audit_verify(&bad_id, NULL, app, NULL), BE_OK);
  ck_assert_int_eq(bad_id, 0);
  be_app_free(app);
}
END_TEST

/* be_audit_write: the host's own change and its audit row commit or roll
 * back together, in libbackend's chain. */
typedef struct host_ctx {
  be_app *app;
  int64_t post;
  int fail; /* 1: fail after both writes */
  int64_t row_id;
} host_ctx;

static int publish(be_conn *conn, void *user_data, be_error **err) {
  host_ctx *h = user_data;
  be_stmt *st = NULL;
  int rc = be_conn_prepare(&st, conn, "UPDATE posts SET published = 1 WHERE id = ?1", err);
  if (rc == BE_OK) rc = be_stmt_bind_int64(st, 1, h->post, err);
  if (rc == BE_OK && (rc = be_stmt_step(st, err)) == BE_DONE) rc = BE_OK;
  be_stmt_finalize(st);
  if (rc == BE_OK)
    rc = be_audit_write(&h->row_id, h->app, conn, 1, "post.publish", NT, "post", NT, h->post,
                        "{\"published\":true}", NT, err);
  if (rc == BE_OK && h->fail) {
    if (err) be_error_new(err, BE_E_CONFLICT, "host says no");
    rc = BE_E_CONFLICT;
  }
  return rc;
}

START_TEST(host_write_commits_and_rolls_back_with_the_host_change) {
  be_app *app = svc_app_ex(NULL, NULL, 0);
  svc_user(app, "a@x.io", "A"); /* a libbackend row first: one chain for both */
  svc_exec(app, "CREATE TABLE posts (id INTEGER PRIMARY KEY, published INTEGER NOT NULL)");
  svc_exec(app, "INSERT INTO posts VALUES (7, 0), (8, 0)");
  host_ctx ok = {app, 7, 0, 0};
  ck_assert_int_eq(be_pool_tx_run(be_app_pool(app), BE_TX_IMMEDIATE, publish, &ok, NULL), BE_OK);
  ck_assert_int_eq(ok.row_id, 2);
  ck_assert_int_eq(svc_int(app, "SELECT published FROM posts WHERE id = 7"), 1);
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM be_audit_log WHERE action = 'post.publish'"
                                " AND target_type = 'post' AND target_id = 7 AND actor_id = 1"),
                   1);
  int64_t bad = -1, n = 0;
  ck_assert_int_eq(be_audit_verify(&bad, &n, app, NULL), BE_OK);
  ck_assert_int_eq(bad, 0);
  ck_assert_int_eq(n, 2);
  /* the callback fails after both writes: neither is there */
  host_ctx no = {app, 8, 1, 0};
  be_error *e = NULL;
  ck_assert_int_eq(be_pool_tx_run(be_app_pool(app), BE_TX_IMMEDIATE, publish, &no, &e),
                   BE_E_CONFLICT);
  be_error_free(e);
  ck_assert_int_eq(svc_int(app, "SELECT published FROM posts WHERE id = 8"), 0);
  ck_assert_int_eq(rows(app), 2);
  svc_user(app, "b@x.io", "B"); /* the chain goes on from the committed head */
  ck_assert_int_eq(be_audit_verify(&bad, &n, app, NULL), BE_OK);
  ck_assert_int_eq(bad, 0);
  ck_assert_int_eq(n, 3);
  be_app_free(app);
}
END_TEST

typedef struct wcase {
  const char *action;
  size_t action_len;
  const char *ttype;
  size_t ttype_len;
  const char *details;
  size_t details_len;
  const char *field;
} wcase;

static int write_case(be_conn *conn, void *ud, be_error **err) {
  const wcase *c = ((const void *const *)ud)[1];
  be_app *app = ((void *const *)ud)[0];
  return be_audit_write(NULL, app, conn, 0, c->action, c->action_len, c->ttype, c->ttype_len, 1,
                        c->details, c->details_len, err);
}

START_TEST(host_write_refuses_bad_strings_and_foreign_connections) {
  be_app *app = svc_app_ex(NULL, NULL, 0);
  const wcase cases[] = {
    {(const char *)1, 0, "post", NT, NULL, NT, "action"}, /* length 0: empty, never read */
    {"post.\0x", 6, "post", NT, NULL, NT, "action"},
    {"post.\xff", NT, "post", NT, NULL, NT, "action"},
    {"user.create", NT, "user", NT, NULL, NT, "action"}, /* libbackend's own */
    {"auth.login", NT, "user", NT, NULL, NT, "action"},
    {"post.edit", NT, (const char *)1, 0, NULL, NT, "target_type"},
    {"post.edit", NT, "po\0st", 5, NULL, NT, "target_type"},
    {"post.edit", NT, "post", NT, "{}\0", 3, "details"},
    {"post.edit", NT, "post", NT, "{\"a\":\"\xff\"}", NT, "details"},
    {"post.edit", NT, "post", NT, "[1]", NT, "details"},
    {"post.edit", NT, "post", NT, (const char *)1, 0, "details"}, /* empty: not an object */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const void *ud[2] = {app, &cases[i]};
    be_error *e = NULL;
    int rc = be_pool_tx_run(be_app_pool(app), BE_TX_IMMEDIATE, write_case, ud, &e);
    svc_expect_field(rc, &e, BE_E_VALIDATION, cases[i].field);
  }
  /* explicit lengths need no NUL: "post.edit" and "post" cut from longer text */
  const wcase good = {"post.editXX", 9, "postXX", 4, "{\"n\":1}XX", 7, NULL};
  const void *ud[2] = {app, &good};
  ck_assert_int_eq(be_pool_tx_run(be_app_pool(app), BE_TX_IMMEDIATE, write_case, ud, NULL), BE_OK);
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM be_audit_log WHERE action = 'post.edit'"
                                " AND target_type = 'post' AND details = '{\"n\":1}'"),
                   1);
  ck_assert_int_eq(rows(app), 1);

  /* a connection of another app's pool, or of no pool, is refused */
  be_app *other = svc_app_ex(NULL, NULL, 0);
  be_conn *c = NULL;
  ck_assert_int_eq(be_pool_acquire(&c, be_app_pool(other), NULL), BE_OK);
  ck_assert_int_eq(be_conn_begin(c, BE_TX_IMMEDIATE, NULL), BE_OK);
  be_error *e = NULL;
  ck_assert_int_eq(be_audit_write(NULL, app, c, 0, "post.edit", NT, "post", NT, 1, NULL, NT, &e),
                   BE_E_MISUSE);
  ck_assert_ptr_nonnull(strstr(be_error_message(e), "pool"));
  be_error_free(e);
  ck_assert_int_eq(be_conn_rollback(c, NULL), BE_OK);
  be_pool_release(be_app_pool(other), c);
  be_app_free(other);
  ck_assert_int_eq(be_conn_open(&c, be_sqlite_driver(), ":memory:", NULL), BE_OK);
  ck_assert_int_eq(be_audit_write(NULL, app, c, 0, "post.edit", NT, "post", NT, 1, NULL, NT, NULL),
                   BE_E_MISUSE);
  be_conn_close(c);
  ck_assert_int_eq(be_audit_write(NULL, NULL, NULL, 0, "a", NT, "b", NT, 1, NULL, NT, NULL),
                   BE_E_MISUSE);
  ck_assert_int_eq(rows(app), 1);
  be_app_free(app);
}
END_TEST

/* Concurrent writers never fork the chain. */
typedef struct wr {
  be_app *app;
  int base;
} wr;

static void *create_many(void *arg) {
  wr *w = arg;
  for (int i = 0; i < 30; i++) {
    char email[48];
    snprintf(email, sizeof email, "c%d-%d@x.io", w->base, i);
    be_user_input in = BE_USER_INPUT_INIT;
    in.email = email;
    in.name = "C";
    be_error *e = NULL;
    int rc = be_user_create(NULL, NULL, w->app, 0, &in, &e);
    ck_assert_msg(rc == BE_OK, "%s", be_error_message(e));
  }
  return NULL;
}

START_TEST(concurrent_writers_keep_one_chain) {
  be_app *app = svc_app_ex(NULL, NULL, 4);
  pthread_t t[4];
  wr w[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (wr){app, i};
    pthread_create(&t[i], NULL, create_many, &w[i]);
  }
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  int64_t bad = -1, n = 0;
  ck_assert_int_eq(be_audit_verify(&bad, &n, app, NULL), BE_OK);
  ck_assert_int_eq(bad, 0);
  ck_assert_int_eq(n, 120);
  be_app_free(app);
}
END_TEST

/* ---- keyed chain and anchors -------------------------------------- */

static const uint8_t KEY1[32] = "0123456789abcdef0123456789abcde";
static const uint8_t KEY2[32] = "fedcba9876543210fedcba987654321";

/* be_app_new on database with an audit key (NULL: none) and adopt. */
static int keyed_app(be_app **out, const char *database, const uint8_t *key, size_t key_len,
                     int32_t adopt, be_error **err) {
  be_app_options o;
  svc_fast_options(&o, database);
  o.audit_key = key;
  o.audit_key_len = key_len;
  o.audit_key_adopt = adopt;
  return be_app_new(out, &o, err);
}

static be_app *keyed_app_ok(const char *database, const uint8_t *key, int32_t adopt) {
  be_app *app = NULL;
  be_error *e = NULL;
  int rc = keyed_app(&app, database, key, key ? 32 : 0, adopt, &e);
  ck_assert_msg(rc == BE_OK, "be_app_new: %s", be_error_message(e));
  return app;
}

static void users(be_app *app, const char *prefix, int n) {
  for (int i = 0; i < n; i++) {
    char email[48];
    snprintf(email, sizeof email, "%s%d@x.io", prefix, i);
    svc_user(app, email, "U");
  }
}

static int64_t first_bad(be_app *app) {
  int64_t bad = -1;
  be_error *e = NULL;
  ck_assert_msg(be_audit_verify(&bad, NULL, app, &e) == BE_OK, "%s", be_error_message(e));
  return bad;
}

static int64_t first_bad_anchor(be_app *app, int64_t id, const uint8_t *hash) {
  int64_t bad = -1;
  be_error *e = NULL;
  ck_assert_msg(be_audit_verify_anchor(&bad, NULL, app, id, hash, &e) == BE_OK, "%s",
                be_error_message(e));
  return bad;
}

/* A copy of row 1 under id (SQL text), written past the library. */
static void copy_first_row_as(be_app *app, const char *id) {
  char sql[400];
  snprintf(sql, sizeof sql,
           "INSERT INTO be_audit_log (id, actor_id, action, target_type, target_id, at, details,"
           " prev_hash, hash) SELECT %s, actor_id, action, target_type, target_id, at, details,"
           " prev_hash, hash FROM be_audit_log WHERE id = 1",
           id);
  svc_exec(app, sql);
}

/* A row put at or below the chain's first id made verify stop there
 * and report 0, "intact", so one INSERT hid every edit after it; now the
 * walk reports the id that should have followed (never 0 or negative). */
START_TEST(row_below_the_chain_does_not_hide_an_edit) {
  be_app *app = svc_app_ex(NULL, NULL, 0);
  users(app, "low", 4);
  svc_exec(app, "UPDATE be_audit_log SET details = '{\"email\":\"evil@x.io\"}' WHERE id = 3");
  ck_assert_int_eq(first_bad(app), 3);
  copy_first_row_as(app, "0");
  ck_assert_int_eq(first_bad(app), 1);
  svc_exec(app, "UPDATE be_audit_log SET id = -7 WHERE id = 0");
  ck_assert_int_eq(first_bad(app), 1);
  be_app_free(app);
}
END_TEST

/* SQLite keeps whatever type a write gives a column: "at" or "target_id"
 * rewritten as text ('17x' reads as 17, so the hash holds) dropped the
 * row out of every query while verify said the log was intact. Verify
 * now requires the types append() wrote. (PostgreSQL's columns are
 * strict.) */
START_TEST(retyped_columns_break_the_chain) {
  if (svc_on_pg()) return;
  be_app *app = svc_app_ex(NULL, NULL, 0);
  users(app, "typed", 3);
  ck_assert_int_eq(first_bad(app), 0);
  svc_exec(app, "UPDATE be_audit_log SET target_id = CAST(target_id AS TEXT) || 'x' WHERE id = 3");
  ck_assert_int_eq(first_bad(app), 3);
  svc_exec(app, "UPDATE be_audit_log SET at = CAST(at AS TEXT) || 'x' WHERE id = 2");
  ck_assert_int_eq(first_bad(app), 2);
  be_app_free(app);
}
END_TEST

/* A last row with id INT64_MAX (written past the library) made the next
 * id overflow (undefined behaviour), wrote INT64_MIN, and then every
 * audited change failed on the primary key; now each write says the log
 * is damaged and writes nothing. */
START_TEST(damaged_head_id_is_refused) {
  be_app *app = svc_app_ex(NULL, NULL, 0);
  users(app, "head", 1);
  copy_first_row_as(app, "9223372036854775807");
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = "after@x.io";
  in.name = "After";
  be_error *e = NULL;
  ck_assert_int_eq(be_user_create(NULL, NULL, app, 0, &in, &e), BE_E_STORAGE);
  ck_assert_msg(strstr(be_error_message(e), "damaged") != NULL, "%s", be_error_message(e));
  be_error_free(e);
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM be_audit_log WHERE id < 0"), 0);
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM be_users WHERE email = 'after@x.io'"), 0);
  be_app_free(app);
}
END_TEST

/* A query with no lower bound (from_ms 0) is every row, also one
 * stamped before 1970 (a clock set back): it used to be at >= 0. */
START_TEST(unbounded_query_includes_rows_before_1970) {
  be_clock *clock = NULL;
  ck_assert_int_eq(be_clock_fake_new(&clock, 0, -5 * BE_NS_PER_SEC, NULL), BE_OK);
  be_app *app = svc_app_ex(NULL, clock, 0);
  users(app, "early", 2);
  be_audit_page *page = NULL;
  be_error *e = NULL;
  ck_assert_msg(be_audit_query(&page, app, NULL, &e) == BE_OK, "%s", be_error_message(e));
  ck_assert_uint_eq(be_audit_page_count(page), 2);
  be_audit_page_free(page);
  be_app_free(app);
  be_clock_free(clock);
}
END_TEST

static void put_u64(crypto_generichash_state *h, uint64_t v) {
  unsigned char b[8];
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (56 - 8 * i));
  crypto_generichash_update(h, b, 8);
}

static void put_text(crypto_generichash_state *h, be_stmt *st, int32_t col) {
  size_t len = 0;
  const char *s = be_stmt_column_text(st, col, &len);
  put_u64(h, len);
  crypto_generichash_update(h, (const unsigned char *)s, len);
}

/* The row hash as backend/audit.h documents it, computed here from the
 * header's description alone (key NULL: unkeyed), for the row st stands
 * on (columns id, actor_id, action, target_type, target_id, at, details). */
static void spec_hash(uint8_t out[32], be_stmt *st, const uint8_t *key, size_t key_len,
                      const uint8_t prev[32]) {
  crypto_generichash_state h;
  crypto_generichash_init(&h, key, key_len, 32);
  crypto_generichash_update(&h, (const unsigned char *)"libbackend.audit.v1", 20);
  put_u64(&h, (uint64_t)be_stmt_column_int64(st, 0));
  put_u64(&h, (uint64_t)be_stmt_column_int64(st, 1));
  put_text(&h, st, 2);
  put_text(&h, st, 3);
  put_u64(&h, (uint64_t)be_stmt_column_int64(st, 4));
  put_u64(&h, (uint64_t)be_stmt_column_int64(st, 5));
  put_text(&h, st, 6);
  crypto_generichash_update(&h, prev, 32);
  crypto_generichash_final(&h, out, 32);
}

/* What an attacker who can write the file does after an edit: rewrite
 * prev_hash and hash of every row from `from` on, unkeyed (key NULL) or
 * with a key. */
static void rehash_from(be_app *app, int64_t from, const uint8_t *key) {
  be_conn *c = NULL;
  ck_assert_int_eq(be_pool_acquire(&c, be_app_pool(app), NULL), BE_OK);
  uint8_t prev[32] = {0};
  be_stmt *st = NULL;
  ck_assert_int_eq(be_conn_prepare(&st, c, "SELECT hash FROM be_audit_log WHERE id = ?1", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_int64(st, 1, from - 1, NULL), BE_OK);
  if (be_stmt_step(st, NULL) == BE_ROW) memcpy(prev, be_stmt_column_blob(st, 0, NULL), 32);
  be_stmt_finalize(st);
  int64_t last = 0;
  ck_assert_int_eq(be_conn_prepare(&st, c, "SELECT max(id) FROM be_audit_log", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(st, NULL), BE_ROW);
  last = be_stmt_column_int64(st, 0);
  be_stmt_finalize(st);
  for (int64_t id = from; id <= last; id++) {
    uint8_t h[32];
    ck_assert_int_eq(be_conn_prepare(&st, c, "SELECT id, actor_id, action, target_type, target_id,"
                                             " at, details FROM be_audit_log WHERE id = ?1",
                                     NULL),
                     BE_OK);
    ck_assert_int_eq(be_stmt_bind_int64(st, 1, id, NULL), BE_OK);
    ck_assert_int_eq(be_stmt_step(st, NULL), BE_ROW);
    spec_hash(h, st, key, key ? 32 : 0, prev);
    be_stmt_finalize(st);
    ck_assert_int_eq(be_conn_prepare(&st, c, "UPDATE be_audit_log SET prev_hash = ?1, hash = ?2"
                                             " WHERE id = ?3",
                                     NULL),
                     BE_OK);
    ck_assert_int_eq(be_stmt_bind_blob(st, 1, prev, 32, NULL), BE_OK);
    ck_assert_int_eq(be_stmt_bind_blob(st, 2, h, 32, NULL), BE_OK);
    ck_assert_int_eq(be_stmt_bind_int64(st, 3, id, NULL), BE_OK);
    ck_assert_int_eq(be_stmt_step(st, NULL), BE_DONE);
    be_stmt_finalize(st);
    memcpy(prev, h, 32);
  }
  be_pool_release(be_app_pool(app), c);
}

/* The forgeries of the issue, each made with a recomputed unkeyed chain. */
static const char *const forgeries[] = {
  /* edit a row */
  "UPDATE be_audit_log SET details = '{\"email\":\"evil@x.io\"}' WHERE id = 3",
  /* delete a row and close the gap */
  "DELETE FROM be_audit_log WHERE id = 3; UPDATE be_audit_log SET id = id - 1 WHERE id > 3",
  /* append a forged row */
  "INSERT INTO be_audit_log (id, actor_id, action, target_type, target_id, at, details,"
  " prev_hash, hash) SELECT 6, 0, 'user.delete', 'user', 1, at + 1, '{}', zeroblob(32),"
  " zeroblob(32) FROM be_audit_log WHERE id = 5",
};
static const int64_t forged_at[] = {3, 3, 6};

START_TEST(unkeyed_chain_misses_recomputed_forgeries) {
  /* Why the key exists: with no key, a recomputed chain verifies. */
  for (size_t k = 0; k < sizeof forgeries / sizeof forgeries[0]; k++) {
    be_app *app = svc_app_ex(NULL, NULL, 0);
    users(app, "u", 5);
    svc_exec(app, forgeries[k]);
    ck_assert_int_eq(first_bad(app), forged_at[k]); /* caught before the rehash */
    rehash_from(app, forged_at[k], NULL);
    ck_assert_int_eq(first_bad(app), 0);
    be_app_free(app);
  }
}
END_TEST

START_TEST(keyed_chain_catches_recomputed_forgeries) {
  for (size_t k = 0; k < sizeof forgeries / sizeof forgeries[0]; k++) {
    be_app *app = keyed_app_ok(":memory:", KEY1, 0);
    users(app, "u", 5);
    ck_assert_int_eq(first_bad(app), 0);
    svc_exec(app, forgeries[k]);
    rehash_from(app, forged_at[k], NULL);
    ck_assert_int_eq(first_bad(app), forged_at[k]);
    /* ... and with a wrong key just as well */
    rehash_from(app, forged_at[k], KEY2);
    ck_assert_int_eq(first_bad(app), forged_at[k]);
    be_app_free(app);
  }
  /* the whole log rewritten unkeyed from its first row */
  be_app *app = keyed_app_ok(":memory:", KEY1, 0);
  users(app, "u", 5);
  svc_exec(app, "UPDATE be_audit_log SET actor_id = 7 WHERE id = 2");
  rehash_from(app, 1, NULL);
  ck_assert_int_eq(first_bad(app), 1);
  /* the key hashed as documented: a rehash with the right key verifies */
  rehash_from(app, 1, KEY1);
  ck_assert_int_eq(first_bad(app), 0);
  be_app_free(app);
}
END_TEST

START_TEST(anchor_catches_truncation_and_rewrites) {
  be_app *app = keyed_app_ok(":memory:", KEY1, 0);
  users(app, "u", 6);
  int64_t head = 0;
  uint8_t anchor[BE_AUDIT_HASH_BYTES];
  ck_assert_int_eq(be_audit_head(&head, anchor, app, NULL), BE_OK);
  ck_assert_int_eq(head, 6);
  int64_t bad = -1, n = 0;
  ck_assert_int_eq(be_audit_verify_anchor(&bad, &n, app, head, anchor, NULL), BE_OK);
  ck_assert_int_eq(bad, 0);
  ck_assert_int_eq(n, 6);
  /* rows cut off the end: the chain alone is consistent, the anchor is not */
  svc_exec(app, "DELETE FROM be_audit_log WHERE id >= 5");
  ck_assert_int_eq(first_bad(app), 0);
  ck_assert_int_eq(first_bad_anchor(app, head, anchor), 5);
  /* new rows in their place: the anchor row is there with another hash */
  users(app, "v", 3);
  ck_assert_int_eq(first_bad(app), 0);
  ck_assert_int_eq(first_bad_anchor(app, head, anchor), 6);
  be_app_free(app);

  /* an unkeyed log rewritten from its start is caught by an older anchor */
  app = svc_app_ex(NULL, NULL, 0);
  users(app, "u", 6);
  uint8_t h3[BE_AUDIT_HASH_BYTES];
  svc_exec(app, "DELETE FROM be_audit_log WHERE id > 3");
  ck_assert_int_eq(be_audit_head(&head, h3, app, NULL), BE_OK);
  users(app, "w", 3);
  ck_assert_int_eq(first_bad_anchor(app, 3, h3), 0);
  svc_exec(app, "UPDATE be_audit_log SET actor_id = 9 WHERE id = 2");
  rehash_from(app, 2, NULL);
  ck_assert_int_eq(first_bad(app), 0);
  ck_assert_int_eq(first_bad_anchor(app, 3, h3), 3);

  /* the empty log's anchor, and bad arguments */
  static const uint8_t zero[BE_AUDIT_HASH_BYTES];
  ck_assert_int_eq(first_bad_anchor(app, 0, zero), 0);
  be_error *e = NULL;
  svc_expect_field(be_audit_verify_anchor(&bad, NULL, app, -1, zero, &e), &e, BE_E_VALIDATION,
                   "anchor_id");
  svc_expect_field(be_audit_verify_anchor(&bad, NULL, app, 0, h3, &e), &e, BE_E_VALIDATION,
                   "anchor_hash");
  ck_assert_int_eq(be_audit_verify_anchor(&bad, NULL, app, 3, NULL, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_audit_verify_anchor(NULL, NULL, app, 3, h3, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_audit_verify_anchor(&bad, NULL, NULL, 3, h3, NULL), BE_E_MISUSE);
  be_app_free(app);
}
END_TEST

static void expect_open_refused(const char *db, const uint8_t *key, size_t len, int32_t adopt,
                                const char *field) {
  be_app *app = NULL;
  be_error *e = NULL;
  svc_expect_field(keyed_app(&app, db, key, len, adopt, &e), &e, BE_E_VALIDATION, field);
  ck_assert_ptr_null(app);
}

START_TEST(key_record_guards_the_log) {
  char *dir = tu_tempdir();
  char db[512];
  snprintf(db, sizeof db, "%s/keyed.db", dir);
  be_app *app = keyed_app_ok(db, KEY1, 0);
  users(app, "u", 3);
  be_app_free(app);
  expect_open_refused(db, KEY2, 32, 0, "audit_key"); /* another key */
  expect_open_refused(db, NULL, 0, 0, "audit_key");  /* no key on a keyed log */
  app = keyed_app_ok(db, KEY1, 0);
  ck_assert_int_eq(svc_int(app, "SELECT keyed_from FROM be_audit_key"), 1);
  users(app, "v", 2);
  ck_assert_int_eq(first_bad(app), 0);
  /* the key record deleted: not re-made silently on a log with rows */
  svc_exec(app, "DELETE FROM be_audit_key");
  be_app_free(app);
  expect_open_refused(db, KEY1, 32, 0, "audit_key");
  be_app_free(NULL);

  /* a log started unkeyed is keyed from its next row only on request */
  snprintf(db, sizeof db, "%s/adopt.db", dir);
  app = keyed_app_ok(db, NULL, 0);
  users(app, "u", 3);
  be_app_free(app);
  expect_open_refused(db, KEY1, 32, 0, "audit_key");
  app = keyed_app_ok(db, KEY1, 1);
  ck_assert_int_eq(svc_int(app, "SELECT keyed_from FROM be_audit_key"), 4);
  users(app, "v", 3);
  ck_assert_int_eq(first_bad(app), 0);
  be_app_free(app);
  app = keyed_app_ok(db, KEY1, 0); /* keyed now: no adopt needed */
  ck_assert_int_eq(first_bad(app), 0);
  /* a keyed row rewritten unkeyed is caught; the unkeyed ones are not keyed */
  svc_exec(app, "UPDATE be_audit_log SET actor_id = 9 WHERE id = 5");
  rehash_from(app, 5, NULL);
  ck_assert_int_eq(first_bad(app), 5);
  rehash_from(app, 4, KEY1);
  ck_assert_int_eq(first_bad(app), 0);
  /* moving keyed_from (to pass keyed rows off as unkeyed) voids the record:
   * every row is then judged keyed */
  svc_exec(app, "UPDATE be_audit_key SET keyed_from = 6");
  ck_assert_int_eq(first_bad(app), 1);
  be_app_free(app);
  expect_open_refused(db, KEY1, 32, 0, "audit_key");
  tu_rmdir(dir);
}
END_TEST

START_TEST(key_options_are_checked) {
  expect_open_refused(":memory:", NULL, 32, 0, "audit_key");
  expect_open_refused(":memory:", KEY1, 16, 0, "audit_key_len");
  expect_open_refused(":memory:", KEY1, 65, 0, "audit_key_len");
  expect_open_refused(":memory:", KEY1, 32, 2, "audit_key_adopt");
  expect_open_refused(":memory:", NULL, 0, 1, "audit_key_adopt");
  /* the key is copied: the caller may wipe its buffer */
  uint8_t key[64];
  memcpy(key, KEY1, 32);
  memcpy(key + 32, KEY2, 32);
  be_app *app = NULL;
  ck_assert_int_eq(keyed_app(&app, ":memory:", key, 64, 0, NULL), BE_OK);
  sodium_memzero(key, sizeof key);
  users(app, "u", 3);
  ck_assert_int_eq(first_bad(app), 0);
  be_app_free(app);
}
END_TEST

static Suite *audit_suite(void) {
  be_log_set_handler(NULL, NULL, BE_LOG_ERROR, NULL);
  Suite *s = suite_create("audit");
  TCase *tc = tcase_create("audit");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, chain_verifies_and_detects_tampering);
  tcase_add_test(tc, row_below_the_chain_does_not_hide_an_edit);
  tcase_add_test(tc, retyped_columns_break_the_chain);
  tcase_add_test(tc, damaged_head_id_is_refused);
  tcase_add_test(tc, unbounded_query_includes_rows_before_1970);
  tcase_add_test(tc, query_by_user_and_time_with_pages);
  tcase_add_test(tc, writer_validates_input);
  tcase_add_test(tc, host_write_commits_and_rolls_back_with_the_host_change);
  tcase_add_test(tc, host_write_refuses_bad_strings_and_foreign_connections);
  tcase_add_test(tc, concurrent_writers_keep_one_chain);
  tcase_add_test(tc, unkeyed_chain_misses_recomputed_forgeries);
  tcase_add_test(tc, keyed_chain_catches_recomputed_forgeries);
  tcase_add_test(tc, anchor_catches_truncation_and_rewrites);
  tcase_add_test(tc, key_record_guards_the_log);
  tcase_add_test(tc, key_options_are_checked);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(audit_suite)
