/**
 * The files resource on real processes: a target holding one fd of every supported kind
 * is frozen, captured and released; its state goes through the note encoding; the target
 * is killed; the state is restored into a stub, and the stub's fd table is compared with
 * the target's, through /proc and through syscalls the stub itself runs.
 *
 * Targets are started with posix_spawn (spawnProcess), never child_process: this process
 * traces them (DESIGN.md: libuv would swallow their ptrace stops).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';
import { buildTarget, tempDir, waitFor, assertRunningUntraced } from './helpers/targets.js';
import { spawnProcess } from '../src/sys/spawn.js';
import { kill, SIG } from '../src/sys/process.js';
import { waitTask, WAIT } from '../src/sys/ptrace.js';
import { freeze } from '../src/ptrace/freeze.js';
import { startStub, type Stub } from '../src/ptrace/stub.js';
import { SYSCALL } from '../src/ptrace/remote.js';
import { checkFiles, filesResource, fdForInode, type FilesState } from '../src/resources/files.js';
import type { DumpContext, RestoreContext } from '../src/resources/resource.js';
import { encodeStasisNote, decodeStasisNote, STASIS_NOTE } from '../src/image/stasis-notes.js';
import { StasisError } from '../src/errors.js';
import { unixSocketInfo } from '../src/sys/sockdiag.js';
import { O, F, SEAL, fcntl, dup3, pipe2, sameOpenFile, bytesPending, dataRanges, pollNow, POLL } from '../src/sys/fd.js';

function reap(pid: number): void {
  try {
    kill(pid, SIG.SIGKILL);
  } catch {
    // already gone
  }
  try {
    waitTask(pid, WAIT.ALL);
  } catch {
    // already reaped
  }
}

/** Starts test/targets/NAME.c with `dir` and waits for DIR/ready; killed and reaped after the test. */
async function startFilesTarget(t: TestContext, name: string, dir: string): Promise<{ pid: number; ready: string[] }> {
  const pid = spawnProcess(buildTarget(name), [dir]);
  t.after(() => reap(pid));
  const ready = path.join(dir, 'ready');
  await waitFor(() => fs.existsSync(ready), `${name} to write ${ready}`);
  return { pid, ready: fs.readFileSync(ready, 'utf8').trim().split(/\s+/) };
}

function stub(t: TestContext): Stub {
  const s = startStub();
  t.after(() => s.destroy());
  return s;
}

interface FdView {
  link: string;
  pos: string;
  flags: string;
}

function fdTable(pid: number): Map<number, FdView> {
  const out = new Map<number, FdView>();
  for (const name of fs.readdirSync(`/proc/${pid}/fd`)) {
    const fd = Number(name);
    const info = fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    out.set(fd, {
      link: fs.readlinkSync(`/proc/${pid}/fd/${fd}`),
      pos: /^pos:\s*(\d+)/m.exec(info)![1],
      flags: /^flags:\s*(\d+)/m.exec(info)![1],
    });
  }
  return out;
}

