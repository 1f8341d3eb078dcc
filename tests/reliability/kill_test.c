/* SPDX-License-Identifier: MIT */
/* Kill test: a writer process runs the workload (workload.h) on a SQLite
 * file through the library (WAL, synchronous=NORMAL: the defaults) and
 * reports every acknowledged commit on a pipe; this parent kills it with
 * SIGKILL after a random 1..50 ms (counted from its start in one round of
 * four, else from when it is ready to write), round after round, and after
 * each kill opens the database itself and checks it: integrity, invariants
 * (no half-applied transaction, commits in order), the audit chain, and
 * that every acknowledged commit is there and nothing seen before went
 * away.
 *
 *   kill_test [--rounds N] [--seconds S] [--seed X] [--dir D] [--journal J]
 *
 * defaults: 150 rounds or 40 s, whichever comes first (environment:
 * BE_KILL_ROUNDS, BE_KILL_SECONDS, BE_RELIABILITY_SEED). The seed fixes
 * the kill delays; it is printed so a failing run can be repeated.
 * --journal wal (default), delete or off: the journal mode (off shows
 * what the checks catch: a killed transaction stays half-applied). */
#include "workload.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct opts {
  long rounds;
  double seconds;
  uint64_t seed;
  const char *dir;
  const char *journal;
} opts;

typedef struct totals {
  long rounds, early_kills, writer_commits;
  rw_state acked; /* highest acknowledged, over all rounds */
  rw_state seen;  /* what the last check found */
} totals;

