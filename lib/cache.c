/* SPDX-License-Identifier: MIT */
/* The cache proper: sharded chained hash tables with an intrusive LRU list
 * per shard, bounds, lazy expiry with an amortised sweep, prefix
 * invalidation and stats. Single-flight loading is in cache_load.c. */
#include <backend/cache.h>
#include <backend/error.h>

#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "cache.h"
#include "clock.h"
#include "ebr.h"
#include "error.h"
#include "versioned.h"

#define DEFAULT_SHARDS 16u
#define MAX_SHARDS 1024u
#define DEFAULT_SWEEP 4u
#define INITIAL_BUCKETS 16u
#define RECLAIM_BATCH 64u   /* retired entries that trigger a reclamation pass */
#define RECLAIM_BYTES (256u << 10) /* or retired bytes: large values are not left waiting */
#define STRIPES_MEM (BE__CACHE_STRIPES * sizeof(struct be__cache_stripe) + 64)
#define NEVER INT64_MAX

enum { DEAD_NO = 0, DEAD_EXPIRED = BE_CACHE_EVICT_EXPIRED, DEAD_INVALIDATED = BE_CACHE_EVICT_INVALIDATED };

typedef struct be_cache_entry entry;

/* ---- hashing: 8 bytes at a time, 128-bit multiply folding (wyhash-like) ---- */

static inline uint64_t mix(uint64_t a, uint64_t b) {
  __uint128_t r = (__uint128_t)a * b;
  return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t hash_of(const be_cache *c, const void *key, size_t n) {
  const unsigned char *p = key;
  uint64_t h = c->seed ^ ((uint64_t)n * UINT64_C(0x9e3779b97f4a7c15));
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    h = mix(h ^ w, UINT64_C(0xa0761d6478bd642f));
    p += 8;
    n -= 8;
  }
  uint64_t w = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  /* The same value as memcpy(&w, p, n), without a call for variable n. */
  if (n >= 4) {
    uint32_t lo, hi;
    memcpy(&lo, p, 4);
    memcpy(&hi, p + n - 4, 4);
    w = (uint64_t)lo | ((uint64_t)hi >> (8 * (8 - n))) << 32;
  } else if (n) {
    w = p[0];
    if (n > 1) w |= (uint64_t)p[1] << 8;
    if (n > 2) w |= (uint64_t)p[2] << 16;
  }
#else
  if (n) memcpy(&w, p, n);
#endif
  h = mix(h ^ w ^ UINT64_C(0xe7037ed1a0b428db), UINT64_C(0x8ebc6af09c88c6e3));
  return mix(h, UINT64_C(0x589965cc75374cc3));
}

uint64_t be__cache_hash(const be_cache *c, const void *key, size_t n) { return hash_of(c, key, n); }

static inline be__cache_shard *shard_of(be_cache *c, uint64_t h) {
  return &c->shards[c->shard_bits ? (size_t)(h >> (64 - c->shard_bits)) : 0];
}

be__cache_shard *be__cache_shard_of(be_cache *c, uint64_t h) { return shard_of(c, h); }

static inline unsigned char *ekey(entry *e) { return e->data; }
static inline unsigned char *eval(entry *e) { return e->data + e->klen; }

/* Header + key + value + the worst-case hash-table share: the table grows
 * when the load passes 1, so it holds at most two bucket pointers per
 * entry until entries are removed (be_cache_clear shrinks it). */
static inline uint64_t charge_of(size_t klen, size_t vlen) {
  return (uint64_t)BE__ENTRY_HDR + klen + vlen + 2 * sizeof(void *);
}

int64_t be_cache_charge(size_t klen, size_t vlen) {
  if (klen > BE_CACHE_MAX_KEY || vlen > UINT32_MAX - BE__ENTRY_HDR - klen) return 0;
  return (int64_t)charge_of(klen, vlen);
}

static inline uint64_t echarge(const entry *e) { return charge_of(e->klen, e->vlen); }

entry *be__cache_entry_new(const void *key, size_t klen, const void *value, size_t vlen) {
  entry *e = be__malloc(BE__ENTRY_HDR + klen + vlen);
  if (e == NULL) return NULL;
  e->hnext = e->prev = e->next = NULL;
  e->expires = NEVER;
  e->epoch = 0;
  atomic_init(&e->refs, 1);
  e->klen = (uint16_t)klen;
  e->vlen = (uint32_t)vlen;
  e->flags = 0;
  e->pmask = 0;
  if (klen) memcpy(e->data, key, klen);
  if (vlen) memcpy(e->data + klen, value, vlen);
  return e;
}

void be__cache_entry_unref(entry *e) {
  if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1) be__free(e);
}

/* ---- time, jitter ---- */

