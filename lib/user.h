/* SPDX-License-Identifier: MIT */
/* Internal: what the wiring hands the app's listener (listener.h) so
 * that cached profiles follow the other apps on the same database. */
#ifndef BE_LIB_USER_H
#define BE_LIB_USER_H

#include <stddef.h>

/* A notification on the user channel (svc_notify.h): another app
 * committed a change to a user; its cached profile goes (as after a
 * local write). ud is the app. Returns 1 when a profile was dropped, 0
 * for the app's own notifications and payloads it does not know. */
int be__user_changed_elsewhere(void *ud, const char *payload, size_t len);

/* The listener came back after being down: changes may have gone
 * unheard, so every cached profile goes. ud is the app. */
void be__user_resync(void *ud);

#endif
