/**
 * Process attributes: resource limits, umask, working directory (and root), personality,
 * and each thread's scheduling policy, priority and nice value.
 *
 * Dump: rlimits from /proc/PID/limits (prlimit on another uid needs CAP_SYS_RESOURCE); umask from /proc/PID/status; cwd and root from
 * /proc/PID/{cwd,root}; personality from /proc/PID/task/TID/personality (per thread in
 * the kernel, inherited by clone); scheduling with sched_getattr/getpriority on each TID.
 * Nothing here needs the process stopped except for consistency; nothing is injected.
 *
 * Restore: umask and chdir injected in the main thread (fs_struct, shared by CLONE_FS
 * threads); personality injected in each thread whose value differs; rlimits with prlimit64
 * and scheduling with sched_setattr/setpriority from outside.
 *
 * Ordering for the restore orchestrator: after memory, files and threads (a lower
 * RLIMIT_AS/NOFILE/NPROC/MEMLOCK would make the restore's own mmap, dup3 or clone fail, and
 * every captured thread must exist to get its scheduling and personality back), before
 * timers and pending signals (RLIMIT_SIGPENDING bounds what they queue).
 */
import { readFileSync, readlinkSync, statSync } from 'node:fs';
import { listTasks } from '../proc/status.js';
import { SYSCALL, type RemoteTask } from '../ptrace/remote.js';
import { STASIS_NOTE } from '../image/stasis-notes.js';
import { StasisError } from '../errors.js';
import { SysError } from '../sys/errno.js';
import { getRlimit, setRlimit, RLIMIT, RLIMIT_NAMES, RLIM_INFINITY, type Rlimit } from '../sys/limits.js';
import { readLimits } from '../proc/limits.js';
import { schedGetattr, schedSetattr, getNice, setNice, SCHED, SCHED_FLAG } from '../sys/sched.js';
import { getThreadAffinity, setThreadAffinity } from '../sys/affinity.js';
import { inThread } from './signals.js';
import type { CheckpointResource, DumpContext, Finding, RestoreContext } from './resource.js';

export interface ThreadScheduling {
  tid: number;
  /** SCHED_OTHER, SCHED_BATCH, SCHED_IDLE, SCHED_FIFO, SCHED_RR. */
  policy: number;
  /** SCHED_FLAG_RESET_ON_FORK. */
  resetOnFork: boolean;
  /** Real-time priority (1..99) for SCHED_FIFO/RR, else 0. */
  priority: number;
  /** Nice value (also kept for real-time threads, where it matters once they leave the policy). */
  nice: number;
  /** Utilisation clamps when set (CONFIG_UCLAMP_TASK), else null. */
  utilClamp: { min: number; max: number } | null;
  personality: number;
  /** CPU affinity mask (sched_getaffinity), hex bytes. */
  affinity: string;
  /** PR_SET_NO_NEW_PRIVS: a per-thread flag that can only be set, never cleared. */
  noNewPrivs: boolean;
}

export interface AttributesState {
  /** Indexed by RLIMIT_* number; the names are for readers of `stasis inspect --json`. */
  rlimits: Array<{ resource: number; name: string } & Rlimit>;
  umask: number;
  cwd: string;
  personality: number;
  threads: ThreadScheduling[];
}

// ---------------------------------------------------------------------------------------
// dump

