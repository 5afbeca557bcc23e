/** Compiling the small C programs stasis ships (the demo workload) with the machine's gcc. */
import { execFileSync } from 'node:child_process';
import { StasisError } from './errors.js';

export function compileC(source: string, output: string, flags: string[] = []): void {
  try {
    execFileSync('gcc', ['-g', '-O0', '-pthread', ...flags, '-o', output, source], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new StasisError('UNSUPPORTED', missing ? 'gcc is needed to build the demo workload; install it (apt-get install gcc)' : `gcc failed on ${source}:\n${stderr}`, { path: source });
  }
}
