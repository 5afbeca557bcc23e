/** `stasis checkpoint DIR`: ask the supervisor of a `stasis run` for a checkpoint now. */
import { parseArgs } from 'node:util';
import { requestCheckpoint } from '../supervise.js';
import { usageError } from '../errors.js';
import { formatBytes } from './format.js';

export const help = `usage: stasis checkpoint DIR [--json]

Ask the supervisor of 'stasis run --dir DIR' to checkpoint its program now (it
sends SIGUSR2 to the pid in DIR/supervisor.pid) and wait until the image is in
the manifest. The program keeps running.

exit codes: 0 checkpoint taken; 1 no supervisor, or it failed; 2 bad usage`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { json: { type: 'boolean', default: false } },
  });
  if (positionals.length !== 1) throw usageError(`checkpoint takes one directory\n${help}`);
  const entry = await requestCheckpoint(positionals[0]);
  process.stdout.write(values.json ? JSON.stringify(entry) + '\n' : `checkpoint ${entry.seq}: ${entry.file}, ${formatBytes(entry.bytes)}\n`);
  return 0;
}
