/** `stasis core PID [-o FILE] [--no-snapshot] [--json]` */
import { parseArgs } from 'node:util';
import { coreDump } from '../core.js';
import { usageError } from '../errors.js';
import { ProgressBar } from './progress.js';
import { parsePid, formatBytes } from './format.js';

export const help = `usage: stasis core PID [-o FILE] [--no-snapshot] [--json]

Write a core dump of the running process PID that gdb can read
(gdb EXECUTABLE FILE). The process keeps running: it is stopped only while its
threads' registers are read and a copy-on-write snapshot of its memory is
forked (milliseconds), then the memory is written from the snapshot.

options:
  -o, --output FILE  where to write the core (default: core.PID); the file
                     appears only once it is complete
  --no-snapshot      keep the process stopped while its memory is written,
                     as gdb's gcore does (for comparison)
  --json             print a summary as JSON: file, bytes, storedBytes,
                     threads, mappings, pauseMs, totalMs, snapshot
  -h, --help         this help

What the snapshot cannot show: the process's getrusage(RUSAGE_CHILDREN) grows by
the snapshot's (tiny) usage, and one PID is used for a moment. Shared memory,
MADV_DONTFORK and MADV_WIPEONFORK regions, which a fork does not copy as they
are, are copied while the process is stopped.

exit codes: 0 written; 1 failed (no such process, zombie, already traced,
permission denied, process exited, output not writable, disk full; the
process is left running as it was and no file is left behind); 2 bad usage`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      'no-snapshot': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1) throw usageError(`core takes one PID\n${help}`);
  const pid = parsePid(positionals[0]);
  const bar = new ProgressBar(`core ${pid}`);
  const result = coreDump(pid, { output: values.output, snapshot: !values['no-snapshot'], onProgress: bar.update });
  bar.done();
  if (values.json) {
    process.stdout.write(JSON.stringify(result) + '\n');
  } else {
    process.stdout.write(
      `${result.file}: ${result.threads} threads, ${result.mappings} mappings, ${formatBytes(result.storedBytes)} stored` +
        ` (${formatBytes(result.bytes)} apparent); process stopped ${result.pauseMs.toFixed(1)} ms, total ${result.totalMs.toFixed(0)} ms\n`,
    );
  }
  return 0;
}
