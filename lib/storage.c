/* SPDX-License-Identifier: MIT */
/* be_conn and be_stmt over any be_driver: the per-connection statement
 * cache, broken-connection tracking, identifier checks and the statement
 * observers the query layer times statements with. */
#include <backend/storage.h>

#include <stdatomic.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "error.h"
#include "storage.h"
#include "utf8.h"
#include "versioned.h"

/*
 * A statement cached on a connection is in the hash (cached = 1) and on
 * the LRU list for its whole life, held (out = 1) or not: the list is in
 * the order statements were last given back (or first prepared), so
 * handing one out and taking it back touches the list only when another
 * statement was given back in between. Eviction takes the least recently
 * used one nobody holds, so a statement that a caller holds is never
 * finalized under it.
 */
struct be_stmt {
  be_conn *conn;
  void *native;
  struct text_copy *texts; /* be_stmt_bind_text's copies (NULL: none yet) */
  /* the driver's per-row operations, copied at prepare: an accessor is one
   * load and an indirect call, not conn -> driver table -> function */
  int64_t (*column_int64)(void *stmt, int32_t column);
  const char *(*column_text)(void *stmt, int32_t column, size_t *len);
  uint64_t hash;
  uint64_t sql_id;     /* the be_sql it was last found by (0: none) */
  const char *text_at; /* the text pointer it was last found by (NULL: none) */
  size_t sql_len;
  be_stmt *hnext;         /* hash chain */
  be_stmt *lprev, *lnext; /* LRU list of idle cached statements */
  be_stmt *oprev, *onext; /* list of statements handed out (out = 1) */
  int32_t cached;
  int32_t out;
  int32_t running;    /* a run is being observed: RUN_TIMED, RUN_FORCED or RUN_COARSE */
  int32_t timed_once; /* a run of it was timed: a new statement's first run is */
  /* its untimed runs since its last timed one (be__stmt_run.stmt_weight),
   * counted since the connection's weight generation weight_gen */
  uint32_t untimed;
  uint64_t weight_gen;
  uint64_t untimed_gen; /* be_conn.obs_gen the memo belongs to; 64 bits: never wraps */
  be__run_memo memo;    /* one observer's (be__stmt_run.memo) */
  int32_t recount;      /* read ncols again at this run's first row (be_conn.recount_runs) */
  int32_t ncols;        /* column count: from the prepare, or this run's first row */
  /* Bindings kept across a return to the cache (be_conn.reset_keep), for
   * parameters 1..64 (bit i - 1): dirty, bound with a value since they
   * were last cleared; stale, dirty from an earlier use and not bound in
   * this one (a step binds NULL to them first: one test when there are
   * none). clear: return with the driver's (clearing) reset, as a
   * parameter past 64 or a large value was bound. */
  uint64_t dirty;
  uint64_t stale;
  int32_t clear;
  int64_t start_ns;
  int64_t rows;
  char sql[];
};

/* A statement's text prepared once for the process: its hash and length
 * computed once, and an id never reused, so a connection finds its cached
 * statement in one load (be_conn.direct) instead of hashing the text. */
struct be_sql {
  uint64_t id;
  uint64_t hash;
  size_t len;
  char text[];
};

/* Cached statements found by be_sql id: direct-mapped, a slot holds the
 * last statement whose sql_id maps there (collisions fall back to the
 * hash). Every entry is a cached statement; leaving the cache clears it. */
#define DIRECT_SLOTS 64

/* Cached statements found by the address of the SQL text a caller passed
 * to be_conn_prepare (a literal, most often): direct-mapped like the
 * above, a slot holds the last statement prepared from a text at an
 * address mapping there. The address only points to the candidate: the
 * text is compared whole, which costs less than hashing it. */
#define TEXT_SLOTS 32

/* One attached statement observer (storage.h). */
typedef struct observer {
  be__stmt_observer fn;
  be__conn_close_fn on_close;
  void *ud;
  int64_t exact_over_ns; /* runs longer than this need an exact duration */
  uint32_t flags;        /* BE__OBS_TIMED_ONLY */
} observer;

struct be_conn {
  const be_driver *drv;
  void *native;
  be__reset_keep_fn reset_keep; /* NULL: return statements with drv->reset */
  /* 1: a statement's column count is read again at each run's first row;
   * 0: the driver checks column indexes itself (be__sqlite_checks_columns)
   * and it is read again only for an index past it or a whole-row read */
  int32_t recount_runs;
  int32_t broken;
  int32_t tx_depth;
  int32_t tx_doomed; /* a savepoint could not be rolled back: no COMMIT */
  /* statement cache */
  be_stmt **buckets;
  size_t nbuckets; /* power of two */
  int32_t cap;     /* 0 disables the cache */
  int32_t ncached; /* statements in the hash */
  be_stmt *lru_head, *lru_tail;
  int64_t hits, misses;
  int64_t open_stmts;
  be_stmt *out_head; /* statements handed out and not finalized */
  /* hooks: the hot paths test nobs alone, so with no observer a step costs
   * one load and a branch, as with a single slot */
  int32_t nobs, capobs;
  int32_t nobs_untimed; /* observers [0, nobs_untimed) hold every one an untimed run calls */
  observer *obs;
  /* be__conn_run_counts(): one writer, the thread using the connection */
  _Atomic uint64_t runs, run_rows, run_errors;
  const be_clock *clock;
  /* statement timing (storage.h, be__stmt_run): sampled, runs may go
   * untimed; skip, untimed runs left before the next timed one; untimed,
   * since the last timed one; slow_coarse_ns, a coarse reading this long
   * proves a run slow (two ticks) */
  int32_t sampled;
  uint32_t skip, untimed;
  uint32_t rng;        /* xorshift state drawing the gaps between timed runs */
  uint64_t obs_gen;    /* bumped when the observers change: memos are cleared */
  uint64_t weight_gen; /* bumped when an observer that reads weights comes: the
                        * untimed runs counted before are not its runs */
  int64_t slow_coarse_ns;
  void *pool_data;
  /* last: a run touches one slot of it, and the scalars above stay on the
   * first few cache lines instead of straddling 512 bytes of slots */
  be_stmt *direct[DIRECT_SLOTS];
  be_stmt *by_text[TEXT_SLOTS];
};

/* ---- helpers ---- */

static inline int note(be_conn *c, int rc) {
  if (rc == BE_E_CONN_LOST) c->broken = 1;
  return rc;
}

/* Hash of the SQL text, eight bytes at a time: a cache hit's cost is
 * mostly this, so it must not walk the text a byte at a time. */
static inline uint64_t hash_sql(const char *s, size_t *len) {
  size_t n = strlen(s);
  *len = n;
  const unsigned char *p = (const unsigned char *)s;
  uint64_t h = UINT64_C(0x9E3779B97F4A7C15) ^ n;
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    h = (h ^ w) * UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 32;
    p += 8;
    n -= 8;
  }
  if (n) {
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * UINT64_C(0xc4ceb9fe1a85ec53);
  }
  h ^= h >> 29;
  return h ? h : 1; /* 0 marks an empty slot in observers' tables */
}

uint64_t be__sql_hash(const char *sql) {
  size_t len;
  return hash_sql(sql, &len);
}

static size_t buckets_for(int32_t cap) {
  size_t n = 16;
  while (n < (size_t)cap * 2) n <<= 1;
  return n;
}

