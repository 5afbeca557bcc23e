/**
 * Checkpoint/restart from outside, for the restore-*.test.ts suites.
 *
 * - startProgram(t, cmd, args, opts): any program (python3, perl, gzip, bash, a copied
 *   target) with stdout/stderr to a pipe this process reads (bytes kept exactly) or to a
 *   file; stdin /dev/null or a pipe kept open and never written. Killed and reaped after
 *   the test.
 * - dump(pid, image, scratch, extra): `stasis dump PID -o IMAGE --json [extra]`.
 * - restore(t, image, opts): `stasis restore IMAGE [extra]` in the foreground (it exits
 *   with the restored program's status) or with --detach (it prints the PID). Output is
 *   kept as bytes. Whatever it leaves running (a detached process, or one orphaned by a
 *   restore that timed out) is killed by PID after the test.
 * - selfCheck(t, name, opts) + verdictSubtests(t, run, names): the life of a C target
 *   that checks itself after a restore (test/targets/restore-*.c: setup, "ready", wait
 *   for TRIGGER, then "OK name" / "FAIL name: why" lines and "done N"), one subtest per
 *   verdict.
 * - processGone / waitGone / assertNotStoppedOrTraced / assertNothingLeft: what is left.
 * - seededRandom(label): the random delays, replayable with STASIS_TEST_SEED.
 *
 * Loading this module marks close-on-exec any fd this process inherited without it (see
 * closeInheritedFdsOnExec). The test process never traces anything: every dump and
 * restore runs in a separate `node bin/stasis.js` process.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { fcntl, F } from '../../src/sys/fd.js';
import type { CheckpointResult } from '../../src/dump.js';
import { killQuietly, leftovers, readFileOrNull, sleep, startTarget, stasisBin, taskIds, tempDir, waitFor, waitSettled, type RunResult } from './targets.js';

// ---------------------------------------------------------------------------------------
// file descriptors this process inherited

/**
 * Marks close-on-exec every fd >= 3 this test process inherited without it (a shell or a
 * CI runner may leak pipes, e.g. fd 250/251 here). child_process.spawn passes such fds to
 * every target, and `stasis dump` rightly refuses a process holding a pipe to another
 * process: the targets must hold only what they open themselves. Called when this module
 * loads. (stasis's own fcntl(), since node has none; no ptrace is involved.)
 */
export function closeInheritedFdsOnExec(): number[] {
  const marked: number[] = [];
  for (const entry of fs.readdirSync('/proc/self/fd')) {
    const fd = Number(entry);
    if (fd < 3) continue;
    const info = readFileOrNull(`/proc/self/fdinfo/${fd}`);
    const flags = info?.match(/^flags:\s*([0-7]+)/m);
    if (!flags || (parseInt(flags[1], 8) & 0o2000000) !== 0) continue; // gone, or O_CLOEXEC already
    const FD_CLOEXEC = 1;
    try {
      fcntl(fd, F.SETFD, FD_CLOEXEC);
      marked.push(fd);
    } catch {
      // closed meanwhile
    }
  }
  return marked;
}

export const inheritedFdsMarked = closeInheritedFdsOnExec();

// ---------------------------------------------------------------------------------------
// randomness that can be replayed

/**
 * A small PRNG (mulberry32). The seed is STASIS_TEST_SEED when set, else random; tests
 * print it (t.diagnostic) so that a failure at "a random moment" can be replayed.
 */
export function seededRandom(label: string): { seed: number; next: () => number } {
  const fromEnv = process.env.STASIS_TEST_SEED;
  let seed = fromEnv ? Number(fromEnv) : Math.floor(Math.random() * 2 ** 31);
  for (const c of label) seed = (seed * 31 + c.charCodeAt(0)) >>> 0;
  const start = seed;
  let a = seed;
  return {
    seed: start,
    next() {
      a = (a + 0x6d2b79f5) >>> 0;
      let x = a;
      x = Math.imul(x ^ (x >>> 15), x | 1);
      x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
      return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
    },
  };
}

export function seedNote(): string {
  return process.env.STASIS_TEST_SEED ? `STASIS_TEST_SEED=${process.env.STASIS_TEST_SEED}` : 'set STASIS_TEST_SEED to replay';
}

// ---------------------------------------------------------------------------------------
// programs with byte-exact output

export type Sink = 'pipe' | { file: string; append?: boolean };

