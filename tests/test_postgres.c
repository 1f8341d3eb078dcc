/* SPDX-License-Identifier: MIT */
/* The PostgreSQL driver against a real server: types, placeholders, the
 * statement cache, transactions and savepoints, errors by SQLSTATE,
 * connection loss and the pool, batch loads as one array parameter,
 * jsonb, migrations split by the driver.
 *
 * The server comes from tests/pg/cluster.sh (tests/run.sh and .ci/run
 * start one and export BE_TEST_PG_DSN). Without BE_TEST_PG_DSN, or in a
 * build without libpq, the suite exits 77: meson reports it SKIP, loudly,
 * never as passed. Every test works in a schema of its own. */
#include "svc_testutil.h"

#include <backend/auth.h>
#include <backend/batch.h>
#include <backend/migrate.h>
#include <backend/pool.h>
#include <backend/permission.h>
#include <backend/postgres.h>
#include <backend/user.h>
#include <backend/tx.h>
#include <backend/status.h>
#include <pthread.h>
#include <time.h>

#include "storage.h"

static const char *base_dsn;
static char dsn[1024];
static char schema[64];

/* A schema of its own for each test (forked: the pid differs). */
static void setup(void) {
  snprintf(schema, sizeof schema, "t_%ld", (long)getpid());
  be_conn *c = NULL;
  be_error *e = NULL;
  ck_assert_msg(be_conn_open(&c, be_postgres_driver(), base_dsn, &e) == BE_OK, "%s",
                be_error_message(e));
  char sql[256];
  snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema, schema);
  ck_assert_int_eq(be_conn_exec(c, sql, NULL), BE_OK);
  be_conn_close(c);
  snprintf(dsn, sizeof dsn, "%s%soptions=-csearch_path%%3D%s", base_dsn,
           strchr(base_dsn, '?') ? "&" : "?", schema);
}

static void teardown(void) {
  be_conn *c = NULL;
  if (be_conn_open(&c, be_postgres_driver(), base_dsn, NULL) != BE_OK) return;
  char sql[128];
  snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", schema);
  be_conn_exec(c, sql, NULL);
  be_conn_close(c);
}

static be_conn *open_pg(void) {
  be_conn *c = NULL;
  be_error *e = NULL;
  ck_assert_msg(be_conn_open(&c, be_postgres_driver(), dsn, &e) == BE_OK, "%s", be_error_message(e));
  return c;
}

static void exec_ok(be_conn *c, const char *sql) {
  be_error *e = NULL;
  int rc = be_conn_exec(c, sql, &e);
  ck_assert_msg(rc == BE_OK, "%s: %s", sql, be_error_message(e));
}

static int64_t scalar(be_conn *c, const char *sql) {
  be_stmt *s = NULL;
  be_error *e = NULL;
  ck_assert_msg(be_conn_prepare(&s, c, sql, &e) == BE_OK, "%s: %s", sql, be_error_message(e));
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  int64_t n = be_stmt_column_int64(s, 0);
  be_stmt_finalize(s);
  return n;
}

/* The innermost cause's message: the server's words, for failure output. */
static const char *root_msg(const be_error *e) {
  while (be_error_cause(e)) e = be_error_cause(e);
  return e ? be_error_message(e) : "(no error)";
}

/* The message and the whole cause chain, for asserting where words are. */
static int cause_has(const be_error *e, const char *needle) {
  for (const be_error *c = be_error_cause(e); c; c = be_error_cause(c))
    if (strstr(be_error_message(c), needle)) return 1;
  return 0;
}

