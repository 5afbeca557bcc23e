/**
 * Checkpoint/restart of programs the project did not write: python3, perl, gzip, node and bash,
 * each checkpointed at a random moment of its run, restored, and compared byte for byte
 * with a run that was never interrupted (stdout, the files it writes, its exit status).
 *
 * - python3 printing a running SHA-256 (stdout a pipe to this process; then a regular
 *   file, block-buffered, so that unflushed output lives only in its memory);
 * - perl printing a running MD5; perl reading a file line by line (an open file at an
 *   offset) and appending to a log (O_APPEND);
 * - gzip -9 compressing 16 MB from a file to a file (open regular files at offsets);
 * - python3 asyncio printing a running SHA-256 (an epoll loop and its socketpair);
 * - node printing a running SHA-256 from timers (libuv: epoll, an eventfd, a signal pipe,
 *   V8's worker threads);
 * - bash running a loop of builtins only (`read -t` on a pipe as its sleep, $RANDOM
 *   seeded), so it has no child at the dump; it exits 7, and so must `stasis restore`;
 * - python3 through three dump/restore cycles in a row (the restored process is dumped
 *   again, restored again...), in the foreground and, with perl, detached.
 *
 * The random delays come from a seeded PRNG; the seed is printed (t.diagnostic) and
 * STASIS_TEST_SEED replays it.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { sleep, tempDir, waitFor } from './helpers/targets.js';
import {
  assertNothingLeft,
  assertNotStoppedOrTraced,
  describeBytes,
  dump,
  haveCommand,
  nowTicks,
  processGone,
  realPython,
  restore,
  seededRandom,
  seedNote,
  startProgram,
  waitGone,
  type Program,
  type ProgramOptions,
  type RestoreResult,
} from './helpers/restore.js';

const fileStart = nowTicks();
const touchedPids: number[] = [];

const PYTHON_LOOP = `
import hashlib, random, sys, time
random.seed(1234)
h = hashlib.sha256()
table = {}
n = int(sys.argv[1])
for i in range(n):
    h.update(str(i).encode())
    table[i % 7] = table.get(i % 7, 0) + random.randint(1, 1000)
    print(i, h.hexdigest()[:24], table[i % 7], flush=FLUSH)
    time.sleep(0.02)
print("done", h.hexdigest(), sorted(table.items()), flush=True)
`;

const PERL_LOOP = `
use strict; use warnings; use Digest::MD5 qw(md5_hex);
$| = 1;
srand(42);
my $h = "";
my %t;
for my $i (1 .. $ARGV[0]) {
  $h = md5_hex($h . $i);
  $t{$i % 5} += int(rand(1000));
  print "$i $h $t{$i % 5}\\n";
  select(undef, undef, undef, 0.02);
}
print "done $h\\n";
`;

/** python3's asyncio: an epoll loop woken through a socketpair of its own. */
const PYTHON_ASYNCIO = `
import asyncio, hashlib, sys
async def main(n):
    h = hashlib.sha256()
    for i in range(n):
        h.update(str(i).encode())
        print(i, h.hexdigest()[:24], flush=True)
        await asyncio.sleep(0.02)
    print("done", h.hexdigest(), flush=True)
asyncio.run(main(int(sys.argv[1])))
`;

/** Node.js itself: libuv's epoll loop, its eventfd and signal pipe, V8's worker threads. */
const NODE_LOOP = `
const { createHash } = require('node:crypto');
const n = Number(process.argv[2]);
let h = '';
let i = 0;
const tick = () => {
  h = createHash('sha256').update(h + i).digest('hex');
  console.log(i, h.slice(0, 24));
  if (++i < n) setTimeout(tick, 20);
  else console.log('done', h);
};
tick();
`;

/** bash with builtins only: no child process once the loop runs ($(seq) is reaped before). */
const BASH_LOOP = 'RANDOM=42; for i in $(seq 1 $1); do echo "$i $RANDOM"; read -t 0.03 -u 0 || :; done; echo done; exit 7';

interface Run {
  stdout: Buffer;
  code: number | null;
  signal: NodeJS.Signals | null;
  ms: number;
}

/** A run that is never interrupted: the oracle. */
async function uninterrupted(t: TestContext, cmd: string, args: string[], opts: ProgramOptions = {}): Promise<Run> {
  const start = performance.now();
  const p = startProgram(t, cmd, args, opts);
  const r = await p.exited;
  return { stdout: p.stdout(), code: r.code, signal: r.signal, ms: performance.now() - start };
}

