/*
 * files-churn: a process whose threads open and close eventfds and epoll instances all
 * the time (as Node.js worker threads starting and exiting do), and processes that hold
 * such files of their own or share one.
 *
 * usage: files-churn churn     two threads loop: eventfd, epoll_create1, the eventfd
 *                              added to the epoll, 100 us, both closed, 100 us; the main
 *                              thread holds an eventfd and an epoll watching it for good
 *        files-churn hold      holds an eventfd and an epoll watching it (a bystander
 *                              with files on the same anonymous inode)
 *        files-churn share PID FD
 *                              holds fd FD of process PID (pidfd_getfd): a real sharer
 *
 * Prints "ready efd=N ep=M" (share: "ready fd=N"), then runs until killed.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void pause_us(long us) {
  struct timespec ts = {0, us * 1000};
  nanosleep(&ts, NULL);
}

static void *churn(void *arg) {
  (void)arg;
  for (;;) {
    int efd = eventfd(0, EFD_CLOEXEC);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 7};
    epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
    pause_us(100);
    close(ep);
    close(efd);
    pause_us(100);
  }
  return NULL;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc >= 4 && strcmp(argv[1], "share") == 0) {
    int pidfd = (int)syscall(SYS_pidfd_open, atoi(argv[2]), 0);
    int fd = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, atoi(argv[3]), 0);
    if (fd < 0) {
      perror("pidfd_getfd");
      return 1;
    }
    printf("ready fd=%d\n", fd);
    for (;;) pause();
  }
  if (argc < 2 || (strcmp(argv[1], "churn") != 0 && strcmp(argv[1], "hold") != 0)) {
    fprintf(stderr, "usage: %s churn | hold | share PID FD\n", argv[0]);
    return 2;
  }
  int efd = eventfd(0, 0);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 1};
  if (efd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) != 0) return 1;
  if (strcmp(argv[1], "churn") == 0) {
    pthread_t t;
    for (int i = 0; i < 2; i++)
      if (pthread_create(&t, NULL, churn, NULL) != 0) return 1;
  }
  printf("ready efd=%d ep=%d\n", efd, ep);
  for (;;) pause();
}
