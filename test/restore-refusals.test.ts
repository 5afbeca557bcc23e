/**
 * What `stasis dump` must refuse, and how: exit 1, a message naming the file descriptor
 * or the child process, no image (nor any temporary file) written, and the process left
 * running untouched: not stopped, not traced, still ticking, and what it holds still
 * working (test/targets/restore-refuse.c checks its socket, inotify instance or child at every
 * tick and prints "broken ..." if one stopped working).
 *
 * Cases: an AF_UNIX datagram socketpair, a listening TCP socket, an inotify instance, a forked child, and
 * bash running an external command (a child it did not write).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { assertRunningUntraced, childrenOf, killQuietly, startTarget, tempDir, waitFor, type Target } from './helpers/targets.js';
import { assertNothingLeft, assertNotStoppedOrTraced, describeBytes, dump, haveCommand, nowTicks, startProgram, startTicks, waitGone } from './helpers/restore.js';

const fileStart = nowTicks();

async function refused(t: TestContext, target: Target, message: RegExp, opts: { leaveRunning?: boolean } = {}): Promise<void> {
  const dir = tempDir(t, 'stasis-refuse-');
  const out = path.join(dir, 'out');
  fs.mkdirSync(out);
  const image = path.join(out, 'refused.img');
  const started = startTicks(target.pid);
  const ticks = target.lines.length;
  const d = await dump(target.pid, image, dir, opts.leaveRunning ? ['--leave-running'] : []);
  assert.equal(d.code, 1, `stasis dump must refuse (exit 1): ${describeBytes(d)}`);
  assert.match(d.stderr, message, `the message names what cannot be checkpointed: ${d.stderr}`);
  assert.doesNotMatch(d.stderr, /internal error/, 'a refusal, not a crash');
  assert.deepEqual(fs.readdirSync(out), [], 'no image, and no temporary file, is left in the output directory');
  // untouched: the same process, running, not stopped or traced, still ticking
  assert.equal(startTicks(target.pid), started, 'the same process is still there');
  assertRunningUntraced(target.pid, 'the target after the refused dump');
  await target.waitForLine(/^tick /, 5_000, ticks + 3);
  assertRunningUntraced(target.pid, 'the target a few ticks later');
  const broken = target.lines.filter((l) => l.startsWith('broken'));
  assert.deepEqual(broken, [], 'what it holds still works');
}

for (const kind of ['socket', 'tcp', 'inotify'] as const) {
  test(`a process with ${kind === 'tcp' ? 'a listening TCP socket' : kind === 'socket' ? 'a datagram socketpair' : 'an inotify instance'}: the dump is refused naming the fd, the process runs on untouched`, async (t) => {
    const target = await startTarget(t, 'restore-refuse', { args: [kind] });
    const fd = Number(target.readyFields.find((f) => f.startsWith('fd='))?.slice(3));
    assert.ok(fd >= 3, `the target reports its fd: ${target.readyFields.join(' ')}`);
    await target.waitForLine(/^tick 2$/);
    const what = kind === 'inotify' ? 'inotify' : 'socket';
    await refused(t, target, new RegExp(`\\bfd ${fd}\\b[^\\n]*${what}`, 'i'));
  });
}

test('a process with a child: the dump is refused naming the child, parent and child run on untouched', async (t) => {
  const target = await startTarget(t, 'restore-refuse', { args: ['child'] });
  const child = Number(target.readyFields.find((f) => f.startsWith('child='))?.slice(6));
  assert.ok(child > 0);
  t.after(() => killQuietly(child, 'SIGKILL')); // reaped by init once the parent is gone
  await target.waitForLine(/^tick 2$/);
  await refused(t, target, new RegExp(`child process ${child}\\b`));
  assertRunningUntraced(child, 'the child after the refused dump');
  assert.deepEqual(childrenOf(target.pid), [child], 'the child is still its child');
});

test('--leave-running does not change a refusal', async (t) => {
  const target = await startTarget(t, 'restore-refuse', { args: ['inotify'] });
  await target.waitForLine(/^tick 2$/);
  await refused(t, target, /inotify/i, { leaveRunning: true });
});

test('bash running an external command (a child): the dump is refused naming the child, bash runs on', async (t) => {
  if (!haveCommand('bash')) return t.skip('no bash');
  const dir = tempDir(t, 'stasis-refuse-bash-');
  const out = path.join(dir, 'out');
  fs.mkdirSync(out);
  const bash = startProgram(t, 'bash', ['-c', 'echo start; sleep 30; echo end']);
  await bash.waitForOutput(/start\n/);
  let child = 0;
  await waitFor(() => (child = childrenOf(bash.pid)[0] ?? 0) > 0, 'bash to start sleep');
  const sleepPid = child;
  t.after(async () => {
    killQuietly(sleepPid, 'SIGKILL');
    await waitGone(sleepPid, 3_000);
  });
  const image = path.join(out, 'bash.img');
  const d = await dump(bash.pid, image, dir);
  assert.equal(d.code, 1, `stasis dump must refuse: ${describeBytes(d)}`);
  assert.match(d.stderr, new RegExp(`child process ${sleepPid}\\b`), 'names the child');
  assert.deepEqual(fs.readdirSync(out), [], 'no image written');
  assertRunningUntraced(bash.pid, 'bash after the refused dump');
  assertRunningUntraced(sleepPid, 'its child after the refused dump');
  assertNotStoppedOrTraced([bash.pid, sleepPid], 'bash and sleep');
  // bash still works: when its child goes, it goes on with its script
  process.kill(sleepPid, 'SIGTERM');
  const exit = await bash.exited;
  assert.match(bash.stdout().toString(), /^start\nend\n$/, 'bash went on after its child');
  assert.equal(exit.code, 0);
});

test('no process is left behind, stopped, traced or otherwise', (t) => assertNothingLeft(t, fileStart));
