/* SPDX-License-Identifier: MIT */
/**
 * @file backend/error.h
 * @brief The typed error system: stable codes, HTTP status, field errors,
 *        cause chains and RFC 9457 problem-details JSON.
 *
 * Every fallible libbackend function returns an int: BE_OK (0) or one of the
 * negative BE_E_* codes below, and takes `be_error **err` as its last
 * argument. When err is not NULL and the call fails, *err receives a new
 * error object that the caller owns and releases with be_error_free().
 * Passing err == NULL is allowed: the code alone is returned.
 *
 * Codes are part of the ABI: their numbers never change, retired numbers
 * stay reserved, new codes are appended.
 */
#ifndef BACKEND_ERROR_H
#define BACKEND_ERROR_H

#include <backend/common.h>

BE_BEGIN_DECLS

/** @name Error codes (stable numbers; append only) @{ */
#define BE_OK                   0
#define BE_E_INTERNAL          -1  /**< a bug or an unexpected state (500) */
#define BE_E_NOMEM             -2  /**< out of memory (500) */
#define BE_E_MISUSE            -3  /**< API misuse: NULL handle, bad options version (500) */
#define BE_E_VALIDATION        -4  /**< bad input; see the field errors (400) */
#define BE_E_UNAUTHORIZED      -5  /**< not authenticated / bad credentials (401) */
#define BE_E_FORBIDDEN         -6  /**< authenticated but not allowed (403) */
#define BE_E_NOT_FOUND         -7  /**< no such object (404) */
#define BE_E_CONFLICT          -8  /**< unique constraint, version clash (409) */
#define BE_E_RATE_LIMITED      -9  /**< too many requests, throttled (429) */
#define BE_E_UNAVAILABLE      -10  /**< temporarily unavailable, retry later (503) */
#define BE_E_TIMEOUT          -11  /**< a deadline passed (504) */
#define BE_E_STORAGE          -12  /**< the database failed (500) */
#define BE_E_POOL_EXHAUSTED   -13  /**< no connection became free in time (503) */
#define BE_E_POOL_CLOSED      -14  /**< the pool is closing or closed (503) */
#define BE_E_POOL_DEADLOCK    -15  /**< this thread already holds a connection of a full pool (500) */
#define BE_E_DB_UNREACHABLE   -16  /**< no connection could be opened (503) */
#define BE_E_BUSY             -17  /**< database busy or locked; retryable (503) */
#define BE_E_CONN_LOST        -18  /**< the connection broke; retryable (503) */
#define BE_E_SERIALIZATION    -19  /**< serialization failure / deadlock; retryable (409) */
#define BE_E_UNSUPPORTED      -20  /**< the driver or build lacks this feature (501) */
/** @} */

/** @name Error categories (what kind of failure, independent of the code) @{ */
#define BE_CAT_NONE               0
#define BE_CAT_VALIDATION         1
#define BE_CAT_UNAUTHENTICATED    2
#define BE_CAT_PERMISSION_DENIED  3
#define BE_CAT_NOT_FOUND          4
#define BE_CAT_CONFLICT           5
#define BE_CAT_RATE_LIMITED       6
#define BE_CAT_UNAVAILABLE        7
#define BE_CAT_TIMEOUT            8
#define BE_CAT_INTERNAL           9
#define BE_CAT_UNSUPPORTED       10
/** @} */

/**
 * Static text for a code ("validation failed"), never NULL; unknown codes
 * give "unknown error". Thread-safety: safe.
 */
BE_API const char *be_strerror(int32_t code);

/** The code's symbolic name ("BE_E_VALIDATION"), or "BE_E_UNKNOWN". Static. */
BE_API const char *be_code_name(int32_t code);

/** The HTTP status a code maps to (200 for BE_OK, 500 for unknown codes). */
BE_API int32_t be_code_http_status(int32_t code);

/** The BE_CAT_* category of a code (BE_CAT_INTERNAL for unknown codes). */
BE_API int32_t be_code_category(int32_t code);

/** 1 when an operation that failed with this code may succeed if retried. */
BE_API int32_t be_code_is_retryable(int32_t code);

/**
 * Text arguments. Every function here that takes text has two forms: the
 * plain one takes a NUL-terminated string, the `_n` one a pointer and a
 * byte length (for bindings, and so an embedded NUL can be detected). A
 * length of BE_NUL_TERMINATED means "measure it"; 0 is the empty string
 * (the pointer is not read). The text must be valid UTF-8 without NUL
 * bytes: otherwise the call fails with BE_E_VALIDATION, and for
 * be_error_new*() and be_error_wrap*() *out receives a validation error
 * whose field error is named "message" and says why. Texts longer than
 * 4096 bytes are cut at a UTF-8 boundary.
 */
