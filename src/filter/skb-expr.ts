/**
 * `--filter-skb-expr`: the expression (src/filter/skb-expr-parse.ts) resolved
 * against the running kernel's BTF, CO-RE style — each field's offset, size,
 * signedness and bitfield position come from BTF, every `->` is a pointer the
 * program reads and checks for NULL — and compiled to eBPF for the probes'
 * skb-expr region (probes/include/skb_expr.h).
 *
 * Region contract: r8 = the skb, r9 = a 32-byte stack scratch; the code leaves
 * 1 (match) or 0 in r0 and falls through at its end. Memory is read with
 * bpf_probe_read_kernel only, so the same code runs in every program type; a
 * read that faults or a NULL pointer on the way makes its comparison false.
 * Fields typed __be16/__be32/__be64 are compared in host order
 * (`skb->protocol == 0x0800`).
 */
import type { Btf } from '../bpf/btf/btf.js';
import { Alu, Class, type EbpfInsn, Jmp, Size, Src } from '../bpf/insn.js';
import { type CmpOp, type ExprNode, type Operand, SkbExprError, parseSkbExpr } from './skb-expr-parse.js';
import { type ExprRoot, type FieldAccess, SKB_ROOT, resolveField, resolveRange } from './skb-expr-resolve.js';
import {
  Emitter, type Label, R0, R1, R6, R7, R8, R9, aluK, aluX, emitFetch, emitRange, emitRead, fitsS32, ld64, ldx, mov, movK, rangeSlot, stDw0, stx,
} from './skb-expr-emit.js';

export { SkbExprError } from './skb-expr-parse.js';
export { type FieldAccess, resolveField } from './skb-expr-resolve.js';

export const SKB_EXPR_REGION_INSNS = 256;
export const SKB_EXPR_MAGIC = 0x70706b65;
/** --filter-xdp-expr's region (XDP program probes), the same size. */
export const XDP_EXPR_MAGIC = 0x70707865;
/** Bytes of the region's stack scratch: the longest string compared, with its NUL. */
const SCRATCH_BYTES = 32;

export interface CompiledSkbExpr {
  expression: string;
  code: EbpfInsn[];
}

const UNSIGNED_JMP: Record<CmpOp, number> = { '==': Jmp.JEQ, '!=': Jmp.JNE, '<': Jmp.JLT, '<=': Jmp.JLE, '>': Jmp.JGT, '>=': Jmp.JGE };
const SIGNED_JMP: Record<CmpOp, number> = { '==': Jmp.JEQ, '!=': Jmp.JNE, '<': Jmp.JSLT, '<=': Jmp.JSLE, '>': Jmp.JSGT, '>=': Jmp.JSGE };
const MIRROR: Record<CmpOp, CmpOp> = { '==': '==', '!=': '!=', '<': '>', '<=': '>=', '>': '<', '>=': '<=' };

function fieldBits(a: FieldAccess): number {
  return a.bitSize > 0 ? a.bitSize : a.size * 8;
}

/** The smallest and largest value a field holds, for constants that could never compare. */
function fieldRange(a: FieldAccess): [bigint, bigint] {
  const bits = BigInt(fieldBits(a));
  return a.signed ? [-(1n << (bits - 1n)), (1n << (bits - 1n)) - 1n] : [0n, (1n << bits) - 1n];
}

class Compiler {
  readonly e = new Emitter();
  constructor(private readonly btf: Btf, private readonly root: ExprRoot) {}

  /** Jumps to `yes` when `n` holds, to `no` otherwise. */
  cond(n: ExprNode, yes: Label, no: Label): void {
    switch (n.kind) {
      case 'and': {
        const mid = this.e.label();
        this.cond(n.left, mid, no);
        this.e.place(mid);
        this.cond(n.right, yes, no);
        return;
      }
      case 'or': {
        const mid = this.e.label();
        this.cond(n.left, yes, mid);
        this.e.place(mid);
        this.cond(n.right, yes, no);
        return;
      }
      case 'not':
        this.cond(n.operand, no, yes);
        return;
      case 'truthy':
        if (n.value.kind !== 'field') throw new SkbExprError(n.value.at, 'a constant alone is not a condition: compare a field with it');
        this.compare(n.value, '!=', { kind: 'number', value: 0n, at: n.at }, yes, no);
        return;
      case 'cmp': {
        const { left, right } = n;
        if (left.kind === 'field' && right.kind !== 'field') return this.compare(left, n.op, right, yes, no);
        if (right.kind === 'field' && left.kind !== 'field') return this.compare(right, MIRROR[n.op], left, yes, no);
        if (left.kind === 'field') throw new SkbExprError(right.at, 'compare a field with a constant (a number or a string), not with another field');
        throw new SkbExprError(n.at, `compare a field (${this.root.name}->…) with the constant`);
      }
    }
  }

