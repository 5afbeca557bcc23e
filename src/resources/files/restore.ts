/**
 * Rebuilding the fd table inside the process being restored, with syscalls injected into
 * it (ctx.remote). In four steps, so that no fd number is clobbered before it is free:
 *
 *  1. keep the restorer's stdin/stdout/stderr, which the process inherited, at high fds
 *     (the image's "inherited" fds are re-attached to them);
 *  2. create every object and open file description at a temporary fd above every fd
 *     number the image or the process uses: files reopened by path, pipes with pipe2 +
 *     F_SETPIPE_SZ + their buffered bytes, memfds and deleted files with their contents,
 *     eventfds with their counters, timerfds armed again with their pending expirations,
 *     signalfds, socketpairs with what was queued to each end, epoll instances (empty),
 *     then positions (lseek) and flags (F_SETFL);
 *  3. dup3 each description to each of its fd numbers (O_CLOEXEC per fd), so dup'ed fds
 *     share offset and flags as they did; then each epoll instance watches its files
 *     again, under their fd numbers, which exist now;
 *  4. close every fd that is not in the image (the temporaries, the stub's own).
 */
import { dirname } from 'node:path';
import { StasisError } from '../../errors.js';
import { errnoName } from '../../sys/errno.js';
import { SYSCALL, type RemoteTask } from '../../ptrace/remote.js';
import { statSync } from 'node:fs';
import { listFds, devMajor, devMinor } from '../../proc/fds.js';
import { O, F, SEAL, SEEK } from '../../sys/fd.js';
import { describeChange } from '../file-identity.js';
import type { DeviceFile, FileAttributes, FilesState, OpenFile, StoredContents } from './state.js';

const NR_pwrite64 = 18;
const NR_fchmod = 91;
const NR_fchown = 93;
const NR_fsetxattr = 190;
const NR_mknodat = 259;
const NR_utimensat = 280;
const S_IFCHR = 0o020000;
const NR_eventfd2 = 290;
const NR_timerfd_create = 283;
const NR_timerfd_settime = 286;
const NR_signalfd4 = 289;
const NR_epoll_create1 = 291;
const NR_epoll_ctl = 233;
const EPOLL_CTL_ADD = 1;
const NR_socketpair = 53;
const AF_UNIX = 1;
const SOCK_STREAM = 1;
const EFD_SEMAPHORE = 1;
/** _IOW('T', 0, __u64) (include/uapi/linux/timerfd.h; needs CONFIG_CHECKPOINT_RESTORE). */
const TFD_IOC_SET_TICKS = 0x40085400;
const AT_FDCWD = -100;
const MFD_CLOEXEC = 0x1;
const MFD_ALLOW_SEALING = 0x2;
const EEXIST = 17;
const DEFAULT_PIPE_CAPACITY = 65536;

/** The flags F_SETFL can change (O_ASYNC is refused at dump time). */
const SETFL_MASK = O.APPEND | O.NONBLOCK | O.DIRECT | O.NOATIME;
/** __O_TMPFILE without O_DIRECTORY: kept in f_flags of an O_TMPFILE file, but it would create a new one. */
const O_TMPFILE_BIT = 0o20000000;

export interface RestoreFilesOptions {
  /** Restore files that changed since the dump (--ignore-changed-files), with a warning each. */
  ignoreChangedFiles?: boolean;
}

export interface RestoreFilesResult {
  warnings: string[];
}

/** A little-endian u64, as eventfd counts, timerfd ticks and signal masks are passed. */
function u64(value: bigint): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64LE(value);
  return out;
}

/** Flags to open a description with: no creation flags, no O_CLOEXEC (dup3 sets it per fd). */
function openFlags(file: OpenFile): number {
  let flags = file.flags & ~(O.CLOEXEC | O.CREAT | O.EXCL | O.TRUNC | O.NOCTTY | O.ASYNC | O_TMPFILE_BIT);
  if (file.kind !== 'directory') flags &= ~O.DIRECTORY;
  return flags;
}

