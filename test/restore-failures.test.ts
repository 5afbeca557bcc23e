/**
 * Restores that must fail, and fail cleanly: exit 1, one clear message naming the
 * cause, and nothing left behind (no process with the image's PID, no stub, nothing
 * stopped or traced).
 *
 * - a damaged image: bytes flipped in the stored contents of an anonymous mapping, or of
 *   the executable's data segment (a private file mapping with private pages): refused
 *   with a checksum error naming the mapping; a truncated image; a core that is not a
 *   checkpoint;
 * - an image whose PID is taken: restored while the original still runs (dumped with
 *   --leave-running); the original is left untouched;
 * - an image whose executable changed since the dump (a copy of the target in a temp
 *   directory, modified after the dump): refused naming the file; restored anyway with
 *   --ignore-changed-files, with a warning naming it.
 *
 * test/targets/restore-payload.c fills 1 MiB with a pattern and checks it after a restore.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { assertRunningUntraced, buildTarget, describe as describeRun, makeCore, startTarget, tempDir, type Target } from './helpers/targets.js';
import { readSegments, type Segment } from './helpers/elf.js';
import { assertNothingLeft, assertNotStoppedOrTraced, describeBytes, dump, nowTicks, orphanedStubs, processGone, restore, startProgram, startTicks, type RestoreResult } from './helpers/restore.js';

const fileStart = nowTicks();

interface Dumped {
  target: Target;
  dir: string;
  image: string;
  area: number;
  data: number;
}

async function dumpPayload(t: TestContext): Promise<Dumped> {
  const dir = tempDir(t, 'stasis-restore-fail-');
  const target = await startTarget(t, 'restore-payload', { args: [path.join(dir, 'trigger')] });
  const field = (k: string) => Number(target.readyFields.find((f) => f.startsWith(`${k}=`))?.slice(k.length + 1));
  const image = path.join(dir, 'payload.img');
  const d = await dump(target.pid, image, dir);
  assert.equal(d.code, 0, `stasis dump: ${describeBytes(d)}`);
  await target.exited;
  return { target, dir, image, area: field('area'), data: field('data') };
}

/** The checks every failed restore must pass. */
async function assertCleanFailure(r: RestoreResult, pid: number, message: RegExp): Promise<void> {
  assert.equal(r.code, 1, `stasis restore must fail with exit 1: ${describeBytes(r)}`);
  assert.match(r.stderr, message, 'the message says why');
  assert.doesNotMatch(r.stderr, /internal error|\n\s+at /, `a clear message, not a crash: ${r.stderr}`);
  assert.equal(r.stdout.length, 0, 'nothing on stdout');
  assert.ok(processGone(pid), `no process with pid ${pid} is left (${fs.existsSync(`/proc/${pid}`) ? fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').slice(0, 3).join(' ') : ''})`);
  assert.deepEqual(orphanedStubs(fileStart), [], 'no restore stub is left');
}

function segmentAt(segments: Segment[], address: number): Segment {
  const s = segments.find((x) => x.type === 'LOAD' && address >= x.vaddr && address < x.vaddr + x.memsz);
  assert.ok(s, `a PT_LOAD covers 0x${address.toString(16)}`);
  assert.ok(address - s.vaddr < s.filesz, `0x${address.toString(16)} is stored in the image (filesz 0x${s.filesz.toString(16)})`);
  return s;
}

function flipBytes(file: string, offset: number, count = 16): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const b = Buffer.alloc(count);
    fs.readSync(fd, b, 0, count, offset);
    for (let i = 0; i < count; i++) b[i] ^= 0xa5;
    fs.writeSync(fd, b, 0, count, offset);
  } finally {
    fs.closeSync(fd);
  }
}

const hex = (n: number) => n.toString(16);

test('a damaged image (bytes flipped in an anonymous mapping) is refused naming the mapping; nothing is left', async (t) => {
  const p = await dumpPayload(t);
  const seg = segmentAt(await readSegments(p.image), p.area);
  flipBytes(p.image, seg.offset + (p.area - seg.vaddr) + 5 * 4096 + 100);
  const r = await restore(t, p.image, { scratch: p.dir, pid: p.target.pid });
  await assertCleanFailure(r, p.target.pid, /checksum/i);
  assert.match(r.stderr, new RegExp(`${hex(seg.vaddr)}-${hex(seg.vaddr + seg.memsz)}`), `the message names the mapping ${hex(seg.vaddr)}-${hex(seg.vaddr + seg.memsz)}`);
});

