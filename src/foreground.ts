/**
 * A restored process in the foreground: it is our child (created with CLONE_PARENT from
 * a stub we spawned), so we wait for it like a shell waits for a job, forward the
 * signals a user sends us, and report its exit status. waitpid is polled (WNOHANG) so
 * that the event loop stays free to run the signal handlers.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { waitTask, WAIT } from './sys/ptrace.js';
import { kill } from './sys/process.js';

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];

/** Resolves with a shell-style status: the exit code, or 128 + the signal that killed it. */
export async function superviseRestored(pid: number): Promise<number> {
  const forward = (signal: NodeJS.Signals) => {
    try {
      kill(pid, osSignal(signal));
    } catch {
      // it has just exited
    }
  };
  for (const signal of FORWARDED) process.on(signal, forward);
  try {
    for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
      const status = waitTask(pid, WAIT.NOHANG);
      if (status?.kind === 'exited') return status.code;
      if (status?.kind === 'killed') return 128 + status.signal;
      await sleep(delay);
    }
  } finally {
    for (const signal of FORWARDED) process.off(signal, forward);
  }
}

function osSignal(signal: NodeJS.Signals): number {
  const numbers: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGUSR1: 10, SIGUSR2: 12, SIGTERM: 15, SIGWINCH: 28 };
  return numbers[signal];
}
