/* SPDX-License-Identifier: MIT */
/**
 * @file backend/auth.h
 * @brief AuthService: argon2id passwords, opaque session tokens, login
 *        throttling and lockout, password change and reset.
 *
 * Passwords are hashed with libsodium's argon2id (`crypto_pwhash_str`,
 * alg argon2id13) with the app's pwhash_opslimit / pwhash_memlimit
 * (default libsodium INTERACTIVE: t = 2, m = 64 MiB). Parameters below
 * OWASP's minimum (m = 19 MiB with t = 2, or one of its equal-strength
 * pairs 46 MiB/t1, 12 MiB/t3, 9 MiB/t4, 7 MiB/t5) are refused unless
 * the app was created with insecure_test_hashing = 1. A hash made with
 * other parameters than the current ones is replaced at the next
 * successful login (`crypto_pwhash_str_needs_rehash`).
 *
 * Pepper (optional; NIST SP 800-63B 5.1.1.2, OWASP Password Storage):
 * with be_app_options.pepper set, a secret key kept outside the database
 * (a file, an environment variable, a secrets manager; make it with a
 * CSPRNG, e.g. 32 bytes of libsodium's randombytes_buf), every new hash is
 * argon2id over HMAC-SHA-256(pepper, password) instead of the password,
 * so a stolen database alone cannot be cracked. The hash's pepper_id is
 * stored next to it (users.password_pepper_id; 0 = no pepper); the pepper
 * itself is copied into the app at be_app_new() and never written to the
 * database, a log or an error. To rotate: start the app with the new
 * pepper and a new pepper_id, and the old pepper in previous_peppers with
 * its old id. A hash made under a previous pepper still verifies, and its
 * successful login rehashes it under the current one (like a parameter
 * change), so previous peppers can be dropped once no hash uses them
 * (count the users whose password_pepper_id is the old id). A
 * hash whose pepper is not configured any more never matches: its login
 * fails with the generic 401 after the same work, and a warning naming
 * the pepper id is logged; the user has to reset the password. Losing
 * the pepper loses every password hashed under it: keep a backup.
 *
 * Password policy (NIST SP 800-63B rev. 4, no composition rules):
 * - at least password_min_length characters (Unicode code points;
 *   default 12, configurable 12..256). NIST rev. 4 asks for 15 when the
 *   password is the only factor: set password_min_length = 15 unless
 *   your host requires a second factor;
 * - at most 256 characters and at most 4096 bytes, checked before any
 *   hashing (no DoS through huge passwords, CVE-2013-1443); never
 *   truncated;
 * - valid UTF-8 with no NUL byte. Every function that takes a password
 *   takes its length too, so a binding that passes a string with an
 *   embedded NUL is refused instead of silently truncated. A length of
 *   BE_NUL_TERMINATED (backend/common.h) means "up to the first NUL";
 *   any other length is exact (0 is the empty string);
 * - not on the built-in list of common passwords (compared
 *   case-insensitively), not a straight run such as "abcdefghijkl" or
 *   "987654321098", not the user's email or name, not on the
 *   breached-password list the host loaded from a file
 *   (be_auth_load_breached_passwords()), and not refused by the host's
 *   blocklist hook (be_auth_set_blocklist_fn());
 * - not a shorter string repeated: refused when some unit of at most half
 *   the password's length, repeated, makes the whole password (the last
 *   repetition may be cut short). Compared bytewise after ASCII case
 *   folding, so "aaaaaaaaaaaa", "abcabcabcabca", "abcdeABCDEabcde" and
 *   "qigc2" repeated 51 times are refused; "correct horse correct"
 *   (a 14-character unit in 21) is not;
 * - at least BE_AUTH_PASSWORD_MIN_DISTINCT (5) different characters
 *   (code points, ASCII case folded): "aabbaabbccaacc" is refused.
 *
 * No Unicode normalisation is applied: the bytes are hashed as given.
 *
 * Login answers. Unknown email, wrong password, disabled account, account
 * without a password, and an account inside its backoff or lockout window
 * all fail with the same BE_E_UNAUTHORIZED and the same message ("invalid
 * email or password"), after the same work: exactly one argon2id
 * verification, against a dummy hash when there is no real one (a correct
 * login whose rehash meets another correct login's, which replaced the
 * hash first, verifies once more against that one instead of failing).
 * The dummy
 * uses the parameters of the most expensive hash stored (largest m x t,
 * then largest m; the current parameters when none is stored) within the
 * import cap (be_auth_import_password_hash(): a costlier hash written to
 * the table directly is not followed; a dummy that cannot be remade for
 * lack of memory keeps its parameters, with a warning logged): after the
 * parameters are lowered, hashes made before keep their cost until their
 * next successful login, and an unknown email costs as much as they do.
 * The libbackend table password_hash_params counts the stored hashes per
 * parameter pair (kept by triggers on users, so imports and deletes
 * count); every login reads its top row, and a change of it remakes the
 * dummy once (one extra hash on that login). Accounts hashed with cheaper
 * parameters than the dummy's answer a wrong password faster than an
 * unknown email does until the costlier hashes are gone: lower the
 * parameters only when you must. Throttling is therefore
 * invisible to the caller by design: answering 429 only for accounts
 * that exist would tell an attacker which emails are registered
 * (OWASP Authentication Cheat Sheet: a per-account lockout still answers
 * the generic 401). Per-IP or global rate limiting with 429 is the host's
 * job, in front of libbackend.
 *
 * Throttling per account: after throttle_after (5) consecutive failures,
 * every further failure blocks the account for 1 s x 2^(n - throttle_after)
 * (capped at lockout_ms); attempts inside the window are refused whatever
 * the password and are not counted (an attacker cannot extend the window).
 * At lockout_after (10) failures the account is locked for lockout_ms
 * (15 min), and again after each further failure; the lockout is audited
 * ("auth.lockout"). A successful login, a password set or a reset clears
 * the counter.
 *
 * Session tokens: 32 bytes from randombytes_buf, encoded base64url without
 * padding (BE_AUTH_TOKEN_LEN = 43 characters of [A-Za-z0-9_-]). Only the
 * BLAKE2b-256 hash of a token is stored, so a database dump does not hold
 * usable sessions. A session ends at the first of: idle timeout
 * (session_idle_ms after it was last seen, default 30 min), absolute
 * timeout (session_absolute_ms after login, default 12 h), logout,
 * revoke-all, being ended by id (be_auth_end_session()), a password
 * change (other sessions), a password set or reset (all sessions), or the
 * account being disabled. Each session has an id (never reused) and its
 * login time: be_auth_list_sessions() lists a user's live sessions,
 * be_auth_verify_session() tells a request's session and login time. "Last seen" is written
 * back only when it moved by more than min(1 % of the idle timeout, 60 s),
 * so most verifications are one indexed read; a session can therefore
 * expire up to that much early, never late.
 *
 * Secrets: password and token buffers libbackend makes are wiped with
 * sodium_memzero; passwords and tokens are never logged nor put in audit
 * rows or error messages. Tokens handed to the caller are released with
 * be_auth_token_free(), which wipes them.
 *
 * Hash concurrency: at most max_concurrent_hashes (default 4) argon2id
 * computations run at once per app (each takes pwhash_memlimit bytes).
 * A call that needs one more queues for a slot, first come first served
 * (a released slot goes to the oldest waiter; newcomers never overtake),
 * for at most hash_wait_ms (default 1000 ms), then fails with
 * BE_E_UNAVAILABLE (503, retryable). A login takes its slot before it
 * looks the account up, so a 503 never depends on whether it exists.
 * This bounds memory and keeps logins served in order under a burst, but
 * one client can still fill the queue: rate-limit logins per client
 * address (and per account name) in front of libbackend.
 *
 * Strings a client sends (emails, passwords, tokens) are taken as a
 * pointer and a byte length, BE_NUL_TERMINATED meaning "up to the first
 * NUL"; a length of 0 is the empty string, whatever the pointer. An email
 * that is missing, empty, too long, not valid UTF-8 or holds a NUL byte
 * is a BE_E_VALIDATION naming "email"; a token that is malformed in any
 * way (length, alphabet, NUL byte) is the operation's generic
 * BE_E_UNAUTHORIZED.
 *
 * Every time comes from the app's clock (be_app_clock()), so tests drive
 * expiry with a fake clock. Thread-safety: every function here is safe to
 * call from any number of threads on one app.
 */
