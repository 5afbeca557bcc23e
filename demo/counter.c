/*
 * The demo workload: a main thread that counts and three workers in different states
 * (computing, sleeping, blocked on a pipe). The main thread notes the longest gap between
 * two of its loop iterations, which is how long it was paused; SIGUSR1 asks it to report.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t report_requested;
static int blocker[2];
static volatile unsigned long work_done;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void on_usr1(int sig) { (void)sig; report_requested = 1; }

static void *compute(void *arg) {
  (void)arg;
  for (;;) work_done++;
  return NULL;
}

static void *sleeper(void *arg) {
  (void)arg;
  for (;;) sleep(1);
  return NULL;
}

static void *reader(void *arg) {
  char c;
  (void)arg;
  for (;;) if (read(blocker[0], &c, 1) <= 0) return NULL;
}

int main(void) {
  pthread_t t;
  signal(SIGUSR1, on_usr1);
  if (pipe(blocker) != 0) return 1;
  pthread_create(&t, NULL, compute, NULL);
  pthread_create(&t, NULL, sleeper, NULL);
  pthread_create(&t, NULL, reader, NULL);
  char *buffer = malloc(64 << 20);
  memset(buffer, 1, 64 << 20); /* 64 MiB of touched memory, so the core has something to carry */
  printf("workload %d: counting with 4 threads\n", getpid());
  fflush(stdout);
  unsigned long count = 0;
  double last = now_ms(), next_print = last + 250, longest = 0;
  for (;;) {
    double t_now = now_ms();
    if (t_now - last > longest) longest = t_now - last;
    last = t_now;
    count++;
    if (t_now >= next_print) {
      printf("  count %lu\n", count);
      fflush(stdout);
      next_print = t_now + 250;
    }
    if (report_requested) {
      printf("workload %d: still counting (%lu); the longest pause it saw was %.2f ms\n", getpid(), count, longest);
      fflush(stdout);
      report_requested = 0;
    }
    usleep(100);
  }
}
