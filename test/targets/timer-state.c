/*
 * timer-state: interval timers and POSIX timers, for test/timers.test.ts.
 *
 *   timer-state OUTFILE [threadclock]
 *
 * Every thread blocks the timers' signals, so expiries stay pending. Arms:
 *   ITIMER_REAL 30 s (interval 2 s), ITIMER_VIRTUAL 100 s, ITIMER_PROF 50 s (interval 1.5 s);
 *   POSIX timers, in creation order:
 *     a  CLOCK_REALTIME            SIGEV_SIGNAL SIGRTMIN   value 0x1234   60 s, interval 1 s
 *     b  CLOCK_MONOTONIC           SIGEV_THREAD_ID -> t2, SIGRTMIN+1, value &g_cookie, 45 s
 *     c  CLOCK_MONOTONIC           SIGEV_NONE                            20 s
 *     d  (created and deleted: a gap in the ids)
 *     e  CLOCK_PROCESS_CPUTIME_ID  SIGEV_SIGNAL SIGRTMIN+2 value 5     1000 s of CPU
 *     f  CLOCK_MONOTONIC           NULL sigevent (SIGALRM, value = id)   disarmed
 *     g  CLOCK_BOOTTIME            SIGEV_SIGNAL SIGRTMIN+4 value 77      1.5 s, one-shot (armed last)
 *   with "threadclock", also a CLOCK_THREAD_CPUTIME_ID timer made by t2.
 * Writes "ready <pid> <t2 tid> <a> <b> <c> <d> <e> <f> <g> <&g_cookie>" to OUTFILE.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static pid_t t2_tid;
static volatile int t2_ready;
static int thread_clock;
static timer_t t2_timer;
long g_cookie = 0xc0ffee;

static timer_t make(clockid_t clock, int notify, int signo, long value, pid_t tid) {
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = notify;
  sev.sigev_signo = signo;
  sev.sigev_value.sival_ptr = (void *)value;
  if (notify == SIGEV_THREAD_ID) sev._sigev_un._tid = tid;
  timer_t id;
  if (timer_create(clock, &sev, &id) != 0) {
    perror("timer_create");
    exit(2);
  }
  return id;
}

static void arm(timer_t id, long value_ms, long interval_ms) {
  struct itimerspec its = {
    .it_interval = {interval_ms / 1000, (interval_ms % 1000) * 1000000},
    .it_value = {value_ms / 1000, (value_ms % 1000) * 1000000},
  };
  if (timer_settime(id, 0, &its, NULL) != 0) {
    perror("timer_settime");
    exit(2);
  }
}

static void *t2_main(void *arg) {
  (void)arg;
  t2_tid = (pid_t)syscall(SYS_gettid);
  if (thread_clock) {
    t2_timer = make(CLOCK_THREAD_CPUTIME_ID, SIGEV_SIGNAL, SIGRTMIN + 5, 1, 0);
    arm(t2_timer, 100000, 0);
  }
  __atomic_store_n(&t2_ready, 1, __ATOMIC_SEQ_CST);
  for (;;) pause();
  return NULL;
}

static void itimer(int which, long value_ms, long interval_ms) {
  struct itimerval v = {
    .it_interval = {interval_ms / 1000, (interval_ms % 1000) * 1000},
    .it_value = {value_ms / 1000, (value_ms % 1000) * 1000},
  };
  if (setitimer(which, &v, NULL) != 0) {
    perror("setitimer");
    exit(2);
  }
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  thread_clock = argc > 2 && strcmp(argv[2], "threadclock") == 0;
  sigset_t blocked;
  sigemptyset(&blocked);
  for (int s = SIGRTMIN; s <= SIGRTMIN + 5; s++) sigaddset(&blocked, s);
  sigaddset(&blocked, SIGALRM);
  sigaddset(&blocked, SIGVTALRM);
  sigaddset(&blocked, SIGPROF);
  pthread_sigmask(SIG_SETMASK, &blocked, NULL);
  pthread_t t2;
  pthread_create(&t2, NULL, t2_main, NULL);
  while (!__atomic_load_n(&t2_ready, __ATOMIC_SEQ_CST)) usleep(1000);

  itimer(ITIMER_REAL, 30000, 2000);
  itimer(ITIMER_VIRTUAL, 100000, 0);
  itimer(ITIMER_PROF, 50000, 1500);

  timer_t a = make(CLOCK_REALTIME, SIGEV_SIGNAL, SIGRTMIN, 0x1234, 0);
  arm(a, 60000, 1000);
  timer_t b = make(CLOCK_MONOTONIC, SIGEV_THREAD_ID, SIGRTMIN + 1, (long)&g_cookie, t2_tid);
  arm(b, 45000, 0);
  timer_t c = make(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0, 0);
  arm(c, 20000, 0);
  timer_t d = make(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN, 0, 0);
  timer_delete(d);
  timer_t e = make(CLOCK_PROCESS_CPUTIME_ID, SIGEV_SIGNAL, SIGRTMIN + 2, 5, 0);
  arm(e, 1000000, 0);
  timer_t f;
  if (timer_create(CLOCK_MONOTONIC, NULL, &f) != 0) return 2;
  timer_t g = make(CLOCK_BOOTTIME, SIGEV_SIGNAL, SIGRTMIN + 4, 77, 0);
  arm(g, 1500, 0);

  char line[512];
  snprintf(line, sizeof line, "ready %d %d %ld %ld %ld %ld %ld %ld %ld %p\n", getpid(), t2_tid, (long)a, (long)b, (long)c,
           (long)d, (long)e, (long)f, (long)g, (void *)&g_cookie);
  int fd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0 || write(fd, line, strlen(line)) < 0) return 2;
  close(fd);
  for (;;) pause();
}
