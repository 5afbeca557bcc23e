/*
 * files-unsupported: fds that cannot be checkpointed, at fixed numbers, plus one that can.
 *
 *   10  socket (AF_UNIX socketpair, one end)    11  its other end
 *   12  eventfd (the child holds it too)          13  epoll instance (the child too)
 *   14  signalfd (supported)                     15  timerfd (the child holds it too)
 *   16  inotify instance                         17  /dev/null (supported)
 *   18  read end of a pipe whose write end only a child process holds
 *   19/20  a pipe with both ends here, also held by that child
 *   21  an AF_INET socket
 *   22/23  a Unix stream socketpair (after the fork: the child has no part in it); "fd"
 *       and fd 17 sent from 22 with SCM_RIGHTS wait at 23
 *   24  epoll instance with two registrations under fd 25: eventfd A (also at 27) added
 *       as 25, then eventfd B (also at 28) put at 25 and added too; 25 is B now
 *   26  the same with the other order under fd 29 (B added first, then A; 29 is A now),
 *       so that whichever of A and B comes first in the epoll's tree, one of the two
 *       instances has it as the file open at that number
 *   30  DIR/one/linked, deleted while open; its other hard link is DIR/two/linked
 *       (supported: reopened through DIR/two/linked, found through its file handle)
 *   31  DIR/three/hidden, deleted while open; its other hard link is DIR/four/hidden,
 *       which the test hides under a mount on DIR/four
 *
 * Everything else above 2 is closed first. Writes "PID CHILD" to DIR/ready, then pauses.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static void place(int fd, int want) {
  if (fd < 0) {
    perror("create");
    exit(1);
  }
  if (fd == want) return;
  if (dup2(fd, want) < 0) {
    perror("dup2");
    exit(1);
  }
  close(fd);
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  syscall(SYS_close_range, 3, ~0U, 0);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) return 1;
  place(sv[0], 10);
  place(sv[1], 11);
  place(eventfd(0, 0), 12);
  place(epoll_create1(0), 13);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR1);
  place(signalfd(-1, &mask, 0), 14);
  place(timerfd_create(CLOCK_MONOTONIC, 0), 15);
  place(inotify_init1(0), 16);
  place(open("/dev/null", O_RDWR), 17);
  int to_child[2], both[2];
  if (pipe(to_child) < 0 || pipe(both) < 0) return 1;
  pid_t child = fork();
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(to_child[0]);
    for (;;) pause();
  }
  close(to_child[1]);
  place(to_child[0], 18);
  place(both[0], 19);
  place(both[1], 20);
  place(socket(AF_INET, SOCK_STREAM, 0), 21);
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0) return 1;
  place(pair[0], 22);
  place(pair[1], 23);
  int passed = 17;
  char cbuf[CMSG_SPACE(sizeof(int))] = {0};
  struct iovec iov = {.iov_base = "fd", .iov_len = 2};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &passed, sizeof(int));
  if (sendmsg(22, &msg, 0) != 2) return 1;

  place(eventfd(0, 0), 27);
  place(eventfd(0, 0), 28);
  place(epoll_create1(0), 24);
  place(epoll_create1(0), 26);
  struct epoll_event ev = {.events = EPOLLIN};
  dup2(27, 25);
  ev.data.u64 = 0xa;
  if (epoll_ctl(24, EPOLL_CTL_ADD, 25, &ev) != 0) return 1;
  dup2(28, 25);
  ev.data.u64 = 0xb;
  if (epoll_ctl(24, EPOLL_CTL_ADD, 25, &ev) != 0) return 1;
  dup2(28, 29);
  ev.data.u64 = 0xb;
  if (epoll_ctl(26, EPOLL_CTL_ADD, 29, &ev) != 0) return 1;
  dup2(27, 29);
  ev.data.u64 = 0xa;
  if (epoll_ctl(26, EPOLL_CTL_ADD, 29, &ev) != 0) return 1;

  char path[4096], other[4096];
  snprintf(path, sizeof path, "%s/one", argv[1]);
  snprintf(other, sizeof other, "%s/two", argv[1]);
  if (mkdir(path, 0755) != 0 || mkdir(other, 0755) != 0) return 1;
  snprintf(path, sizeof path, "%s/one/linked", argv[1]);
  snprintf(other, sizeof other, "%s/two/linked", argv[1]);
  place(open(path, O_RDWR | O_CREAT | O_TRUNC, 0644), 30);
  if (write(30, "shared", 6) != 6 || link(path, other) != 0 || unlink(path) != 0) return 1;
  snprintf(path, sizeof path, "%s/three", argv[1]);
  snprintf(other, sizeof other, "%s/four", argv[1]);
  if (mkdir(path, 0755) != 0 || mkdir(other, 0755) != 0) return 1;
  snprintf(path, sizeof path, "%s/three/hidden", argv[1]);
  snprintf(other, sizeof other, "%s/four/hidden", argv[1]);
  place(open(path, O_RDWR | O_CREAT | O_TRUNC, 0644), 31);
  if (link(path, other) != 0 || unlink(path) != 0) return 1;

  snprintf(path, sizeof path, "%s/ready.tmp", argv[1]);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dprintf(fd, "%d %d\n", (int)getpid(), (int)child);
  close(fd);
  char final[4096];
  snprintf(final, sizeof final, "%s/ready", argv[1]);
  rename(path, final);
  for (;;) pause();
}
