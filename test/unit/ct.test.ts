/** The conntrack section: decoding, state names, NAT, JSON and text. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAddress } from '../../src/decode/addr.js';
import { decodeEvent } from '../../src/decode/event.js';
import { CtSource, EVENT_LAYOUT, EventFlags, RecordType, SECTION_HEAD, SectionKind } from '../../src/decode/layout.js';
import { formatCt } from '../../src/output/ct.js';
import { jsonLine, toJsonRecord } from '../../src/output/json.js';
import { TextFormatter } from '../../src/output/text.js';
import { type CtInfo, type RawCt, ctInfo, ctStatusNames, natChanges } from '../../src/decode/ct.js';
import type { TraceEvent } from '../../src/output/event.js';
import { validateJsonLine } from '../helpers/schema.js';

const F = EVENT_LAYOUT.fields;
const CF = EVENT_LAYOUT.ct_section.fields;
const TF = EVENT_LAYOUT.ct_tuple.fields;

// IPS_* bits
const SEEN_REPLY = 1 << 1;
const ASSURED = 1 << 2;
const CONFIRMED = 1 << 3;
const SRC_NAT = 1 << 4;
const DST_NAT = 1 << 5;
const SRC_NAT_DONE = 1 << 7;
const DST_NAT_DONE = 1 << 8;

function writeTuple(v: DataView, b: Uint8Array, at: number, t: { s: string; d: string; sp: number; dp: number; p: number }) {
  const s = parseAddress(t.s)!;
  b.set(s.bytes, at + TF.saddr);
  b.set(parseAddress(t.d)!.bytes, at + TF.daddr);
  v.setUint16(at + TF.sport, t.sp, true);
  v.setUint16(at + TF.dport, t.dp, true);
  b[at + TF.l3] = s.l3;
  b[at + TF.l4proto] = t.p;
}

/** A record with a CT section, at offset 8 of a larger buffer (as in the ring). */
function record(fill: (v: DataView, b: Uint8Array, ct: number) => void, flags: number = EventFlags.ct) {
  const at = 8;
  const len = SECTION_HEAD.size + EVENT_LAYOUT.ct_section.size;
  const buf = new ArrayBuffer(at + EVENT_LAYOUT.size + len + 16);
  const v = new DataView(buf, at);
  const b = new Uint8Array(buf, at);
  v.setUint32(F.type, RecordType.event, true);
  v.setUint32(F.flags, flags, true);
  // The section follows the event, behind its head; the packet bytes (none) after it.
  v.setUint16(EVENT_LAYOUT.size, SectionKind.ct, true);
  v.setUint16(EVENT_LAYOUT.size + SECTION_HEAD.fields.len, len, true);
  v.setUint16(F.cap_offset, EVENT_LAYOUT.size + len, true);
  fill(v, b, EVENT_LAYOUT.size + SECTION_HEAD.size);
  return decodeEvent(new DataView(buf), new Uint8Array(buf), at)!;
}

test('decodes a conntrack entry from skb->_nfct, with both tuples', () => {
  const e = record((v, b, c) => {
    v.setBigUint64(c + CF.id, 0xffff888123456780n, true);
    v.setUint32(c + CF.status, SEEN_REPLY | CONFIRMED | DST_NAT | DST_NAT_DONE, true);
    v.setUint32(c + CF.mark, 0x42, true);
    v.setUint16(c + CF.zone, 7, true);
    b[c + CF.source] = CtSource.nfct;
    b[c + CF.ctinfo] = 3;
    b[c + CF.dir] = 1;
    writeTuple(v, b, c + CF.orig, { s: '192.0.2.1', d: '203.0.113.1', sp: 40000, dp: 80, p: 6 });
    writeTuple(v, b, c + CF.reply, { s: '198.51.100.2', d: '192.0.2.1', sp: 8080, dp: 40000, p: 6 });
  });
  assert.deepEqual(e.ct, {
    source: CtSource.nfct, id: 0xffff888123456780n, status: SEEN_REPLY | CONFIRMED | DST_NAT | DST_NAT_DONE,
    mark: 0x42, zone: 7, error: 0, ctinfo: 3, dir: 1,
    orig: { l3: 4, saddr: '192.0.2.1', daddr: '203.0.113.1', sport: 40000, dport: 80, l4proto: 6 },
    reply: { l3: 4, saddr: '198.51.100.2', daddr: '192.0.2.1', sport: 8080, dport: 40000, l4proto: 6 },
  });
});

