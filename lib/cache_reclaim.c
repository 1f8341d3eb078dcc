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

#define RECLAIM_BATCH 64u          /* retired entries that trigger a reclamation pass */
#define RECLAIM_BYTES (256u << 10) /* or retired bytes: large values are not left waiting */

typedef struct be_cache_entry entry;

/* Queue the entries first..last (linked by next) whose table reference is
 * to be dropped. Takes the retire epoch after they were unlinked. */
static void retire_entries(be_cache *c, entry *first, entry *last) {
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
  int full = c->retired_count >= RECLAIM_BATCH || c->retired_bytes >= RECLAIM_BYTES;
  be__spinlock_unlock(&c->retire_lock);
  if (full) be__cache_reclaim(c, 0);
}

void be__cache_retire_table(be_cache *c, be__cache_table *t) {
  be__spinlock_lock(&c->retire_lock);
  t->retired_epoch = be__ebr_retire_epoch();
  t->retired_next = c->retired_tables;
  c->retired_tables = t;
  c->retired_bytes += be__cache_table_size(t->mask + 1);
  /* Old tables add up to the new one's size: free them at the next bury
   * rather than waiting for RECLAIM_BATCH entries. */
  atomic_store_explicit(&c->tables_retired, 1, memory_order_relaxed);
  be__spinlock_unlock(&c->retire_lock);
}

void be__cache_reclaim(be_cache *c, int all) {
  be__spinlock_lock(&c->retire_lock);
  int pending = c->retired_head || c->retired_tables;
  be__spinlock_unlock(&c->retire_lock);
  if (!pending) return;
  uint64_t safe = UINT64_MAX;
  if (!all) {
    /* Only what was retired before the scan began: a reader that enters
     * after the scan has epoch >= this and cannot see those. */
    uint64_t before = atomic_load_explicit(&be__ebr_epoch, memory_order_acquire);
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
  /* After the pass: once the last table is freed, burying nothing stops
   * calling in here (and taking retire_lock) on every write. */
  if (c->retired_tables == NULL) atomic_store_explicit(&c->tables_retired, 0, memory_order_relaxed);
  be__spinlock_unlock(&c->retire_lock);
  while (dead) {
    entry *n = dead->next;
    be__cache_entry_unref(dead); /* the table's reference; handles may keep it */
    dead = n;
  }
  while (dead_tables) {
    be__cache_table *n = dead_tables->retired_next;
    be__free(dead_tables);
    dead_tables = n;
  }
}

void be__cache_bury(be_cache *c, entry *grave) {
  if (grave == NULL) {
    if (atomic_load_explicit(&c->tables_retired, memory_order_relaxed)) be__cache_reclaim(c, 0);
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
  retire_entries(c, ordered, last);
}
