/**
 * The notes of a core in the kernel's order (fs/binfmt_elf.c write_note_info()): the first
 * thread's NT_PRSTATUS, then NT_PRPSINFO, NT_SIGINFO, NT_AUXV, NT_FILE, then the first
 * thread's register sets; then each other thread's NT_PRSTATUS and register sets; last
 * NT_X86_XSAVE_LAYOUT.
 */
import type { ProcessInfo } from '../resources/process-info.js';
import type { ThreadState } from '../resources/threads.js';
import type { Mapping } from '../proc/maps.js';
import { isFileBacked } from '../proc/maps.js';
import { type Note, prstatusNote, prpsinfoNote, siginfoNote, auxvNote, fileNote, fpregsetNote, xstateNote, xsaveLayoutNote } from './notes.js';
import { toArchitecturalLayout, architecturalComponents, xcr0Of } from './xstate.js';

export function buildCoreNotes(info: ProcessInfo, threads: ThreadState[], maps: Mapping[]): Note[] {
  const notes: Note[] = [];
  threads.forEach((thread, i) => {
    const leader = i === 0;
    notes.push(
      prstatusNote({
        tid: thread.tid,
        ppid: info.ppid,
        pgrp: info.pgrp,
        sid: info.sid,
        cursig: thread.stopSignal,
        sigpend: thread.sigpending,
        sighold: thread.sigmask,
        // The leader's note carries the whole group's times, as the kernel's does.
        utimeTicks: leader ? info.utimeTicks : thread.utimeTicks,
        stimeTicks: leader ? info.stimeTicks : thread.stimeTicks,
        cutimeTicks: leader ? info.cutimeTicks : 0,
        cstimeTicks: leader ? info.cstimeTicks : 0,
        regs: thread.regs,
      }),
    );
    if (leader) {
      notes.push(
        prpsinfoNote({ ...info, args: info.args }),
        siginfoNote(thread.stopSiginfo && thread.stopSignal !== 0 ? thread.stopSiginfo : null),
        auxvNote(info.auxv),
        fileNote(maps.filter(isFileBacked).map((m) => ({ start: m.start, end: m.end, offset: m.offset, path: m.path }))),
      );
    }
    notes.push(fpregsetNote(thread.fpregs));
    if (thread.xstate) notes.push(xstateNote(toArchitecturalLayout(thread.xstate)));
  });
  // The kernel ends the notes with the XSAVE layout (fs/binfmt_elf.c, elf_coredump_extra_notes order).
  const xstate = threads.find((t) => t.xstate)?.xstate;
  if (xstate) notes.push(xsaveLayoutNote(architecturalComponents(xcr0Of(xstate))));
  return notes;
}
