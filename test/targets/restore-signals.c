/*
 * restore-signals: signal dispositions, masks, the alternate stack and signals pending
 * at the dump, checked by the program itself after a restore.
 *
 * usage: restore-signals TRIGGER
 *
 * Setup: SIGUSR1 handler (SA_SIGINFO|SA_RESTART|SA_ONSTACK, sa_mask {SIGUSR2, SIGTERM}),
 * an alternate signal stack, SIGHUP ignored; SIGRTMIN+1 and SIGUSR2 blocked in every
 * thread, then queued to the process: sigqueue(SIGRTMIN+1, 42) and (…, 43), kill(SIGUSR2);
 * a worker thread that also blocks SIGRTMIN+3 gets pthread_sigqueue(SIGRTMIN+3, 77); a
 * third thread is parked inside its SIGWINCH handler.
 *
 * Verdicts after the restore, then "done N", exit 0 only if all passed:
 *   action      sigaction(SIGUSR1) returns the same handler, flags and mask
 *   ignored     SIGHUP is still SIG_IGN; SIGTERM still SIG_DFL
 *   mask        the main thread still blocks exactly what it blocked
 *   altstack    sigaltstack() returns the same stack
 *   pending     sigpending() in main shows SIGRTMIN+1 and SIGUSR2
 *   queued      unblocking SIGRTMIN+1 delivers it twice, values 42 then 43, SI_QUEUE,
 *               si_pid = our pid, si_uid = our uid
 *   usr2        unblocking SIGUSR2 delivers it once
 *   thread      the worker still has SIGRTMIN+3 pending for itself; unblocking it
 *               delivers it in the worker with value 77
 *   inhandler   a thread that was inside a SIGWINCH handler (waiting on a semaphore) at
 *               the dump returns from it when released, and sigreturn gives it back the
 *               mask it had before the signal
 *   onstack     raise(SIGUSR1): the handler runs on the alternate stack
 *   outside     a signal sent by the test after the restore (SIGUSR1 via kill) is
 *               handled (the test sends it when it sees "send-usr1")
 *   forwarded   SIGUSR1 sent to the foreground `stasis restore` reaches us (the test
 *               sends it when it sees "send-usr1-to-stasis")
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "restore-common.h"

static unsigned char g_altstack[1 << 16];

static volatile int g_usr1_count;
static volatile uintptr_t g_usr1_sp;
static volatile int g_usr2_count;

#define MAXQ 8
static volatile int g_rt1_count;
static volatile int g_rt1_values[MAXQ], g_rt1_codes[MAXQ], g_rt1_pids[MAXQ], g_rt1_uids[MAXQ];

static volatile int g_rt3_count, g_rt3_value;
static volatile pid_t g_rt3_tid;

static void usr1_handler(int sig, siginfo_t *si, void *uc) {
  (void)sig; (void)si; (void)uc;
  volatile int here;
  g_usr1_sp = (uintptr_t)&here;
  g_usr1_count++;
}

static void usr2_handler(int sig) {
  (void)sig;
  g_usr2_count++;
}

static void rt1_handler(int sig, siginfo_t *si, void *uc) {
  (void)sig; (void)uc;
  int i = g_rt1_count;
  if (i < MAXQ) {
    g_rt1_values[i] = si->si_value.sival_int;
    g_rt1_codes[i] = si->si_code;
    g_rt1_pids[i] = si->si_pid;
    g_rt1_uids[i] = (int)si->si_uid;
  }
  g_rt1_count = i + 1;
}

static void rt3_handler(int sig, siginfo_t *si, void *uc) {
  (void)sig; (void)uc;
  g_rt3_value = si->si_value.sival_int;
  g_rt3_tid = gettid_raw();
  g_rt3_count++;
}

/* a thread parked inside a signal handler (SIGWINCH) at the dump */
static sem_t g_in_handler, g_leave_handler;
static volatile int g_handler_returned;
static volatile int g_winch_blocked_inside = -1, g_winch_blocked_after = -1;
static pid_t g_handler_tid;

