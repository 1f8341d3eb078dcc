/* SPDX-License-Identifier: MIT */
/**
 * @file backend/cache.h
 * @brief Bounded, sharded LRU+TTL cache of byte strings with single-flight
 *        get-or-load, O(1) prefix invalidation and honest byte accounting.
 *
 * Keys and values are byte strings, copied in. A value is read either by
 * copy-out into the caller's buffer (be_cache_get_copy) or through a
 * reference-counted entry handle (be_cache_get, be_cache_get_or_load) that
 * stays valid after the entry is evicted, replaced or the cache is freed,
 * until be_cache_entry_release().
 *
 * The cache is split into shards (a power of two), each with its own lock
 * and recency list. The bounds are the whole cache's, not a shard's: a
 * cache with max_entries = N holds N entries, in whatever shards their
 * keys hash to, before it evicts anything, and the (N + k)th distinct key
 * evicts exactly k entries; max_bytes likewise (a set evicts only when
 * the bytes held plus its entry's charge would pass max_bytes). When a
 * set finds the cache full it evicts from its own key's shard (that
 * shard's LRU or CLOCK victim, never the entry just written); only when
 * that shard holds nothing else does it evict from the next shards in
 * turn. So eviction order is LRU (or CLOCK) within each shard, not
 * across shards: with one shard it is exact global LRU, with more an
 * entry may be evicted while an older one lives in another shard. Under
 * concurrent writers the totals may pass a bound by the entries being
 * written at that instant (each write then evicts its own excess before
 * it returns); once writes stop, both totals are within the bounds.
 *
 * Recency (be_cache_options.lru_mode): by default a hit only marks the
 * entry as referenced (once; later hits write nothing), and eviction takes
 * the list tail, giving marked entries a second chance (unmarked and moved
 * to the front) instead: "CLOCK", the usual approximation of LRU, which
 * keeps hits from writing the list and its neighbours' cache lines. The
 * victim is an entry that was not read since it was stored or since the
 * last eviction in its shard, unless every other entry left in the shard
 * was read too; hits never reorder the list. With BE_CACHE_LRU_EXACT every
 * hit moves the entry to the front and eviction follows exact LRU order
 * within a shard (with one shard, exact global LRU).
 *
 * Expiry is lazy: an expired entry is never returned; it is removed when a
 * lookup or write meets it, when it reaches the LRU tail, or by the sweep
 * that every write advances by a few buckets (no thread needed), or by
 * be_cache_sweep(). Until then it still counts in the entries/bytes stats.
 *
 * Typical use (the user service): a cache with default_ttl_ms = 300000
 * (5 min) and a registered prefix "user:"; reads through be_cache_get_or_load() with
 * key "user:{id}", be_cache_delete() on update, and
 * be_cache_invalidate_prefix("user:") to drop every user in O(1).
 *
 * Lengths: keys, values and prefixes are byte strings given by pointer and
 * exact length (klen, vlen, plen). BE_NUL_TERMINATED is not accepted here:
 * a key or prefix length over BE_CACHE_MAX_KEY (as BE_NUL_TERMINATED is)
 * fails with BE_E_VALIDATION (field "key" or "prefix") before the bytes
 * are read. A pointer may be NULL only when its length is 0.
 *
 * Thread-safety: every function on a be_cache may be called from any
 * thread concurrently, except be_cache_free(). Entry handles may be read
 * and released from any thread. In the default recency mode a hit takes no
 * lock and writes no shared memory; writes and misses take a shard lock.
 * Each thread that reads keeps a small process-wide slot (one cache line)
 * while it lives. No function is async-signal-safe: do not call the cache
 * from a signal handler.
 */
#ifndef BACKEND_CACHE_H
#define BACKEND_CACHE_H

#include <backend/common.h>
#include <backend/clock.h>

BE_BEGIN_DECLS

/** The cache (opaque). */
typedef struct be_cache be_cache;
/** A reference-counted read-only handle to one cached key and value. */
typedef struct be_cache_entry be_cache_entry;
/** The out-parameter a loader fills with be_cache_load_set_value(). */
typedef struct be_cache_load be_cache_load;

