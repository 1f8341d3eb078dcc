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
          "  codes          every error code with its HTTP status\n");
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
  int rc = be_error_to_json(err, &json, NULL);
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

int main(int argc, char **argv) {
  if (argc < 2) return usage();
  if (strcmp(argv[1], "version") == 0) return cmd_version();
  if (strcmp(argv[1], "error-demo") == 0) return cmd_error_demo();
  if (strcmp(argv[1], "codes") == 0) return cmd_codes();
  return usage();
}
