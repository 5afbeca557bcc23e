/**
 * The stasis library: the same operations as the command line, promise-based, typed,
 * run in a worker thread so the caller's event loop keeps going during a dump.
 *
 *   import { coreDump, checkpoint, restore, check, inspect, supervise } from 'stasis';
 *   const core = await coreDump(pid, { output: 'core.app' });
 *   const image = await checkpoint(pid, { output: 'app.img', leaveRunning: true });
 *   const restored = await restore('app.img');
 *   const status = await restored.exited;
 */
import { runInWorker, type ProgressOptions } from './worker-client.js';
import type { CoreDumpOptions, CoreDumpResult } from './core.js';
import type { CheckpointOptions, CheckpointResult } from './dump.js';
import type { RestoreOptions, RestoredProcess } from './restore.js';
import type { Finding } from './resources/resource.js';
import { waitForExit } from './foreground.js';
import { readCore, type CoreImage } from './image/reader.js';

export { StasisError } from './errors.js';
export type { StasisErrorCode } from './errors.js';
export type { CoreDumpResult, CheckpointResult, Finding, CoreImage, ProgressOptions };
export { supervise, resumeSupervised, type SuperviseOptions, type ResumeOptions, type Supervisor, type CheckpointEntry } from './supervise.js';
export { waitForExit };

/** A live core dump of `pid` (default file core.PID); the process keeps running. */
export function coreDump(pid: number, options: Omit<CoreDumpOptions, 'onProgress'> & ProgressOptions = {}): Promise<CoreDumpResult> {
  return runInWorker('coreDump', pid, options);
}

/** Checkpoint `pid` into `options.output`; the process is killed afterwards unless `leaveRunning`. */
export function checkpoint(pid: number, options: Omit<CheckpointOptions, 'onProgress'> & ProgressOptions): Promise<CheckpointResult> {
  return runInWorker('checkpoint', pid, options);
}

export interface Restored extends RestoredProcess {
  /** Resolves with the process's exit status (128 + N when killed by signal N). */
  exited: Promise<number>;
}

/**
 * Restore the process in `image`. It becomes a child of the calling process; `exited`
 * resolves when it ends (polled with waitpid WNOHANG, so the event loop stays free).
 */
export async function restore(image: string, options: Omit<RestoreOptions, 'onProgress' | 'beforeRelease'> & ProgressOptions = {}): Promise<Restored> {
  const restored = await runInWorker<RestoredProcess>('restore', image, options);
  return { ...restored, exited: waitForExit(restored.pid) };
}

/** Every resource `pid` holds and whether it can be checkpointed; nothing is stopped. */
export function check(pid: number): Promise<Finding[]> {
  return runInWorker('check', pid, {});
}

/** Threads, mappings and notes of an image or core file. */
export async function inspect(path: string): Promise<CoreImage> {
  return readCore(path);
}