/** @name TTL arguments of be_cache_set() and be_cache_load_set_value() */
/** @{ */
#define BE_CACHE_TTL_DEFAULT INT64_C(0)  /**< the cache's default_ttl_ms */
#define BE_CACHE_TTL_FOREVER INT64_C(-1) /**< never expires (LRU still applies) */
/** @} */

/** @name Per-call result of be_cache_get_or_load() (*out_status) */
/** @{ */
#define BE_CACHE_HIT 1      /**< served from the cache */
#define BE_CACHE_LOADED 2   /**< missed; this call ran the loader */
#define BE_CACHE_SHARED 3   /**< missed; waited for another call's load */
#define BE_CACHE_NEGATIVE 4 /**< a cached loader error was returned */
/** @} */

/** @name Eviction callback reasons */
/** @{ */
#define BE_CACHE_EVICT_SIZE 1        /**< evicted to stay under max_bytes */
#define BE_CACHE_EVICT_COUNT 2       /**< evicted to stay under max_entries */
#define BE_CACHE_EVICT_EXPIRED 3     /**< its TTL passed */
#define BE_CACHE_EVICT_INVALIDATED 4 /**< delete, prefix invalidation or clear */
#define BE_CACHE_EVICT_REPLACED 5    /**< overwritten by a newer value */
/** @} */

/** At most this many prefixes may be registered per cache. */
#define BE_CACHE_MAX_PREFIXES 8
/** Longest key accepted, in bytes. */
#define BE_CACHE_MAX_KEY 65535

/**
 * Eviction callback: an entry left the cache for `reason` (BE_CACHE_EVICT_*).
 * key (klen bytes) and value (vlen bytes) are borrowed for the call;
 * user_data is be_cache_options.evict_user_data. It runs on the thread whose call
 * removed the entry, after the cache's locks are released, so it may call
 * into the cache. Not called for cached loader errors, nor by
 * be_cache_free().
 */
typedef void (*be_cache_evict_fn)(const void *key, size_t klen, const void *value,
                                  size_t vlen, int32_t reason, void *user_data);

/**
 * Loader for be_cache_get_or_load(): produce the value of `key` (klen
 * bytes, borrowed for the call) and store it with
 * be_cache_load_set_value(out, ...), then return BE_OK; or return a
 * negative BE_E_* code, optionally with *err set (owned by the cache from
 * then on). It runs without any cache lock held, so it may use the cache,
 * except get-or-load of the same key (that would wait for itself).
 * user_data is the one given to be_cache_get_or_load().
 */
typedef int (*be_cache_loader_fn)(const void *key, size_t klen, be_cache_load *out,
                                  void *user_data, be_error **err);

/** @name Recency policies (be_cache_options.lru_mode) */
/** @{ */
#define BE_CACHE_LRU_DEFAULT 0 /**< the library's default: BE_CACHE_LRU_APPROX */
#define BE_CACHE_LRU_EXACT 1   /**< every hit moves the entry to the front */
#define BE_CACHE_LRU_APPROX 2  /**< a hit marks the entry; second chance on eviction */
/** @} */

/** The be_cache_options layout this header describes: version 2 has
 * lru_mode; version-1 structs (which end before it) are still accepted. */
#define BE_CACHE_OPTIONS_VERSION 2

/** Cache options; fill with BE_CACHE_OPTIONS_INIT or be_cache_options_init(). */
typedef struct be_cache_options {
  uint32_t version;           /**< BE_CACHE_OPTIONS_VERSION */
  uint32_t shard_count;       /**< 0 = 16; rounded up to a power of two, at most 1024,
                                and lowered to at most max_entries */
  int64_t max_entries;        /**< entries the whole cache holds; 0 = no bound */
  int64_t max_bytes;          /**< bytes the whole cache holds, counting be_cache_charge()
                                per entry; 0 = no bound */
  int64_t default_ttl_ms;     /**< TTL (ms) for BE_CACHE_TTL_DEFAULT; 0 = never expire */
  int64_t negative_ttl_ms;    /**< > 0: cache non-retryable loader errors this many ms */
  int32_t ttl_jitter_pct;     /**< 0..100: each TTL is cut by a random 0..pct % */
  int32_t sweep_batch;        /**< buckets each write sweeps for dead entries:
                                0 = default (4), negative = no automatic sweep */
  uint64_t seed;              /**< seeds the hash and jitter; 0 = random per cache */
  be_clock *clock;            /**< borrowed, must outlive the cache; NULL = system */
  be_cache_evict_fn on_evict; /**< may be NULL */
  void *evict_user_data;      /**< passed as is to on_evict */
  /* version 2 */
  int32_t lru_mode; /**< BE_CACHE_LRU_DEFAULT (0), _EXACT or _APPROX */
} be_cache_options;

