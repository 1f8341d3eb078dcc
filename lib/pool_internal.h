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
 * Affinity (the hot path). A release that finds the pool calm (nobody
 * waiting, not closed, the usage alert far) does not take the mutex: it
 * "parks" the connection, storing SLOT_PARKED in its slot, and the
 * releasing thread remembers the slot (be__pool_tls, one per thread). Its
 * next acquire from that pool claims the slot back with one compare-and-
 * swap PARKED -> IN_USE, when the connection is still fresh (idle within
 * the validation window, before its lifetime end). Neither writes a cache
 * line another thread writes: the mutex, the idle stack and the shared
 * counters are left alone (acquires are counted per slot, summed by
 * stats). A parked connection is idle for everyone else: anyone holding
 * the mutex may take it by the same compare-and-swap (to PARKED -> IDLE,
 * onto the idle stack: be__pool_unpark_all), and does before opening a
 * connection, before waiting, on close and on each maintenance pass.
 *
 * `out` counts the slots off the idle stack that hold an open connection:
 * checked out or parked (parking and claiming leave it as it is). The
 * stats report in_use = out - parked and idle = idle_n + parked.
 *
 * no_park (atomic) forbids parking and claiming while anyone waits, the
 * pool is closed, or `pressure` is on. Whoever sets it then takes every
 * parked slot under the mutex. A release stores PARKING, then reads
 * no_park (both sequentially consistent), then stores PARKED, or IN_USE
 * again to go the mutex way when the flag is set: either the release sees
 * the flag or the one who set it sees the slot. A taker that meets
 * PARKING waits the few instructions until it settles, so the releaser's
 * read of no_park never meets a pool that close and free took away. Pressure goes on when `out` reaches the
 * usage alert threshold (parked slots are then taken, so `out` is the
 * exact in_use again while an alert may be due) and off when `out` falls
 * to the re-arm level. A claim that read no_park clear just before a
 * waiter queued may still take its slot: it arrived first.
 *
 * Invariant: while anyone waits, the idle stack is empty, nothing is
 * parked and every slot is taken (open, in use or being opened). A slot
 * freed while waiters exist (broken connection, lifetime end, failed open)
 * is granted to the head waiter as a reservation to open a new connection
 * itself, so the releasing thread never pays for an open.
 *
 * Nothing slow happens under the mutex: pings, opens, closes, rollbacks,
 * callbacks and log lines all run after unlocking. While a thread works on
 * the pool unlocked it holds a reference (`active`, or a slot in use /
 * opening), so be_pool_free() can hand the final free to the last one out
 * instead of waiting for it.
 *
 * A slot's holder fields (owner, file, line, acquired_ns, last_used_ns)
 * are atomics written relaxed, since scans under the mutex (leaks,
 * deadlock detection, stats) read them while a parked slot is claimed. A
 * release clears the owner and sets acquired_ns to INT64_MAX before the
 * slot can be claimed, so a scan never mistakes an old holding for the new
 * one. When the affinity path does not apply (another thread's slot, a
 * stale connection), the mutex path takes the most recently used idle
 * connection as before: one coarse clock read, one lock, no allocation,
 * no histogram sample (acquires that did not wait count as zero waits).
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
#include <backend/stmt_stats.h>
#include <backend/incident.h>

#include <pthread.h>
#include <stdatomic.h>

#include "alloc.h" /* BE__LINE */

#if defined(__GNUC__) || defined(__clang__)
#  define BE__LIKELY(x) __builtin_expect(!!(x), 1)
#  define BE__UNLIKELY(x) __builtin_expect(!!(x), 0)
#  define BE__NOINLINE __attribute__((noinline))
#else
#  define BE__LIKELY(x) (x)
#  define BE__UNLIKELY(x) (x)
#  define BE__NOINLINE
#endif

/* Slot states. */
enum { BE__SLOT_FREE,
       BE__SLOT_OPENING,
       BE__SLOT_IDLE,
       BE__SLOT_IN_USE,
       BE__SLOT_PARKED,
       BE__SLOT_PARKING }; /* a release between its store and its no_park check */
/* What a waiter was woken with. */
enum { BE__GRANT_NONE,
       BE__GRANT_CONN,
       BE__GRANT_CREATE,
       BE__GRANT_CLOSED,
       BE__GRANT_TIMEOUT };

/* Each slot on cache lines of its own (the array is be__calloc_lines
 * memory): threads working their parked slots without the lock write no
 * line another one writes. */
