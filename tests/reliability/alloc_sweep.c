/* SPDX-License-Identifier: MIT */
/* Allocation-failure sweep: every main flow of the library (sweep.h) is
 * run with the allocator hook (backend/alloc.h) failing its 1st
 * allocation, then its 2nd, and so on until a run completes with no
 * failure injected. After each run the checks of sweep.h hold: the clean
 * result or a typed error (BE_E_NOMEM or another), no crash, no leak
 * (every block allocated through the hook is freed once the app is),
 * nothing half-written, cache and permission decisions true to the rows,
 * the audit chain intact, the pool idle, and the same call without the
 * failure succeeding. SQLite and libsodium allocate on their own: only
 * libbackend's allocations are failed.
 *
 * A second pass fails every allocation from the nth on (memory gone for
 * good rather than one allocation refused).
 *
 *   alloc_sweep [--seconds S] [--flow NAME] [--dir D] [--verbose]
 *
 * --seconds bounds the run (default 80, environment BE_SWEEP_SECONDS; 0:
 * none): when it is reached the sweep stops and says how far it got.
 * Exit status 0 when every check held. */
#include "sweep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct opts {
  double seconds;
  int flow; /* -1: all */
  const char *dir;
  int verbose;
} opts;

/* What a hook arms: fail the nth allocation (0: none, only count), and
 * with from every one after it too. */
typedef struct alloc_arm {
  int64_t n;
  int from;
  int64_t count; /* out: allocations the call made */
} alloc_arm;

static void arm(void *ud) {
  alloc_arm *a = ud;
  sw_alloc_fail_nth(a->n, a->from);
}

static int disarm(void *ud) {
  alloc_arm *a = ud;
  a->count = sw_alloc_count();
  int failed = sw_alloc_failed();
  sw_alloc_fail_nth(0, 0);
  return failed;
}

typedef struct totals {
  long positions, failures, absorbed, nomem;
  int stopped;
} totals;

/* Fail the 1st, 2nd, ... allocation of flow until a run injects nothing. */
static void sweep_flow(int flow, sw_env *env, const opts *o, double start, totals *t, int from) {
  alloc_arm clean = {0, 0, 0};
  sw_hook h = {arm, disarm, &clean, 1};
  sw_result res;
  sw_crash_report_set(sw_flow_name(flow));
  if (sw_run(&res, env, flow, &h) != 0) {
    t->failures++;
    printf("FAIL %s: clean run\n  %s\n", sw_flow_name(flow), res.why);
    return;
  }
  long swept = 0;
  for (int64_t n = 1;; n++) {
    if (o->seconds > 0 && sw_now() - start > o->seconds) {
      t->stopped = 1;
      break;
    }
    char what[160];
    snprintf(what, sizeof what, "%s: allocation %lld fails%s", sw_flow_name(flow), (long long)n,
             from ? ", and every one after it" : "");
    sw_crash_report_set(what);
    alloc_arm a = {n, from, 0};
    sw_hook fh = {arm, disarm, &a, 0};
    int bad = sw_run(&res, env, flow, &fh) != 0;
    if (!res.injected && !bad) break; /* the call made fewer than n allocations */
    swept++;
    t->nomem += res.rc == BE_E_NOMEM;
    t->absorbed += res.clean_result;
    if (bad && ++t->failures <= 20) printf("FAIL %s (returned %s)\n  %s\n", what, be_code_name(res.rc), res.why);
    else if (!bad && o->verbose) printf("ok   %s -> %s\n", what, be_code_name(res.rc));
  }
  t->positions += swept;
  printf("%-20s %4lld allocations in a clean run, %4ld positions swept%s\n", sw_flow_name(flow),
         (long long)clean.count, swept, from ? " (from the nth on)" : "");
}

static int parse(opts *o, int argc, char **argv) {
  const char *env = getenv("BE_SWEEP_SECONDS");
  o->seconds = env ? atof(env) : 80;
  o->flow = -1;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--verbose") == 0) o->verbose = 1;
    else if (i + 1 >= argc) return fprintf(stderr, "%s needs a value\n", argv[i]), -1;
    else if (strcmp(argv[i], "--seconds") == 0) o->seconds = atof(argv[++i]);
    else if (strcmp(argv[i], "--dir") == 0) o->dir = argv[++i];
    else if (strcmp(argv[i], "--flow") == 0) {
      if ((o->flow = sw_flow_find(argv[++i])) < 0) return fprintf(stderr, "unknown flow %s\n", argv[i]), -1;
    } else return fprintf(stderr, "unknown option %s\n", argv[i]), -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  opts o = {0};
  /* before any other libbackend call: every allocation goes through it */
  if (sw_alloc_install() != 0 || parse(&o, argc, argv) != 0) return 2;
  setvbuf(stdout, NULL, _IOLBF, 0);
  sw_crash_report_install();
  sw_env *env = sw_env_new(o.dir);
  if (env == NULL) return 2;
  totals t = {0};
  double start = sw_now();
  for (int from = 0; from <= 1 && !t.stopped; from++)
    for (int flow = 0; flow < SW_FLOWS && !t.stopped; flow++)
      if (o.flow < 0 || o.flow == flow) sweep_flow(flow, env, &o, start, &t, from);
  sw_env_free(env);
  printf("alloc_sweep: %ld allocation positions swept%s: %ld answered BE_E_NOMEM, %ld absorbed (the "
         "clean result), %ld failures; %.1f s\n",
         t.positions, t.stopped ? " (stopped at the time bound: not all)" : "", t.nomem, t.absorbed,
         t.failures, sw_now() - start);
  return t.failures ? 1 : 0;
}
