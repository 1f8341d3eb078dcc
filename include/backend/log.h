/* SPDX-License-Identifier: MIT */
/**
 * @file backend/log.h
 * @brief Structured log callback with levels and key-value fields.
 *
 * By default libbackend writes one line per event to stderr at warning level
 * and above: `libbackend WARN pool usage high in_use=8 max=10`. Install a
 * handler to route events into the host's logging. Values of fields whose
 * key names a secret (password, token, secret, authorization, cookie,
 * api_key; case-insensitive substring) are replaced by "[redacted]" before
 * any handler sees them, and control characters in the default line are
 * escaped, so a log line can neither leak a secret nor be forged.
 */
#ifndef BACKEND_LOG_H
#define BACKEND_LOG_H

#include <backend/common.h>

BE_BEGIN_DECLS

#define BE_LOG_DEBUG 10
#define BE_LOG_INFO 20
#define BE_LOG_WARN 30
#define BE_LOG_ERROR 40
#define BE_LOG_OFF 100

/** One key-value field of a log event; both strings borrowed for the call. */
typedef struct be_log_field {
  const char *key;
  const char *value;
} be_log_field;

/**
 * A log handler. Strings are valid only during the call. Called from
 * whichever thread logs, so it must be thread-safe.
 */
typedef void (*be_log_fn)(int32_t level, const char *message,
                          const be_log_field *fields, size_t field_count,
                          void *user_data);

/**
 * Install the process-wide handler (NULL restores the stderr default) and
 * the minimum level that reaches it. Errors: BE_E_MISUSE (level not one of
 * the BE_LOG_* values). Thread-safety: safe; events already being delivered
 * may still reach the old handler.
 */
BE_API int be_log_set_handler(be_log_fn fn, void *user_data, int32_t min_level,
                              be_error **err);

/** The current minimum level. Thread-safety: safe. */
BE_API int32_t be_log_level(void);

/**
 * Log an event through the current handler (for host code that wants its
 * own events redacted and formatted like libbackend's). fields may be NULL
 * when field_count is 0. Errors: BE_E_MISUSE (message NULL, fields NULL
 * with a count). Thread-safety: safe.
 */
BE_API int be_log(int32_t level, const char *message,
                  const be_log_field *fields, size_t field_count, be_error **err);

/** Name of a level ("WARN"); static; "?" for unknown values. */
BE_API const char *be_log_level_name(int32_t level);

BE_END_DECLS

#endif /* BACKEND_LOG_H */
