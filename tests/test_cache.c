/* SPDX-License-Identifier: MIT */
/* The LRU+TTL cache: a randomized model test, TTL boundaries, bounds,
 * prefix invalidation, single flight, negative caching, stats, allocation
 * failures and thread safety. Time moves only through a fake clock. */
#include "testutil.h"

#include "cache_fill.h"     /* conditional fills, tested directly */
#include "cache_internal.h" /* BE__CACHE_STRIPES */
#include "ebr.h"            /* the reclamation scheme, tested directly */
#include "spinlock.h"       /* the shard lock, tested directly */

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>

#define SEC BE_NS_PER_SEC
#define MS BE_NS_PER_MS

/* ---- helpers ---- */

/* Check records every passing ck_assert; the model loop runs hundreds of
 * thousands of comparisons, so it only calls into Check on a failure. */
#define QEQ(a, b)                                                    \
  do {                                                               \
    if ((uint64_t)(a) != (uint64_t)(b)) ck_assert_uint_eq((a), (b)); \
  } while (0)
#define QTRUE(c, ...)                          \
  do {                                         \
    if (!(c)) ck_assert_msg((c), __VA_ARGS__); \
  } while (0)

static uint64_t rng_state;
static uint64_t rnd(void) { /* xorshift64*: deterministic per seed */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * UINT64_C(0x2545F4914F6CDD1D);
}
static uint64_t rnd_below(uint64_t n) { return n ? rnd() % n : 0; }

/* A second thread holding a reader slot, outside any read section:
 * removed entries then wait for a grace period (be__ebr_sole_reader() is
 * 0), as in any process where another thread reads without a lock. */
typedef struct idle_reader {
  pthread_t t;
  _Atomic int phase; /* 1 registered, 2 told to end */
} idle_reader;

