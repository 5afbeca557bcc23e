/**
 * Per-thread state that a core (and later a checkpoint) records: general registers,
 * FPU/SSE and the XSAVE area, signal mask, the thread's own pending signals, the
 * siginfo of the stop, name and CPU times. Captured while the thread is stopped.
 */
import { readFileSync } from 'node:fs';
import type { Registers } from '../sys/regs.js';
import type { FrozenProcess } from '../ptrace/freeze.js';
import { readStatus, readStat } from '../proc/status.js';

export interface ThreadState {
  tid: number;
  regs: Registers;
  /** FXSAVE area, 512 bytes (NT_FPREGSET). */
  fpregs: Buffer;
  /** XSAVE area as PTRACE_GETREGSET NT_X86_XSTATE returns it (this CPU's offsets), or null. */
  xstate: Buffer | null;
  sigmask: bigint;
  /** Signals pending for this thread only (SigPnd); process-wide ones are in ProcessState. */
  sigpending: bigint;
  /** The siginfo of the ptrace-stop (128 bytes), null for a group-stop. */
  stopSiginfo: Buffer | null;
  /** Signal the thread was stopped with (a held signal, or a group-stop's), 0 for our interrupt. */
  stopSignal: number;
  name: string;
  utimeTicks: number;
  stimeTicks: number;
}

/**
 * What must be read while the threads are stopped: registers, FPU/XSAVE state, signal
 * mask and the stop itself, all through ptrace (tens of microseconds a thread). Facts from
 * /proc that do not change at the freeze are added after the release by describeThreads().
 */
export function captureThreads(frozen: FrozenProcess): ThreadState[] {
  return frozen.threads.map((thread) => ({
    tid: thread.tid,
    regs: thread.getRegisters(),
    fpregs: thread.getFpRegisters(),
    xstate: thread.getXstate(),
    sigmask: thread.getSignalMask(),
    sigpending: 0n,
    stopSiginfo: thread.getStopSiginfo(),
    stopSignal: thread.stopSignal,
    name: '',
    utimeTicks: 0,
    stimeTicks: 0,
  }));
}

/**
 * Adds names, CPU times and thread-directed pending signals from /proc/PID/task/TID
 * (about 0.5 ms a thread, so kept out of the pause). A thread that exited since keeps
 * what was captured.
 */
export function describeThreads(pid: number, threads: ThreadState[]): void {
  for (const thread of threads) {
    try {
      const stat = readStat(pid, thread.tid);
      thread.sigpending = readStatus(pid, thread.tid).sigPending;
      thread.name = readFileSync(`/proc/${pid}/task/${thread.tid}/comm`, 'latin1').trimEnd();
      thread.utimeTicks = stat.utimeTicks;
      thread.stimeTicks = stat.stimeTicks;
    } catch {
      // The thread has exited since the snapshot.
    }
  }
}