START_TEST(types_round_trip) {
  be_conn *c = open_pg();
  exec_ok(c, "CREATE TABLE t(id BIGSERIAL PRIMARY KEY, i BIGINT, d DOUBLE PRECISION, s TEXT, "
             "b BYTEA, n TEXT, f BOOLEAN)");
  /* ids past 32 bits */
  exec_ok(c, "SELECT setval('t_id_seq', 5000000000)");
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, "INSERT INTO t(i, d, s, b, n, f) VALUES (?, ?, ?, ?, ?, ?) "
                                          "RETURNING id",
                                   NULL),
                   BE_OK);
  const char blob[] = {'a', 0, 'b', 0, 0, (char)0xff, '\\'};
  const char *text = "h\xc3\xa9llo '?' \xe2\x82\xac \xf0\x9f\x98\x80";
  ck_assert_int_eq(be_stmt_bind_int64(s, 1, INT64_MIN, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_double(s, 2, 3.25e-300, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_text(s, 3, text, BE_NUL_TERMINATED, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_blob(s, 4, blob, sizeof blob, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_null(s, 5, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_int64(s, 6, 1, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_int_eq(be_stmt_column_type(s, 0), BE_TYPE_INT);
  ck_assert(be_stmt_column_int64(s, 0) == INT64_C(5000000001));
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_DONE);
  ck_assert_int_eq(be_conn_changes(c), 1);
  ck_assert(be_conn_last_insert_id(c) == INT64_C(5000000001));
  be_stmt_finalize(s);
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT i, d, s, b, n, f, id FROM t WHERE id = $1", NULL),
                   BE_OK);
  ck_assert_int_eq(be_stmt_bind_int64(s, 1, INT64_C(5000000001), NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_int_eq(be_stmt_column_count(s), 7);
  ck_assert_str_eq(be_stmt_column_name(s, 2), "s");
  ck_assert_int_eq(be_stmt_column_type(s, 0), BE_TYPE_INT);
  ck_assert(be_stmt_column_int64(s, 0) == INT64_MIN);
  ck_assert_int_eq(be_stmt_column_type(s, 1), BE_TYPE_FLOAT);
  ck_assert(be_stmt_column_double(s, 1) == 3.25e-300);
  size_t len = 0;
  ck_assert_int_eq(be_stmt_column_type(s, 2), BE_TYPE_TEXT);
  ck_assert_str_eq(be_stmt_column_text(s, 2, &len), text);
  ck_assert_uint_eq(len, strlen(text));
  ck_assert_int_eq(be_stmt_column_type(s, 3), BE_TYPE_BLOB);
  const void *b = be_stmt_column_blob(s, 3, &len);
  ck_assert_uint_eq(len, sizeof blob);
  ck_assert_int_eq(memcmp(b, blob, sizeof blob), 0);
  ck_assert_int_eq(be_stmt_column_type(s, 4), BE_TYPE_NULL);
  ck_assert_ptr_null(be_stmt_column_text(s, 4, &len));
  ck_assert_int_eq(be_stmt_column_type(s, 5), BE_TYPE_INT);
  ck_assert_int_eq(be_stmt_column_int64(s, 5), 1);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_DONE);
  be_stmt_finalize(s);
  be_conn_close(c);
}
END_TEST

START_TEST(placeholders_are_translated) {
  be_conn *c = open_pg();
  /* ?N reused, a bare ? after it, and '?' in a string, a comment and a
   * dollar-quoted text stay as they are */
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c,
                                   "SELECT ?1::bigint + ?1::bigint, ?::text, '?' /* ? */, "
                                   "$q$?$q$ -- ?\n",
                                   NULL),
                   BE_OK);
  ck_assert_int_eq(be_stmt_bind_int64(s, 1, 20, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_text(s, 2, "x", 1, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_int_eq(be_stmt_column_int64(s, 0), 40);
  size_t len;
  ck_assert_str_eq(be_stmt_column_text(s, 1, &len), "x");
  ck_assert_str_eq(be_stmt_column_text(s, 2, &len), "?");
  ck_assert_str_eq(be_stmt_column_text(s, 3, &len), "?");
  /* a bind past the statement's parameters is misuse */
  be_error *e = NULL;
  ck_assert_int_eq(be_stmt_bind_int64(s, 3, 1, &e), BE_E_MISUSE);
  be_error_free(e);
  be_stmt_finalize(s);
  be_conn_close(c);
}
END_TEST

/* A statement with as many parameters as the bind limit says prepares
 * and runs, and the connection stays usable. Regression: the limit was
 * the server's 65535, but libpq drops the connection on the parameter
 * description of more than 7498 parameters, so an IN-list batch load of
 * more keys lost its connection. */
START_TEST(bind_limit_parameters_prepare) {
  be_conn *c = open_pg();
  int32_t limit = be_conn_bind_limit(c);
  ck_assert_int_ge(limit, 1000);
  char *sql = malloc((size_t)limit * 12 + 64);
  ck_assert_ptr_nonnull(sql);
  size_t n = (size_t)sprintf(sql, "SELECT cardinality(ARRAY[?::int");
  for (int32_t i = 2; i <= limit; i++) n += (size_t)sprintf(sql + n, ",?::int");
  sprintf(sql + n, "])");
  be_stmt *s = NULL;
  be_error *e = NULL;
  int rc = be_conn_prepare(&s, c, sql, &e);
  ck_assert_msg(rc == BE_OK, "%s", be_error_message(e));
  for (int32_t i = 1; i <= limit; i++) ck_assert_int_eq(be_stmt_bind_int64(s, i, 1, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_int_eq(be_stmt_column_int64(s, 0), limit);
  be_stmt_finalize(s);
  free(sql);
  ck_assert_int_eq(be_conn_exec(c, "SELECT 1", NULL), BE_OK);
  be_conn_close(c);
}
END_TEST

START_TEST(statement_cache_prepares_once) {
  be_conn *c = open_pg();
  exec_ok(c, "CREATE TABLE t(id BIGINT PRIMARY KEY, v TEXT)");
  for (int i = 0; i < 5; i++) {
    be_stmt *s = NULL;
    ck_assert_int_eq(be_conn_prepare(&s, c, "INSERT INTO t VALUES (?, ?)", NULL), BE_OK);
    ck_assert_int_eq(be_stmt_bind_int64(s, 1, i, NULL), BE_OK);
    ck_assert_int_eq(be_stmt_bind_text(s, 2, "v", 1, NULL), BE_OK);
    ck_assert_int_eq(be_stmt_step(s, NULL), BE_DONE);
    be_stmt_finalize(s);
  }
  be_stmt_cache_stats st = BE_STMT_CACHE_STATS_INIT;
  ck_assert_int_eq(be_conn_stmt_cache_stats_get(&st, c, NULL), BE_OK);
  ck_assert_int_eq(st.misses, 1);
  ck_assert_int_eq(st.hits, 4);
  /* one prepared statement on the server for it */
  ck_assert_int_eq(scalar(c, "SELECT COUNT(*) FROM pg_prepared_statements WHERE statement LIKE "
                             "'INSERT INTO t%'"),
                   1);
  ck_assert_int_eq(scalar(c, "SELECT COUNT(*) FROM t"), 5);
  /* an evicted statement is deallocated on the server */
  ck_assert_int_eq(be_conn_set_stmt_cache_size(c, 0, NULL), BE_OK);
  ck_assert_int_eq(scalar(c, "SELECT COUNT(*) FROM pg_prepared_statements WHERE statement LIKE "
                             "'INSERT INTO t%'"),
                   0);
  be_conn_close(c);
}
END_TEST

START_TEST(transactions_and_savepoints) {
  be_conn *c = open_pg();
  exec_ok(c, "CREATE TABLE t(id BIGINT PRIMARY KEY)");
  ck_assert_int_eq(be_conn_begin(c, BE_TX_IMMEDIATE, NULL), BE_OK);
  ck_assert_int_eq(be_conn_in_transaction(c), 1);
  exec_ok(c, "INSERT INTO t VALUES (1)");
  ck_assert_int_eq(be_conn_rollback(c, NULL), BE_OK);
  ck_assert_int_eq(be_conn_in_transaction(c), 0);
  ck_assert_int_eq(scalar(c, "SELECT COUNT(*) FROM t"), 0);
  ck_assert_int_eq(be_conn_begin(c, BE_TX_DEFERRED, NULL), BE_OK);
  exec_ok(c, "INSERT INTO t VALUES (1)");
  ck_assert_int_eq(be_conn_savepoint(c, "sp1", NULL), BE_OK);
  exec_ok(c, "INSERT INTO t VALUES (2)");
  /* a failed statement aborts the transaction until ROLLBACK TO */
  be_error *e = NULL;
  ck_assert_int_eq(be_conn_exec(c, "INSERT INTO t VALUES (1)", &e), BE_E_CONFLICT);
  be_error_free(e);
  ck_assert_int_eq(be_conn_rollback_to(c, "sp1", NULL), BE_OK);
  ck_assert_int_eq(be_conn_release(c, "sp1", NULL), BE_OK);
  ck_assert_int_eq(be_conn_commit(c, NULL), BE_OK);
  ck_assert_int_eq(scalar(c, "SELECT COUNT(*) FROM t"), 1);
  /* a bad savepoint name never reaches the server */
  ck_assert_int_eq(be_conn_begin(c, BE_TX_DEFERRED, NULL), BE_OK);
  TU_EXPECT_ERR(BE_E_VALIDATION, be_conn_savepoint(c, "x; DROP TABLE t", &tu_e));
  /* COMMIT of an aborted transaction is an error, not a silent rollback */
  ck_assert_int_eq(be_conn_exec(c, "INSERT INTO t VALUES (1)", NULL), BE_E_CONFLICT);
  TU_EXPECT_ERR(BE_E_STORAGE, be_conn_commit(c, &tu_e));
  ck_assert_int_eq(be_conn_in_transaction(c), 0);
  ck_assert_int_eq(scalar(c, "SELECT COUNT(*) FROM t"), 1);
  be_conn_close(c);
}
END_TEST

static void expect_state(be_conn *c, const char *sql, int32_t code, const char *state,
                         const char *sentence) {
  be_error *e = NULL;
  ck_assert_int_eq(be_conn_exec(c, sql, &e), code);
  ck_assert_ptr_nonnull(e);
  ck_assert_int_eq(be_error_code(e), code);
  /* the library's sentence; the server's words only in the cause */
  ck_assert_msg(strstr(be_error_message(e), sentence), "%s", be_error_message(e));
  ck_assert_msg(strstr(be_error_message(e), "t_") == NULL, "%s", be_error_message(e));
  char want[32];
  snprintf(want, sizeof want, "SQLSTATE %s", state);
  ck_assert_msg(cause_has(e, want), "cause lacks %s", want);
  int32_t packed = 0;
  for (int i = 4; i >= 0; i--) packed = (packed << 6) | ((state[i] - '0') & 0x3f);
  ck_assert_int_eq(be_error_driver_code(e), packed);
  be_error_free(e);
}

START_TEST(errors_by_sqlstate) {
  be_conn *c = open_pg();
  exec_ok(c, "CREATE TABLE p(id BIGINT PRIMARY KEY);"
             "CREATE TABLE t(id BIGINT PRIMARY KEY, email TEXT UNIQUE NOT NULL, "
             "age INT CHECK (age >= 0), p BIGINT REFERENCES p(id));"
             "INSERT INTO p VALUES (1); INSERT INTO t VALUES (1, 'a@x', 1, 1)");
  expect_state(c, "INSERT INTO t VALUES (2, 'a@x', 1, 1)", BE_E_CONFLICT, "23505",
               "a unique constraint was violated");
  expect_state(c, "INSERT INTO t VALUES (2, NULL, 1, 1)", BE_E_VALIDATION, "23502",
               "a NOT NULL constraint was violated");
  expect_state(c, "INSERT INTO t VALUES (2, 'b@x', -1, 1)", BE_E_VALIDATION, "23514",
               "a CHECK constraint was violated");
  expect_state(c, "INSERT INTO t VALUES (2, 'b@x', 1, 99)", BE_E_VALIDATION, "23503",
               "a foreign key constraint was violated");
  expect_state(c, "SELEKT 1", BE_E_STORAGE, "42601", "syntax error");
  expect_state(c, "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40001'; END $$", BE_E_BUSY, "40001",
               "could not be serialized");
  expect_state(c, "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40P01'; END $$", BE_E_BUSY, "40P01",
               "deadlock");
  be_error *e = NULL;
  ck_assert_int_eq(be_conn_exec(c, "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40001'; END $$", &e),
                   BE_E_BUSY);
  ck_assert_int_eq(be_error_is_retryable(e), 1);
  be_error_free(e);
  /* prepare errors are typed too */
  be_stmt *s = NULL;
  TU_EXPECT_ERR(BE_E_STORAGE, be_conn_prepare(&s, c, "SELECT * FROM no_such_table", &tu_e));
  ck_assert_ptr_null(s);
  be_conn_close(c);
}
END_TEST

/* Write skew under SERIALIZABLE: the second commit fails with 40001. */
START_TEST(serialization_failure_is_retryable_busy) {
  be_conn *a = open_pg(), *b = open_pg();
  exec_ok(a, "CREATE TABLE t(v BIGINT)");
  exec_ok(a, "BEGIN ISOLATION LEVEL SERIALIZABLE");
  exec_ok(b, "BEGIN ISOLATION LEVEL SERIALIZABLE");
  ck_assert_int_eq(scalar(a, "SELECT COUNT(*) FROM t"), 0);
  ck_assert_int_eq(scalar(b, "SELECT COUNT(*) FROM t"), 0);
  exec_ok(a, "INSERT INTO t VALUES (1)");
  exec_ok(b, "INSERT INTO t VALUES (2)");
  ck_assert_int_eq(be_conn_commit(a, NULL), BE_OK);
  be_error *e = NULL;
  ck_assert_int_eq(be_conn_commit(b, &e), BE_E_BUSY);
  ck_assert_int_eq(be_error_is_retryable(e), 1);
  ck_assert(cause_has(e, "SQLSTATE 40001"));
  be_error_free(e);
  ck_assert_int_eq(be_conn_in_transaction(b), 0);
  be_conn_close(a);
  be_conn_close(b);
}
END_TEST

static int attempts;
static int fail_once(be_conn *c, void *ud, be_error **err) {
  (void)ud;
  attempts++;
  int rc = be_conn_exec(c, "INSERT INTO t VALUES (1)", err);
  if (rc == BE_OK && attempts == 1)
    rc = be_conn_exec(c, "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40001'; END $$", err);
  return rc;
}

START_TEST(tx_run_retries_serialization_failures) {
  be_conn *c = open_pg();
  exec_ok(c, "CREATE TABLE t(v BIGINT)");
  attempts = 0;
  be_error *e = NULL;
  int rc = be_tx_run(c, BE_TX_IMMEDIATE, fail_once, NULL, &e);
  ck_assert_msg(rc == BE_OK, "%s", be_error_message(e));
  ck_assert_int_eq(attempts, 2);
  ck_assert_int_eq(scalar(c, "SELECT COUNT(*) FROM t"), 1);
  be_conn_close(c);
}
END_TEST

static void terminate(be_conn *killer, int64_t pid) {
  char sql[96];
  snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%lld)", (long long)pid);
  ck_assert_int_eq(scalar(killer, sql), 1);
}

START_TEST(connection_loss_breaks_the_connection) {
  be_conn *a = open_pg(), *k = open_pg();
  int64_t pid = scalar(a, "SELECT pg_backend_pid()");
  terminate(k, pid);
  usleep(100000);
  be_stmt *s = NULL;
  be_error *e = NULL;
  int rc = be_conn_prepare(&s, a, "SELECT 1", &e);
  if (rc == BE_OK) rc = be_stmt_step(s, &e);
  ck_assert_int_eq(rc, BE_E_CONN_LOST);
  ck_assert_int_eq(be_error_is_retryable(e), 1);
  be_error_free(e);
  be_stmt_finalize(s);
  ck_assert_int_eq(be_conn_is_broken(a), 1);
  TU_EXPECT_ERR(BE_E_CONN_LOST, be_conn_ping(a, &tu_e));
  be_conn_close(a);
  be_conn_close(k);
}
END_TEST

START_TEST(pool_replaces_a_lost_connection) {
  be_pool_options o = BE_POOL_OPTIONS_INIT;
  o.driver = NULL; /* chosen by the postgresql:// DSN */
  o.dsn = dsn;
  o.min_conns = 1;
  o.max_conns = 1;
  be_pool *p = NULL;
  be_error *e = NULL;
  ck_assert_msg(be_pool_new(&p, &o, &e) == BE_OK, "%s", be_error_message(e));
  be_conn *k = open_pg();
  be_conn *c = NULL;
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  ck_assert_str_eq(be_conn_driver(c)->name, "postgres");
  int64_t pid = scalar(c, "SELECT pg_backend_pid()");
  be_pool_release(p, c);
  terminate(k, pid);
  usleep(100000);
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  be_stmt *s = NULL;
  int rc = be_conn_prepare(&s, c, "SELECT pg_backend_pid()", &e);
  if (rc == BE_OK) {
    rc = be_stmt_step(s, &e);
    be_stmt_finalize(s);
  }
  /* either the pool's validation already replaced it, or the call fails
   * typed and retryable, never hangs */
  if (rc != BE_ROW) {
    ck_assert_int_eq(rc, BE_E_CONN_LOST);
    ck_assert_int_eq(be_error_is_retryable(e), 1);
    be_error_free(e);
    e = NULL;
  }
  be_pool_release(p, c);
  /* the next acquire gets a new, working connection */
  ck_assert_int_eq(be_pool_acquire(&c, p, NULL), BE_OK);
  int64_t pid2 = scalar(c, "SELECT pg_backend_pid()");
  ck_assert(pid2 != pid);
  be_pool_release(p, c);
  be_conn_close(k);
  be_pool_free(p);
}
END_TEST

START_TEST(batch_of_100000_keys_is_one_statement) {
  be_conn *c = open_pg();
  exec_ok(c, "CREATE TABLE posts(id BIGINT PRIMARY KEY, author BIGINT NOT NULL, title TEXT);"
             "INSERT INTO posts SELECT g, g % 100000, 'post ' || g FROM generate_series(1, 200000) g");
  enum { N = 100000 };
  int64_t *keys = malloc(N * sizeof *keys);
  for (int i = 0; i < N; i++) keys[i] = i;
  be_batch_options o = BE_BATCH_OPTIONS_INIT;
  const char *cols[] = {"id", "title"};
  o.table = "posts";
  o.columns = cols;
  o.column_count = 2;
  o.key_column = "author";
  const char *order[] = {"id"};
  o.order_by = order;
  o.order_by_count = 1;
  ck_assert_int_eq(be_batch_default_strategy(be_postgres_driver()), BE_BATCH_ARRAY);
  be_batch_result *r = NULL;
  be_error *e = NULL;
  ck_assert_msg(be_batch_load_int64(&r, c, &o, keys, N, &e) == BE_OK, "%s", be_error_message(e));
  ck_assert_uint_eq(be_rows_count(be_batch_result_rows(r)), 200000);
  size_t first = 0;
  ck_assert_uint_eq(be_batch_result_find_int64(r, 7, &first), 2);
  ck_assert_int_eq(be_rows_int64(be_batch_result_rows(r), first, 0), 100007 - 100000);
  be_stmt_cache_stats st = BE_STMT_CACHE_STATS_INIT;
  ck_assert_int_eq(be_conn_stmt_cache_stats_get(&st, c, NULL), BE_OK);
  ck_assert_int_eq(st.misses, 1); /* one statement text, prepared once */
  be_batch_result_free(r);
  /* text keys that need quoting in an array literal */
  exec_ok(c, "CREATE TABLE tags(name TEXT PRIMARY KEY, n INT)");
  exec_ok(c, "INSERT INTO tags VALUES ('a\"b', 1), ('c\\d', 2), ('NULL', 3), ('{x,y}', 4)");
  const char *tk[] = {"a\"b", "c\\d", "NULL", "{x,y}", "none"};
  const char *tcols[] = {"n"};
  o.table = "tags";
  o.columns = tcols;
  o.column_count = 1;
  o.key_column = "name";
  o.order_by_count = 0;
  ck_assert_int_eq(be_batch_load_text(&r, c, &o, tk, NULL, 5, NULL), BE_OK);
  ck_assert_uint_eq(be_rows_count(be_batch_result_rows(r)), 4);
  for (int i = 0; i < 4; i++) {
    ck_assert_uint_eq(be_batch_result_find_text(r, tk[i], BE_NUL_TERMINATED, &first), 1);
    ck_assert_int_eq(be_rows_int64(be_batch_result_rows(r), first, 0), i + 1);
  }
  ck_assert_uint_eq(be_batch_result_find_text(r, "none", BE_NUL_TERMINATED, &first), 0);
  be_batch_result_free(r);
  free(keys);
  be_conn_close(c);
}
END_TEST

START_TEST(jsonb_through_text) {
  be_conn *c = open_pg();
  exec_ok(c, "CREATE TABLE t(id BIGINT PRIMARY KEY, doc JSONB NOT NULL)");
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, "INSERT INTO t VALUES (?, ?)", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_int64(s, 1, 1, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_text(s, 2, "{\"a\": [1, 2], \"b\": \"x\"}", BE_NUL_TERMINATED, NULL),
                   BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_DONE);
  ck_assert_int_eq(be_stmt_reset(s, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_int64(s, 1, 2, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_text(s, 2, "{not json", BE_NUL_TERMINATED, NULL), BE_OK);
  be_error *e = NULL;
  ck_assert_int_eq(be_stmt_step(s, &e), BE_E_VALIDATION);
  ck_assert(cause_has(e, "SQLSTATE 22P02"));
  be_error_free(e);
  be_stmt_finalize(s);
  ck_assert_int_eq(scalar(c, "SELECT (doc->'a'->>1)::bigint FROM t WHERE doc->>'b' = 'x'"), 2);
  be_conn_close(c);
}
END_TEST

START_TEST(scripts_split_and_tables_known) {
  be_conn *c = open_pg();
  const be_driver *d = be_conn_driver(c);
  const char *script = "CREATE FUNCTION f() RETURNS int AS $body$ BEGIN RETURN 1; END $body$ "
                       "LANGUAGE plpgsql; SELECT ';' -- ;\n; SELECT 2";
  size_t n = 0;
  ck_assert_int_eq(d->next_statement(be__conn_native(c), &n, script, strlen(script), NULL), BE_OK);
  ck_assert_uint_eq(n, strlen("CREATE FUNCTION f() RETURNS int AS $body$ BEGIN RETURN 1; END $body$ "
                              "LANGUAGE plpgsql;"));
  const char *rest = script + n;
  ck_assert_int_eq(d->next_statement(be__conn_native(c), &n, rest, strlen(rest), NULL), BE_OK);
  ck_assert_uint_eq(n, strlen(" SELECT ';' -- ;\n;"));
  int32_t exists = -1;
  ck_assert_int_eq(d->table_exists(be__conn_native(c), &exists, "t", NULL), BE_OK);
  ck_assert_int_eq(exists, 0);
  exec_ok(c, "CREATE TABLE t(id BIGINT)");
  ck_assert_int_eq(d->table_exists(be__conn_native(c), &exists, "t", NULL), BE_OK);
  ck_assert_int_eq(exists, 1);
  be_conn_close(c);
}
END_TEST

START_TEST(open_errors_are_unreachable) {
  be_conn *c = NULL;
  be_error *e = NULL;
  char bad[1100];
  snprintf(bad, sizeof bad, "%s", base_dsn);
  char *q = strstr(bad, "be_test");
  ck_assert_ptr_nonnull(q);
  memcpy(q, "no_db__", 7);
  ck_assert_int_eq(be_conn_open(&c, be_postgres_driver(), bad, &e), BE_E_DB_UNREACHABLE);
  ck_assert_ptr_null(c);
  ck_assert(cause_has(e, "no_db__"));
  ck_assert(strstr(be_error_message(e), "no_db__") == NULL);
  be_error_free(e);
}
END_TEST


/* An app on PostgreSQL: chosen by the DSN, migrated in PostgreSQL's
 * dialect; users and permissions work as on SQLite. */
static be_app *pg_app(void) {
  be_app_options o;
  svc_fast_options(&o, dsn); /* no driver: picked by the postgresql:// DSN */
  o.pool_max = 4;
  be_app *app = NULL;
  be_error *e = NULL;
  ck_assert_msg(be_app_new(&app, &o, &e) == BE_OK, "be_app_new: %s", be_error_message(e));
  return app;
}

START_TEST(app_users_and_permissions) {
  be_app *app = pg_app();
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = "Ann@Example.com";
  in.name = "Ann";
  in.extra = "{\"team\": \"blue\"}";
  be_user *u = NULL;
  int64_t id = 0;
  be_error *e = NULL;
  ck_assert_msg(be_user_create(&u, &id, app, 0, &in, &e) == BE_OK, "%s", be_error_message(e));
  ck_assert_int_gt(id, 0);
  ck_assert_str_eq(be_user_email(u), "ann@example.com");
  be_user_free(u);
  /* the same email again: a conflict (23505), the server's words only in the cause */
  in.email = "ann@example.com";
  ck_assert_int_eq(be_user_create(&u, NULL, app, 0, &in, &e), BE_E_CONFLICT);
  be_error_free(e);
  e = NULL;
  /* extra that is not a JSON object is the caller's 400 */
  in.email = "bob@example.com";
  in.extra = "{nope";
  ck_assert_int_eq(be_user_create(&u, NULL, app, 0, &in, &e), BE_E_VALIDATION);
  be_error_free(e);
  e = NULL;
  in.extra = "[1]";
  ck_assert_int_eq(be_user_create(&u, NULL, app, 0, &in, NULL), BE_E_VALIDATION);
  ck_assert_int_eq(be_user_get(&u, app, id, NULL), BE_OK);
  ck_assert_str_eq(be_user_name(u), "Ann");
  be_user_free(u);
  be_user_input up = BE_USER_INPUT_INIT;
  up.fields = BE_USER_FIELD_NAME;
  up.name = "Ann B";
  ck_assert_msg(be_user_update(&u, app, 0, id, &up, &e) == BE_OK, "%s", root_msg(e));
  ck_assert_str_eq(be_user_name(u), "Ann B");
  be_user_free(u);
  ck_assert_int_eq(be_user_get(&u, app, id, NULL), BE_OK); /* the cache was invalidated */
  ck_assert_str_eq(be_user_name(u), "Ann B");
  be_user_free(u);
  /* permissions */
  int64_t role = 0;
  ck_assert_msg(be_perm_role_create(&role, app, 0, "editor", NT, &e) == BE_OK, "%s",
                be_error_message(e));
  ck_assert_int_gt(role, 0);
  ck_assert_int_eq(be_perm_role_grant(app, 0, "editor", NT, "posts:*", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_check(app, id, "posts:write", NT, NULL), BE_E_FORBIDDEN);
  ck_assert_int_eq(be_perm_user_assign(app, 0, id, "editor", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_check(app, id, "posts:write", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_role_revoke(app, 0, "editor", NT, "posts:*", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_check(app, id, "posts:write", NT, NULL), BE_E_FORBIDDEN);
  /* every change was audited in PostgreSQL's audit_log */
  ck_assert_int_ge(svc_int(app, "SELECT count(*) FROM be_audit_log"), 5);
  ck_assert_msg(be_user_delete(app, 0, id, &e) == BE_OK, "%s", be_error_message(e));
  ck_assert_int_eq(be_user_get(&u, app, id, NULL), BE_E_NOT_FOUND);
  be_app_free(app);
  /* opened again: the migrations are recorded, nothing runs twice */
  app = pg_app();
  ck_assert_int_eq(svc_int(app, "SELECT max(version) FROM be_schema_migrations"), 10);
  be_app_free(app);
}
END_TEST


START_TEST(app_login_sessions_and_purge) {
  be_app *app = pg_app();
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = "carol@example.com";
  in.name = "Carol";
  int64_t id = 0;
  be_error *e = NULL;
  ck_assert_msg(be_user_create(NULL, &id, app, 0, &in, &e) == BE_OK, "%s", root_msg(e));
  const char *pw = "correct horse battery staple";
  ck_assert_msg(be_auth_set_password(app, 0, id, pw, NT, &e) == BE_OK, "%s", root_msg(e));
  /* the trigger counted the stored hash's parameters */
  ck_assert_int_eq(svc_int(app, "SELECT sum(hashes) FROM be_password_hash_params"), 1);
  char *token = NULL;
  int64_t who = 0;
  ck_assert_msg(be_auth_login(&token, &who, app, "carol@example.com", NT, pw, NT, &e) == BE_OK, "%s",
                root_msg(e));
  ck_assert_int_eq(who, id);
  int64_t seen = 0;
  ck_assert_msg(be_auth_verify(&seen, app, token, NT, &e) == BE_OK, "%s", root_msg(e));
  ck_assert_int_eq(seen, id);
  be_auth_session_list *l = NULL;
  ck_assert_msg(be_auth_list_sessions(&l, app, id, &e) == BE_OK, "%s", root_msg(e));
  ck_assert_uint_eq(be_auth_session_list_count(l), 1);
  be_auth_session_list_free(l);
  char *bad = NULL;
  ck_assert_int_eq(be_auth_login(&bad, NULL, app, "carol@example.com", NT, "wrong", NT, NULL),
                   BE_E_UNAUTHORIZED);
  ck_assert_int_eq(be_auth_logout(app, token, NT, NULL), BE_OK);
  ck_assert_int_eq(be_auth_verify(&seen, app, token, NT, NULL), BE_E_UNAUTHORIZED);
  int64_t purged = 0;
  ck_assert_msg(be_auth_purge_expired(&purged, app, &e) == BE_OK, "%s", root_msg(e));
  ck_assert_int_ge(purged, 1);
  be_free(token);
  /* deleting the user uncounts its hash */
  ck_assert_int_eq(be_user_delete(app, 0, id, NULL), BE_OK);
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM be_password_hash_params"), 0);
  be_app_free(app);
}
END_TEST

static void *open_app_thread(void *arg) {
  be_app_options o;
  svc_fast_options(&o, dsn);
  o.pool_max = 2;
  be_error *e = NULL;
  int rc = be_app_new((be_app **)arg, &o, &e);
  if (rc != BE_OK) fprintf(stderr, "concurrent open: %s\n", root_msg(e));
  be_error_free(e);
  return NULL;
}

/* Apps of several processes opening a new database at once: the setup
 * lock makes them migrate one after another; every open succeeds. */
START_TEST(apps_opening_at_once_migrate_once) {
  enum { N = 6 };
  be_app *apps[N] = {0};
  pthread_t th[N];
  for (int i = 0; i < N; i++) ck_assert_int_eq(pthread_create(&th[i], NULL, open_app_thread, &apps[i]), 0);
  for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < N; i++) ck_assert_msg(apps[i] != NULL, "app %d did not open", i);
  ck_assert_int_eq(svc_int(apps[0], "SELECT count(*) FROM be_schema_migrations"), 10);
  for (int i = 0; i < N; i++) be_app_free(apps[i]);
}
END_TEST

typedef struct fail_run {
  be_app *app;
  int n;
} fail_run;

static void *failing_logins(void *arg) {
  fail_run *f = arg;
  for (int i = 0; i < f->n; i++) {
    char *t = NULL;
    be_auth_login(&t, NULL, f->app, "dave@example.com", NT, "wrong password", NT, NULL);
    be_free(t);
  }
  return NULL;
}

/* Failed logins from many threads at once are each counted: none is lost
 * to a concurrent read-modify-write. */
START_TEST(concurrent_failed_logins_are_all_counted) {
  be_app_options o;
  svc_fast_options(&o, dsn);
  o.pool_max = 8;
  o.throttle_after = 1000000; /* no backoff window: every guess counts */
  o.lockout_after = 1000000;
  be_app *app = NULL;
  be_error *e = NULL;
  ck_assert_msg(be_app_new(&app, &o, &e) == BE_OK, "%s", root_msg(e));
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = "dave@example.com";
  in.name = "Dave";
  int64_t id = 0;
  ck_assert_int_eq(be_user_create(NULL, &id, app, 0, &in, NULL), BE_OK);
  ck_assert_int_eq(be_auth_set_password(app, 0, id, "the right password", NT, NULL), BE_OK);
  enum { T = 6,
         N = 10 };
  fail_run f = {app, N};
  pthread_t th[T];
  for (int i = 0; i < T; i++) ck_assert_int_eq(pthread_create(&th[i], NULL, failing_logins, &f), 0);
  for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
  char sql[96];
  snprintf(sql, sizeof sql, "SELECT failed_logins FROM be_users WHERE id = %lld", (long long)id);
  ck_assert_int_eq(svc_int(app, sql), T * N);
  be_app_free(app);
}
END_TEST

typedef struct rename_run {
  be_app *app;
  int64_t id;
  int t;
} rename_run;

static void *renaming(void *arg) {
  rename_run *r = arg;
  for (int i = 0; i < 10; i++) {
    char name[32];
    snprintf(name, sizeof name, "n%d_%d", r->t, i);
    be_user_input up = BE_USER_INPUT_INIT;
    up.fields = BE_USER_FIELD_NAME;
    up.name = name;
    be_error *e = NULL;
    int rc = be_user_update(NULL, r->app, 0, r->id, &up, &e);
    if (rc != BE_OK) fprintf(stderr, "rename: %s\n", root_msg(e));
    be_error_free(e);
  }
  return NULL;
}

/* Concurrent updates of one user: every audit row's "from" is the name
 * the previous row set (each update read the row it changed). */
START_TEST(concurrent_updates_audit_a_consistent_history) {
  be_app *app = pg_app();
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = "erin@example.com";
  in.name = "start";
  int64_t id = 0;
  ck_assert_int_eq(be_user_create(NULL, &id, app, 0, &in, NULL), BE_OK);
  enum { T = 4 };
  rename_run r[T];
  pthread_t th[T];
  for (int i = 0; i < T; i++) {
    r[i] = (rename_run){app, id, i};
    ck_assert_int_eq(pthread_create(&th[i], NULL, renaming, &r[i]), 0);
  }
  for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
  be_conn *c = NULL;
  ck_assert_int_eq(be_pool_acquire(&c, be_app_pool(app), NULL), BE_OK);
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT details FROM be_audit_log WHERE action = "
                                          "'user.update' ORDER BY id",
                                   NULL),
                   BE_OK);
  char prev[64] = "start";
  int rows = 0;
  while (be_stmt_step(s, NULL) == BE_ROW) {
    size_t len = 0;
    const char *d = be_stmt_column_text(s, 0, &len);
    char from[64], to[64];
    const char *f = strstr(d, "\"from\":\"");
    const char *t = strstr(d, "\"to\":\"");
    ck_assert(f && t);
    ck_assert_int_eq(sscanf(f + 8, "%63[^\"]", from), 1);
    ck_assert_int_eq(sscanf(t + 6, "%63[^\"]", to), 1);
    ck_assert_msg(strcmp(from, prev) == 0, "row %d: from %s, previous to %s", rows, from, prev);
    snprintf(prev, sizeof prev, "%s", to);
    rows++;
  }
  ck_assert_int_eq(rows, T * 10);
  be_stmt_finalize(s);
  be_pool_release(be_app_pool(app), c);
  be_app_free(app);
}
END_TEST

/* ---- the server restarts in the middle of a run ---- */

typedef struct restart_run {
  be_pool *pool;
  _Atomic int stop;
  _Atomic int64_t ok, ok_after, lost, unreachable, busy, other, max_call_ms;
  _Atomic int restarted; /* 1 once the server is back */
} restart_run;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One call: acquire, insert a row, release; its outcome counted. */
static void restart_call(restart_run *r) {
  int64_t t0 = now_ms();
  be_conn *c = NULL;
  be_error *e = NULL;
  int rc = be_pool_acquire(&c, r->pool, &e);
  if (rc == BE_OK) {
    rc = be_conn_exec(c, "INSERT INTO r(v) VALUES (1)", &e);
    be_pool_release(r->pool, c);
  }
  int64_t took = now_ms() - t0;
  if (took > atomic_load(&r->max_call_ms)) atomic_store(&r->max_call_ms, took);
  if (rc == BE_OK) {
    atomic_fetch_add(&r->ok, 1);
    if (atomic_load(&r->restarted)) atomic_fetch_add(&r->ok_after, 1);
  } else if (rc == BE_E_CONN_LOST) {
    atomic_fetch_add(&r->lost, 1);
  } else if (rc == BE_E_DB_UNREACHABLE) {
    atomic_fetch_add(&r->unreachable, 1);
  } else if (rc == BE_E_BUSY || rc == BE_E_POOL_EXHAUSTED || rc == BE_E_TIMEOUT) {
    atomic_fetch_add(&r->busy, 1);
  } else {
    fprintf(stderr, "restart: untyped failure %d: %s\n", rc, root_msg(e));
    atomic_fetch_add(&r->other, 1);
  }
  if (rc != BE_OK) {
    ck_assert_msg(be_error_is_retryable(e), "not retryable: %s", be_error_message(e));
    usleep(20000);
  }
  be_error_free(e);
}

static void *restart_worker(void *arg) {
  restart_run *r = arg;
  while (!atomic_load(&r->stop)) restart_call(r);
  return NULL;
}

START_TEST(server_restart_mid_run) {
  const char *cluster = getenv("BE_TEST_PG_CLUSTER");
  const char *dir = getenv("BE_TEST_PG_DIR");
  ck_assert(cluster != NULL && dir != NULL); /* main() checked */
  be_conn *k = open_pg();
  exec_ok(k, "CREATE TABLE r(id BIGSERIAL PRIMARY KEY, v INT)");
  be_conn_close(k);
  restart_run r = {0};
  be_pool_options o = BE_POOL_OPTIONS_INIT;
  o.dsn = dsn;
  o.min_conns = 4;
  o.max_conns = 4;
  o.acquire_timeout_ms = 2000;
  ck_assert_int_eq(be_pool_new(&r.pool, &o, NULL), BE_OK);
  pthread_t th[4];
  for (int i = 0; i < 4; i++) ck_assert_int_eq(pthread_create(&th[i], NULL, restart_worker, &r), 0);
  usleep(300000);
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "bash '%s' restart '%s'", cluster, dir);
  int64_t t0 = now_ms();
  ck_assert_int_eq(system(cmd), 0);
  int64_t restart_ms = now_ms() - t0;
  atomic_store(&r.restarted, 1);
  int64_t before = atomic_load(&r.ok);
  usleep(1000000);
  atomic_store(&r.stop, 1);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  fprintf(stderr,
          "restart: server down and up in %lld ms; calls ok %lld (%lld after the restart), "
          "conn lost %lld, unreachable %lld, busy/timeout %lld, other %lld; slowest call %lld ms\n",
          (long long)restart_ms, (long long)r.ok, (long long)r.ok_after, (long long)r.lost,
          (long long)r.unreachable, (long long)r.busy, (long long)r.other,
          (long long)r.max_call_ms);
  ck_assert_int_eq(atomic_load(&r.other), 0);
  ck_assert_int_gt(before, 0);
  ck_assert_int_gt(atomic_load(&r.ok_after), 10); /* the pool replaced its connections */
  ck_assert_int_gt(atomic_load(&r.lost) + atomic_load(&r.unreachable), 0);
  ck_assert_int_lt(atomic_load(&r.max_call_ms), 10000); /* nothing hangs */
  /* nothing committed is lost (a call whose answer was lost may or may not have committed) */
  k = open_pg();
  int64_t rows = scalar(k, "SELECT count(*) FROM r");
  ck_assert_int_ge(rows, atomic_load(&r.ok));
  ck_assert_int_le(rows, atomic_load(&r.ok) + atomic_load(&r.lost));
  be_conn_close(k);
  be_pool_free(r.pool);
}
END_TEST

/* ---- notifications: LISTEN / NOTIFY (driver version 5) ---- */

static int64_t backend_pid(be_conn *c) {
  be_stmt *st = NULL;
  ck_assert_int_eq(be_conn_prepare(&st, c, "SELECT pg_backend_pid()", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(st, NULL), BE_ROW);
  int64_t pid = be_stmt_column_int64(st, 0);
  be_stmt_finalize(st);
  return pid;
}

/* One wait on l: got, and the payload into buf. */
static int32_t wait_one(be_conn *l, char *buf, size_t cap, int64_t timeout_ms, int wake_fd) {
  int32_t got = -1;
  size_t len = 0;
  be_error *e = NULL;
  int rc = be__conn_wait_notification(l, &got, buf, cap, &len, wake_fd, timeout_ms, &e);
  ck_assert_msg(rc == BE_OK, "%s", be_error_message(e));
  return got;
}

START_TEST(notifications_are_delivered_on_commit_only) {
  be_conn *l = open_pg(), *w = open_pg();
  ck_assert(be__driver_notifies(be_conn_driver(l)));
  be_driver v4 = *be_postgres_driver(); /* an older table: the fields are never read */
  v4.version = 4;
  ck_assert(!be__driver_notifies(&v4));
  ck_assert(!be__driver_notifies(be_sqlite_driver()));
  be_error *e = NULL;
  ck_assert_int_eq(be__conn_listen(l, "Chan_1", &e), BE_OK);
  char buf[64];
  /* sent inside a transaction: nothing until COMMIT */
  ck_assert_int_eq(be_conn_begin(w, BE_TX_DEFERRED, NULL), BE_OK);
  ck_assert_int_eq(be__conn_notify(w, "Chan_1", "hello", 5, &e), BE_OK);
  ck_assert_int_eq(wait_one(l, buf, sizeof buf, 100, -1), 0);
  ck_assert_int_eq(be_conn_commit(w, NULL), BE_OK);
  ck_assert_int_eq(wait_one(l, buf, sizeof buf, 5000, -1), 1);
  ck_assert_str_eq(buf, "hello");
  /* rolled back: never */
  ck_assert_int_eq(be_conn_begin(w, BE_TX_DEFERRED, NULL), BE_OK);
  ck_assert_int_eq(be__conn_notify(w, "Chan_1", "gone", 4, &e), BE_OK);
  ck_assert_int_eq(be_conn_rollback(w, NULL), BE_OK);
  ck_assert_int_eq(wait_one(l, buf, sizeof buf, 200, -1), 0);
  /* channels are case-sensitive (quoted); a payload is cut to fit */
  ck_assert_int_eq(be__conn_notify(w, "chan_1", "other", 5, NULL), BE_OK);
  ck_assert_int_eq(be__conn_notify(w, "Chan_1", "0123456789", 10, NULL), BE_OK);
  int32_t got = 0;
  size_t len = 0;
  ck_assert_int_eq(be__conn_wait_notification(l, &got, buf, 5, &len, -1, 5000, NULL), BE_OK);
  ck_assert_int_eq(got, 1);
  ck_assert_uint_eq(len, 10);
  ck_assert_str_eq(buf, "0123");
  /* bad channel names are refused before the server sees them */
  ck_assert_int_eq(be__conn_listen(l, "bad-name", &e), BE_E_VALIDATION);
  be_error_free(e);
  e = NULL;
  ck_assert_int_eq(be__conn_notify(w, "x;y", "p", 1, NULL), BE_E_VALIDATION);
  be_conn_close(w);
  be_conn_close(l);
}
END_TEST

START_TEST(wait_wakes_on_the_fd_and_sees_a_lost_connection) {
  be_conn *l = open_pg(), *k = open_pg();
  ck_assert_int_eq(be__conn_listen(l, "wake_chan", NULL), BE_OK);
  int p[2];
  ck_assert_int_eq(pipe(p), 0);
  ck_assert_int_eq(write(p[1], "x", 1), 1);
  char buf[16];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  ck_assert_int_eq(wait_one(l, buf, sizeof buf, 10000, p[0]), 0);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 2); /* woken, not timed out */
  close(p[0]);
  close(p[1]);
  /* the listener's backend terminated from another connection */
  char sql[96];
  snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%lld)", (long long)backend_pid(l));
  ck_assert_int_eq(be_conn_exec(k, sql, NULL), BE_OK);
  int rc = BE_OK;
  for (int i = 0; i < 50 && rc == BE_OK; i++) {
    int32_t got = 0;
    size_t len = 0;
    rc = be__conn_wait_notification(l, &got, buf, sizeof buf, &len, -1, 100, NULL);
  }
  ck_assert_int_eq(rc, BE_E_CONN_LOST);
  ck_assert_int_eq(be_conn_is_broken(l), 1);
  be_conn_close(k);
  be_conn_close(l);
}
END_TEST

static be_app *app_on_dsn(void) {
  be_app_options o;
  svc_fast_options(&o, dsn);
  be_app *app = NULL;
  be_error *e = NULL;
  ck_assert_msg(be_app_new(&app, &o, &e) == BE_OK, "%s", be_error_message(e));
  return app;
}

static be_app_status status_of(be_app *app) {
  be_app_status s = BE_APP_STATUS_INIT;
  ck_assert_int_eq(be_app_status_get(&s, app, NULL), BE_OK);
  return s;
}

/* Poll b's copy of user id until its name is want (or it is gone, want
 * NULL); gives up after 5 s. */
static int follows(be_app *b, int64_t id, const char *want) {
  struct timespec nap = {0, 1000000};
  for (int i = 0; i < 5000; i++) {
    be_user *u = NULL;
    int rc = be_user_get(&u, b, id, NULL);
    int ok = want ? rc == BE_OK && strcmp(be_user_name(u), want) == 0 : rc == BE_E_NOT_FOUND;
    be_user_free(u);
    if (ok) return 1;
    nanosleep(&nap, NULL);
  }
  return 0;
}

START_TEST(apps_follow_each_others_user_changes) {
  be_app *a = app_on_dsn(), *b = app_on_dsn();
  ck_assert_int_eq(status_of(a).invalidation, BE_APP_INVALIDATION_LISTENING);
  ck_assert_int_eq(status_of(b).invalidation, BE_APP_INVALIDATION_LISTENING);
  int64_t id = svc_user(a, "f@example.com", "First");
  int64_t other = svc_user(a, "o@example.com", "Other");
  ck_assert(follows(b, id, "First")); /* cached in b now */
  be_user_input in = BE_USER_INPUT_INIT;
  in.fields = BE_USER_FIELD_NAME;
  in.name = "Second";
  ck_assert_int_eq(be_user_update(NULL, a, 0, id, &in, NULL), BE_OK);
  ck_assert(follows(b, id, "Second"));
  ck_assert_int_eq(status_of(b).invalidation_received, 1);
  /* a failed write (email taken) sends nothing that arrives */
  in.fields = BE_USER_FIELD_EMAIL;
  in.email = "o@example.com";
  ck_assert_int_eq(be_user_update(NULL, a, 0, id, &in, NULL), BE_E_CONFLICT);
  /* disable, then delete: both followed */
  in.fields = BE_USER_FIELD_STATUS;
  in.status = BE_USER_DISABLED;
  ck_assert_int_eq(be_user_update(NULL, a, 0, other, &in, NULL), BE_OK);
  ck_assert_int_eq(be_user_delete(a, 0, id, NULL), BE_OK);
  ck_assert(follows(b, id, NULL));
  struct timespec nap = {0, 200000000};
  nanosleep(&nap, NULL);
  /* the update and the delete, not the conflict; a ignores its own */
  ck_assert_int_eq(status_of(b).invalidation_received, 3);
  ck_assert_int_eq(status_of(a).invalidation_received, 0);
  char *json = NULL;
  ck_assert_int_eq(be_app_status_json(&json, NULL, b, NULL), BE_OK);
  ck_assert_ptr_nonnull(strstr(json, "\"invalidation\":{\"state\":\"listening\""));
  be_free(json);
  be_app_free(b);
  be_app_free(a);
}
END_TEST

static Suite *postgres_suite(void) {
  Suite *s = suite_create("postgres");
  TCase *tc = tcase_create("driver");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, types_round_trip);
  tcase_add_test(tc, placeholders_are_translated);
  tcase_add_test(tc, bind_limit_parameters_prepare);
  tcase_add_test(tc, statement_cache_prepares_once);
  tcase_add_test(tc, transactions_and_savepoints);
  tcase_add_test(tc, errors_by_sqlstate);
  tcase_add_test(tc, serialization_failure_is_retryable_busy);
  tcase_add_test(tc, tx_run_retries_serialization_failures);
  tcase_add_test(tc, connection_loss_breaks_the_connection);
  tcase_add_test(tc, pool_replaces_a_lost_connection);
  tcase_add_test(tc, batch_of_100000_keys_is_one_statement);
  tcase_add_test(tc, jsonb_through_text);
  tcase_add_test(tc, scripts_split_and_tables_known);
  tcase_add_test(tc, open_errors_are_unreachable);
  tcase_add_test(tc, app_users_and_permissions);
  tcase_add_test(tc, app_login_sessions_and_purge);
  tcase_add_test(tc, apps_opening_at_once_migrate_once);
  tcase_add_test(tc, concurrent_failed_logins_are_all_counted);
  tcase_add_test(tc, concurrent_updates_audit_a_consistent_history);
  tcase_add_test(tc, notifications_are_delivered_on_commit_only);
  tcase_add_test(tc, wait_wakes_on_the_fd_and_sees_a_lost_connection);
  tcase_add_test(tc, apps_follow_each_others_user_changes);
  suite_add_tcase(s, tc);
  return s;
}

/* The restart test restarts the server: only on the throwaway cluster
 * (meson's postgres-restart entry). */
static Suite *restart_suite(void) {
  Suite *s = suite_create("postgres-restart");
  TCase *tc = tcase_create("restart");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, server_restart_mid_run);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  base_dsn = getenv("BE_TEST_PG_DSN");
  if (be_postgres_driver() == NULL) {
    fprintf(stderr, "SKIPPED: PostgreSQL suite: this libbackend was built without libpq "
                    "(install libpq-dev and reconfigure)\n");
    return 77;
  }
  if (base_dsn == NULL || base_dsn[0] == '\0') {
    fprintf(stderr, "SKIPPED: PostgreSQL suite: BE_TEST_PG_DSN is not set; start a server with "
                    "tests/pg/cluster.sh start DIR (tests/run.sh does) -- NOT RUN, NOT PASSED\n");
    return 77;
  }
  int restart = getenv("BE_TEST_PG_RESTART") != NULL;
  if (restart && (getenv("BE_TEST_PG_DIR") == NULL || getenv("BE_TEST_PG_CLUSTER") == NULL)) {
    fprintf(stderr, "SKIPPED: PostgreSQL restart test: it restarts the server, so it runs only on "
                    "the throwaway cluster tests/pg/env.sh starts (BE_TEST_PG_DIR) -- NOT RUN, "
                    "NOT PASSED\n");
    return 77;
  }
  SRunner *sr = srunner_create(restart ? restart_suite() : postgres_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
