/** Signals to processes and single threads, and raw syscall(2). */
import { libc, check } from './libc.js';

const killRaw = libc.func('int kill(int pid, int sig)');
const syscallRaw = libc.func('long syscall(long number, long a1, long a2, long a3, long a4, long a5, long a6)');

export const SYS = {
  tgkill: 234,
} as const;

export const SIG = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8, SIGKILL: 9,
  SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15, SIGCHLD: 17, SIGCONT: 18,
  SIGSTOP: 19, SIGTSTP: 20,
} as const;

export function kill(pid: number, signal: number): void {
  check(killRaw(pid, signal), `kill(${signal})`, { pid });
}

/** Signal one thread of a thread group. */
export function tgkill(pid: number, tid: number, signal: number): void {
  check(syscallRaw(SYS.tgkill, pid, tid, signal, 0, 0, 0), `tgkill(${signal})`, { pid, tid });
}
