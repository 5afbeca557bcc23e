/**
 * Eventfds across a dump and a restore, checked from inside (test/targets/restore-eventfd.c):
 * a semaphore eventfd keeps its count, its mode and its dup; a thread blocked in read() on
 * another one is woken by a write after the restore.
 */
import { test } from 'node:test';
import { assertNothingLeft, nowTicks, selfCheck, verdictSubtests } from './helpers/restore.js';

const fileStart = nowTicks();

test('restore-eventfd: counters, semaphore mode, dups and a blocked reader come back', async (t) => {
  const run = await selfCheck(t, 'restore-eventfd', { spinning: 0 });
  await verdictSubtests(t, run, ['semaphore', 'waiter']);
});

test('no process is left behind, stopped, traced or otherwise', (t) => assertNothingLeft(t, fileStart));
