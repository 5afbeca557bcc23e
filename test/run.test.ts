/**
 * `stasis run` (supervised checkpointing), `stasis checkpoint DIR` and `stasis run --resume`.
 *
 * The oracle is the program itself: run-steps (test/targets/run-steps.c) and a python3
 * script print deterministic lines that depend on state kept only in their memory, plus a
 * random per-process token, so a resumed program must print exactly what the uninterrupted
 * run printed from the checkpoint on, with the same token (a restart from scratch would
 * show a new one).
 *
 *  - each trigger: self-SIGSTOP (C, multi-threaded, and python3), --every 0.5,
 *    `stasis checkpoint DIR` (and what it does with a stale supervisor.pid);
 *  - --keep 2 rotation;
 *  - a checkpoint that fails (DIR on a tmpfs remounted read-only, then full) leaves the
 *    program running and the older images intact, and `stasis checkpoint` says so;
 *  - --resume after the supervisor and the program were both killed with SIGKILL (twice
 *    in a row), while the program still runs (refused), and past a damaged newest image;
 *  - triggers that meet: checkpoints slower than --every, self-stops and requests among
 *    periodic checkpoints;
 *  - stdin/stdout pass through, SIGTERM is forwarded, the exit status is the program's.
 *
 * The supervisor (node bin/stasis.js run) is always a separate process: this process never
 * traces anything.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { buildTarget, run, runStasis, sleep, startTarget, describe as describeRun } from './helpers/targets.js';
import { realPython } from './helpers/restore.js';
import { rewriteStasisNote } from './helpers/elf.js';
import { STASIS_NOTE } from '../src/image/stasis-notes.js';
import { describeThisCpu, type CpuState } from '../src/resources/cpu.js';
import {
  corruptImageData,
  finished,
  freeBytes,
  gone,
  imageFiles,
  lines,
  manifest,
  manifestOrNull,
  mountTmpfs,
  programOf,
  removeScratchDirs,
  scratchDir,
  startRun,
  stateOf,
  stoppedOrTraced,
  strayFiles,
  waitUntilGone,
  type Entry,
  type SupervisedRun,
} from './helpers/run.js';

const STEPS = buildTarget('run-steps');
const ECHO = buildTarget('run-echo');
const touched: number[] = [];

/** The output with the per-process token replaced: what every run of run-steps prints. */
function normalise(text: string): string {
  return text.replace(/token [0-9a-f]{16}/g, 'token T');
}

function tokens(text: string): Set<string> {
  return new Set([...text.matchAll(/token ([0-9a-f]+)/g)].map((m) => m[1]));
}

/** The uninterrupted reference: the program run directly, without stasis and without stopping. */
async function reference(args: string[]): Promise<string> {
  const r = await run(STEPS, [...args, '--no-stop'], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `reference run of run-steps ${args.join(' ')}: ${describeRun(r)}`);
  return r.stdout;
}

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function assertSame(got: string, expected: string, what: string): void {
  if (got === expected) return;
  let i = 0;
  while (i < got.length && i < expected.length && got[i] === expected[i]) i++;
  const ctx = (s: string) => JSON.stringify(s.slice(Math.max(0, i - 120), i + 120));
  assert.fail(`${what}: lengths ${got.length} (got) vs ${expected.length} (expected), first difference at ${i}:\n  got      ${ctx(got)}\n  expected ${ctx(expected)}`);
}

/** What is left of `run` once it is over: nothing stopped or traced, the program gone. */
async function assertCleanAfter(r: SupervisedRun, extra: number[] = []): Promise<void> {
  const pids = [...r.owned.map((o) => o.pid), ...extra];
  touched.push(...pids);
  for (const pid of pids) assert.ok(await waitUntilGone(pid, 5_000), `process ${pid} is still there (state ${stateOf(pid)}) after the run`);
  assert.deepEqual(stoppedOrTraced(pids), [], 'stopped or traced processes left behind');
}

function entryLine(e: Entry): string {
  return `${e.seq} ${e.file} ${e.trigger}`;
}

// ---------------------------------------------------------------------------------------
// self-SIGSTOP

test('self-SIGSTOP (C): the checkpoint is taken at the stop and the program goes on; --resume continues from exactly there', { timeout: 60_000 }, async (t) => {
  const dir = scratchDir(t, 'stasis-run-');
  const rd = path.join(dir, 'rd');
  // multi-threaded: two more threads count in their own loops; "threads ok" at the end says they ran after the stop
  const args = ['--steps', '14', '--stop-at', '6', '--delay-ms', '10', '--threads', '2'];
  const expected = await reference(args);

  const first = startRun(t, ['--dir', rd, '--', STEPS, ...args]);
  const programPid = await programOf(first);
  const st1 = await finished(first);
  const out1 = first.stdout().toString('latin1');
  assert.equal(st1.code, 0, `stasis run exits with the program's status\n${first.stderr()}`);
  assertSame(normalise(out1), normalise(expected), 'output of the supervised run');
  assert.equal(tokens(out1).size, 1);
  assert.match(first.stderr(), /checkpoint 1 \(self-stop\) checkpoint-000001\.img/);

  const m = manifest(rd);
  assert.deepEqual(m.checkpoints.map(entryLine), ['1 checkpoint-000001.img self-stop']);
  assert.equal(m.checkpoints[0].pid, programPid);
  assert.ok(fs.existsSync(path.join(rd, 'checkpoint-000001.img')));
  assert.equal(fs.existsSync(path.join(rd, 'supervisor.pid')), false, 'supervisor.pid is removed when the run ends');
  await assertCleanAfter(first);

  const resumed = startRun(t, ['--resume', rd]);
  resumed.adopt(programPid);
  const st2 = await finished(resumed);
  const out2 = resumed.stdout().toString('latin1');
  assert.equal(st2.code, 0, `--resume exits with the program's status\n${resumed.stderr()}`);
  // the program continues from its kill(getpid(), SIGSTOP): the same bytes, token included
  const from = out1.indexOf('after checkpoint 6\n');
  assert.ok(from > 0);
  assertSame(out2, out1.slice(from), 'output after --resume (against the uninterrupted run from the stop on)');
  assert.match(resumed.stderr(), new RegExp(`resumed process ${programPid} `));
  await assertCleanAfter(resumed);
});

