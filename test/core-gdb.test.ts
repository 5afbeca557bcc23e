/**
 * gdb on a core made by `stasis core` shows what gdb attached to the live process showed.
 *
 * For each target (single, threads, avx): attach gdb to the live process and run a list
 * of commands, make a core of the same process, run the same commands on EXE + core, and
 * compare thread by thread (keyed by LWP): `info threads`, `thread apply all bt` and
 * `bt full`, registers of every thread that is not spinning, variables in every storage
 * class (global, heap through a pointer, thread-local per thread, stack locals through
 * `frame function` / `frame apply`), and `p $ymm0` / `$ymm15` for the AVX target. The
 * values are also checked against what the C source says they are, so that a harness
 * bug that makes both sides equally wrong cannot pass.
 *
 * Then the notes of the core are compared with the kernel's own core of the same program
 * (types, order, sizes); the XSTATE note must be the kernel's, or as long as gcore's where
 * the kernel's is too short for gdb.
 *
 * STASIS_TEST_CORE_WITH=gcore makes the cores with gdb's gcore instead (to check this
 * harness); the kernel-order comparison is skipped then, since gcore orders notes its own way.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  assertRunningUntraced,
  coreTool,
  describe as describeRun,
  makeCore,
  run,
  sourceLines,
  startTarget,
  leftovers,
  waitFor,
  taskIds,
  tempDir,
  waitSettled,
  type Target,
} from './helpers/targets.js';
import {
  byThread,
  gdbCore,
  gdbLive,
  infoThreadsLwps,
  normaliseBacktrace,
  parseBacktrace,
  parseRegisters,
  printedValue,
  sideBySide,
  type GdbOutput,
} from './helpers/gdb.js';
import { kernelCore, noteListing, readNotes, readSegments, type Note } from './helpers/elf.js';

/** Registers that do not change while a thread sits in a syscall or a `jmp .` loop. */
const STABLE_REGISTERS = ['rip', 'rsp', 'rbp', 'rbx', 'r12', 'r13', 'r14', 'r15', 'fs_base', 'gs_base'];

const COMMON = [
  'info threads',
  'thread apply all bt',
  'thread apply all bt full',
  `thread apply all info registers ${STABLE_REGISTERS.join(' ')}`,
];

interface Views {
  target: Target;
  live: GdbOutput;
  core: GdbOutput;
  coreFile: string;
  /** section of command `cmd` in the live / core output */
  liveOf(cmd: string): string;
  coreOf(cmd: string): string;
}

interface Spec {
  name: string;
  /** threads that never block (waitSettled) */
  spinning: number;
  /** functions whose frame-0 pc moves between two looks (a spin loop in C) */
  movingFuncs: string[];
  /** lines of the source where such a function may be caught */
  movingLines: number[];
  commands: string[];
  /** what the program says the values are, checked on one view (live or core) */
  expect(t: TestContext, v: Views, side: 'live' | 'core'): Promise<void> | void;
}

/** Starts the target, looks at it live with gdb, makes a core, looks at the core. */
async function views(t: TestContext, spec: Spec): Promise<Views> {
  const commands = [...COMMON, ...spec.commands];
  const target = await startTarget(t, spec.name);
  await waitSettled(target.pid, { spinning: spec.spinning });
  const live = await gdbLive(target.pid, commands);
  assertRunningUntraced(target.pid, `${spec.name} after gdb detached`);
  await waitSettled(target.pid, { spinning: spec.spinning });

  const dir = tempDir(t);
  const coreFile = path.join(dir, `${spec.name}.core`);
  const made = await makeCore(target.pid, coreFile);
  assert.equal(made.code, 0, `${made.tool} core failed: ${describeRun(made)}`);
  assert.ok(fs.existsSync(coreFile), `no core at ${coreFile}`);
  assertRunningUntraced(target.pid, `${spec.name} after the core dump`);
  if (made.tool === 'stasis') await checkJson(made.json, coreFile, target.pid);

  const core = await gdbCore(target.exe, coreFile, commands);
  const section = (out: GdbOutput) => (cmd: string) => {
    const i = commands.indexOf(cmd);
    assert.ok(i >= 0, `no command ${cmd}`);
    return out.sections[i];
  };
  return { target, live, core, coreFile, liveOf: section(live), coreOf: section(core) };
}

