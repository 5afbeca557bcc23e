/**
 * The library runs its operations in one resident worker thread: ptrace ties a tracee to
 * the thread that attached it and every call blocks, so doing it on the caller's thread
 * would stall its event loop for the whole dump. Requests carry an id; for each, the worker
 * answers with progress messages, then one result or error. They run one after another.
 */
import { parentPort } from 'node:worker_threads';
import { coreDump } from './core.js';
import { checkpoint } from './dump.js';
import { restoreProcess } from './restore.js';
import { collectFindings } from './check.js';
import { StasisError } from './errors.js';

export type Operation = 'coreDump' | 'checkpoint' | 'restore' | 'check';

export interface Request {
  id: number;
  op: Operation;
  target: number | string;
  options: Record<string, unknown>;
}

function perform({ id, op, target, options }: Request): unknown {
  const onProgress = (done: number, total: number) => parentPort!.postMessage({ id, type: 'progress', done, total });
  if (op === 'coreDump') return coreDump(target as number, { ...options, onProgress });
  if (op === 'checkpoint') return checkpoint(target as number, { ...(options as { output: string }), onProgress });
  if (op === 'restore') return restoreProcess(target as string, { ...options, onProgress });
  return collectFindings(target as number);
}

parentPort!.on('message', (request: Request) => {
  try {
    parentPort!.postMessage({ id: request.id, type: 'result', value: perform(request) });
  } catch (err) {
    const e = err as StasisError & NodeJS.ErrnoException;
    parentPort!.postMessage({
      id: request.id,
      type: 'error',
      error: { name: e.name, message: e.message, code: e.code, pid: e.pid, tid: e.tid, fd: e.fd, mapping: e.mapping, path: e.path, errno: e.errno, stasis: err instanceof StasisError },
    });
  }
});