interface Checkpointed {
  program: Program;
  image: string;
  delayMs: number;
  dumpMs: number;
}

/**
 * Starts the program, waits for `firstOutput` (bytes of stdout, or until it has started
 * when 0), then a random delay below `maxDelayMs`, and dumps it. If the program finished
 * before it could be frozen, tries again with a shorter delay (up to 3 times).
 */
async function checkpointAtRandom(
  t: TestContext,
  label: string,
  dir: string,
  start: () => Program,
  opts: { maxDelayMs: number; firstOutput?: number; before?: () => void },
): Promise<Checkpointed> {
  const rnd = seededRandom(label);
  let max = opts.maxDelayMs;
  for (let attempt = 0; attempt < 3; attempt++, max /= 2) {
    opts.before?.();
    const program = start();
    touchedPids.push(program.pid);
    if (opts.firstOutput) await program.waitForOutput(opts.firstOutput);
    const delayMs = Math.floor(rnd.next() * max);
    await sleep(delayMs);
    const image = path.join(dir, `${label}.img`);
    const d = await dump(program.pid, image, dir);
    if (d.code !== 0) {
      await Promise.race([program.exited, sleep(200)]);
      if (!program.alive() && !fs.existsSync(image)) {
        const exit = await program.exited;
        if (exit.code !== null) {
          // finished by itself before the freeze: not what this test is about
          t.diagnostic(`${label}: the program finished before the dump (delay ${delayMs} ms); again with a shorter delay`);
          continue;
        }
      }
      await program.stop();
      assert.fail(`stasis dump ${program.pid} failed:\n${describeBytes(d)}`);
    }
    const exit = await program.exited;
    assert.equal(exit.signal, 'SIGKILL', `the dump kills the process once the image is written (it exited ${JSON.stringify(exit)})`);
    t.diagnostic(`${label}: seed ${rnd.seed} (${seedNote()}), dumped after ${delayMs} ms, pid ${program.pid}, ${d.json?.threads} threads, ${d.json?.mappings} mappings, frozen ${d.json?.frozenMs?.toFixed(0)} ms, dump ${d.ms.toFixed(0)} ms`);
    return { program, image, delayMs, dumpMs: d.ms };
  }
  throw new Error(`${label}: the program always finished before the dump could freeze it`);
}

/** Where two outputs first differ, for assertion messages. */
function firstDifference(a: Buffer, b: Buffer): string {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  const ctx = (x: Buffer) => JSON.stringify(x.subarray(Math.max(0, i - 80), i + 80).toString('latin1'));
  return `lengths ${a.length} (got) vs ${b.length} (expected); first difference at byte ${i}:\n  got      ${ctx(a)}\n  expected ${ctx(b)}`;
}

function assertSameBytes(got: Buffer, expected: Buffer, what: string): void {
  if (!got.equals(expected)) assert.fail(`${what} differs from the uninterrupted run: ${firstDifference(got, expected)}`);
}

async function assertRestoredGone(pid: number): Promise<void> {
  assert.ok(await waitGone(pid, 5_000), `process ${pid} is still there after its restore finished`);
  assertNotStoppedOrTraced([pid], `pid ${pid}`);
}

// ---------------------------------------------------------------------------------------

test('python3 (stdout a pipe): restored at a random moment, prints exactly what an uninterrupted run prints; twice from one image', async (t) => {
  const py = realPython();
  if (!py) return t.skip('no python3');
  const dir = tempDir(t, 'stasis-restore-py-');
  const script = path.join(dir, 'loop.py');
  fs.writeFileSync(script, PYTHON_LOOP.replace('FLUSH', 'True'));
  const ref = await uninterrupted(t, py, [script, '60']);
  assert.equal(ref.code, 0);
  const c = await checkpointAtRandom(t, 'python-pipe', dir, () => startProgram(t, py, [script, '60']), { maxDelayMs: 900, firstOutput: 1 });
  const before = c.program.stdout();
  const r = await restore(t, c.image, { scratch: dir, pid: c.program.pid, timeoutMs: 30_000 });
  assert.equal(r.code, 0, `stasis restore exits with python's status (0):\n${describeBytes(r)}`);
  assertSameBytes(Buffer.concat([before, r.stdout]), ref.stdout, 'stdout before the dump + after the restore');
  await assertRestoredGone(c.program.pid);
  // an image is not used up: restored again, it does the same again
  const again = await restore(t, c.image, { scratch: dir, pid: c.program.pid, timeoutMs: 30_000 });
  assert.equal(again.code, 0, `a second restore of the same image:\n${describeBytes(again)}`);
  assertSameBytes(again.stdout, r.stdout, 'the second restore of the image');
  await assertRestoredGone(c.program.pid);
});

