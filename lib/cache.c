/* SPDX-License-Identifier: MIT */
/* be_cache's lifecycle: options, creation (shards, their tables and
 * bounds, the hit stripes), destruction, and the entries themselves (one
 * allocation each) with their handle accessors. How the cache works and
 * where the rest of it lives: cache_internal.h. */
#include <backend/cache.h>
#include <backend/error.h>

#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "cache_internal.h"
#include "clock.h"
#include "error.h"

#define DEFAULT_SHARDS 16u
#define MAX_SHARDS 1024u
#define DEFAULT_SWEEP 4u

typedef struct be_cache_entry entry;

/* ---- entries ---- */

int64_t be_cache_charge(size_t klen, size_t vlen) {
  return be__cache_lengths_ok(klen, vlen) ? (int64_t)be__cache_charge_of(klen, vlen) : 0;
}

entry *be__cache_entry_new(be_cache *c, const void *key, size_t klen, const void *value,
                           size_t vlen) {
  size_t size = BE__ENTRY_HDR + klen + vlen;
  entry *e = c ? be__cache_spare_take(c, size) : NULL;
  if (e == NULL) e = be__malloc(size);
  if (e == NULL) return NULL;
  e->hnext = e->prev = e->next = NULL;
  e->expires = BE__CACHE_NEVER;
  e->epoch = 0;
  atomic_init(&e->refs, 1);
  e->klen = (uint16_t)klen;
  e->vlen = (uint32_t)vlen;
  e->flags = 0;
  e->pmask = 0;
  const unsigned char *k = key;
  if (klen >= 8 && klen <= 16) { /* the usual key: two overlapping moves, no call */
    uint64_t a = be__cache_load64(k), b = be__cache_load64(k + klen - 8);
    memcpy(e->data, &a, 8);
    memcpy(e->data + klen - 8, &b, 8);
  } else if (klen) {
    memcpy(e->data, key, klen);
  }
  if (vlen) memcpy(e->data + klen, value, vlen);
  return e;
}

void be__cache_entry_unref(entry *e) {
  if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1) be__free(e);
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

/* ---- options ---- */

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

/* The caller's options, the fields its version lacks at their defaults. */
static int read_options(be_cache_options *o, const be_cache_options *opts, be_error **err) {
  be_cache_options d = BE_CACHE_OPTIONS_INIT;
  *o = d;
  if (opts != NULL) {
    size_t n = options_size(opts->version);
    if (n == 0)
      return be__error_set(err, BE_E_MISUSE, "unknown be_cache_options version %u",
                           (unsigned)opts->version);
    memcpy(o, opts, n);
  }
  return check_options(o, err);
}

/* ---- creation and destruction ---- */

/* The first cache-line boundary in a block allocated 64 bytes larger
 * than needed (be__malloc aligns to 16 only). */
static void *align_line(void *mem) { return (void *)(((uintptr_t)mem + 63) & ~(uintptr_t)63); }

/* A power of two, at most MAX_SHARDS, and no more shards than entries. */
static uint32_t shard_count(const be_cache_options *o) {
  uint32_t n = o->shard_count ? o->shard_count : DEFAULT_SHARDS;
  if (n > MAX_SHARDS) n = MAX_SHARDS;
  uint32_t p = 1;
  while (p < n) p <<= 1;
  while (p > 1 && o->max_entries && o->max_entries < (int64_t)p) p >>= 1;
  return p;
}

