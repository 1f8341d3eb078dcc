/* SPDX-License-Identifier: MIT */
#ifndef BE_LIB_LOG_H
#define BE_LIB_LOG_H

#include <backend/log.h>

/* Fast check before building fields: 1 when level would be delivered. */
int be__log_enabled(int32_t level);

/* 1 when a field with this key must never have its value logged. */
int be__log_key_is_secret(const char *key);

#endif