static inline uint64_t rng_next(be__cache_shard *s) { /* splitmix64 */
  uint64_t z = (s->rng += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

/* Absolute expiry for a TTL argument; ttl < 0 never, 0 the default. */
static int64_t expiry_for(be_cache *c, be__cache_shard *s, int64_t ttl, int64_t now) {
  if (ttl == BE_CACHE_TTL_DEFAULT) ttl = c->default_ttl;
  if (ttl <= 0) return NEVER;
  if (c->jitter_pct > 0) {
    /* Jitter only shortens: a TTL is a promise about staleness. */
    uint64_t span = (uint64_t)(ttl / 100) * (uint64_t)c->jitter_pct +
                    (uint64_t)(ttl % 100) * (uint64_t)c->jitter_pct / 100;
    if (span > 0) ttl -= (int64_t)(rng_next(s) % (span + 1));
    if (ttl < 1) ttl = 1;
  }
  if (now > NEVER - ttl) return NEVER;
  return now + ttl;
}

/* ---- dead entries: expired or older than a registered prefix's invalidation ---- */

/* 1 when a registered prefix of the entry (bits pmask) was invalidated
 * after it was stored. Every invalidation epoch is at most the cache
 * epoch, so an entry stamped with the current epoch has outlived none:
 * one load instead of one per prefix bit on the hit path. */
static inline int prefix_dead(be_cache *c, const entry *e, unsigned pmask) {
  if (pmask == 0 || e->epoch == atomic_load_explicit(&c->epoch, memory_order_acquire)) return 0;
  for (unsigned m = pmask; m; m &= m - 1) {
    unsigned i = (unsigned)__builtin_ctz(m);
    uint64_t inval = atomic_load_explicit(&c->prefixes[i].inval_epoch, memory_order_acquire);
    if (inval > e->epoch) return 1;
  }
  return 0;
}

static inline int entry_dead(be_cache *c, const entry *e, int64_t *now) {
  if (prefix_dead(c, e, e->pmask)) return DEAD_INVALIDATED;
  if (e->expires != NEVER) {
    if (*now == INT64_MIN) *now = be__clock_coarse_ns(c->clock);
    if (*now >= e->expires) return DEAD_EXPIRED;
  }
  return DEAD_NO;
}

/* ---- LRU list ---- */

static inline void lru_unlink(be__cache_shard *s, entry *e) {
  if (e->prev) e->prev->next = e->next; else s->head = e->next;
  if (e->next) e->next->prev = e->prev; else s->tail = e->prev;
  e->prev = e->next = NULL;
}

static inline void lru_push_head(be__cache_shard *s, entry *e) {
  e->prev = NULL;
  e->next = s->head;
  if (s->head) s->head->prev = e; else s->tail = e;
  s->head = e;
}

void be__cache_bump_locked(be__cache_shard *s, entry *e) {
  if (s->head == e) return; /* saves the neighbours' cache lines on hot keys */
  lru_unlink(s, e);
  lru_push_head(s, e);
}

/* ---- what lock-free readers see (get_copy_unlocked) ----
 * Chain heads, hnext, flags and pmask are written with atomic stores, and
 * an entry's other fields are fixed before a release store links it. An
 * unlinked entry's hnext is never written again, and unlinked entries and
 * replaced tables are freed only after every reader that was inside then
 * has left (ebr). So every entry a reader reaches was in the table at
 * some moment during its walk, and a hit it finds was the key's value at
 * that moment: linearizable without a seqlock. A walk confused by a
 * concurrent change can only miss, and misses go to the locked path. */

static inline void set_flags(entry *e, uint8_t f) { __atomic_store_n(&e->flags, f, __ATOMIC_RELAXED); }

static size_t table_size(size_t nslots) {
  return offsetof(be__cache_table, slot) + nslots * sizeof(entry *);
}

static be__cache_table *table_new(size_t nslots) {
  be__cache_table *t = be__calloc(1, table_size(nslots));
  if (t) t->mask = nslots - 1;
  return t;
}

static void publish_table(be__cache_shard *s, be__cache_table *t) {
  __atomic_store_n(&s->table, t, __ATOMIC_RELEASE);
  __atomic_store_n(&s->mask_hint, t->mask, __ATOMIC_RELAXED);
}

/* ---- reclamation: removed entries and replaced tables wait until no
 * lock-free reader can still be looking at them (lib/ebr.h) ---- */

static uint64_t entry_block(const entry *e) { return BE__ENTRY_HDR + e->klen + e->vlen; }

/* Queue the entries first..last (linked by next) whose table reference is
 * to be dropped. Takes the retire epoch after they were unlinked. */
static void retire_entries(be_cache *c, entry *first, entry *last) {
  uint32_t n = 0;
  uint64_t bytes = 0;
  pthread_mutex_lock(&c->retire_mu);
  uint64_t epoch = be__ebr_retire_epoch();
  for (entry *e = first; e; e = e->next) {
    e->retired_epoch = epoch;
    n++;
    bytes += entry_block(e);
  }
  if (c->retired_tail) c->retired_tail->next = first; else c->retired_head = first;
  c->retired_tail = last;
  c->retired_count += n;
  c->retired_bytes += bytes;
  int full = c->retired_count >= RECLAIM_BATCH || c->retired_bytes >= RECLAIM_BYTES;
  pthread_mutex_unlock(&c->retire_mu);
  if (full) be__cache_reclaim(c);
}

static void retire_table(be_cache *c, be__cache_table *t) {
  pthread_mutex_lock(&c->retire_mu);
  t->retired_epoch = be__ebr_retire_epoch();
  t->retired_next = c->retired_tables;
  c->retired_tables = t;
  c->retired_bytes += table_size(t->mask + 1);
  /* Old tables add up to the new one's size: free them at the next bury
   * rather than waiting for RECLAIM_BATCH entries. */
  atomic_store_explicit(&c->tables_retired, 1, memory_order_relaxed);
  pthread_mutex_unlock(&c->retire_mu);
}

/* Free what no reader can reach any more; everything when all is set (no
 * reader can exist: be_cache_free). */
static void reclaim(be_cache *c, int all) {
  pthread_mutex_lock(&c->retire_mu);
  int pending = c->retired_head || c->retired_tables;
  pthread_mutex_unlock(&c->retire_mu);
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
  pthread_mutex_lock(&c->retire_mu);
  while (c->retired_head && c->retired_head->retired_epoch <= safe) {
    entry *e = c->retired_head;
    c->retired_head = e->next;
    c->retired_count--;
    c->retired_bytes -= entry_block(e);
    e->next = dead;
    dead = e;
  }
  if (c->retired_head == NULL) c->retired_tail = NULL;
  for (be__cache_table **l = &c->retired_tables; *l;) {
    be__cache_table *t = *l;
    if (t->retired_epoch <= safe) {
      *l = t->retired_next;
      c->retired_bytes -= table_size(t->mask + 1);
      t->retired_next = dead_tables;
      dead_tables = t;
    } else {
      l = &t->retired_next;
    }
  }
  /* After the pass: once the last table is freed, burying nothing stops
   * calling in here (and taking retire_mu) on every write. */
  if (c->retired_tables == NULL) atomic_store_explicit(&c->tables_retired, 0, memory_order_relaxed);
  pthread_mutex_unlock(&c->retire_mu);
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

void be__cache_reclaim(be_cache *c) { reclaim(c, 0); }

/* The chain head for hash h; the shard lock is held, so mask_hint equals
 * table->mask, and it is loaded in parallel with the table pointer
 * instead of after it. */
static inline entry **slot_locked(be__cache_shard *s, uint64_t h) {
  return &s->table->slot[h & s->mask_hint];
}

/* ---- removal ---- */

/* Unlink e (whose chain link is *link, or found by hashing when NULL) and
 * queue it on *grave with its reason; counts it by reason. */
static void remove_entry(be_cache *c, be__cache_shard *s, entry *e, entry **link,
                         int reason, entry **grave) {
  if (link == NULL) {
    link = slot_locked(s, be__cache_hash(c, ekey(e), e->klen));
    while (*link != e) link = &(*link)->hnext;
  }
  __atomic_store_n(link, e->hnext, __ATOMIC_RELEASE); /* e->hnext itself stays as it is */
  lru_unlink(s, e);
  s->count--;
  s->bytes -= echarge(e);
  switch (reason) {
    case BE_CACHE_EVICT_SIZE: s->ev_size++; break;
    case BE_CACHE_EVICT_COUNT: s->ev_count++; break;
    case BE_CACHE_EVICT_EXPIRED: s->expirations++; break;
    case BE_CACHE_EVICT_INVALIDATED: s->invalidations++; break;
    default: s->replacements++; break;
  }
  set_flags(e, (uint8_t)((e->flags & 0x0f) | (reason << 4)));
  e->next = *grave;
  *grave = e;
}

void be__cache_bury(be_cache *c, entry *grave) {
  if (grave == NULL) {
    if (atomic_load_explicit(&c->tables_retired, memory_order_relaxed)) be__cache_reclaim(c);
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
        c->on_evict(ekey(e), e->klen, eval(e), e->vlen, e->flags >> 4, c->evict_ud);
  retire_entries(c, ordered, last);
}

/* ---- lookup ---- */

/* memcmp(a, b, n) == 0, inline for keys up to 16 bytes: two (possibly
 * overlapping) word loads per side instead of a call. */
static inline int key_eq(const unsigned char *a, const unsigned char *b, size_t n) {
  if (n >= 8) {
    if (n > 16) return memcmp(a, b, n) == 0;
    uint64_t a0, a1, b0, b1;
    memcpy(&a0, a, 8);
    memcpy(&b0, b, 8);
    memcpy(&a1, a + n - 8, 8);
    memcpy(&b1, b + n - 8, 8);
    return ((a0 ^ b0) | (a1 ^ b1)) == 0;
  }
  if (n >= 4) {
    uint32_t a0, a1, b0, b1;
    memcpy(&a0, a, 4);
    memcpy(&b0, b, 4);
    memcpy(&a1, a + n - 4, 4);
    memcpy(&b1, b + n - 4, 4);
    return ((a0 ^ b0) | (a1 ^ b1)) == 0;
  }
  for (size_t i = 0; i < n; i++)
    if (a[i] != b[i]) return 0;
  return 1;
}

static inline entry **find_link(be__cache_shard *s, uint64_t h, const void *key, size_t klen) {
  entry **link = slot_locked(s, h);
  for (entry *e = *link; e; link = &e->hnext, e = e->hnext)
    if (e->klen == klen && key_eq(e->data, key, klen)) return link;
  return NULL;
}

/* Inlined into the read paths of this file; cache_load.c calls the
 * exported wrapper below. */
static inline entry *lookup_locked(be_cache *c, be__cache_shard *s, uint64_t h, const void *key,
                                   size_t klen, int64_t now, entry **grave) {
  entry **link = find_link(s, h, key, klen);
  if (link == NULL) return NULL;
  entry *e = *link;
  int dead = entry_dead(c, e, &now);
  if (dead) {
    remove_entry(c, s, e, link, dead, grave);
    return NULL;
  }
  return e;
}

entry *be__cache_lookup_locked(be_cache *c, be__cache_shard *s, uint64_t h, const void *key,
                               size_t klen, int64_t now, entry **grave) {
  return lookup_locked(c, s, h, key, klen, now, grave);
}

/* ---- insertion, bounds, sweep ---- */

static void grow(be_cache *c, be__cache_shard *s) {
  be__cache_table *old = s->table;
  size_t n = (old->mask + 1) * 2;
  be__cache_table *t = table_new(n);
  if (t == NULL) return; /* keep the old table: longer chains, still correct */
  /* Live entries move to new chains; a reader meeting one mid-walk may
   * miss (and take the locked path) but only meets live entries. */
  for (size_t i = 0; i <= old->mask; i++) {
    entry *e = old->slot[i];
    while (e) {
      entry *next = e->hnext;
      size_t b = be__cache_hash(c, ekey(e), e->klen) & (n - 1);
      __atomic_store_n(&e->hnext, t->slot[b], __ATOMIC_RELEASE);
      t->slot[b] = e;
      e = next;
    }
  }
  publish_table(s, t);
  retire_table(c, old);
}

static size_t sweep_shard(be_cache *c, be__cache_shard *s, size_t nbuckets, entry **grave) {
  size_t removed = 0;
  int64_t now = INT64_MIN;
  if (nbuckets > s->table->mask + 1) nbuckets = s->table->mask + 1;
  for (size_t i = 0; i < nbuckets; i++) {
    entry **link = &s->table->slot[s->sweep_cursor & s->table->mask];
    s->sweep_cursor++;
    while (*link) {
      entry *e = *link;
      int dead = entry_dead(c, e, &now);
      if (dead) {
        remove_entry(c, s, e, link, dead, grave);
        removed++;
      } else {
        link = &e->hnext;
      }
    }
  }
  return removed;
}

static uint8_t prefix_mask(be_cache *c, const void *key, size_t klen) {
  uint32_t n = atomic_load_explicit(&c->nprefixes, memory_order_acquire);
  uint8_t m = 0;
  for (uint32_t i = 0; i < n; i++) {
    const be__cache_prefix *p = &c->prefixes[i];
    if (p->len <= klen && memcmp(p->bytes, key, p->len) == 0) m |= (uint8_t)(1u << i);
  }
  return m;
}

int be__cache_fits(const be__cache_shard *s, uint64_t charge) { return charge <= s->max_bytes; }

void be__cache_insert_locked(be_cache *c, be__cache_shard *s, uint64_t h, entry *e,
                             int64_t ttl, uint64_t epoch, entry **grave) {
  int64_t now = be__clock_coarse_ns(c->clock);
  e->expires = expiry_for(c, s, ttl, now);
  if (e->expires != NEVER && !atomic_load_explicit(&c->expiring, memory_order_relaxed))
    atomic_store_explicit(&c->expiring, 1, memory_order_relaxed);
  e->epoch = epoch;
  e->pmask = prefix_mask(c, ekey(e), e->klen);
  entry **link = find_link(s, h, ekey(e), e->klen);
  if (link) {
    entry *old = *link;
    int dead = entry_dead(c, old, &now);
    remove_entry(c, s, old, link, dead ? dead : BE_CACHE_EVICT_REPLACED, grave);
  }
  if (!c->lru_exact) {
    /* CLOCK: make room before linking e, so the scan never meets it. Tail
     * entries read since their last chance go to the front unmarked; the
     * first unmarked (or dead) one goes. Every step removes an entry or
     * clears a mark, so the scan ends; hits never paid for reordering. */
    uint64_t ch = echarge(e); /* <= max_bytes: be__cache_fits */
    while (s->tail && (s->count >= s->max_count || s->bytes > s->max_bytes - ch)) {
      entry *v = s->tail;
      int dead = entry_dead(c, v, &now);
      if (!dead && (v->flags & BE__ENTRY_REF)) {
        set_flags(v, (uint8_t)(v->flags & ~BE__ENTRY_REF));
        lru_unlink(s, v);
        lru_push_head(s, v);
        continue;
      }
      if (!dead) dead = s->count >= s->max_count ? BE_CACHE_EVICT_COUNT : BE_CACHE_EVICT_SIZE;
      remove_entry(c, s, v, NULL, dead, grave);
    }
  }
  if (s->count >= s->table->mask + 1) grow(c, s);
  entry **b = slot_locked(s, h);
  e->hnext = *b;
  __atomic_store_n(b, e, __ATOMIC_RELEASE); /* publishes e's fields to lock-free readers */
  lru_push_head(s, e);
  s->count++;
  s->bytes += echarge(e);
  s->inserts++;
  while (s->count > s->max_count || s->bytes > s->max_bytes) { /* exact mode only */
    entry *v = s->tail; /* never e: e alone fits (be__cache_fits) and count >= 1 */
    int dead = entry_dead(c, v, &now);
    if (!dead) dead = s->count > s->max_count ? BE_CACHE_EVICT_COUNT : BE_CACHE_EVICT_SIZE;
    remove_entry(c, s, v, NULL, dead, grave);
  }
  if (c->sweep_batch) sweep_shard(c, s, c->sweep_batch, grave);
}

void be__cache_flights_stale_locked(be__cache_shard *s, const void *key, size_t klen,
                                    int prefix) {
  for (be__cache_flight *f = s->flights; f; f = f->next) {
    if (prefix ? (f->klen >= klen && memcmp(f->key, key, klen) == 0)
               : (f->klen == klen && memcmp(f->key, key, klen) == 0))
      f->stale = 1;
  }
}

/* ---- public API ---- */

/* Bytes of be_cache_options that a caller of each version has. */
static size_t options_size(uint32_t version) {
  switch (version) {
    case 1: return offsetof(be_cache_options, lru_mode);
    case 2: return sizeof(be_cache_options);
    default: return 0;
  }
}

int be_cache_options_init(be_cache_options *o, uint32_t version) {
  size_t n = options_size(version);
  if (o == NULL || n == 0) return BE_E_MISUSE;
  be_cache_options init = BE_CACHE_OPTIONS_INIT;
  init.version = version;
  memcpy(o, &init, n); /* an older caller's struct is shorter */
  return BE_OK;
}

/* The first cache-line boundary in a block allocated 64 bytes larger
 * than needed (be__malloc aligns to 16 only). */
static void *align_line(void *mem) { return (void *)(((uintptr_t)mem + 63) & ~(uintptr_t)63); }

static uint32_t pow2_at_least(uint32_t n) {
  uint32_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

/* BE_OK when every value of o is in range, else a validation error naming it. */
static int check_options(const be_cache_options *o, be_error **err) {
  if (o->max_entries < 0) return be__error_field(err, "max_entries", "must be >= 0 (0 = no bound)");
  if (o->max_bytes < 0) return be__error_field(err, "max_bytes", "must be >= 0 (0 = no bound)");
  if (o->default_ttl_ms < 0)
    return be__error_field(err, "default_ttl_ms", "must be >= 0 (0 = no expiry)");
  if (o->negative_ttl_ms < 0)
    return be__error_field(err, "negative_ttl_ms", "must be >= 0 (0 = off)");
  if (o->ttl_jitter_pct < 0 || o->ttl_jitter_pct > 100)
    return be__error_field(err, "ttl_jitter_pct", "must be between 0 and 100");
  if (o->lru_mode != BE_CACHE_LRU_DEFAULT && o->lru_mode != BE_CACHE_LRU_EXACT &&
      o->lru_mode != BE_CACHE_LRU_APPROX)
    return be__error_field(err, "lru_mode", "must be BE_CACHE_LRU_DEFAULT, _EXACT or _APPROX");
  return BE_OK;
}

int be_cache_new(be_cache **out, const be_cache_options *opts, be_error **err) {
  uint32_t made = 0; /* shards initialised; the oom path may be reached before the loop */
  if (out == NULL) return be__error_set(err, BE_E_MISUSE, "be_cache_new: out is NULL");
  *out = NULL;
  be_cache_options o = BE_CACHE_OPTIONS_INIT;
  if (opts != NULL) {
    size_t n = options_size(opts->version);
    if (n == 0)
      return be__error_set(err, BE_E_MISUSE, "unknown be_cache_options version %u",
                           (unsigned)opts->version);
    memcpy(&o, opts, n); /* fields a version-1 caller lacks keep their defaults */
  }
  int rc = check_options(&o, err);
  if (rc != BE_OK) return rc;

  uint32_t n = o.shard_count ? o.shard_count : DEFAULT_SHARDS;
  if (n > MAX_SHARDS) n = MAX_SHARDS;
  n = pow2_at_least(n);
  while (n > 1 && o.max_entries && o.max_entries < (int64_t)n) n >>= 1;

  be_cache *c = be__calloc(1, sizeof *c);
  if (c == NULL) return be__error_oom(err);
  c->shards_mem_size = (size_t)n * sizeof(be__cache_shard) + 64;
  c->shards_mem = be__calloc(1, c->shards_mem_size);
  if (c->shards_mem == NULL) goto oom;
  c->shards = align_line(c->shards_mem);
  c->nshards = n;
  while ((1u << c->shard_bits) < n) c->shard_bits++;
  c->seed = o.seed ? o.seed
                   : (uint64_t)be_clock_now_ns(NULL) ^ (uint64_t)(uintptr_t)c ^
                         UINT64_C(0x2545f4914f6cdd1d);
  c->default_ttl = be__ms_to_ns(o.default_ttl_ms);
  c->negative_ttl = be__ms_to_ns(o.negative_ttl_ms);
  c->jitter_pct = o.ttl_jitter_pct;
  c->sweep_batch = o.sweep_batch < 0 ? 0 : o.sweep_batch == 0 ? DEFAULT_SWEEP : (uint32_t)o.sweep_batch;
  c->lru_exact = o.lru_mode == BE_CACHE_LRU_EXACT;
  c->clock = o.clock;
  c->on_evict = o.on_evict;
  c->evict_ud = o.evict_user_data;
  atomic_init(&c->nprefixes, 0);
  atomic_init(&c->epoch, 0);
  atomic_init(&c->expiring, 0);
  atomic_init(&c->tables_retired, 0);
  for (uint32_t i = 0; i < BE_CACHE_MAX_PREFIXES; i++) {
    atomic_init(&c->prefixes[i].inval_epoch, 0);
    atomic_init(&c->prefixes[i].ready, 0);
  }

  c->stripes_mem = be__calloc(1, STRIPES_MEM);
  if (c->stripes_mem == NULL) goto oom;
  c->stripes = align_line(c->stripes_mem);
  for (uint32_t i = 0; i < BE__CACHE_STRIPES; i++) atomic_init(&c->stripes[i].hits, 0);

  for (; made < n; made++) {
    be__cache_shard *s = &c->shards[made];
    be__cache_table *t = table_new(INITIAL_BUCKETS);
    if (t == NULL) goto oom;
    publish_table(s, t);
    uint64_t i = made;
    uint64_t me = (uint64_t)o.max_entries, mb = (uint64_t)o.max_bytes; /* checked >= 0 */
    s->max_count = me ? me / n + (i < me % n) : UINT64_MAX;
    s->max_bytes = mb ? mb / n + (i < mb % n) : UINT64_MAX;
    s->rng = c->seed ^ (i * UINT64_C(0xd1342543de82ef95));
    atomic_init(&s->lock.held, 0u);
  }
  if (pthread_mutex_init(&c->reg_mu, NULL) != 0) goto oom;
  if (pthread_mutex_init(&c->retire_mu, NULL) != 0) {
    pthread_mutex_destroy(&c->reg_mu);
    goto oom;
  }
  *out = c;
  return BE_OK;

oom:
  if (c->shards_mem) {
    for (uint32_t i = 0; i < made; i++) be__free(c->shards[i].table);
    be__free(c->shards_mem);
  }
  be__free(c->stripes_mem);
  be__free(c);
  return be__error_oom(err);
}

void be_cache_free(be_cache *c) {
  if (c == NULL) return;
  for (uint32_t i = 0; i < c->nshards; i++) {
    be__cache_shard *s = &c->shards[i];
    entry *e = s->head;
    while (e) {
      entry *n = e->next;
      be__cache_entry_unref(e);
      e = n;
    }
    be__free(s->table);
  }
  reclaim(c, 1); /* no reader can be inside: the caller owns the cache now */
  pthread_mutex_destroy(&c->retire_mu);
  be__free(c->stripes_mem);
  uint32_t np = atomic_load(&c->nprefixes);
  for (uint32_t i = 0; i < np; i++) be__free(c->prefixes[i].bytes);
  pthread_mutex_destroy(&c->reg_mu);
  be__free(c->shards_mem);
  be__free(c);
}

static int check_ttl(int64_t ttl) { return ttl >= BE_CACHE_TTL_FOREVER; }

int be_cache_set(be_cache *c, const void *key, size_t klen, const void *value, size_t vlen,
                 int64_t ttl, be_error **err) {
  if (c == NULL || (key == NULL && klen) || (value == NULL && vlen))
    return be__error_set(err, BE_E_MISUSE, "be_cache_set: NULL cache, key or value");
  if (!check_ttl(ttl)) return be__error_field(err, "ttl_ms", "must be > 0, 0 (default) or -1 (forever)");
  uint64_t charge = be_cache_charge(klen, vlen);
  if (charge == 0)
    return be__error_field(err, klen > BE_CACHE_MAX_KEY ? "key" : "value", "too long");
  uint64_t h = hash_of(c, key, klen);
  be__cache_shard *s = shard_of(c, h);
  if (!be__cache_fits(s, charge))
    return be__error_field(err, "value",
                           "entry of %llu bytes exceeds the shard's byte bound of %llu",
                           (unsigned long long)charge, (unsigned long long)s->max_bytes);
  entry *e = be__cache_entry_new(key, klen, value, vlen);
  if (e == NULL) return be__error_oom(err);
  entry *grave = NULL;
  be__spinlock_lock(&s->lock);
  if (s->flights) be__cache_flights_stale_locked(s, key, klen, 0);
  be__cache_insert_locked(c, s, h, e, be__cache_ttl_ns(ttl), atomic_load(&c->epoch), &grave);
  be__spinlock_unlock(&s->lock);
  be__cache_bury(c, grave);
  return BE_OK;
}

/* The BE_E_NOT_FOUND of a lookup: no allocation when err is NULL (the hot path). */
static int miss(be_error **err) {
  return err ? be__error_set(err, BE_E_NOT_FOUND, "no live entry for the key") : BE_E_NOT_FOUND;
}

int be_cache_get(be_cache_entry **out, be_cache *c, const void *key, size_t klen,
                 be_error **err) {
  if (out == NULL) return be__error_set(err, BE_E_MISUSE, "be_cache_get: out is NULL");
  *out = NULL;
  if (c == NULL || (key == NULL && klen))
    return be__error_set(err, BE_E_MISUSE, "be_cache_get: NULL cache or key");
  uint64_t h = hash_of(c, key, klen);
  be__cache_shard *s = shard_of(c, h);
  entry *grave = NULL;
  int64_t now = be__cache_lookup_now(c);
  if ((*out = be__cache_get_unlocked(c, s, h, key, klen, now)) != NULL) return BE_OK;
  be__cache_lock_for(s, h);
  entry *e = lookup_locked(c, s, h, key, klen, now, &grave);
  if (e && !(e->flags & BE__ENTRY_NEGATIVE)) {
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
    be__cache_touch_locked(c, s, e);
    s->hits++;
  } else {
    e = NULL;
    s->misses++;
  }
  be__spinlock_unlock(&s->lock);
  if (grave) be__cache_bury(c, grave);
  *out = e;
  return e ? BE_OK : miss(err);
}

/* memcpy(d, s, n) for distinct buffers, inline up to 64 bytes with
 * overlapping fixed-size moves (the usual small value), else a call. */
static inline void copy_value(void *dst, const unsigned char *src, size_t n) {
  unsigned char *d = dst;
  if (n >= 16) {
    if (n > 64) {
      memcpy(d, src, n);
    } else if (n > 32) {
      unsigned char t0[16], t1[16], t2[16], t3[16];
      memcpy(t0, src, 16);
      memcpy(t1, src + 16, 16);
      memcpy(t2, src + n - 32, 16);
      memcpy(t3, src + n - 16, 16);
      memcpy(d, t0, 16);
      memcpy(d + 16, t1, 16);
      memcpy(d + n - 32, t2, 16);
      memcpy(d + n - 16, t3, 16);
    } else {
      unsigned char t0[16], t1[16];
      memcpy(t0, src, 16);
      memcpy(t1, src + n - 16, 16);
      memcpy(d, t0, 16);
      memcpy(d + n - 16, t1, 16);
    }
  } else if (n >= 8) {
    uint64_t a, b;
    memcpy(&a, src, 8);
    memcpy(&b, src + n - 8, 8);
    memcpy(d, &a, 8);
    memcpy(d + n - 8, &b, 8);
  } else if (n >= 4) {
    uint32_t a, b;
    memcpy(&a, src, 4);
    memcpy(&b, src + n - 4, 4);
    memcpy(d, &a, 4);
    memcpy(d + n - 4, &b, 4);
  } else {
    for (size_t i = 0; i < n; i++) d[i] = src[i];
  }
}

/* A hit the lock-free path may serve: marked referenced already (so
 * recency needs no write), positive, alive by the prefix epochs and the
 * clock. Anything else goes to the locked path, which also removes it if
 * dead. Reads only fields fixed before the entry was published, plus
 * flags and pmask atomically. */
static inline int servable(be_cache *c, entry *e, int64_t now) {
  uint8_t f = __atomic_load_n(&e->flags, __ATOMIC_RELAXED);
  if ((f & (BE__ENTRY_REF | BE__ENTRY_NEGATIVE)) != BE__ENTRY_REF) return 0;
  if (prefix_dead(c, e, __atomic_load_n(&e->pmask, __ATOMIC_RELAXED))) return 0;
  /* The clock was read before the read section: a custom clock's callback
   * must not run inside one (it could use the cache). */
  return e->expires == NEVER || (now != INT64_MIN && now < e->expires);
}

/* ---- hits without the shard lock (approximate-LRU caches) ----
 * The chain is walked inside an ebr read section, so nothing met can be
 * freed (see "what lock-free readers see" above), and nothing shared is
 * written: the hit is counted in this thread's stripe. Only hits on
 * servable entries are taken; everything else (a miss, an entry not yet
 * marked referenced, dead or negative, a value too large for the buffer)
 * goes to the locked path. */

/* This thread's reader slot when it may read without the lock. */
static inline be__ebr_reader *unlocked_reader(const be_cache *c) {
  if (c->lru_exact) return NULL; /* every hit moves the entry: needs the lock */
  be__ebr_reader *r = be__ebr_self();
  return r && r->index < BE__CACHE_STRIPES ? r : NULL;
}

/* Inside a read section: key's servable entry or NULL. */
static inline entry *find_unlocked(be_cache *c, be__cache_shard *s, uint64_t h,
                                   const void *key, size_t klen, int64_t now) {
  /* The slot's address from the shard's mask copy, so its load need not
   * wait for the table's header; a copy from another table than t only
   * sends the walk to a wrong chain (a miss) or fails the bound check. */
  size_t i = h & __atomic_load_n(&s->mask_hint, __ATOMIC_RELAXED);
  be__cache_table *t = __atomic_load_n(&s->table, __ATOMIC_ACQUIRE);
  entry *e = i <= t->mask ? __atomic_load_n(&t->slot[i], __ATOMIC_ACQUIRE) : NULL;
  while (e && !(e->klen == klen && key_eq(e->data, key, klen)))
    e = __atomic_load_n(&e->hnext, __ATOMIC_ACQUIRE);
  return e && servable(c, e, now) ? e : NULL;
}

static inline void count_unlocked_hit(be_cache *c, const be__ebr_reader *r) {
  _Atomic uint64_t *hits = &c->stripes[r->index].hits; /* this thread is its only writer */
  atomic_store_explicit(hits, atomic_load_explicit(hits, memory_order_relaxed) + 1,
                        memory_order_relaxed);
}

static int get_copy_unlocked(be_cache *c, be__cache_shard *s, uint64_t h, const void *key,
                             size_t klen, int64_t now, void *buf, size_t cap, size_t *out_len) {
  be__ebr_reader *r = unlocked_reader(c);
  if (r == NULL) return 0;
  be__ebr_enter(r);
  entry *e = find_unlocked(c, s, h, key, klen, now);
  int ok = e && e->vlen <= cap;
  if (ok) {
    copy_value(buf, eval(e), e->vlen);
    *out_len = e->vlen;
  }
  be__ebr_exit(r);
  if (ok) count_unlocked_hit(c, r);
  return ok;
}

entry *be__cache_get_unlocked(be_cache *c, be__cache_shard *s, uint64_t h, const void *key,
                              size_t klen, int64_t now) {
  be__ebr_reader *r = unlocked_reader(c);
  if (r == NULL) return NULL;
  be__ebr_enter(r);
  entry *e = find_unlocked(c, s, h, key, klen, now);
  /* The table's reference is dropped only after this section ends (it
   * waits for reclamation), so refs >= 1 here and ours keeps e alive. */
  if (e) atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
  be__ebr_exit(r);
  if (e) count_unlocked_hit(c, r);
  return e;
}

int be_cache_get_copy(void *buf, size_t cap, size_t *out_len, be_cache *c, const void *key,
                      size_t klen, be_error **err) {
  if (out_len == NULL || c == NULL || (buf == NULL && cap) || (key == NULL && klen))
    return be__error_set(err, BE_E_MISUSE, "be_cache_get_copy: NULL out_len, cache, buf or key");
  uint64_t h = hash_of(c, key, klen);
  be__cache_shard *s = shard_of(c, h);
  entry *grave = NULL;
  int rc;
  int64_t now = be__cache_lookup_now(c);
  if (get_copy_unlocked(c, s, h, key, klen, now, buf, cap, out_len)) return BE_OK;
  be__cache_lock_for(s, h);
  entry *e = lookup_locked(c, s, h, key, klen, now, &grave);
  if (e && !(e->flags & BE__ENTRY_NEGATIVE)) {
    be__cache_touch_locked(c, s, e);
    s->hits++;
    *out_len = e->vlen;
    if (e->vlen <= cap) {
      copy_value(buf, eval(e), e->vlen);
      rc = BE_OK;
    } else {
      rc = BE_E_VALIDATION;
    }
  } else {
    s->misses++;
    rc = BE_E_NOT_FOUND;
  }
  be__spinlock_unlock(&s->lock);
  if (grave) be__cache_bury(c, grave);
  if (rc == BE_E_NOT_FOUND) return miss(err);
  if (rc == BE_E_VALIDATION)
    return be__error_field(err, "buf_size", "%zu bytes is too small for the value of %zu bytes",
                           cap, *out_len);
  return rc;
}

int be_cache_delete(be_cache *c, const void *key, size_t klen, be_error **err) {
  if (c == NULL || (key == NULL && klen))
    return be__error_set(err, BE_E_MISUSE, "be_cache_delete: NULL cache or key");
  uint64_t h = hash_of(c, key, klen);
  be__cache_shard *s = shard_of(c, h);
  entry *grave = NULL;
  int rc = BE_E_NOT_FOUND;
  be__spinlock_lock(&s->lock);
  if (s->flights) be__cache_flights_stale_locked(s, key, klen, 0);
  entry *e = lookup_locked(c, s, h, key, klen, INT64_MIN, &grave);
  if (e) {
    remove_entry(c, s, e, NULL, BE_CACHE_EVICT_INVALIDATED, &grave);
    rc = BE_OK;
  }
  be__spinlock_unlock(&s->lock);
  be__cache_bury(c, grave);
  return rc == BE_E_NOT_FOUND ? miss(err) : rc;
}

static int find_prefix(be_cache *c, const void *p, size_t plen) {
  uint32_t n = atomic_load_explicit(&c->nprefixes, memory_order_acquire);
  for (uint32_t i = 0; i < n; i++)
    if (c->prefixes[i].len == plen && memcmp(c->prefixes[i].bytes, p, plen) == 0) return (int)i;
  return -1;
}

static inline int has_prefix(entry *e, const void *p, size_t plen) {
  return e->klen >= plen && memcmp(e->data, p, plen) == 0;
}

int be_cache_register_prefix(be_cache *c, const void *prefix, size_t plen, be_error **err) {
  if (c == NULL || (prefix == NULL && plen))
    return be__error_set(err, BE_E_MISUSE, "be_cache_register_prefix: NULL cache or prefix");
  if (plen > BE_CACHE_MAX_KEY) return be__error_field(err, "prefix", "longer than any key");
  pthread_mutex_lock(&c->reg_mu);
  if (find_prefix(c, prefix, plen) >= 0) {
    pthread_mutex_unlock(&c->reg_mu);
    return BE_OK;
  }
  uint32_t i = atomic_load(&c->nprefixes);
  if (i == BE_CACHE_MAX_PREFIXES) {
    pthread_mutex_unlock(&c->reg_mu);
    return be__error_field(err, "prefix", "at most %d prefixes can be registered",
                           BE_CACHE_MAX_PREFIXES);
  }
  unsigned char *copy = be__memdup(prefix, plen);
  if (copy == NULL) {
    pthread_mutex_unlock(&c->reg_mu);
    return be__error_oom(err);
  }
  c->prefixes[i].bytes = copy;
  c->prefixes[i].len = plen;
  atomic_store(&c->prefixes[i].inval_epoch, 0);
  atomic_store(&c->prefixes[i].ready, 0);
  atomic_store_explicit(&c->nprefixes, i + 1, memory_order_release);
  /* Entries stored before the prefix existed get its bit now. A set that
   * computed its mask before the store above inserts under its shard lock
   * either before this pass visits the shard (and is marked here) or after
   * (and then it reads the new count itself, under that lock). */
  for (uint32_t k = 0; k < c->nshards; k++) {
    be__cache_shard *s = &c->shards[k];
    be__spinlock_lock(&s->lock);
    for (entry *e = s->head; e; e = e->next)
      if (has_prefix(e, prefix, plen))
        __atomic_store_n(&e->pmask, (uint8_t)(e->pmask | (1u << i)), __ATOMIC_RELAXED);
    be__spinlock_unlock(&s->lock);
  }
  /* Only now may an invalidation rely on the bits alone: until this
   * store it scans, since entries of shards not yet visited lack them. */
  atomic_store_explicit(&c->prefixes[i].ready, 1, memory_order_release);
  pthread_mutex_unlock(&c->reg_mu);
  return BE_OK;
}

int be_cache_invalidate_prefix(be_cache *c, const void *prefix, size_t plen, be_error **err) {
  if (c == NULL || (prefix == NULL && plen))
    return be__error_set(err, BE_E_MISUSE, "be_cache_invalidate_prefix: NULL cache or prefix");
  int idx = find_prefix(c, prefix, plen);
  if (idx >= 0 && atomic_load_explicit(&c->prefixes[idx].ready, memory_order_acquire)) {
    /* Entries (and loads) stamped with an epoch below the new one die. */
    uint64_t gen = atomic_fetch_add(&c->epoch, 1) + 1;
    atomic_store_explicit(&c->prefixes[idx].inval_epoch, gen, memory_order_release);
    return BE_OK;
  }
  for (uint32_t k = 0; k < c->nshards; k++) {
    be__cache_shard *s = &c->shards[k];
    entry *grave = NULL;
    int64_t now = INT64_MIN;
    be__spinlock_lock(&s->lock);
    if (s->flights) be__cache_flights_stale_locked(s, prefix, plen, 1);
    /* Oldest first, so callbacks come in a deterministic order. */
    for (entry *e = s->tail; e;) {
      entry *prev = e->prev;
      if (has_prefix(e, prefix, plen)) {
        int dead = entry_dead(c, e, &now);
        remove_entry(c, s, e, NULL, dead ? dead : BE_CACHE_EVICT_INVALIDATED, &grave);
      }
      e = prev;
    }
    be__spinlock_unlock(&s->lock);
    be__cache_bury(c, grave);
  }
  return BE_OK;
}

int be_cache_clear(be_cache *c, be_error **err) {
  if (c == NULL) return be__error_set(err, BE_E_MISUSE, "be_cache_clear: cache is NULL");
  for (uint32_t k = 0; k < c->nshards; k++) {
    be__cache_shard *s = &c->shards[k];
    entry *grave = NULL;
    be__spinlock_lock(&s->lock);
    for (be__cache_flight *f = s->flights; f; f = f->next) f->stale = 1;
    entry *list = s->head;
    uint64_t n = s->count;
    s->head = s->tail = NULL;
    for (entry *e = list; e;) { /* chains are dropped wholesale below */
      entry *next = e->next;
      set_flags(e, (uint8_t)((e->flags & 0x0f) | (BE_CACHE_EVICT_INVALIDATED << 4)));
      e->prev = NULL;
      e->next = grave;
      grave = e;
      e = next;
    }
    s->invalidations += n;
    s->count = 0;
    s->bytes = 0;
    /* A fresh small table; the old one is retired (readers may be in it). */
    be__cache_table *old = s->table, *t = table_new(INITIAL_BUCKETS);
    if (t) {
      publish_table(s, t);
    } else {
      for (size_t i = 0; i <= old->mask; i++) __atomic_store_n(&old->slot[i], NULL, __ATOMIC_RELAXED);
    }
    s->sweep_cursor = 0;
    be__spinlock_unlock(&s->lock);
    if (t) retire_table(c, old);
    be__cache_bury(c, grave);
  }
  return BE_OK;
}

int be_cache_sweep(int64_t *out_removed, be_cache *c, int64_t max_buckets, be_error **err) {
  if (out_removed) *out_removed = 0;
  if (c == NULL) return be__error_set(err, BE_E_MISUSE, "be_cache_sweep: cache is NULL");
  if (max_buckets < 0) return be__error_field(err, "max_buckets", "must be >= 0 (0 = all)");
  uint64_t total = 0;
  for (uint32_t k = 0; k < c->nshards; k++) {
    be__cache_shard *s = &c->shards[k];
    entry *grave = NULL;
    be__spinlock_lock(&s->lock);
    size_t slots = s->table->mask + 1;
    size_t nb = max_buckets == 0 || (uint64_t)max_buckets > slots ? slots : (size_t)max_buckets;
    if (max_buckets == 0) s->sweep_cursor = 0;
    total += sweep_shard(c, s, nb, &grave);
    be__spinlock_unlock(&s->lock);
    be__cache_bury(c, grave);
  }
  if (out_removed) *out_removed = (int64_t)total;
  return BE_OK;
}

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
  be__cache_reclaim(c); /* so memory_bytes shows no removed entries that could go */
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
    table_bytes += table_size(s->table->mask + 1);
    be__spinlock_unlock(&s->lock);
  }
  for (uint32_t i = 0; i < BE__CACHE_STRIPES; i++)
    st.hits += atomic_load_explicit(&c->stripes[i].hits, memory_order_relaxed);
  pthread_mutex_lock(&c->retire_mu);
  uint64_t retired_bytes = c->retired_bytes;
  pthread_mutex_unlock(&c->retire_mu);
  /* Exactly what was allocated: entry blocks are their charge minus the
   * table share, which is counted as the real tables instead. */
  uint64_t prefix_bytes = 0;
  uint32_t np = atomic_load(&c->nprefixes);
  for (uint32_t i = 0; i < np; i++) prefix_bytes += c->prefixes[i].len ? c->prefixes[i].len : 1;
  st.memory_bytes = st.bytes - st.entries * 2 * sizeof(void *) + table_bytes +
                    sizeof(be_cache) + c->shards_mem_size + prefix_bytes + STRIPES_MEM +
                    retired_bytes;
  st.shard_count = c->nshards;
  st.version = BE_CACHE_STATS_VERSION;
  /* Version 1 is the only layout so far: copy it whole. A later version
   * copies only the prefix the caller's version has. */
  *out = st;
  return BE_OK;
}

const void *be_cache_entry_value(const be_cache_entry *e, size_t *out_len) {
  if (e == NULL) {
    if (out_len) *out_len = 0;
    return NULL;
  }
  if (out_len) *out_len = e->vlen;
  return e->data + e->klen;
}

const void *be_cache_entry_key(const be_cache_entry *e, size_t *out_len) {
  if (e == NULL) {
    if (out_len) *out_len = 0;
    return NULL;
  }
  if (out_len) *out_len = e->klen;
  return e->data;
}

int64_t be_cache_entry_expires_ns(const be_cache_entry *e) { return e ? e->expires : 0; }

void be_cache_entry_release(be_cache_entry *e) {
  if (e) be__cache_entry_unref(e);
}
