/** The protocol vocabulary: IP protocol names and numbers, which carry ports, TCP flag names. */

export const IPPROTO = { ICMP: 1, TCP: 6, UDP: 17, DCCP: 33, ICMPV6: 58, SCTP: 132, UDPLITE: 136 } as const;

/** IP protocols by number, with the names tcpdump takes and pwru prints. */
export const IP_PROTOCOLS: ReadonlyMap<number, string> = new Map([
  [IPPROTO.ICMP, 'icmp'],
  [IPPROTO.TCP, 'tcp'],
  [IPPROTO.UDP, 'udp'],
  [IPPROTO.ICMPV6, 'icmp6'],
  [IPPROTO.SCTP, 'sctp'],
]);

const BY_NAME: ReadonlyMap<string, number> = new Map([...IP_PROTOCOLS].map(([n, name]) => [name, n]));

/** The name of an IP protocol number; undefined for those without one here. */
export function protocolName(n: number): string | undefined {
  return IP_PROTOCOLS.get(n);
}

/** The number of a protocol name (`tcp` → 6); undefined when unknown. */
export function protocolNumber(name: string): number | undefined {
  return BY_NAME.get(name);
}

/**
 * Protocols with ports: those the probes read them for (probes/include/packet.h,
 * parse_l4), the only ones a tuple carries ports of, and those tcpdump's `port`
 * means: tcp, udp, sctp. Every other list of them is this one.
 */
export const PORTED_PROTOCOLS: ReadonlySet<number> = new Set([IPPROTO.TCP, IPPROTO.UDP, IPPROTO.SCTP]);

/** The names of PORTED_PROTOCOLS, for messages. */
export const PORTED_NAMES = [...PORTED_PROTOCOLS].map((n) => IP_PROTOCOLS.get(n)!).join(', ');

/**
 * Names in bit order, the order pwru prints them in: FIN|SYN|RST|PSH|ACK|URG|ECE|CWR,
 * so a SYN-ACK reads `SYN|ACK` and a FIN-ACK `FIN|ACK`.
 */
const TCP_FLAG_BITS = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR'] as const;

const TCP_FLAG_TABLE: readonly string[] = Array.from({ length: 256 }, (_, bits) =>
  TCP_FLAG_BITS.filter((_, i) => bits & (1 << i)).join('|'));

/** `SYN|ACK` style names of the set bits of a TCP flags byte; '' when none. */
export function tcpFlagNames(bits: number): string {
  return TCP_FLAG_TABLE[bits & 0xff]!;
}

/** The flags byte of `SYN|ACK` style names (tcpFlagNames' inverse); unknown names count for nothing. */
export function tcpFlagBits(names: string): number {
  let bits = 0;
  for (const name of names.split('|')) {
    const i = TCP_FLAG_BITS.indexOf(name as (typeof TCP_FLAG_BITS)[number]);
    if (i >= 0) bits |= 1 << i;
  }
  return bits;
}
