/* SPDX-License-Identifier: MIT */
/**
 * @file backend/loader.h
 * @brief A request-scoped batching loader (DataLoader-style).
 *
 * Code that walks a list of parents asks for each parent's children one key
 * at a time with be_loader_want_*(); nothing runs yet. The first
 * be_loader_get_*() (or an explicit be_loader_dispatch()) loads every wanted
 * key in one batch (backend/batch.h: deduplicated, chunked only at the
 * driver's bind limit), and the results are memoised for the loader's
 * life: a key loaded once is never loaded again. Create one loader per
 * relation per request and free it at the end of the request, so the memo
 * never outlives the data it reflects (call be_loader_clear() after writes
 * inside the request).
 *
 *     be_loader_want_int64(posts, user_id[i], NULL);    // for each user
 *     be_loader_get_int64(&rows, &first, &n, posts, user_id[0], &err);
 *     // one statement has loaded the posts of every wanted user
 *
 * Threads: a loader belongs to one thread, like its connection.
 */
#ifndef BACKEND_LOADER_H
#define BACKEND_LOADER_H

#include <backend/batch.h>
#include <backend/common.h>
#include <backend/error.h>
#include <backend/rows.h>
#include <backend/storage.h>

BE_BEGIN_DECLS

/** A request-scoped batching loader for one relation (opaque). */
typedef struct be_loader be_loader;

/**
 * New loader for one relation on one connection.
 *
 * @param out       receives the loader, the caller's (be_loader_free());
 *                  not NULL. Set to NULL on failure.
 * @param conn      the connection, borrowed: it must outlive the loader;
 *                  not NULL.
 * @param opts      what to load, version set (as for
 *                  be_batch_load_int64()); copied, except
 *                  opts->where_params, which is borrowed and must outlive
 *                  the loader. Not NULL.
 * @param key_type  BE_TYPE_INT (use the _int64 functions) or BE_TYPE_TEXT
 *                  (the _text ones).
 * @param err       receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (NULL, bad key_type, bad opts version);
 *         BE_E_VALIDATION (as be_batch_load_int64(), checked now);
 *         BE_E_NOMEM.
 */
BE_API int be_loader_new(be_loader **out, be_conn *conn, const be_batch_options *opts,
                         int32_t key_type, be_error **err);

/**
 * Release the loader and everything it loaded (every be_rows it returned).
 *
 * @param loader  the loader, or NULL (a no-op).
 */
BE_API void be_loader_free(be_loader *loader);

/**
 * Ask for an int64 key; loaded at the next dispatch unless already loaded
 * or wanted.
 *
 * @param loader  a loader made with BE_TYPE_INT; not NULL.
 * @param key     the key.
 * @param err     receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (loader NULL, a text loader) or BE_E_NOMEM.
 */
BE_API int be_loader_want_int64(be_loader *loader, int64_t key, be_error **err);
/**
 * Ask for a text key; loaded at the next dispatch unless already loaded or
 * wanted.
 *
 * @param loader  a loader made with BE_TYPE_TEXT; not NULL.
 * @param key     the key (copied), valid UTF-8 without NUL bytes; not NULL.
 * @param len     its length in bytes, or BE_NUL_TERMINATED; 0 is the empty
 *                string (backend/common.h).
 * @param err     receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (loader or key NULL, an int64 loader);
 *         BE_E_VALIDATION (text not UTF-8 or with NUL, field "key");
 *         BE_E_NOMEM.
 */
BE_API int be_loader_want_text(be_loader *loader, const char *key, size_t len, be_error **err);

/**
 * Load every wanted key not loaded yet, in one batch. Nothing to load is a
 * successful no-op that runs no statement. On failure the wanted keys are
 * dropped (want them again to retry).
 *
 * @param loader  the loader; not NULL.
 * @param err     receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (loader NULL), or the errors of
 *         be_batch_load_int64().
 */
BE_API int be_loader_dispatch(be_loader *loader, be_error **err);

/**
 * The rows of an int64 key: wants it if needed and dispatches if it is not
 * loaded yet (together with every other wanted key).
 *
 * @param out_rows   receives the rows holding the key's group, borrowed,
 *                   valid until be_loader_clear() or be_loader_free(); not
 *                   NULL.
 * @param out_first  receives the index of the key's first row in
 *                   *out_rows; not NULL.
 * @param out_count  receives the number of the key's rows (0 for a key
 *                   without rows); not NULL.
 * @param loader     a loader made with BE_TYPE_INT; not NULL.
 * @param key        the key.
 * @param err        receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (NULL, wrong key type), or dispatch errors.
 */
BE_API int be_loader_get_int64(const be_rows **out_rows, size_t *out_first, size_t *out_count,
                               be_loader *loader, int64_t key, be_error **err);
/**
 * The rows of a text key: as be_loader_get_int64().
 *
 * @param out_rows   as for be_loader_get_int64().
 * @param out_first  as for be_loader_get_int64().
 * @param out_count  as for be_loader_get_int64().
 * @param loader     a loader made with BE_TYPE_TEXT; not NULL.
 * @param key        the key, valid UTF-8 without NUL bytes; not NULL.
 * @param len        its length in bytes, or BE_NUL_TERMINATED; 0 is the
 *                   empty string.
 * @param err        receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (NULL, wrong key type), BE_E_VALIDATION (bad
 *         text, field "key"), or dispatch errors.
 */
BE_API int be_loader_get_text(const be_rows **out_rows, size_t *out_first, size_t *out_count,
                              be_loader *loader, const char *key, size_t len, be_error **err);

/**
 * Forget everything loaded and wanted (e.g. after a write); rows returned
 * before become invalid.
 *
 * @param loader  the loader; NULL is a no-op.
 */
BE_API void be_loader_clear(be_loader *loader);

/**
 * Number of batches dispatched so far.
 *
 * @param loader  the loader, or NULL.
 * @return the count; 0 for NULL.
 */
BE_API int64_t be_loader_dispatch_count(const be_loader *loader);

/**
 * Number of wanted keys waiting for the next dispatch.
 *
 * @param loader  the loader, or NULL.
 * @return the count; 0 for NULL.
 */
BE_API size_t be_loader_pending_count(const be_loader *loader);

BE_END_DECLS

#endif /* BACKEND_LOADER_H */
