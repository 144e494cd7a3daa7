/** The tunnel section from an encapsulated packet's first bytes, its text and JSON, and the user-space filter beside it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTunnel } from '../../src/decode/tunnel.js';
import { formatTunnel, toJsonTunnel, tunnelFromJson } from '../../src/output/tunnel.js';
import { ether, eth4, ipv4, ipv6 } from '../helpers/packets.js';

const inner = eth4(ipv4('10.0.0.1', '10.0.0.2', { proto: 'icmp' }));
const vxlanHeader = (vni: number) => [0x08, 0, 0, 0, (vni >> 16) & 0xff, (vni >> 8) & 0xff, vni & 0xff, 0];
const frame = (p: number[]) => ({ data: eth4(p), origLen: 0, l2: true });

test('VXLAN (4789 and the kernel\'s 8472), with its VNI and the inner tuple', () => {
  for (const port of [4789, 8472]) {
    const outer = ipv4('192.0.2.1', '192.0.2.2', { proto: 'udp', sport: 50000, dport: port, payload: [...vxlanHeader(42), ...inner] });
    const t = parseTunnel(frame(outer))!;
    assert.equal(t.kind, 'vxlan');
    assert.equal(t.vni, 42);
    assert.deepEqual([t.inner?.saddr, t.inner?.daddr, t.inner?.l4proto], ['10.0.0.1', '10.0.0.2', 1]);
    assert.equal(formatTunnel(t), 'vxlan vni=42 inner 10.0.0.1->10.0.0.2(icmp)');
  }
  // Captured from the IP header (points before the Ethernet header exists).
  const l3 = ipv4('192.0.2.1', '192.0.2.2', { proto: 'udp', dport: 4789, payload: [...vxlanHeader(7), ...inner] });
  assert.equal(parseTunnel({ data: Uint8Array.from(l3), origLen: 0, l2: false })?.vni, 7);
});

test('Geneve (options skipped), GRE with a key, IP-in-IP and IPv6 outer headers', () => {
  const geneveHdr = [0x01, 0, 0x65, 0x58, 0, 0, 9, 0, 0xaa, 0xbb, 0xcc, 0xdd];
  const geneve = parseTunnel(frame(ipv4('192.0.2.1', '192.0.2.2', { proto: 'udp', dport: 6081, payload: [...geneveHdr, ...inner] })))!;
  assert.deepEqual([geneve.kind, geneve.vni, geneve.inner?.daddr], ['geneve', 9, '10.0.0.2']);
  const innerIp = ipv4('10.0.0.1', '10.0.0.2', { proto: 'tcp', dport: 80 });
  const gre = parseTunnel(frame(ipv4('192.0.2.1', '192.0.2.2', { proto: 47, payload: [0x20, 0, 0x08, 0x00, 0, 0, 0, 5, ...innerIp] })))!;
  assert.deepEqual([gre.kind, gre.vni, gre.inner?.dport], ['gre', 5, 80]);
  assert.equal(formatTunnel(gre), 'gre key=5 inner 10.0.0.1:40000->10.0.0.2:80(tcp)');
  const ipip = parseTunnel(frame(ipv4('192.0.2.1', '192.0.2.2', { proto: 4, payload: innerIp })))!;
  assert.deepEqual([ipip.kind, ipip.vni, ipip.inner?.saddr], ['ipip', null, '10.0.0.1']);
  const six = parseTunnel({ data: ether(0x86dd, ipv6('2001:db8::1', '2001:db8::2', { proto: 'udp', dport: 4789, payload: [...vxlanHeader(1), ...inner] })), origLen: 0, l2: true })!;
  assert.deepEqual([six.kind, six.vni], ['vxlan', 1]);
});

test('not a tunnel: plain packets, other ports, truncated captures name no inner tuple', () => {
  assert.equal(parseTunnel(frame(ipv4('192.0.2.1', '192.0.2.2', { proto: 'udp', dport: 53 }))), null);
  assert.equal(parseTunnel(frame(ipv4('192.0.2.1', '192.0.2.2', { proto: 'icmp' }))), null);
  const outer = eth4(ipv4('192.0.2.1', '192.0.2.2', { proto: 'udp', dport: 4789, payload: [...vxlanHeader(42), ...inner] }));
  const cut = parseTunnel({ data: outer.subarray(0, 14 + 20 + 8 + 8 + 6), origLen: outer.length, l2: true })!;
  assert.deepEqual([cut.kind, cut.vni, cut.inner], ['vxlan', 42, null]);
  assert.equal(formatTunnel(cut), 'vxlan vni=42 inner -');
});

test('JSON: the section and back', () => {
  const t = parseTunnel(frame(ipv4('192.0.2.1', '192.0.2.2', { proto: 'udp', dport: 4789, payload: [...vxlanHeader(42), ...inner] })))!;
  const j = toJsonTunnel(t);
  assert.deepEqual(j, { kind: 'vxlan', vni: 42, inner: { saddr: '10.0.0.1', daddr: '10.0.0.2', sport: 0, dport: 0, proto: 'icmp', flags: '' } });
  assert.deepEqual(tunnelFromJson(JSON.parse(JSON.stringify(j))), t);
});
