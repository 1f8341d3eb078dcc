/* SPDX-License-Identifier: MIT */
/* Migrations: ordered, idempotent, one transaction each, failure keeps the
 * previous version. */
#include "testutil.h"

#include "storage.h"

static char *tmpdir;
static char dbpath[512];
static be_driver *fdrv;
static be_fault *flt;

static void setup(void) {
  tmpdir = tu_tempdir();
  snprintf(dbpath, sizeof dbpath, "%s/m.db", tmpdir);
  ck_assert_int_eq(be_fault_driver_new(&fdrv, &flt, be_sqlite_driver(), NULL), BE_OK);
}
static void teardown(void) {
  be_fault_free(flt);
  tu_rmdir(tmpdir);
}

static be_conn *open_conn(void) {
  be_conn *c = NULL;
  ck_assert_int_eq(be_conn_open(&c, fdrv, dbpath, NULL), BE_OK);
  return c;
}

static int table_exists(be_conn *c, const char *name) {
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT 1 FROM sqlite_master WHERE name = ?", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_bind_text(s, 1, name, BE_NUL_TERMINATED, NULL), BE_OK);
  int rc = be_stmt_step(s, NULL);
  be_stmt_finalize(s);
  return rc == BE_ROW;
}

static be_migrator *library_and_host(void) {
  be_migrator *m = NULL;
  ck_assert_int_eq(be_migrator_new(&m, NULL), BE_OK);
  /* registered out of order: applied ascending (2 and 3 need 1) */
  ck_assert_int_eq(be_migrator_add(m, 3, "host: orders",
                                   "CREATE TABLE orders(id INTEGER PRIMARY KEY, "
                                   "user_id INTEGER NOT NULL REFERENCES users(id))",
                                   NULL),
                   BE_OK);
  ck_assert_int_eq(be_migrator_add(m, 1, "users", "CREATE TABLE users(id INTEGER PRIMARY KEY, "
                                                  "email TEXT NOT NULL UNIQUE)",
                                   NULL),
                   BE_OK);
  ck_assert_int_eq(be_migrator_add(m, 2, "users.name",
                                   "ALTER TABLE users ADD COLUMN name TEXT; "
                                   "CREATE INDEX users_name ON users(name)",
                                   NULL),
                   BE_OK);
  return m;
}

START_TEST(apply_in_order_and_idempotent) {
  be_conn *c = open_conn();
  int64_t v = -1;
  ck_assert_int_eq(be_migrator_current_version(&v, c, NULL), BE_OK);
  ck_assert_int_eq(v, 0);
  be_migrator *m = library_and_host();
  ck_assert_int_eq(be_migrator_count(m), 3);
  ck_assert_int_eq(be_migrator_latest_version(m), 3);
  be_error *e = NULL;
  ck_assert_int_eq(be_migrator_apply(&v, m, c, &e), BE_OK);
  ck_assert_int_eq(v, 3);
  ck_assert(table_exists(c, "users") && table_exists(c, "orders") && table_exists(c, "users_name"));
  ck_assert_int_eq(be_fault_calls(flt, BE_FAULT_OP_BEGIN), 3); /* one transaction each */
  ck_assert_int_eq(be_fault_calls(flt, BE_FAULT_OP_COMMIT), 3);

  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT version, name, applied_at FROM schema_migrations "
                                          "ORDER BY version",
                                   NULL),
                   BE_OK);
  const char *names[] = {"users", "users.name", "host: orders"};
  int64_t now = be_clock_wall_ns(NULL) / BE_NS_PER_SEC;
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
    ck_assert_int_eq(be_stmt_column_int64(s, 0), i + 1);
    ck_assert_str_eq(be_stmt_column_text(s, 1, NULL), names[i]);
    ck_assert_int_le(llabs(be_stmt_column_int64(s, 2) - now), 5);
  }
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_DONE);
  be_stmt_finalize(s);

  /* again: nothing to do, no write transaction */
  be_fault_reset_counts(flt);
  ck_assert_int_eq(be_migrator_apply(&v, m, c, NULL), BE_OK);
  ck_assert_int_eq(v, 3);
  ck_assert_int_eq(be_fault_calls(flt, BE_FAULT_OP_BEGIN), 0);
  /* and from another connection, with another migrator holding the same set */
  be_migrator *m2 = library_and_host();
  be_conn *c2 = open_conn();
  ck_assert_int_eq(be_migrator_apply(&v, m2, c2, NULL), BE_OK);
  ck_assert_int_eq(v, 3);
  ck_assert_int_eq(be_fault_calls(flt, BE_FAULT_OP_BEGIN), 0);
  be_conn_close(c2);
  be_migrator_free(m2);
  be_migrator_free(m);
  be_conn_close(c);
}
END_TEST

