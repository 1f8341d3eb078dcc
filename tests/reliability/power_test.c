/* SPDX-License-Identifier: MIT */
/* Power-loss test: the workload (workload.h) runs through the library on
 * a database opened through the crashvfs shim (crashvfs.h), and the power
 * is cut at every write, truncate, sync or delete it makes in turn: every
 * operation not yet synced is lost, torn, or kept at random (one variant
 * per cut point, rotating). Then the database is reopened normally and
 * checked (integrity, invariants, audit chain) and what it holds is
 * compared with what was acknowledged, for each journal mode and
 * synchronous setting below, against what the README promises:
 *
 *   - always: an intact database, every transaction all or nothing, commits
 *     in order, and every commit acknowledged before the last completed
 *     sync is there;
 *   - where `no_loss` is set: every acknowledged commit is there.
 *
 *   power_test [--tx N] [--seed X] [--seeds K] [--all-variants]
 *              [--seconds S] [--only MODE/SYNC] [--cut N] [--explore]
 *
 * --tx: workload length (default 24); --seeds: sweeps with seeds X..X+K-1;
 * --all-variants: all three variants at every cut point; --seconds: time
 * bound (default 75; an unfinished sweep is reported); --only: one
 * setting; --cut: one cut point (CRASHVFS_TRACE=1 lists the operations);
 * --explore: also run the settings the README promises nothing for, and
 * report what happens without failing. Environment: BE_POWER_TX,
 * BE_POWER_SECONDS, BE_RELIABILITY_SEED. */
#include "crashvfs.h"
#include "workload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct config {
  const char *name;
  int32_t journal, synchronous;
  int no_loss;  /* promised: no acknowledged commit is lost */
  int promised; /* 0: run with --explore only, never fails */
} config;

static const config configs[] = {
  {"WAL/NORMAL", BE_SQLITE_JOURNAL_WAL, BE_SQLITE_SYNC_NORMAL, 0, 1},
  {"WAL/FULL", BE_SQLITE_JOURNAL_WAL, BE_SQLITE_SYNC_FULL, 1, 1},
  {"DELETE/FULL", BE_SQLITE_JOURNAL_DELETE, BE_SQLITE_SYNC_FULL, 0, 1},
  {"DELETE/EXTRA", BE_SQLITE_JOURNAL_DELETE, BE_SQLITE_SYNC_EXTRA, 1, 1},
  {"DELETE/NORMAL", BE_SQLITE_JOURNAL_DELETE, BE_SQLITE_SYNC_NORMAL, 0, 0},
  /* no sync at all: shows what the checks catch */
  {"WAL/OFF", BE_SQLITE_JOURNAL_WAL, BE_SQLITE_SYNC_OFF, 0, 0},
  {"DELETE/OFF", BE_SQLITE_JOURNAL_DELETE, BE_SQLITE_SYNC_OFF, 0, 0},
};
#define NCONFIGS (sizeof configs / sizeof configs[0])

typedef struct opts {
  int tx, seeds, all_variants, explore;
  int64_t cut; /* only this cut point (0: all) */
  double seconds;
  uint64_t seed;
  const char *only;
} opts;

/* One configuration's sweep. */
typedef struct sweep {
  const config *cfg;
  be_driver *driver;       /* the workload's */
  be_driver *check_driver; /* the checker's: same journal mode, synchronous=OFF */
  char path[4096], dsn[4200];
  unsigned char *tmpl; /* the database file after setup */
  size_t tmpl_len;
  int64_t ops; /* operations of a whole workload */
  long rounds, failures, lossy_rounds, max_lost;
} sweep;

/* Acknowledged operations, and how many were acknowledged at the last
 * sync that made something durable. */
typedef struct acks {
  rw_state now;
  int64_t at_last_sync;
} acks;

