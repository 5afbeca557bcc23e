/**
 * `stasis demo`: it exits 0, shows the live core (with gdb's "Thread N" backtraces), and
 * the restored workload counting on from where it was; nothing it started is left.
 *
 * Its stdout is a pipe read here in the first test (what a terminal would show), and a
 * regular file in the second (`stasis demo > demo.log`): the restored workload shares
 * that file with the demo, and must not write over the demo's own lines.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe as describeRun } from './helpers/targets.js';
import { finished, lines, removeScratchDirs, scratchDir, startStasis, stateOf, stoppedOrTraced, waitUntilGone } from './helpers/run.js';

/** Strips the bold escape codes the demo puts around "stasis demo:". */
function plain(text: string): string {
  return text.replace(/\x1b\[[0-9;]*m/g, '');
}

interface DemoView {
  workloadPid: number;
  coreFile: string;
  threadsInCore: number;
  threadLines: string[];
  /** line indexes of "restoring it from the image" and "checkpointing process" (-1: absent) */
  restoring: number;
  checkpointing: number;
  countsBeforeRestore: number[];
  countsAfterRestore: number[];
  reportsAfterRestore: string[];
  demoLines: string[];
}

function view(out: string): DemoView {
  const all = lines(plain(out));
  const workload = all.find((l) => /^workload \d+: counting with 4 threads$/.test(l));
  assert.ok(workload, `the workload announces itself:\n${out}`);
  const workloadPid = Number(workload.split(' ')[1].replace(':', ''));
  const wrote = all.find((l) => /^stasis demo: wrote \S+\/core\.\d+: \d+ threads/.test(l));
  assert.ok(wrote, `the demo reports the core it wrote:\n${out}`);
  const m = wrote.match(/wrote (\S+): (\d+) threads/)!;
  const restoring = all.findIndex((l) => /^stasis demo: restoring it from the image/.test(l));
  const checkpointing = all.findIndex((l) => /^stasis demo: checkpointing process \d+/.test(l));
  const counts = (from: number, to: number) =>
    all
      .slice(from, to)
      .map((l) => l.match(/^\s+count (\d+)$/)?.[1])
      .filter((c): c is string => c !== undefined)
      .map(Number);
  return {
    workloadPid,
    coreFile: m[1],
    threadsInCore: Number(m[2]),
    threadLines: all.filter((l) => /^\s+Thread \d+ \(Thread 0x[0-9a-f]+ \(LWP \d+\)\):$/.test(l)),
    restoring,
    checkpointing,
    countsBeforeRestore: counts(0, checkpointing < 0 ? 0 : checkpointing),
    countsAfterRestore: restoring < 0 ? [] : counts(restoring, all.length),
    reportsAfterRestore: restoring < 0 ? [] : all.slice(restoring).filter((l) => new RegExp(`^workload ${workloadPid}: still counting`).test(l)),
    demoLines: all.filter((l) => l.startsWith('stasis demo: ')),
  };
}

async function assertNothingLeft(v: DemoView, pids: number[]): Promise<void> {
  assert.ok(await waitUntilGone(v.workloadPid, 5_000), `the workload ${v.workloadPid} is gone after the demo (state ${stateOf(v.workloadPid)})`);
  assert.deepEqual(stoppedOrTraced([v.workloadPid, ...pids]), []);
  assert.equal(fs.existsSync(path.dirname(v.coreFile)), false, `the demo removes its directory ${path.dirname(v.coreFile)}`);
}

test('stasis demo: exits 0, shows the core, gdb threads, and the restored workload counting on', { timeout: 90_000 }, async (t) => {
  const r = startStasis(t, ['demo']);
  const st = await finished(r, 60_000);
  const out = r.stdout().toString('utf8');
  assert.equal(st.code, 0, describeRun({ code: st.code, signal: st.signal, stdout: out, stderr: r.stderr(), ms: 0 }));
  const v = view(out);
  assert.ok(v.restoring > 0, `the demo restores the workload:\n${out}`);
  assert.ok(v.checkpointing > 0 && v.checkpointing < v.restoring, `the demo checkpoints before it restores:\n${out}`);
  t.diagnostic(`workload ${v.workloadPid}; counts before the checkpoint up to ${Math.max(...v.countsBeforeRestore)}, after the restore ${v.countsAfterRestore.join(' ')}`);

  assert.equal(v.threadsInCore, 4);
  assert.equal(v.threadLines.length, 4, `gdb shows the 4 threads of the core:\n${out}`);
  assert.ok(v.threadLines.some((l) => l.includes(`(LWP ${v.workloadPid})`)), 'one of them is the main thread');
  assert.match(plain(out), /#\d+ .* in (compute|sleeper|reader|main) \(/, 'with backtraces into the workload');

  assert.ok(v.countsBeforeRestore.length >= 2, 'the workload counts before the checkpoint');
  assert.ok(v.countsAfterRestore.length >= 2, `the restored workload counts:\n${out}`);
  const lastBefore = Math.max(...v.countsBeforeRestore);
  assert.ok(v.countsAfterRestore[0] > lastBefore, `counting on from where it was: ${v.countsAfterRestore[0]} after ${lastBefore}`);
  for (let i = 1; i < v.countsAfterRestore.length; i++) assert.ok(v.countsAfterRestore[i] > v.countsAfterRestore[i - 1], 'and upwards');
  assert.equal(v.reportsAfterRestore.length, 1, `the restored workload answers SIGUSR1 (its handler came back):\n${out}`);
  assert.equal(r.stderr(), '', 'nothing on stderr');
  await assertNothingLeft(v, [r.pid]);
});

test('stasis demo > FILE: the restored workload does not write over the demo\'s own lines', { timeout: 90_000 }, async (t) => {
  const dir = scratchDir(t, 'stasis-demo-test-');
  const log = path.join(dir, 'demo.log');
  const r = startStasis(t, ['demo'], { stdout: { file: log } });
  const st = await finished(r, 60_000);
  const out = fs.readFileSync(log, 'utf8');
  assert.equal(st.code, 0, `${r.stderr()}\n${out}`);
  const v = view(out);
  // every step the demo announces, in order, intact
  const expected = [
    /^stasis demo: building the workload/,
    /^stasis demo: taking a live core of process \d+ while it runs$/,
    /^stasis demo: wrote /,
    /^stasis demo: gdb /,
    /^stasis demo: the workload kept running through the dump/,
    /^stasis demo: checkpointing process \d+ into /,
    /^stasis demo: image written: /,
    /^stasis demo: \(one second of silence: nothing is counting\)$/,
    /^stasis demo: restoring it from the image, with the same PID \d+ and thread ids$/,
    /^stasis demo: process \d+ is back/,
    /^stasis demo: the image is an ELF core too/,
    /^stasis demo: next: /,
  ];
  assert.deepEqual(
    v.demoLines.map((l) => expected.findIndex((re) => re.test(l))),
    expected.map((_, i) => i),
    `the demo's own lines, in order and intact:\n${plain(out)}`,
  );
  await assertNothingLeft(v, [r.pid]);
});

after(() => removeScratchDirs());
