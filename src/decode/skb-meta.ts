/**
 * The skb metadata section (struct skb_meta_section, --output-skb-metadata):
 * the values of up to four skb fields, in the order they were asked for, and
 * which of them could be read. It ends where the packet bytes start.
 */
import { EVENT_LAYOUT } from './layout.js';

export interface RawSkbMeta {
  values: bigint[];
  /** Bit i: values[i] was read. */
  valid: number;
}

const F = EVENT_LAYOUT.fields;
const M = EVENT_LAYOUT.skb_meta_section;

export function decodeSkbMeta(view: DataView, at: number): RawSkbMeta {
  const from = at + view.getUint16(at + F.cap_offset, true) - M.size;
  const values: bigint[] = [];
  for (let i = 0; i < 4; i++) values.push(view.getBigUint64(from + M.fields.values + 8 * i, true));
  return { values, valid: view.getUint32(from + M.fields.valid, true) };
}
