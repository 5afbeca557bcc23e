/*
 * sig-state: signal dispositions and pending signals, for test/signals.test.ts.
 *
 *   sig-state OUTFILE
 *
 * Installs handlers with various flags and masks, blocks a set of signals in both of its
 * threads (main and "t2"), and makes signals pending: process-wide (kill, sigqueue with
 * values) and per thread (pthread_kill, pthread_sigqueue, raise). Writes to OUTFILE:
 *
 *   ready <pid> <t2 tid> <&on_info> <&on_plain>
 *
 * then waits until OUTFILE.go exists, unblocks everything in both threads and logs every
 * signal its handlers receive, one line each:
 *
 *   got <main|t2> <signo> <si_code> <si_value int>
 *
 * and "done" once both threads have had their signals.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

static char *out;
static char go[4096];
static int out_fd;
static __thread const char *t_role = "main";
static pid_t t2_tid;
static volatile int t2_ready;

static void say(const char *line) {
  if (write(out_fd, line, strlen(line)) < 0) _exit(3);
}

static void on_info(int sig, siginfo_t *info, void *uc) {
  char line[128];
  (void)uc;
  snprintf(line, sizeof line, "got %s %d %d %d\n", t_role, sig, info->si_code, info->si_value.sival_int);
  say(line);
}

static void on_plain(int sig) {
  char line[128];
  snprintf(line, sizeof line, "got %s %d plain 0\n", t_role, sig);
  say(line);
}

static void handle(int sig, void (*fn)(int, siginfo_t *, void *), void (*plain)(int), int flags, const int *mask) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  if (fn) sa.sa_sigaction = fn;
  else sa.sa_handler = plain;
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  for (; mask && *mask; mask++) sigaddset(&sa.sa_mask, *mask);
  if (sigaction(sig, &sa, NULL) != 0) {
    perror("sigaction");
    exit(2);
  }
}

static void wait_go(void) {
  struct timespec ts = {0, 10 * 1000 * 1000};
  while (access(go, F_OK) != 0) nanosleep(&ts, NULL);
}

static void unblock_and_drain(void) {
  sigset_t none;
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, NULL);
  struct timespec ts = {0, 50 * 1000 * 1000};
  nanosleep(&ts, NULL); /* handlers run on the way out of the syscalls above */
}

static void *t2_main(void *arg) {
  (void)arg;
  t_role = "t2";
  t2_tid = (pid_t)syscall(SYS_gettid);
  __atomic_store_n(&t2_ready, 1, __ATOMIC_SEQ_CST);
  wait_go();
  unblock_and_drain();
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  out = argv[1];
  snprintf(go, sizeof go, "%s.go", out);
  out_fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (out_fd < 0) return 2;

  static char altstack[65536];
  stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
  sigaltstack(&ss, NULL);

  const int usr1_mask[] = {SIGUSR2, SIGTERM, 0};
  handle(SIGUSR1, on_info, NULL, SA_SIGINFO | SA_RESTART, usr1_mask);
  handle(SIGUSR2, NULL, on_plain, SA_ONSTACK | SA_NODEFER, NULL);
  handle(SIGHUP, NULL, on_plain, SA_RESTART, NULL);
  handle(SIGTERM, on_info, NULL, SA_SIGINFO, NULL);
  handle(SIGWINCH, on_info, NULL, SA_SIGINFO, NULL);
  handle(SIGRTMIN + 1, on_info, NULL, SA_SIGINFO, NULL);
  const int rt2_mask[] = {SIGHUP, SIGRTMIN + 5, 0};
  handle(SIGRTMIN + 2, on_info, NULL, SA_SIGINFO | SA_RESETHAND, rt2_mask);
  handle(SIGRTMIN + 3, on_info, NULL, SA_SIGINFO, NULL);
  signal(SIGINT, SIG_IGN);
  struct sigaction chld;
  memset(&chld, 0, sizeof chld);
  chld.sa_handler = SIG_DFL;
  chld.sa_flags = SA_NOCLDSTOP;
  sigaction(SIGCHLD, &chld, NULL);

  sigset_t blocked;
  sigemptyset(&blocked);
  int to_block[] = {SIGUSR1, SIGUSR2, SIGTERM, SIGHUP, SIGINT, SIGRTMIN + 1, SIGRTMIN + 3, 0};
  for (int *s = to_block; *s; s++) sigaddset(&blocked, *s);
  pthread_sigmask(SIG_SETMASK, &blocked, NULL);

  pthread_t t2;
  pthread_create(&t2, NULL, t2_main, NULL);
  while (!__atomic_load_n(&t2_ready, __ATOMIC_SEQ_CST)) usleep(1000);

  union sigval v;
  kill(getpid(), SIGUSR1);
  kill(getpid(), SIGINT); /* ignored but blocked: stays pending */
  kill(getpid(), SIGHUP);
  v.sival_int = 42;
  sigqueue(getpid(), SIGRTMIN + 1, v);
  v.sival_int = 43;
  sigqueue(getpid(), SIGRTMIN + 1, v);
  pthread_kill(t2, SIGUSR2);
  v.sival_int = 99;
  pthread_sigqueue(t2, SIGRTMIN + 3, v);
  v.sival_int = 7;
  pthread_sigqueue(pthread_self(), SIGRTMIN + 3, v);
  raise(SIGTERM);

  char line[256];
  snprintf(line, sizeof line, "ready %d %d %p %p\n", getpid(), t2_tid, (void *)on_info, (void *)on_plain);
  say(line);

  wait_go();
  pthread_join(t2, NULL);
  unblock_and_drain();
  say("done\n");
  for (;;) pause();
}
