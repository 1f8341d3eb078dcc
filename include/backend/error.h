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
 *
 * @par Text arguments
 * Every function here that takes text has two forms: the plain one takes a
 * NUL-terminated string, the `_n` one a pointer and a byte length (for
 * bindings, and so an embedded NUL can be detected). A length of
 * BE_NUL_TERMINATED means "measure it"; 0 is the empty string (the pointer
 * is not read). The text must be valid UTF-8 without NUL bytes: otherwise
 * the call fails with BE_E_VALIDATION, and for be_error_new*() and
 * be_error_wrap*() *out receives a validation error whose field error is
 * named "message" and says why. Texts longer than 4096 bytes are cut at a
 * UTF-8 boundary.
 */
#ifndef BACKEND_ERROR_H
#define BACKEND_ERROR_H

#include <backend/common.h>

BE_BEGIN_DECLS

/** @name Error codes (stable numbers; append only) */
/** @{ */
#define BE_OK 0                 /**< success (200) */
#define BE_E_INTERNAL -1        /**< a bug or an unexpected state (500) */
#define BE_E_NOMEM -2           /**< out of memory (500) */
#define BE_E_MISUSE -3          /**< API misuse: NULL handle, bad options version (500) */
#define BE_E_VALIDATION -4      /**< bad input; see the field errors (400) */
#define BE_E_UNAUTHORIZED -5    /**< not authenticated / bad credentials (401) */
#define BE_E_FORBIDDEN -6       /**< authenticated but not allowed (403) */
#define BE_E_NOT_FOUND -7       /**< no such object (404) */
#define BE_E_CONFLICT -8        /**< unique constraint, version clash (409) */
#define BE_E_RATE_LIMITED -9    /**< too many requests, throttled (429) */
#define BE_E_UNAVAILABLE -10    /**< temporarily unavailable, retry later (503) */
#define BE_E_TIMEOUT -11        /**< a deadline passed (504) */
#define BE_E_STORAGE -12        /**< the database failed (500) */
#define BE_E_POOL_EXHAUSTED -13 /**< no connection became free in time (503) */
#define BE_E_POOL_CLOSED -14    /**< the pool is closing or closed (503) */
#define BE_E_POOL_DEADLOCK -15  /**< this thread already holds a connection of a full pool (500) */
#define BE_E_DB_UNREACHABLE -16 /**< no connection could be opened (503) */
#define BE_E_BUSY -17           /**< database busy or locked; retryable (503) */
#define BE_E_CONN_LOST -18      /**< the connection broke; retryable (503) */
#define BE_E_SERIALIZATION -19  /**< serialization failure / deadlock; retryable (409) */
#define BE_E_UNSUPPORTED -20    /**< the driver or build lacks this feature (501) */
/** @} */

/** @name Error categories (what kind of failure, independent of the code) */
/** @{ */
#define BE_CAT_NONE 0              /**< no failure: BE_OK */
#define BE_CAT_VALIDATION 1        /**< bad input: BE_E_VALIDATION */
#define BE_CAT_UNAUTHENTICATED 2   /**< who is calling is unknown: BE_E_UNAUTHORIZED */
#define BE_CAT_PERMISSION_DENIED 3 /**< the caller may not do this: BE_E_FORBIDDEN */
#define BE_CAT_NOT_FOUND 4         /**< no such object: BE_E_NOT_FOUND */
#define BE_CAT_CONFLICT 5          /**< clashes with current state: BE_E_CONFLICT, BE_E_SERIALIZATION */
#define BE_CAT_RATE_LIMITED 6      /**< throttled: BE_E_RATE_LIMITED */
#define BE_CAT_UNAVAILABLE 7       /**< try again later: BE_E_UNAVAILABLE, the pool and connection codes */
#define BE_CAT_TIMEOUT 8           /**< a deadline passed: BE_E_TIMEOUT */
#define BE_CAT_INTERNAL 9          /**< a bug, misuse, out of memory, storage failure or unknown code */
#define BE_CAT_UNSUPPORTED 10      /**< not available in this driver or build: BE_E_UNSUPPORTED */
/** @} */

/**
 * Static text for a code. Thread-safety: safe.
 *
 * @param code  any code, BE_OK included.
 * @return a short English description ("validation failed"), in static
 *         storage; "unknown error" for a code this version does not know.
 *         Never NULL.
 */
BE_API const char *be_strerror(int32_t code);

/**
 * The code's symbolic name. Thread-safety: safe.
 *
 * @param code  any code, BE_OK included.
 * @return the macro's name ("BE_E_VALIDATION"), or "BE_E_UNKNOWN"; static
 *         storage, never NULL.
 */
BE_API const char *be_code_name(int32_t code);

/**
 * The HTTP status a code maps to (the number after each code above).
 * Thread-safety: safe.
 *
 * @param code  any code, BE_OK included.
 * @return the status: 200 for BE_OK, 500 for unknown codes.
 */
