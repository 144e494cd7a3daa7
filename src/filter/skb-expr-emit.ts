/**
 * eBPF for the expression language's reads (src/filter/skb-expr-resolve.ts):
 * a field's value into r7, a byte range into a slot. Memory is read with
 * bpf_probe_read_kernel only, so the same code runs in every program type;
 * a read that faults, or a NULL pointer on the way, jumps to `fail`.
 *
 * Registers: r6 the root (skb, xdp_buff), r7 the value or address read, r8
 * the sum of a cast's terms or a range's address while its index is read,
 * r9 the scratch; `at` is where in the scratch a read lands.
 */
import { Alu, Class, Helper, Jmp, Mode, Size, Src, TO_BE, type EbpfInsn, insn } from '../bpf/insn.js';
import type { FieldAccess, RangeAccess } from './skb-expr-resolve.js';

export const R0 = 0, R1 = 1, R2 = 2, R3 = 3, R6 = 6, R7 = 7, R8 = 8, R9 = 9;
export const mov = (dst: number, src: number) => insn(Class.ALU64 | Alu.MOV | Src.X, dst, src);
export const movK = (dst: number, k: number) => insn(Class.ALU64 | Alu.MOV | Src.K, dst, 0, 0, k);
export const aluK = (op: number, dst: number, k: number) => insn(Class.ALU64 | op | Src.K, dst, 0, 0, k);
export const aluX = (op: number, dst: number, src: number) => insn(Class.ALU64 | op | Src.X, dst, src);
export const ldx = (size: number, dst: number, src: number, off: number) => insn(Class.LDX | Mode.MEM | size, dst, src, off);
export const stx = (size: number, dst: number, src: number, off: number) => insn(Class.STX | Mode.MEM | size, dst, src, off);
export const stDw0 = (off: number) => insn(Class.ST | Mode.MEM | Size.DW, R9, 0, off, 0);
const call = (helper: number) => insn(Class.JMP | Jmp.CALL, 0, 0, 0, helper);

/** `dst = imm64`: the two-slot load. */
export function ld64(dst: number, v: bigint): EbpfInsn[] {
  const u = BigInt.asUintN(64, v);
  return [
    insn(Class.LD | Size.DW | Mode.IMM, dst, 0, 0, Number(u & 0xffffffffn) | 0),
    insn(0, 0, 0, 0, Number(u >> 32n) | 0),
  ];
}

export const fitsS32 = (v: bigint) => v >= -(2n ** 31n) && v < 2n ** 31n;

/** `dst += v`, through r1 when v is wider than an immediate. */
function addConst(dst: number, v: bigint): EbpfInsn[] {
  if (v === 0n) return [];
  return fitsS32(v) ? [aluK(Alu.ADD, dst, Number(v))] : [...ld64(R1, v), aluX(Alu.ADD, dst, R1)];
}

export type Label = number;

export class Emitter {
  readonly code: EbpfInsn[] = [];
  private readonly fixups: Array<{ at: number; label: Label }> = [];
  private readonly labels: number[] = [];

  label(): Label {
    this.labels.push(-1);
    return this.labels.length - 1;
  }

  place(l: Label): void {
    this.labels[l] = this.code.length;
  }

  emit(...insns: EbpfInsn[]): void {
    this.code.push(...insns);
  }

  /** A jump to `l`, resolved when the code is done. */
  jump(code: number, dst: number, src: number, imm: number, l: Label): void {
    this.fixups.push({ at: this.code.length, label: l });
    this.code.push(insn(code, dst, src, 0, imm));
  }

  finish(): EbpfInsn[] {
    for (const { at, label } of this.fixups) {
      const to = this.labels[label]!;
      if (to < 0) throw new Error('skb-expr: a jump to a label never placed');
      this.code[at] = { ...this.code[at]!, off: to - at - 1 };
    }
    return this.code;
  }
}

/** `n` bytes at r7 + `off` into the scratch at `at`, or `fail`. */
function read(e: Emitter, off: number, n: number, fail: Label, at: number): void {
  e.emit(mov(R1, R9), ...addConst(R1, BigInt(at)), movK(R2, n), mov(R3, R7), ...addConst(R3, BigInt(off)), call(Helper.probe_read_kernel));
  e.jump(Class.JMP | Jmp.JNE | Src.K, R0, 0, 0, fail);
}

