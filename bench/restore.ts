/**
 * Benchmark of checkpoint/restore: `stasis dump` against gdb's `gcore` (time, image size),
 * `stasis restore` of a large target against reading its image once from the page cache,
 * and `stasis restore` of the smallest C program, end to end, against starting the same
 * program with fork + execve, with a breakdown of where the restore's time goes (Node's
 * start-up, module load, and each phase stasis reports with --json).
 *
 * Every start-up is timed by a small C stopwatch (bench/targets/launch.c), the same way
 * for every row: fork + execve + until exit (or until the first line, for the program
 * started normally). Absolute times on shared machines are noisy; the ratios are what
 * matter, hence everything in one run, interleaved, medians of repetitions, and the load
 * average printed with the figures.
 *
 *   npm run build && node dist/bench/restore.js [--sizes 256,1024] [--reps 3] ...   (see --help)
 *
 * Only node built-ins. Every process started here is killed by PID and reaped (restored
 * processes are reparented when `stasis restore --detach` exits: they are killed by the
 * PID stasis printed, and awaited until /proc/PID is gone); none is left stopped or traced.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { randomFillSync } from 'node:crypto';
import {
  DEFAULT_STASIS, UsageError, intArg, type CommonOptions, commonOption, parseNames, parseOrExit, runMain, live, run,
  procStat, descendants, killTree, statusField, tracedOrStopped, lastLine, compileTargets, warnIfUnbuilt, freeMiB, killLive, removeDirs,
  onSignals, median, table, type Ratio, div, aimed, machineInfo,
} from './common.js';
/** CRIU on this machine, for reference (measured separately; not run here). */
const CRIU_RESTORE_1G_MS = 570;
const CRIU_RESTORE_SMALL_MS = 30;

const USAGE = `usage: node dist/bench/restore.js [OPTIONS]     (npm run bench:restore -- [OPTIONS])

Checkpoint/restore of C targets, side by side with the machine's yardsticks:
  small    the smallest C program (no extra memory, 1 thread): stasis restore --detach,
           end to end with Node's start-up, against fork+execve of the same program to
           its first line, with the time split into Node start-up, module load and the
           restore phases stasis reports
  gcore    a target with N MiB of touched memory: stasis dump --leave-running against
           gcore -o of the same process (time; image size, apparent and on disk)
  restore  the same target: stasis dump (which kills it), then one read of the image from
           the page cache, then stasis restore --detach of it

options:
  --sizes LIST         MiB of touched memory, comma-separated (default 256,1024; 2G = 2048)
  --reps N             measurements per size (default 3; a new target each)
  --small-reps N       restores of the small target (default 9)
  --threads N          threads of the sized targets, main included (default 4)
  --small-threads N    threads of the small target (default 1)
  --parts LIST         any of small,gcore,restore (default all)
  --limits-reps N      repetitions of each machine limit (read into fresh memory, with
                       THP, through /proc/PID/mem, ...) on the first rep of each size
                       (default 2; 0 = only the plain read of the image)
  --stasis FILE        the stasis entry point run with node (default <repo>/bin/stasis.js)
  --dir DIR            where images and cores are written, each deleted after its
                       measurement (default the system temp dir)
  --timeout SECONDS    limit for one command; it is killed after (default 120)
  --json               print the results as one JSON object instead of the tables
  -h, --help           this text`;

// ---------------------------------------------------------------------------------------
// options

type Part = 'small' | 'gcore' | 'restore';
const ALL_PARTS: Part[] = ['small', 'gcore', 'restore'];

interface Options extends CommonOptions {
  smallReps: number;
  smallThreads: number;
  parts: Part[];
  limitsReps: number;
}

function parseArgs(argv: string[]): Options | null {
  const o: Options = {
    sizes: [256, 1024], reps: 3, smallReps: 9, threads: 4, smallThreads: 1, parts: [...ALL_PARTS], limitsReps: 2,
    stasis: DEFAULT_STASIS, dir: os.tmpdir(), timeoutMs: 120_000, json: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string | undefined => argv[++i];
    if (commonOption(a, next, o)) continue;
    switch (a) {
      case '-h': case '--help': return null;
      case '--small-reps': o.smallReps = intArg(a, next(), 1); break;
      case '--small-threads': o.smallThreads = intArg(a, next(), 1); break;
      case '--parts': o.parts = parseNames(a, 'part', next(), ALL_PARTS); break;
      case '--limits-reps': o.limitsReps = intArg(a, next(), 0); break;
      default: throw new UsageError(`unknown option '${a}'`);
    }
  }
  return o;
}

// ---------------------------------------------------------------------------------------
// processes: everything started here is tracked by PID and reaped (see common.ts)

/** PIDs of restored processes (not our children) still to be killed. */
const restoredPids = new Set<number>();
/** The restoree executable, to recognise our restored processes before signalling a PID. */
let restoreeExe = '';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until /proc/PID is gone (a reparented process is reaped by init, which may take a second or two). */
async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (fs.existsSync(`/proc/${pid}`)) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

/** Is PID a running copy of our restoree (and not a child of ours, whose reaping is libuv's)? */
function isOurRestoree(pid: number): boolean {
  try {
    if (fs.readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, '') === restoreeExe) return true;
  } catch { /* a zombie has no exe */ }
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] === restoreeExe;
  } catch { return false; }
}

/** Kills a restored process by PID (after checking it is ours) and waits until it is gone. */
async function killRestored(pid: number, warnings: string[]): Promise<void> {
  if (!fs.existsSync(`/proc/${pid}`)) { restoredPids.delete(pid); return; }
  const st = procStat(pid);
  if (st && st.state !== 'Z' && !isOurRestoree(pid)) {
    warnings.push(`PID ${pid} is not our restored program; left alone`);
    restoredPids.delete(pid);
    return;
  }
  try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  if (!(await waitGone(pid, 20_000))) warnings.push(`restored process ${pid} killed but still in /proc after 20 s (${procStat(pid)?.state ?? '?'}, parent ${procStat(pid)?.ppid ?? '?'})`);
  restoredPids.delete(pid);
}

// ---------------------------------------------------------------------------------------
// timed commands, through the C stopwatch

interface Timed { ms?: number; code?: number; signal?: number; out: string; err: string; error?: string }

let launchExe = '';
let workDir = '';
let seq = 0;

