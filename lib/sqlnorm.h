/* SPDX-License-Identifier: MIT */
/* SQL text normalisation, for counting statements by shape (N+1 detector)
 * and for logging SQL without its literal values (slow-query log). */
#ifndef BE_LIB_SQLNORM_H
#define BE_LIB_SQLNORM_H

#include <stddef.h>
#include <stdint.h>

/* Write the normalised form of sql into out (cap >= 1 bytes, always
 * NUL-terminated; cut at cap-1 bytes with "..." at the end when longer):
 * comments dropped, whitespace runs collapsed to one space (none after
 * "(" or before ")" and ","; ", " after every comma), string, blob and
 * number literals and every placeholder style (?, ?N, $N, :name, @name)
 * become "?", and a parenthesised list of only placeholders, such as an
 * IN list, becomes "(?)". Quoted identifiers are kept. Returns a 64-bit
 * hash of the whole normalised text (also the part cut off). */
uint64_t be__sql_normalize(const char *sql, char *out, size_t cap);

#endif
