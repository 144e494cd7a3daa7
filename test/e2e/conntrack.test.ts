/**
 * What netfilter decided about each packet, on real traffic: conntrack state
 * at the netfilter hooks (skb->_nfct) and at tc (bpf_skb_ct_lookup), NAT as
 * the entry's two tuples, and drops with the kernel's reason names.
 *
 * Two labs: A — B (B runs a stateful nft ruleset), and A2 — R — B2 where R
 * forwards, port-forwards 203.0.113.1:80 to B2:8080 and masquerades.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, twoHosts } from '../../src/lab/lab.js';
import { root } from '../helpers/probe-btf.js';
import { type JsonEvent, pktpathPrivately, startTracer, waitNoPrograms } from '../helpers/tracer.js';

const PEER = join(root, 'dist/src/lab/peer.js');

type CtEvent = JsonEvent;

const lab = new Lab(`ppct${process.pid % 10000}`);
let A = '';
let B = '';
let A2 = '';
let R = '';
let B2 = '';

before(() => {
  ({ a: A, b: B } = twoHosts(lab));
  // A stateful input policy in B: this is what turns conntrack on in B's namespace.
  lab.nft(B, [
    'table inet pp {',
    'chain input {',
    'type filter hook input priority 0; policy accept;',
    'ct state established,related accept',
    'tcp dport 8080 ct state new accept',
    'udp dport 9090 drop',
    '}',
    '}',
    '',
  ].join('\n'));

  A2 = lab.netns('a2');
  R = lab.netns('r');
  B2 = lab.netns('b2');
  lab.veth({ ns: A2, ifname: 'a2-r', addrs: ['192.0.2.1/24'] }, { ns: R, ifname: 'r-a', addrs: ['192.0.2.254/24'] });
  lab.veth({ ns: R, ifname: 'r-b', addrs: ['198.51.100.1/24'] }, { ns: B2, ifname: 'b2-r', addrs: ['198.51.100.2/24'] });
  lab.execSync(A2, ['ip', 'route', 'add', 'default', 'via', '192.0.2.254']);
  lab.execSync(R, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  // B2 has no route back to A2's subnet: replies only get there because R masquerades.
  lab.nft(R, [
    'table ip nat {',
    'chain pre {',
    'type nat hook prerouting priority dstnat; policy accept;',
    'ip daddr 203.0.113.1 tcp dport 80 dnat to 198.51.100.2:8080',
    '}',
    'chain post {',
    'type nat hook postrouting priority srcnat; policy accept;',
    'oifname "r-b" masquerade',
    '}',
    '}',
    '',
  ].join('\n'));
});
after(() => lab.cleanup());
afterEach(async () => {
  assert.deepEqual(await waitNoPrograms(), [], 'programs of pktpath left loaded');
});

async function serveTcp(ns: string, port: number): Promise<void> {
  const server = lab.spawn(ns, [process.execPath, PEER, 'tcp-serve', String(port)]);
  await new Promise((r) => server.stdout!.once('data', r));
}

async function traceWith(args: string[], traffic: () => Promise<void>): Promise<CtEvent[]> {
  const tracer = await startTracer(args);
  const sent = await traffic().then(() => null, (e: unknown) => e);
  const result = await tracer.stop();
  if (sent) throw sent;
  assert.equal(result.code, 0, result.stderr);
  return result.events as CtEvent[];
}

const inNs = (events: CtEvent[], ns: string) => events.filter((e) => e.netns_name === ns);
const flags = (e: CtEvent) => e.tuple?.flags ?? '';
function describeEvents(events: CtEvent[]): string {
  return events.map((e) => `${e.netns_name} ${e.func} ${e.tuple?.saddr}:${e.tuple?.sport}>${e.tuple?.daddr}:${e.tuple?.dport} ` +
    `${flags(e)} ${e.ct ? `${e.ct.source} ${e.ct.state}/${e.ct.dir} ${e.ct.status.join('|')}` : '-'}`).join('\n');
}

describe('conntrack across a stateful ruleset (A — B)', () => {
  let events: CtEvent[] = [];

  before(async () => {
    events = await traceWith(['tcp port 8080'], async () => {
      await serveTcp(B, 8080);
      const r = await lab.exec(A, [process.execPath, PEER, 'tcp-connect', '192.0.2.2', '8080', 'hello']);
      assert.equal(r.code, 0, r.stderr);
    });
  });

  test('the first SYN is NEW in the original direction at B\'s pre_routing and local_in', () => {
    const b = inNs(events, B);
    for (const func of ['nf:ipv4:pre_routing', 'nf:ipv4:local_in']) {
      const syn = b.find((e) => e.func === func && flags(e) === 'SYN');
      assert.ok(syn, `no SYN at ${func}:\n${describeEvents(events)}`);
      assert.equal(syn.ct?.source, 'nfct');
      assert.equal(syn.ct.state, 'NEW');
      assert.equal(syn.ct.dir, 'orig');
      assert.ok(!syn.ct.status.includes('SEEN_REPLY'));
      const port = syn.tuple!.sport;
      assert.deepEqual(syn.ct.orig, { saddr: '192.0.2.1', daddr: '192.0.2.2', sport: port, dport: 8080, proto: 'tcp' });
      assert.deepEqual(syn.ct.reply, { saddr: '192.0.2.2', daddr: '192.0.2.1', sport: 8080, dport: port, proto: 'tcp' });
    }
  });

  test('the SYN-ACK leaving B is ESTABLISHED in the reply direction, and the entry is confirmed', () => {
    const synack = inNs(events, B).find((e) => e.func === 'nf:ipv4:local_out' && flags(e) === 'SYN|ACK');
    assert.ok(synack, describeEvents(events));
    assert.equal(synack.ct?.state, 'ESTABLISHED');
    assert.equal(synack.ct.dir, 'reply');
    assert.ok(synack.ct.status.includes('SEEN_REPLY') && synack.ct.status.includes('CONFIRMED'), synack.ct.status.join('|'));
  });

  test('later packets are ESTABLISHED and the entry becomes ASSURED; every packet names the same entry', () => {
    const b = inNs(events, B).filter((e) => e.ct?.source === 'nfct');
    const later = b.filter((e) => e.func === 'nf:ipv4:local_in' && flags(e) !== 'SYN');
    assert.ok(later.length >= 2, describeEvents(events));
    for (const e of later) {
      assert.equal(e.ct!.state, 'ESTABLISHED');
      assert.equal(e.ct!.dir, 'orig');
    }
    assert.ok(later.some((e) => e.ct!.status.includes('ASSURED')), describeEvents(later));
    assert.equal(new Set(b.map((e) => e.ct!.id)).size, 1, 'one connection, one entry');
    assert.notEqual(b[0]!.ct!.id, '0x0000000000000000');
  });

  test('tc lookups: no entry for the first SYN; found, with its direction, once it exists', () => {
    const tc = inNs(events, B).filter((e) => e.func.startsWith('tc:'));
    const syn = tc.find((e) => e.func === 'tc:ingress' && flags(e) === 'SYN');
    assert.ok(syn?.ct, describeEvents(tc));
    assert.deepEqual([syn.ct.source, syn.ct.found, syn.ct.state, syn.ct.error], ['tc-lookup', false, 'NONE', -2]);
    assert.equal(syn.ct.orig, null);
    const synack = tc.find((e) => e.func === 'tc:egress' && flags(e) === 'SYN|ACK');
    assert.deepEqual([synack?.ct?.found, synack?.ct?.state, synack?.ct?.dir], [true, 'ESTABLISHED', 'reply']);
    const ack = tc.find((e) => e.func === 'tc:ingress' && flags(e) === 'ACK');
    assert.deepEqual([ack?.ct?.found, ack?.ct?.state, ack?.ct?.dir], [true, 'ESTABLISHED', 'orig']);
    // The lookup finds the very entry the netfilter hooks see.
    const nf = inNs(events, B).find((e) => e.ct?.source === 'nfct');
    assert.equal(ack!.ct!.id, nf!.ct!.id);
  });

  test('no ct at A\'s netfilter hooks: conntrack is not active in A', () => {
    const a = inNs(events, A).filter((e) => e.func.startsWith('nf:'));
    assert.ok(a.length > 0, describeEvents(events));
    for (const e of a) assert.equal(e.ct, undefined, `${e.func} has a ct section`);
    // tc asks anyway: it finds nothing there, and says so.
    for (const e of inNs(events, A).filter((x) => x.func.startsWith('tc:'))) {
      assert.deepEqual([e.ct?.found, e.ct?.state], [false, 'NONE']);
    }
    // Tracepoints never carry a ct section.
    for (const e of events.filter((x) => x.probe.type === 'tracepoint')) assert.equal(e.ct, undefined);
  });
});

describe('NAT on a router (A2 — R — B2): DNAT 203.0.113.1:80 → 198.51.100.2:8080 and masquerade', () => {
  let events: CtEvent[] = [];

  before(async () => {
    events = await traceWith(['tcp and (port 80 or port 8080)'], async () => {
      await serveTcp(B2, 8080);
      const r = await lab.exec(A2, [process.execPath, PEER, 'tcp-connect', '203.0.113.1', '80', 'hello']);
      assert.equal(r.code, 0, r.stderr);
    });
  });

  test('before DNAT the entry is untranslated; at forward the reply tuple shows the new destination', () => {
    const r = inNs(events, R);
    const pre = r.find((e) => e.func === 'nf:ipv4:pre_routing' && flags(e) === 'SYN');
    assert.ok(pre?.ct, describeEvents(events));
    const port = pre.tuple!.sport;
    assert.deepEqual(pre.ct.orig, { saddr: '192.0.2.1', daddr: '203.0.113.1', sport: port, dport: 80, proto: 'tcp' });
    assert.equal(pre.ct.state, 'NEW');
    // Our observer runs at -199, before DNAT at -100.
    assert.ok(!pre.ct.status.includes('DST_NAT'), pre.ct.status.join('|'));

    const fwd = r.find((e) => e.func === 'nf:ipv4:forward' && flags(e) === 'SYN');
    assert.ok(fwd?.ct, describeEvents(events));
    assert.deepEqual(fwd.tuple && [fwd.tuple.daddr, fwd.tuple.dport], ['198.51.100.2', 8080]);
    assert.equal(fwd.ct.reply?.saddr, '198.51.100.2');
    assert.equal(fwd.ct.reply?.sport, 8080);
    assert.ok(fwd.ct.status.includes('DST_NAT') && fwd.ct.status.includes('DST_NAT_DONE'), fwd.ct.status.join('|'));
  });

  test('reply packets at R: both translations in the entry, reply direction, ESTABLISHED', () => {
    const reply = inNs(events, R).find((e) => e.func === 'nf:ipv4:pre_routing' && flags(e) === 'SYN|ACK');
    assert.ok(reply?.ct, describeEvents(events));
    // The SYN-ACK arrives addressed to the masquerading address.
    assert.deepEqual([reply.tuple!.saddr, reply.tuple!.sport, reply.tuple!.daddr], ['198.51.100.2', 8080, '198.51.100.1']);
    assert.equal(reply.ct.state, 'ESTABLISHED');
    assert.equal(reply.ct.dir, 'reply');
    const { orig, reply: rt } = reply.ct;
    assert.deepEqual([orig?.saddr, orig?.daddr, orig?.dport], ['192.0.2.1', '203.0.113.1', 80]);
    assert.deepEqual([rt?.saddr, rt?.sport, rt?.daddr], ['198.51.100.2', 8080, '198.51.100.1']);
    for (const s of ['SRC_NAT', 'DST_NAT', 'SRC_NAT_DONE', 'DST_NAT_DONE', 'SEEN_REPLY', 'CONFIRMED']) {
      assert.ok(reply.ct.status.includes(s), `${s} missing: ${reply.ct.status.join('|')}`);
    }
    // Replies are un-NATed in two steps: the destination (masquerade) at pre_routing -100, the source
    // (port forward) at post_routing +100, after our observer at -199; A2 then sees the public address.
    const out = inNs(events, R).find((e) => e.func === 'nf:ipv4:post_routing' && flags(e) === 'SYN|ACK');
    assert.deepEqual(out && [out.tuple!.saddr, out.tuple!.sport, out.tuple!.daddr], ['198.51.100.2', 8080, '192.0.2.1']);
    const atA2 = inNs(events, A2).find((e) => e.func === 'tc:ingress' && flags(e) === 'SYN|ACK');
    assert.deepEqual(atA2 && [atA2.tuple!.saddr, atA2.tuple!.sport, atA2.tuple!.daddr], ['203.0.113.1', 80, '192.0.2.1']);
  });

  test('with --output-ct, a second look after NAT on the same hook shows each rewrite where it happens', async () => {
    const nat = await traceWith(['--output-ct', 'tcp and (port 80 or port 8080)'], async () => {
      await serveTcp(B2, 8080);
      const r = await lab.exec(A2, [process.execPath, PEER, 'tcp-connect', '203.0.113.1', '80', 'hello']);
      assert.equal(r.code, 0, r.stderr);
    });
    type Changed = CtEvent & { tuple_before?: { saddr: string; daddr: string; sport: number; dport: number } };
    const r = inNs(nat, R) as Changed[];
    const dnat = r.find((e) => e.func === 'nf:ipv4:pre_routing:nat' && flags(e) === 'SYN');
    assert.ok(dnat, describeEvents(nat));
    assert.deepEqual([dnat.tuple!.daddr, dnat.tuple!.dport], ['198.51.100.2', 8080]);
    assert.deepEqual([dnat.tuple_before?.daddr, dnat.tuple_before?.dport], ['203.0.113.1', 80]);
    const snat = r.find((e) => e.func === 'nf:ipv4:post_routing:nat' && flags(e) === 'SYN');
    assert.ok(snat, describeEvents(nat));
    assert.equal(snat.tuple!.saddr, '198.51.100.1');
    assert.equal(snat.tuple_before?.saddr, '192.0.2.1');
    // Only where the tuple changed.
    const before = r.find((e) => e.func === 'nf:ipv4:pre_routing' && flags(e) === 'SYN');
    assert.equal(before?.tuple_before, undefined);
  });

  test('no ct in A2 or B2, where nothing uses conntrack', () => {
    for (const e of [...inNs(events, A2), ...inNs(events, B2)].filter((x) => x.func.startsWith('nf:'))) {
      assert.equal(e.ct, undefined, `${e.netns_name} ${e.func}`);
    }
  });
});

describe('drops, with the reason names of this kernel', () => {
  test('an nft drop rule: NETFILTER_DROP in B', async () => {
    const events = await traceWith(['udp port 9090'], async () => {
      const r = await lab.exec(A, [process.execPath, PEER, 'udp-send', '192.0.2.2', '9090', 'dropped']);
      assert.equal(r.code, 0, r.stderr);
      await new Promise((res) => setTimeout(res, 200));
    });
    const drop = inNs(events, B).find((e) => e.func === 'kfree_skb');
    assert.ok(drop, describeEvents(events));
    assert.equal(drop.drop_reason, 'NETFILTER_DROP');
    // It got as far as local_in, as a NEW connection, and no further.
    const seen = inNs(events, B).map((e) => e.func);
    assert.ok(seen.includes('nf:ipv4:local_in'), seen.join(' → '));
    assert.equal(inNs(events, B).find((e) => e.func === 'nf:ipv4:local_in')?.ct?.state, 'NEW');
    assert.ok(!seen.includes('skb_copy_datagram_iovec'));
  });

  test('UDP to a closed port: NO_SOCKET, and a port unreachable sent back', async () => {
    const events = await traceWith(['udp port 7000'], async () => {
      const r = await lab.exec(A, [process.execPath, PEER, 'udp-send', '192.0.2.2', '7000', 'nobody']);
      assert.equal(r.code, 0, r.stderr);
      await new Promise((res) => setTimeout(res, 200));
    });
    const b = inNs(events, B);
    assert.ok(b.some((e) => e.func === 'icmp_send'), describeEvents(events));
    const drop = b.find((e) => e.func === 'kfree_skb');
    assert.equal(drop?.drop_reason, 'NO_SOCKET');
    assert.ok(b.findIndex((e) => e.func === 'icmp_send') < b.findIndex((e) => e.func === 'kfree_skb'));
  });

  test('a router with no route for the destination', async () => {
    const events = await traceWith(['host 203.0.113.50'], async () => {
      await lab.exec(A2, ['ping', '-c', '1', '-W', '1', '203.0.113.50']);
    });
    const drop = inNs(events, R).find((e) => e.func === 'kfree_skb');
    assert.ok(drop, describeEvents(events));
    assert.equal(drop.drop_reason, 'IP_INNOROUTES');
    // Dropped before any netfilter hook after routing.
    const funcs = inNs(events, R).map((e) => e.func);
    assert.ok(funcs.includes('nf:ipv4:pre_routing') && !funcs.includes('nf:ipv4:forward'), funcs.join(' → '));
  });
});

/** Runs pktpath with text output to a file while `traffic` runs; returns the text. */
async function textTrace(args: string[], traffic: () => Promise<void>): Promise<string> {
  const file = join(root, `dist/ct-text-${process.pid}.txt`);
  const child = spawn(...pktpathPrivately([...args, '--output-file', file]), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  try {
    await new Promise<void>((resolve, reject) => {
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes('pktpath: attached ')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`pktpath exited with ${code}:\n${stderr}`)));
    });
    await traffic();
    await new Promise((res) => setTimeout(res, 300));
  } finally {
    child.kill('SIGINT');
    await new Promise((res) => child.once('exit', res));
  }
  const text = readFileSync(file, 'utf8');
  rmSync(file, { force: true });
  return text;
}

