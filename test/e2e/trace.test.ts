/**
 * pktpath against real packets: two namespaces joined by a veth pair, real
 * ping/UDP/TCP, the real binary, assertions on its JSON output.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Lab, twoHosts } from '../../src/lab/lab.js';
import { mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probesDir } from '../../src/trace/builds.js';
import { root } from '../helpers/probe-btf.js';
import { assertSubsequence, startTracer, waitNoPrograms, type JsonEvent } from '../helpers/tracer.js';

const PEER = join(root, 'dist/src/lab/peer.js');

const lab = new Lab();
let A = '';
let B = '';

before(() => {
  ({ a: A, b: B } = twoHosts(lab));
  // A second address on B, for traffic that must not match.
  lab.execSync(B, ['ip', 'addr', 'add', '192.0.2.3/24', 'dev', 'veth-b']);
});
after(() => lab.cleanup());
afterEach(async () => {
  assert.deepEqual(await waitNoPrograms(), [], 'programs of pktpath left loaded');
});

const funcs = (events: JsonEvent[]) => events.map((e) => e.func);

/** The events of one packet (by skb), in the order they were seen. */
function bySkb(events: JsonEvent[]): Map<string, JsonEvent[]> {
  const m = new Map<string, JsonEvent[]>();
  for (const e of events) m.set(e.skb, [...(m.get(e.skb) ?? []), e]);
  return m;
}

describe('IPv4 ping', () => {
  test('the echo request passes A output path then B input path, in kernel order; other traffic is filtered out', async () => {
    const tracer = await startTracer(['--filter-dst-ip', '192.0.2.2', '--output-tuple']);
    const [ok, other] = await Promise.all([
      lab.exec(A, ['ping', '-c', '1', '-W', '2', '192.0.2.2']),
      lab.exec(A, ['ping', '-c', '2', '-i', '0.2', '-W', '2', '192.0.2.3']),
    ]);
    const { code, events, stderr } = await tracer.stop();
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(other.code, 0, other.stderr);
    assert.equal(code, 0, stderr);

    assert.ok(events.length > 0, 'no events');
    for (const e of events) {
      assert.equal(e.tuple?.daddr, '192.0.2.2', `event not matching the filter: ${JSON.stringify(e)}`);
    }
    const requests = events.filter((e) => e.tuple?.proto === 'icmp' && e.tuple.saddr === '192.0.2.1');
    assertSubsequence(funcs(requests), [
      'nf:ipv4:local_out', 'nf:ipv4:post_routing', 'tc:egress', 'net_dev_queue', 'net_dev_start_xmit',
      'netif_receive_skb', 'tc:ingress', 'nf:ipv4:pre_routing', 'nf:ipv4:local_in',
    ]);
    // Names, not numbers: which namespace and device each hop was in.
    const at = (f: string) => requests.find((e) => e.func === f)!;
    assert.equal(at('nf:ipv4:local_out').netns_name, A);
    assert.equal(at('tc:egress').iface.split(':')[0], 'veth-a');
    assert.equal(at('tc:ingress').iface.split(':')[0], 'veth-b');
    assert.equal(at('nf:ipv4:local_in').netns_name, B);
    assert.equal(at('tc:egress').probe.type, 'tc');
    assert.equal(at('net_dev_queue').probe.type, 'tracepoint');
    assert.equal(at('nf:ipv4:pre_routing').probe.type, 'netfilter');
    // A veth hands the same skb to the peer: one packet, one skb along the path.
    assert.equal(at('nf:ipv4:local_out').skb, at('nf:ipv4:local_in').skb);
  });
});

