/**
 * Encoders for the notes of an x86_64 ELF core, byte for byte as fs/binfmt_elf.c writes
 * them (struct elf_prstatus, elf_prpsinfo, NT_FILE) so that gdb, readelf and eu-stack
 * read ours as they read the kernel's.
 */
import { USER_REGS_SIZE, type Registers } from '../sys/regs.js';
import {
  NT_PRSTATUS, NT_PRFPREG, NT_PRPSINFO, NT_AUXV, NT_SIGINFO, NT_FILE, NT_X86_XSTATE, NT_X86_XSAVE_LAYOUT, XSAVE_LAYOUT, XSAVE_LAYOUT_ENTRY_SIZE, NOTE_OWNER_CORE, NOTE_OWNER_LINUX,
  PRSTATUS, PRSTATUS_SIZE, PRPSINFO, PRPSINFO_SIZE, PRPSINFO_FNAME_SIZE, PRPSINFO_PSARGS_SIZE, SIGINFO_SIZE, PAGE_SIZE,
} from './elf-constants.js';

export interface Note {
  owner: string;
  type: number;
  desc: Buffer;
}

/** Encoded size of a note: 12-byte header, owner name with its NUL, description, each padded to 4. */
export function noteSize(note: Note): number {
  return 12 + align4(Buffer.byteLength(note.owner) + 1) + align4(note.desc.length);
}

