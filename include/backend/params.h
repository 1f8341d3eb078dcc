/* SPDX-License-Identifier: MIT */
/**
 * @file backend/params.h
 * @brief A list of values to bind to a statement's placeholders, in order.
 *
 * The query helpers (backend/rows.h, backend/batch.h) take their extra
 * values as a be_params, so values always travel as bound parameters and
 * never as SQL text. Values are copied in; the list owns them.
 *
 * Threads: a be_params may be read by several threads at once (binding it
 * only reads it) but must not be changed while any thread uses it.
 */
#ifndef BACKEND_PARAMS_H
#define BACKEND_PARAMS_H

#include <backend/common.h>
#include <backend/error.h>

BE_BEGIN_DECLS

/** An ordered list of values to bind (opaque). */
typedef struct be_params be_params;

/**
 * New empty parameter list.
 *
 * @param out  receives the list, the caller's (be_params_free()); not NULL.
 * @param err  receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (out NULL) or BE_E_NOMEM.
 */
BE_API int be_params_new(be_params **out, be_error **err);

/**
 * Release a list and the values it copied.
 *
 * @param params  the list, or NULL (a no-op).
 */
BE_API void be_params_free(be_params *params);

/**
 * Remove every value (the list can be filled again).
 *
 * @param params  the list; NULL is a no-op.
 */
BE_API void be_params_clear(be_params *params);

/**
 * Number of values in the list.
 *
 * @param params  the list, or NULL.
 * @return the count; 0 for NULL.
 */
BE_API size_t be_params_count(const be_params *params);

/**
 * @name Append one value (bound to the next placeholder)
 * Text and blob bytes are copied. Text must be valid UTF-8 without NUL
 * bytes; len may be BE_NUL_TERMINATED, and 0 is the empty string
 * (backend/common.h). On any failure the list is unchanged.
 */
/** @{ */
/**
 * Append SQL NULL.
 * @param params  the list; not NULL.
 * @param err     receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (params NULL) or BE_E_NOMEM.
 */
BE_API int be_params_add_null(be_params *params, be_error **err);
/**
 * Append a 64-bit integer.
 * @param params  the list; not NULL.
 * @param value   the value.
 * @param err     receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (params NULL) or BE_E_NOMEM.
 */
BE_API int be_params_add_int64(be_params *params, int64_t value, be_error **err);
/**
 * Append a double.
 * @param params  the list; not NULL.
 * @param value   the value.
 * @param err     receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (params NULL) or BE_E_NOMEM.
 */
BE_API int be_params_add_double(be_params *params, double value, be_error **err);
/**
 * Append text.
 * @param params  the list; not NULL.
 * @param value   the text, copied; may be NULL only when len is 0.
 * @param len     its length in bytes, or BE_NUL_TERMINATED.
 * @param err     receives the error on failure; may be NULL.
 * @return BE_OK; BE_E_MISUSE (params NULL, value NULL with a length);
 *         BE_E_VALIDATION (not valid UTF-8 or holding a NUL byte; field
 *         "params[i]", i the value's index); BE_E_NOMEM.
 */
BE_API int be_params_add_text(be_params *params, const char *value, size_t len,
                              be_error **err);
/**
 * Append bytes.
 * @param params  the list; not NULL.
 * @param value   the bytes, copied; may be NULL only when len is 0.
 * @param len     the number of bytes.
 * @param err     receives the error on failure; may be NULL.
 * @return BE_OK, BE_E_MISUSE (params NULL, value NULL with a length) or
 *         BE_E_NOMEM.
 */
BE_API int be_params_add_blob(be_params *params, const void *value, size_t len,
                              be_error **err);
/** @} */

BE_END_DECLS

#endif /* BACKEND_PARAMS_H */
