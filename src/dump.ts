/**
 * `stasis dump`: checkpoint a process into an ELF core image with stasis notes.
 *
 *   check every resource (refuse before freezing) -> freeze -> capture threads, mm and
 *   each resource -> [--leave-running: fork a copy-on-write snapshot, release] -> plan
 *   memory -> write the image (synced, with checksums) -> kill the process.
 *
 * Any failure before the image is safely on disk releases the process as it was.
 */
import { resolve } from 'node:path';
import { openSync, fsyncSync, closeSync } from 'node:fs';
import { dirname } from 'node:path';
import { collectFindings, refuseUnsupported } from './check.js';
import { checkOutputDirectory } from './output.js';
import { exitedOr, beforeFreezing } from './core.js';
import { freeze, checkTraceable, type FrozenProcess } from './ptrace/freeze.js';
import { findSyscallInstruction } from './ptrace/inject.js';
import { RemoteTask } from './ptrace/remote.js';
import { pinToOneCpu } from './ptrace/pin.js';
import { readMaps, readSmaps } from './proc/maps.js';
import { kill, SIG } from './sys/process.js';
import { waitTask, WAIT } from './sys/ptrace.js';
import { captureThreads, describeThreads, captureThreadRestartState } from './resources/threads.js';
import { captureProcessInfo } from './resources/process-info.js';
import { planSegments, mappingsSnapshotMisses, copyFromTarget, type CopiedMapping } from './resources/memory.js';
import { takeSnapshot, discardSnapshot, type Snapshot } from './ptrace/snapshot.js';
import { captureMappings } from './resources/mappings.js';
import { mmResource } from './resources/mm.js';
import { RESOURCES } from './resources/index.js';
import type { DumpContext } from './resources/resource.js';
import { buildCoreNotes } from './image/core-notes.js';
import { encodeStasisNote, STASIS_NOTE } from './image/stasis-notes.js';
import { writeCore, type Progress } from './image/core-writer.js';
import { PhaseTimer } from './timing.js';

export interface CheckpointOptions {
  output: string;
  /** Keep the process running after the dump (default: kill it once the image is synced). */
  leaveRunning?: boolean;
  /** Restrict the process to one CPU while it is frozen (see ptrace/pin.ts). */
  pin?: boolean;
  onProgress?: Progress;
}

export interface CheckpointResult {
  file: string;
  bytes: number;
  storedBytes: number;
  pid: number;
  threads: number;
  mappings: number;
  /** How long the process was frozen: until its snapshot was taken with --leave-running, else until it was killed. */
  frozenMs: number;
  /** From the first interrupt until every thread had stopped. */
  stopSkewMs: number;
  totalMs: number;
  leftRunning: boolean;
  phasesMs: Record<string, number>;
}

/** Version of the image layout as a whole (notes may add their own versions). */
export const IMAGE_VERSION = 1;

