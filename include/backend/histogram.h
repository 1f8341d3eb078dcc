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

typedef struct be_histogram be_histogram;

/** New empty histogram; caller owns *out. Errors: BE_E_MISUSE, BE_E_NOMEM. */
BE_API int be_histogram_new(be_histogram **out, be_error **err);

/** Release a histogram; NULL is a no-op. */
BE_API void be_histogram_free(be_histogram *h);

/**
 * Record one value; negative values count as 0. NULL is a no-op.
 * Thread-safety: safe, lock-free.
 */
BE_API void be_histogram_record(be_histogram *h, int64_t value);

/** Number of values recorded (0 for NULL). Thread-safety: safe. */
BE_API int64_t be_histogram_count(const be_histogram *h);

/**
 * The q-quantile (0 <= q <= 1) of the recorded values: the value of rank
 * ceil(q * count) (rank 1 for q = 0), within the relative error; 0 when
 * empty or h is NULL; q outside [0, 1] is clamped. Thread-safety: safe;
 * values recorded concurrently may or may not be counted.
 */
BE_API int64_t be_histogram_quantile(const be_histogram *h, double q);

/** Smallest and largest recorded value, exact (0 when empty). */
BE_API int64_t be_histogram_min(const be_histogram *h);
BE_API int64_t be_histogram_max(const be_histogram *h);

/** Arithmetic mean of the recorded values, exact up to double rounding. */
BE_API double be_histogram_mean(const be_histogram *h);

/** Add every value recorded in src to dst. Errors: BE_E_MISUSE (NULL). */
BE_API int be_histogram_merge(be_histogram *dst, const be_histogram *src, be_error **err);

/** Forget all values. Not atomic against concurrent recorders. */
BE_API void be_histogram_reset(be_histogram *h);

/** The stated bound on a quantile's relative error: 1/64. */
BE_API double be_histogram_relative_error(void);

BE_END_DECLS

#endif /* BACKEND_HISTOGRAM_H */
