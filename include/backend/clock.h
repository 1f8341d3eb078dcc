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

typedef struct be_clock be_clock;

#define BE_NS_PER_US INT64_C(1000)
#define BE_NS_PER_MS INT64_C(1000000)
#define BE_NS_PER_SEC INT64_C(1000000000)

/**
 * The process-wide system clock (CLOCK_MONOTONIC and CLOCK_REALTIME).
 * Borrowed, static, never NULL; be_clock_free() ignores it.
 * Thread-safety: safe.
 */
BE_API be_clock *be_clock_system(void);

/**
 * A fake clock starting at the given times; it moves only through
 * be_clock_advance() and be_clock_set(). Caller owns *out (be_clock_free).
 * Errors: BE_E_MISUSE (out NULL), BE_E_NOMEM. Thread-safety: reading and
 * advancing a fake clock from several threads is safe.
 */
BE_API int be_clock_fake_new(be_clock **out, int64_t mono_start_ns,
                             int64_t wall_start_ns, be_error **err);

/** Host functions: each returns nanoseconds and receives user_data. */
typedef int64_t (*be_clock_fn)(void *user_data);

/**
 * A clock made of the host's functions (e.g. a game loop's tick). Either
 * function may be NULL, which means the system clock's. Caller owns *out.
 * Errors: BE_E_MISUSE (out NULL), BE_E_NOMEM.
 */
BE_API int be_clock_custom_new(be_clock **out, be_clock_fn monotonic_ns,
                               be_clock_fn wall_ns, void *user_data, be_error **err);

/**
 * Move a fake clock forward (both monotonic and wall time) by delta_ns >= 0.
 * Errors: BE_E_MISUSE (NULL, not a fake clock, negative delta).
 */
BE_API int be_clock_advance(be_clock *clock, int64_t delta_ns, be_error **err);

/**
 * Set a fake clock's wall time; monotonic time never goes backwards, so
 * only wall time can be set. Errors: BE_E_MISUSE (NULL, not a fake clock).
 */
BE_API int be_clock_set_wall(be_clock *clock, int64_t wall_ns, be_error **err);

/** Monotonic nanoseconds; NULL means the system clock. Thread-safety: safe. */
BE_API int64_t be_clock_now_ns(const be_clock *clock);

/** Wall-clock nanoseconds since the epoch; NULL means the system clock. */
BE_API int64_t be_clock_wall_ns(const be_clock *clock);

/** Release a clock made by _fake_new or _custom_new; NULL and the system clock are no-ops. */
BE_API void be_clock_free(be_clock *clock);

BE_END_DECLS

#endif /* BACKEND_CLOCK_H */
