/* SPDX-License-Identifier: MIT */
/**
 * @file backend/user.h
 * @brief UserService: user CRUD and profile, cached as `user:{id}`.
 *
 * A user has an id, an email (unique, stored normalised: ASCII white space
 * trimmed, ASCII letters lower-cased; see "Email uniqueness"), a name, a bio, a host-owned `extra`
 * JSON object, a status (BE_USER_ACTIVE / BE_USER_DISABLED) and creation
 * and update times (wall-clock milliseconds since the Unix epoch, from
 * the app's clock).
 *
 * Reads by id go through the app's cache under the key `user:{id}` (TTL
 * user_cache_ttl_ms, default 5 min) with single-flight loading: a stampede
 * on one id costs one query. Every write runs in one transaction together
 * with its audit row (backend/audit.h); the cache entry is dropped only
 * after the commit, so a reader never caches a value older than a
 * committed write.
 *
 * Input rules (BE_E_VALIDATION, with a field error naming the field):
 * - email: after trimming, 3..254 bytes, valid UTF-8, exactly one '@' with
 *   1..64 bytes before it and a domain that neither starts nor ends with
 *   '.' nor holds "..", no spaces or control characters, and nothing that
 *   would let a second address look like an existing one (see "Email
 *   uniqueness" below);
 * - name: after trimming, 1..100 characters of valid UTF-8, no control
 *   characters;
 * - bio: 0..1000 characters of valid UTF-8, no control characters other
 *   than tab, newline and a carriage return right before a newline (CRLF
 *   line breaks, as browsers send them);
 * - extra: a JSON object (checked by the database's JSON functions, not a
 *   hand parser) of at most BE_USER_EXTRA_MAX bytes of valid UTF-8; its
 *   strings may hold any character JSON allows (DEL and U+0080..U+009F
 *   too: only U+0000..U+001F must be escaped). So that SQLite and
 *   PostgreSQL judge it alike, it is also refused, before either sees
 *   it, when it holds a `\u0000` escape, a lone surrogate escape (a
 *   `\uD800..\uDBFF` not followed by a `\uDC00..\uDFFF` escape, or one of
 *   those without a high one right before it; a pair such as
 *   `\uD83D\uDE00` is fine) or objects and arrays nested deeper than
 *   BE_USER_EXTRA_DEPTH_MAX levels (the outermost object counting 1);
 *   on an update of a missing user, BE_E_NOT_FOUND comes first;
 * - any string holding a NUL byte inside its given length is refused.
 *
 * Email uniqueness. An email is stored, and compared for uniqueness and
 * lookups, as its bytes after trimming ASCII white space (space, tab,
 * CR, LF, VT, FF) at both ends and lower-casing the ASCII letters A-Z;
 * nothing else is folded (no Unicode case folding or normalisation:
 * "REN<U+00C9>@x.io" is stored as "ren<U+00C9>@x.io", another address
 * than "ren<U+00E9>@x.io").
 * Since two byte strings can look the same, an email holding any of these
 * is refused (BE_E_VALIDATION, field "email", the message saying which):
 * - a Unicode space or blank (U+00A0, U+1680, U+2000..U+200A, U+2028,
 *   U+2029, U+202F, U+205F, U+2800, U+3000);
 * - a bidirectional control (U+061C, U+200E, U+200F, U+202A..U+202E,
 *   U+2066..U+2069);
 * - an invisible, format or private-use character: soft hyphen U+00AD,
 *   U+034F, zero-width space and joiners U+200B..U+200D, U+2060..U+2065,
 *   U+206A..U+206F, U+FEFF, variation selectors, Hangul fillers, tags
 *   U+E0000..U+E0FFF, the other format characters (Cf), private use
 *   (U+E000..U+F8FF, planes 15 and 16) and noncharacters;
 * - a compatibility form that Unicode folds to another character:
 *   fullwidth and halfwidth forms U+FF00..U+FFEF, super- and subscripts
 *   U+2070..U+209F, letterlike symbols U+2100..U+214F (the Kelvin sign),
 *   enclosed alphanumerics U+2460..U+24FF and U+1F100..U+1F1FF, U+3200..
 *   U+33FF, ligatures and presentation forms U+FB00..U+FB4F, vertical and
 *   small forms U+FE10..U+FE1F and U+FE30..U+FE6F, mathematical letters
 *   U+1D400..U+1D7FF, the ideographic full stop U+3002 (IDNA reads it as
 *   '.'), and any other character NFKC normalisation changes (U+2024 ONE
 *   DOT LEADER reads as '.', U+00B5 MICRO SIGN as Greek mu; Unicode 14),
 *   but Thai and Lao SARA AM (U+0E33, U+0EB3), which their keyboards
 *   type;
 * - a combining accent (U+0300..U+036F, U+1AB0..U+1AFF, U+1DC0..U+1DFF,
 *   U+20D0..U+20FF, U+FE20..U+FE2F): write the precomposed letter (NFC);
 * - a label (the part before the '@', or a part between dots) whose
 *   letters come from more than one of Latin, Greek, Cyrillic, Armenian
 *   and Cherokee (the scripts that share look-alike letters), e.g. a
 *   Cyrillic a (U+0430) among Latin letters; other scripts (Han,
 *   Arabic, ...) may sit next to Latin;
 * - a label written only in Cyrillic letters that all look like Latin
 *   ones (U+0430 U+0441 U+0435, which reads "ace").
 * Letters of one script per label pass: a Cyrillic address at a Cyrillic
 * domain, "ren<U+00E9>@x.io", "ivan.<Cyrillic ivan>@x.io". These rules
 * catch the common spoofs, not every confusable of Unicode's UTS #39
 * (e.g. an all-Greek look-alike label passes).
 *
 * Strings come as a pointer and a byte length: BE_NUL_TERMINATED
 * (backend/common.h) means "up to the first NUL"; any other length is
 * exact, and 0 is the empty string (the pointer is then never read).
 *
 * Every mutating call takes `actor_id`: the user doing it (0 = the system),
 * recorded in the audit row.
 *
 * Thread-safety: every function taking a be_app is safe to call from any
 * number of threads. A be_user or be_user_list is immutable once returned
 * and may be read from any thread; free it once.
 */