/**
 * Create an error with a code and a message (copied; NULL means the code's
 * be_strerror() text). On success *out is the caller's, released with
 * be_error_free().
 *
 * Errors: BE_E_MISUSE (out is NULL, or code is BE_OK), BE_E_VALIDATION
 * (message not UTF-8 or holding a NUL byte; see above), BE_E_NOMEM (then
 * *out is the static out-of-memory error, which be_error_free() ignores).
 * Thread-safety: safe.
 */
BE_API int be_error_new(be_error **out, int32_t code, const char *message);
/** be_error_new() with a message of message_len bytes (or BE_NUL_TERMINATED). */
BE_API int be_error_new_n(be_error **out, int32_t code, const char *message,
                          size_t message_len);

/**
 * Wrap `cause` in a new error with its own code and message: the chain keeps
 * the lower-level detail (an SQLite code and message, say) while the caller
 * sees the higher-level meaning. Ownership of cause passes to the new error
 * in every case, also on failure (then cause is freed).
 *
 * Errors: BE_E_MISUSE, BE_E_VALIDATION, BE_E_NOMEM as be_error_new().
 */
BE_API int be_error_wrap(be_error **out, int32_t code, const char *message,
                         be_error *cause);
/** be_error_wrap() with a message of message_len bytes (or BE_NUL_TERMINATED). */
BE_API int be_error_wrap_n(be_error **out, int32_t code, const char *message,
                           size_t message_len, be_error *cause);

/**
 * Append a field error (field name + message, both copied), e.g. field
 * "email", message "is not a valid address". Any number may be added.
 *
 * NULL message means "is invalid".
 *
 * Errors: BE_E_MISUSE (err or field NULL, or err is the static OOM error),
 * BE_E_VALIDATION (field or message not UTF-8 or holding a NUL byte),
 * BE_E_NOMEM (on any failure the error is left unchanged). Thread-safety:
 * one thread per error object.
 */
BE_API int be_error_add_field(be_error *err, const char *field,
                              const char *message);
/** be_error_add_field() with lengths (each may be BE_NUL_TERMINATED). */
BE_API int be_error_add_field_n(be_error *err, const char *field, size_t field_len,
                                const char *message, size_t message_len);

/**
 * Record the driver's own numeric code (for example SQLite's extended
 * result code) on an error. Errors: BE_E_MISUSE for NULL or the OOM error.
 */
BE_API int be_error_set_driver_code(be_error *err, int64_t driver_code);

/**
 * Mark an error as retryable (1) or not (0), overriding the code's default.
 * Drivers use it for busy, serialization and lost-connection failures.
 * Errors: BE_E_MISUSE for NULL or the OOM error.
 */
BE_API int be_error_set_retryable(be_error *err, int32_t retryable);

/** Release an error and its whole cause chain. NULL is a no-op. */
BE_API void be_error_free(be_error *err);

/** @name Accessors (all accept NULL: they then return 0, NULL or BE_OK) @{ */
BE_API int32_t be_error_code(const be_error *err);
BE_API int32_t be_error_category(const be_error *err);
BE_API int32_t be_error_http_status(const be_error *err);
/** The message; borrowed, valid as long as the error. Never NULL for a non-NULL error. */
BE_API const char *be_error_message(const be_error *err);
BE_API int32_t be_error_is_retryable(const be_error *err);
/** The driver's own code, or 0 when none was recorded. */
BE_API int64_t be_error_driver_code(const be_error *err);
BE_API size_t be_error_field_count(const be_error *err);
/** Field name of field error i; borrowed; NULL when i is out of range. */
BE_API const char *be_error_field_name(const be_error *err, size_t i);
/** Message of field error i; borrowed; NULL when i is out of range. */
BE_API const char *be_error_field_message(const be_error *err, size_t i);
/** The wrapped lower-level error; borrowed; NULL at the end of the chain. */
BE_API const be_error *be_error_cause(const be_error *err);
/** @} */

/**
 * Write the error as RFC 9457 problem details:
 * `{"type":"urn:libbackend:error:validation","title":"...","status":400,
 *   "detail":"...","code":-4,"code_name":"BE_E_VALIDATION",
 *   "errors":[{"field":"email","detail":"..."}]}`.
 * Strings are escaped for any bytes: quotes, backslashes and control
 * characters are escaped, invalid UTF-8 becomes U+FFFD. The cause chain is
 * not included (RFC 9457 section 5: do not leak internals to clients).
 * *out_json is NUL-terminated, the caller's, released with be_free();
 * out_len may be NULL.
 *
 * Errors: BE_E_MISUSE (err or out_json NULL), BE_E_NOMEM.
 * Thread-safety: safe while no thread modifies err.
 */
BE_API int be_error_to_json(char **out_json, size_t *out_len, const be_error *err);

BE_END_DECLS

#endif /* BACKEND_ERROR_H */
