/**
 * The core reader (src/image/reader.ts) and `stasis inspect`, on real cores written by
 * the kernel and by gdb's gcore, checked against what gdb reads from the same core and
 * against the live process's /proc/PID/maps and task list; on synthetic cores for the
 * cases real ones do not show (extended numbering, stasis notes, reads across segments);
 * and on damaged files, which must give one BAD_IMAGE error naming the file.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readCore, type CoreImage } from '../src/image/reader.js';
import { StasisError } from '../src/errors.js';
import * as C from '../src/image/elf-constants.js';
import { gdbCore, byThread, infoThreadsLwps, parseRegisters, printedValue } from './helpers/gdb.js';
import {
  run, runStasis, startTarget, waitSettled, taskIds, tempDir, assertRunningUntraced, describe as describeRun,
} from './helpers/targets.js';

// ---------------------------------------------------------------------------------------
// helpers

interface MapsLine { start: bigint; end: bigint; perms: string; offset: bigint; inode: number; path: string }

function readMaps(pid: number): MapsLine[] {
  return fs.readFileSync(`/proc/${pid}/maps`, 'utf8').trim().split('\n').map((l) => {
    const m = l.match(/^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) \S+ (\d+)\s*(.*)$/);
    assert.ok(m, `unparsable maps line ${l}`);
    return { start: BigInt('0x' + m[1]), end: BigInt('0x' + m[2]), perms: m[3]!, offset: BigInt('0x' + m[4]),
      inode: Number(m[5]), path: m[6]! };
  });
}

const hex = (v: bigint) => '0x' + v.toString(16);

/** `inspect` through the real command line; returns exit code and output. */
async function inspectCli(args: string[]) {
  const r = await runStasis(['inspect', ...args], { timeoutMs: 60_000 });
  return r;
}

/** Asserts that `fn` throws one StasisError BAD_IMAGE whose message names `file` and matches `re`. */
function assertBadImage(fn: () => unknown, file: string, re: RegExp): StasisError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof StasisError, `expected a StasisError for ${file}, got ${String(caught)}`);
  assert.equal(caught.code, 'BAD_IMAGE');
  assert.ok(caught.message.includes(file), `message names the file: ${caught.message}`);
  assert.match(caught.message, re);
  assert.ok(!caught.message.includes('\n'), `one line: ${caught.message}`);
  return caught;
}

/** Compares the reader's threads with gdb's view of the same core. */
async function checkThreadsAgainstGdb(exe: string, core: string, image: CoreImage): Promise<void> {
  const g = await gdbCore(exe, core, ['info threads', 'thread apply all info registers rip rsp rbp rbx fs_base']);
  assert.deepEqual(image.threads.map((t) => t.tid).sort((a, b) => a - b), infoThreadsLwps(g.sections[0]!),
    `threads as gdb lists them:\n${g.raw}`);
  const regs = byThread(g.sections[1]!);
  for (const t of image.threads) {
    const body = regs.get(t.tid);
    assert.ok(body !== undefined, `gdb shows registers for LWP ${t.tid}:\n${g.raw}`);
    const r = parseRegisters(body);
    assert.equal(r['rip'], hex(t.pc), `pc of ${t.tid}`);
    assert.equal(r['rsp'], hex(t.sp), `sp of ${t.tid}`);
    for (const name of ['rbp', 'rbx', 'fs_base']) assert.equal(r[name], hex(t.regs[name]!), `${name} of ${t.tid}`);
  }
}

// ---------------------------------------------------------------------------------------
// a minimal core writer, for the cases real cores do not show

interface SynthNote { owner: string; type: number; desc: Buffer }
interface SynthLoad { vaddr: bigint; memsz: number; data: Buffer; flags: number }

function note(owner: string, type: number, desc: Buffer): SynthNote {
  return { owner, type, desc };
}

function encodeNote(n: SynthNote): Buffer {
  const name = Buffer.from(n.owner + '\0');
  const pad = (b: Buffer) => Buffer.concat([b, Buffer.alloc((4 - (b.length % 4)) % 4)]);
  const h = Buffer.alloc(C.NHDR_SIZE);
  h.writeUInt32LE(name.length, C.NHDR.n_namesz);
  h.writeUInt32LE(n.desc.length, C.NHDR.n_descsz);
  h.writeUInt32LE(n.type >>> 0, C.NHDR.n_type);
  return Buffer.concat([h, pad(name), pad(n.desc)]);
}

