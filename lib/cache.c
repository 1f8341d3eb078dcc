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
#include "error.h"

#define DEFAULT_SHARDS 16u
#define MAX_SHARDS 1024u
#define DEFAULT_SWEEP 4u
#define INITIAL_BUCKETS 16u
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

uint64_t be_cache_charge(size_t klen, size_t vlen) {
  if (klen > BE_CACHE_MAX_KEY || vlen > UINT32_MAX - BE__ENTRY_HDR - klen) return 0;
  return charge_of(klen, vlen);
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

static inline int entry_dead(be_cache *c, const entry *e, int64_t *now) {
  /* Every invalidation epoch is at most the cache epoch, so an entry
   * stamped with the current epoch has outlived no invalidation: one load
   * instead of one per prefix bit on the hit path. */
  if (e->pmask && e->epoch != atomic_load_explicit(&c->epoch, memory_order_acquire)) {
    for (unsigned m = e->pmask; m; m &= m - 1) {
      unsigned i = (unsigned)__builtin_ctz(m);
      uint64_t inval = atomic_load_explicit(&c->prefixes[i].inval_epoch, memory_order_acquire);
      if (inval > e->epoch) return DEAD_INVALIDATED;
    }
  }
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

/* ---- removal ---- */

/* Unlink e (whose chain link is *link, or found by hashing when NULL) and
 * queue it on *grave with its reason; counts it by reason. */
static void remove_entry(be_cache *c, be__cache_shard *s, entry *e, entry **link,
                         int reason, entry **grave) {
  if (link == NULL) {
    link = &s->buckets[be__cache_hash(c, ekey(e), e->klen) & s->mask];
    while (*link != e) link = &(*link)->hnext;
  }
  *link = e->hnext;
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
  e->flags = (uint8_t)((e->flags & 0x0f) | (reason << 4));
  e->hnext = *grave;
  *grave = e;
}

void be__cache_bury(be_cache *c, entry *grave) {
  /* The list is newest-first; reverse it so callbacks see removal order. */
  entry *ordered = NULL;
  while (grave) {
    entry *n = grave->hnext;
    grave->hnext = ordered;
    ordered = grave;
    grave = n;
  }
  while (ordered) {
    entry *n = ordered->hnext;
    if (c->on_evict && !(ordered->flags & BE__ENTRY_NEGATIVE))
      c->on_evict(c->evict_ud, ekey(ordered), ordered->klen, eval(ordered), ordered->vlen,
                  ordered->flags >> 4);
    be__cache_entry_unref(ordered);
    ordered = n;
  }
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
  entry **link = &s->buckets[h & s->mask];
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
  size_t n = (s->mask + 1) * 2;
  entry **nb = be__calloc(n, sizeof *nb);
  if (nb == NULL) return; /* keep the old table: longer chains, still correct */
  for (size_t i = 0; i <= s->mask; i++) {
    entry *e = s->buckets[i];
    while (e) {
      entry *next = e->hnext;
      size_t b = be__cache_hash(c, ekey(e), e->klen) & (n - 1);
      e->hnext = nb[b];
      nb[b] = e;
      e = next;
    }
  }
  be__free(s->buckets);
  __atomic_store_n(&s->buckets, nb, __ATOMIC_RELAXED); /* read unlocked: be__cache_lock_for */
  __atomic_store_n(&s->mask, n - 1, __ATOMIC_RELAXED);
}

static size_t sweep_shard(be_cache *c, be__cache_shard *s, size_t nbuckets, entry **grave) {
  size_t removed = 0;
  int64_t now = INT64_MIN;
  if (nbuckets > s->mask + 1) nbuckets = s->mask + 1;
  for (size_t i = 0; i < nbuckets; i++) {
    entry **link = &s->buckets[s->sweep_cursor & s->mask];
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
        v->flags &= (uint8_t)~BE__ENTRY_REF;
        lru_unlink(s, v);
        lru_push_head(s, v);
        continue;
      }
      if (!dead) dead = s->count >= s->max_count ? BE_CACHE_EVICT_COUNT : BE_CACHE_EVICT_SIZE;
      remove_entry(c, s, v, NULL, dead, grave);
    }
  }
  if (s->count >= s->mask + 1) grow(c, s);
  entry **b = &s->buckets[h & s->mask];
  e->hnext = *b;
  *b = e;
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

static uint32_t pow2_at_least(uint32_t n) {
  uint32_t p = 1;
  while (p < n) p <<= 1;
  return p;
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
  if (o.default_ttl_ns < 0)
    return be__error_field(err, "default_ttl_ns", "must be >= 0 (0 = no expiry)");
  if (o.negative_ttl_ns < 0)
    return be__error_field(err, "negative_ttl_ns", "must be >= 0 (0 = off)");
  if (o.ttl_jitter_pct < 0 || o.ttl_jitter_pct > 100)
    return be__error_field(err, "ttl_jitter_pct", "must be between 0 and 100");
  if (o.lru_mode != BE_CACHE_LRU_DEFAULT && o.lru_mode != BE_CACHE_LRU_EXACT &&
      o.lru_mode != BE_CACHE_LRU_APPROX)
    return be__error_field(err, "lru_mode", "must be BE_CACHE_LRU_DEFAULT, _EXACT or _APPROX");

  uint32_t n = o.shard_count ? o.shard_count : DEFAULT_SHARDS;
  if (n > MAX_SHARDS) n = MAX_SHARDS;
  n = pow2_at_least(n);
  while (n > 1 && o.max_entries && o.max_entries < n) n >>= 1;

  be_cache *c = be__calloc(1, sizeof *c);
  if (c == NULL) return be__error_oom(err);
  c->shards_mem_size = (size_t)n * sizeof(be__cache_shard) + 64;
  c->shards_mem = be__calloc(1, c->shards_mem_size);
  if (c->shards_mem == NULL) goto oom;
  c->shards = (be__cache_shard *)(((uintptr_t)c->shards_mem + 63) & ~(uintptr_t)63);
  c->nshards = n;
  while ((1u << c->shard_bits) < n) c->shard_bits++;
  c->seed = o.seed ? o.seed
                   : (uint64_t)be_clock_now_ns(NULL) ^ (uint64_t)(uintptr_t)c ^
                         UINT64_C(0x2545f4914f6cdd1d);
  c->default_ttl = o.default_ttl_ns;
  c->negative_ttl = o.negative_ttl_ns;
  c->jitter_pct = o.ttl_jitter_pct;
  c->sweep_batch = o.sweep_batch < 0 ? 0 : o.sweep_batch == 0 ? DEFAULT_SWEEP : (uint32_t)o.sweep_batch;
  c->lru_exact = o.lru_mode == BE_CACHE_LRU_EXACT;
  c->clock = o.clock;
  c->on_evict = o.on_evict;
  c->evict_ud = o.evict_user_data;
  atomic_init(&c->nprefixes, 0);
  atomic_init(&c->epoch, 0);
  atomic_init(&c->expiring, 0);
  for (uint32_t i = 0; i < BE_CACHE_MAX_PREFIXES; i++) atomic_init(&c->prefixes[i].inval_epoch, 0);

  for (; made < n; made++) {
    be__cache_shard *s = &c->shards[made];
    s->buckets = be__calloc(INITIAL_BUCKETS, sizeof *s->buckets);
    if (s->buckets == NULL) goto oom;
    s->mask = INITIAL_BUCKETS - 1;
    uint64_t i = made;
    s->max_count = o.max_entries ? o.max_entries / n + (i < o.max_entries % n) : UINT64_MAX;
    s->max_bytes = o.max_bytes ? o.max_bytes / n + (i < o.max_bytes % n) : UINT64_MAX;
    s->rng = c->seed ^ (i * UINT64_C(0xd1342543de82ef95));
    atomic_init(&s->lock.held, 0u);
  }
  if (pthread_mutex_init(&c->reg_mu, NULL) != 0) goto oom;
  *out = c;
  return BE_OK;

oom:
  if (c->shards_mem) {
    for (uint32_t i = 0; i < made; i++) be__free(c->shards[i].buckets);
    be__free(c->shards_mem);
  }
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
    be__free(s->buckets);
  }
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
  if (!check_ttl(ttl)) return be__error_field(err, "ttl_ns", "must be > 0, 0 (default) or -1 (forever)");
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
  be__cache_insert_locked(c, s, h, e, ttl, atomic_load(&c->epoch), &grave);
  be__spinlock_unlock(&s->lock);
  be__cache_bury(c, grave);
  return BE_OK;
}