static uint64_t rng_next(uint64_t *s) { /* splitmix64 */
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the writer (a child process, through exec) ---- */

static void say(int fd, const char *line) {
  size_t len = strlen(line), off = 0;
  while (off < len) {
    ssize_t w = write(fd, line + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) _exit(3);
    off += (size_t)w;
  }
}

/* The driver for journal mode `journal` ("wal": NULL, the default). */
static int make_driver(be_driver **out, const char *journal) {
  *out = NULL;
  if (strcmp(journal, "wal") == 0) return 0;
  be_sqlite_options so = BE_SQLITE_OPTIONS_INIT;
  if (strcmp(journal, "delete") == 0) so.journal_mode = BE_SQLITE_JOURNAL_DELETE;
  else if (strcmp(journal, "off") == 0) so.journal_mode = BE_SQLITE_JOURNAL_OFF;
  else return fprintf(stderr, "--journal: wal, delete or off\n"), -1;
  return be_sqlite_driver_new(out, &so, NULL) == BE_OK ? 0 : -1;
}

static int writer(const char *path, int fd, const be_driver *driver) {
  char why[512], line[600];
  be_app *app = NULL;
  rw_state next;
  if (rw_app_open(&app, path, driver, why, sizeof why) != 0 ||
      rw_setup(app, why, sizeof why) != 0 || rw_read_state(&next, path, why, sizeof why) != 0) {
    snprintf(line, sizeof line, "E %s\n", why);
    say(fd, line);
    return 2;
  }
  say(fd, "R\n");
  for (long k = 1;; k++) {
    be_error *e = NULL;
    int rc = rw_step(app, &next, &e);
    if (rc == BE_OK) {
      /* one write(2) per acknowledged commit, no stdio buffer in between */
      snprintf(line, sizeof line, "A %lld %lld\n", (long long)next.updates,
               (long long)next.batches);
      say(fd, line);
      /* now and then a checkpoint that also truncates the WAL, so kills
       * land in those too (the automatic ones run every 1000 pages) */
      if (k % 64 == 0) rc = rw_checkpoint(app, "TRUNCATE", &e);
    }
    if (rc != BE_OK) {
      snprintf(line, sizeof line, "E %s\n", be_error_message(e));
      say(fd, line);
      return 2;
    }
  }
}

/* ---- the parent ---- */

/* What the writer said in one round. */
typedef struct heard {
  int ready, error;
  long commits;
  rw_state acked;
  char why[512];
  char buf[8192]; /* an incomplete line */
  size_t len;
} heard;

static void hear_line(heard *h, const char *p) {
  long long u, b;
  if (p[0] == 'R') h->ready = 1;
  else if (p[0] == 'E' && !h->error) {
    h->error = 1;
    rw_fail(h->why, sizeof h->why, "writer: %s", p + 2);
  } else if (sscanf(p, "A %lld %lld", &u, &b) == 2) {
    if (u > h->acked.updates) h->acked.updates = u;
    if (b > h->acked.batches) h->acked.batches = b;
    h->commits++;
  }
}

/* Read the pipe line by line until the deadline (none when < 0), EOF,
 * or with `until_ready` the writer's "ready". Returns 0 at EOF, 1 at
 * the deadline or ready. */
static int listen_until(int fd, heard *h, double deadline, int until_ready) {
  for (;;) {
    if (until_ready && h->ready) return 1;
    int wait_ms = -1;
    if (deadline >= 0) {
      double left = deadline - now_s();
      if (left <= 0) return 1;
      wait_ms = (int)(left * 1000) + 1;
    }
    struct pollfd pfd = {fd, POLLIN, 0};
    int pr = poll(&pfd, 1, wait_ms);
    if (pr <= 0) continue; /* timeout (the loop checks the deadline) or EINTR */
    ssize_t r = read(fd, h->buf + h->len, sizeof h->buf - 1 - h->len);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return 0;
    h->len += (size_t)r;
    h->buf[h->len] = '\0';
    char *line = h->buf, *nl;
    while ((nl = strchr(line, '\n')) != NULL) {
      *nl = '\0';
      hear_line(h, line);
      line = nl + 1;
    }
    h->len = strlen(line);
    memmove(h->buf, line, h->len + 1);
  }
}

/* Start the writer, kill it delay_s after it started (or, with
 * from_ready, after it said it is ready), collect what it acknowledged. */
static int run_writer(heard *h, const char *path, const char *journal, double delay_s,
                      int from_ready) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    return rw_fail(h->why, sizeof h->why, "pipe: %s", strerror(errno));
  double start = now_s();
  pid_t pid = fork();
  if (pid == 0) {
    int wfd = dup(fds[1]); /* without O_CLOEXEC: survives the exec */
    char fdtext[16];
    snprintf(fdtext, sizeof fdtext, "%d", wfd);
    execl("/proc/self/exe", "kill_test", "--writer", path, fdtext, journal, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  if (pid < 0) return close(fds[0]), rw_fail(h->why, sizeof h->why, "fork: %s", strerror(errno));
  if (from_ready) {
    listen_until(fds[0], h, start + 10, 1);
    start = now_s();
  }
  listen_until(fds[0], h, start + delay_s, 0);
  kill(pid, SIGKILL);
  listen_until(fds[0], h, -1, 0);
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  if (h->error) return -1;
  if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
    return rw_fail(h->why, sizeof h->why, "writer ended by itself (status 0x%x)", status);
  return 0;
}

/* After a kill: what the database holds against what was acknowledged
 * and what earlier checks saw. */
static int compare(const totals *t, const rw_state *found, char *why, size_t n) {
  const rw_state *a = &t->acked, *s = &t->seen;
  long long fu = found->updates, fb = found->batches;
  if (fu < a->updates || fb < a->batches)
    return rw_fail(why, n,
                   "acknowledged commit lost: acked %lld updates %lld batches, found %lld %lld",
                   (long long)a->updates, (long long)a->batches, fu, fb);
  if (fu < s->updates || fb < s->batches)
    return rw_fail(why, n, "committed data went away: saw %lld updates %lld batches, now %lld %lld",
                   (long long)s->updates, (long long)s->batches, fu, fb);
  int64_t known = a->updates + a->batches;
  if (s->updates + s->batches > known) known = s->updates + s->batches;
  if (fu + fb > known + 1)
    return rw_fail(why, n, "%lld operations found, at most %lld + 1 in flight expected", fu + fb,
                   (long long)known);
  return 0;
}

static int one_round(totals *t, uint64_t *rng, const char *path, const opts *o,
                     const be_driver *driver, char *why, size_t n) {
  heard h;
  memset(&h, 0, sizeof h);
  double delay_s = (double)(1 + rng_next(rng) % 50) / 1000.0;
  /* one round in four counts from the start, so kills also land while
   * the writer opens the database (and recovers it); the others count
   * from "ready", so most land among commits however slow the start */
  int from_ready = rng_next(rng) % 4 != 0;
  if (run_writer(&h, path, o->journal, delay_s, from_ready) != 0)
    return rw_fail(why, n, "%s", h.why);
  if (h.acked.updates > t->acked.updates) t->acked.updates = h.acked.updates;
  if (h.acked.batches > t->acked.batches) t->acked.batches = h.acked.batches;
  t->writer_commits += h.commits;
  if (!h.ready) t->early_kills++;
  rw_state found;
  if (rw_check(&found, path, driver, why, n) != 0) return -1;
  if (compare(t, &found, why, n) != 0) return -1;
  t->seen = found;
  return 0;
}

static int parse_opts(opts *o, int argc, char **argv) {
  const char *env;
  o->rounds = (env = getenv("BE_KILL_ROUNDS")) ? atol(env) : 150;
  o->seconds = (env = getenv("BE_KILL_SECONDS")) ? atof(env) : 40;
  o->seed = (env = getenv("BE_RELIABILITY_SEED")) ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
  o->dir = NULL;
  o->journal = "wal";
  for (int i = 1; i < argc; i++) {
    if (i + 1 >= argc) return fprintf(stderr, "%s needs a value\n", argv[i]), -1;
    if (strcmp(argv[i], "--rounds") == 0) o->rounds = atol(argv[++i]);
    else if (strcmp(argv[i], "--seconds") == 0) o->seconds = atof(argv[++i]);
    else if (strcmp(argv[i], "--seed") == 0) o->seed = strtoull(argv[++i], NULL, 0);
    else if (strcmp(argv[i], "--dir") == 0) o->dir = argv[++i];
    else if (strcmp(argv[i], "--journal") == 0) o->journal = argv[++i];
    else return fprintf(stderr, "unknown option %s\n", argv[i]), -1;
  }
  return 0;
}

/* A fresh directory for the database (kept when a check fails). */
static int make_dir(char *dir, size_t n, const opts *o) {
  const char *tmp = o->dir ? o->dir : getenv("TMPDIR");
  if (tmp == NULL) tmp = "/tmp";
  snprintf(dir, n, "%s/be-kill-XXXXXX", tmp);
  return mkdtemp(dir) ? 0 : -1;
}

static void remove_db(const char *path) {
  char p[4200];
  const char *sfx[] = {"", "-wal", "-shm", "-journal"};
  for (int i = 0; i < 4; i++) snprintf(p, sizeof p, "%s%s", path, sfx[i]), unlink(p);
}

static int writer_main(char **argv) {
  be_driver *driver = NULL;
  if (make_driver(&driver, argv[4]) != 0) return 2;
  return writer(argv[2], atoi(argv[3]), driver); /* killed, never returns normally */
}

/* Rounds until the bound; 0 when every check passed. */
static int run_rounds(totals *t, const opts *o, const char *path, const be_driver *driver) {
  char why[1024];
  be_app *app = NULL;
  if (rw_app_open(&app, path, driver, why, sizeof why) != 0 || rw_setup(app, why, sizeof why) != 0)
    return be_app_free(app), fprintf(stderr, "kill_test: %s\n", why), -1;
  be_app_free(app);
  uint64_t rng = o->seed;
  double start = now_s();
  while (t->rounds < o->rounds && now_s() - start < o->seconds) {
    t->rounds++;
    if (one_round(t, &rng, path, o, driver, why, sizeof why) != 0) {
      fprintf(stderr, "kill_test: FAIL in round %ld (seed %llu): %s\n  database kept: %s\n",
              t->rounds, (unsigned long long)o->seed, why, path);
      return -1;
    }
  }
  printf("kill_test: %ld rounds in %.1f s, %ld acknowledged commits (%ld kills before the writer"
         " was ready); database holds %lld updates, %lld batches; every check passed\n",
         t->rounds, now_s() - start, t->writer_commits, t->early_kills, (long long)t->seen.updates,
         (long long)t->seen.batches);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 5 && strcmp(argv[1], "--writer") == 0) return writer_main(argv);
  opts o;
  be_driver *driver = NULL;
  if (parse_opts(&o, argc, argv) != 0 || make_driver(&driver, o.journal) != 0) return 2;
  char dir[4096], path[4160];
  if (make_dir(dir, sizeof dir, &o) != 0) return perror("mkdtemp"), 1;
  snprintf(path, sizeof path, "%s/kill.db", dir);
  printf("kill_test: seed=%llu (repeat with --seed %llu), journal %s, up to %ld rounds or %.0f s,"
         " db %s\n",
         (unsigned long long)o.seed, (unsigned long long)o.seed, o.journal, o.rounds, o.seconds,
         path);
  fflush(stdout);
  totals t;
  memset(&t, 0, sizeof t);
  int r = run_rounds(&t, &o, path, driver);
  be_sqlite_driver_free(driver);
  if (r != 0) return 1;
  remove_db(path);
  rmdir(dir);
  return 0;
}