/** Reads what is buffered in a pipe through /proc/PID/fd/N (consumes it). */
function drainPipe(pid: number, fd: number): string {
  const ours = fs.openSync(`/proc/${pid}/fd/${fd}`, O.RDONLY | O.NONBLOCK);
  const parts: Buffer[] = [];
  try {
    for (;;) {
      const buf = Buffer.alloc(1 << 16);
      let got: number;
      try {
        got = fs.readSync(ours, buf, 0, buf.length, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') break;
        throw err;
      }
      if (got === 0) break;
      parts.push(buf.subarray(0, got));
    }
    return Buffer.concat(parts).toString('latin1');
  } finally {
    fs.closeSync(ours);
  }
}

function withProcFd<T>(pid: number, fd: number, flags: number, fn: (ours: number) => T): T {
  const ours = fs.openSync(`/proc/${pid}/fd/${fd}`, flags);
  try {
    return fn(ours);
  } finally {
    fs.closeSync(ours);
  }
}

/** Freezes `pid`, captures its files as the dump would, releases it, and round-trips the state through the note encoding. */
function captureThroughNote(pid: number): FilesState {
  const frozen = freeze(pid);
  let state: FilesState;
  try {
    state = filesResource.capture({ pid, frozen, threads: [], maps: [] } as unknown as DumpContext);
  } finally {
    frozen.release();
  }
  const note = encodeStasisNote(filesResource.noteType, filesResource.version, state);
  return decodeStasisNote<FilesState>(note.desc, filesResource.version, filesResource.name);
}

function restoreInto(s: Stub, state: FilesState, warnings: string[] = []): void {
  const ctx: RestoreContext = { pid: s.pid, remote: s.remote, imagePath: '/nonexistent', ignoreChangedFiles: false, ignoreCpu: false, warnings };
  filesResource.restore(ctx, state);
}

/** A syscall run by the stub itself; returns its result and the bytes of an output buffer. */
function stubRead(s: Stub, fd: number, length: number): string {
  s.remote.resetScratch();
  const buf = s.remote.reserve(length);
  const got = Number(s.remote.syscall(SYSCALL.read, [fd, buf, length], `read of fd ${fd}`));
  return s.remote.readMemory(buf, got).toString();
}

function stubWrite(s: Stub, fd: number, text: string): number {
  s.remote.resetScratch();
  return Number(s.remote.syscall(SYSCALL.write, [fd, s.remote.put(Buffer.from(text)), text.length], `write to fd ${fd}`));
}

test('the note type is STASIS_NOTE.FILES', () => {
  assert.equal(filesResource.noteType, STASIS_NOTE.FILES);
  assert.equal(filesResource.noteType, 0x5303);
  assert.equal(filesResource.name, 'files');
});

test('every supported kind of fd is captured without disturbing the target and restored into a stub', async (t) => {
  const dir = tempDir(t, 'stasis-files-');
  const { pid } = await startFilesTarget(t, 'files-all', dir);

  // check: every fd listed, all supported
  const findings = checkFiles(pid);
  const before = fdTable(pid);
  assert.deepEqual(
    findings.map((f) => f.fd),
    [...before.keys()].sort((a, b) => a - b),
  );
  for (const f of findings) {
    assert.equal(f.kind, 'fd');
    assert.ok(f.supported, `${f.what}: ${f.reason}`);
    assert.match(f.what, new RegExp(`^fd ${f.fd}: `));
  }
  assert.match(findings.find((f) => f.fd === 10)!.reason!, /one open file with fd 12/);
  assert.match(findings.find((f) => f.fd === 23)!.reason!, /closed everywhere/);

  const state = captureThroughNote(pid);
  assertRunningUntraced(pid, 'files-all after capture');
  // Capture consumed nothing: the target's pipes still hold their bytes, its offsets are unchanged.
  assert.deepEqual(fdTable(pid), before);
  assert.equal(withProcFd(pid, 17, O.RDONLY | O.NONBLOCK, bytesPending), 3);
  assert.equal(withProcFd(pid, 19, O.RDONLY | O.NONBLOCK, bytesPending), 3);
  assert.equal(withProcFd(pid, 23, O.RDONLY | O.NONBLOCK, bytesPending), 4);

  // What the image says
  const fileOf = (fd: number) => state.files[state.fds.find((e) => e.fd === fd)!.file];
  assert.equal(fileOf(10), fileOf(12), 'fds 10 and 12 are one description');
  assert.notEqual(fileOf(10), fileOf(22), 'fd 22 is its own description');
  assert.equal(fileOf(15).kind, 'memfd');
  assert.equal(fileOf(16).kind, 'ghost');
  assert.equal(state.pipes.length, 4);
  assert.equal(state.pipes[2].data.length, 0, 'nothing is kept of a pipe no one can read');
  assert.equal(state.pipes[3].data.length, 200 * 1024);
  assert.equal(state.pipes[0].data.toString(), 'abc');
  assert.equal(state.pipes[0].capacity, 128 * 1024);
  assert.equal(state.pipes[1].data.toString(), 'tail');
  assert.equal(state.fifos[0].data.toString(), 'xyz');
  assert.equal(state.memfds[0].name, 'stasis-test');
  assert.equal(state.memfds[0].seals, SEAL.GROW | SEAL.SHRINK);
  const ghost = state.ghosts[0];
  assert.equal(ghost.path, path.join(dir, 'ghost.txt'));
  assert.equal(ghost.contents.size, (1 << 20) + 15);
  assert.ok(ghost.contents.ranges.reduce((n, r) => n + r.data.length, 0) < 1 << 20, 'only the data ranges of the deleted file are stored');
  assert.equal(fdForInode(state, state.memfds[0].dev, state.memfds[0].ino), 15);
  assert.equal(fileOf(30), fileOf(31), 'fds 30 and 31 are one eventfd');
  assert.deepEqual([fileOf(30).kind, fileOf(32).kind], ['eventfd', 'eventfd']);
  assert.notEqual(fileOf(30), fileOf(32), 'two eventfds, although on one anonymous inode');
  assert.deepEqual([fileOf(33).kind, fileOf(34).kind, fileOf(35).kind, fileOf(36).kind], ['timerfd', 'timerfd', 'signalfd', 'epoll']);
  assert.deepEqual([fileOf(37).kind, fileOf(38).kind], ['unix-stream', 'unix-stream']);
  assert.deepEqual(state.socketpairs[0].queued.map((b) => b.toString()).sort(), ['ping', 'pong!'], 'what waits at each end, copied');
  assert.equal(unixSocketInfo(BigInt(fs.statSync(`/proc/${pid}/fd/38`).ino))?.rqueue, 4, 'the bytes queued at fd 38 were peeked, not taken');
  const epollLines = (pid: number) => (fs.readFileSync(`/proc/${pid}/fdinfo/36`, 'utf8').match(/^tfd:\s+\d+\s+events:\s+\S+\s+data:\s+\S+/gm) ?? []).map((l) => l.replace(/\s+/g, ' ')).sort(); // in the order of the kernel's tree of files
  const watchedBefore = epollLines(pid);
  assert.equal(watchedBefore.length, 2, `fd 36 watches two files: ${watchedBefore}`);
  assert.equal(state.fds.find((e) => e.fd === 14)!.cloexec, true);

  // The original goes away (as after a dump), taking its pipes, FIFO buffer, memfd and deleted file with it.
  reap(pid);

  const s = stub(t);
  restoreInto(s, state);
  const after = fdTable(s.pid);
  assert.deepEqual(epollLines(s.pid), watchedBefore, 'fd 36 watches the same fds, events and data');
  // And reports what is ready: fd 17 has "abc" buffered, fd 32 a count.
  s.remote.resetScratch();
  const events = s.remote.reserve(12 * 4);
  const ready = Number(s.remote.syscall(232 /* epoll_wait */, [36, events, 4, 0], 'epoll_wait'));
  const readyData = Array.from({ length: ready }, (_, i) => s.remote.readMemory(events + BigInt(12 * i + 4), 8).readBigUInt64LE(0)).sort((a, b) => (a < b ? -1 : 1));
  assert.deepEqual(readyData, [32n, 0x1122334455667788n], 'epoll_wait reports both, with their data');
  assert.deepEqual([...after.keys()].sort((a, b) => a - b), [...before.keys()].sort((a, b) => a - b), 'the same fd numbers, and no other');
  for (const [fd, was] of before) {
    const now = after.get(fd)!;
    assert.equal(now.flags, was.flags, `fd ${fd} (${was.link}): flags`);
    assert.equal(now.pos, was.pos, `fd ${fd} (${was.link}): position`);
    if (was.link.startsWith('pipe:') || was.link.startsWith('socket:')) assert.match(now.link, new RegExp(`^${was.link.replace(/:.*/, '')}:\\[\\d+\\]$`));
    else assert.equal(now.link, was.link, `fd ${fd}: link`);
  }
  assert.equal(after.get(17)!.link, after.get(18)!.link, 'both ends of one pipe');
  assert.notEqual(after.get(17)!.link, after.get(23)!.link);
  assert.equal(Number(after.get(14)!.flags.length > 0 && parseInt(after.get(14)!.flags, 8) & O.CLOEXEC), O.CLOEXEC);
  assert.equal(parseInt(after.get(11)!.flags, 8) & O.APPEND, O.APPEND);
  assert.equal(parseInt(after.get(18)!.flags, 8) & O.NONBLOCK, O.NONBLOCK);

  // Descriptions: dups share one, separate opens do not.
  assert.ok(sameOpenFile(s.pid, 10, s.pid, 12), 'fd 12 is a dup of fd 10');
  assert.ok(!sameOpenFile(s.pid, 10, s.pid, 22), 'fd 22 is not');
  assert.ok(!sameOpenFile(s.pid, 15, s.pid, 25), 'fd 25 is another description of the memfd');
  const st15 = fs.statSync(`/proc/${s.pid}/fd/15`);
  const st25 = fs.statSync(`/proc/${s.pid}/fd/25`);
  assert.equal(st15.ino, st25.ino, 'fd 25 is the same memfd as fd 15');

  // Contents: memfd, deleted file (with its hole), pipe capacity
  assert.equal(withProcFd(s.pid, 15, O.RDONLY, (fd) => fs.readFileSync(fd, 'utf8')), 'memfd contents');
  assert.equal(withProcFd(s.pid, 15, O.RDONLY, (fd) => fcntl(fd, F.GET_SEALS)), SEAL.GROW | SEAL.SHRINK);
  withProcFd(s.pid, 16, O.RDONLY, (fd) => {
    const size = fs.fstatSync(fd).size;
    assert.equal(size, (1 << 20) + 15);
    const all = Buffer.alloc(size);
    fs.readSync(fd, all, 0, size, 0);
    assert.equal(all.subarray(0, 10).toString(), 'ghost head');
    assert.equal(all.subarray((1 << 20) + 5).toString(), 'ghost tail');
    assert.ok(dataRanges(fd, BigInt(size)).length >= 2, 'the deleted file is sparse again');
  });
  assert.equal(fs.existsSync(path.join(dir, 'ghost.txt')), false, 'the re-created deleted file is unlinked');
  assert.deepEqual(fs.readdirSync(dir).filter((n) => n.includes('stasis-ghost')), []);
  assert.equal(withProcFd(s.pid, 17, O.RDONLY | O.NONBLOCK, (fd) => fcntl(fd, F.GETPIPE_SZ)), 128 * 1024);

  // The restored process's own syscalls see the same files.
  assert.equal(stubRead(s, 10, 5), '56789', 'fd 10 reads on from offset 5');
  assert.equal(fdTable(s.pid).get(12)!.pos, '10', 'and moves fd 12 with it');
  assert.equal(stubRead(s, 22, 3), '234', 'fd 22 has its own offset');
  assert.equal(stubWrite(s, 11, 'line2\n'), 6);
  assert.equal(fs.readFileSync(path.join(dir, 'log.txt'), 'utf8'), 'line1\nline2\n', 'fd 11 appends');
  assert.equal(stubRead(s, 15, 20), 'fd contents', 'the memfd reads on from offset 3');
  assert.equal(stubRead(s, 16, 3), 'ead', 'the deleted file reads on from offset 7');
  assert.equal(stubRead(s, 19, 10), 'xyz', 'the FIFO kept its bytes');
  assert.equal(stubWrite(s, 20, 'fifo!'), 5);
  assert.equal(stubRead(s, 19, 10), 'fifo!', 'and its two ends are connected');
  assert.equal(stubRead(s, 13, 10), '', '/dev/null');
  assert.equal(stubRead(s, 14, 4), '\0\0\0\0', '/dev/zero');

  // The pipe: buffered bytes back, ends connected; the widowed pipe: bytes, then end of file.
  assert.equal(drainPipe(s.pid, 17), 'abc');
  assert.equal(stubWrite(s, 18, 'more'), 4);
  assert.equal(drainPipe(s.pid, 17), 'more');
  assert.equal(stubRead(s, 23, 10), 'tail');
  assert.equal(stubRead(s, 23, 10), '', 'no writer is left on the widowed pipe');
  assert.equal(withProcFd(s.pid, 23, O.RDONLY | O.NONBLOCK, (fd) => pollNow(fd, POLL.IN) & POLL.HUP), POLL.HUP);
  assert.equal(withProcFd(s.pid, 26, O.WRONLY | O.NONBLOCK, (fd) => pollNow(fd, POLL.OUT) & POLL.ERR), POLL.ERR, 'no reader is left on fd 26');

  // Bigger than the scratch memory the bytes go through.
  const letters = Buffer.alloc(200 * 1024);
  for (let i = 0; i < letters.length; i++) letters[i] = 0x61 + (i % 26);
  assert.equal(withProcFd(s.pid, 27, O.RDONLY | O.NONBLOCK, (fd) => fcntl(fd, F.GETPIPE_SZ)), 256 * 1024);
  assert.equal(withProcFd(s.pid, 27, O.RDONLY | O.NONBLOCK, bytesPending), letters.length);
  assert.ok(Buffer.from(drainPipe(s.pid, 27), 'latin1').equals(letters), 'the 200 KiB in the pipe of fd 27');
  const big = Buffer.alloc(3 << 20);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
  assert.ok(withProcFd(s.pid, 29, O.RDONLY, (fd) => fs.readFileSync(fd)).equals(big), 'the 3 MiB memfd of fd 29');
  assert.equal(withProcFd(s.pid, 29, O.RDONLY, (fd) => fcntl(fd, F.GET_SEALS)), SEAL.SEAL, 'created without MFD_ALLOW_SEALING');

  // Eventfds: counters (64 bits), semaphore mode, non-blocking, dups sharing one counter.
  const eventfd = (fd: number) => fs.readFileSync(`/proc/${s.pid}/fdinfo/${fd}`, 'utf8');
  assert.match(eventfd(30), /^eventfd-count:\s+5$/m);
  assert.match(eventfd(30), /^eventfd-semaphore: 1$/m);
  assert.match(eventfd(32), /^eventfd-count:\s+100000007$/m);
  assert.match(eventfd(32), /^eventfd-semaphore: 0$/m);
  assert.ok(sameOpenFile(s.pid, 30, s.pid, 31), 'fd 31 is a dup of fd 30');
  assert.ok(!sameOpenFile(s.pid, 30, s.pid, 32), 'fd 32 is another eventfd');
  const readCount = (fd: number) => {
    s.remote.resetScratch();
    const buf = s.remote.reserve(8);
    const got = s.remote.syscallRaw(SYSCALL.read, [fd, buf, 8]).value;
    return got === 8n ? s.remote.readMemory(buf, 8).readBigUInt64LE(0) : got;
  };
  assert.equal(readCount(31), 1n, 'a semaphore read takes 1');
  assert.match(eventfd(30), /^eventfd-count:\s+4$/m, 'from the counter fd 30 shares');
  assert.equal(readCount(32), 0x100000007n, 'a plain read takes the whole count');
  for (let i = 0; i < 4; i++) readCount(30);
  assert.equal(readCount(30), -11n, 'EAGAIN once the semaphore is empty: non-blocking');

  // Timerfds: clock, time left (counted from the restore), interval, unread expirations.
  const timer = (fd: number) => {
    const info = eventfd(fd);
    const pair = (key: string) => (new RegExp(`^${key}: \\((\\d+), (\\d+)\\)$`, 'm').exec(info) ?? []).slice(1).map(Number);
    return { clockid: Number(/^clockid: (\d+)$/m.exec(info)?.[1]), ticks: Number(/^ticks: (\d+)$/m.exec(info)?.[1]), value: pair('it_value'), interval: pair('it_interval') };
  };
  const t33 = timer(33);
  assert.equal(t33.clockid, 1, 'CLOCK_MONOTONIC');
  assert.deepEqual(t33.interval, [1, 500_000_000]);
  assert.ok(t33.value[0] >= 90 && t33.value[0] < 100, `about 100 s left: ${t33.value}`);
  assert.equal(t33.ticks, 0);
  assert.deepEqual(timer(34), { clockid: 0, ticks: 1, value: [0, 0], interval: [0, 0] }, 'an expired one-shot with its expiration unread');
  assert.equal(readCount(34), 1n, 'which a read returns');
  assert.equal(readCount(33), -11n, 'fd 33 has not expired: EAGAIN, non-blocking');
  // The socketpair: what waited at each end, and the two ends connected.
  assert.equal(stubRead(s, 38, 10), 'ping', 'fd 38 reads what fd 37 had sent');
  assert.equal(stubRead(s, 37, 10), 'pong!', 'fd 37 reads what fd 38 had sent');
  assert.equal(stubWrite(s, 37, 'again'), 5);
  assert.equal(stubRead(s, 38, 10), 'again');
  assert.equal(parseInt(fdTable(s.pid).get(38)!.flags, 8) & O.NONBLOCK, O.NONBLOCK);
  // The signalfd: its mask and flags.
  assert.match(eventfd(35), /^sigmask:\s+0*4200$/m, 'SIGUSR1 (10) and SIGTERM (15)');
  assert.equal(fs.statSync(`/proc/${s.pid}/fd/15`).mode & 0o7777, state.memfds[0].mode);
});

test('a deleted file whose name was taken again is re-created under another name in its directory', async (t) => {
  const dir = tempDir(t, 'stasis-files-');
  const { pid } = await startFilesTarget(t, 'files-all', dir);
  const state = captureThroughNote(pid);
  reap(pid);
  fs.writeFileSync(path.join(dir, 'ghost.txt'), 'a new file');

  const s = stub(t);
  restoreInto(s, state);
  assert.match(fs.readlinkSync(`/proc/${s.pid}/fd/16`), new RegExp(`^${dir}/\\.stasis-ghost\\.${s.pid}\\.0\\.0 \\(deleted\\)$`));
  assert.equal(stubRead(s, 16, 3), 'ead');
  assert.equal(fs.readFileSync(path.join(dir, 'ghost.txt'), 'utf8'), 'a new file', 'the new file is untouched');
  assert.deepEqual(fs.readdirSync(dir).filter((n) => n.includes('stasis-ghost')), []);
});

test('a file read from that changed since the checkpoint is refused, naming the fd and the file; a log that grew is not', async (t) => {
  const dir = tempDir(t, 'stasis-files-');
  const { pid } = await startFilesTarget(t, 'files-all', dir);
  const state = captureThroughNote(pid);
  reap(pid);

  // fd 11 only writes (O_WRONLY|O_APPEND): another writer adding to it does not stop a restore.
  fs.appendFileSync(path.join(dir, 'log.txt'), 'someone else\n');
  const first = stub(t);
  const warnings: string[] = [];
  restoreInto(first, state, warnings);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /^fd 11: .*log\.txt: its size changed \(6 -> 19 bytes\)$/);
  assert.equal(fdTable(first.pid).get(11)!.link, path.join(dir, 'log.txt'));
  assert.equal(stubWrite(first, 11, 'line2\n'), 6);
  assert.equal(fs.readFileSync(path.join(dir, 'log.txt'), 'utf8'), 'line1\nsomeone else\nline2\n');

  // fds 10/12 and 22 read data.txt: a change there is refused before the fd table is touched.
  fs.appendFileSync(path.join(dir, 'data.txt'), 'changed');
  const second = stub(t);
  const untouched = fdTable(second.pid);
  assert.throws(
    () => restoreInto(second, state),
    (err: unknown) => {
      assert.ok(err instanceof StasisError);
      assert.equal(err.code, 'BAD_IMAGE');
      assert.equal(err.fd, 10);
      assert.equal(err.path, path.join(dir, 'data.txt'));
      assert.match(err.message, /^fd 10, fd 12: .*data\.txt: its size changed \(16 -> 23 bytes\)/);
      return true;
    },
  );
  assert.deepEqual(fdTable(second.pid), untouched);

  // --ignore-changed-files: restored, with a warning naming the fds and the file.
  const third = stub(t);
  const ignored: string[] = [];
  filesResource.restore({ pid: third.pid, remote: third.remote, imagePath: '/nonexistent', ignoreChangedFiles: true, ignoreCpu: false, warnings: ignored }, state);
  assert.ok(ignored.some((w) => /^fd 10, fd 12: .*data\.txt: its size changed/.test(w)), ignored.join('\n'));
  assert.equal(stubRead(third, 10, 5), '56789');
});