function hasPosition(file: OpenFile): boolean {
  return (file.flags & O.PATH) === 0 && (file.kind === 'regular' || file.kind === 'directory' || file.kind === 'device' || file.kind === 'memfd' || file.kind === 'ghost');
}

/**
 * Files the process had open that changed since the dump: throws naming the fd and the
 * file, unless told to ignore them; returns the changes it let pass as warnings.
 */
export function verifyOpenFiles(state: FilesState, ignore: boolean): string[] {
  const warnings: string[] = [];
  for (const file of state.files) {
    if (file.kind === 'device' && !file.deleted) {
      // Reopened by its path: that must still be the same device (a node made elsewhere, say).
      const fds = state.fds.filter((e) => e.file === file.id).map((e) => e.fd);
      let st: { rdev: number; mode: number } | null = null;
      try {
        st = statSync(file.path);
      } catch {
        // gone
      }
      const same = st !== null && (st.mode & 0o170000) === S_IFCHR && devMajor(BigInt(st.rdev)) === file.major && devMinor(BigInt(st.rdev)) === file.minor;
      if (!same) throw new StasisError('BAD_IMAGE', `fd ${fds.join(', fd ')}: ${file.path}: it is no longer the device ${file.major}:${file.minor} the process had open`, { fd: fds[0], path: file.path });
      continue;
    }
    if (file.kind !== 'regular' || !file.identity) continue;
    const change = describeChange(file.identity);
    if (!change) continue;
    const fds = state.fds.filter((e) => e.file === file.id).map((e) => e.fd);
    const message = `fd ${fds.join(', fd ')}: ${file.path}: ${change}`;
    // What a write-only (or O_PATH) fd does not read cannot mislead the process: a log that
    // grew since the checkpoint is restored with a warning; only its disappearance is refused.
    const writeOnly = (file.flags & O.ACCMODE) === O.WRONLY || (file.flags & O.PATH) !== 0;
    if (!ignore && (!writeOnly || change === 'it no longer exists')) {
      throw new StasisError('BAD_IMAGE', `${message}; the process had it open (use --ignore-changed-files to restore anyway)`, { fd: fds[0], path: file.path });
    }
    warnings.push(message);
  }
  return warnings;
}

class FdTableBuilder {
  private readonly remote: RemoteTask;
  private readonly pid: number;
  private readonly state: FilesState;
  /** Temporary fds are at or above this. */
  private base = 0;
  /** The temporary fd of each description, and the flags it was opened with. */
  private readonly temps = new Map<number, { fd: number; flags: number }>();
  /** Restorer fds 0-2 kept for inherited descriptions. */
  private readonly saved = new Map<number, number>();
  /** The description being built, for error messages. */
  private current: OpenFile | null = null;

  constructor(remote: RemoteTask, pid: number, state: FilesState) {
    this.remote = remote;
    this.pid = pid;
    this.state = state;
  }

  private fdsOf(file: OpenFile): number[] {
    return this.state.fds.filter((e) => e.file === file.id).map((e) => e.fd);
  }

  private fail(message: string, cause?: unknown, errno?: string): StasisError {
    const file = this.current;
    if (!file) return new StasisError('SYSCALL_FAILED', `restoring the fd table of process ${this.pid}: ${message}`, { pid: this.pid, cause, errno });
    const fds = this.fdsOf(file);
    const path = 'path' in file ? file.path : file.link.startsWith('/') ? file.link : undefined;
    return new StasisError('SYSCALL_FAILED', `fd ${fds.join(', fd ')}: ${file.link}: ${message}`, { pid: this.pid, fd: fds[0], path, cause, errno });
  }

  /** A syscall in the process; failures name the fd and file being restored. */
  private sys(nr: number, args: Array<number | bigint>, what: string): number {
    const { value } = this.remote.syscallRaw(nr, args);
    if (value < 0n && value > -4096n) {
      const errno = errnoName(Number(-value));
      throw this.fail(`${what} failed: ${errno}`, undefined, errno);
    }
    return Number(value);
  }

  /** Bytes into the process's scratch memory (reset before each use: every call here is independent). */
  private put(data: Buffer): bigint {
    this.remote.resetScratch();
    return this.remote.put(data);
  }

