/* SPDX-License-Identifier: MIT */
#include <backend/batch.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "batch.h"
#include "error.h"
#include "params.h"
#include "pg_sql.h"
#include "rows.h"
#include "storage.h"
#include "strbuf.h"
#include "utf8.h"
#include "versioned.h"

/* IN lists are padded up to a power of two (at least MIN_CHUNK) by
 * repeating the last key, so the statement cache sees few distinct texts. */
#define MIN_CHUNK 8

struct be_batch_result {
  be__key_set keys;
  be_rows *rows;
  size_t *first; /* per key */
  size_t *count; /* per key */
};

int be_batch_options_init(be_batch_options *opts, uint32_t version) {
  static const be_batch_options defaults = BE_BATCH_OPTIONS_INIT;
  return be__versioned_init(opts, sizeof *opts, &defaults, version, BE_BATCH_OPTIONS_VERSION);
}

/* tests/bench/bench_batch.c (SQLite 3.40, 1,000 keys x 10 rows, 2 shared
 * cores): IN list 65.0-65.5 ops/s, json_each 62.2-64.9 ops/s; the IN list
 * was as fast or faster in every run and needs no JSON support, so it is
 * the default everywhere. json_each stays selectable (no bind limit, one
 * statement text for any key count). */
int32_t be_batch_default_strategy(const be_driver *driver) {
  /* PostgreSQL: one array parameter, so any number of keys is one
   * statement and one statement text */
  if (driver != NULL && (driver->features & BE_FEATURE_ARRAY_PARAM)) return BE_BATCH_ARRAY;
  return BE_BATCH_IN_LIST;
}

/* Whether name (n bytes) is one of count words, in any case. */
static int word_in(const char *const *words, size_t count, const char *name, size_t n) {
  for (size_t i = 0; i < count; i++)
    if (strlen(words[i]) == n && strncasecmp(name, words[i], n) == 0) return 1;
  return 0;
}

/* Words SQLite and PostgreSQL both read as a value where a column name
 * may stand: unquoted (names are never quoted, see batch.h), a "column"
 * NULL loads NULLs and a key column CURRENT_DATE matches no key, silently.
 * They are refused. */
static int value_keyword(const char *name, size_t n) {
  static const char *const words[] = {"NULL", "TRUE", "FALSE",
                                      "CURRENT_DATE", "CURRENT_TIME", "CURRENT_TIMESTAMP"};
  return word_in(words, sizeof words / sizeof words[0], name, n);
}

/* Words PostgreSQL reads as a value where a column name may stand and
 * SQLite as a name (a column "user" is common). They are written
 * qualified by the table, table.user, which every database reads as the
 * column whatever its driver says of itself. */
static int pg_value_word(const char *name, size_t n) {
  static const char *const words[] = {"USER", "CURRENT_USER", "SESSION_USER", "SYSTEM_USER",
                                      "CURRENT_ROLE", "CURRENT_CATALOG", "CURRENT_SCHEMA",
                                      "LOCALTIME", "LOCALTIMESTAMP"};
  return word_in(words, sizeof words / sizeof words[0], name, n);
}

/* Table names SQLite takes after FROM but refuses before a dot. As a
 * qualifier they are written "cast": quoted and in lower case, the name
 * PostgreSQL gives an unquoted table (SQLite's names ignore case). */
static int dot_keyword(const char *table) {
  static const char *const words[] = {"CAST", "RAISE"};
  return word_in(words, sizeof words / sizeof words[0], table, strlen(table));
}

/* Column name (n bytes) of o's table into b, qualified when needed. */
static void put_column(be__buf *b, const be_batch_options *o, const char *name, size_t n) {
  if (pg_value_word(name, n)) {
    if (dot_keyword(o->table)) {
      char q[8] = "\"";
      size_t k = 1;
      for (const char *t = o->table; *t; t++) q[k++] = (char)tolower((unsigned char)*t);
      q[k++] = '"';
      be__buf_append(b, q, k);
    } else {
      be__buf_puts(b, o->table);
    }
    be__buf_append(b, ".", 1);
  }
  be__buf_append(b, name, n);
}

