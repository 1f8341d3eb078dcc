/* SPDX-License-Identifier: MIT */
/* be_pool: connections from one driver, handed out under one mutex.
 *
 * Every connection lives in a slot (an array of max_conns, allocated once),
 * and its be_conn points back at the slot through the storage hook
 * be__conn_set_pool_data(), so release finds it in O(1). Idle slots are a
 * stack (top = most recently used). Waiters are records on their own stacks,
 * linked into a FIFO queue, each with its own condition variable: a release
 * hands the connection to the head waiter directly ("grant"), so nobody can
 * barge past the queue and nobody spins.
 *
 * Invariant: while anyone waits, the idle stack is empty and every slot is
 * taken (open, in use or being opened). A slot freed while waiters exist
 * (broken connection, lifetime end, failed open) is granted to the head
 * waiter as a reservation to open a new connection itself, so the releasing
 * thread never pays for an open.
 *
 * Nothing slow happens under the mutex: pings, opens, closes, rollbacks,
 * callbacks and log lines all run after unlocking. While a thread works on
 * the pool unlocked it holds a reference (`active`, or a slot in use /
 * opening), so be_pool_free() can hand the final free to the last one out
 * instead of waiting for it.
 *
 * The hot path (idle connection available, nobody waiting, idle shorter
 * than the validation window) reads the coarse clock once, takes the mutex
 * once, allocates nothing and records no histogram sample: acquires that
 * did not wait are counted, and the wait quantiles treat them as zeros.
 *
 * Query stats and the slow-query log are attached to each connection as it
 * opens (open_conn) and come off by themselves when it closes (a connection
 * drops its observers in be_conn_close), so no close path here has to
 * remember them; the pool frees its own stats and log only after its last
 * connection is closed. */
#include <backend/histogram.h>
#include <backend/log.h>
#include <backend/pool.h>
#include <backend/query_stats.h>
#include <backend/slowlog.h>
#include <backend/tx.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "error.h"
#include "log.h"
#include "pool.h"
#include "storage.h"
#include "versioned.h"

#if defined(__GNUC__) || defined(__clang__)
#  define LIKELY(x) __builtin_expect(!!(x), 1)
#  define UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#  define LIKELY(x) (x)
#  define UNLIKELY(x) (x)
#endif

enum { SLOT_FREE, SLOT_OPENING, SLOT_IDLE, SLOT_IN_USE };
enum { GRANT_NONE, GRANT_CONN, GRANT_CREATE, GRANT_CLOSED, GRANT_TIMEOUT };

typedef struct slot {
  be_conn *conn;
  be_pool *pool;
  int32_t state;
  int32_t leak_reported;
  const char *file; /* acquisition site, borrowed */
  int32_t line;
  pthread_t owner; /* thread that acquired it */
  int64_t created_ns;
  int64_t expires_ns;   /* INT64_MAX = never */
  int64_t last_used_ns; /* when it went idle */
  int64_t acquired_ns;
  int32_t base_obs; /* observers the pool attached (query stats, slow-query log) */
} slot;

typedef struct waiter {
  struct waiter *prev, *next;
  pthread_cond_t cond;
  slot *slot;    /* GRANT_CONN: a checked-out connection; GRANT_CREATE: a reserved slot */
  int32_t grant; /* GRANT_* */
  int64_t enq_ns;      /* pool clock */
  int64_t deadline_ns; /* pool clock */
  pthread_t thread;    /* the waiting caller: owner of a granted connection */
  const char *file;    /* its call site */
  int32_t line;
} waiter;

/* One leak report gathered under the lock, delivered after. */
typedef struct leak_note {
  char file[160]; /* copied: the holder may release (and an FFI caller free it) meanwhile */
  int32_t has_file;
  int32_t line;
  int64_t held_ns;
} leak_note;

struct be_pool {
  pthread_mutex_t mu;
  /* hot state, under mu */
  int32_t closed;
  int32_t idle_n;
  slot **idle; /* stack of max_conns; top = most recently used */
  waiter *wq_head, *wq_tail;
  int32_t waiting;
  int32_t in_use;
  int32_t opening;
  int32_t total;
  int32_t alert_at; /* in_use count that fires the usage alert; 0 = off */
  int32_t alert_armed;
  const be_clock *clock;
  int64_t window_ns; /* ping when idle longer than this */
  /* counters, under mu */
  uint64_t acquires, waited_ok, waits, handoffs, timeouts, deadlocks, open_failures;
  uint64_t creates, destroys, validations, broken, expired, idle_closed, rollbacks, leaks;
  /* configuration */
  slot *slots;
  int32_t min_conns, max_conns;
  int64_t acquire_timeout_ns, lifetime_ns, idle_timeout_ns, leak_ns;
  int32_t jitter_permille;
  int32_t deadlock_detection;
  be_pool_usage_fn on_usage;
  void *usage_ud;
  be_pool_leak_fn on_leak;
  void *leak_ud;
  const be_driver *driver;
  char *dsn;
  char *name;
  be_histogram *wait_hist;
  be_query_stats *qstats; /* attached to every connection */
  be_slowlog *slowlog;    /* attached to every connection; NULL = none */
  be_slowlog *own_slowlog; /* == slowlog when the pool made it (and frees it) */
  uint64_t rng;
  /* maintenance */
  int32_t maintaining;
  be_conn **scratch_conns; /* max_conns, used by the one running maintain */
  leak_note *scratch_leaks;
  /* lifecycle */
  int32_t active; /* threads working on the pool outside the lock */
  int32_t free_requested;
  int32_t bg_started;
  int32_t bg_stop;
  pthread_t bg;
  pthread_cond_t bg_cond;
  int64_t bg_interval_ns;
};

/* ---- small helpers ---- */

#define NS_PER_MS BE_NS_PER_MS


static int64_t add_sat(int64_t a, int64_t b) {
  if (b > 0 && a > INT64_MAX - b) return INT64_MAX;
  return a + b;
}

static uint64_t next_rand(be_pool *p) {
  /* xorshift64*: good enough to spread lifetimes */
  uint64_t x = p->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  p->rng = x;
  return x * UINT64_C(2685821657736338717);
}

/* ---- logging ---- */

typedef struct logf {
  be_log_field f[8];
  char buf[8][160];
  size_t n;
} logf;

static void lf_init(logf *l, const be_pool *p) {
  l->n = 0;
  l->f[0].key = "pool";
  l->f[0].value = p->name;
  l->n = 1;
}

static void lf_int(logf *l, const char *key, int64_t v) {
  if (l->n >= 8) return;
  snprintf(l->buf[l->n], sizeof l->buf[0], "%lld", (long long)v);
  l->f[l->n].key = key;
  l->f[l->n].value = l->buf[l->n];
  l->n++;
}

