/**
 * ELF64 core-file constants and struct layouts for x86_64 Linux, shared by the image
 * writer and reader. Only numbers and names live here: no I/O, no logic beyond trivial
 * lookups of these tables.
 *
 * Every number was checked on the development host (kernel 6.18, glibc 2.36, gcc):
 * the ELF and note numbers against <elf.h> / <linux/elf.h> (NT_X86_SHSTK and
 * NT_X86_XSAVE_LAYOUT against the kernel's include/uapi/linux/elf.h, which is newer
 * than the installed userspace headers), the struct offsets with a C program printing
 * offsetof()/sizeof() of <elf.h>, <sys/procfs.h>, <sys/user.h> and <signal.h> types,
 * and all of it against cores written by the kernel and by gdb's gcore on this host.
 * All fields are little-endian.
 */

// ---------------------------------------------------------------------------------------
// ELF header (Elf64_Ehdr, 64 bytes)

export const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]); // "\x7fELF"
export const EI_NIDENT = 16;
export const EI_CLASS = 4;
export const EI_DATA = 5;
export const EI_VERSION = 6;
export const EI_OSABI = 7;
export const EI_ABIVERSION = 8;

export const ELFCLASS64 = 2;
export const ELFDATA2LSB = 1;
export const EV_CURRENT = 1;
export const ELFOSABI_NONE = 0; // = ELFOSABI_SYSV; what the kernel writes in cores

export const ET_NONE = 0;
export const ET_REL = 1;
export const ET_EXEC = 2;
export const ET_DYN = 3;
export const ET_CORE = 4;

export const EM_X86_64 = 62;

export const EHDR_SIZE = 64;
/** Byte offsets of the Elf64_Ehdr fields. */
export const EHDR = {
  e_ident: 0, // unsigned char[16]
  e_type: 16, // u16
  e_machine: 18, // u16
  e_version: 20, // u32
  e_entry: 24, // u64
  e_phoff: 32, // u64
  e_shoff: 40, // u64
  e_flags: 48, // u32
  e_ehsize: 52, // u16
  e_phentsize: 54, // u16
  e_phnum: 56, // u16
  e_shentsize: 58, // u16
  e_shnum: 60, // u16
  e_shstrndx: 62, // u16
} as const;

// ---------------------------------------------------------------------------------------
// Program headers (Elf64_Phdr, 56 bytes)

export const PHDR_SIZE = 56;
/** Byte offsets of the Elf64_Phdr fields. */
export const PHDR = {
  p_type: 0, // u32
  p_flags: 4, // u32
  p_offset: 8, // u64
  p_vaddr: 16, // u64
  p_paddr: 24, // u64
  p_filesz: 32, // u64
  p_memsz: 40, // u64
  p_align: 48, // u64
} as const;

export const PT_NULL = 0;
export const PT_LOAD = 1;
export const PT_DYNAMIC = 2;
export const PT_INTERP = 3;
export const PT_NOTE = 4;
export const PT_SHLIB = 5;
export const PT_PHDR = 6;
export const PT_TLS = 7;

export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;

/**
 * Alignment the kernel writes: p_align = ELF_EXEC_PAGESIZE (4096) for PT_LOAD, 4 for
 * PT_NOTE. (readelf treats a PT_NOTE with p_align 8 as 8-byte-aligned notes, which is
 * wrong for core notes: keep 4.)
 */
export const PAGE_SIZE = 4096;
export const LOAD_ALIGN = 4096;
export const NOTE_SEGMENT_ALIGN = 4;

/**
 * Extended numbering: when there are 0xffff or more program headers, e_phnum is PN_XNUM
 * and the real count is in sh_info of section header 0 (the kernel then writes e_shoff,
 * e_shentsize = 64, e_shnum = 1, e_shstrndx = SHN_UNDEF and that one SHT_NULL header).
 */
export const PN_XNUM = 0xffff;
export const SHN_UNDEF = 0;
export const SHN_XINDEX = 0xffff;

// ---------------------------------------------------------------------------------------
// Section headers (Elf64_Shdr, 64 bytes); cores need none except for PN_XNUM.

