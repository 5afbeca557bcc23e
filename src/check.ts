/**
 * What `stasis check PID` reports and `stasis dump` enforces: every resource the process
 * holds, each marked supported or not with the reason. Run before anything is frozen.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { Finding } from './resources/resource.js';
import { checkMappings } from './resources/mappings.js';
import { RESOURCES } from './resources/index.js';
import { listTasks, readStatus } from './proc/status.js';
import { StasisError } from './errors.js';
import { exitedOr } from './core.js';
import { faultPoint } from './fault.js';

function processFindings(pid: number): Finding[] {
  const findings: Finding[] = [];
  const status = readStatus(pid);
  if (status.tracerPid !== 0) {
    findings.push({ kind: 'process', what: `traced by pid ${status.tracerPid}`, supported: false, reason: 'only one tracer may attach; detach the debugger first' });
  }
  const children = listTasks(pid).flatMap((tid) => {
    try {
      return readFileSync(`/proc/${pid}/task/${tid}/children`, 'latin1').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  });
  for (const child of children) {
    findings.push({ kind: 'process', what: `child process ${child}`, supported: false, reason: 'processes with children cannot be checkpointed yet (only single processes)' });
  }
  for (const ns of ['pid', 'mnt', 'net', 'ipc', 'uts', 'user', 'time']) {
    try {
      if (readlinkSync(`/proc/${pid}/ns/${ns}`) !== readlinkSync(`/proc/self/ns/${ns}`)) {
        findings.push({ kind: 'process', what: `${ns} namespace differs from stasis's`, supported: false, reason: 'processes in other namespaces cannot be checkpointed yet' });
      }
    } catch {
      // namespace type not available on this kernel
    }
  }
  const seccomp = /^Seccomp:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
  if (seccomp && seccomp[1] !== '0') {
    findings.push({ kind: 'process', what: `seccomp mode ${seccomp[1]}`, supported: false, reason: 'seccomp filters cannot be restored yet' });
  }
  try {
    const sysvShm = readFileSync('/proc/sysvipc/shm', 'latin1').split('\n').slice(1).filter((l) => l.trim().split(/\s+/)[6] === String(pid));
    if (sysvShm.length) findings.push({ kind: 'process', what: 'System V shared memory segment created by this process', supported: false, reason: 'SysV IPC cannot be checkpointed yet' });
  } catch {
    // no SysV IPC support
  }
  return findings;
}

export function collectFindings(pid: number): Finding[] {
  try {
    readdirSync(`/proc/${pid}/task`);
  } catch {
    throw new StasisError('NO_SUCH_PROCESS', `no process with pid ${pid}`, { pid });
  }
  try {
    const findings = processFindings(pid);
    faultPoint('checks', pid);
    return [...findings, ...checkMappings(pid), ...RESOURCES.flatMap((r) => r.check?.(pid) ?? [])];
  } catch (err) {
    throw exitedOr(pid, err, 'the check of its resources');
  }
}

/** Throws UNSUPPORTED naming everything that cannot be checkpointed. */
export function refuseUnsupported(pid: number, findings: Finding[]): void {
  const unsupported = findings.filter((f) => !f.supported);
  if (unsupported.length === 0) return;
  const lines = unsupported.map((f) => `  ${f.what}: ${f.reason}`);
  const first = unsupported[0];
  throw new StasisError('UNSUPPORTED', `process ${pid} cannot be checkpointed (nothing was changed):\n${lines.join('\n')}`, {
    pid,
    fd: first.fd,
    mapping: first.mapping,
  });
}
