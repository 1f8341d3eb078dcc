/* SPDX-License-Identifier: MIT */
/**
 * @file backend/permission.h
 * @brief PermissionService: roles, permission strings with wildcards, and
 *        checks that are never stale.
 *
 * A permission is a string `resource:action` (each part 1..64 bytes of
 * [A-Za-z0-9_.-]), or `resource:*` (every action on the resource), or `*`
 * (everything). Roles (names of 1..64 bytes of [A-Za-z0-9_.-]) hold
 * permissions; users hold roles. A user is allowed `posts:write` when one
 * of their roles holds `posts:write`, `posts:*` or `*`. Deny by default:
 * no role, no permission; a disabled or unknown user has none.
 *
 * Never stale. Every change that can alter a decision (grant, revoke, role
 * deletion, user deletion or status change) bumps the authorisation epoch
 * (table auth_epoch) in the same transaction as the change and its audit
 * row. Decisions are cached per (epoch, user), filled by a load that runs
 * after that epoch was read (so its data is at least as new); every check
 * first reads the current committed epoch (one indexed row), so a cached
 * set is used only while no change has committed since it was loaded. A
 * revoke therefore holds on the very next check, from any thread, any app object and any process on the same
 * database. The epoch doubles as a consistency token (be_perm_epoch()).
 *
 * Grants and revokes are idempotent: granting what is already granted, or
 * revoking what is not, changes nothing and writes no audit row.
 * Every change is audited ("perm.role_create", "perm.role_delete",
 * "perm.grant", "perm.revoke", "perm.assign", "perm.unassign") with the
 * actor (`actor_id`: a user id, or 0 = the system; negative is a
 * BE_E_VALIDATION naming "actor_id"). Checks are not audited.
 *
 * Role names and permission strings are taken as a pointer and a byte
 * length (BE_NUL_TERMINATED: up to the first NUL; 0 is the empty string,
 * which is refused). A NUL byte, a non-ASCII byte or any other character
 * outside the alphabet is a BE_E_VALIDATION naming "role" or
 * "permission".
 *
 * Thread-safety: every function taking a be_app is safe from any number of
 * threads. A be_perm_list is immutable and may be read from any thread.
 */
#ifndef BACKEND_PERMISSION_H
#define BACKEND_PERMISSION_H

#include <backend/common.h>
#include <backend/error.h>
#include <backend/app.h>

BE_BEGIN_DECLS

/** A sorted list of strings (permissions or role names). */
typedef struct be_perm_list be_perm_list;

/** Longest role name and permission part, in bytes. */
#define BE_PERM_NAME_MAX 64

/**
 * Check that a user holds a permission. Thread-safety: safe.
 *
 * @param app             the app; not NULL.
 * @param user_id         the user, > 0.
 * @param permission      the permission string asked for; a wildcard asks
 *                        for the wildcard itself: `posts:*` is allowed only
 *                        by `posts:*` or `*`.
 * @param permission_len  its length in bytes, or BE_NUL_TERMINATED.
 * @param err             receives the error on failure; may be NULL.
 * @return BE_OK when allowed; BE_E_FORBIDDEN (403: not allowed, unknown or
 *         disabled user); BE_E_MISUSE (app NULL); BE_E_VALIDATION (field
 *         "permission" malformed, "user_id" not positive); pool and storage
 *         errors; BE_E_NOMEM.
 */
BE_API int be_perm_check(be_app *app, int64_t user_id, const char *permission,
                         size_t permission_len, be_error **err);

/**
 * Create a role. Thread-safety: safe.
 *
 * @param out_role_id  receives the new role's id; may be NULL.
 * @param app          the app; not NULL.
 * @param actor_id     who creates it: a user id, or 0 for the system.
 * @param role         the role's name.
 * @param role_len     its length in bytes, or BE_NUL_TERMINATED.
 * @param err          receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (app NULL); BE_E_VALIDATION (field "role",
 *         "actor_id"); BE_E_CONFLICT (409, field "role": it exists); pool
 *         and storage errors.
 */
BE_API int be_perm_role_create(int64_t *out_role_id, be_app *app, int64_t actor_id,
                               const char *role, size_t role_len, be_error **err);

/**
 * Delete a role: its permissions and every user's membership go with it.
 * Thread-safety: safe.
 *
 * @param app       the app; not NULL.
 * @param actor_id  who deletes it: a user id, or 0 for the system.
 * @param role      the role's name.
 * @param role_len  its length in bytes, or BE_NUL_TERMINATED.
 * @param err       receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (app NULL); BE_E_VALIDATION ("role",
 *         "actor_id"); BE_E_NOT_FOUND; pool and storage errors.
 */
BE_API int be_perm_role_delete(be_app *app, int64_t actor_id, const char *role, size_t role_len,
                               be_error **err);

/**
 * Give a role a permission (idempotent). Thread-safety: safe.
 *
 * @param app             the app; not NULL.
 * @param actor_id        who grants it: a user id, or 0 for the system.
 * @param role            the role's name.
 * @param role_len        its length in bytes, or BE_NUL_TERMINATED.
 * @param permission      a permission string, wildcards allowed.
 * @param permission_len  its length in bytes, or BE_NUL_TERMINATED.
 * @param err             receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (app NULL); BE_E_VALIDATION ("role",
 *         "permission", "actor_id"); BE_E_NOT_FOUND (no such role); pool
 *         and storage errors.
 */
