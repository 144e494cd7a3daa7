/** Ring records with sections, as the probes write them: each behind its head, the packet bytes (none) after them. */
import { EVENT_LAYOUT, EventFlags, RecordType, SECTION_HEAD } from '../../src/decode/layout.js';

export interface SectionBytes {
  kind: number;
  /** The section's own bytes (its struct), written behind its head. */
  body: Uint8Array;
}

/** A record at offset 8 of a buffer (as in the ring) with these sections, in order. */
export function recordWith(sections: readonly SectionBytes[], flags: number = EventFlags.tuple): { view: DataView; bytes: Uint8Array; at: number } {
  const at = 8;
  const size = sections.reduce((n, s) => n + SECTION_HEAD.size + s.body.length, 0);
  const buf = new ArrayBuffer(at + EVENT_LAYOUT.size + size + 8);
  const view = new DataView(buf);
  const bytes = new Uint8Array(buf);
  const F = EVENT_LAYOUT.fields;
  view.setUint32(at + F.type, RecordType.event, true);
  view.setUint32(at + F.flags, flags, true);
  let s = at + EVENT_LAYOUT.size;
  for (const { kind, body } of sections) {
    view.setUint16(s, kind, true);
    view.setUint16(s + SECTION_HEAD.fields.len, SECTION_HEAD.size + body.length, true);
    bytes.set(body, s + SECTION_HEAD.size);
    s += SECTION_HEAD.size + body.length;
  }
  view.setUint16(at + F.cap_offset, s - at, true);
  return { view, bytes, at };
}

/** A struct's bytes, written by `fill` into a zeroed buffer of `size`. */
export function struct(size: number, fill: (v: DataView, b: Uint8Array) => void): Uint8Array {
  const b = new Uint8Array(size);
  fill(new DataView(b.buffer), b);
  return b;
}