export interface ProgramOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** 'pipe': a pipe this process holds open and never writes (default: /dev/null) */
  stdin?: 'pipe' | 'ignore';
  stdout?: Sink;
  stderr?: Sink;
}

export interface Program {
  pid: number;
  proc: ChildProcess;
  /** bytes read so far from a piped stdout / stderr */
  stdout(): Buffer;
  stderr(): Buffer;
  /** resolves once the process is reaped and its pipes are drained */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  alive(): boolean;
  /** SIGKILL by PID (unless told otherwise) and wait; idempotent */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** resolves when stdout (piped) has at least `n` bytes or matches `re` */
  waitForOutput(cond: number | RegExp, timeoutMs?: number): Promise<void>;
}

function openSink(sink: Sink | undefined): number | 'pipe' | 'ignore' {
  if (sink === undefined || sink === 'pipe') return 'pipe';
  return fs.openSync(sink.file, sink.append ? 'a' : 'w');
}

/**
 * Starts `cmd args` as a child of this process. Files given as sinks are opened here,
 * handed to the child and closed here at once: the test must not hold the child's open
 * file descriptions (stasis would refuse a process sharing them).
 */
export function startProgram(t: TestContext | undefined, cmd: string, args: string[], opts: ProgramOptions = {}): Program {
  const out = openSink(opts.stdout);
  const err = openSink(opts.stderr);
  let proc: ChildProcess;
  try {
    proc = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: [opts.stdin ?? 'ignore', out, err] });
  } finally {
    if (typeof out === 'number') fs.closeSync(out);
    if (typeof err === 'number') fs.closeSync(err);
  }
  if (proc.pid === undefined) throw new Error(`could not start ${cmd}`);
  const pid = proc.pid;
  const outChunks: Buffer[] = [];
  const errChunks: Buffer[] = [];
  const waiters = new Set<() => void>();
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  proc.stdout?.on('data', (d: Buffer) => {
    outChunks.push(d);
    waiters.forEach((w) => w());
  });
  proc.stderr?.on('data', (d: Buffer) => errChunks.push(d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on('exit', (code, signal) => {
      exitInfo = { code, signal };
      waiters.forEach((w) => w());
    });
    // 'close': reaped and the pipes drained (nothing else holds them: the process is dead)
    proc.on('close', () => resolve(exitInfo!));
  });
  let stopping: Promise<void> | undefined;
  const program: Program = {
    pid,
    proc,
    stdout: () => Buffer.concat(outChunks),
    stderr: () => Buffer.concat(errChunks),
    exited,
    alive: () => exitInfo === undefined,
    stop(signal: NodeJS.Signals = 'SIGKILL') {
      stopping ??= (async () => {
        if (exitInfo === undefined) killQuietly(pid, signal);
        proc.stdin?.destroy();
        await exited;
      })();
      return stopping;
    },
    waitForOutput(cond: number | RegExp, timeoutMs = 20_000) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          const buf = Buffer.concat(outChunks);
          const ok = typeof cond === 'number' ? buf.length >= cond : cond.test(buf.toString('latin1'));
          if (ok) {
            done();
            resolve();
          } else if (exitInfo) {
            done();
            reject(new Error(`${cmd} (pid ${pid}) exited ${JSON.stringify(exitInfo)} before printing ${String(cond)}; stdout ${JSON.stringify(buf.toString('latin1').slice(-300))}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${cmd} (pid ${pid}): no output matching ${String(cond)} in ${timeoutMs} ms`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
  };
  t?.after(() => program.stop());
  return program;
}

// ---------------------------------------------------------------------------------------
// stasis dump / restore

export interface BytesResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  ms: number;
  timedOut: boolean;
}

export function describeBytes(r: BytesResult | RunResult): string {
  const out = Buffer.isBuffer(r.stdout) ? r.stdout.toString('latin1') : r.stdout;
  return `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}${'timedOut' in r && r.timedOut ? ' TIMED OUT' : ''}\n--- stdout\n${out.slice(-3000)}\n--- stderr\n${r.stderr.slice(-3000)}`;
}

/**
 * Runs `node bin/stasis.js ARGS`. stderr is a file in `scratch`; stdout too unless told
 * ('pipe': a pipe read by this process, for foreground restores only, since a detached
 * restored process would hold it open). Files are read back when stasis exits and left
 * in place (the scratch directory goes with the test): a restored process holds the
 * restore's stdout/stderr, and a later dump of it records them as files it needs.
 * On timeout stasis is killed by PID.
 */
export async function stasisCommand(
  args: string[],
  opts: { timeoutMs?: number; stdin?: 'pipe' | 'ignore'; stdout?: Sink; scratch: string; cwd?: string; watch?: (stdoutSoFar: string, stasisPid: number) => void },
): Promise<BytesResult> {
  fs.mkdirSync(opts.scratch, { recursive: true });
  const tag = `${Date.now()}-${Math.floor(Math.random() * 1e9)}`;
  const piped = opts.stdout === 'pipe';
  const sinkFile = typeof opts.stdout === 'object' ? opts.stdout : undefined;
  const outFile = sinkFile ? sinkFile.file : path.join(opts.scratch, `stasis-${tag}.out`);
  const errFile = path.join(opts.scratch, `stasis-${tag}.err`);
  const outFd = piped ? -1 : fs.openSync(outFile, sinkFile?.append ? 'a' : 'w');
  const errFd = fs.openSync(errFile, 'w');
  const start = performance.now();
  let proc: ChildProcess;
  try {
    proc = spawn(process.execPath, [stasisBin, ...args], { cwd: opts.cwd, stdio: [opts.stdin ?? 'ignore', piped ? 'pipe' : outFd, errFd] });
  } finally {
    if (outFd >= 0) fs.closeSync(outFd);
    fs.closeSync(errFd);
  }
  const chunks: Buffer[] = [];
  const ended = piped ? new Promise<void>((resolve) => proc.stdout!.on('end', resolve).on('close', resolve)) : Promise.resolve();
  proc.stdout?.on('data', (d: Buffer) => chunks.push(d));
  const soFar = () => (piped ? Buffer.concat(chunks).toString('utf8') : (readFileOrNull(outFile) ?? ''));
  let timedOut = false;
  let watcher: NodeJS.Timeout | undefined;
  if (opts.watch) {
    const watch = opts.watch;
    watcher = setInterval(() => {
      if (proc.pid !== undefined) watch(soFar(), proc.pid);
    }, 20);
  }
  const result = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    const timer = setTimeout(() => {
      timedOut = true;
      if (proc.pid !== undefined) killQuietly(proc.pid, 'SIGKILL');
    }, opts.timeoutMs ?? 60_000);
    proc.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      proc.stdin?.destroy();
      resolve({ code, signal });
    });
  }).finally(() => clearInterval(watcher));
  if (piped) {
    // the rest of what was written before the exit; nobody else should hold the pipe
    await Promise.race([ended, sleep(2_000)]);
    proc.stdout?.destroy();
  }
  const stdout = piped ? Buffer.concat(chunks) : fs.readFileSync(outFile);
  const stderr = fs.readFileSync(errFile, 'utf8');
  return { ...result, stdout, stderr, ms: performance.now() - start, timedOut };
}