export const SHDR_SIZE = 64;
/** Byte offsets of the Elf64_Shdr fields. */
export const SHDR = {
  sh_name: 0, // u32
  sh_type: 4, // u32
  sh_flags: 8, // u64
  sh_addr: 16, // u64
  sh_offset: 24, // u64
  sh_size: 32, // u64
  sh_link: 40, // u32
  sh_info: 44, // u32
  sh_addralign: 48, // u64
  sh_entsize: 56, // u64
} as const;

export const SHT_NULL = 0;
export const SHT_PROGBITS = 1;
export const SHT_STRTAB = 3;
export const SHT_NOTE = 7;

// ---------------------------------------------------------------------------------------
// Notes (Elf64_Nhdr, 12 bytes: namesz, descsz, type; then the name with its NUL, padded to
// 4, then the descriptor, padded to 4). Linux core notes are 4-byte aligned on x86_64.

export const NHDR_SIZE = 12;
export const NHDR = {
  n_namesz: 0, // u32, includes the terminating NUL
  n_descsz: 4, // u32, unpadded
  n_type: 8, // u32
} as const;
export const NOTE_ALIGN = 4;

/** Note owner names (without the NUL; n_namesz = length + 1). */
export const NOTE_OWNER_CORE = 'CORE';
export const NOTE_OWNER_LINUX = 'LINUX';
export const NOTE_OWNER_GNU = 'GNU';
export const NOTE_OWNER_GDB = 'GDB';
/** Owner of stasis's own restart-state notes. */
export const NOTE_OWNER_STASIS = 'STASIS';

// Owner "CORE"
export const NT_PRSTATUS = 1; // struct elf_prstatus (PRSTATUS below)
export const NT_PRFPREG = 2; // = NT_FPREGSET
export const NT_FPREGSET = 2; // struct user_fpregs_struct (FXSAVE area, 512 bytes)
export const NT_PRPSINFO = 3; // struct elf_prpsinfo (PRPSINFO below)
export const NT_TASKSTRUCT = 4;
export const NT_AUXV = 6; // Elf64_auxv_t[] up to and including AT_NULL
export const NT_SIGINFO = 0x53494749; // "SIGI": siginfo_t, 128 bytes
export const NT_FILE = 0x46494c45; // "FILE": mapped files (NT_FILE_LAYOUT below)

// Owner "LINUX"
export const NT_PRXFPREG = 0x46e62b7f; // user_fxsr_struct (i386 only)
export const NT_386_TLS = 0x200; // struct user_desc[] (i386 / compat)
export const NT_386_IOPERM = 0x201;
export const NT_X86_XSTATE = 0x202; // XSAVE area (XSAVE below)
// 0x203 is unused: old binutils took it for a CET state.
export const NT_X86_SHSTK = 0x204; // shadow-stack state: u64 cet, u64 ssp
export const NT_X86_XSAVE_LAYOUT = 0x205; // x86_xfeat_component[] (XSAVE_LAYOUT below)

// Owner "GNU" (in executables, not cores; listed so the reader can name them)
export const NT_GNU_ABI_TAG = 1;
export const NT_GNU_HWCAP = 2;
export const NT_GNU_BUILD_ID = 3;
export const NT_GNU_PROPERTY_TYPE_0 = 5;

// Owner "GDB": gcore writes its XML target description.
export const NT_GDB_TDESC = 0xff000000;

/** Owner the kernel writes for each note type in a core. */
export const NOTE_OWNER_OF: Readonly<Record<number, string>> = {
  [NT_PRSTATUS]: NOTE_OWNER_CORE,
  [NT_FPREGSET]: NOTE_OWNER_CORE,
  [NT_PRPSINFO]: NOTE_OWNER_CORE,
  [NT_AUXV]: NOTE_OWNER_CORE,
  [NT_SIGINFO]: NOTE_OWNER_CORE,
  [NT_FILE]: NOTE_OWNER_CORE,
  [NT_PRXFPREG]: NOTE_OWNER_LINUX,
  [NT_386_TLS]: NOTE_OWNER_LINUX,
  [NT_386_IOPERM]: NOTE_OWNER_LINUX,
  [NT_X86_XSTATE]: NOTE_OWNER_LINUX,
  [NT_X86_SHSTK]: NOTE_OWNER_LINUX,
  [NT_X86_XSAVE_LAYOUT]: NOTE_OWNER_LINUX,
};