  private compare(f: Extract<Operand, { kind: 'field' }>, op: CmpOp, c: Operand, yes: Label, no: Label): void {
    if (f.range) throw new SkbExprError(f.range.at, 'a byte range can be printed (--output-skb-metadata), not compared');
    const a = resolveField(this.btf, f, this.root);
    if (a.kind === 'chars') return this.compareString(f, a, op, c, yes, no);
    if (c.kind === 'string') throw new SkbExprError(c.at, `${f.text} is ${a.typeName}, not a char array: compare it with a number`);
    if (c.kind !== 'number') throw new SkbExprError(c.at, 'a constant expected');
    let value = c.value;
    const [min, max] = fieldRange(a);
    if (f.mask !== null) {
      if (f.mask < 0n || f.mask > ((1n << BigInt(fieldBits(a))) - 1n)) throw new SkbExprError(f.at, `the mask ${f.mask} is wider than ${f.text} (${a.typeName})`);
    }
    if (value < min || value > max) {
      throw new SkbExprError(c.at, `${value} does not fit in ${f.text} (${a.typeName}, ${min} to ${max})`);
    }
    emitRead(this.e, a, no);
    if (f.mask !== null) {
      if (fitsS32(f.mask)) this.e.emit(aluK(Alu.AND, R7, Number(f.mask)));
      else this.e.emit(...ld64(R1, f.mask), aluX(Alu.AND, R7, R1));
    }
    const jmp = (a.signed ? SIGNED_JMP : UNSIGNED_JMP)[op];
    if (!a.signed) value = BigInt.asUintN(64, value);
    if (fitsS32(value)) {
      this.e.jump(Class.JMP | jmp | Src.K, R7, 0, Number(value), yes);
    } else {
      this.e.emit(...ld64(R1, value));
      this.e.jump(Class.JMP | jmp | Src.X, R7, R1, 0, yes);
    }
    this.e.jump(Class.JMP | Jmp.JA, 0, 0, 0, no);
  }

  private compareString(f: Extract<Operand, { kind: 'field' }>, a: FieldAccess, op: CmpOp, c: Operand, yes: Label, no: Label): void {
    if (c.kind !== 'string') throw new SkbExprError(c.at, `${f.text} is ${a.typeName}: compare it with a string ("eth0")`);
    if (op !== '==' && op !== '!=') throw new SkbExprError(c.at, `strings compare with == and != only, not ${op}`);
    if (f.mask !== null) throw new SkbExprError(f.at, `${f.text} is ${a.typeName}: a mask needs a number`);
    const bytes = Buffer.from(c.value, 'utf8');
    if (bytes.length > a.size) throw new SkbExprError(c.at, `"${c.value}" is longer than ${f.text} (${a.typeName}): it can never be equal`);
    if (bytes.length >= SCRATCH_BYTES) throw new SkbExprError(c.at, `strings of up to ${SCRATCH_BYTES - 1} bytes can be compared`);
    // The string and its NUL when the array has room for one; the rest of the scratch stays zero.
    const n = Math.min(a.size, bytes.length + 1);
    const want = Buffer.alloc(Math.ceil(n / 4) * 4);
    bytes.copy(want);
    const [equal, differ] = op === '==' ? [yes, no] : [no, yes];
    // A read that faults (or a NULL on the way) makes == and != both false.
    emitFetch(this.e, a, n, no, want.length);
    for (let off = 0; off < want.length; off += 4) {
      this.e.emit(ldx(Size.W, R7, R9, off));
      this.e.jump(Class.JMP32 | Jmp.JNE | Src.K, R7, 0, want.readInt32LE(off), differ);
    }
    this.e.jump(Class.JMP | Jmp.JA, 0, 0, 0, equal);
  }
}

/**
 * Compiles `--filter-skb-expr` for this kernel. Throws SkbExprError (with a
 * column) for what the expression says wrong, before anything is loaded.
 */
