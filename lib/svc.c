/* SPDX-License-Identifier: MIT */
/* Helpers shared by the service modules; see svc.h. */
#include <backend/pool.h>
#include <backend/user.h>

#include <sodium.h>
#include <string.h>

#include "error.h"
#include "svc.h"
#include "utf8.h"

int be__svc_acquire(const be__app_res *res, be_conn **out, be_error **err) {
  return be_pool_acquire_at(out, res->pool, __FILE__, __LINE__, err);
}

void be__svc_release(const be__app_res *res, be_conn *conn) { be_pool_release(res->pool, conn); }

int be__svc_write(const be__app_res *res, be_tx_fn fn, void *ud, be_error **err) {
  be_conn *conn = NULL;
  int rc = be__svc_acquire(res, &conn, err);
  if (rc != BE_OK) return rc;
  rc = be_tx_run(conn, BE_TX_IMMEDIATE, fn, ud, err);
  be__svc_release(res, conn);
  return rc;
}

int64_t be__svc_now(const be__app_res *res) { return be_clock_wall_ns(res->opts.clock); }

int be__svc_str(const char *s, size_t len, const char *field, size_t max, size_t *out_len,
                be_error **err) {
  if (s == NULL) return be__error_field(err, field, "is required");
  size_t n = len == BE_NUL_TERMINATED ? strnlen(s, max + 1) : len;
  if (n > max) return be__error_field(err, field, "is longer than %zu bytes", max);
  if (n > 0 && memchr(s, '\0', n) != NULL)
    return be__error_field(err, field, "contains a NUL byte");
  *out_len = n;
  return BE_OK;
}

static int is_space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int be__svc_text(const char *s, size_t len, const char *field, size_t min_chars,
                 size_t max_chars, int flags, const char **out_s, size_t *out_len,
                 be_error **err) {
  if (flags & BE__TEXT_TRIM) {
    while (len > 0 && is_space((unsigned char)s[0])) { s++; len--; }
    while (len > 0 && is_space((unsigned char)s[len - 1])) len--;
  }
  /* A cheap bound first, so a huge input costs nothing: a code point is at
   * most 4 bytes. */
  if (len > max_chars * 4)
    return be__error_field(err, field, "is longer than %zu characters", max_chars);
  const unsigned char *p = (const unsigned char *)s;
  size_t chars = 0;
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    size_t n = be__utf8_decode(p + i, len - i, &cp);
    if (n == 0) return be__error_field(err, field, "is not valid UTF-8");
    if (cp == 0) return be__error_field(err, field, "contains a NUL byte");
    int ctl = cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0);
    if (ctl && !((flags & BE__TEXT_MULTILINE) && (cp == '\n' || cp == '\t' || cp == '\r')))
      return be__error_field(err, field, "contains a control character");
    chars++;
    i += n;
  }
  if (chars < min_chars)
    return min_chars == 1 ? be__error_field(err, field, "must not be empty")
                          : be__error_field(err, field, "is shorter than %zu characters",
                                            min_chars);
  if (chars > max_chars)
    return be__error_field(err, field, "is longer than %zu characters", max_chars);
  if (out_s) *out_s = s;
  if (out_len) *out_len = len;
  return BE_OK;
}

int be__svc_email(const char *s, size_t len, char *out, size_t *out_len, be_error **err) {
  while (len > 0 && is_space((unsigned char)s[0])) { s++; len--; }
  while (len > 0 && is_space((unsigned char)s[len - 1])) len--;
  if (len == 0) return be__error_field(err, "email", "must not be empty");
  if (len > BE_USER_EMAIL_MAX)
    return be__error_field(err, "email", "is longer than %d bytes", BE_USER_EMAIL_MAX);
  if (!be__utf8_valid(s, len)) return be__error_field(err, "email", "is not valid UTF-8");
  size_t at = len, ats = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= 0x20 || c == 0x7f)
      return be__error_field(err, "email", "contains a space or control character");
    if (c == '@') { ats++; at = i; }
    out[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : (char)c;
  }
  out[len] = '\0';
  if (ats != 1) return be__error_field(err, "email", "must contain exactly one '@'");
  if (at == 0 || at > 64)
    return be__error_field(err, "email", "must have 1..64 bytes before the '@'");
  const char *dom = out + at + 1;
  size_t dlen = len - at - 1;
  if (dlen == 0 || dom[0] == '.' || dom[dlen - 1] == '.' || strstr(dom, "..") != NULL)
    return be__error_field(err, "email", "has an invalid domain");
  /* C1 controls are code points U+0080..U+009F: bytes C2 80..C2 9F. */
  for (size_t i = 0; i + 1 < len; i++)
    if ((unsigned char)out[i] == 0xc2 && (unsigned char)out[i + 1] < 0xa0)
      return be__error_field(err, "email", "contains a space or control character");
  *out_len = len;
  return BE_OK;
}

