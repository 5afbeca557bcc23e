/*
 * restore-eventfd: eventfds across a restore, checked from inside.
 *
 * usage: restore-eventfd TRIGGER
 *
 *   sem     an EFD_SEMAPHORE|EFD_NONBLOCK eventfd with count 3 (and a dup of it)
 *   wake    an eventfd with count 0, a thread blocked in read() on it
 *
 * Verdicts after the restore, then "done N":
 *   semaphore  three reads through the dup take 1 each, the fourth fails with EAGAIN
 *   waiter     the thread blocked in read() gets the 7 written after the restore
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "restore-common.h"

static int g_wake;
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
  int sem = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
  int sem_dup = dup(sem);
  g_wake = eventfd(0, 0);
  if (sem < 0 || sem_dup < 0 || g_wake < 0) return 2;
  pthread_t thread;
  if (pthread_create(&thread, NULL, waiter, NULL) != 0) return 2;
  struct timespec ms = {0, 1000 * 1000};
  while (!g_waiting) nanosleep(&ms, NULL);
  printf("ready %d\n", getpid());

  wait_for_trigger(argv[1]);

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
  return verdicts_done();
}
