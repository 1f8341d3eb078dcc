/* SPDX-License-Identifier: MIT */
/* A statement observer's list of the connections it is attached to
 * (attached_observer.h). */
#include <string.h>

#include "alloc.h"
#include "attached_observer.h"
#include "error.h"

int be__attached_observer_init(be__attached_observer *h, be__stmt_observer fn, int64_t exact_over_ns,
                               uint32_t flags, be_error **err) {
  memset(h, 0, sizeof *h);
  h->fn = fn;
  h->exact_over_ns = exact_over_ns;
  h->flags = flags;
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
  while (i < h->n && h->conns[i].conn != conn) i++;
  return i;
}

/* Add to *sum the runs on a's connection since a's base. Locked. */
static void add_since(be__run_counts *sum, const be__attached_conn *a) {
  be__run_counts now;
  be__conn_run_counts(a->conn, &now);
  sum->runs += now.runs - a->base.runs;
  sum->rows += now.rows - a->base.rows;
  sum->errors += now.errors - a->base.errors;
}

/* Forget entry i (order does not matter), keeping its runs. Locked. */
static void forget(be__attached_observer *h, size_t i) {
  add_since(&h->done, &h->conns[i]);
  h->conns[i] = h->conns[--h->n];
  if (h->n == 0) { /* nothing attached: hold no memory */
    be__free(h->conns);
    h->conns = NULL;
    h->cap = 0;
  }
}

/* The connection is closing (on its own thread): it has already dropped
 * h, and its counts are final. */
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
    be__attached_conn *cs = be__realloc(h->conns, cap * sizeof *cs);
    if (cs == NULL) {
      rc = be__error_oom(err);
      goto out;
    }
    h->conns = cs;
    h->cap = cap;
  }
  rc = be__conn_observer_add_ex(conn, h->fn, on_close, h, h->exact_over_ns, h->flags, err);
  if (rc == BE_OK) {
    h->conns[h->n].conn = conn;
    be__conn_run_counts(conn, &h->conns[h->n++].base);
  }
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
  for (size_t i = 0; i < h->n; i++) {
    be__conn_observer_remove(h->conns[i].conn, h->fn, h);
    add_since(&h->done, &h->conns[i]);
  }
  be__free(h->conns);
  h->conns = NULL;
  h->n = h->cap = 0;
  pthread_mutex_unlock(&h->lock);
}

void be__attached_observer_counts(be__attached_observer *h, be__run_counts *out) {
  pthread_mutex_lock(&h->lock);
  *out = h->done;
  for (size_t i = 0; i < h->n; i++) add_since(out, &h->conns[i]);
  pthread_mutex_unlock(&h->lock);
}

void be__attached_observer_counts_reset(be__attached_observer *h) {
  pthread_mutex_lock(&h->lock);
  memset(&h->done, 0, sizeof h->done);
  for (size_t i = 0; i < h->n; i++) be__conn_run_counts(h->conns[i].conn, &h->conns[i].base);
  pthread_mutex_unlock(&h->lock);
}
