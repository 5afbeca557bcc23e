/**
 * Signal dispositions and pending signals.
 *
 * Dump: each non-default action (handler, flags, mask, restorer) is read with an injected
 * rt_sigaction(sig, NULL, &old); pending signals are read with PTRACE_PEEKSIGINFO, which
 * copies the queued siginfo without dequeuing anything: the process-wide queue once, then
 * each thread's private queue. A pending bit without a queue entry (the kernel could not
 * allocate one, so the receiver would get an SI_USER siginfo with no sender) is recorded
 * as such a siginfo.
 *
 * Restore: rt_sigaction for every signal whose action is not the default on either side,
 * then the pending signals are queued again, in their order, from inside the process:
 * rt_sigqueueinfo(pid) for the process-wide ones and rt_tgsigqueueinfo(pid, tid) for each
 * thread's own, run in that very thread, because the kernel lets a task forge any si_code
 * (SI_TKILL, SI_USER, kernel codes) only in signals to itself.
 *
 * Ordering for the restore orchestrator: restore this resource last, after every other
 * resource (timers included) and after each thread's signal mask, just before the release:
 * - a thread that is resumed for an injected syscall while an unblocked signal is pending
 *   dequeues it (the injector then keeps only its number), so no injected syscall may
 *   follow the queueing, in any thread;
 * - queueing a signal wakes a thread that does not block it; with the masks already in
 *   place, the kernel picks the right thread for a process-wide signal. (PTRACE_SETSIGMASK
 *   alone does not re-evaluate TIF_SIGPENDING, so a mask set after the queueing could
 *   leave an unblocked signal undelivered until the thread's next syscall.)
 * - actions are set before the queueing (setting SIG_IGN discards pending instances).
 * All of it runs while the main thread blocks every signal; each thread's mask is put back
 * with an injected rt_sigprocmask, which re-evaluates TIF_SIGPENDING.
 *
 * Per-thread signals of other threads need a RemoteTask in those threads: the context's
 * optional threadRemote(tid), else a temporary one on the (stopped, traced) thread.
 *
 * Not captured here: the signal a thread held in a signal-delivery-stop at the freeze (the
 * threads resource keeps it); addHeldSignals() puts it in this state, so that it is queued
 * with the others and not dequeued by a later injected syscall.
 */
import { readStatus } from '../proc/status.js';
import { RemoteTask, SYSCALL } from '../ptrace/remote.js';
import { Tracee } from '../ptrace/tracee.js';
import { STASIS_NOTE } from '../image/stasis-notes.js';
import { SysError } from '../sys/errno.js';
import { peekSiginfo, siginfoHeader, SIGINFO_SIZE, SI, queueableSiginfo } from '../sys/signals.js';
import { StasisError } from '../errors.js';
import type { CheckpointResource, DumpContext, Finding, RestoreContext } from './resource.js';

export const NSIG = 64;
export const SIGKILL = 9;
export const SIGSTOP = 19;
export const SIGCHLD = 17;
/** struct kernel_sigaction on x86_64: handler, flags, restorer, mask (8 bytes each). */
const KERNEL_SIGACTION_SIZE = 32;
const SIGSET_SIZE = 8;
const SIG_SETMASK = 2;
const ALL_SIGNALS = 0xffffffffffffffffn;

export interface SignalAction {
  signal: number;
  /** SIG_DFL 0, SIG_IGN 1, or the handler's address. */
  handler: bigint;
  /** SA_* flags, SA_RESTORER included. */
  flags: bigint;
  restorer: bigint;
  /** Signals blocked while the handler runs (bit n-1 for signal n). */
  mask: bigint;
}

export interface PendingSignal {
  signal: number;
  /** The 128-byte siginfo the receiver will get. */
  siginfo: Buffer;
  /**
   * queue: a queued entry (PTRACE_PEEKSIGINFO); no-info: a pending bit with no queue entry;
   * dequeued: taken off the queue by an injected syscall during the dump (see
   * Tracee.heldSignals).
   */
  origin: 'queue' | 'no-info' | 'dequeued';
}

export interface SignalsState {
  /** Every action that is not SIG_DFL with no flags, and always SIGCHLD's (SA_NOCLDWAIT/SA_NOCLDSTOP). Others are the default. */
  actions: SignalAction[];
  /** The process-wide queue, oldest first. */
  shared: PendingSignal[];
  /** Each thread's private queue, oldest first (threads with nothing pending are left out). */
  threads: Array<{ tid: number; pending: PendingSignal[] }>;
}

const bit = (signal: number): bigint => 1n << BigInt(signal - 1);

// ---------------------------------------------------------------------------------------
// dump