  private putString(text: string): bigint {
    this.remote.resetScratch();
    return this.remote.putString(text);
  }

  /** Moves a fresh fd to the temporary range. */
  private high(fd: number): number {
    if (fd >= this.base) return fd;
    const moved = this.sys(SYSCALL.fcntl, [fd, F.DUPFD_CLOEXEC, this.base], 'fcntl(F_DUPFD_CLOEXEC)');
    this.sys(SYSCALL.close, [fd], 'close');
    return moved;
  }

  private open(path: string, flags: number, mode = 0): number {
    return this.high(this.sys(SYSCALL.openat, [AT_FDCWD, this.putString(path), flags | O.CLOEXEC, mode], `open of ${path}`));
  }

  private writeAll(fd: number, data: Buffer, offset: number | null): void {
    const chunk = Math.max(4096, (this.remote.scratchSize >> 1) & ~4095);
    for (let at = 0; at < data.length; ) {
      const piece = data.subarray(at, at + chunk);
      const address = this.put(piece);
      const wrote =
        offset === null
          ? this.sys(SYSCALL.write, [fd, address, piece.length], `write of ${piece.length} bytes`)
          : this.sys(NR_pwrite64, [fd, address, piece.length, offset + at], `pwrite of ${piece.length} bytes at ${offset + at}`);
      if (wrote <= 0) throw this.fail(`write returned ${wrote}`);
      at += wrote;
    }
  }

  private writeContents(fd: number, contents: StoredContents): void {
    this.sys(SYSCALL.ftruncate, [fd, contents.size], `ftruncate to ${contents.size} bytes`);
    for (const range of contents.ranges) this.writeAll(fd, range.data, range.offset);
  }

  /**
   * Gives the descriptions of one object their temporary fds: the first description that
   * fits `created` (opened with `createdFlags`) takes it, the others are opened anew
   * through /proc/self/fd/CREATED (same inode, new description).
   */
  private adopt(kind: OpenFile['kind'], index: number, created: number, createdFlags: number, fits: (f: OpenFile) => boolean): void {
    let taken = false;
    for (const file of this.state.files) {
      if (file.kind !== kind || (file as unknown as Record<string, unknown>)[kind] !== index) continue;
      this.current = file;
      if (!taken && fits(file)) {
        taken = true;
        this.temps.set(file.id, { fd: created, flags: createdFlags });
      } else {
        const flags = openFlags(file);
        this.temps.set(file.id, { fd: this.open(`/proc/self/fd/${created}`, flags), flags });
      }
    }
  }

  private isPlainRdwr(file: OpenFile): boolean {
    return (file.flags & O.ACCMODE) === O.RDWR && (file.flags & O.PATH) === 0;
  }

  private buildMemfds(): void {
    for (const memfd of this.state.memfds) {
      this.current = this.state.files.find((f) => f.kind === 'memfd' && f.memfd === memfd.id) ?? null;
      const allowSealing = memfd.seals !== SEAL.SEAL;
      const fd = this.high(
        this.sys(SYSCALL.memfd_create, [this.putString(memfd.name), MFD_CLOEXEC | (allowSealing ? MFD_ALLOW_SEALING : 0)], `memfd_create of ${memfd.name}`),
      );
      this.writeContents(fd, memfd.contents);
      this.sys(NR_fchmod, [fd, memfd.mode], `fchmod to 0${memfd.mode.toString(8)}`);
      this.adopt('memfd', memfd.id, fd, O.RDWR | O.LARGEFILE, (f) => this.isPlainRdwr(f));
      if (allowSealing && memfd.seals !== 0) this.sys(SYSCALL.fcntl, [fd, F.ADD_SEALS, memfd.seals], `fcntl(F_ADD_SEALS ${memfd.seals})`);
    }
  }