function prstatus(tid: number, sig: number, regs: Partial<Record<string, bigint>>): Buffer {
  const d = Buffer.alloc(C.PRSTATUS_SIZE);
  d.writeInt32LE(sig, C.PRSTATUS.pr_info_si_signo);
  d.writeInt16LE(sig, C.PRSTATUS.pr_cursig);
  d.writeInt32LE(tid, C.PRSTATUS.pr_pid);
  d.writeInt32LE(1, C.PRSTATUS.pr_ppid);
  for (const [name, v] of Object.entries(regs)) {
    d.writeBigUInt64LE(v!, C.PRSTATUS.pr_reg + C.USER_REGS_OFFSET[name as C.UserRegName]);
  }
  d.writeInt32LE(1, C.PRSTATUS.pr_fpvalid);
  return d;
}

function prpsinfo(pid: number, fname: string, psargs: string): Buffer {
  const d = Buffer.alloc(C.PRPSINFO_SIZE);
  d.write('S', C.PRPSINFO.pr_sname, 'latin1');
  d.writeUInt32LE(1000, C.PRPSINFO.pr_uid);
  d.writeUInt32LE(100, C.PRPSINFO.pr_gid);
  d.writeInt32LE(pid, C.PRPSINFO.pr_pid);
  d.writeInt32LE(1, C.PRPSINFO.pr_ppid);
  d.write(fname, C.PRPSINFO.pr_fname, C.PRPSINFO_FNAME_SIZE - 1, 'utf8');
  d.write(psargs, C.PRPSINFO.pr_psargs, C.PRPSINFO_PSARGS_SIZE - 1, 'utf8');
  return d;
}

function auxv(pairs: Array<[number, bigint]>): Buffer {
  const d = Buffer.alloc((pairs.length + 1) * C.AUXV_ENTRY_SIZE);
  pairs.forEach(([t, v], i) => {
    d.writeBigUInt64LE(BigInt(t), i * 16);
    d.writeBigUInt64LE(v, i * 16 + 8);
  });
  return d;
}

function ntFile(entries: Array<{ start: bigint; end: bigint; page: bigint; path: string }>): Buffer {
  const head = Buffer.alloc(C.NT_FILE_LAYOUT.entries + entries.length * C.NT_FILE_LAYOUT.entrySize);
  head.writeBigUInt64LE(BigInt(entries.length), C.NT_FILE_LAYOUT.count);
  head.writeBigUInt64LE(4096n, C.NT_FILE_LAYOUT.pageSize);
  entries.forEach((e, i) => {
    const o = C.NT_FILE_LAYOUT.entries + i * C.NT_FILE_LAYOUT.entrySize;
    head.writeBigUInt64LE(e.start, o + C.NT_FILE_LAYOUT.entryStart);
    head.writeBigUInt64LE(e.end, o + C.NT_FILE_LAYOUT.entryEnd);
    head.writeBigUInt64LE(e.page, o + C.NT_FILE_LAYOUT.entryFileOfs);
  });
  return Buffer.concat([head, ...entries.map((e) => Buffer.from(e.path + '\0'))]);
}