#ifndef BACKEND_AUTH_H
#define BACKEND_AUTH_H

#include <backend/common.h>
#include <backend/error.h>
#include <backend/app.h>

BE_BEGIN_DECLS

/** Characters in a session or reset token (base64url of 32 bytes, no padding). */
#define BE_AUTH_TOKEN_LEN 43
/** Longest password accepted, in bytes. */
#define BE_AUTH_PASSWORD_MAX_BYTES 4096
/** Longest password accepted, in characters (Unicode code points). */
#define BE_AUTH_PASSWORD_MAX_CHARS 256
/** The lowest password_min_length an app accepts. */
#define BE_AUTH_PASSWORD_MIN_CHARS 12
/** Different characters (code points, ASCII case folded) a password must hold. */
#define BE_AUTH_PASSWORD_MIN_DISTINCT 5
/** The fewest bytes a pepper (be_app_options.pepper) may have. */
#define BE_AUTH_PEPPER_MIN_BYTES 16
/** The most bytes a pepper may have. */
#define BE_AUTH_PEPPER_MAX_BYTES 64
/** Retired peppers an app accepts at once (be_app_options.previous_peppers). */
#define BE_AUTH_PREVIOUS_PEPPERS_MAX 8
/** Entries a breached-password list may hold when max_entries is 0 (200 MB). */
#define BE_AUTH_BREACHED_MAX_DEFAULT 10000000
/** Unused, unexpired reset tokens one user may have at a time. */
#define BE_AUTH_RESET_MAX_PENDING 3

