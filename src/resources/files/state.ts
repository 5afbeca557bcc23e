/**
 * The FILES note: the fd table of a process as three layers, as the kernel has it (and
 * as CRIU's images have it):
 *
 *   fd number  ->  open file description (flags, position; shared by dup'ed fds)
 *              ->  the object behind it (a path, or a pipe/FIFO/memfd/deleted file that
 *                  several descriptions may share and whose contents the image stores;
 *                  an eventfd's counter, a timerfd's timer, a signalfd's mask, what an
 *                  epoll instance watches belong to their one description)
 *
 * Restore creates each object once, each description once, and installs every fd as a
 * duplicate of its description, so dup'ed fds keep sharing their offset and flags.
 */
import type { FileIdentity } from '../file-identity.js';
import type { EpollTarget } from '../../proc/fds.js';

export const FILES_NOTE_VERSION = 1;

/** One entry of the fd table. */
export interface FdEntry {
  fd: number;
  /** Index of its open file description in FilesState.files. */
  file: number;
  /** FD_CLOEXEC (restored with dup3(..., O_CLOEXEC)). */
  cloexec: boolean;
}

interface OpenFileCommon {
  /** Its index in FilesState.files. */
  id: number;
  /** f_flags as /proc/PID/fdinfo prints them, without O_CLOEXEC (a per-fd flag). */
  flags: number;
  /** File position. */
  pos: bigint;
  /** What /proc/PID/fd/N pointed to, for messages and `stasis inspect`. */
  link: string;
}

/** A file reopened by path; `identity` is checked at restore (absent for /proc, /sys... files). */
export interface RegularFile extends OpenFileCommon {
  kind: 'regular';
  path: string;
  identity?: FileIdentity;
}

export interface DirectoryFile extends OpenFileCommon {
  kind: 'directory';
  path: string;
}

/**
 * A node of /dev/null, /dev/zero, /dev/full, /dev/random or /dev/urandom: reopened by its
 * own path (so a node with another mode or owner than /dev/null's stays that node), or,
 * deleted while open (`deleted`), made again with mknod at that path or beside it with
 * its owner, mode and times, opened and unlinked.
 */
export interface DeviceFile extends OpenFileCommon {
  kind: 'device';
  path: string;
  major: number;
  minor: number;
  deleted?: FileAttributes;
}

/**
 * What fstat and the xattrs say of a file that a restore makes again (a deleted file or
 * device node). The change time cannot be set (the kernel stamps it on every change).
 */
export interface FileAttributes {
  /** Permission bits with setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  /** Nanoseconds since the epoch, as decimal strings. */
  atimeNs: string;
  mtimeNs: string;
  /** Extended attributes (user.*, trusted.*, system.posix_acl_*, security.capability), name -> value. */
  xattrs: Array<{ name: string; value: Buffer }>;
}

export interface MemfdFile extends OpenFileCommon {
  kind: 'memfd';
  /** Index in FilesState.memfds. */
  memfd: number;
}

export interface GhostFile extends OpenFileCommon {
  kind: 'ghost';
  /** Index in FilesState.ghosts. */
  ghost: number;
}

export interface PipeFile extends OpenFileCommon {
  kind: 'pipe';
  /** Index in FilesState.pipes. */
  pipe: number;
}

export interface FifoFile extends OpenFileCommon {
  kind: 'fifo';
  /** Index in FilesState.fifos. */
  fifo: number;
}

/**
 * An eventfd: the object is the description itself (eventfd2 makes one file per counter;
 * dups share it), so its counter lives here. f_flags carry O_NONBLOCK.
 */
export interface EventfdFile extends OpenFileCommon {
  kind: 'eventfd';
  /** The counter (fdinfo eventfd-count). */
  count: bigint;
  /** EFD_SEMAPHORE: each read takes 1 instead of the whole count. */
  semaphore: boolean;
}

/**
 * A timerfd (like an eventfd, the description is the object): its clock, the time left to
 * its next expiry and its interval, and the expirations not read yet. A timer set with
 * TFD_TIMER_ABSTIME comes back relative, as every timer does: time as an image does not count.
 * A periodic timer with unread expirations comes back with those (`ticks`), but not with
 * the periods that passed since the first of them, which the kernel counts only at a read.
 */
export interface TimerfdFile extends OpenFileCommon {
  kind: 'timerfd';
  clockid: number;
  /** Expirations not read yet. */
  ticks: bigint;
  /** Time left to the next expiry, [seconds, nanoseconds]; [0, 0]: disarmed. */
  value: [number, number];
  interval: [number, number];
}

/**
 * An epoll instance and what it watches: each file under the fd number it was added with
 * (the file must still be open there), its event mask and its data. The ready list is not
 * kept: re-adding a file that is ready queues it again.
 */
export interface EpollFile extends OpenFileCommon {
  kind: 'epoll';
  targets: EpollTarget[];
}

/** One end of a Unix stream socketpair whose two ends are in the process. */
export interface UnixStreamFile extends OpenFileCommon {
  kind: 'unix-stream';
  /** Index in FilesState.socketpairs. */
  pair: number;
  /** Which end: 0 or 1. */
  end: 0 | 1;
}

/** A signalfd: the signals it reads (the signals themselves are the process's and threads'). */
export interface SignalfdFile extends OpenFileCommon {
  kind: 'signalfd';
  mask: bigint;
}

