/**
 * Per-process and per-thread kernel settings that have no resource of their own: prctl
 * flags, membarrier registrations, oom_score_adj, loginuid, coredump_filter, and the
 * credentials (uids, gids, groups, capabilities, securebits).
 *
 * Dump: what the kernel answers only to the caller (PR_GET_*, membarrier
 * GET_REGISTRATIONS, which query current's mm or task) is asked by injected syscalls in
 * each frozen thread; the rest comes from /proc/PID[/task/TID]/{status,oom_score_adj,
 * loginuid,coredump_filter,timens_offsets}. Nothing here needs a capability of the dumper
 * beyond ptrace access.
 *
 * Restore (after the attributes, before timers and signals): process-wide settings (the
 * pending time namespace, loginuid, oom_score_adj: these need root), then
 * in each thread the bounding set, groups and uids/gids, securebits and capabilities, and
 * last what a change of credentials resets (commit_creds() sets dumpable to
 * suid_dumpable and clears pdeath_signal when the euid/egid/fsuid/fsgid change). Until
 * then the process is root with stasis's capabilities, which the earlier phases need.
 *
 * Decision table (R restored, F refused at dump by check(), I irrelevant or covered elsewhere):
 *
 * | getter                                   | scope   | decision |
 * | ---------------------------------------- | ------- | -------- |
 * | PR_GET_PDEATHSIG (task->pdeath_signal)   | thread  | R, after the credentials; it now fires when the restorer's thread exits (warned) |
 * | /proc/PID/timerslack_ns default (default_timer_slack_ns) | thread | I: PR_SET_TIMERSLACK(0) resets to the restorer's default, not the original's |
 * | PR_GET_DUMPABLE                          | mm      | R, after the credentials (setresuid resets it) |
 * | PR_GET_KEEPCAPS                          | thread  | R, it is SECBIT_KEEP_CAPS of PR_GET_SECUREBITS |
 * | PR_GET_SECUREBITS                        | thread  | R (PR_SET_SECUREBITS needs CAP_SETPCAP: set before the capabilities drop) |
 * | PR_GET_TIMERSLACK, timerslack_ns         | thread  | R (a thread under SCHED_FIFO/RR has 0, which its policy gives back) |
 * | PR_GET_NAME                              | thread  | R by threads.ts (PR_SET_NAME) |
 * | PR_GET_SECCOMP, Seccomp:                 | thread  | F by check.ts (any mode but 0) |
 * | PR_GET_NO_NEW_PRIVS                      | thread  | R by attributes.ts |
 * | PR_GET_THP_DISABLE (1 | flags << 1)      | mm      | R: PR_SET_THP_DISABLE(1, flags) |
 * | PR_GET_CHILD_SUBREAPER                   | process | R |
 * | PR_GET_TAGGED_ADDR_CTRL                  | -       | I: arm64/riscv only (EINVAL on x86_64); x86 LAM is untag_mask below |
 * | untag_mask: (x86 LAM, ARCH_ENABLE_TAGGED_ADDR) | mm | F when it is not all ones |
 * | x86_Thread_features: (shadow stack)      | thread  | F when any feature is enabled |
 * | PR_GET_SPECULATION_CTRL SSB/IB/L1D_FLUSH | thread  | R when the value is PR_SPEC_PRCTL-controlled and differs; else system policy (I) |
 * | PR_GET_FP_MODE, PR_GET_FPEMU, PR_GET_FPEXC, PR_GET_ENDIAN, PR_GET_UNALIGN | - | I: other architectures (EINVAL on x86_64) |
 * | PR_GET_TSC                               | thread  | R |
 * | PR_MCE_KILL_GET                          | thread  | R |
 * | PR_GET_MDWE                              | mm      | R (set once the memory is in place: it can only be set) |
 * | PR_GET_IO_FLUSHER (PF_MEMALLOC_NOIO|PF_LOCAL_THROTTLE in stat) | thread | F: setting it needs CAP_SYS_RESOURCE |
 * | PR_GET_MEMORY_MERGE (ksm_merge_any)      | mm      | R when stasis has CAP_SYS_RESOURCE (PR_SET_MEMORY_MERGE needs it), else F |
 * | PR_GET_AUXV                              | mm      | R by mm.ts (PR_SET_MM_MAP) |
 * | PR_SET_MM / PR_GET_TID_ADDRESS           | mm/thread | R by mm.ts / threads.ts |
 * | PR_GET_TIMING                            | -       | I: always PR_TIMING_STATISTICAL |
 * | PR_FUTEX_HASH GET_SLOTS                  | process | I: the private futex hash's size, performance only (re-sized as threads are made) |
 * | PR_SCHED_CORE cookie                     | thread  | F when non-zero (core-scheduling groups are not restored); EINVAL here (CONFIG_SCHED_CORE off) |
 * | PR_SET_PTRACER (Yama)                    | process | I: no Yama on this kernel; no getter |
 * | PR_GET_SHADOW_STACK_STATUS, PR_PAC_*, PR_SVE/SME_*, PR_RISCV_* | - | I: other architectures |
 * | membarrier GET_REGISTRATIONS             | mm      | R: each registration made again (before 6.3 the kernel cannot say: warned at restore) |
 * | /proc/PID/oom_score_adj (oom_adj)        | process | R; F when below stasis's own without CAP_SYS_RESOURCE |
 * | /proc/PID/loginuid                       | process | R (written by the process itself; needs CAP_AUDIT_CONTROL, else F) |
 * | /proc/PID/sessionid                      | process | I: the audit session id is new or the restorer's (set by the kernel only) |
 * | /proc/PID/coredump_filter                | mm      | R |
 * | status Uid/Gid (real, effective, saved, fs), Groups | thread | R, injected setgroups/setresgid/setresuid/setfsgid/setfsuid |
 * | capget / CapInh CapPrm CapEff CapBnd CapAmb | thread | R: PR_CAPBSET_DROP, capset, PR_CAP_AMBIENT_RAISE; F when stasis lacks one |
 * | personality, umask, cwd, rlimits, sched_*, nice, affinity | - | R by attributes.ts |
 * | /proc/PID/stat exit_signal (field 38)    | process | F unless SIGCHLD (the restored process gets the stub's) |
 * | /proc/PID/stat flags, sched, schedstat, status counters | - | I: statistics and transient kernel flags |
 * | /proc/PID/autogroup                      | session | I: follows the session; the restored process is in the restorer's |
 * | /proc/PID/ns/*                           | process | F by check.ts when not stasis's |
 * | ns/time_for_children                     | thread  | R for the main thread (unshare(CLONE_NEWTIME) + timens_offsets); F for another thread |
 * | ns/pid_for_children                      | thread  | F when it differs from ns/pid (a pending unshare(CLONE_NEWPID)) |
 * | ns/* of a thread other than the main one | thread  | F when it differs from the main thread's (unshare in one thread) |
 * | /proc/PID/attr/* (LSM labels)            | thread  | F when one differs from stasis's (the restored process inherits those); no LSM here (EINVAL) |
 * | Mems_allowed, cpuset                     | process | I: one NUMA node here; cgroup membership is the restorer's |
 */
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { SYSCALL, RemoteTask } from '../ptrace/remote.js';
import { STASIS_NOTE } from '../image/stasis-notes.js';
import { StasisError } from '../errors.js';
import { listTasks } from '../proc/status.js';
import { schedCoreCookie } from '../sys/prctl.js';
import { inThread } from './signals.js';
import type { CheckpointResource, DumpContext, Finding, RestoreContext } from './resource.js';