/** Names of note types, by owner, as readelf prints them. */
export const NOTE_TYPE_NAMES: Readonly<Record<string, Readonly<Record<number, string>>>> = {
  [NOTE_OWNER_CORE]: {
    [NT_PRSTATUS]: 'NT_PRSTATUS',
    [NT_FPREGSET]: 'NT_FPREGSET',
    [NT_PRPSINFO]: 'NT_PRPSINFO',
    [NT_TASKSTRUCT]: 'NT_TASKSTRUCT',
    [NT_AUXV]: 'NT_AUXV',
    [NT_SIGINFO]: 'NT_SIGINFO',
    [NT_FILE]: 'NT_FILE',
  },
  [NOTE_OWNER_LINUX]: {
    [NT_PRXFPREG]: 'NT_PRXFPREG',
    [NT_386_TLS]: 'NT_386_TLS',
    [NT_386_IOPERM]: 'NT_386_IOPERM',
    [NT_X86_XSTATE]: 'NT_X86_XSTATE',
    [NT_X86_SHSTK]: 'NT_X86_SHSTK',
    [NT_X86_XSAVE_LAYOUT]: 'NT_X86_XSAVE_LAYOUT',
  },
  [NOTE_OWNER_GNU]: {
    [NT_GNU_ABI_TAG]: 'NT_GNU_ABI_TAG',
    [NT_GNU_HWCAP]: 'NT_GNU_HWCAP',
    [NT_GNU_BUILD_ID]: 'NT_GNU_BUILD_ID',
    [NT_GNU_PROPERTY_TYPE_0]: 'NT_GNU_PROPERTY_TYPE_0',
  },
  [NOTE_OWNER_GDB]: {
    [NT_GDB_TDESC]: 'NT_GDB_TDESC',
  },
};

// ---------------------------------------------------------------------------------------
// struct elf_prstatus (x86_64): 336 bytes

export const PRSTATUS_SIZE = 336;
/** Byte offsets in struct elf_prstatus. */
export const PRSTATUS = {
  /** struct elf_siginfo { int si_signo; int si_code; int si_errno; } (12 bytes) */
  pr_info_si_signo: 0, // i32
  pr_info_si_code: 4, // i32
  pr_info_si_errno: 8, // i32
  pr_cursig: 12, // i16: the signal that caused the dump, or 0
  pr_sigpend: 16, // u64: pending signals (set of signals 1..64, bit n-1)
  pr_sighold: 24, // u64: blocked signals
  pr_pid: 32, // i32: the thread's TID
  pr_ppid: 36, // i32
  pr_pgrp: 40, // i32
  pr_sid: 44, // i32
  /** struct timeval { i64 tv_sec; i64 tv_usec; } each */
  pr_utime: 48,
  pr_stime: 64,
  pr_cutime: 80,
  pr_cstime: 96,
  pr_reg: 112, // elf_gregset_t = struct user_regs_struct, 27 * u64 = 216 bytes
  pr_fpvalid: 328, // i32: 1 when an NT_FPREGSET follows (then 4 bytes of padding)
} as const;
export const TIMEVAL_SIZE = 16;

/** struct user_regs_struct (x86_64) register names, in order: register i is at 8 * i. */
export const USER_REGS_NAMES = [
  'r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8',
  'rax', 'rcx', 'rdx', 'rsi', 'rdi', 'orig_rax', 'rip', 'cs', 'eflags', 'rsp', 'ss',
  'fs_base', 'gs_base', 'ds', 'es', 'fs', 'gs',
] as const;
export type UserRegName = (typeof USER_REGS_NAMES)[number];
export const USER_REGS_COUNT = 27; // ELF_NGREG
export const USER_REGS_SIZE = 216;
/** Byte offset of each register in struct user_regs_struct (add PRSTATUS.pr_reg in a prstatus). */
export const USER_REGS_OFFSET: Readonly<Record<UserRegName, number>> = Object.freeze(
  Object.fromEntries(USER_REGS_NAMES.map((name, i) => [name, i * 8])) as Record<UserRegName, number>,
);

// ---------------------------------------------------------------------------------------
// struct elf_prpsinfo (x86_64): 136 bytes