static void lru_unlink(be_conn *c, be_stmt *s) {
  if (s->lprev) s->lprev->lnext = s->lnext;
  else c->lru_head = s->lnext;
  if (s->lnext) s->lnext->lprev = s->lprev;
  else c->lru_tail = s->lprev;
  s->lprev = s->lnext = NULL;
}

static void lru_push(be_conn *c, be_stmt *s) {
  s->lprev = NULL;
  s->lnext = c->lru_head;
  if (c->lru_head) c->lru_head->lprev = s;
  else c->lru_tail = s;
  c->lru_head = s;
}

/* Statements handed out are listed, so a pool can reset the ones a
 * holder forgot (a pending statement keeps SQLite's read snapshot open). */
static inline void out_link(be_conn *c, be_stmt *s) {
  s->out = 1;
  s->oprev = NULL;
  s->onext = c->out_head;
  if (c->out_head) c->out_head->oprev = s;
  c->out_head = s;
  c->open_stmts++;
}

/* oprev and onext are left as they were: read only while out is set,
 * and out_link() sets both. */
static inline void out_unlink(be_conn *c, be_stmt *s) {
  if (s->oprev) s->oprev->onext = s->onext;
  else c->out_head = s->onext;
  if (s->onext) s->onext->oprev = s->oprev;
  s->out = 0;
  c->open_stmts--;
}

/* Empty *slot if it names s (a direct or text slot s is leaving). */
static inline void slot_release(be_stmt **slot, const be_stmt *s) {
  if (*slot == s) *slot = NULL;
}

static inline be_stmt **direct_slot(be_conn *c, uint64_t id) {
  return &c->direct[id & (DIRECT_SLOTS - 1)];
}

/* s is found by be_sql id from now on; the slot of its previous id, if
 * it still points at s, lets go of it. */
static void direct_set(be_conn *c, be_stmt *s, uint64_t id) {
  if (s->sql_id != id) {
    slot_release(direct_slot(c, s->sql_id), s);
    s->sql_id = id;
  }
  *direct_slot(c, id) = s;
}

static inline be_stmt **text_slot(be_conn *c, const char *at) {
  uintptr_t a = (uintptr_t)at;
  return &c->by_text[(a ^ a >> 5 ^ a >> 10) & (TEXT_SLOTS - 1)];
}

/* s is found by the text at `at` from now on (as direct_set). */
static void text_set(be_conn *c, be_stmt *s, const char *at) {
  if (s->text_at != at) {
    if (s->text_at) slot_release(text_slot(c, s->text_at), s);
    s->text_at = at;
  }
  *text_slot(c, at) = s;
}

/* s is the most recently used (the LRU list's head). */
static inline void lru_touch(be_conn *c, be_stmt *s) {
  if (c->lru_head != s) {
    lru_unlink(c, s);
    lru_push(c, s);
  }
}

static void hash_unlink(be_conn *c, be_stmt *s) {
  slot_release(direct_slot(c, s->sql_id), s);
  if (s->text_at) slot_release(text_slot(c, s->text_at), s);
  be_stmt **pp = &c->buckets[s->hash & (c->nbuckets - 1)];
  while (*pp && *pp != s) pp = &(*pp)->hnext;
  if (*pp) *pp = s->hnext;
  s->hnext = NULL;
  s->cached = 0;
  c->ncached--;
}

static void texts_free(be_stmt *s);

static void stmt_destroy(be_stmt *s) {
  s->conn->drv->finalize(s->native);
  texts_free(s);
  be__free_lines(s);
}

/* Drop every idle cached statement; held ones leave the cache and are
 * finalized when given back. */
static void cache_flush(be_conn *c) {
  while (c->lru_tail) {
    be_stmt *s = c->lru_tail;
    lru_unlink(c, s);
    if (s->out) continue; /* held: unhashed below */
    hash_unlink(c, s);
    stmt_destroy(s);
  }
  for (size_t i = 0; c->buckets && i < c->nbuckets; i++) {
    be_stmt *s = c->buckets[i];
    while (s) {
      be_stmt *next = s->hnext;
      s->hnext = NULL;
      s->cached = 0;
      c->ncached--;
      s = next;
    }
    c->buckets[i] = NULL;
  }
  memset(c->direct, 0, sizeof c->direct);
  memset(c->by_text, 0, sizeof c->by_text);
}

/* The observer paths are kept out of line: step and finalize without an
 * observer then stay as small as they were with a single observer slot
 * (inlining the loop cost them register saves on every call). */
#if defined(__GNUC__) || defined(__clang__)
#  define OUT_OF_LINE __attribute__((noinline))
#  define UNLIKELY(x) __builtin_expect(!!(x), 0)
#  define LIKELY(x) __builtin_expect(!!(x), 1)
#else
#  define OUT_OF_LINE
#  define UNLIKELY(x) (x)
#  define LIKELY(x) (x)
#endif

/* Add one to a counter only this thread writes: no locked instruction. */
static inline void count_up(_Atomic uint64_t *n, uint64_t by) {
  atomic_store_explicit(n, atomic_load_explicit(n, memory_order_relaxed) + by, memory_order_relaxed);
}

/* The run counted (be__conn_run_counts), then every observer, in order,
 * with the same run; an untimed one skips those that want timed runs only
 * (and stops after the last one that does not). */
static inline void notify(be_conn *c, const be__stmt_run *run) {
  count_up(&c->runs, 1);
  if (run->rows > 0) count_up(&c->run_rows, (uint64_t)run->rows);
  if (run->rc < 0) count_up(&c->run_errors, 1);
  const observer *o = c->obs;
  for (const observer *end = o + (run->weight ? c->nobs : c->nobs_untimed); o < end; o++)
    if (run->weight || !(o->flags & BE__OBS_TIMED_ONLY)) o->fn(o->ud, run);
}

/* How a run is being timed: from an exact reading, or from a coarse one
 * (not sampled: timed only if it proves slow). */
enum { RUN_TIMED = 1,    /* exact clock: the sample (or every run is timed) */
       RUN_COARSE = 2,   /* coarse clock: untimed unless it proves slow */
       RUN_FORCED = 3 }; /* exact clock, always: stands for itself alone */

/* Start timing a run on c: *start is the exact time when this run is the
 * sample (or every run must be timed), or forced is set (a statement's
 * first run, a be_conn_exec()), the coarse time otherwise. A forced run
 * is never the sample and moves no countdown: the sample is drawn from
 * the runs the untimed count counts, or a slow exec would stand for them. */
static inline int32_t timer_start(be_conn *c, int64_t *start, int32_t forced) {
  if (!c->sampled || forced || c->skip == 0) {
    *start = be__clock_now_ns(c->clock);
    return !c->sampled || !forced ? RUN_TIMED : RUN_FORCED;
  }
  c->skip--;
  *start = be__clock_coarse_ns(NULL);
  return RUN_COARSE;
}

static inline uint32_t timer_rand(be_conn *c) {
  uint32_t x = c->rng ? c->rng : (uint32_t)(uintptr_t)c | 1;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return c->rng = x;
}

/* Untimed runs before the next timed one: drawn from
 * BE__RUN_SAMPLE_EVERY / 2 - 1 .. BE__RUN_SAMPLE_MAX - 2 (7..22: about
 * one run in 15.5 timed), so statements that alternate in a fixed
 * pattern are all sampled, not only the one the period lands on. */
static inline uint32_t timer_gap(be_conn *c) {
  return BE__RUN_SAMPLE_EVERY / 2 - 1 + timer_rand(c) % BE__RUN_SAMPLE_EVERY;
}

/* What timer_end() made of a run. */
enum { RUN_UNTIMED,
       RUN_SAMPLE,
       RUN_ALONE };