/** Writes an ET_CORE file; with `xnum`, uses extended numbering (e_phnum = PN_XNUM). */
function writeSynthCore(file: string, notes: SynthNote[], loads: SynthLoad[], opts: { xnum?: boolean } = {}): void {
  const noteBytes = Buffer.concat(notes.map(encodeNote));
  const phnum = loads.length + 1;
  const phoff = C.EHDR_SIZE;
  const noteOff = phoff + phnum * C.PHDR_SIZE;
  let dataOff = Math.ceil((noteOff + noteBytes.length) / 4096) * 4096;
  const eh = Buffer.alloc(C.EHDR_SIZE);
  C.ELF_MAGIC.copy(eh, 0);
  eh[C.EI_CLASS] = C.ELFCLASS64;
  eh[C.EI_DATA] = C.ELFDATA2LSB;
  eh[C.EI_VERSION] = C.EV_CURRENT;
  eh.writeUInt16LE(C.ET_CORE, C.EHDR.e_type);
  eh.writeUInt16LE(C.EM_X86_64, C.EHDR.e_machine);
  eh.writeUInt32LE(C.EV_CURRENT, C.EHDR.e_version);
  eh.writeBigUInt64LE(BigInt(phoff), C.EHDR.e_phoff);
  eh.writeUInt16LE(C.EHDR_SIZE, C.EHDR.e_ehsize);
  eh.writeUInt16LE(C.PHDR_SIZE, C.EHDR.e_phentsize);
  eh.writeUInt16LE(opts.xnum ? C.PN_XNUM : phnum, C.EHDR.e_phnum);
  const ph = Buffer.alloc(phnum * C.PHDR_SIZE);
  ph.writeUInt32LE(C.PT_NOTE, C.PHDR.p_type);
  ph.writeBigUInt64LE(BigInt(noteOff), C.PHDR.p_offset);
  ph.writeBigUInt64LE(BigInt(noteBytes.length), C.PHDR.p_filesz);
  ph.writeBigUInt64LE(4n, C.PHDR.p_align);
  const chunks: Array<[number, Buffer]> = [];
  loads.forEach((l, i) => {
    const o = (i + 1) * C.PHDR_SIZE;
    ph.writeUInt32LE(C.PT_LOAD, o + C.PHDR.p_type);
    ph.writeUInt32LE(l.flags, o + C.PHDR.p_flags);
    ph.writeBigUInt64LE(BigInt(dataOff), o + C.PHDR.p_offset);
    ph.writeBigUInt64LE(l.vaddr, o + C.PHDR.p_vaddr);
    ph.writeBigUInt64LE(BigInt(l.data.length), o + C.PHDR.p_filesz);
    ph.writeBigUInt64LE(BigInt(l.memsz), o + C.PHDR.p_memsz);
    ph.writeBigUInt64LE(4096n, o + C.PHDR.p_align);
    chunks.push([dataOff, l.data]);
    dataOff += Math.ceil(l.data.length / 4096) * 4096;
  });
  let end = dataOff;
  let sh: Buffer | undefined;
  if (opts.xnum) {
    eh.writeBigUInt64LE(BigInt(end), C.EHDR.e_shoff);
    eh.writeUInt16LE(C.SHDR_SIZE, C.EHDR.e_shentsize);
    eh.writeUInt16LE(1, C.EHDR.e_shnum);
    sh = Buffer.alloc(C.SHDR_SIZE);
    sh.writeUInt32LE(C.SHT_NULL, C.SHDR.sh_type);
    sh.writeUInt32LE(phnum, C.SHDR.sh_info);
    end += C.SHDR_SIZE;
  }
  const out = Buffer.alloc(end);
  eh.copy(out, 0);
  ph.copy(out, phoff);
  noteBytes.copy(out, noteOff);
  for (const [o, d] of chunks) d.copy(out, o);
  if (sh) sh.copy(out, dataOff);
  fs.writeFileSync(file, out);
}

const STASIS_PROCESS_NOTE = 0x1001;
const STASIS_THREAD_NOTE = 0x1002;

