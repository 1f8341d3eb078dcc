/* SPDX-License-Identifier: MIT */
#include "crashvfs.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SECTOR 512

/* Something done to a file and not yet synced. */
enum {
  OP_WRITE,
  OP_TRUNCATE,
  OP_DELETE,
  OP_CREATE /* the path names a new, empty file (not a cut point) */
};
typedef struct cv_op {
  int kind;
  int64_t off;         /* OP_WRITE: offset; OP_TRUNCATE: new size */
  size_t len;          /* OP_WRITE */
  unsigned char *data; /* OP_WRITE */
  int64_t seq;         /* operation number (OP_CREATE: 0, not a cut point) */
  int64_t gen;         /* the file (inode) the path names from this operation on */
  struct cv_op *next;
} cv_op;

/* A file's content as a disk would hold it. A path names a new file
 * (generation) after each deletion or creation: a write to the new file
 * never lands in an old one that a lost deletion brought back. */
typedef struct cv_img {
  unsigned char *b;
  size_t len, cap;
  int exists;
  int64_t gen;
} cv_img;

/* One path: its durable image and the operations since its last sync. */
typedef struct cv_node {
  char *path;
  cv_img img;
  cv_op *head, *tail;
  int64_t gen; /* the generation the path names now */
  int handles;
  struct cv_node *next;
} cv_node;

typedef struct cv_file {
  sqlite3_file base;
  cv_node *node; /* NULL: not a database, journal or WAL file (passed through) */
  sqlite3_file *real;
} cv_file;

static struct {
  sqlite3_vfs vfs;
  sqlite3_vfs *real;
  cv_node *nodes;
  int64_t ops, cut_at;
  int cut, variant, trace;
  uint64_t rng;
  void (*on_durable)(void *);
  void *user_data;
} G;

