/* SPDX-License-Identifier: MIT */
/* Reclamation: entries removed from a shard and tables replaced by a
 * larger (or cleared) one may still be in a lock-free reader's hands, so
 * they wait on the retired lists until no reader that was inside then is
 * left (ebr.h), and only then lose the table's reference (entries) or are
 * freed (tables). Burying a batch of removed entries also runs the
 * eviction callbacks, in removal order. */
#include <backend/cache.h>

#include <stdint.h>

#include "alloc.h"
#include "cache_internal.h"
#include "ebr.h"

typedef struct be_cache_entry entry;

/* Bytes retired and not yet freed, tables included, spares not
 * (retire_lock held). */
static uint64_t retired_only(const be_cache *c) { return c->retired_bytes - c->spare_bytes; }

/* The next pass waits for a batch beyond what is retired now (retire_lock
 * held). */
static void mark_left(be_cache *c) {
  c->left_count = c->retired_count;
  c->left_bytes = retired_only(c);
}

/* Queue the entries first..last (linked by next) whose table reference is
 * to be dropped. Takes the retire epoch after they were unlinked. Returns
 * 1 when they made a batch (and it ran a pass). */
static int retire_entries(be_cache *c, entry *first, entry *last) {
  uint32_t n = 0;
  uint64_t bytes = 0;
  be__spinlock_lock(&c->retire_lock);
  uint64_t epoch = be__ebr_retire_epoch();
  for (entry *e = first; e; e = e->next) {
    e->retired_epoch = epoch;
    n++;
    bytes += be__cache_entry_block(e);
  }
  if (c->retired_tail) c->retired_tail->next = first;
  else c->retired_head = first;
  c->retired_tail = last;
  c->retired_count += n;
  c->retired_bytes += bytes;
  int full = c->retired_count >= c->left_count + BE__CACHE_RECLAIM_BATCH ||
             retired_only(c) >= c->left_bytes + BE__CACHE_RECLAIM_BYTES;
  if (full) mark_left(c); /* this batch is ours: another thread retiring meanwhile does not pass too */
  be__spinlock_unlock(&c->retire_lock);
  if (full) be__cache_reclaim(c, 0);
  return full;
}

void be__cache_retire_table(be_cache *c, be__cache_table *t) {
  if (be__ebr_sole_reader()) { /* see be__cache_bury */
    be__free(t);
    return;
  }
  be__spinlock_lock(&c->retire_lock);
  t->retired_epoch = be__ebr_retire_epoch();
  t->retired_next = c->retired_tables;
  c->retired_tables = t;
  c->retired_bytes += be__cache_table_size(t->mask + 1);
  /* Old tables add up to the new one's size: free them at the next bury
   * rather than waiting for BE__CACHE_RECLAIM_BATCH entries. */
  atomic_store_explicit(&c->retry_pending, 1, memory_order_relaxed);
  atomic_store_explicit(&c->retry_skip, 0, memory_order_relaxed); /* try at the next bury */
  be__spinlock_unlock(&c->retire_lock);
}

/* ---- spares ---- */

static inline entry **spare_list(be_cache *c, size_t size) {
  return &c->spares[size % BE__CACHE_SPARE_LISTS];
}

entry *be__cache_spare_take(be_cache *c, size_t size) {
  if (atomic_load_explicit(&c->nspares, memory_order_relaxed) == 0) return NULL;
  entry *e = NULL;
  be__spinlock_lock(&c->retire_lock);
  int steps = BE__CACHE_SPARE_SCAN;
  for (entry **l = spare_list(c, size); *l && steps--; l = &(*l)->next) {
    if (be__cache_entry_block(*l) == size) {
      e = *l;
      *l = e->next;
      atomic_store_explicit(&c->nspares, atomic_load_explicit(&c->nspares, memory_order_relaxed) - 1,
                            memory_order_relaxed);
      c->retired_bytes -= size;
      c->spare_bytes -= size;
      break;
    }
  }
  be__spinlock_unlock(&c->retire_lock);
  return e;
}

/* Keep e (retire_lock held) as the newest spare of its list; 0 when
 * the spares are full (the caller frees e). */