int be__svc_check_id(int64_t id, const char *field, be_error **err) {
  if (id <= 0) return be__error_field(err, field, "must be a positive id");
  return BE_OK;
}

int be__svc_check_actor(int64_t actor_id, be_error **err) {
  if (actor_id < 0) return be__error_field(err, "actor_id", "must be 0 (the system) or a user id");
  return BE_OK;
}

void be__svc_cursor_encode(char *out, uint8_t tag, int64_t value) {
  unsigned char bin[9];
  uint64_t v = (uint64_t)value;
  bin[0] = tag;
  for (int i = 0; i < 8; i++) bin[1 + i] = (unsigned char)(v >> (56 - 8 * i));
  sodium_bin2base64(out, BE__CURSOR_MAX + 1, bin, sizeof bin,
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

int be__svc_cursor_decode(const char *s, size_t len, uint8_t tag, int64_t *out, be_error **err) {
  /* A NUL byte inside len is refused by the base64url decoder below. */
  if (len == BE_NUL_TERMINATED) len = strnlen(s, BE__CURSOR_MAX + 1);
  if (len == 0 || len > BE__CURSOR_MAX) return be__error_field(err, "cursor", "is malformed");
  unsigned char bin[16];
  size_t bin_len = 0;
  const char *end = NULL;
  if (sodium_base642bin(bin, sizeof bin, s, len, NULL, &bin_len, &end,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
      end != s + len || bin_len != 9 || bin[0] != tag)
    return be__error_field(err, "cursor", "is malformed");
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | bin[1 + i];
  if ((int64_t)v < 0) return be__error_field(err, "cursor", "is malformed");
  *out = (int64_t)v;
  return BE_OK;
}

int be__svc_json_object(be_conn *conn, const char *json, size_t len, const char *field,
                        be_error **err) {
  be_stmt *st = NULL;
  int rc = be_conn_prepare(&st, conn, "SELECT CASE WHEN json_valid(?1) THEN json_type(?1) = 'object' ELSE 0 END", err);
  if (rc != BE_OK) return rc;
  rc = be_stmt_bind_text(st, 1, json, len, err);
  if (rc == BE_OK) rc = be_stmt_step(st, err);
  if (rc == BE_ROW) {
    rc = be_stmt_column_int64(st, 0) == 1 ? BE_OK
                                          : be__error_field(err, field, "must be a JSON object");
  } else if (rc == BE_DONE) {
    rc = be__error_set(err, BE_E_INTERNAL, "JSON check returned no row");
  }
  /* Any other failure is the database's (json_type() only ever sees text
   * json_valid() accepted): report it as such, never as the caller's 400. */
  be_stmt_finalize(st);
  return rc;
}

int be__svc_exec_i64(be_conn *conn, const char *sql, const int64_t *args, int32_t n,
                     int64_t *out_changes, be_error **err) {
  be_stmt *st = NULL;
  int rc = be_conn_prepare(&st, conn, sql, err);
  if (rc != BE_OK) return rc;
  for (int32_t i = 0; i < n && rc == BE_OK; i++) rc = be_stmt_bind_int64(st, i + 1, args[i], err);
  if (rc == BE_OK) {
    rc = be_stmt_step(st, err);
    if (rc == BE_DONE || rc == BE_ROW) rc = BE_OK;
  }
  be_stmt_finalize(st);
  if (rc == BE_OK && out_changes) *out_changes = be_conn_changes(conn);
  return rc;
}
