/*
 * restore-anon-fds: eventfds, timerfds, a signalfd and epoll across a restore, checked
 * from inside.
 *
 * usage: restore-anon-fds TRIGGER
 *
 *   sem     an EFD_SEMAPHORE|EFD_NONBLOCK eventfd with count 3 (and a dup of it)
 *   wake    an eventfd with count 0, a thread blocked in read() on it
 *   tick    a timerfd expiring every 50 ms, never read before the dump
 *   once    a timerfd that expired once (1 ms one-shot), unread, O_NONBLOCK
 *   sig     a signalfd for SIGUSR1 (blocked in every thread); one SIGUSR1 is pending
 *   ep      an epoll instance watching sem (data 0xa), tick (0xb) and sig (0xc)
 *   loop    an epoll instance watching the eventfd ring (data 0x1009), a thread blocked
 *           in epoll_wait() on it, as an event loop would be
 *
 * Verdicts after the restore, then "done N":
 *   epoll      epoll_wait on ep reports sem, tick and sig ready, with their data
 *   eventloop  the thread in epoll_wait() wakes with 0x1009 when ring is written to
 *   semaphore  three reads through the dup take 1 each, the fourth fails with EAGAIN
 *   waiter     the thread blocked in read() gets the 7 written after the restore
 *   timerfd    tick: a read returns the expirations so far, the next one comes within
 *              0.5 s; once: a read returns its 1 expiration, then EAGAIN
 *   signalfd   a read returns the SIGUSR1 pending since before the dump (sent by this
 *              process), then one sent after the restore
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "restore-common.h"

static int g_wake, g_loop, g_ring;
static volatile int g_polling;
static volatile int64_t g_polled = -1;

static void *event_loop(void *arg) {
  (void)arg;
  struct epoll_event ev;
  g_polling = 1;
  int n;
  do n = epoll_wait(g_loop, &ev, 1, -1);
  while (n < 0 && errno == EINTR);
  g_polled = n == 1 ? (int64_t)ev.data.u64 : -2;
  return NULL;
}

static volatile int g_waiting;
static volatile int64_t g_woken_with = -1;

static void *waiter(void *arg) {
  (void)arg;
  uint64_t value = 0;
  g_waiting = 1;
  ssize_t got;
  do got = read(g_wake, &value, 8);
  while (got < 0 && errno == EINTR);
  g_woken_with = got == 8 ? (int64_t)value : -2;
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s TRIGGER\n", argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  /* SIGUSR1 blocked before any thread exists, so in all of them; read through a signalfd */
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  if (sigprocmask(SIG_BLOCK, &usr1, NULL) != 0) return 2;
  int sig = signalfd(-1, &usr1, SFD_NONBLOCK);
  int tick = timerfd_create(CLOCK_MONOTONIC, 0);
  int once = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  struct itimerspec every = {{0, 50 * 1000 * 1000}, {0, 50 * 1000 * 1000}}, one_shot = {{0, 0}, {0, 1000 * 1000}};
  if (sig < 0 || tick < 0 || once < 0 || timerfd_settime(tick, 0, &every, NULL) != 0 || timerfd_settime(once, 0, &one_shot, NULL) != 0) return 2;
  kill(getpid(), SIGUSR1);
  int sem = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
  int sem_dup = dup(sem);
  g_wake = eventfd(0, 0);
  if (sem < 0 || sem_dup < 0 || g_wake < 0) return 2;
  int ep = epoll_create1(0);
  struct epoll_event on_sem = {.events = EPOLLIN, .data.u64 = 0xa}, on_tick = {.events = EPOLLIN, .data.u64 = 0xb}, on_sig = {.events = EPOLLIN, .data.u64 = 0xc};
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, sem, &on_sem) != 0 || epoll_ctl(ep, EPOLL_CTL_ADD, tick, &on_tick) != 0 || epoll_ctl(ep, EPOLL_CTL_ADD, sig, &on_sig) != 0) return 2;
  g_loop = epoll_create1(EPOLL_CLOEXEC);
  g_ring = eventfd(0, EFD_NONBLOCK);
  struct epoll_event on_ring = {.events = EPOLLIN, .data.u64 = 0x1009};
  if (g_loop < 0 || g_ring < 0 || epoll_ctl(g_loop, EPOLL_CTL_ADD, g_ring, &on_ring) != 0) return 2;
  pthread_t thread, loop;
  if (pthread_create(&thread, NULL, waiter, NULL) != 0 || pthread_create(&loop, NULL, event_loop, NULL) != 0) return 2;
  struct timespec ms = {0, 1000 * 1000};
  while (!g_waiting || !g_polling) nanosleep(&ms, NULL);
  printf("ready %d\n", getpid());

  wait_for_trigger(argv[1]);

  struct epoll_event ready[8];
  int n = epoll_wait(ep, ready, 8, 1000);
  int seen = 0;
  for (int i = 0; i < n; i++) seen |= ready[i].data.u64 == 0xa ? 1 : ready[i].data.u64 == 0xb ? 2 : ready[i].data.u64 == 0xc ? 4 : 8;
  verdict(n == 3 && seen == 7, "epoll", "epoll_wait returned %d, data seen: sem %s, tick %s, sig %s%s", n, seen & 1 ? "yes" : "no", seen & 2 ? "yes" : "no", seen & 4 ? "yes" : "no", seen & 8 ? ", and unknown data" : "");

  uint64_t ring = 1;
  ssize_t rang = write(g_ring, &ring, 8);
  for (int i = 0; i < 3000 && g_polled == -1; i++) nanosleep(&ms, NULL);
  verdict(rang == 8 && g_polled == 0x1009, "eventloop", "write returned %zd; the thread in epoll_wait got %#llx", rang, (long long)g_polled);

  uint64_t one[4] = {0};
  int ok = 1, errs[4] = {0};
  for (int i = 0; i < 4; i++) {
    ssize_t got = read(sem_dup, &one[i], 8);
    errs[i] = got < 0 ? errno : 0;
    if (i < 3 ? (got != 8 || one[i] != 1) : (got != -1 || errs[i] != EAGAIN)) ok = 0;
  }
  verdict(ok, "semaphore", "reads gave %llu %llu %llu, then %s", (unsigned long long)one[0], (unsigned long long)one[1], (unsigned long long)one[2], errs[3] ? strerror(errs[3]) : "a value");

  uint64_t seven = 7;
  ssize_t wrote = write(g_wake, &seven, 8);
  for (int i = 0; i < 3000 && g_woken_with == -1; i++) nanosleep(&ms, NULL);
  verdict(wrote == 8 && g_woken_with == 7, "waiter", "write returned %zd; the waiting thread got %lld", wrote, (long long)g_woken_with);

  uint64_t so_far = 0, next = 0, fired_once = 0, again = 0;
  ssize_t r1 = read(tick, &so_far, 8);
  double before = now_mono();
  ssize_t r2 = read(tick, &next, 8);
  double waited = now_mono() - before;
  ssize_t r3 = read(once, &fired_once, 8);
  ssize_t r4 = read(once, &again, 8);
  int r4_errno = errno;
  verdict(r1 == 8 && so_far >= 1 && r2 == 8 && next >= 1 && waited < 0.5 && r3 == 8 && fired_once == 1 && r4 == -1 && r4_errno == EAGAIN, "timerfd",
          "tick: %llu expirations so far, then %llu after %.3f s; once: %zd, %llu, then %s", (unsigned long long)so_far, (unsigned long long)next, waited, r3,
          (unsigned long long)fired_once, r4 == -1 ? strerror(r4_errno) : "another expiration");

  struct signalfd_siginfo pending = {0}, fresh = {0};
  ssize_t s1 = read(sig, &pending, sizeof pending);
  kill(getpid(), SIGUSR1);
  ssize_t s2 = read(sig, &fresh, sizeof fresh);
  verdict(s1 == (ssize_t)sizeof pending && pending.ssi_signo == SIGUSR1 && pending.ssi_pid == (uint32_t)getpid() && s2 == (ssize_t)sizeof fresh && fresh.ssi_signo == SIGUSR1, "signalfd",
          "the pending read gave %zd bytes, signal %u from pid %u; after a new kill: %zd bytes, signal %u", s1, pending.ssi_signo, pending.ssi_pid, s2, fresh.ssi_signo);
  return verdicts_done();
}
