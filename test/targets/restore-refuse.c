/*
 * restore-refuse: a process holding something `stasis dump` must refuse, ticking so
 * that the test can see it keeps running untouched after the refusal.
 *
 * usage: restore-refuse KIND
 *   socket    a connected AF_UNIX datagram socketpair (fds reported on the ready line)
 *   tcp       a TCP socket listening on 127.0.0.1 (ephemeral port)
 *   inotify   an inotify instance watching /
 *   child     a forked child, paused (its pid on the ready line)
 *
 * Prints "ready PID fd=N [child=C]", then "tick N" every 20 ms. Every tick also checks
 * that the held object still works (the inotify instance still takes watches, the socketpair still
 * carries a byte, the child is still ours and alive) and prints "broken WHY" if not.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s socket|tcp|inotify|child\n", argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *kind = argv[1];
  int fd = -1, other = -1;
  pid_t child = 0;
  if (strcmp(kind, "socket") == 0) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) != 0) return 2;
    fd = sv[0];
    other = sv[1];
  } else if (strcmp(kind, "tcp") == 0) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4) != 0) return 2;
  } else if (strcmp(kind, "inotify") == 0) {
    fd = inotify_init1(IN_NONBLOCK);
    if (fd < 0 || inotify_add_watch(fd, "/", IN_CREATE) < 0) return 2;
  } else if (strcmp(kind, "child") == 0) {
    child = fork();
    if (child == 0) {
      for (;;) pause();
    }
  } else {
    return 2;
  }
  printf("ready %d fd=%d child=%d\n", getpid(), fd, (int)child);
  struct timespec ts = {0, 20 * 1000 * 1000};
  for (unsigned long n = 0;; n++) {
    nanosleep(&ts, NULL);
    const char *broken = NULL;
    if (strcmp(kind, "inotify") == 0) {
      if (inotify_add_watch(fd, "/", IN_CREATE) < 0) broken = "inotify";
    } else if (strcmp(kind, "socket") == 0) {
      char c = 'x', d = 0;
      if (write(other, &c, 1) != 1 || read(fd, &d, 1) != 1 || d != 'x') broken = "socketpair";
    } else if (strcmp(kind, "child") == 0) {
      int status;
      if (waitpid(child, &status, WNOHANG) != 0) broken = "child exited or is not ours";
    }
    if (broken) printf("broken %s: %s\n", broken, strerror(errno));
    printf("tick %lu\n", n);
  }
}