#ifndef BACKEND_USER_H
#define BACKEND_USER_H

#include <backend/common.h>
#include <backend/error.h>
#include <backend/app.h>

BE_BEGIN_DECLS

/** A user as read from the database or cache (opaque, immutable). */
typedef struct be_user be_user;
/** An ordered list of users: a page of be_user_list_page() or the result
 * of be_user_get_many(). */
typedef struct be_user_list be_user_list;

/** @name User status */
/** @{ */
#define BE_USER_ACTIVE 0   /**< may log in and holds their roles' permissions */
#define BE_USER_DISABLED 1 /**< cannot log in; has no sessions and no permissions */
/** @} */

/** @name Limits */
/** @{ */
#define BE_USER_EMAIL_MAX 254   /**< bytes, after trimming */
#define BE_USER_NAME_MAX 100    /**< characters */
#define BE_USER_BIO_MAX 1000    /**< characters */
#define BE_USER_EXTRA_MAX 16384 /**< bytes of JSON text */
/** Levels of objects and arrays in extra: SQLite's JSON depth limit (2000
 * before SQLite 3.45, 1000 since; the lower, so the rule holds whichever
 * SQLite is linked). */
#define BE_USER_EXTRA_DEPTH_MAX 1000
#define BE_USER_PAGE_MAX 100   /**< largest page of be_user_list_page() */
#define BE_USER_MANY_MAX 10000 /**< most ids for be_user_get_many() */
/** @} */

/** @name be_user_input.fields: what be_user_update() changes */
/** @{ */
#define BE_USER_FIELD_EMAIL 0x1   /**< email and email_len */
#define BE_USER_FIELD_NAME 0x2    /**< name and name_len */
#define BE_USER_FIELD_BIO 0x4     /**< bio and bio_len */
#define BE_USER_FIELD_EXTRA 0x8   /**< extra and extra_len */
#define BE_USER_FIELD_STATUS 0x10 /**< status */
#define BE_USER_FIELD_ALL 0x1f    /**< every field above */
/** @} */

/** The be_user_input layout this header describes (its version field). */
#define BE_USER_INPUT_VERSION 1

/**
 * The fields of a create or an update. Strings are borrowed for the call.
 * Each `*_len` is the string's byte length (0 = the empty string), or
 * BE_NUL_TERMINATED (the default of BE_USER_INPUT_INIT) when the string
 * is NUL-terminated; give lengths from bindings, so a string with an
 * embedded NUL is refused instead of silently cut. Only ever grows at the
 * end.
 */
