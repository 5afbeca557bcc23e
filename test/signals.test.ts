/**
 * Signal actions and pending signals: capture from a real process (test/targets/sig-state.c),
 * restore into a stub and into a multi-threaded blank process (sig-blank.c), and read back.
 *
 * Targets are started with posix_spawn (helpers/resource-state.ts; never child_process: the
 * tracer must not be a libuv-managed parent) and talk through a file. Everything started is
 * killed and reaped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { sleep, waitFor } from './helpers/targets.js';
import { spawnTarget, readLines, startDump, restoreContext, roundTrip, startBlank } from './helpers/resource-state.js';
import { tgkill } from '../src/sys/process.js';
import { peekSiginfo } from '../src/sys/signals.js';
import { RemoteTask, SYSCALL } from '../src/ptrace/remote.js';
import { startStub } from '../src/ptrace/stub.js';
import { readStatus } from '../src/proc/status.js';
import { signalsResource, addHeldSignals, type SignalsState, type PendingSignal, NSIG } from '../src/resources/signals.js';

// helpers of this file

function remap(state: SignalsState, tids: Map<number, number>): SignalsState {
  return {
    actions: state.actions,
    shared: state.shared,
    threads: state.threads.filter((t) => tids.has(t.tid)).map((t) => ({ tid: tids.get(t.tid)!, pending: t.pending })),
  };
}

function sigaction(remote: RemoteTask, signal: number): bigint[] {
  remote.resetScratch();
  const at = remote.reserve(32);
  remote.syscall(SYSCALL.rt_sigaction, [signal, 0, at, 8], `rt_sigaction(${signal})`);
  const raw = remote.readMemory(at, 32);
  return [0, 8, 16, 24].map((o) => raw.readBigUInt64LE(o));
}

function setMask(remote: RemoteTask, mask: bigint): void {
  remote.resetScratch();
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(mask, 0);
  remote.syscall(SYSCALL.rt_sigprocmask, [2, remote.put(b), 0, 8], 'rt_sigprocmask');
}

const bit = (s: number) => 1n << BigInt(s - 1);
const bitsOf = (pending: PendingSignal[]) => pending.reduce((m, p) => m | bit(p.signal), 0n);
const SIGRTMIN = 34;
const SA = { NOCLDSTOP: 1n, SIGINFO: 4n, RESTORER: 0x04000000n, ONSTACK: 0x08000000n, RESTART: 0x10000000n, NODEFER: 0x40000000n, RESETHAND: 0x80000000n };
const siValue = (p: PendingSignal) => p.siginfo.readInt32LE(24);
const siCode = (p: PendingSignal) => p.siginfo.readInt32LE(8);

// ---------------------------------------------------------------------------------------

test('signals: capture reads actions and pending siginfo without dequeuing, restore queues them again', async (t) => {
  const target = await spawnTarget(t, 'sig-state');
  const pid = target.pid;
  const t2 = Number(target.ready[2]);
  const onInfo = BigInt(target.ready[3]);
  const onPlain = BigInt(target.ready[4]);
  const before = readStatus(pid);
  const mainMask = before.sigBlocked;

  // A SIGWINCH (unblocked) arrives while the process is frozen: the first injected syscall
  // dequeues it, so the capture must still account for it (origin 'dequeued'), with the siginfo tgkill gave it (SI_TKILL).
  const dump = startDump(pid, () => tgkill(pid, pid, 28));
  let state: SignalsState;
  try {
    state = roundTrip(signalsResource, signalsResource.capture(dump.ctx));
  } finally {
    dump.finish();
  }

  // --- what was captured
  const action = (s: number) => state.actions.find((a) => a.signal === s);
  const usr1 = action(10)!;
  assert.equal(usr1.handler, onInfo);
  assert.equal(usr1.flags, SA.SIGINFO | SA.RESTART | SA.RESTORER);
  assert.equal(usr1.mask, bit(12) | bit(15));
  assert.notEqual(usr1.restorer, 0n);
  const usr2 = action(12)!;
  assert.equal(usr2.handler, onPlain);
  assert.equal(usr2.flags, SA.ONSTACK | SA.NODEFER | SA.RESTORER);
  assert.equal(action(2)!.handler, 1n, 'SIGINT is SIG_IGN');
  assert.equal(action(17)!.handler, 0n);
  assert.equal(action(17)!.flags & SA.NOCLDSTOP, SA.NOCLDSTOP, 'SIGCHLD keeps SA_NOCLDSTOP');
  const rt2 = action(SIGRTMIN + 2)!;
  assert.equal(rt2.flags, SA.SIGINFO | SA.RESETHAND | SA.RESTORER);
  assert.equal(rt2.mask, bit(1) | bit(SIGRTMIN + 5));
  assert.equal(action(9), undefined);
  assert.equal(action(19), undefined);

  assert.deepEqual(state.shared.map((p) => p.signal), [10, 2, 1, SIGRTMIN + 1, SIGRTMIN + 1], 'process-wide queue in order');
  assert.deepEqual(state.shared.slice(3).map(siValue), [42, 43]);
  assert.equal(siCode(state.shared[0]), 0, 'kill() is SI_USER');
  assert.equal(state.shared[0].siginfo.readInt32LE(16), pid, 'si_pid of the sender');
  assert.equal(bitsOf(state.shared), before.sharedPending);
  const mainPending = state.threads.find((x) => x.tid === pid)!.pending;
  assert.deepEqual(mainPending.map((p) => [p.signal, siCode(p), p.origin]), [
    [SIGRTMIN + 3, -1, 'queue'],
    [15, -6, 'queue'],
    [28, -6, 'dequeued'],
  ]);
  assert.equal(siValue(mainPending[0]), 7);
  const t2Pending = state.threads.find((x) => x.tid === t2)!.pending;
  assert.deepEqual(t2Pending.map((p) => [p.signal, siCode(p)]), [[12, -6], [SIGRTMIN + 3, -1]]);
  assert.equal(siValue(t2Pending[1]), 99);

  // --- restore into a stub (one thread): actions, process-wide and the main thread's signals
  const stub = startStub();
  try {
    setMask(stub.remote, mainMask); // the orchestrator restores each thread's mask
    const single = remap(state, new Map([[pid, stub.pid]]));
    const ctx = restoreContext(stub.pid, stub.remote);
    signalsResource.restore(ctx, single);
    const st = readStatus(stub.pid);
    assert.equal(st.sharedPending, before.sharedPending, 'ShdPnd');
    assert.equal(st.sigPending, bitsOf(mainPending), 'SigPnd');
    assert.deepEqual(peekSiginfo(stub.pid, true), state.shared.map((p) => p.siginfo), 'shared siginfo byte for byte');
    assert.deepEqual(peekSiginfo(stub.pid, false), mainPending.map((p) => p.siginfo), 'private siginfo byte for byte');
    assert.equal(st.sigBlocked, mainMask, 'the thread got its mask back');
    for (let s = 1; s <= NSIG; s++) {
      if (s === 9 || s === 19) continue;
      const a = action(s);
      assert.deepEqual(sigaction(stub.remote, s), a ? [a.handler, a.flags, a.restorer, a.mask] : [0n, 0n, 0n, 0n], `action of signal ${s}`);
    }
    assert.deepEqual(ctx.warnings, []);
  } finally {
    stub.destroy();
  }

  // --- the original, released, gets every signal it had pending (nothing was dequeued)
  fs.writeFileSync(`${target.out}.go`, '');
  await waitFor(() => readLines(target.out).includes('done'), 'sig-state to take its signals');
  const got = readLines(target.out).filter((l) => l.startsWith('got ')).map((l) => l.split(' ').slice(1));
  const norm = (rows: string[][]) => rows.map((r) => r.join(' ')).sort();
  const shared = got.filter((r) => ['10', '1', '35'].includes(r[1])).map((r) => r.slice(1));
  const own = got.filter((r) => !['10', '1', '35'].includes(r[1]));
  assert.deepEqual(norm(shared), norm([['10', '0', '0'], ['1', 'plain', '0'], ['35', '-1', '42'], ['35', '-1', '43']]));
  assert.deepEqual(norm(own), norm([
    ['main', '37', '-1', '7'], ['main', '15', '-6', '0'], ['main', '28', '-6', '0'],
    ['t2', '12', 'plain', '0'], ['t2', '37', '-1', '99'],
  ]));
  target.reap();
});

test('signals: per-thread signals are queued by their own thread in a multi-threaded process', async (t) => {
  const target = await spawnTarget(t, 'sig-state');
  const pid = target.pid;
  const t2 = Number(target.ready[2]);
  const dump = startDump(pid);
  let state: SignalsState;
  try {
    state = roundTrip(signalsResource, signalsResource.capture(dump.ctx));
  } finally {
    dump.finish();
  }
  target.reap();

  const blank = await startBlank(t, 2);
  const [bt1, bt2] = blank.threads;
  try {
    // A signal t2 held in a signal-delivery-stop (kept by the threads resource): a SIGSEGV
    // with a kernel si_code (SEGV_MAPERR) and si_addr, which only t2 itself may queue.
    const segv = Buffer.alloc(128);
    segv.writeInt32LE(11, 0);
    segv.writeInt32LE(1, 8);
    segv.writeBigUInt64LE(0xdead000n, 16);
    const withHeld = addHeldSignals(state, [{ tid: t2, signo: 11, siginfo: segv }]);
    const mapped = remap(withHeld, new Map([[pid, blank.pid], [t2, bt1]]));
    const ctx = restoreContext(blank.pid, blank.remote);
    signalsResource.restore(ctx, mapped);
    const mainPending = state.threads.find((x) => x.tid === pid)!.pending;
    const t2Pending = withHeld.threads.find((x) => x.tid === t2)!.pending;
    assert.deepEqual(t2Pending.map((p) => p.signal), [11, 12, SIGRTMIN + 3], 'the held signal first');
    assert.deepEqual(peekSiginfo(bt1, false), t2Pending.map((p) => p.siginfo), "t2's SI_TKILL and SI_QUEUE siginfo, queued from t2 itself");
    assert.deepEqual(peekSiginfo(blank.pid, false), mainPending.map((p) => p.siginfo));
    assert.deepEqual(peekSiginfo(blank.pid, true), state.shared.map((p) => p.siginfo));
    assert.deepEqual(peekSiginfo(bt2, false), [], 'the other thread got nothing');
    assert.equal(readStatus(blank.pid, bt1).sigPending, bitsOf(t2Pending));
    assert.equal(readStatus(blank.pid, bt1).sigBlocked, readStatus(blank.pid, bt2).sigBlocked, "t2's mask is back");
    assert.deepEqual(ctx.warnings, []);
  } finally {
    blank.destroy();
  }
});

test('signals: check() reports dispositions and pending signals as supported', async (t) => {
  const target = await spawnTarget(t, 'sig-state');
  const findings = signalsResource.check!(target.pid);
  assert.ok(findings.length >= 1);
  assert.ok(findings.every((f) => f.supported), JSON.stringify(findings));
  assert.match(findings[0].what, /handled/);
  target.reap();
  await sleep(0);
});
