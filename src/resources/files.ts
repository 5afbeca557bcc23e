/**
 * File descriptors: what `stasis check` says about each fd, capture of the fd table of a
 * frozen process, and its rebuilding in the process being restored (like CRIU's files.c,
 * pipes.c, memfd.c). The parts are in files/: inspect (classification, shared with
 * check), capture, restore, state (the note's schema).
 *
 * Supported: regular files (reopened by path at their offset, identity checked),
 * directories, nodes of /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom
 * (reopened where they are, or made again with mknod when deleted), memfds (contents and
 * seals), files deleted while open (contents, owner, mode, times and user xattrs, re-created
 * and unlinked; one with another hard link is reopened through it),
 * pipes and FIFOs with both ends in the process (capacity and unread bytes), pipes whose
 * other end was closed everywhere, dup'ed fds (one description, shared offset), and
 * stdin/stdout/stderr that lead outside the process (terminals, sockets, pipes to other
 * processes), re-attached to the restorer's own. Everything else is refused by name.
 */
import type { CheckpointResource, DumpContext, Finding, RestoreContext } from './resource.js';
import { STASIS_NOTE } from '../image/stasis-notes.js';
import { inspect, holdersElsewhere, describeKind, type Description } from './files/inspect.js';
import { captureFiles } from './files/capture.js';
import { restoreFiles } from './files/restore.js';
import { FILES_NOTE_VERSION, type FilesState } from './files/state.js';
import { O } from '../sys/fd.js';

export type { FilesState, OpenFile, FdEntry } from './files/state.js';
export { fdForInode, summarizeFiles, type FdSummary } from './files/state.js';
export { restoreFiles, verifyOpenFiles, type RestoreFilesOptions, type RestoreFilesResult } from './files/restore.js';
export { captureFiles } from './files/capture.js';

function describeFlags(flags: number): string {
  const names = [['O_RDONLY', 'O_WRONLY', 'O_RDWR', 'O_ACCMODE'][flags & O.ACCMODE]];
  if (flags & O.APPEND) names.push('O_APPEND');
  if (flags & O.NONBLOCK) names.push('O_NONBLOCK');
  if (flags & O.DIRECT) names.push('O_DIRECT');
  if ((flags & O.SYNC) === O.SYNC) names.push('O_SYNC');
  else if (flags & O.DSYNC) names.push('O_DSYNC');
  if (flags & O.PATH) return 'O_PATH';
  return names.join('|');
}

function findingFor(d: Description, fd: number, sharers: string[] | undefined): Finding {
  const what = `fd ${fd}: ${d.first.link}`;
  if (d.decision === 'unsupported') {
    const held = sharers && sharers.length > 0 ? `; it is also open in ${sharers.join(', ')}` : '';
    return { kind: 'fd', what, supported: false, reason: `${d.reason}${held}`, fd };
  }
  if (sharers && sharers.length > 0) {
    return { kind: 'fd', what, supported: false, reason: `it is shared with ${sharers.join(', ')}; processes sharing files cannot be checkpointed alone`, fd };
  }
  const notes = [`${describeKind(d)}, ${describeFlags(d.flags)}`];
  if (d.fds.length > 1) notes.push(`one open file with fd ${d.fds.filter((n) => n !== fd).join(', fd ')}`);
  if (d.decision === 'inherited') {
    const stream = ['stdin', 'stdout', 'stderr'][fd <= 2 ? fd : d.stdio!];
    notes.push(`${d.reason}: inherited, re-attached to the restorer's ${stream} at restore`);
  } else if (d.reason) {
    notes.push(d.reason);
  }
  return { kind: 'fd', what, supported: true, reason: notes.join('; '), fd };
}

/**
 * Every fd of process `pid` (running or not) and whether it can be checkpointed, one
 * finding per fd, ascending. Unsupported ones say why.
 */
export function checkFiles(pid: number): Finding[] {
  const { descriptions, ownTables } = inspect(pid);
  const shared = holdersElsewhere(pid, descriptions);
  const findings: Finding[] = [];
  for (const d of descriptions) for (const fd of d.fds) findings.push(findingFor(d, fd, shared.get(d)));
  findings.sort((a, b) => a.fd! - b.fd!);
  for (const tid of ownTables) {
    findings.push({ kind: 'thread', what: `thread ${tid}`, supported: false, reason: 'it has an fd table of its own (cloned without CLONE_FILES), which cannot be checkpointed yet' });
  }
  return findings;
}

export const filesResource: CheckpointResource<FilesState> = {
  name: 'files',
  noteType: STASIS_NOTE.FILES,
  version: FILES_NOTE_VERSION,
  check: checkFiles,
  capture(ctx: DumpContext): FilesState {
    return captureFiles(ctx.pid);
  },
  restore(ctx: RestoreContext, state: FilesState): void {
    const { warnings } = restoreFiles(ctx.remote, ctx.pid, state, { ignoreChangedFiles: ctx.ignoreChangedFiles === true });
    ctx.warnings?.push(...warnings);
  },
};
