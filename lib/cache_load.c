/* SPDX-License-Identifier: MIT */
/* Get-or-load with single flight: the first caller to miss a key runs the
 * loader with no lock held; later callers for that key sleep on the
 * flight's own condition variable (not holding the shard lock, so other
 * keys of the shard proceed) and share its result. */
#include <backend/cache.h>
#include <backend/error.h>

#include <string.h>

#include "alloc.h"
#include "cache_internal.h"
#include "clock.h"
#include "error.h"

typedef struct be_cache_entry entry;

/* Negative entries store the error code (4 bytes, native order) and the
 * message as their value. */
static entry *negative_entry(const void *key, size_t klen, int32_t code, const be_error *e) {
  const char *msg = e ? be_error_message(e) : NULL;
  size_t mlen = msg ? strlen(msg) : 0;
  entry *n = be__cache_entry_new(NULL, key, klen, NULL, 0); /* grown below */
  if (n == NULL) return NULL;
  entry *full = be__realloc(n, BE__ENTRY_HDR + klen + sizeof code + mlen);
  if (full == NULL) {
    be__free(n);
    return NULL;
  }
  memcpy(full->data + klen, &code, sizeof code);
  if (mlen) memcpy(full->data + klen + sizeof code, msg, mlen);
  full->vlen = (uint32_t)(sizeof code + mlen);
  full->flags = BE__ENTRY_NEGATIVE;
  return full;
}

/* A fresh copy of an error and its cause chain, through the public API.
 * On allocation failure the static out-of-memory error. */
static be_error *clone_error(const be_error *src) {
  be_error *cause = NULL, *e = NULL;
  const be_error *sc = be_error_cause(src);
  if (sc) {
    cause = clone_error(sc);
    if (be_error_code(cause) == BE_E_NOMEM && be_error_code(sc) != BE_E_NOMEM) {
      be_error_free(cause);
      be__error_oom(&e);
      return e;
    }
  }
  const char *msg = be_error_message(src);
  int rc = be__error_wrap_raw(&e, be_error_code(src), msg, strlen(msg), cause);
  if (rc != BE_OK) return e; /* the static OOM error */
  for (size_t i = 0; i < be_error_field_count(src); i++) {
    const char *f = be_error_field_name(src, i), *m = be_error_field_message(src, i);
    if (be__error_add_field_raw(e, f, strlen(f), m, strlen(m)) != BE_OK) goto oom;
  }
  if (be_error_driver_code(src) && be_error_set_driver_code(e, be_error_driver_code(src)) != BE_OK)
    goto oom;
  if (be_error_set_retryable(e, be_error_is_retryable(src)) != BE_OK) goto oom;
  return e;
oom:
  be_error_free(e);
  e = NULL;
  be__error_oom(&e);
  return e;
}

static int negative_cacheable(int rc, const be_error *e) {
  if (rc == BE_E_NOMEM || rc == BE_E_MISUSE || rc == BE_E_INTERNAL) return 0;
  return e ? !be_error_is_retryable(e) : !be_code_is_retryable(rc);
}

/* Free a finished flight: a heap one (joined), or nothing for the
 * leader's stack one, whose error (if any) was taken or is freed here. */
static void flight_free(be__cache_flight *f) {
  if (f->err) be_error_free(f->err);
  if (!f->heap) return;
  pthread_cond_destroy(&f->cond);
  pthread_mutex_destroy(&f->mu);
  be__free(f);
}

/* A joiner found the leader's stack flight at *link (shard lock held):
 * move it to the heap, with its mutex and condition variable, so waiters
 * never touch the leader's stack. NULL when out of memory (nothing
 * changed). */
static be__cache_flight *flight_promote(be__cache_flight **link) {
  be__cache_flight *f = be__malloc(sizeof *f);
  if (f == NULL) return NULL;
  *f = **link;
  if (pthread_mutex_init(&f->mu, NULL) != 0) {
    be__free(f);
    return NULL;
  }
  if (pthread_cond_init(&f->cond, NULL) != 0) {
    pthread_mutex_destroy(&f->mu);
    be__free(f);
    return NULL;
  }
  f->heap = 1;
  (*link)->moved = f;
  *link = f;
  return f;
}

