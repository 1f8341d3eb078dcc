/* SPDX-License-Identifier: MIT */
/* The cache's private structures, and the inline helpers its pieces
 * share. The cache (be_cache, backend/cache.h) is in seven files:
 *
 *   cache.c          options, new, free, entries and their handles
 *   cache_shard.c    a shard's table and LRU list under its lock: insertion,
 *                    eviction to the bounds, removal, growth, the expiry
 *                    sweep; be_cache_set, _delete, _clear, _sweep
 *   cache_read.c     be_cache_get and be_cache_get_copy: the lock-free hit
 *                    path, then the locked one
 *   cache_load.c     be_cache_get_or_load: single-flight loading
 *   cache_prefix.c   prefix registration and invalidation
 *   cache_reclaim.c  removed entries and replaced tables, freed once no
 *                    lock-free reader can see them (ebr.h)
 *   cache_stats.c    be_cache_stats_get
 *
 * Sharded chained hash tables with an intrusive LRU list per shard, a
 * spin lock per shard, lazy expiry with an amortised sweep, and prefix
 * invalidation by epochs. Approximate-LRU caches serve hits without the
 * shard lock (see "what lock-free readers see" below). */
#ifndef BE_LIB_CACHE_INTERNAL_H
#define BE_LIB_CACHE_INTERNAL_H

#include <backend/cache.h>
#include <backend/error.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "clock.h"
#include "ebr.h"
#include "error.h"
#include "spinlock.h"

/* One allocation per entry: this header, then the key, then the value.
 * Kept to 52 bytes before the data (see be_cache_charge) by using 16-bit
 * key lengths, an 8-bit prefix mask and no stored hash (it is recomputed
 * on the rare paths that need it: growing, evicting). */
struct be_cache_entry {
  /* Hash chain. Lock-free readers follow it, so it is written atomically
   * and never again once the entry is unlinked (see "what lock-free
   * readers see" below). */
  struct be_cache_entry *hnext;
  union {
    struct be_cache_entry *prev; /* LRU list, head = most recent */
    uint64_t retired_epoch;      /* once retired (be__ebr_retire_epoch) */
  };
  struct be_cache_entry *next; /* LRU list; grave and retired lists once removed */
  int64_t expires;             /* INT64_MAX = never */
  uint64_t epoch;              /* cache epoch when stored (prefix gens) */
  _Atomic uint32_t refs;       /* 1 for the table + 1 per handle */
  uint32_t vlen;
  uint16_t klen;
  uint8_t flags; /* ENTRY_NEGATIVE | ENTRY_REF | reason << 4; atomic stores once linked */
  uint8_t pmask; /* registered prefixes the key starts with; likewise */
  unsigned char data[];
};

#define BE__ENTRY_HDR offsetof(struct be_cache_entry, data)
#define BE__ENTRY_NEGATIVE 1u
/* Approximate LRU: read since stored or since the shard's last eviction
 * scan. Set by a hit (only when clear), cleared by the second chance. */
#define BE__ENTRY_REF 2u

/* A load in flight; lives in its shard's list for its hash
 * (be__cache_flight_list) while loading, then until the last
 * participant (leader or waiter) has taken the result. done is guarded
 * by mu (waiters sleep on cond, never holding the shard's spin
 * lock); every other field by the shard lock. */
typedef struct be__cache_flight {
  struct be__cache_flight *next;
  uint64_t hash;
  const void *key; /* the leader's key; only read while listed */
  size_t klen;
  pthread_mutex_t mu;
  pthread_cond_t cond;
  int refs; /* leader + waiters not yet done with the result */
  int done;
  int stale; /* BE__FLIGHT_WRITTEN / BE__FLIGHT_OVERLAPPED bits, 0: fresh */
  int rc;
  be_error *err; /* the loader's error, owned until taken */
  struct be_cache_entry *result;
  uint64_t epoch0; /* cache epoch when the load started */
  /* A load nobody joined lives on its leader's stack, with mu and cond
   * never initialised (a miss allocates nothing for it); the first caller
   * to join moves it to the heap (heap = 1, mu and cond set up), links
   * the copy in its place and leaves its address in moved, where the
   * leader picks it up under the shard lock before settling. */
  int heap;
  struct be__cache_flight *moved;
  int fill; /* a conditional fill (cache_fill.c): nobody joins it */
} be__cache_flight;

#define BE__CACHE_FLIGHT_LISTS 32 /* lists of flights per shard */

/* A shard's hash table. mask and slots travel together so a lock-free
 * reader never pairs one table's mask with another's slots. Replaced
 * tables are retired like entries. */
