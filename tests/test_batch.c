/* SPDX-License-Identifier: MIT */
/* Query helpers: params, rows, batch loading and the loader. Batch results
 * are checked row for row against a naive one-query-per-key loop.
 * With BE_TEST_BATCH_ON_PG=1 (meson's "batch-postgres") the same tests run
 * on a fresh schema of the server BE_TEST_PG_DSN names, where the array
 * strategy (= ANY($1)) takes the place of json_each; without a server the
 * suite exits 77 (SKIP, never a pass). */
#include "testutil.h"

#include <ctype.h>
#include <sqlite3.h>

#include "storage.h"

static char *dir;
static char dsn[1200];
static const be_driver *drv; /* SQLite, or PostgreSQL in PostgreSQL mode */

static int on_pg(void) {
  const char *v = getenv("BE_TEST_BATCH_ON_PG");
  return v != NULL && v[0] == '1';
}

__attribute__((constructor)) static void pg_skip_without_server(void) {
  if (!on_pg()) return;
  const char *base = getenv("BE_TEST_PG_DSN");
  if (be_postgres_driver() == NULL || base == NULL || base[0] == '\0') {
    fprintf(stderr, "SKIPPED: batch suite on PostgreSQL: %s -- NOT RUN, NOT PASSED\n",
            be_postgres_driver() == NULL ? "built without libpq" : "BE_TEST_PG_DSN is not set");
    exit(77);
  }
}

/* The strategy that puts every key in one parameter: json_each on
 * SQLite, an array on PostgreSQL. */
static int32_t one_param_strategy(void) { return on_pg() ? BE_BATCH_ARRAY : BE_BATCH_JSON_EACH; }

/* Skip a test that needs SQLite itself (dynamic typing, SQLite's SQL). */
#define SQLITE_ONLY(why)                                                 \
  do {                                                                   \
    if (on_pg()) {                                                       \
      fprintf(stderr, "%s: skipped on PostgreSQL: %s\n", __func__, why); \
      return;                                                            \
    }                                                                    \
  } while (0)

/* PostgreSQL mode: a DSN for a new, empty schema on the test server. */
static void pg_fresh_dsn(void) {
  const char *base = getenv("BE_TEST_PG_DSN");
  static int n;
  char schema[64];
  snprintf(schema, sizeof schema, "batch_%ld_%d", (long)getpid(), ++n);
  be_conn *c = NULL;
  be_error *e = NULL;
  ck_assert_msg(be_conn_open(&c, drv, base, &e) == BE_OK, "%s", be_error_message(e));
  char sql[256];
  snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema, schema);
  ck_assert_int_eq(be_conn_exec(c, sql, NULL), BE_OK);
  be_conn_close(c);
  snprintf(dsn, sizeof dsn, "%s%soptions=-csearch_path%%3D%s", base, strchr(base, '?') ? "&" : "?", schema);
}

static be_conn *open_conn(void) {
  be_conn *c = NULL;
  be_error *e = NULL;
  int rc = be_conn_open(&c, drv, dsn, &e);
  ck_assert_msg(rc == BE_OK, "open: %s", be_error_message(e));
  return c;
}

static void exec_ok(be_conn *c, const char *sql) {
  be_error *e = NULL;
  int rc = be_conn_exec(c, sql, &e);
  ck_assert_msg(rc == BE_OK, "%s: %s", sql, be_error_message(e));
}

static const char *const text_owners[] = {
  "alice", "bob", "O'Brien", "Robert'); DROP TABLE tags;--", "\xc3\xa9l\xc3\xa8ve", "\xf0\x9f\x98\x80",
  "", "a\"b", "back\\slash", "nobody-has-this"};
#define N_OWNERS (sizeof text_owners / sizeof text_owners[0])

static void setup(void) {
  be_log_set_handler(NULL, NULL, BE_LOG_ERROR, NULL); /* the naive loops are N+1 on purpose */
  dir = tu_tempdir();
  drv = on_pg() ? be_postgres_driver() : be_sqlite_driver();
  if (on_pg()) pg_fresh_dsn();
  else snprintf(dsn, sizeof dsn, "%s/batch.db", dir);
  be_conn *c = open_conn();
  if (on_pg())
    exec_ok(c, "CREATE TABLE posts(id BIGSERIAL PRIMARY KEY, user_id BIGINT, title TEXT,"
               " score DOUBLE PRECISION, data BYTEA, deleted BIGINT NOT NULL DEFAULT 0);"
               "CREATE INDEX posts_user ON posts(user_id);"
               "CREATE TABLE users(id BIGINT PRIMARY KEY, name TEXT);"
               "CREATE TABLE tags(id BIGSERIAL PRIMARY KEY, owner TEXT COLLATE \"C\", tag TEXT COLLATE \"C\");"
               "CREATE INDEX tags_owner ON tags(owner);");
  else
    exec_ok(c, "CREATE TABLE posts(id INTEGER PRIMARY KEY, user_id INTEGER, title TEXT, score REAL,"
               " data BLOB, deleted INTEGER NOT NULL DEFAULT 0);"
               "CREATE INDEX posts_user ON posts(user_id);"
               "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT);"
               "CREATE TABLE tags(id INTEGER PRIMARY KEY, owner TEXT, tag TEXT);"
               "CREATE INDEX tags_owner ON tags(owner);");
  exec_ok(c, "BEGIN");
  srand(7);
  be_stmt *st = NULL;
  ck_assert_int_eq(be_conn_prepare(&st, c, "INSERT INTO posts(user_id, title, score, data, deleted)"
                                           " VALUES (?, ?, ?, ?, ?)",
                                   NULL),
                   BE_OK);
  for (int u = 1; u <= 200; u++) {
    int n = u % 7 == 0 ? 0 : rand() % 6; /* some users have no posts */
    for (int i = 0; i < n; i++) {
      char title[64];
      snprintf(title, sizeof title, "post %d of user %d", i, u);
      be_stmt_bind_int64(st, 1, u, NULL);
      be_stmt_bind_text(st, 2, title, BE_NUL_TERMINATED, NULL);
      if (i % 3 == 0) be_stmt_bind_null(st, 3, NULL);
      else be_stmt_bind_double(st, 3, i * 1.5, NULL);
      unsigned char blob[3] = {(unsigned char)u, 0, (unsigned char)i};
      be_stmt_bind_blob(st, 4, blob, sizeof blob, NULL);
      be_stmt_bind_int64(st, 5, i == 4, NULL);
      ck_assert_int_eq(be_stmt_step(st, NULL), BE_DONE);
      be_stmt_reset(st, NULL);
    }
  }
  be_stmt_finalize(st);
  for (int u = 1; u <= 200; u++) {
    char sql[96];
    snprintf(sql, sizeof sql, "INSERT INTO users(id, name) VALUES (%d, 'user %d')", u, u);
    exec_ok(c, sql);
  }
  ck_assert_int_eq(be_conn_prepare(&st, c, "INSERT INTO tags(owner, tag) VALUES (?, ?)", NULL), BE_OK);
  for (size_t o = 0; o + 1 < N_OWNERS; o++)
    for (size_t t = 0; t <= o % 3; t++) {
      char tag[32];
      snprintf(tag, sizeof tag, "tag%zu", t);
      be_stmt_bind_text(st, 1, text_owners[o], BE_NUL_TERMINATED, NULL);
      be_stmt_bind_text(st, 2, tag, BE_NUL_TERMINATED, NULL);
      ck_assert_int_eq(be_stmt_step(st, NULL), BE_DONE);
      be_stmt_reset(st, NULL);
    }
  be_stmt_finalize(st);
  exec_ok(c, "COMMIT");
  be_conn_close(c);
}

