/**
 * What a restored process relies on finding unchanged: the files it maps and the files it
 * has open. Each is recorded at dump time with size, mtime and, for ELF files, the GNU
 * build-id; restore refuses, naming the file and what changed, unless told to ignore it.
 */
import { statSync, openSync, readSync, closeSync } from 'node:fs';
import { StasisError } from '../errors.js';

export interface FileIdentity {
  path: string;
  size: number;
  /** Modification time in nanoseconds since the epoch, as a decimal string. */
  mtimeNs: string;
  /** Hex GNU build-id of an ELF file, when it has one. */
  buildId?: string;
}

export function identifyFile(path: string): FileIdentity {
  const st = statSync(path, { bigint: true });
  const identity: FileIdentity = { path, size: Number(st.size), mtimeNs: st.mtimeNs.toString() };
  const buildId = readBuildId(path);
  if (buildId) identity.buildId = buildId;
  return identity;
}

/** Returns null when the file is as recorded, else what differs. */
export function describeChange(expected: FileIdentity): string | null {
  let now: FileIdentity;
  try {
    now = identifyFile(expected.path);
  } catch {
    return 'it no longer exists';
  }
  if (expected.buildId && now.buildId !== expected.buildId) return `its build-id changed (${expected.buildId} -> ${now.buildId ?? 'none'})`;
  if (now.size !== expected.size) return `its size changed (${expected.size} -> ${now.size} bytes)`;
  if (now.mtimeNs !== expected.mtimeNs) return 'it was modified since the checkpoint (mtime differs)';
  return null;
}

/** Throws naming the first file that changed, unless `ignore` (--ignore-changed-files). */
export function verifyFiles(identities: FileIdentity[], ignore: boolean): string[] {
  const warnings: string[] = [];
  for (const identity of identities) {
    const change = describeChange(identity);
    if (!change) continue;
    if (!ignore) {
      throw new StasisError('BAD_IMAGE', `${identity.path}: ${change}; the image depends on it (use --ignore-changed-files to restore anyway)`, { path: identity.path });
    }
    warnings.push(`${identity.path}: ${change}`);
  }
  return warnings;
}

/** The NT_GNU_BUILD_ID note of an ELF64 file, read from its program headers. */
export function readBuildId(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null;
  }
  try {
    const ehdr = Buffer.alloc(64);
    if (readSync(fd, ehdr, 0, 64, 0) < 64 || ehdr.readUInt32BE(0) !== 0x7f454c46 || ehdr[4] !== 2) return null;
    const phoff = Number(ehdr.readBigUInt64LE(32));
    const phentsize = ehdr.readUInt16LE(54);
    const phnum = ehdr.readUInt16LE(56);
    const phdrs = Buffer.alloc(phentsize * phnum);
    readSync(fd, phdrs, 0, phdrs.length, phoff);
    for (let i = 0; i < phnum; i++) {
      const ph = phdrs.subarray(i * phentsize);
      if (ph.readUInt32LE(0) !== 4) continue; // PT_NOTE
      const offset = Number(ph.readBigUInt64LE(8));
      const size = Number(ph.readBigUInt64LE(32));
      const notes = Buffer.alloc(Math.min(size, 1 << 16));
      readSync(fd, notes, 0, notes.length, offset);
      for (let at = 0; at + 12 <= notes.length; ) {
        const namesz = notes.readUInt32LE(at);
        const descsz = notes.readUInt32LE(at + 4);
        const type = notes.readUInt32LE(at + 8);
        const nameAt = at + 12;
        const descAt = nameAt + ((namesz + 3) & ~3);
        if (type === 3 && notes.toString('latin1', nameAt, nameAt + namesz - 1) === 'GNU') {
          return notes.subarray(descAt, descAt + descsz).toString('hex');
        }
        at = descAt + ((descsz + 3) & ~3);
      }
    }
    return null;
  } finally {
    closeSync(fd);
  }
}
