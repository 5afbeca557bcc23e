/**
 * File descriptor calls the files resource makes in this process (the dumper/restorer),
 * typed and errno-checked: pipe2, tee, kcmp, fcntl, lseek with SEEK_DATA/SEEK_HOLE,
 * ioctl(FIONREAD) and poll. Node's fs covers open/read/write/close/stat/readlink.
 */
import { libc, check, lastErrno } from './libc.js';
import { errnoError, SysError } from './errno.js';

const pipe2Raw = libc.func('int pipe2(_Out_ int *fds, int flags)');
const teeRaw = libc.func('long tee(int fd_in, int fd_out, size_t len, unsigned int flags)');
const fcntlRaw = libc.func('int fcntl(int fd, int cmd, long arg)');
const dup3Raw = libc.func('int dup3(int oldfd, int newfd, int flags)');
const lseekRaw = libc.func('long lseek(int fd, long offset, int whence)');
const ioctlIntRaw = libc.func('int ioctl(int fd, unsigned long request, _Out_ int *value)');
const pollRaw = libc.func('int poll(void *fds, unsigned long nfds, int timeout)');
const syscallRaw = libc.func('long syscall(long number, long a1, long a2, long a3, long a4, long a5, long a6)');

/** open(2) flags on x86_64 (include/uapi/asm-generic/fcntl.h), in octal as /proc/PID/fdinfo prints them. */
export const O = {
  RDONLY: 0o0,
  WRONLY: 0o1,
  RDWR: 0o2,
  ACCMODE: 0o3,
  CREAT: 0o100,
  EXCL: 0o200,
  NOCTTY: 0o400,
  TRUNC: 0o1000,
  APPEND: 0o2000,
  NONBLOCK: 0o4000,
  DSYNC: 0o10000,
  ASYNC: 0o20000,
  DIRECT: 0o40000,
  LARGEFILE: 0o100000,
  DIRECTORY: 0o200000,
  NOFOLLOW: 0o400000,
  NOATIME: 0o1000000,
  CLOEXEC: 0o2000000,
  SYNC: 0o4010000,
  PATH: 0o10000000,
  TMPFILE: 0o20200000,
} as const;

export const F = {
  DUPFD: 0,
  GETFD: 1,
  SETFD: 2,
  GETFL: 3,
  SETFL: 4,
  DUPFD_CLOEXEC: 1030,
  SETPIPE_SZ: 1031,
  GETPIPE_SZ: 1032,
  ADD_SEALS: 1033,
  GET_SEALS: 1034,
} as const;

export const SEAL = { SEAL: 0x1, SHRINK: 0x2, GROW: 0x4, WRITE: 0x8, FUTURE_WRITE: 0x10, EXEC: 0x20 } as const;

export const SEEK = { SET: 0, CUR: 1, END: 2, DATA: 3, HOLE: 4 } as const;

export const SPLICE_F_NONBLOCK = 0x02;

export const POLL = { IN: 0x1, PRI: 0x2, OUT: 0x4, ERR: 0x8, HUP: 0x10, NVAL: 0x20 } as const;

const FIONREAD = 0x541b;
const SYS_kcmp = 312;
const SYS_pidfd_open = 434;
const SYS_pidfd_getfd = 438;
const KCMP_FILE = 0;
const KCMP_FILES = 2;
const KCMP_EPOLL_TFD = 7;
const kcmpEpollRaw = libc.func('long syscall(long number, long pid1, long pid2, long type, long fd, _In_ uint32_t *slot)');
const ENXIO = 6;

/** pipe2(2): [read end, write end]. */
export function pipe2(flags: number = O.CLOEXEC): [number, number] {
  const fds = [0, 0];
  check(pipe2Raw(fds, flags), 'pipe2');
  return [fds[0], fds[1]];
}

/** tee(2): duplicates up to `length` bytes from one pipe into another without consuming them. */
export function tee(fdIn: number, fdOut: number, length: number, flags: number = SPLICE_F_NONBLOCK): number {
  return check(teeRaw(fdIn, fdOut, length, flags), 'tee');
}

