/* SPDX-License-Identifier: MIT */
/* What the services check of a client's input; see svc_input.h. */
#include "svc_input.h"

#include <backend/user.h>

#include <sodium.h>
#include <string.h>

#include "error.h"
#include "svc_sql.h"
#include "utf8.h"

size_t be__svc_len(const char *s, size_t len, size_t max) {
  return len == BE_NUL_TERMINATED ? strnlen(s, max + 1) : len;
}

int be__svc_str(const char *s, size_t len, const char *field, size_t max, size_t *out_len,
                be_error **err) {
  if (s == NULL) return be__error_field(err, field, "is required");
  size_t n = be__svc_len(s, len, max);
  if (n > max) return be__error_field(err, field, "is longer than %zu bytes", max);
  if (n > 0 && memchr(s, '\0', n) != NULL)
    return be__error_field(err, field, "contains a NUL byte");
  *out_len = n;
  return BE_OK;
}

static int is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

const char *be__svc_trim(const char *s, size_t *len) {
  while (*len > 0 && is_space((unsigned char)s[0])) { s++; (*len)--; }
  while (*len > 0 && is_space((unsigned char)s[*len - 1])) (*len)--;
  return s;
}

/* The number of code points in s, or an error naming field. */
static int count_chars(const char *s, size_t len, const char *field, int flags, size_t *out,
                       be_error **err) {
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
  *out = chars;
  return BE_OK;
}

int be__svc_text(const char *s, size_t len, const char *field, size_t min_chars,
                 size_t max_chars, int flags, const char **out_s, size_t *out_len,
                 be_error **err) {
  if (flags & BE__TEXT_TRIM) s = be__svc_trim(s, &len);
  /* A cheap bound first, so a huge input costs nothing: a code point is at
   * most 4 bytes. */
  if (len > max_chars * 4)
    return be__error_field(err, field, "is longer than %zu characters", max_chars);
  size_t chars = 0;
  int rc = count_chars(s, len, field, flags, &chars, err);
  if (rc != BE_OK) return rc;
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

/* The domain after the '@' of a lower-cased email: not empty, no leading,
 * trailing or doubled dot, no C1 control (bytes C2 80..C2 9F). */
static int check_domain(const char *out, size_t len, size_t at, be_error **err) {
  const char *dom = out + at + 1;
  size_t dlen = len - at - 1;
  if (dlen == 0 || dom[0] == '.' || dom[dlen - 1] == '.' || strstr(dom, "..") != NULL)
    return be__error_field(err, "email", "has an invalid domain");
  for (size_t i = 0; i + 1 < len; i++)
    if ((unsigned char)out[i] == 0xc2 && (unsigned char)out[i + 1] < 0xa0)
      return be__error_field(err, "email", "contains a space or control character");
  return BE_OK;
}

int be__svc_email(const char *s, size_t len, char *out, size_t *out_len, be_error **err) {
  s = be__svc_trim(s, &len);
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
    out[i] = (char)be__svc_lower(c);
  }
  out[len] = '\0';
  if (ats != 1) return be__error_field(err, "email", "must contain exactly one '@'");
  if (at == 0 || at > 64)
    return be__error_field(err, "email", "must have 1..64 bytes before the '@'");
  int rc = check_domain(out, len, at, err);
  if (rc == BE_OK) *out_len = len;
  return rc;
}

int be__svc_check_version(uint32_t version, uint32_t known, const char *what, be_error **err) {
  if (version == known) return BE_OK;
  return be__error_set(err, BE_E_MISUSE, "%s: unknown version %u", what, (unsigned)version);
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
  len = be__svc_len(s, len, BE__CURSOR_MAX);
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

int be__svc_field_error(int rc, be_error **err, const char *field, const char *why,
                        const char *msg) {
  if (err == NULL || *err == NULL) return rc;
  be_error *cause = *err;
  *err = NULL;
  be__error_wrap(err, rc, cause, "%s", msg);
  if (!be__error_is_static(*err)) be_error_add_field(*err, field, why);
  return be_error_code(*err);
}

int be__svc_json_object(be_conn *conn, const char *json, size_t len, const char *field,
                        be_error **err) {
  int64_t is_object = 0;
  int rc = be__svc_ints(conn, &is_object, 1, err,
                        "SELECT CASE WHEN json_valid(?1) THEN json_type(?1) = 'object' ELSE 0 END",
                        "s", json, len);
  /* Any other failure is the database's (json_type() only ever sees text
   * json_valid() accepted): report it as such, never as the caller's 400. */
  if (rc == BE_DONE) return be__error_set(err, BE_E_INTERNAL, "JSON check returned no row");
  if (rc != BE_ROW) return rc;
  return is_object == 1 ? BE_OK : be__error_field(err, field, "must be a JSON object");
}
