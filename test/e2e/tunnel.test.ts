/**
 * Tunnels on real traffic: VXLAN between two namespaces of the test's own.
 * --output-tunnel names the outer and inner tuples and the VNI on the
 * underlay; --filter-tunnel-pcap-l3/-l2 select by what the tunnel carries.
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Lab, twoHosts } from '../../src/lab/lab.js';
import { type JsonEvent, runPktpath, startTracer, waitNoPrograms } from '../helpers/tracer.js';

const lab = new Lab();
let A = '';
let B = '';

before(() => {
  ({ a: A, b: B } = twoHosts(lab));
  for (const [ns, local, remote, addr] of [[A, '192.0.2.1', '192.0.2.2', '203.0.113.1/24'], [B, '192.0.2.2', '192.0.2.1', '203.0.113.2/24']] as const) {
    lab.execSync(ns, ['ip', 'link', 'add', 'vx0', 'type', 'vxlan', 'id', '42', 'local', local, 'remote', remote, 'dstport', '4789']);
    lab.execSync(ns, ['ip', 'addr', 'add', addr, 'dev', 'vx0']);
    lab.execSync(ns, ['ip', 'link', 'set', 'vx0', 'up']);
  }
});
after(() => lab.cleanup());
afterEach(async () => {
  assert.deepEqual(await waitNoPrograms(), [], 'programs of pktpath left loaded');
});

/** Pings inside the tunnel and UDP beside it (to the underlay address: not encapsulated). */
async function traffic(): Promise<void> {
  const inner = await lab.exec(A, ['ping', '-c', '2', '-i', '0.2', '-W', '2', '203.0.113.2']);
  assert.equal(inner.code, 0, inner.stderr);
  const outer = await lab.exec(A, ['ping', '-c', '2', '-i', '0.2', '-W', '2', '192.0.2.2']);
  assert.equal(outer.code, 0, outer.stderr);
}

async function trace(args: string[]): Promise<JsonEvent[]> {
  const t = await startTracer(['--filter-netns', B, ...args]);
  const sent = await traffic().then(() => null, (e: unknown) => e);
  const r = await t.stop();
  if (sent) throw sent;
  assert.equal(r.code, 0, r.stderr);
  return r.events;
}

const isVxlan = (e: JsonEvent) => e.tuple?.proto === 'udp' && e.tuple.dport === 4789;

test('--output-tunnel: the underlay\'s VXLAN packets carry the VNI and the inner tuple; others carry none', async () => {
  const events = await trace(['--output-tunnel', 'udp port 4789 or icmp']);
  const encapsulated = events.filter(isVxlan);
  assert.ok(encapsulated.length >= 4, `${encapsulated.length} VXLAN events`);
  for (const e of encapsulated) {
    assert.deepEqual([e.tuple!.saddr, e.tuple!.daddr].sort(), ['192.0.2.1', '192.0.2.2']);
    assert.equal(e.tunnel?.kind, 'vxlan', JSON.stringify(e));
    assert.equal(e.tunnel?.vni, 42);
  }
  // The pings inside (ARP and the tunnel device's own IPv6 multicast reports travel it too; ARP has no inner tuple).
  const pings = encapsulated.filter((e) => e.tunnel?.inner?.proto === 'icmp');
  assert.ok(pings.length >= 4, `${pings.length} encapsulated pings`);
  for (const e of pings) assert.deepEqual([e.tunnel!.inner!.saddr, e.tunnel!.inner!.daddr].sort(), ['203.0.113.1', '203.0.113.2']);
  // The plain ping on the underlay and the decapsulated packets are not tunnels.
  const plain = events.filter((e) => e.tuple?.proto === 'icmp');
  assert.ok(plain.length > 0 && plain.every((e) => e.tunnel === undefined));
  // Captured for the section only: no packet bytes in the records.
  assert.ok(events.every((e) => e.packet === undefined));
});

test('--filter-tunnel-pcap-l3 icmp: only the encapsulated ICMP on the underlay; -l2 on the inner frame', async () => {
  const l3 = await trace(['--filter-tunnel-pcap-l3', 'icmp and dst host 203.0.113.2', '--output-tunnel']);
  assert.ok(l3.length >= 2, `${l3.length} events`);
  assert.ok(l3.every(isVxlan), [...new Set(l3.map((e) => `${e.func}:${e.tuple?.proto}:${e.tuple?.dport}`))].join(' '));
  assert.ok(l3.every((e) => e.tunnel?.inner?.daddr === '203.0.113.2'), 'requests only, not the replies');
  const none = await trace(['--filter-tunnel-pcap-l3', 'tcp']);
  assert.deepEqual(none, []);
  const l2 = await trace(['--filter-tunnel-pcap-l2', 'ip and icmp']);
  assert.ok(l2.length >= 4 && l2.every(isVxlan));
});

test('bad tunnel expressions: one line, exit 2, nothing attached', async () => {
  for (const [flag, expr] of [['--filter-tunnel-pcap-l3', 'icmp and'], ['--filter-tunnel-pcap-l2', 'nonsense here']] as const) {
    const r = runPktpath(['--filter-netns', B, flag, expr]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`^pktpath: ${flag} '${expr}': `));
    assert.equal(r.stderr.trim().split('\n').length, 1);
  }
  assert.deepEqual(await waitNoPrograms(), []);
});
