/**
 * Entry point of the `stasis` command: dispatches to one module per subcommand.
 * Each subcommand module exports `run(argv): Promise<number>` returning the exit code.
 */
import { StasisError } from '../errors.js';

type Command = { summary: string; load: () => Promise<{ help: string; run(argv: string[]): Promise<number> }> };

const commands: Record<string, Command> = {
  core: { summary: 'write a live core dump of a running process (it keeps running)', load: () => import('./core.js') },
  dump: { summary: 'checkpoint a process into an image (killed afterwards unless --leave-running)', load: () => import('./dump.js') },
  restore: { summary: 'restart a process from an image, with the same PID and threads', load: () => import('./restore.js') },
  run: { summary: 'run a program under a supervisor that checkpoints it (on SIGSTOP, periodically, on request)', load: () => import('./run.js') },
  checkpoint: { summary: "ask a 'stasis run' supervisor for a checkpoint now", load: () => import('./checkpoint.js') },
  check: { summary: 'what this kernel supports; for a PID, whether each resource it holds can be checkpointed', load: () => import('./check.js') },
  inspect: { summary: 'show the threads, mappings and notes of a core image', load: () => import('./inspect.js') },
  demo: { summary: 'a self-contained demonstration on a bundled workload', load: () => import('./demo.js') },
};

export const usage = `usage: stasis COMMAND [ARGS...]

commands:
${Object.entries(commands).map(([name, c]) => `  ${name.padEnd(12)}${c.summary}`).join('\n')}

Run 'stasis COMMAND --help' for the options of one command.

exit codes: 0 success, 1 the operation failed (the message says why), 2 bad usage`;

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage + '\n');
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') {
    process.stdout.write('stasis 0.1.0\n');
    return 0;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`stasis: unknown command '${name}'\n${usage}\n`);
    return 2;
  }
  try {
    const module = await command.load();
    // Every command's --help, before its own parsing (and not past '--': those are the program's).
    const own = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
    if (own.includes('--help') || own.includes('-h')) {
      process.stdout.write(module.help + '\n');
      return 0;
    }
    return await module.run(rest);
  } catch (err) {
    return reportError(err);
  }
}

/** One line on stderr naming the cause; a stack only for bugs (errors that are not ours). */
export function reportError(err: unknown): number {
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`stasis: ${(err as Error).message}\n`);
    return 2;
  }
  if (err instanceof StasisError) {
    process.stderr.write(`stasis: ${err.message}\n`);
    return err.exitCode;
  }
  process.stderr.write(`stasis: internal error: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  return 1;
}
