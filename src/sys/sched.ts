/**
 * Scheduling attributes of any thread, read and set from outside it: sched_getattr(2) and
 * sched_setattr(2) (no glibc wrappers in 2.36: raw syscalls), and the nice value through
 * getpriority/setpriority(PRIO_PROCESS, tid), which on Linux address a single thread.
 */
import { libc, check, lastErrno } from './libc.js';
import { errnoError } from './errno.js';

const syscallPtr = libc.func('long syscall(long number, long a1, void *a2, long a3, long a4)');
const syscallInt = libc.func('long syscall(long number, long a1, long a2, long a3, long a4)');

const SYS_getpriority = 140;
const SYS_setpriority = 141;
const SYS_sched_setattr = 314;
const SYS_sched_getattr = 315;
const PRIO_PROCESS = 0;

export const SCHED = { OTHER: 0, FIFO: 1, RR: 2, BATCH: 3, IDLE: 5, DEADLINE: 6, EXT: 7 } as const;
export const SCHED_FLAG = { RESET_ON_FORK: 0x01, RECLAIM: 0x02, DL_OVERRUN: 0x04, KEEP_POLICY: 0x08, KEEP_PARAMS: 0x10, UTIL_CLAMP_MIN: 0x20, UTIL_CLAMP_MAX: 0x40 } as const;

/** struct sched_attr (SCHED_ATTR_SIZE_VER1, 56 bytes). */
export interface SchedAttr {
  policy: number;
  flags: bigint;
  nice: number;
  priority: number;
  runtime: bigint;
  deadline: bigint;
  period: bigint;
  utilMin: number;
  utilMax: number;
}

const SCHED_ATTR_SIZE = 56;

export function schedGetattr(tid: number): SchedAttr {
  const attr = Buffer.alloc(SCHED_ATTR_SIZE);
  check(syscallPtr(SYS_sched_getattr, tid, attr, SCHED_ATTR_SIZE, 0), 'sched_getattr', { tid });
  return {
    policy: attr.readUInt32LE(4),
    flags: attr.readBigUInt64LE(8),
    nice: attr.readInt32LE(16),
    priority: attr.readUInt32LE(20),
    runtime: attr.readBigUInt64LE(24),
    deadline: attr.readBigUInt64LE(32),
    period: attr.readBigUInt64LE(40),
    utilMin: attr.readUInt32LE(48),
    utilMax: attr.readUInt32LE(52),
  };
}

export function schedSetattr(tid: number, a: SchedAttr): void {
  const attr = Buffer.alloc(SCHED_ATTR_SIZE);
  attr.writeUInt32LE(SCHED_ATTR_SIZE, 0);
  attr.writeUInt32LE(a.policy, 4);
  attr.writeBigUInt64LE(a.flags, 8);
  attr.writeInt32LE(a.nice, 16);
  attr.writeUInt32LE(a.priority, 20);
  attr.writeBigUInt64LE(a.runtime, 24);
  attr.writeBigUInt64LE(a.deadline, 32);
  attr.writeBigUInt64LE(a.period, 40);
  attr.writeUInt32LE(a.utilMin, 48);
  attr.writeUInt32LE(a.utilMax, 52);
  check(syscallPtr(SYS_sched_setattr, tid, attr, 0, 0), 'sched_setattr', { tid });
}

/** The thread's nice value (-20..19); the raw syscall returns 20 - nice, so no errno ambiguity. */
export function getNice(tid: number): number {
  const r = Number(syscallInt(SYS_getpriority, PRIO_PROCESS, tid, 0, 0));
  if (r === -1) throw errnoError(lastErrno(), 'getpriority', { tid });
  return 20 - r;
}

export function setNice(tid: number, nice: number): void {
  check(syscallInt(SYS_setpriority, PRIO_PROCESS, tid, nice, 0), 'setpriority', { tid });
}

