/* SPDX-License-Identifier: MIT */
/* Sequences of user operations with arbitrary fields: create, update
 * (any field mask), delete, get, get by email and get-many with arbitrary
 * ids. The harness keeps which users exist and their normalised emails.
 * Checked after every call:
 * - the code is BE_OK or a typed refusal: BE_E_VALIDATION whose field
 *   errors name only input fields, BE_E_CONFLICT on "email" exactly when
 *   another user has that normalised email, BE_E_NOT_FOUND exactly for a
 *   user that does not exist;
 * - a written user reads back as written: email trimmed of ASCII white
 *   space and lower-cased A-Z, name trimmed, bio byte for byte;
 * - be_user_get (cached), be_user_get_many and be_user_get_by_email (the
 *   database) agree on every field; a get-many entry is NULL exactly for
 *   an id with no user;
 * - be_user_to_json is valid JSON whose "email" is the user's.
 * The database is put back to its seeded state before each input. */
#include "fuzz_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_USERS 64
#define SEEDED 3

static int64_t ids[MAX_USERS];
static char emails[MAX_USERS][BE_USER_EMAIL_MAX + 1];
static int nusers;

static int is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Trim ASCII white space; lower-case A-Z when lower. */
static size_t normalise(char *out, const char *s, size_t n, int lower) {
  while (n > 0 && is_ws(s[0])) s++, n--;
  while (n > 0 && is_ws(s[n - 1])) n--;
  for (size_t i = 0; i < n; i++) out[i] = lower && s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i];
  out[n] = '\0';
  return n;
}

static int find_email(const char *e, int64_t except) {
  for (int i = 0; i < nusers; i++)
    if (ids[i] != except && strcmp(emails[i], e) == 0) return i;
  return -1;
}

static int find_id(int64_t id) {
  for (int i = 0; i < nusers; i++)
    if (ids[i] == id) return i;
  return -1;
}

static int fields_named_ok(be_error *err) {
  static const char *ok[] = {"email", "name", "bio", "extra", "status", "fields", "id"};
  for (size_t i = 0; i < be_error_field_count(err); i++) {
    int found = 0;
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++)
      found |= strcmp(be_error_field_name(err, i), ok[k]) == 0;
    if (!found) return 0;
  }
  return be_error_field_count(err) > 0;
}

static void same_user(const be_user *a, const be_user *b, const char *what) {
  FZ_CHECK(be_user_id(a) == be_user_id(b) && strcmp(be_user_email(a), be_user_email(b)) == 0 &&
             strcmp(be_user_name(a), be_user_name(b)) == 0 &&
             strcmp(be_user_bio(a), be_user_bio(b)) == 0 &&
             strcmp(be_user_extra(a), be_user_extra(b)) == 0 &&
             be_user_status(a) == be_user_status(b) &&
             be_user_updated_at_ms(a) == be_user_updated_at_ms(b),
           "%s: user %lld differs", what, (long long)be_user_id(a));
}

static void check_json(const be_user *u) {
  char *json = NULL;
  size_t len = 0;
  FZ_CHECK(be_user_to_json(&json, &len, u, NULL) == BE_OK, "be_user_to_json failed");
  FZ_CHECK(fz_json_valid(json, len), "invalid JSON: %s", json);
  char *email = fz_json_member_string(json, len, "email", NULL);
  FZ_CHECK(email && strcmp(email, be_user_email(u)) == 0, "JSON email: %s", json);
  free(email);
  be_free(json);
}

/* get, get-many and get-by-email of one id agree with each other and
 * with the model. */
static void check_user(be_app *app, int64_t id) {
  be_user *u = NULL;
  be_error *err = NULL;
  int rc = be_user_get(&u, app, id, &err);
  int at = find_id(id);
  if (at < 0) {
    fz_expect("be_user_get (no such user)", rc, err, BE_E_NOT_FOUND, 1);
    return;
  }
  fz_expect("be_user_get", rc, err, BE_OK, 1);
  FZ_CHECK(strcmp(be_user_email(u), emails[at]) == 0, "email %s, written %s", be_user_email(u),
           emails[at]);
  be_user_list *list = NULL;
  FZ_CHECK(be_user_get_many(&list, app, &id, 1, NULL) == BE_OK && be_user_list_count(list) == 1,
           "get_many of one");
  same_user(u, be_user_list_get(list, 0), "get_many");
  be_user *byemail = NULL;
  FZ_CHECK(be_user_get_by_email(&byemail, app, emails[at], BE_NUL_TERMINATED, NULL) == BE_OK,
           "get_by_email %s", emails[at]);
  same_user(u, byemail, "get_by_email");
  check_json(u);
  be_user_free(byemail);
  be_user_list_free(list);
  be_user_free(u);
}

