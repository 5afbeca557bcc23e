/**
 * `stasis demo`: builds the bundled workload, starts it, takes a live core of it while it
 * keeps counting, shows gdb's backtraces from that core and the pause the workload itself
 * measured, then cleans up.
 */
import { parseArgs } from 'node:util';
import { mkdtempSync, rmSync, closeSync, createReadStream } from 'node:fs';
import { pipe2, O } from '../sys/fd.js';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { compileC } from '../build-c.js';
import { spawnProcess } from '../sys/spawn.js';
import { kill, SIG } from '../sys/process.js';
import { waitTask } from '../sys/ptrace.js';
import { coreDump } from '../core.js';
import { checkpoint } from '../dump.js';
import { restoreProcess } from '../restore.js';
import { formatBytes } from './format.js';

export const help = `usage: stasis demo [--keep]

Builds a small multi-threaded C workload (demo/counter.c, with gcc), starts it,
takes a live core dump of it with 'stasis core' while it keeps counting, shows
gdb's backtraces of all threads from the core and the pause the workload saw;
then checkpoints it ('stasis dump', which kills it), restores it with the same
PID and shows it counting on from where it was. Everything it starts is stopped
and removed at the end.

  --keep   keep the temporary directory with the workload and its core`;

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { keep: { type: 'boolean', default: false } } });
  const bold = (text: string) => (process.stdout.isTTY ? `\x1b[1m${text}\x1b[0m` : text);
  const say = (text: string) => process.stdout.write(`${bold('stasis demo:')} ${text}\n`);
  const dir = mkdtempSync(join(tmpdir(), 'stasis-demo-'));
  const exe = join(dir, 'counter');
  let pid = 0;
  let restoredPid = 0;
  try {
    say('building the workload (demo/counter.c) with gcc');
    compileC(join(repoRoot, 'demo', 'counter.c'), exe);
    // The workload writes into a pipe we copy to our stdout: its stdout then leads outside
    // it, so a restore re-attaches it to the restorer's own stdout (ours), wherever that goes.
    const [fromWorkload, toDemo] = pipe2(O.CLOEXEC);
    pid = spawnProcess(exe, [], { stdout: toDemo });
    closeSync(toDemo);
    createReadStream('', { fd: fromWorkload }).pipe(process.stdout, { end: false });
    await sleep(1200);

    say(`taking a live core of process ${pid} while it runs`);
    const core = coreDump(pid, { output: join(dir, `core.${pid}`) });
    await sleep(100);
    say(
      `wrote ${core.file}: ${core.threads} threads, ${core.mappings} mappings, ${formatBytes(core.storedBytes)} of memory; ` +
        `the process was stopped for ${core.pauseMs.toFixed(2)} ms of the ${core.totalMs.toFixed(0)} ms the dump took`,
    );
    await sleep(600);
    kill(pid, SIG.SIGUSR1);
    await sleep(400);

    say(`gdb ${exe} ${core.file} -ex 'thread apply all bt':`);
    const gdb = execFileSync('gdb', ['-batch', '-nx', '-ex', 'thread apply all bt', exe, core.file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    process.stdout.write(
      gdb
        .split('\n')
        .filter((line, i, all) => /^(Thread |#)/.test(line) && all.slice(0, i + 1).some((l) => l.startsWith('Thread ')))
        .map((line) => '    ' + line)
        .join('\n') + '\n',
    );
    say('the workload kept running through the dump; it only noticed the pause above.');

    const image = join(dir, 'counter.img');
    say(`checkpointing process ${pid} into ${image}; stasis dump kills it once the image is on disk`);
    const dumped = checkpoint(pid, { output: image });
    await sleep(100); // let what it printed before the dump through the pipe first
    say(`image written: ${formatBytes(dumped.storedBytes)} of memory, ${dumped.threads} threads; process ${pid} is gone:`);
    await sleep(1000);
    say(`(one second of silence: nothing is counting)`);
    say(`restoring it from the image, with the same PID ${pid} and thread ids`);
    const restored = restoreProcess(image);
    restoredPid = restored.pid;
    await sleep(1200);
    say(`process ${restored.pid} is back (its ${restored.threads} threads restored in ${restored.totalMs.toFixed(0)} ms) and counts on from where it was.`);
    kill(restored.pid, SIG.SIGUSR1);
    await sleep(300);
    say('the image is an ELF core too; gdb reads it: gdb ' + exe + ' ' + image);
    say('next: npx stasis check PID, npx stasis dump PID -o app.img, npx stasis restore app.img, npx stasis run --help');
    return 0;
  } finally {
    for (const child of [pid, restoredPid]) {
      if (child <= 0) continue;
      try {
        kill(child, SIG.SIGKILL);
      } catch {
        // already gone
      }
      try {
        waitTask(child, 0);
      } catch {
        // reaped already
      }
    }
    if (!values.keep) rmSync(dir, { recursive: true, force: true });
    else say(`kept ${dir}`);
  }
}
