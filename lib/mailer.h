/* SPDX-License-Identifier: MIT */
/* Internal: how the services send mail through the host's mailer
 * (backend/mailer.h): one send that logs its own failures, and the
 * account notices. */
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

/* The security notices: what happened to an account, never a secret. */
typedef enum be__notice {
  BE__NOTICE_PASSWORD_CHANGED, /* changed by the user, or set by someone else over an old one */
  BE__NOTICE_PASSWORD_RESET,   /* set with a reset token */
  BE__NOTICE_EMAIL_OLD,        /* to the old address of an email change */
  BE__NOTICE_EMAIL_NEW         /* to the new address of an email change */
} be__notice;

/* Tell the account's holder at `to` that `notice` happened, when the app
 * has a mailer (else nothing). Call it after the change committed: a
 * failure is logged, never returned, since the change stands either
 * way. */
void be__mailer_notify(const be__app_res *res, int64_t user_id, be__notice notice, const char *to);

#endif
