/**
 * Eventfds, timerfds and a signalfd across a dump and a restore, checked from inside
 * (test/targets/restore-anon-fds.c): a semaphore eventfd keeps its count, its mode and its
 * dup; a thread blocked in read() on another one is woken by a write after the restore; a
 * periodic timerfd keeps its unread expirations and goes on firing, an expired one-shot
 * keeps its one; a signalfd reads the signal pending since before the dump, and new ones;
 * an epoll instance reports them all ready, and a thread blocked in epoll_wait() on
 * another (an event loop) wakes when its eventfd is written to after the restore.
 *
 * And sharing decided on what is there: a process whose threads open and close eventfds
 * and epolls all the time (test/targets/files-churn.c) is not refused as sharing them
 * with a bystander that holds eventfds and epolls of its own, while a process that holds
 * one of its eventfds (pidfd_getfd) is named as a sharer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { assertNothingLeft, describeBytes, dump, nowTicks, selfCheck, verdictSubtests } from './helpers/restore.js';
import { startTarget, tempDir } from './helpers/targets.js';
import { checkFiles } from '../src/resources/files.js';

const fileStart = nowTicks();

test('restore-anon-fds: eventfd counters, timerfds, a signalfd and epoll come back', async (t) => {
  const run = await selfCheck(t, 'restore-anon-fds', { spinning: 0 });
  await verdictSubtests(t, run, ['epoll', 'eventloop', 'semaphore', 'waiter', 'timerfd', 'signalfd']);
});

test('threads opening and closing eventfds and epolls: no spurious sharing refusal; a real sharer is refused', async (t) => {
  const bystander = await startTarget(t, 'files-churn', { args: ['hold'] });
  const target = await startTarget(t, 'files-churn', { args: ['churn'] });
  const efd = Number(target.readyFields.find((f) => f.startsWith('efd='))?.slice(4));
  assert.ok(efd >= 3, target.readyFields.join(' '));
  t.diagnostic(`churning target ${target.pid}, bystander ${bystander.pid}`);

  const spurious: string[] = [];
  for (let i = 0; i < 150; i++) {
    for (const f of checkFiles(target.pid)) if (!f.supported) spurious.push(`${f.what}: ${f.reason}`);
  }
  assert.deepEqual(spurious.slice(0, 5), [], `${spurious.length} refusals in 150 checks of a process that shares nothing`);

  const dir = tempDir(t, 'stasis-churn-');
  for (let i = 0; i < 6; i++) {
    const d = await dump(target.pid, path.join(dir, `churn-${i}.img`), dir, ['--leave-running']);
    assert.equal(d.code, 0, `dump ${i} of the churning process: ${describeBytes(d)}`);
  }
  assert.ok(target.alive(), 'the churning process runs on after its dumps');

  const sharer = await startTarget(t, 'files-churn', { args: ['share', String(target.pid), String(efd)] });
  for (let i = 0; i < 20; i++) {
    const finding = checkFiles(target.pid).find((f) => f.fd === efd);
    assert.ok(finding && !finding.supported, `check ${i}: fd ${efd} is refused while process ${sharer.pid} holds it`);
    assert.match(`${finding.what}: ${finding.reason}`, new RegExp(`^fd ${efd}: anon_inode:\\[eventfd\\]: it is shared with process ${sharer.pid} \\(files-churn\\) fd \\d+;`));
  }
  const refused = await dump(target.pid, path.join(dir, 'shared.img'), dir);
  assert.equal(refused.code, 1, `the dump is refused: ${describeBytes(refused)}`);
  assert.match(refused.stderr, new RegExp(`fd ${efd}: anon_inode:\\[eventfd\\]: it is shared with process ${sharer.pid}\\b`));
  assert.ok(target.alive(), 'the refused process runs on');
});

test('no process is left behind, stopped, traced or otherwise', (t) => assertNothingLeft(t, fileStart));
