/* SPDX-License-Identifier: MIT */
/**
 * @file backend/clock.h
 * @brief Time sources: the system clock, a fake clock tests advance by hand,
 *        or the host's own functions.
 *
 * Every timer in libbackend (pool timeouts, cache TTLs, session expiry)
 * reads a be_clock, so tests never sleep. Times are int64_t nanoseconds:
 * monotonic time from an arbitrary origin, wall time since the Unix epoch.
 */
#ifndef BACKEND_CLOCK_H
#define BACKEND_CLOCK_H

#include <backend/common.h>

BE_BEGIN_DECLS

/** A time source (opaque): the system clock, a fake or a custom clock. */
typedef struct be_clock be_clock;

/** Nanoseconds per microsecond. */
#define BE_NS_PER_US INT64_C(1000)
/** Nanoseconds per millisecond. */
#define BE_NS_PER_MS INT64_C(1000000)
/** Nanoseconds per second. */
#define BE_NS_PER_SEC INT64_C(1000000000)

/**
 * The process-wide system clock (CLOCK_MONOTONIC and CLOCK_REALTIME).
 * Thread-safety: safe.
 *
 * @return the system clock: borrowed, static, never NULL;
 *         be_clock_free() ignores it.
 */
BE_API be_clock *be_clock_system(void);

/**
 * A fake clock starting at the given times; it moves only through
 * be_clock_advance() and be_clock_set_wall(). Thread-safety: reading and
 * advancing a fake clock from several threads is safe.
 *
 * @param out            receives the clock, the caller's (be_clock_free());
 *                       not NULL.
 * @param mono_start_ns  the first monotonic reading, in nanoseconds (any
 *                       value).
 * @param wall_start_ns  the first wall-clock reading, in nanoseconds since
 *                       the Unix epoch.
 * @param err            receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (out NULL) or BE_E_NOMEM.
 */
BE_API int be_clock_fake_new(be_clock **out, int64_t mono_start_ns,
                             int64_t wall_start_ns, be_error **err);

/**
 * A host time function for be_clock_custom_new(): returns nanoseconds
 * (monotonic, or wall time since the epoch) and receives the clock's
 * user_data. Called from whichever thread reads the clock: must be
 * thread-safe.
 */
typedef int64_t (*be_clock_fn)(void *user_data);

/**
 * A clock made of the host's functions (e.g. a game loop's tick).
 *
 * @param out           receives the clock, the caller's (be_clock_free());
 *                      not NULL.
 * @param monotonic_ns  returns monotonic nanoseconds (must never go
 *                      backwards); NULL means the system clock's.
 * @param wall_ns       returns nanoseconds since the Unix epoch; NULL means
 *                      the system clock's.
 * @param user_data     passed as is to both functions; may be NULL.
 * @param err           receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (out NULL) or BE_E_NOMEM.
 */
BE_API int be_clock_custom_new(be_clock **out, be_clock_fn monotonic_ns,
                               be_clock_fn wall_ns, void *user_data, be_error **err);

/**
 * Move a fake clock forward (both monotonic and wall time).
 * Thread-safety: safe.
 *
 * @param clock     a clock from be_clock_fake_new().
 * @param delta_ns  how far, in nanoseconds; >= 0.
 * @param err       receives the error on failure; may be NULL.
 * @return BE_OK, or BE_E_MISUSE (clock NULL or not a fake clock, negative
 *         delta_ns).
 */
BE_API int be_clock_advance(be_clock *clock, int64_t delta_ns, be_error **err);

/**
 * Set a fake clock's wall time; monotonic time never goes backwards, so
 * only wall time can be set. Thread-safety: safe.
 *
 * @param clock    a clock from be_clock_fake_new().
 * @param wall_ns  the new wall time, in nanoseconds since the Unix epoch
 *                 (may be earlier than the current one).
 * @param err      receives the error on failure; may be NULL.
 * @return BE_OK, or BE_E_MISUSE (clock NULL or not a fake clock).
 */
BE_API int be_clock_set_wall(be_clock *clock, int64_t wall_ns, be_error **err);

/**
 * Read monotonic time. Thread-safety: safe.
 *
 * @param clock  the clock; NULL means the system clock.
 * @return monotonic nanoseconds from the clock's arbitrary origin.
 */
BE_API int64_t be_clock_now_ns(const be_clock *clock);

/**
 * Read wall-clock time. Thread-safety: safe.
 *
 * @param clock  the clock; NULL means the system clock.
 * @return nanoseconds since the Unix epoch.
 */
BE_API int64_t be_clock_wall_ns(const be_clock *clock);

/**
 * Release a clock. No object that reads it may be used afterwards.
 *
 * @param clock  a clock made by be_clock_fake_new() or
 *               be_clock_custom_new(); NULL and the system clock are
 *               no-ops.
 */
BE_API void be_clock_free(be_clock *clock);

BE_END_DECLS

#endif /* BACKEND_CLOCK_H */
