/**
 * Capture of the fd table of a frozen process. Everything is read from outside through
 * /proc/PID/fd/N (a fresh open of the same file), so nothing in the process changes:
 * pipe contents are copied with tee(2), which leaves them in the pipe.
 */
import { openSync, closeSync, readSync, fstatSync } from 'node:fs';
import { StasisError } from '../../errors.js';
import { identifyFile } from '../file-identity.js';
import { O, F, fcntl, pipe2, tee, bytesPending, dataRanges } from '../../sys/fd.js';
import { inspect, inodeKey, mapsDev, type Description } from './inspect.js';
import type { FilesState, OpenFile, StoredContents } from './state.js';

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
  const ours = openProcFd(pid, fd, O.RDONLY);
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

/** Capacity and buffered bytes of a pipe or FIFO, copied with tee(2) into a pipe of ours and read from there. */
export function readPipe(pid: number, fd: number): { capacity: number; data: Buffer } {
  const src = openProcFd(pid, fd, O.RDONLY | O.NONBLOCK);
  try {
    const capacity = fcntl(src, F.GETPIPE_SZ);
    const pending = bytesPending(src);
    if (pending === 0) return { capacity, data: Buffer.alloc(0) };
    const [r, w] = pipe2(O.CLOEXEC | O.NONBLOCK);
    try {
      if (fcntl(w, F.GETPIPE_SZ) < capacity) fcntl(w, F.SETPIPE_SZ, capacity);
      const copied = tee(src, w, pending);
      if (copied !== pending) throw new Error(`tee copied ${copied} of the ${pending} buffered bytes`);
      return { capacity, data: readAll(r, copied, null) };
    } finally {
      closeSync(r);
      closeSync(w);
    }
  } finally {
    closeSync(src);
  }
}

function failure(pid: number, d: Description, message: string, cause?: unknown): StasisError {
  const path = d.first.link.startsWith('/') ? d.first.link : undefined;
  return new StasisError('UNSUPPORTED', `fd ${d.fds[0]}: ${d.first.link}: ${message}`, { pid, fd: d.fds[0], path, cause });
}

export function captureFiles(pid: number): FilesState {
  const { descriptions } = inspect(pid);
  const bad = descriptions.find((d) => d.decision === 'unsupported');
  if (bad) throw failure(pid, bad, bad.reason ?? 'cannot be checkpointed');

  const state: FilesState = { fds: [], files: [], pipes: [], fifos: [], memfds: [], ghosts: [] };
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
            break;
          case 'pipe': {
            let index = objects.get(key);
            if (index === undefined) {
              index = state.pipes.length;
              const { capacity, data } = readPipe(pid, p.fd);
              // Only ends in the process: a widowed write end's bytes can never be read.
              state.pipes.push({ id: index, ino: String(p.st.ino), capacity, data: d.halfOutside && (d.flags & O.ACCMODE) === O.WRONLY ? Buffer.alloc(0) : data });
              objects.set(key, index);
            }
            file = { ...common, kind: 'pipe', pipe: index };
            break;
          }
          case 'fifo': {
            let index = objects.get(key);
            if (index === undefined) {
              index = state.fifos.length;
              const { capacity, data } = readPipe(pid, p.fd);
              state.fifos.push({ id: index, path: cls.path, capacity, data: d.halfOutside ? Buffer.alloc(0) : data });
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
              state.memfds.push({ id: index, name: cls.name, seals, dev: mapsDev(p.st), ino: String(p.st.ino), contents: readContents(pid, p.fd) });
              objects.set(key, index);
            }
            file = { ...common, kind: 'memfd', memfd: index };
            break;
          }
          case 'ghost': {
            let index = objects.get(key);
            if (index === undefined) {
              index = state.ghosts.length;
              state.ghosts.push({
                id: index,
                path: cls.path,
                mode: Number(p.st.mode & 0o7777n),
                otherLinks: cls.otherLinks,
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