const PYTHON_SCRIPT = `
import hashlib, os, random, signal, sys, time
random.seed(7)
h = hashlib.sha256()
steps, stop_at = int(sys.argv[1]), int(sys.argv[2])
no_stop = len(sys.argv) > 3
token = os.urandom(8).hex()
table = {}
for i in range(steps):
    if i == stop_at:
        print("stop", i, flush=True)
        if not no_stop:
            os.kill(os.getpid(), signal.SIGSTOP)
        print("after checkpoint", i, flush=True)
    h.update(repr(random.random()).encode())
    table[i % 5] = table.get(i % 5, 0) + random.randint(1, 1000)
    print("step", i, "token", token, "sum", h.hexdigest()[:16], table[i % 5], flush=True)
    time.sleep(0.01)
print("done", h.hexdigest(), sorted(table.items()), flush=True)
`;

test('self-SIGSTOP (python3): os.kill(os.getpid(), SIGSTOP) returns once the image is on disk; --resume continues from there', { timeout: 60_000 }, async (t) => {
  const python = realPython();
  if (!python) return t.skip('no python3');
  const dir = scratchDir(t, 'stasis-run-');
  const script = path.join(dir, 'selfstop.py');
  fs.writeFileSync(script, PYTHON_SCRIPT);
  const rd = path.join(dir, 'rd');
  const ref = await run(python, [script, '20', '8', 'no-stop'], { timeoutMs: 30_000 });
  assert.equal(ref.code, 0, describeRun(ref));

  const first = startRun(t, ['--dir', rd, '--', python, script, '20', '8']);
  const programPid = await programOf(first);
  const st1 = await finished(first);
  const out1 = first.stdout().toString('latin1');
  assert.equal(st1.code, 0, first.stderr());
  assertSame(normalise(out1), normalise(ref.stdout), 'output of the supervised python3');
  assert.deepEqual(manifest(rd).checkpoints.map(entryLine), ['1 checkpoint-000001.img self-stop']);
  await assertCleanAfter(first);

  const resumed = startRun(t, ['--resume', rd]);
  resumed.adopt(programPid);
  const st2 = await finished(resumed);
  assert.equal(st2.code, 0, resumed.stderr());
  const from = out1.indexOf('after checkpoint 8\n');
  assert.ok(from > 0);
  assertSame(resumed.stdout().toString('latin1'), out1.slice(from), 'python3 output after --resume');
  await assertCleanAfter(resumed);
});

// ---------------------------------------------------------------------------------------
// periodic and requested checkpoints

test('--every 0.5: images appear while the program runs, with increasing sequence numbers, and the last one resumes', { timeout: 60_000 }, async (t) => {
  const dir = scratchDir(t, 'stasis-run-');
  const rd = path.join(dir, 'rd');
  const args = ['--steps', '70', '--delay-ms', '40'];
  const refP = reference(args);
  const r = startRun(t, ['--dir', rd, '--every', '0.5', '--', STEPS, ...args]);
  const programPid = await programOf(r);
  // watch the manifest while it runs
  const seen: number[][] = [];
  while (r.alive()) {
    const m = manifestOrNull(rd);
    const seqs = m?.checkpoints.map((c) => c.seq) ?? [];
    if (seqs.length && JSON.stringify(seqs) !== JSON.stringify(seen.at(-1))) {
      seen.push(seqs);
      // each listed image is there while the program runs
      for (const c of m!.checkpoints) assert.ok(fs.existsSync(path.join(rd, c.file)), `${c.file} is listed but not in ${rd}`);
    }
    await sleep(25);
  }
  const st = await finished(r);
  assert.equal(st.code, 0, r.stderr());
  const out = r.stdout().toString('latin1');
  assertSame(normalise(out), normalise(await refP), 'output under --every 0.5');

  const m = manifest(rd);
  const seqs = m.checkpoints.map((c) => c.seq);
  t.diagnostic(`manifest states seen while running: ${JSON.stringify(seen)}; final ${JSON.stringify(seqs)}`);
  assert.ok(seen.length >= 3, `several images appear while it runs (saw ${JSON.stringify(seen)})`);
  assert.ok(m.checkpoints.length >= 3, `at least 3 periodic images in ~2.8 s (got ${seqs.join(',')})`);
  assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'sequence numbers 1, 2, 3, ...');
  for (const c of m.checkpoints) {
    assert.equal(c.trigger, 'periodic');
    assert.equal(c.pid, programPid);
    assert.equal(c.file, `checkpoint-${String(c.seq).padStart(6, '0')}.img`);
    assert.equal(c.bytes, fs.statSync(path.join(rd, c.file)).size, `${c.file}: bytes in the manifest is the file's size`);
  }
  const times = m.checkpoints.map((c) => Date.parse(c.time));
  assert.deepEqual([...times].sort((a, b) => a - b), times, 'times increase');
  assert.deepEqual(imageFiles(rd), m.checkpoints.map((c) => c.file));
  await assertCleanAfter(r);

  // the newest periodic image, taken at an arbitrary point, continues the same output
  const resumed = startRun(t, ['--resume', rd]);
  resumed.adopt(programPid);
  const st2 = await finished(resumed);
  assert.equal(st2.code, 0, resumed.stderr());
  const out2 = resumed.stdout().toString('latin1');
  assert.ok(out2.length > 0 && out.endsWith(out2), `the resumed output is a suffix of the supervised run's:\n${out2.slice(0, 400)}`);
  assert.ok(out2 === out || out[out.length - out2.length - 1] === '\n', 'and it starts at a line boundary');
  await assertCleanAfter(resumed);
});

