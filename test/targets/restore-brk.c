/*
 * restore-brk: the program break and the heap, checked by the program itself after a
 * restore.
 *
 * usage: restore-brk TRIGGER
 *
 * Setup: malloc'd blocks (glibc's main arena lives in the brk heap) and 256 KiB taken
 * with sbrk(), all filled with patterns.
 *
 * Verdicts after the restore, then "done N", exit 0 only if all passed:
 *   brk        sbrk(0) is where it was; start_brk (/proc/self/stat field 47) too
 *   heap-map   /proc/self/maps shows [heap] from start_brk to the break
 *   contents   the sbrk'd area and the malloc'd blocks hold their patterns
 *   grow       sbrk(+1 MiB) works: returns the old break, the new memory is zero and
 *              writable, [heap] now ends at the new break
 *   shrink     sbrk(-1 MiB) gives it back: the break and [heap] end move down
 *   malloc     malloc/free of small and large (mmap'd) blocks still work, and new
 *              small blocks come from the heap
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "restore-common.h"

/* The [heap] line of /proc/self/maps: start and end, 0 if none. */
static void heap_range(unsigned long *start, unsigned long *end) {
  static char maps[1 << 16];
  *start = *end = 0;
  read_file("/proc/self/maps", maps, sizeof maps);
  for (char *line = maps; line && *line;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    if (strstr(line, "[heap]")) sscanf(line, "%lx-%lx", start, end);
    line = nl ? nl + 1 : NULL;
  }
}

static unsigned long start_brk_field(void) {
  static char stat[4096];
  read_file("/proc/self/stat", stat, sizeof stat);
  char *p = strrchr(stat, ')');
  if (!p) return 0;
  p += 2; /* field 3 */
  for (int field = 3; field < 47 && p; field++) {
    p = strchr(p, ' ');
    if (p) p++;
  }
  return p ? strtoul(p, NULL, 10) : 0;
}

#define NBLOCKS 64

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s TRIGGER\n", argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("starting %d\n", getpid());

  unsigned char *blocks[NBLOCKS];
  for (int i = 0; i < NBLOCKS; i++) {
    blocks[i] = malloc(1000 + (size_t)i * 37);
    memset(blocks[i], i + 1, 1000 + (size_t)i * 37);
  }
  size_t area_size = 256 * 1024;
  unsigned char *area = sbrk((intptr_t)area_size);
  if (area == (void *)-1) return 2;
  for (size_t i = 0; i < area_size; i++) area[i] = (unsigned char)(i * 13 + 1);
  void *brk_before = sbrk(0);
  unsigned long start_brk_before = start_brk_field();
  unsigned long hs, he;
  heap_range(&hs, &he);
  printf("ready %d brk=%p start_brk=%#lx heap=%#lx-%#lx\n", getpid(), brk_before, start_brk_before, hs, he);

  wait_for_trigger(argv[1]);

  /* --- checks, in the restored process --- */
  void *brk_now = sbrk(0);
  unsigned long start_brk_now = start_brk_field();
  verdict(brk_now == brk_before && start_brk_now == start_brk_before, "brk", "sbrk(0) %p (was %p), start_brk %#lx (was %#lx)", brk_now, brk_before, start_brk_now, start_brk_before);

  unsigned long hs2, he2;
  heap_range(&hs2, &he2);
  verdict(hs2 == start_brk_before && he2 == (unsigned long)brk_before && hs2 == hs && he2 == he, "heap-map", "[heap] %#lx-%#lx now, %#lx-%#lx before; start_brk %#lx, brk %p", hs2, he2, hs, he,
          start_brk_before, brk_before);

  int contents = 1;
  for (size_t i = 0; i < area_size; i++)
    if (area[i] != (unsigned char)(i * 13 + 1)) {
      contents = 0;
      break;
    }
  int blocks_ok = 1;
  for (int i = 0; i < NBLOCKS && blocks_ok; i++)
    for (size_t k = 0; k < 1000 + (size_t)i * 37; k++)
      if (blocks[i][k] != (unsigned char)(i + 1)) {
        blocks_ok = 0;
        break;
      }
  verdict(contents && blocks_ok, "contents", "sbrk'd area %s, malloc'd blocks %s", contents ? "ok" : "WRONG", blocks_ok ? "ok" : "WRONG");

  size_t more = 1 << 20;
  unsigned char *grown = sbrk((intptr_t)more);
  int grow_ok = grown == brk_before;
  int zero = 1;
  if (grown != (void *)-1) {
    for (size_t i = 0; i < more; i += 4096)
      if (grown[i] != 0) zero = 0;
    memset(grown, 0x77, more);
  }
  unsigned long hs3, he3;
  heap_range(&hs3, &he3);
  grow_ok = grow_ok && zero && he3 == (unsigned long)brk_before + more && sbrk(0) == (unsigned char *)brk_before + more;
  verdict(grow_ok, "grow", "sbrk(+1 MiB) returned %p (old break %p, errno %s), new memory %s, [heap] ends at %#lx (expected %#lx)", (void *)grown, brk_before, grown == (void *)-1 ? strerror(errno) : "-",
          zero ? "zero" : "NOT ZERO", he3, (unsigned long)brk_before + more);

  void *back = sbrk(-(intptr_t)more);
  heap_range(&hs3, &he3);
  verdict(back != (void *)-1 && sbrk(0) == brk_before && he3 == (unsigned long)brk_before, "shrink", "sbrk(-1 MiB) returned %p, break now %p (expected %p), [heap] ends at %#lx", back, sbrk(0), brk_before, he3);

  for (int i = 0; i < NBLOCKS; i += 2) free(blocks[i]);
  unsigned char *small = malloc(200);
  unsigned char *large = malloc(8 << 20);
  int malloc_ok = small && large;
  if (small) memset(small, 1, 200);
  if (large) memset(large, 2, 8 << 20);
  unsigned long hs4, he4;
  heap_range(&hs4, &he4);
  int small_in_heap = small && (unsigned long)small >= hs4 && (unsigned long)small < he4;
  verdict(malloc_ok && small_in_heap, "malloc", "malloc(200) = %p (heap %#lx-%#lx), malloc(8 MiB) = %p", (void *)small, hs4, he4, (void *)large);
  free(large);
  free(small);

  return verdicts_done();
}
