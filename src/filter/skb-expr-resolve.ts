/**
 * The expression language's fields (src/filter/skb-expr-parse.ts) resolved
 * against the kernel's BTF, CO-RE style: each field's offset, size,
 * signedness and bitfield position come from BTF; every `->` is a pointer
 * the program reads; a cast starts the path from an address summed of fields
 * and numbers; a byte range names bytes behind a pointer or in an array.
 */
import { type Btf, BtfKind } from '../bpf/btf/btf.js';
import { didYouMean } from './did-you-mean.js';
import { type Operand, SkbExprError } from './skb-expr-parse.js';

type FieldOperand = Extract<Operand, { kind: 'field' }>;

/** What an expression's paths start from: `skb` (struct sk_buff *) or `xdp` (struct xdp_buff *). */
export interface ExprRoot {
  name: string;
  struct: string;
  /** A field of it, for messages. */
  example: string;
}

export const SKB_ROOT: ExprRoot = { name: 'skb', struct: 'sk_buff', example: 'skb->len' };
/** --filter-xdp-expr, --output-xdp-metadata: a traced XDP program's xdp_buff. */
export const XDP_ROOT: ExprRoot = { name: 'xdp', struct: 'xdp_buff', example: 'xdp->data' };

/** Where a field is and how to read it. */
export interface FieldAccess {
  /**
   * Where the path starts: null for the root's pointer, else (a cast) the sum
   * of these numeric fields of the root and constants, as a pointer.
   */
  base: Array<FieldAccess | bigint> | null;
  /** Byte offsets of the pointers read on the way, each from the previous one (the first from the base). */
  derefs: number[];
  /** Byte offset of the field from the last pointer. */
  offset: number;
  /** Bytes read. */
  size: number;
  /** `array`: any array, as the target of a byte range (its address, never its value). */
  kind: 'int' | 'pointer' | 'chars' | 'array';
  signed: boolean;
  bigEndian: boolean;
  /** Bitfields: the bits above `offset * 8` and their width; 0 width otherwise. */
  bitShift: number;
  bitSize: number;
  /** The C type as people read it, for messages (`u32`, `char[16]`, `struct sock *`). */
  typeName: string;
}

/** `target[index:length]`: `length` bytes from the target's address (a pointer's value, an array's place) plus the index. */
export interface RangeAccess {
  target: FieldAccess;
  index: FieldAccess | bigint;
  length: number;
}

const BE_TYPEDEFS = new Set(['__be16', '__be32', '__be64']);

export function describeType(btf: Btf, id: number): string {
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

function structNamed(btf: Btf, name: string, at: number, what: string): number {
  const id = btf.findByName(name, 'STRUCT').find((i) => btf.sizeof(i) > 0);
  if (id === undefined) {
    const hint = what === 'cast' ? '' : ' (the kernel\'s, or --kernel-btf)';
    throw new SkbExprError(at, `the BTF${hint} has no struct ${name}`);
  }
  return id;
}

/** A term of a cast's sum or a range's index: a number, or a numeric field of the root. */
function numericTerm(btf: Btf, t: Operand, root: ExprRoot, role: string): FieldAccess | bigint {
  if (t.kind === 'number') return t.value;
  if (t.kind !== 'field' || t.cast || t.range || t.mask !== null) throw new SkbExprError(t.at, `${role}: a field of ${root.name} or a number expected`);
  const a = resolveField(btf, t, root);
  if (a.kind !== 'int' && a.kind !== 'pointer') throw new SkbExprError(t.at, `${role}: ${t.text} is ${a.typeName}, not a number or a pointer`);
  return a;
}

/**
 * Resolves a field operand against BTF; throws SkbExprError naming the step
 * that does not exist. `arrays`: an array of any type is the answer (a byte
 * range's target), not only char arrays.
 */
export function resolveField(btf: Btf, f: FieldOperand, root: ExprRoot = SKB_ROOT, arrays = false): FieldAccess {
  let base: FieldAccess['base'] = null;
  let pointee: number;
  let where: string;
  if (f.cast) {
    base = f.cast.terms.map((t) => numericTerm(btf, t, root, `the address cast to struct ${f.cast!.struct} *`));
    pointee = structNamed(btf, f.cast.struct, f.cast.at, 'cast');
    where = `(struct ${f.cast.struct} *)`;
  } else {
    if (f.root !== root.name) throw new SkbExprError(f.at, `'${f.root}': fields start at ${root.name} (e.g. ${root.example})`);
    pointee = structNamed(btf, root.struct, f.at, 'root');
    where = root.name;
  }
  const derefs: number[] = [];
  // The value so far: the start is a pointer in a register; after a step, a member at `offset` bits.
  let typeId = -1;
  let inRegister = true;
  let offsetBits = 0;
  let bitSize = 0;
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
  if (inRegister) throw new SkbExprError(f.at, `${root.name} is the pointer itself: compare one of its fields (e.g. ${root.example})`);

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
  const common = { base, derefs, offset: Math.floor(offsetBits / 8), bigEndian, bitShift: 0, bitSize: 0, typeName };
  if (bitSize > 0) {
    const shift = offsetBits % 8;
    const size = Math.ceil((shift + bitSize) / 8);
    const signed = t.kind === 'INT' && t.signed;
    return { ...common, size, kind: 'int', signed, bigEndian: false, bitShift: shift, bitSize };
  }
  switch (t.kind) {
    case 'INT':
    case 'ENUM':
    case 'ENUM64':
      return { ...common, size: t.size, kind: 'int', signed: t.signed };
    case 'PTR':
      return { ...common, size: 8, kind: 'pointer', signed: false };
    case 'ARRAY': {
      const elem = btf.type(btf.resolve(t.type));
      if (elem.kind === 'INT' && elem.size === 1 && !arrays) return { ...common, size: t.nelems, kind: 'chars', signed: false };
      if (arrays) return { ...common, size: btf.sizeof(r), kind: 'array', signed: false };
      throw new SkbExprError(f.at, `${where} is ${typeName}: only char arrays (strings) can be compared`);
    }
    default:
      throw new SkbExprError(f.at, `${where} is ${typeName}: compare one of its fields`);
  }
}

/** `target[index:length]`: the target a pointer or an array, the index a number or a numeric field. */
export function resolveRange(btf: Btf, f: FieldOperand, root: ExprRoot = SKB_ROOT): RangeAccess {
  const range = f.range!;
  const target = resolveField(btf, { ...f, range: undefined, mask: null }, root, true);
  if (target.kind !== 'pointer' && target.kind !== 'array') {
    throw new SkbExprError(range.at, `${f.text.slice(0, f.text.lastIndexOf('['))} is ${target.typeName}: a byte range needs a pointer or an array`);
  }
  const index = numericTerm(btf, range.index, root, 'the range\'s index');
  if (typeof index === 'bigint' && target.kind === 'array' && index + BigInt(range.length) > BigInt(target.size)) {
    throw new SkbExprError(range.at, `[${index}:${range.length}] goes past the end of ${target.typeName} (${target.size} bytes)`);
  }
  return { target, index, length: range.length };
}
