/*
 * restore-procstate: per-process and per-thread kernel settings, checked by the program
 * itself after a restore (run as root).
 *
 * usage: restore-procstate TRIGGER
 *
 * Setup (main thread): PR_SET_THP_DISABLE, PR_SET_CHILD_SUBREAPER, every membarrier
 * registration, oom_score_adj 345, loginuid 4242, coredump_filter 0x7f, timer slack
 * 123456 ns, PR_SET_KEEPCAPS, CAP_SYS_BOOT dropped from the bounding set, groups
 * {4321, 5432}, PR_SET_PDEATHSIG SIGUSR2 (caught), PR_SET_DUMPABLE 0, PR_SET_MDWE.
 * A second thread: timer slack 654321 ns, PR_SET_TSC SIGSEGV, PR_MCE_KILL early,
 * CAP_NET_RAW dropped from its effective and permitted sets, CAP_NET_BIND_SERVICE
 * inheritable and ambient, the store-bypass speculation disabled when it is per-task.
 *
 * Verdicts after the restore, then "done N", exit 0 only if all passed:
 *   thp          PR_GET_THP_DISABLE is what it was (1)
 *   subreaper    PR_GET_CHILD_SUBREAPER is 1
 *   membarrier   GET_REGISTRATIONS is the same, and each expedited command works (no EPERM)
 *   oom          /proc/self/oom_score_adj is 345
 *   loginuid     /proc/self/loginuid is 4242
 *   coredump     /proc/self/coredump_filter is the same
 *   dumpable     PR_GET_DUMPABLE is 0
 *   pdeathsig    PR_GET_PDEATHSIG is SIGUSR2, and it was not delivered
 *   mdwe         PR_GET_MDWE is the same; mprotect(PROT_EXEC) of writable memory fails
 *   keepcaps     PR_GET_KEEPCAPS is 1
 *   main-proc    /proc/self/task/MAIN/status lines Uid Gid Groups Cap* NoNewPrivs Seccomp
 *                Speculation*, timerslack_ns: the same bytes as before the dump
 *   thread       the thread's PR_GET_TIMERSLACK, PR_GET_TSC, PR_MCE_KILL_GET, capget,
 *                ambient set and speculation control are what it set
 *   thread-proc  /proc/self/task/TID/status lines as for main-proc, the same as before
 *   timens       the time namespace for children the main thread made (unshare(CLONE_NEWTIME),
 *                monotonic +1000 s, boottime +2000 s) is pending again: ns/time_for_children
 *                differs from ns/time, timens_offsets is the same text, and a child forked
 *                now sees CLOCK_MONOTONIC 1000 s ahead of ours
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "restore-common.h"

#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#define PR_GET_MDWE 66
#define PR_MDWE_REFUSE_EXEC_GAIN 1
#endif
#define MEMBARRIER_GET_REGISTRATIONS (1 << 9)

static const char *STATUS_KEYS[] = {"Uid:", "Gid:", "Groups:", "CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:", "NoNewPrivs:", "Seccomp:", "Speculation", NULL};

/* The lines of a task's status that hold its credentials and flags, plus its timer slack. */
static void proc_snapshot(pid_t tid, char *out, size_t size) {
  char path[64], buf[8192];
  snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
  read_file(path, buf, sizeof buf);
  size_t n = 0;
  out[0] = 0;
  for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
    for (int k = 0; STATUS_KEYS[k]; k++)
      if (strncmp(line, STATUS_KEYS[k], strlen(STATUS_KEYS[k])) == 0) n += (size_t)snprintf(out + n, size - n, "%s; ", line);
  snprintf(path, sizeof path, "/proc/%d/timerslack_ns", tid);
  read_file(path, buf, sizeof buf);
  snprintf(out + n, size - n, "timerslack_ns: %s", buf);
}

static long read_long(const char *path, int base) {
  char buf[64] = "";
  read_file(path, buf, sizeof buf);
  return strtol(buf, NULL, base);
}