test('restore fails naming the fd and the file when a file is gone', async (t) => {
  const dir = tempDir(t, 'stasis-files-');
  const { pid } = await startFilesTarget(t, 'files-all', dir);
  const state = captureThroughNote(pid);
  reap(pid);
  // A directory cannot be verified by identity: its disappearance shows at open.
  fs.rmSync(path.join(dir, 'fifo'));
  const s = stub(t);
  assert.throws(
    () => restoreInto(s, state),
    (err: unknown) => {
      assert.ok(err instanceof StasisError);
      assert.equal(err.fd, 19);
      assert.match(err.message, /^fd 19: .*\/fifo: open of .*\/fifo failed: ENOENT/);
      return true;
    },
  );
});

test('check names every fd that cannot be checkpointed and why; capture refuses them', async (t) => {
  const dir = tempDir(t, 'stasis-files-');
  const { pid, ready } = await startFilesTarget(t, 'files-unsupported', dir);
  const child = Number(ready[1]);
  t.after(() => {
    try {
      kill(child, SIG.SIGKILL);
    } catch {
      // gone with its parent (PR_SET_PDEATHSIG)
    }
  });

  // fd 31's other name, DIR/four/hidden, hidden under a mount: it cannot be reopened
  execFileSync('mount', ['-t', 'tmpfs', 'hider', path.join(dir, 'four')]);
  let listed;
  try {
    listed = checkFiles(pid);
  } finally {
    execFileSync('umount', [path.join(dir, 'four')]);
  }
  const findings = new Map(listed.map((f) => [f.fd!, f]));
  const expect: Array<[number, RegExp]> = [
    [10, new RegExp(`^fd 10: socket:\\[\\d+\\]: it is shared with process ${child} `)],
    [11, new RegExp(`^fd 11: socket:\\[\\d+\\]: it is shared with process ${child} `)],
    [12, new RegExp(`^fd 12: anon_inode:\\[eventfd\\]: it is shared with process ${child} `)],
    [13, new RegExp(`^fd 13: anon_inode:\\[eventpoll\\]: it is shared with process ${child} `)],
    [15, new RegExp(`^fd 15: anon_inode:\\[timerfd\\]: it is shared with process ${child} `)],
    [16, /^fd 16: anon_inode:inotify: inotify instances cannot be checkpointed yet$/],
    [18, new RegExp(`^fd 18: pipe:\\[\\d+\\]: the other end of pipe:\\[\\d+\\] is open outside the process.*also open in process ${child} `)],
    [19, new RegExp(`^fd 19: pipe:\\[\\d+\\]: it is shared with process ${child} `)],
    [20, new RegExp(`^fd 20: pipe:\\[\\d+\\]: it is shared with process ${child} `)],
    [21, /^fd 21: socket:\[\d+\]: sockets cannot be checkpointed yet$/],
    [23, /^fd 23: socket:\[\d+\]: file descriptors or credentials travel with the bytes queued to it/],
    [24, /^fd 24: anon_inode:\[eventpoll\]: it watches 2 files registered under fd 25; only one of them can be the file open there now/],
    [26, /^fd 26: anon_inode:\[eventpoll\]: it watches 2 files registered under fd 29; only one of them/],
    [31, new RegExp(`^fd 31: ${dir}/three/hidden \\(deleted\\): it was deleted while open but still has 1 other hard link\\(s\\), none of them found \\(through its file handle, or in ${dir}/three\\); a copy would`)],
  ];
  for (const [fd, re] of expect) {
    const f = findings.get(fd);
    assert.ok(f, `fd ${fd} is listed`);
    assert.equal(f.kind, 'fd');
    assert.equal(f.supported, false, `fd ${fd} is unsupported`);
    assert.match(`${f.what}: ${f.reason}`, re);
  }
  assert.equal(findings.get(17)!.supported, true, '/dev/null is supported');
  assert.equal(findings.get(14)!.supported, true, 'a signalfd is supported, shared or not: it only reads its reader\'s signals');
  assert.match(findings.get(17)!.what, /^fd 17: \/dev\/null$/);
  assert.equal(findings.get(30)!.supported, true, 'a deleted file whose other link is in another directory is supported');
  assert.equal(findings.get(30)!.reason, `file, O_RDWR; deleted while open at ${dir}/one/linked; reopened through its other hard link ${dir}/two/linked`);

  const frozen = freeze(pid);
  try {
    assert.throws(
      () => filesResource.capture({ pid, frozen, threads: [], maps: [] } as unknown as DumpContext),
      // the first fd capture itself cannot take (sharing with the child is check's to refuse)
      (err: unknown) => err instanceof StasisError && err.code === 'UNSUPPORTED' && err.fd === 16 && /^fd 16: anon_inode:inotify: inotify instances cannot/.test(err.message),
    );
  } finally {
    frozen.release();
  }
  assertRunningUntraced(pid, 'files-unsupported after a refused capture');
});