static void note_sync(void *ud) {
  acks *a = ud;
  a->at_last_sync = a->now.updates + a->now.batches;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- files ---- */

static int file_read(unsigned char **out, size_t *len, const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return -1;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  *out = malloc(size > 0 ? (size_t)size : 1);
  *len = *out && size >= 0 ? fread(*out, 1, (size_t)size, f) : 0;
  fclose(f);
  return *out && (long)*len == size ? 0 : -1;
}

static int file_write(const char *path, const unsigned char *b, size_t len) {
  FILE *f = fopen(path, "wb");
  if (f == NULL) return -1;
  size_t w = fwrite(b, 1, len, f);
  return fclose(f) == 0 && w == len ? 0 : -1;
}

/* Remove path's journal, WAL and shared memory; with `all`, the file too. */
static void remove_side_files(const char *path, int all) {
  const char *sfx[] = {"-wal", "-journal", "-shm", ""};
  char p[4200];
  for (int i = 0; i < (all ? 4 : 3); i++) {
    snprintf(p, sizeof p, "%s%s", path, sfx[i]);
    unlink(p);
  }
}

/* ---- one configuration ---- */

/* The driver, and a template database after setup (tables and users). */
static int sweep_init(sweep *s, const config *c, const char *dir, char *why, size_t n) {
  memset(s, 0, sizeof *s);
  s->cfg = c;
  be_sqlite_options so = BE_SQLITE_OPTIONS_INIT;
  so.journal_mode = c->journal;
  so.synchronous = c->synchronous;
  be_sqlite_options check = so;
  check.synchronous = BE_SQLITE_SYNC_OFF;
  be_error *e = NULL;
  if (be_sqlite_driver_new(&s->driver, &so, &e) != BE_OK ||
      be_sqlite_driver_new(&s->check_driver, &check, &e) != BE_OK) {
    rw_fail(why, n, "be_sqlite_driver_new: %s", be_error_message(e));
    be_error_free(e);
    return -1;
  }
  int len = snprintf(s->path, sizeof s->path, "%s/%.*s-%s.db", dir, (int)strcspn(c->name, "/"),
                     c->name, strchr(c->name, '/') + 1);
  if (len < 0 || (size_t)len >= sizeof s->path - 8)
    return rw_fail(why, n, "path too long: %s", dir);
  snprintf(s->dsn, sizeof s->dsn, "file:%s?vfs=" CRASHVFS_NAME, s->path);
  be_app *app = NULL;
  int r = rw_app_open(&app, s->path, s->driver, why, n);
  if (r == 0) r = rw_setup(app, why, n);
  be_app_free(app);
  if (r != 0) return -1;
  char side[sizeof s->path + 8];
  snprintf(side, sizeof side, "%s-wal", s->path);
  if (access(side, F_OK) == 0) return rw_fail(why, n, "setup left %s behind", side);
  if (file_read(&s->tmpl, &s->tmpl_len, s->path) != 0)
    return rw_fail(why, n, "reading %s: %s", s->path, strerror(errno));
  return 0;
}

static void sweep_free(sweep *s) {
  remove_side_files(s->path, 1);
  be_sqlite_driver_free(s->driver);
  be_sqlite_driver_free(s->check_driver);
  free(s->tmpl);
}

/* Run the workload until it ends or the power is cut. 0, or -1 when
 * something failed that the cut does not explain. */
static int run_workload(be_app **app, const sweep *s, const opts *o, acks *a, char *why, size_t n) {
  if (rw_app_open(app, s->dsn, s->driver, why, n) != 0) return crashvfs_is_cut() ? 0 : -1;
  for (int i = 1; i <= o->tx; i++) {
    be_error *e = NULL;
    int rc = rw_step(*app, &a->now, &e);
    if (rc == BE_OK && s->cfg->journal == BE_SQLITE_JOURNAL_WAL && i % 8 == 0)
      rc = rw_checkpoint(*app, i % 16 ? "PASSIVE" : "TRUNCATE", &e);
    if (rc != BE_OK) {
      int cut = crashvfs_is_cut();
      if (!cut)
        rw_fail(why, n, "operation %d failed with the power on: %s", i, be_error_message(e));
      be_error_free(e);
      return cut ? 0 : -1;
    }
  }
  return 0;
}

/* What the database holds against what was acknowledged. 0 or -1. */
static int judge(sweep *s, const acks *a, const rw_state *found, char *why, size_t n) {
  int64_t acked = a->now.updates + a->now.batches, have = found->updates + found->batches;
  if (have > acked + 1)
    return rw_fail(why, n, "%lld operations found, only %lld acknowledged + 1 in flight",
                   (long long)have, (long long)acked);
  if (have < a->at_last_sync)
    return rw_fail(why, n, "%lld operations found, %lld were acknowledged before the last sync",
                   (long long)have, (long long)a->at_last_sync);
  if (have >= acked) return 0;
  s->lossy_rounds++;
  if (acked - have > s->max_lost) s->max_lost = acked - have;
  if (s->cfg->no_loss)
    return rw_fail(why, n, "%lld of %lld acknowledged operations lost",
                   (long long)(acked - have), (long long)acked);
  return 0;
}

/* One run cut at operation `cut` (0: after the whole workload, which
 * counts the operations). 0 when every promise held, else -1 with why. */
static int run_round(sweep *s, const opts *o, int64_t cut, int variant, uint64_t seed, char *why,
                     size_t n) {
  remove_side_files(s->path, 0);
  if (file_write(s->path, s->tmpl, s->tmpl_len) != 0)
    return rw_fail(why, n, "writing %s: %s", s->path, strerror(errno));
  acks a;
  memset(&a, 0, sizeof a);
  crashvfs_on_durable(note_sync, &a);
  crashvfs_reset(cut, variant, seed);
  be_app *app = NULL;
  int r = run_workload(&app, s, o, &a, why, n);
  crashvfs_cut_now();
  be_app_free(app);
  crashvfs_on_durable(NULL, NULL);
  char cut_why[512];
  int pc = crashvfs_power_cut(cut_why, sizeof cut_why);
  if (r != 0) return -1;
  if (pc != 0) return rw_fail(why, n, "%s", cut_why);
  if (cut == 0) s->ops = crashvfs_ops();
  else if (crashvfs_ops() < cut)
    return rw_fail(why, n, "cut point never reached: the workload made %lld operations",
                   (long long)crashvfs_ops());
  s->rounds++;
  rw_state found;
  if (rw_check(&found, s->path, s->check_driver, why, n) != 0) return -1;
  return judge(s, &a, &found, why, n);
}

/* ---- the sweep ---- */

static const char *const variant_names[] = {"drop", "torn", "random"};

static uint64_t round_seed(uint64_t seed, int64_t cut, int variant) {
  return seed * 0x100000001b3ULL ^ (uint64_t)cut * 0x9e3779b97f4a7c15ULL ^ (uint64_t)variant;
}

/* Cut at every operation of the workload, for each seed. 0 when every
 * round kept the promises (or the configuration is not promised). */
static int sweep_run(sweep *s, const opts *o, double deadline) {
  char why[1024];
  if (run_round(s, o, 0, CRASHVFS_DROP, o->seed, why, sizeof why) != 0) {
    fprintf(stderr, "power_test: %s: FAIL with the power cut after the whole workload: %s\n",
            s->cfg->name, why);
    s->failures++;
    if (s->ops == 0) return -1; /* the workload itself failed: nothing to sweep */
  }
  int timed_out = 0;
  for (int k = 0; k < o->seeds && !timed_out; k++) {
    uint64_t seed = o->seed + (uint64_t)k;
    int64_t first = o->cut ? o->cut : 1, last = o->cut ? o->cut : s->ops;
    for (int64_t cut = first; cut <= last && !timed_out; cut++) {
      for (int v = 0; v < CRASHVFS_VARIANTS; v++) {
        if (!o->all_variants && v != (int)((cut + k) % CRASHVFS_VARIANTS)) continue;
        if (now_s() > deadline) {
          timed_out = 1;
          break;
        }
        if (run_round(s, o, cut, v, round_seed(seed, cut, v), why, sizeof why) == 0) continue;
        if (++s->failures <= 5)
          fprintf(stderr, "power_test: %s: FAIL at cut %lld/%lld (%s, seed %llu): %s\n",
                  s->cfg->name, (long long)cut, (long long)s->ops, variant_names[v],
                  (unsigned long long)seed, why);
      }
    }
  }
  if (timed_out) printf("power_test: %s: time bound reached, sweep incomplete\n", s->cfg->name);
  return s->failures ? -1 : 0;
}

static void report(const sweep *s, double secs) {
  printf("power_test: %-13s %3lld operations, %5ld rounds in %5.1f s: ", s->cfg->name,
         (long long)s->ops, s->rounds, secs);
  if (s->failures) printf("%ld FAILED", s->failures);
  else if (s->lossy_rounds)
    printf("intact; acknowledged commits after the last sync lost in %ld rounds (at most %ld)",
           s->lossy_rounds, s->max_lost);
  else printf("intact; no acknowledged commit lost");
  printf("%s\n", s->cfg->promised ? "" : " [explored, not promised]");
  fflush(stdout);
}

static int parse_opts(opts *o, int argc, char **argv) {
  const char *env;
  o->tx = (env = getenv("BE_POWER_TX")) ? atoi(env) : 24;
  o->seconds = (env = getenv("BE_POWER_SECONDS")) ? atof(env) : 75;
  o->seed = (env = getenv("BE_RELIABILITY_SEED")) ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
  o->seeds = 1;
  o->all_variants = o->explore = 0;
  o->only = NULL;
  o->cut = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--all-variants") == 0) {
      o->all_variants = 1;
      continue;
    }
    if (strcmp(argv[i], "--explore") == 0) {
      o->explore = 1;
      continue;
    }
    if (i + 1 >= argc) return fprintf(stderr, "%s needs a value\n", argv[i]), -1;
    if (strcmp(argv[i], "--tx") == 0) o->tx = atoi(argv[++i]);
    else if (strcmp(argv[i], "--seed") == 0) o->seed = strtoull(argv[++i], NULL, 0);
    else if (strcmp(argv[i], "--seeds") == 0) o->seeds = atoi(argv[++i]);
    else if (strcmp(argv[i], "--seconds") == 0) o->seconds = atof(argv[++i]);
    else if (strcmp(argv[i], "--only") == 0) o->only = argv[++i];
    else if (strcmp(argv[i], "--cut") == 0) o->cut = atoll(argv[++i]);
    else return fprintf(stderr, "unknown option %s\n", argv[i]), -1;
  }
  return o->tx > 0 && o->seeds > 0 ? 0 : (fprintf(stderr, "--tx and --seeds must be > 0\n"), -1);
}

