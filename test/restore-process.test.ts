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
 *   shows of each thread's credentials, before the dump and after the restore.
 */
import { test } from 'node:test';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { assertNothingLeft, nowTicks, selfCheck, verdictSubtests } from './helpers/restore.js';

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
  await verdictSubtests(t, run, ['thp', 'subreaper', 'membarrier', 'oom', 'loginuid', 'coredump', 'dumpable', 'pdeathsig', 'mdwe', 'keepcaps', 'main-proc', 'thread', 'thread-proc']);
});

test('no process is left behind, stopped, traced or otherwise', (t) => assertNothingLeft(t, fileStart));