START_TEST(failure_keeps_previous_version) {
  be_conn *c = open_conn();
  be_migrator *m = library_and_host();
  ck_assert_int_eq(be_migrator_add(m, 4, "broken", "CREATE TABLE t4(x); INSERT INTO nosuch VALUES (1)",
                                   NULL),
                   BE_OK);
  ck_assert_int_eq(be_migrator_add(m, 5, "after", "CREATE TABLE t5(x)", NULL), BE_OK);
  int64_t v = -1;
  be_error *e = NULL;
  ck_assert_int_eq(be_migrator_apply(&v, m, c, &e), BE_E_STORAGE);
  ck_assert_int_eq(v, 3);
  ck_assert_ptr_nonnull(strstr(be_error_message(e), "migration 4 (broken) failed"));
  TU_ASSERT_TEXT_ONLY_IN_CAUSE(e, "no such table");
  ck_assert_int_eq(be_error_field_count(e), 1);
  ck_assert_str_eq(be_error_field_name(e, 0), "version");
  ck_assert_str_eq(be_error_field_message(e, 0), "4");
  ck_assert_ptr_nonnull(be_error_cause(e));
  be_error_free(e);
  ck_assert(!table_exists(c, "t4")); /* the part that ran was rolled back */
  ck_assert(!table_exists(c, "t5")); /* and apply stopped there */
  ck_assert_int_eq(be_migrator_current_version(&v, c, NULL), BE_OK);
  ck_assert_int_eq(v, 3);
  ck_assert_int_eq(be_conn_in_transaction(c), 0);
  be_migrator_free(m);

  /* fixed in a later build: applies 4 and 5 */
  m = library_and_host();
  ck_assert_int_eq(be_migrator_add(m, 4, "fixed", "CREATE TABLE t4(x)", NULL), BE_OK);
  ck_assert_int_eq(be_migrator_add(m, 5, "after", "CREATE TABLE t5(x)", NULL), BE_OK);
  ck_assert_int_eq(be_migrator_apply(&v, m, c, NULL), BE_OK);
  ck_assert_int_eq(v, 5);
  be_migrator_free(m);
  be_conn_close(c);
}
END_TEST

/* A COMMIT inside a migration's script would make the part before it
 * permanent with no version recorded (or record a version whose apply
 * then "failed"). On SQLite it is refused before anything runs; trigger
 * bodies (BEGIN ... END) and ROLLBACK TO still work. */
START_TEST(transaction_control_in_script_is_refused) {
  be_conn *c = NULL;
  ck_assert_int_eq(be_conn_open(&c, be_sqlite_driver(), dbpath, NULL), BE_OK);
  be_migrator *m = NULL;
  ck_assert_int_eq(be_migrator_new(&m, NULL), BE_OK);
  ck_assert_int_eq(be_migrator_add(m, 1, "base",
                                   "CREATE TABLE a(x); CREATE TABLE log(x);\n"
                                   "CREATE TRIGGER a_ins AFTER INSERT ON a BEGIN\n"
                                   "  INSERT INTO log VALUES (new.x);\nEND;\n"
                                   "SAVEPOINT s; CREATE TABLE tmp(x); ROLLBACK TO s; RELEASE s;",
                                   NULL),
                   BE_OK);
  ck_assert_int_eq(be_migrator_add(m, 2, "sneaky commit",
                                   "CREATE TABLE b(x); /* done */ COMMIT; CREATE TABLE c(x)", NULL),
                   BE_OK);
  int64_t v = -1;
  be_error *e = NULL;
  ck_assert_int_eq(be_migrator_apply(&v, m, c, &e), BE_E_VALIDATION);
  ck_assert_int_eq(v, 1);
  ck_assert_ptr_nonnull(strstr(be_error_message(e), "migration 2 (sneaky commit) failed"));
  be_error_free(e);
  ck_assert(table_exists(c, "a"));
  ck_assert(table_exists(c, "a_ins"));
  ck_assert(!table_exists(c, "tmp"));
  ck_assert(!table_exists(c, "b")); /* nothing of version 2 was committed */
  ck_assert(!table_exists(c, "c"));
  ck_assert_int_eq(be_conn_in_transaction(c), 0);
  ck_assert_int_eq(be_conn_exec(c, "INSERT INTO a VALUES (7)", NULL), BE_OK);
  be_migrator_free(m);

  const char *bad[] = {"END", "rollback", "ROLLBACK TRANSACTION", "begin immediate",
                       "-- x\ncommit transaction"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ck_assert_int_eq(be_migrator_new(&m, NULL), BE_OK);
    char sql[96];
    snprintf(sql, sizeof sql, "CREATE TABLE d(x); %s", bad[i]);
    ck_assert_int_eq(be_migrator_add(m, 3, "bad", sql, NULL), BE_OK);
    ck_assert_int_eq(be_migrator_apply(&v, m, c, NULL), BE_E_VALIDATION);
    ck_assert_int_eq(v, 1);
    ck_assert(!table_exists(c, "d"));
    be_migrator_free(m);
  }
  be_conn_close(c);

  /* through the fault driver, which passes the splitting through */
  c = open_conn();
  ck_assert_int_eq(be_migrator_new(&m, NULL), BE_OK);
  ck_assert_int_eq(be_migrator_add(m, 4, "commit", "CREATE TABLE e(x); COMMIT", NULL), BE_OK);
  ck_assert_int_eq(be_migrator_apply(&v, m, c, NULL), BE_E_VALIDATION);
  ck_assert_int_eq(v, 1);
  ck_assert(!table_exists(c, "e"));
  be_migrator_free(m);
  be_conn_close(c);
}
END_TEST

