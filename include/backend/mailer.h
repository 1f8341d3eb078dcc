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

/** The be_mailer layout this header describes (its version field). */
#define BE_MAILER_VERSION 1

/** A mail transport. Only ever grows at the end. */
typedef struct be_mailer {
  uint32_t version; /**< BE_MAILER_VERSION */
  /**
   * Send one message to the address `to` (NUL-terminated strings made by
   * libbackend). Every string is valid only during the call and the body
   * may carry a secret (a reset token): copy what you keep, never log it.
   * Return BE_OK, or a negative BE_E_* code (and *err if not NULL), e.g.
   * BE_E_UNAVAILABLE when the transport is down. Called from whichever
   * thread requested the reset: must be thread-safe.
   */
  int (*send)(const char *to, const char *subject, const char *body, void *user_data,
              be_error **err);
  void *user_data; /**< passed to send as is */
} be_mailer;

/** Static initializer: the current version, send and user_data NULL. */
#define BE_MAILER_INIT { BE_MAILER_VERSION, NULL, NULL }

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