/**
 * A host blocklist check, e.g. against a breached-password corpus (for
 * HIBP's k-anonymity API, hash the password with SHA-1 yourself). Receives
 * the candidate password (password_len bytes, valid UTF-8, not
 * NUL-terminated: borrowed for the call; never keep, log or send it in
 * clear) and the user_data given to be_auth_set_blocklist_fn(). Return 1
 * when the password must be refused, 0 when it may be used, or a negative
 * BE_E_* code when the check itself failed (the password is then refused
 * with that code: fail closed), optionally with *err set to say why (err
 * may be NULL). Called from any thread: must be thread-safe.
 */
typedef int (*be_auth_blocklist_fn)(const char *password, size_t password_len, void *user_data,
                                    be_error **err);

/**
 * Install or remove the host's blocklist hook; it runs after the built-in
 * checks whenever a new password is set or checked. Thread-safety: safe;
 * calls already running may still use the previous hook.
 *
 * @param app        the app; not NULL.
 * @param fn         the hook; NULL removes it.
 * @param user_data  passed as is to fn; may be NULL.
 * @param err        receives the error on failure; may be NULL.
 * @return BE_OK, or BE_E_MISUSE (app NULL).
 */
BE_API int be_auth_set_blocklist_fn(be_app *app, be_auth_blocklist_fn fn, void *user_data,
                                    be_error **err);

/**
 * Load a breached-password list from a file (e.g. a published corpus, or
 * the top of Have I Been Pwned's SHA-1 list), refused like the built-in
 * common list from then on, in addition to it and to the hook. It
 * replaces the list loaded before; path NULL removes it. The file has one
 * entry a line (LF or CRLF; a UTF-8 byte order mark at the start and
 * empty lines are skipped; a line over BE_AUTH_PASSWORD_MAX_BYTES bytes
 * is skipped, as no such password can be set):
 * - 40 hex digits, either case, optionally followed by ':' and a decimal
 *   count (HIBP's "HASH:COUNT" lines): the SHA-1 of a password;
 * - anything else: a password, the line's bytes exactly (no trimming).
 * A candidate is refused when the SHA-1 of its bytes, or of its bytes
 * with ASCII letters lower-cased, is listed. The list is kept as sorted
 * 20-byte digests (20 bytes an entry; duplicates kept once), never as
 * text; a check is a binary search.
 * @param out_count receives the distinct entries now listed (may be NULL; 0 on failure)
 * @param app the app
 * @param path the file to read (NUL-terminated), or NULL to remove the list
 * @param max_entries the most lines with an entry the file may hold, 0 for
 *        BE_AUTH_BREACHED_MAX_DEFAULT; a longer file is refused
 * @param err receives the error (may be NULL)
 * @return BE_OK; BE_E_MISUSE (app NULL), BE_E_VALIDATION (field "path":
 *         cannot be opened or read, or more entries than max_entries;
 *         field "max_entries": negative), BE_E_NOMEM. On failure the list
 *         loaded before stays. Thread-safety: safe; checks running
 *         meanwhile use the old list or the new one.
 */