int be_cache_get(be_cache_entry **out, be_cache *c, const void *key, size_t klen) {
  if (out == NULL) return BE_E_MISUSE;
  *out = NULL;
  if (c == NULL || (key == NULL && klen)) return BE_E_MISUSE;
  uint64_t h = hash_of(c, key, klen);
  be__cache_shard *s = shard_of(c, h);
  entry *grave = NULL;
  int64_t now = be__cache_lookup_now(c);
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
  return e ? BE_OK : BE_E_NOT_FOUND;
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

int be_cache_get_copy(void *buf, size_t cap, size_t *out_len, be_cache *c, const void *key,
                      size_t klen) {
  if (out_len == NULL || c == NULL || (buf == NULL && cap) || (key == NULL && klen))
    return BE_E_MISUSE;
  uint64_t h = hash_of(c, key, klen);
  be__cache_shard *s = shard_of(c, h);
  entry *grave = NULL;
  int rc;
  int64_t now = be__cache_lookup_now(c);
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
  return rc;
}

int be_cache_delete(be_cache *c, const void *key, size_t klen) {
  if (c == NULL || (key == NULL && klen)) return BE_E_MISUSE;
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
  return rc;
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
  atomic_store_explicit(&c->nprefixes, i + 1, memory_order_release);
  /* Entries stored before the prefix existed get its bit now. A set that
   * computed its mask before the store above inserts under its shard lock
   * either before this pass visits the shard (and is marked here) or after
   * (and then it reads the new count itself, under that lock). */
  for (uint32_t k = 0; k < c->nshards; k++) {
    be__cache_shard *s = &c->shards[k];
    be__spinlock_lock(&s->lock);
    for (entry *e = s->head; e; e = e->next)
      if (has_prefix(e, prefix, plen)) e->pmask |= (uint8_t)(1u << i);
    be__spinlock_unlock(&s->lock);
  }
  pthread_mutex_unlock(&c->reg_mu);
  return BE_OK;
}

int be_cache_invalidate_prefix(be_cache *c, const void *prefix, size_t plen) {
  if (c == NULL || (prefix == NULL && plen)) return BE_E_MISUSE;
  int idx = find_prefix(c, prefix, plen);
  if (idx >= 0) {
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

int be_cache_clear(be_cache *c) {
  if (c == NULL) return BE_E_MISUSE;
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
      e->flags = (uint8_t)((e->flags & 0x0f) | (BE_CACHE_EVICT_INVALIDATED << 4));
      e->prev = e->next = NULL;
      e->hnext = grave;
      grave = e;
      e = next;
    }
    s->invalidations += n;
    s->count = 0;
    s->bytes = 0;
    entry **small = s->mask + 1 > INITIAL_BUCKETS ? be__calloc(INITIAL_BUCKETS, sizeof *small) : NULL;
    if (small) {
      be__free(s->buckets);
      __atomic_store_n(&s->buckets, small, __ATOMIC_RELAXED);
      __atomic_store_n(&s->mask, (size_t)INITIAL_BUCKETS - 1, __ATOMIC_RELAXED);
    } else {
      memset(s->buckets, 0, (s->mask + 1) * sizeof *s->buckets);
    }
    s->sweep_cursor = 0;
    be__spinlock_unlock(&s->lock);
    be__cache_bury(c, grave);
  }
  return BE_OK;
}

int be_cache_sweep(uint64_t *out_removed, be_cache *c, uint64_t max_buckets) {
  if (out_removed) *out_removed = 0;
  if (c == NULL) return BE_E_MISUSE;
  uint64_t total = 0;
  for (uint32_t k = 0; k < c->nshards; k++) {
    be__cache_shard *s = &c->shards[k];
    entry *grave = NULL;
    be__spinlock_lock(&s->lock);
    size_t nb = max_buckets == 0 || max_buckets > s->mask + 1 ? s->mask + 1 : (size_t)max_buckets;
    if (max_buckets == 0) s->sweep_cursor = 0;
    total += sweep_shard(c, s, nb, &grave);
    be__spinlock_unlock(&s->lock);
    be__cache_bury(c, grave);
  }
  if (out_removed) *out_removed = total;
  return BE_OK;
}

int be_cache_stats_get(be_cache_stats *out, const be_cache *cc) {
  if (cc == NULL || out == NULL || out->version == 0) return BE_E_MISUSE;
  be_cache *c = (be_cache *)cc; /* locking is not a logical modification */
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
    table_bytes += (s->mask + 1) * sizeof(entry *);
    be__spinlock_unlock(&s->lock);
  }
  /* Exactly what was allocated: entry blocks are their charge minus the
   * table share, which is counted as the real tables instead. */
  uint64_t prefix_bytes = 0;
  uint32_t np = atomic_load(&c->nprefixes);
  for (uint32_t i = 0; i < np; i++) prefix_bytes += c->prefixes[i].len ? c->prefixes[i].len : 1;
  st.memory_bytes = st.bytes - st.entries * 2 * sizeof(void *) + table_bytes +
                    sizeof(be_cache) + c->shards_mem_size + prefix_bytes;
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
