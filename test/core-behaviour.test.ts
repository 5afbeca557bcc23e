/**
 * What a live core dump does to the process: it keeps running, it is paused only briefly,
 * it gets no SIGCHLD and no child (not even a zombie), and it is not left traced.
 *
 * The target (test/targets/counter.c) measures its own largest gap between two loop
 * iterations and reports, on SIGUSR1, that gap, how often its SIGCHLD handler ran and
 * how many children it has. The gap bound is generous (this is not a benchmark): it is
 * there to catch a dump that stops the process for the whole write.
 *
 * With STASIS_TEST_CORE_WITH=gcore the same steps run with gcore, which stops the process
 * for the whole dump: the gap is then only reported, and --no-snapshot is skipped.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  assertRunningUntraced,
  childrenOf,
  coreTool,
  describe as describeRun,
  makeCore,
  readFileOrNull,
  leftovers,
  waitFor,
  startTarget,
  tempDir,
  waitSettled,
  type CoreResult,
  type Target,
} from './helpers/targets.js';
import { readSegments } from './helpers/elf.js';
import { gdbCore, printedValue } from './helpers/gdb.js';
// also marks close-on-exec the fds this process inherited: a dump refuses a target holding them
import { dump, describeBytes } from './helpers/restore.js';

/**
 * The bound on the target's largest gap across a snapshot dump. With 1 GiB of dirty
 * memory a snapshot pauses the target for tens of ms and a stop-the-world dump (gcore)
 * for about a second, so the bound separates the two without being a benchmark.
 */
const MAX_GAP_MS = 500;
const BIG_MIB = 1024;
const SMALL_MIB = 64;

interface Report {
  seq: number;
  iterations: number;
  maxGapUs: number;
  totalMaxGapUs: number;
  sigchld: number;
  children: number;
  waitable: number;
}

const reportSeq = new WeakMap<Target, number>();

/** Sends SIGUSR1 and parses the report line it makes the counter print. */
async function report(target: Target): Promise<Report> {
  const seq = (reportSeq.get(target) ?? 0) + 1;
  reportSeq.set(target, seq);
  process.kill(target.pid, 'SIGUSR1');
  const line = await target.waitForLine(new RegExp(`^report seq=${seq} `), 10_000);
  const field = (k: string) => {
    const m = line.match(new RegExp(`\\b${k}=(-?\\d+)`));
    assert.ok(m, `no ${k} in ${line}`);
    return Number(m[1]);
  };
  return {
    seq,
    iterations: field('iterations'),
    maxGapUs: field('max_gap_us'),
    totalMaxGapUs: field('total_max_gap_us'),
    sigchld: field('sigchld'),
    children: field('children'),
    waitable: field('waitable'),
  };
}

/** Processes other than `pid` whose parent is `pid` (zombies included), from /proc. */
function processesWithParent(pid: number): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const st = readFileOrNull(`/proc/${e}/stat`);
    const m = st?.match(/^\d+ \(.*\) \S (\d+)/s);
    if (m && Number(m[1]) === pid) out.push(Number(e));
  }
  return out;
}

/** Checks that hold after every dump, whatever its mode. */
async function checkUnharmed(t: TestContext, target: Target, before: Report, made: CoreResult, file: string, opts: { boundGap: boolean; ballastMib: number }): Promise<Report> {
  assert.equal(made.code, 0, `${made.tool} failed: ${describeRun(made)}`);
  assert.ok(fs.existsSync(file), `no core at ${file}`);
  // right after the command returns: nothing left behind
  assertRunningUntraced(target.pid, 'the target right after the dump');
  assert.deepEqual(childrenOf(target.pid), [], 'the target has no child (not even a zombie) after the dump');
  assert.deepEqual(processesWithParent(target.pid), [], 'no process has the target as parent');

  // it keeps running: a new tick after the dump
  const from = target.lines.length;
  await target.waitForLine(/^tick /, 5_000, from);
  const after = await report(target);
  t.diagnostic(`${made.tool}: largest gap across the dump ${(after.maxGapUs / 1000).toFixed(1)} ms (before the dump: ${(before.maxGapUs / 1000).toFixed(1)} ms)` + (made.json ? `; it says pauseMs=${made.json.pauseMs}, totalMs=${made.json.totalMs}` : ''));
  assert.ok(after.iterations > before.iterations, 'the counter went on');
  assert.equal(after.sigchld, 0, 'the SIGCHLD handler never ran');
  assert.equal(after.children, 0, 'the target sees no child in /proc/self/task/*/children');
  assert.equal(after.waitable, 0, 'waitid(P_ALL, WNOHANG|WNOWAIT) finds nothing to reap');
  if (opts.boundGap) {
    assert.ok(after.maxGapUs < MAX_GAP_MS * 1000, `the target was paused for ${after.maxGapUs} us (bound ${MAX_GAP_MS} ms)`);
  }
  assertRunningUntraced(target.pid, 'the target after its report');

  // and the core is a core of it
  const g = await gdbCore(target.exe, file, ['p g_ballast_size', 'p g_ballast[4096 * 1000]', 'p g_ballast[4096 * 1000 + 4095]', 'p g_iterations > 0', 'p g_sigchld_count']);
  assert.equal(printedValue(g.sections[0]), String(opts.ballastMib * 1024 * 1024), g.raw);
  assert.equal(printedValue(g.sections[1]), printedValue(g.sections[2]));
  // counter.c fills page N of the ballast with the byte (N | 1): page 1000 -> 0xe9, a char -23
  assert.equal(printedValue(g.sections[1]), "-23 '\\351'", 'g_ballast page 1000 holds what the program wrote');
  assert.equal(printedValue(g.sections[3]), '1');
  assert.equal(printedValue(g.sections[4]), '0');
  return after;
}

