/**
 * `--pin`: put every thread of a process on one CPU while it is frozen, so that while the
 * threads are interrupted one after the other, at most one of them still runs: the
 * skew between their stop points shrinks. The previous affinities are put back after.
 */
import { listTasks } from '../proc/status.js';
import { getThreadAffinity, setThreadAffinity, firstCpuOf } from '../sys/affinity.js';

export interface Pinned {
  /** Put each thread's own affinity back (threads that exited meanwhile are skipped). */
  unpin(): void;
}

export function pinToOneCpu(pid: number): Pinned {
  const saved = new Map<number, Buffer>();
  const target = firstCpuOf(getThreadAffinity(pid));
  for (const tid of listTasks(pid)) {
    try {
      saved.set(tid, getThreadAffinity(tid));
      setThreadAffinity(tid, target);
    } catch {
      // the thread exited
    }
  }
  return {
    unpin() {
      for (const [tid, mask] of saved) {
        try {
          setThreadAffinity(tid, mask);
        } catch {
          // gone
        }
      }
    },
  };
}
