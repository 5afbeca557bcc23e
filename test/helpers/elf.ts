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
 * Edits one stasis note of an image in place, as an image made elsewhere would differ
 * (another CPU, say): decodes its JSON, lets `edit` change the state, and writes it back
 * padded with spaces to the note's own size, so that nothing else in the file moves. The
 * edited JSON must not be longer than the original.
 */
export function rewriteStasisNote<T>(file: string, type: number, version: number, edit: (state: T) => T): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const header = Buffer.alloc(64);
    fs.readSync(fd, header, 0, 64, 0);
    const phoff = Number(header.readBigUInt64LE(32));
    const phentsize = header.readUInt16LE(54);
    const phnum = header.readUInt16LE(56);
    const table = Buffer.alloc(phentsize * phnum);
    fs.readSync(fd, table, 0, table.length, phoff);
    const PT_NOTE = 4;
    for (let i = 0; i < phnum; i++) {
      const ph = table.subarray(i * phentsize, (i + 1) * phentsize);
      if (ph.readUInt32LE(0) !== PT_NOTE) continue;
      const offset = Number(ph.readBigUInt64LE(8));
      const notes = Buffer.alloc(Number(ph.readBigUInt64LE(32)));
      fs.readSync(fd, notes, 0, notes.length, offset);
      for (let at = 0; at + 12 <= notes.length; ) {
        const namesz = notes.readUInt32LE(at);
        const descsz = notes.readUInt32LE(at + 4);
        const noteType = notes.readUInt32LE(at + 8);
        const name = notes.subarray(at + 12, at + 12 + namesz).toString('latin1').replace(/\0+$/, '');
        const descAt = at + 12 + align4(namesz);
        if (name === STASIS_OWNER && noteType === type) {
          const state = decodeStasisNote<T>(notes.subarray(descAt, descAt + descsz), version, `0x${type.toString(16)}`);
          const desc = encodeStasisNote(type, version, edit(state)).desc;
          if (desc.length > descsz) throw new Error(`the edited note is ${desc.length} bytes, longer than the ${descsz} it replaces`);
          fs.writeSync(fd, Buffer.concat([desc, Buffer.alloc(descsz - desc.length, ' ')]), 0, descsz, offset + descAt);
          return;
        }
        at = descAt + align4(descsz);
      }
    }
    throw new Error(`${file} has no stasis note of type 0x${type.toString(16)}`);
  } finally {
    fs.closeSync(fd);
  }
}

const align4 = (n: number) => (n + 3) & ~3;