static int spare_put_locked(be_cache *c, entry *e) {
  uint32_t n = atomic_load_explicit(&c->nspares, memory_order_relaxed);
  size_t size = be__cache_entry_block(e);
  if (n >= BE__CACHE_SPARES_MAX || c->spare_bytes + size > BE__CACHE_SPARE_BYTES) return 0;
  entry **l = spare_list(c, size);
  e->retired_epoch = c->spare_gen;
  e->next = *l;
  *l = e;
  atomic_store_explicit(&c->nspares, n + 1, memory_order_relaxed);
  c->retired_bytes += size;
  c->spare_bytes += size;
  return 1;
}

/* Free blocks linked by next. */
static void free_list(entry *e) {
  while (e) {
    entry *n = e->next;
    be__free(e);
    e = n;
  }
}

/* Unlink the spares stamped before keep_from onto *old (retire_lock
 * held). */
static void spares_unlink_locked(be_cache *c, uint64_t keep_from, entry **old) {
  if (atomic_load_explicit(&c->nspares, memory_order_relaxed) == 0) return;
  uint32_t gone = 0;
  for (size_t i = 0; i < BE__CACHE_SPARE_LISTS; i++) {
    for (entry **l = &c->spares[i]; *l;) {
      entry *e = *l;
      if (e->retired_epoch >= keep_from) {
        l = &e->next;
        continue;
      }
      *l = e->next;
      c->retired_bytes -= be__cache_entry_block(e);
      c->spare_bytes -= be__cache_entry_block(e);
      e->next = *old;
      *old = e;
      gone++;
    }
  }
  atomic_store_explicit(&c->nspares, atomic_load_explicit(&c->nspares, memory_order_relaxed) - gone,
                        memory_order_relaxed);
}

void be__cache_spares_drop(be_cache *c) {
  if (atomic_load_explicit(&c->nspares, memory_order_relaxed) == 0) return;
  entry *all = NULL;
  be__spinlock_lock(&c->retire_lock);
  spares_unlink_locked(c, UINT64_MAX, &all); /* every stamp is older */
  be__spinlock_unlock(&c->retire_lock);
  free_list(all);
}

/* A new generation of spares (retire_lock held): those kept before the
 * last one and not taken since are returned, to be freed. */
static entry *spares_age_locked(be_cache *c) {
  entry *stale = NULL;
  spares_unlink_locked(c, c->spare_gen++, &stale);
  return stale;
}

/* Drop the table's reference of each entry of dead (linked by next);
 * handles may keep one alive. A block nobody holds any more becomes a
 * spare when it is small enough, else it is freed. alone: released with
 * no grace period (be__cache_bury), so the spares age here every
 * BE__CACHE_RECLAIM_BATCH blocks instead of at a pass; returns 1 when
 * entries retired before (while another thread read) still wait, which
 * no batch will now come to free. */
static int release_dead(be_cache *c, entry *dead, int alone) {
  entry *keep = NULL;
  while (dead) {
    entry *n = dead->next;
    if (atomic_fetch_sub_explicit(&dead->refs, 1, memory_order_acq_rel) == 1) {
      if (be__cache_entry_block(dead) <= BE__CACHE_SPARE_BLOCK) {
        dead->next = keep;
        keep = dead;
      } else {
        be__free(dead);
      }
    }
    dead = n;
  }
  if (keep == NULL) return 0;
  entry *drop = NULL, *stale = NULL;
  uint32_t n = 0;
  be__spinlock_lock(&c->retire_lock);
  int waiting = alone && c->retired_head != NULL;
  for (; keep; n++) {
    entry *e = keep;
    keep = e->next;
    if (!spare_put_locked(c, e)) {
      e->next = drop;
      drop = e;
    }
  }
  if (alone && (c->alone_released += n) >= BE__CACHE_RECLAIM_BATCH) {
    c->alone_released = 0;
    stale = spares_age_locked(c);
  }
  be__spinlock_unlock(&c->retire_lock);
  free_list(drop);
  free_list(stale);
  return waiting;
}

/* ---- reclamation ---- */

