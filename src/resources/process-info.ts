/**
 * Process-wide facts a core records in NT_PRPSINFO, NT_AUXV and the first NT_PRSTATUS:
 * identity, credentials, state, command line, auxiliary vector and CPU times. Read from
 * /proc before the freeze, since none of it needs the process stopped (auxv is fixed at exec).
 */
import { readStatus, readStat, readCmdline, readAuxv, readExe } from '../proc/status.js';

export interface ProcessInfo {
  pid: number;
  ppid: number;
  pgrp: number;
  sid: number;
  /** State letter before the freeze (R, S, D, T...). */
  state: string;
  nice: number;
  flags: number;
  uid: number;
  gid: number;
  comm: string;
  args: string[];
  exe: string | null;
  auxv: Buffer;
  /** Whole-process CPU times and those of reaped children, in clock ticks. */
  utimeTicks: number;
  stimeTicks: number;
  cutimeTicks: number;
  cstimeTicks: number;
  /** Process-wide pending signals (ShdPnd). */
  sharedPending: bigint;
}

export function captureProcessInfo(pid: number): ProcessInfo {
  const status = readStatus(pid);
  const stat = readStat(pid);
  return {
    pid,
    ppid: status.ppid,
    pgrp: stat.pgrp,
    sid: stat.session,
    state: status.state,
    nice: stat.nice,
    flags: stat.flags,
    uid: status.uid[0] ?? 0,
    gid: status.gid[0] ?? 0,
    comm: stat.comm,
    args: readCmdline(pid),
    exe: readExe(pid),
    auxv: readAuxv(pid),
    utimeTicks: stat.utimeTicks,
    stimeTicks: stat.stimeTicks,
    cutimeTicks: stat.cutimeTicks,
    cstimeTicks: stat.cstimeTicks,
    sharedPending: status.sharedPending,
  };
}