/* A trigger body's ';' (and one in a string or a comment) do not end the
 * statement: each trigger is created whole and works. */
START_TEST(trigger_bodies_with_semicolons) {
  be_conn *c = open_conn();
  be_migrator *m = NULL;
  ck_assert_int_eq(be_migrator_new(&m, NULL), BE_OK);
  ck_assert_int_eq(be_migrator_add(m, 1, "audit triggers",
                                   "CREATE TABLE a(x); CREATE TABLE log(x, note);\n"
                                   "-- a comment; with a semicolon\n"
                                   "CREATE TRIGGER a_ins AFTER INSERT ON a BEGIN\n"
                                   "  INSERT INTO log VALUES (new.x, 'ins; one');\n"
                                   "  INSERT INTO log VALUES (new.x * 10, /* ; */ 'ins; two');\n"
                                   "END;\n"
                                   "CREATE TEMP TRIGGER a_del AFTER DELETE ON a BEGIN\n"
                                   "  DELETE FROM log WHERE x = old.x; DELETE FROM log WHERE x = old.x * 10;\n"
                                   "END;\n"
                                   "INSERT INTO a VALUES (1)",
                                   NULL),
                   BE_OK);
  int64_t v = 0;
  be_error *e = NULL;
  ck_assert_int_eq(be_migrator_apply(&v, m, c, &e), BE_OK);
  ck_assert_ptr_null(e);
  ck_assert_int_eq(v, 1);
  ck_assert_int_eq(be_fault_calls(flt, BE_FAULT_OP_EXEC), 1 + 5); /* the table, then each statement */
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT group_concat(note, '|') FROM log", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_str_eq(be_stmt_column_text(s, 0, NULL), "ins; one|ins; two");
  be_stmt_finalize(s);
  ck_assert_int_eq(be_conn_exec(c, "DELETE FROM a", NULL), BE_OK);
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT count(*) FROM log", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_int_eq(be_stmt_column_int64(s, 0), 0);
  be_stmt_finalize(s);
  be_migrator_free(m);
  be_conn_close(c);
}
END_TEST

/* The fields a version-1 table lacks are never read: these abort. */
static int v2_field_read(void *conn, size_t *out, const char *sql, size_t len, be_error **err) {
  (void)conn, (void)out, (void)sql, (void)len, (void)err;
  ck_abort_msg("next_statement of a version-1 driver table was called");
  return BE_E_INTERNAL;
}
static int v2_field_read2(void *conn, int32_t *out, const char *name, be_error **err) {
  (void)conn, (void)out, (void)name, (void)err;
  ck_abort_msg("table_exists of a version-1 driver table was called");
  return BE_E_INTERNAL;
}

/* A driver table of version 1 (the SQLite driver's, marked as built
 * before version 2) still works: scripts run whole and are checked after,
 * and the catalog is asked through information_schema. */