BE_API int be_auth_load_breached_passwords(int64_t *out_count, be_app *app, const char *path,
                                           int64_t max_entries, be_error **err);

/**
 * Check a candidate password against the policy (see the file comment)
 * without setting it, e.g. to validate a sign-up form. No context
 * (email, name) is known here, so those two checks are not made.
 * Thread-safety: safe.
 *
 * @param app           the app; not NULL.
 * @param password      the candidate; NULL is refused (field "password").
 * @param password_len  its length in bytes, or BE_NUL_TERMINATED.
 * @param err           receives the error on failure; may be NULL.
 * @return BE_OK when the policy accepts it; BE_E_MISUSE (app NULL);
 *         BE_E_VALIDATION (field "password", message saying which rule
 *         failed); or the hook's code.
 */
BE_API int be_auth_check_password(be_app *app, const char *password, size_t password_len,
                                  be_error **err);

/**
 * Set a user's password (an administrator or sign-up path; users changing
 * their own password use be_auth_change_password()). Policy-checked, hashed
 * with the current parameters, then stored with the failure counter and
 * lock cleared, every session and pending reset token of the user
 * revoked, and an audit row "auth.password_set" by actor_id (0 = the
 * system), all in one transaction. When the user had a password, the
 * app's mailer (if any) then tells them: "Your password was changed"
 * (backend/mailer.h). Thread-safety: safe.
 *
 * @param app           the app; not NULL.
 * @param actor_id      who sets it: a user id, or 0 for the system.
 * @param user_id       the user whose password is set, >= 1.
 * @param password      the new password (policy-checked, with the user's
 *                      email and name as context).
 * @param password_len  its length in bytes, or BE_NUL_TERMINATED.
 * @param err           receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (app NULL); BE_E_VALIDATION (field "password",
 *         "user_id" or "actor_id"); the blocklist hook's code when the
 *         check itself failed; BE_E_NOT_FOUND (no such user);
 *         BE_E_UNAVAILABLE (no hash slot within hash_wait_ms); storage and pool
 *         errors; BE_E_NOMEM.
 */
BE_API int be_auth_set_password(be_app *app, int64_t actor_id, int64_t user_id,
                                const char *password, size_t password_len, be_error **err);

/**
 * Import a password hash made elsewhere, for users migrated from another
 * system: an argon2id hash in PHC string form
 * (`$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>`, as
 * argon2-cffi, libsodium's crypto_pwhash_str() and most argon2 libraries
 * write it) becomes the user's password hash, and the user logs in with
 * the password it was made from. The hash is stored as is, without a
 * pepper: it verifies with its own parameters (an imported hash with a
 * large m costs that much memory at its one login), and the first
 * successful login replaces it with a hash of the app's parameters and
 * current pepper (as for any hash of other parameters, or a different
 * lane count or hash length). The user's sessions are revoked and an
 * audit row "auth.password_import" is written in the same transaction,
 * as for be_auth_set_password(); no mail is sent. The password policy
 * cannot be checked (the password is unknown).
 * Thread-safety: safe.
 *
 * @param app                the app; not NULL.
 * @param actor_id           who imports: a user id, or 0 for the system.
 * @param user_id            the user, >= 1 (e.g. just made with
 *                           be_user_create()).
 * @param password_hash      the PHC string; not NUL-terminated unless
 *                           password_hash_len is BE_NUL_TERMINATED.
 * @param password_hash_len  its length in bytes, or BE_NUL_TERMINATED.
 * @param err                receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (app NULL); BE_E_VALIDATION (field
 *         "password_hash": anything but a well-formed argon2id PHC string
 *         of version 19: argon2i or argon2d, bcrypt and other schemes,
 *         another version, m/t/p missing or out of libsodium's range
 *         (m >= 8 * p KiB), costlier than the app verifies (m over 2 GiB
 *         or m x t over 4 GiB passes, unless the app's own parameters are
 *         higher: one such hash would make every login cost that much,
 *         as the dummy follows the costliest stored hash), a salt of
 *         other than 8..64 or a hash of other
 *         than 16..64 bytes of unpadded base64, 128 bytes or more, a NUL
 *         byte; "user_id", "actor_id"); BE_E_NOT_FOUND (no such user);
 *         storage and pool errors; BE_E_NOMEM.
 */