test('python3 (stdout a regular file, block-buffered): the file is the same as after an uninterrupted run', async (t) => {
  const py = realPython();
  if (!py) return t.skip('no python3');
  const dir = tempDir(t, 'stasis-restore-pyf-');
  const script = path.join(dir, 'loop.py');
  fs.writeFileSync(script, PYTHON_LOOP.replace('FLUSH', 'False'));
  const refFile = path.join(dir, 'ref.txt');
  const ref = await uninterrupted(t, py, [script, '60'], { stdout: { file: refFile } });
  assert.equal(ref.code, 0);
  const outFile = path.join(dir, 'out.txt');
  const c = await checkpointAtRandom(t, 'python-file', dir, () => startProgram(t, py, [script, '60'], { stdout: { file: outFile } }), { maxDelayMs: 1000 });
  // like `python3 loop.py > out.txt & stasis dump $!; stasis restore IMG >> out.txt`
  const r = await restore(t, c.image, { scratch: dir, pid: c.program.pid, stdout: { file: outFile, append: true }, timeoutMs: 30_000 });
  assert.equal(r.code, 0, `stasis restore exits with python's status:\n${describeBytes(r)}`);
  assertSameBytes(fs.readFileSync(outFile), fs.readFileSync(refFile), 'out.txt');
  await assertRestoredGone(c.program.pid);
});

/** Reads its input file line by line and appends to a log: open files at offsets, O_APPEND. */
const PERL_FILES = `
use strict; use warnings; use Digest::MD5 qw(md5_hex);
my ($in, $log) = @ARGV;
open(my $IN, '<', $in) or die "$in: $!";
open(my $LOG, '>>', $log) or die "$log: $!";
select($LOG); $| = 1; select(STDOUT); $| = 1;
my $h = "";
while (my $line = <$IN>) {
  $h = md5_hex($h . $line);
  print $LOG length($line), " $h\n";
  print "$. $h\n";
  select(undef, undef, undef, 0.02);
}
print "done $h\n";
`;

/**
 * The interpreter `cmd` runs `source` (written to DIR/loop.EXT) with argument 60; a run
 * dumped at a random moment and restored in the foreground prints, before the dump and
 * after the restore together, exactly what an uninterrupted run prints, and exits 0.
 */
async function restoredPrintsTheSame(t: TestContext, label: string, cmd: string, source: string, extension: string): Promise<void> {
  const dir = tempDir(t, `stasis-restore-${label}-`);
  const script = path.join(dir, `loop.${extension}`);
  fs.writeFileSync(script, source);
  const ref = await uninterrupted(t, cmd, [script, '60']);
  assert.equal(ref.code, 0, ref.stdout.toString());
  const c = await checkpointAtRandom(t, label, dir, () => startProgram(t, cmd, [script, '60']), { maxDelayMs: 900, firstOutput: 1 });
  const before = c.program.stdout();
  const r = await restore(t, c.image, { scratch: dir, pid: c.program.pid, timeoutMs: 30_000 });
  assert.equal(r.code, 0, `stasis restore exits with ${label}'s status:\n${describeBytes(r)}`);
  assertSameBytes(Buffer.concat([before, r.stdout]), ref.stdout, 'stdout before the dump + after the restore');
  await assertRestoredGone(c.program.pid);
}

test('perl: restored at a random moment, prints exactly what an uninterrupted run prints', async (t) => {
  if (!haveCommand('perl')) return t.skip('no perl');
  await restoredPrintsTheSame(t, 'perl', 'perl', PERL_LOOP, 'pl');
});

test('python3 asyncio (epoll, a socketpair to wake its loop): restored at a random moment, prints exactly what an uninterrupted run prints', async (t) => {
  const python = realPython();
  if (!python) return t.skip('no python3');
  await restoredPrintsTheSame(t, 'asyncio', python, PYTHON_ASYNCIO, 'py');
});