  /**
   * A re-made file gets its xattrs, owner, mode and times, in that order: fchown clears
   * setuid/setgid (so fchmod comes after), and every change but utimensat's own moves the
   * mtime. Its ctime is now: no call sets it.
   */
  private applyAttributes(fd: number, attributes: FileAttributes): void {
    for (const { name, value } of attributes.xattrs) {
      this.remote.resetScratch();
      const nameAt = this.remote.putString(name);
      const valueAt = this.remote.put(value.length > 0 ? value : Buffer.alloc(1));
      this.sys(NR_fsetxattr, [fd, nameAt, valueAt, value.length, 0], `fsetxattr(${name})`);
    }
    this.sys(NR_fchown, [fd, attributes.uid, attributes.gid], `fchown to ${attributes.uid}:${attributes.gid}`);
    this.sys(NR_fchmod, [fd, attributes.mode], `fchmod to 0${attributes.mode.toString(8)}`);
    const times = Buffer.alloc(32); // struct timespec[2]: atime, mtime
    const second = 1_000_000_000n;
    const atime = BigInt(attributes.atimeNs);
    const mtime = BigInt(attributes.mtimeNs);
    times.writeBigInt64LE(atime / second, 0);
    times.writeBigInt64LE(atime % second, 8);
    times.writeBigInt64LE(mtime / second, 16);
    times.writeBigInt64LE(mtime % second, 24);
    this.sys(NR_utimensat, [fd, 0, this.put(times), 0], 'utimensat (futimens)');
  }

  /** The path where a deleted file is made again: its own when free, else a temporary name beside it. */
  private remakePaths(path: string, id: number, tag: string): string[] {
    return [path, ...[0, 1, 2, 3].map((n) => `${dirname(path)}/.stasis-${tag}.${this.pid}.${id}.${n}`)];
  }

  /** A device node deleted while open: mknod again, opened, given its attributes, unlinked. */
  private buildDeletedDevice(file: DeviceFile, attributes: FileAttributes): void {
    // new_encode_dev (include/linux/kdev_t.h), as mknod(2) takes it
    const dev = (file.minor & 0xff) | (file.major << 8) | ((file.minor & ~0xff) << 12);
    let createdAt = '';
    for (const path of this.remakePaths(file.path, file.id, 'node')) {
      const { value } = this.remote.syscallRaw(NR_mknodat, [AT_FDCWD, this.putString(path), S_IFCHR | (attributes.mode & 0o777), dev]);
      if (value === -BigInt(EEXIST)) continue;
      if (value < 0n) throw this.fail(`could not make the deleted device node ${file.major}:${file.minor} again at ${path}: ${errnoName(Number(-value))}`, undefined, errnoName(Number(-value)));
      createdAt = path;
      break;
    }
    if (!createdAt) throw this.fail(`could not make the deleted device node again: ${this.remakePaths(file.path, file.id, 'node').join(', ')} all exist`);
    try {
      const flags = openFlags(file);
      const fd = this.open(createdAt, flags);
      this.temps.set(file.id, { fd, flags });
      this.applyAttributes(fd, attributes);
    } finally {
      this.sys(SYSCALL.unlinkat, [AT_FDCWD, this.putString(createdAt), 0], `unlink of ${createdAt}`);
    }
  }

  private buildGhosts(): void {
    for (const ghost of this.state.ghosts) {
      this.current = this.state.files.find((f) => f.kind === 'ghost' && f.ghost === ghost.id) ?? null;
      // Re-created at its own path when that is free (it reads back as 'PATH (deleted)' as
      // before), else under a temporary name in the same directory; unlinked at once.
      const candidates = this.remakePaths(ghost.path, ghost.id, 'ghost');
      let fd = -1;
      let createdAt = '';
      for (const path of candidates) {
        const { value } = this.remote.syscallRaw(SYSCALL.openat, [AT_FDCWD, this.putString(path), O.RDWR | O.CREAT | O.EXCL | O.CLOEXEC | O.LARGEFILE, ghost.mode]);
        if (value === -BigInt(EEXIST)) continue;
        if (value < 0n) throw this.fail(`could not re-create the deleted file at ${path}: ${errnoName(Number(-value))}`, undefined, errnoName(Number(-value)));
        fd = Number(value);
        createdAt = path;
        break;
      }
      if (fd < 0) throw this.fail(`could not re-create the deleted file: ${candidates.join(', ')} all exist`);
      try {
        fd = this.high(fd);
        this.sys(NR_fchmod, [fd, ghost.mode], 'fchmod');
        this.writeContents(fd, ghost.contents);
        if (ghost.attributes) this.applyAttributes(fd, ghost.attributes);
      } finally {
        this.sys(SYSCALL.unlinkat, [AT_FDCWD, this.putString(createdAt), 0], `unlink of ${createdAt}`);
      }
      this.adopt('ghost', ghost.id, fd, O.RDWR | O.LARGEFILE, (f) => this.isPlainRdwr(f));
    }
  }

