/* SPDX-License-Identifier: MIT */
/* be_cache benchmark (issue 5). Prints one JSON object per line.
 *
 *   100,000 keys "user:{i}" with 64-byte values (TTL 300 s, system clock):
 *   set all, then 1,000,000 uniformly random gets with 1 and 2 threads;
 *   the same on the first 1,000 keys (hot set); get-or-load of one hot key
 *   from 2 threads; bytes of overhead per entry counted through
 *   be_set_allocator() hooks; and a baseline: a plain single-threaded,
 *   unlocked open-addressing hash + LRU list doing the same gets (same key
 *   formatting, same hash, same coarse-clock TTL check, same 64-byte copy).
 *
 * Usage: bench_cache [gets_per_run]   (default 1000000; best of 3 runs) */
#include <backend/backend.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NKEYS 100000
#define HOT 1000
#define VLEN 64
#define RUNS 3

static long gets_per_run = 1000000;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t coarse_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* "user:" + decimal id, hand-written like a real caller would. */
static inline size_t make_key(char *buf, uint64_t id) {
  memcpy(buf, "user:", 5);
  char tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + id % 10);
    id /= 10;
  } while (id);
  for (size_t i = 0; i < n; i++) buf[5 + i] = tmp[n - 1 - i];
  return 5 + n;
}

