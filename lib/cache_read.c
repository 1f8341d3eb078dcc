/* SPDX-License-Identifier: MIT */
/* Reads: be_cache_get (a handle) and be_cache_get_copy (the value into the
 * caller's buffer). Approximate-LRU caches first try a hit without the
 * shard lock (see "what lock-free readers see" in cache_internal.h); a
 * miss, or anything the lock-free path may not decide, takes the locked
 * path, which also removes dead entries. */
#include <backend/cache.h>
#include <backend/error.h>

#include <stdint.h>
#include <string.h>

#include "cache_internal.h"
#include "ebr.h"
#include "error.h"

typedef struct be_cache_entry entry;

/* The first and last w bytes of src (n bytes, w <= n <= 2w) to d: two
 * fixed-size moves that overlap in the middle, through registers. */
static inline void copy_ends(unsigned char *d, const unsigned char *src, size_t n, size_t w) {
  unsigned char head[32], tail[32];
  memcpy(head, src, w);
  memcpy(tail, src + n - w, w);
  memcpy(d, head, w);
  memcpy(d + n - w, tail, w);
}

/* memcpy(d, s, n) for distinct buffers, inline up to 64 bytes with
 * overlapping fixed-size moves (the usual small value), else a call. */
static inline __attribute__((always_inline)) void copy_value(void *dst, const unsigned char *src,
                                                             size_t n) {
  unsigned char *d = dst;
  if (n > 64) memcpy(d, src, n);
  else if (n > 32) copy_ends(d, src, n, 32);
  else if (n >= 16) copy_ends(d, src, n, 16);
  else if (n >= 8) copy_ends(d, src, n, 8);
  else if (n >= 4) copy_ends(d, src, n, 4);
  else
    for (size_t i = 0; i < n; i++) d[i] = src[i];
}

static int get_copy_unlocked(be_cache *c, be__cache_shard *s, uint64_t h, const void *key,
                             size_t klen, int64_t now, void *buf, size_t cap, size_t *out_len) {
  be__ebr_reader *r = be__cache_unlocked_reader(c);
  if (r == NULL) return 0;
  be__ebr_enter(r);
  entry *e = be__cache_find_unlocked(c, s, h, key, klen, now);
  int ok = e && e->vlen <= cap;
  if (ok) {
    copy_value(buf, e->data + e->klen, e->vlen);
    *out_len = e->vlen;
  }
  be__ebr_exit(r);
  if (ok) be__cache_count_unlocked_hit(c, r);
  return ok;
}

int be_cache_get(be_cache_entry **out, be_cache *c, const void *key, size_t klen,
                 be_error **err) {
  if (out == NULL) return be__error_set(err, BE_E_MISUSE, "be_cache_get: out is NULL");
  *out = NULL;
  if (c == NULL || (key == NULL && klen))
    return be__error_set(err, BE_E_MISUSE, "be_cache_get: NULL cache or key");
  if (klen > BE_CACHE_MAX_KEY) return be__error_field(err, "key", "too long");
  uint64_t h = be__cache_hash(c, key, klen);
  be__cache_shard *s = be__cache_shard_of(c, h);
  entry *grave = NULL;
  int64_t now = be__cache_lookup_now(c);
  if ((*out = be__cache_get_unlocked(c, s, h, key, klen, now)) != NULL) return BE_OK;
  be__cache_lock_for(s, h);
  entry *e = be__cache_lookup_locked(c, s, h, key, klen, now, &grave);
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
  return e ? BE_OK : be__cache_miss(err);
}

int be_cache_get_copy(void *buf, size_t cap, size_t *out_len, be_cache *c, const void *key,
                      size_t klen, be_error **err) {
  if (out_len == NULL || c == NULL || (buf == NULL && cap) || (key == NULL && klen))
    return be__error_set(err, BE_E_MISUSE, "be_cache_get_copy: NULL out_len, cache, buf or key");
  if (klen > BE_CACHE_MAX_KEY) return be__error_field(err, "key", "too long");
  uint64_t h = be__cache_hash(c, key, klen);
  be__cache_shard *s = be__cache_shard_of(c, h);
  entry *grave = NULL;
  int rc;
  int64_t now = be__cache_lookup_now(c);
  if (get_copy_unlocked(c, s, h, key, klen, now, buf, cap, out_len)) return BE_OK;
  be__cache_lock_for(s, h);
  entry *e = be__cache_lookup_locked(c, s, h, key, klen, now, &grave);
  if (e && !(e->flags & BE__ENTRY_NEGATIVE)) {
    be__cache_touch_locked(c, s, e);
    s->hits++;
    *out_len = e->vlen;
    if (e->vlen <= cap) {
      copy_value(buf, e->data + e->klen, e->vlen);
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
  if (rc == BE_E_NOT_FOUND) return be__cache_miss(err);
  if (rc == BE_E_VALIDATION)
    return be__error_field(err, "buf_size", "%zu bytes is too small for the value of %zu bytes",
                           cap, *out_len);
  return rc;
}