typedef struct be__pool_slot {
  _Alignas(BE__LINE) be_conn *conn;
  be_pool *pool;
  _Atomic int32_t state; /* BE__SLOT_* */
  _Atomic int32_t line;
  _Atomic(const char *) file;   /* acquisition site, borrowed: read by be__pool_site_copy */
  _Atomic int32_t inspecting;   /* be__pool_site_copy reads file; park() waits it out */
  _Atomic uintptr_t owner;      /* be__pool_self() of the holder; 0 = none */
  _Atomic int64_t acquired_ns;  /* INT64_MAX while not held */
  _Atomic int64_t last_used_ns; /* when it went idle (or was parked) */
  _Atomic int64_t leak_mark;    /* acquired_ns of the holding reported leaked */
  _Atomic uint64_t claims;      /* affinity claims (acquires not under mu) */
  int64_t created_ns;
  int64_t expires_ns; /* INT64_MAX = never */
  /* the observers a release keeps: the pool's (statement and query stats,
   * slow-query log) and any connection_init attached */
  int32_t base_obs;
  int32_t base_cap; /* base_ud's length */
  uint64_t obs_gen; /* be__conn_observers_gen() when they were there alone */
  void **base_ud;   /* each one's be__conn_observer_ud(), in order; freed with the pool */
} be__pool_slot;

typedef struct be__pool_waiter {
  struct be__pool_waiter *prev, *next;
  pthread_cond_t cond;
  be__pool_slot *slot; /* GRANT_CONN: a checked-out connection; GRANT_CREATE: a reserved slot */
  int32_t grant;       /* BE__GRANT_* */
  int64_t enq_ns;      /* pool clock */
  int64_t deadline_ns; /* pool clock */
  uintptr_t thread;    /* be__pool_self() of the caller: owner of a granted connection */
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
  int32_t out; /* open connections off the idle stack: in use or parked */
  int32_t opening;
  int32_t total;
  int32_t alert_at;   /* in_use count that fires the usage alert; 0 = off */
  int32_t pressure;   /* out reached alert_at: no parking until it is at rearm_at */
  atomic_int no_park; /* closed || waiting || pressure (read without mu) */
  uint64_t id;        /* unique per pool made, for be__pool_tls */
  int32_t alert_percent;
  int32_t alert_armed;
  int32_t alert_pending;     /* a crossing not yet handed to be__pool_alert_due */
  int32_t rearm_at;          /* in_use at or below which the alert re-arms (>= 0) */
  int32_t alert_fired;       /* an alert fired already (alert_last_ns is valid) */
  int64_t alert_last_ns;     /* coarse pool clock */
  int64_t alert_interval_ns; /* 0 = no rate limit */
  int64_t alert_suppressed;  /* crossings since the last alert that fired */
  const be_clock *clock;
  int64_t window_ns; /* ping when idle longer than this */
  /* counters, under mu */
  uint64_t acquires, waited_ok, waits, handoffs, timeouts, deadlocks, open_failures;
  uint64_t creates, destroys, validations, broken, expired, idle_closed, rollbacks, leaks;
  /* configuration */
  be__pool_slot *slots; /* be__calloc_lines */
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
  be_query_stats *qstats;     /* attached to every connection */
  be_slowlog *slowlog;        /* attached to every connection; NULL = none */
  be_slowlog *own_slowlog;    /* == slowlog when the pool made it (and frees it) */
  be_stmt_stats *stmt_stats;  /* attached to every connection; NULL = none (borrowed) */
  be_incident_log *incidents; /* NULL = none (borrowed) */
  uint64_t rng;
  /* maintenance */
  int32_t maintaining;
  be_conn **scratch_conns; /* max_conns, used by the one running maintain */
  be__pool_leak_note *scratch_leaks;
  /* lifecycle */
  int32_t active; /* threads working on the pool outside the lock */
  int32_t free_requested;
  int32_t close_done;         /* the first be_pool_close() has ended */
  pthread_cond_t closed_cond; /* signalled when close_done is set */
  int32_t bg_started;
  int32_t bg_stop;
  pthread_t bg;
  pthread_cond_t bg_cond;
  int64_t bg_interval_ns;
};

/* ---- affinity: the slot each thread parked last ---- */

typedef struct be__pool_tl {
  uint64_t pool_id; /* be_pool.id of the pool slot belongs to; 0 = none */
  be__pool_slot *slot;
  uintptr_t token; /* be__pool_self(); 0 until the thread first asks */
} be__pool_tl;

extern __thread be__pool_tl be__pool_tls __attribute__((tls_model("initial-exec")));

