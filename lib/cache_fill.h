/* SPDX-License-Identifier: MIT */
/* Conditional fills of a be_cache, for a service that reads the source
 * itself (a batch query, a read that must bypass the cache) rather than
 * through be_cache_get_or_load's loader. A fill begun before the read
 * stores its value only if nothing wrote the key since: a set, a delete,
 * a clear, a prefix invalidation, or another fill or load that stored
 * first. So a writer that commits and then deletes the key never has its
 * change hidden by a read that started before the commit. */
#ifndef BE_LIB_CACHE_FILL_H
#define BE_LIB_CACHE_FILL_H

#include <backend/cache.h>
#include <stddef.h>

typedef struct be__cache_fill be__cache_fill;

/* Begin a fill of key: call before reading the source. NULL when out of
 * memory or the key is too long (a later be__cache_fill_end(NULL, ...)
 * stores nothing: a fill is best effort). */
be__cache_fill *be__cache_fill_begin(be_cache *cache, const void *key, size_t klen);

/* End fill (NULL: nothing): store value (vlen bytes, the cache's default
 * TTL) unless the key was written since the fill began, or value is
 * NULL (the read found nothing or failed). Frees fill. Returns 1 when
 * the value was stored. */
int be__cache_fill_end(be__cache_fill *fill, const void *value, size_t vlen);

#endif
