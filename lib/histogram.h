/* SPDX-License-Identifier: MIT */
/* Internal: histograms in memory the caller provides, and compact ones
 * (fewer sub-buckets: relative error 1/2^(sub_bits+1) instead of 1/64),
 * for tables that allocate every histogram up front (stmt_stats.c). Such
 * a histogram is read and written with the public be_histogram_*
 * functions and merges only with one of the same sub_bits. One made by
 * be__histogram_init() is released with its block; one made by
 * be__histogram_new_bits() with be_histogram_free(). */
#ifndef BE_LIB_HISTOGRAM_H
#define BE_LIB_HISTOGRAM_H

#include <backend/histogram.h>

#include <stddef.h>
#include <stdint.h>

/* Bytes of a histogram of sub_bits (1..5) sub-bucket bits, a multiple of 8. */
size_t be__histogram_size(uint32_t sub_bits);
/* Make the be__histogram_size(sub_bits) bytes at h an empty histogram. */
void be__histogram_init(be_histogram *h, uint32_t sub_bits);
/* Record value as n values (a sample standing for n calls). */
void be__histogram_record_n(be_histogram *h, int64_t value, uint32_t n);
/* A new compact histogram (be_histogram_free()); BE_E_NOMEM. */
int be__histogram_new_bits(be_histogram **out, uint32_t sub_bits);

/* be_histogram_record(h, value) for a histogram known not to be NULL: an
 * internal call (no PLT), the path each statement run records through. */
void be__histogram_record1(be_histogram *h, int64_t value);

/* A sampled value standing for weight (>= 1) values: record1's path for
 * the common weight 1. */
static inline void be__histogram_record_weighted(be_histogram *h, int64_t value, uint32_t weight) {
  if (weight == 1) be__histogram_record1(h, value);
  else be__histogram_record_n(h, value, weight);
}

/* The calling thread's number, 1.. (0: not numbered yet); initial-exec: no
 * __tls_get_addr call on the hot path (as lib/ebr.c). */
extern __thread unsigned be__histogram_thread_number __attribute__((tls_model("initial-exec")));
/* Number the calling thread (at its first call) and return its number. */
unsigned be__histogram_number_thread(void);

/* The calling thread's stripe, 0..nstripes-1: threads are numbered
 * round-robin at their first call, so a few threads recording into
 * striped histograms (one per stripe) write to different cache lines.
 * Inline: a thread-local load and a modulo (a mask for a constant power
 * of two). */
static inline unsigned be__histogram_stripe(unsigned nstripes) {
  unsigned n = be__histogram_thread_number;
  if (__builtin_expect(n == 0, 0)) n = be__histogram_number_thread();
  return (n - 1) % nstripes;
}

#endif