/** fork + execve + wait of PROGRAM, timed in C; its stdout and stderr are returned. */
async function timed(prog: string, args: string[], o: Options, env?: NodeJS.ProcessEnv): Promise<Timed> {
  const n = ++seq;
  const outFile = path.join(workDir, `out.${n}`), errFile = path.join(workDir, `err.${n}`);
  const r = await run(launchExe, ['exit', '-o', outFile, '-e', errFile, '--', prog, ...args], o.timeoutMs, env);
  const read = (f: string) => { try { return fs.readFileSync(f, 'utf8'); } catch { return ''; } };
  const t: Timed = { out: read(outFile), err: read(errFile) };
  fs.rmSync(outFile, { force: true });
  fs.rmSync(errFile, { force: true });
  const f = /^exit (\d+) (-?\d+) (\d+)$/m.exec(r.stdout);
  if (r.timedOut) t.error = `timed out after ${o.timeoutMs / 1000} s (killed)`;
  else if (!f) t.error = `launcher: ${lastLine(r.stderr) || lastLine(r.stdout) || `exit ${r.code ?? r.signal}`}`;
  if (f) {
    t.ms = Number(f[1]) / 1e6;
    t.code = Number(f[2]);
    t.signal = Number(f[3]);
    if (!t.error && (t.code !== 0 || t.signal !== 0)) {
      t.error = `${t.signal ? `killed by signal ${t.signal}` : `exit ${t.code}`}: ${lastLine(t.err) || lastLine(t.out) || 'no message'}`;
    }
  }
  return t;
}

function jsonLine(s: string): Record<string, unknown> | null {
  const line = s.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('{')).pop();
  if (!line) return null;
  try { return JSON.parse(line) as Record<string, unknown>; } catch { return null; }
}

function phasesOf(j: Record<string, unknown> | null): Record<string, number> | undefined {
  const p = j?.phasesMs;
  if (!p || typeof p !== 'object') return undefined;
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(p as Record<string, unknown>)) if (typeof v === 'number') out[k] = v;
  return out;
}

function fileSizes(file: string): { apparent: number; disk: number } | null {
  try {
    const st = fs.statSync(file);
    return { apparent: st.size, disk: st.blocks * 512 };
  } catch { return null; }
}

function syncAll(): void {
  try { execFileSync('sync', { stdio: 'ignore', timeout: 120_000 }); } catch { /* best effort */ }
}

// ---------------------------------------------------------------------------------------
// the target

class Target {
  readonly pid: number;
  readonly touchMs: number;
  readonly rssMiB: number;
  readonly exited: Promise<void>;
  private stderr = '';
  private constructor(private child: ChildProcess, ready: string[]) {
    this.pid = Number(ready[1]);
    this.touchMs = Number(ready[2]);
    this.rssMiB = Number(ready[3]) / 1024;
    this.exited = new Promise((r) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) r();
      else this.child.once('exit', () => r());
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { if (this.stderr.length < 65536) this.stderr += d; });
  }

  /** Starts restoree; resolves once it printed its "ready" line. */
  static async start(exe: string, mib: number, threads: number, lifetimeS: number): Promise<Target> {
    const child = spawn(exe, ['-m', String(mib), '-t', String(threads), '-l', String(lifetimeS), '-c', workDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    child.on('exit', () => live.delete(child));
    const ready = await new Promise<string | null>((resolve) => {
      let buf = '';
      const t = setTimeout(() => resolve(null), 120_000);
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        buf += d;
        const i = buf.indexOf('\n');
        if (i >= 0) { clearTimeout(t); resolve(buf.slice(0, i)); }
      });
      child.on('exit', () => { clearTimeout(t); resolve(null); });
      child.on('error', () => { clearTimeout(t); resolve(null); });
    });
    if (!ready?.startsWith('ready ')) {
      if (child.pid) killTree(child.pid);
      throw new Error(`target did not start (${ready ?? 'no output'})`);
    }
    return new Target(child, ready.split(' '));
  }

  alive(): boolean { return this.child.exitCode === null && this.child.signalCode === null; }

  /** After a dump that left it running: running, untraced? Repairs what it can (SIGCONT) and says what it found. */
  health(): string[] {
    if (!this.alive() || !procStat(this.pid)) return ['target died'];
    const problems = tracedOrStopped(this.pid);
    for (const c of descendants(this.pid)) {
      problems.push(`child ${c} of the target left behind; killed`);
      try { process.kill(c, 'SIGKILL'); } catch { /* gone */ }
    }
    return problems;
  }

  async stop(): Promise<void> {
    if (this.alive()) killTree(this.pid);
    await this.exited;
  }
}

// ---------------------------------------------------------------------------------------
// measurements

interface DumpM { ok: boolean; error?: string; e2eMs?: number; totalMs?: number; frozenMs?: number; phasesMs?: Record<string, number>; apparent?: number; disk?: number }
interface GcoreM { ok: boolean; error?: string; e2eMs?: number; fsyncMs?: number; apparent?: number; disk?: number }
interface RestoreM { ok: boolean; error?: string; e2eMs?: number; totalMs?: number; phasesMs?: Record<string, number>; pid?: number; verified?: string; load: number }

/** stasis dump of the target into file; the image is left in place (the caller deletes it). */
async function stasisDump(t: Target, file: string, leaveRunning: boolean, o: Options): Promise<DumpM> {
  syncAll();
  const r = await timed(process.execPath, [o.stasis, 'dump', String(t.pid), '-o', file, '--json', ...(leaveRunning ? ['--leave-running'] : [])], o);
  const m: DumpM = { ok: false, e2eMs: r.ms, error: r.error };
  const j = jsonLine(r.out);
  if (!m.error && !j) m.error = `no JSON object on stdout: ${lastLine(r.out) || lastLine(r.err) || 'empty'}`;
  if (j) {
    if (typeof j.totalMs === 'number') m.totalMs = j.totalMs;
    if (typeof j.frozenMs === 'number') m.frozenMs = j.frozenMs;
    m.phasesMs = phasesOf(j);
  }
  const sz = fileSizes(file);
  if (!m.error && !sz) m.error = `no image at ${file}`;
  if (sz) { m.apparent = sz.apparent; m.disk = sz.disk; }
  m.ok = !m.error;
  return m;
}

async function gcoreDump(t: Target, prefix: string, o: Options, gcore: string): Promise<GcoreM> {
  syncAll();
  // No debuginfod look-ups: they would time the network, not the dump.
  const r = await timed(gcore, ['-o', prefix, String(t.pid)], o, { ...process.env, DEBUGINFOD_URLS: '' });
  const file = `${prefix}.${t.pid}`;
  const m: GcoreM = { ok: false, e2eMs: r.ms, error: r.error };
  const sz = fileSizes(file);
  if (!m.error && !sz) m.error = `no core at ${file}: ${lastLine(r.err) || lastLine(r.out)}`;
  if (sz) {
    m.apparent = sz.apparent;
    m.disk = sz.disk;
    // stasis syncs its image before it returns; gcore does not: what syncing gcore's would add.
    const t0 = process.hrtime.bigint();
    const fd = fs.openSync(file, 'r');
    try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
    m.fsyncMs = Number(process.hrtime.bigint() - t0) / 1e6;
  }
  fs.rmSync(file, { force: true });
  m.ok = !m.error;
  return m;
}

/**
 * stasis restore --detach of image (whose process had PID pid), end to end; then asks the
 * restored program to check its memory, kills it and waits until it is gone.
 */
