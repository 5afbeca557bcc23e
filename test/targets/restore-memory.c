/*
 * restore-memory: an address space with one of each kind of mapping, checked by the
 * program itself after a restore.
 *
 * usage: restore-memory TRIGGER DATAFILE
 *   DATAFILE: at least 3 pages; page i holds the byte 'A' + i (the test writes it).
 *
 * Setup, then "ready PID", then a sleep loop until TRIGGER exists (the test creates it
 * once the process has been dumped and killed, so everything after runs only in the
 * restored process). Then one verdict line per check, "OK name" or "FAIL name: why",
 * "done", and exit 0 only if every check passed:
 *
 *   maps        /proc/self/maps is the same text as before the dump (every mapping at
 *               the same address with the same permissions, offset, device, inode, path)
 *   auxv        /proc/self/auxv is the same bytes
 *   guard       a PROT_NONE page between two rw pages: ---p in maps, contents around it
 *   readonly    an anonymous r--p area keeps its contents
 *   growsdown   a MAP_GROWSDOWN area used as the stack of a ucontext suspended in the
 *               middle of a function: "gd" in smaps, the coroutine resumes with its
 *               locals, and recursing deeper grows the mapping down
 *   shared      a MAP_SHARED|MAP_ANONYMOUS area: rw-s, contents, and still shared with a
 *               child forked after the restore
 *   filepriv    a private rw mapping of DATAFILE with page 1 written: page 1 holds what
 *               was written, pages 0 and 2 the file's bytes, the file itself unchanged
 *   sparse      1 GiB of anonymous memory (MADV_NOHUGEPAGE) with 4 pages touched: their
 *               contents, zeros elsewhere, and Rss still only about 4 pages
 *   dontfork    MADV_DONTFORK area: "dc" in smaps, contents, absent in a forked child
 *   wipeonfork  MADV_WIPEONFORK area: "wf" in smaps, contents, zeros in a forked child
 *   dontdump    MADV_DONTDUMP area: "dd" in smaps, contents (a checkpoint keeps it all)
 *   nohuge      the sparse area's "nh" flag
 *   mlock       an mlock()ed area: "lo" in smaps, contents
 *   onfault     a 4-page area locked with mlock2(MLOCK_ONFAULT), 1 page touched: "lo" and
 *               "lf" in smaps, contents, and still only that page resident
 *   readahead   MADV_RANDOM and MADV_SEQUENTIAL areas: "rr" and "sr" in smaps
 *   stack       a local array of main keeps its contents
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "restore-common.h"

#define PAGE 4096UL

/* The VmFlags line of the smaps entry starting at `start`, into out (empty if none). */
static void vmflags_of(void *start, char *out, size_t size) {
  static char smaps[1 << 20];
  char head[32];
  out[0] = 0;
  smaps[0] = '\n'; /* so that the first entry is found like the others */
  read_file("/proc/self/smaps", smaps + 1, sizeof smaps - 1);
  snprintf(head, sizeof head, "\n%lx-", (unsigned long)start);
  char *p = strstr(smaps, head);
  if (!p) return;
  char *vf = strstr(p, "\nVmFlags:");
  if (!vf) return;
  vf += 9;
  char *end = strchr(vf, '\n');
  size_t len = end ? (size_t)(end - vf) : strlen(vf);
  if (len >= size) len = size - 1;
  memcpy(out, vf, len);
  out[len] = 0;
}

static int has_flag(const char *flags, const char *flag) {
  char padded[256];
  snprintf(padded, sizeof padded, " %s ", flags);
  char want[8];
  snprintf(want, sizeof want, " %s ", flag);
  return strstr(padded, want) != NULL;
}

