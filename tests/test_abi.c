/* SPDX-License-Identifier: MIT */
/* backend/abi.h: every struct's size and version and every constant's value
 * as the library reports them equal what C sees in the headers; lookups are
 * exact and refuse bad names. Which structs and constants the lists must
 * hold is checked against the headers by tests/ffi/ctypes_layouts.py. */
#include "testutil.h"

#include "abi.h" /* lib/abi.h: the lists the library's tables are built from */

#define ABI_COUNT_ONE(...) +1
#define NSTRUCTS (0 BE__ABI_STRUCTS(ABI_COUNT_ONE))
#define NCONSTANTS (0 BE__ABI_CONSTANTS(ABI_COUNT_ONE, ABI_COUNT_ONE))

/* Look name up both NUL-terminated and by exact length; both must agree. */
static void struct_info(size_t *size, uint32_t *version, const char *name) {
  size_t size2 = 0;
  uint32_t version2 = 0;
  ck_assert_int_eq(be_struct_info(size, version, name, BE_NUL_TERMINATED, NULL), BE_OK);
  ck_assert_int_eq(be_struct_info(&size2, &version2, name, strlen(name), NULL), BE_OK);
  ck_assert_uint_eq(*size, size2);
  ck_assert_uint_eq(*version, version2);
}