const PR = {
  SET_PDEATHSIG: 1, GET_PDEATHSIG: 2, GET_DUMPABLE: 3, SET_DUMPABLE: 4,
  GET_TIMERSLACK: 30, SET_TIMERSLACK: 29, GET_TSC: 25, SET_TSC: 26, GET_SECUREBITS: 27, SET_SECUREBITS: 28,
  CAPBSET_DROP: 24, MCE_KILL: 33, MCE_KILL_GET: 34, SET_CHILD_SUBREAPER: 36, GET_CHILD_SUBREAPER: 37,
  SET_THP_DISABLE: 41, GET_THP_DISABLE: 42, CAP_AMBIENT: 47, GET_SPECULATION_CTRL: 52, SET_SPECULATION_CTRL: 53,
  SET_MDWE: 65, GET_MDWE: 66, SET_MEMORY_MERGE: 67, GET_MEMORY_MERGE: 68,
} as const;
const PR_CAP_AMBIENT_RAISE = 2;
const PR_MCE_KILL_CLEAR = 0;
const PR_MCE_KILL_SET = 1;
const PR_MCE_KILL_DEFAULT = 2;
/** PR_SPEC_* (include/uapi/linux/prctl.h): which speculation, and the state bits. */
const SPECULATIONS = [
  { which: 0, name: 'store bypass' },
  { which: 1, name: 'indirect branch' },
  { which: 2, name: 'L1D flush' },
] as const;
const PR_SPEC_PRCTL = 1;
const PR_SPEC_STATE = 2 | 4 | 8 | 16; // ENABLE, DISABLE, FORCE_DISABLE, DISABLE_NOEXEC
const MEMBARRIER_CMD_GET_REGISTRATIONS = 1 << 9;
/** The REGISTER_* commands GET_REGISTRATIONS reports, in an order the kernel accepts. */
const MEMBARRIER_REGISTRATIONS = [
  { cmd: 1 << 2, name: 'GLOBAL_EXPEDITED' },
  { cmd: 1 << 4, name: 'PRIVATE_EXPEDITED' },
  { cmd: 1 << 6, name: 'PRIVATE_EXPEDITED_SYNC_CORE' },
  { cmd: 1 << 8, name: 'PRIVATE_EXPEDITED_RSEQ' },
] as const;
const SECBIT_NO_SETUID_FIXUP = 1 << 2;
const LINUX_CAPABILITY_VERSION_3 = 0x20080522;
const CAP = { SYS_RESOURCE: 24, AUDIT_CONTROL: 30 } as const;
const UNSET_LOGINUID = 4294967295;
const SIGCHLD = 17;
const PF_MEMALLOC_NOIO = 0x00080000;
const PF_LOCAL_THROTTLE = 0x00100000;

