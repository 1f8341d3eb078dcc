/* SPDX-License-Identifier: MIT */
/* backend/abi.h: the struct and constant tables, built from the lists in
 * lib/abi.h, and the lookups over them. */
#include "abi.h"

#include "error.h"
#include "utf8.h"

#include <string.h>

/* Every row type starts with its name: find_row() relies on it. */
typedef struct {
  const char *name;
  size_t size;
  uint32_t version;
} struct_row;

typedef struct {
  const char *name;
  int64_t value;    /* the value, or a text constant's length in bytes */
  const char *text; /* NULL for an integer constant */
} constant_row;

#define STRUCT_ROW(type, version) {#type, sizeof(type), (uint32_t)(version)},
static const struct_row structs[] = {BE__ABI_STRUCTS(STRUCT_ROW)};

/* size_t constants (BE_NUL_TERMINATED) keep their bits: (size_t)-1 is -1. */
#define INT_ROW(name) {#name, (int64_t)(name), NULL},
#define TEXT_ROW(name) {#name, (int64_t)(sizeof(name) - 1), name},
static const constant_row constants[] = {BE__ABI_CONSTANTS(INT_ROW, TEXT_ROW)};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Longest part of an unknown name repeated in the error message. */
#define NAME_ECHO_MAX 64

/* The name of row i of a table of rows of row_size bytes. */
static const char *row_name(const void *rows, size_t row_size, size_t i) {
  return *(const char *const *)(const void *)((const char *)rows + i * row_size);
}

/* Check name as every text argument is checked, then find the row with
 * exactly this name: *out_i is its index. `what` names the table in the
 * not-found message. */
static int find_row(size_t *out_i, const void *rows, size_t count, size_t row_size,
                    const char *what, const char *name, size_t name_len, be_error **err) {
  if (name == NULL && name_len != 0) return be__error_set(err, BE_E_MISUSE, "name is NULL");
  name = be__text_arg(name, &name_len); /* "" for length 0 */
  if (!be__utf8_valid(name, name_len))
    return be__error_field(err, "name", "must be UTF-8 text without NUL bytes");
  for (size_t i = 0; i < count; i++) {
    const char *row = row_name(rows, row_size, i);
    if (strlen(row) == name_len && memcmp(row, name, name_len) == 0) {
      *out_i = i;
      return BE_OK;
    }
  }
  size_t echo = be__utf8_cut(name, name_len, NAME_ECHO_MAX);
  return be__error_set(err, BE_E_NOT_FOUND, "no public %s named \"%.*s\"%s", what, (int)echo,
                       name, echo < name_len ? "..." : "");
}

int be_struct_info(size_t *out_size, uint32_t *out_version, const char *name, size_t name_len,
                   be_error **err) {
  size_t i;
  int rc = find_row(&i, structs, COUNT(structs), sizeof structs[0], "struct", name, name_len, err);
  if (rc != BE_OK) return rc;
  if (out_size != NULL) *out_size = structs[i].size;
  if (out_version != NULL) *out_version = structs[i].version;
  return BE_OK;
}

size_t be_struct_count(void) { return COUNT(structs); }

const char *be_struct_name(size_t i) { return i < COUNT(structs) ? structs[i].name : NULL; }

int be_constant(int64_t *out_value, const char **out_text, const char *name, size_t name_len,
                be_error **err) {
  size_t i;
  int rc = find_row(&i, constants, COUNT(constants), sizeof constants[0], "constant", name,
                    name_len, err);
  if (rc != BE_OK) return rc;
  const constant_row *c = &constants[i];
  if (c->text != NULL && out_text == NULL)
    return be__error_set(err, BE_E_MISUSE, "%s is a text constant: out_text is NULL", c->name);
  if (out_value != NULL) *out_value = c->value;
  if (out_text != NULL) *out_text = c->text;
  return BE_OK;
}

size_t be_constant_count(void) { return COUNT(constants); }

const char *be_constant_name(size_t i) { return i < COUNT(constants) ? constants[i].name : NULL; }

size_t be_nul_terminated(void) { return BE_NUL_TERMINATED; }