/** What `stasis dump --json` prints. */
export type DumpJson = CheckpointResult;

export interface DumpResult extends BytesResult {
  json?: DumpJson;
}

/** `stasis dump PID -o IMAGE --json [extra]`. */
export async function dump(pid: number, image: string, scratch: string, extra: string[] = [], timeoutMs = 60_000): Promise<DumpResult> {
  const r: DumpResult = await stasisCommand(['dump', String(pid), '-o', image, '--json', ...extra], { scratch, timeoutMs });
  if (r.code === 0) {
    try {
      r.json = JSON.parse(r.stdout.toString('utf8')) as DumpJson;
    } catch {
      // leave json undefined: the test asserts on it
    }
  }
  return r;
}

/** Start time (clock ticks since boot) of a process, or null when it is gone. */
export function startTicks(pid: number): number | null {
  const st = readFileOrNull(`/proc/${pid}/stat`);
  const m = st?.match(/^\d+ \(.*\) \S (.*)$/s);
  if (!m) return null;
  return Number(m[1].split(' ')[18]);
}

/** Clock ticks since boot now (what a process started now would show as its start time). */
export function nowTicks(): number {
  const uptime = Number((readFileOrNull('/proc/uptime') ?? '0').split(' ')[0]);
  return Math.floor(uptime * 100);
}

/** True when no process `pid` exists, or it is a zombie about to be reaped. */
export function processGone(pid: number): boolean {
  const st = readFileOrNull(`/proc/${pid}/stat`);
  if (st === null) return true;
  const m = st.match(/^\d+ \(.*\) (\S)/s);
  return m !== null && (m[1] === 'Z' || m[1] === 'X');
}

export async function waitGone(pid: number, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (processGone(pid)) return true;
    await sleep(20);
  }
  return processGone(pid);
}

