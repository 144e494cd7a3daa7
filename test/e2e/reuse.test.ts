/**
 * skb addresses the kernel hands to the next skb. A followed skb freed where
 * the trace does not look, or where no tracepoint sees it (TCP), leaves its
 * address to the next packet sent from that CPU: --filter-track-skb must not
 * follow the newcomer, and `pktpath normalize` must not join the two into one
 * packet rewritten. Floods pinned to the ping's CPU make that reuse happen.
 * And the other way: an skb whose data moves to another buffer (forwarded
 * into a tunnel) is still the one followed.
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, run, twoHosts } from '../../src/lab/lab.js';
import { type JsonEvent, pktpathPrivately, startTracer, waitNoPrograms } from '../helpers/tracer.js';

const lab = new Lab();
let A = '';
const dir = mkdtempSync(join(tmpdir(), 'pktpath-reuse-e2e-'));
const PORTS = { tcp: 5211, udp: 5212 };
const FLOOD_SECONDS = 3;

before(async () => {
  const { a, b } = twoHosts(lab);
  A = a;
  const servers = Object.values(PORTS).map((port) => lab.spawn(b, ['iperf3', '-s', '-B', '192.0.2.2', '-p', String(port), '--forceflush']));
  await Promise.all(servers.map((s) => new Promise((r) => s.stdout!.once('data', r))));
});
after(() => {
  lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  assert.deepEqual(await waitNoPrograms(), [], 'programs of pktpath left loaded');
});

/** In A, all on CPU 0: a TCP and a UDP flood to B, and a ping beside them. */
async function floodsAndPing(): Promise<void> {
  const pinned = (cmd: string[]) => lab.exec(A, ['taskset', '-c', '0', ...cmd], 30_000);
  const results = await Promise.all([
    pinned(['iperf3', '-c', '192.0.2.2', '-p', String(PORTS.tcp), '-t', String(FLOOD_SECONDS)]),
    pinned(['iperf3', '-c', '192.0.2.2', '-p', String(PORTS.udp), '-u', '-b', '400M', '-l', '256', '-t', String(FLOOD_SECONDS)]),
    pinned(['ping', '-c', '10', '-i', '0.25', '-W', '1', '192.0.2.2']),
  ]);
  for (const r of results) assert.equal(r.code, 0, r.stdout + r.stderr);
}

const PING_ENDS = new Set(['192.0.2.1', '192.0.2.2']);
const ofThePing = (e: JsonEvent) => e.tuple?.proto === 'icmp' && PING_ENDS.has(e.tuple.saddr) && PING_ENDS.has(e.tuple.daddr);

for (const filterFunc of [null, '^netif_rx$', '^(net_dev_queue|netif_receive_skb)$', 'tc:|nf:']) {
  test(`--filter-track-skb${filterFunc ? ` --filter-func '${filterFunc}'` : ''}: every event is the ping's, whatever floods share its CPU`, async () => {
    const tracer = await startTracer(['--filter-track-skb', '--filter-netns', A, ...(filterFunc ? ['--filter-func', filterFunc] : []), 'icmp']);
    const sent = await floodsAndPing().then(() => null, (e: unknown) => e);
    const { code, events, stderr } = await tracer.stop();
    if (sent) throw sent;
    assert.equal(code, 0, stderr);
    assert.ok(events.some(ofThePing), `the ping was not seen:\n${stderr}`);
    const others = events.filter((e) => !ofThePing(e));
    const kinds = [...new Set(others.map((e) => `${e.tuple?.proto ?? 'no tuple'} at ${e.func}`))];
    assert.equal(others.length, 0, `${others.length} of ${events.length} events are not the ping's: ${kinds.join(', ')}`);
    // The ping's skbs are all freed where a tracepoint sees it, the frees --filter-func leaves out included: each was forgotten there.
    const m = /followed (\d+) skbs[^:]*: (\d+) forgotten when freed, (\d+) dropped .*, (\d+) still followed, (\d+) evicted/.exec(stderr);
    assert.ok(m, stderr);
    const [added, freed] = m.slice(1).map(Number) as [number, number];
    assert.ok(added > 0 && freed === added, m[0]);
  });
}

test('a followed TCP download: the server\'s segments are not taken for the client\'s at the addresses TCP frees out of sight', async () => {
  const tracer = await startTracer(['--filter-track-skb', '--filter-netns', A, 'tcp and dst port', String(PORTS.tcp)]);
  const sent = await lab.exec(A, ['taskset', '-c', '0', 'iperf3', '-c', '192.0.2.2', '-p', String(PORTS.tcp), '-R', '-t', String(FLOOD_SECONDS)], 30_000);
  const { code, events, stderr } = await tracer.stop();
  assert.equal(sent.code, 0, sent.stdout + sent.stderr);
  assert.equal(code, 0, stderr);
  const toServer = events.filter((e) => e.tuple?.dport === PORTS.tcp).length;
  const fromServer = events.filter((e) => e.tuple?.sport === PORTS.tcp).length;
  assert.ok(toServer > 1000, `${toServer} events of the client's segments`);
  // Where the allocators give a newcomer both the address and the data buffer of a segment freed out of sight,
  // nothing tells them apart: a few, never the half of all events it was.
  assert.ok(fromServer < toServer / 100, `${fromServer} events of the server's segments beside ${toServer} of the client's\n${stderr}`);
});

