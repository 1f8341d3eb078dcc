/* SPDX-License-Identifier: MIT */
/* Versioned migrations recorded in a table (schema_migrations unless
 * be_migrator_set_table() names another), one transaction each. */
#include <backend/log.h>
#include <backend/migrate.h>
#include <backend/tx.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "error.h"
#include "migrate.h"
#include "storage.h"
#include "utf8.h"

typedef struct migration {
  int64_t version;
  char *name;
  char *sql;
} migration;

/* Longest record table name: what be__ident_valid() accepts. */
#define TABLE_MAX 64
#define DEFAULT_TABLE "schema_migrations"

struct be_migrator {
  migration *v; /* sorted by version */
  size_t n, cap;
  char table[TABLE_MAX + 1]; /* the record table */
};

int be_migrator_new(be_migrator **out, be_error **err) {
  if (out == NULL) return be__error_set(err, BE_E_MISUSE, "be_migrator_new: out is NULL");
  *out = be__calloc(1, sizeof **out);
  if (*out == NULL) return be__error_oom(err);
  memcpy((*out)->table, DEFAULT_TABLE, sizeof DEFAULT_TABLE);
  return BE_OK;
}

static int has_upper(const char *s) {
  for (; *s; s++)
    if (*s >= 'A' && *s <= 'Z') return 1;
  return 0;
}

/* PostgreSQL's reserved words (pg_get_keywords() catcode R and T, 15 and
 * SYSTEM_USER of 16): none can be an unquoted table name there. */
static const char *const pg_reserved[] = {
  "ALL", "ANALYSE", "ANALYZE", "AND", "ANY", "ARRAY", "AS", "ASC", "ASYMMETRIC", "AUTHORIZATION",
  "BINARY", "BOTH", "CASE", "CAST", "CHECK", "COLLATE", "COLLATION", "COLUMN", "CONCURRENTLY",
  "CONSTRAINT", "CREATE", "CROSS", "CURRENT_CATALOG", "CURRENT_DATE", "CURRENT_ROLE",
  "CURRENT_SCHEMA", "CURRENT_TIME", "CURRENT_TIMESTAMP", "CURRENT_USER", "DEFAULT", "DEFERRABLE",
  "DESC", "DISTINCT", "DO", "ELSE", "END", "EXCEPT", "FALSE", "FETCH", "FOR", "FOREIGN", "FREEZE",
  "FROM", "FULL", "GRANT", "GROUP", "HAVING", "ILIKE", "IN", "INITIALLY", "INNER", "INTERSECT",
  "INTO", "IS", "ISNULL", "JOIN", "LATERAL", "LEADING", "LEFT", "LIKE", "LIMIT", "LOCALTIME",
  "LOCALTIMESTAMP", "NATURAL", "NOT", "NOTNULL", "NULL", "OFFSET", "ON", "ONLY", "OR", "ORDER",
  "OUTER", "OVERLAPS", "PLACING", "PRIMARY", "REFERENCES", "RETURNING", "RIGHT", "SELECT",
  "SESSION_USER", "SIMILAR", "SOME", "SYMMETRIC", "SYSTEM_USER", "TABLE", "TABLESAMPLE", "THEN",
  "TO", "TRAILING", "TRUE", "UNION", "UNIQUE", "USER", "USING", "VARIADIC", "VERBOSE", "WHEN",
  "WHERE", "WINDOW", "WITH"};

/* The keywords SQLite 3.40 refuses as the record table's name (a probe
 * of each of its 147 keywords through a table's create, insert, select
 * and delete): a fixed list, so that a newer SQLite with more keywords
 * cannot refuse a name that worked. */
static const char *const sqlite_refused[] = {
  "ADD", "ALL", "ALTER", "AND", "AS", "AUTOINCREMENT", "BETWEEN", "CASE", "CHECK", "COLLATE",
  "COMMIT", "CONSTRAINT", "CREATE", "DEFAULT", "DEFERRABLE", "DELETE", "DISTINCT", "DROP", "ELSE",
  "ESCAPE", "EXCEPT", "EXISTS", "FOREIGN", "FROM", "GROUP", "HAVING", "IF", "IN", "INDEX",
  "INSERT", "INTERSECT", "INTO", "IS", "ISNULL", "JOIN", "LIMIT", "NOT", "NOTHING", "NOTNULL",
  "NULL", "ON", "OR", "ORDER", "PRIMARY", "REFERENCES", "RETURNING", "SELECT", "SET", "TABLE",
  "THEN", "TO", "TRANSACTION", "UNION", "UNIQUE", "UPDATE", "USING", "VALUES", "WHEN", "WHERE"};

