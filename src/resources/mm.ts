/**
 * The mm fields of a process that are not mappings: where its code, data, heap, stack,
 * arguments and environment are (/proc/PID/stat fields 26-28, 45-51; brk itself only from
 * an injected brk(0)), its auxiliary vector and its executable. Restored in one
 * prctl(PR_SET_MM, PR_SET_MM_MAP) once the mappings exist (the kernel validates the
 * addresses against them).
 *
 * Also mlockall(MCL_FUTURE [| MCL_ONFAULT]): it lives in mm->def_flags, which the kernel
 * shows nowhere but in the VmFlags of each new mapping ('lo', and 'lf' for on-fault). The
 * dump's own scratch mapping, just made in the frozen process, is such a new mapping.
 */
import { readFileSync } from 'node:fs';
import type { CheckpointResource, DumpContext, RestoreContext } from './resource.js';
import { SYSCALL } from '../ptrace/remote.js';
import { STASIS_NOTE } from '../image/stasis-notes.js';
import { readAuxv, readExe } from '../proc/status.js';
import { readSmaps } from '../proc/maps.js';
import { identifyFile, type FileIdentity } from './file-identity.js';

export interface MmState {
  startCode: bigint;
  endCode: bigint;
  startData: bigint;
  endData: bigint;
  startBrk: bigint;
  brk: bigint;
  startStack: bigint;
  argStart: bigint;
  argEnd: bigint;
  envStart: bigint;
  envEnd: bigint;
  auxv: Buffer;
  exe: FileIdentity | null;
  /** mlockall(MCL_FUTURE) ('locked') or with MCL_ONFAULT ('onfault'); absent when neither. */
  futureLocks?: 'locked' | 'onfault';
}

const PR_SET_MM = 35;
const PR_SET_MM_MAP = 14;
/** struct prctl_mm_map: 13 u64 fields, auxv_size u32, exe_fd u32 (include/uapi/linux/prctl.h). */
const PRCTL_MM_MAP_SIZE = 104;

function readMmFields(pid: number): bigint[] {
  const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const fields = text.slice(text.lastIndexOf(')') + 2).trim().split(' ');
  // fields[0] is proc(5)'s field 3; pick by proc(5)'s numbering.
  return [26, 27, 45, 46, 47, 28, 48, 49, 50, 51].map((n) => BigInt(fields[n - 3]));
}

export function captureMm(ctx: DumpContext): MmState {
  const [startCode, endCode, startData, endData, startBrk, startStack, argStart, argEnd, envStart, envEnd] = readMmFields(ctx.pid);
  const brk = ctx.remote.syscall(SYSCALL.brk, [0], 'brk(0)');
  const exePath = readExe(ctx.pid);
  let exe: FileIdentity | null = null;
  if (exePath && !exePath.endsWith(' (deleted)')) exe = identifyFile(exePath);
  const futureLocks = futureLocksOf(ctx.pid, Number(ctx.remote.scratch));
  return { startCode, endCode, startData, endData, startBrk, brk, startStack, argStart, argEnd, envStart, envEnd, auxv: readAuxv(ctx.pid), exe, ...(futureLocks ? { futureLocks } : {}) };
}

/** What mm->def_flags gives a new mapping: the VmFlags of the one at `newMapping`. */
function futureLocksOf(pid: number, newMapping: number): MmState['futureLocks'] {
  const flags = readSmaps(pid).find((m) => m.start === newMapping)?.vmFlags;
  if (!flags?.has('lo')) return undefined;
  return flags.has('lf') ? 'onfault' : 'locked';
}

const O_RDONLY = 0;
const O_CLOEXEC = 0o2000000;
const MCL_FUTURE = 2;
const MCL_ONFAULT = 4;

export function restoreMm(ctx: RestoreContext, state: MmState): string[] {
  const warnings: string[] = [];
  const { remote } = ctx;
  remote.resetScratch();
  const auxv = remote.put(state.auxv);
  let exeFd = -1;
  if (state.exe) {
    exeFd = Number(remote.syscall(SYSCALL.open, [remote.putString(state.exe.path), O_RDONLY | O_CLOEXEC, 0], `open of the executable ${state.exe.path}`));
  }
  const map = Buffer.alloc(PRCTL_MM_MAP_SIZE);
  [state.startCode, state.endCode, state.startData, state.endData, state.startBrk, state.brk, state.startStack, state.argStart, state.argEnd, state.envStart, state.envEnd, auxv].forEach(
    (value, i) => map.writeBigUInt64LE(value, i * 8),
  );
  map.writeUInt32LE(state.auxv.length, 96);
  map.writeInt32LE(exeFd, 100);
  const setMap = () => remote.syscallRaw(SYSCALL.prctl, [PR_SET_MM, PR_SET_MM_MAP, remote.put(map), PRCTL_MM_MAP_SIZE, 0]).value;
  let result = setMap();
  if (result < 0n && exeFd >= 0) {
    // Changing /proc/PID/exe needs CAP_CHECKPOINT_RESTORE (or CAP_SYS_ADMIN): keep the rest.
    map.writeInt32LE(-1, 100);
    result = setMap();
    if (result >= 0n) warnings.push(`/proc/${ctx.pid}/exe could not be set to ${state.exe?.path}`);
  }
  if (exeFd >= 0) remote.syscall(SYSCALL.close, [exeFd], 'close of the executable');
  if (result < 0n) {
    remote.syscall(SYSCALL.prctl, [PR_SET_MM, PR_SET_MM_MAP, remote.put(map), PRCTL_MM_MAP_SIZE, 0], 'prctl(PR_SET_MM_MAP) (brk, stack, arguments, auxv)');
  }
  // Without MCL_CURRENT, mlockall only sets def_flags: the mappings keep their own locks,
  // restored with them. Mappings the restore still makes (its scratch) get locked too.
  if (state.futureLocks) {
    const flags = MCL_FUTURE | (state.futureLocks === 'onfault' ? MCL_ONFAULT : 0);
    remote.syscall(SYSCALL.mlockall, [flags], `mlockall(MCL_FUTURE${state.futureLocks === 'onfault' ? ' | MCL_ONFAULT' : ''})`);
  }
  return warnings;
}

export const mmResource: CheckpointResource<MmState> = {
  name: 'mm',
  noteType: STASIS_NOTE.PROCESS,
  version: 1,
  capture: captureMm,
  restore: (ctx, state) => void restoreMm(ctx, state),
};
