/* SPDX-License-Identifier: MIT */
#include <backend/error.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "strbuf.h"
#include "utf8.h"

#define MESSAGE_MAX 4096

typedef struct field_error {
  char *field;
  char *message;
} field_error;

struct be_error {
  int32_t code;
  int32_t retryable;
  int64_t driver_code;
  char *message;
  field_error *fields;
  size_t field_count;
  be_error *cause;
};

/* Returned when allocating an error fails; needs no allocation and is never
 * freed. Its fields are const in spirit: every mutator refuses it. */
static be_error oom_error = {BE_E_NOMEM, 0, 0, "out of memory", NULL, 0, NULL};

typedef struct code_info {
  int32_t code;
  const char *name;
  const char *slug;
  const char *text;
  int32_t status;
  int32_t category;
  int32_t retryable;
} code_info;

/* Indexed by -code. Append only: numbers are ABI. */
static const code_info codes[] = {
  {BE_OK, "BE_OK", "ok", "success", 200, BE_CAT_NONE, 0},
  {BE_E_INTERNAL, "BE_E_INTERNAL", "internal", "internal error", 500, BE_CAT_INTERNAL, 0},
  {BE_E_NOMEM, "BE_E_NOMEM", "out-of-memory", "out of memory", 500, BE_CAT_INTERNAL, 0},
  {BE_E_MISUSE, "BE_E_MISUSE", "misuse", "library misuse", 500, BE_CAT_INTERNAL, 0},
  {BE_E_VALIDATION, "BE_E_VALIDATION", "validation", "validation failed", 400, BE_CAT_VALIDATION, 0},
  {BE_E_UNAUTHORIZED, "BE_E_UNAUTHORIZED", "unauthorized", "not authenticated", 401, BE_CAT_UNAUTHENTICATED, 0},
  {BE_E_FORBIDDEN, "BE_E_FORBIDDEN", "forbidden", "permission denied", 403, BE_CAT_PERMISSION_DENIED, 0},
  {BE_E_NOT_FOUND, "BE_E_NOT_FOUND", "not-found", "not found", 404, BE_CAT_NOT_FOUND, 0},
  {BE_E_CONFLICT, "BE_E_CONFLICT", "conflict", "conflict", 409, BE_CAT_CONFLICT, 0},
  {BE_E_RATE_LIMITED, "BE_E_RATE_LIMITED", "rate-limited", "too many requests", 429, BE_CAT_RATE_LIMITED, 1},
  {BE_E_UNAVAILABLE, "BE_E_UNAVAILABLE", "unavailable", "service unavailable", 503, BE_CAT_UNAVAILABLE, 1},
  {BE_E_TIMEOUT, "BE_E_TIMEOUT", "timeout", "deadline exceeded", 504, BE_CAT_TIMEOUT, 1},
  {BE_E_STORAGE, "BE_E_STORAGE", "storage", "storage error", 500, BE_CAT_INTERNAL, 0},
  {BE_E_POOL_EXHAUSTED, "BE_E_POOL_EXHAUSTED", "pool-exhausted", "connection pool exhausted", 503, BE_CAT_UNAVAILABLE, 1},
  {BE_E_POOL_CLOSED, "BE_E_POOL_CLOSED", "pool-closed", "connection pool closed", 503, BE_CAT_UNAVAILABLE, 0},
  {BE_E_POOL_DEADLOCK, "BE_E_POOL_DEADLOCK", "pool-deadlock", "thread already holds a connection of a full pool", 500, BE_CAT_INTERNAL, 0},
  {BE_E_DB_UNREACHABLE, "BE_E_DB_UNREACHABLE", "db-unreachable", "database unreachable", 503, BE_CAT_UNAVAILABLE, 1},
  {BE_E_BUSY, "BE_E_BUSY", "busy", "database busy", 503, BE_CAT_UNAVAILABLE, 1},
  {BE_E_CONN_LOST, "BE_E_CONN_LOST", "connection-lost", "database connection lost", 503, BE_CAT_UNAVAILABLE, 1},
  {BE_E_SERIALIZATION, "BE_E_SERIALIZATION", "serialization", "serialization failure", 409, BE_CAT_CONFLICT, 1},
  {BE_E_UNSUPPORTED, "BE_E_UNSUPPORTED", "unsupported", "not supported", 501, BE_CAT_UNSUPPORTED, 0},
};

static const code_info unknown = {0, "BE_E_UNKNOWN", "unknown", "unknown error", 500, BE_CAT_INTERNAL, 0};

static const code_info *info(int32_t code) {
  if (code > 0 || code < -(int32_t)(sizeof codes / sizeof codes[0] - 1)) return &unknown;
  return &codes[-code];
}