/** What `stasis core --json` printed agrees with the file and the process. */
async function checkJson(json: import('./helpers/targets.js').CoreJson | undefined, file: string, pid: number): Promise<void> {
  assert.ok(json, 'stasis core --json printed nothing');
  for (const k of ['file', 'bytes', 'threads', 'mappings', 'pauseMs', 'totalMs', 'snapshot'] as const) {
    assert.ok(k in json, `--json output lacks "${k}": ${JSON.stringify(json)}`);
  }
  assert.equal(path.resolve(json.file), path.resolve(file), 'json.file is the output path');
  assert.equal(json.bytes, fs.statSync(file).size, 'json.bytes is the size of the file');
  assert.equal(json.threads, taskIds(pid).length, 'json.threads is the number of threads');
  const loads = (await readSegments(file)).filter((s) => s.type === 'LOAD').length;
  assert.equal(json.mappings, loads, 'json.mappings is the number of PT_LOAD segments');
  assert.equal(json.snapshot, true, 'a snapshot is the default');
  assert.ok(json.pauseMs >= 0 && json.totalMs >= json.pauseMs, `pauseMs ${json.pauseMs} <= totalMs ${json.totalMs}`);
}

/** The comparisons every target gets. */
async function compareCommon(t: TestContext, spec: Spec, v: Views): Promise<void> {
  const liveThreads = byThread(v.liveOf('thread apply all bt'));
  const coreThreads = byThread(v.coreOf('thread apply all bt'));
  const moving = new Set<number>();
  for (const [lwp, body] of liveThreads) {
    const f0 = parseBacktrace(body)[0];
    if (f0 && spec.movingFuncs.includes(f0.func)) moving.add(lwp);
  }

  await t.test('info threads: same threads (count and LWP ids)', () => {
    const live = infoThreadsLwps(v.liveOf('info threads'));
    const core = infoThreadsLwps(v.coreOf('info threads'));
    assert.deepEqual(core, live, sideBySide(v.liveOf('info threads'), v.coreOf('info threads')));
    assert.deepEqual(live, taskIds(v.target.pid), 'gdb sees every task of the process');
  });

  await t.test('thread apply all bt: same frames, functions and lines per thread', () => {
    assert.deepEqual([...coreThreads.keys()].sort(), [...liveThreads.keys()].sort());
    for (const [lwp, liveBody] of liveThreads) {
      const coreBody = coreThreads.get(lwp)!;
      const lines = moving.has(lwp) ? spec.movingLines : [];
      if (moving.has(lwp)) {
        for (const [side, body] of [['live', liveBody], ['core', coreBody]] as const) {
          const f0 = parseBacktrace(body)[0];
          assert.ok(f0.line !== undefined && spec.movingLines.includes(f0.line), `${side}: spinning thread ${lwp} caught outside its loop (lines ${spec.movingLines}):\n${body}`);
        }
      }
      assert.equal(normaliseBacktrace(coreBody, lines), normaliseBacktrace(liveBody, lines), `thread LWP ${lwp}\n${sideBySide(liveBody, coreBody)}`);
      assert.ok(parseBacktrace(liveBody).length > 0, `no frames for LWP ${lwp}: ${liveBody}`);
    }
  });

  await t.test('thread apply all bt full: same locals in every frame', () => {
    const live = byThread(v.liveOf('thread apply all bt full'));
    const core = byThread(v.coreOf('thread apply all bt full'));
    for (const [lwp, liveBody] of live) {
      const lines = moving.has(lwp) ? spec.movingLines : [];
      assert.equal(normaliseBacktrace(core.get(lwp) ?? '<missing>', lines), normaliseBacktrace(liveBody, lines), `thread LWP ${lwp}`);
    }
  });

  await t.test(`registers ${STABLE_REGISTERS.join(' ')} of every thread not spinning in C`, () => {
    const cmd = `thread apply all info registers ${STABLE_REGISTERS.join(' ')}`;
    const live = byThread(v.liveOf(cmd));
    const core = byThread(v.coreOf(cmd));
    assert.ok(live.size > 0);
    for (const [lwp, liveBody] of live) {
      const liveRegs = parseRegisters(liveBody);
      const coreRegs = parseRegisters(core.get(lwp) ?? '');
      assert.deepEqual(Object.keys(liveRegs).sort(), [...STABLE_REGISTERS].sort(), `live registers of ${lwp}:\n${liveBody}`);
      if (moving.has(lwp)) {
        // its rip and rsp move; still, fs_base (its TLS) must be right
        assert.equal(coreRegs.fs_base, liveRegs.fs_base, `fs_base of spinning thread ${lwp}`);
        continue;
      }
      assert.deepEqual(coreRegs, liveRegs, `thread LWP ${lwp}\n${sideBySide(liveBody, core.get(lwp) ?? '')}`);
    }
  });

  await t.test('every other command prints the same', () => {
    for (const cmd of spec.commands) {
      const [live, core] = [v.liveOf(cmd), v.coreOf(cmd)];
      if (cmd.startsWith('thread apply all')) {
        // gdb may number the threads of a core differently: compare per LWP
        const [l, c] = [byThread(live), byThread(core)];
        assert.ok(l.size > 0, `${cmd}: no thread output:\n${live}`);
        assert.deepEqual(new Map([...c].sort()), new Map([...l].sort()), `${cmd}\n${sideBySide(live, core)}`);
      } else {
        assert.equal(core, live, `${cmd}\n${sideBySide(live, core)}`);
      }
    }
  });

  await t.test('the values are the ones the program set (live)', () => spec.expect(t, v, 'live'));
  await t.test('the values are the ones the program set (core)', () => spec.expect(t, v, 'core'));
}

