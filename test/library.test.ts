/**
 * The library API (src/index.ts, dist/src/index.js once built), used as a program would:
 * coreDump, check, checkpoint + restore, inspect, supervise + resumeSupervised, and its
 * errors. The ptrace work runs in a worker thread of THIS process, so:
 *
 *  - targets are never children of this process (libuv's SIGCHLD handler would steal
 *    their ptrace stops): startDetached() starts them through a shell that exits at once,
 *    and init reaps them;
 *  - a restored process, or one started by supervise(), is our child by design (posix_spawn
 *    and CLONE_PARENT, not child_process): the library reaps it (`exited`).
 *
 * And the point of the worker: a 10 ms setInterval in this thread keeps firing on time
 * while a 1 GiB process is dumped.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildTarget, run, sleep, startTarget, describe as describeRun } from './helpers/targets.js';
import { gone, own, removeScratchDirs, scratchDir, startDetached, stateOf, stoppedOrTraced, waitUntilGone, lines, manifest, killOwned } from './helpers/run.js';
import { coreDump, checkpoint, restore, check, inspect, supervise, resumeSupervised, StasisError, type CheckpointEntry } from '../src/index.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const LIB = buildTarget('run-lib');
const STEPS = buildTarget('run-steps');
const touched: number[] = [];

/** Awaits `p`, failing after `ms` (a promise of the library must not hang a test forever). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not settled within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Asserts that `p` rejects with a StasisError of `code`, and returns it. */
async function rejectsWith(p: Promise<unknown>, code: string, what: string): Promise<StasisError> {
  try {
    await within(p, 30_000, what);
  } catch (err) {
    assert.ok(err instanceof StasisError, `${what}: a StasisError, not ${String(err)} (${(err as Error)?.constructor?.name})`);
    assert.equal(err.code, code, `${what}: code ${err.code} (${err.message})`);
    assert.equal(err.name, 'StasisError');
    assert.ok(err.message.length > 0);
    return err;
  }
  assert.fail(`${what}: resolved, expected a StasisError ${code}`);
}

function assertRunningUntraced(pid: number, what: string): void {
  assert.ok(!gone(pid), `${what}: process ${pid} is gone`);
  assert.deepEqual(stoppedOrTraced([pid]), [], `${what}: stopped or traced`);
}

/** The number of "tick" lines a run-lib wrote so far. */
function ticks(text: string): number {
  return lines(text).filter((l) => l.startsWith('tick ')).length;
}

test('coreDump of a running process: the result, a core gdb reads, progress, and the process runs on', { timeout: 60_000 }, async (t) => {
  const dir = scratchDir(t, 'stasis-lib-');
  const target = await startDetached(t, LIB, ['--threads', '2'], path.join(dir, 'out'));
  touched.push(target.pid);
  await target.waitForOutput(/^ready \d+$/m);
  await target.waitForOutput(/^tick 3$/m);

  const core = path.join(dir, 'app.core');
  const progress: Array<[number, number]> = [];
  const result = await within(coreDump(target.pid, { output: core, onProgress: (done, total) => progress.push([done, total]) }), 30_000, 'coreDump');
  assert.equal(result.file, core);
  assert.equal(result.threads, 3);
  assert.equal(result.snapshot, true);
  assert.equal(result.bytes, fs.statSync(core).size);
  assert.ok(result.storedBytes > 0 && result.storedBytes <= result.bytes);
  assert.ok(result.mappings > 5);
  assert.ok(result.pauseMs > 0 && result.pauseMs < result.totalMs, `pause ${result.pauseMs} ms within total ${result.totalMs} ms`);
  assert.ok(progress.length > 0, 'onProgress was called');
  for (let i = 1; i < progress.length; i++) assert.ok(progress[i][0] >= progress[i - 1][0], 'progress does not go backwards');
  const [lastDone, lastTotal] = progress.at(-1)!;
  assert.ok(lastDone <= lastTotal);
  assert.equal(lastDone, lastTotal, 'progress reaches its total');

  // the process runs on, untouched
  assertRunningUntraced(target.pid, 'after coreDump');
  const before = ticks(target.output());
  await target.waitForOutput(new RegExp(`^tick ${before + 3}$`, 'm'));

  // gdb reads it: three threads, in the functions they are in
  const gdb = await run('gdb', ['-batch', '-nx', '-ex', 'info threads', '-ex', 'thread apply all bt', LIB, core], { timeoutMs: 60_000 });
  assert.equal(gdb.code, 0, describeRun(gdb));
  const threadLines = gdb.stdout.split('\n').filter((l) => /^Thread \d+ /.test(l));
  assert.equal(threadLines.length, 3, gdb.stdout);
  assert.match(gdb.stdout, /in main_loop /);
  assert.equal((gdb.stdout.match(/in worker_sleep /g) ?? []).length, 2, gdb.stdout);

  // and so does inspect()
  const image = await inspect(core);
  assert.deepEqual(image.threads.map((th) => th.tid).sort((a, b) => a - b)[0], target.pid);
  assert.equal(image.threads.length, 3);
});

