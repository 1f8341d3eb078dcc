/* SPDX-License-Identifier: MIT */
/* Shared helpers for the Check suites: a failing allocator, temp dirs, and
 * a main() that runs one suite. Header-only on purpose: each test binary
 * includes it once. */
#ifndef BE_TESTUTIL_H
#define BE_TESTUTIL_H

#include <backend/backend.h>
#include <check.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- failing allocator: fail the Nth allocation (1-based), or none ---- */
static _Atomic long tu_alloc_count;
static _Atomic long tu_alloc_fail_at; /* 0 = never fail */
static _Atomic long tu_alloc_live;    /* outstanding blocks */

static void *tu_malloc(size_t size, void *ud) {
  (void)ud;
  long n = atomic_fetch_add(&tu_alloc_count, 1) + 1;
  long fail = atomic_load(&tu_alloc_fail_at);
  if (fail > 0 && n >= fail) return NULL;
  void *p = malloc(size);
  if (p) atomic_fetch_add(&tu_alloc_live, 1);
  return p;
}
static void *tu_realloc(void *p, size_t size, void *ud) {
  (void)ud;
  long n = atomic_fetch_add(&tu_alloc_count, 1) + 1;
  long fail = atomic_load(&tu_alloc_fail_at);
  if (fail > 0 && n >= fail) return NULL;
  return realloc(p, size);
}
static void tu_free(void *p, void *ud) {
  (void)ud;
  atomic_fetch_sub(&tu_alloc_live, 1);
  free(p);
}

/* Install the counting allocator; allocations from fail_at on fail. */
static inline void tu_alloc_install(long fail_at) {
  be_allocator a = BE_ALLOCATOR_INIT;
  a.malloc_fn = tu_malloc;
  a.realloc_fn = tu_realloc;
  a.free_fn = tu_free;
  atomic_store(&tu_alloc_count, 0);
  atomic_store(&tu_alloc_fail_at, fail_at);
  atomic_store(&tu_alloc_live, 0);
  ck_assert_int_eq(be_set_allocator(&a, NULL), BE_OK);
}

static inline void tu_alloc_restore(void) { be_set_allocator(NULL, NULL); }

/* Run `body` with the Nth allocation failing for N = 1, 2, ... until it
 * succeeds with no failure reached; after each run no block may be live.
 * body returns the BE_* code of the operation under test. */
#define TU_FOR_EACH_ALLOC_FAILURE(body_fn, arg)                                   \
  do {                                                                            \
    for (long tu_n = 1; tu_n < 100000; tu_n++) {                                  \
      tu_alloc_install(tu_n);                                                     \
      int tu_rc = body_fn(arg);                                                   \
      long tu_live = atomic_load(&tu_alloc_live);                                 \
      long tu_used = atomic_load(&tu_alloc_count);                                \
      tu_alloc_restore();                                                         \
      ck_assert_msg(tu_live == 0, "leak of %ld blocks when allocation %ld fails", \
                    tu_live, tu_n);                                               \
      if (tu_used < tu_n) {                                                       \
        ck_assert_int_eq(tu_rc, BE_OK);                                           \
        break;                                                                    \
      }                                                                           \
      ck_assert_msg(tu_rc != BE_OK || tu_used < tu_n,                             \
                    "allocation %ld failed but the call said OK", tu_n);          \
    }                                                                             \
  } while (0)

/* The first error of e's cause chain (e itself excluded) whose message
 * holds text, or NULL: the database's own words live there, never in the
 * message that becomes a client's `detail`. */
static inline const be_error *tu_cause_with(const be_error *e, const char *text) {
  for (const be_error *c = be_error_cause(e); c; c = be_error_cause(c))
    if (strstr(be_error_message(c), text)) return c;
  return NULL;
}

/* Check that the problem JSON of e does not show the text (a driver's
 * message), and that a cause holds it. */
#define TU_ASSERT_TEXT_ONLY_IN_CAUSE(e, text)                                           \
  do {                                                                                  \
    char *tu_json = NULL;                                                               \
    ck_assert_int_eq(be_error_to_json(&tu_json, NULL, (e)), BE_OK);                     \
    ck_assert_msg(strstr(tu_json, (text)) == NULL, "JSON shows \"%s\": %s", (text),     \
                  tu_json);                                                             \
    be_free(tu_json);                                                                   \
    ck_assert_msg(tu_cause_with((e), (text)) != NULL, "no cause holds \"%s\"", (text)); \
  } while (0)

/* A fresh temporary directory (caller frees the string with free()). */
static inline char *tu_tempdir(void) {
  char tmpl[] = "/tmp/betest.XXXXXX";
  char *d = mkdtemp(tmpl);
  ck_assert_ptr_nonnull(d);
  return strdup(d);
}

static inline void tu_rmdir(char *dir) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  free(dir);
}

/* ---- files, as another program sees them ---- */

