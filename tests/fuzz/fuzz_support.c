/* SPDX-License-Identifier: MIT */
#include "fuzz_support.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The library's table prefix (be_app_options.table_prefix; the kit keeps
 * the default). */
#define FZ_PREFIX "be_"

/* ---- reading the input ---- */

uint8_t fz_u8(fz_in *in) {
  if (in->n == 0) return 0;
  in->n--;
  return *in->p++;
}

uint16_t fz_u16(fz_in *in) {
  uint16_t hi = fz_u8(in);
  return (uint16_t)(hi << 8 | fz_u8(in));
}

uint32_t fz_u32(fz_in *in) {
  uint32_t hi = fz_u16(in);
  return hi << 16 | fz_u16(in);
}

int64_t fz_i64(fz_in *in) {
  uint64_t hi = fz_u32(in);
  return (int64_t)(hi << 32 | fz_u32(in));
}

size_t fz_bytes(fz_in *in, const char **out, size_t max) {
  size_t len = max < 256 ? fz_u8(in) : fz_u16(in);
  if (len > max) len %= max + 1;
  if (len > in->n) len = in->n;
  *out = (const char *)in->p;
  in->p += len;
  in->n -= len;
  return len;
}

/* ---- failing ---- */

void fz_fail(const char *file, int line, const char *cond, const char *fmt, ...) {
  fprintf(stderr, "\n%s:%d: check failed: %s\n  ", file, line, cond);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  abort();
}

void fz_expect(const char *what, int rc, be_error *err, ...) {
  va_list ap;
  va_start(ap, err);
  int ok = 0;
  for (int code = va_arg(ap, int); code != 1; code = va_arg(ap, int))
    if (code == rc) ok = 1;
  va_end(ap);
  FZ_CHECK(ok, "%s returned %d (%s): %s", what, rc, be_code_name(rc),
           err ? be_error_message(err) : "no error object");
  if (rc == BE_OK) FZ_CHECK(err == NULL, "%s succeeded but set an error", what);
  else if (err != NULL)
    FZ_CHECK(be_error_code(err) == rc, "%s returned %d with an error of code %d", what, rc,
             be_error_code(err));
  be_error_free(err);
}

/* ---- strict JSON ---- */

typedef struct jp {
  const unsigned char *s;
  size_t n, i;
  int depth;
  /* when out is set, a string's decoded bytes go there */
  char *out;
  size_t out_len;
} jp;

static void ws(jp *p) {
  while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' ||
                         p->s[p->i] == '\r'))
    p->i++;
}

static void emit(jp *p, uint32_t cp) {
  if (p->out == NULL) return;
  unsigned char *o = (unsigned char *)p->out + p->out_len;
  if (cp < 0x80) o[0] = (unsigned char)cp, p->out_len += 1;
  else if (cp < 0x800) o[0] = 0xC0 | cp >> 6, o[1] = 0x80 | (cp & 0x3F), p->out_len += 2;
  else if (cp < 0x10000)
    o[0] = 0xE0 | cp >> 12, o[1] = 0x80 | (cp >> 6 & 0x3F), o[2] = 0x80 | (cp & 0x3F), p->out_len += 3;
  else
    o[0] = 0xF0 | cp >> 18, o[1] = 0x80 | (cp >> 12 & 0x3F), o[2] = 0x80 | (cp >> 6 & 0x3F),
    o[3] = 0x80 | (cp & 0x3F), p->out_len += 4;
}

/* One UTF-8 sequence at p->i (the lead byte >= 0x80): its code point, or
 * -1 when malformed, overlong, a surrogate or above U+10FFFF. */
static int64_t utf8_seq(jp *p) {
  unsigned char c = p->s[p->i];
  int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3
                          : c >= 0xC0 ? 2
                                      : 0;
  if (len == 0 || c > 0xF4 || p->i + (size_t)len > p->n) return -1;
  uint32_t cp = c & (0x7F >> len);
  for (int k = 1; k < len; k++) {
    unsigned char cc = p->s[p->i + (size_t)k];
    if ((cc & 0xC0) != 0x80) return -1;
    cp = cp << 6 | (cc & 0x3F);
  }
  static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
  p->i += (size_t)len;
  return cp;
}

static int hex4(jp *p, uint32_t *out) {
  if (p->i + 4 > p->n) return 0;
  uint32_t v = 0;
  for (int k = 0; k < 4; k++) {
    unsigned char c = p->s[p->i++];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                                  : -1;
    if (d < 0) return 0;
    v = v << 4 | (uint32_t)d;
  }
  *out = v;
  return 1;
}

