/* SPDX-License-Identifier: MIT */
/* The waiting side of be__spinlock: spin on a plain load (the line stays
 * shared, so the holder's store is not slowed), then give the core away.
 * Spin first because a holder on another core usually finishes within a
 * few hundred cycles; yield next because on an oversubscribed machine the
 * holder may be waiting for our core; nap last so a waiter behind a long
 * section (a shard's table growing) or a preempted holder burns no CPU and
 * a waiter with a real-time priority cannot starve the holder. */
#include "spinlock.h"

#include <sched.h>
#include <time.h>

enum {
  SPINS = 128,         /* pause-loop rounds before yielding */
  YIELDS = 8,          /* sched_yield rounds before napping */
  NAP_MIN_NS = 1000,   /* first nap */
  NAP_MAX_NS = 256000, /* the backoff stops doubling here */
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield" ::
                         : "memory");
#endif
}

static int looks_held(be__spinlock *l) {
  return atomic_load_explicit(&l->held, memory_order_relaxed) != 0;
}

void be__spinlock_wait(be__spinlock *l) {
  for (int i = 0; i < SPINS; i++) {
    if (!looks_held(l)) return;
    cpu_relax();
  }
  for (int i = 0; i < YIELDS; i++) {
    if (!looks_held(l)) return;
    sched_yield();
  }
  long nap = NAP_MIN_NS;
  while (looks_held(l)) {
    struct timespec ts = {0, nap};
    nanosleep(&ts, NULL);
    if (nap < NAP_MAX_NS) nap *= 2;
  }
}
