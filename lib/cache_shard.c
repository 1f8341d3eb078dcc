/* SPDX-License-Identifier: MIT */
/* A shard's hash table and LRU list, changed under the shard's lock:
 * insertion (expiry, epoch and prefix stamps), eviction to the cache's
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
  be__cache_cycle_drop(s);
  be__cache_retire_table(c, old);
}

/* ---- the global totals (cache_internal.h "bounds") ---- */

static void totals_sub(be_cache *c, uint64_t n, uint64_t bytes) {
  if (c->max_count != UINT64_MAX)
    atomic_fetch_sub_explicit(&c->total_count, n, memory_order_relaxed);
  if (c->max_bytes != UINT64_MAX)
    atomic_fetch_sub_explicit(&c->total_bytes, bytes, memory_order_relaxed);
}

/* Add n bytes to total_bytes (bounded); the byte debt is what they took
 * past the bound, at most n. */
static void bytes_add(be_cache *c, uint64_t n, be__cache_debt *d) {
  uint64_t after = atomic_fetch_add_explicit(&c->total_bytes, n, memory_order_relaxed) + n;
  if (after > c->max_bytes) d->bytes = after - c->max_bytes < n ? after - c->max_bytes : n;
}

/* Count a linked entry of charge ch; its debt is what it took past the bounds. */
static void totals_add(be_cache *c, uint64_t ch, be__cache_debt *d) {
  d->count = d->bytes = 0;
  if (c->max_count != UINT64_MAX)
    d->count = atomic_fetch_add_explicit(&c->total_count, 1, memory_order_relaxed) >= c->max_count;
  if (c->max_bytes != UINT64_MAX) bytes_add(c, ch, d);
}

/* 1 while d is owed: a part of it is unpaid and its total is still over. */
static int owes(be_cache *c, const be__cache_debt *d) {
  return (d->count &&
          atomic_load_explicit(&c->total_count, memory_order_relaxed) > c->max_count) ||
         (d->bytes && atomic_load_explicit(&c->total_bytes, memory_order_relaxed) > c->max_bytes);
}

/* ---- removal ---- */