export function checkpoint(pid: number, options: CheckpointOptions): CheckpointResult {
  const started = process.hrtime.bigint();
  const timer = new PhaseTimer();
  const output = resolve(options.output);
  checkTraceable(pid);
  // A process that goes on after the dump is released as soon as its state is captured and
  // a copy-on-write snapshot holds its memory (as for `stasis core`). One that is killed
  // after stays frozen until the image is safe, so that a failed dump leaves it as it was.
  const useSnapshot = options.leaveRunning === true;
  const { info, syscallAt, smapsBefore } = beforeFreezing(pid, () => {
    refuseUnsupported(pid, collectFindings(pid));
    checkOutputDirectory(output);
    return {
      info: captureProcessInfo(pid),
      syscallAt: findSyscallInstruction(pid),
      smapsBefore: useSnapshot ? readSmaps(pid) : [],
    };
  });
  const missed = mappingsSnapshotMisses(smapsBefore);
  timer.mark('check');

  let frozen: FrozenProcess | null = null;
  let snapshot: Snapshot | null = null;
  let frozenMs = 0;
  const pinned = options.pin ? pinToOneCpu(pid) : null;
  try {
    frozen = freeze(pid);
    timer.mark('freeze');
    const threads = captureThreads(frozen);
    describeThreads(pid, threads);
    // Read before the scratch mapping exists: it must not be part of the image.
    const maps = readMaps(pid);
    const remote = new RemoteTask(frozen.leader, syscallAt, threads[0].regs);
    let captured: Array<{ type: number; version: number; state: unknown }>;
    let threadStates;
    try {
      remote.mapScratch();
      const ctx: DumpContext = { pid, frozen, threads, maps, remote };
      threadStates = captureThreadRestartState(frozen, threads, remote);
      captured = [mmResource, ...RESOURCES].map((resource) => ({ type: resource.noteType, version: resource.version, state: resource.capture(ctx) }));
      remote.unmapScratch();
    } finally {
      remote.close();
    }
    let copied = new Map<number, CopiedMapping>();
    if (useSnapshot) {
      const regs = new Map(threads.map((t) => [t.tid, t.regs]));
      snapshot = takeSnapshot(frozen, (tid) => regs.get(tid)!, syscallAt);
      copied = copyFromTarget(pid, missed);
      frozen.release();
      pinned?.unpin();
      frozenMs = frozen.pauseMs;
    }
    timer.mark('capture');
    const source = snapshot?.childPid ?? pid;
    const segments = planSegments(maps, source, copied, 'checkpoint', smapsBefore);
    const mappings = captureMappings(source, segments);
    const notes = [
      ...buildCoreNotes(info, threads, maps),
      encodeStasisNote(STASIS_NOTE.THREADS, 1, { imageVersion: IMAGE_VERSION, pid, stopped: info.state === 'T', threads: threadStates }),
      encodeStasisNote(STASIS_NOTE.MEMORY, 1, mappings),
      ...captured.map((c) => encodeStasisNote(c.type, c.version, c.state)),
    ];
    timer.mark('plan');
    const written = writeCore(output, notes, segments, { sync: true, checksums: true, onProgress: options.onProgress });
    syncDirectory(dirname(output));
    timer.mark('write');
    if (!useSnapshot) {
      killFrozen(frozen);
      frozenMs = Number(process.hrtime.bigint() - frozen.frozenAt) / 1e6;
    }
    removeSnapshot();
    timer.mark('finish');
    return {
      file: written.path,
      bytes: written.bytes,
      storedBytes: written.storedBytes,
      pid,
      threads: threads.length,
      mappings: segments.length,
      frozenMs,
      stopSkewMs: frozen.stopSkewMs,
      totalMs: Number(process.hrtime.bigint() - started) / 1e6,
      leftRunning: options.leaveRunning ?? false,
      phasesMs: timer.phases,
    };
  } catch (err) {
    try {
      removeSnapshot();
    } catch {
      // the first error is the one to report
    }
    throw exitedOr(pid, err);
  } finally {
    if (frozen && !frozen.releasedAt) frozen.release();
    pinned?.unpin();
  }

  function removeSnapshot(): void {
    if (!snapshot) return;
    const child = snapshot;
    snapshot = null;
    discardSnapshot(pid, child);
  }
}

/** The rename of the image must survive a crash too. */
function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * SIGKILL a frozen process and collect each thread's exit as its tracer: the other
 * threads first, since the leader's exit is reported only after theirs (__WALL).
 */
export function killFrozen(frozen: FrozenProcess): void {
  kill(frozen.pid, SIG.SIGKILL);
  const ordered = [...frozen.threads.filter((t) => t.tid !== frozen.pid), ...frozen.threads.filter((t) => t.tid === frozen.pid)];
  for (const thread of ordered) {
    try {
      for (;;) {
        const status = waitTask(thread.tid, WAIT.ALL);
        if (!status || status.kind === 'exited' || status.kind === 'killed') break;
      }
    } catch {
      // ECHILD: already collected (or reaped by its parent)
    }
    thread.gone = true;
  }
  frozen.releasedAt = process.hrtime.bigint();
}
