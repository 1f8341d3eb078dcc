/* SPDX-License-Identifier: MIT */
/*
 * Internal: a listener -- one dedicated connection (never a pooled one)
 * that subscribes to a channel through the driver's notifications
 * (be_driver.listen / wait_notification, version 5), and a thread of its
 * own that hands every payload to a callback.
 *
 * When the connection is lost the listener says so (down, and since when
 * by the clock's wall time), closes it and reconnects with exponential
 * backoff (1 s doubling to 30 s, each wait drawn from its upper half),
 * timed by the clock it was given, so a fake clock drives the retries.
 * After each reconnect it calls on_resync: notifications sent while it
 * was down are lost, so whatever they would have invalidated must be
 * dropped. Every 30 s without a notification it subscribes again, a
 * round trip that finds a connection dead without the socket saying so.
 *
 * Threads: callbacks run on the listener's thread, one at a time, and
 * must not stop the listener. be__listener_get() is safe from any thread.
 */
#ifndef BE_LIB_LISTENER_H
#define BE_LIB_LISTENER_H

#include <backend/clock.h>
#include <backend/storage.h>

typedef struct be__listener be__listener;

typedef struct be__listener_config {
  const be_driver *driver; /* has notifications (be__driver_notifies) */
  const char *dsn;         /* copied */
  const char *channel;     /* an identifier; copied */
  const be_clock *clock;   /* backoff and down-since; borrowed, outlives the listener */
  /* a payload; returns 1 when it was used (counted in `received`), 0
   * when ignored (the app's own, or not a payload it knows) */
  int (*on_message)(void *ud, const char *payload, size_t len);
  void (*on_resync)(void *ud); /* after a reconnect; may be NULL */
  void *ud;
} be__listener_config;

/* The listener's state, read without stopping it. */
typedef struct be__listener_state {
  int32_t listening;     /* 1: subscribed now; 0: down (reconnecting) */
  int64_t down_since_ms; /* wall-clock ms the channel went down; 0 while listening */
  int64_t received;      /* notifications handed to on_message */
  int64_t reconnects;    /* times it came back after being down */
} be__listener_state;

/* Open the connection and subscribe on the calling thread (so what is
 * committed after this returns is heard), then start the thread. A failed
 * first connection is not an error: the listener starts down and retries.
 * Errors: BE_E_VALIDATION (channel), BE_E_NOMEM, BE_E_INTERNAL (no
 * thread or pipe). */
int be__listener_start(be__listener **out, const be__listener_config *cfg, be_error **err);

/* Stop the thread (it wakes at once), close the connection, free. NULL
 * is a no-op. */
void be__listener_stop(be__listener *l);

void be__listener_get(const be__listener *l, be__listener_state *out);

#endif
