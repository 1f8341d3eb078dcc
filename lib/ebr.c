/* SPDX-License-Identifier: MIT */
/* The reader registry and grace-period check behind lib/ebr.h. */
#include "ebr.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__linux__)
#  include <linux/membarrier.h>
#  include <sys/syscall.h>
#endif

_Atomic uint64_t be__ebr_epoch = 1;
int be__ebr_reader_fence = 1;
__thread be__ebr_reader *be__ebr_self_tls __attribute__((tls_model("initial-exec")));

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static be__ebr_reader *_Atomic registry; /* pushed at the head, never unlinked */
static uint32_t registry_count;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;
static int exit_key_ok;
static int use_membarrier;

#if defined(__linux__) && defined(__NR_membarrier)
static int membarrier(int cmd) { return (int)syscall(__NR_membarrier, cmd, 0, 0); }
#endif

static __thread int slot_released; /* this thread is exiting: no slot any more */

_Atomic uint32_t be__ebr_live;

static void give_back(be__ebr_reader *r) {
  pthread_mutex_lock(&registry_mu);
  r->in_use = 0;
  atomic_fetch_sub_explicit(&be__ebr_live, 1, memory_order_release); /* its reads are over */
  pthread_mutex_unlock(&registry_mu);
}

/* Runs at thread exit (the thread is outside any read section). Another
 * thread may take the slot at once, but a later key destructor of this
 * thread may still read a cache: it must not do so on the slot (one
 * reader's exit would end the other's section, and both would write one
 * hit stripe), nor register again (a slot taken after the last destructor
 * round is never given back), so it gets no slot: the locked path. */
static void release_slot(void *p) {
  be__ebr_self_tls = NULL;
  slot_released = 1;
  give_back(p);
}

/* fork: hold the registry across it, and in the child, where only the
 * forking thread lives, free every other thread's slot (one caught inside
 * a read section would otherwise block reclamation there forever). */
static void fork_prepare(void) { pthread_mutex_lock(&registry_mu); }
static void fork_parent(void) { pthread_mutex_unlock(&registry_mu); }
static void fork_child(void) {
  for (be__ebr_reader *r = atomic_load_explicit(&registry, memory_order_relaxed); r; r = r->next) {
    if (r == be__ebr_self_tls) continue;
    atomic_store_explicit(&r->active, 0, memory_order_relaxed);
    r->in_use = 0;
  }
  atomic_store_explicit(&be__ebr_live, be__ebr_self_tls ? 1 : 0, memory_order_relaxed);
  pthread_mutex_unlock(&registry_mu);
}

static int force_fences; /* be__ebr_test_force_fences() */

void be__ebr_test_force_fences(void) { force_fences = 1; }

static void init(void) {
  exit_key_ok = pthread_key_create(&exit_key, release_slot) == 0 &&
                pthread_atfork(fork_prepare, fork_parent, fork_child) == 0;
#if defined(__linux__) && defined(__NR_membarrier)
  int cmds = force_fences ? 0 : membarrier(MEMBARRIER_CMD_QUERY);
  if (cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
      membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0) {
    use_membarrier = 1;
    be__ebr_reader_fence = 0; /* no reader runs before its registration, which follows this */
  }
#endif
}

be__ebr_reader *be__ebr_register(void) {
  pthread_once(&init_once, init);
  if (!exit_key_ok || slot_released) return NULL; /* a slot could never be given back */
  pthread_mutex_lock(&registry_mu);
  /* The free slot with the lowest index (the list is highest first), so
   * an index stays below the number of live threads: after a burst of
   * threads, later ones do not get indices past the cache's hit stripes. */
  be__ebr_reader *r = NULL;
  for (be__ebr_reader *q = atomic_load_explicit(&registry, memory_order_relaxed); q; q = q->next)
    if (!q->in_use) r = q;
  if (r == NULL) {
    /* Plain libc, not the allocator hooks: slots outlive every cache and
     * are shared by all of them. Aligned: one cache line per slot. */
    r = aligned_alloc(_Alignof(be__ebr_reader), sizeof *r);
    if (r != NULL) memset(r, 0, sizeof *r);
    if (r == NULL) {
      pthread_mutex_unlock(&registry_mu);
      return NULL;
    }
    r->index = registry_count++;
    r->next = atomic_load_explicit(&registry, memory_order_relaxed);
    atomic_store_explicit(&registry, r, memory_order_release);
  }
  r->in_use = 1;
  /* acq_rel, for be__ebr_sole_reader(): either a writer's check reads
   * this count, or this thread's loads of shared data see what that
   * writer unlinked before its check */
  atomic_fetch_add_explicit(&be__ebr_live, 1, memory_order_acq_rel);
  pthread_mutex_unlock(&registry_mu);
  if (pthread_setspecific(exit_key, r) != 0) {
    give_back(r);
    return NULL;
  }
  be__ebr_self_tls = r;
  return r;
}

uint64_t be__ebr_retire_epoch(void) {
  return atomic_fetch_add_explicit(&be__ebr_epoch, 1, memory_order_seq_cst) + 1;
}

uint64_t be__ebr_oldest_reader(void) {
  /* Readers may start in the membarrier mode only after init chose it; a
   * scan must see that choice too (and not skip the barrier it relies on). */
  pthread_once(&init_once, init);
#if defined(__linux__) && defined(__NR_membarrier)
  /* Every running reader now executes a barrier: a slot store made before
   * its loads of shared data is visible to the scan below. */
  if (use_membarrier && membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0) return 0;
#endif
  atomic_thread_fence(memory_order_seq_cst);
  uint64_t oldest = UINT64_MAX;
  for (be__ebr_reader *r = atomic_load_explicit(&registry, memory_order_acquire); r; r = r->next) {
    uint64_t a = atomic_load_explicit(&r->active, memory_order_acquire);
    if (a != 0 && a < oldest) oldest = a;
  }
  return oldest;
}
