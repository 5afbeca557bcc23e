/**
 * `stasis core` failing: each failure exits non-zero with one line on stderr, starting
 * "stasis: " and naming the cause, leaves no file (nor a temporary one) at the output
 * path, and leaves the target, where there is one, running as it was and untraced.
 *
 * With STASIS_TEST_CORE_WITH=gcore the same situations are run with gcore, to check the
 * harness: the exit status, the output path and the target are checked, gcore's messages
 * are only reported (they are not stasis's), and cases that need a stasis option are
 * skipped.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  assertRunningUntraced,
  childrenOf,
  coreTool,
  describe as describeRun,
  leftovers,
  makeCore,
  procStatus,
  run,
  runStasis,
  sleep,
  startTarget,
  tempDir,
  waitFor,
  type CoreResult,
  type Target,
} from './helpers/targets.js';
import { gdbCore, printedValue } from './helpers/gdb.js';

/** What the one stderr line must say, per cause. Kept together so they are easy to review. */
const CAUSE = {
  noSuchProcess: /no (such )?process|does not exist|not found|ESRCH/i,
  zombie: /zombie/i,
  traced: /traced/i,
  noDir: /no such file or directory|ENOENT|does not exist/i,
  readOnly: /read-only|EROFS|not writable|cannot write/i,
  isDir: /is a directory|EISDIR/i,
  full: /no space|ENOSPC|disk full|full/i,
  exited: /exited|died|killed|gone|no longer|disappeared|vanished/i,
};

/**
 * The failure contract. `mentions` are strings the message must contain (a PID, a path).
 * `dir` is the directory of the output path: nothing may be left in it that was not there.
 */
function assertFailed(t: TestContext, made: CoreResult, file: string, cause: RegExp, mentions: string[] = [], dirBefore?: { dir: string; entries: string[] }): void {
  assert.notEqual(made.code, 0, `${made.tool} succeeded where it should fail: ${describeRun(made)}`);
  if (made.tool === 'stasis') {
    assert.equal(made.code, 1, `exit status 1 (failure, not usage): ${describeRun(made)}`);
    const lines = made.stderr.split('\n').filter((l) => l.trim() !== '');
    assert.equal(lines.length, 1, `exactly one line on stderr: ${describeRun(made)}`);
    assert.match(lines[0], /^stasis: /);
    assert.match(lines[0], cause, 'the line names the cause');
    for (const m of mentions) assert.ok(lines[0].includes(m), `the line mentions ${m}: ${lines[0]}`);
    assert.equal(made.stdout.trim(), '', 'nothing on stdout (no --json object) when it fails');
  } else {
    t.diagnostic(`${made.tool} exit ${made.code}: ${made.stderr.trim().split('\n').slice(-2).join(' | ')}`);
  }
  assert.ok(!fs.existsSync(file) || fs.statSync(file).isDirectory(), `a file was left at ${file}`);
  if (dirBefore) {
    let now: string[] = [];
    try {
      now = fs.readdirSync(dirBefore.dir).sort();
    } catch {
      /* the directory does not exist: nothing left in it */
    }
    assert.deepEqual(now, dirBefore.entries, `files left in ${dirBefore.dir}`);
  }
}

function listing(dir: string): { dir: string; entries: string[] } {
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(dir).sort();
  } catch {
    /* no such directory */
  }
  return { dir, entries };
}

/** The counter target goes on counting, got no SIGCHLD, has no child, is not traced. */
async function assertCounterUnharmed(target: Target): Promise<void> {
  assertRunningUntraced(target.pid, 'the target after the failed dump');
  assert.deepEqual(childrenOf(target.pid), [], 'the target has no child');
  const seq = target.lines.filter((l) => l.startsWith('report ')).length + 1;
  process.kill(target.pid, 'SIGUSR1');
  const line = await target.waitForLine(new RegExp(`^report seq=${seq} `), 10_000);
  assert.match(line, / sigchld=0 /, line);
  assert.match(line, / children=0 /, line);
  const from = target.lines.length;
  await target.waitForLine(/^tick /, 5_000, from);
}

/** Mounts a tmpfs for the test (root only); undefined when that is not possible here. */
async function mountTmpfs(t: TestContext, options: string): Promise<string | undefined> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stasis-mnt-'));
  const r = await run('mount', ['-t', 'tmpfs', '-o', options, 'stasis-test', dir]);
  if (r.code !== 0) {
    fs.rmdirSync(dir);
    return undefined;
  }
  // one hook, so the unmount surely comes before the removal of the mount point
  t.after(async () => {
    if ((await run('umount', [dir])).code !== 0) await run('umount', ['-l', dir]);
    fs.rmdirSync(dir);
  });
  return dir;
}

// ---------------------------------------------------------------------------------------

test('no such process: a PID that was reaped', async (t) => {
  const gone = await startTarget(t, 'single');
  const pid = gone.pid;
  await gone.stop();
  assert.equal(procStatus(pid), null, `pid ${pid} still exists`);
  const dir = tempDir(t);
  const file = path.join(dir, 'core');
  const made = await makeCore(pid, file);
  assertFailed(t, made, file, CAUSE.noSuchProcess, [String(pid)], listing(dir));
});