static int in_words(const char *name, const char *const *words, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcasecmp(name, words[i]) == 0) return 1;
  return 0;
}

/* 1 when name, a valid identifier, cannot be an unquoted table name on
 * SQLite or PostgreSQL: a keyword SQLite refuses there, a word PostgreSQL
 * reserves, or SQLite's reserved prefix sqlite_ (any case). */
static int ident_reserved(const char *name) {
  return strncasecmp(name, "sqlite_", 7) == 0 ||
         in_words(name, sqlite_refused, sizeof sqlite_refused / sizeof sqlite_refused[0]) ||
         in_words(name, pg_reserved, sizeof pg_reserved / sizeof pg_reserved[0]);
}

int be_migrator_set_table(be_migrator *m, const char *table, be_error **err) {
  if (m == NULL) return be__error_set(err, BE_E_MISUSE, "be_migrator_set_table: NULL migrator");
  if (!be__ident_valid(table))
    return be__error_field(err, "table",
                           "must be 1..64 bytes: an ASCII letter or '_', then ASCII letters, "
                           "digits or '_'");
  /* SQLite ignores a table name's case and PostgreSQL folds it to lower
   * case: "Schema_Migrations" would be schema_migrations, whose rows
   * (another migrator's) this one would take for its own. */
  if (has_upper(table))
    return be__error_field(err, "table",
                           "must be in lower case: SQLite ignores a table name's case and "
                           "PostgreSQL folds it to lower case");
  if (ident_reserved(table))
    return be__error_field(err, "table",
                           "must not be an SQL keyword SQLite refuses as a table name or one "
                           "PostgreSQL reserves, nor start with sqlite_ (reserved by SQLite)");
  memcpy(m->table, table, strlen(table) + 1);
  return BE_OK;
}

