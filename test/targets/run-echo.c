/*
 * run-echo: reads its stdin line by line with read(2) one byte at a time (so nothing is
 * buffered beyond the current line) and answers on stdout, for testing that `stasis run`
 * passes stdin and stdout through, before and after a checkpoint and a --resume.
 *
 *   "checkpoint"  -> writes "stopping", stops itself (kill(getpid(), SIGSTOP): a checkpoint
 *                    under stasis run), then writes "resumed"
 *   "exit N"      -> writes "bye N" and exits with status N
 *   anything else -> writes "got: LINE"
 * At end of file it writes "eof" and exits 0. Starts by writing "ready".
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void say(const char *s) {
  size_t n = strlen(s);
  while (n > 0) {
    ssize_t w = write(1, s, n);
    if (w <= 0) _exit(99);
    s += w;
    n -= (size_t)w;
  }
}

int main(void) {
  char line[512], out[600];
  say("ready\n");
  for (;;) {
    size_t n = 0;
    for (;;) {
      char c;
      ssize_t r = read(0, &c, 1);
      if (r < 0) continue; /* EINTR */
      if (r == 0) {
        say("eof\n");
        return 0;
      }
      if (c == '\n') break;
      if (n < sizeof line - 1) line[n++] = c;
    }
    line[n] = 0;
    if (!strcmp(line, "checkpoint")) {
      say("stopping\n");
      kill(getpid(), SIGSTOP);
      say("resumed\n");
    } else if (!strncmp(line, "exit ", 5)) {
      snprintf(out, sizeof out, "bye %d\n", atoi(line + 5));
      say(out);
      return atoi(line + 5);
    } else {
      snprintf(out, sizeof out, "got: %s\n", line);
      say(out);
    }
  }
}