/* The load in flight for key that a new caller may join. A stale one (the
 * key was set, deleted or invalidated after it started) may have read the
 * old value, so a caller arriving now must not get its result: it starts a
 * load of its own. A registered-prefix invalidation only bumps the epoch,
 * so any flight older than the current epoch counts as stale too (at worst
 * one extra load when an unrelated prefix was invalidated meanwhile). */
static be__cache_flight **flight_find(be_cache *c, be__cache_shard *s, uint64_t h,
                                      const void *key, size_t klen) {
  uint64_t epoch = atomic_load(&c->epoch);
  for (be__cache_flight **l = be__cache_flight_list(s, h); *l; l = &(*l)->next) {
    be__cache_flight *f = *l;
    if (!f->stale && !f->fill && f->epoch0 == epoch && f->hash == h && f->klen == klen &&
        memcmp(f->key, key, klen) == 0)
      return l;
  }
  return NULL;
}

/* Take the flight's outcome as one participant, under the shard lock.
 * Returns the code; *out gets a handle (its reference was added by the
 * leader) or the error a copy or, for the last participant, the original.
 * Returns 1 in *last when the caller must free the flight. */
static inline int take_result(be__cache_flight *f, entry **out, be_error **err, int *last) {
  int rc = f->rc;
  *last = --f->refs == 0;
  if (rc == BE_OK) {
    *out = f->result;
  } else if (err) {
    if (*last && f->err) {
      *err = f->err;
      f->err = NULL;
    } else if (f->err) {
      *err = clone_error(f->err);
    } else {
      be__error_set(err, rc, "%s", be_strerror(rc));
    }
  }
  return rc;
}

/* The error a negative entry stores: its code, and its message as a new
 * error in *err. */
static int negative_error(const entry *e, be_error **err) {
  int32_t code;
  memcpy(&code, e->data + e->klen, sizeof code);
  if (err) {
    char *msg = be__strndup((const char *)e->data + e->klen + sizeof code, e->vlen - sizeof code);
    if (msg == NULL) {
      be__error_oom(err);
    } else {
      be__error_set(err, code, "%s", msg);
      be__free(msg);
    }
  }
  return code;
}

/* e was found under the shard lock: a hit hands out a reference, a
 * negative hit its stored error. Unlocks and buries. */
static int serve_found(be_cache *c, be__cache_shard *s, entry *e, entry *grave, entry **out,
                       int32_t *out_status, be_error **err) {
  atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
  be__cache_touch_locked(c, s, e);
  int negative = (e->flags & BE__ENTRY_NEGATIVE) != 0;
  if (negative) s->negative_hits++;
  else s->hits++;
  be__spinlock_unlock(&s->lock);
  if (grave) be__cache_bury(c, grave);
  if (!negative) {
    *out = e;
    if (out_status) *out_status = BE_CACHE_HIT;
    return BE_OK;
  }
  int code = negative_error(e, err);
  be__cache_entry_unref(e);
  if (out_status) *out_status = BE_CACHE_NEGATIVE;
  return code;
}

/* Wait (no lock held) until flight f's leader is done, then take the
 * shared result. The caller counted itself in f->refs. */
static int wait_flight(be__cache_shard *s, be__cache_flight *f, entry **out, be_error **err) {
  pthread_mutex_lock(&f->mu);
  while (!f->done) pthread_cond_wait(&f->cond, &f->mu);
  pthread_mutex_unlock(&f->mu);
  int last = 0;
  be__spinlock_lock(&s->lock);
  int rc = take_result(f, out, err, &last);
  be__spinlock_unlock(&s->lock);
  if (last) flight_free(f);
  return rc;
}

/* List f, a new flight for key on the caller's stack, in shard s (lock
 * held). */
