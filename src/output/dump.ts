/**
 * The dump section (--output-skb, --output-skb-shared-info, --output-skb-cb)
 * in text — the kernel's printing of the structs, indented under the event
 * line as stacks are — and in JSON.
 */
import { escapeText } from './escape.js';

export interface SkbDump {
  /** `(struct sk_buff){ .len = (unsigned int)98, … }` as the kernel prints it from BTF; null where it could not. */
  skb: string | null;
  sharedInfo: string | null;
  /** skb->cb, hex. */
  cb: string | null;
  /** The point's device, named beside the printed skb (whose `dev` is a pointer); '' without one. */
  dev: string;
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

export interface JsonSkbDump {
  dev: string;
  skb: string | null;
  shared_info: string | null;
  cb: string | null;
}

export function toJsonSkbDump(d: SkbDump): JsonSkbDump {
  return { dev: d.dev, skb: d.skb, shared_info: d.sharedInfo, cb: d.cb };
}

export function skbDumpFromJson(j: JsonSkbDump): SkbDump {
  return { skb: j.skb, sharedInfo: j.shared_info, cb: j.cb, dev: j.dev };
}
