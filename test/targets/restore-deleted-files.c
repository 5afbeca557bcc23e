/*
 * restore-deleted-files: files and device nodes deleted while open, and device nodes
 * other than /dev/null's, across a restore, checked from inside against the fstat each fd
 * had before the dump.
 *
 * usage: restore-deleted-files TRIGGER DIR
 *
 *   ghost   DIR/ghost: 6 bytes "hidden", owner 1234:5678, mode 04640, atime
 *           1000000000.123456789, mtime 1200000000.987654321, xattrs user.stasis="kept"
 *           and trusted.stasis="root's" (when the file system has them), deleted
 *   linked  DIR/first, hard-linked as DIR/elsewhere/second (another directory), opened
 *           through DIR/first, which is deleted
 *   node    DIR/node: a character device 1:3 (what /dev/null is), mode 0600, owner
 *           4321:8765, opened read-write, deleted
 *   kept    DIR/kept: a character device 1:5 (/dev/zero's), mode 0600, not deleted
 *
 * Verdicts after the restore, then "done N":
 *   ghost-attrs   fstat: owner, group, mode, size, atime and mtime as before, no link;
 *                 the xattrs are there (checked before reading, which would move the atime)
 *   ghost-data    it reads "hidden"
 *   linked        the fd is the inode of DIR/elsewhere/second (same st_dev/st_ino as
 *                 before), and what is written through it is read through that name
 *   node          fstat: a character device 1:3, mode 0600, owner 4321:8765, times as
 *                 before, no link; a write to it succeeds
 *   kept          fstat: the inode of DIR/kept as before (not /dev/zero's), mode 0600;
 *                 it reads zeros
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "restore-common.h"

static char g_dir[2048];

static const char *in_dir(const char *name) {
  static char buf[4][4096];
  static int next;
  char *out = buf[next++ & 3];
  snprintf(out, 4096, "%s/%s", g_dir, name);
  return out;
}

static int same_times(const struct stat *a, const struct stat *b) {
  return a->st_atim.tv_sec == b->st_atim.tv_sec && a->st_atim.tv_nsec == b->st_atim.tv_nsec &&
         a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static void describe(char *out, size_t size, const struct stat *st) {
  snprintf(out, size, "dev %lx ino %lu mode 0%o uid %u gid %u size %ld nlink %lu rdev %u:%u atime %ld.%09ld mtime %ld.%09ld",
           (unsigned long)st->st_dev, (unsigned long)st->st_ino, st->st_mode, st->st_uid, st->st_gid, (long)st->st_size,
           (unsigned long)st->st_nlink, major(st->st_rdev), minor(st->st_rdev), (long)st->st_atim.tv_sec,
           st->st_atim.tv_nsec, (long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
}

static int fail_setup(const char *what) {
  printf("setup failed: %s: %s\n", what, strerror(errno));
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s TRIGGER DIR\n", argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  snprintf(g_dir, sizeof g_dir, "%s", argv[2]);
  umask(022);

  /* ghost */
  int ghost = open(in_dir("ghost"), O_RDWR | O_CREAT | O_EXCL, 0600);
  if (ghost < 0) return fail_setup("open ghost");
  if (write(ghost, "hidden", 6) != 6) return fail_setup("write ghost");
  int have_xattr = fsetxattr(ghost, "user.stasis", "kept", 4, 0) == 0;
  if (!have_xattr && errno != ENOTSUP) return fail_setup("fsetxattr");
  int have_trusted = fsetxattr(ghost, "trusted.stasis", "root's", 6, 0) == 0;
  if (!have_trusted && errno != ENOTSUP) return fail_setup("fsetxattr trusted");
  if (fchown(ghost, 1234, 5678) != 0 || fchmod(ghost, 04640) != 0) return fail_setup("fchown/fchmod ghost");
  struct timespec times[2] = {{1000000000, 123456789}, {1200000000, 987654321}};
  if (futimens(ghost, times) != 0) return fail_setup("futimens ghost");
  if (unlink(in_dir("ghost")) != 0) return fail_setup("unlink ghost");

  /* linked */
  int linked_setup = open(in_dir("first"), O_RDWR | O_CREAT | O_EXCL, 0644);
  if (linked_setup < 0 || write(linked_setup, "before", 6) != 6) return fail_setup("first");
  close(linked_setup);
  if (mkdir(in_dir("elsewhere"), 0755) != 0 || link(in_dir("first"), in_dir("elsewhere/second")) != 0) return fail_setup("link");
  int linked = open(in_dir("first"), O_RDWR);
  if (linked < 0 || unlink(in_dir("first")) != 0) return fail_setup("open/unlink first");

  /* node */
  if (mknod(in_dir("node"), S_IFCHR | 0600, makedev(1, 3)) != 0) return fail_setup("mknod node");
  if (chown(in_dir("node"), 4321, 8765) != 0 || utimensat(AT_FDCWD, in_dir("node"), times, 0) != 0) return fail_setup("chown/utimensat node");
  int node = open(in_dir("node"), O_RDWR);
  if (node < 0 || unlink(in_dir("node")) != 0) return fail_setup("open/unlink node");

  /* kept */
  if (mknod(in_dir("kept"), S_IFCHR | 0600, makedev(1, 5)) != 0) return fail_setup("mknod kept");
  int kept = open(in_dir("kept"), O_RDONLY);
  if (kept < 0) return fail_setup("open kept");

  struct stat before_ghost, before_linked, before_node, before_kept;
  if (fstat(ghost, &before_ghost) || fstat(linked, &before_linked) || fstat(node, &before_node) || fstat(kept, &before_kept)) return fail_setup("fstat");
  printf("ready ghost=%d linked=%d node=%d kept=%d xattr=%d trusted=%d\n", ghost, linked, node, kept, have_xattr, have_trusted);

  wait_for_trigger(argv[1]);

  char was[512], now[512];
  struct stat st;
  /* ghost: everything before reading it (a read moves the atime) */
  fstat(ghost, &st);
  describe(was, sizeof was, &before_ghost);
  describe(now, sizeof now, &st);
  char value[16] = {0};
  ssize_t got = fgetxattr(ghost, "user.stasis", value, sizeof value - 1);
  int xattr_ok = !have_xattr || (got == 4 && memcmp(value, "kept", 4) == 0);
  char trusted[16] = {0};
  ssize_t got_trusted = fgetxattr(ghost, "trusted.stasis", trusted, sizeof trusted - 1);
  int trusted_ok = !have_trusted || (got_trusted == 6 && memcmp(trusted, "root's", 6) == 0);
  verdict(st.st_uid == before_ghost.st_uid && st.st_gid == before_ghost.st_gid && st.st_mode == before_ghost.st_mode &&
              st.st_size == before_ghost.st_size && st.st_nlink == 0 && same_times(&st, &before_ghost) && xattr_ok && trusted_ok,
          "ghost-attrs", "before: %s; after: %s; xattr user.stasis: %zd '%s' (expected: %s); trusted.stasis: %zd '%s' (expected: %s)", was, now,
          got, value, have_xattr ? "kept" : "none", got_trusted, trusted, have_trusted ? "root's" : "none");
  char data[16] = {0};
  got = pread(ghost, data, sizeof data - 1, 0);
  verdict(got == 6 && memcmp(data, "hidden", 6) == 0, "ghost-data", "read %zd bytes '%s'", got, data);

  /* linked */
  fstat(linked, &st);
  struct stat second;
  int have_second = stat(in_dir("elsewhere/second"), &second) == 0;
  int written = pwrite(linked, "AFTER!", 6, 0) == 6;
  char through[16] = {0};
  read_file(in_dir("elsewhere/second"), through, sizeof through);
  describe(was, sizeof was, &before_linked);
  describe(now, sizeof now, &st);
  verdict(have_second && st.st_dev == before_linked.st_dev && st.st_ino == before_linked.st_ino && second.st_ino == st.st_ino && written &&
              strcmp(through, "AFTER!") == 0,
          "linked", "before: %s; after: %s; DIR/elsewhere/second ino %lu; it reads '%s' after a write through the fd", was, now,
          have_second ? (unsigned long)second.st_ino : 0ul, through);

  /* node */
  fstat(node, &st);
  describe(was, sizeof was, &before_node);
  describe(now, sizeof now, &st);
  char link_text[4096] = {0};
  char proc_path[64];
  snprintf(proc_path, sizeof proc_path, "/proc/self/fd/%d", node);
  readlink(proc_path, link_text, sizeof link_text - 1);
  int node_writes = write(node, "x", 1) == 1;
  verdict(S_ISCHR(st.st_mode) && st.st_rdev == before_node.st_rdev && st.st_mode == before_node.st_mode && st.st_uid == 4321 &&
              st.st_gid == 8765 && st.st_nlink == 0 && same_times(&st, &before_node) && node_writes,
          "node", "before: %s; after: %s (%s); write %s", was, now, link_text, node_writes ? "ok" : strerror(errno));

  /* kept */
  fstat(kept, &st);
  describe(was, sizeof was, &before_kept);
  describe(now, sizeof now, &st);
  char zeros[4] = {1, 1, 1, 1};
  got = read(kept, zeros, 4);
  verdict(st.st_dev == before_kept.st_dev && st.st_ino == before_kept.st_ino && st.st_mode == (S_IFCHR | 0600) && got == 4 && !zeros[0] && !zeros[3],
          "kept", "before: %s; after: %s; read %zd", was, now, got);
  return verdicts_done();
}
