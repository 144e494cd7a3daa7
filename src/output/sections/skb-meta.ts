/**
 * The skb metadata section (--output-skb-metadata, pwru's;
 * probes/include/sections/skb_meta.h): the values of up to sixteen skb
 * fields (numbers, or bytes of a range), read by code compiled from the
 * kernel's BTF (src/filter/skb-expr.ts), in the order they were asked for,
 * and which of them could be read. The section carries only the slots asked
 * for. Text: `skb->mark=0x42 skb->head[skb->mac_header:6]=0200c0000201`.
 */
import { vmlinuxBtf } from '../../bpf/btf/vmlinux.js';
import { MAX_SKB_META_FIELDS, compileSkbFetch } from '../../filter/skb-expr.js';
import { escapeText } from '../escape.js';
import type { Btf } from '../../bpf/btf/btf.js';
import { type CompiledSkbFetch } from '../../filter/skb-expr.js';
import { type SectionContext, type SectionOption, section } from './section.js';

export interface RawSkbMeta {
  /** Bit i: field i was read. */
  valid: number;
  /** The values, each in its slot (CompiledSkbFetch.slots). */
  data: Uint8Array;
}

/** A byte range's bytes, hex. */
export interface SkbMetaBytes {
  hex: string;
}

/** One field as read at the point: null when a pointer on the way was NULL or the read faulted. */
export interface SkbMetaValue {
  field: string;
  value: bigint | SkbMetaBytes | null;
}

/** JSON: `{"skb->mark": 66}`, a number where it is exact, else a decimal string; `{"hex": "…"}` for a byte range; null when unread. */
export type JsonSkbMeta = Record<string, number | string | SkbMetaBytes | null>;

const LAYOUT = { struct: 'skb_meta_section', size: 8, fields: { valid: 0, bytes: 4, _pad: 6 } } as const;
/** The most values a section carries: 16 byte ranges of 64 bytes. */
const MAX_VALUE_BYTES = 16 * 64;

function valueText(v: SkbMetaValue['value']): string {
  if (v === null) return '?';
  if (typeof v !== 'bigint') return v.hex;
  return v < 0n ? '-0x' + (-v).toString(16) : '0x' + v.toString(16);
}

/** Escaped: a recorded trace's field names are any strings. */
export function formatSkbMeta(values: readonly SkbMetaValue[]): string {
  return escapeText(values.map((v) => v.field + '=' + valueText(v.value)).join(' '));
}

export function toJsonSkbMeta(values: readonly SkbMetaValue[]): JsonSkbMeta {
  const out: JsonSkbMeta = {};
  for (const { field, value: v } of values) {
    out[field] = v === null ? null : typeof v !== 'bigint' ? { hex: v.hex }
      : v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v.toString();
  }
  return out;
}

/** The section's values by the compiled fields' slots. */
export function skbMetaValues(m: RawSkbMeta, fetch: { fields: string[]; signed: boolean[]; slots: ReadonlyArray<{ offset: number; bytes: number }> }): SkbMetaValue[] {
  const view = new DataView(m.data.buffer, m.data.byteOffset, m.data.byteLength);
  return fetch.fields.map((field, i) => {
    const slot = fetch.slots[i]!;
    const end = slot.offset + Math.max(slot.bytes, 8);
    if (!(m.valid & (1 << i)) || end > m.data.length) return { field, value: null };
    if (slot.bytes > 0) return { field, value: { hex: Buffer.from(m.data.subarray(slot.offset, slot.offset + slot.bytes)).toString('hex') } };
    const raw = view.getBigUint64(slot.offset, true);
    return { field, value: fetch.signed[i] ? BigInt.asIntN(64, raw) : raw };
  });
}

/** What one field section is made of beyond what both share (the skb's, the xdp_buff's). */
interface FieldSectionSpec<Key extends string, JsonKey extends string> {
  key: Key;
  kind: number;
  header: string;
  jsonKey: JsonKey;
  /** The fields the section holds, compiled (its option's prepare made them). */
  fields(ctx: SectionContext): CompiledSkbFetch | null | undefined;
  /** What the schema says the section is. */
  description: string;
  option: SectionOption;
}

/** A section of fields read by compiled code (./xdp-meta.ts is the other): one layout (struct skb_meta_section), decoder, text and JSON. */
export function fieldSection<Key extends string, JsonKey extends string>(spec: FieldSectionSpec<Key, JsonKey>) {
  return section({
    key: spec.key,
    kind: spec.kind,
    header: spec.header,
    layout: LAYOUT,
    decode(view, bytes, at): RawSkbMeta {
      const n = Math.min(view.getUint16(at + LAYOUT.fields.bytes, true), MAX_VALUE_BYTES);
      return { valid: view.getUint32(at + LAYOUT.fields.valid, true), data: bytes.slice(at + LAYOUT.size, at + LAYOUT.size + n) };
    },
    enrich(m: RawSkbMeta, ctx): SkbMetaValue[] | null {
      const fetch = spec.fields(ctx);
      return fetch ? skbMetaValues(m, fetch) : null;
    },
    text: formatSkbMeta,
    jsonKey: spec.jsonKey,
    toJson: toJsonSkbMeta,
    fromJson: (j: JsonSkbMeta): SkbMetaValue[] => Object.entries(j).map(([field, v]) =>
      ({ field, value: v === null ? null : typeof v === 'object' ? { hex: v.hex } : BigInt(v) })),
    schema: {
      description: spec.description,
      type: 'object',
      additionalProperties: {
        anyOf: [
          { type: ['integer', 'string', 'null'] },
          { type: 'object', properties: { hex: { type: 'string', pattern: '^([0-9a-f]{2})+$' } }, required: ['hex'], additionalProperties: false },
        ],
      },
    },
    options: [spec.option],
  });
}

/** --output-skb-metadata's and --output-xdp-metadata's list: 1 to MAX_SKB_META_FIELDS fields, comma-separated. */
export function parseFields(text: string, example: string): string[] {
  const fields = text.split(',').map((f) => f.trim()).filter((f) => f !== '');
  if (fields.length === 0 || fields.length > MAX_SKB_META_FIELDS) {
    throw new Error(`name 1 to ${MAX_SKB_META_FIELDS} fields, comma-separated (${example})`);
  }
  return fields;
}

/** The kernel's BTF, to find the fields in. */
export function fieldsBtf(): Btf {
  const btf = vmlinuxBtf();
  if (btf === null) throw new Error('this kernel has no BTF (/sys/kernel/btf/vmlinux) to find the fields in');
  return btf;
}

export const skbMetaSection = fieldSection({
  key: 'skbMeta',
  kind: 9,
  header: 'skb_meta.h',
  jsonKey: 'skb_metadata',
  fields: (ctx) => ctx.skbMeta,
  description: 'With --output-skb-metadata: each field asked for (skb->mark, ...) and its value at this point; a decimal string past 2^53, ' +
    '{"hex": ...} for a byte range (skb->head[skb->mac_header:14]), null when a pointer on the way was NULL or the read faulted.',
  option: {
    flags: '--output-skb-metadata <fields>',
    description: `print up to ${MAX_SKB_META_FIELDS} skb fields at every point, comma-separated, read from the kernel's BTF: numbers, ` +
      'pointer casts and byte ranges (e.g. skb->queue_mapping,skb->hash,skb->head[skb->mac_header:14],' +
      '((struct iphdr *)(skb->head + skb->network_header))->ttl)',
    live: true,
    parse: (text) => parseFields(text, 'skb->mark,skb->hash'),
    prepare: (fields) => ({ skbMeta: compileSkbFetch(fields as string[], fieldsBtf()) }),
  },
});
