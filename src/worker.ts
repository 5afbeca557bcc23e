/**
 * The library runs each operation in a worker thread: ptrace ties a tracee to the thread
 * that attached it and every call blocks, so doing it on the caller's thread would stall
 * its event loop for the whole dump. Messages: progress, then one result or error.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { coreDump } from './core.js';
import { checkpoint } from './dump.js';
import { restoreProcess } from './restore.js';
import { collectFindings } from './check.js';
import { StasisError } from './errors.js';

export type Operation = 'coreDump' | 'checkpoint' | 'restore' | 'check';

interface Request {
  op: Operation;
  target: number | string;
  options: Record<string, unknown>;
}

const { op, target, options } = workerData as Request;
const onProgress = (done: number, total: number) => parentPort!.postMessage({ type: 'progress', done, total });

try {
  let value: unknown;
  if (op === 'coreDump') value = coreDump(target as number, { ...options, onProgress });
  else if (op === 'checkpoint') value = checkpoint(target as number, { ...(options as { output: string }), onProgress });
  else if (op === 'restore') value = restoreProcess(target as string, { ...options, onProgress });
  else value = collectFindings(target as number);
  parentPort!.postMessage({ type: 'result', value });
} catch (err) {
  const e = err as StasisError & NodeJS.ErrnoException;
  parentPort!.postMessage({
    type: 'error',
    error: { name: e.name, message: e.message, code: e.code, pid: e.pid, tid: e.tid, fd: e.fd, mapping: e.mapping, path: e.path, errno: e.errno, stasis: err instanceof StasisError },
  });
}