/**
 * Kills `pid` if it still runs and was started after `since` (clock ticks): a process a
 * restore made with a PID of ours, never an unrelated one that reused the number.
 */
export async function killRestored(pid: number, since: number): Promise<void> {
  const start = startTicks(pid);
  if (start === null || start + 1 < since) return;
  killQuietly(pid, 'SIGKILL');
  await waitGone(pid, 5_000);
}

export interface RestoreOptions {
  detach?: boolean;
  extra?: string[];
  stdin?: 'pipe' | 'ignore';
  /** where the restore's stdout goes (default: a scratch file, returned as bytes) */
  stdout?: Sink;
  timeoutMs?: number;
  scratch: string;
  /** the PID the image restores to: killed after the test if still there */
  pid?: number;
  cwd?: string;
  /** called every 20 ms while stasis runs with what it printed so far and its PID */
  watch?: (stdoutSoFar: string, stasisPid: number) => void;
}

export interface RestoreResult extends BytesResult {
  /** --detach: the PID printed */
  restoredPid?: number;
}

/**
 * `stasis restore IMAGE [--detach] [extra]`. In the foreground it resolves when the
 * restored program has exited (stasis exits with its status). Anything left with the
 * image's PID after the test (detached, or orphaned by a timeout) is killed.
 */
export async function restore(t: TestContext | undefined, image: string, opts: RestoreOptions): Promise<RestoreResult> {
  const since = nowTicks();
  const args = ['restore', image, ...(opts.detach ? ['--detach'] : []), ...(opts.extra ?? [])];
  if (opts.pid !== undefined) {
    const pid = opts.pid;
    t?.after(() => killRestored(pid, since));
  }
  const r: RestoreResult = await stasisCommand(args, {
    scratch: opts.scratch,
    stdin: opts.stdin,
    stdout: opts.stdout,
    timeoutMs: opts.timeoutMs ?? 60_000,
    cwd: opts.cwd,
    watch: opts.watch,
  });
  if (opts.detach && r.code === 0) {
    const m = r.stdout.toString('utf8').match(/^(\d+)\s*$/m);
    if (m) {
      r.restoredPid = Number(m[1]);
      const pid = r.restoredPid;
      t?.after(() => killRestored(pid, since));
    }
  }
  if (r.timedOut && opts.pid !== undefined) await killRestored(opts.pid, since);
  return r;
}

// ---------------------------------------------------------------------------------------
// verdicts printed by the C targets

export interface Verdict {
  ok: boolean;
  name: string;
  detail: string;
}

/** "OK name [detail]" / "FAIL name: detail" lines, in order. */
export function parseVerdicts(stdout: string): Map<string, Verdict> {
  const out = new Map<string, Verdict>();
  for (const line of stdout.split('\n')) {
    const m = line.match(/^(OK|FAIL) ([\w.-]+):?\s*(.*)$/);
    if (!m) continue;
    const name = m[2];
    const v = { ok: m[1] === 'OK', name, detail: m[3] };
    const prev = out.get(name);
    // a name reported twice keeps the failure
    if (!prev || prev.ok) out.set(name, v);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// what is left behind

export interface ProcLook {
  pid: number;
  state: string;
  tracerPid: number;
  comm: string;
}

export function look(pid: number): ProcLook[] {
  const out: ProcLook[] = [];
  for (const tid of taskIds(pid)) {
    const s = readFileOrNull(`/proc/${pid}/task/${tid}/status`);
    if (!s) continue;
    const field = (k: string) => s.match(new RegExp(`^${k}:\\s*(.*)$`, 'm'))?.[1] ?? '';
    out.push({ pid: tid, state: field('State').charAt(0), tracerPid: Number(field('TracerPid')), comm: field('Name') });
  }
  return out;
}

/** Tasks of `pids` that are stopped (T), in a trace stop (t) or traced. */
export function stoppedOrTracedAmong(pids: number[]): ProcLook[] {
  return pids.flatMap(look).filter((p) => /[tT]/.test(p.state) || p.tracerPid !== 0);
}

/** `ps -eo pid,stat,comm | awk '$2 ~ /^[tT]/'`: every stopped or trace-stopped process on the machine. */
export function stoppedSystemWide(): Array<{ pid: number; stat: string; comm: string; ppid: number; start: number }> {
  const out: Array<{ pid: number; stat: string; comm: string; ppid: number; start: number }> = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const st = readFileOrNull(`/proc/${e}/stat`);
    const m = st?.match(/^(\d+) \((.*)\) (\S) (.*)$/s);
    if (!m || !/[tT]/.test(m[3])) continue;
    const rest = m[4].split(' ');
    out.push({ pid: Number(m[1]), stat: m[3], comm: m[2], ppid: Number(rest[0]), start: Number(rest[18]) });
  }
  return out;
}

/** Restore stubs (`sleep 1000000`, see src/ptrace/stub.ts) orphaned to init, started after `since`. */
export function orphanedStubs(since: number): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    const cmdline = readFileOrNull(`/proc/${pid}/cmdline`);
    if (cmdline !== 'sleep\u00001000000\u0000') continue;
    const st = readFileOrNull(`/proc/${pid}/stat`);
    const m = st?.match(/^\d+ \(.*\) \S (\d+) (.*)$/s);
    if (!m || Number(m[1]) !== 1) continue;
    const start = Number(m[2].split(' ')[17]);
    if (start >= since) out.push(pid);
  }
  return out;
}