static void lf_site(logf *l, const char *file, int32_t line) {
  if (l->n >= 8) return;
  if (file) snprintf(l->buf[l->n], sizeof l->buf[0], "%.140s:%d", file, (int)line);
  else snprintf(l->buf[l->n], sizeof l->buf[0], "unknown");
  l->f[l->n].key = "acquired_at";
  l->f[l->n].value = l->buf[l->n];
  l->n++;
}

static void lf_emit(logf *l, int32_t level, const char *msg) { be_log(level, msg, l->f, l->n, NULL); }

/* ---- state transitions (all with mu held) ---- */

static void checkout(be_pool *p, slot *s, const char *file, int32_t line, int64_t now) {
  s->state = SLOT_IN_USE;
  s->owner = pthread_self();
  s->file = file;
  s->line = line;
  s->acquired_ns = now;
  s->leak_reported = 0;
  p->in_use++;
  p->acquires++;
}

/* Returns 1 when the usage alert should fire for the checkout just done. */
static inline int alert_due(be_pool *p) {
  if (p->in_use == p->alert_at && p->alert_armed) {
    p->alert_armed = 0;
    return 1;
  }
  return 0;
}

static inline void in_use_dec(be_pool *p) {
  p->in_use--;
  if (p->in_use < p->alert_at) p->alert_armed = 1;
}

static slot *reserve_slot(be_pool *p) {
  for (int32_t i = 0; i < p->max_conns; i++) {
    slot *s = &p->slots[i];
    if (s->state == SLOT_FREE) {
      s->state = SLOT_OPENING;
      s->conn = NULL;
      p->opening++;
      p->total++;
      return s;
    }
  }
  return NULL; /* unreachable while total < max_conns */
}

/* A slot whose connection was closed (or never opened) becomes free. */
static void slot_free(be_pool *p, slot *s) {
  s->state = SLOT_FREE;
  s->conn = NULL;
  s->file = NULL;
  p->total--;
}

static waiter *dequeue_head(be_pool *p) {
  waiter *w = p->wq_head;
  if (w == NULL) return NULL;
  p->wq_head = w->next;
  if (p->wq_head) p->wq_head->prev = NULL;
  else p->wq_tail = NULL;
  w->next = w->prev = NULL;
  p->waiting--;
  return w;
}

static void unlink_waiter(be_pool *p, waiter *w) {
  if (w->prev) w->prev->next = w->next;
  else p->wq_head = w->next;
  if (w->next) w->next->prev = w->prev;
  else p->wq_tail = w->prev;
  w->next = w->prev = NULL;
  p->waiting--;
}

/* Capacity became free (a slot went SLOT_FREE): if anyone waits, give the
 * head waiter a reservation to open a connection for itself. */
static void grant_capacity(be_pool *p) {
  if (p->wq_head == NULL || p->closed || p->total >= p->max_conns) return;
  slot *s = reserve_slot(p);
  if (s == NULL) return;
  waiter *w = dequeue_head(p);
  w->slot = s;
  w->grant = GRANT_CREATE;
  pthread_cond_signal(&w->cond);
}

/* An open connection is free for someone: the head waiter, or the idle
 * stack. `counted` says whether the slot is still counted in in_use (a
 * release): then a hand-off leaves in_use as it is, so a saturated pool
 * does not look like it dropped below the alert threshold and rose again. */
static void give_back(be_pool *p, slot *s, int64_t now, int counted) {
  waiter *w = dequeue_head(p);
  if (w) {
    s->state = SLOT_IN_USE;
    if (!counted) p->in_use++;
    p->handoffs++;
    /* the waiter holds it from now on (not the releaser, for the deadlock
     * check; not the old acquisition time, for the leak scan) */
    s->owner = w->thread;
    s->file = w->file;
    s->line = w->line;
    s->acquired_ns = now;
    s->leak_reported = 0;
    w->slot = s;
    w->grant = GRANT_CONN;
    pthread_cond_signal(&w->cond);
    return;
  }
  if (counted) in_use_dec(p);
  s->state = SLOT_IDLE;
  s->last_used_ns = now;
  p->idle[p->idle_n++] = s;
}

static int64_t lifetime_end(be_pool *p, int64_t created) {
  if (p->lifetime_ns <= 0) return INT64_MAX;
  int64_t cut = 0;
  if (p->jitter_permille > 0) {
    int64_t span = p->lifetime_ns / 1000 * p->jitter_permille;
    if (span > 0) cut = (int64_t)(next_rand(p) % (uint64_t)(span + 1));
  }
  return add_sat(created, p->lifetime_ns - cut);
}

/* 1 when the pool may be freed now: free was asked for and nobody is left. */
static int last_one_out(const be_pool *p) {
  return p->free_requested && p->in_use == 0 && p->opening == 0 && p->active == 0;
}

static void pool_destroy(be_pool *p);

static void unlock_maybe_destroy(be_pool *p) {
  int destroy = last_one_out(p);
  pthread_mutex_unlock(&p->mu);
  if (destroy) pool_destroy(p);
}

static int thread_holds_one(const be_pool *p) {
  pthread_t self = pthread_self();
  for (int32_t i = 0; i < p->max_conns; i++) {
    const slot *s = &p->slots[i];
    if (s->state == SLOT_IN_USE && pthread_equal(s->owner, self)) return 1;
  }
  return 0;
}

static const slot *longest_holder(const be_pool *p) {
  const slot *best = NULL;
  for (int32_t i = 0; i < p->max_conns; i++) {
    const slot *s = &p->slots[i];
    if (s->state == SLOT_IN_USE && (best == NULL || s->acquired_ns < best->acquired_ns)) best = s;
  }
  return best;
}

/* ---- events delivered after unlocking ---- */

static void fire_usage_alert(be_pool *p, int32_t in_use, int32_t waiting) {
  if (be__log_enabled(BE_LOG_WARN)) {
    logf l;
    lf_init(&l, p);
    lf_int(&l, "in_use", in_use);
    lf_int(&l, "max", p->max_conns);
    lf_int(&l, "waiting", waiting);
    lf_emit(&l, BE_LOG_WARN, "pool usage high");
  }
  if (p->on_usage) p->on_usage(p, in_use, p->max_conns, waiting, p->usage_ud);
}

/* ---- opening ---- */

