/* SPDX-License-Identifier: MIT */
/* A stand-in for a later 0.x release of libbackend, for the binding's
 * forward-compatibility test: loaded instead of libbackend.so.0 (through
 * LIBBACKEND_PATH), it reports version 0.99.0 and a be_app_options and a
 * be_user_input each one version newer and FUTURE_BYTES larger, with a
 * new field at the end that be_<x>_init() sets to a non-zero default.
 * The functions taking them insist that the new field still holds that
 * default (a binding that allocated only its own size, or zeroed or
 * overwrote the tail, gets BE_E_MISUSE) and then hand the real library
 * the prefix it knows. Every other function is the real library's, which
 * this module links to. */
#include <backend/backend.h>

#include <dlfcn.h>
#include <stdint.h>
#include <string.h>

#define FUTURE_DEFAULT UINT64_C(0x5AFEF00D5AFEF00D)
#define FUTURE_BYTES 16 /* the appended field and room for one more */

/* A struct this stand-in makes newer: its name, this release's size and
 * version, and the real init function's name. */
typedef struct {
  const char *name;
  size_t size;
  uint32_t version;
  const char *init;
} grown;

static const grown GROWN[] = {
  {"be_app_options", sizeof(be_app_options), BE_APP_OPTIONS_VERSION, "be_app_options_init"},
  {"be_user_input", sizeof(be_user_input), BE_USER_INPUT_VERSION, "be_user_input_init"},
};

static void *real(const char *name) { return dlsym(RTLD_NEXT, name); }

static const grown *find(const char *name, size_t len) {
  for (size_t i = 0; i < sizeof GROWN / sizeof GROWN[0]; i++)
    if (strlen(GROWN[i].name) == len && memcmp(GROWN[i].name, name, len) == 0) return &GROWN[i];
  return NULL;
}

uint32_t be_version_number(void) { return (0u << 16) | (99u << 8) | 0u; }

const char *be_version_string(void) { return "0.99.0"; }

int be_struct_info(size_t *out_size, uint32_t *out_version, const char *name, size_t name_len,
                   be_error **err) {
  typedef int (*info_fn)(size_t *, uint32_t *, const char *, size_t, be_error **);
  int rc = ((info_fn)real("be_struct_info"))(out_size, out_version, name, name_len, err);
  if (rc != BE_OK) return rc;
  const grown *g = find(name, name_len == BE_NUL_TERMINATED ? strlen(name) : name_len);
  if (g != NULL && out_size != NULL) *out_size = g->size + FUTURE_BYTES;
  if (g != NULL && out_version != NULL) *out_version = g->version + 1;
  return BE_OK;
}

/* The newer version: this release's init, then the new field's default. */
static int init_newer(const grown *g, void *s, uint32_t version) {
  typedef int (*init_fn)(void *, uint32_t);
  if (s == NULL || version != g->version + 1) return ((init_fn)real(g->init))(s, version);
  int rc = ((init_fn)real(g->init))(s, g->version);
  uint64_t tail[FUTURE_BYTES / 8] = {FUTURE_DEFAULT};
  memcpy((char *)s, &version, sizeof version); /* the version field comes first */
  memcpy((char *)s + g->size, tail, sizeof tail);
  return rc;
}

int be_app_options_init(be_app_options *opts, uint32_t version) {
  return init_newer(&GROWN[0], opts, version);
}

int be_user_input_init(be_user_input *in, uint32_t version) {
  return init_newer(&GROWN[1], in, version);
}

/* s as this release's version, copied into copy; s itself when it is not
 * the newer version; NULL when its new field lost its default. */
static const void *as_now(const grown *g, const void *s, void *copy) {
  uint32_t version;
  if (s == NULL) return s;
  memcpy(&version, s, sizeof version);
  if (version != g->version + 1) return s;
  uint64_t field;
  memcpy(&field, (const char *)s + g->size, sizeof field);
  if (field != FUTURE_DEFAULT) return NULL;
  memcpy(copy, s, g->size);
  memcpy(copy, &g->version, sizeof g->version);
  return copy;
}

static int lost_default(be_error **err) {
  if (err != NULL) be_error_new(err, BE_E_MISUSE, "the newer struct's field lost its default");
  return BE_E_MISUSE;
}

int be_app_new(be_app **out, const be_app_options *opts, be_error **err) {
  typedef int (*new_fn)(be_app **, const be_app_options *, be_error **);
  be_app_options copy;
  const be_app_options *now = as_now(&GROWN[0], opts, &copy);
  if (opts != NULL && now == NULL) return lost_default(err);
  return ((new_fn)real("be_app_new"))(out, now, err);
}

int be_user_create(be_user **out, int64_t *out_id, be_app *app, int64_t actor_id,
                   const be_user_input *in, be_error **err) {
  typedef int (*create_fn)(be_user **, int64_t *, be_app *, int64_t, const be_user_input *,
                           be_error **);
  be_user_input copy;
  const be_user_input *now = as_now(&GROWN[1], in, &copy);
  if (in != NULL && now == NULL) return lost_default(err);
  return ((create_fn)real("be_user_create"))(out, out_id, app, actor_id, now, err);
}

int be_user_update(be_user **out, be_app *app, int64_t actor_id, int64_t id,
                   const be_user_input *in, be_error **err) {
  typedef int (*update_fn)(be_user **, be_app *, int64_t, int64_t, const be_user_input *,
                           be_error **);
  be_user_input copy;
  const be_user_input *now = as_now(&GROWN[1], in, &copy);
  if (in != NULL && now == NULL) return lost_default(err);
  return ((update_fn)real("be_user_update"))(out, app, actor_id, id, now, err);
}
