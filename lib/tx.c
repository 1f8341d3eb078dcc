/* SPDX-License-Identifier: MIT */
/* be_tx_run: BEGIN / callback / COMMIT with rollback on any error,
 * savepoints when nested, and whole-callback retries on busy. */
#include <backend/tx.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "error.h"
#include "storage.h"
#include "versioned.h"

static const be_tx_options defaults = BE_TX_OPTIONS_INIT;

int be_tx_options_init(be_tx_options *o, uint32_t version) {
  return be__versioned_init(o, sizeof *o, &defaults, version, BE_TX_OPTIONS_VERSION);
}

static int is_retryable(int rc, const be_error *e) {
  if (rc == BE_E_BUSY || rc == BE_E_SERIALIZATION) return 1;
  int32_t code = be_error_code(e);
  return code == BE_E_BUSY || code == BE_E_SERIALIZATION;
}

/* The callback failed with rc: make sure there is an error object. */
static void ensure_error(be_error **e, int rc) {
  if (*e == NULL) be__error_set(e, rc, "transaction callback failed: %s", be_strerror(rc));
}

static void sleep_ns(int64_t ns) {
  if (ns <= 0) return;
  struct timespec ts = {(time_t)(ns / BE_NS_PER_SEC), (long)(ns % BE_NS_PER_SEC)};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* A jittered sleep in [d/2, d): retrying transactions spread out instead
 * of colliding again in lockstep. */
static void backoff(uint64_t *rng, int64_t base, int64_t cap, int attempt) {
  int64_t d = base;
  for (int i = 0; i < attempt && d < cap; i++) d = d > INT64_MAX / 2 ? INT64_MAX : d * 2;
  if (d > cap) d = cap;
  if (d <= 0) return;
  uint64_t x = *rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  *rng = x;
  sleep_ns(d / 2 + (int64_t)(x % (uint64_t)(d / 2 + 1)));
}

/* The callback (or RELEASE) failed with e: undo only the inner work.
 * ROLLBACK TO keeps the savepoint, so release it after. When ROLLBACK TO
 * itself fails the inner work is still in the transaction, so the caller
 * gets that failure (e kept as its cause) and the outer transaction can
 * no longer commit. */
static int undo_savepoint(be_conn *c, const char *name, be_error *e, be_error **err) {
  be_error *re = NULL;
  int rrc = be_conn_rollback_to(c, name, &re);
  if (rrc == BE_OK) {
    be_conn_release(c, name, NULL);
    return be__error_give(err, e);
  }
  be__conn_doom_tx(c);
  int out = be__error_wrap(err, rrc, e,
                           "nested transaction failed (%s) and its savepoint could not be rolled "
                           "back (%s); the enclosing transaction will not commit",
                           be_strerror(be_error_code(e)),
                           re ? be_error_message(re) : be_strerror(rrc));
  be_error_free(re);
  return out;
}

static int run_nested(be_conn *c, be_tx_fn fn, void *ud, be_error **err) {
  int32_t depth = be__conn_tx_depth(c) + 1;
  char name[32];
  snprintf(name, sizeof name, "be_tx_sp_%d", (int)depth);
  be_error *e = NULL;
  int rc = be_conn_savepoint(c, name, &e);
  if (rc != BE_OK) {
    ensure_error(&e, rc);
    return be__error_give(err, e);
  }
  be__conn_set_tx_depth(c, depth);
  rc = fn(c, ud, &e);
  be__conn_set_tx_depth(c, depth - 1);
  if (rc >= 0) {
    be_error_free(e);
    e = NULL;
    rc = be_conn_release(c, name, &e);
    if (rc == BE_OK) return BE_OK;
  }
  ensure_error(&e, rc);
  return undo_savepoint(c, name, e, err);
}

int be_tx_run_ex(be_conn *c, const be_tx_options *opts, be_tx_fn fn, void *ud, be_error **err) {
  be_tx_options o;
  int rc = be__versioned_read(&o, sizeof o, opts, &defaults, BE_TX_OPTIONS_VERSION,
                              "be_tx_options", err);
  if (rc != BE_OK) return rc;
  if (c == NULL || fn == NULL) return be__error_set(err, BE_E_MISUSE, "be_tx_run: NULL argument");
  if (o.mode < BE_TX_DEFERRED || o.mode > BE_TX_EXCLUSIVE || o.max_retries < 0 ||
      o.backoff_ms < 0 || o.max_backoff_ms < 0 || o.retry_budget_ms < 0)
    return be__error_set(err, BE_E_MISUSE, "be_tx_run: bad mode or retry options");

  if (be_conn_in_transaction(c)) return run_nested(c, fn, ud, err);

  int64_t start = be_clock_now_ns(NULL);
  uint64_t rng = (uint64_t)start ^ (uint64_t)(uintptr_t)c;
  if (rng == 0) rng = 1;
  for (int attempt = 0;; attempt++) {
    be_error *e = NULL;
    int rc = be_conn_begin(c, o.mode, &e);
    if (rc == BE_OK) {
      rc = fn(c, ud, &e);
      if (rc >= 0) {
        be_error_free(e);
        e = NULL;
        rc = be_conn_commit(c, &e);
        if (rc == BE_OK) return BE_OK;
      } else {
        ensure_error(&e, rc);
      }
      if (be_conn_in_transaction(c)) be_conn_rollback(c, NULL);
      /* a connection we cannot get out of its transaction is not reusable */
      if (be_conn_in_transaction(c)) be__conn_mark_broken(c);
    }
    if (attempt < o.max_retries && is_retryable(rc, e) && !be_conn_is_broken(c) &&
        (o.retry_budget_ms == 0 ||
         be_clock_now_ns(NULL) - start < be__ms_to_ns(o.retry_budget_ms))) {
      be_error_free(e);
      backoff(&rng, be__ms_to_ns(o.backoff_ms), be__ms_to_ns(o.max_backoff_ms), attempt);
      continue;
    }
    ensure_error(&e, rc);
    return be__error_give(err, e);
  }
}

int be_tx_run(be_conn *c, int32_t mode, be_tx_fn fn, void *ud, be_error **err) {
  be_tx_options o = BE_TX_OPTIONS_INIT;
  o.mode = mode;
  return be_tx_run_ex(c, &o, fn, ud, err);
}
