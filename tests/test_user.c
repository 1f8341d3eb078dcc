/* SPDX-License-Identifier: MIT */
/* UserService: CRUD, validation, cache behaviour, batch reads, keyset
 * pagination, and all-or-nothing writes. */
#include "svc_testutil.h"
#include "svc_notify.h" /* the change notification payload */

#include <sqlite3.h>

#include <pthread.h>
#include <semaphore.h>

static be_cache_stats cstats(be_app *app) {
  be_cache_stats s = BE_CACHE_STATS_INIT;
  ck_assert_int_eq(be_cache_stats_get(&s, be_app_cache(app), NULL), BE_OK);
  return s;
}

START_TEST(create_get_update_delete) {
  be_app *app = svc_app_ex(NULL, NULL, 0);
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = "  Alice@Example.COM ";
  in.name = " Alice ";
  in.bio = "hello\nworld";
  in.extra = "{\"theme\":\"dark\"}";
  be_user *u = NULL;
  int64_t id = 0;
  be_error *e = NULL;
  ck_assert_int_eq(be_user_create(&u, &id, app, 0, &in, &e), BE_OK);
  ck_assert_int_eq(be_user_id(u), id);
  ck_assert_str_eq(be_user_email(u), "alice@example.com");
  ck_assert_str_eq(be_user_name(u), "Alice");
  ck_assert_str_eq(be_user_bio(u), "hello\nworld");
  ck_assert_str_eq(be_user_extra(u), "{\"theme\":\"dark\"}");
  ck_assert_int_eq(be_user_status(u), BE_USER_ACTIVE);
  ck_assert_int_gt(be_user_created_at_ms(u), 0);
  ck_assert_int_eq(be_user_created_at_ms(u), be_user_updated_at_ms(u));
  char *json = NULL;
  ck_assert_int_eq(be_user_to_json(&json, NULL, u, NULL), BE_OK);
  ck_assert_ptr_nonnull(strstr(json, "\"extra\":{\"theme\":\"dark\"}"));
  ck_assert_ptr_nonnull(strstr(json, "\"email\":\"alice@example.com\""));
  be_free(json);
  json = (char *)"x";
  ck_assert_int_eq(be_user_to_json(&json, NULL, NULL, NULL), BE_E_MISUSE);
  ck_assert_ptr_null(json);
  be_user_free(u);

  ck_assert_int_eq(be_user_get(&u, app, id, NULL), BE_OK);
  ck_assert_str_eq(be_user_name(u), "Alice");
  be_user_free(u);
  ck_assert_int_eq(be_user_get_by_email(&u, app, "ALICE@example.com ", NT, NULL), BE_OK);
  ck_assert_int_eq(be_user_id(u), id);
  be_user_free(u);
  /* a long string is judged whole, never by its first bytes */
  static char padded[2100];
  memset(padded, ' ', sizeof padded - 1);
  memcpy(padded, "alice@example.com", 17);
  padded[sizeof padded - 2] = 'x';
  u = NULL;
  ck_assert_int_eq(be_user_get_by_email(&u, app, padded, NT, NULL), BE_E_VALIDATION);
  ck_assert_ptr_null(u);

  be_user_input up = BE_USER_INPUT_INIT;
  up.fields = BE_USER_FIELD_NAME | BE_USER_FIELD_EXTRA;
  up.name = "Alice B";
  up.extra = "{\"theme\":\"light\"}";
  ck_assert_int_eq(be_user_update(&u, app, id, id, &up, &e), BE_OK);
  ck_assert_str_eq(be_user_name(u), "Alice B");
  ck_assert_str_eq(be_user_bio(u), "hello\nworld"); /* untouched */
  be_user_free(u);
  ck_assert_int_eq(be_user_get(&u, app, id, NULL), BE_OK);
  ck_assert_str_eq(be_user_name(u), "Alice B");
  ck_assert_str_eq(be_user_extra(u), "{\"theme\":\"light\"}");
  be_user_free(u);
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM be_audit_log WHERE action='user.update'"), 1);

  ck_assert_int_eq(be_user_delete(app, 0, id, NULL), BE_OK);
  ck_assert_int_eq(be_user_get(&u, app, id, &e), BE_E_NOT_FOUND);
  ck_assert_int_eq(be_error_http_status(e), 404);
  be_error_free(e);
  ck_assert_int_eq(be_user_delete(app, 0, id, NULL), BE_E_NOT_FOUND);
  ck_assert_int_eq(be_user_get_by_email(&u, app, "alice@example.com", NT, NULL), BE_E_NOT_FOUND);
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM be_audit_log"), 3);
  be_app_free(app);
}
END_TEST

/* A deleted user's id is never given to a new user: audit rows (and host
 * rows) about the old account must not start describing the new one. */
/* Addresses that look like alice@example.com (or like nothing at all)
 * are refused, naming "email", instead of becoming a second account. */
static const struct {
  const char *email;
  const char *why; /* a word of the expected message */
} lookalikes[] = {
  {"\xd0\xb0lice@example.com", "mixes"},          /* Cyrillic a (U+0430) */
  {"\xef\xbd\x81lice@example.com", "fullwidth"},  /* fullwidth a (U+FF41) */
  {"alice@example.com\xe2\x80\x8b", "invisible"}, /* trailing U+200B */
  {"ali\xc2\xa0"
   "ce@example.com",
   "space"},                                            /* U+00A0 in the local part */
  {"alice@ex\xd0\xb0mple.com", "mixes"},                /* Cyrillic a in the domain */
  {"\xce\xb1lice@example.com", "mixes"},                /* Greek alpha */
  {"\xd0\xb0\xd1\x81\xd0\xb5@example.com", "Cyrillic"}, /* all-Cyrillic "ace" */
  {"alice\xe2\x80\xae@example.com", "bidirectional"},   /* U+202E */
  {"alice\xe2\x81\xa6@example.com", "bidirectional"},   /* U+2066 */
  {"al\xc2\xad"
   "ice@example.com",
   "invisible"},                                  /* soft hyphen */
  {"al\xe2\x81\xa0ice@example.com", "invisible"}, /* word joiner U+2060 */
  {"\xef\xbb\xbf"
   "alice@example.com",
   "invisible"},                                  /* BOM U+FEFF */
  {"al\xe2\x80\x8dice@example.com", "invisible"}, /* zero-width joiner */
  {"alice@example\xe3\x80\x80.com", "space"},     /* ideographic space U+3000 */
  {"alice@example.com\xe2\x80\xa8", "space"},     /* line separator U+2028 */
  {"a\xcc\x81lice@example.com", "combining"},     /* a + U+0301 */
  {"\xe2\x84\xaa"
   "alice@example.com",
   "compatibility"},                                     /* Kelvin sign */
  {"\xf0\x9d\x90\x9alice@example.com", "compatibility"}, /* mathematical bold a */
  {"\xef\xac\x81"
   "nn@example.com",
   "ligature"},                                       /* fi ligature */
  {"alice\xee\x80\x80@example.com", "private-use"},   /* U+E000 */
  {"alice\xf3\xa0\x80\x81@example.com", "invisible"}, /* language tag U+E0001 */
  /* what NFKC folds outside the blocks above (these were accepted) */
  {"alice@example\xe2\x80\xa4"
   "com",
   "compatibility"},                              /* ONE DOT LEADER U+2024 */
  {"\xc2\xb5lice@example.com", "compatibility"},  /* MICRO SIGN U+00B5 */
  {"alice\xc2\xb2@example.com", "compatibility"}, /* superscript two U+00B2 */
  {"\xc5\xbflice@example.com", "compatibility"},  /* long s U+017F */
  {"alice@example\xe3\x80\x82"
   "com",
   "compatibility"},                                    /* ideographic full stop U+3002 */
  {"\xd1\xb5\xd0\xbe\xd1\x85@example.com", "Cyrillic"}, /* izhitsa + o + kha: "vox" */
};

START_TEST(lookalike_emails_are_refused) {
  be_app *app = svc_app_ex(NULL, NULL, 0);
  int64_t alice = svc_user(app, "alice@example.com", "Alice");
  int64_t bob = svc_user(app, "bob@example.com", "Bob");
  for (size_t i = 0; i < sizeof lookalikes / sizeof lookalikes[0]; i++) {
    be_user_input in = BE_USER_INPUT_INIT;
    in.email = lookalikes[i].email;
    in.name = "Mallory";
    be_error *e = NULL;
    int rc = be_user_create(NULL, NULL, app, 0, &in, &e);
    ck_assert_msg(rc == BE_E_VALIDATION, "case %zu accepted", i);
    ck_assert_msg(strstr(be_error_message(e), lookalikes[i].why) ||
                    (be_error_field_count(e) == 1 &&
                     strstr(be_error_field_message(e, 0), lookalikes[i].why)),
                  "case %zu: %s / %s", i, be_error_message(e), be_error_field_message(e, 0));
    svc_expect_field(rc, &e, BE_E_VALIDATION, "email");
    be_user_input up = BE_USER_INPUT_INIT;
    up.fields = BE_USER_FIELD_EMAIL;
    up.email = lookalikes[i].email;
    svc_expect_field(be_user_update(NULL, app, 0, bob, &up, &e), &e, BE_E_VALIDATION, "email");
  }
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM be_users"), 2);

  /* real addresses in other scripts, and accents written precomposed, pass */
  static const char *const fine[] = {
    "ren\xc3\xa9@example.com", /* rene with U+00E9 */
    "\xd0\xb8\xd0\xb2\xd0\xb0\xd0\xbd@\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80.\xd1\x80\xd1\x84",
    "ivan.\xd0\xb8\xd0\xb2\xd0\xb0\xd0\xbd@example.com", /* one script per label */
    "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a",
    "\xce\xb4\xce\xbf\xce\xba\xce\xb9\xce\xbc\xce\xae@example.com", /* Greek */
    "alice+tag_1-x@example.com",
    "\xe0\xb8\x99\xe0\xb8\xb3@example.com", /* Thai with SARA AM U+0E33, as typed */
  };
  for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) svc_user(app, fine[i], "Fine");
  be_user *u = NULL;
  ck_assert_int_eq(be_user_get(&u, app, alice, NULL), BE_OK);
  ck_assert_str_eq(be_user_email(u), "alice@example.com");
  be_user_free(u);
  be_app_free(app);
}
END_TEST

/* A bio's line breaks may be CRLF, as browsers send a textarea; a
 * carriage return anywhere else is refused (it could overwrite what a
 * terminal or log shows), as user.h says. */
START_TEST(bio_takes_crlf_line_breaks) {
  be_app *app = svc_app_ex(NULL, NULL, 0);
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = "crlf@example.com";
  in.name = "Crlf";
  in.bio = "line one\r\nline two\n\tand three";
  be_user *u = NULL;
  be_error *e = NULL;
  ck_assert_msg(be_user_create(&u, NULL, app, 0, &in, &e) == BE_OK, "%s", be_error_message(e));
  ck_assert_str_eq(be_user_bio(u), in.bio);
  be_user_free(u);
  be_app_free(app);
}
END_TEST

START_TEST(deleted_ids_are_not_reused) {
  be_app *app = svc_app_ex(NULL, NULL, 0);
  svc_user(app, "first@x.io", "First");
  int64_t last = svc_user(app, "last@x.io", "Last");
  ck_assert_int_eq(be_user_delete(app, 0, last, NULL), BE_OK);
  int64_t next = svc_user(app, "next@x.io", "Next");
  ck_assert_int_gt(next, last);
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM be_audit_log WHERE target_type = 'user'"
                                " AND target_id = (SELECT max(id) FROM be_users)"),
                   1);
  int64_t r1 = 0, r2 = 0;
  ck_assert_int_eq(be_perm_role_create(&r1, app, 0, "gone", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_role_delete(app, 0, "gone", NT, NULL), BE_OK);
  ck_assert_int_eq(be_perm_role_create(&r2, app, 0, "fresh", NT, NULL), BE_OK);
  ck_assert_int_gt(r2, r1);
  be_app_free(app);
}
END_TEST

