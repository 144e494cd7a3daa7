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
import { type Btf, BtfKind } from '../bpf/btf/btf.js';
import { Alu, Class, Helper, Jmp, Mode, Size, Src, TO_BE, type EbpfInsn, insn } from '../bpf/insn.js';
import { didYouMean } from './did-you-mean.js';
import { type CmpOp, type ExprNode, type Operand, SkbExprError, parseSkbExpr } from './skb-expr-parse.js';

export { SkbExprError } from './skb-expr-parse.js';

export const SKB_EXPR_REGION_INSNS = 256;
export const SKB_EXPR_MAGIC = 0x70706b65;
/** Bytes of the region's stack scratch: the longest string compared, with its NUL. */
const SCRATCH_BYTES = 32;

/** Where a field is and how to read it. */
export interface FieldAccess {
  /** Byte offsets of the pointers read on the way, each from the previous one (the first from the skb). */
  derefs: number[];
  /** Byte offset of the field from the last pointer. */
  offset: number;
  /** Bytes read. */
  size: number;
  kind: 'int' | 'pointer' | 'chars';
  signed: boolean;
  bigEndian: boolean;
  /** Bitfields: the bits above `offset * 8` and their width; 0 width otherwise. */
  bitShift: number;
  bitSize: number;
  /** The C type as people read it, for messages (`u32`, `char[16]`, `struct sock *`). */
  typeName: string;
}

const BE_TYPEDEFS = new Set(['__be16', '__be32', '__be64']);

function describeType(btf: Btf, id: number): string {
  const r = btf.resolve(id);
  const t = btf.type(r);
  switch (t.kind) {
    case 'PTR': {
      const inner = btf.resolve(t.type);
      const it = btf.type(inner);
      const name = btf.nameOf(inner);
      const base = it.kind === 'STRUCT' ? `struct ${name}` : it.kind === 'UNION' ? `union ${name}` : name || 'void';
      return `${base} *`;
    }
    case 'STRUCT':
      return `struct ${btf.nameOf(r) || '(anonymous)'}`;
    case 'UNION':
      return `union ${btf.nameOf(r) || '(anonymous)'}`;
    case 'ARRAY':
      return `${describeType(btf, t.type)}[${t.nelems}]`;
    default:
      return btf.nameOf(r) || t.kind.toLowerCase();
  }
}

/** Resolves a field operand against BTF; throws SkbExprError naming the step that does not exist. */
export function resolveField(btf: Btf, f: Extract<Operand, { kind: 'field' }>): FieldAccess {
  if (f.root !== 'skb') throw new SkbExprError(f.at, `'${f.root}': fields start at skb (e.g. skb->len)`);
  const skb = btf.findByName('sk_buff', 'STRUCT').find((id) => btf.sizeof(id) > 0);
  if (skb === undefined) throw new SkbExprError(f.at, 'the BTF (the kernel\'s, or --kernel-btf) has no struct sk_buff');
  const derefs: number[] = [];
  // The value so far: `skb` itself is a pointer in a register; after a step, a member at `offset` bits.
  let typeId = -1;
  let inRegister = true;
  let pointee = skb;
  let offsetBits = 0;
  let bitSize = 0;
  let where = 'skb';
  for (const step of f.path) {
    if (step.op === '->') {
      if (!inRegister) {
        const r = btf.resolve(typeId);
        if (btf.kindOf(r) !== BtfKind.PTR) {
          throw new SkbExprError(step.at - 2, `${where} is ${describeType(btf, typeId)}, not a pointer: use '.'`);
        }
        derefs.push(offsetBits / 8);
        pointee = btf.resolve(btf.refType(r));
        offsetBits = 0;
      }
      inRegister = false;
    } else {
      if (inRegister) throw new SkbExprError(step.at - 1, `${where} is a pointer: use '->'`);
      const r = btf.resolve(typeId);
      const k = btf.kindOf(r);
      if (k === BtfKind.PTR) throw new SkbExprError(step.at - 1, `${where} is ${describeType(btf, typeId)}, a pointer: use '->'`);
      pointee = r;
    }
    const container = btf.resolve(pointee);
    const ck = btf.kindOf(container);
    if (ck !== BtfKind.STRUCT && ck !== BtfKind.UNION) {
      throw new SkbExprError(step.at, `${where} is ${describeType(btf, inRegister ? typeId : container)}: it has no fields`);
    }
    const members = btf.membersOf(container);
    const m = members.get(step.name);
    if (!m) {
      const hint = didYouMean(step.name, members.keys());
      throw new SkbExprError(step.at, `${describeType(btf, container)} has no field '${step.name}'${hint ? ` (did you mean '${hint}'?)` : ''}`);
    }
    offsetBits += m.bitOffset;
    bitSize = m.bitSize;
    typeId = m.typeId;
    where = `${where}${step.op}${step.name}`;
  }
  if (inRegister) throw new SkbExprError(f.at, 'skb is the pointer itself: compare one of its fields (e.g. skb->len)');

  let bigEndian = false;
  for (let id = typeId, depth = 0; depth < 16; depth++) {
    const k = btf.kindOf(id);
    if (k === BtfKind.TYPEDEF && BE_TYPEDEFS.has(btf.nameOf(id))) bigEndian = true;
    if (k !== BtfKind.TYPEDEF && k !== BtfKind.CONST && k !== BtfKind.VOLATILE && k !== BtfKind.RESTRICT && k !== BtfKind.TYPE_TAG) break;
    id = btf.refType(id);
  }
  const r = btf.resolve(typeId);
  const t = btf.type(r);
  const typeName = describeType(btf, typeId);
  const base = { derefs, offset: Math.floor(offsetBits / 8), bigEndian, bitShift: 0, bitSize: 0, typeName };
  if (bitSize > 0) {
    const shift = offsetBits % 8;
    const size = Math.ceil((shift + bitSize) / 8);
    const signed = t.kind === 'INT' && t.signed;
    return { ...base, size, kind: 'int', signed, bigEndian: false, bitShift: shift, bitSize };
  }
  switch (t.kind) {
    case 'INT':
      return { ...base, size: t.size, kind: 'int', signed: t.signed };
    case 'ENUM':
    case 'ENUM64':
      return { ...base, size: t.size, kind: 'int', signed: t.signed };
    case 'PTR':
      return { ...base, size: 8, kind: 'pointer', signed: false };
    case 'ARRAY': {
      const elem = btf.type(btf.resolve(t.type));
      if (elem.kind === 'INT' && elem.size === 1) return { ...base, size: t.nelems, kind: 'chars', signed: false };
      throw new SkbExprError(f.at, `${where} is ${typeName}: only char arrays (strings) can be compared`);
    }
    default:
      throw new SkbExprError(f.at, `${where} is ${typeName}: compare one of its fields`);
  }
}