typedef struct be_user_input {
  uint32_t version;  /**< BE_USER_INPUT_VERSION */
  uint32_t fields;   /**< be_user_update(): BE_USER_FIELD_* to change (create ignores it) */
  const char *email; /**< required for create */
  size_t email_len;  /**< bytes of email, or BE_NUL_TERMINATED */
  const char *name;  /**< required for create */
  size_t name_len;   /**< bytes of name, or BE_NUL_TERMINATED */
  const char *bio;   /**< create: NULL = "" */
  size_t bio_len;    /**< bytes of bio, or BE_NUL_TERMINATED */
  const char *extra; /**< JSON object; create: NULL = "{}" */
  size_t extra_len;  /**< bytes of extra, or BE_NUL_TERMINATED */
  int32_t status;    /**< BE_USER_ACTIVE (default) or BE_USER_DISABLED */
} be_user_input;

/** Static initializer: no fields, no strings (lengths BE_NUL_TERMINATED),
 * BE_USER_ACTIVE. */
#define BE_USER_INPUT_INIT                                                      \
  { BE_USER_INPUT_VERSION, 0, NULL, BE_NUL_TERMINATED, NULL, BE_NUL_TERMINATED, \
    NULL, BE_NUL_TERMINATED, NULL, BE_NUL_TERMINATED, BE_USER_ACTIVE }

/**
 * Fill *in like BE_USER_INPUT_INIT. Thread-safety: safe.
 *
 * @param in       the struct to fill; not NULL.
 * @param version  BE_USER_INPUT_VERSION.
 * @return BE_OK, or BE_E_MISUSE (in NULL, unknown version).
 */
BE_API int be_user_input_init(be_user_input *in, uint32_t version);

/**
 * Create a user, with an audit row "user.create" in the same transaction.
 * Nothing is written on failure. Thread-safety: safe.
 *
 * @param out       receives the new user, the caller's (be_user_free());
 *                  may be NULL when the caller only needs the id.
 * @param out_id    receives the new user's id; may be NULL.
 * @param app       the app; not NULL.
 * @param actor_id  who creates it: a user id, or 0 for the system.
 * @param in        the fields (in->fields is ignored); email and name
 *                  required. Borrowed for the call; not NULL.
 * @param err       receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (app or in NULL, unknown input version);
 *         BE_E_VALIDATION (field "email", "name", "bio", "extra", "status"
 *         or "actor_id"); BE_E_CONFLICT (409, field "email": the email is
 *         taken); pool and storage errors; BE_E_NOMEM.
 */
BE_API int be_user_create(be_user **out, int64_t *out_id, be_app *app, int64_t actor_id,
                          const be_user_input *in, be_error **err);

/**
 * Get a user by id through the cache (`user:{id}`, single-flight load).
 * Thread-safety: safe.
 *
 * @param out  receives the user, the caller's (be_user_free()); not NULL.
 * @param app  the app; not NULL.
 * @param id   the user's id, > 0.
 * @param err  receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (out or app NULL); BE_E_VALIDATION (field
 *         "id": not positive); BE_E_NOT_FOUND; pool and storage errors;
 *         BE_E_NOMEM.
 */
BE_API int be_user_get(be_user **out, be_app *app, int64_t id, be_error **err);

/**
 * Get a user by id from the database now, bypassing the profile cache: for
 * a host that must see the row as it is, e.g. after changing it with its
 * own SQL, or before a decision that must not act on a cached copy up to
 * user_cache_ttl_ms old. What it reads also replaces the cached copy
 * (`user:{id}`), so later be_user_get() calls see it too; when the row is
 * gone the cached copy is dropped. A write committed while it reads wins:
 * the cache then keeps nothing rather than this read.
 * Thread-safety: safe.
 *
 * @param out  receives the user, the caller's (be_user_free()); not NULL.
 * @param app  the app; not NULL.
 * @param id   the user's id, > 0.
 * @param err  receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (out or app NULL); BE_E_VALIDATION (field
 *         "id": not positive); BE_E_NOT_FOUND; pool and storage errors;
 *         BE_E_NOMEM.
 */
BE_API int be_user_get_fresh(be_user **out, be_app *app, int64_t id, be_error **err);