async function startCounter(t: TestContext, ballastMib: number): Promise<{ target: Target; before: Report }> {
  const target = await startTarget(t, 'counter', { args: ['--ballast', String(ballastMib)], readyTimeoutMs: 60_000 });
  await target.waitForLine(/^tick 200 /, 10_000); // ~0.2 s of steady running
  const before = await report(target);
  assert.equal(before.sigchld, 0);
  assert.equal(before.children, 0);
  return { target, before };
}

test('after a live core dump the target keeps running, unpaused, childless and untraced', async (t) => {
  const { target, before } = await startCounter(t, BIG_MIB);
  const file = path.join(tempDir(t), 'counter.core');
  const made = await makeCore(target.pid, file);
  if (made.json) assert.equal(made.json.snapshot, true, 'snapshot is the default');
  await checkUnharmed(t, target, before, made, file, { boundGap: made.tool === 'stasis', ballastMib: BIG_MIB });
});

test('three dumps in a row leave no trace either', async (t) => {
  const { target, before } = await startCounter(t, SMALL_MIB);
  const dir = tempDir(t);
  let last = before;
  for (let i = 0; i < 3; i++) {
    const file = path.join(dir, `counter.${i}.core`);
    const made = await makeCore(target.pid, file);
    last = await checkUnharmed(t, target, last, made, file, { boundGap: made.tool === 'stasis', ballastMib: SMALL_MIB });
    fs.rmSync(file);
  }
  assert.equal(last.sigchld, 0);
});

test('--no-snapshot: the target is stopped for the dump, then runs on untraced', async (t) => {
  if (coreTool() === 'gcore') {
    t.skip('gcore has no --no-snapshot (it always stops the process for the whole dump)');
    return;
  }
  const { target, before } = await startCounter(t, SMALL_MIB);
  const file = path.join(tempDir(t), 'counter.core');
  const made = await makeCore(target.pid, file, ['--no-snapshot']);
  assert.equal(made.code, 0, describeRun(made));
  assert.equal(made.json?.snapshot, false, 'json.snapshot is false with --no-snapshot');
  await checkUnharmed(t, target, before, made, file, { boundGap: false, ballastMib: SMALL_MIB });
});

// Memory a fork child does not have as it is (MADV_WIPEONFORK: zeros; MADV_DONTFORK:
// absent) is copied while the target is stopped, so the core is of one instant: a thread
// that counts into an ordinary page and into those two in lockstep shows one count in all.
test('a core is of one instant, MADV_WIPEONFORK and MADV_DONTFORK memory included', async (t) => {
  const target = await startTarget(t, 'fork-blind');
  await waitSettled(target.pid, { spinning: 1 });
  const [plain, wiped, unforked] = target.readyFields.slice(2, 5).map((hex) => parseInt(hex, 16));
  const file = path.join(tempDir(t), 'fork-blind.core');
  const made = await makeCore(target.pid, file);
  assert.equal(made.code, 0, describeRun(made));
  const segments = await readSegments(file);
  const fd = fs.openSync(file, 'r');
  const at = (address: number): bigint => {
    const s = segments.find((seg) => seg.type === 'LOAD' && seg.vaddr <= address && address < seg.vaddr + seg.filesz);
    assert.ok(s, `the core stores 0x${address.toString(16)}`);
    const b = Buffer.alloc(8);
    fs.readSync(fd, b, 0, 8, s.offset + (address - s.vaddr));
    return b.readBigUInt64LE(0);
  };
  try {
    const counts = { plain: at(plain), wiped: at(wiped), unforked: at(unforked) };
    t.diagnostic(`counts in the core: ${JSON.stringify(counts, (_k, v) => (typeof v === 'bigint' ? Number(v) : v))}`);
    assert.ok(counts.plain > 1n, 'the thread was counting');
    // the stores go plain, wiped, unforked: the freeze can fall between two of them
    assert.ok(counts.plain - counts.wiped <= 1n && counts.plain >= counts.wiped, `MADV_WIPEONFORK page: ${counts.wiped}, ordinary page: ${counts.plain}`);
    assert.ok(counts.plain - counts.unforked <= 1n && counts.plain >= counts.unforked, `MADV_DONTFORK page: ${counts.unforked}, ordinary page: ${counts.plain}`);
  } finally {
    fs.closeSync(fd);
  }
  assertRunningUntraced(target.pid);
});

