/**
 * `stasis run`: a program under a supervisor that checkpoints it
 *   - when the program asks, by stopping itself (kill(getpid(), SIGSTOP)): the supervisor,
 *     its parent, sees the stop (waitpid WUNTRACED), checkpoints it while it is stopped and
 *     continues it, so to the program kill() returns once the image is on disk;
 *   - every N seconds (--every), and on request (SIGUSR2 to the supervisor, which is what
 *     `stasis checkpoint DIR` sends).
 * Images go to DIR with a manifest written atomically; --keep N keeps the newest N. A
 * failed checkpoint leaves the older images and the program as they were.
 * `resumeSupervised(DIR)` restores the newest good image and supervises it again.
 *
 * The ptrace work runs in a worker thread; while it does, this thread does not call
 * waitpid, which would otherwise collect the tracee's ptrace stops (a thread's wait sees
 * the tracees of every thread in its group): one loop awaits each checkpoint before it
 * polls again.
 */
import { mkdirSync, readFileSync, writeFileSync, renameSync, unlinkSync, existsSync, readdirSync, readlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnProcess } from './sys/spawn.js';
import { waitTask, WAIT } from './sys/ptrace.js';
import { kill, SIG } from './sys/process.js';
import { StasisError } from './errors.js';
import { runInWorker } from './worker-client.js';
import { forwardSignals } from './foreground.js';
import type { CheckpointResult } from './dump.js';
import type { RestoredProcess, RestoreOptions } from './restore.js';

export type Trigger = 'self-stop' | 'periodic' | 'request';

export interface CheckpointEntry {
  seq: number;
  file: string;
  time: string;
  bytes: number;
  trigger: Trigger;
  pid: number;
  /** 'recorded': the image carries a checksum per segment, verified at restore; 'damaged': a restore refused it. */
  checksums: 'recorded' | 'damaged';
}

export interface Manifest {
  version: 1;
  command: string[];
  every: number | null;
  keep: number | null;
  checkpoints: CheckpointEntry[];
}

export interface SuperviseOptions {
  dir: string;
  /** Seconds between periodic checkpoints. */
  every?: number;
  /** How many images to keep (newest first). */
  keep?: number;
  /** Restrict the program to one CPU while it is frozen for a checkpoint. */
  pin?: boolean;
  /** Forward SIGINT, SIGTERM, ... received by this process to the program (the CLI does). */
  forwardSignals?: boolean;
  /** Told about each checkpoint (or its failure). */
  onCheckpoint?: (entry: CheckpointEntry | null, error?: Error) => void;
}

export interface Supervisor {
  pid: number;
  dir: string;
  /** Resolves with the program's exit status (128 + N if killed by signal N). */
  exited: Promise<number>;
  /** Take a checkpoint now (the program keeps running). */
  checkpointNow(): Promise<CheckpointEntry>;
}

const MANIFEST = 'manifest.json';
const SUPERVISOR_PID = 'supervisor.pid';

export function readManifest(dir: string): Manifest {
  try {
    return JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8')) as Manifest;
  } catch (err) {
    throw new StasisError('BAD_IMAGE', `${dir} has no readable ${MANIFEST}: not a stasis run directory`, { path: dir, cause: err });
  }
}

function writeManifest(dir: string, manifest: Manifest): void {
  const tmp = join(dir, `.${MANIFEST}.${process.pid}.tmp`);
  writeFileSync(tmp, JSON.stringify(manifest, null, 2) + '\n');
  renameSync(tmp, join(dir, MANIFEST));
}

class Supervision implements Supervisor {
  readonly pid: number;
  readonly dir: string;
  readonly exited: Promise<number>;
  private manifest: Manifest;
  private readonly options: SuperviseOptions;
  /** A checkpoint was asked for (SIGUSR2, a request file, checkpointNow()). */
  private requested = false;
  private readonly waiters: Array<{ resolve: (e: CheckpointEntry) => void; reject: (err: Error) => void }> = [];

  constructor(pid: number, dir: string, manifest: Manifest, options: SuperviseOptions) {
    this.pid = pid;
    this.dir = dir;
    this.manifest = manifest;
    this.options = options;
    writeFileSync(join(dir, SUPERVISOR_PID), `${process.pid}\n`);
    this.exited = this.watch();
  }

