/**
 * Fault injection for tests, as CRIU does with CRIU_FAULT: STASIS_FAULT=POINT:ACTION makes
 * the named point of a dump act out a fault, so that what stasis does then can be checked
 * on real processes at a moment a test could never hit by timing.
 *
 * Points: 'checks' (in the middle of the checks before the freeze).
 * Actions: 'kill-target' (SIGKILL the process being dumped and wait until it has exited).
 */
import { existsSync, readFileSync } from 'node:fs';
import { kill, SIG } from './sys/process.js';

export type FaultPoint = 'checks';

export function faultPoint(point: FaultPoint, pid: number): void {
  const wanted = process.env.STASIS_FAULT;
  if (!wanted) return;
  const [at, action] = wanted.split(':');
  if (at !== point) return;
  if (action === 'kill-target') killAndWaitForExit(pid);
}

function killAndWaitForExit(pid: number): void {
  kill(pid, SIG.SIGKILL);
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    try {
      if (!existsSync(`/proc/${pid}`) || /^State:\s+[ZX]/m.test(readFileSync(`/proc/${pid}/status`, 'latin1'))) return;
    } catch {
      return;
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
  }
}
