/*
 * reserve: memory reserved but hardly used, the way V8 reserves its heap: 1 GiB
 * PROT_NONE marked MADV_DONTFORK with three pages made rw and written (page 0, page 1 and
 * the page at 512 MiB), and 256 MiB of MAP_SHARED|MAP_ANONYMOUS memory with two pages
 * written (page 0 and the page at 128 MiB). Page i of what is written holds the byte
 * 'a' + (i % 26) of its own index within the area, repeated.
 *
 * Prints "ready PID RESERVE SHARED" (the two areas' addresses in hex), then sleeps until
 * killed. A dump that reads the untouched pages through /proc/PID/mem grows its VmRSS.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096UL
#define RESERVE (1UL << 30)
#define SHARED (256UL << 20)

static void fill(char *area, unsigned long index) { memset(area + index * PAGE, 'a' + (int)(index % 26), PAGE); }

int main(void) {
  char *reserve = mmap(NULL, RESERVE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  char *shared = mmap(NULL, SHARED, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (reserve == MAP_FAILED || shared == MAP_FAILED) return perror("mmap"), 1;
  if (madvise(reserve, RESERVE, MADV_DONTFORK) != 0) return perror("madvise"), 1;
  const unsigned long used[] = {0, 1, (512UL << 20) / PAGE};
  for (unsigned i = 0; i < 3; i++) {
    if (mprotect(reserve + used[i] * PAGE, PAGE, PROT_READ | PROT_WRITE) != 0) return perror("mprotect"), 1;
    fill(reserve, used[i]);
  }
  fill(shared, 0);
  fill(shared, (128UL << 20) / PAGE);
  printf("ready %d %lx %lx\n", getpid(), (unsigned long)reserve, (unsigned long)shared);
  fflush(stdout);
  for (;;) pause();
}