test('check(pid): every resource with whether it can be checkpointed; nothing is stopped', { timeout: 30_000 }, async (t) => {
  const dir = scratchDir(t, 'stasis-lib-');
  const target = await startDetached(t, LIB, ['--socket'], path.join(dir, 'out'));
  touched.push(target.pid);
  await target.waitForOutput(/^ready \d+$/m);
  const findings = await within(check(target.pid), 20_000, 'check');
  assert.ok(Array.isArray(findings) && findings.length > 0);
  for (const f of findings) {
    assert.equal(typeof f.kind, 'string');
    assert.equal(typeof f.what, 'string');
    assert.equal(typeof f.supported, 'boolean');
  }
  const unsupported = findings.filter((f) => !f.supported);
  assert.deepEqual(
    unsupported.map((f) => [f.kind, f.fd]),
    [['fd', 7]],
    `the UDP socket at fd 7 is the one thing refused: ${JSON.stringify(unsupported)}`,
  );
  assert.match(unsupported[0].reason ?? '', /socket/);
  for (const fd of [0, 1, 2]) assert.ok(findings.some((f) => f.kind === 'fd' && f.fd === fd && f.supported), `fd ${fd} is listed as supported`);
  assert.ok(findings.some((f) => f.kind === 'mapping' && /\[heap\]|run-lib/.test(f.what)), 'mappings are listed');
  assertRunningUntraced(target.pid, 'after check');

  // checkpoint refuses it, naming the fd, and leaves it running
  const err = await rejectsWith(checkpoint(target.pid, { output: path.join(dir, 'x.img') }), 'UNSUPPORTED', 'checkpoint of a process with a socket');
  assert.equal(err.pid, target.pid);
  assert.match(err.message, /fd 7/);
  assert.equal(fs.existsSync(path.join(dir, 'x.img')), false, 'no image is left');
  assertRunningUntraced(target.pid, 'after a refused checkpoint');
});