async function stasisRestore(image: string, pid: number, o: Options, warnings: string[], env?: NodeJS.ProcessEnv): Promise<RestoreM> {
  if (!(await waitGone(pid, 20_000))) return { ok: false, error: `PID ${pid} still taken (${procStat(pid)?.state ?? '?'}); cannot restore`, load: os.loadavg()[0] };
  const load = os.loadavg()[0];
  const r = await timed(process.execPath, [o.stasis, 'restore', image, '--detach', '--json'], o, env);
  const m: RestoreM = { ok: false, e2eMs: r.ms, error: r.error, load };
  const j = jsonLine(r.out);
  if (!m.error && !j) m.error = `no JSON object on stdout: ${lastLine(r.out) || lastLine(r.err) || 'empty'}`;
  if (j) {
    if (typeof j.pid === 'number') m.pid = j.pid;
    if (typeof j.totalMs === 'number') m.totalMs = j.totalMs;
    m.phasesMs = phasesOf(j);
    if (Array.isArray(j.warnings)) for (const w of j.warnings) warnings.push(`stasis restore: ${String(w)}`);
  }
  if (m.pid !== undefined && m.pid !== pid && !m.error) m.error = `restored as PID ${m.pid}, not ${pid}`;
  // Whatever happened, a process of ours with that PID is a restored copy: check it, then kill it.
  if (fs.existsSync(`/proc/${pid}`) && isOurRestoree(pid)) {
    restoredPids.add(pid);
    if (!m.error) m.verified = await verify(pid, warnings);
    await killRestored(pid, warnings);
  } else if (!m.error) {
    m.verified = 'gone at once';
    warnings.push(`restored process ${pid} was not running after stasis returned`);
  }
  m.ok = !m.error;
  return m;
}

/** Asks a restored restoree to check its memory (file protocol, see restoree.c). */
async function verify(pid: number, warnings: string[]): Promise<string> {
  const st = procStat(pid);
  const tracer = Number(statusField(pid, 'TracerPid') ?? 0);
  if (tracer) warnings.push(`restored process ${pid} still traced by ${tracer}`);
  if (st && (st.state === 'T' || st.state === 't')) warnings.push(`restored process ${pid} left stopped (${st.state})`);
  const check = path.join(workDir, `check-${pid}`), alive = path.join(workDir, `alive-${pid}`);
  fs.rmSync(alive, { force: true });
  fs.writeFileSync(check, '');
  const deadline = Date.now() + 10_000;
  let answer = '';
  while (Date.now() < deadline) {
    try { answer = fs.readFileSync(alive, 'utf8').trim(); break; } catch { /* not yet */ }
    if (!fs.existsSync(`/proc/${pid}`) || procStat(pid)?.state === 'Z') break;
    await sleep(10);
  }
  fs.rmSync(check, { force: true });
  fs.rmSync(alive, { force: true });
  const f = answer.split(' ');
  if (f[0] === 'alive' && f[3] === 'ok') return 'ok';
  const why = f[0] === 'alive' ? 'memory differs from before the dump' : procStat(pid)?.state === 'Z' || !fs.existsSync(`/proc/${pid}`) ? 'it died' : 'no answer in 10 s';
  warnings.push(`restored process ${pid} failed its check: ${why}`);
  return why;
}

/** The machine's limits for an image (readimg.c); mode -> samples in ms. */
async function readLimits(exe: string, image: string, modes: string[], reps: number, o: Options): Promise<Record<string, number[]> | string> {
  const r = await run(exe, ['-r', String(reps), '-m', modes.join(','), image], o.timeoutMs);
  if (r.code !== 0) return `readimg: ${r.timedOut ? 'timed out' : `exit ${r.code ?? r.signal}`}: ${lastLine(r.stderr)}`;
  const out: Record<string, number[]> = {};
  for (const l of r.stdout.split('\n')) {
    const [mode, ns] = l.split(' ');
    if (mode && mode !== 'size' && ns) (out[mode] ??= []).push(Number(ns) / 1e6);
  }
  return out;
}