/* Rss (kB) of the smaps entry starting at `start`, -1 if not found. */
static long rss_of(void *start) {
  static char smaps[1 << 20];
  char head[32];
  smaps[0] = '\n'; /* so that the first entry is found like the others */
  read_file("/proc/self/smaps", smaps + 1, sizeof smaps - 1);
  snprintf(head, sizeof head, "\n%lx-", (unsigned long)start);
  char *p = strstr(smaps, head);
  if (!p) return -1;
  char *rss = strstr(p, "\nRss:");
  if (!rss) return -1;
  return strtol(rss + 5, NULL, 10);
}

/* The maps line for the mapping starting at `start` (copied into out). */
static void maps_line(const char *maps, void *start, char *out, size_t size) {
  char head[32];
  out[0] = 0;
  snprintf(head, sizeof head, "%lx-", (unsigned long)start);
  const char *p = maps;
  while (p && *p) {
    if (strncmp(p, head, strlen(head)) == 0) {
      const char *end = strchr(p, '\n');
      size_t len = end ? (size_t)(end - p) : strlen(p);
      if (len >= size) len = size - 1;
      memcpy(out, p, len);
      out[len] = 0;
      return;
    }
    p = strchr(p, '\n');
    if (p) p++;
  }
}

/*
 * maps text with the inode of shared anonymous mappings ("/dev/zero (deleted)") zeroed:
 * each MAP_SHARED|MAP_ANONYMOUS mapping is a shmem object of its own, and a restored one
 * is necessarily a new object. Everything else must be exactly the same.
 */
static void normalize_maps(const char *in, char *out, size_t size) {
  size_t n = 0;
  while (*in && n + 1 < size) {
    const char *end = strchr(in, '\n');
    size_t len = end ? (size_t)(end - in) : strlen(in);
    char line[512];
    if (len >= sizeof line) len = sizeof line - 1;
    memcpy(line, in, len);
    line[len] = 0;
    if (strstr(line, "/dev/zero (deleted)")) {
      unsigned long a, b, off, ino;
      char perms[8], dev[16];
      if (sscanf(line, "%lx-%lx %7s %lx %15s %lu", &a, &b, perms, &off, dev, &ino) == 6)
        snprintf(line, sizeof line, "%lx-%lx %s %08lx %s SHMEM /dev/zero (deleted)", a, b, perms, off, dev);
    }
    n += (size_t)snprintf(out + n, size - n, "%s\n", line);
    if (!end) break;
    in = end + 1;
  }
  out[n < size ? n : size - 1] = 0;
}

static int filled(const unsigned char *p, size_t n, unsigned char v) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != v) return 0;
  return 1;
}

/* --- the coroutine on a MAP_GROWSDOWN stack ------------------------------------------ */

static ucontext_t g_main_ctx, g_co_ctx;
static unsigned char *g_gd;         /* the growsdown mapping as created */
static size_t g_gd_size = 16 * PAGE;
static volatile int g_co_ok = -1;    /* locals intact after resume */
static volatile int g_co_grown = -1; /* deep recursion succeeded */
static volatile uintptr_t g_co_lowest;
static sigjmp_buf g_segv_jmp;
static volatile int g_in_recursion;

static void segv_handler(int sig, siginfo_t *si, void *uc) {
  (void)sig; (void)uc;
  if (g_in_recursion) {
    g_co_lowest = (uintptr_t)si->si_addr;
    siglongjmp(g_segv_jmp, 1);
  }
  static const char msg[] = "FAIL segv: unexpected SIGSEGV\n";
  (void)!write(1, msg, sizeof msg - 1);
  _exit(3);
}

static __attribute__((noinline)) unsigned long recurse(int depth) {
  volatile unsigned char frame[1024];
  for (size_t i = 0; i < sizeof frame; i++) frame[i] = (unsigned char)(depth + i);
  g_co_lowest = (uintptr_t)frame;
  unsigned long sum = depth > 0 ? recurse(depth - 1) : 0;
  for (size_t i = 0; i < sizeof frame; i += 97) sum += frame[i];
  return sum;
}

