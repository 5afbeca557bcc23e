/**
 * Per-process state across a restore, checked from inside:
 *
 * - test/targets/restore-brk.c: the break and start_brk, [heap] in /proc/self/maps, heap
 *   contents, sbrk() growing and shrinking it afterwards, malloc still working;
 * - test/targets/restore-attrs.c: cwd (a subdirectory of where it was started), umask,
 *   every rlimit, nice, the process name, /proc/self/exe, cmdline and environ,
 *   no_new_privs, uids and groups, scheduling policy and per-thread nice, CPU affinity,
 *   personality;
 * - test/targets/restore-procstate.c: THP disable, child subreaper, membarrier
 *   registrations, oom_score_adj, loginuid, coredump_filter, dumpable, pdeathsig, MDWE,
 *   keepcaps, the bounding set and groups; a thread's timer slack, TSC, MCE kill policy,
 *   capabilities (ambient too) and speculation control; and what /proc/self/task/TID/status
 *   shows of each thread's credentials, before the dump and after the restore;
 * - test/targets/restore-uid.c: a process that dropped to uid 2001 (real, effective, saved
 *   and fs uids and gids all different, two groups, a thread with its own uids), dumped
 *   and restored by root: its ids, per thread, no capabilities, rlimits, dumpable and
 *   pdeathsig come back, and it cannot become root again.
 */
import { test } from 'node:test';
import * as fs from 'node:fs';
import * as path from 'node:path';
import assert from 'node:assert/strict';
import { assertNothingLeft, describeBytes, dump, nowTicks, selfCheck, verdictSubtests } from './helpers/restore.js';
import { assertRunningUntraced, runStasis, describe as describeRun, startTarget, tempDir } from './helpers/targets.js';

const fileStart = nowTicks();

test('restore-brk: the break, the heap and sbrk() afterwards', async (t) => {
  const run = await selfCheck(t, 'restore-brk', { spinning: 0 });
  await verdictSubtests(t, run, ['brk', 'heap-map', 'contents', 'grow', 'shrink', 'malloc']);
});

test('restore-attrs: cwd, umask, rlimits and the other process attributes', async (t) => {
  const run = await selfCheck(t, 'restore-attrs', {
    spinning: 0,
    prepare: (dir) => fs.mkdirSync(path.join(dir, 'start', 'sub dir'), { recursive: true }),
    cwd: (dir) => path.join(dir, 'start'),
    args: () => ['sub dir'],
  });
  await verdictSubtests(t, run, ['cwd', 'umask', 'rlimits', 'nice', 'comm', 'exe', 'cmdline', 'nnp', 'ids', 'sched', 'affinity', 'personality']);
});

test('restore-procstate: prctl settings, membarrier registrations, oom_score_adj, loginuid, capabilities and per-thread settings', async (t) => {
  const run = await selfCheck(t, 'restore-procstate', { spinning: 0 });
  await verdictSubtests(t, run, ['thp', 'subreaper', 'membarrier', 'oom', 'loginuid', 'coredump', 'dumpable', 'pdeathsig', 'mdwe', 'keepcaps', 'main-proc', 'timens', 'thread', 'thread-proc']);
});

test('restore-uid: a process of another uid comes back with its uids, gids, groups and no capabilities', async (t) => {
  const run = await selfCheck(t, 'restore-uid', {
    spinning: 0,
    // the target, once uid 2001, must see the trigger file appear
    prepare: (dir) => fs.chmodSync(dir, 0o755),
  });
  await verdictSubtests(t, run, ['ids', 'caps', 'thread', 'proc', 'rlimit', 'dumpable', 'pdeathsig', 'root']);
});

test('a pending time namespace for children of the main thread: stasis check lists it as supported', async (t) => {
  const target = await startTarget(t, 'pending-ns', { args: ['time'] });
  await target.waitForLine(/^tick 1$/);
  const check = await runStasis(['check', String(target.pid)]);
  assert.match(check.stdout, /^ok +process +ns\/time_for_children differs from ns\/time\b/m, describeRun(check));
  await target.stop();
});

for (const ns of ['pid'] as const) {
  test(`a pending ${ns} namespace for children (unshare(CLONE_NEW${ns.toUpperCase()})): stasis check lists it, the dump is refused`, async (t) => {
    const target = await startTarget(t, 'pending-ns', { args: [ns] });
    await target.waitForLine(/^tick 1$/);
    const check = await runStasis(['check', String(target.pid)]);
    assert.match(check.stdout, new RegExp(`^NO +process +ns/${ns}_for_children differs from ns/${ns}\\b`, 'm'), describeRun(check));
    const dir = tempDir(t, 'stasis-pending-ns-');
    const d = await dump(target.pid, path.join(dir, 'refused.img'), dir);
    assert.equal(d.code, 1, `stasis dump must refuse: ${describeBytes(d)}`);
    assert.match(d.stderr, new RegExp(`ns/${ns}_for_children`), d.stderr);
    assertRunningUntraced(target.pid, 'the target after the refused dump');
    await target.stop();
  });
}

test('a thread in a UTS namespace of its own: stasis check lists it, the dump is refused', async (t) => {
  const target = await startTarget(t, 'pending-ns', { args: ['thread-uts'] });
  const ready = await target.waitForLine(/^ready /);
  const tid = Number(ready.split(' ')[2]);
  await target.waitForLine(/^tick 1$/);
  const check = await runStasis(['check', String(target.pid)]);
  assert.match(check.stdout, new RegExp(`^NO +thread +thread ${tid}: ns/uts uts:\\[\\d+\\] differs from the main thread's`, 'm'), describeRun(check));
  const dir = tempDir(t, 'stasis-thread-ns-');
  const d = await dump(target.pid, path.join(dir, 'refused.img'), dir);
  assert.equal(d.code, 1, `stasis dump must refuse: ${describeBytes(d)}`);
  assert.match(d.stderr, new RegExp(`thread ${tid}: ns/uts`), d.stderr);
  assertRunningUntraced(target.pid, 'the target after the refused dump');
  await target.stop();
});

test('no process is left behind, stopped, traced or otherwise', (t) => assertNothingLeft(t, fileStart));
