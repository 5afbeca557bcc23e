/*
 * zombie: a parent that keeps an exited child unreaped.
 *
 * Forks a child that exits at once with status 7, waits until it is a zombie (waitid
 * with WNOWAIT, which does not reap it) and prints "ready <parent pid> <zombie pid>".
 * When its stdin reaches end of file (or on SIGTERM), it reaps the zombie and exits 0,
 * so a test cleans up by closing the pipe or killing the parent by PID.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t child;

static void reap_and_exit(int sig) {
  (void)sig;
  waitpid(child, NULL, 0);
  _exit(0);
}

int main(void) {
  siginfo_t si;
  char buf[64];
  struct sigaction sa;

  memset(&sa, 0, sizeof sa);
  sa.sa_handler = reap_and_exit;
  sigaction(SIGTERM, &sa, NULL);
  child = fork();
  if (child < 0) return 2;
  if (child == 0) _exit(7);
  memset(&si, 0, sizeof si);
  if (waitid(P_PID, (id_t)child, &si, WEXITED | WNOWAIT) != 0) return 2;
  printf("ready %d %d\n", (int)getpid(), (int)child);
  fflush(stdout);
  while (read(0, buf, sizeof buf) > 0) {
  }
  reap_and_exit(0);
  return 0;
}
