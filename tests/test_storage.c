/* SPDX-License-Identifier: MIT */
/* be_conn / be_stmt over the built-in SQLite driver: types, the statement
 * cache, error translation, busy handling, savepoints, observer hooks. */
#include "testutil.h"

#include <pthread.h>
#include <sqlite3.h>
#include <time.h>

#include <backend/batch.h>
#include <backend/pool.h>
#include <backend/query_stats.h>
#include <backend/rows.h>
#include <backend/scope.h>
#include <backend/slowlog.h>
#include <backend/sqlite.h>
#include <backend/stmt_stats.h>
#include <backend/tx.h>

#include "alloc.h"
#include "pg_sql.h"
#include "clock.h" /* be__clock_coarse_tick_ns */
#include "storage.h"

static char *tmpdir;
static char dbpath[512];

static void setup(void) {
  tmpdir = tu_tempdir();
  snprintf(dbpath, sizeof dbpath, "%s/test.db", tmpdir);
}
static void teardown(void) { tu_rmdir(tmpdir); }

static be_conn *open_mem(void) {
  be_conn *c = NULL;
  be_error *e = NULL;
  ck_assert_int_eq(be_conn_open(&c, be_sqlite_driver(), ":memory:", &e), BE_OK);
  ck_assert_ptr_null(e);
  return c;
}

static be_conn *open_file(const be_driver *d) {
  be_conn *c = NULL;
  ck_assert_int_eq(be_conn_open(&c, d ? d : be_sqlite_driver(), dbpath, NULL), BE_OK);
  return c;
}

static void exec_ok(be_conn *c, const char *sql) {
  be_error *e = NULL;
  int rc = be_conn_exec(c, sql, &e);
  ck_assert_msg(rc == BE_OK, "%s: %s", sql, be_error_message(e));
}

static int64_t count_rows(be_conn *c, const char *table) {
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s", table);
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, sql, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  int64_t n = be_stmt_column_int64(s, 0);
  be_stmt_finalize(s);
  return n;
}

