/* SPDX-License-Identifier: MIT */
/* backend-cli: `profile OP [-n N] [-c THREADS]` — run one library
 * operation N times on THREADS threads against the database and print
 * its latency: p50 / p95 / p99 (be_histogram, within 1.6 %) and a
 * histogram of power-of-two buckets drawn as text bars. */
#include "cli.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define N_BUCKETS 48 /* bucket b holds latencies in [2^b, 2^(b+1)) ns */

/* Shared by the threads of one run. */
typedef struct prof {
  be_app *app;
  int64_t user_id; /* the fixture user */
  int64_t n;
  atomic_llong next, done, errors;
  atomic_llong last_end_ns; /* when the last call finished */
  be_histogram *hist;
  atomic_llong buckets[N_BUCKETS];
  int (*op)(struct prof *p, int64_t i, be_error **err);
  pthread_mutex_t first_lock;
  be_error *first_error;
} prof;

static const char fixture_email[] = "profile-fixture@example.invalid";
static const char fixture_password[] = "profile fixture passphrase, not secret";

static int op_user_get(prof *p, int64_t i, be_error **err) {
  (void)i;
  be_user *u = NULL;
  int rc = be_user_get(&u, p->app, p->user_id, err);
  be_user_free(u);
  return rc;
}

static int op_user_get_uncached(prof *p, int64_t i, be_error **err) {
  char key[40];
  int n = snprintf(key, sizeof key, "user:%lld", (long long)p->user_id);
  be_cache_delete(be_app_cache(p->app), key, (size_t)n, NULL);
  return op_user_get(p, i, err);
}

static int op_user_create(prof *p, int64_t i, be_error **err) {
  char email[96];
  snprintf(email, sizeof email, "profile-%lld-%lld-%lld@example.invalid", (long long)time(NULL), (long long)getpid(),
           (long long)i);
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = email;
  in.name = "Profile Run";
  return be_user_create(NULL, NULL, p->app, 0, &in, err);
}

static int op_auth_login(prof *p, int64_t i, be_error **err) {
  (void)i;
  char *token = NULL;
  int rc = be_auth_login(&token, NULL, p->app, fixture_email, BE_NUL_TERMINATED, fixture_password,
                         BE_NUL_TERMINATED, err);
  if (rc == BE_OK) be_auth_logout(p->app, token, BE_NUL_TERMINATED, NULL);
  be_auth_token_free(token);
  return rc;
}

static int op_permission_check(prof *p, int64_t i, be_error **err) {
  (void)i;
  return be_perm_check(p->app, p->user_id, "profile:read", BE_NUL_TERMINATED, err);
}

static int op_cache_get(prof *p, int64_t i, be_error **err) {
  (void)i;
  char buf[128];
  size_t len = 0;
  return be_cache_get_copy(buf, sizeof buf, &len, be_app_cache(p->app), "profile:key", 11, err);
}

static const struct {
  const char *name;
  int (*op)(prof *p, int64_t i, be_error **err);
  int64_t default_n;
} ops[] = {
  {"user.get", op_user_get, 10000},
  {"user.get.uncached", op_user_get_uncached, 2000},
  {"user.create", op_user_create, 500},
  {"auth.login", op_auth_login, 20},
  {"permission.check", op_permission_check, 10000},
  {"cache.get", op_cache_get, 100000},
};
#define N_OPS (sizeof ops / sizeof ops[0])

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int bucket_of(int64_t ns);

static void *worker(void *arg) {
  prof *p = arg;
  for (int64_t i; (i = atomic_fetch_add(&p->next, 1)) < p->n;) {
    be_error *err = NULL;
    int64_t t0 = mono_ns();
    int rc = p->op(p, i, &err);
    int64_t dt = mono_ns() - t0;
    be_histogram_record(p->hist, dt);
    atomic_fetch_add(&p->buckets[bucket_of(dt)], 1);
    if (rc != BE_OK) {
      atomic_fetch_add(&p->errors, 1);
      pthread_mutex_lock(&p->first_lock);
      if (p->first_error == NULL) p->first_error = err, err = NULL;
      pthread_mutex_unlock(&p->first_lock);
    }
    be_error_free(err);
    atomic_fetch_add(&p->done, 1);
  }
  long long end = mono_ns(), seen = atomic_load(&p->last_end_ns);
  while (end > seen && !atomic_compare_exchange_weak(&p->last_end_ns, &seen, end)) {
  }
  return NULL;
}