/** Static initializer: 16 shards, no bounds, no TTL, the system clock,
 * BE_CACHE_LRU_DEFAULT. */
#define BE_CACHE_OPTIONS_INIT \
  { BE_CACHE_OPTIONS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, 0 }

/**
 * Fill *opts like BE_CACHE_OPTIONS_INIT, for a struct of the given
 * version (only that version's fields are written). Thread-safety: safe.
 *
 * @param opts     the struct to fill; not NULL.
 * @param version  1 or 2 (BE_CACHE_OPTIONS_VERSION), the layout of *opts.
 * @return BE_OK, or BE_E_MISUSE (opts NULL, version 0 or newer than
 *         BE_CACHE_OPTIONS_VERSION).
 */
BE_API int be_cache_options_init(be_cache_options *opts, uint32_t version);

/** The be_cache_stats layout this header describes (its version field). */
#define BE_CACHE_STATS_VERSION 1

/**
 * A snapshot of counters (all since creation, except entries and bytes).
 * inserts == entries + evictions_size + evictions_count + expirations +
 * invalidations + replacements at any quiet moment.
 */
typedef struct be_cache_stats {
  uint32_t version;        /**< set by the caller to BE_CACHE_STATS_VERSION */
  uint32_t shard_count;    /**< shards actually used */
  int64_t hits;            /**< lookups that returned a cached value */
  int64_t misses;          /**< lookups that found no live value */
  int64_t negative_hits;   /**< get-or-load calls answered by a cached error */
  int64_t loads;           /**< loader calls */
  int64_t load_errors;     /**< loader calls that failed */
  int64_t load_waits;      /**< get-or-load calls that shared another's load */
  int64_t inserts;         /**< entries put into the cache */
  int64_t replacements;    /**< live entries overwritten */
  int64_t evictions_size;  /**< live entries evicted by max_bytes */
  int64_t evictions_count; /**< live entries evicted by max_entries */
  int64_t expirations;     /**< entries removed after their TTL */
  int64_t invalidations;   /**< entries removed by delete, prefix or clear */
  int64_t entries;         /**< entries held now (dead ones not yet swept too) */
  int64_t bytes;           /**< sum of be_cache_charge() of held entries */
  int64_t memory_bytes;    /**< bytes the cache allocated now, exactly:
                                 entries, hash tables, shards, prefixes */
} be_cache_stats;

/** Static initializer: the current version, every counter 0. */
#define BE_CACHE_STATS_INIT                         \
  { BE_CACHE_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, \
    0, 0, 0, 0, 0, 0, 0, 0 }
/**
 * Set *out to BE_CACHE_STATS_INIT (for bindings that cannot use the macro).
 * Thread-safety: safe.
 *
 * @param out      the struct to fill; not NULL.
 * @param version  BE_CACHE_STATS_VERSION.
 * @return BE_OK, or BE_E_MISUSE (out NULL, or version is not
 *         BE_CACHE_STATS_VERSION).
 */
BE_API int be_cache_stats_init(be_cache_stats *out, uint32_t version);

/**
 * Bytes an entry with these key and value lengths counts against
 * max_bytes: the key, the value, the entry header and its share of the
 * hash table, two slots (a shard's first 512 slots are a fixed cost, like
 * the shard itself; the allocator's own per-block bookkeeping is not
 * included). Thread-safety: safe.
 *
 * @param klen  the key's length in bytes.
 * @param vlen  the value's length in bytes.
 * @return the charge in bytes; 0 when klen exceeds BE_CACHE_MAX_KEY or the
 *         value is too large to cache.
 */
