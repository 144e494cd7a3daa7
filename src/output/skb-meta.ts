/** The skb metadata section (--output-skb-metadata) in text (`skb->mark=0x42 skb->hash=0x9e3779b9`) and JSON. */
import { escapeText } from './escape.js';

/** One field as read at the point: null when a pointer on the way was NULL or the read faulted. */
export interface SkbMetaValue {
  field: string;
  value: bigint | null;
}

/** Escaped: a recorded trace's field names are any strings. */
export function formatSkbMeta(values: readonly SkbMetaValue[]): string {
  return escapeText(values.map((v) => v.field + '=' + (v.value === null ? '?' : (v.value < 0n ? '-0x' + (-v.value).toString(16) : '0x' + v.value.toString(16)))).join(' '));
}

/** JSON: `{"skb->mark": 66}`, a number where it is exact, else a decimal string; null when unread. */
export type JsonSkbMeta = Record<string, number | string | null>;

export function toJsonSkbMeta(values: readonly SkbMetaValue[]): JsonSkbMeta {
  const out: JsonSkbMeta = {};
  for (const v of values) {
    out[v.field] = v.value === null ? null
      : v.value <= BigInt(Number.MAX_SAFE_INTEGER) && v.value >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v.value) : v.value.toString();
  }
  return out;
}

export function skbMetaFromJson(j: JsonSkbMeta): SkbMetaValue[] {
  return Object.entries(j).map(([field, v]) => ({ field, value: v === null ? null : BigInt(v) }));
}
