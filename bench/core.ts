/**
 * Benchmark of live core dumps: `stasis core` (copy-on-write snapshot), `stasis core
 * --no-snapshot` (stop, copy, release) and gdb's `gcore`, side by side in one run, against
 * the machine's limits for the same RSS (fork() time, memcpy bandwidth).
 *
 * The pause is measured from inside the target (bench/targets/pause.c): a loop that reads
 * CLOCK_MONOTONIC and reports the largest gap between iterations on SIGUSR1, so each
 * measurement isolates one dump. Absolute times on shared machines are noisy; the ratios
 * are what matter, hence everything in one run, interleaved.
 *
 *   npm run build && npm run bench -- [--sizes 256,1024] [--reps 3] ...   (see --help)
 *
 * Only node built-ins. Every process started here is reaped; none is left stopped or traced.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  DEFAULT_STASIS, UsageError, intArg, type CommonOptions, commonOption, parseNames, parseOrExit, runMain, live, run, type RunResult,
  procStat, descendants, killTree, tracedOrStopped, lastLine, compileTargets, warnIfUnbuilt, freeMiB, killLive, removeDirs,
  onSignals, median, table, type Ratio, div, aimed, machineInfo,
} from './common.js';

const USAGE = `usage: npm run bench -- [OPTIONS]     (or: node dist/bench/core.js [OPTIONS])

Live core dumps of a C target with N MiB of touched memory: stasis core (snapshot),
stasis core --no-snapshot and gcore, with the pause seen by the target, the total time,
the core's size, and the machine's fork() time and memcpy bandwidth for the same RSS.

options:
  --sizes LIST       MiB of touched memory, comma-separated (default 256,1024; 2G = 2048)
  --reps N           measurements of each method per size (default 5)
  --threads N        threads in the target, main included (default 4)
  --methods LIST     any of snapshot,no-snapshot,gcore,idle,write (default all)
  --stasis FILE      the stasis entry point run with node (default <repo>/bin/stasis.js)
  --dir DIR          where core files are written, each deleted after its measurement
                     (default the system temp dir)
  --thp              madvise(MADV_HUGEPAGE) the target's and the fork test's memory
  --dirty            the target also writes one page of its memory per loop iteration, so
                     copy-on-write faults after a snapshot show in its gaps
  --tick-us N        sleep of the target's measuring loop, 0 = busy spin (default 100)
  --fork-reps N      fork() and memcpy repetitions for the machine limits (default 7)
  --timeout SECONDS  limit for one dump command; it is killed after (default 90)
  --json             print the results as one JSON object instead of the tables
  -h, --help         this text

Rows "idle" and "write" are the noise floor: the same target, no dump, for 1 s and while
dd writes as many MiB as the core to the same directory.`;

// ---------------------------------------------------------------------------------------
// options

type Method = 'snapshot' | 'no-snapshot' | 'gcore' | 'idle' | 'write';
const ALL_METHODS: Method[] = ['snapshot', 'no-snapshot', 'gcore', 'idle', 'write'];
const LABEL: Record<Method, string> = {
  snapshot: 'stasis core',
  'no-snapshot': 'stasis core --no-snapshot',
  gcore: 'gcore -o',
  idle: 'idle 1 s (noise)',
  write: 'dd same size (noise)',
};

interface Options extends CommonOptions {
  methods: Method[];
  thp: boolean;
  dirty: boolean;
  tickUs: number;
  forkReps: number;
}

function parseArgs(argv: string[]): Options | null {
  const o: Options = {
    sizes: [256, 1024], reps: 5, threads: 4, methods: [...ALL_METHODS], dir: os.tmpdir(),
    stasis: DEFAULT_STASIS, thp: false, dirty: false, tickUs: 100, forkReps: 7, timeoutMs: 90_000, json: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string | undefined => argv[++i];
    if (commonOption(a, next, o)) continue;
    switch (a) {
      case '-h': case '--help': return null;
      case '--methods': o.methods = parseNames(a, 'method', next(), ALL_METHODS); break;
      case '--thp': o.thp = true; break;
      case '--dirty': o.dirty = true; break;
      case '--tick-us': o.tickUs = intArg(a, next(), 0); break;
      case '--fork-reps': o.forkReps = intArg(a, next(), 1); break;
      default: throw new UsageError(`unknown option '${a}'`);
    }
  }
  return o;
}

// ---------------------------------------------------------------------------------------
// processes: everything started here is tracked by PID and reaped (see common.ts)

// ---------------------------------------------------------------------------------------
// the target

/** Lines of a child's stdout, awaited one at a time. */
class Lines {
  private buf = '';
  private lines: string[] = [];
  private waiters: ((l: string | null) => void)[] = [];
  private ended = false;
  constructor(stream: NodeJS.ReadableStream) {
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => {
      this.buf += d;
      let i;
      while ((i = this.buf.indexOf('\n')) >= 0) { this.push(this.buf.slice(0, i)); this.buf = this.buf.slice(i + 1); }
    });
    stream.on('end', () => { this.ended = true; for (const w of this.waiters.splice(0)) w(null); });
  }
  private push(l: string) { const w = this.waiters.shift(); if (w) w(l); else this.lines.push(l); }
  next(timeoutMs: number): Promise<string | null> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve) => {
      const w = (x: string | null) => { clearTimeout(t); resolve(x); };
      const t = setTimeout(() => { this.waiters.splice(this.waiters.indexOf(w), 1); resolve(null); }, timeoutMs);
      this.waiters.push(w);
    });
  }
}

