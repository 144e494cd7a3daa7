/**
 * Bytes of a BTF-typed value as text, as C would write an initialiser:
 * `{ip=0xc0000202, port=80, action=POLICY_DROP}`. Integers in decimal (hex
 * for unsigned members of 4 or 8 bytes when large), char arrays as strings,
 * other byte arrays as hex, enums by name, pointers in hex. The bytes may be
 * fewer than the type (a capture bounded in size): what does not fit is `…`.
 * The BTF and the bytes come from elsewhere: depth, elements and length are
 * bounded; names are returned raw, for the caller to escape.
 */
import type { Btf } from './btf.js';

const MAX_DEPTH = 8;
const MAX_ELEMS = 64;
const MAX_TEXT = 1024;

/** A value `bytes` holds of type `id` of `btf`, as text; null where the type has no reading (a function, a forward declaration). */
export function formatBtfValue(btf: Btf, id: number, bytes: Uint8Array): string | null {
  try {
    const text = value(btf, id, bytes, 0, 0);
    return text.length > MAX_TEXT ? text.slice(0, MAX_TEXT) + '…' : text;
  } catch {
    return null;
  }
}

function uint(bytes: Uint8Array, at: number, size: number): bigint {
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[at + i]!);
  return v;
}

function hex(bytes: Uint8Array, at: number, end: number): string {
  return Buffer.from(bytes.subarray(at, end)).toString('hex');
}

function value(btf: Btf, id: number, bytes: Uint8Array, at: number, depth: number): string {
  if (depth > MAX_DEPTH) return '…';
  const t = btf.type(btf.resolve(id));
  const size = btf.sizeof(t.id);
  if (at >= bytes.length) return '…';
  // A scalar cut by the end of the bytes; structs and arrays show the members that fit.
  if (at + size > bytes.length && t.kind !== 'STRUCT' && t.kind !== 'UNION' && t.kind !== 'ARRAY') return hex(bytes, at, bytes.length) + '…';
  switch (t.kind) {
    case 'INT': {
      if (t.bool) return bytes[at] ? 'true' : 'false';
      const raw = uint(bytes, at, t.size);
      const v = t.signed ? BigInt.asIntN(t.size * 8, raw) : raw;
      return !t.signed && t.size >= 4 && v > 0xffffn ? '0x' + v.toString(16) : v.toString();
    }
    case 'ENUM':
    case 'ENUM64': {
      const raw = uint(bytes, at, t.size);
      const v = t.signed ? BigInt.asIntN(t.size * 8, raw) : raw;
      const name = (t.values as ReadonlyArray<{ name: string; value: number | bigint }>).find((e) => BigInt(e.value) === v)?.name;
      return name ?? v.toString();
    }
    case 'PTR':
      return '0x' + uint(bytes, at, 8).toString(16);
    case 'FLOAT':
      return t.size === 4 ? String(Buffer.from(bytes.subarray(at, at + 4)).readFloatLE()) : t.size === 8 ? String(Buffer.from(bytes.subarray(at, at + 8)).readDoubleLE()) : hex(bytes, at, at + size);
    case 'ARRAY': {
      const elem = btf.type(btf.resolve(t.type));
      if (elem.kind === 'INT' && elem.size === 1) {
        const chunk = bytes.subarray(at, at + t.nelems);
        const cut = chunk.length < t.nelems ? '…' : '';
        if (elem.char) {
          const end = chunk.indexOf(0);
          return JSON.stringify(Buffer.from(end < 0 ? chunk : chunk.subarray(0, end)).toString('latin1')) + (end < 0 ? cut : '');
        }
        return hex(bytes, at, at + t.nelems) + cut;
      }
      const step = btf.sizeof(elem.id);
      const parts: string[] = [];
      const shown = Math.min(t.nelems, MAX_ELEMS, step === 0 ? 1 : Math.ceil((bytes.length - at) / step));
      for (let i = 0; i < shown; i++) parts.push(value(btf, elem.id, bytes, at + i * step, depth + 1));
      if (t.nelems > shown) parts.push('…');
      return '[' + parts.join(', ') + ']';
    }
    case 'STRUCT':
    case 'UNION': {
      const parts: string[] = [];
      for (const m of t.members.slice(0, MAX_ELEMS)) {
        const label = m.name ? m.name + '=' : '';
        if (m.bitSize !== 0) {
          const first = at + Math.floor(m.bitOffset / 8);
          const span = Math.ceil(((m.bitOffset % 8) + m.bitSize) / 8);
          if (first + span > bytes.length) { parts.push(label + '…'); continue; }
          const v = (uint(bytes, first, span) >> BigInt(m.bitOffset % 8)) & ((1n << BigInt(m.bitSize)) - 1n);
          parts.push(label + v.toString());
          continue;
        }
        parts.push(label + value(btf, m.type, bytes, at + m.bitOffset / 8, depth + 1));
        // A union shows its first member: the others read the same bytes.
        if (t.kind === 'UNION') break;
      }
      return '{' + parts.join(', ') + '}';
    }
    default:
      throw new Error(`no reading of ${t.kind}`);
  }
}
