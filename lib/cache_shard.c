/* SPDX-License-Identifier: MIT */
/* A shard's hash table and LRU list, changed under the shard's lock:
 * insertion (expiry, epoch and prefix stamps), eviction to the shard's
 * bounds (CLOCK second chance, or exact LRU), removal, table growth and
 * the amortised expiry sweep; and the public operations that write:
 * be_cache_set, be_cache_delete, be_cache_clear, be_cache_sweep. */
#include <backend/cache.h>
#include <backend/error.h>

#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "cache_internal.h"
#include "clock.h"
#include "error.h"

typedef struct be_cache_entry entry;

/* ---- tables ---- */

be__cache_table *be__cache_table_new(size_t nslots) {
  be__cache_table *t = be__calloc(1, be__cache_table_size(nslots));
  if (t) t->mask = nslots - 1;
  return t;
}

void be__cache_publish_table(be__cache_shard *s, be__cache_table *t) {
  __atomic_store_n(&s->table, t, __ATOMIC_RELEASE);
  __atomic_store_n(&s->mask_hint, t->mask, __ATOMIC_RELAXED);
}

static void grow(be_cache *c, be__cache_shard *s) {
  be__cache_table *old = s->table;
  size_t n = (old->mask + 1) * 2;
  be__cache_table *t = be__cache_table_new(n);
  if (t == NULL) return; /* keep the old table: longer chains, still correct */
  /* Live entries move to new chains; a reader meeting one mid-walk may
   * miss (and take the locked path) but only meets live entries. */
  for (size_t i = 0; i <= old->mask; i++) {
    entry *e = old->slot[i];
    while (e) {
      entry *next = e->hnext;
      size_t b = be__cache_hash(c, e->data, e->klen) & (n - 1);
      __atomic_store_n(&e->hnext, t->slot[b], __ATOMIC_RELEASE);
      t->slot[b] = e;
      e = next;
    }
  }
  be__cache_publish_table(s, t);
  be__cache_retire_table(c, old);
}

/* ---- removal ---- */

void be__cache_remove_locked(be_cache *c, be__cache_shard *s, entry *e, entry **link, int reason,
                             entry **grave) {
  if (link == NULL) {
    link = be__cache_slot_locked(s, be__cache_hash(c, e->data, e->klen));
    while (*link != e) link = &(*link)->hnext;
  }
  __atomic_store_n(link, e->hnext, __ATOMIC_RELEASE); /* e->hnext itself stays as it is */
  be__cache_lru_unlink(s, e);
  s->count--;
  s->bytes -= be__cache_echarge(e);
  switch (reason) {
    case BE_CACHE_EVICT_SIZE: s->ev_size++; break;
    case BE_CACHE_EVICT_COUNT: s->ev_count++; break;
    case BE_CACHE_EVICT_EXPIRED: s->expirations++; break;
    case BE_CACHE_EVICT_INVALIDATED: s->invalidations++; break;
    default: s->replacements++; break;
  }
  be__cache_set_flags(e, (uint8_t)((e->flags & 0x0f) | (reason << 4)));
  e->next = *grave;
  *grave = e;
}

/* Remove the dead entries of the next nbuckets chains. */
static size_t sweep_shard(be_cache *c, be__cache_shard *s, size_t nbuckets, entry **grave) {
  size_t removed = 0;
  int64_t now = INT64_MIN;
  if (nbuckets > s->table->mask + 1) nbuckets = s->table->mask + 1;
  for (size_t i = 0; i < nbuckets; i++) {
    entry **link = &s->table->slot[s->sweep_cursor & s->table->mask];
    s->sweep_cursor++;
    while (*link) {
      entry *e = *link;
      int dead = be__cache_entry_dead(c, e, &now);
      if (dead) {
        be__cache_remove_locked(c, s, e, link, dead, grave);
        removed++;
      } else {
        link = &e->hnext;
      }
    }
  }
  return removed;
}

/* ---- insertion ---- */

