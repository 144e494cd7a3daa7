import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionSink, flowKey } from '../../src/output/connections.js';
import { BatchedWriter } from '../../src/output/stream.js';
import type { TraceEvent } from '../../src/output/event.js';
import type { CtInfo } from '../../src/decode/ct.js';
import { Collect } from '../helpers/fixtures.js';

const tuple = (saddr: string, sport: number, daddr: string, dport: number, flags: number) =>
  ({ l3: 4 as const, saddr, sport, daddr, dport, l4proto: 6, tcpFlags: flags });

function ev(skb: bigint, t: number, func: string, tp: ReturnType<typeof tuple>, ct: CtInfo | null = null): TraceEvent {
  return {
    timeNs: BigInt(t), sinceStartNs: BigInt(t), skb, cpu: 0, pid: 1, comm: 'x', netns: 1, netnsName: 'b', mark: 0,
    ifindex: 2, ifname: 'veth-b', protocol: 0x0800, mtu: 1500, len: 60, tuple: tp, func,
    probe: { type: 'tracepoint', name: func }, dropReason: null, caller: null, stack: null, ct,
  };
}

const ct = (dir: 'orig' | 'reply', status: string[]): CtInfo => ({
  source: 'nfct', found: true, state: 'ESTABLISHED', dir, id: 0xffff888104a0b200n, status, zone: 0, mark: 0, error: 0,
  orig: { l3: 4, saddr: '192.0.2.1', sport: 43210, daddr: '192.0.2.2', dport: 8080, l4proto: 6 },
  reply: { l3: 4, saddr: '192.0.2.2', sport: 8080, daddr: '192.0.2.1', dport: 43210, l4proto: 6 },
} as CtInfo);

test('flow keys are the same in both directions', () => {
  assert.equal(flowKey(tuple('192.0.2.1', 1, '192.0.2.2', 2, 0)), flowKey(tuple('192.0.2.2', 2, '192.0.2.1', 1, 0)));
  assert.notEqual(flowKey(tuple('192.0.2.1', 1, '192.0.2.2', 2, 0)), flowKey(tuple('192.0.2.1', 1, '192.0.2.2', 3, 0)));
});

test('packets of one connection are printed together, both directions, in time order', async () => {
  const out = new Collect();
  const sink = new ConnectionSink(new BatchedWriter(out), { color: false, every: () => () => {} });
  const syn = tuple('192.0.2.1', 43210, '192.0.2.2', 8080, 0x02);
  const synack = tuple('192.0.2.2', 8080, '192.0.2.1', 43210, 0x12);
  const other = tuple('192.0.2.1', 5555, '192.0.2.2', 53, 0);
  sink.event(ev(1n, 1000, 'nf:ipv4:local_in', syn, ct('orig', ['CONFIRMED'])));
  sink.event(ev(9n, 1500, 'tc:ingress', other));
  sink.event(ev(1n, 2000, 'consume_skb', syn));
  sink.event(ev(2n, 5000, 'nf:ipv4:local_out', synack, ct('reply', ['SEEN_REPLY', 'CONFIRMED'])));
  sink.event(ev(2n, 7000, 'consume_skb', synack));
  sink.event(ev(9n, 8000, 'consume_skb', other));
  await sink.close();
  const blocks = out.text.trim().split('\n').reduce<string[][]>((acc, l) => {
    if (l.startsWith('connection ')) acc.push([l]);
    else acc[acc.length - 1]!.push(l);
    return acc;
  }, []);
  assert.equal(blocks.length, 2, out.text);
  const [conn, flow] = blocks as [string[], string[]];
  assert.match(conn[0]!, /^connection 0xffff888104a0b200 tcp 192\.0\.2\.1:43210 ⇄ 192\.0\.2\.2:8080  2 packets in 6\.000µs  status=SEEN_REPLY\|CONFIRMED$/);
  assert.match(conn[1]!, /→  SYN .* nf:ipv4:local_in → consume_skb  consumed$/);
  assert.match(conn[2]!, /←  SYN\|ACK .* nf:ipv4:local_out → consume_skb  consumed$/);
  assert.match(flow[0]!, /^connection \(no conntrack\) tcp 192\.0\.2\.1:5555 ⇄ 192\.0\.2\.2:53  1 packet/);
});