export interface Credentials {
  /** real, effective, saved, fs */
  uid: number[];
  gid: number[];
  groups: number[];
  /** PR_GET_SECUREBITS (SECBIT_KEEP_CAPS is PR_GET_KEEPCAPS). */
  securebits: number;
  /** Capability sets as /proc/PID/task/TID/status prints them, hex. */
  caps: { inheritable: string; permitted: string; effective: string; bounding: string; ambient: string };
}

export interface ThreadSettings {
  tid: number;
  pdeathsig: number;
  timerslackNs: bigint;
  /** PR_GET_TSC: PR_TSC_ENABLE (1) or PR_TSC_SIGSEGV (2). */
  tsc: number;
  /** PR_MCE_KILL_GET: PR_MCE_KILL_LATE (0), _EARLY (1) or _DEFAULT (2). */
  mceKill: number;
  /** PR_GET_SPECULATION_CTRL per SPECULATIONS entry (-errno when the kernel does not know it). */
  speculation: number[];
  creds: Credentials;
}

export interface ProcessSettingsState {
  dumpable: number;
  /** PR_GET_THP_DISABLE: 0, or 1 | flags << 1 (PR_THP_DISABLE_EXCEPT_ADVISED since 6.18). */
  thpDisable: number;
  childSubreaper: number;
  mdwe: number;
  memoryMerge: number;
  /** MEMBARRIER_CMD_GET_REGISTRATIONS, null before 6.3 (EINVAL). */
  membarrier: number | null;
  oomScoreAdj: number;
  loginuid: number;
  coredumpFilter: number;
  /**
   * The main thread's pending time namespace for its children (unshare(CLONE_NEWTIME)):
   * the offsets of /proc/PID/timens_offsets, or null when children would share its own.
   */
  timeForChildren: Array<{ clock: string; seconds: string; nanoseconds: string }> | null;
  threads: ThreadSettings[];
}

// ---------------------------------------------------------------------------------------
// /proc readers

function statusFields(pid: number, tid: number = pid): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of readFileSync(`/proc/${pid}/task/${tid}/status`, 'latin1').split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return fields;
}

/** Uids, gids, groups and capability sets of one thread (securebits are injected). */
export function readCredentials(pid: number, tid: number = pid): Omit<Credentials, 'securebits'> {
  const f = statusFields(pid, tid);
  const ids = (k: string) => (f.get(k) ?? '').split(/\s+/).filter(Boolean).map(Number);
  return {
    uid: ids('Uid'),
    gid: ids('Gid'),
    groups: ids('Groups'),
    caps: {
      inheritable: f.get('CapInh') ?? '0',
      permitted: f.get('CapPrm') ?? '0',
      effective: f.get('CapEff') ?? '0',
      bounding: f.get('CapBnd') ?? '0',
      ambient: f.get('CapAmb') ?? '0',
    },
  };
}

function readNumber(path: string): number {
  return Number(readFileSync(path, 'latin1').trim());
}

export function readOomScoreAdj(pid: number): number {
  return readNumber(`/proc/${pid}/oom_score_adj`);
}

export function readLoginuid(pid: number): number {
  return readNumber(`/proc/${pid}/loginuid`);
}

export function readCoredumpFilter(pid: number): number {
  return parseInt(readFileSync(`/proc/${pid}/coredump_filter`, 'latin1').trim(), 16);
}

/** /proc/TID/timerslack_ns: the file is not under task/ (fs/proc/base.c tgid_base_stuff only). */
/** The offsets of the time namespace the task's children would get ("monotonic S NS" lines). */
export function readTimensOffsets(pid: number): NonNullable<ProcessSettingsState['timeForChildren']> {
  return readFileSync(`/proc/${pid}/timens_offsets`, 'latin1')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const [clock, seconds, nanoseconds] = l.trim().split(/\s+/);
      return { clock, seconds, nanoseconds };
    });
}

function pendingTimeNamespace(pid: number): boolean {
  try {
    return readlinkSync(`/proc/${pid}/ns/time_for_children`) !== readlinkSync(`/proc/${pid}/ns/time`);
  } catch {
    return false; // no time namespaces (before 5.6)
  }
}

export function readTimerslack(tid: number): bigint {
  return BigInt(readFileSync(`/proc/${tid}/timerslack_ns`, 'latin1').trim());
}

/** Fields of /proc/PID/task/TID/stat after the comm, 1-based as in proc(5) (3 is the state). */
function statField(pid: number, tid: number, field: number): string {
  const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[field - 3];
}

