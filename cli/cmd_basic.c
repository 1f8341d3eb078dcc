/* SPDX-License-Identifier: MIT */
/* backend-cli: the commands about the library itself, no database needed —
 * `version`, `codes` (every error code, its HTTP status, category and
 * exit code) and `error-demo` (a validation error as problem JSON). */
#include "cli.h"

#include <string.h>

static int cmd_version(cli_ctx *ctx, int argc, char **argv) {
  int rc = cli_parse(ctx, argc, argv, NULL, NULL, 0, 0, NULL);
  if (rc) return rc;
  int same = be_version_number() == BE_VERSION_NUMBER;
  if (ctx->json) {
    printf("{\"library\":");
    cli_json_str(stdout, be_version_string());
    printf(",\"headers\":");
    cli_json_str(stdout, BE_VERSION_STRING);
    printf(",\"match\":%s}\n", same ? "true" : "false");
  } else {
    printf("libbackend %s (headers %s)\n", be_version_string(), BE_VERSION_STRING);
  }
  return same ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}

static int cmd_codes(cli_ctx *ctx, int argc, char **argv) {
  int rc = cli_parse(ctx, argc, argv, NULL, NULL, 0, 0, NULL);
  if (rc) return rc;
  if (ctx->json) printf("[");
  for (int32_t code = 0; strcmp(be_code_name(code), "BE_E_UNKNOWN") != 0; code--) {
    if (ctx->json) {
      printf("%s{\"code\":%d,\"name\":", code == 0 ? "" : ",", (int)code);
      cli_json_str(stdout, be_code_name(code));
      printf(",\"http_status\":%d,\"retryable\":%s,\"exit_code\":%d,\"message\":",
             (int)be_code_http_status(code), be_code_is_retryable(code) ? "true" : "false",
             cli_exit_code(code));
      cli_json_str(stdout, be_strerror(code));
      printf("}");
    } else {
      printf("%4d  %-22s %3d  exit %2d  %s\n", (int)code, be_code_name(code),
             (int)be_code_http_status(code), cli_exit_code(code), be_strerror(code));
    }
  }
  if (ctx->json) printf("]\n");
  return CLI_EXIT_OK;
}

static int cmd_error_demo(cli_ctx *ctx, int argc, char **argv) {
  int rc = cli_parse(ctx, argc, argv, NULL, NULL, 0, 0, NULL);
  if (rc) return rc;
  be_error *err = NULL;
  if (be_error_new(&err, BE_E_VALIDATION, "Validation failed: email") != BE_OK)
    return cli_fail_code(ctx, BE_E_NOMEM, "out of memory");
  be_error_add_field(err, "email", "is not a valid address");
  be_error_add_field(err, "name", "must not be empty");
  char *json = NULL;
  rc = be_error_to_json(&json, NULL, err);
  if (rc == BE_OK) printf("%s\n", json);
  be_free(json);
  be_error_free(err);
  return rc == BE_OK ? CLI_EXIT_OK : cli_exit_code(rc);
}

const cli_cmd cli_basic_cmds[] = {
  {"version", "", "library version (headers and loaded library); exit 1 if they differ", NULL,
   cmd_version, NULL},
  {"codes", "", "every error code: HTTP status, exit code, meaning", NULL, cmd_codes, NULL},
  {"error-demo", "", "a validation error as RFC 9457 problem JSON", NULL, cmd_error_demo, NULL},
  {NULL, NULL, NULL, NULL, NULL, NULL},
};
