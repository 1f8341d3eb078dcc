/* SPDX-License-Identifier: MIT */
/* A dedicated LISTEN connection and its thread (listener.h). */
#include "listener.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"
#include "storage.h"

#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 30000
#define RECHECK_MS 30000  /* subscribe again after this long without a notification */
#define DOWN_SLICE_MS 100 /* while down, the clock is looked at this often */
#define PAYLOAD_MAX 256

struct be__listener {
  const be_driver *driver;
  char *dsn;
  char channel[65];
  const be_clock *clock;
  int (*on_message)(void *ud, const char *payload, size_t len);
  void (*on_resync)(void *ud);
  void *ud;
  be_conn *conn; /* the thread's; NULL while down */
  int wake[2];   /* a byte on wake[1] wakes the thread */
  pthread_t thread;
  int started;
  _Atomic int32_t stop;
  _Atomic int32_t listening;
  _Atomic int64_t down_since_ms;
  _Atomic int64_t received;
  _Atomic int64_t reconnects;
  int64_t backoff_ms;  /* the next wait's upper bound */
  int64_t retry_at_ns; /* clock's monotonic time of the next attempt */
};

static int64_t now_ns(const be__listener *l) { return be_clock_now_ns(l->clock); }

/* Connect and subscribe; BE_OK with l->conn set, or the error. */
static int connect_listen(be__listener *l, be_error **err) {
  be_conn *c = NULL;
  int rc = be_conn_open(&c, l->driver, l->dsn, err);
  if (rc == BE_OK) rc = be__conn_listen(c, l->channel, err);
  if (rc != BE_OK) {
    be_conn_close(c);
    return rc;
  }
  l->conn = c;
  atomic_store(&l->down_since_ms, 0);
  atomic_store(&l->listening, 1);
  l->backoff_ms = RETRY_MIN_MS;
  return BE_OK;
}

/* The channel is down: say since when, and set the next attempt. */
static void go_down(be__listener *l) {
  be_conn_close(l->conn);
  l->conn = NULL;
  if (atomic_load(&l->listening) || atomic_load(&l->down_since_ms) == 0) {
    int64_t wall_ms = be_clock_wall_ns(l->clock) / BE_NS_PER_MS;
    atomic_store(&l->down_since_ms, wall_ms > 0 ? wall_ms : 1);
  }
  atomic_store(&l->listening, 0);
  int64_t half = l->backoff_ms / 2;
  int64_t wait_ms = half + (int64_t)randombytes_uniform((uint32_t)half + 1);
  l->retry_at_ns = now_ns(l) + wait_ms * BE_NS_PER_MS;
  l->backoff_ms = l->backoff_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : l->backoff_ms * 2;
}

/* Sleep up to ms, or until woken. */
static void nap(be__listener *l, int64_t ms) {
  struct pollfd p = {l->wake[0], POLLIN, 0};
  poll(&p, 1, (int)ms);
}

/* Down: wait for the retry time (by the clock, looked at every slice),
 * then try once. */
static void retry(be__listener *l) {
  int64_t left_ns = l->retry_at_ns - now_ns(l);
  if (left_ns > 0) {
    int64_t ms = left_ns / BE_NS_PER_MS + 1;
    nap(l, ms < DOWN_SLICE_MS ? ms : DOWN_SLICE_MS);
    return;
  }
  if (connect_listen(l, NULL) != BE_OK) {
    go_down(l);
    return;
  }
  atomic_fetch_add(&l->reconnects, 1);
  if (l->on_resync) l->on_resync(l->ud);
}

/* Listening: one notification, or a quiet RECHECK_MS ending in a fresh
 * subscription (a round trip: a dead connection shows). */
static void listen_once(be__listener *l) {
  char payload[PAYLOAD_MAX];
  int32_t got = 0;
  size_t len = 0;
  int rc = be__conn_wait_notification(l->conn, &got, payload, sizeof payload, &len, l->wake[0],
                                      RECHECK_MS, NULL);
  if (atomic_load(&l->stop)) return;
  if (rc == BE_OK && got) {
    if (len < sizeof payload && l->on_message(l->ud, payload, len))
      atomic_fetch_add(&l->received, 1);
    return;
  }
  if (rc == BE_OK) rc = be__conn_listen(l->conn, l->channel, NULL);
  if (rc != BE_OK) go_down(l);
}

static void *run(void *arg) {
  be__listener *l = arg;
  while (!atomic_load(&l->stop)) {
    if (l->conn == NULL) retry(l);
    else listen_once(l);
  }
  return NULL;
}

static void destroy(be__listener *l) {
  be_conn_close(l->conn);
  if (l->wake[0] >= 0) close(l->wake[0]);
  if (l->wake[1] >= 0) close(l->wake[1]);
  be__free(l->dsn);
  be__free(l);
}

static int make(be__listener **out, const be__listener_config *cfg, be_error **err) {
  if (!be__ident_valid(cfg->channel))
    return be__error_field(err, "channel", "must match [A-Za-z_][A-Za-z0-9_]{0,63}");
  be__listener *l = be__calloc(1, sizeof *l);
  if (l == NULL) return be__error_oom(err);
  l->wake[0] = l->wake[1] = -1;
  l->driver = cfg->driver;
  l->clock = cfg->clock;
  l->on_message = cfg->on_message;
  l->on_resync = cfg->on_resync;
  l->ud = cfg->ud;
  l->backoff_ms = RETRY_MIN_MS;
  memcpy(l->channel, cfg->channel, strlen(cfg->channel) + 1);
  l->dsn = be__strdup(cfg->dsn);
  *out = l;
  if (l->dsn == NULL) return be__error_oom(err);
  if (pipe2(l->wake, O_CLOEXEC | O_NONBLOCK) != 0)
    return be__error_set(err, BE_E_INTERNAL, "listener: pipe2 failed");
  return BE_OK;
}

int be__listener_start(be__listener **out, const be__listener_config *cfg, be_error **err) {
  *out = NULL;
  be__listener *l = NULL;
  int rc = make(&l, cfg, err);
  if (rc != BE_OK) {
    if (l) destroy(l);
    return rc;
  }
  if (connect_listen(l, NULL) != BE_OK) go_down(l);
  if (pthread_create(&l->thread, NULL, run, l) != 0) {
    destroy(l);
    return be__error_set(err, BE_E_INTERNAL, "listener: pthread_create failed");
  }
  l->started = 1;
  *out = l;
  return BE_OK;
}

void be__listener_stop(be__listener *l) {
  if (l == NULL) return;
  atomic_store(&l->stop, 1);
  char b = 1;
  ssize_t n = write(l->wake[1], &b, 1);
  (void)n;
  if (l->started) pthread_join(l->thread, NULL);
  destroy(l);
}

void be__listener_get(const be__listener *l, be__listener_state *out) {
  memset(out, 0, sizeof *out);
  if (l == NULL) return;
  out->listening = atomic_load(&l->listening);
  out->down_since_ms = atomic_load(&l->down_since_ms);
  out->received = atomic_load(&l->received);
  out->reconnects = atomic_load(&l->reconnects);
}
