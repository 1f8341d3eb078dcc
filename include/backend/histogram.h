/* SPDX-License-Identifier: MIT */
/**
 * @file backend/histogram.h
 * @brief Latency histogram with fixed memory and a stated relative error.
 *
 * Values are non-negative int64_t (libbackend records nanoseconds). Values
 * below 32 are counted exactly; above, each power of two is split into 32
 * buckets, and a quantile is reported as its bucket's midpoint, so it is
 * within be_histogram_relative_error() (1/64, about 1.6 %) of the exact
 * sample quantile. Memory is fixed (about 15 KiB) whatever is recorded.
 * Recording is lock-free (relaxed atomics), so many threads may record into
 * one histogram while another reads quantiles.
 */
#ifndef BACKEND_HISTOGRAM_H
#define BACKEND_HISTOGRAM_H

#include <backend/common.h>

BE_BEGIN_DECLS

/** A histogram of non-negative values (opaque). */
typedef struct be_histogram be_histogram;

/**
 * Make a new, empty histogram. Thread-safety: safe.
 *
 * @param out  receives the histogram, the caller's (be_histogram_free());
 *             not NULL.
 * @param err  receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (out NULL) or BE_E_NOMEM.
 */
BE_API int be_histogram_new(be_histogram **out, be_error **err);

/**
 * Release a histogram. No thread may be using it.
 *
 * @param h  the histogram, or NULL (a no-op).
 */
BE_API void be_histogram_free(be_histogram *h);

/**
 * Record one value. Thread-safety: safe, lock-free.
 *
 * @param h      the histogram; NULL is a no-op.
 * @param value  the value (libbackend records nanoseconds); negative values
 *               count as 0.
 */
BE_API void be_histogram_record(be_histogram *h, int64_t value);

/**
 * Number of values recorded. Thread-safety: safe.
 *
 * @param h  the histogram, or NULL.
 * @return the count; 0 for NULL.
 */
BE_API int64_t be_histogram_count(const be_histogram *h);

/**
 * The q-quantile of the recorded values: the value of rank
 * ceil(q * count) (rank 1 for q = 0), within the relative error.
 * Thread-safety: safe; values recorded concurrently may or may not be
 * counted.
 *
 * @param h  the histogram, or NULL.
 * @param q  the quantile, 0 <= q <= 1 (0.99 for p99); values outside
 *           [0, 1] are clamped, NaN counts as 0.
 * @return the quantile; 0 when the histogram is empty or h is NULL.
 */
BE_API int64_t be_histogram_quantile(const be_histogram *h, double q);

/**
 * Smallest recorded value, exact. Thread-safety: safe.
 *
 * @param h  the histogram, or NULL.
 * @return the minimum; 0 when empty or h is NULL.
 */
BE_API int64_t be_histogram_min(const be_histogram *h);
/**
 * Largest recorded value, exact. Thread-safety: safe.
 *
 * @param h  the histogram, or NULL.
 * @return the maximum; 0 when empty or h is NULL.
 */
BE_API int64_t be_histogram_max(const be_histogram *h);

/**
 * Arithmetic mean of the recorded values, exact up to double rounding.
 * Thread-safety: safe.
 *
 * @param h  the histogram, or NULL.
 * @return the mean; 0.0 when empty or h is NULL.
 */
BE_API double be_histogram_mean(const be_histogram *h);

/**
 * Add every value recorded in src to dst. Thread-safety: safe against
 * concurrent recorders of either histogram.
 *
 * @param dst  the histogram that receives the values; not NULL.
 * @param src  the histogram whose values are added, unchanged; not NULL.
 * @param err  receives the error on failure; may be NULL.
 * @return BE_OK, or BE_E_MISUSE (dst or src NULL).
 */
BE_API int be_histogram_merge(be_histogram *dst, const be_histogram *src, be_error **err);

/**
 * Forget all values. Not atomic against concurrent recorders.
 *
 * @param h  the histogram; NULL is a no-op.
 */
BE_API void be_histogram_reset(be_histogram *h);

/**
 * The stated bound on a quantile's relative error. Thread-safety: safe.
 *
 * @return 1/64 (0.015625).
 */
BE_API double be_histogram_relative_error(void);

/**
 * Bytes one histogram takes (fixed, whatever it holds), for memory
 * accounting. Thread-safety: safe.
 *
 * @return the size in bytes.
 */
BE_API int64_t be_histogram_memory_bytes(void);

/**
 * Values recorded that are at most `value`, counted by bucket: a bucket
 * counts when its reported value (its midpoint, as for quantiles) is at
 * most `value`, so the count is exact for bounds between buckets and
 * within the stated relative error otherwise. Cumulative counts for
 * Prometheus `le` buckets. Thread-safety: safe.
 *
 * @param h      the histogram, or NULL.
 * @param value  the upper bound (inclusive).
 * @return the count; 0 for NULL.
 */
BE_API int64_t be_histogram_count_le(const be_histogram *h, int64_t value);

/**
 * Sum of the recorded values, saturated at INT64_MAX. Thread-safety: safe.
 *
 * @param h  the histogram, or NULL.
 * @return the sum; 0 for NULL or when empty.
 */
BE_API int64_t be_histogram_sum(const be_histogram *h);

BE_END_DECLS

#endif /* BACKEND_HISTOGRAM_H */
