/*
 * restore-common.h: what the self-checking restore-*.c targets share. Included by each
 * target after its own #define _GNU_SOURCE and system headers; everything here is static
 * (each target is compiled on its own), and `static inline` where not every target uses
 * it, so that -Wall does not warn about the unused ones.
 *
 *   verdict(ok, name, fmt, ...)  prints "OK name" or "FAIL name: why" (and counts failures)
 *   verdicts_done()              prints "done N" (N failures) and returns main's exit code
 *   wait_for_trigger(path)       sleeps until the test creates the trigger file
 *   read_file(path, buf, size)   whole-file read into a caller's buffer, without malloc
 *   gettid_raw(), now_mono()     the thread's TID; CLOCK_MONOTONIC in seconds
 *   print_smaps_vmflags()        one "SMAPS START-END FLAGS..." line per mapping of
 *                                /proc/self/smaps (the test compares them with smaps
 *                                read before the dump)
 */
#ifndef RESTORE_COMMON_H
#define RESTORE_COMMON_H

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static int g_failures;

static void verdict(int ok, const char *name, const char *fmt, ...) {
  if (ok) {
    printf("OK %s\n", name);
  } else {
    va_list ap;
    g_failures++;
    printf("FAIL %s: ", name);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
  }
  fflush(stdout);
}

/* The last lines of main: "done N", exit 0 only if every check passed. */
static int verdicts_done(void) {
  printf("done %d\n", g_failures);
  return g_failures ? 1 : 0;
}

static void wait_for_trigger(const char *path) {
  struct timespec ts = {0, 10 * 1000 * 1000};
  while (access(path, F_OK) != 0) nanosleep(&ts, NULL);
}

/* Whole-file read into a static buffer, without malloc (the heap must not move). */
static inline size_t read_file(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY);
  size_t n = 0;
  if (fd < 0) return 0;
  for (;;) {
    ssize_t got = read(fd, buf + n, size - 1 - n);
    if (got <= 0) break;
    n += (size_t)got;
  }
  close(fd);
  buf[n] = 0;
  return n;
}

static inline pid_t gettid_raw(void) { return (pid_t)syscall(SYS_gettid); }

static inline double now_mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One "SMAPS START-END FLAGS..." line per mapping, from a static buffer (nothing is mapped). */
static inline void print_smaps_vmflags(void) {
  static char smaps[1 << 20];
  char range[64] = "";
  read_file("/proc/self/smaps", smaps, sizeof smaps);
  for (char *line = smaps; line && *line;) {
    char *end = strchr(line, '\n');
    unsigned long a, b;
    if (end) *end = 0;
    if (sscanf(line, "%lx-%lx ", &a, &b) == 2) snprintf(range, sizeof range, "%lx-%lx", a, b);
    else if (strncmp(line, "VmFlags:", 8) == 0) printf("SMAPS %s%s\n", range, line + 8);
    line = end ? end + 1 : NULL;
  }
  fflush(stdout);
}

#endif