START_TEST(types_round_trip) {
  be_conn *c = open_mem();
  exec_ok(c, "CREATE TABLE t(i INTEGER, d REAL, s TEXT, b BLOB, n)");
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, "INSERT INTO t VALUES (?, ?, ?, ?, ?)", NULL), BE_OK);
  const char blob[] = {'a', 0, 'b', 0, 0, (char)0xff};
  const char *text = "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80";
  ck_assert_int_eq(be_stmt_bind_int64(s, 1, INT64_MIN, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_double(s, 2, 3.25e-300, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_text(s, 3, text, BE_NUL_TERMINATED, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_blob(s, 4, blob, sizeof blob, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_null(s, 5, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_DONE);
  ck_assert_int_eq(be_conn_changes(c), 1);
  ck_assert_int_eq(be_conn_last_insert_id(c), 1);
  /* the same statement again: bindings were cleared by reset */
  ck_assert_int_eq(be_stmt_reset(s, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_int64(s, 1, INT64_MAX, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_blob(s, 4, NULL, 0, NULL), BE_OK); /* empty, not NULL */
  ck_assert_int_eq(be_stmt_bind_text(s, 3, "", 0, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_DONE);
  ck_assert_int_eq(be_conn_last_insert_id(c), 2);
  be_stmt_finalize(s);

  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT i, d, s, b, n FROM t ORDER BY rowid", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_column_count(s), 5);
  ck_assert_str_eq(be_stmt_column_name(s, 2), "s");
  ck_assert_ptr_null(be_stmt_column_name(s, 5));
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_int_eq(be_stmt_column_type(s, 0), BE_TYPE_INT);
  ck_assert_int_eq(be_stmt_column_int64(s, 0), INT64_MIN);
  ck_assert_int_eq(be_stmt_column_type(s, 1), BE_TYPE_FLOAT);
  ck_assert(be_stmt_column_double(s, 1) == 3.25e-300);
  ck_assert_int_eq(be_stmt_column_type(s, 2), BE_TYPE_TEXT);
  size_t len = 0;
  const char *t = be_stmt_column_text(s, 2, &len);
  ck_assert_uint_eq(len, strlen(text));
  ck_assert_str_eq(t, text);
  ck_assert_int_eq(be_stmt_column_type(s, 3), BE_TYPE_BLOB);
  const void *b = be_stmt_column_blob(s, 3, &len);
  ck_assert_uint_eq(len, sizeof blob);
  ck_assert(memcmp(b, blob, sizeof blob) == 0);
  ck_assert_int_eq(be_stmt_column_type(s, 4), BE_TYPE_NULL);
  /* out of range columns */
  ck_assert_int_eq(be_stmt_column_type(s, 9), BE_TYPE_NULL);
  ck_assert_int_eq(be_stmt_column_int64(s, -1), 0);
  ck_assert(be_stmt_column_double(s, 5) == 0.0);
  len = 7;
  ck_assert_ptr_null(be_stmt_column_text(s, 5, &len));
  ck_assert_uint_eq(len, 0);
  ck_assert_ptr_null(be_stmt_column_blob(s, 5, NULL));

  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_int_eq(be_stmt_column_int64(s, 0), INT64_MAX);
  ck_assert_int_eq(be_stmt_column_type(s, 1), BE_TYPE_NULL);
  ck_assert_int_eq(be_stmt_column_type(s, 3), BE_TYPE_BLOB);
  be_stmt_column_blob(s, 3, &len);
  ck_assert_uint_eq(len, 0);
  be_stmt_column_text(s, 2, &len);
  ck_assert_uint_eq(len, 0);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_DONE);
  be_stmt_finalize(s);
  be_conn_close(c);
}
END_TEST

/* Text and blob reads convert other types the way SQLite does, with the
 * length of what they return (the driver reads both through one column
 * lookup), and leave the value readable again as any type. */
START_TEST(column_text_converts_other_types) {
  be_conn *c = open_mem();
  be_stmt *s = NULL;
  ck_assert_int_eq(
    be_conn_prepare(&s, c, "SELECT -9223372036854775808, 2.5, x'41420043', NULL, 'h\xc3\xa9'", NULL),
    BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  size_t len = 99;
  ck_assert_str_eq(be_stmt_column_text(s, 0, &len), "-9223372036854775808");
  ck_assert_uint_eq(len, 20);
  ck_assert_int_eq(be_stmt_column_int64(s, 0), INT64_MIN);
  ck_assert_str_eq(be_stmt_column_text(s, 1, &len), "2.5");
  ck_assert_uint_eq(len, 3);
  const char *t = be_stmt_column_text(s, 2, &len); /* a blob as text: its bytes, NUL included */
  ck_assert_uint_eq(len, 4);
  ck_assert(memcmp(t, "AB\0C", 4) == 0);
  const unsigned char *b = be_stmt_column_blob(s, 2, &len);
  ck_assert_uint_eq(len, 4);
  ck_assert(memcmp(b, "AB\0C", 4) == 0);
  len = 99;
  ck_assert_ptr_null(be_stmt_column_text(s, 3, &len));
  ck_assert_uint_eq(len, 0);
  len = 99;
  ck_assert_ptr_null(be_stmt_column_blob(s, 3, &len));
  ck_assert_uint_eq(len, 0);
  ck_assert_str_eq(be_stmt_column_text(s, 4, &len), "h\xc3\xa9");
  ck_assert_uint_eq(len, 3);
  b = be_stmt_column_blob(s, 4, &len); /* text as a blob: its UTF-8 bytes */
  ck_assert_uint_eq(len, 3);
  ck_assert(memcmp(b, "h\xc3\xa9", 3) == 0);
  ck_assert_str_eq(be_stmt_column_text(s, 1, NULL), "2.5"); /* len may be NULL */
  be_stmt_finalize(s);
  be_conn_close(c);
}
END_TEST

/* Text read from a UTF-16 database is UTF-8 of the length given, a blob's
 * too (SQLite converts it as if it were UTF-16 text: the length must be
 * asked after the text, not before). */
START_TEST(column_text_is_utf8_in_a_utf16_database) {
  be_conn *c = open_mem();
  exec_ok(c, "PRAGMA encoding = 'UTF-16le'; CREATE TABLE t(x);"
             "INSERT INTO t VALUES ('h\xc3\xa9llo'), (12345), (x'4142')");
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT x FROM t ORDER BY rowid", NULL), BE_OK);
  const char *want[] = {"h\xc3\xa9llo", "12345", NULL}; /* then a blob */
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
    size_t len = 99;
    const char *got = be_stmt_column_text(s, 0, &len);
    if (want[i]) ck_assert_str_eq(got, want[i]);
    ck_assert_uint_eq(len, strlen(got));
  }
  be_stmt_finalize(s);
  be_conn_close(c);
}
END_TEST

/* A statement of sql prepared on c and stepped to its first row. */
static be_stmt *first_row(be_conn *c, const char *sql) {
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, sql, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  return s;
}

START_TEST(cached_statement_follows_schema_change) {
  be_conn *c = open_mem();
  exec_ok(c, "CREATE TABLE t(a); INSERT INTO t VALUES (1)");
  be_stmt *s = first_row(c, "SELECT * FROM t");
  ck_assert_int_eq(be_stmt_column_int64(s, 1), 0);
  be_stmt_finalize(s);
  exec_ok(c, "ALTER TABLE t ADD COLUMN b DEFAULT 7");
  s = first_row(c, "SELECT * FROM t"); /* cache hit */
  ck_assert_int_eq(be_stmt_column_count(s), 2);
  ck_assert_int_eq(be_stmt_column_int64(s, 1), 7);
  ck_assert_str_eq(be_stmt_column_name(s, 1), "b");
  be_stmt_finalize(s);
  be_stmt_cache_stats st = BE_STMT_CACHE_STATS_INIT;
  ck_assert_int_eq(be_conn_stmt_cache_stats_get(&st, c, NULL), BE_OK);
  ck_assert_int_eq(st.hits, 1);
  be_conn_close(c);
}
END_TEST

/* The built-in driver's statements keep their column count from the
 * prepare: a re-prepare after a schema change (SQLite's, inside the step)
 * may add columns, read again when an index is past the count, or drop
 * some, which SQLite reads as NULL itself; a whole-row read counts again. */
START_TEST(cached_statement_follows_columns_dropped_and_added) {
  be_conn *c = open_mem();
  exec_ok(c, "CREATE TABLE t(a, b, c); INSERT INTO t VALUES (1, 2, 3)");
  be_stmt *s = first_row(c, "SELECT * FROM t");
  ck_assert_int_eq(be_stmt_column_int64(s, 2), 3);
  be_stmt_finalize(s);
  exec_ok(c, "ALTER TABLE t DROP COLUMN b");
  s = first_row(c, "SELECT * FROM t"); /* cache hit */
  ck_assert_int_eq(be_stmt_column_count(s), 2);
  ck_assert_int_eq(be_stmt_column_int64(s, 1), 3);
  ck_assert_int_eq(be_stmt_column_int64(s, 2), 0); /* dropped: past the count */
  size_t n = 1;
  ck_assert_ptr_null(be_stmt_column_text(s, 2, &n));
  ck_assert_uint_eq(n, 0);
  ck_assert_ptr_null(be_stmt_column_name(s, 2));
  ck_assert_int_eq(be_stmt_column_type(s, 2), BE_TYPE_NULL);
  be_stmt_finalize(s);
  be_rows *r = NULL; /* the same cached statement, read whole */
  ck_assert_int_eq(be_rows_query(&r, c, "SELECT * FROM t", NULL, NULL), BE_OK);
  ck_assert_int_eq(be_rows_column_count(r), 2);
  ck_assert_int_eq(be_rows_int64(r, 0, 0), 1);
  ck_assert_int_eq(be_rows_int64(r, 0, 1), 3);
  be_rows_free(r);
  exec_ok(c, "ALTER TABLE t ADD COLUMN d DEFAULT 9");
  s = first_row(c, "SELECT * FROM t");
  ck_assert_int_eq(be_stmt_column_int64(s, 2), 9); /* past the count kept: read again */
  ck_assert_str_eq(be_stmt_column_text(s, 2, &n), "9");
  ck_assert_str_eq(be_stmt_column_name(s, 2), "d");
  be_stmt_finalize(s);
  be_stmt_cache_stats st = BE_STMT_CACHE_STATS_INIT;
  ck_assert_int_eq(be_conn_stmt_cache_stats_get(&st, c, NULL), BE_OK);
  ck_assert_int_eq(st.misses, 1); /* one statement all along */
  be_conn_close(c);
}
END_TEST

/* The names of the columns of a be_rows_query result, joined by ",". */
static void rows_shape(be_conn *c, char *out, size_t cap) {
  be_rows *r = NULL;
  be_error *e = NULL;
  int rc = be_rows_query(&r, c, "SELECT * FROM t", NULL, &e);
  ck_assert_msg(rc == BE_OK, "be_rows_query: %s", be_error_message(e));
  out[0] = '\0';
  for (int32_t i = 0; i < be_rows_column_count(r); i++) {
    size_t n = strlen(out);
    snprintf(out + n, cap - n, "%s%s", i ? "," : "", be_rows_column_name(r, i));
  }
  be_rows_free(r);
}

/* The first be_rows_query after a schema change, on the connection that
 * made it or on another one, has the new columns: the statement cached
 * before the change reports its old ones until a step prepares it again,
 * and the result's shape was once read before that step. */
START_TEST(rows_query_right_after_a_schema_change) {
  be_conn *c = open_file(NULL), *other = open_file(NULL);
  char shape[128];
  exec_ok(c, "CREATE TABLE t(a)");
  rows_shape(c, shape, sizeof shape);
  ck_assert_str_eq(shape, "a"); /* no row: the shape comes from a done step */
  exec_ok(c, "INSERT INTO t VALUES (1)");
  rows_shape(c, shape, sizeof shape);
  exec_ok(c, "ALTER TABLE t ADD COLUMN b DEFAULT 2");
  rows_shape(c, shape, sizeof shape);
  ck_assert_str_eq(shape, "a,b");
  exec_ok(c, "ALTER TABLE t RENAME COLUMN a TO z");
  rows_shape(c, shape, sizeof shape);
  ck_assert_str_eq(shape, "z,b");
  exec_ok(other, "ALTER TABLE t ADD COLUMN d DEFAULT 4");
  rows_shape(c, shape, sizeof shape);
  ck_assert_str_eq(shape, "z,b,d");
  exec_ok(c, "DELETE FROM t; ALTER TABLE t DROP COLUMN b");
  rows_shape(c, shape, sizeof shape); /* no row again */
  ck_assert_str_eq(shape, "z,d");
  be_stmt_cache_stats st = BE_STMT_CACHE_STATS_INIT;
  ck_assert_int_eq(be_conn_stmt_cache_stats_get(&st, c, NULL), BE_OK);
  ck_assert_int_eq(st.misses, 1); /* one cached statement all along */
  be_conn_close(other);
  be_conn_close(c);
}
END_TEST

/* A column's name read after the step that prepared the statement again
 * is the new one (a name read before it is not valid any more: the
 * header says until the next step, reset or finalize). */
START_TEST(column_name_after_a_schema_change) {
  be_conn *c = open_mem();
  exec_ok(c, "CREATE TABLE t(alpha); INSERT INTO t VALUES (1)");
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT * FROM t", NULL), BE_OK);
  ck_assert_str_eq(be_stmt_column_name(s, 0), "alpha");
  exec_ok(c, "ALTER TABLE t RENAME COLUMN alpha TO beta");
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_str_eq(be_stmt_column_name(s, 0), "beta");
  be_stmt_finalize(s);
  be_conn_close(c);
}
END_TEST

START_TEST(text_must_be_utf8) {
  be_conn *c = open_mem();
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT ?", NULL), BE_OK);
  const char *bad[] = {"\xff", "\xc0\xaf", "ok\xe2\x82", "\xed\xa0\x80"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    be_error *e = NULL;
    ck_assert_int_eq(be_stmt_bind_text(s, 1, bad[i], BE_NUL_TERMINATED, &e), BE_E_VALIDATION);
    ck_assert_int_eq(be_error_field_count(e), 1);
    ck_assert_str_eq(be_error_field_name(e, 0), "parameter");
    be_error_free(e);
  }
  /* an embedded NUL is not text */
  ck_assert_int_eq(be_stmt_bind_text(s, 1, "a\0b", 3, NULL), BE_E_VALIDATION);
  ck_assert_int_eq(be_stmt_bind_text(s, 1, NULL, 0, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_stmt_bind_blob(s, 1, NULL, 3, NULL), BE_E_MISUSE);
  /* explicit length shorter than the string */
  ck_assert_int_eq(be_stmt_bind_text(s, 1, "abc\xff", 3, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_str_eq(be_stmt_column_text(s, 0, NULL), "abc");
  /* length 0 is the empty string, whatever the (non-NULL) pointer */
  ck_assert_int_eq(be_stmt_reset(s, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_text(s, 1, (const char *)1, 0, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_int_eq(be_stmt_column_type(s, 0), BE_TYPE_TEXT);
  ck_assert_str_eq(be_stmt_column_text(s, 0, NULL), "");
  be_stmt_finalize(s);

  /* the same rules for a parameter list */
  be_params *p = NULL;
  ck_assert_int_eq(be_params_new(&p, NULL), BE_OK);
  ck_assert_int_eq(be_params_add_text(p, (const char *)1, 0, NULL), BE_OK);
  ck_assert_int_eq(be_params_add_text(p, "xyz", BE_NUL_TERMINATED, NULL), BE_OK);
  be_error *e = NULL;
  ck_assert_int_eq(be_params_add_text(p, "a\0b", 3, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "params[2]");
  be_error_free(e);
  e = NULL;
  ck_assert_int_eq(be_params_add_text(p, "\xff", 1, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "params[2]");
  be_error_free(e);
  ck_assert_uint_eq(be_params_count(p), 2);
  be_rows *r = NULL;
  ck_assert_int_eq(be_rows_query(&r, c, "SELECT ?, ?", p, NULL), BE_OK);
  ck_assert_str_eq(be_rows_text(r, 0, 0, NULL), "");
  ck_assert_str_eq(be_rows_text(r, 0, 1, NULL), "xyz");
  be_rows_free(r);
  be_params_free(p);
  be_conn_close(c);
}
END_TEST

/* Misuse of the statement cache stats fills err. */
static void stmt_cache_stats_misuse(be_conn *c) {
  be_stmt_cache_stats st = BE_STMT_CACHE_STATS_INIT;
  be_error *e = NULL;
  ck_assert_int_eq(be_conn_stmt_cache_stats_get(&st, NULL, &e), BE_E_MISUSE);
  ck_assert_int_eq(be_error_code(e), BE_E_MISUSE);
  be_error_free(e);
  e = NULL;
  st.version = BE_STMT_CACHE_STATS_VERSION + 1;
  ck_assert_int_eq(be_conn_stmt_cache_stats_get(&st, c, &e), BE_E_MISUSE);
  ck_assert_ptr_nonnull(strstr(be_error_message(e), "version"));
  be_error_free(e);
}

/* The same SQL held twice: the second is a fresh, uncached statement. */
static void stmt_cache_same_sql_held_twice(be_conn *c, be_fault *f, const char *sql) {
  be_stmt *a = NULL, *b = NULL;
  ck_assert_int_eq(be_conn_prepare(&a, c, sql, NULL), BE_OK);
  ck_assert_int_eq(be_conn_prepare(&b, c, sql, NULL), BE_OK);
  ck_assert_ptr_ne(a, b);
  ck_assert_int_eq(be_fault_calls(f, BE_FAULT_OP_PREPARE), 2);
  ck_assert_int_eq(be__conn_open_stmts(c), 2);
  ck_assert_int_eq(be_stmt_bind_int64(a, 1, 1, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_int64(b, 1, 2, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(a, NULL), BE_ROW);
  ck_assert_int_eq(be_stmt_step(b, NULL), BE_ROW);
  ck_assert_int_eq(be_stmt_column_int64(a, 0), 2);
  ck_assert_int_eq(be_stmt_column_int64(b, 0), 3);
  be_stmt_finalize(b);
  ck_assert_int_eq(be_fault_calls(f, BE_FAULT_OP_FINALIZE), 1); /* b was not cached */
  be_stmt_finalize(a);
  ck_assert_int_eq(be_fault_calls(f, BE_FAULT_OP_FINALIZE), 1);
  ck_assert_int_eq(be__conn_open_stmts(c), 0);
}

START_TEST(statement_cache_hits_pay_no_prepare) {
  be_driver *fd = NULL;
  be_fault *f = NULL;
  ck_assert_int_eq(be_fault_driver_new(&fd, &f, be_sqlite_driver(), NULL), BE_OK);
  be_conn *c = NULL;
  ck_assert_int_eq(be_conn_open(&c, fd, ":memory:", NULL), BE_OK);
  const char *sql = "SELECT ? + 1";
  for (int i = 0; i < 10; i++) {
    be_stmt *s = NULL;
    ck_assert_int_eq(be_conn_prepare(&s, c, sql, NULL), BE_OK);
    if (i < 9) ck_assert_int_eq(be_stmt_bind_int64(s, 1, i, NULL), BE_OK);
    ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
    /* bindings do not leak from one use to the next: unbound is NULL */
    if (i == 9) ck_assert_int_eq(be_stmt_column_type(s, 0), BE_TYPE_NULL);
    else ck_assert_int_eq(be_stmt_column_int64(s, 0), i + 1);
    be_stmt_finalize(s); /* mid-result: reset on the way back */
  }
  ck_assert_int_eq(be_fault_calls(f, BE_FAULT_OP_PREPARE), 1);
  be_stmt_cache_stats st = BE_STMT_CACHE_STATS_INIT;
  ck_assert_int_eq(be_conn_stmt_cache_stats_get(&st, c, NULL), BE_OK);
  ck_assert_int_eq(st.hits, 9);
  ck_assert_int_eq(st.misses, 1);
  ck_assert_int_eq(st.size, 1);
  stmt_cache_stats_misuse(c);

  stmt_cache_same_sql_held_twice(c, f, sql);

  /* LRU eviction with a bound of 2 */
  ck_assert_int_eq(be_conn_set_stmt_cache_size(c, 2, NULL), BE_OK);
  ck_assert_int_eq(be_fault_calls(f, BE_FAULT_OP_FINALIZE), 2); /* flushed */
  be_fault_reset_counts(f);
  const char *q[] = {"SELECT 1", "SELECT 2", "SELECT 3"};
  for (int i = 0; i < 3; i++) {
    be_stmt *s = NULL;
    ck_assert_int_eq(be_conn_prepare(&s, c, q[i], NULL), BE_OK);
    be_stmt_finalize(s);
  }
  ck_assert_int_eq(be_fault_calls(f, BE_FAULT_OP_PREPARE), 3);
  ck_assert_int_eq(be_fault_calls(f, BE_FAULT_OP_FINALIZE), 1); /* "SELECT 1" evicted */
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, q[1], NULL), BE_OK); /* still cached */
  be_stmt_finalize(s);
  ck_assert_int_eq(be_fault_calls(f, BE_FAULT_OP_PREPARE), 3);
  ck_assert_int_eq(be_conn_prepare(&s, c, q[0], NULL), BE_OK); /* was evicted */
  be_stmt_finalize(s);
  ck_assert_int_eq(be_fault_calls(f, BE_FAULT_OP_PREPARE), 4);

  /* held statements are never evicted: all slots held -> uncached */
  be_stmt *h1 = NULL, *h2 = NULL, *h3 = NULL;
  ck_assert_int_eq(be_conn_prepare(&h1, c, "SELECT 10", NULL), BE_OK);
  ck_assert_int_eq(be_conn_prepare(&h2, c, "SELECT 11", NULL), BE_OK);
  ck_assert_int_eq(be_conn_prepare(&h3, c, "SELECT 12", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(h1, NULL), BE_ROW);
  ck_assert_int_eq(be_stmt_column_int64(h1, 0), 10);
  be_stmt_finalize(h3);
  be_stmt_finalize(h2);
  be_stmt_finalize(h1);

  /* a cache of 0 prepares every time */
  ck_assert_int_eq(be_conn_set_stmt_cache_size(c, 0, NULL), BE_OK);
  be_fault_reset_counts(f);
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT 1", NULL), BE_OK);
    be_stmt_finalize(s);
  }
  ck_assert_int_eq(be_fault_calls(f, BE_FAULT_OP_PREPARE), 3);
  ck_assert_int_eq(be_conn_set_stmt_cache_size(c, -1, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_conn_set_stmt_cache_size(c, 64, NULL), BE_OK);
  be_conn_close(c);
  be_fault_free(f);
}
END_TEST

/* Prepare sql on c and give it back; returns the driver prepares it cost. */
static int64_t prepare_cost(be_conn *c, be_fault *f, const char *sql) {
  int64_t before = be_fault_calls(f, BE_FAULT_OP_PREPARE);
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, sql, NULL), BE_OK);
  be_stmt_finalize(s);
  return be_fault_calls(f, BE_FAULT_OP_PREPARE) - before;
}

/* Eviction passes over a statement someone holds, even the least recently
 * used one, and takes the least recently given back idle one; a statement
 * given back counts as used then. */
START_TEST(statement_cache_evicts_around_held_ones) {
  be_driver *fd = NULL;
  be_fault *f = NULL;
  ck_assert_int_eq(be_fault_driver_new(&fd, &f, be_sqlite_driver(), NULL), BE_OK);
  be_conn *c = NULL;
  ck_assert_int_eq(be_conn_open(&c, fd, ":memory:", NULL), BE_OK);
  ck_assert_int_eq(be_conn_set_stmt_cache_size(c, 2, NULL), BE_OK);
  be_stmt *a = NULL;
  ck_assert_int_eq(be_conn_prepare(&a, c, "SELECT 'a'", NULL), BE_OK); /* held, oldest */
  ck_assert_int_eq(prepare_cost(c, f, "SELECT 'b'"), 1);
  ck_assert_int_eq(prepare_cost(c, f, "SELECT 'c'"), 1); /* evicts b, not the held a */
  ck_assert_int_eq(be_stmt_step(a, NULL), BE_ROW);
  ck_assert_str_eq(be_stmt_column_text(a, 0, NULL), "a");
  ck_assert_int_eq(be_fault_calls(f, BE_FAULT_OP_FINALIZE), 1);
  be_stmt_finalize(a); /* a is now the most recently used */
  ck_assert_int_eq(prepare_cost(c, f, "SELECT 'c'"), 0);
  ck_assert_int_eq(prepare_cost(c, f, "SELECT 'a'"), 0);
  ck_assert_int_eq(prepare_cost(c, f, "SELECT 'b'"), 1); /* evicts c */
  ck_assert_int_eq(prepare_cost(c, f, "SELECT 'a'"), 0);
  ck_assert_int_eq(prepare_cost(c, f, "SELECT 'c'"), 1); /* evicts b */
  be_stmt_cache_stats st = BE_STMT_CACHE_STATS_INIT;
  ck_assert_int_eq(be_conn_stmt_cache_stats_get(&st, c, NULL), BE_OK);
  ck_assert_int_eq(st.size, 2);
  /* flushing while one is held: it leaves the cache, finalized when given back */
  ck_assert_int_eq(be_conn_prepare(&a, c, "SELECT 'a'", NULL), BE_OK);
  be_fault_reset_counts(f);
  ck_assert_int_eq(be_conn_set_stmt_cache_size(c, 4, NULL), BE_OK);
  ck_assert_int_eq(be_fault_calls(f, BE_FAULT_OP_FINALIZE), 1);
  ck_assert_int_eq(be_stmt_step(a, NULL), BE_ROW);
  be_stmt_finalize(a);
  ck_assert_int_eq(be_fault_calls(f, BE_FAULT_OP_FINALIZE), 2);
  ck_assert_int_eq(be_conn_stmt_cache_stats_get(&st, c, NULL), BE_OK);
  ck_assert_int_eq(st.size, 0);
  be_conn_close(c);
  be_fault_free(f);
}
END_TEST

/* Prepare q on c, step it once with ?1 = v and check the row is v + add. */
static void run_sql_handle(be_conn *c, const be_sql *q, int64_t v, int64_t add) {
  be_stmt *s = NULL;
  be_error *e = NULL;
  ck_assert_int_eq(be_conn_prepare_sql(&s, c, q, &e), BE_OK);
  ck_assert_ptr_null(e);
  ck_assert_int_eq(be_stmt_bind_int64(s, 1, v, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_int_eq(be_stmt_column_int64(s, 0), v + add);
  be_stmt_finalize(s);
}

START_TEST(sql_handle_finds_the_cached_statement) {
  be_driver *fd = NULL;
  be_fault *f = NULL;
  ck_assert_int_eq(be_fault_driver_new(&fd, &f, be_sqlite_driver(), NULL), BE_OK);
  be_conn *c = NULL, *c2 = NULL;
  ck_assert_int_eq(be_conn_open(&c, fd, ":memory:", NULL), BE_OK);
  ck_assert_int_eq(be_conn_open(&c2, fd, ":memory:", NULL), BE_OK);
  be_sql *q = NULL;
  ck_assert_int_eq(be_sql_new(&q, "SELECT ?1 + 1 -- trailing", 13, NULL), BE_OK);
  size_t len = 0;
  ck_assert_str_eq(be_sql_text(q, &len), "SELECT ?1 + 1");
  ck_assert_uint_eq(len, 13);
  for (int i = 0; i < 10; i++) run_sql_handle(c, q, i, 1);
  ck_assert_int_eq(be_fault_calls(f, BE_FAULT_OP_PREPARE), 1);
  /* the same text by be_conn_prepare is the same cached statement */
  be_stmt *s = NULL, *t = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT ?1 + 1", NULL), BE_OK);
  be_stmt_finalize(s);
  ck_assert_int_eq(be_fault_calls(f, BE_FAULT_OP_PREPARE), 1);
  /* another connection prepares its own once */
  for (int i = 0; i < 3; i++) run_sql_handle(c2, q, i, 1);
  ck_assert_int_eq(be_fault_calls(f, BE_FAULT_OP_PREPARE), 2);
  be_stmt_cache_stats st = BE_STMT_CACHE_STATS_INIT;
  ck_assert_int_eq(be_conn_stmt_cache_stats_get(&st, c, NULL), BE_OK);
  ck_assert_int_eq(st.hits, 10);
  ck_assert_int_eq(st.misses, 1);
  /* held: a second prepare by handle gets a fresh, uncached twin */
  ck_assert_int_eq(be_conn_prepare_sql(&s, c, q, NULL), BE_OK);
  ck_assert_int_eq(be_conn_prepare_sql(&t, c, q, NULL), BE_OK);
  ck_assert_ptr_ne(s, t);
  be_stmt_finalize(t);
  be_stmt_finalize(s);
  ck_assert_int_eq(be_fault_calls(f, BE_FAULT_OP_FINALIZE), 1); /* the twin only */
  /* freed handle: its statements stay cached by text; a new handle with
   * other text never gets the old statement */
  be_sql_free(q);
  be_sql *r = NULL;
  for (int k = 0; k < 200; k++) { /* many ids: every direct slot reused */
    ck_assert_int_eq(be_sql_new(&r, "SELECT ?1 + 2", BE_NUL_TERMINATED, NULL), BE_OK);
    run_sql_handle(c, r, k, 2);
    be_sql_free(r);
  }
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT ?1 + 1", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_int64(s, 1, 5, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_int_eq(be_stmt_column_int64(s, 0), 6);
  be_stmt_finalize(s);
  be_conn_close(c2);
  be_conn_close(c);
  be_fault_free(f);
}
END_TEST

/* Run sql (by text) with ?1 = v and check it returns v + add. */
static void run_text(be_conn *c, const char *sql, int64_t v, int64_t add) {
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, sql, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_int64(s, 1, v, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_int_eq(be_stmt_column_int64(s, 0), v + add);
  be_stmt_finalize(s);
}

/* be_conn_prepare finds a cached statement by the address of its text,
 * but only while the text there is the same: a caller's buffer rewritten
 * with other SQL (a longer one, a prefix of it) gets that SQL's
 * statement; evicted and flushed statements are never found there again
 * (ASan would see a freed one read). */
START_TEST(text_address_finds_only_the_same_text) {
  be_driver *fd = NULL;
  be_fault *f = NULL;
  ck_assert_int_eq(be_fault_driver_new(&fd, &f, be_sqlite_driver(), NULL), BE_OK);
  be_conn *c = NULL;
  ck_assert_int_eq(be_conn_open(&c, fd, ":memory:", NULL), BE_OK);
  char buf[64], other[64];
  strcpy(buf, "SELECT ?1 + 1");
  for (int i = 0; i < 5; i++) run_text(c, buf, i, 1);
  ck_assert_int_eq(be_fault_calls(f, BE_FAULT_OP_PREPARE), 1);
  strcpy(buf, "SELECT ?1 + 10"); /* the same address, longer text */
  run_text(c, buf, 3, 10);
  strcpy(buf, "SELECT ?1 + 1"); /* back: cached, and a prefix of the last */
  run_text(c, buf, 3, 1);
  strcpy(buf, "SELECT ?1 + 2");
  run_text(c, buf, 3, 2);
  ck_assert_int_eq(be_fault_calls(f, BE_FAULT_OP_PREPARE), 3);
  strcpy(other, "SELECT ?1 + 10"); /* another address, cached text */
  run_text(c, other, 4, 10);
  run_text(c, other, 5, 10);
  ck_assert_int_eq(be_fault_calls(f, BE_FAULT_OP_PREPARE), 3);
  be_stmt_cache_stats st = BE_STMT_CACHE_STATS_INIT;
  ck_assert_int_eq(be_conn_stmt_cache_stats_get(&st, c, NULL), BE_OK);
  ck_assert_int_eq(st.hits, 7);
  ck_assert_int_eq(st.misses, 3);
  /* held: a second prepare from the same address gets an uncached twin */
  be_stmt *s = NULL, *t = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, other, NULL), BE_OK);
  ck_assert_int_eq(be_conn_prepare(&t, c, other, NULL), BE_OK);
  ck_assert_ptr_ne(s, t);
  be_stmt_finalize(t);
  be_stmt_finalize(s);
  /* a cache of 2 and 40 texts at 40 addresses: every slot is reused and
   * every statement evicted while slots still name it */
  static char texts[40][32];
  ck_assert_int_eq(be_conn_set_stmt_cache_size(c, 2, NULL), BE_OK);
  for (int round = 0; round < 3; round++)
    for (int k = 0; k < 40; k++) {
      snprintf(texts[k], sizeof texts[k], "SELECT ?1 + %d", 100 + k);
      run_text(c, texts[k], round, 100 + k);
      run_text(c, texts[k], round + 1, 100 + k);
    }
  ck_assert_int_eq(be_conn_set_stmt_cache_size(c, 8, NULL), BE_OK); /* a flush */
  run_text(c, texts[0], 1, 100);
  ck_assert_int_eq(be_conn_set_stmt_cache_size(c, 0, NULL), BE_OK); /* no cache */
  run_text(c, texts[0], 2, 100);
  run_text(c, texts[0], 3, 100);
  be_conn_close(c);
  be_fault_free(f);
}
END_TEST

START_TEST(sql_handle_survives_eviction_and_flush) {
  be_driver *fd = NULL;
  be_fault *f = NULL;
  ck_assert_int_eq(be_fault_driver_new(&fd, &f, be_sqlite_driver(), NULL), BE_OK);
  be_conn *c = NULL;
  ck_assert_int_eq(be_conn_open(&c, fd, ":memory:", NULL), BE_OK);
  be_sql *a = NULL, *b = NULL;
  ck_assert_int_eq(be_sql_new(&a, "SELECT ?1 + 10", BE_NUL_TERMINATED, NULL), BE_OK);
  ck_assert_int_eq(be_sql_new(&b, "SELECT ?1 + 20", BE_NUL_TERMINATED, NULL), BE_OK);
  /* a cache of 1: each handle evicts the other's statement */
  ck_assert_int_eq(be_conn_set_stmt_cache_size(c, 1, NULL), BE_OK);
  for (int i = 0; i < 4; i++) {
    run_sql_handle(c, a, i, 10);
    run_sql_handle(c, b, i, 20);
  }
  ck_assert_int_eq(be_fault_calls(f, BE_FAULT_OP_PREPARE), 8);
  ck_assert_int_eq(be_fault_calls(f, BE_FAULT_OP_FINALIZE), 7);
  /* a flush (new bound) drops them; the handles still work */
  ck_assert_int_eq(be_conn_set_stmt_cache_size(c, 8, NULL), BE_OK);
  run_sql_handle(c, a, 1, 10);
  run_sql_handle(c, a, 2, 10);
  run_sql_handle(c, b, 1, 20);
  ck_assert_int_eq(be_fault_calls(f, BE_FAULT_OP_PREPARE), 10);
  /* no cache: every prepare is real, nothing is kept */
  ck_assert_int_eq(be_conn_set_stmt_cache_size(c, 0, NULL), BE_OK);
  run_sql_handle(c, a, 3, 10);
  run_sql_handle(c, a, 4, 10);
  ck_assert_int_eq(be_fault_calls(f, BE_FAULT_OP_PREPARE), 12);
  be_sql_free(a);
  be_sql_free(b);
  be_conn_close(c);
  be_fault_free(f);
}
END_TEST

/* Insert what v[0..n) holds by a static bind, changing the buffer to
 * after between bind and step; returns the text stored. */
static char *insert_static(be_conn *c, char *buf, const char *after) {
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, "INSERT INTO t(x) VALUES (?1) RETURNING x", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_text_static(s, 1, buf, BE_NUL_TERMINATED, NULL), BE_OK);
  strcpy(buf, after);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  char *got = strdup(be_stmt_column_text(s, 0, NULL));
  be_stmt_finalize(s);
  return got;
}

static int fail_static(void *st, int32_t i, const char *v, size_t n, be_error **err) {
  (void)st, (void)i, (void)v, (void)n, (void)err;
  ck_abort_msg("a version-2 table's bind_text_static was read");
  return BE_E_INTERNAL;
}

/* Bytes of row k's text in column col (0 or 1), len of them: a pattern
 * that differs with k, col and position. */
static void row_text(char *out, int k, int col, size_t len) {
  for (size_t j = 0; j < len; j++) out[j] = (char)('A' + (k * 7 + col * 13 + (int)j) % 26);
}

/* be_stmt_bind_text copies: the caller's buffer may change at once. Short
 * text of the first parameters is copied into buffers kept with the
 * statement (two per parameter); longer text and later parameters are
 * copied by the driver. Every length across the buffers' growth and the
 * copies' reach, a parameter bound three times before a step, and text
 * changed in the caller's buffer after each bind. */
START_TEST(bind_text_copies_survive_the_callers_buffer) {
  be_conn *c = open_mem();
  exec_ok(c, "CREATE TABLE t(k INTEGER, a TEXT, b TEXT)");
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, "INSERT INTO t VALUES (?1, ?2, ?3)", NULL), BE_OK);
  char a[600], b[600];
  for (int k = 0; k < 600; k++) {
    size_t len = (size_t)k;
    ck_assert_int_eq(be_stmt_bind_int64(s, 1, k, NULL), BE_OK);
    ck_assert_int_eq(be_stmt_bind_text(s, 2, "first", 5, NULL), BE_OK);
    row_text(a, k, 1, len);
    ck_assert_int_eq(be_stmt_bind_text(s, 3, a, len, NULL), BE_OK);
    memset(a, 'x', len);
    ck_assert_int_eq(be_stmt_bind_text(s, 2, "second", 6, NULL), BE_OK);
    row_text(b, k, 0, len);
    ck_assert_int_eq(be_stmt_bind_text(s, 2, b, len, NULL), BE_OK);
    memset(b, 'y', len);
    ck_assert_int_eq(be_stmt_step(s, NULL), BE_DONE);
    ck_assert_int_eq(be_stmt_reset(s, NULL), BE_OK);
  }
  be_stmt_finalize(s);
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT k, a, b FROM t ORDER BY k", NULL), BE_OK);
  for (int k = 0; k < 600; k++) {
    ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
    ck_assert_int_eq(be_stmt_column_int64(s, 0), k);
    for (int col = 0; col < 2; col++) {
      size_t len = 9;
      const char *got = be_stmt_column_text(s, 1 + col, &len);
      ck_assert_uint_eq(len, (size_t)k);
      row_text(a, k, col, len);
      ck_assert_msg(memcmp(got, a, len) == 0, "row %d column %d", k, col);
    }
  }
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_DONE);
  be_stmt_finalize(s);
  /* a parameter past the first sixteen, and the first, copied too */
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT ?20 || ?1", NULL), BE_OK);
  strcpy(a, "late");
  ck_assert_int_eq(be_stmt_bind_text(s, 20, a, 4, NULL), BE_OK);
  strcpy(a, "????");
  strcpy(b, "early");
  ck_assert_int_eq(be_stmt_bind_text(s, 1, b, 5, NULL), BE_OK);
  strcpy(b, "?????");
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_str_eq(be_stmt_column_text(s, 0, NULL), "lateearly");
  be_stmt_finalize(s);
  be_conn_close(c);
}
END_TEST

/* Text from ?1 of the current row. */
static void expect_first(be_stmt *s, const char *want) {
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_str_eq(be_stmt_column_text(s, 0, NULL), want);
}

/* A bind the driver refuses (the statement is running, or done and not
 * reset: SQLite keeps the parameter's value then) leaves the text the
 * running statement reads as it was, however often it is tried: the
 * failed binds' copies never go to the buffer lent to the driver. And an
 * allocation failure for the copies falls back to the driver's copy. */
START_TEST(bind_text_refused_while_running_keeps_the_bound_text) {
  be_conn *c = open_mem();
  be_stmt *s = NULL;
  const char *sql = "WITH v(x) AS (VALUES (1), (2), (3)) SELECT ?1, x FROM v";
  ck_assert_int_eq(be_conn_prepare(&s, c, sql, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_text(s, 1, "first", 5, NULL), BE_OK);
  expect_first(s, "first");
  be_error *e = NULL;
  ck_assert_int_lt(be_stmt_bind_text(s, 1, "second", 6, &e), 0);
  ck_assert_ptr_nonnull(e);
  be_error_free(e);
  ck_assert_int_lt(be_stmt_bind_text(s, 1, "third!", 6, NULL), 0);
  expect_first(s, "first");
  ck_assert_int_lt(be_stmt_bind_text(s, 1, "fourth", 6, NULL), 0);
  expect_first(s, "first");
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_DONE);
  /* done, not reset: a bind that fails leaves the text a new run reads */
  int rc = be_stmt_bind_text(s, 1, "fifth", 5, NULL);
  expect_first(s, rc == BE_OK ? "fifth" : "first");
  ck_assert_int_eq(be_stmt_reset(s, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_text(s, 1, "sixth", 5, NULL), BE_OK);
  expect_first(s, "sixth");
  be_stmt_finalize(s);

  /* no memory for the statement's copies: the driver copies instead */
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT ?1 || ?2", NULL), BE_OK);
  char buf[8] = "mem";
  tu_alloc_install(1);
  ck_assert_int_eq(be_stmt_bind_text(s, 1, buf, 3, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_text(s, 2, "ory", 3, NULL), BE_OK);
  tu_alloc_restore();
  strcpy(buf, "xxx");
  expect_first(s, "memory");
  be_stmt_finalize(s);
  be_conn_close(c);
}
END_TEST

START_TEST(bind_text_static_borrows_without_checking) {
  be_conn *c = open_mem();
  exec_ok(c, "CREATE TABLE t(x TEXT)");
  /* borrowed, not copied: the bytes at step time are the ones stored */
  char buf[16] = "before";
  char *got = insert_static(c, buf, "after!");
  ck_assert_str_eq(got, "after!");
  free(got);
  /* not checked: be_stmt_bind_text refuses what this one passes on */
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT length(CAST(?1 AS BLOB))", NULL), BE_OK);
  be_error *e = NULL;
  ck_assert_int_eq(be_stmt_bind_text(s, 1, "a\xff", 2, &e), BE_E_VALIDATION);
  be_error_free(e);
  e = NULL;
  ck_assert_int_eq(be_stmt_bind_text_static(s, 1, "a\xff", 2, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_int_eq(be_stmt_column_int64(s, 0), 2);
  /* a reset lets go of the bytes: the parameter is NULL again */
  ck_assert_int_eq(be_stmt_reset(s, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_int_eq(be_stmt_column_type(s, 0), BE_TYPE_NULL);
  ck_assert_int_eq(be_stmt_reset(s, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_text_static(s, 1, "", 0, NULL), BE_OK); /* empty */
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_int_eq(be_stmt_column_int64(s, 0), 0);
  ck_assert_int_eq(be_stmt_reset(s, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_text_static(NULL, 1, "x", 1, &e), BE_E_MISUSE);
  be_error_free(e);
  e = NULL;
  ck_assert_int_eq(be_stmt_bind_text_static(s, 1, NULL, 1, &e), BE_E_MISUSE);
  be_error_free(e);
  e = NULL;
  ck_assert_int_eq(be_stmt_bind_text_static(s, 9, "x", 1, &e), BE_E_MISUSE); /* range */
  be_error_free(e);
  be_stmt_finalize(s);
  be_conn_close(c);

  /* a version-2 table has no bind_text_static: the text is copied */
  be_driver d2 = *be_sqlite_driver();
  d2.version = 2;
  d2.bind_text_static = fail_static;
  ck_assert_int_eq(be_conn_open(&c, &d2, ":memory:", NULL), BE_OK);
  exec_ok(c, "CREATE TABLE t(x TEXT)");
  strcpy(buf, "before");
  got = insert_static(c, buf, "after!");
  ck_assert_str_eq(got, "before");
  free(got);
  be_conn_close(c);

  /* the fault driver passes it through, and fails it as a bind */
  be_driver *fd = NULL;
  be_fault *f = NULL;
  ck_assert_int_eq(be_fault_driver_new(&fd, &f, be_sqlite_driver(), NULL), BE_OK);
  ck_assert_ptr_nonnull(fd->bind_text_static);
  ck_assert_int_eq(be_conn_open(&c, fd, ":memory:", NULL), BE_OK);
  exec_ok(c, "CREATE TABLE t(x TEXT)");
  strcpy(buf, "before");
  got = insert_static(c, buf, "after!");
  ck_assert_str_eq(got, "after!");
  free(got);
  ck_assert_int_eq(be_fault_set(f, BE_FAULT_OP_BIND, BE_FAULT_NTH, 1, BE_E_STORAGE, NULL), BE_OK);
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT ?1", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_text_static(s, 1, "x", 1, NULL), BE_E_STORAGE);
  be_stmt_finalize(s);
  be_conn_close(c);
  be_fault_free(f);
  /* over a version-2 inner driver the fault driver has none either */
  ck_assert_int_eq(be_fault_driver_new(&fd, &f, &d2, NULL), BE_OK);
  ck_assert_ptr_null(fd->bind_text_static);
  be_fault_free(f);
}
END_TEST

/* Every type, read whole through be_rows, from a connection opened with
 * driver d. */
static void rows_of_every_type(const be_driver *d) {
  be_conn *c = NULL;
  ck_assert_int_eq(be_conn_open(&c, d, ":memory:", NULL), BE_OK);
  be_rows *r = NULL;
  be_error *e = NULL;
  int rc = be_rows_query(&r, c,
                         "SELECT 42, -1.5, 'text', x'00ff01', NULL, '', x'', 9223372036854775807",
                         NULL, &e);
  ck_assert_msg(rc == BE_OK, "%s", be_error_message(e));
  ck_assert_uint_eq(be_rows_count(r), 1);
  ck_assert_int_eq(be_rows_type(r, 0, 0), BE_TYPE_INT);
  ck_assert_int_eq(be_rows_int64(r, 0, 0), 42);
  ck_assert_int_eq(be_rows_type(r, 0, 1), BE_TYPE_FLOAT);
  ck_assert(be_rows_double(r, 0, 1) == -1.5);
  size_t len = 99;
  ck_assert_int_eq(be_rows_type(r, 0, 2), BE_TYPE_TEXT);
  ck_assert_str_eq(be_rows_text(r, 0, 2, &len), "text");
  ck_assert_uint_eq(len, 4);
  ck_assert_int_eq(be_rows_type(r, 0, 3), BE_TYPE_BLOB);
  const unsigned char *b = be_rows_blob(r, 0, 3, &len);
  ck_assert_uint_eq(len, 3);
  ck_assert(b[0] == 0 && b[1] == 0xff && b[2] == 1);
  ck_assert_int_eq(be_rows_type(r, 0, 4), BE_TYPE_NULL);
  ck_assert_int_eq(be_rows_type(r, 0, 5), BE_TYPE_TEXT);
  ck_assert_str_eq(be_rows_text(r, 0, 5, &len), "");
  ck_assert_uint_eq(len, 0);
  ck_assert_int_eq(be_rows_type(r, 0, 6), BE_TYPE_BLOB);
  be_rows_blob(r, 0, 6, &len);
  ck_assert_uint_eq(len, 0);
  ck_assert_int_eq(be_rows_int64(r, 0, 7), INT64_MAX);
  be_rows_free(r);
  be_conn_close(c);
}

static int32_t fail_column_value(void *st, int32_t col, int64_t *i, double *d, const void **p,
                                 size_t *n) {
  (void)st, (void)col, (void)i, (void)d, (void)p, (void)n;
  ck_abort_msg("a version-2 table's column_value was read");
  return BE_TYPE_NULL;
}

/* Version 3's column_value reads a row in one call per value; without it
 * (older tables) the row reads the same through column_type. */
START_TEST(rows_read_whole_with_or_without_column_value) {
  ck_assert_ptr_nonnull(be_sqlite_driver()->column_value);
  rows_of_every_type(be_sqlite_driver());
  be_driver d2 = *be_sqlite_driver();
  d2.version = 2;
  d2.column_value = fail_column_value;
  rows_of_every_type(&d2);
  be_driver d3 = *be_sqlite_driver();
  d3.column_value = NULL; /* optional in version 3 too */
  rows_of_every_type(&d3);
  be_driver *fd = NULL;
  be_fault *f = NULL;
  ck_assert_int_eq(be_fault_driver_new(&fd, &f, be_sqlite_driver(), NULL), BE_OK);
  ck_assert_ptr_nonnull(fd->column_value);
  rows_of_every_type(fd);
  be_fault_free(f);
  ck_assert_int_eq(be_fault_driver_new(&fd, &f, &d3, NULL), BE_OK);
  ck_assert_ptr_null(fd->column_value);
  rows_of_every_type(fd);
  be_fault_free(f);
  ck_assert_int_eq(be_fault_driver_new(&fd, &f, &d2, NULL), BE_OK);
  ck_assert_ptr_null(fd->column_value);
  be_fault_free(f);
}
END_TEST

/* 10,000 rows of mixed types from a connection opened with driver d: a
 * result read into blocks keeps the statement's order across them. */
static void many_rows_in_order(const be_driver *d) {
  be_conn *c = NULL;
  ck_assert_int_eq(be_conn_open(&c, d, ":memory:", NULL), BE_OK);
  be_rows *r = NULL;
  be_error *e = NULL;
  int rc = be_rows_query(&r, c,
                         "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 9999) "
                         "SELECT i, CASE WHEN i % 3 THEN printf('t%d', i) END, i * 0.5, "
                         "CASE WHEN i % 5 = 0 THEN x'00ff' END FROM n",
                         NULL, &e);
  ck_assert_msg(rc == BE_OK, "%s", be_error_message(e));
  ck_assert_uint_eq(be_rows_count(r), 10000);
  char want[16];
  for (size_t i = 0; i < 10000; i++) {
    ck_assert_int_eq(be_rows_int64(r, i, 0), (int64_t)i);
    size_t len = 99;
    const char *t = be_rows_text(r, i, 1, &len);
    if (i % 3 == 0) {
      ck_assert_int_eq(be_rows_type(r, i, 1), BE_TYPE_NULL);
      ck_assert_ptr_null(t);
      ck_assert_uint_eq(len, 0);
    } else {
      snprintf(want, sizeof want, "t%zu", i);
      ck_assert_str_eq(t, want);
      ck_assert_uint_eq(len, strlen(want));
    }
    ck_assert(be_rows_double(r, i, 2) == (double)i * 0.5);
    ck_assert_int_eq(be_rows_type(r, i, 3), i % 5 == 0 ? BE_TYPE_BLOB : BE_TYPE_NULL);
  }
  ck_assert_int_eq(be_rows_type(r, 10000, 0), BE_TYPE_NULL);
  be_rows_free(r);
  be_conn_close(c);
}

/* The SQLite driver reads a whole row in one call (be__sqlite_row_fn);
 * a copy of its table without column_value is read a value at a time:
 * both give the same rows, in order. */
START_TEST(rows_many_keep_their_order) {
  many_rows_in_order(be_sqlite_driver());
  be_driver d3 = *be_sqlite_driver();
  d3.column_value = NULL;
  many_rows_in_order(&d3);
}
END_TEST

/* Allocations of the custom allocator still live. */
static _Atomic int64_t live_allocs;
static void *counting_malloc(size_t n, void *ud) {
  (void)ud;
  void *p = malloc(n);
  if (p) live_allocs++;
  return p;
}
static void *counting_realloc(void *p, size_t n, void *ud) {
  (void)ud;
  void *q = realloc(p, n);
  if (p == NULL && q) live_allocs++;
  return q;
}
static void counting_free(void *p, void *ud) {
  (void)ud;
  if (p) live_allocs--;
  free(p);
}

/* A freed result's whole blocks are kept for the next one (memory malloc
 * would give back to the kernel and fault in again), only under the
 * default allocator: a custom one sees every block come and go, and
 * be_set_allocator() frees what was kept. */
START_TEST(rows_blocks_kept_only_under_the_default_allocator) {
  ck_assert_int_eq(be_set_allocator(NULL, NULL), BE_OK); /* frees the kept ones */
  ck_assert_int_eq(be__blocks_kept(), 0);
  void *a = be__block_alloc();
  ck_assert_ptr_nonnull(a);
  be__block_free(a);
  ck_assert_int_eq(be__blocks_kept(), 1);
  void *b = be__block_alloc();
  ck_assert_ptr_eq(a, b); /* kept, handed out again */
  ck_assert_int_eq(be__blocks_kept(), 0);
  be__block_free(b);
  many_rows_in_order(be_sqlite_driver()); /* twice: the second on kept blocks */
  ck_assert_int_gt(be__blocks_kept(), 4);
  many_rows_in_order(be_sqlite_driver());
  be_allocator al = BE_ALLOCATOR_INIT;
  al.malloc_fn = counting_malloc;
  al.realloc_fn = counting_realloc;
  al.free_fn = counting_free;
  ck_assert_int_eq(be_set_allocator(&al, NULL), BE_OK);
  live_allocs = 0;
  a = be__block_alloc();
  ck_assert_int_eq(live_allocs, 1);
  be__block_free(a);
  ck_assert_int_eq(live_allocs, 0);
  many_rows_in_order(be_sqlite_driver());
  ck_assert_int_eq(live_allocs, 0); /* nothing of the custom allocator's kept */
  ck_assert_int_eq(be_set_allocator(NULL, NULL), BE_OK);
}
END_TEST

START_TEST(sql_handle_bad_input) {
  be_conn *c = open_mem();
  be_sql *q = NULL;
  be_error *e = NULL;
  ck_assert_int_eq(be_sql_new(NULL, "SELECT 1", BE_NUL_TERMINATED, &e), BE_E_MISUSE);
  ck_assert_int_eq(be_error_code(e), BE_E_MISUSE);
  be_error_free(e);
  e = NULL;
  q = (be_sql *)&e; /* set to NULL on failure */
  ck_assert_int_eq(be_sql_new(&q, NULL, 3, NULL), BE_E_MISUSE);
  ck_assert_ptr_null(q);
  ck_assert_int_eq(be_sql_new(&q, "SELECT 1\0; DROP", 16, &e), BE_E_VALIDATION);
  ck_assert_ptr_null(q);
  ck_assert_str_eq(be_error_field_name(e, 0), "sql");
  be_error_free(e);
  e = NULL;
  /* errors of the text surface at prepare, as with be_conn_prepare */
  ck_assert_int_eq(be_sql_new(&q, "SELEKT 1", BE_NUL_TERMINATED, NULL), BE_OK);
  be_stmt *s = (be_stmt *)&e;
  ck_assert_int_eq(be_conn_prepare_sql(&s, c, q, &e), BE_E_STORAGE);
  ck_assert_ptr_null(s);
  be_error_free(e);
  e = NULL;
  be_sql_free(q);
  ck_assert_int_eq(be_sql_new(&q, "SELECT 1; SELECT 2", BE_NUL_TERMINATED, NULL), BE_OK);
  ck_assert_int_eq(be_conn_prepare_sql(&s, c, q, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_conn_prepare_sql(NULL, c, q, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_conn_prepare_sql(&s, NULL, q, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_conn_prepare_sql(&s, c, NULL, &e), BE_E_MISUSE);
  ck_assert_int_eq(be_error_code(e), BE_E_MISUSE);
  be_error_free(e);
  be_sql_free(q);
  be_sql_free(NULL);
  size_t len = 7;
  ck_assert_ptr_null(be_sql_text(NULL, &len));
  ck_assert_uint_eq(len, 0);
  /* the empty text is a handle; preparing it is the driver's misuse */
  ck_assert_int_eq(be_sql_new(&q, "", 0, NULL), BE_OK);
  ck_assert_str_eq(be_sql_text(q, NULL), "");
  ck_assert_int_eq(be_conn_prepare_sql(&s, c, q, NULL), BE_E_MISUSE);
  be_sql_free(q);
  be_conn_close(c);
}
END_TEST

static void expect_constraint(be_conn *c, const char *sql, int32_t code, int64_t ext) {
  be_error *e = NULL;
  ck_assert_int_eq(be_conn_exec(c, sql, &e), code);
  ck_assert_int_eq(be_error_code(e), code);
  const be_error *cause = be_error_cause(e);
  ck_assert_ptr_nonnull(cause);
  ck_assert_int_eq(be_error_driver_code(cause), ext);
  ck_assert_int_eq(be_error_driver_code(e), ext);
  ck_assert_ptr_nonnull(strstr(be_error_message(cause), "constraint failed"));
  TU_ASSERT_TEXT_ONLY_IN_CAUSE(e, "constraint failed");
  ck_assert_ptr_nonnull(strstr(be_error_message(e), "constraint was violated"));
  ck_assert_int_eq(be_error_is_retryable(e), 0);
  be_error_free(e);
}

START_TEST(constraint_errors_are_typed) {
  be_conn *c = open_mem();
  exec_ok(c, "CREATE TABLE p(id INTEGER PRIMARY KEY, email TEXT UNIQUE NOT NULL, "
             "age INTEGER CHECK (age >= 0));"
             "CREATE TABLE k(a TEXT PRIMARY KEY);"
             "CREATE TABLE ch(pid INTEGER REFERENCES p(id));"
             "INSERT INTO p VALUES (1, 'a@x', 1); INSERT INTO k VALUES ('x')");
  expect_constraint(c, "INSERT INTO p VALUES (2, 'a@x', 1)", BE_E_CONFLICT, 2067);
  expect_constraint(c, "INSERT INTO k VALUES ('x')", BE_E_CONFLICT, 1555);
  expect_constraint(c, "INSERT INTO p VALUES (1, 'b@x', 1)", BE_E_CONFLICT, 1555);
  expect_constraint(c, "INSERT INTO p VALUES (3, NULL, 1)", BE_E_VALIDATION, 1299);
  expect_constraint(c, "INSERT INTO p VALUES (3, 'c@x', -1)", BE_E_VALIDATION, 275);
  expect_constraint(c, "INSERT INTO ch VALUES (42)", BE_E_VALIDATION, 787);

  /* the same through a prepared statement's step */
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, "INSERT INTO p(email) VALUES (?)", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_text(s, 1, "a@x", BE_NUL_TERMINATED, NULL), BE_OK);
  be_error *e = NULL;
  ck_assert_int_eq(be_stmt_step(s, &e), BE_E_CONFLICT);
  ck_assert_int_eq(be_error_driver_code(be_error_cause(e)), SQLITE_CONSTRAINT_UNIQUE);
  ck_assert_int_eq(be_error_http_status(e), 409);
  be_error_free(e);
  be_stmt_finalize(s);
  /* the statement went back to the cache and works again */
  ck_assert_int_eq(be_conn_prepare(&s, c, "INSERT INTO p(email) VALUES (?)", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_text(s, 1, "new@x", BE_NUL_TERMINATED, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_DONE);
  be_stmt_finalize(s);
  ck_assert_int_eq(be_conn_is_broken(c), 0);
  be_conn_close(c);
}
END_TEST

START_TEST(syntax_and_misuse_errors) {
  be_conn *c = open_mem();
  be_stmt *s = NULL;
  be_error *e = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELEKT 1", &e), BE_E_STORAGE);
  ck_assert_ptr_null(s);
  ck_assert_ptr_nonnull(strstr(be_error_message(be_error_cause(e)), "syntax error"));
  TU_ASSERT_TEXT_ONLY_IN_CAUSE(e, "syntax error");
  ck_assert_str_eq(be_error_message(e), "sqlite prepare failed: the database refused the SQL statement");
  ck_assert_int_eq(be_error_driver_code(be_error_cause(e)), SQLITE_ERROR);
  be_error_free(e);
  ck_assert_int_eq(be_conn_prepare(&s, c, "   ", NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT 1; SELECT 2", NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT 1; -- done\n /* c */ ;", NULL), BE_OK);
  be_stmt_finalize(s);
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT ?", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_int64(s, 2, 1, &e), BE_E_MISUSE);
  be_error_free(e);
  ck_assert_int_eq(be_stmt_bind_int64(s, 0, 1, NULL), BE_E_MISUSE);
  be_stmt_finalize(s);
  ck_assert_int_eq(be_conn_prepare(&s, NULL, "SELECT 1", NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_conn_prepare(NULL, c, "SELECT 1", NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_conn_prepare(&s, c, NULL, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_stmt_step(NULL, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_stmt_bind_null(NULL, 1, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_conn_exec(c, NULL, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_conn_exec(c, "SELECT * FROM nosuch", &e), BE_E_STORAGE);
  TU_ASSERT_TEXT_ONLY_IN_CAUSE(e, "no such table");
  be_error_free(e);
  ck_assert_int_eq(be_conn_begin(c, 7, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_stmt_column_count(NULL), 0);
  ck_assert_int_eq(be_conn_in_transaction(NULL), 0);
  ck_assert_int_eq(be_conn_is_broken(NULL), 0);
  ck_assert_ptr_null(be_conn_driver(NULL));
  be_stmt_finalize(NULL);
  be_conn_close(NULL);
  be_conn_close(c);
}
END_TEST

START_TEST(open_errors) {
  be_conn *c = NULL;
  be_error *e = NULL;
  char bad[600];
  snprintf(bad, sizeof bad, "%s/no/such/dir/x.db", tmpdir);
  ck_assert_int_eq(be_conn_open(&c, be_sqlite_driver(), bad, &e), BE_E_DB_UNREACHABLE);
  ck_assert_ptr_null(c);
  ck_assert_int_eq(be_error_http_status(e), 503);
  ck_assert_int_eq(be_error_driver_code(be_error_cause(e)), SQLITE_CANTOPEN);
  be_error_free(e);
  ck_assert_int_eq(be_conn_open(&c, be_sqlite_driver(), bad, NULL), BE_E_DB_UNREACHABLE);

  /* not a database */
  FILE *fp = fopen(dbpath, "w");
  fputs("this is not an sqlite database, just some text that is long enough......"
        "................................................................",
        fp);
  fclose(fp);
  ck_assert_int_eq(be_conn_open(&c, be_sqlite_driver(), dbpath, &e), BE_E_STORAGE);
  ck_assert_int_eq(be_error_driver_code(be_error_cause(e)), SQLITE_NOTADB);
  be_error_free(e);

  ck_assert_int_eq(be_conn_open(NULL, be_sqlite_driver(), ":memory:", NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_conn_open(&c, NULL, ":memory:", NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_conn_open(&c, be_sqlite_driver(), NULL, NULL), BE_E_MISUSE);
  be_driver d = *be_sqlite_driver();
  d.version = 0;
  ck_assert_int_eq(be_conn_open(&c, &d, ":memory:", NULL), BE_E_MISUSE);
  d.version = BE_DRIVER_VERSION;
  d.ping = NULL;
  ck_assert_int_eq(be_conn_open(&c, &d, ":memory:", &e), BE_E_MISUSE);
  ck_assert_ptr_nonnull(strstr(be_error_message(e), "ping"));
  be_error_free(e);
}
END_TEST

/* The length be__conn_next_statement gives for the start of script. */
static size_t first_statement(be_conn *c, const char *script) {
  size_t n = 99999;
  ck_assert_int_eq(be__conn_next_statement(c, &n, script, strlen(script), NULL), BE_OK);
  return n;
}

/* Version 2 of the driver table: the SQLite driver splits scripts with its
 * own lexer and answers whether a table exists. */
START_TEST(driver_splits_scripts_and_knows_tables) {
  be_conn *c = open_mem();
  ck_assert_int_eq(be_sqlite_driver()->version, BE_DRIVER_VERSION);
  ck_assert_int_eq(be__conn_splits_scripts(c), 1);
  ck_assert_uint_eq(first_statement(c, "SELECT 1; SELECT 2;"), 9);
  ck_assert_uint_eq(first_statement(c, "SELECT ';'; SELECT 2"), 11);
  ck_assert_uint_eq(first_statement(c, "SELECT 1 -- a; comment\n; x"), 24);
  ck_assert_uint_eq(first_statement(c, "SELECT /* ; */ 1"), 16); /* no ';': all of it */
  ck_assert_uint_eq(first_statement(c, ""), 0);
  const char *trig = "CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; SELECT 2; END; SELECT 3;";
  ck_assert_uint_eq(first_statement(c, trig), strlen("CREATE TRIGGER t AFTER INSERT ON a BEGIN "
                                                     "SELECT 1; SELECT 2; END;"));
  /* the length bounds the text: nothing past it is read */
  size_t n = 0;
  ck_assert_int_eq(be__conn_next_statement(c, &n, "SELECT 1; SELECT 2;", 5, NULL), BE_OK);
  ck_assert_uint_eq(n, 5);

  int32_t exists = -1;
  ck_assert_int_eq(be__conn_table_exists(c, &exists, "t", NULL), BE_OK);
  ck_assert_int_eq(exists, 0);
  exec_ok(c, "CREATE TABLE t(x); CREATE VIEW v AS SELECT 1");
  ck_assert_int_eq(be__conn_table_exists(c, &exists, "t", NULL), BE_OK);
  ck_assert_int_eq(exists, 1);
  ck_assert_int_eq(be__conn_table_exists(c, &exists, "v", NULL), BE_OK);
  ck_assert_int_eq(exists, 0); /* a view is not a table */
  be_error *e = NULL;
  ck_assert_int_eq(be__conn_table_exists(c, &exists, "t; DROP TABLE t", &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "name");
  be_error_free(e);
  be_conn_close(c);

  /* a version-1 table opens; its optional operations are absent */
  be_driver d1 = *be_sqlite_driver();
  d1.version = 1;
  c = open_file(&d1);
  ck_assert_int_eq(be__conn_splits_scripts(c), 0);
  ck_assert_int_eq(be__conn_next_statement(c, &n, "SELECT 1", 8, &e), BE_E_UNSUPPORTED);
  be_error_free(e);
  exec_ok(c, "SELECT 1; SELECT 2");
  be_conn_close(c);
  d1.version = BE_DRIVER_VERSION + 1;
  ck_assert_int_eq(be_conn_open(&c, &d1, ":memory:", NULL), BE_E_MISUSE);
}
END_TEST

static void pragma_str(be_conn *c, const char *sql, const char *want) {
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, sql, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_str_eq(be_stmt_column_text(s, 0, NULL), want);
  be_stmt_finalize(s);
}

/* Each out-of-range option is misuse; no options means the defaults. */
static void sqlite_driver_rejects_bad_options(be_sqlite_options o) {
  be_driver *drv = NULL;
  o.journal_mode = 42;
  ck_assert_int_eq(be_sqlite_driver_new(&drv, &o, NULL), BE_E_MISUSE);
  o.journal_mode = BE_SQLITE_JOURNAL_WAL;
  o.busy_timeout_ms = -1;
  ck_assert_int_eq(be_sqlite_driver_new(&drv, &o, NULL), BE_E_MISUSE);
  o.busy_timeout_ms = 1;
  o.synchronous = 9;
  ck_assert_int_eq(be_sqlite_driver_new(&drv, &o, NULL), BE_E_MISUSE);
  o.version = 0;
  ck_assert_int_eq(be_sqlite_driver_new(&drv, &o, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_sqlite_driver_new(NULL, NULL, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_sqlite_driver_new(&drv, NULL, NULL), BE_OK);
  be_sqlite_driver_free(drv);
  be_sqlite_driver_free(NULL);
  be_sqlite_driver_free((be_driver *)be_sqlite_driver()); /* ignored */
}

static double mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *commit_later(void *db) {
  struct timespec ts = {0, 300 * 1000000L};
  nanosleep(&ts, NULL);
  ck_assert_int_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  return NULL;
}

/* Opening a rollback-journal database sets WAL, a write SQLite makes
 * without its busy handler: while another connection was writing (a
 * process migrating it) the open failed at once with a lock error. It
 * now waits for up to the busy timeout, and fails after it. */
/* A path that is not UTF-8 (Linux allows any bytes) still gets the real
 * reason and names the file, its bad bytes as U+FFFD: the message used to
 * be refused as invalid UTF-8 and the open said only "invalid message". */
START_TEST(open_failure_names_a_path_that_is_not_utf8) {
  char path[600];
  snprintf(path, sizeof path, "%s/no\xff"
                              "dir/x.db",
           tmpdir);
  be_conn *c = NULL;
  be_error *e = NULL;
  ck_assert_int_eq(be_conn_open(&c, be_sqlite_driver(), path, &e), BE_E_DB_UNREACHABLE);
  const char *m = be_error_message(e);
  ck_assert_msg(strstr(m, "cannot open the database") && strstr(m, "/no\xef\xbf\xbd"
                                                                   "dir/x.db"),
                "%s", m);
  be_error_free(e);
}
END_TEST

START_TEST(open_waits_for_a_writer_before_setting_wal) {
  sqlite3 *w = NULL;
  ck_assert_int_eq(sqlite3_open(dbpath, &w), SQLITE_OK);
  ck_assert_int_eq(sqlite3_exec(w, "PRAGMA journal_mode=DELETE; CREATE TABLE w(x); BEGIN IMMEDIATE; "
                                   "INSERT INTO w VALUES (1)",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  be_sqlite_options o = BE_SQLITE_OPTIONS_INIT;
  o.busy_timeout_ms = 100;
  be_driver *quick = NULL;
  ck_assert_int_eq(be_sqlite_driver_new(&quick, &o, NULL), BE_OK);
  be_conn *c = NULL;
  double t0 = mono_s();
  ck_assert_int_ne(be_conn_open(&c, quick, dbpath, NULL), BE_OK); /* held past 100 ms */
  ck_assert_msg(mono_s() - t0 >= 0.09, "failed after %.3f s, before the busy timeout", mono_s() - t0);
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, commit_later, w), 0);
  be_error *e = NULL;
  t0 = mono_s();
  ck_assert_msg(be_conn_open(&c, be_sqlite_driver(), dbpath, &e) == BE_OK, "%s", be_error_message(e));
  ck_assert_msg(mono_s() - t0 >= 0.2, "opened after %.3f s, while the writer held it", mono_s() - t0);
  pthread_join(t, NULL);
  pragma_str(c, "PRAGMA journal_mode", "wal");
  ck_assert_int_eq(count_rows(c, "w"), 1);
  be_conn_close(c);
  be_sqlite_driver_free(quick);
  sqlite3_close(w);
}
END_TEST

START_TEST(driver_options_and_defaults) {
  be_conn *c = open_file(NULL);
  pragma_str(c, "PRAGMA journal_mode", "wal");
  pragma_str(c, "PRAGMA foreign_keys", "1");
  pragma_str(c, "PRAGMA synchronous", "1");
  pragma_str(c, "PRAGMA busy_timeout", "5000");
  /* the real limit of this SQLite build (Debian raises the default 32766) */
  sqlite3 *raw = NULL;
  ck_assert_int_eq(sqlite3_open(":memory:", &raw), SQLITE_OK);
  ck_assert_int_eq(be_conn_bind_limit(c), sqlite3_limit(raw, SQLITE_LIMIT_VARIABLE_NUMBER, -1));
  ck_assert_int_ge(be_conn_bind_limit(c), 999);
  sqlite3_close(raw);
  ck_assert_int_eq(be_conn_ping(c, NULL), BE_OK);
  const be_driver *d = be_conn_driver(c);
  ck_assert_str_eq(d->name, "sqlite");
  ck_assert_int_eq(d->placeholder_style, BE_PLACEHOLDER_QMARK);
  ck_assert(d->features & BE_FEATURE_RETURNING);
  ck_assert(d->features & BE_FEATURE_JSON_EACH);
  ck_assert(d->features & BE_FEATURE_SAVEPOINTS);
  ck_assert(!(d->features & BE_FEATURE_ARRAY_PARAM));
  /* RETURNING and json_each work */
  exec_ok(c, "CREATE TABLE u(id INTEGER PRIMARY KEY, name TEXT)");
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, "INSERT INTO u(name) VALUES (?) RETURNING id", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_text(s, 1, "x", 1, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_int_eq(be_stmt_column_int64(s, 0), 1);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_DONE);
  be_stmt_finalize(s);
  ck_assert_int_eq(
    be_conn_prepare(&s, c, "SELECT COUNT(*) FROM json_each(?) WHERE value IN (1, 3)", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_text(s, 1, "[1,2,3]", BE_NUL_TERMINATED, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_int_eq(be_stmt_column_int64(s, 0), 2);
  be_stmt_finalize(s);
  be_conn_close(c);

  /* configured driver */
  be_sqlite_options o;
  ck_assert_int_eq(be_sqlite_options_init(&o, BE_SQLITE_OPTIONS_VERSION), BE_OK);
  ck_assert_int_eq(o.journal_mode, BE_SQLITE_JOURNAL_WAL);
  ck_assert_int_eq(o.busy_timeout_ms, 5000);
  ck_assert_int_eq(be_sqlite_options_init(&o, 99), BE_E_MISUSE);
  ck_assert_int_eq(be_sqlite_options_init(NULL, BE_SQLITE_OPTIONS_VERSION), BE_E_MISUSE);
  be_sqlite_options_init(&o, BE_SQLITE_OPTIONS_VERSION);
  o.journal_mode = BE_SQLITE_JOURNAL_DELETE;
  o.synchronous = BE_SQLITE_SYNC_FULL;
  o.foreign_keys = 0;
  o.busy_timeout_ms = 123;
  be_driver *drv = NULL;
  ck_assert_int_eq(be_sqlite_driver_new(&drv, &o, NULL), BE_OK);
  char other[600];
  snprintf(other, sizeof other, "file:%s/other.db?mode=rwc", tmpdir);
  ck_assert_int_eq(be_conn_open(&c, drv, other, NULL), BE_OK);
  pragma_str(c, "PRAGMA journal_mode", "delete");
  pragma_str(c, "PRAGMA foreign_keys", "0");
  pragma_str(c, "PRAGMA synchronous", "2");
  pragma_str(c, "PRAGMA busy_timeout", "123");
  be_conn_close(c);
  be_sqlite_driver_free(drv);

  sqlite_driver_rejects_bad_options(o);

  /* read-only open of a missing file */
  o = (be_sqlite_options)BE_SQLITE_OPTIONS_INIT;
  o.open_flags = SQLITE_OPEN_READONLY;
  ck_assert_int_eq(be_sqlite_driver_new(&drv, &o, NULL), BE_OK);
  snprintf(other, sizeof other, "%s/missing.db", tmpdir);
  ck_assert_int_eq(be_conn_open(&c, drv, other, NULL), BE_E_DB_UNREACHABLE);
  be_sqlite_driver_free(drv);
}
END_TEST

/* Each bad tuning value is a validation error naming its field. */
static void sqlite_tuning_rejects_bad_values(void) {
  be_driver *drv = NULL;
  static const struct {
    const char *field;
    int64_t v;
  } bad[] = {{"cache_size", INT64_C(1) << 40}, {"cache_size", -(INT64_C(1) << 40)}, {"mmap_size", -2}, {"secure_delete", 3}, {"secure_delete", -2}, {"temp_store", 3}, {"temp_store", -5}, {"wal_autocheckpoint", -2}, {"journal_size_limit", -2}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    be_sqlite_options x = BE_SQLITE_OPTIONS_INIT;
    const char *f = bad[i].field;
    if (strcmp(f, "cache_size") == 0) x.cache_size = bad[i].v;
    if (strcmp(f, "mmap_size") == 0) x.mmap_size = bad[i].v;
    if (strcmp(f, "secure_delete") == 0) x.secure_delete = (int32_t)bad[i].v;
    if (strcmp(f, "temp_store") == 0) x.temp_store = (int32_t)bad[i].v;
    if (strcmp(f, "wal_autocheckpoint") == 0) x.wal_autocheckpoint = (int32_t)bad[i].v;
    if (strcmp(f, "journal_size_limit") == 0) x.journal_size_limit = bad[i].v;
    be_error *e = NULL;
    drv = (be_driver *)1;
    ck_assert_int_eq(be_sqlite_driver_new(&drv, &x, &e), BE_E_VALIDATION);
    ck_assert_ptr_null(drv);
    ck_assert_str_eq(be_error_field_name(e, 0), f);
    be_error_free(e);
  }
}

/* Every tuning pragma is applied on every connection (read back on a
 * pooled one), the defaults leave SQLite's own values, and each bad value
 * is a validation error naming its field. */
START_TEST(driver_tuning_pragmas) {
  /* the defaults change none of them: a connection reads what a plain
   * sqlite3_open_v2() of this SQLite build reads */
  static const char *const names[] = {"cache_size", "mmap_size", "secure_delete", "temp_store",
                                      "wal_autocheckpoint", "journal_size_limit"};
  be_conn *c = open_file(NULL);
  sqlite3 *raw = NULL;
  char rawpath[600];
  snprintf(rawpath, sizeof rawpath, "%s/raw.db", tmpdir);
  ck_assert_int_eq(sqlite3_open_v2(rawpath, &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                   SQLITE_OK);
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA %s", names[i]);
    sqlite3_stmt *st = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(raw, sql, -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    pragma_str(c, sql, (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
  }
  sqlite3_close(raw);
  be_conn_close(c);

  be_sqlite_options o = BE_SQLITE_OPTIONS_INIT;
  o.cache_size = -8192;
  o.mmap_size = 1 << 20;
  o.secure_delete = 1;
  o.temp_store = 2;
  o.wal_autocheckpoint = 250;
  o.journal_size_limit = 4 << 20;
  be_driver *drv = NULL;
  ck_assert_int_eq(be_sqlite_driver_new(&drv, &o, NULL), BE_OK);
  be_pool_options po = BE_POOL_OPTIONS_INIT;
  po.driver = drv;
  po.dsn = dbpath;
  po.min_conns = 2;
  po.max_conns = 2;
  be_pool *pool = NULL;
  ck_assert_int_eq(be_pool_new(&pool, &po, NULL), BE_OK);
  be_conn *a = NULL, *b = NULL;
  ck_assert_int_eq(be_pool_acquire(&a, pool, NULL), BE_OK);
  ck_assert_int_eq(be_pool_acquire(&b, pool, NULL), BE_OK);
  be_conn *both[2] = {a, b};
  for (int i = 0; i < 2; i++) {
    pragma_str(both[i], "PRAGMA cache_size", "-8192");
    pragma_str(both[i], "PRAGMA mmap_size", "1048576");
    pragma_str(both[i], "PRAGMA secure_delete", "1");
    pragma_str(both[i], "PRAGMA temp_store", "2");
    pragma_str(both[i], "PRAGMA wal_autocheckpoint", "250");
    pragma_str(both[i], "PRAGMA journal_size_limit", "4194304");
  }
  be_pool_release(pool, a);
  be_pool_release(pool, b);
  be_pool_free(pool);
  be_sqlite_driver_free(drv);

  /* 0 pages and 0 bytes are values too: off, not "leave" */
  o.cache_size = 100;
  o.mmap_size = 0;
  o.secure_delete = 2;
  o.wal_autocheckpoint = 0;
  o.journal_size_limit = 0;
  ck_assert_int_eq(be_sqlite_driver_new(&drv, &o, NULL), BE_OK);
  c = open_file(drv);
  pragma_str(c, "PRAGMA cache_size", "100");
  pragma_str(c, "PRAGMA mmap_size", "0");
  pragma_str(c, "PRAGMA secure_delete", "2");
  pragma_str(c, "PRAGMA wal_autocheckpoint", "0");
  pragma_str(c, "PRAGMA journal_size_limit", "0");
  be_conn_close(c);
  be_sqlite_driver_free(drv);

  sqlite_tuning_rejects_bad_values();
}
END_TEST

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

START_TEST(busy_is_a_typed_error_not_a_hang) {
  be_sqlite_options o = BE_SQLITE_OPTIONS_INIT;
  o.busy_timeout_ms = 50;
  be_driver *drv = NULL;
  ck_assert_int_eq(be_sqlite_driver_new(&drv, &o, NULL), BE_OK);
  be_conn *a = open_file(drv), *b = open_file(drv);
  exec_ok(a, "CREATE TABLE t(x)");
  ck_assert_int_eq(be_conn_begin(a, BE_TX_IMMEDIATE, NULL), BE_OK);
  ck_assert_int_eq(be_conn_in_transaction(a), 1);
  exec_ok(a, "INSERT INTO t VALUES (1)");

  int64_t t0 = now_ms();
  be_error *e = NULL;
  ck_assert_int_eq(be_conn_begin(b, BE_TX_IMMEDIATE, &e), BE_E_BUSY);
  int64_t waited = now_ms() - t0;
  ck_assert_int_eq(be_error_is_retryable(e), 1);
  ck_assert_int_eq(be_code_is_retryable(be_error_code(e)), 1);
  ck_assert_int_eq(be_error_driver_code(be_error_cause(e)) & 0xff, SQLITE_BUSY);
  ck_assert_int_eq(be_error_http_status(e), 503);
  be_error_free(e);
  ck_assert_int_ge(waited, 40);   /* the busy timeout was honoured ... */
  ck_assert_int_lt(waited, 3000); /* ... and nothing hung */
  ck_assert_int_eq(be_conn_in_transaction(b), 0);

  /* a plain write outside a transaction too */
  ck_assert_int_eq(be_conn_exec(b, "INSERT INTO t VALUES (2)", &e), BE_E_BUSY);
  be_error_free(e);
  /* readers are not blocked in WAL mode, and see the committed state */
  ck_assert_int_eq(count_rows(b, "t"), 0);
  ck_assert_int_eq(be_conn_commit(a, NULL), BE_OK);
  ck_assert_int_eq(count_rows(b, "t"), 1);
  ck_assert_int_eq(be_conn_begin(b, BE_TX_IMMEDIATE, NULL), BE_OK);
  ck_assert_int_eq(be_conn_rollback(b, NULL), BE_OK);
  ck_assert_int_eq(be_conn_rollback(b, NULL), BE_OK); /* nothing open: no-op */
  be_conn_close(a);
  be_conn_close(b);
  be_sqlite_driver_free(drv);
}
END_TEST

START_TEST(close_rolls_back_open_transaction) {
  be_conn *a = open_file(NULL);
  exec_ok(a, "CREATE TABLE t(x)");
  ck_assert_int_eq(be_conn_begin(a, BE_TX_DEFERRED, NULL), BE_OK);
  exec_ok(a, "INSERT INTO t VALUES (1)");
  be_stmt *s = NULL; /* a cached statement too */
  ck_assert_int_eq(be_conn_prepare(&s, a, "SELECT x FROM t", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  be_stmt_finalize(s);
  be_conn_close(a);
  be_conn *b = open_file(NULL);
  ck_assert_int_eq(count_rows(b, "t"), 0);
  be_conn_close(b);
}
END_TEST

START_TEST(savepoints_and_names) {
  be_conn *c = open_mem();
  exec_ok(c, "CREATE TABLE t(x)");
  ck_assert_int_eq(be_conn_begin(c, BE_TX_EXCLUSIVE, NULL), BE_OK);
  exec_ok(c, "INSERT INTO t VALUES (1)");
  ck_assert_int_eq(be_conn_savepoint(c, "sp_1", NULL), BE_OK);
  exec_ok(c, "INSERT INTO t VALUES (2)");
  ck_assert_int_eq(be_conn_rollback_to(c, "sp_1", NULL), BE_OK);
  ck_assert_int_eq(be_conn_release(c, "sp_1", NULL), BE_OK);
  ck_assert_int_eq(be_conn_savepoint(c, "_B2", NULL), BE_OK);
  exec_ok(c, "INSERT INTO t VALUES (3)");
  ck_assert_int_eq(be_conn_release(c, "_B2", NULL), BE_OK);
  ck_assert_int_eq(be_conn_commit(c, NULL), BE_OK);
  ck_assert_int_eq(count_rows(c, "t"), 2);

  char longest[66];
  memset(longest, 'a', 65);
  longest[65] = '\0'; /* 65 characters: one too many */
  const char *bad[] = {"", "1a", "a b", "a;DROP TABLE t", "sp-1", "\xc3\xa9", longest};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    be_error *e = NULL;
    ck_assert_int_eq(be_conn_savepoint(c, bad[i], &e), BE_E_VALIDATION);
    ck_assert_str_eq(be_error_field_name(e, 0), "savepoint");
    be_error_free(e);
    ck_assert_int_eq(be_conn_release(c, bad[i], NULL), BE_E_VALIDATION);
    ck_assert_int_eq(be_conn_rollback_to(c, bad[i], NULL), BE_E_VALIDATION);
  }
  ck_assert_int_eq(be_conn_savepoint(c, NULL, NULL), BE_E_VALIDATION);
  /* 64 characters is the maximum */
  longest[64] = '\0';
  ck_assert_int_eq(be_conn_savepoint(c, longest, NULL), BE_OK);
  ck_assert_int_eq(be_conn_in_transaction(c), 1); /* SQLite: a savepoint outside BEGIN opens one */
  ck_assert_int_eq(be_conn_rollback(c, NULL), BE_OK);
  ck_assert_int_eq(be_conn_release(c, "nosuch", NULL), BE_E_STORAGE);
  be_conn_close(c);
}
END_TEST

/* ---- observer ---- */

typedef struct obs_log {
  int calls;
  char sql[64];
  int64_t duration, rows;
  int rc;
  int hash_ok; /* every call's sql_hash was be__sql_hash(sql) */
} obs_log;

static void observer(void *ud, const be__stmt_run *run) {
  obs_log *l = ud;
  if (l->calls++ == 0) l->hash_ok = 1;
  if (run->sql_hash != be__sql_hash(run->sql) || run->sql_hash == 0) l->hash_ok = 0;
  snprintf(l->sql, sizeof l->sql, "%s", run->sql);
  l->duration = run->duration_ns;
  l->rows = run->rows;
  l->rc = run->rc;
}

static int64_t ticking(void *ud) {
  int64_t *t = ud;
  return *t += 10;
}

START_TEST(observer_sees_each_run_once) {
  be_conn *c = open_mem();
  obs_log l = {0};
  int64_t tick = 0;
  be_clock *clk = NULL;
  ck_assert_int_eq(be_clock_custom_new(&clk, ticking, NULL, &tick, NULL), BE_OK);
  be__conn_set_clock(c, clk);
  exec_ok(c, "CREATE TABLE t(x); INSERT INTO t VALUES (1), (2), (3)");
  ck_assert_int_eq(be__conn_observer_add(c, observer, NULL, &l, NULL), BE_OK);
  ck_assert_int_eq(be__conn_observer_add(c, observer, NULL, &l, NULL), BE_OK); /* twice: no-op */
  ck_assert_int_eq(be__conn_observer_count(c), 1);

  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT x FROM t", NULL), BE_OK);
  ck_assert_str_eq(be__stmt_sql(s), "SELECT x FROM t");
  while (be_stmt_step(s, NULL) == BE_ROW) {
  }
  ck_assert_int_eq(l.calls, 1);
  ck_assert_str_eq(l.sql, "SELECT x FROM t");
  ck_assert_int_eq(l.rows, 3);
  ck_assert_int_eq(l.rc, BE_OK);
  ck_assert_int_eq(l.duration, 10);
  be_stmt_finalize(s); /* finished already: no second call */
  ck_assert_int_eq(l.calls, 1);

  /* stopped early: finalize reports it */
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT x FROM t", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_int_eq(l.calls, 1);
  be_stmt_finalize(s);
  ck_assert_int_eq(l.calls, 2);
  ck_assert_int_eq(l.rows, 1);
  /* and reset does too */
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT x FROM t", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_int_eq(be_stmt_reset(s, NULL), BE_OK);
  ck_assert_int_eq(l.calls, 3);
  ck_assert_int_eq(l.rows, 2);
  be_stmt_finalize(s);
  ck_assert_int_eq(l.calls, 3);

  /* errors are reported with their code */
  ck_assert_int_eq(be_conn_prepare(&s, c, "INSERT INTO t VALUES (abs(-9223372036854775807 - 1))",
                                   NULL),
                   BE_OK);
  ck_assert_int_lt(be_stmt_step(s, NULL), 0);
  ck_assert_int_eq(l.calls, 4);
  ck_assert_int_eq(l.rc, BE_E_STORAGE);
  be_stmt_finalize(s);
  /* exec is observed as well */
  exec_ok(c, "DELETE FROM t");
  ck_assert_int_eq(l.calls, 5);
  ck_assert_str_eq(l.sql, "DELETE FROM t");
  /* each call carried its text's hash (prepared statements and exec alike) */
  ck_assert_int_eq(l.hash_ok, 1);

  /* removed: no more calls */
  ck_assert_int_eq(be__conn_observer_remove(c, observer, &l), 1);
  ck_assert_int_eq(be__conn_observer_remove(c, observer, &l), 0);
  ck_assert_int_eq(be__conn_observer_count(c), 0);
  ck_assert_int_eq(count_rows(c, "t"), 0);
  ck_assert_int_eq(l.calls, 5);
  be_conn_close(c);
  be_clock_free(clk);
}
END_TEST

/* Statement timing is sampled (storage.h, be__stmt_run): what one
 * observer saw of every run. */
typedef struct sample_log {
  int runs, timed, untimed_with_duration, max_weight;
  int64_t weights; /* sum of the timed runs' weights */
  int64_t since;   /* runs since the last timed one */
  int64_t last_ns; /* the last timed run's duration */
  int bad_weight;  /* a timed run stood for other than itself + the untimed before it */
  int slow_heavy;  /* a run of two coarse ticks or more stood for more than itself */
} sample_log;

static void sampler(void *ud, const be__stmt_run *run) {
  sample_log *l = ud;
  l->runs++;
  l->since++;
  if (run->weight == 0) {
    if (run->duration_ns != 0) l->untimed_with_duration++;
    return;
  }
  l->timed++;
  l->weights += run->weight;
  if (run->weight > 1 && run->duration_ns >= 2 * be__clock_coarse_tick_ns()) l->slow_heavy++;
  if ((int)run->weight > l->max_weight) l->max_weight = (int)run->weight;
  /* a run that proved slow untimed stands for itself alone */
  if (run->weight != l->since && run->weight != 1) l->bad_weight = 1;
  if (run->weight == l->since) l->since = 0;
  else l->since--;
  l->last_ns = run->duration_ns;
}

/* Run "SELECT x FROM t WHERE x = 1" n times through the statement cache. */
static void run_fast(be_conn *c, int n) {
  for (int i = 0; i < n; i++) {
    be_stmt *s = first_row(c, "SELECT x FROM t WHERE x = 1");
    ck_assert_int_eq(be_stmt_step(s, NULL), BE_DONE);
    be_stmt_finalize(s);
  }
}

START_TEST(statement_timing_is_sampled_but_every_run_counted) {
  be_conn *c = open_mem();
  exec_ok(c, "CREATE TABLE t(x); INSERT INTO t VALUES (1)");
  sample_log l = {0};
  ck_assert_int_eq(be__conn_observer_add_ex(c, sampler, NULL, &l, INT64_MAX, 0, NULL), BE_OK);
  run_fast(c, 1000);
  ck_assert_int_eq(l.runs, 1000); /* every run is seen */
  ck_assert_int_eq(l.untimed_with_duration, 0);
  ck_assert_int_eq(l.bad_weight, 0);
  ck_assert_int_le(l.max_weight, BE__RUN_SAMPLE_MAX);
  ck_assert_int_eq(l.weights + l.since, 1000); /* the weights account for every run */
  /* fast runs are timed one in BE__RUN_SAMPLE_EVERY (a slow machine, e.g.
   * under valgrind, may time more: a run over 20 us times the next) */
  ck_assert_int_ge(l.timed, 1000 / BE__RUN_SAMPLE_MAX);

  /* a run that proves slow untimed is timed, and so reaches a slow-query
   * log: run fast statements until one was just timed (the next is then
   * untimed), then one of about 100 ms */
  be_slowlog_options so = BE_SLOWLOG_OPTIONS_INIT;
  so.threshold_ms = 50; /* exact over 50 ms: still sampled with ticks up to 5 ms */
  be_slowlog *log = NULL;
  ck_assert_int_eq(be_slowlog_new(&log, &so, NULL), BE_OK);
  ck_assert_int_eq(be_slowlog_attach(log, c, NULL), BE_OK); /* reads no weight: keeps l's */
  do run_fast(c, 1);
  while (l.since != 0);
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c,
                                   "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                                   "WHERE i < 600000) SELECT count(*) FROM n",
                                   NULL),
                   BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  be_stmt_finalize(s);
  ck_assert_int_eq(l.since, 0); /* timed */
  ck_assert_int_eq(l.bad_weight, 0);
  ck_assert_int_ge(l.last_ns, 2 * be__clock_coarse_tick_ns());
  ck_assert_int_eq(be_slowlog_count(log), 1);
  be_slowlog_free(log);

  /* an observer that needs every run timed (be__conn_observer_add: exact
   * over 0) makes every run timed */
  sample_log all = {0};
  ck_assert_int_eq(be__conn_observer_add(c, sampler, NULL, &all, NULL), BE_OK);
  run_fast(c, 100);
  ck_assert_int_eq(all.runs, 100);
  ck_assert_int_eq(all.timed, 100);
  ck_assert_int_eq(be__conn_observer_remove(c, sampler, &all), 1);

  /* so does a clock other than the system clock */
  int64_t t = 0;
  be_clock *clk = NULL;
  ck_assert_int_eq(be_clock_custom_new(&clk, ticking, NULL, &t, NULL), BE_OK);
  be__conn_set_clock(c, clk);
  sample_log fake = {0};
  ck_assert_int_eq(be__conn_observer_add_ex(c, sampler, NULL, &fake, INT64_MAX, 0, NULL), BE_OK);
  run_fast(c, 100);
  ck_assert_int_eq(fake.timed, 100);
  be_conn_close(c);
  be_clock_free(clk);
}
END_TEST

/* An in-memory connection made by schema, with new statement statistics
 * in *ss attached. */
static be_conn *conn_with_stmt_stats(const char *schema, be_stmt_stats **ss) {
  be_conn *c = open_mem();
  exec_ok(c, schema);
  *ss = NULL;
  ck_assert_int_eq(be_stmt_stats_new(ss, NULL, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_stats_attach(*ss, c, NULL), BE_OK);
  return c;
}

/* ss lists want statements (at most 8), each run calls times, whose
 * timed runs stand for n of them, calls / 2 <= n <= calls: they trail by
 * the statement's runs since its last timed one, a random number, a few
 * gaps at most. The mean is total / n rounded down, so n lies in
 * (total / (mean + 1), total / mean]: at a mean near 1,000 ns,
 * total / mean passes calls + 1 with n = calls. */
static void assert_stood_for(be_stmt_stats *ss, size_t want, int64_t calls) {
  be_stmt_stat top[8];
  for (int i = 0; i < 8; i++) top[i] = (be_stmt_stat)BE_STMT_STAT_INIT;
  size_t n = 0;
  ck_assert_int_eq(be_stmt_stats_top(top, 8, &n, ss, NULL), BE_OK);
  ck_assert_uint_eq(n, want);
  for (size_t i = 0; i < n; i++) {
    ck_assert_int_eq(top[i].calls, calls);
    ck_assert_int_gt(top[i].mean_ns, 0);
    double total = (double)top[i].total_ns, mean = (double)top[i].mean_ns;
    ck_assert_msg(total / mean >= (double)calls / 2 && total / (mean + 1) < (double)calls,
                  "%s: %lld calls, timed runs stand for %.1f", top[i].sql, (long long)calls,
                  total / mean);
  }
}

/* Two statements run in turn, 1,000 times each: a fixed sampling period
 * would time only one of them; each statement's timed runs stand for its
 * own calls, so its histogram's count never passes them. */
START_TEST(alternating_statements_are_each_sampled) {
  be_stmt_stats *ss;
  be_conn *c = conn_with_stmt_stats("CREATE TABLE t(x); INSERT INTO t VALUES (1)", &ss);
  const char *sql[2] = {"SELECT x FROM t WHERE x = 1", "SELECT x + 1 FROM t"};
  for (int i = 0; i < 2000; i++) {
    be_stmt_finalize(first_row(c, sql[i % 2]));
  }
  assert_stood_for(ss, 2, 1000);
  be_conn_close(c);
  be_stmt_stats_free(ss);
}
END_TEST

/* A sample that proves slow (its coarse readings would be two ticks
 * apart) once took the pending weight of the fast runs before it, which
 * counted slow runs about twice in totals and means; it stands for itself
 * now, and the next run is the sample. A slow run untimed makes the next
 * run the sample: two slow runs in a row put the second on the slot. */
START_TEST(a_slow_sample_stands_for_itself) {
  be_conn *c = open_mem();
  exec_ok(c, "CREATE TABLE t(x); INSERT INTO t VALUES (1)");
  sample_log l = {0};
  ck_assert_int_eq(be__conn_observer_add_ex(c, sampler, NULL, &l, INT64_MAX, 0, NULL), BE_OK);
  const char *slow = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                     "WHERE i < 300000) SELECT count(*) FROM n";
  be_stmt_finalize(first_row(c, slow)); /* its first run: timed, alone */
  for (int round = 0; round < 3; round++) {
    do run_fast(c, 1);
    while (l.since != 0); /* just after a sample: the next gap is 7 runs or more */
    run_fast(c, 3);       /* untimed, pending */
    for (int i = 0; i < 2; i++) be_stmt_finalize(first_row(c, slow));
    ck_assert_int_ge(l.last_ns, 2 * be__clock_coarse_tick_ns()); /* slow enough */
  }
  ck_assert_int_eq(l.slow_heavy, 0);
  ck_assert_int_eq(l.bad_weight, 0);
  ck_assert_int_eq(l.weights + l.since, l.runs);
  be_conn_close(c);
}
END_TEST

static const char five_columns[] = "CREATE TABLE t(a, b, c, d, e); INSERT INTO t VALUES (1, 2, 3, 4, 5)";
static const char *const five_selects[5] = {"SELECT a FROM t", "SELECT b FROM t", "SELECT c FROM t",
                                            "SELECT d FROM t", "SELECT e FROM t"};

/* A scope per request (attached at its begin, detached at its end) once
 * dropped the weight pending for every other observer, and made the
 * request's first run timed standing for itself: statements after the
 * first of a request were then timed only at their first run (their
 * timed runs stood for 1 of 1,000 calls), and the query histogram held
 * about one run per request. A scope reads no weight. */
START_TEST(scoped_requests_keep_the_sampled_weight) {
  be_stmt_stats *ss;
  be_conn *c = conn_with_stmt_stats(five_columns, &ss);
  be_query_stats *qs = NULL;
  ck_assert_int_eq(be_query_stats_new(&qs, NULL), BE_OK);
  ck_assert_int_eq(be_query_stats_attach(qs, c, NULL), BE_OK);
  for (int r = 0; r < 1000; r++) {
    be_scope *sc = NULL;
    ck_assert_int_eq(be_scope_begin(&sc, c, NULL, NULL), BE_OK);
    for (int i = 0; i < 5; i++) be_stmt_finalize(first_row(c, five_selects[i]));
    be_scope_end(sc);
    be_scope_free(sc);
  }
  assert_stood_for(ss, 5, 1000);
  int64_t counted = (int64_t)be_histogram_count(be_query_stats_histogram(qs));
  ck_assert_msg(counted >= 2500 && counted <= 5000, "5,000 queries, histogram %lld", (long long)counted);
  be_conn_close(c);
  be_stmt_stats_free(ss);
  be_query_stats_free(qs);
}
END_TEST

/* A run timed because it must be (a be_conn_exec, a statement's first
 * run) once took the pending weight of the others' untimed runs and drew
 * a new gap: an exec of 5 ms stood for the fast runs before it (a mean
 * 9x too high), and an exec every six runs meant the countdown never
 * ended (the others' timed runs stood for 1 of 1,000 calls). Now such a
 * run stands for itself and moves no countdown. */
START_TEST(forced_runs_stand_for_themselves) {
  be_stmt_stats *ss;
  be_conn *c = conn_with_stmt_stats(five_columns, &ss);
  sample_log l = {0};
  ck_assert_int_eq(be__conn_observer_add_ex(c, sampler, NULL, &l, INT64_MAX, 0, NULL), BE_OK);
  for (int r = 0; r < 1000; r++) {
    for (int i = 0; i < 5; i++) be_stmt_finalize(first_row(c, five_selects[i]));
    exec_ok(c, "SELECT 1");
  }
  assert_stood_for(ss, 6, 1000); /* the exec stands for all its calls, each for itself */
  ck_assert_int_eq(l.bad_weight, 0);
  ck_assert_int_eq(l.weights + l.since, 6000);
  be_conn_close(c);
  be_stmt_stats_free(ss);
}
END_TEST

/* Observers that change between runs: a stats attached later never gets
 * a weight standing for runs it did not see, and a slow-query log
 * attached while a run is untimed still logs it when it is slow. */
START_TEST(observers_attached_later_get_what_they_saw) {
  be_conn *c = open_mem();
  exec_ok(c, "CREATE TABLE t(x); INSERT INTO t VALUES (1), (2)");
  be_query_stats *a = NULL, *b = NULL;
  ck_assert_int_eq(be_query_stats_new(&a, NULL), BE_OK);
  ck_assert_int_eq(be_query_stats_new(&b, NULL), BE_OK);
  ck_assert_int_eq(be_query_stats_attach(a, c, NULL), BE_OK);
  run_fast(c, 7);
  ck_assert_int_eq(be_query_stats_attach(b, c, NULL), BE_OK);
  run_fast(c, 10);
  ck_assert_int_eq(be_query_stats_queries(b), 10);
  int64_t timed = be_histogram_count(be_query_stats_histogram(b));
  ck_assert_int_ge(timed, 1);
  ck_assert_int_le(timed, 10);
  ck_assert_int_le(be_histogram_count(be_query_stats_histogram(a)), 17);

  sample_log l = {0};
  ck_assert_int_eq(be__conn_observer_add_ex(c, sampler, NULL, &l, INT64_MAX, 0, NULL), BE_OK);
  be_stmt_finalize(first_row(c, "SELECT x FROM t")); /* its first run: always timed */
  do run_fast(c, 1);
  while (l.since != 0); /* the next run is untimed */
  be_stmt *s = first_row(c, "SELECT x FROM t");
  be_slowlog_options so = BE_SLOWLOG_OPTIONS_INIT;
  so.threshold_ms = 1; /* every run timed from now on */
  be_slowlog *log = NULL;
  ck_assert_int_eq(be_slowlog_new(&log, &so, NULL), BE_OK);
  ck_assert_int_eq(be_slowlog_attach(log, c, NULL), BE_OK);
  struct timespec nap = {0, 6 * 1000 * 1000};
  nanosleep(&nap, NULL);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_DONE);
  be_stmt_finalize(s);
  ck_assert_int_eq(be_slowlog_count(log), 1);
  be_conn_close(c);
  be_slowlog_free(log);
  be_query_stats_free(a);
  be_query_stats_free(b);
}
END_TEST

/* be_conn_exec() runs are always timed and stand for themselves in
 * statement statistics, even when other statements' runs went untimed
 * just before. */
START_TEST(exec_stands_for_itself_in_statement_stats) {
  be_stmt_stats *ss;
  be_conn *c = conn_with_stmt_stats("CREATE TABLE t(x); INSERT INTO t VALUES (1)", &ss);
  sample_log l = {0};
  ck_assert_int_eq(be__conn_observer_add_ex(c, sampler, NULL, &l, INT64_MAX, 0, NULL), BE_OK);
  do run_fast(c, 1);
  while (l.since != 0);
  run_fast(c, 3); /* untimed on a native run */
  exec_ok(c, "UPDATE t SET x = 1");
  be_stmt_stat top[2] = {BE_STMT_STAT_INIT, BE_STMT_STAT_INIT};
  size_t n = 0;
  ck_assert_int_eq(be_stmt_stats_top(top, 2, &n, ss, NULL), BE_OK);
  ck_assert_uint_eq(n, 2);
  const be_stmt_stat *u = strncmp(top[0].sql, "UPDATE", 6) == 0 ? &top[0] : &top[1];
  ck_assert_int_eq(u->calls, 1);
  ck_assert_int_gt(u->mean_ns, 0);
  ck_assert_int_eq(u->total_ns / u->mean_ns, 1); /* its histogram stands for one run */
  be_conn_close(c);
  be_stmt_stats_free(ss);
}
END_TEST

/* Runs of "SELECT x FROM t WHERE x = 1" (one row each) and of a
 * statement that fails at its first step (integer overflow). */
static void run_failing(be_conn *c) {
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT abs(-9223372036854775807 - 1)", NULL), BE_OK);
  ck_assert_int_lt(be_stmt_step(s, NULL), 0);
  be_stmt_finalize(s);
}

static void expect_counts(be_query_stats *q, int64_t queries, int64_t rows, int64_t errors) {
  ck_assert_int_eq(be_query_stats_queries(q), queries);
  ck_assert_int_eq(be_query_stats_rows(q), rows);
  ck_assert_int_eq(be_query_stats_errors(q), errors);
}

/* Query stats are called for timed runs only and count every run from
 * the connections' own counters: runs on a connection count while it is
 * attached, stay counted after it is detached or closed, and a reset
 * counts from zero; the host's own records add to them. */
/* An untimed run reaches every observer that wants untimed runs, in
 * whatever place it was attached: after timed-only ones, between them,
 * and after one was removed (the untimed walk ends after the last such
 * observer; a wrong end drops the later ones' runs). */
START_TEST(untimed_runs_reach_observers_after_timed_only_ones) {
  be_conn *c = open_mem();
  exec_ok(c, "CREATE TABLE t(x); INSERT INTO t VALUES (1)");
  sample_log t1 = {0}, a1 = {0}, t2 = {0}, a2 = {0};
  ck_assert_int_eq(be__conn_observer_add_ex(c, sampler, NULL, &t1, INT64_MAX, BE__OBS_TIMED_ONLY, NULL),
                   BE_OK);
  ck_assert_int_eq(be__conn_observer_add_ex(c, sampler, NULL, &a1, INT64_MAX, 0, NULL), BE_OK);
  ck_assert_int_eq(be__conn_observer_add_ex(c, sampler, NULL, &t2, INT64_MAX, BE__OBS_TIMED_ONLY, NULL),
                   BE_OK);
  ck_assert_int_eq(be__conn_observer_add_ex(c, sampler, NULL, &a2, INT64_MAX, 0, NULL), BE_OK);
  run_fast(c, 40);
  ck_assert_int_eq(a1.runs, 40);
  ck_assert_int_eq(a2.runs, 40);
  ck_assert_int_eq(t1.runs, a1.timed); /* timed ones alone */
  ck_assert_int_eq(t2.runs, a2.timed);
  ck_assert_int_eq(be__conn_observer_remove(c, sampler, &a2), 1); /* the last untimed one goes */
  ck_assert_int_eq(be__conn_observer_remove(c, sampler, &t1), 1);
  memset(&a1, 0, sizeof a1);
  memset(&t2, 0, sizeof t2);
  run_fast(c, 40);
  ck_assert_int_eq(a1.runs, 40);
  ck_assert_int_eq(a2.runs, 40); /* untouched since removed */
  ck_assert_int_eq(t2.runs, a1.timed);
  be_conn_close(c);
}
END_TEST

START_TEST(query_stats_count_what_connections_ran_while_attached) {
  be_conn *c1 = open_mem(), *c2 = open_mem();
  exec_ok(c1, "CREATE TABLE t(x); INSERT INTO t VALUES (1)");
  exec_ok(c2, "CREATE TABLE t(x); INSERT INTO t VALUES (1)");
  sample_log all = {0}, timed = {0};
  ck_assert_int_eq(be__conn_observer_add_ex(c1, sampler, NULL, &all, INT64_MAX, 0, NULL), BE_OK);
  run_fast(c1, 3); /* observed, before the stats is attached: not its runs */
  ck_assert_int_eq(all.runs, 3);
  ck_assert_int_eq(be__conn_observer_add_ex(c1, sampler, NULL, &timed, INT64_MAX, BE__OBS_TIMED_ONLY, NULL),
                   BE_OK);
  memset(&all, 0, sizeof all); /* from here on, beside timed */
  be_query_stats *q = NULL;
  ck_assert_int_eq(be_query_stats_new(&q, NULL), BE_OK);
  ck_assert_int_eq(be_query_stats_attach(q, c1, NULL), BE_OK);
  ck_assert_int_eq(be_query_stats_attach(q, c2, NULL), BE_OK);
  run_fast(c1, 30);
  run_fast(c2, 20);
  run_failing(c2);
  expect_counts(q, 51, 50, 1);
  ck_assert_int_eq(all.runs, 30);
  /* told of the timed ones alone (a native build leaves some untimed;
   * under valgrind or a sanitizer every run takes over 20 us: all timed) */
  ck_assert_int_eq(timed.runs, all.timed);
  ck_assert_int_eq(timed.timed, all.timed);
  ck_assert_int_le(be_histogram_count(be_query_stats_histogram(q)), 51); /* sampled */
  be_query_stats_detach(q, c1);
  run_fast(c1, 10);
  be_conn_close(c2); /* its runs stay counted */
  expect_counts(q, 51, 50, 1);
  be_query_stats_record(q, 1000, 2, BE_OK);
  expect_counts(q, 52, 52, 1);
  be_query_stats_reset(q);
  expect_counts(q, 0, 0, 0);
  ck_assert_int_eq(be_query_stats_attach(q, c1, NULL), BE_OK);
  run_fast(c1, 5);
  expect_counts(q, 5, 5, 0);
  be_query_stats_reset(q); /* while attached: counts from here */
  run_failing(c1);
  expect_counts(q, 1, 0, 1);
  be_conn_close(c1);
  be_query_stats_free(q);
}
END_TEST

/* Calls a statement stats counted for the one text it holds, or 0. */
static int64_t calls_in(be_stmt_stats *ss) {
  be_stmt_stat top[2] = {BE_STMT_STAT_INIT, BE_STMT_STAT_INIT};
  size_t n = 0;
  ck_assert_int_eq(be_stmt_stats_top(top, 2, &n, ss, NULL), BE_OK);
  ck_assert_uint_le(n, 1);
  return n ? top[0].calls : 0;
}

static void run_cached(be_conn *c, int times) {
  for (int i = 0; i < times; i++) be_stmt_finalize(first_row(c, "SELECT x FROM t"));
}

/* An allocator that hands a freed block of the same size back first
 * (blocks carry their size before them), so an object freed and another
 * made just after land at the same address, whatever the C library or a
 * sanitizer would do. */
#define REUSE_KEEP 64
static void *reuse_kept[REUSE_KEEP];
static int reuse_n;
static void *reuse_malloc(size_t n, void *ud) {
  (void)ud;
  for (int i = reuse_n - 1; i >= 0; i--) {
    size_t *h = reuse_kept[i];
    if (h[-2] != n) continue;
    reuse_kept[i] = reuse_kept[--reuse_n];
    return h;
  }
  size_t *h = malloc(n + 2 * sizeof(size_t));
  if (h == NULL) return NULL;
  h[0] = n;
  return h + 2;
}
static void reuse_free(void *p, void *ud) {
  (void)ud;
  size_t *h = p;
  if (reuse_n < REUSE_KEEP) reuse_kept[reuse_n++] = h;
  else free(h - 2);
}
static void *reuse_realloc(void *p, size_t n, void *ud) {
  if (p == NULL) return reuse_malloc(n, ud);
  void *q = reuse_malloc(n, ud);
  if (q == NULL) return NULL;
  size_t old = ((size_t *)p)[-2];
  memcpy(q, p, old < n ? old : n);
  reuse_free(p, ud);
  return q;
}
static void reuse_allocator(int on) {
  be_allocator al = BE_ALLOCATOR_INIT;
  al.malloc_fn = reuse_malloc;
  al.realloc_fn = reuse_realloc;
  al.free_fn = reuse_free;
  ck_assert_int_eq(be_set_allocator(on ? &al : NULL, NULL), BE_OK);
  if (on) return;
  while (reuse_n > 0) free((size_t *)reuse_kept[--reuse_n] - 2);
}

/* A cached statement remembers its statistics entry for one stats (its
 * memo): a second stats on the same connection counts without it, and
 * the memo is dropped when the observers change, so a stats made later
 * at a freed one's address counts into its own entries. */
START_TEST(statement_memo_follows_the_stats_attached) {
  reuse_allocator(1);
  be_conn *c = open_mem();
  exec_ok(c, "CREATE TABLE t(x); INSERT INTO t VALUES (1)");
  be_stmt_stats *a = NULL, *b = NULL, *d = NULL;
  ck_assert_int_eq(be_stmt_stats_new(&a, NULL, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_stats_new(&b, NULL, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_stats_attach(a, c, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_stats_attach(b, c, NULL), BE_OK);
  run_cached(c, 50);
  ck_assert_int_eq(calls_in(a), 50);
  ck_assert_int_eq(calls_in(b), 50);
  be_stmt_stats_detach(a, c);
  run_cached(c, 20);
  ck_assert_int_eq(calls_in(a), 50);
  ck_assert_int_eq(calls_in(b), 70);
  uintptr_t was = (uintptr_t)a;
  be_stmt_stats_free(a); /* a held the memo until detached; b holds it now */
  ck_assert_int_eq(be_stmt_stats_new(&d, NULL, NULL), BE_OK);
  ck_assert_uint_eq((uintptr_t)d, was); /* where a was: a stale memo would match d */
  ck_assert_int_eq(be_stmt_stats_attach(d, c, NULL), BE_OK);
  run_cached(c, 30);
  ck_assert_int_eq(calls_in(d), 30);
  ck_assert_int_eq(calls_in(b), 100);
  be_stmt_stats_reset(b); /* b, the holder: entries stay where they are, the memo holds */
  run_cached(c, 5);
  ck_assert_int_eq(calls_in(b), 5);
  ck_assert_int_eq(calls_in(d), 35);
  be_conn_close(c);
  be_stmt_stats_free(b);
  be_stmt_stats_free(d);
  reuse_allocator(0);
}
END_TEST

/* Several observers on one connection, in order; close tells each. */
static char order[32];
static int closes;
static be_conn *closed_conn;

static void obs_a(void *ud, const be__stmt_run *run) {
  (void)run;
  strncat(order, ud, sizeof order - strlen(order) - 1);
}

static void on_closed(void *ud, be_conn *conn) {
  (void)ud;
  closes++;
  closed_conn = conn;
  /* the connection has dropped its observers already: removing is a no-op */
  ck_assert_int_eq(be__conn_observer_remove(conn, obs_a, ud), 0);
  ck_assert_int_eq(be__conn_observer_count(conn), 0);
}

START_TEST(observers_many_and_close_notice) {
  be_conn *c = open_mem();
  order[0] = '\0';
  closes = 0;
  ck_assert_int_eq(be__conn_observer_add(NULL, obs_a, NULL, "x", NULL), BE_E_MISUSE);
  ck_assert_int_eq(be__conn_observer_add(c, NULL, NULL, "x", NULL), BE_E_MISUSE);
  static char ids[6][2] = {"a", "b", "c", "d", "e", "f"};
  for (int i = 0; i < 6; i++) /* more than the first allocation holds */
    ck_assert_int_eq(be__conn_observer_add(c, obs_a, i % 2 ? on_closed : NULL, ids[i], NULL), BE_OK);
  ck_assert_int_eq(be__conn_observer_count(c), 6);
  exec_ok(c, "SELECT 1");
  ck_assert_str_eq(order, "abcdef");
  ck_assert_int_eq(be__conn_observer_remove(c, obs_a, ids[2]), 1);
  ck_assert_int_eq(be__conn_observer_remove(c, obs_a, ids[0]), 1);
  order[0] = '\0';
  exec_ok(c, "SELECT 1");
  ck_assert_str_eq(order, "bdef"); /* order kept */
  be_conn_close(c);
  ck_assert_int_eq(closes, 3); /* b, d, f have a close notice */
  ck_assert_ptr_eq(closed_conn, c);
}
END_TEST

START_TEST(pool_hooks) {
  be_conn *c = open_mem();
  int x;
  ck_assert_ptr_null(be__conn_pool_data(c));
  be__conn_set_pool_data(c, &x);
  ck_assert_ptr_eq(be__conn_pool_data(c), &x);
  ck_assert_ptr_nonnull(be__conn_native(c));
  ck_assert_int_eq(be__conn_tx_depth(c), 0);
  ck_assert_int_eq(be_conn_is_broken(c), 0);
  be__conn_mark_broken(c);
  ck_assert_int_eq(be_conn_is_broken(c), 1);
  ck_assert(be__ident_valid("abc_1"));
  ck_assert(!be__ident_valid("1abc"));
  be_conn_close(c);
}
END_TEST

/* be__conn_leftovers: each thing a pool's release must clear, alone. */
START_TEST(leftovers_name_what_a_pool_must_clear) {
  be_conn *c = open_mem();
  ck_assert_int_eq(be__conn_leftovers(c, 0), 0);
  be_stmt *s = NULL; /* a statement handed out */
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT 1", NULL), BE_OK);
  ck_assert_int_ne(be__conn_leftovers(c, 0), 0);
  be_stmt_finalize(s);
  ck_assert_int_eq(be__conn_leftovers(c, 0), 0);
  exec_ok(c, "BEGIN"); /* a transaction the driver knows of, begun by SQL */
  ck_assert_int_ne(be__conn_leftovers(c, 0), 0);
  exec_ok(c, "ROLLBACK");
  ck_assert_int_eq(be__conn_leftovers(c, 0), 0);
  obs_log l = {0}; /* observers past the pool's own */
  ck_assert_int_eq(be__conn_observer_add(c, observer, NULL, &l, NULL), BE_OK);
  ck_assert_int_eq(be__conn_leftovers(c, 1), 0);
  ck_assert_int_ne(be__conn_leftovers(c, 0), 0);
  ck_assert_int_eq(be__conn_observer_remove(c, observer, &l), 1);
  be__conn_mark_broken(c);
  ck_assert_int_ne(be__conn_leftovers(c, 0), 0);
  be_conn_close(c);
}
END_TEST

/* ---- allocation failures ---- */

static int alloc_body(void *arg) {
  (void)arg;
  be_conn *c = NULL;
  be_error *e = NULL;
  int rc = be_conn_open(&c, be_sqlite_driver(), ":memory:", &e);
  if (rc) goto out;
  rc = be_conn_exec(c, "CREATE TABLE t(x TEXT UNIQUE)", &e);
  for (int i = 0; rc == BE_OK && i < 2; i++) {
    be_stmt *s = NULL;
    rc = be_conn_prepare(&s, c, "INSERT INTO t VALUES (?)", &e);
    if (rc) break;
    rc = be_stmt_bind_text(s, 1, "same", 4, &e);
    if (rc == BE_OK) rc = be_stmt_step(s, &e);
    be_stmt_finalize(s);
    if (i == 1) {
      if (rc == BE_E_CONFLICT) rc = BE_OK; /* expected: the error object was made */
      else if (rc == BE_DONE) rc = BE_E_INTERNAL;
    } else if (rc == BE_DONE) {
      rc = BE_OK;
    }
    be_error_free(e);
    e = NULL;
  }
  if (rc == BE_OK) rc = be_conn_savepoint(c, "bad name", &e) == BE_E_VALIDATION ? BE_OK : BE_E_NOMEM;
  be_error_free(e);
  e = NULL;
  if (rc == BE_OK) rc = be_conn_set_stmt_cache_size(c, 300, &e);
out:
  be_error_free(e);
  be_conn_close(c);
  return rc;
}

START_TEST(allocation_failures_do_not_leak) {
  TU_FOR_EACH_ALLOC_FAILURE(alloc_body, NULL);
}
END_TEST

/* ---- failed opens: classified, the path named, nothing written ---- */

/* A short busy timeout, the default journal mode (WAL). */
static be_driver *short_busy_driver(int32_t journal_mode) {
  be_sqlite_options o = BE_SQLITE_OPTIONS_INIT;
  o.busy_timeout_ms = 50;
  o.journal_mode = journal_mode;
  be_driver *d = NULL;
  ck_assert_int_eq(be_sqlite_driver_new(&d, &o, NULL), BE_OK);
  return d;
}

/* Opening path fails with code, names the path in a detail that holds
 * `why` and none of SQLite's words, and leaves the file's bytes alone. */
static void expect_open_fails(const be_driver *d, const char *path, int32_t code, const char *why) {
  size_t before_len = 0, after_len = 0;
  unsigned char *before = tu_read_file(path, &before_len);
  int had_wal = tu_exists_with(path, "-wal"), had_journal = tu_exists_with(path, "-journal");
  be_conn *c = NULL;
  be_error *e = NULL;
  ck_assert_int_eq(be_conn_open(&c, d, path, &e), code);
  ck_assert_ptr_null(c);
  ck_assert_int_eq(be_error_code(e), code);
  ck_assert_msg(strstr(be_error_message(e), path) != NULL, "detail does not name the path: %s",
                be_error_message(e));
  ck_assert_msg(strstr(be_error_message(e), why) != NULL, "detail: %s", be_error_message(e));
  const be_error *cause = be_error_cause(e);
  ck_assert_ptr_nonnull(cause);
  ck_assert_int_ne(be_error_driver_code(cause), 0);
  TU_ASSERT_TEXT_ONLY_IN_CAUSE(e, be_error_message(cause));
  be_error_free(e);
  unsigned char *after = tu_read_file(path, &after_len);
  ck_assert_uint_eq(before_len, after_len);
  if (before) ck_assert_int_eq(memcmp(before, after, before_len), 0);
  else ck_assert_ptr_null(after);
  ck_assert_int_eq(tu_exists_with(path, "-wal"), had_wal);
  ck_assert_int_eq(tu_exists_with(path, "-journal"), had_journal);
  free(before);
  free(after);
}

/* Random bytes, an encrypted-looking copy of a real database and
 * truncated ones are permanent errors, not the retryable 503. */
START_TEST(unusable_files_are_permanent_errors) {
  unsigned char junk[8192];
  uint32_t x = 2463534242u;
  for (size_t i = 0; i < sizeof junk; i++) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    junk[i] = (unsigned char)x;
  }
  tu_write_file(dbpath, junk, sizeof junk);
  expect_open_fails(be_sqlite_driver(), dbpath, BE_E_STORAGE, "not an SQLite database");
  ck_assert_int_eq(be_code_is_retryable(BE_E_STORAGE), 0);

  char real[600], enc[600], cut[600], cut_page[600];
  snprintf(real, sizeof real, "%s/real.db", tmpdir);
  tu_make_foreign_db(real);
  size_t n = 0;
  unsigned char *b = tu_read_file(real, &n);
  ck_assert_uint_gt(n, 3 * 4096);
  /* "encrypted": the same pages under a keystream, header included */
  unsigned char *x2 = malloc(n);
  for (size_t i = 0; i < n; i++) x2[i] = b[i] ^ junk[i % sizeof junk];
  snprintf(enc, sizeof enc, "%s/enc.db", tmpdir);
  tu_write_file(enc, x2, n);
  expect_open_fails(be_sqlite_driver(), enc, BE_E_STORAGE, "or it is encrypted");
  snprintf(cut, sizeof cut, "%s/cut.db", tmpdir);
  tu_write_file(cut, b, 1000); /* inside page 1 */
  expect_open_fails(be_sqlite_driver(), cut, BE_E_STORAGE, "corrupt");
  snprintf(cut_page, sizeof cut_page, "%s/cut2.db", tmpdir);
  tu_write_file(cut_page, b, 2 * 4096); /* whole pages missing at the end */
  expect_open_fails(be_sqlite_driver(), cut_page, BE_E_STORAGE, "corrupt");
  free(x2);
  free(b);
}
END_TEST

/* A locked database is BE_E_BUSY (retryable) in both journal modes, and
 * the open writes nothing, the journal mode included. */
START_TEST(locked_database_is_busy_in_both_journal_modes) {
  be_driver *d = short_busy_driver(BE_SQLITE_JOURNAL_WAL);
  tu_make_foreign_db(dbpath);
  /* rollback journal, the other program writing: the probe waits, then busy */
  sqlite3 *other = tu_raw_open(dbpath);
  tu_raw_exec(other, "BEGIN EXCLUSIVE; INSERT INTO notes(body) VALUES ('x')");
  expect_open_fails(d, dbpath, BE_E_BUSY, "holds a lock");
  ck_assert_int_eq(be_code_is_retryable(BE_E_BUSY), 1);
  tu_raw_exec(other, "ROLLBACK");
  /* holding the write lock only (readers allowed): switching to WAL would
   * write, and waits, then busy */
  tu_raw_exec(other, "BEGIN IMMEDIATE; INSERT INTO notes(body) VALUES ('x')");
  expect_open_fails(d, dbpath, BE_E_BUSY, "holds a lock");
  tu_raw_exec(other, "ROLLBACK");
  sqlite3_close(other);
  ck_assert_str_eq(tu_journal_mode(dbpath), "delete");

  /* WAL: opening writes nothing and succeeds; the first write is busy */
  be_conn *c = NULL;
  ck_assert_int_eq(be_conn_open(&c, d, dbpath, NULL), BE_OK);
  be_conn_close(c);
  ck_assert_str_eq(tu_journal_mode(dbpath), "wal");
  other = tu_raw_open(dbpath);
  tu_raw_exec(other, "BEGIN IMMEDIATE; INSERT INTO notes(body) VALUES ('x')");
  ck_assert_int_eq(be_conn_open(&c, d, dbpath, NULL), BE_OK);
  be_error *e = NULL;
  ck_assert_int_eq(be_conn_begin(c, BE_TX_IMMEDIATE, &e), BE_E_BUSY);
  TU_ASSERT_TEXT_ONLY_IN_CAUSE(e, "database is locked");
  be_error_free(e);
  be_conn_close(c);
  tu_raw_exec(other, "ROLLBACK");
  sqlite3_close(other);
  be_sqlite_driver_free(d);
}
END_TEST

/* The checks of a failed open that permissions decide, run as a user
 * the permissions bind (root ignores them). */
typedef struct perm_paths {
  char rofile[700], rodir_db[700], hidden_db[700], new_db[700];
} perm_paths;

/* 0 when opening path fails with code and a detail naming path and why. */
static int open_fails_with(const char *path, int32_t code, const char *why) {
  be_conn *c = NULL;
  be_error *e = NULL;
  int rc = be_conn_open(&c, be_sqlite_driver(), path, &e);
  const char *msg = be_error_message(e);
  int bad = rc != code || msg == NULL || strstr(msg, path) == NULL || strstr(msg, why) == NULL;
  if (bad) fprintf(stderr, "open %s: rc %d, want %d with \"%s\": %s\n", path, rc, code, why, msg);
  be_error_free(e);
  be_conn_close(c);
  return bad;
}

static int permission_checks(void *arg) {
  perm_paths *p = arg;
  int bad = open_fails_with(p->rofile, BE_E_DB_UNREACHABLE, "read-only (no write permission)");
  bad |= open_fails_with(p->rodir_db, BE_E_DB_UNREACHABLE, "directory is read-only");
  bad |= open_fails_with(p->hidden_db, BE_E_DB_UNREACHABLE, "permission denied");
  bad |= open_fails_with(p->new_db, BE_E_DB_UNREACHABLE, "directory is not writable");
  return bad;
}

static void make_dir(const char *path, mode_t mode) {
  ck_assert_int_eq(mkdir(path, 0755), 0);
  if (geteuid() == 0) ck_assert_int_eq(chown(path, 0, 0), 0);
  ck_assert_int_eq(chmod(path, mode), 0);
}

/* A copy of a database that the unprivileged user owns, with mode. */
static void owned_db(const char *path, mode_t mode) {
  tu_make_foreign_db(path);
  if (geteuid() == 0) ck_assert_int_eq(chown(path, 65534, 65534), 0);
  ck_assert_int_eq(chmod(path, mode), 0);
}

START_TEST(permission_problems_name_the_path) {
  perm_paths p;
  char dir[600];
  ck_assert_int_eq(chmod(tmpdir, 0755), 0);
  snprintf(p.rofile, sizeof p.rofile, "%s/ro.db", tmpdir);
  owned_db(p.rofile, 0444);
  snprintf(dir, sizeof dir, "%s/rodir", tmpdir);
  make_dir(dir, 0755);
  snprintf(p.rodir_db, sizeof p.rodir_db, "%s/t.db", dir);
  owned_db(p.rodir_db, 0644); /* the file is writable, its directory not: no -wal */
  ck_assert_int_eq(chmod(dir, 0555), 0);
  snprintf(dir, sizeof dir, "%s/hidden", tmpdir);
  make_dir(dir, 0755);
  snprintf(p.hidden_db, sizeof p.hidden_db, "%s/t.db", dir);
  owned_db(p.hidden_db, 0644);
  ck_assert_int_eq(chmod(dir, 0000), 0);
  snprintf(dir, sizeof dir, "%s/nowrite", tmpdir);
  make_dir(dir, 0555);
  snprintf(p.new_db, sizeof p.new_db, "%s/new.db", dir);
  if (geteuid() == 0)
    fprintf(stderr, "permission_problems_name_the_path: running as root; the checks run in a "
                    "child process as nobody\n");
  ck_assert_msg(tu_run_unprivileged(permission_checks, &p) == 0, "see the lines above");
  ck_assert(!tu_exists(p.new_db));
  snprintf(dir, sizeof dir, "%s/hidden", tmpdir);
  ck_assert_int_eq(chmod(dir, 0755), 0); /* so the teardown can remove it */
}
END_TEST

START_TEST(missing_directory_and_missing_file) {
  char path[600];
  snprintf(path, sizeof path, "%s/no/such/dir/x.db", tmpdir);
  expect_open_fails(be_sqlite_driver(), path, BE_E_DB_UNREACHABLE, "directory does not exist");
  /* open_existing (what a pool opens after its first connection) creates nothing */
  be_conn *c = NULL;
  be_error *e = NULL;
  ck_assert_int_eq(be__conn_open_existing(&c, be_sqlite_driver(), dbpath, &e), BE_E_DB_UNREACHABLE);
  ck_assert_ptr_nonnull(strstr(be_error_message(e), "does not exist"));
  ck_assert_ptr_nonnull(strstr(be_error_message(e), dbpath));
  be_error_free(e);
  ck_assert(!tu_exists(dbpath));
  /* open may create it (the default open flags), and then open_existing works */
  ck_assert_int_eq(be_conn_open(&c, be_sqlite_driver(), dbpath, NULL), BE_OK);
  be_conn_close(c);
  ck_assert_int_eq(be__conn_open_existing(&c, be_sqlite_driver(), dbpath, NULL), BE_OK);
  be_conn_close(c);
  /* a file: URI's path is named too */
  char uri[700];
  snprintf(uri, sizeof uri, "file:%s/no/such/dir/x.db?mode=rwc", tmpdir);
  ck_assert_int_eq(be_conn_open(&c, be_sqlite_driver(), uri, &e), BE_E_DB_UNREACHABLE);
  ck_assert_ptr_nonnull(strstr(be_error_message(e), path));
  be_error_free(e);
  /* an older driver table (no open_existing) falls back to open */
  be_driver v2 = *be_sqlite_driver();
  v2.version = 2;
  remove(dbpath);
  ck_assert_int_eq(be__conn_open_existing(&c, &v2, dbpath, NULL), BE_OK);
  be_conn_close(c);
}
END_TEST

/* ---- a database file that disappears under an open connection ---- */

static void moved_file_is_detected(tu_gone_how how) {
  be_conn *c = NULL;
  ck_assert_int_eq(be_conn_open(&c, be_sqlite_driver(), dbpath, NULL), BE_OK);
  exec_ok(c, "CREATE TABLE t(x); INSERT INTO t VALUES (1)");
  ck_assert_int_eq(be_conn_ping(c, NULL), BE_OK);
  tu_make_gone(dbpath, tmpdir, how);
  be_error *e = NULL;
  ck_assert_int_eq(be_conn_ping(c, &e), BE_E_CONN_LOST);
  ck_assert_ptr_nonnull(strstr(be_error_message(e), "deleted, renamed or replaced"));
  ck_assert_ptr_nonnull(strstr(be_error_message(e), dbpath));
  be_error_free(e);
  ck_assert_int_eq(be_conn_is_broken(c), 1); /* a pool drops it */
  be_conn_close(c);

  /* a write transaction is refused before it writes into a lost file */
  if (how == TU_GONE_REPLACED) {
    remove(dbpath);
  } else {
    char back[600];
    snprintf(back, sizeof back, "%s/moved.db", tmpdir);
    remove(back);
  }
  ck_assert_int_eq(be_conn_open(&c, be_sqlite_driver(), dbpath, NULL), BE_OK);
  exec_ok(c, "CREATE TABLE IF NOT EXISTS t(x)");
  tu_make_gone(dbpath, tmpdir, how);
  ck_assert_int_eq(be_conn_begin(c, BE_TX_DEFERRED, NULL), BE_OK); /* reads: no check */
  ck_assert_int_eq(be_conn_rollback(c, NULL), BE_OK);
  ck_assert_int_eq(be_conn_begin(c, BE_TX_IMMEDIATE, &e), BE_E_CONN_LOST);
  ck_assert_int_eq(be_error_is_retryable(e), 1);
  be_error_free(e);
  ck_assert_int_eq(be_conn_is_broken(c), 1);
  be_conn_close(c);
  if (how != TU_GONE_REPLACED) ck_assert(!tu_exists(dbpath));
}

START_TEST(deleted_database_is_detected) { moved_file_is_detected(TU_GONE_DELETED); }
END_TEST

START_TEST(renamed_database_is_detected) { moved_file_is_detected(TU_GONE_RENAMED); }
END_TEST

START_TEST(replaced_database_is_detected) { moved_file_is_detected(TU_GONE_REPLACED); }
END_TEST


/* PostgreSQL's placeholder translation and script splitting are pure text
 * work: tested here, without a server (tests/test_postgres.c runs them
 * against one). */
static void expect_translation(const char *in, const char *want, int32_t want_params) {
  char *out = NULL;
  int32_t n = -1;
  ck_assert_int_eq(be__pg_translate(&out, &n, NULL, in, strlen(in), NULL), BE_OK);
  ck_assert_str_eq(out, want);
  ck_assert_int_eq(n, want_params);
  be_free(out);
}

START_TEST(postgres_placeholders_and_scripts) {
  expect_translation("SELECT ?, ?", "SELECT $1, $2", 2);
  expect_translation("SELECT ?2, ?, ?1", "SELECT $2, $3, $1", 3);
  expect_translation("SELECT $1, ?", "SELECT $1, $2", 2);
  expect_translation("SELECT '?''?', \"a?\", E'\\'?', x -- ?\n?", "SELECT '?''?', \"a?\", E'\\'?', x -- ?\n$1", 1);
  expect_translation("/* ? /* ? */ ? */ $$?$$ $t$ ? $t$ ?", "/* ? /* ? */ ? */ $$?$$ $t$ ? $t$ $1", 1);
  expect_translation("SELECT a$1 FROM t", "SELECT a$1 FROM t", 1);
  expect_translation("SELECT 'unterminated ?", "SELECT 'unterminated ?", 0);
  char *out = NULL;
  int32_t n = 0;
  be_error *e = NULL;
  ck_assert_int_eq(be__pg_translate(&out, &n, NULL, "SELECT ?0", 9, &e), BE_E_MISUSE);
  ck_assert_ptr_null(out);
  be_error_free(e);
  ck_assert_int_eq(be__pg_translate(&out, &n, NULL, "SELECT ?65536", 13, NULL), BE_E_MISUSE);
  uint8_t used[8192] = {0};
  ck_assert_int_eq(be__pg_translate(&out, &n, used, "SELECT ?3, ?1", 13, NULL), BE_OK);
  be_free(out);
  ck_assert_int_eq(n, 3);
  ck_assert_int_eq(used[0], (1 << 1) | (1 << 3));
  const char *script = "SELECT ';'; DO $x$ BEGIN NULL; END $x$; -- ;\nSELECT 1";
  size_t first = be__pg_next_statement(script, strlen(script));
  ck_assert_uint_eq(first, strlen("SELECT ';';"));
  size_t second = be__pg_next_statement(script + first, strlen(script) - first);
  ck_assert_uint_eq(second, strlen(" DO $x$ BEGIN NULL; END $x$;"));
  const char *last = script + first + second;
  ck_assert_uint_eq(be__pg_next_statement(last, strlen(last)), strlen(last));
}
END_TEST

/* ---- bindings kept across a return to the cache ---- */

/* The statement of "SELECT ?1, ?2, ?3" from c's cache, bound as mask says
 * (bit 0: 1 = 7, bit 1: 2 = text, bit 2: 3 = blob), stepped to its row. */
static be_stmt *three_bound(be_conn *c, int mask, const char *text) {
  static const unsigned char blob[] = {1, 2, 3};
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT ?1, ?2, ?3", NULL), BE_OK);
  if (mask & 1) ck_assert_int_eq(be_stmt_bind_int64(s, 1, 7, NULL), BE_OK);
  if (mask & 2) ck_assert_int_eq(be_stmt_bind_text(s, 2, text, BE_NUL_TERMINATED, NULL), BE_OK);
  if (mask & 4) ck_assert_int_eq(be_stmt_bind_blob(s, 3, blob, sizeof blob, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  return s;
}

/* Each column of s's row is NULL exactly where mask has no bit. */
static void three_read(be_stmt *s, int mask, const char *text) {
  ck_assert_int_eq(be_stmt_column_type(s, 0), mask & 1 ? BE_TYPE_INT : BE_TYPE_NULL);
  ck_assert_int_eq(be_stmt_column_type(s, 1), mask & 2 ? BE_TYPE_TEXT : BE_TYPE_NULL);
  ck_assert_int_eq(be_stmt_column_type(s, 2), mask & 4 ? BE_TYPE_BLOB : BE_TYPE_NULL);
  if (mask & 1) ck_assert_int_eq(be_stmt_column_int64(s, 0), 7);
  if (mask & 2) ck_assert_str_eq(be_stmt_column_text(s, 1, NULL), text);
  be_stmt_finalize(s);
}

/* A cached statement comes back "reset with no bindings" whichever way it
 * is run next: a parameter an earlier use bound and this one did not reads
 * NULL (the SQLite driver returns statements without clearing bindings and
 * binds NULL to those before the first step). */
START_TEST(unbound_parameters_read_null_on_every_use) {
  be_conn *c = open_mem();
  static const int uses[] = {7, 2, 7, 0, 5, 7, 4, 1, 3, 6, 0};
  be_stmt *first = NULL;
  for (size_t u = 0; u < sizeof uses / sizeof uses[0]; u++) {
    char text[16];
    snprintf(text, sizeof text, "use %zu", u);
    be_stmt *s = three_bound(c, uses[u], text);
    if (u == 0) first = s;
    ck_assert_ptr_eq(s, first); /* the cached one every time */
    three_read(s, uses[u], text);
  }
  /* a bind that fails leaves the earlier use's value: never read */
  three_read(three_bound(c, 7, "all"), 7, "all");
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT ?1, ?2, ?3", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_text(s, 2, "bad\xff", BE_NUL_TERMINATED, NULL), BE_E_VALIDATION);
  ck_assert_int_lt(be_stmt_bind_int64(s, 4, 1, NULL), 0); /* out of range */
  ck_assert_int_eq(be_stmt_bind_int64(s, 1, 7, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  three_read(s, 1, NULL);
  /* be_stmt_reset clears this use's bindings too */
  s = three_bound(c, 7, "x");
  ck_assert_int_eq(be_stmt_reset(s, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  three_read(s, 0, NULL);
  /* a NULL bound over a value, then nothing: NULL */
  three_read(three_bound(c, 7, "y"), 7, "y");
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT ?1, ?2, ?3", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_null(s, 2, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  three_read(s, 0, NULL);
  be_conn_close(c);
}
END_TEST

/* Text bound in one use is not visible in the next: copied text (short and
 * long), static text whose buffer is gone (valgrind: never read again), a
 * blob larger than a kept binding may hold. */
START_TEST(bound_text_does_not_outlive_its_use) {
  be_conn *c = open_mem();
  char big[5000];
  memset(big, 'b', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  three_read(three_bound(c, 2, big), 2, big);
  three_read(three_bound(c, 1, NULL), 1, NULL);
  char *heap = strdup("static text");
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT ?1, ?2, ?3", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_text_static(s, 2, heap, BE_NUL_TERMINATED, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  three_read(s, 2, "static text");
  free(heap); /* the caller's text may go once the statement is given back */
  three_read(three_bound(c, 5, NULL), 5, NULL);
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT ?1, ?2, ?3", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_blob(s, 3, big, sizeof big, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_int_eq(be_stmt_column_type(s, 2), BE_TYPE_BLOB);
  be_stmt_finalize(s);
  three_read(three_bound(c, 0, NULL), 0, NULL);
  /* copies alternate between two buffers per parameter: a kept binding
   * points at one of them while the next use binds another text */
  for (int u = 0; u < 6; u++) {
    char t[16];
    snprintf(t, sizeof t, "t%d", u);
    three_read(three_bound(c, u % 3 ? 2 : 0, t), u % 3 ? 2 : 0, t);
  }
  be_conn_close(c);
}
END_TEST

/* be_stmt_reset within one use (a loop inserting rows): every parameter
 * reads NULL until bound again, static text whose buffer went included. */
START_TEST(reset_leaves_no_binding_in_the_same_use) {
  be_conn *c = open_mem();
  be_stmt *s = three_bound(c, 7, "first");
  static const int rebind[] = {2, 0, 5, 7, 1, 4};
  for (size_t k = 0; k < sizeof rebind / sizeof rebind[0]; k++) {
    ck_assert_int_eq(be_stmt_reset(s, NULL), BE_OK);
    if (rebind[k] & 1) ck_assert_int_eq(be_stmt_bind_int64(s, 1, 7, NULL), BE_OK);
    if (rebind[k] & 2) ck_assert_int_eq(be_stmt_bind_text(s, 2, "again", 5, NULL), BE_OK);
    if (rebind[k] & 4) ck_assert_int_eq(be_stmt_bind_blob(s, 3, "z", 1, NULL), BE_OK);
    ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
    ck_assert_int_eq(be_stmt_column_type(s, 0), rebind[k] & 1 ? BE_TYPE_INT : BE_TYPE_NULL);
    ck_assert_int_eq(be_stmt_column_type(s, 1), rebind[k] & 2 ? BE_TYPE_TEXT : BE_TYPE_NULL);
    ck_assert_int_eq(be_stmt_column_type(s, 2), rebind[k] & 4 ? BE_TYPE_BLOB : BE_TYPE_NULL);
  }
  char *heap = strdup("borrowed");
  ck_assert_int_eq(be_stmt_reset(s, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_text_static(s, 2, heap, BE_NUL_TERMINATED, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_str_eq(be_stmt_column_text(s, 1, NULL), "borrowed");
  ck_assert_int_eq(be_stmt_reset(s, NULL), BE_OK);
  free(heap); /* borrowed until the reset */
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_int_eq(be_stmt_column_type(s, 1), BE_TYPE_NULL);
  be_stmt_finalize(s);
  be_conn_close(c);
}
END_TEST

/* Parameters past the 64 a statement tracks: cleared when given back. */
START_TEST(unbound_parameters_read_null_past_64) {
  be_conn *c = open_mem();
  char sql[1024] = "SELECT ?1";
  for (int i = 2; i <= 70; i++) snprintf(sql + strlen(sql), sizeof sql - strlen(sql), ", ?%d", i);
  static const int bind_upto[] = {70, 2, 64, 0, 70, 65, 1};
  for (size_t u = 0; u < sizeof bind_upto / sizeof bind_upto[0]; u++) {
    be_stmt *s = NULL;
    ck_assert_int_eq(be_conn_prepare(&s, c, sql, NULL), BE_OK);
    for (int i = 1; i <= bind_upto[u]; i++)
      ck_assert_int_eq(be_stmt_bind_int64(s, i, i * 10, NULL), BE_OK);
    ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
    for (int i = 1; i <= 70; i++) {
      int32_t type = be_stmt_column_type(s, i - 1);
      ck_assert_msg(type == (i <= bind_upto[u] ? BE_TYPE_INT : BE_TYPE_NULL),
                    "use %zu, parameter %d: type %d", u, i, (int)type);
    }
    be_stmt_finalize(s);
  }
  be_conn_close(c);
}
END_TEST

/* be_rows_query steps through the cached statement too: fewer values than
 * an earlier use bound leave the rest NULL. */
START_TEST(unbound_parameters_read_null_through_rows) {
  be_conn *c = open_mem();
  be_params *p = NULL;
  ck_assert_int_eq(be_params_new(&p, NULL), BE_OK);
  ck_assert_int_eq(be_params_add_int64(p, 7, NULL), BE_OK);
  ck_assert_int_eq(be_params_add_text(p, "two", 3, NULL), BE_OK);
  ck_assert_int_eq(be_params_add_blob(p, "b", 1, NULL), BE_OK);
  for (int u = 0; u < 4; u++) {
    if (u == 2) {
      be_params_clear(p);
      ck_assert_int_eq(be_params_add_int64(p, 8, NULL), BE_OK);
    }
    be_rows *r = NULL;
    ck_assert_int_eq(be_rows_query(&r, c, "SELECT ?1, ?2, ?3", u == 1 ? NULL : p, NULL), BE_OK);
    ck_assert_uint_eq(be_rows_count(r), 1);
    ck_assert_int_eq(be_rows_type(r, 0, 0), u == 1 ? BE_TYPE_NULL : BE_TYPE_INT);
    ck_assert_int_eq(be_rows_type(r, 0, 1), u == 0 ? BE_TYPE_TEXT : BE_TYPE_NULL);
    ck_assert_int_eq(be_rows_type(r, 0, 2), u == 0 ? BE_TYPE_BLOB : BE_TYPE_NULL);
    be_rows_free(r);
    if (u == 0) three_read(three_bound(c, 0, NULL), 0, NULL);
  }
  be_params_free(p);
  be_conn_close(c);
}
END_TEST

static int resets_seen;
static int counting_reset(void *stmt, be_error **err) {
  resets_seen++;
  return be_sqlite_driver()->reset(stmt, err);
}

/* A driver whose reset is not the SQLite driver's own (a copy of its
 * table with reset replaced, the fault driver) is reset on every return,
 * as be_driver.reset's contract says. */
START_TEST(other_drivers_reset_on_every_return) {
  be_driver d = *be_sqlite_driver();
  d.reset = counting_reset;
  be_conn *c = NULL;
  ck_assert_int_eq(be_conn_open(&c, &d, ":memory:", NULL), BE_OK);
  resets_seen = 0;
  three_read(three_bound(c, 7, "a"), 7, "a");
  three_read(three_bound(c, 2, "b"), 2, "b");
  ck_assert_int_eq(resets_seen, 2);
  be_conn_close(c);
  be_driver *fd = NULL;
  be_fault *f = NULL;
  ck_assert_int_eq(be_fault_driver_new(&fd, &f, be_sqlite_driver(), NULL), BE_OK);
  ck_assert_int_eq(be_conn_open(&c, fd, ":memory:", NULL), BE_OK);
  three_read(three_bound(c, 7, "a"), 7, "a");
  three_read(three_bound(c, 4, "b"), 4, "b");
  three_read(three_bound(c, 0, NULL), 0, NULL);
  be_conn_close(c);
  be_fault_free(f);
}
END_TEST

static Suite *storage_suite(void) {
  Suite *s = suite_create("storage");
  TCase *tc = tcase_create("sqlite");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, types_round_trip);
  tcase_add_test(tc, text_must_be_utf8);
  tcase_add_test(tc, column_text_converts_other_types);
  tcase_add_test(tc, column_text_is_utf8_in_a_utf16_database);
  tcase_add_test(tc, cached_statement_follows_schema_change);
  tcase_add_test(tc, cached_statement_follows_columns_dropped_and_added);
  tcase_add_test(tc, rows_query_right_after_a_schema_change);
  tcase_add_test(tc, column_name_after_a_schema_change);
  tcase_add_test(tc, statement_cache_hits_pay_no_prepare);
  tcase_add_test(tc, statement_cache_evicts_around_held_ones);
  tcase_add_test(tc, sql_handle_finds_the_cached_statement);
  tcase_add_test(tc, sql_handle_survives_eviction_and_flush);
  tcase_add_test(tc, text_address_finds_only_the_same_text);
  tcase_add_test(tc, sql_handle_bad_input);
  tcase_add_test(tc, bind_text_static_borrows_without_checking);
  tcase_add_test(tc, bind_text_copies_survive_the_callers_buffer);
  tcase_add_test(tc, bind_text_refused_while_running_keeps_the_bound_text);
  tcase_add_test(tc, rows_read_whole_with_or_without_column_value);
  tcase_add_test(tc, rows_many_keep_their_order);
  tcase_add_test(tc, rows_blocks_kept_only_under_the_default_allocator);
  tcase_add_test(tc, unbound_parameters_read_null_on_every_use);
  tcase_add_test(tc, bound_text_does_not_outlive_its_use);
  tcase_add_test(tc, unbound_parameters_read_null_past_64);
  tcase_add_test(tc, reset_leaves_no_binding_in_the_same_use);
  tcase_add_test(tc, unbound_parameters_read_null_through_rows);
  tcase_add_test(tc, other_drivers_reset_on_every_return);
  tcase_add_test(tc, constraint_errors_are_typed);
  tcase_add_test(tc, syntax_and_misuse_errors);
  tcase_add_test(tc, open_errors);
  tcase_add_test(tc, driver_options_and_defaults);
  tcase_add_test(tc, open_waits_for_a_writer_before_setting_wal);
  tcase_add_test(tc, open_failure_names_a_path_that_is_not_utf8);
  tcase_add_test(tc, driver_tuning_pragmas);
  tcase_add_test(tc, busy_is_a_typed_error_not_a_hang);
  tcase_add_test(tc, close_rolls_back_open_transaction);
  tcase_add_test(tc, savepoints_and_names);
  tcase_add_test(tc, observer_sees_each_run_once);
  tcase_add_test(tc, statement_timing_is_sampled_but_every_run_counted);
  tcase_add_test(tc, alternating_statements_are_each_sampled);
  tcase_add_test(tc, scoped_requests_keep_the_sampled_weight);
  tcase_add_test(tc, forced_runs_stand_for_themselves);
  tcase_add_test(tc, a_slow_sample_stands_for_itself);
  tcase_add_test(tc, observers_attached_later_get_what_they_saw);
  tcase_add_test(tc, exec_stands_for_itself_in_statement_stats);
  tcase_add_test(tc, statement_memo_follows_the_stats_attached);
  tcase_add_test(tc, untimed_runs_reach_observers_after_timed_only_ones);
  tcase_add_test(tc, query_stats_count_what_connections_ran_while_attached);
  tcase_add_test(tc, observers_many_and_close_notice);
  tcase_add_test(tc, pool_hooks);
  tcase_add_test(tc, leftovers_name_what_a_pool_must_clear);
  tcase_add_test(tc, driver_splits_scripts_and_knows_tables);
  tcase_add_test(tc, allocation_failures_do_not_leak);
  tcase_add_test(tc, unusable_files_are_permanent_errors);
  tcase_add_test(tc, locked_database_is_busy_in_both_journal_modes);
  tcase_add_test(tc, permission_problems_name_the_path);
  tcase_add_test(tc, missing_directory_and_missing_file);
  tcase_add_test(tc, deleted_database_is_detected);
  tcase_add_test(tc, renamed_database_is_detected);
  tcase_add_test(tc, replaced_database_is_detected);
  tcase_add_test(tc, postgres_placeholders_and_scripts);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(storage_suite)