BE_API int64_t be_cache_charge(size_t klen, size_t vlen);

/**
 * Create a cache. Thread-safety: safe.
 *
 * @param out   receives the cache, the caller's (be_cache_free()); not
 *              NULL. Set to NULL on failure.
 * @param opts  the options, version 1 or 2 set (copied; clock is
 *              borrowed); NULL means the defaults (16 shards, unbounded,
 *              no TTL).
 * @param err   receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (out NULL, opts->version unknown);
 *         BE_E_VALIDATION (negative bounds or TTLs, jitter outside 0..100,
 *         unknown lru_mode; the field is named); BE_E_NOMEM.
 */
BE_API int be_cache_new(be_cache **out, const be_cache_options *opts,
                        be_error **err);

/**
 * Free the cache and every entry no handle holds; handles stay valid until
 * released. No callbacks run. Thread-safety: no other call on this cache
 * may be in progress or follow.
 *
 * @param cache  the cache, or NULL (a no-op).
 */
BE_API void be_cache_free(be_cache *cache);

/**
 * Store a copy of key and value, replacing any entry for key. The new
 * entry is the most recently used; least recently used entries (see
 * lru_mode) are evicted to respect the bounds. An in-flight load of the
 * same key will not overwrite this value. Thread-safety: safe.
 *
 * @param cache   the cache; not NULL.
 * @param key     the key, copied; may be NULL only when klen is 0.
 * @param klen    the key's length in bytes, at most BE_CACHE_MAX_KEY.
 * @param value   the value, copied; may be NULL only when vlen is 0.
 * @param vlen    the value's length in bytes.
 * @param ttl_ms  time to live in milliseconds (> 0), BE_CACHE_TTL_DEFAULT
 *                or BE_CACHE_TTL_FOREVER (ms, like every configured
 *                duration; expiry itself is exact to the nanosecond of the
 *                cache's clock); then cut by the jitter option.
 * @param err     receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (cache NULL, key or value NULL with a
 *         length); BE_E_VALIDATION (ttl_ms below -1, key longer than
 *         BE_CACHE_MAX_KEY, or the entry's charge larger than
 *         max_bytes: field "value"); BE_E_NOMEM.
 */
BE_API int be_cache_set(be_cache *cache, const void *key, size_t klen,
                        const void *value, size_t vlen, int64_t ttl_ms,
                        be_error **err);

/**
 * Look key up; on a hit the entry counts as used (see lru_mode).
 * Thread-safety: safe.
 *
 * @param out    receives a new handle on a hit (release it with
 *               be_cache_entry_release()), NULL otherwise; not NULL.
 * @param cache  the cache; not NULL.
 * @param key    the key; may be NULL only when klen is 0.
 * @param klen   the key's length in bytes.
 * @param err    receives the error on failure, a miss included; may be
 *               NULL (hot paths pass NULL, which allocates nothing).
 * @return BE_OK on a hit; BE_E_NOT_FOUND (a miss); BE_E_MISUSE (out or
 *         cache NULL, key NULL with a length).
 */
BE_API int be_cache_get(be_cache_entry **out, be_cache *cache,
                        const void *key, size_t klen, be_error **err);

/**
 * Look key up and copy its value into the caller's buffer. When the value
 * is longer than buf_size nothing is copied and BE_E_VALIDATION is
 * returned with *out_len set, so the caller can retry with a larger
 * buffer. Thread-safety: safe.
 *
 * @param buf       receives the value; may be NULL only when buf_size is 0.
 * @param buf_size  capacity of buf in bytes.
 * @param out_len   receives the value's length on a hit (also when buf is
 *                  too small); not NULL.
 * @param cache     the cache; not NULL.
 * @param key       the key; may be NULL only when klen is 0.
 * @param klen      the key's length in bytes.
 * @param err       receives the error on failure, a miss included; may be
 *                  NULL.
 * @return BE_OK; BE_E_NOT_FOUND (a miss); BE_E_VALIDATION (buffer too
 *         small, field "buf_size"); BE_E_MISUSE (out_len or cache NULL, buf
 *         NULL with a size, key NULL with a length).
 */
