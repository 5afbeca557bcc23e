/** errno values as typed errors: the symbolic name, the call that failed and the task it concerned. */
import { constants } from 'node:os';

const errnoNames = new Map<number, string>(
  Object.entries(constants.errno).map(([name, value]) => [value as number, name]),
);

export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

export class SysError extends Error {
  readonly errno: number;
  readonly code: string;
  readonly call: string;
  readonly pid?: number;
  readonly tid?: number;
  readonly path?: string;

  constructor(errno: number, call: string, target: { pid?: number; tid?: number; path?: string } = {}) {
    const who = target.tid !== undefined ? ` (tid ${target.tid})` : target.pid !== undefined ? ` (pid ${target.pid})` : target.path ? ` (${target.path})` : '';
    super(`${call}${who}: ${errnoName(errno)}`);
    this.name = 'SysError';
    this.errno = errno;
    this.code = errnoName(errno);
    this.call = call;
    this.pid = target.pid;
    this.tid = target.tid;
    this.path = target.path;
  }
}

export function errnoError(errno: number, call: string, target?: { pid?: number; tid?: number; path?: string }): SysError {
  return new SysError(errno, call, target);
}

export const ESRCH = constants.errno.ESRCH;
export const EPERM = constants.errno.EPERM;
export const EINTR = constants.errno.EINTR;
export const ECHILD = constants.errno.ECHILD;
export const EEXIST = constants.errno.EEXIST;
export const ENOENT = constants.errno.ENOENT;
export const EBUSY = constants.errno.EBUSY;
export const EIO = constants.errno.EIO;
export const EFAULT = constants.errno.EFAULT;
export const ENOSPC = constants.errno.ENOSPC;
