/**
 * The progress bar of `stasis core`, `dump` and `restore`: drawn on stderr when it is a
 * terminal and the work has taken longer than the delay (1 s; STASIS_PROGRESS_DELAY_MS=0
 * here, so that any dump shows it), erased before the summary; never drawn when stderr is
 * not a terminal, nor for work shorter than the delay. The terminal is a pseudo-terminal
 * made by python3's pty module.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { buildTarget, run, stasisBin } from './helpers/targets.js';
import { gone, killOwned, own, scratchDir, startDetached, waitUntilGone } from './helpers/run.js';

const LIB = buildTarget('run-lib');

/** Runs `node bin/stasis.js ARGS` with its stdout and stderr on a new pseudo-terminal; returns what it printed there. */
async function onTerminal(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; text: string }> {
  const script = [
    'import os, pty, sys',
    'pid, fd = pty.fork()',
    'if pid == 0:',
    // the session leader runs stasis as a job of its own, as a shell does: a process it
    // restores must not get the SIGHUP the terminal's foreground group gets when it closes
    '    job = os.fork()',
    '    if job == 0:',
    '        os.setpgid(0, 0)',
    '        os.execvp(sys.argv[1], sys.argv[1:])',
    '    _, status = os.waitpid(job, 0)',
    '    os._exit(os.waitstatus_to_exitcode(status))',
    'out = b""',
    'while True:',
    '    try:',
    '        data = os.read(fd, 65536)',
    '    except OSError:',
    '        break',
    '    if not data:',
    '        break',
    '    out += data',
    '_, status = os.waitpid(pid, 0)',
    'sys.stdout.buffer.write(out)',
    'sys.exit(os.waitstatus_to_exitcode(status))',
  ].join('\n');
  const r = await run('python3', ['-c', script, process.execPath, stasisBin, ...args], { timeoutMs: 60_000, env: { ...process.env, ...env } });
  return { code: r.code, text: r.stdout };
}

/** The bars drawn: "LABEL [###   ] DONE/TOTAL MiB" after a carriage return. */
function bars(text: string, label: string): Array<{ done: number; total: number }> {
  const re = new RegExp(`\\r${label} \\[[# ]{30}\\] (\\d+)/(\\d+) MiB`, 'g');
  return [...text.matchAll(re)].map((m) => ({ done: Number(m[1]), total: Number(m[2]) }));
}

test('core, dump and restore draw a progress bar on a terminal, and erase it before the summary', { timeout: 120_000 }, async (t) => {
  const dir = scratchDir(t, 'stasis-progress-');
  const target = await startDetached(t, LIB, ['--mib', '256', '--tick-ms', '100'], path.join(dir, 'out'));
  await target.waitForOutput(/^ready \d+$/m, 60_000);
  const now = { STASIS_PROGRESS_DELAY_MS: '0' };

  const core = await onTerminal(['core', String(target.pid), '-o', path.join(dir, 'live.core')], now);
  assert.equal(core.code, 0, core.text);
  const coreBars = bars(core.text, `core ${target.pid}`);
  assert.ok(coreBars.length > 0, `a bar for the core: ${JSON.stringify(core.text.slice(0, 300))}`);
  assert.ok(coreBars.every((b) => b.done <= b.total && b.total >= 256), `the bars count up to the total: ${JSON.stringify(coreBars)}`);
  assert.match(core.text, /\r\x1b\[K[^\r]*live\.core: 1 threads/, 'the bar is erased, then the summary');

  const image = path.join(dir, 'app.img');
  const dump = await onTerminal(['dump', String(target.pid), '-o', image], now);
  assert.equal(dump.code, 0, dump.text);
  assert.ok(bars(dump.text, `dump ${target.pid}`).length > 0, `a bar for the dump: ${JSON.stringify(dump.text.slice(0, 300))}`);
  assert.ok(await waitUntilGone(target.pid), 'the dumped process is gone');

  const restore = await onTerminal(['restore', image, '--detach'], now);
  const restored = own(target.pid);
  t.after(async () => {
    killOwned(restored);
    await waitUntilGone(target.pid);
  });
  assert.equal(restore.code, 0, restore.text);
  assert.ok(bars(restore.text, 'restore').length > 0, `a bar for the restore: ${JSON.stringify(restore.text.slice(0, 300))}`);
  assert.match(restore.text, new RegExp(`\\r\\x1b\\[K${target.pid}\\s*$`), 'the bar is erased, then the PID');
  assert.ok(!gone(target.pid), 'the restored process runs');
});

test('no bar when stderr is not a terminal, nor for a dump shorter than the delay', { timeout: 60_000 }, async (t) => {
  const dir = scratchDir(t, 'stasis-progress-');
  const target = await startDetached(t, LIB, ['--tick-ms', '100'], path.join(dir, 'out'));
  await target.waitForOutput(/^ready \d+$/m);

  const piped = await run(process.execPath, [stasisBin, 'core', String(target.pid), '-o', path.join(dir, 'piped.core')], { env: { ...process.env, STASIS_PROGRESS_DELAY_MS: '0' } });
  assert.equal(piped.code, 0, piped.stderr);
  assert.equal(piped.stderr, '', 'nothing on a stderr that is not a terminal');

  // A small process is dumped in well under the default second.
  const quick = await onTerminal(['core', String(target.pid), '-o', path.join(dir, 'quick.core')]);
  assert.equal(quick.code, 0, quick.text);
  // (the terminal turns each \n into \r\n: a bar is a \r on its own)
  assert.doesNotMatch(quick.text, /\r(?!\n)/, `no bar: ${JSON.stringify(quick.text)}`);
});
