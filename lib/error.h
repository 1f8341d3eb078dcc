/* SPDX-License-Identifier: MIT */
/* Internal helpers for raising errors inside libbackend. Each returns the
 * code it was given, so `return be__error_set(err, BE_E_X, "...")` reads as
 * "fail with X". When err is NULL nothing is allocated. When allocating the
 * error fails, *err becomes the static out-of-memory error. */
#ifndef BE_LIB_ERROR_H
#define BE_LIB_ERROR_H

#include <backend/error.h>

#define BE__PRINTF(f, a) __attribute__((format(printf, f, a)))

int be__error_set(be_error **err, int32_t code, const char *fmt, ...) BE__PRINTF(3, 4);

/* Like be__error_set, wrapping cause (ownership taken, freed when err is NULL). */
int be__error_wrap(be_error **err, int32_t code, be_error *cause,
                   const char *fmt, ...) BE__PRINTF(4, 5);

/* A validation error naming one field: message "invalid <field>", field
 * error "<field>: <formatted message>". */
int be__error_field(be_error **err, const char *field, const char *fmt, ...) BE__PRINTF(3, 4);

/* be_error_wrap_n()/be_error_add_field_n() without the text checks, for
 * text the library did not get from its caller (a driver's message, an
 * error being copied): any bytes are kept (cut at 4096) and the JSON
 * writer repairs invalid UTF-8. message NULL means the code's text. */
int be__error_wrap_raw(be_error **out, int32_t code, const char *message, size_t len,
                       be_error *cause);
int be__error_add_field_raw(be_error *err, const char *field, size_t field_len,
                            const char *message, size_t message_len);

/* Sets *err to the static out-of-memory error; returns BE_E_NOMEM. */
int be__error_oom(be_error **err);

/* 1 when e is the static out-of-memory error. */
int be__error_is_static(const be_error *e);

/* Hand a locally built error to the caller's err, or free it. */
int be__error_give(be_error **err, be_error *e);

#endif
