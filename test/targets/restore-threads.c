/*
 * restore-threads: threads in different states, each checking after a restore that it
 * is the same thread (same TID, same pthread_t, same thread-local values) and that what
 * glibc caches about threads still works.
 *
 * usage: restore-threads TRIGGER
 *
 *   thread   state at the dump                                   after the restore
 *   main     sleep loop waiting for TRIGGER                      runs the checks below
 *   locker   holds an ERRORCHECK mutex, sem_wait()               unlocks it (needs its TID)
 *   robust   holds a robust mutex, sem_wait()                    exits holding it
 *   reader   read() on an internal pipe                          gets "ping" written after
 *   sleeper  nanosleep() loop with rem, 4 s in total             wakes after 4 s in total
 *   abs      clock_nanosleep(TIMER_ABSTIME), start + 4.5 s       wakes at its deadline
 *   target   sem_wait(), its SIGUSR2 handler records its TID     receives pthread_kill
 *   spinner  spinning in user space                              keeps counting
 *
 * Verdicts ("OK name" / "FAIL name: why"), then "done N", exit 0 only if all passed:
 *   tids       /proc/self/task lists exactly the TIDs of before; getpid() the same
 *   self       every thread: gettid(), pthread_self() and its TLS values are its own
 *   names      every thread's /proc/self/task/TID/comm is the name it set
 *   raise      raise(SIGUSR1) runs the handler in the main thread
 *   pthread_kill   pthread_kill(target, SIGUSR2) runs the handler in that thread
 *   mutex      the locker still owns its mutex (trylock EBUSY, __owner = its TID), and
 *              can unlock it (ERRORCHECK: only the owner's TID may); then main locks it
 *   robust     the robust mutex's owner exits: main's lock returns EOWNERDEAD, and
 *              pthread_join of that thread returns (clear_child_tid was restored)
 *   pipe       the reader gets the bytes written to the pipe after the restore
 *   nanosleep  the sleeper resumes and has slept at least 4 s in total, but no more than
 *              4 s besides the time it spent frozen and as an image (the spinner's longest pause)
 *   abstime    the absolute sleeper wakes, not before its deadline
 *   spinner    the spinner's counter moves
 */
#define _GNU_SOURCE
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "restore-common.h"

enum { MAIN, LOCKER, ROBUST, READER, SLEEPER, ABS, TARGET, SPINNER, NTHREADS };
static const char *NAMES[NTHREADS] = {"t-main", "t-locker", "t-robust", "t-reader", "t-sleeper", "t-abs", "t-target", "t-spinner"};

static __thread int t_index = -1;
static __thread char t_tag[32] = "unset";
static __thread unsigned long t_big[64];

static pid_t g_tid[NTHREADS];
static pthread_t g_self[NTHREADS];
static pthread_t g_thread[NTHREADS];
/* per thread, after the restore: 1 ok, 0 wrong, -1 not reported */
static volatile int g_self_ok[NTHREADS];
static char g_self_why[NTHREADS][160];

static sem_t g_ready, g_go_locker, g_go_robust, g_go_target, g_locker_done;
/* Threads stay until main has looked at the task list, however late the restore. */
static sem_t g_may_exit;

static void *finish(void) {
  while (sem_wait(&g_may_exit) != 0) {
  }
  return NULL;
}
static pthread_mutex_t g_errcheck;
static pthread_mutex_t g_robust;
static int g_pipe[2];

static volatile int g_unlock_rc = -1;
static char g_read_buf[16];
static volatile ssize_t g_read_len = -2;
static volatile int g_read_errno;
static volatile int g_sleep_done, g_abs_done;
static volatile double g_sleep_start, g_sleep_end, g_abs_deadline, g_abs_end;
static volatile int g_abs_rc = -1;
static volatile unsigned long g_spins;
/* the spinner's clock: its longest pause is the time the process spent frozen and as an image */
static volatile double g_beat, g_longest_pause;
static volatile int g_stop_spinning;
static volatile pid_t g_usr1_tid, g_usr2_tid;
static double g_ready_at;

static void identify(int i) {
  t_index = i;
  snprintf(t_tag, sizeof t_tag, "tag-%d-%s", i, NAMES[i]);
  for (int k = 0; k < 64; k++) t_big[k] = (unsigned long)i * 1000003UL + (unsigned long)k;
  g_tid[i] = gettid_raw();
  g_self[i] = pthread_self();
  pthread_setname_np(pthread_self(), NAMES[i]);
}