function hasCap(hex: string, cap: number): boolean {
  return ((BigInt('0x' + hex) >> BigInt(cap)) & 1n) === 1n;
}

function capNames(mask: bigint): string {
  const caps: number[] = [];
  for (let c = 0; c < 64; c++) if ((mask >> BigInt(c)) & 1n) caps.push(c);
  return caps.map((c) => `cap ${c}`).join(', ');
}

// ---------------------------------------------------------------------------------------
// dump

function prctlValue(remote: RemoteTask, option: number, what: string, args: Array<number | bigint> = [0, 0, 0, 0]): number {
  return Number(remote.syscall(SYSCALL.prctl, [option, ...args], `prctl(${what}) in thread ${remote.thread.tid}`));
}

function prctlInt(remote: RemoteTask, option: number, what: string): number {
  remote.resetScratch();
  const out = remote.reserve(4);
  remote.syscall(SYSCALL.prctl, [option, out, 0, 0, 0], `prctl(${what}) in thread ${remote.thread.tid}`);
  return remote.readMemory(out, 4).readInt32LE(0);
}

function captureThread(pid: number, remote: RemoteTask): ThreadSettings {
  const tid = remote.thread.tid;
  return {
    tid,
    pdeathsig: prctlInt(remote, PR.GET_PDEATHSIG, 'PR_GET_PDEATHSIG'),
    timerslackNs: BigInt(remote.syscall(SYSCALL.prctl, [PR.GET_TIMERSLACK, 0, 0, 0, 0], `prctl(PR_GET_TIMERSLACK) in thread ${tid}`)),
    tsc: prctlInt(remote, PR.GET_TSC, 'PR_GET_TSC'),
    mceKill: prctlValue(remote, PR.MCE_KILL_GET, 'PR_MCE_KILL_GET'),
    speculation: SPECULATIONS.map(({ which }) => Number(remote.syscallRaw(SYSCALL.prctl, [PR.GET_SPECULATION_CTRL, which, 0, 0, 0]).value)),
    creds: { ...readCredentials(pid, tid), securebits: prctlValue(remote, PR.GET_SECUREBITS, 'PR_GET_SECUREBITS') },
  };
}

export function captureProcessSettings(ctx: DumpContext): ProcessSettingsState {
  const { pid, remote } = ctx;
  const membarrier = remote.syscallRaw(SYSCALL.membarrier, [MEMBARRIER_CMD_GET_REGISTRATIONS, 0, 0]).value;
  const threads = ctx.threads.map((state) => {
    const thread = ctx.frozen.threads.find((t) => t.tid === state.tid)!;
    const task = thread === remote.thread ? remote : new RemoteTask(thread, remote.syscallAt, state.regs);
    if (task !== remote) task.shareScratch(remote);
    try {
      return captureThread(pid, task);
    } finally {
      if (task !== remote) task.close();
      remote.resetScratch();
    }
  });
  return {
    dumpable: prctlValue(remote, PR.GET_DUMPABLE, 'PR_GET_DUMPABLE'),
    thpDisable: prctlValue(remote, PR.GET_THP_DISABLE, 'PR_GET_THP_DISABLE'),
    childSubreaper: prctlInt(remote, PR.GET_CHILD_SUBREAPER, 'PR_GET_CHILD_SUBREAPER'),
    mdwe: Math.max(0, Number(remote.syscallRaw(SYSCALL.prctl, [PR.GET_MDWE, 0, 0, 0, 0]).value)),
    memoryMerge: Math.max(0, Number(remote.syscallRaw(SYSCALL.prctl, [PR.GET_MEMORY_MERGE, 0, 0, 0, 0]).value)),
    membarrier: membarrier < 0n ? null : Number(membarrier),
    oomScoreAdj: readOomScoreAdj(pid),
    loginuid: readLoginuid(pid),
    coredumpFilter: readCoredumpFilter(pid),
    timeForChildren: pendingTimeNamespace(pid) ? readTimensOffsets(pid) : null,
    threads,
  };
}

// ---------------------------------------------------------------------------------------
// restore

function prctl(remote: RemoteTask, args: Array<number | bigint>, what: string): void {
  remote.syscall(SYSCALL.prctl, [...args, 0, 0, 0, 0].slice(0, 5), `prctl(${what}) in thread ${remote.thread.tid}`);
}

