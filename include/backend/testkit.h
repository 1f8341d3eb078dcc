/* SPDX-License-Identifier: MIT */
/**
 * @file backend/testkit.h
 * @brief A test kit for host programs' own tests: a fresh app on an
 *        in-memory database with a fake clock, seeded users and roles, a
 *        capturing mock mailer.
 *
 * be_testkit_new() makes an app on a private in-memory database (its own,
 * never shared with another kit), with a fake clock starting at
 * 2026-01-01T00:00:00Z, cheap test-only password hashing
 * (insecure_test_hashing), and the kit's mock mailer. It then seeds:
 *
 * - role "admin" holding "*", and role "member" holding "posts:read",
 *   "posts:write" and "profile:write";
 * - N users: emails user<i>@example.test (i = 0 .. N-1), names "User <i>",
 *   password BE_TESTKIT_PASSWORD; user 0 is an admin, the others members;
 * - whatever the host's seed callback writes (run after the users, inside
 *   one transaction, on a pooled connection).
 *
 * The mock mailer captures every message (to, subject, body) in memory.
 * Capture and reading are thread-safe; reading returns copies.
 *
 * Thread-safety: the kit's app is as thread-safe as any app; the kit
 * functions below are safe from any thread, except be_testkit_free().
 */
#ifndef BACKEND_TESTKIT_H
#define BACKEND_TESTKIT_H

#include <backend/common.h>
#include <backend/error.h>
#include <backend/clock.h>
#include <backend/storage.h>
#include <backend/app.h>

BE_BEGIN_DECLS

typedef struct be_testkit be_testkit;

/** The password every seeded user has. */
#define BE_TESTKIT_PASSWORD "testkit-seed-pass-7Kq2"
/** Where the fake wall clock starts: 2026-01-01T00:00:00Z in milliseconds
 * since the Unix epoch (the unit of be_user_created_at_ms() and
 * be_audit_page_at_ms()). */
#define BE_TESTKIT_START_WALL_MS INT64_C(1767225600000)

/**
 * The host's seed step: write the host's own rows (e.g. posts) on conn,
 * which is inside a transaction; user_data is the options'
 * seed_user_data. Return BE_OK, or a negative BE_E_* code
 * (with *err set) to fail be_testkit_new().
 */
typedef int (*be_testkit_seed_fn)(be_conn *conn, void *user_data, be_error **err);

#define BE_TESTKIT_OPTIONS_VERSION 1

/** Kit options; zero / NULL means the default in brackets. Only ever grows
 * at the end. */
typedef struct be_testkit_options {
  uint32_t version;             /**< BE_TESTKIT_OPTIONS_VERSION */
  int32_t users;                /**< users to seed, 0..100000 [0] */
  be_testkit_seed_fn seed;      /**< host seed step [none] */
  void *seed_user_data;
  /** Base app options (copied; borrowed for the call) [defaults]. The kit
   * always replaces database (in-memory), clock (the kit's fake clock) and
   * mailer (the mock), and turns on insecure_test_hashing with the cheapest
   * argon2id parameters unless pwhash_opslimit/memlimit are set.
   * host_migrations are applied as usual. */
  const be_app_options *app_options;
  int32_t no_passwords;         /**< 1: seed users without passwords (faster) [0] */
} be_testkit_options;

#define BE_TESTKIT_OPTIONS_INIT { BE_TESTKIT_OPTIONS_VERSION, 0, NULL, NULL, NULL, 0 }

/** Fill *opts like BE_TESTKIT_OPTIONS_INIT. Errors: BE_E_MISUSE (NULL,
 * unknown version). Thread-safety: safe. */
BE_API int be_testkit_options_init(be_testkit_options *opts, uint32_t version);

/**
 * Make a seeded kit (see the file comment). opts may be NULL (no users).
 * Caller owns *out (be_testkit_free).
 * Errors: BE_E_MISUSE (out NULL, unknown version), BE_E_VALIDATION
 * (field "users"), the app's errors, the seed callback's error,
 * BE_E_NOMEM. Nothing is left allocated on failure. Thread-safety: safe.
 */
BE_API int be_testkit_new(be_testkit **out, const be_testkit_options *opts, be_error **err);

/** Free the app, the clock and the captured mail. NULL is a no-op. No
 * other thread may be using the kit or its app. */
BE_API void be_testkit_free(be_testkit *kit);

/** The kit's app, clock and mailer: borrowed, valid until be_testkit_free(). */
BE_API be_app *be_testkit_app(be_testkit *kit);
BE_API be_clock *be_testkit_clock(be_testkit *kit);
BE_API const struct be_mailer *be_testkit_mailer(be_testkit *kit);

/** Move the fake clock forward by ms >= 0 (monotonic and wall time).
 * Errors: BE_E_MISUSE (NULL, negative, or a step that would carry the
 * clock past INT64_MAX ns). Thread-safety: safe. */
BE_API int be_testkit_advance_ms(be_testkit *kit, int64_t ms, be_error **err);

/** Id of seeded user i (0 .. users-1), 0 when out of range. */
BE_API int64_t be_testkit_user_id(const be_testkit *kit, int32_t i);

/** Messages the mock mailer captured so far. Thread-safety: safe. */
BE_API int64_t be_testkit_mail_count(be_testkit *kit);

/**
 * Copies of captured message i (0 = the first; -1 = the last). Each out
 * pointer may be NULL; the strings are the caller's (be_free).
 * Errors: BE_E_MISUSE (kit NULL), BE_E_NOT_FOUND (no such message),
 * BE_E_NOMEM. Thread-safety: safe.
 */
BE_API int be_testkit_mail_get(char **out_to, char **out_subject, char **out_body,
                               be_testkit *kit, int64_t i, be_error **err);

/** Forget captured messages. Thread-safety: safe. */
BE_API void be_testkit_mail_clear(be_testkit *kit);

/**
 * Make the mock mailer fail its next `count` sends with code (a negative
 * BE_E_* code, e.g. BE_E_UNAVAILABLE); count 0 restores success.
 * Errors: BE_E_MISUSE (NULL, count < 0, code not negative).
 * Thread-safety: safe.
 */
BE_API int be_testkit_mail_fail_next(be_testkit *kit, int32_t count, int32_t code,
                                     be_error **err);

BE_END_DECLS

#endif /* BACKEND_TESTKIT_H */
