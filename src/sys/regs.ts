/**
 * struct user_regs_struct (arch/x86/include/asm/user_64.h): 27 unsigned 64-bit words,
 * the layout of PTRACE_GETREGS and of pr_reg in an NT_PRSTATUS note.
 */
export const REG_NAMES = [
  'r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8', 'rax', 'rcx', 'rdx', 'rsi', 'rdi',
  'orig_rax', 'rip', 'cs', 'eflags', 'rsp', 'ss', 'fs_base', 'gs_base', 'ds', 'es', 'fs', 'gs',
] as const;
export type RegName = (typeof REG_NAMES)[number];
export const USER_REGS_SIZE = REG_NAMES.length * 8;

const offsets = Object.fromEntries(REG_NAMES.map((name, i) => [name, i * 8])) as Record<RegName, number>;

/** A thread's general registers, as the raw 216 bytes the kernel uses, with named access. */
export class Registers {
  readonly bytes: Buffer;

  constructor(bytes: Buffer = Buffer.alloc(USER_REGS_SIZE)) {
    this.bytes = bytes;
  }

  get(name: RegName): bigint {
    return this.bytes.readBigUInt64LE(offsets[name]);
  }

  /** The register as a signed value: rax after a syscall holds -errno. */
  getSigned(name: RegName): bigint {
    return this.bytes.readBigInt64LE(offsets[name]);
  }

  set(name: RegName, value: bigint | number): void {
    this.bytes.writeBigUInt64LE(BigInt.asUintN(64, BigInt(value)), offsets[name]);
  }

  clone(): Registers {
    return new Registers(Buffer.from(this.bytes));
  }

  get pc(): bigint {
    return this.get('rip');
  }

  get sp(): bigint {
    return this.get('rsp');
  }
}
