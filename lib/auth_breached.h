/* SPDX-License-Identifier: MIT */
/* Internal: the breached-password list a host loads from a file
 * (be_auth_load_breached_passwords): the sorted, distinct SHA-1 digests
 * of its entries, swapped in whole under the auth state's breached_mu. */
#ifndef BE_LIB_AUTH_BREACHED_H
#define BE_LIB_AUTH_BREACHED_H

#include <stddef.h>

#include "auth.h"

/* 1 when the SHA-1 of pw (len bytes), or of pw with ASCII letters
 * lower-cased, is on the app's loaded list; 0 otherwise or when none is
 * loaded. Thread-safe. */
int be__breached_has(be__auth *auth, const char *pw, size_t len);

/* Free a list (NULL is a no-op). */
void be__breached_free(struct be__breached *list);

#endif
