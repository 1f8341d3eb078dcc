/* SPDX-License-Identifier: MIT */
/* Shared helpers for the Check suites: a failing allocator, temp dirs, and
 * a main() that runs one suite. Header-only on purpose: each test binary
 * includes it once. */
#ifndef BE_TESTUTIL_H
#define BE_TESTUTIL_H

#include <backend/backend.h>
#include <check.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
