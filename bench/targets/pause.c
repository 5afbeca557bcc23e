/*
 * Benchmark target: measures, from inside the process, how long it was paused.
 *
 *   pause -m MiB [-t THREADS] [-s TICK_US] [-H] [-w]
 *
 * Allocates and touches MiB of private anonymous memory (every page gets distinct,
 * non-zero contents), starts THREADS-1 extra threads (default 4 threads in all) that
 * sleep in a 1 ms loop, then loops in the main thread reading CLOCK_MONOTONIC and
 * records the largest gap between consecutive iterations. Each iteration sleeps
 * TICK_US microseconds first (default 100; 0 = busy spin): a mostly-sleeping loop is not
 * preempted by the dumper or by writeback on a small machine, so the gap it sees is the
 * stop, not the scheduler.
 *   -H  madvise(MADV_HUGEPAGE) the region (transparent huge pages)
 *   -w  write one page of the region per iteration (copy-on-write faults after a fork)
 *
 * Each iteration also reads the thread's run-queue wait (run_delay, the second field of
 * /proc/thread-self/schedstat), so a gap can be split into time spent waiting for a CPU
 * and time off the run queue (stopped by ptrace, or the tick's own sleep). The wait is
 * noise from other processes on a busy machine, but it is also part of a real pause when
 * the dumper makes the target run something (an injected syscall) while it is stopped:
 * the gap is the pause; the gap without the wait is a lower bound.
 *
 * Protocol, on stdout, one line each:
 *   ready PID TOUCH_MS RSS_KIB SCHEDSTAT   once, when the memory is touched; SCHEDSTAT is
 *                                          1 when run_delay can be read
 *   gap NOW_NS MAX_NS MAX_OFF_NS STALLS STALL_NS ITERS [GAP_NS@END_NS@WAIT_NS ...]
 *                                          on each SIGUSR1: CLOCK_MONOTONIC now (so the
 *                                          reader can tell a late answer to an earlier
 *                                          request from the answer to its own); the largest
 *                                          gap minus its run-queue wait; the number and
 *                                          total of gaps >= 1 ms (stalls); iterations;
 *                                          the TOP largest stalls, each with when it
 *                                          ended (ns since the previous report) and its
 *                                          run-queue wait. Then every counter is reset.
 * The process dies with its parent (PR_SET_PDEATHSIG), so it never outlives the bench.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define STALL_NS 1000000ULL
#define TOP 4

static struct { uint64_t gap, at, wait; } top[TOP];
static int ntop;

/* Keeps the TOP largest stalls. */
static void note_stall(uint64_t gap, uint64_t at, uint64_t wait) {
  int i;
  if (ntop < TOP) i = ntop++;
  else if (top[TOP - 1].gap >= gap) return;
  else i = TOP - 1;
  while (i > 0 && top[i - 1].gap < gap) { top[i] = top[i - 1]; i--; }
  top[i].gap = gap;
  top[i].at = at;
  top[i].wait = wait;
}

static volatile sig_atomic_t report_requested;

static void on_usr1(int sig) { (void)sig; report_requested = 1; }

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void *sleeper(void *arg) {
  volatile uint64_t *counter = arg;
  struct timespec ms = {0, 1000000};
  for (;;) {
    nanosleep(&ms, NULL);
    (*counter)++;
  }
  return NULL;
}

static int schedstat_fd = -1;

/* run_delay of the calling thread in ns, or 0 when it cannot be read. */
static uint64_t run_delay_ns(void) {
  char buf[128];
  if (schedstat_fd < 0) return 0;
  ssize_t n = pread(schedstat_fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  buf[n] = 0;
  char *p = strchr(buf, ' ');
  return p ? strtoull(p + 1, NULL, 10) : 0;
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

int main(int argc, char **argv) {
  size_t mib = 0;
  int threads = 4, huge = 0, writes = 0;
  long tick_us = 100;
  int opt;
  while ((opt = getopt(argc, argv, "m:t:s:Hw")) != -1) {
    switch (opt) {
    case 'm': mib = strtoul(optarg, NULL, 10); break;
    case 't': threads = atoi(optarg); break;
    case 's': tick_us = atol(optarg); break;
    case 'H': huge = 1; break;
    case 'w': writes = 1; break;
    default:
      fprintf(stderr, "usage: %s -m MiB [-t THREADS] [-s TICK_US] [-H] [-w]\n", argv[0]);
      return 2;
    }
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 1;

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);

  size_t bytes = mib << 20, page = (size_t)sysconf(_SC_PAGESIZE);
  unsigned char *mem = NULL;
  uint64_t t0 = now_ns();
  if (bytes) {
    mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) { perror("mmap"); return 1; }
    if (huge) madvise(mem, bytes, MADV_HUGEPAGE);
    /* Distinct contents per 8 bytes so the image is neither sparse nor trivially compressible. */
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (size_t off = 0; off < bytes; off += 8) {
      x ^= x << 13; x ^= x >> 7; x ^= x << 17;
      memcpy(mem + off, &x, 8);
    }
  }
  double touch_ms = (double)(now_ns() - t0) / 1e6;

  static volatile uint64_t counters[64];
  for (int i = 1; i < threads && i < 64; i++) {
    pthread_t th;
    if (pthread_create(&th, NULL, sleeper, (void *)&counters[i]) != 0) { perror("pthread_create"); return 1; }
  }

  schedstat_fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
  printf("ready %d %.3f %ld %d\n", (int)getpid(), touch_ms, rss_kib(), schedstat_fd >= 0 && run_delay_ns() > 0);
  fflush(stdout);

  struct timespec tick = {tick_us / 1000000, (tick_us % 1000000) * 1000};
  size_t pages = bytes / page, next_page = 0;
  uint64_t max_gap = 0, max_off = 0, stalls = 0, stall_ns = 0, iters = 0;
  uint64_t prev = now_ns(), prev_delay = run_delay_ns(), since = prev;
  for (;;) {
    if (tick_us > 0) nanosleep(&tick, NULL);
    if (writes && pages) {
      mem[next_page * page]++;
      if (++next_page == pages) next_page = 0;
    }
    uint64_t t = now_ns(), delay = run_delay_ns();
    uint64_t gap = t - prev, wait = delay - prev_delay, off = wait < gap ? gap - wait : 0;
    prev = t;
    prev_delay = delay;
    if (gap > max_gap) max_gap = gap;
    if (off > max_off) max_off = off;
    if (gap >= STALL_NS) { stalls++; stall_ns += gap; note_stall(gap, t - since, wait < gap ? wait : gap); }
    iters++;
    if (report_requested) {
      report_requested = 0;
      printf("gap %llu %llu %llu %llu %llu %llu", (unsigned long long)now_ns(), (unsigned long long)max_gap, (unsigned long long)max_off,
             (unsigned long long)stalls, (unsigned long long)stall_ns, (unsigned long long)iters);
      for (int i = 0; i < ntop; i++)
        printf(" %llu@%llu@%llu", (unsigned long long)top[i].gap, (unsigned long long)top[i].at, (unsigned long long)top[i].wait);
      printf("\n");
      fflush(stdout);
      max_gap = max_off = stalls = stall_ns = iters = 0;
      ntop = 0;
      prev = since = now_ns();
      prev_delay = run_delay_ns();
    }
  }
}
