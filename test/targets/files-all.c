/*
 * files-all: one fd of every kind the files resource checkpoints, at fixed numbers.
 *
 *   10  DIR/data.txt  O_RDWR, "0123456789abcdef", offset 5
 *   11  DIR/log.txt   O_WRONLY|O_APPEND, "line1\n" written, offset 6
 *   12  dup of 10 (one open file description: shared offset)
 *   13  /dev/null     O_RDWR
 *   14  /dev/zero     O_RDONLY, close-on-exec
 *   15  memfd "stasis-test", "memfd contents", offset 3, seals F_SEAL_GROW|F_SEAL_SHRINK
 *   16  DIR/ghost.txt deleted while open: "ghost head" at 0, "ghost tail" at 1 MiB + 5
 *       (a hole between), offset 7
 *   17  pipe read end ("abc" buffered), capacity 128 KiB
 *   18  pipe write end, O_NONBLOCK
 *   19  DIR/fifo read end ("xyz" buffered)
 *   20  DIR/fifo write end
 *   21  DIR           O_RDONLY|O_DIRECTORY
 *   22  DIR/data.txt  O_RDONLY, its own description, offset 2
 *   23  pipe read end ("tail" buffered) whose write end is closed
 *   24  DIR/data.txt  O_PATH
 *   25  the memfd of 15 reopened O_RDONLY through /proc/self/fd/15 (another description)
 *   26  pipe write end whose read end is closed (writing would raise SIGPIPE)
 *   27  pipe read end with 200 KiB buffered, capacity 256 KiB   28  its write end
 *   29  memfd "big": 3 MiB, byte i = (i * 7) & 0xff (more than a restorer's scratch memory)
 *   30  eventfd, count 5, EFD_SEMAPHORE|EFD_NONBLOCK    31  dup of 30
 *   32  eventfd, count 0x100000007 (more than its 32-bit initial value can say)
 *   33  timerfd, CLOCK_MONOTONIC, O_NONBLOCK, 100 s to go, then every 1.5 s
 *   34  timerfd, CLOCK_REALTIME, a 1 ms one-shot that has expired, unread (1 tick)
 *   35  signalfd for SIGUSR1 and SIGTERM, O_NONBLOCK
 *   36  epoll instance watching fd 17 (EPOLLIN, data 0x1122334455667788) and fd 32
 *       (EPOLLIN|EPOLLET, data 32)
 *   37/38  a Unix stream socketpair: "ping" sent from 37 waits at 38, "pong!" from 38 at 37;
 *       38 O_NONBLOCK
 *
 * Everything else above 2 is closed first. Writes DIR/ready when done, then pauses.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <signal.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *dir;

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void place(int fd, int want, int flags) {
  if (fd < 0) die("open");
  if (fd == want) return;
  if (dup3(fd, want, flags) < 0) die("dup3");
  close(fd);
}

static char *in_dir(const char *name) {
  static char buf[4][4096];
  static int n;
  char *p = buf[n++ % 4];
  snprintf(p, 4096, "%s/%s", dir, name);
  return p;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  dir = argv[1];
  syscall(SYS_close_range, 3, ~0U, 0);

  int fd = open(in_dir("data.txt"), O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (write(fd, "0123456789abcdef", 16) != 16) die("write");
  lseek(fd, 5, SEEK_SET);
  place(fd, 10, 0);

  fd = open(in_dir("log.txt"), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
  if (write(fd, "line1\n", 6) != 6) die("write");
  place(fd, 11, 0);

  if (dup2(10, 12) < 0) die("dup2");

  place(open("/dev/null", O_RDWR), 13, 0);
  place(open("/dev/zero", O_RDONLY), 14, O_CLOEXEC);

  fd = memfd_create("stasis-test", MFD_ALLOW_SEALING);
  if (write(fd, "memfd contents", 14) != 14) die("write");
  lseek(fd, 3, SEEK_SET);
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK) < 0) die("F_ADD_SEALS");
  place(fd, 15, 0);

  fd = open(in_dir("ghost.txt"), O_RDWR | O_CREAT | O_TRUNC, 0640);
  if (pwrite(fd, "ghost head", 10, 0) != 10) die("pwrite");
  if (pwrite(fd, "ghost tail", 10, (1 << 20) + 5) != 10) die("pwrite");
  lseek(fd, 7, SEEK_SET);
  unlink(in_dir("ghost.txt"));
  place(fd, 16, 0);

  int p[2];
  if (pipe(p) < 0) die("pipe");
  if (fcntl(p[1], F_SETPIPE_SZ, 128 * 1024) < 0) die("F_SETPIPE_SZ");
  if (write(p[1], "abc", 3) != 3) die("write");
  fcntl(p[1], F_SETFL, O_NONBLOCK);
  place(p[0], 17, 0);
  place(p[1], 18, 0);

  if (mkfifo(in_dir("fifo"), 0600) < 0) die("mkfifo");
  int r = open(in_dir("fifo"), O_RDONLY | O_NONBLOCK);
  int w = open(in_dir("fifo"), O_WRONLY);
  if (write(w, "xyz", 3) != 3) die("write");
  fcntl(r, F_SETFL, 0);
  place(r, 19, 0);
  place(w, 20, 0);

  place(open(dir, O_RDONLY | O_DIRECTORY), 21, 0);

  fd = open(in_dir("data.txt"), O_RDONLY);
  lseek(fd, 2, SEEK_SET);
  place(fd, 22, 0);

  if (pipe(p) < 0) die("pipe");
  if (write(p[1], "tail", 4) != 4) die("write");
  close(p[1]);
  place(p[0], 23, 0);

  place(open(in_dir("data.txt"), O_PATH), 24, 0);
  place(open("/proc/self/fd/15", O_RDONLY), 25, 0);

  if (pipe(p) < 0) die("pipe");
  close(p[0]);
  place(p[1], 26, 0);

  if (pipe(p) < 0) die("pipe");
  if (fcntl(p[1], F_SETPIPE_SZ, 256 * 1024) < 0) die("F_SETPIPE_SZ");
  static char chunk[200 * 1024];
  for (size_t i = 0; i < sizeof chunk; i++) chunk[i] = (char)('a' + i % 26);
  if (write(p[1], chunk, sizeof chunk) != (ssize_t)sizeof chunk) die("write");
  place(p[0], 27, 0);
  place(p[1], 28, 0);

  fd = memfd_create("big", 0);
  static unsigned char big[3 << 20];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (unsigned char)(i * 7);
  if (write(fd, big, sizeof big) != (ssize_t)sizeof big) die("write");
  place(fd, 29, 0);

  place(eventfd(5, EFD_SEMAPHORE | EFD_NONBLOCK), 30, 0);
  if (dup2(30, 31) < 0) die("dup2");
  fd = eventfd(0, 0);
  uint64_t count = 0x100000007ULL;
  if (write(fd, &count, 8) != 8) die("write to the eventfd");
  place(fd, 32, 0);

  fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  struct itimerspec later = {{1, 500 * 1000 * 1000}, {100, 0}};
  if (fd < 0 || timerfd_settime(fd, 0, &later, NULL) != 0) die("timerfd 33");
  place(fd, 33, 0);
  fd = timerfd_create(CLOCK_REALTIME, 0);
  struct itimerspec once = {{0, 0}, {0, 1000 * 1000}};
  if (fd < 0 || timerfd_settime(fd, 0, &once, NULL) != 0) die("timerfd 34");
  struct timespec ms5 = {0, 5 * 1000 * 1000};
  nanosleep(&ms5, NULL);
  place(fd, 34, 0);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR1);
  sigaddset(&mask, SIGTERM);
  place(signalfd(-1, &mask, SFD_NONBLOCK), 35, 0);
  place(epoll_create1(0), 36, 0);
  struct epoll_event on17 = {.events = EPOLLIN, .data.u64 = 0x1122334455667788ULL};
  struct epoll_event on32 = {.events = EPOLLIN | EPOLLET, .data.u64 = 32};
  if (epoll_ctl(36, EPOLL_CTL_ADD, 17, &on17) != 0 || epoll_ctl(36, EPOLL_CTL_ADD, 32, &on32) != 0) die("epoll_ctl");
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) die("socketpair");
  place(sv[0], 37, 0);
  place(sv[1], 38, 0);
  if (write(37, "ping", 4) != 4 || write(38, "pong!", 5) != 5 || fcntl(38, F_SETFL, O_NONBLOCK) != 0) die("socketpair write");

  fd = open(in_dir("ready.tmp"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dprintf(fd, "%d\n", (int)getpid());
  close(fd);
  rename(in_dir("ready.tmp"), in_dir("ready"));
  for (;;) pause();
}
