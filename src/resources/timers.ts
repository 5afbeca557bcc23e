/**
 * Interval timers (setitimer) and POSIX timers (timer_create).
 *
 * Dump: getitimer(ITIMER_REAL/VIRTUAL/PROF) injected; POSIX timers are listed by
 * /proc/PID/timers (id, signal and sigev_value, notification and its target, clock) and
 * each one's remaining time and interval read with an injected timer_gettime.
 *
 * Restore: timers are created with their old ids. Since Linux 6.17 (here: 6.18),
 * prctl(PR_TIMER_CREATE_RESTORE_IDS, ON) makes timer_create take the id to allocate from
 * the timer_t its third argument points to (EBUSY when taken); on older kernels ids are
 * handed out in increasing order, so timers are created in id order and the ids in
 * between are created and deleted afterwards. Then every armed timer is armed again.
 *
 * Time: a timer is restored with the remaining time it had at the dump, relative to the
 * restore: the time the process spent in the image does not count, for any clock. An
 * ITIMER_REAL or a CLOCK_REALTIME/MONOTONIC/BOOTTIME timer therefore fires as long after
 * the restore as it would have fired after the dump (its wall-clock deadline moves by the
 * time spent dumped), just as CPU-time timers (ITIMER_VIRTUAL/PROF, CPU clocks) naturally
 * do. A timer armed with TIMER_ABSTIME becomes a relative one (the flag is not visible).
 * Deadlines that must follow the wall clock across a restart are beyond this model.
 *
 * Ordering for the restore orchestrator: after the threads exist (SIGEV_THREAD_ID timers
 * name one; timer_create refuses a TID outside the thread group), after the signal
 * actions, and as late as possible (a timer that fires while the restore still runs
 * injected syscalls in an unblocked thread would have its signal dequeued by the
 * injector): arm timers just before queueing the pending signals. Timers are armed while
 * the main thread blocks every signal.
 */
import { readFileSync } from 'node:fs';
import { readStatus } from '../proc/status.js';
import { SYSCALL, type RemoteTask } from '../ptrace/remote.js';
import { STASIS_NOTE } from '../image/stasis-notes.js';
import { StasisError } from '../errors.js';
import { withSignalsBlocked, signalName } from './signals.js';
import type { CheckpointResource, DumpContext, Finding, RestoreContext } from './resource.js';

export const ITIMER = { REAL: 0, VIRTUAL: 1, PROF: 2 } as const;
export const ITIMER_NAMES = ['ITIMER_REAL', 'ITIMER_VIRTUAL', 'ITIMER_PROF'] as const;
export const SIGEV = { SIGNAL: 0, NONE: 1, THREAD: 2, THREAD_ID: 4 } as const;
export const CLOCK = {
  REALTIME: 0, MONOTONIC: 1, PROCESS_CPUTIME_ID: 2, THREAD_CPUTIME_ID: 3, MONOTONIC_RAW: 4, REALTIME_COARSE: 5,
  MONOTONIC_COARSE: 6, BOOTTIME: 7, REALTIME_ALARM: 8, BOOTTIME_ALARM: 9, TAI: 11,
} as const;

const PR_TIMER_CREATE_RESTORE_IDS = 77;
const PR_TIMER_CREATE_RESTORE_IDS_OFF = 0;
const PR_TIMER_CREATE_RESTORE_IDS_ON = 1;
const PR_TIMER_CREATE_RESTORE_IDS_GET = 2;
const EINVAL = 22;
const EBUSY = 16;
/** Linear fallback: give up beyond this many throwaway timers. */
const MAX_GAP_TIMERS = 100_000;

export interface Itimer {
  which: number;
  /** Remaining time to the next expiry (0: disarmed) and the reload value, microseconds. */
  valueUs: bigint;
  intervalUs: bigint;
}

export interface PosixTimer {
  id: number;
  /** clockid_t as given to timer_create (negative for the CPU clock of a given task). */
  clock: number;
  /** SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD, each possibly | SIGEV_THREAD_ID. */
  notify: number;
  signal: number;
  /** sigev_value (sival_ptr / sival_int). */
  sigevValue: bigint;
  /** The thread signalled (SIGEV_THREAD_ID), else the process: as /proc/PID/timers shows it. */
  target: number;
  /** Remaining time (0: disarmed) and the period, nanoseconds. */
  valueNs: bigint;
  intervalNs: bigint;
}

export interface TimersState {
  /** The three interval timers, disarmed ones included. */
  itimers: Itimer[];
  /** POSIX timers in id order. */
  posix: PosixTimer[];
}

// ---------------------------------------------------------------------------------------
// /proc/PID/timers