START_TEST(duplicate_email_is_conflict) {
  be_app *app = svc_app_ex(NULL, NULL, 0);
  svc_user(app, "bob@example.test", "Bob");
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = "BOB@example.test";
  in.name = "Bob 2";
  be_error *e = NULL;
  int rc = be_user_create(NULL, NULL, app, 0, &in, &e);
  ck_assert_int_eq(be_error_http_status(e), 409);
  svc_expect_field(rc, &e, BE_E_CONFLICT, "email");
  /* and through update */
  int64_t carol = svc_user(app, "carol@example.test", "Carol");
  be_user_input up = BE_USER_INPUT_INIT;
  up.fields = BE_USER_FIELD_EMAIL;
  up.email = "bob@EXAMPLE.test";
  e = NULL;
  rc = be_user_update(NULL, app, 0, carol, &up, &e);
  svc_expect_field(rc, &e, BE_E_CONFLICT, "email");
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM be_users"), 2);
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM be_audit_log"), 2);
  be_app_free(app);
}
END_TEST

typedef struct bad_case {
  const char *email;
  size_t email_len;
  const char *name;
  size_t name_len;
  const char *bio;
  const char *extra;
  size_t extra_len;
  int32_t status;
  const char *field;
} bad_case;

/* Each case: be_user_create refuses it with a 400 naming c->field. */
static void expect_create_rejects(be_app *app, const bad_case *cases, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const bad_case *c = &cases[i];
    be_user_input in = BE_USER_INPUT_INIT;
    in.email = c->email;
    in.email_len = c->email_len;
    in.name = c->name;
    in.name_len = c->name_len;
    in.bio = c->bio;
    in.extra = c->extra;
    in.extra_len = c->extra_len;
    in.status = c->status;
    be_error *e = NULL;
    int rc = be_user_create(NULL, NULL, app, 0, &in, &e);
    ck_assert_msg(rc == BE_E_VALIDATION, "case %zu: rc %d", i, rc);
    ck_assert_int_eq(be_error_http_status(e), 400);
    svc_expect_field(rc, &e, BE_E_VALIDATION, c->field);
  }
}

/* Updates and lookups validate their input too. */
static void update_and_lookups_validate(be_app *app) {
  int64_t id = svc_user(app, "dave@x.io", "Dave");
  be_user_input up = BE_USER_INPUT_INIT;
  be_error *e = NULL;
  svc_expect_field(be_user_update(NULL, app, 0, id, &up, &e), &e, BE_E_VALIDATION, "fields");
  up.fields = 0x100;
  e = NULL;
  svc_expect_field(be_user_update(NULL, app, 0, id, &up, &e), &e, BE_E_VALIDATION, "fields");
  up.fields = BE_USER_FIELD_NAME;
  up.name = NULL;
  e = NULL;
  svc_expect_field(be_user_update(NULL, app, 0, id, &up, &e), &e, BE_E_VALIDATION, "name");
  up.name = "Fine";
  e = NULL;
  svc_expect_field(be_user_update(NULL, app, 0, 0, &up, &e), &e, BE_E_VALIDATION, "id");
  ck_assert_int_eq(be_user_update(NULL, app, 0, id + 100, &up, NULL), BE_E_NOT_FOUND);
  up.fields = BE_USER_FIELD_EXTRA;
  up.extra = "[]";
  e = NULL;
  svc_expect_field(be_user_update(NULL, app, 0, id, &up, &e), &e, BE_E_VALIDATION, "extra");
  be_user *u = NULL;
  e = NULL;
  svc_expect_field(be_user_get(&u, app, -5, &e), &e, BE_E_VALIDATION, "id");
  e = NULL;
  svc_expect_field(be_user_get_by_email(&u, app, "x y@z", NT, &e), &e, BE_E_VALIDATION, "email");
  e = NULL;
  svc_expect_field(be_user_get_by_email(&u, app, NULL, NT, &e), &e, BE_E_VALIDATION, "email");
  ck_assert_int_eq(be_user_get(NULL, app, 1, NULL), BE_E_MISUSE);
}