test('no section without the flag; no tuples without an entry; IPv6 tuples', () => {
  assert.equal(record((_v, b, c) => (b[c + CF.source] = CtSource.nfct), 0).ct, null);
  const untracked = record((_v, b, c) => {
    b[c + CF.source] = CtSource.nfct;
    b[c + CF.ctinfo] = 7;
  });
  assert.deepEqual([untracked.ct?.orig, untracked.ct?.reply], [null, null]);
  const v6 = record((v, b, c) => {
    v.setBigUint64(c + CF.id, 1n, true);
    b[c + CF.source] = CtSource.lookup;
    b[c + CF.ctinfo] = 0xff;
    writeTuple(v, b, c + CF.orig, { s: '2001:db8::1', d: '2001:db8::2', sp: 5353, dp: 53, p: 17 });
    writeTuple(v, b, c + CF.reply, { s: '2001:db8::2', d: '2001:db8::1', sp: 53, dp: 5353, p: 17 });
  });
  assert.equal(v6.ct?.orig?.saddr, '2001:db8::1');
  assert.equal(v6.ct?.reply?.l3, 6);
});

const base: RawCt = {
  source: CtSource.nfct, id: 0x1000n, status: 0, mark: 0, zone: 0, error: 0, ctinfo: 2, dir: 0,
  orig: { l3: 4, saddr: '192.0.2.1', daddr: '192.0.2.2', sport: 40000, dport: 8080, l4proto: 6 },
  reply: { l3: 4, saddr: '192.0.2.2', daddr: '192.0.2.1', sport: 8080, dport: 40000, l4proto: 6 },
};

test('ctinfo becomes the state nft names, plus the direction', () => {
  const cases: Array<[number, string, string]> = [
    [0, 'ESTABLISHED', 'orig'], [1, 'RELATED', 'orig'], [2, 'NEW', 'orig'],
    [3, 'ESTABLISHED', 'reply'], [4, 'RELATED', 'reply'], [7, 'UNTRACKED', 'orig'],
  ];
  for (const [ctinfo, state, dir] of cases) {
    const c = ctInfo({ ...base, ctinfo, dir: dir === 'reply' ? 1 : 0 });
    assert.deepEqual([c.source, c.found, c.state, c.dir], ['nfct', true, state, dir], `ctinfo ${ctinfo}`);
  }
});

test('lookups: the state conntrack would give the packet; not found is NONE with the error', () => {
  const lookup = { ...base, source: CtSource.lookup, ctinfo: 0xff };
  assert.equal(ctInfo({ ...lookup, status: CONFIRMED }).state, 'NEW');
  assert.equal(ctInfo({ ...lookup, status: CONFIRMED | SEEN_REPLY }).state, 'ESTABLISHED');
  assert.equal(ctInfo({ ...lookup, status: CONFIRMED, dir: 1 }).state, 'ESTABLISHED');
  assert.equal(ctInfo({ ...lookup, status: 1 /* EXPECTED */ }).state, 'RELATED');
  const none = ctInfo({ ...lookup, id: 0n, error: -2, orig: null, reply: null });
  assert.deepEqual([none.source, none.found, none.state, none.error], ['tc-lookup', false, 'NONE', -2]);
});

test('status bits by name, lowest first; unnamed bits stay visible', () => {
  assert.deepEqual(ctStatusNames(SEEN_REPLY | ASSURED | CONFIRMED), ['SEEN_REPLY', 'ASSURED', 'CONFIRMED']);
  assert.deepEqual(ctStatusNames((1 << 12) | (1 << 20)), ['NAT_CLASH', 'BIT20']);
  assert.deepEqual(ctStatusNames(0), []);
});

