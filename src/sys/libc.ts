/**
 * The one place that loads libc through koffi. Every other module in src/sys/ declares
 * the functions it needs from `libc` here and wraps them with typed, errno-checked
 * signatures; nothing outside src/sys/ imports koffi.
 */
import koffi from 'koffi';
import { errnoError } from './errno.js';

export const libc = koffi.load('libc.so.6');

export function lastErrno(): number {
  return koffi.errno();
}

/** Throws a typed SysError when a libc call returned -1. */
export function check(result: number | bigint, call: string, target?: { pid?: number; tid?: number; path?: string }): number {
  const n = Number(result);
  if (n === -1) throw errnoError(koffi.errno(), call, target);
  return n;
}

/** The address of a Buffer's (or typed array's) first byte, for structs that hold pointers (iovec). */
export function addressOf(buffer: ArrayBufferView): bigint {
  return koffi.address(buffer) as bigint;
}

export { koffi };