/**
 * What the target saw since the previous report: pauseMs = the largest gap between two
 * iterations of its clock loop; stoppedMs = the largest gap minus its run-queue wait (a
 * lower bound that excludes waiting for a CPU: noise from other processes, but also the
 * target's own wait to run an injected syscall); stalls = gaps >= 1 ms; stops = the largest
 * stalls in time order, atMs = when each ended, waitMs = its run-queue wait.
 */
interface Gap { pauseMs: number; stoppedMs: number; stalls: number; stallMs: number; iters: number; stops: { ms: number; atMs: number; waitMs: number }[] }

class Target {
  readonly pid: number;
  readonly touchMs: number;
  readonly rssMiB: number;
  readonly schedstat: boolean;
  private constructor(private child: ChildProcess, private lines: Lines, ready: string[]) {
    this.pid = Number(ready[1]);
    this.touchMs = Number(ready[2]);
    this.rssMiB = Number(ready[3]) / 1024;
    this.schedstat = ready[4] === '1';
  }

  static async start(exe: string, mib: number, o: Options): Promise<Target> {
    const args = ['-m', String(mib), '-t', String(o.threads), '-s', String(o.tickUs), ...(o.thp ? ['-H'] : []), ...(o.dirty ? ['-w'] : [])];
    const child = spawn(exe, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    live.add(child);
    child.on('exit', () => live.delete(child));
    const lines = new Lines(child.stdout!);
    const ready = await lines.next(120_000);
    if (!ready?.startsWith('ready ')) {
      if (child.pid) killTree(child.pid);
      throw new Error(`target did not start (${ready ?? 'no output'})`);
    }
    const t = new Target(child, lines, ready.split(' '));
    await t.gap(); // discard the start-up
    return t;
  }

  alive(): boolean { return this.child.exitCode === null && this.child.signalCode === null; }

  /**
   * The largest gap since the previous report, and resets it. Answers to earlier requests
   * (late, e.g. the target was stopped when asked) are skipped: each answer carries the
   * target's CLOCK_MONOTONIC, the clock of process.hrtime.
   */
  async gap(timeoutMs = 10_000): Promise<Gap> {
    const sent = process.hrtime.bigint();
    process.kill(this.pid, 'SIGUSR1');
    const deadline = Date.now() + timeoutMs;
    let f: string[] | undefined;
    for (;;) {
      const l = await this.lines.next(Math.max(0, deadline - Date.now()));
      f = l?.split(' ');
      if (!f || f[0] !== 'gap') throw new Error(`target ${this.pid} did not report its gap (${l ?? 'no answer'})`);
      if (BigInt(f[1]) >= sent) break;
    }
    f = f.slice(1);
    const pauseMs = Number(f[1]) / 1e6, offMs = Number(f[2]) / 1e6;
    const stops = f.slice(6).map((x) => {
      const [ms, at, wait] = x.split('@');
      return { ms: Number(ms) / 1e6, atMs: Number(at) / 1e6, waitMs: Number(wait) / 1e6 };
    }).sort((a, b) => a.atMs - b.atMs);
    return { pauseMs, stoppedMs: this.schedstat ? offMs : pauseMs, stalls: Number(f[3]), stallMs: Number(f[4]) / 1e6, iters: Number(f[5]), stops };
  }

  /**
   * After a dump: is the target running, untraced, without children? Repairs what it can
   * (SIGCONT a stopped target, SIGKILL leftover children: copies of our own target) and
   * says what it found.
   */
  health(): string[] {
    if (!this.alive() || !procStat(this.pid)) return ['target died'];
    const problems = tracedOrStopped(this.pid);
    for (const c of descendants(this.pid)) {
      const st = procStat(c);
      if (!st) continue;
      if (st.state === 'Z') problems.push(`child ${c} of the target left as a zombie`);
      else { problems.push(`child ${c} of the target left running (${st.state}); killed`); try { process.kill(c, 'SIGKILL'); } catch { /* gone */ } }
    }
    return problems;
  }

  async stop(): Promise<void> {
    if (!this.alive()) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    killTree(this.pid);
    await exited;
  }
}

// ---------------------------------------------------------------------------------------
// measurements

interface Measurement {
  method: Method;
  ok: boolean;
  error?: string;
  warnings: string[];
  gap?: Gap;
  totalMs?: number;
  reportedPauseMs?: number;
  reportedTotalMs?: number;
  apparentBytes?: number;
  diskBytes?: number;
  threads?: number;
  mappings?: number;
}

interface Limits { forkMs: number; forkExitMs: number; memcpyMs: number; memcpyGBps: number; forkSamples: number[]; memcpySamples: number[] }

async function measure(method: Method, t: Target, mib: number, coreDir: string, o: Options): Promise<Measurement> {
  const m: Measurement = { method, ok: false, warnings: [] };
  const file = path.join(coreDir, `core.${method}`);
  try { execFileSync('sync'); } catch { /* best effort */ }
  await t.gap(); // reset
  let r: RunResult | null = null;
  let produced: string | null = null;
  let json: Record<string, unknown> | null = null;
  if (method === 'idle') {
    const t0 = process.hrtime.bigint();
    await new Promise((res) => setTimeout(res, 1000));
    m.totalMs = Number(process.hrtime.bigint() - t0) / 1e6;
  } else if (method === 'write') {
    r = await run('dd', ['if=/dev/zero', `of=${file}`, 'bs=1M', `count=${mib}`], o.timeoutMs);
    produced = file;
  } else if (method === 'gcore') {
    // No debuginfod look-ups: they would time the network, not the dump.
    r = await run('gcore', ['-o', file, String(t.pid)], o.timeoutMs, { ...process.env, DEBUGINFOD_URLS: '' });
    produced = `${file}.${t.pid}`;
  } else {
    const args = [o.stasis, 'core', String(t.pid), '-o', file, '--json', ...(method === 'no-snapshot' ? ['--no-snapshot'] : [])];
    r = await run(process.execPath, args, o.timeoutMs);
    produced = file;
    const line = r.stdout.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('{')).pop();
    if (line) { try { json = JSON.parse(line) as Record<string, unknown>; } catch { /* reported below */ } }
    if (json && typeof json.file === 'string') produced = path.resolve(json.file);
  }
  // Repair first (a target left stopped cannot answer), then ask.
  m.warnings.push(...t.health());
  const gap = t.alive() ? await t.gap().catch((e: Error) => { m.warnings.push(e.message); return undefined; }) : undefined;