static uint64_t rnd(void) { /* splitmix64 */
  uint64_t z = (G.rng += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* ---- images ---- */

/* Grow (new space zeroed, or garbage) or shrink to len bytes. */
static void img_resize(cv_img *im, size_t len, int garbage) {
  if (len > im->cap) {
    size_t cap = im->cap ? im->cap : 4096;
    while (cap < len) cap *= 2;
    unsigned char *b = realloc(im->b, cap);
    if (b == NULL) abort(); /* a test harness: no recovery from OOM */
    im->b = b;
    im->cap = cap;
  }
  for (size_t i = im->len; i < len; i++) im->b[i] = garbage ? (unsigned char)rnd() : 0;
  im->len = len;
}

/* Apply op; a write keeps only its first `keep` bytes. At a power cut
 * (`cut`), the space a write grew the file by holds garbage except what
 * of it was kept, and the rest of an overwritten range keeps the old
 * bytes: SQLite's assumptions about a power cut (writes are linear, new
 * file space may hold garbage). */
static void img_apply(cv_img *im, const cv_op *op, size_t keep, int cut) {
  switch (op->kind) {
    case OP_CREATE:
      im->exists = 1;
      im->len = 0;
      im->gen = op->gen;
      return;
    case OP_DELETE:
      im->exists = 0;
      im->len = 0;
      im->gen = op->gen;
      return;
    default: break;
  }
  if (!im->exists || im->gen != op->gen) return; /* that file never reached the disk */
  if (op->kind == OP_TRUNCATE) {
    img_resize(im, (size_t)op->off, 0);
    return;
  }
  size_t off = (size_t)op->off;
  if (off + op->len > im->len) img_resize(im, off + op->len, cut);
  memcpy(im->b + off, op->data, keep);
}

/* The durable image from the file as it is now. */
static void img_load(cv_img *im, const char *path) {
  FILE *f = fopen(path, "rb");
  im->exists = f != NULL;
  im->len = 0;
  if (f == NULL) return;
  unsigned char buf[65536];
  size_t r;
  while ((r = fread(buf, 1, sizeof buf, f)) > 0) {
    size_t at = im->len;
    img_resize(im, at + r, 0);
    memcpy(im->b + at, buf, r);
  }
  fclose(f);
}

static int img_store(const cv_img *im, const char *path) {
  if (!im->exists) return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return -1;
  size_t off = 0;
  while (off < im->len) {
    ssize_t w = write(fd, im->b + off, im->len - off);
    if (w <= 0) return close(fd), -1;
    off += (size_t)w;
  }
  return close(fd);
}

/* ---- nodes ---- */

static void ops_free(cv_node *n) {
  for (cv_op *op = n->head, *next; op; op = next) {
    next = op->next;
    free(op->data);
    free(op);
  }
  n->head = n->tail = NULL;
}

static cv_node *node_get(const char *path) {
  for (cv_node *n = G.nodes; n; n = n->next)
    if (strcmp(n->path, path) == 0) return n;
  cv_node *n = calloc(1, sizeof *n);
  if (n == NULL || (n->path = strdup(path)) == NULL) abort();
  img_load(&n->img, path);
  n->next = G.nodes;
  G.nodes = n;
  return n;
}

static void node_push(cv_node *n, int kind, int64_t off, const void *data, size_t len) {
  cv_op *op = calloc(1, sizeof *op);
  if (op == NULL) abort();
  op->kind = kind;
  op->off = off;
  op->len = len;
  op->seq = kind == OP_CREATE ? 0 : G.ops;
  if (kind == OP_CREATE || kind == OP_DELETE) n->gen++;
  op->gen = n->gen;
  if (len) {
    if ((op->data = malloc(len)) == NULL) abort();
    memcpy(op->data, data, len);
  }
  if (n->tail) n->tail->next = op;
  else n->head = op;
  n->tail = op;
}

/* The file's pending operations reach the disk. */
static void node_sync(cv_node *n) {
  for (cv_op *op = n->head; op; op = op->next) img_apply(&n->img, op, op->len, 0);
  ops_free(n);
  if (G.on_durable) G.on_durable(G.user_data);
}

/* Count one operation on n; 1 when the power is (now) off. With
 * CRASHVFS_TRACE set, each one is printed to stderr. */
static int counts_as_cut(const char *what, const cv_node *n, int64_t off, int64_t len) {
  if (G.cut) return 1;
  G.ops++;
  if (G.cut_at > 0 && G.ops >= G.cut_at) G.cut = 1;
  if (G.trace)
    fprintf(stderr, "crashvfs: %s%lld %s %s %lld+%lld\n", G.cut ? "CUT at " : "", (long long)G.ops,
            what, n->path, (long long)off, (long long)len);
  return G.cut;
}

/* ---- file methods ---- */

#define REAL(f) (((cv_file *)(f))->real)
#define NODE(f) (((cv_file *)(f))->node)

static int cv_close(sqlite3_file *f) {
  if (NODE(f)) NODE(f)->handles--;
  return REAL(f)->pMethods->xClose(REAL(f));
}

static int cv_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off) {
  return REAL(f)->pMethods->xRead(REAL(f), buf, amt, off);
}

static int cv_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off) {
  if (NODE(f) && counts_as_cut("write", NODE(f), off, amt)) return SQLITE_IOERR_WRITE;
  int rc = REAL(f)->pMethods->xWrite(REAL(f), buf, amt, off);
  if (rc == SQLITE_OK && NODE(f)) node_push(NODE(f), OP_WRITE, off, buf, (size_t)amt);
  return rc;
}

static int cv_truncate(sqlite3_file *f, sqlite3_int64 size) {
  if (NODE(f) && counts_as_cut("truncate", NODE(f), size, 0)) return SQLITE_IOERR_TRUNCATE;
  int rc = REAL(f)->pMethods->xTruncate(REAL(f), size);
  if (rc == SQLITE_OK && NODE(f)) node_push(NODE(f), OP_TRUNCATE, size, NULL, 0);
  return rc;
}

/* No real fsync: what it would make durable is simulated. */
static int cv_sync(sqlite3_file *f, int flags) {
  if (NODE(f) == NULL) return REAL(f)->pMethods->xSync(REAL(f), flags);
  if (counts_as_cut("sync", NODE(f), 0, 0)) return SQLITE_IOERR_FSYNC;
  node_sync(NODE(f));
  return SQLITE_OK;
}