/* The fixture: a user with a password, a role granting profile:read, a cached value. */
static int fixture(prof *p, int need_password, be_error **err) {
  be_user *u = NULL;
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = fixture_email;
  in.name = "Profile Fixture";
  int rc = be_user_get_by_email(&u, p->app, fixture_email, BE_NUL_TERMINATED, NULL);
  if (rc == BE_OK) p->user_id = be_user_id(u);
  else rc = be_user_create(NULL, &p->user_id, p->app, 0, &in, err);
  be_user_free(u);
  if (rc == BE_OK && need_password)
    rc = be_auth_set_password(p->app, 0, p->user_id, fixture_password, BE_NUL_TERMINATED, err);
  int r2 = be_perm_role_create(NULL, p->app, 0, "profile-reader", BE_NUL_TERMINATED, NULL);
  (void)r2; /* BE_E_CONFLICT on a second run */
  if (rc == BE_OK)
    rc = be_perm_role_grant(p->app, 0, "profile-reader", BE_NUL_TERMINATED, "profile:read", BE_NUL_TERMINATED, err);
  if (rc == BE_OK) rc = be_perm_user_assign(p->app, 0, p->user_id, "profile-reader", BE_NUL_TERMINATED, err);
  static const char value[64] = "a 64-byte cached value for the cache.get profile";
  if (rc == BE_OK)
    rc = be_cache_set(be_app_cache(p->app), "profile:key", 11, value, sizeof value, 3600 * 1000, err);
  return rc;
}

