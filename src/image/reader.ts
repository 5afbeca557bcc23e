/**
 * Reader for ELF64 x86_64 core files: ours, the kernel's and gdb's (gcore).
 *
 * `readCore(path)` reads the headers and the notes (not the memory) synchronously and
 * checks that everything they point at lies inside the file. Memory is read lazily with
 * `image.readMemory(vaddr, length)`. A file that is not a core, or is damaged or
 * truncated, gives one StasisError('BAD_IMAGE') naming the file and what is wrong.
 *
 * All 64-bit ELF quantities (addresses, offsets, sizes) are bigints.
 */
import { STASIS_NOTE, STASIS_OWNER } from './stasis-notes.js';
import * as fs from 'node:fs';
import { StasisError } from '../errors.js';
import {
  AT_NULL, AUXV_ENTRY_SIZE, EHDR, EHDR_SIZE, ELF_MAGIC, ELFCLASS64, ELFDATA2LSB, EM_X86_64,
  ET_CORE, ET_DYN, ET_EXEC, ET_REL, EI_CLASS, EI_DATA, FPREGSET_SIZE, NHDR_SIZE, NOTE_ALIGN,
  NOTE_OWNER_CORE, NOTE_OWNER_LINUX, NOTE_OWNER_STASIS, NOTE_TYPE_NAMES, NT_AUXV,
  NT_FILE, NT_FILE_LAYOUT, NT_FPREGSET, NT_PRPSINFO, NT_PRSTATUS, NT_SIGINFO,
  NT_X86_XSAVE_LAYOUT, NT_X86_XSTATE, PF_R, PF_W, PF_X, PHDR, PHDR_SIZE, PN_XNUM,
  PRPSINFO, PRPSINFO_FNAME_SIZE, PRPSINFO_PSARGS_SIZE, PRPSINFO_SIZE, PRSTATUS, PRSTATUS_SIZE,
  PT_LOAD, PT_NOTE, SHDR, SHDR_SIZE, SIGINFO, SIGINFO_SIZE, USER_REGS_NAMES, XSAVE,
  XSAVE_LAYOUT, XSAVE_LAYOUT_ENTRY_SIZE,
} from './elf-constants.js';

export interface LoadSegment {
  /** Index of the program header. */
  index: number;
  vaddr: bigint;
  memsz: bigint;
  /** Bytes stored in the file (may be holes in a sparse file); memory beyond is zeros. */
  filesz: bigint;
  /** File offset of the segment's first byte. */
  offset: bigint;
  /** 'rwx' with '-' for missing permissions. */
  flags: string;
  align: bigint;
}

export interface NoteInfo {
  owner: string;
  type: number;
  /** 'NT_PRSTATUS', ... or 'type 0x...' for types this reader does not know. */
  typeName: string;
  /** Size of the descriptor (unpadded). */
  size: number;
  /** File offset of the descriptor. */
  offset: number;
  /** TID of the NT_PRSTATUS this note follows, null before the first one. */
  thread: number | null;
}

export interface StasisNote extends NoteInfo {
  data: Buffer;
}

export interface SigInfo {
  signo: number;
  errno: number;
  code: number;
  /** si_pid and si_uid (meaningful for signals sent by a process, si_code <= 0, and SIGCHLD). */
  pid: number;
  uid: number;
  /** si_addr (meaningful for SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP with si_code > 0). */
  addr: bigint;
}

export interface CoreThread {
  tid: number;
  /** pr_cursig: the signal being delivered when the core was taken, 0 if none. */
  signal: number;
  ppid: number;
  pgrp: number;
  sid: number;
  /** Pending and blocked signal sets (bit n-1 for signal n). */
  sigpend: bigint;
  sighold: bigint;
  /** user_regs_struct, by name. */
  regs: Record<string, bigint>;
  pc: bigint;
  sp: bigint;
  /** NT_FPREGSET (512-byte FXSAVE area), if present. */
  fpregs?: Buffer;
  /** NT_X86_XSTATE, if present. */
  xstate?: Buffer;
  /** Size of the NT_X86_XSTATE note, 0 if none. */
  xstateSize: number;
  /** XCR0 as recorded in the XSTATE note (bytes 464..471), if present. */
  xcr0?: bigint;
  /** NT_SIGINFO following this thread's NT_PRSTATUS (gcore writes one per thread). */
  siginfo?: SigInfo;
}