export const PRPSINFO_SIZE = 136;
/** Byte offsets in struct elf_prpsinfo. */
export const PRPSINFO = {
  pr_state: 0, // i8: numeric process state (index into "RSDTZW")
  pr_sname: 1, // char: state letter ('R', 'S', 'D', 'T', 'Z', ...)
  pr_zomb: 2, // i8
  pr_nice: 3, // i8
  pr_flag: 8, // u64: task flags
  pr_uid: 16, // u32 (__kernel_uid_t is 32-bit on x86_64)
  pr_gid: 20, // u32
  pr_pid: 24, // i32
  pr_ppid: 28, // i32
  pr_pgrp: 32, // i32
  pr_sid: 36, // i32
  pr_fname: 40, // char[16]: comm, NUL-padded
  pr_psargs: 56, // char[80]: the command line, args separated by spaces, NUL-terminated
} as const;
export const PRPSINFO_FNAME_SIZE = 16;
export const PRPSINFO_PSARGS_SIZE = 80; // ELF_PRARGSZ

// ---------------------------------------------------------------------------------------
// siginfo_t (NT_SIGINFO): 128 bytes

export const SIGINFO_SIZE = 128;
export const SIGINFO = {
  si_signo: 0, // i32
  si_errno: 4, // i32
  si_code: 8, // i32
  // union at 16:
  si_pid: 16, // i32 (kill, sigqueue, SIGCHLD)
  si_uid: 20, // u32
  si_status: 24, // i32 (SIGCHLD)
  si_addr: 16, // u64 (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP)
} as const;

// ---------------------------------------------------------------------------------------
// NT_AUXV: Elf64_auxv_t { u64 a_type; u64 a_val; } pairs, terminated by AT_NULL.

export const AUXV_ENTRY_SIZE = 16;
export const AT_NULL = 0;
export const AT_IGNORE = 1;
export const AT_EXECFD = 2;
export const AT_PHDR = 3;
export const AT_PHENT = 4;
export const AT_PHNUM = 5;
export const AT_PAGESZ = 6;
export const AT_BASE = 7;
export const AT_FLAGS = 8;
export const AT_ENTRY = 9;
export const AT_NOTELF = 10;
export const AT_UID = 11;
export const AT_EUID = 12;
export const AT_GID = 13;
export const AT_EGID = 14;
export const AT_PLATFORM = 15;
export const AT_HWCAP = 16;
export const AT_CLKTCK = 17;
export const AT_SECURE = 23;
export const AT_BASE_PLATFORM = 24;
export const AT_RANDOM = 25;
export const AT_HWCAP2 = 26;
export const AT_RSEQ_FEATURE_SIZE = 27;
export const AT_RSEQ_ALIGN = 28;
export const AT_HWCAP3 = 29;
export const AT_HWCAP4 = 30;
export const AT_EXECFN = 31;
export const AT_SYSINFO_EHDR = 33;
export const AT_MINSIGSTKSZ = 51;

export const AUXV_NAMES: Readonly<Record<number, string>> = {
  [AT_NULL]: 'AT_NULL', [AT_IGNORE]: 'AT_IGNORE', [AT_EXECFD]: 'AT_EXECFD', [AT_PHDR]: 'AT_PHDR',
  [AT_PHENT]: 'AT_PHENT', [AT_PHNUM]: 'AT_PHNUM', [AT_PAGESZ]: 'AT_PAGESZ', [AT_BASE]: 'AT_BASE',
  [AT_FLAGS]: 'AT_FLAGS', [AT_ENTRY]: 'AT_ENTRY', [AT_NOTELF]: 'AT_NOTELF', [AT_UID]: 'AT_UID',
  [AT_EUID]: 'AT_EUID', [AT_GID]: 'AT_GID', [AT_EGID]: 'AT_EGID', [AT_PLATFORM]: 'AT_PLATFORM',
  [AT_HWCAP]: 'AT_HWCAP', [AT_CLKTCK]: 'AT_CLKTCK', [AT_SECURE]: 'AT_SECURE',
  [AT_BASE_PLATFORM]: 'AT_BASE_PLATFORM', [AT_RANDOM]: 'AT_RANDOM', [AT_HWCAP2]: 'AT_HWCAP2',
  [AT_RSEQ_FEATURE_SIZE]: 'AT_RSEQ_FEATURE_SIZE', [AT_RSEQ_ALIGN]: 'AT_RSEQ_ALIGN',
  [AT_HWCAP3]: 'AT_HWCAP3', [AT_HWCAP4]: 'AT_HWCAP4', [AT_EXECFN]: 'AT_EXECFN',
  [AT_SYSINFO_EHDR]: 'AT_SYSINFO_EHDR', [AT_MINSIGSTKSZ]: 'AT_MINSIGSTKSZ',
};

