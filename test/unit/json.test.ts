import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { JSON_SCHEMA_VERSION, jsonLine, lostRecord, toJsonRecord } from '../../src/output/json.js';
import { jsonText } from '../../src/output/escape.js';
import { validateJsonLine } from '../helpers/schema.js';
import { JsonSink } from '../../src/output/line-sinks.js';
import { BatchedWriter } from '../../src/output/stream.js';
import type { TraceEvent } from '../../src/output/event.js';

import { Collect, loadFixture, root } from '../helpers/fixtures.js';

const { events, lost } = loadFixture();

const FIELDS = [
  'v', 'time', 'skb', 'cpu', 'process', 'pid', 'netns', 'netns_name', 'mark', 'iface', 'ifindex',
  'proto', 'mtu', 'len', 'tuple', 'func', 'probe', 'drop_reason', 'caller',
];

test('golden: JSON lines with stacks and a lost record', async () => {
  const out = new Collect();
  const sink = new JsonSink(new BatchedWriter(out, { isTTY: false }), { stack: true });
  for (const e of events) sink.event(e);
  for (const n of lost) sink.lost(n);
  await sink.close();
  const golden = new URL('fixtures/golden/basic.jsonl', root);
  if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(golden, out.text);
  assert.equal(out.text, readFileSync(golden, 'utf8'));
});

test('fields and their order', () => {
  assert.equal(JSON_SCHEMA_VERSION, 1);
  for (const e of events) {
    assert.deepEqual(Object.keys(toJsonRecord(e, { stack: false })), FIELDS);
    assert.deepEqual(Object.keys(toJsonRecord(e, { stack: true })), [...FIELDS, 'stack']);
  }
  const withTuple = toJsonRecord(events[0]!, { stack: false });
  assert.deepEqual(Object.keys(withTuple.tuple!), ['saddr', 'daddr', 'sport', 'dport', 'proto', 'flags']);
  assert.deepEqual(Object.keys(withTuple.probe), ['type', 'name']);
  assert.deepEqual(Object.keys(lostRecord(lost[0]!)), ['v', 'type', 'time', 'count', 'total']);
});

test('values of a TCP SYN', () => {
  const r = toJsonRecord(events[0]!, { stack: false });
  assert.deepEqual(r, {
    v: 1,
    time: '2026-11-27T05:30:00.123456789Z',
    skb: '0xffff8880045c3e00',
    cpu: 2,
    process: 'curl:4242',
    pid: 4242,
    netns: 4026531840,
    netns_name: '',
    mark: 0,
    iface: 'veth-cli:7',
    ifindex: 7,
    proto: 0x0800,
    mtu: 1500,
    len: 74,
    tuple: { saddr: '192.0.2.1', daddr: '192.0.2.2', sport: 43210, dport: 80, proto: 'tcp', flags: 'SYN' },
    func: 'net_dev_queue',
    probe: { type: 'tracepoint', name: 'net_dev_queue' },
    drop_reason: null,
    caller: null,
  });
});

test('drop, stack, caller, non-IP, unnamed iface, long comm, other protocols', () => {
  const drop = toJsonRecord(events[4]!, { stack: true });
  assert.equal(drop.drop_reason, 'NETFILTER_DROP');
  assert.equal(drop.caller, 'nf_hook_slow+0x91');
  assert.deepEqual(drop.stack, ['kfree_skb_reason+0x9e', 'nf_hook_slow+0x91', 'ip_rcv+0x5c', '__netif_receive_skb_one_core+0x86']);
  assert.equal(drop.netns_name, 'srv');
  assert.equal(drop.mark, 31);

  // A requested stack that was not captured is an empty array, not missing.
  assert.deepEqual(toJsonRecord(events[0]!, { stack: true }).stack, []);

  const dns = toJsonRecord(events[2]!, { stack: false });
  assert.equal(dns.process, 'systemd-resolved:612');
  assert.deepEqual(dns.tuple, { saddr: '2001:db8::1', daddr: '2001:db8::2', sport: 5000, dport: 53, proto: 'udp', flags: '' });

  const ping = toJsonRecord(events[5]!, { stack: false });
  assert.equal(ping.iface, '9');
  assert.equal(ping.tuple!.proto, 'icmp');

  const arp = toJsonRecord(events[6]!, { stack: false });
  assert.equal(arp.tuple, null);
  assert.equal(arp.proto, 0x0806);
  assert.equal(arp.pid, 0);

  const gre = toJsonRecord(events[7]!, { stack: false });
  assert.equal(gre.tuple!.proto, 47);
  assert.equal(gre.mark, 0xffffffff);

  const synack = toJsonRecord(events[8]!, { stack: false });
  assert.equal(synack.tuple!.flags, 'SYN|ACK');

  const sctp = toJsonRecord({ ...events[0]!, tuple: { ...events[0]!.tuple!, l4proto: 132 } }, { stack: false });
  assert.equal(sctp.tuple!.proto, 132);
  assert.equal(sctp.tuple!.flags, '');
});