static int open_conn(be_pool *p, slot *s, be_error **cause) {
  be_conn *c = NULL;
  int rc = be_conn_open(&c, p->driver, p->dsn, cause);
  if (rc != BE_OK) return rc;
  /* statements are timed on the pool's clock: a fake clock drives the
   * slow-query log and the latency histogram in tests */
  be__conn_set_clock(c, p->clock);
  rc = be_query_stats_attach(p->qstats, c, cause);
  if (rc == BE_OK && p->slowlog) rc = be_slowlog_attach(p->slowlog, c, cause);
  if (rc != BE_OK) { /* out of memory: closing detaches what was attached */
    be_conn_close(c);
    return rc;
  }
  be__conn_set_pool_data(c, s);
  s->conn = c;
  s->base_obs = be__conn_observer_count(c);
  return BE_OK;
}

/* With mu held and s reserved (SLOT_OPENING): open a connection for the
 * caller, unlocked. Returns with mu held: BE_OK and s checked out, or an
 * error code with *cause set and the reservation passed on. */
static int create_for_caller(be_pool *p, slot *s, const char *file, int32_t line,
                             be_error **cause) {
  pthread_mutex_unlock(&p->mu);
  int rc = open_conn(p, s, cause);
  int64_t now = be__clock_coarse_ns(p->clock);
  be_conn *orphan = NULL;
  pthread_mutex_lock(&p->mu);
  p->opening--;
  if (rc == BE_OK && p->closed) {
    orphan = s->conn;
    p->creates++;
    p->destroys++;
    slot_free(p, s);
    rc = BE_E_POOL_CLOSED;
  } else if (rc == BE_OK) {
    p->creates++;
    s->created_ns = now;
    s->expires_ns = lifetime_end(p, now);
    checkout(p, s, file, line, now);
  } else {
    p->open_failures++;
    slot_free(p, s);
    grant_capacity(p);
  }
  if (orphan) {
    /* rare: close unlocked, holding a reference so free waits for us */
    p->active++;
    pthread_mutex_unlock(&p->mu);
    be_conn_close(orphan);
    pthread_mutex_lock(&p->mu);
    p->active--;
  }
  return rc;
}

/* ---- acquire ---- */

static int fail_unreachable(be_pool *p, be_error *cause, be_error **err) {
  if (be_error_code(cause) == BE_E_NOMEM) {
    be_error_free(cause);
    return be__error_oom(err);
  }
  if (be__log_enabled(BE_LOG_ERROR)) {
    logf l;
    lf_init(&l, p);
    lf_emit(&l, BE_LOG_ERROR, "pool cannot open a connection");
  }
  return be__error_wrap(err, BE_E_DB_UNREACHABLE, cause, "%s: database unreachable: %s", p->name,
                        cause ? be_error_message(cause) : "open failed");
}

/* The result of a finished wait goes into the histogram (unlocked). */
static void record_wait(be_pool *p, int64_t enq_ns) {
  int64_t d = be_clock_now_ns(p->clock) - enq_ns;
  be_histogram_record(p->wait_hist, d < 0 ? 0 : d);
}

/* Drop the reference a slow path held; the last one out frees the pool. */
static void unref(be_pool *p) {
  pthread_mutex_lock(&p->mu);
  p->active--;
  unlock_maybe_destroy(p);
}

/* A successful slow acquire: mu held, s checked out to the caller. The
 * slot now keeps the pool alive, so the reference is dropped before
 * unlocking. */
static int slow_success(be_pool *p, slot *s, be_conn **out, int queued, int64_t enq_ns) {
  if (queued) {
    p->waited_ok++;
    record_wait(p, enq_ns);
  }
  int alert = alert_due(p);
  int32_t in_use = p->in_use, waiting = p->waiting;
  p->active--;
  pthread_mutex_unlock(&p->mu);
  if (alert) fire_usage_alert(p, in_use, waiting);
  *out = s->conn;
  return BE_OK;
}

/* A failed open (mu held): unlock, build the error, drop the reference. */
static int slow_open_failed(be_pool *p, int rc, be_error *cause, int queued, int64_t enq_ns,
                            be_error **err) {
  if (queued) record_wait(p, enq_ns);
  pthread_mutex_unlock(&p->mu);
  if (rc == BE_E_POOL_CLOSED) {
    be_error_free(cause);
    rc = be__error_set(err, rc, "%s: pool is closed", p->name);
  } else {
    rc = fail_unreachable(p, cause, err);
  }
  unref(p);
  return rc;
}

/* Called with mu held; returns with it released. The whole slow path
 * holds a reference (active), so a concurrent be_pool_free() cannot free
 * the pool under a caller that is still on its way out. */