/**
 * A description that leads outside the process (a terminal, a socket, a pipe whose other
 * end another process holds) on fd 0, 1 or 2: at restore, each of its fds 0-2 becomes a
 * duplicate of the restorer's own fd of that number, and its other fds duplicates of the
 * restorer's fd `stdio` (its lowest fd among 0-2).
 */
export interface InheritedFile extends OpenFileCommon {
  kind: 'inherited';
  stdio: number;
}

export type OpenFile = RegularFile | DirectoryFile | DeviceFile | MemfdFile | GhostFile | PipeFile | FifoFile | EventfdFile | TimerfdFile | SignalfdFile | EpollFile | UnixStreamFile | InheritedFile;

/** File contents stored in the image: only the data ranges (SEEK_DATA/SEEK_HOLE); the rest is holes. */
export interface StoredContents {
  size: number;
  ranges: Array<{ offset: number; data: Buffer }>;
}

/** An anonymous pipe with at least one end in the process. */
export interface PipeObject {
  id: number;
  /** Inode number at dump time (pipe:[ino]). */
  ino: string;
  /** Capacity in bytes (F_GETPIPE_SZ). */
  capacity: number;
  /** Bytes that were buffered, unread (copied with tee(2), not consumed). */
  data: Buffer;
}

/** A named pipe: reopened by path; `data` is put back only when both ends were in the process. */
export interface FifoObject {
  id: number;
  path: string;
  capacity: number;
  data: Buffer;
}

/** A connected pair of Unix stream sockets; `queued[i]` is what end i had to read (copied, not taken). */
export interface SocketpairObject {
  id: number;
  /** Socket inodes at dump time (socket:[ino]) of end 0 and end 1. */
  inodes: [string, string];
  queued: [Buffer, Buffer];
}

export interface MemfdObject {
  id: number;
  /** The name given to memfd_create (without the '/memfd:' prefix). */
  name: string;
  /** F_GET_SEALS (F_SEAL_SEAL alone for a memfd created without MFD_ALLOW_SEALING). */
  seals: number;
  /** Permission bits (0777, or 0666 for MFD_NOEXEC_SEAL). */
  mode: number;
  /** st_dev as /proc/PID/maps prints it (hex major:minor) and the inode, to find its mappings. */
  dev: string;
  ino: string;
  contents: StoredContents;
}

/** A file deleted while open: re-created at restore, opened, and unlinked again. */
export interface GhostObject {
  id: number;
  /** Where it was ('/dir/name' without ' (deleted)'). */
  path: string;
  /** Permission bits. */
  mode: number;
  /** Always false: a deleted file with other hard links is reopened through one of them (a regular file). */
  otherLinks: boolean;
  /** Owner, times and xattrs (absent in older images). */
  attributes?: FileAttributes;
  dev: string;
  ino: string;
  contents: StoredContents;
}

export interface FilesState {
  /** Ascending by fd. */
  fds: FdEntry[];
  files: OpenFile[];
  pipes: PipeObject[];
  fifos: FifoObject[];
  memfds: MemfdObject[];
  ghosts: GhostObject[];
  socketpairs: SocketpairObject[];
}

/** The fd (at dump time and after restore) through which the memfd or deleted file with this dev/inode can be mapped. */
export function fdForInode(state: FilesState, dev: string, ino: number | string): number | undefined {
  const want = String(ino);
  const memfd = state.memfds.find((m) => m.dev === dev && m.ino === want);
  const ghost = memfd ? undefined : state.ghosts.find((g) => g.dev === dev && g.ino === want);
  if (!memfd && !ghost) return undefined;
  const entry = state.fds.find((e) => {
    const f = state.files[e.file];
    return (memfd && f.kind === 'memfd' && f.memfd === memfd.id) || (ghost && f.kind === 'ghost' && f.ghost === ghost.id);
  });
  return entry?.fd;
}

/** One row per fd, for `stasis inspect`. */
export interface FdSummary {
  fd: number;
  kind: OpenFile['kind'];
  /** What it pointed to at dump time. */
  what: string;
  flags: number;
  pos: bigint;
  cloexec: boolean;
  /** Other fds of the same open file description. */
  dupOf: number[];
  /** Bytes the image stores for it (pipe/FIFO buffer, memfd or deleted file contents). */
  storedBytes: number;
}

export function summarizeFiles(state: FilesState): FdSummary[] {
  const stored = (file: OpenFile): number => {
    const sum = (c: StoredContents) => c.ranges.reduce((n, r) => n + r.data.length, 0);
    switch (file.kind) {
      case 'pipe':
        return state.pipes[file.pipe].data.length;
      case 'fifo':
        return state.fifos[file.fifo].data.length;
      case 'memfd':
        return sum(state.memfds[file.memfd].contents);
      case 'ghost':
        return sum(state.ghosts[file.ghost].contents);
      case 'unix-stream':
        return state.socketpairs[file.pair].queued[file.end].length;
      default:
        return 0;
    }
  };
  return state.fds.map((entry) => {
    const file = state.files[entry.file];
    return {
      fd: entry.fd,
      kind: file.kind,
      what: file.link,
      flags: file.flags,
      pos: file.pos,
      cloexec: entry.cloexec,
      dupOf: state.fds.filter((e) => e.file === entry.file && e.fd !== entry.fd).map((e) => e.fd),
      storedBytes: stored(file),
    };
  });
}