/** zlib.crc32 (what stasis checksums segments with) of mib MiB, in ms; undefined before Node 20.15. */
function crc32Ms(mib: number, reps: number): number[] | undefined {
  const crc32 = (zlib as unknown as { crc32?: (d: Buffer, v?: number) => number }).crc32;
  if (typeof crc32 !== 'function') return undefined;
  const buf = randomFillSync(Buffer.allocUnsafe(8 << 20));
  crc32(buf);
  const out: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    let c = 0;
    for (let done = 0; done < mib; done += 8) c = crc32(done + 8 <= mib ? buf : buf.subarray(0, (mib - done) << 20), c);
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// statistics and output

function min(xs: (number | undefined)[]): number | undefined {
  const v = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return v.length ? Math.min(...v) : undefined;
}

const fmt = (x: number | undefined, digits = 1): string => {
  if (x === undefined || !Number.isFinite(x)) return '-';
  if (Math.abs(x) >= 100) return x.toFixed(0);
  return x.toFixed(Math.abs(x) < 10 ? Math.max(digits, 2) : digits);
};
const mib = (bytes: number | undefined) => (bytes === undefined ? undefined : bytes / 1048576);

/** Median of each phase over runs, in the order stasis reports them. */
function phaseMedians(ps: (Record<string, number> | undefined)[]): Record<string, number> {
  const names: string[] = [];
  for (const p of ps) for (const k of Object.keys(p ?? {})) if (!names.includes(k)) names.push(k);
  const out: Record<string, number> = {};
  for (const k of names) { const v = median(ps.map((p) => p?.[k])); if (v !== undefined) out[k] = v; }
  return out;
}
const phasesText = (p: Record<string, number>) => Object.entries(p).map(([k, v]) => `${k} ${fmt(v)}`).join(' + ');

interface SmallResult {
  spawnMs: number[]; nodeMs: number[]; loadMs: number[];
  /** When NODE_EXTRA_CA_CERTS is set: the same without it (Node then loads no certificates at start-up). */
  extraCaCerts?: string; nodeNoCaMs: number[]; noCaRestores: RestoreM[];
  dump?: DumpM; restores: RestoreM[]; errors: string[]; warnings: string[];
  summary: {
    spawnMs?: number; nodeMs?: number; cliLoadMs?: number; moduleLoadMs?: number; restoreMs?: number; restoreMinMs?: number;
    stasisTotalMs?: number; phasesMs: Record<string, number>; loadAndExitMs?: number; verified: string;
    nodeNoCaMs?: number; restoreNoCaMs?: number; restoreNoCaMinMs?: number;
  };
  ratios: Ratio[];
}

interface SizeRep { rep: number; load: number; stasis?: DumpM; gcore?: GcoreM; dump?: DumpM; readMs: number[]; restore?: RestoreM; rssMiB?: number; touchMs?: number }

interface SizeResult {
  mib: number; reps: SizeRep[]; limits: Record<string, number[]> | string | null; crc32Ms?: number[]; errors: string[]; warnings: string[];
  summary: Record<string, number | undefined>;
  phases: { stasisDump: Record<string, number>; dump: Record<string, number>; restore: Record<string, number> };
  ratios: Ratio[];
}

function summarizeSmall(s: Omit<SmallResult, 'summary' | 'ratios'>): Pick<SmallResult, 'summary' | 'ratios'> {
  const ok = s.restores.filter((r) => r.ok);
  const nodeMs = median(s.nodeMs), cliLoadMs = median(s.loadMs);
  const restoreMs = median(ok.map((r) => r.e2eMs)), stasisTotalMs = median(ok.map((r) => r.totalMs));
  const moduleLoadMs = cliLoadMs !== undefined && nodeMs !== undefined ? cliLoadMs - nodeMs : undefined;
  const phasesMs = phaseMedians(ok.map((r) => r.phasesMs));
  // Medians of the same runs, so the breakdown adds up: what is neither Node's start-up nor stasis's own.
  const loadAndExitMs = median(ok.map((r) => (r.e2eMs ?? NaN) - (r.totalMs ?? NaN))) !== undefined && nodeMs !== undefined
    ? median(ok.map((r) => (r.e2eMs ?? NaN) - (r.totalMs ?? NaN)))! - nodeMs : undefined;
  const verdicts = [...ok, ...s.noCaRestores.filter((r) => r.ok)].map((r) => r.verified ?? '?');
  const good = verdicts.filter((v) => v === 'ok').length;
  const okNoCa = s.noCaRestores.filter((r) => r.ok);
  const summary = {
    spawnMs: median(s.spawnMs), nodeMs, cliLoadMs, moduleLoadMs, restoreMs, restoreMinMs: min(ok.map((r) => r.e2eMs)), stasisTotalMs, phasesMs, loadAndExitMs,
    verified: verdicts.length ? `${good}/${verdicts.length} restored programs passed their check` : 'no restore succeeded',
    nodeNoCaMs: median(s.nodeNoCaMs), restoreNoCaMs: median(okNoCa.map((r) => r.e2eMs)), restoreNoCaMinMs: min(okNoCa.map((r) => r.e2eMs)),
  };
  const ratios: Ratio[] = [
    aimed({ name: 'small: stasis restore end to end (ms)', value: summary.restoreMs, best: summary.restoreMinMs }, '< 100', (v) => v < 100),
    { name: 'small: restore / fork+execve to first line', value: div(summary.restoreMs, summary.spawnMs), best: div(summary.restoreMinMs, min(s.spawnMs)) },
    { name: `small: restore / CRIU (~${CRIU_RESTORE_SMALL_MS} ms, reference)`, value: div(summary.restoreMs, CRIU_RESTORE_SMALL_MS), best: div(summary.restoreMinMs, CRIU_RESTORE_SMALL_MS) },
  ];
  if (s.extraCaCerts !== undefined) {
    ratios.push({ name: 'small: restore end to end without NODE_EXTRA_CA_CERTS (ms)', value: summary.restoreNoCaMs, best: summary.restoreNoCaMinMs, note: 'the same aim, in an environment without it' });
  }
  ratios.push({ name: 'small: restore without Node start-up and module load (ms)', value: summary.stasisTotalMs, best: min(ok.map((r) => r.totalMs)), note: "stasis's own totalMs" });
  return { summary, ratios };
}

function summarizeSize(r: Omit<SizeResult, 'summary' | 'phases' | 'ratios'>): Pick<SizeResult, 'summary' | 'phases' | 'ratios'> {
  const okS = r.reps.map((x) => x.stasis).filter((x): x is DumpM => !!x?.ok);
  const okG = r.reps.map((x) => x.gcore).filter((x): x is GcoreM => !!x?.ok);
  const okD = r.reps.map((x) => x.dump).filter((x): x is DumpM => !!x?.ok);
  const okR = r.reps.map((x) => x.restore).filter((x): x is RestoreM => !!x?.ok);
  const lim = typeof r.limits === 'object' && r.limits ? r.limits : {};
  const reads = [...r.reps.flatMap((x) => x.readMs)];
  const s: Record<string, number | undefined> = {
    stasisMs: median(okS.map((x) => x.e2eMs)), stasisMinMs: min(okS.map((x) => x.e2eMs)), stasisOwnMs: median(okS.map((x) => x.totalMs)),
    stasisFrozenMs: median(okS.map((x) => x.frozenMs)),
    stasisApparent: median(okS.map((x) => x.apparent)), stasisDisk: median(okS.map((x) => x.disk)),
    gcoreMs: median(okG.map((x) => x.e2eMs)), gcoreMinMs: min(okG.map((x) => x.e2eMs)), gcoreFsyncMs: median(okG.map((x) => x.fsyncMs)),
    gcoreSyncedMs: median(okG.map((x) => (x.e2eMs ?? NaN) + (x.fsyncMs ?? NaN))), gcoreSyncedMinMs: min(okG.map((x) => (x.e2eMs ?? NaN) + (x.fsyncMs ?? NaN))),
    gcoreApparent: median(okG.map((x) => x.apparent)), gcoreDisk: median(okG.map((x) => x.disk)),
    dumpMs: median(okD.map((x) => x.e2eMs)), dumpOwnMs: median(okD.map((x) => x.totalMs)), dumpApparent: median(okD.map((x) => x.apparent)), dumpDisk: median(okD.map((x) => x.disk)),
    readMs: median(reads), readMinMs: min(reads),
    restoreMs: median(okR.map((x) => x.e2eMs)), restoreMinMs: min(okR.map((x) => x.e2eMs)), restoreOwnMs: median(okR.map((x) => x.totalMs)), restoreOwnMinMs: min(okR.map((x) => x.totalMs)),
    mmapMs: median(lim.mmap ?? []), freshMs: median(lim.fresh ?? []), thpMs: median(lim.thp ?? []), procmemMs: median(lim.procmem ?? []), vmwritevMs: median(lim.vmwritev ?? []),
    crc32Ms: median(r.crc32Ms ?? []),
    rssMiB: r.reps.find((x) => x.rssMiB)?.rssMiB, touchMs: r.reps.find((x) => x.touchMs)?.touchMs,
  };
  const phases = {
    stasisDump: phaseMedians(okS.map((x) => x.phasesMs)),
    dump: phaseMedians(okD.map((x) => x.phasesMs)),
    restore: phaseMedians(okR.map((x) => x.phasesMs)),
  };
  const big = r.mib >= 1024;
  const restoreVsRead: Ratio = { name: `${r.mib} MiB: restore end to end / one read of the image`, value: div(s.restoreMs, s.readMs), best: div(s.restoreMinMs, s.readMinMs) };
  const ratios: Ratio[] = [
    aimed({ name: `${r.mib} MiB: stasis dump / gcore`, value: div(s.stasisMs, s.gcoreMs), best: div(s.stasisMinMs, s.gcoreMinMs) }, '<= 1', (v) => v <= 1),
    { name: `${r.mib} MiB: stasis dump / (gcore + fsync of its core)`, value: div(s.stasisMs, s.gcoreSyncedMs), best: div(s.stasisMinMs, s.gcoreSyncedMinMs), note: 'stasis syncs its image, gcore does not' },
    aimed({ name: `${r.mib} MiB: image / gcore core, apparent size`, value: div(s.stasisApparent, s.gcoreApparent) }, '<= 1', (v) => v <= 1),
    aimed({ name: `${r.mib} MiB: image / gcore core, on disk`, value: div(s.stasisDisk, s.gcoreDisk) }, '<= 1', (v) => v <= 1),
    big ? aimed(restoreVsRead, '<= 2', (v) => v <= 2) : { ...restoreVsRead, note: '(aim <= 2 applies at 1 GiB)' },
    { name: `${r.mib} MiB: stasis's own restore time / one read`, value: div(s.restoreOwnMs, s.readMs), best: div(s.restoreOwnMinMs, s.readMinMs), note: 'without Node start-up' },
  ];
  if (r.mib === 1024) ratios.push({ name: `${r.mib} MiB: restore / CRIU (~${CRIU_RESTORE_1G_MS} ms, reference)`, value: div(s.restoreMs, CRIU_RESTORE_1G_MS), best: div(s.restoreMinMs, CRIU_RESTORE_1G_MS) });
  return { summary: s, phases, ratios };
}

function ratioTable(rs: Ratio[]): string {
  const x_ = (r: Ratio, v?: number) => (v === undefined ? 'n/a' : r.name.endsWith('(ms)') ? `${fmt(v)} ms` : `${fmt(v, 2)}x`);
  const rows: string[][] = [['ratio', 'medians', 'best reps', 'aim', '']];
  for (const r of rs) {
    rows.push([r.name, x_(r, r.value), r.best === undefined ? '' : x_(r, r.best), r.aim ?? '',
      r.aim ? (r.met === undefined ? 'unknown' : r.met ? 'MET' : 'NOT MET') : (r.note ?? '')]);
  }
  return table(rows, [false, true, true, false, false]);
}

function printSmall(r: SmallResult, o: Options): void {
  const w = (s: string) => process.stdout.write(s + '\n');
  const s = r.summary;
  w('');
  w(`== small C target (no extra memory, ${o.smallThreads} thread${o.smallThreads > 1 ? 's' : ''}): ${r.restores.filter((x) => x.ok).length}/${r.restores.length} restores; ${s.verified} ==`);
  const rows: string[][] = [['what', 'median ms', 'min ms', 'n']];
  rows.push(['fork + execve of the program, to its first line', fmt(s.spawnMs), fmt(min(r.spawnMs)), String(r.spawnMs.length)]);
  rows.push(['node -e 0 (Node start-up)', fmt(s.nodeMs), fmt(min(r.nodeMs)), String(r.nodeMs.length)]);
  rows.push(['node stasis.js restore --help (start-up + module load)', fmt(s.cliLoadMs), fmt(min(r.loadMs)), String(r.loadMs.length)]);
  rows.push(['stasis restore IMG --detach, end to end', fmt(s.restoreMs), fmt(s.restoreMinMs), String(r.restores.filter((x) => x.ok).length)]);
  if (r.extraCaCerts !== undefined) {
    rows.push(['node -e 0, without NODE_EXTRA_CA_CERTS', fmt(s.nodeNoCaMs), fmt(min(r.nodeNoCaMs)), String(r.nodeNoCaMs.length)]);
    rows.push(['stasis restore --detach, without NODE_EXTRA_CA_CERTS', fmt(s.restoreNoCaMs), fmt(s.restoreNoCaMinMs), String(r.noCaRestores.filter((x) => x.ok).length)]);
  }
  if (r.dump) rows.push(['(stasis dump of it, end to end)', fmt(r.dump.e2eMs), '', r.dump.ok ? '1' : '0']);
  w(table(rows, [false, true, true, true]));
  if (r.extraCaCerts !== undefined) {
    w(`NODE_EXTRA_CA_CERTS=${r.extraCaCerts} is set here: Node reads and parses certificates at every start-up`);
    w(`(nodejs/node#40524), ${fmt((s.nodeMs ?? NaN) - (s.nodeNoCaMs ?? NaN))} ms of each stasis command; the rows above without it show the difference.`);
  }
  w('where the end-to-end restore goes (medians; the phases are what stasis restore --json reports):');
  const br: string[][] = [['part', 'ms', 'share']];
  const total = (s.nodeMs ?? 0) + (s.loadAndExitMs ?? 0) + Object.values(s.phasesMs).reduce((a, b) => a + b, 0);
  const share = (v?: number) => (v === undefined || !total ? '' : `${((100 * v) / total).toFixed(0)}%`);
  br.push([`Node start-up (node -e 0)${r.extraCaCerts !== undefined ? `, of which NODE_EXTRA_CA_CERTS ${fmt((s.nodeMs ?? NaN) - (s.nodeNoCaMs ?? NaN))}` : ''}`, fmt(s.nodeMs), share(s.nodeMs)]);
  br.push([`module load, arguments, output, exit (module load alone: ${fmt(s.moduleLoadMs)})`, fmt(s.loadAndExitMs), share(s.loadAndExitMs)]);
  for (const [k, v] of Object.entries(s.phasesMs)) br.push([`phase ${k}`, fmt(v), share(v)]);
  br.push(['sum (the end-to-end median is ' + fmt(s.restoreMs) + ')', fmt(total), total ? '100%' : '']);
  w(table(br, [false, true, true]));
  w('(module load alone = node stasis.js restore --help minus node -e 0: Node\'s ESM loader and koffi)');
  if (r.dump?.phasesMs) w(`dump of the small target: ${fmt(r.dump.e2eMs)} ms end to end; stasis ${fmt(r.dump.totalMs)} ms = ${phasesText(r.dump.phasesMs)}`);
  for (const e of r.errors) w(`  error: ${e}`);
  for (const e of [...new Set(r.warnings)]) w(`  warning: ${e}`);
  w(ratioTable(r.ratios));
}

function printSize(r: SizeResult, o: Options): void {
  const w = (s: string) => process.stdout.write(s + '\n');
  const s = r.summary;
  const loads = r.reps.map((x) => x.load);
  w('');
  w(`== ${r.mib} MiB touched, ${o.threads} thread${o.threads > 1 ? 's' : ''}` +
    (s.rssMiB ? `: target RSS ${s.rssMiB.toFixed(0)} MiB` : '') + (loads.length ? `; load ${fmt(Math.min(...loads))}..${fmt(Math.max(...loads))}` : '') + ' ==');
  const rows: string[][] = [['what', 'median ms', 'min ms', 'n', 'file MiB', 'on disk MiB', "stasis's own ms"]];
  const n = (xs: ({ ok: boolean } | undefined)[]) => `${xs.filter((x) => x?.ok).length}/${xs.filter((x) => x).length}`;
  if (o.parts.includes('gcore')) {
    rows.push(['gcore -o', fmt(s.gcoreMs), fmt(s.gcoreMinMs), n(r.reps.map((x) => x.gcore)), fmt(mib(s.gcoreApparent), 0), fmt(mib(s.gcoreDisk), 0), '']);
    rows.push(['gcore -o, then fsync of its core', fmt(s.gcoreSyncedMs), fmt(s.gcoreSyncedMinMs), '', '', '', '']);
    rows.push(['stasis dump --leave-running', fmt(s.stasisMs), fmt(s.stasisMinMs), n(r.reps.map((x) => x.stasis)), fmt(mib(s.stasisApparent), 0), fmt(mib(s.stasisDisk), 0), fmt(s.stasisOwnMs)]);
  }
  if (o.parts.includes('restore')) {
    rows.push(['stasis dump (kills it)', fmt(s.dumpMs), '', n(r.reps.map((x) => x.dump)), fmt(mib(s.dumpApparent), 0), fmt(mib(s.dumpDisk), 0), fmt(s.dumpOwnMs)]);
    rows.push(['read the image once (page cache, 1 MiB reads)', fmt(s.readMs), fmt(s.readMinMs), String(r.reps.flatMap((x) => x.readMs).length), '', '', '']);
    rows.push(['stasis restore --detach, end to end', fmt(s.restoreMs), fmt(s.restoreMinMs), n(r.reps.map((x) => x.restore)), '', '', fmt(s.restoreOwnMs)]);
  }
  w(table(rows, [false, true, true, true, true, true, true]));
  const p = r.phases;
  if (Object.keys(p.stasisDump).length) w(`stasis dump --leave-running phases: ${phasesText(p.stasisDump)}`);
  if (Object.keys(p.dump).length) w(`stasis dump phases:                 ${phasesText(p.dump)}`);
  if (Object.keys(p.restore).length) w(`stasis restore phases:              ${phasesText(p.restore)}`);
  if (typeof r.limits === 'string') w(`machine limits: ${r.limits}`);
  else if (r.limits || s.crc32Ms !== undefined) {
    const lim = typeof r.limits === 'object' && r.limits ? r.limits : {};
    const one = (label: string, xs?: number[]) => (xs?.length ? `  ${label.padEnd(52)} ${fmt(median(xs)).padStart(6)}  (best ${fmt(min(xs))})` : '');
    const lines = [
      one('mmap(PROT_READ, MAP_POPULATE) of the image (no copy)', lim.mmap),
      one('read() into fresh anonymous memory (faults + copy)', lim.fresh),
      one('the same with MADV_HUGEPAGE (incl. compaction)', lim.thp),
      one('pread + pwrite to /proc/PID/mem (stasis\'s way, in C)', lim.procmem),
      one('pread + process_vm_writev', lim.vmwritev),
      one('zlib.crc32 in Node (restore checks every segment)', r.crc32Ms),
    ].filter(Boolean);
    if (lines.length) w(`machine limits for this image, ms (median, best):\n${lines.join('\n')}`);
  }
  if (s.dumpDisk !== undefined && s.stasisDisk !== undefined && s.dumpDisk > s.stasisDisk * 1.01 + 1048576) {
    w(`note: the dump made after gcore stored ${fmt(mib(s.dumpDisk - s.stasisDisk), 0)} MiB more on disk than the --leave-running one before it:`);
    w('gdb reads never-touched pages (thread stacks), which maps the shared zero page there; pagemap then calls them present');
    w('and stasis stores them as data instead of holes.');
  }
  for (const e of [...new Set(r.errors)]) w(`  error: ${e}`);
  for (const e of [...new Set(r.warnings)]) w(`  warning: ${e}`);
  w(ratioTable(r.ratios));
}

/** The figures as a Markdown table for the README. */
function markdown(small: SmallResult | null, sizes: SizeResult[], info: Record<string, string>, loads: number[], o: Options): string {
  const L: string[] = [];
  const ms = (x?: number) => (x === undefined ? '-' : x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${fmt(x)} ms`);
  const sz = (b?: number) => (b === undefined ? '-' : `${fmt(mib(b), 0)} MiB`);
  const x = (v?: number) => (v === undefined ? '-' : `${fmt(v, 2)}×`);
  L.push(`Measured on ${info.cpus.replace(/ x .*/, '')} vCPUs, shared and noisy: load average ${fmt(Math.min(...loads))}–${fmt(Math.max(...loads))} during the run; ` +
    `medians of ${o.reps} (sizes) and ${o.smallReps} (small target). \`npm run bench:restore\`:`);
  L.push('');
  if (sizes.length) {
    const showRatios = o.parts.includes('gcore');
    L.push(`| | ${sizes.map((r) => (r.mib >= 1024 && r.mib % 1024 === 0 ? `${r.mib / 1024} GiB` : `${r.mib} MiB`)).join(' | ')} |`);
    L.push(`|---|${sizes.map(() => '---').join('|')}|`);
    const row = (name: string, f: (r: SizeResult) => string) => L.push(`| ${name} | ${sizes.map(f).join(' | ')} |`);
    if (showRatios) {
      row('gcore -o: time (+ fsync of the core)', (r) => `${ms(r.summary.gcoreMs)} (${ms(r.summary.gcoreSyncedMs)})`);
      row('stasis dump --leave-running: time', (r) => ms(r.summary.stasisMs));
      row('core / image size (apparent)', (r) => `${sz(r.summary.gcoreApparent)} / ${sz(r.summary.stasisApparent)}`);
      row('core / image on disk', (r) => `${sz(r.summary.gcoreDisk)} / ${sz(r.summary.stasisDisk)}`);
      row('stasis dump ÷ gcore (aim ≤ 1)', (r) => x(div(r.summary.stasisMs, r.summary.gcoreMs)));
    }
    if (o.parts.includes('restore')) {
      row('read the image once (page cache)', (r) => ms(r.summary.readMs));
      row('stasis restore --detach, end to end', (r) => ms(r.summary.restoreMs));
      row("  of which stasis's own (phases: memory)", (r) => `${ms(r.summary.restoreOwnMs)} (${ms(r.phases.restore.memory)})`);
      row('restore ÷ one read (aim ≤ 2 at 1 GiB)', (r) => x(div(r.summary.restoreMs, r.summary.readMs)));
    }
    if (sizes.some((r) => r.mib === 1024) && o.parts.includes('restore')) L.push(`| CRIU restore (reference, this machine) | ${sizes.map((r) => (r.mib === 1024 ? '~0.57 s' : '')).join(' | ')} |`);
    L.push('');
  }
  if (small) {
    const s = small.summary;
    L.push('| small C target, 1 thread | time |');
    L.push('|---|---|');
    L.push(`| fork + execve to its first line | ${ms(s.spawnMs)} |`);
    L.push(`| stasis restore --detach, end to end (aim < 100 ms; CRIU ~30 ms) | ${ms(s.restoreMs)} |`);
    L.push(`| of which Node start-up / module load, output, exit | ${ms(s.nodeMs)} / ${ms(s.loadAndExitMs)} |`);
    if (small.extraCaCerts !== undefined) L.push(`| the same without NODE_EXTRA_CA_CERTS (Node start-up ${ms(s.nodeNoCaMs)}) | ${ms(s.restoreNoCaMs)} |`);
    L.push(`| of which restore phases | ${Object.entries(s.phasesMs).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')} ms |`);
  }
  return L.join('\n');
}

function which(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir) continue;
    const p = path.join(dir, name);
    try { fs.accessSync(p, fs.constants.X_OK); return p; } catch { /* next */ }
  }
  return null;
}

