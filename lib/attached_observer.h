/* SPDX-License-Identifier: MIT */
/* A statement observer that knows which connections it is attached to.
 * A connection keeps its own list of statement observers and drops them
 * when it closes (storage.h: be__conn_observer_add, be__conn_close_fn);
 * this is the other direction, for the query layer: a query stats,
 * slow-query log or scope must know which connections it is attached to,
 * so freeing it (or ending a scope) can detach from all of them.
 *
 * Each of those objects embeds one be__attached_observer. Its observer
 * function is called with the be__attached_observer* as ud (get back to
 * the owner with BE__ATTACHED_OBSERVER_OWNER); the connection list has its
 * own mutex, because one shared stats or log is attached from many threads
 * at once, and a connection closing on any thread tells it to forget that
 * connection.
 *
 * Rules (the connection's, see storage.h): attach and detach on a
 * connection from the thread using it, or while nobody uses it; so
 * be__attached_observer_detach_all() (and the free functions built on it)
 * needs every attached connection idle. A connection may be closed while
 * attached. */
#ifndef BE_LIB_ATTACHED_OBSERVER_H
#define BE_LIB_ATTACHED_OBSERVER_H

#include <backend/error.h>

#include <pthread.h>
#include <stddef.h>

#include "storage.h"

/* A connection attached now, with its run counts when it was attached. */
typedef struct be__attached_conn {
  be_conn *conn;
  be__run_counts base;
} be__attached_conn;

typedef struct be__attached_observer {
  be__stmt_observer fn;  /* called with the be__attached_observer * as ud */
  int64_t exact_over_ns; /* be__conn_observer_add_ex(): runs it needs timed exactly */
  uint32_t flags;        /* be__conn_observer_add_ex(): BE__OBS_TIMED_ONLY */
  pthread_mutex_t lock;  /* guards conns, n, cap, done */
  be__attached_conn *conns;
  size_t n, cap;
  be__run_counts done; /* runs on connections since detached or closed */
} be__attached_observer;

/* The object embedding observer h as its member `member`. */
#define BE__ATTACHED_OBSERVER_OWNER(h, type, member) \
  ((type *)(void *)(((char *)(h)) - offsetof(type, member)))

/* Set up h with its observer, which needs the exact duration of runs
 * longer than exact_over_ns (INT64_MAX: sampled timing is enough) and is
 * called as flags say (BE__OBS_TIMED_ONLY; see be__conn_observer_add_ex).
 * Errors: BE_E_INTERNAL (no mutex). */
int be__attached_observer_init(be__attached_observer *h, be__stmt_observer fn, int64_t exact_over_ns,
                               uint32_t flags, be_error **err);

/* The runs on h's connections while attached (be__conn_run_counts), since
 * h was set up or last reset: exact for idle connections, trailing runs
 * in progress on busy ones. Any thread. */
void be__attached_observer_counts(be__attached_observer *h, be__run_counts *out);

/* Count from zero again. */
void be__attached_observer_counts_reset(be__attached_observer *h);

/* Detach from every connection, then release h's memory and mutex. */
void be__attached_observer_destroy(be__attached_observer *h);

/* Observe conn's statements; attaching twice is a no-op.
 * Errors: BE_E_MISUSE (conn NULL), BE_E_NOMEM. */
int be__attached_observer_attach(be__attached_observer *h, be_conn *conn, be_error **err);

/* Stop observing conn; no-op when not attached. */
void be__attached_observer_detach(be__attached_observer *h, be_conn *conn);

/* Detach from every connection. */
void be__attached_observer_detach_all(be__attached_observer *h);

#endif
