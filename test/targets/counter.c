/*
 * counter: a workload that notices being paused, signalled or given children.
 *
 *   counter [--ballast MIB] [--period-us N]
 *
 * Loops forever: sleeps N microseconds (default 1000), counts an iteration and records
 * the largest gap between consecutive iterations (CLOCK_MONOTONIC). Every 100
 * iterations it prints "tick ITERATIONS T" (T = monotonic seconds).
 * --ballast MIB mallocs and dirties that much memory first (g_ballast), so that a dump
 * takes a while.
 *
 * A SIGCHLD handler counts how often it ran. On SIGUSR1 it prints one line and goes on:
 *
 *   report seq=S iterations=I max_gap_us=G total_max_gap_us=T sigchld=C children=N waitable=W
 *
 *   max_gap_us        largest gap since the previous report (then reset)
 *   total_max_gap_us  largest gap since start
 *   children          PIDs listed in /proc/self/task/{*}/children (zombies included)
 *   waitable          1 if waitid(P_ALL, WEXITED|WNOHANG|WNOWAIT) finds a child to reap
 *                     (it does not reap it)
 *
 * Prints "ready <pid>" before the first iteration.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t g_sigchld_count;
volatile sig_atomic_t g_report_requested;
unsigned long g_iterations;
long g_max_gap_ns, g_total_max_gap_ns;
char *g_ballast;
size_t g_ballast_size;

static void on_sigchld(int sig) { (void)sig; g_sigchld_count++; }
static void on_sigusr1(int sig) { (void)sig; g_report_requested = 1; }

static long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static int count_children(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  if (!d) return -1;
  while ((e = readdir(d)) != NULL) {
    char path[300];
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    int pid;
    while (fscanf(f, "%d", &pid) == 1) n++;
    fclose(f);
  }
  closedir(d);
  return n;
}

static int waitable_child(void) {
  siginfo_t si;
  memset(&si, 0, sizeof si);
  if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0) return 0;
  return si.si_pid != 0;
}

int main(int argc, char **argv) {
  long period_us = 1000;
  size_t ballast_mib = 0;
  unsigned seq = 0;
  struct sigaction sa;

  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--ballast") && i + 1 < argc) ballast_mib = strtoul(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--period-us") && i + 1 < argc) period_us = strtol(argv[++i], NULL, 10);
    else { fprintf(stderr, "usage: counter [--ballast MIB] [--period-us N]\n"); return 2; }
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (ballast_mib) {
    g_ballast_size = ballast_mib << 20;
    g_ballast = malloc(g_ballast_size);
    if (!g_ballast) { perror("malloc"); return 2; }
    for (size_t off = 0; off < g_ballast_size; off += 4096) memset(g_ballast + off, (int)(off >> 12) | 1, 4096);
  }
  memset(&sa, 0, sizeof sa);
  sa.sa_flags = SA_RESTART;
  sa.sa_handler = on_sigchld;
  sigaction(SIGCHLD, &sa, NULL);
  sa.sa_handler = on_sigusr1;
  sigaction(SIGUSR1, &sa, NULL);

  printf("ready %d\n", (int)getpid());
  long prev = now_ns();
  for (;;) {
    struct timespec period = {period_us / 1000000, (period_us % 1000000) * 1000};
    nanosleep(&period, NULL);
    long now = now_ns(), gap = now - prev;
    prev = now;
    g_iterations++;
    if (gap > g_max_gap_ns) g_max_gap_ns = gap;
    if (gap > g_total_max_gap_ns) g_total_max_gap_ns = gap;
    if (g_iterations % 100 == 0) printf("tick %lu %ld.%09ld\n", g_iterations, now / 1000000000L, now % 1000000000L);
    if (g_report_requested) {
      g_report_requested = 0;
      printf("report seq=%u iterations=%lu max_gap_us=%ld total_max_gap_us=%ld sigchld=%d children=%d waitable=%d\n",
             ++seq, g_iterations, g_max_gap_ns / 1000, g_total_max_gap_ns / 1000, (int)g_sigchld_count,
             count_children(), waitable_child());
      g_max_gap_ns = 0;
      prev = now_ns(); /* the report itself is not a gap */
    }
  }
}
