/**
 * Test targets and the commands the tests run.
 *
 * - buildTarget(name): compiles test/targets/NAME.c with `gcc -g -O0 -pthread` (plus the
 *   flags in TARGET_CFLAGS) into a cache directory, rebuilt when the source or a header
 *   in test/targets (restore-common.h) is newer.
 * - startTarget(t, name): starts it with child_process.spawn, waits for its "ready" line,
 *   and registers a cleanup (t.after) that kills it by PID and reaps it. The test process
 *   never traces a target; the tracer is always a separate process (stasis, gdb, gcore).
 * - runStasis(args): runs `node bin/stasis.js ARGS` and collects {code, stdout, stderr}.
 * - makeCore(pid, file): `stasis core PID -o FILE --json`, or gdb's `gcore` when the
 *   environment has STASIS_TEST_CORE_WITH=gcore (to check the harness without stasis).
 * - run(cmd, args): any other command, with a timeout.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';

/** The repository: this file is dist/test/helpers/targets.js once compiled. */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const stasisBin = path.join(repoRoot, 'bin', 'stasis.js');
export const targetsDir = path.join(repoRoot, 'test', 'targets');
export const cacheDir = path.join(os.tmpdir(), 'stasis-targets');

/** Extra gcc flags per target. */
export const TARGET_CFLAGS: Record<string, string[]> = {
  avx: ['-mavx2'],
};

// ---------------------------------------------------------------------------------------
// running commands

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  timeoutMs?: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string;
}

/**
 * Runs a command to completion without blocking the event loop (targets started by the
 * test keep having their output read meanwhile). On timeout the command is killed by PID
 * and the promise rejects.
 */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) killQuietly(child.pid, 'SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const ms = performance.now() - start;
      if (timedOut) {
        reject(new Error(`${cmd} ${args.join(' ')}: timed out after ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
      } else {
        resolve({ code, signal, stdout, stderr, ms });
      }
    });
  });
}

export function killQuietly(pid: number, signal: NodeJS.Signals | number = 'SIGKILL'): void {
  try {
    process.kill(pid, signal);
  } catch {
    /* already gone */
  }
}

/** `node bin/stasis.js ARGS`. */
export function runStasis(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(process.execPath, [stasisBin, ...args], opts);
}

// ---------------------------------------------------------------------------------------
// making cores

export type CoreTool = 'stasis' | 'gcore';

/** Which tool makeCore uses: STASIS_TEST_CORE_WITH=gcore switches to gdb's gcore. */
export function coreTool(): CoreTool {
  const v = process.env.STASIS_TEST_CORE_WITH;
  if (v === undefined || v === '' || v === 'stasis') return 'stasis';
  if (v === 'gcore') return 'gcore';
  throw new Error(`STASIS_TEST_CORE_WITH=${v}: expected 'stasis' or 'gcore'`);
}

/** What `stasis core --json` prints (one object on stdout). */
export interface CoreJson {
  file: string;
  bytes: number;
  threads: number;
  mappings: number;
  pauseMs: number;
  totalMs: number;
  snapshot: boolean;
}

export interface CoreResult extends RunResult {
  tool: CoreTool;
  /** the parsed --json output (stasis, success only) */
  json?: CoreJson;
}

/**
 * Makes a core of a live process at `file`: `stasis core PID -o FILE --json [extra]`, or
 * with STASIS_TEST_CORE_WITH=gcore, `gcore -o PREFIX PID` renamed to FILE (`extra` is
 * then ignored; gcore has no such options).
 */
export async function makeCore(pid: number, file: string, extra: string[] = [], opts: RunOptions = {}): Promise<CoreResult> {
  if (coreTool() === 'gcore') {
    // gcore writes PREFIX.PID; it has no option for an exact name.
    const prefix = `${file}.gcore-tmp`;
    const r = await run('gcore', ['-o', prefix, String(pid)], opts);
    const made = `${prefix}.${pid}`;
    if (fs.existsSync(made)) {
      if (r.code === 0) {
        try {
          fs.renameSync(made, file);
        } catch (err) {
          // e.g. FILE is a directory: gcore never saw FILE, so fail as a careful tool would
          fs.rmSync(made, { force: true });
          return { ...r, code: 1, stderr: `${r.stderr}harness: cannot put gcore's core at ${file}: ${String(err)}\n`, tool: 'gcore' };
        }
      } else {
        fs.rmSync(made, { force: true });
      }
    }
    return { ...r, tool: 'gcore' };
  }
  const r = await runStasis(['core', String(pid), '-o', file, '--json', ...extra], opts);
  const result: CoreResult = { ...r, tool: 'stasis' };
  if (r.code === 0) {
    try {
      result.json = JSON.parse(r.stdout) as CoreJson;
    } catch (err) {
      throw new Error(`stasis core --json printed no JSON object: ${JSON.stringify(r.stdout)} (${String(err)})`);
    }
  }
  return result;
}

