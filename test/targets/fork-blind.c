/*
 * fork-blind: memory a fork does not copy as it is, changing all the time. A thread counts
 * in lockstep into three pages: an ordinary private one, a MADV_WIPEONFORK one (zero in a
 * fork child) and a MADV_DONTFORK one (absent from a fork child). A core taken at one
 * instant holds the same count in all three, give or take the one store in flight.
 *
 * Prints "ready PID PLAIN WIPED UNFORKED" (the three addresses, hex), then counts forever.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int main(void) {
  volatile uint64_t *plain = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  volatile uint64_t *wiped = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  volatile uint64_t *unforked = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (madvise((void *)wiped, 4096, MADV_WIPEONFORK) != 0 || madvise((void *)unforked, 4096, MADV_DONTFORK) != 0) {
    perror("madvise");
    return 2;
  }
  *plain = *wiped = *unforked = 1;
  printf("ready %d %lx %lx %lx\n", getpid(), (unsigned long)plain, (unsigned long)wiped, (unsigned long)unforked);
  fflush(stdout);
  for (uint64_t i = 2;; i++) {
    *plain = i;
    *wiped = i;
    *unforked = i;
  }
}
