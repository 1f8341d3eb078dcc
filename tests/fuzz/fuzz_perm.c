/* SPDX-License-Identifier: MIT */
/* Sequences of permission operations decoded from the input (role
 * create/delete, grant, revoke, assign, unassign, check, a user's
 * permissions, be_perm_covers), each compared with a small reference
 * model kept here: which roles exist, what they hold, who holds them.
 * Names come from a small pool (so operations meet) or are arbitrary
 * bytes. Every result must be the model's: the code (BE_OK, BE_E_CONFLICT,
 * BE_E_NOT_FOUND, BE_E_FORBIDDEN, BE_E_VALIDATION), and for checks and
 * permission lists the decision and the sorted list. The database is put
 * back to its seeded state before each input. */
#include "fuzz_support.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ROLES 24
#define MAX_PERMS 24
#define USERS 3
#define NAME_CAP 200

typedef struct role {
  char name[NAME_CAP];
  char perms[MAX_PERMS][NAME_CAP];
  int nperms;
  int members[USERS]; /* member[u] for seeded user u */
} role;

static role roles[MAX_ROLES];
static int nroles;

/* ---- the reference ---- */

static int part_ok(const char *s, size_t n) {
  if (n < 1 || n > BE_PERM_NAME_MAX) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '.' || c == '-'))
      return 0;
  }
  return 1;
}

static int perm_ok(const char *s) {
  if (strcmp(s, "*") == 0) return 1;
  const char *colon = strchr(s, ':');
  if (colon == NULL) return 0;
  const char *act = colon + 1;
  return part_ok(s, (size_t)(colon - s)) && (strcmp(act, "*") == 0 || part_ok(act, strlen(act)));
}

static int covers(const char *g, const char *r) {
  if (strcmp(g, "*") == 0 || strcmp(g, r) == 0) return 1;
  size_t gl = strlen(g);
  return gl >= 2 && strcmp(g + gl - 2, ":*") == 0 && strncmp(g, r, gl - 1) == 0 &&
         strcmp(r, "*") != 0;
}

static role *find_role(const char *name) {
  for (int i = 0; i < nroles; i++)
    if (strcmp(roles[i].name, name) == 0) return &roles[i];
  return NULL;
}

static int find_perm(const role *r, const char *p) {
  for (int i = 0; i < r->nperms; i++)
    if (strcmp(r->perms[i], p) == 0) return i;
  return -1;
}

static void model_reset(void) {
  memset(roles, 0, sizeof roles);
  nroles = 2;
  strcpy(roles[0].name, "admin");
  strcpy(roles[0].perms[0], "*");
  roles[0].nperms = 1;
  roles[0].members[0] = 1;
  strcpy(roles[1].name, "member");
  strcpy(roles[1].perms[0], "posts:read");
  strcpy(roles[1].perms[1], "posts:write");
  strcpy(roles[1].perms[2], "profile:write");
  roles[1].nperms = 3;
  roles[1].members[1] = roles[1].members[2] = 1;
}

/* ---- decoding ---- */

static const char *role_pool[] = {"admin", "member", "r0", "r1", "editor", "a.b-c_D"};
static const char *perm_pool[] = {"*", "posts:read", "posts:write", "posts:*", "profile:write",
                                  "a:b", "a:*", "a-b:c.d", "posts", "posts:",
                                  ":read", "posts:r*", "*:read", "a:b:c"};

/* A name: from a pool, or arbitrary bytes (NUL-terminated copy in buf;
 * *len is what the call gets: exact, or BE_NUL_TERMINATED). */
static const char *name(fz_in *in, char *buf, size_t *len, const char **pool, size_t pool_n) {
  uint8_t pick = fz_u8(in);
  if (pick < 224) {
    strcpy(buf, pool[pick % pool_n]);
  } else {
    const char *s;
    size_t n = fz_bytes(in, &s, 150);
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (pick & 1) {
      *len = n; /* exact, so an embedded NUL reaches the library */
      return buf;
    }
  }
  *len = BE_NUL_TERMINATED;
  return buf;
}

