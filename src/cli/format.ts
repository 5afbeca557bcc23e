/** Small formatting and argument helpers shared by the commands. */
import { usageError } from '../errors.js';

export function parsePid(text: string): number {
  if (!/^[1-9][0-9]*$/.test(text)) throw usageError(`'${text}' is not a process id`);
  return Number(text);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = -1;
  do {
    value /= 1024;
    unit++;
  } while (value >= 1024 && unit < units.length - 1);
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}