static int acquire_slow(be_pool *p, be_conn **out, const char *file, int32_t line,
                        be_error **err) {
  be_error *cause = NULL;
  p->active++;
  for (;;) {
    if (p->closed) {
      pthread_mutex_unlock(&p->mu);
      int rc = be__error_set(err, BE_E_POOL_CLOSED, "%s: pool is closed", p->name);
      unref(p);
      return rc;
    }
    if (p->wq_head == NULL && p->idle_n > 0) {
      slot *s = p->idle[--p->idle_n];
      int64_t now = be__clock_coarse_ns(p->clock);
      if (now >= s->expires_ns) {
        be_conn *c = s->conn;
        p->expired++;
        p->destroys++;
        slot_free(p, s);
        pthread_mutex_unlock(&p->mu);
        be_conn_close(c);
        pthread_mutex_lock(&p->mu);
        continue;
      }
      checkout(p, s, file, line, now);
      if (now - s->last_used_ns <= p->window_ns) return slow_success(p, s, out, 0, 0);
      p->validations++;
      pthread_mutex_unlock(&p->mu);
      int ok = be_conn_ping(s->conn, NULL) == BE_OK;
      if (!ok) {
        be_conn_close(s->conn);
        s->conn = NULL;
        if (be__log_enabled(BE_LOG_INFO)) {
          logf l;
          lf_init(&l, p);
          lf_emit(&l, BE_LOG_INFO, "pool replaced a dead idle connection");
        }
      }
      pthread_mutex_lock(&p->mu);
      if (ok) return slow_success(p, s, out, 0, 0);
      p->acquires--;
      p->broken++;
      p->destroys++;
      in_use_dec(p);
      if (p->idle_n > 0 || p->closed) { /* try the next idle one */
        slot_free(p, s);
        continue;
      }
      /* keep the capacity: open a replacement in the same slot */
      s->state = SLOT_OPENING;
      p->opening++;
      int rc = create_for_caller(p, s, file, line, &cause);
      if (rc == BE_OK) return slow_success(p, s, out, 0, 0);
      return slow_open_failed(p, rc, cause, 0, 0, err);
    }
    if (p->wq_head == NULL && p->total < p->max_conns) {
      slot *s = reserve_slot(p);
      int rc = create_for_caller(p, s, file, line, &cause);
      if (rc == BE_OK) return slow_success(p, s, out, 0, 0);
      return slow_open_failed(p, rc, cause, 0, 0, err);
    }

    /* Full: wait, unless waiting could never end. */
    if (p->deadlock_detection && thread_holds_one(p)) {
      int32_t in_use = p->in_use, max = p->max_conns, waiting = p->waiting;
      p->deadlocks++;
      pthread_mutex_unlock(&p->mu);
      if (be__log_enabled(BE_LOG_ERROR)) {
        logf l;
        lf_init(&l, p);
        lf_int(&l, "in_use", in_use);
        lf_int(&l, "max", max);
        lf_site(&l, file, line);
        lf_emit(&l, BE_LOG_ERROR, "pool self-deadlock: thread already holds a connection");
      }
      int rc = be__error_set(err, BE_E_POOL_DEADLOCK,
                             "%s: this thread already holds a connection and the pool is full "
                             "(in_use=%d max=%d waiting=%d); waiting could never end",
                             p->name, (int)in_use, (int)max, (int)waiting);
      unref(p);
      return rc;
    }
    break;
  }

  /* Queue up, on our own condition variable, until granted or timed out. */
  int queued = 0;
  int64_t enq_ns = 0;
  waiter w;
  memset(&w, 0, sizeof w);
  if (p->acquire_timeout_ns > 0 && be__cond_init_monotonic(&w.cond) == 0) {
    struct timespec ts;
    be__clock_deadline_after(&ts, p->acquire_timeout_ns);
    enq_ns = be_clock_now_ns(p->clock);
    w.enq_ns = enq_ns;
    w.deadline_ns = add_sat(enq_ns, p->acquire_timeout_ns);
    w.thread = pthread_self();
    w.file = file;
    w.line = line;
    w.prev = p->wq_tail;
    if (p->wq_tail) p->wq_tail->next = &w;
    else p->wq_head = &w;
    p->wq_tail = &w;
    p->waiting++;
    p->waits++;
    queued = 1;
    while (w.grant == GRANT_NONE) {
      int rc = pthread_cond_timedwait(&w.cond, &p->mu, &ts);
      if (rc == ETIMEDOUT && w.grant == GRANT_NONE) {
        unlink_waiter(p, &w);
        w.grant = GRANT_TIMEOUT;
      }
    }
    pthread_cond_destroy(&w.cond);
  } else {
    w.grant = GRANT_TIMEOUT; /* waiting not allowed (or no condvar) */
  }

  if (w.grant == GRANT_CONN) { /* give_back() checked it out for us */
    p->acquires++;
    return slow_success(p, w.slot, out, queued, enq_ns);
  }
  if (w.grant == GRANT_CREATE) {
    int rc = create_for_caller(p, w.slot, file, line, &cause);
    if (rc == BE_OK) return slow_success(p, w.slot, out, queued, enq_ns);
    return slow_open_failed(p, rc, cause, queued, enq_ns, err);
  }
  if (queued) record_wait(p, enq_ns);
  if (w.grant == GRANT_CLOSED) {
    pthread_mutex_unlock(&p->mu);
    int rc = be__error_set(err, BE_E_POOL_CLOSED, "%s: pool closed while waiting", p->name);
    unref(p);
    return rc;
  }

  /* GRANT_TIMEOUT: say what the pool looked like, and who holds the longest. */
  p->timeouts++;
  int32_t in_use = p->in_use, idle = p->idle_n, waiting = p->waiting, max = p->max_conns;
  const slot *h = longest_holder(p);
  int64_t now = be__clock_coarse_ns(p->clock);
  int64_t held_ms = h ? (now - h->acquired_ns) / NS_PER_MS : 0;
  int64_t timeout_ms = p->acquire_timeout_ns / NS_PER_MS;
  char site[160]; /* the holder may release (and its file go) once we unlock */
  if (h && h->file) snprintf(site, sizeof site, "%.140s:%d", h->file, (int)h->line);
  else snprintf(site, sizeof site, "unknown");
  pthread_mutex_unlock(&p->mu);
  if (be__log_enabled(BE_LOG_WARN)) {
    logf l;
    lf_init(&l, p);
    lf_int(&l, "in_use", in_use);
    lf_int(&l, "idle", idle);
    lf_int(&l, "waiting", waiting);
    lf_int(&l, "max", max);
    lf_int(&l, "timeout_ms", timeout_ms);
    lf_emit(&l, BE_LOG_WARN, "pool exhausted");
  }
  int rc = be__error_set(err, BE_E_POOL_EXHAUSTED,
                         "%s: no connection free within %lld ms (in_use=%d idle=%d waiting=%d "
                         "max=%d); longest held %lld ms, acquired at %s",
                         p->name, (long long)timeout_ms, (int)in_use, (int)idle, (int)waiting,
                         (int)max, (long long)held_ms, site);
  unref(p);
  return rc;
}

int be_pool_acquire_at(be_conn **out, be_pool *p, const char *file, int32_t line, be_error **err) {
  if (out) *out = NULL;
  if (UNLIKELY(p == NULL || out == NULL))
    return be__error_set(err, BE_E_MISUSE, "be_pool_acquire: %s is NULL", p ? "out" : "pool");
  int64_t now = be__clock_coarse_ns(p->clock);
  pthread_mutex_lock(&p->mu);
  if (LIKELY(p->idle_n > 0 && p->wq_head == NULL && !p->closed)) {
    slot *s = p->idle[p->idle_n - 1];
    if (LIKELY(now - s->last_used_ns <= p->window_ns && now < s->expires_ns)) {
      p->idle_n--;
      checkout(p, s, file, line, now);
      if (UNLIKELY(p->in_use == p->alert_at) && p->alert_armed) {
        p->alert_armed = 0;
        int32_t in_use = p->in_use, waiting = p->waiting;
        pthread_mutex_unlock(&p->mu);
        fire_usage_alert(p, in_use, waiting);
      } else {
        pthread_mutex_unlock(&p->mu);
      }
      *out = s->conn;
      return BE_OK;
    }
  }
  return acquire_slow(p, out, file, line, err);
}

int(be_pool_acquire)(be_conn **out, be_pool *p, be_error **err) {
  return be_pool_acquire_at(out, p, NULL, 0, err);
}

/* ---- release ---- */

