/**
 * `pktpath show`'s halves without the kernel: JSON lines back into events
 * (the inverse of the JSON writer, field for field), the tcpdump filter on
 * recorded events (captured bytes, else the tuple's headers), the selection
 * by namespace, device, mark and point, and the text a replay prints.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { eventFromJson, parseJsonTime } from '../../src/output/json-read.js';
import { type JsonRecord, jsonLine, toJsonRecord } from '../../src/output/json.js';
import type { TraceEvent, Tuple } from '../../src/output/event.js';
import { TextSink } from '../../src/output/line-sinks.js';
import { BatchedWriter } from '../../src/output/stream.js';
import { compileRecordedFilter, bytesMatch, tupleMatches } from '../../src/filter/recorded.js';
import { packetFromTuple } from '../../src/decode/ip.js';
import { compileSelection } from '../../src/cli/show-select.js';
import { Collect, loadFixture, root } from '../helpers/fixtures.js';
import { eth4, ipv4 } from '../helpers/packets.js';

const { events } = loadFixture();

/** An event with every optional section the JSON can carry. */
function fullEvent(): TraceEvent {
  const base = events.find((e) => e.tuple !== null)!;
  return {
    ...base,
    tupleBefore: { ...base.tuple!, daddr: '203.0.113.9', dport: 8080 },
    pod: { namespace: 'default', name: 'web-0', uid: '6f1c0de0-2b8e-4d57-9a3c-0d6e5c1b2a90' },
    vlan: [200, 100],
    stack: ['ip_rcv+0x1c', 'netif_receive_skb+0x20'],
    ct: {
      source: 'nfct', found: true, state: 'ESTABLISHED', dir: 'reply', id: 0xffff888100abcd00n, status: ['SEEN_REPLY', 'CONFIRMED'],
      zone: 3, mark: 0x42, error: 0,
      orig: { l3: 4, saddr: '192.0.2.1', daddr: '203.0.113.9', sport: 40000, dport: 8080, l4proto: 6 },
      reply: { l3: 4, saddr: '198.51.100.2', daddr: '192.0.2.1', sport: 80, dport: 40000, l4proto: 6 },
    },
    verdict: {
      action: 'redirect', target: { kind: 'peer', direction: 'ingress', ifindex: 2, ifname: 'eth0', netns: 4026532000, netnsName: 'pod-b' },
      by: [{ id: 412, name: 'cni_redirect' }], reason: null, inferred: true, evidence: 'next seen at tc:ingress of eth0@pod-b',
    },
    nft: { family: 'inet', table: 'filter', chain: 'input', handle: 7, rule: 'udp dport 9999 drop', kind: 'rule', verdict: 'drop', target: null, traceId: 99 },
    packet: { data: eth4(ipv4('192.0.2.1', '192.0.2.2', { proto: 'udp', sport: 1234, dport: 53 })), origLen: 60, l2: true },
    skbMeta: [{ field: 'skb->hash', value: 0x9e3779b9n }, { field: 'skb->sk', value: null }, { field: 'skb->tstamp', value: 2n ** 60n }],
    dump: { skb: '(struct sk_buff){\n .len = (unsigned int)60,\n}', sharedInfo: null, cb: '00'.repeat(48), dev: 'eth0' },
    tunnel: { kind: 'vxlan', vni: 42, inner: { l3: 4, saddr: '10.0.0.1', daddr: '10.0.0.2', sport: 0, dport: 0, l4proto: 1, tcpFlags: 0 } },
  };
}

test('times: nanoseconds survive the text form', () => {
  assert.equal(parseJsonTime('2026-12-03T07:07:27.123456789Z'), 1796281647123456789n);
  assert.equal(parseJsonTime('2026-12-03T07:07:27Z'), 1796281647000000000n);
  assert.equal(parseJsonTime('yesterday'), null);
});