/* The reference's view of a name: valid when exact length == strlen. */
static int name_valid(const char *buf, size_t len, int is_perm) {
  if (len != BE_NUL_TERMINATED && len != strlen(buf)) return 0;
  return is_perm ? perm_ok(buf) : part_ok(buf, strlen(buf));
}

static int64_t user(fz_in *in, be_testkit *kit, int *u) {
  uint8_t pick = fz_u8(in) % 6;
  *u = pick < USERS ? pick : -1;
  return pick < USERS ? be_testkit_user_id(kit, pick) : pick == 3 ? 999999
                                                      : pick == 4 ? 0
                                                                  : -5;
}

static void expect(const char *what, int rc, be_error *err, int want) {
  FZ_CHECK(rc == want, "%s gave %s, the model says %s (%s)", what, be_code_name(rc),
           be_code_name(want), err ? be_error_message(err) : "");
  fz_expect(what, rc, err, want, 1);
}

/* ---- operations ---- */

static void op_role(fz_in *in, be_app *app, int op) {
  char rb[NAME_CAP];
  size_t rl;
  const char *r = name(in, rb, &rl, role_pool, 6);
  role *m = name_valid(rb, rl, 0) ? find_role(rb) : NULL;
  be_error *err = NULL;
  if (op == 0) {
    int want = !name_valid(rb, rl, 0) ? BE_E_VALIDATION : m ? BE_E_CONFLICT
                                                            : BE_OK;
    if (want == BE_OK && nroles == MAX_ROLES) return;
    expect("be_perm_role_create", be_perm_role_create(NULL, app, 0, r, rl, &err), err, want);
    if (want == BE_OK) memset(&roles[nroles], 0, sizeof(role)), strcpy(roles[nroles++].name, rb);
  } else {
    int want = !name_valid(rb, rl, 0) ? BE_E_VALIDATION : m ? BE_OK
                                                            : BE_E_NOT_FOUND;
    expect("be_perm_role_delete", be_perm_role_delete(app, 0, r, rl, &err), err, want);
    if (m) *m = roles[--nroles];
  }
}

static void op_grant(fz_in *in, be_app *app, int grant) {
  char rb[NAME_CAP], pb[NAME_CAP];
  size_t rl, pl;
  const char *r = name(in, rb, &rl, role_pool, 6);
  const char *p = name(in, pb, &pl, perm_pool, 14);
  role *m = name_valid(rb, rl, 0) ? find_role(rb) : NULL;
  int valid = name_valid(rb, rl, 0) && name_valid(pb, pl, 1);
  int want = !valid ? BE_E_VALIDATION : m ? BE_OK
                                          : BE_E_NOT_FOUND;
  int at = m ? find_perm(m, pb) : -1;
  if (want == BE_OK && grant && at < 0 && m->nperms == MAX_PERMS) return;
  be_error *err = NULL;
  if (grant) expect("be_perm_role_grant", be_perm_role_grant(app, 0, r, rl, p, pl, &err), err, want);
  else expect("be_perm_role_revoke", be_perm_role_revoke(app, 0, r, rl, p, pl, &err), err, want);
  if (want != BE_OK) return;
  if (grant && at < 0) strcpy(m->perms[m->nperms++], pb);
  if (!grant && at >= 0) memmove(m->perms[at], m->perms[--m->nperms], NAME_CAP);
}

static void op_assign(fz_in *in, be_app *app, be_testkit *kit, int assign) {
  int u;
  int64_t uid = user(in, kit, &u);
  char rb[NAME_CAP];
  size_t rl;
  const char *r = name(in, rb, &rl, role_pool, 6);
  role *m = name_valid(rb, rl, 0) ? find_role(rb) : NULL;
  int want = uid <= 0 || !name_valid(rb, rl, 0) ? BE_E_VALIDATION
             : m == NULL || u < 0               ? BE_E_NOT_FOUND
                                                : BE_OK;
  be_error *err = NULL;
  if (assign) expect("be_perm_user_assign", be_perm_user_assign(app, 0, uid, r, rl, &err), err, want);
  else expect("be_perm_user_unassign", be_perm_user_unassign(app, 0, uid, r, rl, &err), err, want);
  if (want == BE_OK) m->members[u] = assign;
}

