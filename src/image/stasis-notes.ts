/**
 * Restart state in the image: notes with owner "STASIS", one per resource, each a
 * versioned JSON document. JSON keeps every schema readable with `stasis inspect --json`
 * and `readelf -n` shows the notes' sizes; bigints and binary data are tagged so they
 * round-trip exactly.
 */
import type { Note } from './notes.js';
import { StasisError } from '../errors.js';

export const STASIS_OWNER = 'STASIS';

/** Note types of the stasis notes; each resource module names its own from this list. */
export const STASIS_NOTE = {
  PROCESS: 0x5300,
  THREADS: 0x5301,
  MEMORY: 0x5302,
  FILES: 0x5303,
  SIGNALS: 0x5304,
  TIMERS: 0x5305,
  ATTRIBUTES: 0x5306,
  FILE_IDENTITIES: 0x5307,
  CHECKSUMS: 0x5308,
  CPU: 0x5309,
  PROCESS_SETTINGS: 0x5320,
} as const;

function replacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return { $big: value.toString() };
  if (value && typeof value === 'object' && (value as { type?: string }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)) {
    return { $b64: Buffer.from((value as { data: number[] }).data).toString('base64') };
  }
  return value;
}

function reviver(_key: string, value: unknown): unknown {
  if (value && typeof value === 'object') {
    const v = value as { $big?: string; $b64?: string };
    if (typeof v.$big === 'string' && Object.keys(value).length === 1) return BigInt(v.$big);
    if (typeof v.$b64 === 'string' && Object.keys(value).length === 1) return Buffer.from(v.$b64, 'base64');
  }
  return value;
}

export function encodeStasisNote(type: number, version: number, state: unknown): Note {
  return { owner: STASIS_OWNER, type, desc: Buffer.from(JSON.stringify({ version, state }, replacer)) };
}

export function decodeStasisNote<T>(desc: Buffer, expectedVersion: number, name: string): T {
  let parsed: { version?: number; state?: T };
  try {
    parsed = JSON.parse(desc.toString('utf8'), reviver);
  } catch (err) {
    throw new StasisError('BAD_IMAGE', `the ${name} note of the image is damaged`, { cause: err });
  }
  if (parsed.version !== expectedVersion) {
    throw new StasisError('BAD_IMAGE', `the ${name} note has version ${parsed.version}; this stasis reads version ${expectedVersion}`);
  }
  return parsed.state as T;
}
