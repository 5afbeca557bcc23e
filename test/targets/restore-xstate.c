/*
 * restore-xstate: vector and floating-point register state that only lives in a thread's
 * registers, checked by the thread itself after a restore.
 *
 * usage: restore-xstate TRIGGER [--no-avx512] [--amx]
 *
 * The "t-vector" thread loads known patterns into ymm0-15 (and, on a CPU with AVX-512
 * unless --no-avx512, into all of zmm0-31 and the opmasks k1-7), sets MXCSR to
 * round-toward-zero and the x87 control word to single precision, then spins in assembly
 * on a flag in memory: nothing else runs in it that could touch those registers. main
 * waits for TRIGGER, raises the flag, and the thread stores its registers for main to
 * compare. With --amx (on a CPU with AMX) the process asks for AMX (ARCH_REQ_XCOMP_PERM)
 * and the thread first loads a pattern into tile tmm0, which it stores after the spin.
 * Verdicts:
 *   ymm    ymm0-15 hold their 256-bit patterns
 *   zmm    (AVX-512 only) zmm0-31 hold their 512-bit patterns and k1-7 their masks
 *   mxcsr  MXCSR is still 0x7f80
 *   x87    the x87 control word is still 0x003f (bit 6 aside)
 *   amx    (--amx only) tmm0 holds its pattern, and the process may still use AMX
 * "INFO avx512 used|not used" tells which; then "done N".
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <immintrin.h>

#include "restore-common.h"

#define MXCSR_TOWARD_ZERO 0x7f80u
#define X87_SINGLE_PRECISION 0x003fu

static uint8_t g_ymm_in[16][32] __attribute__((aligned(64)));
static uint8_t g_ymm_out[16][32] __attribute__((aligned(64)));
static uint8_t g_zmm_in[32][64] __attribute__((aligned(64)));
static uint8_t g_zmm_out[32][64] __attribute__((aligned(64)));
static uint16_t g_k_in[8];
static uint16_t g_k_out[8];
static uint32_t g_mxcsr_in = MXCSR_TOWARD_ZERO, g_mxcsr_out;
static uint16_t g_cw_in = X87_SINGLE_PRECISION, g_cw_out;
static volatile int g_loaded, g_go;
static int g_use_avx512, g_use_amx;

#define ARCH_GET_XCOMP_PERM 0x1022
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18
struct tile_config {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};
static uint8_t g_tile_in[16 * 64], g_tile_out[16 * 64];

/* tmm0: 16 rows of 64 bytes. No other code here touches tiles, so they keep it. */
__attribute__((target("amx-tile"))) static void load_tile(void) {
  struct tile_config config = {.palette = 1};
  config.colsb[0] = 64;
  config.rows[0] = 16;
  _tile_loadconfig(&config);
  _tile_loadd(0, g_tile_in, 64);
}

__attribute__((target("amx-tile"))) static void store_tile(void) {
  _tile_stored(0, g_tile_out, 64);
}

static unsigned long xcomp_permission(void) {
  unsigned long perm = 0;
  syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &perm);
  return perm;
}

#define YLOAD(n) "vmovdqu " #n "*32(%[in]), %%ymm" #n "\n\t"
#define YSTORE(n) "vmovdqu %%ymm" #n ", " #n "*32(%[out])\n\t"
#define Y16(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15)
#define SPIN "movl $1, %[loaded]\n\t1: pause\n\tcmpl $0, %[go]\n\tje 1b\n\t"

static void hold_ymm(void) {
  __asm__ volatile(
      Y16(YLOAD) "ldmxcsr %[mx_in]\n\tfldcw %[cw_in]\n\t" SPIN Y16(YSTORE) "stmxcsr %[mx_out]\n\tfnstcw %[cw_out]\n\t"
      : [loaded] "=m"(g_loaded), [mx_out] "=m"(g_mxcsr_out), [cw_out] "=m"(g_cw_out)
      : [in] "r"(g_ymm_in), [out] "r"(g_ymm_out), [mx_in] "m"(g_mxcsr_in), [cw_in] "m"(g_cw_in), [go] "m"(g_go)
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14",
        "xmm15", "memory");
}

#define ZLOAD(n) "vmovdqu64 " #n "*64(%[in]), %%zmm" #n "\n\t"
#define ZSTORE(n) "vmovdqu64 %%zmm" #n ", " #n "*64(%[out])\n\t"
#define KLOAD(n) "kmovw " #n "*2(%[kin]), %%k" #n "\n\t"
#define KSTORE(n) "kmovw %%k" #n ", " #n "*2(%[kout])\n\t"
#define Z32(M) Y16(M) M(16) M(17) M(18) M(19) M(20) M(21) M(22) M(23) M(24) M(25) M(26) M(27) M(28) M(29) M(30) M(31)
#define K7(M) M(1) M(2) M(3) M(4) M(5) M(6) M(7)