  checkpointNow(): Promise<CheckpointEntry> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.requested = true;
    });
  }

  private async takeCheckpoint(trigger: Trigger): Promise<CheckpointEntry> {
    const seq = (this.manifest.checkpoints.at(-1)?.seq ?? 0) + 1;
    const file = `checkpoint-${String(seq).padStart(6, '0')}.img`;
    try {
      const result = await runInWorker<CheckpointResult, { output: string; leaveRunning: boolean; pin: boolean }>('checkpoint', this.pid, {
        output: join(this.dir, file),
        leaveRunning: true,
        pin: this.options.pin ?? false,
      });
      const entry: CheckpointEntry = { seq, file, time: new Date().toISOString(), bytes: result.bytes, trigger, pid: this.pid, checksums: 'recorded' };
      const kept = [...this.manifest.checkpoints, entry];
      const keep = this.manifest.keep;
      const dropped = keep && kept.length > keep ? kept.splice(0, kept.length - keep) : [];
      this.manifest = { ...this.manifest, checkpoints: kept };
      writeManifest(this.dir, this.manifest);
      for (const old of dropped) {
        try {
          unlinkSync(join(this.dir, old.file));
        } catch {
          // already gone
        }
      }
      this.options.onCheckpoint?.(entry);
      return entry;
    } catch (err) {
      this.options.onCheckpoint?.(null, err as Error);
      throw err;
    }
  }

  /** One checkpoint for every request pending (waiters and request files), each told the outcome. */
  private async serveRequests(): Promise<void> {
    this.requested = false;
    const waiters = this.waiters.splice(0);
    const files = pendingRequests(this.dir);
    let outcome: { entry?: CheckpointEntry; error?: string };
    try {
      const entry = await this.takeCheckpoint('request');
      outcome = { entry };
      for (const w of waiters) w.resolve(entry);
    } catch (err) {
      outcome = { error: (err as Error).message };
      for (const w of waiters) w.reject(err as Error);
    }
    for (const request of files) answerRequest(this.dir, request, outcome);
  }

  /**
   * The one loop that decides what happens next, so that nothing piles up: a stop the
   * program asked for, then requests, then a periodic checkpoint if one is due (the next
   * is due a period after the last one ended), else a poll of the program.
   */
  private async watch(): Promise<number> {
    const stopForwarding = this.options.forwardSignals ? forwardSignals(this.pid) : () => {};
    const onRequest = () => {
      this.requested = true;
    };
    process.on('SIGUSR2', onRequest);
    const period = this.options.every ? this.options.every * 1000 : 0;
    let nextPeriodic = period ? Date.now() + period : Infinity;
    try {
      for (let delay = 1; ; delay = Math.min(delay * 2, 20)) {
        const status = waitTask(this.pid, WAIT.NOHANG | WAIT.UNTRACED | WAIT.CONTINUED);
        if (status?.kind === 'exited') return status.code;
        if (status?.kind === 'killed') return 128 + status.signal;
        if (status?.kind === 'stopped' && status.signal === SIG.SIGSTOP) {
          // The program asked for a checkpoint: take it while it is stopped, then continue it.
          await this.takeCheckpoint('self-stop').catch(() => undefined);
          kill(this.pid, SIG.SIGCONT);
          delay = 1;
          continue;
        }
        if (this.requested) {
          await this.serveRequests();
          delay = 1;
          continue;
        }
        if (Date.now() >= nextPeriodic) {
          await this.takeCheckpoint('periodic').catch(() => undefined);
          nextPeriodic = Date.now() + period;
          delay = 1;
          continue;
        }
        if (status) delay = 1;
        await sleep(delay);
      }
    } finally {
      process.off('SIGUSR2', onRequest);
      stopForwarding();
      const gone = new StasisError('TARGET_EXITED', `process ${this.pid} exited before the checkpoint`, { pid: this.pid });
      for (const w of this.waiters.splice(0)) w.reject(gone);
      for (const request of pendingRequests(this.dir)) answerRequest(this.dir, request, { error: gone.message });
      try {
        unlinkSync(join(this.dir, SUPERVISOR_PID));
      } catch {
        // removed already
      }
    }
  }
}

/** `stasis checkpoint` leaves DIR/request-ID.req, and takes DIR/request-ID.done away with the answer. */
const REQUEST_PREFIX = 'request-';

function pendingRequests(dir: string): string[] {
  try {
    return readdirSync(dir).filter((f) => f.startsWith(REQUEST_PREFIX) && f.endsWith('.req'));
  } catch {
    return [];
  }
}

function answerRequest(dir: string, request: string, outcome: { entry?: CheckpointEntry; error?: string }): void {
  const base = join(dir, request.slice(0, -'.req'.length));
  writeFileSync(`${base}.tmp`, JSON.stringify(outcome));
  renameSync(`${base}.tmp`, `${base}.done`);
  try {
    unlinkSync(`${base}.req`);
  } catch {
    // the requester gave up and removed it
  }
}

/**
 * Whether `pid` is still a running supervisor of `dir` (a PID from a stale supervisor.pid
 * may belong to another process by now, which SIGUSR2 would kill): its command line must
 * name stasis and the directory, and it must not be a zombie.
 */
function isSupervisorOf(pid: number, dir: string): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
    const zombie = /^State:\s+[ZX]/m.test(readFileSync(`/proc/${pid}/status`, 'latin1'));
    const cwd = readlinkSync(`/proc/${pid}/cwd`);
    const names = (arg: string) => resolve(cwd, arg) === dir;
    return !zombie && cmdline.some((a) => /stasis/.test(a)) && cmdline.includes('run') && (cmdline.some(names) || !cmdline.includes('--dir'));
  } catch {
    return false;
  }
}