/* A table name, or with column set a column name (no value keyword). */
static int check_ident(const char *name, const char *field, int column, be_error **err) {
  if (name == NULL) return be__error_field(err, field, "is required");
  if (!be__ident_valid(name))
    return be__error_field(err, field, "must match [A-Za-z_][A-Za-z0-9_]{0,63}");
  if (column && value_keyword(name, strlen(name)))
    return be__error_field(err, field, "is an SQL keyword that reads as a value, not a column");
  return BE_OK;
}

/* "col", "col ASC" or "col DESC"; *dir gets "", " ASC" or " DESC". */
static int check_order_term(const char *term, const char *field, size_t *name_len,
                            const char **dir, be_error **err) {
  if (term == NULL) return be__error_field(err, field, "is required");
  const char *sp = strchr(term, ' ');
  size_t n = sp ? (size_t)(sp - term) : strlen(term);
  char name[65];
  int ok = n > 0 && n < sizeof name;
  if (ok) {
    memcpy(name, term, n);
    name[n] = '\0';
    ok = be__ident_valid(name) && !value_keyword(name, n);
  }
  *dir = "";
  if (ok && sp) {
    if (strcasecmp(sp + 1, "ASC") == 0) *dir = " ASC";
    else if (strcasecmp(sp + 1, "DESC") == 0) *dir = " DESC";
    else ok = 0;
  }
  if (!ok) return be__error_field(err, field, "must be an identifier, optionally followed by ASC or DESC");
  *name_len = n;
  return BE_OK;
}

int be__batch_check_opts(const be_batch_options *opts, be_error **err) {
  if (opts == NULL) return be__error_set(err, BE_E_MISUSE, "opts is NULL");
  if (opts->version != BE_BATCH_OPTIONS_VERSION)
    return be__error_set(err, BE_E_MISUSE, "unknown be_batch_options version %u", opts->version);
  int rc = check_ident(opts->table, "table", 0, err);
  if (rc != BE_OK) return rc;
  if (opts->columns == NULL || opts->column_count == 0)
    return be__error_field(err, "columns", "must name at least one column");
  /* the statement reads the key column too: SQLite's limit is 2000 result
   * columns, and 2000 ORDER BY terms */
  if (opts->column_count > BE_BATCH_MAX_COLUMNS)
    return be__error_field(err, "columns", "%zu columns, more than %d", opts->column_count,
                           BE_BATCH_MAX_COLUMNS);
  char field[48];
  for (size_t i = 0; i < opts->column_count; i++) {
    snprintf(field, sizeof field, "columns[%zu]", i);
    if ((rc = check_ident(opts->columns[i], field, 1, err)) != BE_OK) return rc;
  }
  if ((rc = check_ident(opts->key_column, "key_column", 1, err)) != BE_OK) return rc;
  if (opts->order_by_count > 0 && opts->order_by == NULL)
    return be__error_field(err, "order_by", "is NULL with order_by_count > 0");
  if (opts->order_by_count > BE_BATCH_MAX_COLUMNS)
    return be__error_field(err, "order_by", "%zu terms, more than %d", opts->order_by_count,
                           BE_BATCH_MAX_COLUMNS);
  for (size_t i = 0; i < opts->order_by_count; i++) {
    size_t n;
    const char *dir;
    snprintf(field, sizeof field, "order_by[%zu]", i);
    if ((rc = check_order_term(opts->order_by[i], field, &n, &dir, err)) != BE_OK) return rc;
  }
  if (opts->relation != BE_BATCH_MANY && opts->relation != BE_BATCH_ONE)
    return be__error_field(err, "relation", "must be BE_BATCH_MANY or BE_BATCH_ONE");
  if (opts->strategy < BE_BATCH_AUTO || opts->strategy > BE_BATCH_ARRAY)
    return be__error_field(err, "strategy", "must be a BE_BATCH_* strategy");
  if (opts->max_chunk < 0) return be__error_field(err, "max_chunk", "must be >= 0");
  return BE_OK;
}

