/**
 * A stopped thread we run syscalls in, with a scratch area in its address space for the
 * syscalls' in/out structs (paths, sigactions, clone_args...). Memory is read and written
 * through /proc/PID/mem, which as the tracer (FOLL_FORCE) reaches read-only pages too.
 */
import { openSync, readSync, writeSync, closeSync } from 'node:fs';
import { StasisError } from '../errors.js';
import { errnoName } from '../sys/errno.js';
import type { Tracee } from './tracee.js';
import type { Registers, RegName } from '../sys/regs.js';
import { SyscallInjector, type InjectResult } from './inject.js';
import { getSignalMask, setSignalMask } from '../sys/ptrace.js';
import { queueableSiginfo } from '../sys/signals.js';

/** Every signal but SIGKILL and SIGSTOP, which cannot be blocked anyway. */
const ALL_SIGNALS = 0xffff_ffff_ffff_ffffn;
/** The x86_64 ABI lets functions use 128 bytes below rsp: stay clear of them. */
const STACK_RED_ZONE = 128 + 1024;

export const PROT = { NONE: 0, READ: 1, WRITE: 2, EXEC: 4 } as const;
export const MAP = { SHARED: 0x01, PRIVATE: 0x02, FIXED: 0x10, ANONYMOUS: 0x20, GROWSDOWN: 0x100, NORESERVE: 0x4000, FIXED_NOREPLACE: 0x100000, DROPPABLE: 0x08 } as const;

/** x86_64 syscall numbers used by the dump and restore sides. */
export const SYSCALL = {
  read: 0, write: 1, open: 2, close: 3, lseek: 8, mmap: 9, mprotect: 10, munmap: 11, brk: 12,
  pread64: 17, rt_sigaction: 13, rt_sigprocmask: 14, ioctl: 16, pipe2: 293, madvise: 28, dup3: 292, getitimer: 36,
  setitimer: 38, getpid: 39, clone: 56, wait4: 61, kill: 62, fcntl: 72, ftruncate: 77, chdir: 80, fchdir: 81,
  umask: 95, getpriority: 140, setpriority: 141, sigaltstack: 131, personality: 135, prctl: 157,
  arch_prctl: 158, gettid: 186, set_tid_address: 218, timer_create: 222, timer_settime: 223,
  timer_gettime: 224, timer_delete: 226, exit: 60, exit_group: 231, tgkill: 234, mremap: 25,
  rt_sigqueueinfo: 129, rt_tgsigqueueinfo: 297, set_robust_list: 273, get_robust_list: 274,
  memfd_create: 319, openat: 257, mkdirat: 258, unlinkat: 263, rseq: 334, clone3: 435,
  sched_setscheduler: 144, sched_getscheduler: 145, sched_getparam: 143, sched_setparam: 142, prlimit64: 302,
  mlock2: 325, mlockall: 151, mseal: 462,
  setgroups: 116, setresuid: 117, setresgid: 119, setfsuid: 122, setfsgid: 123, capset: 126, membarrier: 324, unshare: 272,
} as const;

export class RemoteTask {
  readonly thread: Tracee;
  private injector: SyscallInjector;
  private memFd: number;
  /** Scratch area in the task's memory (0 until mapScratch()). */
  scratch = 0n;
  scratchSize = 0;
  private scratchUsed = 0;

  constructor(thread: Tracee, syscallAt: bigint, saved: Registers, restoredTask = false) {
    this.thread = thread;
    this.injector = new SyscallInjector(thread, syscallAt, saved, restoredTask);
    this.memFd = openSync(`/proc/${thread.pid}/mem`, 'r+');
  }

  get pid(): number {
    return this.thread.pid;
  }

  /** Use another syscall instruction (after the vDSO moved) or other saved registers. */
  retarget(syscallAt: bigint, saved: Registers = this.injector.saved): void {
    this.injector = new SyscallInjector(this.thread, syscallAt, saved, this.injector.restoredTask);
  }

  get syscallAt(): bigint {
    return this.injector.syscallAt;
  }

  /** The raw result: a value or -errno. */
  syscallRaw(nr: number, args: Array<number | bigint> = []): InjectResult {
    return this.injector.call(nr, args);
  }