typedef struct be__cache_table {
  size_t mask; /* slot count - 1 */
  struct be__cache_table *retired_next;
  uint64_t retired_epoch;
  struct be_cache_entry *slot[]; /* chain heads; atomic stores */
} be__cache_table;

/* The first cache line is what the lock-free hit path reads (the table)
 * and only a table swap writes; the second holds what every locked
 * operation writes (lock, counters), so locked misses and stats do not
 * invalidate readers' copies of the first. */
typedef struct be__cache_shard {
  _Alignas(64) be__cache_table *table; /* atomic stores */
  size_t mask_hint;                    /* table->mask, loadable without first loading table */
  _Alignas(64) be__spinlock lock;
  uint64_t hits;
  struct be_cache_entry *head, *tail;
  uint64_t count, bytes; /* this shard's part of the totals (stats) */
  size_t sweep_cursor;
  /* What the write's sweep could find dead ("sweep floors" below). */
  int64_t exp_floor;    /* no entry expires before this */
  uint64_t epoch_floor; /* no entry with a prefix bit was stored before this epoch */
  int64_t cycle_exp;    /* the same over the entries of the current sweep cycle */
  uint64_t cycle_epoch;
  size_t cycle_left; /* buckets the current cycle has yet to visit */
  uint64_t rng;
  /* Loads and fills in flight, in lists by hash (be__cache_flight_list):
   * a store walks only its key's list, not all of them (a get_many of
   * 10,000 ids has 10,000 fills listed while it reads). */
  be__cache_flight *flights[BE__CACHE_FLIGHT_LISTS];
  uint32_t nflights;
  /* counters, guarded by lock */
  uint64_t misses, negative_hits, loads, load_errors, load_waits;
  uint64_t inserts, replacements, ev_size, ev_count, expirations, invalidations;
} be__cache_shard;

/* The list of shard s's flights that a flight of hash is in (shard lock
 * held). Bits 40..44 of the hash: the shard is chosen by the top bits and
 * the table slot by the low ones. */
static inline be__cache_flight **be__cache_flight_list(be__cache_shard *s, uint64_t hash) {
  return &s->flights[(hash >> 40) % BE__CACHE_FLIGHT_LISTS];
}

/* List f (its hash set) in s (shard lock held). */
static inline void be__cache_flight_list_locked(be__cache_shard *s, be__cache_flight *f) {
  be__cache_flight **l = be__cache_flight_list(s, f->hash);
  f->next = *l;
  *l = f;
  s->nflights++;
}

/* Take f out of s's flights (shard lock held). */
static inline void be__cache_flight_unlist_locked(be__cache_shard *s, const be__cache_flight *f) {
  for (be__cache_flight **l = be__cache_flight_list(s, f->hash); *l; l = &(*l)->next)
    if (*l == f) {
      *l = f->next;
      s->nflights--;
      return;
    }
}

typedef struct be__cache_prefix {
  unsigned char *bytes;
  size_t len;
  _Atomic uint64_t inval_epoch; /* entries stored before this are dead */
  _Atomic int ready;            /* every entry stored before registration is marked */
} be__cache_prefix;

/* Retired entries that trigger a reclamation pass, or retired bytes (large
 * values are not left waiting), beyond what the last pass left. A pass
 * costs one membarrier (ebr.c): about 1 us on one thread, 15-40 us with a
 * second one running on a 2-vCPU VM; at 64 entries a pass, two threads
 * writing a full cache spent more time there than in the writes. */
#define BE__CACHE_RECLAIM_BATCH 256u
#define BE__CACHE_RECLAIM_BYTES (256u << 10)
/* Writes between two passes while a reader holds back what a pass could
 * not free (entries or tables): no batch may come to free it. */
#define BE__CACHE_RETRY_EVERY 64u
#define BE__CACHE_SPARE_LISTS 16   /* spare lists, by block size */
#define BE__CACHE_SPARE_SCAN 8     /* blocks a take looks at for its size */
#define BE__CACHE_SPARE_BLOCK 2048 /* larger blocks are never kept */
/* Spare blocks kept at most: one reclamation batch, so a full cache's
 * misses reuse what the last pass reclaimed instead of freeing it and
 * allocating again; and at most this many bytes, as when 64 of the
 * largest blocks were kept. */
