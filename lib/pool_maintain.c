/* SPDX-License-Identifier: MIT */
/* be_pool_maintain: what the pool does on a schedule rather than on an
 * acquire or release. Under the lock it times out waiters past their
 * deadline, takes idle connections past their lifetime or idle timeout
 * off the stack, notes connections held past the leak threshold and
 * reserves slots up to min_conns; then, unlocked, it closes, reports and
 * opens. */
#include <backend/pool.h>

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "pool_internal.h"

typedef be__pool_slot slot;

/* Most slots one pass reserves to refill (the next pass does the rest). */
#define REFILL_MAX 64

/* Wake the waiters past their deadline on the pool clock (fake clocks do
 * not move a condition variable's timed wait). */
static void expire_waiters(be_pool *p, int64_t now) {
  for (be__pool_waiter *w = p->wq_head, *next; w; w = next) {
    next = w->next;
    if (now >= w->deadline_ns) {
      be__pool_unlink_waiter(p, w);
      w->grant = BE__GRANT_TIMEOUT;
      pthread_cond_signal(&w->cond);
    }
  }
}

static void remove_idle_at(be_pool *p, int32_t i) {
  memmove(&p->idle[i], &p->idle[i + 1], (size_t)(p->idle_n - i - 1) * sizeof p->idle[0]);
  p->idle_n--;
}

/* Free the idle slots past their lifetime, or idle too long while above
 * min_conns, least recently used first; their connections go to
 * scratch_conns, to be closed unlocked. Returns how many. */
static int32_t reap_idle(be_pool *p, int64_t now) {
  int32_t nclose = 0;
  for (int32_t i = 0; i < p->idle_n;) {
    slot *s = p->idle[i];
    int expired = now >= s->expires_ns;
    int reap = !expired && p->idle_timeout_ns > 0 && p->total > p->min_conns &&
               now - atomic_load_explicit(&s->last_used_ns, BE__RELAXED) > p->idle_timeout_ns;
    if (expired || reap) {
      if (expired) p->expired++;
      else p->idle_closed++;
      p->destroys++;
      p->scratch_conns[nclose++] = s->conn;
      remove_idle_at(p, i);
      be__pool_slot_free(p, s);
    } else {
      i++;
    }
  }
  return nclose;
}

/* Note in scratch_leaks each connection held past the leak threshold and
 * not reported yet. Returns how many. */
static int32_t scan_leaks(be_pool *p, int64_t now) {
  int32_t nleak = 0;
  if (p->leak_ns <= 0) return 0;
  for (int32_t i = 0; i < p->max_conns; i++) {
    slot *s = &p->slots[i];
    if (be__pool_state(s) != BE__SLOT_IN_USE) continue;
    /* INT64_MAX (being claimed) never passes the threshold */
    int64_t since = atomic_load_explicit(&s->acquired_ns, memory_order_acquire);
    if (since == INT64_MAX || atomic_load_explicit(&s->leak_mark, BE__RELAXED) == since ||
        now - since <= p->leak_ns)
      continue;
    atomic_store_explicit(&s->leak_mark, since, BE__RELAXED);
    p->leaks++;
    be__pool_leak_note *n = &p->scratch_leaks[nleak++];
    n->has_file = be__pool_site_copy(s, n->file, sizeof n->file, &n->line);
    n->held_ns = now - since;
  }
  return nleak;
}

/* Reserve the slots that bring the pool up to min_conns (at most max). */
static int32_t reserve_refill(be_pool *p, slot **reserved, int32_t max) {
  int32_t need = p->min_conns - p->total;
  int32_t n = 0;
  while (n < need && n < max) {
    slot *s = be__pool_reserve_slot(p);
    if (s == NULL) break;
    reserved[n++] = s;
  }
  return n;
}

/* Open a connection into each reserved slot (unlocked). Returns BE_OK, or
 * the first failure's code with its error in *cause. */
static int refill(be_pool *p, slot **reserved, int32_t n, be_error **cause) {
  int rc = BE_OK;
  for (int32_t i = 0; i < n; i++) {
    be_error *e = NULL;
    int orc = be__pool_open_idle(p, reserved[i], &e);
    if (orc != BE_OK && rc == BE_OK) {
      rc = orc;
      *cause = e;
    } else {
      be_error_free(e);
    }
  }
  return rc;
}

/* With mu held, claim the pool for one maintenance pass: BE_OK with a
 * reference taken and mu still held; else mu is released and the result
 * is BE_E_POOL_CLOSED, or 1 when another thread's pass is running. */
static int begin_pass(be_pool *p, be_error **err) {
  if (p->closed) {
    pthread_mutex_unlock(&p->mu);
    return be__error_set(err, BE_E_POOL_CLOSED, "%s: pool is closed", p->name);
  }
  if (p->maintaining) {
    pthread_mutex_unlock(&p->mu);
    return 1;
  }
  p->maintaining = 1;
  p->active++;
  return BE_OK;
}

static int end_pass(be_pool *p, int rc, be_error *cause, be_error **err) {
  pthread_mutex_lock(&p->mu);
  p->maintaining = 0;
  p->active--;
  int destroy = be__pool_last_one_out(p);
  pthread_mutex_unlock(&p->mu);
  if (rc != BE_OK)
    rc = be__pool_open_error(p, rc, cause, "maintenance could not open connections up to min_conns",
                             err);
  if (destroy) be__pool_destroy(p);
  return rc;
}

int be_pool_maintain(be_pool *p, be_error **err) {
  if (p == NULL) return be__error_set(err, BE_E_MISUSE, "be_pool_maintain: pool is NULL");
  pthread_mutex_lock(&p->mu);
  int rc = begin_pass(p, err);
  if (rc != BE_OK) return rc > 0 ? BE_OK : rc;
  int64_t now = be_clock_now_ns(p->clock);
  be__pool_unpark_all(p); /* parked connections are reaped like idle ones */
  expire_waiters(p, now);
  int32_t nclose = reap_idle(p, now);
  int32_t nleak = scan_leaks(p, now);
  slot *reserved[REFILL_MAX];
  int32_t nres = reserve_refill(p, reserved, REFILL_MAX);
  pthread_mutex_unlock(&p->mu);

  for (int32_t i = 0; i < nclose; i++) be_conn_close(p->scratch_conns[i]);
  be__pool_report_leaks(p, p->scratch_leaks, nleak);
  be_error *cause = NULL;
  rc = refill(p, reserved, nres, &cause);
  return end_pass(p, rc, cause, err);
}
