import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { formatDuration } from '../../src/output/format.js';
import { JourneySink, type JourneyOptions } from '../../src/output/journey.js';
import { BatchedWriter } from '../../src/output/stream.js';
import type { TraceEvent, Tuple } from '../../src/output/event.js';

const root = new URL('../../../', import.meta.url);

class Collect extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.text += chunk.toString('utf8');
    cb();
  }
}

const T0 = 1795757400123456789n;
const NS = { cli: 4026532001, srv: 4026532449, router: 4026532777 };

function tuple(saddr: string, sport: number, daddr: string, dport: number, l4proto: number, tcpFlags = 0): Tuple {
  return { l3: 4, saddr, daddr, sport, dport, l4proto, tcpFlags };
}

const PING = tuple('192.0.2.1', 0, '192.0.2.2', 0, 1);
const SYN = tuple('192.0.2.1', 43210, '192.0.2.2', 80, 6, 2);
const TO_VIP = tuple('192.0.2.1', 40000, '198.51.100.10', 80, 6, 2);
const TO_BACKEND = tuple('192.0.2.1', 40000, '10.0.0.2', 8080, 6, 2);
const UDP = tuple('192.0.2.1', 5000, '192.0.2.2', 9999, 17);

/** An event `us` microseconds after T0. */
function ev(us: number, skb: bigint, func: string, over: Partial<TraceEvent> = {}): TraceEvent {
  const ns = BigInt(Math.round(us * 1000));
  return {
    timeNs: T0 + ns,
    sinceStartNs: 1_000_000n + ns,
    skb,
    cpu: 1,
    pid: 4242,
    comm: 'ping',
    netns: NS.cli,
    netnsName: 'cli',
    mark: 0,
    ifindex: 7,
    ifname: 'veth-cli',
    protocol: 0x0800,
    mtu: 1500,
    len: 84,
    tuple: null,
    func,
    probe: { type: func.startsWith('nf:') ? 'netfilter' : func.startsWith('tc:') ? 'tc' : 'tracepoint', name: func },
    dropReason: null,
    caller: null,
    stack: null,
    ...over,
  };
}

const A = 0xffff888001000100n; // ping, consumed
const B = 0xffff888001000200n; // SYN, dropped by netfilter
const C = 0xffff888001000300n; // DNAT on a router, consumed by the backend
const D = 0xffff888001000400n; // UDP, never seen again: idle
const E = 0xffff888001000500n; // still on its way when the trace stops

const srv = { netns: NS.srv, netnsName: 'srv', ifindex: 3, ifname: 'veth-srv' };
const routerIn = { netns: NS.router, netnsName: 'router', ifindex: 2, ifname: 'eth0' };
const routerOut = { netns: NS.router, netnsName: 'router', ifindex: 4, ifname: 'eth1' };
const curl = { comm: 'curl', pid: 5151 };

/** In time order, packets interleaved as a tracer sees them. */
const EVENTS: TraceEvent[] = [
  ev(0, A, 'net_dev_queue', { tuple: PING }),
  ev(1.5, D, 'net_dev_queue', { tuple: UDP, comm: 'nc', pid: 777, netns: 0, netnsName: '' }),
  ev(2.25, B, 'net_dev_queue', { ...curl, tuple: SYN, len: 74 }),
  ev(3.2, A, 'net_dev_xmit', { tuple: PING }),
  ev(4, D, 'net_dev_xmit', { tuple: UDP, comm: 'nc', pid: 777, netns: 0, netnsName: '' }),
  ev(8.3, A, 'netif_receive_skb', { ...srv, tuple: PING }),
  ev(9.1, B, 'tc:ingress', { ...curl, ...srv, tuple: SYN, len: 60 }),
  ev(10, C, 'tc:ingress', { ...curl, ...routerIn, tuple: TO_VIP, len: 60 }),
  ev(10.4, A, 'tc:ingress', { ...srv, tuple: PING }),
  ev(12.5, B, 'nf:ipv4:pre_routing', { ...curl, ...srv, tuple: SYN, len: 60, mark: 0x1f }),
  ev(14.75, C, 'nf:ipv4:pre_routing', { ...curl, ...routerIn, tuple: TO_BACKEND, len: 60 }),
  ev(15, A, 'nf:ipv4:pre_routing', { ...srv, tuple: PING }),
  ev(16.001, B, 'kfree_skb', {
    ...curl, ...srv, tuple: SYN, len: 60, mark: 0x1f, dropReason: 'NETFILTER_DROP', caller: 'nf_hook_slow+0x91',
  }),
  ev(17, C, 'nf:ipv4:forward', { ...curl, ...routerIn, tuple: TO_BACKEND, len: 60 }),
  ev(18.2, A, 'nf:ipv4:local_in', { ...srv, tuple: PING }),
  ev(19, C, 'nf:ipv4:post_routing', { ...curl, ...routerOut, tuple: TO_BACKEND, len: 60 }),
  ev(21, A, 'consume_skb', { ...srv, tuple: null }),
  ev(22.5, C, 'net_dev_queue', { ...curl, ...routerOut, tuple: TO_BACKEND, len: 60 }),
  ev(1250.75, C, 'consume_skb', { ...curl, netns: NS.srv, netnsName: '', ifindex: 9, ifname: '', tuple: TO_BACKEND, len: 60 }),
];

