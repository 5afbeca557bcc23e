/**
 * Memory for a core: which part of each mapping is stored, following the kernel's default
 * coredump_filter (0x33, fs/coredump.c vma_dump_size()), and where its bytes come from.
 *
 * - private anonymous memory (heap, stacks, bss): stored, but only resident pages; the
 *   others read as zero, so they are holes in a sparse file;
 * - private file mappings that have anonymous (copy-on-write) pages: stored whole, since a
 *   hole would hide the file's contents from gdb; clean ones: only an ELF header page;
 * - shared memory with no file (MAP_SHARED|MAP_ANONYMOUS, memfd, SysV): stored whole;
 *   shared file mappings: not stored (they are in the file);
 * - [vdso] stored; [vvar]/[vvar_vclock] cannot be read (VM_PFNMAP): no data;
 * - MADV_DONTDUMP mappings: no data.
 */
import { openSync, readSync, closeSync } from 'node:fs';
import { type Mapping, type SmapsEntry, isAnonymousShared, isFileBacked, isUnreadableSpecial, readSmaps } from '../proc/maps.js';
import { PAGE_SIZE, type PageRun, residentRuns, anonymousRuns, guardRuns, openPagemap, closePagemap } from '../proc/pagemap.js';
import { dataRanges } from '../sys/fd.js';

export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;

export interface MemorySegment {
  mapping: Mapping;
  /** smaps VmFlags of the mapping (empty when unknown). */
  vmFlags: Set<string>;
  /** PF_R | PF_W | PF_X from the mapping's protection. */
  flags: number;
  /** Bytes this segment occupies in the file (0: not stored). Pages outside `runs` are holes. */
  fileSize: number;
  /** Page runs to copy, absolute addresses, within [start, start + fileSize). */
  runs: PageRun[];
  /** Contents copied while the target was stopped, when the snapshot cannot provide them. */
  copied?: CopiedMapping;
  /** The process whose /proc/PID/mem holds the runs (the snapshot child, or the target). */
  sourcePid: number;
  /** Why nothing or only part is stored, for `inspect` and the user. */
  reason?: string;
}

export function segmentFlags(perms: string): number {
  return (perms[0] === 'r' ? PF_R : 0) | (perms[1] === 'w' ? PF_W : 0) | (perms[2] === 'x' ? PF_X : 0);
}

/**
 * Mappings a fork()ed snapshot does not hold faithfully: MADV_DONTFORK ones ('dc') are
 * absent from the child, MADV_WIPEONFORK ones ('wf') are zero there, shared ones keep
 * changing. They are copied while the target is stopped, so that an image is of one
 * instant. Chosen from smaps read before the freeze (reading it walks every page table:
 * too slow for the pause).
 */
export function mappingsSnapshotMisses(smaps: SmapsEntry[]): SmapsEntry[] {
  return smaps.filter((m) => !isUnreadableSpecial(m) && (isAnonymousShared(m) || m.vmFlags.has('dc') || m.vmFlags.has('wf')));
}

/**
 * What was copied of one mapping while the target was stopped: only the pages it has
 * (the others are holes, read as zero), so that a never-touched reservation (V8 reserves
 * gigabytes PROT_NONE with MADV_DONTFORK) costs nothing and is not populated by the copy.
 */
export interface CopiedMapping {
  runs: PageRun[];
  /** One buffer per run. */
  data: Buffer[];
  /** For a private file mapping: the runs of its private (copy-on-write) pages, which a restore writes back. */
  privateRuns?: PageRun[];
  /** Its guard pages (the snapshot has none of a MADV_DONTFORK mapping). */
  guards: PageRun[];
}

/**
 * Copy `mappings` from the stopped target (those the snapshot cannot provide), page runs
 * that exist only: reading a page through /proc/PID/mem faults it in (a hole of shared
 * memory gets a page allocated, a private one the zero page or the file's page), which
 * would grow the target. Private memory: the runs pagemap shows present or swapped.
 * Shared memory objects (shmem, memfd): their data ranges (SEEK_DATA on the object through
 * /proc/PID/map_files), since pagemap shows only the pages this process has touched.
 */
export function copyFromTarget(targetPid: number, mappings: Mapping[]): Map<number, CopiedMapping> {
  const copies = new Map<number, CopiedMapping>();
  if (mappings.length === 0) return copies;
  const fd = openSync(`/proc/${targetPid}/mem`, 'r');
  const pagemap = openPagemap(targetPid);
  try {
    for (const m of mappings) {
      // A shared file mapping is not stored (it is in the file): nothing to copy.
      if (m.perms[3] === 's' && !isAnonymousShared(m)) continue;
      const runs = m.perms[3] === 's' ? sharedObjectRuns(targetPid, m) : residentRuns(pagemap, m.start, m.end);
      const privateRuns = isFileBacked(m) && m.perms[3] !== 's' ? anonymousRuns(pagemap, m.start, m.end) : undefined;
      copies.set(m.start, { runs, data: runs.map((r) => readRange(fd, r.start, r.end - r.start)), privateRuns, guards: guardRuns(pagemap, m.start, m.end) });
    }
  } finally {
    closePagemap(pagemap);
    closeSync(fd);
  }
  return copies;
}

