/**
 * The XSAVE area for NT_X86_XSTATE, in the layout gdb reads.
 *
 * PTRACE_GETREGSET NT_X86_XSTATE returns the standard (non-compacted) format, but each
 * component sits at the offset CPUID leaf 0xd gives on *this* CPU. Intel's offsets are the
 * architectural ones below; AMD CPUs without MPX pack AVX-512 right after AVX (an area of
 * 2432 bytes for xcr0 0xe7 instead of 2688). gdb 13 assumes the architectural offsets and
 * ignores a note that is too small ("Section .reg-xstate too small"), losing the AVX upper
 * halves, so we relocate each component to its architectural offset, as gcore does.
 */

/** Architectural offset and size of each user state component (Intel SDM vol. 1, 13.4). */
const COMPONENTS: Array<{ bit: number; offset: number; size: number }> = [
  { bit: 2, offset: 576, size: 256 }, // AVX: upper halves of ymm0-15
  { bit: 3, offset: 960, size: 64 }, // MPX bound registers
  { bit: 4, offset: 1024, size: 64 }, // MPX bound config/status
  { bit: 5, offset: 1088, size: 64 }, // AVX-512 opmask k0-7
  { bit: 6, offset: 1152, size: 512 }, // AVX-512 upper halves of zmm0-15
  { bit: 7, offset: 1664, size: 1024 }, // AVX-512 zmm16-31
  { bit: 9, offset: 2688, size: 8 }, // PKRU
  { bit: 17, offset: 2752, size: 64 }, // AMX tile configuration
  { bit: 18, offset: 2816, size: 8192 }, // AMX tile data
  { bit: 19, offset: 960, size: 128 }, // APX r16-r31, in the space MPX had (never both)
];

/** The legacy FXSAVE region (512) plus the XSAVE header (64). */
const LEGACY_AND_HEADER = 576;
/** sw_reserved holds the OS-enabled xcr0 at byte 464 (arch/x86/include/asm/user.h). */
const XCR0_OFFSET = 464;

export function xcr0Of(area: Buffer): bigint {
  return area.length >= XCR0_OFFSET + 8 ? area.readBigUInt64LE(XCR0_OFFSET) : 0n;
}

/** The enabled components >= 2 with their architectural offsets: what NT_X86_XSAVE_LAYOUT lists. */
export function architecturalComponents(xcr0: bigint): Array<{ bit: number; offset: number; size: number }> {
  return enabled(xcr0);
}

function enabled(xcr0: bigint): typeof COMPONENTS {
  return COMPONENTS.filter((c) => (xcr0 & (1n << BigInt(c.bit))) !== 0n);
}

/** The size gdb expects for this xcr0 (its X86_XSTATE_SIZE): the end of the last enabled component. */
export function architecturalSize(xcr0: bigint): number {
  return enabled(xcr0).reduce((end, c) => Math.max(end, c.offset + c.size), LEGACY_AND_HEADER);
}

/** Where each enabled component sits in an area of `length` bytes for `xcr0`, or null if unrecognised. */
function offsetsIn(xcr0: bigint, length: number): number[] | null {
  const components = enabled(xcr0);
  if (length === architecturalSize(xcr0)) return components.map((c) => c.offset);
  // Packed: each component right after the previous one (AMD without MPX).
  let packedEnd = LEGACY_AND_HEADER;
  const packed = components.map((c) => {
    const at = packedEnd;
    packedEnd += c.size;
    return at;
  });
  return packedEnd === length ? packed : null;
}

/**
 * Returns the area with every enabled component at its architectural offset. The CPU's
 * own offsets are recognised as either architectural already, or packed (each component
 * right after the previous one); anything else is returned unchanged.
 */
export function toArchitecturalLayout(area: Buffer): Buffer {
  const xcr0 = xcr0Of(area);
  const standardSize = architecturalSize(xcr0);
  const from = offsetsIn(xcr0, area.length);
  if (area.length === standardSize || !from) return area;
  const out = Buffer.alloc(standardSize);
  area.copy(out, 0, 0, LEGACY_AND_HEADER);
  enabled(xcr0).forEach((c, i) => area.copy(out, c.offset, from[i], from[i] + c.size));
  return out;
}

/** XSAVE header: which components hold state (XSTATE_BV) and the compaction bitmap (XCOMP_BV). */
const XSTATE_BV_OFFSET = 512;
const XCOMP_BV_OFFSET = 520;

/**
 * Components a process must ask for (arch_prctl ARCH_REQ_XCOMP_PERM) and a thread's XSAVE
 * buffer grows for only on first use (arch/x86/include/asm/fpu/xstate.h:
 * XFEATURE_MASK_USER_DYNAMIC): AMX tile data.
 */
export const DYNAMIC_COMPONENTS = [{ bit: 18, name: 'AMX tile data' }];

/** Whether the area holds state (XSTATE_BV) in a dynamic component. */
export function holdsDynamicState(area: Buffer): boolean {
  if (area.length < XSTATE_BV_OFFSET + 8) return false;
  const bv = area.readBigUInt64LE(XSTATE_BV_OFFSET);
  return DYNAMIC_COMPONENTS.some((c) => (bv & (1n << BigInt(c.bit))) !== 0n);
}

/**
 * An XSAVE area saved on one CPU, laid out for this one, whose own area (from
 * PTRACE_GETREGSET of any thread) is `current`: PTRACE_SETREGSET takes only an area of
 * exactly this CPU's size, with its offsets and no state for components its xcr0 lacks.
 * The legacy x87/SSE region is kept; each component both CPUs have is moved to its offset
 * here; the software bytes (this xcr0) come from `current`. State of a component this CPU
 * does not have is dropped: lostComponents names them, so that the caller can refuse.
 */
export function xstateForThisCpu(saved: Buffer, current: Buffer): { area: Buffer; lostComponents: number[] } {
  const savedXcr0 = xcr0Of(saved);
  const xcr0 = xcr0Of(current);
  if (saved.length === current.length && savedXcr0 === xcr0) return { area: saved, lostComponents: [] };
  const from = offsetsIn(savedXcr0, saved.length);
  const to = offsetsIn(xcr0, current.length);
  if (!from || !to) {
    throw new Error(`cannot relate the saved XSAVE area (${saved.length} bytes, xcr0 ${hex(savedXcr0)}) to this CPU's (${current.length} bytes, xcr0 ${hex(xcr0)})`);
  }
  const area = Buffer.alloc(current.length);
  saved.copy(area, 0, 0, XCR0_OFFSET);
  current.copy(area, XCR0_OFFSET, XCR0_OFFSET, XSTATE_BV_OFFSET);
  const savedBv = saved.readBigUInt64LE(XSTATE_BV_OFFSET);
  area.writeBigUInt64LE(savedBv & xcr0, XSTATE_BV_OFFSET);
  area.writeBigUInt64LE(0n, XCOMP_BV_OFFSET);
  const here = enabled(xcr0);
  const lostComponents: number[] = [];
  enabled(savedXcr0).forEach((c, i) => {
    const j = here.findIndex((h) => h.bit === c.bit);
    if (j >= 0) saved.copy(area, to[j], from[i], from[i] + c.size);
    else if (savedBv & (1n << BigInt(c.bit))) lostComponents.push(c.bit);
  });
  return { area, lostComponents };
}

const hex = (n: bigint) => `0x${n.toString(16)}`;