test('stasis checkpoint DIR: prints the new entry and the program keeps running', { timeout: 60_000 }, async (t) => {
  const dir = scratchDir(t, 'stasis-run-');
  const rd = path.join(dir, 'rd');
  const args = ['--steps', '60', '--delay-ms', '30'];
  const refP = reference(args);
  const r = startRun(t, ['--dir', rd, '--', STEPS, ...args]);
  const programPid = await programOf(r);
  await r.waitForStdout(/^step 5 /m);
  assert.equal(fs.readFileSync(path.join(rd, 'supervisor.pid'), 'utf8').trim(), String(r.pid), 'DIR/supervisor.pid names the supervisor');

  const c1 = await runStasis(['checkpoint', rd], { timeoutMs: 30_000 });
  assert.equal(c1.code, 0, describeRun(c1));
  assert.match(c1.stdout, /^checkpoint 1: checkpoint-000001\.img, [\d.]+ [KMG]i?B\n$/);
  const before = lines(r.stdout().toString('latin1')).length;
  const c2 = await runStasis(['checkpoint', rd, '--json'], { timeoutMs: 30_000 });
  assert.equal(c2.code, 0, describeRun(c2));
  const e2 = JSON.parse(c2.stdout) as Entry;
  assert.equal(e2.seq, 2);
  assert.equal(e2.trigger, 'request');
  assert.equal(e2.pid, programPid);
  assert.deepEqual(manifest(rd).checkpoints.map(entryLine), ['1 checkpoint-000001.img request', '2 checkpoint-000002.img request']);
  assert.doesNotMatch(stateOf(programPid) ?? '', /[tT]/, 'the program is not left stopped');

  // it keeps running: more lines come, and it ends as it would have
  await r.waitForStdout(new RegExp(`^step ${Number(lines(r.stdout().toString('latin1')).at(-1)!.split(' ')[1]) + 3} `, 'm'));
  assert.ok(lines(r.stdout().toString('latin1')).length > before);
  const st = await finished(r);
  assert.equal(st.code, 0, r.stderr());
  assertSame(normalise(r.stdout().toString('latin1')), normalise(await refP), 'output with two requested checkpoints');
  await assertCleanAfter(r);

  // no supervisor any more: a clear error, at once
  const c3 = await runStasis(['checkpoint', rd], { timeoutMs: 15_000 });
  assert.equal(c3.code, 1, describeRun(c3));
  assert.match(c3.stderr, /no supervisor|not running/);
});

test('stasis checkpoint DIR with a stale supervisor.pid (its PID now another process) signals no one and fails', { timeout: 30_000 }, async (t) => {
  // what DIR looks like after its supervisor was killed with SIGKILL and its PID was reused
  const dir = scratchDir(t, 'stasis-run-');
  const rd = path.join(dir, 'rd');
  const r = startRun(t, ['--dir', rd, '--', STEPS, '--steps', '3', '--delay-ms', '1']);
  await finished(r);
  await assertCleanAfter(r);
  const other = await startTarget(t, 'run-echo', { stdinPipe: true }); // any process of ours
  touched.push(other.pid);
  fs.writeFileSync(path.join(rd, 'supervisor.pid'), `${other.pid}\n`);
  const started = Date.now();
  const c = await runStasis(['checkpoint', rd], { timeoutMs: 8_000 }).catch((err: Error) => ({ code: null, signal: null, stdout: '', stderr: err.message.slice(0, 200), ms: Date.now() - started }));
  await sleep(50);
  const otherAlive = other.alive();
  const otherExit = otherAlive ? null : await other.exited;
  t.diagnostic(`stasis checkpoint: exit ${c.code} after ${Date.now() - started} ms; the other process: ${otherAlive ? 'alive' : `dead ${JSON.stringify(otherExit)}`}`);
  assert.equal(otherAlive, true, `the process now holding that PID (${other.pid}, not a supervisor) was not signalled: ${JSON.stringify(otherExit)}`);
  assert.equal(c.code, 1, `stasis checkpoint sees that ${other.pid} is not the supervisor of ${rd}: ${describeRun(c as never)}`);
});