// ---------------------------------------------------------------------------------------

async function smallPart(exe: Record<string, string>, o: Options, log: (s: string) => void, loads: number[]): Promise<SmallResult> {
  const res: Omit<SmallResult, 'summary' | 'ratios'> = { spawnMs: [], nodeMs: [], loadMs: [], nodeNoCaMs: [], noCaRestores: [], restores: [], errors: [], warnings: [] };
  const noCaEnv = { ...process.env };
  if (process.env.NODE_EXTRA_CA_CERTS !== undefined) {
    res.extraCaCerts = process.env.NODE_EXTRA_CA_CERTS;
    delete noCaEnv.NODE_EXTRA_CA_CERTS;
  }
  const image = path.join(workDir, 'small.img');
  let target: Target | null = null;
  try {
    target = await Target.start(exe.restoree, 0, o.smallThreads, 300);
    const pid = target.pid;
    res.dump = await stasisDump(target, image, false, o);
    log(`bench: small: dump ${res.dump.ok ? `${fmt(res.dump.e2eMs)} ms (stasis ${fmt(res.dump.totalMs)} ms)` : `FAILED: ${res.dump.error}`}`);
    if (!res.dump.ok) { res.errors.push(`stasis dump: ${res.dump.error}`); return { ...res, ...summarizeSmall(res) }; }
    await Promise.race([target.exited, sleep(10_000)]);
    if (target.alive()) { res.warnings.push('stasis dump did not kill the target'); await target.stop(); }
    target = null;

    for (let rep = 0; rep < o.smallReps; rep++) {
      // Interleaved so each yardstick sees the same load as the restores.
      const m = await stasisRestore(image, pid, o, res.warnings);
      res.restores.push(m);
      loads.push(m.load);
      let noCa: RestoreM | undefined;
      if (res.extraCaCerts !== undefined) {
        noCa = await stasisRestore(image, pid, o, res.warnings, noCaEnv);
        res.noCaRestores.push(noCa);
        if (!noCa.ok) res.errors.push(`stasis restore (without NODE_EXTRA_CA_CERTS): ${noCa.error}`);
        const n2 = await timed(process.execPath, ['-e', '0'], o, noCaEnv);
        if (n2.ms !== undefined && !n2.error) res.nodeNoCaMs.push(n2.ms); else res.errors.push(`node -e 0: ${n2.error}`);
      }
      const line = await run(exe.launch, ['line', '--', exe.restoree, '-l', '5'], o.timeoutMs);
      const lf = /^line (\d+) ready /m.exec(line.stdout);
      if (lf) res.spawnMs.push(Number(lf[1]) / 1e6); else res.errors.push(`fork+execve of restoree: ${lastLine(line.stdout) || lastLine(line.stderr)}`);
      const n = await timed(process.execPath, ['-e', '0'], o);
      if (n.ms !== undefined && !n.error) res.nodeMs.push(n.ms); else res.errors.push(`node -e 0: ${n.error}`);
      const h = await timed(process.execPath, [o.stasis, 'restore', '--help'], o);
      if (h.ms !== undefined && !h.error) res.loadMs.push(h.ms); else res.errors.push(`stasis restore --help: ${h.error}`);
      log(`bench: small rep ${rep + 1}/${o.smallReps}: restore ${m.ok ? `${fmt(m.e2eMs)} ms end to end, stasis ${fmt(m.totalMs)} ms (${phasesText(m.phasesMs ?? {})}), check ${m.verified}` : `FAILED: ${m.error}`}; ` +
        (noCa ? `without NODE_EXTRA_CA_CERTS ${noCa.ok ? `${fmt(noCa.e2eMs)} ms` : 'FAILED'} (node -e 0 ${fmt(res.nodeNoCaMs.at(-1))} ms); ` : '') +
        `fork+execve ${fmt(res.spawnMs.at(-1))} ms, node -e 0 ${fmt(res.nodeMs.at(-1))} ms, restore --help ${fmt(res.loadMs.at(-1))} ms; load ${fmt(m.load)}`);
      if (!m.ok) res.errors.push(`stasis restore: ${m.error}`);
    }
  } catch (e) {
    res.errors.push((e as Error).message);
  } finally {
    if (target) await target.stop();
    fs.rmSync(image, { force: true });
  }
  res.errors = [...new Set(res.errors)];
  return { ...res, ...summarizeSmall(res) };
}