uintptr_t be__pool_new_token(void);

/* The calling thread's token for slot owners: never 0, and never another
 * thread's, living or exited (the address of be__pool_tls once was, and
 * a new thread may get an exited one's address). */
static inline uintptr_t be__pool_self(void) {
  uintptr_t t = be__pool_tls.token;
  return t ? t : (be__pool_tls.token = be__pool_new_token());
}

#define BE__RELAXED memory_order_relaxed

/* Record the holder of s (its owner from now on). Plain relaxed stores:
 * the holder is the only writer; acquired_ns goes last (release), so a
 * scan that reads it new reads the site at least as new. */
static inline void be__pool_stamp(be__pool_slot *s, uintptr_t owner, const char *file,
                                  int32_t line, int64_t now) {
  atomic_store_explicit(&s->owner, owner, BE__RELAXED);
  atomic_store_explicit(&s->file, file, BE__RELAXED);
  atomic_store_explicit(&s->line, line, BE__RELAXED);
  atomic_store_explicit(&s->acquired_ns, now, memory_order_release);
}

/* s stops being held: no owner, no acquisition time, no site (the
 * holder's file may be gone once it returns). */
static inline void be__pool_unstamp(be__pool_slot *s) {
  atomic_store_explicit(&s->owner, 0, BE__RELAXED);
  atomic_store_explicit(&s->file, NULL, BE__RELAXED);
  atomic_store_explicit(&s->acquired_ns, INT64_MAX, BE__RELAXED);
}

/* Where s's holder acquired it: the file copied into file (cap bytes,
 * "" when unknown) and *line; 1 when known. mu held. The holder may park
 * s without the mutex and then free its file: this announces the read
 * (inspecting) before it sees s held, and park() waits for the read to
 * end after it marks s PARKING, both sequentially consistent, so one of
 * them sees the other. */
int be__pool_site_copy(be__pool_slot *s, char *file, size_t cap, int32_t *line);

static inline int32_t be__pool_state(const be__pool_slot *s) {
  return atomic_load_explicit(&s->state, BE__RELAXED);
}

/* The holding of s was reported leaked (read by its holder). */
static inline int be__pool_leak_marked(const be__pool_slot *s) {
  return atomic_load_explicit(&s->leak_mark, BE__RELAXED) ==
         atomic_load_explicit(&s->acquired_ns, BE__RELAXED);
}

/* ---- hot state transitions (mu held) ---- */

/* Recompute no_park from its reasons. */
static inline void be__pool_park_update(be_pool *p) {
  int want = p->closed || p->wq_head != NULL || p->pressure;
  if (atomic_load_explicit(&p->no_park, BE__RELAXED) != want) atomic_store(&p->no_park, want);
}

/* Take every parked slot onto the idle stack (mu held). Returns how many. */
int32_t be__pool_unpark_all(be_pool *p);
/* out reached the usage alert threshold: stop parking, take the parked. */
void be__pool_pressure_on(be_pool *p);

/* A crossing is noted here, under mu, when out reaches the alert level
 * (exact: pressure took the parked back first), and reported by the next
 * be__pool_alert_due, whoever calls it: a checkout that unlocks before
 * its own check (a ping, an open) must not hide it from the next one. */
static inline void be__pool_out_inc(be_pool *p) {
  p->out++;
  if (BE__UNLIKELY(p->out >= p->alert_at && p->alert_at > 0)) {
    if (!p->pressure) be__pool_pressure_on(p);
    if (p->out >= p->alert_at && p->alert_armed) {
      p->alert_armed = 0;
      p->alert_pending = 1;
    }
  }
}

static inline void be__pool_checkout(be_pool *p, be__pool_slot *s, const char *file,
                                     int32_t line, int64_t now) {
  atomic_store_explicit(&s->state, BE__SLOT_IN_USE, BE__RELAXED);
  be__pool_stamp(s, be__pool_self(), file, line, now);
  be__pool_out_inc(p);
  p->acquires++;
}

/* A crossing of the alert threshold: -1 when rate-limited (counted),
 * else the crossings suppressed before this one (pool_report.c). */
int64_t be__pool_alert_crossing(be_pool *p);

/* After a checkout (mu held): -1 when no usage alert is due, else the
 * number of crossings suppressed since the last alert (fire it). */
static inline int64_t be__pool_alert_due(be_pool *p) {
  if (BE__LIKELY(!p->alert_pending)) return -1;
  p->alert_pending = 0;
  return be__pool_alert_crossing(p);
}