test('checkpoint + restore: the same PID, the output file goes on at its offset, `exited` gives the exit code', { timeout: 60_000 }, async (t) => {
  const dir = scratchDir(t, 'stasis-lib-');
  const out = path.join(dir, 'out');
  const target = await startDetached(t, LIB, ['--ticks', '60', '--tick-ms', '20', '--exit', '3'], out);
  touched.push(target.pid);
  await target.waitForOutput(/^tick 10$/m);

  // leaveRunning: an image, and the process goes on
  const kept = await within(checkpoint(target.pid, { output: path.join(dir, 'kept.img'), leaveRunning: true }), 30_000, 'checkpoint leaveRunning');
  assert.equal(kept.leftRunning, true);
  assert.equal(kept.pid, target.pid);
  assertRunningUntraced(target.pid, 'after checkpoint with leaveRunning');

  // default: the process is killed once the image is safe
  const img = path.join(dir, 'app.img');
  const result = await within(checkpoint(target.pid, { output: img }), 30_000, 'checkpoint');
  assert.equal(result.file, img);
  assert.equal(result.pid, target.pid);
  assert.equal(result.threads, 1);
  assert.equal(result.leftRunning, false);
  assert.equal(result.bytes, fs.statSync(img).size);
  assert.ok(await waitUntilGone(target.pid, 10_000), 'checkpoint() kills the process (and init reaps it)');
  const atCheckpoint = target.output();
  assert.ok(!atCheckpoint.includes('done'));

  const restored = await within(restore(img), 30_000, 'restore');
  const restoredOwned = own(restored.pid);
  t.after(async () => {
    killOwned(restoredOwned);
    await within(restored.exited, 10_000, 'exited after kill').catch(() => undefined);
  });
  touched.push(restored.pid);
  assert.equal(restored.pid, target.pid, 'the same PID');
  assert.equal(restored.threads, 1);
  assert.ok(Array.isArray(restored.warnings));
  assert.equal(await within(restored.exited, 20_000, 'exited'), 3, 'exited resolves with the exit code');
  assert.ok(gone(restored.pid));
  const expected = [`ready ${target.pid}`, ...Array.from({ length: 60 }, (_, i) => `tick ${i}`), 'done'].join('\n') + '\n';
  assert.equal(fs.readFileSync(out, 'utf8'), expected, 'the output file: every tick once, in order');

  // a second restore of the same image is fine once the first is gone; kill it: 128 + 9
  const again = await within(restore(img), 30_000, 'restore again');
  assert.equal(again.pid, target.pid);
  await sleep(100);
  assertRunningUntraced(again.pid, 'restored again');
  process.kill(again.pid, 'SIGKILL');
  assert.equal(await within(again.exited, 10_000, 'exited (killed)'), 137);
});

test('errors are StasisErrors with a code and the pid or path at fault', { timeout: 60_000 }, async (t) => {
  const dir = scratchDir(t, 'stasis-lib-');
  // a PID that was just used and is free now
  const sh = await run('/bin/sh', ['-c', 'echo $$']);
  const dead = Number(sh.stdout.trim());
  assert.ok(dead > 0 && gone(dead));
  for (const [name, call] of [
    ['coreDump', () => coreDump(dead, { output: path.join(dir, 'c') })],
    ['checkpoint', () => checkpoint(dead, { output: path.join(dir, 'i') })],
    ['check', () => check(dead)],
  ] as const) {
    const err = await rejectsWith(call(), 'NO_SUCH_PROCESS', `${name}(dead pid)`);
    assert.equal(err.pid, dead, `${name}: err.pid`);
    assert.match(err.message, new RegExp(String(dead)));
  }
  assert.deepEqual(fs.readdirSync(dir), [], 'nothing written for a dead pid');

  await rejectsWith(coreDump(-5), 'USAGE', 'coreDump(-5)');

  // an image that is not one
  const notImage = path.join(dir, 'not-an-image');
  fs.writeFileSync(notImage, 'hello, world\n'.repeat(100));
  const bad = await rejectsWith(restore(notImage), 'BAD_IMAGE', 'restore(text file)');
  assert.equal(bad.path, notImage);
  const missing = await rejectsWith(restore(path.join(dir, 'missing.img')), 'BAD_IMAGE', 'restore(missing file)');
  assert.equal(missing.path, path.join(dir, 'missing.img'));
  await assert.rejects(inspect(notImage), (e: unknown) => e instanceof StasisError && e.code === 'BAD_IMAGE');

  // a zombie (the child of a target that never reaps it)
  const zombie = await startTarget(t, 'zombie', { stdinPipe: true });
  const zombiePid = Number(zombie.readyFields[2]);
  const z = await rejectsWith(coreDump(zombiePid, { output: path.join(dir, 'z') }), 'ZOMBIE', 'coreDump(zombie)');
  assert.equal(z.pid, zombiePid);

  // an output that cannot be written: the target is left as it was
  const target = await startDetached(t, LIB, [], path.join(dir, 'out'));
  touched.push(target.pid);
  await target.waitForOutput(/^ready \d+$/m);
  const o = await rejectsWith(coreDump(target.pid, { output: path.join(dir, 'no-such-dir', 'core') }), 'OUTPUT_FAILED', 'coreDump into a missing directory');
  assert.ok(o.path?.includes('no-such-dir'), `err.path names the output: ${o.path}`);
  assertRunningUntraced(target.pid, 'after a failed coreDump');
});

