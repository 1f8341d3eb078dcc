/* SPDX-License-Identifier: MIT */
/* Internal view of the app object, shared by the service modules
 * (user.c, auth.c, permission.c, audit.c, app.c). */
#ifndef BE_LIB_APP_H
#define BE_LIB_APP_H

#include <backend/app.h>

/* The options with every default filled in (never NULL for a live app). */
const be_app_options *be__app_options(const be_app *app);

/* Auth's private state, made by app.c through be__auth_new (auth.c). */
typedef struct be__auth be__auth;
int be__auth_new(be__auth **out, be_app *app, be_error **err);
void be__auth_free(be__auth *auth);
be__auth *be__app_auth(be_app *app);

/* Permission state (authorisation epoch, check cache), made by app.c
 * through be__perm_new (permission.c). */
typedef struct be__perm be__perm;
int be__perm_new(be__perm **out, be_app *app, be_error **err);
void be__perm_free(be__perm *perm);
be__perm *be__app_perm(be_app *app);

#endif