/* The SQL up to the key list: SELECT ... WHERE [(where) AND ]key */
static void sql_head(be__buf *b, const be_batch_options *o) {
  be__buf_puts(b, "SELECT ");
  for (size_t i = 0; i < o->column_count; i++) {
    put_column(b, o, o->columns[i], strlen(o->columns[i]));
    be__buf_puts(b, ", ");
  }
  put_column(b, o, o->key_column, strlen(o->key_column));
  be__buf_puts(b, " FROM ");
  be__buf_puts(b, o->table);
  be__buf_puts(b, " WHERE ");
  if (o->where && o->where[0]) {
    be__buf_puts(b, "(");
    be__buf_puts(b, o->where);
    be__buf_puts(b, ") AND ");
  }
  put_column(b, o, o->key_column, strlen(o->key_column));
}

static void sql_tail(be__buf *b, const be_batch_options *o) {
  be__buf_puts(b, ")");
  for (size_t i = 0; i < o->order_by_count; i++) {
    size_t n;
    const char *dir;
    check_order_term(o->order_by[i], "", &n, &dir, NULL);
    be__buf_puts(b, i ? ", " : " ORDER BY ");
    put_column(b, o, o->order_by[i], n);
    be__buf_puts(b, dir);
  }
}

static void placeholder(be__buf *b, int dollar, int32_t index) {
  if (dollar) be__buf_printf(b, "$%d", (int)index);
  else be__buf_append(b, "?", 1);
}

/* 1 for a strategy that sends every key in one parameter. */
static int one_param(int32_t strategy) {
  return strategy == BE_BATCH_JSON_EACH || strategy == BE_BATCH_ARRAY;
}

typedef struct run {
  be_conn *conn;
  const be_batch_options *o;
  be__key_set *keys;
  int32_t nwhere;
  int dollar;
  be_rows *rows;  /* each row's group is its key's index */
  size_t from, n; /* the keys of the statement being read */
} run;

/* 1 when key index g is one the statement being read was given. The
 * database compares by its own rules ("05" = 5 in an INTEGER column, "A"
 * = "a" under NOCASE), so another chunk's key may match a row too: only
 * the chunk of the key that matches it byte for byte collects it, and a
 * row is in its group once whatever the chunk size. */
static int in_chunk(const run *r, size_t g) { return g >= r->from && g - r->from < r->n; }

/* The key index of the current row's key (column kc), or 0 when it is
 * not a key of this statement. An index walk returns a key's rows
 * together, so *last remembers the last int key found. */
static int find_key(const run *r, be_stmt *stmt, const be__row_reader *rd, int32_t kc,
                    int64_t *last_key, size_t *last, size_t *g) {
  if (r->keys->type != BE_TYPE_INT) {
    size_t len = 0;
    const char *t = be_stmt_column_text(stmt, kc, &len);
    return t && be__key_set_find_text(r->keys, t, len, g) && in_chunk(r, *g);
  }
  int64_t key = kc < rd->ncols ? rd->int64(rd->native, kc) : 0;
  if (*last != SIZE_MAX && key == *last_key) {
    *g = *last;
    return 1;
  }
  if (!be__key_set_find_int(r->keys, key, g) || !in_chunk(r, *g)) return 0;
  *last_key = key;
  *last = *g;
  return 1;
}

