/* SPDX-License-Identifier: MIT */
/*
 * Recording cost of the per-operation metrics (backend/metrics.h): the
 * same cached be_user_get on two apps in the same run, one with metrics
 * (the default) and one with be_app_options.disable_metrics = 1.
 * Rounds alternate between the two apps so drift (frequency scaling,
 * other processes) hits both alike; each round times `ops` gets on each
 * app back to back. The per-call figure of an app is the median of its
 * rounds, and the overhead is the median over rounds of (on - off) / off,
 * which a burst of load on a shared machine moves least. Target: the
 * metrics cost at most 5 % of a cached get.
 *
 * One JSON line per app, then the comparison:
 * {"bench":"user_get_cached","metrics":true,"ns_per_call":...}
 * {"bench":"metrics_overhead","percent":...,"target_percent":5}
 *
 * Usage: bench_metrics [rounds (101)] [ops per round (20000)]
 */
#include <backend/backend.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void die(const char *what, int rc, be_error *e) {
  fprintf(stderr, "%s failed: %d %s\n", what, rc, be_error_message(e));
  exit(1);
}

static be_app *make_app(int disable_metrics, int64_t *out_id) {
  be_app_options o = BE_APP_OPTIONS_INIT;
  o.database = ":memory:";
  o.insecure_test_hashing = 1;
  o.pwhash_opslimit = crypto_pwhash_argon2id_OPSLIMIT_MIN;
  o.pwhash_memlimit = crypto_pwhash_argon2id_MEMLIMIT_MIN;
  o.disable_metrics = disable_metrics;
  be_app *app = NULL;
  be_error *e = NULL;
  int rc = be_app_new(&app, &o, &e);
  if (rc != BE_OK) die("be_app_new", rc, e);
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = "bench@example.com";
  in.name = "Bench User";
  rc = be_user_create(NULL, out_id, app, 0, &in, &e);
  if (rc != BE_OK) die("be_user_create", rc, e);
  return app;
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ns per cached get over ops calls. */
static double round_ns(be_app *app, int64_t id, long ops) {
  int64_t t0 = now_ns();
  for (long i = 0; i < ops; i++) {
    be_user *u = NULL;
    int rc = be_user_get(&u, app, id, NULL);
    if (rc != BE_OK) die("be_user_get", rc, NULL);
    be_user_free(u);
  }
  return (double)(now_ns() - t0) / (double)ops;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 101;
  long ops = argc > 2 ? atol(argv[2]) : 20000;
  if (rounds < 1 || rounds > 1000 || ops < 1) {
    fprintf(stderr, "usage: bench_metrics [rounds 1..1000] [ops per round]\n");
    return 2;
  }
  int64_t id_on = 0, id_off = 0;
  be_app *on = make_app(0, &id_on), *off = make_app(1, &id_off);
  round_ns(on, id_on, ops / 10 + 1); /* warm both caches and code paths */
  round_ns(off, id_off, ops / 10 + 1);
  double *t_on = calloc((size_t)rounds, sizeof *t_on), *t_off = calloc((size_t)rounds, sizeof *t_off);
  for (int r = 0; r < rounds; r++) {
    if (r % 2 == 0) {
      t_on[r] = round_ns(on, id_on, ops);
      t_off[r] = round_ns(off, id_off, ops);
    } else {
      t_off[r] = round_ns(off, id_off, ops);
      t_on[r] = round_ns(on, id_on, ops);
    }
  }
  double *ratio = calloc((size_t)rounds, sizeof *ratio);
  for (int r = 0; r < rounds; r++) ratio[r] = (t_on[r] - t_off[r]) * 100.0 / t_off[r];
  qsort(ratio, (size_t)rounds, sizeof *ratio, cmp_double);
  qsort(t_on, (size_t)rounds, sizeof *t_on, cmp_double);
  qsort(t_off, (size_t)rounds, sizeof *t_off, cmp_double);
  double m_on = t_on[rounds / 2], m_off = t_off[rounds / 2];
  be_op_stats s = BE_OP_STATS_INIT;
  be_app_op_stats_get(&s, on, BE_OP_USER_GET, NULL);
  printf("{\"bench\":\"user_get_cached\",\"metrics\":true,\"ns_per_call\":%.1f,\"recorded\":%lld,"
         "\"p50_ns\":%lld,\"p99_ns\":%lld}\n",
         m_on, (long long)s.calls, (long long)s.p50_ns, (long long)s.p99_ns);
  printf("{\"bench\":\"user_get_cached\",\"metrics\":false,\"ns_per_call\":%.1f}\n", m_off);
  printf("{\"bench\":\"metrics_overhead\",\"rounds\":%d,\"ops_per_round\":%ld,\"percent\":%.2f,"
         "\"target_percent\":5}\n",
         rounds, ops, ratio[rounds / 2]);
  free(ratio);
  free(t_on);
  free(t_off);
  be_app_free(on);
  be_app_free(off);
  return 0;
}
