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

/* The calling thread's stripe, 0..nstripes-1: threads are numbered
 * round-robin at their first call, so a few threads recording into
 * striped histograms (one per stripe) write to different cache lines. */
unsigned be__histogram_stripe(unsigned nstripes);

#endif