export function encodeNotes(notes: Note[]): Buffer {
  const out = Buffer.alloc(notes.reduce((n, note) => n + noteSize(note), 0));
  let at = 0;
  for (const note of notes) {
    const nameSize = Buffer.byteLength(note.owner) + 1;
    out.writeUInt32LE(nameSize, at);
    out.writeUInt32LE(note.desc.length, at + 4);
    out.writeUInt32LE(note.type >>> 0, at + 8);
    out.write(note.owner, at + 12, 'latin1');
    at += 12 + align4(nameSize);
    note.desc.copy(out, at);
    at += align4(note.desc.length);
  }
  return out;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

export interface PrstatusFields {
  tid: number;
  ppid: number;
  pgrp: number;
  sid: number;
  /** pr_cursig: the signal the thread stopped with (0 for a live dump). */
  cursig: number;
  sigpend: bigint;
  sighold: bigint;
  utimeTicks: number;
  stimeTicks: number;
  cutimeTicks: number;
  cstimeTicks: number;
  regs: Registers;
}

const TICKS_PER_SECOND = 100;

function writeTimeval(buffer: Buffer, at: number, ticks: number): void {
  buffer.writeBigInt64LE(BigInt(Math.floor(ticks / TICKS_PER_SECOND)), at);
  buffer.writeBigInt64LE(BigInt((ticks % TICKS_PER_SECOND) * (1_000_000 / TICKS_PER_SECOND)), at + 8);
}

export function prstatusNote(f: PrstatusFields): Note {
  const d = Buffer.alloc(PRSTATUS_SIZE);
  d.writeInt32LE(f.cursig, PRSTATUS.pr_info_si_signo);
  d.writeInt16LE(f.cursig, PRSTATUS.pr_cursig);
  d.writeBigUInt64LE(f.sigpend, PRSTATUS.pr_sigpend);
  d.writeBigUInt64LE(f.sighold, PRSTATUS.pr_sighold);
  d.writeInt32LE(f.tid, PRSTATUS.pr_pid);
  d.writeInt32LE(f.ppid, PRSTATUS.pr_ppid);
  d.writeInt32LE(f.pgrp, PRSTATUS.pr_pgrp);
  d.writeInt32LE(f.sid, PRSTATUS.pr_sid);
  writeTimeval(d, PRSTATUS.pr_utime, f.utimeTicks);
  writeTimeval(d, PRSTATUS.pr_stime, f.stimeTicks);
  writeTimeval(d, PRSTATUS.pr_cutime, f.cutimeTicks);
  writeTimeval(d, PRSTATUS.pr_cstime, f.cstimeTicks);
  f.regs.bytes.copy(d, PRSTATUS.pr_reg, 0, USER_REGS_SIZE);
  d.writeInt32LE(1, PRSTATUS.pr_fpvalid);
  return { owner: NOTE_OWNER_CORE, type: NT_PRSTATUS, desc: d };
}

export interface PrpsinfoFields {
  /** One letter as /proc/PID/status shows it. */
  state: string;
  nice: number;
  flags: number;
  uid: number;
  gid: number;
  pid: number;
  ppid: number;
  pgrp: number;
  sid: number;
  comm: string;
  args: string[];
}

export function prpsinfoNote(f: PrpsinfoFields): Note {
  const d = Buffer.alloc(PRPSINFO_SIZE);
  // fill_psinfo(): pr_state is the index of the state in "RSDTZW", pr_sname its letter.
  const index = 'RSDTZW'.indexOf(f.state.toUpperCase());
  d.writeInt8(index < 0 ? 0 : index, PRPSINFO.pr_state);
  d.write(index < 0 ? '.' : 'RSDTZW'[index], PRPSINFO.pr_sname, 'latin1');
  d.writeInt8(f.state === 'Z' ? 1 : 0, PRPSINFO.pr_zomb);
  d.writeInt8(f.nice, PRPSINFO.pr_nice);
  d.writeBigUInt64LE(BigInt(f.flags), PRPSINFO.pr_flag);
  d.writeUInt32LE(f.uid, PRPSINFO.pr_uid);
  d.writeUInt32LE(f.gid, PRPSINFO.pr_gid);
  d.writeInt32LE(f.pid, PRPSINFO.pr_pid);
  d.writeInt32LE(f.ppid, PRPSINFO.pr_ppid);
  d.writeInt32LE(f.pgrp, PRPSINFO.pr_pgrp);
  d.writeInt32LE(f.sid, PRPSINFO.pr_sid);
  Buffer.from(f.comm, 'latin1').copy(d, PRPSINFO.pr_fname, 0, PRPSINFO_FNAME_SIZE - 1);
  Buffer.from(f.args.join(' '), 'latin1').copy(d, PRPSINFO.pr_psargs, 0, PRPSINFO_PSARGS_SIZE - 1);
  return { owner: NOTE_OWNER_CORE, type: NT_PRPSINFO, desc: d };
}

export function siginfoNote(siginfo: Buffer | null): Note {
  const d = Buffer.alloc(SIGINFO_SIZE);
  siginfo?.copy(d, 0, 0, SIGINFO_SIZE);
  return { owner: NOTE_OWNER_CORE, type: NT_SIGINFO, desc: d };
}

export function auxvNote(auxv: Buffer): Note {
  return { owner: NOTE_OWNER_CORE, type: NT_AUXV, desc: auxv };
}

export interface FileMapping {
  start: number;
  end: number;
  /** Offset in the file in bytes; NT_FILE stores it in pages. */
  offset: number;
  path: string;
}

/** NT_FILE: count, page size, then (start, end, offset in pages) per mapping, then the NUL-terminated paths. */
export function fileNote(files: FileMapping[], pageSize = PAGE_SIZE): Note {
  const names = Buffer.concat(files.map((f) => Buffer.from(f.path + '\0', 'latin1')));
  const d = Buffer.alloc(16 + files.length * 24 + names.length);
  d.writeBigUInt64LE(BigInt(files.length), 0);
  d.writeBigUInt64LE(BigInt(pageSize), 8);
  files.forEach((f, i) => {
    d.writeBigUInt64LE(BigInt(f.start), 16 + i * 24);
    d.writeBigUInt64LE(BigInt(f.end), 24 + i * 24);
    d.writeBigUInt64LE(BigInt(f.offset / pageSize), 32 + i * 24);
  });
  names.copy(d, 16 + files.length * 24);
  return { owner: NOTE_OWNER_CORE, type: NT_FILE, desc: d };
}

export function fpregsetNote(fpregs: Buffer): Note {
  return { owner: NOTE_OWNER_CORE, type: NT_PRFPREG, desc: fpregs };
}

/**
 * NT_X86_XSAVE_LAYOUT (kernel >= 6.12): struct x86_xfeat_component {type, size, offset,
 * flags} per component, telling a debugger where each one is in NT_X86_XSTATE. Ours
 * describes the architectural layout our XSTATE notes use.
 */
export function xsaveLayoutNote(components: Array<{ bit: number; offset: number; size: number }>): Note {
  const d = Buffer.alloc(components.length * XSAVE_LAYOUT_ENTRY_SIZE);
  components.forEach((c, i) => {
    const at = i * XSAVE_LAYOUT_ENTRY_SIZE;
    d.writeUInt32LE(c.bit, at + XSAVE_LAYOUT.type);
    d.writeUInt32LE(c.size, at + XSAVE_LAYOUT.size);
    d.writeUInt32LE(c.offset, at + XSAVE_LAYOUT.offset);
  });
  return { owner: NOTE_OWNER_LINUX, type: NT_X86_XSAVE_LAYOUT, desc: d };
}

export function xstateNote(xstate: Buffer): Note {
  return { owner: NOTE_OWNER_LINUX, type: NT_X86_XSTATE, desc: xstate };
}
