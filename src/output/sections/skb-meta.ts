/**
 * The skb metadata section (--output-skb-metadata, pwru's;
 * probes/include/sections/skb_meta.h): the values of up to four skb fields,
 * read by code compiled from the kernel's BTF (src/filter/skb-expr.ts), in
 * the order they were asked for, and which of them could be read. Text:
 * `skb->mark=0x42 skb->hash=0x9e3779b9`.
 */
import { vmlinuxBtf } from '../../bpf/btf/vmlinux.js';
import { MAX_SKB_META_FIELDS, compileSkbFetch } from '../../filter/skb-expr.js';
import { escapeText } from '../escape.js';
import { section } from './section.js';

export interface RawSkbMeta {
  values: bigint[];
  /** Bit i: values[i] was read. */
  valid: number;
}

/** One field as read at the point: null when a pointer on the way was NULL or the read faulted. */
export interface SkbMetaValue {
  field: string;
  value: bigint | null;
}

/** JSON: `{"skb->mark": 66}`, a number where it is exact, else a decimal string; null when unread. */
export type JsonSkbMeta = Record<string, number | string | null>;

const LAYOUT = { struct: 'skb_meta_section', size: 40, fields: { values: 0, valid: 32 } } as const;

/** Escaped: a recorded trace's field names are any strings. */
export function formatSkbMeta(values: readonly SkbMetaValue[]): string {
  return escapeText(values.map((v) => v.field + '=' + (v.value === null ? '?' : (v.value < 0n ? '-0x' + (-v.value).toString(16) : '0x' + v.value.toString(16)))).join(' '));
}

export function toJsonSkbMeta(values: readonly SkbMetaValue[]): JsonSkbMeta {
  const out: JsonSkbMeta = {};
  for (const v of values) {
    out[v.field] = v.value === null ? null
      : v.value <= BigInt(Number.MAX_SAFE_INTEGER) && v.value >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v.value) : v.value.toString();
  }
  return out;
}

export const skbMetaSection = section({
  key: 'skbMeta',
  kind: 9,
  header: 'skb_meta.h',
  layout: LAYOUT,
  decode(view, _bytes, at): RawSkbMeta {
    const values: bigint[] = [];
    for (let i = 0; i < 4; i++) values.push(view.getBigUint64(at + LAYOUT.fields.values + 8 * i, true));
    return { values, valid: view.getUint32(at + LAYOUT.fields.valid, true) };
  },
  enrich(m: RawSkbMeta, ctx): SkbMetaValue[] | null {
    if (ctx.skbMeta === null) return null;
    const { fields, signed } = ctx.skbMeta;
    return fields.map((field, i) => ({
      field,
      value: m.valid & (1 << i) ? (signed[i] ? BigInt.asIntN(64, m.values[i]!) : m.values[i]!) : null,
    }));
  },
  text: formatSkbMeta,
  jsonKey: 'skb_metadata',
  toJson: toJsonSkbMeta,
  fromJson: (j: JsonSkbMeta): SkbMetaValue[] => Object.entries(j).map(([field, v]) => ({ field, value: v === null ? null : BigInt(v) })),
  schema: {
    description: 'With --output-skb-metadata: each field asked for (skb->mark, ...) and its value at this point; a decimal string past 2^53, null when a pointer on the way was NULL.',
    type: 'object',
    additionalProperties: { type: ['integer', 'string', 'null'] },
  },
  options: [{
    flags: '--output-skb-metadata <fields>',
    description: 'print up to 4 skb fields at every point, comma-separated, read from the kernel\'s BTF (e.g. skb->queue_mapping,skb->hash)',
    live: true,
    parse(text): string[] {
      const fields = text.split(',').map((f) => f.trim()).filter((f) => f !== '');
      if (fields.length === 0 || fields.length > MAX_SKB_META_FIELDS) {
        throw new Error(`name 1 to ${MAX_SKB_META_FIELDS} fields, comma-separated (skb->mark,skb->hash)`);
      }
      return fields;
    },
    prepare(fields) {
      const btf = vmlinuxBtf();
      if (btf === null) throw new Error('this kernel has no BTF (/sys/kernel/btf/vmlinux) to find the fields in');
      return { skbMeta: compileSkbFetch(fields as string[], btf) };
    },
  }],
});
