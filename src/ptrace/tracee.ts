/**
 * One seized thread. Wraps the ptrace requests a stopped thread needs and remembers how
 * it stopped, because how it must be released depends on that (a signal-delivery-stop
 * holds a dequeued signal that must be handed back on detach).
 */
import {
  PTRACE, PTRACE_EVENT, PTRACE_O, WAIT, NT_PRFPREG, NT_X86_XSTATE,
  ptrace, ptraceBuffer, getRegset, getSignalMask, getStopSiginfo, waitTask, type WaitStatus,
} from '../sys/ptrace.js';
import { Registers, USER_REGS_SIZE } from '../sys/regs.js';
import { SysError, ESRCH } from '../sys/errno.js';
import { tgkill } from '../sys/process.js';
import { StasisError } from '../errors.js';

export type StopKind =
  /** PTRACE_INTERRUPT or group-stop (PTRACE_EVENT_STOP): nothing was dequeued. */
  | 'interrupt'
  /** A signal was dequeued and is held by the stop; it is given back on detach. */
  | 'signal'
  /** Stopped after a syscall we injected. */
  | 'syscall';

/** Largest XSAVE area we expect (AMX tiles make it ~11 KiB). */
const XSTATE_BUFFER_SIZE = 16384;

export interface HeldSignal {
  signo: number;
  siginfo: Buffer;
}

export class Tracee {
  readonly pid: number;
  readonly tid: number;
  stop: StopKind | null = null;
  /** The signal held by a signal-delivery-stop, or the stop signal of a group-stop. */
  stopSignal = 0;
  /**
   * Signals dequeued while we ran injected syscalls (a signal-delivery-stop we resumed
   * with signal 0), with their siginfo. RemoteTask.close() queues them again in the
   * thread; any left at detach are re-sent with tgkill (losing the sender's siginfo).
   */
  heldSignals: HeldSignal[] = [];
  /** Set when the thread exited while we held it. */
  gone = false;

  constructor(pid: number, tid: number) {
    this.pid = pid;
    this.tid = tid;
  }

  /** PTRACE_SEIZE: become the tracer without stopping the thread. */
  seize(options: number = PTRACE_O.TRACESYSGOOD): void {
    ptrace(PTRACE.SEIZE, this.tid, 0, options);
  }

  /** PTRACE_INTERRUPT: ask a seized thread to stop; the stop is collected by waitForStop(). */
  interrupt(): void {
    ptrace(PTRACE.INTERRUPT, this.tid);
  }

  /**
   * Run each capture request once while the thread is not stopped yet (they fail with
   * ESRCH at once), so that V8 compiles and koffi binds them before the pause, not in it.
   * The wait is on our own pid (ECHILD): a wait on the thread could consume the stop of
   * a thread that was already group-stopped when seized.
   * A cold first call costs tens of microseconds each, milliseconds in all.
   */
  warmUp(): void {
    const requests = [() => this.getRegisters(), () => this.getFpRegisters(), () => this.getXstate(), () => this.getSignalMask(), () => this.getStopSiginfo(), () => waitTask(process.pid, WAIT.ALL | WAIT.NOHANG)];
    for (const request of requests) {
      try {
        request();
      } catch {
        // expected: the thread is running
      }
    }
  }

  seizeAndInterrupt(options: number = PTRACE_O.TRACESYSGOOD): void {
    this.seize(options);
    this.interrupt();
  }

  setOptions(options: number): void {
    ptrace(PTRACE.SETOPTIONS, this.tid, 0, options);
  }

  /**
   * Waits until the thread is in a ptrace-stop. Returns false when it exited instead
   * (a thread may finish between the /proc scan and the seize).
   */
  waitForStop(): boolean {
    for (;;) {
      const status = waitTask(this.tid, WAIT.ALL);
      if (!status) continue;
      if (status.kind === 'exited' || status.kind === 'killed') {
        this.gone = true;
        return false;
      }
      if (status.kind !== 'stopped') continue;
      if (status.event === PTRACE_EVENT.STOP) {
        this.stop = 'interrupt';
        this.stopSignal = status.signal === 5 ? 0 : status.signal;
        return true;
      }
      if (status.event === 0 && !status.syscallStop) {
        this.stop = 'signal';
        this.stopSignal = status.signal;
        return true;
      }
      // PTRACE_EVENT_EXIT or a stray syscall stop: let it go on to the interrupt stop.
      ptrace(PTRACE.CONT, this.tid, 0, 0);
    }
  }

  /** Resume until the next stop of any kind and return it (used by the syscall injector). */
  resumeAndWait(request: number, signal = 0): WaitStatus {
    this.resume(request, signal);
    return this.waitNext();
  }

  resume(request: number, signal = 0): void {
    ptrace(request, this.tid, 0, signal);
  }

  waitNext(): WaitStatus {
    for (;;) {
      const status = waitTask(this.tid, WAIT.ALL);
      if (status) return status;
    }
  }

  getRegisters(): Registers {
    const regs = new Registers(Buffer.alloc(USER_REGS_SIZE));
    ptraceBuffer(PTRACE.GETREGS, this.tid, 0, regs.bytes);
    return regs;
  }

  setRegisters(regs: Registers): void {
    ptraceBuffer(PTRACE.SETREGS, this.tid, 0, regs.bytes);
  }

  /** struct user_i387_struct (512 bytes, the FXSAVE area). */
  getFpRegisters(): Buffer {
    const fp = Buffer.alloc(512);
    const size = getRegset(this.tid, NT_PRFPREG, fp);
    return fp.subarray(0, size);
  }

  /** The XSAVE area in the kernel's uncompacted user layout (size per CPUID leaf 0xd). */
  getXstate(): Buffer | null {
    const area = Buffer.alloc(XSTATE_BUFFER_SIZE);
    try {
      return Buffer.from(area.subarray(0, getRegset(this.tid, NT_X86_XSTATE, area)));
    } catch (err) {
      if (err instanceof SysError && err.code === 'ENODEV') return null;
      throw err;
    }
  }

  getSignalMask(): bigint {
    return getSignalMask(this.tid);
  }

  /** The siginfo of the current stop, or null for a group-stop (which has none: EINVAL). */
  getStopSiginfo(): Buffer | null {
    try {
      return getStopSiginfo(this.tid);
    } catch (err) {
      if (err instanceof SysError && err.code === 'EINVAL') return null;
      throw err;
    }
  }

  /** Let the thread go exactly as it was; a signal held by a signal-delivery-stop is delivered. */
  detach(): void {
    if (this.gone) return;
    try {
      ptrace(PTRACE.DETACH, this.tid, 0, this.stop === 'signal' ? this.stopSignal : 0);
    } catch (err) {
      // The thread exited while stopped (SIGKILL from someone else): nothing left to release.
      if (!(err instanceof SysError && err.errno === ESRCH)) throw err;
    }
    this.gone = true;
    for (const held of this.heldSignals.splice(0)) tgkill(this.pid, this.tid, held.signo);
  }
}

/** Turns ESRCH on a thread we were working on into "the target exited". */
export function targetExited(pid: number, err: unknown): StasisError {
  return new StasisError('TARGET_EXITED', `process ${pid} exited during the operation`, { pid, cause: err });
}