const char *be_strerror(int32_t code) { return info(code)->text; }
const char *be_code_name(int32_t code) { return info(code)->name; }
int32_t be_code_http_status(int32_t code) { return info(code)->status; }
int32_t be_code_category(int32_t code) { return info(code)->category; }
int32_t be_code_is_retryable(int32_t code) { return info(code)->retryable; }

int be__error_is_static(const be_error *e) { return e == &oom_error; }

int be__error_oom(be_error **err) {
  if (err) *err = &oom_error;
  return BE_E_NOMEM;
}

static be_error *alloc_error(int32_t code, const char *message, size_t len) {
  be_error *e = be__calloc(1, sizeof *e);
  if (e == NULL) return NULL;
  e->code = code;
  e->retryable = info(code)->retryable;
  e->message = be__strndup(message, be__utf8_cut(message, len, MESSAGE_MAX));
  if (e->message == NULL) {
    be__free(e);
    return NULL;
  }
  return e;
}

int be__error_wrap_raw(be_error **out, int32_t code, const char *message, size_t len,
                       be_error *cause) {
  if (out == NULL || code == BE_OK) {
    be_error_free(cause);
    return BE_E_MISUSE;
  }
  if (message == NULL) {
    message = be_strerror(code);
    len = strlen(message);
  }
  be_error *e = alloc_error(code, message, len);
  if (e == NULL) {
    be_error_free(cause);
    return be__error_oom(out);
  }
  e->cause = cause;
  *out = e;
  return BE_OK;
}

/* NULL when text[0..len) may be kept as error text, else why not. */
static const char *text_problem(const char *text, size_t len) {
  if (memchr(text, '\0', len) != NULL) return "contains a NUL byte";
  if (!be__utf8_valid(text, len)) return "is not valid UTF-8";
  return NULL;
}

int be_error_wrap_n(be_error **out, int32_t code, const char *message, size_t message_len,
                    be_error *cause) {
  if (out == NULL || code == BE_OK) {
    be_error_free(cause);
    return BE_E_MISUSE;
  }
  const char *why = NULL;
  if (message != NULL) {
    message = be__text_arg(message, &message_len);
    why = text_problem(message, message_len);
  }
  if (why == NULL) return be__error_wrap_raw(out, code, message, message_len, cause);
  be_error_free(cause);
  return be__error_field(out, "message", "%s", why);
}

int be_error_new_n(be_error **out, int32_t code, const char *message, size_t message_len) {
  return be_error_wrap_n(out, code, message, message_len, NULL);
}

int be_error_wrap(be_error **out, int32_t code, const char *message, be_error *cause) {
  return be_error_wrap_n(out, code, message, BE_NUL_TERMINATED, cause);
}

int be_error_new(be_error **out, int32_t code, const char *message) {
  return be_error_wrap_n(out, code, message, BE_NUL_TERMINATED, NULL);
}

int be_error_add_field_n(be_error *err, const char *field, size_t field_len, const char *message,
                         size_t message_len) {
  if (err == NULL || field == NULL || be__error_is_static(err)) return BE_E_MISUSE;
  if (message == NULL) {
    message = "is invalid";
    message_len = strlen(message);
  }
  field = be__text_arg(field, &field_len);
  message = be__text_arg(message, &message_len);
  if (text_problem(field, field_len) || text_problem(message, message_len)) return BE_E_VALIDATION;
  return be__error_add_field_raw(err, field, field_len, message, message_len);
}

int be_error_add_field(be_error *err, const char *field, const char *message) {
  return be_error_add_field_n(err, field, BE_NUL_TERMINATED, message, BE_NUL_TERMINATED);
}

int be__error_add_field_raw(be_error *err, const char *field, size_t field_len,
                            const char *message, size_t message_len) {
  if (err == NULL || be__error_is_static(err)) return BE_E_MISUSE;
  field_error *grown = be__realloc(err->fields, (err->field_count + 1) * sizeof *grown);
  if (grown == NULL) return BE_E_NOMEM;
  err->fields = grown;
  field_error *f = &grown[err->field_count];
  f->field = be__strndup(field, be__utf8_cut(field, field_len, MESSAGE_MAX));
  f->message = be__strndup(message, be__utf8_cut(message, message_len, MESSAGE_MAX));
  if (f->field == NULL || f->message == NULL) {
    be__free(f->field);
    be__free(f->message);
    return BE_E_NOMEM;
  }
  err->field_count++;
  return BE_OK;
}

int be_error_set_driver_code(be_error *err, int64_t driver_code) {
  if (err == NULL || be__error_is_static(err)) return BE_E_MISUSE;
  err->driver_code = driver_code;
  return BE_OK;
}

