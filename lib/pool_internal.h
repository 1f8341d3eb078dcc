/* SPDX-License-Identifier: MIT */
/* The pool's private structures, and the state transitions its pieces
 * share. The pool (be_pool, backend/pool.h) is in five files:
 *
 *   pool.c           options, new, close, free, the reference that keeps a
 *                    pool alive, the maintenance thread
 *   pool_checkout.c  be_pool_acquire (fast and slow paths), be_pool_release,
 *                    be_pool_tx_run
 *   pool_maintain.c  be_pool_maintain: deadlines, idle reaping, leak scan,
 *                    refill to min_conns
 *   pool_slots.c     capacity: reserving and freeing slots, the wait queue,
 *                    opening connections into slots, lifetimes
 *   pool_report.c    stats snapshots, log lines, the usage and leak callbacks
 *
 * Connections from one driver, handed out under one mutex. Every
 * connection lives in a slot (an array of max_conns, allocated once), and
 * its be_conn points back at the slot through the storage hook
 * be__conn_set_pool_data(), so release finds it in O(1). Idle slots are a
 * stack (top = most recently used). Waiters are records on their own
 * stacks, linked into a FIFO queue, each with its own condition variable:
 * a release hands the connection to the head waiter directly ("grant"), so
 * nobody can barge past the queue and nobody spins.
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
 * The transitions it uses are inline below; the rest are in pool_slots.c.
 *
 * Query stats and the slow-query log are attached to each connection as it
 * opens (be__pool_open_conn) and come off by themselves when it closes (a
 * connection drops its observers in be_conn_close), so no close path has
 * to remember them; the pool frees its own stats and log only after its
 * last connection is closed. */
#ifndef BE_LIB_POOL_INTERNAL_H
#define BE_LIB_POOL_INTERNAL_H

#include <backend/histogram.h>
#include <backend/log.h>
#include <backend/pool.h>
#include <backend/query_stats.h>
#include <backend/slowlog.h>

#include <pthread.h>
#include <stdatomic.h>

#if defined(__GNUC__) || defined(__clang__)
#  define BE__LIKELY(x) __builtin_expect(!!(x), 1)
#  define BE__UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#  define BE__LIKELY(x) (x)
#  define BE__UNLIKELY(x) (x)
#endif

/* Slot states. */
enum { BE__SLOT_FREE,
       BE__SLOT_OPENING,
       BE__SLOT_IDLE,
       BE__SLOT_IN_USE };
/* What a waiter was woken with. */
enum { BE__GRANT_NONE,
       BE__GRANT_CONN,
       BE__GRANT_CREATE,
       BE__GRANT_CLOSED,
       BE__GRANT_TIMEOUT };

typedef struct be__pool_slot {
  be_conn *conn;
  be_pool *pool;
  int32_t state; /* BE__SLOT_* */
  int32_t leak_reported;
  const char *file; /* acquisition site, borrowed */
  int32_t line;
  pthread_t owner; /* thread that acquired it */
  int64_t created_ns;
  int64_t expires_ns;   /* INT64_MAX = never */
  int64_t last_used_ns; /* when it went idle */
  int64_t acquired_ns;
  int32_t base_obs; /* observers the pool attached (query stats, slow-query log) */
} be__pool_slot;

typedef struct be__pool_waiter {
  struct be__pool_waiter *prev, *next;
  pthread_cond_t cond;
  be__pool_slot *slot; /* GRANT_CONN: a checked-out connection; GRANT_CREATE: a reserved slot */
  int32_t grant;       /* BE__GRANT_* */
  int64_t enq_ns;      /* pool clock */
  int64_t deadline_ns; /* pool clock */
  pthread_t thread;    /* the waiting caller: owner of a granted connection */
  const char *file;    /* its call site */
  int32_t line;
} be__pool_waiter;

/* One leak report gathered under the lock, delivered after. */
typedef struct be__pool_leak_note {
  char file[160]; /* copied: the holder may release (and an FFI caller free it) meanwhile */
  int32_t has_file;
  int32_t line;
  int64_t held_ns;
} be__pool_leak_note;

