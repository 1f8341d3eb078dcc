/* SPDX-License-Identifier: MIT */
#include <backend/error.h>
#include <backend/histogram.h>

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "histogram.h"

/*
 * Log-linear buckets (the HdrHistogram idea with 5 sub-bucket bits): values
 * 0..31 have a bucket each; a value v >= 32 with highest set bit e falls in
 * one of 32 equal sub-buckets of [2^e, 2^(e+1)), width 2^(e-5). Reporting a
 * bucket's midpoint is then off by at most half a width, which is at most
 * 1/64 of any value in the bucket.
 */
#define SUB_BITS 5
#define SUB_COUNT (1 << SUB_BITS)
/* buckets of a histogram with b sub-bucket bits */
#define BUCKETS_OF(b) (((size_t)1 << (b)) + (size_t)(63 - (b)) * ((size_t)1 << (b)))
#define BUCKETS BUCKETS_OF(SUB_BITS)

struct be_histogram {
  _Atomic uint64_t count;
  _Atomic int64_t min;
  _Atomic int64_t max;
  _Atomic uint64_t sum_hi; /* 128-bit sum as two words; see add_sum() */
  _Atomic uint64_t sum_lo;
  uint32_t sub_bits; /* SUB_BITS, or fewer for a compact one (histogram.h) */
  uint32_t nbuckets;
  _Atomic uint64_t buckets[]; /* nbuckets */
};

static size_t bucket_of(const be_histogram *h, uint64_t v) {
  uint32_t b = h->sub_bits;
  uint64_t sc = (uint64_t)1 << b;
  if (v < sc) return (size_t)v;
  int e = 63 - __builtin_clzll(v);
  uint64_t sub = (v >> (e - (int)b)) & (sc - 1);
  return (size_t)sc + (size_t)(e - (int)b) * (size_t)sc + (size_t)sub;
}

/* Midpoint of bucket i: the value reported for any sample in it. */
static int64_t bucket_mid(const be_histogram *h, size_t i) {
  uint32_t b = h->sub_bits;
  size_t sc = (size_t)1 << b;
  if (i < sc) return (int64_t)i;
  size_t e = (i - sc) / sc + b;
  uint64_t sub = (i - sc) % sc;
  uint64_t width = (uint64_t)1 << (e - b);
  uint64_t lo = (sc + sub) << (e - b);
  uint64_t mid = lo + width / 2;
  return mid > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)mid;
}

static void reset(be_histogram *h) {
  atomic_store(&h->count, 0);
  atomic_store(&h->min, INT64_MAX);
  atomic_store(&h->max, 0);
  atomic_store(&h->sum_hi, 0);
  atomic_store(&h->sum_lo, 0);
  for (size_t i = 0; i < h->nbuckets; i++) atomic_store_explicit(&h->buckets[i], 0, memory_order_relaxed);
}

size_t be__histogram_size(uint32_t sub_bits) {
  return sizeof(be_histogram) + BUCKETS_OF(sub_bits) * sizeof(_Atomic uint64_t);
}

void be__histogram_init(be_histogram *h, uint32_t sub_bits) {
  h->sub_bits = sub_bits;
  h->nbuckets = (uint32_t)BUCKETS_OF(sub_bits);
  reset(h);
}

int be__histogram_new_bits(be_histogram **out, uint32_t sub_bits) {
  be_histogram *h = be__malloc(be__histogram_size(sub_bits));
  if (h == NULL) return BE_E_NOMEM;
  be__histogram_init(h, sub_bits);
  *out = h;
  return BE_OK;
}

int be_histogram_new(be_histogram **out, be_error **err) {
  if (out == NULL) return be__error_set(err, BE_E_MISUSE, "be_histogram_new: out is NULL");
  be_histogram *h = be__malloc(be__histogram_size(SUB_BITS));
  if (h == NULL) return be__error_oom(err);
  be__histogram_init(h, SUB_BITS);
  *out = h;
  return BE_OK;
}

void be_histogram_free(be_histogram *h) { be__free(h); }

void be_histogram_reset(be_histogram *h) {
  if (h) reset(h);
}

/* A 64-bit sum of nanoseconds overflows after ~292 years of total latency:
 * rare but reachable for long-lived counters, so carry into a high word. */
static void add_sum(be_histogram *h, uint64_t v) {
  uint64_t old = atomic_fetch_add_explicit(&h->sum_lo, v, memory_order_relaxed);
  if (old + v < old) atomic_fetch_add_explicit(&h->sum_hi, 1, memory_order_relaxed);
}

static void update_min_max(be_histogram *h, int64_t v) {
  int64_t cur = atomic_load_explicit(&h->min, memory_order_relaxed);
  while (v < cur && !atomic_compare_exchange_weak_explicit(&h->min, &cur, v, memory_order_relaxed,
                                                           memory_order_relaxed)) {
  }
  cur = atomic_load_explicit(&h->max, memory_order_relaxed);
  while (v > cur && !atomic_compare_exchange_weak_explicit(&h->max, &cur, v, memory_order_relaxed,
                                                           memory_order_relaxed)) {
  }
}

void be__histogram_record_n(be_histogram *h, int64_t value, uint32_t n) {
  if (h == NULL || n == 0) return;
  if (value < 0) value = 0;
  atomic_fetch_add_explicit(&h->buckets[bucket_of(h, (uint64_t)value)], n, memory_order_relaxed);
  unsigned __int128 total = (unsigned __int128)(uint64_t)value * n; /* 128-bit, like the sum */
  if ((uint64_t)(total >> 64) != 0)
    atomic_fetch_add_explicit(&h->sum_hi, (uint64_t)(total >> 64), memory_order_relaxed);
  add_sum(h, (uint64_t)total);
  update_min_max(h, value);
  atomic_fetch_add_explicit(&h->count, n, memory_order_relaxed);
}