static inline uint64_t xorshift(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

/* ---- counting allocator: live requested bytes ---- */

static _Atomic long long live_bytes;
static void *cnt_malloc(size_t n, void *ud) {
  (void)ud;
  size_t *p = malloc(n + 16);
  if (!p) return NULL;
  *p = n;
  atomic_fetch_add_explicit(&live_bytes, (long long)n, memory_order_relaxed);
  return (char *)p + 16;
}
static void cnt_free(void *q, void *ud) {
  (void)ud;
  size_t *p = (size_t *)((char *)q - 16);
  atomic_fetch_sub_explicit(&live_bytes, (long long)*p, memory_order_relaxed);
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

/* ---- the baseline: unlocked open addressing + intrusive LRU ---- */

typedef struct bentry {
  struct bentry *prev, *next;
  int64_t expires;
  uint32_t klen;
  char key[20];
  unsigned char val[VLEN];
} bentry;

typedef struct baseline {
  bentry **slots; /* linear probing, load <= 0.5 */
  size_t mask;
  bentry *head, *tail;
} baseline;

static inline uint64_t mix(uint64_t a, uint64_t b) {
  __uint128_t r = (__uint128_t)a * b;
  return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* The same hash as lib/cache.c, so the comparison is about structure. */
static inline uint64_t bhash(const void *key, size_t n) {
  const unsigned char *p = key;
  uint64_t h = 42 ^ ((uint64_t)n * UINT64_C(0x9e3779b97f4a7c15));
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    h = mix(h ^ w, UINT64_C(0xa0761d6478bd642f));
    p += 8;
    n -= 8;
  }
  uint64_t w = 0;
  if (n) memcpy(&w, p, n);
  h = mix(h ^ w ^ UINT64_C(0xe7037ed1a0b428db), UINT64_C(0x8ebc6af09c88c6e3));
  return mix(h, UINT64_C(0x589965cc75374cc3));
}

static void b_push_head(baseline *b, bentry *e) {
  e->prev = NULL;
  e->next = b->head;
  if (b->head) b->head->prev = e; else b->tail = e;
  b->head = e;
}

static void b_init(baseline *b, size_t n) {
  size_t cap = 1;
  while (cap < 2 * n) cap <<= 1;
  b->slots = calloc(cap, sizeof *b->slots);
  b->mask = cap - 1;
  b->head = b->tail = NULL;
}

static void b_set(baseline *b, const char *k, size_t kl, const unsigned char *v, int64_t ttl) {
  size_t i = bhash(k, kl) & b->mask;
  while (b->slots[i]) i = (i + 1) & b->mask; /* keys are distinct in this bench */
  bentry *e = malloc(sizeof *e);
  e->klen = (uint32_t)kl;
  memcpy(e->key, k, kl);
  memcpy(e->val, v, VLEN);
  e->expires = coarse_ns() + ttl;
  b->slots[i] = e;
  b_push_head(b, e);
}

static int b_get(baseline *b, const char *k, size_t kl, unsigned char *out) {
  size_t i = bhash(k, kl) & b->mask;
  for (bentry *e; (e = b->slots[i]) != NULL; i = (i + 1) & b->mask) {
    if (e->klen == kl && memcmp(e->key, k, kl) == 0) {
      if (coarse_ns() >= e->expires) return 0;
      if (b->head != e) {
        e->prev->next = e->next;
        if (e->next) e->next->prev = e->prev; else b->tail = e->prev;
        b_push_head(b, e);
      }
      memcpy(out, e->val, VLEN);
      return 1;
    }
  }
  return 0;
}

static void b_free(baseline *b) {
  for (bentry *e = b->head; e;) {
    bentry *n = e->next;
    free(e);
    e = n;
  }
  free(b->slots);
}

/* ---- workloads ---- */

enum { MODE_COPY, MODE_HANDLE, MODE_BASELINE, MODE_LOAD };

typedef struct work {
  be_cache *c;
  baseline *b;
  int mode;
  uint64_t range;
  uint64_t seed;
  long ops;
  long hits;
  pthread_barrier_t *bar;
} work;

static int hot_loader(void *ud, const void *key, size_t klen, be_cache_load *out, be_error **err) {
  (void)key, (void)klen, (void)err;
  atomic_fetch_add((_Atomic long *)ud, 1);
  unsigned char v[VLEN];
  memset(v, 'h', sizeof v);
  return be_cache_load_set_value(out, v, sizeof v, BE_CACHE_TTL_DEFAULT);
}
static _Atomic long hot_loads;

static void *run_work(void *p) {
  work *w = p;
  char k[32];
  unsigned char buf[VLEN];
  uint64_t s = w->seed;
  long hits = 0;
  if (w->bar) pthread_barrier_wait(w->bar);
  for (long i = 0; i < w->ops; i++) {
    size_t kl = w->mode == MODE_LOAD ? make_key(k, 4242424242u) : make_key(k, xorshift(&s) % w->range);
    switch (w->mode) {
      case MODE_COPY: {
        size_t n;
        hits += be_cache_get_copy(buf, sizeof buf, &n, w->c, k, kl) == BE_OK;
        break;
      }
      case MODE_HANDLE: {
        be_cache_entry *h;
        if (be_cache_get(&h, w->c, k, kl) == BE_OK) {
          const unsigned char *v = be_cache_entry_value(h, NULL);
          hits += v[0] != 0;
          be_cache_entry_release(h);
        }
        break;
      }
      case MODE_LOAD: {
        be_cache_entry *h;
        if (be_cache_get_or_load(&h, NULL, w->c, k, kl, hot_loader, &hot_loads, NULL) == BE_OK) {
          hits++;
          be_cache_entry_release(h);
        }
        break;
      }
      default:
        hits += b_get(w->b, k, kl, buf);
        break;
    }
  }
  w->hits = hits;
  return NULL;
}

/* Best of RUNS; returns total ops per second over all threads. */
static double measure(be_cache *c, baseline *b, int mode, uint64_t range, int threads,
                      long *hits_out) {
  double best = 0;
  for (int r = 0; r < RUNS; r++) {
    work w[8];
    pthread_t t[8];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++) {
      w[i] = (work){c, b, mode, range, 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1 + 10 * r),
                    gets_per_run, 0, &bar};
      pthread_create(&t[i], NULL, run_work, &w[i]);
    }
    pthread_barrier_wait(&bar);
    int64_t t0 = now_ns();
    long hits = 0;
    for (int i = 0; i < threads; i++) {
      pthread_join(t[i], NULL);
      hits += w[i].hits;
    }
    int64_t dt = now_ns() - t0;
    pthread_barrier_destroy(&bar);
    double ops = (double)gets_per_run * threads / ((double)dt / 1e9);
    if (ops > best) best = ops;
    *hits_out = hits;
  }
  return best;
}

static void emit(const char *name, int threads, double ops_per_s, long hits) {
  printf("{\"bench\":\"%s\",\"threads\":%d,\"ops_per_thread\":%ld,\"mops\":%.2f,"
         "\"ns_per_op\":%.1f,\"hits\":%ld}\n",
         name, threads, gets_per_run, ops_per_s / 1e6, 1e9 / ops_per_s * threads, hits);
  fflush(stdout);
}