  /**
   * Run a syscall; a negative result throws, naming `what` and the errno. `whileRunning`
   * runs here while the task is inside the syscall (see SyscallInjector.call).
   */
  syscall(nr: number, args: Array<number | bigint>, what: string, overrides: Partial<Record<RegName, bigint>> = {}, whileRunning?: () => void): bigint {
    const { value } = this.injector.call(nr, args, overrides, whileRunning);
    if (value < 0n && value > -4096n) {
      throw new StasisError('INJECTION_FAILED', `${what} failed in process ${this.pid}: ${errnoName(Number(-value))}`, {
        pid: this.pid,
        tid: this.thread.tid,
        errno: errnoName(Number(-value)),
      });
    }
    return value;
  }

  /** Map `size` bytes of read-write scratch memory at `address` (0: anywhere). */
  mapScratch(size = 1 << 20, address = 0n): void {
    const flags = MAP.PRIVATE | MAP.ANONYMOUS | (address ? MAP.FIXED_NOREPLACE : 0);
    this.scratch = this.syscall(SYSCALL.mmap, [address, size, PROT.READ | PROT.WRITE, flags, -1, 0], 'mmap of scratch memory');
    this.scratchSize = size;
    this.scratchUsed = 0;
  }

  /** Use the scratch memory of another thread of the same process (same address space). */
  shareScratch(owner: RemoteTask): void {
    this.scratch = owner.scratch;
    this.scratchSize = owner.scratchSize;
    this.scratchUsed = 0;
  }

  unmapScratch(): void {
    if (!this.scratch) return;
    this.syscall(SYSCALL.munmap, [this.scratch, this.scratchSize], 'munmap of scratch memory');
    this.scratch = 0n;
  }

  /** Forget what was put in scratch memory (call between independent syscalls). */
  resetScratch(): void {
    this.scratchUsed = 0;
  }

  /** Copy bytes into scratch memory; returns their address in the task. */
  put(data: Buffer): bigint {
    const at = (this.scratchUsed + 15) & ~15;
    if (at + data.length > this.scratchSize) {
      throw new StasisError('INJECTION_FAILED', `scratch memory of process ${this.pid} exhausted (${data.length} bytes wanted)`, { pid: this.pid });
    }
    this.scratchUsed = at + data.length;
    const address = this.scratch + BigInt(at);
    this.writeMemory(address, data);
    return address;
  }

  /** A NUL-terminated string in scratch memory. */
  putString(text: string): bigint {
    return this.put(Buffer.from(text + '\0'));
  }

  /** Reserve zeroed bytes in scratch memory for a syscall to fill. */
  reserve(length: number): bigint {
    return this.put(Buffer.alloc(length));
  }

  writeMemory(address: bigint | number, data: Buffer): void {
    let done = 0;
    while (done < data.length) done += writeSync(this.memFd, data, done, data.length - done, Number(address) + done);
  }

  readMemory(address: bigint | number, length: number): Buffer {
    const out = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const got = readSync(this.memFd, out, done, length - done, Number(address) + done);
      if (got === 0) break;
      done += got;
    }
    return out;
  }

  /** Put the thread's own registers back (restart rule applied). */
  restoreRegisters(): void {
    this.injector.restore();
  }

  /**
   * Queue again, with their siginfo, the signals our injections dequeued from this thread
   * (sending to oneself allows any si_code), all signals blocked meanwhile so the next
   * injection does not dequeue them once more. The siginfo goes in scratch memory, or
   * below the stack's red zone once scratch is gone (and those bytes are put back).
   */
  requeueHeldSignals(): void {
    const held = this.thread.heldSignals.splice(0);
    if (held.length === 0 || this.thread.gone) return;
    const tid = this.thread.tid;
    const mask = getSignalMask(tid);
    setSignalMask(tid, ALL_SIGNALS);
    try {
      for (const { signo, siginfo } of held) {
        const info = queueableSiginfo(signo, siginfo);
        if (this.scratch) {
          this.resetScratch();
          this.syscall(SYSCALL.rt_tgsigqueueinfo, [this.pid, tid, signo, this.put(info)], `re-queueing signal ${signo} in thread ${tid}`);
          continue;
        }
        const at = ((this.injector.saved.sp - BigInt(STACK_RED_ZONE + info.length)) & ~15n);
        const before = this.readMemory(at, info.length);
        this.writeMemory(at, info);
        try {
          this.syscall(SYSCALL.rt_tgsigqueueinfo, [this.pid, tid, signo, at], `re-queueing signal ${signo} in thread ${tid}`);
        } finally {
          this.writeMemory(at, before);
        }
      }
    } finally {
      setSignalMask(tid, mask);
    }
  }

  /** Queue held signals again and let go of /proc/PID/mem. */
  close(): void {
    try {
      this.requeueHeldSignals();
    } finally {
      closeSync(this.memFd);
    }
  }
}