/* remove_at without the global totals, which the caller settles. */
static inline __attribute__((always_inline)) void unlink_at(be__cache_shard *s, entry *e,
                                                            entry **link, int reason,
                                                            entry **grave) {
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

/* be__cache_remove_locked with e's chain link found: inline in the
 * eviction loop, which runs on every insert into a full cache. */
static inline __attribute__((always_inline)) void remove_at(be_cache *c, be__cache_shard *s,
                                                            entry *e, entry **link, int reason,
                                                            entry **grave) {
  totals_sub(c, 1, be__cache_echarge(e));
  unlink_at(s, e, link, reason, grave);
}

/* The chain link that points at e (linked in s), found by hashing its key. */
static inline entry **link_of(be_cache *c, be__cache_shard *s, const entry *e) {
  entry **link = be__cache_slot_locked(s, be__cache_hash(c, e->data, e->klen));
  while (*link != e) link = &(*link)->hnext;
  return link;
}

void be__cache_remove_locked(be_cache *c, be__cache_shard *s, entry *e, entry **link, int reason,
                             entry **grave) {
  remove_at(c, s, e, link ? link : link_of(c, s, e), reason, grave);
}

/* Remove the dead entries of the next nbuckets chains; the live ones
 * count in the sweep cycle's minima (cache_internal.h "sweep floors"). */
static size_t sweep_shard(be_cache *c, be__cache_shard *s, size_t nbuckets, entry **grave) {
  size_t removed = 0;
  int64_t now = INT64_MIN;
  if (nbuckets > s->table->mask + 1) nbuckets = s->table->mask + 1;
  if (s->cycle_left == 0) { /* a new cycle: the entries linked from now on count too */
    s->cycle_exp = INT64_MAX;
    s->cycle_epoch = UINT64_MAX;
    s->cycle_left = s->table->mask + 1;
  }
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
        be__cache_cycle_note(s, e);
        link = &e->hnext;
      }
    }
  }
  if (nbuckets < s->cycle_left) {
    s->cycle_left -= nbuckets;
  } else { /* every bucket walked since the cycle began */
    s->exp_floor = s->cycle_exp;
    s->epoch_floor = s->cycle_epoch;
    be__cache_cycle_drop(s);
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

/* Second chance (CLOCK): a marked tail entry v goes unmarked to just
 * behind keep (the entry being written, most recent), or to the front
 * when keep is not in this shard: the scan meets it again only after
 * every other entry. */
static void second_chance(be__cache_shard *s, entry *v, entry *keep) {
  be__cache_set_flags(v, (uint8_t)(v->flags & ~BE__ENTRY_REF));
  if (keep == NULL || s->head != keep) {
    be__cache_bump_locked(s, v);
    return;
  }
  be__cache_lru_unlink(s, v);
  v->prev = keep;
  v->next = keep->next;
  if (keep->next) keep->next->prev = v;
  else s->tail = v;
  keep->next = v;
}

/* The entry of shard s (lock held) to evict next, never keep: the tail
 * (exact LRU), or the first unmarked entry from the tail (CLOCK; marked
 * ones get their second chance); *dead is its reason when it is dead,
 * else 0. Every step clears a mark, so it ends; NULL when s holds
 * nothing but keep. */
static entry *next_victim(be_cache *c, be__cache_shard *s, entry *keep, int64_t *now, int *dead) {
  for (;;) {
    entry *v = s->tail;
    if (v != NULL && v == keep) v = keep->prev; /* everything else was given its chance */
    if (v == NULL) return NULL;
    *dead = be__cache_entry_dead(c, v, now);
    if (*dead || c->lru_exact || v != s->tail || !(v->flags & BE__ENTRY_REF)) return v;
    second_chance(s, v, keep);
  }
}

/* Evict from shard s (lock held) while d is owed, never keep; a dead
 * entry goes with its own reason. It stops early when s holds nothing
 * but keep. */
static void evict_from(be_cache *c, be__cache_shard *s, entry *keep, be__cache_debt *d,
                       int64_t *now, entry **grave) {
  while (owes(c, d)) {
    int dead;
    entry *v = next_victim(c, s, keep, now, &dead);
    if (v == NULL || !owes(c, d)) return; /* owes again: another thread may have paid meanwhile */
    if (!dead) dead = d->count ? BE_CACHE_EVICT_COUNT : BE_CACHE_EVICT_SIZE;
    uint64_t ch = be__cache_echarge(v);
    remove_at(c, s, v, link_of(c, s, v), dead, grave);
    d->count = 0;
    d->bytes = ch >= d->bytes ? 0 : d->bytes - ch;
  }
}

/* Count e, just linked in s (lock held), in the totals and evict what
 * it owes from s; the rest of its debt is left in *d. In a cache full to
 * its count bound, the steady state of a busy one, e takes the place of
 * s's next victim: the two leave total_count as it was, so neither
 * touches it, and total_bytes moves once, by the difference of their
 * charges (each locked add cost a miss into a full cache about 1 % of
 * bench_hotpath's user_get row). The count is checked again once the
 * victim is found (second chances may take a while); the victim and the
 * debt left are those of counting e and then evicting. */
static void count_in(be_cache *c, be__cache_shard *s, entry *e, be__cache_debt *d, int64_t *now,
                     entry **grave) {
  uint64_t ch = be__cache_echarge(e);
  entry *v = NULL;
  int dead = 0;
  if (c->max_count == UINT64_MAX ||
      atomic_load_explicit(&c->total_count, memory_order_relaxed) < c->max_count ||
      (v = next_victim(c, s, e, now, &dead)) == NULL ||
      atomic_load_explicit(&c->total_count, memory_order_relaxed) < c->max_count) {
    totals_add(c, ch, d);
    evict_from(c, s, e, d, now, grave);
    return;
  }
  uint64_t vch = be__cache_echarge(v);
  unlink_at(s, v, link_of(c, s, v), dead ? dead : BE_CACHE_EVICT_COUNT, grave);
  d->count = d->bytes = 0;
  if (c->max_bytes == UINT64_MAX || ch == vch) return;
  if (ch < vch) {
    atomic_fetch_sub_explicit(&c->total_bytes, vch - ch, memory_order_relaxed);
    return;
  }
  bytes_add(c, ch - vch, d);
  evict_from(c, s, e, d, now, grave);
}

void be__cache_settle(be_cache *c, be__cache_shard *s, const entry *e, be__cache_debt *d,
                      entry **grave) {
  if (!owes(c, d)) return;
  int64_t now = INT64_MIN;
  size_t me = (size_t)(s - c->shards);
  for (uint32_t i = 1; i <= c->nshards && owes(c, d); i++) {
    be__cache_shard *t = &c->shards[(me + i) % c->nshards]; /* s itself last */
    be__spinlock_lock(&t->lock);
    evict_from(c, t, t == s ? (entry *)e : NULL, d, &now, grave);
    be__spinlock_unlock(&t->lock);
  }
}

/* 1 when an entry of the shard (lock held) may be dead: one was ever
 * stored with an expiry, or a prefix is registered. Until then the
 * amortised sweep could remove nothing. */
static int may_hold_dead(be_cache *c) {
  return atomic_load_explicit(&c->expiring, memory_order_relaxed) ||
         atomic_load_explicit(&c->nprefixes, memory_order_relaxed);
}

/* 1 when no entry of s can be dead at *now (read here if unread, as for
 * be__cache_entry_dead): by its floors, every entry expires later and
 * none with a prefix bit is older than the cache epoch. */
static int shard_all_alive(be_cache *c, be__cache_shard *s, int64_t *now) {
  if (s->epoch_floor < atomic_load_explicit(&c->epoch, memory_order_acquire)) return 0;
  if (s->exp_floor == BE__CACHE_NEVER) return 1;
  if (*now == INT64_MIN) *now = be__clock_coarse_ns(c->clock);
  return *now < s->exp_floor;
}

/* The write's share of the amortised sweep: the next sweep_batch chains,
 * or, while nothing in the shard can be dead (the sweep would remove
 * nothing), only the cursor's move. */
static void sweep_after_write(be_cache *c, be__cache_shard *s, int64_t *now, entry **grave) {
  if (may_hold_dead(c)) {
    if (!shard_all_alive(c, s, now)) {
      sweep_shard(c, s, c->sweep_batch, grave);
      return;
    }
    be__cache_cycle_drop(s); /* the chains skipped below were not walked */
  }
  /* (Else no entry has an expiry or a prefix bit: the chains skipped hold
   * nothing the cycle's minima need.) */
  size_t n = s->table->mask + 1;
  s->sweep_cursor += c->sweep_batch < n ? c->sweep_batch : n;
}

void be__cache_insert_locked(be_cache *c, be__cache_shard *s, uint64_t h, entry *e, int64_t ttl,
                             uint64_t epoch, entry **grave, be__cache_debt *debt) {
  /* The clock is read only for an expiry: until an entry has one, nothing
   * else here needs the time (dead checks read it lazily). */
  int64_t now = INT64_MIN;
  if (ttl == BE_CACHE_TTL_DEFAULT) ttl = c->default_ttl;
  e->expires = BE__CACHE_NEVER;
  if (ttl > 0) {
    now = be__clock_coarse_ns(c->clock);
    e->expires = expiry_for(c, s, ttl, now);
  }
  if (e->expires != BE__CACHE_NEVER && !atomic_load_explicit(&c->expiring, memory_order_relaxed))
    atomic_store_explicit(&c->expiring, 1, memory_order_relaxed);
  e->epoch = epoch;
  e->pmask = atomic_load_explicit(&c->nprefixes, memory_order_acquire)
               ? be__cache_prefix_mask(c, e->data, e->klen)
               : 0;
  entry **link = be__cache_find_link(s, h, e->data, e->klen);
  if (link) {
    entry *old = *link;
    int dead = be__cache_entry_dead(c, old, &now);
    be__cache_remove_locked(c, s, old, link, dead ? dead : BE_CACHE_EVICT_REPLACED, grave);
  }
  if (be__cache_table_due(s->count, s->table->mask + 1)) grow(c, s);
  entry **b = be__cache_slot_locked(s, h);
  e->hnext = *b;
  __atomic_store_n(b, e, __ATOMIC_RELEASE); /* publishes e's fields to lock-free readers */
  be__cache_lru_push_head(s, e);
  be__cache_floor_lower(s, e);
  s->count++;
  s->bytes += be__cache_echarge(e);
  s->inserts++;
  count_in(c, s, e, debt, &now, grave);
  if (c->sweep_batch) sweep_after_write(c, s, &now, grave);
}

void be__cache_flights_stale_locked(be__cache_shard *s, uint64_t hash, const void *key,
                                    size_t klen, int prefix, int mark) {
  if (!prefix) {
    for (be__cache_flight *f = *be__cache_flight_list(s, hash); f; f = f->next)
      if (f->hash == hash && f->klen == klen && memcmp(f->key, key, klen) == 0) f->stale |= mark;
    return;
  }
  for (size_t i = 0; i < BE__CACHE_FLIGHT_LISTS; i++)
    for (be__cache_flight *f = s->flights[i]; f; f = f->next)
      if (f->klen >= klen && memcmp(f->key, key, klen) == 0) f->stale |= mark;
}

int be__cache_read_settle_locked(be_cache *c, be__cache_shard *s, be__cache_flight *f, entry *e,
                                 int64_t ttl, entry **grave, be__cache_debt *debt) {
  if (f->stale & BE__FLIGHT_WRITTEN) return 0;
  if (e != NULL && !f->stale) {
    be__cache_store_locked(c, s, f->hash, e, ttl, f->epoch0, BE__FLIGHT_OVERLAPPED, grave, debt);
    return 1;
  }
  entry *old = be__cache_lookup_locked(c, s, f->hash, f->key, f->klen, INT64_MIN, grave);
  if (old && e && old->vlen == e->vlen && memcmp(old->data + old->klen, e->data + e->klen, e->vlen) == 0)
    return 0; /* the other read found the same value (the same key twice in one batch) */
  if (s->nflights) be__cache_flights_stale_locked(s, f->hash, f->key, f->klen, 0, BE__FLIGHT_OVERLAPPED);
  if (old) be__cache_remove_locked(c, s, old, NULL, BE_CACHE_EVICT_INVALIDATED, grave);
  return 0;
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
  if (!be__cache_fits(c, charge))
    return be__error_field(err, "value", "entry of %llu bytes exceeds max_bytes (%llu)",
                           (unsigned long long)charge, (unsigned long long)c->max_bytes);
  entry *e = be__cache_entry_new(c, key, klen, value, vlen);
  if (e == NULL) return be__error_oom(err);
  entry *grave = NULL;
  be__cache_debt debt;
  be__spinlock_lock(&s->lock);
  be__cache_store_locked(c, s, h, e, be__cache_ttl_ns(ttl), atomic_load(&c->epoch), BE__FLIGHT_WRITTEN, &grave,
                         &debt);
  be__spinlock_unlock(&s->lock);
  if (debt.count || debt.bytes) be__cache_settle(c, s, e, &debt, &grave);
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
  if (s->nflights) be__cache_flights_stale_locked(s, h, key, klen, 0, BE__FLIGHT_WRITTEN);
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
static be__cache_table *clear_shard(be_cache *c, be__cache_shard *s, entry **grave) {
  /* every key starts with the empty prefix */
  if (s->nflights) be__cache_flights_stale_locked(s, 0, "", 0, 1, BE__FLIGHT_WRITTEN);
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
  totals_sub(c, n, s->bytes);
  s->count = 0;
  s->bytes = 0;
  s->sweep_cursor = 0;
  be__cache_table *old = s->table, *t = be__cache_table_new(BE__CACHE_INITIAL_BUCKETS);
  if (t) {
    be__cache_publish_table(s, t);
    be__cache_floors_reset(s);
    return old;
  }
  for (size_t i = 0; i <= old->mask; i++) __atomic_store_n(&old->slot[i], NULL, __ATOMIC_RELAXED);
  be__cache_floors_reset(s);
  return NULL;
}

int be_cache_clear(be_cache *c, be_error **err) {
  if (c == NULL) return be__error_set(err, BE_E_MISUSE, "be_cache_clear: cache is NULL");
  /* one grave for every shard: burying each shard's would run a
   * reclamation pass (a membarrier) per shard for its old table */
  entry *grave = NULL;
  for (uint32_t k = 0; k < c->nshards; k++) {
    be__cache_shard *s = &c->shards[k];
    be__spinlock_lock(&s->lock);
    be__cache_table *old = clear_shard(c, s, &grave);
    be__spinlock_unlock(&s->lock);
    if (old) be__cache_retire_table(c, old);
  }
  be__cache_bury(c, grave);
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
