/**
 * ptrace(2) and waitpid(2), typed. Every call must come from the thread that seized the
 * tracee (the kernel ties a tracee to its tracer thread), so these are synchronous.
 */
import { libc, check, lastErrno, addressOf } from './libc.js';
import { errnoError, EINTR } from './errno.js';

export const PTRACE = {
  CONT: 7,
  KILL: 8,
  GETREGS: 12,
  SETREGS: 13,
  GETFPREGS: 14,
  DETACH: 17,
  SYSCALL: 24,
  SETOPTIONS: 0x4200,
  GETEVENTMSG: 0x4201,
  GETSIGINFO: 0x4202,
  GETREGSET: 0x4204,
  SETREGSET: 0x4205,
  SEIZE: 0x4206,
  INTERRUPT: 0x4207,
  LISTEN: 0x4208,
  GETSIGMASK: 0x420a,
  SETSIGMASK: 0x420b,
  GET_RSEQ_CONFIGURATION: 0x420f,
} as const;

export const PTRACE_O = {
  TRACESYSGOOD: 0x1,
  TRACEFORK: 0x2,
  TRACEVFORK: 0x4,
  TRACECLONE: 0x8,
  TRACEEXEC: 0x10,
  TRACEEXIT: 0x40,
  EXITKILL: 0x100000,
} as const;

export const PTRACE_EVENT = { FORK: 1, VFORK: 2, CLONE: 3, EXEC: 4, EXIT: 6, STOP: 128 } as const;

export const WAIT = { NOHANG: 1, UNTRACED: 2, CONTINUED: 8, ALL: 0x40000000 } as const;

/** ELF note types that PTRACE_GETREGSET takes (include/uapi/linux/elf.h). */
export const NT_PRSTATUS = 1;
export const NT_PRFPREG = 2;
export const NT_X86_XSTATE = 0x202;

const ptraceInt = libc.func('long ptrace(long request, int pid, uintptr_t addr, uintptr_t data)');
const ptracePtr = libc.func('long ptrace(long request, int pid, uintptr_t addr, void *data)');
const waitpidRaw = libc.func('int waitpid(int pid, void *status, int options)');

export function ptrace(request: number, tid: number, addr: number | bigint = 0, data: number | bigint = 0): number {
  return check(ptraceInt(request, tid, addr, data), `ptrace(${requestName(request)})`, { tid });
}

export function ptraceBuffer(request: number, tid: number, addr: number | bigint, data: ArrayBufferView): number {
  return check(ptracePtr(request, tid, addr, data), `ptrace(${requestName(request)})`, { tid });
}

/** PTRACE_GETREGSET into `buffer`; returns how many bytes the kernel filled. */
export function getRegset(tid: number, noteType: number, buffer: Buffer): number {
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(addressOf(buffer), 0);
  iov.writeBigUInt64LE(BigInt(buffer.length), 8);
  ptraceBuffer(PTRACE.GETREGSET, tid, noteType, iov);
  return Number(iov.readBigUInt64LE(8));
}

export function setRegset(tid: number, noteType: number, buffer: Buffer): void {
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(addressOf(buffer), 0);
  iov.writeBigUInt64LE(BigInt(buffer.length), 8);
  ptraceBuffer(PTRACE.SETREGSET, tid, noteType, iov);
}

export function getEventMessage(tid: number): number {
  const msg = Buffer.alloc(8);
  ptraceBuffer(PTRACE.GETEVENTMSG, tid, 0, msg);
  return Number(msg.readBigUInt64LE(0));
}

/** The signal mask of a stopped tracee (a 64-bit sigset_t, bit n-1 for signal n). */
export function getSignalMask(tid: number): bigint {
  const mask = Buffer.alloc(8);
  ptraceBuffer(PTRACE.GETSIGMASK, tid, 8, mask);
  return mask.readBigUInt64LE(0);
}

export function setSignalMask(tid: number, mask: bigint): void {
  const buffer = Buffer.alloc(8);
  buffer.writeBigUInt64LE(mask, 0);
  ptraceBuffer(PTRACE.SETSIGMASK, tid, 8, buffer);
}

export interface RseqConfiguration {
  /** Address of the thread's struct rseq, 0 when none is registered. */
  pointer: bigint;
  size: number;
  signature: number;
  flags: number;
}

/** PTRACE_GET_RSEQ_CONFIGURATION (struct ptrace_rseq_configuration, 24 bytes). */
export function getRseqConfiguration(tid: number): RseqConfiguration {
  const conf = Buffer.alloc(24);
  ptraceBuffer(PTRACE.GET_RSEQ_CONFIGURATION, tid, conf.length, conf);
  return { pointer: conf.readBigUInt64LE(0), size: conf.readUInt32LE(8), signature: conf.readUInt32LE(12), flags: conf.readUInt32LE(16) };
}

/** PTRACE_GETSIGINFO: the 128-byte siginfo of the current stop. */
export function getStopSiginfo(tid: number): Buffer {
  const info = Buffer.alloc(128);
  ptraceBuffer(PTRACE.GETSIGINFO, tid, 0, info);
  return info;
}

export type WaitStatus =
  | { kind: 'exited'; tid: number; code: number }
  | { kind: 'killed'; tid: number; signal: number; coreDumped: boolean }
  | { kind: 'stopped'; tid: number; signal: number; event: number; syscallStop: boolean }
  | { kind: 'continued'; tid: number };

const statusBuffer = new Int32Array(1);

/** waitpid for one task (never -1: see DESIGN.md on libuv's SIGCHLD handler). Null with WNOHANG and nothing to report. */
export function waitTask(tid: number, options: number = WAIT.ALL): WaitStatus | null {
  for (;;) {
    const got = waitpidRaw(tid, statusBuffer, options);
    if (got === -1) {
      const errno = lastErrno();
      if (errno === EINTR) continue;
      throw errnoError(errno, 'waitpid', { tid });
    }
    if (got === 0) return null;
    return decodeWaitStatus(got, statusBuffer[0]);
  }
}

export function decodeWaitStatus(tid: number, status: number): WaitStatus {
  const low = status & 0x7f;
  if (low === 0) return { kind: 'exited', tid, code: (status >> 8) & 0xff };
  if ((status & 0xff) === 0x7f) {
    const signal = (status >> 8) & 0xff;
    return { kind: 'stopped', tid, signal: signal & 0x7f, event: (status >> 16) & 0xff, syscallStop: signal === (0x80 | 5) };
  }
  if (status === 0xffff) return { kind: 'continued', tid };
  return { kind: 'killed', tid, signal: low, coreDumped: (status & 0x80) !== 0 };
}

function requestName(request: number): string {
  for (const [name, value] of Object.entries(PTRACE)) if (value === request) return `PTRACE_${name}`;
  return String(request);
}
