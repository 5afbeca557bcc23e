/*
 * refuse-mappings: a mapping a restore could not give back as it was.
 *
 * usage: refuse-mappings KIND DIR
 *   aio          a Linux AIO context (io_setup): its ring is the mapping '/[aio] (deleted)'
 *   deleted-map  a MAP_SHARED mapping of DIR/mapped, unlinked, with no fd left open on it
 *
 * Prints "ready PID ADDRESS" (the mapping's start, hex), then "tick N" every 50 ms; at
 * each tick it checks that the mapping still works (aio: io_getevents on the context;
 * deleted-map: a store and a load through it) and prints "broken ..." if not.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  aio_context_t ctx = 0;
  char *mapped = NULL;
  if (strcmp(argv[1], "aio") == 0) {
    if (syscall(SYS_io_setup, 8, &ctx) != 0) return perror("io_setup"), 1;
    mapped = (char *)ctx;
  } else if (strcmp(argv[1], "deleted-map") == 0) {
    char path[4096];
    snprintf(path, sizeof path, "%s/mapped", argv[2]);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, 4096) != 0) return perror(path), 1;
    mapped = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mapped == MAP_FAILED) return perror("mmap"), 1;
    close(fd);
    unlink(path);
  } else {
    return 2;
  }
  printf("ready %d %lx\n", getpid(), (unsigned long)mapped);
  fflush(stdout);
  for (unsigned long tick = 1;; tick++) {
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    if (ctx) {
      struct io_event ev;
      struct timespec none = {0, 0};
      if (syscall(SYS_io_getevents, ctx, 0, 1, &ev, &none) != 0) printf("broken aio: io_getevents fails\n");
    } else {
      mapped[tick % 4096] = (char)tick;
      if (mapped[tick % 4096] != (char)tick) printf("broken deleted-map\n");
    }
    printf("tick %lu\n", tick);
    fflush(stdout);
  }
}