BE_API int32_t be_code_http_status(int32_t code);

/**
 * The category of a code. Thread-safety: safe.
 *
 * @param code  any code, BE_OK included.
 * @return a BE_CAT_* value: BE_CAT_NONE for BE_OK, BE_CAT_INTERNAL for
 *         unknown codes.
 */
BE_API int32_t be_code_category(int32_t code);

/**
 * Whether an operation that failed with this code may succeed if retried
 * (the code's default; an error object can override it, see
 * be_error_set_retryable()). Thread-safety: safe.
 *
 * @param code  any code, BE_OK included.
 * @return 1 for BE_E_RATE_LIMITED, BE_E_UNAVAILABLE, BE_E_TIMEOUT,
 *         BE_E_POOL_EXHAUSTED, BE_E_DB_UNREACHABLE, BE_E_BUSY,
 *         BE_E_CONN_LOST and BE_E_SERIALIZATION; 0 otherwise.
 */
BE_API int32_t be_code_is_retryable(int32_t code);

/**
 * Create an error with a code and a message. On success *out is the
 * caller's, released with be_error_free().
 *
 * Thread-safety: safe.
 *
 * @param out      receives the new error; not NULL. Also set on
 *                 BE_E_VALIDATION (the error describing the bad message)
 *                 and BE_E_NOMEM (the static out-of-memory error, which
 *                 be_error_free() ignores).
 * @param code     the error's code, a BE_E_* value (anything but BE_OK).
 * @param message  the message, NUL-terminated, copied (see "Text
 *                 arguments" above); NULL means the code's be_strerror()
 *                 text.
 * @return BE_OK; BE_E_MISUSE when out is NULL or code is BE_OK;
 *         BE_E_VALIDATION when message is not UTF-8; BE_E_NOMEM.
 */
BE_API int be_error_new(be_error **out, int32_t code, const char *message);
/**
 * be_error_new() with a message given by pointer and length.
 *
 * @param out          as for be_error_new().
 * @param code         as for be_error_new().
 * @param message      the message, copied; NULL means the code's
 *                     be_strerror() text (message_len is then ignored).
 * @param message_len  length of message in bytes, or BE_NUL_TERMINATED.
 * @return as be_error_new(); BE_E_VALIDATION also when the message holds a
 *         NUL byte.
 */
BE_API int be_error_new_n(be_error **out, int32_t code, const char *message,
                          size_t message_len);

/**
 * Wrap `cause` in a new error with its own code and message: the chain keeps
 * the lower-level detail (an SQLite code and message, say) while the caller
 * sees the higher-level meaning.
 *
 * Thread-safety: safe.
 *
 * @param out      receives the new error; not NULL (set on failure as for
 *                 be_error_new()).
 * @param code     the new error's code, a BE_E_* value (anything but
 *                 BE_OK).
 * @param message  the new error's message, NUL-terminated, copied; NULL
 *                 means the code's be_strerror() text.
 * @param cause    the lower-level error, or NULL for none. Ownership passes
 *                 to the new error in every case, also on failure (then
 *                 cause is freed).
 * @return BE_OK, or BE_E_MISUSE, BE_E_VALIDATION, BE_E_NOMEM as
 *         be_error_new().
 */
BE_API int be_error_wrap(be_error **out, int32_t code, const char *message,
                         be_error *cause);
/**
 * be_error_wrap() with a message given by pointer and length.
 *
 * @param out          as for be_error_wrap().
 * @param code         as for be_error_wrap().
 * @param message      the message, copied; NULL means the code's
 *                     be_strerror() text (message_len is then ignored).
 * @param message_len  length of message in bytes, or BE_NUL_TERMINATED.
 * @param cause        as for be_error_wrap(): always taken over.
 * @return as be_error_wrap(); BE_E_VALIDATION also when the message holds a
 *         NUL byte.
 */
BE_API int be_error_wrap_n(be_error **out, int32_t code, const char *message,
                           size_t message_len, be_error *cause);

/**
 * Append a field error (field name + message, both copied), e.g. field
 * "email", message "is not a valid address". Any number may be added.
 *
 * Thread-safety: one thread per error object.
 *
 * @param err      the error to extend; not NULL, not the static
 *                 out-of-memory error.
 * @param field    the field's name, NUL-terminated; not NULL.
 * @param message  what is wrong with it, NUL-terminated; NULL means
 *                 "is invalid".
 * @return BE_OK; BE_E_MISUSE (err or field NULL, or err is the static OOM
 *         error); BE_E_VALIDATION (field or message not UTF-8); BE_E_NOMEM.
 *         On any failure the error is left unchanged.
 */
BE_API int be_error_add_field(be_error *err, const char *field,
                              const char *message);
