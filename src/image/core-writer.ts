/**
 * Writes an ELF64 ET_CORE file: the ELF header, one PT_NOTE and one PT_LOAD per mapping,
 * the notes, then each segment's data at a page-aligned offset. Pages not stored are
 * never written, so the file is sparse where memory was never touched. The file is
 * written under a temporary name in the same directory and renamed into place, so the
 * output path holds either a complete core or nothing.
 */
import { openSync, writeSync, closeSync, ftruncateSync, fsyncSync, renameSync, unlinkSync, readFileSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { StasisError } from '../errors.js';
import { type Note, encodeNotes } from './notes.js';
import { type MemorySegment, readRange, readFully } from '../resources/memory.js';
import { PAGE_SIZE } from '../proc/pagemap.js';
import { crc32 } from 'node:zlib';
import { startWriteback } from '../sys/writeback.js';
import { STASIS_OWNER, STASIS_NOTE } from './stasis-notes.js';
import {
  EHDR_SIZE, PHDR_SIZE, ELFCLASS64, ELFDATA2LSB, EV_CURRENT, ELFOSABI_NONE, ET_CORE, EM_X86_64, EHDR, PHDR, PT_LOAD, PT_NOTE, LOAD_ALIGN, NOTE_SEGMENT_ALIGN,
} from './elf-constants.js';

export type Progress = (doneBytes: number, totalBytes: number) => void;

export interface WriteCoreOptions {
  /** fsync before the rename (checkpoints must survive a crash; a debugging core need not). */
  sync?: boolean;
  onProgress?: Progress;
  /**
   * Record a CRC-32 of each segment's stored bytes in a last note (STASIS_NOTE.CHECKSUMS,
   * a u32 per PT_LOAD), patched in once the data is written; restore refuses a mismatch.
   */
  checksums?: boolean;
}

export interface WrittenCore {
  path: string;
  /** Apparent size of the file. */
  bytes: number;
  /** Bytes of memory actually written (the rest are holes). */
  storedBytes: number;
  /** CRC-32 per segment, when asked for. */
  checksums?: number[];
}

const COPY_CHUNK = 8 << 20;
const ZERO_PAGE = Buffer.alloc(PAGE_SIZE);

function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

export function elfHeader(phnum: number): Buffer {
  const h = Buffer.alloc(EHDR_SIZE);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, ELFCLASS64, ELFDATA2LSB, EV_CURRENT, ELFOSABI_NONE]).copy(h, 0);
  h.writeUInt16LE(ET_CORE, EHDR.e_type);
  h.writeUInt16LE(EM_X86_64, EHDR.e_machine);
  h.writeUInt32LE(EV_CURRENT, EHDR.e_version);
  h.writeBigUInt64LE(BigInt(EHDR_SIZE), EHDR.e_phoff);
  h.writeUInt16LE(EHDR_SIZE, EHDR.e_ehsize);
  h.writeUInt16LE(PHDR_SIZE, EHDR.e_phentsize);
  h.writeUInt16LE(phnum, EHDR.e_phnum);
  return h;
}

export function programHeader(type: number, flags: number, offset: number, vaddr: number, filesz: number, memsz: number, align: number): Buffer {
  const p = Buffer.alloc(PHDR_SIZE);
  p.writeUInt32LE(type, PHDR.p_type);
  p.writeUInt32LE(flags, PHDR.p_flags);
  p.writeBigUInt64LE(BigInt(offset), PHDR.p_offset);
  p.writeBigUInt64LE(BigInt(vaddr), PHDR.p_vaddr);
  p.writeBigUInt64LE(BigInt(filesz), PHDR.p_filesz);
  p.writeBigUInt64LE(BigInt(memsz), PHDR.p_memsz);
  p.writeBigUInt64LE(BigInt(align), PHDR.p_align);
  return p;
}

