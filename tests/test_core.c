/* SPDX-License-Identifier: MIT */
/* Core utilities: version, allocator hooks, clocks, logging. */
#include "testutil.h"

#include "alloc.h" /* be__calloc_lines */

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

START_TEST(version_matches_headers) {
  ck_assert_uint_eq(be_version_number(), BE_VERSION_NUMBER);
  ck_assert_str_eq(be_version_string(), BE_VERSION_STRING);
  char expect[32];
  snprintf(expect, sizeof expect, "%d.%d.%d", BE_VERSION_MAJOR, BE_VERSION_MINOR, BE_VERSION_PATCH);
  ck_assert_str_eq(be_version_string(), expect);
  ck_assert(BE_VERSION_CHECK(0, 0, 1));
  ck_assert(!BE_VERSION_CHECK(BE_VERSION_MAJOR + 1, 0, 0));
}
END_TEST

START_TEST(allocator_hooks_route_and_fail) {
  be_allocator a;
  ck_assert_int_eq(be_allocator_init(&a, BE_ALLOCATOR_VERSION), BE_OK);
  ck_assert_ptr_null(a.malloc_fn);
  ck_assert_int_eq(be_allocator_init(&a, 99), BE_E_MISUSE);
  ck_assert_int_eq(be_allocator_init(NULL, BE_ALLOCATOR_VERSION), BE_E_MISUSE);
  ck_assert_int_eq(be_set_allocator(&a, NULL), BE_E_MISUSE); /* functions missing */
  TU_EXPECT_ERR(BE_E_MISUSE, be_set_allocator(&a, &tu_e));
  a.version = 2;
  ck_assert_int_eq(be_set_allocator(&a, NULL), BE_E_MISUSE);

  tu_alloc_install(0);
  be_error *e = NULL;
  ck_assert_int_eq(be_error_new(&e, BE_E_INTERNAL, "x"), BE_OK);
  ck_assert_int_gt(atomic_load(&tu_alloc_count), 0); /* went through the hook */
  be_error_free(e);
  ck_assert_int_eq(atomic_load(&tu_alloc_live), 0);
  tu_alloc_install(1); /* first allocation fails */
  be_clock *c = NULL;
  ck_assert_int_eq(be_clock_fake_new(&c, 0, 0, NULL), BE_E_NOMEM);
  ck_assert_ptr_null(c);
  tu_alloc_restore();
}
END_TEST

/* A host allocator whose blocks start 121 bytes past a 128-byte boundary
 * (aligned to one byte only), to check nothing assumes more: the stored
 * pointer then needs all the room it has. */
#define ODD_OFFSET 121
static void *odd_malloc(size_t size, void *ud) {
  (void)ud;
  void *base = NULL; /* exactly size bytes past the offset: ASan sees any overrun */
  return posix_memalign(&base, 128, size + ODD_OFFSET) == 0 ? (char *)base + ODD_OFFSET : NULL;
}
static void odd_free(void *p, void *ud) {
  (void)ud;
  if (p) free((char *)p - ODD_OFFSET);
}
static void *odd_realloc(void *p, size_t size, void *ud) {
  (void)p, (void)size, (void)ud;
  ck_abort_msg("be__calloc_lines reallocates nothing"); /* be_set_allocator wants one */
  return NULL;
}

/* Two of each size: on a line boundary, zeroed, and all of the last line
 * their own (writing the whole rounded size is in bounds for ASan and
 * valgrind, and touches nothing of the other one). */
static void check_line_allocations(void) {
  for (size_t size = 1; size <= 3 * BE__LINE + 1; size += 37) {
    size_t rounded = (size + BE__LINE - 1) / BE__LINE * BE__LINE;
    unsigned char *a = be__calloc_lines(size), *b = be__calloc_lines(size);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq((uintptr_t)a % BE__LINE, 0);
    ck_assert_uint_eq((uintptr_t)b % BE__LINE, 0);
    for (size_t i = 0; i < rounded; i++) ck_assert_uint_eq(a[i] | b[i], 0);
    memset(a, 0xAB, rounded);
    memset(b, 0xCD, rounded);
    for (size_t i = 0; i < rounded; i++) ck_assert_uint_eq(a[i], 0xAB);
    be__free_lines(a);
    be__free_lines(b);
  }
}

/* Memory for objects a thread writes on every call (be__calloc_lines),
 * from the host's allocator, however that one aligns. */
