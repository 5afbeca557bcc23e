/**
 * Signals and timers across a restore, checked from inside:
 *
 * - test/targets/restore-signals.c: handlers with their flags and masks, SIG_IGN, the
 *   thread's mask and alternate stack, process-wide signals pending at the dump (two
 *   queued SIGRTMIN+1 with their sigqueue values, a SIGUSR2), a signal pending for one
 *   thread only, a signal sent to the restored PID from outside, and one sent to the
 *   foreground `stasis restore`, which forwards it;
 * - test/targets/restore-timers.c: a periodic POSIX timer keeps firing with its value and
 *   interval, a one-shot fires at its time, an hour-long one keeps its remaining time, a
 *   disarmed one stays so, a SIGEV_THREAD timer keeps calling back, ITIMER_REAL keeps its
 *   interval, ITIMER_VIRTUAL its settings, and new timers get fresh ids;
 * - the same timer checks in a process dumped with --leave-running (a dump must not
 *   change the signals the live process receives);
 * - a process stopped by SIGSTOP at the dump comes back stopped (like a stopped job).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { killQuietly, procStatus, sleep, startTarget, tempDir, waitFor } from './helpers/targets.js';
import { assertNothingLeft, describeBytes, dump, nowTicks, parseVerdicts, restore, selfCheck, verdictSubtests, waitGone } from './helpers/restore.js';

const fileStart = nowTicks();

test('restore-signals: dispositions, masks, altstack and pending signals survive', async (t) => {
  const sent = new Set<string>();
  const run = await selfCheck(t, 'restore-signals', {
    spinning: 0,
    watch: (out, stasisPid, pid) => {
      // the target asks for these in turn; each is sent once
      if (out.includes('send-usr1\n') && !sent.has('pid')) {
        sent.add('pid');
        killQuietly(pid, 'SIGUSR1');
      }
      if (out.includes('send-usr1-to-stasis\n') && !sent.has('stasis')) {
        sent.add('stasis');
        killQuietly(stasisPid, 'SIGUSR1');
      }
    },
  });
  await verdictSubtests(t, run, ['action', 'ignored', 'mask', 'altstack', 'pending', 'queued', 'usr2', 'thread', 'inhandler', 'onstack', 'outside', 'forwarded']);
});

test('restore-timers: POSIX timers and itimers keep running', async (t) => {
  const run = await selfCheck(t, 'restore-timers');
  await verdictSubtests(t, run, ['periodic', 'thread', 'itimer', 'virtual', 'far', 'disarmed', 'oneshot', 'ids']);
});

test('restore-timers after dump --leave-running: the live process does not notice the dump', async (t) => {
  // The same checks, in the original process: a dump that injects syscalls while timers
  // fire must not change what the process receives (nor lose or add timer expiries).
  const dir = tempDir(t, 'stasis-timers-live-');
  const trigger = path.join(dir, 'trigger');
  const target = await startTarget(t, 'restore-timers', { args: [trigger] });
  const d = await dump(target.pid, path.join(dir, 'timers.img'), dir, ['--leave-running']);
  assert.equal(d.code, 0, `stasis dump --leave-running: ${describeBytes(d)}`);
  fs.writeFileSync(trigger, '');
  const exit = await target.exited;
  const out = target.lines.join('\n');
  const verdicts = parseVerdicts(out);
  for (const name of ['periodic', 'thread', 'itimer', 'virtual', 'far', 'disarmed', 'oneshot', 'ids']) {
    await t.test(name, () => {
      const v = verdicts.get(name);
      assert.ok(v, `no verdict for ${name}; the process printed:\n${out}\nstderr: ${target.stderr()}`);
      assert.ok(v.ok, `FAIL ${name}: ${v.detail}`);
    });
  }
  assert.equal(exit.code, 0, `the process exits 0:\n${out}`);
});

test('a process stopped by SIGSTOP (a stopped job) is restored stopped, and SIGCONT resumes it', async (t) => {
  const dir = tempDir(t, 'stasis-restore-stopped-');
  const trigger = path.join(dir, 'trigger');
  const target = await startTarget(t, 'restore-payload', { args: [trigger] });
  process.kill(target.pid, 'SIGSTOP');
  await waitFor(() => procStatus(target.pid)?.state === 'T', 'the target to stop');
  const image = path.join(dir, 'stopped.img');
  const d = await dump(target.pid, image, dir);
  assert.equal(d.code, 0, `stasis dump of a stopped process: ${describeBytes(d)}`);
  await target.exited;
  fs.writeFileSync(trigger, '');
  const out = path.join(dir, 'restored.out');
  const r = await restore(t, image, { scratch: dir, detach: true, pid: target.pid, stdout: { file: out }, timeoutMs: 30_000 });
  assert.equal(r.code, 0, `stasis restore --detach: ${describeBytes(r)}`);
  await sleep(300);
  const st = procStatus(target.pid);
  assert.ok(st, 'the restored process exists');
  assert.equal(st.tracerPid, 0, 'not traced');
  assert.equal(st.state, 'T', `it is stopped, as it was when dumped (state ${st.state}); it ran: ${fs.readFileSync(out, 'utf8').slice(-200)}`);
  process.kill(target.pid, 'SIGCONT');
  assert.ok(await waitGone(target.pid, 5_000), 'once continued, it finds the trigger and exits');
  assert.match(fs.readFileSync(out, 'utf8'), /^OK payload$/m);
});

test('no process is left behind, stopped, traced or otherwise', (t) => assertNothingLeft(t, fileStart));