export interface CoreProcess {
  pid: number;
  ppid: number;
  pgrp: number;
  sid: number;
  uid: number;
  gid: number;
  /** Command name (comm, at most 15 characters). */
  fname: string;
  /** Command line, at most 79 characters, arguments separated by spaces. */
  psargs: string;
  /** State letter: R, S, D, T, Z, ... */
  state: string;
  nice: number;
  flag: bigint;
}

export interface MappedFile {
  start: bigint;
  end: bigint;
  /** File offset in pages, as stored in NT_FILE. */
  pageOffset: bigint;
  /** File offset in bytes (pageOffset * page size). */
  fileOffset: bigint;
  path: string;
}

export interface XsaveComponent {
  type: number;
  size: number;
  offset: number;
  flags: number;
}

export interface CoreImage {
  path: string;
  /** Apparent size (st_size). */
  fileBytes: number;
  /** Space used on disk (st_blocks * 512): less than fileBytes for a sparse file. */
  diskBytes: number;
  /** Number of program headers (after extended numbering). */
  phnum: number;
  loads: LoadSegment[];
  notes: NoteInfo[];
  threads: CoreThread[];
  /** NT_PRPSINFO, or null if the core has none. */
  process: CoreProcess | null;
  /** NT_AUXV up to (not including) AT_NULL. */
  auxv: Array<[number, bigint]>;
  /** NT_FILE page size (0 if no NT_FILE). */
  filePageSize: number;
  files: MappedFile[];
  /** The first NT_SIGINFO (the kernel writes one, for the signal that caused the dump). */
  siginfo: SigInfo | null;
  /** NT_X86_XSAVE_LAYOUT, if present. */
  xsaveLayout: XsaveComponent[] | null;
  stasisNotes: StasisNote[];
  /** Oddities that do not stop the image being read (missing notes, odd sizes, overlaps). */
  warnings: string[];
  /** Reads memory from the PT_LOAD segments covering [vaddr, vaddr + length). */
  readMemory(vaddr: bigint | number, length: number): Buffer;
  /** Reads the descriptor of a note. */
  readNote(note: NoteInfo): Buffer;
  /** The PT_LOAD segment containing vaddr, if any. */
  findLoad(vaddr: bigint | number): LoadSegment | undefined;
}

/** Largest PT_NOTE segment accepted; real ones are kilobytes to a few megabytes. */
const MAX_NOTE_SEGMENT = 1 << 30;

function bad(path: string, what: string, cause?: unknown): StasisError {
  return new StasisError('BAD_IMAGE', `${path}: ${what}`, { path, cause });
}

function hex(v: bigint | number): string {
  return '0x' + v.toString(16);
}

function readAt(fd: number, path: string, position: number, length: number, what: string): Buffer {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    let n: number;
    try {
      n = fs.readSync(fd, buf, done, length - done, position + done);
    } catch (err) {
      throw bad(path, `cannot read ${what}: ${(err as Error).message}`, err);
    }
    if (n === 0) throw bad(path, `truncated: ${what} ends past the end of the file`);
    done += n;
  }
  return buf;
}

function cString(buf: Buffer, start: number, size: number): string {
  const field = buf.subarray(start, start + size);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? field.length : nul).toString('utf8');
}

function flagsString(f: number): string {
  return (f & PF_R ? 'r' : '-') + (f & PF_W ? 'w' : '-') + (f & PF_X ? 'x' : '-');
}

