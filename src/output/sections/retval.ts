/**
 * The return value section (--output-retval, probes/include/sections/retval.h):
 * what a traced kernel function returned, in a record sent at its exit that
 * repeats the entry's core (skb, tuple, device) and says how long after the
 * entry it came. The value is read by the function's BTF return type: errno
 * names for negative integers, NULL or an error pointer for pointers, bool,
 * enum names. Text: `→ -EHOSTUNREACH (3.1µs)`.
 */
import { type Btf, BtfKind } from '../../bpf/btf/btf.js';
import { errnoName } from '../../bpf/errors.js';
import { escapeText } from '../escape.js';
import { type ReturnShape, section } from './section.js';

export type { ReturnShape };

/** A function's argument count (where fexit finds its return value) and return type; null for void functions or no such FUNC. */
export interface FunctionReturn {
  nargs: number;
  shape: ReturnShape;
}

export function functionReturn(btf: Btf, name: string): FunctionReturn | null {
  const id = btf.findOne(name, 'FUNC');
  if (id === null) return null;
  const proto = btf.resolve(btf.refType(id));
  if (btf.kindOf(proto) !== BtfKind.FUNC_PROTO) return null;
  const p = btf.typeAs(proto, 'FUNC_PROTO');
  if (p.ret === 0) return null;
  const ret = btf.resolve(p.ret);
  const t = btf.type(ret);
  let shape: ReturnShape;
  if (t.kind === 'INT') shape = t.bool ? { kind: 'bool' } : { kind: 'int', size: t.size, signed: t.signed };
  else if (t.kind === 'PTR') shape = { kind: 'pointer' };
  else if (t.kind === 'ENUM' || t.kind === 'ENUM64') {
    const names = new Map<number, string>();
    for (const v of t.values as ReadonlyArray<{ name: string; value: number | bigint }>) if (!names.has(Number(v.value))) names.set(Number(v.value), v.name);
    shape = { kind: 'enum', size: t.size, names };
  } else return null;
  return { nargs: p.params.length, shape };
}

/** Codes the kernel returns that user space never sees (include/linux/errno.h). */
const KERNEL_ERRNO: Readonly<Record<number, string>> = {
  512: 'ERESTARTSYS', 513: 'ERESTARTNOINTR', 514: 'ERESTARTNOHAND', 515: 'ENOIOCTLCMD', 516: 'ERESTART_RESTARTBLOCK',
  517: 'EPROBE_DEFER', 518: 'EOPENSTALE', 519: 'ENOPARAM', 521: 'EBADHANDLE', 524: 'ENOTSUPP', 525: 'ETOOSMALL',
};

/** The largest errno: a pointer or a long within 4095 of zero, negative, is an error (IS_ERR_VALUE). */
const MAX_ERRNO = 4095n;

function errnoText(negative: bigint): string {
  const n = Number(-negative);
  return '-' + (KERNEL_ERRNO[n] ?? errnoName(n).replace(/^errno /, ''));
}

/** The register as the type reads it: its low `size` bytes, signed or not. */
function narrow(value: bigint, size: number, signed: boolean): bigint {
  const bits = BigInt(Math.min(8, Math.max(1, size)) * 8);
  return signed ? BigInt.asIntN(Number(bits), value) : BigInt.asUintN(Number(bits), value);
}

/** The value a user reads; `shape` null where the type is unknown (a long, by the kernel's habits). */
export function formatReturn(value: bigint, shape: ReturnShape | null): { value: number | string; text: string } {
  const s = shape ?? { kind: 'int', size: 8, signed: true };
  switch (s.kind) {
    case 'bool': {
      const b = (value & 0xffn) !== 0n;
      return { value: b ? 1 : 0, text: String(b) };
    }
    case 'pointer': {
      const v = BigInt.asUintN(64, value);
      const hex = '0x' + v.toString(16);
      const signed = BigInt.asIntN(64, value);
      if (v === 0n) return { value: hex, text: 'NULL' };
      if (signed < 0n && signed >= -MAX_ERRNO) return { value: hex, text: `ERR_PTR(${errnoText(signed)})` };
      return { value: hex, text: hex };
    }
    case 'enum': {
      const v = Number(narrow(value, s.size, true));
      const name = s.names.get(v) ?? s.names.get(Number(narrow(value, s.size, false)));
      return { value: v, text: name ?? String(v) };
    }
    case 'int': {
      const v = narrow(value, s.size, s.signed);
      const text = v < 0n && v >= -MAX_ERRNO ? errnoText(v) : v.toString();
      return { value: Number(v), text };
    }
  }
}

export interface RetvalRaw {
  value: bigint;
  durationNs: number;
}

export interface Retval {
  /** The register as its type reads it: a number, or a pointer as "0x…". */
  value: number | string;
  /** As a person reads it: `-EHOSTUNREACH`, `NULL`, `true`, an enum's name. */
  text: string;
  /** Since the function's entry (the entry's record is the one that long before, of the same skb and function). */
  durationNs: number;
}

export interface JsonRetval {
  value: number | string;
  text: string;
  duration_ns: number;
}

const LAYOUT = { struct: 'retval_section', size: 16, fields: { value: 0, duration_ns: 8 } } as const;

function micros(ns: number): string {
  return ns < 10_000 ? (ns / 1000).toFixed(1) + 'µs' : Math.round(ns / 1000) + 'µs';
}

export const retvalSection = section({
  key: 'retval',
  kind: 15,
  header: 'retval.h',
  layout: LAYOUT,
  decode: (view, _bytes, at): RetvalRaw => ({
    value: view.getBigUint64(at + LAYOUT.fields.value, true),
    durationNs: Number(view.getBigUint64(at + LAYOUT.fields.duration_ns, true)),
  }),
  enrich: (r: RetvalRaw, ctx, event): Retval => ({ ...formatReturn(r.value, event ? ctx.returns?.(event.func) ?? null : null), durationNs: r.durationNs }),
  text: (r: Retval) => '→ ' + escapeText(r.text) + ' (' + micros(r.durationNs) + ')',
  jsonKey: 'retval',
  toJson: (r: Retval): JsonRetval => ({ value: r.value, text: r.text, duration_ns: r.durationNs }),
  fromJson: (j: JsonRetval): Retval => ({ value: j.value, text: j.text, durationNs: j.duration_ns }),
  schema: {
    description: 'With --output-retval, at a function\'s exit (probe type fexit, or kretprobe where kprobes observe it): what it returned, read by its BTF type, and how long after its entry\'s record.',
    type: 'object',
    properties: {
      value: { description: 'The return register as its type reads it; a pointer as a hex string.', oneOf: [{ type: 'integer' }, { type: 'string', pattern: '^0x[0-9a-f]+$' }] },
      text: { description: 'As read: an errno name (-EHOSTUNREACH), NULL, ERR_PTR(-E…), true/false, an enum\'s name, or the number.', type: 'string' },
      duration_ns: { type: 'integer', minimum: 0 },
    },
    required: ['value', 'text', 'duration_ns'],
    additionalProperties: false,
  },
  options: [{
    flags: '--output-retval',
    description: 'also report each traced kernel function\'s return (fexit; kretprobes with --backend kprobe/kprobe-multi or where fentry is refused), with its value read by its BTF type (errno names, NULL, enum names) and the time since its entry',
    live: true,
  }],
});
