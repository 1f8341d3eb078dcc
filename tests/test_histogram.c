/* SPDX-License-Identifier: MIT */
/* Histogram quantiles against exact quantiles of random samples. */
#include "testutil.h"

#include <math.h>
#include <pthread.h>

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* exact sample quantile with the documented rank rule */
static int64_t exact_quantile(const int64_t *sorted, size_t n, double q) {
  size_t rank = (size_t)ceil(q * (double)n);
  if (rank < 1) rank = 1;
  if (rank > n) rank = n;
  return sorted[rank - 1];
}

static uint64_t rng_state = 88172645463325252ull;
static uint64_t xorshift(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static void check_distribution(int64_t (*gen)(void), size_t n) {
  int64_t *v = malloc(n * sizeof *v);
  be_histogram *h = NULL;
  ck_assert_int_eq(be_histogram_new(&h, NULL), BE_OK);
  double sum = 0;
  for (size_t i = 0; i < n; i++) {
    v[i] = gen();
    sum += (double)v[i];
    be_histogram_record(h, v[i]);
  }
  qsort(v, n, sizeof *v, cmp_i64);
  ck_assert_uint_eq(be_histogram_count(h), n);
  ck_assert_int_eq(be_histogram_min(h), v[0]);
  ck_assert_int_eq(be_histogram_max(h), v[n - 1]);
  ck_assert(fabs(be_histogram_mean(h) - sum / (double)n) <= 1e-9 * fabs(sum / (double)n) + 1e-9);
  const double qs[] = {0.0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0};
  double bound = be_histogram_relative_error();
  for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
    int64_t exact = exact_quantile(v, n, qs[i]);
    int64_t got = be_histogram_quantile(h, qs[i]);
    double err = exact == 0 ? (double)llabs(got) : fabs((double)(got - exact)) / (double)exact;
    ck_assert_msg(err <= bound, "q=%.3f exact=%lld got=%lld err=%.5f > %.5f", qs[i],
                  (long long)exact, (long long)got, err, bound);
  }
  free(v);
  be_histogram_free(h);
}

static int64_t gen_uniform_small(void) { return (int64_t)(xorshift() % 100); }
static int64_t gen_uniform_wide(void) { return (int64_t)(xorshift() % 1000000000ull); }
static int64_t gen_lognormal(void) {
  double u1 = ((double)(xorshift() >> 11) + 1) / 9007199254740993.0;
  double u2 = ((double)(xorshift() >> 11) + 1) / 9007199254740993.0;
  double z = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
  return (int64_t)exp(11.0 + 1.5 * z); /* ~60 us median, long tail */
}
static int64_t gen_huge(void) { return (int64_t)(xorshift() >> 1); }

START_TEST(quantiles_within_stated_error) {
  ck_assert(fabs(be_histogram_relative_error() - 1.0 / 64) < 1e-12);
  for (int round = 0; round < 5; round++) {
    check_distribution(gen_uniform_small, 1 + (size_t)(xorshift() % 5000));
    check_distribution(gen_uniform_wide, 1 + (size_t)(xorshift() % 20000));
    check_distribution(gen_lognormal, 1 + (size_t)(xorshift() % 20000));
    check_distribution(gen_huge, 1 + (size_t)(xorshift() % 2000));
  }
  check_distribution(gen_lognormal, 1);
}
END_TEST

START_TEST(empty_and_null_and_negative) {
  be_histogram *h = NULL;
  ck_assert_int_eq(be_histogram_new(NULL, NULL), BE_E_MISUSE);
  TU_EXPECT_ERR(BE_E_MISUSE, be_histogram_new(NULL, &tu_e));
  ck_assert_int_eq(be_histogram_new(&h, NULL), BE_OK);
  ck_assert_int_eq(be_histogram_quantile(h, 0.5), 0);
  ck_assert_int_eq(be_histogram_min(h), 0);
  ck_assert_int_eq(be_histogram_max(h), 0);
  ck_assert(be_histogram_mean(h) == 0.0);
  be_histogram_record(h, -5);
  ck_assert_int_eq(be_histogram_quantile(h, 0.5), 0);
  be_histogram_record(h, INT64_MAX);
  ck_assert_int_eq(be_histogram_max(h), INT64_MAX);
  ck_assert_int_eq(be_histogram_quantile(h, 1.0), INT64_MAX);
  ck_assert_int_eq(be_histogram_quantile(h, NAN), 0);
  ck_assert_int_eq(be_histogram_quantile(h, 7.0), INT64_MAX);
  be_histogram_reset(h);
  ck_assert_uint_eq(be_histogram_count(h), 0);
  be_histogram_record(NULL, 1);
  ck_assert_uint_eq(be_histogram_count(NULL), 0);
  ck_assert_int_eq(be_histogram_quantile(NULL, 0.5), 0);
  ck_assert_int_eq(be_histogram_merge(NULL, h, NULL), BE_E_MISUSE);
  TU_EXPECT_ERR(BE_E_MISUSE, be_histogram_merge(h, NULL, &tu_e));
  be_histogram_free(h);
  be_histogram_free(NULL);
}
END_TEST

START_TEST(merge_equals_recording_both) {
  be_histogram *a = NULL, *b = NULL, *all = NULL;
  be_histogram_new(&a, NULL);
  be_histogram_new(&b, NULL);
  be_histogram_new(&all, NULL);
  for (int i = 0; i < 5000; i++) {
    int64_t v = gen_lognormal();
    be_histogram_record(i % 3 ? a : b, v);
    be_histogram_record(all, v);
  }
  ck_assert_int_eq(be_histogram_merge(a, b, NULL), BE_OK);
  ck_assert_uint_eq(be_histogram_count(a), be_histogram_count(all));
  ck_assert_int_eq(be_histogram_min(a), be_histogram_min(all));
  ck_assert_int_eq(be_histogram_max(a), be_histogram_max(all));
  for (double q = 0; q <= 1.0; q += 0.05)
    ck_assert_int_eq(be_histogram_quantile(a, q), be_histogram_quantile(all, q));
  be_histogram_free(a);
  be_histogram_free(b);
  be_histogram_free(all);
}
END_TEST

static void *record_many(void *arg) {
  for (int64_t i = 1; i <= 100000; i++) be_histogram_record(arg, i);
  return NULL;
}

START_TEST(concurrent_recording_loses_nothing) {
  be_histogram *h = NULL;
  be_histogram_new(&h, NULL);
  pthread_t t[4];
  for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, record_many, h);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  ck_assert_uint_eq(be_histogram_count(h), 400000);
  ck_assert_int_eq(be_histogram_min(h), 1);
  ck_assert_int_eq(be_histogram_max(h), 100000);
  ck_assert(fabs(be_histogram_mean(h) - 50000.5) < 1e-6);
  int64_t p50 = be_histogram_quantile(h, 0.5);
  ck_assert(fabs((double)p50 - 50000) / 50000 <= be_histogram_relative_error());
  be_histogram_free(h);
}
END_TEST

Suite *histogram_suite(void) {
  Suite *s = suite_create("histogram");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, quantiles_within_stated_error);
  tcase_add_test(tc, empty_and_null_and_negative);
  tcase_add_test(tc, merge_equals_recording_both);
  tcase_add_test(tc, concurrent_recording_loses_nothing);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(histogram_suite)
