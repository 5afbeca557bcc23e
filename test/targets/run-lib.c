/*
 * run-lib: a target for the library tests (coreDump, check, checkpoint + restore).
 *
 *   run-lib [--mib N] [--threads N] [--socket] [--ticks N] [--exit CODE] [--tick-ms D]
 *
 * Mallocs and touches N MiB (default 0), starts N extra threads (default 0) that sleep in
 * a loop in worker_sleep(), opens a UDP socket at fd 7 with --socket, then writes
 * "ready PID" and loops in main_loop(): every D ms (default 20) it writes "tick I" and,
 * after --ticks N ticks (default: forever), "done" and exits with CODE (default 0).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long g_ticks;
static char *g_ballast;

static void *worker_sleep(void *arg) {
  (void)arg;
  for (;;) usleep(50000);
  return NULL;
}

static void main_loop(long ticks, long tick_ms, int code) {
  for (long i = 0; ticks < 0 || i < ticks; i++) {
    printf("tick %ld\n", i);
    fflush(stdout);
    g_ticks++;
    struct timespec ts = {tick_ms / 1000, (tick_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
  }
  printf("done\n");
  fflush(stdout);
  exit(code);
}

int main(int argc, char **argv) {
  long mib = 0, threads = 0, ticks = -1, tick_ms = 20;
  int sock = 0, code = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--mib") && i + 1 < argc) mib = atol(argv[++i]);
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atol(argv[++i]);
    else if (!strcmp(argv[i], "--socket")) sock = 1;
    else if (!strcmp(argv[i], "--ticks") && i + 1 < argc) ticks = atol(argv[++i]);
    else if (!strcmp(argv[i], "--exit") && i + 1 < argc) code = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--tick-ms") && i + 1 < argc) tick_ms = atol(argv[++i]);
    else {
      fprintf(stderr, "run-lib: bad argument %s\n", argv[i]);
      return 2;
    }
  }
  if (mib > 0) {
    size_t size = (size_t)mib << 20;
    g_ballast = malloc(size);
    if (!g_ballast) return 3;
    for (size_t i = 0; i < size; i += 4096) g_ballast[i] = (char)(i >> 12 | 1);
  }
  for (long i = 0; i < threads; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, worker_sleep, NULL) != 0) return 4;
  }
  if (sock) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0 || dup2(s, 7) != 7) return 5;
    if (s != 7) close(s);
  }
  printf("ready %d\n", getpid());
  fflush(stdout);
  main_loop(ticks, tick_ms, code);
  return 0;
}
