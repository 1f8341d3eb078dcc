/* SPDX-License-Identifier: MIT */
/* The query layer's side of connection observers. A connection keeps its
 * own list of statement observers and drops them when it closes
 * (storage.h: be__conn_observer_add, be__conn_close_fn); what is left to
 * the query layer is the other direction: a query stats, slow-query log
 * or scope must know which connections it is attached to, so freeing it
 * (or ending a scope) can detach from all of them.
 *
 * Each of those objects embeds one be__qhook. Its observer is called with
 * the be__qhook* as ud (get back to the owner with BE__QHOOK_OWNER); the
 * connection list has its own mutex, because one shared stats or log is
 * attached from many threads at once, and a connection closing on any
 * thread tells it to forget that connection.
 *
 * Rules (the connection's, see storage.h): attach and detach on a
 * connection from the thread using it, or while nobody uses it; so
 * be__qhook_detach_all() (and the free functions built on it) needs every
 * attached connection idle. A connection may be closed while attached. */
#ifndef BE_LIB_QHOOK_H
#define BE_LIB_QHOOK_H

#include <backend/error.h>

#include <pthread.h>
#include <stddef.h>

#include "storage.h"

typedef struct be__qhook {
  be__stmt_observer fn; /* called with the be__qhook* as ud */
  pthread_mutex_t lock; /* guards conns, n, cap */
  be_conn **conns;      /* connections attached now */
  size_t n, cap;
} be__qhook;

/* The object embedding hook h as its member `member`. */
#define BE__QHOOK_OWNER(h, type, member) ((type *)(void *)((char *)(h) - offsetof(type, member)))

/* Set up h with its observer. Errors: BE_E_INTERNAL (no mutex). */
int be__qhook_init(be__qhook *h, be__stmt_observer fn, be_error **err);

/* Detach from every connection, then release h's memory and mutex. */
void be__qhook_destroy(be__qhook *h);

/* Observe conn's statements; attaching twice is a no-op.
 * Errors: BE_E_MISUSE (conn NULL), BE_E_NOMEM. */
int be__qhook_attach(be__qhook *h, be_conn *conn, be_error **err);

/* Stop observing conn; no-op when not attached. */
void be__qhook_detach(be__qhook *h, be_conn *conn);

/* Detach from every connection. */
void be__qhook_detach_all(be__qhook *h);

/* Connections attached now. */
size_t be__qhook_count(be__qhook *h);

#endif
