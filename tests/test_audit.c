/* SPDX-License-Identifier: MIT */
/* Audit log: rows written with their change, hash-chain verification,
 * queries by user and time range with pagination. */
#include "svc_testutil.h"

#include "audit.h"

#include <pthread.h>

static int64_t rows(be_app *app) { return svc_int(app, "SELECT count(*) FROM audit_log"); }

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
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM audit_log WHERE length(hash) = 32"
                                " AND prev_hash = (SELECT hash FROM audit_log p WHERE p.id = audit_log.id - 1)"),
                   5);

  /* an edited row is found at that row */
  svc_exec(app, "UPDATE audit_log SET details = '{\"email\":\"evil@x.io\"}' WHERE id = 3");
  ck_assert_int_eq(be_audit_verify(&bad, &n, app, NULL), BE_OK);
  ck_assert_int_eq(bad, 3);
  ck_assert_int_eq(n, 3);
  svc_exec(app, "UPDATE audit_log SET details = (SELECT details FROM audit_log WHERE id = 4) WHERE id = 3");
  ck_assert_int_eq(be_audit_verify(&bad, NULL, app, NULL), BE_OK);
  ck_assert_int_eq(bad, 3); /* still wrong (other email) */
  be_app_free(app);

  /* other kinds of tampering, each on a fresh log */
  static const char *const edits[] = {
    "UPDATE audit_log SET actor_id = 99 WHERE id = 2",
    "UPDATE audit_log SET at = at + 1 WHERE id = 2",
    "UPDATE audit_log SET action = 'user.delete' WHERE id = 2",
    "UPDATE audit_log SET target_id = 5 WHERE id = 2",
    "UPDATE audit_log SET hash = zeroblob(32) WHERE id = 2",
    "UPDATE audit_log SET prev_hash = zeroblob(32) WHERE id = 2",
    "DELETE FROM audit_log WHERE id = 2",
    "UPDATE audit_log SET id = 10 WHERE id = 2",
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
  be_audit_query_opts q = BE_AUDIT_QUERY_INIT;
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
    if (!next) { be_audit_page_free(p); break; }
    snprintf(cursor, sizeof cursor, "%s", next);
    be_audit_page_free(p);
  }
  ck_assert_int_eq(total, 28);

  /* by user: alice is actor of 25 and target of her own create (actor 0) */
  q = (be_audit_query_opts)BE_AUDIT_QUERY_INIT;
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
  ck_assert_int_eq(be_audit_page_at(p, 25), 1000 * BE_NS_PER_SEC);
  ck_assert_ptr_null(be_audit_page_action(p, 26));
  ck_assert_ptr_null(be_audit_page_next_cursor(p));
  be_audit_page_free(p);
  /* by user and time range: bob, [1010 s, 1020 s) */
  q.user_id = bob;
  q.from_ns = 1010 * BE_NS_PER_SEC;
  q.to_ns = 1020 * BE_NS_PER_SEC;
  ck_assert_int_eq(be_audit_query(&p, app, &q, NULL), BE_OK);
  ck_assert_uint_eq(be_audit_page_count(p), 10);
  for (size_t i = 0; i < 10; i++) {
    ck_assert_int_ge(be_audit_page_at(p, i), q.from_ns);
    ck_assert_int_lt(be_audit_page_at(p, i), q.to_ns);
  }
  be_audit_page_free(p);
  /* the system (actor 0) */
  q = (be_audit_query_opts)BE_AUDIT_QUERY_INIT;
  q.match_user = 1;
  q.user_id = 0;
  ck_assert_int_eq(be_audit_query(&p, app, &q, NULL), BE_OK);
  ck_assert_uint_eq(be_audit_page_count(p), 2);
  be_audit_page_free(p);
  /* defaults */
  ck_assert_int_eq(be_audit_query(&p, app, NULL, NULL), BE_OK);
  ck_assert_uint_eq(be_audit_page_count(p), 28);
  be_audit_page_free(p);

  /* bad input */
  be_error *e = NULL;
  q = (be_audit_query_opts)BE_AUDIT_QUERY_INIT;
  q.limit = BE_AUDIT_PAGE_MAX + 1;
  svc_expect_field(be_audit_query(&p, app, &q, &e), &e, BE_E_VALIDATION, "limit");
  q.limit = 0;
  q.cursor = "garbage";
  svc_expect_field(be_audit_query(&p, app, &q, &e), &e, BE_E_VALIDATION, "cursor");
  q.cursor = NULL;
  q.from_ns = 5;
  q.to_ns = 5;
  svc_expect_field(be_audit_query(&p, app, &q, &e), &e, BE_E_VALIDATION, "to_ns");
  q.to_ns = 0;
  q.match_user = 1;
  q.user_id = -1;
  svc_expect_field(be_audit_query(&p, app, &q, &e), &e, BE_E_VALIDATION, "user_id");
  q.version = 9;
  ck_assert_int_eq(be_audit_query(&p, app, &q, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_audit_query_init(&q, 9), BE_E_MISUSE);
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
  return be__audit_write(w->app, conn, 1, w->action, "thing", 7, w->details, err);
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
    {app, "Thing.Poke", "{}"}, {app, "", "{}"}, {app, NULL, "{}"},
    {app, "thing.poke", "{nope"}, {app, "thing.poke", "\xff"},
  };
  const char *fields[] = {"action", "action", "action", "details", "details"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    be_error *e = NULL;
    int rc = be_tx_run(conn, BE_TX_IMMEDIATE, write_one, (void *)&bad[i], &e);
    svc_expect_field(rc, &e, BE_E_VALIDATION, fields[i]);
  }
  /* outside a transaction */
  ck_assert_int_eq(be__audit_write(app, conn, 1, "a.b", "t", 1, "{}", NULL), BE_E_MISUSE);
  be_pool_release(be_app_pool(app), conn);
  ck_assert_int_eq(rows(app), 2);
  ck_assert_int_eq(svc_int(app, "SELECT details = '{}' FROM audit_log WHERE id = 2"), 1);
  int64_t bad_id = -1;
  ck_assert_int_eq(be_audit_verify(&bad_id, NULL, app, NULL), BE_OK);
  ck_assert_int_eq(bad_id, 0);
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

static Suite *audit_suite(void) {
  be_log_set_handler(NULL, NULL, BE_LOG_ERROR, NULL);
  Suite *s = suite_create("audit");
  TCase *tc = tcase_create("audit");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, chain_verifies_and_detects_tampering);
  tcase_add_test(tc, query_by_user_and_time_with_pages);
  tcase_add_test(tc, writer_validates_input);
  tcase_add_test(tc, concurrent_writers_keep_one_chain);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(audit_suite)