int be__migrator_set_table_folded(be_migrator *m, const char *table, be_error **err) {
  char lower[TABLE_MAX + 1];
  size_t n = table ? strnlen(table, TABLE_MAX + 1) : 0;
  if (n > TABLE_MAX) return be_migrator_set_table(m, table, err); /* refused as too long */
  for (size_t i = 0; i < n; i++) {
    char ch = table[i];
    lower[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
  }
  lower[n] = '\0';
  return be_migrator_set_table(m, table ? lower : NULL, err);
}

void be_migrator_free(be_migrator *m) {
  if (m == NULL) return;
  for (size_t i = 0; i < m->n; i++) {
    be__free(m->v[i].name);
    be__free(m->v[i].sql);
  }
  be__free(m->v);
  be__free(m);
}

int64_t be_migrator_latest_version(const be_migrator *m) {
  return m && m->n ? m->v[m->n - 1].version : 0;
}

size_t be_migrator_count(const be_migrator *m) { return m ? m->n : 0; }

int64_t be__migrator_first_version(const be_migrator *m) { return m && m->n ? m->v[0].version : 0; }

int be_migrator_add(be_migrator *m, int64_t version, const char *name, const char *sql,
                    be_error **err) {
  if (m == NULL) return be__error_set(err, BE_E_MISUSE, "be_migrator_add: NULL migrator");
  if (version < 1) return be__error_field(err, "version", "must be >= 1, got %lld", (long long)version);
  size_t nlen = name ? strlen(name) : 0;
  if (nlen == 0 || nlen > 200 || !be__utf8_valid(name, nlen))
    return be__error_field(err, "name", "must be 1..200 bytes of UTF-8");
  size_t slen = sql ? strlen(sql) : 0;
  if (slen == 0 || !be__utf8_valid(sql, slen))
    return be__error_field(err, "sql", "must be non-empty UTF-8 text");
  size_t at = m->n;
  while (at > 0 && m->v[at - 1].version > version) at--;
  if (at > 0 && m->v[at - 1].version == version)
    return be__error_set(err, BE_E_CONFLICT, "migration version %lld is already registered (%s)",
                         (long long)version, m->v[at - 1].name);
  if (m->n == m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 8;
    migration *grown = be__realloc(m->v, cap * sizeof *grown);
    if (grown == NULL) return be__error_oom(err);
    m->v = grown;
    m->cap = cap;
  }
  char *n = be__strdup(name);
  char *s = be__strdup(sql);
  if (n == NULL || s == NULL) {
    be__free(n);
    be__free(s);
    return be__error_oom(err);
  }
  memmove(&m->v[at + 1], &m->v[at], (m->n - at) * sizeof *m->v);
  m->v[at] = (migration){version, n, s};
  m->n++;
  return BE_OK;
}

/* ---- the record's SQL, per placeholder style ---- */

/* The statements on a record table (names of at most TABLE_MAX bytes). */
typedef struct record_sql {
  char create[192];
  char has[128];
  char insert[192];
  char max[128];
} record_sql;

static void record_sql_make(record_sql *q, be_conn *c, const char *table) {
  int dollar = be_conn_driver(c)->placeholder_style == BE_PLACEHOLDER_DOLLAR;
  const char *integer = dollar ? "BIGINT" : "INTEGER";
  snprintf(q->create, sizeof q->create,
           "CREATE TABLE IF NOT EXISTS %s (version %s PRIMARY KEY, name TEXT NOT NULL, "
           "applied_at %s NOT NULL)",
           table, integer, integer);
  snprintf(q->has, sizeof q->has, "SELECT 1 FROM %s WHERE version = %s", table,
           dollar ? "$1" : "?");
  snprintf(q->insert, sizeof q->insert, "INSERT INTO %s (version, name, applied_at) VALUES (%s)",
           table, dollar ? "$1, $2, $3" : "?, ?, ?");
  snprintf(q->max, sizeof q->max, "SELECT COALESCE(MAX(version), 0) FROM %s", table);
}

/* Run a one-column query with an optional int64 parameter; *found says
 * whether a row came back, *out holds its first column. */
static int query_int(be_conn *c, const char *sql, const int64_t *param, int64_t *out, int *found,
                     be_error **err) {
  be_stmt *st = NULL;
  int rc = be_conn_prepare(&st, c, sql, err);
  if (rc) return rc;
  if (param) rc = be_stmt_bind_int64(st, 1, *param, err);
  if (rc == BE_OK) {
    rc = be_stmt_step(st, err);
    *found = rc == BE_ROW;
    if (rc == BE_ROW) *out = be_stmt_column_int64(st, 0);
    if (rc == BE_ROW || rc == BE_DONE) rc = BE_OK;
  }
  be_stmt_finalize(st);
  return rc;
}

/* The highest version recorded; the record table exists. */
static int read_version(be_conn *c, const record_sql *q, int64_t *out, be_error **err) {
  int64_t v = 0;
  int found = 0;
  int rc = query_int(c, q->max, NULL, &v, &found, err);
  *out = rc == BE_OK && found ? v : 0;
  return rc;
}

/* The highest version in record table `table`, 0 when there is none. */
static int table_version(int64_t *out, be_conn *c, const char *table, be_error **err) {
  *out = 0;
  int32_t exists = 0;
  int rc = be__conn_table_exists(c, &exists, table, err);
  if (rc != BE_OK || !exists) return rc;
  record_sql q;
  record_sql_make(&q, c, table);
  return read_version(c, &q, out, err);
}

int be_migrator_current_version(int64_t *out, be_conn *c, be_error **err) {
  if (c == NULL || out == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_migrator_current_version: NULL argument");
  return table_version(out, c, DEFAULT_TABLE, err);
}

int be_migrator_version(int64_t *out, const be_migrator *m, be_conn *c, be_error **err) {
  if (out) *out = 0;
  if (out == NULL || m == NULL || c == NULL)
    return be__error_set(err, BE_E_MISUSE, "be_migrator_version: NULL argument");
  return table_version(out, c, m->table, err);
}

static int is_applied(be_conn *c, const record_sql *q, int64_t version, int *applied,
                      be_error **err) {
  int64_t one;
  return query_int(c, q->has, &version, &one, applied, err);
}

/* ---- running a migration's SQL inside its transaction ---- */

static const char *skip_blanks(const char *p) {
  for (;;) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == ';') p++;
    if (p[0] == '-' && p[1] == '-') {
      while (*p && *p != '\n') p++;
    } else if (p[0] == '/' && p[1] == '*') {
      const char *e = strstr(p + 2, "*/");
      p = e ? e + 2 : p + strlen(p);
    } else {
      return p;
    }
  }
}