/** dup3(2): `oldfd` also at `newfd` (closing what was there), O_CLOEXEC in `flags` or not. */
export function dup3(oldfd: number, newfd: number, flags = 0): void {
  check(dup3Raw(oldfd, newfd, flags), `dup3 to fd ${newfd}`);
}

export function fcntl(fd: number, cmd: number, arg: number = 0): number {
  return check(fcntlRaw(fd, cmd, arg), `fcntl(${cmd})`);
}

export function lseek(fd: number, offset: bigint | number, whence: number): bigint {
  const r = BigInt(lseekRaw(fd, BigInt(offset), whence));
  if (r === -1n) throw errnoError(lastErrno(), `lseek(whence ${whence})`);
  return r;
}

/**
 * The data ranges of a file, [start, end) pairs, from SEEK_DATA/SEEK_HOLE (a file system
 * without them reports the whole file as data).
 */
export function dataRanges(fd: number, size: bigint): Array<[bigint, bigint]> {
  const out: Array<[bigint, bigint]> = [];
  let at = 0n;
  while (at < size) {
    let start: bigint;
    try {
      start = lseek(fd, at, SEEK.DATA);
    } catch (err) {
      if (err instanceof SysError && err.errno === ENXIO) break; // only a hole remains
      throw err;
    }
    if (start >= size) break;
    const end = lseek(fd, start, SEEK.HOLE);
    out.push([start, end < size ? end : size]);
    at = end;
  }
  return out;
}

/** Bytes waiting to be read in a pipe (ioctl FIONREAD). */
export function bytesPending(fd: number): number {
  const value = [0];
  check(ioctlIntRaw(fd, FIONREAD, value), 'ioctl(FIONREAD)');
  return value[0];
}

/** poll(2) one fd without waiting; returns revents. */
export function pollNow(fd: number, events: number): number {
  const pfd = Buffer.alloc(8);
  pfd.writeInt32LE(fd, 0);
  pfd.writeInt16LE(events, 4);
  check(pollRaw(pfd, 1, 0), 'poll');
  return pfd.readInt16LE(6);
}

/**
 * kcmp(KCMP_FILE): whether fd1 of pid1 and fd2 of pid2 are the same open file description.
 * Throws a SysError (ENOSYS without CONFIG_KCMP, EPERM without ptrace access).
 */
export function sameOpenFile(pid1: number, fd1: number, pid2: number, fd2: number): boolean {
  const r = Number(syscallRaw(SYS_kcmp, pid1, pid2, KCMP_FILE, fd1, fd2, 0));
  if (r === -1) throw errnoError(lastErrno(), 'kcmp(KCMP_FILE)', { pid: pid1 });
  return r === 0;
}

/**
 * kcmp(KCMP_EPOLL_TFD): whether fd `fd` of `pid` is the file that epoll instance `epfd`
 * of `pid` watches under fd number `tfd` (struct kcmp_epoll_slot {efd, tfd, toff}).
 */
export function isEpollTarget(pid: number, fd: number, epfd: number, tfd: number): boolean {
  const r = Number(kcmpEpollRaw(SYS_kcmp, pid, pid, KCMP_EPOLL_TFD, fd, [epfd, tfd, 0]));
  if (r === -1) throw errnoError(lastErrno(), 'kcmp(KCMP_EPOLL_TFD)', { pid });
  return r === 0;
}

/** kcmp(KCMP_FILES): whether two tasks (threads of one process, say) share one fd table. */
export function sameFdTable(tid1: number, tid2: number): boolean {
  const r = Number(syscallRaw(SYS_kcmp, tid1, tid2, KCMP_FILES, 0, 0, 0));
  if (r === -1) throw errnoError(lastErrno(), 'kcmp(KCMP_FILES)', { tid: tid2 });
  return r === 0;
}

const closeRaw = libc.func('int close(int fd)');

/**
 * close(2) for fds made here through libc (pipe2, pidfd_open, pidfd_getfd): in a worker
 * thread Node warns when fs.closeSync() closes an fd its fs module did not open.
 */
export function closeFd(fd: number): void {
  closeRaw(fd);
}

/** pidfd_open(2). */
export function pidfdOpen(pid: number): number {
  const r = Number(syscallRaw(SYS_pidfd_open, pid, 0, 0, 0, 0, 0));
  if (r === -1) throw errnoError(lastErrno(), 'pidfd_open', { pid });
  return r;
}

