/**
 * The IP/L4 parser (src/decode/ip.ts) over packets captured on loopback
 * (first bytes, from the IP header on), read by the probes' rules
 * (probes/include/packet.h): extension headers walked, later fragments
 * without ports, nftables' 40-byte copies of the network header.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { packetFromTuple, parseIpHeaders, tupleFromHeaders, tupleFromPacket } from '../../src/decode/ip.js';
import type { Tuple } from '../../src/decode/tuple.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const V6 = '20010db8000000000000000000000001';

/** UDP 42130 → 7001 with a hop-by-hop header (one PadN option). */
const HBH_UDP = hex(`6000fa5d00130040 ${V6} ${V6} 1100010400000000 a4921b59000b1416 686268`);
/** UDP 41365 → 7003 with a hop-by-hop header, then destination options. */
const HBH_DST_UDP = hex(`600400e0001b0040 ${V6} ${V6} 3c00010400000000 1100010400000000 a1951b5b000b0f00 647374`);
/** The first fragment of a 2000-byte datagram to 7002 over a 1280 MTU (fragment header: offset 0, more). */
const FRAG_FIRST = hex(`6006fa0404d82c40 ${V6} ${V6} 11000001f4b89341 a1271b5a07d841b2 7878787878787878`);
/** Its later fragment (offset 1232): payload where a transport header would be. */
const FRAG_LATER = hex(`6006fa0403102c40 ${V6} ${V6} 110004d0f4b89341 7878787878787878`);
/** IPv4: a TCP SYN 39564 → 7005, a UDP datagram's first fragment (58845 → 7004) and its later one. */
const TCP_SYN = hex('4500003c4dc24000400668f7c0000201c00002019a8c1b5d6e68f94900000000a002fbe084310000020404d80402080a19b279ae000000000103030a');
const V4_FRAG_FIRST = hex('450004fc7a1d2000401157d1c0000201c0000201e5dd1b5c07d8e87e79797979');
const V4_FRAG_LATER = hex('450003047a1d009d4011792cc0000201c000020179797979797979797979797979797979');

const v6 = (sport: number, dport: number, l4proto = 17): Tuple =>
  ({ l3: 6, saddr: '2001:db8::1', daddr: '2001:db8::1', sport, dport, l4proto, tcpFlags: 0 });
const v4 = (sport: number, dport: number, l4proto: number, tcpFlags = 0): Tuple =>
  ({ l3: 4, saddr: '192.0.2.1', daddr: '192.0.2.1', sport, dport, l4proto, tcpFlags });

test('IPv6 extension headers are walked to the transport header, as the probes walk them', () => {
  assert.deepEqual(tupleFromPacket(HBH_UDP), v6(42130, 7001));
  assert.deepEqual(tupleFromPacket(HBH_DST_UDP), v6(41365, 7003));
  assert.deepEqual(parseIpHeaders(HBH_DST_UDP), { l3: 6, saddrAt: 8, daddrAt: 24, l4proto: 17, l4At: 56, truncated: false });
  assert.deepEqual(tupleFromPacket(FRAG_FIRST), v6(41255, 7002));
});

test('a later fragment has no transport header: its protocol, no ports (IPv4 and IPv6)', () => {
  assert.deepEqual(tupleFromPacket(FRAG_LATER), v6(0, 0));
  assert.equal(parseIpHeaders(FRAG_LATER)!.l4At, -1);
  assert.deepEqual(tupleFromPacket(V4_FRAG_FIRST), v4(58845, 7004, 17));
  assert.deepEqual(tupleFromPacket(V4_FRAG_LATER), v4(0, 0, 17));
});

test('IPv4 TCP: ports and flags', () => {
  assert.deepEqual(tupleFromPacket(TCP_SYN), v4(39564, 7005, 6, 0x02));
});

test('AH and routing headers are walked by their own lengths; the walk stops after four, as the probes\' does', () => {
  // Routing (type 4, no segments left: 8 bytes), then AH (payload length 4: (4 + 2) * 4 = 24 bytes), then UDP.
  const ah = hex(`6000000000302b40 ${V6} ${V6} 3300040000000000 1104000000000100 0000000100000000 0000000000000000 a4921b59000b0000`);
  assert.deepEqual(tupleFromPacket(ah), v6(42130, 7001));
  // Five destination-options headers: the fifth is not walked, and names the protocol.
  const five = hex(`6000000000300040 ${V6} ${V6} ${'3c00010400000000'.repeat(4)} 1100010400000000 a4921b59000b0000`);
  assert.deepEqual(tupleFromPacket(five), v6(0, 0, 60));
  // A protocol without ports has none.
  assert.deepEqual(tupleFromPacket(hex(`6000000000080040 ${V6} ${V6} 3a00010400000000 8000000000010001`)), v6(0, 0, 58));
});

test('not IP, or shorter than the fixed header: no tuple', () => {
  assert.equal(tupleFromPacket(hex('0001080006040001')), null);
  assert.equal(tupleFromPacket(HBH_UDP.subarray(0, 39)), null);
  assert.equal(tupleFromPacket(TCP_SYN.subarray(0, 19)), null);
  assert.equal(tupleFromPacket(HBH_UDP, HBH_UDP.length), null);
});

test('nftables\' copies: 40 bytes of the network header, the transport header from where netfilter found it', () => {
  // No extension header: the copy ends at the transport header, which has its own.
  const plain = hex(`6000000000081140 ${V6} ${V6}`);
  assert.deepEqual(tupleFromHeaders(plain, hex('a4921b59000b0000')), { tuple: v6(42130, 7001), l4Known: true });
  // A hop-by-hop header past the copy: the protocol is not known; the tuple names what the copy does.
  assert.deepEqual(tupleFromHeaders(HBH_UDP.subarray(0, 40), HBH_UDP.subarray(48)), { tuple: v6(0, 0, 0), l4Known: false });
  assert.deepEqual(tupleFromHeaders(FRAG_FIRST.subarray(0, 40), FRAG_FIRST.subarray(48)), { tuple: v6(0, 0, 44), l4Known: false });
  // IPv4: the protocol is always in the copy; a later fragment's "transport header" is payload, not ports.
  assert.deepEqual(tupleFromHeaders(TCP_SYN.subarray(0, 20), TCP_SYN.subarray(20, 40)), { tuple: v4(39564, 7005, 6, 0x02), l4Known: true });
  assert.deepEqual(tupleFromHeaders(V4_FRAG_LATER.subarray(0, 20), V4_FRAG_LATER.subarray(20)), { tuple: v4(0, 0, 17), l4Known: true });
  // Given whole (a tunnel's inner packet): the transport header is found in it.
  assert.deepEqual(tupleFromHeaders(HBH_UDP, null), { tuple: v6(42130, 7001), l4Known: true });
});

test('the packet a tuple describes parses back to the tuple', () => {
  for (const t of [v6(42130, 7001), v4(39564, 7005, 6, 0x12), v4(0, 0, 1), v6(0, 0, 58), v4(5, 6, 132), v4(0, 0, 47)]) {
    assert.deepEqual(tupleFromPacket(packetFromTuple(t)), t);
  }
});
