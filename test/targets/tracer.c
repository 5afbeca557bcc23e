/*
 * tracer PID: a minimal foreign tracer, so that a test has a target traced by someone
 * other than stasis.
 *
 * PTRACE_SEIZEs every thread of PID (no syscall tracing: the target keeps running),
 * prints "ready <tracer pid>", passes on any signal the target gets, and on SIGTERM (or
 * SIGINT) interrupts and detaches every thread and exits 0, leaving the target running
 * and untraced. Exits 1 if it cannot seize.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAXT 256
static volatile sig_atomic_t g_quit;
static pid_t tids[MAXT];
static int ntids;

static void on_term(int sig) { (void)sig; g_quit = 1; }

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: tracer PID\n"); return 2; }
  pid_t pid = (pid_t)atoi(argv[1]);
  char path[64];
  struct sigaction sa;

  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term; /* no SA_RESTART: waitpid returns EINTR */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  DIR *d = opendir(path);
  struct dirent *e;
  if (!d) { perror(path); return 1; }
  while ((e = readdir(d)) != NULL && ntids < MAXT) {
    if (e->d_name[0] == '.') continue;
    pid_t tid = (pid_t)atoi(e->d_name);
    if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) != 0) { perror("PTRACE_SEIZE"); return 1; }
    tids[ntids++] = tid;
  }
  closedir(d);
  printf("ready %d\n", (int)getpid());
  fflush(stdout);

  while (!g_quit) {
    int status;
    pid_t t = waitpid(-1, &status, __WALL);
    if (t < 0) {
      if (errno == EINTR) continue;
      if (errno == ECHILD) return 0; /* the target is gone */
      perror("waitpid");
      return 1;
    }
    if (WIFSTOPPED(status)) {
      int sig = WSTOPSIG(status);
      int event = status >> 16;
      /* signal-delivery-stop: pass the signal on; group-stop/event stops: just continue */
      ptrace(PTRACE_CONT, t, NULL, (void *)(long)(event == 0 ? sig : 0));
    }
  }
  for (int i = 0; i < ntids; i++) {
    if (ptrace(PTRACE_INTERRUPT, tids[i], NULL, NULL) != 0) continue;
    for (;;) {
      int status;
      pid_t t = waitpid(tids[i], &status, __WALL);
      if (t < 0) break;
      if (WIFSTOPPED(status) && (status >> 16) == PTRACE_EVENT_STOP) {
        ptrace(PTRACE_DETACH, tids[i], NULL, NULL);
        break;
      }
      if (WIFSTOPPED(status)) { /* a signal arrived first: deliver it and keep waiting */
        ptrace(PTRACE_CONT, tids[i], NULL, (void *)(long)WSTOPSIG(status));
        continue;
      }
      break; /* exited */
    }
  }
  return 0;
}
