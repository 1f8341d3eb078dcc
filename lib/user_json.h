/* SPDX-License-Identifier: MIT */
/* Internal: the rule on a user's `extra` JSON that the databases' own
 * checks do not share (backend/user.h): SQLite's json_valid takes a
 * \u0000 escape and a lone surrogate escape that PostgreSQL's jsonb
 * refuses, and refuses nesting deeper than its limit that jsonb takes.
 * Checked in C first, so both answer alike. */
#ifndef BE_LIB_USER_JSON_H
#define BE_LIB_USER_JSON_H

#include <backend/error.h>

#include <stddef.h>

/* BE_OK when json (len bytes) holds no \u0000 escape, no lone surrogate
 * escape (\uD800..\uDBFF not followed by a \uDC00..\uDFFF escape, or one
 * of those without a high one before it) and no object or array nested
 * deeper than BE_USER_EXTRA_DEPTH_MAX levels; else a validation error on
 * field. Whether the text is JSON at all is left to the database. */
int be__user_json_check(const char *json, size_t len, const char *field, be_error **err);

#endif
