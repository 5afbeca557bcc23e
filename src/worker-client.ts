/** Starting one operation in a worker thread (see worker.ts) and turning its messages into a promise. */
import { Worker } from 'node:worker_threads';
import { StasisError, type StasisErrorCode } from './errors.js';
import type { Operation } from './worker.js';

export interface ProgressOptions {
  /** Called as memory is written or read: bytes done out of bytes in all. */
  onProgress?: (done: number, total: number) => void;
}

export function runInWorker<T, O extends object = ProgressOptions>(op: Operation, target: number | string, options: O & ProgressOptions): Promise<T> {
  const { onProgress, ...rest } = options;
  return new Promise<T>((resolve, reject) => {
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: { op, target, options: rest } });
    let settled = false;
    worker.on('message', (message: { type: string; value?: T; done?: number; total?: number; error?: Record<string, unknown> }) => {
      if (message.type === 'progress') onProgress?.(message.done!, message.total!);
      else if (message.type === 'result') {
        settled = true;
        resolve(message.value as T);
      } else if (message.type === 'error') {
        settled = true;
        const e = message.error!;
        reject(
          e.stasis
            ? new StasisError(e.code as StasisErrorCode, e.message as string, { pid: e.pid as number, tid: e.tid as number, fd: e.fd as number, mapping: e.mapping as string, path: e.path as string, errno: e.errno as string })
            : Object.assign(new Error(e.message as string), { code: e.code }),
        );
      }
    });
    worker.on('error', (err) => {
      settled = true;
      reject(err);
    });
    worker.on('exit', (code) => {
      if (!settled) reject(new Error(`stasis worker exited with code ${code} before answering`));
    });
  });
}
