/** PLACEHOLDER: being written (file descriptors). */
import type { CheckpointResource, Finding } from './resource.js';

export function checkFiles(_pid: number): Finding[] {
  return [];
}

export const filesResource: CheckpointResource<unknown> = {
  name: 'files',
  noteType: 0x5303,
  version: 1,
  check: checkFiles,
  capture: () => null,
  restore: () => {},
};
