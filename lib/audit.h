/* SPDX-License-Identifier: MIT */
/* Internal: how the services write audit rows. */
#ifndef BE_LIB_AUDIT_H
#define BE_LIB_AUDIT_H

#include <backend/audit.h>
#include <backend/storage.h>

#include "app_resources.h"

/*
 * Append one hash-chained audit row on conn, which must be inside the
 * caller's write transaction (so the row commits or rolls back with the
 * change it records). actor_id 0 is the system; action like "user.update";
 * target_type like "user"; details_json must be valid JSON ("{}" when NULL).
 * Never put secrets in details. The row's time is the resources' clock.
 */
int be__audit_write(const be__app_res *res, be_conn *conn, int64_t actor_id, const char *action,
                    const char *target_type, int64_t target_id, const char *details_json,
                    be_error **err);

#endif
