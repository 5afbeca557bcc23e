/*
 * restore-shmem: shared memory that is more than one mapping: after a restore, what was
 * one object must still be one object.
 *
 * usage: restore-shmem TRIGGER DATAFILE
 *   DATAFILE: a regular file of at least 2 pages (the test writes it), mapped MAP_SHARED.
 *
 * Verdicts after the restore, then "done N", exit 0 only if all passed:
 *   memfd-fd      a memfd kept open as an fd and mapped MAP_SHARED: the contents are there,
 *                 the maps line still names /memfd:region, and it is still one object
 *                 (a pwrite() through the fd shows in the mapping, a store through the
 *                 mapping shows in a pread())
 *   memfd-map     a memfd whose fd was closed, only mapped: contents, maps line, and a
 *                 child forked after the restore shares it
 *   anon-alias    a MAP_SHARED|MAP_ANONYMOUS area and a second mapping of the same pages
 *                 (mremap with old_size 0): a store through one shows in the other
 *   anon-offset   what is left of a 4-page MAP_SHARED|MAP_ANONYMOUS area whose first two
 *                 pages were unmapped (pages 2-3, at page offset 2), and a second mapping
 *                 of its page 3 alone: contents, and stores through either show in the other
 *   file-shared   DATAFILE mapped MAP_SHARED: a store through the mapping reaches the
 *                 file, a pwrite() to the file shows in the mapping
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "restore-common.h"

#define PAGE 4096UL

/* The maps line of the mapping starting at `start`. */
static void maps_line(void *start, char *out, size_t size) {
  static char maps[1 << 16];
  char head[32];
  out[0] = 0;
  int fd = open("/proc/self/maps", O_RDONLY);
  size_t n = 0;
  ssize_t got;
  while (fd >= 0 && (got = read(fd, maps + n, sizeof maps - 1 - n)) > 0) n += (size_t)got;
  if (fd >= 0) close(fd);
  maps[n] = 0;
  snprintf(head, sizeof head, "%lx-", (unsigned long)start);
  for (char *p = maps; p && *p;) {
    char *nl = strchr(p, '\n');
    if (strncmp(p, head, strlen(head)) == 0) {
      size_t len = nl ? (size_t)(nl - p) : strlen(p);
      if (len >= size) len = size - 1;
      memcpy(out, p, len);
      out[len] = 0;
      return;
    }
    p = nl ? nl + 1 : NULL;
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s TRIGGER DATAFILE\n", argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);

  int mfd = memfd_create("region", 0);
  if (mfd < 0 || ftruncate(mfd, 2 * PAGE) != 0) return 2;
  char *mem = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
  strcpy(mem, "memfd with its fd");

  int ofd = memfd_create("only-mapped", 0);
  if (ofd < 0 || ftruncate(ofd, PAGE) != 0) return 2;
  char *only = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, ofd, 0);
  close(ofd);
  strcpy(only, "memfd without fd");

  char *anon = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  strcpy(anon, "shared anonymous");
  char *alias = mremap(anon, 0, PAGE, MREMAP_MAYMOVE);
  if (alias == MAP_FAILED) {
    perror("mremap");
    return 2;
  }

  char *quad = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  for (int i = 0; i < 4; i++) sprintf(quad + i * PAGE, "page %d", i);
  char *page3 = mremap(quad + 3 * PAGE, 0, PAGE, MREMAP_MAYMOVE);
  if (page3 == MAP_FAILED || munmap(quad, 2 * PAGE) != 0) return 2;
  char *rest = quad + 2 * PAGE;

  int dfd = open(argv[2], O_RDWR);
  if (dfd < 0) {
    perror(argv[2]);
    return 2;
  }
  char *file = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, dfd, 0);
  if (file == MAP_FAILED) return 2;
  file[10] = 'S'; /* a store through the mapping, before the dump */

  printf("ready %d memfd=%p only=%p anon=%p alias=%p file=%p\n", getpid(), (void *)mem, (void *)only, (void *)anon, (void *)alias, (void *)file);

  wait_for_trigger(argv[1]);
  print_smaps_vmflags();

  char line[256], buf[64];
  maps_line(mem, line, sizeof line);
  int contents = strcmp(mem, "memfd with its fd") == 0;
  int named = strstr(line, "/memfd:region") != NULL && strstr(line, " rw-s ") != NULL;
  ssize_t w = pwrite(mfd, "F", 1, 0);
  int fd_to_map = w == 1 && mem[0] == 'F';
  mem[100] = 'M';
  ssize_t r = pread(mfd, buf, 1, 100);
  int map_to_fd = r == 1 && buf[0] == 'M';
  verdict(contents && named && fd_to_map && map_to_fd, "memfd-fd", "contents %s; maps line [%s]; pwrite through fd %d %s in the mapping; a store in the mapping %s through the fd", contents ? "ok" : "WRONG",
          line, mfd, fd_to_map ? "shows" : (w == 1 ? "does NOT show" : "failed"), map_to_fd ? "shows" : "does NOT show");

  maps_line(only, line, sizeof line);
  contents = strcmp(only, "memfd without fd") == 0;
  named = strstr(line, "/memfd:only-mapped") != NULL && strstr(line, " rw-s ") != NULL;
  pid_t child = fork();
  if (child == 0) {
    only[0] = 'C';
    _exit(0);
  }
  waitpid(child, NULL, 0);
  verdict(contents && named && only[0] == 'C', "memfd-map", "contents %s; maps line [%s]; a child's store %s", contents ? "ok" : "WRONG", line, only[0] == 'C' ? "shows" : "does NOT show");

  contents = strcmp(anon, "shared anonymous") == 0 && strcmp(alias, "shared anonymous") == 0;
  anon[0] = 'X';
  int one_way = alias[0] == 'X';
  alias[1] = 'Y';
  int other_way = anon[1] == 'Y';
  verdict(contents && one_way && other_way, "anon-alias", "contents %s; a store through %p %s at %p, and back %s", contents ? "ok" : "WRONG", (void *)anon, one_way ? "shows" : "does NOT show", (void *)alias,
          other_way ? "shows" : "does NOT show");

  contents = strcmp(rest, "page 2") == 0 && strcmp(rest + PAGE, "page 3") == 0 && strcmp(page3, "page 3") == 0;
  rest[PAGE + 10] = 'X';
  one_way = page3[10] == 'X';
  page3[11] = 'Y';
  other_way = rest[PAGE + 11] == 'Y';
  verdict(contents && one_way && other_way, "anon-offset", "contents %s ('%s', '%s', '%s'); a store through %p %s at %p, and back %s", contents ? "ok" : "WRONG", rest, rest + PAGE, page3,
          (void *)(rest + PAGE), one_way ? "shows" : "does NOT show", (void *)page3, other_way ? "shows" : "does NOT show");

  int before = file[10] == 'S';
  file[20] = 'T';
  msync(file, 2 * PAGE, MS_SYNC);
  r = pread(dfd, buf, 1, 20);
  int reaches = r == 1 && buf[0] == 'T';
  w = pwrite(dfd, "U", 1, 30);
  int shows = w == 1 && file[30] == 'U';
  verdict(before && reaches && shows, "file-shared", "the store of before the dump %s; a store now %s the file; a pwrite to the file %s in the mapping", before ? "is there" : "is LOST",
          reaches ? "reaches" : "does NOT reach", shows ? "shows" : "does NOT show");

  return verdicts_done();
}
