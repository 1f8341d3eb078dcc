/* SPDX-License-Identifier: MIT */
/* Internal: the app's per-operation recorder (backend/metrics.h). The
 * resources own one (be__app_res.metrics, NULL when disabled); each public
 * service function wraps its body in BE__OP_RECORD. */
#ifndef BE_LIB_METRICS_H
#define BE_LIB_METRICS_H

#include <backend/clock.h>
#include <backend/histogram.h>
#include <backend/metrics.h>

#include <pthread.h>
#include <stdatomic.h>

/* Which calls are timed, by the duration of the thread's last timed call
 * of the operation: 20 us or more, every call (timing costs under 1 % of
 * such a call); 1 us or more, one in 16; less, one in 1024 (timing, ~170
 * ns on a small VM, would otherwise cost more than the call). */
#ifndef BE__METRICS_ALWAYS_NS /* a profiling build sets it higher: valgrind's calls all take 20 us */
#  define BE__METRICS_ALWAYS_NS 20000
#endif
#define BE__METRICS_OFTEN_NS 1000
#define BE__METRICS_OFTEN_SHIFT 4 /* one in 16 */
#define BE__METRICS_RARE_SHIFT 10 /* one in 1024 */

/* A thread's counters: one writer (its thread) except the shared slot 0,
 * which threads past the slot limit share with atomic additions. */
typedef struct be__tslot {
  pthread_t owner;
  int shared;
  _Atomic uint64_t calls[BE_OP_COUNT], errors[BE_OP_COUNT], server_errors[BE_OP_COUNT];
  _Atomic uint64_t timed[BE_OP_COUNT]; /* calls actually timed */
  _Atomic uint8_t shift[BE_OP_COUNT];  /* time one call in 2^shift (0 at first: every call) */
} be__tslot;

typedef struct be__metrics {
  uint64_t id; /* unique per recorder: the thread-local cache's key */
  const be_clock *clock;
  pthread_mutex_t lock; /* slot registration */
  _Atomic int nslots;   /* slots taken; slot 0 is the shared one */
  be__tslot *slots;     /* BE__METRICS_MAX_SLOTS */
  unsigned char *hists; /* BE_METRICS_STRIPES * BE_OP_COUNT compact histograms */
  size_t hist_size;
} be__metrics;

/* The calling thread's slot, cached per thread for one recorder. */
typedef struct be__metrics_tl {
  uint64_t id; /* the recorder `slot` belongs to; 0 = none */
  be__tslot *slot;
} be__metrics_tl;
/* initial-exec: no __tls_get_addr call on the hot path (as lib/ebr.c) */
extern __thread be__metrics_tl be__metrics_tls __attribute__((tls_model("initial-exec")));

int be__metrics_new(be__metrics **out, const be_clock *clock, be_error **err);
void be__metrics_free(be__metrics *m);

/* One call being recorded (BE__OP_RECORD's state). */
typedef struct be__op_timer {
  be__tslot *slot; /* the thread's counters */
  be_histogram *h; /* where its duration goes; NULL: not timed */
  int64_t t0;
  uint32_t weight; /* the calls this timed one stands for: its sampling interval */
} be__op_timer;

/* The slow paths of the two below (metrics.c): finding the thread's slot,
 * starting a timed call, and finishing one that was timed or failed. */
be__tslot *be__metrics_find_slot(be__metrics *m);
void be__metrics_start(be__metrics *m, int32_t op, be__op_timer *t);
void be__metrics_finish(be__metrics *m, const be__op_timer *t, int32_t op, int rc);

/* Before a call of op: the thread's counters, and whether this call is
 * timed (then its histogram and the start time). Nothing to record when
 * m is NULL (disabled). Never fails: everything was allocated up front.
 * Inline: an untimed call costs a thread-local read and two loads. */
static inline void be__metrics_begin(be__metrics *m, int32_t op, be__op_timer *t) {
  t->h = NULL;
  t->slot = NULL;
  if (m == NULL) return;
  be__tslot *s = be__metrics_tls.id == m->id ? be__metrics_tls.slot : be__metrics_find_slot(m);
  t->slot = s;
  uint64_t n = atomic_load_explicit(&s->calls[op], memory_order_relaxed);
  uint32_t weight = (uint32_t)1 << atomic_load_explicit(&s->shift[op], memory_order_relaxed);
  if ((n & (weight - 1)) == 0) {
    t->weight = weight;
    be__metrics_start(m, op, t);
  }
}

/* The end of that call, with result rc (no-op for NULL m). */
static inline void be__metrics_end(be__metrics *m, const be__op_timer *t, int32_t op, int rc) {
  if (m == NULL) return;
  be__tslot *s = t->slot;
  _Atomic uint64_t *c = &s->calls[op];
  if (s->shared) atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
  else atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1, memory_order_relaxed);
  if (rc < 0 || t->h != NULL) be__metrics_finish(m, t, op, rc);
}

/* Exact counts of a range of operations. */
typedef struct be__op_counts {
  int64_t calls, errors, server_errors, timed;
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