/* Read the rows of one prepared and bound statement. */
static int collect(run *r, be_stmt *stmt, be_error **err) {
  int32_t kc = (int32_t)r->o->column_count;
  int rc = BE_OK;
  if (r->rows == NULL && (rc = be__rows_new(&r->rows, kc, r->o->columns, NULL, err)) != BE_OK) return rc;
  be__row_reader rd = {0};
  int64_t last_key = 0;
  size_t last = SIZE_MAX;
  for (int first = 1;; first = 0) {
    int s = be_stmt_step(stmt, err);
    if (s == BE_DONE) return BE_OK;
    if (s != BE_ROW) return s < 0 ? s : be__error_set(err, BE_E_INTERNAL, "unexpected step result %d", s);
    if (first) be__stmt_row_reader(stmt, &rd);
    size_t g;
    if (!find_key(r, stmt, &rd, kc, &last_key, &last, &g)) continue;
    if ((rc = be__rows_add(r->rows, &rd, stmt, (uint32_t)g, err)) != BE_OK) return rc;
  }
}

/* Keys [from, from+n) as one JSON array text. */
static void json_keys(be__buf *b, const be__key_set *k, size_t from, size_t n) {
  be__buf_append(b, "[", 1);
  for (size_t i = from; i < from + n; i++) {
    if (i > from) be__buf_append(b, ",", 1);
    if (k->type == BE_TYPE_INT) be__buf_printf(b, "%lld", (long long)k->ints[i]);
    else be__buf_json_string(b, k->texts[i], k->lens[i]);
  }
  be__buf_append(b, "]", 1);
}

/* Keys [from, from+n) as a PostgreSQL array literal: {1,2} or {"a","b"},
 * text elements quoted with '"' and '\\' escaped (so NULL, braces,
 * commas and spaces are plain text). */
static void array_keys(be__buf *b, const be__key_set *k, size_t from, size_t n) {
  be__buf_append(b, "{", 1);
  for (size_t i = from; i < from + n; i++) {
    if (i > from) be__buf_append(b, ",", 1);
    if (k->type == BE_TYPE_INT) {
      be__buf_printf(b, "%lld", (long long)k->ints[i]);
      continue;
    }
    be__buf_append(b, "\"", 1);
    const char *t = k->texts[i];
    for (size_t j = 0, start = 0; j <= k->lens[i]; j++) {
      if (j < k->lens[i] && t[j] != '"' && t[j] != '\\') continue;
      be__buf_append(b, t + start, j - start);
      if (j < k->lens[i]) be__buf_append(b, "\\", 1);
      start = j;
    }
    be__buf_append(b, "\"", 1);
  }
  be__buf_append(b, "}", 1);
}

/* Run keys [from, from+n) as one statement; sql has room for `slots` keys
 * (the last key is repeated to fill the rounded-up list). */
static int run_chunk(run *r, const char *sql, int32_t strategy, size_t from, size_t n,
                     size_t slots, be_error **err) {
  be_stmt *stmt = NULL;
  be__buf json;
  be__buf_init(&json);
  int rc = be_conn_prepare(&stmt, r->conn, sql, err);
  if (rc != BE_OK) return rc;
  rc = be__params_bind(r->o->where_params, stmt, 1, err);
  int32_t idx = r->nwhere + 1;
  be__key_set *k = r->keys;
  if (rc == BE_OK && one_param(strategy)) {
    if (strategy == BE_BATCH_JSON_EACH) json_keys(&json, k, from, n);
    else array_keys(&json, k, from, n);
    rc = json.failed ? be__error_oom(err) : be_stmt_bind_text(stmt, idx, json.data, json.len, err);
  } else {
    for (size_t s = 0; rc == BE_OK && s < slots; s++) {
      size_t i = from + (s < n ? s : n - 1);
      if (k->type == BE_TYPE_INT) rc = be_stmt_bind_int64(stmt, idx + (int32_t)s, k->ints[i], err);
      else rc = be_stmt_bind_text(stmt, idx + (int32_t)s, k->texts[i], k->lens[i], err);
    }
  }
  /* One parameter past the keys must not exist: if it does, where has a
   * placeholder that where_params left unfilled, and every key was bound
   * one place early (the last one left out). */
  int32_t past = idx + (one_param(strategy) ? 1 : (int32_t)slots);
  if (rc == BE_OK && be_stmt_bind_null(stmt, past, NULL) == BE_OK)
    rc = be__error_field(err, "where_params", "fewer values than the where clause has placeholders");
  r->from = from;
  r->n = n;
  if (rc == BE_OK) rc = collect(r, stmt, err);
  be_stmt_finalize(stmt);
  be__buf_free(&json);
  return rc;
}

