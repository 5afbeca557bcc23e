/**
 * sync_file_range(2) with SYNC_FILE_RANGE_WRITE: start writing a range of a file to disk
 * without waiting. Issued as an image is written, the final fsync() then waits only for
 * the tail instead of the whole file.
 */
import { libc } from './libc.js';

const syncFileRange = libc.func('int sync_file_range(int fd, int64_t offset, int64_t nbytes, unsigned int flags)');
const SYNC_FILE_RANGE_WRITE = 2;

/** Best effort: a file system without support just syncs at the end. */
export function startWriteback(fd: number, offset: number, length: number): void {
  syncFileRange(fd, offset, length, SYNC_FILE_RANGE_WRITE);
}
