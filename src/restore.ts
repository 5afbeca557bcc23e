/**
 * `stasis restore`: bring a checkpointed process back with its PID and TIDs.
 *
 *   read and validate the image -> start a stub -> clone3(set_tid = PID, CLONE_PARENT) in
 *   the stub: the new process is ours, traced, a copy of the stub -> its files -> rebuild
 *   its address space and mm -> create the other threads (clone3 with their TIDs) and
 *   give every thread its state -> attributes, timers, and signals last -> release.
 *
 * Until the release the process is traced with PTRACE_O_EXITKILL and any failure kills it:
 * a failed restore leaves nothing behind.
 */
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { StasisError } from './errors.js';
import { readCore, type CoreImage } from './image/reader.js';
import { decodeStasisNote, STASIS_NOTE } from './image/stasis-notes.js';
import { startStub, type Stub } from './ptrace/stub.js';
import { Tracee } from './ptrace/tracee.js';
import { RemoteTask, SYSCALL } from './ptrace/remote.js';
import { PTRACE_O, getRseqConfiguration, waitTask, WAIT } from './sys/ptrace.js';
import { Registers } from './sys/regs.js';
import { kill, SIG } from './sys/process.js';
import { restoreMappings, type MappingsState, type StoredSegment } from './resources/mappings.js';
import { restoreThreadState, type ThreadRestartState } from './resources/threads.js';
import { mmResource, restoreMm, type MmState } from './resources/mm.js';
import { verifyFiles } from './resources/file-identity.js';
import { RESOURCES, RESTORED_BEFORE_THREADS, RESTORED_AFTER_THREADS } from './resources/index.js';
import { filesResource, fdForInode, type FilesState } from './resources/files.js';
import type { RestoreContext, CheckpointResource } from './resources/resource.js';
import { PhaseTimer } from './timing.js';
import type { Progress } from './image/core-writer.js';

export interface RestoreOptions {
  /** Restore even when files the image relies on changed (each change becomes a warning). */
  ignoreChangedFiles?: boolean;
  /** Restore even on a CPU that lacks instruction sets the checkpointed one had (a warning instead). */
  ignoreCpu?: boolean;
  onProgress?: Progress;
  /** Called with the fully rebuilt, still stopped process just before it is released (tests, debugging). */
  beforeRelease?: (pid: number) => void;
}

export interface RestoredProcess {
  pid: number;
  /** Restored in the stopped state it was dumped in (send SIGCONT to continue it). */
  stopped: boolean;
  threads: number;
  warnings: string[];
  totalMs: number;
  phasesMs: Record<string, number>;
}

interface ThreadsNote {
  imageVersion: number;
  pid: number;
  /** The process was stopped (job control, e.g. SIGSTOP) when it was dumped. */
  stopped?: boolean;
  threads: ThreadRestartState[];
}

const CLONE = {
  VM: 0x100, FS: 0x200, FILES: 0x400, SIGHAND: 0x800, PARENT: 0x8000, THREAD: 0x10000, SYSVSEM: 0x40000,
} as const;
const CLONE_ARGS_SIZE = 88;
const RSEQ_FLAG_UNREGISTER = 1;

function note<T>(image: CoreImage, type: number, version: number, name: string): T {
  const found = image.stasisNotes.find((n) => n.owner === 'STASIS' && n.type === type);
  if (!found) throw new StasisError('BAD_IMAGE', `${image.path} has no ${name} note: it is a core file, not a stasis checkpoint`, { path: image.path });
  return decodeStasisNote<T>(found.data, version, name);
}

function restoreResources(ctx: RestoreContext, resources: Array<{ resource: CheckpointResource<unknown>; state: unknown }>): void {
  for (const { resource, state } of resources) {
    try {
      resource.restore(ctx, state);
    } catch (err) {
      if (err instanceof StasisError) throw new StasisError(err.code, `restoring ${resource.name}: ${err.message}`, { pid: ctx.pid, fd: err.fd, path: err.path, cause: err });
      throw err;
    }
  }
}

