/**
 * Resource limits of another process: prlimit(2) (the prlimit64 syscall on x86_64), which
 * works on any process the caller may ptrace-attach to (same uids, or CAP_SYS_RESOURCE).
 * Raising a hard limit needs CAP_SYS_RESOURCE in the caller.
 */
import { libc, check } from './libc.js';

const prlimitRaw = libc.func('int prlimit(int pid, int resource, const void *new_limit, void *old_limit)');

/** RLIM_INFINITY as prlimit64 reports it. */
export const RLIM_INFINITY = 0xffffffffffffffffn;

/** Resource numbers (include/uapi/asm-generic/resource.h), in the kernel's order. */
export const RLIMIT_NAMES = [
  'CPU', 'FSIZE', 'DATA', 'STACK', 'CORE', 'RSS', 'NPROC', 'NOFILE',
  'MEMLOCK', 'AS', 'LOCKS', 'SIGPENDING', 'MSGQUEUE', 'NICE', 'RTPRIO', 'RTTIME',
] as const;
export type RlimitName = (typeof RLIMIT_NAMES)[number];
export const RLIMIT = Object.fromEntries(RLIMIT_NAMES.map((name, i) => [name, i])) as Record<RlimitName, number>;

export interface Rlimit {
  soft: bigint;
  hard: bigint;
}

export function getRlimit(pid: number, resource: number): Rlimit {
  const old = Buffer.alloc(16);
  check(prlimitRaw(pid, resource, null, old), `prlimit(RLIMIT_${RLIMIT_NAMES[resource] ?? resource})`, { pid });
  return { soft: old.readBigUInt64LE(0), hard: old.readBigUInt64LE(8) };
}

export function setRlimit(pid: number, resource: number, limit: Rlimit): void {
  const value = Buffer.alloc(16);
  value.writeBigUInt64LE(limit.soft, 0);
  value.writeBigUInt64LE(limit.hard, 8);
  check(prlimitRaw(pid, resource, value, null), `prlimit(RLIMIT_${RLIMIT_NAMES[resource] ?? resource})`, { pid });
}