/** A message for assertion failures: what a command printed. */
export function describe(r: RunResult): string {
  return `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

// ---------------------------------------------------------------------------------------
// building and starting targets

/** Compiles test/targets/NAME.c (when needed) and returns the executable's path. */
export function buildTarget(name: string): string {
  const src = path.join(targetsDir, `${name}.c`);
  const flags = ['-g', '-O0', '-pthread', '-Wall', ...(TARGET_CFLAGS[name] ?? [])];
  // Cached by content: the flags, the source and the headers beside it (restore-common.h).
  // Another checkout building another version of a target gets its own directory.
  const hash = createHash('sha256').update(flags.join(' ')).update(fs.readFileSync(src));
  for (const header of fs.readdirSync(targetsDir).filter((f) => f.endsWith('.h')).sort()) hash.update(fs.readFileSync(path.join(targetsDir, header)));
  const dir = path.join(cacheDir, hash.digest('hex').slice(0, 16));
  const exe = path.join(dir, name);
  if (fs.existsSync(exe)) return exe;
  fs.mkdirSync(dir, { recursive: true });
  const tmp = `${exe}.${process.pid}.tmp`;
  const r = spawnSyncChecked('gcc', [...flags, '-o', tmp, src]);
  if (r !== '') process.stderr.write(r);
  fs.renameSync(tmp, exe); // atomic: a concurrent build never sees half a file
  return exe;
}

function spawnSyncChecked(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stdout}${r.stderr}`);
  return r.stdout + r.stderr;
}