test('a JSON record read back writes the same record, every section included', () => {
  const all = [...events, fullEvent()];
  for (const opts of [{ stack: false }, { stack: true }]) {
    for (const e of all) {
      const rec = toJsonRecord(e, opts);
      const back = eventFromJson(JSON.parse(JSON.stringify(rec)) as JsonRecord, e.timeNs - e.sinceStartNs);
      assert.deepEqual(toJsonRecord(back, opts), rec);
      assert.equal(back.sinceStartNs, e.sinceStartNs);
      assert.equal(jsonLine(back, opts), JSON.stringify(rec));
    }
  }
});

test('a record without the fields that may be null reads back with them null (JSON written by other tools)', () => {
  const rec = toJsonRecord(events[0]!, { stack: false }) as unknown as Record<string, unknown>;
  delete rec['drop_reason'];
  delete rec['caller'];
  delete rec['tuple'];
  const back = eventFromJson(rec as unknown as JsonRecord, events[0]!.timeNs);
  assert.equal(back.dropReason, null);
  assert.equal(back.caller, null);
  assert.equal(back.tuple, null);
  assert.equal(jsonLine(back, { stack: false }), JSON.stringify(toJsonRecord(back, { stack: false })));
});

test('the packet section: base64 of the captured bytes, in both JSON writers', () => {
  const e = fullEvent();
  const rec = toJsonRecord(e, { stack: false });
  assert.deepEqual(Buffer.from(rec.packet!.data, 'base64'), Buffer.from(e.packet!.data));
  assert.equal(jsonLine(e, { stack: false }), JSON.stringify(rec));
});

test('replayed text equals the text of the events themselves', async () => {
  const render = async (list: TraceEvent[]) => {
    const out = new Collect();
    const sink = new TextSink(new BatchedWriter(out, { isTTY: false }), {
      header: true, tuple: true, meta: true, stack: true, caller: true, tcpFlags: true, ct: true, timestamp: 'absolute', color: false,
    });
    for (const e of list) sink.event(e);
    await sink.close();
    return out.text;
  };
  const start = events[0]!.timeNs - events[0]!.sinceStartNs;
  const replayed = events.map((e) => eventFromJson(JSON.parse(jsonLine(e, { stack: true })) as JsonRecord, start));
  assert.equal(await render(replayed), await render(events));
  // The golden text of the fixture is what a replay of its JSON prints.
  const golden = readFileSync(new URL('fixtures/golden/basic.jsonl', root), 'utf8').trim().split('\n')
    .map((l) => JSON.parse(l) as JsonRecord & { type?: string }).filter((r) => r.type === undefined);
  assert.equal(golden.length, events.length);
});

test('the tuple as headers: tcpdump expressions on a trace recorded without bytes', () => {
  const syn: Tuple = { l3: 4, saddr: '192.0.2.1', daddr: '192.0.2.2', sport: 40000, dport: 80, l4proto: 6, tcpFlags: 0x02 };
  const udp6: Tuple = { l3: 6, saddr: '2001:db8::1', daddr: '2001:db8::2', sport: 5353, dport: 53, l4proto: 17, tcpFlags: 0 };
  const icmp: Tuple = { l3: 4, saddr: '198.51.100.1', daddr: '203.0.113.1', sport: 0, dport: 0, l4proto: 1, tcpFlags: 0 };
  const cases: Array<[string, Tuple, boolean]> = [
    ['tcp dst port 80', syn, true],
    ['tcp[tcpflags] & tcp-syn != 0', syn, true],
    ['tcp[tcpflags] & tcp-ack != 0', syn, false],
    ['src host 192.0.2.1 and dst port 80', syn, true],
    ['udp', syn, false],
    ['ip6 and udp port 53', udp6, true],
    ['ip6 dst host 2001:db8::2', udp6, true],
    ['ip', udp6, false],
    ['icmp', icmp, true],
    ['net 203.0.113.0/24', icmp, true],
    ['port 80', icmp, false],
  ];
  for (const [expr, t, want] of cases) assert.equal(tupleMatches(compileRecordedFilter(expr), t), want, `${expr} on ${t.saddr}`);
  // The headers parse as the real thing would: version, protocol, ports in network order.
  const p = packetFromTuple(syn);
  assert.equal(p[0], 0x45);
  assert.equal((p[22]! << 8) | p[23]!, 80);
});