static void start_flight(be_cache *c, be__cache_shard *s, be__cache_flight *f, uint64_t h,
                         const void *key, size_t klen) {
  /* Every field but mu and cond, which a stack flight never uses. */
  f->hash = h;
  f->key = key;
  f->klen = klen;
  f->refs = 1;
  f->done = f->stale = f->rc = f->heap = f->fill = 0;
  f->err = NULL;
  f->result = NULL;
  f->moved = NULL;
  /* A registered-prefix invalidation during the load must kill its result:
   * stamp the result with the epoch from before the loader ran. */
  f->epoch0 = atomic_load(&c->epoch);
  be__cache_flight_list_locked(s, f);
  s->loads++;
}

/* Run the loader (no lock held). BE_OK with ld->entry set, or an error
 * code with *lerr set and no entry; a loader breaking its contract (BE_OK
 * without a value, a positive code) gives BE_E_INTERNAL. */
static int run_loader(be_cache_load *ld, be_cache_loader_fn loader, void *ud, be_error **lerr) {
  int rc = loader(ld->key, ld->klen, ld, ud, lerr);
  if (rc == BE_OK && ld->entry == NULL) {
    rc = be__error_set(lerr, BE_E_INTERNAL, "cache loader returned BE_OK without a value");
  } else if (rc > 0) {
    be_error_free(*lerr);
    *lerr = NULL;
    rc = be__error_set(lerr, BE_E_INTERNAL, "cache loader returned %d", rc);
  }
  if (rc != BE_OK && ld->entry) {
    be__free(ld->entry);
    ld->entry = NULL;
  }
  return rc;
}

/* Store the load's outcome (shard lock held): the value (unless the key
 * changed meanwhile or it does not fit), or the error and a negative
 * entry for it, as f's result. */
static void settle_flight(be_cache *c, be__cache_shard *s, be__cache_flight *f, int rc,
                          const be_cache_load *ld, be_error *lerr, entry *neg, entry **grave,
                          be__cache_debt *debt) {
  be__cache_flight_unlist_locked(s, f);
  if (rc == BE_OK) {
    entry *v = ld->entry;
    /* The value's size was checked by be_cache_load_set_value. */
    int fits = be__cache_fits(c, be__cache_charge_of(f->klen, v->vlen));
    /* One reference per participant, plus the table's (taken before the
     * insert publishes it). */
    atomic_store_explicit(&v->refs, (uint32_t)(f->refs + 1), memory_order_relaxed);
    if (!be__cache_read_settle_locked(c, s, f, fits ? v : NULL, ld->ttl, grave, debt))
      atomic_store_explicit(&v->refs, (uint32_t)f->refs, memory_order_relaxed);
    f->result = v;
  } else {
    s->load_errors++;
    f->err = lerr;
    if (neg && !f->stale && be__cache_fits(c, be__cache_charge_of(f->klen, neg->vlen)))
      be__cache_insert_locked(c, s, f->hash, neg, c->negative_ttl, f->epoch0, grave, debt);
    else
      be__free(neg);
  }
  f->rc = rc;
}

/* Lead flight f: load with no lock held, store the outcome, wake the
 * waiters and take this caller's share of the result. */
static int lead_flight(be_cache *c, be__cache_shard *s, be__cache_flight *f, entry **out,
                       be_cache_loader_fn loader, void *ud, be_error **err) {
  be_cache_load ld = {c, f->key, f->klen, NULL, 0};
  be_error *lerr = NULL;
  int rc = run_loader(&ld, loader, ud, &lerr);
  entry *neg = NULL;
  if (rc != BE_OK && c->negative_ttl > 0 && negative_cacheable(rc, lerr))
    neg = negative_entry(f->key, f->klen, rc, lerr);

  entry *grave = NULL;
  int last = 0;
  be__cache_debt debt = {0, 0};
  be__spinlock_lock(&s->lock);
  if (f->moved) f = f->moved; /* joined meanwhile: the heap copy is the flight now */
  settle_flight(c, s, f, rc, &ld, lerr, neg, &grave, &debt);
  entry *stored = f->result ? f->result : neg;
  if (f->heap) {
    pthread_mutex_lock(&f->mu); /* waiters read the result under the shard lock, after this */
    f->done = 1;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->mu);
  }
  rc = take_result(f, out, err, &last);
  be__spinlock_unlock(&s->lock);
  if (debt.count || debt.bytes) be__cache_settle(c, s, stored, &debt, &grave);
  be__cache_bury(c, grave); /* also after an insert that grew the table */
  if (last) flight_free(f);
  return rc;
}