  if (r) {
    m.totalMs = r.ms;
    if (r.timedOut) m.error = `timed out after ${o.timeoutMs / 1000} s (killed)`;
    else if (r.code !== 0) m.error = `exit ${r.code ?? r.signal}: ${lastLine(r.stderr) || lastLine(r.stdout) || 'no message'}`;
    else if (method !== 'write' && method !== 'gcore' && !json) m.error = `no JSON object on stdout: ${lastLine(r.stdout) || lastLine(r.stderr) || 'empty'}`;
  }
  if (produced && !m.error) {
    try {
      const st = fs.statSync(produced);
      m.apparentBytes = st.size;
      m.diskBytes = st.blocks * 512;
    } catch { m.error = `no core file at ${produced}`; }
  }
  if (json) {
    if (typeof json.pauseMs === 'number') m.reportedPauseMs = json.pauseMs;
    if (typeof json.totalMs === 'number') m.reportedTotalMs = json.totalMs;
    if (typeof json.threads === 'number') m.threads = json.threads;
    if (typeof json.mappings === 'number') m.mappings = json.mappings;
    if (json.snapshot !== (method === 'snapshot')) m.warnings.push(`stasis reported snapshot=${String(json.snapshot)}`);
  }
  // Delete every core (and anything else) written, whatever happened.
  for (const e of fs.readdirSync(coreDir)) fs.rmSync(path.join(coreDir, e), { force: true, recursive: true });
  if (!gap && !m.error) m.error = 'no gap from the target';
  m.gap = gap;
  m.ok = !m.error;
  return m;
}

