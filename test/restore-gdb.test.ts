/**
 * A checkpoint image is a core file: `gdb -batch -ex 'thread apply all bt' EXE IMAGE`
 * shows what it shows for a `stasis core` of the same process state; and the process
 * restored from the image shows the same again.
 *
 * test/targets/restore-gdb.c parks four threads forever in distinct call chains, so the
 * live core (taken first; the process keeps running), the image (`stasis dump`, which
 * kills it) and a core of the restored process all describe one state. Compared per LWP:
 * the functions of each backtrace, then whole backtraces (arguments, files, lines), the
 * thread list, globals, heap data and TLS values.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe as describeRun, makeCore, startTarget, tempDir, waitSettled } from './helpers/targets.js';
import { byThread, gdbCore, infoThreadsLwps, normaliseBacktrace, parseBacktrace, printedValue, sideBySide, type GdbOutput } from './helpers/gdb.js';
import { assertNothingLeft, assertNotStoppedOrTraced, describeBytes, dump, nowTicks, restore, waitGone } from './helpers/restore.js';

const fileStart = nowTicks();

const COMMANDS = ['info threads', 'thread apply all bt', 'p g_magic', 'p g_words[0]', 'p g_words[2]', 'thread apply all p t_depth'];

/** Functions per LWP, innermost first, from `thread apply all bt`. */
function functionsByLwp(g: GdbOutput): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const [lwp, body] of byThread(g.sections[1])) out.set(lwp, parseBacktrace(body).map((f) => f.func));
  return out;
}

function show(m: Map<number, string[]>): string {
  return [...m.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([lwp, fns]) => `LWP ${lwp}: ${fns.join(' <- ')}`)
    .join('\n');
}

/** Everything two gdb views of one process state must agree on. */
function assertSameView(a: GdbOutput, b: GdbOutput, la: string, lb: string): void {
  assert.deepEqual(infoThreadsLwps(b.sections[0]), infoThreadsLwps(a.sections[0]), `the same threads (LWPs):\n${sideBySide(a.sections[0], b.sections[0], la, lb)}`);
  const fa = functionsByLwp(a);
  const fb = functionsByLwp(b);
  assert.equal(show(fb), show(fa), `the same functions in every thread's backtrace:\n${sideBySide(show(fa), show(fb), la, lb)}`);
  const ba = byThread(a.sections[1]);
  const bb = byThread(b.sections[1]);
  for (const [lwp, body] of ba) {
    assert.equal(normaliseBacktrace(bb.get(lwp) ?? ''), normaliseBacktrace(body), `LWP ${lwp}: the same backtrace (arguments, files, lines):\n${sideBySide(body, bb.get(lwp) ?? '', la, lb)}`);
  }
  for (let i = 2; i < COMMANDS.length - 1; i++) {
    assert.equal(printedValue(b.sections[i]), printedValue(a.sections[i]), `${COMMANDS[i]}:\n${sideBySide(a.sections[i], b.sections[i], la, lb)}`);
  }
  const tlsA = byThread(a.sections[COMMANDS.length - 1]);
  const tlsB = byThread(b.sections[COMMANDS.length - 1]);
  for (const [lwp, body] of tlsA) assert.equal(printedValue(tlsB.get(lwp) ?? ''), printedValue(body), `LWP ${lwp}: t_depth`);
}

/** What the source says gdb must see, so that two equally wrong views cannot pass. */
function assertMatchesSource(g: GdbOutput, what: string): void {
  const fns = [...functionsByLwp(g).values()];
  const has = (chain: string[]) => fns.some((f) => chain.every((c) => f.includes(c)) && chain.every((c, i) => i === 0 || f.indexOf(chain[i - 1]) < f.indexOf(c)));
  assert.equal(fns.length, 4, `${what}: 4 threads in the backtrace:\n${g.sections[1]}`);
  assert.ok(has(['park_main', 'main']), `${what}: main in park_main:\n${g.sections[1]}`);
  assert.ok(has(['alpha_bottom', 'alpha_middle', 'alpha_top']), `${what}: alpha_bottom <- alpha_middle <- alpha_top:\n${g.sections[1]}`);
  assert.ok(has(['beta_bottom', 'beta_top']), `${what}: beta_bottom <- beta_top:\n${g.sections[1]}`);
  assert.ok(has(['gamma_top']), `${what}: gamma_top:\n${g.sections[1]}`);
  assert.equal(printedValue(g.sections[2]), '1592598101', `${what}: g_magic`);
  assert.match(printedValue(g.sections[3]) ?? '', /"alpha"$/, `${what}: g_words[0] (heap)`);
  assert.match(printedValue(g.sections[4]) ?? '', /"gamma"$/, `${what}: g_words[2] (heap)`);
}

async function gdbOn(t: TestContext, exe: string, file: string, what: string): Promise<GdbOutput> {
  const g = await gdbCore(exe, file, COMMANDS);
  t.diagnostic(`${what}:\n${show(functionsByLwp(g))}`);
  return g;
}

test('gdb shows the same threads, backtraces and values for a checkpoint image as for a stasis core, and for the restored process', async (t) => {
  const dir = tempDir(t, 'stasis-restore-gdb-');
  const target = await startTarget(t, 'restore-gdb');
  await waitSettled(target.pid);

  const core = path.join(dir, 'live.core');
  const made = await makeCore(target.pid, core);
  assert.equal(made.code, 0, `stasis core: ${describeRun(made)}`);
  const image = path.join(dir, 'restore-gdb.img');
  const d = await dump(target.pid, image, dir);
  assert.equal(d.code, 0, `stasis dump: ${describeBytes(d)}`);
  await target.exited;

  const fromCore = await gdbOn(t, target.exe, core, 'stasis core');
  const fromImage = await gdbOn(t, target.exe, image, 'checkpoint image');
  assertMatchesSource(fromCore, 'the stasis core');
  assertMatchesSource(fromImage, 'the checkpoint image');
  assertSameView(fromCore, fromImage, 'stasis core', 'checkpoint image');

  await t.test('the restored process, seen through a stasis core of it, is in the same state', async () => {
    const r = await restore(t, image, { scratch: dir, detach: true, pid: target.pid, timeoutMs: 30_000 });
    assert.equal(r.code, 0, `stasis restore --detach: ${describeBytes(r)}`);
    assert.equal(r.restoredPid, target.pid);
    await waitSettled(target.pid);
    assertNotStoppedOrTraced([target.pid], 'the restored process');
    const again = path.join(dir, 'restored.core');
    const made2 = await makeCore(target.pid, again);
    assert.equal(made2.code, 0, `stasis core of the restored process: ${describeRun(made2)}`);
    const fromRestored = await gdbOn(t, target.exe, again, 'stasis core of the restored process');
    assertMatchesSource(fromRestored, 'the restored process');
    assertSameView(fromImage, fromRestored, 'checkpoint image', 'restored process');
    process.kill(target.pid, 'SIGKILL');
    assert.ok(await waitGone(target.pid), 'the restored process is gone once killed');
  });
});

test('no process is left behind, stopped, traced or otherwise', (t) => assertNothingLeft(t, fileStart));
