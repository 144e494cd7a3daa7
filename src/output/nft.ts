/**
 * The nft section: one rule evaluation nftables traced for the packet (the
 * rule, a chain's policy, a return), in text
 * (`nft inet filter input #7 "udp dport 9999 drop" → DROP`) and JSON.
 */
import { escapeText, quoteText } from './escape.js';

export interface NftEvaluation {
  family: string;
  table: string;
  chain: string;
  /** The rule's handle; null for a policy or a return. */
  handle: number | null;
  /** The rule as `nft list` prints it; null when it could not be read (removed since, or a policy). */
  rule: string | null;
  kind: 'rule' | 'policy' | 'return';
  /** accept, drop, continue, jump, goto, return, queue, … */
  verdict: string;
  /** The chain of a jump or goto. */
  target: string | null;
  /** nftables' id of the packet's trace. */
  traceId: number;
}

/**
 * `nft inet filter input #7 "udp dport 9999 drop" → DROP`; policies: `nft inet filter input policy → ACCEPT`.
 * Escaped: names and rules (their comments above all) are their authors' text.
 */
export function formatNft(n: NftEvaluation): string {
  let s = `nft ${n.family} ${n.table} ${n.chain}`;
  if (n.kind === 'policy') s += ' policy';
  else if (n.kind === 'return') s += ' return';
  else s += ` #${n.handle ?? '?'}`;
  s = escapeText(s);
  if (n.rule !== null) s += ` ${quoteText(n.rule)}`;
  return s + escapeText(` \u2192 ${n.verdict.toUpperCase()}${n.target ? ` ${n.target}` : ''}`);
}

export interface JsonNft {
  family: string;
  table: string;
  chain: string;
  handle: number | null;
  rule: string | null;
  kind: NftEvaluation['kind'];
  verdict: string;
  target: string | null;
  trace_id: number;
}

export function toJsonNft(n: NftEvaluation): JsonNft {
  return {
    family: n.family, table: n.table, chain: n.chain, handle: n.handle, rule: n.rule, kind: n.kind,
    verdict: n.verdict, target: n.target, trace_id: n.traceId,
  };
}

/** toJsonNft's inverse (`pktpath show`). */
export function nftFromJson(n: JsonNft): NftEvaluation {
  return {
    family: n.family, table: n.table, chain: n.chain, handle: n.handle, rule: n.rule, kind: n.kind,
    verdict: n.verdict, target: n.target, traceId: n.trace_id,
  };
}
