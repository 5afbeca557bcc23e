/**
 * `stasis check` without a PID: what this kernel and CPU offer, probed (a stub process is
 * started, traced and killed for the ptrace probes), each with what it means; the CPU line
 * names the model and the instruction sets an image will record.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { runStasis, describe as describeRun, leftovers } from './helpers/targets.js';

test('stasis check: each kernel feature and the CPU, with what it means', async () => {
  const r = await runStasis(['check']);
  assert.equal(r.code, 0, describeRun(r));
  for (const name of ['clone3 set_tid', 'PTRACE_GET_RSEQ_CONFIGURATION', 'PR_SET_MM_MAP', 'vDSO layout', 'PAGEMAP_SCAN', 'userfaultfd', 'CPU']) {
    assert.match(r.stdout, new RegExp(`^(yes|no) +${name}: .+\\n {3,}\\S`, 'm'), `a line for ${name}, then what it means`);
  }
  // This machine can restore: the test suite restores processes.
  assert.match(r.stdout, /^yes +clone3 set_tid/m);
  const model = fs.readFileSync('/proc/cpuinfo', 'latin1').match(/^model name\s*:\s*(.*)$/m)?.[1].trim();
  if (model) assert.ok(r.stdout.includes(`CPU: ${model}`), `the CPU line names ${model}`);

  const json = await runStasis(['check', '--json']);
  assert.equal(json.code, 0, describeRun(json));
  const features = JSON.parse(json.stdout) as Array<{ name: string; available: boolean; detail: string; meaning: string }>;
  const cpu = features.find((f) => f.name === 'CPU');
  assert.ok(cpu && cpu.available && /instruction sets/.test(cpu.meaning), JSON.stringify(cpu));
  assert.deepEqual(leftovers(), [], 'the probe leaves no process behind');
});
