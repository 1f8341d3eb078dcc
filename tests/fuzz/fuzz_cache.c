/* SPDX-License-Identifier: MIT */
/* Cache operation sequences (set, get, get-copy, get-or-load, delete,
 * prefix registration and invalidation, sweep, clear, a fake clock moving
 * on) on a cache whose options come from the input, against a reference
 * model of what each key holds and until when. Checked:
 * - a key the model says is absent or expired is never returned;
 * - a returned value is the last one stored for that key;
 * - without bounds, a key the model holds unexpired is always returned
 *   (with bounds it may have been evicted, never changed);
 * - codes: BE_E_NOT_FOUND for misses, BE_E_VALIDATION for a bad TTL,
 *   a too-small copy buffer (with the value's length reported) or an
 *   entry larger than a shard's byte share;
 * - stats add up: hits + misses == lookups made, inserts == entries +
 *   every kind of removal, entries and bytes within the bounds, and the
 *   eviction callback ran once per removal the stats count.
 * A new cache per input: each input runs alone. */
#include "fuzz_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYS 24
#define VAL_MAX 300

enum { ABSENT,
       PRESENT,
       UNKNOWN };

typedef struct slot {
  char key[40];
  size_t klen;
  int state;
  char val[VAL_MAX];
  size_t vlen;
  int64_t expires_ns; /* 0 = never */
} slot;

static slot model[KEYS];
static int64_t now_ns, lookups, evict_calls;
static be_cache_options opts;
static int bounded;

static void on_evict(const void *k, size_t kl, const void *v, size_t vl, int32_t reason, void *ud) {
  (void)k, (void)kl, (void)v, (void)vl, (void)ud;
  FZ_CHECK(reason >= BE_CACHE_EVICT_SIZE && reason <= BE_CACHE_EVICT_REPLACED, "reason %d", reason);
  evict_calls++;
}

/* The key's live view: ABSENT, PRESENT or UNKNOWN (after a failed write
 * or an eviction). Expiry is exact to the nanosecond: dead from
 * expires_ns on. */
static int live(const slot *s) {
  if (s->state != PRESENT || s->expires_ns == 0) return s->state;
  return now_ns < s->expires_ns ? PRESENT : ABSENT;
}

static void found(slot *s, const void *v, size_t vl, const char *what) {
  int st = live(s);
  FZ_CHECK(st != ABSENT, "%s returned key %.*s, which the model says is gone", what, (int)s->klen,
           s->key);
  if (st == PRESENT)
    FZ_CHECK(vl == s->vlen && memcmp(v, s->val, vl) == 0, "%s: key %.*s has another value", what,
             (int)s->klen, s->key);
}

static void missed(slot *s, const char *what) {
  FZ_CHECK(bounded || live(s) != PRESENT, "%s missed key %.*s, which is live and unbounded", what,
           (int)s->klen, s->key);
  if (live(s) == PRESENT) s->state = UNKNOWN; /* evicted */
}

static void do_set(be_cache *c, fz_in *in, slot *s) {
  uint8_t t = fz_u8(in);
  int64_t ttl = t < 64 ? BE_CACHE_TTL_DEFAULT : t < 128 ? BE_CACHE_TTL_FOREVER
                                              : t < 250 ? t % 50 + 1
                                                        : -2 - t % 3;
  const char *v;
  size_t vl = fz_bytes(in, &v, VAL_MAX - 1);
  be_error *err = NULL;
  int rc = be_cache_set(c, s->key, s->klen, v, vl, ttl, &err);
  if (rc != BE_OK) {
    FZ_CHECK(rc == BE_E_VALIDATION && (ttl < -1 || opts.max_bytes > 0), "be_cache_set: %d %s", rc,
             be_error_message(err));
    be_error_free(err);
    s->state = UNKNOWN;
    return;
  }
  int64_t ms = ttl == BE_CACHE_TTL_DEFAULT ? opts.default_ttl_ms : ttl == BE_CACHE_TTL_FOREVER ? 0
                                                                                               : ttl;
  s->state = PRESENT;
  memcpy(s->val, v, vl);
  s->vlen = vl;
  s->expires_ns = ms ? now_ns + ms * 1000000 : 0;
}

static void do_get(be_cache *c, slot *s) {
  be_cache_entry *e = NULL;
  lookups++;
  int rc = be_cache_get(&e, c, s->key, s->klen, NULL);
  if (rc == BE_OK) {
    size_t vl = 0, kl = 0;
    const void *v = be_cache_entry_value(e, &vl);
    const void *k = be_cache_entry_key(e, &kl);
    FZ_CHECK(kl == s->klen && memcmp(k, s->key, kl) == 0, "the entry has another key");
    found(s, v, vl, "be_cache_get");
    be_cache_entry_release(e);
  } else {
    FZ_CHECK(rc == BE_E_NOT_FOUND && e == NULL, "be_cache_get: %d", rc);
    missed(s, "be_cache_get");
  }
}