test('--keep 2: only the two newest images remain and the manifest lists exactly them', { timeout: 60_000 }, async (t) => {
  const dir = scratchDir(t, 'stasis-run-');
  const rd = path.join(dir, 'rd');
  const r = startRun(t, ['--dir', rd, '--keep', '2', '--', STEPS, '--steps', '1000', '--delay-ms', '20', '--term-exit', '0']);
  const programPid = await programOf(r);
  await r.waitForStdout(/^step 2 /m);
  for (let i = 1; i <= 5; i++) {
    const c = await runStasis(['checkpoint', rd], { timeoutMs: 30_000 });
    assert.equal(c.code, 0, describeRun(c));
    assert.match(c.stdout, new RegExp(`^checkpoint ${i}: `));
    const m = manifest(rd);
    const want = [i - 1, i].filter((s) => s >= 1).map((s) => `checkpoint-${String(s).padStart(6, '0')}.img`);
    assert.deepEqual(m.checkpoints.map((e) => e.file), want, `manifest after checkpoint ${i}`);
    assert.deepEqual(imageFiles(rd), want, `image files after checkpoint ${i}`);
    assert.equal(m.keep, 2);
  }
  assert.deepEqual(strayFiles(rd), []);
  process.kill(r.pid, 'SIGTERM');
  const st = await finished(r);
  assert.equal(st.code, 0, `SIGTERM forwarded, the program's handler exits 0\n${r.stderr()}`);
  assert.ok(lines(r.stdout().toString('latin1')).includes('got SIGTERM'));
  assert.equal(stateOf(programPid), null);
  await assertCleanAfter(r);
});

// ---------------------------------------------------------------------------------------
// failures

/*
 * Making DIR unwritable midway. As root, chmod 0555 does not stop writes (CAP_DAC_OVERRIDE);
 * running the supervisor as nobody (setpriv --reuid=65534) would also run the program as
 * nobody and change what is being tested (and --resume needs CAP_CHECKPOINT_RESTORE).
 * `chattr +i` works for root, but only on file systems with attributes. A tmpfs of our own
 * does it for root everywhere: `mount -o remount,ro` makes DIR read-only (EROFS), and
 * filling it makes the next image fail halfway with ENOSPC.
 */
test('a failing checkpoint (DIR read-only, then full) leaves the program running and older images intact', { timeout: 90_000 }, async (t) => {
  const fsys = await mountTmpfs(t, 16 << 20);
  const rd = fsys.dir;
  const args = ['--steps', '2000', '--delay-ms', '20', '--term-exit', '0'];
  const r = startRun(t, ['--dir', rd, '--', STEPS, ...args]);
  const programPid = await programOf(r);
  await r.waitForStdout(/^step 3 /m);
  const c1 = await runStasis(['checkpoint', rd], { timeoutMs: 30_000 });
  assert.equal(c1.code, 0, describeRun(c1));
  const image1 = path.join(rd, 'checkpoint-000001.img');
  const hash1 = sha256(image1);
  const manifest1 = fs.readFileSync(path.join(rd, 'manifest.json'), 'utf8');
  const imageBytes = fs.statSync(image1).blocks * 512;

  const assertUnharmed = async (what: string) => {
    // the program goes on: its output grows, it is neither stopped nor traced
    const n = r.stdout().length;
    await r.waitForStdout(n + 200, 10_000);
    assert.deepEqual(stoppedOrTraced([programPid]), [], `${what}: the program is left stopped or traced`);
    assert.equal(r.alive(), true, `${what}: the supervisor goes on`);
    assert.equal(sha256(image1), hash1, `${what}: the older image is unchanged`);
    assert.equal(fs.readFileSync(path.join(rd, 'manifest.json'), 'utf8'), manifest1, `${what}: the manifest is unchanged`);
  };

  // 1. read-only: EROFS at once
  await fsys.remount('ro');
  const failures = () => (r.stderr().match(/checkpoint failed/g) ?? []).length;
  process.kill(r.pid, 'SIGUSR2');
  await r.waitForStderr(/checkpoint failed[^\n]*\n/, 20_000);
  t.diagnostic(`read-only: ${r.stderr().match(/[^\n]*checkpoint failed[^\n]*/)![0]}`);
  await assertUnharmed('DIR read-only');
  await fsys.remount('rw');

  // 2. full: ENOSPC halfway through writing the image
  const filler = path.join(rd, 'filler');
  const leave = Math.floor(imageBytes / 4);
  fs.writeFileSync(filler, Buffer.alloc(Math.max(0, freeBytes(rd) - leave), 1));
  t.diagnostic(`tmpfs: image 1 uses ${imageBytes} bytes, ${freeBytes(rd)} left free`);
  // `stasis checkpoint` must say that it failed (exit 1), not wait for an entry that never comes
  const started = Date.now();
  const c2 = await runStasis(['checkpoint', rd], { timeoutMs: 12_000 }).catch((err: Error) => ({ code: null, signal: null, stdout: '', stderr: String(err.message), ms: Date.now() - started }));
  await r.waitForStderr(/checkpoint failed[^]*checkpoint failed[^\n]*\n/, 20_000);
  t.diagnostic(`full: ${r.stderr().split('\n').filter((l) => /checkpoint failed/.test(l))[1]}`);
  assert.equal(failures(), 2);
  await assertUnharmed('DIR full');
  const leftovers = fs.readdirSync(rd).filter((f) => f !== 'filler' && f !== 'manifest.json' && f !== 'supervisor.pid' && f !== 'checkpoint-000001.img');
  fs.rmSync(filler);

  // 3. space again: the next checkpoint works and numbering goes on
  const c3 = await runStasis(['checkpoint', rd], { timeoutMs: 30_000 });
  assert.equal(c3.code, 0, describeRun(c3));
  assert.deepEqual(manifest(rd).checkpoints.map(entryLine), ['1 checkpoint-000001.img request', '2 checkpoint-000002.img request']);
  assert.equal(sha256(image1), hash1);

  process.kill(r.pid, 'SIGTERM');
  const st = await finished(r);
  assert.equal(st.code, 0, r.stderr());
  await assertCleanAfter(r);

  // checked last, so that the checks above still run when these fail
  assert.deepEqual(leftovers, [], 'a checkpoint that failed halfway leaves no partial image in DIR');
  assert.equal(c2.code, 1, `stasis checkpoint DIR reports the failed checkpoint (exit 1) instead of waiting for it (took ${Math.round(Date.now() - started)} ms):\n${describeRun(c2 as never)}`);
});