static void coroutine(void) {
  volatile unsigned int locals[512];
  for (unsigned i = 0; i < 512; i++) locals[i] = 0xC0DE0000u + i;
  volatile unsigned long depth_marker = 0x5757575757575757UL;
  swapcontext(&g_co_ctx, &g_main_ctx); /* suspended here across the dump */
  int ok = depth_marker == 0x5757575757575757UL;
  for (unsigned i = 0; i < 512; i++)
    if (locals[i] != 0xC0DE0000u + i) ok = 0;
  g_co_ok = ok;
  /* 200 frames of >1 KiB: about 250 KiB, far below the 64 KiB mapped at first */
  g_in_recursion = 1;
  if (sigsetjmp(g_segv_jmp, 1) == 0) {
    volatile unsigned long s = recurse(200);
    (void)s;
    g_co_grown = 1;
  } else {
    g_co_grown = 0;
  }
  g_in_recursion = 0;
  swapcontext(&g_co_ctx, &g_main_ctx);
}

/* ------------------------------------------------------------------------------------ */

static char g_maps_raw[1 << 16], g_maps_before[1 << 16], g_maps_after[1 << 16];
static char g_auxv_before[4096], g_auxv_after[4096];
static size_t g_auxv_len_before;
static unsigned char g_altstack[1 << 16];

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s TRIGGER DATAFILE\n", argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("starting %d\n", getpid()); /* stdio's buffer exists before the maps are saved */

  stack_t ss = {.ss_sp = g_altstack, .ss_size = sizeof g_altstack, .ss_flags = 0};
  sigaltstack(&ss, NULL);
  struct sigaction sa = {0};
  sa.sa_sigaction = segv_handler;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  sigaction(SIGSEGV, &sa, NULL);

  /* guard: rw | --- | rw */
  unsigned char *guard = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  memset(guard, 0x11, PAGE);
  memset(guard + 2 * PAGE, 0x33, PAGE);
  mprotect(guard + PAGE, PAGE, PROT_NONE);

  /* read-only anonymous with contents */
  unsigned char *ro = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  for (size_t i = 0; i < 2 * PAGE; i++) ro[i] = (unsigned char)(i * 7);
  mprotect(ro, 2 * PAGE, PROT_READ);

  /* growsdown: far from everything else (the kernel will not grow it within 1 MiB of
     another mapping, and top-down allocation never comes down to this address) */
  g_gd = mmap((void *)(0x200000000000UL - g_gd_size), g_gd_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_FIXED_NOREPLACE, -1, 0);
  if (g_gd == MAP_FAILED) {
    perror("mmap MAP_GROWSDOWN");
    return 2;
  }
  getcontext(&g_co_ctx);
  g_co_ctx.uc_stack.ss_sp = g_gd;
  g_co_ctx.uc_stack.ss_size = g_gd_size;
  g_co_ctx.uc_link = &g_main_ctx;
  makecontext(&g_co_ctx, coroutine, 0);
  swapcontext(&g_main_ctx, &g_co_ctx); /* runs until its first swapcontext */

  /* shared anonymous */
  unsigned char *shared = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  for (size_t i = 0; i < 4 * PAGE; i++) shared[i] = (unsigned char)(i % 251);

  /* private file mapping with one dirty page */
  int dfd = open(argv[2], O_RDONLY);
  if (dfd < 0) {
    perror(argv[2]);
    return 2;
  }
  unsigned char *filepriv = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, dfd, 0);
  close(dfd);
  if (filepriv == MAP_FAILED) {
    perror("mmap DATAFILE");
    return 2;
  }
  memset(filepriv + PAGE, 'x', PAGE);
  volatile unsigned char touch = filepriv[0] + filepriv[2 * PAGE]; /* clean pages, read */
  (void)touch;

  /* sparse: 1 GiB, 4 pages touched */
  size_t sparse_size = 1UL << 30;
  unsigned char *sparse = mmap(NULL, sparse_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  madvise(sparse, sparse_size, MADV_NOHUGEPAGE);
  size_t sparse_at[4] = {0, 123 * (1UL << 20) + 5 * PAGE, 700 * (1UL << 20), sparse_size - PAGE};
  for (int i = 0; i < 4; i++) memset(sparse + sparse_at[i], 0xA0 + i, PAGE);

  /* madvise flags */
  unsigned char *dontfork = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  memset(dontfork, 0xDF, 2 * PAGE);
  madvise(dontfork, 2 * PAGE, MADV_DONTFORK);
  unsigned char *wipe = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  memset(wipe, 0x3F, 2 * PAGE);
  madvise(wipe, 2 * PAGE, MADV_WIPEONFORK);
  unsigned char *dontdump = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  memset(dontdump, 0xDD, 2 * PAGE);
  madvise(dontdump, 2 * PAGE, MADV_DONTDUMP);

  /* memory locks and readahead advice */
  unsigned char *locked = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  memset(locked, 0x10, 2 * PAGE);
  if (mlock(locked, 2 * PAGE) != 0) perror("mlock");
  unsigned char *onfault = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mlock2(onfault, 4 * PAGE, MLOCK_ONFAULT) != 0) perror("mlock2");
  memset(onfault + PAGE, 0x0F, PAGE);
  unsigned char *random = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  madvise(random, 2 * PAGE, MADV_RANDOM);
  unsigned char *sequential = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  madvise(sequential, 2 * PAGE, MADV_SEQUENTIAL);

  /* main's stack */
  volatile unsigned char local[8192];
  for (size_t i = 0; i < sizeof local; i++) local[i] = (unsigned char)(i ^ 0x5A);

  long sparse_rss_before = rss_of(sparse);
  g_auxv_len_before = read_file("/proc/self/auxv", g_auxv_before, sizeof g_auxv_before);
  printf("ready %d shared=%p sparse=%p gd=%p\n", getpid(), (void *)shared, (void *)sparse, (void *)g_gd);
  read_file("/proc/self/maps", g_maps_raw, sizeof g_maps_raw);
  normalize_maps(g_maps_raw, g_maps_before, sizeof g_maps_before);

  wait_for_trigger(argv[1]);
  print_smaps_vmflags();

  /* --- checks, in the restored process --- */
  read_file("/proc/self/maps", g_maps_raw, sizeof g_maps_raw);
  normalize_maps(g_maps_raw, g_maps_after, sizeof g_maps_after);
  if (strcmp(g_maps_before, g_maps_after) == 0) {
    verdict(1, "maps", NULL);
  } else {
    /* the first line that differs, each way */
    char *a = g_maps_before, *b = g_maps_after;
    while (*a && *b) {
      char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
      if (!ea || !eb) break;
      if (ea - a != eb - b || strncmp(a, b, (size_t)(ea - a)) != 0) break;
      a = ea + 1;
      b = eb + 1;
    }
    char la[160] = "", lb[160] = "";
    snprintf(la, sizeof la, "%.*s", (int)(strchr(a, '\n') ? strchr(a, '\n') - a : (long)strlen(a)), a);
    snprintf(lb, sizeof lb, "%.*s", (int)(strchr(b, '\n') ? strchr(b, '\n') - b : (long)strlen(b)), b);
    verdict(0, "maps", "before [%s] after [%s]", la, lb);
  }
  size_t auxv_len = read_file("/proc/self/auxv", g_auxv_after, sizeof g_auxv_after);
  verdict(auxv_len == g_auxv_len_before && memcmp(g_auxv_before, g_auxv_after, auxv_len) == 0, "auxv", "%zu bytes before, %zu after, or different contents", g_auxv_len_before, auxv_len);

  char line[256];
  maps_line(g_maps_after, guard + PAGE, line, sizeof line);
  int guard_ok = strstr(line, " ---p ") != NULL && filled(guard, PAGE, 0x11) && filled(guard + 2 * PAGE, PAGE, 0x33);
  verdict(guard_ok, "guard", "maps line [%s], pages around it %s", line, filled(guard, PAGE, 0x11) && filled(guard + 2 * PAGE, PAGE, 0x33) ? "intact" : "changed");

  maps_line(g_maps_after, ro, line, sizeof line);
  int ro_ok = strstr(line, " r--p ") != NULL;
  for (size_t i = 0; i < 2 * PAGE; i++)
    if (ro[i] != (unsigned char)(i * 7)) ro_ok = 0;
  verdict(ro_ok, "readonly", "maps line [%s] or contents differ", line);

  char flags[256];
  vmflags_of(g_gd, flags, sizeof flags);
  int gd_flag = has_flag(flags, "gd");
  swapcontext(&g_main_ctx, &g_co_ctx); /* resume the coroutine */
  read_file("/proc/self/maps", g_maps_after, sizeof g_maps_after);
  verdict(gd_flag && g_co_ok == 1 && g_co_grown == 1, "growsdown", "VmFlags [%s] (gd expected), locals %s, deep recursion %s (lowest address touched %#lx, mapping was %p-%p)", flags,
          g_co_ok == 1 ? "intact" : "CHANGED", g_co_grown == 1 ? "ok" : g_co_grown == 0 ? "SIGSEGV" : "did not run", (unsigned long)g_co_lowest, (void *)g_gd, (void *)(g_gd + g_gd_size));

  maps_line(g_maps_after, shared, line, sizeof line);
  int sh_ok = strstr(line, " rw-s ") != NULL;
  for (size_t i = 0; i < 4 * PAGE; i++)
    if (shared[i] != (unsigned char)(i % 251)) sh_ok = 0;
  int sh_contents = sh_ok;
  pid_t child = fork();
  if (child == 0) {
    shared[100] = 0xEE;
    /* wipeonfork: zeros in a child; dontfork: not mapped in a child */
    int wiped = filled(wipe, 2 * PAGE, 0);
    char cmaps[1 << 16];
    read_file("/proc/self/maps", cmaps, sizeof cmaps);
    char head[32];
    snprintf(head, sizeof head, "%lx-", (unsigned long)dontfork);
    int absent = strstr(cmaps, head) == NULL;
    _exit((wiped ? 1 : 0) | (absent ? 2 : 0));
  }
  int status = 0;
  waitpid(child, &status, 0);
  int child_bits = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
  sh_ok = sh_ok && shared[100] == 0xEE;
  verdict(sh_ok, "shared", "maps line [%s], contents %s, a child's write %s", line, sh_contents ? "intact" : "CHANGED", shared[100] == 0xEE ? "seen" : "NOT seen (not shared any more)");

  maps_line(g_maps_after, filepriv, line, sizeof line);
  unsigned char fbuf[3 * PAGE];
  int fd = open(argv[2], O_RDONLY);
  ssize_t fgot = pread(fd, fbuf, sizeof fbuf, 0);
  close(fd);
  int file_same = fgot == (ssize_t)sizeof fbuf && filled(fbuf, PAGE, 'A') && filled(fbuf + PAGE, PAGE, 'B') && filled(fbuf + 2 * PAGE, PAGE, 'C');
  int fp_ok = filled(filepriv, PAGE, 'A') && filled(filepriv + PAGE, PAGE, 'x') && filled(filepriv + 2 * PAGE, PAGE, 'C') && file_same && strstr(line, argv[2]) && strstr(line, " rw-p ");
  verdict(fp_ok, "filepriv", "maps line [%s]; page0 %s, page1 (dirty) %s, page2 %s, file %s", line, filled(filepriv, PAGE, 'A') ? "ok" : "WRONG",
          filled(filepriv + PAGE, PAGE, 'x') ? "ok" : "WRONG", filled(filepriv + 2 * PAGE, PAGE, 'C') ? "ok" : "WRONG", file_same ? "unchanged" : "CHANGED");

  long sparse_rss_after = rss_of(sparse);
  int sp_ok = 1;
  for (int i = 0; i < 4; i++)
    if (!filled(sparse + sparse_at[i], PAGE, 0xA0 + i)) sp_ok = 0;
  int zeros_ok = filled(sparse + PAGE, PAGE, 0) && filled(sparse + (512UL << 20), PAGE, 0) && filled(sparse + sparse_size - 2 * PAGE, PAGE, 0);
  /* reading the zero pages above maps the shared zero page: Rss counts it or not, a few pages either way */
  verdict(sp_ok && zeros_ok && sparse_rss_after >= 0 && sparse_rss_after <= sparse_rss_before + 64, "sparse", "touched pages %s, untouched %s, Rss %ld kB before the dump, %ld kB after", sp_ok ? "ok" : "WRONG",
          zeros_ok ? "zero" : "NOT ZERO", sparse_rss_before, sparse_rss_after);

  vmflags_of(sparse, flags, sizeof flags);
  verdict(has_flag(flags, "nh"), "nohuge", "VmFlags [%s] (nh expected)", flags);

  vmflags_of(dontfork, flags, sizeof flags);
  verdict(has_flag(flags, "dc") && filled(dontfork, 2 * PAGE, 0xDF) && (child_bits & 2), "dontfork", "VmFlags [%s] (dc expected), contents %s, in a child %s", flags,
          filled(dontfork, 2 * PAGE, 0xDF) ? "ok" : "WRONG", (child_bits & 2) ? "absent" : "PRESENT");
  vmflags_of(wipe, flags, sizeof flags);
  verdict(has_flag(flags, "wf") && filled(wipe, 2 * PAGE, 0x3F) && (child_bits & 1), "wipeonfork", "VmFlags [%s] (wf expected), contents %s, in a child %s", flags,
          filled(wipe, 2 * PAGE, 0x3F) ? "ok" : "WRONG", (child_bits & 1) ? "zero" : "NOT WIPED");
  vmflags_of(dontdump, flags, sizeof flags);
  verdict(has_flag(flags, "dd") && filled(dontdump, 2 * PAGE, 0xDD), "dontdump", "VmFlags [%s] (dd expected), contents %s", flags, filled(dontdump, 2 * PAGE, 0xDD) ? "ok" : "WRONG");

  vmflags_of(locked, flags, sizeof flags);
  verdict(has_flag(flags, "lo") && filled(locked, 2 * PAGE, 0x10), "mlock", "VmFlags [%s] (lo expected), contents %s", flags, filled(locked, 2 * PAGE, 0x10) ? "ok" : "WRONG");
  vmflags_of(onfault, flags, sizeof flags);
  long onfault_rss = rss_of(onfault);
  int onfault_ok = filled(onfault + PAGE, PAGE, 0x0F) && filled(onfault, PAGE, 0) && filled(onfault + 2 * PAGE, 2 * PAGE, 0);
  verdict(has_flag(flags, "lo") && has_flag(flags, "lf") && onfault_ok && onfault_rss == 4, "onfault", "VmFlags [%s] (lo lf expected), contents %s, Rss %ld kB (4 expected)", flags, onfault_ok ? "ok" : "WRONG", onfault_rss);
  char flags2[256];
  vmflags_of(random, flags, sizeof flags);
  vmflags_of(sequential, flags2, sizeof flags2);
  verdict(has_flag(flags, "rr") && has_flag(flags2, "sr"), "readahead", "VmFlags of the MADV_RANDOM area [%s] (rr expected), of the MADV_SEQUENTIAL one [%s] (sr expected)", flags, flags2);

  int stack_ok = 1;
  for (size_t i = 0; i < sizeof local; i++)
    if (local[i] != (unsigned char)(i ^ 0x5A)) stack_ok = 0;
  verdict(stack_ok, "stack", "a local array of main changed");

  return verdicts_done();
}