test("a damaged image (bytes flipped in the executable's data pages) is refused naming the mapping; nothing is left", async (t) => {
  const p = await dumpPayload(t);
  const seg = segmentAt(await readSegments(p.image), p.data);
  flipBytes(p.image, seg.offset + (p.data - seg.vaddr) + 200);
  const r = await restore(t, p.image, { scratch: p.dir, pid: p.target.pid });
  await assertCleanFailure(r, p.target.pid, /checksum/i);
  assert.match(r.stderr, new RegExp(`${hex(seg.vaddr)}-${hex(seg.vaddr + seg.memsz)}`), 'the message names the mapping');
  assert.match(r.stderr, /restore-payload/, 'the mapping is named with its file');
});

test('a truncated image is refused; nothing is left', async (t) => {
  const p = await dumpPayload(t);
  const segs = (await readSegments(p.image)).filter((s) => s.type === 'LOAD' && s.filesz > 0);
  const last = segs.reduce((a, b) => (a.offset > b.offset ? a : b));
  fs.truncateSync(p.image, last.offset + Math.floor(last.filesz / 2));
  const r = await restore(t, p.image, { scratch: p.dir, pid: p.target.pid });
  await assertCleanFailure(r, p.target.pid, /truncated|damaged|short|checksum|size/i);
});

test('a core (stasis core) is not a checkpoint: refused, nothing is left', async (t) => {
  const dir = tempDir(t, 'stasis-restore-core-');
  const target = await startTarget(t, 'restore-payload', { args: [path.join(dir, 'trigger')] });
  const core = path.join(dir, 'payload.core');
  const made = await makeCore(target.pid, core);
  assert.equal(made.code, 0, describeRun(made));
  await target.stop();
  const r = await restore(t, core, { scratch: dir, pid: target.pid });
  await assertCleanFailure(r, target.pid, /not a stasis checkpoint|no .* note/i);
});

test('an image whose PID is in use (the original still runs) is refused; the original is untouched', async (t) => {
  const dir = tempDir(t, 'stasis-restore-pid-');
  const target = await startTarget(t, 'restore-payload', { args: [path.join(dir, 'trigger')] });
  const image = path.join(dir, 'payload.img');
  const d = await dump(target.pid, image, dir, ['--leave-running']);
  assert.equal(d.code, 0, `stasis dump --leave-running: ${describeBytes(d)}`);
  assert.equal(d.json?.leftRunning, true);
  assertRunningUntraced(target.pid, 'the original after dump --leave-running');
  const started = startTicks(target.pid);
  const ticks = target.lines.length;
  const r = await restore(t, image, { scratch: dir, timeoutMs: 30_000 });
  assert.equal(r.code, 1, `stasis restore must fail: ${describeBytes(r)}`);
  assert.match(r.stderr, new RegExp(`\\b${target.pid}\\b[^\\n]*in use|in use[^\\n]*\\b${target.pid}\\b`), 'the message says the PID is in use');
  assert.doesNotMatch(r.stderr, /internal error/);
  assert.equal(startTicks(target.pid), started, 'the original is the same process');
  assertRunningUntraced(target.pid, 'the original after the refused restore');
  await target.waitForLine(/^tick /, 5_000, ticks + 2);
  assert.ok(target.alive(), 'the original still runs');
  assert.deepEqual(orphanedStubs(fileStart), [], 'no restore stub is left');
});

test('an image whose executable changed is refused naming it; --ignore-changed-files restores it with a warning', async (t) => {
  const dir = tempDir(t, 'stasis-restore-exe-');
  const exe = path.join(dir, 'bin', 'restore-payload');
  fs.mkdirSync(path.dirname(exe));
  fs.copyFileSync(buildTarget('restore-payload'), exe);
  fs.chmodSync(exe, 0o755);
  const trigger = path.join(dir, 'trigger');
  const program = startProgram(t, exe, [trigger]);
  await program.waitForOutput(/^ready /m);
  const pid = program.pid;
  const image = path.join(dir, 'payload.img');
  const d = await dump(pid, image, dir);
  assert.equal(d.code, 0, `stasis dump: ${describeBytes(d)}`);
  await program.exited;

  fs.appendFileSync(exe, Buffer.from('\0changed after the checkpoint\0'));
  const r = await restore(t, image, { scratch: dir, pid });
  await assertCleanFailure(r, pid, new RegExp(exe.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  assert.match(r.stderr, /--ignore-changed-files/, 'the message says how to restore anyway');

  fs.writeFileSync(trigger, '');
  const forced = await restore(t, image, { scratch: dir, pid, extra: ['--ignore-changed-files'], timeoutMs: 30_000 });
  assert.equal(forced.code, 0, `restore --ignore-changed-files: ${describeBytes(forced)}`);
  assert.match(forced.stdout.toString(), /^OK payload$/m, 'the restored program found its memory intact');
  assert.match(forced.stderr, new RegExp(`warning[^\\n]*${exe.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), 'a warning names the changed file');
  assert.ok(processGone(pid));
  assertNotStoppedOrTraced([pid], `pid ${pid}`);
});

test('no process is left behind, stopped, traced or otherwise', (t) => assertNothingLeft(t, fileStart));
