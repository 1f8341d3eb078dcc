/* SPDX-License-Identifier: MIT */
/* Pool overhead: acquire+release pairs per second, uncontended and from two
 * threads on max 1 and max 2, with hand-offs between threads. Connections
 * are SQLite :memory: ones, opened once, so this measures the pool itself.
 * Prints one JSON line per case. Usage: bench_pool [seconds per case] */
#include <backend/backend.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct run {
  be_pool *pool;
  double seconds;
  _Atomic int go;
  _Atomic int stop;
  uint64_t pairs[8];
  uint64_t failures[8];
  double cpu[8]; /* thread CPU seconds: robust on a loaded, shared machine */
} run;

typedef struct targ {
  run *r;
  int index;
} targ;

static double now_s(void) { return (double)be_clock_now_ns(NULL) / 1e9; }

static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *worker(void *arg) {
  targ *t = arg;
  run *r = t->r;
  while (!atomic_load_explicit(&r->go, memory_order_acquire)) {
  }
  uint64_t n = 0, fails = 0;
  double c0 = cpu_s();
  while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
    for (int i = 0; i < 256; i++) {
      be_conn *c;
      if (be_pool_acquire(&c, r->pool, NULL) != BE_OK) {
        fails++;
        continue;
      }
      be_pool_release(r->pool, c);
      n++;
    }
  }
  r->cpu[t->index] = cpu_s() - c0;
  r->pairs[t->index] = n;
  r->failures[t->index] = fails;
  return NULL;
}

static int bench(const char *name, int threads, int32_t max_conns, double seconds) {
  be_pool_options o = BE_POOL_OPTIONS_INIT;
  o.driver = be_sqlite_driver();
  o.dsn = ":memory:";
  o.min_conns = max_conns < 2 ? max_conns : 2;
  o.max_conns = max_conns;
  o.usage_alert_percent = 0; /* keep the log quiet at 100 % usage */
  be_pool *pool = NULL;
  be_error *err = NULL;
  if (be_pool_new(&pool, &o, &err) != BE_OK) {
    fprintf(stderr, "be_pool_new: %s\n", be_error_message(err));
    be_error_free(err);
    return 1;
  }
  run r = {.pool = pool, .seconds = seconds};
  pthread_t t[8];
  targ a[8];
  for (int i = 0; i < threads; i++) {
    a[i].r = &r;
    a[i].index = i;
    pthread_create(&t[i], NULL, worker, &a[i]);
  }
  double t0 = now_s();
  atomic_store_explicit(&r.go, 1, memory_order_release);
  struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
  nanosleep(&ts, NULL);
  atomic_store(&r.stop, 1);
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  double el = now_s() - t0;
  uint64_t pairs = 0, fails = 0;
  double cpu = 0;
  for (int i = 0; i < threads; i++) {
    cpu += r.cpu[i];
    pairs += r.pairs[i];
    fails += r.failures[i];
  }
  uint64_t lo = pairs, hi = 0;
  for (int i = 0; i < threads; i++) {
    if (r.pairs[i] < lo) lo = r.pairs[i];
    if (r.pairs[i] > hi) hi = r.pairs[i];
  }
  be_pool_stats s = BE_POOL_STATS_INIT;
  be_pool_stats_get(&s, pool, NULL);
  printf("{\"bench\":\"%s\",\"threads\":%d,\"max_conns\":%d,\"seconds\":%.3f,\"pairs\":%llu,"
         "\"pairs_per_sec\":%.0f,\"cpu_seconds\":%.3f,\"pairs_per_cpu_sec\":%.0f,\"failures\":%llu,\"waits\":%llu,\"handoffs\":%llu,"
         "\"handoffs_per_sec\":%.0f,\"validations\":%llu,\"wait_p50_ns\":%lld,"
         "\"wait_p99_ns\":%lld,\"wait_max_ns\":%lld,\"thread_pairs_min\":%llu,"
         "\"thread_pairs_max\":%llu}\n",
         name, threads, (int)max_conns, el, (unsigned long long)pairs, (double)pairs / el,
         cpu, cpu > 0 ? (double)pairs / cpu : 0.0, (unsigned long long)fails, (unsigned long long)s.waits, (unsigned long long)s.handoffs,
         (double)s.handoffs / el, (unsigned long long)s.validations, (long long)s.wait_p50_ns,
         (long long)s.wait_p99_ns, (long long)s.wait_max_ns, (unsigned long long)lo,
         (unsigned long long)hi);
  fflush(stdout);
  be_pool_free(pool);
  return 0;
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 1.0;
  if (seconds <= 0) seconds = 1.0;
  int rc = 0;
  rc |= bench("pool_acquire_release_uncontended", 1, 10, seconds);
  rc |= bench("pool_acquire_release_2threads", 2, 1, seconds);
  rc |= bench("pool_acquire_release_2threads", 2, 2, seconds);
  return rc;
}
