/**
 * Looking at a process's fd table from outside, through /proc: what each fd is, which fds
 * share an open file description (kcmp KCMP_FILE), whether a pipe's other end is in the
 * process, and what cannot be checkpointed and why. Shared by `stasis check` (process
 * running) and capture (process frozen), so both say the same thing.
 */
import { closeSync, lstatSync, readdirSync, readlinkSync, readFileSync, statSync, statfsSync, type BigIntStats } from 'node:fs';
import { dirname, join } from 'node:path';
import { StasisError } from '../../errors.js';
import { listFds, readFdLink, readFdInfo, statFd, devMajor, devMinor, type FdInfo } from '../../proc/fds.js';
import { O, POLL, pollNow, bytesPending, sameOpenFile, sameFdTable, isEpollTarget, pidfdOpen, pidfdGetfd, closeFd, openByHandle } from '../../sys/fd.js';
import { unixSocketInfo, peekQueued, SOCK_TYPE, type UnixSocketInfo } from '../../sys/sockdiag.js';

/** Memfd and deleted-file contents go into the image note; above this they are refused. */
export const MAX_STORED_FILE_BYTES = 64 << 20;

const PROC_SUPER_MAGIC = 0x9fa0;
const SYSFS_MAGIC = 0x62656572;
const CGROUP2_SUPER_MAGIC = 0x63677270;
const MQUEUE_MAGIC = 0x19800202;
const HUGETLBFS_MAGIC = 0x958458f6;

const S_IFMT = 0o170000n;
const S_IFREG = 0o100000n;
const S_IFDIR = 0o040000n;
const S_IFCHR = 0o020000n;
const S_IFBLK = 0o060000n;
const S_IFIFO = 0o010000n;
const S_IFSOCK = 0o140000n;

/**
 * Eventfds, timerfds, signalfds and epoll instances are files on the one anonymous inode:
 * they are told apart by kcmp, not by inode. All but signalfds hold state that a sharer
 * would see change.
 */
export const EVENTFD_LINK = 'anon_inode:[eventfd]';
export const TIMERFD_LINK = 'anon_inode:[timerfd]';
export const SIGNALFD_LINK = 'anon_inode:[signalfd]';
export const EPOLL_LINK = 'anon_inode:[eventpoll]';
const SHARED_STATE_LINKS = new Set([EVENTFD_LINK, TIMERFD_LINK, EPOLL_LINK]);
/** TFD_TIMER_CANCEL_ON_SET in fdinfo's "settime flags". */
const TFD_TIMER_CANCEL_ON_SET = 2;

/** Character devices with no state worth keeping, reopened by their canonical path (major 1, drivers/char/mem.c). */
const MEM_DEVICES = new Map<number, string>([
  [3, '/dev/null'],
  [5, '/dev/zero'],
  [7, '/dev/full'],
  [8, '/dev/random'],
  [9, '/dev/urandom'],
]);

export type FdClass =
  /** otherLinkOf: deleted at that path, reopened through `path`, another hard link of it. */
  | { kind: 'regular'; path: string; identity: boolean; otherLinkOf?: string }
  | { kind: 'directory'; path: string }
  | { kind: 'ghost'; path: string; otherLinks: boolean }
  | { kind: 'memfd'; name: string }
  | { kind: 'device'; path: string; major: number; minor: number; deleted: boolean }
  | { kind: 'pipe' }
  | { kind: 'fifo'; path: string }
  | { kind: 'eventfd' }
  | { kind: 'timerfd' }
  | { kind: 'signalfd' }
  | { kind: 'epoll' }
  | { kind: 'socket' }
  | { kind: 'unix-stream'; peer: bigint; queued: number; why?: string }
  | { kind: 'terminal' }
  | { kind: 'unsupported'; reason: string };

export interface ProbedFd {
  fd: number;
  link: string;
  st: BigIntStats;
  info: FdInfo;
  cls: FdClass;
}

export type Decision = 'restore' | 'inherited' | 'unsupported';

/** One open file description of the process and what will become of it. */
export interface Description {
  fds: number[];
  /** The probe of each of its fds (fds.length of them, same order). */
  members: ProbedFd[];
  /** The probe of its lowest fd. */
  first: ProbedFd;
  /** f_flags without O_CLOEXEC. */
  flags: number;
  pos: bigint;
  decision: Decision;
  /** Why it is unsupported, or a note on how it will be restored. */
  reason?: string;
  /**
   * For 'inherited': its lowest fd among 0-2. At restore each of its fds 0-2 becomes the
   * restorer's fd of the same number, and its other fds duplicates of the restorer's `stdio`.
   */
  stdio?: number;
  /** For pipes and FIFOs: an end outside the process exists (so the buffered data is not ours to restore). */
  halfOutside?: boolean;
}