const natted: CtInfo = ctInfo({
  ...base, ctinfo: 3, dir: 1, status: SEEN_REPLY | ASSURED | CONFIRMED | SRC_NAT | DST_NAT | SRC_NAT_DONE | DST_NAT_DONE,
  orig: { l3: 4, saddr: '192.0.2.1', daddr: '203.0.113.1', sport: 40000, dport: 80, l4proto: 6 },
  reply: { l3: 4, saddr: '198.51.100.2', daddr: '198.51.100.1', sport: 8080, dport: 40000, l4proto: 6 },
});

test('NAT read from the two tuples: DNAT then SNAT; none when the reply mirrors the original', () => {
  assert.deepEqual(natChanges(natted), [
    { kind: 'DNAT', from: { addr: '203.0.113.1', port: 80 }, to: { addr: '198.51.100.2', port: 8080 } },
    { kind: 'SNAT', from: { addr: '192.0.2.1', port: 40000 }, to: { addr: '198.51.100.1', port: 40000 } },
  ]);
  assert.deepEqual(natChanges(ctInfo(base)), []);
  assert.deepEqual(natChanges(ctInfo({ ...base, ctinfo: 7, id: 0n, orig: null, reply: null })), []);
});

test('text: state/direction, status, NAT; untracked and lookups that found nothing', () => {
  assert.equal(
    formatCt(natted),
    'ct:ESTABLISHED/REPLY status=SEEN_REPLY|ASSURED|CONFIRMED|SRC_NAT|DST_NAT|SRC_NAT_DONE|DST_NAT_DONE ' +
      'DNAT 203.0.113.1:80 \u2192 198.51.100.2:8080 SNAT 192.0.2.1:40000 \u2192 198.51.100.1:40000',
  );
  assert.equal(formatCt(ctInfo(base)), 'ct:NEW');
  assert.equal(formatCt(ctInfo({ ...base, ctinfo: 0, status: CONFIRMED, mark: 0x10, zone: 3 })), 'ct:ESTABLISHED status=CONFIRMED ctmark=0x10 zone=3');
  assert.equal(formatCt(ctInfo({ ...base, ctinfo: 7, id: 0n, orig: null, reply: null })), 'ct:untracked');
  assert.equal(formatCt(ctInfo({ ...base, source: CtSource.lookup, ctinfo: 0xff, id: 0n, error: -2, orig: null, reply: null })), 'ct:none');
  // IPv6 endpoints are bracketed; ICMP has no ports.
  const v6 = ctInfo({
    ...base,
    orig: { l3: 6, saddr: '2001:db8::1', daddr: '2001:db8:1::1', sport: 5000, dport: 80, l4proto: 6 },
    reply: { l3: 6, saddr: '2001:db8:2::2', daddr: '2001:db8::1', sport: 80, dport: 5000, l4proto: 6 },
  });
  assert.match(formatCt(v6), /DNAT \[2001:db8:1::1\]:80 \u2192 \[2001:db8:2::2\]:80$/);
  const icmp = ctInfo({
    ...base,
    orig: { l3: 4, saddr: '192.0.2.1', daddr: '203.0.113.1', sport: 0, dport: 0, l4proto: 1 },
    reply: { l3: 4, saddr: '198.51.100.2', daddr: '192.0.2.1', sport: 0, dport: 0, l4proto: 1 },
  });
  assert.match(formatCt(icmp), /DNAT 203\.0\.113\.1 \u2192 198\.51\.100\.2$/);
});