test('the event loop keeps running during a coreDump of a 1 GiB process (10 ms interval, no gap over 250 ms)', { timeout: 120_000 }, async (t) => {
  const dir = scratchDir(t, 'stasis-lib-');
  const target = await startDetached(t, LIB, ['--mib', '1024', '--tick-ms', '100'], path.join(dir, 'out'));
  touched.push(target.pid);
  await target.waitForOutput(/^ready \d+$/m, 60_000);
  const core = path.join(dir, 'big.core');
  t.after(() => fs.rmSync(core, { force: true }));

  let last = performance.now();
  let maxGap = 0;
  let fired = 0;
  let progressCalls = 0;
  const interval = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
    fired++;
  }, 10);
  const started = performance.now();
  let result;
  try {
    result = await within(coreDump(target.pid, { output: core, onProgress: () => progressCalls++ }), 90_000, 'coreDump 1 GiB');
  } finally {
    clearInterval(interval);
  }
  const elapsed = performance.now() - started;
  t.diagnostic(`1 GiB core: ${result.totalMs.toFixed(0)} ms in the worker (${elapsed.toFixed(0)} ms here), pause ${result.pauseMs.toFixed(1)} ms; interval fired ${fired} times, largest gap ${maxGap.toFixed(1)} ms; ${progressCalls} progress calls`);
  assert.ok(result.storedBytes >= 1 << 30, `the 1 GiB is in the core (${result.storedBytes})`);
  // Blocked by the dump, the loop would miss the whole dump (seconds) in one gap. 250 ms,
  // not 100: on a loaded 2-CPU machine the scheduler alone has delayed a tick by 106 ms.
  assert.ok(maxGap < 250, `largest gap between 10 ms ticks during the dump: ${maxGap.toFixed(1)} ms`);
  assert.ok(fired >= elapsed / 10 / 3, `the interval fired ${fired} times in ${elapsed.toFixed(0)} ms`);
  assertRunningUntraced(target.pid, 'after the 1 GiB coreDump');
  fs.rmSync(core, { force: true });
  await target.stop();
  assert.ok(gone(target.pid));
});

