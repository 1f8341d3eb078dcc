/* SPDX-License-Identifier: MIT */
/* Print an app's Prometheus text exposition (be_app_metrics_prometheus)
 * after a little work, for tests/status/parse_prometheus.py. The work
 * includes a statement whose normalized text holds a backslash, a double
 * quote and a newline, so label escaping is exercised. */
#include <backend/backend.h>

#include <sodium.h>
#include <stdio.h>

int main(void) {
  be_app_options o = BE_APP_OPTIONS_INIT;
  o.database = ":memory:";
  o.insecure_test_hashing = 1;
  o.pwhash_opslimit = crypto_pwhash_argon2id_OPSLIMIT_MIN;
  o.pwhash_memlimit = crypto_pwhash_argon2id_MEMLIMIT_MIN;
  be_app *app = NULL;
  be_error *e = NULL;
  if (be_app_new(&app, &o, &e) != BE_OK) {
    fprintf(stderr, "be_app_new: %s\n", be_error_message(e));
    return 1;
  }
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = "prom@example.com";
  in.name = "Prom";
  int64_t id = 0;
  int rc = be_user_create(NULL, &id, app, 0, &in, &e);
  for (int i = 0; rc == BE_OK && i < 50; i++) {
    be_user *u = NULL;
    rc = be_user_get(&u, app, id, &e);
    be_user_free(u);
  }
  be_user *missing = NULL;
  be_user_get(&missing, app, id + 1, NULL);
  be_conn *c = NULL;
  if (rc == BE_OK) rc = be_pool_acquire(&c, be_app_pool(app), &e);
  if (rc == BE_OK) rc = be_conn_exec(c, "CREATE TABLE \"we\"\"ird\\\n\" (x)", &e);
  if (c) be_pool_release(be_app_pool(app), c);
  char *text = NULL;
  if (rc == BE_OK) rc = be_app_metrics_prometheus(&text, NULL, app, &e);
  if (rc != BE_OK) {
    fprintf(stderr, "error: %s\n", be_error_message(e));
    return 1;
  }
  fputs(text, stdout);
  be_free(text);
  be_app_free(app);
  return 0;
}