static int allowed(int u, const char *p) {
  for (int i = 0; u >= 0 && i < nroles; i++)
    for (int k = 0; roles[i].members[u] && k < roles[i].nperms; k++)
      if (covers(roles[i].perms[k], p)) return 1;
  return 0;
}

static void op_check(fz_in *in, be_app *app, be_testkit *kit) {
  int u;
  int64_t uid = user(in, kit, &u);
  char pb[NAME_CAP];
  size_t pl;
  const char *p = name(in, pb, &pl, perm_pool, 14);
  int want = uid <= 0 || !name_valid(pb, pl, 1) ? BE_E_VALIDATION
             : allowed(u, pb)                   ? BE_OK
                                                : BE_E_FORBIDDEN;
  be_error *err = NULL;
  expect("be_perm_check", be_perm_check(app, uid, p, pl, &err), err, want);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void op_list(fz_in *in, be_app *app, be_testkit *kit) {
  int u;
  int64_t uid = user(in, kit, &u);
  be_perm_list *list = NULL;
  be_error *err = NULL;
  int rc = be_perm_user_permissions(&list, app, uid, &err);
  if (uid <= 0) {
    expect("be_perm_user_permissions", rc, err, BE_E_VALIDATION);
    return;
  }
  if (u < 0 && rc != BE_OK) { /* an unknown user: no permissions, or not found */
    fz_expect("be_perm_user_permissions", rc, err, BE_E_NOT_FOUND, 1);
    return;
  }
  expect("be_perm_user_permissions", rc, err, BE_OK);
  const char *want[MAX_ROLES * MAX_PERMS];
  size_t n = 0;
  for (int i = 0; u >= 0 && i < nroles; i++)
    for (int k = 0; roles[i].members[u] && k < roles[i].nperms; k++) {
      int dup = 0;
      for (size_t j = 0; j < n; j++) dup |= strcmp(want[j], roles[i].perms[k]) == 0;
      if (!dup) want[n++] = roles[i].perms[k];
    }
  qsort(want, n, sizeof want[0], cmp_str);
  FZ_CHECK(be_perm_list_count(list) == n, "user %d has %zu permissions, the model %zu", u,
           be_perm_list_count(list), n);
  for (size_t i = 0; i < n; i++)
    FZ_CHECK(strcmp(be_perm_list_get(list, i), want[i]) == 0, "permission %zu: %s, model %s", i,
             be_perm_list_get(list, i), want[i]);
  be_perm_list_free(list);
}

static void op_covers(fz_in *in) {
  char gb[NAME_CAP], rb[NAME_CAP];
  size_t gl, rl;
  name(in, gb, &gl, perm_pool, 14);
  name(in, rb, &rl, perm_pool, 14);
  if (!perm_ok(gb) || !perm_ok(rb)) return; /* the function takes valid strings only */
  FZ_CHECK(be_perm_covers(gb, rb) == covers(gb, rb), "be_perm_covers(%s, %s) = %d", gb, rb,
           be_perm_covers(gb, rb));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  be_testkit *kit = fz_kit(USERS, 0);
  be_app *app = be_testkit_app(kit);
  fz_kit_reset(kit);
  model_reset();
  fz_in in = {data, size};
  for (int ops = 0; in.n > 0 && ops < 48; ops++) {
    uint8_t op = fz_u8(&in) % 10;
    if (op <= 1) op_role(&in, app, op);
    else if (op <= 3) op_grant(&in, app, op == 2);
    else if (op <= 5) op_assign(&in, app, kit, op == 4);
    else if (op <= 7) op_check(&in, app, kit);
    else if (op == 8) op_list(&in, app, kit);
    else op_covers(&in);
  }
  return 0;
}
