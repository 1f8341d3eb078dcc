/* SPDX-License-Identifier: MIT */
/*
 * Writes two audit logs for tests/audit/recompute_chain.py, which
 * recomputes them from the encoding backend/audit.h documents:
 *   DIR/unkeyed.db  an app without a key;
 *   DIR/keyed.db    rows written without a key, then the log adopted by
 *                   an app with the key (KEYHEX, 64 hex digits) and more
 *                   rows written keyed.
 * The rows mix the services' own (users, passwords, logins) and host rows
 * with non-ASCII details, a negative target id and an empty JSON object.
 *
 * usage: write_chain DIR KEYHEX
 */
#include <backend/backend.h>

#include <stdio.h>
#include <string.h>

static int fail(const char *what, be_error *err) {
  fprintf(stderr, "write_chain: %s: %s\n", what, err ? be_error_message(err) : "failed");
  be_error_free(err);
  return 1;
}

static int open_app(be_app **app, const char *path, const uint8_t *key, int32_t adopt,
                    be_error **err) {
  be_app_options o = BE_APP_OPTIONS_INIT;
  o.database = path;
  o.insecure_test_hashing = 1; /* cheap hashing: these are test rows */
  o.pwhash_opslimit = 1;
  o.pwhash_memlimit = 8192;
  o.audit_key = key;
  o.audit_key_len = key ? 32 : 0;
  o.audit_key_adopt = adopt;
  return be_app_new(app, &o, err);
}

typedef struct host_row {
  be_app *app;
  int64_t target_id;
  const char *details;
} host_row;

static int write_host_row(be_conn *conn, void *user_data, be_error **err) {
  host_row *h = user_data;
  return be_audit_write(NULL, h->app, conn, 0, "doc.publish", BE_NUL_TERMINATED, "doc",
                        BE_NUL_TERMINATED, h->target_id, h->details, BE_NUL_TERMINATED, err);
}

/* A user (two service rows and a login) and two host rows; tag makes the
 * emails unique. */
static int write_rows(be_app *app, const char *tag, be_error **err) {
  char email[64];
  snprintf(email, sizeof email, "%s.ren\xc3\xa9@example.com", tag);
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = email;
  in.name = "Ren\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \"quoted\"";
  int64_t id = 0;
  int rc = be_user_create(NULL, &id, app, 0, &in, err);
  if (rc == BE_OK) rc = be_auth_set_password(app, id, id, "a long correct passphrase", BE_NUL_TERMINATED, err);
  char *token = NULL;
  if (rc == BE_OK)
    rc = be_auth_login(&token, NULL, app, email, BE_NUL_TERMINATED, "a long correct passphrase",
                       BE_NUL_TERMINATED, err);
  be_auth_token_free(token);
  host_row rows[] = {
    {app, -42, "{\"title\":\"na\\u00efve \xe2\x82\xac\",\"n\":[1,2.5,null]}"},
    {app, INT64_MAX, NULL},
  };
  for (size_t i = 0; rc == BE_OK && i < sizeof rows / sizeof rows[0]; i++)
    rc = be_pool_tx_run(be_app_pool(app), BE_TX_IMMEDIATE, write_host_row, &rows[i], err);
  return rc;
}

static int write_log(const char *path, const uint8_t *key, int32_t adopt, const char *tag,
                     be_error **err) {
  be_app *app = NULL;
  int rc = open_app(&app, path, key, adopt, err);
  if (rc == BE_OK) rc = write_rows(app, tag, err);
  be_app_free(app);
  return rc;
}

int main(int argc, char **argv) {
  uint8_t key[32];
  if (argc != 3 || strlen(argv[2]) != 64) {
    fprintf(stderr, "usage: write_chain DIR KEYHEX(64 hex digits)\n");
    return 2;
  }
  for (int i = 0; i < 32; i++) {
    unsigned v = 0;
    if (sscanf(argv[2] + 2 * i, "%2x", &v) != 1) return fail("KEYHEX", NULL);
    key[i] = (uint8_t)v;
  }
  char path[4096];
  be_error *err = NULL;
  snprintf(path, sizeof path, "%s/unkeyed.db", argv[1]);
  if (write_log(path, NULL, 0, "a", &err) != BE_OK || write_log(path, NULL, 0, "b", &err) != BE_OK)
    return fail(path, err);
  snprintf(path, sizeof path, "%s/keyed.db", argv[1]);
  /* adopted once, then opened with the key alone */
  if (write_log(path, NULL, 0, "a", &err) != BE_OK || write_log(path, key, 1, "b", &err) != BE_OK ||
      write_log(path, key, 0, "c", &err) != BE_OK)
    return fail(path, err);
  return 0;
}