struct be_pool {
  pthread_mutex_t mu;
  /* hot state, under mu */
  int32_t closed;
  int32_t idle_n;
  be__pool_slot **idle; /* stack of max_conns; top = most recently used */
  be__pool_waiter *wq_head, *wq_tail;
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
  be__pool_slot *slots;
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
  /* set once a connection opened: later opens go through the driver's
   * open_existing, so a database that vanished is not created anew */
  atomic_int opened_once;
  char *name;
  char *init_sql;          /* connection_init_sql (copied); NULL = none */
  be_conn_init_fn init_fn; /* connection_init; NULL = none */
  void *init_ud;
  be_histogram *wait_hist;
  be_query_stats *qstats;  /* attached to every connection */
  be_slowlog *slowlog;     /* attached to every connection; NULL = none */
  be_slowlog *own_slowlog; /* == slowlog when the pool made it (and frees it) */
  uint64_t rng;
  /* maintenance */
  int32_t maintaining;
  be_conn **scratch_conns; /* max_conns, used by the one running maintain */
  be__pool_leak_note *scratch_leaks;
  /* lifecycle */
  int32_t active; /* threads working on the pool outside the lock */
  int32_t free_requested;
  int32_t bg_started;
  int32_t bg_stop;
  pthread_t bg;
  pthread_cond_t bg_cond;
  int64_t bg_interval_ns;
};

/* ---- hot state transitions (mu held) ---- */

static inline void be__pool_checkout(be_pool *p, be__pool_slot *s, const char *file,
                                     int32_t line, int64_t now) {
  s->state = BE__SLOT_IN_USE;
  s->owner = pthread_self();
  s->file = file;
  s->line = line;
  s->acquired_ns = now;
  s->leak_reported = 0;
  p->in_use++;
  p->acquires++;
}

/* 1 when the usage alert should fire for the checkout just done. */
static inline int be__pool_alert_due(be_pool *p) {
  if (p->in_use == p->alert_at && p->alert_armed) {
    p->alert_armed = 0;
    return 1;
  }
  return 0;
}

static inline void be__pool_in_use_dec(be_pool *p) {
  p->in_use--;
  if (p->in_use < p->alert_at) p->alert_armed = 1;
}

static inline be__pool_waiter *be__pool_dequeue_head(be_pool *p) {
  be__pool_waiter *w = p->wq_head;
  if (w == NULL) return NULL;
  p->wq_head = w->next;
  if (p->wq_head) p->wq_head->prev = NULL;
  else p->wq_tail = NULL;
  w->next = w->prev = NULL;
  p->waiting--;
  return w;
}

/* An open connection is free for someone: the head waiter, or the idle
 * stack. `counted` says whether the slot is still counted in in_use (a
 * release): then a hand-off leaves in_use as it is, so a saturated pool
 * does not look like it dropped below the alert threshold and rose again. */
static inline void be__pool_give_back(be_pool *p, be__pool_slot *s, int64_t now, int counted) {
  be__pool_waiter *w = be__pool_dequeue_head(p);
  if (w) {
    s->state = BE__SLOT_IN_USE;
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
    w->grant = BE__GRANT_CONN;
    pthread_cond_signal(&w->cond);
    return;
  }
  if (counted) be__pool_in_use_dec(p);
  s->state = BE__SLOT_IDLE;
  s->last_used_ns = now;
  p->idle[p->idle_n++] = s;
}

static inline int64_t be__pool_add_sat(int64_t a, int64_t b) {
  if (b > 0 && a > INT64_MAX - b) return INT64_MAX;
  return a + b;
}

/* ---- pool_slots.c: capacity and opening (mu held unless said) ---- */

/* Take a free slot as SLOT_OPENING, counted in opening and total; NULL
 * when none is free (never while total < max_conns). */
