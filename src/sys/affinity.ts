/** CPU affinity of one thread: sched_getaffinity(2) / sched_setaffinity(2) on a 1024-CPU mask. */
import { libc, check } from './libc.js';

const getAffinity = libc.func('int sched_getaffinity(int pid, size_t size, void *mask)');
const setAffinity = libc.func('int sched_setaffinity(int pid, size_t size, void *mask)');
const MASK_BYTES = 128;

export function getThreadAffinity(tid: number): Buffer {
  const mask = Buffer.alloc(MASK_BYTES);
  check(getAffinity(tid, MASK_BYTES, mask), 'sched_getaffinity', { tid });
  return mask;
}

export function setThreadAffinity(tid: number, mask: Buffer): void {
  check(setAffinity(tid, mask.length, mask), 'sched_setaffinity', { tid });
}

/** A mask with only the lowest CPU of `allowed` set. */
export function firstCpuOf(allowed: Buffer): Buffer {
  const one = Buffer.alloc(allowed.length);
  for (let byte = 0; byte < allowed.length; byte++) {
    if (allowed[byte] === 0) continue;
    one[byte] = allowed[byte] & -allowed[byte];
    return one;
  }
  return Buffer.from(allowed);
}