START_TEST(validation_names_the_field_and_writes_nothing) {
  be_app *app = svc_app_ex(NULL, NULL, 0);
  static char long_email[300], long_name[400], long_bio[1100 * 2], big_extra[BE_USER_EXTRA_MAX + 10];
  memset(long_email, 'a', 250);
  strcpy(long_email + 250, "@x.io");
  for (int i = 0; i < 101; i++) strcat(long_name, "\xc3\xa9"); /* 101 x e-acute */
  memset(long_bio, 'b', 1001);
  big_extra[0] = '"';
  memset(big_extra + 1, 'x', BE_USER_EXTRA_MAX + 2);
  big_extra[BE_USER_EXTRA_MAX + 3] = '"';
  const bad_case cases[] = {
    {NULL, NT, "N", NT, NULL, NULL, NT, 0, "email"},
    {"", NT, "N", NT, NULL, NULL, NT, 0, "email"},
    {"   ", NT, "N", NT, NULL, NULL, NT, 0, "email"},
    {"no-at-sign", NT, "N", NT, NULL, NULL, NT, 0, "email"},
    {"a@b@c", NT, "N", NT, NULL, NULL, NT, 0, "email"},
    {"a b@c.d", NT, "N", NT, NULL, NULL, NT, 0, "email"},
    {"a\x01@c.d", NT, "N", NT, NULL, NULL, NT, 0, "email"},
    {"@c.d", NT, "N", NT, NULL, NULL, NT, 0, "email"},
    {"a@", NT, "N", NT, NULL, NULL, NT, 0, "email"},
    {"a@.c", NT, "N", NT, NULL, NULL, NT, 0, "email"},
    {"a@c..d", NT, "N", NT, NULL, NULL, NT, 0, "email"},
    {"a\xff@c.d", NT, "N", NT, NULL, NULL, NT, 0, "email"},
    {"a\xc3@c.d", NT, "N", NT, NULL, NULL, NT, 0, "email"},
    {long_email, NT, "N", NT, NULL, NULL, NT, 0, "email"},
    {"a@c.d\0x", 7, "N", NT, NULL, NULL, NT, 0, "email"},
    {"a@c.d", NT, NULL, NT, NULL, NULL, NT, 0, "name"},
    {"a@c.d", NT, "", NT, NULL, NULL, NT, 0, "name"},
    {"a@c.d", NT, " \t ", NT, NULL, NULL, NT, 0, "name"},
    {"a@c.d", NT, long_name, NT, NULL, NULL, NT, 0, "name"},
    {"a@c.d", NT, "Bad\nName", NT, NULL, NULL, NT, 0, "name"},
    {"a@c.d", NT, "Bad\xc2\x85Name", NT, NULL, NULL, NT, 0, "name"},
    {"a@c.d", NT, "N\0x", 3, NULL, NULL, NT, 0, "name"},
    {"a@c.d", NT, "\xed\xa0\x80", NT, NULL, NULL, NT, 0, "name"}, /* surrogate */
    {"a@c.d", NT, "N", NT, long_bio, NULL, NT, 0, "bio"},
    {"a@c.d", NT, "N", NT, "bell\a", NULL, NT, 0, "bio"},
    {"a@c.d", NT, "N", NT, "over\rwrite", NULL, NT, 0, "bio"}, /* a bare CR */
    {"a@c.d", NT, "N", NT, "ends\r", NULL, NT, 0, "bio"},
    {"a@c.d", NT, "N", NT, NULL, "{not json", NT, 0, "extra"},
    {"a@c.d", NT, "N", NT, NULL, "[1,2]", NT, 0, "extra"},
    {"a@c.d", NT, "N", NT, NULL, "42", NT, 0, "extra"},
    {"a@c.d", NT, "N", NT, NULL, "", NT, 0, "extra"},
    {"a@c.d", NT, "N", NT, NULL, "{}\0{}", 5, 0, "extra"},
    {"a@c.d", NT, "N", NT, NULL, big_extra, NT, 0, "extra"},
    {"a@c.d", NT, "N", NT, NULL, "{\"a\":1,}", NT, 0, "extra"},
    {"a@c.d", NT, "N", NT, NULL, NULL, NT, 7, "status"},
  };
  expect_create_rejects(app, cases, sizeof cases / sizeof cases[0]);
  /* several bad fields at once: all reported */
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = "nope";
  in.name = "";
  in.status = 3;
  be_error *e = NULL;
  ck_assert_int_eq(be_user_create(NULL, NULL, app, 0, &in, &e), BE_E_VALIDATION);
  ck_assert_int_eq(be_error_field_count(e), 3);
  be_error_free(e);
  /* bad actor, misuse */
  in.email = "ok@x.io";
  in.name = "Ok";
  in.status = 0;
  e = NULL;
  svc_expect_field(be_user_create(NULL, NULL, app, -1, &in, &e), &e, BE_E_VALIDATION, "actor_id");
  ck_assert_int_eq(be_user_create(NULL, NULL, NULL, 0, &in, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_user_create(NULL, NULL, app, 0, NULL, NULL), BE_E_MISUSE);
  in.version = 99;
  ck_assert_int_eq(be_user_create(NULL, NULL, app, 0, &in, NULL), BE_E_MISUSE);
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM be_users"), 0);
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM be_audit_log"), 0);

  update_and_lookups_validate(app);
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM be_audit_log"), 1);
  ck_assert_int_eq(svc_int(app, "SELECT updated_at = created_at FROM be_users"), 1);
  be_app_free(app);
}
END_TEST

/* The answer of op (create or update of user id) with extra: taken
 * (stored and read back byte for byte) when why is NULL, else refused
 * with one field error, on "extra", whose message holds why. Frees u, e. */
static void expect_extra_answer(be_app *app, int64_t id, int rc, be_error *e, be_user *u,
                                const char *op, const char *extra, const char *why) {
  if (why == NULL) {
    ck_assert_msg(rc == BE_OK, "%s of %.40s: %s", op, extra, be_error_message(e));
    ck_assert_str_eq(be_user_extra(u), extra);
    be_user_free(u);
    ck_assert_int_eq(be_user_get_fresh(&u, app, id, NULL), BE_OK);
    ck_assert_str_eq(be_user_extra(u), extra);
    be_user_free(u);
    return;
  }
  ck_assert_msg(rc == BE_E_VALIDATION, "%s of %.40s: rc %d, want a refusal", op, extra, rc);
  ck_assert_uint_eq(be_error_field_count(e), 1);
  ck_assert_str_eq(be_error_field_name(e, 0), "extra");
  ck_assert_msg(strstr(be_error_field_message(e, 0), why) != NULL, "message \"%s\", want \"%s\"",
                be_error_field_message(e, 0), why);
  be_error_free(e);
}

/* A create with extra, then an update of a user's extra to it: both
 * answer as expect_extra_answer() says. */
static void expect_extra(be_app *app, const char *extra, size_t len, const char *why) {
  static int n;
  char email[64];
  snprintf(email, sizeof email, "extra%d@x.io", ++n);
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = email;
  in.name = "X";
  in.extra = extra;
  in.extra_len = len;
  be_error *e = NULL;
  be_user *u = NULL;
  int rc = be_user_create(&u, NULL, app, 0, &in, &e);
  int64_t id = rc == BE_OK ? be_user_id(u) : 0;
  expect_extra_answer(app, id, rc, e, u, "create", extra, why);
  if (why) id = svc_user(app, email, "X");
  be_user_input up = BE_USER_INPUT_INIT;
  up.fields = BE_USER_FIELD_EXTRA;
  up.extra = extra;
  up.extra_len = len;
  e = NULL;
  u = NULL;
  rc = be_user_update(&u, app, 0, id, &up, &e);
  expect_extra_answer(app, id, rc, e, u, "update", extra, why);
}

/* extra takes every character a JSON string may hold: RFC 8259 asks only
 * U+0000..U+001F to be escaped (DEL and U+0080..U+009F were refused as
 * control characters by the text rules). */
START_TEST(extra_takes_what_json_allows_in_a_string) {
  be_app *app = svc_app_ex(NULL, NULL, 0);
  expect_extra(app, "{\"a\":\"x\x7fy\"}", NT, NULL);           /* DEL */
  expect_extra(app, "{\"a\":\"x\xc2\x85y\"}", NT, NULL);       /* U+0085 */
  expect_extra(app, "{\"a\":\"\xc2\x80\xc2\x9f\"}", NT, NULL); /* U+0080, U+009F */
  expect_extra(app, "{\"\x7f\":1}", NT, NULL);                 /* in a key */
  /* what the text rules still say of it */
  expect_extra(app, "{\"a\":\"\xff\"}", NT, "UTF-8");
  expect_extra(app, "{\"a\":\"\xed\xa0\x80\"}", NT, "UTF-8"); /* an encoded surrogate */
  expect_extra(app, "{}\0{}", 5, "NUL");
  be_app_free(app);
}
END_TEST

/* {"a": then depth - 1 arrays (or objects {"a": when objects) around 1:
 * depth levels of nesting, the outermost object counting 1. */
static const char *nested(char *buf, size_t size, int depth, int objects) {
  size_t n = 0;
  ck_assert_uint_lt((size_t)depth * (objects ? 6 : 2) + 8, size);
  for (int i = 0; i < depth; i++) {
    if (i == 0 || objects) {
      memcpy(buf + n, "{\"a\":", 5);
      n += 5;
    } else {
      buf[n++] = '[';
    }
  }
  buf[n++] = '1';
  for (int i = depth - 1; i >= 0; i--) buf[n++] = i == 0 || objects ? '}' : ']';
  buf[n] = '\0';
  return buf;
}

/* SQLite and PostgreSQL judged some JSON differently: \u0000 and a lone
 * surrogate escape passed SQLite's json_valid and failed jsonb; nesting
 * past SQLite's depth limit failed SQLite and passed jsonb. One rule,
 * checked before either database sees the text, now answers alike. */
START_TEST(extra_is_judged_alike_on_every_database) {
  be_app *app = svc_app_ex(NULL, NULL, 0);
  static char deep[BE_USER_EXTRA_MAX + 16];
  static const char *const lone[] = {
    "{\"a\":\"\\ud800\"}",
    "{\"a\":\"\\uDBFF\"}",
    "{\"a\":\"\\udc00\"}",
    "{\"a\":\"\\ud800x\"}",
    "{\"a\":\"\\ud800\\u0041\"}",
    "{\"a\":\"\\udc00\\ud800\"}",
    "{\"a\":\"\\ud800\\n\"}",
    "{\"\\ud800\":1}",
    "{\"a\":\"\\\\\\ud800\"}",
  };
  for (size_t i = 0; i < sizeof lone / sizeof lone[0]; i++) expect_extra(app, lone[i], NT, "surrogate");
  expect_extra(app, "{\"a\":\"\\u0000\"}", NT, "\\u0000");
  expect_extra(app, "{\"\\u0000\":1}", NT, "\\u0000");
  expect_extra(app, nested(deep, sizeof deep, BE_USER_EXTRA_DEPTH_MAX + 1, 0), NT, "deeper");
  expect_extra(app, nested(deep, sizeof deep, BE_USER_EXTRA_DEPTH_MAX + 1, 1), NT, "deeper");
  expect_extra(app, nested(deep, sizeof deep, 8000, 0), NT, "deeper"); /* 16,005 bytes */
  /* what both take */
  expect_extra(app, "{\"a\":\"\\ud83d\\ude00\"}", NT, NULL); /* a pair: U+1F600 */
  expect_extra(app, "{\"a\":\"\\uD83D\\uDE00\\u0001\\uFFFF\"}", NT, NULL);
  expect_extra(app, "{\"a\":\"\\\\u0000 \\\\ud800 \\\"[{\"}", NT, NULL); /* no escapes */
  expect_extra(app, nested(deep, sizeof deep, BE_USER_EXTRA_DEPTH_MAX, 0), NT, NULL);
  expect_extra(app, nested(deep, sizeof deep, BE_USER_EXTRA_DEPTH_MAX, 1), NT, NULL);
  /* brackets inside strings do not nest */
  memset(deep, '[', sizeof deep);
  memcpy(deep, "{\"a\":\"", 6);
  memcpy(deep + 3000, "\"}", 3);
  expect_extra(app, deep, NT, NULL);
  be_app_free(app);
}
END_TEST

/* Lengths are exact: 0 is the empty string even with a pointer that must
 * never be read (a binding's empty string), and BE_USER_INPUT_INIT's
 * BE_NUL_TERMINATED keeps NUL-terminated callers working. */
START_TEST(lengths_are_exact_and_zero_is_empty) {
  be_app *app = svc_app_ex(NULL, NULL, 0);
  const char *dangling = (const char *)1;
  be_user_input in = BE_USER_INPUT_INIT;
  ck_assert_uint_eq(in.email_len, BE_NUL_TERMINATED);
  ck_assert_uint_eq(in.extra_len, BE_NUL_TERMINATED);
  be_user_input viafn;
  ck_assert_int_eq(be_user_input_init(&viafn, BE_USER_INPUT_VERSION), BE_OK);
  ck_assert_uint_eq(viafn.name_len, BE_NUL_TERMINATED);
  in.email = dangling;
  in.email_len = 0;
  in.name = dangling;
  in.name_len = 0;
  be_error *e = NULL;
  ck_assert_int_eq(be_user_create(NULL, NULL, app, 0, &in, &e), BE_E_VALIDATION);
  ck_assert_int_eq(be_error_field_count(e), 2); /* email and name: both empty */
  ck_assert_str_eq(be_error_field_name(e, 0), "email");
  ck_assert_str_eq(be_error_field_name(e, 1), "name");
  be_error_free(e);
  /* exact lengths cut longer text; an empty bio and extra "{}" given by length */
  in.email = "ada@example.comXYZ";
  in.email_len = 15;
  in.name = "AdaXYZ";
  in.name_len = 3;
  in.bio = dangling;
  in.bio_len = 0;
  in.extra = "{}garbage";
  in.extra_len = 2;
  be_user *u = NULL;
  ck_assert_int_eq(be_user_create(&u, NULL, app, 0, &in, NULL), BE_OK);
  ck_assert_str_eq(be_user_email(u), "ada@example.com");
  ck_assert_str_eq(be_user_name(u), "Ada");
  ck_assert_str_eq(be_user_bio(u), "");
  ck_assert_str_eq(be_user_extra(u), "{}");
  be_user_free(u);
  /* get by email: length 0, an embedded NUL, invalid UTF-8 are field errors */
  svc_expect_field(be_user_get_by_email(&u, app, dangling, 0, &e), &e, BE_E_VALIDATION, "email");
  svc_expect_field(be_user_get_by_email(&u, app, "ada@example.com\0x", 17, &e), &e,
                   BE_E_VALIDATION, "email");
  svc_expect_field(be_user_get_by_email(&u, app, "ad\xff@example.com", NT, &e), &e,
                   BE_E_VALIDATION, "email");
  svc_expect_field(be_user_get_by_email(&u, app, NULL, NT, &e), &e, BE_E_VALIDATION, "email");
  ck_assert_int_eq(be_user_get_by_email(&u, app, "ADA@example.comXYZ", 15, NULL), BE_OK);
  ck_assert_str_eq(be_user_name(u), "Ada");
  be_user_free(u);
  be_app_free(app);
}
END_TEST

/* Times are milliseconds since the Unix epoch, in getters and JSON. */
START_TEST(times_are_milliseconds) {
  be_testkit *kit = NULL;
  be_testkit_options o = BE_TESTKIT_OPTIONS_INIT;
  o.users = 1;
  o.no_passwords = 1;
  ck_assert_int_eq(be_testkit_new(&kit, &o, NULL), BE_OK);
  be_user *u = NULL;
  ck_assert_int_eq(be_user_get(&u, be_testkit_app(kit), be_testkit_user_id(kit, 0), NULL), BE_OK);
  ck_assert_int_eq(be_user_created_at_ms(u), BE_TESTKIT_START_WALL_MS);
  ck_assert_int_eq(be_user_updated_at_ms(u), BE_TESTKIT_START_WALL_MS);
  char *json = NULL;
  ck_assert_int_eq(be_user_to_json(&json, NULL, u, NULL), BE_OK);
  ck_assert_ptr_nonnull(strstr(json, "\"created_at\":1767225600000,"));
  be_free(json);
  be_user_free(u);
  be_audit_page *p = NULL;
  be_audit_query_options q;
  ck_assert_int_eq(be_audit_query_options_init(&q, BE_AUDIT_QUERY_OPTIONS_VERSION), BE_OK);
  ck_assert_uint_eq(q.cursor_len, BE_NUL_TERMINATED);
  q.from_ms = BE_TESTKIT_START_WALL_MS;
  q.to_ms = BE_TESTKIT_START_WALL_MS + 1;
  ck_assert_int_eq(be_audit_query(&p, be_testkit_app(kit), &q, NULL), BE_OK);
  ck_assert_uint_gt(be_audit_page_count(p), 0);
  ck_assert_int_eq(be_audit_page_at_ms(p, 0), BE_TESTKIT_START_WALL_MS);
  be_audit_page_free(p);
  q.from_ms = BE_TESTKIT_START_WALL_MS + 1;
  q.to_ms = 0;
  ck_assert_int_eq(be_audit_query(&p, be_testkit_app(kit), &q, NULL), BE_OK);
  ck_assert_uint_eq(be_audit_page_count(p), 0);
  be_audit_page_free(p);
  be_testkit_free(kit);
}
END_TEST

START_TEST(cache_hit_then_invalidated_after_update) {
  be_app *app = svc_app_ex(NULL, NULL, 0);
  int64_t id = svc_user(app, "erin@x.io", "Erin");
  be_cache_stats s0 = cstats(app);
  be_user *u = NULL;
  ck_assert_int_eq(be_user_get(&u, app, id, NULL), BE_OK);
  be_user_free(u);
  be_cache_stats s1 = cstats(app);
  ck_assert_uint_eq(s1.loads - s0.loads, 1);
  ck_assert_uint_eq(s1.hits - s0.hits, 0);
  ck_assert_int_eq(be_user_get(&u, app, id, NULL), BE_OK);
  ck_assert_str_eq(be_user_name(u), "Erin");
  be_user_free(u);
  be_cache_stats s2 = cstats(app);
  ck_assert_uint_eq(s2.hits - s1.hits, 1);
  ck_assert_uint_eq(s2.loads, s1.loads);
  /* the key is user:{id} */
  char key[32];
  snprintf(key, sizeof key, "user:%lld", (long long)id);
  be_cache_entry *ent = NULL;
  ck_assert_int_eq(be_cache_get(&ent, be_app_cache(app), key, strlen(key), NULL), BE_OK);
  be_cache_entry_release(ent);

  be_user_input up = BE_USER_INPUT_INIT;
  up.fields = BE_USER_FIELD_NAME;
  up.name = "Erin Two";
  ck_assert_int_eq(be_user_update(NULL, app, 0, id, &up, NULL), BE_OK);
  ck_assert_int_eq(be_cache_get(&ent, be_app_cache(app), key, strlen(key), NULL), BE_E_NOT_FOUND);
  be_cache_stats s3 = cstats(app);
  ck_assert_int_eq(be_user_get(&u, app, id, NULL), BE_OK);
  ck_assert_str_eq(be_user_name(u), "Erin Two");
  be_user_free(u);
  be_cache_stats s4 = cstats(app);
  ck_assert_uint_eq(s4.loads - s3.loads, 1);
  be_app_free(app);
}
END_TEST

static void expect_equal_users(const be_user *a, const be_user *b) {
  ck_assert_int_eq(be_user_id(a), be_user_id(b));
  ck_assert_str_eq(be_user_email(a), be_user_email(b));
  ck_assert_str_eq(be_user_name(a), be_user_name(b));
  ck_assert_str_eq(be_user_bio(a), be_user_bio(b));
  ck_assert_str_eq(be_user_extra(a), be_user_extra(b));
  ck_assert_int_eq(be_user_status(a), be_user_status(b));
  ck_assert_int_eq(be_user_created_at_ms(a), be_user_created_at_ms(b));
  ck_assert_int_eq(be_user_updated_at_ms(a), be_user_updated_at_ms(b));
}

/* A miss hands out the user made from the row it read (not decoded back
 * from the cache record): it equals the hit that follows, and the record
 * is cached under "user:<id>" in decimal, whatever the id's digits. */
START_TEST(miss_returns_what_the_hit_reads_under_the_decimal_key) {
  be_app *app = svc_app_ex(NULL, NULL, 0);
  static const int64_t ids[] = {1, 9, 10, 99, 100, 101, 12345, 1000000007, INT64_MAX};
  enum { N = sizeof ids / sizeof ids[0] };
  int64_t made[N];
  for (size_t i = 0; i < N; i++) { /* all made first: a sequence (PostgreSQL) may hand out 9 */
    char email[32];
    snprintf(email, sizeof email, "k%zu@x.io", i);
    made[i] = svc_user(app, email, "Key");
  }
  svc_exec(app, "UPDATE be_users SET id = -id"); /* out of the way of every target id */
  for (size_t i = 0; i < N; i++) {
    char sql[128];
    snprintf(sql, sizeof sql, "UPDATE be_users SET id = %lld, bio = 'bio %zu' WHERE id = %lld",
             (long long)ids[i], i, -(long long)made[i]);
    svc_exec(app, sql);
  }
  for (size_t i = 0; i < N; i++) {
    be_cache_stats s0 = cstats(app);
    be_user *miss = NULL, *hit = NULL;
    ck_assert_int_eq(be_user_get(&miss, app, ids[i], NULL), BE_OK);
    ck_assert_uint_eq(cstats(app).loads - s0.loads, 1);
    ck_assert_int_eq(be_user_id(miss), ids[i]);
    char key[32], bio[32];
    snprintf(key, sizeof key, "user:%lld", (long long)ids[i]);
    snprintf(bio, sizeof bio, "bio %zu", i);
    ck_assert_str_eq(be_user_bio(miss), bio);
    be_cache_entry *ent = NULL;
    ck_assert_int_eq(be_cache_get(&ent, be_app_cache(app), key, strlen(key), NULL), BE_OK);
    be_cache_entry_release(ent);
    ck_assert_int_eq(be_user_get(&hit, app, ids[i], NULL), BE_OK);
    ck_assert_uint_eq(cstats(app).hits - s0.hits, 2); /* the be_cache_get and this get */
    expect_equal_users(miss, hit);
    be_user_free(miss);
    be_user_free(hit);
  }
  be_app_free(app);
}
END_TEST

/* A profile record longer than the stack buffer the cache record is
 * built in: loaded by a get, and filled by get_many, it reads back whole. */
START_TEST(large_profile_round_trips_through_the_cache) {
  be_app *app = svc_app_ex(NULL, NULL, 0);
  static char bio[BE_USER_BIO_MAX + 1], extra[4000];
  memset(bio, 'b', BE_USER_BIO_MAX);
  snprintf(extra, sizeof extra, "{\"k\":\"%03000d\"}", 7);
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = "long@x.io";
  in.name = "Long";
  in.bio = bio;
  in.extra = extra;
  int64_t id = 0;
  be_error *e = NULL;
  ck_assert_msg(be_user_create(NULL, &id, app, 0, &in, &e) == BE_OK, "%s", be_error_message(e));
  for (int pass = 0; pass < 2; pass++) { /* a load, then a hit */
    be_user *u = NULL;
    ck_assert_int_eq(be_user_get(&u, app, id, NULL), BE_OK);
    ck_assert_str_eq(be_user_bio(u), bio);
    ck_assert_str_eq(be_user_extra(u), extra);
    ck_assert_str_eq(be_user_email(u), "long@x.io");
    be_user_free(u);
  }
  char key[32];
  snprintf(key, sizeof key, "user:%lld", (long long)id);
  ck_assert_int_eq(be_cache_delete(be_app_cache(app), key, strlen(key), NULL), BE_OK);
  be_user_list *l = NULL;
  ck_assert_int_eq(be_user_get_many(&l, app, &id, 1, NULL), BE_OK); /* fills the cache */
  be_user_list_free(l);
  be_cache_stats s0 = cstats(app);
  be_user *u = NULL;
  ck_assert_int_eq(be_user_get(&u, app, id, NULL), BE_OK);
  ck_assert_uint_eq(cstats(app).hits - s0.hits, 1);
  ck_assert_str_eq(be_user_extra(u), extra);
  ck_assert_str_eq(be_user_bio(u), bio);
  be_user_free(u);
  be_app_free(app);
}
END_TEST

typedef struct reader {
  be_app *app;
  int64_t id;
  const char *want;
  pthread_barrier_t *bar;
  int ok;
} reader;

static void *read_user(void *arg) {
  reader *r = arg;
  pthread_barrier_wait(r->bar);
  r->ok = 1;
  for (int i = 0; i < 200; i++) {
    be_user *u = NULL;
    if (be_user_get(&u, r->app, r->id, NULL) != BE_OK || strcmp(be_user_name(u), r->want) != 0)
      r->ok = 0;
    be_user_free(u);
  }
  return NULL;
}

static void run_readers(be_app *app, int64_t id, const char *want) {
  enum { N = 6 };
  pthread_t t[N];
  reader r[N];
  pthread_barrier_t bar;
  pthread_barrier_init(&bar, NULL, N);
  for (int i = 0; i < N; i++) {
    r[i] = (reader){app, id, want, &bar, 0};
    pthread_create(&t[i], NULL, read_user, &r[i]);
  }
  for (int i = 0; i < N; i++) {
    pthread_join(t[i], NULL);
    ck_assert_msg(r[i].ok, "reader %d saw a wrong or missing user", i);
  }
  pthread_barrier_destroy(&bar);
}

START_TEST(cache_from_many_threads) {
  be_app *app = svc_app_ex(NULL, NULL, 4);
  int64_t id = svc_user(app, "fay@x.io", "Fay");
  be_cache_stats s0 = cstats(app);
  run_readers(app, id, "Fay");
  be_cache_stats s1 = cstats(app);
  ck_assert_uint_eq(s1.loads - s0.loads, 1); /* single flight: one load for 1200 reads */
  ck_assert_uint_ge(s1.hits - s0.hits, 1200 - 6);
  be_user_input up = BE_USER_INPUT_INIT;
  up.fields = BE_USER_FIELD_NAME;
  up.name = "Fay 2";
  ck_assert_int_eq(be_user_update(NULL, app, 0, id, &up, NULL), BE_OK);
  run_readers(app, id, "Fay 2"); /* nobody sees the old name */
  be_cache_stats s2 = cstats(app);
  ck_assert_uint_eq(s2.loads - s1.loads, 1);
  be_app_free(app);
}
END_TEST

/* Writers and readers at once: after the last write, every thread reads
 * the last value (no stale entry survives). */
typedef struct writer {
  be_app *app;
  int64_t id;
  int n;
} writer;

static void *write_names(void *arg) {
  writer *w = arg;
  for (int i = 0; i < w->n; i++) {
    char name[32];
    snprintf(name, sizeof name, "W%d", i);
    be_user_input up = BE_USER_INPUT_INIT;
    up.fields = BE_USER_FIELD_NAME;
    up.name = name;
    ck_assert_int_eq(be_user_update(NULL, w->app, 0, w->id, &up, NULL), BE_OK);
  }
  return NULL;
}

static void *read_many(void *arg) {
  writer *w = arg;
  for (int i = 0; i < w->n * 5; i++) {
    be_user *u = NULL;
    int64_t ids[2] = {w->id, w->id};
    be_user_list *l = NULL;
    ck_assert_int_eq(be_user_get(&u, w->app, w->id, NULL), BE_OK);
    be_user_free(u);
    ck_assert_int_eq(be_user_get_many(&l, w->app, ids, 2, NULL), BE_OK);
    be_user_list_free(l);
  }
  return NULL;
}

START_TEST(no_stale_entry_after_concurrent_writes) {
  be_app *app = svc_app_ex(NULL, NULL, 6);
  int64_t id = svc_user(app, "gus@x.io", "Gus");
  writer w = {app, id, 60};
  pthread_t tw, tr[3];
  pthread_create(&tw, NULL, write_names, &w);
  for (int i = 0; i < 3; i++) pthread_create(&tr[i], NULL, read_many, &w);
  pthread_join(tw, NULL);
  for (int i = 0; i < 3; i++) pthread_join(tr[i], NULL);
  be_user *u = NULL;
  ck_assert_int_eq(be_user_get(&u, app, id, NULL), BE_OK);
  ck_assert_str_eq(be_user_name(u), "W59");
  be_user_free(u);
  be_user_list *l = NULL;
  ck_assert_int_eq(be_user_get_many(&l, app, &id, 1, NULL), BE_OK);
  ck_assert_str_eq(be_user_name(be_user_list_get(l, 0)), "W59");
  be_user_list_free(l);
  be_app_free(app);
}
END_TEST

/* A driver that holds a thread's read after its first row: SQLite's,
 * with a step that waits there for the test when the thread has a hold. */
static int (*sqlite_step)(void *stmt, be_error **err);

typedef struct hold {
  sem_t row_read, go_on;
} hold;

static _Thread_local hold *my_hold;

static int held_step(void *stmt, be_error **err) {
  int rc = sqlite_step(stmt, err);
  hold *h = my_hold;
  if (h != NULL && rc == BE_ROW) {
    my_hold = NULL;
    sem_post(&h->row_read);
    sem_wait(&h->go_on);
  }
  return rc;
}

/* A read on its own thread, held after its row: kind 0 be_user_get, 1
 * be_user_get_fresh, 2 be_user_get_many; name is the name it returned. */
typedef struct held_read {
  be_app *app;
  int64_t id;
  int kind;
  hold h;
  char name[32];
  pthread_t t;
} held_read;

static const char *const read_kinds[] = {"be_user_get", "be_user_get_fresh", "be_user_get_many"};

static void *read_held(void *arg) {
  held_read *r = arg;
  my_hold = &r->h;
  be_user *u = NULL;
  be_user_list *l = NULL;
  int rc = r->kind == 0   ? be_user_get(&u, r->app, r->id, NULL)
           : r->kind == 1 ? be_user_get_fresh(&u, r->app, r->id, NULL)
                          : be_user_get_many(&l, r->app, &r->id, 1, NULL);
  ck_assert_int_eq(rc, BE_OK);
  snprintf(r->name, sizeof r->name, "%s", be_user_name(u ? u : be_user_list_get(l, 0)));
  be_user_free(u);
  be_user_list_free(l);
  return NULL;
}

/* Start r on its thread and wait until it has read its row. */
static void start_held(held_read *r) {
  sem_init(&r->h.row_read, 0, 0);
  sem_init(&r->h.go_on, 0, 0);
  pthread_create(&r->t, NULL, read_held, r);
  sem_wait(&r->h.row_read);
}

/* Let r finish. */
static void finish_held(held_read *r) {
  sem_post(&r->h.go_on);
  pthread_join(r->t, NULL);
  sem_destroy(&r->h.row_read);
  sem_destroy(&r->h.go_on);
}

/* An app on the file database dir/file (its path in path), with
 * driver d (NULL: SQLite's) and cache_max_bytes (0: the default). */
static be_app *file_app(const char *dir, const char *file, const be_driver *d,
                        int64_t cache_max_bytes, char path[600]) {
  snprintf(path, 600, "%s/%s", dir, file);
  be_app_options o;
  svc_fast_options(&o, path);
  o.driver = d;
  o.pool_max = 4;
  if (cache_max_bytes) o.cache_max_bytes = cache_max_bytes;
  be_app *app = NULL;
  ck_assert_int_eq(be_app_new(&app, &o, NULL), BE_OK);
  return app;
}

/* An app on a file database of dir whose driver holds reads. */
static be_app *held_app(const char *dir, int n, be_driver *d, char path[600]) {
  *d = *be_sqlite_driver();
  sqlite_step = d->step;
  d->step = held_step;
  char file[32];
  snprintf(file, sizeof file, "held%d.db", n);
  return file_app(dir, file, d, 0, path);
}

/* The host renames user id with its own SQL (no library write). */
static void host_renames(const char *path, int64_t id, const char *name) {
  sqlite3 *raw = tu_raw_open(path);
  char sql[160];
  snprintf(sql, sizeof sql, "UPDATE be_users SET name = '%s' WHERE id = %lld", name, (long long)id);
  tu_raw_exec(raw, sql);
  sqlite3_close(raw);
}

static void assert_cached_name(be_app *app, int64_t id, const char *want, const char *what) {
  be_user *u = NULL;
  ck_assert_int_eq(be_user_get(&u, app, id, NULL), BE_OK);
  ck_assert_msg(strcmp(be_user_name(u), want) == 0, "%s: cached \"%s\"", what, be_user_name(u));
  be_user_free(u);
}

/* A fresh or batch read that read the row before the host changed it
 * (its own SQL) and then refreshed it with be_user_get_fresh must not
 * put the old row back when it finishes: it once stored whatever it read
 * unless a library write had moved a generation, and the host's change
 * moves none, so be_user_get served the old name until the TTL. */
START_TEST(older_refresh_never_replaces_a_newer_one) {
  char *dir = tu_tempdir(), path[600];
  be_driver d;
  for (int kind = 1; kind <= 2; kind++) {
    be_app *app = held_app(dir, kind, &d, path);
    held_read r = {.app = app, .id = svc_user(app, "held@a.io", "old"), .kind = kind};
    start_held(&r); /* it has read "old" */
    host_renames(path, r.id, "new");
    be_user *u = NULL;
    ck_assert_int_eq(be_user_get_fresh(&u, app, r.id, NULL), BE_OK);
    ck_assert_str_eq(be_user_name(u), "new");
    be_user_free(u);
    finish_held(&r);
    assert_cached_name(app, r.id, "new", read_kinds[kind]);
    be_app_free(app);
  }
  tu_rmdir(dir);
}
END_TEST

/* The same with the newer be_user_get_fresh still reading when the older
 * read ends: the older one's store marked every read of the key in flight
 * stale, the newer included, which then stored nothing, and the old row
 * stayed cached. Reads are now ordered by when they began. */
START_TEST(newer_refresh_outlives_an_older_read) {
  char *dir = tu_tempdir(), path[600];
  be_driver d;
  for (int kind = 0; kind <= 2; kind++) {
    be_app *app = held_app(dir, kind, &d, path);
    int64_t id = svc_user(app, "held@a.io", "old");
    held_read older = {.app = app, .id = id, .kind = kind}, newer = {.app = app, .id = id, .kind = 1};
    start_held(&older); /* it has read "old" */
    host_renames(path, id, "new");
    start_held(&newer); /* it has read "new" */
    finish_held(&older);
    finish_held(&newer);
    ck_assert_str_eq(older.name, "old");
    ck_assert_str_eq(newer.name, "new");
    assert_cached_name(app, id, "new", read_kinds[kind]);
    be_app_free(app);
  }
  tu_rmdir(dir);
}
END_TEST

/* A be_user_get_fresh whose row cannot be cached (too large for
 * cache_max_bytes) left the older cached copy in place: be_user_get then
 * served what be_user_get_fresh had just replaced. */
START_TEST(fresh_read_too_large_to_cache_drops_the_old_copy) {
  char *dir = tu_tempdir(), path[600];
  be_app *app = file_app(dir, "big.db", NULL, 4096, path);
  int64_t id = svc_user(app, "big@a.io", "old");
  assert_cached_name(app, id, "old", "first read");
  sqlite3 *raw = tu_raw_open(path);
  char sql[200];
  snprintf(sql, sizeof sql,
           "UPDATE be_users SET name = 'new', bio = printf('%%.5000c', 'x') WHERE id = %lld",
           (long long)id);
  tu_raw_exec(raw, sql);
  sqlite3_close(raw);
  for (int many = 0; many < 2; many++) {
    be_user *u = NULL;
    be_user_list *l = NULL;
    if (many) ck_assert_int_eq(be_user_get_many(&l, app, &id, 1, NULL), BE_OK);
    else ck_assert_int_eq(be_user_get_fresh(&u, app, id, NULL), BE_OK);
    be_user_free(u);
    be_user_list_free(l);
    assert_cached_name(app, id, "new", many ? "be_user_get_many" : "be_user_get_fresh");
  }
  be_app_free(app);
  tu_rmdir(dir);
}
END_TEST

/* A be_user_get_fresh that returns BE_OK while an allocation of its
 * cache fill fails (the fill itself, or the entry it would store) left
 * the older cached copy: be_user_get then served what the read had just
 * replaced. Each allocation of the read fails in turn. (be_user_get_many
 * serves cached users from the cache: it reads only misses.) */
START_TEST(fresh_read_short_of_memory_never_leaves_the_old_copy) {
  tu_alloc_install(0);
  be_app *app = svc_app_ex(NULL, NULL, 2);
  int64_t id = svc_user(app, "oom@x.io", "old");
  int succeeded = 0;
  for (long n = 1; n < 60; n++) {
    svc_exec(app, "UPDATE be_users SET name = 'old'");
    ck_assert_int_eq(be_cache_clear(be_app_cache(app), NULL), BE_OK);
    assert_cached_name(app, id, "old", "warm");
    svc_exec(app, "UPDATE be_users SET name = 'new'"); /* the host's own SQL */
    be_user *u = NULL;
    atomic_store(&tu_alloc_fail_at, atomic_load(&tu_alloc_count) + n);
    int rc = be_user_get_fresh(&u, app, id, NULL);
    atomic_store(&tu_alloc_fail_at, 0);
    be_user_free(u);
    if (rc != BE_OK) continue;
    succeeded++;
    char what[48];
    snprintf(what, sizeof what, "allocation %ld failed", n);
    assert_cached_name(app, id, "new", what);
  }
  ck_assert_int_gt(succeeded, 0);
  be_app_free(app);
  tu_alloc_restore();
}
END_TEST

/* A value under "user:<id>" that is not a user record (the host wrote it
 * into the app's cache) is dropped and the row read: it was reported as
 * out of memory on every read until its TTL. */
START_TEST(foreign_value_under_a_user_key_is_replaced) {
  be_app *app = svc_app_ex(NULL, NULL, 4);
  int64_t id = svc_user(app, "kai@x.io", "Kai");
  char key[32];
  int klen = snprintf(key, sizeof key, "user:%lld", (long long)id);
  for (int many = 0; many < 2; many++) {
    ck_assert_int_eq(be_cache_set(be_app_cache(app), key, (size_t)klen, "garbage", 7, 0, NULL), BE_OK);
    be_user *u = NULL;
    be_user_list *l = NULL;
    if (many) {
      ck_assert_int_eq(be_user_get_many(&l, app, &id, 1, NULL), BE_OK);
      ck_assert_str_eq(be_user_name(be_user_list_get(l, 0)), "Kai");
    } else {
      ck_assert_int_eq(be_user_get(&u, app, id, NULL), BE_OK);
      ck_assert_str_eq(be_user_name(u), "Kai");
    }
    be_user_free(u);
    be_user_list_free(l);
    ck_assert_int_eq(be_user_get(&u, app, id, NULL), BE_OK); /* the record is back */
    ck_assert_str_eq(be_user_name(u), "Kai");
    be_user_free(u);
  }
  be_app_free(app);
}
END_TEST

/* A value under "user:<id>" whose length fields fit but that is not that
 * user's record -- zeros, another user's record, a record with bytes
 * after it -- is a miss: the row is read, never served as the user (64
 * zero bytes were returned as a user with id 0 and an empty email). */
static void put_record(be_app *app, int64_t id, const void *v, size_t len) {
  char key[32];
  int klen = snprintf(key, sizeof key, "user:%lld", (long long)id);
  ck_assert_int_eq(be_cache_set(be_app_cache(app), key, (size_t)klen, v, len, 0, NULL), BE_OK);
}

static size_t cached_record(be_app *app, int64_t id, unsigned char *buf, size_t cap) {
  be_user *u = NULL;
  ck_assert_int_eq(be_user_get(&u, app, id, NULL), BE_OK); /* caches it */
  be_user_free(u);
  char key[32];
  int klen = snprintf(key, sizeof key, "user:%lld", (long long)id);
  be_cache_entry *ent = NULL;
  ck_assert_int_eq(be_cache_get(&ent, be_app_cache(app), key, (size_t)klen, NULL), BE_OK);
  size_t len = 0;
  const void *v = be_cache_entry_value(ent, &len);
  ck_assert_uint_lt(len, cap);
  memcpy(buf, v, len);
  be_cache_entry_release(ent);
  return len;
}

START_TEST(cached_value_of_another_id_is_not_served) {
  be_app *app = svc_app_ex(NULL, NULL, 4);
  int64_t id = svc_user(app, "lea@x.io", "Lea");
  int64_t other = svc_user(app, "max@x.io", "Max");
  unsigned char zeros[64] = {0}, rec[256], longer[257];
  size_t olen = cached_record(app, other, rec, sizeof rec);
  size_t ilen = cached_record(app, id, longer, sizeof longer);
  longer[ilen] = 'x'; /* a byte past the record */
  const struct {
    const void *v;
    size_t len;
  } values[] = {{zeros, sizeof zeros}, {rec, olen}, {longer, ilen + 1}};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
    for (int many = 0; many < 2; many++) {
      put_record(app, id, values[i].v, values[i].len);
      be_user *u = NULL;
      be_user_list *l = NULL;
      const be_user *got = NULL;
      if (many) {
        ck_assert_int_eq(be_user_get_many(&l, app, &id, 1, NULL), BE_OK);
        got = be_user_list_get(l, 0);
      } else {
        ck_assert_int_eq(be_user_get(&u, app, id, NULL), BE_OK);
        got = u;
      }
      ck_assert_int_eq(be_user_id(got), id);
      ck_assert_str_eq(be_user_email(got), "lea@x.io");
      ck_assert_str_eq(be_user_name(got), "Lea");
      be_user_free(u);
      be_user_list_free(l);
    }
  }
  be_app_free(app);
}
END_TEST