const LATE = ev(2_000_000, E, 'net_dev_queue', { tuple: UDP, comm: 'nc', pid: 777 });

const OFF: JourneyOptions = { color: false, tcpFlags: false, stack: false, timestamp: 'none' };

interface Harness {
  sink: JourneySink;
  out: Collect;
  clock: { now: number };
  tick: () => void;
  cancelled: () => boolean;
  everyMs: number;
}

function harness(opts: Partial<JourneyOptions> = {}): Harness {
  const out = new Collect();
  const clock = { now: 1000 };
  let tick: () => void = () => {};
  let everyMs = 0;
  let cancelled = false;
  const sink = new JourneySink(new BatchedWriter(out, { isTTY: false, maxDelayMs: 0 }), {
    ...OFF,
    clock: () => clock.now,
    every: (fn, ms) => {
      tick = fn;
      everyMs = ms;
      return () => (cancelled = true);
    },
    ...opts,
  });
  return { sink, out, clock, tick: () => tick(), cancelled: () => cancelled, everyMs };
}

/** Feeds the scenario: events 1 ms apart on the clock, D goes idle, E is left open. */
async function scenario(opts: Partial<JourneyOptions> = {}): Promise<string> {
  const h = harness(opts);
  for (const e of EVENTS.slice(0, -1)) {
    h.sink.event(e);
    h.clock.now += 1;
  }
  // A second later only D, last seen before the others ended, has been idle long enough.
  h.clock.now += 990;
  h.tick();
  h.sink.event(EVENTS[EVENTS.length - 1]!);
  h.sink.lost({ timeNs: T0 + 3_000_000_000n, count: 3, total: 3 });
  h.sink.event(LATE);
  await h.sink.close();
  assert.ok(h.cancelled());
  return h.out.text;
}

test('golden: consumed, dropped, NAT, idle and unfinished packets', async () => {
  const text = await scenario();
  const golden = new URL('fixtures/golden/journey.txt', root);
  if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(golden, text);
  assert.equal(text, readFileSync(golden, 'utf8'));
});

test('blocks come out when packets end, in that order', async () => {
  const text = await scenario();
  const heads = text.split('\n').filter((l) => l !== '' && !l.startsWith(' '));
  assert.deepEqual(heads.map((l) => l.split(' ')[0]), [
    formatSkbOf(B), formatSkbOf(A), formatSkbOf(D), formatSkbOf(C), '!!', formatSkbOf(E),
  ]);
  assert.match(heads[0]!, /4 hops in 13\.751µs, dropped: NETFILTER_DROP$/);
  assert.match(heads[1]!, /ping:4242 {2}7 hops in 21\.000µs, consumed$/);
  assert.match(heads[2]!, / nc:777 {2}2 hops in 2\.500µs, unfinished \(idle\)$/);
  assert.match(heads[3]!, /6 hops in 1\.241ms, consumed$/);
  assert.match(heads[5]!, /1 hop in 0\.000µs, unfinished \(trace stopped\)$/);
  assert.match(text, /\n {4}tuple: 192\.0\.2\.1:40000->198\.51\.100\.10:80\(tcp\) ⇒ 192\.0\.2\.1:40000->10\.0\.0\.2:8080\(tcp\)\n {2}\+4\.750µs {5}nf:ipv4:pre_routing/);
  assert.match(text, /\n {4}mark: 0x0 ⇒ 0x1f\n/);
  assert.match(text, /kfree_skb {16}veth-srv:3 {7}srv {2}reason=NETFILTER_DROP {2}caller=nf_hook_slow\+0x91\n/);
});

function formatSkbOf(skb: bigint): string {
  return '0x' + skb.toString(16).padStart(16, '0');
}

