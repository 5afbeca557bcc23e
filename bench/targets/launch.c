/*
 * A stopwatch for starting programs, so that every start-up in the restore benchmark is
 * timed the same way, from C, without Node's own spawn and event-loop latency.
 *
 *   launch line [-r REPS] -- PROGRAM ARGS...
 *       REPS times: fork + execve PROGRAM with its stdout on a pipe, and time until its
 *       first line arrives (the cost of starting a process the ordinary way, what a
 *       restore competes with); then SIGKILL it and reap it. Prints per rep:
 *         line NS FIRST-LINE
 *   launch exit [-r REPS] [-o OUT] [-e ERR] -- PROGRAM ARGS...
 *       REPS times: fork + execve PROGRAM and time until it has exited and been reaped
 *       (like /usr/bin/time's elapsed). Its stdout goes to OUT and its stderr to ERR,
 *       both opened for appending (default /dev/null). Prints per rep:
 *         exit NS CODE SIGNAL
 *
 * stdin is /dev/null. PROGRAM is run by path (execv, no PATH search: pass an absolute
 * path). Only the processes it forks are signalled, each by PID.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int open_or_die(const char *path, int flags) {
  int fd = open(path, flags | O_CLOEXEC, 0644);
  if (fd < 0) { fprintf(stderr, "launch: %s: %s\n", path, strerror(errno)); exit(1); }
  return fd;
}

static int reap(pid_t pid) {
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return status;
}

int main(int argc, char **argv) {
  if (argc < 2 || (strcmp(argv[1], "line") && strcmp(argv[1], "exit"))) {
    fprintf(stderr, "usage: launch line|exit [-r REPS] [-o OUT] [-e ERR] -- PROGRAM ARGS...\n");
    return 2;
  }
  int line_mode = strcmp(argv[1], "line") == 0;
  int reps = 1, opt;
  const char *out = "/dev/null", *err = "/dev/null";
  optind = 2;
  while ((opt = getopt(argc, argv, "+r:o:e:")) != -1) {
    switch (opt) {
    case 'r': reps = atoi(optarg); break;
    case 'o': out = optarg; break;
    case 'e': err = optarg; break;
    default: return 2;
    }
  }
  if (optind >= argc) { fprintf(stderr, "launch: no program\n"); return 2; }
  char **child_argv = argv + optind;
  int devnull = open_or_die("/dev/null", O_RDONLY);
  int out_fd = line_mode ? -1 : open_or_die(out, O_WRONLY | O_CREAT | O_APPEND);
  int err_fd = line_mode ? -1 : open_or_die(err, O_WRONLY | O_CREAT | O_APPEND);
  static char buf[1 << 16];

  for (int rep = 0; rep < reps; rep++) {
    int p[2] = {-1, -1};
    if (line_mode && pipe2(p, O_CLOEXEC) < 0) { perror("pipe2"); return 1; }
    uint64_t t0 = now_ns();
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 1; }
    if (pid == 0) {
      dup2(devnull, 0);
      if (line_mode) dup2(p[1], 1);
      else { dup2(out_fd, 1); dup2(err_fd, 2); }
      execv(child_argv[0], child_argv);
      fprintf(stderr, "launch: exec %s: %s\n", child_argv[0], strerror(errno));
      _exit(127);
    }
    if (line_mode) {
      close(p[1]);
      size_t len = 0;
      char *nl = NULL;
      while (!nl && len < sizeof buf - 1) {
        ssize_t n = read(p[0], buf + len, sizeof buf - 1 - len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        len += (size_t)n;
        buf[len] = 0;
        nl = strchr(buf, '\n');
      }
      uint64_t t1 = now_ns();
      kill(pid, SIGKILL);
      int status = reap(pid);
      close(p[0]);
      if (!nl) {
        printf("noline %d %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        fflush(stdout);
        return 1;
      }
      *nl = 0;
      printf("line %llu %s\n", (unsigned long long)(t1 - t0), buf);
    } else {
      int status = reap(pid);
      uint64_t t1 = now_ns();
      printf("exit %llu %d %d\n", (unsigned long long)(t1 - t0), WIFEXITED(status) ? WEXITSTATUS(status) : -1,
             WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    }
    fflush(stdout);
  }
  return 0;
}
