/** Readers of /proc/PID/maps and /proc/PID/smaps (Documentation/filesystems/proc.rst). */
import { readFileSync } from 'node:fs';

export interface Mapping {
  start: number;
  end: number;
  /** 'rwxp' / 'r--s' as the kernel prints them. */
  perms: string;
  /** Offset into the file, in bytes. */
  offset: number;
  dev: string;
  inode: number;
  /** File path, '[heap]', '[stack]', '[vdso]', ..., or '' for anonymous memory. */
  path: string;
}

export interface SmapsEntry extends Mapping {
  rss: number;
  anonymous: number;
  swap: number;
  /** Two-letter VmFlags: 'dc' MADV_DONTFORK, 'wf' MADV_WIPEONFORK, 'dd' MADV_DONTDUMP, 'gd' grows down, ... */
  vmFlags: Set<string>;
}

const header = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) (\S+) (\d+)\s*(.*)$/;

function parseHeader(line: string): Mapping | null {
  const m = header.exec(line);
  if (!m) return null;
  return {
    start: parseInt(m[1], 16),
    end: parseInt(m[2], 16),
    perms: m[3],
    offset: parseInt(m[4], 16),
    dev: m[5],
    inode: Number(m[6]),
    path: m[7],
  };
}

export function parseMaps(text: string): Mapping[] {
  const out: Mapping[] = [];
  for (const line of text.split('\n')) {
    const mapping = parseHeader(line);
    if (mapping) out.push(mapping);
  }
  return out;
}

export function readMaps(pid: number): Mapping[] {
  return parseMaps(readFileSync(`/proc/${pid}/maps`, 'latin1'));
}

/** Reading smaps walks every page table of the process (about 12 ms a GiB here): keep it out of pauses. */
export function readSmaps(pid: number): SmapsEntry[] {
  const out: SmapsEntry[] = [];
  let current: SmapsEntry | null = null;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'latin1').split('\n')) {
    const mapping = parseHeader(line);
    if (mapping) {
      current = { ...mapping, rss: 0, anonymous: 0, swap: 0, vmFlags: new Set() };
      out.push(current);
      continue;
    }
    if (!current) continue;
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    if (key === 'VmFlags') current.vmFlags = new Set(value.split(/\s+/).filter(Boolean));
    else if (key === 'Rss') current.rss = parseInt(value, 10) * 1024;
    else if (key === 'Anonymous') current.anonymous = parseInt(value, 10) * 1024;
    else if (key === 'Swap') current.swap = parseInt(value, 10) * 1024;
  }
  return out;
}

/** True for the special mappings whose contents cannot be read through /proc/PID/mem (VM_IO|VM_PFNMAP). */
export function isUnreadableSpecial(m: Mapping): boolean {
  return m.path === '[vvar]' || m.path === '[vvar_vclock]' || m.path === '[vsyscall]';
}

/** Shared memory with no file behind it (MAP_SHARED|MAP_ANONYMOUS, memfd, SysV shm): its inode has no links. */
export function isAnonymousShared(m: Mapping): boolean {
  return m.perms[3] === 's' && (m.path === '' || m.path.endsWith(' (deleted)') || m.path.startsWith('/SYSV'));
}

export function isFileBacked(m: Mapping): boolean {
  return m.inode !== 0 && m.path.startsWith('/');
}

export function mappingName(m: Mapping): string {
  return `${m.start.toString(16)}-${m.end.toString(16)} ${m.perms}${m.path ? ' ' + m.path : ''}`;
}
