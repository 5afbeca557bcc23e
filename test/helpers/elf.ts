/**
 * Looking at core files from outside: `readelf -n` (notes) and `readelf -l` (segments),
 * and making the kernel's own core of a target to compare against; editing a stasis note
 * of an image in place.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { run, startTarget, waitSettled, type StartOptions } from './targets.js';
import { decodeStasisNote, encodeStasisNote, STASIS_OWNER } from '../../src/image/stasis-notes.js';

export interface Note {
  owner: string;
  size: number;
  /** readelf's name (NT_PRSTATUS, ...) or "0x205" for types readelf does not know */
  type: string;
  /** readelf's hex dump of the descriptor, for the note types it does not decode */
  data?: string;
}

/** The notes of an ELF file, in file order, as `readelf -n -W` lists them. */
export async function readNotes(file: string): Promise<Note[]> {
  const r = await run('readelf', ['-n', '-W', file]);
  if (r.code !== 0) throw new Error(`readelf -n ${file} failed: ${r.stderr}`);
  const notes: Note[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = line.match(/^\s+(\S+)\s+(0x[0-9a-f]+)\s+(?:(NT_\w+)|Unknown note type: \((0x[0-9a-f]+)\))/);
    if (m) notes.push({ owner: m[1], size: parseInt(m[2], 16), type: m[3] ?? `0x${parseInt(m[4], 16).toString(16)}`, data: line.match(/description data: ([0-9a-f ]+)/)?.[1].trim() });
  }
  if (notes.length === 0) throw new Error(`readelf found no notes in ${file}:\n${r.stdout}`);
  return notes;
}

export interface Segment {
  type: string;
  offset: number;
  vaddr: number;
  filesz: number;
  memsz: number;
  flags: string;
}

