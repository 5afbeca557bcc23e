/**
 * Per-thread state that a core (and later a checkpoint) records: general registers,
 * FPU/SSE and the XSAVE area, signal mask, the thread's own pending signals, the
 * siginfo of the stop, name and CPU times. Captured while the thread is stopped.
 */
import { readFileSync } from 'node:fs';
import { RemoteTask, SYSCALL, PROT, MAP } from '../ptrace/remote.js';
import { pendingRestartAsInterrupted } from '../ptrace/inject.js';
import { xstateForThisCpu, holdsDynamicState } from '../image/xstate.js';
import { StasisError } from '../errors.js';
import type { RestoreContext } from './resource.js';
import { getRseqConfiguration, setRegset, setSignalMask, NT_X86_XSTATE, NT_PRFPREG } from '../sys/ptrace.js';
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
  return frozen.threads.map((thread) => {
    const xstate = thread.getXstate();
    return {
      tid: thread.tid,
      regs: thread.getRegisters(),
      fpregs: xstate ? fxsaveOf(xstate) : thread.getFpRegisters(),
      xstate,
      sigmask: thread.getSignalMask(),
      sigpending: 0n,
      // Only a signal-delivery-stop has a siginfo worth keeping; ours are synthetic.
      stopSiginfo: thread.stop === 'signal' ? thread.getStopSiginfo() : null,
      stopSignal: thread.stopSignal,
      name: '',
      utimeTicks: 0,
      stimeTicks: 0,
    };
  });
}

/**
 * NT_PRFPREG without another ptrace call: the XSAVE area starts with the same 512-byte
 * FXSAVE image, except that the kernel puts xcr0 and its software bytes in sw_reserved
 * (bytes 464-511), which the FP regset leaves zero.
 */