/** r7 = where the path starts: the root, or a cast's sum of terms (never NULL). */
function emitBase(e: Emitter, a: FieldAccess, fail: Label, at: number): void {
  if (a.base === null) {
    e.emit(mov(R7, R6));
    return;
  }
  const fields = a.base.filter((t): t is FieldAccess => typeof t !== 'bigint');
  const constant = a.base.filter((t): t is bigint => typeof t === 'bigint').reduce((s, v) => s + v, 0n);
  if (fields.length === 0) e.emit(...ld64(R7, constant));
  fields.forEach((f, i) => {
    emitRead(e, f, fail, at);
    e.emit(i === 0 ? mov(R8, R7) : aluX(Alu.ADD, R8, R7));
  });
  if (fields.length > 0) e.emit(mov(R7, R8));
  e.emit(...addConst(R7, constant));
  e.jump(Class.JMP | Jmp.JEQ | Src.K, R7, 0, 0, fail);
}

/** r7 = the address of the struct holding the field: the base, then each pointer on the way read and checked. */
function emitContainer(e: Emitter, a: FieldAccess, fail: Label, at: number): void {
  emitBase(e, a, fail, at);
  for (const off of a.derefs) {
    read(e, off, 8, fail, at);
    e.emit(ldx(Size.DW, R7, R9, at));
    e.jump(Class.JMP | Jmp.JEQ | Src.K, R7, 0, 0, fail);
  }
}

/** Reads `size` bytes of the field into the scratch at `at`, its first `zeroFirst` bytes zeroed before (bytes the read does not cover are compared too). */
export function emitFetch(e: Emitter, a: FieldAccess, size: number, fail: Label, zeroFirst: number, at = 0): void {
  emitContainer(e, a, fail, at);
  for (let off = 0; off < zeroFirst; off += 8) e.emit(stDw0(at + off));
  read(e, a.offset, size, fail, at);
}

/** Reads a numeric field into r7, in host order, sign-extended when signed (or jumps to `fail`). */
export function emitRead(e: Emitter, a: FieldAccess, fail: Label, at = 0): void {
  const width = a.size === 1 ? Size.B : a.size === 2 ? Size.H : a.size === 4 ? Size.W : a.size === 8 ? Size.DW : null;
  emitFetch(e, a, a.size, fail, width === null ? 8 : 0, at);
  e.emit(ldx(width ?? Size.DW, R7, R9, at));
  if (a.bitSize > 0) {
    if (a.bitShift > 0) e.emit(aluK(Alu.RSH, R7, a.bitShift));
    const mask = (1n << BigInt(a.bitSize)) - 1n;
    if (fitsS32(mask)) e.emit(aluK(Alu.AND, R7, Number(mask)));
    else e.emit(...ld64(R1, mask), aluX(Alu.AND, R7, R1));
    if (a.signed) e.emit(aluK(Alu.LSH, R7, 64 - a.bitSize), aluK(Alu.ARSH, R7, 64 - a.bitSize));
  } else if (a.bigEndian && a.size > 1) {
    e.emit(insn(Class.ALU | Alu.END | TO_BE, R7, 0, 0, a.size * 8));
  } else if (a.signed && a.size < 8) {
    e.emit(aluK(Alu.LSH, R7, 64 - a.size * 8), aluK(Alu.ARSH, R7, 64 - a.size * 8));
  }
}

/** Bytes a range takes in its slot: whole 8-byte words, zeroed past its end. */
export const rangeSlot = (length: number) => Math.ceil(length / 8) * 8;

/** Copies a byte range into the scratch at `at` (its slot, rangeSlot bytes), or jumps to `fail`. */
export function emitRange(e: Emitter, r: RangeAccess, fail: Label, at: number): void {
  const t = r.target;
  if (t.kind === 'pointer') {
    emitRead(e, t, fail, at);
    e.jump(Class.JMP | Jmp.JEQ | Src.K, R7, 0, 0, fail);
  } else {
    emitContainer(e, t, fail, at);
    e.emit(...addConst(R7, BigInt(t.offset)));
  }
  if (typeof r.index === 'bigint') {
    e.emit(...addConst(R7, r.index));
  } else {
    e.emit(mov(R8, R7));
    emitRead(e, r.index, fail, at);
    e.emit(aluX(Alu.ADD, R7, R8));
  }
  for (let off = 0; off < rangeSlot(r.length); off += 8) e.emit(stDw0(at + off));
  read(e, 0, r.length, fail, at);
}