/** The program headers of an ELF file (`readelf -l -W`). */
export async function readSegments(file: string): Promise<Segment[]> {
  const r = await run('readelf', ['-l', '-W', file]);
  if (r.code !== 0) throw new Error(`readelf -l ${file} failed: ${r.stderr}`);
  const out: Segment[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = line.match(/^\s+([A-Z_]+|LOOS\+\S+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+([RWE ]+?)\s+0x/);
    if (m) {
      out.push({
        type: m[1],
        offset: parseInt(m[2], 16),
        vaddr: parseInt(m[3], 16),
        filesz: parseInt(m[4], 16),
        memsz: parseInt(m[5], 16),
        flags: m[6].trim(),
      });
    }
  }
  return out;
}

/** "OWNER TYPE size" per note, comma-separated. */
export function noteListing(notes: Note[]): string {
  return notes.map((n) => `${n.owner} ${n.type} ${n.size}`).join(', ');
}

/**
 * Makes the kernel's own core of a fresh instance of target `name`: starts it with
 * `ulimit -c unlimited` in a temporary cwd, waits until it has settled, sends SIGABRT
 * and returns the core's path (the caller's temporary directory holds it).
 * Returns undefined when this system's core_pattern does not write a file in the cwd.
 */
export async function kernelCore(t: TestContext, name: string, dir: string, opts: StartOptions & { spinning?: number } = {}): Promise<string | undefined> {
  const pattern = fs.readFileSync('/proc/sys/kernel/core_pattern', 'utf8').trim();
  if (pattern.startsWith('|') || pattern.includes('/')) return undefined;
  const target = await startTarget(t, name, { ...opts, cwd: dir, shellPrefix: 'ulimit -c unlimited' });
  await waitSettled(target.pid, { spinning: opts.spinning ?? 0 });
  process.kill(target.pid, 'SIGABRT'); // not SIGQUIT: shells start background jobs with it ignored
  const exit = await target.exited;
  if (exit.signal !== 'SIGABRT') throw new Error(`${name} did not die of SIGABRT: ${JSON.stringify(exit)}`);
  // core_pattern "core" with core_uses_pid=1 gives core.PID; %p and friends are expanded
  const usesPid = fs.readFileSync('/proc/sys/kernel/core_uses_pid', 'utf8').trim() === '1';
  const expected = pattern.replace(/%p/g, String(target.pid)).replace(/%e/g, name) + (usesPid && !pattern.includes('%p') ? `.${target.pid}` : '');
  const file = path.join(dir, expected);
  if (!fs.existsSync(file)) {
    const found = fs.readdirSync(dir).filter((f) => f.startsWith('core'));
    throw new Error(`the kernel wrote no core at ${file} (pattern ${JSON.stringify(pattern)}; found ${found.join(', ') || 'nothing'})`);
  }
  return file;
}

/**
 * Edits one stasis note of an image, as an image made elsewhere would differ (another
 * CPU, say): decodes its JSON, lets `edit` change the state, and writes the image again
 * with the new note. The edited note may be longer or shorter than the original (a CPU's
 * model name and flag list vary from machine to machine): the note segment is re-laid and
 * everything after it (the PT_LOAD data, section headers) moves by whole pages, so that
 * each segment keeps its page alignment and its checksum. Runs of zero pages stay holes.
 */
export function rewriteStasisNote<T>(file: string, type: number, version: number, edit: (state: T) => T): void {
  const PAGE = 4096;
  const PT_NOTE = 4;
  const PN_XNUM = 0xffff;
  const image = fs.readFileSync(file);
  const phoff = Number(image.readBigUInt64LE(32));
  const shoff = Number(image.readBigUInt64LE(40));
  const phentsize = image.readUInt16LE(54);
  let phnum = image.readUInt16LE(56);
  if (phnum === PN_XNUM) phnum = image.readUInt32LE(shoff + 44); // sh_info of section header 0
  const headers = Array.from({ length: phnum }, (_, i) => phoff + i * phentsize);
  const noteHeader = headers.find((at) => image.readUInt32LE(at) === PT_NOTE);
  if (noteHeader === undefined) throw new Error(`${file} has no PT_NOTE segment`);
  const notesAt = Number(image.readBigUInt64LE(noteHeader + 8));
  const notesSize = Number(image.readBigUInt64LE(noteHeader + 32));
  const notes = image.subarray(notesAt, notesAt + notesSize);

  const parts: Buffer[] = [];
  let found = false;
  for (let at = 0; at + 12 <= notes.length; ) {
    const namesz = notes.readUInt32LE(at);
    const descsz = notes.readUInt32LE(at + 4);
    const noteType = notes.readUInt32LE(at + 8);
    const name = notes.subarray(at + 12, at + 12 + namesz).toString('latin1').replace(/\0+$/, '');
    const descAt = at + 12 + align4(namesz);
    const next = descAt + align4(descsz);
    if (!found && name === STASIS_OWNER && noteType === type) {
      const state = decodeStasisNote<T>(notes.subarray(descAt, descAt + descsz), version, `0x${type.toString(16)}`);
      const desc = encodeStasisNote(type, version, edit(state)).desc;
      const header = Buffer.from(notes.subarray(at, descAt));
      header.writeUInt32LE(desc.length, 4);
      parts.push(header, desc, Buffer.alloc(align4(desc.length) - desc.length));
      found = true;
    } else {
      parts.push(notes.subarray(at, Math.min(next, notes.length)));
    }
    at = next;
  }
  if (!found) throw new Error(`${file} has no stasis note of type 0x${type.toString(16)}`);
  const newNotes = Buffer.concat(parts);

  // Everything that lay after the notes moves by the page-rounded change in their size.
  const oldDataStart = roundUpTo(notesAt + notesSize, PAGE);
  const shift = roundUpTo(notesAt + newNotes.length, PAGE) - oldDataStart;
  const out = Buffer.alloc(image.length + shift);
  image.copy(out, 0, 0, notesAt);
  newNotes.copy(out, notesAt);
  image.copy(out, oldDataStart + shift, oldDataStart);
  out.writeBigUInt64LE(BigInt(newNotes.length), noteHeader + 32);
  if (Number(image.readBigUInt64LE(noteHeader + 40)) === notesSize) out.writeBigUInt64LE(BigInt(newNotes.length), noteHeader + 40);
  for (const at of headers) {
    const offset = Number(image.readBigUInt64LE(at + 8));
    if (at !== noteHeader && offset >= oldDataStart) out.writeBigUInt64LE(BigInt(offset + shift), at + 8);
  }
  if (shoff >= oldDataStart) out.writeBigUInt64LE(BigInt(shoff + shift), 40);
  writeSparse(`${file}.edited`, out, PAGE);
  fs.renameSync(`${file}.edited`, file);
}

/** Writes `data` to `file`, leaving every all-zero page a hole, as the image writer does. */
function writeSparse(file: string, data: Buffer, page: number): void {
  const fd = fs.openSync(file, 'w', 0o600);
  try {
    const zero = Buffer.alloc(page);
    for (let at = 0; at < data.length; at += page) {
      const chunk = data.subarray(at, Math.min(at + page, data.length));
      if (!chunk.equals(zero.subarray(0, chunk.length))) fs.writeSync(fd, chunk, 0, chunk.length, at);
    }
    fs.ftruncateSync(fd, data.length);
  } finally {
    fs.closeSync(fd);
  }
}

const roundUpTo = (n: number, to: number) => Math.ceil(n / to) * to;
const align4 = (n: number) => (n + 3) & ~3;
