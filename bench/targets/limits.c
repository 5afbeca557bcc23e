/*
 * The machine's limits for a process of a given RSS.
 *
 *   limits -m MiB [-r REPS] [-H]
 *
 * Allocates and touches MiB of private anonymous memory (-H: with MADV_HUGEPAGE), then
 *   - REPS times: fork(); the child _exit(0)s at once; the parent waits for it.
 *     Prints "fork FORK_NS TOTAL_NS" per rep: FORK_NS is how long fork() took to return
 *     in the parent (what a copy-on-write snapshot costs the target), TOTAL_NS is fork +
 *     the child's exit + waitpid (the child's teardown of the copied page tables);
 *   - allocates and touches a second buffer of the same size and REPS times memcpy()s
 *     the first into it. Prints "memcpy NS" per rep.
 * One untimed warm-up of each comes first. Dies with its parent (PR_SET_PDEATHSIG).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static unsigned char *touched(size_t bytes, int huge, uint64_t seed) {
  unsigned char *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) { perror("mmap"); exit(1); }
  if (huge) madvise(mem, bytes, MADV_HUGEPAGE);
  uint64_t x = seed;
  for (size_t off = 0; off < bytes; off += 8) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    memcpy(mem + off, &x, 8);
  }
  return mem;
}

/* Through a volatile pointer so the compiler cannot drop or shorten the copies. */
static void *(*volatile copy)(void *, const void *, size_t) = memcpy;

int main(int argc, char **argv) {
  size_t mib = 0;
  int reps = 7, huge = 0, opt;
  while ((opt = getopt(argc, argv, "m:r:H")) != -1) {
    switch (opt) {
    case 'm': mib = strtoul(optarg, NULL, 10); break;
    case 'r': reps = atoi(optarg); break;
    case 'H': huge = 1; break;
    default: fprintf(stderr, "usage: %s -m MiB [-r REPS] [-H]\n", argv[0]); return 2;
    }
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1 || mib == 0) return 1;
  size_t bytes = mib << 20;
  unsigned char *src = touched(bytes, huge, 0x9e3779b97f4a7c15ULL);

  for (int i = -1; i < reps; i++) {
    uint64_t t0 = now_ns();
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    uint64_t t1 = now_ns();
    if (pid < 0) { perror("fork"); return 1; }
    int status;
    while (waitpid(pid, &status, 0) < 0) {}
    uint64_t t2 = now_ns();
    if (i >= 0) printf("fork %llu %llu\n", (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t0));
  }
  fflush(stdout);

  unsigned char *dst = touched(bytes, huge, 0x2545f4914f6cdd1dULL);
  volatile unsigned char sink = 0;
  for (int i = -1; i < reps; i++) {
    src[0] = (unsigned char)i;
    uint64_t t0 = now_ns();
    copy(dst, src, bytes);
    uint64_t t1 = now_ns();
    sink ^= dst[bytes - 1] ^ dst[0];
    if (i >= 0) printf("memcpy %llu\n", (unsigned long long)(t1 - t0));
  }
  (void)sink;
  fflush(stdout);
  return 0;
}