static void log_release_issue(be_pool *p, const char *msg, const char *file, int32_t line,
                              int64_t n) {
  if (!be__log_enabled(BE_LOG_WARN)) return;
  logf l;
  lf_init(&l, p);
  lf_site(&l, file, line);
  if (n >= 0) lf_int(&l, "count", n);
  lf_emit(&l, BE_LOG_WARN, msg);
}

void be_pool_release(be_pool *p, be_conn *c) {
  if (p == NULL || c == NULL) return;
  slot *s = be__conn_pool_data(c);
  if (UNLIKELY(s == NULL || s->pool != p)) {
    if (be__log_enabled(BE_LOG_ERROR)) {
      logf l;
      lf_init(&l, p);
      lf_emit(&l, BE_LOG_ERROR, "be_pool_release: connection does not belong to this pool");
    }
    return;
  }
  /* The caller still owns c here, so it is safe to look at unlocked.
   * Nothing of this holder's may reach the next one: statements left
   * pending (they hold a read snapshot), an open transaction, observers
   * it attached (a scope it did not end). */
  int rolled_back = 0, destroy = 0;
  int64_t pending = be__conn_open_stmts(c);
  if (UNLIKELY(pending > 0)) {
    be__conn_reset_open_stmts(c);
    log_release_issue(p, "pool connection released with statements not finalized; reset",
                      s->file, s->line, pending);
  }
  if (UNLIKELY(be_conn_in_transaction(c))) {
    rolled_back = 1;
    if (be_conn_rollback(c, NULL) != BE_OK) destroy = 1;
    be__conn_set_tx_depth(c, 0);
    log_release_issue(p, "pool connection released with an open transaction; rolled back",
                      s->file, s->line, -1);
  }
  if (UNLIKELY(be__conn_observer_count(c) > s->base_obs)) {
    int32_t n = be__conn_observers_truncate(c, s->base_obs);
    log_release_issue(p, "pool connection released with observers attached (a scope not ended?); "
                      "detached", s->file, s->line, n);
  }
  if (UNLIKELY(be_conn_is_broken(c))) destroy = 1;
  int64_t now = be__clock_coarse_ns(p->clock);

  pthread_mutex_lock(&p->mu);
  if (UNLIKELY(s->state != SLOT_IN_USE)) {
    pthread_mutex_unlock(&p->mu);
    if (be__log_enabled(BE_LOG_ERROR)) {
      logf l;
      lf_init(&l, p);
      lf_emit(&l, BE_LOG_ERROR, "be_pool_release: connection is not checked out (released twice?)");
    }
    return;
  }
  if (UNLIKELY(rolled_back)) p->rollbacks++;
  int leak_resolved = s->leak_reported;
  if (LIKELY(!destroy && !p->closed && now < s->expires_ns && !leak_resolved)) {
    give_back(p, s, now, 1);
    pthread_mutex_unlock(&p->mu);
    return;
  }
  const char *file = s->file;
  int32_t line = s->line;
  int64_t held = now - s->acquired_ns;
  int close_it = destroy || p->closed || now >= s->expires_ns;
  if (close_it) {
    in_use_dec(p);
    if (destroy) p->broken++;
    else if (!p->closed) p->expired++;
    p->destroys++;
    slot_free(p, s);
    grant_capacity(p);
  } else {
    give_back(p, s, now, 1);
  }
  p->active++; /* keep the pool while we finish unlocked */
  pthread_mutex_unlock(&p->mu);
  if (close_it) be_conn_close(c);
  if (leak_resolved && be__log_enabled(BE_LOG_INFO)) {
    logf l;
    lf_init(&l, p);
    lf_site(&l, file, line);
    lf_int(&l, "held_ms", held / NS_PER_MS);
    lf_emit(&l, BE_LOG_INFO, "pool leak resolved: connection released");
  }
  unref(p);
}

/* ---- transactions ---- */

typedef struct tx_tramp {
  be_tx_fn fn;
  void *ud;
  int32_t ran;
} tx_tramp;

static int tx_trampoline(be_conn *c, void *ud, be_error **err) {
  tx_tramp *t = ud;
  t->ran = 1;
  return t->fn(c, t->ud, err);
}

