/**
 * Process attributes: capture rlimits, umask, cwd, personality and per-thread scheduling
 * from a real process (test/targets/attr-state.c), restore them into a stub and into a
 * multi-threaded blank process (sig-blank.c), and compare what /proc and the kernel say.
 *
 * Targets are started with posix_spawn (helpers/resource-state.ts) and talk through a file;
 * everything started is killed and reaped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from './helpers/targets.js';
import { spawnTarget, startDump, restoreContext, roundTrip, startBlank } from './helpers/resource-state.js';
import { schedGetattr, getNice, SCHED } from '../src/sys/sched.js';
import { startStub } from '../src/ptrace/stub.js';
import { StasisError } from '../src/errors.js';
import { attributesResource, readPersonality, readUmask, type AttributesState } from '../src/resources/attributes.js';
import { readLimits } from '../src/proc/limits.js';
import { getRlimit } from '../src/sys/limits.js';

// helpers of this file

function remap(state: AttributesState, tids: Map<number, number>): AttributesState {
  return { ...state, threads: state.threads.filter((t) => tids.has(t.tid)).map((t) => ({ ...t, tid: tids.get(t.tid)! })) };
}

/** What the kernel says about a thread's scheduling, in the state's terms. */
function schedulingOf(tid: number) {
  const attr = schedGetattr(tid);
  return { policy: attr.policy, resetOnFork: (attr.flags & 1n) !== 0n, priority: attr.priority, nice: getNice(tid) };
}

const PER = { ADDR_NO_RANDOMIZE: 0x0040000, SHORT_INODE: 0x1000000 };

// ---------------------------------------------------------------------------------------

test('attributes: rlimits, umask, cwd, personality and per-thread scheduling are captured and restored', async (t) => {
  const cwd = fs.mkdtempSync(path.join(tempDir(t), 'work dir '));
  const target = await spawnTarget(t, 'attr-state', ['normal', cwd]);
  const pid = target.pid;
  const t2 = Number(target.ready[2]);
  const t2Policy = Number(target.ready[3]);
  const limitsText = fs.readFileSync(`/proc/${pid}/limits`, 'utf8');

  const dump = startDump(pid);
  let state: AttributesState;
  try {
    state = roundTrip(attributesResource, attributesResource.capture(dump.ctx));
  } finally {
    dump.finish();
  }
  target.reap();

  // --- what was captured
  const limit = (name: string) => state.rlimits.find((r) => r.name === name)!;
  assert.equal(state.rlimits.length, 16);
  assert.deepEqual([limit('NOFILE').soft, limit('NOFILE').hard], [512n, 2048n]);
  assert.deepEqual([limit('CORE').soft, limit('CORE').hard], [0n, 0xffffffffffffffffn]);
  assert.deepEqual([limit('STACK').soft, limit('STACK').hard], [4n << 20n, 64n << 20n]);
  assert.deepEqual([limit('MEMLOCK').soft, limit('MEMLOCK').hard], [65536n, 4n << 20n]);
  assert.equal(state.umask, 0o027);
  assert.equal(state.cwd, cwd);
  assert.equal(state.personality, PER.ADDR_NO_RANDOMIZE);
  const main = state.threads.find((x) => x.tid === pid)!;
  const other = state.threads.find((x) => x.tid === t2)!;
  assert.deepEqual([main.policy, main.nice, main.priority, main.resetOnFork, main.personality], [SCHED.BATCH, 5, 0, false, PER.ADDR_NO_RANDOMIZE]);
  assert.equal(other.policy, t2Policy);
  assert.equal(other.nice, 7);
  assert.equal(other.personality, PER.ADDR_NO_RANDOMIZE | PER.SHORT_INODE);
  if (t2Policy === SCHED.RR) assert.deepEqual([other.priority, other.resetOnFork], [3, true]);

  // --- into a stub: the process-wide attributes and the main thread's
  const stub = startStub();
  try {
    const ctx = restoreContext(stub.pid, stub.remote);
    attributesResource.restore(ctx, remap(state, new Map([[pid, stub.pid]])));
    assert.equal(fs.readFileSync(`/proc/${stub.pid}/limits`, 'utf8'), limitsText, '/proc/PID/limits');
    assert.equal(readUmask(stub.pid), 0o027);
    assert.equal(fs.readlinkSync(`/proc/${stub.pid}/cwd`), cwd);
    assert.equal(readPersonality(stub.pid), PER.ADDR_NO_RANDOMIZE);
    assert.deepEqual(schedulingOf(stub.pid), { policy: SCHED.BATCH, resetOnFork: false, priority: 0, nice: 5 });
    assert.deepEqual(ctx.warnings, []);
  } finally {
    stub.destroy();
  }

  // --- into a process with a second thread standing in for t2
  const blank = await startBlank(t, 1);
  const [bt] = blank.threads;
  try {
    const ctx = restoreContext(blank.pid, blank.remote);
    attributesResource.restore(ctx, remap(state, new Map([[pid, blank.pid], [t2, bt]])));
    assert.equal(fs.readFileSync(`/proc/${blank.pid}/limits`, 'utf8'), limitsText, '/proc/PID/limits');
    assert.equal(readUmask(blank.pid), 0o027);
    assert.equal(fs.readlinkSync(`/proc/${blank.pid}/cwd`), cwd);
    assert.equal(readPersonality(blank.pid), main.personality);
    assert.equal(readPersonality(blank.pid, bt), other.personality, "t2's own personality, set in t2");
    assert.deepEqual(schedulingOf(blank.pid), { policy: main.policy, resetOnFork: main.resetOnFork, priority: main.priority, nice: main.nice });
    assert.deepEqual(schedulingOf(bt), { policy: other.policy, resetOnFork: other.resetOnFork, priority: other.priority, nice: other.nice });
    assert.deepEqual(ctx.warnings, []);
  } finally {
    blank.destroy();
  }
});

