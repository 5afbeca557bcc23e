/**
 * Supervised runs (`stasis run`, `stasis checkpoint`) for run.test.ts, and targets started
 * outside this process for library.test.ts.
 *
 * - startRun(t, args, opts): `node bin/stasis.js run ARGS` as a child of this process,
 *   its stdout a pipe read here (bytes kept) or a regular file, its stdin /dev/null or a
 *   pipe written with write()/endInput(). After the test the supervisor and the program it
 *   ran are killed by PID (if still there) and reaped.
 * - programOf(run): the PID of the supervised program (the supervisor's child that is not a
 *   restore stub).
 * - manifest(dir), imageFiles(dir): DIR/manifest.json as a user reads it, and the image
 *   files actually in DIR.
 * - corruptImageData(file): flips bytes in the middle of the largest PT_LOAD segment.
 * - scratchDir(t, prefix): a temporary directory, removed after the test (and again at the
 *   end of the file, by removeScratchDirs()).
 * - mountTmpfs(t, bytes): a small tmpfs, unmounted after the test.
 * - startDetached(t, exe, args, outFile, {inputs}): a target that is NOT a child of this
 *   process (started by a shell that exits at once; init reaps it), for library tests where
 *   this process is the tracer; `inputs` opens more fds for reading (5: FILE). Killed by PID
 *   after the test and waited for until gone.
 *
 * Every PID a test starts is recorded with its start time, so that cleanup never kills a
 * process that merely reused the number.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { cacheDir, killQuietly, readFileOrNull, run, sleep, stasisBin, taskIds } from './targets.js';
import { readSegments } from './elf.js';

// ---------------------------------------------------------------------------------------
// processes by PID, safely

/** Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), or null. */
export function startTime(pid: number): number | null {
  const st = readFileOrNull(`/proc/${pid}/stat`);
  const m = st?.match(/^\d+ \(.*\) \S (.*)$/s);
  return m ? Number(m[1].split(' ')[18]) : null;
}

/** State letter of a process (R S D T t Z X), or null when gone. */
export function stateOf(pid: number): string | null {
  const st = readFileOrNull(`/proc/${pid}/stat`);
  const m = st?.match(/^\d+ \(.*\) (\S)/s);
  return m ? m[1] : null;
}

export function gone(pid: number): boolean {
  const s = stateOf(pid);
  return s === null || s === 'Z' || s === 'X';
}

export async function waitUntilGone(pid: number, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (stateOf(pid) === null) return true;
    await sleep(10);
  }
  return stateOf(pid) === null;
}

/** A process this test started (or restored), remembered with its start time. */
export interface Owned {
  pid: number;
  start: number;
}

export function own(pid: number): Owned {
  return { pid, start: startTime(pid) ?? -1 };
}

/** SIGKILL `p` only if it is still the process we started (same start time). */
export function killOwned(p: Owned, signal: NodeJS.Signals = 'SIGKILL'): void {
  const now = startTime(p.pid);
  if (now === null) return;
  if (p.start !== -1 && now !== p.start) return; // the PID was reused by someone else
  killQuietly(p.pid, signal);
}

const selfStart = startTime(process.pid) ?? 0;

/**
 * Tasks of `pids` that are stopped (T), in a trace stop (t) or traced, plus what
 * `ps -eo pid,stat,comm | awk '$2 ~ /^[tT]/'` shows of ours: processes in state t/T that
 * descend from this process, or that were orphaned to init since it started and run one
 * of the run-* test targets. (Other sessions may run these tests at the same time: their
 * programs are briefly in a trace stop under their own supervisors, which is not ours.)
 */
export function stoppedOrTraced(pids: number[]): string[] {
  const bad: string[] = [];
  const seen = new Set<number>();
  for (const pid of pids) {
    for (const tid of taskIds(pid)) {
      const s = readFileOrNull(`/proc/${pid}/task/${tid}/status`);
      if (!s) continue;
      const state = s.match(/^State:\s*(\S)/m)?.[1] ?? '?';
      const tracer = Number(s.match(/^TracerPid:\s*(\d+)/m)?.[1] ?? 0);
      if (/[tT]/.test(state) || tracer !== 0) bad.push(`pid ${pid} task ${tid}: state ${state}, tracer ${tracer}`);
    }
    seen.add(pid);
  }
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || seen.has(Number(e))) continue;
    const st = readFileOrNull(`/proc/${e}/stat`);
    const m = st?.match(/^\d+ \((.*)\) (\S)/s);
    if (!m || !/[tT]/.test(m[2])) continue;
    const pid = Number(e);
    if (descendsFromUs(pid)) {
      bad.push(`pid ${e} (${m[1]}): state ${m[2]}, started by this test process`);
      continue;
    }
    const rest = (st ?? '').replace(/^\d+ \(.*\) \S /s, '').split(' ');
    if (Number(rest[0]) !== 1 || Number(rest[18]) < selfStart) continue;
    let exe = '';
    try {
      exe = fs.readlinkSync(`/proc/${e}/exe`);
    } catch {
      continue;
    }
    if (exe.startsWith(cacheDir + path.sep) && path.basename(exe).startsWith('run-')) bad.push(`pid ${e} (${m[1]}): state ${m[2]}, an orphaned test target`);
  }
  return bad;
}