test('a zombie: an exited child its parent did not reap', async (t) => {
  const parent = await startTarget(t, 'zombie', { stdinPipe: true });
  const zombie = Number(parent.readyFields[2]);
  assert.equal(procStatus(zombie)?.state, 'Z', `pid ${zombie} is a zombie`);
  const dir = tempDir(t);
  const file = path.join(dir, 'core');
  const made = await makeCore(zombie, file);
  assertFailed(t, made, file, CAUSE.zombie, [String(zombie)], listing(dir));
  assert.equal(procStatus(zombie)?.state, 'Z', 'still a zombie of its parent: nobody reaped it');
  assert.equal(procStatus(zombie)?.ppid, parent.pid);
  assertRunningUntraced(parent.pid, 'the zombie\'s parent');
  // the parent reaps it when its stdin closes, then exits 0
  parent.proc.stdin!.end();
  const exit = await parent.exited;
  assert.equal(exit.code, 0, 'the parent reaped its zombie and exited');
});

test('a process already traced by another tracer', async (t) => {
  const target = await startTarget(t, 'counter');
  const tracer = await startTarget(t, 'tracer', { args: [String(target.pid)] });
  assert.equal(procStatus(target.pid)?.tracerPid, tracer.pid, 'the tracer traces the target');
  const dir = tempDir(t);
  const file = path.join(dir, 'core');
  const made = await makeCore(target.pid, file);
  assertFailed(t, made, file, CAUSE.traced, [String(tracer.pid)], listing(dir));
  // the foreign tracer still has it, and it is running, not stopped
  assert.equal(procStatus(target.pid)?.tracerPid, tracer.pid, 'still traced by its tracer, not by us');
  assert.ok(!/[tT]/.test(procStatus(target.pid)!.state), `the target is ${procStatus(target.pid)!.state}`);
  // the tracer detaches on SIGTERM; then the target is free and unharmed
  await tracer.stop('SIGTERM');
  assert.equal((await tracer.exited).code, 0, `the tracer detached cleanly: ${tracer.stderr()}`);
  await assertCounterUnharmed(target);
});

test('the output directory does not exist', async (t) => {
  const target = await startTarget(t, 'counter');
  const dir = path.join(tempDir(t), 'no-such-dir');
  const file = path.join(dir, 'core');
  const made = await makeCore(target.pid, file);
  assertFailed(t, made, file, CAUSE.noDir, ['no-such-dir'], listing(dir));
  assert.ok(!fs.existsSync(dir), 'the directory was not created');
  await assertCounterUnharmed(target);
});

test('the output path is a directory', async (t) => {
  const target = await startTarget(t, 'counter');
  const dir = tempDir(t);
  const file = path.join(dir, 'a-directory');
  fs.mkdirSync(file);
  const made = await makeCore(target.pid, file);
  assertFailed(t, made, file, CAUSE.isDir, ['a-directory'], listing(dir));
  assert.ok(fs.statSync(file).isDirectory() && fs.readdirSync(file).length === 0, 'the directory is untouched and empty');
  await assertCounterUnharmed(target);
});

test('the output is on a read-only filesystem', async (t) => {
  const dir = await mountTmpfs(t, 'ro,size=64k');
  if (!dir) {
    t.skip('cannot mount a tmpfs here (needs root)');
    return;
  }
  const target = await startTarget(t, 'counter');
  const file = path.join(dir, 'core');
  const made = await makeCore(target.pid, file);
  assertFailed(t, made, file, CAUSE.readOnly, [], listing(dir));
  await assertCounterUnharmed(target);
});

test('the disk fills up during the dump', async (t) => {
  const dir = await mountTmpfs(t, 'size=64k');
  if (!dir) {
    t.skip('cannot mount a tmpfs here (needs root)');
    return;
  }
  const target = await startTarget(t, 'counter', { args: ['--ballast', '4'] }); // 4 MiB: far more than 64 KiB
  const file = path.join(dir, 'core');
  const made = await makeCore(target.pid, file);
  if (made.tool === 'gcore' && made.code === 0) {
    // a known gcore weakness: it warns "No space left on device" and still exits 0,
    // leaving a truncated core. Shown as a TODO so a gcore run checks the rest.
    t.todo('gcore exits 0 on ENOSPC and leaves a truncated core');
  }
  assertFailed(t, made, file, CAUSE.full, [], listing(dir));
  const df = await run('df', ['-k', dir]);
  t.diagnostic(df.stdout.trim().split('\n').pop() ?? '');
  await assertCounterUnharmed(target);
});