const event: TraceEvent = {
  timeNs: 1795757400123456789n, sinceStartNs: 5n, skb: 0xffff888104870900n, cpu: 1, pid: 42, comm: 'node',
  netns: 4026532000, netnsName: 'r', mark: 0, ifindex: 2, ifname: 'r-a', protocol: 0x0800, mtu: 1500, len: 60,
  tuple: { l3: 4, saddr: '198.51.100.2', daddr: '198.51.100.1', sport: 8080, dport: 40000, l4proto: 6, tcpFlags: 0x12 },
  func: 'nf:ipv4:pre_routing', probe: { type: 'netfilter', name: 'nf:ipv4:pre_routing' },
  dropReason: null, caller: null, stack: null, ct: natted,
};

test('JSON: the fast line and the generic record agree, and validate against the schema', () => {
  for (const e of [event, { ...event, ct: ctInfo({ ...base, ctinfo: 7, id: 0n, orig: null, reply: null }) }]) {
    const line = jsonLine(e, { stack: false });
    assert.equal(line, JSON.stringify(toJsonRecord(e, { stack: false })));
    assert.equal(validateJsonLine(line), null);
  }
  const rec = JSON.parse(jsonLine(event, { stack: true })) as { ct: Record<string, unknown>; stack: unknown };
  assert.deepEqual(rec.ct, {
    source: 'nfct', found: true, state: 'ESTABLISHED', dir: 'reply', id: '0x0000000000001000',
    status: ['SEEN_REPLY', 'ASSURED', 'CONFIRMED', 'SRC_NAT', 'DST_NAT', 'SRC_NAT_DONE', 'DST_NAT_DONE'],
    zone: 0, mark: 0, error: 0,
    orig: { saddr: '192.0.2.1', daddr: '203.0.113.1', sport: 40000, dport: 80, proto: 'tcp' },
    reply: { saddr: '198.51.100.2', daddr: '198.51.100.1', sport: 8080, dport: 40000, proto: 'tcp' },
  });
  // ct comes before stack, and is absent when unknown.
  assert.ok(jsonLine(event, { stack: true }).indexOf('"ct"') < jsonLine(event, { stack: true }).indexOf('"stack"'));
  for (const ct of [null, undefined]) assert.ok(!jsonLine({ ...event, ct }, { stack: false }).includes('"ct"'));
});

test('JSON: a conntrack view that differs from the last in any one field gets its own text', () => {
  const ct = event.ct!;
  const variants = [
    ct,
    { ...ct, id: 0x2000n }, { ...ct, state: 'NEW' as const }, { ...ct, dir: 'orig' as const }, { ...ct, zone: 7 }, { ...ct, mark: 9 },
    { ...ct, status: ct.status.slice(1) }, { ...ct, status: [...ct.status.slice(0, -1), 'DYING'] },
    { ...ct, orig: { ...ct.orig!, sport: 40001 } }, { ...ct, reply: { ...ct.reply!, daddr: '198.51.100.9' } }, { ...ct, reply: null },
    { ...ct, source: 'tc-lookup' as const, found: false, error: -2 },
  ];
  // Twice over: the second round meets every text in the cache.
  for (const round of [1, 2]) {
    for (const v of variants) {
      const e = { ...event, ct: v };
      assert.equal(jsonLine(e, { stack: false }), JSON.stringify(toJsonRecord(e, { stack: false })), `round ${round}`);
    }
  }
});

test('text lines carry ct only with --output-ct', () => {
  const opts = { tuple: true, meta: false, stack: false, caller: false, tcpFlags: false, timestamp: 'none', color: false } as const;
  const withCt = new TextFormatter({ ...opts, ct: true }).formatEvent(event);
  assert.ok(withCt.endsWith('nf:ipv4:pre_routing ' + formatCt(natted)), withCt);
  assert.ok(!new TextFormatter(opts).formatEvent(event).includes('ct:'));
  assert.ok(new TextFormatter({ ...opts, ct: true }).formatEvent({ ...event, ct: null }).endsWith('nf:ipv4:pre_routing'));
  // Before the drop reason.
  const dropped = new TextFormatter({ ...opts, ct: true }).formatEvent({ ...event, dropReason: 'NETFILTER_DROP' });
  assert.ok(dropped.indexOf('ct:') < dropped.indexOf('reason='));
});
