/**
 * Restored threads, checked from inside (test/targets/restore-threads.c, restore-rseq.c):
 * the same TIDs (glibc caches them: raise, pthread_kill, mutex owners), pthread_self and
 * TLS values, thread names, an ERRORCHECK mutex still owned by its thread, a robust mutex
 * whose owner exits after the restore (EOWNERDEAD, so the robust list was restored) and
 * pthread_join of that thread (clear_child_tid), a thread blocked in read() on an
 * internal pipe, relative and absolute sleeps that resume, a spinning thread; and rseq
 * still registered in every thread.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { assertNothingLeft, nowTicks, selfCheck, verdictSubtests } from './helpers/restore.js';
import { readFileOrNull, runStasis, sleep, taskIds, waitFor, waitSettled } from './helpers/targets.js';
import { stateOf } from './helpers/run.js';

const fileStart = nowTicks();

function threadNamed(pid: number, name: string): number {
  const tid = taskIds(pid).find((id) => readFileOrNull(`/proc/${pid}/task/${id}/comm`)?.trim() === name);
  assert.ok(tid, `process ${pid} has a thread named ${name}`);
  return tid;
}

test('restore-threads: every thread comes back as itself, where it was', async (t) => {
  // A second into their 4 s: a sleep that started over after the restore would be seen.
  const run = await selfCheck(t, 'restore-threads', { spinning: 1, beforeDump: () => sleep(1000) });
  await t.test('the dump saw 8 threads', () => {
    assert.equal(run.dumped.code, 0);
    assert.equal(run.dumped.json?.threads, 8);
  });
  await verdictSubtests(t, run, ['tids', 'names', 'raise', 'pthread_kill', 'mutex', 'robust', 'pipe', 'nanosleep', 'abstime', 'spinner', 'self']);
});

// A stop and continue with no handler (as an earlier checkpoint, a debugger or ^Z/fg would
// do) turns every interrupted sleep into restart_syscall, whose restart_block a restored
// thread does not have: the sleeps must still end, on time.
test('restore-threads after SIGSTOP + SIGCONT: sleeps already in restart_syscall resume', async (t) => {
  const run = await selfCheck(t, 'restore-threads', {
    spinning: 1,
    beforeDump: async (pid) => {
      process.kill(pid, 'SIGSTOP');
      await waitFor(() => stateOf(pid) === 'T', `process ${pid} stopped`);
      process.kill(pid, 'SIGCONT');
      await waitSettled(pid, { spinning: 1, timeoutMs: 5_000 });
      const sleeper = threadNamed(pid, 't-sleeper');
      assert.match(fs.readFileSync(`/proc/${pid}/task/${sleeper}/syscall`, 'utf8'), /^219 /, 'the sleeper is in restart_syscall');
    },
  });
  await verdictSubtests(t, run, ['tids', 'names', 'raise', 'pthread_kill', 'mutex', 'robust', 'pipe', 'nanosleep', 'abstime', 'spinner', 'self']);
});

// A stopped process dumped with --leave-running is left with its interrupted sleeps turned
// into pending restart_syscall calls (rax = 219 on the `syscall` instruction) that it has
// not run yet; dumped again in that state, the sleeps must still end after the restore.
test('restore-threads dumped twice while stopped: a pending restart_syscall resumes', async (t) => {
  let sleeper = 0;
  const run = await selfCheck(t, 'restore-threads', {
    spinning: 1,
    beforeDump: async (pid, dir) => {
      sleeper = threadNamed(pid, 't-sleeper');
      process.kill(pid, 'SIGSTOP');
      await waitFor(() => stateOf(pid) === 'T', `process ${pid} stopped`);
      const first = await runStasis(['dump', String(pid), '-o', path.join(dir, 'first.img'), '--leave-running']);
      assert.equal(first.code, 0, `the first dump: ${first.stderr}`);
      assert.equal(stateOf(pid), 'T', 'still stopped after the first dump');
    },
    // It comes back stopped, as it was dumped.
    watch: (_out, _stasisPid, pid) => {
      if (stateOf(pid) === 'T') process.kill(pid, 'SIGCONT');
    },
  });
  await t.test('the second image holds the sleeper about to run restart_syscall', async () => {
    const inspected = await runStasis(['inspect', '--json', run.image]);
    const thread = JSON.parse(inspected.stdout).threads.find((th: { tid: number }) => th.tid === sleeper);
    assert.equal(thread?.regs?.rax, '0xdb', `the sleeper's rax: ${JSON.stringify(thread?.regs)}`);
  });
  await verdictSubtests(t, run, ['tids', 'names', 'raise', 'pthread_kill', 'mutex', 'robust', 'pipe', 'nanosleep', 'abstime', 'spinner', 'self']);
});

test('restore-rseq: rseq is registered again in every thread', async (t) => {
  const run = await selfCheck(t, 'restore-rseq', { spinning: 0 });
  await verdictSubtests(t, run, ['rseq-main', 'rseq-worker']);
});

test('no process is left behind, stopped, traced or otherwise', (t) => assertNothingLeft(t, fileStart));
