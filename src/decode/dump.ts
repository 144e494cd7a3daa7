/**
 * The dump section (struct dump_section: --output-skb, --output-skb-shared-info,
 * --output-skb-cb): the kernel's own printing of the skb and its shared info
 * from BTF (tracing programs only: empty at tc and netfilter points), and the
 * bytes of skb->cb. It ends where the skb metadata section (or the packet
 * bytes) starts.
 */
import { EVENT_LAYOUT, EventFlags } from './layout.js';

export interface RawDump {
  /** The skb as bpf_snprintf_btf prints it; null where the point could not print it. */
  skb: string | null;
  sharedInfo: string | null;
  /** skb->cb; null when it was not asked for or could not be read. */
  cb: Uint8Array | null;
  /** The point's device (skb->dev is printed as a pointer); '' without one. */
  dev: string;
}

const F = EVENT_LAYOUT.fields;
const D = EVENT_LAYOUT.dump_section;
const decoder = new TextDecoder();

function cString(bytes: Uint8Array, at: number, max: number): string {
  let end = at;
  while (end < at + max && bytes[end] !== 0) end++;
  return decoder.decode(bytes.subarray(at, end));
}

export function decodeDump(view: DataView, bytes: Uint8Array, at: number, flags: number): RawDump {
  const end = at + view.getUint16(at + F.cap_offset, true) - (flags & EventFlags.skbMeta ? EVENT_LAYOUT.skb_meta_section.size : 0);
  const d = end - D.size;
  const text = (lenAt: number, textAt: number) => {
    const n = view.getUint16(d + lenAt, true);
    return n === 0 ? null : decoder.decode(bytes.subarray(d + textAt, d + textAt + n));
  };
  return {
    skb: text(D.fields.skb_len, D.fields.skb),
    sharedInfo: text(D.fields.shinfo_len, D.fields.shinfo),
    cb: view.getUint32(d + D.fields.cb_ok, true) ? bytes.slice(d + D.fields.cb, d + D.fields.cb + 48) : null,
    dev: cString(bytes, d + D.fields.dev_name, 16),
  };
}