BE_API int be_auth_import_password_hash(be_app *app, int64_t actor_id, int64_t user_id,
                                        const char *password_hash, size_t password_hash_len,
                                        be_error **err);

/**
 * Log in by email and password. Always a fresh session (no fixation),
 * written with an audit row "auth.login" (actor = the user) in one
 * transaction, which also consumes the user's pending reset tokens (who
 * knows the password needs no reset link; a failed login leaves them).
 * When the stored hash used other parameters than the current ones it is
 * replaced. Thread-safety: safe.
 *
 * @param out_token     receives the new session token (BE_AUTH_TOKEN_LEN
 *                      characters, NUL-terminated), the caller's, released
 *                      with be_auth_token_free(); NULL on failure. Not
 *                      NULL.
 * @param out_user_id   receives the user's id; may be NULL.
 * @param app           the app; not NULL.
 * @param email         the email, matched after trimming and ASCII
 *                      lower-casing.
 * @param email_len     its length in bytes, or BE_NUL_TERMINATED.
 * @param password      the password.
 * @param password_len  its length in bytes, or BE_NUL_TERMINATED.
 * @param err           receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (app or out_token NULL); BE_E_VALIDATION
 *         (field "email": NULL, empty, over 320 bytes, invalid UTF-8 or a
 *         NUL byte; "password": NULL or over its byte cap: these depend
 *         only on the input); BE_E_UNAUTHORIZED "invalid email or password"
 *         (unknown email, wrong password, disabled, no password, throttled
 *         or locked: one answer for all); BE_E_UNAVAILABLE (no hash slot
 *         within hash_wait_ms); storage and pool errors; BE_E_NOMEM.
 */
BE_API int be_auth_login(char **out_token, int64_t *out_user_id, be_app *app, const char *email,
                         size_t email_len, const char *password, size_t password_len,
                         be_error **err);

/**
 * Check a session token. Slides the idle timeout (see the file comment).
 * A token of the wrong length or alphabet is refused without touching the
 * database. Thread-safety: safe.
 *
 * @param out_user_id  receives the session's user (0 on failure); may be
 *                     NULL.
 * @param app          the app; not NULL.
 * @param token        the session token from be_auth_login().
 * @param token_len    its length in bytes, or BE_NUL_TERMINATED.
 * @param err          receives the error on failure; may be NULL.
 * @return BE_OK for a live session; BE_E_MISUSE (app NULL);
 *         BE_E_UNAUTHORIZED "invalid or expired session" (NULL, malformed,
 *         unknown, expired, revoked, or the user is disabled: one answer
 *         for all); storage and pool errors.
 */
BE_API int be_auth_verify(int64_t *out_user_id, be_app *app, const char *token, size_t token_len,
                          be_error **err);

/** The version of be_auth_session_info this header describes. */
#define BE_AUTH_SESSION_INFO_VERSION 1

/**
 * A session as be_auth_verify_session() shows it: never its token. Times
 * are wall-clock milliseconds since the Unix epoch (the app's clock). Set
 * `version` (BE_AUTH_SESSION_INFO_INIT) before passing it in. Only ever
 * grows at the end.
 */
typedef struct be_auth_session_info {
  uint32_t version;        /**< in: BE_AUTH_SESSION_INFO_VERSION */
  int64_t session_id;      /**< the session's id (for be_auth_end_session()) */
  int64_t user_id;         /**< its user */
  int64_t created_at_ms;   /**< the login that made it */
  int64_t last_used_at_ms; /**< last seen (moved on use; see "Last seen" above) */
  int64_t expires_at_ms;   /**< when it ends unless used: the earlier of the absolute
                                and the idle expiry */
} be_auth_session_info;

/** A be_auth_session_info ready to pass in. */
#define BE_AUTH_SESSION_INFO_INIT \
  { BE_AUTH_SESSION_INFO_VERSION, 0, 0, 0, 0, 0 }

