/* SPDX-License-Identifier: MIT */
/* backend-cli: the two JSON writing helpers every command's --json output
 * uses (string literals with escaping, object keys). */
#include "cli.h"

void cli_json_str(FILE *f, const char *s) {
  if (s == NULL) {
    fputs("null", f);
    return;
  }
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
      case '"': fputs("\\\"", f); break;
      case '\\': fputs("\\\\", f); break;
      case '\n': fputs("\\n", f); break;
      case '\r': fputs("\\r", f); break;
      case '\t': fputs("\\t", f); break;
      default:
        if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
  }
  fputc('"', f);
}

void cli_json_key(FILE *f, int first, const char *key) {
  if (!first) fputc(',', f);
  cli_json_str(f, key);
  fputc(':', f);
}