/** Settings of the process as a whole, while it is still root with stasis's capabilities. */
function restoreProcessWide(ctx: RestoreContext, state: ProcessSettingsState): void {
  const { pid, remote } = ctx;
  remote.resetScratch();
  if (state.thpDisable & 1) prctl(remote, [PR.SET_THP_DISABLE, 1, state.thpDisable >> 1], `PR_SET_THP_DISABLE, flags ${state.thpDisable >> 1}`);
  if (state.childSubreaper) prctl(remote, [PR.SET_CHILD_SUBREAPER, 1], 'PR_SET_CHILD_SUBREAPER');
  if (state.memoryMerge) prctl(remote, [PR.SET_MEMORY_MERGE, 1], 'PR_SET_MEMORY_MERGE');
  if (state.mdwe) prctl(remote, [PR.SET_MDWE, state.mdwe], `PR_SET_MDWE ${state.mdwe}`);
  if (state.membarrier === null) {
    ctx.warnings.push(`process ${pid}: this kernel could not report membarrier registrations at dump time (MEMBARRIER_CMD_GET_REGISTRATIONS is 6.3+); none were made again`);
  } else {
    for (const { cmd, name } of MEMBARRIER_REGISTRATIONS) {
      if (state.membarrier & cmd) remote.syscall(SYSCALL.membarrier, [cmd, 0, 0], `membarrier(MEMBARRIER_CMD_REGISTER_${name})`);
    }
  }
  // unshare(CLONE_NEWTIME) (CAP_SYS_ADMIN) in the main thread: the new namespace is for
  // its children only, and its offsets can be set until a process enters it (CAP_SYS_TIME).
  if (state.timeForChildren && !pendingTimeNamespace(pid)) {
    const CLONE_NEWTIME = 0x80;
    remote.syscall(SYSCALL.unshare, [CLONE_NEWTIME], 'unshare(CLONE_NEWTIME) for its children');
    const text = state.timeForChildren.map((o) => `${o.clock} ${o.seconds} ${o.nanoseconds}\n`).join('');
    try {
      writeFileSync(`/proc/${pid}/timens_offsets`, text);
    } catch (err) {
      throw new StasisError('SYSCALL_FAILED', `cannot set the offsets of the time namespace for the children of process ${pid} (${text.trim().replace(/\n/g, ', ')}): ${(err as Error).message}`, { pid, cause: err });
    }
  }
  if (readCoredumpFilter(pid) !== state.coredumpFilter) writeFileSync(`/proc/${pid}/coredump_filter`, `0x${state.coredumpFilter.toString(16)}`);
  if (readOomScoreAdj(pid) !== state.oomScoreAdj) {
    try {
      writeFileSync(`/proc/${pid}/oom_score_adj`, String(state.oomScoreAdj));
    } catch (err) {
      throw new StasisError('SYSCALL_FAILED', `cannot restore oom_score_adj ${state.oomScoreAdj} of process ${pid}: ${(err as Error).message} (lowering it needs CAP_SYS_RESOURCE)`, { pid, cause: err });
    }
  }
  // proc_loginuid_write() accepts a write only from the task itself (and CAP_AUDIT_CONTROL).
  if (state.loginuid !== UNSET_LOGINUID && readLoginuid(pid) !== state.loginuid) {
    const O_WRONLY = 1;
    remote.resetScratch();
    const fd = remote.syscall(SYSCALL.open, [remote.putString('/proc/self/loginuid'), O_WRONLY, 0], 'open(/proc/self/loginuid)');
    try {
      const text = Buffer.from(String(state.loginuid));
      remote.syscall(SYSCALL.write, [fd, remote.put(text), text.length], `writing loginuid ${state.loginuid}`);
    } finally {
      remote.syscall(SYSCALL.close, [fd], 'close(/proc/self/loginuid)');
    }
  }
}

function capsetData(caps: Credentials['caps']): Buffer {
  // struct __user_cap_header_struct then two __user_cap_data_struct (low and high 32 bits).
  const buf = Buffer.alloc(8 + 24);
  buf.writeUInt32LE(LINUX_CAPABILITY_VERSION_3, 0);
  buf.writeInt32LE(0, 4);
  const sets = [caps.effective, caps.permitted, caps.inheritable].map((h) => BigInt('0x' + h));
  for (let half = 0; half < 2; half++) {
    sets.forEach((v, i) => buf.writeUInt32LE(Number((v >> BigInt(32 * half)) & 0xffffffffn), 8 + half * 12 + i * 4));
  }
  return buf;
}

/**
 * One thread's credentials, in the order the kernel allows: drop from the bounding set
 * (CAP_SETPCAP), keep every capability across the uid change (SECBIT_NO_SETUID_FIXUP),
 * setgroups/setresgid/setresuid/setfsgid/setfsuid (CAP_SETGID, CAP_SETUID), the saved
 * securebits (CAP_SETPCAP, still effective), then capset down to the saved sets, and the
 * ambient ones raised (they must be permitted and inheritable). Raw syscalls change only
 * the calling thread's cred, as the kernel keeps them: each thread gets its own.
 */