/**
 * be_error_add_field() with texts given by pointer and length.
 *
 * @param err          as for be_error_add_field().
 * @param field        the field's name; not NULL.
 * @param field_len    length of field in bytes, or BE_NUL_TERMINATED.
 * @param message      what is wrong with it; NULL means "is invalid"
 *                     (message_len is then ignored).
 * @param message_len  length of message in bytes, or BE_NUL_TERMINATED.
 * @return as be_error_add_field(); BE_E_VALIDATION also when a text holds a
 *         NUL byte.
 */
BE_API int be_error_add_field_n(be_error *err, const char *field, size_t field_len,
                                const char *message, size_t message_len);

/**
 * Record the driver's own numeric code (for example SQLite's extended
 * result code) on an error. Thread-safety: one thread per error object.
 *
 * @param err          the error; not NULL, not the static out-of-memory
 *                     error.
 * @param driver_code  the driver's code, stored as is.
 * @return BE_OK, or BE_E_MISUSE for NULL or the OOM error.
 */
BE_API int be_error_set_driver_code(be_error *err, int64_t driver_code);

/**
 * Mark an error as retryable or not, overriding the code's default.
 * Drivers use it for busy, serialization and lost-connection failures.
 * Thread-safety: one thread per error object.
 *
 * @param err        the error; not NULL, not the static out-of-memory error.
 * @param retryable  1 (any non-zero value) for retryable, 0 for not.
 * @return BE_OK, or BE_E_MISUSE for NULL or the OOM error.
 */
BE_API int be_error_set_retryable(be_error *err, int32_t retryable);

/**
 * Release an error and its whole cause chain.
 *
 * @param err  the error (the caller's), or NULL (a no-op). The static
 *             out-of-memory error is ignored.
 */
BE_API void be_error_free(be_error *err);

/**
 * @name Accessors
 * All accept NULL: they then return 0, NULL or BE_OK. Thread-safety: safe
 * while no thread modifies the error.
 */
/** @{ */
/**
 * The error's code.
 * @param err  the error, or NULL.
 * @return its BE_E_* code; BE_OK for NULL.
 */
BE_API int32_t be_error_code(const be_error *err);
/**
 * The category of the error's code (see be_code_category()).
 * @param err  the error, or NULL.
 * @return a BE_CAT_* value; BE_CAT_NONE for NULL.
 */
BE_API int32_t be_error_category(const be_error *err);
/**
 * The HTTP status of the error's code (see be_code_http_status()).
 * @param err  the error, or NULL.
 * @return the status; 0 for NULL.
 */
BE_API int32_t be_error_http_status(const be_error *err);
/**
 * The error's message.
 * @param err  the error, or NULL.
 * @return the message, borrowed, valid as long as the error; never NULL
 *         for a non-NULL error, NULL for NULL.
 */
BE_API const char *be_error_message(const be_error *err);
/**
 * Whether the failed operation may succeed if retried: the code's default
 * unless be_error_set_retryable() overrode it.
 * @param err  the error, or NULL.
 * @return 1 or 0; 0 for NULL.
 */
BE_API int32_t be_error_is_retryable(const be_error *err);
/**
 * The driver's own code (see be_error_set_driver_code()).
 * @param err  the error, or NULL.
 * @return the code, or 0 when none was recorded or err is NULL.
 */
BE_API int64_t be_error_driver_code(const be_error *err);
/**
 * The number of field errors.
 * @param err  the error, or NULL.
 * @return the count (0 for NULL); valid indexes are 0 to count - 1.
 */
BE_API size_t be_error_field_count(const be_error *err);
/**
 * Field name of a field error.
 * @param err  the error, or NULL.
 * @param i    index, 0 to be_error_field_count() - 1.
 * @return the name, borrowed, valid as long as the error; NULL when i is
 *         out of range or err is NULL.
 */
BE_API const char *be_error_field_name(const be_error *err, size_t i);
/**
 * Message of a field error.
 * @param err  the error, or NULL.
 * @param i    index, 0 to be_error_field_count() - 1.
 * @return the message, borrowed, valid as long as the error; NULL when i
 *         is out of range or err is NULL.
 */
BE_API const char *be_error_field_message(const be_error *err, size_t i);
/**
 * The wrapped lower-level error (see be_error_wrap()).
 * @param err  the error, or NULL.
 * @return the cause, borrowed, valid as long as err; NULL at the end of the
 *         chain or when err is NULL.
 */
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
 *
 * Thread-safety: safe while no thread modifies err.
 *
 * @param out_json  receives the JSON text, NUL-terminated, the caller's,
 *                  released with be_free(); not NULL.
 * @param out_len   receives its length in bytes (without the NUL); may be
 *                  NULL.
 * @param err       the error to write; not NULL.
 * @return BE_OK, BE_E_MISUSE (err or out_json NULL) or BE_E_NOMEM.
 */
BE_API int be_error_to_json(char **out_json, size_t *out_len, const be_error *err);

BE_END_DECLS

#endif /* BACKEND_ERROR_H */