test('captured bytes: the expression runs on them, frame or packet', () => {
  const f = compileRecordedFilter('udp dst port 53');
  const frame = eth4(ipv4('192.0.2.1', '192.0.2.2', { proto: 'udp', sport: 1234, dport: 53 }));
  assert.equal(bytesMatch(f, frame, true, frame.length), true);
  assert.equal(bytesMatch(f, frame.subarray(14), false, frame.length - 14), true);
  assert.equal(bytesMatch(compileRecordedFilter('tcp'), frame, true, frame.length), false);
  // Link-layer only expressions match no packet without its Ethernet header.
  assert.equal(bytesMatch(compileRecordedFilter('ether broadcast'), frame.subarray(14), false, 20), false);
  assert.throws(() => compileRecordedFilter('udp and'), /filter 'udp and'/);
});

test('the selection: namespace by name or inode, device, mark, point, expression, all ANDed', () => {
  const e = fullEvent();
  const sel = (spec: Partial<Parameters<typeof compileSelection>[0]>) =>
    compileSelection({ expression: '', netns: [], pods: [], ifname: null, mark: null, func: null, ...spec })(e);
  assert.equal(sel({}), true);
  assert.equal(sel({ netns: [`inode:${e.netns}`] }), true);
  assert.equal(sel({ netns: [String(e.netns + 1)] }), false);
  assert.equal(sel({ netns: [String(e.netns + 1), `inode:${e.netns}`] }), true, 'several namespaces: any of them');
  if (e.netnsName !== '') assert.equal(sel({ netns: [e.netnsName] }), true);
  assert.equal(sel({ netns: ['no-such-ns'] }), false);
  const noPod = { ...e, pod: null };
  assert.equal(compileSelection({ expression: '', netns: [], pods: [{ namespace: 'default', name: 'web-0' }], ifname: null, mark: null, func: null })(noPod),
    false, 'an event of no pod');
  const selPod = sel;
  assert.equal(selPod({ pods: [{ namespace: 'default', name: 'web-0' }] }), true);
  assert.equal(selPod({ pods: [{ namespace: 'other', name: 'web-0' }] }), false);
  assert.equal(selPod({ netns: ['no-such-ns'], pods: [{ namespace: 'default', name: 'web-0' }] }), true, 'a namespace or a pod');
  assert.equal(sel({ ifname: e.ifname }), e.ifname !== '');
  assert.equal(sel({ ifname: 'nope0' }), false);
  assert.equal(sel({ mark: { value: e.mark & 0xff, mask: 0xff } }), true);
  assert.equal(sel({ mark: { value: (e.mark + 1) & 0xff, mask: 0xff } }), false);
  assert.equal(sel({ func: new RegExp(e.func.slice(0, 3)) }), true);
  assert.equal(sel({ func: /^never$/ }), false);
  // The captured bytes decide over the tuple when both are there.
  assert.equal(sel({ expression: 'udp dst port 53' }), true);
  assert.equal(sel({ expression: 'udp dst port 53', func: /^never$/ }), false);
});

test('--output-netns-names: NETNS by name where the namespace has one, by inode where not', async () => {
  const named = { ...events[0]!, netnsName: 'pod-b' };
  const unnamed = { ...events[0]!, netnsName: '' };
  const render = async (netnsNames: boolean) => {
    const out = new Collect();
    const sink = new TextSink(new BatchedWriter(out, { isTTY: false }), {
      header: false, tuple: false, meta: true, stack: false, caller: false, tcpFlags: false, timestamp: 'none', color: false, netnsNames,
    });
    sink.event(named);
    sink.event(unnamed);
    await sink.close();
    return out.text.split('\n').map((l) => l.split(/\s+/)[3]);
  };
  assert.deepEqual((await render(true)).slice(0, 2), ['pod-b', String(events[0]!.netns)]);
  assert.deepEqual((await render(false)).slice(0, 2), [String(events[0]!.netns), String(events[0]!.netns)]);
});
