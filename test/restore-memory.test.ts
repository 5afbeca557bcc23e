/**
 * A restored address space, checked from inside by test/targets/restore-memory.c: the
 * exact layout (/proc/self/maps text), a PROT_NONE guard page, a MAP_GROWSDOWN stack in
 * use by a suspended ucontext, MAP_SHARED|MAP_ANONYMOUS contents (still shared with a
 * child forked after the restore), a dirty page of a private file mapping, 1 GiB of
 * sparse anonymous memory with 4 pages touched, MADV_DONTFORK / WIPEONFORK / DONTDUMP /
 * NOHUGEPAGE / RANDOM / SEQUENTIAL flags, and mlock / mlock2(MLOCK_ONFAULT) areas. From
 * outside: the image stays small (sparse).
 *
 * test/targets/restore-shmem.c: a memfd both open and mapped, a memfd only mapped, two
 * mappings of one MAP_SHARED|MAP_ANONYMOUS object, the back half of another with a second
 * mapping of its last page (page offsets 2 and 3), a MAP_SHARED file: each must still be
 * one object after the restore (a store through one view shows in the others).
 *
 * test/targets/restore-vmflags.c: MAP_NORESERVE, MADV_MERGEABLE, MAP_DROPPABLE, a guard
 * page, an mseal()ed area, a PROT_READ MAP_SHARED mapping of a file open for writing, a
 * shared mapping of a deleted file, mlockall(MCL_FUTURE | MCL_ONFAULT); and the VmFlags of
 * every mapping, read by this test from smaps before the dump and printed by the restored process, letter by letter.
 *
 * test/targets/refuse-mappings.c: an AIO ring and a shared mapping of a deleted file no
 * fd holds are listed by `stasis check` and refused by `stasis dump`, naming the mapping.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { assertNothingLeft, describeBytes, dump, nowTicks, selfCheck, verdictSubtests } from './helpers/restore.js';
import { assertRunningUntraced, runStasis, startTarget, tempDir } from './helpers/targets.js';

const fileStart = nowTicks();
const PAGE = 4096;

/**
 * VmFlags letters that may legitimately differ between a mapping before the dump and the
 * same mapping after the restore, with why. Every other letter must be the same. None
 * does today: each letter this kernel shows is restored (even 'ac', the overcommit charge
 * of a private mapping that is not writable now, and 'gu', a guard once installed) or
 * refused at dump (src/resources/mappings.ts VMFLAGS).
 */
const VMFLAGS_MAY_DIFFER: Record<string, string> = {};

/** "START-END" -> its VmFlags letters, from smaps text (or the "SMAPS START-END FLAGS" lines a target prints). */
function vmFlagsByRange(smaps: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let range = '';
  for (const line of smaps.split('\n')) {
    const header = line.match(/^([0-9a-f]+-[0-9a-f]+) /);
    const printed = line.match(/^SMAPS ([0-9a-f]+-[0-9a-f]+)\s*(.*)$/);
    if (printed) out.set(printed[1], printed[2].split(/\s+/).filter(Boolean).sort());
    else if (header) range = header[1];
    else if (line.startsWith('VmFlags:')) out.set(range, line.slice(8).split(/\s+/).filter(Boolean).sort());
  }
  return out;
}

/** Every mapping's VmFlags after the restore against before the dump, letter by letter. */
function assertSameVmFlags(before: Map<string, string[]>, after: Map<string, string[]>): void {
  assert.ok(before.size > 0 && after.size > 0, `smaps was read before (${before.size} mappings) and printed after (${after.size})`);
  assert.deepEqual([...after.keys()], [...before.keys()], 'the same mappings');
  const differences: string[] = [];
  for (const [range, flags] of before) {
    const now = after.get(range) ?? [];
    const lost = flags.filter((f) => !now.includes(f) && !(f in VMFLAGS_MAY_DIFFER));
    const gained = now.filter((f) => !flags.includes(f) && !(f in VMFLAGS_MAY_DIFFER));
    if (lost.length || gained.length) differences.push(`${range}: [${flags.join(' ')}] -> [${now.join(' ')}]`);
  }
  assert.deepEqual(differences, [], 'VmFlags per mapping, before the dump -> after the restore');
}

async function restoreMemoryChecks(t: TestContext, dumpArgs: string[]): Promise<void> {
  let smapsBefore = '';
  const run = await selfCheck(t, 'restore-memory', {
    prepare: (dir) => fs.writeFileSync(path.join(dir, 'data'), Buffer.concat([Buffer.alloc(PAGE, 'A'), Buffer.alloc(PAGE, 'B'), Buffer.alloc(PAGE, 'C')])),
    args: (dir) => [path.join(dir, 'data')],
    spinning: 0,
    dumpArgs,
    beforeDump: async (pid) => {
      smapsBefore = fs.readFileSync(`/proc/${pid}/smaps`, 'latin1');
    },
  });
  await t.test('VmFlags of every mapping are those before the dump', () => {
    assert.equal(run.dumped.code, 0, run.dumped.stderr);
    assertSameVmFlags(vmFlagsByRange(smapsBefore), vmFlagsByRange(run.after));
  });
  await t.test('the image of 1 GiB of sparse memory stays small on disk', () => {
    assert.equal(run.dumped.code, 0);
    const st = fs.statSync(run.image);
    t.diagnostic(`image: ${st.size} bytes apparent, ${st.blocks * 512} allocated`);
    assert.ok(st.size > 1 << 30, 'the 1 GiB mapping is described in full (a PT_LOAD of its size)');
    assert.ok(st.blocks * 512 < 64 << 20, `only touched pages take space: ${st.blocks * 512} bytes allocated`);
  });
  await verdictSubtests(t, run, ['maps', 'auxv', 'guard', 'readonly', 'growsdown', 'shared', 'filepriv', 'sparse', 'nohuge', 'dontfork', 'wipeonfork', 'dontdump', 'mlock', 'onfault', 'readahead', 'stack']);
}

