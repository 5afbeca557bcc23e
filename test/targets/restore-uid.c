/*
 * restore-uid: a process of another uid, restored by root, checked by itself.
 *
 * usage: restore-uid TRIGGER     (started as root; the directory of TRIGGER must be
 *                                 searchable by uid 2001)
 *
 * Setup: RLIMIT_NOFILE soft 321; groups {100, 200}; setresgid(1001, 1002, 1003),
 * setresuid(2001, 2002, 2003) (glibc: every thread), fsuid 2003, fsgid 1003; then a
 * second thread permutes its own uids with the raw syscall: setresuid(2003, 2001, 2002)
 * (credentials are per thread in the kernel); PR_SET_DUMPABLE 1 and PR_SET_PDEATHSIG
 * SIGUSR2 (both reset by a change of credentials, so set after it).
 *
 * Verdicts after the restore, then "done N", exit 0 only if all passed:
 *   ids        getresuid/getresgid, fsuid, fsgid and groups of the main thread are the same
 *   caps       the main thread has no capability (CapPrm/CapEff/CapAmb 0, as before)
 *   thread     the second thread's own getresuid, fsuid and groups are the same
 *   proc       /proc/self/task/TID/status Uid/Gid/Groups/Cap* of both threads: same bytes
 *   rlimit     RLIMIT_NOFILE is 321/hard as before
 *   dumpable   PR_GET_DUMPABLE is 1
 *   pdeathsig  PR_GET_PDEATHSIG is SIGUSR2
 *   root       setuid(0) fails with EPERM: the process did not come back as root
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "restore-common.h"

static const char *KEYS[] = {"Uid:", "Gid:", "Groups:", "CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:", NULL};

static void creds_snapshot(pid_t tid, char *out, size_t size) {
  char path[64], buf[8192];
  snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
  read_file(path, buf, sizeof buf);
  size_t n = 0;
  out[0] = 0;
  for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
    for (int k = 0; KEYS[k]; k++)
      if (strncmp(line, KEYS[k], strlen(KEYS[k])) == 0) n += (size_t)snprintf(out + n, size - n, "%s; ", line);
}

/* uids, fsuid, gids, fsgid and groups of the calling thread, as one line */
static void ids_line(char *out, size_t size) {
  uid_t r, e, s;
  gid_t gr, ge, gs;
  getresuid(&r, &e, &s);
  getresgid(&gr, &ge, &gs);
  int fsuid = setfsuid((uid_t)-1), fsgid = setfsgid((gid_t)-1);
  gid_t groups[16];
  int n = getgroups(16, groups);
  int w = snprintf(out, size, "uid %d %d %d fs %d, gid %d %d %d fs %d, groups", r, e, s, fsuid, gr, ge, gs, fsgid);
  for (int i = 0; i < n; i++) w += snprintf(out + w, size - (size_t)w, " %d", groups[i]);
}

static sem_t g_ready, g_go, g_done;
static pid_t g_tid;
static char g_thread_before[256], g_thread_after[256];

static void *other_thread(void *arg) {
  (void)arg;
  g_tid = gettid_raw();
  syscall(SYS_setresuid, 2003, 2001, 2002); /* this thread only */
  ids_line(g_thread_before, sizeof g_thread_before);
  sem_post(&g_ready);
  while (sem_wait(&g_go) != 0) {
  }
  ids_line(g_thread_after, sizeof g_thread_after);
  sem_post(&g_done);
  return NULL;
}

static void on_usr2(int sig) { (void)sig; }

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s TRIGGER\n", argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  struct rlimit nofile;
  getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = 321;
  setrlimit(RLIMIT_NOFILE, &nofile);
  gid_t groups[] = {100, 200};
  if (setgroups(2, groups) || setresgid(1001, 1002, 1003) || setresuid(2001, 2002, 2003)) {
    printf("setup failed: %s\n", strerror(errno));
    return 2;
  }
  setfsgid(1003);
  setfsuid(2003);
  sem_init(&g_ready, 0, 0);
  sem_init(&g_go, 0, 0);
  sem_init(&g_done, 0, 0);
  pthread_t th;
  pthread_create(&th, NULL, other_thread, NULL);
  while (sem_wait(&g_ready) != 0) {
  }
  prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
  struct sigaction sa = {0};
  sa.sa_handler = on_usr2;
  sigaction(SIGUSR2, &sa, NULL);
  prctl(PR_SET_PDEATHSIG, SIGUSR2, 0, 0, 0);
  char main_before[256], main_after[256];
  ids_line(main_before, sizeof main_before);
  static char proc_before[2][2048], proc_after[2][2048];
  creds_snapshot(getpid(), proc_before[0], sizeof proc_before[0]);
  creds_snapshot(g_tid, proc_before[1], sizeof proc_before[1]);

  printf("ready %d %d %s\n", getpid(), g_tid, main_before);
  wait_for_trigger(argv[1]);

  /* --- checks, in the restored process --- */
  ids_line(main_after, sizeof main_after);
  verdict(strcmp(main_before, main_after) == 0, "ids", "now %s; was %s", main_after, main_before);
  char caps[2048];
  creds_snapshot(getpid(), caps, sizeof caps);
  verdict(strstr(caps, "CapPrm:\t0000000000000000") && strstr(caps, "CapEff:\t0000000000000000") && strstr(caps, "CapAmb:\t0000000000000000"), "caps", "%s", caps);
  creds_snapshot(getpid(), proc_after[0], sizeof proc_after[0]);
  creds_snapshot(g_tid, proc_after[1], sizeof proc_after[1]); /* while the thread still waits */
  sem_post(&g_go);
  while (sem_wait(&g_done) != 0) {
  }
  verdict(strcmp(g_thread_before, g_thread_after) == 0, "thread", "now %s; was %s", g_thread_after, g_thread_before);
  verdict(strcmp(proc_before[0], proc_after[0]) == 0 && strcmp(proc_before[1], proc_after[1]) == 0, "proc", "main now: %s was: %s thread now: %s was: %s", proc_after[0], proc_before[0], proc_after[1],
          proc_before[1]);
  struct rlimit now;
  getrlimit(RLIMIT_NOFILE, &now);
  verdict(now.rlim_cur == 321 && now.rlim_max == nofile.rlim_max, "rlimit", "RLIMIT_NOFILE %lld/%lld, was 321/%lld", (long long)now.rlim_cur, (long long)now.rlim_max, (long long)nofile.rlim_max);
  int dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
  verdict(dumpable == 1, "dumpable", "PR_GET_DUMPABLE %d, was 1", dumpable);
  int pdeath = 0;
  prctl(PR_GET_PDEATHSIG, &pdeath, 0, 0, 0);
  verdict(pdeath == SIGUSR2, "pdeathsig", "PR_GET_PDEATHSIG %d, was %d", pdeath, SIGUSR2);
  int rc = (int)syscall(SYS_setuid, 0);
  verdict(rc != 0 && errno == EPERM, "root", "setuid(0) %s", rc == 0 ? "SUCCEEDED: the process is root again" : strerror(errno));
  return verdicts_done();
}