describe('text output with --output-ct', () => {
  test('ct state, status and NAT on a line; nothing where there is no conntrack', async () => {
    const text = await textTrace(['--output-ct', '--output-tuple', '--output-meta', 'tcp and (port 80 or port 8080)'], async () => {
      await serveTcp(B2, 8080);
      const r = await lab.exec(A2, [process.execPath, PEER, 'tcp-connect', '203.0.113.1', '80', 'hello']);
      assert.equal(r.code, 0, r.stderr);
    });
    const lines = text.split('\n');
    const synack = lines.find((l) => l.includes('nf:ipv4:pre_routing') && l.includes('198.51.100.2:8080->198.51.100.1'));
    assert.ok(synack, text);
    assert.match(synack, /ct:ESTABLISHED\/REPLY status=[A-Z_|]*SEEN_REPLY/);
    assert.match(synack, /DNAT 203\.0\.113\.1:80 \u2192 198\.51\.100\.2:8080/);
    assert.match(synack, /SNAT 192\.0\.2\.1:\d+ \u2192 198\.51\.100\.1:\d+/);
    // The line of the hook where DNAT happened says so, with the tuples before and after.
    const dnatLine = lines.find((l) => l.includes('nf:ipv4:pre_routing:nat') && l.includes('->198.51.100.2:8080(tcp)'));
    assert.ok(dnatLine, text);
    assert.match(dnatLine, /nf:ipv4:pre_routing:nat DNAT 203\.0\.113\.1:80 \u2192 198\.51\.100\.2:8080/);
    // A2's netfilter lines carry no ct text.
    const a2nf = lines.filter((l) => l.includes('nf:ipv4:') && l.includes('a2-r'));
    assert.ok(a2nf.length > 0, text);
    for (const l of a2nf) assert.doesNotMatch(l, /ct:/);
  });
});