test('--resume after the supervisor and the program were killed with SIGKILL (twice): the complete output equals an uninterrupted run', { timeout: 60_000 }, async (t) => {
  const dir = scratchDir(t, 'stasis-run-');
  const rd = path.join(dir, 'rd');
  const outFile = path.join(dir, 'out.txt');
  const args = ['--steps', '120', '--delay-ms', '25', '--mib', '8', '--threads', '3'];
  const refP = reference(args);
  const waitLines = async (r: SupervisedRun, n: number) => {
    const deadline = Date.now() + 20_000;
    while (lines(fs.readFileSync(outFile, 'utf8')).length < n) {
      if (Date.now() > deadline) throw new Error(`fewer than ${n} lines in ${outFile}: ${fs.readFileSync(outFile, 'utf8')}\n${r.stderr()}`);
      await sleep(10);
    }
  };
  // stdout is a regular file: the resumed program goes on writing it at its own offset
  let r = startRun(t, ['--dir', rd, '--', STEPS, ...args], { stdout: { file: outFile } });
  const programPid = await programOf(r);
  let token = '';
  for (let cycle = 1; cycle <= 2; cycle++) {
    await waitLines(r, lines(fs.readFileSync(outFile, 'utf8')).length + 8);
    const c = await runStasis(['checkpoint', rd], { timeoutMs: 30_000 });
    assert.equal(c.code, 0, `cycle ${cycle}: ${describeRun(c)}`);
    const atCheckpoint = lines(fs.readFileSync(outFile, 'utf8')).length;
    await waitLines(r, atCheckpoint + 6);
    // the whole tree, by PID
    assert.equal(r.alive(), true);
    process.kill(programPid, 'SIGKILL');
    process.kill(r.pid, 'SIGKILL');
    const st = await finished(r);
    assert.equal(st.signal, 'SIGKILL');
    assert.ok(await waitUntilGone(programPid, 5_000), 'the program is gone');
    const killedOutput = fs.readFileSync(outFile, 'utf8');
    assert.ok(!killedOutput.includes('done'), 'killed before the end');
    const seen = [...tokens(killedOutput)];
    assert.equal(seen.length, 1, `one process wrote it all: tokens ${seen.join(' ')}`);
    token ||= seen[0];
    assert.equal(seen[0], token);
    t.diagnostic(`cycle ${cycle}: checkpoint after ${atCheckpoint} lines, killed after ${lines(killedOutput).length}`);
    // supervisor.pid names a dead supervisor now: stasis checkpoint must not signal anyone else
    r = startRun(t, ['--resume', rd]);
    r.adopt(programPid);
    await r.waitForStderr(new RegExp(`resumed process ${programPid} `));
  }
  const st2 = await finished(r);
  assert.equal(st2.code, 0, r.stderr());
  const final = fs.readFileSync(outFile, 'utf8');
  assert.deepEqual([...tokens(final)], [token], 'every line comes from the same process memory (no restart from scratch)');
  assertSame(normalise(final), normalise(await refP), 'the output file after two --resume');
  assert.deepEqual(manifest(rd).checkpoints.map(entryLine), ['1 checkpoint-000001.img request', '2 checkpoint-000002.img request']);
  await assertCleanAfter(r, [programPid]);
});

