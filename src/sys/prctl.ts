/**
 * prctl(2) calls stasis makes on other tasks from outside (most prctls act on the caller
 * and are injected into the process instead; see resources/process-settings.ts).
 */
import { libc, lastErrno } from './libc.js';

const prctlRaw = libc.func('int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, void *arg5)');

const PR_SCHED_CORE = 62;
const PR_SCHED_CORE_GET = 0;
const PIDTYPE_PID = 0;
const EINVAL = 22;

/**
 * The core-scheduling cookie of thread `tid` (0: none), or null when the kernel has no
 * core scheduling (CONFIG_SCHED_CORE off: EINVAL). Needs ptrace access to the thread.
 */
export function schedCoreCookie(tid: number): bigint | null {
  const cookie = Buffer.alloc(8);
  if (prctlRaw(PR_SCHED_CORE, PR_SCHED_CORE_GET, tid, PIDTYPE_PID, cookie) === 0) return cookie.readBigUInt64LE(0);
  const errno = lastErrno();
  if (errno === EINVAL) return null;
  throw new Error(`prctl(PR_SCHED_CORE_GET) of thread ${tid}: errno ${errno}`);
}
