/**
 * Reader for the raw BTF format: /sys/kernel/btf/vmlinux, module BTF (split
 * on top of vmlinux) and the `.BTF` section of an eBPF object.
 *
 * vmlinux carries ~130k types, so parsing only records where each type
 * starts; types are decoded on demand and the name index is built on first use.
 */

import { readFileSync } from 'node:fs';

export const BTF_MAGIC = 0xeb9f;

export const BtfKind = {
  UNKN: 0,
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const;

export type BtfKindName = Exclude<keyof typeof BtfKind, 'UNKN'>;

const KIND_NAMES: readonly (BtfKindName | 'VOID')[] = [
  'VOID', 'INT', 'PTR', 'ARRAY', 'STRUCT', 'UNION', 'ENUM', 'FWD', 'TYPEDEF', 'VOLATILE',
  'CONST', 'RESTRICT', 'FUNC', 'FUNC_PROTO', 'VAR', 'DATASEC', 'FLOAT', 'DECL_TAG',
  'TYPE_TAG', 'ENUM64',
];

export interface BtfHeader {
  magic: number;
  version: number;
  flags: number;
  hdrLen: number;
  typeOff: number;
  typeLen: number;
  strOff: number;
  strLen: number;
}

export interface BtfMember {
  name: string;
  type: number;
  /** Offset from the start of the struct, in bits. */
  bitOffset: number;
  /** Width of a bitfield; 0 for an ordinary member. */
  bitSize: number;
}

export interface BtfEnumValue<V extends number | bigint = number> {
  name: string;
  value: V;
}

export interface BtfParam {
  name: string;
  type: number;
}

export interface BtfVarSecinfo {
  type: number;
  offset: number;
  size: number;
}

export type BtfLinkage = 'static' | 'global' | 'extern';

interface Common {
  id: number;
  name: string;
}

/** Kinds that only point at another type. */
export type BtfRefKind = 'PTR' | 'TYPEDEF' | 'VOLATILE' | 'CONST' | 'RESTRICT' | 'TYPE_TAG';

export type BtfType =
  | (Common & { kind: 'VOID' })
  | (Common & {
      kind: 'INT';
      size: number;
      bits: number;
      bitOffset: number;
      signed: boolean;
      char: boolean;
      bool: boolean;
    })
  | { [K in BtfRefKind]: Common & { kind: K; type: number } }[BtfRefKind]
  | (Common & { kind: 'ARRAY'; type: number; indexType: number; nelems: number })
  | (Common & { kind: 'STRUCT'; size: number; members: BtfMember[] })
  | (Common & { kind: 'UNION'; size: number; members: BtfMember[] })
  | (Common & { kind: 'ENUM'; size: number; signed: boolean; values: BtfEnumValue<number>[] })
  | (Common & { kind: 'ENUM64'; size: number; signed: boolean; values: BtfEnumValue<bigint>[] })
  | (Common & { kind: 'FWD'; fwdKind: 'struct' | 'union' })
  | (Common & { kind: 'FUNC'; type: number; linkage: BtfLinkage })
  | (Common & { kind: 'FUNC_PROTO'; ret: number; params: BtfParam[]; variadic: boolean })
  | (Common & { kind: 'VAR'; type: number; linkage: BtfLinkage })
  | (Common & { kind: 'DATASEC'; size: number; vars: BtfVarSecinfo[] })
  | (Common & { kind: 'FLOAT'; size: number })
  | (Common & { kind: 'DECL_TAG'; type: number; componentIdx: number });

export type BtfTypeOf<K extends BtfType['kind']> = Extract<BtfType, { kind: K }>;

export interface TracepointArg {
  /** Position among the tracepoint's own arguments (the context pointer excluded). */
  index: number;
  typeId: number;
  typeName: string;
}

export interface StructMemberLayout {
  /** Byte offset (rounded down for bitfields). */
  offset: number;
  bitOffset: number;
  bitSize: number;
  typeId: number;
}

export interface StructLayout {
  id: number;
  size: number;
  /** Members of anonymous inner structs and unions appear flattened, as C sees them. */
  members: Map<string, StructMemberLayout>;
}

export interface FunctionArgMatch {
  name: string;
  id: number;
  /** 1-based argument position. */
  position: number;
}

const LINKAGE: readonly BtfLinkage[] = ['static', 'global', 'extern'];
const HDR_MIN = 24;
const MAX_DEPTH = 32;

export class Btf {
  readonly header: BtfHeader;
  /** Ids of this blob's own types start here (1, or after the base for split BTF). */
  readonly firstId: number;
  readonly base: Btf | null;

  private readonly view: DataView;
  private readonly strBytes: Uint8Array;
  /** Whole string section as text when it is pure ASCII, so a name is a slice. */
  private readonly strText: string | null;
  private readonly strBase: number;
  /** Byte offset (within `view`) of each own type, by `id - firstId`. */
  private readonly offsets: Uint32Array;
  private readonly kinds: Uint8Array;
  private nameIndex: Map<string, number[]> | null = null;
  private readonly decoder = new TextDecoder();

  private constructor(buf: Uint8Array, base: Btf | null) {
    if (buf.byteLength < HDR_MIN) throw new Error('BTF: blob too short');
    const hv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const magic = hv.getUint16(0, true);
    if (magic !== BTF_MAGIC) {
      if (hv.getUint16(0, false) === BTF_MAGIC) throw new Error('BTF: big-endian BTF is not supported');
      throw new Error(`BTF: bad magic 0x${magic.toString(16)}`);
    }
    const header: BtfHeader = {
      magic,
      version: hv.getUint8(2),
      flags: hv.getUint8(3),
      hdrLen: hv.getUint32(4, true),
      typeOff: hv.getUint32(8, true),
      typeLen: hv.getUint32(12, true),
      strOff: hv.getUint32(16, true),
      strLen: hv.getUint32(20, true),
    };
    if (header.version !== 1) throw new Error(`BTF: unsupported version ${header.version}`);
    if (header.hdrLen < HDR_MIN) throw new Error(`BTF: bad header length ${header.hdrLen}`);
    const typeStart = header.hdrLen + header.typeOff;
    const strStart = header.hdrLen + header.strOff;
    if (typeStart + header.typeLen > buf.byteLength || strStart + header.strLen > buf.byteLength) {
      throw new Error('BTF: sections extend past the end of the blob');
    }
    this.header = header;
    this.base = base;
    this.firstId = base ? base.firstId + base.ownCount : 1;
    this.strBase = base ? base.strBase + base.header.strLen : 0;
    this.view = new DataView(buf.buffer, buf.byteOffset + typeStart, header.typeLen);
    this.strBytes = buf.subarray(strStart, strStart + header.strLen);
    this.strText = isAscii(this.strBytes) ? this.decoder.decode(this.strBytes) : null;

    const { offsets, kinds } = scanTypes(this.view);
    this.offsets = offsets;
    this.kinds = kinds;
  }

  /** Parses a BTF blob; `base` is vmlinux for module (split) BTF. */
  static parse(buf: Uint8Array, base?: Btf): Btf {
    return new Btf(buf, base ?? null);
  }

  static loadVmlinux(path = '/sys/kernel/btf/vmlinux'): Btf {
    return new Btf(readFileSync(path), null);
  }

  /** Module BTF, e.g. /sys/kernel/btf/nf_conntrack, which refers to vmlinux types. */
  static loadSplit(path: string, base: Btf): Btf {
    return new Btf(readFileSync(path), base);
  }

  /** Number of types in this blob, void excluded. */
  get ownCount(): number {
    return this.offsets.length;
  }

  /** Highest valid type id. */
  get maxId(): number {
    return this.firstId + this.offsets.length - 1;
  }

  /** The string at `off` in the string section (base strings first for split BTF). */
  str(off: number): string {
    if (off < this.strBase) return this.base!.str(off);
    const at = off - this.strBase;
    if (at >= this.strBytes.length) throw new Error(`BTF: string offset ${off} out of range`);
    if (this.strText !== null) {
      const end = this.strText.indexOf('\0', at);
      return this.strText.slice(at, end < 0 ? undefined : end);
    }
    let end = this.strBytes.indexOf(0, at);
    if (end < 0) end = this.strBytes.length;
    return this.decoder.decode(this.strBytes.subarray(at, end));
  }

  /** Numeric kind of `id` (0 for void), without decoding the type. */
  kindOf(id: number): number {
    if (id === 0) return 0;
    if (id < this.firstId) return this.base!.kindOf(id);
    return this.kinds[this.index(id)]!;
  }

  kindName(id: number): BtfType['kind'] {
    return KIND_NAMES[this.kindOf(id)]!;
  }

  /** Name of `id` without decoding its members ('' when anonymous). */
  nameOf(id: number): string {
    if (id === 0) return '';
    if (id < this.firstId) return this.base!.nameOf(id);
    return this.str(this.view.getUint32(this.offsets[this.index(id)]!, true));
  }

  type(id: number): BtfType {
    if (id === 0) return { kind: 'VOID', id: 0, name: '' };
    if (id < this.firstId) return this.base!.type(id);
    const v = this.view;
    const at = this.offsets[this.index(id)]!;
    const name = this.str(v.getUint32(at, true));
    const info = v.getUint32(at + 4, true);
    const sizeOrType = v.getUint32(at + 8, true);
    const vlen = info & 0xffff;
    const kindFlag = info >>> 31 === 1;
    const kind = (info >>> 24) & 0x1f;
    const p = at + 12;
    switch (kind) {
      case BtfKind.INT: {
        const e = v.getUint32(p, true);
        const enc = (e >>> 24) & 0x0f;
        return {
          kind: 'INT', id, name, size: sizeOrType,
          bits: e & 0xff, bitOffset: (e >>> 16) & 0xff,
          signed: (enc & 1) !== 0, char: (enc & 2) !== 0, bool: (enc & 4) !== 0,
        };
      }
      case BtfKind.PTR:
      case BtfKind.TYPEDEF:
      case BtfKind.VOLATILE:
      case BtfKind.CONST:
      case BtfKind.RESTRICT:
      case BtfKind.TYPE_TAG:
        return { kind: KIND_NAMES[kind] as BtfRefKind, id, name, type: sizeOrType };
      case BtfKind.ARRAY:
        return {
          kind: 'ARRAY', id, name,
          type: v.getUint32(p, true), indexType: v.getUint32(p + 4, true), nelems: v.getUint32(p + 8, true),
        };
      case BtfKind.STRUCT:
      case BtfKind.UNION: {
        const members: BtfMember[] = new Array(vlen);
        for (let i = 0; i < vlen; i++) {
          const m = p + i * 12;
          const off = v.getUint32(m + 8, true);
          members[i] = {
            name: this.str(v.getUint32(m, true)),
            type: v.getUint32(m + 4, true),
            // With kind_flag the top byte holds the bitfield width.
            bitOffset: kindFlag ? off & 0xffffff : off,
            bitSize: kindFlag ? off >>> 24 : 0,
          };
        }
        return { kind: kind === BtfKind.STRUCT ? 'STRUCT' : 'UNION', id, name, size: sizeOrType, members };
      }
      case BtfKind.ENUM: {
        const values: BtfEnumValue<number>[] = new Array(vlen);
        for (let i = 0; i < vlen; i++) {
          const m = p + i * 8;
          const value = kindFlag ? v.getInt32(m + 4, true) : v.getUint32(m + 4, true);
          values[i] = { name: this.str(v.getUint32(m, true)), value };
        }
        return { kind: 'ENUM', id, name, size: sizeOrType, signed: kindFlag, values };
      }
      case BtfKind.ENUM64: {
        const values: BtfEnumValue<bigint>[] = new Array(vlen);
        for (let i = 0; i < vlen; i++) {
          const m = p + i * 12;
          const lo = BigInt(v.getUint32(m + 4, true));
          const hi = BigInt(v.getUint32(m + 8, true));
          const raw = (hi << 32n) | lo;
          values[i] = { name: this.str(v.getUint32(m, true)), value: kindFlag ? BigInt.asIntN(64, raw) : raw };
        }
        return { kind: 'ENUM64', id, name, size: sizeOrType, signed: kindFlag, values };
      }
      case BtfKind.FWD:
        return { kind: 'FWD', id, name, fwdKind: kindFlag ? 'union' : 'struct' };
      case BtfKind.FUNC:
        return { kind: 'FUNC', id, name, type: sizeOrType, linkage: LINKAGE[vlen] ?? 'static' };
      case BtfKind.FUNC_PROTO: {
        const params: BtfParam[] = [];
        let variadic = false;
        for (let i = 0; i < vlen; i++) {
          const m = p + i * 8;
          const nameOff = v.getUint32(m, true);
          const type = v.getUint32(m + 4, true);
          // A trailing unnamed void parameter marks `...`.
          if (i === vlen - 1 && type === 0 && nameOff === 0) { variadic = true; break; }
          params.push({ name: this.str(nameOff), type });
        }
        return { kind: 'FUNC_PROTO', id, name, ret: sizeOrType, params, variadic };
      }
      case BtfKind.VAR:
        return { kind: 'VAR', id, name, type: sizeOrType, linkage: LINKAGE[v.getUint32(p, true)] ?? 'static' };
      case BtfKind.DATASEC: {
        const vars: BtfVarSecinfo[] = new Array(vlen);
        for (let i = 0; i < vlen; i++) {
          const m = p + i * 12;
          vars[i] = { type: v.getUint32(m, true), offset: v.getUint32(m + 4, true), size: v.getUint32(m + 8, true) };
        }
        return { kind: 'DATASEC', id, name, size: sizeOrType, vars };
      }
      case BtfKind.FLOAT:
        return { kind: 'FLOAT', id, name, size: sizeOrType };
      case BtfKind.DECL_TAG:
        return { kind: 'DECL_TAG', id, name, type: sizeOrType, componentIdx: v.getInt32(p, true) };
      default:
        throw new Error(`BTF: type ${id} has unknown kind ${kind}`);
    }
  }

  /** Like `type`, but checks the kind. */
  typeAs<K extends BtfType['kind']>(id: number, kind: K): BtfTypeOf<K> {
    const t = this.type(id);
    if (t.kind !== kind) throw new Error(`BTF: type ${id} is ${t.kind}, not ${kind}`);
    return t as BtfTypeOf<K>;
  }

  /** Ids of the named types (base types first for split BTF), optionally of one kind. */
  findByName(name: string, kind?: BtfType['kind']): number[] {
    const own = this.names().get(name);
    const fromBase = this.base ? this.base.findByName(name, kind) : [];
    const mine = own ? (kind ? own.filter((id) => this.kindName(id) === kind) : own.slice()) : [];
    return fromBase.length ? fromBase.concat(mine) : mine;
  }

  /** The first type of that name and kind, or null. */
  findOne(name: string, kind?: BtfType['kind']): number | null {
    return this.findByName(name, kind)[0] ?? null;
  }

  /** Skips typedef, const, volatile, restrict and type tags. */
  resolve(id: number): number {
    for (let depth = 0; depth < MAX_DEPTH; depth++) {
      const k = this.kindOf(id);
      if (k !== BtfKind.TYPEDEF && k !== BtfKind.CONST && k !== BtfKind.VOLATILE &&
          k !== BtfKind.RESTRICT && k !== BtfKind.TYPE_TAG) return id;
      id = this.refType(id);
    }
    throw new Error(`BTF: modifier chain too deep at ${id}`);
  }

  /** C-like spelling: `struct sk_buff *`, `enum skb_drop_reason`, `u32`, `const char *`. */
  typeName(id: number): string {
    return this.spell(id, 0);
  }

  /** Size in bytes; throws for types without one (void, functions, forward declarations). */
  sizeof(id: number): number {
    let elems = 1;
    for (let depth = 0; depth < MAX_DEPTH; depth++) {
      id = this.resolve(id);
      switch (this.kindOf(id)) {
        case BtfKind.PTR:
          return elems * 8;
        case BtfKind.INT:
        case BtfKind.STRUCT:
        case BtfKind.UNION:
        case BtfKind.ENUM:
        case BtfKind.ENUM64:
        case BtfKind.FLOAT:
        case BtfKind.DATASEC:
          return elems * this.sizeField(id);
        case BtfKind.ARRAY: {
          const a = this.typeAs(id, 'ARRAY');
          elems *= a.nelems;
          id = a.type;
          continue;
        }
        case BtfKind.VAR:
          id = this.refType(id);
          continue;
        default:
          throw new Error(`BTF: ${this.typeName(id)} (${this.kindName(id)} ${id}) has no size`);
      }
    }
    throw new Error(`BTF: type chain too deep at ${id}`);
  }

  /**
   * Arguments of tracepoint `name`, from its `btf_trace_<name>` typedef, without
   * the leading context pointer. Null when the kernel has no such tracepoint.
   */
  tracepointProto(name: string): TracepointArg[] | null {
    const proto = this.tracepointProtoId(name);
    if (proto === null) return null;
    const params = this.typeAs(proto, 'FUNC_PROTO').params;
    return params.slice(1).map((p, index) => ({ index, typeId: p.type, typeName: this.typeName(p.type) }));
  }

  /** Id of the FUNC_PROTO behind `btf_trace_<name>`, or null. */
  tracepointProtoId(name: string): number | null {
    for (const td of this.findByName(`btf_trace_${name}`, 'TYPEDEF')) {
      const ptr = this.resolve(td);
      if (this.kindOf(ptr) !== BtfKind.PTR) continue;
      const proto = this.resolve(this.refType(ptr));
      if (this.kindOf(proto) === BtfKind.FUNC_PROTO) return proto;
    }
    return null;
  }

  /**
   * Value → name of an enum (ENUM or ENUM64), the first name winning for
   * aliased values. Null when there is no enum of that name.
   */
  enumValues(name: string): Map<number, string> | null {
    const id = this.findOne(name, 'ENUM') ?? this.findOne(name, 'ENUM64');
    if (id === null) return null;
    const t = this.type(id);
    const out = new Map<number, string>();
    if (t.kind === 'ENUM') {
      for (const e of t.values) if (!out.has(e.value)) out.set(e.value, e.name);
    } else if (t.kind === 'ENUM64') {
      for (const e of t.values) {
        const n = Number(e.value);
        if (!out.has(n)) out.set(n, e.name);
      }
    }
    return out;
  }

  /** Byte offsets of a struct's members, or null when there is no such struct. */
  structLayout(name: string): StructLayout | null {
    const ids = this.findByName(name, 'STRUCT');
    if (ids.length === 0) return null;
    const id = ids.find((i) => this.sizeField(i) > 0) ?? ids[0]!;
    const members = new Map<string, StructMemberLayout>();
    this.collectMembers(id, 0, members, 0);
    return { id, size: this.sizeField(id), members };
  }

  /**
   * FUNCs taking a `struct <structName> *` (through any typedefs and qualifiers)
   * among their first `maxArgs` arguments; the first such position is reported.
   */
  functionsTakingPointerTo(structName: string, maxArgs = 5): FunctionArgMatch[] {
    const out: FunctionArgMatch[] = [];
    const matches = new Map<number, boolean>();
    const isTarget = (typeId: number): boolean => {
      let hit = matches.get(typeId);
      if (hit === undefined) {
        const ptr = this.resolve(typeId);
        hit = false;
        if (this.kindOf(ptr) === BtfKind.PTR) {
          const target = this.resolve(this.refType(ptr));
          const k = this.kindOf(target);
          hit = (k === BtfKind.STRUCT || (k === BtfKind.FWD && !this.fwdIsUnion(target))) &&
            this.nameOf(target) === structName;
        }
        matches.set(typeId, hit);
      }
      return hit;
    };
    const v = this.view;
    for (let i = 0; i < this.kinds.length; i++) {
      if (this.kinds[i] !== BtfKind.FUNC) continue;
      const id = this.firstId + i;
      const proto = this.resolve(this.refType(id));
      if (this.kindOf(proto) !== BtfKind.FUNC_PROTO) continue;
      const { at, owner } = this.locate(proto);
      const pv = owner.view;
      const n = Math.min(pv.getUint32(at + 4, true) & 0xffff, maxArgs);
      for (let j = 0; j < n; j++) {
        const type = pv.getUint32(at + 12 + j * 8 + 4, true);
        if (type !== 0 && isTarget(type)) {
          out.push({ name: this.str(v.getUint32(this.offsets[i]!, true)), id, position: j + 1 });
          break;
        }
      }
    }
    return out;
  }

  /** All own type ids of one kind, in id order. */
  *idsOfKind(kind: BtfType['kind']): IterableIterator<number> {
    const k = BtfKind[kind as keyof typeof BtfKind];
    for (let i = 0; i < this.kinds.length; i++) if (this.kinds[i] === k) yield this.firstId + i;
  }

  private index(id: number): number {
    const i = id - this.firstId;
    if (!Number.isInteger(i) || i < 0 || i >= this.offsets.length) throw new Error(`BTF: no type ${id}`);
    return i;
  }

  private locate(id: number): { at: number; owner: Btf } {
    if (id < this.firstId) return this.base!.locate(id);
    return { at: this.offsets[this.index(id)]!, owner: this };
  }

  /** The size/type word of a type. */
  private word(id: number): number {
    const { at, owner } = this.locate(id);
    return owner.view.getUint32(at + 8, true);
  }

  private refType(id: number): number {
    return this.word(id);
  }

  private sizeField(id: number): number {
    return this.word(id);
  }

  private fwdIsUnion(id: number): boolean {
    const { at, owner } = this.locate(id);
    return owner.view.getUint32(at + 4, true) >>> 31 === 1;
  }

  private names(): Map<string, number[]> {
    if (this.nameIndex) return this.nameIndex;
    const index = new Map<string, number[]>();
    const v = this.view;
    for (let i = 0; i < this.offsets.length; i++) {
      const off = v.getUint32(this.offsets[i]!, true);
      if (off === 0) continue;
      const name = this.str(off);
      const list = index.get(name);
      if (list) list.push(this.firstId + i);
      else index.set(name, [this.firstId + i]);
    }
    this.nameIndex = index;
    return index;
  }

  private collectMembers(id: number, baseBits: number, out: Map<string, StructMemberLayout>, depth: number): void {
    if (depth > MAX_DEPTH) return;
    const t = this.type(id);
    if (t.kind !== 'STRUCT' && t.kind !== 'UNION') return;
    for (const m of t.members) {
      const bitOffset = baseBits + m.bitOffset;
      if (m.name === '') {
        const inner = this.resolve(m.type);
        const k = this.kindOf(inner);
        if (k === BtfKind.STRUCT || k === BtfKind.UNION) this.collectMembers(inner, bitOffset, out, depth + 1);
        continue;
      }
      if (!out.has(m.name)) {
        out.set(m.name, { offset: Math.floor(bitOffset / 8), bitOffset, bitSize: m.bitSize, typeId: m.type });
      }
    }
  }

  private spell(id: number, depth: number): string {
    if (depth > MAX_DEPTH) return '...';
    const t = this.type(id);
    const name = t.name || '(anon)';
    switch (t.kind) {
      case 'VOID':
        return 'void';
      case 'INT':
      case 'FLOAT':
      case 'TYPEDEF':
      case 'FUNC':
      case 'VAR':
      case 'DATASEC':
        return name;
      case 'STRUCT':
        return `struct ${name}`;
      case 'UNION':
        return `union ${name}`;
      case 'ENUM':
      case 'ENUM64':
        return `enum ${name}`;
      case 'FWD':
        return `${t.fwdKind} ${name}`;
      case 'PTR': {
        const target = this.resolveTags(t.type);
        if (this.kindOf(target) === BtfKind.FUNC_PROTO) return this.spellProto(target, '(*)', depth + 1);
        const inner = this.spell(t.type, depth + 1);
        return inner.endsWith('*') ? `${inner}*` : `${inner} *`;
      }
      case 'CONST':
      case 'VOLATILE':
      case 'RESTRICT': {
        const q = t.kind.toLowerCase();
        const inner = this.spell(t.type, depth + 1);
        // Qualifiers of a pointer follow the star.
        return this.kindOf(this.resolveTags(t.type)) === BtfKind.PTR ? `${inner} ${q}` : `${q} ${inner}`;
      }
      case 'TYPE_TAG':
        return this.spell(t.type, depth + 1);
      case 'ARRAY':
        return `${this.spell(t.type, depth + 1)}[${t.nelems}]`;
      case 'FUNC_PROTO':
        return this.spellProto(id, '', depth + 1);
      case 'DECL_TAG':
        return `${name} tag of ${this.spell(t.type, depth + 1)}`;
    }
  }

  private spellProto(id: number, declarator: string, depth: number): string {
    const t = this.typeAs(id, 'FUNC_PROTO');
    const args = t.params.map((p) => this.spell(p.type, depth + 1));
    if (t.variadic) args.push('...');
    const ret = this.spell(t.ret, depth + 1);
    const sep = declarator && !ret.endsWith('*') ? ' ' : '';
    return `${ret}${sep}${declarator}(${args.length ? args.join(', ') : 'void'})`;
  }

  private resolveTags(id: number): number {
    while (this.kindOf(id) === BtfKind.TYPE_TAG) id = this.refType(id);
    return id;
  }
}

/** Size of the data following the 12-byte common part of a type. */
function extraSize(kind: number, vlen: number): number {
  switch (kind) {
    case BtfKind.INT:
    case BtfKind.VAR:
    case BtfKind.DECL_TAG:
      return 4;
    case BtfKind.ARRAY:
      return 12;
    case BtfKind.STRUCT:
    case BtfKind.UNION:
    case BtfKind.DATASEC:
    case BtfKind.ENUM64:
      return vlen * 12;
    case BtfKind.ENUM:
    case BtfKind.FUNC_PROTO:
      return vlen * 8;
    case BtfKind.PTR:
    case BtfKind.FWD:
    case BtfKind.TYPEDEF:
    case BtfKind.VOLATILE:
    case BtfKind.CONST:
    case BtfKind.RESTRICT:
    case BtfKind.FUNC:
    case BtfKind.FLOAT:
    case BtfKind.TYPE_TAG:
      return 0;
    default:
      return -1;
  }
}

function scanTypes(view: DataView): { offsets: Uint32Array; kinds: Uint8Array } {
  const len = view.byteLength;
  // Every type takes at least 12 bytes, which bounds the count.
  let offsets = new Uint32Array(Math.floor(len / 12));
  let kinds = new Uint8Array(offsets.length);
  let n = 0;
  let at = 0;
  while (at < len) {
    if (at + 12 > len) throw new Error(`BTF: truncated type at byte ${at}`);
    const info = view.getUint32(at + 4, true);
    const kind = (info >>> 24) & 0x1f;
    const extra = extraSize(kind, info & 0xffff);
    if (extra < 0) throw new Error(`BTF: type ${n + 1} has unknown kind ${kind}`);
    offsets[n] = at;
    kinds[n] = kind;
    n++;
    at += 12 + extra;
  }
  if (at !== len) throw new Error('BTF: last type extends past the type section');
  offsets = offsets.slice(0, n);
  kinds = kinds.slice(0, n);
  return { offsets, kinds };
}

function isAscii(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i]! >= 0x80) return false;
  return true;
}