/** The page runs of a shared mapping whose object has data there (all of it when that cannot be told). */
function sharedObjectRuns(pid: number, m: Mapping): PageRun[] {
  const whole = [{ start: m.start, end: m.end }];
  let objectFd: number;
  try {
    objectFd = openSync(`/proc/${pid}/map_files/${m.start.toString(16)}-${m.end.toString(16)}`, 'r');
  } catch {
    return whole;
  }
  try {
    const runs: PageRun[] = [];
    const last = m.offset + m.end - m.start;
    for (const [from, to] of dataRanges(objectFd, BigInt(last))) {
      const start = Math.max(Number(from), m.offset);
      const end = Math.min(Number(to), last);
      if (end <= start) continue;
      const pageStart = Math.floor(start / PAGE_SIZE) * PAGE_SIZE;
      const pageEnd = Math.ceil(end / PAGE_SIZE) * PAGE_SIZE;
      const run = { start: m.start + pageStart - m.offset, end: Math.min(m.end, m.start + pageEnd - m.offset) };
      const previous = runs[runs.length - 1];
      if (previous && previous.end >= run.start) previous.end = Math.max(previous.end, run.end);
      else runs.push(run);
    }
    return runs;
  } catch {
    return whole;
  } finally {
    closeSync(objectFd);
  }
}

/**
 * The target's layout at the fork, from the snapshot child's maps (taken after the
 * release) plus the MADV_DONTFORK mappings the child lacks.
 */
export function layoutAtFork(childMaps: Mapping[], dontFork: Mapping[]): Mapping[] {
  const inChild = new Set(childMaps.map((m) => m.start));
  return [...childMaps, ...dontFork.filter((m) => !inChild.has(m.start))].sort((a, b) => a.start - b.start);
}

/** Reads [start, start+length); pages that cannot be read (EIO: beyond a truncated file) stay zero. */
export function readRange(memFd: number, start: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  try {
    readFully(memFd, out, 0, length, start);
  } catch {
    for (let off = 0; off < length; off += PAGE_SIZE) {
      try {
        readFully(memFd, out, off, Math.min(PAGE_SIZE, length - off), start + off);
      } catch {
        // left as zeros; a SIGBUS page has no contents to give
      }
    }
  }
  return out;
}

export function readFully(fd: number, buffer: Buffer, offset: number, length: number, position: number): void {
  while (length > 0) {
    const got = readSync(fd, buffer, offset, length, position);
    if (got === 0) throw new Error(`short read at 0x${position.toString(16)}`);
    offset += got;
    position += got;
    length -= got;
  }
}

const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

/**
 * Decide, for each mapping, what is stored. `sourcePid` is where the memory is read (the
 * snapshot child, or the stopped target); its smaps and pagemap describe the same pages.
 * `targetSmaps`, read from the target just before it was frozen, give the VmFlags of a
 * snapshot's mappings: fork() clears some in the child (mlock's 'lo'/'lf', userfaultfd's)
 * and the child lacks MADV_DONTFORK mappings altogether.
 */
export function planSegments(maps: Mapping[], sourcePid: number, copied: Map<number, CopiedMapping>, purpose: 'core' | 'checkpoint' = 'core', targetSmaps: SmapsEntry[] = []): MemorySegment[] {
  const smaps = new Map<number, SmapsEntry>(readSmaps(sourcePid).map((e) => [e.start, e]));
  const targetFlags = new Map<string, Set<string>>(targetSmaps.map((e) => [`${e.start}-${e.end}`, e.vmFlags]));
  const pagemap = openPagemap(sourcePid);
  const memFd = openSync(`/proc/${sourcePid}/mem`, 'r');
  try {
    return maps.map((mapping) => {
      const size = mapping.end - mapping.start;
      const entry = smaps.get(mapping.start);
      const vmFlags = targetFlags.get(`${mapping.start}-${mapping.end}`) ?? entry?.vmFlags ?? new Set<string>();
      const base = { mapping, flags: segmentFlags(mapping.perms), sourcePid, runs: [] as PageRun[], vmFlags };
      const whole = [{ start: mapping.start, end: mapping.end }];
      if (isUnreadableSpecial(mapping)) return { ...base, fileSize: 0, reason: 'not readable (VM_IO/PFNMAP)' };
      const copy = copied.get(mapping.start);
      if (copy) return { ...base, fileSize: copy.runs.length || isAnonymousShared(mapping) ? size : 0, runs: copy.runs, copied: copy, reason: 'copied while stopped' };
      // A checkpoint needs every page, MADV_DONTDUMP or not; a core honours it like the kernel.
      if (purpose === 'core' && entry?.vmFlags.has('dd')) return { ...base, fileSize: 0, reason: 'MADV_DONTDUMP' };
      if (mapping.perms[3] === 's') {
        return isAnonymousShared(mapping) ? { ...base, fileSize: size, runs: whole } : { ...base, fileSize: 0, reason: 'shared file mapping' };
      }
      if (mapping.path === '[vdso]') return { ...base, fileSize: size, runs: whole };
      if (!isFileBacked(mapping)) {
        // Like the kernel, a mapping never touched (no pages at all) gets no file space.
        const runs = residentRuns(pagemap, mapping.start, mapping.end);
        return runs.length ? { ...base, fileSize: size, runs } : { ...base, fileSize: 0, reason: 'no pages' };
      }
      if ((entry?.anonymous ?? 0) > 0) return { ...base, fileSize: size, runs: whole };
      if (mapping.offset === 0 && startsWithElfHeader(memFd, mapping.start)) {
        return { ...base, fileSize: PAGE_SIZE, runs: [{ start: mapping.start, end: mapping.start + PAGE_SIZE }], reason: 'ELF header page only' };
      }
      return { ...base, fileSize: 0, reason: 'clean file pages' };
    });
  } finally {
    closePagemap(pagemap);
    closeSync(memFd);
  }
}

function startsWithElfHeader(memFd: number, address: number): boolean {
  const magic = Buffer.alloc(4);
  try {
    return readSync(memFd, magic, 0, 4, address) === 4 && magic.equals(ELF_MAGIC);
  } catch {
    return false;
  }
}