test('zero values are written', () => {
  const zero = toJsonRecord(
    { ...events[6]!, cpu: 0, netns: 0, mark: 0, ifindex: 0, ifname: '', mtu: 0, len: 0, protocol: 0, caller: null },
    { stack: false },
  );
  const line = JSON.parse(JSON.stringify(zero)) as Record<string, unknown>;
  for (const k of ['cpu', 'pid', 'netns', 'mark', 'ifindex', 'proto', 'mtu', 'len']) assert.equal(line[k], 0, k);
  assert.equal(line['iface'], '0');
  assert.equal(line['netns_name'], '');
  assert.equal(line['caller'], null);
  assert.equal(line['drop_reason'], null);
});

test('lost record', () => {
  assert.equal(
    JSON.stringify(lostRecord({ timeNs: 1795757401500000000n, count: 12, total: 34 })),
    '{"v":1,"type":"lost","time":"2026-11-27T05:30:01.500000000Z","count":12,"total":34}',
  );
  const nft = JSON.stringify(lostRecord({ timeNs: 1795757401500000000n, count: 12, total: 34, source: 'nft' }));
  assert.equal(nft, '{"v":1,"type":"lost","time":"2026-11-27T05:30:01.500000000Z","count":12,"total":34,"source":"nft"}');
  assert.equal(validateJsonLine(nft), null);
});

test('jsonLine writes exactly jsonText(toJsonRecord(...)): JSON.stringify\'s, with DEL, C1 and bidi controls escaped too', () => {
  const odd: TraceEvent = {
    ...events[4]!,
    comm: 'a"b\\c\n\u0001',
    netnsName: 'ns "q"',
    ifname: 'eth\t0',
    func: 'f\u2028g',
    caller: 'caller \ud83d\ude00 \ud800',
    dropReason: 'X\u007f',
    stack: ['a', 'b"c', '\u0000'],
  };
  // Every field of the line's end as in a cache entry never filled: it must not be taken for one.
  const blank: TraceEvent = { ...events[0]!, func: '', probe: { type: '' as TraceEvent['probe']['type'], name: '' }, dropReason: null, caller: null, tuple: null };
  const tagged: TraceEvent = { ...events[0]!, vlan: [200, 100] };
  for (const e of [blank, ...events, odd, tagged]) {
    for (const stack of [false, true]) {
      const line = jsonLine(e, { stack });
      assert.equal(line, jsonText(toJsonRecord(e, { stack })));
      assert.deepEqual(JSON.parse(line), JSON.parse(JSON.stringify(toJsonRecord(e, { stack }))));
    }
  }
});

test('cached pieces follow every field that changes', () => {
  const e = events[0]!;
  const t = e.tuple!;
  const changed: TraceEvent[] = [
    { ...e, comm: 'wget' },
    { ...e, pid: e.pid + 1 },
    { ...e, netnsName: 'other' },
    { ...e, netns: e.netns + 1 },
    { ...e, ifname: 'eth\u00e90' },
    { ...e, ifname: '' },
    { ...e, protocol: 0x86dd },
    { ...e, mtu: 9000 },
    { ...e, tuple: { ...t, tcpFlags: 0x12 } },
    { ...e, tuple: { ...t, saddr: '192.0.2.9' } },
    { ...e, tuple: { ...t, l4proto: 132 } },
    { ...e, func: 'tc:egress' },
    { ...e, probe: { ...e.probe, name: 'other' } },
    { ...e, dropReason: 'NETFILTER_DROP' },
    { ...e, caller: 'ip_rcv+0x1c' },
    { ...e, skb: e.skb + 0x100n },
    { ...e, timeNs: e.timeNs + 5_000_000_000n },
    { ...e, timeNs: e.timeNs + 1n },
    { ...e, cpu: e.cpu + 1 },
    { ...e, mark: 0xffffffff },
    { ...e, ifindex: e.ifindex + 1 },
    { ...e, len: e.len + 1 },
    { ...e, tuple: { ...t, daddr: '192.0.2.99' } },
    { ...e, tuple: { ...t, sport: t.sport + 1 } },
    { ...e, tuple: { ...t, dport: t.dport + 1 } },
    { ...e, tuple: null },
    { ...e, probe: { ...e.probe, type: 'kprobe' } },
    { ...e, tupleBefore: { ...t, daddr: '198.51.100.2' } },
    // Not kernel addresses (a trace read back from a file can say anything): more digits, a sign.
    { ...e, skb: 0x1ffff888100000000n },
    { ...e, skb: -1n },
    { ...e, skb: 0n },
    // A year of five digits: the second's prefix is longer, the nanoseconds start later.
    { ...e, timeNs: 300_000_000_000_000_000_123n },
    // Before 1970: the nanoseconds into the second before.
    { ...e, timeNs: -1_500_000_001n },
  ];
  for (const x of [e, ...changed, e]) {
    for (const stack of [false, true]) {
      assert.equal(jsonLine(x, { stack }), JSON.stringify(toJsonRecord(x, { stack })));
    }
  }
});

