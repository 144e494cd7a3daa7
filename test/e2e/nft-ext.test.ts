/**
 * --output-nft with IPv6 extension headers: nftables' trace events copy the
 * network header up to 40 bytes (the fixed IPv6 header, none of the extension
 * headers after it) and the transport header from where netfilter found it.
 * A datagram with a hop-by-hop header, and the first fragment of a datagram
 * larger than the MTU, still have their trace events tied to their skb, with
 * the skb's tuple. Two namespaces: A 2001:db8::1 — veth — B 2001:db8::2.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Lab } from '../../src/lab/lab.js';
import { type JsonEvent, startTracer, waitNoPrograms } from '../helpers/tracer.js';

const lab = new Lab(`ppnx${process.pid % 10000}`);
let A: string;
let B: string;

before(async () => {
  A = lab.netns('a');
  B = lab.netns('b');
  lab.veth({ ns: A, ifname: 'veth-a', addrs: ['2001:db8::1/64'] }, { ns: B, ifname: 'veth-b', addrs: ['2001:db8::2/64'] });
  lab.nft(B, `table inet t {
  chain pre {
    type filter hook prerouting priority 0; policy accept;
    meta l4proto udp counter
  }
}
`);
  // B reachable before tracing: its address routed, A's neighbour entry made (no datagram waits for discovery).
  for (let i = 0; i < 20 && (await lab.exec(A, ['ping', '-6', '-c', '1', '-W', '1', '2001:db8::2'])).code !== 0; i++);
});
after(async () => {
  lab.cleanup();
  await waitNoPrograms();
});

/** Sends one UDP datagram from A: with a hop-by-hop header (a PadN option) when asked. */
function send(port: number, size: number, hopByHop: boolean): Promise<{ code: number; stderr: string }> {
  const script = [
    'import socket',
    's = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)',
    // Next header and length are the kernel's to fill; one PadN option of 4 bytes makes the 8.
    ...(hopByHop ? ['s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_HOPOPTS, bytes([0, 0, 1, 4, 0, 0, 0, 0]))'] : []),
    `s.sendto(b'x' * ${size}, ('2001:db8::2', ${port}))`,
  ].join('\n');
  return lab.exec(A, ['python3', '-c', script]);
}

/** B's prerouting rule events, by the destination port of their tuple. */
const preRules = (events: JsonEvent[], dport: number) => events.filter((e) => e.probe.type === 'nft' &&
  e.nft!.table === 't' && e.nft!.chain === 'pre' && e.nft!.kind === 'rule' && e.tuple?.proto === 'udp' && e.tuple.dport === dport);

test('a datagram with a hop-by-hop header and the first fragment of one: their nft events are tied to their skbs', async () => {
  const tracer = await startTracer(['--output-nft', '--filter-netns', B, '--filter-src-ip', '2001:db8::1'], 30_000, ['ip', 'netns', 'exec', B]);
  let sent: unknown = null;
  try {
    for (const [port, size, hbh] of [[7001, 16, true], [7002, 3000, false]] as const) {
      const r = await send(port, size, hbh);
      assert.equal(r.code, 0, r.stderr);
    }
    await new Promise((r) => setTimeout(r, 300));
  } catch (e) {
    sent = e;
  }
  const { code, events, stderr } = await tracer.stop();
  if (sent) throw sent;
  assert.equal(code, 0, stderr);
  const ring = events.filter((e) => e.probe.type !== 'nft');
  const skbsOf = (dport: number) => new Set(ring.filter((e) => e.tuple?.proto === 'udp' && e.tuple.dport === dport).map((e) => e.skb));

  // The hop-by-hop datagram: one rule event, on the skb the probes saw with that tuple.
  const hbh = preRules(events, 7001);
  assert.equal(hbh.length, 1, `rule events of the hop-by-hop datagram: ${JSON.stringify(events.filter((e) => e.probe.type === 'nft'))}\n` +
    `ring: ${JSON.stringify(ring.map((e) => [e.func, e.skb, e.tuple?.dport]))}\n${stderr}`);
  assert.ok(skbsOf(7001).has(hbh[0]!.skb), `tied to skb ${hbh[0]!.skb}, not one of the datagram's`);
  assert.notEqual(hbh[0]!.tuple!.sport, 0);

  // The fragmented datagram's first fragment (its fragment header hides its protocol from the copy). A later
  // fragment's trace carries no network header at all (netfilter finds no transport header to end it at).
  const first = preRules(events, 7002);
  assert.equal(first.length, 1, 'the first fragment\'s rule event');
  assert.ok(skbsOf(7002).has(first[0]!.skb), 'the first fragment\'s event on its skb');
});
