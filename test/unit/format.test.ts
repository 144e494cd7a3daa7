import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatEthertype,
  formatHex,
  formatIface,
  formatSkb,
  formatTime,
  formatTimestamp,
} from '../../src/output/format.js';
import { parseJsonTime } from '../../src/output/json-read.js';
import { formatTuple } from '../../src/output/tuple.js';
import { protocolName, tcpFlagNames } from '../../src/decode/protocols.js';
import type { Tuple } from '../../src/output/event.js';

const tcp4: Tuple = { l3: 4, saddr: '192.0.2.1', daddr: '192.0.2.2', sport: 43210, dport: 80, l4proto: 6, tcpFlags: 0x12 };
const udp6: Tuple = { l3: 6, saddr: '2001:db8::1', daddr: '2001:db8::2', sport: 80, dport: 5000, l4proto: 17, tcpFlags: 0 };

test('formatTuple: IPv4 TCP, with and without flags', () => {
  assert.equal(formatTuple(tcp4, { tcpFlags: false }), '192.0.2.1:43210->192.0.2.2:80(tcp)');
  assert.equal(formatTuple(tcp4, { tcpFlags: true }), '192.0.2.1:43210->192.0.2.2:80(tcp:SYN|ACK)');
  // No flags set: nothing to add.
  assert.equal(formatTuple({ ...tcp4, tcpFlags: 0 }, { tcpFlags: true }), '192.0.2.1:43210->192.0.2.2:80(tcp)');
});

test('formatTuple: IPv6 addresses in brackets', () => {
  assert.equal(formatTuple(udp6, { tcpFlags: true }), '[2001:db8::1]:80->[2001:db8::2]:5000(udp)');
});

test('formatTuple: icmp, icmp6 and unknown protocols have no ports', () => {
  const icmp: Tuple = { ...tcp4, l4proto: 1, sport: 0, dport: 0, tcpFlags: 0 };
  assert.equal(formatTuple(icmp, { tcpFlags: true }), '192.0.2.1->192.0.2.2(icmp)');
  const icmp6: Tuple = { ...udp6, l4proto: 58 };
  assert.equal(formatTuple(icmp6, { tcpFlags: false }), '[2001:db8::1]->[2001:db8::2](icmp6)');
  const gre: Tuple = { ...tcp4, l4proto: 47, tcpFlags: 0 };
  assert.equal(formatTuple(gre, { tcpFlags: false }), '192.0.2.1->192.0.2.2(47)');
  const sctp: Tuple = { ...tcp4, l4proto: 132, tcpFlags: 0 };
  assert.equal(formatTuple(sctp, { tcpFlags: false }), '192.0.2.1:43210->192.0.2.2:80(sctp)');
  // DCCP and UDP-Lite have ports on the wire, but no probe reads them: a tuple of them carries none to print.
  const dccp: Tuple = { ...tcp4, l4proto: 33, sport: 0, dport: 0, tcpFlags: 0 };
  assert.equal(formatTuple(dccp, { tcpFlags: false }), '192.0.2.1->192.0.2.2(33)');
  assert.equal(formatTuple({ ...dccp, l4proto: 136 }, { tcpFlags: false }), '192.0.2.1->192.0.2.2(136)');
  // Flags are a TCP thing only.
  assert.equal(formatTuple({ ...udp6, tcpFlags: 0x02 }, { tcpFlags: true }), '[2001:db8::1]:80->[2001:db8::2]:5000(udp)');
});

test('formatTuple: null is empty', () => {
  assert.equal(formatTuple(null, { tcpFlags: true }), '');
});

test('protocolName', () => {
  assert.equal(protocolName(6), 'tcp');
  assert.equal(protocolName(17), 'udp');
  assert.equal(protocolName(1), 'icmp');
  assert.equal(protocolName(58), 'icmp6');
  assert.equal(protocolName(132), 'sctp');
  assert.equal(protocolName(47), undefined);
});

test('tcpFlagNames: bit order like pwru', () => {
  assert.equal(tcpFlagNames(0), '');
  assert.equal(tcpFlagNames(0x02), 'SYN');
  assert.equal(tcpFlagNames(0x12), 'SYN|ACK');
  assert.equal(tcpFlagNames(0x11), 'FIN|ACK');
  assert.equal(tcpFlagNames(0x18), 'PSH|ACK');
  assert.equal(tcpFlagNames(0x14), 'RST|ACK');
  assert.equal(tcpFlagNames(0xff), 'FIN|SYN|RST|PSH|ACK|URG|ECE|CWR');
  assert.equal(tcpFlagNames(0xc2), 'SYN|ECE|CWR');
});