const STASIS_NOTE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(STASIS_NOTE).map(([name, type]) => [type, `STASIS_${name}`]));

function typeName(owner: string, type: number): string {
  if (owner === STASIS_OWNER) return STASIS_NOTE_NAMES[type] ?? `type ${hex(type)}`;
  return NOTE_TYPE_NAMES[owner]?.[type] ?? `type ${hex(type)}`;
}

function parseSiginfo(d: Buffer): SigInfo {
  return {
    signo: d.readInt32LE(SIGINFO.si_signo),
    errno: d.readInt32LE(SIGINFO.si_errno),
    code: d.readInt32LE(SIGINFO.si_code),
    pid: d.readInt32LE(SIGINFO.si_pid),
    uid: d.readUInt32LE(SIGINFO.si_uid),
    addr: d.readBigUInt64LE(SIGINFO.si_addr),
  };
}

function eTypeName(t: number): string {
  switch (t) {
    case ET_REL: return 'a relocatable object (ET_REL)';
    case ET_EXEC: return 'an executable (ET_EXEC)';
    case ET_DYN: return 'a shared object or PIE executable (ET_DYN)';
    default: return `of ELF type ${t}`;
  }
}

/**
 * Reads the headers and notes of a core file. Throws StasisError('BAD_IMAGE') if the file
 * cannot be read, is not an ELF64 little-endian x86_64 core, or is damaged or truncated.
 */
export function readCore(path: string): CoreImage {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.message;
    throw new StasisError('BAD_IMAGE', `cannot open image ${path}: ${why}`, { path, errno: e.code, cause: err });
  }
  try {
    return parse(fd, path);
  } finally {
    fs.closeSync(fd);
  }
}

