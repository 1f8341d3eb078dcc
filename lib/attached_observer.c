/* SPDX-License-Identifier: MIT */
/* A statement observer's list of the connections it is attached to
 * (attached_observer.h). */
#include <string.h>

#include "alloc.h"
#include "attached_observer.h"
#include "error.h"

int be__attached_observer_init(be__attached_observer *h, be__stmt_observer fn, int64_t exact_over_ns,
                               be_error **err) {
  memset(h, 0, sizeof *h);
  h->fn = fn;
  h->exact_over_ns = exact_over_ns;
  if (pthread_mutex_init(&h->lock, NULL) != 0)
    return be__error_set(err, BE_E_INTERNAL, "cannot create a mutex");
  return BE_OK;
}

void be__attached_observer_destroy(be__attached_observer *h) {
  be__attached_observer_detach_all(h);
  pthread_mutex_destroy(&h->lock);
}

/* Index of conn in h->conns, or h->n. Locked. */
static size_t find(const be__attached_observer *h, const be_conn *conn) {
  size_t i = 0;
  while (i < h->n && h->conns[i] != conn) i++;
  return i;
}

/* Forget entry i (order does not matter). Locked. */
static void forget(be__attached_observer *h, size_t i) {
  h->conns[i] = h->conns[--h->n];
  if (h->n == 0) { /* nothing attached: hold no memory */
    be__free(h->conns);
    h->conns = NULL;
    h->cap = 0;
  }
}

/* The connection is closing (on its own thread): it has already dropped
 * the observer, so only our side is left to update. */
static void on_close(void *ud, be_conn *conn) {
  be__attached_observer *h = ud;
  pthread_mutex_lock(&h->lock);
  size_t i = find(h, conn);
  if (i < h->n) forget(h, i);
  pthread_mutex_unlock(&h->lock);
}

int be__attached_observer_attach(be__attached_observer *h, be_conn *conn, be_error **err) {
  if (conn == NULL) return be__error_set(err, BE_E_MISUSE, "conn is NULL");
  int rc = BE_OK;
  pthread_mutex_lock(&h->lock);
  if (find(h, conn) < h->n) goto out; /* attached already */
  if (h->n == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 4;
    be_conn **cs = be__realloc(h->conns, cap * sizeof *cs);
    if (cs == NULL) {
      rc = be__error_oom(err);
      goto out;
    }
    h->conns = cs;
    h->cap = cap;
  }
  rc = be__conn_observer_add_ex(conn, h->fn, on_close, h, h->exact_over_ns, err);
  if (rc == BE_OK) h->conns[h->n++] = conn;
out:
  pthread_mutex_unlock(&h->lock);
  return rc;
}

void be__attached_observer_detach(be__attached_observer *h, be_conn *conn) {
  if (conn == NULL) return;
  pthread_mutex_lock(&h->lock);
  size_t i = find(h, conn);
  if (i < h->n) {
    be__conn_observer_remove(conn, h->fn, h);
    forget(h, i);
  }
  pthread_mutex_unlock(&h->lock);
}

void be__attached_observer_detach_all(be__attached_observer *h) {
  pthread_mutex_lock(&h->lock);
  for (size_t i = 0; i < h->n; i++) be__conn_observer_remove(h->conns[i], h->fn, h);
  be__free(h->conns);
  h->conns = NULL;
  h->n = h->cap = 0;
  pthread_mutex_unlock(&h->lock);
}