/* Whether a sampled run of d ns would have been timed alone had it run
 * untimed: its coarse readings two ticks apart or more, which a run of
 * one to two ticks (T) is with probability d / T - 1 at a uniform phase.
 * The pending weight is the fast runs', so such a run must not take it:
 * slow runs would count about twice. */
static OUT_OF_LINE int timer_proves_slow(be_conn *c, int64_t d) {
  int64_t tick = c->slow_coarse_ns / 2;
  if (d >= 2 * tick) return 1;
  return d > tick && (int64_t)(timer_rand(c) % (uint32_t)tick) < d - tick;
}

/* The duration and weight of a run timed from start (be__stmt_run):
 * RUN_SAMPLE, a timed run standing for the untimed ones before it;
 * RUN_ALONE, a run standing for itself: a forced one, a sample that
 * proves slow, or a coarse run timed from its coarse start (up to a tick
 * long), one two ticks long or more (or any once an observer that needs
 * every run timed was attached during it). A slow run makes the next run
 * the sample, so the pending weight goes to a run like the ones it
 * counts; a timed run this long makes every run timed until one is fast
 * again. */
static inline __attribute__((always_inline)) int timer_end(be_conn *c, int32_t how, int64_t start,
                                                           be__stmt_run *run) {
  if (how == RUN_COARSE) {
    if (c->sampled && be__clock_coarse_ns(NULL) - start < c->slow_coarse_ns) {
      c->untimed++;
      return RUN_UNTIMED; /* duration 0, weight 0 */
    }
    run->duration_ns = be__clock_now_ns(NULL) - start;
    run->weight = 1;
    c->skip = 0;
    return RUN_ALONE;
  }
  int64_t d = run->duration_ns = be__clock_now_ns(c->clock) - start;
  if (how == RUN_FORCED || (c->sampled && d > c->slow_coarse_ns / 2 && timer_proves_slow(c, d))) {
    run->weight = 1; /* a sample's skip stays 0: the next run is the sample */
    if (d >= BE__RUN_TIME_ALL_NS) c->skip = 0;
    return RUN_ALONE;
  }
  run->weight = c->untimed + 1;
  c->untimed = 0;
  c->skip = d >= BE__RUN_TIME_ALL_NS ? 0 : timer_gap(c);
  return RUN_SAMPLE;
}

/* The statement's own weight for a run of s: its untimed runs since its
 * last timed one, since the weight generation, and this one. */
static inline void timer_stmt(be_stmt *s, int what, be__stmt_run *run) {
  be_conn *c = s->conn;
  if (s->untimed_gen != c->obs_gen) {
    if (s->weight_gen != c->weight_gen) {
      s->untimed = 0;
      s->weight_gen = c->weight_gen;
    }
    s->memo.owner = NULL;
    s->untimed_gen = c->obs_gen;
  }
  if (what == RUN_UNTIMED) {
    s->untimed++;
  } else if (what == RUN_SAMPLE) {
    run->stmt_weight = s->untimed + 1;
    s->untimed = 0;
  } else {
    run->stmt_weight = 1;
  }
}

/* Whether c's runs may be sampled: the system clock, and no observer
 * that needs exact durations below ten coarse ticks; and how far into
 * the list an untimed run's observers reach. The observers changed, and
 * memos go. restart: an observer that reads weights came (or the clock
 * changed): untimed runs so far are not its runs, they are dropped and
 * the next run is timed. An observer leaving keeps them: the others saw
 * every one (a scope per request, attached and detached, once made most
 * statements timed only at their first run). */
static void timer_update(be_conn *c, int restart) {
  if (restart) {
    c->untimed = 0;
    c->skip = 0;
    c->weight_gen++;
  }
  c->obs_gen++;
  int64_t tick = be__clock_coarse_tick_ns(), need = INT64_MAX;
  c->nobs_untimed = 0;
  for (int32_t i = 0; i < c->nobs; i++) {
    if (c->obs[i].exact_over_ns < need) need = c->obs[i].exact_over_ns;
    if (!(c->obs[i].flags & BE__OBS_TIMED_ONLY)) c->nobs_untimed = i + 1;
  }
  c->slow_coarse_ns = 2 * tick;
  c->sampled = be__clock_is_system(c->clock) && need / 10 >= tick;
}

static OUT_OF_LINE void observe_start(be_stmt *s) {
  s->rows = 0;
  s->running = timer_start(s->conn, &s->start_ns, !s->timed_once);
  s->timed_once |= s->running != RUN_COARSE;
}

static OUT_OF_LINE void observe_end(be_stmt *s, int rc) {
  be_conn *c = s->conn;
  int32_t how = s->running;
  s->running = 0;
  if (c->nobs == 0) return;
  be__stmt_run run = {s->sql, s->hash, 0, s->rows, rc, 0, 0, &s->memo};
  timer_stmt(s, timer_end(c, how, s->start_ns, &run), &run);
  notify(c, &run);
}

/* Drop the observers from index keep on, telling each owner; they leave
 * the list first, so an owner that detaches from its side while being told
 * finds nothing. */
static int32_t observers_truncate(be_conn *c, int32_t keep) {
  observer *o = c->obs;
  int32_t n = c->nobs;
  if (keep < 0) keep = 0;
  if (n <= keep) return 0;
  c->nobs = keep;
  if (keep == 0) {
    c->obs = NULL;
    c->capobs = 0;
  }
  timer_update(c, 0);
  for (int32_t i = keep; i < n; i++)
    if (o[i].on_close) o[i].on_close(o[i].ud, c);
  if (keep == 0) be__free(o);
  return n - keep;
}

static void observers_close(be_conn *c) { observers_truncate(c, 0); }

int be__ident_valid(const char *name) {
  if (name == NULL) return 0;
  const unsigned char *p = (const unsigned char *)name;
  if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '_')) return 0;
  size_t n = 0;
  for (; *p; p++, n++) {
    if (n >= 64) return 0;
    if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
          *p == '_'))
      return 0;
  }
  return 1;
}

static const char *missing_fn(const be_driver *d) {
#define REQ(f) \
  if (d->f == NULL) return #f
  REQ(open);
  REQ(close);
  REQ(prepare);
  REQ(bind_null);
  REQ(bind_int64);
  REQ(bind_double);
  REQ(bind_text);
  REQ(bind_blob);
  REQ(step);
  REQ(column_count);
  REQ(column_name);
  REQ(column_type);
  REQ(column_int64);
  REQ(column_double);
  REQ(column_text);
  REQ(column_blob);
  REQ(reset);
  REQ(finalize);
  REQ(exec);
  REQ(begin);
  REQ(commit);
  REQ(rollback);
  REQ(savepoint);
  REQ(release);
  REQ(rollback_to);
  REQ(last_insert_id);
  REQ(changes);
  REQ(ping);
  REQ(bind_limit);
  REQ(in_transaction);
#undef REQ
  return NULL;
}

/* ---- connections ---- */

/* The codes a failed open keeps; any other becomes BE_E_DB_UNREACHABLE. */
static int open_code_kept(int rc) {
  return rc == BE_E_NOMEM || rc == BE_E_MISUSE || rc == BE_E_DB_UNREACHABLE || rc == BE_E_BUSY ||
         rc == BE_E_STORAGE;
}