  private buildPipes(): void {
    for (const pipe of this.state.pipes) {
      const files = this.state.files.filter((f) => f.kind === 'pipe' && f.pipe === pipe.id);
      this.current = files[0] ?? null;
      const direct = files.some((f) => f.flags & O.DIRECT) ? O.DIRECT : 0;
      this.remote.resetScratch();
      const ends = this.remote.reserve(8);
      this.sys(SYSCALL.pipe2, [ends, O.CLOEXEC | direct], 'pipe2');
      const raw = this.remote.readMemory(ends, 8);
      const r = this.high(raw.readInt32LE(0));
      const w = this.high(raw.readInt32LE(4));
      if (pipe.capacity !== DEFAULT_PIPE_CAPACITY) this.sys(SYSCALL.fcntl, [w, F.SETPIPE_SZ, pipe.capacity], `fcntl(F_SETPIPE_SZ ${pipe.capacity})`);
      if (pipe.data.length > pipe.capacity) throw this.fail(`${pipe.data.length} buffered bytes do not fit its capacity of ${pipe.capacity}`);
      if (pipe.data.length > 0) this.writeAll(w, pipe.data, null);
      // Each end goes to the first description with its access mode; the rest reopen the pipe.
      let readTaken = false;
      let writeTaken = false;
      for (const file of files) {
        this.current = file;
        const mode = file.flags & O.ACCMODE;
        const path = (file.flags & O.PATH) !== 0;
        if (mode === O.RDONLY && !path && !readTaken) {
          readTaken = true;
          this.temps.set(file.id, { fd: r, flags: O.RDONLY | direct });
        } else if (mode === O.WRONLY && !path && !writeTaken) {
          writeTaken = true;
          this.temps.set(file.id, { fd: w, flags: O.WRONLY | direct });
        } else {
          const flags = openFlags(file);
          this.temps.set(file.id, { fd: this.open(`/proc/self/fd/${mode === O.WRONLY ? w : r}`, flags), flags });
        }
      }
      // An end no description took (its other end had been closed everywhere) is closed in step 4.
    }
  }

  private buildFifos(): void {
    for (const fifo of this.state.fifos) {
      const files = this.state.files.filter((f) => f.kind === 'fifo' && f.fifo === fifo.id);
      this.current = files[0] ?? null;
      // Held open read-write meanwhile, so that opening either end does not block.
      const helper = this.open(fifo.path, O.RDWR | O.NONBLOCK);
      if (fifo.capacity !== DEFAULT_PIPE_CAPACITY) this.sys(SYSCALL.fcntl, [helper, F.SETPIPE_SZ, fifo.capacity], `fcntl(F_SETPIPE_SZ ${fifo.capacity})`);
      if (fifo.data.length > 0) this.writeAll(helper, fifo.data, null);
      for (const file of files) {
        this.current = file;
        const flags = openFlags(file) | O.NONBLOCK;
        this.temps.set(file.id, { fd: this.open(fifo.path, flags), flags });
      }
    }
  }

  private buildEventfds(): void {
    for (const file of this.state.files) {
      if (file.kind !== 'eventfd') continue;
      this.current = file;
      const nonblock = file.flags & O.NONBLOCK;
      const fd = this.high(this.sys(NR_eventfd2, [0, O.CLOEXEC | nonblock | (file.semaphore ? EFD_SEMAPHORE : 0)], 'eventfd2'));
      // The initial value is 32 bits; a write adds all 64.
      if (file.count > 0n) this.writeAll(fd, u64(file.count), null);
      this.temps.set(file.id, { fd, flags: O.RDWR | nonblock });
    }
  }