static int word_is(const char *p, const char *w) {
  size_t n = strlen(w);
  for (size_t i = 0; i < n; i++)
    if ((p[i] | 0x20) != w[i]) return 0;
  char c = p[n];
  return !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_');
}

/* 1 when the statement at p ends (or restarts) the transaction the
 * migration runs in: BEGIN, COMMIT, END, ROLLBACK (but not ROLLBACK TO). */
static int ends_transaction(const char *p) {
  if (word_is(p, "begin") || word_is(p, "commit") || word_is(p, "end")) return 1;
  if (!word_is(p, "rollback")) return 0;
  p = skip_blanks(p + 8);
  if (word_is(p, "transaction")) p = skip_blanks(p + 11);
  return !word_is(p, "to");
}

static int tx_control_error(be_error **err, const char *stmt) {
  return be__error_field(err, "sql",
                         "must not end the migration's transaction (it runs in one): "
                         "remove BEGIN/COMMIT/END/ROLLBACK (found \"%.40s\")",
                         stmt);
}

/* Run one statement, the first n bytes of p. */
static int exec_one(be_conn *c, const char *p, size_t n, be_error **err) {
  char *one = be__strndup(p, n);
  if (one == NULL) return be__error_oom(err);
  int rc = be_conn_exec(c, one, err);
  be__free(one);
  return rc;
}

/* Run the script one statement at a time, as the driver splits it,
 * refusing a statement that would end the transaction before it runs. */
static int exec_statements(be_conn *c, const char *sql, be_error **err) {
  const char *end = sql + strlen(sql);
  int rc = BE_OK;
  for (const char *p = skip_blanks(sql); rc == BE_OK && *p; p = skip_blanks(p)) {
    size_t rest = (size_t)(end - p), n = 0;
    rc = be__conn_next_statement(c, &n, p, rest, err);
    if (rc != BE_OK) break;
    if (n == 0 || n > rest) n = rest;
    if (ends_transaction(p)) return tx_control_error(err, p);
    rc = exec_one(c, p, n, err);
    p += n;
  }
  return rc;
}

/* Run the migration's script. A statement that would commit or roll back
 * must not run: a COMMIT in the middle would make the part before it
 * permanent while the version stays unrecorded. With a driver that splits
 * scripts (be_driver.next_statement) such a statement is refused before
 * it runs; otherwise the script runs whole, and a transaction it ended is
 * reported after (the version is then not recorded). */
static int exec_migration(be_conn *c, const char *sql, be_error **err) {
  if (be__conn_splits_scripts(c)) return exec_statements(c, sql, err);
  int rc = be_conn_exec(c, sql, err);
  if (rc == BE_OK && !be_conn_in_transaction(c)) return tx_control_error(err, sql);
  return rc;
}

/* One migration and the statements on its record. */
typedef struct apply_ctx {
  const migration *mg;
  const record_sql *q;
} apply_ctx;

static int apply_one(be_conn *c, void *ud, be_error **err) {
  const apply_ctx *a = ud;
  const migration *mg = a->mg;
  int applied = 0;
  int rc = is_applied(c, a->q, mg->version, &applied, err);
  if (rc || applied) return rc; /* someone else applied it meanwhile */
  rc = exec_migration(c, mg->sql, err);
  if (rc) return rc;
  be_stmt *st = NULL;
  rc = be_conn_prepare(&st, c, a->q->insert, err);
  if (rc) return rc;
  if ((rc = be_stmt_bind_int64(st, 1, mg->version, err)) == BE_OK &&
      (rc = be_stmt_bind_text(st, 2, mg->name, BE_NUL_TERMINATED, err)) == BE_OK &&
      (rc = be_stmt_bind_int64(st, 3, be_clock_wall_ns(NULL) / BE_NS_PER_SEC, err)) == BE_OK) {
    rc = be_stmt_step(st, err);
    if (rc == BE_DONE) rc = BE_OK;
  }
  be_stmt_finalize(st);
  return rc;
}