test('attributes: check() and capture refuse a chroot and a deleted working directory', async (t) => {
  const dir = tempDir(t);
  const normal = await spawnTarget(t, 'attr-state', ['normal', dir]);
  const fine = attributesResource.check!(normal.pid);
  assert.ok(fine.every((f) => f.supported), JSON.stringify(fine));
  normal.reap();

  const gone = await spawnTarget(t, 'attr-state', ['rmcwd', path.join(dir, 'doomed')]);
  const cwdFinding = attributesResource.check!(gone.pid).filter((f) => !f.supported);
  assert.equal(cwdFinding.length, 1, JSON.stringify(cwdFinding));
  assert.match(cwdFinding[0].what, /working directory .*doomed \(deleted\)/);
  const dump = startDump(gone.pid);
  try {
    assert.throws(() => attributesResource.capture(dump.ctx), (err: unknown) => err instanceof StasisError && err.code === 'UNSUPPORTED' && /deleted/.test(err.message));
  } finally {
    dump.finish();
  }
  gone.reap();

  if (process.getuid?.() !== 0) return; // chroot needs root
  const jail = fs.mkdtempSync(path.join(dir, 'jail'));
  const jailed = await spawnTarget(t, 'attr-state', ['chroot', jail]);
  const rootFinding = attributesResource.check!(jailed.pid).filter((f) => !f.supported);
  assert.equal(rootFinding.length, 1, JSON.stringify(rootFinding));
  assert.match(rootFinding[0].what, new RegExp(`root directory ${jail}`));
  assert.match(rootFinding[0].reason!, /chroot/);
  const dump2 = startDump(jailed.pid);
  try {
    assert.throws(() => attributesResource.capture(dump2.ctx), (err: unknown) => err instanceof StasisError && err.code === 'UNSUPPORTED' && /chroot/.test(err.message));
  } finally {
    dump2.finish();
  }
  jailed.reap();
});

test('attributes: /proc/PID/limits gives every rlimit exactly as prlimit does (no CAP_SYS_RESOURCE needed for another uid)', async (t) => {
  const target = await spawnTarget(t, 'attr-state', ['normal', tempDir(t)]);
  const fromProc = readLimits(target.pid);
  assert.equal(fromProc.length, 16);
  fromProc.forEach((limit, resource) => assert.deepEqual(limit, getRlimit(target.pid, resource), `RLIMIT ${resource}`));
  assert.deepEqual(fromProc[7], { soft: 512n, hard: 2048n }, 'NOFILE as attr-state sets it');
  target.reap();
});