/* Start the threads, draw progress until they finish. */
static int64_t run_threads(prof *p, int threads, const char *label) {
  pthread_t tid[64];
  cli_progress bar;
  cli_progress_begin(&bar, label, p->n);
  int64_t t0 = mono_ns();
  int started = 0;
  for (; started < threads; started++)
    if (pthread_create(&tid[started], NULL, worker, p) != 0) break;
  if (started == 0) worker(p);
  while (atomic_load(&p->done) < p->n) {
    cli_progress_update(&bar, atomic_load(&p->done));
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  for (int i = 0; i < started; i++) pthread_join(tid[i], NULL);
  cli_progress_end(&bar);
  return atomic_load(&p->last_end_ns) - t0;
}

/* A duration in ns as "850 ns", "12.5 us" or "3.20 ms". */
static const char *fmt_ns(char *buf, size_t cap, double ns) {
  if (ns < 1000) snprintf(buf, cap, "%.0f ns", ns);
  else if (ns < 1e6) snprintf(buf, cap, "%.1f us", ns / 1e3);
  else snprintf(buf, cap, "%.2f ms", ns / 1e6);
  return buf;
}

static int bucket_of(int64_t ns) {
  int b = 0;
  while (b < N_BUCKETS - 1 && (ns >> (b + 1)) > 0) b++;
  return b;
}

static void print_bar(const char *op, int64_t bound_ns, long long c, long long most) {
  char le[24], bar[41];
  int w = (int)(c * 40 / most);
  if (c > 0 && w == 0) w = 1;
  memset(bar, '#', (size_t)w);
  bar[w] = '\0';
  printf("  %-2s %10s %9lld %s\n", op, fmt_ns(le, sizeof le, (double)bound_ns), c, bar);
}

/* Buckets from the fastest call to the 99.9th percentile, then the
 * slower outliers on one line. */
static void print_bars(const prof *p) {
  int lo = N_BUCKETS, hi = bucket_of(be_histogram_quantile(p->hist, 0.999));
  long long most = 1, outliers = 0;
  for (int b = 0; b < N_BUCKETS; b++) {
    long long c = atomic_load(&p->buckets[b]);
    if (c > 0 && b < lo) lo = b;
    if (b > hi) outliers += c;
    else if (c > most) most = c;
  }
  printf("latency histogram (bucket upper bound, calls):\n");
  for (int b = lo; b <= hi; b++) print_bar("<", (int64_t)1 << (b + 1), atomic_load(&p->buckets[b]), most);
  if (outliers > 0) print_bar(">=", (int64_t)1 << (hi + 1), outliers, most);
}

static void print_report(cli_ctx *ctx, const prof *p, const char *name, int threads, int64_t elapsed_ns) {
  double secs = (double)elapsed_ns / 1e9;
  int64_t q50 = be_histogram_quantile(p->hist, 0.50), q95 = be_histogram_quantile(p->hist, 0.95),
          q99 = be_histogram_quantile(p->hist, 0.99), mx = be_histogram_max(p->hist);
  long long errors = atomic_load(&p->errors);
  if (!ctx->json) {
    printf("%s: %lld calls on %d threads in %.2f s (%.0f calls/s), %lld errors\n", name, (long long)p->n, threads,
           secs, (double)p->n / secs, errors);
    char a[24], b[24], c[24], d[24], e[24];
    printf("p50 %s   p95 %s   p99 %s   max %s   mean %s\n", fmt_ns(a, sizeof a, (double)q50),
           fmt_ns(b, sizeof b, (double)q95), fmt_ns(c, sizeof c, (double)q99), fmt_ns(d, sizeof d, (double)mx),
           fmt_ns(e, sizeof e, be_histogram_mean(p->hist)));
    print_bars(p);
    return;
  }
  printf("{\"op\":");
  cli_json_str(stdout, name);
  printf(",\"calls\":%lld,\"threads\":%d,\"seconds\":%.6f,\"calls_per_second\":%.1f,\"errors\":%lld,"
         "\"p50_ns\":%lld,\"p95_ns\":%lld,\"p99_ns\":%lld,\"max_ns\":%lld,\"mean_ns\":%.1f,\"histogram\":[",
         (long long)p->n, threads, secs, (double)p->n / secs, errors, (long long)q50, (long long)q95,
         (long long)q99, (long long)mx, be_histogram_mean(p->hist));
  int first = 1;
  for (int b = 0; b < N_BUCKETS; b++) {
    long long c = atomic_load(&p->buckets[b]);
    if (c == 0) continue;
    printf("%s{\"lt_ns\":%lld,\"count\":%lld}", first ? "" : ",", (long long)((int64_t)1 << (b + 1)), c);
    first = 0;
  }
  printf("]}\n");
}

static int find_op(cli_ctx *ctx, const char *name, size_t *out) {
  for (size_t i = 0; i < N_OPS; i++)
    if (strcmp(ops[i].name, name) == 0) return *out = i, CLI_EXIT_OK;
  return cli_usage_error(ctx, "unknown operation '%s' (see backend-cli profile --help)", name);
}

/* Run the measured loop on an open app; reports and returns the exit code. */
static int profile_app(cli_ctx *ctx, be_app *app, size_t k, int64_t n, int threads) {
  prof *p = calloc(1, sizeof *p);
  if (p == NULL) return cli_fail_code(ctx, BE_E_NOMEM, "out of memory");
  p->app = app, p->n = n, p->op = ops[k].op;
  pthread_mutex_init(&p->first_lock, NULL);
  be_error *err = NULL;
  int rc = be_histogram_new(&p->hist, &err);
  if (rc == BE_OK) rc = fixture(p, p->op == op_auth_login, &err);
  if (rc == BE_OK) {
    int64_t elapsed = run_threads(p, threads, ops[k].name);
    if (atomic_load(&p->errors) == p->n) {
      rc = cli_fail(ctx, p->first_error); /* every call failed: say why */
      p->first_error = NULL;
    } else {
      print_report(ctx, p, ops[k].name, threads, elapsed);
      rc = CLI_EXIT_OK;
    }
  } else {
    rc = cli_fail(ctx, err);
  }
  be_error_free(p->first_error);
  be_histogram_free(p->hist);
  pthread_mutex_destroy(&p->first_lock);
  free(p);
  return rc;
}

static int cmd_profile(cli_ctx *ctx, int argc, char **argv) {
  const char *pos[1], *n_s = NULL, *c_s = NULL;
  const cli_opt opts[] = {{"-n", "--count", 1, &n_s}, {"-c", "--threads", 1, &c_s}, {NULL, NULL, 0, NULL}};
  size_t k = 0;
  int rc = cli_parse(ctx, argc, argv, opts, pos, 1, 1, NULL);
  if (rc || (rc = find_op(ctx, pos[0], &k)) != 0) return rc;
  int64_t n = ops[k].default_n, threads = 2;
  if (n_s && (rc = cli_parse_int(ctx, "-n", n_s, 1, 100000000, &n)) != 0) return rc;
  if (c_s && (rc = cli_parse_int(ctx, "-c", c_s, 1, 64, &threads)) != 0) return rc;
  be_app *app = NULL;
  if ((rc = cli_open_app(&app, ctx, NULL, CLI_OPEN_CREATE)) != 0) return rc;
  rc = profile_app(ctx, app, k, n, (int)threads);
  cli_close_app(app);
  return rc;
}

const cli_cmd cli_profile_cmds[] = {
  {"profile", "OP [-n|--count N] [-c|--threads THREADS]", "time a library operation: p50/p95/p99 and a histogram",
   "Runs OP N times on THREADS threads (default 2) against the database and prints its\n"
   "latency quantiles and a histogram; progress on stderr when it is a terminal.\n"
   "OP (default N):\n"
   "  user.get (10000)          be_user_get of one user, from the profile cache\n"
   "  user.get.uncached (2000)  be_user_get after dropping its cache entry (one query)\n"
   "  user.create (500)         be_user_create; adds users profile-...@example.invalid\n"
   "  auth.login (20)           be_auth_login + logout: one real argon2id hash each\n"
   "  permission.check (10000)  be_perm_check of a granted permission\n"
   "  cache.get (100000)        be_cache_get_copy of a 64-byte value\n"
   "It creates a fixture user profile-fixture@example.invalid and role profile-reader.\n",
   cmd_profile, NULL},
  {NULL, NULL, NULL, NULL, NULL, NULL},
};