/* The bytes of a file (free() them), *len its size; NULL when it does not
 * exist. */
static inline unsigned char *tu_read_file(const char *path, size_t *len) {
  *len = 0;
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
  ck_assert_ptr_nonnull(b);
  *len = fread(b, 1, (size_t)n, f);
  fclose(f);
  return b;
}

static inline void tu_write_file(const char *path, const void *bytes, size_t len) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(bytes, 1, len, f), len);
  ck_assert_int_eq(fclose(f), 0);
}

static inline int tu_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* path + suffix (e.g. "-wal") exists. */
static inline int tu_exists_with(const char *path, const char *suffix) {
  char p[1024];
  snprintf(p, sizeof p, "%s%s", path, suffix);
  return tu_exists(p);
}

/* A raw SQLite connection, as another program would open the file. */
static inline sqlite3 *tu_raw_open(const char *path) {
  sqlite3 *db = NULL;
  ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                   SQLITE_OK);
  return db;
}

static inline void tu_raw_exec(sqlite3 *db, const char *sql) {
  char *msg = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
  ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, msg ? msg : "?");
}

/* The journal mode of the file at path ("delete", "wal", ...), read
 * through a connection of its own; static storage. */
static inline const char *tu_journal_mode(const char *path) {
  static char mode[16];
  sqlite3 *db = tu_raw_open(path);
  sqlite3_stmt *st = NULL;
  ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
  ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
  snprintf(mode, sizeof mode, "%s", (const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return mode;
}

/* Another program's database at path: rollback journal (DELETE), a table
 * of its own with rows, spread over several pages. */
static inline void tu_make_foreign_db(const char *path) {
  sqlite3 *db = tu_raw_open(path);
  tu_raw_exec(db, "PRAGMA journal_mode=DELETE; CREATE TABLE notes(id INTEGER PRIMARY KEY, body);"
                  "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)"
                  " INSERT INTO notes(body) SELECT printf('note %d %0100d', i, i) FROM n");
  sqlite3_close(db);
}

/* How a database file goes away under an open connection. */
typedef enum { TU_GONE_DELETED,
               TU_GONE_RENAMED,
               TU_GONE_REPLACED } tu_gone_how;

/* Make the database at path go away: deleted, renamed to dir/moved.db,
 * or replaced by another program's database (renamed over it). */
static inline void tu_make_gone(const char *path, const char *dir, tu_gone_how how) {
  char other[1024];
  if (how == TU_GONE_DELETED) {
    ck_assert_int_eq(remove(path), 0);
  } else if (how == TU_GONE_RENAMED) {
    snprintf(other, sizeof other, "%s/moved.db", dir);
    ck_assert_int_eq(rename(path, other), 0);
  } else {
    snprintf(other, sizeof other, "%s/replacement.db", dir);
    tu_make_foreign_db(other);
    ck_assert_int_eq(rename(other, path), 0);
  }
}

/* Run fn(arg) as an unprivileged user: in a child process as `nobody`
 * when running as root (root ignores file permissions), else right here.
 * fn returns 0 when every check held, else the line that failed (and
 * prints why: no Check assertion may run in the child). Returns 0 when
 * every check held. */
static inline int tu_run_unprivileged(int (*fn)(void *), void *arg) {
  if (geteuid() != 0) return fn(arg);
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(200);
    int r = fn(arg);
    fflush(NULL);
    _exit(r == 0 ? 0 : 1);
  }
  int status = 0;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status), "unprivileged child died");
  ck_assert_msg(WEXITSTATUS(status) != 200, "could not become nobody");
  return WEXITSTATUS(status);
}

/* Run `call`, which passes &tu_e as its be_error **err: it must return
 * `code` and fill the error with that same code. */
#define TU_EXPECT_ERR(code, call)                  \
  do {                                             \
    be_error *tu_e = NULL;                         \
    ck_assert_int_eq((call), (code));              \
    ck_assert_ptr_nonnull(tu_e);                   \
    ck_assert_int_eq(be_error_code(tu_e), (code)); \
    be_error_free(tu_e);                           \
  } while (0)

/* The first column of the first row of sql (which must give a row) on conn. */
static inline int64_t tu_conn_int(be_conn *c, const char *sql) {
  be_stmt *st = NULL;
  ck_assert_int_eq(be_conn_prepare(&st, c, sql, NULL), BE_OK);
  ck_assert_int_eq(be_stmt_step(st, NULL), BE_ROW);
  int64_t v = be_stmt_column_int64(st, 0);
  be_stmt_finalize(st);
  return v;
}

/* main() for a test binary made of one suite. */
#define TU_MAIN(suite_fn)                             \
  int main(void) {                                    \
    SRunner *sr = srunner_create(suite_fn());         \
    srunner_run_all(sr, CK_NORMAL);                   \
    int failed = srunner_ntests_failed(sr);           \
    srunner_free(sr);                                 \
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE; \
  }

#endif