test('supervise() and resumeSupervised(): self-stop and checkpointNow() checkpoints, exit status, resume', { timeout: 60_000 }, async (t) => {
  const dir = scratchDir(t, 'stasis-lib-');
  const rd = path.join(dir, 'rd');
  const out = path.join(dir, 'out');
  const args = ['--steps', '30', '--stop-at', '4', '--delay-ms', '20', '--exit', '4'];
  const ref = await run(STEPS, [...args, '--no-stop']);
  // through sh, which execs the program with stdout to a file: our own stdout is the test runner's
  const command = ['/bin/sh', '-c', `exec "$0" "$@" >'${out}'`, STEPS, ...args];
  const seen: Array<CheckpointEntry | null> = [];
  const errors: Error[] = [];
  const sup = supervise(command, { dir: rd, onCheckpoint: (entry, error) => (error ? errors.push(error) : seen.push(entry)) });
  const owned = own(sup.pid);
  t.after(async () => {
    killOwned(owned);
    await within(sup.exited, 10_000, 'supervise exited after kill').catch(() => undefined);
  });
  touched.push(sup.pid);
  assert.equal(sup.dir, rd);
  await within(
    (async () => {
      while (!fs.existsSync(out) || lines(fs.readFileSync(out, 'utf8')).length < 12) await sleep(10);
    })(),
    20_000,
    'output up to step ~10',
  );
  const requested = await within(sup.checkpointNow(), 30_000, 'checkpointNow');
  assert.equal(requested.seq, 2);
  assert.equal(requested.trigger, 'request');
  assert.equal(requested.pid, sup.pid);
  assert.equal(await within(sup.exited, 30_000, 'supervise exited'), 4);
  assert.deepEqual(errors, []);
  assert.deepEqual(seen.map((e) => `${e?.seq} ${e?.trigger}`), ['1 self-stop', '2 request']);
  assert.deepEqual(manifest(rd).checkpoints.map((e) => e.seq), [1, 2]);
  const norm = (s: string) => s.replace(/token [0-9a-f]{16}/g, 'token T');
  const first = fs.readFileSync(out, 'utf8');
  assert.equal(norm(first), norm(ref.stdout));
  assert.ok(gone(sup.pid));

  // resume from the newest (the requested one): the program finishes again, into the same file
  const skipped: string[] = [];
  const resumed = await within(resumeSupervised(rd, { onSkip: (e) => skipped.push(e.file) }), 30_000, 'resumeSupervised');
  touched.push(resumed.pid);
  const resumedOwned = own(resumed.pid);
  t.after(async () => {
    killOwned(resumedOwned);
    await within(resumed.exited, 10_000, 'resumed exited after kill').catch(() => undefined);
  });
  assert.equal(resumed.pid, sup.pid);
  assert.equal(await within(resumed.exited, 30_000, 'resumed exited'), 4);
  assert.deepEqual(skipped, []);
  assert.equal(fs.readFileSync(out, 'utf8'), first, 'the resumed program rewrote the rest of its output identically (same token)');
});

test('a program using the library prints nothing of its own on stderr (no Node warnings)', { timeout: 60_000 }, async (t) => {
  const dir = scratchDir(t, 'stasis-lib-');
  // fd 5 of the target: a FIFO whose writer is another process (what check() must examine)
  const fifo = path.join(dir, 'fifo');
  const mk = await run('mkfifo', [fifo]);
  assert.equal(mk.code, 0, describeRun(mk));
  const writer = await startDetached(t, '/bin/sleep', ['60'], fifo);
  touched.push(writer.pid);
  const target = await startDetached(t, LIB, ['--threads', '1'], path.join(dir, 'out'), { inputs: { 5: fifo } });
  touched.push(target.pid);
  await target.waitForOutput(/^ready \d+$/m);
  const script = path.join(dir, 'user.mjs');
  fs.writeFileSync(
    script,
    `import { check, coreDump, checkpoint } from ${JSON.stringify(path.join(repoRoot, 'dist', 'src', 'index.js'))};
const pid = Number(process.argv[2]);
const findings = await check(pid);
const core = await coreDump(pid, { output: process.argv[3] + '/core' });
const refused = await checkpoint(pid, { output: process.argv[3] + '/img', leaveRunning: true }).then(() => 'taken', (e) => e.code);
console.log(findings.filter((f) => !f.supported).map((f) => f.fd).join(','), core.threads, refused);
`,
  );
  const r = await run(process.execPath, [script, String(target.pid), dir], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, describeRun(r));
  assert.equal(r.stdout, '5 2 UNSUPPORTED\n', 'fd 5 (shared with the writer) is refused');
  assert.equal(r.stderr, '', `stderr of a program that calls check, coreDump and checkpoint`);
  assertRunningUntraced(target.pid, 'after the script');
});

after(async () => {
  removeScratchDirs();
  for (const pid of touched) await waitUntilGone(pid, 5_000);
  const bad = stoppedOrTraced(touched);
  if (bad.length) throw new Error(`left stopped or traced: ${bad.join('; ')}`);
  const left = touched.filter((pid) => stateOf(pid) !== null);
  if (left.length) throw new Error(`processes left: ${left.join(' ')}`);
});