#define BE__CACHE_SPARES_MAX BE__CACHE_RECLAIM_BATCH
#define BE__CACHE_SPARE_BYTES (64u * BE__CACHE_SPARE_BLOCK)

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
  /* The bounds, for the whole cache; UINT64_MAX = none (the matching
   * total below is then never touched). */
  uint64_t max_count, max_bytes;
  be_clock *clock;
  be_cache_evict_fn on_evict;
  void *evict_ud;
  pthread_mutex_t reg_mu; /* serialises prefix registration */
  /* Entries and tables unlinked but maybe still seen by lock-free
   * readers, oldest first; freed once every reader inside has left. */
  be__spinlock retire_lock;                           /* held only for list splices: cheaper than a mutex per bury */
  struct be_cache_entry *retired_head, *retired_tail; /* linked by next */
  be__cache_table *retired_tables;                    /* newest first */
  uint32_t retired_count;
  uint64_t retired_bytes; /* their blocks and the spares', for be_cache_stats.memory_bytes */
  /* The retired entries (count, bytes without the spares) when the last
   * pass was claimed or ended: what it could not free (a reader held it
   * back) or what was retired meanwhile. The next pass waits for a batch
   * more than that, so a held reader does not make every retire scan
   * again, and two threads do not both pass for one batch. */
  uint32_t left_count;
  uint64_t left_bytes;
  uint64_t reclaim_passes; /* scans for readers so far (tests) */
  uint32_t alone_released; /* entries released with no grace period since the spares aged */
  /* Spares: blocks of reclaimed entries nobody references any more, kept
   * (at most BE__CACHE_SPARES_MAX and BE__CACHE_SPARE_BYTES, each of up
   * to BE__CACHE_SPARE_BLOCK bytes) for the next entries of the same
   * block size, so a miss that evicts need not free one block and
   * allocate another. Lists by block size, linked by next; under
   * retire_lock. A spare no miss took between two passes is freed at the
   * second (its stamp, in retired_epoch): blocks of a size nobody asks for
   * any more must not fill the spares for good. */
  struct be_cache_entry *spares[BE__CACHE_SPARE_LISTS];
  _Atomic uint32_t nspares; /* all lists; read unlocked as a hint */
  uint64_t spare_bytes;     /* their blocks' bytes */
  uint64_t spare_gen;       /* passes so far; a spare is stamped with it */
  /* A pass is due that no batch will bring: a retired table (at the next
   * bury), or what a reader held back at the last pass (every
   * BE__CACHE_RETRY_EVERY buries, burying something or not). */
  _Atomic int retry_pending;
  _Atomic uint32_t retry_skip; /* buries before that pass */
  /* Lock-free hits per reader slot (ebr.h index), written only by that
   * slot's thread: no atomic read-modify-write on the hit path. */
  struct be__cache_stripe *stripes;
  void *stripes_mem;
  _Atomic int expiring; /* 1 once any entry was stored with an expiry */
  _Atomic uint32_t nprefixes;
  be__cache_prefix prefixes[BE_CACHE_MAX_PREFIXES];
  /* Bumped per registered-prefix invalidation; read by every set. Padded
   * away from the fields above (no _Alignas: be__malloc aligns to 16). */
  char pad_[64];
  _Atomic uint64_t epoch;
  /* Entries and bytes held by the whole cache, against max_count and
   * max_bytes ("bounds" below). Written by every insert and removal, so
   * on a line of their own, away from epoch (read by every set). */
  char pad2_[64];
  _Atomic uint64_t total_count;
  _Atomic uint64_t total_bytes;
  char pad3_[64];
};

/* ---- bounds: global totals, eviction debts ----
 * An entry is counted in total_count / total_bytes (atomics) while it is
 * linked in a shard, under that shard's lock. A write that links an entry
 * and so brings a total past its bound owes evictions: one entry for the
 * count (when the count it found was already at the bound), and for the
 * bytes the excess its charge caused (at most its charge). It pays them
 * first from its own shard, never evicting the entry it wrote, then,
 * after unlocking, from the other shards in turn (one lock at a time).
 * A debt is dropped once the total is back within its bound (another
 * thread's delete or eviction paid it), checked again just before each
 * victim goes, so no write evicts more than its own excess (but for
 * another thread's removal landing between that check and the unlink:
 * the total then rests one entry under the bound), and at any quiet
 * moment both totals are within the bounds: a write that found room adds
 * at most what the bound had left. */
typedef struct be__cache_debt {
  uint64_t count; /* 0 or 1 */
  uint64_t bytes;
} be__cache_debt;

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


#define BE__CACHE_NEVER INT64_MAX
/* A new shard table's slot count (and a cleared one's). */
#define BE__CACHE_INITIAL_BUCKETS 16u
/* Bytes behind be_cache.stripes: the stripes plus room to align them. */
#define BE__CACHE_STRIPES_MEM (BE__CACHE_STRIPES * sizeof(struct be__cache_stripe) + 64)

