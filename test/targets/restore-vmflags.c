/*
 * restore-vmflags: mappings whose properties are not in their protection or contents,
 * checked by the program itself after a restore.
 *
 * usage: restore-vmflags TRIGGER DIR   (DIR: a scratch directory for two files)
 *
 * After TRIGGER appears (only in the restored process) it first prints the VmFlags of
 * every mapping of /proc/self/smaps, one "SMAPS START-END FLAGS..." line each (the test
 * compares them with the smaps it read before the dump), then one verdict per check:
 *
 *   noreserve   MAP_NORESERVE area: 'nr' in smaps, its contents
 *   mergeable   MADV_MERGEABLE area: 'mg', its contents
 *   droppable   MAP_DROPPABLE area (6.12+): 'dp', its contents
 *   guard       a guard page (MADV_GUARD_INSTALL, 6.13+) between two rw pages: a write
 *               into it raises SIGSEGV, the pages around it keep their contents
 *   unguarded   an area whose guard page was removed again (MADV_GUARD_REMOVE): 'gu'
 *               stays (VM_MAYBE_GUARD), every page can be stored to, contents kept
 *   sealed      an mseal()ed area: 'sl', munmap of it fails with EPERM
 *   maywrite    a MAP_SHARED mapping of a file opened O_RDWR, mapped PROT_READ: mprotect
 *               makes it writable and a store through it reaches the file
 *   deleted     a MAP_SHARED mapping of a file unlinked since, whose fd is still open: a
 *               store through the mapping reaches the file (read back through the fd)
 *   readonly    a private anonymous r--p area with contents
 *   futurelock  mlockall(MCL_FUTURE | MCL_ONFAULT) (mm->def_flags): a mapping made after
 *               the restore is locked on fault ('lo' and 'lf')
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "restore-common.h"

#define PAGE 4096UL
#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08
#endif
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef MADV_GUARD_REMOVE
#define MADV_GUARD_REMOVE 103
#endif

static char g_smaps[1 << 20];

/* The VmFlags of the mapping starting at `start`, padded with spaces (" rd wr ... "). */
static void vmflags_of(void *start, char *out, size_t size) {
  char head[32];
  out[0] = 0;
  g_smaps[0] = '\n';
  read_file("/proc/self/smaps", g_smaps + 1, sizeof g_smaps - 1);
  snprintf(head, sizeof head, "\n%lx-", (unsigned long)start);
  char *p = strstr(g_smaps, head);
  char *vf = p ? strstr(p, "\nVmFlags:") : NULL;
  if (!vf) return;
  vf += 9;
  char *end = strchr(vf, '\n');
  snprintf(out, size, "%.*s ", (int)(end ? end - vf : (long)strlen(vf)), vf);
}

static int has_flag(void *start, const char *flag) {
  char flags[256], want[8];
  vmflags_of(start, flags, sizeof flags);
  snprintf(want, sizeof want, " %s ", flag);
  return strstr(flags, want) != NULL;
}

static int filled(const char *p, size_t n, char v) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != v) return 0;
  return 1;
}

static sigjmp_buf g_fault;
static void *volatile g_fault_addr;
static void on_segv(int sig, siginfo_t *si, void *uc) {
  (void)sig, (void)uc;
  g_fault_addr = si->si_addr;
  siglongjmp(g_fault, 1);
}

