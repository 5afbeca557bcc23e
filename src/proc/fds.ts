/** Readers of /proc/PID/fd and /proc/PID/fdinfo (Documentation/filesystems/proc.rst, 3.8). */
import { readdirSync, readlinkSync, readFileSync, statSync, type BigIntStats } from 'node:fs';

/** The open fd numbers of a process, ascending. */
export function listFds(pid: number): number[] {
  return readdirSync(`/proc/${pid}/fd`)
    .map(Number)
    .filter((n) => Number.isInteger(n))
    .sort((a, b) => a - b);
}

/** What /proc/PID/fd/N points to: a path ('/x (deleted)' when unlinked), 'pipe:[123]', 'socket:[123]', 'anon_inode:[eventfd]'... */
export function readFdLink(pid: number, fd: number): string {
  return readlinkSync(`/proc/${pid}/fd/${fd}`);
}

/** stat(2) of the file behind the fd (the magic link is followed, so this works for deleted files, pipes and sockets). */
export function statFd(pid: number, fd: number): BigIntStats {
  return statSync(`/proc/${pid}/fd/${fd}`, { bigint: true });
}

export interface FdInfo {
  /** File position. */
  pos: bigint;
  /** f_flags, with O_CLOEXEC added when the fd is close-on-exec. */
  flags: number;
  mntId: number;
  ino: bigint;
  /** File locks held through this fd ('lock:' lines). */
  locks: string[];
  /** Every other line, by key (eventfd-count, tfd, inotify, sigmask, ...). */
  extra: Map<string, string>;
  /** An epoll instance's registrations ('tfd:' lines, fs/eventpoll.c ep_show_fdinfo). */
  epollTargets: EpollTarget[];
}

export interface EpollTarget {
  /** The fd number the file was registered under. */
  fd: number;
  events: number;
  data: bigint;
}

export function parseFdInfo(text: string): FdInfo {
  const info: FdInfo = { pos: 0n, flags: 0, mntId: 0, ino: 0n, locks: [], extra: new Map(), epollTargets: [] };
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const key = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    switch (key) {
      case 'pos':
        info.pos = BigInt(value);
        break;
      case 'flags':
        info.flags = parseInt(value, 8);
        break;
      case 'mnt_id':
        info.mntId = Number(value);
        break;
      case 'ino':
        info.ino = BigInt(value);
        break;
      case 'lock':
        info.locks.push(value);
        break;
      case 'tfd': {
        // "tfd: %8d events: %8x data: %16llx  pos:%lli ino:%lx sdev:%x"
        const m = /^(\d+)\s+events:\s*([0-9a-f]+)\s+data:\s*([0-9a-f]+)/.exec(value);
        if (m) info.epollTargets.push({ fd: Number(m[1]), events: parseInt(m[2], 16), data: BigInt(`0x${m[3]}`) });
        break;
      }
      default:
        if (!info.extra.has(key)) info.extra.set(key, value);
    }
  }
  return info;
}

export function readFdInfo(pid: number, fd: number): FdInfo {
  return parseFdInfo(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'latin1'));
}

/** dev_t as glibc encodes it (major/minor split over 64 bits). */
export function devMajor(dev: bigint): number {
  return Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
}

export function devMinor(dev: bigint): number {
  return Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
}
