/* SPDX-License-Identifier: MIT */
/* be_cache_stats_get: every shard's counters summed under its lock, the
 * lock-free hits from the stripes, and the memory the cache holds. */
#include <backend/cache.h>
#include <backend/error.h>

#include <string.h>

#include "cache_internal.h"
#include "error.h"
#include "versioned.h"

int be_cache_stats_init(be_cache_stats *out, uint32_t version) {
  static const be_cache_stats defaults = BE_CACHE_STATS_INIT;
  return be__versioned_init(out, sizeof *out, &defaults, version, BE_CACHE_STATS_VERSION);
}

int be_cache_stats_get(be_cache_stats *out, const be_cache *cc, be_error **err) {
  if (cc == NULL || out == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_cache_stats_get: %s is NULL", cc ? "out" : "cache");
  if (out->version < 1 || out->version > BE_CACHE_STATS_VERSION)
    return be__error_set(err, BE_E_MISUSE, "be_cache_stats_get: unknown stats version %u",
                         (unsigned)out->version);
  be_cache *c = (be_cache *)cc; /* locking is not a logical modification */
  be__cache_reclaim(c, 0);      /* so memory_bytes shows no removed entries that could go */
  be__cache_spares_drop(c);     /* nor blocks kept for reuse */
  be_cache_stats st;
  memset(&st, 0, sizeof st);
  uint64_t table_bytes = 0;
  for (uint32_t k = 0; k < c->nshards; k++) {
    be__cache_shard *s = &c->shards[k];
    be__spinlock_lock(&s->lock);
    st.hits += s->hits;
    st.misses += s->misses;
    st.negative_hits += s->negative_hits;
    st.loads += s->loads;
    st.load_errors += s->load_errors;
    st.load_waits += s->load_waits;
    st.inserts += s->inserts;
    st.replacements += s->replacements;
    st.evictions_size += s->ev_size;
    st.evictions_count += s->ev_count;
    st.expirations += s->expirations;
    st.invalidations += s->invalidations;
    st.entries += s->count;
    st.bytes += s->bytes;
    table_bytes += be__cache_table_size(s->table->mask + 1);
    be__spinlock_unlock(&s->lock);
  }
  for (uint32_t i = 0; i < BE__CACHE_STRIPES; i++)
    st.hits += atomic_load_explicit(&c->stripes[i].hits, memory_order_relaxed);
  be__spinlock_lock(&c->retire_lock);
  uint64_t retired_bytes = c->retired_bytes;
  be__spinlock_unlock(&c->retire_lock);
  /* Exactly what was allocated: entry blocks are their charge minus the
   * table share, which is counted as the real tables instead. */
  uint64_t prefix_bytes = 0;
  uint32_t np = atomic_load(&c->nprefixes);
  for (uint32_t i = 0; i < np; i++) prefix_bytes += c->prefixes[i].len ? c->prefixes[i].len : 1;
  st.memory_bytes = st.bytes - st.entries * BE__CACHE_SLOTS_PER_ENTRY * sizeof(void *) + table_bytes +
                    sizeof(be_cache) + c->shards_mem_size + prefix_bytes + BE__CACHE_STRIPES_MEM +
                    retired_bytes;
  st.shard_count = c->nshards;
  st.version = BE_CACHE_STATS_VERSION;
  /* Version 1 is the only layout so far: copy it whole. A later version
   * copies only the prefix the caller's version has. */
  *out = st;
  return BE_OK;
}
