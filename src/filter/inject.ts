/**
 * Writes a translated filter into a probe's filter region (probes/include/filter.h):
 * the region starts with `r0 = MAGIC`, followed by no-ops (`goto +0`) to its
 * length — FILTER_REGION_INSNS at most; builds differ, so the length is
 * read from the region itself. The code replaces it in place and the rest
 * stays no-ops, so no instruction outside the region moves and
 * libpcap-independent relocations stay valid.
 */
import { Alu, Class, INSN_SIZE, Jmp, NOP, Src, type EbpfInsn, encode, insn } from '../bpf/insn.js';

/** The widest filter region of any probe build: what a filter may need at most. */
export const FILTER_REGION_INSNS = 4096;
export const FILTER_MAGIC = { l2: 0x70706c32, l3: 0x70706c33 } as const;

const MOV64_K = Class.ALU64 | Alu.MOV | Src.K;

/** Index of the region marked by `magic`, or -1. */
export function findRegion(insns: Buffer, magic: number): number {
  for (let o = 0; o + INSN_SIZE <= insns.length; o += INSN_SIZE) {
    if (insns[o] === MOV64_K && (insns[o + 1]! & 0x0f) === 0 && insns.readInt32LE(o + 4) === magic) return o / INSN_SIZE;
  }
  return -1;
}

export class InjectError extends Error {
  override name = 'InjectError';
}

/** The length of the region at `at`: its marker and the no-ops (`goto +0`) after it. */
export function regionLength(insns: Buffer, at: number): number {
  let n = 1;
  for (let o = (at + 1) * INSN_SIZE; o + INSN_SIZE <= insns.length && isGotoZero(insns, o); o += INSN_SIZE) n++;
  return n;
}

const JA = Class.JMP | Jmp.JA;
const isGotoZero = (b: Buffer, o: number) => b[o] === JA && b[o + 1] === 0 && b.readInt16LE(o + 2) === 0 && b.readInt32LE(o + 4) === 0;

/**
 * Returns a copy of `insns` with the region marked by `magic` replaced by
 * `code`; `size`: the region's length where it is known (else read from it).
 */
export function injectRegion(insns: Buffer, magic: number, code: EbpfInsn[], what: string, size?: number): Buffer {
  const at = findRegion(insns, magic);
  if (at < 0) throw new InjectError(`${what}: the probe has no filter region (marker 0x${magic.toString(16)})`);
  size ??= regionLength(insns, at);
  if ((at + size) * INSN_SIZE > insns.length) throw new InjectError(`${what}: the filter region is truncated`);
  if (code.length > size) {
    throw new InjectError(`${what}: the filter needs ${code.length} eBPF instructions; the probe has room for ${size}`);
  }
  const out = Buffer.from(insns);
  regionBytes(code, size).copy(out, at * INSN_SIZE);
  return out;
}

/** Encoded regions by filter code and region length: a session injects the same filter into every probe it loads. */
const encodedRegions = new WeakMap<EbpfInsn[], Map<number, Buffer>>();

function regionBytes(code: EbpfInsn[], size: number): Buffer {
  let bySize = encodedRegions.get(code);
  if (!bySize) encodedRegions.set(code, (bySize = new Map()));
  let bytes = bySize.get(size);
  if (!bytes) {
    bytes = encode([...code, ...skipRest(size - code.length)]);
    bySize.set(size, bytes);
  }
  return bytes;
}

/**
 * The rest of the region: no-ops behind a branch the verifier knows is always
 * taken. They must stay reachable in the control-flow graph (the verifier
 * refuses unreachable code) but need not be walked once per verifier state,
 * which made loading a filtered probe take a hundred milliseconds and more.
 */
export function skipRest(count: number): EbpfInsn[] {
  if (count <= 2) return new Array<EbpfInsn>(count).fill(NOP);
  return [
    insn(Class.ALU64 | Alu.MOV | Src.K, 5, 0, 0, 0),
    insn(Class.JMP | Jmp.JEQ | Src.K, 5, 0, count - 2, 0),
    ...new Array<EbpfInsn>(count - 2).fill(NOP),
  ];
}