static inline void be__pool_out_dec(be_pool *p) {
  p->out--;
  if (p->out <= p->rearm_at) {
    p->alert_armed = 1;
    if (BE__UNLIKELY(p->pressure)) {
      p->pressure = 0;
      be__pool_park_update(p);
    }
  }
}

static inline be__pool_waiter *be__pool_dequeue_head(be_pool *p) {
  be__pool_waiter *w = p->wq_head;
  if (w == NULL) return NULL;
  p->wq_head = w->next;
  if (p->wq_head) p->wq_head->prev = NULL;
  else p->wq_tail = NULL;
  w->next = w->prev = NULL;
  p->waiting--;
  if (p->wq_head == NULL) be__pool_park_update(p);
  return w;
}

/* An open connection is free for someone: the head waiter, or the idle
 * stack. `counted` says whether the slot is still counted in out (a
 * release): then a hand-off leaves out as it is, so a saturated pool
 * does not look like it dropped below the alert threshold and rose again. */
static inline void be__pool_give_back(be_pool *p, be__pool_slot *s, int64_t now, int counted) {
  be__pool_waiter *w = be__pool_dequeue_head(p);
  if (w) {
    atomic_store_explicit(&s->state, BE__SLOT_IN_USE, BE__RELAXED);
    if (!counted) be__pool_out_inc(p);
    p->handoffs++;
    /* the waiter holds it from now on (not the releaser, for the deadlock
     * check; not the old acquisition time, for the leak scan) */
    be__pool_stamp(s, w->thread, w->file, w->line, now);
    w->slot = s;
    w->grant = BE__GRANT_CONN;
    pthread_cond_signal(&w->cond);
    return;
  }
  if (counted) be__pool_out_dec(p);
  be__pool_unstamp(s);
  atomic_store_explicit(&s->state, BE__SLOT_IDLE, BE__RELAXED);
  atomic_store_explicit(&s->last_used_ns, now, BE__RELAXED);
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
/* A slot whose connection was closed (or never opened) becomes free, and
 * its capacity goes to the head waiter, if any, as a reservation to open
 * a connection itself: whoever frees a slot, waiters never sleep with
 * room in the pool. */
void be__pool_slot_free(be_pool *p, be__pool_slot *s);
/* Destroy s's idle connection (mu held, and held again on return): the
 * slot is freed and counted destroyed under the lock, the close runs
 * unlocked. */
void be__pool_slot_destroy(be_pool *p, be__pool_slot *s);
void be__pool_unlink_waiter(be_pool *p, be__pool_waiter *w);
/* When a connection created at `created` reaches its lifetime (jittered). */
int64_t be__pool_lifetime_end(be_pool *p, int64_t created);
/* Open a connection into reserved slot s, with the pool's clock and
 * observers attached, then run its setup (connection_init_sql, then
 * connection_init); mu not held. *cause gets the error; a failed setup
 * closes the connection and returns BE__POOL_SETUP_FAILED. */
/* Attach the pool's observers to c (statement stats, query stats,
 * slow-query log; any already attached stays as it is). BE_OK or
 * BE_E_NOMEM. */
int be__pool_attach_observers(be_pool *p, be_conn *c, be_error **cause);

/* Note c's observers now in s as the ones a release keeps, every one of
 * them. BE_OK, or BE_E_NOMEM (s's note is unchanged). */
int be__pool_note_observers(be__pool_slot *s, be_conn *c);

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
/* The checked-out slot held longest, or NULL; *acquired_ns gets when. */
be__pool_slot *be__pool_longest_holder(const be_pool *p, int64_t *acquired_ns);
/* Affinity claims of all slots (acquires not counted in p->acquires). */
uint64_t be__pool_claims(const be_pool *p);
/* Slots parked now (idle, off the stack). */
int32_t be__pool_parked(const be_pool *p);

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

/* The usage alert: a warning, an incident and the on_usage callback
 * (unlocked); suppressed: crossings rate-limited since the last one. */
void be__pool_fire_usage_alert(be_pool *p, int32_t in_use, int32_t waiting, int64_t suppressed);
/* An incident of kind with the pool's figures (unlocked; no-op without an
 * incident log). */
void be__pool_incident(be_pool *p, int32_t kind, int32_t in_use, int32_t idle, int32_t waiting,
                       int64_t value, int64_t threshold, int64_t suppressed, const char *message);
/* Warnings and on_leak callbacks for the leaks found (unlocked). */
void be__pool_report_leaks(be_pool *p, const be__pool_leak_note *notes, int32_t n);

#endif
