/* SPDX-License-Identifier: MIT */
#ifndef BE_LIB_CLOCK_H
#define BE_LIB_CLOCK_H

#include <backend/clock.h>

/* Monotonic time for hot paths that can live with a few milliseconds of
 * resolution (cache TTLs): CLOCK_MONOTONIC_COARSE, read from the vDSO with
 * no system call, for the system clock; the exact time for other clocks. */
int64_t be__clock_coarse_ns(const be_clock *clock);

/* 1 when clock is the system clock (NULL counts as the system clock). */
int be__clock_is_system(const be_clock *clock);

/* Absolute CLOCK_MONOTONIC timespec delta_ns from now, for pthread timed
 * waits on condition variables made with be__cond_init_monotonic(), so a
 * wall-clock jump never stretches or cuts a wait. */
struct timespec;
void be__clock_deadline_after(struct timespec *ts, int64_t delta_ns);

#include <pthread.h>
int be__cond_init_monotonic(pthread_cond_t *cond);

#endif