/* Called by each thread after the restore: is it still itself? */
static void check_self(int i) {
  char why[160] = "";
  int ok = 1;
  pid_t tid = gettid_raw();
  if (tid != g_tid[i]) {
    ok = 0;
    snprintf(why, sizeof why, "gettid %d, was %d", tid, g_tid[i]);
  } else if (!pthread_equal(pthread_self(), g_self[i])) {
    ok = 0;
    snprintf(why, sizeof why, "pthread_self changed");
  } else if (t_index != i || strncmp(t_tag, "tag-", 4) != 0 || strstr(t_tag, NAMES[i]) == NULL) {
    ok = 0;
    snprintf(why, sizeof why, "TLS t_index=%d t_tag=%s", t_index, t_tag);
  } else {
    for (int k = 0; k < 64; k++)
      if (t_big[k] != (unsigned long)i * 1000003UL + (unsigned long)k) {
        ok = 0;
        snprintf(why, sizeof why, "TLS t_big[%d] = %lu", k, t_big[k]);
        break;
      }
  }
  snprintf(g_self_why[i], sizeof g_self_why[i], "%s", why);
  g_self_ok[i] = ok;
}

static void usr1_handler(int sig) {
  (void)sig;
  g_usr1_tid = gettid_raw();
}
static void usr2_handler(int sig) {
  (void)sig;
  g_usr2_tid = gettid_raw();
}

static void *locker(void *arg) {
  (void)arg;
  identify(LOCKER);
  pthread_mutex_lock(&g_errcheck);
  sem_post(&g_ready);
  while (sem_wait(&g_go_locker) != 0) {
  }
  check_self(LOCKER);
  g_unlock_rc = pthread_mutex_unlock(&g_errcheck);
  sem_post(&g_locker_done);
  return finish();
}

static void *robust(void *arg) {
  (void)arg;
  identify(ROBUST);
  pthread_mutex_lock(&g_robust);
  sem_post(&g_ready);
  while (sem_wait(&g_go_robust) != 0) {
  }
  check_self(ROBUST);
  return (void *)0x1234; /* exits holding g_robust */
}

static void *reader(void *arg) {
  (void)arg;
  identify(READER);
  sem_post(&g_ready);
  ssize_t n;
  do n = read(g_pipe[0], g_read_buf, sizeof g_read_buf - 1);
  while (n < 0 && errno == EINTR);
  g_read_errno = n < 0 ? errno : 0;
  check_self(READER);
  g_read_len = n;
  return finish();
}

static void *sleeper(void *arg) {
  (void)arg;
  identify(SLEEPER);
  struct timespec req = {4, 0}, rem;
  g_sleep_start = now_mono();
  sem_post(&g_ready);
  while (nanosleep(&req, &rem) != 0 && errno == EINTR) req = rem;
  g_sleep_end = now_mono();
  check_self(SLEEPER);
  g_sleep_done = 1;
  return finish();
}

static void *abs_sleeper(void *arg) {
  (void)arg;
  identify(ABS);
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += 4;
  deadline.tv_nsec += 500 * 1000 * 1000;
  if (deadline.tv_nsec >= 1000000000) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000;
  }
  g_abs_deadline = (double)deadline.tv_sec + deadline.tv_nsec / 1e9;
  sem_post(&g_ready);
  int rc;
  do rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL);
  while (rc == EINTR);
  g_abs_rc = rc;
  g_abs_end = now_mono();
  check_self(ABS);
  g_abs_done = 1;
  return finish();
}

static void *target(void *arg) {
  (void)arg;
  identify(TARGET);
  sem_post(&g_ready);
  while (sem_wait(&g_go_target) != 0) {
  }
  check_self(TARGET);
  return finish();
}

static void *spinner(void *arg) {
  (void)arg;
  identify(SPINNER);
  sem_post(&g_ready);
  while (!g_stop_spinning) {
    g_spins++;
    double now = now_mono();
    if (g_beat > 0 && now - g_beat > g_longest_pause) g_longest_pause = now - g_beat;
    g_beat = now;
  }
  check_self(SPINNER);
  return finish();
}

static int read_tids(pid_t *out, int max) {
  DIR *d = opendir("/proc/self/task");
  int n = 0;
  struct dirent *e;
  if (!d) return -1;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.' && n < max) out[n++] = atoi(e->d_name);
  closedir(d);
  return n;
}

static int has_tid(const pid_t *list, int n, pid_t tid) {
  for (int i = 0; i < n; i++)
    if (list[i] == tid) return 1;
  return 0;
}