static int conn_open(be_conn **out, const be_driver *driver, const char *dsn, int existing,
                     be_error **err) {
  if (out == NULL || driver == NULL || dsn == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_conn_open: NULL argument");
  *out = NULL;
  if (driver->version == 0 || driver->version > BE_DRIVER_VERSION)
    return be__error_set(err, BE_E_MISUSE, "unknown driver table version %u",
                         (unsigned)driver->version);
  const char *missing = missing_fn(driver);
  if (missing)
    return be__error_set(err, BE_E_MISUSE, "driver table has no %s function", missing);

  be_conn *c = be__calloc_lines(sizeof *c);
  if (c == NULL) return be__error_oom(err);
  c->drv = driver;
  c->reset_keep = be__sqlite_reset_keep_fn(driver);
  c->recount_runs = !be__sqlite_checks_columns(driver);
  c->cap = BE__STMT_CACHE_DEFAULT;
  c->nbuckets = buckets_for(c->cap);
  c->buckets = be__calloc(c->nbuckets, sizeof *c->buckets);
  if (c->buckets == NULL) {
    be__free_lines(c);
    return be__error_oom(err);
  }

  be_error *cause = NULL;
  be__open_fn open = existing ? be__driver_open_existing(driver) : NULL;
  if (open == NULL) open = driver->open;
  int rc = open(&c->native, dsn, driver->driver_data, err ? &cause : NULL);
  if (rc != BE_OK) {
    be__free(c->buckets);
    be__free_lines(c);
    if (open_code_kept(rc)) return err ? be__error_give(err, cause) : rc;
    return be__error_wrap(err, BE_E_DB_UNREACHABLE, cause, "could not open a %s connection: %s",
                          driver->name ? driver->name : "database",
                          cause ? be_error_message(cause) : be_strerror(rc));
  }
  *out = c;
  return BE_OK;
}

int be_conn_open(be_conn **out, const be_driver *driver, const char *dsn, be_error **err) {
  return conn_open(out, driver, dsn, 0, err);
}

int be__conn_open_existing(be_conn **out, const be_driver *driver, const char *dsn,
                           be_error **err) {
  return conn_open(out, driver, dsn, 1, err);
}

void be_conn_close(be_conn *c) {
  if (c == NULL) return;
  observers_close(c);
  cache_flush(c);
  /* Statements a holder never finalized go with their connection (their
   * handles were only valid while it lived). */
  while (c->out_head) {
    be_stmt *s = c->out_head;
    out_unlink(c, s);
    stmt_destroy(s);
  }
  if (!c->broken && c->drv->in_transaction(c->native)) c->drv->rollback(c->native, NULL);
  c->drv->close(c->native);
  be__free(c->buckets);
  be__free_lines(c);
}

const be_driver *be_conn_driver(const be_conn *c) { return c ? c->drv : NULL; }

int be_conn_set_stmt_cache_size(be_conn *c, int32_t max_entries, be_error **err) {
  if (c == NULL || max_entries < 0 || max_entries > 65536)
    return be__error_set(err, BE_E_MISUSE, "be_conn_set_stmt_cache_size: bad argument");
  size_t nb = buckets_for(max_entries);
  be_stmt **b = NULL;
  if (nb != c->nbuckets) {
    b = be__calloc(nb, sizeof *b);
    if (b == NULL) return be__error_oom(err);
  }
  cache_flush(c);
  if (b) {
    be__free(c->buckets);
    c->buckets = b;
    c->nbuckets = nb;
  }
  c->cap = max_entries;
  return BE_OK;
}

int be_stmt_cache_stats_init(be_stmt_cache_stats *out, uint32_t version) {
  static const be_stmt_cache_stats defaults = BE_STMT_CACHE_STATS_INIT;
  return be__versioned_init(out, sizeof *out, &defaults, version, BE_STMT_CACHE_STATS_VERSION);
}

int be_conn_stmt_cache_stats_get(be_stmt_cache_stats *out, const be_conn *c, be_error **err) {
  if (c == NULL || out == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_conn_stmt_cache_stats_get: %s is NULL",
                         c ? "out" : "conn");
  if (out->version < 1 || out->version > BE_STMT_CACHE_STATS_VERSION)
    return be__error_set(err, BE_E_MISUSE, "be_conn_stmt_cache_stats_get: unknown stats version %u",
                         (unsigned)out->version);
  out->size = c->ncached;
  out->hits = c->hits;
  out->misses = c->misses;
  return BE_OK;
}

/* The idle cached statement of sql (len bytes, hash h), or NULL; *held
 * is set when the cached one is handed out. */
static be_stmt *cache_find(be_conn *c, const char *sql, size_t len, uint64_t h, int *held) {
  for (be_stmt *s = c->buckets[h & (c->nbuckets - 1)]; s; s = s->hnext) {
    if (s->hash == h && s->sql_len == len && memcmp(s->sql, sql, len) == 0) {
      *held = s->out;
      return s->out ? NULL : s;
    }
  }
  return NULL;
}

/* Put a new statement in the cache, evicting the least recently used idle
 * one when full; 0 when it could not be cached. */
static int cache_insert(be_conn *c, be_stmt *s) {
  if (c->ncached >= c->cap) {
    be_stmt *victim = c->lru_tail;
    while (victim && victim->out) victim = victim->lprev;
    if (victim == NULL) return 0; /* every cached one is held */
    lru_unlink(c, victim);
    hash_unlink(c, victim);
    stmt_destroy(victim);
  }
  be_stmt **b = &c->buckets[s->hash & (c->nbuckets - 1)];
  s->hnext = *b;
  *b = s;
  s->cached = 1;
  c->ncached++;
  lru_push(c, s);
  return 1;
}

/* A real prepare of sql (len bytes, NUL-terminated, hash h). */
static int prepare_new(be_stmt **out, be_conn *c, const char *sql, size_t len, uint64_t h,
                       be_error **err) {
  void *native = NULL;
  int rc = c->drv->prepare(c->native, &native, sql, len, err);
  if (rc != BE_OK) return note(c, rc);
  be_stmt *s = be__calloc_lines(sizeof *s + len + 1);
  if (s == NULL) {
    c->drv->finalize(native);
    return be__error_oom(err);
  }
  s->conn = c;
  s->native = native;
  s->hash = h;
  s->sql_len = len;
  s->column_int64 = c->drv->column_int64;
  s->column_text = c->drv->column_text;
  s->ncols = c->drv->column_count(native);
  s->recount = c->recount_runs;
  memcpy(s->sql, sql, len + 1);
  *out = s;
  return BE_OK;
}

/* be_conn_prepare with the text's length and hash known; id is the
 * be_sql the text came from (0: none), remembered for the direct slots,
 * else the text's address for the text slots. */
static int prepare_text(be_stmt **out, be_conn *c, const char *sql, size_t len, uint64_t h,
                        uint64_t id, be_error **err) {
  int held = 0;
  be_stmt *s = c->cap > 0 ? cache_find(c, sql, len, h, &held) : NULL;
  if (s) {
    c->hits++;
  } else {
    c->misses++;
    int rc = prepare_new(&s, c, sql, len, h, err);
    if (rc != BE_OK) return rc;
    /* a held cached statement gets an uncached twin */
    if (c->cap > 0 && !held) cache_insert(c, s);
  }
  if (s->cached) {
    if (id) direct_set(c, s, id);
    else text_set(c, s, sql);
  }
  out_link(c, s);
  *out = s;
  return BE_OK;
}

/* A cache hit found by a direct or text slot: s handed out. */
static inline int hand_out(be_conn *c, be_stmt *s, be_stmt **out) {
  c->hits++;
  out_link(c, s);
  *out = s;
  return BE_OK;
}

int be_conn_prepare(be_stmt **out, be_conn *c, const char *sql, be_error **err) {
  if (c == NULL || out == NULL || sql == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_conn_prepare: NULL argument");
  *out = NULL;
  /* the statement last prepared from this address, if the text there is
   * still the same (both NUL-terminated: strcmp reads neither past its end) */
  be_stmt *s = *text_slot(c, sql);
  if (LIKELY(s != NULL && s->text_at == sql && !s->out && strcmp(s->sql, sql) == 0))
    return hand_out(c, s, out);
  size_t len;
  uint64_t h = hash_sql(sql, &len);
  return prepare_text(out, c, sql, len, h, 0, err);
}

int be_conn_prepare_sql(be_stmt **out, be_conn *c, const be_sql *sql, be_error **err) {
  if (out) *out = NULL;
  if (UNLIKELY(c == NULL || out == NULL || sql == NULL))
    return be__error_set(err, BE_E_MISUSE, "be_conn_prepare_sql: NULL argument");
  be_stmt *s = *direct_slot(c, sql->id);
  if (LIKELY(s != NULL && s->sql_id == sql->id && !s->out)) return hand_out(c, s, out);
  return prepare_text(out, c, sql->text, sql->len, sql->hash, sql->id, err);
}

int be_sql_new(be_sql **out, const char *sql, size_t len, be_error **err) {
  static _Atomic uint64_t next_id = 1;
  if (out) *out = NULL;
  if (out == NULL || sql == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_sql_new: %s is NULL", out ? "sql" : "out");
  sql = be__text_arg(sql, &len);
  if (memchr(sql, '\0', len) != NULL)
    return be__error_field(err, "sql", "SQL text must not hold a NUL byte");
  be_sql *q = be__malloc(sizeof *q + len + 1);
  if (q == NULL) return be__error_oom(err);
  memcpy(q->text, sql, len);
  q->text[len] = '\0';
  q->hash = hash_sql(q->text, &q->len);
  q->id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
  *out = q;
  return BE_OK;
}

void be_sql_free(be_sql *sql) { be__free(sql); }

const char *be_sql_text(const be_sql *sql, size_t *len) {
  if (len) *len = sql ? sql->len : 0;
  return sql ? sql->text : NULL;
}

/* A driver's reset cleared s's bindings. */
static inline void bindings_cleared(be_stmt *s) {
  s->dirty = s->stale = 0;
  s->clear = 0;
}

/* The driver's reset, which clears s's bindings. */
static OUT_OF_LINE int reset_clearing(be_conn *c, be_stmt *s, be_error **err) {
  bindings_cleared(s);
  return note(c, c->drv->reset(s->native, err));
}

/* Reset s to run again with no bindings (given back to the cache, or
 * be_stmt_reset): keeping the driver's bindings when it can, as that costs
 * less than clearing them; what they hold is stale from now on (the next
 * step binds NULL to each parameter not bound again), so every parameter
 * still reads NULL until bound. Else the driver's reset clears them. */
static inline int reset_unbound(be_conn *c, be_stmt *s, be_error **err) {
  if (LIKELY(c->reset_keep != NULL && !s->clear)) {
    c->reset_keep(s->native);
    s->stale = s->dirty;
    return BE_OK;
  }
  return reset_clearing(c, s, err);
}

void be_stmt_finalize(be_stmt *s) {
  if (s == NULL) return;
  be_conn *c = s->conn;
  if (UNLIKELY(s->running)) observe_end(s, BE_OK);
  out_unlink(c, s);
  s->recount = c->recount_runs;
  if (s->cached) {
    /* a reset that finds the connection lost marks it broken, so the pool
     * replaces it instead of handing it to the next caller */
    if (!c->broken && reset_unbound(c, s, NULL) == BE_OK) {
      lru_touch(c, s);
      return;
    }
    lru_unlink(c, s);
    hash_unlink(c, s);
  }
  stmt_destroy(s);
}

/* ---- binding ---- */

#define STMT_CHECK(s, name) \
  if ((s) == NULL) return be__error_set(err, BE_E_MISUSE, name ": NULL statement")

/* The largest value a binding kept across a return to the cache may hold
 * (a driver's copy of it stays allocated until the parameter is bound
 * again): a larger one is cleared on return. */
#define KEEP_MAX 4096

/* rc of binding a value to parameter i of s (rc BE_OK: it is bound in
 * this use; a bind that failed left the earlier binding, stale or not). */
static inline int bound(be_stmt *s, int32_t i, int rc) {
  if (LIKELY(rc == BE_OK)) {
    if (LIKELY((uint32_t)(i - 1) < 64)) {
      uint64_t bit = UINT64_C(1) << (i - 1);
      s->dirty |= bit;
      s->stale &= ~bit;
    } else {
      s->clear = 1;
    }
    return rc;
  }
  return note(s->conn, rc);
}

int be_stmt_bind_null(be_stmt *s, int32_t i, be_error **err) {
  STMT_CHECK(s, "be_stmt_bind_null");
  int rc = note(s->conn, s->conn->drv->bind_null(s->native, i, err));
  /* NULL is what a cleared parameter reads: nothing to unbind later */
  if (rc == BE_OK && (uint32_t)(i - 1) < 64) {
    s->dirty &= ~(UINT64_C(1) << (i - 1));
    s->stale &= ~(UINT64_C(1) << (i - 1));
  }
  return rc;
}

int be_stmt_bind_int64(be_stmt *s, int32_t i, int64_t v, be_error **err) {
  STMT_CHECK(s, "be_stmt_bind_int64");
  return bound(s, i, s->conn->drv->bind_int64(s->native, i, v, err));
}

int be_stmt_bind_double(be_stmt *s, int32_t i, double v, be_error **err) {
  STMT_CHECK(s, "be_stmt_bind_double");
  return bound(s, i, s->conn->drv->bind_double(s->native, i, v, err));
}

/* be_stmt_bind_text's copies of short text for the first parameters,
 * kept with the statement, so a bind in a loop neither allocates nor has
 * the driver allocate: the copy is lent to the driver's bind_text_static.
 * Two buffers per parameter: the one the last successful bind lent may
 * still be read by the driver until the parameter is bound again, so the
 * next copy goes to the other, which no binding can point at (a bind that
 * fails leaves the driver's binding as it was, and the one lent then as
 * the one to keep). Longer text and later parameters go to the driver's
 * bind_text, which copies. */
#define TEXT_COPY_PARAMS 16
#define TEXT_COPY_MAX 256

struct text_copy {
  char *buf[2];
  uint32_t cap[2];
  uint32_t lent; /* the buffer the last successful bind lent */
};

static void texts_free(be_stmt *s) {
  if (s->texts == NULL) return;
  for (int i = 0; i < TEXT_COPY_PARAMS; i++) {
    be__free(s->texts[i].buf[0]);
    be__free(s->texts[i].buf[1]);
  }
  be__free(s->texts);
  s->texts = NULL;
}

/* v[0..len) copied into the buffer of parameter i that no binding points
 * at; NULL when parameter i or len is past the copies' reach or memory is
 * short. */
static char *text_copy(be_stmt *s, int32_t i, const char *v, size_t len) {
  if (i < 1 || i > TEXT_COPY_PARAMS || len > TEXT_COPY_MAX) return NULL;
  if (s->texts == NULL && (s->texts = be__calloc(TEXT_COPY_PARAMS, sizeof *s->texts)) == NULL)
    return NULL;
  struct text_copy *t = &s->texts[i - 1];
  uint32_t k = t->lent ^ 1;
  if (t->cap[k] < len || t->buf[k] == NULL) {
    uint32_t cap = 32;
    while (cap < len) cap *= 2;
    char *b = be__realloc(t->buf[k], cap);
    if (b == NULL) return NULL;
    t->buf[k] = b;
    t->cap[k] = cap;
  }
  memcpy(t->buf[k], v, len);
  return t->buf[k];
}

int be_stmt_bind_text(be_stmt *s, int32_t i, const char *v, size_t len, be_error **err) {
  STMT_CHECK(s, "be_stmt_bind_text");
  if (v == NULL) return be__error_set(err, BE_E_MISUSE, "be_stmt_bind_text: NULL text");
  v = be__text_arg(v, &len);
  if (!be__utf8_valid(v, len))
    return be__error_field(err, "parameter", "parameter %d is not valid UTF-8 text (or holds a NUL)",
                           (int)i);
  const be_driver *d = s->conn->drv;
  be__bind_text_fn lend = be__driver_bind_text_static(d);
  const char *copy = lend ? text_copy(s, i, v, len) : NULL;
  if (copy == NULL) {
    if (len > KEEP_MAX) s->clear = 1;
    return bound(s, i, d->bind_text(s->native, i, v, len, err));
  }
  int rc = lend(s->native, i, copy, len, err);
  if (rc == BE_OK) s->texts[i - 1].lent ^= 1;
  return bound(s, i, rc);
}

int be_stmt_bind_text_static(be_stmt *s, int32_t i, const char *v, size_t len, be_error **err) {
  STMT_CHECK(s, "be_stmt_bind_text_static");
  if (v == NULL) return be__error_set(err, BE_E_MISUSE, "be_stmt_bind_text_static: NULL text");
  v = be__text_arg(v, &len);
  const be_driver *d = s->conn->drv;
  be__bind_text_fn bind = be__driver_bind_text_static(d);
  if (bind == NULL) bind = d->bind_text;
  return bound(s, i, bind(s->native, i, v, len, err));
}

int be_stmt_bind_blob(be_stmt *s, int32_t i, const void *v, size_t len, be_error **err) {
  STMT_CHECK(s, "be_stmt_bind_blob");
  if (v == NULL && len > 0) return be__error_set(err, BE_E_MISUSE, "be_stmt_bind_blob: NULL data");
  if (len > KEEP_MAX) s->clear = 1;
  return bound(s, i, s->conn->drv->bind_blob(s->native, i, v, len, err));
}

/* ---- running ---- */

/* One step of s (its stale parameters already unbound). */
static inline int step_run(be_stmt *s, be_error **err) {
  be_conn *c = s->conn;
  if (UNLIKELY(c->nobs) && !s->running) observe_start(s);
  int rc = c->drv->step(s->native, err);
  if (rc == BE_ROW) {
    /* a driver may re-prepare (schema change) when a run starts */
    if (UNLIKELY(s->recount)) {
      s->recount = 0;
      s->ncols = c->drv->column_count(s->native);
    }
    s->rows++;
    return rc;
  }
  s->recount = c->recount_runs;
  if (rc == BE_E_CONN_LOST) c->broken = 1;
  if (UNLIKELY(s->running)) observe_end(s, rc == BE_DONE ? BE_OK : rc);
  return rc;
}

/* The first step of a use that left stale parameters unbound: bind NULL
 * to each (unbound parameters read NULL, as after a clear), then step.
 * Out of line, so the common step keeps its registers. */
static OUT_OF_LINE int step_unbinding(be_stmt *s, be_error **err) {
  uint64_t m = s->stale;
  for (int32_t i = 1; m; i++, m >>= 1) {
    if (!(m & 1)) continue;
    int rc = s->conn->drv->bind_null(s->native, i, err);
    if (rc != BE_OK) return note(s->conn, rc);
  }
  s->dirty &= ~s->stale;
  s->stale = 0;
  return step_run(s, err);
}

int be_stmt_step(be_stmt *s, be_error **err) {
  STMT_CHECK(s, "be_stmt_step");
  if (UNLIKELY(s->stale)) return step_unbinding(s, err);
  return step_run(s, err);
}

int be_stmt_reset(be_stmt *s, be_error **err) {
  STMT_CHECK(s, "be_stmt_reset");
  if (s->running) observe_end(s, BE_OK);
  s->recount = s->conn->recount_runs;
  return reset_unbound(s->conn, s, err);
}

int32_t be_stmt_column_count(be_stmt *s) {
  return s ? s->conn->drv->column_count(s->native) : 0;
}

/* col is past s's column count as last read: when the driver checks
 * indexes itself that count may be from before a re-prepare (a schema
 * change), so read it again. */
static OUT_OF_LINE int col_recount(be_stmt *s, int32_t col) {
  be_conn *c = s->conn;
  if (c->recount_runs) return 0; /* read at this run's first row */
  s->ncols = c->drv->column_count(s->native);
  return (uint32_t)col < (uint32_t)s->ncols;
}

/* col is below s's column count as last read (ncols >= 0: one unsigned
 * compare); the hot accessors test this, and col_ok() out of line. */
static inline int col_in(const be_stmt *s, int32_t col) {
  return (uint32_t)col < (uint32_t)s->ncols;
}

/* col is a column of s's current result. */
static inline int col_ok(be_stmt *s, int32_t col) {
  return s && (LIKELY(col_in(s, col)) || col_recount(s, col));
}

const char *be_stmt_column_name(be_stmt *s, int32_t col) {
  return col_ok(s, col) ? s->conn->drv->column_name(s->native, col) : NULL;
}

int32_t be_stmt_column_type(be_stmt *s, int32_t col) {
  return col_ok(s, col) ? s->conn->drv->column_type(s->native, col) : BE_TYPE_NULL;
}

static OUT_OF_LINE int64_t column_int64_checked(be_stmt *s, int32_t col) {
  return col_ok(s, col) ? s->column_int64(s->native, col) : 0;
}

int64_t be_stmt_column_int64(be_stmt *s, int32_t col) {
  /* a tail call either way: nothing to save for the rare path */
  if (LIKELY(s != NULL && col_in(s, col))) return s->column_int64(s->native, col);
  return column_int64_checked(s, col);
}

double be_stmt_column_double(be_stmt *s, int32_t col) {
  return col_ok(s, col) ? s->conn->drv->column_double(s->native, col) : 0.0;
}

static OUT_OF_LINE const char *column_text_checked(be_stmt *s, int32_t col, size_t *len) {
  return col_ok(s, col) ? s->column_text(s->native, col, len) : NULL;
}

static OUT_OF_LINE const char *column_text_no_len(be_stmt *s, int32_t col) {
  size_t n = 0;
  return column_text_checked(s, col, &n);
}

const char *be_stmt_column_text(be_stmt *s, int32_t col, size_t *len) {
  if (UNLIKELY(len == NULL)) return column_text_no_len(s, col);
  *len = 0;
  /* a tail call: the driver writes the caller's len itself */
  if (LIKELY(s != NULL && col_in(s, col))) return s->column_text(s->native, col, len);
  return column_text_checked(s, col, len);
}

const void *be_stmt_column_blob(be_stmt *s, int32_t col, size_t *len) {
  size_t n = 0;
  const void *b = col_ok(s, col) ? s->conn->drv->column_blob(s->native, col, &n) : NULL;
  if (len) *len = n;
  return b;
}

typedef int32_t (*column_value_fn)(void *stmt, int32_t column, int64_t *out_int,
                                   double *out_double, const void **out_ptr, size_t *out_len);

void be__stmt_column_value(be_stmt *s, int32_t col, be__value *v) {
  const be_driver *d = s->conn->drv;
  column_value_fn fn = d->version >= 3 ? d->column_value : NULL;
  v->i = 0;
  v->d = 0.0;
  v->p = NULL;
  v->len = 0;
  if (UNLIKELY(!col_ok(s, col))) {
    v->type = BE_TYPE_NULL;
    return;
  }
  if (fn) {
    v->type = fn(s->native, col, &v->i, &v->d, &v->p, &v->len);
    return;
  }
  switch (v->type = d->column_type(s->native, col)) {
    case BE_TYPE_INT: v->i = d->column_int64(s->native, col); break;
    case BE_TYPE_FLOAT: v->d = d->column_double(s->native, col); break;
    case BE_TYPE_TEXT: v->p = d->column_text(s->native, col, &v->len); break;
    case BE_TYPE_BLOB: v->p = d->column_blob(s->native, col, &v->len); break;
    default: v->type = BE_TYPE_NULL; break;
  }
}

void be__stmt_row_reader(be_stmt *s, be__row_reader *out) {
  const be_driver *d = s->conn->drv;
  out->native = s->native;
  out->row = be__sqlite_row_fn(d);
  out->value = d->version >= 3 ? d->column_value : NULL;
  out->int64 = d->column_int64;
  if (!s->conn->recount_runs) s->ncols = d->column_count(s->native);
  out->ncols = s->ncols;
}

int be_conn_exec(be_conn *c, const char *sql, be_error **err) {
  if (c == NULL || sql == NULL) return be__error_set(err, BE_E_MISUSE, "be_conn_exec: NULL argument");
  if (c->nobs == 0) return note(c, c->drv->exec(c->native, sql, err));
  int64_t t0;
  int32_t how = timer_start(c, &t0, 1); /* no statement to count untimed runs of: forced */
  int rc = note(c, c->drv->exec(c->native, sql, err));
  be__stmt_run run = {sql, be__sql_hash(sql), 0, 0, rc, 0, 1, NULL}; /* stands for itself */
  timer_end(c, how, t0, &run);
  notify(c, &run);
  return rc;
}

/* ---- transactions ---- */

#define CONN_CHECK(c, name) \
  if ((c) == NULL) return be__error_set(err, BE_E_MISUSE, name ": NULL connection")

int be_conn_begin(be_conn *c, int32_t mode, be_error **err) {
  CONN_CHECK(c, "be_conn_begin");
  if (mode < BE_TX_DEFERRED || mode > BE_TX_EXCLUSIVE)
    return be__error_set(err, BE_E_MISUSE, "be_conn_begin: unknown mode %d", (int)mode);
  int rc = note(c, c->drv->begin(c->native, mode, err));
  if (rc == BE_OK) c->tx_doomed = 0;
  return rc;
}

/* A transaction whose savepoint could not be rolled back holds work its
 * caller was told is undone: it must never commit. Roll it all back. */
static int refuse_doomed_commit(be_conn *c, be_error **err) {
  int rc = note(c, c->drv->rollback(c->native, NULL));
  if (!c->drv->in_transaction(c->native)) c->tx_doomed = 0;
  return be__error_set(err, BE_E_STORAGE,
                       "COMMIT refused: a nested transaction failed and its savepoint could not "
                       "be rolled back; the whole transaction was %s",
                       rc == BE_OK ? "rolled back" : "abandoned (its rollback failed too)");
}

int be_conn_commit(be_conn *c, be_error **err) {
  CONN_CHECK(c, "be_conn_commit");
  if (UNLIKELY(c->tx_doomed)) return refuse_doomed_commit(c, err);
  return note(c, c->drv->commit(c->native, err));
}

int be_conn_rollback(be_conn *c, be_error **err) {
  CONN_CHECK(c, "be_conn_rollback");
  int rc = note(c, c->drv->rollback(c->native, err));
  if (!c->drv->in_transaction(c->native)) c->tx_doomed = 0;
  return rc;
}

static int check_name(const char *name, be_error **err) {
  if (be__ident_valid(name)) return BE_OK;
  return be__error_field(err, "savepoint", "savepoint name must match [A-Za-z_][A-Za-z0-9_]{0,63}");
}

int be_conn_savepoint(be_conn *c, const char *name, be_error **err) {
  CONN_CHECK(c, "be_conn_savepoint");
  int rc = check_name(name, err);
  return rc ? rc : note(c, c->drv->savepoint(c->native, name, err));
}

int be_conn_release(be_conn *c, const char *name, be_error **err) {
  CONN_CHECK(c, "be_conn_release");
  int rc = check_name(name, err);
  return rc ? rc : note(c, c->drv->release(c->native, name, err));
}

int be_conn_rollback_to(be_conn *c, const char *name, be_error **err) {
  CONN_CHECK(c, "be_conn_rollback_to");
  int rc = check_name(name, err);
  return rc ? rc : note(c, c->drv->rollback_to(c->native, name, err));
}

int32_t be_conn_in_transaction(be_conn *c) {
  return c ? c->drv->in_transaction(c->native) : 0;
}

int64_t be_conn_last_insert_id(be_conn *c) { return c ? c->drv->last_insert_id(c->native) : 0; }
int64_t be_conn_changes(be_conn *c) { return c ? c->drv->changes(c->native) : 0; }

int be_conn_ping(be_conn *c, be_error **err) {
  CONN_CHECK(c, "be_conn_ping");
  return note(c, c->drv->ping(c->native, err));
}

int32_t be_conn_bind_limit(be_conn *c) { return c ? c->drv->bind_limit(c->native) : 0; }
int32_t be_conn_is_broken(const be_conn *c) { return c ? c->broken : 0; }

/* ---- internal hooks ---- */

int be__conn_observer_add(be_conn *c, be__stmt_observer fn, be__conn_close_fn on_close, void *ud,
                          be_error **err) {
  return be__conn_observer_add_ex(c, fn, on_close, ud, 0, 0, err);
}

int be__conn_observer_add_ex(be_conn *c, be__stmt_observer fn, be__conn_close_fn on_close, void *ud,
                             int64_t exact_over_ns, uint32_t flags, be_error **err) {
  if (c == NULL || fn == NULL)
    return be__error_set(err, BE_E_MISUSE, "be__conn_observer_add: NULL argument");
  for (int32_t i = 0; i < c->nobs; i++)
    if (c->obs[i].fn == fn && c->obs[i].ud == ud) return BE_OK;
  if (c->nobs == c->capobs) {
    int32_t cap = c->capobs ? c->capobs * 2 : 4;
    observer *o = be__realloc(c->obs, (size_t)cap * sizeof *o);
    if (o == NULL) return be__error_oom(err);
    c->obs = o;
    c->capobs = cap;
  }
  c->obs[c->nobs++] = (observer){fn, on_close, ud, exact_over_ns, flags};
  timer_update(c, !(flags & BE__OBS_NO_WEIGHT));
  return BE_OK;
}

int be__conn_observer_remove(be_conn *c, be__stmt_observer fn, void *ud) {
  if (c == NULL) return 0;
  for (int32_t i = 0; i < c->nobs; i++) {
    if (c->obs[i].fn == fn && c->obs[i].ud == ud) {
      /* keep the order: observers run in the order they were added */
      memmove(&c->obs[i], &c->obs[i + 1], (size_t)(c->nobs - i - 1) * sizeof c->obs[0]);
      if (--c->nobs == 0) { /* nothing attached: hold no memory */
        be__free(c->obs);
        c->obs = NULL;
        c->capobs = 0;
      }
      timer_update(c, 0);
      return 1;
    }
  }
  return 0;
}

int32_t be__conn_observer_count(const be_conn *c) { return c ? c->nobs : 0; }

void be__conn_run_counts(const be_conn *c, be__run_counts *out) {
  out->runs = atomic_load_explicit(&c->runs, memory_order_relaxed);
  out->rows = atomic_load_explicit(&c->run_rows, memory_order_relaxed);
  out->errors = atomic_load_explicit(&c->run_errors, memory_order_relaxed);
}

int32_t be__conn_observers_truncate(be_conn *c, int32_t keep) {
  return c ? observers_truncate(c, keep) : 0;
}

int64_t be__conn_reset_open_stmts(be_conn *c) {
  int64_t n = 0;
  for (be_stmt *s = c ? c->out_head : NULL; s; s = s->onext, n++) {
    if (s->running) observe_end(s, BE_OK);
    s->recount = c->recount_runs;
    if (note(c, c->drv->reset(s->native, NULL)) == BE_OK) bindings_cleared(s);
  }
  return n;
}
void be__conn_set_clock(be_conn *c, const be_clock *clock) {
  c->clock = clock;
  timer_update(c, 1);
}
void be__conn_set_pool_data(be_conn *c, void *data) { c->pool_data = data; }
void *be__conn_pool_data(const be_conn *c) { return c->pool_data; }
void be__conn_mark_broken(be_conn *c) { c->broken = 1; }
void *be__conn_native(be_conn *c) { return c->native; }
int64_t be__conn_open_stmts(const be_conn *c) { return c->open_stmts; }
uint64_t be__conn_observers_gen(const be_conn *c) { return c->obs_gen; }
void *be__conn_observer_ud(const be_conn *c, int32_t i) { return c->obs[i].ud; }
int be__conn_leftovers(const be_conn *c, uint64_t obs_gen) {
  if (c->open_stmts > 0 || c->obs_gen != obs_gen || c->broken) return 1;
  return c->drv->in_transaction(c->native); /* a tail call */
}
int32_t be__conn_tx_depth(const be_conn *c) { return c->tx_depth; }
void be__conn_set_tx_depth(be_conn *c, int32_t depth) { c->tx_depth = depth; }
void be__conn_doom_tx(be_conn *c) { c->tx_doomed = 1; }
const char *be__stmt_sql(const be_stmt *s) { return s->sql; }

/* ---- the optional operations of version-2 and version-3 driver tables ---- */

be__next_statement_fn be__driver_next_statement(const be_driver *d) {
  return d && d->version >= 2 ? d->next_statement : NULL;
}

be__table_exists_fn be__driver_table_exists(const be_driver *d) {
  return d && d->version >= 2 ? d->table_exists : NULL;
}

be__open_fn be__driver_open_existing(const be_driver *d) {
  return d && d->version >= 3 ? d->open_existing : NULL;
}

be__bind_text_fn be__driver_bind_text_static(const be_driver *d) {
  return d && d->version >= 3 ? d->bind_text_static : NULL;
}

be__status_fn be__driver_status(const be_driver *d) {
  return d && d->version >= 4 ? d->status : NULL;
}

int be__driver_notifies(const be_driver *d) {
  return d && d->version >= 5 && d->listen && d->notify && d->wait_notification;
}

static int notify_check(be_conn *c, const char *channel, be_error **err) {
  if (!be__driver_notifies(c->drv))
    return be__error_set(err, BE_E_UNSUPPORTED, "the %s driver has no notifications",
                         c->drv->name ? c->drv->name : "database");
  if (channel != NULL && !be__ident_valid(channel))
    return be__error_field(err, "channel", "must match [A-Za-z_][A-Za-z0-9_]{0,63}");
  return BE_OK;
}

int be__conn_listen(be_conn *c, const char *channel, be_error **err) {
  int rc = notify_check(c, channel, err);
  return rc != BE_OK ? rc : note(c, c->drv->listen(c->native, channel, err));
}

int be__conn_notify(be_conn *c, const char *channel, const char *payload, size_t payload_len,
                    be_error **err) {
  int rc = notify_check(c, channel, err);
  return rc != BE_OK ? rc : note(c, c->drv->notify(c->native, channel, payload, payload_len, err));
}

int be__conn_wait_notification(be_conn *c, int32_t *out_got, char *payload, size_t payload_cap,
                               size_t *out_len, int32_t wake_fd, int64_t timeout_ms,
                               be_error **err) {
  *out_got = 0;
  *out_len = 0;
  int rc = notify_check(c, NULL, err);
  if (rc != BE_OK) return rc;
  return note(c, c->drv->wait_notification(c->native, out_got, payload, payload_cap, out_len,
                                           wake_fd, timeout_ms, err));
}

int be__conn_status(be_conn *c, int32_t what, int64_t *out_value, int64_t *out_highwater,
                    char *text, size_t text_cap, be_error **err) {
  *out_value = *out_highwater = 0;
  if (text_cap) text[0] = '\0';
  be__status_fn fn = be__driver_status(c->drv);
  if (fn == NULL)
    return be__error_set(err, BE_E_UNSUPPORTED, "the %s driver reports no status",
                         c->drv->name ? c->drv->name : "database");
  return fn(c->native, what, out_value, out_highwater, text, text_cap, err);
}

int be__conn_splits_scripts(const be_conn *c) {
  return c && be__driver_next_statement(c->drv) != NULL;
}

int be__conn_next_statement(be_conn *c, size_t *out_stmt_len, const char *sql, size_t sql_len,
                            be_error **err) {
  *out_stmt_len = 0;
  be__next_statement_fn fn = be__driver_next_statement(c->drv);
  if (fn == NULL)
    return be__error_set(err, BE_E_UNSUPPORTED, "the %s driver cannot split SQL scripts",
                         c->drv->name ? c->drv->name : "database");
  return note(c, fn(c->native, out_stmt_len, sql, sql_len, err));
}

/* Whether table name exists, asked of the standard catalog. */
static int table_exists_in_catalog(be_conn *c, int32_t *out_exists, const char *name,
                                   be_error **err) {
  const char *sql = c->drv->placeholder_style == BE_PLACEHOLDER_DOLLAR
                      ? "SELECT 1 FROM information_schema.tables WHERE table_name = $1"
                      : "SELECT 1 FROM information_schema.tables WHERE table_name = ?";
  be_stmt *st = NULL;
  int rc = be_conn_prepare(&st, c, sql, err);
  if (rc != BE_OK) return rc;
  rc = be_stmt_bind_text(st, 1, name, BE_NUL_TERMINATED, err);
  if (rc == BE_OK) rc = be_stmt_step(st, err);
  *out_exists = rc == BE_ROW;
  if (rc == BE_ROW || rc == BE_DONE) rc = BE_OK;
  be_stmt_finalize(st);
  return rc;
}

int be__conn_table_exists(be_conn *c, int32_t *out_exists, const char *name, be_error **err) {
  *out_exists = 0;
  if (!be__ident_valid(name))
    return be__error_field(err, "name", "must match [A-Za-z_][A-Za-z0-9_]{0,63}");
  be__table_exists_fn fn = be__driver_table_exists(c->drv);
  if (fn == NULL) return table_exists_in_catalog(c, out_exists, name, err);
  return note(c, fn(c->native, out_exists, name, err));
}
