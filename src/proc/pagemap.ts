/**
 * /proc/PID/pagemap (Documentation/admin-guide/mm/pagemap.rst): one 64-bit entry per
 * virtual page; bit 63 present, bit 62 swapped, bit 58 a guard region (MADV_GUARD_INSTALL,
 * kernel 6.14+: a PTE marker, which the kernel also reports as swapped). Used to store
 * only the pages that exist. Reading pagemap never faults a page in.
 */
import { openSync, readSync, closeSync } from 'node:fs';

export const PAGE_SIZE = 4096;
/** Bits 63 (present), 62 (swapped) and 61 (file page or shared anonymous) in the high 32-bit half of an entry. */
const PRESENT = 0x80000000;
const SWAPPED = 0x40000000;
const FILE_OR_SHARED = 0x20000000;
const GUARD_REGION = 0x04000000;

/** Any page that exists: present or swapped out (a guard marker has no contents). */
const isResident = (high: number) => (high & GUARD_REGION) === 0 && (high & (PRESENT | SWAPPED)) !== 0;
/** A private anonymous page, including copy-on-write copies inside file mappings. */
const isAnonymous = (high: number) => (high & GUARD_REGION) === 0 && ((high & SWAPPED) !== 0 || ((high & PRESENT) !== 0 && (high & FILE_OR_SHARED) === 0));
const isGuard = (high: number) => (high & GUARD_REGION) !== 0;

export interface PageRun {
  start: number;
  end: number;
}

/** Runs of pages in [start, end) that are present or swapped out (all others read as zero). */
export function residentRuns(pagemapFd: number, start: number, end: number): PageRun[] {
  return pageRuns(pagemapFd, start, end, isResident);
}

/** Runs of private anonymous pages in [start, end): what a file mapping holds that its file does not. */
export function anonymousRuns(pagemapFd: number, start: number, end: number): PageRun[] {
  return pageRuns(pagemapFd, start, end, isAnonymous);
}

/** Runs of guard pages (MADV_GUARD_INSTALL) in [start, end): accessing them raises SIGSEGV. */
export function guardRuns(pagemapFd: number, start: number, end: number): PageRun[] {
  return pageRuns(pagemapFd, start, end, isGuard);
}

function pageRuns(pagemapFd: number, start: number, end: number, wanted: (high: number) => boolean): PageRun[] {
  const runs: PageRun[] = [];
  const chunkPages = 64 * 1024;
  const buffer = Buffer.alloc(chunkPages * 8);
  let runStart = -1;
  for (let page = start; page < end; ) {
    const pages = Math.min(chunkPages, (end - page) / PAGE_SIZE);
    const got = readSync(pagemapFd, buffer, 0, pages * 8, (page / PAGE_SIZE) * 8);
    const halves = new Uint32Array(buffer.buffer, buffer.byteOffset, got / 4);
    for (let i = 1; i < halves.length; i += 2, page += PAGE_SIZE) {
      const resident = wanted(halves[i]);
      if (resident && runStart < 0) runStart = page;
      else if (!resident && runStart >= 0) {
        runs.push({ start: runStart, end: page });
        runStart = -1;
      }
    }
    if (got === 0) break;
  }
  if (runStart >= 0) runs.push({ start: runStart, end });
  return runs;
}

export function openPagemap(pid: number): number {
  return openSync(`/proc/${pid}/pagemap`, 'r');
}

export { closeSync as closePagemap };