/* 1 if a store at p raises SIGSEGV at p. */
static int store_faults(volatile char *p) {
  struct sigaction sa = {0}, old;
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGSEGV, &sa, &old);
  g_fault_addr = NULL;
  int faulted = 0;
  if (sigsetjmp(g_fault, 1) == 0) *p = 'X';
  else faulted = g_fault_addr == (void *)p;
  sigaction(SIGSEGV, &old, NULL);
  return faulted;
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  char path_rw[4096], path_deleted[4096];
  snprintf(path_rw, sizeof path_rw, "%s/maywrite", argv[2]);
  snprintf(path_deleted, sizeof path_deleted, "%s/deleted", argv[2]);

  char *noreserve = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  char *mergeable = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  char *droppable = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_DROPPABLE | MAP_ANONYMOUS, -1, 0);
  char *guarded = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  char *unguarded = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  char *sealed = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  char *readonly = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (noreserve == MAP_FAILED || mergeable == MAP_FAILED || droppable == MAP_FAILED || guarded == MAP_FAILED || unguarded == MAP_FAILED || sealed == MAP_FAILED || readonly == MAP_FAILED)
    return perror("mmap"), 1;
  memset(noreserve, 'n', 4 * PAGE);
  memset(mergeable, 'm', 4 * PAGE);
  if (madvise(mergeable, 4 * PAGE, MADV_MERGEABLE) != 0) return perror("MADV_MERGEABLE"), 1;
  memset(droppable, 'd', 4 * PAGE);
  memset(guarded, 'g', 3 * PAGE);
  if (madvise(guarded + PAGE, PAGE, MADV_GUARD_INSTALL) != 0) return perror("MADV_GUARD_INSTALL"), 1;
  if (madvise(unguarded + PAGE, PAGE, MADV_GUARD_INSTALL) != 0 || madvise(unguarded + PAGE, PAGE, MADV_GUARD_REMOVE) != 0) return perror("MADV_GUARD_REMOVE"), 1;
  memset(unguarded, 'u', 2 * PAGE);
  memset(sealed, 's', 2 * PAGE);
  if (syscall(462 /* mseal */, sealed, 2 * PAGE, 0) != 0) return perror("mseal"), 1;
  memset(readonly, 'r', 2 * PAGE);
  mprotect(readonly, 2 * PAGE, PROT_READ);

  int rw = open(path_rw, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (rw < 0 || ftruncate(rw, 2 * PAGE) != 0) return perror("maywrite file"), 1;
  char *maywrite = mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, rw, 0);
  close(rw);
  int deleted_fd = open(path_deleted, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (deleted_fd < 0 || ftruncate(deleted_fd, 2 * PAGE) != 0) return perror("deleted file"), 1;
  char *deleted = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, deleted_fd, 0);
  if (maywrite == MAP_FAILED || deleted == MAP_FAILED) return perror("mmap of a file"), 1;
  memset(deleted, 'D', PAGE);
  unlink(path_deleted);
  if (mlockall(MCL_FUTURE | MCL_ONFAULT) != 0) return perror("mlockall"), 1;

  printf("ready %d\n", getpid());
  fflush(stdout);
  wait_for_trigger(argv[1]);
  print_smaps_vmflags();

  verdict(has_flag(noreserve, "nr") && filled(noreserve, 4 * PAGE, 'n'), "noreserve", "'nr' %d, contents %d", has_flag(noreserve, "nr"), filled(noreserve, 4 * PAGE, 'n'));
  verdict(has_flag(mergeable, "mg") && filled(mergeable, 4 * PAGE, 'm'), "mergeable", "'mg' %d, contents %d", has_flag(mergeable, "mg"), filled(mergeable, 4 * PAGE, 'm'));
  verdict(has_flag(droppable, "dp") && filled(droppable, 4 * PAGE, 'd'), "droppable", "'dp' %d, contents %d", has_flag(droppable, "dp"), filled(droppable, 4 * PAGE, 'd'));
  int around = filled(guarded, PAGE, 'g') && filled(guarded + 2 * PAGE, PAGE, 'g');
  int faults = store_faults(guarded + PAGE + 7);
  verdict(around && faults, "guard", "pages around it intact %d, a store into the guard page faults %d", around, faults);
  int unguarded_ok = filled(unguarded, 2 * PAGE, 'u') && !store_faults(unguarded + PAGE + 9) && unguarded[PAGE + 9] == 'X';
  verdict(has_flag(unguarded, "gu") && unguarded_ok, "unguarded", "'gu' %d, contents and stores %d", has_flag(unguarded, "gu"), unguarded_ok);
  errno = 0;
  int unmapped = munmap(sealed, 2 * PAGE);
  int sealed_errno = errno;
  verdict(has_flag(sealed, "sl") && unmapped != 0 && sealed_errno == EPERM && filled(sealed, 2 * PAGE, 's'), "sealed", "'sl' %d, munmap %d (%s)", has_flag(sealed, "sl"), unmapped, strerror(sealed_errno));

  int prot_ok = mprotect(maywrite, PAGE, PROT_READ | PROT_WRITE) == 0;
  int prot_errno = errno;
  char back = 0;
  if (prot_ok) {
    maywrite[5] = 'W';
    msync(maywrite, PAGE, MS_SYNC);
    int fd = open(path_rw, O_RDONLY);
    if (pread(fd, &back, 1, 5) != 1) back = 0;
    close(fd);
  }
  verdict(prot_ok && back == 'W', "maywrite", "mprotect(PROT_WRITE) %s, the file has '%c' where 'W' was stored", prot_ok ? "works" : strerror(prot_errno), back ? back : '?');

  deleted[PAGE + 3] = 'E';
  char via_fd[2] = {0, 0};
  if (pread(deleted_fd, via_fd, 1, 0) != 1 || pread(deleted_fd, via_fd + 1, 1, PAGE + 3) != 1) via_fd[0] = 0;
  verdict(via_fd[0] == 'D' && via_fd[1] == 'E', "deleted", "through the fd: '%c' (want 'D') and '%c' where 'E' was stored through the mapping", via_fd[0] ? via_fd[0] : '?', via_fd[1] ? via_fd[1] : '?');

  verdict(filled(readonly, 2 * PAGE, 'r'), "readonly", "contents differ");
  /* The middle page of three, so that it merges with no neighbour. */
  char *fresh = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  munmap(fresh, PAGE);
  munmap(fresh + 2 * PAGE, PAGE);
  verdict(has_flag(fresh + PAGE, "lo") && has_flag(fresh + PAGE, "lf"), "futurelock", "a new mapping: 'lo' %d, 'lf' %d", has_flag(fresh + PAGE, "lo"), has_flag(fresh + PAGE, "lf"));
  return verdicts_done();
}