static size_t round_up_pow2(size_t n, size_t cap) {
  size_t p = MIN_CHUNK;
  while (p < n) p *= 2;
  return p < cap ? p : cap;
}

/* n '?' placeholders separated by commas, appended 64 at a time. */
static void question_marks(be__buf *b, size_t n) {
  static const char run64[] = "?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,"
                              "?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,";
  for (size_t done = 0; done < n; done += 64) {
    size_t k = n - done < 64 ? n - done : 64;
    /* k marks, and the comma after the last one unless it ends the list */
    be__buf_append(b, run64, 2 * k - (done + k == n));
  }
}

/* Build the statement text for `slots` keys. */
static int chunk_sql(run *r, int32_t strategy, size_t slots, char **out, be_error **err) {
  be__buf b;
  be__buf_init(&b);
  sql_head(&b, r->o);
  if (strategy == BE_BATCH_JSON_EACH) {
    be__buf_puts(&b, " IN (SELECT value FROM json_each(");
    placeholder(&b, r->dollar, r->nwhere + 1);
    be__buf_puts(&b, ")");
  } else if (strategy == BE_BATCH_ARRAY) {
    be__buf_puts(&b, " = ANY(");
    placeholder(&b, r->dollar, r->nwhere + 1);
  } else {
    be__buf_puts(&b, " IN (");
    question_marks(&b, r->dollar ? 0 : slots);
    for (size_t s = 0; r->dollar && s < slots; s++) {
      if (s) be__buf_append(&b, ",", 1);
      placeholder(&b, 1, r->nwhere + 1 + (int32_t)s);
    }
  }
  sql_tail(&b, r->o);
  return be__buf_detach(&b, out, NULL) == BE_OK ? BE_OK : be__error_oom(err);
}

/* With $N placeholders the where's own must be exactly where_params'
 * ($1..$nwhere): one more would be the first key's $N, shared, and every
 * key shifted. (With ? placeholders run_chunk tells the same by binding
 * one past the keys.) */
static int check_dollar_where(const be_batch_options *o, size_t nwhere, be_error **err) {
  if (o->where == NULL) return BE_OK;
  char *sql = NULL;
  int32_t n = 0;
  int rc = be__pg_translate(&sql, &n, NULL, o->where, strlen(o->where), err);
  be__free(sql);
  if (rc == BE_OK && (size_t)n != nwhere)
    rc = be__error_field(err, "where_params", "%zu values for a where clause with %d placeholders",
                         nwhere, (int)n);
  return rc;
}

static int run_all(run *r, int32_t strategy, size_t chunk, be_error **err) {
  char *sql = NULL;
  size_t sql_slots = 0;
  int rc = BE_OK;
  for (size_t from = 0; rc == BE_OK && from < r->keys->n; from += chunk) {
    size_t n = r->keys->n - from < chunk ? r->keys->n - from : chunk;
    size_t slots = one_param(strategy) ? 1 : round_up_pow2(n, chunk);
    if (sql == NULL || slots != sql_slots) {
      be__free(sql);
      sql = NULL;
      if ((rc = chunk_sql(r, strategy, slots, &sql, err)) != BE_OK) break;
      sql_slots = slots;
    }
    rc = run_chunk(r, sql, strategy, from, n, slots, err);
  }
  be__free(sql);
  return rc;
}

/* Group rows by key with a stable counting sort, so groups follow the
 * caller's key order and rows keep the statement's order inside a group. */
