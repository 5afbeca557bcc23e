/*
 * single: one thread, known values in every storage class, blocked in a known function.
 *
 *   global      g_answer = 42, g_message = "stasis single target", s_static = 99
 *   heap        g_record -> { id = 7, weight = 2.5, tag = "heap-record" },
 *               g_heap_words -> 4096 longs, g_heap_words[i] = i * 3
 *   thread-local t_value = 5678 (initialised to 1234, set in main)
 *   stack       in blocked_here(): local_int = 31337, local_str = "on the stack",
 *               local_double = 6.25; in middle(): middle_local = 2 * x
 *   blocked in  pause() called from blocked_here() <- middle() <- main()
 *
 * Prints "ready <pid>" once all of it is in place.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct record {
  int id;
  double weight;
  char tag[16];
};

long g_answer = 42;
char g_message[] = "stasis single target";
static int s_static = 99;
struct record *g_record;
long *g_heap_words;
__thread int t_value = 1234;

__attribute__((noinline)) void blocked_here(int depth) {
  int local_int = 31337;
  char local_str[] = "on the stack";
  double local_double = 6.25;
  printf("ready %d depth=%d static=%d\n", (int)getpid(), depth, s_static);
  fflush(stdout);
  for (;;)
    pause(); /* BLOCKED */
  (void)local_int; (void)local_str; (void)local_double;
}

__attribute__((noinline)) void middle(int x) {
  long middle_local = 2L * x;
  blocked_here(x + 1);
  (void)middle_local;
}

int main(void) {
  g_record = malloc(sizeof *g_record);
  g_record->id = 7;
  g_record->weight = 2.5;
  strcpy(g_record->tag, "heap-record");
  g_heap_words = malloc(4096 * sizeof(long));
  for (long i = 0; i < 4096; i++) g_heap_words[i] = i * 3;
  t_value = 5678;
  middle(20);
  return 0;
}