export interface Target {
  name: string;
  exe: string;
  pid: number;
  proc: ChildProcess;
  /** every line the target printed on stdout so far */
  lines: string[];
  /** the "ready ..." line split on spaces */
  readyFields: string[];
  stderr: () => string;
  /** resolves with the first line (already printed or to come) matching `re` */
  waitForLine(re: RegExp, timeoutMs?: number, fromIndex?: number): Promise<string>;
  /** true while the process has not exited */
  alive(): boolean;
  /** resolves when it has exited and been reaped */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** kills it by PID (SIGKILL unless told) and waits until it is reaped; idempotent */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface StartOptions {
  args?: string[];
  cwd?: string;
  /** a shell command run before exec-ing the target, e.g. 'ulimit -c unlimited' */
  shellPrefix?: string;
  readyTimeoutMs?: number;
  /** keep stdin open as a pipe (default: /dev/null) */
  stdinPipe?: boolean;
}

/**
 * Starts a target and waits for its "ready" line. With a test context the target is
 * always killed and reaped after the test (t.after), whatever happens.
 */
export async function startTarget(t: TestContext | undefined, name: string, opts: StartOptions = {}): Promise<Target> {
  const exe = buildTarget(name);
  const args = opts.args ?? [];
  const proc = opts.shellPrefix
    ? spawn('/bin/sh', ['-c', `${opts.shellPrefix} && exec "$0" "$@"`, exe, ...args], {
        cwd: opts.cwd,
        stdio: [opts.stdinPipe ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      })
    : spawn(exe, args, { cwd: opts.cwd, stdio: [opts.stdinPipe ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  if (proc.pid === undefined) {
    await new Promise((resolve) => proc.once('error', resolve));
    throw new Error(`could not start ${exe}`);
  }
  const pid = proc.pid;
  const lines: string[] = [];
  let stderr = '';
  let partial = '';
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const waiters = new Set<() => void>();
  const notify = () => waiters.forEach((w) => w());
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    partial += d;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    if (parts.length) notify();
  });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on('exit', (code, signal) => {
      exitInfo = { code, signal };
      notify();
      resolve(exitInfo);
    });
  });

  const waitForLine = (re: RegExp, timeoutMs = 20_000, fromIndex = 0): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = lines.slice(fromIndex).find((l) => re.test(l));
        if (found !== undefined) {
          done();
          resolve(found);
        } else if (exitInfo) {
          done();
          reject(new Error(`${name} (pid ${pid}) exited (${JSON.stringify(exitInfo)}) before printing ${re}; stderr: ${stderr}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${name} (pid ${pid}) printed no line matching ${re} in ${timeoutMs} ms; stdout: ${lines.join('\\n')}; stderr: ${stderr}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  let stopping: Promise<void> | undefined;
  const target: Target = {
    name,
    exe,
    pid,
    proc,
    lines,
    readyFields: [],
    stderr: () => stderr,
    waitForLine,
    alive: () => exitInfo === undefined,
    exited,
    stop(signal: NodeJS.Signals = 'SIGKILL') {
      stopping ??= (async () => {
        if (exitInfo === undefined) killQuietly(pid, signal);
        await exited;
      })();
      return stopping;
    },
  };
  t?.after(() => target.stop());
  try {
    const ready = await waitForLine(/^ready\b/, opts.readyTimeoutMs ?? 20_000);
    target.readyFields = ready.trim().split(/\s+/);
  } catch (err) {
    await target.stop();
    throw err;
  }
  return target;
}

// ---------------------------------------------------------------------------------------
// looking at processes from outside

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function readFileOrNull(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

export function taskIds(pid: number): number[] {
  try {
    return fs
      .readdirSync(`/proc/${pid}/task`)
      .map(Number)
      .sort((a, b) => a - b);
  } catch {
    return [];
  }
}

export interface ProcStatus {
  state: string; // one letter: R S D T t Z X I
  tracerPid: number;
  ppid: number;
  threads: number;
  raw: string;
}

/** /proc/PID/status (or /proc/PID/task/TID/status), null when the process is gone. */
export function procStatus(pid: number, tid?: number): ProcStatus | null {
  const raw = readFileOrNull(tid === undefined ? `/proc/${pid}/status` : `/proc/${pid}/task/${tid}/status`);
  if (raw === null) return null;
  const field = (k: string) => raw.match(new RegExp(`^${k}:\\s*(.*)$`, 'm'))?.[1] ?? '';
  return {
    state: field('State').charAt(0),
    tracerPid: Number(field('TracerPid')),
    ppid: Number(field('PPid')),
    threads: Number(field('Threads')),
    raw,
  };
}

/**
 * Asserts (by throwing) that every thread of PID exists, is not stopped or traced and is
 * not a zombie: what a target must look like after any dump, failed or not.
 */
export function assertRunningUntraced(pid: number, what = `pid ${pid}`): void {
  const tids = taskIds(pid);
  if (tids.length === 0) throw new Error(`${what}: the process is gone`);
  for (const tid of tids) {
    const st = procStatus(pid, tid);
    if (st === null) continue; // a thread that just exited
    if (st.tracerPid !== 0) throw new Error(`${what}: thread ${tid} is still traced by ${st.tracerPid}`);
    if (/[tTZX]/.test(st.state)) throw new Error(`${what}: thread ${tid} is in state ${st.state}`);
  }
}

/** Every PID whose parent is `pid` (from /proc/PID/task/TID/children). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const tid of taskIds(pid)) {
    const s = readFileOrNull(`/proc/${pid}/task/${tid}/children`);
    if (s) out.push(...s.trim().split(/\s+/).filter(Boolean).map(Number));
  }
  return out;
}

/**
 * Waits until the process has settled: every thread but `spinning` of them is asleep in
 * a syscall, and /proc/PID/task/TID/syscall (number, args, sp, pc) is the same in two
 * samples `intervalMs` apart. Targets print "ready" just before their last blocking call,
 * so a test waits for this before comparing two views of the same process.
 */
export async function waitSettled(pid: number, opts: { spinning?: number; timeoutMs?: number; intervalMs?: number } = {}): Promise<void> {
  const spinning = opts.spinning ?? 0;
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  const interval = opts.intervalMs ?? 20;
  let previous = '';
  let last = '';
  while (Date.now() < deadline) {
    const tids = taskIds(pid);
    if (tids.length === 0) throw new Error(`pid ${pid} is gone`);
    const sample = tids.map((tid) => `${tid}: ${(readFileOrNull(`/proc/${pid}/task/${tid}/syscall`) ?? 'gone').trim()}`);
    const running = sample.filter((l) => / running$/.test(l)).length;
    last = sample.join('\n');
    if (running === spinning && last === previous) return;
    previous = last;
    await sleep(interval);
  }
  throw new Error(`pid ${pid} did not settle (${spinning} spinning expected):\n${last}`);
}

/** Waits until `cond()` is true, polling; throws with `what` on timeout. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000, intervalMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(intervalMs);
  }
}

interface ProcInfo {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  /** clock ticks since boot */
  start: number;
}

function procInfo(pid: number | 'self'): ProcInfo | null {
  const st = readFileOrNull(`/proc/${pid}/stat`);
  const m = st?.match(/^(\d+) \((.*)\) (\S) (.*)$/s);
  if (!m) return null;
  const rest = m[4].split(' '); // fields 4.. of proc(5)
  return { pid: Number(m[1]), comm: m[2], state: m[3], ppid: Number(rest[0]), start: Number(rest[18]) };
}

function allProcesses(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const p = procInfo(Number(e));
    if (p) out.push(p);
  }
  return out;
}

/** Processes anywhere on the system that are stopped (T) or in a trace stop (t). */
export function stoppedProcesses(): { pid: number; state: string; comm: string }[] {
  return allProcesses()
    .filter((p) => /[tT]/.test(p.state))
    .map(({ pid, state, comm }) => ({ pid, state, comm }));
}

const selfStart = procInfo('self')?.start ?? 0;

/**
 * What this test process left behind: every process descended from it (all that it
 * started has been waited for by the end of a file, so any is a leftover, stopped or
 * not), and every orphan (parent 1) started since this process started that runs a
 * target executable, e.g. a snapshot child whose target died before it was reaped.
 * Processes of other sessions on the same machine are not counted.
 */
export function leftovers(): { pid: number; state: string; comm: string; why: string }[] {
  const procs = allProcesses();
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  const descends = (p: ProcInfo): boolean => {
    for (let q: ProcInfo | undefined = p, n = 0; q && n < 64; q = byPid.get(q.ppid), n++) {
      if (q.ppid === process.pid) return true;
      if (q.ppid <= 1) return false;
    }
    return false;
  };
  const out: { pid: number; state: string; comm: string; why: string }[] = [];
  for (const p of procs) {
    if (p.pid === process.pid) continue;
    if (descends(p)) {
      out.push({ pid: p.pid, state: p.state, comm: p.comm, why: 'descendant of the test process' });
      continue;
    }
    if (p.ppid === 1 && p.start >= selfStart) {
      let exe = '';
      try {
        exe = fs.readlinkSync(`/proc/${p.pid}/exe`);
      } catch {
        /* zombie or gone */
      }
      const isTarget = exe.startsWith(cacheDir + path.sep) || (exe === '' && p.state === 'Z' && fs.existsSync(path.join(targetsDir, `${p.comm}.c`)));
      if (isTarget) out.push({ pid: p.pid, state: p.state, comm: p.comm, why: 'orphaned copy of a target' });
    }
  }
  return out;
}

/** A fresh temporary directory, removed after the test. */
export function tempDir(t: TestContext | undefined, prefix = 'stasis-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t?.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The 1-based line numbers of `test/targets/NAME.c` containing `marker`. */
export function sourceLines(name: string, marker: string): number[] {
  const text = fs.readFileSync(path.join(targetsDir, `${name}.c`), 'utf8').split('\n');
  const out: number[] = [];
  text.forEach((l, i) => {
    if (l.includes(marker)) out.push(i + 1);
  });
  if (out.length === 0) throw new Error(`no line of ${name}.c contains ${JSON.stringify(marker)}`);
  return out;
}