/**
 * Set *info to BE_AUTH_SESSION_INFO_INIT (for bindings that cannot use the
 * macro). Thread-safety: safe.
 *
 * @param info     the struct to fill; not NULL.
 * @param version  BE_AUTH_SESSION_INFO_VERSION.
 * @return BE_OK; BE_E_MISUSE (info NULL, or an unknown version).
 */
BE_API int be_auth_session_info_init(be_auth_session_info *info, uint32_t version);

/**
 * be_auth_verify() that also tells which session the token is and when
 * its user logged in, e.g. to ask for the password again before a
 * sensitive action when created_at_ms is older than the host allows.
 * Checks and slides the session exactly like be_auth_verify().
 * Thread-safety: safe.
 *
 * @param out        receives the session; its version must be set
 *                   (BE_AUTH_SESSION_INFO_INIT); on failure every other
 *                   field is 0; not NULL.
 * @param app        the app; not NULL.
 * @param token      the session token from be_auth_login().
 * @param token_len  its length in bytes, or BE_NUL_TERMINATED.
 * @param err        receives the error on failure; may be NULL.
 * @return BE_OK for a live session; BE_E_MISUSE (out or app NULL, unknown
 *         out->version); BE_E_UNAUTHORIZED "invalid or expired session"
 *         (as be_auth_verify()); storage and pool errors.
 */
BE_API int be_auth_verify_session(be_auth_session_info *out, be_app *app, const char *token,
                                  size_t token_len, be_error **err);

/** Most sessions be_auth_list_sessions() returns (the most recently used). */
#define BE_AUTH_SESSIONS_MAX 1000

/** A user's live sessions (opaque, immutable). */
typedef struct be_auth_session_list be_auth_session_list;

/**
 * A user's live sessions (not ended, not expired), most recently used
 * first, at most BE_AUTH_SESSIONS_MAX: for a "where you are logged in"
 * page, with be_auth_end_session() to end one. Tokens are never shown
 * (only their hashes are stored). Authorising the caller (the user
 * themself or an administrator) is the host's job. Thread-safety: safe;
 * the list may be read from any thread.
 *
 * @param out      receives the list, the caller's
 *                 (be_auth_session_list_free()); NULL on failure; not
 *                 NULL.
 * @param app      the app; not NULL.
 * @param user_id  the user, >= 1.
 * @param err      receives the error on failure; may be NULL.
 * @return BE_OK (an empty list when the user has no live session);
 *         BE_E_MISUSE (out or app NULL); BE_E_VALIDATION (field "user_id":
 *         not positive); BE_E_NOT_FOUND (no such user); pool and storage
 *         errors; BE_E_NOMEM.
 */
BE_API int be_auth_list_sessions(be_auth_session_list **out, be_app *app, int64_t user_id,
                                 be_error **err);

/**
 * The number of sessions in a list. Thread-safety: safe.
 *
 * @param list  the list; NULL gives 0.
 * @return the count.
 */
BE_API size_t be_auth_session_list_count(const be_auth_session_list *list);

/**
 * Session i's id, for be_auth_end_session(). Thread-safety: safe.
 *
 * @param list  the list; NULL gives 0.
 * @param i     0..count-1; out of range gives 0.
 * @return the id.
 */
BE_API int64_t be_auth_session_list_id(const be_auth_session_list *list, size_t i);

/**
 * When session i was made: its login. Thread-safety: safe.
 *
 * @param list  the list; NULL gives 0.
 * @param i     0..count-1; out of range gives 0.
 * @return milliseconds since the Unix epoch.
 */
BE_API int64_t be_auth_session_list_created_at_ms(const be_auth_session_list *list, size_t i);

/**
 * When session i was last used (see "Last seen" above). Thread-safety:
 * safe.
 *
 * @param list  the list; NULL gives 0.
 * @param i     0..count-1; out of range gives 0.
 * @return milliseconds since the Unix epoch.
 */
BE_API int64_t be_auth_session_list_last_used_at_ms(const be_auth_session_list *list, size_t i);

/**
 * When session i ends unless used: the earlier of its absolute and its
 * idle expiry. Thread-safety: safe.
 *
 * @param list  the list; NULL gives 0.
 * @param i     0..count-1; out of range gives 0.
 * @return milliseconds since the Unix epoch.
 */
