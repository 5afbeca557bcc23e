/*
 * restore-rseq: glibc registers a restartable-sequences area in every thread; after a
 * restore each thread's area must still be registered with the kernel, which keeps its
 * cpu_id field current.
 *
 * usage: restore-rseq TRIGGER
 *
 * Main and one worker thread. After the restore, in each thread:
 *   rseq-main / rseq-worker
 *     __rseq_size > 0 and __rseq_offset are readable (glibc's registration is on);
 *     pinned to each CPU in turn (sched_setaffinity), the area's cpu_id follows and
 *     sched_getcpu() (which reads it) agrees: the kernel updates the area, so it is
 *     registered; finally registering the same area again fails with EBUSY (the kernel
 *     already has it), not 0 (it did not).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "restore-common.h"

static struct rseq *my_rseq(void) { return (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset); }

/* The checks of one thread; `why` gets the first problem. Returns 1 if all passed. */
static int check_rseq(char *why, size_t size) {
  why[0] = 0;
  if (__rseq_size == 0) {
    snprintf(why, size, "__rseq_size is 0: glibc did not register rseq");
    return 0;
  }
  struct rseq *rs = my_rseq();
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  cpu_set_t original;
  sched_getaffinity(0, sizeof original, &original);
  int ok = 1, tried = 0;
  for (int cpu = 0; cpu < ncpu && cpu < 4; cpu++) {
    if (!CPU_ISSET(cpu, &original)) continue;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (sched_setaffinity(0, sizeof one, &one) != 0) continue;
    sched_yield();
    tried++;
    int field = (int)rs->cpu_id;
    int start = (int)rs->cpu_id_start;
    int got = sched_getcpu();
    if (field != cpu || start != cpu || got != cpu) {
      ok = 0;
      snprintf(why, size, "pinned to CPU %d: rseq cpu_id %d, cpu_id_start %d, sched_getcpu %d (area %p, __rseq_offset %td)", cpu, field, start, got, (void *)rs, __rseq_offset);
      break;
    }
  }
  sched_setaffinity(0, sizeof original, &original);
  if (!ok) return 0;
  if (tried == 0) {
    snprintf(why, size, "could not pin to any CPU");
    return 0;
  }
  /* registered already: the kernel answers EBUSY to the same registration */
  long rc = syscall(SYS_rseq, rs, __rseq_size < 32 ? 32 : __rseq_size, 0, 0x53053053);
  int err = errno;
  if (rc == 0) {
    snprintf(why, size, "rseq() registered the area anew: it was not registered with the kernel");
    return 0;
  }
  if (err != EBUSY) {
    snprintf(why, size, "re-registering returned %s, expected EBUSY", strerror(err));
    return 0;
  }
  return 1;
}

static sem_t g_ready, g_go, g_done;
static int g_worker_ok = -1;
static char g_worker_why[256];

static void *worker(void *arg) {
  (void)arg;
  sem_post(&g_ready);
  while (sem_wait(&g_go) != 0) {
  }
  g_worker_ok = check_rseq(g_worker_why, sizeof g_worker_why);
  sem_post(&g_done);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s TRIGGER\n", argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  sem_init(&g_ready, 0, 0);
  sem_init(&g_go, 0, 0);
  sem_init(&g_done, 0, 0);
  pthread_t t;
  pthread_create(&t, NULL, worker, NULL);
  sem_wait(&g_ready);
  printf("ready %d rseq_size=%u rseq_offset=%td cpu_id=%d\n", getpid(), __rseq_size, __rseq_offset, (int)my_rseq()->cpu_id);

  wait_for_trigger(argv[1]);

  char why[256];
  int ok = check_rseq(why, sizeof why);
  verdict(ok, "rseq-main", "%s", why);
  sem_post(&g_go);
  struct timespec lim;
  clock_gettime(CLOCK_REALTIME, &lim);
  lim.tv_sec += 3;
  int rc = sem_timedwait(&g_done, &lim);
  verdict(rc == 0 && g_worker_ok == 1, "rseq-worker", "%s", rc != 0 ? "the worker did not report" : g_worker_why);
  return verdicts_done();
}