static void do_get_copy(be_cache *c, fz_in *in, slot *s) {
  char buf[VAL_MAX];
  size_t size = fz_u8(in) % 2 ? sizeof buf : fz_u8(in) % 8, len = 0;
  lookups++;
  int rc = be_cache_get_copy(size ? buf : NULL, size, &len, c, s->key, s->klen, NULL);
  if (rc == BE_OK) {
    found(s, buf, len, "be_cache_get_copy");
  } else if (rc == BE_E_VALIDATION) {
    FZ_CHECK(len > size, "a copy refused with length %zu into %zu bytes", len, size);
    if (live(s) == PRESENT) FZ_CHECK(len == s->vlen, "reported length %zu, value %zu", len, s->vlen);
    FZ_CHECK(live(s) != ABSENT, "a gone key reported a length");
  } else {
    FZ_CHECK(rc == BE_E_NOT_FOUND, "be_cache_get_copy: %d", rc);
    missed(s, "be_cache_get_copy");
  }
}

typedef struct load_ud {
  const char *v;
  size_t vl;
  int calls, fail;
} load_ud;

static int loader(const void *k, size_t kl, be_cache_load *out, void *ud, be_error **err) {
  (void)k, (void)kl;
  load_ud *l = ud;
  l->calls++;
  if (l->fail) return be_error_new(err, BE_E_NOT_FOUND, "no such thing"), BE_E_NOT_FOUND;
  return be_cache_load_set_value(out, l->v, l->vl, BE_CACHE_TTL_DEFAULT, NULL);
}

static void do_load(be_cache *c, fz_in *in, slot *s) {
  load_ud l = {NULL, 0, 0, 0};
  l.fail = fz_u8(in) % 4 == 0;
  l.vl = fz_bytes(in, &l.v, VAL_MAX - 1);
  be_cache_entry *e = NULL;
  int32_t status = 0;
  be_error *err = NULL;
  lookups++;
  int rc = be_cache_get_or_load(&e, &status, c, s->key, s->klen, loader, &l, &err);
  if (status == BE_CACHE_HIT) {
    FZ_CHECK(rc == BE_OK && l.calls == 0, "a hit called the loader");
    size_t vl = 0;
    const void *v = be_cache_entry_value(e, &vl);
    found(s, v, vl, "be_cache_get_or_load");
  } else {
    FZ_CHECK(status == BE_CACHE_LOADED && l.calls == 1, "status %d, %d loader calls", status, l.calls);
    missed(s, "be_cache_get_or_load");
    if (l.fail) {
      FZ_CHECK(rc == BE_E_NOT_FOUND && err && be_error_code(err) == BE_E_NOT_FOUND, "load error %d", rc);
    } else {
      FZ_CHECK(rc == BE_OK, "be_cache_get_or_load: %d", rc);
      size_t vl = 0;
      const void *v = be_cache_entry_value(e, &vl);
      FZ_CHECK(vl == l.vl && memcmp(v, l.v, vl) == 0, "the loaded value changed");
      s->state = bounded ? UNKNOWN : PRESENT; /* a value too big is handed out, not cached */
      memcpy(s->val, l.v, l.vl);
      s->vlen = l.vl;
      s->expires_ns = opts.default_ttl_ms ? now_ns + opts.default_ttl_ms * 1000000 : 0;
    }
  }
  be_cache_entry_release(e);
  be_error_free(err);
}

static void do_delete(be_cache *c, slot *s) {
  int rc = be_cache_delete(c, s->key, s->klen, NULL);
  if (rc == BE_OK) FZ_CHECK(live(s) != ABSENT, "deleted key %.*s, which was gone", (int)s->klen, s->key);
  else FZ_CHECK(rc == BE_E_NOT_FOUND && (bounded || live(s) != PRESENT), "be_cache_delete: %d", rc);
  s->state = ABSENT;
}

static void do_prefix(be_cache *c, fz_in *in, int reg) {
  const char *p;
  size_t pl = fz_bytes(in, &p, 6);
  if (reg) {
    int rc = be_cache_register_prefix(c, p, pl, NULL);
    FZ_CHECK(rc == BE_OK || rc == BE_E_VALIDATION, "be_cache_register_prefix: %d", rc);
    return;
  }
  FZ_CHECK(be_cache_invalidate_prefix(c, p, pl, NULL) == BE_OK, "be_cache_invalidate_prefix");
  for (int i = 0; i < KEYS; i++)
    if (model[i].klen >= pl && memcmp(model[i].key, p, pl) == 0) model[i].state = ABSENT;
}