/** Throws if any task of `pids` is stopped or traced. */
export function assertNotStoppedOrTraced(pids: number[], what: string): void {
  const bad = stoppedOrTracedAmong(pids);
  if (bad.length) throw new Error(`${what}: stopped or traced tasks left: ${JSON.stringify(bad)}`);
}

/**
 * The python3 binary itself: a pyenv shim is a shell script that execs it, and a script
 * would add a process between the test and the program it wants to checkpoint.
 */
export function realPython(): string | null {
  const r = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  const exe = r.stdout.trim();
  return exe && fs.existsSync(exe) ? exe : null;
}

/** Whether `cmd` can be run (for skipping tests of programs the machine lacks). */
export function haveCommand(cmd: string): boolean {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0;
}

// ---------------------------------------------------------------------------------------
// C targets that check themselves after a restore

export interface SelfCheckOptions {
  /** extra arguments after TRIGGER (the first argument) */
  args?: (dir: string) => string[];
  cwd?: (dir: string) => string;
  /** threads that never block, for waitSettled; undefined: do not wait for it to settle */
  spinning?: number;
  /** called every 20 ms with what the restored process printed so far */
  watch?: (stdoutSoFar: string, stasisPid: number, pid: number) => void;
  restoreTimeoutMs?: number;
  /** prepare the temporary directory before the target starts */
  prepare?: (dir: string) => void;
  /** do something to the settled target just before the dump (`dir`: the test's scratch directory) */
  beforeDump?: (pid: number, dir: string) => Promise<void>;
  /** do something with the image before it is restored (the process is gone by then) */
  beforeRestore?: (image: string, pid: number) => Promise<void>;
  /** more arguments for `stasis restore` */
  restoreArgs?: string[];
  /** more arguments for `stasis dump` (with --leave-running the target is killed after the dump) */
  dumpArgs?: string[];
}

export interface SelfCheckRun {
  pid: number;
  exe: string;
  dir: string;
  image: string;
  /** what the target printed before the dump */
  linesBefore: string[];
  dumped: DumpResult;
  restored?: RestoreResult;
  /** what the restored process printed (the restore's stdout) */
  after: string;
  verdicts: Map<string, Verdict>;
}

/**
 * The life of a self-checking C target (test/targets/restore-*.c taking TRIGGER first):
 * start it, wait for "ready" (and for it to settle), dump it (it is killed and reaped),
 * create TRIGGER, restore it in the foreground and collect its verdict lines.
 */
