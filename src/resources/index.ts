/**
 * The resources a checkpoint carries besides memory, threads and the mm fields.
 *
 * Before anything is created, every resource with a verify() says whether this machine
 * can take the process back (the CPU, for one). Then restore order matters. The CPU
 * resource and files come first, before memory and threads: the permission to use AMX
 * must be there before a thread gets its XSAVE state, and a shared mapping of a memfd is
 * made from its restored fd (fds are shared by all threads). The others come after the
 * threads, since they are per thread too (scheduling, personality, SIGEV_THREAD_ID timers,
 * thread-directed signals): attributes, then the process settings (which end with the
 * credentials: what comes before may need root), then timers, then signals last, so that nothing
 * fires or is queued while injected syscalls still run. The capture order is the same, so
 * the signals module also sees the signals that earlier injections dequeued.
 */
import type { CheckpointResource } from './resource.js';
import { filesResource } from './files.js';
import { attributesResource } from './attributes.js';
import { timersResource } from './timers.js';
import { signalsResource } from './signals.js';
import { cpuResource } from './cpu.js';
import { processSettingsResource } from './process-settings.js';

export const RESTORED_BEFORE_THREADS: ReadonlyArray<CheckpointResource<any>> = [cpuResource, filesResource];
export const RESTORED_AFTER_THREADS: ReadonlyArray<CheckpointResource<any>> = [attributesResource, processSettingsResource, timersResource, signalsResource];
export const RESOURCES: ReadonlyArray<CheckpointResource<any>> = [...RESTORED_BEFORE_THREADS, ...RESTORED_AFTER_THREADS];
