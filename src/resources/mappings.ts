/**
 * The address space of a checkpointed process: every mapping with its protection, kind
 * and madvise flags, and which pages to write back. The page contents themselves are the
 * core's PT_LOAD data (segment i is mapping i). Restore empties the stub's address space
 * except the vDSO, moves the vDSO to its old address (glibc caches pointers into it),
 * then re-creates each mapping in address order and writes its pages through
 * /proc/PID/mem.
 */
import { openSync, closeSync, readSync, writeSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { StasisError } from '../errors.js';
import { readdirSync, statSync } from 'node:fs';
import { type Mapping, type SmapsEntry, readSmaps, readMaps, isAnonymousShared, isFileBacked, mappingName } from '../proc/maps.js';
import { PAGE_SIZE, type PageRun, anonymousRuns, guardRuns, openPagemap, closePagemap } from '../proc/pagemap.js';
import { type RemoteTask, SYSCALL, PROT, MAP } from '../ptrace/remote.js';
import type { MemorySegment } from './memory.js';
import { identifyFile, type FileIdentity } from './file-identity.js';
import type { Finding } from './resource.js';

export type MappingKind = 'anonymous' | 'file' | 'shared-anonymous' | 'shared-file' | 'vdso' | 'vvar' | 'vvar_vclock' | 'vsyscall';

export interface MappingState {
  start: number;
  end: number;
  perms: string;
  offset: number;
  path: string;
  /** Device and inode as /proc/PID/maps shows them: a memfd's identity. */
  dev: string;
  inode: number;
  kind: MappingKind;
  /** smaps VmFlags that change behaviour and are set again with madvise(). */
  advice: string[];
  /** mlock()ed ('lo'), or locked on fault only (mlock2 MLOCK_ONFAULT: 'lo' and 'lf'). */
  lock?: 'locked' | 'onfault';
  growsDown: boolean;
  /** Every smaps VmFlags letter at dump time (see VMFLAGS for what each one means here). */
  vmFlags?: string[];
  /** Runs of guard pages (MADV_GUARD_INSTALL), installed again after the contents. */
  guards?: Array<[number, number]>;
  /** Page runs stored in this mapping's PT_LOAD (checked against `checksum`). */
  stored: Array<[number, number]>;
  /** Page runs written back at restore (for file mappings: only their private copies). */
  restore: Array<[number, number]>;
}

export interface MappingsState {
  mappings: MappingState[];
  /** Files mapped, for validation at restore. */
  files: FileIdentity[];
}

const SPECIAL_KINDS: Record<string, MappingKind> = { '[vdso]': 'vdso', '[vvar]': 'vvar', '[vvar_vclock]': 'vvar_vclock', '[vsyscall]': 'vsyscall' };

export function mappingKind(m: Mapping): MappingKind {
  const special = SPECIAL_KINDS[m.path];
  if (special) return special;
  if (m.perms[3] === 's') return isAnonymousShared(m) ? 'shared-anonymous' : 'shared-file';
  return isFileBacked(m) ? 'file' : 'anonymous';
}

/**
 * What a restore does with each VmFlags letter this kernel can show (fs/proc/task_mmu.c
 * show_smap_vma_flags(), 6.18 on x86_64). 'restored': set again by the restore;
 * 'derived': follows from the protection, the kind of mapping or the file, which are
 * restored; a string: the reason the mapping is refused. A letter not listed is refused.
 * The vDSO and vvar areas are the kernel's own (their flags come with them).
 */
export const VMFLAGS: Record<string, 'restored' | 'derived' | string> = {
  rd: 'derived', wr: 'derived', ex: 'derived', sh: 'derived', mr: 'derived', ms: 'derived',
  // VM_MAYWRITE of a shared file mapping: whether the file was open for writing (restored
  // by opening it O_RDWR); VM_MAYEXEC: the file system's noexec; VM_ACCOUNT: overcommit
  // accounting, restored as it was for a private mapping that is not writable now (for
  // the others it follows 'wr' and 'nr').
  // VM_SOFTDIRTY (CONFIG_MEM_SOFT_DIRTY, off here): set on every new mapping.
  mw: 'derived', me: 'derived', ac: 'derived', sd: 'derived',
  gd: 'restored', lo: 'restored', lf: 'restored', sr: 'restored', rr: 'restored', dc: 'restored', wf: 'restored',
  dd: 'restored', hg: 'restored', nh: 'restored', mg: 'restored', nr: 'restored', dp: 'restored', sl: 'restored',
  // VM_MAYBE_GUARD: MADV_GUARD_INSTALL was used on the mapping (the guard pages are restored).
  gu: 'restored',
  pf: 'a PFN mapping of a device cannot be checkpointed',
  io: 'an I/O memory mapping of a device cannot be checkpointed',
  mm: 'a mixed-map mapping of a device cannot be checkpointed',
  de: 'a mapping the kernel keeps from growing (VM_DONTEXPAND: a driver, an AIO ring, ...) cannot be re-created',
  ar: 'a mapping with a PAT memory type (VM_PAT: device memory) cannot be checkpointed',
  ht: 'hugetlbfs mappings cannot be checkpointed yet',
  sf: 'MAP_SYNC (DAX) mappings cannot be checkpointed',
  um: 'memory registered with userfaultfd (missing pages) cannot be checkpointed',
  uw: 'memory registered with userfaultfd (write-protect) cannot be checkpointed',
  ui: 'memory registered with userfaultfd (minor faults) cannot be checkpointed',
  ss: 'shadow stacks cannot be checkpointed yet',
};

/** The reason a mapping with these VmFlags cannot be restored as it is, or null. */
export function vmFlagsRefusal(m: Mapping, vmFlags: Iterable<string>): string | null {
  if (SPECIAL_KINDS[m.path]) return null;
  for (const flag of vmFlags) {
    const policy = VMFLAGS[flag];
    if (policy === undefined) return `its VmFlags '${flag}' is not known to stasis`;
    if (policy !== 'restored' && policy !== 'derived') return `${policy} (VmFlags '${flag}')`;
  }
  return null;
}

const DELETED_SUFFIX = ' (deleted)';

/** A MAP_SHARED mapping of a regular file that was unlinked (not a memfd, shmem or SysV segment). */
export function isSharedDeletedFile(m: Mapping): boolean {
  return m.perms[3] === 's' && m.path.startsWith('/') && m.path.endsWith(DELETED_SUFFIX) && !m.path.startsWith('/memfd:') && m.path !== '/dev/zero (deleted)' && !m.path.startsWith('/SYSV') && !m.path.startsWith('/[aio]');
}

/** dev:inode of every file the process has open (what /proc/PID/fd/N leads to). */
function openInodes(pid: number): Set<string> {
  const out = new Set<string>();
  let entries: string[] = [];
  try {
    entries = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of entries) {
    try {
      const st = statSync(`/proc/${pid}/fd/${fd}`, { bigint: true });
      out.add(`${st.dev}:${st.ino}`);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** dev:inode of the object a mapping maps (through /proc/PID/map_files), or null. */
function mappedInode(pid: number, m: Mapping): string | null {
  try {
    const st = statSync(`/proc/${pid}/map_files/${m.start.toString(16)}-${m.end.toString(16)}`, { bigint: true });
    return `${st.dev}:${st.ino}`;
  } catch {
    return null;
  }
}

/** Mappings a restore cannot re-create faithfully; `stasis dump` refuses them before freezing. */
export function checkMappings(pid: number): Finding[] {
  let fdInodes: Set<string> | null = null;
  return readSmaps(pid).map((m: SmapsEntry) => {
    const kind = mappingKind(m);
    const what = mappingName(m);
    const unsupported = (reason: string): Finding => ({ kind: 'mapping', what, supported: false, reason, mapping: what });
    if (m.path.startsWith('/SYSV')) return unsupported('System V shared memory cannot be checkpointed yet');
    if (m.path.startsWith('/[aio]')) return unsupported('a Linux AIO ring (io_setup) cannot be re-created: its context would be gone');
    if (kind === 'file' && m.path.endsWith(DELETED_SUFFIX)) return unsupported('a private mapping of a deleted file cannot be re-created');
    // Shown as shared memory (its inode has no links), but writes must reach that file: it
    // is re-created from the deleted file the files resource restores, so an fd must hold it.
    if (isSharedDeletedFile(m)) {
      fdInodes ??= openInodes(pid);
      const inode = mappedInode(pid, m);
      if (!inode || !fdInodes.has(inode)) return unsupported('a shared mapping of a deleted file that no file descriptor of the process holds cannot be re-created');
    }
    if (kind === 'shared-file' && m.path.startsWith('/dev/') && m.path !== '/dev/zero') return unsupported('device mappings cannot be checkpointed');
    const refusal = vmFlagsRefusal(m, m.vmFlags);
    if (refusal) return unsupported(refusal);
    return { kind: 'mapping', what, supported: true, reason: kind, mapping: what };
  });
}

const ADVICE: Record<string, number> = {
  dc: 10 /* MADV_DONTFORK */, wf: 18 /* MADV_WIPEONFORK */, dd: 16 /* MADV_DONTDUMP */, hg: 14 /* MADV_HUGEPAGE */, nh: 15 /* MADV_NOHUGEPAGE */,
  rr: 1 /* MADV_RANDOM */, sr: 2 /* MADV_SEQUENTIAL */, mg: 12 /* MADV_MERGEABLE */,
};
const MADV_GUARD_INSTALL = 102;
const MADV_DONTNEED = 4;
const MADV_GUARD_REMOVE = 103;
const MLOCK_ONFAULT = 1;

function lockOf(vmFlags: Set<string>): MappingState['lock'] {
  if (!vmFlags.has('lo')) return undefined;
  return vmFlags.has('lf') ? 'onfault' : 'locked';
}

/** Describe the mappings of the stopped process `pid`, given the segments planned for its image. */
export function captureMappings(pid: number, segments: MemorySegment[]): MappingsState {
  const pagemap = openPagemap(pid);
  try {
    const files = new Map<string, FileIdentity>();
    const mappings = segments.map((segment): MappingState => {
      const m = segment.mapping;
      const kind = mappingKind(m);
      const stored: PageRun[] = segment.runs;
      let restore: PageRun[] = [];
      if (kind === 'anonymous' || kind === 'shared-anonymous') restore = stored;
      else if (kind === 'file') restore = segment.copied?.privateRuns ?? anonymousRuns(pagemap, m.start, m.end);
      if ((kind === 'file' || kind === 'shared-file') && !files.has(m.path)) files.set(m.path, identifyFile(m.path));
      const guards = kind === 'vdso' || kind === 'vvar' || kind === 'vvar_vclock' || kind === 'vsyscall' ? [] : (segment.copied?.guards ?? guardRuns(pagemap, m.start, m.end));
      return {
        start: m.start,
        end: m.end,
        perms: m.perms,
        offset: m.offset,
        path: m.path,
        dev: m.dev,
        inode: m.inode,
        kind,
        advice: [...segment.vmFlags].filter((f) => f in ADVICE),
        lock: lockOf(segment.vmFlags),
        growsDown: segment.vmFlags.has('gd'),
        vmFlags: [...segment.vmFlags],
        guards: guards.map((r) => [r.start, r.end]),
        stored: stored.map((r) => [r.start, r.end]),
        restore: restore.map((r) => [r.start, r.end]),
      };
    });
    return { mappings, files: [...files.values()] };
  } finally {
    closePagemap(pagemap);
  }
}

/** Where the bytes of one mapping are in the image. */
export interface StoredSegment {
  offset: number;
  vaddr: number;
  filesz: number;
  checksum: number;
}

/** The end of the user address space with 4-level page tables (x86_64 TASK_SIZE_MAX). */
const TASK_SIZE = 0x7ffffffff000;
const O_RDONLY = 0;
const O_RDWR = 2;
const MREMAP_MAYMOVE = 1;
const MREMAP_FIXED = 2;
const COPY_CHUNK = 8 << 20;
/** Runs this large are read by the process itself; below, an injected syscall costs more than it saves. */
const SELF_READ_MIN = 1 << 20;
const SELF_READ_CHUNK = 64 << 20;

/** MAP_NORESERVE when the mapping had VM_NORESERVE ('nr'): no overcommit accounting, as before. */
function noReserve(m: MappingState): number {
  return m.vmFlags?.includes('nr') && !m.vmFlags.includes('dp') ? MAP.NORESERVE : 0;
}

function prot(perms: string): number {
  return (perms[0] === 'r' ? PROT.READ : 0) | (perms[1] === 'w' ? PROT.WRITE : 0) | (perms[2] === 'x' ? PROT.EXEC : 0);
}

/** A free range of `size` bytes that none of `taken` overlaps, above the lowest mappable address. */
export function findGap(taken: Array<{ start: number; end: number }>, size: number, from = 0x10000000): number {
  const sorted = [...taken].sort((a, b) => a.start - b.start);
  let candidate = from;
  for (const range of sorted) {
    if (range.end <= candidate) continue;
    if (range.start >= candidate + size) break;
    candidate = Math.ceil(range.end / PAGE_SIZE) * PAGE_SIZE + PAGE_SIZE;
  }
  return candidate;
}

export interface MemoryRestoreOptions {
  onProgress?: (done: number, total: number) => void;
  /**
   * The fd, already restored in the process, of the memfd or deleted file with this
   * device and inode: a shared mapping of it is made from that fd, so that the mapping
   * and the fd stay one object (their contents are already restored with the file).
   */
  fdForSharedObject?: (dev: string, inode: number) => number | undefined;
}

/**
 * Rebuild the address space of `remote`'s process from `state`, reading page contents
 * from the image file (`imagePath`, open here as `imageFd`; segments in `segments`, one per mapping).
 */
export function restoreMappings(remote: RemoteTask, state: MappingsState, imagePath: string, imageFd: number, segments: StoredSegment[], options: MemoryRestoreOptions = {}): void {
  const pid = remote.pid;
  const specials = ['[vvar]', '[vvar_vclock]', '[vdso]'];
  const imageRanges = state.mappings.map((m) => ({ start: m.start, end: m.end }));

  // 1. Scratch memory where nothing of the image will go, then empty the stub's space:
  // everything but the vDSO areas and that scratch, in as few munmaps as there are gaps.
  let current = readMaps(pid);
  const scratchAt = findGap([...imageRanges, ...current], 1 << 20);
  remote.mapScratch(1 << 20, BigInt(scratchAt));
  const kept = [...current.filter((m) => specials.includes(m.path)), { start: scratchAt, end: scratchAt + (1 << 20) }].sort((a, b) => a.start - b.start);
  let from = 0;
  for (const range of [...kept, { start: TASK_SIZE, end: TASK_SIZE }]) {
    if (range.start > from) remote.syscall(SYSCALL.munmap, [from, range.start - from], `munmap of the stub's memory at 0x${from.toString(16)}`);
    from = Math.max(from, range.end);
  }

  // 2. The vDSO and its data pages to their old addresses, through a free spot so that no
  // move lands on an area still to be moved. The syscall instruction we use moves with it.
  current = readMaps(pid);
  moveVdso(remote, current, state.mappings, imageRanges);

  // 3. Every mapping, in address order, then its pages. Large runs are read by the process
  // itself from the image (an injected pread64: one kernel copy, as fast as a restore can
  // be without mapping the image) while this thread checksums the same bytes from the page
  // cache on the other CPU; small runs are written through /proc/PID/mem.
  const total = state.mappings.reduce((n, m) => n + m.restore.reduce((k, [s, e]) => k + e - s, 0), 0);
  let done = 0;
  const chunk = Buffer.allocUnsafe(COPY_CHUNK);
  const memFd = openSync(`/proc/${pid}/mem`, 'r+');
  const files = new MappedFiles(remote);
  const imageFdInTask = files.fdFor(imagePath, O_RDONLY);
  const sharedObjects = new SharedObjects(state.mappings);
  try {
    state.mappings.forEach((m, i) => {
      if (m.kind === 'vdso' || m.kind === 'vvar' || m.kind === 'vvar_vclock' || m.kind === 'vsyscall') return;
      const segment = segments[i];
      // Anonymous mappings write back exactly what is stored: check the sum while copying.
      const checkWhileCopying = m.restore === m.stored || JSON.stringify(m.restore) === JSON.stringify(m.stored);
      if (!checkWhileCopying) verifyChecksum(imageFd, m, segment, chunk);
      let crc = 0;
      const checksum = (at: number, length: number) => {
        for (let off = 0; off < length; off += COPY_CHUNK) {
          const view = chunk.subarray(0, Math.min(COPY_CHUNK, length - off));
          readExactly(imageFd, view, segment.offset + (at + off - segment.vaddr));
          crc = crc32(view, crc);
        }
      };
      // An open memfd's mapping: map the restored fd, whose contents the files resource
      // has put back already.
      const objectFd = m.kind === 'shared-anonymous' && m.inode !== 0 ? options.fdForSharedObject?.(m.dev, m.inode) : undefined;
      if (objectFd !== undefined) {
        remote.syscall(SYSCALL.mmap, [m.start, m.end - m.start, prot(m.perms), MAP.SHARED | MAP.FIXED | noReserve(m), objectFd, m.offset], `mmap of ${describe(m)} from its file descriptor`);
        applyAdviceAndLocks(remote, m);
        return;
      }
      // A second mapping of one shared object maps the object its first mapping created;
      // its pages are written as well, since it may show pages the first one does not.
      const alias = sharedObjects.aliasOf(m);
      // A mapping that is not writable now is made writable while its pages are written,
      // unless that would give it an overcommit charge (VM_ACCOUNT, 'ac') it did not have:
      // a private mapping charged once stays charged, one never writable is not. Without
      // PROT_WRITE its pages are written through /proc/PID/mem (FOLL_FORCE copies on write).
      const accounting = m.vmFlags !== undefined && m.perms[3] === 'p' && (m.kind === 'anonymous' || m.kind === 'file');
      const wantCharge = accounting && m.vmFlags!.includes('ac') && m.perms[1] !== 'w';
      const forcedWrites = accounting && !m.vmFlags!.includes('ac') && m.perms[1] !== 'w';
      const writable = m.perms[1] !== 'w' && !forcedWrites && (m.restore.length > 0 || wantCharge);
      const protection = writable ? prot(m.perms) | PROT.WRITE | PROT.READ : prot(m.perms);
      if (alias) {
        const fd = files.fdFor(`/proc/self/map_files/${alias.start.toString(16)}-${alias.end.toString(16)}`, O_RDWR);
        remote.syscall(SYSCALL.mmap, [m.start, m.end - m.start, protection, MAP.SHARED | MAP.FIXED | noReserve(m), fd, m.offset], `mmap of ${describe(m)} from the object it shares`);
      } else {
        sharedObjects.created(m);
        createMapping(remote, files, m, protection, sharedObjects.size(m));
      }
      // VM_MAYBE_GUARD ('gu') stays once a guard was installed, even if none is left now:
      // install and remove one on the first page, before its contents are written.
      if (m.vmFlags?.includes('gu') && !m.guards?.length) {
        remote.syscall(SYSCALL.madvise, [m.start, PAGE_SIZE, MADV_GUARD_INSTALL], `madvise(MADV_GUARD_INSTALL) of ${describe(m)}`);
        remote.syscall(SYSCALL.madvise, [m.start, PAGE_SIZE, MADV_GUARD_REMOVE], `madvise(MADV_GUARD_REMOVE) of ${describe(m)}`);
      }
      for (const [start, end] of m.restore) {
        const step = end - start >= SELF_READ_MIN && !forcedWrites ? SELF_READ_CHUNK : COPY_CHUNK;
        for (let at = start; at < end; at += step) {
          const length = Math.min(step, end - at);
          const fileOffset = segment.offset + (at - segment.vaddr);
          if (step === SELF_READ_CHUNK) {
            const got = remote.syscall(SYSCALL.pread64, [imageFdInTask, at, length, fileOffset], `reading ${describe(m)} from the image`, {}, () => {
              if (checkWhileCopying) checksum(at, length);
            });
            if (Number(got) !== length) throw new StasisError('BAD_IMAGE', `the image is truncated in the data of ${describe(m)}`, { mapping: describe(m) });
          } else {
            const view = chunk.subarray(0, length);
            readExactly(imageFd, view, fileOffset);
            if (checkWhileCopying) crc = crc32(view, crc);
            let written = 0;
            while (written < length) written += writeSync(memFd, view, written, length - written, at + written);
          }
          done += length;
          options.onProgress?.(done, total);
        }
      }
      if (checkWhileCopying && crc !== segment.checksum) throw damaged(m);
      if (wantCharge && m.restore.length === 0) {
        // mprotect() drops the charge of a mapping that never had a page (no anon_vma, 6.2+):
        // give it one, a copy of its first page made and discarded.
        writeSync(memFd, Buffer.alloc(1), 0, 1, m.start);
        remote.syscall(SYSCALL.madvise, [m.start, PAGE_SIZE, MADV_DONTNEED], `madvise(MADV_DONTNEED) of ${describe(m)}`);
      }
      if (writable) remote.syscall(SYSCALL.mprotect, [m.start, m.end - m.start, prot(m.perms)], `mprotect of ${describe(m)}`);
      applyAdviceAndLocks(remote, m);
    });
    files.closeAll();
    // mseal() last: a sealed mapping can no longer be unmapped, moved or re-protected.
    for (const m of state.mappings) {
      if (m.vmFlags?.includes('sl')) remote.syscall(SYSCALL.mseal, [m.start, m.end - m.start, 0], `mseal of ${describe(m)}`);
    }
  } finally {
    closeSync(memFd);
  }
}

/**
 * The madvise flags and memory locks of a mapping whose pages are in place. A lock comes
 * last: mlock() faults in every page (MLOCK_ONFAULT only the present ones), so the pages
 * must hold their contents by then. RLIMIT_MEMLOCK is still the restorer's here.
 */
function applyAdviceAndLocks(remote: RemoteTask, m: MappingState): void {
  // Guard pages drop what a page held (they are never stored): after the contents, before
  // mlock (which would fault them in).
  for (const [start, end] of m.guards ?? []) remote.syscall(SYSCALL.madvise, [start, end - start, MADV_GUARD_INSTALL], `madvise(MADV_GUARD_INSTALL) at 0x${start.toString(16)} in ${describe(m)}`);
  for (const flag of m.advice) remote.syscall(SYSCALL.madvise, [m.start, m.end - m.start, ADVICE[flag]], `madvise(${flag}) of ${describe(m)}`);
  if (m.lock) remote.syscall(SYSCALL.mlock2, [m.start, m.end - m.start, m.lock === 'onfault' ? MLOCK_ONFAULT : 0], `mlock of ${describe(m)}`);
}

function describe(m: MappingState): string {
  return `${m.start.toString(16)}-${m.end.toString(16)} ${m.perms}${m.path ? ' ' + m.path : ''}`;
}

/** Files opened in the process being rebuilt, once each, for all their mappings. */
class MappedFiles {
  private readonly fds = new Map<string, bigint>();

  constructor(private readonly remote: RemoteTask) {}

  fdFor(path: string, mode: number): bigint {
    const key = `${mode}:${path}`;
    let fd = this.fds.get(key);
    if (fd === undefined) {
      this.remote.resetScratch();
      fd = this.remote.syscall(SYSCALL.open, [this.remote.putString(path), mode, 0], `open of ${path} to map it`);
      this.fds.set(key, fd);
    }
    return fd;
  }

  closeAll(): void {
    for (const [key, fd] of this.fds) this.remote.syscall(SYSCALL.close, [fd], `close of ${key.slice(key.indexOf(':') + 1)}`);
    this.fds.clear();
  }
}

/**
 * Shared memory objects (shmem: MAP_SHARED|MAP_ANONYMOUS areas, memfds) by device and
 * inode: the first mapping of one creates it, the others map the same object through
 * /proc/self/map_files of the first, so that stores through one show in the other.
 */
class SharedObjects {
  private readonly first = new Map<string, MappingState>();
  private readonly sizes = new Map<string, number>();

  constructor(mappings: MappingState[]) {
    for (const m of mappings) {
      if (m.kind !== 'shared-anonymous' || m.inode === 0) continue;
      const key = `${m.dev}:${m.inode}`;
      this.sizes.set(key, Math.max(this.sizes.get(key) ?? 0, m.offset + m.end - m.start));
    }
  }

  private key(m: MappingState): string | null {
    return m.kind === 'shared-anonymous' && m.inode !== 0 ? `${m.dev}:${m.inode}` : null;
  }

  aliasOf(m: MappingState): MappingState | undefined {
    const key = this.key(m);
    return key ? this.first.get(key) : undefined;
  }

  created(m: MappingState): void {
    const key = this.key(m);
    if (key && !this.first.has(key)) this.first.set(key, m);
  }

  /** Size of the whole object (what its mappings reach), for a memfd to be created. */
  size(m: MappingState): number {
    const key = this.key(m);
    return (key && this.sizes.get(key)) || m.end - m.start;
  }
}

const MEMFD_PREFIX = '/memfd:';
const DELETED = ' (deleted)';

function createMapping(remote: RemoteTask, files: MappedFiles, m: MappingState, protection: number, objectSize: number): void {
  const length = m.end - m.start;
  const what = `mmap of ${describe(m)}`;
  if (m.kind === 'anonymous') {
    // MAP_DROPPABLE ('dp', 6.12+) is a mapping type of its own, in place of MAP_PRIVATE.
    const type = m.vmFlags?.includes('dp') ? MAP.DROPPABLE : MAP.PRIVATE;
    const flags = type | MAP.ANONYMOUS | MAP.FIXED | (m.growsDown ? MAP.GROWSDOWN : 0) | noReserve(m);
    remote.syscall(SYSCALL.mmap, [m.start, length, protection, flags, -1, 0], what);
    return;
  }
  if (m.kind === 'shared-anonymous' && m.path.startsWith(MEMFD_PREFIX)) {
    // A memfd whose fd was closed: a memfd again, with its name, so /proc/PID/maps agrees.
    const name = m.path.slice(MEMFD_PREFIX.length, m.path.endsWith(DELETED) ? -DELETED.length : undefined);
    remote.resetScratch();
    const fd = remote.syscall(SYSCALL.memfd_create, [remote.putString(name), 0], `memfd_create(${name}) for ${describe(m)}`);
    try {
      remote.syscall(SYSCALL.ftruncate, [fd, objectSize], `ftruncate of memfd ${name}`);
      remote.syscall(SYSCALL.mmap, [m.start, length, protection, MAP.SHARED | MAP.FIXED | noReserve(m), fd, m.offset], what);
    } finally {
      remote.syscall(SYSCALL.close, [fd], `close of memfd ${name}`);
    }
    return;
  }
  if (m.kind === 'shared-anonymous' && m.offset === 0 && objectSize === length) {
    remote.syscall(SYSCALL.mmap, [m.start, length, protection, MAP.SHARED | MAP.ANONYMOUS | MAP.FIXED | noReserve(m), -1, 0], what);
    return;
  }
  if (m.kind === 'shared-anonymous') {
    // Part of a larger object (its front was unmapped, or other mappings reach further):
    // create the whole object, move the part this mapping shows into place (mremap keeps
    // its page offset, which the other mappings of the object are relative to), and
    // unmap the rest.
    const whole = Number(remote.syscall(SYSCALL.mmap, [0, objectSize, protection, MAP.SHARED | MAP.ANONYMOUS | noReserve(m), -1, 0], `${what} (the whole object, ${objectSize} bytes)`));
    remote.syscall(SYSCALL.mremap, [whole + m.offset, length, length, MREMAP_MAYMOVE | MREMAP_FIXED, m.start], what);
    if (m.offset > 0) remote.syscall(SYSCALL.munmap, [whole, m.offset], `munmap of the rest of the object of ${describe(m)}`);
    const after = m.offset + length;
    if (objectSize > after) remote.syscall(SYSCALL.munmap, [whole + after, objectSize - after], `munmap of the rest of the object of ${describe(m)}`);
    return;
  }
  const shared = m.kind === 'shared-file';
  // A shared mapping may be made writable later (mprotect) only if the file was open for
  // writing when it was mapped: VM_MAYWRITE ('mw'), whatever its protection now.
  const mayWrite = m.perms[1] === 'w' || (m.vmFlags?.includes('mw') ?? false);
  const fd = files.fdFor(m.path, shared && mayWrite ? O_RDWR : O_RDONLY);
  remote.syscall(SYSCALL.mmap, [m.start, length, protection, (shared ? MAP.SHARED : MAP.PRIVATE) | MAP.FIXED | noReserve(m), fd, m.offset], what);
}

function moveVdso(remote: RemoteTask, current: Mapping[], image: MappingState[], imageRanges: Array<{ start: number; end: number }>): void {
  const order: MappingKind[] = ['vvar', 'vvar_vclock', 'vdso'];
  const now = new Map(current.filter((m) => order.includes(SPECIAL_KINDS[m.path])).map((m) => [SPECIAL_KINDS[m.path], m]));
  const wanted = new Map(image.filter((m) => order.includes(m.kind)).map((m) => [m.kind, m]));
  for (const kind of order) {
    const have = now.get(kind);
    const want = wanted.get(kind);
    if (!have && !want) continue;
    if (!have || !want || have.end - have.start !== want.end - want.start) {
      const size = (r?: { start: number; end: number }) => (r ? `${(r.end - r.start) / PAGE_SIZE} pages` : 'absent');
      throw new StasisError('UNSUPPORTED', `the [${kind}] area of this kernel (${size(have)}) differs from the image's (${size(want)}): the image was made on a different kernel`, { pid: remote.pid });
    }
  }
  if ([...wanted.values()].every((w) => now.get(w.kind)!.start === w.start)) return;

  const block = [...now.values()];
  const blockStart = Math.min(...block.map((m) => m.start));
  const blockSize = Math.max(...block.map((m) => m.end)) - blockStart;
  const parking = findGap([...imageRanges, ...current], blockSize, 0x100000000);
  const move = (kind: MappingKind, from: number, to: number) => {
    const size = now.get(kind)!.end - now.get(kind)!.start;
    remote.syscall(SYSCALL.mremap, [from, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, to], `mremap of [${kind}] to 0x${to.toString(16)}`);
    if (kind === 'vdso') remote.retarget(remote.syscallAt - BigInt(from) + BigInt(to));
  };
  for (const kind of order) if (now.has(kind)) move(kind, now.get(kind)!.start, parking + (now.get(kind)!.start - blockStart));
  for (const kind of order) if (now.has(kind)) move(kind, parking + (now.get(kind)!.start - blockStart), wanted.get(kind)!.start);
}

function readExactly(fd: number, view: Buffer, position: number): void {
  let done = 0;
  while (done < view.length) {
    const got = readSync(fd, view, done, view.length - done, position + done);
    if (got === 0) throw new StasisError('BAD_IMAGE', `the image is truncated at offset ${position + done}`);
    done += got;
  }
}

function verifyChecksum(imageFd: number, m: MappingState, segment: StoredSegment, chunk: Buffer): void {
  let crc = 0;
  for (const [start, end] of m.stored) {
    for (let at = start; at < end; at += COPY_CHUNK) {
      const view = chunk.subarray(0, Math.min(COPY_CHUNK, end - at));
      readExactly(imageFd, view, segment.offset + (at - segment.vaddr));
      crc = crc32(view, crc);
    }
  }
  if (crc !== segment.checksum) throw damaged(m);
}

function damaged(m: MappingState): StasisError {
  return new StasisError('BAD_IMAGE', `the image is damaged: the contents of mapping ${describe(m)} do not match their checksum`, { mapping: describe(m) });
}

/** The checksum the writer records for one segment: CRC-32 of its stored runs, in order. */
export function segmentChecksum(): { update(data: Buffer): void; value(): number } {
  let crc = 0;
  return {
    update: (data: Buffer) => {
      crc = crc32(data, crc);
    },
    value: () => crc,
  };
}