function parentOf(pid: number): number {
  const st = readFileOrNull(`/proc/${pid}/stat`);
  const m = st?.match(/^\d+ \(.*\) \S (\d+)/s);
  return m ? Number(m[1]) : 0;
}

function descendsFromUs(pid: number): boolean {
  for (let p = parentOf(pid), n = 0; p > 1 && n < 64; p = parentOf(p), n++) if (p === process.pid) return true;
  return false;
}

// ---------------------------------------------------------------------------------------
// stasis run

export type Out = 'pipe' | { file: string };

export interface RunOptions {
  stdout?: Out;
  stderr?: Out;
  stdin?: 'pipe' | 'ignore';
  cwd?: string;
}

export interface SupervisedRun {
  /** the supervisor (node bin/stasis.js run ...) */
  pid: number;
  proc: ChildProcess;
  stdout(): Buffer;
  stderr(): string;
  write(text: string): void;
  endInput(): void;
  alive(): boolean;
  /** resolves once the supervisor is reaped and its pipes drained */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitForStdout(cond: RegExp | number, timeoutMs?: number): Promise<void>;
  waitForStderr(re: RegExp, timeoutMs?: number): Promise<void>;
  /** the supervisor and every program PID registered with adopt() */
  owned: Owned[];
  adopt(pid: number): void;
}