test('stdio leading outside the process is inherited: re-attached to the restorer\'s own fds', async (t) => {
  // The target's stdout and stderr are the write end of a pipe whose read end only this
  // process holds; its stdin is the read end of another.
  const dir = tempDir(t, 'stasis-files-');
  const exe = buildTarget('files-all');
  const [outR, outW] = pipe2(O.CLOEXEC);
  const [inR, inW] = pipe2(O.CLOEXEC);
  // spawnProcess hands the child our fds 0-2 and nothing else: they are pointed at the
  // pipes for the spawn only, synchronously (no JavaScript, so no output, runs meanwhile).
  const saved = [0, 1, 2].map((fd) => ({ fd, copy: fcntl(fd, F.DUPFD_CLOEXEC, 100), cloexec: fcntl(fd, F.GETFD) & 1 }));
  let pid: number;
  try {
    dup3(inR, 0);
    dup3(outW, 1);
    dup3(outW, 2);
    pid = spawnProcess(exe, [dir]);
  } finally {
    for (const { fd, copy, cloexec } of saved) {
      dup3(copy, fd, cloexec ? O.CLOEXEC : 0);
      fs.closeSync(copy);
    }
    fs.closeSync(inR);
    fs.closeSync(outW);
  }
  t.after(() => reap(pid));
  t.after(() => {
    fs.closeSync(outR);
    fs.closeSync(inW);
  });
  await waitFor(() => fs.existsSync(path.join(dir, 'ready')), 'files-all to be ready');

  const findings = checkFiles(pid);
  for (const fd of [0, 1, 2]) {
    const f = findings.find((x) => x.fd === fd)!;
    assert.equal(f.supported, true);
    assert.match(f.reason!, new RegExp(`inherited, re-attached to the restorer's ${['stdin', 'stdout', 'stderr'][fd]}`));
  }
  const state = captureThroughNote(pid);
  const inherited = state.fds.filter((e) => e.fd <= 2).map((e) => state.files[e.file]);
  assert.deepEqual(inherited.map((f) => f.kind), ['inherited', 'inherited', 'inherited']);
  assert.equal(state.fds[1].file, state.fds[2].file, 'stdout and stderr were one description');
  reap(pid);

  const s = stub(t);
  restoreInto(s, state);
  for (const fd of [0, 1, 2]) {
    assert.equal(fs.readlinkSync(`/proc/${s.pid}/fd/${fd}`), fs.readlinkSync(`/proc/self/fd/${fd}`), `fd ${fd} is the restorer's`);
  }
  for (const fd of [0, 1, 2]) assert.ok(sameOpenFile(s.pid, fd, process.pid, fd), `the stub's fd ${fd} is the restorer's own fd ${fd}`);
});
