/*
 * attr-state: process attributes, for test/attributes.test.ts.
 *
 *   attr-state OUTFILE normal DIR   rlimits, umask 027, cwd DIR, personality, and per thread
 *                                   scheduling: main SCHED_BATCH nice 5; t2 SCHED_RR 3 with
 *                                   SCHED_RESET_ON_FORK and nice 7 (SCHED_IDLE nice 7 when
 *                                   real-time is not permitted), its own personality
 *   attr-state OUTFILE chroot DIR   chroot(DIR) (root only)
 *   attr-state OUTFILE rmcwd DIR    cwd DIR, then DIR removed
 *
 * (Limits are only lowered: raising a hard limit needs CAP_SYS_RESOURCE.)
 * Writes "ready <pid> <t2 tid> <t2 policy>" to OUTFILE.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static pid_t t2_tid;
static int t2_policy = -1;
static volatile int t2_ready;

static void limit(int resource, rlim_t soft, rlim_t hard) {
  struct rlimit r = {soft, hard};
  if (setrlimit(resource, &r) != 0) {
    perror("setrlimit");
    exit(2);
  }
}

static void *t2_main(void *arg) {
  (void)arg;
  t2_tid = (pid_t)syscall(SYS_gettid);
  personality(ADDR_NO_RANDOMIZE | SHORT_INODE);
  setpriority(PRIO_PROCESS, t2_tid, 7);
  struct sched_param p = {.sched_priority = 3};
  if (sched_setscheduler(0, SCHED_RR | SCHED_RESET_ON_FORK, &p) == 0) {
    t2_policy = SCHED_RR;
  } else {
    p.sched_priority = 0;
    sched_setscheduler(0, SCHED_IDLE, &p);
    t2_policy = SCHED_IDLE;
  }
  __atomic_store_n(&t2_ready, 1, __ATOMIC_SEQ_CST);
  for (;;) pause();
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 4) return 2;
  int fd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) return 2;
  const char *mode = argv[2], *dir = argv[3];
  if (strcmp(mode, "chroot") == 0) {
    if (chdir(dir) != 0 || chroot(dir) != 0) {
      perror("chroot");
      return 2;
    }
  } else if (strcmp(mode, "rmcwd") == 0) {
    if (mkdir(dir, 0755) != 0 || chdir(dir) != 0 || rmdir(dir) != 0) {
      perror("rmcwd");
      return 2;
    }
  } else {
    limit(RLIMIT_NOFILE, 512, 2048);
    limit(RLIMIT_CORE, 0, RLIM_INFINITY);
    limit(RLIMIT_STACK, 4 << 20, 64 << 20);
    limit(RLIMIT_MSGQUEUE, 409600, 819200);
    limit(RLIMIT_CPU, 3600, 7200);
    limit(RLIMIT_MEMLOCK, 65536, 4 << 20);
    umask(027);
    if (chdir(dir) != 0) {
      perror("chdir");
      return 2;
    }
    personality(ADDR_NO_RANDOMIZE);
    setpriority(PRIO_PROCESS, 0, 5);
    struct sched_param p = {.sched_priority = 0};
    sched_setscheduler(0, SCHED_BATCH, &p);
    pthread_t t2;
    pthread_create(&t2, NULL, t2_main, NULL);
    while (!__atomic_load_n(&t2_ready, __ATOMIC_SEQ_CST)) usleep(1000);
  }
  char line[256];
  snprintf(line, sizeof line, "ready %d %d %d\n", getpid(), t2_tid, t2_policy);
  if (write(fd, line, strlen(line)) < 0) return 2;
  close(fd);
  for (;;) pause();
}