__attribute__((target("avx512f"))) static void hold_zmm(void) {
  __asm__ volatile(
      Z32(ZLOAD) K7(KLOAD) "ldmxcsr %[mx_in]\n\tfldcw %[cw_in]\n\t" SPIN Z32(ZSTORE) K7(KSTORE) "stmxcsr %[mx_out]\n\tfnstcw %[cw_out]\n\t"
      : [loaded] "=m"(g_loaded), [mx_out] "=m"(g_mxcsr_out), [cw_out] "=m"(g_cw_out)
      : [in] "r"(g_zmm_in), [out] "r"(g_zmm_out), [kin] "r"(g_k_in), [kout] "r"(g_k_out), [mx_in] "m"(g_mxcsr_in), [cw_in] "m"(g_cw_in), [go] "m"(g_go)
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14",
        "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28",
        "xmm29", "xmm30", "xmm31", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "memory");
}

static void *vector_thread(void *arg) {
  (void)arg;
  pthread_setname_np(pthread_self(), "t-vector");
  if (g_use_amx) load_tile();
  if (g_use_avx512) hold_zmm();
  else hold_ymm();
  if (g_use_amx) store_tile();
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s TRIGGER [--no-avx512]\n", argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  g_use_avx512 = __builtin_cpu_supports("avx512f");
  for (int i = 2; i < argc; i++)
    if (strcmp(argv[i], "--no-avx512") == 0) g_use_avx512 = 0;
  for (int r = 0; r < 16; r++)
    for (int b = 0; b < 32; b++) g_ymm_in[r][b] = (uint8_t)(r * 32 + b + 1);
  for (int r = 0; r < 32; r++)
    for (int b = 0; b < 64; b++) g_zmm_in[r][b] = (uint8_t)(r * 7 + b * 3 + 0x40);
  for (int k = 1; k < 8; k++) g_k_in[k] = (uint16_t)(0x1111 * k + 0x0f0f);
  for (int i = 0; i < (int)sizeof g_tile_in; i++) g_tile_in[i] = (uint8_t)(i * 13 + 5);
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--amx") == 0) {
      if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) {
        perror("arch_prctl(ARCH_REQ_XCOMP_PERM)");
        return 2;
      }
      g_use_amx = 1;
    }
  }

  pthread_t thread;
  if (pthread_create(&thread, NULL, vector_thread, NULL) != 0) return 3;
  struct timespec ms = {0, 1000 * 1000};
  while (!g_loaded) nanosleep(&ms, NULL);
  printf("ready %d\n", getpid());
  printf("INFO avx512 %s, amx %s\n", g_use_avx512 ? "used" : "not used", g_use_amx ? "used" : "not used");

  wait_for_trigger(argv[1]);
  g_go = 1;
  pthread_join(thread, NULL);

  if (g_use_avx512) {
    int reg = -1;
    for (int r = 0; r < 32 && reg < 0; r++)
      if (memcmp(g_zmm_in[r], g_zmm_out[r], 64) != 0) reg = r;
    int mask = -1;
    for (int k = 1; k < 8 && mask < 0; k++)
      if (g_k_in[k] != g_k_out[k]) mask = k;
    verdict(reg < 0 && mask < 0, "zmm", "zmm%d differs (first bytes %02x %02x, expected %02x %02x); k%d is 0x%04x, expected 0x%04x", reg, reg < 0 ? 0 : g_zmm_out[reg][0],
            reg < 0 ? 0 : g_zmm_out[reg][1], reg < 0 ? 0 : g_zmm_in[reg][0], reg < 0 ? 0 : g_zmm_in[reg][1], mask, mask < 0 ? 0 : g_k_out[mask], mask < 0 ? 0 : g_k_in[mask]);
    for (int r = 0; r < 16; r++) memcpy(g_ymm_in[r], g_zmm_in[r], 32), memcpy(g_ymm_out[r], g_zmm_out[r], 32);
  }
  int reg = -1;
  for (int r = 0; r < 16 && reg < 0; r++)
    if (memcmp(g_ymm_in[r], g_ymm_out[r], 32) != 0) reg = r;
  verdict(reg < 0, "ymm", "ymm%d differs: bytes 16-17 are %02x %02x, expected %02x %02x (the upper half is the AVX component)", reg, reg < 0 ? 0 : g_ymm_out[reg][16],
          reg < 0 ? 0 : g_ymm_out[reg][17], reg < 0 ? 0 : g_ymm_in[reg][16], reg < 0 ? 0 : g_ymm_in[reg][17]);
  verdict(g_mxcsr_out == MXCSR_TOWARD_ZERO, "mxcsr", "MXCSR is 0x%x, expected 0x%x", g_mxcsr_out, MXCSR_TOWARD_ZERO);
  verdict((g_cw_out & 0x0f3f) == X87_SINGLE_PRECISION, "x87", "x87 control word is 0x%04x, expected 0x%04x", g_cw_out, X87_SINGLE_PRECISION);
  if (g_use_amx) {
    unsigned long perm = xcomp_permission();
    verdict(memcmp(g_tile_in, g_tile_out, sizeof g_tile_in) == 0 && (perm & (1UL << XFEATURE_XTILEDATA)), "amx", "tmm0 %s; AMX permission %#lx (bit 18 expected)",
            memcmp(g_tile_in, g_tile_out, sizeof g_tile_in) == 0 ? "intact" : "CHANGED", perm);
  }
  return verdicts_done();
}
