/**
 * A copy-on-write snapshot of a frozen process: an injected clone() with fork semantics
 * (flags 0, so exit signal 0: the parent gets no SIGCHLD) creates a child that shares
 * every private page copy-on-write and never runs a user instruction, because
 * PTRACE_O_TRACECLONE attaches it to us stopped. The target is released right after; its
 * memory is then read at leisure from /proc/CHILD/mem (process_vm_readv would unshare
 * every page it touches). Removing the snapshot: SIGKILL the child, collect it as its
 * tracer, then reap the zombie it leaves with an injected wait4() in the target.
 */
import { PTRACE_O, WAIT, waitTask } from '../sys/ptrace.js';
import { kill, SIG } from '../sys/process.js';
import { SysError, ESRCH, ECHILD } from '../sys/errno.js';
import { StasisError } from '../errors.js';
import type { FrozenProcess } from './freeze.js';
import { Tracee } from './tracee.js';
import { isInSyscall } from './inject.js';
import { RemoteTask, SYSCALL } from './remote.js';
import type { Registers } from '../sys/regs.js';
import { listTasks, readStatus } from '../proc/status.js';

const WALL = 0x40000000;

export interface Snapshot {
  /** The stopped copy-on-write child holding the process's memory as it was at the freeze. */
  childPid: number;
  /** The syscall instruction used in the target, reused to reap the child. */
  syscallAt: bigint;
}

/** Pick the thread to fork from: one stopped by our interrupt outside a syscall, if there is one. */
function injectionThread(frozen: FrozenProcess, regsOf: (tid: number) => Registers): Tracee {
  const candidates = frozen.threads.filter((t) => t.stop === 'interrupt' && !t.gone);
  return candidates.find((t) => !isInSyscall(regsOf(t.tid))) ?? candidates[0] ?? frozen.threads[0];
}

/** `syscallAt`: a syscall instruction in the target (findSyscallInstruction, looked up before the freeze). */
export function takeSnapshot(frozen: FrozenProcess, regsOf: (tid: number) => Registers, syscallAt: bigint): Snapshot {
  const thread = injectionThread(frozen, regsOf);
  thread.setOptions(PTRACE_O.TRACESYSGOOD | PTRACE_O.TRACECLONE);
  // A RemoteTask rather than a bare injector: a signal our syscall dequeues is queued again.
  const remote = new RemoteTask(thread, syscallAt, regsOf(thread.tid));
  let result;
  try {
    result = remote.syscallRaw(SYSCALL.clone, [0, 0, 0, 0, 0]);
  } finally {
    remote.close();
  }
  thread.setOptions(PTRACE_O.TRACESYSGOOD);
  if (result.value < 0n) {
    throw new StasisError('INJECTION_FAILED', `fork of process ${frozen.pid} for the snapshot failed: errno ${-result.value}`, { pid: frozen.pid, tid: thread.tid });
  }
  const childPid = result.children[0] ?? Number(result.value);
  // The auto-attached child reports its first stop before it can run anything.
  const first = waitTask(childPid, WAIT.ALL);
  if (!first || first.kind !== 'stopped') {
    throw new StasisError('INJECTION_FAILED', `the snapshot child ${childPid} of process ${frozen.pid} did not stop`, { pid: frozen.pid });
  }
  return { childPid, syscallAt };
}

/** Kill the snapshot child and collect it as its tracer; it stays a zombie of the target until reaped. */
export function killSnapshot(snapshot: Snapshot): void {
  try {
    kill(snapshot.childPid, SIG.SIGKILL);
  } catch (err) {
    if (!(err instanceof SysError && err.errno === ESRCH)) throw err;
  }
  for (;;) {
    const status = waitTask(snapshot.childPid, WAIT.ALL);
    if (!status || status.kind === 'exited' || status.kind === 'killed') return;
  }
}

/**
 * Stop one thread of the target again just long enough to run wait4(child, NULL, __WALL, NULL)
 * in it (a zombie with exit signal 0 is only reaped by a __WALL/__WCLONE wait of its parent).
 */
export function reapSnapshotZombie(pid: number, snapshot: Snapshot): void {
  // Any live thread can wait for the child (children belong to the thread group); the
  // leader may itself be a zombie after pthread_exit().
  let tasks: number[];
  try {
    tasks = listTasks(pid);
  } catch {
    return; // the target has exited: its zombie child went with it
  }
  const tid = tasks.find((t) => {
    try {
      return readStatus(pid, t).state !== 'Z';
    } catch {
      return false;
    }
  });
  if (tid === undefined) return;
  const thread = new Tracee(pid, tid);
  try {
    thread.seizeAndInterrupt();
  } catch (err) {
    if (err instanceof SysError && err.errno === ESRCH) return; // target gone: the zombie went with it
    throw err;
  }
  try {
    if (!thread.waitForStop()) return;
    const remote = new RemoteTask(thread, snapshot.syscallAt, thread.getRegisters());
    let result;
    try {
      result = remote.syscallRaw(SYSCALL.wait4, [snapshot.childPid, 0, WALL, 0]);
    } finally {
      remote.close();
    }
    if (result.value < 0n && result.value !== BigInt(-ECHILD)) {
      throw new StasisError('INJECTION_FAILED', `could not reap the snapshot child ${snapshot.childPid} in process ${pid}: errno ${-result.value}`, { pid });
    }
  } finally {
    thread.detach();
  }
}

/** Remove a snapshot without a trace: kill the child, then reap the zombie it leaves in the target. */
export function discardSnapshot(pid: number, snapshot: Snapshot): void {
  killSnapshot(snapshot);
  reapSnapshotZombie(pid, snapshot);
}
