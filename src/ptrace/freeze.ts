/**
 * Freezing a whole thread group without SIGSTOP: PTRACE_SEIZE + PTRACE_INTERRUPT each
 * task in /proc/PID/task, re-scanning until a scan finds no task we do not hold, so that
 * threads created while we were seizing are caught too (a clone that completes before
 * its parent stops puts the child in /proc/PID/task first).
 */
import { existsSync } from 'node:fs';
import { listTasks, readStatus } from '../proc/status.js';
import { SysError, ESRCH, EPERM } from '../sys/errno.js';
import { StasisError } from '../errors.js';
import { Tracee } from './tracee.js';

export class FrozenProcess {
  readonly pid: number;
  /** Seized threads in /proc/PID/task order, the leader first. */
  readonly threads: Tracee[];
  readonly frozenAt: bigint;
  /** When the last thread was seen stopped: frozenAt to here is the skew between threads' stops. */
  readonly allStoppedAt: bigint;
  releasedAt: bigint | null = null;

  constructor(pid: number, threads: Tracee[], frozenAt: bigint, allStoppedAt: bigint) {
    this.pid = pid;
    this.threads = threads;
    this.frozenAt = frozenAt;
    this.allStoppedAt = allStoppedAt;
  }

  /** Milliseconds from the first PTRACE_INTERRUPT until every thread had stopped. */
  get stopSkewMs(): number {
    return Number(this.allStoppedAt - this.frozenAt) / 1e6;
  }

  get leader(): Tracee {
    return this.threads.find((t) => t.tid === this.pid) ?? this.threads[0];
  }

  /** Detach every thread; each resumes exactly where it stopped. */
  release(): void {
    let first: unknown = null;
    for (const thread of this.threads) {
      try {
        thread.detach();
      } catch (err) {
        first ??= err;
      }
    }
    this.releasedAt = process.hrtime.bigint();
    if (first) throw first;
  }

  /** Milliseconds between the first PTRACE_INTERRUPT and the last detach. */
  get pauseMs(): number {
    return this.releasedAt === null ? NaN : Number(this.releasedAt - this.frozenAt) / 1e6;
  }
}

/** Refuse early, with the reason, what ptrace would refuse with a bare EPERM or ESRCH. */
export function checkTraceable(pid: number): void {
  if (!Number.isInteger(pid) || pid <= 0) throw new StasisError('USAGE', `invalid pid '${pid}'`);
  if (!existsSync(`/proc/${pid}`)) throw new StasisError('NO_SUCH_PROCESS', `no process with pid ${pid}`, { pid });
  let status;
  try {
    status = readStatus(pid);
  } catch {
    throw new StasisError('NO_SUCH_PROCESS', `no process with pid ${pid}`, { pid });
  }
  if (status.tgid !== pid) {
    throw new StasisError('USAGE', `${pid} is a thread of process ${status.tgid}; give the process id`, { pid });
  }
  if (status.state === 'Z' || status.state === 'X') {
    throw new StasisError('ZOMBIE', `process ${pid} (${status.name}) is a zombie: it has exited and has no memory left to dump`, { pid });
  }
  if (status.tracerPid !== 0 && status.tracerPid !== process.pid) {
    throw new StasisError('ALREADY_TRACED', `process ${pid} (${status.name}) is already traced by pid ${status.tracerPid}; only one tracer may attach`, { pid });
  }
}

/**
 * Seizing costs more than stopping (ptrace_attach takes the target's locks), so every
 * thread is seized first while the process runs on, and the pause starts only with the
 * PTRACE_INTERRUPTs that follow. Threads born in between are caught by the re-scan.
 */
export function freeze(pid: number): FrozenProcess {
  checkTraceable(pid);
  const held = new Map<number, Tracee>();
  const seizeNew = (): Tracee[] => {
    let tids: number[];
    try {
      tids = listTasks(pid);
    } catch (err) {
      throw new StasisError('TARGET_EXITED', `process ${pid} exited while it was being frozen`, { pid, cause: err });
    }
    const fresh: Tracee[] = [];
    for (const tid of tids) {
      if (held.has(tid)) continue;
      const thread = new Tracee(pid, tid);
      try {
        thread.seize();
      } catch (err) {
        if (err instanceof SysError && err.errno === ESRCH) continue; // the thread exited meanwhile
        throw seizeFailure(pid, tid, err);
      }
      held.set(tid, thread);
      fresh.push(thread);
    }
    return fresh;
  };
  const stop = (threads: Tracee[]): void => {
    for (const thread of threads) {
      try {
        thread.interrupt();
      } catch (err) {
        if (!(err instanceof SysError && err.errno === ESRCH)) throw err;
      }
    }
    for (const thread of threads) if (!thread.waitForStop()) held.delete(thread.tid);
    allStoppedAt = process.hrtime.bigint();
  };

  let frozenAt = 0n;
  let allStoppedAt = 0n;
  try {
    let fresh = seizeNew();
    fresh[0]?.warmUp();
    frozenAt = process.hrtime.bigint();
    while (fresh.length > 0) {
      stop(fresh);
      fresh = seizeNew();
    }
    if (!held.has(pid)) throw new StasisError('TARGET_EXITED', `process ${pid} exited while it was being frozen`, { pid });
  } catch (err) {
    for (const thread of held.values()) {
      try {
        thread.detach();
      } catch {
        // Best effort: the error being reported matters more.
      }
    }
    throw err;
  }
  const threads = [...held.values()].sort((a, b) => (a.tid === pid ? -1 : b.tid === pid ? 1 : a.tid - b.tid));
  return new FrozenProcess(pid, threads, frozenAt, allStoppedAt);
}

function seizeFailure(pid: number, tid: number, err: unknown): StasisError {
  if (err instanceof SysError && err.errno === EPERM) {
    let tracer = 0;
    try {
      tracer = readStatus(pid, tid).tracerPid;
    } catch {
      // fall through to the permission message
    }
    if (tracer !== 0) {
      return new StasisError('ALREADY_TRACED', `thread ${tid} of process ${pid} is already traced by pid ${tracer}`, { pid, tid, cause: err });
    }
    return new StasisError(
      'PERMISSION_DENIED',
      `not permitted to trace process ${pid} (ptrace EPERM: another user's process, a non-dumpable one, or kernel.yama.ptrace_scope forbids it)`,
      { pid, tid, cause: err },
    );
  }
  return new StasisError('SYSCALL_FAILED', `could not seize thread ${tid} of process ${pid}: ${(err as Error).message}`, { pid, tid, cause: err });
}