test('--resume while the program still runs is refused (exit 1) and leaves everything as it was', { timeout: 60_000 }, async (t) => {
  const dir = scratchDir(t, 'stasis-run-');
  const rd = path.join(dir, 'rd');
  const r = startRun(t, ['--dir', rd, '--', STEPS, '--steps', '1000', '--stop-at', '2', '--term-exit', '0']);
  const programPid = await programOf(r);
  await r.waitForStdout(/^step 4 /m);
  const before = fs.readFileSync(path.join(rd, 'manifest.json'), 'utf8');
  const second = await runStasis(['run', '--resume', rd], { timeoutMs: 30_000 });
  assert.equal(second.code, 1, describeRun(second));
  assert.match(second.stderr, new RegExp(`${programPid}`), 'the message names the PID in use');
  assert.equal(fs.readFileSync(path.join(rd, 'manifest.json'), 'utf8'), before, 'no image is marked damaged');
  assert.equal(fs.readFileSync(path.join(rd, 'supervisor.pid'), 'utf8').trim(), String(r.pid), 'supervisor.pid still names the running supervisor');
  const n = r.stdout().length;
  await r.waitForStdout(n + 100);
  assert.deepEqual(stoppedOrTraced([programPid]), []);
  process.kill(r.pid, 'SIGTERM');
  const st = await finished(r);
  assert.equal(st.code, 0, r.stderr());
  await assertCleanAfter(r);
});

// ---------------------------------------------------------------------------------------
// triggers that meet: checkpoints slower than --every, self-stops and requests among them

test('periodic checkpoints slower than --every do not pile up: the supervisor exits as soon as the program does', { timeout: 60_000 }, async (t) => {
  const dir = scratchDir(t, 'stasis-run-');
  const rd = path.join(dir, 'rd');
  // 64 MiB to write per image: each checkpoint takes longer than the 0.1 s period
  const r = startRun(t, ['--dir', rd, '--every', '0.1', '--', STEPS, '--steps', '40', '--delay-ms', '25', '--mib', '64']);
  await programOf(r);
  await r.waitForStdout(/^done sum /m, 30_000);
  const doneAt = Date.now();
  const st = await finished(r, 30_000);
  const lag = Date.now() - doneAt;
  const failed = r.stderr().split('\n').filter((l) => /checkpoint failed/.test(l));
  const taken = manifest(rd).checkpoints.length;
  t.diagnostic(`${taken} checkpoints; the supervisor exited ${lag} ms after the program's last line; ${failed.length} failed checkpoints reported`);
  assert.equal(st.code, 0, r.stderr());
  assert.ok(taken >= 1);
  assert.ok(lag < 2_000, `the supervisor exited ${lag} ms after the program ended (a backlog of periodic checkpoints ran first?)`);
  assert.ok(failed.length <= 1, `checkpoints queued up and then failed on the exited program:\n${failed.slice(0, 5).join('\n')}`);
  await assertCleanAfter(r);
});

test('a self-SIGSTOP while periodic checkpoints are due is still checkpointed and continued', { timeout: 60_000 }, async (t) => {
  const dir = scratchDir(t, 'stasis-run-');
  const rd = path.join(dir, 'rd');
  const stops = [5, 10, 15, 20, 25, 30, 35];
  const args = ['--steps', '40', '--delay-ms', '10', '--mib', '32', ...stops.flatMap((s) => ['--stop-at', String(s)])];
  const refP = reference(args);
  const r = startRun(t, ['--dir', rd, '--every', '0.1', '--', STEPS, ...args]);
  const programPid = await programOf(r);
  const deadline = Date.now() + 20_000;
  while (r.alive() && Date.now() < deadline) await sleep(50);
  if (r.alive()) {
    const lastLine = lines(r.stdout().toString('latin1')).at(-1);
    const status = fs.readFileSync(`/proc/${programPid}/status`, 'utf8');
    const state = status.match(/^State:\s*(.*)$/m)?.[1];
    const tracer = status.match(/^TracerPid:\s*(\d+)/m)?.[1];
    const taken = manifestOrNull(rd)?.checkpoints.length;
    await finished(r, 1).catch(() => undefined); // kills both by PID
    assert.fail(`the program never finished: after 20 s its last line is ${JSON.stringify(lastLine)}, its state ${state} (tracer ${tracer}), and the supervisor had taken ${taken} checkpoints meanwhile`);
  }
  const st = await finished(r);
  assert.equal(st.code, 0, r.stderr());
  assertSame(normalise(r.stdout().toString('latin1')), normalise(await refP), 'output with self-stops among periodic checkpoints');
  const selfStops = manifest(rd).checkpoints.filter((c) => c.trigger === 'self-stop').length;
  assert.equal(selfStops, stops.length, 'one self-stop checkpoint per stop');
  await assertCleanAfter(r);
});

