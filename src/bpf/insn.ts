/** eBPF instructions: the encoding the kernel loads (struct bpf_insn, 8 bytes, little-endian). */

export interface EbpfInsn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

export const INSN_SIZE = 8;

export const Class = { LD: 0x00, LDX: 0x01, ST: 0x02, STX: 0x03, ALU: 0x04, JMP: 0x05, JMP32: 0x06, ALU64: 0x07 } as const;
export const Size = { W: 0x00, H: 0x08, B: 0x10, DW: 0x18 } as const;
export const Mode = { IMM: 0x00, MEM: 0x60 } as const;
export const Src = { K: 0x00, X: 0x08 } as const;
export const Alu = {
  ADD: 0x00, SUB: 0x10, MUL: 0x20, DIV: 0x30, OR: 0x40, AND: 0x50, LSH: 0x60, RSH: 0x70, NEG: 0x80,
  MOD: 0x90, XOR: 0xa0, MOV: 0xb0, ARSH: 0xc0, END: 0xd0,
} as const;
export const Jmp = {
  JA: 0x00, JEQ: 0x10, JGT: 0x20, JGE: 0x30, JSET: 0x40, JNE: 0x50, JSGT: 0x60, JSGE: 0x70, CALL: 0x80, EXIT: 0x90,
  JLT: 0xa0, JLE: 0xb0, JSLT: 0xc0, JSLE: 0xd0,
} as const;
/** BPF_END with BPF_TO_BE: to network byte order (a byte swap on little-endian hosts). */
export const TO_BE = 0x08;

export const Helper = { probe_read_kernel: 113 } as const;

export function insn(code: number, dst = 0, src = 0, off = 0, imm = 0): EbpfInsn {
  return { code, dst, src, off, imm: imm | 0 };
}

/** `ja +0`: a no-op, the filler of the probes' filter regions. */
export const NOP: EbpfInsn = insn(Class.JMP | Jmp.JA);

/** `r0 = k; exit`: the whole of a program that only returns. */
export function returnImm(k: number): EbpfInsn[] {
  return [insn(Class.ALU64 | Alu.MOV | Src.K, 0, 0, 0, k), insn(Class.JMP | Jmp.EXIT)];
}

export function encode(insns: EbpfInsn[], out = Buffer.alloc(insns.length * INSN_SIZE), at = 0): Buffer {
  insns.forEach((i, n) => {
    const o = at + n * INSN_SIZE;
    out.writeUInt8(i.code, o);
    out.writeUInt8(((i.src & 0xf) << 4) | (i.dst & 0xf), o + 1);
    out.writeInt16LE(i.off, o + 2);
    out.writeInt32LE(i.imm | 0, o + 4);
  });
  return out;
}
