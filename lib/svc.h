/* SPDX-License-Identifier: MIT */
/* Internal: helpers the service modules share (user.c, permission.c,
 * audit.c, testkit.c, app.c): pooled transactions, input validation,
 * opaque cursors, the authorisation epoch. */
#ifndef BE_LIB_SVC_H
#define BE_LIB_SVC_H

#include <backend/storage.h>
#include <backend/tx.h>

#include "app_resources.h"

/* Take a pooled connection of the app / give it back. */
int be__svc_acquire(const be__app_res *res, be_conn **out, be_error **err);
void be__svc_release(const be__app_res *res, be_conn *conn);

/* Run fn in a write transaction (BEGIN IMMEDIATE, retried on busy) on a
 * pooled connection; the connection is released before returning. */
int be__svc_write(const be__app_res *res, be_tx_fn fn, void *ud, be_error **err);

/* Resolve a client string (s, len) into its byte length: BE_NUL_TERMINATED
 * means up to the first NUL, scanning at most max + 1 bytes (a view cut at
 * the cap is never judged); any other len is exact, and 0 is the empty
 * string (s is then not read). Fails with a validation error on field
 * when s is NULL, longer than max bytes, or holds a NUL byte inside len.
 * UTF-8 is left to the caller's own rules. */
int be__svc_str(const char *s, size_t len, const char *field, size_t max, size_t *out_len,
                be_error **err);

/* Validate text: valid UTF-8, no control characters (tab and newline are
 * allowed with BE__TEXT_MULTILINE), min_chars..max_chars code points.
 * With BE__TEXT_TRIM, leading and trailing ASCII white space is dropped
 * first: *out_s / *out_len give the trimmed text (pointing into s). */
#define BE__TEXT_TRIM 0x1
#define BE__TEXT_MULTILINE 0x2
int be__svc_text(const char *s, size_t len, const char *field, size_t min_chars,
                 size_t max_chars, int flags, const char **out_s, size_t *out_len,
                 be_error **err);

/* Normalise and validate an email (see backend/user.h) into out, which
 * holds BE_USER_EMAIL_MAX + 1 bytes. */
int be__svc_email(const char *s, size_t len, char *out, size_t *out_len, be_error **err);

/* An id argument must be > 0; an actor must be >= 0. */
int be__svc_check_id(int64_t id, const char *field, be_error **err);
int be__svc_check_actor(int64_t actor_id, be_error **err);

/* Opaque keyset cursors: base64url (no padding) of a tag byte and a
 * big-endian int64. out holds BE__CURSOR_MAX + 1 bytes. */
#define BE__CURSOR_MAX 24
void be__svc_cursor_encode(char *out, uint8_t tag, int64_t value);
int be__svc_cursor_decode(const char *s, size_t len, uint8_t tag, int64_t *out, be_error **err);

/* Check with SQLite's JSON functions that json (len bytes) is a JSON
 * object; a validation error names field otherwise. */
int be__svc_json_object(be_conn *conn, const char *json, size_t len, const char *field,
                        be_error **err);

/* Run a statement with only int64 parameters (?1..?n) to completion.
 * *out_changes (may be NULL) receives the rows it changed. */
int be__svc_exec_i64(be_conn *conn, const char *sql, const int64_t *args, int32_t n,
                     int64_t *out_changes, be_error **err);

/* The app's wall clock now, in nanoseconds. */
int64_t be__svc_now(const be__app_res *res);

/* Wall-clock nanoseconds (as stored) to the milliseconds the public API
 * speaks (rounded down), and back (saturating). */
static inline int64_t be__svc_ns_to_ms(int64_t ns) {
  int64_t ms = ns / 1000000;
  return (ns % 1000000 < 0) ? ms - 1 : ms;
}
static inline int64_t be__svc_ms_to_ns(int64_t ms) {
  if (ms > INT64_MAX / 1000000) return INT64_MAX;
  if (ms < INT64_MIN / 1000000) return INT64_MIN;
  return ms * 1000000;
}

/* t + d and t - d for a time t and a duration d >= 0 (ns), saturating at
 * INT64_MAX / INT64_MIN instead of overflowing: a clock (or a fake one)
 * near the end of the range must give "far future", not a negative time. */
static inline int64_t be__ns_add(int64_t t, int64_t d) {
  return t > INT64_MAX - d ? INT64_MAX : t + d;
}
static inline int64_t be__ns_sub(int64_t t, int64_t d) {
  return t < INT64_MIN + d ? INT64_MIN : t - d;
}

#endif