  private buildTimerfds(): void {
    for (const file of this.state.files) {
      if (file.kind !== 'timerfd') continue;
      this.current = file;
      const nonblock = file.flags & O.NONBLOCK;
      const fd = this.high(this.sys(NR_timerfd_create, [file.clockid, O.CLOEXEC | nonblock], `timerfd_create(clock ${file.clockid})`));
      // A periodic timer that expired and was not read since shows no time left: the kernel
      // re-arms it only at the next read. It goes on one interval from now.
      const expiredPeriodic = file.value[0] === 0 && file.value[1] === 0 && (file.interval[0] !== 0 || file.interval[1] !== 0);
      const value = expiredPeriodic ? file.interval : file.value;
      if (value[0] !== 0 || value[1] !== 0) {
        const spec = Buffer.alloc(32); // struct itimerspec: it_interval, it_value
        spec.writeBigInt64LE(BigInt(file.interval[0]), 0);
        spec.writeBigInt64LE(BigInt(file.interval[1]), 8);
        spec.writeBigInt64LE(BigInt(value[0]), 16);
        spec.writeBigInt64LE(BigInt(value[1]), 24);
        this.sys(NR_timerfd_settime, [fd, 0, this.put(spec), 0], 'timerfd_settime');
      }
      // After timerfd_settime, which clears them.
      if (file.ticks > 0n) this.sys(SYSCALL.ioctl, [fd, TFD_IOC_SET_TICKS, this.put(u64(file.ticks))], `ioctl(TFD_IOC_SET_TICKS ${file.ticks})`);
      this.temps.set(file.id, { fd, flags: O.RDWR | nonblock });
    }
  }

  private buildSignalfds(): void {
    for (const file of this.state.files) {
      if (file.kind !== 'signalfd') continue;
      this.current = file;
      const nonblock = file.flags & O.NONBLOCK;
      const fd = this.high(this.sys(NR_signalfd4, [-1, this.put(u64(file.mask)), 8, O.CLOEXEC | nonblock], 'signalfd4'));
      this.temps.set(file.id, { fd, flags: O.RDWR | nonblock });
    }
  }

  private buildSocketpairs(): void {
    for (const pair of this.state.socketpairs ?? []) {
      const files = this.state.files.filter((f) => f.kind === 'unix-stream' && f.pair === pair.id);
      this.current = files[0] ?? null;
      this.remote.resetScratch();
      const ends = this.remote.reserve(8);
      this.sys(NR_socketpair, [AF_UNIX, SOCK_STREAM | O.CLOEXEC, 0, ends], 'socketpair(AF_UNIX, SOCK_STREAM)');
      const raw = this.remote.readMemory(ends, 8);
      const fds = [this.high(raw.readInt32LE(0)), this.high(raw.readInt32LE(4))];
      // What end i had to read is sent again from the other end.
      if (pair.queued[0].length > 0) this.writeAll(fds[1], pair.queued[0], null);
      if (pair.queued[1].length > 0) this.writeAll(fds[0], pair.queued[1], null);
      for (const file of files) if (file.kind === 'unix-stream') this.temps.set(file.id, { fd: fds[file.end], flags: O.RDWR });
    }
  }

  private buildEpolls(): void {
    for (const file of this.state.files) {
      if (file.kind !== 'epoll') continue;
      this.current = file;
      this.temps.set(file.id, { fd: this.high(this.sys(NR_epoll_create1, [O.CLOEXEC], 'epoll_create1')), flags: O.RDWR });
    }
  }

