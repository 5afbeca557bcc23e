/*
 * Benchmark target for checkpoint/restore: a process that can be dumped, restored, and
 * then asked whether its memory came back intact.
 *
 *   restoree [-m MiB] [-t THREADS] [-l LIFETIME_S] [-c DIR]
 *
 * Allocates and touches MiB of private anonymous memory (every 8 bytes distinct, so the
 * image is neither sparse nor trivially compressible; default 0), remembers the XOR of
 * all its 64-bit words, starts THREADS-1 extra threads (default 1 thread in all) that
 * sleep in a 10 ms loop, prints its first line, then sleeps in a 10 ms loop in the main
 * thread too. With -m 0 -t 1 it is the smallest C program worth restoring: its first
 * line comes right after the dynamic loader and libc's start-up.
 *
 * It prints one line on stdout, once, when its memory is touched:
 *   ready PID TOUCH_MS RSS_KIB
 * With -c DIR, each main-loop iteration also looks for the file DIR/check-PID; when it
 * appears, the process deletes it and writes DIR/alive-PID (through a temporary name and
 * a rename) with one line:
 *   alive PID ITERS ok|bad
 * the main-loop iterations so far, and whether the memory still XORs to what it did at
 * start (after a restore: the contents came back). A file, not a signal or stdout, so
 * the check depends on nothing the restore might not have brought back but memory,
 * registers and the ability to make system calls.
 *
 * It closes every fd above 2 it inherited (a benchmark's own environment may leak some,
 * and stasis refuses, rightly, pipes shared with other processes).
 * It exits by itself LIFETIME_S seconds after it started (CLOCK_MONOTONIC, which a
 * restore does not reset; default 600), so a restored copy that a crashed benchmark
 * could not kill does not run for ever. No PR_SET_PDEATHSIG: its parent after a restore
 * is `stasis restore`, which exits at once.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void *sleeper(void *arg) {
  volatile uint64_t *counter = arg;
  struct timespec tick = {0, 10000000};
  for (;;) {
    nanosleep(&tick, NULL);
    (*counter)++;
  }
  return NULL;
}

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = -1;
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) kib = strtol(line + 6, NULL, 10);
  fclose(f);
  return kib;
}

static uint64_t xor_words(const uint64_t *w, size_t n) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) { a ^= w[i]; b ^= w[i + 1]; c ^= w[i + 2]; d ^= w[i + 3]; }
  for (; i < n; i++) a ^= w[i];
  return a ^ b ^ c ^ d;
}

int main(int argc, char **argv) {
  size_t mib = 0;
  int threads = 1, opt;
  long lifetime_s = 600;
  const char *dir = NULL;
  while ((opt = getopt(argc, argv, "m:t:l:c:")) != -1) {
    switch (opt) {
    case 'm': mib = strtoul(optarg, NULL, 10); break;
    case 't': threads = atoi(optarg); break;
    case 'l': lifetime_s = atol(optarg); break;
    case 'c': dir = optarg; break;
    default:
      fprintf(stderr, "usage: %s [-m MiB] [-t THREADS] [-l LIFETIME_S] [-c DIR]\n", argv[0]);
      return 2;
    }
  }
  uint64_t t0 = now_ns();
  close_range(3, ~0U, 0);

  size_t bytes = mib << 20;
  uint64_t *mem = NULL, expected = 0;
  if (bytes) {
    mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) { perror("mmap"); return 1; }
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < bytes / 8; i++) {
      x ^= x << 13; x ^= x >> 7; x ^= x << 17;
      mem[i] = x;
    }
    expected = xor_words(mem, bytes / 8);
  }
  double touch_ms = (double)(now_ns() - t0) / 1e6;

  static volatile uint64_t counters[64];
  for (int i = 1; i < threads && i < 64; i++) {
    pthread_t th;
    if (pthread_create(&th, NULL, sleeper, (void *)&counters[i]) != 0) { perror("pthread_create"); return 1; }
  }

  printf("ready %d %.3f %ld\n", (int)getpid(), touch_ms, bytes ? rss_kib() : 0L);
  fflush(stdout);

  char check[4096], alive[4096], tmp[4096];
  if (dir) {
    snprintf(check, sizeof check, "%s/check-%d", dir, (int)getpid());
    snprintf(alive, sizeof alive, "%s/alive-%d", dir, (int)getpid());
    snprintf(tmp, sizeof tmp, "%s/.alive-%d", dir, (int)getpid());
  }

  struct timespec tick = {0, 10000000};
  uint64_t iters = 0, deadline = t0 + (uint64_t)lifetime_s * 1000000000ULL;
  for (;;) {
    nanosleep(&tick, NULL);
    iters++;
    if (dir && unlink(check) == 0) {
      int ok = !bytes || xor_words(mem, bytes / 8) == expected;
      char line[128];
      int n = snprintf(line, sizeof line, "alive %d %llu %s\n", (int)getpid(), (unsigned long long)iters, ok ? "ok" : "bad");
      int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd >= 0) {
        int written = write(fd, line, (size_t)n) == n;
        close(fd);
        if (written) rename(tmp, alive);
      }
    }
    if (now_ns() > deadline) return 0;
  }
}
