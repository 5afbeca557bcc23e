/*
 * restore-attrs: per-process attributes, checked by the program itself after a restore.
 *
 * usage: restore-attrs TRIGGER SUBDIR
 *   SUBDIR: a directory (relative to the cwd the test starts us in) we chdir into.
 *
 * Setup: chdir(SUBDIR), umask(027), lowered rlimits (NOFILE soft 300, CORE 0/0, STACK soft
 * 16 MiB, NPROC soft 4000, MSGQUEUE soft 123456, MEMLOCK soft 64 KiB, CPU soft 3600 s),
 * nice +5, the process name "attrs-main", PR_SET_NO_NEW_PRIVS; SCHED_BATCH, a thread with
 * nice 7, CPU affinity, personality.
 *
 * Verdicts after the restore, then "done N", exit 0 only if all passed:
 *   cwd        getcwd() is SUBDIR's absolute path; "." is the same inode
 *   umask      umask() is 027
 *   rlimits    getrlimit() of every resource (0..15) equals what it was
 *   nice       getpriority() is 5
 *   comm       /proc/self/comm is "attrs-main"
 *   exe        /proc/self/exe is our executable
 *   cmdline    /proc/self/cmdline and /proc/self/environ are the same bytes
 *   nnp        PR_GET_NO_NEW_PRIVS is 1
 *   ids        uid/gid/euid/egid/groups are the same
 *   sched      the main thread is still SCHED_BATCH; a second thread keeps its own nice 7
 *   affinity   the CPU affinity mask (pinned to one CPU when there are several) is the same
 *   personality  personality() (ADDR_NO_RANDOMIZE set) is the same
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "restore-common.h"

static const char *RLIMIT_NAMES[] = {"CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE", "MEMLOCK", "AS", "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME"};

static void lower(int resource, rlim_t soft) {
  struct rlimit rl;
  getrlimit(resource, &rl);
  if (rl.rlim_max != RLIM_INFINITY && soft > rl.rlim_max) soft = rl.rlim_max;
  rl.rlim_cur = soft;
  setrlimit(resource, &rl);
}

static sem_t g_thread_ready, g_thread_go, g_thread_done;
static int g_thread_nice = -100;
static int g_thread_policy = -1;

static void *nice_thread(void *arg) {
  (void)arg;
  setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 7);
  sem_post(&g_thread_ready);
  while (sem_wait(&g_thread_go) != 0) {
  }
  errno = 0;
  g_thread_nice = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
  g_thread_policy = sched_getscheduler(0);
  sem_post(&g_thread_done);
  return NULL;
}

static char g_cmdline_before[8192], g_cmdline_after[8192], g_environ_before[65536], g_environ_after[65536];

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s TRIGGER SUBDIR\n", argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  char exe_before[PATH_MAX] = "";
  ssize_t n = readlink("/proc/self/exe", exe_before, sizeof exe_before - 1);
  if (n > 0) exe_before[n] = 0;

  if (chdir(argv[2]) != 0) {
    perror(argv[2]);
    return 2;
  }
  char cwd_before[PATH_MAX];
  if (!getcwd(cwd_before, sizeof cwd_before)) return 2;
  struct stat dot_before;
  stat(".", &dot_before);
  umask(027);
  lower(RLIMIT_NOFILE, 300);
  struct rlimit core0 = {0, 0};
  setrlimit(RLIMIT_CORE, &core0);
  lower(RLIMIT_STACK, 16 << 20);
  lower(RLIMIT_NPROC, 4000);
  lower(RLIMIT_MSGQUEUE, 123456);
  lower(RLIMIT_MEMLOCK, 64 << 10);
  lower(RLIMIT_CPU, 3600);
  struct rlimit before[16];
  for (int r = 0; r < 16; r++) getrlimit(r, &before[r]);
  setpriority(PRIO_PROCESS, 0, 5);
  prctl(PR_SET_NAME, "attrs-main", 0, 0, 0);
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  size_t cl_before = read_file("/proc/self/cmdline", g_cmdline_before, sizeof g_cmdline_before);
  size_t env_before = read_file("/proc/self/environ", g_environ_before, sizeof g_environ_before);
  uid_t uid = getuid(), euid = geteuid();
  gid_t gid = getgid(), egid = getegid();
  gid_t groups_before[64];
  int ngroups_before = getgroups(64, groups_before);

  /* scheduling: SCHED_BATCH for main, a thread with its own nice value, CPU affinity */
  sem_init(&g_thread_ready, 0, 0);
  sem_init(&g_thread_go, 0, 0);
  sem_init(&g_thread_done, 0, 0);
  pthread_t nt;
  pthread_create(&nt, NULL, nice_thread, NULL);
  sem_wait(&g_thread_ready);
  struct sched_param sp = {0};
  sched_setscheduler(0, SCHED_BATCH, &sp); /* the main thread only */
  cpu_set_t affinity_before;
  sched_getaffinity(0, sizeof affinity_before, &affinity_before);
  int ncpu = CPU_COUNT(&affinity_before);
  if (ncpu > 1) {
    /* keep only the last allowed CPU */
    int last = -1;
    for (int c = 0; c < CPU_SETSIZE; c++)
      if (CPU_ISSET(c, &affinity_before)) last = c;
    CPU_ZERO(&affinity_before);
    CPU_SET(last, &affinity_before);
    sched_setaffinity(0, sizeof affinity_before, &affinity_before);
  }
  sched_getaffinity(0, sizeof affinity_before, &affinity_before);
  personality(PER_LINUX | ADDR_NO_RANDOMIZE);
  int persona_before = personality(0xffffffff);

  printf("ready %d cwd=%s\n", getpid(), cwd_before);

  wait_for_trigger(argv[1]);

  /* --- checks, in the restored process --- */
  char cwd_now[PATH_MAX] = "";
  char *got = getcwd(cwd_now, sizeof cwd_now);
  struct stat dot_now = {0};
  stat(".", &dot_now);
  verdict(got && strcmp(cwd_now, cwd_before) == 0 && dot_now.st_ino == dot_before.st_ino && dot_now.st_dev == dot_before.st_dev, "cwd", "getcwd '%s' (was '%s'), inode of . %lu (was %lu)",
          got ? cwd_now : strerror(errno), cwd_before, (unsigned long)dot_now.st_ino, (unsigned long)dot_before.st_ino);

  mode_t mask = umask(0);
  umask(mask);
  verdict(mask == 027, "umask", "umask is %03o, was 027", (unsigned)mask);

  char why[1024] = "";
  size_t w = 0;
  for (int r = 0; r < 16; r++) {
    struct rlimit now;
    getrlimit(r, &now);
    if (now.rlim_cur != before[r].rlim_cur || now.rlim_max != before[r].rlim_max)
      w += (size_t)snprintf(why + w, sizeof why - w, "%s %lld/%lld (was %lld/%lld); ", RLIMIT_NAMES[r], (long long)now.rlim_cur, (long long)now.rlim_max, (long long)before[r].rlim_cur,
                            (long long)before[r].rlim_max);
  }
  verdict(w == 0, "rlimits", "%s", why);

  errno = 0;
  int prio = getpriority(PRIO_PROCESS, 0);
  verdict(prio == 5, "nice", "nice %d, was 5", prio);

  char comm[32] = "";
  read_file("/proc/self/comm", comm, sizeof comm);
  comm[strcspn(comm, "\n")] = 0;
  verdict(strcmp(comm, "attrs-main") == 0, "comm", "/proc/self/comm is '%s', was 'attrs-main'", comm);

  char exe_now[PATH_MAX] = "";
  n = readlink("/proc/self/exe", exe_now, sizeof exe_now - 1);
  if (n > 0) exe_now[n] = 0;
  verdict(strcmp(exe_now, exe_before) == 0, "exe", "/proc/self/exe is '%s', was '%s'", exe_now, exe_before);

  size_t cl_now = read_file("/proc/self/cmdline", g_cmdline_after, sizeof g_cmdline_after);
  size_t env_now = read_file("/proc/self/environ", g_environ_after, sizeof g_environ_after);
  int cl_ok = cl_now == cl_before && memcmp(g_cmdline_before, g_cmdline_after, cl_now) == 0;
  int env_ok = env_now == env_before && memcmp(g_environ_before, g_environ_after, env_now) == 0;
  for (size_t i = 0; i + 1 < cl_now; i++)
    if (g_cmdline_after[i] == 0) g_cmdline_after[i] = ' ';
  verdict(cl_ok && env_ok, "cmdline", "cmdline %s (now '%s', %zu bytes, was %zu), environ %s (%zu bytes, was %zu)", cl_ok ? "same" : "DIFFERS", g_cmdline_after, cl_now, cl_before,
          env_ok ? "same" : "DIFFERS", env_now, env_before);

  int nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
  verdict(nnp == 1, "nnp", "PR_GET_NO_NEW_PRIVS is %d, was 1", nnp);

  gid_t groups_now[64];
  int ngroups_now = getgroups(64, groups_now);
  int ids_ok = getuid() == uid && geteuid() == euid && getgid() == gid && getegid() == egid && ngroups_now == ngroups_before &&
               memcmp(groups_now, groups_before, sizeof(gid_t) * (size_t)(ngroups_now > 0 ? ngroups_now : 0)) == 0;
  verdict(ids_ok, "ids", "uid %d/%d gid %d/%d, %d groups (was %d/%d %d/%d, %d groups)", getuid(), geteuid(), getgid(), getegid(), ngroups_now, uid, euid, gid, egid, ngroups_before);

  int policy = sched_getscheduler(0);
  sem_post(&g_thread_go);
  struct timespec lim;
  clock_gettime(CLOCK_REALTIME, &lim);
  lim.tv_sec += 3;
  int trc = sem_timedwait(&g_thread_done, &lim);
  verdict(policy == SCHED_BATCH && trc == 0 && g_thread_nice == 7 && g_thread_policy == SCHED_OTHER, "sched",
          "main's policy %d (SCHED_BATCH=%d expected); the other thread %s: nice %d (7 expected), policy %d (SCHED_OTHER=%d expected)", policy, SCHED_BATCH, trc == 0 ? "reported" : "did NOT report",
          g_thread_nice, g_thread_policy, SCHED_OTHER);

  cpu_set_t affinity_now;
  sched_getaffinity(0, sizeof affinity_now, &affinity_now);
  unsigned long mask_now = 0, mask_before = 0;
  for (int c = 0; c < 64; c++) {
    if (CPU_ISSET(c, &affinity_now)) mask_now |= 1UL << c;
    if (CPU_ISSET(c, &affinity_before)) mask_before |= 1UL << c;
  }
  verdict(CPU_EQUAL(&affinity_now, &affinity_before), "affinity", "allowed CPUs %#lx now, %#lx before", mask_now, mask_before);

  int persona_now = personality(0xffffffff);
  verdict(persona_now == persona_before, "personality", "personality %#x, was %#x", persona_now, persona_before);

  return verdicts_done();
}
