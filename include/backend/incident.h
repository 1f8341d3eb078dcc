/* SPDX-License-Identifier: MIT */
/**
 * @file backend/incident.h
 * @brief A bounded in-memory log of operational incidents: pool exhaustion,
 *        self-deadlocks, an unreachable database, pool usage alerts and
 *        bursts of slow queries, each with its time and the figures then.
 *
 * A be_incident_log is a ring of be_incident records: it keeps the newest
 * `capacity` incidents (older ones are overwritten) and counts every
 * incident ever recorded, in total and per kind, so a reader can tell how
 * many it missed. A pool records into the log given in
 * be_pool_options.incidents; the statement statistics
 * (backend/stmt_stats.h) record slow-query bursts; an app
 * (backend/app.h) makes one log and wires both to it
 * (be_app_incidents()).
 *
 * Threads: recording and reading are safe from any thread (one mutex,
 * taken only while an incident is copied in or out; incidents are rare by
 * nature and each source rate-limits its own).
 */
#ifndef BACKEND_INCIDENT_H
#define BACKEND_INCIDENT_H

#include <backend/clock.h>
#include <backend/common.h>
#include <backend/error.h>

BE_BEGIN_DECLS

/** @name Incident kinds (be_incident.kind) */
/** @{ */
/** An acquire waited the whole acquire timeout (BE_E_POOL_EXHAUSTED);
 * value: the time waited in ns; threshold: the acquire timeout in ns. */
#define BE_INCIDENT_POOL_EXHAUSTED 1
/** A thread asked a full pool for a second connection
 * (BE_E_POOL_DEADLOCK); value and threshold: 0. */
#define BE_INCIDENT_POOL_DEADLOCK 2
/** The pool could not open a connection (BE_E_DB_UNREACHABLE); value:
 * open failures so far; message: the driver's error. */
#define BE_INCIDENT_DB_UNREACHABLE 3
/** Connections in use crossed the usage alert threshold; value: usage in
 * percent of max_conns; threshold: the alert percent. */
#define BE_INCIDENT_POOL_USAGE 4
/** At least `threshold` statements ran longer than the slow-query
 * threshold within one window; value: how many did. */
#define BE_INCIDENT_SLOW_QUERIES 5
/** One more than the largest kind. */
#define BE_INCIDENT_KIND_COUNT 6
/** @} */

/** Bytes of be_incident.message, including its NUL. */
#define BE_INCIDENT_MESSAGE_MAX 192

/** The be_incident layout this header describes (its version field). */
#define BE_INCIDENT_VERSION 1

/**
 * One incident and the figures at the time. Fields a kind does not use are
 * 0. Only ever grows at the end.
 */
typedef struct be_incident {
  uint32_t version;                      /**< BE_INCIDENT_VERSION */
  int32_t kind;                          /**< BE_INCIDENT_* */
  int32_t in_use;                        /**< pool connections in use then */
  int32_t idle;                          /**< pool connections idle then */
  int32_t waiting;                       /**< callers waiting for a connection then */
  int32_t max_conns;                     /**< the pool's max_conns */
  int64_t wall_ns;                       /**< when, ns since the Unix epoch (the log's clock) */
  int64_t value;                         /**< the kind's figure (see the kinds) */
  int64_t threshold;                     /**< the limit it crossed (see the kinds) */
  int64_t suppressed;                    /**< incidents of this kind the source left out since its
                         previous record (rate limiting) */
  char message[BE_INCIDENT_MESSAGE_MAX]; /**< a human sentence, NUL-terminated */
} be_incident;

/** Static initializer: the current version, every field 0. */
#define BE_INCIDENT_INIT                                  \
  {                                                       \
    BE_INCIDENT_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, { 0 } \
  }

/**
 * Set *out to BE_INCIDENT_INIT (for bindings that cannot use the macro).
 * Thread-safety: safe.
 *
 * @param out      the struct to fill; not NULL.
 * @param version  BE_INCIDENT_VERSION.
 * @return BE_OK, or BE_E_MISUSE (out NULL, unknown version).
 */
BE_API int be_incident_init(be_incident *out, uint32_t version);

/**
 * The kind's name, as used in JSON and Prometheus labels:
 * "pool_exhausted", "pool_deadlock", "db_unreachable", "pool_usage",
 * "slow_queries". Thread-safety: safe.
 *
 * @param kind  a BE_INCIDENT_* kind.
 * @return a static string; "unknown" for any other value.
 */