// Registers of the region (probes/include/skb_expr.h): r6 the skb, r7 the value read, r9 the scratch.
const R0 = 0, R1 = 1, R2 = 2, R3 = 3, R6 = 6, R7 = 7, R8 = 8, R9 = 9;
const mov = (dst: number, src: number) => insn(Class.ALU64 | Alu.MOV | Src.X, dst, src);
const movK = (dst: number, k: number) => insn(Class.ALU64 | Alu.MOV | Src.K, dst, 0, 0, k);
const aluK = (op: number, dst: number, k: number) => insn(Class.ALU64 | op | Src.K, dst, 0, 0, k);
const ldx = (size: number, dst: number, src: number, off: number) => insn(Class.LDX | Mode.MEM | size, dst, src, off);
const stDw0 = (off: number) => insn(Class.ST | Mode.MEM | Size.DW, R9, 0, off, 0);
const call = (helper: number) => insn(Class.JMP | Jmp.CALL, 0, 0, 0, helper);

/** `dst = imm64`: the two-slot load. */
function ld64(dst: number, v: bigint): EbpfInsn[] {
  const u = BigInt.asUintN(64, v);
  return [
    insn(Class.LD | Size.DW | Mode.IMM, dst, 0, 0, Number(u & 0xffffffffn) | 0),
    insn(0, 0, 0, 0, Number(u >> 32n) | 0),
  ];
}

const fitsS32 = (v: bigint) => v >= -(2n ** 31n) && v < 2n ** 31n;

const UNSIGNED_JMP: Record<CmpOp, number> = { '==': Jmp.JEQ, '!=': Jmp.JNE, '<': Jmp.JLT, '<=': Jmp.JLE, '>': Jmp.JGT, '>=': Jmp.JGE };
const SIGNED_JMP: Record<CmpOp, number> = { '==': Jmp.JEQ, '!=': Jmp.JNE, '<': Jmp.JSLT, '<=': Jmp.JSLE, '>': Jmp.JSGT, '>=': Jmp.JSGE };
const MIRROR: Record<CmpOp, CmpOp> = { '==': '==', '!=': '!=', '<': '>', '<=': '>=', '>': '<', '>=': '<=' };

type Label = number;

