/* SPDX-License-Identifier: MIT */
/* Epoch-based reclamation for readers that take no lock (the cache's
 * optimistic hit path). A reader brackets its accesses with
 * be__ebr_enter()/be__ebr_exit(), which write only the calling thread's
 * own slot: no atomic read-modify-write and no shared cache line, so
 * readers on different cores never slow each other down. A writer that
 * unlinks an object takes be__ebr_retire_epoch() afterwards and frees the
 * object once be__ebr_safe() says no reader that could have seen it is
 * still inside.
 *
 * The reader's store to its slot must be visible before its first load
 * of shared data. Where the kernel offers membarrier(PRIVATE_EXPEDITED),
 * be__ebr_safe() issues it, which makes every running thread of the
 * process execute a full barrier, and readers need only a compiler
 * barrier (the liburcu "memb" scheme); elsewhere readers pay a fence.
 *
 * Slots are process-wide, one per thread that ever read, reused after the
 * thread exits, and never freed (a few cache lines per thread). */
#ifndef BE_LIB_EBR_H
#define BE_LIB_EBR_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct be__ebr_reader {
  _Alignas(64) _Atomic uint64_t active; /* 0 outside, else the epoch read at enter */
  uint32_t index;                       /* dense, unique among live threads */
  int in_use;                           /* guarded by the registry lock */
  struct be__ebr_reader *next;          /* registry list; never unlinked */
} be__ebr_reader;

extern _Atomic uint64_t be__ebr_epoch;
extern int be__ebr_reader_fence; /* 1 when membarrier is unavailable */
extern __thread be__ebr_reader *be__ebr_self_tls __attribute__((tls_model("initial-exec")));

/* This thread's slot, registered on first use; NULL when that fails (out
 * of memory): the caller takes its locked path instead. */
be__ebr_reader *be__ebr_register(void);

static inline be__ebr_reader *be__ebr_self(void) {
  be__ebr_reader *r = be__ebr_self_tls;
  return r ? r : be__ebr_register();
}

static inline void be__ebr_enter(be__ebr_reader *r) {
  uint64_t e = atomic_load_explicit(&be__ebr_epoch, memory_order_acquire);
  atomic_store_explicit(&r->active, e, memory_order_relaxed);
  if (be__ebr_reader_fence)
    atomic_thread_fence(memory_order_seq_cst);
  else
    atomic_signal_fence(memory_order_seq_cst);
}

static inline void be__ebr_exit(be__ebr_reader *r) {
  atomic_store_explicit(&r->active, 0, memory_order_release);
}

extern _Atomic uint32_t be__ebr_live; /* reader slots in use */

/* 1 when no thread but the caller holds a reader slot: nobody else can
 * be inside a read section or enter one and still find what the caller
 * unlinked before this call, which may then be freed at once (a
 * single-threaded host's removals skip the grace period). The common
 * answer, 0 with other readers, costs one load. */
static inline int be__ebr_sole_reader(void) {
  uint32_t n = atomic_load_explicit(&be__ebr_live, memory_order_relaxed);
  if (n > 1 || (n == 1 && be__ebr_self_tls == NULL)) return 0;
  /* A read-modify-write, like a registration's: the two are ordered. If
   * this one comes first, the registration's acquire sees the unlinks
   * before it, and so do the new reader's loads; else this reads its
   * count. A slot given back (a release) was read in before. (A fence and
   * a load cost a miss into a full cache 0.4 % of its time here.) */
  n = atomic_fetch_add_explicit(&be__ebr_live, 0, memory_order_acq_rel);
  return n == 0 || (n == 1 && be__ebr_self_tls != NULL);
}

/* Tests only, before any reader registers: behave as if membarrier were
 * missing, so the fence-per-read mode runs too. */
void be__ebr_test_force_fences(void);

/* Call after unlinking objects: they may be freed once be__ebr_safe() of
 * the returned epoch is 1. */
uint64_t be__ebr_retire_epoch(void);

/* The smallest epoch a reader is inside now (UINT64_MAX when none is);
 * objects retired at epochs <= that value are safe to free. */
uint64_t be__ebr_oldest_reader(void);

#endif