/** Two threads, three segments (the first two adjacent), and stasis notes. */
function synthCore(file: string, opts: { xnum?: boolean } = {}) {
  const pattern = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff));
  const xstate = (xcr0: bigint) => {
    const d = Buffer.alloc(C.GDB_XSTATE_SIZE.AVX);
    d.writeBigUInt64LE(xcr0, C.XSAVE.xcr0);
    return d;
  };
  const notes = [
    note('CORE', C.NT_PRSTATUS, prstatus(4242, 0, { rip: 0x10010n, rsp: 0x12f00n, rax: 0xdeadbeefn, fs_base: 0x7000n })),
    note('CORE', C.NT_PRPSINFO, prpsinfo(4242, 'synth', 'synth --flag value')),
    note('CORE', C.NT_AUXV, auxv([[C.AT_PAGESZ, 4096n], [C.AT_ENTRY, 0x10000n]])),
    note('CORE', C.NT_FILE, ntFile([{ start: 0x10000n, end: 0x12000n, page: 3n, path: '/opt/synth/bin' }])),
    note('CORE', C.NT_FPREGSET, Buffer.alloc(C.FPREGSET_SIZE, 1)),
    note('LINUX', C.NT_X86_XSTATE, xstate(0x7n)),
    note('STASIS', STASIS_PROCESS_NOTE, Buffer.from('process state v1')),
    note('CORE', C.NT_PRSTATUS, prstatus(4243, 0, { rip: 0x10020n, rsp: 0x20f00n })),
    note('CORE', C.NT_FPREGSET, Buffer.alloc(C.FPREGSET_SIZE, 2)),
    note('STASIS', STASIS_THREAD_NOTE, Buffer.from('thread 4243 state')),
  ];
  const loads: SynthLoad[] = [
    { vaddr: 0x10000n, memsz: 0x2000, data: pattern(0x1000, 1), flags: C.PF_R | C.PF_X },
    { vaddr: 0x12000n, memsz: 0x1000, data: pattern(0x1000, 2), flags: C.PF_R | C.PF_W },
    { vaddr: 0x20000n, memsz: 0x1000, data: pattern(0x1000, 3), flags: C.PF_R | C.PF_W },
  ];
  writeSynthCore(file, notes, loads, opts);
  return { pattern };
}

// ---------------------------------------------------------------------------------------