class Emitter {
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

export interface CompiledSkbExpr {
  expression: string;
  code: EbpfInsn[];
}

/** Follows the field's pointers from the skb into r7, then reads `size` bytes at its offset into the scratch. */
function emitFetch(e: Emitter, a: FieldAccess, size: number, fail: Label, zeroFirst: number): void {
  e.emit(mov(R7, R6));
  const read = (off: number, n: number) => {
    e.emit(mov(R1, R9), movK(R2, n), mov(R3, R7), aluK(Alu.ADD, R3, off), call(Helper.probe_read_kernel));
    e.jump(Class.JMP | Jmp.JNE | Src.K, R0, 0, 0, fail);
  };
  for (const off of a.derefs) {
    read(off, 8);
    e.emit(ldx(Size.DW, R7, R9, 0));
    e.jump(Class.JMP | Jmp.JEQ | Src.K, R7, 0, 0, fail);
  }
  // Bytes the read does not cover are compared too: zero them.
  for (let off = 0; off < zeroFirst; off += 8) e.emit(stDw0(off));
  read(a.offset, size);
}

/** Reads a numeric field into r7, in host order, sign-extended when signed (or jumps to `fail`). */
function emitRead(e: Emitter, a: FieldAccess, fail: Label): void {
  const width = a.size === 1 ? Size.B : a.size === 2 ? Size.H : a.size === 4 ? Size.W : a.size === 8 ? Size.DW : null;
  emitFetch(e, a, a.size, fail, width === null ? 8 : 0);
  e.emit(ldx(width ?? Size.DW, R7, R9, 0));
  if (a.bitSize > 0) {
    if (a.bitShift > 0) e.emit(aluK(Alu.RSH, R7, a.bitShift));
    const mask = (1n << BigInt(a.bitSize)) - 1n;
    if (fitsS32(mask)) e.emit(aluK(Alu.AND, R7, Number(mask)));
    else e.emit(...ld64(R1, mask), insn(Class.ALU64 | Alu.AND | Src.X, R7, R1));
    if (a.signed) e.emit(aluK(Alu.LSH, R7, 64 - a.bitSize), aluK(Alu.ARSH, R7, 64 - a.bitSize));
  } else if (a.bigEndian && a.size > 1) {
    e.emit(insn(Class.ALU | Alu.END | TO_BE, R7, 0, 0, a.size * 8));
  } else if (a.signed && a.size < 8) {
    e.emit(aluK(Alu.LSH, R7, 64 - a.size * 8), aluK(Alu.ARSH, R7, 64 - a.size * 8));
  }
}

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
  constructor(private readonly btf: Btf) {}

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
        throw new SkbExprError(n.at, 'compare a field (skb->…) with the constant');
      }
    }
  }

  private compare(f: Extract<Operand, { kind: 'field' }>, op: CmpOp, c: Operand, yes: Label, no: Label): void {
    const a = resolveField(this.btf, f);
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
      else this.e.emit(...ld64(R1, f.mask), insn(Class.ALU64 | Alu.AND | Src.X, R7, R1));
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
export function compileSkbExpr(expression: string, btf: Btf): CompiledSkbExpr {
  const tree = parseSkbExpr(expression);
  const c = new Compiler(btf);
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

export const SKB_META_REGION_INSNS = 256;
export const SKB_META_MAGIC = 0x70706d64;
/** pwru's limit, and the section's room. */
export const MAX_SKB_META_FIELDS = 4;
/** Where the values go in the region's scratch (probes/include/sections/skb_meta.h): after the reads' 32 bytes. */
const META_VALUES = 32;

export interface CompiledSkbFetch {
  /** The fields as written, in the section's order. */
  fields: string[];
  /** Whether each is signed, for printing. */
  signed: boolean[];
  code: EbpfInsn[];
}

/**
 * Compiles --output-skb-metadata: each field read as a --filter-skb-expr
 * comparison reads it, stored in the section's slot; r0 ends as the mask of
 * the fields that could be read. Throws SkbExprError naming the field.
 */
export function compileSkbFetch(fields: readonly string[], btf: Btf): CompiledSkbFetch {
  if (fields.length === 0 || fields.length > MAX_SKB_META_FIELDS) {
    throw new SkbExprError(1, `name 1 to ${MAX_SKB_META_FIELDS} fields (skb->mark,skb->hash)`);
  }
  const e = new Emitter();
  const signed: boolean[] = [];
  e.emit(mov(R6, R8), movK(R8, 0));
  fields.forEach((text, i) => {
    const tree = parseSkbExpr(text);
    if (tree.kind !== 'truthy' || tree.value.kind !== 'field' || tree.value.mask !== null) {
      throw new SkbExprError(1, `'${text}' is not a field (e.g. skb->mark)`);
    }
    const a = resolveField(btf, tree.value);
    if (a.kind === 'chars') throw new SkbExprError(1, `${text} is ${a.typeName}: only numbers and pointers can be printed`);
    signed.push(a.signed);
    const skip = e.label();
    emitRead(e, a, skip);
    e.emit(insn(Class.STX | Mode.MEM | Size.DW, R9, R7, META_VALUES + 8 * i), aluK(Alu.OR, R8, 1 << i));
    e.place(skip);
  });
  e.emit(mov(R0, R8));
  const code = e.finish();
  if (code.length > SKB_META_REGION_INSNS) throw new SkbExprError(1, `the fields need ${code.length} instructions; the probes have room for ${SKB_META_REGION_INSNS}`);
  return { fields: [...fields], signed, code };
}