START_TEST(get_many_one_query_for_misses) {
  be_driver *fd = NULL;
  be_fault *fault = NULL;
  ck_assert_int_eq(be_fault_driver_new(&fd, &fault, be_sqlite_driver(), NULL), BE_OK);
  be_app *app = svc_app_ex(fd, NULL, 2);
  int64_t ids[40];
  for (int i = 0; i < 40; i++) {
    char email[32];
    snprintf(email, sizeof email, "m%d@x.io", i);
    ids[i] = svc_user(app, email, "M");
  }
  /* warm the cache for the first 10 */
  for (int i = 0; i < 10; i++) {
    be_user *u = NULL;
    ck_assert_int_eq(be_user_get(&u, app, ids[i], NULL), BE_OK);
    be_user_free(u);
  }
  int64_t ask[45];
  for (int i = 0; i < 40; i++) ask[i] = ids[39 - i]; /* caller's order, reversed */
  ask[40] = 999999;                                  /* no such user */
  ask[41] = ids[5];                                  /* duplicates */
  ask[42] = ids[20];
  ask[43] = ids[20];
  ask[44] = 999998;
  be_cache_stats s0 = cstats(app);
  be_fault_reset_counts(fault);
  be_user_list *l = NULL;
  be_error *e = NULL;
  ck_assert_msg(be_user_get_many(&l, app, ask, 45, &e) == BE_OK, "%s", be_error_message(e));
  /* one statement for the 30 distinct misses: 30 rows + done, not 30 queries */
  int64_t steps = be_fault_calls(fault, BE_FAULT_OP_STEP);
  ck_assert_msg(steps <= 32, "get_many used %lld steps", (long long)steps);
  be_cache_stats s1 = cstats(app);
  ck_assert_uint_eq(s1.hits - s0.hits, 11);
  ck_assert_uint_eq(be_user_list_count(l), 45);
  for (int i = 0; i < 40; i++) ck_assert_int_eq(be_user_id(be_user_list_get(l, i)), ids[39 - i]);
  ck_assert_ptr_null(be_user_list_get(l, 40));
  ck_assert_int_eq(be_user_id(be_user_list_get(l, 41)), ids[5]);
  ck_assert_int_eq(be_user_id(be_user_list_get(l, 43)), ids[20]);
  ck_assert_ptr_null(be_user_list_get(l, 44));
  ck_assert_ptr_null(be_user_list_get(l, 45));
  ck_assert_ptr_null(be_user_list_next_cursor(l));
  be_user_list_free(l);
  /* the misses were cached: now all hits */
  be_fault_reset_counts(fault);
  ck_assert_int_eq(be_user_get_many(&l, app, ids, 40, NULL), BE_OK);
  ck_assert_int_eq(be_fault_calls(fault, BE_FAULT_OP_STEP), 0);
  be_user_list_free(l);
  /* empty and bad input */
  ck_assert_int_eq(be_user_get_many(&l, app, NULL, 0, NULL), BE_OK);
  ck_assert_uint_eq(be_user_list_count(l), 0);
  be_user_list_free(l);
  ask[3] = 0;
  e = NULL;
  svc_expect_field(be_user_get_many(&l, app, ask, 4, &e), &e, BE_E_VALIDATION, "ids[3]");
  e = NULL;
  svc_expect_field(be_user_get_many(&l, app, ask, BE_USER_MANY_MAX + 1, &e), &e, BE_E_VALIDATION,
                   "ids");
  ck_assert_int_eq(be_user_get_many(&l, app, NULL, 3, NULL), BE_E_MISUSE);
  be_app_free(app);
  be_fault_free(fault);
}
END_TEST