function restoreCredentials(pid: number, remote: RemoteTask, saved: Credentials): void {
  const tid = remote.thread.tid;
  const now = { ...readCredentials(pid, tid), securebits: Number(remote.syscall(SYSCALL.prctl, [PR.GET_SECUREBITS, 0, 0, 0, 0], `prctl(PR_GET_SECUREBITS) in thread ${tid}`)) };
  const same = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i]);
  const idsDiffer = !same(now.uid, saved.uid) || !same(now.gid, saved.gid) || !same(now.groups, saved.groups);
  const capsDiffer = Object.keys(saved.caps).some((k) => BigInt('0x' + now.caps[k as keyof Credentials['caps']]) !== BigInt('0x' + saved.caps[k as keyof Credentials['caps']]));
  if (!idsDiffer && !capsDiffer && now.securebits === saved.securebits) return;

  const bounding = BigInt('0x' + saved.caps.bounding);
  const nowBounding = BigInt('0x' + now.caps.bounding);
  for (let cap = 0; cap < 64; cap++) {
    if ((nowBounding >> BigInt(cap)) & 1n && !((bounding >> BigInt(cap)) & 1n)) prctl(remote, [PR.CAPBSET_DROP, cap], `PR_CAPBSET_DROP ${cap}`);
  }
  if (idsDiffer) {
    prctl(remote, [PR.SET_SECUREBITS, now.securebits | SECBIT_NO_SETUID_FIXUP], 'PR_SET_SECUREBITS SECBIT_NO_SETUID_FIXUP');
    remote.resetScratch();
    const groups = Buffer.alloc(4 * Math.max(1, saved.groups.length));
    saved.groups.forEach((g, i) => groups.writeUInt32LE(g, 4 * i));
    remote.syscall(SYSCALL.setgroups, [saved.groups.length, remote.put(groups)], `setgroups(${saved.groups.join(',')}) in thread ${tid}`);
    remote.syscall(SYSCALL.setresgid, saved.gid.slice(0, 3), `setresgid(${saved.gid.slice(0, 3).join(', ')}) in thread ${tid}`);
    remote.syscall(SYSCALL.setresuid, saved.uid.slice(0, 3), `setresuid(${saved.uid.slice(0, 3).join(', ')}) in thread ${tid}`);
    // setfsuid/setfsgid return the previous value, never an error: check what /proc says.
    remote.syscall(SYSCALL.setfsgid, [saved.gid[3]], `setfsgid(${saved.gid[3]}) in thread ${tid}`);
    remote.syscall(SYSCALL.setfsuid, [saved.uid[3]], `setfsuid(${saved.uid[3]}) in thread ${tid}`);
  }
  prctl(remote, [PR.SET_SECUREBITS, saved.securebits], `PR_SET_SECUREBITS 0x${saved.securebits.toString(16)}`);
  remote.resetScratch();
  const data = capsetData(saved.caps);
  const header = remote.put(data);
  remote.syscall(SYSCALL.capset, [header, header + 8n], `capset(effective ${saved.caps.effective}, permitted ${saved.caps.permitted}, inheritable ${saved.caps.inheritable}) in thread ${tid}`);
  const ambient = BigInt('0x' + saved.caps.ambient);
  for (let cap = 0; cap < 64; cap++) {
    if ((ambient >> BigInt(cap)) & 1n) prctl(remote, [PR.CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap], `PR_CAP_AMBIENT_RAISE ${cap}`);
  }
  const after = readCredentials(pid, tid);
  if (!same(after.uid, saved.uid) || !same(after.gid, saved.gid) || !same(after.groups, saved.groups) || JSON.stringify(after.caps) !== JSON.stringify(saved.caps)) {
    throw new StasisError('SYSCALL_FAILED', `thread ${tid} of process ${pid} did not get its credentials back: ${JSON.stringify(after)}, wanted ${JSON.stringify(saved)}`, { pid, tid });
  }
}

/** The rest of one thread's settings; pdeathsig after the credentials, which clear it. */
function restoreThread(ctx: RestoreContext, remote: RemoteTask, t: ThreadSettings): void {
  const { pid } = ctx;
  const tid = remote.thread.tid;
  for (const [i, { which, name }] of SPECULATIONS.entries()) {
    const saved = t.speculation[i];
    if (saved < 0 || !(saved & PR_SPEC_PRCTL)) continue; // not per-task here: the system's policy
    const now = Number(remote.syscallRaw(SYSCALL.prctl, [PR.GET_SPECULATION_CTRL, which, 0, 0, 0]).value);
    if (now === saved) continue;
    if (now < 0 || !(now & PR_SPEC_PRCTL)) {
      ctx.warnings.push(`thread ${tid}: the ${name} speculation control (0x${saved.toString(16)}) is not per-task on this machine; it is the system's (0x${now.toString(16)})`);
      continue;
    }
    prctl(remote, [PR.SET_SPECULATION_CTRL, which, saved & PR_SPEC_STATE], `PR_SET_SPECULATION_CTRL ${name} 0x${(saved & PR_SPEC_STATE).toString(16)}`);
  }
  if (t.timerslackNs !== 0n && BigInt(remote.syscall(SYSCALL.prctl, [PR.GET_TIMERSLACK, 0, 0, 0, 0], `prctl(PR_GET_TIMERSLACK) in thread ${tid}`)) !== t.timerslackNs) prctl(remote, [PR.SET_TIMERSLACK, t.timerslackNs], `PR_SET_TIMERSLACK ${t.timerslackNs}`);
  if (t.tsc !== 1) prctl(remote, [PR.SET_TSC, t.tsc], `PR_SET_TSC ${t.tsc}`);
  if (Number(remote.syscall(SYSCALL.prctl, [PR.MCE_KILL_GET, 0, 0, 0, 0], `prctl(PR_MCE_KILL_GET) in thread ${tid}`)) !== t.mceKill) {
    if (t.mceKill === PR_MCE_KILL_DEFAULT) prctl(remote, [PR.MCE_KILL, PR_MCE_KILL_CLEAR, 0], 'PR_MCE_KILL_CLEAR');
    else prctl(remote, [PR.MCE_KILL, PR_MCE_KILL_SET, t.mceKill], `PR_MCE_KILL_SET ${t.mceKill}`);
  }
  restoreCredentials(pid, remote, t.creds);
  if (t.pdeathsig) {
    prctl(remote, [PR.SET_PDEATHSIG, t.pdeathsig], `PR_SET_PDEATHSIG ${t.pdeathsig}`);
    ctx.warnings.push(`thread ${tid}: its parent-death signal ${t.pdeathsig} now fires when the restorer (its new parent) exits`);
  }
}

