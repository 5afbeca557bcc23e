/*
 * restore-gdb: threads parked forever in distinct call chains, for comparing what gdb
 * shows of a checkpoint image, of a live core, and of the restored process.
 *
 *   thread    call chain (innermost last)                         blocked in
 *   main      main -> park_main                                   pthread_join (futex)
 *   alpha     alpha_top -> alpha_middle -> alpha_bottom           sem_wait (futex)
 *   beta      beta_top -> beta_bottom                             nanosleep, an hour
 *   gamma     gamma_top                                           pause()
 *
 * Globals: g_magic = 0x5eed1e55, g_words[] (heap) = "alpha", "beta", "gamma".
 * Prints "ready PID" once every thread is parked; then never changes state.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

unsigned long g_magic = 0x5eed1e55UL;
char **g_words;
static sem_t g_parked, g_never;
__thread int t_depth = -1;

__attribute__((noinline)) void alpha_bottom(int depth) {
  t_depth = depth;
  sem_post(&g_parked);
  for (;;) sem_wait(&g_never);
}
__attribute__((noinline)) void alpha_middle(int depth) { alpha_bottom(depth + 1); }
__attribute__((noinline)) void *alpha_top(void *arg) {
  (void)arg;
  alpha_middle(1);
  return NULL;
}

__attribute__((noinline)) void beta_bottom(int depth) {
  struct timespec hour = {3600, 0};
  t_depth = depth;
  sem_post(&g_parked);
  for (;;) nanosleep(&hour, NULL);
}
__attribute__((noinline)) void *beta_top(void *arg) {
  (void)arg;
  beta_bottom(1);
  return NULL;
}

__attribute__((noinline)) void *gamma_top(void *arg) {
  (void)arg;
  t_depth = 0;
  sem_post(&g_parked);
  for (;;) pause();
  return NULL;
}

__attribute__((noinline)) void park_main(pthread_t t) { pthread_join(t, NULL); }

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  g_words = malloc(3 * sizeof *g_words);
  g_words[0] = strdup("alpha");
  g_words[1] = strdup("beta");
  g_words[2] = strdup("gamma");
  sem_init(&g_parked, 0, 0);
  sem_init(&g_never, 0, 0);
  pthread_t a, b, c;
  pthread_create(&a, NULL, alpha_top, NULL);
  pthread_create(&b, NULL, beta_top, NULL);
  pthread_create(&c, NULL, gamma_top, NULL);
  for (int i = 0; i < 3; i++) sem_wait(&g_parked);
  printf("ready %d\n", getpid());
  park_main(a);
  return 0;
}
