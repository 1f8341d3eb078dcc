/* SPDX-License-Identifier: MIT */
/* Internal: time as the services keep it. Rows store wall-clock int64
 * nanoseconds from the app's clock; the public API speaks milliseconds. */
#ifndef BE_LIB_SVC_TIME_H
#define BE_LIB_SVC_TIME_H

#include <stdint.h>

#include "app_resources.h"

/* The app's wall clock now, in nanoseconds. */
int64_t be__svc_now(const be__app_res *res);

/* Nanoseconds to milliseconds (rounded down), and back (saturating). */
static inline int64_t be__svc_ns_to_ms(int64_t ns) {
  int64_t ms = ns / 1000000;
  return (ns % 1000000 < 0) ? ms - 1 : ms;
}
static inline int64_t be__svc_ms_to_ns(int64_t ms) {
  if (ms > INT64_MAX / 1000000) return INT64_MAX;
  if (ms < INT64_MIN / 1000000) return INT64_MIN;
  return ms * 1000000;
}

/* t + d and t - d for a time t and a duration d >= 0 (ns), saturating at
 * INT64_MAX / INT64_MIN instead of overflowing: a clock (or a fake one)
 * near the end of the range must give "far future", not a negative time. */
static inline int64_t be__ns_add(int64_t t, int64_t d) {
  return t > INT64_MAX - d ? INT64_MAX : t + d;
}
static inline int64_t be__ns_sub(int64_t t, int64_t d) {
  return t < INT64_MIN + d ? INT64_MIN : t - d;
}

#endif
