/* SPDX-License-Identifier: MIT */
/* The incident log: a ring of be_incident under one mutex, with totals
 * per kind. Incidents are rare (each source rate-limits its own), so a
 * mutex is cheaper to reason about than anything lock-free here. */
#include <backend/incident.h>

#include <pthread.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "strbuf.h"
#include "versioned.h"

struct be_incident_log {
  pthread_mutex_t lock;
  const be_clock *clock;
  be_incident *ring;
  size_t capacity;
  size_t head; /* next slot to write */
  size_t count;
  int64_t totals[BE_INCIDENT_KIND_COUNT]; /* [0]: every kind */
};

static const char *const kind_names[BE_INCIDENT_KIND_COUNT] = {
  "unknown", "pool_exhausted", "pool_deadlock", "db_unreachable", "pool_usage", "slow_queries"};

int be_incident_init(be_incident *out, uint32_t version) {
  static const be_incident defaults = BE_INCIDENT_INIT;
  return be__versioned_init(out, sizeof *out, &defaults, version, BE_INCIDENT_VERSION);
}

const char *be_incident_kind_name(int32_t kind) {
  return kind > 0 && kind < BE_INCIDENT_KIND_COUNT ? kind_names[kind] : "unknown";
}

int be_incident_log_new(be_incident_log **out, int32_t capacity, const be_clock *clock,
                        be_error **err) {
  if (out == NULL) return be__error_set(err, BE_E_MISUSE, "be_incident_log_new: out is NULL");
  *out = NULL;
  if (capacity == 0) capacity = 256;
  if (capacity < 1 || capacity > 65536) return be__error_field(err, "capacity", "must be 1..65536");
  be_incident_log *l = be__calloc(1, sizeof *l);
  if (l == NULL) return be__error_oom(err);
  l->ring = be__calloc((size_t)capacity, sizeof *l->ring);
  if (l->ring == NULL) {
    be__free(l);
    return be__error_oom(err);
  }
  if (pthread_mutex_init(&l->lock, NULL) != 0) {
    be__free(l->ring);
    be__free(l);
    return be__error_set(err, BE_E_INTERNAL, "be_incident_log_new: cannot create a mutex");
  }
  l->capacity = (size_t)capacity;
  l->clock = clock;
  *out = l;
  return BE_OK;
}

void be_incident_log_free(be_incident_log *log) {
  if (log == NULL) return;
  pthread_mutex_destroy(&log->lock);
  be__free(log->ring);
  be__free(log);
}

int be_incident_log_record(be_incident_log *log, const be_incident *incident, be_error **err) {
  if (log == NULL || incident == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_incident_log_record: %s is NULL",
                         log ? "incident" : "log");
  if (incident->version != BE_INCIDENT_VERSION)
    return be__error_set(err, BE_E_MISUSE, "unknown be_incident version %u",
                         (unsigned)incident->version);
  if (incident->kind < 1 || incident->kind >= BE_INCIDENT_KIND_COUNT)
    return be__error_field(err, "kind", "must be one of the BE_INCIDENT_* kinds");
  be_incident copy = *incident;
  copy.message[BE_INCIDENT_MESSAGE_MAX - 1] = '\0';
  if (copy.wall_ns == 0) copy.wall_ns = be_clock_wall_ns(log->clock);
  pthread_mutex_lock(&log->lock);
  log->ring[log->head] = copy;
  log->head = (log->head + 1) % log->capacity;
  if (log->count < log->capacity) log->count++;
  log->totals[0]++;
  log->totals[copy.kind]++;
  pthread_mutex_unlock(&log->lock);
  return BE_OK;
}

size_t be_incident_log_count(be_incident_log *log) {
  if (log == NULL) return 0;
  pthread_mutex_lock(&log->lock);
  size_t n = log->count;
  pthread_mutex_unlock(&log->lock);
  return n;
}

int64_t be_incident_log_total(be_incident_log *log, int32_t kind) {
  if (log == NULL || kind < 0 || kind >= BE_INCIDENT_KIND_COUNT) return 0;
  pthread_mutex_lock(&log->lock);
  int64_t n = log->totals[kind];
  pthread_mutex_unlock(&log->lock);
  return n;
}

/* Entry i (0 = oldest held); lock held, i < count. */
static const be_incident *nth(const be_incident_log *log, size_t i) {
  size_t first = (log->head + log->capacity - log->count) % log->capacity;
  return &log->ring[(first + i) % log->capacity];
}

int be_incident_log_get(be_incident *out, be_incident_log *log, size_t index, be_error **err) {
  if (out == NULL || log == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_incident_log_get: %s is NULL", out ? "log" : "out");
  if (out->version != BE_INCIDENT_VERSION)
    return be__error_set(err, BE_E_MISUSE, "unknown be_incident version %u", (unsigned)out->version);
  pthread_mutex_lock(&log->lock);
  int found = index < log->count;
  if (found) *out = *nth(log, index);
  pthread_mutex_unlock(&log->lock);
  if (!found) return be__error_set(err, BE_E_NOT_FOUND, "no incident at index %zu", index);
  return BE_OK;
}

static void incident_json(be__buf *b, const be_incident *in) {
  be__buf_printf(b,
                 "{\"kind\":\"%s\",\"wall_ns\":%lld,\"in_use\":%d,\"idle\":%d,\"waiting\":%d,"
                 "\"max_conns\":%d,\"value\":%lld,\"threshold\":%lld,\"suppressed\":%lld,"
                 "\"message\":",
                 be_incident_kind_name(in->kind), (long long)in->wall_ns, (int)in->in_use,
                 (int)in->idle, (int)in->waiting, (int)in->max_conns, (long long)in->value,
                 (long long)in->threshold, (long long)in->suppressed);
  be__buf_json_string(b, in->message, strlen(in->message));
  be__buf_puts(b, "}");
}

int be_incident_log_to_json(char **out_json, size_t *out_len, be_incident_log *log,
                            be_error **err) {
  if (out_json) *out_json = NULL;
  if (out_json == NULL || log == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_incident_log_to_json: %s is NULL",
                         out_json ? "log" : "out_json");
  be__buf b;
  be__buf_init(&b);
  pthread_mutex_lock(&log->lock);
  be__buf_printf(&b, "{\"total\":%lld,\"capacity\":%zu,\"by_kind\":{", (long long)log->totals[0],
                 log->capacity);
  for (int32_t k = 1; k < BE_INCIDENT_KIND_COUNT; k++)
    be__buf_printf(&b, "%s\"%s\":%lld", k > 1 ? "," : "", kind_names[k], (long long)log->totals[k]);
  be__buf_puts(&b, "},\"incidents\":[");
  for (size_t i = 0; i < log->count; i++) {
    if (i) be__buf_puts(&b, ",");
    incident_json(&b, nth(log, i));
  }
  pthread_mutex_unlock(&log->lock);
  be__buf_puts(&b, "]}");
  if (be__buf_detach(&b, out_json, out_len) != BE_OK) return be__error_oom(err);
  return BE_OK;
}

int64_t be_incident_log_memory_bytes(const be_incident_log *log) {
  if (log == NULL) return 0;
  return (int64_t)(sizeof *log + log->capacity * sizeof(be_incident));
}

void be_incident_log_clear(be_incident_log *log) {
  if (log == NULL) return;
  pthread_mutex_lock(&log->lock);
  log->head = log->count = 0;
  memset(log->totals, 0, sizeof log->totals);
  pthread_mutex_unlock(&log->lock);
}