static int write_text(const char *path, const char *text) {
  int fd = open(path, O_WRONLY);
  if (fd < 0) return -1;
  ssize_t w = write(fd, text, strlen(text));
  close(fd);
  return w == (ssize_t)strlen(text) ? 0 : -1;
}

static int capget_self(struct __user_cap_data_struct data[2]) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  return (int)syscall(SYS_capget, &h, data);
}

static int capset_self(struct __user_cap_data_struct data[2]) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  return (int)syscall(SYS_capset, &h, data);
}

static sem_t g_ready, g_go, g_done;
static pid_t g_thread_tid;
static char g_thread_before[4096], g_thread_after[4096];
static int g_thread_ok;
static char g_thread_why[1024];
static volatile sig_atomic_t g_usr2;

static void on_usr2(int sig) {
  (void)sig;
  g_usr2++;
}

static void *settings_thread(void *arg) {
  (void)arg;
  g_thread_tid = gettid_raw();
  prctl(PR_SET_TIMERSLACK, 654321UL, 0, 0, 0);
  prctl(PR_SET_TSC, PR_TSC_SIGSEGV, 0, 0, 0); /* no rdtsc (nor vDSO clock_gettime) here from now on */
  prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY, 0, 0);
  struct __user_cap_data_struct caps[2];
  capget_self(caps);
  caps[0].effective &= ~(1u << CAP_NET_RAW);
  caps[0].permitted &= ~(1u << CAP_NET_RAW);
  caps[0].inheritable |= 1u << CAP_NET_BIND_SERVICE;
  int setup = capset_self(caps);
  setup |= prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0);
  int ssb = prctl(PR_GET_SPECULATION_CTRL, PR_SPEC_STORE_BYPASS, 0, 0, 0);
  if (ssb > 0 && (ssb & PR_SPEC_PRCTL)) prctl(PR_SET_SPECULATION_CTRL, PR_SPEC_STORE_BYPASS, PR_SPEC_DISABLE, 0, 0);
  ssb = prctl(PR_GET_SPECULATION_CTRL, PR_SPEC_STORE_BYPASS, 0, 0, 0);
  struct __user_cap_data_struct caps_before[2];
  capget_self(caps_before);
  proc_snapshot(g_thread_tid, g_thread_before, sizeof g_thread_before);
  sem_post(&g_ready);
  while (sem_wait(&g_go) != 0) {
  }
  proc_snapshot(g_thread_tid, g_thread_after, sizeof g_thread_after);
  long slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
  int tsc = -1;
  prctl(PR_GET_TSC, &tsc, 0, 0, 0);
  int mce = prctl(PR_MCE_KILL_GET, 0, 0, 0, 0);
  struct __user_cap_data_struct caps_now[2];
  capget_self(caps_now);
  int ambient = prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE, 0, 0);
  int ssb_now = prctl(PR_GET_SPECULATION_CTRL, PR_SPEC_STORE_BYPASS, 0, 0, 0);
  g_thread_ok = setup == 0 && slack == 654321 && tsc == PR_TSC_SIGSEGV && mce == PR_MCE_KILL_EARLY && memcmp(caps_now, caps_before, sizeof caps_now) == 0 && ambient == 1 && ssb_now == ssb;
  snprintf(g_thread_why, sizeof g_thread_why, "setup %d; timerslack %ld (654321), tsc %d (%d), mce %d (%d), caps eff %#x prm %#x inh %#x (were %#x %#x %#x), ambient NET_BIND_SERVICE %d (1), store bypass %#x (%#x)", setup, slack, tsc,
           PR_TSC_SIGSEGV, mce, PR_MCE_KILL_EARLY, caps_now[0].effective, caps_now[0].permitted, caps_now[0].inheritable, caps_before[0].effective, caps_before[0].permitted, caps_before[0].inheritable,
           ambient, ssb_now, ssb);
  sem_post(&g_done);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s TRIGGER\n", argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  char why[512] = "";
  int setup_failed = 0;
