/* SPDX-License-Identifier: MIT */
/* Built by CI outside the tree against the installed libbackend, with only
 * `cc prog.c $(pkg-config --cflags --libs libbackend)`. */
#include <backend/backend.h>

#include <stdio.h>
#include <string.h>

int main(void) {
  if (be_version_number() != BE_VERSION_NUMBER) {
    fprintf(stderr, "header/library mismatch\n");
    return 1;
  }
  be_error *err = NULL;
  if (be_error_new(&err, BE_E_NOT_FOUND, "user 42 not found") != BE_OK) return 1;
  char *json = NULL;
  int rc = be_error_to_json(&json, NULL, err);
  int ok = rc == BE_OK && be_error_http_status(err) == 404 && strstr(json, "\"status\":404");
  printf("libbackend %s: %s\n", be_version_string(), ok ? json : "FAILED");
  be_free(json);
  be_error_free(err);
  return ok ? 0 : 1;
}