export function restoreProcessSettings(ctx: RestoreContext, state: ProcessSettingsState): void {
  restoreProcessWide(ctx, state);
  const mainTid = ctx.remote.thread.tid;
  // The main thread last: the others' injections share its scratch memory.
  const ordered = [...state.threads.filter((t) => t.tid !== mainTid), ...state.threads.filter((t) => t.tid === mainTid)];
  for (const t of ordered) inThread(ctx, t.tid, (remote) => restoreThread(ctx, remote, t));
  // setresuid() etc. set dumpable to suid_dumpable (commit_creds): set it once they are done.
  ctx.remote.resetScratch();
  const dumpable = Number(ctx.remote.syscall(SYSCALL.prctl, [PR.GET_DUMPABLE, 0, 0, 0, 0], 'prctl(PR_GET_DUMPABLE)'));
  // SUID_DUMP_ROOT (2) cannot be set by prctl; it comes back as suid_dumpable gives it.
  if (dumpable !== state.dumpable && state.dumpable !== 2) prctl(ctx.remote, [PR.SET_DUMPABLE, state.dumpable], `PR_SET_DUMPABLE ${state.dumpable}`);
}

// ---------------------------------------------------------------------------------------
// check

function ourStatus(): Omit<Credentials, 'securebits'> {
  return readCredentials(process.pid, process.pid);
}