function storedSegments(image: CoreImage): StoredSegment[] {
  const sums = image.stasisNotes.find((n) => n.type === STASIS_NOTE.CHECKSUMS);
  if (!sums || sums.data.length !== image.loads.length * 4) throw new StasisError('BAD_IMAGE', `${image.path}: the checksum note is missing or does not match the segments`, { path: image.path });
  return image.loads.map((load, i) => ({ offset: Number(load.offset), vaddr: Number(load.vaddr), filesz: Number(load.filesz), checksum: sums.data.readUInt32LE(i * 4) }));
}

/** clone_args (include/uapi/linux/sched.h, CLONE_ARGS_SIZE_VER2 = 88). */
function cloneArgs(flags: number, exitSignal: number, setTidAddress: bigint): Buffer {
  const args = Buffer.alloc(CLONE_ARGS_SIZE);
  args.writeBigUInt64LE(BigInt(flags), 0);
  args.writeBigUInt64LE(BigInt(exitSignal), 32);
  args.writeBigUInt64LE(setTidAddress, 64);
  args.writeBigUInt64LE(1n, 72);
  return args;
}

/** clone3 with set_tid in `remote`'s task; returns the new task, auto-attached and stopped. */
function cloneWithTid(remote: RemoteTask, pid: number, tid: number, flags: number, exitSignal: number, what: string): Tracee {
  remote.resetScratch();
  const setTid = Buffer.alloc(4);
  setTid.writeInt32LE(tid, 0);
  const args = cloneArgs(flags, exitSignal, remote.put(setTid));
  const result = remote.syscallRaw(SYSCALL.clone3, [remote.put(args), CLONE_ARGS_SIZE]);
  if (result.value < 0n) {
    const errno = Number(-result.value);
    if (errno === 17) throw new StasisError('UNSUPPORTED', `${what}: ${tid} is in use by another process; it must be free to restore with the same ids`, { pid, tid });
    throw new StasisError('INJECTION_FAILED', `${what}: clone3 with set_tid ${tid} failed (errno ${errno})`, { pid, tid });
  }
  const created = new Tracee(pid, tid);
  if (!created.waitForStop()) throw new StasisError('INJECTION_FAILED', `${what}: task ${tid} exited at once`, { pid, tid });
  return created;
}

/**
 * A process just killed by `stasis dump` stays a zombie until its parent reaps it, which
 * a shell does within moments: give that a little time before calling the PID taken.
 */
function waitUntilPidFree(pid: number, timeoutMs = 2000): boolean {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!existsSync(`/proc/${pid}`)) return true;
    let zombie = false;
    try {
      zombie = /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'latin1'));
    } catch {
      continue; // it went away while we looked
    }
    if (!zombie || Date.now() > deadline) return false;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }
}

