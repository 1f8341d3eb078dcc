/* SPDX-License-Identifier: MIT */
/* PostgreSQL's SQL text as the driver reads it, without libpq: where
 * strings, quoted identifiers, comments and dollar-quoted bodies end,
 * placeholder translation and script splitting. Not exported. */
#ifndef BE_LIB_PG_SQL_H
#define BE_LIB_PG_SQL_H

#include <stddef.h>
#include <stdint.h>

#include <backend/error.h>

/* The index just past the quoted region or comment starting at sql[i]
 * (a quoted or E-quoted string, a "..." identifier, a -- or nested block
 * comment, a $tag$...$tag$ body); i itself when none starts there. An
 * unterminated region ends at len. */
size_t be__pg_skip(const char *sql, size_t len, size_t i);

/* Translate SQLite-style placeholders into PostgreSQL's: `?N` becomes
 * `$N` and a bare `?` the next number after the largest used so far (as
 * SQLite numbers them); `$N` is kept. Nothing inside strings, quoted
 * identifiers, comments or dollar-quoted bodies is touched. *out gets a
 * NUL-terminated copy (be__free) and *out_params the number of
 * parameters (the largest index). When used is not NULL (8192 bytes,
 * zeroed), bit N (used[N / 8] & 1 << N % 8) is set for every index N the
 * text names. BE_OK, BE_E_MISUSE (an index 0 or above 65535) or
 * BE_E_NOMEM. */
int be__pg_translate(char **out, int32_t *out_params, uint8_t *used, const char *sql, size_t len,
                     be_error **err);

/* The length of the script's first statement, up to and including the
 * `;` that ends it outside quotes and comments; len when none does. */
size_t be__pg_next_statement(const char *sql, size_t len);

#endif