typedef struct raw {
  const char *email, *name, *bio, *extra;
  size_t elen, nlen, blen, xlen;
} raw;

static void input(fz_in *in, be_user_input *ui, raw *r) {
  static const char *extras[] = {"{}", "{\"a\":1}", "[]", "{\"a\":", "{\"k\":\"\\u00e9\"}"};
  uint8_t how = fz_u8(in);
  r->elen = fz_bytes(in, &r->email, 300);
  r->nlen = fz_bytes(in, &r->name, 500);
  r->blen = fz_bytes(in, &r->bio, 1200);
  if (how & 1) {
    r->xlen = fz_bytes(in, &r->extra, 2000);
  } else {
    r->extra = extras[how / 2 % 5];
    r->xlen = strlen(r->extra);
  }
  be_user_input_init(ui, BE_USER_INPUT_VERSION);
  ui->fields = fz_u8(in) & 0x3f;
  ui->email = r->email, ui->email_len = r->elen;
  ui->name = r->name, ui->name_len = r->nlen;
  ui->bio = r->bio, ui->bio_len = r->blen;
  ui->extra = r->extra, ui->extra_len = r->xlen;
  ui->status = (how & 0x40) ? (int32_t)fz_u8(in) % 4 - 1 : BE_USER_ACTIVE;
}

/* A written user (create or update) reads back as written. */
static void check_written(const be_user *u, const be_user_input *ui, const raw *r, uint32_t mask) {
  char buf[2048];
  if (mask & BE_USER_FIELD_EMAIL) {
    normalise(buf, r->email, r->elen, 1);
    FZ_CHECK(strcmp(be_user_email(u), buf) == 0, "email %s from %s", be_user_email(u), buf);
  }
  if (mask & BE_USER_FIELD_NAME) {
    normalise(buf, r->name, r->nlen, 0);
    FZ_CHECK(strcmp(be_user_name(u), buf) == 0, "name %s", be_user_name(u));
  }
  if (mask & BE_USER_FIELD_BIO)
    FZ_CHECK(strlen(be_user_bio(u)) == r->blen && memcmp(be_user_bio(u), r->bio, r->blen) == 0,
             "bio changed");
  if (mask & BE_USER_FIELD_STATUS) FZ_CHECK(be_user_status(u) == ui->status, "status");
}

static void op_create(fz_in *in, be_app *app) {
  be_user_input ui;
  raw r;
  input(in, &ui, &r);
  char norm[400];
  normalise(norm, r.email, r.elen, 1);
  be_user *u = NULL;
  int64_t id = 0;
  be_error *err = NULL;
  int rc = be_user_create(&u, &id, app, 0, &ui, &err);
  if (rc == BE_OK) {
    FZ_CHECK(find_email(be_user_email(u), 0) < 0, "created a second user with email %s",
             be_user_email(u));
    check_written(u, &ui, &r, BE_USER_FIELD_ALL);
    FZ_CHECK(nusers < MAX_USERS, "too many users");
    ids[nusers] = id;
    strcpy(emails[nusers++], be_user_email(u));
  } else if (rc == BE_E_CONFLICT) {
    FZ_CHECK(find_email(norm, 0) >= 0, "conflict on a free email %s", norm);
  } else {
    FZ_CHECK(rc == BE_E_VALIDATION && fields_named_ok(err), "be_user_create: %d %s", rc,
             be_error_message(err));
  }
  be_error_free(err);
  be_user_free(u);
  if (rc == BE_OK) check_user(app, id);
}

static int64_t pick_id(fz_in *in) {
  uint8_t p = fz_u8(in);
  if (p < 200 && nusers > 0) return ids[p % nusers];
  return p < 250 ? (int64_t)(p % 8) - 2 : fz_i64(in);
}

