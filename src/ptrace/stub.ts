/**
 * A stub: a throwaway process, our child, frozen under ptrace, to run syscalls in. The
 * restorer grows the restored process out of one (clone3 with set_tid); tests use one as
 * a blank target for a resource's restore side. Any small program does, since all its
 * memory is replaced; `sleep` is on every machine.
 */
import { spawnProcess } from '../sys/spawn.js';
import { kill, SIG } from '../sys/process.js';
import { waitTask, WAIT } from '../sys/ptrace.js';
import { freeze, type FrozenProcess } from './freeze.js';
import { findSyscallInstruction } from './inject.js';
import { RemoteTask } from './remote.js';

export interface Stub {
  pid: number;
  frozen: FrozenProcess;
  /** Syscalls in the stub's only thread, with scratch memory mapped. */
  remote: RemoteTask;
  /** Kill the stub and reap it. */
  destroy(): void;
}

export function startStub(): Stub {
  const pid = spawnProcess('sleep', ['1000000']);
  const destroy = () => {
    try {
      kill(pid, SIG.SIGKILL);
    } catch {
      // already gone
    }
    waitTask(pid, WAIT.ALL);
  };
  try {
    const frozen = freeze(pid);
    const leader = frozen.leader;
    const remote = new RemoteTask(leader, findSyscallInstruction(pid), leader.getRegisters());
    remote.mapScratch();
    return {
      pid,
      frozen,
      remote,
      destroy: () => {
        remote.close();
        destroy();
      },
    };
  } catch (err) {
    destroy();
    throw err;
  }
}
