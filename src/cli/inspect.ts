/**
 * `stasis inspect FILE [--json] [--verbose]`: what a core image holds (threads, mappings,
 * files, notes, sizes). Works on stasis images and on cores from the kernel or gcore.
 */
import { parseArgs } from 'node:util';
import { usageError } from '../errors.js';
import { AT_SYSINFO_EHDR, AUXV_NAMES } from '../image/elf-constants.js';
import { readCore, type CoreImage, type LoadSegment, type SigInfo } from '../image/reader.js';

export const help = `usage: stasis inspect FILE [--json] [--verbose]

Shows what a core image holds: the process, its threads, its memory mappings, the
files they map and the ELF notes. Reads stasis images and the cores written by the
kernel or by gdb's gcore. Only headers and notes are read, never the memory itself.

Output:
  header     the file, its apparent size and the space it uses on disk (images are
             sparse: pages that were never touched are holes), the process id, parent,
             uid/gid, state, command name and command line (from NT_PRPSINFO), and the
             signal that caused the dump (NT_SIGINFO)
  threads    one line per thread (NT_PRSTATUS): TID, program counter, stack pointer,
             the signal it was handling, and the size of its XSAVE state (NT_X86_XSTATE)
  mappings   one line per PT_LOAD segment: start-end address, permissions, size in
             memory, bytes stored in the file (0 for file pages left out of the image
             and for unreadable areas), and what is mapped there: a file from NT_FILE
             with the offset into it, [vdso], [vsyscall], or a thread's stack
             ('[stack]' for the main thread, '[stack TID]' for the others)
  notes      count and total size of the notes of each owner and type; notes of the
             owner STASIS carry the restart state of a checkpoint
  warnings   oddities that do not stop the image being read, e.g. a missing NT_AUXV

Options:
  --json         print everything as one JSON object: addresses and other 64-bit
                 values are hex strings ("0x7f..."), sizes and counts are numbers;
                 includes every register of every thread, the auxv and NT_FILE
  -v, --verbose  also print every thread's registers, the auxv, the NT_FILE table and
                 every note in file order
  -h, --help     show this help

Exit codes:
  0  the image was read and described (warnings included)
  1  the file cannot be read, is not an x86_64 ELF core, or is damaged or truncated
     (one line on stderr says which file and what is wrong)
  2  bad usage`;

const SIGNALS = [
  '', 'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGKILL',
  'SIGUSR1', 'SIGSEGV', 'SIGUSR2', 'SIGPIPE', 'SIGALRM', 'SIGTERM', 'SIGSTKFLT', 'SIGCHLD',
  'SIGCONT', 'SIGSTOP', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU', 'SIGURG', 'SIGXCPU', 'SIGXFSZ',
  'SIGVTALRM', 'SIGPROF', 'SIGWINCH', 'SIGIO', 'SIGPWR', 'SIGSYS',
];

export function signalName(n: number): string {
  if (n <= 0) return '';
  return SIGNALS[n] ?? `SIG${n}`;
}

/** The legacy vsyscall page sits at this fixed address on x86_64. */
const VSYSCALL_ADDR = 0xffffffffff600000n;

const hex = (v: bigint | number) => '0x' + v.toString(16);
const num = (v: bigint) => Number(v);

export interface MappingReport {
  start: string;
  end: string;
  perms: string;
  size: number;
  stored: number;
  /** File offset of the segment's data in the image. */
  imageOffset: number;
  /** What is mapped: a path from NT_FILE, '[vdso]', '[stack]', '[stack TID]', or null. */
  path: string | null;
  /** Offset into `path` of the segment's first byte, for file mappings. */
  fileOffset: string | null;
}

export interface InspectReport {
  file: string;
  fileBytes: number;
  diskBytes: number;
  process: {
    pid: number; ppid: number; pgrp: number; sid: number; uid: number; gid: number;
    fname: string; psargs: string; state: string; nice: number; flag: string;
  } | null;
  signal: { signo: number; name: string; code: number; errno: number; pid: number; uid: number; addr: string } | null;
  threads: Array<{
    tid: number; signal: number; signalName: string; pc: string; sp: string;
    sigpend: string; sighold: string; fpregs: boolean; xstateBytes: number; xcr0: string | null;
    regs: Record<string, string>;
  }>;
  mappings: MappingReport[];
  memoryBytes: number;
  storedBytes: number;
  files: Array<{ start: string; end: string; fileOffset: string; path: string }>;
  auxv: Array<{ type: number; name: string; value: string }>;
  notes: Array<{ owner: string; type: string; typeName: string; count: number; bytes: number }>;
  noteList: Array<{ owner: string; type: string; typeName: string; size: number; offset: number; thread: number | null }>;
  xsaveLayout: Array<{ type: number; size: number; offset: number; flags: number }> | null;
  warnings: string[];
}