static void teardown(void) { tu_rmdir(dir); }

static const char *const post_cols[] = {"id", "title", "score", "data"};

/* Options loading columns cols of table by key (and ordered by ord, nord
 * names; none when nord is 0). */
static be_batch_options opts_of(const char *table, const char *const *cols, size_t ncols,
                                const char *key, const char *const *ord, size_t nord) {
  be_batch_options o = BE_BATCH_OPTIONS_INIT;
  o.table = table;
  o.columns = cols;
  o.column_count = ncols;
  o.key_column = key;
  o.order_by = nord ? ord : NULL;
  o.order_by_count = nord;
  return o;
}

/* Same value in both result sets (type and bytes). */
static void assert_same_row(const be_rows *a, size_t ra, const be_rows *b, size_t rb) {
  ck_assert_int_eq(be_rows_column_count(a), be_rows_column_count(b));
  for (int32_t c = 0; c < be_rows_column_count(a); c++) {
    ck_assert_int_eq(be_rows_type(a, ra, c), be_rows_type(b, rb, c));
    size_t la, lb;
    const void *pa = be_rows_blob(a, ra, c, &la), *pb = be_rows_blob(b, rb, c, &lb);
    ck_assert_uint_eq(la, lb);
    if (la) ck_assert(memcmp(pa, pb, la) == 0);
    ck_assert(be_rows_int64(a, ra, c) == be_rows_int64(b, rb, c));
    ck_assert(be_rows_double(a, ra, c) == be_rows_double(b, rb, c));
  }
}

static int statements; /* counted through a scope */

/* ---- params and rows ---- */