be__pool_slot *be__pool_reserve_slot(be_pool *p);
/* A slot whose connection was closed (or never opened) becomes free. */
void be__pool_slot_free(be_pool *p, be__pool_slot *s);
void be__pool_unlink_waiter(be_pool *p, be__pool_waiter *w);
/* Capacity became free (a slot went SLOT_FREE): if anyone waits, give the
 * head waiter a reservation to open a connection for itself. */
void be__pool_grant_capacity(be_pool *p);
/* When a connection created at `created` reaches its lifetime (jittered). */
int64_t be__pool_lifetime_end(be_pool *p, int64_t created);
/* Open a connection into reserved slot s, with the pool's clock and
 * observers attached, then run its setup (connection_init_sql, then
 * connection_init); mu not held. *cause gets the error; a failed setup
 * closes the connection and returns BE__POOL_SETUP_FAILED. */
int be__pool_open_conn(be_pool *p, be__pool_slot *s, be_error **cause);
/* Account for the open into reserved slot s that returned rc, stamping
 * its creation and lifetime. A failed open frees the slot (and grants its
 * capacity). Returns a connection to close after unlocking when the pool
 * closed meanwhile (the slot is then free), else NULL. */
be_conn *be__pool_settle_open(be_pool *p, be__pool_slot *s, int rc, int64_t now);
/* Open a connection into reserved slot s and make it idle (or hand it to
 * the head waiter). mu not held; takes it. */
int be__pool_open_idle(be_pool *p, be__pool_slot *s, be_error **cause);
/* What be__pool_open_conn() returns when the connection opened but its
 * setup (connection_init_sql / connection_init) failed; *cause then holds
 * the setup error. Never leaves the pool: be__pool_open_error() turns it
 * into the setup error's own code. */
#define BE__POOL_SETUP_FAILED (-1000)
/* The error for a failed open (rc, cause taken): out of memory as such;
 * a failed setup (BE__POOL_SETUP_FAILED) as the setup error's code,
 * "<pool>: <what>: connection setup failed: <cause>"; a locked database
 * BE_E_BUSY and something that is not a usable database BE_E_STORAGE;
 * else BE_E_DB_UNREACHABLE; the message is "<pool>: <what>: <cause's
 * message>". No lock needed. */
int be__pool_open_error(const be_pool *p, int rc, be_error *cause, const char *what,
                        be_error **err);
/* The checked-out slot held longest, or NULL. */
const be__pool_slot *be__pool_longest_holder(const be_pool *p);

/* ---- pool.c: lifetime of the pool itself ---- */

/* 1 when the pool may be freed now: free was asked for and nobody is left. */
int be__pool_last_one_out(const be_pool *p);
/* Unlock; free the pool when this was the last one out. */
void be__pool_unlock_maybe_destroy(be_pool *p);
/* Drop the reference (active) a thread held while working unlocked. */
void be__pool_unref(be_pool *p);
void be__pool_destroy(be_pool *p);

/* ---- pool_report.c: log lines, callbacks ---- */

/* Fields of one structured log line, the pool's name first. */
typedef struct be__pool_log_line {
  be_log_field f[8];
  char buf[8][160];
  size_t n;
} be__pool_log_line;

void be__pool_log_init(be__pool_log_line *l, const be_pool *p);
void be__pool_log_int(be__pool_log_line *l, const char *key, int64_t v);
/* An "acquired_at" field: file:line, or "unknown" for a NULL file. */
void be__pool_log_site(be__pool_log_line *l, const char *file, int32_t line);
void be__pool_log_emit(be__pool_log_line *l, int32_t level, const char *msg);
/* A log line of the pool's name alone. */
void be__pool_log(const be_pool *p, int32_t level, const char *msg);

/* The usage alert: a warning and the on_usage callback (unlocked). */
void be__pool_fire_usage_alert(be_pool *p, int32_t in_use, int32_t waiting);
/* Warnings and on_leak callbacks for the leaks found (unlocked). */
void be__pool_report_leaks(be_pool *p, const be__pool_leak_note *notes, int32_t n);

#endif