function sigactionOf(remote: RemoteTask, signal: number): SignalAction {
  remote.resetScratch();
  const old = remote.reserve(KERNEL_SIGACTION_SIZE);
  remote.syscall(SYSCALL.rt_sigaction, [signal, 0, old, SIGSET_SIZE], `rt_sigaction(${signalName(signal)})`);
  const raw = remote.readMemory(old, KERNEL_SIGACTION_SIZE);
  return {
    signal,
    handler: raw.readBigUInt64LE(0),
    flags: raw.readBigUInt64LE(8),
    restorer: raw.readBigUInt64LE(16),
    mask: raw.readBigUInt64LE(24),
  };
}

/**
 * The actions worth a syscall: SigCgt/SigIgn of /proc/PID/status name the signals with a
 * handler or SIG_IGN. A SIG_DFL action's flags and mask change nothing, except SIGCHLD's
 * SA_NOCLDWAIT/SA_NOCLDSTOP, so SIGCHLD is always read.
 */
export function captureActions(pid: number, remote: RemoteTask): SignalAction[] {
  const status = readStatus(pid);
  const nonDefault = status.sigCaught | status.sigIgnored;
  const actions: SignalAction[] = [];
  for (let signal = 1; signal <= NSIG; signal++) {
    if (signal === SIGKILL || signal === SIGSTOP) continue;
    if (!(nonDefault & bit(signal)) && signal !== SIGCHLD) continue;
    const action = sigactionOf(remote, signal);
    if (action.handler !== 0n || action.flags !== 0n || action.mask !== 0n || action.restorer !== 0n) actions.push(action);
  }
  return actions;
}

/** A siginfo as the kernel makes one up for a pending bit with no queue entry (collect_signal()). */
export function noInfoSiginfo(signal: number, code: number = SI.USER): Buffer {
  const info = Buffer.alloc(SIGINFO_SIZE);
  info.writeInt32LE(signal, 0);
  info.writeInt32LE(code, 8);
  return info;
}

/** Queued entries, plus an entry for each pending bit the queue does not account for. */
function pendingOf(tid: number, shared: boolean, pendingBits: bigint): PendingSignal[] {
  const pending: PendingSignal[] = peekSiginfo(tid, shared).map((siginfo) => ({
    signal: siginfoHeader(siginfo).signo,
    siginfo,
    origin: 'queue' as const,
  }));
  const queued = pending.reduce((set, p) => set | bit(p.signal), 0n);
  for (let signal = 1; signal <= NSIG; signal++) {
    if (pendingBits & bit(signal) && !(queued & bit(signal))) pending.push({ signal, siginfo: noInfoSiginfo(signal), origin: 'no-info' });
  }
  return pending.filter((p) => p.signal !== SIGKILL && p.signal !== SIGSTOP);
}

export function capturePending(ctx: DumpContext): Pick<SignalsState, 'shared' | 'threads'> {
  const { pid, frozen } = ctx;
  const shared = pendingOf(frozen.leader.tid, true, readStatus(pid).sharedPending);
  const threads: SignalsState['threads'] = [];
  for (const thread of frozen.threads) {
    if (thread.gone) continue;
    let bits = 0n;
    try {
      bits = readStatus(pid, thread.tid).sigPending;
    } catch {
      // the thread's /proc entry is gone: it is exiting; its queue is read below or not at all
    }
    const pending = pendingOf(thread.tid, false, bits);
    // Signals an injected syscall dequeued during this dump, kept with their siginfo until
    // the injector's task queues them again.
    for (const held of thread.heldSignals) pending.push({ signal: held.signo, siginfo: held.siginfo, origin: 'dequeued' });
    if (pending.length > 0) threads.push({ tid: thread.tid, pending });
  }
  return { shared, threads };
}

/**
 * Adds signals that threads held in a signal-delivery-stop at the freeze (dequeued, so not
 * in any queue) to the front of their thread's queue: queued by restoreSignals(), they
 * reach their thread with their siginfo and no injected syscall dequeues them afterwards.
 */
export function addHeldSignals(state: SignalsState, held: Array<{ tid: number; signo: number; siginfo: Buffer }>): SignalsState {
  const threads = state.threads.map((t) => ({ tid: t.tid, pending: [...t.pending] }));
  for (const h of [...held].reverse()) {
    let entry = threads.find((t) => t.tid === h.tid);
    if (!entry) threads.push((entry = { tid: h.tid, pending: [] }));
    entry.pending.unshift({ signal: h.signo, siginfo: h.siginfo, origin: 'queue' });
  }
  return { ...state, threads };
}