int be_pool_tx_run_ex(be_pool *p, const be_tx_options *opts, be_tx_fn fn, void *ud,
                      be_error **err) {
  if (p == NULL || fn == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_pool_tx_run: %s is NULL", p ? "fn" : "pool");
  for (int attempt = 0;; attempt++) {
    be_conn *c = NULL;
    int rc = be_pool_acquire_at(&c, p, "be_pool_tx_run", 0, err);
    if (rc != BE_OK) return rc;
    tx_tramp t = {fn, ud, 0};
    be_error *e = NULL;
    rc = be_tx_run_ex(c, opts, tx_trampoline, &t, &e);
    int lost_before_start = rc == BE_E_CONN_LOST && !t.ran && be_conn_is_broken(c);
    be_pool_release(p, c); /* a broken one is closed here */
    if (lost_before_start && attempt == 0) {
      be_error_free(e);
      continue;
    }
    if (rc != BE_OK) {
      be__error_give(err, e);
      return rc;
    }
    be_error_free(e);
    return BE_OK;
  }
}

int be_pool_tx_run(be_pool *p, int32_t mode, be_tx_fn fn, void *ud, be_error **err) {
  be_tx_options o = BE_TX_OPTIONS_INIT;
  o.mode = mode;
  return be_pool_tx_run_ex(p, &o, fn, ud, err);
}

/* ---- maintenance ---- */

static void remove_idle_at(be_pool *p, int32_t i) {
  memmove(&p->idle[i], &p->idle[i + 1], (size_t)(p->idle_n - i - 1) * sizeof p->idle[0]);
  p->idle_n--;
}

int be_pool_maintain(be_pool *p, be_error **err) {
  if (p == NULL) return be__error_set(err, BE_E_MISUSE, "be_pool_maintain: pool is NULL");
  pthread_mutex_lock(&p->mu);
  if (p->closed) {
    pthread_mutex_unlock(&p->mu);
    return be__error_set(err, BE_E_POOL_CLOSED, "%s: pool is closed", p->name);
  }
  if (p->maintaining) { /* another thread is at it right now */
    pthread_mutex_unlock(&p->mu);
    return BE_OK;
  }
  p->maintaining = 1;
  p->active++;
  int64_t now = be_clock_now_ns(p->clock);

  /* 1. waiters past their deadline on the pool clock (fake clocks) */
  for (waiter *w = p->wq_head, *next; w; w = next) {
    next = w->next;
    if (now >= w->deadline_ns) {
      unlink_waiter(p, w);
      w->grant = GRANT_TIMEOUT;
      pthread_cond_signal(&w->cond);
    }
  }

  /* 2. idle connections past lifetime or idle too long, least recently used first */
  int32_t nclose = 0;
  for (int32_t i = 0; i < p->idle_n;) {
    slot *s = p->idle[i];
    int expired = now >= s->expires_ns;
    int reap = !expired && p->idle_timeout_ns > 0 && p->total > p->min_conns &&
               now - s->last_used_ns > p->idle_timeout_ns;
    if (expired || reap) {
      if (expired) p->expired++;
      else p->idle_closed++;
      p->destroys++;
      p->scratch_conns[nclose++] = s->conn;
      remove_idle_at(p, i);
      slot_free(p, s);
    } else {
      i++;
    }
  }

  /* 3. leak reports */
  int32_t nleak = 0;
  if (p->leak_ns > 0) {
    for (int32_t i = 0; i < p->max_conns; i++) {
      slot *s = &p->slots[i];
      if (s->state == SLOT_IN_USE && !s->leak_reported && now - s->acquired_ns > p->leak_ns) {
        s->leak_reported = 1;
        p->leaks++;
        leak_note *n = &p->scratch_leaks[nleak];
        n->has_file = s->file != NULL;
        snprintf(n->file, sizeof n->file, "%s", s->file ? s->file : "");
        n->line = s->line;
        p->scratch_leaks[nleak].held_ns = now - s->acquired_ns;
        nleak++;
      }
    }
  }

  /* 4. refill to min */
  int32_t need = p->min_conns - p->total;
  if (need < 0) need = 0;
  slot *reserved[64];
  int32_t nres = 0;
  while (nres < need && nres < 64) {
    slot *s = reserve_slot(p);
    if (s == NULL) break;
    reserved[nres++] = s;
  }
  pthread_mutex_unlock(&p->mu);

  for (int32_t i = 0; i < nclose; i++) be_conn_close(p->scratch_conns[i]);
  for (int32_t i = 0; i < nleak; i++) {
    leak_note *n = &p->scratch_leaks[i];
    if (be__log_enabled(BE_LOG_WARN)) {
      logf l;
      lf_init(&l, p);
      lf_site(&l, n->has_file ? n->file : NULL, n->line);
      lf_int(&l, "held_ms", n->held_ns / NS_PER_MS);
      lf_emit(&l, BE_LOG_WARN, "pool connection held longer than the leak threshold");
    }
    if (p->on_leak) p->on_leak(p, n->has_file ? n->file : NULL, n->line, n->held_ns, p->leak_ud);
  }

  int rc = BE_OK;
  be_error *cause = NULL;
  for (int32_t i = 0; i < nres; i++) {
    slot *s = reserved[i];
    be_error *e = NULL;
    int orc = open_conn(p, s, &e);
    int64_t t = be__clock_coarse_ns(p->clock);
    be_conn *orphan = NULL;
    pthread_mutex_lock(&p->mu);
    p->opening--;
    if (orc == BE_OK) {
      p->creates++;
      s->created_ns = t;
      s->expires_ns = lifetime_end(p, t);
      if (p->closed) {
        orphan = s->conn;
        p->destroys++;
        slot_free(p, s);
      } else {
        give_back(p, s, t, 0);
      }
    } else {
      p->open_failures++;
      slot_free(p, s);
      grant_capacity(p);
    }
    pthread_mutex_unlock(&p->mu);
    if (orphan) be_conn_close(orphan);
    if (orc != BE_OK) {
      if (rc == BE_OK) {
        rc = BE_E_DB_UNREACHABLE;
        cause = e;
      } else {
        be_error_free(e);
      }
    }
  }

  pthread_mutex_lock(&p->mu);
  p->maintaining = 0;
  p->active--;
  int destroy = last_one_out(p);
  pthread_mutex_unlock(&p->mu);
  if (rc != BE_OK && be_error_code(cause) == BE_E_NOMEM) {
    be_error_free(cause);
    rc = be__error_oom(err);
  } else if (rc != BE_OK)
    rc = be__error_wrap(err, BE_E_DB_UNREACHABLE, cause,
                        "%s: maintenance could not open connections up to min_conns: %s", p->name,
                        cause ? be_error_message(cause) : "open failed");
  if (destroy) pool_destroy(p);
  return rc;
}

/* ---- stats ---- */

static int64_t wait_quantile(const be_pool *p, uint64_t zeros, uint64_t n, double q) {
  uint64_t total = zeros + n;
  if (total == 0) return 0;
  uint64_t rank = (uint64_t)(q * (double)total);
  if ((double)rank < q * (double)total) rank++;
  if (rank < 1) rank = 1;
  if (rank > total) rank = total;
  if (rank <= zeros || n == 0) return 0;
  uint64_t r = rank - zeros;
  return be_histogram_quantile(p->wait_hist, ((double)r - 0.5) / (double)n);
}

static const size_t stats_size[] = {0, sizeof(be_pool_stats)};

int be_pool_stats_init(be_pool_stats *out, uint32_t version) {
  static const be_pool_stats defaults = BE_POOL_STATS_INIT;
  return be__versioned_init(out, sizeof *out, &defaults, version, BE_POOL_STATS_VERSION);
}

int be_pool_stats_get(be_pool_stats *out, be_pool *p, be_error **err) {
  if (p == NULL || out == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_pool_stats_get: %s is NULL", p ? "out" : "pool");
  uint32_t version = out->version;
  if (version < 1 || version > BE_POOL_STATS_VERSION)
    return be__error_set(err, BE_E_MISUSE, "be_pool_stats_get: unknown stats version %u",
                         (unsigned)version);
  be_pool_stats s;
  memset(&s, 0, sizeof s);
  s.version = version;
  pthread_mutex_lock(&p->mu);
  int64_t now = be_clock_now_ns(p->clock);
  s.in_use = p->in_use;
  s.idle = p->idle_n;
  s.waiting = p->waiting;
  s.opening = p->opening;
  s.total = p->total;
  s.min_conns = p->min_conns;
  s.max_conns = p->max_conns;
  s.acquires = p->acquires;
  s.waits = p->waits;
  s.handoffs = p->handoffs;
  s.timeouts = p->timeouts;
  s.deadlocks = p->deadlocks;
  s.open_failures = p->open_failures;
  s.creates = p->creates;
  s.destroys = p->destroys;
  s.validations = p->validations;
  s.broken = p->broken;
  s.expired = p->expired;
  s.idle_closed = p->idle_closed;
  s.rollbacks = p->rollbacks;
  s.leaks = p->leaks;
  s.oldest_waiter_ns = p->wq_head ? now - p->wq_head->enq_ns : 0;
  const slot *h = longest_holder(p);
  s.longest_held_ns = h ? be__clock_coarse_ns(p->clock) - h->acquired_ns : 0;
  if (s.longest_held_ns < 0) s.longest_held_ns = 0;
  if (s.oldest_waiter_ns < 0) s.oldest_waiter_ns = 0;
  uint64_t zeros = p->acquires - p->waited_ok;
  pthread_mutex_unlock(&p->mu);
  uint64_t n = be_histogram_count(p->wait_hist);
  s.wait_p50_ns = wait_quantile(p, zeros, n, 0.50);
  s.wait_p95_ns = wait_quantile(p, zeros, n, 0.95);
  s.wait_p99_ns = wait_quantile(p, zeros, n, 0.99);
  s.wait_max_ns = be_histogram_max(p->wait_hist);
  memcpy(out, &s, stats_size[version]);
  return BE_OK;
}

/* ---- options ---- */

int be_pool_options_init(be_pool_options *o, uint32_t version) {
  if (o == NULL || version != BE_POOL_OPTIONS_VERSION) return BE_E_MISUSE;
  /* static: padding is zero too, so the result equals BE_POOL_OPTIONS_INIT byte for byte */
  static const be_pool_options d = BE_POOL_OPTIONS_INIT;
  memcpy(o, &d, sizeof *o);
  return BE_OK;
}

static int check_options(const be_pool_options *o, be_error **err) {
  if (o->version != BE_POOL_OPTIONS_VERSION)
    return be__error_set(err, BE_E_MISUSE, "be_pool_new: unknown options version %u",
                         (unsigned)o->version);
  if (o->driver == NULL) return be__error_set(err, BE_E_MISUSE, "be_pool_new: driver is NULL");
  if (o->dsn == NULL) return be__error_set(err, BE_E_MISUSE, "be_pool_new: dsn is NULL");
  if (o->max_conns < 1) return be__error_field(err, "max_conns", "must be at least 1");
  if (o->min_conns < 0) return be__error_field(err, "min_conns", "must not be negative");
  if (o->min_conns > o->max_conns)
    return be__error_field(err, "min_conns", "must not exceed max_conns (%d > %d)",
                           (int)o->min_conns, (int)o->max_conns);
  if (o->acquire_timeout_ms < 0)
    return be__error_field(err, "acquire_timeout_ms", "must not be negative");
  if (o->validation_window_ms < -1)
    return be__error_field(err, "validation_window_ms", "must be -1 (never), 0 (always) or more");
  if (o->max_lifetime_ms < 0) return be__error_field(err, "max_lifetime_ms", "must not be negative");
  if (o->lifetime_jitter_permille < 0 || o->lifetime_jitter_permille > 1000)
    return be__error_field(err, "lifetime_jitter_permille", "must be within 0..1000");
  if (o->usage_alert_percent < 0 || o->usage_alert_percent > 100)
    return be__error_field(err, "usage_alert_percent", "must be within 0..100");
  if (o->idle_timeout_ms < 0) return be__error_field(err, "idle_timeout_ms", "must not be negative");
  if (o->leak_threshold_ms < 0)
    return be__error_field(err, "leak_threshold_ms", "must not be negative");
  if (o->background_thread && o->maintenance_interval_ms <= 0)
    return be__error_field(err, "maintenance_interval_ms", "must be positive with a background thread");
  if (o->slowlog == NULL && o->slow_query_threshold_ms < -1)
    return be__error_field(err, "slow_query_threshold_ms",
                           "must be -1 (no slow-query log), 0 (every statement) or more");
  if (o->slowlog == NULL && o->slow_query_threshold_ms >= 0 &&
      (o->slow_query_capacity < 1 || o->slow_query_capacity > 65536))
    return be__error_field(err, "slow_query_capacity", "must be within 1..65536");
  return BE_OK;
}

/* ---- lifecycle ---- */

/* Release what be_pool_new() allocated (any of it may be NULL). */
static void pool_free_parts(be_pool *p) {
  be_slowlog_free(p->own_slowlog);
  be_query_stats_free(p->qstats);
  be_histogram_free(p->wait_hist);
  be__free(p->scratch_leaks);
  be__free(p->scratch_conns);
  be__free(p->idle);
  be__free(p->slots);
  be__free(p->dsn);
  be__free(p->name);
  be__free(p);
}

static void pool_destroy(be_pool *p) {
  /* every slot is free or idle-and-already-closed by now; closing the idle
   * ones detaches them, so nothing is attached to the stats and the log
   * when pool_free_parts() frees them */
  for (int32_t i = 0; i < p->idle_n; i++) be_conn_close(p->idle[i]->conn);
  pthread_mutex_destroy(&p->mu);
  if (p->bg_started) pthread_cond_destroy(&p->bg_cond);
  pool_free_parts(p);
}

static void *bg_main(void *arg) {
  be_pool *p = arg;
  pthread_mutex_lock(&p->mu);
  while (!p->bg_stop) {
    struct timespec ts;
    be__clock_deadline_after(&ts, p->bg_interval_ns);
    int rc = 0;
    while (!p->bg_stop && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&p->bg_cond, &p->mu, &ts);
    if (p->bg_stop) break;
    pthread_mutex_unlock(&p->mu);
    be_pool_maintain(p, NULL);
    pthread_mutex_lock(&p->mu);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

int be_pool_new(be_pool **out, const be_pool_options *o, be_error **err) {
  if (out) *out = NULL;
  if (out == NULL || o == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_pool_new: %s is NULL", out ? "options" : "out");
  int rc = check_options(o, err);
  if (rc != BE_OK) return rc;

  be_pool *p = be__calloc(1, sizeof *p);
  if (p == NULL) return be__error_oom(err);
  size_t n = (size_t)o->max_conns;
  p->slots = be__calloc(n, sizeof *p->slots);
  p->idle = be__calloc(n, sizeof *p->idle);
  p->scratch_conns = be__calloc(n, sizeof *p->scratch_conns);
  p->scratch_leaks = be__calloc(n, sizeof *p->scratch_leaks);
  p->dsn = be__strdup(o->dsn);
  p->name = be__strdup(o->name ? o->name : "pool");
  int hrc = be_histogram_new(&p->wait_hist, NULL);
  if (p->slots == NULL || p->idle == NULL || p->scratch_conns == NULL ||
      p->scratch_leaks == NULL || p->dsn == NULL || p->name == NULL || hrc != BE_OK) {
    pool_free_parts(p);
    return be__error_oom(err);
  }
  /* the query stats and the slow-query log fail only for memory or a mutex
   * (the options were checked) */
  rc = be_query_stats_new(&p->qstats, err);
  if (rc == BE_OK && o->slowlog) {
    p->slowlog = o->slowlog;
  } else if (rc == BE_OK && o->slow_query_threshold_ms >= 0) {
    be_slowlog_options so = BE_SLOWLOG_OPTIONS_INIT;
    so.threshold_ms = o->slow_query_threshold_ms;
    so.capacity = o->slow_query_capacity;
    so.clock = o->clock;
    rc = be_slowlog_new(&p->own_slowlog, &so, err);
    p->slowlog = p->own_slowlog;
  }
  if (rc != BE_OK) {
    pool_free_parts(p);
    return rc;
  }
  if (pthread_mutex_init(&p->mu, NULL) != 0) {
    pool_free_parts(p);
    return be__error_set(err, BE_E_INTERNAL, "be_pool_new: cannot create a mutex");
  }
  for (size_t i = 0; i < n; i++) p->slots[i].pool = p;
  p->driver = o->driver;
  p->clock = o->clock;
  p->min_conns = o->min_conns;
  p->max_conns = o->max_conns;
  p->acquire_timeout_ns = be__ms_to_ns(o->acquire_timeout_ms);
  p->window_ns = o->validation_window_ms < 0 ? INT64_MAX
                 : o->validation_window_ms == 0 ? -1
                                                 : be__ms_to_ns(o->validation_window_ms);
  p->lifetime_ns = be__ms_to_ns(o->max_lifetime_ms);
  p->jitter_permille = o->lifetime_jitter_permille;
  p->idle_timeout_ns = be__ms_to_ns(o->idle_timeout_ms);
  p->leak_ns = be__ms_to_ns(o->leak_threshold_ms);
  p->deadlock_detection = o->deadlock_detection;
  p->on_usage = o->on_usage_alert;
  p->usage_ud = o->usage_alert_user_data;
  p->on_leak = o->on_leak;
  p->leak_ud = o->leak_user_data;
  p->alert_at = o->usage_alert_percent > 0
                    ? (int32_t)(((int64_t)o->max_conns * o->usage_alert_percent + 99) / 100)
                    : 0;
  if (p->alert_at < 1 && o->usage_alert_percent > 0) p->alert_at = 1;
  p->alert_armed = p->alert_at > 0;
  p->rng = ((uint64_t)(uintptr_t)p ^ (uint64_t)be_clock_now_ns(NULL)) | 1;
  p->bg_interval_ns = be__ms_to_ns(o->maintenance_interval_ms);

  /* open min_conns now; the first failure means the database is unreachable */
  for (int32_t i = 0; i < o->min_conns; i++) {
    slot *s = &p->slots[i];
    be_error *cause = NULL;
    rc = open_conn(p, s, &cause);
    if (rc != BE_OK) {
      int code = rc == BE_E_NOMEM ? BE_E_NOMEM : BE_E_DB_UNREACHABLE;
      if (code == BE_E_NOMEM) {
        be_error_free(cause);
        rc = be__error_oom(err);
      } else {
        rc = be__error_wrap(err, BE_E_DB_UNREACHABLE, cause,
                            "%s: cannot open connection %d of min_conns %d: %s", p->name,
                            (int)i + 1, (int)o->min_conns,
                            cause ? be_error_message(cause) : "open failed");
      }
      pool_destroy(p);
      return rc;
    }
    int64_t now = be__clock_coarse_ns(p->clock);
    s->state = SLOT_IDLE;
    s->created_ns = now;
    s->expires_ns = lifetime_end(p, now);
    s->last_used_ns = now;
    p->idle[p->idle_n++] = s;
    p->total++;
    p->creates++;
  }

  if (o->background_thread) {
    if (be__cond_init_monotonic(&p->bg_cond) != 0) {
      pool_destroy(p);
      return be__error_set(err, BE_E_INTERNAL, "be_pool_new: cannot create a condition variable");
    }
    p->bg_started = 1;
    if (pthread_create(&p->bg, NULL, bg_main, p) != 0) {
      pool_destroy(p);
      return be__error_set(err, BE_E_INTERNAL, "be_pool_new: cannot start the maintenance thread");
    }
  }
  *out = p;
  return BE_OK;
}

void be_pool_close(be_pool *p) {
  if (p == NULL) return;
  pthread_mutex_lock(&p->mu);
  if (p->closed) {
    pthread_mutex_unlock(&p->mu);
    return;
  }
  p->closed = 1;
  waiter *w;
  while ((w = dequeue_head(p)) != NULL) {
    w->grant = GRANT_CLOSED;
    pthread_cond_signal(&w->cond);
  }
  int join = p->bg_started;
  if (join) {
    p->bg_stop = 1;
    pthread_cond_signal(&p->bg_cond);
  }
  /* close idle connections one at a time, unlocked */
  p->active++;
  while (p->idle_n > 0) {
    slot *s = p->idle[--p->idle_n];
    be_conn *c = s->conn;
    p->destroys++;
    slot_free(p, s);
    pthread_mutex_unlock(&p->mu);
    be_conn_close(c);
    pthread_mutex_lock(&p->mu);
  }
  p->active--;
  pthread_mutex_unlock(&p->mu);
  if (join) {
    if (pthread_equal(p->bg, pthread_self())) pthread_detach(p->bg);
    else pthread_join(p->bg, NULL);
  }
}

void be_pool_free(be_pool *p) {
  if (p == NULL) return;
  be_pool_close(p);
  pthread_mutex_lock(&p->mu);
  int32_t in_use = p->in_use;
  pthread_mutex_unlock(&p->mu);
  if (in_use > 0 && be__log_enabled(BE_LOG_WARN)) {
    logf l;
    lf_init(&l, p);
    lf_int(&l, "in_use", in_use);
    lf_emit(&l, BE_LOG_WARN, "pool freed with connections still out; they close on release");
  }
  pthread_mutex_lock(&p->mu);
  p->free_requested = 1;
  unlock_maybe_destroy(p);
}

/* ---- query statistics ---- */

const be_query_stats *be_pool_query_stats(const be_pool *p) { return p ? p->qstats : NULL; }

be_slowlog *be_pool_slowlog(const be_pool *p) { return p ? p->slowlog : NULL; }

int be__pool_holds(const be_pool *p, const be_conn *c) {
  if (p == NULL || c == NULL) return 0;
  const slot *s = be__conn_pool_data(c);
  /* Like be_pool_release(): a caller holding c may look at its slot
   * unlocked; the owner check makes any other caller's answer 0. */
  return s != NULL && s->pool == p && s->state == SLOT_IN_USE &&
         pthread_equal(s->owner, pthread_self());
}