// ---------------------------------------------------------------------------------------
// single

const single: Spec = {
  name: 'single',
  spinning: 0,
  movingFuncs: [],
  movingLines: [],
  commands: [
    'p g_answer',
    'p g_message',
    'p s_static',
    'p *g_record',
    'p g_record->tag',
    'p g_heap_words[0]@8',
    'p g_heap_words[4095]',
    'p t_value',
    'p &t_value',
    'frame function blocked_here',
    'p local_int',
    'p local_str',
    'p local_double',
    'p depth',
    'info locals',
    'frame function middle',
    'p middle_local',
    'p x',
    'frame function main',
    'info frame',
  ],
  expect(_t, v, side) {
    const of = side === 'live' ? v.liveOf : v.coreOf;
    const val = (cmd: string) => printedValue(of(cmd));
    assert.equal(val('p g_answer'), '42');
    assert.equal(val('p g_message'), '"stasis single target"');
    assert.equal(val('p s_static'), '99');
    assert.match(val('p *g_record') ?? '', /^\{id = 7, weight = 2\.5, tag = "heap-record/);
    assert.match(val('p g_record->tag') ?? '', /^"heap-record/);
    assert.equal(val('p g_heap_words[0]@8'), '{0, 3, 6, 9, 12, 15, 18, 21}');
    assert.equal(val('p g_heap_words[4095]'), String(4095 * 3));
    assert.equal(val('p t_value'), '5678', 'the thread-local, not its initial value 1234 from the executable');
    assert.match(of('frame function blocked_here'), /blocked_here \(depth=21\) at .*single\.c:\d+/);
    assert.equal(val('p local_int'), '31337');
    assert.equal(val('p local_str'), '"on the stack"');
    assert.equal(val('p local_double'), '6.25');
    assert.equal(val('p depth'), '21');
    assert.equal(val('p middle_local'), '40');
    assert.equal(val('p x'), '20');
    const bt = parseBacktrace(byThread(of('thread apply all bt')).values().next().value ?? '').map((f) => f.func);
    assert.deepEqual(bt.slice(bt.indexOf('blocked_here')), ['blocked_here', 'middle', 'main'], `backtrace ${bt}`);
  },
};

// ---------------------------------------------------------------------------------------
// threads

const ROLES = ['main', 'spin', 'sleep', 'read', 'cond', 'signal', 'mutex', 'poll'];
const WORKER_FUNCS = ['main', 'spin_worker', 'sleep_worker', 'read_worker', 'cond_worker', 'signal_worker', 'mutex_worker', 'poll_worker'];

const threads: Spec = {
  name: 'threads',
  spinning: 1,
  movingFuncs: ['spin_worker'],
  movingLines: sourceLines('threads', '/* SPIN */'),
  commands: [
    'p g_tids',
    'p g_handler_entered',
    'p *g_names@8',
    'thread apply all p t_id',
    'thread apply all p t_name',
    'thread apply all p &t_id',
    'thread apply all frame apply all -s -q p marker',
    'thread apply all frame apply all -s -q p role',
    'thread apply all frame apply all -s -q p handler_local',
  ],
  expect(_t, v, side) {
    const of = side === 'live' ? v.liveOf : v.coreOf;
    const tids = (printedValue(of('p g_tids')) ?? '').replace(/[{}]/g, '').split(',').map((s) => Number(s.trim()));
    assert.equal(tids.length, 8, `g_tids = ${printedValue(of('p g_tids'))}`);
    assert.deepEqual([...tids].sort((a, b) => a - b), taskIds(v.target.pid), 'g_tids are the tasks of the process');
    assert.equal(printedValue(of('p g_handler_entered')), '1');
    assert.match(printedValue(of('p *g_names@8')) ?? '', /0x[0-9a-f]+ "worker-0",.*0x[0-9a-f]+ "worker-7"}$/);
    const tId = byThread(of('thread apply all p t_id'));
    const tName = byThread(of('thread apply all p t_name'));
    const marker = byThread(of('thread apply all frame apply all -s -q p marker'));
    const role = byThread(of('thread apply all frame apply all -s -q p role'));
    const handlerLocal = byThread(of('thread apply all frame apply all -s -q p handler_local'));
    const bts = byThread(of('thread apply all bt'));
    tids.forEach((lwp, i) => {
      assert.equal(printedValue(tId.get(lwp) ?? ''), String(100 + i), `t_id of thread ${i} (LWP ${lwp})`);
      assert.match(printedValue(tName.get(lwp) ?? '') ?? '', new RegExp(`^"${ROLES[i]}`), `t_name of thread ${i} (LWP ${lwp})`);
      const funcs = parseBacktrace(bts.get(lwp) ?? '').map((f) => f.func);
      assert.ok(funcs.includes(WORKER_FUNCS[i]), `thread ${i} (LWP ${lwp}) is in ${WORKER_FUNCS[i]}: ${funcs}`);
      if (i === 0) return;
      assert.equal(printedValue(marker.get(lwp) ?? ''), String(1000 + i), `marker of thread ${i}`);
      assert.match(printedValue(role.get(lwp) ?? '') ?? '', new RegExp(`^0x[0-9a-f]+ "${ROLES[i]}"$`), `role of thread ${i}`);
    });
    const sig = parseBacktrace(bts.get(tids[5]) ?? '').map((f) => f.func);
    const h = sig.indexOf('usr1_handler');
    assert.ok(h >= 0 && sig[h + 1] === '<signal handler called>' && sig.includes('signal_worker'), `signal thread: ${sig}`);
    assert.equal(printedValue(handlerLocal.get(tids[5]) ?? ''), '5010', 'handler_local = 5000 + SIGUSR1');
  },
};

// ---------------------------------------------------------------------------------------
// avx

const SPIN_YMM0 = '{0x706050403020100, 0xf0e0d0c0b0a0908, 0x1716151413121110, 0x1f1e1d1c1b1a1918}';
const SPIN_YMM15 = '{0x8786858483828180, 0x8f8e8d8c8b8a8988, 0x9796959493929190, 0x9f9e9d9c9b9a9998}';
const MAIN_YMM0 = '{0x1122334455667788, 0x99aabbccddeeff00, 0x123456789abcdef, 0xfedcba9876543210}';

const avx: Spec = {
  name: 'avx',
  spinning: 1,
  movingFuncs: [], // `1: jmp 1b` is one instruction: its pc does not move
  movingLines: [],
  commands: ['thread apply all p $ymm0', 'thread apply all p/x $ymm0.v4_int64', 'thread apply all p/x $ymm15.v4_int64'],
  expect(_t, v, side) {
    const of = side === 'live' ? v.liveOf : v.coreOf;
    const bts = byThread(of('thread apply all bt'));
    const ymm0 = byThread(of('thread apply all p/x $ymm0.v4_int64'));
    const ymm15 = byThread(of('thread apply all p/x $ymm15.v4_int64'));
    let seen = 0;
    for (const [lwp, body] of bts) {
      const f0 = parseBacktrace(body)[0]?.func;
      if (f0 === 'avx_worker') {
        assert.equal(printedValue(ymm0.get(lwp) ?? ''), SPIN_YMM0, `ymm0 of the spinning thread ${lwp}`);
        assert.equal(printedValue(ymm15.get(lwp) ?? ''), SPIN_YMM15, `ymm15 of the spinning thread ${lwp}`);
        seen++;
      } else if (f0 === 'main_blocked') {
        assert.equal(printedValue(ymm0.get(lwp) ?? ''), MAIN_YMM0, `ymm0 of the blocked main thread ${lwp}`);
        seen++;
      }
    }
    assert.equal(seen, 2, `found the avx_worker and main_blocked threads:\n${of('thread apply all bt')}`);
    assert.ok(!/too small/.test(v.core.preamble), `gdb complained about the core:\n${v.core.preamble}`);
  },
};

// ---------------------------------------------------------------------------------------

for (const spec of [single, threads, avx]) {
  test(`gdb on a core of '${spec.name}' agrees with gdb on the live process`, async (t) => {
    const v = await views(t, spec);
    t.diagnostic(`core tool: ${coreTool()}; core ${fs.statSync(v.coreFile).size} bytes`);
    await compareCommon(t, spec, v);
  });
}

// ---------------------------------------------------------------------------------------
// notes against the kernel's own core

/** readelf's name for NT_X86_XSAVE_LAYOUT, which binutils 2.40 does not know */
const XSAVE_LAYOUT = '0x205';

/** The standard notes a debugger reads (owner CORE or LINUX); stasis's own are left out. */
const standard = (notes: Note[]) => notes.filter((n) => n.owner === 'CORE' || n.owner === 'LINUX');

for (const spec of [single, threads, avx]) {
  test(`readelf -n of a core of '${spec.name}' matches the kernel's own core`, async (t) => {
    const dir = tempDir(t);
    const kfile = await kernelCore(t, spec.name, dir, { spinning: spec.spinning });
    if (kfile === undefined) {
      t.skip('core_pattern does not write core files in the cwd here');
      return;
    }
    const kernel = await readNotes(kfile);

    const target = await startTarget(t, spec.name);
    await waitSettled(target.pid, { spinning: spec.spinning });
    const ours = path.join(dir, 'ours.core');
    const made = await makeCore(target.pid, ours);
    assert.equal(made.code, 0, describeRun(made));
    const mine = await readNotes(ours);
    // gcore's XSTATE note is the layout gdb reads: the reference for its size
    let gcoreNotes = mine;
    if (made.tool !== 'gcore') {
      const g = await run('gcore', ['-o', path.join(dir, 'gcore'), String(target.pid)]);
      assert.equal(g.code, 0, describeRun(g));
      gcoreNotes = await readNotes(path.join(dir, `gcore.${target.pid}`));
    }
    assertRunningUntraced(target.pid);
    t.diagnostic(`kernel: ${noteListing(kernel)}`);
    t.diagnostic(`${made.tool}: ${noteListing(mine)}`);

    const xstateSize = (notes: Note[]) => {
      const sizes = [...new Set(notes.filter((n) => n.type === 'NT_X86_XSTATE').map((n) => n.size))];
      assert.equal(sizes.length, 1, `one XSTATE size: ${sizes}`);
      return sizes[0];
    };
    const kernelX = xstateSize(kernel);
    const gcoreX = xstateSize(gcoreNotes);

    await t.test('note types and order are the kernel\'s', (t2) => {
      if (made.tool === 'gcore') {
        t2.skip('gcore writes PRPSINFO first, a SIGINFO per thread, AUXV/FILE last and a GDB tdesc note');
        return;
      }
      // NT_X86_XSAVE_LAYOUT (0x205, kernel 6.11+) describes the kernel's own XSAVE layout
      // for debuggers newer than gdb 13; a core in gcore's standard layout may leave it
      // out, but where it has one it must be where the kernel puts it.
      const seq = (notes: Note[], keepLayout: boolean) =>
        standard(notes)
          .filter((n) => keepLayout || n.type !== XSAVE_LAYOUT)
          .map((n) => `${n.owner} ${n.type}`)
          .join('\n');
      const hasLayout = mine.some((n) => n.type === XSAVE_LAYOUT);
      t2.diagnostic(`NT_X86_XSAVE_LAYOUT: kernel ${kernel.some((n) => n.type === XSAVE_LAYOUT) ? 'yes' : 'no'}, ${made.tool} ${hasLayout ? 'yes' : 'no'}`);
      assert.equal(seq(mine, hasLayout), seq(kernel, hasLayout));
    });

    await t.test('per-type sizes are the kernel\'s (XSTATE: below)', () => {
      const kernelSizes = new Map<string, number>();
      for (const n of standard(kernel)) if (n.type !== 'NT_X86_XSTATE') kernelSizes.set(n.type, n.size);
      for (const n of standard(mine)) {
        if (n.type === 'NT_X86_XSTATE' || !kernelSizes.has(n.type)) continue;
        assert.equal(n.size, kernelSizes.get(n.type), `${n.type}: ${n.size} bytes, the kernel's is ${kernelSizes.get(n.type)}`);
      }
    });

    await t.test('XSTATE notes have the kernel\'s size, or gcore\'s where gdb needs more', () => {
      // gdb 13 wants the standard (non-compacted) XSAVE layout up to the highest feature it
      // knows in xcr0. Where the kernel's note is shorter than that (2432 bytes against
      // gcore's 2688 on AMD hosts with xcr0 0xe7), gdb ignores it ("too small") and shows
      // no ymm upper halves: there stasis must write gcore's 2688. Where the kernel's is
      // longer (Intel with AMX, xcr0 0x600e7: 11008 bytes against gcore's 2688, as gdb 13
      // does not know the tile registers), stasis keeps all of it, as the kernel does.
      const ourX = xstateSize(mine);
      const expected = Math.max(kernelX, gcoreX);
      t.diagnostic(`XSTATE: kernel ${kernelX}, gcore ${gcoreX}, ${made.tool} ${ourX}`);
      assert.equal(ourX, made.tool === 'gcore' ? gcoreX : expected, `XSTATE note is ${ourX} bytes; gcore's is ${gcoreX}, the kernel's ${kernelX}`);
      if (made.tool !== 'gcore' && ourX === kernelX) {
        // Same layout as the kernel's: the same components at the same offsets.
        const layout = (notes: Note[]) => notes.find((n) => n.type === XSAVE_LAYOUT)?.data;
        assert.equal(layout(mine), layout(kernel), 'NT_X86_XSAVE_LAYOUT lists what the kernel lists');
      }
      assert.equal(mine.filter((n) => n.type === 'NT_X86_XSTATE').length, taskIds(target.pid).length, 'one XSTATE note per thread');
      assert.equal(mine.filter((n) => n.type === 'NT_PRSTATUS').length, taskIds(target.pid).length, 'one PRSTATUS note per thread');
    });
  });
}

test('no process is left behind, stopped, traced or otherwise', async () => {
  await waitFor(() => leftovers().length === 0, 'leftovers to go', 3_000).catch(() => undefined);
  assert.deepEqual(leftovers(), []);
});