test('stasis checkpoint DIR reports its own checkpoint, not a periodic one taken meanwhile', { timeout: 60_000 }, async (t) => {
  const dir = scratchDir(t, 'stasis-run-');
  const rd = path.join(dir, 'rd');
  const r = startRun(t, ['--dir', rd, '--every', '0.2', '--quiet', '--', STEPS, '--steps', '1000', '--delay-ms', '20', '--term-exit', '0']);
  await programOf(r);
  await r.waitForStdout(/^step 3 /m);
  const printed: Entry[] = [];
  for (let i = 0; i < 3; i++) {
    const c = await runStasis(['checkpoint', rd, '--json'], { timeoutMs: 30_000 });
    assert.equal(c.code, 0, describeRun(c));
    printed.push(JSON.parse(c.stdout) as Entry);
  }
  process.kill(r.pid, 'SIGTERM');
  const st = await finished(r);
  assert.equal(st.code, 0, r.stderr());
  const m = manifest(rd);
  t.diagnostic(`printed ${printed.map(entryLine).join('; ')}; manifest triggers ${m.checkpoints.map((c) => c.trigger[0]).join('')}`);
  assert.deepEqual(printed.map((e) => e.trigger), ['request', 'request', 'request'], 'each `stasis checkpoint` prints the checkpoint it asked for');
  assert.equal(m.checkpoints.filter((c) => c.trigger === 'request').length, 3, 'three requested checkpoints in the manifest');
  await assertCleanAfter(r);
});

test('--resume skips a damaged newest image with a message and uses the previous one', { timeout: 60_000 }, async (t) => {
  const dir = scratchDir(t, 'stasis-run-');
  const rd = path.join(dir, 'rd');
  const args = ['--steps', '24', '--stop-at', '5', '--stop-at', '15', '--delay-ms', '10'];
  const first = startRun(t, ['--dir', rd, '--', STEPS, ...args]);
  const programPid = await programOf(first);
  const st1 = await finished(first);
  assert.equal(st1.code, 0, first.stderr());
  const out1 = first.stdout().toString('latin1');
  assert.deepEqual(manifest(rd).checkpoints.map(entryLine), ['1 checkpoint-000001.img self-stop', '2 checkpoint-000002.img self-stop']);
  await assertCleanAfter(first);

  const at = await corruptImageData(path.join(rd, 'checkpoint-000002.img'));
  t.diagnostic(`inverted 64 bytes at offset ${at} of checkpoint-000002.img`);

  const resumed = startRun(t, ['--resume', rd]);
  resumed.adopt(programPid);
  const st2 = await finished(resumed);
  assert.equal(st2.code, 0, resumed.stderr());
  assert.match(resumed.stderr(), /skipping checkpoint-000002\.img: .+/);
  const from = out1.indexOf('after checkpoint 5\n');
  assertSame(resumed.stdout().toString('latin1'), out1.slice(from), 'output resumed from checkpoint 1');
  const m = manifest(rd);
  assert.equal(m.checkpoints.find((c) => c.seq === 2)?.checksums, 'damaged', 'the damaged image is marked in the manifest');
  assert.equal(m.checkpoints.find((c) => c.seq === 1)?.checksums, 'recorded');
  // the resumed program stopped itself again at step 15: a new image, numbered after the others
  assert.equal(m.checkpoints.at(-1)?.seq, 3);
  assert.equal(m.checkpoints.at(-1)?.trigger, 'self-stop');
  await assertCleanAfter(resumed);
});

test('--resume on a CPU that lacks an instruction set of the image is refused, naming it; --ignore-cpu resumes', { timeout: 60_000 }, async (t) => {
  const dir = scratchDir(t, 'stasis-run-');
  const rd = path.join(dir, 'rd');
  const args = ['--steps', '12', '--stop-at', '5', '--delay-ms', '10'];
  const first = startRun(t, ['--dir', rd, '--', STEPS, ...args]);
  const programPid = await programOf(first);
  assert.equal((await finished(first)).code, 0, first.stderr());
  const out1 = first.stdout().toString('latin1');
  await assertCleanAfter(first);

  // The image as if made on a CPU with an instruction set this one lacks.
  const missing = ['sse4a', 'xop', 'fma4', 'tbm', 'avx512f', 'amx_tile', 'sha512', 'cmpccxadd'].find((f) => !describeThisCpu().instructionSets.includes(f))!;
  rewriteStasisNote<CpuState>(path.join(rd, 'checkpoint-000001.img'), STASIS_NOTE.CPU, 1, (cpu) => ({ ...cpu, model: 'CPU X', instructionSets: [...cpu.instructionSets, missing] }));

  const refused = await runStasis(['run', '--resume', rd], { timeoutMs: 30_000 });
  assert.equal(refused.code, 1, describeRun(refused));
  assert.match(refused.stderr, new RegExp(`lacks ${missing}.*--ignore-cpu`));
  assert.ok(gone(programPid), 'nothing was restored');
  assert.equal(manifest(rd).checkpoints[0].checksums, 'recorded', 'the image is not marked damaged');

  const resumed = startRun(t, ['--resume', rd, '--ignore-cpu']);
  resumed.adopt(programPid);
  const st = await finished(resumed);
  assert.equal(st.code, 0, resumed.stderr());
  assert.match(resumed.stderr(), new RegExp(`warning: .*lacks ${missing}`));
  assertSame(resumed.stdout().toString('latin1'), out1.slice(out1.indexOf('after checkpoint 5\n')), 'output resumed from the checkpoint');
  await assertCleanAfter(resumed);
});

// ---------------------------------------------------------------------------------------
// the supervisor as a process in a pipeline