/** Start `command` (argv) as our child and supervise it. */
export function supervise(command: string[], options: SuperviseOptions): Supervisor {
  if (command.length === 0) throw new StasisError('USAGE', 'stasis run needs a command after --');
  const dir = resolve(options.dir);
  mkdirSync(dir, { recursive: true });
  if (existsSync(join(dir, MANIFEST))) {
    const earlier = readManifest(dir);
    if (earlier.checkpoints.length > 0) {
      throw new StasisError('USAGE', `${dir} holds ${earlier.checkpoints.length} checkpoint(s) of an earlier run (${earlier.command.join(' ')}): continue it with --resume ${options.dir}, or choose another --dir`, { path: dir });
    }
  }
  const manifest: Manifest = { version: 1, command, every: options.every ?? null, keep: options.keep ?? null, checkpoints: [] };
  writeManifest(dir, manifest);
  let pid: number;
  try {
    pid = spawnProcess(command[0], command.slice(1));
  } catch (err) {
    throw new StasisError('NO_SUCH_PROCESS', `cannot start ${command[0]}: ${(err as Error).message}`, { path: command[0], cause: err });
  }
  return new Supervision(pid, dir, manifest, options);
}

export interface ResumeOptions extends Omit<SuperviseOptions, 'dir'> {
  /** Told about each image skipped because it is damaged. */
  onSkip?: (entry: CheckpointEntry, error: Error) => void;
  /** How to restore the image (another machine: --ignore-cpu, --ignore-changed-files). */
  restore?: Pick<RestoreOptions, 'ignoreCpu' | 'ignoreChangedFiles'>;
  /** Told what the restore did differently (what the restore options let through). */
  onWarning?: (message: string) => void;
}

/**
 * Restore the newest image in `dir` that restores (a damaged one is reported through
 * `onSkip`, marked in the manifest, and the next older one is tried) and supervise it.
 */
export async function resumeSupervised(dir: string, options: ResumeOptions = {}): Promise<Supervisor> {
  const path = resolve(dir);
  const manifest = readManifest(path);
  const candidates = [...manifest.checkpoints].reverse().filter((c) => c.checksums !== 'damaged' && existsSync(join(path, c.file)));
  for (const entry of candidates) {
    try {
      const restored = await runInWorker<RestoredProcess, ResumeOptions['restore'] & object>('restore', join(path, entry.file), { ...options.restore });
      for (const warning of restored.warnings) options.onWarning?.(warning);
      // Stopped by its own request for a checkpoint: that checkpoint is this image, so go on.
      if (restored.stopped) kill(restored.pid, SIG.SIGCONT);
      const { onSkip: _onSkip, restore: _restore, onWarning: _onWarning, ...supervision } = options;
      return new Supervision(restored.pid, path, manifest, { every: options.every ?? manifest.every ?? undefined, keep: options.keep ?? manifest.keep ?? undefined, ...supervision, dir: path });
    } catch (err) {
      if (!(err instanceof StasisError) || err.code !== 'BAD_IMAGE') throw err;
      options.onSkip?.(entry, err);
      entry.checksums = 'damaged';
      writeManifest(path, manifest);
    }
  }
  throw new StasisError('BAD_IMAGE', `no restorable checkpoint in ${path} (${manifest.checkpoints.length} recorded)`, { path });
}

/**
 * `stasis checkpoint DIR`: leave a request in DIR/requests, signal the supervisor
 * (SIGUSR2), and wait for its answer to this very request: the entry, or why it failed.
 */
export async function requestCheckpoint(dir: string, timeoutMs = 300_000): Promise<CheckpointEntry> {
  const path = resolve(dir);
  let supervisor: number;
  try {
    supervisor = Number(readFileSync(join(path, SUPERVISOR_PID), 'utf8').trim());
  } catch {
    throw new StasisError('NO_SUCH_PROCESS', `no supervisor is running for ${path} (no ${SUPERVISOR_PID})`, { path });
  }
  if (!isSupervisorOf(supervisor, path)) throw new StasisError('NO_SUCH_PROCESS', `the supervisor of ${path} (pid ${supervisor}) is not running any more`, { pid: supervisor, path });
  const base = join(path, `${REQUEST_PREFIX}${process.pid}-${Date.now()}`);
  writeFileSync(`${base}.req`, '');
  kill(supervisor, SIG.SIGUSR2);
  const deadline = Date.now() + timeoutMs;
  try {
    while (Date.now() < deadline) {
      await sleep(20);
      let answer: { entry?: CheckpointEntry; error?: string };
      try {
        answer = JSON.parse(readFileSync(`${base}.done`, 'utf8'));
      } catch {
        continue;
      }
      if (answer.entry) return answer.entry;
      throw new StasisError('OUTPUT_FAILED', `the checkpoint failed: ${answer.error}`, { path });
    }
    throw new StasisError('OUTPUT_FAILED', `the supervisor of ${path} did not answer within ${timeoutMs / 1000} s`, { path });
  } finally {
    for (const leftover of [`${base}.req`, `${base}.done`]) {
      try {
        unlinkSync(leftover);
      } catch {
        // not there
      }
    }
  }
}