/**
 * pidfd_getfd(2): a duplicate, in this process (close-on-exec), of fd `fd` of the process
 * behind `pidfd`: the same open file description, so unlike an open of /proc/PID/fd/N it
 * adds no reader or writer to a pipe. Needs ptrace access to the process.
 */
export function pidfdGetfd(pidfd: number, fd: number, pid?: number): number {
  const r = Number(syscallRaw(SYS_pidfd_getfd, pidfd, fd, 0, 0, 0, 0));
  if (r === -1) throw errnoError(lastErrno(), `pidfd_getfd of fd ${fd}`, { pid });
  return r;
}

const flistxattrRaw = libc.func('long flistxattr(int fd, _Out_ uint8_t *list, size_t size)');
const fgetxattrRaw = libc.func('long fgetxattr(int fd, const char *name, _Out_ uint8_t *value, size_t size)');
const ENODATA = 61;
const ENOTSUP = 95;

/**
 * The extended attributes of an open file whose names `wanted` accepts (flistxattr,
 * fgetxattr), name -> value. A file system without xattrs (ENOTSUP) has none.
 */
export function readXattrs(fd: number, wanted: (name: string) => boolean): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const needed = Number(flistxattrRaw(fd, null, 0));
  if (needed < 0) {
    if (lastErrno() === ENOTSUP) return out;
    throw errnoError(lastErrno(), 'flistxattr');
  }
  if (needed === 0) return out;
  const list = Buffer.alloc(needed);
  const got = Number(flistxattrRaw(fd, list, needed));
  if (got < 0) throw errnoError(lastErrno(), 'flistxattr');
  for (const name of list.subarray(0, got).toString('latin1').split('\0')) {
    if (name === '' || !wanted(name)) continue;
    const size = Number(fgetxattrRaw(fd, name, null, 0));
    if (size < 0) {
      if (lastErrno() === ENODATA) continue; // removed meanwhile
      throw errnoError(lastErrno(), `fgetxattr(${name})`);
    }
    const value = Buffer.alloc(size);
    const read = size === 0 ? 0 : Number(fgetxattrRaw(fd, name, value, size));
    if (read < 0) throw errnoError(lastErrno(), `fgetxattr(${name})`);
    out.set(name, value.subarray(0, read));
  }
  return out;
}

const nameToHandleRaw = libc.func('int name_to_handle_at(int dirfd, const char *path, void *handle, _Out_ int *mount_id, int flags)');
const openByHandleRaw = libc.func('int open_by_handle_at(int mount_fd, void *handle, int flags)');
const openRaw = libc.func('int open(const char *path, int flags)');
const AT_FDCWD = -100;
const AT_SYMLINK_FOLLOW = 0x400;
const MAX_HANDLE_SZ = 128;

/**
 * An O_PATH fd (close with closeFd) on the inode that `path` leads to, reached again
 * through its file handle (name_to_handle_at, open_by_handle_at: needs CAP_DAC_READ_SEARCH
 * and a file system that exports handles, as ext4, xfs, btrfs, tmpfs and overlayfs do).
 * The kernel gives it a dentry of the inode: for an unlinked name with another hard link,
 * often that other name. `path` must be a regular file (it is opened to name the mount). Throws a SysError (EOPNOTSUPP, EPERM, ESTALE ...).
 */
export function openByHandle(path: string): number {
  const handle = Buffer.alloc(8 + MAX_HANDLE_SZ); // struct file_handle: u32 handle_bytes, int handle_type, bytes
  handle.writeUInt32LE(MAX_HANDLE_SZ, 0);
  check(nameToHandleRaw(AT_FDCWD, path, handle, [0], AT_SYMLINK_FOLLOW), 'name_to_handle_at', { path });
  // Any fd on the file system will do, but not an O_PATH one (EBADF): `path` is a regular file.
  const mountFd = check(openRaw(path, O.RDONLY | O.NONBLOCK | O.NOATIME | O.CLOEXEC), 'open', { path });
  try {
    return check(openByHandleRaw(mountFd, handle, O.PATH | O.CLOEXEC), 'open_by_handle_at', { path });
  } finally {
    closeRaw(mountFd);
  }
}