static int group_rows(run *r, be_batch_result *res, be_error **err) {
  size_t nk = r->keys->n;
  res->first = be__malloc((nk ? nk : 1) * sizeof *res->first);
  res->count = be__malloc((nk ? nk : 1) * sizeof *res->count);
  if (res->first == NULL || res->count == NULL) return be__error_oom(err);
  int rc = be__rows_finish(r->rows, nk, res->first, res->count, err);
  for (size_t k = 0; rc == BE_OK && r->o->relation == BE_BATCH_ONE && k < nk; k++)
    if (res->count[k] > 1)
      rc = be__error_set(err, BE_E_CONFLICT, "one-to-one batch load: a key matched %zu rows in %s",
                         res->count[k], r->o->table);
  return rc;
}

int be__batch_run(be_batch_result **out, be_conn *conn, const be_batch_options *opts,
                  be__key_set *keys, be_error **err) {
  run r = {conn, opts, keys, 0, 0, NULL, 0, 0};
  be_batch_result *res = NULL;
  const be_driver *drv = be_conn_driver(conn);
  int rc = be__batch_check_opts(opts, err);
  if (rc != BE_OK) goto fail;
  if (drv == NULL) {
    rc = be__error_set(err, BE_E_MISUSE, "connection has no driver");
    goto fail;
  }
  int32_t strategy = opts->strategy == BE_BATCH_AUTO ? be_batch_default_strategy(drv) : opts->strategy;
  if ((strategy == BE_BATCH_JSON_EACH && !(drv->features & BE_FEATURE_JSON_EACH)) ||
      (strategy == BE_BATCH_ARRAY && !(drv->features & BE_FEATURE_ARRAY_PARAM))) {
    rc = be__error_set(err, BE_E_UNSUPPORTED, "driver %s has no %s", drv->name ? drv->name : "?",
                       strategy == BE_BATCH_ARRAY ? "array parameters" : "json_each");
    goto fail;
  }
  r.dollar = drv->placeholder_style == BE_PLACEHOLDER_DOLLAR;
  size_t nwhere = be_params_count(opts->where_params);
  int32_t limit = be_conn_bind_limit(conn);
  if (limit <= 0 || nwhere >= (size_t)limit) {
    rc = be__error_field(err, "where_params", "leave no room for keys under the bind limit %d", (int)limit);
    goto fail;
  }
  if (r.dollar && (rc = check_dollar_where(opts, nwhere, err)) != BE_OK) goto fail;
  r.nwhere = (int32_t)nwhere;
  size_t chunk = one_param(strategy) ? SIZE_MAX : (size_t)limit - nwhere;
  if (opts->max_chunk > 0 && (size_t)opts->max_chunk < chunk) chunk = (size_t)opts->max_chunk;
  if ((res = be__calloc(1, sizeof *res)) == NULL) {
    rc = be__error_oom(err);
    goto fail;
  }
  if (keys->n > 0) rc = run_all(&r, strategy, chunk, err);
  if (rc == BE_OK && r.rows == NULL) /* no statement ran */
    rc = be__rows_new(&r.rows, (int32_t)opts->column_count, opts->columns, NULL, err);
  if (rc != BE_OK) goto fail;
  if ((rc = group_rows(&r, res, err)) != BE_OK) goto fail;
  res->rows = r.rows;
  res->keys = *keys;
  be__key_set_init(keys, keys->type);
  *out = res;
  return BE_OK;
fail:
  be_rows_free(r.rows);
  be_batch_result_free(res);
  be__key_set_free(keys);
  return rc;
}

static int load_common(be_batch_result **out, be_conn *conn, const be_batch_options *opts,
                       be_error **err) {
  if (out == NULL) return be__error_set(err, BE_E_MISUSE, "out is NULL");
  *out = NULL;
  if (conn == NULL) return be__error_set(err, BE_E_MISUSE, "conn is NULL");
  return be__batch_check_opts(opts, err);
}