/* record_n for n = 1 without its 128-bit product: every statement run
 * records here (query and statement statistics). Same updates, same order. */
void be__histogram_record1(be_histogram *h, int64_t value) {
  uint64_t v = value < 0 ? 0 : (uint64_t)value;
  atomic_fetch_add_explicit(&h->buckets[bucket_of(h, v)], 1, memory_order_relaxed);
  add_sum(h, v);
  update_min_max(h, (int64_t)v);
  atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

void be_histogram_record(be_histogram *h, int64_t value) {
  if (h) be__histogram_record1(h, value);
}

int64_t be_histogram_count(const be_histogram *h) {
  return h ? (int64_t)atomic_load_explicit(&((be_histogram *)h)->count, memory_order_relaxed) : 0;
}

int64_t be_histogram_min(const be_histogram *h) {
  if (be_histogram_count(h) == 0) return 0;
  return atomic_load(&((be_histogram *)h)->min);
}

int64_t be_histogram_max(const be_histogram *h) {
  if (be_histogram_count(h) == 0) return 0;
  return atomic_load(&((be_histogram *)h)->max);
}

double be_histogram_mean(const be_histogram *h) {
  uint64_t n = be_histogram_count(h);
  if (n == 0) return 0.0;
  be_histogram *m = (be_histogram *)h;
  double sum = ldexp((double)atomic_load(&m->sum_hi), 64) + (double)atomic_load(&m->sum_lo);
  return sum / (double)n;
}

int64_t be_histogram_quantile(const be_histogram *h, double q) {
  if (h == NULL) return 0;
  be_histogram *m = (be_histogram *)h;
  /* Count from the buckets themselves so a concurrent record cannot make
   * the rank point past what the scan sees. */
  uint64_t total = 0;
  for (size_t i = 0; i < m->nbuckets; i++) total += atomic_load_explicit(&m->buckets[i], memory_order_relaxed);
  if (total == 0) return 0;
  if (!(q > 0.0)) q = 0.0; /* also maps NaN to 0 */
  if (q > 1.0) q = 1.0;
  uint64_t rank = (uint64_t)ceil(q * (double)total);
  if (rank < 1) rank = 1;
  if (rank > total) rank = total;
  /* the extremes are tracked exactly */
  if (rank == 1) return be_histogram_min(h);
  if (rank == total) return be_histogram_max(h);
  uint64_t seen = 0;
  for (size_t i = 0; i < m->nbuckets; i++) {
    seen += atomic_load_explicit(&m->buckets[i], memory_order_relaxed);
    if (seen >= rank) {
      int64_t v = bucket_mid(m, i), lo = be_histogram_min(h), hi = be_histogram_max(h);
      /* the exact extremes are known: never report outside them */
      return v < lo ? lo : v > hi ? hi
                                  : v;
    }
  }
  return be_histogram_max(h);
}

int be_histogram_merge(be_histogram *dst, const be_histogram *src, be_error **err) {
  if (dst == NULL || src == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_histogram_merge: %s is NULL", dst ? "src" : "dst");
  be_histogram *s = (be_histogram *)src;
  if (s->sub_bits != dst->sub_bits)
    return be__error_set(err, BE_E_MISUSE, "be_histogram_merge: the histograms have different layouts");
  uint64_t n = 0;
  for (size_t i = 0; i < s->nbuckets; i++) {
    uint64_t c = atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
    if (c) atomic_fetch_add_explicit(&dst->buckets[i], c, memory_order_relaxed);
    n += c;
  }
  if (n == 0) return BE_OK;
  atomic_fetch_add(&dst->sum_hi, atomic_load(&s->sum_hi));
  add_sum(dst, atomic_load(&s->sum_lo));
  update_min_max(dst, atomic_load(&s->min));
  update_min_max(dst, atomic_load(&s->max));
  atomic_fetch_add(&dst->count, n);
  return BE_OK;
}

__thread unsigned be__histogram_thread_number;

unsigned be__histogram_number_thread(void) {
  static _Atomic unsigned next_number;
  unsigned n = be__histogram_thread_number;
  if (n == 0)
    n = be__histogram_thread_number =
      atomic_fetch_add_explicit(&next_number, 1, memory_order_relaxed) + 1;
  return n;
}

double be_histogram_relative_error(void) { return 1.0 / (2.0 * SUB_COUNT); }

int64_t be_histogram_memory_bytes(void) { return (int64_t)be__histogram_size(SUB_BITS); }

int64_t be_histogram_count_le(const be_histogram *h, int64_t value) {
  if (h == NULL || value < 0) return 0;
  be_histogram *m = (be_histogram *)h;
  uint64_t n = 0;
  for (size_t i = 0; i < m->nbuckets && bucket_mid(m, i) <= value; i++)
    n += atomic_load_explicit(&m->buckets[i], memory_order_relaxed);
  return (int64_t)n;
}

int64_t be_histogram_sum(const be_histogram *h) {
  if (h == NULL) return 0;
  be_histogram *m = (be_histogram *)h;
  if (atomic_load(&m->sum_hi) != 0 || atomic_load(&m->sum_lo) > (uint64_t)INT64_MAX) return INT64_MAX;
  return (int64_t)atomic_load(&m->sum_lo);
}