static int escape(jp *p) {
  if (p->i >= p->n) return 0;
  unsigned char c = p->s[p->i++];
  const char *simple = "\"\\/bfnrt", *value = "\"\\/\b\f\n\r\t";
  const char *at = c ? strchr(simple, c) : NULL;
  if (at != NULL) {
    emit(p, (unsigned char)value[at - simple]);
    return 1;
  }
  uint32_t cp, lo;
  if (c != 'u' || !hex4(p, &cp)) return 0;
  if (cp >= 0xDC00 && cp <= 0xDFFF) return 0; /* a lone low surrogate */
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    if (p->i + 2 > p->n || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u') return 0;
    p->i += 2;
    if (!hex4(p, &lo) || lo < 0xDC00 || lo > 0xDFFF) return 0;
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
  }
  emit(p, cp);
  return 1;
}

static int string(jp *p) {
  p->i++; /* the opening quote */
  while (p->i < p->n) {
    unsigned char c = p->s[p->i];
    if (c == '"') {
      p->i++;
      return 1;
    }
    if (c < 0x20) return 0;
    if (c == '\\') {
      p->i++;
      if (!escape(p)) return 0;
    } else if (c < 0x80) {
      emit(p, c);
      p->i++;
    } else {
      int64_t cp = utf8_seq(p);
      if (cp < 0) return 0;
      emit(p, (uint32_t)cp);
    }
  }
  return 0;
}

static int digits(jp *p) {
  size_t start = p->i;
  while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
  return p->i > start;
}

static int number(jp *p) {
  if (p->s[p->i] == '-') p->i++;
  if (p->i < p->n && p->s[p->i] == '0') p->i++;
  else if (p->i >= p->n || p->s[p->i] < '1' || p->s[p->i] > '9' || !digits(p)) return 0;
  if (p->i < p->n && p->s[p->i] == '.') {
    p->i++;
    if (!digits(p)) return 0;
  }
  if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
    p->i++;
    if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
    if (!digits(p)) return 0;
  }
  return 1;
}

static int literal(jp *p, const char *word) {
  size_t len = strlen(word);
  if (p->n - p->i < len || memcmp(p->s + p->i, word, len) != 0) return 0;
  p->i += len;
  return 1;
}

static int value(jp *p);

/* An object or an array (close is '}' or ']'). */
static int container(jp *p, char close) {
  if (++p->depth > 512) return 0;
  p->i++;
  ws(p);
  if (p->i < p->n && p->s[p->i] == close) {
    p->i++;
    p->depth--;
    return 1;
  }
  for (;;) {
    ws(p);
    if (close == '}') {
      if (p->i >= p->n || p->s[p->i] != '"' || !string(p)) return 0;
      ws(p);
      if (p->i >= p->n || p->s[p->i++] != ':') return 0;
    }
    if (!value(p)) return 0;
    ws(p);
    if (p->i >= p->n) return 0;
    char c = (char)p->s[p->i++];
    if (c == close) break;
    if (c != ',') return 0;
  }
  p->depth--;
  return 1;
}

static int value(jp *p) {
  ws(p);
  if (p->i >= p->n) return 0;
  switch (p->s[p->i]) {
    case '{': return container(p, '}');
    case '[': return container(p, ']');
    case '"': return string(p);
    case 't': return literal(p, "true");
    case 'f': return literal(p, "false");
    case 'n': return literal(p, "null");
    default: return (p->s[p->i] == '-' || (p->s[p->i] >= '0' && p->s[p->i] <= '9')) && number(p);
  }
}

int fz_json_valid(const char *s, size_t n) {
  jp p = {(const unsigned char *)s, n, 0, 0, NULL, 0};
  if (!value(&p)) return 0;
  ws(&p);
  return p.i == n;
}

char *fz_json_member_string(const char *s, size_t n, const char *key, size_t *out_len) {
  jp p = {(const unsigned char *)s, n, 0, 0, NULL, 0};
  ws(&p);
  if (p.i >= n || s[p.i] != '{') return NULL;
  p.i++;
  char *buf = malloc(n + 1);
  FZ_CHECK(buf != NULL, "out of memory");
  for (;;) {
    ws(&p);
    if (p.i >= n || s[p.i] != '"') break;
    p.out = buf, p.out_len = 0;
    if (!string(&p)) break;
    int match = p.out_len == strlen(key) && memcmp(buf, key, p.out_len) == 0;
    ws(&p);
    if (p.i >= n || s[p.i++] != ':') break;
    ws(&p);
    p.out = match && p.i < n && s[p.i] == '"' ? buf : NULL;
    p.out_len = 0;
    if (!value(&p)) break;
    if (match && p.out != NULL) {
      buf[p.out_len] = '\0';
      if (out_len != NULL) *out_len = p.out_len;
      return buf;
    }
    ws(&p);
    if (p.i >= n || s[p.i++] != ',') break;
  }
  free(buf);
  return NULL;
}