test('colour: the same text with escapes around it', async () => {
  const text = await scenario({ color: true });
  assert.match(text, /\u001b\[31mreason=NETFILTER_DROP\u001b\[39m/);
  assert.match(text, /\u001b\[1m0xffff888001000200 /);
  assert.equal(text.replace(/\u001b\[[0-9;]*m/g, ''), await scenario());
});

test('timestamps and TCP flags in the header, stacks under hops', async () => {
  const h = harness({ timestamp: 'absolute', tcpFlags: true, stack: true });
  h.sink.event(ev(0, B, 'net_dev_queue', { tuple: SYN }));
  h.sink.event(ev(5, B, 'kfree_skb', { tuple: SYN, dropReason: 'NO_SOCKET', stack: ['kfree_skb_reason+0x9e', 'tcp_v4_rcv+0x1c0'] }));
  await h.sink.close();
  assert.equal(h.out.text, [
    '2026-11-27T05:30:00.123456789Z 0xffff888001000200 192.0.2.1:43210->192.0.2.2:80(tcp:SYN) ping:4242  2 hops in 5.000µs, dropped: NO_SOCKET',
    '  +0.000µs     net_dev_queue            veth-cli:7       cli',
    '  +5.000µs     kfree_skb                veth-cli:7       cli  reason=NO_SOCKET',
    '      kfree_skb_reason+0x9e',
    '      tcp_v4_rcv+0x1c0',
    '',
  ].join('\n'));
});

test('idle is measured from the last event of each packet', async () => {
  const h = harness({ idleMs: 100 });
  assert.equal(h.everyMs, 25);
  h.sink.event(ev(0, A, 'net_dev_queue'));
  h.clock.now += 60;
  h.sink.event(ev(1, B, 'net_dev_queue'));
  h.clock.now += 60;
  h.sink.event(ev(2, A, 'net_dev_xmit'));
  h.clock.now += 60;
  h.tick();
  assert.equal(h.sink.openCount, 1, 'B idle for 120 ms is printed, A seen 60 ms ago is not');
  h.clock.now += 40;
  h.tick();
  assert.equal(h.sink.openCount, 0);
  await h.sink.close();
  const heads = h.out.text.split('\n').filter((l) => l.startsWith('0x'));
  assert.deepEqual(heads.map((l) => l.split(' ')[0]), [formatSkbOf(B), formatSkbOf(A)]);
});

test('an address freed and reused is a new packet', async () => {
  const h = harness();
  h.sink.event(ev(0, A, 'net_dev_queue'));
  h.sink.event(ev(1, A, 'consume_skb'));
  h.sink.event(ev(2, A, 'netif_receive_skb'));
  h.sink.event(ev(3, A, 'kfree_skb'));
  await h.sink.close();
  assert.match(h.out.text, /2 hops in 1\.000µs, consumed\n.*\n.*\n0xffff888001000100 - ping:4242 {2}2 hops in 1\.000µs, dropped\n/);
});

test('past the open limit the oldest packet is printed', async () => {
  const h = harness({ maxOpen: 2 });
  h.sink.event(ev(0, A, 'net_dev_queue'));
  h.sink.event(ev(1, B, 'net_dev_queue'));
  h.sink.event(ev(2, C, 'net_dev_queue'));
  assert.equal(h.sink.openCount, 2);
  await h.sink.close();
  const heads = h.out.text.split('\n').filter((l) => l.startsWith('0x'));
  assert.match(heads[0]!, /^0xffff888001000100 .*unfinished \(idle\)$/);
  assert.equal(heads.length, 3);
});

test('durations', () => {
  assert.equal(formatDuration(0n), '0.000µs');
  assert.equal(formatDuration(12_345n), '12.345µs');
  assert.equal(formatDuration(1_234_567n), '1.235ms');
  assert.equal(formatDuration(2_500_000_000n), '2.500s');
});

test('--explain: each dropped journey\'s explanation follows its block; grouped or in JSON lines after the journey', async () => {
  const { LiveExplainer } = await import('../../src/regress/explain/live.js');
  const h = harness({ explainer: new LiveExplainer() });
  for (const e of EVENTS) h.sink.event(e);
  await h.sink.close();
  const lines = h.out.text.split('\n');
  const drop = lines.findIndex((l) => l.includes('kfree_skb'));
  assert.equal(lines[drop + 1], 'nft-drop: dropped by a netfilter rule in srv at pre_routing (--output-nft names the rule)');
  assert.equal(lines.filter((l) => /^[a-z-]+: /.test(l)).length, 1, h.out.text);

  const { ExplainSink } = await import('../../src/output/explained.js');
  const { JsonSink } = await import('../../src/output/line-sinks.js');
  const out = new Collect();
  const writer = new BatchedWriter(out, { isTTY: false, maxDelayMs: 0 });
  const sink = new ExplainSink(new JsonSink(writer, { stack: false }), writer, new LiveExplainer(), true, { every: () => () => {} });
  for (const e of EVENTS) sink.event(e);
  await sink.close();
  const records = out.text.trim().split('\n').map((l) => JSON.parse(l) as { type?: string; func?: string; skb: string; cause?: string });
  const at = records.findIndex((r) => r.type === 'explanation');
  assert.equal(records[at]!.cause, 'nft-drop');
  assert.equal(records[at - 1]!.func, 'kfree_skb');
  assert.equal(records.filter((r) => r.type === 'explanation').length, 1);
});