BE_API int64_t be_auth_session_list_expires_at_ms(const be_auth_session_list *list, size_t i);

/**
 * Release a session list.
 *
 * @param list  the list; NULL is a no-op.
 */
BE_API void be_auth_session_list_free(be_auth_session_list *list);

/**
 * End one of a user's sessions by its id (from be_auth_list_sessions() or
 * be_auth_verify_session()), with an audit row "auth.session_end"
 * (details {"session_id": id}) by actor_id in the same transaction. Its
 * token fails at once, in every process. Ending a session that already
 * ended is BE_OK and writes nothing. Thread-safety: safe.
 *
 * @param app         the app; not NULL.
 * @param actor_id    who does it: a user id, or 0 for the system.
 * @param user_id     the session's user, >= 1: another user's session is
 *                    not found.
 * @param session_id  the session's id, >= 1.
 * @param err         receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (app NULL); BE_E_VALIDATION (field
 *         "actor_id", "user_id" or "session_id"); BE_E_NOT_FOUND (the user
 *         has no session with that id, or it was purged); storage and pool
 *         errors.
 */
BE_API int be_auth_end_session(be_app *app, int64_t actor_id, int64_t user_id, int64_t session_id,
                               be_error **err);

/**
 * End one session, with an audit row "auth.logout" (actor = the session's
 * user) in the same transaction. Idempotent: an unknown or already ended
 * session is BE_OK and writes nothing. Thread-safety: safe.
 *
 * @param app        the app; not NULL.
 * @param token      the session token.
 * @param token_len  its length in bytes, or BE_NUL_TERMINATED.
 * @param err        receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (app NULL); BE_E_UNAUTHORIZED (token NULL or
 *         malformed); storage and pool errors.
 */
BE_API int be_auth_logout(be_app *app, const char *token, size_t token_len, be_error **err);

/**
 * End every session of a user ("log out everywhere"), with an audit row
 * "auth.revoke_all" by actor_id in the same transaction.
 * Thread-safety: safe.
 *
 * @param app       the app; not NULL.
 * @param actor_id  who does it: a user id, or 0 for the system.
 * @param user_id   the user whose sessions end, >= 1.
 * @param err       receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (app NULL); BE_E_VALIDATION (user_id < 1,
 *         actor_id negative); BE_E_NOT_FOUND (no such user); storage and
 *         pool errors.
 */
BE_API int be_auth_revoke_all(be_app *app, int64_t actor_id, int64_t user_id, be_error **err);

/**
 * A user changes their own password. The old password counts against the
 * throttle like a login, and fails with the same generic
 * BE_E_UNAUTHORIZED; the new one is judged by the policy only after the
 * old one was verified, so a wrong old password always gets the 401
 * whatever the new one is. Pending reset tokens of the user are consumed.
 * Audited as "auth.password_change" (actor = the user), in the same
 * transaction; then the app's mailer (if any) tells the user: "Your
 * password was changed" (backend/mailer.h; a mailer failure is logged,
 * not returned). Thread-safety: safe.
 *
 * @param app                the app; not NULL.
 * @param user_id            the user, >= 1.
 * @param current_token      when not NULL, a live session of this user: it
 *                           stays valid and every other session is
 *                           revoked; with NULL every session is revoked.
 * @param current_token_len  its length in bytes, or BE_NUL_TERMINATED.
 * @param old_password       the current password.
 * @param old_password_len   its length in bytes, or BE_NUL_TERMINATED.
 * @param new_password       the new password.
 * @param new_password_len   its length in bytes, or BE_NUL_TERMINATED.
 * @param err                receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (app NULL); BE_E_VALIDATION (field
 *         "new_password", "old_password" or "user_id"); BE_E_UNAUTHORIZED
 *         (wrong old password, throttled, unknown user, or current_token
 *         not a live session of the user); BE_E_UNAVAILABLE; storage and
 *         pool errors; BE_E_NOMEM.
 */
BE_API int be_auth_change_password(be_app *app, int64_t user_id, const char *current_token,
                                   size_t current_token_len, const char *old_password,
                                   size_t old_password_len, const char *new_password,
                                   size_t new_password_len, be_error **err);