static void winch_handler(int sig) {
  (void)sig;
  sigset_t now;
  pthread_sigmask(SIG_SETMASK, NULL, &now);
  g_winch_blocked_inside = sigismember(&now, SIGWINCH);
  sem_post(&g_in_handler);
  while (sem_wait(&g_leave_handler) != 0) {
  }
}

static void *handler_thread(void *arg) {
  (void)arg;
  g_handler_tid = gettid_raw();
  sigset_t winch;
  sigemptyset(&winch);
  sigaddset(&winch, SIGWINCH);
  pthread_sigmask(SIG_UNBLOCK, &winch, NULL);
  struct timespec ts = {0, 5 * 1000 * 1000};
  while (!g_handler_returned) {
    if (g_winch_blocked_inside != -1) {
      /* back from the handler: sigreturn restored the mask of before the signal */
      sigset_t now;
      pthread_sigmask(SIG_SETMASK, NULL, &now);
      g_winch_blocked_after = sigismember(&now, SIGWINCH);
      g_handler_returned = 1;
      break;
    }
    nanosleep(&ts, NULL);
  }
  return NULL;
}

static sem_t g_ready, g_go, g_done;
static pid_t g_worker_tid;
static int g_worker_pending_ok = -1;

static void *worker(void *arg) {
  (void)arg;
  sigset_t rt3;
  sigemptyset(&rt3);
  sigaddset(&rt3, SIGRTMIN + 3);
  pthread_sigmask(SIG_BLOCK, &rt3, NULL);
  g_worker_tid = gettid_raw();
  sem_post(&g_ready);
  while (sem_wait(&g_go) != 0) {
  }
  sigset_t pend;
  sigpending(&pend);
  g_worker_pending_ok = sigismember(&pend, SIGRTMIN + 3);
  pthread_sigmask(SIG_UNBLOCK, &rt3, NULL);
  sem_post(&g_done);
  return NULL;
}

static int same_set(const sigset_t *a, const sigset_t *b) {
  for (int s = 1; s < 65; s++)
    if (sigismember(a, s) != sigismember(b, s)) return 0;
  return 1;
}