static inline uint64_t rng_next(be__cache_shard *s) { /* splitmix64 */
  uint64_t z = (s->rng += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

/* Absolute expiry for a TTL argument; ttl < 0 never, 0 the default. */
static int64_t expiry_for(be_cache *c, be__cache_shard *s, int64_t ttl, int64_t now) {
  if (ttl == BE_CACHE_TTL_DEFAULT) ttl = c->default_ttl;
  if (ttl <= 0) return BE__CACHE_NEVER;
  if (c->jitter_pct > 0) {
    /* Jitter only shortens: a TTL is a promise about staleness. */
    uint64_t span = (uint64_t)(ttl / 100) * (uint64_t)c->jitter_pct +
                    (uint64_t)(ttl % 100) * (uint64_t)c->jitter_pct / 100;
    if (span > 0) ttl -= (int64_t)(rng_next(s) % (span + 1));
    if (ttl < 1) ttl = 1;
  }
  if (now > BE__CACHE_NEVER - ttl) return BE__CACHE_NEVER;
  return now + ttl;
}

/* CLOCK: make room for an entry of charge ch before linking it, so the
 * scan never meets it. Tail entries read since their last chance go to
 * the front unmarked; the first unmarked (or dead) one goes. Every step
 * removes an entry or clears a mark, so the scan ends; hits never paid
 * for reordering. */
static void make_room(be_cache *c, be__cache_shard *s, uint64_t ch, int64_t *now, entry **grave) {
  while (s->tail && (s->count >= s->max_count || s->bytes > s->max_bytes - ch)) {
    entry *v = s->tail;
    int dead = be__cache_entry_dead(c, v, now);
    if (!dead && (v->flags & BE__ENTRY_REF)) {
      be__cache_set_flags(v, (uint8_t)(v->flags & ~BE__ENTRY_REF));
      be__cache_bump_locked(s, v);
      continue;
    }
    if (!dead) dead = s->count >= s->max_count ? BE_CACHE_EVICT_COUNT : BE_CACHE_EVICT_SIZE;
    be__cache_remove_locked(c, s, v, NULL, dead, grave);
  }
}

/* Exact LRU: after linking, evict from the tail down to the bounds. The
 * tail is never the new entry: it fits alone (be__cache_fits). */
static void evict_lru(be_cache *c, be__cache_shard *s, int64_t *now, entry **grave) {
  while (s->count > s->max_count || s->bytes > s->max_bytes) {
    entry *v = s->tail;
    int dead = be__cache_entry_dead(c, v, now);
    if (!dead) dead = s->count > s->max_count ? BE_CACHE_EVICT_COUNT : BE_CACHE_EVICT_SIZE;
    be__cache_remove_locked(c, s, v, NULL, dead, grave);
  }
}

void be__cache_insert_locked(be_cache *c, be__cache_shard *s, uint64_t h, entry *e, int64_t ttl,
                             uint64_t epoch, entry **grave) {
  int64_t now = be__clock_coarse_ns(c->clock);
  e->expires = expiry_for(c, s, ttl, now);
  if (e->expires != BE__CACHE_NEVER && !atomic_load_explicit(&c->expiring, memory_order_relaxed))
    atomic_store_explicit(&c->expiring, 1, memory_order_relaxed);
  e->epoch = epoch;
  e->pmask = be__cache_prefix_mask(c, e->data, e->klen);
  entry **link = be__cache_find_link(s, h, e->data, e->klen);
  if (link) {
    entry *old = *link;
    int dead = be__cache_entry_dead(c, old, &now);
    be__cache_remove_locked(c, s, old, link, dead ? dead : BE_CACHE_EVICT_REPLACED, grave);
  }
  if (!c->lru_exact) make_room(c, s, be__cache_echarge(e), &now, grave);
  if (s->count >= s->table->mask + 1) grow(c, s);
  entry **b = be__cache_slot_locked(s, h);
  e->hnext = *b;
  __atomic_store_n(b, e, __ATOMIC_RELEASE); /* publishes e's fields to lock-free readers */
  be__cache_lru_push_head(s, e);
  s->count++;
  s->bytes += be__cache_echarge(e);
  s->inserts++;
  if (c->lru_exact) evict_lru(c, s, &now, grave);
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

/* ---- the public operations that write ---- */

int be_cache_set(be_cache *c, const void *key, size_t klen, const void *value, size_t vlen,
                 int64_t ttl, be_error **err) {
  if (c == NULL || (key == NULL && klen) || (value == NULL && vlen))
    return be__error_set(err, BE_E_MISUSE, "be_cache_set: NULL cache, key or value");
  if (ttl < BE_CACHE_TTL_FOREVER)
    return be__error_field(err, "ttl_ms", "must be > 0, 0 (default) or -1 (forever)");
  uint64_t charge = be_cache_charge(klen, vlen);
  if (charge == 0)
    return be__error_field(err, klen > BE_CACHE_MAX_KEY ? "key" : "value", "too long");
  uint64_t h = be__cache_hash(c, key, klen);
  be__cache_shard *s = be__cache_shard_of(c, h);
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

int be_cache_delete(be_cache *c, const void *key, size_t klen, be_error **err) {
  if (c == NULL || (key == NULL && klen))
    return be__error_set(err, BE_E_MISUSE, "be_cache_delete: NULL cache or key");
  if (klen > BE_CACHE_MAX_KEY) return be__error_field(err, "key", "too long");
  uint64_t h = be__cache_hash(c, key, klen);
  be__cache_shard *s = be__cache_shard_of(c, h);
  entry *grave = NULL;
  int rc = BE_E_NOT_FOUND;
  be__spinlock_lock(&s->lock);
  if (s->flights) be__cache_flights_stale_locked(s, key, klen, 0);
  entry *e = be__cache_lookup_locked(c, s, h, key, klen, INT64_MIN, &grave);
  if (e) {
    be__cache_remove_locked(c, s, e, NULL, BE_CACHE_EVICT_INVALIDATED, &grave);
    rc = BE_OK;
  }
  be__spinlock_unlock(&s->lock);
  be__cache_bury(c, grave);
  return rc == BE_E_NOT_FOUND ? be__cache_miss(err) : rc;
}

/* Empty shard s (lock held): every entry to *grave as invalidated, every
 * load in flight stale, a fresh small table. Returns the old table to
 * retire once unlocked (readers may be in it), or NULL. */
static be__cache_table *clear_shard(be__cache_shard *s, entry **grave) {
  for (be__cache_flight *f = s->flights; f; f = f->next) f->stale = 1;
  entry *list = s->head;
  uint64_t n = s->count;
  s->head = s->tail = NULL;
  for (entry *e = list; e;) { /* chains are dropped wholesale below */
    entry *next = e->next;
    be__cache_set_flags(e, (uint8_t)((e->flags & 0x0f) | (BE_CACHE_EVICT_INVALIDATED << 4)));
    e->prev = NULL;
    e->next = *grave;
    *grave = e;
    e = next;
  }
  s->invalidations += n;
  s->count = 0;
  s->bytes = 0;
  s->sweep_cursor = 0;
  be__cache_table *old = s->table, *t = be__cache_table_new(BE__CACHE_INITIAL_BUCKETS);
  if (t) {
    be__cache_publish_table(s, t);
    return old;
  }
  for (size_t i = 0; i <= old->mask; i++) __atomic_store_n(&old->slot[i], NULL, __ATOMIC_RELAXED);
  return NULL;
}

int be_cache_clear(be_cache *c, be_error **err) {
  if (c == NULL) return be__error_set(err, BE_E_MISUSE, "be_cache_clear: cache is NULL");
  for (uint32_t k = 0; k < c->nshards; k++) {
    be__cache_shard *s = &c->shards[k];
    entry *grave = NULL;
    be__spinlock_lock(&s->lock);
    be__cache_table *old = clear_shard(s, &grave);
    be__spinlock_unlock(&s->lock);
    if (old) be__cache_retire_table(c, old);
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
