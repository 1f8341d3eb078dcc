/* SPDX-License-Identifier: MIT */
/* Fault sweep: every main flow of the library (sweep.h) is run once
 * clean, counting its storage calls per operation through the fault
 * driver (backend/fault.h); then, for every one of those calls, once per
 * fault kind: the call fails alone (BE_FAULT_NTH) or it and every later
 * call of its operation fail (BE_FAULT_FROM), with BE_E_STORAGE,
 * BE_E_BUSY, BE_E_CONN_LOST or BE_E_SERIALIZATION. After each run the
 * checks of sweep.h hold: a typed error or the clean result, nothing
 * half-written, cache and permission decisions true to the rows, the
 * audit chain intact, the pool idle, the same call without faults
 * succeeding, no allocation leaked.
 *
 *   fault_sweep [--seconds S] [--flow NAME] [--random N] [--seed X]
 *               [--jobs N] [--dir D] [--verbose]
 *
 * --seconds bounds the run (default 80, environment BE_SWEEP_SECONDS; 0:
 * none): when it is reached the sweep stops and says how far it got.
 * --jobs: processes sharing the runs (default 2: much of a run is spent
 * in the transactions' retry back-off, asleep; 1 runs in this process).
 * --random N adds, per flow and fault code, N runs in which every storage
 * call fails with probability 0.1 (seeded: --seed, BE_RELIABILITY_SEED),
 * so several faults meet in one run. Exit status 0 when every check held. */
#include "sweep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct opts {
  double seconds;
  int flow; /* -1: all */
  long random_rounds;
  uint64_t seed;
  const char *dir;
  int verbose;
  int jobs; /* processes sweeping (each takes every jobs-th run) */
  int job;  /* which one this is */
} opts;

#define MAX_JOBS 16

static const int32_t codes[] = {BE_E_STORAGE, BE_E_BUSY, BE_E_CONN_LOST, BE_E_SERIALIZATION};
#define NCODES 4
/* the operations that can fail (close and finalize are only counted) */
#define NOPS (BE_FAULT_OP_PING + 1)

/* What a hook arms: one rule (or random faults on every operation). */
typedef struct fault_arm {
  be_fault *f;
  int32_t op, mode, code;
  int64_t n;
  uint64_t seed;
  int64_t calls[NOPS]; /* a clean run: the calls of each operation */
} fault_arm;

static void arm(void *ud) {
  fault_arm *a = ud;
  be_fault_reset_counts(a->f);
  if (a->mode == BE_FAULT_RANDOM) be_fault_set_random(a->f, BE_FAULT_OP_ALL, 0.1, a->seed, a->code, NULL);
  else if (a->mode != BE_FAULT_OFF) be_fault_set(a->f, a->op, a->mode, a->n, a->code, NULL);
}

static int disarm(void *ud) {
  fault_arm *a = ud;
  be_fault_clear(a->f, BE_FAULT_OP_ALL);
  int64_t injected = 0;
  for (int op = 0; op < NOPS; op++) {
    a->calls[op] = be_fault_calls(a->f, op);
    injected += be_fault_injected(a->f, op);
  }
  return injected > 0;
}

static const char *mode_name(int32_t mode) {
  return mode == BE_FAULT_NTH ? "NTH" : mode == BE_FAULT_FROM ? "FROM"
                                                              : "RANDOM";
}

typedef struct totals {
  long calls, positions, runs, injected, absorbed, failures;
  int stopped;
} totals;

static void describe(char *buf, size_t n, int flow, const fault_arm *a) {
  if (a->mode == BE_FAULT_RANDOM)
    snprintf(buf, n, "%s: random faults (p 0.1, seed %llu) %s", sw_flow_name(flow),
             (unsigned long long)a->seed, be_code_name(a->code));
  else
    snprintf(buf, n, "%s: %s call %lld, %s %s", sw_flow_name(flow), be_fault_op_name(a->op),
             (long long)a->n, mode_name(a->mode), be_code_name(a->code));
}

