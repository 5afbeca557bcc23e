/** `stasis restore FILE [-d|--detach] [--pidfile PATH] [--ignore-changed-files] [--ignore-cpu] [--json]` */
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { restoreProcess } from '../restore.js';
import { superviseRestored } from '../foreground.js';
import { usageError } from '../errors.js';
import { ProgressBar } from './progress.js';

export const help = `usage: stasis restore FILE [-d|--detach] [--pidfile PATH] [--ignore-changed-files]
                     [--ignore-cpu] [--json]

Bring back the process checkpointed in FILE by 'stasis dump', with its PID and
thread ids, memory, registers, open files, signal state and timers. The PID
(and every TID) must be free. Standard input, output and error that pointed
outside the process (a terminal, a pipe to a shell) are re-attached to this
command's own, so a restore in a terminal continues there like a shell job.

In the foreground (the default) stasis waits for the process, forwards the
signals it receives (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2,
SIGWINCH) to it, and exits with its status (128+N if it was killed by signal N).

options:
  -d, --detach              print the PID and return, leaving the process running
  --pidfile PATH            write the PID to PATH once the process runs
  --ignore-changed-files    restore even if files the image depends on (mapped
                            libraries, open files) changed since the dump
  --ignore-cpu              restore even on a CPU that lacks instruction sets
                            (AVX-512, AMX...) the checkpointed one had; the
                            program may then die of SIGILL if it uses them
  --json                    with --detach, print {pid, threads, warnings, totalMs}
  -h, --help                this help

exit codes: foreground: the process's own status; --detach: 0 restored;
1 restore failed (nothing is left running; the message names the step and the
resource); 2 bad usage`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      detach: { type: 'boolean', short: 'd', default: false },
      pidfile: { type: 'string' },
      'ignore-changed-files': { type: 'boolean', default: false },
      'ignore-cpu': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1) throw usageError(`restore takes one image file\n${help}`);
  const bar = new ProgressBar('restore');
  const restored = restoreProcess(positionals[0], { ignoreChangedFiles: values['ignore-changed-files'], ignoreCpu: values['ignore-cpu'], onProgress: bar.update });
  bar.done();
  for (const warning of restored.warnings) process.stderr.write(`stasis: warning: ${warning}\n`);
  if (values.pidfile) writeFileSync(values.pidfile, `${restored.pid}\n`);
  if (restored.stopped) process.stderr.write(`stasis: process ${restored.pid} was stopped when it was dumped and is stopped again; kill -CONT ${restored.pid} continues it\n`);
  if (values.detach) {
    process.stdout.write(values.json ? JSON.stringify(restored) + '\n' : `${restored.pid}\n`);
    return 0;
  }
  return superviseRestored(restored.pid);
}