/**
 * Actions and every pending signal, including one a thread still holds in the
 * signal-delivery-stop the freeze found it in (dequeued already, so in no queue: it goes
 * first in its thread's queue). A held signal moves to Tracee.heldSignals once a syscall
 * is injected in its thread, and is counted there.
 */
export function captureSignals(ctx: DumpContext): SignalsState {
  const held = ctx.threads
    .filter((t) => t.stopSiginfo && ctx.frozen.threads.find((f) => f.tid === t.tid && f.stop === 'signal' && f.stopSignal))
    .map((t) => ({ tid: t.tid, signo: t.stopSignal, siginfo: t.stopSiginfo! }));
  return addHeldSignals({ actions: captureActions(ctx.pid, ctx.remote), ...capturePending(ctx) }, held);
}

// ---------------------------------------------------------------------------------------
// restore

/**
 * Gives every signal its action: those in `actions`, and SIG_DFL (no flags) to every other
 * signal that the process being rebuilt (a stub) has caught or ignored, and to SIGCHLD.
 */
export function restoreActions(pid: number, remote: RemoteTask, actions: SignalAction[]): void {
  const status = readStatus(pid);
  const current = status.sigCaught | status.sigIgnored;
  const wanted = new Map(actions.map((a) => [a.signal, a]));
  for (let signal = 1; signal <= NSIG; signal++) {
    if (signal === SIGKILL || signal === SIGSTOP) continue;
    const action = wanted.get(signal);
    if (!action && !(current & bit(signal)) && signal !== SIGCHLD) continue;
    const raw = Buffer.alloc(KERNEL_SIGACTION_SIZE);
    if (action) {
      raw.writeBigUInt64LE(action.handler, 0);
      raw.writeBigUInt64LE(action.flags, 8);
      raw.writeBigUInt64LE(action.restorer, 16);
      raw.writeBigUInt64LE(action.mask, 24);
    }
    remote.resetScratch();
    remote.syscall(SYSCALL.rt_sigaction, [signal, remote.put(raw), 0, SIGSET_SIZE], `rt_sigaction(${signalName(signal)})`);
  }
}

/**
 * Runs `fn` while `remote`'s thread blocks every signal, then gives the thread its mask back
 * with an injected rt_sigprocmask (which, unlike PTRACE_SETSIGMASK, makes the kernel notice
 * a pending signal that the mask now lets through).
 */
export function withSignalsBlocked<T>(remote: RemoteTask, fn: () => T): T {
  remote.resetScratch();
  const all = Buffer.alloc(8);
  all.writeBigUInt64LE(ALL_SIGNALS, 0);
  const oldAt = remote.reserve(8);
  remote.syscall(SYSCALL.rt_sigprocmask, [SIG_SETMASK, remote.put(all), oldAt, SIGSET_SIZE], 'rt_sigprocmask (block all)');
  const old = remote.readMemory(oldAt, 8);
  const putBack = () => {
    remote.resetScratch();
    remote.syscall(SYSCALL.rt_sigprocmask, [SIG_SETMASK, remote.put(old), 0, SIGSET_SIZE], 'rt_sigprocmask (mask back)');
  };
  let result: T;
  try {
    result = fn();
  } catch (err) {
    try {
      putBack();
    } catch {
      // the first failure is the one to report
    }
    throw err;
  }
  putBack();
  return result;
}

/**
 * Runs `fn` with a RemoteTask in thread `tid` of the process being rebuilt: the context's
 * own for the main thread, one the orchestrator provides (ctx.threadRemote), or else a
 * temporary one on the stopped thread, sharing the main thread's scratch memory. Signals
 * the temporary injector dequeues are queued again, with their siginfo, when it closes.
 */
export function inThread<T>(ctx: RestoreContext, tid: number, fn: (remote: RemoteTask) => T): T {
  if (tid === ctx.remote.thread.tid) return fn(ctx.remote);
  const provided = ctx.threadRemote?.(tid);
  if (provided) return fn(provided);
  const thread = new Tracee(ctx.pid, tid);
  let remote: RemoteTask;
  try {
    remote = new RemoteTask(thread, ctx.remote.syscallAt, thread.getRegisters(), true);
  } catch (err) {
    if (err instanceof SysError && err.code === 'ESRCH') {
      throw new StasisError('SYSCALL_FAILED', `thread ${tid} of process ${ctx.pid} does not exist or is not stopped under our trace (threads must be restored first)`, {
        pid: ctx.pid,
        tid,
        cause: err,
      });
    }
    throw err;
  }
  remote.shareScratch(ctx.remote);
  try {
    return fn(remote);
  } finally {
    // Queues again, with their siginfo, any signal the injections dequeued.
    remote.close();
    ctx.remote.resetScratch();
  }
}