export interface ProcTimer {
  id: number;
  signal: number;
  sigevValue: bigint;
  notify: number;
  target: number;
  clock: number;
}

/**
 * Parses /proc/PID/timers (fs/proc/base.c show_timer()):
 *   ID: 44 / signal: 34/0000000000001234 / notify: signal/tid.10857 / ClockID: 0
 */
export function parseProcTimers(text: string): ProcTimer[] {
  const timers: ProcTimer[] = [];
  let current: Partial<ProcTimer> | null = null;
  const bad = (line: string) => new StasisError('SYSCALL_FAILED', `unexpected line in /proc/PID/timers: ${JSON.stringify(line)}`);
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const colon = line.indexOf(':');
    if (colon < 0) throw bad(line);
    const key = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    if (key === 'ID') {
      current = { id: Number(value) };
      timers.push(current as ProcTimer);
    } else if (!current) {
      throw bad(line);
    } else if (key === 'signal') {
      const m = /^(-?\d+)\/([0-9a-fA-F]+)$/.exec(value);
      if (!m) throw bad(line);
      current.signal = Number(m[1]);
      current.sigevValue = BigInt('0x' + m[2]);
    } else if (key === 'notify') {
      const m = /^(\w+)\/(pid|tid)\.(\d+)$/.exec(value);
      if (!m) throw bad(line);
      const kind = { signal: SIGEV.SIGNAL, none: SIGEV.NONE, thread: SIGEV.THREAD }[m[1]];
      if (kind === undefined) throw bad(line);
      current.notify = kind | (m[2] === 'tid' ? SIGEV.THREAD_ID : 0);
      current.target = Number(m[3]);
    } else if (key === 'ClockID') {
      current.clock = Number(value);
    }
  }
  return timers.sort((a, b) => a.id - b.id);
}

