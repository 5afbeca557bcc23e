/*
 * restore-timers: POSIX timers and interval timers, checked by the program itself after
 * a restore.
 *
 * usage: restore-timers TRIGGER
 *
 * Setup (times from the "ready" line on):
 *   periodic   timer_create(CLOCK_MONOTONIC, SIGEV_SIGNAL SIGRTMIN+2, value 1234), every 50 ms
 *   oneshot    timer_create(CLOCK_MONOTONIC, SIGEV_SIGNAL SIGRTMIN+4, value 5678), once, 6 s
 *   far        timer_create(CLOCK_REALTIME), once, in an hour (never fires here)
 *   disarmed   timer_create(CLOCK_MONOTONIC), never armed
 *   thread     timer_create(SIGEV_THREAD) every 100 ms (glibc's helper thread runs it)
 *   itimer     setitimer(ITIMER_REAL) every 100 ms (SIGALRM)
 *   virtual    setitimer(ITIMER_VIRTUAL) interval 1 s, first in 30 s of CPU (never fires)
 *
 * Verdicts after the restore, then "done N", exit 0 only if all passed:
 *   periodic   keeps firing (>= 5 more in 500 ms); every signal it ever delivered had
 *              si_code SI_TIMER, si_timerid its id and si_value 1234; timer_gettime:
 *              interval still 50 ms
 *   oneshot    fires once, not before setup + 6 s (nor much after, unless the restore
 *              itself came later, or by more than the time spent in the image), value 5678
 *   far        timer_gettime: an hour minus the time elapsed, with or without the time
 *              spent in the image (both models are accepted; an INFO line says which)
 *   disarmed   exists (timer_gettime succeeds) and is still disarmed
 *   thread     the SIGEV_THREAD callback keeps running (>= 2 more in 500 ms)
 *   itimer     SIGALRM keeps coming (>= 3 more in 500 ms), getitimer interval 100 ms
 *   virtual    getitimer(ITIMER_VIRTUAL): interval 1 s, value about 30 s (29 to 30.05)
 *   ids        a timer created after the restore gets a new id, distinct from the others
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "restore-common.h"

/* Sleeps `seconds` of CLOCK_MONOTONIC whatever signals interrupt it. */
static void sleep_for(double seconds) {
  double until = now_mono() + seconds;
  struct timespec ts;
  ts.tv_sec = (time_t)until;
  ts.tv_nsec = (long)((until - (double)ts.tv_sec) * 1e9);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

static double ts_seconds(struct timespec ts) { return (double)ts.tv_sec + ts.tv_nsec / 1e9; }
static double tv_seconds(struct timeval tv) { return (double)tv.tv_sec + tv.tv_usec / 1e6; }

static timer_t g_periodic, g_oneshot, g_far, g_disarmed, g_thread_timer;
static volatile int g_periodic_count, g_periodic_value, g_periodic_timerid_ok = 1;
static volatile int g_oneshot_count, g_oneshot_value;
static volatile double g_oneshot_at;
static volatile int g_thread_count;
static volatile int g_alarm_count;

static volatile int g_bad_code, g_bad_timerid, g_bad_value, g_bad_pid;

static void periodic_handler(int sig, siginfo_t *si, void *uc) {
  (void)sig; (void)uc;
  g_periodic_value = si->si_value.sival_int;
  if ((si->si_code != SI_TIMER || si->si_timerid != (int)(intptr_t)g_periodic || si->si_value.sival_int != 1234) && g_periodic_timerid_ok) {
    g_periodic_timerid_ok = 0; /* the first wrong siginfo is kept */
    g_bad_code = si->si_code;
    g_bad_timerid = si->si_code == SI_TIMER ? si->si_timerid : -1;
    g_bad_value = si->si_value.sival_int;
    g_bad_pid = si->si_code == SI_TIMER ? 0 : si->si_pid;
  }
  g_periodic_count++;
}

static void oneshot_handler(int sig, siginfo_t *si, void *uc) {
  (void)sig; (void)uc;
  g_oneshot_value = si->si_value.sival_int;
  g_oneshot_at = now_mono();
  g_oneshot_count++;
}

static void alarm_handler(int sig) {
  (void)sig;
  g_alarm_count++;
}

static void thread_callback(union sigval v) {
  (void)v;
  __atomic_add_fetch(&g_thread_count, 1, __ATOMIC_SEQ_CST);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s TRIGGER\n", argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);

  struct sigaction sa = {0};
  sa.sa_sigaction = periodic_handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigaction(SIGRTMIN + 2, &sa, NULL);
  sa.sa_sigaction = oneshot_handler;
  sigaction(SIGRTMIN + 4, &sa, NULL);
  struct sigaction al = {0};
  al.sa_handler = alarm_handler;
  al.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &al, NULL);

  struct sigevent ev = {0};
  ev.sigev_notify = SIGEV_SIGNAL;
  ev.sigev_signo = SIGRTMIN + 2;
  ev.sigev_value.sival_int = 1234;
  if (timer_create(CLOCK_MONOTONIC, &ev, &g_periodic) != 0) return 2;
  ev.sigev_signo = SIGRTMIN + 4;
  ev.sigev_value.sival_int = 5678;
  if (timer_create(CLOCK_MONOTONIC, &ev, &g_oneshot) != 0) return 2;
  ev.sigev_notify = SIGEV_NONE;
  if (timer_create(CLOCK_REALTIME, &ev, &g_far) != 0) return 2;
  if (timer_create(CLOCK_MONOTONIC, &ev, &g_disarmed) != 0) return 2;
  struct sigevent tev = {0};
  tev.sigev_notify = SIGEV_THREAD;
  tev.sigev_notify_function = thread_callback;
  if (timer_create(CLOCK_MONOTONIC, &tev, &g_thread_timer) != 0) return 2;

  struct itimerspec periodic = {{0, 50 * 1000 * 1000}, {0, 50 * 1000 * 1000}};
  struct itimerspec oneshot = {{0, 0}, {6, 0}};
  struct itimerspec far = {{0, 0}, {3600, 0}};
  struct itimerspec thread = {{0, 100 * 1000 * 1000}, {0, 100 * 1000 * 1000}};
  double setup = now_mono();
  timer_settime(g_periodic, 0, &periodic, NULL);
  timer_settime(g_oneshot, 0, &oneshot, NULL);
  timer_settime(g_far, 0, &far, NULL);
  timer_settime(g_thread_timer, 0, &thread, NULL);
  struct itimerval real = {{0, 100 * 1000}, {0, 100 * 1000}};
  setitimer(ITIMER_REAL, &real, NULL);
  struct itimerval virt = {{1, 0}, {30, 0}};
  setitimer(ITIMER_VIRTUAL, &virt, NULL);

  sleep_for(0.3); /* every periodic timer has fired a few times */
  double ready_at = now_mono();
  printf("ready %d periodic=%d alarms=%d thread=%d\n", getpid(), g_periodic_count, g_alarm_count, g_thread_count);

  wait_for_trigger(argv[1]);

  /* --- checks, in the restored process --- */
  double restored = now_mono();
  int p0 = g_periodic_count, t0 = g_thread_count, a0 = g_alarm_count;
  sleep_for(0.5);
  int p1 = g_periodic_count, t1 = g_thread_count, a1 = g_alarm_count;

  struct itimerspec cur;
  memset(&cur, 0, sizeof cur);
  int rc = timer_gettime(g_periodic, &cur);
  char bad[160] = "every siginfo ok";
  if (!g_periodic_timerid_ok)
    snprintf(bad, sizeof bad, "a signal came with si_code %d (SI_TIMER is %d), si_timerid %d (the timer is %d), value %d, si_pid %d", g_bad_code, SI_TIMER, g_bad_timerid, (int)(intptr_t)g_periodic,
             g_bad_value, g_bad_pid);
  verdict(p1 - p0 >= 5 && g_periodic_timerid_ok && rc == 0 && cur.it_interval.tv_sec == 0 && cur.it_interval.tv_nsec == 50 * 1000 * 1000, "periodic",
          "%d signals in 500 ms (>= 5 expected); %s; timer_gettime %s, interval %.3f s", p1 - p0, bad, rc == 0 ? "ok" : strerror(errno), rc == 0 ? ts_seconds(cur.it_interval) : -1.0);

  verdict(t1 - t0 >= 2, "thread", "%d SIGEV_THREAD callbacks in 500 ms (>= 2 expected)", t1 - t0);

  struct itimerval it;
  getitimer(ITIMER_REAL, &it);
  verdict(a1 - a0 >= 3 && it.it_interval.tv_sec == 0 && it.it_interval.tv_usec == 100 * 1000, "itimer", "%d SIGALRM in 500 ms (>= 3 expected), interval %.3f s (0.1 expected)", a1 - a0,
          tv_seconds(it.it_interval));

  getitimer(ITIMER_VIRTUAL, &it);
  verdict(it.it_interval.tv_sec == 1 && it.it_interval.tv_usec == 0 && tv_seconds(it.it_value) <= 30.05 && tv_seconds(it.it_value) > 29.0, "virtual", "interval %.3f s (1 expected), value %.3f s",
          tv_seconds(it.it_interval), tv_seconds(it.it_value));

  memset(&cur, 0, sizeof cur);
  rc = timer_gettime(g_far, &cur);
  /* Either model is accepted: the time spent in the image counts (3600 - elapsed since
     setup), or it does not (src/resources/timers.ts: the remaining time at the dump,
     relative to the restore): at most 3600 - (ready - setup). */
  double left = ts_seconds(cur.it_value), counted = 3600.0 - (now_mono() - setup), not_counted = 3600.0 - (ready_at - setup);
  verdict(rc == 0 && left >= counted - 0.05 && left <= not_counted + 0.05 && ts_seconds(cur.it_interval) == 0, "far", "timer_gettime %s, %.3f s left (%.3f to %.3f expected), interval %.3f",
          rc == 0 ? "ok" : strerror(errno), left, counted, not_counted, ts_seconds(cur.it_interval));
  printf("INFO far: %.3f s left; %.3f if the time spent in the image counted\n", left, counted);

  memset(&cur, 0, sizeof cur);
  rc = timer_gettime(g_disarmed, &cur);
  verdict(rc == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0, "disarmed", "timer_gettime %s, value %.3f s", rc == 0 ? "ok" : strerror(errno), ts_seconds(cur.it_value));

  /* the one-shot: at setup + 6 s, or (if the restore came later) right after it; or
     later by the time spent in the image (at most restored - ready) if that does not count */
  double due = setup + 6.0;
  double latest = (due > restored ? due : restored) + (restored - ready_at) + 1.0;
  while (g_oneshot_count == 0 && now_mono() < latest) sleep_for(0.02);
  verdict(g_oneshot_count == 1 && g_oneshot_value == 5678 && g_oneshot_at >= due - 0.005 && g_oneshot_at <= latest, "oneshot",
          "fired %d times, value %d, at setup + %.3f s (6 s expected; restored at setup + %.3f s)", g_oneshot_count, g_oneshot_value, g_oneshot_count ? g_oneshot_at - setup : -1.0, restored - setup);

  timer_t fresh;
  ev.sigev_notify = SIGEV_NONE;
  rc = timer_create(CLOCK_MONOTONIC, &ev, &fresh);
  int distinct = rc == 0 && fresh != g_periodic && fresh != g_oneshot && fresh != g_far && fresh != g_disarmed;
  verdict(distinct, "ids", "timer_create after the restore: %s, id %p (others %p %p %p %p)", rc == 0 ? "ok" : strerror(errno), rc == 0 ? fresh : NULL, g_periodic, g_oneshot, g_far, g_disarmed);

  return verdicts_done();
}