/** The byte at `address` in a core or image, from the PT_LOAD that stores it (undefined: a hole or not stored). */
async function byteInCore(file: string, address: number): Promise<string | undefined> {
  const segments = await readSegments(file);
  const s = segments.find((seg) => seg.type === 'LOAD' && seg.vaddr <= address && address < seg.vaddr + seg.filesz);
  if (!s) return undefined;
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, s.offset + (address - s.vaddr));
    return b.toString('latin1');
  } finally {
    fs.closeSync(fd);
  }
}

const vmRssKib = (pid: number): number => Number(readFileOrNull(`/proc/${pid}/status`)?.match(/^VmRSS:\s*(\d+)/m)?.[1] ?? NaN);

// Memory the snapshot lacks is copied while the target is stopped; only the pages that
// exist must be copied. A V8 isolate reserves a huge PROT_NONE MADV_DONTFORK area and
// uses little of it: reading the whole area through /proc/PID/mem populated it (seconds
// of pause, hundreds of MiB of RSS). test/targets/reserve.c has 1 GiB of such a reserve
// and 256 MiB of shared memory, 3 and 2 pages used.
test('a live core or dump --leave-running copies only the pages a MADV_DONTFORK reserve or shared memory has', async (t) => {
  if (coreTool() === 'gcore') {
    t.skip('gcore stops the process for the whole dump and copies nothing beforehand');
    return;
  }
  const target = await startTarget(t, 'reserve');
  const [reserve, shared] = target.readyFields.slice(2, 4).map((hex) => parseInt(hex, 16));
  const PAGE = 4096;
  const expected: Array<[number, string]> = [
    [reserve, 'a'],
    [reserve + PAGE + 100, 'b'],
    [reserve + (512 << 20) + 4095, String.fromCharCode(97 + (((512 << 20) / PAGE) % 26))],
    [shared, 'a'],
    [shared + (128 << 20), String.fromCharCode(97 + (((128 << 20) / PAGE) % 26))],
  ];
  const dir = tempDir(t);
  const rssBefore = vmRssKib(target.pid);
  const core = path.join(dir, 'reserve.core');
  const made = await makeCore(target.pid, core);
  assert.equal(made.code, 0, describeRun(made));
  const rssAfterCore = vmRssKib(target.pid);
  t.diagnostic(`VmRSS ${rssBefore} kB before, ${rssAfterCore} kB after stasis core; pause ${made.json?.pauseMs} ms`);
  assert.ok(rssAfterCore - rssBefore < 8 * 1024, `stasis core grew the target's VmRSS from ${rssBefore} to ${rssAfterCore} kB`);
  assert.ok((made.json?.pauseMs ?? Infinity) < MAX_GAP_MS, `the target was paused ${made.json?.pauseMs} ms`);
  for (const [address, byte] of expected) assert.equal(await byteInCore(core, address), byte, `the core holds the page at 0x${address.toString(16)}`);
  assert.equal(await byteInCore(core, reserve + 2 * PAGE), undefined, 'an untouched page of the reserve is a hole');

  const image = path.join(dir, 'reserve.img');
  const dumped = await dump(target.pid, image, dir, ['--leave-running']);
  assert.equal(dumped.code, 0, describeBytes(dumped));
  const rssAfterDump = vmRssKib(target.pid);
  const frozenMs = dumped.json?.frozenMs ?? Infinity;
  t.diagnostic(`VmRSS ${rssAfterDump} kB after dump --leave-running; frozen ${frozenMs} ms`);
  assert.ok(rssAfterDump - rssBefore < 8 * 1024, `dump --leave-running grew the target's VmRSS from ${rssBefore} to ${rssAfterDump} kB`);
  assert.ok(frozenMs < MAX_GAP_MS, `the target was frozen ${frozenMs} ms`);
  for (const [address, byte] of expected) assert.equal(await byteInCore(image, address), byte, `the image holds the page at 0x${address.toString(16)}`);
  const allocated = fs.statSync(image).blocks * 512;
  assert.ok(allocated < 32 << 20, `the image takes ${allocated} bytes on disk`);
  assertRunningUntraced(target.pid);
});

test('no process is left behind, stopped, traced or otherwise', async () => {
  await waitFor(() => leftovers().length === 0, 'leftovers to go', 3_000).catch(() => undefined);
  assert.deepEqual(leftovers(), []);
});