void be__cache_reclaim(be_cache *c, int all) {
  be__spinlock_lock(&c->retire_lock);
  int pending = c->retired_head || c->retired_tables;
  be__spinlock_unlock(&c->retire_lock);
  if (!pending) return;
  uint64_t safe = UINT64_MAX, before = UINT64_MAX;
  if (!all) {
    /* Only what was retired before the scan began: a reader that enters
     * after the scan has epoch >= this and cannot see those. */
    before = atomic_load_explicit(&be__ebr_epoch, memory_order_acquire);
    uint64_t oldest = be__ebr_oldest_reader();
    safe = oldest < before ? oldest : before;
  }
  entry *dead = NULL;
  be__cache_table *dead_tables = NULL;
  be__spinlock_lock(&c->retire_lock);
  while (c->retired_head && c->retired_head->retired_epoch <= safe) {
    entry *e = c->retired_head;
    c->retired_head = e->next;
    c->retired_count--;
    c->retired_bytes -= be__cache_entry_block(e);
    e->next = dead;
    dead = e;
  }
  if (c->retired_head == NULL) c->retired_tail = NULL;
  for (be__cache_table **l = &c->retired_tables; *l;) {
    be__cache_table *t = *l;
    if (t->retired_epoch <= safe) {
      *l = t->retired_next;
      c->retired_bytes -= be__cache_table_size(t->mask + 1);
      t->retired_next = dead_tables;
      dead_tables = t;
    } else {
      l = &t->retired_next;
    }
  }
  /* Left behind by a reader (retired before the scan; the list is oldest
   * first) or a table: try again in a while, not only after another
   * batch, which may never come. Once nothing is, burying nothing stops
   * calling in here (and taking retire_lock) on every write. */
  int held = c->retired_tables || (c->retired_head && c->retired_head->retired_epoch <= before);
  atomic_store_explicit(&c->retry_pending, held, memory_order_relaxed);
  if (held) atomic_store_explicit(&c->retry_skip, BE__CACHE_RETRY_EVERY, memory_order_relaxed);
  mark_left(c);
  if (!all) c->reclaim_passes++;
  entry *stale_spares = spares_age_locked(c);
  be__spinlock_unlock(&c->retire_lock);
  free_list(stale_spares);
  release_dead(c, dead, 0);
  while (dead_tables) {
    be__cache_table *n = dead_tables->retired_next;
    be__free(dead_tables);
    dead_tables = n;
  }
}

/* A retired table is tried at the next bury; what a reader held back,
 * every BE__CACHE_RETRY_EVERY buries, not on each write. Threads may race
 * on the countdown: it is only a rate. */
static int retry_due(be_cache *c) {
  if (!atomic_load_explicit(&c->retry_pending, memory_order_relaxed)) return 0;
  uint32_t n = atomic_load_explicit(&c->retry_skip, memory_order_relaxed);
  if (n == 0) return 1;
  atomic_store_explicit(&c->retry_skip, n - 1, memory_order_relaxed);
  return 0;
}

void be__cache_bury(be_cache *c, entry *grave) {
  if (grave == NULL) {
    if (retry_due(c)) be__cache_reclaim(c, 0);
    return;
  }
  /* The list is newest-first; reverse it so callbacks see removal order. */
  entry *ordered = NULL, *last = grave;
  while (grave) {
    entry *n = grave->next;
    grave->next = ordered;
    ordered = grave;
    grave = n;
  }
  if (c->on_evict)
    for (entry *e = ordered; e; e = e->next)
      if (!(e->flags & BE__ENTRY_NEGATIVE))
        c->on_evict(e->data, e->klen, e->data + e->klen, e->vlen, e->flags >> 4, c->evict_ud);
  if (be__ebr_sole_reader()) {
    /* No other thread reads without a lock: nobody else can hold them,
     * so they need no grace period, scan or membarrier. */
    if (release_dead(c, ordered, 1) || retry_due(c)) be__cache_reclaim(c, 0); /* retired before */
    return;
  }
  if (!retire_entries(c, ordered, last) && retry_due(c)) be__cache_reclaim(c, 0);
}
