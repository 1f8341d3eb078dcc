/* SPDX-License-Identifier: MIT */
/* The public test kit: a seeded in-memory app, a fake clock and a
 * capturing mock mailer (see backend/testkit.h). */
#include <backend/auth.h>
#include <backend/mailer.h>
#include <backend/permission.h>
#include <backend/testkit.h>
#include <backend/user.h>

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "app_resources.h"
#include "error.h"
#include "svc_input.h"
#include "svc_sql.h"
#include "versioned.h"

#define USERS_MAX 100000

typedef struct mail {
  char *to, *subject, *body;
} mail;

struct be_testkit {
  be_app *app;
  be_clock *clock;
  be_mailer mailer;
  pthread_mutex_t mu; /* guards the mail fields */
  mail *mails;
  size_t nmails, cap;
  int32_t fail_count, fail_code;
  int64_t *user_ids;
  int32_t nusers;
};

int be_testkit_options_init(be_testkit_options *opts, uint32_t version) {
  static const be_testkit_options defaults = BE_TESTKIT_OPTIONS_INIT;
  return be__versioned_init(opts, sizeof *opts, &defaults, version, BE_TESTKIT_OPTIONS_VERSION);
}

static void mail_free(mail *m) {
  be__free(m->to);
  /* the body may hold a reset token */
  if (m->body) sodium_memzero(m->body, strlen(m->body));
  be__free(m->subject);
  be__free(m->body);
}

static int mock_send(const char *to, const char *subject, const char *body, void *ud,
                     be_error **err) {
  be_testkit *kit = ud;
  pthread_mutex_lock(&kit->mu);
  if (kit->fail_count > 0) {
    kit->fail_count--;
    int32_t code = kit->fail_code;
    pthread_mutex_unlock(&kit->mu);
    return be__error_set(err, code, "mock mailer: injected failure");
  }
  int rc = BE_OK;
  if (kit->nmails == kit->cap) {
    size_t ncap = kit->cap ? kit->cap * 2 : 8;
    mail *grown = be__realloc(kit->mails, ncap * sizeof *grown);
    if (grown == NULL) rc = be__error_oom(err);
    else {
      kit->mails = grown;
      kit->cap = ncap;
    }
  }
  if (rc == BE_OK) {
    mail m = {be__strdup(to ? to : ""), be__strdup(subject ? subject : ""),
              be__strdup(body ? body : "")};
    if (m.to == NULL || m.subject == NULL || m.body == NULL) {
      mail_free(&m);
      rc = be__error_oom(err);
    } else {
      kit->mails[kit->nmails++] = m;
    }
  }
  pthread_mutex_unlock(&kit->mu);
  return rc;
}

void be_testkit_mail_clear(be_testkit *kit) {
  if (kit == NULL) return;
  pthread_mutex_lock(&kit->mu);
  for (size_t i = 0; i < kit->nmails; i++) mail_free(&kit->mails[i]);
  kit->nmails = 0;
  pthread_mutex_unlock(&kit->mu);
}

int64_t be_testkit_mail_count(be_testkit *kit) {
  if (kit == NULL) return 0;
  pthread_mutex_lock(&kit->mu);
  int64_t n = (int64_t)kit->nmails;
  pthread_mutex_unlock(&kit->mu);
  return n;
}

int be_testkit_mail_get(char **out_to, char **out_subject, char **out_body, be_testkit *kit,
                        int64_t i, be_error **err) {
  if (out_to) *out_to = NULL;
  if (out_subject) *out_subject = NULL;
  if (out_body) *out_body = NULL;
  if (kit == NULL) return be__error_set(err, BE_E_MISUSE, "be_testkit_mail_get: kit is NULL");
  pthread_mutex_lock(&kit->mu);
  int64_t n = (int64_t)kit->nmails;
  if (i == -1) i = n - 1;
  if (i < 0 || i >= n) {
    pthread_mutex_unlock(&kit->mu);
    return be__error_set(err, BE_E_NOT_FOUND, "no captured message %lld", (long long)i);
  }
  const mail *m = &kit->mails[i];
  char *to = out_to ? be__strdup(m->to) : NULL;
  char *subject = out_subject ? be__strdup(m->subject) : NULL;
  char *body = out_body ? be__strdup(m->body) : NULL;
  pthread_mutex_unlock(&kit->mu);
  if ((out_to && !to) || (out_subject && !subject) || (out_body && !body)) {
    be__free(to);
    be__free(subject);
    be__free(body);
    return be__error_oom(err);
  }
  if (out_to) *out_to = to;
  if (out_subject) *out_subject = subject;
  if (out_body) *out_body = body;
  return BE_OK;
}

