/**
 * The classic --filter-* flags as nft conditions, for the table that turns
 * nftables' tracing on (--output-nft) only for the packets pktpath traces.
 * One nft rule is an AND; the flags' "either side" forms (--filter-ip,
 * --filter-port) become alternatives, one rule each.
 */
import type { Addr } from '../decode/addr.js';
import type { FlagFilter } from './expression.js';

const PORT_PROTOS = '{ tcp, udp, sctp }';

/** nft conditions, one string per rule; [''] matches every packet. */
export function flagsToNft(f: FlagFilter, mark: { value: number; mask: number } | null = null): string[] {
  const fam = (a: Addr) => (a.l3 === 4 ? 'ip' : 'ip6');
  // Each entry: the alternatives of one condition.
  const conds: string[][] = [];
  if (f.srcIp) conds.push([`${fam(f.srcIp)} saddr ${f.srcIp.text}`]);
  if (f.dstIp) conds.push([`${fam(f.dstIp)} daddr ${f.dstIp.text}`]);
  if (f.ip) conds.push([`${fam(f.ip)} saddr ${f.ip.text}`, `${fam(f.ip)} daddr ${f.ip.text}`]);
  const ports = f.srcPort || f.dstPort || f.port;
  if (f.proto !== undefined) conds.push([`meta l4proto ${f.proto}`]);
  else if (ports) conds.push([`meta l4proto ${PORT_PROTOS}`]);
  if (f.srcPort) conds.push([`th sport ${f.srcPort}`]);
  if (f.dstPort) conds.push([`th dport ${f.dstPort}`]);
  if (f.port) conds.push([`th sport ${f.port}`, `th dport ${f.port}`]);
  if (mark) conds.push([mark.mask === 0xffffffff ? `meta mark 0x${mark.value.toString(16)}` :
    `meta mark & 0x${mark.mask.toString(16)} == 0x${mark.value.toString(16)}`]);
  let rules = [''];
  for (const alternatives of conds) {
    rules = rules.flatMap((r) => alternatives.map((a) => (r ? `${r} ${a}` : a)));
  }
  return rules;
}