static void *idle_reader_thread(void *p) {
  idle_reader *r = p;
  ck_assert_ptr_nonnull(be__ebr_self());
  atomic_store(&r->phase, 1);
  while (atomic_load(&r->phase) != 2) {
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  return NULL;
}

static void idle_reader_start(idle_reader *r) {
  atomic_init(&r->phase, 0);
  ck_assert_int_eq(pthread_create(&r->t, NULL, idle_reader_thread, r), 0);
  while (atomic_load(&r->phase) != 1) sched_yield();
}

static void idle_reader_stop(idle_reader *r) {
  atomic_store(&r->phase, 2);
  pthread_join(r->t, NULL); /* its slot goes back at exit */
}

static be_cache *new_cache(be_clock *clk, uint32_t shards, int64_t max_entries,
                           int64_t max_bytes, int64_t default_ttl) {
  be_cache_options o = BE_CACHE_OPTIONS_INIT;
  o.clock = clk;
  o.shard_count = shards;
  o.max_entries = max_entries;
  o.max_bytes = max_bytes;
  o.default_ttl_ms = default_ttl;
  o.seed = 42;
  be_cache *c = NULL;
  ck_assert_int_eq(be_cache_new(&c, &o, NULL), BE_OK);
  return c;
}

static int sets(be_cache *c, const char *k, const char *v, int64_t ttl) {
  return be_cache_set(c, k, strlen(k), v, strlen(v), ttl, NULL);
}

/* Returns 1 and the value in buf on a hit, 0 on a miss. */
static int gets(be_cache *c, const char *k, char *buf, size_t cap) {
  size_t n = 0;
  int rc = be_cache_get_copy(buf, cap - 1, &n, c, k, strlen(k), NULL);
  if (rc == BE_E_NOT_FOUND) return 0;
  ck_assert_int_eq(rc, BE_OK);
  buf[n] = '\0';
  return 1;
}

static be_cache_stats stats_of(be_cache *c) {
  be_cache_stats st = BE_CACHE_STATS_INIT;
  QEQ(be_cache_stats_get(&st, c, NULL), BE_OK);
  return st;
}

static void assert_stats_add_up(be_cache *c) {
  be_cache_stats st = stats_of(c);
  ck_assert_uint_eq(st.inserts, st.entries + st.evictions_size + st.evictions_count +
                                  st.expirations + st.invalidations + st.replacements);
}

/* Eviction callback recorder. */
#define MAX_EVENTS 4096
typedef struct event {
  char key[64];
  int32_t reason;
} event;
typedef struct recorder {
  event ev[MAX_EVENTS];
  size_t n;
} recorder;

static void record_evict(const void *key, size_t klen, const void *value, size_t vlen,
                         int32_t reason, void *ud) {
  (void)value;
  (void)vlen;
  recorder *r = ud;
  QTRUE(r->n < MAX_EVENTS && klen < sizeof r->ev[0].key, "recorder overflow");
  memcpy(r->ev[r->n].key, key, klen);
  r->ev[r->n].key[klen] = '\0';
  r->ev[r->n].reason = reason;
  r->n++;
}

/* ---- options and misuse ---- */

/* Options: init, the version-1 layout, and each bad value refused. */
static void cache_options_validated(void) {
  be_cache_options o;
  ck_assert_int_eq(be_cache_options_init(&o, BE_CACHE_OPTIONS_VERSION), BE_OK);
  ck_assert_uint_eq(o.version, BE_CACHE_OPTIONS_VERSION);
  ck_assert_uint_eq(o.max_entries, 0);
  ck_assert_int_eq(be_cache_options_init(&o, BE_CACHE_OPTIONS_VERSION + 1), BE_E_MISUSE);
  ck_assert_int_eq(be_cache_options_init(NULL, BE_CACHE_OPTIONS_VERSION), BE_E_MISUSE);
  ck_assert_int_eq(o.lru_mode, BE_CACHE_LRU_DEFAULT);
  {
    /* A version-1 caller's struct ends before lru_mode: never written or
     * read, so the garbage there neither changes nor fails anything. */
    be_cache_options v1;
    v1.lru_mode = 77;
    ck_assert_int_eq(be_cache_options_init(&v1, 1), BE_OK);
    ck_assert_uint_eq(v1.version, 1);
    ck_assert_int_eq(v1.lru_mode, 77);
    be_cache *c1 = NULL;
    ck_assert_int_eq(be_cache_new(&c1, &v1, NULL), BE_OK);
    be_cache_free(c1);
    o.lru_mode = 77;
    be_error *e1 = NULL;
    ck_assert_int_eq(be_cache_new(&c1, &o, &e1), BE_E_VALIDATION);
    ck_assert_ptr_null(c1);
    be_error_free(e1);
    o.lru_mode = BE_CACHE_LRU_DEFAULT;
  }

  be_cache *c = NULL;
  be_error *e = NULL;
  ck_assert_int_eq(be_cache_new(NULL, NULL, NULL), BE_E_MISUSE);
  o.version = 99;
  ck_assert_int_eq(be_cache_new(&c, &o, &e), BE_E_MISUSE);
  ck_assert_ptr_null(c);
  ck_assert_int_eq(be_error_code(e), BE_E_MISUSE);
  be_error_free(e);
  e = NULL;
  be_cache_options_init(&o, BE_CACHE_OPTIONS_VERSION);
  o.max_entries = -1;
  ck_assert_int_eq(be_cache_new(&c, &o, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "max_entries");
  be_error_free(e);
  e = NULL;
  o.max_entries = 0;
  o.default_ttl_ms = -1;
  ck_assert_int_eq(be_cache_new(&c, &o, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "default_ttl_ms");
  be_error_free(e);
  e = NULL;
  be_cache_options_init(&o, BE_CACHE_OPTIONS_VERSION);
  o.negative_ttl_ms = -5;
  ck_assert_int_eq(be_cache_new(&c, &o, NULL), BE_E_VALIDATION);
  o.negative_ttl_ms = 0;
  o.ttl_jitter_pct = 101;
  ck_assert_int_eq(be_cache_new(&c, &o, NULL), BE_E_VALIDATION);
  o.ttl_jitter_pct = -1;
  ck_assert_int_eq(be_cache_new(&c, &o, NULL), BE_E_VALIDATION);
  ck_assert_ptr_null(c);
}

/* Every call refuses NULLs and bad lengths with a typed error in err. */
static void cache_calls_misuse(be_cache *c) {
  be_cache_stats st = stats_of(c);
  be_error *e = NULL;
  be_cache_entry *h = (be_cache_entry *)&st; /* must be overwritten */
  size_t n = 0;
  char buf[8];
  ck_assert_int_eq(be_cache_set(NULL, "k", 1, "v", 1, 0, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_cache_set(c, NULL, 1, "v", 1, 0, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_cache_set(c, "k", 1, NULL, 1, 0, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_cache_set(c, "k", 1, "v", 1, -2, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "ttl_ms");
  be_error_free(e);
  e = NULL;
  ck_assert_int_eq(be_cache_get(NULL, c, "k", 1, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_cache_get(&h, NULL, "k", 1, NULL), BE_E_MISUSE);
  ck_assert_ptr_null(h);
  ck_assert_int_eq(be_cache_get(&h, c, NULL, 1, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_cache_get_copy(buf, sizeof buf, NULL, c, "k", 1, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_cache_get_copy(NULL, 4, &n, c, "k", 1, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_cache_get_copy(buf, sizeof buf, &n, NULL, "k", 1, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_cache_delete(NULL, "k", 1, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_cache_delete(c, NULL, 1, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_cache_delete(c, "k", 1, NULL), BE_E_NOT_FOUND);
  ck_assert_int_eq(be_cache_register_prefix(NULL, "u", 1, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_cache_register_prefix(c, NULL, 1, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_cache_invalidate_prefix(NULL, "u", 1, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_cache_invalidate_prefix(c, NULL, 1, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_cache_clear(NULL, NULL), BE_E_MISUSE);
  int64_t removed = 7;
  ck_assert_int_eq(be_cache_sweep(&removed, NULL, 0, NULL), BE_E_MISUSE);
  ck_assert_uint_eq(removed, 0);
  /* every fallible call fills err, also for a miss */
  TU_EXPECT_ERR(BE_E_NOT_FOUND, be_cache_get(&h, c, "nope", 4, &tu_e));
  TU_EXPECT_ERR(BE_E_NOT_FOUND, be_cache_get_copy(buf, sizeof buf, &n, c, "nope", 4, &tu_e));
  TU_EXPECT_ERR(BE_E_NOT_FOUND, be_cache_delete(c, "nope", 4, &tu_e));
  TU_EXPECT_ERR(BE_E_MISUSE, be_cache_get(&h, NULL, "k", 1, &tu_e));
  TU_EXPECT_ERR(BE_E_MISUSE, be_cache_invalidate_prefix(c, NULL, 1, &tu_e));
  TU_EXPECT_ERR(BE_E_MISUSE, be_cache_clear(NULL, &tu_e));
  TU_EXPECT_ERR(BE_E_MISUSE, be_cache_sweep(&removed, NULL, 0, &tu_e));
  ck_assert_int_eq(be_cache_set(c, "big", 3, "0123456789", 10, BE_CACHE_TTL_FOREVER, NULL), BE_OK);
  {
    be_error *ve = NULL;
    ck_assert_int_eq(be_cache_get_copy(buf, 2, &n, c, "big", 3, &ve), BE_E_VALIDATION);
    ck_assert_uint_eq(n, 10);
    ck_assert_uint_eq(be_error_field_count(ve), 1);
    ck_assert_str_eq(be_error_field_name(ve, 0), "buf_size");
    be_error_free(ve);
  }
  ck_assert_int_eq(be_cache_delete(c, "big", 3, NULL), BE_OK);
  ck_assert_int_eq(be_cache_stats_get(&st, NULL, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_cache_stats_get(NULL, c, NULL), BE_E_MISUSE);
  st.version = 0;
  be_error *se = NULL;
  ck_assert_int_eq(be_cache_stats_get(&st, c, &se), BE_E_MISUSE);
  ck_assert_int_eq(be_error_code(se), BE_E_MISUSE); /* err is filled */
  ck_assert_ptr_nonnull(strstr(be_error_message(se), "version"));
  be_error_free(se);
  /* a length past any key (BE_NUL_TERMINATED, say) is refused before the key is read */
  char kbuf[8] = "k", vbuf[8];
  size_t vn = 0;
  be_error *ke = NULL;
  ck_assert_int_eq(be_cache_get(&h, c, kbuf, BE_NUL_TERMINATED, &ke), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(ke, 0), "key");
  be_error_free(ke);
  ck_assert_int_eq(be_cache_get_copy(vbuf, sizeof vbuf, &vn, c, kbuf, BE_CACHE_MAX_KEY + 1, NULL),
                   BE_E_VALIDATION);
  ck_assert_int_eq(be_cache_delete(c, kbuf, BE_NUL_TERMINATED, NULL), BE_E_VALIDATION);
  ck_assert_int_eq(be_cache_invalidate_prefix(c, kbuf, BE_NUL_TERMINATED, NULL), BE_E_VALIDATION);
  st.version = BE_CACHE_STATS_VERSION + 1; /* unknown here, as for every versioned struct */
  ck_assert_int_eq(be_cache_stats_get(&st, c, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_cache_stats_init(&st, BE_CACHE_STATS_VERSION), BE_OK);
  ck_assert_int_eq(be_cache_stats_get(&st, c, NULL), BE_OK);
  int32_t status = 99;
  ck_assert_int_eq(be_cache_get_or_load(NULL, &status, c, "k", 1, NULL, NULL, NULL), BE_E_MISUSE);
  ck_assert_int_eq(status, 0);
  ck_assert_int_eq(be_cache_get_or_load(&h, &status, c, "k", 1, NULL, NULL, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_cache_load_set_value(NULL, "v", 1, 0, NULL), BE_E_MISUSE);
}

START_TEST(options_and_misuse) {
  cache_options_validated();
  be_cache *c = NULL;
  be_error *e = NULL;
  ck_assert_int_eq(be_cache_new(&c, NULL, NULL), BE_OK); /* defaults */
  be_cache_stats st = stats_of(c);
  ck_assert_uint_eq(st.shard_count, 16);
  ck_assert_uint_eq(st.entries, 0);

  cache_calls_misuse(c);
  size_t n = 0;
  /* too long keys and values */
  static char big_key[BE_CACHE_MAX_KEY + 1];
  ck_assert_uint_eq(be_cache_charge(sizeof big_key, 1), 0);
  ck_assert_uint_gt(be_cache_charge(BE_CACHE_MAX_KEY, 1), BE_CACHE_MAX_KEY);
  ck_assert_uint_eq(be_cache_charge(1, SIZE_MAX - 8), 0);
  ck_assert_int_eq(be_cache_set(c, big_key, sizeof big_key, "v", 1, 0, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "key");
  be_error_free(e);
  e = NULL;
  ck_assert_int_eq(be_cache_set(c, big_key, BE_CACHE_MAX_KEY, "v", 1, 0, NULL), BE_OK);

  /* accessors and free accept NULL */
  ck_assert_ptr_null(be_cache_entry_value(NULL, &n));
  ck_assert_uint_eq(n, 0);
  ck_assert_ptr_null(be_cache_entry_key(NULL, NULL));
  ck_assert_int_eq(be_cache_entry_expires_ns(NULL), 0);
  be_cache_entry_release(NULL);
  be_cache_free(c);
  be_cache_free(NULL);
}
END_TEST

/* ---- basic operations and handles ---- */

START_TEST(set_get_delete_and_handles) {
  be_cache *c = new_cache(NULL, 1, 2, 0, 0);
  char buf[64];
  ck_assert_int_eq(sets(c, "a", "alpha", 0), BE_OK);
  ck_assert(gets(c, "a", buf, sizeof buf));
  ck_assert_str_eq(buf, "alpha");

  /* copy-out into a small buffer: length reported, nothing copied */
  size_t n = 0;
  char small[2] = {'x', 'x'};
  ck_assert_int_eq(be_cache_get_copy(small, sizeof small, &n, c, "a", 1, NULL), BE_E_VALIDATION);
  ck_assert_uint_eq(n, 5);
  ck_assert_int_eq(small[0], 'x');
  ck_assert_int_eq(be_cache_get_copy(NULL, 0, &n, c, "a", 1, NULL), BE_E_VALIDATION);

  /* empty key and empty value are fine */
  ck_assert_int_eq(be_cache_set(c, "", 0, "", 0, 0, NULL), BE_OK);
  ck_assert_int_eq(be_cache_get_copy(NULL, 0, &n, c, "", 0, NULL), BE_OK);
  ck_assert_uint_eq(n, 0);

  /* a handle outlives replacement, eviction and the cache itself */
  be_cache_entry *h = NULL;
  ck_assert_int_eq(sets(c, "a", "alpha", 0), BE_OK);
  ck_assert_int_eq(be_cache_get(&h, c, "a", 1, NULL), BE_OK);
  ck_assert_int_eq(sets(c, "a", "beta", 0), BE_OK); /* replaced */
  size_t klen = 0, vlen = 0;
  ck_assert_int_eq(memcmp(be_cache_entry_key(h, &klen), "a", 1), 0);
  ck_assert_uint_eq(klen, 1);
  ck_assert_int_eq(memcmp(be_cache_entry_value(h, &vlen), "alpha", 5), 0);
  ck_assert_uint_eq(vlen, 5);
  ck_assert_int_eq(be_cache_entry_expires_ns(h), INT64_MAX);
  be_cache_entry *h2 = NULL;
  ck_assert_int_eq(be_cache_get(&h2, c, "a", 1, NULL), BE_OK);
  ck_assert_int_eq(sets(c, "b", "1", 0), BE_OK);
  ck_assert_int_eq(sets(c, "c", "2", 0), BE_OK); /* evicts "a" (count bound 2) */
  ck_assert(!gets(c, "a", buf, sizeof buf));
  be_cache_free(c);
  ck_assert_int_eq(memcmp(be_cache_entry_value(h2, NULL), "beta", 4), 0);
  be_cache_entry_release(h);
  be_cache_entry_release(h2);

  c = new_cache(NULL, 4, 0, 0, 0);
  ck_assert_int_eq(sets(c, "k", "v", 0), BE_OK);
  ck_assert_int_eq(be_cache_delete(c, "k", 1, NULL), BE_OK);
  ck_assert_int_eq(be_cache_delete(c, "k", 1, NULL), BE_E_NOT_FOUND);
  ck_assert_int_eq(be_cache_get(&h, c, "k", 1, NULL), BE_E_NOT_FOUND);
  ck_assert_ptr_null(h);
  be_cache_stats st = stats_of(c);
  ck_assert_uint_eq(st.invalidations, 1);
  ck_assert_uint_eq(st.misses, 1);
  ck_assert_uint_eq(st.entries, 0);
  be_cache_free(c);
}
END_TEST

/* ---- TTL ---- */

START_TEST(ttl_expires_at_exactly_ttl) {
  be_clock *clk = NULL;
  ck_assert_int_eq(be_clock_fake_new(&clk, 1000, 0, NULL), BE_OK);
  recorder *rec = calloc(1, sizeof *rec);
  be_cache_options o = BE_CACHE_OPTIONS_INIT;
  o.clock = clk;
  o.shard_count = 1;
  o.default_ttl_ms = 300 * 1000;
  o.on_evict = record_evict;
  o.evict_user_data = rec;
  be_cache *c = NULL;
  ck_assert_int_eq(be_cache_new(&c, &o, NULL), BE_OK);
  char buf[32];

  ck_assert_int_eq(sets(c, "user:1", "u1", BE_CACHE_TTL_DEFAULT), BE_OK);
  ck_assert_int_eq(sets(c, "short", "s", 10), BE_OK); /* 10 ms */
  ck_assert_int_eq(sets(c, "forever", "f", BE_CACHE_TTL_FOREVER), BE_OK);
  be_cache_entry *h = NULL;
  ck_assert_int_eq(be_cache_get(&h, c, "user:1", 6, NULL), BE_OK);
  ck_assert_int_eq(be_cache_entry_expires_ns(h), 1000 + 300 * SEC);
  be_cache_entry_release(h);

  be_clock_advance(clk, 10 * MS - 1, NULL);
  ck_assert(gets(c, "short", buf, sizeof buf)); /* 1 ns before */
  be_clock_advance(clk, 1, NULL);
  ck_assert(!gets(c, "short", buf, sizeof buf)); /* exactly at TTL */
  ck_assert_uint_eq(rec->n, 1);
  ck_assert_str_eq(rec->ev[0].key, "short");
  ck_assert_int_eq(rec->ev[0].reason, BE_CACHE_EVICT_EXPIRED);

  be_clock_advance(clk, 300 * SEC - 10 * MS - 1, NULL);
  ck_assert(gets(c, "user:1", buf, sizeof buf));
  ck_assert_str_eq(buf, "u1");
  be_clock_advance(clk, 1, NULL);
  ck_assert(!gets(c, "user:1", buf, sizeof buf));
  be_clock_advance(clk, 1000 * SEC, NULL);
  ck_assert(gets(c, "forever", buf, sizeof buf));

  /* re-setting restarts the TTL; an expired entry replaced counts as expired */
  ck_assert_int_eq(sets(c, "k", "1", 5 * 1000), BE_OK);
  be_clock_advance(clk, 5 * SEC, NULL);
  ck_assert_int_eq(sets(c, "k", "2", 5 * 1000), BE_OK);
  ck_assert_int_eq(rec->ev[rec->n - 1].reason, BE_CACHE_EVICT_EXPIRED);
  be_clock_advance(clk, 4 * SEC, NULL);
  ck_assert(gets(c, "k", buf, sizeof buf));
  ck_assert_str_eq(buf, "2");

  be_cache_stats st = stats_of(c);
  ck_assert_uint_eq(st.expirations, 3);
  ck_assert_uint_eq(st.entries, 2);
  assert_stats_add_up(c);
  be_cache_free(c);
  be_clock_free(clk);
  free(rec);
}
END_TEST

START_TEST(ttl_jitter_only_shortens) {
  be_clock *clk = NULL;
  ck_assert_int_eq(be_clock_fake_new(&clk, 0, 0, NULL), BE_OK);
  be_cache_options o = BE_CACHE_OPTIONS_INIT;
  o.clock = clk;
  o.default_ttl_ms = 100 * 1000;
  o.ttl_jitter_pct = 20;
  o.seed = 7;
  be_cache *c = NULL;
  ck_assert_int_eq(be_cache_new(&c, &o, NULL), BE_OK);
  int64_t lo = INT64_MAX, hi = 0;
  for (int i = 0; i < 500; i++) {
    char k[16];
    snprintf(k, sizeof k, "k%d", i);
    ck_assert_int_eq(sets(c, k, "v", 0), BE_OK);
    be_cache_entry *h = NULL;
    ck_assert_int_eq(be_cache_get(&h, c, k, strlen(k), NULL), BE_OK);
    int64_t ex = be_cache_entry_expires_ns(h);
    be_cache_entry_release(h);
    if (ex < lo) lo = ex;
    if (ex > hi) hi = ex;
  }
  ck_assert_int_ge(lo, 80 * SEC);
  ck_assert_int_le(hi, 100 * SEC);
  ck_assert_int_lt(lo, 82 * SEC); /* spread over the whole window */
  ck_assert_int_gt(hi, 98 * SEC);
  be_cache_free(c);
  be_clock_free(clk);
}
END_TEST

START_TEST(sweep_removes_dead_without_lookups) {
  be_clock *clk = NULL;
  ck_assert_int_eq(be_clock_fake_new(&clk, 0, 0, NULL), BE_OK);
  be_cache *c = new_cache(clk, 2, 0, 0, 0);
  for (int i = 0; i < 200; i++) {
    char k[16];
    snprintf(k, sizeof k, "old%d", i);
    ck_assert_int_eq(sets(c, k, "v", 1000), BE_OK);
  }
  be_clock_advance(clk, SEC, NULL);
  ck_assert_uint_eq(stats_of(c).entries, 200);
  /* writes of other keys advance the amortised sweep */
  for (int i = 0; i < 200; i++) {
    char k[16];
    snprintf(k, sizeof k, "new%d", i);
    ck_assert_int_eq(sets(c, k, "v", BE_CACHE_TTL_FOREVER), BE_OK);
  }
  be_cache_stats st = stats_of(c);
  ck_assert_uint_eq(st.entries, 200);
  ck_assert_uint_eq(st.expirations, 200);
  int64_t removed = 1;
  ck_assert_int_eq(be_cache_sweep(&removed, c, 0, NULL), BE_OK);
  ck_assert_uint_eq(removed, 0);
  be_clock_advance(clk, 1, NULL);
  ck_assert_int_eq(sets(c, "x", "v", 1), BE_OK);
  be_clock_advance(clk, MS, NULL);
  ck_assert_int_eq(be_cache_sweep(&removed, c, 0, NULL), BE_OK);
  ck_assert_uint_eq(removed, 1);
  ck_assert_int_eq(be_cache_sweep(NULL, c, 3, NULL), BE_OK);
  assert_stats_add_up(c);
  be_cache_free(c);
  be_clock_free(clk);
}
END_TEST

/* ---- bounds ---- */

START_TEST(byte_bound_with_large_values) {
  recorder *rec = calloc(1, sizeof *rec);
  static char val[100000];
  memset(val, 'v', sizeof val);
  uint64_t each = be_cache_charge(2, 30000);
  be_cache_options o = BE_CACHE_OPTIONS_INIT;
  o.shard_count = 1;
  o.max_bytes = 3 * each + 10; /* three fit, four do not */
  o.on_evict = record_evict;
  o.evict_user_data = rec;
  be_cache *c = NULL;
  ck_assert_int_eq(be_cache_new(&c, &o, NULL), BE_OK);
  ck_assert_int_eq(be_cache_set(c, "k1", 2, val, 30000, 0, NULL), BE_OK);
  ck_assert_int_eq(be_cache_set(c, "k2", 2, val, 30000, 0, NULL), BE_OK);
  ck_assert_int_eq(be_cache_set(c, "k3", 2, val, 30000, 0, NULL), BE_OK);
  be_cache_stats st = stats_of(c);
  ck_assert_uint_eq(st.bytes, 3 * each);
  ck_assert_uint_eq(rec->n, 0);
  size_t n;
  ck_assert_int_eq(be_cache_get_copy(NULL, 0, &n, c, "k1", 2, NULL), BE_E_VALIDATION); /* touch k1 */
  ck_assert_int_eq(be_cache_set(c, "k4", 2, val, 30000, 0, NULL), BE_OK);
  ck_assert_uint_eq(rec->n, 1);
  ck_assert_str_eq(rec->ev[0].key, "k2"); /* least recently used */
  ck_assert_int_eq(rec->ev[0].reason, BE_CACHE_EVICT_SIZE);
  /* a big one pushes out several */
  ck_assert_int_eq(be_cache_set(c, "k5", 2, val, 2 * 30000 + 40, 0, NULL), BE_OK);
  ck_assert_uint_eq(rec->n, 3);
  ck_assert_str_eq(rec->ev[1].key, "k3");
  ck_assert_str_eq(rec->ev[2].key, "k1");
  st = stats_of(c);
  ck_assert_uint_le(st.bytes, o.max_bytes);
  ck_assert_uint_eq(st.entries, 2);
  ck_assert_uint_eq(st.evictions_size, 3);
  /* larger than the bound: refused, nothing evicted */
  be_error *e = NULL;
  ck_assert_int_eq(be_cache_set(c, "k6", 2, val, sizeof val, 0, &e), BE_E_VALIDATION);
  ck_assert_str_eq(be_error_field_name(e, 0), "value");
  be_error_free(e);
  ck_assert_uint_eq(rec->n, 3);
  ck_assert_uint_eq(stats_of(c).entries, 2);
  be_cache_free(c);
  free(rec);
}
END_TEST

/* A counting allocator that knows block sizes, to check memory_bytes. */
static _Atomic long long mem_live;
static void *cnt_malloc(size_t n, void *ud) {
  (void)ud;
  size_t *p = malloc(n + 16);
  if (!p) return NULL;
  *p = n;
  atomic_fetch_add(&mem_live, (long long)n);
  return (char *)p + 16;
}
static void cnt_free(void *q, void *ud) {
  (void)ud;
  size_t *p = (size_t *)((char *)q - 16);
  atomic_fetch_sub(&mem_live, (long long)*p);
  free(p);
}
static void *cnt_realloc(void *q, size_t n, void *ud) {
  void *r = cnt_malloc(n, ud);
  if (!r) return NULL;
  size_t old = *(size_t *)((char *)q - 16);
  memcpy(r, q, old < n ? old : n);
  cnt_free(q, ud);
  return r;
}

/* Route the library's allocations through cnt_* with mem_live at 0. */
static void use_counting_allocator(void) {
  be_allocator a = BE_ALLOCATOR_INIT;
  a.malloc_fn = cnt_malloc;
  a.realloc_fn = cnt_realloc;
  a.free_fn = cnt_free;
  atomic_store(&mem_live, 0);
  ck_assert_int_eq(be_set_allocator(&a, NULL), BE_OK);
}

/* The write's sweep is skipped only while nothing can be dead: once a
 * prefix is registered (no entry has an expiry), invalidated entries are
 * still swept away by writes of other keys. */
START_TEST(sweep_after_writes_with_prefixes_only) {
  be_cache *c = new_cache(NULL, 1, 0, 0, 0);
  for (int i = 0; i < 100; i++) {
    char k[16];
    snprintf(k, sizeof k, "p:%d", i);
    ck_assert_int_eq(sets(c, k, "v", 0), BE_OK);
  }
  ck_assert_int_eq(be_cache_register_prefix(c, "p:", 2, NULL), BE_OK);
  ck_assert_int_eq(be_cache_invalidate_prefix(c, "p:", 2, NULL), BE_OK);
  ck_assert_uint_eq(stats_of(c).entries, 100); /* dead, not yet removed */
  for (int i = 0; i < 200; i++) {
    char k[16];
    snprintf(k, sizeof k, "q:%d", i);
    ck_assert_int_eq(sets(c, k, "v", 0), BE_OK);
  }
  be_cache_stats st = stats_of(c);
  ck_assert_uint_eq(st.invalidations, 100);
  ck_assert_uint_eq(st.entries, 200);
  assert_stats_add_up(c);
  be_cache_free(c);
}
END_TEST

/* The sweep floors (cache_internal.h): every entry of a shard expires no
 * earlier than exp_floor, and one with a prefix bit was stored no earlier
 * than epoch_floor. A write skips its sweep on them, so they must hold
 * after every operation, whatever it is. */
static void assert_floors_hold(be_cache *c, uint64_t seed, int op) {
  for (uint32_t k = 0; k < c->nshards; k++) {
    be__cache_shard *s = &c->shards[k];
    for (be_cache_entry *e = s->head; e; e = e->next) {
      QTRUE(e->expires >= s->exp_floor, "seed %llu op %d: expiry %lld below the floor %lld",
            (unsigned long long)seed, op, (long long)e->expires, (long long)s->exp_floor);
      QTRUE(e->pmask == 0 || e->epoch >= s->epoch_floor, "seed %llu op %d: epoch below the floor",
            (unsigned long long)seed, op);
    }
  }
}

static int floor_loader(const void *key, size_t klen, be_cache_load *ld, void *ud, be_error **err) {
  (void)ud;
  if (klen && ((const char *)key)[klen - 1] == '7')
    return be__error_set(err, BE_E_NOT_FOUND, "no such thing"); /* cached negatively */
  return be_cache_load_set_value(ld, key, klen, rnd_below(2) ? 0 : (int64_t)(1 + rnd_below(30)),
                                 err);
}

/* Random writes, reads, deletes, loads (negative ones too), prefix
 * registrations and invalidations, partial and full sweeps, clears and
 * clock moves on one or two shards that grow: the floors hold after each. */
START_TEST(sweep_floors_bound_every_entry) {
  static const char *const pfx[] = {"a:", "b:", "a:1"};
  for (uint64_t seed = 1; seed <= 40; seed++) {
    rng_state = seed * 104729 + 11;
    be_clock *clk = NULL;
    ck_assert_int_eq(be_clock_fake_new(&clk, 0, 0, NULL), BE_OK);
    be_cache_options o = BE_CACHE_OPTIONS_INIT;
    o.shard_count = 1 + (uint32_t)rnd_below(2);
    o.max_entries = rnd_below(2) ? 0 : (int64_t)(20 + rnd_below(200));
    o.default_ttl_ms = rnd_below(2) ? 0 : (int64_t)(1 + rnd_below(50));
    o.negative_ttl_ms = (int64_t)rnd_below(20);
    o.sweep_batch = (int32_t)(1 + rnd_below(4));
    o.clock = clk;
    o.seed = seed;
    be_cache *c = NULL;
    ck_assert_int_eq(be_cache_new(&c, &o, NULL), BE_OK);
    for (int op = 0; op < 1500; op++) {
      char k[16];
      snprintf(k, sizeof k, "%s%d", pfx[rnd_below(2)], (int)rnd_below(300));
      unsigned r = (unsigned)rnd_below(100);
      if (r < 45) {
        int64_t ttl = rnd_below(3) == 0 ? BE_CACHE_TTL_FOREVER : (int64_t)rnd_below(40);
        QEQ(sets(c, k, "v", ttl), BE_OK);
      } else if (r < 65) {
        be_cache_entry *h = NULL;
        (void)be_cache_get_or_load(&h, NULL, c, k, strlen(k), floor_loader, NULL, NULL);
        be_cache_entry_release(h);
      } else if (r < 75) {
        char buf[32];
        (void)gets(c, k, buf, sizeof buf);
      } else if (r < 82) {
        (void)be_cache_delete(c, k, strlen(k), NULL);
      } else if (r < 86) {
        const char *p = pfx[rnd_below(3)];
        QEQ(be_cache_invalidate_prefix(c, p, strlen(p), NULL), BE_OK);
      } else if (r < 87) {
        const char *p = pfx[rnd_below(3)];
        QEQ(be_cache_register_prefix(c, p, strlen(p), NULL), BE_OK);
      } else if (r < 90) {
        QEQ(be_cache_sweep(NULL, c, (int64_t)rnd_below(6), NULL), BE_OK);
      } else if (r < 91) {
        QEQ(be_cache_clear(c, NULL), BE_OK);
      } else {
        be_clock_advance(clk, (int64_t)rnd_below(6) * MS, NULL);
      }
      assert_floors_hold(c, seed, op);
    }
    /* Nothing the writes' sweeps skipped was left dead: once the writes
     * have walked every chain, a full sweep finds nothing. */
    int64_t removed = -1;
    be_clock_advance(clk, 100 * MS, NULL);
    for (int i = 0; i < 2000; i++) {
      char k[16];
      snprintf(k, sizeof k, "z%d", i % 50);
      QEQ(sets(c, k, "v", BE_CACHE_TTL_FOREVER), BE_OK);
    }
    QEQ(be_cache_sweep(&removed, c, 0, NULL), BE_OK);
    QEQ(removed, 0);
    assert_stats_add_up(c);
    be_cache_free(c);
    be_clock_free(clk);
  }
}
END_TEST

/* Writes skip their sweep only while nothing in the shard can be dead,
 * and the floors come back up once the entries that held them down are
 * gone: an entry that expires among long-lived ones is still swept by
 * writes, and so are long-lived ones once their time comes. */
START_TEST(sweep_floors_skip_only_what_cannot_be_dead) {
  be_clock *clk = NULL;
  ck_assert_int_eq(be_clock_fake_new(&clk, 0, 0, NULL), BE_OK);
  be_cache *c = new_cache(clk, 1, 0, 0, 0);
  for (int i = 0; i < 100; i++) {
    char k[16];
    snprintf(k, sizeof k, "long%d", i);
    ck_assert_int_eq(sets(c, k, "v", 100 * 1000), BE_OK);
  }
  be__cache_shard *s = &c->shards[0];
  ck_assert_int_eq(s->exp_floor, 100 * SEC);
  ck_assert_int_eq(sets(c, "short", "v", 1000), BE_OK);
  ck_assert_int_eq(s->exp_floor, 1 * SEC);
  be_clock_advance(clk, 2 * SEC, NULL);
  for (int i = 0; i < 200; i++) { /* writes of other keys sweep it away */
    char k[16];
    snprintf(k, sizeof k, "new%d", i);
    ck_assert_int_eq(sets(c, k, "v", BE_CACHE_TTL_FOREVER), BE_OK);
  }
  ck_assert_uint_eq(stats_of(c).expirations, 1);
  ck_assert_int_eq(s->exp_floor, 100 * SEC); /* a whole cycle walked: back up */
  be_clock_advance(clk, 100 * SEC, NULL);
  /* enough writes to sweep every bucket once, whatever the table's size */
  int cycle = (int)((s->table->mask + 1) / c->sweep_batch) + 1;
  for (int i = 0; i < cycle; i++) {
    char k[16];
    snprintf(k, sizeof k, "new%d", i % 200);
    ck_assert_int_eq(sets(c, k, "v", BE_CACHE_TTL_FOREVER), BE_OK);
  }
  ck_assert_uint_eq(stats_of(c).expirations, 101);
  ck_assert_int_eq(s->exp_floor, INT64_MAX);
  assert_stats_add_up(c);
  be_cache_free(c);
  be_clock_free(clk);
}
END_TEST

/* Keys of 4 to 16 bytes hash with two overlapping loads: every byte
 * counts (keys differing in one byte anywhere hash apart), same-length
 * keys spread evenly over the buckets, and the seed changes every hash. */
START_TEST(short_key_hash_uses_every_byte) {
  be_cache *c = new_cache(NULL, 1, 0, 0, 0), *c2 = NULL;
  be_cache_options o = BE_CACHE_OPTIONS_INIT;
  o.seed = 43;
  ck_assert_int_eq(be_cache_new(&c2, &o, NULL), BE_OK);
  rng_state = 99;
  for (size_t n = 1; n <= 24; n++) {
    unsigned char k[24];
    for (size_t i = 0; i < n; i++) k[i] = (unsigned char)rnd();
    uint64_t h = be__cache_hash(c, k, n);
    ck_assert_uint_ne(h, be__cache_hash(c2, k, n));
    for (size_t i = 0; i < n; i++)
      for (unsigned bit = 0; bit < 8; bit++) {
        k[i] ^= (unsigned char)(1u << bit);
        ck_assert_uint_ne(be__cache_hash(c, k, n), h);
        k[i] ^= (unsigned char)(1u << bit);
      }
  }
  static unsigned buckets[1024];
  for (size_t n = 4; n <= 16; n++) {
    memset(buckets, 0, sizeof buckets);
    for (int i = 0; i < 16384; i++) {
      char k[16];
      memset(k, 'x', sizeof k);
      k[(n - 2) / 2] = (char)(i & 0xff); /* a counter in the middle */
      k[(n - 2) / 2 + 1] = (char)(i >> 8);
      buckets[be__cache_hash(c, k, n) & 1023]++;
    }
    unsigned max = 0;
    for (int b = 0; b < 1024; b++) max = buckets[b] > max ? buckets[b] : max;
    ck_assert_uint_le(max, 40); /* 16 a bucket on average */
  }
  be_cache_free(c);
  be_cache_free(c2);
}
END_TEST

/* Keys of every length up to 40 bytes (short ones are copied into the
 * entry with overlapping word moves) come back whole, through a set and
 * through a load. */
START_TEST(keys_of_every_length_round_trip) {
  be_cache *c = new_cache(NULL, 4, 0, 0, 0);
  for (size_t n = 0; n <= 40; n++) {
    unsigned char k[40];
    for (size_t i = 0; i < n; i++) k[i] = (unsigned char)(n * 7 + i * 13 + 1);
    for (int way = 0; way < 2; way++) {
      if (way == 0) ck_assert_int_eq(be_cache_set(c, k, n, "v", 1, 0, NULL), BE_OK);
      be_cache_entry *h = NULL;
      if (way == 0) ck_assert_int_eq(be_cache_get(&h, c, k, n, NULL), BE_OK);
      else {
        ck_assert_int_eq(be_cache_delete(c, k, n, NULL), BE_OK);
        ck_assert_int_eq(be_cache_get_or_load(&h, NULL, c, k, n, floor_loader, NULL, NULL), BE_OK);
      }
      size_t kl = 0;
      const unsigned char *kk = be_cache_entry_key(h, &kl);
      ck_assert_uint_eq(kl, n);
      ck_assert_int_eq(memcmp(kk, k, n), 0);
      be_cache_entry_release(h);
    }
  }
  be_cache_free(c);
}
END_TEST

static int same_size_loader(const void *key, size_t klen, be_cache_load *ld, void *ud,
                            be_error **err) {
  (void)ud;
  char v[64];
  memset(v, 0, sizeof v);
  memcpy(v, key, klen < sizeof v ? klen : sizeof v);
  return be_cache_load_set_value(ld, v, sizeof v, 0, err);
}

/* Evicted entries' blocks are reused for new entries of the same size
 * (a miss then allocates nothing): a reused block holds only the new
 * value, a block a handle still holds is never reused, and the cache
 * frees the blocks it kept. */
START_TEST(evicted_blocks_are_reused_safely) {
  idle_reader other; /* _i 1: another thread reads, removals wait for passes */
  if (_i) idle_reader_start(&other);
  use_counting_allocator();
  be_cache *c = new_cache(NULL, 1, 8, 0, 0);
  be_cache_entry *held = NULL;
  ck_assert_int_eq(be_cache_get_or_load(&held, NULL, c, "key:0000", 8, same_size_loader, NULL,
                                        NULL),
                   BE_OK);
  for (int i = 1; i < 2000; i++) {
    char k[16];
    snprintf(k, sizeof k, "key:%04d", i);
    be_cache_entry *h = NULL;
    ck_assert_int_eq(be_cache_get_or_load(&h, NULL, c, k, 8, same_size_loader, NULL, NULL),
                     BE_OK);
    size_t n = 0;
    const char *v = be_cache_entry_value(h, &n);
    ck_assert_uint_eq(n, 64);
    ck_assert_int_eq(memcmp(v, k, 8), 0);
    be_cache_entry_release(h);
    if (i % 3 == 0) { /* sets take spare blocks too */
      char sv[64] = {0};
      memcpy(sv, k, 8);
      ck_assert_int_eq(be_cache_set(c, k, 8, sv, sizeof sv, 0, NULL), BE_OK);
    }
  }
  size_t n = 0;
  ck_assert_int_eq(memcmp(be_cache_entry_value(held, &n), "key:0000", 8), 0);
  ck_assert_uint_eq(n, 64);
  be_cache_entry_release(held);
  for (int i = 1992; i < 2000; i++) {
    char k[16], v[64];
    snprintf(k, sizeof k, "key:%04d", i);
    ck_assert_int_eq(be_cache_get_copy(v, sizeof v, &n, c, k, 8, NULL), BE_OK);
    ck_assert_int_eq(memcmp(v, k, 8), 0);
  }
  be_cache_free(c); /* no stats call first: the kept blocks go with the cache */
  ck_assert_int_eq(atomic_load(&mem_live), 0);
  be_set_allocator(NULL, NULL);
  if (_i) idle_reader_stop(&other);
}
END_TEST

/* The kept blocks, counted through their lists. */
static uint64_t spares_sum(be_cache *c, uint32_t *count) {
  uint64_t bytes = 0;
  *count = 0;
  for (int i = 0; i < BE__CACHE_SPARE_LISTS; i++)
    for (struct be_cache_entry *e = c->spares[i]; e; e = e->next) {
      bytes += be__cache_entry_block(e);
      (*count)++;
    }
  return bytes;
}

/* Kept blocks stay within both bounds: up to a reclamation batch of small
 * ones (a full cache's misses reuse what the last pass reclaimed), and no
 * more bytes than 64 of the largest. */
START_TEST(kept_blocks_stay_within_count_and_bytes) {
  idle_reader other; /* removals wait for passes, which fill the spares */
  idle_reader_start(&other);
  for (int big = 0; big < 2; big++) {
    be_cache *c = new_cache(NULL, 1, 8, 0, 0);
    size_t vlen = big ? BE__CACHE_SPARE_BLOCK - BE__ENTRY_HDR - 8 : 16;
    char *v = calloc(1, vlen);
    ck_assert_ptr_nonnull(v);
    for (int i = 0; i < 3 * (int)BE__CACHE_RECLAIM_BATCH; i++) {
      char k[16];
      snprintf(k, sizeof k, "k:%06d", i); /* 8 bytes: blocks of one size */
      ck_assert_int_eq(be_cache_set(c, k, 8, v, vlen, 0, NULL), BE_OK);
    }
    be__cache_reclaim(c, 0); /* the rest: no reader is inside (stats would drop the spares) */
    uint32_t n = 0;
    uint64_t bytes = spares_sum(c, &n);
    ck_assert_uint_eq(n, atomic_load(&c->nspares));
    ck_assert_uint_eq(bytes, c->spare_bytes);
    ck_assert_uint_le(n, BE__CACHE_SPARES_MAX);
    ck_assert_uint_le(bytes, BE__CACHE_SPARE_BYTES);
    if (big) ck_assert_uint_eq(n, 64);
    else ck_assert_uint_gt(n, 64);
    be_cache_free(c);
    free(v);
  }
  idle_reader_stop(&other);
}
END_TEST

/* Spares of a block size nobody asks for any more go at the second pass
 * after they were kept: when the values' length changes, the blocks of
 * the new length are kept (and reused) instead of being freed because
 * the old ones fill the spares for good. */
START_TEST(kept_blocks_of_an_unused_size_go) {
  idle_reader other; /* _i 1: another thread reads, removals wait for passes */
  if (_i) idle_reader_start(&other);
  be_cache *c = new_cache(NULL, 1, 8, 0, 0);
  char v[200];
  memset(v, 'v', sizeof v);
  size_t lens[2] = {100, 200};
  for (int phase = 0; phase < 2; phase++)
    for (int i = 0; i < 4 * (int)BE__CACHE_RECLAIM_BATCH; i++) {
      char k[16];
      snprintf(k, sizeof k, "k:%d:%06d", phase, i); /* one key length */
      ck_assert_int_eq(be_cache_set(c, k, strlen(k), v, lens[phase], 0, NULL), BE_OK);
    }
  uint32_t old = 0, now = 0;
  for (int i = 0; i < BE__CACHE_SPARE_LISTS; i++)
    for (struct be_cache_entry *e = c->spares[i]; e; e = e->next) {
      if (e->vlen == lens[0]) old++;
      if (e->vlen == lens[1]) now++;
    }
  ck_assert_uint_eq(old, 0);
  ck_assert_uint_gt(now, 0);
  be_cache_free(c);
  if (_i) idle_reader_stop(&other);
}
END_TEST

/* A fill begun before a write of its key stores nothing; so does a
 * fill that ends after another read of its key stored a different value
 * (the key goes). A fill nobody overtook stores its value (and replaces
 * what was there). */
static int fill(be__cache_fill *f, const char *v) { return be__cache_fill_end(f, v, strlen(v)); }

START_TEST(conditional_fill_yields_to_any_later_write) {
  be_cache *c = new_cache(NULL, 4, 0, 0, 0);
  char buf[64];
  be__cache_fill *f = be__cache_fill_begin(c, "k", 1);
  ck_assert_int_eq(fill(f, "v1"), 1); /* nobody wrote */
  ck_assert(gets(c, "k", buf, sizeof buf) && strcmp(buf, "v1") == 0);
  f = be__cache_fill_begin(c, "k", 1);
  ck_assert_int_eq(be_cache_delete(c, "k", 1, NULL), BE_OK); /* a writer commits, deletes */
  ck_assert_int_eq(fill(f, "old"), 0);
  ck_assert(!gets(c, "k", buf, sizeof buf));
  f = be__cache_fill_begin(c, "k", 1);
  ck_assert_int_eq(sets(c, "k", "set", 0), BE_OK);
  ck_assert_int_eq(fill(f, "old"), 0);
  ck_assert(gets(c, "k", buf, sizeof buf) && strcmp(buf, "set") == 0);
  /* Two reads of the key at once: which read the newer row is not known
   * (the order they began in is not the order they read in), so when the
   * second ends with another value the key goes, either way round. */
  for (int newer_first = 0; newer_first < 2; newer_first++) {
    be__cache_fill *a = be__cache_fill_begin(c, "k", 1), *b = be__cache_fill_begin(c, "k", 1);
    ck_assert_int_eq(fill(newer_first ? b : a, newer_first ? "new" : "old"), 1); /* ends first */
    ck_assert_int_eq(fill(newer_first ? a : b, newer_first ? "old" : "new"), 0);
    ck_assert(!gets(c, "k", buf, sizeof buf));
  }
  be__cache_fill *a = be__cache_fill_begin(c, "k", 1), *b = be__cache_fill_begin(c, "k", 1);
  ck_assert_int_eq(fill(a, "same"), 1);
  ck_assert_int_eq(fill(b, "same"), 0); /* the same value (a key twice in one batch): kept */
  ck_assert(gets(c, "k", buf, sizeof buf) && strcmp(buf, "same") == 0);
  ck_assert_int_eq(be_cache_register_prefix(c, "k", 1, NULL), BE_OK);
  f = be__cache_fill_begin(c, "k", 1);
  ck_assert_int_eq(be_cache_invalidate_prefix(c, "k", 1, NULL), BE_OK);
  fill(f, "old"); /* stored under the epoch it began in: dead, never served */
  ck_assert(!gets(c, "k", buf, sizeof buf));
  f = be__cache_fill_begin(c, "k", 1);
  ck_assert_int_eq(be_cache_clear(c, NULL), BE_OK);
  ck_assert_int_eq(fill(f, "old"), 0);
  ck_assert(!gets(c, "k", buf, sizeof buf));
  f = be__cache_fill_begin(c, "other", 5); /* writes of other keys do not matter */
  ck_assert_int_eq(be_cache_delete(c, "k", 1, NULL), BE_E_NOT_FOUND);
  ck_assert_int_eq(sets(c, "o", "x", 0), BE_OK);
  ck_assert_int_eq(fill(f, "v"), 1);
  ck_assert_int_eq(be__cache_fill_end(be__cache_fill_begin(c, "n", 1), NULL, 0), 0); /* found nothing */
  ck_assert_int_eq(be__cache_fill_end(NULL, "v", 1), 0);
  assert_stats_add_up(c);
  be_cache_free(c);
}
END_TEST

/* Begin a fill of "<prefix><i>" for each i < n into fills. */
static void fills_begin(be_cache *c, const char *prefix, int n, be__cache_fill **fills) {
  for (int i = 0; i < n; i++) {
    char k[32];
    int kl = snprintf(k, sizeof k, "%s%d", prefix, i);
    fills[i] = be__cache_fill_begin(c, k, (size_t)kl);
    ck_assert_ptr_nonnull(fills[i]);
  }
}

/* With thousands of fills in flight in one shard (a get_many of many
 * ids), spread over the shard's lists of flights, a write still reaches
 * the fills of its own key and no other; a prefix invalidation and a
 * clear reach every fill they concern; every fill leaves its list. */
START_TEST(many_fills_in_flight_yield_only_to_their_own_keys) {
  enum { N = 2000 };
  be_cache *c = new_cache(NULL, 1, 0, 0, 0);
  be__cache_shard *s = &c->shards[0];
  be__cache_fill **f = calloc(N, sizeof *f);
  ck_assert_ptr_nonnull(f);
  fills_begin(c, "k", N, f);
  ck_assert_uint_eq(s->nflights, N);
  for (int i = 0; i < BE__CACHE_FLIGHT_LISTS; i++) QTRUE(s->flights[i] != NULL, "list %d unused", i);
  for (int i = 0; i < N; i += 3) {
    char k[32];
    int kl = snprintf(k, sizeof k, "k%d", i);
    ck_assert_int_eq(be_cache_set(c, k, (size_t)kl, "set", 3, 0, NULL), BE_OK);
  }
  for (int i = 0; i < N; i++) {
    int stored = fill(f[i], "read");
    QTRUE(stored == (i % 3 != 0), "k%d: stored %d", i, stored);
  }
  ck_assert_uint_eq(s->nflights, 0);
  fills_begin(c, "p", N / 2, f); /* an unregistered prefix: its invalidation walks the fills */
  fills_begin(c, "q", N / 2, f + N / 2);
  ck_assert_int_eq(be_cache_invalidate_prefix(c, "p", 1, NULL), BE_OK);
  for (int i = 0; i < N; i++) {
    int stored = fill(f[i], "read");
    QTRUE(stored == (i >= N / 2), "%s%d: stored %d", i < N / 2 ? "p" : "q", i % (N / 2), stored);
  }
  ck_assert_int_eq(be_cache_register_prefix(c, "s", 1, NULL), BE_OK);
  fills_begin(c, "s", N, f); /* registered: stored under the old epoch, never served */
  ck_assert_int_eq(be_cache_invalidate_prefix(c, "s", 1, NULL), BE_OK);
  for (int i = 0; i < N; i++) {
    fill(f[i], "read");
    char k[32], buf[8];
    snprintf(k, sizeof k, "s%d", i);
    QTRUE(!gets(c, k, buf, sizeof buf), "%s served after its prefix was invalidated", k);
  }
  fills_begin(c, "r", N, f);
  ck_assert_int_eq(be_cache_clear(c, NULL), BE_OK);
  for (int i = 0; i < N; i++) {
    int stored = fill(f[i], "read");
    QTRUE(stored == 0, "r%d: stored %d", i, stored);
  }
  ck_assert_uint_eq(s->nflights, 0);
  for (int i = 0; i < BE__CACHE_FLIGHT_LISTS; i++) ck_assert_ptr_null(s->flights[i]);
  assert_stats_add_up(c);
  be_cache_free(c);
  /* With 16 shards, the lists take other bits of the hash than the
   * shards do: every list of every shard is used. */
  enum { M = 16 * 1000 };
  be__cache_fill **g = realloc(f, M * sizeof *g);
  ck_assert_ptr_nonnull(g);
  c = new_cache(NULL, 16, 0, 0, 0);
  fills_begin(c, "k", M, g);
  for (uint32_t i = 0; i < c->nshards; i++)
    for (int l = 0; l < BE__CACHE_FLIGHT_LISTS; l++)
      QTRUE(c->shards[i].flights[l] != NULL, "shard %u: list %d unused", i, l);
  for (int i = 0; i < M; i++) fill(g[i], "read");
  free(g);
  be_cache_free(c);
}
END_TEST

static int load_v(const void *key, size_t klen, be_cache_load *load, void *ud, be_error **err) {
  (void)key;
  (void)klen;
  ++*(int *)ud;
  return be_cache_load_set_value(load, "loaded", 6, BE_CACHE_TTL_DEFAULT, err);
}

/* A get-or-load never waits for a fill (it has no loader to share); the
 * two read at once, so the fill ending with another value drops the key. */
START_TEST(get_or_load_runs_its_own_load_beside_a_fill) {
  be_cache *c = new_cache(NULL, 1, 0, 0, 0);
  be__cache_fill *f = be__cache_fill_begin(c, "k", 1);
  int loads = 0;
  be_cache_entry *e = NULL;
  int32_t status = 0;
  ck_assert_int_eq(be_cache_get_or_load(&e, &status, c, "k", 1, load_v, &loads, NULL), BE_OK);
  ck_assert_int_eq(loads, 1);
  ck_assert_int_eq(status, BE_CACHE_LOADED);
  be_cache_entry_release(e);
  char buf[16];
  ck_assert(gets(c, "k", buf, sizeof buf) && strcmp(buf, "loaded") == 0);
  ck_assert_int_eq(fill(f, "other"), 0);
  ck_assert(!gets(c, "k", buf, sizeof buf));
  be_cache_free(c);
}
END_TEST

START_TEST(memory_accounting_is_exact) {
  use_counting_allocator();
  be_cache *c = new_cache(NULL, 4, 0, 0, 0);
  ck_assert_int_eq(be_cache_register_prefix(c, "user:", 5, NULL), BE_OK);
  be_cache_stats st = stats_of(c);
  ck_assert_int_eq(st.memory_bytes, atomic_load(&mem_live));
  rng_state = 99;
  for (int i = 0; i < 3000; i++) {
    char k[32], v[300];
    snprintf(k, sizeof k, "user:%d", (int)rnd_below(2000));
    size_t vl = rnd_below(sizeof v);
    memset(v, 'x', vl);
    ck_assert_int_eq(be_cache_set(c, k, strlen(k), v, vl, 0, NULL), BE_OK);
    if (i % 7 == 0) be_cache_delete(c, k, strlen(k), NULL);
  }
  st = stats_of(c);
  ck_assert_int_eq(st.memory_bytes, atomic_load(&mem_live));
  /* the charge is an upper bound of what the entries really cost */
  ck_assert_uint_le(st.memory_bytes, st.bytes + 8192);
  ck_assert_int_eq(be_cache_clear(c, NULL), BE_OK);
  st = stats_of(c);
  ck_assert_int_eq(st.memory_bytes, atomic_load(&mem_live));
  ck_assert_uint_eq(st.bytes, 0);
  be_cache_free(c);
  ck_assert_int_eq(atomic_load(&mem_live), 0);
  be_set_allocator(NULL, NULL);
}
END_TEST

START_TEST(count_bound_splits_over_shards) {
  be_cache *c = new_cache(NULL, 4, 10, 0, 0); /* shares 3,3,2,2 */
  for (int i = 0; i < 1000; i++) {
    char k[16];
    snprintf(k, sizeof k, "k%d", i);
    ck_assert_int_eq(sets(c, k, "v", 0), BE_OK);
    ck_assert_uint_le(stats_of(c).entries, 10);
  }
  ck_assert_uint_eq(stats_of(c).entries, 10);
  ck_assert_uint_eq(stats_of(c).evictions_count, 990);
  be_cache_free(c);
  /* fewer entries than shards: shard count shrinks so each may hold one */
  c = new_cache(NULL, 16, 3, 0, 0);
  ck_assert_uint_eq(stats_of(c).shard_count, 2);
  be_cache_free(c);
}
END_TEST

/* ---- prefix invalidation ---- */

START_TEST(prefix_invalidation_registered_and_not) {
  be_cache *c = new_cache(NULL, 4, 0, 0, 0);
  char buf[32];
  ck_assert_int_eq(sets(c, "user:1", "a", 0), BE_OK);
  ck_assert_int_eq(sets(c, "user:2", "b", 0), BE_OK);
  ck_assert_int_eq(sets(c, "sess:1", "s", 0), BE_OK);
  ck_assert_int_eq(be_cache_register_prefix(c, "user:", 5, NULL), BE_OK); /* after the sets */
  ck_assert_int_eq(be_cache_register_prefix(c, "user:", 5, NULL), BE_OK); /* twice: no-op */
  ck_assert_int_eq(be_cache_invalidate_prefix(c, "user:", 5, NULL), BE_OK);
  ck_assert(!gets(c, "user:1", buf, sizeof buf));
  ck_assert(!gets(c, "user:2", buf, sizeof buf));
  ck_assert(gets(c, "sess:1", buf, sizeof buf));
  ck_assert_int_eq(sets(c, "user:1", "new", 0), BE_OK); /* later sets survive */
  ck_assert(gets(c, "user:1", buf, sizeof buf));
  ck_assert_str_eq(buf, "new");
  be_cache_stats st = stats_of(c);
  ck_assert_uint_eq(st.invalidations, 2);

  /* unregistered: linear, removes at once */
  ck_assert_int_eq(sets(c, "user:10", "x", 0), BE_OK);
  ck_assert_int_eq(be_cache_invalidate_prefix(c, "user:1", 6, NULL), BE_OK);
  ck_assert(!gets(c, "user:1", buf, sizeof buf));
  ck_assert(!gets(c, "user:10", buf, sizeof buf));
  ck_assert(gets(c, "sess:1", buf, sizeof buf));
  ck_assert_uint_eq(stats_of(c).entries, 1);

  /* the empty prefix matches everything */
  ck_assert_int_eq(be_cache_invalidate_prefix(c, "", 0, NULL), BE_OK);
  ck_assert_uint_eq(stats_of(c).entries, 0);

  /* at most BE_CACHE_MAX_PREFIXES */
  for (int i = 1; i < BE_CACHE_MAX_PREFIXES; i++) {
    char p[8];
    snprintf(p, sizeof p, "p%d:", i);
    ck_assert_int_eq(be_cache_register_prefix(c, p, strlen(p), NULL), BE_OK);
  }
  be_error *e = NULL;
  ck_assert_int_eq(be_cache_register_prefix(c, "one-more", 8, &e), BE_E_VALIDATION);
  be_error_free(e);
  /* nested registered prefixes: either one kills the entry */
  ck_assert_int_eq(sets(c, "p1:user:5", "v", 0), BE_OK);
  ck_assert_int_eq(sets(c, "p1:x", "v", 0), BE_OK);
  ck_assert_int_eq(be_cache_invalidate_prefix(c, "p1:", 3, NULL), BE_OK);
  ck_assert(!gets(c, "p1:user:5", buf, sizeof buf));
  ck_assert(!gets(c, "p1:x", buf, sizeof buf));
  assert_stats_add_up(c);
  be_cache_free(c);
}
END_TEST

/* Sets completed before an invalidation are gone after it, while another
 * thread keeps setting keys under the same prefix. */
typedef struct writer_arg {
  be_cache *c;
  _Atomic int stop;
} writer_arg;

static void *prefix_writer(void *p) {
  writer_arg *w = p;
  char k[32];
  for (unsigned i = 0; !atomic_load(&w->stop); i++) {
    snprintf(k, sizeof k, "user:w%u", i % 512);
    be_cache_set(w->c, k, strlen(k), "w", 1, 0, NULL);
    if (i % 64 == 0) be_cache_get_copy(NULL, 0, &(size_t){0}, w->c, k, strlen(k), NULL);
  }
  return NULL;
}

START_TEST(prefix_invalidation_under_concurrent_sets) {
  for (int registered = 0; registered < 2; registered++) {
    be_cache *c = new_cache(NULL, 8, 0, 0, 0);
    if (registered) ck_assert_int_eq(be_cache_register_prefix(c, "user:", 5, NULL), BE_OK);
    writer_arg w = {c, 0};
    pthread_t t;
    pthread_create(&t, NULL, prefix_writer, &w);
    char buf[16];
    for (int i = 0; i < 300; i++) {
      char k[32];
      snprintf(k, sizeof k, "user:m%d", i % 50);
      ck_assert_int_eq(sets(c, k, "m", 0), BE_OK);
      ck_assert_int_eq(be_cache_invalidate_prefix(c, "user:", 5, NULL), BE_OK);
      ck_assert(!gets(c, k, buf, sizeof buf));
      ck_assert_int_eq(sets(c, k, "m2", 0), BE_OK);
      ck_assert(gets(c, k, buf, sizeof buf));
    }
    atomic_store(&w.stop, 1);
    pthread_join(t, NULL);
    be_cache_free(c);
  }
}
END_TEST

/* ---- the randomized model test ---- */

/* The reference: an array in recency order (index 0 = most recent). Dead
 * entries stay until something meets them, exactly as documented. With
 * approximate LRU (CLOCK) the array is the cache's list order: a hit only
 * sets `ref`, and a set first scans from the tail, moving referenced
 * entries to the front unmarked, until the new entry fits. */
typedef struct mentry {
  char key[16];
  size_t klen;
  unsigned char val[40];
  size_t vlen;
  int64_t expires; /* INT64_MAX = never */
  int invalidated; /* hit by a registered-prefix invalidation */
  int ref;         /* CLOCK: read since stored or since its last second chance */
} mentry;

typedef struct model {
  mentry e[64];
  size_t n;
  uint64_t max_count, max_bytes, bytes;
  int64_t default_ttl;
  uint64_t hits, misses, inserts, replacements, ev_size, ev_count, expirations, invalidations;
  event ev[MAX_EVENTS];
  size_t nev;
  const char *registered[4];
  int nreg;
  int clock; /* BE_CACHE_LRU_APPROX */
} model;

static int m_dead(const model *m, const mentry *e, int64_t now) {
  (void)m;
  if (e->invalidated) return BE_CACHE_EVICT_INVALIDATED;
  if (now >= e->expires) return BE_CACHE_EVICT_EXPIRED;
  return 0;
}

static void m_remove(model *m, size_t i, int reason) {
  mentry *e = &m->e[i];
  QTRUE(m->nev < MAX_EVENTS, "model events full");
  memcpy(m->ev[m->nev].key, e->key, e->klen + 1);
  m->ev[m->nev].reason = reason;
  m->nev++;
  m->bytes -= be_cache_charge(e->klen, e->vlen);
  switch (reason) {
    case BE_CACHE_EVICT_SIZE: m->ev_size++; break;
    case BE_CACHE_EVICT_COUNT: m->ev_count++; break;
    case BE_CACHE_EVICT_EXPIRED: m->expirations++; break;
    case BE_CACHE_EVICT_INVALIDATED: m->invalidations++; break;
    default: m->replacements++; break;
  }
  memmove(&m->e[i], &m->e[i + 1], (m->n - i - 1) * sizeof *e);
  m->n--;
}

static long m_find(const model *m, const char *k) {
  for (size_t i = 0; i < m->n; i++)
    if (strcmp(m->e[i].key, k) == 0) return (long)i;
  return -1;
}

/* Returns the live index or -1 (removing a dead entry found). */
static long m_lookup(model *m, const char *k, int64_t now) {
  long i = m_find(m, k);
  if (i < 0) return -1;
  int d = m_dead(m, &m->e[i], now);
  if (d) {
    m_remove(m, (size_t)i, d);
    return -1;
  }
  return i;
}

static void m_to_front(model *m, size_t i) {
  mentry tmp = m->e[i];
  memmove(&m->e[1], &m->e[0], i * sizeof tmp);
  m->e[0] = tmp;
}

static int m_set(model *m, const char *k, const unsigned char *v, size_t vlen, int64_t ttl,
                 int64_t now) {
  size_t klen = strlen(k);
  if ((uint64_t)be_cache_charge(klen, vlen) > m->max_bytes) return BE_E_VALIDATION;
  long i = m_find(m, k);
  if (i >= 0) {
    int d = m_dead(m, &m->e[i], now);
    m_remove(m, (size_t)i, d ? d : BE_CACHE_EVICT_REPLACED);
  }
  uint64_t ch = be_cache_charge(klen, vlen);
  while (m->clock && m->n && (m->n >= m->max_count || m->bytes + ch > m->max_bytes)) {
    size_t t = m->n - 1;
    int d = m_dead(m, &m->e[t], now);
    if (!d && m->e[t].ref) {
      m->e[t].ref = 0;
      m_to_front(m, t);
      continue;
    }
    if (!d) d = m->n >= m->max_count ? BE_CACHE_EVICT_COUNT : BE_CACHE_EVICT_SIZE;
    m_remove(m, t, d);
  }
  QTRUE(m->n < 64, "model full");
  memmove(&m->e[1], &m->e[0], m->n * sizeof m->e[0]);
  mentry *e = &m->e[0];
  memset(e, 0, sizeof *e);
  memcpy(e->key, k, klen + 1);
  e->klen = klen;
  memcpy(e->val, v, vlen);
  e->vlen = vlen;
  if (ttl == BE_CACHE_TTL_DEFAULT) ttl = m->default_ttl;
  e->expires = ttl > 0 ? now + ttl : INT64_MAX;
  m->n++;
  m->bytes += be_cache_charge(klen, vlen);
  m->inserts++;
  while (m->n > m->max_count || m->bytes > m->max_bytes) {
    size_t t = m->n - 1;
    int d = m_dead(m, &m->e[t], now);
    if (!d) d = m->n > m->max_count ? BE_CACHE_EVICT_COUNT : BE_CACHE_EVICT_SIZE;
    m_remove(m, t, d);
  }
  return BE_OK;
}

static int starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static int ev_cmp(const void *a, const void *b) {
  const event *x = a, *y = b;
  int c = strcmp(x->key, y->key);
  return c ? c : x->reason - y->reason;
}

static const char *const key_pool[] = {"user:1", "user:2", "user:3", "user:10", "user:11",
                                       "sess:1", "sess:2", "u", "ux", "perm:1",
                                       "perm:2", "a", "", "user:", "sess:33"};
static const char *const prefix_pool[] = {"user:", "user:1", "sess:", "u", "perm:", "x", ""};

/* A one-shard cache with random bounds and TTL, and the model to match. */
static be_cache *model_cache_new(model *m, recorder *rec, be_clock *clk, uint64_t seed,
                                 int32_t lru_mode) {
  memset(m, 0, sizeof *m);
  memset(rec, 0, sizeof *rec);
  m->max_count = 1 + rnd_below(12);
  m->max_bytes = rnd_below(3) == 0 ? UINT64_MAX : be_cache_charge(6, 20) * (2 + rnd_below(8));
  m->default_ttl = rnd_below(2) ? (int64_t)(1 + rnd_below(50)) : 0;
  m->clock = lru_mode != BE_CACHE_LRU_EXACT; /* the default is CLOCK */
  be_cache_options o = BE_CACHE_OPTIONS_INIT;
  o.lru_mode = lru_mode;
  o.shard_count = 1;
  o.max_entries = m->max_count;
  o.max_bytes = m->max_bytes == UINT64_MAX ? 0 : m->max_bytes;
  o.default_ttl_ms = m->default_ttl;
  o.sweep_batch = -1; /* the sweep's bucket order is hash-dependent: test it elsewhere */
  o.clock = clk;
  o.on_evict = record_evict;
  o.evict_user_data = rec;
  o.seed = seed;
  be_cache *c = NULL;
  QEQ(be_cache_new(&c, &o, NULL), BE_OK);
  return c;
}

/* A set with a random value and TTL on both sides. */
static void model_op_set(model *m, be_cache *c, const char *k, size_t klen, int64_t now) {
  unsigned char v[40];
  size_t vlen = rnd_below(sizeof v);
  for (size_t i = 0; i < vlen; i++) v[i] = (unsigned char)rnd();
  int64_t ttl;
  unsigned t = (unsigned)rnd_below(4);
  ttl = t == 0 ? BE_CACHE_TTL_DEFAULT : t == 1 ? BE_CACHE_TTL_FOREVER
                                               : (int64_t)(1 + rnd_below(40));
  int want = m_set(m, k, v, vlen, ttl, now);
  QEQ(be_cache_set(c, k, klen, v, vlen, ttl, NULL), want);
}

/* A get, through either read path, against the model's entry. */
static void model_op_get(model *m, be_cache *c, const char *k, size_t klen, int64_t now,
                         uint64_t seed, int op) {
  long i = m_lookup(m, k, now);
  if (i >= 0) {
    if (m->clock) {
      m->e[i].ref = 1; /* no reordering */
    } else {
      m_to_front(m, (size_t)i);
      i = 0;
    }
    m->hits++;
  } else {
    m->misses++;
  }
  if (rnd_below(2)) {
    unsigned char buf[40];
    size_t n = 0;
    int rc = be_cache_get_copy(buf, sizeof buf, &n, c, k, klen, NULL);
    QTRUE(rc == (i >= 0 ? BE_OK : BE_E_NOT_FOUND), "seed %llu op %d get %s",
          (unsigned long long)seed, op, k);
    if (i >= 0) {
      QEQ(n, m->e[i].vlen);
      QEQ(memcmp(buf, m->e[i].val, n), 0);
    }
  } else {
    be_cache_entry *h = NULL;
    int rc = be_cache_get(&h, c, k, klen, NULL);
    QTRUE(rc == (i >= 0 ? BE_OK : BE_E_NOT_FOUND), "seed %llu op %d get %s",
          (unsigned long long)seed, op, k);
    if (i >= 0) {
      size_t n;
      const void *v = be_cache_entry_value(h, &n);
      QEQ(n, m->e[i].vlen);
      QEQ(memcmp(v, m->e[i].val, n), 0);
    }
    be_cache_entry_release(h);
  }
}

static int model_registered(const model *m, const char *p) {
  int reg = 0;
  for (int j = 0; j < m->nreg; j++) reg |= strcmp(m->registered[j], p) == 0;
  return reg;
}

/* Prefix invalidation: lazy for a registered prefix, eager otherwise. */
static void model_op_invalidate_prefix(model *m, be_cache *c, int64_t now) {
  const char *p = prefix_pool[rnd_below(sizeof prefix_pool / sizeof prefix_pool[0])];
  if (model_registered(m, p)) {
    for (size_t i = 0; i < m->n; i++)
      if (starts_with(m->e[i].key, p)) m->e[i].invalidated = 1;
  } else {
    for (size_t i = m->n; i-- > 0;)
      if (starts_with(m->e[i].key, p)) {
        int d = m_dead(m, &m->e[i], now);
        m_remove(m, i, d ? d : BE_CACHE_EVICT_INVALIDATED);
      }
  }
  QEQ(be_cache_invalidate_prefix(c, p, strlen(p), NULL), BE_OK);
}

/* Full sweep: every dead entry goes, in bucket order. */
static void model_op_sweep(model *m, be_cache *c, int64_t now) {
  int64_t want = 0;
  for (size_t i = m->n; i-- > 0;) {
    int d = m_dead(m, &m->e[i], now);
    if (d) {
      m_remove(m, i, d);
      want++;
    }
  }
  int64_t removed = 0;
  QEQ(be_cache_sweep(&removed, c, 0, NULL), BE_OK);
  QEQ(removed, want);
}

/* The callbacks of this op, in order (sorted when the order is the hash's). */
static void model_check_events(model *m, recorder *rec, size_t ev_before, int sort_events,
                               uint64_t seed, int op) {
  QTRUE(rec->n == m->nev, "seed %llu op %d: %zu events, model %zu", (unsigned long long)seed, op,
        rec->n, m->nev);
  if (sort_events) {
    qsort(rec->ev + ev_before, rec->n - ev_before, sizeof(event), ev_cmp);
    qsort(m->ev + ev_before, m->nev - ev_before, sizeof(event), ev_cmp);
  }
  for (size_t i = ev_before; i < m->nev; i++) {
    QTRUE(strcmp(rec->ev[i].key, m->ev[i].key) == 0 && rec->ev[i].reason == m->ev[i].reason,
          "seed %llu op %d event %zu: (%s,%d) model (%s,%d)", (unsigned long long)seed, op, i,
          rec->ev[i].key, rec->ev[i].reason, m->ev[i].key, m->ev[i].reason);
  }
  if (m->nev > MAX_EVENTS - 100) m->nev = rec->n = 0;
}

/* The cache's counters equal the model's after every op. */
static void model_check_stats(const model *m, be_cache *c, uint64_t seed, int op) {
  be_cache_stats st = stats_of(c);
  QTRUE((size_t)st.entries == m->n, "seed %llu op %d: entries %llu model %zu",
        (unsigned long long)seed, op, (unsigned long long)st.entries, m->n);
  QEQ(st.bytes, m->bytes);
  QEQ(st.hits, m->hits);
  QEQ(st.misses, m->misses);
  QEQ(st.inserts, m->inserts);
  QEQ(st.replacements, m->replacements);
  QEQ(st.evictions_size, m->ev_size);
  QEQ(st.evictions_count, m->ev_count);
  QEQ(st.expirations, m->expirations);
  QEQ(st.invalidations, m->invalidations);
}

static void run_model_sequence(uint64_t seed, int ops, int32_t lru_mode) {
  rng_state = seed * 2654435761u + 1;
  be_clock *clk = NULL;
  QEQ(be_clock_fake_new(&clk, 0, 0, NULL), BE_OK);
  static model m;
  static recorder rec;
  be_cache *c = model_cache_new(&m, &rec, clk, seed, lru_mode);
  const size_t nkeys = sizeof key_pool / sizeof key_pool[0];
  for (int op = 0; op < ops; op++) {
    int64_t now = be_clock_now_ns(clk) / MS; /* the model counts in ms, like TTLs */
    const char *k = key_pool[rnd_below(nkeys)];
    size_t klen = strlen(k);
    unsigned r = (unsigned)rnd_below(100);
    size_t ev_before = m.nev;
    int sort_events = 0;
    if (r < 35) { /* set */
      model_op_set(&m, c, k, klen, now);
    } else if (r < 70) { /* get, through either read path */
      model_op_get(&m, c, k, klen, now, seed, op);
    } else if (r < 80) { /* delete */
      long i = m_lookup(&m, k, now);
      if (i >= 0) m_remove(&m, (size_t)i, BE_CACHE_EVICT_INVALIDATED);
      QEQ(be_cache_delete(c, k, klen, NULL), i >= 0 ? BE_OK : BE_E_NOT_FOUND);
    } else if (r < 86) { /* prefix invalidation */
      model_op_invalidate_prefix(&m, c, now);
    } else if (r < 88) { /* register a prefix (semantics unchanged, speed only) */
      const char *p = prefix_pool[rnd_below(3)];
      if (!model_registered(&m, p)) m.registered[m.nreg++] = p;
      QEQ(be_cache_register_prefix(c, p, strlen(p), NULL), BE_OK);
    } else if (r < 97) { /* time passes */
      be_clock_advance(clk, (int64_t)rnd_below(rnd_below(4) ? 10 : 60) * MS, NULL);
    } else if (r < 99) { /* full sweep */
      model_op_sweep(&m, c, now);
      sort_events = 1;
    } else { /* clear: most recent first */
      while (m.n) m_remove(&m, 0, BE_CACHE_EVICT_INVALIDATED);
      QEQ(be_cache_clear(c, NULL), BE_OK);
    }
    model_check_events(&m, &rec, ev_before, sort_events, seed, op);
    model_check_stats(&m, c, seed, op);
  }
  /* and the LRU order itself: walk from the least recent by evicting */
  be_cache_free(c);
  be_clock_free(clk);
}

START_TEST(model_random_sequences) {
  for (uint64_t seed = 1; seed <= 3000; seed++)
    run_model_sequence(seed, 150, BE_CACHE_LRU_EXACT);
}
END_TEST

/* The default (CLOCK) mode against a model that mirrors its list: the
 * same values, hits, events in order, bounds, TTLs and stats. */
START_TEST(model_random_sequences_approx) {
  for (uint64_t seed = 1; seed <= 3000; seed++)
    run_model_sequence(seed, 150, BE_CACHE_LRU_DEFAULT);
}
END_TEST

/* Approximate mode with several shards, checked only against what it
 * promises (no eviction order): the bounds hold after every call, a hit
 * returns the latest value set and never an expired, deleted or
 * invalidated one, and the cache loses no live entry without an eviction
 * callback (so a miss means the model has no live value either). */
typedef struct pkey {
  int present; /* stored and neither removed nor reported evicted */
  unsigned char val[48];
  size_t vlen;
  int64_t expires;
} pkey;
static pkey pkeys[96];
static char pnames[96][16];

static void promise_evict(const void *key, size_t klen, const void *value, size_t vlen,
                          int32_t reason, void *ud) {
  (void)ud, (void)value, (void)vlen;
  if (reason == BE_CACHE_EVICT_REPLACED) return; /* the set stores the new value */
  for (int i = 0; i < 96; i++)
    if (strlen(pnames[i]) == klen && memcmp(pnames[i], key, klen) == 0) pkeys[i].present = 0;
}

START_TEST(approx_lru_keeps_its_promises) {
  for (uint64_t seed = 1; seed <= 200; seed++) {
    rng_state = seed * 7919 + 3;
    be_clock *clk = NULL;
    ck_assert_int_eq(be_clock_fake_new(&clk, 0, 0, NULL), BE_OK);
    memset(pkeys, 0, sizeof pkeys);
    for (int i = 0; i < 96; i++)
      snprintf(pnames[i], sizeof pnames[i], "%s%d", i % 3 ? "user:" : "sess:", i);
    be_cache_options o = BE_CACHE_OPTIONS_INIT;
    o.lru_mode = BE_CACHE_LRU_APPROX;
    o.shard_count = 4;
    o.max_entries = 8 + rnd_below(40);
    o.max_bytes = rnd_below(2) ? 0 : 4 * be_cache_charge(8, 48) * (2 + rnd_below(6));
    o.default_ttl_ms = (int64_t)(1 + rnd_below(100));
    o.sweep_batch = (int32_t)rnd_below(3) - 1;
    o.clock = clk;
    o.on_evict = promise_evict;
    o.seed = seed;
    be_cache *c = NULL;
    ck_assert_int_eq(be_cache_new(&c, &o, NULL), BE_OK);
    ck_assert_int_eq(be_cache_register_prefix(c, "user:", 5, NULL), BE_OK);
    for (int op = 0; op < 2000; op++) {
      int64_t now = be_clock_now_ns(clk) / MS; /* in ms, like TTLs */
      int k = (int)rnd_below(96);
      const char *key = pnames[k];
      size_t klen = strlen(key);
      pkey *m = &pkeys[k];
      unsigned r = (unsigned)rnd_below(100);
      if (r < 40) {
        unsigned char v[48];
        size_t vlen = rnd_below(sizeof v);
        for (size_t i = 0; i < vlen; i++) v[i] = (unsigned char)rnd();
        int64_t ttl = rnd_below(3) ? BE_CACHE_TTL_DEFAULT : (int64_t)(1 + rnd_below(60));
        QEQ(be_cache_set(c, key, klen, v, vlen, ttl, NULL), BE_OK);
        m->present = 1;
        memcpy(m->val, v, vlen);
        m->vlen = vlen;
        m->expires = now + (ttl == BE_CACHE_TTL_DEFAULT ? o.default_ttl_ms : ttl);
      } else if (r < 80) {
        int live = m->present && now < m->expires;
        be_cache_entry *h = NULL;
        int rc = be_cache_get(&h, c, key, klen, NULL);
        QTRUE(rc == (live ? BE_OK : BE_E_NOT_FOUND), "seed %llu op %d get %s: rc %d, live %d",
              (unsigned long long)seed, op, key, rc, live);
        if (h) {
          size_t n;
          const void *v = be_cache_entry_value(h, &n);
          QEQ(n, m->vlen);
          QEQ(memcmp(v, m->val, n), 0);
          QEQ(be_cache_entry_expires_ns(h), m->expires * MS);
          be_cache_entry_release(h);
        }
      } else if (r < 87) {
        int live = m->present && now < m->expires;
        int rc = be_cache_delete(c, key, klen, NULL);
        QTRUE(rc == (live ? BE_OK : BE_E_NOT_FOUND), "seed %llu op %d delete", (unsigned long long)seed, op);
        m->present = 0;
      } else if (r < 90) {
        const char *p = rnd_below(2) ? "user:" : "sess:";
        QEQ(be_cache_invalidate_prefix(c, p, 5, NULL), BE_OK);
        for (int i = 0; i < 96; i++)
          if (strncmp(pnames[i], p, 5) == 0) pkeys[i].present = 0;
      } else {
        be_clock_advance(clk, (int64_t)rnd_below(8) * MS, NULL);
      }
      be_cache_stats st = stats_of(c);
      QTRUE(st.entries <= o.max_entries, "entries %llu over %llu", (unsigned long long)st.entries,
            (unsigned long long)o.max_entries);
      QTRUE(o.max_bytes == 0 || st.bytes <= o.max_bytes, "bytes over the bound");
    }
    assert_stats_add_up(c);
    be_cache_free(c);
    be_clock_free(clk);
  }
}
END_TEST

/* The final LRU order, checked directly: shrink by inserting fresh keys
 * and watch the order in which the old ones are evicted. */
START_TEST(model_lru_order_exact) {
  recorder *rec = calloc(1, sizeof *rec);
  be_cache_options o = BE_CACHE_OPTIONS_INIT;
  o.lru_mode = BE_CACHE_LRU_EXACT;
  o.shard_count = 1;
  o.max_entries = 8;
  o.on_evict = record_evict;
  o.evict_user_data = rec;
  be_cache *c = NULL;
  ck_assert_int_eq(be_cache_new(&c, &o, NULL), BE_OK);
  const char *order[8];
  const char *keys[8] = {"a", "b", "c", "d", "e", "f", "g", "h"};
  for (int i = 0; i < 8; i++) ck_assert_int_eq(sets(c, keys[i], "v", 0), BE_OK);
  rng_state = 5;
  int pos[8];
  for (int i = 0; i < 8; i++) pos[i] = i; /* pos: recency rank, 7 = most recent */
  for (int step = 0; step < 200; step++) {
    int k = (int)rnd_below(8);
    char buf[8];
    ck_assert(gets(c, keys[k], buf, sizeof buf));
    for (int i = 0; i < 8; i++)
      if (pos[i] > pos[k]) pos[i]--;
    pos[k] = 7;
  }
  for (int i = 0; i < 8; i++) order[pos[i]] = keys[i];
  for (int i = 0; i < 8; i++) {
    char k[8];
    snprintf(k, sizeof k, "new%d", i);
    ck_assert_int_eq(sets(c, k, "v", 0), BE_OK);
    ck_assert_str_eq(rec->ev[i].key, order[i]);
    ck_assert_int_eq(rec->ev[i].reason, BE_CACHE_EVICT_COUNT);
  }
  be_cache_free(c);
  free(rec);
}
END_TEST

/* ---- get-or-load ---- */

typedef struct load_ctx {
  _Atomic int calls;
  _Atomic int release; /* the loader blocks until set */
  int rc;              /* what the loader returns */
  int retryable;
  int64_t ttl;
  be_cache *cache;
  int side_effect; /* 1 delete, 2 invalidate "user:", 3 set the key */
} load_ctx;

static int loader(const void *key, size_t klen, be_cache_load *out, void *ud, be_error **err) {
  load_ctx *l = ud;
  atomic_fetch_add(&l->calls, 1);
  while (!atomic_load(&l->release)) sched_yield();
  if (l->side_effect == 1) be_cache_delete(l->cache, key, klen, NULL);
  if (l->side_effect == 2) be_cache_invalidate_prefix(l->cache, "user:", 5, NULL);
  if (l->side_effect == 3) be_cache_set(l->cache, key, klen, "fresh", 5, 0, NULL);
  if (l->rc != BE_OK) {
    be_error_new(err, l->rc, "no such user");
    if (l->retryable) be_error_set_retryable(*err, 1);
    return l->rc;
  }
  char v[80];
  int n = snprintf(v, sizeof v, "value of %.*s", (int)klen, (const char *)key);
  return be_cache_load_set_value(out, v, (size_t)n, l->ttl, NULL);
}

typedef struct caller {
  be_cache *c;
  load_ctx *l;
  const char *key;
  int rc;
  int32_t status;
  char value[80];
  int32_t err_code;
  char err_msg[64];
} caller;

static void *call_get_or_load(void *p) {
  caller *a = p;
  be_cache_entry *h = NULL;
  be_error *e = NULL;
  a->rc = be_cache_get_or_load(&h, &a->status, a->c, a->key, strlen(a->key), loader, a->l, &e);
  if (h) {
    size_t n;
    const void *v = be_cache_entry_value(h, &n);
    memcpy(a->value, v, n);
    a->value[n] = '\0';
    be_cache_entry_release(h);
  }
  if (e) {
    a->err_code = be_error_code(e);
    snprintf(a->err_msg, sizeof a->err_msg, "%s", be_error_message(e));
    be_error_free(e);
  }
  return NULL;
}

/* Bounded waits for other threads to reach a point (10 s of real time):
 * a broken single flight fails the test instead of hanging it. */
static void wait_until_loads_started(_Atomic int *calls, int n) {
  int64_t start = be_clock_now_ns(NULL);
  while (atomic_load(calls) < n) {
    ck_assert_msg(be_clock_now_ns(NULL) - start < 10 * SEC, "loader never called");
    sched_yield();
  }
}

static void wait_for_waits(be_cache *c, int64_t n) {
  int64_t start = be_clock_now_ns(NULL);
  while (stats_of(c).load_waits < n) {
    ck_assert_msg(be_clock_now_ns(NULL) - start < 10 * SEC,
                  "callers did not wait for the load in flight (%llu of %llu)",
                  (unsigned long long)stats_of(c).load_waits, (unsigned long long)n);
    sched_yield();
  }
}

START_TEST(single_flight_8_threads_one_load) {
  be_cache *c = new_cache(NULL, 1, 0, 0, 0); /* one shard: other keys share its lock */
  load_ctx l = {0};
  l.cache = c;
  caller a[8];
  pthread_t t[8];
  for (int i = 0; i < 8; i++) {
    memset(&a[i], 0, sizeof a[i]);
    a[i].c = c;
    a[i].l = &l;
    a[i].key = "user:42";
    pthread_create(&t[i], NULL, call_get_or_load, &a[i]);
  }
  wait_until_loads_started(&l.calls, 1);
  wait_for_waits(c, 7); /* all others are waiting on the one load */

  /* other keys of the same shard are not blocked meanwhile */
  ck_assert_int_eq(sets(c, "other", "o", 0), BE_OK);
  char buf[8];
  ck_assert(gets(c, "other", buf, sizeof buf));

  atomic_store(&l.release, 1);
  for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
  ck_assert_int_eq(atomic_load(&l.calls), 1);
  int loaded = 0, shared = 0;
  for (int i = 0; i < 8; i++) {
    ck_assert_int_eq(a[i].rc, BE_OK);
    ck_assert_str_eq(a[i].value, "value of user:42");
    loaded += a[i].status == BE_CACHE_LOADED;
    shared += a[i].status == BE_CACHE_SHARED;
  }
  ck_assert_int_eq(loaded, 1);
  ck_assert_int_eq(shared, 7);

  /* now cached: a hit, no load */
  caller h = {.c = c, .l = &l, .key = "user:42"};
  call_get_or_load(&h);
  ck_assert_int_eq(h.status, BE_CACHE_HIT);
  ck_assert_int_eq(atomic_load(&l.calls), 1);
  be_cache_stats st = stats_of(c);
  ck_assert_uint_eq(st.loads, 1);
  ck_assert_uint_eq(st.load_waits, 7);
  ck_assert_uint_eq(st.misses, 8);
  ck_assert_uint_eq(st.hits, 2);
  be_cache_free(c);
}
END_TEST

/* A caller joining a load in flight when memory runs out (the load moves
 * to the heap on its first join) gets BE_E_NOMEM; the load goes on. */
START_TEST(joining_a_load_without_memory_fails_cleanly) {
  be_cache *c = new_cache(NULL, 1, 0, 0, 0);
  load_ctx l = {0};
  l.cache = c;
  caller lead = {.c = c, .l = &l, .key = "user:7"};
  pthread_t t;
  pthread_create(&t, NULL, call_get_or_load, &lead);
  wait_until_loads_started(&l.calls, 1);
  caller join = {.c = c, .l = &l, .key = "user:7"};
  tu_alloc_install(1); /* every allocation fails */
  call_get_or_load(&join);
  tu_alloc_restore();
  ck_assert_int_eq(join.rc, BE_E_NOMEM);
  ck_assert_int_eq(join.err_code, BE_E_NOMEM);
  ck_assert_uint_eq(stats_of(c).load_waits, 0);
  atomic_store(&l.release, 1);
  pthread_join(t, NULL);
  ck_assert_int_eq(lead.rc, BE_OK);
  ck_assert_int_eq(lead.status, BE_CACHE_LOADED);
  ck_assert_str_eq(lead.value, "value of user:7");
  ck_assert_int_eq(atomic_load(&l.calls), 1);
  be_cache_free(c);
}
END_TEST

START_TEST(loader_error_shared_and_not_cached) {
  be_cache *c = new_cache(NULL, 1, 0, 0, 0);
  load_ctx l = {0};
  l.rc = BE_E_STORAGE;
  caller a[4];
  pthread_t t[4];
  for (int i = 0; i < 4; i++) {
    memset(&a[i], 0, sizeof a[i]);
    a[i].c = c;
    a[i].l = &l;
    a[i].key = "user:7";
    pthread_create(&t[i], NULL, call_get_or_load, &a[i]);
  }
  wait_until_loads_started(&l.calls, 1);
  wait_for_waits(c, 3);
  atomic_store(&l.release, 1);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < 4; i++) {
    ck_assert_int_eq(a[i].rc, BE_E_STORAGE);
    ck_assert_int_eq(a[i].err_code, BE_E_STORAGE);
    ck_assert_str_eq(a[i].err_msg, "no such user");
  }
  ck_assert_int_eq(atomic_load(&l.calls), 1);
  caller again = {.c = c, .l = &l, .key = "user:7"};
  call_get_or_load(&again); /* not cached: loads again */
  ck_assert_int_eq(again.rc, BE_E_STORAGE);
  ck_assert_int_eq(again.status, BE_CACHE_LOADED);
  ck_assert_int_eq(atomic_load(&l.calls), 2);
  be_cache_stats st = stats_of(c);
  ck_assert_uint_eq(st.load_errors, 2);
  ck_assert_uint_eq(st.entries, 0);
  be_cache_free(c);
}
END_TEST

static int loader_no_value(const void *k, size_t kl, be_cache_load *o, void *ud, be_error **e) {
  (void)ud, (void)k, (void)kl, (void)o, (void)e;
  return BE_OK;
}
static int loader_positive(const void *k, size_t kl, be_cache_load *o, void *ud, be_error **e) {
  (void)ud, (void)k, (void)kl, (void)e;
  be_cache_load_set_value(o, "v", 1, 0, NULL);
  return 5;
}
static int loader_bad_ttl(const void *k, size_t kl, be_cache_load *o, void *ud, be_error **e) {
  (void)ud, (void)k, (void)kl, (void)e;
  ck_assert_int_eq(be_cache_load_set_value(o, NULL, 1, 0, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_cache_load_set_value(o, "v", 1, -2, NULL), BE_E_VALIDATION);
  TU_EXPECT_ERR(BE_E_VALIDATION, be_cache_load_set_value(o, "v", 1, -2, &tu_e));
  ck_assert_int_eq(be_cache_load_set_value(o, "first", 5, 0, NULL), BE_OK);
  return be_cache_load_set_value(o, "second", 6, BE_CACHE_TTL_FOREVER, NULL); /* replaces */
}

START_TEST(loader_misbehaviour) {
  be_cache *c = new_cache(NULL, 1, 0, 0, 0);
  be_cache_entry *h = NULL;
  be_error *e = NULL;
  int32_t st = 0;
  ck_assert_int_eq(be_cache_get_or_load(&h, &st, c, "k", 1, loader_no_value, NULL, &e), BE_E_INTERNAL);
  ck_assert_ptr_null(h);
  ck_assert_int_eq(be_error_code(e), BE_E_INTERNAL);
  be_error_free(e);
  e = NULL;
  ck_assert_int_eq(be_cache_get_or_load(&h, &st, c, "k", 1, loader_positive, NULL, NULL), BE_E_INTERNAL);
  ck_assert_uint_eq(stats_of(c).entries, 0);
  ck_assert_int_eq(be_cache_get_or_load(&h, &st, c, "k", 1, loader_bad_ttl, NULL, &e), BE_OK);
  ck_assert_int_eq(memcmp(be_cache_entry_value(h, NULL), "second", 6), 0);
  ck_assert_int_eq(be_cache_entry_expires_ns(h), INT64_MAX);
  be_cache_entry_release(h);
  be_cache_free(c);
}
END_TEST

START_TEST(negative_caching_has_its_own_ttl) {
  be_clock *clk = NULL;
  ck_assert_int_eq(be_clock_fake_new(&clk, 0, 0, NULL), BE_OK);
  be_cache_options o = BE_CACHE_OPTIONS_INIT;
  o.clock = clk;
  o.shard_count = 2;
  o.default_ttl_ms = 300 * 1000;
  o.negative_ttl_ms = 10 * 1000;
  be_cache *c = NULL;
  ck_assert_int_eq(be_cache_new(&c, &o, NULL), BE_OK);
  load_ctx l = {0};
  atomic_store(&l.release, 1);
  l.rc = BE_E_NOT_FOUND;
  caller a = {.c = c, .l = &l, .key = "user:404"};
  call_get_or_load(&a);
  ck_assert_int_eq(a.rc, BE_E_NOT_FOUND);
  ck_assert_int_eq(a.status, BE_CACHE_LOADED);
  be_clock_advance(clk, 10 * SEC - 1, NULL);
  caller b = {.c = c, .l = &l, .key = "user:404"};
  call_get_or_load(&b);
  ck_assert_int_eq(b.rc, BE_E_NOT_FOUND);
  ck_assert_int_eq(b.status, BE_CACHE_NEGATIVE);
  ck_assert_int_eq(b.err_code, BE_E_NOT_FOUND);
  ck_assert_str_eq(b.err_msg, "no such user");
  ck_assert_int_eq(atomic_load(&l.calls), 1);
  /* plain gets do not see negative entries */
  char buf[8];
  ck_assert(!gets(c, "user:404", buf, sizeof buf));
  be_clock_advance(clk, 1, NULL);
  caller d = {.c = c, .l = &l, .key = "user:404"};
  call_get_or_load(&d);
  ck_assert_int_eq(d.status, BE_CACHE_LOADED);
  ck_assert_int_eq(atomic_load(&l.calls), 2);

  /* retryable errors are never cached */
  l.rc = BE_E_UNAVAILABLE;
  caller u1 = {.c = c, .l = &l, .key = "user:503"}, u2 = u1;
  call_get_or_load(&u1);
  call_get_or_load(&u2);
  ck_assert_int_eq(u2.status, BE_CACHE_LOADED);
  ck_assert_int_eq(atomic_load(&l.calls), 4);
  l.rc = BE_E_NOT_FOUND;
  l.retryable = 1;
  caller r1 = {.c = c, .l = &l, .key = "user:r"}, r2 = r1;
  call_get_or_load(&r1);
  call_get_or_load(&r2);
  ck_assert_int_eq(r2.status, BE_CACHE_LOADED);
  l.retryable = 0;

  /* a set replaces the negative entry */
  ck_assert_int_eq(sets(c, "user:404", "found", 0), BE_OK);
  caller f = {.c = c, .l = &l, .key = "user:404"};
  call_get_or_load(&f);
  ck_assert_int_eq(f.status, BE_CACHE_HIT);
  ck_assert_str_eq(f.value, "found");
  be_cache_stats st = stats_of(c);
  ck_assert_uint_eq(st.negative_hits, 1);
  assert_stats_add_up(c);
  be_cache_free(c);
  be_clock_free(clk);
}
END_TEST

/* A delete, registered-prefix invalidation or set while loading means the
 * loaded value may be stale: it is returned but not cached. */
START_TEST(invalidation_during_load_is_not_lost) {
  for (int effect = 1; effect <= 3; effect++) {
    be_cache *c = new_cache(NULL, 2, 0, 0, 0);
    ck_assert_int_eq(be_cache_register_prefix(c, "user:", 5, NULL), BE_OK);
    load_ctx l = {0};
    atomic_store(&l.release, 1);
    l.cache = c;
    l.side_effect = effect;
    caller a = {.c = c, .l = &l, .key = "user:9"};
    call_get_or_load(&a);
    ck_assert_int_eq(a.rc, BE_OK);
    ck_assert_str_eq(a.value, "value of user:9");
    l.side_effect = 0;
    caller b = {.c = c, .l = &l, .key = "user:9"};
    call_get_or_load(&b);
    if (effect == 3) { /* the set during the load wins */
      ck_assert_int_eq(b.status, BE_CACHE_HIT);
      ck_assert_str_eq(b.value, "fresh");
      ck_assert_int_eq(atomic_load(&l.calls), 1);
    } else {
      ck_assert_int_eq(b.status, BE_CACHE_LOADED);
      ck_assert_int_eq(atomic_load(&l.calls), 2);
    }
    be_cache_free(c);
  }
}
END_TEST

/* A caller arriving after a delete must not join a load that started before
 * it: that load may have read the old value (a stale profile after an
 * update). It starts its own load instead. */
START_TEST(caller_after_delete_does_not_join_stale_load) {
  for (int how = 0; how < 3; how++) {
    be_cache *c = new_cache(NULL, 1, 0, 0, 0);
    ck_assert_int_eq(be_cache_register_prefix(c, "user:", 5, NULL), BE_OK);
    load_ctx l = {0};
    l.cache = c;
    caller a = {.c = c, .l = &l, .key = "user:7"}, b = {.c = c, .l = &l, .key = "user:7"};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, call_get_or_load, &a);
    wait_until_loads_started(&l.calls, 1);
    /* the row changed meanwhile: delete (not cached yet: BE_E_NOT_FOUND),
   * registered-prefix invalidation, unregistered-prefix invalidation */
    if (how == 0) be_cache_delete(c, "user:7", 6, NULL);
    if (how == 1) be_cache_invalidate_prefix(c, "user:", 5, NULL);
    if (how == 2) be_cache_invalidate_prefix(c, "user:7", 6, NULL);
    pthread_create(&tb, NULL, call_get_or_load, &b);
    int64_t start = be_clock_now_ns(NULL);
    while (atomic_load(&l.calls) < 2 && stats_of(c).load_waits < 1) {
      ck_assert_msg(be_clock_now_ns(NULL) - start < 10 * SEC, "second caller never arrived");
      sched_yield();
    }
    atomic_store(&l.release, 1);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    ck_assert_int_eq(a.rc, BE_OK);
    ck_assert_int_eq(b.rc, BE_OK);
    ck_assert_int_eq(b.status, BE_CACHE_LOADED);
    ck_assert_int_eq(atomic_load(&l.calls), 2);
    ck_assert_uint_eq(stats_of(c).load_waits, 0);
    be_cache_free(c);
  }
}
END_TEST

/* ---- stats after random multi-threaded-free workloads ---- */

START_TEST(stats_add_up_after_random_workload) {
  be_clock *clk = NULL;
  ck_assert_int_eq(be_clock_fake_new(&clk, 0, 0, NULL), BE_OK);
  be_cache_options o = BE_CACHE_OPTIONS_INIT;
  o.clock = clk;
  o.shard_count = 4;
  o.max_entries = 50;
  o.max_bytes = 40 * be_cache_charge(8, 30);
  o.default_ttl_ms = 100;
  o.negative_ttl_ms = 30;
  o.ttl_jitter_pct = 30;
  be_cache *c = NULL;
  ck_assert_int_eq(be_cache_new(&c, &o, NULL), BE_OK);
  ck_assert_int_eq(be_cache_register_prefix(c, "k1", 2, NULL), BE_OK);
  load_ctx l = {0};
  atomic_store(&l.release, 1);
  rng_state = 1234;
  uint64_t lookups = 0, errors = 0;
  for (int i = 0; i < 20000; i++) {
    char k[16];
    snprintf(k, sizeof k, "k%d", (int)rnd_below(120));
    unsigned r = (unsigned)rnd_below(100);
    if (r < 30) {
      char v[60];
      size_t vl = rnd_below(sizeof v);
      memset(v, 'a', vl);
      be_cache_set(c, k, strlen(k), v, vl, 0, NULL);
    } else if (r < 60) {
      size_t n;
      char buf[64];
      be_cache_get_copy(buf, sizeof buf, &n, c, k, strlen(k), NULL);
      lookups++;
    } else if (r < 85) {
      l.rc = rnd_below(4) == 0 ? BE_E_NOT_FOUND : BE_OK;
      l.ttl = 0;
      caller a = {.c = c, .l = &l, .key = k};
      call_get_or_load(&a);
      lookups++;
      if (a.rc != BE_OK && a.status == BE_CACHE_LOADED) errors++;
    } else if (r < 92) {
      be_cache_delete(c, k, strlen(k), NULL);
    } else if (r < 94) {
      be_cache_invalidate_prefix(c, rnd_below(2) ? "k1" : "k2", 2, NULL);
    } else {
      be_clock_advance(clk, (int64_t)rnd_below(20) * MS, NULL);
    }
    if (i % 1000 == 0) assert_stats_add_up(c);
  }
  be_cache_stats st = stats_of(c);
  assert_stats_add_up(c);
  ck_assert_uint_eq(st.hits + st.misses + st.negative_hits, lookups);
  ck_assert_uint_eq(st.loads, (uint64_t)atomic_load(&l.calls));
  ck_assert_uint_eq(st.load_errors, errors);
  ck_assert_uint_le(st.entries, 50);
  ck_assert_uint_le(st.bytes, o.max_bytes);
  ck_assert_uint_gt(st.evictions_count + st.evictions_size, 0);
  ck_assert_uint_gt(st.expirations, 0);
  ck_assert_uint_gt(st.invalidations, 0);
  ck_assert_uint_gt(st.negative_hits, 0);
  int64_t removed;
  be_clock_advance(clk, 1000 * MS, NULL); /* everything expires */
  ck_assert_int_eq(be_cache_sweep(&removed, c, 0, NULL), BE_OK);
  st = stats_of(c);
  ck_assert_uint_eq(st.entries, 0);
  ck_assert_uint_eq(st.bytes, 0);
  assert_stats_add_up(c);
  be_cache_free(c);
  be_clock_free(clk);
}
END_TEST

/* ---- callbacks may re-enter ---- */

static be_cache *reentrant_cache;
static _Atomic int reentrant_calls;

static void reentrant_evict(const void *key, size_t klen, const void *value, size_t vlen,
                            int32_t reason, void *ud) {
  (void)ud, (void)value, (void)vlen, (void)reason;
  char buf[8];
  size_t n;
  /* no lock is held: lookups, deletes and even sets of the same shard work */
  be_cache_get_copy(buf, sizeof buf, &n, reentrant_cache, key, klen, NULL);
  be_cache_delete(reentrant_cache, "nothing", 7, NULL);
  if (atomic_fetch_add(&reentrant_calls, 1) == 0)
    be_cache_set(reentrant_cache, "from-callback", 13, "v", 1, 0, NULL);
}

START_TEST(eviction_callback_may_call_the_cache) {
  be_cache_options o = BE_CACHE_OPTIONS_INIT;
  o.shard_count = 1;
  o.max_entries = 1;
  o.on_evict = reentrant_evict;
  ck_assert_int_eq(be_cache_new(&reentrant_cache, &o, NULL), BE_OK);
  atomic_store(&reentrant_calls, 0);
  ck_assert_int_eq(sets(reentrant_cache, "a", "1", 0), BE_OK);
  ck_assert_int_eq(sets(reentrant_cache, "b", "2", 0), BE_OK); /* evicts a, callback sets */
  char buf[8];
  ck_assert(gets(reentrant_cache, "from-callback", buf, sizeof buf));
  ck_assert_int_eq(atomic_load(&reentrant_calls), 2); /* a, then b evicted by the callback's set */
  be_cache_free(reentrant_cache);
}
END_TEST

/* ---- allocation failures ---- */

static int alloc_body(void *arg) {
  (void)arg;
  be_cache *c = NULL;
  be_cache_options o = BE_CACHE_OPTIONS_INIT;
  o.shard_count = 2;
  o.max_entries = 8;
  int rc = be_cache_new(&c, &o, NULL);
  if (rc != BE_OK) return rc;
  rc = be_cache_register_prefix(c, "user:", 5, NULL);
  if (rc == BE_OK) rc = sets(c, "user:1", "one", 0);
  if (rc == BE_OK) rc = sets(c, "user:2", "two", 0);
  if (rc == BE_OK) rc = sets(c, "user:1", "uno", 0);
  load_ctx l = {0};
  atomic_store(&l.release, 1);
  if (rc == BE_OK) {
    be_cache_entry *h = NULL;
    rc = be_cache_get_or_load(&h, NULL, c, "user:3", 6, loader, &l, NULL);
    be_cache_entry_release(h);
  }
  if (rc == BE_OK) rc = be_cache_invalidate_prefix(c, "user:", 5, NULL);
  if (rc == BE_OK) rc = be_cache_invalidate_prefix(c, "use", 3, NULL);
  be_cache_free(c);
  return rc;
}

static int alloc_body_errors(void *arg) {
  (void)arg;
  be_cache *c = NULL;
  be_error *e = NULL;
  int rc = be_cache_new(&c, NULL, &e);
  if (rc != BE_OK) {
    be_error_free(e);
    return rc;
  }
  load_ctx l = {0};
  atomic_store(&l.release, 1);
  l.rc = BE_E_STORAGE;
  be_cache_entry *h = NULL;
  rc = be_cache_get_or_load(&h, NULL, c, "k", 1, loader, &l, &e);
  be_error_free(e);
  be_cache_free(c);
  /* the loader's own error allocation may fail: still a failure */
  return rc == BE_E_STORAGE ? BE_OK : rc;
}

START_TEST(allocation_failures_do_not_leak) {
  TU_FOR_EACH_ALLOC_FAILURE(alloc_body, NULL);
  /* with an error object to fill, every failure path still frees all */
  for (long n = 1; n < 200; n++) {
    tu_alloc_install(n);
    alloc_body_errors(NULL);
    long live = atomic_load(&tu_alloc_live);
    tu_alloc_restore();
    ck_assert_msg(live == 0, "leak of %ld blocks when allocation %ld fails", live, n);
  }
}
END_TEST

/* ---- concurrency: run under TSan in CI ---- */

/* The lock-free hit path (get_copy on a CLOCK cache) against a writer
 * that replaces values (changing their length), deletes, grows shards,
 * invalidates, sweeps and clears. Values are self-checking (key, version,
 * a filler that depends on both), so a torn or freed read shows; a
 * version published before a get must not be older than what the get
 * returns (no stale read after a completed set); hits and misses must
 * add up to the gets done; all memory must come back. Runs under TSan and
 * ASan in CI. */
#define LF_KEYS 64
typedef struct lf_shared {
  be_cache *c;
  _Atomic uint64_t latest[LF_KEYS]; /* version of the last completed set */
  _Atomic int stop;
  _Atomic long gets;
} lf_shared;

static size_t lf_value(char *v, size_t cap, int id, uint64_t ver) {
  int n = snprintf(v, cap, "k%d:v%llu:", id, (unsigned long long)ver);
  size_t len = (size_t)n + (size_t)((ver * 7 + (uint64_t)id) % 120);
  if (len > cap) len = cap;
  for (size_t i = (size_t)n; i < len; i++) v[i] = (char)('a' + (ver + (uint64_t)id + i) % 26);
  return len;
}

/* A loaded value is the latest completed set's, so it passes the same
 * checks as a cached one. */
static int lf_loader(const void *key, size_t klen, be_cache_load *out, void *ud, be_error **err) {
  (void)err;
  lf_shared *sh = ud;
  char k[16], v[256];
  memcpy(k, key, klen);
  k[klen] = 0;
  int id = atoi(k + 3);
  size_t vl = lf_value(v, sizeof v, id, atomic_load(&sh->latest[id]));
  return be_cache_load_set_value(out, v, vl, BE_CACHE_TTL_DEFAULT, NULL);
}

/* One read by copy (0), handle (1) or get-or-load (2); 1 with the value. */
static int lf_read(lf_shared *sh, int how, const char *k, size_t kl, char *buf, size_t *n) {
  if (how == 0) return be_cache_get_copy(buf, 256, n, sh->c, k, kl, NULL) == BE_OK;
  be_cache_entry *h = NULL;
  int rc = how == 1 ? be_cache_get(&h, sh->c, k, kl, NULL)
                    : be_cache_get_or_load(&h, NULL, sh->c, k, kl, lf_loader, sh, NULL);
  if (rc != BE_OK) return 0;
  const void *v = be_cache_entry_value(h, n);
  ck_assert_uint_le(*n, 256);
  memcpy(buf, v, *n);
  be_cache_entry_release(h);
  return 1;
}

/* One read of a random key (s: the reader's generator state): a value
 * read is one the writer set, not older than the last completed set. */
static void lf_check_one(lf_shared *sh, uint64_t *s) {
  *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
  int id = (int)(*s % LF_KEYS);
  char k[16], buf[257], want[256]; /* buf: the value, then a NUL for sscanf */
  int kl = snprintf(k, sizeof k, "lf:%d", id);
  uint64_t floor = atomic_load(&sh->latest[id]);
  size_t n = 0;
  atomic_fetch_add_explicit(&sh->gets, 1, memory_order_relaxed);
  if (!lf_read(sh, (int)((*s >> 32) % 3), k, (size_t)kl, buf, &n)) return;
  buf[n] = '\0'; /* a cached value is bytes, not a C string */
  int got_id = -1;
  unsigned long long ver = 0;
  ck_assert_int_eq(sscanf(buf, "k%d:v%llu:", &got_id, &ver), 2);
  ck_assert_int_eq(got_id, id);
  ck_assert_uint_ge(ver, floor);
  ck_assert_uint_eq(lf_value(want, sizeof want, id, ver), n);
  ck_assert(memcmp(buf, want, n) == 0);
}

static void *lf_reader(void *p) {
  lf_shared *sh = p;
  uint64_t s = (uint64_t)(uintptr_t)&s | 1;
  while (!atomic_load(&sh->stop)) lf_check_one(sh, &s);
  return NULL;
}

static void lock_free_hits_run(void) {
  use_counting_allocator();
  static lf_shared sh;
  memset(&sh, 0, sizeof sh);
  sh.c = new_cache(NULL, 2, 0, 0, 0);
  ck_assert_int_eq(be_cache_register_prefix(sh.c, "lf:1", 4, NULL), BE_OK);
  pthread_t t[2];
  for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, lf_reader, &sh), 0);
  uint64_t ver = 1;
  for (int round = 0; round < 3000; round++) {
    for (int id = 0; id < LF_KEYS; id++) {
      char k[16], v[256];
      int kl = snprintf(k, sizeof k, "lf:%d", id);
      size_t vl = lf_value(v, sizeof v, id, ++ver);
      ck_assert_int_eq(be_cache_set(sh.c, k, (size_t)kl, v, vl, BE_CACHE_TTL_DEFAULT, NULL), BE_OK);
      atomic_store(&sh.latest[id], ver);
    }
    if (round % 7 == 0) { /* fill and drop others: the shards grow and shrink */
      for (int j = 0; j < 200; j++) {
        char k[24];
        int kl = snprintf(k, sizeof k, "other:%d:%d", round, j);
        be_cache_set(sh.c, k, (size_t)kl, "x", 1, BE_CACHE_TTL_DEFAULT, NULL);
      }
      be_cache_invalidate_prefix(sh.c, "other:", 6, NULL);
    }
    if (round % 11 == 0) be_cache_delete(sh.c, "lf:3", 4, NULL);
    if (round % 13 == 0) be_cache_invalidate_prefix(sh.c, "lf:1", 4, NULL);
    if (round % 17 == 0) be_cache_sweep(NULL, sh.c, 4, NULL);
    if (round % 97 == 0) be_cache_clear(sh.c, NULL);
  }
  atomic_store(&sh.stop, 1);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  be_cache_stats st = stats_of(sh.c);
  /* every call, of any of the three kinds, counts one hit or one miss */
  ck_assert_uint_eq(st.hits + st.misses, (uint64_t)atomic_load(&sh.gets));
  ck_assert_uint_gt(st.hits, 0);
  assert_stats_add_up(sh.c);
  ck_assert_int_eq(st.memory_bytes, atomic_load(&mem_live));
  be_cache_free(sh.c);
  ck_assert_int_eq(atomic_load(&mem_live), 0);
  be_set_allocator(NULL, NULL);
}

START_TEST(lock_free_hits_under_concurrent_writes) { lock_free_hits_run(); }
END_TEST

/* The same where membarrier is missing (old kernels, seccomp): readers
 * then pay a fence each. Check forks per test, so nothing has registered
 * a reader yet when the mode is forced. */
START_TEST(lock_free_hits_with_reader_fences) {
  const char *fork_mode = getenv("CK_FORK");
  if (fork_mode && strcmp(fork_mode, "no") == 0) return; /* the mode is chosen once per process */
  be__ebr_test_force_fences();
  lock_free_hits_run();
  ck_assert_int_eq(be__ebr_reader_fence, 1);
}
END_TEST

/* Reader slots: one per live thread, reused after exit; a thread beyond
 * the hit stripes (index >= BE__CACHE_STRIPES) takes the locked path, so
 * with more live threads than stripes every hit is still counted once. */
typedef struct many_arg {
  be_cache *c;
  pthread_barrier_t *bar;
} many_arg;

static void *many_reader(void *p) {
  many_arg *a = p;
  pthread_barrier_wait(a->bar); /* all alive at once: distinct slots */
  for (int i = 0; i < 50; i++) {
    char buf[16];
    size_t n;
    ck_assert_int_eq(be_cache_get_copy(buf, sizeof buf, &n, a->c, "k", 1, NULL), BE_OK);
    ck_assert_uint_eq(n, 5);
    ck_assert(memcmp(buf, "value", 5) == 0);
  }
  return NULL;
}

START_TEST(hits_counted_once_with_more_threads_than_stripes) {
  enum { N = BE__CACHE_STRIPES + 16 };
  be_cache *c = new_cache(NULL, 1, 0, 0, 0);
  ck_assert_int_eq(be_cache_set(c, "k", 1, "value", 5, 0, NULL), BE_OK);
  pthread_barrier_t bar;
  pthread_barrier_init(&bar, NULL, N);
  static many_arg a[N];
  static pthread_t t[N];
  for (int round = 0; round < 2; round++) { /* the second round reuses slots */
    for (int i = 0; i < N; i++) {
      a[i] = (many_arg){c, &bar};
      ck_assert_int_eq(pthread_create(&t[i], NULL, many_reader, &a[i]), 0);
    }
    for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
  }
  pthread_barrier_destroy(&bar);
  be_cache_stats st = stats_of(c);
  ck_assert_uint_eq(st.hits, 2 * N * 50);
  ck_assert_uint_eq(st.misses, 0);
  be_cache_free(c);
}
END_TEST

/* ebr: a reader inside holds back reclamation of what was retired after
 * it entered, and only that. */
typedef struct ebr_arg {
  _Atomic int phase;
  uint64_t entered_at;
} ebr_arg;

static void *ebr_reader_thread(void *p) {
  ebr_arg *a = p;
  be__ebr_reader *r = be__ebr_self();
  ck_assert_ptr_nonnull(r);
  be__ebr_enter(r);
  a->entered_at = atomic_load(&r->active);
  atomic_store(&a->phase, 1);
  while (atomic_load(&a->phase) != 2) sched_yield();
  be__ebr_exit(r);
  atomic_store(&a->phase, 3);
  return NULL;
}

/* Start a reader thread and wait until it is inside its section. */
static void hold_reader(ebr_arg *a, pthread_t *t) {
  atomic_init(&a->phase, 0);
  ck_assert_int_eq(pthread_create(t, NULL, ebr_reader_thread, a), 0);
  while (atomic_load(&a->phase) != 1) sched_yield();
}

/* Let the reader of hold_reader() leave its section and end. */
static void release_reader(ebr_arg *a, pthread_t t) {
  atomic_store(&a->phase, 2);
  while (atomic_load(&a->phase) != 3) sched_yield();
  pthread_join(t, NULL);
}

/* Sets of new keys "key<i>" for i in [from, from + n); in a cache
 * bounded at 8 entries, past the first 8 each evicts one. */
static void set_keys(be_cache *c, int from, int n) {
  for (int i = from; i < from + n; i++) {
    char k[16];
    int kl = snprintf(k, sizeof k, "key%d", i);
    ck_assert_int_eq(be_cache_set(c, k, (size_t)kl, "v", 1, 0, NULL), BE_OK);
  }
}

START_TEST(ebr_reader_holds_back_later_retirements) {
  ebr_arg a;
  pthread_t t;
  hold_reader(&a, &t);
  uint64_t retired = be__ebr_retire_epoch(); /* unlinked while the reader is inside */
  ck_assert_uint_gt(retired, a.entered_at);
  uint64_t oldest = be__ebr_oldest_reader();
  ck_assert_uint_le(oldest, a.entered_at); /* other suites' readers may be older still */
  ck_assert_uint_lt(oldest, retired);      /* so not yet safe to free */
  release_reader(&a, t);
  ck_assert_uint_ge(be__ebr_oldest_reader(), retired); /* now it is */
}
END_TEST

/* A thread that only writes reclaims too, and its scan must use the
 * barrier scheme readers use: readers skip their fence only because scans
 * issue membarrier, so a scan made before the scheme is settled (on the
 * first reader's registration) may miss a reader's slot store and free
 * what it reads. Each test runs in a fresh process (Check forks), where
 * nothing has registered yet. */
static void *ebr_take_slot(void *p) {
  (void)p;
  return be__ebr_self();
}

START_TEST(ebr_scan_uses_the_readers_barrier_scheme) {
  be__ebr_oldest_reader(); /* a writer's first grace-period check */
  int scheme = be__ebr_reader_fence;
  pthread_t t;
  void *r = NULL;
  ck_assert_int_eq(pthread_create(&t, NULL, ebr_take_slot, NULL), 0);
  pthread_join(t, &r);
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(be__ebr_reader_fence, scheme);
}
END_TEST

/* A thread gives its reader slot back in a key destructor at exit, and
 * another thread may take the slot at once. A later destructor of the
 * exiting thread may still read the cache: it must not do so on that slot
 * (two readers on one slot: one's exit ends the other's read section, and
 * both write one hit stripe). */
typedef struct late_use {
  be_cache *c;
  int round;
  be__ebr_reader *mine, *other;
  int hits;
} late_use;
static pthread_key_t late_key;

static int late_get(late_use *u) {
  char buf[16];
  size_t n = 0;
  return be_cache_get_copy(buf, sizeof buf, &n, u->c, "k", 1, NULL) == BE_OK && n == 5 &&
         memcmp(buf, "value", 5) == 0;
}

static void late_destructor(void *p) {
  late_use *u = p;
  if (u->round++ == 0) { /* run again after every first-round destructor, ebr's included */
    pthread_setspecific(late_key, u);
    return;
  }
  u->mine = be__ebr_self();
  pthread_t t;
  void *other = NULL;
  if (pthread_create(&t, NULL, ebr_take_slot, NULL) == 0) pthread_join(t, &other);
  u->other = other;
  u->hits += late_get(u);
}

static void *late_thread(void *p) {
  late_use *u = p;
  u->hits += late_get(u);
  pthread_setspecific(late_key, u);
  return NULL;
}

START_TEST(thread_exit_gives_its_reader_slot_back_for_good) {
  static late_use u;
  memset(&u, 0, sizeof u);
  u.c = new_cache(NULL, 1, 0, 0, 0);
  ck_assert_int_eq(be_cache_set(u.c, "k", 1, "value", 5, 0, NULL), BE_OK);
  ck_assert(late_get(&u)); /* marks it referenced: later hits are lock-free */
  ck_assert_int_eq(pthread_key_create(&late_key, late_destructor), 0);
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, late_thread, &u), 0);
  pthread_join(t, NULL);
  ck_assert_int_eq(u.round, 2);
  ck_assert_ptr_nonnull(u.other);
  ck_assert(u.mine != u.other); /* NULL (the locked path) or a slot of its own */
  ck_assert_int_eq(u.hits, 2);
  ck_assert_uint_eq(stats_of(u.c).hits, 3);
  pthread_key_delete(late_key);
  be_cache_free(u.c);
}
END_TEST

/* After a burst of more live threads than hit stripes, a thread started
 * when few are alive must get a low slot index again: with an index at or
 * above BE__CACHE_STRIPES every hit it makes takes the shard lock. */
static void *burst_reader(void *p) {
  be__ebr_self();
  pthread_barrier_wait(p); /* all alive at once: distinct slots */
  return NULL;
}

static void *slot_index_of_new_thread(void *p) {
  be__ebr_reader *r = be__ebr_self();
  *(uint32_t *)p = r ? r->index : UINT32_MAX;
  return NULL;
}

START_TEST(reader_slots_reused_lowest_index_first) {
  enum { N = BE__CACHE_STRIPES + 8 };
  static pthread_t t[N];
  pthread_barrier_t bar;
  pthread_barrier_init(&bar, NULL, N);
  for (int i = 0; i < N; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, burst_reader, &bar), 0);
  for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
  pthread_barrier_destroy(&bar);
  uint32_t index = UINT32_MAX;
  pthread_t late;
  ck_assert_int_eq(pthread_create(&late, NULL, slot_index_of_new_thread, &index), 0);
  pthread_join(late, NULL);
  ck_assert_uint_lt(index, BE__CACHE_STRIPES);
}
END_TEST

/* A retired table makes the next bury reclaim; once every retired table
 * is freed that must stop, or every later write takes the cache-wide
 * retire lock for nothing. */
START_TEST(freed_tables_stop_reclamation_passes) {
  idle_reader other; /* tables wait for passes */
  idle_reader_start(&other);
  be_cache *c = new_cache(NULL, 1, 0, 0, 0);
  set_keys(c, 0, 40); /* the table grows twice */
  stats_of(c);        /* reclaims: no reader is inside */
  ck_assert_ptr_null(c->retired_tables);
  int flag = atomic_load(&c->retry_pending);
  ck_assert_int_eq(flag, 0);
  be_cache_free(c);
  idle_reader_stop(&other);
}
END_TEST

/* A shard's table is at most half full while it is small (short chains
 * for a fixed 4 KiB a shard), and at most full beyond, where it holds
 * no more than the BE__CACHE_SLOTS_PER_ENTRY slots per entry that
 * be_cache_charge() counts. */
START_TEST(tables_stay_sparse_while_small) {
  be_cache *c = new_cache(NULL, 4, 0, 0, 0);
  for (int n = 1; n <= 6000; n++) {
    set_keys(c, n - 1, 1);
    for (uint32_t i = 0; i < c->nshards; i++) {
      be__cache_shard *s = &c->shards[i];
      size_t slots = s->table->mask + 1;
      unsigned long long count = s->count;
      if (slots < BE__CACHE_SPARSE_SLOTS)
        QTRUE(2 * count <= slots, "%d keys: shard %u holds %llu in %zu slots", n, i, count, slots);
      else
        QTRUE(count <= slots && (slots == BE__CACHE_SPARSE_SLOTS ||
                                 slots <= BE__CACHE_SLOTS_PER_ENTRY * count),
              "%d keys: shard %u holds %llu in %zu slots", n, i, count, slots);
    }
  }
  be_cache_free(c);
}
END_TEST

/* While no other thread reads without a lock, removed entries skip the
 * grace period: nothing is retired and no pass (no membarrier) runs, and
 * the spares stay within their bounds. A second reader, even idle, brings
 * the retirements back; once it has ended they stop again, and what it
 * left retired goes (no batch would come to free it). */
START_TEST(removals_skip_the_grace_period_while_alone) {
  enum { B = (int)BE__CACHE_RECLAIM_BATCH };
  be_cache *c = new_cache(NULL, 1, 8, 0, 0);
  char buf[8];
  ck_assert(!gets(c, "x", buf, sizeof buf)); /* this thread reads too */
  uint64_t passes0 = c->reclaim_passes;
  set_keys(c, 0, 4 * B);
  ck_assert_uint_eq(c->retired_count, 0);
  ck_assert_uint_eq(c->reclaim_passes, passes0);
  ck_assert_uint_le(atomic_load(&c->nspares), BE__CACHE_SPARES_MAX);
  idle_reader other;
  idle_reader_start(&other);
  set_keys(c, 4 * B, 16);
  ck_assert_uint_eq(c->retired_count, 16);
  idle_reader_stop(&other);
  set_keys(c, 4 * B + 16, 16);
  ck_assert_uint_eq(c->retired_count, 0); /* alone again: what waited goes at once, too */
  assert_stats_add_up(c);
  be_cache_free(c);
}
END_TEST

/* Readers that come and go (each registers, reads at once, and ends)
 * beside a writer that evicts: the writer frees what it removes at once
 * whenever it finds itself the only reader, so a reader registering
 * meanwhile must never reach such an entry. Values are too large to be
 * kept as spares, so a block read after its release was really freed
 * (ASan reports it; elsewhere the value checks may). */
enum { CG_KEYS = 32,
       CG_VLEN = BE__CACHE_SPARE_BLOCK + 1000 };

typedef struct cg_shared {
  be_cache *c;
  _Atomic int stop;
  _Atomic long hits, bad;
} cg_shared;

static void cg_value(char *v, int id, unsigned ver) {
  memset(v, 'a' + (int)((unsigned)id + ver) % 26, CG_VLEN);
  snprintf(v, 32, "k%d:v%u:", id, ver);
}

static void *cg_brief_reader(void *p) {
  cg_shared *sh = p;
  char *buf = malloc(CG_VLEN + 1);
  ck_assert_ptr_nonnull(buf);
  unsigned s = (unsigned)(uintptr_t)buf | 1;
  for (int i = 0; i < 20; i++) {
    s = s * 1103515245u + 12345u;
    int id = (int)((s >> 8) % CG_KEYS);
    char k[16];
    int kl = snprintf(k, sizeof k, "key:%d", id);
    size_t n = 0;
    if (be_cache_get_copy(buf, CG_VLEN, &n, sh->c, k, (size_t)kl, NULL) != BE_OK) continue;
    atomic_fetch_add(&sh->hits, 1);
    buf[CG_VLEN] = '\0';
    int got = -1;
    unsigned ver = 0;
    if (n != CG_VLEN || sscanf(buf, "k%d:v%u:", &got, &ver) != 2 || got != id ||
        buf[CG_VLEN - 1] != 'a' + (int)((unsigned)id + ver) % 26)
      atomic_fetch_add(&sh->bad, 1);
  }
  free(buf);
  return NULL;
}

static void *cg_spawner(void *p) {
  cg_shared *sh = p;
  while (!atomic_load(&sh->stop)) {
    pthread_t t[2]; /* two at once: more first reads in the window */
    for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, cg_brief_reader, sh), 0);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  }
  return NULL;
}

START_TEST(readers_coming_and_going_never_reach_a_freed_entry) {
  static cg_shared sh;
  memset(&sh, 0, sizeof sh);
  sh.c = new_cache(NULL, 1, CG_KEYS / 2, 0, 0); /* half the keys fit: every set evicts */
  char *v = malloc(CG_VLEN);
  ck_assert_ptr_nonnull(v);
  size_t n = 0;
  ck_assert_int_eq(be_cache_get_copy(v, CG_VLEN, &n, sh.c, "x", 1, NULL), BE_E_NOT_FOUND);
  pthread_t sp; /* the writer reads too: alone between readers */
  ck_assert_int_eq(pthread_create(&sp, NULL, cg_spawner, &sh), 0);
  unsigned ver = 0;
  for (int round = 0; round < 600; round++)
    for (int id = 0; id < CG_KEYS; id++) {
      char k[16];
      int kl = snprintf(k, sizeof k, "key:%d", id);
      cg_value(v, id, ++ver);
      ck_assert_int_eq(be_cache_set(sh.c, k, (size_t)kl, v, CG_VLEN, 0, NULL), BE_OK);
    }
  atomic_store(&sh.stop, 1);
  pthread_join(sp, NULL);
  ck_assert_int_gt(atomic_load(&sh.hits), 0);
  ck_assert_int_eq(atomic_load(&sh.bad), 0);
  assert_stats_add_up(sh.c);
  be_cache_free(sh.c);
  free(v);
}
END_TEST

/* One reclamation pass per batch of retirements: with no reader inside
 * each pass frees its batch (and what was retired meanwhile is counted
 * towards the next), so memory stays bounded. A reader held inside its
 * section keeps every later retirement: a pass frees nothing then, and
 * the next comes after BE__CACHE_RETRY_EVERY writes, not at every write
 * after the first batch (each pass scans for readers with a membarrier:
 * 15-40 us with a second thread running on a VM). */
START_TEST(one_reclamation_pass_per_batch) {
  enum { BATCHES = 4,
         B = (int)BE__CACHE_RECLAIM_BATCH };
  idle_reader other; /* a process where another thread reads: passes happen */
  idle_reader_start(&other);
  be_cache *c = new_cache(NULL, 1, 8, 0, 0);
  set_keys(c, 0, 8);
  uint64_t passes0 = c->reclaim_passes;
  set_keys(c, 8, BATCHES * B);
  ck_assert_uint_eq(c->reclaim_passes - passes0, BATCHES);
  ck_assert_uint_lt(c->retired_count, BE__CACHE_RECLAIM_BATCH);

  ebr_arg a;
  pthread_t t;
  hold_reader(&a, &t);
  passes0 = c->reclaim_passes;
  set_keys(c, 8 + BATCHES * B, BATCHES * B);
  /* what was retired before the reader entered went at the first pass;
   * everything retired since is held back */
  ck_assert_uint_eq(c->retired_count, BATCHES * BE__CACHE_RECLAIM_BATCH);
  ck_assert_uint_ge(c->reclaim_passes - passes0, BATCHES);
  ck_assert_uint_le(c->reclaim_passes - passes0, BATCHES * B / BE__CACHE_RETRY_EVERY + 1);
  release_reader(&a, t);
  stats_of(c); /* the reader left: everything goes */
  ck_assert_uint_eq(c->retired_count, 0);
  be_cache_free(c);
  idle_reader_stop(&other);
}
END_TEST

/* A clear of a cache of many shards runs a reclamation pass or two (a
 * membarrier each), not one per shard for its old table. */
START_TEST(clear_reclaims_in_one_pass_not_one_per_shard) {
  idle_reader other; /* tables wait for passes */
  idle_reader_start(&other);
  be_cache *c = new_cache(NULL, 64, 0, 0, 0);
  set_keys(c, 0, 2000);
  stats_of(c);
  uint64_t passes0 = c->reclaim_passes;
  ck_assert_int_eq(be_cache_clear(c, NULL), BE_OK);
  ck_assert_uint_le(c->reclaim_passes - passes0, 2);
  ck_assert_uint_eq(stats_of(c).entries, 0);
  be_cache_free(c);
  idle_reader_stop(&other);
}
END_TEST

/* A retired table a reader holds back is tried again every
 * BE__CACHE_RETRY_EVERY writes, not on every write (each try is a scan
 * for readers and a membarrier). */
START_TEST(held_reader_table_is_retried_at_a_rate) {
  enum { WRITES = 4 * (int)BE__CACHE_RETRY_EVERY };
  be_cache *c = new_cache(NULL, 1, 0, 0, 0);
  ebr_arg a;
  pthread_t t;
  hold_reader(&a, &t);
  set_keys(c, 0, 40); /* the table grows: the old ones wait for the reader */
  ck_assert_ptr_nonnull(c->retired_tables);
  uint64_t passes0 = c->reclaim_passes;
  for (int i = 0; i < WRITES; i++) /* writes that bury nothing: deletes of absent keys */
    ck_assert_int_eq(be_cache_delete(c, "absent", 6, NULL), BE_E_NOT_FOUND);
  uint64_t passes = c->reclaim_passes - passes0;
  ck_assert_uint_ge(passes, 3);
  ck_assert_uint_le(passes, 5);
  release_reader(&a, t);
  stats_of(c); /* the reader left: the tables go */
  ck_assert_ptr_null(c->retired_tables);
  be_cache_free(c);
}
END_TEST


/* What a reader held back at a pass is freed soon after it leaves, by
 * later writes of any kind, not only once another whole batch of
 * removals comes (which, on a cache mostly read, may take hours). */
START_TEST(held_back_entries_freed_after_the_reader_leaves) {
  be_cache *c = new_cache(NULL, 1, 0, 0, 0);
  set_keys(c, 0, 5000);
  stats_of(c); /* the tables the growth retired go */
  ebr_arg a;
  pthread_t t;
  hold_reader(&a, &t);
  /* an unregistered prefix: every entry removed one by one, one pass */
  ck_assert_int_eq(be_cache_invalidate_prefix(c, "key", 3, NULL), BE_OK);
  ck_assert_uint_eq(c->retired_count, 5000);
  release_reader(&a, t);
  for (int i = 0; i < (int)BE__CACHE_RETRY_EVERY + 1; i++)
    ck_assert_int_eq(be_cache_delete(c, "absent", 6, NULL), BE_E_NOT_FOUND);
  ck_assert_uint_eq(c->retired_count, 0);
  be_cache_free(c);
}
END_TEST

/* An invalidation of a prefix that is still being registered must not
 * rely on the registration's marks: entries of shards the registration
 * pass has not reached yet lack the prefix bit. Holding the only shard's
 * lock stops that pass right after the prefix is published. */
typedef struct reg_arg {
  be_cache *c;
  _Atomic int done;
} reg_arg;

static void *register_p(void *p) {
  reg_arg *a = p;
  ck_assert_int_eq(be_cache_register_prefix(a->c, "p:", 2, NULL), BE_OK);
  atomic_store(&a->done, 1);
  return NULL;
}

static void *invalidate_p(void *p) {
  reg_arg *a = p;
  ck_assert_int_eq(be_cache_invalidate_prefix(a->c, "p:", 2, NULL), BE_OK);
  atomic_store(&a->done, 1);
  return NULL;
}

START_TEST(invalidate_during_prefix_registration) {
  be_cache *c = new_cache(NULL, 1, 0, 0, 0);
  char buf[8];
  size_t n;
  ck_assert_int_eq(be_cache_set(c, "p:1", 3, "old", 3, 0, NULL), BE_OK);
  for (int i = 0; i < 2; i++) /* marked referenced: later hits need no lock */
    ck_assert_int_eq(be_cache_get_copy(buf, sizeof buf, &n, c, "p:1", 3, NULL), BE_OK);
  be__cache_shard *s = &c->shards[0];
  be__spinlock_lock(&s->lock);
  reg_arg ra = {c, 0}, ia = {c, 0};
  pthread_t tr, ti;
  ck_assert_int_eq(pthread_create(&tr, NULL, register_p, &ra), 0);
  while (atomic_load(&c->nprefixes) == 0) sched_yield(); /* published; its pass waits for us */
  ck_assert_int_eq(pthread_create(&ti, NULL, invalidate_p, &ia), 0);
  struct timespec ts = {0, 50000000};
  nanosleep(&ts, NULL);
  if (atomic_load(&ia.done)) /* it says it is done: the old value must be gone */
    ck_assert_int_eq(be_cache_get_copy(buf, sizeof buf, &n, c, "p:1", 3, NULL), BE_E_NOT_FOUND);
  be__spinlock_unlock(&s->lock);
  pthread_join(tr, NULL);
  pthread_join(ti, NULL);
  ck_assert_int_eq(be_cache_get_copy(buf, sizeof buf, &n, c, "p:1", 3, NULL), BE_E_NOT_FOUND);
  /* once registered, invalidation is the O(1) bump again */
  ck_assert_int_eq(be_cache_set(c, "p:2", 3, "new", 3, 0, NULL), BE_OK);
  ck_assert_int_eq(be_cache_invalidate_prefix(c, "p:", 2, NULL), BE_OK);
  ck_assert_int_eq(be_cache_get_copy(buf, sizeof buf, &n, c, "p:2", 3, NULL), BE_E_NOT_FOUND);
  be_cache_free(c);
}
END_TEST

/* The shard lock: mutual exclusion (a plain counter under the lock comes
 * out exact; TSan sees a race if it is not), and progress when a holder
 * keeps it for milliseconds, so waiters go through spin, yield and nap. */
typedef struct spin_arg {
  be__spinlock *lock;
  long *counter;
  int rounds;
  int long_holds;
} spin_arg;

static void *spin_worker(void *p) {
  spin_arg *a = p;
  for (int i = 0; i < a->rounds; i++) {
    be__spinlock_lock(a->lock);
    long v = *a->counter;
    if (a->long_holds && i % (a->rounds / a->long_holds) == 0) {
      struct timespec ts = {0, 3000000}; /* 3 ms: far past the spin and yield phases */
      nanosleep(&ts, NULL);
    }
    *a->counter = v + 1;
    be__spinlock_unlock(a->lock);
  }
  return NULL;
}

START_TEST(spinlock_excludes_and_waiters_progress) {
  be__spinlock lock = BE__SPINLOCK_INIT;
  long counter = 0;
  spin_arg a[4];
  pthread_t t[4];
  for (int i = 0; i < 4; i++) {
    a[i] = (spin_arg){&lock, &counter, 20000, i == 0 ? 5 : 0};
    ck_assert_int_eq(pthread_create(&t[i], NULL, spin_worker, &a[i]), 0);
  }
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  ck_assert_int_eq(counter, 4 * 20000);
  ck_assert(be__spinlock_try(&lock));
  ck_assert(!be__spinlock_try(&lock));
  be__spinlock_unlock(&lock);
}
END_TEST


typedef struct stress_arg {
  be_cache *c;
  uint64_t seed;
  load_ctx *l;
} stress_arg;

static void *stress_thread(void *p) {
  stress_arg *a = p;
  uint64_t s = a->seed;
  for (int i = 0; i < 40000; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    char k[24], v[64];
    int id = (int)(s % 300);
    int kl = snprintf(k, sizeof k, "user:%d", id);
    /* the value names its key, so a torn or freed read shows */
    int vl = snprintf(v, sizeof v, "%s|%0*d", k, (int)((s >> 20) % 30), id);
    switch ((s >> 32) % 10) {
      case 0:
      case 1:
      case 2:
        be_cache_set(a->c, k, (size_t)kl, v, (size_t)vl, (int64_t)((s >> 40) % 3), NULL);
        break;
      case 3:
      case 4: {
        be_cache_entry *h = NULL;
        if (be_cache_get(&h, a->c, k, (size_t)kl, NULL) == BE_OK) {
          size_t n;
          const char *val = be_cache_entry_value(h, &n);
          ck_assert((n > (size_t)kl && memcmp(val, k, (size_t)kl) == 0 && val[kl] == '|') ||
                    (n == 9 + (size_t)kl && memcmp(val, "value of ", 9) == 0 &&
                     memcmp(val + 9, k, (size_t)kl) == 0));
          be_cache_entry_release(h);
        }
        break;
      }
      case 5:
      case 6: {
        be_cache_entry *h = NULL;
        if (be_cache_get_or_load(&h, NULL, a->c, k, (size_t)kl, loader, a->l, NULL) == BE_OK) {
          size_t n;
          const char *val = be_cache_entry_value(h, &n);
          ck_assert(n >= (size_t)kl);
          ck_assert(memcmp(val, k, (size_t)kl) == 0 || memcmp(val, "value of ", 9) == 0);
          be_cache_entry_release(h);
        }
        break;
      }
      case 7: {
        char buf[64];
        size_t n;
        if (be_cache_get_copy(buf, sizeof buf, &n, a->c, k, (size_t)kl, NULL) == BE_OK)
          ck_assert(memcmp(buf, k, (size_t)kl) == 0 || memcmp(buf, "value of ", 9) == 0);
        break;
      }
      case 8:
        be_cache_delete(a->c, k, (size_t)kl, NULL);
        break;
      default:
        if (s % 97 == 0) be_cache_invalidate_prefix(a->c, "user:1", 6, NULL);
        else if (s % 89 == 0) be_cache_invalidate_prefix(a->c, "user:", 5, NULL);
        else if (s % 83 == 0) be_cache_sweep(NULL, a->c, 8, NULL);
        else if (s % 1009 == 0) be_cache_clear(a->c, NULL);
        else {
          be_cache_stats st = BE_CACHE_STATS_INIT;
          be_cache_stats_get(&st, a->c, NULL);
        }
        break;
    }
  }
  return NULL;
}

static void count_evict(const void *key, size_t klen, const void *value, size_t vlen, int32_t reason,
                        void *ud) {
  (void)key, (void)klen, (void)value, (void)vlen, (void)reason;
  atomic_fetch_add((_Atomic long *)ud, 1);
}

START_TEST(concurrent_stress) {
  static _Atomic long evicted;
  atomic_store(&evicted, 0);
  be_cache_options o = BE_CACHE_OPTIONS_INIT;
  o.shard_count = 4;
  o.max_entries = 120;
  o.max_bytes = 120 * be_cache_charge(9, 40);
  o.negative_ttl_ms = 1;
  o.on_evict = count_evict;
  o.evict_user_data = (void *)&evicted;
  be_cache *c = NULL;
  ck_assert_int_eq(be_cache_new(&c, &o, NULL), BE_OK);
  ck_assert_int_eq(be_cache_register_prefix(c, "user:", 5, NULL), BE_OK);
  load_ctx l = {0};
  atomic_store(&l.release, 1);
  stress_arg a[4];
  pthread_t t[4];
  for (int i = 0; i < 4; i++) {
    a[i] = (stress_arg){c, 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1), &l};
    pthread_create(&t[i], NULL, stress_thread, &a[i]);
  }
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  be_cache_stats st = stats_of(c);
  assert_stats_add_up(c);
  ck_assert_uint_le(st.entries, 120);
  ck_assert_uint_eq(st.loads, (uint64_t)atomic_load(&l.calls));
  ck_assert_int_eq(atomic_load(&evicted),
                   (long)(st.evictions_size + st.evictions_count + st.expirations +
                          st.invalidations + st.replacements));
  be_cache_free(c);
}
END_TEST

/* Single flight under contention, many rounds: exactly one load per round. */
static void *hammer_same_key(void *p) {
  caller *a = p;
  for (int i = 0; i < 200; i++) {
    be_cache_entry *h = NULL;
    int rc = be_cache_get_or_load(&h, NULL, a->c, a->key, strlen(a->key), loader, a->l, NULL);
    ck_assert_int_eq(rc, BE_OK);
    be_cache_entry_release(h);
    if (i % 10 == 0) be_cache_delete(a->c, a->key, strlen(a->key), NULL);
  }
  return NULL;
}

START_TEST(single_flight_under_contention) {
  be_cache *c = new_cache(NULL, 2, 0, 0, 0);
  load_ctx l = {0};
  atomic_store(&l.release, 1);
  caller a[4];
  pthread_t t[4];
  for (int i = 0; i < 4; i++) {
    a[i] = (caller){.c = c, .l = &l, .key = "hot"};
    pthread_create(&t[i], NULL, hammer_same_key, &a[i]);
  }
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  be_cache_stats st = stats_of(c);
  ck_assert_uint_eq(st.loads, (uint64_t)atomic_load(&l.calls));
  /* each load is followed by hits or shares until the next delete */
  ck_assert_uint_le(st.loads, 4 * 20 + 4);
  ck_assert_uint_eq(st.hits + st.misses, 800);
  be_cache_free(c);
}
END_TEST

/* user_data arrives last, after the arguments that describe the entry. */
static int ud_sentinel;
static int ud_evicts;
static void ud_evict(const void *key, size_t klen, const void *value, size_t vlen,
                     int32_t reason, void *ud) {
  ck_assert_ptr_eq(ud, &ud_sentinel);
  ck_assert_uint_eq(klen, 1);
  ck_assert_int_eq(memcmp(key, "k", 1), 0);
  ck_assert_uint_eq(vlen, 2);
  ck_assert_int_eq(memcmp(value, "v1", 2), 0);
  ck_assert_int_eq(reason, BE_CACHE_EVICT_REPLACED);
  ud_evicts++;
}
static int ud_loader(const void *key, size_t klen, be_cache_load *out, void *ud, be_error **err) {
  ck_assert_ptr_eq(ud, &ud_sentinel);
  ck_assert_uint_eq(klen, 1);
  ck_assert_int_eq(memcmp(key, "L", 1), 0);
  return be_cache_load_set_value(out, "lv", 2, BE_CACHE_TTL_DEFAULT, err);
}

START_TEST(callbacks_get_user_data_last) {
  be_cache_options o = BE_CACHE_OPTIONS_INIT;
  o.on_evict = ud_evict;
  o.evict_user_data = &ud_sentinel;
  be_cache *c = NULL;
  ck_assert_int_eq(be_cache_new(&c, &o, NULL), BE_OK);
  ud_evicts = 0;
  ck_assert_int_eq(be_cache_set(c, "k", 1, "v1", 2, BE_CACHE_TTL_DEFAULT, NULL), BE_OK);
  ck_assert_int_eq(be_cache_set(c, "k", 1, "v2", 2, BE_CACHE_TTL_DEFAULT, NULL), BE_OK);
  ck_assert_int_eq(ud_evicts, 1);
  be_cache_entry *e = NULL;
  int32_t status = 0;
  ck_assert_int_eq(be_cache_get_or_load(&e, &status, c, "L", 1, ud_loader, &ud_sentinel, NULL),
                   BE_OK);
  ck_assert_int_eq(status, BE_CACHE_LOADED);
  be_cache_entry_release(e);
  be_cache_free(c);
}
END_TEST

/* ---- global bounds: max_entries and max_bytes hold for the whole cache ---- */

static be_cache *bounded(uint32_t shards, int64_t max_entries, int64_t max_bytes, int32_t mode) {
  be_cache_options o = BE_CACHE_OPTIONS_INIT;
  o.shard_count = shards;
  o.max_entries = max_entries;
  o.max_bytes = max_bytes;
  o.lru_mode = mode;
  o.seed = 7;
  be_cache *c = NULL;
  ck_assert_int_eq(be_cache_new(&c, &o, NULL), BE_OK);
  return c;
}

/* Set keys first..first+n-1 (same key and value lengths: one charge). */
static void set_range(be_cache *c, int64_t first, int64_t n) {
  char k[16], v[24];
  memset(v, 'v', sizeof v);
  for (int64_t i = first; i < first + n; i++) {
    snprintf(k, sizeof k, "k%09lld", (long long)i);
    QEQ(be_cache_set(c, k, 10, v, sizeof v, BE_CACHE_TTL_FOREVER, NULL), BE_OK);
  }
}

/* The issue's case: 100,000 keys set into a cache of 100,000 entries (16
 * shards) left 99,390 and evicted 610; now all stay. */
START_TEST(max_entries_is_global_issue_case) {
  be_cache *c = bounded(0, 100000, 0, BE_CACHE_LRU_DEFAULT);
  set_range(c, 0, 100000);
  be_cache_stats st = stats_of(c);
  ck_assert_uint_eq(st.shard_count, 16);
  ck_assert_uint_eq(st.entries, 100000);
  ck_assert_uint_eq(st.evictions_count, 0);
  set_range(c, 100000, 610);
  st = stats_of(c);
  ck_assert_uint_eq(st.entries, 100000);
  ck_assert_uint_eq(st.evictions_count, 610);
  ck_assert_uint_eq(st.evictions_size, 0);
  be_cache_free(c);
}
END_TEST

/* N keys fit in a cache of N entries with no eviction, whatever the shard
 * count and recency mode; N + k evict exactly k; the same with max_bytes
 * of N charges, and with both bounds at once. */
START_TEST(bounds_hold_exactly_n_entries) {
  const int64_t ns[] = {1, 2, 7, 100, 1000, 20000};
  const uint32_t shard_counts[] = {1, 2, 16, 64, 1024};
  const int32_t modes[] = {BE_CACHE_LRU_APPROX, BE_CACHE_LRU_EXACT};
  const int64_t charge = be_cache_charge(10, 24);
  for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
    for (size_t b = 0; b < sizeof shard_counts / sizeof shard_counts[0]; b++)
      for (size_t m = 0; m < 2; m++)
        for (int bound = 0; bound < 3; bound++) { /* entries, bytes, both */
          int64_t n = ns[a], k = 1 + n / 3;
          be_cache *c = bounded(shard_counts[b], bound != 1 ? n : 0,
                                bound != 0 ? n * charge + (bound == 2 ? charge - 1 : 0) : 0,
                                modes[m]);
          set_range(c, 0, n);
          be_cache_stats st = stats_of(c);
          QTRUE(st.entries == n && st.evictions_count + st.evictions_size == 0,
                "n %lld shards %u mode %d bound %d: %llu entries, %llu evicted", (long long)n,
                shard_counts[b], modes[m], bound, (unsigned long long)st.entries,
                (unsigned long long)(st.evictions_count + st.evictions_size));
          set_range(c, n, k);
          st = stats_of(c);
          QTRUE(st.entries == n, "n %lld: %llu entries after %lld more", (long long)n,
                (unsigned long long)st.entries, (long long)k);
          QEQ(st.evictions_count + st.evictions_size, (uint64_t)k);
          QEQ(bound == 1 ? st.evictions_size : st.evictions_count, (uint64_t)k);
          QEQ(st.bytes, (uint64_t)(n * charge));
          be_cache_free(c);
        }
}
END_TEST

/* Entries of mixed sizes: a set evicts only when its entry would not fit
 * otherwise, and the bytes never pass max_bytes. */
START_TEST(byte_bound_evicts_only_when_needed) {
  rng_state = 99;
  for (uint32_t shards = 1; shards <= 64; shards *= 4) {
    const int64_t max_bytes = 200 * be_cache_charge(8, 60);
    be_cache *c = bounded(shards, 0, max_bytes, BE_CACHE_LRU_DEFAULT);
    char k[16], v[400];
    memset(v, 'x', sizeof v);
    for (int i = 0; i < 5000; i++) {
      snprintf(k, sizeof k, "m%07d", i);
      size_t vlen = (size_t)rnd_below(sizeof v);
      be_cache_stats before = stats_of(c);
      QEQ(be_cache_set(c, k, 8, v, vlen, BE_CACHE_TTL_FOREVER, NULL), BE_OK);
      be_cache_stats after = stats_of(c);
      QTRUE(after.bytes <= max_bytes, "bytes %llu over the bound",
            (unsigned long long)after.bytes);
      if (after.evictions_size > before.evictions_size)
        QTRUE(before.bytes + be_cache_charge(8, vlen) > max_bytes,
              "set %d evicted though %llu + %lld fit", i, (unsigned long long)before.bytes,
              (long long)be_cache_charge(8, vlen));
    }
    /* an entry larger than the whole bound is refused, not stored */
    be_error *e = NULL;
    size_t big = (size_t)max_bytes;
    char *hv = calloc(1, big);
    ck_assert_ptr_nonnull(hv);
    ck_assert_int_eq(be_cache_set(c, "huge", 4, hv, big, 0, &e), BE_E_VALIDATION);
    ck_assert_str_eq(be_error_field_name(e, 0), "value");
    be_error_free(e);
    free(hv);
    be_cache_free(c);
  }
}
END_TEST

typedef struct bound_worker {
  be_cache *c;
  int id;
  int n;
} bound_worker;

static void *bound_writer(void *arg) {
  bound_worker *w = arg;
  char k[32], v[40];
  memset(v, 'w', sizeof v);
  for (int i = 0; i < w->n; i++) {
    int kl = snprintf(k, sizeof k, "t%d-%d", w->id, i);
    if (be_cache_set(w->c, k, (size_t)kl, v, (size_t)(i % 40), BE_CACHE_TTL_FOREVER, NULL) != BE_OK)
      return (void *)1;
    size_t n = 0;
    char buf[64];
    (void)be_cache_get_copy(buf, sizeof buf, &n, w->c, k, (size_t)kl, NULL);
  }
  return NULL;
}

/* Writers racing on every shard: once they stop the cache holds exactly
 * max_entries (distinct keys, nothing deleted), never more; with a byte
 * bound too, never more bytes than it. */
START_TEST(bounds_hold_under_concurrent_writers) {
  const uint32_t shard_counts[] = {1, 4, 64};
  for (size_t si = 0; si < 3; si++)
    for (int with_bytes = 0; with_bytes < 2; with_bytes++)
      for (int32_t mode = BE_CACHE_LRU_EXACT; mode <= BE_CACHE_LRU_APPROX; mode++) {
        const int64_t max_bytes = with_bytes ? 300 * be_cache_charge(8, 20) : 0;
        be_cache *c = bounded(shard_counts[si], 500, max_bytes, mode);
        pthread_t th[4];
        bound_worker w[4];
        for (int i = 0; i < 4; i++) {
          w[i] = (bound_worker){c, i, 3000};
          ck_assert_int_eq(pthread_create(&th[i], NULL, bound_writer, &w[i]), 0);
        }
        for (int i = 0; i < 4; i++) {
          void *r = NULL;
          pthread_join(th[i], &r);
          ck_assert_ptr_null(r);
        }
        be_cache_stats st = stats_of(c);
        if (!with_bytes) ck_assert_uint_eq(st.entries, 500);
        ck_assert_uint_le(st.entries, 500);
        if (with_bytes) ck_assert_uint_le(st.bytes, (uint64_t)max_bytes);
        ck_assert_uint_eq(st.inserts, st.entries + st.evictions_count + st.evictions_size);
        be_cache_free(c);
      }
}
END_TEST

Suite *cache_suite(void) {
  Suite *s = suite_create("cache");
  TCase *tc = tcase_create("cache");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, options_and_misuse);
  tcase_add_test(tc, callbacks_get_user_data_last);
  tcase_add_test(tc, set_get_delete_and_handles);
  tcase_add_test(tc, ttl_expires_at_exactly_ttl);
  tcase_add_test(tc, ttl_jitter_only_shortens);
  tcase_add_test(tc, sweep_removes_dead_without_lookups);
  tcase_add_test(tc, byte_bound_with_large_values);
  tcase_add_test(tc, memory_accounting_is_exact);
  tcase_add_test(tc, conditional_fill_yields_to_any_later_write);
  tcase_add_test(tc, many_fills_in_flight_yield_only_to_their_own_keys);
  tcase_add_test(tc, get_or_load_runs_its_own_load_beside_a_fill);
  tcase_add_test(tc, sweep_after_writes_with_prefixes_only);
  tcase_add_test(tc, sweep_floors_bound_every_entry);
  tcase_add_test(tc, sweep_floors_skip_only_what_cannot_be_dead);
  tcase_add_test(tc, short_key_hash_uses_every_byte);
  tcase_add_test(tc, keys_of_every_length_round_trip);
  tcase_add_loop_test(tc, evicted_blocks_are_reused_safely, 0, 2);
  tcase_add_test(tc, count_bound_splits_over_shards);
  tcase_add_test(tc, prefix_invalidation_registered_and_not);
  tcase_add_test(tc, prefix_invalidation_under_concurrent_sets);
  tcase_add_test(tc, model_random_sequences);
  tcase_add_test(tc, model_random_sequences_approx);
  tcase_add_test(tc, approx_lru_keeps_its_promises);
  tcase_add_test(tc, model_lru_order_exact);
  tcase_add_test(tc, single_flight_8_threads_one_load);
  tcase_add_test(tc, joining_a_load_without_memory_fails_cleanly);
  tcase_add_test(tc, loader_error_shared_and_not_cached);
  tcase_add_test(tc, loader_misbehaviour);
  tcase_add_test(tc, negative_caching_has_its_own_ttl);
  tcase_add_test(tc, invalidation_during_load_is_not_lost);
  tcase_add_test(tc, caller_after_delete_does_not_join_stale_load);
  tcase_add_test(tc, stats_add_up_after_random_workload);
  tcase_add_test(tc, eviction_callback_may_call_the_cache);
  tcase_add_test(tc, allocation_failures_do_not_leak);
  tcase_add_test(tc, concurrent_stress);
  tcase_add_test(tc, spinlock_excludes_and_waiters_progress);
  tcase_add_test(tc, lock_free_hits_under_concurrent_writes);
  tcase_add_test(tc, lock_free_hits_with_reader_fences);
  tcase_add_test(tc, hits_counted_once_with_more_threads_than_stripes);
  tcase_add_test(tc, ebr_reader_holds_back_later_retirements);
  tcase_add_test(tc, ebr_scan_uses_the_readers_barrier_scheme);
  tcase_add_test(tc, thread_exit_gives_its_reader_slot_back_for_good);
  tcase_add_test(tc, reader_slots_reused_lowest_index_first);
  tcase_add_test(tc, freed_tables_stop_reclamation_passes);
  tcase_add_test(tc, tables_stay_sparse_while_small);
  tcase_add_test(tc, removals_skip_the_grace_period_while_alone);
  tcase_add_test(tc, readers_coming_and_going_never_reach_a_freed_entry);
  tcase_add_test(tc, one_reclamation_pass_per_batch);
  tcase_add_test(tc, held_reader_table_is_retried_at_a_rate);
  tcase_add_test(tc, clear_reclaims_in_one_pass_not_one_per_shard);
  tcase_add_test(tc, held_back_entries_freed_after_the_reader_leaves);
  tcase_add_test(tc, kept_blocks_stay_within_count_and_bytes);
  tcase_add_loop_test(tc, kept_blocks_of_an_unused_size_go, 0, 2);
  tcase_add_test(tc, invalidate_during_prefix_registration);
  tcase_add_test(tc, single_flight_under_contention);
  tcase_add_test(tc, max_entries_is_global_issue_case);
  tcase_add_test(tc, bounds_hold_exactly_n_entries);
  tcase_add_test(tc, byte_bound_evicts_only_when_needed);
  tcase_add_test(tc, bounds_hold_under_concurrent_writers);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(cache_suite)
