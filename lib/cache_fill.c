/* SPDX-License-Identifier: MIT */
/* Conditional fills (cache_fill.h): a fill is a flight that no caller of
 * be_cache_get_or_load joins (it has no loader to wait for), listed in
 * its shard from begin to end, so every write of its key marks it stale
 * exactly as it marks a load. */
#include "cache_fill.h"

#include <string.h>

#include "alloc.h"
#include "cache_internal.h"

struct be__cache_fill {
  be_cache *cache;
  be__cache_flight flight; /* mu and cond unused */
  unsigned char key[];
};

be__cache_fill *be__cache_fill_begin(be_cache *c, const void *key, size_t klen) {
  if (c == NULL || (key == NULL && klen) || klen > BE_CACHE_MAX_KEY) return NULL;
  be__cache_fill *t = be__malloc(sizeof *t + klen);
  if (t == NULL) return NULL;
  if (klen) memcpy(t->key, key, klen);
  t->cache = c;
  be__cache_flight *f = &t->flight;
  memset(f, 0, sizeof *f);
  f->hash = be__cache_hash(c, t->key, klen);
  f->key = t->key;
  f->klen = klen;
  f->refs = 1;
  f->fill = 1;
  be__cache_shard *s = be__cache_shard_of(c, f->hash);
  be__spinlock_lock(&s->lock);
  /* a prefix invalidation after this makes the stored entry dead */
  f->epoch0 = atomic_load(&c->epoch);
  be__cache_flight_list_locked(s, f);
  be__spinlock_unlock(&s->lock);
  return t;
}

int be__cache_fill_end(be__cache_fill *t, const void *value, size_t vlen) {
  if (t == NULL) return 0;
  be_cache *c = t->cache;
  be__cache_flight *f = &t->flight;
  be__cache_shard *s = be__cache_shard_of(c, f->hash);
  int64_t charge = value ? be_cache_charge(f->klen, vlen) : 0; /* 0: nothing to store */
  struct be_cache_entry *e = charge && be__cache_fits(c, (uint64_t)charge)
                               ? be__cache_entry_new(c, t->key, f->klen, value, vlen)
                               : NULL;
  struct be_cache_entry *grave = NULL;
  be__cache_debt debt = {0, 0};
  int stored = 0;
  be__spinlock_lock(&s->lock);
  be__cache_flight_unlist_locked(s, f);
  if (value != NULL) stored = be__cache_read_settle_locked(c, s, f, e, BE_CACHE_TTL_DEFAULT, &grave, &debt);
  be__spinlock_unlock(&s->lock);
  if (stored && (debt.count || debt.bytes)) be__cache_settle(c, s, e, &debt, &grave);
  if (e != NULL && !stored) be__free(e);
  be__cache_bury(c, grave);
  be__free(t);
  return stored;
}
