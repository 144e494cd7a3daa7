/**
 * Reader for the raw BTF format: /sys/kernel/btf/vmlinux, module BTF (split
 * on top of vmlinux) and the `.BTF` section of an eBPF object.
 *
 * vmlinux carries ~130k types, so parsing only records where each type
 * starts; types are decoded on demand and the name index is built on first use.
 * What pktpath asks of the kernel's BTF (tracepoint prototypes, skb
 * functions) is in src/kernel/btf.ts; the running kernel's BTF, mapped and
 * parsed once, in ./vmlinux.ts; the record format in ./wire.ts, C spelling of
 * types in ./spell.ts.
 */

import { isAscii } from 'node:buffer';
import { readFileSync } from 'node:fs';
import {
  BTF_MAGIC, BtfKind, KIND_NAMES, type BtfHeader, type BtfType, type BtfTypeOf, type StructLayout, type StructMemberLayout,
} from './types.js';
import { decodeType, scanTypes } from './wire.js';

export * from './types.js';

/** Btf's index of its own types by name offset: chains of type indexes (-1 ends one), `heads` by hash. */
interface NameIndex {
  heads: Int32Array;
  next: Int32Array;
  /** The hash is the top bits of the offset times a constant: 32 minus the table's bits. */
  shift: number;
}

const HDR_MIN = 24;
const MAX_DEPTH = 32;

export class Btf {
  readonly header: BtfHeader;
  /** Ids of this blob's own types start here (1, or after the base for split BTF). */
  readonly firstId: number;
  readonly base: Btf | null;

  private readonly view: DataView;
  /** The same type section as 32-bit words, for the scans over every type. */
  private readonly words: Uint32Array;
  private readonly strBytes: Uint8Array;
  /** Whole string section as text when it is pure ASCII, so a name is a slice. */
  private readonly strText: string | null;
  private readonly strBase: number;
  /** Byte offset (within `view`) of each own type, by `id - firstId`. */
  private readonly offsets: Uint32Array;
  private readonly kinds: Uint8Array;
  private names: NameIndex | null = null;
  private readonly decoder = new TextDecoder();
  private readonly readString = (off: number): string => this.str(off);

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
    if (header.typeLen % 4 !== 0) throw new Error('BTF: the type section is not a whole number of 32-bit words');
    // Words need an aligned start: a section found at an odd place (in an ELF file, say) is copied.
    const types = (buf.byteOffset + typeStart) % 4 === 0
      ? buf.subarray(typeStart, typeStart + header.typeLen)
      : new Uint8Array(buf.subarray(typeStart, typeStart + header.typeLen));
    this.view = new DataView(types.buffer, types.byteOffset, types.byteLength);
    this.words = new Uint32Array(types.buffer, types.byteOffset, types.byteLength / 4);
    this.strBytes = buf.subarray(strStart, strStart + header.strLen);
    // buffer.isAscii is native (vector instructions): a byte loop over vmlinux's 2–3 MB of names took 5–10 ms at start-up.
    this.strText = isAscii(this.strBytes) ? this.decoder.decode(this.strBytes) : null;

