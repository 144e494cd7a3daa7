/**
 * --output-nft under load: nftables' trace events travel over a netlink
 * socket that overflows when more is traced than pktpath reads. Two
 * namespaces (A 192.0.2.1 — veth — B 192.0.2.2, IPv4 only: no IPv6 chatter
 * is traced or counted), pktpath traces B. B's table counts every packet at
 * prerouting and output, so the trace messages nftables made are known
 * exactly: pktpath's own chain and B's each report a rule, the chain's end
 * and its policy, six messages a packet.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Lab } from '../../src/lab/lab.js';
import { type JsonEvent, startTracer, waitNoPrograms } from '../helpers/tracer.js';

const lab = new Lab(`ppnl${process.pid % 10000}`);
let A: string;
let B: string;
const MESSAGES_PER_PACKET = 6;
/** 64-byte datagrams at this rate; what the machine reaches is measured (iperf3's count of what B received). */
const FLOOD_PPS = 100_000;

before(() => {
  A = lab.netns('a');
  B = lab.netns('b');
  for (const ns of [A, B]) lab.execSync(ns, ['sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  lab.veth({ ns: A, ifname: 'veth-a', addrs: ['192.0.2.1/24'] }, { ns: B, ifname: 'veth-b', addrs: ['192.0.2.2/24'] });
});
after(async () => {
  lab.cleanup();
  await waitNoPrograms();
});
beforeEach(() => {
  lab.nft(B, `table inet t
delete table inet t
table inet t {
  chain pre {
    type filter hook prerouting priority 0; policy accept;
    counter
  }
  chain out {
    type filter hook output priority 0; policy accept;
    counter
  }
}
`);
});

/** Packets B's table counted at prerouting and output. */
function countedPackets(): number {
  const text = lab.execSync(B, ['nft', 'list', 'table', 'inet', 't']);
  return [...text.matchAll(/counter packets (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
}

interface Journey {
  kind: 'request' | 'reply' | 'other';
  events: JsonEvent[];
}

const kindOf = (e: JsonEvent): Journey['kind'] =>
  e.tuple?.proto !== 'icmp' ? 'other' : e.tuple.daddr === '192.0.2.2' ? 'request' : e.tuple.saddr === '192.0.2.2' ? 'reply' : 'other';

/**
 * B's packets by skb, each from its first record to its end (or to a record
 * of a packet of another kind at the same address), with the nft events
 * placed among them.
 */
function journeys(events: JsonEvent[]): { paths: Journey[]; outside: JsonEvent[] } {
  const open = new Map<string, Journey>();
  const paths: Journey[] = [];
  const outside: JsonEvent[] = [];
  for (const e of events) {
    let j = open.get(e.skb);
    if (e.probe.type === 'nft') {
      if (j) j.events.push(e);
      else outside.push(e);
      continue;
    }
    if (!j || j.kind !== kindOf(e)) {
      j = { kind: kindOf(e), events: [] };
      open.set(e.skb, j);
      paths.push(j);
    }
    j.events.push(e);
    // A request ends in B, a reply leaves it.
    if (e.func === 'consume_skb' || e.func === 'kfree_skb' || (j.kind === 'reply' && e.func === 'net_dev_xmit')) open.delete(e.skb);
  }
  return { paths, outside };
}

/** B's prerouting rule, as pktpath names it: the event each echo request must carry. */
const preRule = (e: JsonEvent) => e.probe.type === 'nft' && e.nft!.table === 't' && e.nft!.chain === 'pre' && e.nft!.kind === 'rule';

interface Run {
  events: JsonEvent[];
  lostRecords: number[];
  /** The summary's nft figures (null: it had none). */
  read: number | null;
  lost: number | null;
  counted: number;
  floodPps: number | null;
  pings: number;
}

/** pktpath traces B while A pings it (and floods it with UDP, when asked). */
async function traceB(filter: string[], o: { pings: number; interval: number; flood: boolean }): Promise<Run> {
  const tracer = await startTracer(['--output-nft', '--filter-netns', B, ...filter], 30_000, ['ip', 'netns', 'exec', B]);
  let floodPps: number | null = null;
  try {
    let flood: Promise<void> | null = null;
    if (o.flood) {
      const server = lab.spawn(B, ['iperf3', '-s', '-1', '-B', '192.0.2.2', '--forceflush']);
      await new Promise((r) => server.stdout!.once('data', r));
      flood = lab.exec(A, ['iperf3', '-c', '192.0.2.2', '-u', '-b', String(FLOOD_PPS * 64 * 8), '-l', '64', '-t', '4', '-J'], 60_000)
        .then((r) => {
          const s = (JSON.parse(r.stdout) as { end: { sum: { packets: number; lost_packets: number; seconds: number } } }).end.sum;
          floodPps = Math.round((s.packets - s.lost_packets) / s.seconds);
        });
      await new Promise((r) => setTimeout(r, 1000));
    }
    // Under the flood a request may be dropped before B's netfilter (exit 1); checkRequests counts those that arrived.
    const ping = await lab.exec(A, ['ping', '-q', '-c', String(o.pings), '-i', String(o.interval), '192.0.2.2'], 60_000);
    assert.ok(ping.code === 0 || ping.code === 1, ping.stdout + ping.stderr);
    await flood;
  } catch (e) {
    await tracer.stop();
    throw e;
  }
  const counted = countedPackets();
  // Another pktpath on this machine that traces every named namespace adds its own table here: its trace events
  // come to this namespace's group as well, and no count holds.
  const others = lab.execSync(B, ['nft', 'list', 'tables']).split('\n')
    .filter((t) => t.includes('pktpath_trace_') && !t.endsWith(`pktpath_trace_${tracer.child.pid}`));
  const { events, stdout, stderr } = await tracer.stop();
  assert.deepEqual(others, [], 'another pktpath session traced this namespace at the same time: run the test again');
  const summary = /nft trace events: (\d+) read, (\d+) lost/.exec(stderr);
  const lostRecords = stdout.split('\n').filter((l) => l.includes('"type":"lost"')).map((l) => JSON.parse(l) as { count: number; source?: string })
    .filter((r) => r.source === 'nft').map((r) => r.count);
  if (floodPps !== null) console.log(`flood: ${floodPps} packets/s received by B; ${summary?.[0] ?? 'no nft figures'}`);
  return { events, lostRecords, read: summary ? Number(summary[1]) : null, lost: summary ? Number(summary[2]) : null, counted, floodPps, pings: o.pings };
}

/**
 * Each echo request that reached B's prerouting holds its own rule event in
 * its path (none strays into another packet's): the requests and replies B
 * traced, and the requests that lack their event.
 */
function checkRequests(r: Run): { icmp: number; missing: number } {
  const { paths, outside } = journeys(r.events);
  const requests = paths.filter((j) => j.kind === 'request' && j.events.some((e) => e.func === 'nf:ipv4:pre_routing'));
  const replies = paths.filter((j) => j.kind === 'reply');
  assert.ok(requests.length >= r.pings * 0.9, `${requests.length} of ${r.pings} echo requests reached B's prerouting`);
  for (const j of paths) {
    const rules = j.events.filter(preRule);
    assert.ok(rules.length <= 1, `a packet's path holds ${rules.length} prerouting rule events`);
    if (rules.length === 1) assert.equal(rules[0]!.tuple?.daddr, j.events[0]!.tuple?.daddr, 'a rule event in another flow\'s path');
  }
  assert.deepEqual(outside.filter(preRule).map((e) => `${e.time} ${e.skb}`), [], 'rule events outside their packet\'s path');
  return { icmp: requests.length + replies.length, missing: requests.filter((j) => !j.events.some(preRule)).length };
}

describe('--output-nft: trace events delivered or counted lost', () => {
  test('an unrelated UDP flood beside 40 echo requests, the filter a tcpdump expression: nftables traces only the requests and replies, every one arrives', async () => {
    const r = await traceB(['icmp'], { pings: 40, interval: 0.05, flood: true });
    const { icmp, missing } = checkRequests(r);
    assert.equal(missing, 0, `echo requests without their rule event: ${missing} (nft trace events counted lost: ${r.lost})`);
    assert.equal(r.lost, 0);
    assert.deepEqual(r.lostRecords, []);
    // The requests and replies, nothing of the flood.
    assert.equal(r.read, MESSAGES_PER_PACKET * icmp);
  });

  test('a UDP flood traced too (an expression too large for nftables): every trace message is read or counted lost, each echo request delivered or among them', async () => {
    const ports = Array.from({ length: 16 }, (_, i) => `udp port ${i + 1}`).join(' or ');
    const r = await traceB([`icmp or ${ports}`], { pings: 40, interval: 0.05, flood: true });
    const { missing } = checkRequests(r);
    const lost = r.lostRecords.reduce((n, c) => n + c, 0);
    assert.ok(missing <= lost, `${missing} echo requests without their rule event, ${lost} nft trace events counted lost in the stream`);
    assert.ok(lost > 0, `the flood did not overflow nftables' trace socket (${r.floodPps} packets/s): nothing was tested`);
    assert.equal(r.lost, lost, 'the summary says what the in-band lost records add up to');
    // Exact: what nftables made is what pktpath read plus what it said it lost.
    assert.equal(r.read! + r.lost!, MESSAGES_PER_PACKET * r.counted, `${r.read} read + ${r.lost} lost, ${r.counted} packets counted by B`);
  });

  test('no load: 400 echo requests 5 ms apart, each with its rule event in its own path, none lost', async () => {
    const r = await traceB(['--filter-proto', 'icmp'], { pings: 400, interval: 0.005, flood: false });
    const { icmp, missing } = checkRequests(r);
    assert.equal(missing, 0, `echo requests without their rule event: ${missing}`);
    assert.equal(icmp, 800);
    assert.equal(r.lost, 0);
    assert.equal(r.read, MESSAGES_PER_PACKET * r.counted);
  });
});
