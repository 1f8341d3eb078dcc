/* SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "qhook.h"

typedef struct hook {
  be__stmt_observer fn;
  void *ud;
  struct hook *next;
} hook;

typedef struct chain {
  be_conn *conn;
  hook *head;
} chain;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static chain **chains; /* few connections per process: a linear list is enough */
static size_t nchains, capchains;

/* The observer storage.c calls: fan out to every hook. Runs on the
 * connection's thread; the list only changes on that thread (see qhook.h). */
static void dispatch(void *ud, const char *sql, int64_t duration_ns, int64_t rows, int rc) {
  for (hook *h = ((chain *)ud)->head; h; h = h->next) h->fn(h->ud, sql, duration_ns, rows, rc);
}

static size_t find_chain(be_conn *conn) {
  for (size_t i = 0; i < nchains; i++)
    if (chains[i]->conn == conn) return i;
  return SIZE_MAX;
}

int be__qhook_attach(be_conn *conn, be__stmt_observer fn, void *ud, be_error **err) {
  if (conn == NULL || fn == NULL) return be__error_set(err, BE_E_MISUSE, "conn or observer is NULL");
  pthread_mutex_lock(&lock);
  size_t i = find_chain(conn);
  chain *c = i == SIZE_MAX ? NULL : chains[i];
  for (hook *h = c ? c->head : NULL; h; h = h->next)
    if (h->fn == fn && h->ud == ud) {
      pthread_mutex_unlock(&lock);
      return BE_OK;
    }
  hook *h = be__malloc(sizeof *h);
  if (h == NULL) goto oom;
  if (c == NULL) {
    if (nchains == capchains) {
      size_t cap = capchains ? capchains * 2 : 8;
      chain **cs = be__realloc(chains, cap * sizeof *cs);
      if (cs == NULL) goto oom;
      chains = cs;
      capchains = cap;
    }
    if ((c = be__calloc(1, sizeof *c)) == NULL) goto oom;
    c->conn = conn;
    chains[nchains++] = c;
    be__conn_set_observer(conn, dispatch, c);
  }
  h->fn = fn;
  h->ud = ud;
  h->next = c->head;
  c->head = h;
  pthread_mutex_unlock(&lock);
  return BE_OK;
oom:
  be__free(h);
  if (nchains == 0) { /* keep no registry memory alive while nothing is attached */
    be__free(chains);
    chains = NULL;
    capchains = 0;
  }
  pthread_mutex_unlock(&lock);
  return be__error_oom(err);
}

/* Remove matching hooks from chain i; drop the chain when empty. Locked. */
static void prune(size_t i, be__stmt_observer fn, void *ud) {
  chain *c = chains[i];
  for (hook **pp = &c->head; *pp;) {
    hook *h = *pp;
    if (h->ud == ud && (fn == NULL || h->fn == fn)) {
      *pp = h->next;
      be__free(h);
    } else {
      pp = &h->next;
    }
  }
  if (c->head == NULL) {
    be__conn_set_observer(c->conn, NULL, NULL);
    be__free(c);
    chains[i] = chains[--nchains];
    if (nchains == 0) {
      be__free(chains);
      chains = NULL;
      capchains = 0;
    }
  }
}

void be__qhook_detach(be_conn *conn, be__stmt_observer fn, void *ud) {
  if (conn == NULL) return;
  pthread_mutex_lock(&lock);
  size_t i = find_chain(conn);
  if (i != SIZE_MAX) prune(i, fn, ud);
  pthread_mutex_unlock(&lock);
}

void be__qhook_detach_all(void *ud) {
  pthread_mutex_lock(&lock);
  for (size_t i = nchains; i-- > 0;) prune(i, NULL, ud);
  pthread_mutex_unlock(&lock);
}

size_t be__qhook_count(void *ud) {
  size_t n = 0;
  pthread_mutex_lock(&lock);
  for (size_t i = 0; i < nchains; i++)
    for (hook *h = chains[i]->head; h; h = h->next)
      if (h->ud == ud) n++;
  pthread_mutex_unlock(&lock);
  return n;
}
