/** Checks on where an image will be written, made before anything is frozen. */
import { accessSync, statSync, constants as fsConstants } from 'node:fs';
import { dirname } from 'node:path';
import { StasisError } from './errors.js';

export function checkOutputDirectory(output: string): void {
  const dir = dirname(output);
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw new StasisError('OUTPUT_FAILED', `cannot write ${output}: directory ${dir} does not exist`, { path: output });
  }
  if (!isDir) throw new StasisError('OUTPUT_FAILED', `cannot write ${output}: ${dir} is not a directory`, { path: output });
  try {
    accessSync(dir, fsConstants.W_OK);
  } catch {
    throw new StasisError('OUTPUT_FAILED', `cannot write ${output}: directory ${dir} is not writable`, { path: output });
  }
  try {
    if (statSync(output).isDirectory()) throw new StasisError('OUTPUT_FAILED', `cannot write ${output}: it is a directory`, { path: output });
  } catch (err) {
    if (err instanceof StasisError) throw err;
  }
}
