/* SPDX-License-Identifier: MIT */
#include <backend/error.h>
#include <backend/log.h>

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "strbuf.h"

#define MAX_FIELDS 32

static pthread_rwlock_t handler_lock = PTHREAD_RWLOCK_INITIALIZER;
static be_log_fn handler_fn = NULL;
static void *handler_data = NULL;
static _Atomic int32_t min_level = BE_LOG_WARN;

static const char *const secret_words[] = {"password", "passwd", "secret", "token",
                                           "authorization", "cookie", "api_key",
                                           "apikey", "credential"};

const char *be_log_level_name(int32_t level) {
  switch (level) {
    case BE_LOG_DEBUG: return "DEBUG";
    case BE_LOG_INFO: return "INFO";
    case BE_LOG_WARN: return "WARN";
    case BE_LOG_ERROR: return "ERROR";
    case BE_LOG_OFF: return "OFF";
    default: return "?";
  }
}

static int valid_level(int32_t level) { return be_log_level_name(level)[0] != '?'; }

int be_log_set_handler(be_log_fn fn, void *user_data, int32_t level, be_error **err) {
  if (!valid_level(level))
    return be__error_set(err, BE_E_MISUSE, "be_log_set_handler: unknown level %d", (int)level);
  pthread_rwlock_wrlock(&handler_lock);
  handler_fn = fn;
  handler_data = user_data;
  atomic_store(&min_level, level);
  pthread_rwlock_unlock(&handler_lock);
  return BE_OK;
}

int32_t be_log_level(void) { return atomic_load(&min_level); }

int be__log_enabled(int32_t level) {
  return level >= atomic_load_explicit(&min_level, memory_order_relaxed) && level < BE_LOG_OFF;
}

/* case-insensitive substring search */
static int contains_word(const char *key, const char *word) {
  size_t wl = strlen(word);
  for (const char *p = key; *p; p++) {
    size_t i = 0;
    while (i < wl && p[i] && tolower((unsigned char)p[i]) == word[i]) i++;
    if (i == wl) return 1;
  }
  return 0;
}

int be__log_key_is_secret(const char *key) {
  if (key == NULL) return 0;
  for (size_t i = 0; i < sizeof secret_words / sizeof secret_words[0]; i++)
    if (contains_word(key, secret_words[i])) return 1;
  return 0;
}

/* Append text with control characters escaped so one event stays one line. */
static void append_escaped(be__buf *b, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c < 0x20 || c == 0x7f) be__buf_printf(b, "\\x%02x", c);
    else be__buf_append(b, s, 1);
  }
}

static void write_stderr(int32_t level, const char *message, const be_log_field *fields,
                         size_t n) {
  be__buf b;
  be__buf_init(&b);
  be__buf_printf(&b, "libbackend %s ", be_log_level_name(level));
  append_escaped(&b, message);
  for (size_t i = 0; i < n; i++) {
    be__buf_puts(&b, " ");
    append_escaped(&b, fields[i].key ? fields[i].key : "?");
    be__buf_puts(&b, "=");
    append_escaped(&b, fields[i].value ? fields[i].value : "(null)");
  }
  be__buf_puts(&b, "\n");
  if (!b.failed) fputs(b.data, stderr);
  be__buf_free(&b);
}

int be_log(int32_t level, const char *message, const be_log_field *fields, size_t n,
           be_error **err) {
  if (message == NULL || (fields == NULL && n > 0))
    return be__error_set(err, BE_E_MISUSE, "be_log: %s is NULL", message ? "fields" : "message");
  if (!be__log_enabled(level)) return BE_OK;
  if (n > MAX_FIELDS) n = MAX_FIELDS;
  be_log_field safe[MAX_FIELDS];
  for (size_t i = 0; i < n; i++) {
    safe[i].key = fields[i].key;
    safe[i].value = be__log_key_is_secret(fields[i].key) ? "[redacted]" : fields[i].value;
  }
  pthread_rwlock_rdlock(&handler_lock);
  if (handler_fn) handler_fn(level, message, safe, n, handler_data);
  else write_stderr(level, message, safe, n);
  pthread_rwlock_unlock(&handler_lock);
  return BE_OK;
}
