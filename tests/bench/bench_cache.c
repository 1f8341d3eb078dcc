/* SPDX-License-Identifier: MIT */
/* be_cache benchmark. Prints one JSON object per line.
 *
 *   100,000 keys "user:{i}" with 64-byte values (TTL 300 s, system clock):
 *   set all, then 1,000,000 uniformly random gets with 1 and 2 threads;
 *   the same on the first 1,000 keys (hot set); get-or-load of one hot key
 *   from 2 threads; bytes of overhead per entry counted through
 *   be_set_allocator() hooks; and a baseline: a plain single-threaded,
 *   unlocked open-addressing hash + LRU list doing the same gets (same key
 *   formatting, same hash, same coarse-clock TTL check, same 64-byte copy).
 *
 * The cache runs with its default recency mode (CLOCK, a hit only marks
 * the entry) and, as "cache_exact_*", with BE_CACHE_LRU_EXACT.
 *
 * The machine is shared and noisy, so every round runs every workload once
 * (interleaved), and each line reports medians over the rounds: wall-clock
 * throughput, CPU time per get (CLOCK_THREAD_CPUTIME_ID summed over the
 * workers), cpu_share (CPU time / (wall * threads): below 1 means the
 * threads did not get their cores, or slept on a lock: see ctx_switches,
 * the workers' voluntary switches) and cpu_mops (throughput if every
 * thread had a core of its own). Ratios are medians of per-round ratios.
 *
 * Usage: bench_cache [gets_per_run [rounds [filter]]]
 *        (defaults 1000000, 5, all; filter = substring of workload names) */
#include <backend/backend.h>

#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NKEYS 100000
#define HOT 1000
#define VLEN 64
#define MAX_ROUNDS 31

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

/* The same hash as lib/cache_internal.h, so the comparison is about structure. */
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
  if (b->head) b->head->prev = e;
  else b->tail = e;
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
        if (e->next) e->next->prev = e->prev;
        else b->tail = e->prev;
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

enum { MODE_COPY,
       MODE_HANDLE,
       MODE_BASELINE,
       MODE_LOAD };

typedef struct work {
  be_cache *c;
  baseline *b;
  int mode;
  uint64_t range;
  uint64_t seed;
  long ops;
  long hits;
  int64_t cpu_ns;
  long nvcsw;
  pthread_barrier_t *bar;
} work;

static int hot_loader(const void *key, size_t klen, be_cache_load *out, void *ud, be_error **err) {
  (void)key, (void)klen, (void)err;
  atomic_fetch_add((_Atomic long *)ud, 1);
  unsigned char v[VLEN];
  memset(v, 'h', sizeof v);
  return be_cache_load_set_value(out, v, sizeof v, BE_CACHE_TTL_DEFAULT, NULL);
}
static _Atomic long hot_loads;

static int64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long thread_nvcsw(void) {
  struct rusage ru;
  return getrusage(RUSAGE_THREAD, &ru) == 0 ? ru.ru_nvcsw : 0;
}

