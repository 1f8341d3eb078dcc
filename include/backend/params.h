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

typedef struct be_params be_params;

/**
 * New empty parameter list. Caller owns *out (be_params_free).
 * Errors: BE_E_MISUSE (out NULL), BE_E_NOMEM.
 */
BE_API int be_params_new(be_params **out, be_error **err);

/** Release a list and the values it copied. NULL is a no-op. */
BE_API void be_params_free(be_params *params);

/** Remove every value (the list can be filled again). NULL is a no-op. */
BE_API void be_params_clear(be_params *params);

/** Number of values in the list (0 for NULL). */
BE_API size_t be_params_count(const be_params *params);

/** @name Append one value (bound to the next placeholder)
 * Text and blob bytes are copied. Text must be valid UTF-8 without NUL
 * bytes; len may be BE_NUL_TERMINATED, and 0 is the empty string
 * (backend/common.h).
 * Errors: BE_E_MISUSE (params NULL, value NULL with a length),
 * BE_E_VALIDATION (text not valid UTF-8, field "params[i]"), BE_E_NOMEM
 * (the list is unchanged). @{ */
BE_API int be_params_add_null(be_params *params, be_error **err);
BE_API int be_params_add_int64(be_params *params, int64_t value, be_error **err);
BE_API int be_params_add_double(be_params *params, double value, be_error **err);
BE_API int be_params_add_text(be_params *params, const char *value, size_t len,
                              be_error **err);
BE_API int be_params_add_blob(be_params *params, const void *value, size_t len,
                              be_error **err);
/** @} */

BE_END_DECLS

#endif /* BACKEND_PARAMS_H */