START_TEST(every_struct_has_its_c_size_and_version) {
  size_t size;
  uint32_t version;
#define CHECK_STRUCT(type, ver)                                                                  \
  struct_info(&size, &version, #type);                                                           \
  ck_assert_msg(size == sizeof(type), "%s: library says %zu, C %zu", #type, size, sizeof(type)); \
  ck_assert_msg(version == (uint32_t)(ver), "%s: version %u", #type, version);
  BE__ABI_STRUCTS(CHECK_STRUCT)
#undef CHECK_STRUCT
  /* spot checks that do not go through the list */
  struct_info(&size, &version, "be_app_options");
  ck_assert_uint_eq(size, sizeof(be_app_options));
  ck_assert_uint_eq(version, BE_APP_OPTIONS_VERSION);
  struct_info(&size, &version, "be_cache_options");
  ck_assert_uint_eq(version, 2);
  struct_info(&size, &version, "be_log_field");
  ck_assert_uint_eq(size, 2 * sizeof(const char *));
  ck_assert_uint_eq(version, 0); /* no version field */
}
END_TEST

START_TEST(structs_enumerate_in_list_order) {
  ck_assert_uint_eq(be_struct_count(), NSTRUCTS);
  size_t i = 0;
#define CHECK_NAME(type, ver) ck_assert_str_eq(be_struct_name(i++), #type);
  BE__ABI_STRUCTS(CHECK_NAME)
#undef CHECK_NAME
  ck_assert_ptr_null(be_struct_name(be_struct_count()));
  ck_assert_ptr_null(be_struct_name((size_t)-1));
  for (size_t a = 0; a < be_struct_count(); a++)
    for (size_t b = a + 1; b < be_struct_count(); b++)
      ck_assert_str_ne(be_struct_name(a), be_struct_name(b));
}
END_TEST

static int64_t int_constant(const char *name) {
  int64_t v = 0x5a5a, v2 = 0x5a5a;
  const char *text = "not NULL";
  ck_assert_int_eq(be_constant(&v, &text, name, BE_NUL_TERMINATED, NULL), BE_OK);
  ck_assert_ptr_null(text);
  ck_assert_int_eq(be_constant(&v2, NULL, name, strlen(name), NULL), BE_OK);
  ck_assert_int_eq(v, v2);
  return v;
}

static const char *text_constant(const char *name) {
  int64_t len = -5;
  const char *text = NULL;
  ck_assert_int_eq(be_constant(&len, &text, name, BE_NUL_TERMINATED, NULL), BE_OK);
  ck_assert_ptr_nonnull(text);
  ck_assert_int_eq(len, (int64_t)strlen(text));
  return text;
}

START_TEST(every_constant_has_its_macro_value) {
#define CHECK_INT(name) \
  ck_assert_msg(int_constant(#name) == (int64_t)(name), "%s: %lld", #name, (long long)int_constant(#name));
#define CHECK_TEXT(name) ck_assert_str_eq(text_constant(#name), name);
  BE__ABI_CONSTANTS(CHECK_INT, CHECK_TEXT)
#undef CHECK_INT
#undef CHECK_TEXT
  /* spot checks that do not go through the list */
  ck_assert_int_eq(int_constant("BE_AUTH_TOKEN_LEN"), 43);
  ck_assert_int_eq(int_constant("BE_E_NOT_FOUND"), -7);
  ck_assert_int_eq(int_constant("BE_CACHE_TTL_FOREVER"), -1);
  ck_assert_int_eq(int_constant("BE_TESTKIT_START_WALL_MS"), INT64_C(1767225600000));
  ck_assert_int_eq(int_constant("BE_VERSION_NUMBER"), (int64_t)be_version_number());
  ck_assert_str_eq(text_constant("BE_VERSION_STRING"), be_version_string());
  ck_assert_str_eq(text_constant("BE_TESTKIT_PASSWORD"), "testkit-seed-pass-7Kq2");
  /* a size_t constant keeps its bits */
  ck_assert_int_eq(int_constant("BE_NUL_TERMINATED"), -1);
  ck_assert(be_nul_terminated() == BE_NUL_TERMINATED);
  ck_assert(be_nul_terminated() == (size_t)int_constant("BE_NUL_TERMINATED"));
}
END_TEST

START_TEST(constants_enumerate_in_list_order) {
  ck_assert_uint_eq(be_constant_count(), NCONSTANTS);
  size_t i = 0;
#define CHECK_NAME(name) ck_assert_str_eq(be_constant_name(i++), #name);
  BE__ABI_CONSTANTS(CHECK_NAME, CHECK_NAME)
#undef CHECK_NAME
  ck_assert_ptr_null(be_constant_name(be_constant_count()));
  ck_assert_ptr_null(be_constant_name((size_t)-1));
  for (size_t a = 0; a < be_constant_count(); a++) {
    ck_assert_int_eq(be_constant(NULL, &(const char *){NULL}, be_constant_name(a),
                                 BE_NUL_TERMINATED, NULL),
                     BE_OK);
    for (size_t b = a + 1; b < be_constant_count(); b++)
      ck_assert_str_ne(be_constant_name(a), be_constant_name(b));
  }
}
END_TEST

START_TEST(lookups_match_whole_names_only) {
  size_t size = 77;
  uint32_t version = 77;
  /* a prefix, a longer name, another case, trailing bytes: not found, outs untouched */
  const char *misses[] = {"be_app", "be_app_optionsX", "BE_APP_OPTIONS", "be_app_options ",
                          "be_driver_", "struct be_app_options", "be_pool"};
  for (size_t i = 0; i < sizeof misses / sizeof misses[0]; i++)
    TU_EXPECT_ERR(BE_E_NOT_FOUND, be_struct_info(&size, &version, misses[i], BE_NUL_TERMINATED, &tu_e));
  ck_assert_uint_eq(size, 77);
  ck_assert_uint_eq(version, 77);
  /* the length decides, not a NUL */
  ck_assert_int_eq(be_struct_info(&size, NULL, "be_mailerXYZ", 9, NULL), BE_OK);
  ck_assert_uint_eq(size, sizeof(be_mailer));
  ck_assert_int_eq(be_struct_info(NULL, NULL, "be_app_options", 6, NULL), BE_E_NOT_FOUND);
  int64_t v = 99;
  ck_assert_int_eq(be_constant(&v, NULL, "BE_OKAY", 5, NULL), BE_OK);
  ck_assert_int_eq(v, BE_OK);
  ck_assert_int_eq(be_constant(&v, NULL, "BE_E_NOT_FOUN", BE_NUL_TERMINATED, NULL), BE_E_NOT_FOUND);
  ck_assert_int_eq(be_constant(&v, NULL, "be_ok", BE_NUL_TERMINATED, NULL), BE_E_NOT_FOUND);
  ck_assert_int_eq(be_constant(&v, NULL, "BE_APP_OPTIONS_INIT", BE_NUL_TERMINATED, NULL),
                   BE_E_NOT_FOUND);
  ck_assert_int_eq(be_constant(&v, NULL, "BE_VERSION_CHECK", BE_NUL_TERMINATED, NULL),
                   BE_E_NOT_FOUND);
  ck_assert_int_eq(be_constant(&v, NULL, "BE_API", BE_NUL_TERMINATED, NULL), BE_E_NOT_FOUND);
  ck_assert_int_eq(v, BE_OK);
}
END_TEST

START_TEST(bad_names_get_typed_errors) {
  be_error *e = NULL;
  /* the message names what was asked for; a long name is cut */
  ck_assert_int_eq(be_struct_info(NULL, NULL, "be_widget", BE_NUL_TERMINATED, &e), BE_E_NOT_FOUND);
  ck_assert_str_eq(be_error_message(e), "no public struct named \"be_widget\"");
  be_error_free(e);
  char long_name[200];
  memset(long_name, 'x', sizeof long_name);
  ck_assert_int_eq(be_constant(NULL, NULL, long_name, sizeof long_name, &e), BE_E_NOT_FOUND);
  ck_assert_ptr_nonnull(strstr(be_error_message(e), "constant named \"xxxx"));
  ck_assert_ptr_nonnull(strstr(be_error_message(e), "x\"..."));
  ck_assert_uint_lt(strlen(be_error_message(e)), 100);
  be_error_free(e);
  /* length 0 is the empty name, whatever the pointer (not read) */
  ck_assert_int_eq(be_struct_info(NULL, NULL, (const char *)1, 0, NULL), BE_E_NOT_FOUND);
  ck_assert_int_eq(be_constant(NULL, NULL, NULL, 0, NULL), BE_E_NOT_FOUND);
  /* NULL with a length */
  TU_EXPECT_ERR(BE_E_MISUSE, be_struct_info(NULL, NULL, NULL, 3, &tu_e));
  TU_EXPECT_ERR(BE_E_MISUSE, be_constant(NULL, NULL, NULL, BE_NUL_TERMINATED, &tu_e));
  /* an embedded NUL or invalid UTF-8: a validation error naming "name" */
  const char *bad[] = {"be_app_options\0x", "be_\xff"};
  size_t bad_len[] = {16, 4};
  for (int i = 0; i < 2; i++) {
    ck_assert_int_eq(be_struct_info(NULL, NULL, bad[i], bad_len[i], &e), BE_E_VALIDATION);
    ck_assert_str_eq(be_error_field_name(e, 0), "name");
    be_error_free(e);
    ck_assert_int_eq(be_constant(NULL, NULL, bad[i], bad_len[i], &e), BE_E_VALIDATION);
    ck_assert_str_eq(be_error_field_name(e, 0), "name");
    be_error_free(e);
  }
  /* a text constant needs out_text: its length alone is not its value */
  int64_t v = 5;
  TU_EXPECT_ERR(BE_E_MISUSE, be_constant(&v, NULL, "BE_TESTKIT_PASSWORD", BE_NUL_TERMINATED, &tu_e));
  ck_assert_int_eq(v, 5);
}
END_TEST

Suite *abi_suite(void) {
  Suite *s = suite_create("abi");
  TCase *tc = tcase_create("abi");
  tcase_add_test(tc, every_struct_has_its_c_size_and_version);
  tcase_add_test(tc, structs_enumerate_in_list_order);
  tcase_add_test(tc, every_constant_has_its_macro_value);
  tcase_add_test(tc, constants_enumerate_in_list_order);
  tcase_add_test(tc, lookups_match_whole_names_only);
  tcase_add_test(tc, bad_names_get_typed_errors);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(abi_suite)
