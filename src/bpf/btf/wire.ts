/**
 * The wire format of BTF type records: where each record starts (a scan of
 * the type section) and what one record says (decoded on demand).
 */
import {
  BtfKind, KIND_NAMES, type BtfEnumValue, type BtfLinkage, type BtfMember, type BtfParam, type BtfRefKind, type BtfType,
  type BtfVarSecinfo,
} from './types.js';

const LINKAGE: readonly BtfLinkage[] = ['static', 'global', 'extern'];

/** Decodes the record of type `id` at byte `at` of the type section; `str` reads the string section. */
export function decodeType(v: DataView, at: number, id: number, str: (off: number) => string): BtfType {
  const name = str(v.getUint32(at, true));
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
          name: str(v.getUint32(m, true)),
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
        values[i] = { name: str(v.getUint32(m, true)), value };
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
        values[i] = { name: str(v.getUint32(m, true)), value: kindFlag ? BigInt.asIntN(64, raw) : raw };
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
        params.push({ name: str(nameOff), type });
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

/**
 * The bytes that follow a type's 12-byte common part: a fixed part by kind,
 * plus one entry per vlen item (members, enumerators, parameters, variables).
 * A table rather than a switch: the scan below runs once per type of vmlinux
 * (~130k) at every start, before the engine has optimised it.
 */
const EXTRA_FIXED = new Int32Array(32).fill(-1);
const EXTRA_PER_ITEM = new Int32Array(32);
for (const [kind, fixed, perItem] of [
  [BtfKind.INT, 4, 0], [BtfKind.VAR, 4, 0], [BtfKind.DECL_TAG, 4, 0], [BtfKind.ARRAY, 12, 0],
  [BtfKind.STRUCT, 0, 12], [BtfKind.UNION, 0, 12], [BtfKind.DATASEC, 0, 12], [BtfKind.ENUM64, 0, 12],
  [BtfKind.ENUM, 0, 8], [BtfKind.FUNC_PROTO, 0, 8],
  [BtfKind.PTR, 0, 0], [BtfKind.FWD, 0, 0], [BtfKind.TYPEDEF, 0, 0], [BtfKind.VOLATILE, 0, 0], [BtfKind.CONST, 0, 0],
  [BtfKind.RESTRICT, 0, 0], [BtfKind.FUNC, 0, 0], [BtfKind.FLOAT, 0, 0], [BtfKind.TYPE_TAG, 0, 0],
] as const) {
  EXTRA_FIXED[kind] = fixed;
  EXTRA_PER_ITEM[kind] = perItem;
}

/**
 * Where each type starts and its kind. `words` is the type section as
 * little-endian 32-bit words (every BTF record is a whole number of them);
 * `len` its length in bytes.
 */
export function scanTypes(words: Uint32Array, len: number): { offsets: Uint32Array; kinds: Uint8Array } {
  // Every type takes at least 12 bytes, which bounds the count.
  let offsets = new Uint32Array(Math.floor(len / 12));
  let kinds = new Uint8Array(offsets.length);
  let n = 0;
  let at = 0;
  while (at < len) {
    if (at + 12 > len) throw new Error(`BTF: truncated type at byte ${at}`);
    const info = words[(at >>> 2) + 1]!;
    const kind = (info >>> 24) & 0x1f;
    const fixed = EXTRA_FIXED[kind]!;
    if (fixed < 0) throw new Error(`BTF: type ${n + 1} has unknown kind ${kind}`);
    offsets[n] = at;
    kinds[n] = kind;
    n++;
    at += 12 + fixed + (info & 0xffff) * EXTRA_PER_ITEM[kind]!;
  }
  if (at !== len) throw new Error('BTF: last type extends past the type section');
  offsets = offsets.slice(0, n);
  kinds = kinds.slice(0, n);
  return { offsets, kinds };
}
