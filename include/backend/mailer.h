/* SPDX-License-Identifier: MIT */
/**
 * @file backend/mailer.h
 * @brief The pluggable mailer libbackend sends password-reset mail and
 *        account notices with.
 *
 * libbackend sends no mail itself: the host plugs in its own transport (SMTP
 * client, queue, HTTP API) by filling a be_mailer. The testkit
 * (backend/testkit.h) has a capturing mock.
 *
 * What is sent, by subject (stable: a mailer may pick a template or a
 * translation by it), always to one address, in plain text:
 * - "Password reset": the reset token, alone on the body's third line
 *   (be_auth_request_reset()). The only mail that holds a secret.
 * - "Your password was changed": the password was changed by the user
 *   (be_auth_change_password()) or set over an existing one
 *   (be_auth_set_password(); a first password sends nothing).
 * - "Your password was reset": be_auth_reset_password() succeeded.
 * - "Your email address was changed": be_user_update() changed the
 *   email; sent to the old address and to the new one.
 * The notices carry no secret, no password and no address other than the
 * recipient's; they are sent after the change committed and only when
 * the app has a mailer. A notice that fails to go out is logged and does
 * not fail the change.
 *
 * The caller waits while send() runs: queue the message and return,
 * never talk SMTP inline. A reset request's answer time differs between
 * registered and unknown emails by exactly the time send() takes
 * (backend/auth.h).
 */
#ifndef BACKEND_MAILER_H
#define BACKEND_MAILER_H

#include <backend/common.h>
#include <backend/error.h>

BE_BEGIN_DECLS

/** The be_mailer layout this header describes (its version field). */
#define BE_MAILER_VERSION 1

/** A mail transport. Only ever grows at the end. */
typedef struct be_mailer {
  uint32_t version; /**< BE_MAILER_VERSION */
  /**
   * Send one message to the address `to` (NUL-terminated strings made by
   * libbackend). Every string is valid only during the call and the body
   * may carry a secret (a reset token): copy what you keep, never log it.
   * Return BE_OK, or a negative BE_E_* code, e.g. BE_E_UNAVAILABLE when
   * the transport is down; *err (err is never NULL) may say why, for your
   * own use. libbackend logs a failure at error level with the code you
   * returned (fields user_id, code = its name, rc = its value) and frees
   * *err unread, so log the transport's details yourself, without the
   * body. Called from whichever thread made the request: must be
   * thread-safe.
   */
  int (*send)(const char *to, const char *subject, const char *body, void *user_data,
              be_error **err);
  void *user_data; /**< passed to send as is */
} be_mailer;

/** Static initializer: the current version, send and user_data NULL. */
#define BE_MAILER_INIT \
  { BE_MAILER_VERSION, NULL, NULL }

/**
 * Fill *mailer like BE_MAILER_INIT (then set send and user_data).
 * Thread-safety: safe.
 *
 * @param mailer   the struct to fill; not NULL.
 * @param version  BE_MAILER_VERSION, the layout the caller was compiled
 *                 against.
 * @return BE_OK, or BE_E_MISUSE when mailer is NULL or version is unknown.
 */
BE_API int be_mailer_init(be_mailer *mailer, uint32_t version);

BE_END_DECLS

#endif /* BACKEND_MAILER_H */