/* Everything but a lock-free hit: the locked lookup, then joining or
 * leading a load. Out of line, so a hit does not pay for its frame. */
static __attribute__((noinline)) int get_or_load_locked(entry **out, int32_t *out_status,
                                                        be_cache *c, be__cache_shard *s,
                                                        uint64_t h, const void *key, size_t klen,
                                                        int64_t now, be_cache_loader_fn loader,
                                                        void *ud, be_error **err) {
  entry *grave = NULL;
  be__cache_lock_for(s, h);
  entry *e = be__cache_lookup_locked(c, s, h, key, klen, now, &grave);
  if (e) return serve_found(c, s, e, grave, out, out_status, err);
  s->misses++;
  be__cache_flight **fl = s->nflights ? flight_find(c, s, h, key, klen) : NULL;
  be__cache_flight own, *f = NULL;
  if (fl) {
    f = (*fl)->heap ? *fl : flight_promote(fl);
    if (f) {
      f->refs++; /* keeps f alive until this caller's take_result */
      s->load_waits++;
    }
  } else {
    start_flight(c, s, f = &own, h, key, klen);
  }
  be__spinlock_unlock(&s->lock);
  if (grave) be__cache_bury(c, grave);
  int rc;
  if (fl) {
    if (f == NULL) return be__error_oom(err);
    rc = wait_flight(s, f, out, err);
    if (out_status) *out_status = BE_CACHE_SHARED;
    return rc;
  }
  rc = lead_flight(c, s, f, out, loader, ud, err);
  if (out_status) *out_status = BE_CACHE_LOADED;
  return rc;
}

int be_cache_get_or_load(be_cache_entry **out, int32_t *out_status, be_cache *c,
                         const void *key, size_t klen, be_cache_loader_fn loader,
                         void *ud, be_error **err) {
  if (out_status) *out_status = 0;
  if (out) *out = NULL;
  if (out == NULL || c == NULL || loader == NULL || (key == NULL && klen))
    return be__error_set(err, BE_E_MISUSE, "be_cache_get_or_load: NULL argument");
  if (klen > BE_CACHE_MAX_KEY) return be__error_field(err, "key", "too long");

  uint64_t h = be__cache_hash(c, key, klen);
  be__cache_shard *s = be__cache_shard_of(c, h);
  int64_t now = be__cache_lookup_now(c);
  if ((*out = be__cache_get_unlocked(c, s, h, key, klen, now)) != NULL) {
    if (out_status) *out_status = BE_CACHE_HIT;
    return BE_OK;
  }
  return get_or_load_locked(out, out_status, c, s, h, key, klen, now, loader, ud, err);
}

int be_cache_load_set_value(be_cache_load *ld, const void *value, size_t vlen, int64_t ttl,
                            be_error **err) {
  if (ld == NULL || (value == NULL && vlen))
    return be__error_set(err, BE_E_MISUSE, "be_cache_load_set_value: NULL load or value");
  if (ttl < BE_CACHE_TTL_FOREVER)
    return be__error_field(err, "ttl_ms", "must be > 0, 0 (default) or -1 (forever)");
  if (!be__cache_lengths_ok(ld->klen, vlen)) return be__error_field(err, "value", "too long");
  entry *e = be__cache_entry_new(ld->cache, ld->key, ld->klen, value, vlen);
  if (e == NULL) return be__error_oom(err);
  if (ld->entry) be__free(ld->entry); /* a second value replaces the first */
  ld->entry = e;
  ld->ttl = be__cache_ttl_ns(ttl);
  return BE_OK;
}