async function machineLimits(exe: string, mib: number, o: Options): Promise<Limits | string> {
  const r = await run(exe, ['-m', String(mib), '-r', String(o.forkReps), ...(o.thp ? ['-H'] : [])], 300_000);
  if (r.code !== 0) return `limits: exit ${r.code ?? r.signal}: ${lastLine(r.stderr)}`;
  const fork: number[] = [], forkExit: number[] = [], copy: number[] = [];
  for (const l of r.stdout.split('\n')) {
    const f = l.split(' ');
    if (f[0] === 'fork') { fork.push(Number(f[1]) / 1e6); forkExit.push(Number(f[2]) / 1e6); }
    if (f[0] === 'memcpy') copy.push(Number(f[1]) / 1e6);
  }
  const memcpyMs = median(copy)!;
  return {
    forkMs: median(fork)!, forkExitMs: median(forkExit)!, memcpyMs,
    memcpyGBps: (mib * 1048576) / (memcpyMs / 1000) / 1e9, forkSamples: fork, memcpySamples: copy,
  };
}

// ---------------------------------------------------------------------------------------
// statistics and output

interface Summary {
  method: Method; n: number; failures: number; errors: string[]; warnings: string[];
  pauseMs?: number; pauseMinMs?: number; pauseMaxMs?: number; stoppedMs?: number; stallMs?: number; stalls?: number;
  reportedPauseMs?: number; totalMs?: number; totalMinMs?: number; reportedTotalMs?: number; apparentMiB?: number; diskMiB?: number;
}

function summarize(method: Method, ms: Measurement[]): Summary {
  const ok = ms.filter((m) => m.ok);
  const pauses = ok.map((m) => m.gap!.pauseMs);
  return {
    method, n: ok.length, failures: ms.length - ok.length,
    errors: [...new Set(ms.filter((m) => !m.ok).map((m) => m.error!))],
    warnings: [...new Set(ms.flatMap((m) => m.warnings))],
    pauseMs: median(pauses), pauseMinMs: pauses.length ? Math.min(...pauses) : undefined,
    pauseMaxMs: pauses.length ? Math.max(...pauses) : undefined,
    stoppedMs: median(ok.map((m) => m.gap!.stoppedMs)), stallMs: median(ok.map((m) => m.gap!.stallMs)),
    stalls: median(ok.map((m) => m.gap!.stalls)),
    reportedPauseMs: median(ok.map((m) => m.reportedPauseMs)),
    totalMs: median(ok.map((m) => m.totalMs)), totalMinMs: ok.length ? Math.min(...ok.map((m) => m.totalMs!)) : undefined,
    reportedTotalMs: median(ok.map((m) => m.reportedTotalMs)),
    apparentMiB: median(ok.map((m) => m.apparentBytes === undefined ? undefined : m.apparentBytes / 1048576)),
    diskMiB: median(ok.map((m) => m.diskBytes === undefined ? undefined : m.diskBytes / 1048576)),
  };
}

