/** `stasis run [--dir DIR] [--every SECONDS] [--keep N] -- CMD ARGS...` and `stasis run --resume DIR` */
import { parseArgs } from 'node:util';
import { supervise, resumeSupervised, type CheckpointEntry } from '../supervise.js';
import { usageError } from '../errors.js';
import { formatBytes } from './format.js';

export const help = `usage: stasis run [--dir DIR] [--every SECONDS] [--keep N] [--pin] [--quiet] -- CMD [ARGS...]
       stasis run --resume DIR [--every SECONDS] [--keep N] [--quiet]
                  [--ignore-cpu] [--ignore-changed-files]

Run CMD under a supervisor that checkpoints it into DIR (default ./stasis-run):
  - when the program asks: it stops itself with kill(getpid(), SIGSTOP) (in any
    language: os.kill(os.getpid(), signal.SIGSTOP) in Python); the checkpoint is
    taken while it is stopped and it is continued, so the call returns once the
    image is safely on disk;
  - every SECONDS with --every;
  - on request: 'stasis checkpoint DIR', or SIGUSR2 sent to the supervisor
    (its pid is in DIR/supervisor.pid; SIGUSR2 is therefore not forwarded).
Images are DIR/checkpoint-NNNNNN.img with DIR/manifest.json (sequence, time,
size, trigger), written atomically; --keep N keeps the newest N. A checkpoint
that fails is reported and leaves the program running and older images intact.

The program's stdin, stdout and stderr are the supervisor's; SIGINT, SIGTERM,
SIGHUP, SIGQUIT, SIGUSR1 and SIGWINCH are forwarded to it; the supervisor exits
with its status (128+N if it was killed by signal N).

--resume DIR restarts the newest image in DIR that restores (damaged ones are
skipped with a message) and supervises it again: a job killed with SIGKILL, or
whose machine rebooted, continues from its last checkpoint. On another machine,
--ignore-cpu and --ignore-changed-files work as for 'stasis restore'.

options:
  --dir DIR          where images go (default ./stasis-run)
  --every SECONDS    also checkpoint periodically
  --keep N           keep only the newest N images
  --pin              restrict the program to one CPU while it is frozen, to
                     shrink the skew between its threads' stop times
  --quiet            do not report each checkpoint on stderr
  -h, --help         this help

exit codes: the program's status; 1 if it could not be started or resumed; 2 bad usage`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      dir: { type: 'string' },
      every: { type: 'string' },
      keep: { type: 'string' },
      resume: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      pin: { type: 'boolean', default: false },
      'ignore-cpu': { type: 'boolean', default: false },
      'ignore-changed-files': { type: 'boolean', default: false },
    },
  });
  const every = values.every === undefined ? undefined : Number(values.every);
  if (every !== undefined && !(every > 0)) throw usageError(`--every takes a positive number of seconds, not '${values.every}'`);
  const keep = values.keep === undefined ? undefined : Number(values.keep);
  if (keep !== undefined && !(Number.isInteger(keep) && keep > 0)) throw usageError(`--keep takes a positive whole number, not '${values.keep}'`);
  const onCheckpoint = (entry: CheckpointEntry | null, error?: Error) => {
    if (error) process.stderr.write(`stasis run: checkpoint failed, the program goes on and older images are kept: ${error.message}\n`);
    else if (!values.quiet && entry) process.stderr.write(`stasis run: checkpoint ${entry.seq} (${entry.trigger}) ${entry.file}, ${formatBytes(entry.bytes)}\n`);
  };
  let supervisor;
  if (values.resume !== undefined) {
    if (positionals.length) throw usageError('--resume takes no command: the program comes from the image');
    supervisor = await resumeSupervised(values.resume, {
      every,
      keep,
      pin: values.pin,
      forwardSignals: true,
      onCheckpoint,
      onSkip: (entry, error) => process.stderr.write(`stasis run: skipping ${entry.file}: ${error.message}\n`),
      restore: { ignoreCpu: values['ignore-cpu'], ignoreChangedFiles: values['ignore-changed-files'] },
      onWarning: (message) => process.stderr.write(`stasis run: warning: ${message}\n`),
    });
    if (!values.quiet) process.stderr.write(`stasis run: resumed process ${supervisor.pid} from ${supervisor.dir}\n`);
  } else {
    if (positionals.length === 0) throw usageError(`run needs a command after --\n${help}`);
    if (values['ignore-cpu'] || values['ignore-changed-files']) throw usageError('--ignore-cpu and --ignore-changed-files go with --resume');
    supervisor = supervise(positionals, { dir: values.dir ?? 'stasis-run', every, keep, pin: values.pin, forwardSignals: true, onCheckpoint });
  }
  return supervisor.exited;
}
