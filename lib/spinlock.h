/* SPDX-License-Identifier: MIT */
/* A lock for critical sections of tens of nanoseconds (the cache's
 * shards). Unlocking is one release store, where a sleeping mutex needs a
 * second atomic read-modify-write to learn whether to wake anyone: on the
 * cache's hit path that second full barrier was the largest single cost
 * (tests/bench/bench_cache, hot keys). The price is that waiters are never
 * woken: they spin briefly, then yield, then nap with a bounded backoff
 * (lib/spinlock.c), so a long critical section costs them latency, not a
 * lost wakeup. Not for sections that block or may run long. */
#ifndef BE_LIB_SPINLOCK_H
#define BE_LIB_SPINLOCK_H

#include <stdatomic.h>

typedef struct be__spinlock {
  _Atomic unsigned held;
} be__spinlock;

#define BE__SPINLOCK_INIT \
  { 0 }

/* The contended path: wait until the lock looks free, then try again. */
void be__spinlock_wait(be__spinlock *l);

static inline int be__spinlock_try(be__spinlock *l) {
  unsigned free_ = 0;
  return atomic_compare_exchange_strong_explicit(&l->held, &free_, 1u, memory_order_acquire,
                                                 memory_order_relaxed);
}

static inline void be__spinlock_lock(be__spinlock *l) {
  while (!be__spinlock_try(l)) be__spinlock_wait(l);
}

static inline void be__spinlock_unlock(be__spinlock *l) {
  atomic_store_explicit(&l->held, 0u, memory_order_release);
}

#endif