export async function selfCheck(t: TestContext, name: string, opts: SelfCheckOptions = {}): Promise<SelfCheckRun> {
  const dir = tempDir(t, `stasis-${name}-`);
  opts.prepare?.(dir);
  const trigger = path.join(dir, 'trigger');
  const target = await startTarget(t, name, { args: [trigger, ...(opts.args?.(dir) ?? [])], cwd: opts.cwd?.(dir) });
  if (opts.spinning !== undefined) {
    await waitSettled(target.pid, { spinning: opts.spinning, timeoutMs: 5_000 }).catch((err) => t.diagnostic(`${name} did not settle: ${String(err).split('\n')[0]}`));
  }
  await opts.beforeDump?.(target.pid, dir);
  const image = path.join(dir, `${name}.img`);
  const dumped = await dump(target.pid, image, dir, opts.dumpArgs ?? []);
  if (dumped.code === 0 && opts.dumpArgs?.includes('--leave-running')) await target.stop();
  const run: SelfCheckRun = { pid: target.pid, exe: target.exe, dir, image, linesBefore: [...target.lines], dumped, after: '', verdicts: new Map() };
  if (dumped.code !== 0) return run;
  await target.exited;
  t.diagnostic(`${name}: pid ${target.pid}, ${dumped.json?.threads} threads, ${dumped.json?.mappings} mappings, ${dumped.json?.storedBytes} bytes stored; dump ${dumped.ms.toFixed(0)} ms`);
  fs.writeFileSync(trigger, '');
  const pid = target.pid;
  await opts.beforeRestore?.(image, pid);
  const restored = await restore(t, image, {
    scratch: dir,
    pid,
    extra: opts.restoreArgs,
    timeoutMs: opts.restoreTimeoutMs ?? 60_000,
    watch: opts.watch ? (out, stasisPid) => opts.watch!(out, stasisPid, pid) : undefined,
  });
  run.restored = restored;
  run.after = restored.stdout.toString('utf8');
  run.verdicts = parseVerdicts(run.after);
  t.diagnostic(`${name}: restore exited ${restored.code} after ${restored.ms.toFixed(0)} ms`);
  for (const line of run.after.split('\n')) if (line.startsWith('INFO ')) t.diagnostic(`${name}: ${line}`);
  if (restored.stderr.trim()) t.diagnostic(`${name}: stasis restore stderr: ${restored.stderr.trim()}`);
  return run;
}

/**
 * One subtest per expected verdict, so that each check passes or fails by name; then one
 * that the restore exited 0 and left nothing behind.
 */
export async function verdictSubtests(t: TestContext, run: SelfCheckRun, expected: string[]): Promise<void> {
  const context = () =>
    run.dumped.code !== 0
      ? `the dump failed:\n${describeBytes(run.dumped)}`
      : `the restored process printed:\n${run.after.slice(-4000)}\n--- stasis restore: exit ${run.restored?.code}${run.restored?.timedOut ? ' (TIMED OUT)' : ''}, stderr:\n${run.restored?.stderr.slice(-3000)}`;
  for (const name of expected) {
    await t.test(name, () => {
      const v = run.verdicts.get(name);
      if (!v) assert.fail(`no verdict for "${name}": ${context()}`);
      const stderr = run.restored?.stderr.trim();
      assert.ok(v.ok, `FAIL ${name}: ${v.detail}${stderr ? `\n(stasis restore said on stderr: ${stderr.slice(-2000)})` : ''}`);
    });
  }
  const unexpected = [...run.verdicts.keys()].filter((k) => !expected.includes(k));
  await t.test('restore exits 0 and leaves nothing behind', async () => {
    assert.deepEqual(unexpected, [], 'verdicts the test does not know');
    assert.equal(run.dumped.code, 0, `stasis dump: ${describeBytes(run.dumped)}`);
    assert.equal(run.restored?.code, 0, `stasis restore exits with the program's status: ${context()}`);
    assert.match(run.after, /^done 0$/m, 'the program printed "done 0"');
    assert.ok(await waitGone(run.pid, 5_000), `pid ${run.pid} is gone after the restore returned`);
    assertNotStoppedOrTraced([run.pid], `pid ${run.pid}`);
  });
}

/**
 * The last test of every restore-*.test.ts file: nothing this file started is left, and
 * nothing is stopped or traced (`ps -eo pid,stat,comm | awk '$2 ~ /^[tT]/'`, restricted to
 * processes started since the file began: other sessions may have their own).
 */
export async function assertNothingLeft(t: TestContext, since: number, pids: number[] = []): Promise<void> {
  await waitFor(() => leftovers().length === 0, 'leftovers to go', 3_000).catch(() => undefined);
  assert.deepEqual(leftovers(), [], 'no target, restored process or stub is left');
  assertNotStoppedOrTraced(pids, 'processes of this file');
  for (const pid of pids) assert.ok(processGone(pid), `pid ${pid} is gone`);
  assert.deepEqual(orphanedStubs(since), [], 'no restore stub (sleep 1000000) was orphaned');
  const stopped = stoppedSystemWide().filter((p) => p.start >= since);
  if (stopped.length) t.diagnostic(`stopped processes started since this file began: ${JSON.stringify(stopped)}`);
  assert.deepEqual(
    stopped.filter((p) => p.comm.startsWith('restore-') || p.comm === 'attrs-main' || p.comm.startsWith('t-')),
    [],
    'no target of this suite is stopped',
  );
}
