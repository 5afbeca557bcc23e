/**
 * Capture of the fd table of a frozen process, from outside, changing nothing in it:
 * memfd and deleted-file contents are read through a fresh open of /proc/PID/fd/N (its
 * own offset); pipes and FIFOs are probed through a duplicate of the process's own
 * description (pidfd_getfd, which adds no reader or writer), and their buffered bytes
 * copied with tee(2), which leaves them in the pipe; what is queued to a Unix socket is
 * copied with recvmsg(MSG_PEEK). No syscall is injected.
 */
import { openSync, closeSync, readSync, fstatSync, type BigIntStats } from 'node:fs';
import { StasisError } from '../../errors.js';
import { identifyFile } from '../file-identity.js';
import { O, F, fcntl, pipe2, tee, bytesPending, dataRanges, closeFd, readXattrs } from '../../sys/fd.js';
import { inspect, inodeKey, mapsDev, withTheirFd, type Description } from './inspect.js';
import { peekQueued } from '../../sys/sockdiag.js';
import type { FileAttributes, FilesState, OpenFile, StoredContents } from './state.js';

function openProcFd(pid: number, fd: number, flags: number): number {
  return openSync(`/proc/${pid}/fd/${fd}`, flags);
}

function readAll(fd: number, length: number, position: number | null): Buffer {
  const out = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const got = readSync(fd, out, done, length - done, position === null ? null : position + done);
    if (got === 0) break;
    done += got;
  }
  return done === length ? out : out.subarray(0, done);
}

/** The data ranges of a memfd or deleted file (holes are not stored). */
export function readContents(pid: number, fd: number): StoredContents {
  // O_NOATIME: reading it for the image must not change its access time (relatime would).
  const ours = openProcFd(pid, fd, O.RDONLY | O.NOATIME);
  try {
    const size = fstatSync(ours).size;
    const ranges = dataRanges(ours, BigInt(size)).map(([start, end]) => ({
      offset: Number(start),
      data: readAll(ours, Number(end - start), Number(start)),
    }));
    return { size, ranges };
  } finally {
    closeSync(ours);
  }
}

/**
 * Capacity and buffered bytes of a pipe or FIFO: the bytes are copied with tee(2) from the
 * process's own read end (pidfd_getfd) into a pipe of ours and read from there, so they
 * stay in the process's pipe. `readFd` is null when the process holds no read end.
 */
export function readPipe(pid: number, anyFd: number, readFd: number | null): { capacity: number; data: Buffer } {
  const capacity = withTheirFd(pid, anyFd, (ours) => fcntl(ours, F.GETPIPE_SZ));
  if (readFd === null) return { capacity, data: Buffer.alloc(0) };
  const data = withTheirFd(pid, readFd, (src) => {
    const pending = bytesPending(src);
    if (pending === 0) return Buffer.alloc(0);
    const [r, w] = pipe2(O.CLOEXEC | O.NONBLOCK);
    try {
      if (fcntl(w, F.GETPIPE_SZ) < capacity) fcntl(w, F.SETPIPE_SZ, capacity);
      const copied = tee(src, w, pending);
      if (copied !== pending) throw new Error(`tee copied ${copied} of the ${pending} buffered bytes`);
      return readAll(r, copied, null);
    } finally {
      closeFd(r);
      closeFd(w);
    }
  });
  return { capacity, data };
}

/** An fd of the process reading the pipe or FIFO with inode `key`, if it has one. */
function readableFd(descriptions: Description[], key: string): number | null {
  const reader = descriptions.find((d) => inodeKey(d.first.st) === key && d.decision === 'restore' && (d.flags & O.ACCMODE) !== O.WRONLY && (d.flags & O.PATH) === 0);
  return reader ? reader.fds[0] : null;
}

/**
 * The xattrs a re-made file gets back: the user's and root's (user.*, trusted.*), its ACLs
 * (system.posix_acl_*) and file capabilities. Security labels (security.selinux ...) are
 * the security module's to give a new file, not ours.
 */