static void op_update(fz_in *in, be_app *app) {
  int64_t id = pick_id(in);
  be_user_input ui;
  raw r;
  input(in, &ui, &r);
  char norm[400];
  normalise(norm, r.email, r.elen, 1);
  if (id > 0) check_user(app, id); /* cached before the update, as in a running app */
  be_user *u = NULL;
  be_error *err = NULL;
  int rc = be_user_update(&u, app, 0, id, &ui, &err);
  int at = find_id(id);
  if (rc == BE_OK) {
    FZ_CHECK(at >= 0, "updated user %lld, who does not exist", (long long)id);
    FZ_CHECK(find_email(be_user_email(u), id) < 0, "two users with email %s", be_user_email(u));
    check_written(u, &ui, &r, ui.fields);
    strcpy(emails[at], be_user_email(u));
  } else if (rc == BE_E_NOT_FOUND) {
    FZ_CHECK(at < 0, "user %lld not found", (long long)id);
  } else if (rc == BE_E_CONFLICT) {
    FZ_CHECK((ui.fields & BE_USER_FIELD_EMAIL) && find_email(norm, id) >= 0, "conflict on %s", norm);
  } else {
    FZ_CHECK(rc == BE_E_VALIDATION && fields_named_ok(err), "be_user_update: %d %s", rc,
             be_error_message(err));
  }
  be_error_free(err);
  be_user_free(u);
  if (id > 0) check_user(app, id);
}

static void op_delete(fz_in *in, be_app *app) {
  int64_t id = pick_id(in);
  int at = find_id(id);
  if (id > 0) check_user(app, id); /* cached before the delete */
  be_error *err = NULL;
  int rc = be_user_delete(app, 0, id, &err);
  fz_expect("be_user_delete", rc, err, id <= 0 ? BE_E_VALIDATION : at < 0 ? BE_E_NOT_FOUND
                                                                          : BE_OK,
            1);
  if (rc == BE_OK) ids[at] = ids[--nusers], memcpy(emails[at], emails[nusers], sizeof emails[0]);
  if (id > 0) check_user(app, id);
}

static void op_get_many(fz_in *in, be_app *app) {
  int64_t want[48];
  size_t n = fz_u8(in) % 48;
  int bad = 0;
  for (size_t i = 0; i < n; i++) bad |= (want[i] = pick_id(in)) <= 0;
  be_user_list *list = NULL;
  be_error *err = NULL;
  int rc = be_user_get_many(&list, app, n ? want : NULL, n, &err);
  if (bad) {
    fz_expect("be_user_get_many (an id <= 0)", rc, err, BE_E_VALIDATION, 1);
    return;
  }
  fz_expect("be_user_get_many", rc, err, BE_OK, 1);
  FZ_CHECK(be_user_list_count(list) == n, "%zu entries for %zu ids", be_user_list_count(list), n);
  for (size_t i = 0; i < n; i++) {
    const be_user *u = be_user_list_get(list, i);
    FZ_CHECK((u != NULL) == (find_id(want[i]) >= 0), "entry %zu (id %lld): %s", i,
             (long long)want[i], u ? "a user" : "none");
    if (u) FZ_CHECK(be_user_id(u) == want[i], "entry %zu is user %lld", i, (long long)be_user_id(u));
  }
  be_user_list_free(list);
}

static void op_by_email(fz_in *in, be_app *app) {
  const char *e;
  size_t n = fz_bytes(in, &e, 300);
  be_user *u = NULL;
  be_error *err = NULL;
  int rc = be_user_get_by_email(&u, app, e, n, &err);
  if (rc == BE_OK) FZ_CHECK(find_id(be_user_id(u)) >= 0, "found a user that does not exist");
  else FZ_CHECK(rc == BE_E_NOT_FOUND || (rc == BE_E_VALIDATION && fields_named_ok(err)),
                "be_user_get_by_email: %d", rc);
  be_user_free(u);
  be_error_free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  be_testkit *kit = fz_kit(SEEDED, 0);
  be_app *app = be_testkit_app(kit);
  fz_kit_reset(kit);
  nusers = SEEDED;
  for (int i = 0; i < SEEDED; i++) {
    ids[i] = be_testkit_user_id(kit, i);
    snprintf(emails[i], sizeof emails[i], "user%d@example.test", i);
  }
  fz_in in = {data, size};
  for (int ops = 0; in.n > 0 && ops < 24; ops++) {
    switch (fz_u8(&in) % 5) {
      case 0: op_create(&in, app); break;
      case 1: op_update(&in, app); break;
      case 2: op_delete(&in, app); break;
      case 3: op_get_many(&in, app); break;
      default: op_by_email(&in, app); break;
    }
  }
  return 0;
}