function signalReport(si: SigInfo | null): InspectReport['signal'] {
  if (!si) return null;
  return { signo: si.signo, name: signalName(si.signo), code: si.code, errno: si.errno, pid: si.pid, uid: si.uid,
    addr: hex(si.addr) };
}

/** Everything `inspect` shows, as plain JSON-safe data. */
export function describe(image: CoreImage): InspectReport {
  const labels = new Map<LoadSegment, string>();
  const vdso = image.auxv.find(([t]) => t === AT_SYSINFO_EHDR);
  if (vdso) {
    const s = image.findLoad(vdso[1]);
    if (s) labels.set(s, '[vdso]');
  }
  const vsyscall = image.findLoad(VSYSCALL_ADDR);
  if (vsyscall) labels.set(vsyscall, '[vsyscall]');
  const pid = image.process?.pid ?? image.threads[0]?.tid;
  for (const t of image.threads) {
    const s = image.findLoad(t.sp);
    if (s && !labels.has(s)) labels.set(s, t.tid === pid ? '[stack]' : `[stack ${t.tid}]`);
  }

  // NT_FILE is in address order (the kernel's and gcore's); sort anyway, then search.
  const files = [...image.files].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const fileAt = (addr: bigint) => {
    let lo = 0;
    let hi = files.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const f = files[mid]!;
      if (addr < f.start) hi = mid - 1;
      else if (addr >= f.end) lo = mid + 1;
      else return f;
    }
    return undefined;
  };
  const mappings: MappingReport[] = image.loads.map((l) => {
    const f = fileAt(l.vaddr);
    return {
      start: hex(l.vaddr),
      end: hex(l.vaddr + l.memsz),
      perms: l.flags,
      size: num(l.memsz),
      stored: num(l.filesz),
      imageOffset: num(l.offset),
      path: f ? f.path : labels.get(l) ?? null,
      fileOffset: f ? hex(f.fileOffset + (l.vaddr - f.start)) : null,
    };
  });

  const groups = new Map<string, InspectReport['notes'][number]>();
  for (const n of image.notes) {
    const key = `${n.owner}\0${n.type}`;
    const g = groups.get(key);
    if (g) { g.count += 1; g.bytes += n.size; } else {
      groups.set(key, { owner: n.owner, type: hex(n.type), typeName: n.typeName, count: 1, bytes: n.size });
    }
  }

  return {
    file: image.path,
    fileBytes: image.fileBytes,
    diskBytes: image.diskBytes,
    process: image.process ? { ...image.process, flag: hex(image.process.flag) } : null,
    signal: signalReport(image.siginfo),
    threads: image.threads.map((t) => ({
      tid: t.tid,
      signal: t.signal,
      signalName: signalName(t.signal),
      pc: hex(t.pc),
      sp: hex(t.sp),
      sigpend: hex(t.sigpend),
      sighold: hex(t.sighold),
      fpregs: t.fpregs !== undefined,
      xstateBytes: t.xstateSize,
      xcr0: t.xcr0 === undefined ? null : hex(t.xcr0),
      regs: Object.fromEntries(Object.entries(t.regs).map(([k, v]) => [k, hex(v)])),
    })),
    mappings,
    memoryBytes: image.loads.reduce((a, l) => a + num(l.memsz), 0),
    storedBytes: image.loads.reduce((a, l) => a + num(l.filesz), 0),
    files: image.files.map((f) => ({ start: hex(f.start), end: hex(f.end), fileOffset: hex(f.fileOffset), path: f.path })),
    auxv: image.auxv.map(([t, v]) => ({ type: t, name: AUXV_NAMES[t] ?? `AT_${t}`, value: hex(v) })),
    notes: [...groups.values()],
    noteList: image.notes.map((n) => ({ owner: n.owner, type: hex(n.type), typeName: n.typeName, size: n.size,
      offset: n.offset, thread: n.thread })),
    xsaveLayout: image.xsaveLayout,
    warnings: image.warnings,
  };
}

export function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let u = -1;
  do { v /= 1024; u++; } while (v >= 1024 && u < units.length - 1);
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

function table(rows: string[][], rightAligned: number[] = []): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => { widths[i] = Math.max(widths[i] ?? 0, c.length); });
  return rows.map((r) => '  ' + r.map((c, i) => {
    if (rightAligned.includes(i)) return c.padStart(widths[i]!);
    return i === r.length - 1 ? c : c.padEnd(widths[i]!);
  }).join('  ').trimEnd()).join('\n');
}