static int wanted(const config *c, const opts *o) {
  if (o->only) return strcmp(o->only, c->name) == 0;
  return c->promised || o->explore;
}

int main(int argc, char **argv) {
  opts o;
  if (parse_opts(&o, argc, argv) != 0) return 2;
  if (crashvfs_register() != 0) return fprintf(stderr, "power_test: cannot register the VFS\n"), 1;
  const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  char dir[4096], why[1024];
  snprintf(dir, sizeof dir, "%s/be-power-XXXXXX", tmp);
  if (mkdtemp(dir) == NULL) return perror("mkdtemp"), 1;
  printf("power_test: seed=%llu (repeat with --seed %llu), %d operations per workload, %s\n",
         (unsigned long long)o.seed, (unsigned long long)o.seed, o.tx,
         o.all_variants ? "all variants" : "one variant per cut point");
  fflush(stdout);
  double start = now_s();
  int failed = 0;
  long rounds = 0;
  for (size_t i = 0; i < NCONFIGS; i++) {
    if (!wanted(&configs[i], &o)) continue;
    sweep s;
    double t0 = now_s();
    if (sweep_init(&s, &configs[i], dir, why, sizeof why) != 0) {
      fprintf(stderr, "power_test: %s: setup: %s\n", configs[i].name, why);
      return 1;
    }
    if (sweep_run(&s, &o, start + o.seconds) != 0 && configs[i].promised) failed = 1;
    report(&s, now_s() - t0);
    rounds += s.rounds;
    sweep_free(&s);
  }
  rmdir(dir);
  printf("power_test: %ld rounds in %.1f s: %s\n", rounds, now_s() - start,
         failed ? "FAILED" : "every promise held");
  return failed;
}