async function sizePart(size: number, exe: Record<string, string>, gcore: string | null, o: Options, log: (s: string) => void, loads: number[]): Promise<SizeResult> {
  const res: Omit<SizeResult, 'summary' | 'phases' | 'ratios'> = { mib: size, reps: [], limits: null, errors: [], warnings: [] };
  const doGcore = o.parts.includes('gcore'), doRestore = o.parts.includes('restore');
  if (doRestore) res.crc32Ms = crc32Ms(size, 3);
  for (let rep = 0; rep < o.reps; rep++) {
    const load = os.loadavg()[0];
    loads.push(load);
    const r: SizeRep = { rep, load, readMs: [] };
    res.reps.push(r);
    const image = path.join(workDir, `image.${size}`);
    let target: Target | null = null;
    try {
      target = await Target.start(exe.restoree, size, o.threads, 600);
      r.rssMiB = target.rssMiB;
      r.touchMs = target.touchMs;
      const pid = target.pid;
      if (doGcore) {
        // stasis first: gdb's reads of never-touched pages (thread stacks) map the zero page
        // there, which a later dump then sees as present. sync before each keeps writeback apart.
        for (const which_ of ['stasis', 'gcore']) {
          if (which_ === 'stasis') {
            r.stasis = await stasisDump(target, image, true, o);
            fs.rmSync(image, { force: true });
            if (!r.stasis.ok) res.errors.push(`stasis dump --leave-running: ${r.stasis.error}`);
          } else if (gcore) {
            r.gcore = await gcoreDump(target, path.join(workDir, 'core'), o, gcore);
            if (!r.gcore.ok) res.errors.push(`gcore: ${r.gcore.error}`);
          }
          for (const p of target.health()) res.warnings.push(`after ${which_ === 'stasis' ? 'stasis dump --leave-running' : 'gcore'}: ${p}`);
          if (!target.alive()) throw new Error('the target died');
        }
        log(`bench: ${size} MiB rep ${rep + 1}/${o.reps}: ` +
          `stasis dump --leave-running ${r.stasis?.ok ? `${fmt(r.stasis.e2eMs)} ms (stasis ${fmt(r.stasis.totalMs)}: ${phasesText(r.stasis.phasesMs ?? {})}), ${fmt(mib(r.stasis.apparent), 0)} MiB` : `FAILED: ${r.stasis?.error}`}; ` +
          `gcore ${r.gcore?.ok ? `${fmt(r.gcore.e2eMs)} ms + fsync ${fmt(r.gcore.fsyncMs)} ms, ${fmt(mib(r.gcore.apparent), 0)} MiB` : gcore ? `FAILED: ${r.gcore?.error}` : 'not installed'}; load ${fmt(load)}`);
      }
      if (doRestore) {
        r.dump = await stasisDump(target, image, false, o);
        if (!r.dump.ok) {
          res.errors.push(`stasis dump: ${r.dump.error}`);
          log(`bench: ${size} MiB rep ${rep + 1}/${o.reps}: dump FAILED: ${r.dump.error}`);
          continue;
        }
        await Promise.race([target.exited, sleep(10_000)]);
        if (target.alive()) { res.warnings.push('stasis dump did not kill the target'); await target.stop(); }
        target = null;
        // The yardstick: one read of the image, warm in the page cache (readimg warms it first).
        const modes = rep === 0 && o.limitsReps > 0 ? ['read', 'mmap', 'fresh', 'thp', 'procmem', 'vmwritev'] : ['read'];
        const lim = await readLimits(exe.readimg, image, ['read'], 3, o);
        if (typeof lim === 'string') res.errors.push(lim);
        else r.readMs.push(...(lim.read ?? []));
        if (modes.length > 1) {
          const more = await readLimits(exe.readimg, image, modes.slice(1), o.limitsReps, o);
          res.limits = more;
          if (typeof more === 'string') res.errors.push(more);
        }
        r.restore = await stasisRestore(image, pid, o, res.warnings);
        if (!r.restore.ok) res.errors.push(`stasis restore: ${r.restore.error}`);
        log(`bench: ${size} MiB rep ${rep + 1}/${o.reps}: dump ${fmt(r.dump.e2eMs)} ms (stasis ${fmt(r.dump.totalMs)}: ${phasesText(r.dump.phasesMs ?? {})}); ` +
          `read ${fmt(median(r.readMs))} ms; restore ${r.restore.ok ? `${fmt(r.restore.e2eMs)} ms end to end, stasis ${fmt(r.restore.totalMs)} ms (${phasesText(r.restore.phasesMs ?? {})}), check ${r.restore.verified}` : `FAILED: ${r.restore.error}`}; load ${fmt(r.restore.load)}`);
      }
    } catch (e) {
      res.errors.push((e as Error).message);
      log(`bench: ${size} MiB rep ${rep + 1}/${o.reps}: ${(e as Error).message}`);
    } finally {
      if (target) await target.stop();
      fs.rmSync(image, { force: true });
    }
  }
  return { ...res, ...summarizeSize(res) };
}

