/**
 * Vector and floating-point state across a restore (test/targets/restore-xstate.c: a
 * thread holding patterns in ymm0-15, or zmm0-31 and k1-7 where the CPU has AVX-512, and
 * an AMX tile where it has AMX, plus MXCSR and the x87 control word, checks them itself),
 * and the CPU a checkpoint was made
 * on: an image from a CPU with fewer XSAVE components is re-laid for this one; an image
 * from a CPU with an instruction set this one lacks is refused, naming it, unless
 * --ignore-cpu. The other CPUs are simulated by editing the image's notes in place.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { assertNothingLeft, nowTicks, selfCheck, verdictSubtests, stasisCommand, processGone } from './helpers/restore.js';
import { rewriteStasisNote } from './helpers/elf.js';
import { STASIS_NOTE } from '../src/image/stasis-notes.js';
import { xcr0Of } from '../src/image/xstate.js';
import { describeThisCpu, type CpuState } from '../src/resources/cpu.js';
import type { ThreadRestartState } from '../src/resources/threads.js';

const fileStart = nowTicks();
const here = describeThisCpu();
const hasAvx512 = here.instructionSets.includes('avx512f');
const hasAmx = here.instructionSets.includes('amx_tile');
const ALL = [...(hasAvx512 ? ['zmm'] : []), 'ymm', 'mxcsr', 'x87'];

interface ThreadsNote {
  threads: ThreadRestartState[];
}

/** An XSAVE area as a CPU with only x87, SSE and AVX (xcr0 0x7) would have saved it: 832 bytes. */
function asAvxOnly(area: Buffer): Buffer {
  const out = Buffer.alloc(832);
  area.copy(out, 0, 0, 576); // legacy region and header; AVX sits at 576 on every CPU
  area.copy(out, 576, 576, 832);
  out.writeBigUInt64LE(0x7n, 464); // sw_reserved: xcr0
  out.writeBigUInt64LE(area.readBigUInt64LE(512) & 0x7n, 512); // xstate_bv
  return out;
}

test('restore-xstate: ymm (and zmm, opmasks, AMX tiles) registers, MXCSR and the x87 control word come back', async (t) => {
  // AMX: the tile data is in the image and must be put back, which needs the process's
  // permission (ARCH_REQ_XCOMP_PERM) and the thread's XSAVE buffer grown for tiles.
  const run = await selfCheck(t, 'restore-xstate', { spinning: 1, args: () => (hasAmx ? ['--amx'] : []) });
  t.diagnostic(`AVX-512 on this CPU: ${hasAvx512 ? 'yes' : 'no'}; AMX: ${hasAmx ? 'yes' : 'no'}`);
  await verdictSubtests(t, run, [...ALL, ...(hasAmx ? ['amx'] : [])]);
});

test('an image from a CPU with fewer XSAVE components (AVX only) is re-laid for this one', async (t) => {
  let xcr0 = 0n;
  const run = await selfCheck(t, 'restore-xstate', {
    spinning: 1,
    args: () => ['--no-avx512'],
    beforeRestore: async (image) => {
      rewriteStasisNote<ThreadsNote>(image, STASIS_NOTE.THREADS, 1, (note) => {
        xcr0 = note.threads[0].xstate ? xcr0Of(note.threads[0].xstate) : 0n;
        for (const thread of note.threads) if (thread.xstate) thread.xstate = asAvxOnly(thread.xstate);
        return note;
      });
      rewriteStasisNote<CpuState>(image, STASIS_NOTE.CPU, 1, (cpu) => ({
        ...cpu,
        instructionSets: cpu.instructionSets.filter((f) => !/^(avx512|amx)/.test(f)),
        xcr0: '0x7',
        xsaveBytes: 832,
      }));
    },
  });
  t.diagnostic(`this CPU's xcr0: 0x${xcr0.toString(16)}; the image says 0x7`);
  if (xcr0 === 0x7n) {
    t.skip('this CPU has only x87/SSE/AVX itself: the image needs no re-laying here');
    return;
  }
  await verdictSubtests(t, run, ['ymm', 'mxcsr', 'x87']);
});

test('an image from a CPU with an instruction set this one lacks is refused, naming it; --ignore-cpu restores it', async (t) => {
  const missing = ['sse4a', 'xop', 'fma4', 'tbm', 'avx512f', 'amx_tile', 'sha512', 'cmpccxadd'].find((f) => !here.instructionSets.includes(f));
  assert.ok(missing, 'some instruction set this CPU lacks');
  let refused = '';
  const run = await selfCheck(t, 'restore-xstate', {
    spinning: 1,
    restoreArgs: ['--ignore-cpu'],
    beforeRestore: async (image, pid) => {
      // The padding makes the note pages longer, so that every segment after it moves
      // (the restore checks each one's checksum at its new offset).
      rewriteStasisNote<CpuState>(image, STASIS_NOTE.CPU, 1, (cpu) => ({ ...cpu, model: 'CPU X', instructionSets: [...cpu.instructionSets, missing], padding: ' '.repeat(3 * 4096) }));
      const r = await stasisCommand(['restore', image], { scratch: path.dirname(image), timeoutMs: 30_000 });
      refused = r.stderr;
      assert.equal(r.code, 1, `refused: exit 1 (${r.stderr})`);
      assert.ok(processGone(pid), `nothing restored with pid ${pid}`);
    },
  });
  await t.test('the refusal names what is missing and the way around it', () => {
    assert.match(refused, new RegExp(`lacks ${missing}, which the checkpointed process may use`));
    assert.match(refused, /checkpointed on CPU X/);
    assert.match(refused, /--ignore-cpu/);
  });
  await t.test('--ignore-cpu restores it with a warning', () => {
    assert.match(run.restored?.stderr ?? '', new RegExp(`warning: .*lacks ${missing}.*restoring anyway`));
  });
  await verdictSubtests(t, run, ALL);
});

test('no process is left behind, stopped, traced or otherwise', (t) => assertNothingLeft(t, fileStart));
