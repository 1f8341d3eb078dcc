/* SPDX-License-Identifier: MIT */
/**
 * @file backend/testkit.h
 * @brief A test kit for host programs' own tests: a fresh app on an
 *        in-memory database with a fake clock, seeded users and roles, a
 *        capturing mock mailer.
 *
 * be_testkit_new() makes an app on a private in-memory database (its own,
 * never shared with another kit; or the options' database), with a fake clock starting at
 * 2026-01-01T00:00:00Z, cheap test-only password hashing
 * (insecure_test_hashing), and the kit's mock mailer. It then seeds:
 *
 * - role "admin" holding "*", and role "member" holding "posts:read",
 *   "posts:write" and "profile:write";
 * - N users: emails user{i}\@example.test (i = 0 .. N-1, in decimal),
 *   names "User {i}", password BE_TESTKIT_PASSWORD; user 0 is an admin,
 *   the others members;
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

/** A seeded test app with its fake clock and mock mailer (opaque). */
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

/** The be_testkit_options layout this header describes (its version field). */
#define BE_TESTKIT_OPTIONS_VERSION 1

/** Kit options; zero / NULL means the default in brackets. Only ever grows
 * at the end. */
typedef struct be_testkit_options {
  uint32_t version;        /**< BE_TESTKIT_OPTIONS_VERSION */
  int32_t users;           /**< users to seed, 0..100000 [0] */
  be_testkit_seed_fn seed; /**< host seed step [none] */
  void *seed_user_data;    /**< passed as is to seed [NULL] */
  /** Base app options (copied; borrowed for the call) [defaults]. The kit
   * always replaces database (the database field below), clock (the kit's fake clock) and
   * mailer (the mock), and turns on insecure_test_hashing with the cheapest
   * argon2id parameters unless pwhash_opslimit/memlimit are set.
   * host_migrations are applied as usual. */
  const be_app_options *app_options;
  int32_t no_passwords; /**< 1: seed users without passwords (faster) [0] */
  /** The app's database (borrowed for the call) [NULL: a private in-memory
   * SQLite database]. Any DSN be_app_options.database takes, e.g. a
   * postgres:// DSN to run the kit's app on a server: give each kit an
   * empty database or schema of its own (the kit migrates and seeds it and
   * never empties it). */
  const char *database;
} be_testkit_options;

/** Static initializer: no users, no seed step, default app options. */
#define BE_TESTKIT_OPTIONS_INIT \
  { BE_TESTKIT_OPTIONS_VERSION, 0, NULL, NULL, NULL, 0, NULL }

/**
 * Fill *opts like BE_TESTKIT_OPTIONS_INIT. Thread-safety: safe.
 *
 * @param opts     the struct to fill; not NULL.
 * @param version  BE_TESTKIT_OPTIONS_VERSION.
 * @return BE_OK, or BE_E_MISUSE (opts NULL, unknown version).
 */
BE_API int be_testkit_options_init(be_testkit_options *opts, uint32_t version);

/**
 * Make a seeded kit (see the file comment). Nothing is left allocated on
 * failure. Thread-safety: safe.
 *
 * @param out   receives the kit, the caller's (be_testkit_free()); not
 *              NULL. Set to NULL on failure.
 * @param opts  the options, version set, read during the call; NULL means
 *              no users and no seed step.
 * @param err   receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (out NULL, unknown version); BE_E_VALIDATION
 *         (field "users" or "no_passwords"); the app's errors; the seed
 *         callback's error; BE_E_NOMEM.
 */
BE_API int be_testkit_new(be_testkit **out, const be_testkit_options *opts, be_error **err);

/**
 * Free the app, the clock and the captured mail.
 *
 * @param kit  the kit, or NULL (a no-op). No other thread may be using the
 *             kit or its app.
 */
BE_API void be_testkit_free(be_testkit *kit);

/**
 * The kit's app, for the code under test.
 *
 * @param kit  the kit, or NULL.
 * @return the app, borrowed, valid until be_testkit_free(); NULL for NULL.
 */
BE_API be_app *be_testkit_app(be_testkit *kit);
/**
 * The kit's fake clock (also the app's clock); move it with
 * be_testkit_advance_ms() or be_clock_advance().
 *
 * @param kit  the kit, or NULL.
 * @return the clock, borrowed, valid until be_testkit_free(); NULL for
 *         NULL.
 */
BE_API be_clock *be_testkit_clock(be_testkit *kit);
/**
 * The kit's mock mailer (also the app's mailer).
 *
 * @param kit  the kit, or NULL.
 * @return the mailer, borrowed, valid until be_testkit_free(); NULL for
 *         NULL.
 */
BE_API const struct be_mailer *be_testkit_mailer(be_testkit *kit);

/**
 * Move the fake clock forward (monotonic and wall time).
 * Thread-safety: safe.
 *
 * @param kit  the kit; not NULL.
 * @param ms   how far, in milliseconds; >= 0.
 * @param err  receives the error on failure; may be NULL.
 * @return BE_OK, or BE_E_MISUSE (kit NULL, ms negative, or a step that
 *         would carry the clock past INT64_MAX ns).
 */
BE_API int be_testkit_advance_ms(be_testkit *kit, int64_t ms, be_error **err);

/**
 * Id of a seeded user.
 *
 * @param kit  the kit, or NULL.
 * @param i    the seeded user's number, 0 .. users - 1 (user{i} in the
 *             email).
 * @return the user id; 0 when out of range or kit is NULL.
 */
BE_API int64_t be_testkit_user_id(const be_testkit *kit, int32_t i);

/**
 * Messages the mock mailer captured so far. Thread-safety: safe.
 *
 * @param kit  the kit, or NULL.
 * @return the count; 0 for NULL.
 */
BE_API int64_t be_testkit_mail_count(be_testkit *kit);

/**
 * Copy one captured message. Thread-safety: safe.
 *
 * @param out_to       receives a copy of the recipient, the caller's
 *                     (be_free()); may be NULL.
 * @param out_subject  receives a copy of the subject, the caller's; may be
 *                     NULL.
 * @param out_body     receives a copy of the body, the caller's; may be
 *                     NULL.
 * @param kit          the kit; not NULL.
 * @param i            the message: 0 = the first, -1 = the last.
 * @param err          receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (kit NULL), BE_E_NOT_FOUND (no such message)
 *         or BE_E_NOMEM.
 */
BE_API int be_testkit_mail_get(char **out_to, char **out_subject, char **out_body,
                               be_testkit *kit, int64_t i, be_error **err);

/**
 * Forget captured messages. Thread-safety: safe.
 *
 * @param kit  the kit; NULL is a no-op.
 */
BE_API void be_testkit_mail_clear(be_testkit *kit);

/**
 * Make the mock mailer fail its next sends. Thread-safety: safe.
 *
 * @param kit    the kit; not NULL.
 * @param count  how many sends fail; 0 restores success.
 * @param code   the negative BE_E_* code they fail with (e.g.
 *               BE_E_UNAVAILABLE); ignored when count is 0.
 * @param err    receives the error on failure; may be NULL.
 * @return BE_OK, or BE_E_MISUSE (kit NULL, count < 0, code not negative).
 */
BE_API int be_testkit_mail_fail_next(be_testkit *kit, int32_t count, int32_t code,
                                     be_error **err);

BE_END_DECLS

#endif /* BACKEND_TESTKIT_H */