/* ---- what lock-free readers see (cache_read.c) ----
 * Chain heads, hnext, flags and pmask are written with atomic stores, and
 * an entry's other fields are fixed before a release store links it. An
 * unlinked entry's hnext is never written again, and unlinked entries and
 * replaced tables are freed only after every reader that was inside then
 * has left (ebr). So every entry a reader reaches was in the table at
 * some moment during its walk, and a hit it finds was the key's value at
 * that moment: linearizable without a seqlock. A walk confused by a
 * concurrent change can only miss, and misses go to the locked path. */

static inline void be__cache_set_flags(struct be_cache_entry *e, uint8_t f) {
  __atomic_store_n(&e->flags, f, __ATOMIC_RELAXED);
}

/* ---- hashing: 8 bytes at a time, 128-bit multiply folding (wyhash-like) ---- */

static inline uint64_t be__cache_mix(uint64_t a, uint64_t b) {
  __uint128_t r = (__uint128_t)a * b;
  return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t be__cache_load64(const unsigned char *p) {
  uint64_t w;
  memcpy(&w, p, 8);
  return w;
}

static inline uint32_t be__cache_load32(const unsigned char *p) {
  uint32_t w;
  memcpy(&w, p, 4);
  return w;
}

static inline uint64_t be__cache_hash(const be_cache *c, const void *key, size_t n) {
  const unsigned char *p = key;
  uint64_t h = c->seed ^ ((uint64_t)n * UINT64_C(0x9e3779b97f4a7c15));
  if (n >= 4 && n <= 16) {
    /* The usual key ("user:123"): two loads that together cover every
     * byte (overlapping when n < 16), one multiply folding both, then the
     * final one; the loop below would take three multiplies. Both factors
     * carry the seed, so no key can make one of them zero knowingly. */
    uint64_t a, b;
    if (n >= 8) {
      a = be__cache_load64(p);
      b = be__cache_load64(p + n - 8);
    } else {
      a = be__cache_load32(p);
      b = be__cache_load32(p + n - 4);
    }
    uint64_t s2 = (c->seed << 32 | c->seed >> 32) ^ UINT64_C(0xe7037ed1a0b428db);
    h = be__cache_mix(h ^ a ^ UINT64_C(0xa0761d6478bd642f), b ^ s2);
    return be__cache_mix(h, UINT64_C(0x589965cc75374cc3));
  }
  while (n >= 8) {
    h = be__cache_mix(h ^ be__cache_load64(p), UINT64_C(0xa0761d6478bd642f));
    p += 8;
    n -= 8;
  }
  uint64_t w = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  /* The same value as memcpy(&w, p, n), without a call for variable n. */
  if (n >= 4) {
    uint64_t lo = be__cache_load32(p), hi = be__cache_load32(p + n - 4);
    w = lo | (hi >> (8 * (8 - n))) << 32;
  } else if (n) {
    w = p[0];
    if (n > 1) w |= (uint64_t)p[1] << 8;
    if (n > 2) w |= (uint64_t)p[2] << 16;
  }
#else
  if (n) memcpy(&w, p, n);
#endif
  h = be__cache_mix(h ^ w ^ UINT64_C(0xe7037ed1a0b428db), UINT64_C(0x8ebc6af09c88c6e3));
  return be__cache_mix(h, UINT64_C(0x589965cc75374cc3));
}

static inline be__cache_shard *be__cache_shard_of(be_cache *c, uint64_t h) {
  return &c->shards[c->shard_bits ? (size_t)(h >> (64 - c->shard_bits)) : 0];
}

/* memcmp(a, b, n) == 0, inline for keys up to 16 bytes: two (possibly
 * overlapping) word loads per side instead of a call. */
static inline int be__cache_key_eq(const unsigned char *a, const unsigned char *b, size_t n) {
  if (n > 16) return memcmp(a, b, n) == 0;
  if (n >= 8)
    return ((be__cache_load64(a) ^ be__cache_load64(b)) |
            (be__cache_load64(a + n - 8) ^ be__cache_load64(b + n - 8))) == 0;
  if (n >= 4)
    return ((be__cache_load32(a) ^ be__cache_load32(b)) |
            (be__cache_load32(a + n - 4) ^ be__cache_load32(b + n - 4))) == 0;
  for (size_t i = 0; i < n; i++)
    if (a[i] != b[i]) return 0;
  return 1;
}

/* ---- sizes ---- */

/* When a shard's table doubles: at a load of 1, or of 1/2 while it has
 * fewer than BE__CACHE_SPARSE_SLOTS slots. A lookup walks about 1 + load/2
 * entries for a hit and load entries for a miss, each a likely cache miss
 * (at a load of 1 the cache row of bench_hotpath, 1,000 entries in 16
 * shards, spent a quarter of its hit path's cycles there); small tables
 * stay sparse for at most 4 KiB a shard, a fixed cost like the shard's
 * own, while large ones keep two slots per entry at most. */
#define BE__CACHE_SPARSE_SLOTS 512u
/* Slots per entry a table holds at most once past BE__CACHE_SPARSE_SLOTS
 * slots (right after doubling; until entries are removed: be_cache_clear
 * shrinks it), which the charge counts. */
#define BE__CACHE_SLOTS_PER_ENTRY 2u

static inline int be__cache_table_due(size_t count, size_t slots) {
  return slots < BE__CACHE_SPARSE_SLOTS ? 2 * count >= slots : count >= slots;
}

/* Header + key + value + the hash-table share (BE__CACHE_SLOTS_PER_ENTRY). */
static inline uint64_t be__cache_charge_of(size_t klen, size_t vlen) {
  return (uint64_t)BE__ENTRY_HDR + klen + vlen + BE__CACHE_SLOTS_PER_ENTRY * sizeof(void *);
}

/* 1 when an entry of these lengths can exist (be_cache_charge() != 0). */
static inline int be__cache_lengths_ok(size_t klen, size_t vlen) {
  return klen <= BE_CACHE_MAX_KEY && vlen <= UINT32_MAX - BE__ENTRY_HDR - klen;
}

static inline uint64_t be__cache_echarge(const struct be_cache_entry *e) {
  return be__cache_charge_of(e->klen, e->vlen);
}

/* The bytes of an entry's allocation. */
static inline uint64_t be__cache_entry_block(const struct be_cache_entry *e) {
  return BE__ENTRY_HDR + e->klen + e->vlen;
}

static inline size_t be__cache_table_size(size_t nslots) {
  return offsetof(be__cache_table, slot) + nslots * sizeof(struct be_cache_entry *);
}

/* 1 when an entry of this charge can be stored in cache c. */
static inline int be__cache_fits(const be_cache *c, uint64_t charge) {
  return charge <= c->max_bytes;
}

/* ---- dead entries: expired or older than a registered prefix's invalidation ---- */

enum {
  BE__CACHE_ALIVE = 0,
  BE__CACHE_DEAD_EXPIRED = BE_CACHE_EVICT_EXPIRED,
  BE__CACHE_DEAD_INVALIDATED = BE_CACHE_EVICT_INVALIDATED
};

/* 1 when a registered prefix of the entry (bits pmask) was invalidated
 * after it was stored. Every invalidation epoch is at most the cache
 * epoch, so an entry stamped with the current epoch has outlived none:
 * one load instead of one per prefix bit on the hit path. */
static inline int be__cache_prefix_dead(be_cache *c, const struct be_cache_entry *e,
                                        unsigned pmask) {
  if (pmask == 0 || e->epoch == atomic_load_explicit(&c->epoch, memory_order_acquire)) return 0;
  for (unsigned m = pmask; m; m &= m - 1) {
    unsigned i = (unsigned)__builtin_ctz(m);
    uint64_t inval = atomic_load_explicit(&c->prefixes[i].inval_epoch, memory_order_acquire);
    if (inval > e->epoch) return 1;
  }
  return 0;
}

/* Why e is dead (its eviction reason), or BE__CACHE_ALIVE. *now is the
 * coarse time, or INT64_MIN to read it only if e has an expiry. */
static inline int be__cache_entry_dead(be_cache *c, const struct be_cache_entry *e, int64_t *now) {
  if (be__cache_prefix_dead(c, e, e->pmask)) return BE__CACHE_DEAD_INVALIDATED;
  if (e->expires != BE__CACHE_NEVER) {
    if (*now == INT64_MIN) *now = be__clock_coarse_ns(c->clock);
    if (*now >= e->expires) return BE__CACHE_DEAD_EXPIRED;
  }
  return BE__CACHE_ALIVE;
}

/* ---- sweep floors (shard lock held) ----
 * A write's amortised sweep (cache_shard.c) can remove nothing while no
 * entry of its shard can be dead, so each shard keeps lower bounds:
 * exp_floor for its entries' expiry times and epoch_floor for the epochs
 * of those with a prefix bit (an entry stored at the cache epoch or later
 * outlived no invalidation, be__cache_prefix_dead). Linking an entry or
 * giving it a prefix bit lowers them; removals leave them (still bounds).
 * To raise them again, the sweep keeps the same minima over a cycle: the
 * live entries it walks in mask + 1 consecutive buckets and every entry
 * linked meanwhile; at the cycle's end they become the floors. A cycle
 * is dropped when a write skips the sweep or the table changes (entries
 * move between buckets); the next sweep begins a new one. */

static inline void be__cache_cycle_note(be__cache_shard *s, const struct be_cache_entry *e) {
  if (e->expires < s->cycle_exp) s->cycle_exp = e->expires;
  if (e->pmask && e->epoch < s->cycle_epoch) s->cycle_epoch = e->epoch;
}

/* e was linked into s, or given a prefix bit. */
static inline void be__cache_floor_lower(be__cache_shard *s, const struct be_cache_entry *e) {
  if (e->expires == INT64_MAX && !e->pmask) return; /* can never be dead: bounds nothing */
  be__cache_cycle_note(s, e);
  if (e->expires < s->exp_floor) s->exp_floor = e->expires;
  if (e->pmask && e->epoch < s->epoch_floor) s->epoch_floor = e->epoch;
}

/* End the current cycle unfinished: the next sweep begins a new one
 * (cycle_left 0 = none running). */
static inline void be__cache_cycle_drop(be__cache_shard *s) { s->cycle_left = 0; }

/* The floors of a shard without entries (a new or cleared one). */
static inline void be__cache_floors_reset(be__cache_shard *s) {
  s->exp_floor = INT64_MAX;
  s->epoch_floor = UINT64_MAX;
  be__cache_cycle_drop(s);
}

/* ---- the LRU list (shard lock held) ---- */

static inline void be__cache_lru_unlink(be__cache_shard *s, struct be_cache_entry *e) {
  if (e->prev) e->prev->next = e->next;
  else s->head = e->next;
  if (e->next) e->next->prev = e->prev;
  else s->tail = e->prev;
  e->prev = e->next = NULL;
}

static inline void be__cache_lru_push_head(be__cache_shard *s, struct be_cache_entry *e) {
  e->prev = NULL;
  e->next = s->head;
  if (s->head) s->head->prev = e;
  else s->tail = e;
  s->head = e;
}

/* Move e to the front of the LRU list. */
static inline void be__cache_bump_locked(be__cache_shard *s, struct be_cache_entry *e) {
  if (s->head == e) return; /* saves the neighbours' cache lines on hot keys */
  be__cache_lru_unlink(s, e);
  be__cache_lru_push_head(s, e);
}

/* A hit on e: move it to the front (exact mode) or mark it referenced. */
static inline void be__cache_touch_locked(const be_cache *c, be__cache_shard *s,
                                          struct be_cache_entry *e) {
  if (c->lru_exact) {
    be__cache_bump_locked(s, e);
  } else if (!(e->flags & BE__ENTRY_REF)) { /* write the entry's line once */
    be__cache_set_flags(e, (uint8_t)(e->flags | BE__ENTRY_REF));
  }
}

/* ---- lookups under the shard lock ---- */

/* The chain head for hash h; the shard lock is held, so mask_hint equals
 * table->mask, and it is loaded in parallel with the table pointer
 * instead of after it. */
static inline struct be_cache_entry **be__cache_slot_locked(be__cache_shard *s, uint64_t h) {
  return &s->table->slot[h & s->mask_hint];
}

/* The link that points at key's entry, or NULL. */
static inline struct be_cache_entry **be__cache_find_link(be__cache_shard *s, uint64_t h,
                                                          const void *key, size_t klen) {
  struct be_cache_entry **link = be__cache_slot_locked(s, h);
  for (struct be_cache_entry *e = *link; e; link = &e->hnext, e = e->hnext)
    if (e->klen == klen && be__cache_key_eq(e->data, key, klen)) return link;
  return NULL;
}

/* Unlink e (whose chain link is *link, or found by hashing when NULL) and
 * queue it on *grave with its reason (BE_CACHE_EVICT_*); counts it by
 * reason. */
void be__cache_remove_locked(be_cache *c, be__cache_shard *s, struct be_cache_entry *e,
                             struct be_cache_entry **link, int reason,
                             struct be_cache_entry **grave);

/* Find the live entry for key; dead ones met are moved to *grave. now is
 * the coarse time or INT64_MIN to read it only if an entry needs it. */
static inline struct be_cache_entry *be__cache_lookup_locked(be_cache *c, be__cache_shard *s,
                                                             uint64_t h, const void *key,
                                                             size_t klen, int64_t now,
                                                             struct be_cache_entry **grave) {
  struct be_cache_entry **link = be__cache_find_link(s, h, key, klen);
  if (link == NULL) return NULL;
  struct be_cache_entry *e = *link;
  int dead = be__cache_entry_dead(c, e, &now);
  if (dead) {
    be__cache_remove_locked(c, s, e, link, dead, grave);
    return NULL;
  }
  return e;
}

/* The BE_E_NOT_FOUND of a lookup: no allocation when err is NULL (the hot path). */
static inline int be__cache_miss(be_error **err) {
  return err ? be__error_set(err, BE_E_NOT_FOUND, "no live entry for the key") : BE_E_NOT_FOUND;
}

/* ---- cache.c: entries ---- */

/* An entry holding key and value (refs = 1), in a spare block of c's
 * when one of the size is kept (c may be NULL: always allocated); NULL
 * when out of memory. */
struct be_cache_entry *be__cache_entry_new(be_cache *c, const void *key, size_t klen,
                                           const void *value, size_t vlen);
void be__cache_entry_unref(struct be_cache_entry *e);

/* ---- cache_shard.c (all "_locked" need s->lock) ---- */

/* A zeroed table of nslots (a power of two) slots; NULL on failure. */
be__cache_table *be__cache_table_new(size_t nslots);
/* Make t the shard's table for lock-free readers. */
void be__cache_publish_table(be__cache_shard *s, be__cache_table *t);
/* Stamp (expiry from ttl, epoch, prefixes), insert as most recent,
 * replacing any entry for the key, evict from s to the bounds, sweep.
 * What s could not pay is left in *debt (zeroed first): pass it to
 * be__cache_settle() once unlocked. */
void be__cache_insert_locked(be_cache *c, be__cache_shard *s, uint64_t hash,
                             struct be_cache_entry *e, int64_t ttl, uint64_t epoch,
                             struct be_cache_entry **grave, be__cache_debt *debt);
/* No lock held: pay what an insert into s (of entry e) still owes from
 * the other shards, then from s again, never evicting e. A no-op for a
 * zero debt. */
void be__cache_settle(be_cache *c, be__cache_shard *s, const struct be_cache_entry *e,
                      be__cache_debt *debt, struct be_cache_entry **grave);

/* How a load or fill in flight learnt its key changed (be__cache_flight.stale):
 * WRITTEN, the key was set, deleted or invalidated since it began: what
 * is cached is newer, it stores nothing; OVERLAPPED, another read of the
 * key stored since it began: which of the two read the newer row is not
 * known (the order they began in is not the order they read in), so it
 * drops the entry instead of storing, and the next read loads. */
enum { BE__FLIGHT_WRITTEN = 1,
       BE__FLIGHT_OVERLAPPED = 2 };

/* Mark the loads and fills in flight of key (hash is its be__cache_hash)
 * with mark, or with prefix set, of every key starting with key (hash
 * unused). */
void be__cache_flights_stale_locked(be__cache_shard *s, uint64_t hash, const void *key,
                                    size_t klen, int prefix, int mark);

/* be__cache_insert_locked for a value that is the key's newest: the
 * loads and fills of the key in flight are marked first, WRITTEN for a
 * be_cache_set, OVERLAPPED for a read's value (mark). */
static inline void be__cache_store_locked(be_cache *c, be__cache_shard *s, uint64_t hash,
                                          struct be_cache_entry *e, int64_t ttl, uint64_t epoch,
                                          int mark, struct be_cache_entry **grave,
                                          be__cache_debt *debt) {
  if (s->nflights) be__cache_flights_stale_locked(s, hash, e->data, e->klen, 0, mark);
  be__cache_insert_locked(c, s, hash, e, ttl, epoch, grave, debt);
}

/* What a read ending with a value does (lock held): store it unless its
 * key was written or another read of it stored meanwhile, or it cannot
 * be stored (too large, out of memory: e NULL); then the entry goes,
 * unless a write made it, and the other reads of the key in flight are
 * marked. 1 when e was stored. */
int be__cache_read_settle_locked(be_cache *c, be__cache_shard *s, be__cache_flight *f,
                                 struct be_cache_entry *e, int64_t ttl,
                                 struct be_cache_entry **grave, be__cache_debt *debt);

/* ---- hits without the shard lock (approximate-LRU caches) ----
 * The chain is walked inside an ebr read section, so nothing met can be
 * freed (see "what lock-free readers see" above), and nothing shared is
 * written: the hit is counted in this thread's stripe. Only hits on
 * servable entries are taken; everything else (a miss, an entry not yet
 * marked referenced, dead or negative, a value too large for the buffer)
 * goes to the locked path. Inline here because be_cache_get,
 * be_cache_get_copy and be_cache_get_or_load all start with it: as calls,
 * these cost a hit about 30 instructions of prologues. */

/* A hit the lock-free path may serve: marked referenced already (so
 * recency needs no write), positive, alive by the prefix epochs and the
 * clock. Anything else goes to the locked path, which also removes it if
 * dead. Reads only fields fixed before the entry was published, plus
 * flags and pmask atomically. */
static inline int be__cache_servable(be_cache *c, struct be_cache_entry *e, int64_t now) {
  uint8_t f = __atomic_load_n(&e->flags, __ATOMIC_RELAXED);
  if ((f & (BE__ENTRY_REF | BE__ENTRY_NEGATIVE)) != BE__ENTRY_REF) return 0;
  if (be__cache_prefix_dead(c, e, __atomic_load_n(&e->pmask, __ATOMIC_RELAXED))) return 0;
  /* The clock was read before the read section: a custom clock's callback
   * must not run inside one (it could use the cache). */
  return e->expires == BE__CACHE_NEVER || (now != INT64_MIN && now < e->expires);
}

/* This thread's reader slot when it may read without the lock. */
static inline be__ebr_reader *be__cache_unlocked_reader(const be_cache *c) {
  if (c->lru_exact) return NULL; /* every hit moves the entry: needs the lock */
  be__ebr_reader *r = be__ebr_self();
  return r && r->index < BE__CACHE_STRIPES ? r : NULL;
}

/* Inside a read section: key's servable entry or NULL. */
static inline __attribute__((always_inline)) struct be_cache_entry *
be__cache_find_unlocked(be_cache *c, be__cache_shard *s, uint64_t h, const void *key, size_t klen,
                        int64_t now) {
  /* The slot's address from the shard's mask copy, so its load need not
   * wait for the table's header; a copy from another table than t only
   * sends the walk to a wrong chain (a miss) or fails the bound check. */
  size_t i = h & __atomic_load_n(&s->mask_hint, __ATOMIC_RELAXED);
  be__cache_table *t = __atomic_load_n(&s->table, __ATOMIC_ACQUIRE);
  struct be_cache_entry *e = i <= t->mask ? __atomic_load_n(&t->slot[i], __ATOMIC_ACQUIRE) : NULL;
  while (e && !(e->klen == klen && be__cache_key_eq(e->data, key, klen)))
    e = __atomic_load_n(&e->hnext, __ATOMIC_ACQUIRE);
  return e && be__cache_servable(c, e, now) ? e : NULL;
}

static inline void be__cache_count_unlocked_hit(be_cache *c, const be__ebr_reader *r) {
  _Atomic uint64_t *hits = &c->stripes[r->index].hits; /* this thread is its only writer */
  atomic_store_explicit(hits, atomic_load_explicit(hits, memory_order_relaxed) + 1,
                        memory_order_relaxed);
}

/* A hit without the shard lock: a new reference to key's entry, or NULL
 * when the locked path must decide. */
static inline __attribute__((always_inline)) struct be_cache_entry *
be__cache_get_unlocked(be_cache *c, be__cache_shard *s, uint64_t h, const void *key, size_t klen,
                       int64_t now) {
  be__ebr_reader *r = be__cache_unlocked_reader(c);
  if (r == NULL) return NULL;
  be__ebr_enter(r);
  struct be_cache_entry *e = be__cache_find_unlocked(c, s, h, key, klen, now);
  /* The table's reference is dropped only after this section ends (it
   * waits for reclamation), so refs >= 1 here and ours keeps e alive. */
  if (e) atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
  be__ebr_exit(r);
  if (e) be__cache_count_unlocked_hit(c, r);
  return e;
}

/* ---- cache_prefix.c ---- */

/* The bits of the registered prefixes key starts with. */
uint8_t be__cache_prefix_mask(be_cache *c, const void *key, size_t klen);

/* ---- cache_reclaim.c ---- */

/* Run eviction callbacks for removed entries and retire them (their
 * table reference is dropped once no lock-free reader can see them);
 * also reclaims retired tables. Call with no lock held, after every
 * change, grave NULL or not. */
void be__cache_bury(be_cache *c, struct be_cache_entry *grave);
/* A kept spare block of exactly size bytes, or NULL. */
struct be_cache_entry *be__cache_spare_take(be_cache *c, size_t size);
/* Free every spare block (stats, so memory_bytes holds no spares; free). */
void be__cache_spares_drop(be_cache *c);
/* Queue a replaced table until no lock-free reader can be in it. */
void be__cache_retire_table(be_cache *c, be__cache_table *t);
/* Free retired entries and tables no lock-free reader can still see;
 * with all set, every one (no reader can exist: be_cache_free). */
void be__cache_reclaim(be_cache *c, int all);

#endif