int be_batch_load_int64(be_batch_result **out, be_conn *conn, const be_batch_options *opts,
                        const int64_t *keys, size_t n_keys, be_error **err) {
  int rc = load_common(out, conn, opts, err);
  if (rc != BE_OK) return rc;
  if (keys == NULL && n_keys > 0) return be__error_set(err, BE_E_MISUSE, "keys is NULL");
  be__key_set m;
  be__key_set_init(&m, BE_TYPE_INT);
  for (size_t i = 0; i < n_keys; i++) {
    if (be__key_set_add_int(&m, keys[i], NULL) < 0) {
      be__key_set_free(&m);
      return be__error_oom(err);
    }
  }
  return be__batch_run(out, conn, opts, &m, err);
}

int be_batch_load_text(be_batch_result **out, be_conn *conn, const be_batch_options *opts,
                       const char *const *keys, const size_t *key_lens, size_t n_keys,
                       be_error **err) {
  int rc = load_common(out, conn, opts, err);
  if (rc != BE_OK) return rc;
  if (keys == NULL && n_keys > 0) return be__error_set(err, BE_E_MISUSE, "keys is NULL");
  be__key_set m;
  be__key_set_init(&m, BE_TYPE_TEXT);
  for (size_t i = 0; i < n_keys; i++) {
    size_t len = key_lens ? key_lens[i] : BE_NUL_TERMINATED;
    const char *key = keys[i] ? be__text_arg(keys[i], &len) : NULL;
    if (key == NULL || !be__utf8_valid(key, len)) {
      be__key_set_free(&m);
      char field[40];
      snprintf(field, sizeof field, "keys[%zu]", i);
      return be__error_field(err, field, "must be UTF-8 text without NUL bytes");
    }
    if (be__key_set_add_text(&m, key, len, NULL) < 0) {
      be__key_set_free(&m);
      return be__error_oom(err);
    }
  }
  return be__batch_run(out, conn, opts, &m, err);
}

void be_batch_result_free(be_batch_result *result) {
  if (result == NULL) return;
  be__key_set_free(&result->keys);
  be_rows_free(result->rows);
  be__free(result->first);
  be__free(result->count);
  be__free(result);
}

const be_rows *be_batch_result_rows(const be_batch_result *result) {
  return result ? result->rows : NULL;
}

size_t be_batch_result_key_count(const be_batch_result *result) {
  return result ? result->keys.n : 0;
}

int64_t be_batch_result_key_int64(const be_batch_result *result, size_t i) {
  if (result == NULL || i >= result->keys.n || result->keys.type != BE_TYPE_INT) return 0;
  return result->keys.ints[i];
}

const char *be_batch_result_key_text(const be_batch_result *result, size_t i, size_t *len) {
  int ok = result && i < result->keys.n && result->keys.type == BE_TYPE_TEXT;
  if (len) *len = ok ? result->keys.lens[i] : 0;
  return ok ? result->keys.texts[i] : NULL;
}

size_t be_batch_result_group(const be_batch_result *result, size_t i, size_t *first) {
  int ok = result && i < result->keys.n;
  if (first) *first = ok ? result->first[i] : 0;
  return ok ? result->count[i] : 0;
}

int be__batch_result_find(const be_batch_result *r, int32_t type, int64_t ikey,
                          const char *tkey, size_t len, size_t *index) {
  if (r == NULL || r->keys.type != type) return 0;
  return type == BE_TYPE_INT ? be__key_set_find_int(&r->keys, ikey, index)
                             : be__key_set_find_text(&r->keys, tkey, len, index);
}

size_t be_batch_result_find_int64(const be_batch_result *result, int64_t key, size_t *first) {
  size_t i = SIZE_MAX;
  be__batch_result_find(result, BE_TYPE_INT, key, NULL, 0, &i);
  return be_batch_result_group(result, i, first);
}

size_t be_batch_result_find_text(const be_batch_result *result, const char *key, size_t len,
                                 size_t *first) {
  size_t i = SIZE_MAX;
  if (key) key = be__text_arg(key, &len);
  if (key) be__batch_result_find(result, BE_TYPE_TEXT, 0, key, len, &i);
  return be_batch_result_group(result, i, first);
}