START_TEST(pagination_visits_each_row_once) {
  be_app *app = svc_app_ex(NULL, NULL, 0);
  enum { N = 57 };
  int64_t ids[N];
  for (int i = 0; i < N; i++) {
    char email[32];
    snprintf(email, sizeof email, "p%d@x.io", i);
    ids[i] = svc_user(app, email, "P");
  }
  int seen[N] = {0};
  int deleted[N] = {0};
  int pages = 0, extra = 0;
  char cursor[64] = "";
  int64_t last = 0;
  for (;;) {
    be_user_list *l = NULL;
    be_error *e = NULL;
    int rc = be_user_list_page(&l, app, cursor[0] ? cursor : NULL, NT, 10, &e);
    ck_assert_msg(rc == BE_OK, "%s", be_error_message(e));
    ck_assert_uint_le(be_user_list_count(l), 10);
    for (size_t i = 0; i < be_user_list_count(l); i++) {
      int64_t id = be_user_id(be_user_list_get(l, i));
      ck_assert_int_gt(id, last); /* ascending, never repeats */
      last = id;
      int found = 0;
      for (int k = 0; k < N; k++)
        if (ids[k] == id) {
          seen[k]++;
          found = 1;
        }
      if (!found) extra++;
    }
    pages++;
    const char *next = be_user_list_next_cursor(l);
    if (next == NULL) {
      be_user_list_free(l);
      break;
    }
    snprintf(cursor, sizeof cursor, "%s", next);
    be_user_list_free(l);
    /* churn between pages: insert new rows, delete one seen and one unseen */
    char email[32];
    snprintf(email, sizeof email, "new%d@x.io", pages);
    svc_user(app, email, "New");
    int del_seen = (pages * 7) % N, del_unseen = N - 1 - pages;
    if (!deleted[del_seen] && seen[del_seen]) {
      ck_assert_int_eq(be_user_delete(app, 0, ids[del_seen], NULL), BE_OK);
      deleted[del_seen] = 1;
    }
    if (!deleted[del_unseen] && !seen[del_unseen]) {
      ck_assert_int_eq(be_user_delete(app, 0, ids[del_unseen], NULL), BE_OK);
      deleted[del_unseen] = 1;
    }
  }
  for (int k = 0; k < N; k++) {
    if (deleted[k] && !seen[k]) continue; /* deleted before its page */
    ck_assert_msg(seen[k] == 1, "row %d seen %d times", k, seen[k]);
  }
  ck_assert_int_ge(pages, 6);
  ck_assert_int_gt(extra, 0); /* rows inserted during the walk show up at the end */

  /* cursor and limit validation */
  be_user_list *l = NULL;
  be_error *e = NULL;
  svc_expect_field(be_user_list_page(&l, app, "not a cursor!", NT, 10, &e), &e, BE_E_VALIDATION, "cursor");
  e = NULL;
  svc_expect_field(be_user_list_page(&l, app, "", NT, 10, &e), &e, BE_E_VALIDATION, "cursor");
  e = NULL;
  svc_expect_field(be_user_list_page(&l, app, "QQAAAAAAAAAB", NT, 10, &e), &e, BE_E_VALIDATION, "cursor");
  e = NULL;
  svc_expect_field(be_user_list_page(&l, app, NULL, NT, 101, &e), &e, BE_E_VALIDATION, "limit");
  e = NULL;
  svc_expect_field(be_user_list_page(&l, app, NULL, NT, -1, &e), &e, BE_E_VALIDATION, "limit");
  ck_assert_int_eq(be_user_list_page(&l, app, NULL, NT, 0, NULL), BE_OK); /* default 20 */
  ck_assert_uint_eq(be_user_list_count(l), 20);
  be_user_list_free(l);
  be_app_free(app);
}
END_TEST