static void configure(be_cache *c, const be_cache_options *o) {
  c->seed = o->seed ? o->seed
                    : (uint64_t)be_clock_now_ns(NULL) ^ (uint64_t)(uintptr_t)c ^
                        UINT64_C(0x2545f4914f6cdd1d);
  c->default_ttl = be__ms_to_ns(o->default_ttl_ms);
  c->negative_ttl = be__ms_to_ns(o->negative_ttl_ms);
  c->jitter_pct = o->ttl_jitter_pct;
  c->sweep_batch = o->sweep_batch < 0    ? 0
                   : o->sweep_batch == 0 ? DEFAULT_SWEEP
                                         : (uint32_t)o->sweep_batch;
  c->lru_exact = o->lru_mode == BE_CACHE_LRU_EXACT;
  c->max_count = o->max_entries ? (uint64_t)o->max_entries : UINT64_MAX; /* checked >= 0 */
  c->max_bytes = o->max_bytes ? (uint64_t)o->max_bytes : UINT64_MAX;
  atomic_init(&c->total_count, 0);
  atomic_init(&c->total_bytes, 0);
  c->clock = o->clock;
  c->on_evict = o->on_evict;
  c->evict_ud = o->evict_user_data;
  atomic_init(&c->nprefixes, 0);
  atomic_init(&c->epoch, 0);
  atomic_init(&c->expiring, 0);
  atomic_init(&c->retry_pending, 0);
  atomic_init(&c->retry_skip, 0);
  for (uint32_t i = 0; i < BE_CACHE_MAX_PREFIXES; i++) {
    atomic_init(&c->prefixes[i].inval_epoch, 0);
    atomic_init(&c->prefixes[i].ready, 0);
  }
}

/* Give each of the n shards its table and its random stream. Returns the shards made (n unless a table failed). */
static uint32_t make_shards(be_cache *c, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    be__cache_shard *s = &c->shards[i];
    be__cache_table *t = be__cache_table_new(BE__CACHE_INITIAL_BUCKETS);
    if (t == NULL) return i;
    be__cache_publish_table(s, t);
    be__cache_floors_reset(s);
    s->rng = c->seed ^ ((uint64_t)i * UINT64_C(0xd1342543de82ef95));
    atomic_init(&s->lock.held, 0u);
  }
  return n;
}

/* Free a cache whose first `made` shards have tables (creation failed
 * part way). */
static void free_partial(be_cache *c, uint32_t made) {
  if (c->shards_mem) {
    for (uint32_t i = 0; i < made; i++) be__free(c->shards[i].table);
    be__free(c->shards_mem);
  }
  be__free(c->stripes_mem);
  be__free(c);
}

int be_cache_new(be_cache **out, const be_cache_options *opts, be_error **err) {
  if (out == NULL) return be__error_set(err, BE_E_MISUSE, "be_cache_new: out is NULL");
  *out = NULL;
  be_cache_options o;
  int rc = read_options(&o, opts, err);
  if (rc != BE_OK) return rc;
  uint32_t n = shard_count(&o), made = 0;

  be_cache *c = be__calloc(1, sizeof *c);
  if (c == NULL) return be__error_oom(err);
  c->shards_mem_size = (size_t)n * sizeof(be__cache_shard) + 64;
  c->shards_mem = be__calloc(1, c->shards_mem_size);
  c->stripes_mem = be__calloc(1, BE__CACHE_STRIPES_MEM);
  if (c->shards_mem == NULL || c->stripes_mem == NULL) goto oom;
  c->shards = align_line(c->shards_mem);
  c->nshards = n;
  while ((1u << c->shard_bits) < n) c->shard_bits++;
  c->stripes = align_line(c->stripes_mem);
  for (uint32_t i = 0; i < BE__CACHE_STRIPES; i++) atomic_init(&c->stripes[i].hits, 0);
  configure(c, &o);
  made = make_shards(c, n);
  if (made < n) goto oom;
  if (pthread_mutex_init(&c->reg_mu, NULL) != 0) goto oom;
  atomic_init(&c->retire_lock.held, 0u);
  *out = c;
  return BE_OK;

oom:
  free_partial(c, made);
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
  be__cache_reclaim(c, 1); /* no reader can be inside: the caller owns the cache now */
  be__cache_spares_drop(c);
  be__free(c->stripes_mem);
  uint32_t np = atomic_load(&c->nprefixes);
  for (uint32_t i = 0; i < np; i++) be__free(c->prefixes[i].bytes);
  pthread_mutex_destroy(&c->reg_mu);
  be__free(c->shards_mem);
  be__free(c);
}
