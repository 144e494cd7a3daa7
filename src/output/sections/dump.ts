/**
 * The dump section (--output-skb, --output-skb-shared-info, --output-skb-cb;
 * probes/include/sections/dump.h): the kernel's own printing of the skb and
 * its shared info from BTF (tracing programs only: empty at tc and netfilter
 * points), and the bytes of skb->cb. In text, indented under the event line
 * as stacks are.
 */
import { escapeText } from '../escape.js';
import { section } from './section.js';

export interface RawDump {
  /** The skb as bpf_snprintf_btf prints it; null where the point could not print it. */
  skb: string | null;
  sharedInfo: string | null;
  /** skb->cb; null when it was not asked for or could not be read. */
  cb: Uint8Array | null;
  /** The point's device (skb->dev is printed as a pointer); '' without one. */
  dev: string;
}

export interface SkbDump {
  /** `(struct sk_buff){ .len = (unsigned int)98, … }` as the kernel prints it from BTF; null where it could not. */
  skb: string | null;
  sharedInfo: string | null;
  /** skb->cb, hex. */
  cb: string | null;
  /** The point's device, named beside the printed skb (whose `dev` is a pointer); '' without one. */
  dev: string;
}

export interface JsonSkbDump {
  dev: string;
  skb: string | null;
  shared_info: string | null;
  cb: string | null;
}

const LAYOUT = {
  struct: 'dump_section',
  size: 80,
  fields: { skb_len: 0, shinfo_len: 2, skb_room: 4, shinfo_room: 6, cb_ok: 8, _pad: 12, cb: 16, dev_name: 64 },
} as const;

/** The texts' rooms when --set-percpu-buf is not given: pktpath's (pwru gives each 4092). */
export const DEFAULT_DUMP_ROOM = { skb: 3072, sharedInfo: 1024 } as const;
/** --set-percpu-buf's range: a section's length is 16 bits, and the two texts share it. */
export const MIN_DUMP_ROOM = 256;
export const MAX_DUMP_ROOM = 32000;

/** --set-percpu-buf: the room of each text, rounded up to 8 bytes (sections stay 8-byte aligned in the record). */
export function dumpRoom(bytes: number): { skb: number; sharedInfo: number } {
  const room = Math.ceil(bytes / 8) * 8;
  return { skb: room, sharedInfo: room };
}
const F = LAYOUT.fields;
const decoder = new TextDecoder();

function cString(bytes: Uint8Array, at: number, max: number): string {
  let end = at;
  while (end < at + max && bytes[end] !== 0) end++;
  return decoder.decode(bytes.subarray(at, end));
}

const indent = (text: string) => text.split('\n').filter((l) => l.trim() !== '').map((l) => '    ' + escapeText(l)).join('\n');

/** Lines to append to the event's line (each starts with a newline), '' when there is nothing; escaped, line by line (the device's name and a recorded trace's text are anyone's). */
export function dumpLines(d: SkbDump): string {
  let s = '';
  if (d.cb !== null) s += '\n    skb->cb: ' + escapeText(d.cb);
  if (d.skb !== null) s += '\n    dev: ' + (escapeText(d.dev) || '-') + '\n' + indent(d.skb);
  if (d.sharedInfo !== null) s += '\n' + indent(d.sharedInfo);
  return s;
}

export const dumpSection = section({
  key: 'dump',
  kind: 8,
  header: 'dump.h',
  layout: LAYOUT,
  decode(view, bytes, d): RawDump {
    // The texts follow the struct, each in its room; a length past its room is not believed.
    const text = (lenAt: number, roomAt: number, textAt: number) => {
      const n = Math.min(view.getUint16(d + lenAt, true), view.getUint16(d + roomAt, true));
      return n === 0 ? null : decoder.decode(bytes.subarray(d + textAt, d + textAt + n));
    };
    const skbRoom = view.getUint16(d + F.skb_room, true);
    return {
      skb: text(F.skb_len, F.skb_room, LAYOUT.size),
      sharedInfo: text(F.shinfo_len, F.shinfo_room, LAYOUT.size + skbRoom),
      cb: view.getUint32(d + F.cb_ok, true) ? bytes.slice(d + F.cb, d + F.cb + 48) : null,
      dev: cString(bytes, d + F.dev_name, 16),
    };
  },
  enrich: (d: RawDump): SkbDump => ({ skb: d.skb, sharedInfo: d.sharedInfo, cb: d.cb && Buffer.from(d.cb).toString('hex'), dev: d.dev }),
  lines: dumpLines,
  jsonKey: 'skb_dump',
  toJson: (d: SkbDump): JsonSkbDump => ({ dev: d.dev, skb: d.skb, shared_info: d.sharedInfo, cb: d.cb }),
  fromJson: (j: JsonSkbDump): SkbDump => ({ skb: j.skb, sharedInfo: j.shared_info, cb: j.cb, dev: j.dev }),
  schema: {
    description: 'With --output-skb, --output-skb-shared-info, --output-skb-cb: the structs as the kernel prints them from BTF (null where the point\'s program type cannot: tc, netfilter), and skb->cb in hex.',
    type: 'object',
    properties: {
      dev: { description: 'The point\'s device (the printed skb\'s dev is a pointer); empty without one.', type: 'string' },
      skb: { type: ['string', 'null'] },
      shared_info: { type: ['string', 'null'] },
      cb: { type: ['string', 'null'], pattern: '^[0-9a-f]{96}$' },
    },
    required: ['dev', 'skb', 'shared_info', 'cb'],
    additionalProperties: false,
  },
  options: [
    { flags: '--output-skb', description: 'print the whole struct sk_buff under each event, as the kernel prints it from BTF (tracepoints and function probes)', live: true },
    { flags: '--output-skb-shared-info', description: 'print its struct skb_shared_info too (tracepoints and function probes)', live: true },
    { flags: '--output-skb-cb', description: 'print the 48 bytes of skb->cb (every point)', live: true },
  ],
});