int be_testkit_mail_fail_next(be_testkit *kit, int32_t count, int32_t code, be_error **err) {
  if (kit == NULL || count < 0 || (count > 0 && code >= 0))
    return be__error_set(err, BE_E_MISUSE,
                         "be_testkit_mail_fail_next: kit NULL, count < 0 or code not negative");
  pthread_mutex_lock(&kit->mu);
  kit->fail_count = count;
  kit->fail_code = code;
  pthread_mutex_unlock(&kit->mu);
  return BE_OK;
}

/* ---- seeding ---- */

typedef struct seed_ctx {
  be_testkit_seed_fn fn;
  void *ud;
} seed_ctx;

static int seed_tx(be_conn *conn, void *ud, be_error **err) {
  seed_ctx *s = ud;
  return s->fn(conn, s->ud, err);
}

static int seed(be_testkit *kit, const be_testkit_options *o, be_error **err) {
  be_app *app = kit->app;
  static const char *const member_perms[] = {"posts:read", "posts:write", "profile:write"};
  const size_t nt = BE_NUL_TERMINATED;
  int rc = be_perm_role_create(NULL, app, 0, "admin", nt, err);
  if (rc == BE_OK) rc = be_perm_role_grant(app, 0, "admin", nt, "*", nt, err);
  if (rc == BE_OK) rc = be_perm_role_create(NULL, app, 0, "member", nt, err);
  for (size_t i = 0; i < sizeof member_perms / sizeof member_perms[0] && rc == BE_OK; i++)
    rc = be_perm_role_grant(app, 0, "member", nt, member_perms[i], nt, err);
  for (int32_t i = 0; i < kit->nusers && rc == BE_OK; i++) {
    char email[64], name[64];
    snprintf(email, sizeof email, "user%d@example.test", (int)i);
    snprintf(name, sizeof name, "User %d", (int)i);
    be_user_input in = BE_USER_INPUT_INIT;
    in.email = email;
    in.name = name;
    rc = be_user_create(NULL, &kit->user_ids[i], app, 0, &in, err);
    if (rc == BE_OK)
      rc = be_perm_user_assign(app, 0, kit->user_ids[i], i == 0 ? "admin" : "member", nt, err);
    if (rc == BE_OK && !o->no_passwords)
      rc = be_auth_set_password(app, 0, kit->user_ids[i], BE_TESTKIT_PASSWORD,
                                nt, err);
  }
  if (rc == BE_OK && o->seed) {
    seed_ctx s = {o->seed, o->seed_user_data};
    rc = be__svc_write(&app->res, seed_tx, &s, err);
  }
  return rc;
}

/* The kit's app: the host's options (may be NULL) on database (NULL: a
 * private in-memory one), the kit's clock and mailer, and the cheapest
 * hashing. */
static int open_app(be_testkit *kit, const be_app_options *host, const char *database,
                    be_error **err) {
  be_app_options ao = BE_APP_OPTIONS_INIT;
  if (host) {
    int rc = be__svc_check_version(host->version, BE_APP_OPTIONS_VERSION, "app_options", err);
    if (rc != BE_OK) return rc;
    ao = *host;
  }
  ao.database = database ? database : ":memory:";
  ao.driver = NULL;
  ao.clock = kit->clock;
  ao.mailer = &kit->mailer;
  ao.insecure_test_hashing = 1;
  if (ao.pwhash_opslimit == 0) ao.pwhash_opslimit = crypto_pwhash_argon2id_OPSLIMIT_MIN;
  if (ao.pwhash_memlimit == 0) ao.pwhash_memlimit = crypto_pwhash_argon2id_MEMLIMIT_MIN;
  return be_app_new(&kit->app, &ao, err);
}

