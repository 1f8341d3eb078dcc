/* SPDX-License-Identifier: MIT */
/* Several statement observers on one connection. storage.c gives each
 * be_conn a single observer slot; the query layer (scopes, slow-query log,
 * query stats) installs one dispatcher per connection that calls every
 * hook attached to it. The dispatcher's list lives in a small process-wide
 * registry keyed by connection, so a hook can be attached without knowing
 * what else is attached.
 *
 * Rules: attach and detach on a connection from the thread using it (or
 * while nobody uses it), and detach every hook before be_conn_close(): the
 * registry cannot see a connection close. */
#ifndef BE_LIB_QHOOK_H
#define BE_LIB_QHOOK_H

#include <backend/error.h>

#include "storage.h"

/* Attach (fn, ud) to conn; attaching the same pair twice is a no-op.
 * Errors: BE_E_MISUSE (NULL), BE_E_NOMEM. */
int be__qhook_attach(be_conn *conn, be__stmt_observer fn, void *ud, be_error **err);

/* Detach (fn, ud) from conn; no-op when not attached. */
void be__qhook_detach(be_conn *conn, be__stmt_observer fn, void *ud);

/* Detach every hook whose ud is ud, from every connection. */
void be__qhook_detach_all(void *ud);

/* Number of connections ud is attached to. */
size_t be__qhook_count(void *ud);

#endif