test('node (epoll, eventfd, signal pipe, worker threads): restored at a random moment, prints exactly what an uninterrupted run prints', async (t) => {
  await restoredPrintsTheSame(t, 'node', process.execPath, NODE_LOOP, 'cjs');
});

test('perl reading a file line by line and appending to a log: the same stdout and the same log', async (t) => {
  if (!haveCommand('perl')) return t.skip('no perl');
  const dir = tempDir(t, 'stasis-restore-perl-files-');
  const script = path.join(dir, 'files.pl');
  fs.writeFileSync(script, PERL_FILES);
  const input = path.join(dir, 'input.txt');
  fs.writeFileSync(input, Array.from({ length: 60 }, (_, i) => `line ${i} ${'x'.repeat(i * 37 % 200)}\n`).join(''));
  const refLog = path.join(dir, 'ref.log');
  const log = path.join(dir, 'run.log');
  fs.writeFileSync(refLog, 'an existing first line\n');
  fs.writeFileSync(log, 'an existing first line\n');
  const ref = await uninterrupted(t, 'perl', [script, input, refLog]);
  assert.equal(ref.code, 0, ref.stdout.toString());
  const c = await checkpointAtRandom(t, 'perl-files', dir, () => startProgram(t, 'perl', [script, input, log]), {
    maxDelayMs: 900,
    firstOutput: 1,
    before: () => fs.writeFileSync(log, 'an existing first line\n'),
  });
  const before = c.program.stdout();
  const r = await restore(t, c.image, { scratch: dir, pid: c.program.pid, timeoutMs: 30_000 });
  assert.equal(r.code, 0, `stasis restore exits with perl's status:\n${describeBytes(r)}`);
  assertSameBytes(Buffer.concat([before, r.stdout]), ref.stdout, 'stdout before the dump + after the restore');
  assertSameBytes(fs.readFileSync(log), fs.readFileSync(refLog), 'the log (opened with >>)');
  await assertRestoredGone(c.program.pid);
});

/** 16 MB of text that compresses like prose, the same every time. */
function writeCorpus(file: string, bytes: number): void {
  let a = 0x9e3779b9;
  const rnd = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), a | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const words = Array.from({ length: 4000 }, () => Array.from({ length: 2 + Math.floor(rnd() * 8) }, () => String.fromCharCode(97 + Math.floor(rnd() * 26))).join(''));
  const parts: string[] = [];
  let n = 0;
  while (n < bytes) {
    const line = Array.from({ length: 12 }, () => words[Math.floor(rnd() * words.length)]).join(' ') + ` ${Math.floor(rnd() * 1e9)}\n`;
    parts.push(line);
    n += line.length;
  }
  fs.writeFileSync(file, parts.join(''));
}

test('gzip -9 of 16 MB, file to file: restored at a random moment, writes the same .gz and exits 0', async (t) => {
  if (!haveCommand('gzip')) return t.skip('no gzip');
  const dir = tempDir(t, 'stasis-restore-gzip-');
  const refDir = path.join(dir, 'ref');
  const runDir = path.join(dir, 'run');
  fs.mkdirSync(refDir);
  fs.mkdirSync(runDir);
  writeCorpus(path.join(refDir, 'corpus.txt'), 16 << 20);
  fs.copyFileSync(path.join(refDir, 'corpus.txt'), path.join(runDir, 'corpus.txt'));
  const args = ['-9', '-n', '-k', '-f', 'corpus.txt'];
  const ref = await uninterrupted(t, 'gzip', args, { cwd: refDir });
  assert.equal(ref.code, 0);
  const expected = fs.readFileSync(path.join(refDir, 'corpus.txt.gz'));
  t.diagnostic(`uninterrupted gzip took ${ref.ms.toFixed(0)} ms`);
  const c = await checkpointAtRandom(t, 'gzip', runDir, () => startProgram(t, 'gzip', args, { cwd: runDir }), {
    maxDelayMs: Math.max(100, ref.ms * 0.5),
    before: () => fs.rmSync(path.join(runDir, 'corpus.txt.gz'), { force: true }),
  });
  const partial = fs.existsSync(path.join(runDir, 'corpus.txt.gz')) ? fs.statSync(path.join(runDir, 'corpus.txt.gz')).size : -1;
  t.diagnostic(`corpus.txt.gz had ${partial} bytes at the dump (of ${expected.length})`);
  // stasis runs elsewhere: gzip's cwd is part of what is restored
  const r = await restore(t, c.image, { scratch: dir, pid: c.program.pid, timeoutMs: 60_000 });
  assert.equal(r.code, ref.code, `stasis restore exits with gzip's status (${ref.code}):\n${describeBytes(r)}`);
  assert.equal(r.stderr, '', 'gzip (and stasis) printed nothing on stderr');
  assertSameBytes(fs.readFileSync(path.join(runDir, 'corpus.txt.gz')), expected, 'corpus.txt.gz');
  assertSameBytes(fs.readFileSync(path.join(runDir, 'corpus.txt')), fs.readFileSync(path.join(refDir, 'corpus.txt')), 'the input file (kept with -k)');
  await assertRestoredGone(c.program.pid);
});

