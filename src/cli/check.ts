/** `stasis check [PID] [--json]` */
import { parseArgs } from 'node:util';
import { collectFindings } from '../check.js';
import { probeKernelFeatures } from '../kernel-features.js';
import { usageError } from '../errors.js';
import { parsePid } from './format.js';

export const help = `usage: stasis check [PID] [--json]

Without a PID: what this kernel offers stasis (clone3 set_tid, rseq, the vDSO
layout, PR_SET_MM_MAP, ...) and what each means for you.

With a PID: every resource the process holds (each file descriptor with its
type and target, each mapping, children, namespaces, seccomp, a tracer) and
whether 'stasis dump' can checkpoint it, with the reason when not. Nothing is
stopped or changed.

exit codes: 0 everything can be checkpointed (or, without a PID, the probe ran);
1 something cannot (listed) or the process does not exist; 2 bad usage`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { json: { type: 'boolean', default: false } },
  });
  if (positionals.length > 1) throw usageError(`check takes at most one PID\n${help}`);
  if (positionals.length === 0) {
    const features = probeKernelFeatures();
    if (values.json) process.stdout.write(JSON.stringify(features) + '\n');
    else for (const f of features) process.stdout.write(`${f.available ? 'yes' : 'no '}  ${f.name}: ${f.detail}\n       ${f.meaning}\n`);
    return 0;
  }
  const pid = parsePid(positionals[0]);
  const findings = collectFindings(pid);
  const unsupported = findings.filter((f) => !f.supported);
  if (values.json) {
    process.stdout.write(JSON.stringify({ pid, checkpointable: unsupported.length === 0, findings }) + '\n');
  } else {
    for (const f of findings) process.stdout.write(`${f.supported ? 'ok  ' : 'NO  '} ${f.kind.padEnd(8)} ${f.what}${f.reason ? `  (${f.reason})` : ''}\n`);
    process.stdout.write(unsupported.length === 0 ? `process ${pid} can be checkpointed\n` : `process ${pid} cannot be checkpointed: ${unsupported.length} unsupported resource(s) above\n`);
  }
  return unsupported.length === 0 ? 0 : 1;
}