export interface Inspection {
  pid: number;
  probes: ProbedFd[];
  descriptions: Description[];
  /** Threads with an fd table of their own (cloned without CLONE_FILES): not supported. */
  ownTables: number[];
}

/** Threads of `pid` that do not share its fd table. */
export function threadsWithOwnFdTable(pid: number): number[] {
  let tids: number[];
  try {
    tids = readdirSync(`/proc/${pid}/task`).map(Number).filter((tid) => tid !== pid);
  } catch {
    return [];
  }
  return tids.filter((tid) => {
    try {
      return !sameFdTable(pid, tid);
    } catch {
      return false; // exited, or kcmp unavailable
    }
  });
}

export function inodeKey(st: BigIntStats): string {
  return `${st.dev}:${st.ino}`;
}

/** st_dev the way /proc/PID/maps prints it. */
export function mapsDev(st: BigIntStats): string {
  const hex = (n: number) => n.toString(16).padStart(2, '0');
  return `${hex(devMajor(st.dev))}:${hex(devMinor(st.dev))}`;
}

function fsType(path: string): number {
  try {
    return statfsSync(path).type;
  } catch {
    return 0;
  }
}

function describeAnon(link: string): string {
  const what = link.replace(/^anon_inode:/, '').replace(/^\[(.*)\]$/, '$1');
  const known: Record<string, string> = {
    inotify: 'inotify instances cannot be checkpointed yet',
    fanotify: 'fanotify instances cannot be checkpointed yet',
    io_uring: 'io_uring instances cannot be checkpointed',
    pidfd: 'pidfds cannot be checkpointed yet',
    perf_event: 'perf events cannot be checkpointed',
    userfaultfd: 'userfaultfds cannot be checkpointed',
    'bpf-map': 'BPF objects cannot be checkpointed',
    'bpf-prog': 'BPF objects cannot be checkpointed',
    bpf_link: 'BPF objects cannot be checkpointed',
    secretmem: 'secret memory cannot be read, so it cannot be checkpointed',
  };
  return known[what] ?? `${what} file descriptors cannot be checkpointed`;
}

/**
 * A connected, unnamed Unix stream socket (a socketpair's end, as event loops use for
 * wake-ups) can come back, if its peer is in the process too (decide() checks); any other
 * socket is kept as 'socket' (re-attached when it is stdio, refused otherwise).
 */
function classifySocket(st: BigIntStats): FdClass {
  let unix: UnixSocketInfo | null = null;
  try {
    unix = unixSocketInfo(st.ino);
  } catch {
    // no sock_diag (CONFIG_UNIX_DIAG): every socket stays unsupported
  }
  if (!unix || unix.type !== SOCK_TYPE.STREAM || unix.name !== null || unix.peer === 0n) return { kind: 'socket' };
  const why = unix.shutdown !== 0 ? 'a Unix socket shut down for reading or writing cannot be checkpointed yet' : unix.rqueue > MAX_SOCKET_QUEUE ? `${unix.rqueue} bytes are queued to it, more than the ${MAX_SOCKET_QUEUE} a restore puts back` : undefined;
  return { kind: 'unix-stream', peer: unix.peer, queued: unix.rqueue, why };
}

/** Bytes queued to a socket that a restore writes back through its peer (within the default buffer). */
const MAX_SOCKET_QUEUE = 64 << 10;

function isTerminal(major: number, minor: number): boolean {
  // 4: virtual consoles and serial ports; 5:0 /dev/tty, 5:1 console, 5:2 ptmx; 136-143: /dev/pts/*
  return major === 4 || (major === 5 && minor <= 2) || (major >= 136 && major <= 143);
}