const fmt = (x: number | undefined, digits = 1): string => {
  if (x === undefined || !Number.isFinite(x)) return '-';
  if (Math.abs(x) >= 1000) return x.toFixed(0);
  return x.toFixed(Math.abs(x) < 10 ? Math.max(digits, 2) : digits);
};

interface SizeResult {
  mib: number; targetRssMiB?: number; touchMs?: number; limits: Limits | string;
  summaries: Summary[]; measurements: Measurement[]; ratios: Ratio[];
}

function ratios(mib: number, limits: Limits | string, s: Partial<Record<Method, Summary>>): Ratio[] {
  const l = typeof limits === 'string' ? undefined : limits;
  const snap = s.snapshot, stop = s['no-snapshot'], g = s.gcore;
  const forkMin = l ? Math.min(...l.forkSamples) : undefined;
  const gcoreVsSnap: Ratio = { name: 'gcore pause / stasis pause', value: div(g?.pauseMs, snap?.pauseMs), best: div(g?.pauseMinMs, snap?.pauseMinMs) };
  const out: Ratio[] = [
    aimed({ name: 'stasis pause / fork() time', value: div(snap?.pauseMs, l?.forkMs), best: div(snap?.pauseMinMs, forkMin) }, '<= 2', (v) => v <= 2),
    mib >= 1024 ? aimed(gcoreVsSnap, '>= 50', (v) => v >= 50) : { ...gcoreVsSnap, note: '(aim >= 50 applies at 1 GiB)' },
    aimed({ name: 'stasis total / gcore total', value: div(snap?.totalMs, g?.totalMs), best: div(snap?.totalMinMs, g?.totalMinMs) }, '<= 1', (v) => v <= 1),
    { name: 'stasis pause / fork()+exit+wait', value: div(snap?.pauseMs, l?.forkExitMs) },
    { name: '--no-snapshot pause / memcpy time', value: div(stop?.pauseMs, l?.memcpyMs), best: div(stop?.pauseMinMs, l ? Math.min(...l.memcpySamples) : undefined) },
    { name: 'gcore pause / memcpy time', value: div(g?.pauseMs, l?.memcpyMs), best: div(g?.pauseMinMs, l ? Math.min(...l.memcpySamples) : undefined) },
    { name: 'gcore pause / --no-snapshot pause', value: div(g?.pauseMs, stop?.pauseMs), best: div(g?.pauseMinMs, stop?.pauseMinMs) },
    { name: '--no-snapshot total / gcore total', value: div(stop?.totalMs, g?.totalMs), best: div(stop?.totalMinMs, g?.totalMinMs) },
  ];
  return out;
}

