/**
 * Filters on real traffic: tcpdump expressions, namespace, device and mark
 * filters, and skb tracking through DNAT and a VXLAN tunnel. Each test asserts
 * both what appears and what does not.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Lab, twoHosts } from '../../src/lab/lab.js';
import { inodeOf } from '../../src/kernel/netns.js';
import { root } from '../helpers/probe-btf.js';
import { type JsonEvent, runPktpath, startTracer, waitNoPrograms } from '../helpers/tracer.js';

const PEER = join(root, 'dist/src/lab/peer.js');
const lab = new Lab();
let A = '';
let B = '';

before(async () => {
  ({ a: A, b: B } = twoHosts(lab));
  lab.execSync(A, ['ip', 'addr', 'add', '198.51.100.1/24', 'dev', 'veth-a']);
  lab.execSync(B, ['ip', 'addr', 'add', '198.51.100.2/24', 'dev', 'veth-b']);
});
after(() => lab.cleanup());
afterEach(async () => {
  assert.deepEqual(await waitNoPrograms(), [], 'programs of pktpath left loaded');
});

/** Ping, UDP, TCP, ping6 and a ping on the second subnet, from A to B. */
async function mixedTraffic(): Promise<void> {
  const udp = lab.spawn(B, [process.execPath, PEER, 'udp-serve', '7777']);
  const tcp = lab.spawn(B, [process.execPath, PEER, 'tcp-serve', '8080']);
  await Promise.all([udp, tcp].map((c) => new Promise((r) => c.stdout!.once('data', r))));
  const results = await Promise.all([
    lab.exec(A, ['ping', '-c', '1', '-W', '2', '192.0.2.2']),
    lab.exec(A, [process.execPath, PEER, 'udp-send', '192.0.2.2', '7777', 'hello']),
    lab.exec(A, [process.execPath, PEER, 'tcp-connect', '192.0.2.2', '8080', 'hello']),
    lab.exec(A, ['ping', '-6', '-c', '1', '-W', '2', '2001:db8::2']),
    lab.exec(A, ['ping', '-c', '1', '-W', '2', '198.51.100.2']),
  ]);
  for (const r of results) assert.equal(r.code, 0, r.stderr);
}

/** stderr of the last traceWith run (status lines). */
let lastStderr = '';

async function traceWith(args: string[], traffic: () => Promise<void> = mixedTraffic): Promise<JsonEvent[]> {
  const tracer = await startTracer(args);
  // The tracer is stopped whatever the traffic did, so no test leaves it running.
  const sent = await traffic().then(() => null, (e: unknown) => e);
  const result = await tracer.stop();
  lastStderr = result.stderr;
  if (sent) throw sent;
  assert.equal(result.code, 0, result.stderr);
  return result.events;
}

const protos = (events: JsonEvent[]) => new Set(events.map((e) => e.tuple?.proto ?? 'none'));

