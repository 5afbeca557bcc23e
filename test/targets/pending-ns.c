/*
 * pending-ns: a process whose children would go to a new namespace it has not entered:
 * unshare(CLONE_NEWTIME) ("time") or unshare(CLONE_NEWPID) ("pid") makes
 * /proc/self/ns/{time,pid}_for_children differ from ns/{time,pid}. Prints
 * "ready PID", then "tick N" every 100 ms until killed.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int flag = argc > 1 && strcmp(argv[1], "pid") == 0 ? CLONE_NEWPID : CLONE_NEWTIME;
  if (unshare(flag) != 0) {
    perror("unshare");
    return 2;
  }
  printf("ready %d\n", getpid());
  struct timespec ts = {0, 100 * 1000 * 1000};
  for (int n = 1;; n++) {
    nanosleep(&ts, NULL);
    printf("tick %d\n", n);
  }
}
