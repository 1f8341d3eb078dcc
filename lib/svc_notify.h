/* SPDX-License-Identifier: MIT */
/*
 * Internal: the services' change notifications between processes that
 * share one database (drivers with be_driver.listen / notify, i.e.
 * PostgreSQL). A write sends "<id>:<instance>" on a channel of the
 * catalog inside its transaction, so the others hear of it only once it
 * committed; each app's listener (listener.h) hands what it hears back
 * here, and notifications an app sent itself are recognised by its
 * instance (a random number per app) and ignored: it already dropped its
 * own copy. On a driver without notifications (SQLite) nothing is sent
 * and nothing costs more than a flag test.
 */
#ifndef BE_LIB_SVC_NOTIFY_H
#define BE_LIB_SVC_NOTIFY_H

#include "app_resources.h"
#include "svc_catalog.h"

/* Send that object id changed, on channel (a catalog entry naming a
 * channel), on conn inside the caller's transaction. BE_OK at once when
 * the app does not notify. Errors: the driver's. */
int be__svc_notify_id(const be__app_res *res, be_conn *conn, be__sql_id channel, int64_t id,
                      be_error **err);

/* The id of a payload another app sent; 0 for one this app sent itself
 * or that is not "<id>:<instance>". */
int64_t be__svc_notified_id(const be__app_res *res, const char *payload, size_t len);

#endif
