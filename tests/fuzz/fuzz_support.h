/* SPDX-License-Identifier: MIT */
/* What the libFuzzer harnesses (tests/fuzz/fuzz_*.c) share: reading typed
 * values off the fuzzer's bytes, a strict JSON validator, the checks that
 * abort with a message (libFuzzer then keeps the input as a crash), and a
 * seeded test app made once per process and put back to its seeded state
 * before each input. tests/README.md ("fuzz") says how they run. */
#ifndef BE_FUZZ_SUPPORT_H
#define BE_FUZZ_SUPPORT_H

#include <backend/backend.h>
#include <stddef.h>
#include <stdint.h>

/* The bytes left of the fuzzer's input. Reads past the end give zeros and
 * empty strings, so every input decodes to something. */
typedef struct fz_in {
  const uint8_t *p;
  size_t n;
} fz_in;

uint8_t fz_u8(fz_in *in);
uint16_t fz_u16(fz_in *in);
uint32_t fz_u32(fz_in *in);
int64_t fz_i64(fz_in *in);
/* A length-prefixed byte string: a length of at most max (one byte when
 * max < 256, else two), then that many bytes (fewer when the input ends).
 * *out points into the input; the length is returned. */
size_t fz_bytes(fz_in *in, const char **out, size_t max);

/* 1 when s[0..n) is one JSON value (RFC 8259) and nothing else but white
 * space: valid UTF-8 (no overlong forms, no surrogates), no raw control
 * characters in strings, escapes well formed (a \u high surrogate followed
 * by a low one), numbers as the grammar says, nesting at most 512 deep. */
int fz_json_valid(const char *s, size_t n);

/* The decoded value of the string member `key` of the top-level object
 * of a valid JSON text, malloc'd and NUL-terminated (*out_len its bytes);
 * NULL when there is no such member or it is not a string. */
char *fz_json_member_string(const char *s, size_t n, const char *key, size_t *out_len);

/* 1 when s[0..n) is valid UTF-8 (as fz_json_valid() judges it) without
 * NUL bytes: the texts the library accepts. */
int fz_text_ok(const char *s, size_t n);

/* Abort with a message when cond is false (libFuzzer records the input). */
#define FZ_CHECK(cond, ...)                                       \
  do {                                                            \
    if (!(cond)) fz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); \
  } while (0)
_Noreturn void fz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
  __attribute__((format(printf, 4, 5)));

/* rc must be one of the codes listed (ended by 1, which no call returns),
 * and err must hold rc's code when rc is an error (or be NULL when rc is
 * BE_OK). Frees err. what names the call in the message. */
void fz_expect(const char *what, int rc, be_error *err, ...);

/* The process's seeded app: a test kit (in-memory database, fake clock,
 * cheap password hashing) with `users` users (with passwords when
 * passwords is 1), made on the first call and returned after. Logging is
 * turned off. */
be_testkit *fz_kit(int32_t users, int passwords);

/* Put the kit's database back to what it held right after seeding (every
 * table's rows; the permission epoch only grows, so cached decisions are
 * never served again), empty the app's cache and set the fake wall clock
 * back to where it started. */
void fz_kit_reset(be_testkit *kit);

#endif
