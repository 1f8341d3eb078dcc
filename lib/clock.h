/* SPDX-License-Identifier: MIT */
#ifndef BE_LIB_CLOCK_H
#define BE_LIB_CLOCK_H

#include <backend/clock.h>

#include <stdatomic.h>
#include <time.h>

/* The clock object; private to the library (clock.c builds them), defined
 * here only so hot paths can read the system clock inline. */
enum { BE__CLOCK_KIND_SYSTEM,
       BE__CLOCK_KIND_FAKE,
       BE__CLOCK_KIND_CUSTOM };

struct be_clock {
  int kind;
  _Atomic int64_t mono_ns; /* fake clock state */
  _Atomic int64_t wall_ns;
  be_clock_fn mono_fn; /* custom clock functions */
  be_clock_fn wall_fn;
  void *user_data;
};

/* The operating system's clock id, in nanoseconds. */
static inline int64_t be__clock_read_os(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (int64_t)ts.tv_sec * BE_NS_PER_SEC + ts.tv_nsec;
}

/* Monotonic time for hot paths that can live with a few milliseconds of
 * resolution (cache TTLs): CLOCK_MONOTONIC_COARSE, read from the vDSO with
 * no system call, for the system clock; the exact time for other clocks.
 * Inline so a cache hit pays no call into clock.c for the system clock. */
static inline int64_t be__clock_coarse_ns(const be_clock *clock) {
  if (clock == NULL || clock->kind == BE__CLOCK_KIND_SYSTEM)
    return be__clock_read_os(CLOCK_MONOTONIC_COARSE);
  return be_clock_now_ns(clock);
}

/* be_clock_now_ns(clock), with the system clock read inline: statement
 * timing reads it twice per run, and a call into clock.c (through the PLT:
 * be_clock_now_ns is exported) costs more than the vDSO read itself. */
static inline int64_t be__clock_now_ns(const be_clock *clock) {
  if (clock == NULL || clock->kind == BE__CLOCK_KIND_SYSTEM) return be__clock_read_os(CLOCK_MONOTONIC);
  return be_clock_now_ns(clock);
}

/* Milliseconds (configured durations) to nanoseconds (what clocks read),
 * saturating at INT64_MAX / INT64_MIN instead of overflowing. */
static inline int64_t be__ms_to_ns(int64_t ms) {
  if (ms > INT64_MAX / BE_NS_PER_MS) return INT64_MAX;
  if (ms < INT64_MIN / BE_NS_PER_MS) return INT64_MIN;
  return ms * BE_NS_PER_MS;
}

/* 1 when clock is the system clock (NULL counts as the system clock). */
int be__clock_is_system(const be_clock *clock);

/* The resolution of be__clock_coarse_ns() for the system clock (the
 * kernel's tick: 1 to 10 ms on Linux), read once per process. */
int64_t be__clock_coarse_tick_ns(void);

/* Absolute CLOCK_MONOTONIC timespec delta_ns from now, for pthread timed
 * waits on condition variables made with be__cond_init_monotonic(), so a
 * wall-clock jump never stretches or cuts a wait. */
struct timespec;
void be__clock_deadline_after(struct timespec *ts, int64_t delta_ns);

#include <pthread.h>
int be__cond_init_monotonic(pthread_cond_t *cond);

#endif
