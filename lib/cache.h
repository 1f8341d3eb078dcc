/* SPDX-License-Identifier: MIT */
/* Internals of the cache shared by cache.c (table, LRU, bounds, expiry,
 * invalidation, stats) and cache_load.c (single-flight get-or-load). */
#ifndef BE_LIB_CACHE_H
#define BE_LIB_CACHE_H

#include <backend/cache.h>
#include <backend/error.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "clock.h"
#include "spinlock.h"

/* One allocation per entry: this header, then the key, then the value.
 * Kept to 52 bytes before the data (see be_cache_charge) by using 16-bit
 * key lengths, an 8-bit prefix mask and no stored hash (it is recomputed
 * on the rare paths that need it: growing, evicting). */
struct be_cache_entry {
  /* Hash chain. Lock-free readers follow it, so it is written atomically
   * and never again once the entry is unlinked (see "what lock-free
   * readers see" in cache.c). */
  struct be_cache_entry *hnext;
  union {
    struct be_cache_entry *prev;           /* LRU list, head = most recent */
    uint64_t retired_epoch;                /* once retired (be__ebr_retire_epoch) */
  };
  struct be_cache_entry *next;             /* LRU list; grave and retired lists once removed */
  int64_t expires;                         /* INT64_MAX = never */
  uint64_t epoch;                          /* cache epoch when stored (prefix gens) */
  _Atomic uint32_t refs;                   /* 1 for the table + 1 per handle */
  uint32_t vlen;
  uint16_t klen;
  uint8_t flags;  /* ENTRY_NEGATIVE | ENTRY_REF | reason << 4; atomic stores once linked */
  uint8_t pmask;  /* registered prefixes the key starts with; likewise */
  unsigned char data[];
};

#define BE__ENTRY_HDR offsetof(struct be_cache_entry, data)
#define BE__ENTRY_NEGATIVE 1u
/* Approximate LRU: read since stored or since the shard's last eviction
 * scan. Set by a hit (only when clear), cleared by the second chance. */
#define BE__ENTRY_REF 2u

/* A load in flight; lives in its shard's list while loading, then until
 * the last participant (leader or waiter) has taken the result. done is
 * guarded by mu (waiters sleep on cond, never holding the shard's spin
 * lock); every other field by the shard lock. */
typedef struct be__cache_flight {
  struct be__cache_flight *next;
  uint64_t hash;
  const void *key; /* the leader's key; only read while listed */
  size_t klen;
  pthread_mutex_t mu;
  pthread_cond_t cond;
  int refs;  /* leader + waiters not yet done with the result */
  int done;
  int stale; /* key set, deleted or invalidated meanwhile: do not cache */
  int rc;
  be_error *err;               /* the loader's error, owned until taken */
  struct be_cache_entry *result;
  uint64_t epoch0;             /* cache epoch when the load started */
} be__cache_flight;

/* A shard's hash table. mask and slots travel together so a lock-free
 * reader never pairs one table's mask with another's slots. Replaced
 * tables are retired like entries. */
typedef struct be__cache_table {
  size_t mask;                          /* slot count - 1 */
  struct be__cache_table *retired_next;
  uint64_t retired_epoch;
  struct be_cache_entry *slot[];        /* chain heads; atomic stores */
} be__cache_table;

/* The first cache line is what the lock-free hit path reads (the table)
 * and only a table swap writes; the second holds what every locked
 * operation writes (lock, counters), so locked misses and stats do not
 * invalidate readers' copies of the first. */
typedef struct be__cache_shard {
  _Alignas(64) be__cache_table *table; /* atomic stores */
  size_t mask_hint;        /* table->mask, loadable without first loading table */
  _Alignas(64) be__spinlock lock;
  uint64_t hits;
  struct be_cache_entry *head, *tail;
  uint64_t count, bytes;
  uint64_t max_count, max_bytes;
  size_t sweep_cursor;
  uint64_t rng;
  be__cache_flight *flights;
  /* counters, guarded by lock */
  uint64_t misses, negative_hits, loads, load_errors, load_waits;
  uint64_t inserts, replacements, ev_size, ev_count, expirations, invalidations;
} be__cache_shard;

typedef struct be__cache_prefix {
  unsigned char *bytes;
  size_t len;
  _Atomic uint64_t inval_epoch; /* entries stored before this are dead */
  _Atomic int ready;            /* every entry stored before registration is marked */
} be__cache_prefix;

#define BE__CACHE_STRIPES 64
struct be__cache_stripe {
  _Alignas(64) _Atomic uint64_t hits;
};

struct be_cache {
  be__cache_shard *shards;
  void *shards_mem; /* unaligned allocation behind shards */
  size_t shards_mem_size;
  uint32_t shard_bits;
  uint32_t nshards;
  uint64_t seed;
  int64_t default_ttl;
  int64_t negative_ttl;
  int32_t jitter_pct;
  uint32_t sweep_batch;
  int32_t lru_exact; /* BE_CACHE_LRU_EXACT: every hit moves to the front */
  be_clock *clock;
  be_cache_evict_fn on_evict;
  void *evict_ud;
  pthread_mutex_t reg_mu; /* serialises prefix registration */
  /* Entries and tables unlinked but maybe still seen by lock-free
   * readers, oldest first; freed once every reader inside has left. */
  pthread_mutex_t retire_mu;
  struct be_cache_entry *retired_head, *retired_tail; /* linked by next */
  be__cache_table *retired_tables;                    /* newest first */
  uint32_t retired_count;
  uint64_t retired_bytes; /* their blocks, for be_cache_stats.memory_bytes */
  _Atomic int tables_retired; /* some table awaits reclamation */
  /* Lock-free hits per reader slot (ebr.h index), written only by that
   * slot's thread: no atomic read-modify-write on the hit path. */
  struct be__cache_stripe *stripes;
  void *stripes_mem;
  _Atomic int expiring;   /* 1 once any entry was stored with an expiry */
  _Atomic uint32_t nprefixes;
  be__cache_prefix prefixes[BE_CACHE_MAX_PREFIXES];
  /* Bumped per registered-prefix invalidation; read by every set. Padded
   * away from the fields above (no _Alignas: be__malloc aligns to 16). */
  char pad_[64];
  _Atomic uint64_t epoch;
};