test('formatTime: RFC 3339 UTC with nanoseconds', () => {
  assert.equal(formatTime(1795757400123456789n), '2026-11-27T05:30:00.123456789Z');
  assert.equal(formatTime(1795757400000000007n), '2026-11-27T05:30:00.000000007Z');
  assert.equal(formatTime(0n), '1970-01-01T00:00:00.000000000Z');
  // Same second after another one: the per-second cache must not leak.
  assert.equal(formatTime(1795757401999999999n), '2026-11-27T05:30:01.999999999Z');
  assert.equal(formatTime(1795757400123456789n), '2026-11-27T05:30:00.123456789Z');
  // From a trace read back (any time the format can say): before 1970, the second before; past 9999, six digits.
  assert.equal(formatTime(-1n), '1969-12-31T23:59:59.999999999Z');
  assert.equal(formatTime(-1_500_000_000n), '1969-12-31T23:59:58.500000000Z');
  assert.equal(formatTime(-2_000_000_000n), '1969-12-31T23:59:58.000000000Z');
  assert.equal(formatTime(300_000_000_000_000_000_123n), '+011476-08-15T05:20:00.000000123Z');
  for (const ns of [-1n, -1_500_000_000n, 300_000_000_000_000_000_123n, 1795757400123456789n]) {
    assert.equal(parseJsonTime(formatTime(ns)), ns);
  }
});

test('formatTimestamp: modes', () => {
  const e = { timeNs: 1795757400123456789n, sinceStartNs: 1_234_567_890n };
  assert.equal(formatTimestamp(e, 'none'), '');
  assert.equal(formatTimestamp(e, 'absolute'), '2026-11-27T05:30:00.123456789Z');
  assert.equal(formatTimestamp(e, 'relative'), '+1.234567');
  assert.equal(formatTimestamp({ ...e, sinceStartNs: 0n }, 'relative'), '+0.000000');
  assert.equal(formatTimestamp({ ...e, sinceStartNs: 61_000_001_000n }, 'relative'), '+61.000001');

  const d = new Date(1795757400123);
  const p = (n: number): string => String(n).padStart(2, '0');
  const expected = `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.123456`;
  assert.equal(formatTimestamp(e, 'current'), expected);
  assert.match(formatTimestamp({ ...e, timeNs: 1795757460000000999n }, 'current'), /^\d\d:\d\d:\d\d\.000000$/);
});

test('hex helpers', () => {
  // First in this process: an address the caches' empty slots could be taken for.
  assert.equal(formatSkb(-1n), '0x00000000000000-1');
  assert.equal(formatSkb(0xffff8880045c3e00n), '0xffff8880045c3e00');
  assert.equal(formatSkb(0x1234n), '0x0000000000001234');
  assert.equal(formatSkb(0n), '0x0000000000000000');
  assert.equal(formatHex(0), '0x0');
  assert.equal(formatHex(0x1f), '0x1f');
  assert.equal(formatHex(0xffffffff), '0xffffffff');
  assert.equal(formatEthertype(0x0800), '0x0800');
  assert.equal(formatEthertype(0x86dd), '0x86dd');
  assert.equal(formatEthertype(0), '0x0000');
});

test('formatIface', () => {
  assert.equal(formatIface('eth0', 2), 'eth0:2');
  assert.equal(formatIface('', 9), '9');
});

test('tuple changes: DNAT, SNAT, both, and a different packet altogether', async () => {
  const { formatTupleChange } = await import('../../src/output/tuple.js');
  const t = (saddr: string, sport: number, daddr: string, dport: number, l4proto = 6) =>
    ({ l3: 4 as const, saddr, daddr, sport, dport, l4proto, tcpFlags: 0 });
  assert.equal(formatTupleChange(t('192.0.2.1', 5000, '203.0.113.1', 80), t('192.0.2.1', 5000, '198.51.100.2', 8080)),
    'DNAT 203.0.113.1:80 \u2192 198.51.100.2:8080');
  assert.equal(formatTupleChange(t('192.0.2.1', 5000, '198.51.100.2', 80), t('198.51.100.1', 6000, '198.51.100.2', 80)),
    'SNAT 192.0.2.1:5000 \u2192 198.51.100.1:6000');
  assert.equal(formatTupleChange(t('192.0.2.1', 1, '192.0.2.2', 2), t('192.0.2.9', 1, '192.0.2.8', 2)),
    'DNAT 192.0.2.2:2 \u2192 192.0.2.8:2 SNAT 192.0.2.1:1 \u2192 192.0.2.9:1');
  assert.equal(formatTupleChange(t('203.0.113.1', 0, '203.0.113.2', 0, 1), t('192.0.2.1', 4242, '192.0.2.2', 4789, 17)),
    'tuple 203.0.113.1->203.0.113.2(icmp) \u2192 192.0.2.1:4242->192.0.2.2:4789(udp)');
});