test('the target is killed during a --no-snapshot dump', async (t) => {
  const tool = coreTool();
  // gcore always stops the target for the whole dump, as --no-snapshot does
  const target = await startTarget(t, 'counter', { args: ['--ballast', '1024'], readyTimeoutMs: 60_000 });
  const dir = tempDir(t);
  const file = path.join(dir, 'core');
  const pending = makeCore(target.pid, file, ['--no-snapshot']);
  // wait until it is traced (the dump has begun), let the dump get going, then kill it
  let traced = 0;
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && target.alive()) {
    traced = procStatus(target.pid)?.tracerPid ?? 0;
    if (traced !== 0) break;
    await sleep(1);
  }
  assert.notEqual(traced, 0, 'the target was never seen traced: did the dump finish already?');
  // then until the core is being written (a file in the output directory has 1 MiB of
  // its 1 GiB), or 300 ms if the writer's file cannot be seen (e.g. an O_TMPFILE)
  const tracedAt = Date.now();
  let written = 0;
  while (Date.now() - tracedAt < 300 && written < 1 << 20) {
    written = Math.max(0, ...fs.readdirSync(dir).map((f) => fs.statSync(path.join(dir, f), { throwIfNoEntry: false })?.size ?? 0));
    await sleep(1);
  }
  assert.ok(procStatus(target.pid)?.tracerPid, 'the target is still traced: the dump is still going on');
  process.kill(target.pid, 'SIGKILL');
  const killedAfter = Date.now() - tracedAt;
  const made = await pending;
  t.diagnostic(`${tool}: killed the target ${killedAfter} ms after it was first seen traced (by ${traced}), ${written} bytes written; the dump ended ${Date.now() - tracedAt} ms after that first sight`);
  if (made.tool === 'gcore' && made.code === 0) {
    // gcore warns "Memory read failed for corefile section" and still exits 0
    t.todo('gcore exits 0 when the process dies under it, leaving a core with holes');
  }
  assertFailed(t, made, file, CAUSE.exited, [String(target.pid)], listing(dir));
  assert.equal((await target.exited).signal, 'SIGKILL');
});

test('the target is killed while its snapshot is being written', async (t) => {
  if (coreTool() === 'gcore') {
    t.skip('gcore takes no snapshot');
    return;
  }
  const target = await startTarget(t, 'counter', { args: ['--ballast', '1024'], readyTimeoutMs: 60_000 });
  const dir = tempDir(t);
  const file = path.join(dir, 'core');
  const pending = makeCore(target.pid, file);
  let snapshot: number[] = [];
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && snapshot.length === 0) {
    snapshot = childrenOf(target.pid);
    await sleep(1);
  }
  assert.ok(snapshot.length > 0, 'never saw the snapshot child: did the dump finish already?');
  process.kill(target.pid, 'SIGKILL');
  const made = await pending;
  t.diagnostic(`killed the target while its snapshot child ${snapshot} existed; stasis exit ${made.code}: ${made.stderr.trim()}`);
  // first of all, the snapshot child must not outlive the dump (it was re-parented to
  // init when the target died; stasis, its tracer, must still kill it)
  await waitFor(() => snapshot.every((p) => procStatus(p) === null), `snapshot child ${snapshot} to go`, 5_000).catch(() => undefined);
  for (const p of snapshot) {
    const st = procStatus(p);
    assert.equal(st, null, `snapshot child ${p} is still there: ${st?.raw.split('\n').slice(0, 9).join(' | ')}`);
  }
  if (made.code === 0) {
    // the snapshot was intact: a complete core is a right answer too
    const g = await gdbCore(target.exe, file, ['p g_ballast_size']);
    assert.equal(printedValue(g.sections[0]), String(1024 * 1024 * 1024), g.raw);
  } else {
    assertFailed(t, made, file, CAUSE.exited, [], listing(dir));
  }
});

test('the target exits while `stasis dump` and `stasis check` look at what it holds (STASIS_FAULT=checks:kill-target)', async (t) => {
  for (const command of ['dump', 'check']) {
    await t.test(command, async () => {
      const target = await startTarget(t, 'counter');
      const dir = tempDir(t);
      const file = path.join(dir, 'image');
      const args = command === 'dump' ? ['dump', String(target.pid), '-o', file] : ['check', String(target.pid)];
      const made = await runStasis(args, { env: { ...process.env, STASIS_FAULT: 'checks:kill-target' } });
      assert.equal((await target.exited).signal, 'SIGKILL', 'the fault point killed the target');
      assert.equal(made.code, 1, `exit 1: ${describeRun(made)}`);
      assert.equal(made.stderr.trim(), `stasis: process ${target.pid} exited during the check of its resources`, 'one line naming the exit, no stack trace');
      assert.deepEqual(fs.readdirSync(dir), [], 'no image, no temporary file');
    });
  }
});

test('bad usage exits 2', async (t) => {
  if (coreTool() === 'gcore') {
    t.skip('stasis command line only');
    return;
  }
  for (const args of [['core'], ['core', 'not-a-pid'], ['core', '-1'], ['core', '123', '--no-such-option']]) {
    const r = await runStasis(args);
    assert.equal(r.code, 2, `stasis ${args.join(' ')}: ${describeRun(r)}`);
    assert.match(r.stderr, /^stasis: /, `stasis ${args.join(' ')}: ${describeRun(r)}`);
  }
});

test('no process is left behind, stopped, traced or otherwise', async () => {
  await waitFor(() => leftovers().length === 0, 'leftovers to go', 3_000).catch(() => undefined);
  assert.deepEqual(leftovers(), []);
});
