/**
 * The contract between the orchestrators (dump.ts, restore.ts) and one kernel resource.
 * Like CRIU's one-file-per-resource layout: a module captures its resource while the
 * process is frozen, restores it into the process being rebuilt, and owns the schema of
 * its note in the image. Adding a resource is adding a module and listing it in index.ts.
 */
import type { FrozenProcess } from '../ptrace/freeze.js';
import type { RemoteTask } from '../ptrace/remote.js';
import type { Mapping } from '../proc/maps.js';
import type { ThreadState } from './threads.js';

/** One thing `stasis check PID` reports, and `stasis dump` refuses when unsupported. */
export interface Finding {
  /** 'fd', 'mapping', 'process', 'thread', ... */
  kind: string;
  /** What it is, e.g. 'fd 3: socket:[1234] (TCP)' or '7f00-7f10 rw-s /dev/shm/x'. */
  what: string;
  supported: boolean;
  /** Why it cannot be checkpointed (for unsupported ones), or a note. */
  reason?: string;
  fd?: number;
  mapping?: string;
}

export interface DumpContext {
  pid: number;
  frozen: FrozenProcess;
  threads: ThreadState[];
  maps: Mapping[];
  /** Syscalls in the frozen process, run in its leader, with 1 MiB of scratch memory mapped. */
  remote: RemoteTask;
}

export interface RestoreContext {
  /** The PID of the process being rebuilt (the same as at dump time). */
  pid: number;
  /** Syscalls in the process being rebuilt, in its main thread, with scratch memory mapped. */
  remote: RemoteTask;
  /** Path of the image being restored (files it stores are read from here). */
  imagePath: string;
  /** Restore even when files the image relies on changed since the dump (warnings instead). */
  ignoreChangedFiles: boolean;
  /** Restore even on a CPU that lacks what the checkpointed one had (warnings instead). */
  ignoreCpu: boolean;
  /** Messages for the user about what was restored differently (not errors). */
  warnings: string[];
  /** Syscalls in another thread of the process being rebuilt, once the threads exist. */
  threadRemote?(tid: number): RemoteTask | undefined;
}

/** What verify() may be told to overlook (the restore's --ignore-* options). */
export interface VerifyOptions {
  ignoreChangedFiles: boolean;
  ignoreCpu: boolean;
}

export interface CheckpointResource<State> {
  /** Short name, used in messages ('restoring files: ...') and as the note's key. */
  name: string;
  /** Note type in the image (owner "STASIS"); unique per resource. */
  noteType: number;
  /** Schema version of the note; a reader refuses versions it does not know. */
  version: number;
  /** What this resource cannot checkpoint in process `pid` (called before anything is frozen). */
  check?(pid: number): Finding[];
  capture(ctx: DumpContext): State;
  /**
   * Whether this machine can take the state back, before anything is created: throws a
   * StasisError to refuse, returns warnings for what it was told to overlook.
   */
  verify?(state: State, options: VerifyOptions): string[];
  /** Put the state back into the process being rebuilt (in the phase index.ts assigns). */
  restore(ctx: RestoreContext, state: State): void;
}