function parse(fd: number, path: string): CoreImage {
  const st = fs.fstatSync(fd);
  if (!st.isFile()) throw bad(path, st.isDirectory() ? 'is a directory, not a core file' : 'is not a regular file');
  const fileBytes = st.size;
  const diskBytes = st.blocks * 512;
  const warnings: string[] = [];

  // --- ELF header
  if (fileBytes < EHDR_SIZE) {
    if (fileBytes >= 4 && !readAt(fd, path, 0, 4, 'the ELF magic').equals(ELF_MAGIC)) {
      throw bad(path, 'not an ELF file (bad magic number)');
    }
    throw bad(path, `too short for an ELF header (${fileBytes} bytes): empty or truncated`);
  }
  const eh = readAt(fd, path, 0, EHDR_SIZE, 'the ELF header');
  if (!eh.subarray(0, 4).equals(ELF_MAGIC)) {
    throw bad(path, `not an ELF file (bad magic number ${eh.subarray(0, 4).toString('hex')})`);
  }
  if (eh[EI_CLASS] !== ELFCLASS64) throw bad(path, `not a 64-bit ELF file (EI_CLASS ${eh[EI_CLASS]})`);
  if (eh[EI_DATA] !== ELFDATA2LSB) throw bad(path, `not a little-endian ELF file (EI_DATA ${eh[EI_DATA]})`);
  const eType = eh.readUInt16LE(EHDR.e_type);
  if (eType !== ET_CORE) throw bad(path, `not a core file: it is ${eTypeName(eType)}`);
  const machine = eh.readUInt16LE(EHDR.e_machine);
  if (machine !== EM_X86_64) throw bad(path, `a core for machine ${machine}, not x86_64 (${EM_X86_64})`);
  const phoff = eh.readBigUInt64LE(EHDR.e_phoff);
  const phentsize = eh.readUInt16LE(EHDR.e_phentsize);
  let phnum = eh.readUInt16LE(EHDR.e_phnum);
  if (phnum === PN_XNUM) {
    // Extended numbering: the real count is sh_info of section header 0.
    const shoff = eh.readBigUInt64LE(EHDR.e_shoff);
    if (shoff === 0n || shoff + BigInt(SHDR_SIZE) > BigInt(fileBytes)) {
      throw bad(path, `e_phnum is PN_XNUM but section header 0 (at ${hex(shoff)}) is missing or past the end of the file`);
    }
    const sh = readAt(fd, path, Number(shoff), SHDR_SIZE, 'section header 0');
    phnum = sh.readUInt32LE(SHDR.sh_info);
  }
  if (phnum === 0) throw bad(path, 'has no program headers');
  if (phentsize !== PHDR_SIZE) throw bad(path, `program header size is ${phentsize}, expected ${PHDR_SIZE}`);
  const phEnd = phoff + BigInt(phnum) * BigInt(PHDR_SIZE);
  if (phEnd > BigInt(fileBytes)) {
    throw bad(path, `truncated: the ${phnum} program headers end at ${phEnd} bytes, the file has ${fileBytes}`);
  }
  const ph = readAt(fd, path, Number(phoff), phnum * PHDR_SIZE, 'the program headers');

  // --- Program headers
  const loads: LoadSegment[] = [];
  const noteSegments: Array<{ offset: bigint; size: bigint; index: number }> = [];
  for (let i = 0; i < phnum; i++) {
    const o = i * PHDR_SIZE;
    const type = ph.readUInt32LE(o + PHDR.p_type);
    const offset = ph.readBigUInt64LE(o + PHDR.p_offset);
    const filesz = ph.readBigUInt64LE(o + PHDR.p_filesz);
    if (type === PT_LOAD) {
      const vaddr = ph.readBigUInt64LE(o + PHDR.p_vaddr);
      const memsz = ph.readBigUInt64LE(o + PHDR.p_memsz);
      if (filesz > memsz) {
        throw bad(path, `segment ${i} at ${hex(vaddr)} stores ${filesz} bytes but maps only ${memsz}`);
      }
      if (vaddr + memsz > 1n << 64n) throw bad(path, `segment ${i} at ${hex(vaddr)} wraps around the address space`);
      if (filesz > 0n && offset + filesz > BigInt(fileBytes)) {
        throw bad(path, `truncated: segment ${i} (memory ${hex(vaddr)}) ends at file offset ${offset + filesz}, ` +
          `the file has ${fileBytes} bytes`);
      }
      loads.push({ index: i, vaddr, memsz, filesz, offset, flags: flagsString(ph.readUInt32LE(o + PHDR.p_flags)),
        align: ph.readBigUInt64LE(o + PHDR.p_align) });
    } else if (type === PT_NOTE) {
      if (offset + filesz > BigInt(fileBytes)) {
        throw bad(path, `truncated: note segment ${i} ends at file offset ${offset + filesz}, the file has ${fileBytes} bytes`);
      }
      if (filesz > BigInt(MAX_NOTE_SEGMENT)) throw bad(path, `note segment ${i} is implausibly large (${filesz} bytes)`);
      noteSegments.push({ offset, size: filesz, index: i });
    }
  }
  if (noteSegments.length === 0) throw bad(path, 'has no PT_NOTE segment (no threads, registers or process information)');

  const sorted = [...loads].sort((a, b) => (a.vaddr < b.vaddr ? -1 : a.vaddr > b.vaddr ? 1 : 0));
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (prev.vaddr + prev.memsz > cur.vaddr) {
      warnings.push(`segments ${prev.index} and ${cur.index} overlap at ${hex(cur.vaddr)}`);
    }
  }

  // --- Notes
  const notes: NoteInfo[] = [];
  const threads: CoreThread[] = [];
  const stasisNotes: StasisNote[] = [];
  let process: CoreProcess | null = null;
  let auxv: Array<[number, bigint]> | null = null;
  let files: MappedFile[] | null = null;
  let filePageSize = 0;
  let siginfo: SigInfo | null = null;
  let xsaveLayout: XsaveComponent[] | null = null;

  const align = (n: number) => (n + NOTE_ALIGN - 1) & ~(NOTE_ALIGN - 1);

  for (const seg of noteSegments) {
    const base = Number(seg.offset);
    const buf = readAt(fd, path, base, Number(seg.size), `note segment ${seg.index}`);
    let p = 0;
    while (p < buf.length) {
      const at = base + p;
      if (buf.length - p < NHDR_SIZE) {
        // The kernel never pads the segment; trailing zeros are harmless, anything else is not.
        if (buf.subarray(p).every((b) => b === 0)) break;
        throw bad(path, `damaged note at file offset ${at}: only ${buf.length - p} bytes left for a 12-byte note header`);
      }
      const namesz = buf.readUInt32LE(p);
      const descsz = buf.readUInt32LE(p + 4);
      const type = buf.readUInt32LE(p + 8);
      const nameStart = p + NHDR_SIZE;
      const descStart = nameStart + align(namesz);
      if (namesz > buf.length || descStart > buf.length || descsz > buf.length - descStart) {
        throw bad(path, `damaged note at file offset ${at}: name (${namesz} bytes) or descriptor (${descsz} bytes) ` +
          `runs past the end of the note segment`);
      }
      const owner = cString(buf, nameStart, namesz);
      const desc = buf.subarray(descStart, descStart + descsz);
      const current = threads.length > 0 ? threads[threads.length - 1]! : null;
      const note: NoteInfo = { owner, type, typeName: typeName(owner, type), size: descsz, offset: base + descStart,
        thread: current ? current.tid : null };
      const where = () => `${note.typeName} note at file offset ${at}`;
      const needSize = (min: number) => {
        if (descsz < min) throw bad(path, `damaged ${where()}: ${descsz} bytes, expected ${min}`);
      };

      if (owner === NOTE_OWNER_CORE) {
        switch (type) {
          case NT_PRSTATUS: {
            needSize(PRSTATUS_SIZE);
            const regs: Record<string, bigint> = {};
            USER_REGS_NAMES.forEach((name, i) => { regs[name] = desc.readBigUInt64LE(PRSTATUS.pr_reg + 8 * i); });
            const tid = desc.readInt32LE(PRSTATUS.pr_pid);
            threads.push({
              tid,
              signal: desc.readInt16LE(PRSTATUS.pr_cursig),
              ppid: desc.readInt32LE(PRSTATUS.pr_ppid),
              pgrp: desc.readInt32LE(PRSTATUS.pr_pgrp),
              sid: desc.readInt32LE(PRSTATUS.pr_sid),
              sigpend: desc.readBigUInt64LE(PRSTATUS.pr_sigpend),
              sighold: desc.readBigUInt64LE(PRSTATUS.pr_sighold),
              regs,
              pc: regs['rip']!,
              sp: regs['rsp']!,
              xstateSize: 0,
            });
            note.thread = tid;
            break;
          }
          case NT_PRPSINFO: {
            needSize(PRPSINFO_SIZE);
            if (process) warnings.push(`more than one NT_PRPSINFO note; using the first`);
            else {
              process = {
                pid: desc.readInt32LE(PRPSINFO.pr_pid),
                ppid: desc.readInt32LE(PRPSINFO.pr_ppid),
                pgrp: desc.readInt32LE(PRPSINFO.pr_pgrp),
                sid: desc.readInt32LE(PRPSINFO.pr_sid),
                uid: desc.readUInt32LE(PRPSINFO.pr_uid),
                gid: desc.readUInt32LE(PRPSINFO.pr_gid),
                fname: cString(desc, PRPSINFO.pr_fname, PRPSINFO_FNAME_SIZE),
                psargs: cString(desc, PRPSINFO.pr_psargs, PRPSINFO_PSARGS_SIZE).trimEnd(),
                state: desc[PRPSINFO.pr_sname] ? String.fromCharCode(desc[PRPSINFO.pr_sname]!) : '',
                nice: desc.readInt8(PRPSINFO.pr_nice),
                flag: desc.readBigUInt64LE(PRPSINFO.pr_flag),
              };
            }
            break;
          }
          case NT_SIGINFO: {
            needSize(SIGINFO_SIZE);
            const si = parseSiginfo(desc);
            if (!siginfo) siginfo = si;
            if (current && !current.siginfo) current.siginfo = si;
            break;
          }
          case NT_AUXV: {
            if (descsz % AUXV_ENTRY_SIZE !== 0) {
              throw bad(path, `damaged ${where()}: ${descsz} bytes is not a whole number of 16-byte entries`);
            }
            if (auxv) { warnings.push('more than one NT_AUXV note; using the first'); break; }
            auxv = [];
            for (let o = 0; o < descsz; o += AUXV_ENTRY_SIZE) {
              const t = desc.readBigUInt64LE(o);
              if (t === BigInt(AT_NULL)) break;
              auxv.push([Number(t), desc.readBigUInt64LE(o + 8)]);
            }
            break;
          }
          case NT_FILE: {
            if (files) { warnings.push('more than one NT_FILE note; using the first'); break; }
            needSize(NT_FILE_LAYOUT.entries);
            const count = desc.readBigUInt64LE(NT_FILE_LAYOUT.count);
            const pageSize = desc.readBigUInt64LE(NT_FILE_LAYOUT.pageSize);
            const tableEnd = BigInt(NT_FILE_LAYOUT.entries) + count * BigInt(NT_FILE_LAYOUT.entrySize);
            if (tableEnd > BigInt(descsz)) {
              throw bad(path, `damaged ${where()}: ${count} entries do not fit in ${descsz} bytes`);
            }
            filePageSize = Number(pageSize);
            files = [];
            let s = Number(tableEnd);
            for (let i = 0; i < Number(count); i++) {
              const e = NT_FILE_LAYOUT.entries + i * NT_FILE_LAYOUT.entrySize;
              const nul = desc.indexOf(0, s);
              if (nul < 0) throw bad(path, `damaged ${where()}: file name ${i} of ${count} is missing or unterminated`);
              const pageOffset = desc.readBigUInt64LE(e + NT_FILE_LAYOUT.entryFileOfs);
              files.push({
                start: desc.readBigUInt64LE(e + NT_FILE_LAYOUT.entryStart),
                end: desc.readBigUInt64LE(e + NT_FILE_LAYOUT.entryEnd),
                pageOffset,
                fileOffset: pageOffset * pageSize,
                path: desc.toString('utf8', s, nul),
              });
              s = nul + 1;
            }
            break;
          }
          case NT_FPREGSET: {
            if (!current) { warnings.push(`${where()} precedes every NT_PRSTATUS; ignored`); break; }
            needSize(FPREGSET_SIZE);
            current.fpregs = Buffer.from(desc);
            break;
          }
        }
      } else if (owner === NOTE_OWNER_LINUX) {
        if (type === NT_X86_XSTATE) {
          if (!current) warnings.push(`${where()} precedes every NT_PRSTATUS; ignored`);
          else {
            current.xstate = Buffer.from(desc);
            current.xstateSize = descsz;
            if (descsz >= XSAVE.xcr0 + 8) current.xcr0 = desc.readBigUInt64LE(XSAVE.xcr0);
          }
        } else if (type === NT_X86_XSAVE_LAYOUT) {
          xsaveLayout = [];
          for (let o = 0; o + XSAVE_LAYOUT_ENTRY_SIZE <= descsz; o += XSAVE_LAYOUT_ENTRY_SIZE) {
            xsaveLayout.push({
              type: desc.readUInt32LE(o + XSAVE_LAYOUT.type),
              size: desc.readUInt32LE(o + XSAVE_LAYOUT.size),
              offset: desc.readUInt32LE(o + XSAVE_LAYOUT.offset),
              flags: desc.readUInt32LE(o + XSAVE_LAYOUT.flags),
            });
          }
        }
        // Other LINUX notes (NT_PRXFPREG, NT_386_TLS, NT_X86_SHSTK, ...) are per-thread
        // register sets this reader lists but does not decode.
      } else if (owner === NOTE_OWNER_STASIS) {
        stasisNotes.push({ ...note, data: Buffer.from(desc) });
      }
      notes.push(note);
      p = descStart + align(descsz);
    }
  }

  if (threads.length === 0) warnings.push('no NT_PRSTATUS note: the core has no threads');
  if (!process) warnings.push('no NT_PRPSINFO note: process id and command are unknown');
  if (!auxv) warnings.push('no NT_AUXV note: gdb cannot find the dynamic linker and shows wrong values for globals');
  const leader = process ? threads.find((t) => t.tid === (process as CoreProcess).pid) : undefined;
  if (process && threads.length > 0 && !leader) {
    warnings.push(`no thread has the process id ${process.pid} as its TID`);
  }
  const tids = new Set<number>();
  for (const t of threads) {
    if (tids.has(t.tid)) warnings.push(`TID ${t.tid} has more than one NT_PRSTATUS`);
    tids.add(t.tid);
  }

  return makeImage({
    path, fileBytes, diskBytes, phnum, loads, notes, threads, process, auxv: auxv ?? [],
    filePageSize, files: files ?? [], siginfo, xsaveLayout, stasisNotes, warnings,
  }, sorted);
}

