/**
 * A restored or supervised process in the foreground: it is our child (spawned by us, or
 * created with CLONE_PARENT from a stub we spawned), so we wait for it like a shell waits
 * for a job, forward the signals a user sends us, and report its exit status. waitpid is
 * polled (WNOHANG) so that the event loop stays free to run the signal handlers.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { constants } from 'node:os';
import { waitTask, WAIT } from './sys/ptrace.js';
import { kill } from './sys/process.js';

export const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGWINCH'];

/** Forward the usual job-control signals we receive to `pid`; returns the function that stops it. */
export function forwardSignals(pid: number, signals: NodeJS.Signals[] = FORWARDED_SIGNALS): () => void {
  const forward = (signal: NodeJS.Signals) => {
    try {
      kill(pid, constants.signals[signal]);
    } catch {
      // it has just exited
    }
  };
  for (const signal of signals) process.on(signal, forward);
  return () => {
    for (const signal of signals) process.off(signal, forward);
  };
}

/** Shell-style status of our child `pid` once it ends: its exit code, or 128 + the killing signal. */
export async function waitForExit(pid: number): Promise<number> {
  for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
    const status = waitTask(pid, WAIT.NOHANG);
    if (status?.kind === 'exited') return status.code;
    if (status?.kind === 'killed') return 128 + status.signal;
    await sleep(delay);
  }
}

export async function superviseRestored(pid: number): Promise<number> {
  const stop = forwardSignals(pid);
  try {
    return await waitForExit(pid);
  } finally {
    stop();
  }
}