static void *run_work(void *p) {
  work *w = p;
  char k[32];
  unsigned char buf[VLEN];
  uint64_t s = w->seed;
  long hits = 0;
  if (w->bar) pthread_barrier_wait(w->bar);
  int64_t c0 = thread_cpu_ns();
  long v0 = thread_nvcsw();
  for (long i = 0; i < w->ops; i++) {
    size_t kl = w->mode == MODE_LOAD ? make_key(k, 4242424242u) : make_key(k, xorshift(&s) % w->range);
    switch (w->mode) {
      case MODE_COPY: {
        size_t n;
        hits += be_cache_get_copy(buf, sizeof buf, &n, w->c, k, kl, NULL) == BE_OK;
        break;
      }
      case MODE_HANDLE: {
        be_cache_entry *h;
        if (be_cache_get(&h, w->c, k, kl, NULL) == BE_OK) {
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
  w->cpu_ns = thread_cpu_ns() - c0;
  w->nvcsw = thread_nvcsw() - v0;
  w->hits = hits;
  return NULL;
}

/* One workload: what it runs and its per-round samples. */
typedef struct bench {
  const char *name;
  int threads;
  int mode;
  int exact; /* uses the BE_CACHE_LRU_EXACT cache */
  uint64_t range;
  int on;
  int n;
  double mops[MAX_ROUNDS], cpu_ns[MAX_ROUNDS], share[MAX_ROUNDS], csw[MAX_ROUNDS];
  long hits;
} bench;

static void run_once(bench *bn, be_cache *c, baseline *b, int round) {
  int threads = bn->threads;
  work w[8];
  pthread_t t[8];
  pthread_barrier_t bar;
  pthread_barrier_init(&bar, NULL, (unsigned)threads + 1);
  for (int i = 0; i < threads; i++) {
    w[i] = (work){c, b, bn->mode, bn->range,
                  0x9e3779b97f4a7c15ull * (uint64_t)(i + 1 + 10 * round), gets_per_run, 0, 0, 0,
                  &bar};
    pthread_create(&t[i], NULL, run_work, &w[i]);
  }
  pthread_barrier_wait(&bar);
  int64_t t0 = now_ns();
  long hits = 0, csw = 0;
  int64_t cpu = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(t[i], NULL);
    hits += w[i].hits;
    cpu += w[i].cpu_ns;
    csw += w[i].nvcsw;
  }
  int64_t dt = now_ns() - t0;
  pthread_barrier_destroy(&bar);
  double ops = (double)gets_per_run * threads;
  bn->mops[bn->n] = ops / ((double)dt / 1e3);
  bn->cpu_ns[bn->n] = (double)cpu / ops;
  bn->share[bn->n] = (double)cpu / ((double)dt * threads);
  bn->csw[bn->n] = (double)csw;
  bn->n++;
  bn->hits = hits;
}

static int dcmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(const double *v, int n) {
  double tmp[MAX_ROUNDS];
  if (n <= 0) return 0;
  memcpy(tmp, v, (size_t)n * sizeof *v);
  qsort(tmp, (size_t)n, sizeof *tmp, dcmp);
  return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

static void emit(const bench *bn) {
  if (!bn->on) return;
  double mops = median(bn->mops, bn->n), cpu = median(bn->cpu_ns, bn->n);
  double lo = bn->mops[0], hi = bn->mops[0];
  for (int i = 1; i < bn->n; i++) {
    if (bn->mops[i] < lo) lo = bn->mops[i];
    if (bn->mops[i] > hi) hi = bn->mops[i];
  }
  printf("{\"bench\":\"%s\",\"threads\":%d,\"ops_per_thread\":%ld,\"rounds\":%d,\"mops\":%.2f,"
         "\"mops_min\":%.2f,\"mops_max\":%.2f,\"ns_per_op\":%.1f,\"cpu_ns_per_op\":%.1f,"
         "\"cpu_mops\":%.2f,\"cpu_share\":%.2f,\"ctx_switches\":%.0f,\"hits\":%ld}\n",
         bn->name, bn->threads, gets_per_run, bn->n, mops, lo, hi, 1e3 / mops * bn->threads, cpu,
         1e3 / cpu * bn->threads, median(bn->share, bn->n), median(bn->csw, bn->n), bn->hits);
  fflush(stdout);
}

/* Median over rounds of num[r] / den[r] (wall throughput), or of the CPU
 * form: den's CPU time per get / num's, times num's thread ratio. */
static double ratio(const bench *num, const bench *den, int cpu) {
  double r[MAX_ROUNDS];
  int n = num->n < den->n ? num->n : den->n;
  if (!num->on || !den->on || n == 0) return 0;
  for (int i = 0; i < n; i++)
    r[i] = cpu ? den->cpu_ns[i] / num->cpu_ns[i] * num->threads / den->threads
               : num->mops[i] / den->mops[i];
  return median(r, n);
}

enum {
  B_BASE,
  B_COPY1,
  B_COPY2,
  B_HANDLE1,
  B_HANDLE2,
  B_XCOPY1,
  B_XCOPY2,
  B_BASEH,
  B_HOT1,
  B_HOT2,
  B_XHOT1,
  B_XHOT2,
  B_LOAD1,
  B_LOAD2,
  B_COUNT
};

/* One thread's NKEYS sets of its own keys (the key space of thread i
 * starts at i * NKEYS). */
typedef struct set_work {
  be_cache *c;
  const unsigned char *v;
  uint64_t first;
  pthread_barrier_t *bar;
  int failed;
} set_work;

static void *run_sets(void *p) {
  set_work *w = p;
  char k[32];
  pthread_barrier_wait(w->bar);
  for (uint64_t i = w->first; i < w->first + NKEYS; i++) {
    size_t kl = make_key(k, i);
    if (be_cache_set(w->c, k, kl, w->v, VLEN, BE_CACHE_TTL_DEFAULT, NULL) != BE_OK) w->failed = 1;
  }
  return NULL;
}

/* Sets into a cache bounded at half the keys of one thread (max_entries
 * and max_bytes), from 1 or 2 threads: past the first 50,000 sets every
 * set evicts one entry (50,000 evictions on one thread, 150,000 on two),
 * so this times the global bound's bookkeeping, eviction and the
 * reclamation of what was evicted. ns_per_op: wall time over the sets of
 * one thread (ops_per_thread). */
static int bench_bounded_set(const be_cache_options *base, const unsigned char *v, int threads) {
  be_cache_options o = *base;
  o.max_entries = NKEYS / 2;
  o.max_bytes = (int64_t)(NKEYS / 2) * be_cache_charge(16, VLEN);
  be_cache *c = NULL;
  if (be_cache_new(&c, &o, NULL) != BE_OK) return 1;
  set_work w[2];
  pthread_t t[2];
  pthread_barrier_t bar;
  if (pthread_barrier_init(&bar, NULL, (unsigned)threads + 1) != 0) return 1;
  for (int i = 0; i < threads; i++) {
    w[i] = (set_work){c, v, (uint64_t)i * NKEYS, &bar, 0};
    if (pthread_create(&t[i], NULL, run_sets, &w[i]) != 0) return 1; /* exits: nothing to undo */
  }
  pthread_barrier_wait(&bar);
  int64_t t0 = now_ns();
  int failed = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(t[i], NULL);
    failed |= w[i].failed;
  }
  int64_t ns = now_ns() - t0;
  pthread_barrier_destroy(&bar);
  be_cache_stats st = BE_CACHE_STATS_INIT;
  be_cache_stats_get(&st, c, NULL);
  printf("{\"bench\":\"cache_set_bounded\",\"threads\":%d,\"ops_per_thread\":%d,"
         "\"ns_per_op\":%.1f,\"entries\":%lld,\"evictions\":%lld}\n",
         threads, NKEYS, (double)ns / NKEYS, (long long)st.entries,
         (long long)(st.evictions_count + st.evictions_size));
  be_cache_free(c);
  return failed;
}

static void install_counting_allocator(void) {
  be_allocator a = BE_ALLOCATOR_INIT;
  a.malloc_fn = cnt_malloc;
  a.realloc_fn = cnt_realloc;
  a.free_fn = cnt_free;
  be_set_allocator(&a, NULL);
}

/* Fills c with NKEYS keys; prints the set speed and the memory per entry. */
static int fill_measured(double *overhead, be_cache *c, const unsigned char *v, long long empty) {
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
  be_cache_stats_get(&st, c, NULL);
  printf("{\"bench\":\"cache_set\",\"threads\":1,\"ops\":%d,\"mops\":%.2f,\"ns_per_op\":%.1f}\n",
         NKEYS, NKEYS / ((double)set_ns / 1e3), (double)set_ns / NKEYS);
  printf("{\"bench\":\"cache_memory\",\"entries\":%llu,\"bytes_per_entry\":%.1f,"
         "\"key_plus_value\":%.1f,\"overhead_per_entry\":%.1f,\"charged_overhead\":%llu,"
         "\"memory_bytes_stat\":%llu,\"hook_bytes\":%lld,\"target_overhead_max\":64}\n",
         (unsigned long long)st.entries, per_entry, payload, per_entry - payload,
         (unsigned long long)(be_cache_charge(10, VLEN) - 10 - VLEN),
         (unsigned long long)st.memory_bytes, atomic_load(&live_bytes));
  *overhead = per_entry - payload;
  return 0;
}

static void print_ratios(const bench *all, int rounds, double overhead) {
  printf("{\"bench\":\"ratios\",\"rounds\":%d,"
         "\"get_vs_baseline_1t\":%.2f,\"get_vs_baseline_1t_cpu\":%.2f,"
         "\"get_vs_baseline_1t_target\":0.7,"
         "\"get_2t_vs_1t\":%.2f,\"get_2t_vs_1t_cpu\":%.2f,\"get_2t_vs_1t_target\":1.5,"
         "\"hot_vs_baseline_1t\":%.2f,\"hot_vs_baseline_1t_cpu\":%.2f,\"hot_2t_vs_1t\":%.2f,\"hot_2t_vs_1t_cpu\":%.2f,"
         "\"handle_vs_baseline_1t\":%.2f,\"handle_2t_vs_1t\":%.2f,\"handle_2t_vs_1t_cpu\":%.2f,"
         "\"exact_get_vs_baseline_1t\":%.2f,\"exact_get_2t_vs_1t\":%.2f,"
         "\"exact_get_2t_vs_1t_cpu\":%.2f,\"exact_hot_vs_baseline_1t\":%.2f,"
         "\"exact_hot_vs_baseline_1t_cpu\":%.2f,"
         "\"exact_hot_2t_vs_1t\":%.2f,\"exact_hot_2t_vs_1t_cpu\":%.2f,"
         "\"load_2t_vs_1t\":%.2f,\"load_2t_vs_1t_cpu\":%.2f,"
         "\"overhead_per_entry\":%.1f,\"overhead_target_max\":64}\n",
         rounds, ratio(&all[B_COPY1], &all[B_BASE], 0), ratio(&all[B_COPY1], &all[B_BASE], 1),
         ratio(&all[B_COPY2], &all[B_COPY1], 0),
         ratio(&all[B_COPY2], &all[B_COPY1], 1), ratio(&all[B_HOT1], &all[B_BASEH], 0),
         ratio(&all[B_HOT1], &all[B_BASEH], 1), ratio(&all[B_HOT2], &all[B_HOT1], 0), ratio(&all[B_HOT2], &all[B_HOT1], 1),
         ratio(&all[B_HANDLE1], &all[B_BASE], 0), ratio(&all[B_HANDLE2], &all[B_HANDLE1], 0),
         ratio(&all[B_HANDLE2], &all[B_HANDLE1], 1), ratio(&all[B_XCOPY1], &all[B_BASE], 0),
         ratio(&all[B_XCOPY2], &all[B_XCOPY1], 0), ratio(&all[B_XCOPY2], &all[B_XCOPY1], 1),
         ratio(&all[B_XHOT1], &all[B_BASEH], 0), ratio(&all[B_XHOT1], &all[B_BASEH], 1),
         ratio(&all[B_XHOT2], &all[B_XHOT1], 0),
         ratio(&all[B_XHOT2], &all[B_XHOT1], 1), ratio(&all[B_LOAD2], &all[B_LOAD1], 0),
         ratio(&all[B_LOAD2], &all[B_LOAD1], 1), overhead);
}

/* Fills c with the NKEYS keys, untimed. */
static int fill_keys(be_cache *c, const unsigned char *v) {
  char k[32];
  for (uint64_t i = 0; i < NKEYS; i++) {
    size_t kl = make_key(k, i);
    if (be_cache_set(c, k, kl, v, VLEN, BE_CACHE_TTL_DEFAULT, NULL) != BE_OK) return 1;
  }
  return 0;
}

/* The baseline map with the same NKEYS keys. */
static void fill_baseline(baseline *b, const unsigned char *v) {
  char k[32];
  b_init(b, NKEYS);
  for (uint64_t i = 0; i < NKEYS; i++) {
    size_t kl = make_key(k, i);
    b_set(b, k, kl, v, 300 * BE_NS_PER_SEC);
  }
}

int main(int argc, char **argv) {
  int rounds = 5;
  const char *filter = NULL;
  if (argc > 1) gets_per_run = atol(argv[1]);
  if (gets_per_run <= 0) gets_per_run = 1000000;
  if (argc > 2) rounds = atoi(argv[2]);
  if (rounds < 1) rounds = 1;
  if (rounds > MAX_ROUNDS) rounds = MAX_ROUNDS;
  if (argc > 3) filter = argv[3];

  install_counting_allocator();

  be_cache_options o = BE_CACHE_OPTIONS_INIT;
  o.default_ttl_ms = 300 * 1000;
  o.seed = 42;
  be_cache *c = NULL, *cx = NULL;
  if (be_cache_new(&c, &o, NULL) != BE_OK) return 1;
  if (be_cache_register_prefix(c, "user:", 5, NULL) != BE_OK) return 1;
  long long empty = atomic_load(&live_bytes);

  unsigned char v[VLEN];
  memset(v, 'v', sizeof v);
  double overhead = 0;
  if (fill_measured(&overhead, c, v, empty) != 0) return 1;

  if (bench_bounded_set(&o, v, 1) != 0 || bench_bounded_set(&o, v, 2) != 0) return 1;

  o.lru_mode = BE_CACHE_LRU_EXACT;
  if (be_cache_new(&cx, &o, NULL) != BE_OK) return 1;
  if (be_cache_register_prefix(cx, "user:", 5, NULL) != BE_OK) return 1;
  if (fill_keys(cx, v) != 0) return 1;

  baseline b;
  fill_baseline(&b, v);

  /* every field spelled out: clang -Wmissing-field-initializers */
#define BENCH(name, threads, mode, exact, range) \
  {name, threads, mode, exact, range, 0, 0, {0}, {0}, {0}, {0}, 0}
  bench all[B_COUNT] = {
    [B_BASE] = BENCH("baseline_get_uniform_100k", 1, MODE_BASELINE, 0, NKEYS),
    [B_COPY1] = BENCH("cache_get_copy_uniform_100k", 1, MODE_COPY, 0, NKEYS),
    [B_COPY2] = BENCH("cache_get_copy_uniform_100k", 2, MODE_COPY, 0, NKEYS),
    [B_HANDLE1] = BENCH("cache_get_handle_uniform_100k", 1, MODE_HANDLE, 0, NKEYS),
    [B_HANDLE2] = BENCH("cache_get_handle_uniform_100k", 2, MODE_HANDLE, 0, NKEYS),
    [B_XCOPY1] = BENCH("cache_exact_get_copy_uniform_100k", 1, MODE_COPY, 1, NKEYS),
    [B_XCOPY2] = BENCH("cache_exact_get_copy_uniform_100k", 2, MODE_COPY, 1, NKEYS),
    [B_BASEH] = BENCH("baseline_get_hot_1k", 1, MODE_BASELINE, 0, HOT),
    [B_HOT1] = BENCH("cache_get_copy_hot_1k", 1, MODE_COPY, 0, HOT),
    [B_HOT2] = BENCH("cache_get_copy_hot_1k", 2, MODE_COPY, 0, HOT),
    [B_XHOT1] = BENCH("cache_exact_get_copy_hot_1k", 1, MODE_COPY, 1, HOT),
    [B_XHOT2] = BENCH("cache_exact_get_copy_hot_1k", 2, MODE_COPY, 1, HOT),
    [B_LOAD1] = BENCH("cache_get_or_load_one_hot_key", 1, MODE_LOAD, 0, 1),
    [B_LOAD2] = BENCH("cache_get_or_load_one_hot_key", 2, MODE_LOAD, 0, 1),
  };
#undef BENCH
  for (int i = 0; i < B_COUNT; i++) {
    char full[96];
    snprintf(full, sizeof full, "%s/%dt", all[i].name, all[i].threads);
    all[i].on = filter == NULL || strstr(full, filter) != NULL;
  }
  /* Interleaved: round r runs every workload once, so slow phases of the
   * machine hit all of them alike. */
  for (int r = 0; r < rounds; r++)
    for (int i = 0; i < B_COUNT; i++)
      if (all[i].on) run_once(&all[i], all[i].exact ? cx : c, &b, r);
  for (int i = 0; i < B_COUNT; i++) emit(&all[i]);
  if (all[B_LOAD1].on || all[B_LOAD2].on)
    printf("{\"bench\":\"cache_get_or_load_one_hot_key\",\"loader_calls\":%ld}\n",
           atomic_load(&hot_loads));

  print_ratios(all, rounds, overhead);

  b_free(&b);
  be_cache_free(c);
  be_cache_free(cx);
  be_set_allocator(NULL, NULL);
  return 0;
}