START_TEST(delete_revokes_sessions_and_grants) {
  be_testkit_options to = BE_TESTKIT_OPTIONS_INIT;
  to.users = 3;
  be_testkit *kit = NULL;
  be_error *e = NULL;
  ck_assert_msg(be_testkit_new(&kit, &to, &e) == BE_OK, "%s", be_error_message(e));
  be_app *app = be_testkit_app(kit);
  int64_t uid = be_testkit_user_id(kit, 1);
  char *token = NULL;
  ck_assert_int_eq(be_auth_login(&token, NULL, app, "user1@example.test", NT, BE_TESTKIT_PASSWORD,
                                 BE_NUL_TERMINATED, &e),
                   BE_OK);
  int64_t who = 0;
  ck_assert_int_eq(be_auth_verify(&who, app, token, NT, NULL), BE_OK);
  ck_assert_int_eq(who, uid);
  ck_assert_int_eq(be_perm_check(app, uid, "posts:write", NT, NULL), BE_OK);
  ck_assert_int_eq(be_user_delete(app, be_testkit_user_id(kit, 0), uid, NULL), BE_OK);
  ck_assert_int_eq(be_auth_verify(&who, app, token, NT, NULL), BE_E_UNAUTHORIZED);
  ck_assert_int_eq(be_perm_check(app, uid, "posts:write", NT, NULL), BE_E_FORBIDDEN);
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM be_sessions"), 0);
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM be_user_roles WHERE user_id = 2"), 0);
  ck_assert_int_eq(svc_int(app, "SELECT actor_id FROM be_audit_log WHERE action = 'user.delete'"),
                   be_testkit_user_id(kit, 0));
  be_auth_token_free(token);
  be_testkit_free(kit);
}
END_TEST

START_TEST(disable_revokes_sessions_and_permissions) {
  be_testkit_options to = BE_TESTKIT_OPTIONS_INIT;
  to.users = 2;
  be_testkit *kit = NULL;
  ck_assert_int_eq(be_testkit_new(&kit, &to, NULL), BE_OK);
  be_app *app = be_testkit_app(kit);
  int64_t uid = be_testkit_user_id(kit, 1);
  char *token = NULL;
  ck_assert_int_eq(be_auth_login(&token, NULL, app, "user1@example.test", NT, BE_TESTKIT_PASSWORD,
                                 BE_NUL_TERMINATED, NULL),
                   BE_OK);
  ck_assert_int_eq(be_perm_check(app, uid, "posts:read", NT, NULL), BE_OK);
  be_user_input up = BE_USER_INPUT_INIT;
  up.fields = BE_USER_FIELD_STATUS;
  up.status = BE_USER_DISABLED;
  be_user *u = NULL;
  ck_assert_int_eq(be_user_update(&u, app, 0, uid, &up, NULL), BE_OK);
  ck_assert_int_eq(be_user_status(u), BE_USER_DISABLED);
  be_user_free(u);
  ck_assert_int_eq(be_perm_check(app, uid, "posts:read", NT, NULL), BE_E_FORBIDDEN);
  ck_assert_int_eq(be_auth_verify(NULL, app, token, NT, NULL), BE_E_UNAUTHORIZED);
  up.status = BE_USER_ACTIVE;
  ck_assert_int_eq(be_user_update(NULL, app, 0, uid, &up, NULL), BE_OK);
  ck_assert_int_eq(be_perm_check(app, uid, "posts:read", NT, NULL), BE_OK);
  ck_assert_int_eq(be_auth_verify(NULL, app, token, NT, NULL), BE_E_UNAUTHORIZED); /* stays revoked */
  be_auth_token_free(token);
  be_testkit_free(kit);
}
END_TEST

/* ---- all or nothing, with the fault driver ---- */

static int64_t audit_rows(be_app *app) { return svc_int(app, "SELECT count(*) FROM be_audit_log"); }