test('bash, a loop of builtins only (read -t as sleep): restored at a random moment, prints the same lines', async (t) => {
  if (!haveCommand('bash')) return t.skip('no bash');
  const dir = tempDir(t, 'stasis-restore-bash-');
  const args = ['-c', BASH_LOOP, 'bash', '40'];
  // stdin: a pipe nobody writes to, so `read -t` waits its whole timeout, before and after
  const ref = await uninterrupted(t, 'bash', args, { stdin: 'pipe' });
  assert.equal(ref.code, 7);
  const c = await checkpointAtRandom(t, 'bash', dir, () => startProgram(t, 'bash', args, { stdin: 'pipe' }), { maxDelayMs: 900, firstOutput: 1 });
  const before = c.program.stdout();
  const r = await restore(t, c.image, { scratch: dir, pid: c.program.pid, stdin: 'pipe', timeoutMs: 30_000 });
  assert.equal(r.code, 7, `stasis restore exits with bash's status (exit 7):\n${describeBytes(r)}`);
  assertSameBytes(Buffer.concat([before, r.stdout]), ref.stdout, 'stdout before the dump + after the restore');
  await assertRestoredGone(c.program.pid);
});

// ---------------------------------------------------------------------------------------
// again and again

test('python3: three dump/restore cycles in a row (restored process dumped again) give the uninterrupted output', async (t) => {
  const py = realPython();
  if (!py) return t.skip('no python3');
  const dir = tempDir(t, 'stasis-restore-cycles-');
  const script = path.join(dir, 'loop.py');
  fs.writeFileSync(script, PYTHON_LOOP.replace('FLUSH', 'True'));
  const ref = await uninterrupted(t, py, [script, '100']);
  assert.equal(ref.code, 0);
  const rnd = seededRandom('python-cycles');
  const c = await checkpointAtRandom(t, 'python-cycle0', dir, () => startProgram(t, py, [script, '100']), { maxDelayMs: 300, firstOutput: 1 });
  const pid = c.program.pid;
  const pieces: Buffer[] = [c.program.stdout()];
  let image = c.image;
  for (let cycle = 1; cycle <= 3; cycle++) {
    // like `stasis restore IMG | consumer`: python's stdout, a pipe, is re-attached to the
    // restore's, again a pipe to this process
    let printed: () => void = () => undefined;
    const grown = new Promise<void>((resolve) => (printed = resolve));
    const restoring = restore(t, image, { scratch: dir, pid, stdout: 'pipe', timeoutMs: 60_000, watch: (out) => out.length > 0 && printed() });
    let r: RestoreResult;
    if (cycle < 3) {
      // let it print at least a line as the restored process, then dump it again
      await Promise.race([grown, restoring.then((x) => assert.fail(`restore ${cycle} ended early:\n${describeBytes(x)}`))]);
      await sleep(Math.floor(rnd.next() * 150));
      const next = path.join(dir, `cycle${cycle}.img`);
      const d = await dump(pid, next, dir);
      assert.equal(d.code, 0, `dump #${cycle + 1} (of the restored process) failed:\n${describeBytes(d)}`);
      r = await restoring;
      assert.equal(r.code, 128 + 9, `restore ${cycle} exits 137: its process was killed by the next dump\n${describeBytes(r)}`);
      image = next;
    } else {
      r = await restoring;
      assert.equal(r.code, 0, `the last restore exits with python's status:\n${describeBytes(r)}`);
    }
    pieces.push(r.stdout);
    t.diagnostic(`cycle ${cycle}: ${pieces[pieces.length - 1].length} bytes printed by restore ${cycle}`);
  }
  t.diagnostic(`seed ${rnd.seed} (${seedNote()})`);
  assertSameBytes(Buffer.concat(pieces), ref.stdout, 'the output of the original + 3 restored processes');
  await assertRestoredGone(pid);
});