export function classify(pid: number, fd: number, link: string, st: BigIntStats): FdClass {
  const type = st.mode & S_IFMT;
  const procPath = `/proc/${pid}/fd/${fd}`;
  if (type === S_IFSOCK) return classifySocket(st);
  if (type === S_IFIFO) {
    if (link.startsWith('pipe:[')) return { kind: 'pipe' };
    if (link.endsWith(' (deleted)')) return { kind: 'unsupported', reason: 'the FIFO was deleted while open and cannot be reopened' };
    return { kind: 'fifo', path: link };
  }
  if (link === EVENTFD_LINK) return { kind: 'eventfd' };
  if (link === TIMERFD_LINK) return { kind: 'timerfd' };
  if (link === SIGNALFD_LINK) return { kind: 'signalfd' };
  if (link === EPOLL_LINK) return { kind: 'epoll' };
  if (link.startsWith('anon_inode:') || link.startsWith('pidfd:')) return { kind: 'unsupported', reason: describeAnon(link.replace(/^pidfd:.*/, 'pidfd')) };
  if (!link.startsWith('/')) return { kind: 'unsupported', reason: `${link.replace(/:.*/, '')} file descriptors cannot be checkpointed` };
  if (type === S_IFCHR) {
    const major = devMajor(st.rdev);
    const minor = devMinor(st.rdev);
    if (major === 1 && MEM_DEVICES.has(minor)) {
      // Its own node, not the canonical one: a node made elsewhere may have another mode or owner.
      if (link.endsWith(' (deleted)')) return { kind: 'device', path: link.slice(0, -' (deleted)'.length), major, minor, deleted: true };
      const moved = otherFileAt(link, st);
      if (moved) return { kind: 'unsupported', reason: moved };
      return { kind: 'device', path: link, major, minor, deleted: false };
    }
    if (isTerminal(major, minor)) return { kind: 'terminal' };
    return { kind: 'unsupported', reason: `character device ${major}:${minor} cannot be checkpointed` };
  }
  if (type === S_IFBLK) return { kind: 'unsupported', reason: 'block devices cannot be checkpointed' };
  const deleted = link.endsWith(' (deleted)');
  const path = deleted ? link.slice(0, -' (deleted)'.length) : link;
  if (type === S_IFDIR) {
    if (deleted) return { kind: 'unsupported', reason: 'the directory was deleted while open' };
    return { kind: 'directory', path };
  }
  if (type !== S_IFREG) return { kind: 'unsupported', reason: `files of type 0${(type >> 12n).toString(8)} cannot be checkpointed` };
  const fs = fsType(procPath);
  if (fs === MQUEUE_MAGIC) return { kind: 'unsupported', reason: 'POSIX message queues cannot be checkpointed yet' };
  if (fs === HUGETLBFS_MAGIC) return { kind: 'unsupported', reason: 'files on hugetlbfs (MFD_HUGETLB memfds) cannot be checkpointed yet' };
  if (deleted && st.nlink === 0n && path.startsWith('/memfd:')) return { kind: 'memfd', name: path.slice('/memfd:'.length) };
  if (deleted && st.nlink > 0n) {
    // Unlinked under this name but linked under another: a copy would part from that name's
    // data, so the same inode is reopened through the name that is left, or it is refused.
    const other = otherLink(pid, fd, path, st);
    if (!other) {
      return { kind: 'unsupported', reason: `it was deleted while open but still has ${st.nlink} other hard link(s), none of them found (through its file handle, or in ${dirname(path)}); a copy would no longer share its data with them` };
    }
    return { kind: 'regular', path: other, identity: true, otherLinkOf: path };
  }
  if (deleted) return { kind: 'ghost', path, otherLinks: false };
  // The fd's file must still be the one at its path, or reopening it would open another file.
  const moved = otherFileAt(path, st);
  if (moved) return { kind: 'unsupported', reason: moved };
  const pseudo = fs === PROC_SUPER_MAGIC || fs === SYSFS_MAGIC || fs === CGROUP2_SUPER_MAGIC;
  return { kind: 'regular', path, identity: !pseudo };
}

/** Why `path` no longer leads to the fd's file (st), or null when it does. */
function otherFileAt(path: string, st: BigIntStats): string | null {
  let atPath: BigIntStats;
  try {
    atPath = statSync(path, { bigint: true });
  } catch {
    return `its path ${path} cannot be reached from here (another mount namespace or chroot?)`;
  }
  if (atPath.dev !== st.dev || atPath.ino !== st.ino) return `${path} is now another file; the open one is reachable only through the fd`;
  return null;
}

/** Directories larger than this are not searched for a deleted file's other link. */
const MAX_LINK_SEARCH = 100_000;