/** The process's POSIX timers, or null when the kernel has no /proc/PID/timers (no CONFIG_CHECKPOINT_RESTORE). */
export function readProcTimers(pid: number): ProcTimer[] | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/timers`, 'latin1');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  return parseProcTimers(text);
}

// ---------------------------------------------------------------------------------------
// dump

const timevalUs = (b: Buffer, at: number) => b.readBigInt64LE(at) * 1_000_000n + b.readBigInt64LE(at + 8);
const timespecNs = (b: Buffer, at: number) => b.readBigInt64LE(at) * 1_000_000_000n + b.readBigInt64LE(at + 8);

function writeTime(b: Buffer, at: number, total: bigint, unit: bigint): void {
  b.writeBigInt64LE(total / unit, at);
  b.writeBigInt64LE(total % unit, at + 8);
}

export function captureItimers(remote: RemoteTask): Itimer[] {
  return [ITIMER.REAL, ITIMER.VIRTUAL, ITIMER.PROF].map((which) => ({ which, ...getItimer(remote, which) }));
}

export function capturePosixTimers(pid: number, remote: RemoteTask): PosixTimer[] {
  const listed = readProcTimers(pid);
  if (listed === null) {
    throw new StasisError('UNSUPPORTED', `this kernel has no /proc/${pid}/timers (CONFIG_CHECKPOINT_RESTORE): POSIX timers cannot be listed`, { pid });
  }
  return listed.map((t) => {
    remote.resetScratch();
    const at = remote.reserve(32);
    remote.syscall(SYSCALL.timer_gettime, [t.id, at], `timer_gettime(${t.id})`);
    const raw = remote.readMemory(at, 32);
    return { ...t, intervalNs: timespecNs(raw, 0), valueNs: timespecNs(raw, 16) };
  });
}

export function captureTimers(ctx: DumpContext): TimersState {
  return { itimers: captureItimers(ctx.remote), posix: capturePosixTimers(ctx.pid, ctx.remote) };
}

// ---------------------------------------------------------------------------------------
// restore

function sigevent(t: PosixTimer): Buffer {
  const sev = Buffer.alloc(64);
  sev.writeBigUInt64LE(BigInt.asUintN(64, t.sigevValue), 0);
  sev.writeInt32LE(t.signal, 8);
  sev.writeInt32LE(t.notify, 12);
  if (t.notify & SIGEV.THREAD_ID) sev.writeInt32LE(t.target, 16);
  return sev;
}

function describeTimer(t: PosixTimer): string {
  const how = t.notify & SIGEV.THREAD_ID ? `${signalName(t.signal)} to thread ${t.target}` : (t.notify & ~SIGEV.THREAD_ID) === SIGEV.NONE ? 'no signal' : signalName(t.signal);
  return `POSIX timer ${t.id} (${clockName(t.clock)}, ${how})`;
}

/** timer_create with the event of `t`; returns the raw result and the id the kernel wrote. */
function createTimer(remote: RemoteTask, t: PosixTimer, idWanted: number): { value: bigint; id: number } {
  remote.resetScratch();
  const sev = remote.put(sigevent(t));
  const idBuf = Buffer.alloc(8);
  idBuf.writeInt32LE(idWanted, 0);
  const idAt = remote.put(idBuf);
  const { value } = remote.syscallRaw(SYSCALL.timer_create, [BigInt.asUintN(64, BigInt(t.clock)), sev, idAt]);
  return { value, id: remote.readMemory(idAt, 4).readInt32LE(0) };
}

function createFailed(pid: number, t: PosixTimer, value: bigint): StasisError {
  const errno = Number(-value);
  const why =
    errno === EBUSY ? 'the id is taken in the process being restored'
    : errno === EINVAL && t.notify & SIGEV.THREAD_ID ? `thread ${t.target} is not a thread of the process (restore threads first)`
    : `errno ${errno}`;
  return new StasisError('INJECTION_FAILED', `timer_create of ${describeTimer(t)} failed in process ${pid}: ${why}`, { pid });
}

/** Whether this kernel has PR_TIMER_CREATE_RESTORE_IDS (Linux 6.17+). */
function canRestoreIds(remote: RemoteTask): boolean {
  const { value } = remote.syscallRaw(SYSCALL.prctl, [PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_GET, 0, 0, 0]);
  if (value === BigInt(-EINVAL)) return false;
  if (value < 0n) throw new StasisError('INJECTION_FAILED', `prctl(PR_TIMER_CREATE_RESTORE_IDS) failed in process ${remote.pid}: errno ${-value}`, { pid: remote.pid });
  return true;
}

/** Creates the timers with their ids; `how` tells which way was used. */
export function createPosixTimers(pid: number, remote: RemoteTask, timers: PosixTimer[]): 'restore-ids' | 'linear' | 'none' {
  if (timers.length === 0) return 'none';
  const sorted = [...timers].sort((a, b) => a.id - b.id);
  if (canRestoreIds(remote)) {
    remote.syscall(SYSCALL.prctl, [PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_ON, 0, 0, 0], 'prctl(PR_TIMER_CREATE_RESTORE_IDS, ON)');
    try {
      for (const t of sorted) {
        const { value, id } = createTimer(remote, t, t.id);
        if (value < 0n) throw createFailed(pid, t, value);
        if (id !== t.id) throw new StasisError('INJECTION_FAILED', `timer_create gave id ${id} instead of ${t.id} in process ${pid}`, { pid });
      }
    } finally {
      remote.syscall(SYSCALL.prctl, [PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_OFF, 0, 0, 0], 'prctl(PR_TIMER_CREATE_RESTORE_IDS, OFF)');
    }
    return 'restore-ids';
  }
  // Older kernels: ids are allocated in increasing order; create until each id comes up.
  const gaps: number[] = [];
  for (const t of sorted) {
    for (;;) {
      const { value, id } = createTimer(remote, t, 0);
      if (value < 0n) throw createFailed(pid, t, value);
      if (id === t.id) break;
      if (id > t.id || gaps.length >= MAX_GAP_TIMERS) {
        throw new StasisError('UNSUPPORTED', `cannot recreate ${describeTimer(t)}: this kernel (no PR_TIMER_CREATE_RESTORE_IDS) handed out id ${id}`, { pid });
      }
      gaps.push(id);
    }
  }
  for (const id of gaps) remote.syscall(SYSCALL.timer_delete, [id], `timer_delete(${id})`);
  return 'linear';
}

export function armTimers(remote: RemoteTask, state: TimersState): void {
  for (const t of state.posix) {
    if (t.valueNs === 0n) continue;
    const spec = Buffer.alloc(32);
    writeTime(spec, 0, t.intervalNs, 1_000_000_000n);
    writeTime(spec, 16, t.valueNs, 1_000_000_000n);
    remote.resetScratch();
    remote.syscall(SYSCALL.timer_settime, [t.id, 0, remote.put(spec), 0], `timer_settime(${t.id})`);
  }
  for (const it of state.itimers) {
    if (it.valueUs === 0n) continue;
    setItimer(remote, it.which, it.intervalUs, it.valueUs);
    if (it.which === ITIMER.REAL) continue;
    // setitimer() adds a kernel tick to a CPU itimer's value (so that it never fires early),
    // and getitimer() reports that tick: the captured value already holds one. Measure the
    // tick this kernel adds and arm again without it, so that a restore does not delay the
    // timer by a tick each time.
    const excess = getItimer(remote, it.which).valueUs - it.valueUs;
    if (excess > 0n && excess <= MAX_TICK_US && it.valueUs > excess) setItimer(remote, it.which, it.intervalUs, it.valueUs - excess);
  }
}

/** The longest kernel tick (HZ=100). */
const MAX_TICK_US = 10_000n;

function setItimer(remote: RemoteTask, which: number, intervalUs: bigint, valueUs: bigint): void {
  const val = Buffer.alloc(32);
  writeTime(val, 0, intervalUs, 1_000_000n);
  writeTime(val, 16, valueUs, 1_000_000n);
  remote.resetScratch();
  remote.syscall(SYSCALL.setitimer, [which, remote.put(val), 0], `setitimer(${ITIMER_NAMES[which]})`);
}

function getItimer(remote: RemoteTask, which: number): { intervalUs: bigint; valueUs: bigint } {
  remote.resetScratch();
  const at = remote.reserve(32);
  remote.syscall(SYSCALL.getitimer, [which, at], `getitimer(${ITIMER_NAMES[which]})`);
  const raw = remote.readMemory(at, 32);
  return { intervalUs: timevalUs(raw, 0), valueUs: timevalUs(raw, 16) };
}

export function restoreTimers(ctx: RestoreContext, state: TimersState): void {
  withSignalsBlocked(ctx.remote, () => {
    createPosixTimers(ctx.pid, ctx.remote, state.posix);
    armTimers(ctx.remote, state);
  });
}

// ---------------------------------------------------------------------------------------
// check

/** The task a CPU clock id names (include/linux/posix-timers.h CPUCLOCK_PID), 0 for "self". */
function cpuClockTask(clock: number): { pid: number; perThread: boolean } | null {
  if (clock >= 0) return null;
  return { pid: ~(clock >> 3), perThread: (clock & 4) !== 0 };
}

export function clockName(clock: number): string {
  const cpu = cpuClockTask(clock);
  if (cpu && cpu.pid === 0) return cpu.perThread ? 'CLOCK_THREAD_CPUTIME_ID' : 'CLOCK_PROCESS_CPUTIME_ID';
  if (cpu) return `CPU clock of ${cpu.perThread ? 'thread' : 'process'} ${cpu.pid}`;
  for (const [name, value] of Object.entries(CLOCK)) if (value === clock) return `CLOCK_${name}`;
  return `clock ${clock}`;
}

export function checkTimers(pid: number): Finding[] {
  const timers = readProcTimers(pid);
  if (timers === null) {
    return [{ kind: 'timer', what: 'POSIX timers', supported: false, reason: 'this kernel has no /proc/PID/timers (CONFIG_CHECKPOINT_RESTORE off): POSIX timers cannot be listed' }];
  }
  let threads = 1;
  try {
    threads = readStatus(pid).threads;
  } catch {
    // gone: nothing to say
  }
  return timers.map((t): Finding => {
    const what = describeTimer({ ...t, valueNs: 0n, intervalNs: 0n });
    const cpu = cpuClockTask(t.clock);
    if ((t.clock === CLOCK.THREAD_CPUTIME_ID || (cpu && cpu.pid === 0 && cpu.perThread)) && threads > 1) {
      return { kind: 'timer', what, supported: false, reason: 'it measures the CPU time of the thread that created it, which the kernel does not show' };
    }
    if (cpu && cpu.pid !== 0 && cpu.pid !== pid && !(cpu.perThread && existsTask(pid, cpu.pid))) {
      return { kind: 'timer', what, supported: false, reason: `it measures the CPU time of task ${cpu.pid}, outside the process` };
    }
    if (t.notify & SIGEV.THREAD_ID && !existsTask(pid, t.target)) {
      return { kind: 'timer', what, supported: false, reason: `thread ${t.target}, which it signals, has exited` };
    }
    if (t.clock === CLOCK.REALTIME_ALARM || t.clock === CLOCK.BOOTTIME_ALARM) {
      return { kind: 'timer', what, supported: true, reason: 'alarm clocks need CAP_WAKE_ALARM at restore' };
    }
    return { kind: 'timer', what, supported: true };
  });
}

function existsTask(pid: number, tid: number): boolean {
  try {
    return readStatus(pid, tid).tgid === pid;
  } catch {
    return false;
  }
}

export const timersResource: CheckpointResource<TimersState> = {
  name: 'timers',
  noteType: STASIS_NOTE.TIMERS,
  version: 1,
  check: checkTimers,
  capture: captureTimers,
  restore: restoreTimers,
};