/* One run under the rule in *a; counts and reports it. */
static void one(sw_env *env, int flow, fault_arm *a, totals *t, const opts *o) {
  char what[200];
  describe(what, sizeof what, flow, a);
  sw_crash_report_set(what);
  sw_hook h = {arm, disarm, a, 0};
  sw_result res;
  int bad = sw_run(&res, env, flow, &h) != 0;
  t->runs++;
  t->injected += res.injected;
  if (!bad && res.clean_result && res.injected) t->absorbed++;
  if (bad) {
    t->failures++;
    if (t->failures <= 20) printf("FAIL %s (returned %s)\n  %s\n", what, be_code_name(res.rc), res.why);
  } else if (o->verbose) {
    printf("ok   %s -> %s%s\n", what, be_code_name(res.rc), res.injected ? "" : " (nothing injected)");
  }
}

static int out_of_time(const opts *o, double start, totals *t) {
  if (t->stopped) return 1;
  if (o->seconds > 0 && sw_now() - start > o->seconds) t->stopped = 1;
  return t->stopped;
}

/* The clean run of flow: counts its storage calls per operation. */
static int clean_run(sw_env *env, be_fault *f, int flow, int64_t calls[NOPS], totals *t, int print) {
  fault_arm clean = {f, 0, BE_FAULT_OFF, 0, 0, 0, {0}};
  sw_hook h = {arm, disarm, &clean, 1};
  sw_result res;
  sw_crash_report_set(sw_flow_name(flow));
  if (sw_run(&res, env, flow, &h) != 0) {
    t->failures++;
    printf("FAIL %s: clean run\n  %s\n", sw_flow_name(flow), res.why);
    return -1;
  }
  int64_t n = 0;
  for (int op = 0; op < NOPS; op++) n += calls[op] = clean.calls[op];
  t->calls += n;
  if (print) printf("%-20s %3lld storage calls\n", sw_flow_name(flow), (long long)n);
  return 0;
}

/* Whether this process makes run number *idx (and count it). */
static int mine(const opts *o, long *idx) { return (*idx)++ % o->jobs == o->job; }

/* Every storage call of every flow's clean run, failed with one fault
 * kind after the other (so a time bound cuts the last kinds, not the
 * last flows). */
static void sweep(sw_env *env, be_fault *f, const opts *o, double start, totals *t) {
  static int64_t calls[SW_FLOWS][NOPS];
  int ok[SW_FLOWS] = {0};
  for (int flow = 0; flow < SW_FLOWS; flow++)
    if (o->flow < 0 || o->flow == flow) ok[flow] = clean_run(env, f, flow, calls[flow], t, o->job == 0) == 0;
  static const int32_t modes[] = {BE_FAULT_NTH, BE_FAULT_FROM};
  long idx = 0;
  for (int m = 0; m < 2; m++)
    for (int c = 0; c < NCODES; c++)
      for (int flow = 0; flow < SW_FLOWS; flow++)
        for (int op = 0; ok[flow] && op < NOPS; op++)
          for (int64_t n = 1; n <= calls[flow][op]; n++) {
            if (!mine(o, &idx)) continue;
            if (out_of_time(o, start, t)) return;
            fault_arm a = {f, op, modes[m], codes[c], n, 0, {0}};
            one(env, flow, &a, t, o);
            t->positions++;
          }
  for (long r = 0; r < o->random_rounds; r++)
    for (int flow = 0; flow < SW_FLOWS; flow++)
      for (int c = 0; ok[flow] && c < NCODES; c++) {
        if (!mine(o, &idx)) continue;
        if (out_of_time(o, start, t)) return;
        fault_arm a = {f, 0, BE_FAULT_RANDOM, codes[c], 0, o->seed + (uint64_t)r * NCODES + (uint64_t)c, {0}};
        one(env, flow, &a, t, o);
      }
}

static int parse(opts *o, int argc, char **argv) {
  const char *env;
  o->seconds = (env = getenv("BE_SWEEP_SECONDS")) ? atof(env) : 80;
  o->seed = (env = getenv("BE_RELIABILITY_SEED")) ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
  o->flow = -1;
  o->jobs = 2;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--verbose") == 0) {
      o->verbose = 1;
      continue;
    }
    if (i + 1 >= argc) return fprintf(stderr, "%s needs a value\n", argv[i]), -1;
    const char *v = argv[++i];
    if (strcmp(argv[i - 1], "--seconds") == 0) o->seconds = atof(v);
    else if (strcmp(argv[i - 1], "--random") == 0) o->random_rounds = atol(v);
    else if (strcmp(argv[i - 1], "--seed") == 0) o->seed = strtoull(v, NULL, 0);
    else if (strcmp(argv[i - 1], "--dir") == 0) o->dir = v;
    else if (strcmp(argv[i - 1], "--jobs") == 0) o->jobs = atoi(v);
    else if (strcmp(argv[i - 1], "--flow") == 0) {
      if ((o->flow = sw_flow_find(v)) < 0) return fprintf(stderr, "unknown flow %s\n", v), -1;
    } else return fprintf(stderr, "unknown option %s\n", argv[i - 1]), -1;
  }
  if (o->jobs < 1 || o->jobs > MAX_JOBS) return fprintf(stderr, "--jobs: 1..%d\n", MAX_JOBS), -1;
  return 0;
}