function printSize(r: SizeResult, o: Options): void {
  const w = (s: string) => process.stdout.write(s + '\n');
  w('');
  w(`== ${r.mib} MiB touched, ${o.threads} thread${o.threads > 1 ? 's' : ''}${o.thp ? ', THP' : ''}${o.dirty ? ', dirtying' : ''}` +
    (r.targetRssMiB ? `: target RSS ${r.targetRssMiB.toFixed(0)} MiB, touched in ${fmt(r.touchMs, 0)} ms` : '') + ' ==');
  const rows: string[][] = [['method', 'pause ms', 'min..max', 'w/o CPU wait', 'stalls ms (n)', 'stasis pause', 'total ms', 'stasis total', 'core MiB', 'on disk', 'ok']];
  for (const s of r.summaries) {
    rows.push([
      LABEL[s.method], fmt(s.pauseMs), s.pauseMinMs === undefined ? '-' : `${fmt(s.pauseMinMs)}..${fmt(s.pauseMaxMs)}`,
      fmt(s.stoppedMs), s.stallMs === undefined ? '-' : `${fmt(s.stallMs)} (${Math.round(s.stalls ?? 0)})`, fmt(s.reportedPauseMs), fmt(s.totalMs, 0), fmt(s.reportedTotalMs, 0),
      fmt(s.apparentMiB, 0), fmt(s.diskMiB, 0), `${s.n}/${s.n + s.failures}`,
    ]);
  }
  w(table(rows, [false, true, true, true, true, true, true, true, true, true, true]));
  for (const s of r.summaries) {
    for (const e of s.errors) w(`  ${LABEL[s.method]} failed: ${e}`);
    for (const e of s.warnings) w(`  ${LABEL[s.method]} warning: ${e}`);
  }
  if (typeof r.limits === 'string') w(`machine limits: ${r.limits}`);
  else {
    const l = r.limits;
    w(`machine limits for ${r.mib} MiB RSS: fork() ${fmt(l.forkMs)} ms, fork+exit+wait ${fmt(l.forkExitMs)} ms, ` +
      `memcpy of ${r.mib} MiB ${fmt(l.memcpyMs)} ms (${fmt(l.memcpyGBps)} GB/s)  [medians of ${l.forkSamples.length}]`);
  }
  const rr: string[][] = [['ratio', 'medians', 'best reps', 'aim', '']];
  const x_ = (v?: number) => (v === undefined ? 'n/a' : `${fmt(v, 1)}x`);
  for (const x of r.ratios) {
    rr.push([x.name, x_(x.value), x.best === undefined ? '' : x_(x.best), x.aim ?? '',
      x.aim ? (x.met === undefined ? 'unknown' : x.met ? 'MET' : 'NOT MET') : (x.note ?? '')]);
  }
  w(table(rr, [false, true, true, false, false]));
}

// ---------------------------------------------------------------------------------------

