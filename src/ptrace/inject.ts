/**
 * Running a system call inside a stopped tracee: point its registers at a `syscall`
 * instruction already in its address space, step it through syscall-enter and
 * syscall-exit stops (PTRACE_SYSCALL), read rax, and put the registers back.
 */
import { openSync, readSync, closeSync } from 'node:fs';
import { PTRACE, PTRACE_EVENT, getEventMessage, getStopSiginfo } from '../sys/ptrace.js';
import { Registers, type RegName } from '../sys/regs.js';
import { readMaps, type Mapping } from '../proc/maps.js';
import { StasisError } from '../errors.js';
import type { Tracee } from './tracee.js';

/** Kernel-internal syscall restart codes (include/linux/errno.h) seen in rax of a thread stopped in a syscall. */
const ERESTARTSYS = -512n;
const ERESTARTNOINTR = -513n;
const ERESTARTNOHAND = -514n;
const ERESTART_RESTARTBLOCK = -516n;
const NR_restart_syscall = 219n;
const EINTR = -4n;
const SYSCALL_INSN = Buffer.from([0x0f, 0x05]);
/** SIGILL, SIGBUS, SIGFPE, SIGSEGV: what an instruction raises. */
const FAULT_SIGNALS = new Set([4, 7, 8, 11]);


/** Where a `syscall` instruction is in the target: the vDSO has several (its fallback paths). */
export function findSyscallInstruction(pid: number, maps: Mapping[] = readMaps(pid)): bigint {
  const vdso = maps.find((m) => m.path === '[vdso]');
  if (!vdso) throw new StasisError('UNSUPPORTED', `process ${pid} has no [vdso] mapping to borrow a syscall instruction from`, { pid });
  const fd = openSync(`/proc/${pid}/mem`, 'r');
  try {
    const text = Buffer.alloc(vdso.end - vdso.start);
    readSync(fd, text, 0, text.length, vdso.start);
    const at = text.indexOf(SYSCALL_INSN);
    if (at < 0) throw new StasisError('UNSUPPORTED', `no syscall instruction found in the vDSO of process ${pid}`, { pid });
    return BigInt(vdso.start + at);
  } finally {
    closeSync(fd);
  }
}

/**
 * The registers to give back to a thread that we stopped inside a syscall and then used
 * for an injected one. The kernel only rewrites rax/rip for a restart on the way out of a
 * signal stop; after our syscall-exit stop it will not, so do what
 * arch_do_signal_or_restart() would have done with no handler to run.
 */
export function registersToResume(saved: Registers, restoredTask = false): Registers {
  const regs = saved.clone();
  if (saved.getSigned('orig_rax') < 0n) return regs;
  const rax = saved.getSigned('rax');
  // A restored task has no restart_block to resume (nanosleep's remaining time, futex
  // deadline...): it re-executes the original syscall with its original arguments, except
  // that a relative sleep sleeps what it had left (see sleepForWhatWasLeft). When
  // the task was already inside restart_syscall (interrupted once before: an earlier
  // checkpoint, a debugger, SIGSTOP), orig_rax says 219 and the original syscall number
  // is gone; restart_syscall in the new task would run the restart_block clone3 copied
  // from the stub's own sleep. It returns EINTR instead, as CRIU does for every
  // ERESTART_RESTARTBLOCK: the remaining time is already in nanosleep's `rem`.
  if (restoredTask && rax === ERESTART_RESTARTBLOCK && saved.getSigned('orig_rax') === NR_restart_syscall) {
    regs.set('rax', EINTR);
    regs.set('orig_rax', -1n);
    return regs;
  }
  const reexecute = rax === ERESTARTSYS || rax === ERESTARTNOINTR || rax === ERESTARTNOHAND || (restoredTask && rax === ERESTART_RESTARTBLOCK);
  if (reexecute) {
    regs.set('rax', saved.get('orig_rax'));
    regs.set('rip', saved.get('rip') - 2n);
    if (restoredTask && rax === ERESTART_RESTARTBLOCK) sleepForWhatWasLeft(regs, saved.getSigned('orig_rax'));
  } else if (rax === ERESTART_RESTARTBLOCK) {
    regs.set('rax', NR_restart_syscall);
    regs.set('rip', saved.get('rip') - 2n);
  }
  // No second restart if a signal arrives before the thread runs (syscall_get_nr() < 0).
  regs.set('orig_rax', -1n);
  return regs;
}

const NR_nanosleep = 35n;
const NR_clock_nanosleep = 230n;
const TIMER_ABSTIME = 1n;

/**
 * An interrupted relative nanosleep()/clock_nanosleep() has had its remaining time written
 * to `rem` by the kernel (do_nanosleep -> nanosleep_copyout) before it returned
 * ERESTART_RESTARTBLOCK, so that time is in the image's memory. Re-executed with `rem` as
 * its request, the sleep goes on for what it had left, as timers do, instead of its whole
 * interval again. Only the request pointer changes (rdi, or rdx for clock_nanosleep); a
 * sleep without `rem` has nothing better and sleeps its interval again.
 */
function sleepForWhatWasLeft(regs: Registers, nr: bigint): void {
  if (nr === NR_nanosleep && regs.get('rsi') !== 0n) regs.set('rdi', regs.get('rsi'));
  if (nr === NR_clock_nanosleep && (regs.get('rsi') & TIMER_ABSTIME) === 0n && regs.get('r10') !== 0n) regs.set('rdx', regs.get('r10'));
}