BE_API int be_cache_get_copy(void *buf, size_t buf_size, size_t *out_len,
                             be_cache *cache, const void *key, size_t klen,
                             be_error **err);

/**
 * Get key, or load it with at most one loader call per key at a time: the
 * first caller to miss runs loader(key, klen, load, user_data, &e) without
 * holding any lock; concurrent callers for the same key wait for its result
 * (callers for other keys do not). A successful value is cached (unless the
 * key was set, deleted or invalidated while loading) and every caller gets
 * a handle to it in *out. A loader error is returned to the loading caller
 * and every waiter (each gets its own copy of the error in *err) and is not
 * cached, except with negative_ttl_ms > 0 when the error is not retryable
 * and not BE_E_NOMEM/MISUSE/INTERNAL: later calls then get the same code
 * and message with status BE_CACHE_NEGATIVE until that TTL passes.
 * Thread-safety: safe; the loader must not get-or-load the same key.
 *
 * @param out         receives a handle to the value on success (release it
 *                    with be_cache_entry_release()), NULL otherwise; not
 *                    NULL.
 * @param out_status  receives BE_CACHE_HIT, _LOADED, _SHARED or _NEGATIVE
 *                    (0 for misuse); may be NULL.
 * @param cache       the cache; not NULL.
 * @param key         the key; may be NULL only when klen is 0.
 * @param klen        the key's length in bytes, at most BE_CACHE_MAX_KEY.
 * @param loader      produces the value on a miss; not NULL.
 * @param user_data   passed as is to loader; may be NULL.
 * @param err         receives the error on failure (the loader's, copied
 *                    for each caller); may be NULL.
 * @return BE_OK; the loader's code (BE_E_INTERNAL when it returned BE_OK
 *         without a value); BE_E_MISUSE (out, cache or loader NULL, key
 *         NULL with a length); BE_E_VALIDATION (key too long); BE_E_NOMEM.
 */
BE_API int be_cache_get_or_load(be_cache_entry **out, int32_t *out_status,
                                be_cache *cache, const void *key, size_t klen,
                                be_cache_loader_fn loader, void *user_data,
                                be_error **err);

/**
 * From inside a loader: set the loaded value and its TTL. Calling it again
 * replaces the value. A value too large for the byte bound is still handed
 * to the callers but not cached.
 * Thread-safety: only during the loader call that received `load`.
 *
 * @param load    the loader's `out` argument; not NULL.
 * @param value   the value, copied; may be NULL only when vlen is 0.
 * @param vlen    the value's length in bytes.
 * @param ttl_ms  as for be_cache_set().
 * @param err     receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (load NULL, value NULL with a length);
 *         BE_E_VALIDATION (ttl_ms below -1, value too large); BE_E_NOMEM.
 */
BE_API int be_cache_load_set_value(be_cache_load *load, const void *value,
                                   size_t vlen, int64_t ttl_ms, be_error **err);

/**
 * Remove key (eviction reason BE_CACHE_EVICT_INVALIDATED). A load of key
 * in flight will not cache its result. Thread-safety: safe.
 *
 * @param cache  the cache; not NULL.
 * @param key    the key; may be NULL only when klen is 0.
 * @param klen   the key's length in bytes.
 * @param err    receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_NOT_FOUND (no live entry); BE_E_MISUSE (cache NULL,
 *         key NULL with a length).
 */
BE_API int be_cache_delete(be_cache *cache, const void *key, size_t klen,
                           be_error **err);

/**
 * Register a prefix (e.g. "user:") so that be_cache_invalidate_prefix() of
 * exactly these bytes is O(1): it bumps a generation and entries older than
 * it die lazily. Registering takes one pass over the cache; registering a
 * prefix twice is a no-op. Thread-safety: safe.
 *
 * @param cache   the cache; not NULL.
 * @param prefix  the prefix bytes, copied; may be NULL only when plen is 0.
 * @param plen    the prefix's length in bytes, at most BE_CACHE_MAX_KEY.
 * @param err     receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (cache NULL, prefix NULL with a length);
 *         BE_E_VALIDATION (already BE_CACHE_MAX_PREFIXES prefixes, prefix
 *         longer than BE_CACHE_MAX_KEY; field "prefix"); BE_E_NOMEM.
 */
