/*
 * avx: known AVX values in ymm registers, in a spinning thread and in a blocked one.
 * Build with -mavx2.
 *
 *   avx_worker (thread 2) loads SPIN_YMM0 into ymm0 and SPIN_YMM15 into ymm15, sets
 *   g_loaded and spins forever in `1: jmp 1b`, so its registers never change.
 *   main loads MAIN_YMM0 into ymm0 and sits in a raw pause() syscall loop (no libc
 *   call after the load, so nothing clobbers it).
 *
 *   SPIN_YMM0  bytes 0x00, 0x01, ..., 0x1f
 *              v4_int64 = {0x0706050403020100, 0x0f0e0d0c0b0a0908,
 *                          0x1716151413121110, 0x1f1e1d1c1b1a1918}
 *   SPIN_YMM15 bytes 0x80, 0x81, ..., 0x9f
 *   MAIN_YMM0  v4_int64 = {0x1122334455667788, 0x99aabbccddeeff00,
 *                          0x0123456789abcdef, 0xfedcba9876543210}
 *
 * Prints "ready <pid>" when the worker has loaded its registers, just before main
 * loads its own and blocks.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

static const uint8_t spin_ymm0[32] __attribute__((aligned(32))) = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f};
static const uint8_t spin_ymm15[32] __attribute__((aligned(32))) = {
    0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f,
    0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f};
static const uint64_t main_ymm0[4] __attribute__((aligned(32))) = {
    0x1122334455667788ULL, 0x99aabbccddeeff00ULL, 0x0123456789abcdefULL, 0xfedcba9876543210ULL};

volatile int g_loaded;

__attribute__((noinline)) void *avx_worker(void *arg) {
  __asm__ volatile(
      "vmovdqa %1, %%ymm0\n\t"
      "vmovdqa %2, %%ymm15\n\t"
      "movl $1, %0\n\t"
      "1: jmp 1b\n\t"
      : "=m"(g_loaded)
      : "m"(spin_ymm0), "m"(spin_ymm15)
      : "xmm0", "xmm15", "memory");
  (void)arg;
  return NULL;
}

__attribute__((noinline)) void main_blocked(void) {
  __asm__ volatile(
      "vmovdqa %0, %%ymm0\n\t"
      "1: movl $34, %%eax\n\t" /* SYS_pause */
      "syscall\n\t"
      "jmp 1b\n\t"
      :
      : "m"(main_ymm0)
      : "rax", "rcx", "r11", "xmm0", "memory");
}

int main(void) {
  pthread_t th;
  pthread_create(&th, NULL, avx_worker, NULL);
  while (!g_loaded) usleep(1000);
  printf("ready %d\n", (int)getpid());
  fflush(stdout);
  main_blocked();
  return 0;
}
