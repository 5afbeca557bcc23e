/*
 * The machine's limits for bringing an image's bytes into memory, for comparison with a
 * restore of the same image.
 *
 *   readimg [-r REPS] [-b BUF_KIB] [-m MODES] FILE
 *
 * One untimed read of FILE first (it warms the page cache), then REPS times each of the
 * MODES (comma-separated, default all, in this order):
 *   read      read() the whole file through one reused buffer of BUF_KIB (default 1024),
 *             like `cat FILE > /dev/null`: one pass over the page cache, the aim's yardstick
 *   mmap      mmap() the file PROT_READ, MAP_PRIVATE|MAP_POPULATE: page-cache pages mapped
 *             as they are, nothing copied (what mapping image segments directly, copy on
 *             write later, would cost up front)
 *   fresh     read() the whole file into a fresh anonymous mapping of its size, so every
 *             page is also faulted in and zeroed: the least any restore that copies has to
 *             do (an injected read(image_fd, addr, len) in the restored process costs this)
 *   thp       the same into a mapping with MADV_HUGEPAGE (2 MiB pages, fewer faults)
 *   procmem   pread() 8 MiB chunks into a buffer and pwrite() them to /proc/CHILD/mem of a
 *             forked child, into an untouched anonymous mapping: the way stasis restore
 *             fills memory today, without Node, checksums or ptrace
 *   vmwritev  the same chunks with process_vm_writev() instead of /proc/CHILD/mem
 * Prints "size BYTES", then one line per rep: "MODE NS".
 * Every child is reaped; the process dies with its parent (PR_SET_PDEATHSIG).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (8UL << 20)

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) { perror(what); exit(1); }

/* Reads size bytes from offset 0: into buf + offset when advance, else over and over into buf[0..buflen). */
static void read_all(int fd, unsigned char *buf, size_t buflen, int advance, size_t size) {
  size_t done = 0;
  while (done < size) {
    size_t want = advance ? size - done : (size - done < buflen ? size - done : buflen);
    ssize_t n = pread(fd, advance ? buf + done : buf, want, (off_t)done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("pread");
    if (n == 0) break;
    done += (size_t)n;
  }
}

static unsigned char *anon(size_t size, int huge) {
  unsigned char *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) die("mmap");
  if (huge) madvise(mem, size, MADV_HUGEPAGE);
  return mem;
}

/* Copies the file into an untouched mapping of a forked child, from outside. Returns the ns. */
static uint64_t into_child(int fd, size_t size, unsigned char *buf, int use_writev) {
  unsigned char *mem = anon(size, 0);
  int ready[2];
  if (pipe(ready) < 0) die("pipe");
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(ready[0]);
    if (write(ready[1], "x", 1) != 1) _exit(1);
    for (;;) pause();
  }
  close(ready[1]);
  char c;
  if (read(ready[0], &c, 1) != 1) die("child");
  close(ready[0]);
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/mem", (int)child);
  int memfd = use_writev ? -1 : open(path, O_RDWR | O_CLOEXEC);
  if (!use_writev && memfd < 0) die(path);
  uint64_t t0 = now_ns();
  for (size_t at = 0; at < size; at += CHUNK) {
    size_t len = size - at < CHUNK ? size - at : CHUNK;
    if (pread(fd, buf, len, (off_t)at) != (ssize_t)len) die("pread chunk");
    size_t w = 0;
    while (w < len) {
      ssize_t k;
      if (use_writev) {
        struct iovec local = {buf + w, len - w}, remote = {mem + at + w, len - w};
        k = process_vm_writev(child, &local, 1, &remote, 1, 0);
      } else {
        k = pwrite(memfd, buf + w, len - w, (off_t)(uintptr_t)(mem + at + w));
      }
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) die(use_writev ? "process_vm_writev" : "pwrite /proc/CHILD/mem");
      w += (size_t)k;
    }
  }
  uint64_t t1 = now_ns();
  if (memfd >= 0) close(memfd);
  kill(child, SIGKILL);
  while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {}
  munmap(mem, size);
  return t1 - t0;
}

int main(int argc, char **argv) {
  int reps = 3, opt;
  size_t buflen = 1 << 20;
  const char *modes = "read,mmap,fresh,thp,procmem,vmwritev";
  while ((opt = getopt(argc, argv, "r:b:m:")) != -1) {
    switch (opt) {
    case 'r': reps = atoi(optarg); break;
    case 'b': buflen = strtoul(optarg, NULL, 10) << 10; break;
    case 'm': modes = optarg; break;
    default: optind = argc + 1; break;
    }
  }
  if (optind != argc - 1 || buflen == 0) { fprintf(stderr, "usage: %s [-r REPS] [-b BUF_KIB] [-m MODES] FILE\n", argv[0]); return 2; }
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 1;
  int fd = open(argv[optind], O_RDONLY | O_CLOEXEC);
  if (fd < 0) die(argv[optind]);
  struct stat st;
  if (fstat(fd, &st) < 0) die("fstat");
  size_t size = (size_t)st.st_size;
  if (size == 0) { fprintf(stderr, "readimg: %s is empty\n", argv[optind]); return 1; }
  printf("size %zu\n", size);
  fflush(stdout);
  unsigned char *buf = malloc(buflen > CHUNK ? buflen : CHUNK);
  if (!buf) die("malloc");
  read_all(fd, buf, buflen, 0, size);

  char *list = strdup(modes);
  for (char *save = NULL, *mode = strtok_r(list, ",", &save); mode; mode = strtok_r(NULL, ",", &save)) {
    for (int i = 0; i < reps; i++) {
      uint64_t ns;
      if (!strcmp(mode, "read")) {
        uint64_t t0 = now_ns();
        read_all(fd, buf, buflen, 0, size);
        ns = now_ns() - t0;
      } else if (!strcmp(mode, "mmap")) {
        uint64_t t0 = now_ns();
        void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        if (m == MAP_FAILED) die("mmap file");
        ns = now_ns() - t0;
        munmap(m, size);
      } else if (!strcmp(mode, "fresh") || !strcmp(mode, "thp")) {
        uint64_t t0 = now_ns();
        unsigned char *mem = anon(size, mode[0] == 't');
        read_all(fd, mem, 0, 1, size);
        ns = now_ns() - t0;
        munmap(mem, size);
      } else if (!strcmp(mode, "procmem") || !strcmp(mode, "vmwritev")) {
        ns = into_child(fd, size, buf, mode[0] == 'v');
      } else {
        fprintf(stderr, "readimg: unknown mode '%s'\n", mode);
        return 2;
      }
      printf("%s %llu\n", mode, (unsigned long long)ns);
      fflush(stdout);
    }
  }
  return 0;
}