/** Whether `path` is a name of the file `st` (same device and inode). */
function isNameOf(path: string, st: BigIntStats): boolean {
  try {
    const found = lstatSync(path, { bigint: true });
    return found.dev === st.dev && found.ino === st.ino;
  } catch {
    return false;
  }
}

/**
 * Another name of the file `st` that fd `fd` of `pid` has open, deleted at `path`: the
 * name the kernel gives it when it is reached through its file handle (any directory), or
 * an entry with its device and inode in the directory it was deleted from.
 */
function otherLink(pid: number, fd: number, path: string, st: BigIntStats): string | null {
  try {
    const byHandle = openByHandle(`/proc/${pid}/fd/${fd}`);
    try {
      const name = readlinkSync(`/proc/self/fd/${byHandle}`);
      if (name.startsWith('/') && !name.endsWith(' (deleted)') && isNameOf(name, st)) return name;
    } finally {
      closeFd(byHandle);
    }
  } catch {
    // no handles on this file system, or no CAP_DAC_READ_SEARCH: search the directory
  }
  const dir = dirname(path);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return null;
  }
  if (names.length > MAX_LINK_SEARCH) return null;
  for (const name of names) {
    const candidate = join(dir, name);
    if (isNameOf(candidate, st)) return candidate;
  }
  return null;
}

