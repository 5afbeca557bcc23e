/*
 * sig-blank: a blank, multi-threaded restore target for the resource tests. Every thread
 * blocks every signal (so whatever a restore queues stays pending and can be read back)
 * and sleeps.
 *
 *   sig-blank OUTFILE [NTHREADS=1]
 *
 * Writes "ready <pid> <tid>..." (the extra threads' TIDs) to OUTFILE.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAXT 16
static volatile pid_t tids[MAXT];

static void *idle(void *arg) {
  tids[(long)arg] = (pid_t)syscall(SYS_gettid);
  for (;;) pause();
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  int n = argc > 2 ? atoi(argv[2]) : 1;
  if (n < 0 || n > MAXT) return 2;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, NULL);
  for (long i = 0; i < n; i++) {
    pthread_t t;
    pthread_create(&t, NULL, idle, (void *)i);
  }
  for (int i = 0; i < n; i++)
    while (!tids[i]) usleep(1000);
  char line[512];
  int len = snprintf(line, sizeof line, "ready %d", getpid());
  for (int i = 0; i < n; i++) len += snprintf(line + len, sizeof line - len, " %d", tids[i]);
  snprintf(line + len, sizeof line - len, "\n");
  int fd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0 || write(fd, line, strlen(line)) < 0) return 2;
  close(fd);
  for (;;) pause();
}
