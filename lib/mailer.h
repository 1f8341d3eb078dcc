/* SPDX-License-Identifier: MIT */
/* Internal: how the services send mail through the host's mailer
 * (backend/mailer.h): one send that logs its own failures. */
#ifndef BE_LIB_MAILER_H
#define BE_LIB_MAILER_H

#include <backend/mailer.h>

#include "app_resources.h"

/* Send one message through the app's mailer, which must be set. Any
 * answer but BE_OK is a failure, logged at error level as "what" with
 * the user's id and the mailer's own return code (the mailer's *err is
 * freed unread: a careless mailer may quote the body in it). Returns that
 * code. */
int be__mailer_send(const be__app_res *res, int64_t user_id, const char *what, const char *to,
                    const char *subject, const char *body);

#endif