static void check_stats(be_cache *c) {
  be_cache_stats st = BE_CACHE_STATS_INIT;
  FZ_CHECK(be_cache_stats_get(&st, c, NULL) == BE_OK, "be_cache_stats_get");
  FZ_CHECK(st.hits + st.misses == lookups, "hits %lld + misses %lld != %lld lookups",
           (long long)st.hits, (long long)st.misses, (long long)lookups);
  int64_t removed = st.evictions_size + st.evictions_count + st.expirations + st.invalidations +
                    st.replacements;
  FZ_CHECK(st.inserts == st.entries + removed, "inserts %lld, entries %lld, removals %lld",
           (long long)st.inserts, (long long)st.entries, (long long)removed);
  FZ_CHECK(removed == evict_calls, "%lld removals, %lld eviction callbacks", (long long)removed,
           (long long)evict_calls);
  FZ_CHECK(!opts.max_entries || st.entries <= opts.max_entries, "%lld entries", (long long)st.entries);
  FZ_CHECK(!opts.max_bytes || st.bytes <= opts.max_bytes, "%lld bytes", (long long)st.bytes);
}

static void setup(fz_in *in, be_clock *clock) {
  uint8_t a = fz_u8(in), b = fz_u8(in);
  be_cache_options_init(&opts, BE_CACHE_OPTIONS_VERSION);
  opts.shard_count = 1u << (a % 4);
  opts.max_entries = (a & 0x10) ? b % 16 + 1 : 0;
  opts.max_bytes = (a & 0x20) ? (int64_t)fz_u16(in) % 8192 + 1 : 0;
  opts.default_ttl_ms = (a & 0x40) ? b % 40 : 0;
  opts.lru_mode = (a & 0x80) ? BE_CACHE_LRU_EXACT : BE_CACHE_LRU_DEFAULT;
  opts.sweep_batch = (int32_t)(b % 3) - 1;
  opts.seed = 42;
  opts.clock = clock;
  opts.on_evict = on_evict;
  bounded = opts.max_entries || opts.max_bytes;
  lookups = evict_calls = 0;
  memset(model, 0, sizeof model);
  for (int i = 0; i < KEYS; i++) {
    /* keys share prefixes, so prefix invalidation has work */
    model[i].klen = (size_t)snprintf(model[i].key, sizeof model[i].key, "%s%d", i % 3 ? "user:" : "p:", i);
    if (i == KEYS - 1) model[i].klen = 0; /* the empty key */
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  be_clock *clock = NULL;
  FZ_CHECK(be_clock_fake_new(&clock, 1000000000, 0, NULL) == BE_OK, "be_clock_fake_new");
  now_ns = be_clock_now_ns(clock);
  setup(&in, clock);
  be_cache *c = NULL;
  be_error *err = NULL;
  int rc = be_cache_new(&c, &opts, &err);
  FZ_CHECK(rc == BE_OK, "be_cache_new: %s", be_error_message(err));
  for (int ops = 0; in.n > 0 && ops < 200; ops++) {
    uint8_t op = fz_u8(&in);
    slot *s = &model[fz_u8(&in) % KEYS];
    switch (op % 11) {
      case 0:
      case 1: do_set(c, &in, s); break;
      case 2: do_get(c, s); break;
      case 3: do_get_copy(c, &in, s); break;
      case 4: do_load(c, &in, s); break;
      case 5: do_delete(c, s); break;
      case 6: do_prefix(c, &in, op & 0x80); break;
      case 7: { /* whole milliseconds, or a few nanoseconds to land next to an expiry */
        uint8_t a = fz_u8(&in);
        int64_t ns = a & 0x80 ? (int64_t)(a & 0x7f) - 64 : (int64_t)(a % 30) * 1000000;
        if (ns < 0) ns += 1000000; /* just under a millisecond */
        FZ_CHECK(be_clock_advance(clock, ns, NULL) == BE_OK, "advance");
        now_ns += ns;
        break;
      }
      case 8: FZ_CHECK(be_cache_sweep(NULL, c, fz_u8(&in) % 4, NULL) == BE_OK, "sweep"); break;
      case 9:
        if (op & 0x80) {
          FZ_CHECK(be_cache_clear(c, NULL) == BE_OK, "clear");
          for (int i = 0; i < KEYS; i++) model[i].state = ABSENT;
        }
        break;
      default: check_stats(c); break;
    }
  }
  check_stats(c);
  be_cache_free(c);
  be_clock_free(clock);
  return 0;
}
