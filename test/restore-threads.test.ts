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
import { assertNothingLeft, nowTicks, selfCheck, verdictSubtests } from './helpers/restore.js';

const fileStart = nowTicks();

test('restore-threads: every thread comes back as itself, where it was', async (t) => {
  const run = await selfCheck(t, 'restore-threads', { spinning: 1 });
  await t.test('the dump saw 8 threads', () => {
    assert.equal(run.dumped.code, 0);
    assert.equal(run.dumped.json?.threads, 8);
  });
  await verdictSubtests(t, run, ['tids', 'names', 'raise', 'pthread_kill', 'mutex', 'robust', 'pipe', 'nanosleep', 'abstime', 'spinner', 'self']);
});

test('restore-rseq: rseq is registered again in every thread', async (t) => {
  const run = await selfCheck(t, 'restore-rseq', { spinning: 0 });
  await verdictSubtests(t, run, ['rseq-main', 'rseq-worker']);
});

test('no process is left behind, stopped, traced or otherwise', (t) => assertNothingLeft(t, fileStart));