test('perl, detached: three dump/restore --detach cycles writing to one file give the uninterrupted file', async (t) => {
  if (!haveCommand('perl')) return t.skip('no perl');
  const dir = tempDir(t, 'stasis-restore-perl-detach-');
  const script = path.join(dir, 'loop.pl');
  fs.writeFileSync(script, PERL_LOOP);
  const refFile = path.join(dir, 'ref.txt');
  const ref = await uninterrupted(t, 'perl', [script, '100'], { stdout: { file: refFile } });
  assert.equal(ref.code, 0);
  const outFile = path.join(dir, 'out.txt');
  const rnd = seededRandom('perl-detach');
  const c = await checkpointAtRandom(t, 'perl-cycle0', dir, () => startProgram(t, 'perl', [script, '100'], { stdout: { file: outFile } }), { maxDelayMs: 300 });
  const pid = c.program.pid;
  let image = c.image;
  const restoreOuts: string[] = [];
  for (let cycle = 1; cycle <= 3; cycle++) {
    const size = fs.statSync(outFile).size;
    // The restore's own stdout is a file of its own: perl's stdout, a regular file, is
    // reopened at its offset (only stdio leading outside the process is re-attached).
    const restoreOut = path.join(dir, `restore${cycle}.out`);
    // cycle 1: -d --pidfile; cycle 2: --detach --json; cycle 3: --detach
    const pidfile = path.join(dir, 'perl.pid');
    const extra = cycle === 1 ? ['--pidfile', pidfile] : cycle === 2 ? ['--json'] : [];
    const r = await restore(t, image, { scratch: dir, pid, detach: true, extra, stdout: { file: restoreOut }, timeoutMs: 30_000 });
    assert.equal(r.code, 0, `restore --detach #${cycle}:\n${describeBytes(r)}`);
    if (cycle === 2) {
      const json = JSON.parse(r.stdout.toString()) as { pid: number; threads: number; warnings: string[] };
      assert.equal(json.pid, pid, 'restore --detach --json prints {pid, ...}');
      assert.equal(json.threads, 1);
      assert.ok(Array.isArray(json.warnings));
    } else {
      assert.equal(r.restoredPid, pid, `restore --detach prints the PID (${pid}), got ${JSON.stringify(r.stdout.toString())}`);
      restoreOuts.push(restoreOut);
    }
    if (cycle === 1) assert.equal(fs.readFileSync(pidfile, 'utf8').trim(), String(pid), '--pidfile holds the PID');
    assert.ok(!processGone(pid), `process ${pid} runs after restore --detach returned`);
    assertNotStoppedOrTraced([pid], `the detached process ${pid}`);
    if (cycle < 3) {
      // it prints again (into out.txt, or into the restore's stdout if that is where it went)
      const fileSize = (f: string) => (fs.existsSync(f) ? fs.statSync(f).size : 0);
      const printedOwn = fs.existsSync(restoreOut) ? fs.readFileSync(restoreOut).length : 0;
      await waitFor(() => fileSize(outFile) > size || fileSize(restoreOut) > printedOwn, 'the restored perl to print', 10_000);
      await sleep(Math.floor(rnd.next() * 150));
      const next = path.join(dir, `cycle${cycle}.img`);
      const d = await dump(pid, next, dir);
      assert.equal(d.code, 0, `dump #${cycle + 1} (of the detached process) failed:\n${describeBytes(d)}`);
      assert.ok(await waitGone(pid, 5_000), 'the dumped process is gone (killed and reaped by init)');
      image = next;
    } else {
      assert.ok(await waitGone(pid, 30_000), 'the last restored process finishes');
    }
  }
  t.diagnostic(`seed ${rnd.seed} (${seedNote()})`);
  for (const f of restoreOuts) {
    assert.equal(fs.readFileSync(f, 'latin1'), `${pid}\n`, `${path.basename(f)}: restore --detach printed only the PID; perl's output went to ${outFile}, where its stdout pointed`);
  }
  assertSameBytes(fs.readFileSync(outFile), fs.readFileSync(refFile), 'out.txt');
});

test('no process is left behind, stopped, traced or otherwise', (t) => assertNothingLeft(t, fileStart, touchedPids));
