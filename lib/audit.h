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

/*
 * Check the audit log against the app's key when the app starts, on conn
 * in the setup transaction (the wiring calls it after the migrations, so
 * a refusal rolls them back too). A keyed app (res->audit_key_len
 * > 0): a key record must match the key, or one is written -- keying the
 * log from its next row on, which for a log that holds rows needs
 * audit_key_adopt = 1. An unkeyed app is refused on a keyed log (it could
 * only write rows that break the chain). Failures are field errors naming
 * "audit_key".
 */
int be__audit_open(const be__app_res *res, be_conn *conn, be_error **err);

#endif