test('restore-memory: the restored address space is the one that was dumped', (t) => restoreMemoryChecks(t, []));

// With --leave-running memory comes from a fork()ed snapshot, whose mappings lack some
// VmFlags (fork clears mlock's; MADV_DONTFORK mappings are absent): they are taken from
// the target's smaps read just before the freeze.
test('restore-memory after dump --leave-running: the same address space', (t) => restoreMemoryChecks(t, ['--leave-running']));

async function restoreShmemChecks(t: TestContext, dumpArgs: string[]): Promise<void> {
  let smapsBefore = '';
  const run = await selfCheck(t, 'restore-shmem', {
    prepare: (dir) => fs.writeFileSync(path.join(dir, 'shared-data'), Buffer.alloc(2 * PAGE, 'd')),
    args: (dir) => [path.join(dir, 'shared-data')],
    spinning: 0,
    dumpArgs,
    beforeDump: async (pid) => {
      smapsBefore = fs.readFileSync(`/proc/${pid}/smaps`, 'latin1');
    },
  });
  await t.test('VmFlags of every mapping are those before the dump', () => {
    assert.equal(run.dumped.code, 0, run.dumped.stderr);
    assertSameVmFlags(vmFlagsByRange(smapsBefore), vmFlagsByRange(run.after));
  });
  await verdictSubtests(t, run, ['memfd-fd', 'memfd-map', 'anon-alias', 'anon-offset', 'file-shared']);
}

test('restore-shmem: shared memory that is one object in several places stays one object', (t) => restoreShmemChecks(t, []));
test('restore-shmem: shared memory that is one object in several places stays one object, after dump --leave-running', (t) => restoreShmemChecks(t, ['--leave-running']));

async function restoreVmflagsChecks(t: TestContext, dumpArgs: string[]): Promise<void> {
  let smapsBefore = '';
  const run = await selfCheck(t, 'restore-vmflags', {
    args: (dir) => [dir],
    spinning: 0,
    dumpArgs,
    beforeDump: async (pid) => {
      smapsBefore = fs.readFileSync(`/proc/${pid}/smaps`, 'latin1');
    },
  });
  await t.test('VmFlags of every mapping are those before the dump', () => {
    assert.equal(run.dumped.code, 0, run.dumped.stderr);
    assertSameVmFlags(vmFlagsByRange(smapsBefore), vmFlagsByRange(run.after));
  });
  await verdictSubtests(t, run, ['noreserve', 'mergeable', 'droppable', 'guard', 'unguarded', 'sealed', 'maywrite', 'deleted', 'readonly', 'futurelock']);
}

test('restore-vmflags: every VmFlags letter of every mapping comes back, and what they mean', (t) => restoreVmflagsChecks(t, []));
test('restore-vmflags: every VmFlags letter of every mapping comes back, and what they mean, after dump --leave-running', (t) => restoreVmflagsChecks(t, ['--leave-running']));

// Mappings that cannot come back as they were are refused, before anything is frozen:
// `stasis check PID` lists them, `stasis dump` exits 1 naming them and writes nothing,
// and the process runs on with the mapping still working.
for (const [kind, what, reason] of [
  ['aio', /\/\[aio\] \(deleted\)/, /AIO ring/],
  ['deleted-map', /\/mapped \(deleted\)/, /shared mapping of a deleted file that no file descriptor/],
] as const) {
  test(`refuse-mappings ${kind}: check lists the mapping as unsupported, dump refuses it by name, the process runs on`, async (t) => {
    const dir = tempDir(t, 'stasis-refuse-mapping-');
    const target = await startTarget(t, 'refuse-mappings', { args: [kind, dir] });
    const address = target.readyFields[2];
    await target.waitForLine(/^tick 2$/);
    const checked = await runStasis(['check', String(target.pid), '--json']);
    const findings = (JSON.parse(checked.stdout) as { findings: Array<{ kind: string; what: string; supported: boolean; reason: string }> }).findings;
    const finding = findings.find((f) => f.kind === 'mapping' && f.what.startsWith(`${address}-`));
    assert.ok(finding, `stasis check lists the mapping at ${address}: ${checked.stdout.slice(0, 2000)}`);
    assert.equal(finding.supported, false, `stasis check: ${JSON.stringify(finding)}`);
    assert.match(finding.what, what);
    assert.match(finding.reason, reason);

    const out = path.join(dir, 'out');
    fs.mkdirSync(out);
    const d = await dump(target.pid, path.join(out, 'refused.img'), dir);
    assert.equal(d.code, 1, `stasis dump must refuse: ${describeBytes(d)}`);
    assert.match(d.stderr, new RegExp(`${address}-[0-9a-f]+ [rwxps-]{4} [^\\n]*${what.source}[^\\n]*${reason.source}`), d.stderr);
    assert.deepEqual(fs.readdirSync(out), [], 'no image is written');
    const ticks = target.lines.length;
    await target.waitForLine(/^tick /, 5_000, ticks + 3);
    assertRunningUntraced(target.pid);
    assert.deepEqual(target.lines.filter((l) => l.startsWith('broken')), [], 'the mapping still works');
  });
}

test('no process is left behind, stopped, traced or otherwise', (t) => assertNothingLeft(t, fileStart));