static int fail_version(be_error **err, const migration *mg, be_error *cause, int rc) {
  if (err == NULL) {
    be_error_free(cause);
    return rc;
  }
  int32_t code = cause ? be_error_code(cause) : rc;
  const char *why = cause ? be_error_message(cause) : be_strerror(rc);
  int r = be__error_wrap(err, code, cause, "migration %lld (%s) failed: %s", (long long)mg->version,
                         mg->name, why);
  char v[32];
  snprintf(v, sizeof v, "%lld", (long long)mg->version);
  if (be_error_add_field(*err, "version", v) == BE_E_NOMEM) { /* the OOM error refuses it: fine */
    be_error_free(*err);
    return be__error_oom(err);
  }
  return r;
}

/* A database recorded at a version above every registered one was
 * migrated by a newer build: it is left as it is (an older build may
 * run on it during a rollback), but not silently. */
static void warn_if_newer(const be_migrator *m, int64_t version) {
  int64_t latest = be_migrator_latest_version(m);
  if (m->n == 0 || version <= latest) return;
  char v[32], l[32];
  snprintf(v, sizeof v, "%lld", (long long)version);
  snprintf(l, sizeof l, "%lld", (long long)latest);
  be_log_field f[] = {{"table", m->table}, {"version", v}, {"latest", l}};
  be_log(BE_LOG_WARN, "the database's version is newer than every registered migration", f, 3,
         NULL);
}

/* Apply what is missing; each migration in a transaction of its own (a
 * savepoint when c is in one already). */
static int apply_all(int64_t *out_version, be_migrator *m, be_conn *c, be_error **err) {
  record_sql q;
  record_sql_make(&q, c, m->table);
  int rc = be_conn_exec(c, q.create, err);
  if (rc) return rc;
  int64_t current = 0;
  rc = read_version(c, &q, &current, err);
  if (rc) return rc;
  for (size_t i = 0; i < m->n && rc == BE_OK; i++) {
    migration *mg = &m->v[i];
    int applied = 0;
    rc = is_applied(c, &q, mg->version, &applied, err);
    if (rc || applied) continue;
    if (mg->version < current) {
      char v[32], cur[32];
      snprintf(v, sizeof v, "%lld", (long long)mg->version);
      snprintf(cur, sizeof cur, "%lld", (long long)current);
      be_log_field f[] = {{"version", v}, {"name", mg->name}, {"current", cur}};
      be_log(BE_LOG_WARN, "applying a migration older than the database's version", f, 3, NULL);
    }
    be_error *e = NULL;
    apply_ctx a = {mg, &q};
    rc = be_tx_run(c, BE_TX_IMMEDIATE, apply_one, &a, &e);
    if (rc) {
      rc = fail_version(err, mg, e, rc);
      break;
    }
    if (mg->version > current) current = mg->version;
  }
  if (rc == BE_OK) warn_if_newer(m, current);
  if (out_version) {
    int64_t v = 0;
    if (rc == BE_OK) {
      rc = read_version(c, &q, &v, err);
      *out_version = rc == BE_OK ? v : current;
    } else {
      /* already failing: report the last good version we know of */
      *out_version = read_version(c, &q, &v, NULL) == BE_OK ? v : current;
    }
  }
  return rc;
}

int be_migrator_apply(int64_t *out_version, be_migrator *m, be_conn *c, be_error **err) {
  if (out_version) *out_version = 0;
  if (m == NULL || c == NULL) return be__error_set(err, BE_E_MISUSE, "be_migrator_apply: NULL argument");
  if (be_conn_in_transaction(c))
    return be__error_set(err, BE_E_MISUSE, "be_migrator_apply: the connection is in a transaction");
  return apply_all(out_version, m, c, err);
}

int be__migrator_apply_in_tx(be_migrator *m, be_conn *c, be_error **err) {
  if (!be_conn_in_transaction(c))
    return be__error_set(err, BE_E_MISUSE, "be__migrator_apply_in_tx: no transaction is open");
  return apply_all(NULL, m, c, err);
}