/** A copy of the siginfo fit to queue: the kernel-private word of SI_TIMER siginfo cleared. */
function queueable(p: PendingSignal): Buffer {
  if (p.siginfo.length !== SIGINFO_SIZE) throw new StasisError('BAD_IMAGE', `pending signal ${signalName(p.signal)}: siginfo of ${p.siginfo.length} bytes`);
  return queueableSiginfo(p.signal, p.siginfo);
}

function queueInThread(remote: RemoteTask, pid: number, tid: number, pending: PendingSignal[]): void {
  for (const p of pending) {
    remote.resetScratch();
    remote.syscall(SYSCALL.rt_tgsigqueueinfo, [pid, tid, p.signal, remote.put(queueable(p))], `rt_tgsigqueueinfo(${signalName(p.signal)}) to thread ${tid}`);
  }
}

/**
 * Queues the pending signals again. Other threads first, then the main thread's own and
 * the process-wide ones, so that no thread is resumed for an injected syscall after a
 * process-wide signal (which any thread may take) is queued.
 */
export function queuePendingSignals(ctx: RestoreContext, state: Pick<SignalsState, 'shared' | 'threads'>): void {
  const pid = ctx.pid;
  const mainTid = ctx.remote.thread.tid;
  for (const { tid, pending } of state.threads) {
    if (tid === mainTid || pending.length === 0) continue;
    inThread(ctx, tid, (remote) => withSignalsBlocked(remote, () => queueInThread(remote, pid, tid, pending)));
  }
  const own = state.threads.find((t) => t.tid === mainTid)?.pending ?? [];
  if (own.length === 0 && state.shared.length === 0) return;
  const remote = ctx.remote;
  withSignalsBlocked(remote, () => {
    queueInThread(remote, pid, mainTid, own);
    for (const p of state.shared) {
      remote.resetScratch();
      remote.syscall(SYSCALL.rt_sigqueueinfo, [pid, p.signal, remote.put(queueable(p))], `rt_sigqueueinfo(${signalName(p.signal)})`);
    }
  });
}

/**
 * Actions, then pending signals, all while the main thread blocks every signal: a signal
 * that becomes pending meanwhile (a timer armed just before) is not dequeued by one of
 * these injected syscalls but waits for the release.
 */
export function restoreSignals(ctx: RestoreContext, state: SignalsState): void {
  withSignalsBlocked(ctx.remote, () => {
    restoreActions(ctx.pid, ctx.remote, state.actions);
    queuePendingSignals(ctx, state);
  });
}

// ---------------------------------------------------------------------------------------
// check

export function checkSignals(pid: number): Finding[] {
  const status = readStatus(pid);
  const findings: Finding[] = [];
  const count = (mask: bigint) => [...mask.toString(2)].filter((c) => c === '1').length;
  findings.push({
    kind: 'signals',
    what: `${count(status.sigCaught)} handled, ${count(status.sigIgnored)} ignored, ${count(status.sharedPending | status.sigPending)} pending`,
    supported: true,
  });
  if ((status.sharedPending | status.sigPending) & bit(SIGKILL)) {
    findings.push({ kind: 'signals', what: 'SIGKILL pending', supported: false, reason: 'the process is being killed' });
  }
  return findings;
}

const NAMES: Record<number, string> = {
  1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 4: 'SIGILL', 5: 'SIGTRAP', 6: 'SIGABRT', 7: 'SIGBUS', 8: 'SIGFPE', 9: 'SIGKILL',
  10: 'SIGUSR1', 11: 'SIGSEGV', 12: 'SIGUSR2', 13: 'SIGPIPE', 14: 'SIGALRM', 15: 'SIGTERM', 16: 'SIGSTKFLT', 17: 'SIGCHLD',
  18: 'SIGCONT', 19: 'SIGSTOP', 20: 'SIGTSTP', 21: 'SIGTTIN', 22: 'SIGTTOU', 23: 'SIGURG', 24: 'SIGXCPU', 25: 'SIGXFSZ',
  26: 'SIGVTALRM', 27: 'SIGPROF', 28: 'SIGWINCH', 29: 'SIGIO', 30: 'SIGPWR', 31: 'SIGSYS',
};

export function signalName(signal: number): string {
  return NAMES[signal] ?? (signal >= 32 && signal <= NSIG ? `SIGRT${signal - 32}` : `signal ${signal}`);
}

export const signalsResource: CheckpointResource<SignalsState> = {
  name: 'signals',
  noteType: STASIS_NOTE.SIGNALS,
  version: 1,
  check: checkSignals,
  capture: captureSignals,
  restore: restoreSignals,
};
