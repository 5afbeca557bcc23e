/**
 * What this kernel offers stasis, probed rather than assumed, and what each answer means
 * for the user (`stasis check` without a PID).
 */
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { readMaps } from './proc/maps.js';
import { describeThisCpu } from './resources/cpu.js';
import { startStub } from './ptrace/stub.js';
import { getRseqConfiguration } from './sys/ptrace.js';

export interface KernelFeature {
  name: string;
  available: boolean;
  detail: string;
  /** What it means for checkpoint/restart when absent (or present). */
  meaning: string;
}

function kernelVersion(): [number, number] {
  const [major, minor] = release().split('.').map((n) => parseInt(n, 10));
  return [major, minor];
}

function atLeast(major: number, minor: number): boolean {
  const [ma, mi] = kernelVersion();
  return ma > major || (ma === major && mi >= minor);
}

function effectiveCapabilities(): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)/m.exec(readFileSync('/proc/self/status', 'latin1'));
  return m ? BigInt('0x' + m[1]) : 0n;
}

const CAP_SYS_ADMIN = 21n;
const CAP_CHECKPOINT_RESTORE = 40n;

export function probeKernelFeatures(): KernelFeature[] {
  const caps = effectiveCapabilities();
  const hasCap = (bit: bigint) => (caps & (1n << bit)) !== 0n;
  const features: KernelFeature[] = [];
  const checkpointCap = hasCap(CAP_CHECKPOINT_RESTORE) || hasCap(CAP_SYS_ADMIN);
  features.push({
    name: 'clone3 set_tid',
    available: atLeast(5, 5) && checkpointCap,
    detail: `kernel ${release()}, ${checkpointCap ? 'with' : 'without'} CAP_CHECKPOINT_RESTORE`,
    meaning: 'restored processes get their old PID and TIDs (glibc caches TIDs: without this, restore is impossible)',
  });
  let rseq = 'not probed';
  let rseqOk = false;
  try {
    const stub = startStub();
    try {
      const conf = getRseqConfiguration(stub.pid);
      rseqOk = true;
      rseq = conf.pointer ? `glibc registers rseq (${conf.size} bytes, signature 0x${conf.signature.toString(16)})` : 'no rseq registered by glibc';
    } finally {
      stub.destroy();
    }
  } catch (err) {
    rseq = (err as Error).message;
  }
  features.push({ name: 'PTRACE_GET_RSEQ_CONFIGURATION', available: rseqOk, detail: rseq, meaning: 'rseq registrations are saved and restored per thread' });
  features.push({
    name: 'PR_SET_MM_MAP',
    available: atLeast(3, 18),
    detail: checkpointCap ? '/proc/PID/exe can be restored too' : '/proc/PID/exe cannot be restored (needs CAP_CHECKPOINT_RESTORE)',
    meaning: 'brk, stack, argument and environment addresses and the auxv are restored in one call',
  });
  const specials = readMaps(process.pid).filter((m) => m.path === '[vdso]' || m.path.startsWith('[vvar'));
  features.push({
    name: 'vDSO layout',
    available: specials.some((m) => m.path === '[vdso]'),
    detail: specials.map((m) => `${m.path} ${(m.end - m.start) / 4096} pages`).join(', '),
    meaning: 'images restore only on kernels with the same vDSO layout (it is moved to its old address)',
  });
  features.push({ name: 'PAGEMAP_SCAN', available: atLeast(6, 7), detail: 'ioctl on /proc/PID/pagemap', meaning: 'faster scans of which pages exist (stasis reads pagemap today)' });
  features.push({
    name: 'userfaultfd',
    available: existsSync('/proc/sys/vm/unprivileged_userfaultfd') || existsSync('/dev/userfaultfd'),
    detail: 'page faults handled in user space',
    meaning: 'lazy restore of memory (not used yet)',
  });
  const cpu = describeThisCpu();
  features.push({
    name: 'CPU',
    available: true,
    detail: `${cpu.model || cpu.vendor}: ${cpu.instructionSets.filter((f) => /^(avx|amx|sha|aes|bmi)/.test(f)).join(' ') || 'no AVX'}`,
    meaning: `images record these ${cpu.instructionSets.length} instruction sets; a restore on a CPU lacking any of them is refused (--ignore-cpu)`,
  });
  features.push({ name: 'time namespaces', available: existsSync('/proc/self/ns/time'), detail: '/proc/self/ns/time', meaning: 'CLOCK_MONOTONIC could be kept continuous across hosts (not used yet)' });
  return features;
}