/* A TTL argument in milliseconds (> 0, BE_CACHE_TTL_DEFAULT or
 * BE_CACHE_TTL_FOREVER) as the nanoseconds the cache's clock counts; the
 * two sentinels pass through unchanged. */
static inline int64_t be__cache_ttl_ns(int64_t ttl_ms) {
  return ttl_ms > 0 ? be__ms_to_ns(ttl_ms) : ttl_ms;
}

struct be_cache_load {
  be_cache *cache;
  const void *key;
  size_t klen;
  struct be_cache_entry *entry; /* built by be_cache_load_set_value */
  int64_t ttl;
};

/* The time a lookup judges expiry by, read before its shard lock is taken
 * so the clock's latency overlaps the lock's; INT64_MIN (read lazily, if
 * at all) while no entry has ever had an expiry. Reading it before the
 * lock is still a time within the call. */
static inline int64_t be__cache_lookup_now(const be_cache *c) {
  if (!atomic_load_explicit(&c->expiring, memory_order_relaxed)) return INT64_MIN;
  return be__clock_coarse_ns(c->clock);
}

/* Lock the shard that holds hash h for a lookup. The bucket's line is
 * prefetched first so its miss overlaps the lock's barrier. */
static inline void be__cache_lock_for(be__cache_shard *s, uint64_t h) {
  /* Unlocked and outside any read section: the table may be freed under
   * us, so only its address is used (as an integer, with the shard's copy
   * of the mask) and a prefetch never faults. */
  uintptr_t t = (uintptr_t)__atomic_load_n(&s->table, __ATOMIC_RELAXED);
  size_t m = __atomic_load_n(&s->mask_hint, __ATOMIC_RELAXED);
  __builtin_prefetch((const void *)(t + offsetof(be__cache_table, slot) + (h & m) * sizeof(void *)));
  be__spinlock_lock(&s->lock);
}

/* --- helpers cache.c offers cache_load.c (all "_locked" need s->lock) --- */
uint64_t be__cache_hash(const be_cache *c, const void *key, size_t klen);
be__cache_shard *be__cache_shard_of(be_cache *c, uint64_t hash);
/* Find the live entry for key; dead ones met are moved to *grave. now is
 * the coarse time or INT64_MIN to read it only if an entry needs it. */
struct be_cache_entry *be__cache_lookup_locked(be_cache *c, be__cache_shard *s,
                                               uint64_t hash, const void *key,
                                               size_t klen, int64_t now,
                                               struct be_cache_entry **grave);
void be__cache_bump_locked(be__cache_shard *s, struct be_cache_entry *e);
/* Stamp (expiry from ttl, epoch, prefixes), insert as most recent,
 * replacing any entry for the key, evict to the bounds, sweep. */
void be__cache_insert_locked(be_cache *c, be__cache_shard *s, uint64_t hash,
                             struct be_cache_entry *e, int64_t ttl,
                             uint64_t epoch, struct be_cache_entry **grave);
/* A hit without the shard lock: a new reference to key's entry, or NULL
 * when the locked path must decide (approximate-LRU caches only). */
struct be_cache_entry *be__cache_get_unlocked(be_cache *c, be__cache_shard *s, uint64_t hash,
                                              const void *key, size_t klen, int64_t now);
/* 1 when an entry of this charge can be stored in shard s. */
int be__cache_fits(const be__cache_shard *s, uint64_t charge);
/* Allocate an entry holding key and value (refs = 1); NULL on failure. */
struct be_cache_entry *be__cache_entry_new(const void *key, size_t klen,
                                           const void *value, size_t vlen);
/* A hit on e: move it to the front (exact mode) or mark it referenced. */
static inline void be__cache_touch_locked(const be_cache *c, be__cache_shard *s,
                                          struct be_cache_entry *e) {
  if (c->lru_exact) {
    be__cache_bump_locked(s, e);
  } else if (!(e->flags & BE__ENTRY_REF)) { /* write the entry's line once */
    __atomic_store_n(&e->flags, (uint8_t)(e->flags | BE__ENTRY_REF), __ATOMIC_RELAXED);
  }
}
/* Run eviction callbacks for removed entries and retire them (their
 * table reference is dropped once no lock-free reader can see them);
 * also reclaims retired tables. Call with no lock held, after every
 * change, grave NULL or not. */
void be__cache_bury(be_cache *c, struct be_cache_entry *grave);
void be__cache_entry_unref(struct be_cache_entry *e);
/* Free retired entries and tables no lock-free reader can still see. */
void be__cache_reclaim(be_cache *c);
/* Mark in-flight loads of key (or of keys with a prefix) stale. */
void be__cache_flights_stale_locked(be__cache_shard *s, const void *key,
                                    size_t klen, int prefix);

#endif