BE_API const char *be_incident_kind_name(int32_t kind);

/** A bounded log of incidents (opaque, thread-safe). */
typedef struct be_incident_log be_incident_log;

/**
 * A new, empty log. Thread-safety: safe.
 *
 * @param out       receives the log, the caller's (be_incident_log_free());
 *                  not NULL. Set to NULL on failure.
 * @param capacity  incidents kept, 1..65536; 0 means 256.
 * @param clock     stamps each incident's wall_ns; NULL = the system
 *                  clock; borrowed, must outlive the log.
 * @param err       receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (out NULL); BE_E_VALIDATION (capacity out of
 *         range, field "capacity"); BE_E_NOMEM; BE_E_INTERNAL (no mutex).
 */
BE_API int be_incident_log_new(be_incident_log **out, int32_t capacity, const be_clock *clock,
                               be_error **err);

/**
 * Release a log. Nothing may record into it any more (free the pool or
 * app using it first).
 *
 * @param log  the log, or NULL (a no-op).
 */
BE_API void be_incident_log_free(be_incident_log *log);

/**
 * Record one incident: a copy of *incident, its wall_ns stamped from the
 * log's clock when 0, its message cut to fit. Overwrites the oldest when
 * full. Thread-safety: safe.
 *
 * @param log       the log; not NULL.
 * @param incident  the incident, version set; kind 1..BE_INCIDENT_KIND_COUNT-1.
 * @param err       receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (NULL, unknown version); BE_E_VALIDATION
 *         (unknown kind, field "kind").
 */
BE_API int be_incident_log_record(be_incident_log *log, const be_incident *incident,
                                  be_error **err);

/**
 * Incidents held now. Thread-safety: safe.
 *
 * @param log  the log, or NULL.
 * @return the count, at most the capacity; 0 for NULL.
 */
BE_API size_t be_incident_log_count(be_incident_log *log);

/**
 * Incidents recorded since creation or be_incident_log_clear(), including
 * overwritten ones. Thread-safety: safe.
 *
 * @param log   the log, or NULL.
 * @param kind  a BE_INCIDENT_* kind, or 0 for every kind.
 * @return the count; 0 for NULL or an unknown kind.
 */
BE_API int64_t be_incident_log_total(be_incident_log *log, int32_t kind);

/**
 * Copy one incident. Thread-safety: safe.
 *
 * @param out    receives the incident; its version set by the caller
 *               (BE_INCIDENT_INIT); not NULL.
 * @param log    the log; not NULL.
 * @param index  0 is the oldest held, count - 1 the newest.
 * @param err    receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (NULL, unknown version); BE_E_NOT_FOUND
 *         (index >= count).
 */
BE_API int be_incident_log_get(be_incident *out, be_incident_log *log, size_t index,
                               be_error **err);

/**
 * The log as JSON, oldest first: `{"total":N,"capacity":N,"by_kind":
 * {"pool_exhausted":N,...},"incidents":[{"kind":"pool_usage","wall_ns":N,
 * "in_use":N,"idle":N,"waiting":N,"max_conns":N,"value":N,"threshold":N,
 * "suppressed":N,"message":"..."}]}`. Thread-safety: safe.
 *
 * @param out_json  receives the NUL-terminated JSON, the caller's
 *                  (be_free()); not NULL. Set to NULL on failure.
 * @param out_len   receives its length in bytes; may be NULL.
 * @param log       the log; not NULL.
 * @param err       receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (NULL) or BE_E_NOMEM.
 */
BE_API int be_incident_log_to_json(char **out_json, size_t *out_len, be_incident_log *log,
                                   be_error **err);

/**
 * Bytes the log allocated (its ring and itself). Thread-safety: safe.
 *
 * @param log  the log, or NULL.
 * @return the bytes; 0 for NULL.
 */
BE_API int64_t be_incident_log_memory_bytes(const be_incident_log *log);

/**
 * Forget every incident; the totals restart at 0. Thread-safety: safe.
 *
 * @param log  the log; NULL is a no-op.
 */
BE_API void be_incident_log_clear(be_incident_log *log);

BE_END_DECLS

#endif /* BACKEND_INCIDENT_H */