START_TEST(version_1_driver_table_still_works) {
  be_driver d1 = *be_sqlite_driver();
  d1.version = 1;
  d1.next_statement = v2_field_read;
  d1.table_exists = v2_field_read2;
  be_conn *c = NULL;
  ck_assert_int_eq(be_conn_open(&c, &d1, dbpath, NULL), BE_OK);
  be_migrator *m = library_and_host();
  ck_assert_int_eq(be_migrator_add(m, 4, "trigger",
                                   "CREATE TABLE log(x);\n"
                                   "CREATE TRIGGER users_ins AFTER INSERT ON users BEGIN\n"
                                   "  INSERT INTO log VALUES (new.id); INSERT INTO log VALUES (-new.id);\n"
                                   "END;",
                                   NULL),
                   BE_OK);
  int64_t v = 0;
  ck_assert_int_eq(be_migrator_apply(&v, m, c, NULL), BE_OK);
  ck_assert_int_eq(v, 4);
  ck_assert_int_eq(be_migrator_apply(&v, m, c, NULL), BE_OK); /* idempotent */
  ck_assert_int_eq(v, 4);
  ck_assert(table_exists(c, "orders") && table_exists(c, "users_ins"));
  ck_assert_int_eq(be_conn_exec(c, "INSERT INTO users(id, email) VALUES (7, 'a@b')", NULL), BE_OK);
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT sum(x), count(*) FROM log", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_int_eq(be_stmt_column_int64(s, 0), 0);
  ck_assert_int_eq(be_stmt_column_int64(s, 1), 2);
  be_stmt_finalize(s);
  be_migrator_free(m);

  /* a COMMIT in the script is caught after the script ran */
  ck_assert_int_eq(be_migrator_new(&m, NULL), BE_OK);
  ck_assert_int_eq(be_migrator_add(m, 5, "commit", "CREATE TABLE e(x); COMMIT", NULL), BE_OK);
  be_error *e = NULL;
  ck_assert_int_eq(be_migrator_apply(&v, m, c, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(be_error_cause(e), 0), "sql");
  be_error_free(e);
  ck_assert_int_eq(v, 4); /* not recorded */
  ck_assert_int_eq(be_conn_in_transaction(c), 0);
  be_migrator_free(m);

  /* SQLite has no information_schema: the standard catalog query fails
   * there, and answers once a database provides the table */
  ck_assert_int_eq(be_migrator_current_version(&v, c, &e), BE_E_STORAGE);
  TU_ASSERT_TEXT_ONLY_IN_CAUSE(e, "information_schema");
  be_error_free(e);
  ck_assert_int_eq(be_conn_exec(c, "ATTACH ':memory:' AS information_schema; "
                                   "CREATE TABLE information_schema.tables(table_name TEXT); "
                                   "INSERT INTO information_schema.tables VALUES ('schema_migrations')",
                                NULL),
                   BE_OK);
  ck_assert_int_eq(be_migrator_current_version(&v, c, NULL), BE_OK);
  ck_assert_int_eq(v, 4);
  be_conn_close(c);
}
END_TEST

START_TEST(late_registered_lower_version_is_applied) {
  be_conn *c = open_conn();
  be_migrator *m = NULL;
  ck_assert_int_eq(be_migrator_new(&m, NULL), BE_OK);
  ck_assert_int_eq(be_migrator_add(m, 1, "a", "CREATE TABLE a(x)", NULL), BE_OK);
  ck_assert_int_eq(be_migrator_add(m, 10, "b", "CREATE TABLE b(x)", NULL), BE_OK);
  int64_t v;
  be_log_set_handler(NULL, NULL, BE_LOG_OFF, NULL); /* the warning is expected */
  ck_assert_int_eq(be_migrator_apply(&v, m, c, NULL), BE_OK);
  ck_assert_int_eq(v, 10);
  ck_assert_int_eq(be_migrator_add(m, 5, "host", "CREATE TABLE h(x)", NULL), BE_OK);
  ck_assert_int_eq(be_migrator_apply(&v, m, c, NULL), BE_OK);
  be_log_set_handler(NULL, NULL, BE_LOG_WARN, NULL);
  ck_assert_int_eq(v, 10);
  ck_assert(table_exists(c, "h"));
  be_migrator_free(m);
  be_conn_close(c);
}
END_TEST

START_TEST(registration_is_validated) {
  be_migrator *m = NULL;
  ck_assert_int_eq(be_migrator_new(&m, NULL), BE_OK);
  be_error *e = NULL;
  ck_assert_int_eq(be_migrator_add(m, 7, "seven", "SELECT 1", NULL), BE_OK);
  ck_assert_int_eq(be_migrator_add(m, 7, "again", "SELECT 2", &e), BE_E_CONFLICT);
  ck_assert_ptr_nonnull(strstr(be_error_message(e), "7"));
  be_error_free(e);
  ck_assert_int_eq(be_migrator_add(m, 0, "zero", "SELECT 1", &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "version");
  be_error_free(e);
  ck_assert_int_eq(be_migrator_add(m, -3, "neg", "SELECT 1", NULL), BE_E_VALIDATION);
  ck_assert_int_eq(be_migrator_add(m, 8, "", "SELECT 1", NULL), BE_E_VALIDATION);
  ck_assert_int_eq(be_migrator_add(m, 8, NULL, "SELECT 1", NULL), BE_E_VALIDATION);
  ck_assert_int_eq(be_migrator_add(m, 8, "bad\xff", "SELECT 1", NULL), BE_E_VALIDATION);
  ck_assert_int_eq(be_migrator_add(m, 8, "x", "", NULL), BE_E_VALIDATION);
  ck_assert_int_eq(be_migrator_add(m, 8, "x", NULL, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "sql");
  be_error_free(e);
  ck_assert_int_eq(be_migrator_add(NULL, 8, "x", "SELECT 1", NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_migrator_count(m), 1);
  /* many, in reverse: grows and stays sorted */
  for (int64_t v = 100; v > 8; v--) ck_assert_int_eq(be_migrator_add(m, v, "n", "SELECT 1", NULL), BE_OK);
  ck_assert_int_eq(be_migrator_count(m), 93);
  ck_assert_int_eq(be_migrator_latest_version(m), 100);
  ck_assert_int_eq(be_migrator_latest_version(NULL), 0);
  ck_assert_int_eq(be_migrator_new(NULL, NULL), BE_E_MISUSE);

  be_conn *c = open_conn();
  int64_t v;
  ck_assert_int_eq(be_migrator_apply(&v, NULL, c, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_migrator_apply(&v, m, NULL, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_migrator_current_version(&v, NULL, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_conn_begin(c, BE_TX_DEFERRED, NULL), BE_OK);
  ck_assert_int_eq(be_migrator_apply(&v, m, c, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_conn_rollback(c, NULL), BE_OK);
  ck_assert_int_eq(be_migrator_apply(&v, m, c, NULL), BE_OK);
  ck_assert_int_eq(v, 100);
  be_conn_close(c);
  be_migrator_free(m);
  be_migrator_free(NULL);
}
END_TEST

START_TEST(record_table_is_named_per_migrator) {
  be_conn *c = open_conn();
  be_migrator *lib = NULL, *host = NULL;
  ck_assert_int_eq(be_migrator_new(&lib, NULL), BE_OK);
  ck_assert_int_eq(be_migrator_new(&host, NULL), BE_OK);
  /* bad names are field errors and leave the table as it was */
  const char *const bad[] = {NULL, "", "a b", "x'y", "s.t", "--", "9lives", "t\xc3\xa9",
                             "a_name_of_sixty_five_bytes_is_one_byte_more_than_the_limit_allows"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    be_error *e = NULL;
    ck_assert_int_eq(be_migrator_set_table(lib, bad[i], &e), BE_E_VALIDATION);
    ck_assert_str_eq(be_error_field_name(e, 0), "table");
    be_error_free(e);
  }
  ck_assert_int_eq(be_migrator_set_table(NULL, "t", NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_migrator_set_table(lib, "lib_migrations", NULL), BE_OK);
  /* two migrators, the same versions, separate histories in one database */
  ck_assert_int_eq(be_migrator_add(lib, 1, "lib one", "CREATE TABLE lib_t(id INTEGER)", NULL), BE_OK);
  ck_assert_int_eq(be_migrator_add(lib, 2, "lib two", "CREATE TABLE lib_u(id INTEGER)", NULL), BE_OK);
  ck_assert_int_eq(be_migrator_add(host, 1, "host one", "CREATE TABLE host_t(id INTEGER)", NULL), BE_OK);
  int64_t v = -1;
  ck_assert_int_eq(be_migrator_version(&v, lib, c, NULL), BE_OK);
  ck_assert_int_eq(v, 0); /* no record table yet */
  ck_assert_int_eq(be_migrator_apply(&v, lib, c, NULL), BE_OK);
  ck_assert_int_eq(v, 2);
  ck_assert_int_eq(be_migrator_apply(&v, host, c, NULL), BE_OK);
  ck_assert_int_eq(v, 1);
  ck_assert(table_exists(c, "lib_migrations") && table_exists(c, "schema_migrations"));
  ck_assert(table_exists(c, "lib_u") && table_exists(c, "host_t"));
  ck_assert_int_eq(be_migrator_version(&v, lib, c, NULL), BE_OK);
  ck_assert_int_eq(v, 2);
  ck_assert_int_eq(be_migrator_version(&v, host, c, NULL), BE_OK);
  ck_assert_int_eq(v, 1);
  ck_assert_int_eq(be_migrator_current_version(&v, c, NULL), BE_OK); /* schema_migrations */
  ck_assert_int_eq(v, 1);
  /* a later migration lands in its own migrator's record only */
  ck_assert_int_eq(be_migrator_add(host, 2, "host two", "CREATE TABLE host_u(id INTEGER)", NULL), BE_OK);
  ck_assert_int_eq(be_migrator_apply(&v, lib, c, NULL), BE_OK); /* nothing to do */
  ck_assert(!table_exists(c, "host_u"));
  ck_assert_int_eq(be_migrator_apply(&v, host, c, NULL), BE_OK);
  ck_assert_int_eq(v, 2);
  be_stmt *s = NULL;
  ck_assert_int_eq(be_conn_prepare(&s, c, "SELECT group_concat(name, '|') FROM (SELECT name FROM lib_migrations ORDER BY version)", NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(s, NULL), BE_ROW);
  ck_assert_str_eq(be_stmt_column_text(s, 0, NULL), "lib one|lib two");
  be_stmt_finalize(s);
  /* misuse */
  ck_assert_int_eq(be_migrator_version(NULL, lib, c, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_migrator_version(&v, NULL, c, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_migrator_version(&v, lib, NULL, NULL), BE_E_MISUSE);
  be_conn_close(c);
  be_migrator_free(lib);
  be_migrator_free(host);
}
END_TEST

/* SQLite's table names ignore case, and PostgreSQL folds an unquoted
 * name to lower case: "Schema_Migrations" is schema_migrations. A
 * migrator naming it must not take the default table's rows for its own
 * (its version 1 would count as applied and never run): a name with
 * upper case is refused, and a record table created by hand in another
 * case is found. */
START_TEST(record_table_names_differing_in_case_are_not_shared) {
  be_conn *c = open_conn();
  be_migrator *a = NULL, *b = NULL;
  ck_assert_int_eq(be_migrator_new(&a, NULL), BE_OK);
  ck_assert_int_eq(be_migrator_add(a, 1, "a one", "CREATE TABLE a1(x)", NULL), BE_OK);
  int64_t v = -1;
  ck_assert_int_eq(be_migrator_apply(&v, a, c, NULL), BE_OK);
  ck_assert_int_eq(v, 1);
  ck_assert_int_eq(be_migrator_new(&b, NULL), BE_OK);
  be_error *e = NULL;
  ck_assert_int_eq(be_migrator_set_table(b, "Schema_Migrations", &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "table");
  be_error_free(e);
  ck_assert_int_eq(be_migrator_set_table(b, "B_MIGRATIONS", NULL), BE_E_VALIDATION);
  ck_assert_int_eq(be_migrator_add(b, 1, "b one", "CREATE TABLE b1(x)", NULL), BE_OK);
  ck_assert_int_eq(be_migrator_add(b, 2, "b two", "CREATE TABLE b2(x)", NULL), BE_OK);
  ck_assert_int_eq(be_migrator_set_table(b, "b_migrations", NULL), BE_OK);
  ck_assert_int_eq(be_migrator_apply(&v, b, c, NULL), BE_OK);
  ck_assert_int_eq(v, 2);
  ck_assert(table_exists(c, "b1") && table_exists(c, "b2"));
  ck_assert_int_eq(tu_conn_int(c, "SELECT count(*) FROM schema_migrations"), 1);
  be_migrator_free(a);
  be_migrator_free(b);
  be_conn_close(c);
}
END_TEST

/* A record table whose name differs in case only (made by hand, or by an
 * older release that took such names) is the migrator's table on SQLite
 * as on PostgreSQL: version and apply agree on what it holds. */
START_TEST(record_table_is_found_in_any_case) {
  be_conn *c = open_conn();
  int64_t v = -1;
  ck_assert_int_eq(be_conn_exec(c, "CREATE TABLE Host_Migrations (version INTEGER PRIMARY KEY, "
                                   "name TEXT NOT NULL, applied_at INTEGER NOT NULL); "
                                   "INSERT INTO Host_Migrations VALUES (1, 'h one', 0)",
                                NULL),
                   BE_OK);
  be_migrator *h = NULL;
  ck_assert_int_eq(be_migrator_new(&h, NULL), BE_OK);
  ck_assert_int_eq(be_migrator_set_table(h, "host_migrations", NULL), BE_OK);
  ck_assert_int_eq(be_migrator_add(h, 1, "h one", "CREATE TABLE h1(x)", NULL), BE_OK);
  ck_assert_int_eq(be_migrator_version(&v, h, c, NULL), BE_OK);
  ck_assert_int_eq(v, 1);
  ck_assert_int_eq(be_migrator_apply(&v, h, c, NULL), BE_OK);
  ck_assert_int_eq(v, 1);
  ck_assert(!table_exists(c, "h1"));
  ck_assert_int_eq(be_migrator_current_version(&v, c, NULL), BE_OK);
  ck_assert_int_eq(v, 0);
  ck_assert_int_eq(be_conn_exec(c, "CREATE TABLE SCHEMA_MIGRATIONS (version INTEGER PRIMARY KEY, "
                                   "name TEXT NOT NULL, applied_at INTEGER NOT NULL); "
                                   "INSERT INTO SCHEMA_MIGRATIONS VALUES (3, 'three', 0)",
                                NULL),
                   BE_OK);
  ck_assert_int_eq(be_migrator_current_version(&v, c, NULL), BE_OK);
  ck_assert_int_eq(v, 3);
  be_migrator_free(h);
  be_conn_close(c);
}
END_TEST

/* Names SQLite or PostgreSQL refuse as an unquoted table name (keywords,
 * SQLite's reserved sqlite_ prefix) are field errors at set_table, not a
 * vague storage error at apply. */
START_TEST(record_table_keywords_and_reserved_names_are_refused) {
  be_migrator *m = NULL;
  ck_assert_int_eq(be_migrator_new(&m, NULL), BE_OK);
  const char *const bad[] = {"select", "order", "table", "where", "user", "limit", "offset",
                             "sqlite_mig", "sqlite_", "sqlite_master", "sqlite_sequence"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    be_error *e = NULL;
    ck_assert_msg(be_migrator_set_table(m, bad[i], &e) == BE_E_VALIDATION, "%s accepted", bad[i]);
    ck_assert_str_eq(be_error_field_name(e, 0), "table");
    be_error_free(e);
  }
  /* names that only contain or resemble them are fine */
  /* keywords SQLite takes as a table name (and PostgreSQL does not reserve) */
  const char *const good[] = {"selected", "orders", "my_sqlite_migrations", "sqlitemig", "user_migrations",
                              "key", "plan", "query", "action", "temp"};
  be_conn *c = open_conn();
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    ck_assert_msg(be_migrator_set_table(m, good[i], NULL) == BE_OK, "%s refused", good[i]);
    int64_t v = -1;
    ck_assert_int_eq(be_migrator_apply(&v, m, c, NULL), BE_OK);
    ck_assert(table_exists(c, good[i]));
  }
  be_conn_close(c);
  be_migrator_free(m);
}
END_TEST

/* What the migrate tests log, one line per event: "message k=v ...". */
static char logged[1024];
static void capture_log(int32_t level, const char *message, const be_log_field *fields,
                        size_t count, void *ud) {
  (void)ud;
  size_t n = strlen(logged);
  n += (size_t)snprintf(logged + n, sizeof logged - n, "%d %s", (int)level, message);
  for (size_t i = 0; i < count && n < sizeof logged; i++)
    n += (size_t)snprintf(logged + n, sizeof logged - n, " %s=%s", fields[i].key, fields[i].value);
  if (n < sizeof logged) snprintf(logged + n, sizeof logged - n, "\n");
}

/* A database migrated by a newer build (a version this build does not
 * know) is left as it is: apply succeeds (an older build may run on it
 * during a rollback) and out_version is the database's, above
 * be_migrator_latest_version(); a warning says so. */
START_TEST(database_newer_than_the_migrations_is_visible) {
  be_conn *c = open_conn();
  be_migrator *m = NULL;
  ck_assert_int_eq(be_migrator_new(&m, NULL), BE_OK);
  for (int64_t i = 1; i <= 9; i++) ck_assert_int_eq(be_migrator_add(m, i, "n", "SELECT 1", NULL), BE_OK);
  logged[0] = '\0';
  ck_assert_int_eq(be_log_set_handler(capture_log, NULL, BE_LOG_DEBUG, NULL), BE_OK);
  int64_t v = -1;
  ck_assert_int_eq(be_migrator_apply(&v, m, c, NULL), BE_OK);
  ck_assert_str_eq(logged, ""); /* at the latest version: nothing to say */
  ck_assert_int_eq(be_conn_exec(c, "INSERT INTO schema_migrations VALUES (10, 'newer build', 0)", NULL),
                   BE_OK);
  ck_assert_int_eq(be_migrator_apply(&v, m, c, NULL), BE_OK);
  ck_assert_int_eq(be_log_set_handler(NULL, NULL, BE_LOG_WARN, NULL), BE_OK);
  ck_assert_int_eq(v, 10);
  ck_assert_int_eq(be_migrator_version(&v, m, c, NULL), BE_OK);
  ck_assert_int_eq(v, 10);
  ck_assert_int_gt(v, be_migrator_latest_version(m));
  ck_assert_msg(strstr(logged, "newer than every registered migration table=schema_migrations "
                               "version=10 latest=9\n") != NULL,
                "logged: %s", logged);
  ck_assert_int_eq(atoi(logged), BE_LOG_WARN);
  be_migrator_free(m);
  be_conn_close(c);
}
END_TEST

START_TEST(busy_and_storage_faults) {
  be_conn *c = open_conn();
  be_migrator *m = library_and_host();
  /* busy once at a commit: the transaction retries, apply succeeds */
  ck_assert_int_eq(be_fault_set(flt, BE_FAULT_OP_COMMIT, BE_FAULT_NTH, 2, BE_E_BUSY, NULL), BE_OK);
  int64_t v;
  ck_assert_int_eq(be_migrator_apply(&v, m, c, NULL), BE_OK);
  ck_assert_int_eq(v, 3);
  be_migrator_free(m);
  be_conn_close(c);
  /* each operation failing once on a fresh database: typed error, a
   * consistent version, nothing leaked */
  const int32_t ops[] = {BE_FAULT_OP_EXEC, BE_FAULT_OP_PREPARE, BE_FAULT_OP_BIND, BE_FAULT_OP_STEP,
                         BE_FAULT_OP_BEGIN, BE_FAULT_OP_COMMIT};
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
    for (int64_t nth = 1; nth <= 6; nth += 5) {
      remove(dbpath);
      c = open_conn();
      m = library_and_host();
      ck_assert_int_eq(be_fault_set(flt, ops[i], BE_FAULT_NTH, nth, BE_E_STORAGE, NULL), BE_OK);
      be_error *e = NULL;
      int rc = be_migrator_apply(&v, m, c, &e);
      be_fault_clear(flt, BE_FAULT_OP_ALL);
      if (rc != BE_OK) {
        ck_assert_int_eq(rc, BE_E_STORAGE);
        ck_assert_int_eq(be_error_code(e), BE_E_STORAGE);
        ck_assert_int_lt(v, 3);
      }
      be_error_free(e);
      int64_t cur;
      ck_assert_int_eq(be_migrator_current_version(&cur, c, NULL), BE_OK);
      ck_assert_int_eq(cur, rc == BE_OK ? 3 : v);
      ck_assert_int_eq(be_migrator_apply(&v, m, c, NULL), BE_OK); /* and it recovers */
      ck_assert_int_eq(v, 3);
      be_migrator_free(m);
      be_conn_close(c);
    }
  }
}
END_TEST

static int migrate_alloc_body(void *arg) {
  (void)arg;
  be_migrator *m = NULL;
  be_conn *c = NULL;
  be_error *e = NULL;
  int rc = be_migrator_new(&m, &e);
  if (rc == BE_OK) rc = be_migrator_add(m, 2, "two", "CREATE TABLE b(x)", &e);
  if (rc == BE_OK) rc = be_migrator_add(m, 1, "one", "CREATE TABLE a(x)", &e);
  if (rc == BE_OK) rc = be_migrator_add(m, 3, "bad", "CREATE TABLE c(x); SELEKT", &e);
  if (rc == BE_OK) rc = be_conn_open(&c, be_sqlite_driver(), ":memory:", &e);
  if (rc == BE_OK) {
    int64_t v = 0;
    rc = be_migrator_apply(&v, m, c, &e);
    rc = rc == BE_E_STORAGE && v == 2 ? BE_OK : (rc == BE_OK ? BE_E_INTERNAL : rc);
  }
  be_error_free(e);
  be_conn_close(c);
  be_migrator_free(m);
  return rc;
}

START_TEST(allocation_failures_do_not_leak) {
  TU_FOR_EACH_ALLOC_FAILURE(migrate_alloc_body, NULL);
}
END_TEST

static Suite *migrate_suite(void) {
  Suite *s = suite_create("migrate");
  TCase *tc = tcase_create("migrate");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, apply_in_order_and_idempotent);
  tcase_add_test(tc, failure_keeps_previous_version);
  tcase_add_test(tc, late_registered_lower_version_is_applied);
  tcase_add_test(tc, transaction_control_in_script_is_refused);
  tcase_add_test(tc, trigger_bodies_with_semicolons);
  tcase_add_test(tc, version_1_driver_table_still_works);
  tcase_add_test(tc, registration_is_validated);
  tcase_add_test(tc, busy_and_storage_faults);
  tcase_add_test(tc, record_table_is_named_per_migrator);
  tcase_add_test(tc, record_table_names_differing_in_case_are_not_shared);
  tcase_add_test(tc, record_table_is_found_in_any_case);
  tcase_add_test(tc, record_table_keywords_and_reserved_names_are_refused);
  tcase_add_test(tc, database_newer_than_the_migrations_is_visible);
  tcase_add_test(tc, allocation_failures_do_not_leak);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(migrate_suite)