async function main(argv: string[]): Promise<number> {
  const parsed = parseOrExit(argv, parseArgs, USAGE);
  if (typeof parsed === 'number') return parsed;
  const o = parsed;
  const log = (s: string) => process.stderr.write(s + '\n');

  const info = machineInfo(true);
  const coreDir = fs.mkdtempSync(path.join(path.resolve(o.dir), 'stasis-bench-cores-'));
  const buildDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stasis-bench-build-'));
  let targetNow: Target | null = null;
  const cleanup = () => {
    killLive();
    removeDirs([coreDir, buildDir]);
  };
  const offSignals = onSignals(cleanup, log);

  try {
    // Room for the largest core (gcore's is ~3% over the RSS) plus a margin.
    const maxMiB = Math.max(...o.sizes);
    const free = freeMiB(coreDir);
    const needMiB = maxMiB * 1.25 + 512;
    log(`bench: cores go to ${coreDir} (${(free / 1024).toFixed(1)} GiB free)`);
    if (free < needMiB) { log(`bench: need ${(needMiB / 1024).toFixed(1)} GiB free there; use --dir or smaller --sizes`); return 1; }
    const availMiB = os.freemem() / 1048576;
    if (availMiB < maxMiB * 4) log(`bench: warning: ${availMiB.toFixed(0)} MiB free memory; the largest size may need ~${maxMiB * 4} MiB`);

    const exe = compileTargets(['pause', 'limits'], buildDir);
    if (o.methods.some((m) => m === 'snapshot' || m === 'no-snapshot')) warnIfUnbuilt(o.stasis, log);

    const results: SizeResult[] = [];
    for (const mib of o.sizes) {
      log(`bench: ${mib} MiB: machine limits (fork x${o.forkReps}, memcpy x${o.forkReps})`);
      const limits = await machineLimits(exe.limits, mib, o);
      if (typeof limits === 'string') log(`bench: ${limits}`);
      else log(`bench: ${mib} MiB: fork() ${fmt(limits.forkMs)} ms, memcpy ${fmt(limits.memcpyMs)} ms`);

      const measurements: Measurement[] = [];
      let rss: number | undefined, touch: number | undefined;
      for (let rep = 0; rep < o.reps; rep++) {
        // Rotate the order so no method always follows another's writeback.
        const order = o.methods.map((_, i) => o!.methods[(i + rep) % o!.methods.length]);
        for (const method of order) {
          if (!targetNow || !targetNow.alive()) {
            if (targetNow) log('bench: the target died; starting another');
            targetNow = await Target.start(exe.pause, mib, o);
            rss ??= targetNow.rssMiB; touch ??= targetNow.touchMs;
            if (!targetNow.schedstat) log('bench: /proc/thread-self/schedstat unreadable: pause = raw gap, scheduler noise included');
          }
          const m = await measure(method, targetNow, mib, coreDir, o);
          measurements.push(m);
          const what = m.ok
            ? `pause ${fmt(m.gap!.pauseMs)} ms (w/o CPU wait ${fmt(m.gap!.stoppedMs)}), total ${fmt(m.totalMs, 0)} ms` +
              (m.reportedPauseMs !== undefined ? ` (stasis: pause ${fmt(m.reportedPauseMs)}, total ${fmt(m.reportedTotalMs, 0)})` : '') +
              (m.gap!.stops.length ? `, stalls ${m.gap!.stops.map((x) => `${fmt(x.ms)}@${fmt(x.atMs, 0)}` + (x.waitMs >= 0.5 ? `(wait ${fmt(x.waitMs)})` : '')).join(' ')} ms` : '') +
              (m.apparentBytes !== undefined ? `, core ${(m.apparentBytes / 1048576).toFixed(0)} MiB` : '')
            : `FAILED: ${m.error}`;
          log(`bench: ${mib} MiB rep ${rep + 1}/${o.reps} ${LABEL[method]}: ${what}`);
          for (const wmsg of m.warnings) log(`bench:   warning: ${wmsg}`);
          if (m.warnings.some((x) => x.includes('traced') || x.includes('died'))) {
            await targetNow.stop();
            targetNow = null;
          }
        }
      }
      if (targetNow) { await targetNow.stop(); targetNow = null; }
      const summaries = o.methods.map((m) => summarize(m, measurements.filter((x) => x.method === m)));
      const byMethod: Partial<Record<Method, Summary>> = {};
      for (const s of summaries) byMethod[s.method] = s;
      const r: SizeResult = { mib, targetRssMiB: rss, touchMs: touch, limits, summaries, measurements, ratios: ratios(mib, limits, byMethod) };
      results.push(r);
    }

    if (o.json) {
      process.stdout.write(JSON.stringify({ machine: info, options: { ...o, dir: undefined }, results }, null, 2) + '\n');
    } else {
      const w = (s: string) => process.stdout.write(s + '\n');
      w(`stasis core benchmark: ${info.kernel}, ${info.cpus}, ${info.memory}, load ${info.load}`);
      w(`THP ${info.thp}; ${info.gdb}; node ${info.node}; ${o.reps} rep(s) per method, medians shown`);
      const load = os.loadavg()[0], ncpu = os.cpus().length;
      if (load > ncpu / 2) w(`warning: load average ${load.toFixed(1)} on ${ncpu} CPUs: other processes compete with the target; see the noise rows`);
      w('pause = largest gap between two iterations of the target\'s clock loop (what the target saw);');
      w('w/o CPU wait = that gap minus the target\'s run-queue wait (lower bound, excludes scheduler noise);');
      w('stalls = total (number) of gaps >= 1 ms in one measurement; total = wall time of the command,');
      w('node start-up included; stasis pause / stasis total = what stasis itself reported with --json.');
      for (const r of results) printSize(r, o);
      const aims = results.flatMap((r) => r.ratios.filter((x) => x.aim).map((x) => `${r.mib} MiB ${x.name} ${x.aim}: ${x.met === undefined ? 'unknown' : x.met ? 'MET' : 'NOT MET'}`));
      w('');
      w('aims (from the medians):');
      for (const a of aims) w(`  ${a}`);
    }
    return 0;
  } finally {
    if (targetNow) await targetNow.stop();
    cleanup();
    offSignals();
  }
}

runMain(main);
