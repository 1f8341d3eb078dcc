/* SPDX-License-Identifier: MIT */
/**
 * @file backend/log.h
 * @brief Structured log callback with levels and key-value fields.
 *
 * By default libbackend writes one line per event to stderr at warning level
 * and above: `libbackend WARN pool usage high in_use=8 max=10`. Install a
 * handler to route events into the host's logging. Values of fields whose
 * key names a secret (password, passwd, secret, token, authorization,
 * cookie, api_key, apikey, credential; case-insensitive substring) are
 * replaced by "[redacted]" before
 * any handler sees them, and control characters in the default line are
 * escaped, so a log line can neither leak a secret nor be forged.
 */
#ifndef BACKEND_LOG_H
#define BACKEND_LOG_H

#include <backend/common.h>

BE_BEGIN_DECLS

/** Detail for debugging libbackend or the host. */
#define BE_LOG_DEBUG 10
/** Normal operation worth a line. */
#define BE_LOG_INFO 20
/** Something unexpected that libbackend handled (the default minimum). */
#define BE_LOG_WARN 30
/** An operation failed. */
#define BE_LOG_ERROR 40
/** As a minimum level: deliver nothing. Not a level to log at. */
#define BE_LOG_OFF 100

/** One key-value field of a log event; both strings borrowed for the call. */
typedef struct be_log_field {
  const char *key;   /**< the field's name, NUL-terminated */
  const char *value; /**< its value, NUL-terminated ("[redacted]" for a secret) */
} be_log_field;

/**
 * A log handler: receives the level (a BE_LOG_* value), the message, the
 * fields (field_count of them, secrets already redacted) and the user_data
 * given to be_log_set_handler(). Strings are valid only during the call.
 * Called from whichever thread logs, so it must be thread-safe; it must not
 * call be_log_set_handler().
 */
typedef void (*be_log_fn)(int32_t level, const char *message,
                          const be_log_field *fields, size_t field_count,
                          void *user_data);

/**
 * Install the process-wide handler and the minimum level that reaches it.
 * Thread-safety: safe; events already being delivered may still reach the
 * old handler.
 *
 * @param fn         the handler; NULL restores the stderr default.
 * @param user_data  passed as is to fn; may be NULL.
 * @param min_level  events below this BE_LOG_* level are dropped;
 *                   BE_LOG_OFF drops all.
 * @param err        receives the error on failure; may be NULL.
 * @return BE_OK, or BE_E_MISUSE (min_level not one of the BE_LOG_* values;
 *         nothing is changed).
 */
BE_API int be_log_set_handler(be_log_fn fn, void *user_data, int32_t min_level,
                              be_error **err);

/**
 * The current minimum level. Thread-safety: safe.
 *
 * @return a BE_LOG_* value; BE_LOG_WARN until be_log_set_handler() is
 *         called.
 */
BE_API int32_t be_log_level(void);

/**
 * Log an event through the current handler (for host code that wants its
 * own events redacted and formatted like libbackend's). Thread-safety: safe.
 *
 * @param level        a BE_LOG_* level (not BE_LOG_OFF); events below the
 *                     minimum level are dropped (and BE_OK returned).
 * @param message      the event, NUL-terminated; not NULL.
 * @param fields       the key-value fields; may be NULL when field_count
 *                     is 0. Borrowed for the call.
 * @param field_count  number of fields; only the first 32 are delivered.
 * @param err          receives the error on failure; may be NULL.
 * @return BE_OK, or BE_E_MISUSE (message NULL, fields NULL with a count).
 */
BE_API int be_log(int32_t level, const char *message,
                  const be_log_field *fields, size_t field_count, be_error **err);

/**
 * Name of a level. Thread-safety: safe.
 *
 * @param level  a BE_LOG_* value.
 * @return "DEBUG", "INFO", "WARN", "ERROR" or "OFF"; "?" for other
 *         values. Static storage.
 */
BE_API const char *be_log_level_name(int32_t level);

BE_END_DECLS

#endif /* BACKEND_LOG_H */