#define SETUP(call)                                                                  \
  do {                                                                               \
    if ((call) != 0) {                                                               \
      setup_failed = 1;                                                              \
      snprintf(why + strlen(why), sizeof why - strlen(why), "%s: %s; ", #call, strerror(errno)); \
    }                                                                                \
  } while (0)

  SETUP(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0));
  SETUP(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0));
  SETUP((int)syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0));
  SETUP((int)syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0));
  SETUP((int)syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0));
  SETUP((int)syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ, 0, 0));
  long registrations = syscall(SYS_membarrier, MEMBARRIER_GET_REGISTRATIONS, 0, 0);
  SETUP(write_text("/proc/self/oom_score_adj", "345"));
  SETUP(write_text("/proc/self/loginuid", "4242"));
  SETUP(write_text("/proc/self/coredump_filter", "0x7f"));
  long coredump_before = read_long("/proc/self/coredump_filter", 16);
  SETUP(prctl(PR_SET_TIMERSLACK, 123456UL, 0, 0, 0));
  SETUP(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
  SETUP(prctl(PR_CAPBSET_DROP, CAP_SYS_BOOT, 0, 0, 0));
  gid_t groups[] = {4321, 5432};
  SETUP(setgroups(2, groups));
  struct sigaction sa = {0};
  sa.sa_handler = on_usr2;
  sigaction(SIGUSR2, &sa, NULL);
  SETUP(prctl(PR_SET_PDEATHSIG, SIGUSR2, 0, 0, 0));

  sem_init(&g_ready, 0, 0);
  sem_init(&g_go, 0, 0);
  sem_init(&g_done, 0, 0);
  pthread_t th;
  pthread_create(&th, NULL, settings_thread, NULL);
  while (sem_wait(&g_ready) != 0) {
  }
  /* after the thread exists: threads made with a pending time namespace share it */
  SETUP(unshare(0x80 /* CLONE_NEWTIME */));
  SETUP(write_text("/proc/self/timens_offsets", "monotonic 1000 0\nboottime 2000 0\n"));
  static char offsets_before[256], offsets_after[256];
  read_file("/proc/self/timens_offsets", offsets_before, sizeof offsets_before);
  SETUP(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0));
  SETUP(prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0));
  int mdwe_before = prctl(PR_GET_MDWE, 0, 0, 0, 0);
  int thp_before = prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0);
  static char main_before[4096], main_after[4096];
  proc_snapshot(getpid(), main_before, sizeof main_before);
  if (setup_failed) printf("INFO setup failed: %s\n", why);

  printf("ready %d %d\n", getpid(), g_thread_tid);
  wait_for_trigger(argv[1]);

  /* --- checks, in the restored process --- */
  proc_snapshot(getpid(), main_after, sizeof main_after);
  int thp = prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0);
  verdict(!setup_failed && thp == thp_before && thp == 1, "thp", "PR_GET_THP_DISABLE %d, was %d; %s", thp, thp_before, why);
  int subreaper = -1;
  prctl(PR_GET_CHILD_SUBREAPER, &subreaper, 0, 0, 0);
  verdict(subreaper == 1, "subreaper", "PR_GET_CHILD_SUBREAPER %d, was 1", subreaper);

  long reg_now = syscall(SYS_membarrier, MEMBARRIER_GET_REGISTRATIONS, 0, 0);
  int global = (int)syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0);
  int e_global = global ? errno : 0;
  int priv = (int)syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
  int e_priv = priv ? errno : 0;
  int sync = (int)syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0);
  int e_sync = sync ? errno : 0;
  int rseq = (int)syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, 0, 0);
  int e_rseq = rseq ? errno : 0;
  verdict(reg_now == registrations && registrations > 0 && !global && !priv && !sync && !rseq, "membarrier",
          "registrations %#lx (were %#lx); GLOBAL_EXPEDITED %s, PRIVATE_EXPEDITED %s, SYNC_CORE %s, RSEQ %s", reg_now, registrations, strerror(e_global), strerror(e_priv), strerror(e_sync), strerror(e_rseq));

  long oom = read_long("/proc/self/oom_score_adj", 10);
  verdict(oom == 345, "oom", "oom_score_adj %ld, was 345", oom);
  long loginuid = read_long("/proc/self/loginuid", 10);
  verdict(loginuid == 4242, "loginuid", "loginuid %ld, was 4242", loginuid);
  long coredump = read_long("/proc/self/coredump_filter", 16);
  verdict(coredump == coredump_before, "coredump", "coredump_filter %#lx, was %#lx", coredump, coredump_before);
  int dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
  verdict(dumpable == 0, "dumpable", "PR_GET_DUMPABLE %d, was 0", dumpable);
  int pdeath = 0;
  prctl(PR_GET_PDEATHSIG, &pdeath, 0, 0, 0);
  verdict(pdeath == SIGUSR2 && g_usr2 == 0, "pdeathsig", "PR_GET_PDEATHSIG %d (SIGUSR2 = %d), delivered %d times", pdeath, SIGUSR2, (int)g_usr2);
  int mdwe = prctl(PR_GET_MDWE, 0, 0, 0, 0);
  void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  int exec_gain = mprotect(page, 4096, PROT_READ | PROT_EXEC);
  verdict(mdwe == mdwe_before && mdwe_before == PR_MDWE_REFUSE_EXEC_GAIN && exec_gain != 0, "mdwe", "PR_GET_MDWE %d, was %d; mprotect(PROT_EXEC) of a written page %s", mdwe, mdwe_before,
          exec_gain == 0 ? "succeeded" : "failed");
  int keepcaps = prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0);
  verdict(keepcaps == 1, "keepcaps", "PR_GET_KEEPCAPS %d, was 1", keepcaps);
  verdict(strcmp(main_before, main_after) == 0, "main-proc", "before the dump: %s after the restore: %s", main_before, main_after);

  char ns_time[64] = "", ns_children[64] = "";
  readlink("/proc/self/ns/time", ns_time, sizeof ns_time - 1);
  readlink("/proc/self/ns/time_for_children", ns_children, sizeof ns_children - 1);
  read_file("/proc/self/timens_offsets", offsets_after, sizeof offsets_after);
  int pipefd[2];
  double ahead = -1;
  if (pipe(pipefd) == 0) {
    struct timespec ours;
    clock_gettime(CLOCK_MONOTONIC, &ours);
    pid_t child = fork();
    if (child == 0) {
      struct timespec theirs;
      clock_gettime(CLOCK_MONOTONIC, &theirs);
      double d = (double)(theirs.tv_sec - ours.tv_sec) + (theirs.tv_nsec - ours.tv_nsec) / 1e9;
      if (write(pipefd[1], &d, sizeof d) != sizeof d) _exit(1);
      _exit(0);
    }
    close(pipefd[1]);
    if (read(pipefd[0], &ahead, sizeof ahead) != sizeof ahead) ahead = -1;
    close(pipefd[0]);
    waitpid(child, NULL, 0);
  }
  verdict(strcmp(ns_time, ns_children) != 0 && strcmp(offsets_before, offsets_after) == 0 && ahead > 999 && ahead < 1010, "timens",
          "ns/time %s, ns/time_for_children %s; offsets now '%s', were '%s'; a child's CLOCK_MONOTONIC is %.3f s ahead (1000 expected)", ns_time, ns_children, offsets_after, offsets_before, ahead);

  sem_post(&g_go);
  while (sem_wait(&g_done) != 0) {
  }
  verdict(g_thread_ok, "thread", "%s", g_thread_why);
  verdict(strcmp(g_thread_before, g_thread_after) == 0, "thread-proc", "before the dump: %s after the restore: %s", g_thread_before, g_thread_after);
  return verdicts_done();
}