test('a followed skb forwarded into a VXLAN (its data moved for the outer headers\' room) is followed through the tunnel', async () => {
  const router = lab.netns('r');
  const far = lab.netns('c');
  lab.veth({ ns: A, ifname: 'veth-ar', addrs: ['198.51.100.1/24'] }, { ns: router, ifname: 'veth-ra', addrs: ['198.51.100.254/24'] });
  lab.veth({ ns: router, ifname: 'veth-rc', addrs: ['192.0.2.101/31'] }, { ns: far, ifname: 'veth-cr', addrs: ['192.0.2.100/31'] });
  lab.execSync(A, ['ip', 'route', 'add', '203.0.113.0/24', 'via', '198.51.100.254']);
  lab.execSync(router, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  const ends = [[router, '192.0.2.101', '192.0.2.100', '203.0.113.1/24'], [far, '192.0.2.100', '192.0.2.101', '203.0.113.2/24']] as const;
  for (const [ns, local, remote, addr] of ends) {
    lab.execSync(ns, ['ip', 'link', 'add', 'vx0', 'type', 'vxlan', 'id', '42', 'local', local, 'remote', remote, 'dstport', '4789']);
    lab.execSync(ns, ['ip', 'addr', 'add', addr, 'dev', 'vx0']);
    lab.execSync(ns, ['ip', 'link', 'set', 'vx0', 'up']);
  }
  lab.execSync(far, ['ip', 'route', 'add', '198.51.100.0/24', 'via', '203.0.113.1']);
  try {
    const tracer = await startTracer(['--filter-track-skb', '--filter-netns', A, 'icmp and dst host 203.0.113.2']);
    const ping = await lab.exec(A, ['ping', '-c', '3', '-i', '0.2', '-W', '1', '203.0.113.2']);
    const { code, events, stderr } = await tracer.stop();
    assert.equal(ping.code, 0, ping.stdout + ping.stderr);
    assert.equal(code, 0, stderr);
    // Each request, from A to where C consumes it: through R, out of the tunnel (outer UDP to 4789), and in C again.
    // One path per request: an skb's address is often the next request's too, so a path ends where its skb is freed.
    const open = new Map<string, JsonEvent[]>();
    const paths: JsonEvent[][] = [];
    for (const e of events) {
      let path = open.get(e.skb);
      if (path === undefined) {
        open.set(e.skb, (path = []));
        paths.push(path);
      }
      path.push(e);
      if (e.func === 'consume_skb' || e.func === 'kfree_skb') open.delete(e.skb);
    }
    const through = paths.filter((path) => path.some((e) => e.tuple?.proto === 'udp' && e.tuple.dport === 4789) &&
      path.some((e) => e.func === 'consume_skb' && e.tuple?.proto === 'icmp'));
    assert.ok(through.length >= 2, `${through.length} requests followed through the tunnel:\n${paths.map((p) =>
      p.map((e) => `${e.func}:${e.tuple?.proto ?? '-'}`).join(' ')).join('\n')}\n${stderr}`);
    assert.match(stderr, /followed \d+ skbs \(\d+ on past a move of their data\)/);
  } finally {
    lab.removeNetns(router);
    lab.removeNetns(far);
  }
});

test('a plain ping trace normalises with no DNAT or SNAT: a reply at the address of a request freed out of sight is another packet', async () => {
  for (const [name, scope] of [['all', []], ['only-a', ['--filter-netns', A]]] as const) {
    const out = join(dir, `ping-${name}.jsonl`);
    const rec = await run(...pktpathPrivately(['record', '--out', out, ...scope, 'icmp', '--',
      'ip', 'netns', 'exec', A, 'taskset', '-c', '0', 'ping', '-c', '50', '-i', '0.01', '-W', '1', '192.0.2.2']), 60_000);
    assert.equal(rec.code, 0, rec.stderr);
    const norm = await run(...pktpathPrivately(['normalize', out]));
    assert.equal(norm.code, 0, norm.stderr);
    const packets = norm.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; hops?: Array<{ at: string; nat?: string }> });
    const rewrites = packets.flatMap((p) => (p.hops ?? []).filter((h) => h.nat !== undefined).map((h) => `${h.at}: ${h.nat}`));
    assert.deepEqual(rewrites, [], `${name}: rewrites in a ping trace`);
    assert.ok(packets.some((p) => p.type === 'packet'), norm.stdout);
  }
});
