/* SPDX-License-Identifier: MIT */
/* Prefix invalidation. A registered prefix gets a bit; every entry stored
 * with a key starting with it carries the bit (pmask), and invalidating
 * the prefix only stamps it with a new cache epoch: entries stored before
 * that epoch are dead from then on, found lazily by lookups and sweeps.
 * An unregistered prefix (or one still being registered) is invalidated
 * by scanning every shard. */
#include <backend/cache.h>
#include <backend/error.h>

#include <string.h>

#include "alloc.h"
#include "cache_internal.h"
#include "error.h"

typedef struct be_cache_entry entry;

uint8_t be__cache_prefix_mask(be_cache *c, const void *key, size_t klen) {
  uint32_t n = atomic_load_explicit(&c->nprefixes, memory_order_acquire);
  uint8_t m = 0;
  for (uint32_t i = 0; i < n; i++) {
    const be__cache_prefix *p = &c->prefixes[i];
    /* Inline for the usual short prefix ("user:"): memcmp was a call per prefix per insert. */
    if (p->len <= klen && be__cache_key_eq(p->bytes, key, p->len)) m |= (uint8_t)(1u << i);
  }
  return m;
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
      if (has_prefix(e, prefix, plen)) {
        __atomic_store_n(&e->pmask, (uint8_t)(e->pmask | (1u << i)), __ATOMIC_RELAXED);
        be__cache_floor_lower(s, e); /* its epoch now counts (sweep floors) */
      }
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
  if (plen > BE_CACHE_MAX_KEY) return be__error_field(err, "prefix", "longer than any key");
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
    if (s->nflights) be__cache_flights_stale_locked(s, 0, prefix, plen, 1, BE__FLIGHT_WRITTEN);
    /* Oldest first, so callbacks come in a deterministic order. */
    for (entry *e = s->tail; e;) {
      entry *prev = e->prev;
      if (has_prefix(e, prefix, plen)) {
        int dead = be__cache_entry_dead(c, e, &now);
        be__cache_remove_locked(c, s, e, NULL, dead ? dead : BE_CACHE_EVICT_INVALIDATED, &grave);
      }
      e = prev;
    }
    be__spinlock_unlock(&s->lock);
    be__cache_bury(c, grave);
  }
  return BE_OK;
}