BE_API int be_perm_role_grant(be_app *app, int64_t actor_id, const char *role, size_t role_len,
                              const char *permission, size_t permission_len, be_error **err);

/**
 * Take a permission from a role (the exact string granted; idempotent).
 * Thread-safety: safe.
 *
 * @param app             the app; not NULL.
 * @param actor_id        who revokes it: a user id, or 0 for the system.
 * @param role            the role's name.
 * @param role_len        its length in bytes, or BE_NUL_TERMINATED.
 * @param permission      the permission string as granted.
 * @param permission_len  its length in bytes, or BE_NUL_TERMINATED.
 * @param err             receives the error on failure; may be NULL.
 * @return as be_perm_role_grant().
 */
BE_API int be_perm_role_revoke(be_app *app, int64_t actor_id, const char *role, size_t role_len,
                               const char *permission, size_t permission_len, be_error **err);

/**
 * Give a user a role (idempotent). Thread-safety: safe.
 *
 * @param app       the app; not NULL.
 * @param actor_id  who assigns it: a user id, or 0 for the system.
 * @param user_id   the user, > 0.
 * @param role      the role's name.
 * @param role_len  its length in bytes, or BE_NUL_TERMINATED.
 * @param err       receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (app NULL); BE_E_VALIDATION ("user_id",
 *         "role", "actor_id"); BE_E_NOT_FOUND (no such user or role); pool
 *         and storage errors.
 */
BE_API int be_perm_user_assign(be_app *app, int64_t actor_id, int64_t user_id, const char *role,
                               size_t role_len, be_error **err);

/**
 * Take a role from a user (idempotent). Thread-safety: safe.
 *
 * @param app       the app; not NULL.
 * @param actor_id  who unassigns it: a user id, or 0 for the system.
 * @param user_id   the user, > 0.
 * @param role      the role's name.
 * @param role_len  its length in bytes, or BE_NUL_TERMINATED.
 * @param err       receives the error on failure; may be NULL.
 * @return as be_perm_user_assign().
 */
BE_API int be_perm_user_unassign(be_app *app, int64_t actor_id, int64_t user_id,
                                 const char *role, size_t role_len, be_error **err);

/**
 * The user's effective permissions: the distinct permission strings of all
 * their roles, sorted (wildcards as granted). Thread-safety: safe.
 *
 * @param out      receives the list, the caller's (be_perm_list_free());
 *                 empty for a disabled or unknown user. Not NULL.
 * @param app      the app; not NULL.
 * @param user_id  the user, > 0.
 * @param err      receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (out or app NULL); BE_E_VALIDATION
 *         ("user_id"); pool and storage errors; BE_E_NOMEM.
 */
BE_API int be_perm_user_permissions(be_perm_list **out, be_app *app, int64_t user_id,
                                    be_error **err);

/**
 * The user's role names, sorted. Thread-safety: safe.
 *
 * @param out      receives the list, the caller's (be_perm_list_free());
 *                 not NULL.
 * @param app      the app; not NULL.
 * @param user_id  the user, > 0.
 * @param err      receives the error on failure; may be NULL.
 * @return as be_perm_user_permissions().
 */
BE_API int be_perm_user_roles(be_perm_list **out, be_app *app, int64_t user_id, be_error **err);

/**
 * A role's permissions, sorted. Thread-safety: safe.
 *
 * @param out       receives the list, the caller's (be_perm_list_free());
 *                  not NULL.
 * @param app       the app; not NULL.
 * @param role      the role's name.
 * @param role_len  its length in bytes, or BE_NUL_TERMINATED.
 * @param err       receives the error on failure; may be NULL.
 * @return as be_perm_user_permissions(), with "role" instead of "user_id",
 *         and BE_E_NOT_FOUND for an unknown role.
 */
BE_API int be_perm_role_permissions(be_perm_list **out, be_app *app, const char *role,
                                    size_t role_len, be_error **err);

/**
 * The current authorisation epoch: it grows with every committed change
 * of roles, grants or users' status. Thread-safety: safe.
 *
 * @param out_epoch  receives the epoch; not NULL.
 * @param app        the app; not NULL.
 * @param err        receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (NULL), or pool and storage errors.
 */
BE_API int be_perm_epoch(int64_t *out_epoch, be_app *app, be_error **err);

/**
 * Whether one permission string covers another. Pure; thread-safe.
 *
 * @param granted    a permission string, wildcards allowed, NUL-terminated
 *                   and already valid (e.g. a string a be_perm_list holds).
 * @param requested  the permission asked for, NUL-terminated and valid.
 * @return 1 when granted covers requested; 0 otherwise (also when either
 *         is NULL).
 */
BE_API int32_t be_perm_covers(const char *granted, const char *requested);

/**
 * Number of strings.
 *
 * @param list  the list, or NULL.
 * @return the count; 0 for NULL.
 */
BE_API size_t be_perm_list_count(const be_perm_list *list);
/**
 * One string.
 *
 * @param list  the list, or NULL.
 * @param i     the index, 0 to be_perm_list_count() - 1.
 * @return the string, NUL-terminated, borrowed until be_perm_list_free();
 *         NULL when out of range.
 */
BE_API const char *be_perm_list_get(const be_perm_list *list, size_t i);
/**
 * Release a list.
 *
 * @param list  the list, or NULL (a no-op).
 */
BE_API void be_perm_list_free(be_perm_list *list);

BE_END_DECLS

#endif /* BACKEND_PERMISSION_H */
