/*
 * restore-payload: a little memory with known contents, for restores that must fail
 * (damaged images, PIDs in use, changed executables) and the one that then succeeds.
 *
 * usage: restore-payload TRIGGER
 *
 * A 1 MiB anonymous area, page i filled with the byte (i * 7 + 3), and an initialized
 * global array in the executable's data segment, rewritten at startup (so its pages are
 * private copies stored in the image). Prints "ready PID area=ADDR data=ADDR", then
 * "tick N" every 50 ms until TRIGGER exists; then checks both and prints "OK payload"
 * (exit 0) or "FAIL payload: why" (exit 1).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define AREA (1UL << 20)
#define PAGE 4096UL

unsigned char g_data[4 * PAGE] = {1, 2, 3};

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s TRIGGER\n", argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  unsigned char *area = mmap(NULL, AREA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  for (size_t i = 0; i < AREA; i++) area[i] = (unsigned char)((i / PAGE) * 7 + 3);
  for (size_t i = 0; i < sizeof g_data; i++) g_data[i] = (unsigned char)(i % 253);
  printf("ready %d area=%p data=%p\n", getpid(), (void *)area, (void *)g_data);
  struct timespec ts = {0, 50 * 1000 * 1000};
  for (unsigned long n = 0; access(argv[1], F_OK) != 0; n++) {
    nanosleep(&ts, NULL);
    printf("tick %lu\n", n);
  }
  for (size_t i = 0; i < AREA; i++)
    if (area[i] != (unsigned char)((i / PAGE) * 7 + 3)) {
      printf("FAIL payload: area byte %zu is %u\n", i, area[i]);
      return 1;
    }
  for (size_t i = 0; i < sizeof g_data; i++)
    if (g_data[i] != (unsigned char)(i % 253)) {
      printf("FAIL payload: g_data[%zu] is %u\n", i, g_data[i]);
      return 1;
    }
  printf("OK payload\n");
  return 0;
}
