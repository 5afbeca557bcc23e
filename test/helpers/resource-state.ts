/**
 * The harness of the per-resource tests (signals, timers, attributes): capture a
 * resource's state from a real process and restore it into a stub or a blank process.
 *
 * - spawnTarget(t, name, args): builds test/targets/NAME.c, starts it with posix_spawn
 *   (never child_process: the tracer must not be a libuv-managed parent) with a report
 *   file as its first argument, and waits for its "ready" line. The returned reap() (also
 *   registered with t.after) kills it by PID and reaps every thread.
 * - readLines(file): the non-empty lines of a report file ([] while it does not exist).
 * - startDump(pid): freezes as the dump does, with a RemoteTask and scratch memory in the
 *   leader; finish() undoes it.
 * - restoreContext(pid, remote): a RestoreContext with no image and no warnings yet.
 * - roundTrip(resource, state): the state as it comes back from the image's note.
 */
import type { TestContext } from 'node:test';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildTarget, tempDir, waitFor } from './targets.js';
import { spawnProcess } from '../../src/sys/spawn.js';
import { kill } from '../../src/sys/process.js';
import { waitTask, WAIT } from '../../src/sys/ptrace.js';
import { freeze, type FrozenProcess } from '../../src/ptrace/freeze.js';
import { RemoteTask } from '../../src/ptrace/remote.js';
import { findSyscallInstruction } from '../../src/ptrace/inject.js';
import { captureThreads } from '../../src/resources/threads.js';
import { readMaps } from '../../src/proc/maps.js';
import { listTasks } from '../../src/proc/status.js';
import { encodeStasisNote, decodeStasisNote } from '../../src/image/stasis-notes.js';
import type { CheckpointResource, DumpContext, RestoreContext } from '../../src/resources/resource.js';

export interface Spawned {
  pid: number;
  out: string;
  ready: string[];
  reap(): void;
}

/** Starts test/targets/NAME.c with OUTFILE as its first argument and waits for its "ready" line. */
export async function spawnTarget(t: TestContext, name: string, args: string[] = []): Promise<Spawned> {
  const exe = buildTarget(name);
  const out = path.join(tempDir(t), 'out');
  const pid = spawnProcess(exe, [out, ...args]);
  let reaped = false;
  const reap = () => {
    if (reaped) return;
    reaped = true;
    let tids: number[] = [];
    try {
      tids = listTasks(pid);
    } catch {
      // gone
    }
    try {
      kill(pid, 9);
    } catch {
      // gone
    }
    // Traced threads must be reaped one by one (with __WALL) before the leader.
    for (const tid of tids) {
      if (tid === pid) continue;
      try {
        waitTask(tid, WAIT.ALL);
      } catch {
        // not traced: the leader's wait covers it
      }
    }
    waitTask(pid, WAIT.ALL);
  };
  t.after(reap);
  let ready: string | undefined;
  await waitFor(() => (ready = readLines(out).find((l) => l.startsWith('ready '))) !== undefined, `${name} to be ready`);
  return { pid, out, ready: ready!.split(' '), reap };
}

export function readLines(file: string): string[] {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

export interface Dump {
  ctx: DumpContext;
  frozen: FrozenProcess;
  finish(): void;
}

/** Freeze as the dump does, with a RemoteTask and scratch memory in the leader. */
export function startDump(pid: number, beforeRemote?: (frozen: FrozenProcess) => void): Dump {
  const frozen = freeze(pid);
  const threads = captureThreads(frozen);
  beforeRemote?.(frozen);
  const leader = frozen.leader;
  const remote = new RemoteTask(leader, findSyscallInstruction(pid), leader.getRegisters());
  remote.mapScratch();
  const ctx: DumpContext = { pid, frozen, threads, maps: readMaps(pid), remote };
  return {
    ctx,
    frozen,
    finish() {
      remote.unmapScratch();
      remote.restoreRegisters();
      remote.close();
      frozen.release();
    },
  };
}

export function restoreContext(pid: number, remote: RemoteTask): RestoreContext {
  return { pid, remote, imagePath: '', ignoreChangedFiles: false, ignoreCpu: false, warnings: [] };
}

/** The state as it comes back from the image (the resource's note, encoded and decoded). */
export function roundTrip<T>(resource: Pick<CheckpointResource<unknown>, 'name' | 'noteType' | 'version'>, state: T): T {
  const note = encodeStasisNote(resource.noteType, resource.version, state);
  return decodeStasisNote<T>(note.desc, resource.version, resource.name);
}

export interface Blank {
  pid: number;
  /** The TIDs of its extra threads, standing in for the original's. */
  threads: number[];
  /** Syscalls in its (frozen) main thread, scratch memory mapped, as a restore would have. */
  remote: RemoteTask;
  /** Let go of the remote and kill and reap the blank. */
  destroy(): void;
}

/** A frozen multi-threaded blank (sig-blank.c with `extraThreads` threads) to restore a resource into. */
export async function startBlank(t: TestContext, extraThreads: number): Promise<Blank> {
  const blank = await spawnTarget(t, 'sig-blank', [String(extraThreads)]);
  const frozen = freeze(blank.pid);
  const remote = new RemoteTask(frozen.leader, findSyscallInstruction(blank.pid), frozen.leader.getRegisters(), true);
  remote.mapScratch();
  return {
    pid: blank.pid,
    threads: blank.ready.slice(2, 2 + extraThreads).map(Number),
    remote,
    destroy: () => {
      remote.close();
      blank.reap(); // killed while traced: the helper reaps each thread
    },
  };
}