int be_error_set_retryable(be_error *err, int32_t retryable) {
  if (err == NULL || be__error_is_static(err)) return BE_E_MISUSE;
  err->retryable = retryable ? 1 : 0;
  return BE_OK;
}

void be_error_free(be_error *err) {
  while (err != NULL && !be__error_is_static(err)) {
    be_error *cause = err->cause;
    for (size_t i = 0; i < err->field_count; i++) {
      be__free(err->fields[i].field);
      be__free(err->fields[i].message);
    }
    be__free(err->fields);
    be__free(err->message);
    be__free(err);
    err = cause;
  }
}

int32_t be_error_code(const be_error *e) { return e ? e->code : BE_OK; }
int32_t be_error_category(const be_error *e) { return e ? be_code_category(e->code) : BE_CAT_NONE; }
int32_t be_error_http_status(const be_error *e) { return e ? be_code_http_status(e->code) : 0; }
const char *be_error_message(const be_error *e) { return e ? e->message : NULL; }
int32_t be_error_is_retryable(const be_error *e) { return e ? e->retryable : 0; }
int64_t be_error_driver_code(const be_error *e) { return e ? e->driver_code : 0; }
size_t be_error_field_count(const be_error *e) { return e ? e->field_count : 0; }
const be_error *be_error_cause(const be_error *e) { return e ? e->cause : NULL; }

const char *be_error_field_name(const be_error *e, size_t i) {
  return (e && i < e->field_count) ? e->fields[i].field : NULL;
}

const char *be_error_field_message(const be_error *e, size_t i) {
  return (e && i < e->field_count) ? e->fields[i].message : NULL;
}

int be_error_to_json(char **out_json, size_t *out_len, const be_error *e) {
  if (e == NULL || out_json == NULL) return BE_E_MISUSE;
  const code_info *ci = info(e->code);
  be__buf b;
  be__buf_init(&b);
  be__buf_printf(&b, "{\"type\":\"urn:libbackend:error:%s\",\"title\":", ci->slug);
  be__buf_json_string(&b, ci->text, strlen(ci->text));
  be__buf_printf(&b, ",\"status\":%d,\"detail\":", (int)ci->status);
  be__buf_json_string(&b, e->message, strlen(e->message));
  be__buf_printf(&b, ",\"code\":%d,\"code_name\":\"%s\"", (int)e->code, ci->name);
  if (e->field_count > 0) {
    be__buf_puts(&b, ",\"errors\":[");
    for (size_t i = 0; i < e->field_count; i++) {
      be__buf_puts(&b, i ? ",{\"field\":" : "{\"field\":");
      be__buf_json_string(&b, e->fields[i].field, strlen(e->fields[i].field));
      be__buf_puts(&b, ",\"detail\":");
      be__buf_json_string(&b, e->fields[i].message, strlen(e->fields[i].message));
      be__buf_puts(&b, "}");
    }
    be__buf_puts(&b, "]");
  }
  be__buf_puts(&b, "}");
  return be__buf_detach(&b, out_json, out_len);
}

/* ---- internal raising helpers ---- */

/* vsnprintf may cut a multi-byte character in two; drop the partial tail. */
static void format_message(char *msg, size_t size, const char *fmt, va_list ap) {
  vsnprintf(msg, size, fmt, ap);
  size_t len = strlen(msg);
  msg[be__utf8_trim_partial(msg, len)] = '\0';
}

static int vraise(be_error **err, int32_t code, be_error *cause, const char *fmt, va_list ap) {
  if (err == NULL) {
    be_error_free(cause);
    return code;
  }
  char msg[1024];
  format_message(msg, sizeof msg, fmt, ap);
  be_error *e = NULL;
  be_error_wrap(&e, code, msg, cause);
  *err = e;
  return e->code;
}

int be__error_set(be_error **err, int32_t code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = vraise(err, code, NULL, fmt, ap);
  va_end(ap);
  return rc;
}

int be__error_wrap(be_error **err, int32_t code, be_error *cause, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = vraise(err, code, cause, fmt, ap);
  va_end(ap);
  return rc;
}

int be__error_field(be_error **err, const char *field, const char *fmt, ...) {
  if (err == NULL) return BE_E_VALIDATION;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  format_message(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (be__error_set(err, BE_E_VALIDATION, "invalid %s", field) == BE_E_NOMEM) return BE_E_NOMEM;
  if (be__error_add_field_raw(*err, field, strlen(field), msg, strlen(msg)) == BE_E_NOMEM) {
    be_error_free(*err);
    return be__error_oom(err);
  }
  return BE_E_VALIDATION;
}

int be__error_give(be_error **err, be_error *e) {
  int32_t code = be_error_code(e);
  if (err) *err = e;
  else be_error_free(e);
  return code;
}
