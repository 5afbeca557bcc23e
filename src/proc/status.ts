/** Readers of /proc/PID/status and /proc/PID/stat. */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

export interface ProcessStatus {
  name: string;
  /** One letter: R S D T t Z X ... */
  state: string;
  tgid: number;
  pid: number;
  ppid: number;
  tracerPid: number;
  uid: number[];
  gid: number[];
  threads: number;
  /** Thread-directed pending signals (SigPnd) and process-wide ones (ShdPnd). */
  sigPending: bigint;
  sharedPending: bigint;
  sigBlocked: bigint;
  sigIgnored: bigint;
  sigCaught: bigint;
}

export function readStatus(pid: number, tid: number = pid): ProcessStatus {
  const path = tid === pid ? `/proc/${pid}/status` : `/proc/${pid}/task/${tid}/status`;
  const fields = new Map<string, string>();
  for (const line of readFileSync(path, 'latin1').split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  const num = (k: string) => Number(fields.get(k) ?? 0);
  const hex = (k: string) => BigInt('0x' + (fields.get(k) ?? '0'));
  const ids = (k: string) => (fields.get(k) ?? '').split(/\s+/).filter(Boolean).map(Number);
  return {
    name: fields.get('Name') ?? '',
    state: (fields.get('State') ?? '?')[0],
    tgid: num('Tgid'),
    pid: num('Pid'),
    ppid: num('PPid'),
    tracerPid: num('TracerPid'),
    uid: ids('Uid'),
    gid: ids('Gid'),
    threads: num('Threads'),
    sigPending: hex('SigPnd'),
    sharedPending: hex('ShdPnd'),
    sigBlocked: hex('SigBlk'),
    sigIgnored: hex('SigIgn'),
    sigCaught: hex('SigCgt'),
  };
}

/** Fields of /proc/PID/stat after the comm (which may hold spaces and parentheses). */
export interface ProcessStat {
  comm: string;
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  /** The task's PF_* flags (field 9). */
  flags: number;
  utimeTicks: number;
  stimeTicks: number;
  cutimeTicks: number;
  cstimeTicks: number;
  nice: number;
  startBrk: number;
  argStart: number;
  argEnd: number;
}

export function readStat(pid: number, tid: number = pid): ProcessStat {
  const text = readFileSync(tid === pid ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'latin1');
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  const rest = text.slice(close + 2).trim().split(' ');
  // rest[0] is field 3 (state) of proc(5)'s numbering.
  const field = (n: number) => Number(rest[n - 3]);
  return {
    comm: text.slice(open + 1, close),
    state: rest[0],
    ppid: field(4),
    pgrp: field(5),
    session: field(6),
    flags: field(9),
    utimeTicks: field(14),
    stimeTicks: field(15),
    cutimeTicks: field(16),
    cstimeTicks: field(17),
    nice: field(19),
    startBrk: field(47),
    argStart: field(48),
    argEnd: field(49),
  };
}

export function listTasks(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map(Number).sort((a, b) => a - b);
}

export function readCmdline(pid: number): string[] {
  const raw = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
  return raw.split('\0').filter((s, i, all) => i < all.length - 1 || s !== '');
}

export function readExe(pid: number): string | null {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return null;
  }
}

export function readAuxv(pid: number): Buffer {
  return readFileSync(`/proc/${pid}/auxv`);
}

/** Clock ticks per second for the *Ticks fields (sysconf(_SC_CLK_TCK) is 100 on Linux/x86). */
export const CLOCK_TICKS = 100;
