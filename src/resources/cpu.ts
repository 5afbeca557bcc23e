/**
 * The CPU a checkpoint was made on, as far as its process can tell.
 *
 * A process chooses code paths by CPUID once, at start (glibc's ifuncs pick memcpy, strlen
 * and libm for AVX2 or AVX-512; JITs and numeric libraries do the same), and its threads
 * hold register state for every XSAVE component the kernel enabled (xcr0). Restored on a
 * CPU that lacks an instruction set it may have chosen, it would die of SIGILL at some
 * later, unrelated moment; so the restore refuses up front, naming what is missing, unless
 * told to go on (`--ignore-cpu`). A CPU with more is fine: each thread's XSAVE area is
 * re-laid for it (xstateForThisCpu, when the thread state is restored).
 *
 * One piece of kernel state goes with it: the permission to use the dynamically enabled
 * XSAVE features (AMX tile data), which a process asks for with
 * arch_prctl(ARCH_REQ_XCOMP_PERM) and keeps for all its threads. Without it a thread's
 * XSAVE area holding tile state is refused (EINVAL), so it is granted again before the
 * threads get their state.
 *
 * Dump: vendor, model name and flags from /proc/cpuinfo (the first CPU: the kernel shows
 * the flags common to all), xcr0 and the XSAVE size from the main thread's XSAVE area, the
 * permitted features by an injected arch_prctl(ARCH_GET_XCOMP_PERM).
 * Restore: verify() before anything is created; the permission in the new process.
 */
import { readFileSync } from 'node:fs';
import { STASIS_NOTE } from '../image/stasis-notes.js';
import { SYSCALL } from '../ptrace/remote.js';
import { xcr0Of, DYNAMIC_COMPONENTS } from '../image/xstate.js';
import { StasisError } from '../errors.js';
import type { CheckpointResource, DumpContext, RestoreContext, VerifyOptions } from './resource.js';

export interface CpuState {
  vendor: string;
  model: string;
  /** The /proc/cpuinfo flags that name instruction sets user code can use. */
  instructionSets: string[];
  /** The OS-enabled XSAVE features, hex (0 when the CPU has no XSAVE). */
  xcr0: string;
  /** Size of a thread's XSAVE area as ptrace gives it on that CPU (0 without XSAVE). */
  xsaveBytes: number;
  /** XSAVE features the process may use (ARCH_GET_XCOMP_PERM), hex; AMX tile data only once asked for. */
  permittedFeatures: string;
}

const ARCH_GET_XCOMP_PERM = 0x1022;
const ARCH_REQ_XCOMP_PERM = 0x1023;

/**
 * cpuinfo flags for instructions available in user mode, which programs test with CPUID
 * to choose an implementation. Flags about the platform (hypervisor, constant_tsc), kernel
 * features (pti, ibrs) or supervisor instructions do not matter to a restored process.
 */
const USER_INSTRUCTION_SET =
  /^(sse\w*|ssse3|pni|popcnt|abm|bmi[12]|adx|movbe|aes|pclmulqdq|vaes|vpclmulqdq|gfni|sha_ni|sha512|sm3|sm4|avx\w*|amx\w*|apx\w*|fma4?|f16c|xop|tbm|rdrand|rdseed|rdpid|erms|fsrm|fzrm|fsrs|fsrc|rtm|hle|clflushopt|clwb|cx16|lahf_lm|movdiri|movdir64b|serialize|tsxldtrk|xsave|xsaveopt|xsavec|xgetbv1|fsgsbase|3dnowprefetch|waitpkg|cldemote|cmpccxadd|pku|ospke)$/;

/** This machine's CPU from /proc/cpuinfo (xcr0 and XSAVE size need a thread's XSAVE area). */
export function describeThisCpu(): Pick<CpuState, 'vendor' | 'model' | 'instructionSets'> {
  const first = readFileSync('/proc/cpuinfo', 'latin1').split('\n\n')[0];
  const field = (name: string) => first.match(new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm'))?.[1].trim() ?? '';
  return {
    vendor: field('vendor_id'),
    model: field('model name'),
    instructionSets: field('flags').split(/\s+/).filter((f) => USER_INSTRUCTION_SET.test(f)).sort(),
  };
}

function capture(ctx: DumpContext): CpuState {
  const xstate = ctx.threads[0]?.xstate ?? null;
  ctx.remote.resetScratch();
  const permission = ctx.remote.reserve(8);
  // EINVAL on a kernel or CPU without dynamic features: nothing to ask for then.
  const got = ctx.remote.syscallRaw(SYSCALL.arch_prctl, [ARCH_GET_XCOMP_PERM, permission]);
  const permitted = got.value === 0n ? ctx.remote.readMemory(permission, 8).readBigUInt64LE(0) : 0n;
  return { ...describeThisCpu(), xcr0: hex(xstate ? xcr0Of(xstate) : 0n), xsaveBytes: xstate?.length ?? 0, permittedFeatures: hex(permitted) };
}

function restore(ctx: RestoreContext, state: CpuState): void {
  const permitted = BigInt(state.permittedFeatures);
  for (const feature of DYNAMIC_COMPONENTS) {
    if ((permitted & (1n << BigInt(feature.bit))) === 0n) continue;
    ctx.remote.syscall(SYSCALL.arch_prctl, [ARCH_REQ_XCOMP_PERM, feature.bit], `arch_prctl(ARCH_REQ_XCOMP_PERM) for ${feature.name}`);
  }
}

const hex = (n: bigint) => `0x${n.toString(16)}`;

/**
 * Refuses (or, told to ignore it, warns) when this CPU lacks an instruction set the
 * checkpointed one had. Returns the warnings.
 */
export function verifyCpu(saved: CpuState, options: VerifyOptions): string[] {
  const here = describeThisCpu();
  const missing = saved.instructionSets.filter((f) => !here.instructionSets.includes(f));
  if (missing.length === 0) return [];
  const what =
    `this CPU (${here.model || here.vendor}) lacks ${missing.join(', ')}, which the checkpointed process may use: ` +
    `it was checkpointed on ${saved.model || saved.vendor}, and programs choose their code for the CPU they start on`;
  if (!options.ignoreCpu) throw new StasisError('CPU_MISMATCH', `${what}; --ignore-cpu restores it anyway`);
  return [`${what} (restoring anyway: --ignore-cpu)`];
}

export const cpuResource: CheckpointResource<CpuState> = {
  name: 'cpu',
  noteType: STASIS_NOTE.CPU,
  version: 1,
  capture,
  verify: verifyCpu,
  restore,
};
