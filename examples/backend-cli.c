/* SPDX-License-Identifier: MIT */
/* backend-cli: the example command-line front end to libbackend.
 * Each subcommand shows one part of the library at work. */
#include <backend/backend.h>

#include <stdio.h>
#include <string.h>

static int usage(void) {
  fprintf(stderr,
          "usage: backend-cli <command>\n"
          "  version        library version (headers and loaded library)\n"
          "  error-demo     a validation error as RFC 9457 problem JSON\n"
          "  codes          every error code with its HTTP status\n"
          "  demo [DB]      the services at work on a database (default :memory:)\n");
  return 2;
}

static int cmd_version(void) {
  printf("libbackend %s (headers %s)\n", be_version_string(), BE_VERSION_STRING);
  return be_version_number() == BE_VERSION_NUMBER ? 0 : 1;
}

static int cmd_error_demo(void) {
  be_error *err = NULL;
  if (be_error_new(&err, BE_E_VALIDATION, "Validation failed: email") != BE_OK) return 1;
  be_error_add_field(err, "email", "is not a valid address");
  be_error_add_field(err, "name", "must not be empty");
  char *json = NULL;
  int rc = be_error_to_json(&json, NULL, err);
  if (rc == BE_OK) printf("%s\n", json);
  be_free(json);
  be_error_free(err);
  return rc == BE_OK ? 0 : 1;
}

static int cmd_codes(void) {
  for (int32_t code = 0; strcmp(be_code_name(code), "BE_E_UNKNOWN") != 0; code--)
    printf("%4d  %-22s %3d  %s\n", (int)code, be_code_name(code),
           (int)be_code_http_status(code), be_strerror(code));
  return 0;
}

/* Print an error as problem JSON (what an HTTP handler would send). */
static void print_problem(const char *what, const be_error *err) {
  char *json = NULL;
  if (err && be_error_to_json(&json, NULL, err) == BE_OK) printf("%-28s %s\n", what, json);
  else printf("%-28s (no error object)\n", what);
  be_free(json);
}

/* Stop the demo on an unexpected failure, saying which step failed. */
static int failed(const char *step, be_error *err) {
  fprintf(stderr, "demo: %s failed: %s\n", step, err ? be_error_message(err) : "?");
  be_error_free(err);
  return 1;
}

#define STEP(call, what)                           \
  do {                                             \
    if ((call) != BE_OK) return failed(what, err); \
  } while (0)

static int demo_services(be_app *app) {
  be_error *err = NULL;
  static const char pw[] = "a long correct passphrase";
  be_user_input in = BE_USER_INPUT_INIT;
  in.email = "Ada@Example.com";
  in.name = "Ada Lovelace";
  int64_t ada = 0;
  STEP(be_user_create(NULL, &ada, app, 0, &in, &err), "create user");
  printf("%-28s id %lld\n", "created user", (long long)ada);
  if (be_user_create(NULL, NULL, app, 0, &in, &err) == BE_E_CONFLICT) print_problem("same email again:", err);
  be_error_free(err), err = NULL;

  STEP(be_auth_set_password(app, 0, ada, pw, BE_NUL_TERMINATED, &err), "set password");
  char *token = NULL;
  int64_t who = 0;
  STEP(be_auth_login(&token, &who, app, "ada@example.com", BE_NUL_TERMINATED, pw, BE_NUL_TERMINATED,
                     &err),
       "login");
  STEP(be_auth_verify(&who, app, token, BE_NUL_TERMINATED, &err), "verify token");
  printf("%-28s user %lld (token of %zu chars, stored only as a hash)\n", "logged in, token verified:",
         (long long)who, strlen(token));
  be_auth_token_free(token);
  if (be_auth_login(&token, NULL, app, "ada@example.com", BE_NUL_TERMINATED, "not the password!!",
                    BE_NUL_TERMINATED, &err) != BE_OK)
    print_problem("wrong password:", err);
  be_error_free(err), err = NULL;

  STEP(be_perm_role_create(NULL, app, ada, "editor", BE_NUL_TERMINATED, &err), "create role");
  STEP(be_perm_role_grant(app, ada, "editor", BE_NUL_TERMINATED, "posts:*", BE_NUL_TERMINATED, &err),
       "grant");
  STEP(be_perm_user_assign(app, ada, ada, "editor", BE_NUL_TERMINATED, &err), "assign");
  printf("%-28s %s\n", "check posts:write:",
         be_perm_check(app, ada, "posts:write", BE_NUL_TERMINATED, NULL) == BE_OK ? "allowed" : "denied");
  STEP(be_perm_role_revoke(app, ada, "editor", BE_NUL_TERMINATED, "posts:*", BE_NUL_TERMINATED, &err),
       "revoke");
  if (be_perm_check(app, ada, "posts:write", BE_NUL_TERMINATED, &err) == BE_E_FORBIDDEN)
    print_problem("after revoke:", err);
  be_error_free(err), err = NULL;

  for (int i = 0; i < 3; i++) {
    be_user *u = NULL;
    STEP(be_user_get(&u, app, ada, &err), "get user");
    be_user_free(u);
  }
  be_cache_stats cs = BE_CACHE_STATS_INIT;
  be_cache_stats_get(&cs, be_app_cache(app), NULL);
  printf("%-28s %llu hits, %llu misses (user:{id}, 5 min TTL)\n", "profile cache after 3 gets:",
         (unsigned long long)cs.hits, (unsigned long long)cs.misses);

  int64_t bad = -1, rows = 0;
  STEP(be_audit_verify(&bad, &rows, app, &err), "audit verify");
  printf("%-28s %lld rows, %s\n", "audit chain:", (long long)rows, bad == 0 ? "intact" : "BROKEN");
  return 0;
}

static int demo_numbers(be_app *app) {
  be_pool_stats ps = BE_POOL_STATS_INIT;
  if (be_pool_stats_get(&ps, be_app_pool(app), NULL) == BE_OK)
    printf("%-28s total %d, in use %d, idle %d, acquires %llu, timeouts %llu\n", "pool:", (int)ps.total,
           (int)ps.in_use, (int)ps.idle, (unsigned long long)ps.acquires, (unsigned long long)ps.timeouts);
  char *json = NULL;
  if (be_query_stats_to_json(&json, NULL, be_pool_query_stats(be_app_pool(app)), NULL) == BE_OK)
    printf("%-28s %s\n", "queries:", json);
  be_free(json);
  return 0;
}

static int cmd_demo(const char *db) {
  be_app_options o = BE_APP_OPTIONS_INIT;
  o.database = db;
  be_app *app = NULL;
  be_error *err = NULL;
  if (be_app_new(&app, &o, &err) != BE_OK) {
    print_problem("opening the app failed:", err);
    be_error_free(err);
    return 1;
  }
  printf("libbackend %s on %s\n", be_version_string(), db);
  int rc = demo_services(app);
  if (rc == 0) rc = demo_numbers(app);
  be_app_free(app);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2) return usage();
  if (strcmp(argv[1], "version") == 0) return cmd_version();
  if (strcmp(argv[1], "error-demo") == 0) return cmd_error_demo();
  if (strcmp(argv[1], "codes") == 0) return cmd_codes();
  if (strcmp(argv[1], "demo") == 0) return cmd_demo(argc > 2 ? argv[2] : ":memory:");
  return usage();
}
