/* SPDX-License-Identifier: MIT */
/* Internal: what the services check of a client's input -- strings given
 * as (pointer, length), text, emails, ids, JSON objects -- and the opaque
 * keyset cursors they hand out and take back. A failure is a
 * BE_E_VALIDATION naming the field. */
#ifndef BE_LIB_SVC_INPUT_H
#define BE_LIB_SVC_INPUT_H

#include <backend/storage.h>

#include <stddef.h>
#include <stdint.h>

/* The byte length of a client string (s, len): BE_NUL_TERMINATED means up
 * to the first NUL, scanning at most max + 1 bytes (so a view cut at the
 * cap is never judged); any other len is returned as is. s is not NULL. */
size_t be__svc_len(const char *s, size_t len, size_t max);

/* Resolve a client string (s, len) into its byte length (be__svc_len);
 * 0 is the empty string (s is then not read). Fails with a validation
 * error on field when s is NULL, longer than max bytes, or holds a NUL
 * byte inside len. UTF-8 is left to the caller's own rules. */
int be__svc_str(const char *s, size_t len, const char *field, size_t max, size_t *out_len,
                be_error **err);

/* (s, *len) without its leading and trailing ASCII white space: returns
 * the new start; *len becomes the new length. */
const char *be__svc_trim(const char *s, size_t *len);

/* ASCII lower case of c; any other byte as is. */
static inline unsigned char be__svc_lower(unsigned char c) {
  return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Validate text: valid UTF-8, no control characters (tab, newline and a
 * CR right before a newline are allowed with BE__TEXT_MULTILINE),
 * min_chars..max_chars code points.
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

/* A versioned struct the caller filled (what names it in the message):
 * BE_E_MISUSE unless version is the one this library knows. */
int be__svc_check_version(uint32_t version, uint32_t known, const char *what, be_error **err);

/* An id argument must be > 0; an actor must be >= 0. */
int be__svc_check_id(int64_t id, const char *field, be_error **err);
int be__svc_check_actor(int64_t actor_id, be_error **err);

/* Opaque keyset cursors: base64url (no padding) of a tag byte and a
 * big-endian int64. out holds BE__CURSOR_MAX + 1 bytes. */
#define BE__CURSOR_MAX 24
void be__svc_cursor_encode(char *out, uint8_t tag, int64_t value);
int be__svc_cursor_decode(const char *s, size_t len, uint8_t tag, int64_t *out, be_error **err);

/* Blame a field for the error in *err (code rc, e.g. a UNIQUE or CHECK
 * constraint that failed): it becomes the cause of a new error of the same
 * code saying msg, with the field error "field: why". Returns the code
 * (BE_E_NOMEM when the new error could not be made). err may be NULL. */
int be__svc_field_error(int rc, be_error **err, const char *field, const char *why,
                        const char *msg);

/* Check with the database's JSON functions that json (len bytes) is a
 * JSON object: sql is the app's BE__SQL_JSON_OBJECT (svc_catalog.h, per
 * dialect); a validation error names field otherwise. */
int be__svc_json_object(be_conn *conn, const char *sql, const char *json, size_t len,
                        const char *field, be_error **err);

#endif
