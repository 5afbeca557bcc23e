/**
 * Interval and POSIX timers: capture from a real process (test/targets/timer-state.c),
 * restore into a multi-threaded blank process (sig-blank.c, so that a SIGEV_THREAD_ID
 * timer has its thread), and read back: same ids, events and clocks in /proc/PID/timers,
 * the remaining time and interval with timer_gettime/getitimer, and a timer that fires
 * at its time after the restore with the siginfo the kernel makes for it.
 *
 * Targets are started with posix_spawn (helpers/resource-state.ts) and talk through a file;
 * everything started is killed and reaped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep } from './helpers/targets.js';
import { spawnTarget, startDump, restoreContext, roundTrip, startBlank } from './helpers/resource-state.js';
import { peekSiginfo } from '../src/sys/signals.js';
import { RemoteTask, SYSCALL } from '../src/ptrace/remote.js';
import { readStatus } from '../src/proc/status.js';
import { timersResource, readProcTimers, type TimersState, SIGEV, CLOCK } from '../src/resources/timers.js';

// helpers of this file

function timerGettime(remote: RemoteTask, id: number): { intervalNs: bigint; valueNs: bigint } {
  remote.resetScratch();
  const at = remote.reserve(32);
  remote.syscall(SYSCALL.timer_gettime, [id, at], `timer_gettime(${id})`);
  const raw = remote.readMemory(at, 32);
  const ns = (o: number) => raw.readBigInt64LE(o) * 1_000_000_000n + raw.readBigInt64LE(o + 8);
  return { intervalNs: ns(0), valueNs: ns(16) };
}

function getitimer(remote: RemoteTask, which: number): { intervalUs: bigint; valueUs: bigint } {
  remote.resetScratch();
  const at = remote.reserve(32);
  remote.syscall(SYSCALL.getitimer, [which, at], `getitimer(${which})`);
  const raw = remote.readMemory(at, 32);
  const us = (o: number) => raw.readBigInt64LE(o) * 1_000_000n + raw.readBigInt64LE(o + 8);
  return { intervalUs: us(0), valueUs: us(16) };
}

const MS = 1_000_000n;
const SIGRTMIN = 34;
const bit = (s: number) => 1n << BigInt(s - 1);

function assertNear(actual: bigint, expected: bigint, below: bigint, above: bigint, what: string): void {
  assert.ok(actual <= expected + above && actual >= expected - below, `${what}: ${actual} not within [${expected - below}, ${expected + above}]`);
}

// ---------------------------------------------------------------------------------------

test('timers: itimers and POSIX timers come back with their ids, events, remaining times, and fire on time', async (t) => {
  const target = await spawnTarget(t, 'timer-state');
  const pid = target.pid;
  const t2 = Number(target.ready[2]);
  const [a, b, c, d, e, f, g] = target.ready.slice(3, 10).map(Number);
  const cookie = BigInt(target.ready[10]);
  const listedBefore = readProcTimers(pid)!;

  const dump = startDump(pid);
  let state: TimersState;
  try {
    state = roundTrip(timersResource, timersResource.capture(dump.ctx));
  } finally {
    dump.finish();
  }
  assert.deepEqual(readProcTimers(pid), listedBefore, 'the capture changed no timer');

  // --- what was captured
  const [real, virt, prof] = state.itimers;
  assert.deepEqual([real.which, virt.which, prof.which], [0, 1, 2]);
  assert.equal(real.intervalUs, 2_000_000n);
  assertNear(real.valueUs, 30_000_000n, 2_000_000n, 0n, 'ITIMER_REAL remaining');
  assert.equal(virt.intervalUs, 0n);
  assertNear(virt.valueUs, 100_000_000n, 500_000n, 10_000n, 'ITIMER_VIRTUAL remaining (plus the tick setitimer adds)');
  assert.equal(prof.intervalUs, 1_500_000n);
  assertNear(prof.valueUs, 50_000_000n, 500_000n, 10_000n, 'ITIMER_PROF remaining (plus the tick setitimer adds)');

  assert.deepEqual(state.posix.map((x) => x.id), [a, b, c, e, f, g], 'ids in order, the deleted one (a gap) absent');
  assert.ok(!state.posix.some((x) => x.id === d));
  const byId = new Map(state.posix.map((x) => [x.id, x]));
  const ta = byId.get(a)!;
  assert.deepEqual([ta.clock, ta.notify, ta.signal, ta.sigevValue, ta.target, ta.intervalNs], [CLOCK.REALTIME, SIGEV.SIGNAL, SIGRTMIN, 0x1234n, pid, 1000n * MS]);
  assertNear(ta.valueNs, 60_000n * MS, 2_000n * MS, 0n, 'timer a remaining');
  const tb = byId.get(b)!;
  assert.deepEqual([tb.clock, tb.notify, tb.signal, tb.sigevValue, tb.target], [CLOCK.MONOTONIC, SIGEV.THREAD_ID, SIGRTMIN + 1, cookie, t2]);
  const tc = byId.get(c)!;
  assert.equal(tc.notify, SIGEV.NONE);
  assertNear(tc.valueNs, 20_000n * MS, 2_000n * MS, 0n, 'SIGEV_NONE timer remaining');
  const te = byId.get(e)!;
  assert.equal(te.clock, -6, 'CLOCK_PROCESS_CPUTIME_ID as glibc passes it (CPU clock of pid 0)');
  assertNear(te.valueNs, 1_000_000n * MS, 1_000n * MS, 0n, 'CPU timer remaining');
  const tf = byId.get(f)!;
  assert.deepEqual([tf.signal, tf.valueNs, tf.intervalNs], [14, 0n, 0n]);
  const tg = byId.get(g)!;
  assert.equal(tg.clock, CLOCK.BOOTTIME);
  assertNear(tg.valueNs, 1_500n * MS, 1_000n * MS, 0n, 'timer g remaining');
  target.reap();

  // --- restore into a blank process with one extra thread standing in for t2
  const blank = await startBlank(t, 1);
  const [bt] = blank.threads;
  const remote = blank.remote;
  try {
    const mapped: TimersState = {
      itimers: state.itimers,
      posix: state.posix.map((x) => ({ ...x, target: x.notify & SIGEV.THREAD_ID ? bt : blank.pid })),
    };
    const ctx = restoreContext(blank.pid, remote);
    timersResource.restore(ctx, mapped);
    const restoredAt = process.hrtime.bigint();

    const strip = (x: { id: number; clock: number; notify: number; signal: number; sigevValue: bigint; target: number }) =>
      ({ id: x.id, clock: x.clock, notify: x.notify, signal: x.signal, sigevValue: x.sigevValue, target: x.target });
    assert.deepEqual(readProcTimers(blank.pid)!.map(strip), mapped.posix.map(strip), '/proc/PID/timers: same ids, clocks and events');

    for (const x of mapped.posix) {
      const now = timerGettime(remote, x.id);
      const elapsed = process.hrtime.bigint() - restoredAt;
      assert.equal(now.intervalNs, x.intervalNs, `timer ${x.id} interval`);
      if (x.valueNs === 0n) assert.equal(now.valueNs, 0n, `timer ${x.id} stays disarmed`);
      else assertNear(now.valueNs, x.valueNs, elapsed + 50n * MS, 0n, `timer ${x.id} remaining`);
    }
    for (const it of mapped.itimers) {
      const now = getitimer(remote, it.which);
      assert.equal(now.intervalUs, it.intervalUs, `itimer ${it.which} interval`);
      assertNear(now.valueUs, it.valueUs, (process.hrtime.bigint() - restoredAt) / 1000n + 50_000n, 1_000n, `itimer ${it.which} remaining`);
    }

    // Timer g fires when its remaining time has run out after the restore, not before.
    const due = restoredAt + tg.valueNs;
    await sleep(Math.max(0, Number((due - process.hrtime.bigint()) / MS) - 250));
    assert.equal(readStatus(blank.pid).sharedPending & bit(SIGRTMIN + 4), 0n, 'timer g has not fired early');
    await sleep(Math.max(0, Number((due - process.hrtime.bigint()) / MS) + 250));
    assert.equal(readStatus(blank.pid).sharedPending & bit(SIGRTMIN + 4), bit(SIGRTMIN + 4), 'timer g fired');
    const info = peekSiginfo(blank.pid, true).find((i) => i.readInt32LE(0) === SIGRTMIN + 4)!;
    assert.deepEqual([info.readInt32LE(8), info.readInt32LE(16), info.readInt32LE(24)], [-2, g, 77], 'SI_TIMER, si_timerid, si_value');
    assert.deepEqual(ctx.warnings, []);
  } finally {
    blank.destroy();
  }
});

test('timers: check() accepts ordinary timers and refuses a thread CPU-time timer in a multi-threaded process', async (t) => {
  const plain = await spawnTarget(t, 'timer-state');
  const ok = timersResource.check!(plain.pid);
  assert.equal(ok.length, 6);
  assert.ok(ok.every((x) => x.supported), JSON.stringify(ok));
  plain.reap();

  const threaded = await spawnTarget(t, 'timer-state', ['threadclock']);
  const findings = timersResource.check!(threaded.pid);
  const bad = findings.filter((x) => !x.supported);
  assert.equal(bad.length, 1, JSON.stringify(findings));
  assert.match(bad[0].what, /CLOCK_THREAD_CPUTIME_ID/);
  threaded.reap();
});