test('lines stay exact when many runs share the caches', () => {
  // Enough distinct starts and ends of lines (processes, devices, flows, points) to fill both
  // slots of many of them and take slots from each other, interleaved, with changing times and skbs.
  const base = events[0]!;
  const t = base.tuple!;
  const all: TraceEvent[] = [];
  for (let i = 0; i < 3000; i++) {
    all.push({
      ...base,
      timeNs: base.timeNs + BigInt(i) * 333_333_337n,
      skb: base.skb + BigInt(i % 97) * 0x100n,
      cpu: i % 3,
      pid: 1000 + (i % 41),
      ifindex: 1 + (i % 13),
      len: 60 + (i % 5),
      tuple: { ...t, sport: 40000 + (i % 37) },
      func: ['ip_rcv', 'netif_receive_skb', 'tc:ingress', 'consume_skb'][i % 4]!,
    });
  }
  for (const round of [0, 1]) {
    for (const x of all) assert.equal(jsonLine(x, { stack: false }), JSON.stringify(toJsonRecord(x, { stack: false })), `round ${round}`);
  }
});

test('every field of a line\'s start and end is part of its cached key', () => {
  // Events that differ in one field only, many values each: some pairs meet in a slot of the
  // caches, and a field left out of the comparison would give one the other's text.
  const base = events[0]!;
  const t = base.tuple!;
  const vary: Array<(i: number) => Partial<TraceEvent>> = [
    (i) => ({ cpu: i }), (i) => ({ pid: i }), (i) => ({ comm: 'c' + i }), (i) => ({ netns: 4026531840 + i }),
    (i) => ({ netnsName: 'ns' + i }), (i) => ({ mark: i }), (i) => ({ ifindex: i }), (i) => ({ ifname: 'if' + i }),
    (i) => ({ protocol: i }), (i) => ({ mtu: i }), (i) => ({ func: 'f' + i }), (i) => ({ probe: { type: 'kprobe', name: 'p' + i } }),
    (i) => ({ probe: { type: i % 2 ? 'kprobe' : 'tracepoint', name: 'p' } }), (i) => ({ dropReason: 'R' + i }), (i) => ({ caller: 'c+0x' + i }),
    (i) => ({ tuple: { ...t, saddr: '192.0.2.' + (i % 256) } }), (i) => ({ tuple: { ...t, daddr: '198.51.100.' + (i % 256) } }),
    (i) => ({ tuple: { ...t, sport: i } }), (i) => ({ tuple: { ...t, dport: i } }), (i) => ({ tuple: { ...t, l4proto: i % 256 } }),
    (i) => ({ tuple: { ...t, tcpFlags: i % 256 } }), (i) => ({ timeNs: base.timeNs + BigInt(i) * 1_000_000_000n }),
    // Times and skbs are written over a cached start: every digit of theirs must be this record's.
    (i) => ({ timeNs: base.timeNs + BigInt(i) * 1_234_567n }), (i) => ({ skb: base.skb + BigInt(i) * 0x1111n }),
    (i) => ({ skb: 0x1ffff888100000000n + BigInt(i) }),
  ];
  for (const [n, f] of vary.entries()) {
    const xs = Array.from({ length: 400 }, (_, i) => ({ ...base, ...f(i) }));
    for (const x of [...xs, ...xs.reverse()]) {
      assert.equal(jsonLine(x, { stack: false }), JSON.stringify(toJsonRecord(x, { stack: false })), `field ${n}`);
    }
  }
});