export function probe(pid: number, fd: number): ProbedFd | null {
  try {
    const link = readFdLink(pid, fd);
    const st = statFd(pid, fd);
    const info = readFdInfo(pid, fd);
    // In a running process the number may have been closed and reused meanwhile (a thread's
    // eventfd now an epoll): what was read then describes two files, and the fd is short-lived.
    if (readFdLink(pid, fd) !== link || statFd(pid, fd).ino !== st.ino) return null;
    let cls = classify(pid, fd, link, st);
    // An O_PATH fd names a file without opening it: whatever the file is, it is reopened by path.
    if (info.flags & O.PATH && link.startsWith('/') && !link.endsWith(' (deleted)') && cls.kind !== 'directory' && cls.kind !== 'regular') {
      cls = { kind: 'regular', path: link, identity: false };
    }
    return { fd, link, st, info, cls };
  } catch (err) {
    // Closed between the listing and the probe (the process runs during `check`).
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * Splits fds on one inode into open file descriptions. kcmp(KCMP_FILE) is exact; without
 * it (ENOSYS, EPERM), fds with the same flags and position are taken for dups.
 */
function groupDescriptions(pid: number, probes: ProbedFd[]): ProbedFd[][] {
  const groups: ProbedFd[][] = [];
  for (const p of probes) {
    const same = groups.find((g) => {
      const q = g[0];
      try {
        return sameOpenFile(pid, q.fd, pid, p.fd);
      } catch {
        return q.info.pos === p.info.pos && (q.info.flags & ~O.CLOEXEC) === (p.info.flags & ~O.CLOEXEC);
      }
    });
    if (same) same.push(p);
    else groups.push([p]);
  }
  return groups;
}

function accessMode(flags: number): { read: boolean; write: boolean } {
  if (flags & O.PATH) return { read: false, write: false };
  const mode = flags & O.ACCMODE;
  return { read: mode === O.RDONLY || mode === O.RDWR, write: mode === O.WRONLY || mode === O.RDWR };
}

/**
 * Runs `fn` on a duplicate of fd `fd` of process `pid` (pidfd_getfd): the process's own
 * open file description, so probing a pipe or FIFO adds no reader or writer to it (an
 * open of /proc/PID/fd/N would, and could complete an open(2) blocked in the process).
 */
export function withTheirFd<T>(pid: number, fd: number, fn: (ours: number) => T): T {
  const pidfd = pidfdOpen(pid);
  try {
    const ours = pidfdGetfd(pidfd, fd, pid);
    try {
      return fn(ours);
    } finally {
      closeFd(ours);
    }
  } finally {
    closeFd(pidfd);
  }
}

/**
 * Whether the other end of a pipe that the process holds only one end of is open anywhere:
 * POLLHUP on a read end means no writer is left, POLLERR on a write end no reader.
 */
function otherEndOpen(pid: number, fd: number, weRead: boolean): boolean {
  return withTheirFd(pid, fd, (ours) => {
    const revents = pollNow(ours, weRead ? POLL.IN : POLL.OUT);
    return weRead ? (revents & POLL.HUP) === 0 : (revents & POLL.ERR) === 0;
  });
}

/** Bytes buffered in a pipe or FIFO, without reading them. */
export function pipePending(pid: number, fd: number): number {
  return withTheirFd(pid, fd, bytesPending);
}

function isStdio(d: Description): number | undefined {
  return d.fds.find((fd) => fd <= 2);
}

export function inspect(pid: number): Inspection {
  let fds: number[];
  try {
    fds = listFds(pid);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new StasisError('NO_SUCH_PROCESS', `no process with pid ${pid}`, { pid, cause: err });
    if (code === 'EACCES' || code === 'EPERM') throw new StasisError('PERMISSION_DENIED', `not permitted to read the fds of process ${pid} (/proc/${pid}/fd)`, { pid, cause: err });
    throw err;
  }
  const probes: ProbedFd[] = [];
  for (const fd of fds) {
    const p = probe(pid, fd);
    if (p) probes.push(p);
  }

  // Open file descriptions: dups share the inode, so only fds on one inode are compared.
  const byInode = new Map<string, ProbedFd[]>();
  for (const p of probes) {
    const key = inodeKey(p.st);
    const list = byInode.get(key);
    if (list) list.push(p);
    else byInode.set(key, [p]);
  }
  const descriptions: Description[] = [];
  for (const list of byInode.values()) {
    for (const group of groupDescriptions(pid, list)) {
      const first = group[0];
      descriptions.push({
        fds: group.map((p) => p.fd),
        members: group,
        first,
        flags: first.info.flags & ~O.CLOEXEC,
        pos: first.info.pos,
        decision: 'restore',
      });
    }
  }
  descriptions.sort((a, b) => a.fds[0] - b.fds[0]);

  for (const d of descriptions) decide(pid, d, descriptions);
  return { pid, probes, descriptions, ownTables: threadsWithOwnFdTable(pid) };
}

function decide(pid: number, d: Description, all: Description[]): void {
  const cls = d.first.cls;
  const unsupported = (reason: string) => {
    d.decision = 'unsupported';
    d.reason = reason;
  };
  const inherit = (stdio: number, what: string) => {
    d.decision = 'inherited';
    d.stdio = stdio;
    d.reason = what;
  };
  const stdio = isStdio(d);
  switch (cls.kind) {
    case 'unsupported':
      return unsupported(cls.reason);
    case 'socket':
      if (stdio !== undefined) return inherit(stdio, 'a socket');
      return unsupported('sockets cannot be checkpointed yet');
    case 'unix-stream': {
      // Both ends in the process (a socketpair of its own), or it leads outside.
      const peerHere = all.some((o) => o.first.cls.kind === 'unix-stream' && o.first.st.ino === cls.peer);
      if (!peerHere) {
        if (stdio !== undefined) return inherit(stdio, 'a socket');
        return unsupported('a Unix socket connected to another process cannot be checkpointed yet');
      }
      if (cls.why) return unsupported(cls.why);
      if (cls.queued > 0) {
        // Only bytes can be put back: not fds (SCM_RIGHTS) or credentials travelling with them.
        const peeked = withTheirFd(pid, d.fds[0], (ours) => peekQueued(ours, cls.queued));
        if (peeked.ancillary || peeked.data.length < cls.queued) {
          return unsupported('file descriptors or credentials travel with the bytes queued to it (SCM_RIGHTS, SCM_CREDENTIALS), which cannot be checkpointed yet');
        }
      }
      break;
    }
    case 'terminal':
      if (stdio !== undefined) return inherit(stdio, 'a terminal');
      return unsupported('terminals other than stdin, stdout and stderr cannot be checkpointed yet');
    default:
      break;
  }
  if (d.first.info.locks.length > 0) return unsupported(`it holds a file lock (${d.first.info.locks[0]}), which cannot be restored yet`);
  if (d.flags & O.ASYNC) return unsupported('signal-driven I/O (O_ASYNC) cannot be checkpointed yet');

  if (cls.kind === 'pipe' || cls.kind === 'fifo') {
    try {
      decidePipe(pid, d, all, stdio, inherit, unsupported);
    } catch (err) {
      unsupported(`its pipe could not be examined: ${(err as Error).message}`);
    }
    return;
  }
  if (cls.kind === 'eventfd' && !d.first.info.extra.has('eventfd-semaphore')) {
    // fdinfo shows EFD_SEMAPHORE since Linux 6.7; without it the eventfd's reads cannot be told.
    return unsupported('this kernel does not show whether an eventfd is a semaphore (eventfd-semaphore in fdinfo, Linux 6.7)');
  }
  if (cls.kind === 'timerfd' && parseInt(d.first.info.extra.get('settime flags') ?? '0', 8) & TFD_TIMER_CANCEL_ON_SET) {
    return unsupported('a timerfd set with TFD_TIMER_CANCEL_ON_SET cannot be checkpointed yet');
  }
  if (cls.kind === 'epoll') {
    // epoll watches files, registered under an fd number; the restore registers each under
    // that number again, so that file must still be open there.
    // One number can hold several registrations (a file added, its fd closed, another
    // file put at that number and added too): at most one of them is the file there now,
    // and re-adding both under one number fails (EEXIST). Every registration is compared,
    // the n-th one under a number with kcmp's toff = n (both walk the epoll's tree in order).
    const under = new Map<number, number>();
    for (const target of d.first.info.epollTargets) under.set(target.fd, (under.get(target.fd) ?? 0) + 1);
    for (const [fd, count] of under) {
      if (count > 1) return unsupported(`it watches ${count} files registered under fd ${fd}; only one of them can be the file open there now, the others are no longer open under the number they were added with`);
    }
    for (const target of d.first.info.epollTargets) {
      const there = watchedThere(pid, d.fds[0], target.fd);
      if (there === 'gone') continue;
      if (!there) return unsupported(`it watches a file that is no longer open at fd ${target.fd}, the number it was added under`);
    }
  }
  if (cls.kind === 'memfd' || cls.kind === 'ghost') {
    const stored = Math.min(Number(d.first.st.size), Number(d.first.st.blocks) * 512);
    if (stored > MAX_STORED_FILE_BYTES) {
      return unsupported(`its ${stored} bytes of contents exceed the ${MAX_STORED_FILE_BYTES >> 20} MiB that an image stores for a ${cls.kind === 'memfd' ? 'memfd' : 'deleted file'}`);
    }
  }
  if (cls.kind === 'regular' && cls.otherLinkOf) d.reason = `deleted while open at ${cls.otherLinkOf}; reopened through its other hard link ${cls.path}`;
  if (cls.kind === 'device' && cls.deleted) d.reason = 'a device node deleted while open; made again (mknod) with its owner, mode and times, and unlinked';
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Whether the file epoll fd `epfd` of `pid` watches under fd number `tfd` is the file open
 * there; 'gone' when that registration (or the epoll) is no longer there. In a running
 * process (`check`), a file closed a moment ago stays in the epoll while anyone (this
 * process reading its fdinfo, say) still holds a reference to it, and its number may hold
 * a new file already: a mismatch is believed only when it lasts.
 */
function watchedThere(pid: number, epfd: number, tfd: number): boolean | 'gone' {
  for (let attempt = 0; ; attempt++) {
    try {
      if (isEpollTarget(pid, tfd, epfd, tfd)) return true;
    } catch {
      // EBADF: nothing is open at that number any more (or the epoll is gone)
    }
    if (!stillRegistered(pid, epfd, tfd)) return 'gone';
    if (attempt === 3) return false;
    Atomics.wait(pause, 0, 0, 2); // 2 ms for a closing thread to finish
  }
}

/** Whether epoll fd `epfd` of `pid` is still there and still lists a registration under fd `tfd`. */
function stillRegistered(pid: number, epfd: number, tfd: number): boolean {
  try {
    return readFdInfo(pid, epfd).epollTargets.some((t) => t.fd === tfd);
  } catch {
    return false;
  }
}

/** What stasis will make of one description, for `stasis check`. */
export function describeKind(d: Description): string {
  const cls = d.first.cls;
  switch (cls.kind) {
    case 'regular':
      return 'file';
    case 'directory':
      return 'directory';
    case 'ghost':
      return 'deleted file';
    case 'memfd':
      return 'memfd';
    case 'device':
      return 'device';
    case 'pipe':
      return 'pipe';
    case 'fifo':
      return 'FIFO';
    case 'eventfd':
      return 'eventfd';
    case 'timerfd':
      return 'timerfd';
    case 'signalfd':
      return 'signalfd';
    case 'epoll':
      return 'epoll instance';
    case 'socket':
      return 'socket';
    case 'unix-stream':
      return 'Unix socketpair';
    case 'terminal':
      return 'terminal';
    default:
      return 'fd';
  }
}

/**
 * Other processes that hold the pipes, FIFOs, memfds, deleted files, eventfds, timerfds and epoll instances the
 * process is to be restored with (after a restore they would no longer share them), or
 * the other end of a pipe that makes it unsupported (to name who holds it). Processes we
 * may not look into are skipped.
 */
export function holdersElsewhere(pid: number, descriptions: Description[]): Map<Description, string[]> {
  const wanted = new Map<string, Description[]>(); // link text -> descriptions
  for (const d of descriptions) {
    const k = d.first.cls.kind;
    if (!(k === 'pipe' || k === 'fifo' || k === 'memfd' || k === 'ghost' || k === 'eventfd' || k === 'timerfd' || k === 'epoll' || k === 'unix-stream')) continue;
    if (d.decision !== 'restore' && !(d.decision === 'unsupported' && d.halfOutside)) continue;
    const list = wanted.get(d.first.link) ?? [];
    list.push(d);
    wanted.set(d.first.link, list);
  }
  const found = new Map<Description, string[]>();
  if (wanted.size === 0) return found;
  for (const entry of readdirSync('/proc')) {
    const other = Number(entry);
    if (!Number.isInteger(other) || other === pid || other === process.pid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${other}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(`/proc/${other}/fd/${fd}`);
      } catch {
        continue;
      }
      const candidates = wanted.get(link);
      if (!candidates) continue;
      let key: string;
      try {
        key = inodeKey(statSync(`/proc/${other}/fd/${fd}`, { bigint: true }));
      } catch {
        continue;
      }
      for (const d of candidates) {
        if (inodeKey(d.first.st) !== key) continue;
        if (SHARED_STATE_LINKS.has(link) && !sameFile(pid, d.fds[0], other, Number(fd))) continue;
        let comm = '?';
        try {
          comm = readFileSync(`/proc/${other}/comm`, 'utf8').trim();
        } catch {
          // gone
        }
        const list = found.get(d) ?? [];
        list.push(`process ${other} (${comm}) fd ${fd}`);
        found.set(d, list);
      }
    }
  }
  return found;
}

/**
 * kcmp(KCMP_FILE) across two processes; when it cannot tell (EPERM, ENOSYS), assume the
 * same file, to be safe. An fd or process that went away meanwhile (EBADF, ESRCH: the
 * process runs during the scan, and event loops open and close eventfds and epolls all
 * the time) shares nothing: it is not a sharer, and a closed fd of ours is not dumped.
 */
function sameFile(pid: number, fd: number, other: number, otherFd: number): boolean {
  try {
    return sameOpenFile(pid, fd, other, otherFd);
  } catch (err) {
    const code = (err as { code?: string }).code;
    return !(code === 'EBADF' || code === 'ESRCH');
  }
}

/** Pipes and FIFOs: both ends in the process, or stdio to outside, or an end whose other end is gone. */
function decidePipe(
  pid: number,
  d: Description,
  all: Description[],
  stdio: number | undefined,
  inherit: (stdio: number, what: string) => void,
  unsupported: (reason: string) => void,
): void {
  const cls = d.first.cls as { kind: 'pipe' } | { kind: 'fifo'; path: string };
  const key = inodeKey(d.first.st);
  const same = all.filter((o) => inodeKey(o.first.st) === key && o.first.cls.kind === cls.kind);
  const read = same.some((o) => accessMode(o.flags).read);
  const write = same.some((o) => accessMode(o.flags).write);
  if (read && write) return;
  d.halfOutside = true;
  const what = cls.kind === 'pipe' ? d.first.link : `FIFO ${cls.path}`;
  if (stdio !== undefined) return inherit(stdio, `a ${cls.kind === 'pipe' ? 'pipe' : 'FIFO'} whose other end is outside the process`);
  if (cls.kind === 'fifo') {
    const pending = pipePending(pid, d.fds[0]);
    if (pending > 0) return unsupported(`${what} holds ${pending} unread bytes and its other end is outside the process`);
    d.reason = `the other end of ${what} is outside the process; it is reopened by path`;
    return;
  }
  if (otherEndOpen(pid, d.fds[0], read)) {
    return unsupported(`the other end of ${what} is open outside the process: pipes to other processes cannot be checkpointed yet`);
  }
  d.reason = `its other end was closed everywhere; it is restored as such (${read ? 'no writer left' : 'no reader left'})`;
  return;
}
