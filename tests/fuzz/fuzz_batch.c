/* SPDX-License-Identifier: MIT */
/* Batch loads (backend/batch.h) with arbitrary int64 and text keys,
 * duplicates included, and options from the input (strategy, chunk size,
 * relation, ORDER BY), over a table whose contents the harness knows.
 * Checked: bad options and bad text keys (not UTF-8, a NUL inside) are
 * BE_E_VALIDATION; BE_BATCH_ONE is BE_E_CONFLICT exactly when a key has
 * two rows; otherwise the result has one group per distinct key, in
 * first-appearance order, each holding exactly the key's rows (count,
 * key column, ORDER BY order), and find_* agree with the groups. */
#include "fuzz_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INT_KEYS 40
#define MAX_KEYS 96

static be_conn *conn;
static const char *text_pool[] = {"t0", "t1", "t7", "o'k", "\xc3\xa9", "", "T1", "t1 ", "t39"};

/* Rows in the table: key k (0..INT_KEYS-1) has k % 4 rows, text key
 * "t<k>", v = 100 * k + row; "o'k" and U+00E9 have 2 rows each (k 1000,
 * 1001). */
static size_t int_rows(int64_t k) {
  if (k == 1000 || k == 1001) return 2;
  return k >= 0 && k < INT_KEYS ? (size_t)(k % 4) : 0;
}

static size_t text_rows(const char *t, size_t n) {
  if ((n == 3 && memcmp(t, "o'k", 3) == 0) || (n == 2 && memcmp(t, "\xc3\xa9", 2) == 0)) return 2;
  if (n < 2 || n > 3 || t[0] != 't') return 0;
  int k = 0;
  for (size_t i = 1; i < n; i++) {
    if (t[i] < '0' || t[i] > '9' || (i == 1 && t[i] == '0' && n > 2)) return 0;
    k = k * 10 + t[i] - '0';
  }
  return int_rows(k);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  be_error *err = NULL;
  int rc = be_conn_open(&conn, be_sqlite_driver(), ":memory:", &err);
  FZ_CHECK(rc == BE_OK, "open: %s", be_error_message(err));
  rc = be_conn_exec(conn, "CREATE TABLE items (k INTEGER, t TEXT, v INTEGER)", &err);
  char sql[160];
  for (int k = 0; k < INT_KEYS && rc == BE_OK; k++)
    for (int r = 0; r < k % 4 && rc == BE_OK; r++) {
      snprintf(sql, sizeof sql, "INSERT INTO items VALUES (%d, 't%d', %d)", k, k, 100 * k + r);
      rc = be_conn_exec(conn, sql, &err);
    }
  if (rc == BE_OK)
    rc = be_conn_exec(conn,
                      "INSERT INTO items VALUES (1000, 'o''k', 1), (1000, 'o''k', 2),"
                      " (1001, char(233), 3), (1001, char(233), 4)",
                      &err);
  FZ_CHECK(rc == BE_OK, "seed: %s", be_error_message(err));
  return 0;
}

typedef struct keys {
  size_t n;
  int64_t ints[MAX_KEYS];
  const char *texts[MAX_KEYS];
  size_t lens[MAX_KEYS];
  char store[MAX_KEYS][64];
} keys;

static int same_key(const keys *k, int text, size_t a, size_t b) {
  if (!text) return k->ints[a] == k->ints[b];
  return k->lens[a] == k->lens[b] && memcmp(k->texts[a], k->texts[b], k->lens[a]) == 0;
}

static void decode_keys(fz_in *in, keys *k, int text, int *bad) {
  k->n = fz_u8(in) % MAX_KEYS;
  for (size_t i = 0; i < k->n; i++) {
    uint8_t p = fz_u8(in);
    if (!text) {
      k->ints[i] = p < 240 ? (int64_t)(p % 48) - 2 : p < 250 ? 1000 + p % 2
                                                             : fz_i64(in);
      continue;
    }
    if (p < 200) {
      k->texts[i] = text_pool[p % 9];
      k->lens[i] = strlen(k->texts[i]);
    } else {
      const char *s;
      size_t n = fz_bytes(in, &s, 63);
      memcpy(k->store[i], s, n);
      k->store[i][n] = '\0';
      k->texts[i] = k->store[i];
      k->lens[i] = n;
      *bad |= !fz_text_ok(s, n);
    }
  }
}

