/**
 * `stasis core`: a live core dump. The process is stopped only while its threads' state
 * is read and a copy-on-write snapshot is forked from it; memory is then written from the
 * snapshot while the process runs on. With `snapshot: false`, memory is read from the
 * stopped process itself (stop-copy-release, as gcore does).
 */
import { resolve } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { checkOutputDirectory } from './output.js';
import { StasisError } from './errors.js';
import { PhaseTimer } from './timing.js';
import { SysError, ESRCH } from './sys/errno.js';
import { freeze, checkTraceable, type FrozenProcess } from './ptrace/freeze.js';
import { findSyscallInstruction } from './ptrace/inject.js';
import { takeSnapshot, discardSnapshot, type Snapshot } from './ptrace/snapshot.js';
import { readMaps, readSmaps, type Mapping } from './proc/maps.js';
import { captureThreads, describeThreads, type ThreadState } from './resources/threads.js';
import { captureProcessInfo } from './resources/process-info.js';
import { mappingsSnapshotMisses, copyFromTarget, layoutAtFork, planSegments, type CopiedMapping } from './resources/memory.js';
import { buildCoreNotes } from './image/core-notes.js';
import { writeCore, type Progress } from './image/core-writer.js';

export interface CoreDumpOptions {
  /** Output path; default `core.PID` in the current directory. */
  output?: string;
  /** Fork a copy-on-write snapshot and release the process before writing (default true). */
  snapshot?: boolean;
  onProgress?: Progress;
}

export interface CoreDumpResult {
  file: string;
  /** Apparent size of the core file. */
  bytes: number;
  /** Memory bytes actually stored (the rest of the file is holes). */
  storedBytes: number;
  threads: number;
  mappings: number;
  /** How long the process was stopped, first interrupt to last release. */
  pauseMs: number;
  totalMs: number;
  snapshot: boolean;
  /** Milliseconds per phase: prepare, freeze, capture, snapshot, release, plan, write, cleanup. */
  phasesMs: Record<string, number>;
}

export function coreDump(pid: number, options: CoreDumpOptions = {}): CoreDumpResult {
  const started = process.hrtime.bigint();
  const timer = new PhaseTimer();
  const output = resolve(options.output ?? `core.${pid}`);
  const useSnapshot = options.snapshot ?? true;
  checkTraceable(pid);
  checkOutputDirectory(output);
  const { info, syscallAt, missed } = beforeFreezing(pid, () => ({
    info: captureProcessInfo(pid),
    syscallAt: useSnapshot ? findSyscallInstruction(pid) : 0n,
    missed: useSnapshot ? mappingsSnapshotMisses(readSmaps(pid)) : [],
  }));
  timer.mark('prepare');

  let frozen: FrozenProcess | null = null;
  let snapshot: Snapshot | null = null;
  const cleanup = (): void => {
    if (frozen && !frozen.releasedAt) frozen.release();
    if (snapshot) {
      const child = snapshot;
      snapshot = null;
      discardSnapshot(pid, child);
    }
  };
  try {
    frozen = freeze(pid);
    timer.mark('freeze');
    const threads = captureThreads(frozen);
    let maps: Mapping[];
    let copied = new Map<number, CopiedMapping>();
    if (useSnapshot) {
      timer.mark('capture');
      const regs = new Map(threads.map((t) => [t.tid, t.regs]));
      snapshot = takeSnapshot(frozen, (tid) => regs.get(tid)!, syscallAt);
      copied = copyFromTarget(pid, missed);
      timer.mark('snapshot');
      frozen.release();
      timer.mark('release');
      maps = layoutAtFork(readMaps(snapshot.childPid), missed.filter((m) => m.vmFlags.has('dc')));
    } else {
      maps = readMaps(pid);
      timer.mark('capture');
    }
    describeThreads(pid, threads);
    const segments = planSegments(maps, snapshot?.childPid ?? pid, copied);
    const notes = buildCoreNotes(info, threads, maps);
    timer.mark('plan');
    const written = writeCore(output, notes, segments, { onProgress: options.onProgress });
    timer.mark('write');
    cleanup();
    timer.mark('cleanup');
    return {
      file: written.path,
      bytes: written.bytes,
      storedBytes: written.storedBytes,
      threads: threads.length,
      mappings: segments.length,
      pauseMs: frozen.pauseMs,
      totalMs: Number(process.hrtime.bigint() - started) / 1e6,
      snapshot: useSnapshot,
      phasesMs: timer.phases,
    };
  } catch (err) {
    try {
      cleanup();
    } catch {
      // The first error is the one to report; the snapshot child dies with us anyway.
    }
    throw exitedOr(pid, err);
  }
}

/**
 * What is read of the process before it is frozen: it may exit meanwhile (its /proc files
 * vanish, or read empty once it is a zombie), which is reported as its exit.
 */
export function beforeFreezing<T>(pid: number, read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw exitedOr(pid, err, 'the checks before the freeze');
  }
}

/**
 * A failure caused by the process going away (ESRCH from ptrace, ENOENT/ESRCH from
 * /proc/PID/...) is reported as that, whatever call noticed it first.
 */
export function exitedOr(pid: number, err: unknown, during = 'the dump'): unknown {
  if (err instanceof StasisError && err.code !== 'SYSCALL_FAILED' && err.code !== 'INJECTION_FAILED') return err;
  if ((err instanceof SysError && err.errno === ESRCH) || hasExited(pid)) {
    return new StasisError('TARGET_EXITED', `process ${pid} exited during ${during}`, { pid, cause: err });
  }
  return err;
}

/** Gone, or a zombie (its /proc entries stay, but its mm and fds are gone). */
function hasExited(pid: number): boolean {
  if (!existsSync(`/proc/${pid}/task`)) return true;
  try {
    return /^State:\s+[ZX]/m.test(readFileSync(`/proc/${pid}/status`, 'latin1'));
  } catch {
    return true;
  }
}
