/**
 * The resources a checkpoint carries besides memory, threads and the mm fields, in the
 * order they are captured and restored. Restore order matters: files before anything that
 * may refer to an fd; timers and pending signals last, so nothing fires or is delivered
 * while the process is still being rebuilt.
 */
import type { CheckpointResource } from './resource.js';
import { filesResource } from './files.js';

export const RESOURCES: ReadonlyArray<CheckpointResource<any>> = [filesResource];