// ---------------------------------------------------------------------------------------
// NT_FILE (all fields u64):
//   count, page_size,
//   count * { start, end, file_ofs }   file_ofs is in units of page_size, not bytes
//   count NUL-terminated path strings, in the same order
// The kernel lists every file-backed mapping (not only dumped ones), in address order.

export const NT_FILE_LAYOUT = {
  count: 0,
  pageSize: 8,
  entries: 16,
  entrySize: 24,
  entryStart: 0,
  entryEnd: 8,
  entryFileOfs: 16,
} as const;

// ---------------------------------------------------------------------------------------
// NT_FPREGSET: struct user_fpregs_struct = the 512-byte FXSAVE area

export const FPREGSET_SIZE = 512;
export const FXSAVE = {
  cwd: 0, // u16
  swd: 2, // u16
  ftw: 4, // u16
  fop: 6, // u16
  rip: 8, // u64
  rdp: 16, // u64
  mxcsr: 24, // u32
  mxcr_mask: 28, // u32
  st_space: 32, // 8 x 16 bytes (st0..st7 / mm0..mm7)
  xmm_space: 160, // 16 x 16 bytes (xmm0..xmm15)
} as const;

// ---------------------------------------------------------------------------------------
// NT_X86_XSTATE: the XSAVE area as PTRACE_GETREGSET returns it (standard, non-compacted
// format). Its first 512 bytes are the FXSAVE area; the kernel stores XCR0 in the
// software-reserved bytes of it (USER_XSTATE_XCR0_WORD), which is where gdb reads it.

export const XSAVE = {
  legacySize: 512,
  /** u64 XCR0 (the enabled-feature mask) at fxsave sw_reserved[0] */
  xcr0: 464,
  header: 512,
  headerSize: 64,
  xstateBv: 512, // u64: which components hold non-init state
  xcompBv: 520, // u64: 0 in the standard format
  /** Standard-format (Intel) offsets that gdb 13 assumes whatever the CPU says. */
  avxYmmHi: 576, // 16 x 16 bytes
  mpxBndregs: 960,
  mpxBndcsr: 1024,
  avx512Opmask: 1088, // 8 x 8 bytes
  avx512ZmmHi256: 1152, // 16 x 32 bytes
  avx512Hi16Zmm: 1664, // 16 x 64 bytes
  pkru: 2688, // u32
} as const;

/** XCR0 / xstate_bv feature bits. */
export const XFEATURE = {
  X87: 1n << 0n,
  SSE: 1n << 1n,
  AVX: 1n << 2n,
  BNDREGS: 1n << 3n,
  BNDCSR: 1n << 4n,
  OPMASK: 1n << 5n,
  ZMM_HI256: 1n << 6n,
  HI16_ZMM: 1n << 7n,
  PKRU: 1n << 9n,
} as const;

/**
 * NT_X86_XSTATE sizes gdb accepts (gdbsupport/x86-xstate.h X86_XSTATE_*_SIZE; gdb picks
 * one from XCR0 with X86_XSTATE_SIZE() and ignores a note of another size, "too small").
 */
export const GDB_XSTATE_SIZE = {
  SSE: 576,
  AVX: 832,
  BNDREGS: 1024,
  BNDCFG: 1088, // any MPX bit
  AVX512: 2688,
  PKRU: 2696,
} as const;

/**
 * NT_X86_XSAVE_LAYOUT (kernel >= 6.12): array of struct x86_xfeat_component
 * { u32 type; u32 size; u32 offset; u32 flags; } for each enabled component >= 2, giving
 * the CPU's real offsets (AMD's differ from Intel's when there is no MPX).
 */
export const XSAVE_LAYOUT_ENTRY_SIZE = 16;
export const XSAVE_LAYOUT = { type: 0, size: 4, offset: 8, flags: 12 } as const;

// ---------------------------------------------------------------------------------------
// NT_X86_SHSTK: struct cet_user_state { u64 user_cet; u64 user_ssp; }

export const SHSTK_SIZE = 16;