static void check_groups(be_batch_result *res, const keys *k, int text, int desc) {
  size_t distinct = 0;
  const be_rows *rows = be_batch_result_rows(res);
  for (size_t i = 0; i < k->n; i++) {
    int first = 1;
    for (size_t j = 0; j < i && first; j++) first = !same_key(k, text, i, j);
    if (!first) continue;
    size_t at = 0, n = be_batch_result_group(res, distinct, &at);
    size_t want = text ? text_rows(k->texts[i], k->lens[i]) : int_rows(k->ints[i]);
    FZ_CHECK(n == want, "key %zu: %zu rows, %zu in the table", i, n, want);
    if (text) {
      size_t kl = 0;
      const char *kt = be_batch_result_key_text(res, distinct, &kl);
      FZ_CHECK(kl == k->lens[i] && memcmp(kt, k->texts[i], kl) == 0, "group %zu has another key", distinct);
      size_t f2 = 0;
      FZ_CHECK(be_batch_result_find_text(res, k->texts[i], k->lens[i], &f2) == n && (n == 0 || f2 == at),
               "find_text disagrees");
    } else {
      FZ_CHECK(be_batch_result_key_int64(res, distinct) == k->ints[i], "group %zu has another key", distinct);
      size_t f2 = 0;
      FZ_CHECK(be_batch_result_find_int64(res, k->ints[i], &f2) == n && (n == 0 || f2 == at),
               "find_int64 disagrees");
    }
    for (size_t r = 0; r < n; r++) {
      if (!text) FZ_CHECK(be_rows_int64(rows, at + r, 1) == k->ints[i], "row of another key");
      if (r > 0 && desc)
        FZ_CHECK(be_rows_int64(rows, at + r, 0) < be_rows_int64(rows, at + r - 1, 0), "ORDER BY v DESC");
    }
    distinct++;
  }
  FZ_CHECK(be_batch_result_key_count(res) == distinct, "%zu groups, %zu distinct keys",
           be_batch_result_key_count(res), distinct);
}

static keys ks;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  uint8_t o = fz_u8(&in), chunk = fz_u8(&in);
  int text = o & 1, bad_key = 0, bad_opt = 0;
  static const char *cols_int[] = {"v", "k"}, *cols_text[] = {"v", "t"};
  static const char *desc[] = {"v DESC"}, *bad_order[] = {"v; DROP TABLE items"};
  be_batch_options opts = BE_BATCH_OPTIONS_INIT;
  opts.table = "items";
  opts.columns = text ? cols_text : cols_int;
  opts.column_count = 2;
  opts.key_column = text ? "t" : "k";
  opts.strategy = (o >> 1) % 4 == 3 ? 7 : (o >> 1) % 4;
  opts.relation = (o >> 3) % 3 == 2 ? 5 : (o >> 3) % 3;
  opts.max_chunk = chunk < 200 ? chunk % 6 : -(int32_t)(chunk % 3) - 1;
  int ordered = (o >> 5) % 3;
  if (ordered == 1) opts.order_by = desc, opts.order_by_count = 1;
  if (ordered == 2) opts.order_by = bad_order, opts.order_by_count = 1;
  bad_opt = opts.strategy == 7 || opts.relation == 5 || opts.max_chunk < 0 || ordered == 2;
  decode_keys(&in, &ks, text, &bad_key);

  be_batch_result *res = NULL;
  be_error *err = NULL;
  int rc = text ? be_batch_load_text(&res, conn, &opts, ks.texts, ks.lens, ks.n, &err)
                : be_batch_load_int64(&res, conn, &opts, ks.ints, ks.n, &err);
  if (bad_opt || (bad_key && ks.n > 0)) {
    fz_expect("a load with bad options or keys", rc, err, BE_E_VALIDATION, 1);
    return 0;
  }
  int dup_rows = 0;
  for (size_t i = 0; i < ks.n; i++)
    dup_rows |= (text ? text_rows(ks.texts[i], ks.lens[i]) : int_rows(ks.ints[i])) > 1;
  if (opts.relation == BE_BATCH_ONE && dup_rows) {
    fz_expect("BE_BATCH_ONE with a key of two rows", rc, err, BE_E_CONFLICT, 1);
    return 0;
  }
  fz_expect("be_batch_load", rc, err, BE_OK, 1);
  check_groups(res, &ks, text, ordered == 1);
  be_batch_result_free(res);
  return 0;
}
