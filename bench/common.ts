/**
 * What the benchmarks (bench/core.ts, bench/restore.ts) share: paths, option parsing
 * helpers, running and reaping processes by PID, compiling the C targets, statistics and
 * table output, machine information, temp-dir space checks and signal cleanup.
 *
 * Only node built-ins.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const TARGETS = path.join(ROOT, 'bench', 'targets');
/** The default stasis entry point, run with node. */
export const DEFAULT_STASIS = path.join(ROOT, 'bin', 'stasis.js');

// ---------------------------------------------------------------------------------------
// options

export class UsageError extends Error {}

/** An integer option value >= min. */
export function intArg(name: string, v: string | undefined, min: number): number {
  const n = Number(v);
  if (v === undefined || !Number.isInteger(n) || n < min) throw new UsageError(`${name} needs an integer >= ${min}`);
  return n;
}

/** --sizes: MiB, comma-separated, with an optional M or G suffix (2G = 2048). */
export function parseSizes(v: string | undefined): number[] {
  if (!v) throw new UsageError('--sizes needs a list');
  return v.split(',').map((s) => {
    const m = /^(\d+)([gGmM]?)$/.exec(s.trim());
    if (!m || Number(m[1]) < 1) throw new UsageError(`bad size '${s}'`);
    return Number(m[1]) * (m[2].toLowerCase() === 'g' ? 1024 : 1);
  });
}

/** A comma-separated list of names from all; what names one of them in the messages ('method', 'part'). */
export function parseNames<T extends string>(option: string, what: string, v: string | undefined, all: readonly T[]): T[] {
  if (!v) throw new UsageError(`${option} needs a list`);
  return v.split(',').map((s) => {
    if (!(all as readonly string[]).includes(s)) throw new UsageError(`unknown ${what} '${s}' (${all.join(', ')})`);
    return s as T;
  });
}

/** The options both benchmarks take (their defaults differ). */
export interface CommonOptions {
  sizes: number[];
  reps: number;
  threads: number;
  stasis: string;
  dir: string;
  timeoutMs: number;
  json: boolean;
}

/** Handles option a if it is one of CommonOptions (next() gives its value); false if it is not. */
export function commonOption(a: string, next: () => string | undefined, o: CommonOptions): boolean {
  switch (a) {
    case '--sizes': o.sizes = parseSizes(next()); return true;
    case '--reps': o.reps = intArg(a, next(), 1); return true;
    case '--threads': o.threads = intArg(a, next(), 1); return true;
    case '--stasis': { const v = next(); if (!v) throw new UsageError('--stasis needs a file'); o.stasis = path.resolve(v); return true; }
    case '--dir': { const v = next(); if (!v) throw new UsageError('--dir needs a directory'); o.dir = v; return true; }
    case '--timeout': o.timeoutMs = intArg(a, next(), 1) * 1000; return true;
    case '--json': o.json = true; return true;
    default: return false;
  }
}

/**
 * Parses the arguments; on -h/--help prints usage to stdout and returns 0, on a usage error
 * prints it with the usage to stderr and returns 2.
 */
export function parseOrExit<O>(argv: string[], parse: (argv: string[]) => O | null, usage: string): O | number {
  let o: O | null;
  try { o = parse(argv); } catch (e) {
    if (e instanceof UsageError) { process.stderr.write(`bench: ${e.message}\n${usage}\n`); return 2; }
    throw e;
  }
  if (!o) { process.stdout.write(usage + '\n'); return 0; }
  return o;
}