int main(int argc, char **argv) {
  if (argc > 1) gets_per_run = atol(argv[1]);
  if (gets_per_run <= 0) gets_per_run = 1000000;

  be_allocator a = BE_ALLOCATOR_INIT;
  a.malloc_fn = cnt_malloc;
  a.realloc_fn = cnt_realloc;
  a.free_fn = cnt_free;
  be_set_allocator(&a);

  be_cache_options o = BE_CACHE_OPTIONS_INIT;
  o.default_ttl_ns = 300 * BE_NS_PER_SEC;
  o.seed = 42;
  be_cache *c = NULL;
  if (be_cache_new(&c, &o, NULL) != BE_OK) return 1;
  if (be_cache_register_prefix(c, "user:", 5, NULL) != BE_OK) return 1;
  long long empty = atomic_load(&live_bytes);

  unsigned char v[VLEN];
  memset(v, 'v', sizeof v);
  char k[32];
  size_t key_bytes = 0;
  int64_t t0 = now_ns();
  for (uint64_t i = 0; i < NKEYS; i++) {
    size_t kl = make_key(k, i);
    key_bytes += kl;
    if (be_cache_set(c, k, kl, v, VLEN, BE_CACHE_TTL_DEFAULT, NULL) != BE_OK) return 1;
  }
  int64_t set_ns = now_ns() - t0;
  long long used = atomic_load(&live_bytes) - empty;
  double per_entry = (double)used / NKEYS;
  double payload = (double)key_bytes / NKEYS + VLEN;
  be_cache_stats st = BE_CACHE_STATS_INIT;
  be_cache_stats_get(c, &st);
  printf("{\"bench\":\"cache_set\",\"threads\":1,\"ops\":%d,\"mops\":%.2f,\"ns_per_op\":%.1f}\n",
         NKEYS, NKEYS / ((double)set_ns / 1e3), (double)set_ns / NKEYS);
  printf("{\"bench\":\"cache_memory\",\"entries\":%llu,\"bytes_per_entry\":%.1f,"
         "\"key_plus_value\":%.1f,\"overhead_per_entry\":%.1f,\"charged_overhead\":%llu,"
         "\"memory_bytes_stat\":%llu,\"hook_bytes\":%lld,\"target_overhead_max\":64}\n",
         (unsigned long long)st.entries, per_entry, payload, per_entry - payload,
         (unsigned long long)(be_cache_charge(10, VLEN) - 10 - VLEN),
         (unsigned long long)st.memory_bytes, atomic_load(&live_bytes));

  baseline b;
  b_init(&b, NKEYS);
  for (uint64_t i = 0; i < NKEYS; i++) {
    size_t kl = make_key(k, i);
    b_set(&b, k, kl, v, 300 * BE_NS_PER_SEC);
  }

  long hits;
  double base1 = measure(NULL, &b, MODE_BASELINE, NKEYS, 1, &hits);
  emit("baseline_get_uniform_100k", 1, base1, hits);
  double copy1 = measure(c, NULL, MODE_COPY, NKEYS, 1, &hits);
  emit("cache_get_copy_uniform_100k", 1, copy1, hits);
  double copy2 = measure(c, NULL, MODE_COPY, NKEYS, 2, &hits);
  emit("cache_get_copy_uniform_100k", 2, copy2, hits);
  double handle1 = measure(c, NULL, MODE_HANDLE, NKEYS, 1, &hits);
  emit("cache_get_handle_uniform_100k", 1, handle1, hits);
  double handle2 = measure(c, NULL, MODE_HANDLE, NKEYS, 2, &hits);
  emit("cache_get_handle_uniform_100k", 2, handle2, hits);

  double baseh = measure(NULL, &b, MODE_BASELINE, HOT, 1, &hits);
  emit("baseline_get_hot_1k", 1, baseh, hits);
  double hot1 = measure(c, NULL, MODE_COPY, HOT, 1, &hits);
  emit("cache_get_copy_hot_1k", 1, hot1, hits);
  double hot2 = measure(c, NULL, MODE_COPY, HOT, 2, &hits);
  emit("cache_get_copy_hot_1k", 2, hot2, hits);

  double load1 = measure(c, NULL, MODE_LOAD, 1, 1, &hits);
  emit("cache_get_or_load_one_hot_key", 1, load1, hits);
  double load2 = measure(c, NULL, MODE_LOAD, 1, 2, &hits);
  emit("cache_get_or_load_one_hot_key", 2, load2, hits);
  printf("{\"bench\":\"cache_get_or_load_one_hot_key\",\"loader_calls\":%ld}\n",
         atomic_load(&hot_loads));

  printf("{\"bench\":\"ratios\",\"get_vs_baseline_1t\":%.2f,\"get_vs_baseline_1t_target\":0.7,"
         "\"get_2t_vs_1t\":%.2f,\"get_2t_vs_1t_target\":1.5,"
         "\"hot_vs_baseline_1t\":%.2f,\"hot_2t_vs_1t\":%.2f,"
         "\"handle_vs_baseline_1t\":%.2f,\"handle_2t_vs_1t\":%.2f,"
         "\"overhead_per_entry\":%.1f,\"overhead_target_max\":64}\n",
         copy1 / base1, copy2 / copy1, hot1 / baseh, hot2 / hot1, handle1 / base1,
         handle2 / handle1, per_entry - payload);

  b_free(&b);
  be_cache_free(c);
  be_set_allocator(NULL);
  return 0;
}
