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

typedef struct be_loader be_loader;

/**
 * New loader for opts (copied, except opts->where_params, which is
 * borrowed and must outlive the loader) on conn (borrowed). key_type is
 * BE_TYPE_INT or BE_TYPE_TEXT. Caller owns *out (be_loader_free).
 * Errors: BE_E_MISUSE (NULL, bad key_type), BE_E_VALIDATION (as
 * be_batch_load_int64(), checked now), BE_E_NOMEM.
 */
BE_API int be_loader_new(be_loader **out, be_conn *conn, const be_batch_options *opts,
                         int32_t key_type, be_error **err);

/** Release the loader and everything it loaded. NULL is a no-op. */
BE_API void be_loader_free(be_loader *loader);

/**
 * Ask for a key; loaded at the next dispatch unless already loaded or
 * wanted. Errors: BE_E_MISUSE (NULL, wrong key type for the loader),
 * BE_E_VALIDATION (text not UTF-8 or with NUL, field "key"), BE_E_NOMEM.
 * len may be BE_NUL_TERMINATED; 0 is the empty string (backend/common.h).
 */
BE_API int be_loader_want_int64(be_loader *loader, int64_t key, be_error **err);
BE_API int be_loader_want_text(be_loader *loader, const char *key, size_t len, be_error **err);

/**
 * Load every wanted key not loaded yet, in one batch. Nothing to load is a
 * successful no-op that runs no statement. On failure the wanted keys are
 * dropped (want them again to retry). Errors: those of be_batch_load_int64().
 */
BE_API int be_loader_dispatch(be_loader *loader, be_error **err);

/**
 * The rows of a key: wants it if needed and dispatches if it is not loaded
 * yet (together with every other wanted key). *out_rows (borrowed, valid
 * until be_loader_clear() or be_loader_free()) holds the key's *out_count
 * rows from index *out_first; *out_count is 0 for a key without rows.
 * Errors: BE_E_MISUSE (NULL, wrong key type), dispatch errors.
 */
BE_API int be_loader_get_int64(const be_rows **out_rows, size_t *out_first, size_t *out_count,
                               be_loader *loader, int64_t key, be_error **err);
BE_API int be_loader_get_text(const be_rows **out_rows, size_t *out_first, size_t *out_count,
                              be_loader *loader, const char *key, size_t len, be_error **err);

/** Forget everything loaded and wanted (e.g. after a write). NULL: no-op. */
BE_API void be_loader_clear(be_loader *loader);

/** Number of batches dispatched so far (0 for NULL). */
BE_API int64_t be_loader_dispatch_count(const be_loader *loader);

/** Number of wanted keys waiting for the next dispatch (0 for NULL). */
BE_API size_t be_loader_pending_count(const be_loader *loader);

BE_END_DECLS

#endif /* BACKEND_LOADER_H */
