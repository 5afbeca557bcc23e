/*
 * run-steps: a program with deterministic output and state that lives only in its memory,
 * for `stasis run` (supervised checkpoints, --resume).
 *
 *   run-steps [--steps N] [--delay-ms D] [--stop-at K]... [--no-stop] [--mib M]
 *             [--exit CODE] [--term-exit CODE] [--threads T]
 *
 * For each step i in 0..N-1 it mutates a heap buffer of M MiB (default 1) with a PRNG,
 * and writes one line with one write(2):
 *
 *   step I token T sum S
 *
 * T is 8 random bytes read from /dev/urandom at start (the same on every line of one
 * process, different in another run: a program restarted from scratch shows itself); S is
 * a running checksum over the buffer. Without the token the output is the same in every run.
 *
 * At each --stop-at K (before step K's line) it writes "stop K", asks for its own
 * checkpoint with kill(getpid(), SIGSTOP), then writes "after checkpoint K". --no-stop
 * writes the same lines without stopping (the uninterrupted reference run). After the last
 * step it writes "done sum S" and exits with CODE (default 0). --term-exit CODE installs
 * a SIGTERM handler that writes "got SIGTERM" and exits with CODE.
 * Sleeps D ms (default 20) between steps. --threads T starts T more threads that each
 * count in their own loop (sleeping 1 ms a turn); they never print, so the output is the
 * same with or without them, and the final line adds "threads ok" when every one of them
 * has counted since the last stop (they were restored running).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int term_exit = -1;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  for (int off = 0; off < n;) {
    ssize_t w = write(1, line + off, n - off);
    if (w <= 0) _exit(99);
    off += w;
  }
}

static void on_term(int sig) {
  (void)sig;
  static const char msg[] = "got SIGTERM\n";
  if (write(1, msg, sizeof msg - 1) < 0) _exit(98);
  _exit(term_exit);
}

static volatile unsigned long g_counts[64];

static void *counter(void *arg) {
  volatile unsigned long *mine = arg;
  struct timespec ts = {0, 1000000L};
  for (;;) {
    (*mine)++;
    nanosleep(&ts, NULL);
  }
  return NULL;
}

static uint64_t xorshift(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

int main(int argc, char **argv) {
  long steps = 40, delay_ms = 20, mib = 1;
  int exit_code = 0, no_stop = 0, threads = 0;
  long stops[64];
  int nstops = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atol(argv[++i]);
    else if (!strcmp(argv[i], "--delay-ms") && i + 1 < argc) delay_ms = atol(argv[++i]);
    else if (!strcmp(argv[i], "--stop-at") && i + 1 < argc && nstops < 64) stops[nstops++] = atol(argv[++i]);
    else if (!strcmp(argv[i], "--no-stop")) no_stop = 1;
    else if (!strcmp(argv[i], "--mib") && i + 1 < argc) mib = atol(argv[++i]);
    else if (!strcmp(argv[i], "--exit") && i + 1 < argc) exit_code = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--term-exit") && i + 1 < argc) term_exit = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
    else {
      fprintf(stderr, "run-steps: bad argument %s\n", argv[i]);
      return 2;
    }
  }
  if (term_exit >= 0) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
  }
  uint64_t token = 0;
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || read(fd, &token, sizeof token) != sizeof token) return 3;
  close(fd);

  size_t words = (size_t)mib * (1 << 20) / 8;
  uint64_t *buf = malloc(words * 8);
  if (!buf) return 4;
  uint64_t rng = 0x9e3779b97f4a7c15ULL;
  for (size_t i = 0; i < words; i++) buf[i] = xorshift(&rng);
  uint64_t sum = 0;
  if (threads > 64) threads = 64;
  for (int i = 0; i < threads; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, counter, (void *)&g_counts[i]) != 0) return 5;
  }
  unsigned long seen[64] = {0};

  for (long i = 0; i < steps; i++) {
    for (int s = 0; s < nstops; s++) {
      if (stops[s] != i) continue;
      say("stop %ld\n", i);
      if (!no_stop) kill(getpid(), SIGSTOP);
      say("after checkpoint %ld\n", i);
      for (int k = 0; k < threads; k++) seen[k] = g_counts[k];
    }
    for (int k = 0; k < 4096; k++) {
      size_t at = xorshift(&rng) % words;
      buf[at] ^= xorshift(&rng);
      sum = sum * 1099511628211ULL + buf[at];
    }
    say("step %ld token %016llx sum %016llx\n", i, (unsigned long long)token, (unsigned long long)sum);
    struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
  }
  if (threads > 0) {
    /* every thread must still be counting: give them up to 2 s */
    int ok = 0;
    for (int tries = 0; tries < 200 && !ok; tries++) {
      ok = 1;
      for (int k = 0; k < threads; k++)
        if (g_counts[k] == seen[k]) ok = 0;
      if (!ok) {
        struct timespec ts = {0, 10000000L};
        nanosleep(&ts, NULL);
      }
    }
    say("done sum %016llx threads %s\n", (unsigned long long)sum, ok ? "ok" : "STUCK");
  } else {
    say("done sum %016llx\n", (unsigned long long)sum);
  }
  return exit_code;
}