async function main(argv: string[]): Promise<number> {
  const parsed = parseOrExit(argv, parseArgs, USAGE);
  if (typeof parsed === 'number') return parsed;
  const o = parsed;
  const log = (s: string) => process.stderr.write(s + '\n');
  const started = Date.now();

  const info = machineInfo();
  workDir = fs.mkdtempSync(path.join(path.resolve(o.dir), 'stasis-bench-restore-'));
  const buildDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stasis-bench-build-'));
  const cleanup = () => {
    killLive();
    for (const pid of restoredPids) {
      if (isOurRestoree(pid)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    }
    removeDirs([workDir, buildDir]);
  };
  const offSignals = onSignals(cleanup, log);

  try {
    const sizes = o.parts.some((p) => p === 'gcore' || p === 'restore') ? o.sizes : [];
    const maxMiB = Math.max(0, ...sizes);
    const free = freeMiB(workDir);
    // One image or core at a time (gcore's is ~3% over the RSS), plus a margin.
    const needMiB = maxMiB * 1.1 + 256;
    log(`bench: images go to ${workDir} (${(free / 1024).toFixed(1)} GiB free)`);
    if (free < needMiB) { log(`bench: need ${(needMiB / 1024).toFixed(1)} GiB free there; use --dir or smaller --sizes`); return 1; }
    const availMiB = os.freemem() / 1048576;
    if (availMiB < maxMiB * 3 + 512) log(`bench: warning: ${availMiB.toFixed(0)} MiB free memory; the largest size needs ~${maxMiB * 3} MiB (target, image in the page cache, copies)`);

    const exe = compileTargets(['restoree', 'launch', 'readimg'], buildDir);
    restoreeExe = exe.restoree;
    launchExe = exe.launch;
    warnIfUnbuilt(o.stasis, log);
    const gcore = o.parts.includes('gcore') ? which('gcore') : null;
    if (o.parts.includes('gcore') && !gcore) log('bench: warning: gcore not found (install gdb); its rows are skipped');

    const loads: number[] = [os.loadavg()[0]];
    let small: SmallResult | null = null;
    if (o.parts.includes('small')) {
      log(`bench: small target: dump, then ${o.smallReps} restores interleaved with fork+execve, node -e 0, stasis restore --help`);
      small = await smallPart(exe, o, log, loads);
    }
    const results: SizeResult[] = [];
    for (const size of sizes) {
      log(`bench: ${size} MiB: ${o.reps} rep(s) of ${[o.parts.includes('gcore') ? 'stasis dump --leave-running and gcore' : '', o.parts.includes('restore') ? 'dump, read, restore' : ''].filter(Boolean).join(', then ')}`);
      results.push(await sizePart(size, exe, gcore, o, log, loads));
    }
    loads.push(os.loadavg()[0]);
    const elapsedS = (Date.now() - started) / 1000;

    if (o.json) {
      process.stdout.write(JSON.stringify({ machine: info, options: { ...o, dir: undefined }, loadAverages: loads, elapsedS, small, sizes: results }, null, 2) + '\n');
      return 0;
    }
    const w = (s: string) => process.stdout.write(s + '\n');
    w(`stasis restore benchmark: ${info.kernel}, ${info.cpus}, ${info.memory}`);
    w(`THP ${info.thp}; ${info.gdb}; node ${info.node}; ran ${elapsedS.toFixed(0)} s; load average (1 min) ${fmt(Math.min(...loads))}..${fmt(Math.max(...loads))}, median ${fmt(median(loads))}`);
    const ncpu = os.cpus().length;
    if ((median(loads) ?? 0) > ncpu / 2) w(`warning: load average above ${ncpu / 2} on ${ncpu} CPUs: other processes compete; compare the best reps too`);
    w('Times are wall clock, fork + execve to exit (or to the first line), measured in C; "stasis\'s own" is the');
    w('totalMs stasis reports with --json (no Node start-up). Images and cores are deleted after each measurement.');
    if (small) printSmall(small, o);
    for (const r of results) printSize(r, o);
    w('');
    w('aims (from the medians):');
    const aims = [...(small?.ratios ?? []), ...results.flatMap((r) => r.ratios)].filter((x) => x.aim);
    for (const a of aims) w(`  ${a.name} ${a.aim}: ${a.met === undefined ? 'unknown' : a.met ? 'MET' : 'NOT MET'}`);
    w('');
    w('for the README:');
    w('');
    w(markdown(small, results, info, loads, o));
    return 0;
  } finally {
    cleanup();
    offSignals();
  }
}

runMain(main);