BE_API int be_cache_register_prefix(be_cache *cache, const void *prefix,
                                    size_t plen, be_error **err);

/**
 * Invalidate every entry whose key starts with prefix: O(1) for a
 * registered prefix, otherwise one pass over all shards (one shard locked
 * at a time). Sets that completed before the call are gone after it; sets
 * that start after it returns are kept; loads in flight do not cache.
 * Thread-safety: safe.
 *
 * @param cache   the cache; not NULL.
 * @param prefix  the prefix bytes; may be NULL only when plen is 0 (which
 *                matches every key).
 * @param plen    the prefix's length in bytes.
 * @param err     receives the error on failure; may be NULL.
 * @return BE_OK, or BE_E_MISUSE (cache NULL, prefix NULL with a length).
 */
BE_API int be_cache_invalidate_prefix(be_cache *cache, const void *prefix,
                                      size_t plen, be_error **err);

/**
 * Remove every entry (reason BE_CACHE_EVICT_INVALIDATED) and shrink the
 * hash tables. Thread-safety: safe.
 *
 * @param cache  the cache; not NULL.
 * @param err    receives the error on failure; may be NULL.
 * @return BE_OK, or BE_E_MISUSE (cache NULL).
 */
BE_API int be_cache_clear(be_cache *cache, be_error **err);

/**
 * Remove dead (expired or invalidated) entries. Thread-safety: safe.
 *
 * @param out_removed  receives how many were removed; may be NULL.
 * @param cache        the cache; not NULL.
 * @param max_buckets  hash buckets to look at per shard, from where the
 *                     last sweep stopped; 0 = all of them.
 * @param err          receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (cache NULL); BE_E_VALIDATION (max_buckets
 *         negative).
 */
BE_API int be_cache_sweep(int64_t *out_removed, be_cache *cache,
                          int64_t max_buckets, be_error **err);

/**
 * Fill *out with a snapshot; the library fills the fields out->version
 * has. Counters of different shards are read one shard at a time, so a
 * snapshot taken under load is not atomic. Thread-safety: safe.
 *
 * @param out    the snapshot to fill; its version set by the caller
 *               (BE_CACHE_STATS_INIT or be_cache_stats_init()); not NULL.
 * @param cache  the cache; not NULL.
 * @param err    receives the error on failure; may be NULL.
 * @return BE_OK, or BE_E_MISUSE (NULL, unknown version).
 */
BE_API int be_cache_stats_get(be_cache_stats *out, const be_cache *cache, be_error **err);

/**
 * The entry's value. Thread-safety: safe.
 *
 * @param entry    a handle, or NULL.
 * @param out_len  receives the value's length in bytes (0 for NULL); may
 *                 be NULL.
 * @return the value, borrowed: valid until the handle is released; never
 *         changes; no alignment is promised. NULL for a NULL handle.
 */
BE_API const void *be_cache_entry_value(const be_cache_entry *entry,
                                        size_t *out_len);

/**
 * The entry's key, as be_cache_entry_value(). Thread-safety: safe.
 *
 * @param entry    a handle, or NULL.
 * @param out_len  receives the key's length in bytes (0 for NULL); may be
 *                 NULL.
 * @return the key, borrowed until the handle is released; NULL for a NULL
 *         handle.
 */
BE_API const void *be_cache_entry_key(const be_cache_entry *entry,
                                      size_t *out_len);

/**
 * When the entry expires. Thread-safety: safe.
 *
 * @param entry  a handle, or NULL.
 * @return the monotonic time (of the cache's clock, ns) at which it
 *         expires; INT64_MAX when never; 0 for NULL.
 */
BE_API int64_t be_cache_entry_expires_ns(const be_cache_entry *entry);

/**
 * Release a handle; the memory goes when the last handle is released and
 * the entry has left the cache. Thread-safety: safe.
 *
 * @param entry  a handle from be_cache_get() or be_cache_get_or_load(), or
 *               NULL (a no-op). It must not be used afterwards.
 */
BE_API void be_cache_entry_release(be_cache_entry *entry);

BE_END_DECLS

#endif /* BACKEND_CACHE_H */
