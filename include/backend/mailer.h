/* SPDX-License-Identifier: MIT */
/**
 * @file backend/mailer.h
 * @brief The pluggable mailer the auth service sends password-reset mail with.
 *
 * libbackend sends no mail itself: the host plugs in its own transport (SMTP
 * client, queue, HTTP API) by filling a be_mailer. The testkit
 * (backend/testkit.h) has a capturing mock.
 */
#ifndef BACKEND_MAILER_H
#define BACKEND_MAILER_H

#include <backend/common.h>
#include <backend/error.h>

BE_BEGIN_DECLS

#define BE_MAILER_VERSION 1

/** A mail transport. Only ever grows at the end. */
typedef struct be_mailer {
  uint32_t version; /**< BE_MAILER_VERSION */
  /**
   * Send one message (NUL-terminated strings made by libbackend). Every
   * string is valid only during the call and the body may carry a secret
   * (a reset token): copy what you keep, never log it. Return BE_OK, or a
   * negative BE_E_* code, e.g. BE_E_UNAVAILABLE when the transport is
   * down; *err (err is never NULL) may say why, for your own use.
   * libbackend logs a failure at error level with the code you returned
   * (fields user_id, code = its name, rc = its value) and frees *err
   * unread, so log the transport's details yourself, without the body.
   * Called from whichever thread made the request: must be thread-safe.
   */
  int (*send)(const char *to, const char *subject, const char *body, void *user_data,
              be_error **err);
  void *user_data; /**< passed to send as is */
} be_mailer;

#define BE_MAILER_INIT { BE_MAILER_VERSION, NULL, NULL }

/** Fill *mailer like BE_MAILER_INIT (then set send and user_data).
 * Errors: BE_E_MISUSE (NULL, unknown version). Thread-safety: safe. */
BE_API int be_mailer_init(be_mailer *mailer, uint32_t version);

BE_END_DECLS

#endif /* BACKEND_MAILER_H */
