/*
 * threads: 8 threads, each in a different state, each with its own thread-local values.
 *
 *   thread  function         state                                   t_id  t_name
 *   main    main             pthread_join() on the spinner (futex)    100   "main"
 *   1       spin_worker      spinning on the line marked SPIN         101   "spin"
 *   2       sleep_worker     nanosleep() of an hour, in a loop         102   "sleep"
 *   3       read_worker      read() on an empty pipe                   103   "read"
 *   4       cond_worker      pthread_cond_wait(), never signalled      104   "cond"
 *   5       signal_worker    inside usr1_handler(), blocked in pause() 105   "signal"
 *   6       mutex_worker     pthread_mutex_lock() of a mutex main holds 106  "mutex"
 *   7       poll_worker      poll() on an empty pipe                   107   "poll"
 *
 * Each worker has a stack local `marker` = 1000 + index and `role` = its name.
 * Globals: g_spin_count (changes), g_handler_entered = 1, g_names[] (heap strings).
 *
 * main prints "ready <pid>" once every worker is in its state, then blocks in
 * pthread_join(); a test should still wait for main to settle in its futex (see
 * waitSettled in test/helpers/targets.ts).
 */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NWORKERS 7

__thread int t_id = -1;
__thread char t_name[16] = "unset";

volatile unsigned long g_spin_count;
volatile int g_stop;
volatile sig_atomic_t g_handler_entered;
volatile pid_t g_tids[NWORKERS + 1];
char **g_names; /* heap: g_names[i] -> "worker-<i>" */

static int read_pipe[2], poll_pipe[2];
static pthread_mutex_t cond_mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond_cv = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t held_mx = PTHREAD_MUTEX_INITIALIZER;

static void set_identity(int index, const char *name) {
  t_id = 100 + index;
  snprintf(t_name, sizeof t_name, "%s", name);
  g_tids[index] = (pid_t)syscall(SYS_gettid);
}

__attribute__((noinline)) void *spin_worker(void *arg) {
  int marker = 1000 + 1;
  const char *role = "spin";
  set_identity(1, role);
  while (!g_stop) g_spin_count++; /* SPIN */
  (void)arg; (void)marker;
  return NULL;
}

__attribute__((noinline)) void *sleep_worker(void *arg) {
  int marker = 1000 + 2;
  const char *role = "sleep";
  struct timespec hour = {3600, 0};
  set_identity(2, role);
  for (;;) nanosleep(&hour, NULL);
  (void)arg; (void)marker;
  return NULL;
}

__attribute__((noinline)) void *read_worker(void *arg) {
  int marker = 1000 + 3;
  const char *role = "read";
  char buf[16];
  set_identity(3, role);
  for (;;) (void)!read(read_pipe[0], buf, sizeof buf);
  (void)arg; (void)marker;
  return NULL;
}

__attribute__((noinline)) void *cond_worker(void *arg) {
  int marker = 1000 + 4;
  const char *role = "cond";
  set_identity(4, role);
  pthread_mutex_lock(&cond_mx);
  for (;;) pthread_cond_wait(&cond_cv, &cond_mx);
  (void)arg; (void)marker;
  return NULL;
}

__attribute__((noinline)) void usr1_handler(int sig) {
  int handler_local = 5000 + sig;
  g_handler_entered = 1;
  for (;;) pause(); /* IN HANDLER */
  (void)handler_local;
}

__attribute__((noinline)) void *signal_worker(void *arg) {
  int marker = 1000 + 5;
  const char *role = "signal";
  sigset_t usr1;
  set_identity(5, role);
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_UNBLOCK, &usr1, NULL); /* the only thread that takes SIGUSR1 */
  for (;;) pause();
  (void)arg; (void)marker;
  return NULL;
}

__attribute__((noinline)) void *mutex_worker(void *arg) {
  int marker = 1000 + 6;
  const char *role = "mutex";
  set_identity(6, role);
  pthread_mutex_lock(&held_mx);
  (void)arg; (void)marker;
  return NULL;
}

__attribute__((noinline)) void *poll_worker(void *arg) {
  int marker = 1000 + 7;
  const char *role = "poll";
  struct pollfd p = {.fd = poll_pipe[0], .events = POLLIN};
  set_identity(7, role);
  for (;;) poll(&p, 1, -1);
  (void)arg; (void)marker;
  return NULL;
}

/* 1 when task `tid` of this process is asleep in syscall `nr`. */
static int in_syscall(pid_t tid, long nr) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  int ok = fgets(line, sizeof line, f) != NULL && strncmp(line, "running", 7) != 0 && atol(line) == nr;
  fclose(f);
  return ok;
}

static void wait_until(int (*cond)(void), const char *what) {
  for (int i = 0; i < 10000; i++) {
    if (cond()) return;
    usleep(1000);
  }
  fprintf(stderr, "threads: timed out waiting for %s\n", what);
  exit(3);
}

static int all_started(void) {
  for (int i = 1; i <= NWORKERS; i++)
    if (!g_tids[i]) return 0;
  return g_spin_count > 0;
}
static int all_blocked(void) {
  return in_syscall(g_tids[2], SYS_clock_nanosleep) && in_syscall(g_tids[3], SYS_read) &&
         in_syscall(g_tids[4], SYS_futex) && in_syscall(g_tids[5], SYS_pause) &&
         in_syscall(g_tids[6], SYS_futex) && in_syscall(g_tids[7], SYS_poll);
}
static int handler_entered(void) { return g_handler_entered; }

int main(void) {
  static void *(*const workers[NWORKERS + 1])(void *) = {
      NULL, spin_worker, sleep_worker, read_worker, cond_worker, signal_worker, mutex_worker, poll_worker};
  pthread_t th[NWORKERS + 1];
  sigset_t usr1;
  struct sigaction sa;

  set_identity(0, "main");
  g_names = malloc((NWORKERS + 1) * sizeof *g_names);
  for (int i = 0; i <= NWORKERS; i++) {
    g_names[i] = malloc(16);
    snprintf(g_names[i], 16, "worker-%d", i);
  }
  if (pipe(read_pipe) || pipe(poll_pipe)) return 2;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = usr1_handler;
  sigaction(SIGUSR1, &sa, NULL);
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, NULL); /* inherited by the workers */
  pthread_mutex_lock(&held_mx);

  for (int i = 1; i <= NWORKERS; i++) pthread_create(&th[i], NULL, workers[i], NULL);
  wait_until(all_started, "the workers to start");
  wait_until(all_blocked, "the workers to block");
  pthread_kill(th[5], SIGUSR1);
  wait_until(handler_entered, "the signal handler");
  while (!in_syscall(g_tids[5], SYS_pause)) usleep(1000);

  printf("ready %d\n", (int)getpid());
  fflush(stdout);
  pthread_join(th[1], NULL); /* never returns: the spinner spins forever */
  return 0;
}