  /** After step 3: every watched file is at its fd number. */
  private watchEpollTargets(): void {
    for (const file of this.state.files) {
      if (file.kind !== 'epoll') continue;
      this.current = file;
      const epfd = this.temps.get(file.id)!.fd;
      for (const target of file.targets) {
        const event = Buffer.alloc(12); // struct epoll_event is packed on x86_64: u32 events, u64 data
        event.writeUInt32LE(target.events >>> 0, 0);
        event.writeBigUInt64LE(target.data, 4);
        this.sys(NR_epoll_ctl, [epfd, EPOLL_CTL_ADD, target.fd, this.put(event)], `epoll_ctl(EPOLL_CTL_ADD fd ${target.fd})`);
      }
    }
  }

  build(ignoreChangedFiles: boolean): RestoreFilesResult {
    const { remote, state } = this;
    const warnings = verifyOpenFiles(state, ignoreChangedFiles);
    if (!remote.scratch) throw this.fail('the process has no scratch memory mapped for the restore');

    const present = listFds(this.pid);
    this.base = [...present, ...state.fds.map((e) => e.fd)].reduce((a, b) => Math.max(a, b), 2) + 1;

    // 1. the restorer's stdio, for inherited descriptions
    for (const file of state.files) {
      if (file.kind !== 'inherited') continue;
      this.current = file;
      for (const stdio of new Set([file.stdio, ...this.fdsOf(file).filter((fd) => fd <= 2)])) {
        if (this.saved.has(stdio)) continue;
        if (!present.includes(stdio)) {
          throw this.fail(`it was inherited from outside the process (${file.link}), but the restorer has no fd ${stdio} to give it`);
        }
        this.saved.set(stdio, this.sys(SYSCALL.fcntl, [stdio, F.DUPFD_CLOEXEC, this.base], 'fcntl(F_DUPFD_CLOEXEC)'));
      }
    }

    // 2. objects and descriptions at temporary fds
    this.buildPipes();
    this.buildFifos();
    this.buildMemfds();
    this.buildGhosts();
    this.buildEventfds();
    this.buildTimerfds();
    this.buildSignalfds();
    this.buildSocketpairs();
    this.buildEpolls();
    for (const file of state.files) {
      this.current = file;
      if (file.kind === 'device' && file.deleted) {
        this.buildDeletedDevice(file, file.deleted);
      } else if (file.kind === 'regular' || file.kind === 'directory' || file.kind === 'device') {
        const flags = openFlags(file);
        this.temps.set(file.id, { fd: this.open(file.path, flags), flags });
      }
    }
    for (const file of state.files) {
      const temp = this.temps.get(file.id);
      if (!temp) continue;
      this.current = file;
      if (hasPosition(file) && file.pos !== 0n) this.sys(SYSCALL.lseek, [temp.fd, file.pos, SEEK.SET], `lseek to ${file.pos}`);
      const wanted = file.flags & SETFL_MASK;
      if ((file.flags & O.PATH) === 0 && (temp.flags & SETFL_MASK) !== wanted) {
        this.sys(SYSCALL.fcntl, [temp.fd, F.SETFL, (file.flags & ~(O.CLOEXEC | O.ASYNC)) >>> 0], 'fcntl(F_SETFL)');
      }
    }

    // 3. every fd number
    for (const entry of state.fds) {
      const file = state.files[entry.file];
      this.current = file;
      const source = file.kind === 'inherited' ? this.saved.get(entry.fd <= 2 ? entry.fd : file.stdio) : this.temps.get(file.id)?.fd;
      if (source === undefined) throw this.fail('no description was built for it');
      this.sys(SYSCALL.dup3, [source, entry.fd, entry.cloexec ? O.CLOEXEC : 0], `dup3 to fd ${entry.fd}`);
    }
    this.watchEpollTargets();

    // 4. nothing else stays open
    this.current = null;
    const wanted = new Set(state.fds.map((e) => e.fd));
    for (const fd of listFds(this.pid)) {
      if (!wanted.has(fd)) this.sys(SYSCALL.close, [fd], `close of fd ${fd}`);
    }
    remote.resetScratch();
    return { warnings };
  }
}

export function restoreFiles(remote: RemoteTask, pid: number, state: FilesState, options: RestoreFilesOptions = {}): RestoreFilesResult {
  return new FdTableBuilder(remote, pid, state).build(options.ignoreChangedFiles === true);
}