int fz_text_ok(const char *s, size_t n) {
  jp p = {(const unsigned char *)s, n, 0, 0, NULL, 0};
  while (p.i < n) {
    if (p.s[p.i] == 0) return 0;
    if (p.s[p.i] < 0x80) p.i++;
    else if (utf8_seq(&p) < 0) return 0;
  }
  return 1;
}

/* ---- the seeded app ---- */

static be_testkit *kit_once;
static char **kit_tables;
static size_t kit_table_count;

static void must(int rc, be_error *err, const char *what) {
  FZ_CHECK(rc == BE_OK, "%s: %s", what, err ? be_error_message(err) : be_code_name(rc));
}

static int snapshot_tx(be_conn *conn, void *ud, be_error **err) {
  (void)ud;
  be_rows *rows = NULL;
  int rc = be_rows_query(&rows, conn,
                         "SELECT name FROM sqlite_master WHERE type = 'table'"
                         " AND name NOT LIKE 'sqlite_%' AND name <> '" FZ_PREFIX "schema_migrations'"
                         " AND name NOT IN ('" FZ_PREFIX "auth_epoch', '" FZ_PREFIX "password_hash_params')"
                         " ORDER BY name = '" FZ_PREFIX "users' DESC, name = '" FZ_PREFIX "roles' DESC, name",
                         NULL, err);
  if (rc != BE_OK) return rc;
  /* Parents first: deleting a parent's rows cascades to its children,
   * which are put back after it. password_hash_params last: the users
   * triggers count into it. */
  kit_table_count = be_rows_count(rows);
  kit_tables = calloc(kit_table_count + 2, sizeof *kit_tables);
  for (size_t i = 0; i < kit_table_count; i++) kit_tables[i] = strdup(be_rows_text(rows, i, 0, NULL));
  kit_tables[kit_table_count++] = strdup(FZ_PREFIX "password_hash_params");
  kit_tables[kit_table_count++] = strdup("sqlite_sequence");
  be_rows_free(rows);
  char sql[256];
  for (size_t i = 0; i < kit_table_count && rc == BE_OK; i++) {
    snprintf(sql, sizeof sql, "CREATE TABLE fuzz_seed_%s AS SELECT * FROM %s", kit_tables[i],
             kit_tables[i]);
    rc = be_conn_exec(conn, sql, err);
  }
  return rc;
}

be_testkit *fz_kit(int32_t users, int passwords) {
  if (kit_once != NULL) return kit_once;
  be_log_set_handler(NULL, NULL, BE_LOG_OFF, NULL);
  be_testkit_options o = BE_TESTKIT_OPTIONS_INIT;
  o.users = users;
  o.no_passwords = !passwords;
  be_error *err = NULL;
  must(be_testkit_new(&kit_once, &o, &err), err, "be_testkit_new");
  must(be_pool_tx_run(be_app_pool(be_testkit_app(kit_once)), BE_TX_IMMEDIATE, snapshot_tx, NULL,
                      &err),
       err, "snapshot");
  return kit_once;
}

static int restore_tx(be_conn *conn, void *ud, be_error **err) {
  (void)ud;
  int rc = be_conn_exec(conn, "PRAGMA defer_foreign_keys = ON", err);
  char sql[256];
  for (size_t i = 0; i < kit_table_count && rc == BE_OK; i++) {
    snprintf(sql, sizeof sql, "DELETE FROM %s; INSERT INTO %s SELECT * FROM fuzz_seed_%s",
             kit_tables[i], kit_tables[i], kit_tables[i]);
    rc = be_conn_exec(conn, sql, err);
  }
  if (rc == BE_OK) rc = be_conn_exec(conn, "UPDATE " FZ_PREFIX "auth_epoch SET epoch = epoch + 1", err);
  return rc;
}

void fz_kit_reset(be_testkit *kit) {
  be_app *app = be_testkit_app(kit);
  be_error *err = NULL;
  must(be_pool_tx_run(be_app_pool(app), BE_TX_IMMEDIATE, restore_tx, NULL, &err), err,
       "restore");
  must(be_cache_clear(be_app_cache(app), &err), err, "be_cache_clear");
  must(be_clock_set_wall(be_testkit_clock(kit), BE_TESTKIT_START_WALL_MS * 1000000, &err), err,
       "be_clock_set_wall");
}