test('stdin and stdout pass through the supervisor, across a checkpoint and a --resume', { timeout: 60_000 }, async (t) => {
  const dir = scratchDir(t, 'stasis-run-');
  const rd = path.join(dir, 'rd');
  const r = startRun(t, ['--dir', rd, '--', ECHO], { stdin: 'pipe' });
  const programPid = await programOf(r);
  await r.waitForStdout(/^ready\n/m);
  r.write('hello\n');
  await r.waitForStdout(/^got: hello\n/m);
  r.write('checkpoint\n');
  await r.waitForStdout(/^resumed\n/m);
  assert.match(r.stderr(), /checkpoint 1 \(self-stop\)/);
  r.write('world\n');
  await r.waitForStdout(/^got: world\n/m);
  r.write('exit 3\n');
  const st = await finished(r);
  assert.equal(st.code, 3, `the supervisor exits with the program's status\n${r.stderr()}`);
  assert.equal(r.stdout().toString(), 'ready\ngot: hello\nstopping\nresumed\ngot: world\nbye 3\n');
  await assertCleanAfter(r);

  // the resumed program reads the new supervisor's stdin and writes its stdout
  const resumed = startRun(t, ['--resume', rd], { stdin: 'pipe' });
  resumed.adopt(programPid);
  await resumed.waitForStdout(/^resumed\n/m);
  resumed.write('again\n');
  await resumed.waitForStdout(/^got: again\n/m);
  resumed.endInput();
  const st2 = await finished(resumed);
  assert.equal(st2.code, 0, resumed.stderr());
  assert.equal(resumed.stdout().toString(), 'resumed\ngot: again\neof\n');
  await assertCleanAfter(resumed);
});

test('SIGTERM to the supervisor reaches the program, and the supervisor exits with its status', { timeout: 60_000 }, async (t) => {
  const dir = scratchDir(t, 'stasis-run-');
  // a handler that exits 7
  const a = startRun(t, ['--dir', path.join(dir, 'a'), '--', STEPS, '--steps', '1000', '--term-exit', '7']);
  const pa = await programOf(a);
  await a.waitForStdout(/^step 3 /m);
  process.kill(a.pid, 'SIGTERM');
  const sa = await finished(a);
  assert.equal(sa.code, 7, a.stderr());
  assert.match(a.stdout().toString(), /\ngot SIGTERM\n$/);
  assert.equal(stateOf(pa), null);
  await assertCleanAfter(a);

  // no handler: the program dies of SIGTERM, the supervisor exits 128 + 15
  const b = startRun(t, ['--dir', path.join(dir, 'b'), '--', STEPS, '--steps', '1000']);
  const pb = await programOf(b);
  await b.waitForStdout(/^step 3 /m);
  process.kill(b.pid, 'SIGTERM');
  const sb = await finished(b);
  assert.equal(sb.code, 143, b.stderr());
  assert.equal(stateOf(pb), null);
  await assertCleanAfter(b);

  // the program killed from outside: 128 + 9
  const k = startRun(t, ['--dir', path.join(dir, 'k'), '--', STEPS, '--steps', '1000']);
  const pk = await programOf(k);
  await k.waitForStdout(/^step 3 /m);
  process.kill(pk, 'SIGKILL');
  const sk = await finished(k);
  assert.equal(sk.code, 137, k.stderr());
  await assertCleanAfter(k);

  // a plain exit status
  const c = startRun(t, ['--dir', path.join(dir, 'c'), '--', STEPS, '--steps', '2', '--delay-ms', '1', '--exit', '5']);
  await programOf(c).catch(() => 0);
  const sc = await finished(c);
  assert.equal(sc.code, 5, c.stderr());
  await assertCleanAfter(c);
});

test('usage errors: exit 2 with a message', { timeout: 30_000 }, async () => {
  const noCmd = await runStasis(['run', '--dir', '/nonexistent-stasis-dir']);
  assert.equal(noCmd.code, 2, describeRun(noCmd));
  const badEvery = await runStasis(['run', '--every', '0', '--', 'true']);
  assert.equal(badEvery.code, 2, describeRun(badEvery));
  const badKeep = await runStasis(['run', '--keep', '1.5', '--', 'true']);
  assert.equal(badKeep.code, 2, describeRun(badKeep));
  const ignoreWithoutResume = await runStasis(['run', '--ignore-cpu', '--', 'true']);
  assert.equal(ignoreWithoutResume.code, 2, describeRun(ignoreWithoutResume));
  assert.match(ignoreWithoutResume.stderr, /--resume/);
  const noProgram = await runStasis(['run', '--dir', path.join(os.tmpdir(), `stasis-run-none-${process.pid}`), '--', '/nonexistent/program']);
  fs.rmSync(path.join(os.tmpdir(), `stasis-run-none-${process.pid}`), { recursive: true, force: true });
  assert.equal(noProgram.code, 1, `a program that cannot be started: exit 1\n${describeRun(noProgram)}`);
  assert.match(noProgram.stderr, /\/nonexistent\/program/);
  const noDir = await runStasis(['run', '--resume', '/nonexistent-stasis-dir']);
  assert.equal(noDir.code, 1, describeRun(noDir));
  assert.match(noDir.stderr, /nonexistent-stasis-dir/);
});

after(() => {
  removeScratchDirs();
  const bad = stoppedOrTraced(touched);
  if (bad.length) throw new Error(`left stopped or traced: ${bad.join('; ')}`);
});