/**
 * Get a user by email (not cached). Thread-safety: safe.
 *
 * @param out        receives the user, the caller's (be_user_free()); not
 *                   NULL.
 * @param app        the app; not NULL.
 * @param email      the email; normalised as on create before the lookup.
 * @param email_len  its length in bytes, or BE_NUL_TERMINATED.
 * @param err        receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (out or app NULL); BE_E_VALIDATION (field
 *         "email": missing, empty, malformed, invalid UTF-8 or an embedded
 *         NUL); BE_E_NOT_FOUND; pool and storage errors; BE_E_NOMEM.
 */
BE_API int be_user_get_by_email(be_user **out, be_app *app, const char *email, size_t email_len,
                                be_error **err);

/**
 * Get many users at once: cache hits are served from the cache and every
 * miss is read with ONE batch query (backend/batch.h), then cached.
 * Thread-safety: safe.
 *
 * @param out  receives the list, the caller's (be_user_list_free()): n
 *             entries in the order of ids; be_user_list_get() gives NULL
 *             for an id with no user. Not NULL.
 * @param app  the app; not NULL.
 * @param ids  the ids, each > 0 (duplicates allowed); may be NULL when n
 *             is 0. Borrowed for the call.
 * @param n    number of ids, 0..BE_USER_MANY_MAX.
 * @param err  receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (out or app NULL, ids NULL with n > 0);
 *         BE_E_VALIDATION (field "ids": more than BE_USER_MANY_MAX, or an
 *         id not positive, named "ids[i]"); pool and storage errors;
 *         BE_E_NOMEM.
 */
BE_API int be_user_get_many(be_user_list **out, be_app *app, const int64_t *ids, size_t n,
                            be_error **err);

/**
 * Update the fields named in in->fields, with an audit row "user.update"
 * (which fields changed; old and new email, name and status) in the same
 * transaction; the cache entry is dropped after the commit. Disabling a
 * user revokes their sessions and pending password-reset tokens and, like
 * every status change, bumps the authorisation epoch (a disabled user has
 * no permissions). Changing the email consumes the user's pending reset
 * tokens in the same transaction (links mailed to the old address stop
 * working); after the commit the app's mailer (if any) tells both the old
 * and the new address: "Your email address was changed"
 * (backend/mailer.h; a mailer failure is logged, not returned). Nothing
 * is written on failure. Thread-safety: safe.
 *
 * @param out       receives the updated user, the caller's
 *                  (be_user_free()); may be NULL.
 * @param app       the app; not NULL.
 * @param actor_id  who updates it: a user id, or 0 for the system.
 * @param id        the user's id, > 0.
 * @param in        the new values; in->fields (BE_USER_FIELD_*) says which
 *                  are read. Borrowed for the call; not NULL.
 * @param err       receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (app or in NULL, unknown input version);
 *         BE_E_VALIDATION (a field as for create; "fields" when none or
 *         unknown bits are set; "id"; "actor_id"); BE_E_NOT_FOUND;
 *         BE_E_CONFLICT (field "email"); pool and storage errors;
 *         BE_E_NOMEM.
 */
BE_API int be_user_update(be_user **out, be_app *app, int64_t actor_id, int64_t id,
                          const be_user_input *in, be_error **err);

/**
 * Delete a user with an audit row "user.delete" in the same transaction:
 * their sessions, reset tokens and role grants go too (the authorisation
 * epoch is bumped), and the cache entry is dropped after the commit.
 * Thread-safety: safe.
 *
 * @param app       the app; not NULL.
 * @param actor_id  who deletes it: a user id, or 0 for the system.
 * @param id        the user's id, > 0.
 * @param err       receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (app NULL); BE_E_VALIDATION ("id",
 *         "actor_id"); BE_E_NOT_FOUND; pool and storage errors.
 */
BE_API int be_user_delete(be_app *app, int64_t actor_id, int64_t id, be_error **err);

/**
 * One page of users in ascending id order (keyset pagination: rows
 * inserted or deleted between pages never make a page skip or repeat a
 * row). Thread-safety: safe.
 *
 * @param out         receives the page, the caller's (be_user_list_free());
 *                    not NULL.
 * @param app         the app; not NULL.
 * @param cursor      NULL for the first page, else a previous page's
 *                    be_user_list_next_cursor().
 * @param cursor_len  its length in bytes, or BE_NUL_TERMINATED.
 * @param limit       most users on the page, 1..BE_USER_PAGE_MAX; 0 = 20.
 * @param err         receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (out or app NULL); BE_E_VALIDATION (field
 *         "cursor": malformed; "limit"); pool and storage errors;
 *         BE_E_NOMEM.
 */