function fxsaveOf(xstate: Buffer): Buffer {
  const fx = Buffer.from(xstate.subarray(0, 512));
  fx.fill(0, 464);
  return fx;
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

/**
 * Per-thread kernel state a restart needs beyond what the core's notes hold. Each field
 * is per thread in the kernel (task_struct), so each is read in, and later written by,
 * the thread itself through an injected syscall, except rseq (read by ptrace).
 */
export interface ThreadRestartState {
  tid: number;
  name: string;
  /** user_regs_struct bytes at the freeze (a pending restart_syscall in its interrupted form). */
  regs: Buffer;
  /** The XSAVE area in this CPU's own layout (what PTRACE_SETREGSET takes back). */
  xstate: Buffer | null;
  fpregs: Buffer;
  sigmask: bigint;
  /** set_tid_address() value: the futex glibc clears and wakes when the thread exits (pthread_join). */
  clearChildTid: bigint;
  robustList: { head: bigint; length: bigint };
  altstack: { sp: bigint; flags: number; size: bigint };
  rseq: { pointer: bigint; size: number; signature: number } | null;
}

const PR_GET_TID_ADDRESS = 40;
const PR_SET_NAME = 15;
const STACK_T_SIZE = 24;
const SS_DISABLE = 2;

export function captureThreadRestartState(frozen: FrozenProcess, threads: ThreadState[], leader: RemoteTask): ThreadRestartState[] {
  return threads.map((state) => {
    const thread = frozen.threads.find((t) => t.tid === state.tid)!;
    const remote = thread === leader.thread ? leader : new RemoteTask(thread, leader.syscallAt, state.regs);
    if (remote !== leader) remote.shareScratch(leader);
    try {
      remote.resetScratch();
      const tidAddress = remote.reserve(8);
      remote.syscall(SYSCALL.prctl, [PR_GET_TID_ADDRESS, tidAddress, 0, 0, 0], `prctl(PR_GET_TID_ADDRESS) in thread ${state.tid}`);
      const robust = remote.reserve(16);
      remote.syscall(SYSCALL.get_robust_list, [state.tid, robust, robust + 8n], `get_robust_list of thread ${state.tid}`);
      const stack = remote.reserve(STACK_T_SIZE);
      remote.syscall(SYSCALL.sigaltstack, [0, stack], `sigaltstack in thread ${state.tid}`);
      const robustBytes = remote.readMemory(robust, 16);
      const stackBytes = remote.readMemory(stack, STACK_T_SIZE);
      const rseq = getRseqConfiguration(state.tid);
      return {
        tid: state.tid,
        name: state.name,
        regs: Buffer.from(pendingRestartAsInterrupted(state.regs, (at, length) => remote.readMemory(at, length)).bytes),
        xstate: state.xstate,
        fpregs: state.fpregs,
        sigmask: state.sigmask,
        clearChildTid: remote.readMemory(tidAddress, 8).readBigUInt64LE(0),
        robustList: { head: robustBytes.readBigUInt64LE(0), length: robustBytes.readBigUInt64LE(8) },
        altstack: { sp: stackBytes.readBigUInt64LE(0), flags: stackBytes.readInt32LE(8), size: stackBytes.readBigUInt64LE(16) },
        rseq: rseq.pointer !== 0n ? { pointer: rseq.pointer, size: rseq.size, signature: rseq.signature } : null,
      };
    } finally {
      if (remote !== leader) remote.close();
    }
  });
}

/**
 * A thread's saved XSAVE area for this CPU, which may differ from the one it was saved on
 * (another size, other offsets, more components: see xstateForThisCpu). State in a
 * component this CPU lacks cannot be put back: refused unless told to ignore the CPU.
 */
function xstateHere(ctx: RestoreContext, tid: number, saved: Buffer, current: Buffer): Buffer {
  let relaid;
  try {
    relaid = xstateForThisCpu(saved, current);
  } catch (err) {
    throw new StasisError('CPU_MISMATCH', `thread ${tid}: ${(err as Error).message}`, { pid: ctx.pid, tid });
  }
  if (relaid.lostComponents.length > 0) {
    const what = `thread ${tid} has register state in XSAVE components ${relaid.lostComponents.join(', ')}, which this CPU does not have`;
    if (!ctx.ignoreCpu) throw new StasisError('CPU_MISMATCH', `${what}; --ignore-cpu restores it without them`, { pid: ctx.pid, tid });
    ctx.warnings.push(`${what}: dropped (--ignore-cpu)`);
  }
  return relaid.area;
}

/**
 * `ldtilecfg (%rdi); tilezero %tmm0; tilerelease; syscall`: AMX instructions that touch
 * tile data, then the syscall the injector waits for. rdi points at a tile configuration
 * (palette 1, tmm0 16 rows of 64 bytes); tilerelease leaves the tiles in their initial state.
 */
const TOUCH_TILES_THEN_SYSCALL = Buffer.from([0xc4, 0xe2, 0x78, 0x49, 0x07, 0xc4, 0xe2, 0x7b, 0x49, 0xc0, 0xc4, 0xe2, 0x78, 0x49, 0xc0, 0x0f, 0x05]);

function tileConfig(): Buffer {
  const config = Buffer.alloc(64);
  config[0] = 1; // palette
  config.writeUInt16LE(64, 16); // colsb[0]
  config[48] = 16; // rows[0]
  return config;
}

/**
 * A thread's XSAVE buffer only grows to hold AMX tile data when the thread first executes
 * an AMX instruction (the #NM of XFD makes the kernel reallocate it, if the process has
 * the permission); until then PTRACE_SETREGSET refuses tile state with EINVAL. So the
 * thread runs a few AMX instructions (its tile state is set right after) on a page of its
 * own, followed by a harmless getpid for the injector to stop on.
 */
function enableDynamicFeatures(remote: RemoteTask): void {
  const page = remote.syscall(SYSCALL.mmap, [0, 4096, PROT.READ | PROT.EXEC, MAP.PRIVATE | MAP.ANONYMOUS, -1, 0], `mmap of a page for an AMX instruction in thread ${remote.thread.tid}`);
  const syscallAt = remote.syscallAt;
  try {
    remote.writeMemory(page, TOUCH_TILES_THEN_SYSCALL);
    remote.resetScratch();
    const config = remote.put(tileConfig());
    remote.retarget(page);
    remote.syscall(SYSCALL.getpid, [config], `AMX instructions in thread ${remote.thread.tid}, to enable its tile state`);
  } catch (err) {
    const tid = remote.thread.tid;
    throw new StasisError('INJECTION_FAILED', `thread ${tid} holds AMX tile state, but the process may not use AMX here (${(err as Error).message})`, { pid: remote.pid, tid, cause: err });
  } finally {
    remote.retarget(syscallAt);
    remote.syscall(SYSCALL.munmap, [page, 4096], `munmap of the AMX instruction's page`);
  }
}

/**
 * Give a restored thread (already created with its TID, inside the restored memory) its
 * per-thread kernel state. Its general registers are set last, by the orchestrator.
 */
export function restoreThreadState(ctx: RestoreContext, remote: RemoteTask, state: ThreadRestartState): void {
  const tid = state.tid;
  remote.resetScratch();
  remote.syscall(SYSCALL.set_tid_address, [state.clearChildTid], `set_tid_address in thread ${tid}`);
  if (state.robustList.head !== 0n) {
    remote.syscall(SYSCALL.set_robust_list, [state.robustList.head, state.robustList.length], `set_robust_list in thread ${tid}`);
  }
  const stack = Buffer.alloc(STACK_T_SIZE);
  stack.writeBigUInt64LE(state.altstack.sp, 0);
  // SS_ONSTACK is a report, not a request: the kernel takes 0 or SS_DISABLE (and SS_AUTODISARM).
  stack.writeInt32LE(state.altstack.flags & ~1, 8);
  stack.writeBigUInt64LE(state.altstack.size, 16);
  if (!(state.altstack.flags & SS_DISABLE)) {
    // sigaltstack() refuses (EPERM) while the caller's sp is on the current alternate stack.
    remote.syscall(SYSCALL.sigaltstack, [remote.put(stack), 0], `sigaltstack in thread ${tid}`, { rsp: 0n });
  }
  if (state.rseq) {
    remote.syscall(SYSCALL.rseq, [state.rseq.pointer, state.rseq.size, 0, state.rseq.signature], `rseq registration of thread ${tid}`);
  }
  const current = remote.thread.getXstate();
  if (state.xstate && current) {
    const area = xstateHere(ctx, tid, state.xstate, current);
    if (holdsDynamicState(area)) enableDynamicFeatures(remote);
    try {
      setRegset(tid, NT_X86_XSTATE, area);
    } catch (err) {
      throw new StasisError('SYSCALL_FAILED', `thread ${tid}: the kernel refused its XSAVE state (${(err as Error).message.replace(/^.*: /, '')})`, { pid: ctx.pid, tid, cause: err });
    }
  } else {
    setRegset(tid, NT_PRFPREG, state.fpregs);
  }
  setSignalMask(tid, state.sigmask);
  // A task's comm can only be set by itself (writing /proc/PID/task/TID/comm of another
  // process is EINVAL): PR_SET_NAME in the thread.
  if (state.name) {
    remote.resetScratch();
    remote.syscall(SYSCALL.prctl, [PR_SET_NAME, remote.putString(state.name.slice(0, 15)), 0, 0, 0], `prctl(PR_SET_NAME) in thread ${tid}`);
  }
}
