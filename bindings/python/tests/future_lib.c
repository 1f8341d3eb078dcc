/* SPDX-License-Identifier: MIT */
/* A stand-in for a later 0.x release of libbackend, for the binding's
 * forward-compatibility test: loaded instead of libbackend.so.0 (through
 * LIBBACKEND_PATH), it reports version 0.99.0 and a be_app_options and a
 * be_user_input each one version newer and 16 bytes larger, with a new
 * field at the end that be_<x>_init() sets to a non-zero default. The
 * constructors taking them insist that the new field still holds that
 * default (a binding that allocated only its own size, or zeroed or
 * overwrote the tail, fails with BE_E_MISUSE) and then hand the real
 * library the prefix it knows. Every other function is the real
 * library's, which this module links to. */
#include <backend/backend.h>

#include <dlfcn.h>
#include <stdint.h>
#include <string.h>

#define FUTURE_DEFAULT UINT64_C(0x5AFEF00D5AFEF00D)

typedef struct {
  be_app_options now;
  uint64_t future_field; /* what a later release appended */
  uint64_t future_pad;
} future_app_options;

typedef struct {
  be_user_input now;
  uint64_t future_field;
  uint64_t future_pad;
} future_user_input;

static void *real(const char *name) { return dlsym(RTLD_NEXT, name); }

uint32_t be_version_number(void) { return (0u << 16) | (99u << 8) | 0u; }

const char *be_version_string(void) { return "0.99.0"; }

int be_struct_info(size_t *out_size, uint32_t *out_version, const char *name, size_t name_len,
                   be_error **err) {
  int (*info)(size_t *, uint32_t *, const char *, size_t, be_error **) =
      (int (*)(size_t *, uint32_t *, const char *, size_t, be_error **))real("be_struct_info");
  int rc = info(out_size, out_version, name, name_len, err);
  if (rc != BE_OK || name == NULL) return rc;
  size_t n = name_len == BE_NUL_TERMINATED ? strlen(name) : name_len;
  if (n == strlen("be_app_options") && memcmp(name, "be_app_options", n) == 0) {
    if (out_size != NULL) *out_size = sizeof(future_app_options);
    if (out_version != NULL) *out_version = BE_APP_OPTIONS_VERSION + 1;
  } else if (n == strlen("be_user_input") && memcmp(name, "be_user_input", n) == 0) {
    if (out_size != NULL) *out_size = sizeof(future_user_input);
    if (out_version != NULL) *out_version = BE_USER_INPUT_VERSION + 1;
  }
  return BE_OK;
}

int be_app_options_init(be_app_options *opts, uint32_t version) {
  int (*init)(be_app_options *, uint32_t) =
      (int (*)(be_app_options *, uint32_t))real("be_app_options_init");
  if (opts == NULL || version != BE_APP_OPTIONS_VERSION + 1) return init(opts, version);
  future_app_options *f = (future_app_options *)(void *)opts;
  int rc = init(&f->now, BE_APP_OPTIONS_VERSION);
  f->now.version = version;
  f->future_field = FUTURE_DEFAULT;
  f->future_pad = 0;
  return rc;
}

int be_user_input_init(be_user_input *in, uint32_t version) {
  int (*init)(be_user_input *, uint32_t) =
      (int (*)(be_user_input *, uint32_t))real("be_user_input_init");
  if (in == NULL || version != BE_USER_INPUT_VERSION + 1) return init(in, version);
  future_user_input *f = (future_user_input *)(void *)in;
  int rc = init(&f->now, BE_USER_INPUT_VERSION);
  f->now.version = version;
  f->future_field = FUTURE_DEFAULT;
  f->future_pad = 0;
  return rc;
}

static int lost_default(be_error **err) {
  if (err != NULL) be_error_new(err, BE_E_MISUSE, "future_field lost its default");
  return BE_E_MISUSE;
}

/* The version-(N+1) struct as version N, or NULL when its new field lost
 * its default. */
static const be_app_options *app_options_now(const be_app_options *opts, be_app_options *copy) {
  if (opts == NULL || opts->version != BE_APP_OPTIONS_VERSION + 1) return opts;
  const future_app_options *f = (const future_app_options *)(const void *)opts;
  if (f->future_field != FUTURE_DEFAULT) return NULL;
  *copy = f->now;
  copy->version = BE_APP_OPTIONS_VERSION;
  return copy;
}

static const be_user_input *user_input_now(const be_user_input *in, be_user_input *copy) {
  if (in == NULL || in->version != BE_USER_INPUT_VERSION + 1) return in;
  const future_user_input *f = (const future_user_input *)(const void *)in;
  if (f->future_field != FUTURE_DEFAULT) return NULL;
  *copy = f->now;
  copy->version = BE_USER_INPUT_VERSION;
  return copy;
}

int be_app_new(be_app **out, const be_app_options *opts, be_error **err) {
  int (*app_new)(be_app **, const be_app_options *, be_error **) =
      (int (*)(be_app **, const be_app_options *, be_error **))real("be_app_new");
  be_app_options copy;
  const be_app_options *now = app_options_now(opts, &copy);
  if (now == NULL) return lost_default(err);
  return app_new(out, now, err);
}

typedef int (*user_write_fn)(be_user **, int64_t *, be_app *, int64_t, const be_user_input *,
                             be_error **);
typedef int (*user_update_fn)(be_user **, be_app *, int64_t, int64_t, const be_user_input *,
                              be_error **);

int be_user_create(be_user **out, int64_t *out_id, be_app *app, int64_t actor_id,
                   const be_user_input *in, be_error **err) {
  be_user_input copy;
  const be_user_input *now = user_input_now(in, &copy);
  if (now == NULL) return lost_default(err);
  return ((user_write_fn)real("be_user_create"))(out, out_id, app, actor_id, now, err);
}

int be_user_update(be_user **out, be_app *app, int64_t actor_id, int64_t id,
                   const be_user_input *in, be_error **err) {
  be_user_input copy;
  const be_user_input *now = user_input_now(in, &copy);
  if (now == NULL) return lost_default(err);
  return ((user_update_fn)real("be_user_update"))(out, app, actor_id, id, now, err);
}
