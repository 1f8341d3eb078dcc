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

/* Before a call of op: its histogram on this thread's stripe (made on
 * first use) in *out_h, and the start time in *out_t0. BE_E_NOMEM when
 * the histogram cannot be made (the call is then not run: recording can
 * never fail silently); BE_OK with *out_h NULL when m is NULL (disabled). */
int be__metrics_begin(be__metrics *m, int32_t op, be_histogram **out_h, int64_t *out_t0);
/* The end of that call, with result rc (no-op for NULL m). */
void be__metrics_end(be__metrics *m, be_histogram *h, int32_t op, int64_t t0, int rc);

/* Add ops [first, last) of every stripe into dst, and their error counts
 * to *errors and *server_errors. */
void be__metrics_merge(const be__metrics *m, int32_t first, int32_t last, be_histogram *dst,
                       int64_t *errors, int64_t *server_errors);
/* Bytes allocated: the recorder and its histograms. */
int64_t be__metrics_memory_bytes(const be__metrics *m);
void be__metrics_reset(be__metrics *m);

/* Run `call` (an int expression) as operation op of app, recording it,
 * and return its result: a service function's whole body. err is the
 * function's be_error **, for BE_E_NOMEM. */
#define BE__OP_RECORD(app, op, err, call)                                           \
  do {                                                                              \
    be__metrics *m_ = (app) ? (app)->res.metrics : NULL;                            \
    be_histogram *h_ = NULL;                                                        \
    int64_t t0_ = 0;                                                                \
    if (be__metrics_begin(m_, (op), &h_, &t0_) != BE_OK) return be__error_oom(err); \
    int rc_ = (call);                                                               \
    be__metrics_end(m_, h_, (op), t0_, rc_);                                        \
    return rc_;                                                                     \
  } while (0)

#endif