type ImageData = Omit<CoreImage, 'readMemory' | 'readNote' | 'findLoad'>;

function makeImage(data: ImageData, sorted: LoadSegment[]): CoreImage {
  const path = data.path;

  /** Index in `sorted` of the segment containing addr, or -1. */
  const find = (addr: bigint): number => {
    let lo = 0;
    let hi = sorted.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = sorted[mid]!;
      if (addr < s.vaddr) hi = mid - 1;
      else if (addr >= s.vaddr + s.memsz) lo = mid + 1;
      else return mid;
    }
    return -1;
  };

  const withFd = <T>(fn: (fd: number) => T): T => {
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch (err) {
      throw new StasisError('BAD_IMAGE', `cannot reopen image ${path}: ${(err as Error).message}`, { path, cause: err });
    }
    try {
      return fn(fd);
    } finally {
      fs.closeSync(fd);
    }
  };

  return {
    ...data,
    findLoad(vaddr) {
      const i = find(BigInt(vaddr));
      return i < 0 ? undefined : sorted[i];
    },
    readNote(note) {
      return withFd((fd) => readAt(fd, path, note.offset, note.size, `the ${note.typeName} note`));
    },
    readMemory(vaddr, length) {
      if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`bad length ${length}`);
      const start = BigInt(vaddr);
      const out = Buffer.alloc(length); // zero-filled: memsz beyond filesz reads as zeros
      if (length === 0) return out;
      return withFd((fd) => {
        let addr = start;
        let done = 0;
        let i = find(addr);
        while (done < length) {
          const s = i >= 0 ? sorted[i] : undefined;
          if (!s || addr < s.vaddr || addr >= s.vaddr + s.memsz) {
            throw new StasisError('BAD_IMAGE',
              `${path}: no memory at ${hex(addr)} (reading ${length} bytes at ${hex(start)})`, { path });
          }
          const inSeg = addr - s.vaddr;
          const n = Number(BigInt(length - done) < s.memsz - inSeg ? BigInt(length - done) : s.memsz - inSeg);
          if (inSeg < s.filesz) {
            const stored = Number(s.filesz - inSeg < BigInt(n) ? s.filesz - inSeg : BigInt(n));
            const chunk = readAt(fd, path, Number(s.offset + inSeg), stored, `memory at ${hex(addr)}`);
            chunk.copy(out, done);
          }
          done += n;
          addr += BigInt(n);
          i += 1;
        }
        return out;
      });
    },
  };
}