/**
 * A thread caught between the kernel's restart fix-up and the `syscall` it leads to (rax =
 * restart_syscall, rip back on the instruction; orig_rax may already be -1, as
 * registersToResume() leaves it) is in the same state as one stopped on the way out of
 * restart_syscall with ERESTART_RESTARTBLOCK. Returns that canonical form, so that a
 * restore has one rule for both, or `regs` itself for any other thread. Only a `syscall`
 * instruction at rip (read through `readCode`) makes rax = 219 a pending restart.
 */
export function pendingRestartAsInterrupted(regs: Registers, readCode: (address: bigint, length: number) => Buffer): Registers {
  if (regs.getSigned('rax') !== NR_restart_syscall || !readCode(regs.get('rip'), 2).equals(SYSCALL_INSN)) return regs;
  const interrupted = regs.clone();
  interrupted.set('rax', ERESTART_RESTARTBLOCK);
  interrupted.set('orig_rax', NR_restart_syscall);
  interrupted.set('rip', regs.get('rip') + 2n);
  return interrupted;
}

/** True when a thread's saved state is in the middle of a restartable syscall. */
export function isInSyscall(regs: Registers): boolean {
  return regs.getSigned('orig_rax') >= 0n;
}

export interface InjectResult {
  /** rax after the syscall: the result, or -errno. */
  value: bigint;
  /** PIDs reported by PTRACE_EVENT_CLONE/FORK during the call (auto-attached children). */
  children: number[];
}

/**
 * Runs one syscall in `thread` (which must be in a ptrace-stop) and leaves it in a
 * syscall-exit-stop with `resumeRegs` set. Call several times; the caller detaches.
 */
export class SyscallInjector {
  readonly thread: Tracee;
  readonly syscallAt: bigint;
  readonly saved: Registers;
  /** The thread is being restored: see registersToResume(). */
  readonly restoredTask: boolean;

  constructor(thread: Tracee, syscallAt: bigint, saved: Registers, restoredTask = false) {
    this.thread = thread;
    this.syscallAt = syscallAt;
    this.saved = saved;
    this.restoredTask = restoredTask;
  }

  /**
   * `overrides`: registers to set for this call only (e.g. rsp, which sigaltstack() checks).
   * `whileRunning`: work for this thread to do while the tracee is inside the syscall (the
   * kernel runs it on another CPU), e.g. checksumming what an injected read() copies.
   */
  call(nr: number, args: Array<number | bigint> = [], overrides: Partial<Record<RegName, bigint>> = {}, whileRunning?: () => void): InjectResult {
    const regs = this.saved.clone();
    for (const [name, value] of Object.entries(overrides)) regs.set(name as RegName, value);
    regs.set('rip', this.syscallAt);
    regs.set('rax', nr);
    regs.set('orig_rax', -1n);
    const argRegs = ['rdi', 'rsi', 'rdx', 'r10', 'r8', 'r9'] as const;
    args.forEach((value, i) => regs.set(argRegs[i], BigInt(value)));
    this.thread.setRegisters(regs);

    // Resuming a signal-delivery-stop with signal 0 discards the signal it holds: keep it
    // to send again after the detach.
    if (this.thread.stop === 'signal' && this.thread.stopSignal) {
      this.thread.heldSignals.push({ signo: this.thread.stopSignal, siginfo: getStopSiginfo(this.thread.tid) });
      this.thread.stopSignal = 0;
    }
    const children: number[] = [];
    let entered = false;
    for (;;) {
      this.thread.resume(PTRACE.SYSCALL);
      if (entered && whileRunning) {
        const work = whileRunning;
        whileRunning = undefined;
        work();
      }
      const status = this.thread.waitNext();
      if (status.kind !== 'stopped') {
        this.thread.gone = true;
        throw new StasisError('TARGET_EXITED', `thread ${this.thread.tid} exited during an injected syscall ${nr}`, { pid: this.thread.pid, tid: this.thread.tid });
      }
      if (status.syscallStop) {
        if (entered) break;
        entered = true;
      } else if (status.event === PTRACE_EVENT.CLONE || status.event === PTRACE_EVENT.FORK || status.event === PTRACE_EVENT.VFORK) {
        children.push(getEventMessage(this.thread.tid));
      } else if (status.event === PTRACE_EVENT.STOP) {
        // A PTRACE_INTERRUPT still pending from the freeze: step over it.
      } else if (status.event === 0) {
        // A signal dequeued before our syscall ran: suppress it here and queue it again
        // later. A fault raised by what we made the thread run (si_code > 0: sent by the
        // kernel, not by kill()) would only be raised again: give up instead.
        const siginfo = getStopSiginfo(this.thread.tid);
        if (!entered && FAULT_SIGNALS.has(status.signal) && siginfo.readInt32LE(8) > 0) {
          throw new StasisError('INJECTION_FAILED', `thread ${this.thread.tid} faulted (signal ${status.signal}) before the injected syscall ${nr}`, { pid: this.thread.pid, tid: this.thread.tid });
        }
        this.thread.heldSignals.push({ signo: status.signal, siginfo });
      }
    }
    this.thread.stop = 'syscall';
    const value = this.thread.getRegisters().getSigned('rax');
    this.thread.setRegisters(registersToResume(this.saved, this.restoredTask));
    return { value, children };
  }

  /** Put the thread's own registers back (restart rule applied) without running anything. */
  restore(): void {
    this.thread.setRegisters(registersToResume(this.saved, this.restoredTask));
  }
}