START_TEST(update_fails_atomically_when_audit_or_commit_fails) {
  be_driver *fd = NULL;
  be_fault *fault = NULL;
  ck_assert_int_eq(be_fault_driver_new(&fd, &fault, be_sqlite_driver(), NULL), BE_OK);
  be_app *app = svc_app_ex(fd, NULL, 2);
  int64_t id = svc_user(app, "hal@x.io", "Hal");
  be_user_input up = BE_USER_INPUT_INIT;
  up.fields = BE_USER_FIELD_NAME;
  up.name = "Hal 1";
  /* measure: the audit INSERT is the last step of an update */
  be_fault_reset_counts(fault);
  ck_assert_int_eq(be_user_update(NULL, app, 0, id, &up, NULL), BE_OK);
  int64_t steps = be_fault_calls(fault, BE_FAULT_OP_STEP);
  ck_assert_int_ge(steps, 2);
  int64_t n_audit = audit_rows(app);
  be_user *u = NULL;
  ck_assert_int_eq(be_user_get(&u, app, id, NULL), BE_OK); /* cached now */
  be_user_free(u);

  /* 1. the audit insert fails */
  up.name = "Hal 2";
  ck_assert_int_eq(be_fault_set(fault, BE_FAULT_OP_STEP, BE_FAULT_NTH, steps, BE_E_STORAGE, NULL), BE_OK);
  be_error *e = NULL;
  ck_assert_int_eq(be_user_update(NULL, app, 0, id, &up, &e), BE_E_STORAGE);
  ck_assert_ptr_nonnull(strstr(be_error_message(e), "injected"));
  be_error_free(e);
  be_fault_clear(fault, BE_FAULT_OP_ALL);
  ck_assert_int_eq(audit_rows(app), n_audit);
  ck_assert_int_eq(svc_int(app, "SELECT name = 'Hal 1' FROM be_users"), 1);
  ck_assert_int_eq(be_user_get(&u, app, id, NULL), BE_OK);
  ck_assert_str_eq(be_user_name(u), "Hal 1");
  be_user_free(u);

  /* 2. the commit fails */
  ck_assert_int_eq(be_fault_set(fault, BE_FAULT_OP_COMMIT, BE_FAULT_NTH, 1, BE_E_STORAGE, NULL), BE_OK);
  ck_assert_int_eq(be_user_update(NULL, app, 0, id, &up, NULL), BE_E_STORAGE);
  be_fault_clear(fault, BE_FAULT_OP_ALL);
  ck_assert_int_eq(audit_rows(app), n_audit);
  ck_assert_int_eq(svc_int(app, "SELECT name = 'Hal 1' FROM be_users"), 1);

  /* 3. create and delete too */
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = "ivy@x.io";
  in.name = "Ivy";
  ck_assert_int_eq(be_fault_set(fault, BE_FAULT_OP_COMMIT, BE_FAULT_NTH, 1, BE_E_STORAGE, NULL), BE_OK);
  ck_assert_int_eq(be_user_create(NULL, NULL, app, 0, &in, NULL), BE_E_STORAGE);
  ck_assert_int_eq(be_fault_set(fault, BE_FAULT_OP_COMMIT, BE_FAULT_NTH, 1, BE_E_STORAGE, NULL), BE_OK);
  ck_assert_int_eq(be_user_delete(app, 0, id, NULL), BE_E_STORAGE);
  be_fault_clear(fault, BE_FAULT_OP_ALL);
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM be_users"), 1);
  ck_assert_int_eq(audit_rows(app), n_audit);
  /* and a busy commit is retried by the transaction, then succeeds once */
  ck_assert_int_eq(be_fault_set(fault, BE_FAULT_OP_COMMIT, BE_FAULT_NTH, 1, BE_E_BUSY, NULL), BE_OK);
  ck_assert_int_eq(be_user_update(NULL, app, 0, id, &up, NULL), BE_OK);
  ck_assert_int_eq(audit_rows(app), n_audit + 1);
  int64_t bad = -1;
  ck_assert_int_eq(be_audit_verify(&bad, NULL, app, NULL), BE_OK);
  ck_assert_int_eq(bad, 0);
  be_app_free(app);
  be_fault_free(fault);
}
END_TEST

/* A database failure while checking `extra` is the database's error (5xx),
 * not a validation error blaming the caller's JSON. */
START_TEST(storage_failure_in_json_check_is_not_validation) {
  be_driver *fd = NULL;
  be_fault *fault = NULL;
  ck_assert_int_eq(be_fault_driver_new(&fd, &fault, be_sqlite_driver(), NULL), BE_OK);
  be_app *app = svc_app_ex(fd, NULL, 2);
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = "json@x.io";
  in.name = "Json";
  in.extra = "{\"ok\":true}";
  /* the JSON check is the first statement stepped in a create */
  ck_assert_int_eq(be_fault_set(fault, BE_FAULT_OP_STEP, BE_FAULT_NTH, 1, BE_E_STORAGE, NULL), BE_OK);
  be_error *e = NULL;
  int rc = be_user_create(NULL, NULL, app, 0, &in, &e);
  be_fault_clear(fault, BE_FAULT_OP_ALL);
  ck_assert_msg(rc == BE_E_STORAGE, "rc %d (%s)", rc, be_error_message(e));
  ck_assert_int_eq(be_error_http_status(e), 500);
  be_error_free(e);
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM be_users"), 0);
  ck_assert_int_eq(be_user_create(NULL, NULL, app, 0, &in, NULL), BE_OK);
  be_app_free(app);
  be_fault_free(fault);
}
END_TEST

/* ---- allocation failures: every path frees what it took ---- */

static int alloc_body(void *arg) {
  (void)arg;
  be_app_options o;
  svc_fast_options(&o, ":memory:");
  o.pool_min = 1;
  o.pool_max = 1;
  be_app *app = NULL;
  be_error *e = NULL;
  int rc = be_app_new(&app, &o, &e);
  if (rc != BE_OK) {
    be_error_free(e);
    return rc;
  }
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = "oom@x.io";
  in.name = "Oom";
  in.extra = "{\"k\":[1,2]}";
  be_user *u = NULL;
  int64_t id = 0;
  rc = be_user_create(&u, &id, app, 0, &in, &e);
  if (rc == BE_OK) {
    be_user_free(u);
    rc = be_user_get(&u, app, id, &e);
  }
  if (rc == BE_OK) {
    be_user_free(u);
    u = NULL;
  }
  if (rc == BE_OK) {
    be_user_input up = BE_USER_INPUT_INIT;
    up.fields = BE_USER_FIELD_NAME;
    up.name = "Oom 2";
    rc = be_user_update(NULL, app, 0, id, &up, &e);
  }
  if (rc == BE_OK) {
    be_user_list *l = NULL;
    int64_t ids[2] = {id, id + 1};
    rc = be_user_get_many(&l, app, ids, 2, &e);
    be_user_list_free(l);
  }
  if (rc == BE_OK) {
    be_user_list *l = NULL;
    rc = be_user_list_page(&l, app, NULL, NT, 5, &e);
    be_user_list_free(l);
  }
  if (rc == BE_OK) rc = be_user_delete(app, 0, id, &e);
  be_error_free(e);
  be_app_free(app);
  return rc;
}

START_TEST(allocation_failures_leak_nothing) {
  TU_FOR_EACH_ALLOC_FAILURE(alloc_body, NULL);
}
END_TEST

/* The row a write returns is built from the old row and the bound values
 * (no read-back statement): it must equal what the database holds. */
static void expect_same_user(be_app *app, const be_user *w) {
  char key[32];
  int klen = snprintf(key, sizeof key, "user:%lld", (long long)be_user_id(w));
  be_cache_delete(be_app_cache(app), key, (size_t)klen, NULL);
  be_user *db = NULL;
  ck_assert_int_eq(be_user_get(&db, app, be_user_id(w), NULL), BE_OK);
  ck_assert_int_eq(be_user_id(db), be_user_id(w));
  ck_assert_str_eq(be_user_email(db), be_user_email(w));
  ck_assert_str_eq(be_user_name(db), be_user_name(w));
  ck_assert_str_eq(be_user_bio(db), be_user_bio(w));
  ck_assert_str_eq(be_user_extra(db), be_user_extra(w));
  ck_assert_int_eq(be_user_status(db), be_user_status(w));
  ck_assert_int_eq(be_user_created_at_ms(db), be_user_created_at_ms(w));
  ck_assert_int_eq(be_user_updated_at_ms(db), be_user_updated_at_ms(w));
  be_user_free(db);
}

START_TEST(written_row_equals_stored_row) {
  be_app *app = svc_app_ex(NULL, NULL, 0);
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = "  Row@Example.COM ";
  in.name = "  Row  ";
  in.bio = "line 1\nline 2";
  in.extra = "{\"a\":[1,2]}";
  be_user *u = NULL;
  int64_t id = 0;
  ck_assert_int_eq(be_user_create(&u, &id, app, 0, &in, NULL), BE_OK);
  ck_assert_int_eq(be_user_id(u), id);
  ck_assert_str_eq(be_user_email(u), "row@example.com");
  ck_assert_str_eq(be_user_name(u), "Row");
  expect_same_user(app, u);
  be_user_free(u);
  /* no field at all: the defaults */
  be_user_input in2 = BE_USER_INPUT_INIT;
  in2.email = "row2@example.com";
  in2.name = "Row 2";
  ck_assert_int_eq(be_user_create(&u, NULL, app, 0, &in2, NULL), BE_OK);
  ck_assert_str_eq(be_user_bio(u), "");
  ck_assert_str_eq(be_user_extra(u), "{}");
  expect_same_user(app, u);
  be_user_free(u);

  static const uint32_t masks[] = {
    BE_USER_FIELD_NAME, BE_USER_FIELD_BIO, BE_USER_FIELD_EXTRA, BE_USER_FIELD_STATUS,
    BE_USER_FIELD_EMAIL | BE_USER_FIELD_BIO, BE_USER_FIELD_ALL};
  for (size_t i = 0; i < sizeof masks / sizeof masks[0]; i++) {
    char email[64], name[32], bio[32], extra[32];
    snprintf(email, sizeof email, " ROW+%zu@example.com", i);
    snprintf(name, sizeof name, " Name %zu ", i);
    snprintf(bio, sizeof bio, "bio\t%zu", i);
    snprintf(extra, sizeof extra, "{\"i\":%zu}", i);
    be_user_input up = BE_USER_INPUT_INIT;
    up.fields = masks[i];
    up.email = email;
    up.name = name;
    up.bio = bio;
    up.extra = extra;
    up.status = (i & 1) ? BE_USER_DISABLED : BE_USER_ACTIVE;
    ck_assert_int_eq(be_user_update(&u, app, 0, id, &up, NULL), BE_OK);
    expect_same_user(app, u);
    be_user_free(u);
    /* and without asking for the row */
    ck_assert_int_eq(be_user_update(NULL, app, 0, id, &up, NULL), BE_OK);
  }
  int64_t bad = -1;
  ck_assert_int_eq(be_audit_verify(&bad, NULL, app, NULL), BE_OK);
  ck_assert_int_eq(bad, 0);
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM be_audit_log WHERE action = 'user.update'"
                                " AND details LIKE '{\"fields\":[\"bio\"]}'"),
                   2);
  be_app_free(app);
}
END_TEST

/* A missing user is 404 whatever the fields, with or without the row
 * asked for, and before any complaint about `extra`. Nothing is written. */
