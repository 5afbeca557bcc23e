/**
 * Eventfds, timerfds and a signalfd across a dump and a restore, checked from inside
 * (test/targets/restore-anon-fds.c): a semaphore eventfd keeps its count, its mode and its
 * dup; a thread blocked in read() on another one is woken by a write after the restore; a
 * periodic timerfd keeps its unread expirations and goes on firing, an expired one-shot
 * keeps its one; a signalfd reads the signal pending since before the dump, and new ones;
 * an epoll instance reports them all ready, and a thread blocked in epoll_wait() on
 * another (an event loop) wakes when its eventfd is written to after the restore.
 */
import { test } from 'node:test';
import { assertNothingLeft, nowTicks, selfCheck, verdictSubtests } from './helpers/restore.js';

const fileStart = nowTicks();

test('restore-anon-fds: eventfd counters, timerfds, a signalfd and epoll come back', async (t) => {
  const run = await selfCheck(t, 'restore-anon-fds', { spinning: 0 });
  await verdictSubtests(t, run, ['epoll', 'eventloop', 'semaphore', 'waiter', 'timerfd', 'signalfd']);
});

test('no process is left behind, stopped, traced or otherwise', (t) => assertNothingLeft(t, fileStart));
