/**
 * Errors that reach the user. Each carries a stable `code` and the resource at fault
 * (pid, tid, fd, mapping, path), so that callers of the library can act on them and the
 * CLI can print one line that names the cause.
 */
export type StasisErrorCode =
  | 'USAGE'
  | 'NO_SUCH_PROCESS'
  | 'ZOMBIE'
  | 'ALREADY_TRACED'
  | 'PERMISSION_DENIED'
  | 'TARGET_EXITED'
  | 'OUTPUT_FAILED'
  | 'BAD_IMAGE'
  | 'UNSUPPORTED'
  | 'SYSCALL_FAILED'
  | 'INJECTION_FAILED'
  | 'CPU_MISMATCH';

export interface StasisErrorDetails {
  pid?: number;
  tid?: number;
  fd?: number;
  mapping?: string;
  path?: string;
  errno?: string;
  cause?: unknown;
}

export class StasisError extends Error {
  readonly code: StasisErrorCode;
  readonly pid?: number;
  readonly tid?: number;
  readonly fd?: number;
  readonly mapping?: string;
  readonly path?: string;
  readonly errno?: string;

  constructor(code: StasisErrorCode, message: string, details: StasisErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'StasisError';
    this.code = code;
    this.pid = details.pid;
    this.tid = details.tid;
    this.fd = details.fd;
    this.mapping = details.mapping;
    this.path = details.path;
    this.errno = details.errno;
  }

  /** 2 for bad usage, 1 for everything else. */
  get exitCode(): number {
    return this.code === 'USAGE' ? 2 : 1;
  }
}

export function usageError(message: string): StasisError {
  return new StasisError('USAGE', message);
}