START_TEST(update_of_missing_user_is_not_found) {
  be_app *app = svc_app_ex(NULL, NULL, 0);
  int64_t id = svc_user(app, "here@x.io", "Here");
  int64_t audit0 = svc_int(app, "SELECT count(*) FROM be_audit_log");
  static const uint32_t masks[] = {BE_USER_FIELD_BIO, BE_USER_FIELD_EXTRA, BE_USER_FIELD_NAME,
                                   BE_USER_FIELD_BIO | BE_USER_FIELD_EXTRA};
  /* \u0000: PostgreSQL's jsonb refuses it with 22P05, which the JSON
   * check raised, aborting the transaction the 404 needs */
  static const char *const extras[] = {"{}", "[]", "not json", "{\"a\":\"\\u0000\"}"};
  for (size_t i = 0; i < sizeof masks / sizeof masks[0]; i++) {
    for (size_t j = 0; j < sizeof extras / sizeof extras[0]; j++) {
      be_user_input up = BE_USER_INPUT_INIT;
      up.fields = masks[i];
      up.name = "N";
      up.bio = "B";
      up.extra = extras[j];
      be_error *e = NULL;
      ck_assert_int_eq(be_user_update(NULL, app, 0, id + 1000, &up, &e), BE_E_NOT_FOUND);
      ck_assert_int_eq(be_error_http_status(e), 404);
      be_error_free(e);
      be_user *u = NULL;
      ck_assert_int_eq(be_user_update(&u, app, 0, id + 1000, &up, NULL), BE_E_NOT_FOUND);
      ck_assert_ptr_null(u);
    }
  }
  /* and on an existing user the JSON rule still holds */
  be_user_input up = BE_USER_INPUT_INIT;
  up.fields = BE_USER_FIELD_EXTRA;
  up.extra = "[]";
  be_error *e = NULL;
  svc_expect_field(be_user_update(NULL, app, 0, id, &up, &e), &e, BE_E_VALIDATION, "extra");
  ck_assert_int_eq(svc_int(app, "SELECT count(*) FROM be_audit_log"), audit0);
  be_app_free(app);
}
END_TEST

/* The database's JSON check answers "not an object" for any text and
 * never raises (which aborts the caller's transaction): on PostgreSQL
 * its function caught only 22P02, and \u0000 raised 22P05. A database
 * made before the fix gets the fixed function by a migration. */
static int64_t json_check(be_app *app, const char *text) {
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT be_json_object_check('%s')", text);
  return svc_int(app, sql);
}

START_TEST(json_check_never_raises_on_an_old_database) {
  if (!svc_on_pg()) { /* SQLite: the migration is a no-op, recorded */
    be_app *app = svc_app_ex(NULL, NULL, 0);
    ck_assert_int_eq(svc_int(app, "SELECT max(version) FROM be_schema_migrations"), 10);
    be_app_free(app);
    return;
  }
  char dsn[1024];
  snprintf(dsn, sizeof dsn, "%s", svc_pg_fresh_dsn());
  be_app_options o;
  svc_fast_options(&o, dsn);
  for (int reopen = 0; reopen < 2; reopen++) {
    be_app *app = NULL;
    be_error *e = NULL;
    ck_assert_msg(be_app_new(&app, &o, &e) == BE_OK, "%s", be_error_message(e));
    static const char *const bad[] = {"{\"a\":\"\\u0000\"}", "{\"a\":\"\\ud800\"}", "{", "[]", "x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) ck_assert_int_eq(json_check(app, bad[i]), 0);
    ck_assert_int_eq(json_check(app, "{\"a\":1}"), 1);
    /* nested past PostgreSQL's stack depth: 54001 */
    ck_assert_int_eq(svc_int(app, "SELECT be_json_object_check('{\"a\":' || repeat('[', 16370)"
                                  " || '1' || repeat(']', 16370) || '}')"),
                     0);
    if (!reopen) { /* back to the function migration 1 made, as before the fix */
      svc_exec(app, "CREATE OR REPLACE FUNCTION be_json_object_check(t text) RETURNS integer"
                    " LANGUAGE plpgsql IMMUTABLE AS $fn$ BEGIN RETURN CASE WHEN"
                    " jsonb_typeof(t::jsonb) = 'object' THEN 1 ELSE 0 END; EXCEPTION WHEN"
                    " invalid_text_representation THEN RETURN 0; END $fn$;"
                    "DELETE FROM be_schema_migrations WHERE version = 10");
    }
    be_app_free(app);
  }
}
END_TEST

/* A row changed behind the app's back (raw sqlite3 on the same file): the
 * cached read still shows the old profile, be_user_get_fresh() the new one,
 * and refreshes the cache with it; a row deleted behind its back drops the
 * cached copy. */
START_TEST(fresh_read_bypasses_and_refreshes_the_cache) {
  char *dir = tu_tempdir(), path[600];
  snprintf(path, sizeof path, "%s/fresh.db", dir);
  be_app_options o;
  svc_fast_options(&o, path);
  be_app *app = NULL;
  ck_assert_int_eq(be_app_new(&app, &o, NULL), BE_OK);
  int64_t id = svc_user(app, "fresh@a.io", "Old Name");
  be_user *u = NULL;
  ck_assert_int_eq(be_user_get(&u, app, id, NULL), BE_OK); /* now cached */
  be_user_free(u);

  sqlite3 *raw = NULL;
  ck_assert_int_eq(sqlite3_open(path, &raw), SQLITE_OK);
  sqlite3_busy_timeout(raw, 5000);
  char sql[200];
  snprintf(sql, sizeof sql, "UPDATE be_users SET name = 'New Name' WHERE id = %lld", (long long)id);
  ck_assert_int_eq(sqlite3_exec(raw, sql, NULL, NULL, NULL), SQLITE_OK);

  ck_assert_int_eq(be_user_get(&u, app, id, NULL), BE_OK);
  ck_assert_str_eq(be_user_name(u), "Old Name"); /* the cache does not know */
  be_user_free(u);
  ck_assert_int_eq(be_user_get_fresh(&u, app, id, NULL), BE_OK);
  ck_assert_str_eq(be_user_name(u), "New Name");
  ck_assert_str_eq(be_user_email(u), "fresh@a.io");
  be_user_free(u);
  ck_assert_int_eq(be_user_get(&u, app, id, NULL), BE_OK);
  ck_assert_str_eq(be_user_name(u), "New Name"); /* the fresh read refreshed it */
  be_user_free(u);

  snprintf(sql, sizeof sql, "DELETE FROM be_users WHERE id = %lld", (long long)id);
  ck_assert_int_eq(sqlite3_exec(raw, sql, NULL, NULL, NULL), SQLITE_OK);
  ck_assert_int_eq(be_user_get(&u, app, id, NULL), BE_OK); /* still cached */
  be_user_free(u);
  be_error *e = NULL;
  ck_assert_int_eq(be_user_get_fresh(&u, app, id, &e), BE_E_NOT_FOUND);
  ck_assert_ptr_null(u);
  be_error_free(e);
  ck_assert_int_eq(be_user_get(&u, app, id, NULL), BE_E_NOT_FOUND); /* dropped */
  sqlite3_close(raw);

  e = NULL;
  svc_expect_field(be_user_get_fresh(&u, app, 0, &e), &e, BE_E_VALIDATION, "id");
  ck_assert_int_eq(be_user_get_fresh(NULL, app, 1, NULL), BE_E_MISUSE);
  ck_assert_int_eq(be_user_get_fresh(&u, NULL, 1, NULL), BE_E_MISUSE);
  be_app_free(app);
  tu_rmdir(dir);
}
END_TEST

/* Change notifications from other apps: "<id>:<instance>"; the app's own
 * and anything malformed give 0 (nothing dropped). */
START_TEST(notification_payloads_are_parsed_strictly) {
  be__app_res res;
  memset(&res, 0, sizeof res);
  res.instance = UINT64_C(0x00000000deadbeef);
  const char *mine = "42:00000000deadbeef";
  ck_assert_int_eq(be__svc_notified_id(&res, mine, strlen(mine)), 0);
  const char *other = "42:00000000deadbeee";
  ck_assert_int_eq(be__svc_notified_id(&res, other, strlen(other)), 42);
  const char *max = "9223372036854775807:0000000000000001";
  ck_assert_int_eq(be__svc_notified_id(&res, max, strlen(max)), INT64_MAX);
  static const char *const bad[] = {
    "",
    "42",
    "42:",
    ":00000000deadbeee",
    "x2:00000000deadbeee",
    "42:00000000deadbee",
    "42:00000000deadbeeee",
    "42;00000000deadbeee",
    "9223372036854775808:0000000000000001",
    "12345678901234567890:0000000000000001",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ck_assert_msg(be__svc_notified_id(&res, bad[i], strlen(bad[i])) == 0, "%s", bad[i]);
  /* an app on SQLite sends nothing (and needs no connection for it) */
  ck_assert_int_eq(be__svc_notify_id(&res, NULL, BE__SQL_USER_CHANNEL, 42, NULL), BE_OK);
}
END_TEST

static Suite *user_suite(void) {
  be_log_set_handler(NULL, NULL, BE_LOG_ERROR, NULL); /* tiny pools warn on every acquire */
  Suite *s = suite_create("user");
  TCase *tc = tcase_create("user");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, create_get_update_delete);
  tcase_add_test(tc, notification_payloads_are_parsed_strictly);
  tcase_add_test(tc, duplicate_email_is_conflict);
  tcase_add_test(tc, lookalike_emails_are_refused);
  tcase_add_test(tc, bio_takes_crlf_line_breaks);
  tcase_add_test(tc, deleted_ids_are_not_reused);
  tcase_add_test(tc, validation_names_the_field_and_writes_nothing);
  tcase_add_test(tc, extra_takes_what_json_allows_in_a_string);
  tcase_add_test(tc, extra_is_judged_alike_on_every_database);
  tcase_add_test(tc, lengths_are_exact_and_zero_is_empty);
  tcase_add_test(tc, times_are_milliseconds);
  tcase_add_test(tc, cache_hit_then_invalidated_after_update);
  tcase_add_test(tc, miss_returns_what_the_hit_reads_under_the_decimal_key);
  tcase_add_test(tc, large_profile_round_trips_through_the_cache);
  tcase_add_test(tc, cache_from_many_threads);
  tcase_add_test(tc, no_stale_entry_after_concurrent_writes);
  tcase_add_test(tc, get_many_one_query_for_misses);
  tcase_add_test(tc, pagination_visits_each_row_once);
  tcase_add_test(tc, delete_revokes_sessions_and_grants);
  tcase_add_test(tc, disable_revokes_sessions_and_permissions);
  tcase_add_test(tc, update_fails_atomically_when_audit_or_commit_fails);
  tcase_add_test(tc, storage_failure_in_json_check_is_not_validation);
  tcase_add_test(tc, allocation_failures_leak_nothing);
  tcase_add_test(tc, written_row_equals_stored_row);
  tcase_add_test(tc, update_of_missing_user_is_not_found);
  tcase_add_test(tc, json_check_never_raises_on_an_old_database);
  tcase_add_test(tc, fresh_read_bypasses_and_refreshes_the_cache);
  tcase_add_test(tc, older_refresh_never_replaces_a_newer_one);
  tcase_add_test(tc, newer_refresh_outlives_an_older_read);
  tcase_add_test(tc, fresh_read_too_large_to_cache_drops_the_old_copy);
  tcase_add_test(tc, fresh_read_short_of_memory_never_leaves_the_old_copy);
  tcase_add_test(tc, foreign_value_under_a_user_key_is_replaced);
  tcase_add_test(tc, cached_value_of_another_id_is_not_served);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(user_suite)
