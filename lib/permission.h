/* SPDX-License-Identifier: MIT */
/* Internal: the permission service's state (the decision cache), made by
 * the wiring (app.c) from the app's resources, and the authorisation
 * epoch other services bump. */
#ifndef BE_LIB_PERMISSION_H
#define BE_LIB_PERMISSION_H

#include <backend/permission.h>

#include "app_resources.h"

typedef struct be__perm be__perm;
int be__perm_new(be__perm **out, const be__app_res *res, be_error **err);
void be__perm_free(be__perm *perm);

/* Bump the authorisation epoch on conn, inside the caller's write
 * transaction: every change that can alter a permission decision does. */
int be__perm_bump(const be__app_res *res, be_conn *conn, be_error **err);

#endif
