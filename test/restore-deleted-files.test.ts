/**
 * Files and device nodes deleted while open, and device nodes other than /dev/null's, across
 * a dump and a restore, checked from inside against the fstat each fd had before the dump
 * (test/targets/restore-deleted-files.c): a deleted file keeps its owner, group, mode,
 * times and user xattrs; a deleted file with another hard link is that inode again, seen
 * through the other name; a deleted device node is a node of its device, mode and owner
 * again (not /dev/null); a device node made elsewhere is reopened there, not at /dev.
 * The change time cannot be set, so it is not compared.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { assertNothingLeft, nowTicks, selfCheck, verdictSubtests } from './helpers/restore.js';

const fileStart = nowTicks();
const TMPFS_MAGIC = 0x01021994;

test('restore-deleted-files: deleted files keep their attributes and links, deleted device nodes come back', async (t) => {
  const run = await selfCheck(t, 'restore-deleted-files', { args: (dir) => [dir], spinning: 0 });
  await verdictSubtests(t, run, ['ghost-attrs', 'ghost-data', 'linked', 'node', 'kept']);
  await t.test('nothing is left in the directory: the re-made file and node were unlinked', () => {
    const names = fs.readdirSync(run.dir);
    assert.ok(names.includes('elsewhere') && names.includes('kept'), `the names that were not deleted are there: ${names.join(' ')}`);
    assert.deepEqual(names.filter((n) => ['ghost', 'first', 'node'].includes(n) || n.startsWith('.stasis-')), []);
  });
});

test('the same on a tmpfs, which has user xattrs since Linux 6.6', async (t) => {
  const files = fs.mkdtempSync(path.join(os.tmpdir(), 'stasis-deleted-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'stasis-test', files]);
  try {
    assert.equal(fs.statfsSync(files).type, TMPFS_MAGIC);
    const run = await selfCheck(t, 'restore-deleted-files', { args: () => [files], spinning: 0 });
    assert.match(run.linesBefore.find((l) => l.startsWith('ready')) ?? '', /xattr=1 trusted=1/, 'tmpfs takes the xattrs');
    await verdictSubtests(t, run, ['ghost-attrs', 'ghost-data', 'linked', 'node', 'kept']);
  } finally {
    execFileSync('umount', ['-l', files]);
    fs.rmdirSync(files);
  }
});

test('no process is left behind, stopped, traced or otherwise', (t) => assertNothingLeft(t, fileStart));