    const { offsets, kinds } = scanTypes(this.words, header.typeLen);
    this.offsets = offsets;
    this.kinds = kinds;
  }

  /** Parses a BTF blob; `base` is vmlinux for module (split) BTF. */
  static parse(buf: Uint8Array, base?: Btf): Btf {
    return new Btf(buf, base ?? null);
  }

  /** Reads and parses a vmlinux BTF file (the running kernel's, mapped, is src/bpf/btf/vmlinux.ts's). */
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
    return decodeType(this.view, this.offsets[this.index(id)]!, id, this.readString);
  }

  /** Like `type`, but checks the kind. */
  typeAs<K extends BtfType['kind']>(id: number, kind: K): BtfTypeOf<K> {
    const t = this.type(id);
    if (t.kind !== kind) throw new Error(`BTF: type ${id} is ${t.kind}, not ${kind}`);
    return t as BtfTypeOf<K>;
  }

  /** Ids of the named types (base types first for split BTF), optionally of one kind. */
  findByName(name: string, kind?: BtfType['kind']): number[] {
    const own = this.ownNamed(name);
    const fromBase = this.base ? this.base.findByName(name, kind) : [];
    const mine = kind ? own.filter((id) => this.kindName(id) === kind) : own;
    return fromBase.length ? fromBase.concat(mine) : mine;
  }

  /**
   * Types of one kind whose names start with `prefix`, by name (base types
   * first for split BTF): one pass over the types for callers that look up
   * many such names (each tracepoint's `btf_trace_` typedef), where
   * findByName searches the whole string section for each.
   */
  namedWithPrefix(prefix: string, kind: BtfType['kind']): Map<string, number[]> {
    const out = this.base ? this.base.namedWithPrefix(prefix, kind) : new Map<string, number[]>();
    const k = KIND_NAMES.indexOf(kind);
    for (const off of this.stringsStarting(prefix)) {
      const ids = this.ownAt(off).filter((id) => this.kinds[id - this.firstId] === k);
      if (ids.length === 0) continue;
      const name = this.str(off);
      // A name at two offsets (a string in the base and the module both): its ids still in id order.
      const known = out.get(name);
      out.set(name, known ? known.concat(ids).sort((a, b) => a - b) : ids);
    }
    return out;
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
          throw new Error(`BTF: ${this.nameOf(id) || '(anon)'} (${this.kindName(id)} ${id}) has no size`);
      }
    }
    throw new Error(`BTF: type chain too deep at ${id}`);
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

  /**
   * The value of an enumerator of any enum, anonymous ones too (the kernel
   * keeps some flags in those); null when no enum has it.
   */
  enumeratorValue(name: string): number | null {
    for (let id = 1; id <= this.maxId; id++) {
      const kind = this.kindName(id);
      if (kind !== 'ENUM' && kind !== 'ENUM64') continue;
      const t = this.type(id);
      if (t.kind !== 'ENUM' && t.kind !== 'ENUM64') continue;
      const hit = (t.values as ReadonlyArray<{ name: string; value: number | bigint }>).find((e) => e.name === name);
      if (hit) return Number(hit.value);
    }
    return null;
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

  /** The members of a struct or union by type id, anonymous inner ones flattened (empty for other kinds). */
  membersOf(id: number): Map<string, StructMemberLayout> {
    const members = new Map<string, StructMemberLayout>();
    this.collectMembers(this.resolve(id), 0, members, 0);
    return members;
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

  /** The type a modifier, pointer, typedef, FUNC or VAR refers to, without decoding it. */
  refType(id: number): number {
    return this.word(id);
  }

  /** vlen: members, enum values or parameters of a type, without decoding it. */
  vlen(id: number): number {
    const { at, owner } = this.locate(id);
    return owner.view.getUint32(at + 4, true) & 0xffff;
  }

  /** Type of parameter `i` of a FUNC_PROTO, without decoding the prototype. */
  paramType(protoId: number, i: number): number {
    const { at, owner } = this.locate(protoId);
    return owner.view.getUint32(at + 12 + i * 8 + 4, true);
  }

  private sizeField(id: number): number {
    return this.word(id);
  }

  /** Whether a FWD declares a union (else a struct). */
  fwdIsUnion(id: number): boolean {
    const { at, owner } = this.locate(id);
    return owner.view.getUint32(at + 4, true) >>> 31 === 1;
  }

  /**
   * Own types by the offset of their name: a hash table in typed arrays, built
   * on the first lookup by name. Finding a name is then a search of the string
   * section (native) and a walk of one chain: no string is made per type
   * (a map of every name is ~100 k strings, ~45 ms at start-up), and no pass
   * over every type per lookup.
   */
  private nameIndex(): NameIndex {
    if (this.names) return this.names;
    const n = this.offsets.length;
    let bits = 1;
    while (1 << bits < n * 2) bits++;
    const heads = new Int32Array(1 << bits).fill(-1);
    const next = new Int32Array(n);
    const shift = 32 - bits;
    const { words, offsets } = this;
    // From the last type back, so that each chain lists its types in id order.
    for (let i = n - 1; i >= 0; i--) {
      const off = words[offsets[i]! >>> 2]!;
      if (off === 0) continue;
      const h = Math.imul(off, 0x9e3779b1) >>> shift;
      next[i] = heads[h]!;
      heads[h] = i;
    }
    return (this.names = { heads, next, shift });
  }

  /** Own types whose name is the string at `off`, in id order. */
  private ownAt(off: number): number[] {
    const { heads, next, shift } = this.nameIndex();
    const ids: number[] = [];
    for (let i = heads[Math.imul(off, 0x9e3779b1) >>> shift]!; i >= 0; i = next[i]!) {
      if (this.words[this.offsets[i]! >>> 2] === off) ids.push(this.firstId + i);
    }
    return ids;
  }

  /** Where `needle` follows a NUL in this blob's own strings: the offsets of strings that start with it. */
  private ownStringsAfterNul(needle: string): number[] {
    const out: number[] = [];
    const find = '\0' + needle;
    if (this.strText !== null) {
      for (let at = this.strText.indexOf(find); at >= 0; at = this.strText.indexOf(find, at + 1)) out.push(this.strBase + at + 1);
    } else {
      const bytes = Buffer.from(this.strBytes.buffer, this.strBytes.byteOffset, this.strBytes.byteLength);
      const n = Buffer.from(find);
      for (let at = bytes.indexOf(n); at >= 0; at = bytes.indexOf(n, at + 1)) out.push(this.strBase + at + 1);
    }
    return out;
  }

  /** Offsets of the strings that start with `prefix`, its base's first. Every string but the first (the empty one at 0) follows a NUL. */
  private stringsStarting(prefix: string): number[] {
    const out = this.base ? this.base.stringsStarting(prefix) : [];
    return out.concat(this.ownStringsAfterNul(prefix));
  }

  /** Where `name` is, whole, in this blob's string sections (its base's first): offsets a type's name may have. */
  private stringOffsets(name: string): number[] {
    const out = this.base ? this.base.stringOffsets(name) : [];
    if (name === '') return out;
    return out.concat(this.ownStringsAfterNul(name + '\0'));
  }

  /** Own types named `name`, in id order. */
  private ownNamed(name: string): number[] {
    const ids = this.stringOffsets(name).flatMap((off) => this.ownAt(off));
    return ids.length > 1 ? ids.sort((a, b) => a - b) : ids;
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
}