describe('tcpdump expressions', () => {
  test('icmp: echo requests and replies, nothing else', async () => {
    const ev = await traceWith(['icmp']);
    assert.deepEqual([...protos(ev)], ['icmp']);
    assert.ok(ev.some((e) => e.tuple!.daddr === '192.0.2.2') && ev.some((e) => e.tuple!.saddr === '192.0.2.2'));
    assert.ok(ev.some((e) => e.tuple!.daddr === '198.51.100.2'));
  });

  test('tcp port 8080: both directions of the connection only', async () => {
    const ev = await traceWith(['tcp', 'port', '8080']);
    assert.deepEqual([...protos(ev)], ['tcp']);
    for (const e of ev) assert.ok(e.tuple!.sport === 8080 || e.tuple!.dport === 8080);
    assert.ok(ev.some((e) => e.tuple!.sport === 8080) && ev.some((e) => e.tuple!.dport === 8080));
  });

  test('udp and dst host 192.0.2.2', async () => {
    const ev = await traceWith(['udp and dst host 192.0.2.2']);
    assert.ok(ev.length > 0);
    for (const e of ev) assert.deepEqual([e.tuple!.proto, e.tuple!.daddr, e.tuple!.dport], ['udp', '192.0.2.2', 7777]);
  });

  test("tcp[tcpflags] & tcp-syn != 0: only the connection's SYN and SYN-ACK", async () => {
    const ev = await traceWith(['tcp[tcpflags] & tcp-syn != 0', '--output-tcp-flags']);
    assert.deepEqual(new Set(ev.map((e) => e.tuple!.flags)), new Set(['SYN', 'SYN|ACK']));
  });

  test('ip6 and icmp6', async () => {
    const ev = await traceWith(['ip6 and icmp6']);
    assert.deepEqual([...protos(ev)], ['icmp6']);
    assert.ok(ev.some((e) => e.tuple!.daddr === '2001:db8::2'));
  });

  test('net 198.51.100.0/24', async () => {
    const ev = await traceWith(['net 198.51.100.0/24']);
    assert.ok(ev.length > 0);
    for (const e of ev) assert.ok(e.tuple!.saddr.startsWith('198.51.100.') || e.tuple!.daddr.startsWith('198.51.100.'));
  });

  test('a negation: ip and not icmp', async () => {
    const ev = await traceWith(['ip and not icmp']);
    assert.deepEqual(protos(ev), new Set(['udp', 'tcp']));
  });

  test('flags and an expression are ANDed', async () => {
    const ev = await traceWith(['tcp or udp', '--filter-dst-port', '7777']);
    assert.ok(ev.length > 0);
    for (const e of ev) assert.deepEqual([e.tuple!.proto, e.tuple!.dport], ['udp', 7777]);
  });

  test('an expression only meaningful at L2 (arp) matches at points with an Ethernet header, and says so', async () => {
    const tracer = await startTracer(['arp']);
    lab.execSync(A, ['ip', 'neigh', 'flush', 'all']);
    await lab.exec(A, ['ping', '-c', '1', '-W', '2', '192.0.2.2']);
    const { events, stderr } = await tracer.stop();
    assert.match(stderr, /'arp' needs a link-layer header .* matches nothing at points where packets have none/);
    assert.ok(events.length > 0, 'the ARP request and reply should be seen');
    for (const e of events) {
      assert.equal(e.proto, 0x0806);
      assert.ok(!e.func.startsWith('nf:'), `ARP at ${e.func}`);
    }
    assert.ok(events.some((e) => e.func === 'tc:egress') && events.some((e) => e.func === 'netif_receive_skb'));
  });

  // No host names here: libpcap would resolve them through DNS.
  test('a bad expression is a one-line error naming libpcap\'s complaint, exit 2', () => {
    const r = runPktpath(['tcp and (']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^pktpath: filter 'tcp and \(': .*syntax error/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    const port = runPktpath(['tcp port 99999']);
    assert.equal(port.code, 2);
    assert.match(port.stderr, /illegal port number 99999/);
    const named = runPktpath(['tcp', 'port', 'no-such-service']);
    assert.equal(named.code, 2);
    assert.match(named.stderr, /at column 10: 'no-such-service'/);
  });
});

describe('namespace, device and mark', () => {
  test('--filter-netns NAME: only packets seen in that namespace', async () => {
    const ev = await traceWith(['--filter-netns', B, 'icmp']);
    const inode = inodeOf(`/run/netns/${B}`);
    assert.ok(ev.length > 0);
    for (const e of ev) assert.equal(e.netns, inode, `${e.func} in ${e.netns}`);
    assert.ok(ev.some((e) => e.func === 'nf:ipv4:local_in'));
  });

  test('--filter-netns /run/netns/NAME with --filter-ifname: only that device', async () => {
    const ev = await traceWith(['--filter-netns', `/run/netns/${A}`, '--filter-ifname', 'veth-a', 'icmp']);
    assert.ok(ev.length > 0);
    for (const e of ev) assert.equal(e.iface.split(':')[0], 'veth-a');
    assert.ok(ev.some((e) => e.func === 'tc:egress') && ev.some((e) => e.func === 'tc:ingress'));
  });

  test('a namespace or device that does not exist is named; exit 2', () => {
    const ns = runPktpath(['--filter-netns', 'no-such-ns']);
    assert.equal(ns.code, 2);
    assert.match(ns.stderr, /^pktpath: --filter-netns: no network namespace 'no-such-ns'/);
    const dev = runPktpath(['--filter-netns', B, '--filter-ifname', 'nope0']);
    assert.equal(dev.code, 2);
    assert.match(dev.stderr, new RegExp(`^pktpath: --filter-ifname: no device 'nope0' in network namespace ${B}`));
  });

  test('--filter-mark with and without a mask (mark set by nft)', async () => {
    lab.nft(B, `table ip pktpath_mark {
      chain pre {
        type filter hook prerouting priority -150;
        icmp type echo-request meta mark set 0x1234
      }
    }`);
    try {
      const ping = () => lab.exec(A, ['ping', '-c', '1', '-W', '2', '192.0.2.2']).then(() => {});
      const exact = await traceWith(['--filter-mark', '0x1234'], ping);
      assert.ok(exact.length > 0);
      for (const e of exact) assert.equal(e.mark, 0x1234);
      assert.ok(exact.some((e) => e.func === 'nf:ipv4:local_in'));
      const masked = await traceWith(['--filter-mark', '0x34/0xff'], ping);
      assert.ok(masked.length > 0);
      for (const e of masked) assert.equal(e.mark & 0xff, 0x34);
      const none = await traceWith(['--filter-mark', '0x35/0xff'], ping);
      assert.deepEqual(none, []);
    } finally {
      lab.execSync(B, ['nft', 'delete', 'table', 'ip', 'pktpath_mark']);
    }
  });
});

describe('--filter-track-skb', () => {
  test('through DNAT: the trace goes on after the rewrite and shows the new tuple', async () => {
    lab.nft(B, `table ip pktpath_nat {
      chain pre {
        type nat hook prerouting priority -100;
        tcp dport 80 dnat to 192.0.2.2:8080
      }
    }`);
    try {
      const connect = async () => {
        const server = lab.spawn(B, [process.execPath, PEER, 'tcp-serve', '8080']);
        await new Promise((r) => server.stdout!.once('data', r));
        const r = await lab.exec(A, [process.execPath, PEER, 'tcp-connect', '192.0.2.2', '80', 'hello']);
        assert.equal(r.code, 0, r.stderr);
      };
      const tracked = await traceWith(['--filter-track-skb', 'tcp and dst port 80'], connect);
      const syn = tracked.filter((e) => e.skb === tracked[0]!.skb);
      const before = syn.find((e) => e.func === 'nf:ipv4:pre_routing');
      const afterNat = syn.find((e) => e.func === 'nf:ipv4:local_in');
      assert.equal(before?.tuple?.dport, 80);
      assert.equal(afterNat?.tuple?.dport, 8080, `path: ${syn.map((e) => `${e.func}:${e.tuple?.dport}`).join(' ')}`);
      // The followed skbs are accounted for at exit.
      const m = /--filter-track-skb followed (\d+) skbs(?: \(\d+ on past a move of their data\))?: (\d+) forgotten when freed, (\d+) dropped when their address held another skb \(freed where no probe saw it\), (\d+) still followed, (\d+) evicted/.exec(lastStderr);
      assert.ok(m, lastStderr);
      assert.ok(Number(m[1]) > 0 && Number(m[2]) > 0);
      assert.equal(Number(m[1]), Number(m[2]) + Number(m[3]) + Number(m[4]) + Number(m[5]));
      // Without tracking, the rewritten packet no longer matches.
      const plain = await traceWith(['tcp and dst port 80'], connect);
      assert.ok(plain.length > 0);
      assert.ok(plain.every((e) => e.tuple?.dport === 80));
      assert.ok(!plain.some((e) => e.func === 'nf:ipv4:local_in'));
    } finally {
      lab.execSync(B, ['nft', 'delete', 'table', 'ip', 'pktpath_nat']);
    }
  });

  test('through a VXLAN tunnel: filtering on the inner tuple, the encapsulated packet is followed', async () => {
    for (const [ns, local, remote, addr] of [[A, '192.0.2.1', '192.0.2.2', '203.0.113.1/24'], [B, '192.0.2.2', '192.0.2.1', '203.0.113.2/24']] as const) {
      lab.execSync(ns, ['ip', 'link', 'add', 'vx0', 'type', 'vxlan', 'id', '42', 'local', local, 'remote', remote, 'dstport', '4789']);
      lab.execSync(ns, ['ip', 'addr', 'add', addr, 'dev', 'vx0']);
      lab.execSync(ns, ['ip', 'link', 'set', 'vx0', 'up']);
    }
    try {
      const ping = async () => {
        const r = await lab.exec(A, ['ping', '-c', '1', '-W', '2', '203.0.113.2']);
        assert.equal(r.code, 0, r.stderr);
      };
      const expr = 'icmp and dst host 203.0.113.2';
      const tracked = await traceWith(['--filter-track-skb', expr], ping);
      const outer = tracked.filter((e) => e.tuple?.proto === 'udp' && e.tuple.dport === 4789);
      const inner = tracked.filter((e) => e.tuple?.proto === 'icmp');
      assert.ok(inner.length > 0, 'the inner packet');
      assert.ok(outer.length > 0, `the encapsulated packet: ${tracked.map((e) => `${e.func}:${e.tuple?.proto}`).join(' ')}`);
      assert.deepEqual([outer[0]!.tuple!.saddr, outer[0]!.tuple!.daddr], ['192.0.2.1', '192.0.2.2']);
      assert.ok(outer.some((e) => inner.some((i) => i.skb === e.skb)), 'one skb carries both');
      const plain = await traceWith([expr], ping);
      assert.ok(plain.length > 0);
      assert.ok(plain.every((e) => e.tuple?.proto === 'icmp'), 'without tracking, no outer packet');
    } finally {
      lab.execSync(A, ['ip', 'link', 'del', 'vx0']);
      lab.execSync(B, ['ip', 'link', 'del', 'vx0']);
    }
  });
});
