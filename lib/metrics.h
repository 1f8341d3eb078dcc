/* SPDX-License-Identifier: MIT */
/* Internal: the app's per-operation recorder (backend/metrics.h). The
 * resources own one (be__app_res.metrics, NULL when disabled); each public
 * service function wraps its body in BE__OP_RECORD. */
#ifndef BE_LIB_METRICS_H
#define BE_LIB_METRICS_H

#include <backend/clock.h>
#include <backend/histogram.h>
#include <backend/metrics.h>

typedef struct be__metrics be__metrics;

int be__metrics_new(be__metrics **out, const be_clock *clock, be_error **err);
void be__metrics_free(be__metrics *m);

/* One call being recorded (BE__OP_RECORD's state). */
typedef struct be__op_timer {
  void *slot;      /* the thread's counters */
  be_histogram *h; /* where its duration goes; NULL: not timed */
  int64_t t0;
} be__op_timer;

/* Before a call of op: the thread's counters, and whether this call is
 * timed (then its histogram and the start time). Nothing to record when
 * m is NULL (disabled). Never fails: everything was allocated up front. */
void be__metrics_begin(be__metrics *m, int32_t op, be__op_timer *t);
/* The end of that call, with result rc (no-op for NULL m). */
void be__metrics_end(be__metrics *m, const be__op_timer *t, int32_t op, int rc);

/* Exact counts of a range of operations. */
typedef struct be__op_counts {
  int64_t calls, errors, server_errors;
} be__op_counts;

/* Add ops [first, last) of every stripe into dst (the timed calls), and
 * their exact counts to *counts. */
void be__metrics_merge(const be__metrics *m, int32_t first, int32_t last, be_histogram *dst,
                       be__op_counts *counts);
/* A new empty histogram of the recorder's layout, for be__metrics_merge()
 * (be_histogram_free()); BE_E_NOMEM. */
int be__metrics_scratch(be_histogram **out);
/* Total time of `calls` calls estimated from the timed ones in h. */
int64_t be__metrics_estimate_total(const be_histogram *h, int64_t calls);
/* Bytes allocated: the recorder and its histograms. */
int64_t be__metrics_memory_bytes(const be__metrics *m);
void be__metrics_reset(be__metrics *m);

/* Run `call` (an int expression) as operation op of app, recording it,
 * and return its result: a service function's whole body. */
#define BE__OP_RECORD(app, op, call)                     \
  do {                                                   \
    be__metrics *m_ = (app) ? (app)->res.metrics : NULL; \
    be__op_timer t_;                                     \
    be__metrics_begin(m_, (op), &t_);                    \
    int rc_ = (call);                                    \
    be__metrics_end(m_, &t_, (op), rc_);                 \
    return rc_;                                          \
  } while (0)

#endif