static int cv_size(sqlite3_file *f, sqlite3_int64 *out) {
  return REAL(f)->pMethods->xFileSize(REAL(f), out);
}
static int cv_lock(sqlite3_file *f, int level) { return REAL(f)->pMethods->xLock(REAL(f), level); }
static int cv_unlock(sqlite3_file *f, int level) {
  return REAL(f)->pMethods->xUnlock(REAL(f), level);
}
static int cv_reserved(sqlite3_file *f, int *out) {
  return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int cv_fcntl(sqlite3_file *f, int op, void *arg) {
  return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int cv_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int cv_devchar(sqlite3_file *f) {
  return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int cv_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp) {
  return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, pp);
}
static int cv_shm_lock(sqlite3_file *f, int off, int n, int flags) {
  return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void cv_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int cv_shm_unmap(sqlite3_file *f, int del) {
  return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

/* Version 2: no xFetch, so SQLite never reads through a memory map the
 * shim does not see. */
static const sqlite3_io_methods cv_io = {
  .iVersion = 2,
  .xClose = cv_close,
  .xRead = cv_read,
  .xWrite = cv_write,
  .xTruncate = cv_truncate,
  .xSync = cv_sync,
  .xFileSize = cv_size,
  .xLock = cv_lock,
  .xUnlock = cv_unlock,
  .xCheckReservedLock = cv_reserved,
  .xFileControl = cv_fcntl,
  .xSectorSize = cv_sector,
  .xDeviceCharacteristics = cv_devchar,
  .xShmMap = cv_shm_map,
  .xShmLock = cv_shm_lock,
  .xShmBarrier = cv_shm_barrier,
  .xShmUnmap = cv_shm_unmap,
};

/* ---- VFS methods ---- */

static int cv_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
                   int *out_flags) {
  (void)vfs;
  cv_file *cf = (cv_file *)f;
  cf->base.pMethods = NULL;
  cf->real = (sqlite3_file *)(cf + 1);
  int tracked = name != NULL && (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_MAIN_JOURNAL |
                                          SQLITE_OPEN_WAL | SQLITE_OPEN_SUPER_JOURNAL));
  if (tracked && G.cut) return SQLITE_CANTOPEN;
  cv_node *n = tracked ? node_get(name) : NULL;
  int existed = tracked && access(name, F_OK) == 0;
  int rc = G.real->xOpen(G.real, name, cf->real, flags, out_flags);
  if (rc != SQLITE_OK) return rc;
  cf->node = n;
  if (n) {
    n->handles++;
    if (!existed) node_push(n, OP_CREATE, 0, NULL, 0);
  }
  cf->base.pMethods = &cv_io;
  return SQLITE_OK;
}

static int cv_delete(sqlite3_vfs *vfs, const char *name, int dir_sync) {
  (void)vfs;
  cv_node *n = node_get(name);
  if (counts_as_cut(dir_sync ? "delete+dirsync" : "delete", n, 0, 0)) return SQLITE_IOERR_DELETE;
  int rc = G.real->xDelete(G.real, name, 0); /* the directory sync is simulated */
  if (rc != SQLITE_OK) return rc;
  node_push(n, OP_DELETE, 0, NULL, 0);
  if (dir_sync) node_sync(n); /* the directory entry is gone for good */
  return SQLITE_OK;
}

static int cv_access(sqlite3_vfs *v, const char *name, int flags, int *out) {
  (void)v;
  return G.real->xAccess(G.real, name, flags, out);
}
static int cv_fullpath(sqlite3_vfs *v, const char *name, int n, char *out) {
  (void)v;
  return G.real->xFullPathname(G.real, name, n, out);
}
static void *cv_dlopen(sqlite3_vfs *v, const char *name) {
  (void)v;
  return G.real->xDlOpen(G.real, name);
}
static void cv_dlerror(sqlite3_vfs *v, int n, char *msg) {
  (void)v;
  G.real->xDlError(G.real, n, msg);
}
static void (*cv_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void) {
  (void)v;
  return G.real->xDlSym(G.real, h, sym);
}
static void cv_dlclose(sqlite3_vfs *v, void *h) {
  (void)v;
  G.real->xDlClose(G.real, h);
}
static int cv_random(sqlite3_vfs *v, int n, char *out) {
  (void)v;
  return G.real->xRandomness(G.real, n, out);
}
static int cv_sleep(sqlite3_vfs *v, int us) {
  (void)v;
  return G.real->xSleep(G.real, us);
}
static int cv_time(sqlite3_vfs *v, double *out) {
  (void)v;
  return G.real->xCurrentTime(G.real, out);
}
static int cv_lasterr(sqlite3_vfs *v, int n, char *out) {
  (void)v;
  return G.real->xGetLastError(G.real, n, out);
}
static int cv_time64(sqlite3_vfs *v, sqlite3_int64 *out) {
  (void)v;
  return G.real->xCurrentTimeInt64(G.real, out);
}

int crashvfs_register(void) {
  if (G.real) return 0;
  G.real = sqlite3_vfs_find(NULL);
  G.trace = getenv("CRASHVFS_TRACE") != NULL;
  if (G.real == NULL || G.real->iVersion < 2) return -1;
  sqlite3_vfs v = {
    .iVersion = 2,
    .szOsFile = (int)sizeof(cv_file) + G.real->szOsFile,
    .mxPathname = G.real->mxPathname,
    .zName = CRASHVFS_NAME,
    .xOpen = cv_open,
    .xDelete = cv_delete,
    .xAccess = cv_access,
    .xFullPathname = cv_fullpath,
    .xDlOpen = cv_dlopen,
    .xDlError = cv_dlerror,
    .xDlSym = cv_dlsym,
    .xDlClose = cv_dlclose,
    .xRandomness = cv_random,
    .xSleep = cv_sleep,
    .xCurrentTime = cv_time,
    .xGetLastError = cv_lasterr,
    .xCurrentTimeInt64 = cv_time64,
  };
  G.vfs = v;
  return sqlite3_vfs_register(&G.vfs, 0) == SQLITE_OK ? 0 : -1;
}

/* ---- the simulation ---- */

void crashvfs_reset(int64_t cut_at, int variant, uint64_t seed) {
  for (cv_node *n = G.nodes, *next; n; n = next) {
    next = n->next;
    ops_free(n);
    free(n->img.b);
    free(n->path);
    free(n);
  }
  G.nodes = NULL;
  G.ops = 0;
  G.cut_at = cut_at;
  G.cut = 0;
  G.variant = variant;
  G.rng = seed;
}

void crashvfs_cut_now(void) { G.cut = 1; }
int crashvfs_is_cut(void) { return G.cut; }
int64_t crashvfs_ops(void) { return G.ops; }

void crashvfs_on_durable(void (*fn)(void *), void *user_data) {
  G.on_durable = fn;
  G.user_data = user_data;
}

/* Bytes of a torn write that reached the disk: whole 512-byte sectors,
 * fewer than all of them. */
static size_t torn_keep(size_t len) {
  size_t sectors = (len + SECTOR - 1) / SECTOR;
  size_t keep = (size_t)(rnd() % sectors) * SECTOR;
  return keep < len ? keep : 0;
}

static int64_t last_write_seq(void) {
  int64_t last = 0;
  for (cv_node *n = G.nodes; n; n = n->next)
    for (cv_op *op = n->head; op; op = op->next)
      if (op->kind == OP_WRITE && op->seq > last) last = op->seq;
  return last;
}

/* What of the file's unsynced operations reaches its durable image. */
static void settle(cv_node *n, int64_t last_write) {
  for (cv_op *op = n->head; op; op = op->next) {
    if (G.variant == CRASHVFS_TORN && op->seq == last_write && op->kind == OP_WRITE)
      img_apply(&n->img, op, torn_keep(op->len), 1);
    else if (G.variant == CRASHVFS_RANDOM && rnd() % 2) {
      int torn = op->kind == OP_WRITE && rnd() % 4 == 0;
      img_apply(&n->img, op, torn ? torn_keep(op->len) : op->len, 1);
    }
  }
  ops_free(n);
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

int crashvfs_power_cut(char *why, size_t n) {
  G.cut = 1;
  for (cv_node *nd = G.nodes; nd; nd = nd->next)
    if (nd->handles) return snprintf(why, n, "%s is still open", nd->path), -1;
  int64_t last_write = last_write_seq();
  for (cv_node *nd = G.nodes; nd; nd = nd->next) {
    settle(nd, last_write);
    if (img_store(&nd->img, nd->path) != 0)
      return snprintf(why, n, "rewriting %s: %s", nd->path, strerror(errno)), -1;
    if (ends_with(nd->path, "-wal") || ends_with(nd->path, "-journal")) continue;
    char shm[4200];
    snprintf(shm, sizeof shm, "%s-shm", nd->path);
    if (unlink(shm) != 0 && errno != ENOENT)
      return snprintf(why, n, "unlink %s: %s", shm, strerror(errno)), -1;
  }
  return 0;
}