/** Runs main with the command line and sets the exit code from it. */
export function runMain(main: (argv: string[]) => Promise<number>): void {
  main(process.argv.slice(2)).then(
    (code) => { process.exitCode = code; },
    (err: unknown) => { process.stderr.write(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`); process.exitCode = 1; },
  );
}

// ---------------------------------------------------------------------------------------
// processes: everything started here is tracked by PID and reaped

/** Children still running; killed by PID on cleanup. */
export const live = new Set<ChildProcess>();

export interface RunResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number; timedOut: boolean }

/** Runs a command to completion; the time is from spawn to exit. Kills it (and its descendants) after timeoutMs. */
export function run(cmd: string, args: string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    live.add(child);
    let stdout = '', stderr = '', timedOut = false, ms = 0, exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => { if (stdout.length < 1 << 20) stdout += d; });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { if (stderr.length < 1 << 20) stderr += d; });
    const timer = setTimeout(() => { timedOut = true; if (child.pid) killTree(child.pid); }, timeoutMs);
    let finished = false;
    const finish = () => {
      if (finished || !exited) return;
      finished = true;
      clearTimeout(timer);
      live.delete(child);
      resolve({ ...exited, stdout, stderr, ms, timedOut });
    };
    child.on('error', (err) => {
      ms = Number(process.hrtime.bigint() - t0) / 1e6;
      exited = { code: null, signal: null };
      stderr += String(err.message);
      finish();
    });
    child.on('exit', (code, signal) => {
      ms = Number(process.hrtime.bigint() - t0) / 1e6;
      exited = { code, signal };
      // Output may still be buffered; a grandchild holding the pipes must not hold us up.
      setTimeout(finish, 2000).unref();
    });
    child.on('close', finish);
  });
}

export function procStat(pid: number): { state: string; ppid: number } | null {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0], ppid: Number(rest[1]) };
  } catch { return null; }
}

/** PIDs of the descendants of pid, from /proc (children before their parents' siblings). */
export function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const st = procStat(Number(e));
    if (st) parent.set(Number(e), st.ppid);
  }
  const out: number[] = [];
  const walk = (p: number) => { for (const [c, pp] of parent) if (pp === p) { out.push(c); walk(c); } };
  walk(pid);
  return out;
}

/** SIGKILL a process we started and everything below it, each by PID. */
export function killTree(pid: number): void {
  for (const p of [pid, ...descendants(pid)]) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
}

export function statusField(pid: number, field: string): string | null {
  try {
    const m = new RegExp(`^${field}:\\s*(.*)$`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? m[1].trim() : null;
  } catch { return null; }
}

/**
 * After a dump that left the target running: is it still traced, is a thread left stopped?
 * SIGCONTs it if it is stopped but not traced; what it found, as messages.
 */
export function tracedOrStopped(pid: number): string[] {
  const problems: string[] = [];
  const tracer = Number(statusField(pid, 'TracerPid') ?? 0);
  if (tracer) problems.push(`target still traced by PID ${tracer}`);
  for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
    const st = procStat(Number(task));
    if (st && (st.state === 'T' || st.state === 't')) { problems.push(`thread ${task} left stopped (${st.state})`); break; }
  }
  if (!tracer && problems.length) { try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ } }
  return problems;
}

/** The last non-empty line of s, trimmed. */
export function lastLine(s: string): string {
  return s.trim().split('\n').filter((l) => l.trim()).pop()?.trim() ?? '';
}

// ---------------------------------------------------------------------------------------
// set-up and clean-up

/** Compiles bench/targets/NAME.c into buildDir for each name; name -> executable. */
export function compileTargets(names: string[], buildDir: string): Record<string, string> {
  const exe: Record<string, string> = {};
  for (const name of names) {
    exe[name] = path.join(buildDir, name);
    execFileSync('gcc', ['-O2', '-Wall', '-pthread', '-o', exe[name], path.join(TARGETS, `${name}.c`)], { stdio: ['ignore', 'inherit', 'inherit'] });
  }
  return exe;
}

/** Warns when the default stasis entry point would run without a build. */
export function warnIfUnbuilt(stasis: string, log: (s: string) => void): void {
  if (stasis === DEFAULT_STASIS && !fs.existsSync(path.join(ROOT, 'dist', 'src', 'cli', 'main.js'))) {
    log('bench: warning: dist/src/cli/main.js missing (run npm run build); the stasis rows will fail');
  }
}

/** MiB available to us on the file system of dir. */
export function freeMiB(dir: string): number {
  const sfs = fs.statfsSync(dir);
  return (sfs.bavail * sfs.bsize) / 1048576;
}

/** Kills every live child by PID, and what is below it. */
export function killLive(): void {
  for (const c of live) if (c.pid) killTree(c.pid);
}

/** Deletes directories with everything in them, if they exist. */
export function removeDirs(dirs: string[]): void {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
}

/** On SIGINT or SIGTERM: cleanup, then exit 130. Returns what removes the handlers. */
export function onSignals(cleanup: () => void, log: (s: string) => void): () => void {
  const onSignal = (sig: NodeJS.Signals) => { log(`bench: ${sig}, cleaning up`); cleanup(); process.exit(130); };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

// ---------------------------------------------------------------------------------------
// statistics and output

export function median(xs: (number | undefined)[]): number | undefined {
  const v = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return undefined;
  const h = v.length >> 1;
  return v.length % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
}

/** Columns padded to their widest cell, right-aligned where right[i]; two spaces between. */
export function table(rows: string[][], right: boolean[]): string {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (right[i] ? (c ?? '').padStart(w[i]) : (c ?? '').padEnd(w[i]))).join('  ').trimEnd()).join('\n');
}

/** value: from the medians; best: from the best repetition of each side (noise only makes times longer). */
export interface Ratio { name: string; value?: number; best?: number; aim?: string; met?: boolean; note?: string }

export const div = (a?: number, b?: number) => (a !== undefined && b !== undefined && b > 0 ? a / b : undefined);

export function aimed(r: Ratio, aimText: string, ok: (v: number) => boolean): Ratio {
  return { ...r, aim: aimText, met: r.value === undefined ? undefined : ok(r.value) };
}

/** Kernel, CPUs, memory, load, THP, node, gdb (and gcc if asked), for the header and --json. */
export function machineInfo(withGcc = false): Record<string, string> {
  const sh = (cmd: string, args: string[]) => { try { return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0].trim(); } catch { return 'unavailable'; } };
  const read = (p: string) => { try { return fs.readFileSync(p, 'utf8').trim(); } catch { return 'unavailable'; } };
  const cpu = os.cpus();
  return {
    kernel: `${os.release()} ${os.arch()}`,
    cpus: `${cpu.length} x ${cpu[0]?.model ?? '?'}`,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ${(os.freemem() / 2 ** 30).toFixed(1)} GiB free`,
    load: os.loadavg().map((x) => x.toFixed(2)).join(' '),
    thp: read('/sys/kernel/mm/transparent_hugepage/enabled'),
    node: process.version,
    gdb: sh('gdb', ['--version']),
    ...(withGcc ? { gcc: sh('gcc', ['--version']) } : {}),
  };
}