export function compileSkbExpr(expression: string, btf: Btf, root: ExprRoot = SKB_ROOT): CompiledSkbExpr {
  const tree = parseSkbExpr(expression);
  const c = new Compiler(btf, root);
  const e = c.e;
  const yes = e.label();
  const no = e.label();
  const end = e.label();
  e.emit(mov(R6, R8));
  c.cond(tree, yes, no);
  e.place(yes);
  e.emit(movK(R0, 1));
  e.jump(Class.JMP | Jmp.JA, 0, 0, 0, end);
  e.place(no);
  e.emit(movK(R0, 0));
  e.place(end);
  const code = e.finish();
  if (code.length > SKB_EXPR_REGION_INSNS) {
    throw new SkbExprError(1, `it needs ${code.length} eBPF instructions; the probes have room for ${SKB_EXPR_REGION_INSNS}`);
  }
  return { expression, code };
}

export const SKB_META_REGION_INSNS = 1024;
export const SKB_META_MAGIC = 0x70706d64;
/** --output-xdp-metadata's region (XDP program probes, probes/include/sections/xdp_meta.h), the same size. */
export const XDP_META_MAGIC = 0x70707864;
/** Fields one section carries (pwru's is 4). */
export const MAX_SKB_META_FIELDS = 16;
/** Where the values start in the section (probes/include/sections/skb_meta.h): after the 8 bytes of the valid mask. */
const META_VALUES = 8;

/** Where one field's value is among the section's values. */
export interface MetaSlot {
  /** Byte offset from the first value. */
  offset: number;
  /** Bytes it takes: 8 for a number, a range's length rounded up to 8. */
  size: number;
  /** A byte range's length; 0 for a number. */
  bytes: number;
}

export interface CompiledSkbFetch {
  /** The fields as written, in the section's order. */
  fields: string[];
  /** Whether each is signed, for printing. */
  signed: boolean[];
  slots: MetaSlot[];
  /** Bytes of values the section carries (what the record grows by, beside the section's head). */
  bytes: number;
  code: EbpfInsn[];
}

/**
 * Compiles --output-skb-metadata: each field read as a --filter-skb-expr
 * comparison reads it (a byte range copied), stored in its slot after the
 * section's mask word, which holds the mask of the fields read (r0 at the end).
 * Throws SkbExprError naming the field.
 */
export function compileSkbFetch(fields: readonly string[], btf: Btf, root: ExprRoot = SKB_ROOT): CompiledSkbFetch {
  const example = `${root.name}->mark,${root.name}->hash`;
  if (fields.length === 0 || fields.length > MAX_SKB_META_FIELDS) {
    throw new SkbExprError(1, `name 1 to ${MAX_SKB_META_FIELDS} fields (${example})`);
  }
  const e = new Emitter();
  const signed: boolean[] = [];
  const slots: MetaSlot[] = [];
  let next = 0;
  // The mask lives in the section's first word: r8 is the reads' (a cast's sum, a range's address).
  e.emit(mov(R6, R8), stDw0(0));
  fields.forEach((text, i) => {
    const tree = parseSkbExpr(text);
    if (tree.kind !== 'truthy' || tree.value.kind !== 'field' || tree.value.mask !== null) {
      throw new SkbExprError(1, `'${text}' is not a field (e.g. ${root.name}->mark)`);
    }
    const f = tree.value;
    const skip = e.label();
    const at = META_VALUES + next;
    if (f.range) {
      const r = resolveRange(btf, f, root);
      slots.push({ offset: next, size: rangeSlot(r.length), bytes: r.length });
      signed.push(false);
      emitRange(e, r, skip, at);
    } else {
      const a = resolveField(btf, f, root);
      if (a.kind === 'chars') throw new SkbExprError(1, `${text} is ${a.typeName}: only numbers and pointers can be printed (or a byte range of it: [0:${a.size}])`);
      slots.push({ offset: next, size: 8, bytes: 0 });
      signed.push(a.signed);
      emitRead(e, a, skip, at);
      e.emit(stx(Size.DW, R9, R7, at));
    }
    next += slots[i]!.size;
    e.emit(ldx(Size.DW, R1, R9, 0), aluK(Alu.OR, R1, 1 << i), stx(Size.DW, R9, R1, 0));
    e.place(skip);
  });
  e.emit(ldx(Size.DW, R0, R9, 0));
  const code = e.finish();
  if (code.length > SKB_META_REGION_INSNS) throw new SkbExprError(1, `the fields need ${code.length} instructions; the probes have room for ${SKB_META_REGION_INSNS}`);
  return { fields: [...fields], signed, slots, bytes: next, code };
}