int be_testkit_new(be_testkit **out, const be_testkit_options *opts, be_error **err) {
  if (out == NULL) return be__error_set(err, BE_E_MISUSE, "be_testkit_new: out is NULL");
  *out = NULL;
  be_testkit_options o = BE_TESTKIT_OPTIONS_INIT;
  if (opts) {
    int rc = be__svc_check_version(opts->version, BE_TESTKIT_OPTIONS_VERSION,
                                   "be_testkit_options", err);
    if (rc != BE_OK) return rc;
    o = *opts;
  }
  if (o.users < 0 || o.users > USERS_MAX)
    return be__error_field(err, "users", "must be 0..%d", USERS_MAX);
  if (o.no_passwords != 0 && o.no_passwords != 1)
    return be__error_field(err, "no_passwords", "must be 0 or 1");

  be_testkit *kit = be__calloc(1, sizeof *kit);
  if (kit == NULL) return be__error_oom(err);
  if (pthread_mutex_init(&kit->mu, NULL) != 0) {
    be__free(kit);
    return be__error_set(err, BE_E_INTERNAL, "pthread_mutex_init failed");
  }
  be_mailer_init(&kit->mailer, BE_MAILER_VERSION);
  kit->mailer.send = mock_send;
  kit->mailer.user_data = kit;
  kit->nusers = o.users;
  int rc = BE_OK;
  if (o.users > 0) {
    kit->user_ids = be__calloc((size_t)o.users, sizeof *kit->user_ids);
    if (kit->user_ids == NULL) rc = be__error_oom(err);
  }
  if (rc == BE_OK)
    rc = be_clock_fake_new(&kit->clock, BE_NS_PER_SEC, BE_TESTKIT_START_WALL_MS * BE_NS_PER_MS, NULL);
  if (rc == BE_E_NOMEM) rc = be__error_oom(err);
  if (rc == BE_OK) rc = open_app(kit, o.app_options, o.database, err);
  if (rc == BE_OK) rc = seed(kit, &o, err);
  if (rc == BE_OK) *out = kit;
  else be_testkit_free(kit);
  return rc;
}

void be_testkit_free(be_testkit *kit) {
  if (kit == NULL) return;
  be_app_free(kit->app);
  be_clock_free(kit->clock);
  be_testkit_mail_clear(kit);
  be__free(kit->mails);
  be__free(kit->user_ids);
  pthread_mutex_destroy(&kit->mu);
  be__free(kit);
}

be_app *be_testkit_app(be_testkit *kit) { return kit ? kit->app : NULL; }
be_clock *be_testkit_clock(be_testkit *kit) { return kit ? kit->clock : NULL; }
const struct be_mailer *be_testkit_mailer(be_testkit *kit) { return kit ? &kit->mailer : NULL; }

int be_testkit_advance_ms(be_testkit *kit, int64_t ms, be_error **err) {
  if (kit == NULL || ms < 0 || ms > INT64_MAX / BE_NS_PER_MS)
    return be__error_set(err, BE_E_MISUSE, "be_testkit_advance_ms: kit NULL or ms out of range");
  /* The clock adds without a check: refuse a step that would carry either
   * of its times past INT64_MAX (and wrap them negative). */
  int64_t d = ms * BE_NS_PER_MS;
  int64_t wall = be_clock_wall_ns(kit->clock), mono = be_clock_now_ns(kit->clock);
  if (wall > INT64_MAX - d || mono > INT64_MAX - d)
    return be__error_set(err, BE_E_MISUSE, "be_testkit_advance_ms: the clock would overflow");
  return be_clock_advance(kit->clock, d, err);
}

int64_t be_testkit_user_id(const be_testkit *kit, int32_t i) {
  if (kit == NULL || i < 0 || i >= kit->nusers) return 0;
  return kit->user_ids[i];
}