export function writeCore(path: string, notes: Note[], segments: MemorySegment[], options: WriteCoreOptions = {}): WrittenCore {
  if (segments.length + 1 > 0xffff) {
    throw new StasisError('UNSUPPORTED', `${segments.length} mappings: more than an ELF header can count without extended numbering`);
  }
  const checksumNote = options.checksums ? { owner: STASIS_OWNER, type: STASIS_NOTE.CHECKSUMS, desc: Buffer.alloc(4 * segments.length) } : null;
  const noteBytes = encodeNotes(checksumNote ? [...notes, checksumNote] : notes);
  const phnum = segments.length + 1;
  const notesOffset = EHDR_SIZE + phnum * PHDR_SIZE;
  let cursor = roundUp(notesOffset + noteBytes.length, PAGE_SIZE);
  const offsets = segments.map((s) => {
    const at = cursor;
    cursor += roundUp(s.fileSize, PAGE_SIZE);
    return at;
  });
  const totalSize = cursor;

  const headers = [
    elfHeader(phnum),
    programHeader(PT_NOTE, 0, notesOffset, 0, noteBytes.length, 0, NOTE_SEGMENT_ALIGN),
    ...segments.map((s, i) => programHeader(PT_LOAD, s.flags, offsets[i], s.mapping.start, s.fileSize, s.mapping.end - s.mapping.start, LOAD_ALIGN)),
    noteBytes,
  ];

  const tmp = join(dirname(path), `.${basename(path)}.stasis-${process.pid}.tmp`);
  let fd: number;
  try {
    fd = openSync(tmp, 'wx', 0o600);
  } catch (err) {
    throw outputError(path, err);
  }
  const memFds = new Map<number, number>();
  try {
    writeAll(fd, Buffer.concat(headers), 0);
    const totalStored = segments.reduce((n, s) => n + s.runs.reduce((m, r) => m + r.end - r.start, 0), 0);
    let done = 0;
    const chunk = Buffer.allocUnsafe(COPY_CHUNK);
    let storedBytes = 0;
    const checksums: number[] = [];
    segments.forEach((segment, i) => {
      const base = offsets[i];
      const start = segment.mapping.start;
      let crc = 0;
      if (segment.copied) {
        // Copies made while the target was stopped: leave their zero pages as holes.
        segment.copied.data.forEach((data, r) => {
          if (checksumNote) crc = crc32(data, crc);
          const at = base + (segment.copied!.runs[r].start - start);
          for (let off = 0; off < data.length; off += PAGE_SIZE) {
            const page = data.subarray(off, off + PAGE_SIZE);
            if (!page.equals(ZERO_PAGE)) {
              writeAll(fd, page, at + off);
              storedBytes += page.length;
            }
          }
          done += data.length;
        });
        if (checksumNote) checksums.push(crc);
        options.onProgress?.(done, totalStored);
        return;
      }
      let memFd = memFds.get(segment.sourcePid);
      if (memFd === undefined) {
        memFd = openSync(`/proc/${segment.sourcePid}/mem`, 'r');
        memFds.set(segment.sourcePid, memFd);
      }
      for (const run of segment.runs) {
        for (let at = run.start; at < run.end; at += COPY_CHUNK) {
          const length = Math.min(COPY_CHUNK, run.end - at);
          const data = readChunk(memFd, chunk, at, length, segment.sourcePid);
          if (checksumNote) crc = crc32(data, crc);
          writeAll(fd, data, base + (at - start));
          if (options.sync) startWriteback(fd, base + (at - start), length);
          storedBytes += length;
          done += length;
          options.onProgress?.(done, totalStored);
        }
      }
      if (checksumNote) checksums.push(crc);
    });
    if (checksumNote) {
      checksums.forEach((crc, i) => checksumNote.desc.writeUInt32LE(crc >>> 0, i * 4));
      // The checksum note is the last one: its descriptor ends the (4-aligned) note area.
      writeAll(fd, checksumNote.desc, notesOffset + noteBytes.length - checksumNote.desc.length);
    }
    ftruncateSync(fd, totalSize);
    if (options.sync) fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    renameSync(tmp, path);
    return { path, bytes: totalSize, storedBytes, checksums: checksumNote ? checksums : undefined };
  } catch (err) {
    if (fd >= 0) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // nothing was created
    }
    throw err instanceof StasisError ? err : outputError(path, err);
  } finally {
    for (const memFd of memFds.values()) closeSync(memFd);
  }
}

function readChunk(memFd: number, chunk: Buffer, at: number, length: number, sourcePid: number): Buffer {
  const view = chunk.subarray(0, length);
  try {
    readFully(memFd, view, 0, length, at);
    return view;
  } catch (err) {
    // A process that exited reads as end-of-file: that is a failed dump, not zero pages.
    if (!isAlive(sourcePid)) throw new StasisError('TARGET_EXITED', `process ${sourcePid} exited while its memory was being written`, { pid: sourcePid, cause: err });
    // Some page in the range cannot be read (e.g. beyond the end of a truncated file): go page by page.
    return readRange(memFd, at, length);
  }
}

function isAlive(pid: number): boolean {
  try {
    return !/^State:\s+[ZX]/m.test(readFileSync(`/proc/${pid}/status`, 'latin1'));
  } catch {
    return false;
  }
}

function writeAll(fd: number, data: Buffer, position: number): void {
  let off = 0;
  while (off < data.length) off += writeSync(fd, data, off, data.length - off, position + off);
}

function outputError(path: string, err: unknown): StasisError {
  const code = (err as NodeJS.ErrnoException)?.code;
  const why: Record<string, string> = {
    ENOSPC: 'no space left on the device',
    EDQUOT: 'disk quota exceeded',
    EACCES: 'permission denied',
    EROFS: 'read-only file system',
    ENOENT: 'no such directory',
    ENOTDIR: 'a component of the path is not a directory',
    EEXIST: 'a temporary file of another stasis run is in the way',
  };
  const reason = (code && why[code]) ?? (err as Error)?.message ?? String(err);
  return new StasisError('OUTPUT_FAILED', `cannot write ${path}: ${reason}`, { path, errno: code, cause: err });
}