export function restoreProcess(imagePath: string, options: RestoreOptions = {}): RestoredProcess {
  const started = process.hrtime.bigint();
  const timer = new PhaseTimer();
  const path = resolve(imagePath);
  const image = readCore(path);
  const threadsNote = note<ThreadsNote>(image, STASIS_NOTE.THREADS, 1, 'threads');
  const mappings = note<MappingsState>(image, STASIS_NOTE.MEMORY, 1, 'memory');
  const mm = note<MmState>(image, mmResource.noteType, mmResource.version, 'process');
  const resources = RESOURCES.map((r) => ({ resource: r, state: note<unknown>(image, r.noteType, r.version, r.name) }));
  const segments = storedSegments(image);
  const pid = threadsNote.pid;
  const verifyOptions = { ignoreChangedFiles: options.ignoreChangedFiles ?? false, ignoreCpu: options.ignoreCpu ?? false };
  const warnings = [
    ...resources.flatMap(({ resource, state }) => resource.verify?.(state, verifyOptions) ?? []),
    ...verifyFiles(mm.exe ? [mm.exe, ...mappings.files] : mappings.files, verifyOptions.ignoreChangedFiles),
  ];
  if (!waitUntilPidFree(pid)) {
    throw new StasisError('UNSUPPORTED', `pid ${pid} is in use by another process; the image can only be restored with its own pid`, { pid });
  }
  timer.mark('read');

  let stub: Stub | null = startStub();
  const tasks: RemoteTask[] = [];
  let main: Tracee | null = null;
  const imageFd = openSync(path, 'r');
  try {
    // The new process: a fork of the stub with the old PID, child of this process (CLONE_PARENT).
    stub.frozen.leader.setOptions(PTRACE_O.TRACESYSGOOD | PTRACE_O.TRACEFORK | PTRACE_O.TRACECLONE | PTRACE_O.EXITKILL);
    // clone3 wants exit_signal 0 with CLONE_PARENT: the child inherits the stub's (SIGCHLD).
    main = cloneWithTid(stub.remote, pid, pid, CLONE.PARENT, 0, `creating process ${pid}`);
    const mainState = threadsNote.threads[0];
    const remote = new RemoteTask(main, stub.remote.syscallAt, new Registers(Buffer.from(mainState.regs)), true);
    remote.shareScratch(stub.remote);
    tasks.push(remote);
    stub.destroy();
    stub = null;
    timer.mark('stub');

    // The stub's rseq registration would make the kernel write into memory about to vanish.
    const rseq = getRseqConfiguration(pid);
    if (rseq.pointer !== 0n) remote.syscall(SYSCALL.rseq, [rseq.pointer, rseq.size, RSEQ_FLAG_UNREGISTER, rseq.signature], "unregistering the stub's rseq");

    const ctx: RestoreContext = {
      pid,
      remote,
      imagePath: path,
      ...verifyOptions,
      warnings,
      threadRemote: (tid) => tasks.find((t) => t.thread.tid === tid),
    };
    // The CPU's permissions (AMX) and files first: a shared mapping of a memfd is made
    // from its restored fd.
    restoreResources(ctx, resources.filter(({ resource }) => RESTORED_BEFORE_THREADS.includes(resource)));
    timer.mark('files');
    const files = resources.find(({ resource }) => resource === filesResource)?.state as FilesState | undefined;
    restoreMappings(remote, mappings, path, imageFd, segments, {
      onProgress: options.onProgress,
      fdForSharedObject: files ? (dev, inode) => fdForInode(files, dev, inode) : undefined,
    });
    warnings.push(...restoreMm(ctx, mm));
    timer.mark('memory');

    for (const state of threadsNote.threads.slice(1)) {
      const flags = CLONE.VM | CLONE.FS | CLONE.FILES | CLONE.SIGHAND | CLONE.THREAD | CLONE.SYSVSEM;
      const thread = cloneWithTid(remote, pid, state.tid, flags, 0, `creating thread ${state.tid}`);
      const task = new RemoteTask(thread, remote.syscallAt, new Registers(Buffer.from(state.regs)), true);
      task.shareScratch(remote);
      tasks.push(task);
    }
    threadsNote.threads.forEach((state, i) => restoreThreadState(ctx, tasks[i], state));
    timer.mark('threads');
    restoreResources(ctx, resources.filter(({ resource }) => RESTORED_AFTER_THREADS.includes(resource)));
    timer.mark('signals');

    remote.unmapScratch();
    for (const task of tasks) {
      task.restoreRegisters();
      task.close();
    }
    options.beforeRelease?.(pid);
    // A process dumped while stopped comes back stopped: SIGSTOP queued now takes effect
    // before any thread runs a user instruction (on its way out of the ptrace stop).
    if (threadsNote.stopped) kill(pid, SIG.SIGSTOP);
    for (const task of tasks) task.thread.detach();
    timer.mark('release');
    return { pid, stopped: threadsNote.stopped ?? false, threads: tasks.length, warnings, totalMs: Number(process.hrtime.bigint() - started) / 1e6, phasesMs: timer.phases };
  } catch (err) {
    for (const task of tasks) {
      try {
        task.close();
      } catch {
        // already closed
      }
    }
    if (main) {
      // Half-built: kill it (it is traced with EXITKILL, but we are still alive) and reap it.
      try {
        kill(pid, SIG.SIGKILL);
      } catch {
        // already gone
      }
      for (const task of tasks.slice(1)) {
        try {
          waitTask(task.thread.tid, WAIT.ALL);
        } catch {
          // collected
        }
      }
      try {
        while (true) {
          const status = waitTask(pid, WAIT.ALL);
          if (!status || status.kind === 'exited' || status.kind === 'killed') break;
        }
      } catch {
        // collected
      }
    }
    throw err;
  } finally {
    closeSync(imageFd);
    stub?.destroy();
  }
}