describe('builds for older kernels', () => {
  test('the tracepoint build without bpf_rdonly_cast (before 6.2) is taken when the other does not load, and sees the same path', async () => {
    // A probes directory without the default tracepoint build: the next build of the kind is tried.
    const dir = mkdtempSync(join(tmpdir(), 'pktpath-probes-'));
    try {
      for (const f of readdirSync(probesDir())) {
        if (f.endsWith('.o') && f !== 'tracepoint.bpf.o') symlinkSync(join(probesDir(), f), join(dir, f));
      }
      const tracePing = async (env: NodeJS.ProcessEnv) => {
        const tracer = await startTracer(['--filter-dst-ip', '192.0.2.2', '--filter-proto', 'icmp'], 30_000, [], env);
        const ping = await lab.exec(A, ['ping', '-c', '1', '-W', '2', '192.0.2.2']);
        const run = await tracer.stop();
        assert.equal(ping.code, 0, ping.stderr);
        assert.equal(run.code, 0, run.stderr);
        assert.doesNotMatch(run.stderr, /not observed|loaded without/);
        const request = run.events.filter((e) => e.tuple?.saddr === '192.0.2.1' && e.probe.type === 'tracepoint');
        return { points: request.map((e) => `${e.func}@${e.netns_name}/${e.iface}`), stderr: run.stderr };
      };
      // Neighbours resolved beforehand: both traced pings take the same path.
      await lab.exec(A, ['ping', '-c', '1', '-W', '2', '192.0.2.2']);
      const usual = await tracePing({});
      const older = await tracePing({ PKTPATH_PROBES_DIR: dir });
      assert.ok(usual.points.length >= 4, usual.stderr);
      assert.deepEqual(older.points, usual.points);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a filter wider than the tracepoints\' usual build', () => {
  test('a filter of ~2000 instructions loads the tracepoint build with wider regions and sees the packet there', async () => {
    // Eight IPv6 hosts: 2138 instructions for the L2 region, more than the usual build's 1024.
    const hosts = Array.from({ length: 8 }, (_, i) => `host 2001:db8::${(i + 0x100).toString(16)}`);
    const tracer = await startTracer(['--output-tuple', 'icmp6', 'and', '(', [...hosts, 'host 2001:db8::2'].join(' or '), ')']);
    const ping = await lab.exec(A, ['ping', '-6', '-c', '1', '-W', '2', '2001:db8::2']);
    const { code, events, stderr } = await tracer.stop();
    assert.equal(ping.code, 0, ping.stderr);
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, /not observed/);
    const at = new Set(events.filter((e) => e.tuple?.daddr === '2001:db8::2' && e.probe.type === 'tracepoint').map((e) => e.func));
    for (const f of ['net_dev_queue', 'netif_receive_skb']) assert.ok(at.has(f), `${f} not seen: ${[...at].join(' ')}`);
  });
});

describe('IPv6 ping', () => {
  test('the echo request passes the IPv6 hooks in order', async () => {
    const tracer = await startTracer(['--filter-dst-ip', '2001:db8::2', '--filter-proto', 'icmp6']);
    const ping = await lab.exec(A, ['ping', '-6', '-c', '1', '-W', '2', '2001:db8::2']);
    const { events, stderr } = await tracer.stop();
    assert.equal(ping.code, 0, ping.stderr);
    assert.ok(events.length > 0, stderr);
    for (const e of events) {
      assert.equal(e.tuple?.daddr, '2001:db8::2');
      assert.equal(e.tuple?.proto, 'icmp6');
    }
    const requests = events.filter((e) => e.tuple?.saddr === '2001:db8::1');
    assertSubsequence(funcs(requests), [
      'nf:ipv6:local_out', 'nf:ipv6:post_routing', 'tc:egress', 'net_dev_queue', 'net_dev_start_xmit',
      'netif_receive_skb', 'tc:ingress', 'nf:ipv6:pre_routing', 'nf:ipv6:local_in',
    ]);
  });
});

describe('UDP', () => {
  test('a datagram to a port: its tuple and its path', async () => {
    const server = lab.spawn(B, [process.execPath, PEER, 'udp-serve', '7777']);
    await new Promise<void>((resolve) => server.stdout!.once('data', () => resolve()));
    const tracer = await startTracer(['--filter-proto', 'udp', '--filter-dst-port', '7777']);
    const send = await lab.exec(A, [process.execPath, PEER, 'udp-send', '192.0.2.2', '7777', 'hello']);
    const { events } = await tracer.stop();
    assert.equal(send.code, 0, send.stderr);
    assert.ok(events.length > 0);
    for (const e of events) {
      assert.equal(e.tuple?.proto, 'udp');
      assert.equal(e.tuple?.dport, 7777);
      assert.equal(e.tuple?.daddr, '192.0.2.2');
    }
    assertSubsequence(funcs(events), [
      'nf:ipv4:local_out', 'tc:egress', 'net_dev_start_xmit', 'netif_receive_skb', 'tc:ingress',
      'nf:ipv4:local_in',
    ]);
  });
});

describe('TCP', () => {
  test('a connection: SYN first, the server side filtered by source port', async () => {
    const server = lab.spawn(B, [process.execPath, PEER, 'tcp-serve', '8080']);
    await new Promise<void>((resolve) => server.stdout!.once('data', () => resolve()));
    const toServer = await startTracer(['--filter-proto', 'tcp', '--filter-dst-port', '8080', '--output-tcp-flags']);
    const fromServer = await startTracer(['--filter-proto', 'tcp', '--filter-src-port', '8080', '--filter-src-ip', '192.0.2.2']);
    const client = await lab.exec(A, [process.execPath, PEER, 'tcp-connect', '192.0.2.2', '8080', 'hello']);
    const [c2s, s2c] = [await toServer.stop(), await fromServer.stop()];
    assert.equal(client.code, 0, client.stderr);

    assert.ok(c2s.events.length > 0 && s2c.events.length > 0);
    for (const e of c2s.events) assert.equal(e.tuple?.dport, 8080);
    for (const e of s2c.events) assert.equal(e.tuple?.sport, 8080);
    assert.equal(c2s.events[0]!.tuple?.flags, 'SYN');
    assert.equal(c2s.events[0]!.func, 'nf:ipv4:local_out');
    assert.equal(s2c.events[0]!.tuple?.flags, 'SYN|ACK');
    const syn = [...bySkb(c2s.events).values()][0]!;
    assertSubsequence(funcs(syn), ['nf:ipv4:local_out', 'tc:egress', 'netif_receive_skb', 'tc:ingress', 'nf:ipv4:local_in']);
    assert.ok(c2s.events.some((e) => e.tuple?.flags.includes('PSH')), 'the data segment is traced');
  });
});

describe('drops', () => {
  test('a packet dropped by an nft rule shows kfree_skb with NETFILTER_DROP', async () => {
    lab.nft(B, `table inet pktpath_test {
      chain input {
        type filter hook input priority 0;
        ip daddr 192.0.2.3 icmp type echo-request drop
      }
    }`);
    try {
      const tracer = await startTracer(['--filter-dst-ip', '192.0.2.3', '--filter-proto', 'icmp', '--output-caller', '--output-stack']);
      const ping = await lab.exec(A, ['ping', '-c', '1', '-W', '1', '192.0.2.3']);
      const { events } = await tracer.stop();
      assert.notEqual(ping.code, 0, 'the ping should have been dropped');
      const drop = events.find((e) => e.func === 'kfree_skb');
      assert.ok(drop, `no kfree_skb in ${events.map((e) => e.func).join(', ')}`);
      assert.equal(drop.drop_reason, 'NETFILTER_DROP');
      assert.equal(drop.netns_name, B);
      assert.match(drop.caller ?? '', /^\w+\+0x[0-9a-f]+$/);
      // The stack says who dropped it: netfilter's hook walk, symbolized.
      assert.ok(drop.stack && drop.stack.length > 3, 'no stack');
      for (const frame of drop.stack) assert.match(frame, /^[\w.]+\+0x[0-9a-f]+( \[\w+\])?$/);
      assert.ok(drop.stack.some((f) => f.startsWith('nf_hook_slow+')), drop.stack.join('\n'));
      // Stacks only at tracepoints: the tc and netfilter program types cannot take one.
      assert.ok(events.filter((e) => e.probe.type !== 'tracepoint').every((e) => (e.stack ?? []).length === 0));
      // It got as far as local_in and no further.
      const path = funcs(events.filter((e) => e.skb === drop.skb));
      assertSubsequence(path, ['nf:ipv4:pre_routing', 'nf:ipv4:local_in', 'kfree_skb']);
      assert.ok(!path.includes('consume_skb'));
    } finally {
      lab.execSync(B, ['nft', 'delete', 'table', 'inet', 'pktpath_test']);
    }
  });
});