START_TEST(rows_typed_access) {
  SQLITE_ONLY("untyped parameters and printf() are SQLite's");
  be_conn *c = open_conn();
  be_params *p = NULL;
  ck_assert_int_eq(be_params_new(&p, NULL), BE_OK);
  ck_assert_int_eq(be_params_add_int64(p, 42, NULL), BE_OK);
  ck_assert_int_eq(be_params_add_double(p, 2.5, NULL), BE_OK);
  ck_assert_int_eq(be_params_add_text(p, "it's", BE_NUL_TERMINATED, NULL), BE_OK);
  ck_assert_int_eq(be_params_add_blob(p, "a\0b", 3, NULL), BE_OK);
  ck_assert_int_eq(be_params_add_null(p, NULL), BE_OK);
  be_error *e = NULL;
  ck_assert_int_eq(be_params_add_text(p, "bad\0x", 5, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "params[5]");
  be_error_free(e);
  ck_assert_uint_eq(be_params_count(p), 5);
  be_rows *r = NULL;
  ck_assert_int_eq(be_rows_query(&r, c, "SELECT ? AS i, ? AS d, ? AS t, ? AS b, ? AS n", p, NULL), BE_OK);
  ck_assert_uint_eq(be_rows_count(r), 1);
  ck_assert_int_eq(be_rows_column_count(r), 5);
  ck_assert_str_eq(be_rows_column_name(r, 2), "t");
  ck_assert_ptr_null(be_rows_column_name(r, 5));
  ck_assert_int_eq(be_rows_column_index(r, "b"), 3);
  ck_assert_int_eq(be_rows_column_index(r, "zz"), -1);
  ck_assert_int_eq(be_rows_type(r, 0, 0), BE_TYPE_INT);
  ck_assert_int_eq(be_rows_int64_by_name(r, 0, "i"), 42);
  ck_assert(be_rows_double_by_name(r, 0, "i") == 42.0);
  ck_assert(be_rows_double(r, 0, 1) == 2.5);
  ck_assert_int_eq(be_rows_int64(r, 0, 1), 2);
  size_t len = 0;
  ck_assert_str_eq(be_rows_text_by_name(r, 0, "t", &len), "it's");
  ck_assert_uint_eq(len, 4);
  const char *b = be_rows_blob_by_name(r, 0, "b", &len);
  ck_assert_uint_eq(len, 3);
  ck_assert(memcmp(b, "a\0b", 3) == 0);
  ck_assert_ptr_null(be_rows_text(r, 0, 3, &len)); /* a blob is not text */
  ck_assert_int_eq(be_rows_type_by_name(r, 0, "n"), BE_TYPE_NULL);
  ck_assert_int_eq(be_rows_type_by_name(r, 0, "missing"), BE_TYPE_NULL);
  ck_assert_int_eq(be_rows_int64(r, 1, 0), 0); /* out of range */
  ck_assert_ptr_null(be_rows_text(r, 9, 9, &len));
  ck_assert_uint_eq(len, 0);
  be_rows_free(r);
  /* many rows: the arena grows past one chunk */
  ck_assert_int_eq(be_rows_query(&r, c, "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM n"
                                        " WHERE x < 5000) SELECT x, printf('%0100d', x) FROM n",
                                 NULL, NULL),
                   BE_OK);
  ck_assert_uint_eq(be_rows_count(r), 5000);
  ck_assert_int_eq(be_rows_int64(r, 4999, 0), 5000);
  ck_assert_uint_eq(strlen(be_rows_text(r, 4999, 1, NULL)), 100);
  be_rows_free(r);
  /* errors */
  ck_assert_int_eq(be_rows_query(&r, c, "SELEC nonsense", NULL, &e), BE_E_STORAGE);
  ck_assert_ptr_null(r);
  be_error_free(e);
  ck_assert_int_eq(be_rows_query(NULL, c, "SELECT 1", NULL, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_rows_query(&r, NULL, "SELECT 1", NULL, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_params_add_int64(NULL, 1, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_params_add_blob(p, NULL, 3, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_params_new(NULL, NULL), BE_E_MISUSE);
  be_params_clear(p);
  ck_assert_uint_eq(be_params_count(p), 0);
  be_params_free(p);
  be_params_free(NULL);
  be_rows_free(NULL);
  ck_assert_uint_eq(be_rows_count(NULL), 0);
  be_conn_close(c);
}
END_TEST

/* ---- batch: property test against the naive loop ---- */

static void check_against_naive(be_conn *c, const be_batch_options *o, const int64_t *keys, size_t n) {
  be_scope *sc = NULL;
  be_scope_options so = BE_SCOPE_OPTIONS_INIT;
  so.repeat_threshold = 1000; /* tiny chunks are N+1 by design here */
  ck_assert_int_eq(be_scope_begin(&sc, c, &so, NULL), BE_OK);
  be_batch_result *res = NULL;
  be_error *e = NULL;
  int rc = be_batch_load_int64(&res, c, o, keys, n, &e);
  ck_assert_msg(rc == BE_OK, "batch: %s", be_error_message(e));
  statements = (int)be_scope_query_count(sc);
  be_scope_free(sc);
  const be_rows *rows = be_batch_result_rows(res);
  /* distinct keys in first-occurrence order */
  size_t nd = 0;
  for (size_t i = 0; i < n; i++) {
    size_t j = 0;
    while (j < i && keys[j] != keys[i]) j++;
    if (j < i) continue;
    ck_assert_int_eq(be_batch_result_key_int64(res, nd), keys[i]);
    nd++;
  }
  ck_assert_uint_eq(be_batch_result_key_count(res), nd);
  /* naive: one query per distinct key */
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT id, title, score, data FROM posts WHERE %s%s%suser_id = ? ORDER BY %s",
           o->where ? "(" : "", o->where ? o->where : "", o->where ? ") AND " : "",
           o->order_by_count ? o->order_by[0] : "id");
  size_t expect_total = 0, at = 0;
  for (size_t k = 0; k < nd; k++) {
    int64_t key = be_batch_result_key_int64(res, k);
    be_params *p = NULL;
    be_params_new(&p, NULL);
    for (size_t w = 0; w < be_params_count(o->where_params); w++) be_params_add_int64(p, 0, NULL);
    be_params_add_int64(p, key, NULL);
    be_rows *naive = NULL;
    ck_assert_int_eq(be_rows_query(&naive, c, sql, p, NULL), BE_OK);
    size_t first = 99, cnt = be_batch_result_group(res, k, &first);
    ck_assert_uint_eq(cnt, be_rows_count(naive));
    size_t f2 = 0;
    ck_assert_uint_eq(be_batch_result_find_int64(res, key, &f2), cnt);
    ck_assert_uint_eq(f2, first);
    if (cnt) ck_assert_uint_eq(first, at); /* groups are consecutive, in key order */
    at += cnt;
    if (o->order_by_count) {
      for (size_t i = 0; i < cnt; i++) assert_same_row(rows, first + i, naive, i);
    } else { /* no order asked: same rows in any order */
      for (size_t i = 0; i < cnt; i++) {
        size_t j = 0;
        while (j < cnt && be_rows_int64(naive, j, 0) != be_rows_int64(rows, first + i, 0)) j++;
        ck_assert_uint_lt(j, cnt);
        assert_same_row(rows, first + i, naive, j);
      }
    }
    expect_total += cnt;
    be_rows_free(naive);
    be_params_free(p);
  }
  ck_assert_uint_eq(be_rows_count(rows), expect_total);
  ck_assert_uint_eq(be_batch_result_find_int64(res, 999999, NULL), 0); /* not asked for */
  be_batch_result_free(res);
}

START_TEST(batch_int_matches_naive) {
  be_conn *c = open_conn();
  be_params *wp = NULL;
  be_params_new(&wp, NULL);
  be_params_add_int64(wp, 0, NULL);
  srand(1234);
  static const char *const by_id_desc[] = {"id DESC"};
  static const char *const by_id[] = {"id asc"};
  for (int trial = 0; trial < 160; trial++) {
    be_batch_options o = BE_BATCH_OPTIONS_INIT;
    o.table = "posts";
    o.columns = post_cols;
    o.column_count = 4;
    o.key_column = "user_id";
    o.strategy = trial % 2 ? one_param_strategy() : BE_BATCH_IN_LIST;
    static const int32_t chunks[] = {0, 1, 3, 8, 50};
    o.max_chunk = chunks[(trial / 2) % 5];
    if (trial % 3 == 1) {
      o.order_by = by_id_desc;
      o.order_by_count = 1;
    }
    if (trial % 3 == 2) {
      o.order_by = by_id;
      o.order_by_count = 1;
    }
    if (trial % 4 == 3) {
      o.where = "deleted = ?";
      o.where_params = wp;
    }
    size_t n;
    switch (trial % 8) {
      case 0: n = 0; break;
      case 1: n = 1; break;
      default: n = (size_t)(rand() % 300); break;
    }
    int64_t keys[300];
    for (size_t i = 0; i < n; i++) {
      int r = rand() % 10;
      keys[i] = r == 0 && i > 0 ? keys[rand() % i]       /* duplicate */
                : r == 1        ? 1000 + rand() % 50     /* no rows */
                : r == 2        ? -(int64_t)(rand() % 5) /* negative */
                                : 1 + rand() % 200;
    }
    check_against_naive(c, &o, keys, n);
    /* statements: one per chunk of distinct keys */
    size_t nd = 0;
    for (size_t i = 0; i < n; i++) {
      size_t j = 0;
      while (j < i && keys[j] != keys[i]) j++;
      nd += j == i;
    }
    size_t chunk = o.max_chunk ? (size_t)o.max_chunk : BE_NUL_TERMINATED;
    size_t expect = nd == 0 ? 0 : chunk == BE_NUL_TERMINATED ? 1
                                                             : (nd + chunk - 1) / chunk;
    ck_assert_int_eq(statements, (int)expect);
  }
  be_params_free(wp);
  be_conn_close(c);
}
END_TEST

START_TEST(batch_text_keys_bound_safely) {
  be_conn *c = open_conn();
  static const char *const cols[] = {"tag", "owner"};
  static const char *const ord[] = {"tag"};
  for (int pass = 0; pass < 2; pass++) {
    int32_t strategy = pass == 0 ? BE_BATCH_IN_LIST : one_param_strategy();
    be_batch_options o = opts_of("tags", cols, 2, "owner", ord, 1);
    o.strategy = strategy;
    o.max_chunk = 3;
    const char *keys[N_OWNERS + 2];
    for (size_t i = 0; i < N_OWNERS; i++) keys[i] = text_owners[N_OWNERS - 1 - i];
    keys[N_OWNERS] = "alice";     /* duplicate */
    keys[N_OWNERS + 1] = "ALICE"; /* case differs: no rows */
    be_batch_result *res = NULL;
    be_error *e = NULL;
    int rc = be_batch_load_text(&res, c, &o, keys, NULL, N_OWNERS + 2, &e);
    ck_assert_msg(rc == BE_OK, "%s", be_error_message(e));
    ck_assert_uint_eq(be_batch_result_key_count(res), N_OWNERS + 1);
    const be_rows *rows = be_batch_result_rows(res);
    for (size_t k = 0; k < N_OWNERS + 1; k++) {
      size_t len;
      const char *key = be_batch_result_key_text(res, k, &len);
      ck_assert_str_eq(key, k < N_OWNERS ? keys[k] : "ALICE"); /* first-occurrence order */
      be_params *p = NULL;
      be_params_new(&p, NULL);
      be_params_add_text(p, key, len, NULL);
      be_rows *naive = NULL;
      ck_assert_int_eq(be_rows_query(&naive, c, "SELECT tag, owner FROM tags WHERE owner = ? ORDER BY tag", p, NULL), BE_OK);
      size_t first = 0, cnt = be_batch_result_find_text(res, key, len, &first);
      ck_assert_uint_eq(cnt, be_rows_count(naive));
      for (size_t i = 0; i < cnt; i++) assert_same_row(rows, first + i, naive, i);
      be_rows_free(naive);
      be_params_free(p);
    }
    ck_assert_uint_eq(be_batch_result_find_text(res, "O'Brien", BE_NUL_TERMINATED, NULL), 3);
    ck_assert_uint_eq(be_batch_result_find_text(res, "nobody-has-this", BE_NUL_TERMINATED, NULL), 0);
    be_batch_result_free(res);
    /* NUL inside a key: rejected, the key named */
    const char *bad[] = {"alice", "ali\0ce"};
    size_t lens[] = {5, 6};
    ck_assert_int_eq(be_batch_load_text(&res, c, &o, bad, lens, 2, &e), BE_E_VALIDATION);
    ck_assert_str_eq(be_error_field_name(e, 0), "keys[1]");
    ck_assert_ptr_null(res);
    be_error_free(e);
    const char *inval[] = {"\xff\xfe"};
    ck_assert_int_eq(be_batch_load_text(&res, c, &o, inval, NULL, 1, NULL), BE_E_VALIDATION);
  }
  /* the table survived every hostile key */
  be_rows *r = NULL;
  ck_assert_int_eq(be_rows_query(&r, c, "SELECT count(*) FROM tags", NULL, NULL), BE_OK);
  ck_assert_int_gt(be_rows_int64(r, 0, 0), 0);
  be_rows_free(r);
  be_conn_close(c);
}
END_TEST

/* Keys the database finds equal but that differ byte for byte: "05"
 * matches user_id 5 in SQL, as "5" does. A row is in the group of the
 * key it equals exactly, once, whatever the chunk size: with each key
 * in a statement of its own it once came back from both statements and
 * was in group "5" twice. The loader reads the same way. */
START_TEST(batch_keys_equal_in_sql_count_a_row_once) {
  be_conn *c = open_conn();
  exec_ok(c, "CREATE TABLE nums(id BIGINT PRIMARY KEY, user_id BIGINT, title TEXT);"
             "INSERT INTO nums VALUES (1, 5, 'p1'), (2, 5, 'p2'), (3, 6, 'p3')");
  static const char *const cols[] = {"id"}, *const ord[] = {"id"};
  static const char *const keys[] = {"5", "05", "6"};
  static const int64_t want[] = {2, 0, 1}; /* rows per key */
  for (int trial = 0; trial < 6; trial++) {
    be_batch_options o = opts_of("nums", cols, 1, "user_id", ord, 1);
    o.strategy = trial % 2 ? one_param_strategy() : BE_BATCH_IN_LIST;
    o.max_chunk = trial / 2; /* 0 (no limit), 1, 2 */
    be_batch_result *res = NULL;
    be_error *e = NULL;
    int rc = be_batch_load_text(&res, c, &o, keys, NULL, 3, &e);
    ck_assert_msg(rc == BE_OK, "trial %d: %s", trial, be_error_message(e));
    ck_assert_uint_eq(be_rows_count(be_batch_result_rows(res)), 3);
    for (size_t k = 0; k < 3; k++) {
      size_t first = 0, n = be_batch_result_group(res, k, &first);
      ck_assert_msg((int64_t)n == want[k], "trial %d, key %s: %zu rows", trial, keys[k], n);
      for (size_t i = 0; i < n; i++) /* in order: ids 1, 2 for "5" */
        ck_assert_int_eq(be_rows_int64(be_batch_result_rows(res), first + i, 0), k == 0 ? 1 + (int64_t)i : 3);
    }
    be_batch_result_free(res);
    be_loader *l = NULL;
    ck_assert_int_eq(be_loader_new(&l, c, &o, BE_TYPE_TEXT, NULL), BE_OK);
    for (size_t k = 0; k < 3; k++) ck_assert_int_eq(be_loader_want_text(l, keys[k], BE_NUL_TERMINATED, NULL), BE_OK);
    for (size_t k = 0; k < 3; k++) {
      const be_rows *rows;
      size_t first, n;
      ck_assert_int_eq(be_loader_get_text(&rows, &first, &n, l, keys[k], BE_NUL_TERMINATED, NULL), BE_OK);
      ck_assert_msg((int64_t)n == want[k], "loader, trial %d, key %s: %zu rows", trial, keys[k], n);
    }
    be_loader_free(l);
  }
  be_conn_close(c);
}
END_TEST

/* A where placeholder without its value: the keys would be bound one
 * place early (the first key into the where, the last key left out; on
 * PostgreSQL the where's $1 shared with the first key) and rows silently
 * lost; the load refuses instead, naming where_params. */
START_TEST(batch_where_placeholders_need_their_values) {
  be_conn *c = open_conn();
  static const char *const cols[] = {"id"};
  int64_t keys[] = {1, 2, 3};
  for (int pass = 0; pass < 2; pass++) {
    be_batch_options o = opts_of("posts", cols, 1, "user_id", NULL, 0);
    o.where = "deleted = ?";
    o.strategy = pass ? one_param_strategy() : BE_BATCH_IN_LIST;
    be_batch_result *res = NULL;
    be_error *e = NULL;
    ck_assert_int_eq(be_batch_load_int64(&res, c, &o, keys, 3, &e), BE_E_VALIDATION);
    ck_assert_str_eq(be_error_field_name(e, 0), "where_params");
    ck_assert_ptr_null(res);
    be_error_free(e);
    be_params *wp = NULL;
    ck_assert_int_eq(be_params_new(&wp, NULL), BE_OK);
    ck_assert_int_eq(be_params_add_int64(wp, 0, NULL), BE_OK);
    o.where_params = wp; /* with its value: loads */
    ck_assert_int_eq(be_batch_load_int64(&res, c, &o, keys, 3, NULL), BE_OK);
    ck_assert_uint_eq(be_batch_result_key_count(res), 3);
    be_batch_result_free(res);
    be_params_free(wp);
  }
  be_conn_close(c);
}
END_TEST

static void expect_field(be_conn *c, const be_batch_options *o, const char *field) {
  be_batch_result *res = NULL;
  be_error *e = NULL;
  int64_t k = 1;
  ck_assert_int_eq(be_batch_load_int64(&res, c, o, &k, 1, &e), BE_E_VALIDATION);
  ck_assert_ptr_null(res);
  ck_assert_str_eq(be_error_field_name(e, 0), field);
  be_error_free(e);
  be_loader *l = NULL;
  ck_assert_int_eq(be_loader_new(&l, c, o, BE_TYPE_INT, NULL), BE_E_VALIDATION);
  ck_assert_ptr_null(l);
}

/* Words the database reads as values are no column names: a key column
 * Current_Timestamp once matched nothing and a column "null" loaded
 * NULLs, silently. A table may be called so (the database refuses it
 * clearly), and "user" stays a name (SQLite takes it as one). */
START_TEST(batch_rejects_value_keywords_as_names) {
  be_conn *c = open_conn();
  const char *cols[] = {"id", "null"}, *ord[] = {"TRUE DESC"};
  be_batch_options o = opts_of("posts", cols, 2, "user_id", NULL, 0);
  expect_field(c, &o, "columns[1]");
  cols[1] = "title";
  o.key_column = "Current_Timestamp";
  expect_field(c, &o, "key_column");
  o.key_column = "user_id";
  o.order_by = ord;
  o.order_by_count = 1;
  expect_field(c, &o, "order_by[0]");
  ord[0] = "nullable DESC"; /* a prefix is no keyword */
  cols[1] = "currentuser";
  be_error *e = NULL;
  be_batch_result *res = NULL;
  int64_t k = 1;
  ck_assert_int_eq(be_batch_load_int64(&res, c, &o, &k, 1, &e), BE_E_STORAGE); /* no such column */
  be_error_free(e);
  be_conn_close(c);
}
END_TEST

/* The names PostgreSQL reads as values and SQLite as names (batch.h). */
static const char *const value_words[] = {"user", "current_user", "session_user",
                                          "system_user", "current_role", "current_catalog",
                                          "current_schema", "localtime", "localtimestamp"};
#define N_VALUE_WORDS (sizeof value_words / sizeof value_words[0])

/* Table `table`: id, then a text column named by each value word. Row i
 * (1..4) has "user" ann, bob, ann, ann and <word><i> in the others. */
static void make_value_words_table(be_conn *c, const char *table) {
  char sql[1024], lower[65];
  size_t k = 0;
  for (; table[k] && k + 1 < sizeof lower; k++) lower[k] = (char)tolower((unsigned char)table[k]);
  lower[k] = '\0'; /* quoted: the name PostgreSQL gives the unquoted table */
  table = lower;
  int n = snprintf(sql, sizeof sql, "CREATE TABLE \"%s\"(id BIGINT PRIMARY KEY", table);
  for (size_t w = 0; w < N_VALUE_WORDS; w++) n += snprintf(sql + n, sizeof sql - (size_t)n, ", \"%s\" TEXT", value_words[w]);
  snprintf(sql + n, sizeof sql - (size_t)n, ")");
  exec_ok(c, sql);
  for (int i = 1; i <= 4; i++) {
    n = snprintf(sql, sizeof sql, "INSERT INTO \"%s\" VALUES (%d, '%s'", table, i, i == 2 ? "bob" : "ann");
    for (size_t w = 1; w < N_VALUE_WORDS; w++) n += snprintf(sql + n, sizeof sql - (size_t)n, ", '%s%d'", value_words[w], i);
    snprintf(sql + n, sizeof sql - (size_t)n, ")");
    exec_ok(c, sql);
  }
}

/* Rows first.. of a load of id + every word but "user": the ids want[],
 * and in each row every column holding its own name and the row's id. */
static void check_value_word_rows(const be_rows *rows, size_t first, size_t n, const int64_t *want,
                                  size_t nwant, const char *how) {
  ck_assert_msg(n == nwant, "%s: %zu rows, want %zu", how, n, nwant);
  for (size_t i = 0; i < n; i++) {
    int64_t id = be_rows_int64(rows, first + i, 0);
    ck_assert_msg(id == want[i], "%s: row %zu is id %lld", how, i, (long long)id);
    for (size_t w = 1; w < N_VALUE_WORDS; w++) {
      char expect[32];
      snprintf(expect, sizeof expect, "%s%lld", value_words[w], (long long)id);
      ck_assert_str_eq(be_rows_text(rows, first + i, (int32_t)w, NULL), expect);
    }
  }
}

/* Every value word as a column (in any case), the key column and the
 * ORDER BY, with a where clause, batch loaded and through the loader,
 * with ? and $N key lists and the one-parameter strategy. On PostgreSQL
 * without qualified names these read the session's user, schema or
 * clock: wrong columns, and no row matching a key. */
START_TEST(batch_names_postgres_reads_as_values_stay_columns) {
  be_conn *c = open_conn();
  make_value_words_table(c, "acct");
  const char *cols[] = {"id", "Current_User", "SESSION_USER", "System_User", "current_role",
                        "CURRENT_CATALOG", "current_schema", "LocalTime", "localtimestamp"};
  const char *ord[] = {"current_user DESC"}, *keys[] = {"ann", "bob", "nobody"};
  be_batch_options o = opts_of("acct", cols, N_VALUE_WORDS, "USER", ord, 1);
  be_params *wp = NULL;
  ck_assert_int_eq(be_params_new(&wp, NULL), BE_OK);
  ck_assert_int_eq(be_params_add_int64(wp, 4, NULL), BE_OK);
  o.where = on_pg() ? "id < $1" : "id < ?"; /* leaves ann's row 4 out */
  o.where_params = wp;
  static const int64_t ann[] = {3, 1}, bob[] = {2};
  const int32_t strategies[] = {BE_BATCH_IN_LIST, one_param_strategy()};
  for (int i = 0; i < 2; i++) {
    o.strategy = strategies[i];
    be_batch_result *r = NULL;
    be_error *e = NULL;
    ck_assert_msg(be_batch_load_text(&r, c, &o, keys, NULL, 3, &e) == BE_OK, "%s", be_error_message(e));
    const be_rows *rows = be_batch_result_rows(r);
    size_t first = 0, n = be_batch_result_find_text(r, "ann", BE_NUL_TERMINATED, &first);
    check_value_word_rows(rows, first, n, ann, 2, "batch, ann");
    n = be_batch_result_find_text(r, "bob", BE_NUL_TERMINATED, &first);
    check_value_word_rows(rows, first, n, bob, 1, "batch, bob");
    ck_assert_uint_eq(be_batch_result_find_text(r, "nobody", BE_NUL_TERMINATED, &first), 0);
    be_batch_result_free(r);
    be_loader *l = NULL;
    ck_assert_int_eq(be_loader_new(&l, c, &o, BE_TYPE_TEXT, NULL), BE_OK);
    for (size_t k = 0; k < 3; k++) ck_assert_int_eq(be_loader_want_text(l, keys[k], BE_NUL_TERMINATED, NULL), BE_OK);
    ck_assert_int_eq(be_loader_get_text(&rows, &first, &n, l, "ann", BE_NUL_TERMINATED, NULL), BE_OK);
    check_value_word_rows(rows, first, n, ann, 2, "loader, ann");
    ck_assert_int_eq(be_loader_get_text(&rows, &first, &n, l, "bob", BE_NUL_TERMINATED, NULL), BE_OK);
    check_value_word_rows(rows, first, n, bob, 1, "loader, bob");
    be_loader_free(l);
  }
  be_params_free(wp);
  be_conn_close(c);
}
END_TEST

/* SQLite refuses CAST and RAISE before a dot, so from tables of those
 * names the value words are qualified "cast".user: both databases load.
 * (PostgreSQL reserves CAST as a table name; RAISE it takes.) */
START_TEST(batch_value_words_from_tables_named_cast_or_raise) {
  be_conn *c = open_conn();
  const char *tables[] = {"RAISE", "cast"}, *keys[] = {"ann", "bob"};
  const char *cols[] = {"id", "current_user", "LOCALTIME"}, *ord[] = {"user DESC", "id"};
  static const int64_t ann[] = {1, 3, 4}, bob[] = {2};
  for (int t = 0; t < (on_pg() ? 1 : 2); t++) {
    make_value_words_table(c, tables[t]);
    be_batch_options o = opts_of(tables[t], cols, 3, "user", ord, 2);
    be_batch_result *r = NULL;
    be_error *e = NULL;
    ck_assert_msg(be_batch_load_text(&r, c, &o, keys, NULL, 2, &e) == BE_OK, "%s: %s", tables[t],
                  be_error_message(e));
    const be_rows *rows = be_batch_result_rows(r);
    size_t first = 0, n = be_batch_result_find_text(r, "ann", BE_NUL_TERMINATED, &first);
    ck_assert_uint_eq(n, 3);
    for (size_t i = 0; i < n; i++) ck_assert_int_eq(be_rows_int64(rows, first + i, 0), ann[i]);
    ck_assert_str_eq(be_rows_text(rows, first, 1, NULL), "current_user1");
    ck_assert_str_eq(be_rows_text(rows, first + 2, 2, NULL), "localtime4");
    n = be_batch_result_find_text(r, "bob", BE_NUL_TERMINATED, &first);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(be_rows_int64(rows, first, 0), bob[0]);
    be_batch_result_free(r);
  }
  be_conn_close(c);
}
END_TEST

/* The statement reads the key column after the columns: SQLite's 2000
 * result columns hold BE_BATCH_MAX_COLUMNS and no more, PostgreSQL's
 * 1664 hold 1663. One more column is BE_E_VALIDATION on "columns" before
 * any SQL (it used to pass and fail to prepare on SQLite). SQLite takes
 * 2000 ORDER BY terms; the load takes BE_BATCH_MAX_COLUMNS, and one more
 * is BE_E_VALIDATION on "order_by" (without a limit 2001 failed to
 * prepare). */
START_TEST(batch_most_columns_and_order_terms) {
  be_conn *c = open_conn();
  static const char *cols[BE_BATCH_MAX_COLUMNS + 1];
  for (size_t i = 0; i < BE_BATCH_MAX_COLUMNS + 1; i++) cols[i] = i % 2 ? "title" : "id";
  size_t most = on_pg() ? 1663 : BE_BATCH_MAX_COLUMNS; /* odd: the last is "id" */
  be_batch_options o = opts_of("posts", cols, most, "user_id", NULL, 0);
  be_batch_result *r = NULL;
  be_error *e = NULL;
  int64_t keys[] = {1, 2};
  ck_assert_msg(be_batch_load_int64(&r, c, &o, keys, 2, &e) == BE_OK, "%s", be_error_message(e));
  const be_rows *rows = be_batch_result_rows(r);
  ck_assert_int_eq(be_rows_column_count(rows), (int32_t)most);
  ck_assert_uint_gt(be_rows_count(rows), 0);
  for (size_t i = 0; i < be_rows_count(rows); i++) { /* the last columns are the ones named */
    ck_assert_int_eq(be_rows_int64(rows, i, (int32_t)most - 1), be_rows_int64(rows, i, 0));
    ck_assert_str_eq(be_rows_text(rows, i, (int32_t)most - 2, NULL), be_rows_text(rows, i, 1, NULL));
  }
  be_batch_result_free(r);
  o.column_count = BE_BATCH_MAX_COLUMNS + 1;
  expect_field(c, &o, "columns");
  static const char *ord[BE_BATCH_MAX_COLUMNS + 1];
  for (size_t i = 0; i < BE_BATCH_MAX_COLUMNS + 1; i++) ord[i] = i % 2 ? "title DESC" : "id";
  o = opts_of("posts", cols, 2, "user_id", ord, BE_BATCH_MAX_COLUMNS);
  ck_assert_msg(be_batch_load_int64(&r, c, &o, keys, 2, &e) == BE_OK, "%s", be_error_message(e));
  ck_assert_uint_gt(be_rows_count(be_batch_result_rows(r)), 0);
  be_batch_result_free(r);
  o.order_by_count = BE_BATCH_MAX_COLUMNS + 1;
  expect_field(c, &o, "order_by");
  be_conn_close(c);
}
END_TEST

START_TEST(batch_rejects_injection_in_names) {
  be_conn *c = open_conn();
  const char *cols[] = {"id", "title", "title FROM users --"};
  const char *ord[] = {"id; DROP TABLE posts"};
  be_batch_options o = BE_BATCH_OPTIONS_INIT;
  o.table = "posts; DROP TABLE posts";
  o.columns = cols;
  o.column_count = 2;
  o.key_column = "user_id";
  expect_field(c, &o, "table");
  o.table = "\"posts\"";
  expect_field(c, &o, "table");
  o.table = NULL;
  expect_field(c, &o, "table");
  o.table = "posts";
  o.column_count = 3;
  expect_field(c, &o, "columns[2]");
  o.column_count = 0;
  expect_field(c, &o, "columns");
  o.column_count = 2;
  o.key_column = "user_id) OR 1=1 OR (user_id";
  expect_field(c, &o, "key_column");
  o.key_column = "1user";
  expect_field(c, &o, "key_column");
  o.key_column = "user_id";
  o.order_by = ord;
  o.order_by_count = 1;
  expect_field(c, &o, "order_by[0]");
  ord[0] = "id DESCENDING";
  expect_field(c, &o, "order_by[0]");
  ord[0] = "id  DESC";
  expect_field(c, &o, "order_by[0]");
  ord[0] = "id DESC";
  o.relation = 7;
  expect_field(c, &o, "relation");
  o.relation = BE_BATCH_MANY;
  o.strategy = 9;
  expect_field(c, &o, "strategy");
  o.strategy = BE_BATCH_AUTO;
  o.max_chunk = -1;
  expect_field(c, &o, "max_chunk");
  o.max_chunk = 0;
  /* a long but valid identifier of 65 characters is still too long */
  char longname[70];
  memset(longname, 'a', 65);
  longname[65] = '\0';
  o.table = longname;
  expect_field(c, &o, "table");
  /* misuse */
  o.table = "posts";
  be_batch_result *res = NULL;
  int64_t k = 1;
  ck_assert_int_eq(be_batch_load_int64(NULL, c, &o, &k, 1, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_batch_load_int64(&res, NULL, &o, &k, 1, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_batch_load_int64(&res, c, NULL, &k, 1, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_batch_load_int64(&res, c, &o, NULL, 1, NULL), BE_E_MISUSE);
  o.version = 99;
  ck_assert_int_eq(be_batch_load_int64(&res, c, &o, &k, 1, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_batch_options_init(&o, 99), BE_E_MISUSE);
  ck_assert_int_eq(be_batch_options_init(&o, BE_BATCH_OPTIONS_VERSION), BE_OK);
  ck_assert_ptr_null(o.table);
  ck_assert_int_eq(be_batch_default_strategy(NULL), BE_BATCH_IN_LIST);
  ck_assert_int_eq(be_batch_default_strategy(be_sqlite_driver()), BE_BATCH_IN_LIST);
  if (on_pg()) ck_assert_int_eq(be_batch_default_strategy(drv), BE_BATCH_ARRAY);
  be_batch_result_free(NULL);
  ck_assert_uint_eq(be_batch_result_key_count(NULL), 0);
  ck_assert_uint_eq(be_batch_result_group(NULL, 0, NULL), 0);
  /* posts survived */
  be_rows *r = NULL;
  ck_assert_int_eq(be_rows_query(&r, c, "SELECT count(*) FROM posts", NULL, NULL), BE_OK);
  ck_assert_int_gt(be_rows_int64(r, 0, 0), 0);
  be_rows_free(r);
  be_conn_close(c);
}
END_TEST

START_TEST(batch_one_to_one_and_empty) {
  be_conn *c = open_conn();
  const char *cols[] = {"name"};
  be_batch_options o = BE_BATCH_OPTIONS_INIT;
  o.table = "users";
  o.columns = cols;
  o.column_count = 1;
  o.key_column = "id";
  o.relation = BE_BATCH_ONE;
  int64_t keys[] = {5, 3, 5, 4000, 3};
  be_batch_result *res = NULL;
  ck_assert_int_eq(be_batch_load_int64(&res, c, &o, keys, 5, NULL), BE_OK);
  ck_assert_uint_eq(be_batch_result_key_count(res), 3);
  size_t first;
  ck_assert_uint_eq(be_batch_result_find_int64(res, 3, &first), 1);
  ck_assert_str_eq(be_rows_text(be_batch_result_rows(res), first, 0, NULL), "user 3");
  ck_assert_uint_eq(be_batch_result_find_int64(res, 4000, &first), 0);
  ck_assert_str_eq(be_rows_text(be_batch_result_rows(res), 0, 0, NULL), "user 5"); /* key order */
  be_batch_result_free(res);
  /* one-to-one over a one-to-many relation: conflict */
  o.table = "posts";
  o.key_column = "user_id";
  const char *pc[] = {"title"};
  o.columns = pc;
  int64_t many[] = {1, 2, 3, 4, 5, 6};
  be_error *e = NULL;
  ck_assert_int_eq(be_batch_load_int64(&res, c, &o, many, 6, &e), BE_E_CONFLICT);
  ck_assert_ptr_null(res);
  be_error_free(e);
  /* no keys: no statement, empty result with the columns named */
  o.relation = BE_BATCH_MANY;
  be_scope *sc = NULL;
  ck_assert_int_eq(be_scope_begin(&sc, c, NULL, NULL), BE_OK);
  ck_assert_int_eq(be_batch_load_int64(&res, c, &o, NULL, 0, NULL), BE_OK);
  ck_assert_int_eq(be_scope_query_count(sc), 0);
  ck_assert_uint_eq(be_rows_count(be_batch_result_rows(res)), 0);
  ck_assert_str_eq(be_rows_column_name(be_batch_result_rows(res), 0), "title");
  be_batch_result_free(res);
  /* more keys than the real bind limit: chunked at it */
  size_t n = (size_t)be_conn_bind_limit(c) + 100;
  int64_t *big = malloc(n * sizeof *big);
  for (size_t i = 0; i < n; i++) big[i] = (int64_t)i + 1;
  o.strategy = BE_BATCH_IN_LIST;
  ck_assert_int_eq(be_batch_load_int64(&res, c, &o, big, n, NULL), BE_OK);
  ck_assert_int_eq(be_scope_query_count(sc), 2);
  ck_assert_uint_eq(be_batch_result_key_count(res), n);
  be_batch_result_free(res);
  o.strategy = one_param_strategy();
  ck_assert_int_eq(be_batch_load_int64(&res, c, &o, big, n, NULL), BE_OK);
  ck_assert_int_eq(be_scope_query_count(sc), 3); /* one statement */
  be_batch_result_free(res);
  /* SQLite has no array parameters (BE_FEATURE_ARRAY_PARAM), PostgreSQL no
   * json_each: refused, typed */
  o.strategy = on_pg() ? BE_BATCH_JSON_EACH : BE_BATCH_ARRAY;
  TU_EXPECT_ERR(BE_E_UNSUPPORTED, be_batch_load_int64(&res, c, &o, big, n, &tu_e));
  ck_assert_ptr_null(res);
  o.strategy = BE_BATCH_ARRAY + 1;
  TU_EXPECT_ERR(BE_E_VALIDATION, be_batch_load_int64(&res, c, &o, big, n, &tu_e));
  ck_assert_int_eq(be_scope_query_count(sc), 3); /* neither ran a statement */
  free(big);
  be_scope_free(sc);
  be_conn_close(c);
}
END_TEST

START_TEST(batch_dead_connection) {
  be_driver *fd = NULL;
  be_fault *f = NULL;
  ck_assert_int_eq(be_fault_driver_new(&fd, &f, drv, NULL), BE_OK);
  be_conn *c = NULL;
  ck_assert_int_eq(be_conn_open(&c, fd, dsn, NULL), BE_OK);
  const char *cols[] = {"title"};
  be_batch_options o = BE_BATCH_OPTIONS_INIT;
  o.table = "posts";
  o.columns = cols;
  o.column_count = 1;
  o.key_column = "user_id";
  o.max_chunk = 2;
  int64_t keys[] = {1, 2, 3, 4, 5};
  be_batch_result *res = NULL;
  be_error *e = NULL;
  /* the second chunk's step fails */
  ck_assert_int_eq(be_fault_set(f, BE_FAULT_OP_STEP, BE_FAULT_NTH, 4, BE_E_STORAGE, NULL), BE_OK);
  ck_assert_int_eq(be_batch_load_int64(&res, c, &o, keys, 5, &e), BE_E_STORAGE);
  ck_assert_ptr_null(res);
  be_error_free(e);
  be_fault_clear(f, BE_FAULT_OP_ALL);
  ck_assert_int_eq(be_fault_lose_connections(f, NULL), BE_OK);
  ck_assert_int_eq(be_batch_load_int64(&res, c, &o, keys, 5, &e), BE_E_CONN_LOST);
  ck_assert(be_error_is_retryable(e));
  be_error_free(e);
  be_loader *l = NULL;
  ck_assert_int_eq(be_loader_new(&l, c, &o, BE_TYPE_INT, NULL), BE_OK);
  const be_rows *rows;
  size_t first, cnt;
  ck_assert_int_eq(be_loader_get_int64(&rows, &first, &cnt, l, 1, NULL), BE_E_CONN_LOST);
  ck_assert_uint_eq(be_loader_pending_count(l), 0);
  be_loader_free(l);
  be_conn_close(c);
  be_fault_free(f);
}
END_TEST

/* 100,000 keys in one statement: the default strategy on PostgreSQL (one
 * array parameter), json_each on SQLite; every post of the 200 users
 * comes back, keys without rows are kept in order. */
START_TEST(batch_100k_keys_one_statement) {
  be_conn *c = open_conn();
  be_scope *sc = NULL;
  ck_assert_int_eq(be_scope_begin(&sc, c, NULL, NULL), BE_OK);
  const char *cols[] = {"id", "user_id"};
  be_batch_options o = BE_BATCH_OPTIONS_INIT;
  o.table = "posts";
  o.columns = cols;
  o.column_count = 2;
  o.key_column = "user_id";
  o.strategy = on_pg() ? BE_BATCH_AUTO : BE_BATCH_JSON_EACH;
  size_t n = 100000;
  int64_t *keys = malloc(n * sizeof *keys);
  ck_assert_ptr_nonnull(keys);
  for (size_t i = 0; i < n; i++) keys[i] = (int64_t)(n - i); /* descending: 200..1 come last */
  be_batch_result *res = NULL;
  be_error *e = NULL;
  int rc = be_batch_load_int64(&res, c, &o, keys, n, &e);
  ck_assert_msg(rc == BE_OK, "%s", be_error_message(e));
  ck_assert_int_eq(be_scope_query_count(sc), 1);
  ck_assert_uint_eq(be_batch_result_key_count(res), n);
  ck_assert_int_eq(be_batch_result_key_int64(res, 0), (int64_t)n);
  be_rows *all = NULL;
  ck_assert_int_eq(be_rows_query(&all, c, "SELECT count(*) FROM posts", NULL, NULL), BE_OK);
  ck_assert_uint_eq(be_rows_count(be_batch_result_rows(res)), (size_t)be_rows_int64(all, 0, 0));
  be_rows_free(all);
  size_t first;
  ck_assert_uint_eq(be_batch_result_find_int64(res, 150000, &first), 0); /* not asked for */
  ck_assert_uint_eq(be_batch_result_find_int64(res, 99999, &first), 0);  /* asked, no rows */
  be_batch_result_free(res);
  free(keys);
  be_scope_free(sc);
  be_conn_close(c);
}
END_TEST

/* ---- loader ---- */

/* A text-keyed loader: rejects keys with NUL, batches every wanted owner. */
static void check_text_loader(be_conn *c) {
  const char *tc[] = {"tag"};
  be_batch_options t = BE_BATCH_OPTIONS_INIT;
  t.table = "tags";
  t.columns = tc;
  t.column_count = 1;
  t.key_column = "owner";
  be_loader *l = NULL;
  ck_assert_int_eq(be_loader_new(&l, c, &t, BE_TYPE_TEXT, NULL), BE_OK);
  for (size_t i = 0; i < N_OWNERS; i++) ck_assert_int_eq(be_loader_want_text(l, text_owners[i], BE_NUL_TERMINATED, NULL), BE_OK);
  be_error *e = NULL;
  ck_assert_int_eq(be_loader_want_text(l, "a\0b", 3, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "key");
  be_error_free(e);
  const be_rows *rows;
  size_t first, cnt;
  ck_assert_int_eq(be_loader_get_text(&rows, &first, &cnt, l, "O'Brien", BE_NUL_TERMINATED, NULL), BE_OK);
  ck_assert_uint_eq(cnt, 3);
  ck_assert_int_eq(be_loader_get_text(&rows, &first, &cnt, l, "\xf0\x9f\x98\x80", BE_NUL_TERMINATED, NULL), BE_OK);
  ck_assert_int_eq(be_loader_dispatch_count(l), 1);
  ck_assert_int_eq(be_loader_get_int64(&rows, &first, &cnt, l, 1, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_loader_get_text(&rows, &first, &cnt, l, NULL, 0, NULL), BE_E_MISUSE);
  be_loader_free(l);
}

START_TEST(loader_dispatches_once) {
  be_conn *c = open_conn();
  be_scope *sc = NULL;
  ck_assert_int_eq(be_scope_begin(&sc, c, NULL, NULL), BE_OK);
  const char *cols[] = {"id", "title", "score", "data"};
  const char *ord[] = {"id"};
  be_batch_options o = BE_BATCH_OPTIONS_INIT;
  o.table = "posts";
  o.columns = cols;
  o.column_count = 4;
  o.key_column = "user_id";
  o.order_by = ord;
  o.order_by_count = 1;
  be_loader *l = NULL;
  ck_assert_int_eq(be_loader_new(&l, c, &o, BE_TYPE_INT, NULL), BE_OK);
  cols[0] = "garbage"; /* the loader copied the options */
  for (int64_t u = 1; u <= 100; u++) ck_assert_int_eq(be_loader_want_int64(l, u % 60 + 1, NULL), BE_OK);
  ck_assert_uint_eq(be_loader_pending_count(l), 60);
  ck_assert_int_eq(be_scope_query_count(sc), 0);
  for (int64_t u = 1; u <= 60; u++) {
    const be_rows *rows;
    size_t first, cnt;
    ck_assert_int_eq(be_loader_get_int64(&rows, &first, &cnt, l, u, NULL), BE_OK);
    /* against a naive query */
    be_params *p = NULL;
    be_params_new(&p, NULL);
    be_params_add_int64(p, u, NULL);
    be_rows *naive = NULL;
    ck_assert_int_eq(be_rows_query(&naive, c, "SELECT id, title, score, data FROM posts WHERE user_id = ? ORDER BY id", p, NULL), BE_OK);
    ck_assert_uint_eq(cnt, be_rows_count(naive));
    for (size_t i = 0; i < cnt; i++) assert_same_row(rows, first + i, naive, i);
    be_rows_free(naive);
    be_params_free(p);
  }
  ck_assert_int_eq(be_loader_dispatch_count(l), 1);
  ck_assert_int_eq(be_scope_query_count(sc), 1 + 60); /* one batch + the naive checks */
  /* wanting loaded keys again costs nothing; a new key costs one more batch */
  ck_assert_int_eq(be_loader_want_int64(l, 5, NULL), BE_OK);
  ck_assert_uint_eq(be_loader_pending_count(l), 0);
  ck_assert_int_eq(be_loader_dispatch(l, NULL), BE_OK);
  ck_assert_int_eq(be_loader_dispatch_count(l), 1);
  const be_rows *rows;
  size_t first, cnt;
  be_error *e0 = NULL;
  int rc0 = be_loader_get_int64(&rows, &first, &cnt, l, 150, &e0);
  ck_assert_msg(rc0 == BE_OK, "%s", be_error_message(e0));
  ck_assert_int_eq(be_loader_dispatch_count(l), 2);
  ck_assert_int_eq(be_loader_get_int64(&rows, &first, &cnt, l, 9999, NULL), BE_OK);
  ck_assert_uint_eq(cnt, 0);
  /* misuse */
  ck_assert_int_eq(be_loader_want_text(l, "x", 1, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_loader_get_int64(NULL, &first, &cnt, l, 1, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_loader_want_int64(NULL, 1, NULL), BE_E_MISUSE);
  be_loader *l2 = l;
  ck_assert_int_eq(be_loader_new(&l2, c, &o, BE_TYPE_FLOAT, NULL), BE_E_MISUSE);
  ck_assert_ptr_null(l2);
  be_loader_clear(l);
  ck_assert_int_eq(be_loader_get_int64(&rows, &first, &cnt, l, 150, NULL), BE_OK);
  ck_assert_int_eq(be_loader_dispatch_count(l), 4);
  be_loader_free(l);
  be_loader_free(NULL);
  check_text_loader(c);
  be_scope_free(sc);
  be_conn_close(c);
}
END_TEST

/* ---- allocation failures: every path cleans up ---- */

static int alloc_body(void *arg) {
  (void)arg;
  be_conn *c = NULL;
  int rc = be_conn_open(&c, drv, dsn, NULL);
  if (rc != BE_OK) return rc;
  be_params *wp = NULL;
  be_batch_result *res = NULL;
  be_loader *l = NULL;
  be_scope *sc = NULL;
  be_rows *r = NULL;
  const char *cols[] = {"id", "title"};
  const char *ord[] = {"id DESC"};
  be_batch_options o = BE_BATCH_OPTIONS_INIT;
  o.table = "posts";
  o.columns = cols;
  o.column_count = 2;
  o.key_column = "user_id";
  o.order_by = ord;
  o.order_by_count = 1;
  o.where = "deleted = ?";
  o.max_chunk = 8;
  int64_t keys[20];
  for (int i = 0; i < 20; i++) keys[i] = i % 15 + 1;
  const char *tk[] = {"alice", "bob", "O'Brien", "alice"};
  if ((rc = be_scope_begin(&sc, c, NULL, NULL)) != BE_OK) goto done;
  if ((rc = be_params_new(&wp, NULL)) != BE_OK) goto done;
  if ((rc = be_params_add_int64(wp, 0, NULL)) != BE_OK) goto done;
  o.where_params = wp;
  if ((rc = be_batch_load_int64(&res, c, &o, keys, 20, NULL)) != BE_OK) goto done;
  be_batch_result_free(res);
  res = NULL;
  o.strategy = one_param_strategy();
  if ((rc = be_batch_load_int64(&res, c, &o, keys, 20, NULL)) != BE_OK) goto done;
  be_batch_result_free(res);
  res = NULL;
  o.table = "tags";
  o.key_column = "owner";
  cols[0] = "tag";
  cols[1] = "owner";
  ord[0] = "tag";
  o.where = NULL;
  o.where_params = NULL;
  if ((rc = be_batch_load_text(&res, c, &o, tk, NULL, 4, NULL)) != BE_OK) goto done;
  if ((rc = be_loader_new(&l, c, &o, BE_TYPE_TEXT, NULL)) != BE_OK) goto done;
  for (int i = 0; i < 4; i++)
    if ((rc = be_loader_want_text(l, tk[i], BE_NUL_TERMINATED, NULL)) != BE_OK) goto done;
  const be_rows *rows;
  size_t first, cnt;
  if ((rc = be_loader_get_text(&rows, &first, &cnt, l, "bob", 3, NULL)) != BE_OK) goto done;
  rc = be_rows_query(&r, c, "SELECT id, title FROM posts LIMIT 40", NULL, NULL);
done:
  be_rows_free(r);
  be_loader_free(l);
  be_batch_result_free(res);
  be_params_free(wp);
  be_scope_free(sc);
  be_conn_close(c);
  return rc;
}

START_TEST(batch_allocation_failures_do_not_leak) {
  TU_FOR_EACH_ALLOC_FAILURE(alloc_body, NULL);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("batch");
  TCase *tc = tcase_create("batch");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, rows_typed_access);
  tcase_add_test(tc, batch_int_matches_naive);
  tcase_add_test(tc, batch_text_keys_bound_safely);
  tcase_add_test(tc, batch_keys_equal_in_sql_count_a_row_once);
  tcase_add_test(tc, batch_where_placeholders_need_their_values);
  tcase_add_test(tc, batch_rejects_injection_in_names);
  tcase_add_test(tc, batch_rejects_value_keywords_as_names);
  tcase_add_test(tc, batch_names_postgres_reads_as_values_stay_columns);
  tcase_add_test(tc, batch_most_columns_and_order_terms);
  tcase_add_test(tc, batch_value_words_from_tables_named_cast_or_raise);
  tcase_add_test(tc, batch_one_to_one_and_empty);
  tcase_add_test(tc, batch_dead_connection);
  tcase_add_test(tc, batch_100k_keys_one_statement);
  tcase_add_test(tc, loader_dispatches_once);
  tcase_add_test(tc, batch_allocation_failures_do_not_leak);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(suite)
