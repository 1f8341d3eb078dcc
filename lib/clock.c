/* SPDX-License-Identifier: MIT */
#include <backend/clock.h>
#include <backend/error.h>

#include <stdatomic.h>
#include <time.h>

#include "alloc.h"
#include "clock.h"
#include "error.h"

static be_clock system_clock = {BE__CLOCK_KIND_SYSTEM, 0, 0, NULL, NULL, NULL};

be_clock *be_clock_system(void) { return &system_clock; }

int be__clock_is_system(const be_clock *c) { return c == NULL || c->kind == BE__CLOCK_KIND_SYSTEM; }

int64_t be__clock_coarse_tick_ns(void) {
  static _Atomic int64_t tick; /* 0: not read yet (racing readers agree) */
  int64_t t = atomic_load_explicit(&tick, memory_order_relaxed);
  if (t == 0) {
    struct timespec r;
    t = clock_getres(CLOCK_MONOTONIC_COARSE, &r) == 0 ? (int64_t)r.tv_sec * BE_NS_PER_SEC + r.tv_nsec : 0;
    if (t <= 0) t = 10 * BE_NS_PER_MS; /* unknown: assume the coarsest tick */
    atomic_store_explicit(&tick, t, memory_order_relaxed);
  }
  return t;
}

int be_clock_fake_new(be_clock **out, int64_t mono_start_ns, int64_t wall_start_ns,
                      be_error **err) {
  if (out == NULL) return be__error_set(err, BE_E_MISUSE, "be_clock_fake_new: out is NULL");
  be_clock *c = be__calloc(1, sizeof *c);
  if (c == NULL) return be__error_oom(err);
  c->kind = BE__CLOCK_KIND_FAKE;
  atomic_init(&c->mono_ns, mono_start_ns);
  atomic_init(&c->wall_ns, wall_start_ns);
  *out = c;
  return BE_OK;
}

int be_clock_custom_new(be_clock **out, be_clock_fn mono, be_clock_fn wall, void *ud,
                        be_error **err) {
  if (out == NULL) return be__error_set(err, BE_E_MISUSE, "be_clock_custom_new: out is NULL");
  be_clock *c = be__calloc(1, sizeof *c);
  if (c == NULL) return be__error_oom(err);
  c->kind = BE__CLOCK_KIND_CUSTOM;
  c->mono_fn = mono;
  c->wall_fn = wall;
  c->user_data = ud;
  *out = c;
  return BE_OK;
}

/* BE_OK for a fake clock, else BE_E_MISUSE naming the function. */
static int check_fake(const be_clock *c, const char *fn, be_error **err) {
  if (c == NULL) return be__error_set(err, BE_E_MISUSE, "%s: clock is NULL", fn);
  if (c->kind != BE__CLOCK_KIND_FAKE)
    return be__error_set(err, BE_E_MISUSE, "%s: not a fake clock", fn);
  return BE_OK;
}

int be_clock_advance(be_clock *c, int64_t delta_ns, be_error **err) {
  int rc = check_fake(c, "be_clock_advance", err);
  if (rc != BE_OK) return rc;
  if (delta_ns < 0)
    return be__error_set(err, BE_E_MISUSE, "be_clock_advance: delta_ns is negative");
  atomic_fetch_add(&c->mono_ns, delta_ns);
  atomic_fetch_add(&c->wall_ns, delta_ns);
  return BE_OK;
}

int be_clock_set_wall(be_clock *c, int64_t wall_ns, be_error **err) {
  int rc = check_fake(c, "be_clock_set_wall", err);
  if (rc != BE_OK) return rc;
  atomic_store(&c->wall_ns, wall_ns);
  return BE_OK;
}

/* One reading of c: a fake clock's stored time (fake), a custom clock's
 * function (fn, when set), else the system clock id. */
static inline int64_t reading(const be_clock *c, clockid_t id, _Atomic int64_t *fake,
                              be_clock_fn fn) {
  if (c == NULL) return be__clock_read_os(id);
  switch (c->kind) {
    case BE__CLOCK_KIND_FAKE: return atomic_load(fake);
    case BE__CLOCK_KIND_CUSTOM: return fn ? fn(c->user_data) : be__clock_read_os(id);
    default: return be__clock_read_os(id);
  }
}

int64_t be_clock_now_ns(const be_clock *c) {
  be_clock *m = (be_clock *)c; /* reading a fake clock's atomic is no change */
  return reading(c, CLOCK_MONOTONIC, m ? &m->mono_ns : NULL, m ? m->mono_fn : NULL);
}

int64_t be_clock_wall_ns(const be_clock *c) {
  be_clock *m = (be_clock *)c;
  return reading(c, CLOCK_REALTIME, m ? &m->wall_ns : NULL, m ? m->wall_fn : NULL);
}

void be__clock_deadline_after(struct timespec *ts, int64_t delta_ns) {
  int64_t now = be__clock_read_os(CLOCK_MONOTONIC);
  /* saturate: a huge timeout (INT64_MAX from a saturated ms->ns) must mean
   * "very long", not wrap into the past and time out at once */
  int64_t t = delta_ns <= 0 ? now : delta_ns > INT64_MAX - now ? INT64_MAX
                                                               : now + delta_ns;
  ts->tv_sec = (time_t)(t / BE_NS_PER_SEC);
  ts->tv_nsec = (long)(t % BE_NS_PER_SEC);
}

void be_clock_free(be_clock *c) {
  if (c != NULL && c->kind != BE__CLOCK_KIND_SYSTEM) be__free(c);
}

int be__cond_init_monotonic(pthread_cond_t *cond) {
  pthread_condattr_t attr;
  if (pthread_condattr_init(&attr) != 0) return -1;
  int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  if (rc == 0) rc = pthread_cond_init(cond, &attr);
  pthread_condattr_destroy(&attr);
  return rc == 0 ? 0 : -1;
}
