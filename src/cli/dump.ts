/** `stasis dump PID -o FILE [--leave-running] [--json]` */
import { parseArgs } from 'node:util';
import { checkpoint } from '../dump.js';
import { usageError } from '../errors.js';
import { ProgressBar } from './progress.js';
import { parsePid, formatBytes } from './format.js';

export const help = `usage: stasis dump PID -o FILE [--leave-running] [--pin] [--json]

Checkpoint process PID into FILE: an ELF core that gdb reads, plus the notes
'stasis restore FILE' needs to bring the process back with the same PID,
threads, memory, registers, files, signals and timers.

Before anything is touched, every resource the process holds is checked (see
'stasis check PID'); if one cannot be restored faithfully (a socket, an epoll
instance, a child process...) the dump is refused, naming it, and the process
is left alone. The image is written under a temporary name, synced, and
renamed into place; only then is the process killed.

options:
  -o, --output FILE   the image to write (required)
  --leave-running     let the process continue after the dump instead of
                      killing it
  --pin               restrict the process to one CPU while it is frozen
  --json              print a summary as JSON
  -h, --help          this help

exit codes: 0 image written; 1 refused or failed (the process is left running
as it was, and no file is written); 2 bad usage`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      'leave-running': { type: 'boolean', default: false },
      pin: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1) throw usageError(`dump takes one PID\n${help}`);
  if (!values.output) throw usageError('dump needs -o FILE: where to write the image');
  const pid = parsePid(positionals[0]);
  const bar = new ProgressBar(`dump ${pid}`);
  const result = checkpoint(pid, { output: values.output, leaveRunning: values['leave-running'], pin: values.pin, onProgress: bar.update });
  bar.done();
  if (values.json) process.stdout.write(JSON.stringify(result) + '\n');
  else {
    process.stdout.write(
      `${result.file}: process ${pid}, ${result.threads} threads, ${result.mappings} mappings, ${formatBytes(result.storedBytes)} of memory; ` +
        `${result.leftRunning ? 'left running' : 'killed'} after ${result.totalMs.toFixed(0)} ms\n`,
    );
  }
  return 0;
}