export function readUmask(pid: number): number {
  const m = /^Umask:\s*([0-7]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
  if (!m) throw new StasisError('UNSUPPORTED', `/proc/${pid}/status has no Umask line (Linux < 4.7)`, { pid });
  return parseInt(m[1], 8);
}

export function readPersonality(pid: number, tid: number = pid): number {
  return parseInt(readFileSync(`/proc/${pid}/task/${tid}/personality`, 'latin1').trim(), 16);
}

/**
 * From /proc/PID/limits, not prlimit(2): prlimit on a process of another uid needs
 * CAP_SYS_RESOURCE, which root lacks on some machines (the dump of such a process failed
 * with EPERM).
 */
export function captureRlimits(pid: number): AttributesState['rlimits'] {
  const limits = readLimits(pid);
  return RLIMIT_NAMES.map((name, resource) => {
    if (!limits[resource]) throw new StasisError('UNSUPPORTED', `/proc/${pid}/limits has no row for RLIMIT_${name}`, { pid });
    return { resource, name, ...limits[resource] };
  });
}

export function readNoNewPrivs(pid: number, tid: number): boolean {
  return /^NoNewPrivs:\s*1$/m.test(readFileSync(`/proc/${pid}/task/${tid}/status`, 'latin1'));
}

export function captureScheduling(pid: number, tid: number): ThreadScheduling {
  const attr = schedGetattr(tid);
  const clamped = attr.utilMin !== 0 || (attr.utilMax !== 0 && attr.utilMax !== 1024);
  return {
    tid,
    policy: attr.policy,
    resetOnFork: (attr.flags & BigInt(SCHED_FLAG.RESET_ON_FORK)) !== 0n,
    priority: attr.priority,
    nice: getNice(tid),
    utilClamp: clamped ? { min: attr.utilMin, max: attr.utilMax } : null,
    personality: readPersonality(pid, tid),
    affinity: getThreadAffinity(tid).toString('hex'),
    noNewPrivs: readNoNewPrivs(pid, tid),
  };
}

export function captureAttributes(ctx: DumpContext): AttributesState {
  const pid = ctx.pid;
  const cwd = readlinkSync(`/proc/${pid}/cwd`);
  if (cwd.endsWith(' (deleted)')) {
    throw new StasisError('UNSUPPORTED', `the working directory of process ${pid} was deleted (${cwd})`, { pid, path: cwd });
  }
  const root = readlinkSync(`/proc/${pid}/root`);
  if (root !== '/') throw new StasisError('UNSUPPORTED', `process ${pid} runs chrooted in ${root}; only '/' is supported`, { pid, path: root });
  return {
    rlimits: captureRlimits(pid),
    umask: readUmask(pid),
    cwd,
    personality: readPersonality(pid),
    threads: ctx.frozen.threads.filter((t) => !t.gone).map((t) => captureScheduling(pid, t.tid)),
  };
}

// ---------------------------------------------------------------------------------------
// restore

export function restoreRlimits(pid: number, rlimits: AttributesState['rlimits']): void {
  const currentLimits = readLimits(pid);
  for (const limit of rlimits) {
    const current = currentLimits[limit.resource] ?? getRlimit(pid, limit.resource);
    if (current.soft === limit.soft && current.hard === limit.hard) continue;
    try {
      setRlimit(pid, limit.resource, { soft: limit.soft, hard: limit.hard });
    } catch (err) {
      throw new StasisError(
        'SYSCALL_FAILED',
        `cannot restore RLIMIT_${limit.name} (${fmtLimit(limit.soft)}/${fmtLimit(limit.hard)}) of process ${pid}: ${(err as Error).message}` +
          (err instanceof SysError && err.code === 'EPERM' ? ' (raising a hard limit needs CAP_SYS_RESOURCE; RLIMIT_NOFILE is bounded by fs.nr_open)' : ''),
        { pid, cause: err },
      );
    }
  }
}

export function restoreScheduling(pid: number, s: ThreadScheduling): void {
  const tid = s.tid;
  try {
    const realtime = s.policy === SCHED.FIFO || s.policy === SCHED.RR;
    if (realtime) setNice(tid, s.nice); // sched_setattr ignores sched_nice for real-time policies
    let flags = s.resetOnFork ? BigInt(SCHED_FLAG.RESET_ON_FORK) : 0n;
    if (s.utilClamp) flags |= BigInt(SCHED_FLAG.UTIL_CLAMP_MIN | SCHED_FLAG.UTIL_CLAMP_MAX);
    schedSetattr(tid, {
      policy: s.policy,
      flags,
      nice: s.nice,
      priority: realtime ? s.priority : 0,
      runtime: 0n,
      deadline: 0n,
      period: 0n,
      utilMin: s.utilClamp?.min ?? 0,
      utilMax: s.utilClamp?.max ?? 0,
    });
  } catch (err) {
    if (err instanceof SysError && err.code === 'ESRCH') {
      throw new StasisError('SYSCALL_FAILED', `thread ${tid} of process ${pid} does not exist (restore attributes after the threads)`, { pid, tid, cause: err });
    }
    throw new StasisError('SYSCALL_FAILED', `cannot restore the scheduling of thread ${tid} (${policyName(s.policy)}, priority ${s.priority}, nice ${s.nice}): ${(err as Error).message}`, { pid, tid, cause: err });
  }
}

const PR_SET_NO_NEW_PRIVS = 38;

/** The kernel keeps the CPUs of the mask that exist here; none of them existing is an error (EINVAL). */
function restoreAffinity(pid: number, t: ThreadScheduling): void {
  if (!t.affinity) return;
  try {
    setThreadAffinity(t.tid, Buffer.from(t.affinity, 'hex'));
  } catch (err) {
    throw new StasisError('SYSCALL_FAILED', `cannot restore the CPU affinity of thread ${t.tid} (mask ${t.affinity.replace(/(00)+$/, '')}): ${(err as Error).message}`, { pid, tid: t.tid, cause: err });
  }
}

function setPersonality(remote: RemoteTask, tid: number, personality: number): void {
  remote.syscall(SYSCALL.personality, [personality], `personality(0x${personality.toString(16)}) in thread ${tid}`);
}

export function restoreAttributes(ctx: RestoreContext, state: AttributesState): void {
  const { pid, remote } = ctx;
  try {
    if (!statSync(state.cwd).isDirectory()) throw new Error('not a directory');
  } catch (err) {
    throw new StasisError('SYSCALL_FAILED', `the working directory ${state.cwd} of the image is missing here: ${(err as Error).message}`, { pid, path: state.cwd });
  }
  remote.resetScratch();
  remote.syscall(SYSCALL.chdir, [remote.putString(state.cwd)], `chdir(${state.cwd})`);
  remote.syscall(SYSCALL.umask, [state.umask], 'umask');

  const mainTid = remote.thread.tid;
  if (!state.threads.some((t) => t.tid === mainTid) && readPersonality(pid, mainTid) !== state.personality) {
    setPersonality(remote, mainTid, state.personality);
  }
  for (const t of state.threads) {
    let current: number;
    try {
      current = readPersonality(pid, t.tid);
    } catch {
      throw new StasisError('SYSCALL_FAILED', `thread ${t.tid} of process ${pid} does not exist (restore attributes after the threads)`, { pid, tid: t.tid });
    }
    if (current !== t.personality) inThread(ctx, t.tid, (r) => setPersonality(r, t.tid, t.personality));
    if (t.noNewPrivs && !readNoNewPrivs(pid, t.tid)) {
      inThread(ctx, t.tid, (r) => r.syscall(SYSCALL.prctl, [PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0], `prctl(PR_SET_NO_NEW_PRIVS) in thread ${t.tid}`));
    }
    restoreScheduling(pid, t);
    restoreAffinity(pid, t);
  }
  restoreRlimits(pid, state.rlimits);
}

// ---------------------------------------------------------------------------------------
// check

function ourCapabilities(): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'latin1'));
  return m ? BigInt('0x' + m[1]) : 0n;
}