/* One sweeping process: its own directory, database and fault driver.
 * 0, or 2 when it could not set up. */
static int worker(const opts *o, double start, totals *t) {
  be_driver *drv = NULL;
  be_fault *f = NULL;
  sw_env *env = sw_env_new(o->dir);
  if (env == NULL || be_fault_driver_new(&drv, &f, sw_env_sqlite(env), NULL) != BE_OK) {
    sw_env_free(env);
    return 2;
  }
  sw_env_use_driver(env, drv);
  sweep(env, f, o, start, t);
  be_fault_free(f);
  sw_env_free(env);
  return 0;
}

/* Add a worker's totals (every worker counts the same storage calls). */
static void add(totals *sum, const totals *t, int first) {
  if (first) sum->calls = t->calls;
  sum->positions += t->positions;
  sum->runs += t->runs;
  sum->injected += t->injected;
  sum->absorbed += t->absorbed;
  sum->failures += t->failures;
  sum->stopped |= t->stopped;
}

/* Fork o->jobs workers; each sends its totals back through a pipe. */
static void run_jobs(const opts *o, double start, totals *sum) {
  int fds[MAX_JOBS];
  pid_t pids[MAX_JOBS];
  fflush(stdout);
  for (int k = 0; k < o->jobs; k++) {
    int p[2];
    if (pipe(p) != 0 || (pids[k] = fork()) < 0) {
      perror("fault_sweep: fork");
      exit(2);
    }
    if (pids[k] == 0) {
      close(p[0]);
      opts mine = *o;
      mine.job = k;
      totals t = {0};
      int rc = worker(&mine, start, &t);
      ssize_t w = write(p[1], &t, sizeof t);
      _exit(w == (ssize_t)sizeof t ? rc : 2);
    }
    close(p[1]);
    fds[k] = p[0];
  }
  for (int k = 0; k < o->jobs; k++) {
    totals t = {0};
    ssize_t r = read(fds[k], &t, sizeof t);
    close(fds[k]);
    int status = 0;
    waitpid(pids[k], &status, 0);
    if (r != (ssize_t)sizeof t || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      printf("FAIL worker %d of %d did not finish (%s %d)\n", k + 1, o->jobs,
             WIFSIGNALED(status) ? "signal" : "exit status",
             WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
      t.failures++;
    }
    add(sum, &t, k == 0);
  }
}

int main(int argc, char **argv) {
  opts o = {0};
  /* before any other libbackend call: leaks are counted through it */
  if (sw_alloc_install() != 0 || parse(&o, argc, argv) != 0) return 2;
  setvbuf(stdout, NULL, _IOLBF, 0);
  sw_crash_report_install();
  if (o.random_rounds > 0) printf("seed %llu (rerun with --seed)\n", (unsigned long long)o.seed);
  totals t = {0};
  double start = sw_now();
  if (o.jobs == 1 && worker(&o, start, &t) != 0) return 2;
  if (o.jobs > 1) run_jobs(&o, start, &t);
  printf("fault_sweep: %ld storage calls x %d fault kinds (NTH, FROM x STORAGE, BUSY, CONN_LOST, "
         "SERIALIZATION): %ld fault positions swept%s; %ld runs in %d processes, %ld with a fault "
         "injected, %ld of them absorbed (the clean result); %ld failures; %.1f s\n",
         t.calls, 2 * NCODES, t.positions, t.stopped ? " (stopped at the time bound: not all)" : "",
         t.runs, o.jobs, t.injected, t.absorbed, t.failures, sw_now() - start);
  return t.failures ? 1 : 0;
}