describe('stasis inspect', () => {
  it('reads a kernel core of a multi-threaded process as gdb does, and as /proc showed the process', async (t) => {
    const dir = tempDir(t);
    const target = await startTarget(t, 'threads', { cwd: dir, shellPrefix: 'ulimit -c unlimited' });
    await waitSettled(target.pid, { spinning: 1 });
    const maps = readMaps(target.pid);
    const tids = taskIds(target.pid);
    process.kill(target.pid, 'SIGABRT');
    const exit = await target.exited;
    assert.equal(exit.signal, 'SIGABRT');
    const core = ['core', `core.${target.pid}`].map((f) => path.join(dir, f)).find((f) => fs.existsSync(f));
    if (!core) {
      const pattern = fs.readFileSync('/proc/sys/kernel/core_pattern', 'utf8').trim();
      t.skip(`the kernel wrote no core in ${dir} (core_pattern ${pattern})`);
      return;
    }
    const image = readCore(core);
    assert.deepEqual(image.warnings, []);

    // process and threads
    assert.equal(image.process?.pid, target.pid);
    assert.equal(image.process?.fname, 'threads');
    assert.match(image.process?.psargs ?? '', /threads/);
    assert.deepEqual(image.threads.map((th) => th.tid).sort((a, b) => a - b), tids);
    assert.equal(image.siginfo?.signo, 6);
    assert.ok(image.threads.some((th) => th.signal === 6), 'a thread has pr_cursig SIGABRT');
    for (const th of image.threads) {
      assert.equal(th.fpregs?.length, C.FPREGSET_SIZE, `fpregs of ${th.tid}`);
      assert.ok(th.xstateSize >= C.GDB_XSTATE_SIZE.SSE, `xstate of ${th.tid}: ${th.xstateSize}`);
      assert.ok(th.xcr0 !== undefined && (th.xcr0 & 3n) === 3n, `xcr0 of ${th.tid} has x87 and SSE`);
      assert.equal(th.regs['cs'], 0x33n, `cs of ${th.tid} is the 64-bit user code segment`);
    }
    await checkThreadsAgainstGdb(target.exe, core, image);

    // one PT_LOAD per mapping, as the process had them
    assert.deepEqual(
      image.loads.map((l) => `${hex(l.vaddr)}-${hex(l.vaddr + l.memsz)} ${l.flags}`),
      maps.map((m) => `${hex(m.start)}-${hex(m.end)} ${m.perms.slice(0, 3)}`));
    // NT_FILE: every file-backed mapping, with its offset
    assert.deepEqual(
      image.files.map((f) => `${hex(f.start)}-${hex(f.end)} ${hex(f.fileOffset)} ${f.path}`),
      maps.filter((m) => m.inode !== 0).map((m) => `${hex(m.start)}-${hex(m.end)} ${hex(m.offset)} ${m.path}`));

    // memory: the vDSO is an ELF image; memory beyond p_filesz reads as zeros
    const vdso = maps.find((m) => m.path === '[vdso]');
    const ehdr = image.auxv.find(([type]) => type === C.AT_SYSINFO_EHDR);
    assert.ok(vdso && ehdr);
    assert.equal(ehdr[1], vdso.start);
    assert.deepEqual(image.readMemory(vdso.start, 4), C.ELF_MAGIC);
    const partial = image.loads.find((l) => l.filesz < l.memsz);
    assert.ok(partial, 'some segment is not stored (read-only file pages)');
    assert.ok(image.readMemory(partial.vaddr + partial.filesz, 64).every((b) => b === 0));
    assert.ok(image.diskBytes < image.fileBytes, `the kernel's core is sparse: ${image.diskBytes} < ${image.fileBytes}`);

    // the command line, text and JSON
    const text = await inspectCli([core]);
    assert.equal(text.code, 0, describeRun(text));
    assert.equal(text.stderr, '');
    assert.match(text.stdout, new RegExp(`pid ${target.pid}\\b`));
    for (const tid of tids) assert.match(text.stdout, new RegExp(`^\\s+${tid}\\s+0x`, 'm'));
    assert.match(text.stdout, /\[vdso\]/);
    assert.match(text.stdout, /NT_X86_XSTATE/);
    const js = await inspectCli([core, '--json']);
    assert.equal(js.code, 0, describeRun(js));
    const report = JSON.parse(js.stdout);
    assert.equal(report.process.pid, target.pid);
    assert.equal(report.fileBytes, image.fileBytes);
    assert.deepEqual(report.threads.map((th: { tid: number; pc: string }) => [th.tid, th.pc]),
      image.threads.map((th) => [th.tid, hex(th.pc)]));
    assert.equal(report.mappings.length, maps.length);
    const libc = report.mappings.find((m: { path: string | null }) => m.path !== null && /libc\.so/.test(m.path));
    assert.ok(libc, 'a mapping is named after libc from NT_FILE');

    // cut short, the same core is refused
    const cut = path.join(dir, 'core.cut');
    fs.writeFileSync(cut, fs.readFileSync(core).subarray(0, Math.floor(image.fileBytes / 2)));
    assertBadImage(() => readCore(cut), cut, /truncated/);
  });

  it('reads a gcore core: threads, registers and memory as gdb shows them', async (t) => {
    const dir = tempDir(t);
    const target = await startTarget(t, 'single');
    await waitSettled(target.pid);
    const maps = readMaps(target.pid);
    const g = await run('gcore', ['-o', path.join(dir, 'gcore'), String(target.pid)], { timeoutMs: 120_000 });
    assert.equal(g.code, 0, describeRun(g));
    assertRunningUntraced(target.pid, 'the target after gcore');
    const core = path.join(dir, `gcore.${target.pid}`);
    const image = readCore(core);

    assert.equal(image.process?.pid, target.pid);
    assert.deepEqual(image.threads.map((th) => th.tid), [target.pid]);
    await checkThreadsAgainstGdb(target.exe, core, image);
    // gcore writes a subset of the mappings, each exactly as /proc showed it
    const byStart = new Map(maps.map((m) => [m.start, m]));
    for (const l of image.loads) {
      const m = byStart.get(l.vaddr);
      assert.ok(m, `segment at ${hex(l.vaddr)} is a mapping of the process`);
      assert.equal(l.vaddr + l.memsz, m.end);
    }
    assert.ok(image.notes.some((n) => n.owner === 'GDB' && n.typeName === 'NT_GDB_TDESC'));

    // memory: what gdb prints from the same core
    const gd = await gdbCore(target.exe, core, ['p/x g_heap_words', 'p/x &g_message', 'p g_message']);
    const words = BigInt(printedValue(gd.sections[0]!)!);
    const heap = image.readMemory(words, 4096 * 8);
    for (let i = 0; i < 4096; i++) assert.equal(heap.readBigInt64LE(i * 8), BigInt(i * 3), `g_heap_words[${i}]`);
    const msg = BigInt(printedValue(gd.sections[1]!)!.replace(/ .*/, ''));
    assert.equal(image.readMemory(msg, 21).toString('latin1'), 'stasis single target\0');
    assert.equal(printedValue(gd.sections[2]!), '"stasis single target"');

    const text = await inspectCli([core, '--verbose']);
    assert.equal(text.code, 0, describeRun(text));
    assert.match(text.stdout, /REGISTERS/);
    assert.match(text.stdout, /AT_ENTRY/);
    assert.match(text.stdout, /NT_GDB_TDESC/);
  });

  it('reads notes in order: register sets and stasis notes belong to the thread before them', (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'synth.core');
    const { pattern } = synthCore(file);
    const image = readCore(file);
    assert.deepEqual(image.warnings, []);
    assert.deepEqual(image.threads.map((th) => th.tid), [4242, 4243]);
    const [a, b] = image.threads as [CoreImage['threads'][0], CoreImage['threads'][0]];
    assert.equal(a.pc, 0x10010n);
    assert.equal(a.sp, 0x12f00n);
    assert.equal(a.regs['rax'], 0xdeadbeefn);
    assert.equal(a.regs['fs_base'], 0x7000n);
    assert.equal(a.fpregs?.[0], 1);
    assert.equal(a.xstateSize, C.GDB_XSTATE_SIZE.AVX);
    assert.equal(a.xcr0, 7n);
    assert.equal(b.fpregs?.[0], 2);
    assert.equal(b.xstate, undefined);
    assert.equal(b.xstateSize, 0);
    assert.deepEqual(image.process && [image.process.pid, image.process.fname, image.process.psargs, image.process.uid,
      image.process.gid, image.process.state], [4242, 'synth', 'synth --flag value', 1000, 100, 'S']);
    assert.deepEqual(image.auxv, [[C.AT_PAGESZ, 4096n], [C.AT_ENTRY, 0x10000n]]);
    assert.deepEqual(image.files, [{ start: 0x10000n, end: 0x12000n, pageOffset: 3n, fileOffset: 0x3000n,
      path: '/opt/synth/bin' }]);
    assert.deepEqual(image.stasisNotes.map((n) => [n.type, n.thread, n.data.toString()]),
      [[STASIS_PROCESS_NOTE, 4242, 'process state v1'], [STASIS_THREAD_NOTE, 4243, 'thread 4243 state']]);
    assert.deepEqual(image.readNote(image.stasisNotes[1]!), Buffer.from('thread 4243 state'));
    assert.deepEqual(image.loads.map((l) => l.flags), ['r-x', 'rw-', 'rw-']);

    // reads: inside one segment, past p_filesz (zeros), across two adjacent segments
    assert.deepEqual(image.readMemory(0x10010n, 16), pattern(0x1000, 1).subarray(0x10, 0x20));
    assert.ok(image.readMemory(0x11000n, 0x1000).every((x) => x === 0));
    const across = image.readMemory(0x10ff0n, 0x1020);
    assert.deepEqual(across.subarray(0, 16), pattern(0x1000, 1).subarray(0xff0));
    assert.ok(across.subarray(16, 0x1010).every((x) => x === 0));
    assert.deepEqual(across.subarray(0x1010), pattern(0x1000, 2).subarray(0, 16));
    assert.deepEqual(image.readMemory(0x20ff8, 8), pattern(0x1000, 3).subarray(0xff8));
    assert.equal(image.findLoad(0x12fffn)?.vaddr, 0x12000n);
    assert.equal(image.findLoad(0x13000n), undefined);
    // unmapped: between segments, and running off the end of the last one
    assertBadImage(() => image.readMemory(0x13000n, 1), file, /no memory at 0x13000/);
    assertBadImage(() => image.readMemory(0x20ff8n, 16), file, /no memory at 0x21000/);
  });

  it('reads extended program-header numbering (e_phnum = PN_XNUM)', (t) => {
    const file = path.join(tempDir(t), 'xnum.core');
    synthCore(file, { xnum: true });
    const image = readCore(file);
    assert.equal(image.phnum, 4);
    assert.equal(image.loads.length, 3);
    assert.deepEqual(image.threads.map((th) => th.tid), [4242, 4243]);
  });

  it('refuses damaged and non-core files with one BAD_IMAGE line naming the file', async (t) => {
    const dir = tempDir(t);
    const good = path.join(dir, 'good.core');
    synthCore(good);
    const bytes = fs.readFileSync(good);
    const noteOff = C.EHDR_SIZE + 4 * C.PHDR_SIZE;
    const variant = (name: string, edit: (b: Buffer) => Buffer) => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, edit(Buffer.from(bytes)));
      return f;
    };
    const cases: Array<[string, RegExp]> = [
      [variant('empty', () => Buffer.alloc(0)), /too short for an ELF header \(0 bytes\)/],
      [variant('short', (b) => b.subarray(0, 40)), /too short for an ELF header/],
      [variant('text', () => Buffer.from('#!/bin/sh\necho this is a script, not a core file at all\n'.repeat(2))),
        /not an ELF file \(bad magic/],
      [variant('exec', (b) => { b.writeUInt16LE(C.ET_EXEC, C.EHDR.e_type); return b; }), /not a core file: it is an executable/],
      [variant('elf32', (b) => { b[C.EI_CLASS] = 1; return b; }), /not a 64-bit ELF/],
      [variant('bigendian', (b) => { b[C.EI_DATA] = 2; return b; }), /not a little-endian/],
      [variant('arm', (b) => { b.writeUInt16LE(183, C.EHDR.e_machine); return b; }), /machine 183, not x86_64/],
      [variant('phdrs-cut', (b) => b.subarray(0, C.EHDR_SIZE + 20)), /truncated: the 4 program headers/],
      [variant('notes-cut', (b) => b.subarray(0, noteOff + 100)), /truncated: note segment/],
      [variant('data-cut', (b) => b.subarray(0, b.length - 100)), /truncated: segment 3 \(memory 0x20000\)/],
      [variant('descsz', (b) => { b.writeUInt32LE(0x7fffffff, noteOff + C.NHDR.n_descsz); return b; }),
        /damaged note at file offset \d+/],
      [variant('prstatus-size', (b) => { b.writeUInt32LE(200, noteOff + C.NHDR.n_descsz); return b; }),
        /damaged NT_PRSTATUS note at file offset \d+: 200 bytes, expected 336/],
      [variant('filesz', (b) => {
        b.writeBigUInt64LE(0x10000n, C.EHDR_SIZE + C.PHDR_SIZE + C.PHDR.p_filesz);
        return b;
      }), /segment 1 at 0x10000 stores 65536 bytes but maps only 8192/],
      [variant('no-phdrs', (b) => { b.writeUInt16LE(0, C.EHDR.e_phnum); return b; }), /has no program headers/],
      [dir, /is a directory/],
      [path.join(dir, 'missing'), /cannot open image .*missing: no such file/],
    ];
    for (const [file, re] of cases) assertBadImage(() => readCore(file), file, re);

    // through the command line: exit 1, nothing on stdout, one line on stderr
    for (const [file, re] of cases.slice(0, 4).concat(cases.slice(8, 10))) {
      const r = await inspectCli([file]);
      assert.equal(r.code, 1, describeRun(r));
      assert.equal(r.stdout, '');
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, describeRun(r));
      assert.ok(r.stderr.startsWith('stasis: ') && r.stderr.includes(file), describeRun(r));
      assert.match(r.stderr, re);
    }
  });

  it('explains itself with --help, and exits 2 on bad usage', async () => {
    const h = await inspectCli(['--help']);
    assert.equal(h.code, 0, describeRun(h));
    assert.match(h.stdout, /usage: stasis inspect FILE/);
    assert.match(h.stdout, /Exit codes/i);
    for (const args of [[], ['a', 'b'], ['--no-such-option', 'x']]) {
      const r = await inspectCli(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${describeRun(r)}`);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^stasis: inspect: /);
    }
  });
});
