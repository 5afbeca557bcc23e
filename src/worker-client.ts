/**
 * The resident worker thread (see worker.ts): started on first use, kept for the next
 * operation (starting one costs a few hundred milliseconds of module loading), and not
 * keeping the process alive while idle.
 */
import { Worker } from 'node:worker_threads';
import { StasisError, type StasisErrorCode } from './errors.js';
import type { Operation, Request } from './worker.js';

export interface ProgressOptions {
  /** Called as memory is written or read: bytes done out of bytes in all. */
  onProgress?: (done: number, total: number) => void;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  onProgress?: (done: number, total: number) => void;
}

interface Reply {
  id: number;
  type: 'progress' | 'result' | 'error';
  value?: unknown;
  done?: number;
  total?: number;
  error?: Record<string, unknown>;
}

let worker: Worker | null = null;
let nextId = 1;
const pending = new Map<number, Pending>();

function toError(e: Record<string, unknown>): Error {
  return e.stasis
    ? new StasisError(e.code as StasisErrorCode, e.message as string, { pid: e.pid as number, tid: e.tid as number, fd: e.fd as number, mapping: e.mapping as string, path: e.path as string, errno: e.errno as string })
    : Object.assign(new Error(e.message as string), { code: e.code });
}

function failAll(err: Error): void {
  for (const p of pending.values()) p.reject(err);
  pending.clear();
  worker = null;
}

function residentWorker(): Worker {
  if (worker) return worker;
  const started = new Worker(new URL('./worker.js', import.meta.url));
  started.on('message', (reply: Reply) => {
    const request = pending.get(reply.id);
    if (!request) return;
    if (reply.type === 'progress') return request.onProgress?.(reply.done!, reply.total!);
    pending.delete(reply.id);
    if (pending.size === 0) started.unref();
    if (reply.type === 'result') request.resolve(reply.value);
    else request.reject(toError(reply.error!));
  });
  started.on('error', (err) => failAll(err));
  started.on('exit', (code) => failAll(new Error(`the stasis worker exited with code ${code} before answering`)));
  worker = started;
  return started;
}

export function runInWorker<T, O extends object = ProgressOptions>(op: Operation, target: number | string, options: O & ProgressOptions): Promise<T> {
  const { onProgress, ...rest } = options;
  const id = nextId++;
  const thread = residentWorker();
  thread.ref();
  return new Promise<T>((resolve, reject) => {
    pending.set(id, { resolve: resolve as (value: unknown) => void, reject, onProgress });
    const request: Request = { id, op, target, options: rest as Record<string, unknown> };
    thread.postMessage(request);
  });
}
