/**
 * The resources a checkpoint carries besides memory, threads and the mm fields.
 *
 * Some are only verified: whether this machine can take the process back is decided
 * before anything is created (the CPU). Restore order matters for the others. Files come first, even before memory: a shared mapping of a
 * memfd is made from its restored fd (and fds are shared by all threads). The others come after, since they are per
 * thread too (scheduling, personality, SIGEV_THREAD_ID timers, thread-directed signals):
 * attributes, then timers, then signals last, so that nothing fires or is queued while
 * injected syscalls still run. The capture order is the same, so the signals module also
 * sees the signals that earlier injections dequeued.
 */
import type { CheckpointResource } from './resource.js';
import { filesResource } from './files.js';
import { attributesResource } from './attributes.js';
import { timersResource } from './timers.js';
import { signalsResource } from './signals.js';
import { cpuResource } from './cpu.js';

export const VERIFIED_BEFORE_RESTORE: ReadonlyArray<CheckpointResource<any>> = [cpuResource];
export const RESTORED_BEFORE_THREADS: ReadonlyArray<CheckpointResource<any>> = [filesResource];
export const RESTORED_AFTER_THREADS: ReadonlyArray<CheckpointResource<any>> = [attributesResource, timersResource, signalsResource];
export const RESOURCES: ReadonlyArray<CheckpointResource<any>> = [...VERIFIED_BEFORE_RESTORE, ...RESTORED_BEFORE_THREADS, ...RESTORED_AFTER_THREADS];