describe('--group-by ct', () => {
  test('the packets of the connection together, original and reply direction, in time order', async () => {
    const text = await textTrace(['--group-by', 'ct', 'tcp port 8080'], async () => {
      await serveTcp(B, 8080);
      const r = await lab.exec(A, [process.execPath, PEER, 'tcp-connect', '192.0.2.2', '8080', 'hello']);
      assert.equal(r.code, 0, r.stderr);
    });
    const block = text.split('\n').reduce<string[][]>((acc, l) => {
      if (l.startsWith('connection 0x')) acc.push([l]);
      else if (acc.length > 0 && l.startsWith('    ')) acc[acc.length - 1]!.push(l);
      return acc;
    }, []).find((b) => / tcp 192\.0\.2\.1:\d+ ⇄ 192\.0\.2\.2:8080 /.test(b[0]!));
    assert.ok(block, text);
    assert.match(block[0]!, /status=[A-Z_|]*SEEN_REPLY/);
    const packets = block.slice(1).map((l) => l.trim().split(/\s+/));
    assert.deepEqual(packets.slice(0, 2).map((p) => [p[1], p[2]]), [['→', 'SYN'], ['←', 'SYN|ACK']]);
    assert.ok(packets.some((p) => p[1] === '→' && p[2] === 'PSH|ACK'), block.join('\n'));
    assert.ok(packets.some((p) => p[1] === '←'), 'reply direction');
    const times = block.slice(1).map((l) => l.trim().split(/\s+/)[0]);
    assert.ok(times.every((t) => t!.startsWith('+')));
  });
});
