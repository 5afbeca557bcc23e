/**
 * /proc/PID/limits: every resource limit of a process, readable by anyone (mode 0444).
 * prlimit(2) on another process needs the caller's uids to match the target's or
 * CAP_SYS_RESOURCE, which root lacks on some machines; this file needs neither. The kernel
 * prints the rows in RLIMIT_* order (fs/proc/base.c lnames[]) and each value in full
 * ("%-20lu") or as "unlimited" for RLIM_INFINITY, so nothing is lost.
 */
import { readFileSync } from 'node:fs';

const RLIM_INFINITY = 0xffffffffffffffffn;

export function readLimits(pid: number): Array<{ soft: bigint; hard: bigint }> {
  const rows = readFileSync(`/proc/${pid}/limits`, 'latin1').split('\n').slice(1).filter(Boolean);
  return rows.map((row) => {
    // "Max cpu time              unlimited            unlimited            seconds"
    const m = /^Max [a-z ]+?\s{2,}(\d+|unlimited)\s+(\d+|unlimited)/.exec(row);
    if (!m) throw new Error(`unexpected line in /proc/${pid}/limits: ${row}`);
    const value = (v: string) => (v === 'unlimited' ? RLIM_INFINITY : BigInt(v));
    return { soft: value(m[1]), hard: value(m[2]) };
  });
}