BE_API int be_user_list_page(be_user_list **out, be_app *app, const char *cursor,
                             size_t cursor_len, int32_t limit, be_error **err);

/**
 * @name Reading a be_user
 * Strings are NUL-terminated and borrowed, valid until be_user_free(). All
 * accept NULL and then return 0 or NULL. Thread-safety: safe.
 */
/** @{ */
/**
 * The user's id.
 * @param user  the user, or NULL.
 * @return the id; 0 for NULL.
 */
BE_API int64_t be_user_id(const be_user *user);
/**
 * The user's email, normalised.
 * @param user  the user, or NULL.
 * @return the email; NULL for NULL.
 */
BE_API const char *be_user_email(const be_user *user);
/**
 * The user's name.
 * @param user  the user, or NULL.
 * @return the name; NULL for NULL.
 */
BE_API const char *be_user_name(const be_user *user);
/**
 * The user's bio.
 * @param user  the user, or NULL.
 * @return the bio (possibly ""); NULL for NULL.
 */
BE_API const char *be_user_bio(const be_user *user);
/**
 * The extra JSON object text.
 * @param user  the user, or NULL.
 * @return the JSON text ("{}" when none was given); NULL for NULL.
 */
BE_API const char *be_user_extra(const be_user *user);
/**
 * The user's status.
 * @param user  the user, or NULL.
 * @return BE_USER_ACTIVE or BE_USER_DISABLED; 0 for NULL.
 */
BE_API int32_t be_user_status(const be_user *user);
/**
 * When the user was created.
 * @param user  the user, or NULL.
 * @return wall-clock milliseconds since the Unix epoch (app clock); 0 for
 *         NULL.
 */
BE_API int64_t be_user_created_at_ms(const be_user *user);
/**
 * When the user was last updated.
 * @param user  the user, or NULL.
 * @return wall-clock milliseconds since the Unix epoch (app clock); 0 for
 *         NULL.
 */
BE_API int64_t be_user_updated_at_ms(const be_user *user);
/** @} */

/**
 * The user as a JSON object {"id","email","name","bio","extra","status",
 * "created_at","updated_at"} (extra embedded as JSON; times in
 * milliseconds since the Unix epoch, as be_user_created_at_ms()).
 * Thread-safety: safe.
 *
 * @param out_json  receives the NUL-terminated JSON, the caller's
 *                  (be_free()); not NULL.
 * @param out_len   receives its length in bytes; may be NULL.
 * @param user      the user; not NULL.
 * @param err       receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (out_json or user NULL) or BE_E_NOMEM.
 */
BE_API int be_user_to_json(char **out_json, size_t *out_len, const be_user *user,
                           be_error **err);

/**
 * Release a user.
 *
 * @param user  a user the caller owns (not one borrowed from a list), or
 *              NULL (a no-op).
 */
BE_API void be_user_free(be_user *user);

/**
 * Number of entries.
 *
 * @param list  the list, or NULL.
 * @return the count; 0 for NULL.
 */
BE_API size_t be_user_list_count(const be_user_list *list);
/**
 * One entry.
 *
 * @param list  the list, or NULL.
 * @param i     the index, 0 to be_user_list_count() - 1.
 * @return the user, borrowed until be_user_list_free() (do not free it);
 *         NULL when out of range or (be_user_get_many) when that id has no
 *         user.
 */
BE_API const be_user *be_user_list_get(const be_user_list *list, size_t i);
/**
 * The cursor of the next page, for be_user_list_page().
 *
 * @param list  the list, or NULL.
 * @return the cursor, NUL-terminated, borrowed until be_user_list_free();
 *         NULL on the last page and for be_user_get_many() results.
 */
BE_API const char *be_user_list_next_cursor(const be_user_list *list);
/**
 * Release a list and its users.
 *
 * @param list  the list, or NULL (a no-op).
 */
BE_API void be_user_list_free(be_user_list *list);

BE_END_DECLS

#endif /* BACKEND_USER_H */