START_TEST(line_allocations_own_their_lines) {
  tu_alloc_install(0);
  check_line_allocations();
  ck_assert_int_gt(atomic_load(&tu_alloc_count), 0); /* the host's allocator */
  ck_assert_int_eq(atomic_load(&tu_alloc_live), 0);
  be__free_lines(NULL);
  ck_assert_ptr_null(be__calloc_lines(SIZE_MAX - BE__LINE)); /* would overflow */
  tu_alloc_install(1);
  ck_assert_ptr_null(be__calloc_lines(8));
  be_allocator odd;
  ck_assert_int_eq(be_allocator_init(&odd, BE_ALLOCATOR_VERSION), BE_OK);
  odd.malloc_fn = odd_malloc;
  odd.realloc_fn = odd_realloc;
  odd.free_fn = odd_free;
  ck_assert_int_eq(be_set_allocator(&odd, NULL), BE_OK);
  check_line_allocations();
  tu_alloc_restore();
}
END_TEST

START_TEST(fake_clock_moves_only_when_told) {
  be_clock *c = NULL;
  ck_assert_int_eq(be_clock_fake_new(&c, 1000, 5 * BE_NS_PER_SEC, NULL), BE_OK);
  ck_assert_int_eq(be_clock_now_ns(c), 1000);
  ck_assert_int_eq(be_clock_wall_ns(c), 5 * BE_NS_PER_SEC);
  ck_assert_int_eq(be_clock_advance(c, 250, NULL), BE_OK);
  ck_assert_int_eq(be_clock_now_ns(c), 1250);
  ck_assert_int_eq(be_clock_wall_ns(c), 5 * BE_NS_PER_SEC + 250);
  ck_assert_int_eq(be_clock_advance(c, -1, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_clock_set_wall(c, 42, NULL), BE_OK);
  ck_assert_int_eq(be_clock_wall_ns(c), 42);
  ck_assert_int_eq(be_clock_now_ns(c), 1250); /* monotonic untouched */
  ck_assert_int_eq(be_clock_advance(be_clock_system(), 1, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_clock_advance(NULL, 1, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_clock_set_wall(be_clock_system(), 1, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_clock_fake_new(NULL, 0, 0, NULL), BE_E_MISUSE);
  /* misuse fills err */
  TU_EXPECT_ERR(BE_E_MISUSE, be_clock_advance(c, -1, &tu_e));
  TU_EXPECT_ERR(BE_E_MISUSE, be_clock_advance(be_clock_system(), 1, &tu_e));
  TU_EXPECT_ERR(BE_E_MISUSE, be_clock_set_wall(NULL, 1, &tu_e));
  TU_EXPECT_ERR(BE_E_MISUSE, be_clock_fake_new(NULL, 0, 0, &tu_e));
  TU_EXPECT_ERR(BE_E_MISUSE, be_clock_custom_new(NULL, NULL, NULL, NULL, &tu_e));
  be_clock_free(c);
  be_clock_free(be_clock_system()); /* no-op */
  be_clock_free(NULL);
}
END_TEST

static void *advance_many(void *arg) {
  for (int i = 0; i < 10000; i++) be_clock_advance(arg, 1, NULL);
  return NULL;
}

START_TEST(fake_clock_is_thread_safe) {
  be_clock *c = NULL;
  ck_assert_int_eq(be_clock_fake_new(&c, 0, 0, NULL), BE_OK);
  pthread_t t[4];
  for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, advance_many, c);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  ck_assert_int_eq(be_clock_now_ns(c), 40000);
  be_clock_free(c);
}
END_TEST

static int64_t fixed_mono(void *ud) { return *(int64_t *)ud; }

START_TEST(system_and_custom_clocks) {
  int64_t a = be_clock_now_ns(NULL), b = be_clock_now_ns(be_clock_system());
  ck_assert_int_ge(b, a);
  int64_t wall = be_clock_wall_ns(NULL);
  ck_assert_int_gt(wall, INT64_C(1700000000) * BE_NS_PER_SEC); /* after 2023 */
  int64_t t = 77;
  be_clock *c = NULL;
  ck_assert_int_eq(be_clock_custom_new(&c, fixed_mono, NULL, &t, NULL), BE_OK);
  ck_assert_int_eq(be_clock_now_ns(c), 77);
  t = 99;
  ck_assert_int_eq(be_clock_now_ns(c), 99);
  ck_assert_int_gt(be_clock_wall_ns(c), INT64_C(1700000000) * BE_NS_PER_SEC);
  ck_assert_int_eq(be_clock_advance(c, 1, NULL), BE_E_MISUSE);
  be_clock_free(c);
}
END_TEST

/* ---- log ---- */
static char captured[4096];
static int captured_level;
static size_t captured_fields;

static void capture(int32_t level, const char *msg, const be_log_field *f, size_t n, void *ud) {
  (void)ud;
  captured_level = level;
  captured_fields = n;
  int off = snprintf(captured, sizeof captured, "%s", msg);
  for (size_t i = 0; i < n && off < (int)sizeof captured; i++)
    off += snprintf(captured + off, sizeof captured - (size_t)off, " %s=%s", f[i].key, f[i].value);
}

START_TEST(log_levels_filter_and_fields_arrive) {
  ck_assert_int_eq(be_log_set_handler(capture, NULL, BE_LOG_INFO, NULL), BE_OK);
  ck_assert_int_eq(be_log_level(), BE_LOG_INFO);
  captured[0] = 0;
  ck_assert_int_eq(be_log(BE_LOG_DEBUG, "hidden", NULL, 0, NULL), BE_OK);
  ck_assert_str_eq(captured, "");
  be_log_field f[] = {{"pool", "main"}, {"in_use", "8"}};
  ck_assert_int_eq(be_log(BE_LOG_WARN, "pool usage high", f, 2, NULL), BE_OK);
  ck_assert_str_eq(captured, "pool usage high pool=main in_use=8");
  ck_assert_int_eq(captured_level, BE_LOG_WARN);
  ck_assert_uint_eq(captured_fields, 2);
  ck_assert_int_eq(be_log(BE_LOG_WARN, NULL, NULL, 0, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_log(BE_LOG_WARN, "x", NULL, 1, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_log_set_handler(capture, NULL, 17, NULL), BE_E_MISUSE);
  TU_EXPECT_ERR(BE_E_MISUSE, be_log(BE_LOG_WARN, NULL, NULL, 0, &tu_e));
  TU_EXPECT_ERR(BE_E_MISUSE, be_log_set_handler(capture, NULL, 17, &tu_e));
  ck_assert_str_eq(be_log_level_name(BE_LOG_ERROR), "ERROR");
  ck_assert_str_eq(be_log_level_name(3), "?");
  be_log_set_handler(NULL, NULL, BE_LOG_WARN, NULL);
}
END_TEST

START_TEST(log_never_carries_secrets) {
  ck_assert_int_eq(be_log_set_handler(capture, NULL, BE_LOG_DEBUG, NULL), BE_OK);
  be_log_field f[] = {{"user", "ann"},
                      {"password", "hunter2hunter2"},
                      {"Session_Token", "abcdef"},
                      {"X-Authorization", "Bearer xyz"},
                      {"api_key", "k"},
                      {"reset_token_hash", "zz"}};
  ck_assert_int_eq(be_log(BE_LOG_INFO, "login", f, 6, NULL), BE_OK);
  ck_assert_ptr_null(strstr(captured, "hunter2"));
  ck_assert_ptr_null(strstr(captured, "abcdef"));
  ck_assert_ptr_null(strstr(captured, "xyz"));
  ck_assert_ptr_null(strstr(captured, "zz"));
  ck_assert_ptr_nonnull(strstr(captured, "user=ann"));
  ck_assert_ptr_nonnull(strstr(captured, "password=[redacted]"));
  be_log_set_handler(NULL, NULL, BE_LOG_WARN, NULL);
}
END_TEST

START_TEST(default_log_line_is_one_escaped_line) {
  /* capture stderr through a pipe-backed temp file */
  fflush(stderr);
  FILE *tmp = tmpfile();
  int saved = dup(fileno(stderr));
  dup2(fileno(tmp), fileno(stderr));
  be_log_set_handler(NULL, NULL, BE_LOG_WARN, NULL);
  be_log_field f[] = {{"user", "a\nlibbackend ERROR forged"}, {"token", "t0ps3cret"}};
  be_log(BE_LOG_INFO, "not shown", NULL, 0, NULL);
  be_log(BE_LOG_ERROR, "db down", f, 2, NULL);
  fflush(stderr);
  dup2(saved, fileno(stderr));
  close(saved);
  rewind(tmp);
  char line[512] = "", extra[512] = "";
  ck_assert_ptr_nonnull(fgets(line, sizeof line, tmp));
  ck_assert_ptr_null(fgets(extra, sizeof extra, tmp)); /* exactly one line */
  fclose(tmp);
  ck_assert_str_eq(line, "libbackend ERROR db down user=a\\x0alibbackend ERROR forged token=[redacted]\n");
}
END_TEST

Suite *core_suite(void) {
  Suite *s = suite_create("core");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, version_matches_headers);
  tcase_add_test(tc, allocator_hooks_route_and_fail);
  tcase_add_test(tc, line_allocations_own_their_lines);
  tcase_add_test(tc, fake_clock_moves_only_when_told);
  tcase_add_test(tc, fake_clock_is_thread_safe);
  tcase_add_test(tc, system_and_custom_clocks);
  tcase_add_test(tc, log_levels_filter_and_fields_arrive);
  tcase_add_test(tc, log_never_carries_secrets);
  tcase_add_test(tc, default_log_line_is_one_escaped_line);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(core_suite)