const CAP_SYS_NICE = 23n;
const CAP_SYS_RESOURCE = 24n;

export function checkAttributes(pid: number): Finding[] {
  const findings: Finding[] = [];
  const caps = ourCapabilities();
  const has = (cap: bigint) => (caps & (1n << cap)) !== 0n;

  let root = '/';
  try {
    root = readlinkSync(`/proc/${pid}/root`);
  } catch (err) {
    findings.push({ kind: 'process', what: 'root directory', supported: false, reason: `unreadable: ${(err as Error).message}` });
  }
  if (root !== '/') findings.push({ kind: 'process', what: `root directory ${root}`, supported: false, reason: 'chroot is not supported: only / can be restored' });

  try {
    const cwd = readlinkSync(`/proc/${pid}/cwd`);
    findings.push(
      cwd.endsWith(' (deleted)')
        ? { kind: 'process', what: `working directory ${cwd}`, supported: false, reason: 'it was deleted' }
        : { kind: 'process', what: `working directory ${cwd}`, supported: true },
    );
  } catch (err) {
    findings.push({ kind: 'process', what: 'working directory', supported: false, reason: `unreadable: ${(err as Error).message}` });
  }

  // cwd, root and umask live in fs_struct, shared by threads made with CLONE_FS; a thread
  // that called unshare(CLONE_FS) has its own, which the restore (one chdir) would lose.
  let mainCwd: string | null = null;
  try {
    mainCwd = readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    // reported above
  }
  for (const tid of safeTasks(pid)) {
    if (tid === pid || mainCwd === null) continue;
    try {
      const cwd = readlinkSync(`/proc/${pid}/task/${tid}/cwd`);
      if (cwd !== mainCwd) {
        findings.push({ kind: 'thread', what: `thread ${tid}: working directory ${cwd}`, supported: false, reason: 'the thread has its own working directory (unshare(CLONE_FS))' });
      }
    } catch {
      // exited meanwhile
    }
  }

  let theirLimits: Rlimit[] = [];
  try {
    theirLimits = readLimits(pid);
  } catch (err) {
    findings.push({ kind: 'rlimit', what: `/proc/${pid}/limits`, supported: false, reason: `unreadable: ${(err as Error).message}` });
  }
  for (const name of RLIMIT_NAMES) {
    let theirs: Rlimit;
    let ours: Rlimit;
    try {
      theirs = theirLimits[RLIMIT[name]];
      if (!theirs) throw new Error(`no row in /proc/${pid}/limits`);
      ours = getRlimit(process.pid, RLIMIT[name]);
    } catch (err) {
      findings.push({ kind: 'rlimit', what: `RLIMIT_${name}`, supported: false, reason: `unreadable: ${(err as Error).message}` });
      continue;
    }
    if (!has(CAP_SYS_RESOURCE) && theirs.hard > ours.hard) {
      findings.push({ kind: 'rlimit', what: `RLIMIT_${name} hard limit ${fmtLimit(theirs.hard)}`, supported: false, reason: `above ours (${fmtLimit(ours.hard)}); raising it needs CAP_SYS_RESOURCE` });
    }
  }

  const tids = safeTasks(pid);
  const rtprio = theirLimits[RLIMIT.RTPRIO]?.soft ?? 0n;
  for (const tid of tids) {
    let attr;
    try {
      attr = schedGetattr(tid);
    } catch {
      continue; // exited meanwhile
    }
    const what = `thread ${tid}: ${policyName(attr.policy)}${attr.priority ? ` priority ${attr.priority}` : ''}`;
    if (attr.policy === SCHED.DEADLINE) {
      findings.push({ kind: 'thread', what, supported: false, reason: 'SCHED_DEADLINE is not restored' });
    } else if (attr.policy === SCHED.EXT || attr.policy > SCHED.EXT) {
      findings.push({ kind: 'thread', what, supported: false, reason: 'unknown scheduling policy' });
    } else if ((attr.policy === SCHED.FIFO || attr.policy === SCHED.RR) && !has(CAP_SYS_NICE) && BigInt(attr.priority) > rtprio) {
      findings.push({ kind: 'thread', what, supported: false, reason: `setting a real-time priority above RLIMIT_RTPRIO (${rtprio}) needs CAP_SYS_NICE` });
    }
  }
  return findings;
}

function safeTasks(pid: number): number[] {
  try {
    return listTasks(pid);
  } catch {
    return []; // the process is gone: other checks report it
  }
}

export function policyName(policy: number): string {
  for (const [name, value] of Object.entries(SCHED)) if (value === policy) return `SCHED_${name}`;
  return `policy ${policy}`;
}

function fmtLimit(v: bigint): string {
  return v === RLIM_INFINITY ? 'unlimited' : v.toString();
}

export const attributesResource: CheckpointResource<AttributesState> = {
  name: 'attributes',
  noteType: STASIS_NOTE.ATTRIBUTES,
  version: 1,
  check: checkAttributes,
  capture: captureAttributes,
  restore: restoreAttributes,
};
