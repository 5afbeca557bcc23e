/*
 * pending-ns: a process whose children would go to a new namespace it has not entered:
 * unshare(CLONE_NEWTIME) ("time") or unshare(CLONE_NEWPID) ("pid") makes
 * /proc/self/ns/{time,pid}_for_children differ from ns/{time,pid}; or ("thread-uts") a
 * thread that moved itself into a UTS namespace of its own (namespaces are per task).
 * Prints "ready PID [TID]", then "tick N" every 100 ms until killed.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static sem_t g_unshared;
static int g_tid, g_rc;

static void *own_uts(void *arg) {
  (void)arg;
  g_tid = (int)syscall(SYS_gettid);
  g_rc = unshare(CLONE_NEWUTS);
  sem_post(&g_unshared);
  for (;;) pause();
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc > 1 && strcmp(argv[1], "thread-uts") == 0) {
    sem_init(&g_unshared, 0, 0);
    pthread_t th;
    pthread_create(&th, NULL, own_uts, NULL);
    while (sem_wait(&g_unshared) != 0) {
    }
    if (g_rc != 0) {
      perror("unshare(CLONE_NEWUTS) in a thread");
      return 2;
    }
    printf("ready %d %d\n", getpid(), g_tid);
  } else {
    int flag = argc > 1 && strcmp(argv[1], "pid") == 0 ? CLONE_NEWPID : CLONE_NEWTIME;
    if (unshare(flag) != 0) {
      perror("unshare");
      return 2;
    }
    printf("ready %d\n", getpid());
  }
  struct timespec ts = {0, 100 * 1000 * 1000};
  for (int n = 1;; n++) {
    nanosleep(&ts, NULL);
    printf("tick %d\n", n);
  }
}