export function checkProcessSettings(pid: number): Finding[] {
  const findings: Finding[] = [];
  const refuse = (kind: string, what: string, reason: string) => findings.push({ kind, what, supported: false, reason });
  const ours = ourStatus();
  const weHave = (cap: number) => hasCap(ours.caps.effective, cap);
  let tids: number[] = [];
  try {
    tids = listTasks(pid);
  } catch {
    return findings; // gone: other checks say so
  }

  // Namespaces hang off each task (nsproxy): a thread may have unshared its own, and
  // unshare(CLONE_NEWTIME/NEWPID) changes only what the caller's children get.
  const mainNs = new Map<string, string>();
  for (const tid of [pid, ...tids.filter((t) => t !== pid)]) {
    const dir = `/proc/${pid}/task/${tid}/ns`;
    const prefix = tid === pid ? '' : `thread ${tid}: `;
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue; // exited meanwhile
    }
    const link = (name: string): string | null => {
      try {
        return readlinkSync(`${dir}/${name}`);
      } catch (err) {
        // A pid namespace made by unshare() reads as ENOENT until its first process exists.
        return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'a new one, not populated yet' : null;
      }
    };
    for (const name of names.filter((n) => !n.endsWith('_for_children'))) {
      const own = link(name);
      if (own === null) continue;
      if (tid === pid) mainNs.set(name, own);
      else if (mainNs.has(name) && mainNs.get(name) !== own) refuse('thread', `${prefix}ns/${name} ${own} differs from the main thread's`, 'a thread in its own namespace is not restored');
    }
    for (const name of names.filter((n) => n.endsWith('_for_children'))) {
      const parent = name.replace(/_for_children$/, '');
      const own = link(parent);
      const forChildren = link(name);
      if (own !== null && forChildren !== null && forChildren !== own) {
        if (tid === pid && name === 'time_for_children') {
          findings.push({ kind: 'process', what: `ns/${name} differs from ns/${parent} (${forChildren})`, supported: true, reason: 'a pending time namespace for children: made again with its offsets' });
        } else {
          const why = name === 'time_for_children' ? ' in a thread other than the main one' : '';
          refuse(tid === pid ? 'process' : 'thread', `${prefix}ns/${name} differs from ns/${parent} (${forChildren})`, `a pending unshare(CLONE_NEW${parent.toUpperCase()}) for its children${why} is not restored`);
        }
      }
    }
  }
  try {
    const exitSignal = Number(statField(pid, pid, 38));
    if (exitSignal !== SIGCHLD) refuse('process', `exit signal ${exitSignal}`, 'the restored process would signal its parent with SIGCHLD');
  } catch {
    // gone
  }
  try {
    const adj = readOomScoreAdj(pid);
    if (adj < readOomScoreAdj(process.pid) && !weHave(CAP.SYS_RESOURCE)) refuse('process', `oom_score_adj ${adj}`, `below stasis's (${readOomScoreAdj(process.pid)}); lowering it needs CAP_SYS_RESOURCE`);
  } catch {
    // gone
  }
  try {
    const loginuid = readLoginuid(pid);
    if (loginuid !== UNSET_LOGINUID && loginuid !== readLoginuid(process.pid) && !weHave(CAP.AUDIT_CONTROL)) refuse('process', `loginuid ${loginuid}`, 'setting it needs CAP_AUDIT_CONTROL');
  } catch {
    // no audit support: no loginuid file
  }
  try {
    if (/^ksm_merge_any:\s*yes/m.test(readFileSync(`/proc/${pid}/ksm_stat`, 'latin1')) && !weHave(CAP.SYS_RESOURCE)) {
      refuse('process', 'PR_SET_MEMORY_MERGE (KSM for all its memory)', 'setting it needs CAP_SYS_RESOURCE');
    }
  } catch {
    // no KSM
  }

  for (const tid of tids) {
    let f: Map<string, string>;
    let creds: Omit<Credentials, 'securebits'>;
    try {
      f = statusFields(pid, tid);
      creds = readCredentials(pid, tid);
    } catch {
      continue; // exited meanwhile
    }
    const untag = f.get('untag_mask');
    if (untag !== undefined && BigInt(untag) !== 0xffffffffffffffffn) refuse('process', `untag_mask ${untag}`, 'linear address masking (ARCH_ENABLE_TAGGED_ADDR) is not restored');
    const features = f.get('x86_Thread_features');
    if (features) refuse('thread', `thread ${tid}: x86_Thread_features ${features}`, 'shadow stacks are not restored');
    try {
      const flags = Number(statField(pid, tid, 9));
      if (flags & (PF_MEMALLOC_NOIO | PF_LOCAL_THROTTLE)) refuse('thread', `thread ${tid}: PR_SET_IO_FLUSHER`, 'setting it needs CAP_SYS_RESOURCE');
    } catch {
      // exited
    }
    // Capabilities are given back from stasis's own: it cannot grant one it lacks, and
    // capset() takes inheritable ones only from the bounding set.
    const big = (hex: string) => BigInt('0x' + hex);
    const lacking = {
      permitted: big(creds.caps.permitted) & ~big(ours.caps.permitted),
      ambient: big(creds.caps.ambient) & ~big(ours.caps.permitted),
      bounding: big(creds.caps.bounding) & ~big(ours.caps.bounding),
      inheritable: big(creds.caps.inheritable) & ~(big(ours.caps.bounding) | big(ours.caps.inheritable)),
    };
    for (const [set, missing] of Object.entries(lacking)) {
      if (missing) refuse('thread', `thread ${tid}: ${set} capabilities ${creds.caps[set as keyof typeof lacking]}`, `stasis lacks ${capNames(missing)} (its own permitted: ${ours.caps.permitted})`);
    }
    try {
      const cookie = schedCoreCookie(tid);
      if (cookie) refuse('thread', `thread ${tid}: core-scheduling cookie 0x${cookie.toString(16)}`, 'core-scheduling groups (PR_SCHED_CORE) are not restored');
    } catch {
      // exited meanwhile
    }
    // The restored process inherits the restorer's labels (fork); any other is lost.
    for (const label of ['current', 'exec', 'fscreate', 'keycreate', 'sockcreate']) {
      let text: string;
      try {
        text = readFileSync(`/proc/${pid}/task/${tid}/attr/${label}`, 'latin1').replace(/\0/g, '').trim();
      } catch {
        continue; // EINVAL: no LSM offers it
      }
      let ourLabel = '';
      try {
        ourLabel = readFileSync(`/proc/self/attr/${label}`, 'latin1').replace(/\0/g, '').trim();
      } catch {
        // none
      }
      if (text !== ourLabel) refuse('thread', `thread ${tid}: LSM attr/${label} ${text}`, `security labels are not restored (stasis's is '${ourLabel}')`);
    }
  }
  return findings;
}

export const processSettingsResource: CheckpointResource<ProcessSettingsState> = {
  name: 'process settings',
  noteType: STASIS_NOTE.PROCESS_SETTINGS,
  version: 1,
  check: checkProcessSettings,
  capture: captureProcessSettings,
  restore: restoreProcessSettings,
};