function keptXattr(name: string): boolean {
  return name.startsWith('user.') || name.startsWith('trusted.') || name.startsWith('system.posix_acl_') || name === 'security.capability';
}

/** Owner, mode, times and xattrs of the file behind fd `fd` (st: its fstat before anything read it). */
function readAttributes(pid: number, fd: number, st: BigIntStats): FileAttributes {
  const ours = openProcFd(pid, fd, O.RDONLY | O.NOATIME | O.NONBLOCK);
  let xattrs: Map<string, Buffer>;
  try {
    xattrs = readXattrs(ours, keptXattr);
  } finally {
    closeSync(ours);
  }
  return {
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    atimeNs: st.atimeNs.toString(),
    mtimeNs: st.mtimeNs.toString(),
    xattrs: [...xattrs].map(([name, value]) => ({ name, value })),
  };
}

function failure(pid: number, d: Description, message: string, cause?: unknown): StasisError {
  const path = d.first.link.startsWith('/') ? d.first.link : undefined;
  return new StasisError('UNSUPPORTED', `fd ${d.fds[0]}: ${d.first.link}: ${message}`, { pid, fd: d.fds[0], path, cause });
}

export function captureFiles(pid: number): FilesState {
  const { descriptions, ownTables } = inspect(pid);
  if (ownTables.length > 0) {
    throw new StasisError('UNSUPPORTED', `thread ${ownTables[0]} of process ${pid} has an fd table of its own (cloned without CLONE_FILES), which cannot be checkpointed yet`, { pid, tid: ownTables[0] });
  }
  const bad = descriptions.find((d) => d.decision === 'unsupported');
  if (bad) throw failure(pid, bad, bad.reason ?? 'cannot be checkpointed');

  const state: FilesState = { fds: [], files: [], pipes: [], fifos: [], memfds: [], ghosts: [], socketpairs: [] };
  const objects = new Map<string, number>(); // inode -> index in its list

  for (const d of descriptions) {
    const p = d.first;
    const id = state.files.length;
    const common = { id, flags: d.flags, pos: d.pos, link: p.link };
    const key = inodeKey(p.st);
    const cls = p.cls;
    let file: OpenFile;
    try {
      if (d.decision === 'inherited') {
        file = { ...common, kind: 'inherited', stdio: d.stdio! };
      } else {
        switch (cls.kind) {
          case 'regular':
            file = { ...common, kind: 'regular', path: cls.path };
            if (cls.identity) file.identity = identifyFile(cls.path);
            break;
          case 'directory':
            file = { ...common, kind: 'directory', path: cls.path };
            break;
          case 'device':
            file = { ...common, kind: 'device', path: cls.path, major: cls.major, minor: cls.minor };
            if (cls.deleted) file.deleted = readAttributes(pid, p.fd, p.st);
            break;
          case 'pipe': {
            let index = objects.get(key);
            if (index === undefined) {
              index = state.pipes.length;
              // A widowed write end's bytes can never be read: only a read end's are kept.
              const { capacity, data } = readPipe(pid, p.fd, readableFd(descriptions, key));
              state.pipes.push({ id: index, ino: String(p.st.ino), capacity, data });
              objects.set(key, index);
            }
            file = { ...common, kind: 'pipe', pipe: index };
            break;
          }
          case 'fifo': {
            let index = objects.get(key);
            if (index === undefined) {
              index = state.fifos.length;
              // With an end outside, the bytes are not ours (and check made sure there are none).
              const { capacity, data } = readPipe(pid, p.fd, d.halfOutside ? null : readableFd(descriptions, key));
              state.fifos.push({ id: index, path: cls.path, capacity, data });
              objects.set(key, index);
            }
            file = { ...common, kind: 'fifo', fifo: index };
            break;
          }
          case 'memfd': {
            let index = objects.get(key);
            if (index === undefined) {
              index = state.memfds.length;
              const ours = openProcFd(pid, p.fd, O.RDONLY);
              let seals: number;
              try {
                seals = fcntl(ours, F.GET_SEALS);
              } finally {
                closeSync(ours);
              }
              state.memfds.push({ id: index, name: cls.name, seals, mode: Number(p.st.mode & 0o7777n), dev: mapsDev(p.st), ino: String(p.st.ino), contents: readContents(pid, p.fd) });
              objects.set(key, index);
            }
            file = { ...common, kind: 'memfd', memfd: index };
            break;
          }
          case 'eventfd':
            // fdinfo: "eventfd-count: %16llx", "eventfd-semaphore: %d" (fs/eventfd.c)
            file = {
              ...common,
              kind: 'eventfd',
              count: BigInt(`0x${p.info.extra.get('eventfd-count')}`),
              semaphore: p.info.extra.get('eventfd-semaphore') === '1',
            };
            break;
          case 'timerfd': {
            // fdinfo: "clockid: %d", "ticks: %llu", "it_value: (%llu, %llu)", "it_interval: (...)" (fs/timerfd.c)
            const pair = (key: string): [number, number] => {
              const m = /^\((\d+), (\d+)\)$/.exec(p.info.extra.get(key) ?? '');
              if (!m) throw new Error(`no ${key} in its fdinfo`);
              return [Number(m[1]), Number(m[2])];
            };
            file = {
              ...common,
              kind: 'timerfd',
              clockid: Number(p.info.extra.get('clockid')),
              ticks: BigInt(p.info.extra.get('ticks') ?? '0'),
              value: pair('it_value'),
              interval: pair('it_interval'),
            };
            break;
          }
          case 'unix-stream': {
            // One object per pair, keyed by the lower inode; each end's queue is copied with
            // MSG_PEEK through the process's own socket (pidfd_getfd), so nothing is taken.
            const ino = p.st.ino;
            const pairKey = `unix:${ino < cls.peer ? ino : cls.peer}`;
            let index = objects.get(pairKey);
            if (index === undefined) {
              index = state.socketpairs.length;
              state.socketpairs.push({ id: index, inodes: [String(ino), String(cls.peer)], queued: [Buffer.alloc(0), Buffer.alloc(0)] });
              objects.set(pairKey, index);
            }
            const pair = state.socketpairs[index];
            const end = pair.inodes[0] === String(ino) ? 0 : 1;
            pair.queued[end] = cls.queued > 0 ? withTheirFd(pid, p.fd, (ours) => peekQueued(ours, cls.queued).data) : Buffer.alloc(0);
            file = { ...common, kind: 'unix-stream', pair: index, end };
            break;
          }
          case 'epoll':
            file = { ...common, kind: 'epoll', targets: p.info.epollTargets };
            break;
          case 'signalfd':
            // fdinfo: "sigmask: %016llx" (fs/signalfd.c), bit N-1 for signal N
            file = { ...common, kind: 'signalfd', mask: BigInt(`0x${p.info.extra.get('sigmask')}`) };
            break;
          case 'ghost': {
            let index = objects.get(key);
            if (index === undefined) {
              index = state.ghosts.length;
              state.ghosts.push({
                id: index,
                path: cls.path,
                mode: Number(p.st.mode & 0o7777n),
                otherLinks: cls.otherLinks,
                attributes: readAttributes(pid, p.fd, p.st),
                dev: mapsDev(p.st),
                ino: String(p.st.ino),
                contents: readContents(pid, p.fd),
              });
              objects.set(key, index);
            }
            file = { ...common, kind: 'ghost', ghost: index };
            break;
          }
          default:
            throw new Error(`unexpected ${cls.kind}`);
        }
      }
    } catch (err) {
      if (err instanceof StasisError) throw err;
      throw failure(pid, d, `could not be captured: ${(err as Error).message}`, err);
    }
    state.files.push(file);
  }

  descriptions.forEach((d, id) => {
    for (const member of d.members) state.fds.push({ fd: member.fd, file: id, cloexec: (member.info.flags & O.CLOEXEC) !== 0 });
  });
  state.fds.sort((a, b) => a.fd - b.fd);
  return state;
}
