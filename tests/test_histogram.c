/* SPDX-License-Identifier: MIT */
/* Histogram quantiles against exact quantiles of random samples. */
#include "testutil.h"

#include "histogram.h" /* be__histogram_init: compact histograms */

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

/* be_histogram_count_le(h, b) lies between the exact counts of values
 * <= b/(1+bound) and <= b/(1-bound): a bucket is counted by its midpoint. */
static size_t count_upto(const int64_t *sorted, size_t n, double b) {
  size_t k = 0;
  while (k < n && (double)sorted[k] <= b) k++;
  return k;
}

static void check_count_le(const be_histogram *h, int64_t *v, size_t n, double bound) {
  qsort(v, n, sizeof *v, cmp_i64);
  const int64_t bs[] = {0, 10, 1000, 25000, 100000, 1000000, 250000000};
  for (size_t i = 0; i < sizeof bs / sizeof bs[0]; i++) {
    int64_t got = be_histogram_count_le(h, bs[i]);
    size_t lo = count_upto(v, n, (double)bs[i] / (1 + bound) - 1);
    size_t hi = count_upto(v, n, (double)bs[i] / (1 - bound) + 1);
    ck_assert_msg((size_t)got >= lo && (size_t)got <= hi, "count_le(%lld) = %lld, not in %zu..%zu",
                  (long long)bs[i], (long long)got, lo, hi);
  }
  ck_assert_int_eq(be_histogram_count_le(h, INT64_MAX), (int64_t)n);
}

/* sub_bits 5: be_histogram_new(); fewer: a compact one (lib/histogram.h),
 * whose quantiles are within 1/2^(sub_bits+1). */
static void check_distribution_bits(int64_t (*gen)(void), size_t n, uint32_t sub_bits) {
  int64_t *v = malloc(n * sizeof *v);
  be_histogram *h = NULL;
  if (sub_bits == 5) ck_assert_int_eq(be_histogram_new(&h, NULL), BE_OK);
  else {
    h = malloc(be__histogram_size(sub_bits));
    be__histogram_init(h, sub_bits);
  }
  double sum = 0;
  __int128 isum = 0;
  for (size_t i = 0; i < n; i++) {
    v[i] = gen();
    sum += (double)v[i];
    isum += v[i];
    be_histogram_record(h, v[i]);
  }
  qsort(v, n, sizeof *v, cmp_i64);
  ck_assert_uint_eq(be_histogram_count(h), n);
  ck_assert_int_eq(be_histogram_min(h), v[0]);
  ck_assert_int_eq(be_histogram_max(h), v[n - 1]);
  ck_assert(fabs(be_histogram_mean(h) - sum / (double)n) <= 1e-9 * fabs(sum / (double)n) + 1e-9);
  const double qs[] = {0.0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0};
  double bound = 1.0 / (double)(2u << sub_bits);
  ck_assert(sub_bits != 5 || bound == be_histogram_relative_error());
  ck_assert_int_eq(be_histogram_sum(h), isum > INT64_MAX ? INT64_MAX : (int64_t)isum);
  check_count_le(h, v, n, bound);
  for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
    int64_t exact = exact_quantile(v, n, qs[i]);
    int64_t got = be_histogram_quantile(h, qs[i]);
    double err = exact == 0 ? (double)llabs(got) : fabs((double)(got - exact)) / (double)exact;
    ck_assert_msg(err <= bound, "q=%.3f exact=%lld got=%lld err=%.5f > %.5f", qs[i],
                  (long long)exact, (long long)got, err, bound);
  }
  free(v);
  if (sub_bits == 5) be_histogram_free(h);
  else free(h);
}

static void check_distribution(int64_t (*gen)(void), size_t n) { check_distribution_bits(gen, n, 5); }

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

/* The compact histograms of the statement statistics (3 sub-bucket bits:
 * within 1/16) hold the same promise at their own bound. */
/* A sample recorded for n calls counts n times (sampled metrics). */
START_TEST(record_n_counts_a_sample_n_times) {
  be_histogram *a = NULL, *b = NULL;
  ck_assert_int_eq(be_histogram_new(&a, NULL), BE_OK);
  ck_assert_int_eq(be_histogram_new(&b, NULL), BE_OK);
  for (int i = 0; i < 256; i++) be_histogram_record(a, 1000);
  for (int i = 0; i < 3; i++) be_histogram_record(a, 900000);
  be__histogram_record_n(b, 1000, 256);
  be__histogram_record_n(b, 900000, 3);
  be__histogram_record_n(b, 5, 0); /* nothing */
  ck_assert_int_eq(be_histogram_count(b), be_histogram_count(a));
  ck_assert_int_eq(be_histogram_sum(b), be_histogram_sum(a));
  ck_assert_int_eq(be_histogram_quantile(b, 0.99), be_histogram_quantile(a, 0.99));
  ck_assert_int_eq(be_histogram_count_le(b, 2000), 256);
  be__histogram_record_n(b, INT64_MAX, 256); /* the 128-bit sum saturates, never wraps */
  ck_assert_int_eq(be_histogram_sum(b), INT64_MAX);
  be_histogram_free(a);
  be_histogram_free(b);
}
END_TEST

START_TEST(compact_quantiles_within_their_error) {
  for (uint32_t bits = 1; bits <= 4; bits++)
    for (int round = 0; round < 3; round++) {
      check_distribution_bits(gen_uniform_wide, 1 + (size_t)(xorshift() % 20000), bits);
      check_distribution_bits(gen_lognormal, 1 + (size_t)(xorshift() % 20000), bits);
    }
  be_histogram *a = NULL, *b = malloc(be__histogram_size(3));
  be__histogram_init(b, 3);
  ck_assert_int_eq(be_histogram_new(&a, NULL), BE_OK);
  ck_assert_int_eq(be_histogram_merge(a, b, NULL), BE_E_MISUSE); /* different layouts */
  be_histogram_free(a);
  free(b);
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
  tcase_add_test(tc, compact_quantiles_within_their_error);
  tcase_add_test(tc, record_n_counts_a_sample_n_times);
  tcase_add_test(tc, empty_and_null_and_negative);
  tcase_add_test(tc, merge_equals_recording_both);
  tcase_add_test(tc, concurrent_recording_loses_nothing);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(histogram_suite)