static void describe_set(const sigset_t *set, char *out, size_t size) {
  size_t n = 0;
  out[0] = 0;
  for (int s = 1; s < 65 && n + 8 < size; s++)
    if (sigismember(set, s) == 1) n += (size_t)snprintf(out + n, size - n, "%d ", s);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s TRIGGER\n", argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  sem_init(&g_ready, 0, 0);
  sem_init(&g_go, 0, 0);
  sem_init(&g_done, 0, 0);

  stack_t ss = {.ss_sp = g_altstack, .ss_size = sizeof g_altstack, .ss_flags = 0};
  sigaltstack(&ss, NULL);

  struct sigaction usr1 = {0};
  usr1.sa_sigaction = usr1_handler;
  usr1.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigemptyset(&usr1.sa_mask);
  sigaddset(&usr1.sa_mask, SIGUSR2);
  sigaddset(&usr1.sa_mask, SIGTERM);
  sigaction(SIGUSR1, &usr1, NULL);

  struct sigaction sa = {0};
  sa.sa_handler = usr2_handler;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR2, &sa, NULL);
  sa.sa_handler = SIG_IGN;
  sa.sa_flags = 0;
  sigaction(SIGHUP, &sa, NULL);
  struct sigaction rt = {0};
  rt.sa_sigaction = rt1_handler;
  rt.sa_flags = SA_SIGINFO | SA_RESTART;
  sigaction(SIGRTMIN + 1, &rt, NULL);
  rt.sa_sigaction = rt3_handler;
  sigaction(SIGRTMIN + 3, &rt, NULL);

  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGRTMIN + 1);
  sigaddset(&blocked, SIGUSR2);
  sigaddset(&blocked, SIGWINCH); /* only the handler thread takes it */
  pthread_sigmask(SIG_BLOCK, &blocked, NULL);
  sa.sa_handler = winch_handler;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGWINCH, &sa, NULL);
  sem_init(&g_in_handler, 0, 0);
  sem_init(&g_leave_handler, 0, 0);
  pthread_t ht;
  pthread_create(&ht, NULL, handler_thread, NULL);

  pthread_t t;
  pthread_create(&t, NULL, worker, NULL);
  sem_wait(&g_ready);

  while (g_handler_tid == 0) {
    struct timespec ms1 = {0, 1000 * 1000};
    nanosleep(&ms1, NULL);
  }
  kill(getpid(), SIGWINCH);
  sem_wait(&g_in_handler); /* the handler thread is inside winch_handler now */

  union sigval v;
  v.sival_int = 42;
  sigqueue(getpid(), SIGRTMIN + 1, v);
  v.sival_int = 43;
  sigqueue(getpid(), SIGRTMIN + 1, v);
  kill(getpid(), SIGUSR2);
  v.sival_int = 77;
  pthread_sigqueue(t, SIGRTMIN + 3, v);

  sigset_t mask_before;
  pthread_sigmask(SIG_SETMASK, NULL, &mask_before);
  sigset_t pend;
  sigpending(&pend);
  if (!sigismember(&pend, SIGRTMIN + 1) || !sigismember(&pend, SIGUSR2)) {
    printf("setup failed: signals not pending\n");
    return 2;
  }
  printf("ready %d worker=%d\n", getpid(), g_worker_tid);

  wait_for_trigger(argv[1]);

  /* --- checks, in the restored process --- */
  struct sigaction now;
  sigaction(SIGUSR1, NULL, &now);
  int flags_mask = SA_SIGINFO | SA_RESTART | SA_ONSTACK | SA_NODEFER | SA_RESETHAND;
  int act_ok = now.sa_sigaction == usr1_handler && (now.sa_flags & flags_mask) == (usr1.sa_flags & flags_mask) && sigismember(&now.sa_mask, SIGUSR2) == 1 &&
               sigismember(&now.sa_mask, SIGTERM) == 1;
  char set[256];
  describe_set(&now.sa_mask, set, sizeof set);
  verdict(act_ok, "action", "handler %p (expected %p), flags %#x (expected %#x), mask {%s} (expected {10 12 15} at least)", (void *)now.sa_sigaction, (void *)usr1_handler, now.sa_flags & flags_mask,
          usr1.sa_flags & flags_mask, set);

  struct sigaction hup, term;
  sigaction(SIGHUP, NULL, &hup);
  sigaction(SIGTERM, NULL, &term);
  verdict(hup.sa_handler == SIG_IGN && term.sa_handler == SIG_DFL, "ignored", "SIGHUP %s, SIGTERM %s", hup.sa_handler == SIG_IGN ? "SIG_IGN" : "NOT IGNORED",
          term.sa_handler == SIG_DFL ? "SIG_DFL" : "changed");

  sigset_t mask_now;
  pthread_sigmask(SIG_SETMASK, NULL, &mask_now);
  char a[256], b[256];
  describe_set(&mask_before, a, sizeof a);
  describe_set(&mask_now, b, sizeof b);
  verdict(same_set(&mask_before, &mask_now), "mask", "blocked {%s} before, {%s} now", a, b);

  stack_t ss_now;
  sigaltstack(NULL, &ss_now);
  verdict(ss_now.ss_sp == g_altstack && ss_now.ss_size == sizeof g_altstack && !(ss_now.ss_flags & SS_DISABLE), "altstack", "sp %p size %zu flags %#x (expected %p %zu)", ss_now.ss_sp, ss_now.ss_size,
          ss_now.ss_flags, (void *)g_altstack, sizeof g_altstack);

  sigpending(&pend);
  describe_set(&pend, a, sizeof a);
  verdict(sigismember(&pend, SIGRTMIN + 1) == 1 && sigismember(&pend, SIGUSR2) == 1, "pending", "pending {%s}, expected %d and %d", a, SIGRTMIN + 1, SIGUSR2);

  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, SIGRTMIN + 1);
  pthread_sigmask(SIG_UNBLOCK, &one, NULL);
  int q_ok = g_rt1_count == 2 && g_rt1_values[0] == 42 && g_rt1_values[1] == 43;
  for (int i = 0; i < 2 && i < g_rt1_count; i++)
    if (g_rt1_codes[i] != SI_QUEUE || g_rt1_pids[i] != getpid() || g_rt1_uids[i] != (int)getuid()) q_ok = 0;
  verdict(q_ok, "queued", "%d deliveries; first: value %d code %d pid %d uid %d; second: value %d code %d pid %d uid %d (expected 42, 43, SI_QUEUE=%d, pid %d, uid %d)", g_rt1_count,
          g_rt1_values[0], g_rt1_codes[0], g_rt1_pids[0], g_rt1_uids[0], g_rt1_values[1], g_rt1_codes[1], g_rt1_pids[1], g_rt1_uids[1], SI_QUEUE, getpid(), (int)getuid());

  sigemptyset(&one);
  sigaddset(&one, SIGUSR2);
  pthread_sigmask(SIG_UNBLOCK, &one, NULL);
  verdict(g_usr2_count == 1, "usr2", "SIGUSR2 delivered %d times", g_usr2_count);

  sem_post(&g_go);
  struct timespec lim;
  clock_gettime(CLOCK_REALTIME, &lim);
  lim.tv_sec += 3;
  int rc = sem_timedwait(&g_done, &lim);
  verdict(rc == 0 && g_worker_pending_ok == 1 && g_rt3_count == 1 && g_rt3_value == 77 && g_rt3_tid == g_worker_tid, "thread",
          "worker %s; SIGRTMIN+3 %s pending for it; delivered %d times, value %d, in thread %d (worker %d)", rc == 0 ? "reported" : "did not report", g_worker_pending_ok == 1 ? "was" : "was NOT",
          g_rt3_count, g_rt3_value, g_rt3_tid, g_worker_tid);

  sem_post(&g_leave_handler);
  struct timespec ms5 = {0, 5 * 1000 * 1000};
  for (int i = 0; i < 600 && !g_handler_returned; i++) nanosleep(&ms5, NULL);
  verdict(g_handler_returned && g_winch_blocked_inside == 1 && g_winch_blocked_after == 0, "inhandler",
          "the thread parked in a handler %s; SIGWINCH blocked inside the handler: %d (1 expected), after it returned: %d (0 expected)", g_handler_returned ? "returned" : "did NOT return",
          g_winch_blocked_inside, g_winch_blocked_after);

  raise(SIGUSR1);
  int on = g_usr1_sp >= (uintptr_t)g_altstack && g_usr1_sp < (uintptr_t)g_altstack + sizeof g_altstack;
  verdict(g_usr1_count == 1 && on, "onstack", "handler ran %d times, on %s (sp %#lx, altstack %p)", g_usr1_count, on ? "the altstack" : "ANOTHER stack", (unsigned long)g_usr1_sp, (void *)g_altstack);

  /* the test sends SIGUSR1 to our PID when it reads this line... */
  printf("send-usr1\n");
  struct timespec ms = {0, 1000 * 1000};
  for (int i = 0; i < 5000 && g_usr1_count < 2; i++) nanosleep(&ms, NULL);
  verdict(g_usr1_count == 2, "outside", "a SIGUSR1 sent to pid %d from outside was %s", getpid(), g_usr1_count > 2 ? "handled more than once" : "not handled within 5 s");
  /* ...and to the foreground `stasis restore` when it reads this one: stasis forwards it */
  printf("send-usr1-to-stasis\n");
  for (int i = 0; i < 5000 && g_usr1_count < 3; i++) nanosleep(&ms, NULL);
  verdict(g_usr1_count == 3, "forwarded", "a SIGUSR1 sent to the foreground stasis restore was %s", g_usr1_count > 3 ? "handled more than once" : "not forwarded to us within 5 s");

  return verdicts_done();
}