/* Waits up to `seconds` for *flag to become nonzero. */
static int wait_flag(volatile int *flag, double seconds) {
  double until = now_mono() + seconds;
  struct timespec ts = {0, 5 * 1000 * 1000};
  while (!*flag && now_mono() < until) nanosleep(&ts, NULL);
  return *flag != 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s TRIGGER\n", argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  pid_t pid = getpid();
  for (int i = 0; i < NTHREADS; i++) g_self_ok[i] = -1;
  identify(MAIN);

  struct sigaction sa = {0};
  sa.sa_handler = usr1_handler;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, NULL);
  sa.sa_handler = usr2_handler;
  sigaction(SIGUSR2, &sa, NULL);

  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
  pthread_mutex_init(&g_errcheck, &ma);
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&g_robust, &ma);
  sem_init(&g_ready, 0, 0);
  sem_init(&g_go_locker, 0, 0);
  sem_init(&g_go_robust, 0, 0);
  sem_init(&g_go_target, 0, 0);
  sem_init(&g_locker_done, 0, 0);
  sem_init(&g_may_exit, 0, 0);
  if (pipe(g_pipe) != 0) return 2;

  void *(*fns[NTHREADS])(void *) = {NULL, locker, robust, reader, sleeper, abs_sleeper, target, spinner};
  for (int i = 1; i < NTHREADS; i++) {
    pthread_create(&g_thread[i], NULL, fns[i], NULL);
    sem_wait(&g_ready);
  }
  pid_t before[64];
  int nbefore = read_tids(before, 64);
  g_ready_at = now_mono();
  printf("ready %d", pid);
  for (int i = 0; i < NTHREADS; i++) printf(" %s=%d", NAMES[i], g_tid[i]);
  printf("\n");

  wait_for_trigger(argv[1]);

  /* --- checks, in the restored process --- */
  pid_t after[64];
  int nafter = read_tids(after, 64);
  int same = nafter == nbefore && getpid() == pid;
  for (int i = 0; i < nbefore && same; i++)
    if (!has_tid(after, nafter, before[i])) same = 0;
  char list[256] = "";
  for (int i = 0, n = 0; i < nafter; i++) n += snprintf(list + n, sizeof list - (size_t)n, " %d", after[i]);
  char missing[256] = "";
  for (int i = 0, n = 0; i < NTHREADS; i++)
    if (!has_tid(after, nafter, g_tid[i])) n += snprintf(missing + n, sizeof missing - (size_t)n, " %s", NAMES[i]);
  verdict(same, "tids", "getpid %d (was %d); %d tasks now:%s; %d before; missing:%s (%.1f s after ready)", getpid(), pid, nafter, list, nbefore, missing, now_mono() - g_ready_at);

  int names_ok = 1;
  char names_why[512] = "";
  for (int i = 0; i < NTHREADS; i++) {
    char path[64], comm[32] = "";
    snprintf(path, sizeof path, "/proc/self/task/%d/comm", g_tid[i]);
    FILE *f = fopen(path, "r");
    if (f) {
      if (fgets(comm, sizeof comm, f)) comm[strcspn(comm, "\n")] = 0;
      fclose(f);
    }
    if (strcmp(comm, NAMES[i]) != 0) {
      size_t n = strlen(names_why);
      names_ok = 0;
      snprintf(names_why + n, sizeof names_why - n, "%d is '%s' (was '%s'); ", g_tid[i], comm, NAMES[i]);
    }
  }
  verdict(names_ok, "names", "%s", names_why);

  check_self(MAIN);

  raise(SIGUSR1);
  verdict(g_usr1_tid == g_tid[MAIN], "raise", "raise(SIGUSR1) ran the handler in thread %d, main is %d", g_usr1_tid, g_tid[MAIN]);

  int kill_rc = pthread_kill(g_thread[TARGET], SIGUSR2);
  struct timespec ms = {0, 1000 * 1000};
  for (int i = 0; i < 2000 && g_usr2_tid == 0; i++) nanosleep(&ms, NULL);
  verdict(kill_rc == 0 && g_usr2_tid == g_tid[TARGET], "pthread_kill", "pthread_kill returned %d (%s); the handler ran in thread %d, the target is %d", kill_rc, strerror(kill_rc), g_usr2_tid,
          g_tid[TARGET]);
  sem_post(&g_go_target);

  /* ERRORCHECK mutex still owned by the locker, by TID */
  int owner = g_errcheck.__data.__owner;
  int try_rc = pthread_mutex_trylock(&g_errcheck);
  sem_post(&g_go_locker);
  struct timespec lim;
  clock_gettime(CLOCK_REALTIME, &lim);
  lim.tv_sec += 3;
  int done_rc = sem_timedwait(&g_locker_done, &lim);
  int lock_rc = -1;
  if (done_rc == 0 && g_unlock_rc == 0) {
    clock_gettime(CLOCK_REALTIME, &lim);
    lim.tv_sec += 3;
    lock_rc = pthread_mutex_timedlock(&g_errcheck, &lim);
    if (lock_rc == 0) pthread_mutex_unlock(&g_errcheck);
  }
  verdict(owner == g_tid[LOCKER] && try_rc == EBUSY && g_unlock_rc == 0 && lock_rc == 0, "mutex",
          "owner field %d (locker is %d), trylock %s, the locker's unlock %s, main's lock then %s", owner, g_tid[LOCKER], try_rc == EBUSY ? "EBUSY" : strerror(try_rc),
          g_unlock_rc == -1 ? "did not happen" : strerror(g_unlock_rc), lock_rc == -1 ? "not tried" : strerror(lock_rc));

  /* robust mutex: its owner exits holding it */
  int robust_owner = g_robust.__data.__owner & 0x3fffffff;
  sem_post(&g_go_robust);
  void *ret = NULL;
  clock_gettime(CLOCK_REALTIME, &lim);
  lim.tv_sec += 3;
  int join_rc = pthread_timedjoin_np(g_thread[ROBUST], &ret, &lim);
  clock_gettime(CLOCK_REALTIME, &lim);
  lim.tv_sec += 3;
  int robust_rc = pthread_mutex_timedlock(&g_robust, &lim);
  if (robust_rc == EOWNERDEAD) {
    pthread_mutex_consistent(&g_robust);
    pthread_mutex_unlock(&g_robust);
  }
  verdict(robust_owner == g_tid[ROBUST] && join_rc == 0 && ret == (void *)0x1234 && robust_rc == EOWNERDEAD, "robust",
          "owner field %d (robust is %d), pthread_timedjoin %s (returned %p), lock of the dead owner's mutex %s (EOWNERDEAD expected)", robust_owner, g_tid[ROBUST],
          join_rc == 0 ? "ok" : strerror(join_rc), ret, robust_rc == EOWNERDEAD ? "EOWNERDEAD" : strerror(robust_rc));

  /* the reader gets what is written now */
  ssize_t w = write(g_pipe[1], "ping", 4);
  int werr = errno;
  for (int i = 0; i < 3000 && g_read_len == -2; i++) nanosleep(&ms, NULL);
  verdict(w == 4 && g_read_len == 4 && memcmp(g_read_buf, "ping", 4) == 0, "pipe", "write returned %zd (%s); the reader's read returned %zd (%s) '%.*s'", w, w < 0 ? strerror(werr) : "ok", g_read_len,
          g_read_len < 0 ? (g_read_len == -2 ? "still blocked" : strerror(g_read_errno)) : "ok", g_read_len > 0 ? (int)g_read_len : 0, g_read_buf);

  int slept = wait_flag(&g_sleep_done, 6.0);
  /* Frozen and as an image, the sleep stood still: it resumed with the time it had left. */
  double slept_total = (slept ? g_sleep_end : now_mono()) - g_sleep_start;
  double asleep = slept_total - g_longest_pause;
  printf("INFO sleeper: %.3f s in total, %.3f s frozen or as an image\n", slept_total, g_longest_pause);
  verdict(slept && slept_total >= 4.0 - 0.001 && asleep <= 4.0 + 0.5, "nanosleep", "sleeper %s; slept %.3f s in total, %.3f s of it frozen or as an image: %.3f s asleep (4 s asked)",
          slept ? "woke" : "NEVER WOKE", slept_total, g_longest_pause, asleep);

  int woke = wait_flag(&g_abs_done, 6.0);
  verdict(woke && g_abs_rc == 0 && g_abs_end >= g_abs_deadline - 0.001, "abstime", "absolute sleeper %s, rc %d, woke %.3f s after its deadline", woke ? "woke" : "NEVER WOKE", g_abs_rc,
          (woke ? g_abs_end : now_mono()) - g_abs_deadline);

  unsigned long s0 = g_spins;
  struct timespec tenth = {0, 100 * 1000 * 1000};
  nanosleep(&tenth, NULL);
  unsigned long s1 = g_spins;
  g_stop_spinning = 1;
  verdict(s1 > s0, "spinner", "the spinner's counter did not move (%lu)", s0);

  /* every thread reports on itself as it finishes; join them (a stuck one is reported) */
  for (int i = 1; i < NTHREADS; i++) sem_post(&g_may_exit);
  for (int i = 1; i < NTHREADS; i++) {
    if (i == ROBUST) continue;
    clock_gettime(CLOCK_REALTIME, &lim);
    lim.tv_sec += 2;
    int rc = pthread_timedjoin_np(g_thread[i], NULL, &lim);
    if (rc != 0) printf("INFO thread %s (%d) could not be joined: %s\n", NAMES[i], g_tid[i], strerror(rc));
  }
  int self_ok = 1;
  char self_why[512] = "";
  for (int i = 0, n = 0; i < NTHREADS; i++) {
    if (g_self_ok[i] == 1) continue;
    self_ok = 0;
    n += snprintf(self_why + n, sizeof self_why - (size_t)n, "%s: %s; ", NAMES[i], g_self_ok[i] == 0 ? g_self_why[i] : "did not report");
  }
  verdict(self_ok, "self", "%s", self_why);

  return verdicts_done();
}