/**
 * Ask for a password reset. When an active user has this email, a
 * single-use reset token (stored hashed, valid reset_token_ttl_ms) is made
 * and mailed through the app's mailer: subject "Password reset", and a
 * body whose third line is the token alone (so a mailer can turn it into
 * a link). At most BE_AUTH_RESET_MAX_PENDING unused, unexpired tokens
 * exist per user: further requests send nothing (no mail bombing). A
 * token dies with the credential it would replace and the address it was
 * mailed to: it stops working once used, expired, or when the user logs
 * in, has the password set, changed or reset, the email changed, or the
 * account disabled (each consumes the pending tokens in its own
 * transaction).
 *
 * Nothing tells registered emails from others (CVE-2024-45231): the
 * answer is BE_OK whether or not the email exists, and also when the
 * mailer fails (the failure is logged and the token discarded); and every
 * request does the same work -- a token made and hashed, then one write
 * transaction of the same statements, in which a request that issues
 * nothing stores a used token row for no user (the purge removes it) --
 * so known and unknown emails take the same time (bench_auth,
 * auth_reset_timing: medians within 10 %). Every request is audited as
 * "auth.reset_request" by the system (actor 0) with details
 * {"issued":true|false}; its target is the user, or 0 when no active
 * account has the email. Rate-limit requests per client address in front
 * of libbackend: each one writes a row.
 *
 * The one difference left is the mailer's own time, spent only when a
 * token is issued, on the caller's thread, after the commit: the mailer
 * must queue the message and return (microseconds), never talk SMTP
 * inline, or the answer's time tells which emails are registered.
 * Thread-safety: safe.
 *
 * @param app        the app; not NULL.
 * @param email      the account's email, matched as by be_auth_login().
 * @param email_len  its length in bytes, or BE_NUL_TERMINATED.
 * @param err        receives the error on failure; may be NULL.
 * @return BE_OK (whether or not the email exists); BE_E_MISUSE (app NULL);
 *         BE_E_UNSUPPORTED (the app has no mailer); BE_E_VALIDATION (field
 *         "email": NULL, empty, over 320 bytes, invalid UTF-8 or a NUL
 *         byte); storage and pool errors (of the one transaction every
 *         email runs); BE_E_NOMEM.
 */
BE_API int be_auth_request_reset(be_app *app, const char *email, size_t email_len,
                                 be_error **err);

/**
 * Set a new password with a reset token from be_auth_request_reset(). The
 * token is consumed (with every other outstanding reset token of the
 * user), the failure counter and lock are cleared and every session of the
 * user is revoked, with an audit row "auth.password_reset", in one
 * transaction; then the mailer tells the user: "Your password was reset"
 * (backend/mailer.h). A policy failure does not consume the token.
 * Thread-safety: safe.
 *
 * @param app               the app; not NULL.
 * @param token             the reset token from the mail.
 * @param token_len         its length in bytes, or BE_NUL_TERMINATED.
 * @param new_password      the new password (policy-checked).
 * @param new_password_len  its length in bytes, or BE_NUL_TERMINATED.
 * @param err               receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (app NULL); BE_E_UNAUTHORIZED "invalid or
 *         expired reset token" (NULL, malformed, unknown, used or
 *         expired); BE_E_VALIDATION (field "new_password");
 *         BE_E_UNAVAILABLE; storage and pool errors; BE_E_NOMEM.
 */
BE_API int be_auth_reset_password(be_app *app, const char *token, size_t token_len,
                                  const char *new_password, size_t new_password_len,
                                  be_error **err);

/**
 * Delete sessions that are revoked or past their idle or absolute expiry,
 * and reset tokens that are used or expired. Call it now and then (e.g.
 * hourly). Thread-safety: safe.
 *
 * @param out_deleted  receives the number of rows removed; may be NULL.
 * @param app          the app; not NULL.
 * @param err          receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (app NULL), or storage and pool errors.
 */
BE_API int be_auth_purge_expired(int64_t *out_deleted, be_app *app, be_error **err);

/**
 * Wipe (sodium_memzero) and release a token. Thread-safety: safe.
 *
 * @param token  a token from be_auth_login(), or NULL (a no-op).
 */
BE_API void be_auth_token_free(char *token);

BE_END_DECLS

#endif /* BACKEND_AUTH_H */
