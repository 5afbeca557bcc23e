/**
 * Reading a stopped tracee's pending signals without dequeuing them:
 * PTRACE_PEEKSIGINFO (struct ptrace_peeksiginfo_args { u64 off; u32 flags; s32 nr; })
 * copies queued siginfo entries, in queue order, from the thread's private queue or,
 * with PTRACE_PEEKSIGINFO_SHARED, from the process-wide one.
 */
import { ptraceBuffer } from './ptrace.js';
import { addressOf } from './libc.js';

export const PTRACE_PEEKSIGINFO = 0x4209;
export const PTRACE_PEEKSIGINFO_SHARED = 1;

/** sizeof(siginfo_t) as the kernel copies it to user space. */
export const SIGINFO_SIZE = 128;

/** si_code values (include/uapi/asm-generic/siginfo.h). */
export const SI = {
  USER: 0,
  KERNEL: 0x80,
  QUEUE: -1,
  TIMER: -2,
  MESGQ: -3,
  ASYNCIO: -4,
  SIGIO: -5,
  TKILL: -6,
} as const;

const BATCH = 32;

/**
 * Every siginfo queued for `tid` (or, with `shared`, for its whole thread group), oldest
 * first. The task must be in a ptrace-stop.
 */
export function peekSiginfo(tid: number, shared: boolean): Buffer[] {
  const out: Buffer[] = [];
  const args = Buffer.alloc(16);
  const data = Buffer.alloc(BATCH * SIGINFO_SIZE);
  for (;;) {
    args.writeBigUInt64LE(BigInt(out.length), 0);
    args.writeUInt32LE(shared ? PTRACE_PEEKSIGINFO_SHARED : 0, 8);
    args.writeInt32LE(BATCH, 12);
    const got = ptraceBuffer(PTRACE_PEEKSIGINFO, tid, addressOf(args), data);
    for (let i = 0; i < got; i++) out.push(Buffer.from(data.subarray(i * SIGINFO_SIZE, (i + 1) * SIGINFO_SIZE)));
    if (got < BATCH) return out;
  }
}

/** si_signo, si_errno, si_code: the header every siginfo layout shares. */
export function siginfoHeader(info: Buffer): { signo: number; errno: number; code: number } {
  return { signo: info.readInt32LE(0), errno: info.readInt32LE(4), code: info.readInt32LE(8) };
}

/**
 * A siginfo fit to queue again with rt_(tg)sigqueueinfo: its signal number set, and the
 * kernel-private word of an SI_TIMER siginfo (si_sys_private) cleared, as the kernel
 * expects of a user-queued one.
 */
export function queueableSiginfo(signal: number, siginfo: Buffer): Buffer {
  const info = Buffer.alloc(SIGINFO_SIZE);
  siginfo.copy(info, 0, 0, SIGINFO_SIZE);
  info.writeInt32LE(signal, 0);
  if (info.readInt32LE(8) === SI.TIMER) info.writeInt32LE(0, 32);
  return info;
}