/** `node bin/stasis.js ARGS` (run, or anything else) with the supervisor's stdio as asked. */
export function startStasis(t: TestContext | undefined, args: string[], opts: RunOptions = {}): SupervisedRun {
  const sink = (o: Out | undefined): 'pipe' | number => (o === undefined || o === 'pipe' ? 'pipe' : fs.openSync(o.file, 'w'));
  const out = sink(opts.stdout);
  const err = sink(opts.stderr);
  let proc: ChildProcess;
  try {
    proc = spawn(process.execPath, [stasisBin, ...args], { cwd: opts.cwd, stdio: [opts.stdin ?? 'ignore', out, err] });
  } finally {
    // the test must not keep the program's file descriptions open
    if (typeof out === 'number') fs.closeSync(out);
    if (typeof err === 'number') fs.closeSync(err);
  }
  if (proc.pid === undefined) throw new Error('could not start node bin/stasis.js');
  const pid = proc.pid;
  const outChunks: Buffer[] = [];
  let errText = '';
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const waiters = new Set<() => void>();
  const notify = () => waiters.forEach((w) => w());
  proc.stdout?.on('data', (d: Buffer) => {
    outChunks.push(d);
    notify();
  });
  proc.stderr?.setEncoding('utf8').on('data', (d: string) => {
    errText += d;
    notify();
  });
  proc.stdin?.on('error', () => undefined); // EPIPE when the program has gone
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on('exit', (code, signal) => {
      exitInfo = { code, signal };
      notify();
    });
    proc.on('close', () => resolve(exitInfo!));
  });
  const owned: Owned[] = [own(pid)];
  const waitFor = (test: () => boolean, what: string, timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (test()) {
          done();
          resolve();
        } else if (exitInfo) {
          done();
          reject(new Error(`stasis ${args.join(' ')} exited ${JSON.stringify(exitInfo)} before ${what}\n--- stdout\n${Buffer.concat(outChunks).toString('latin1').slice(-2000)}\n--- stderr\n${errText.slice(-2000)}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`stasis ${args.join(' ')}: no ${what} within ${timeoutMs} ms\n--- stdout\n${Buffer.concat(outChunks).toString('latin1').slice(-2000)}\n--- stderr\n${errText.slice(-2000)}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  const r: SupervisedRun = {
    pid,
    proc,
    stdout: () => Buffer.concat(outChunks),
    stderr: () => errText,
    write: (text) => void proc.stdin!.write(text),
    endInput: () => void proc.stdin!.end(),
    alive: () => exitInfo === undefined,
    exited,
    waitForStdout: (cond, timeoutMs = 20_000) =>
      waitFor(() => (typeof cond === 'number' ? Buffer.concat(outChunks).length >= cond : cond.test(Buffer.concat(outChunks).toString('latin1'))), `stdout matching ${String(cond)}`, timeoutMs),
    waitForStderr: (re, timeoutMs = 20_000) => waitFor(() => re.test(errText), `stderr matching ${re}`, timeoutMs),
    owned,
    adopt: (p) => {
      if (!owned.some((o) => o.pid === p)) owned.push(own(p));
    },
  };
  t?.after(async () => {
    // the program first (so that the supervisor does not act on its death), then the supervisor
    for (const o of owned.slice(1)) killOwned(o);
    if (exitInfo === undefined) killQuietly(pid, 'SIGKILL');
    proc.stdin?.destroy();
    await exited;
    for (const o of owned.slice(1)) await waitUntilGone(o.pid, 5_000);
  });
  return r;
}

export function startRun(t: TestContext | undefined, args: string[], opts: RunOptions = {}): SupervisedRun {
  return startStasis(t, ['run', ...args], opts);
}

/** Waits for the supervisor to exit (killing it by PID after `timeoutMs`). */
export async function finished(r: SupervisedRun, timeoutMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      for (const o of r.owned) killOwned(o);
      reject(new Error(`supervisor ${r.pid} did not finish within ${timeoutMs} ms\n--- stdout\n${r.stdout().toString('latin1').slice(-2000)}\n--- stderr\n${r.stderr().slice(-2000)}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([r.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Children of `pid` (from /proc/PID/task/TID/children). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const tid of taskIds(pid)) {
    const s = readFileOrNull(`/proc/${pid}/task/${tid}/children`);
    if (s) out.push(...s.trim().split(/\s+/).filter(Boolean).map(Number));
  }
  return out;
}

/** The supervised program: the supervisor's child that is not a restore stub; adopted for cleanup. */
export async function programOf(r: SupervisedRun, timeoutMs = 10_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const kids = childrenOf(r.pid).filter((c) => readFileOrNull(`/proc/${c}/cmdline`) !== 'sleep\u00001000000\u0000' && stateOf(c) !== 'Z');
    if (kids.length === 1) {
      r.adopt(kids[0]);
      return kids[0];
    }
    if (!r.alive()) break;
    await sleep(10);
  }
  throw new Error(`supervisor ${r.pid} has no program child (children: ${childrenOf(r.pid).join(' ')})\n--- stderr\n${r.stderr()}`);
}

// ---------------------------------------------------------------------------------------
// the run directory

export interface Entry {
  seq: number;
  file: string;
  time: string;
  bytes: number;
  trigger: string;
  pid: number;
  checksums: string;
}

export interface Manifest {
  version: number;
  command: string[];
  every: number | null;
  keep: number | null;
  checkpoints: Entry[];
}

export function manifest(dir: string): Manifest {
  return JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
}

/** manifest(dir), or null while it is absent or being replaced. */
export function manifestOrNull(dir: string): Manifest | null {
  try {
    return manifest(dir);
  } catch {
    return null;
  }
}

/** Image files in DIR (checkpoint-*.img), sorted. */
export function imageFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => /^checkpoint-.*\.img$/.test(f))
    .sort();
}

/** Every file in DIR that is neither the manifest, the supervisor's pid file nor a listed image. */
export function strayFiles(dir: string): string[] {
  const listed = new Set((manifestOrNull(dir)?.checkpoints ?? []).map((c) => c.file));
  return fs.readdirSync(dir).filter((f) => f !== 'manifest.json' && f !== 'supervisor.pid' && !listed.has(f) && f !== 'lost+found');
}

export async function waitForCheckpoints(dir: string, n: number, timeoutMs = 20_000): Promise<Manifest> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = manifestOrNull(dir);
    if (m && m.checkpoints.length > 0 && m.checkpoints.at(-1)!.seq >= n) return m;
    if (Date.now() > deadline) throw new Error(`no checkpoint ${n} in ${dir} within ${timeoutMs} ms (manifest: ${JSON.stringify(m)})`);
    await sleep(20);
  }
}

/**
 * Damages an image where only its data is: `count` bytes in the middle of the PT_LOAD
 * segment that stores the most bytes are inverted. Returns the offset.
 */
export async function corruptImageData(file: string, count = 64): Promise<number> {
  const loads = (await readSegments(file)).filter((s) => s.type === 'LOAD' && s.filesz >= count * 2);
  if (loads.length === 0) throw new Error(`${file} has no PT_LOAD segment with data`);
  const seg = loads.reduce((a, b) => (b.filesz > a.filesz ? b : a));
  const at = seg.offset + Math.floor(seg.filesz / 2);
  const fd = fs.openSync(file, 'r+');
  try {
    const buf = Buffer.alloc(count);
    fs.readSync(fd, buf, 0, count, at);
    for (let i = 0; i < count; i++) buf[i] ^= 0xff;
    fs.writeSync(fd, buf, 0, count, at);
  } finally {
    fs.closeSync(fd);
  }
  return at;
}

// ---------------------------------------------------------------------------------------
// scratch directories

const scratchDirs: string[] = [];

/**
 * A fresh temporary directory, removed after the test, and again by removeScratchDirs()
 * at the end of the file: t.after hooks run in the order they were added, so the first
 * removal may come before the hooks that kill what writes into it.
 */
export function scratchDir(t: TestContext, prefix = 'stasis-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  scratchDirs.push(dir);
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function removeScratchDirs(): void {
  for (const dir of scratchDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------
// a small file system to fill or make read-only

export interface Tmpfs {
  dir: string;
  remount(options: string): Promise<void>;
}

/** A tmpfs of `bytes` mounted on a fresh directory; unmounted and removed after the test. */
export async function mountTmpfs(t: TestContext, bytes: number): Promise<Tmpfs> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stasis-run-tmpfs-'));
  const r = await run('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0755`, 'tmpfs', dir]);
  if (r.code !== 0) {
    fs.rmdirSync(dir);
    throw new Error(`mount -t tmpfs failed: ${r.stderr}`);
  }
  t.after(async () => {
    let u = await run('umount', [dir]);
    if (u.code !== 0) u = await run('umount', ['-l', dir]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir,
    async remount(options: string) {
      const m = await run('mount', ['-o', `remount,${options}`, dir]);
      if (m.code !== 0) throw new Error(`mount -o remount,${options} ${dir} failed: ${m.stderr}`);
    },
  };
}

/** Free bytes of the file system holding `dir`. */
export function freeBytes(dir: string): number {
  const s = fs.statfsSync(dir);
  return s.bavail * s.bsize;
}

// ---------------------------------------------------------------------------------------
// targets that are not our children

export interface Detached {
  pid: number;
  owned: Owned;
  out: string;
  /** what it has written to its output file so far */
  output(): string;
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGKILL by PID (if it is still ours) and wait until init has reaped it */
  stop(): Promise<void>;
}

/**
 * Starts `exe args` with stdout and stderr to `out` and stdin from /dev/null, through a
 * shell that exits at once: the target's parent is init, never this process, so this
 * process may trace it (libuv's SIGCHLD handler never sees it).
 */
export async function startDetached(t: TestContext | undefined, exe: string, args: string[], out: string, opts: { inputs?: Record<number, string> } = {}): Promise<Detached> {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  // bash (dash cannot redirect fds above 9): close whatever this process inherited beyond
  // stdio without O_CLOEXEC (a job runner's pipe, say), which the target would hold too
  const closeInherited = 'for f in /proc/$$/fd/*; do n=${f##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-"; done 2>/dev/null';
  const inputs = Object.entries(opts.inputs ?? {})
    .map(([fd, file]) => ` ${Number(fd)}<${quote(file)}`)
    .join('');
  // The subshell lets go of our pipe first: opening `out` or an input may block (a FIFO),
  // and run() would wait for the pipe to close. It then execs the target: $! is its PID.
  const cmd = `${closeInherited}; ( exec </dev/null >/dev/null 2>&1; exec ${[exe, ...args].map(quote).join(' ')} >${quote(out)} 2>&1${inputs} ) & echo $!`;
  const r = await run('/bin/bash', ['-c', cmd], { timeoutMs: 10_000 });
  const pid = Number(r.stdout.trim());
  if (!(pid > 0)) throw new Error(`could not start ${exe}: ${r.stdout} ${r.stderr}`);
  const owned = own(pid);
  const output = () => readFileOrNull(out) ?? '';
  const d: Detached = {
    pid,
    owned,
    out,
    output,
    async waitForOutput(re, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = output().match(re);
        if (m) return m[0];
        if (Date.now() > deadline) throw new Error(`${exe} (pid ${pid}) wrote nothing matching ${re} in ${timeoutMs} ms; output: ${output().slice(-500)}`);
        if (stateOf(pid) === null || stateOf(pid) === 'Z') throw new Error(`${exe} (pid ${pid}) exited before writing ${re}; output: ${output().slice(-500)}`);
        await sleep(10);
      }
    },
    async stop() {
      killOwned(owned);
      await waitUntilGone(pid, 10_000);
    },
  };
  t?.after(() => d.stop());
  return d;
}

/** Lines of a text, without the empty last one. */
export function lines(text: string): string[] {
  const l = text.split('\n');
  if (l.at(-1) === '') l.pop();
  return l;
}
