/** The conntrack section in text (`ct:ESTABLISHED/REPLY status=… DNAT a → b`) and JSON. */
import { type CtInfo, type CtTuple, natChanges } from '../decode/ct.js';
import { PORTED_PROTOCOLS } from '../decode/protocols.js';
import { escapeText } from './escape.js';
import { formatEndpoint, formatHex } from './format.js';
import { type JsonProto, jsonProto, l3OfAddress, protoFromJson } from './tuple.js';

/**
 * The conntrack column: `ct:ESTABLISHED/REPLY status=SEEN_REPLY|ASSURED|CONFIRMED`,
 * then the translations the entry records (`DNAT 203.0.113.1:80 → 198.51.100.2:8080`).
 * `ct:untracked` for notrack'ed packets, `ct:none` when a lookup found no entry.
 * Escaped: a recorded trace's states and addresses are any strings.
 */
export function formatCt(ct: CtInfo): string {
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
  return escapeText(s);
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
