/**
 * pktpath's filter as nft rule conditions, for the table that turns
 * nftables' tracing on (--output-nft) only for the packets pktpath traces.
 * The classic --filter-* flags become nft's own matches: one rule is an AND
 * of conditions; the flags' "either side" forms (--filter-ip, --filter-port)
 * and "any protocol with ports" become alternatives, one rule each. A tcpdump
 * expression runs as it is, libpcap's program for packets from their IP
 * header, in iptables' bpf match (through nft_compat), where it fits.
 */
import type { Addr } from '../decode/addr.js';
import { PORTED_PROTOCOLS } from '../decode/protocols.js';
import { type NftCondition, XT_BPF_MAX_INSNS, nftConditionText } from '../kernel/nftables.js';
import type { CompiledFilter, FlagFilter } from './expression.js';

/** The rules, each a list of conditions; [[]] matches every packet. */
export function flagsToNft(f: FlagFilter, mark: { value: number; mask: number } | null = null): NftCondition[][] {
  const addr = (field: 'saddr' | 'daddr', a: Addr): NftCondition => ({ kind: 'addr', field, l3: a.l3, bytes: [...a.bytes], text: a.text });
  const port = (field: 'sport' | 'dport', n: number): NftCondition => ({ kind: 'port', field, port: n });
  // Each entry: the alternatives of one condition.
  const conds: NftCondition[][] = [];
  if (f.srcIp) conds.push([addr('saddr', f.srcIp)]);
  if (f.dstIp) conds.push([addr('daddr', f.dstIp)]);
  if (f.ip) conds.push([addr('saddr', f.ip), addr('daddr', f.ip)]);
  if (f.proto !== undefined) conds.push([{ kind: 'l4proto', proto: f.proto }]);
  else if (f.srcPort || f.dstPort || f.port) conds.push([...PORTED_PROTOCOLS].map((proto) => ({ kind: 'l4proto', proto })));
  if (f.srcPort) conds.push([port('sport', f.srcPort)]);
  if (f.dstPort) conds.push([port('dport', f.dstPort)]);
  if (f.port) conds.push([port('sport', f.port), port('dport', f.port)]);
  if (mark) conds.push([{ kind: 'mark', value: mark.value, mask: mark.mask }]);
  let rules: NftCondition[][] = [[]];
  for (const alternatives of conds) rules = rules.flatMap((r) => alternatives.map((a) => [...r, a]));
  return rules;
}

/**
 * The rule of a compiled tcpdump expression (the flags are in it), and the
 * mark; null where nftables cannot be given it: a program longer than the
 * bpf match takes, or one that needs a link-layer header (netfilter's
 * packets start at their IP header, and it rejects them all there).
 */
export function expressionToNft(f: CompiledFilter, mark: { value: number; mask: number } | null = null): NftCondition[][] | null {
  const insns = f.l3.cbpf;
  if (insns.length > XT_BPF_MAX_INSNS || f.notes.length > 0) return null;
  const rule: NftCondition[] = [{ kind: 'bpf', insns, text: f.expression }];
  if (mark) rule.push({ kind: 'mark', value: mark.value, mask: mark.mask });
  return [rule];
}

/** The rules as nft would print them, for a person. */
export function nftRulesText(rules: NftCondition[][]): string[] {
  return rules.map((r) => r.map(nftConditionText).join(' '));
}