/** The text form of a report. */
export function formatText(r: InspectReport, verbose = false): string {
  const out: string[] = [];
  const sparse = r.diskBytes < r.fileBytes ? ' (sparse)' : '';
  out.push(`image     ${r.file}`);
  out.push(`size      ${humanBytes(r.fileBytes)} apparent (${r.fileBytes} bytes), ${humanBytes(r.diskBytes)} on disk${sparse}`);
  if (r.process) {
    const p = r.process;
    out.push(`process   pid ${p.pid}, ppid ${p.ppid}, uid ${p.uid}, gid ${p.gid}, state ${p.state || '?'}`);
    out.push(`command   ${p.fname}${p.psargs ? `: ${p.psargs}` : ''}`);
  } else {
    out.push('process   unknown (no NT_PRPSINFO)');
  }
  if (r.signal && r.signal.signo > 0) {
    const s = r.signal;
    let from = '';
    if (s.code <= 0) from = `, sent by pid ${s.pid} uid ${s.uid}`;
    else if ([4, 5, 7, 8, 11].includes(s.signo)) from = `, address ${s.addr}`;
    out.push(`signal    ${s.name} (${s.signo}), code ${s.code}${from}`);
  }
  out.push(`contents  ${r.threads.length} thread${r.threads.length === 1 ? '' : 's'}, ${r.mappings.length} mappings ` +
    `(${humanBytes(r.memoryBytes)} in memory, ${humanBytes(r.storedBytes)} stored), ${r.noteList.length} notes`);

  out.push('', 'THREADS');
  out.push(table([
    ['TID', 'PC', 'SP', 'SIGNAL', 'FP STATE'],
    ...r.threads.map((t) => [String(t.tid), t.pc, t.sp, t.signalName || '-',
      t.xstateBytes ? `xstate ${t.xstateBytes} bytes` : t.fpregs ? 'fpregs only' : 'no fp state']),
  ], [0]));

  out.push('', 'MAPPINGS');
  out.push(table([
    ['START-END', 'PERMS', 'SIZE', 'STORED', 'MAPPED'],
    ...r.mappings.map((m) => [
      `${m.start.slice(2).padStart(12, '0')}-${m.end.slice(2).padStart(12, '0')}`,
      m.perms, humanBytes(m.size), m.stored ? humanBytes(m.stored) : '-',
      m.path === null ? '' : m.fileOffset !== null ? `${m.path} @${m.fileOffset}` : m.path,
    ]),
  ], [2, 3]));

  out.push('', 'NOTES');
  out.push(table([
    ['OWNER', 'TYPE', 'COUNT', 'BYTES'],
    ...r.notes.map((n) => [n.owner, n.typeName, String(n.count), String(n.bytes)]),
  ], [2, 3]));

  if (verbose) {
    for (const t of r.threads) {
      out.push('', `REGISTERS ${t.tid}`);
      const names = Object.keys(t.regs);
      const rows: string[][] = [];
      for (let i = 0; i < names.length; i += 3) {
        rows.push(names.slice(i, i + 3).flatMap((n) => [n, t.regs[n]!.slice(2).padStart(16, '0')]));
      }
      out.push(table(rows));
      out.push(`  sigpend ${t.sigpend}  sighold ${t.sighold}${t.xcr0 ? `  xcr0 ${t.xcr0}` : ''}`);
    }
    if (r.auxv.length) {
      out.push('', 'AUXV');
      out.push(table(r.auxv.map((a) => [a.name, a.value])));
    }
    if (r.files.length) {
      out.push('', 'FILES (NT_FILE)');
      out.push(table(r.files.map((f) => [`${f.start.slice(2)}-${f.end.slice(2)}`, f.fileOffset, f.path])));
    }
    if (r.xsaveLayout) {
      out.push('', 'XSAVE LAYOUT (NT_X86_XSAVE_LAYOUT)');
      out.push(table([['COMPONENT', 'OFFSET', 'SIZE', 'FLAGS'],
        ...r.xsaveLayout.map((c) => [String(c.type), String(c.offset), String(c.size), hex(c.flags)])], [0, 1, 2]));
    }
    out.push('', 'ALL NOTES');
    out.push(table([['OFFSET', 'OWNER', 'TYPE', 'SIZE', 'THREAD'],
      ...r.noteList.map((n) => [String(n.offset), n.owner, n.typeName, String(n.size), n.thread === null ? '-' : String(n.thread)])],
    [0, 3]));
  }

  if (r.warnings.length) {
    out.push('', 'WARNINGS');
    for (const w of r.warnings) out.push(`  ${w}`);
  }
  return out.join('\n') + '\n';
}

export async function run(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        json: { type: 'boolean' },
        verbose: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    throw usageError(`inspect: ${(err as Error).message}; see 'stasis inspect --help'`);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1) {
    throw usageError(`inspect: expected one FILE, got ${positionals.length}; usage: stasis inspect FILE [--json] [--verbose]`);
  }
  const image = readCore(positionals[0]!);
  const report = describe(image);
  process.stdout.write(values.json ? JSON.stringify(report, null, 2) + '\n' : formatText(report, values.verbose === true));
  return 0;
}
