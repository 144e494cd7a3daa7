/** The conntrack section in text (`ct:ESTABLISHED/REPLY status=… DNAT a → b`) and JSON. */
import { SlotCache, flat } from '../decode/cache.js';
import { type CtInfo, type CtTuple, natChanges } from '../decode/ct.js';
import { PORTED_PROTOCOLS } from '../decode/protocols.js';
import { sameTuple } from '../decode/tuple.js';
import { escapeText } from './escape.js';
import { formatEndpoint, formatHex } from './format.js';
import { type JsonProto, jsonProto, l3OfAddress, protoFromJson } from './tuple.js';

/** The same flow, or both absent. */
const sameCtTuple = (a: CtTuple | null, b: CtTuple | null): boolean => (a === null || b === null ? a === b : sameTuple(a, b));

/** Every field of the entry's view equal: the test a cached text of `b` passes for `a`. */
export function sameCt(a: CtInfo, b: CtInfo): boolean {
  if (a.id !== b.id || a.state !== b.state || a.dir !== b.dir || a.source !== b.source || a.found !== b.found ||
    a.zone !== b.zone || a.mark !== b.mark || a.error !== b.error || a.status.length !== b.status.length) return false;
  for (let i = 0; i < a.status.length; i++) if (a.status[i] !== b.status[i]) return false;
  return sameCtTuple(a.orig, b.orig) && sameCtTuple(a.reply, b.reply);
}

/** A hash of the entry's view, for the caches of its texts: the view repeats from packet to packet of a flow. */
export function ctHash(ct: CtInfo): number {
  const o = ct.orig;
  const h = (o === null ? 0 : Math.imul(o.sport, 31) + Math.imul(o.dport, 17) + o.l4proto) +
    Math.imul(ct.status.length, 131) + Math.imul(ct.state.length, 7) + (ct.dir === 'reply' ? 1 : 0) + ct.zone + ct.mark;
  return h ^ (h >>> 9);
}

const ctTexts = new SlotCache(256, (): { ct: CtInfo | null; text: string } => ({ ct: null, text: '' }));

/**
 * The conntrack column: `ct:ESTABLISHED/REPLY status=SEEN_REPLY|ASSURED|CONFIRMED`,
 * then the translations the entry records (`DNAT 203.0.113.1:80 → 198.51.100.2:8080`).
 * `ct:untracked` for notrack'ed packets, `ct:none` when a lookup found no entry.
 * Escaped (a recorded trace's states and addresses are any strings), as it is kept.
 */
export function formatCt(ct: CtInfo): string {
  const c = ctTexts.at(ctHash(ct));
  if (c.ct !== null && sameCt(c.ct, ct)) return c.text;
  c.ct = ct;
  return (c.text = flat(escapeText(ctText(ct))));
}

function ctText(ct: CtInfo): string {
  if (ct.state === 'UNTRACKED') return 'ct:untracked';
  if (!ct.found) return 'ct:none';
  let s = 'ct:' + ct.state + (ct.dir === 'reply' ? '/REPLY' : '');
  if (ct.status.length > 0) s += ' status=' + ct.status.join('|');
  if (ct.mark !== 0) s += ' ctmark=' + formatHex(ct.mark);
  if (ct.zone !== 0) s += ' zone=' + ct.zone;
  const ported = ct.orig !== null && PORTED_PROTOCOLS.has(ct.orig.l4proto);
  for (const n of natChanges(ct)) {
    s += ' ' + n.kind + ' ' + formatEndpoint(n.from.addr, n.from.port, ported) + ' \u2192 ' +
      formatEndpoint(n.to.addr, n.to.port, ported);
  }
  return s;
}

export interface JsonCtTuple {
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  proto: JsonProto;
}

export interface JsonCt {
  source: CtInfo['source'];
  found: boolean;
  state: CtInfo['state'];
  dir: CtInfo['dir'];
  /** Address of the entry, `0x…`: groups the packets of one connection. */
  id: string;
  status: string[];
  zone: number;
  mark: number;
  error: number;
  orig: JsonCtTuple | null;
  reply: JsonCtTuple | null;
}

function jsonCtTuple(t: CtTuple | null): JsonCtTuple | null {
  return t === null ? null : { saddr: t.saddr, daddr: t.daddr, sport: t.sport, dport: t.dport, proto: jsonProto(t.l4proto) };
}

export function toJsonCt(ct: CtInfo): JsonCt {
  return {
    source: ct.source,
    found: ct.found,
    state: ct.state,
    dir: ct.dir,
    id: '0x' + ct.id.toString(16).padStart(16, '0'),
    status: ct.status,
    zone: ct.zone,
    mark: ct.mark,
    error: ct.error,
    orig: jsonCtTuple(ct.orig),
    reply: jsonCtTuple(ct.reply),
  };
}

function ctTupleFromJson(t: JsonCtTuple | null): CtTuple | null {
  if (t === null) return null;
  return { l3: l3OfAddress(t.saddr), saddr: t.saddr, daddr: t.daddr, sport: t.sport, dport: t.dport, l4proto: protoFromJson(t.proto) };
}

/** toJsonCt's inverse (`pktpath show`). */
export function ctFromJson(c: JsonCt): CtInfo {
  return {
    source: c.source,
    found: c.found,
    state: c.state,
    dir: c.dir,
    id: BigInt(c.id),
    status: c.status,
    zone: c.zone,
    mark: c.mark,
    error: c.error,
    orig: ctTupleFromJson(c.orig),
    reply: ctTupleFromJson(c.reply),
  };
}
