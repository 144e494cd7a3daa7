/** IP addresses: their text forms, as `ip` and pwru print them, and parsing what users type. */
import { NumberText, SlotCache, flat, mix32 } from './cache.js';

/** An address the user gave: its family, network-order bytes and the text as typed. */
export interface Addr {
  l3: 4 | 6;
  bytes: Uint8Array;
  text: string;
}

// A flow repeats its two addresses in every record: their text is kept by
// value, IPv4's by its one word, IPv6's by its four.
const v4Text = new NumberText(1024, (key) =>
  `${key >>> 24}.${(key >>> 16) & 0xff}.${(key >>> 8) & 0xff}.${key & 0xff}`);
const v6Text = new SlotCache(1024, () => ({ w0: NaN, w1: 0, w2: 0, w3: 0, text: '' }));

/** The 32-bit word at `at`, network order. */
const word = (bytes: Uint8Array, at: number): number =>
  (bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!;

/** Formats the 4 (IPv4) or 16 (IPv6) bytes at `at` in network order. */
export function formatAddress(bytes: Uint8Array, at: number, l3: 4 | 6): string {
  if (l3 === 4) return v4Text.get(word(bytes, at));
  const w0 = word(bytes, at);
  const w1 = word(bytes, at + 4);
  const w2 = word(bytes, at + 8);
  const w3 = word(bytes, at + 12);
  const c = v6Text.at(mix32(w0 ^ Math.imul(w1, 0x9e3779b1) ^ Math.imul(w2, 0x85ebca6b) ^ Math.imul(w3, 0xc2b2ae35)));
  if (c.w3 === w3 && c.w2 === w2 && c.w1 === w1 && c.w0 === w0) return c.text;
  const groups = [w0 >>> 16, w0 & 0xffff, w1 >>> 16, w1 & 0xffff, w2 >>> 16, w2 & 0xffff, w3 >>> 16, w3 & 0xffff];
  c.text = flat(formatIPv6Groups(groups));
  c.w0 = w0;
  c.w1 = w1;
  c.w2 = w2;
  c.w3 = w3;
  return c.text;
}

/** RFC 5952: lower case, no leading zeros, the longest run (≥2) of zero groups as `::`. */
export function formatIPv6Groups(groups: number[]): string {
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  // IPv4-mapped addresses read better in dotted form.
  if (bestStart === 0 && bestLen === 5 && groups[5] === 0xffff) {
    return `::ffff:${groups[6]! >> 8}.${groups[6]! & 0xff}.${groups[7]! >> 8}.${groups[7]! & 0xff}`;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/**
 * Parses an IPv4 or IPv6 address in text form into network-order bytes.
 * Returns null when the text is not an address.
 */
export function parseAddress(text: string): { l3: 4 | 6; bytes: Uint8Array } | null {
  const v4 = parseIPv4(text);
  if (v4) return { l3: 4, bytes: v4 };
  const v6 = parseIPv6(text);
  if (v6) return { l3: 6, bytes: v6 };
  return null;
}

function parseIPv4(text: string): Uint8Array | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

function parseIPv6(text: string): Uint8Array | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text) || text.length < 2) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const parseGroups = (s: string): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    const items = s.split(':');
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      if (i === items.length - 1 && item.includes('.')) {
        const v4 = parseIPv4(item);
        if (!v4) return null;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(item)) return null;
        out.push(parseInt(item, 16));
      }
    }
    return out;
  };
  const head = parseGroups(halves[0]!);
  const tail = halves.length === 2 ? parseGroups(halves[1]!) : [];
  if (!head || !tail) return null;
  let groups: number[];
  if (halves.length === 2) {
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return null;
    groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  } else {
    groups = head;
  }
  if (groups.length !== 8) return null;
  const out = new Uint8Array(16);
  groups.forEach((g, i) => { out[i * 2] = g >> 8; out[i * 2 + 1] = g & 0xff; });
  return out;
}
