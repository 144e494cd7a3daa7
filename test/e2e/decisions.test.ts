/**
 * --output-route and --output-neigh on real lookups: a client, a router and a
 * server in namespaces of the test's own. A ping with no route, one to an
 * unreachable route, a forwarded one through the router's gateway, IPv6
 * lookups, an on-link address nobody owns (ARP that never answers), and the
 * filter seeing the flow looked up (or the neighbour's address), not
 * whatever packet the CPU last handled.
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Lab } from '../../src/lab/lab.js';
import { type JsonEvent, startTracer, waitNoPrograms } from '../helpers/tracer.js';

const lab = new Lab('rt30');
let A = '';
let R = '';
let B = '';

const ip = (ns: string, ...args: string[]) => execFileSync('ip', ['-n', ns, ...args]);

before(() => {
  A = lab.netns('a');
  R = lab.netns('r');
  B = lab.netns('b');
  lab.veth({ ns: A, ifname: 'veth-a', addrs: ['192.0.2.2/24', '2001:db8:1::2/64'] }, { ns: R, ifname: 'veth-r0', addrs: ['192.0.2.1/24', '2001:db8:1::1/64'] });
  lab.veth({ ns: R, ifname: 'veth-r1', addrs: ['198.51.100.1/24'] }, { ns: B, ifname: 'veth-b', addrs: ['198.51.100.2/24'] });
  // The client reaches 198.51.100.0/24 and 203.0.113.0/26 through the router; 203.0.113.128/25 is unreachable; nothing else (203.0.113.64/26 has no route).
  ip(A, 'route', 'add', '198.51.100.0/24', 'via', '192.0.2.1');
  ip(A, 'route', 'add', '203.0.113.0/26', 'via', '192.0.2.1');
  ip(A, 'route', 'add', 'unreachable', '203.0.113.128/25');
  ip(A, '-6', 'route', 'add', '2001:db8:2::/64', 'via', '2001:db8:1::1');
  // The router forwards 203.0.113.0/26 to the server as its gateway.
  lab.execSync(R, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  ip(R, 'route', 'add', '203.0.113.0/26', 'via', '198.51.100.2');
  ip(B, 'addr', 'add', '203.0.113.1/32', 'dev', 'lo');
  ip(B, 'route', 'add', '192.0.2.0/24', 'via', '198.51.100.1');
});
after(() => lab.cleanup());
afterEach(async () => {
  assert.deepEqual(await waitNoPrograms(), [], 'programs of pktpath left loaded');
});

const routes = (events: JsonEvent[]) => events.filter((e) => e.route !== undefined);
const neighs = (events: JsonEvent[]) => events.filter((e) => e.neigh !== undefined);
const show = (events: JsonEvent[]) => events.map((e) => `${e.func} ${JSON.stringify(e.tuple)} ${JSON.stringify(e.route ?? e.neigh)}`).join('\n');

test('no route, and an unreachable one: the main table\'s error, at the ping\'s own lookup', async () => {
  const t = await startTracer(['--filter-netns', A, '--output-route']);
  const none = await lab.exec(A, ['ping', '-c', '1', '-W', '1', '203.0.113.70']);
  const unreachable = await lab.exec(A, ['ping', '-c', '1', '-W', '1', '203.0.113.200']);
  const r = await t.stop();
  assert.equal(r.code, 0, r.stderr);
  assert.notEqual(none.code, 0);
  assert.notEqual(unreachable.code, 0);
  const all = routes(r.events);
  assert.ok(all.every((e) => e.func === 'fib:fib_table_lookup' || e.func === 'fib6:fib6_table_lookup'));
  // No match in main: the table says EAGAIN (the caller, with no other rule, makes it ENETUNREACH).
  const missed = all.filter((e) => e.tuple?.daddr === '203.0.113.70');
  assert.ok(missed.length > 0, show(all));
  for (const e of missed) {
    assert.deepEqual([e.route!.table_name, e.route!.result, e.route!.error, e.route!.oif], ['main', 'error', 'EAGAIN', 0]);
    assert.equal(e.netns_name, A);
    assert.match(e.process, /^ping:/);
    assert.equal(e.skb, '0x0000000000000000', 'an output lookup comes before its skb');
  }
  const refused = all.filter((e) => e.tuple?.daddr === '203.0.113.200');
  assert.ok(refused.length > 0, show(all));
  for (const e of refused) assert.deepEqual([e.route!.table_name, e.route!.result, e.route!.error], ['main', 'unreachable', 'EHOSTUNREACH']);
});

test('a forwarded packet: the router\'s lookup, tied to the packet, with its gateway and output device', async () => {
  const t = await startTracer(['--filter-netns', R, '--output-route', 'icmp and host 203.0.113.1']);
  const ping = await lab.exec(A, ['ping', '-c', '2', '-i', '0.2', '-W', '2', '203.0.113.1']);
  const r = await t.stop();
  assert.equal(ping.code, 0, ping.stderr);
  assert.equal(r.code, 0, r.stderr);
  const forward = routes(r.events).filter((e) => e.tuple?.daddr === '203.0.113.1' && e.route!.table_name === 'main');
  assert.ok(forward.length >= 2, show(routes(r.events)));
  for (const e of forward) {
    assert.deepEqual([e.route!.result, e.route!.error, e.route!.gateway, e.route!.oif_name, e.route!.iif_name], ['unicast', null, '198.51.100.2', 'veth-r1', 'veth-r0']);
    assert.equal(e.tuple!.saddr, '192.0.2.2');
  }
  // The input lookup runs in the softirq that received the packet: it carries that skb, seen at the points before it.
  const tied = forward.filter((e) => e.skb !== '0x0000000000000000');
  assert.ok(tied.length >= 1, show(forward));
  for (const e of tied) {
    const before = r.events.filter((o) => o.skb === e.skb && o.route === undefined && o.time <= e.time);
    assert.ok(before.some((o) => o.tuple?.daddr === '203.0.113.1' && o.tuple.proto === 'icmp'), `${e.skb}: ${show(before)}`);
    assert.equal(e.tuple!.proto, 'icmp', 'the tied packet gives the flow its protocol');
  }
});

test('IPv6: a route\'s prefix and gateway; no route is the table\'s null entry', async () => {
  const t = await startTracer(['--filter-netns', A, '--output-route', 'ip6']);
  await lab.exec(A, ['ping', '-6', '-c', '1', '-W', '1', '2001:db8:2::2']);
  const none = await lab.exec(A, ['ping', '-6', '-c', '1', '-W', '1', '2001:db8:9::1']);
  const r = await t.stop();
  assert.equal(r.code, 0, r.stderr);
  assert.notEqual(none.code, 0);
  const all = routes(r.events);
  assert.ok(all.every((e) => e.func === 'fib6:fib6_table_lookup' && e.route!.family === 6), show(all));
  const via = all.filter((e) => e.tuple?.daddr === '2001:db8:2::2' && e.route!.prefix === '2001:db8:2::/64');
  assert.ok(via.length > 0, show(all));
  assert.deepEqual([via[0]!.route!.result, via[0]!.route!.gateway, via[0]!.route!.oif_name], ['unicast', '2001:db8:1::1', 'veth-a']);
  const missed = all.filter((e) => e.tuple?.daddr === '2001:db8:9::1');
  assert.ok(missed.length > 0 && missed.every((e) => e.route!.result === 'unreachable' && e.route!.error === 'ENETUNREACH'), show(all));
});

test('an on-link address nobody owns: the neighbour is created, stays INCOMPLETE while probed, then FAILED; --filter-dst-ip names the neighbour', async () => {
  const t = await startTracer(['--filter-netns', A, '--output-neigh', '--filter-dst-ip', '192.0.2.77']);
  const ping = await lab.exec(A, ['ping', '-c', '1', '-W', '1', '192.0.2.77']);
  // ARP gives up after its probes (3 one second apart by default).
  await new Promise((r) => setTimeout(r, 4500));
  const r = await t.stop();
  assert.notEqual(ping.code, 0);
  assert.equal(r.code, 0, r.stderr);
  const all = neighs(r.events);
  assert.ok(all.length > 0 && all.every((e) => e.neigh!.address === '192.0.2.77' && e.neigh!.iface === 'veth-a' && e.tuple === null), show(all));
  const states = all.map((e) => e.neigh!.state);
  assert.ok(all.some((e) => e.neigh!.event === 'create'), show(all));
  const incomplete = states.indexOf('INCOMPLETE');
  const failed = states.indexOf('FAILED');
  assert.ok(incomplete >= 0 && failed > incomplete, states.join(' '));
  assert.ok(all[failed]!.neigh!.probes >= 3, show(all));
  assert.equal(all[failed]!.neigh!.lladdr, null);
});

test('the filter sees each lookup\'s flow: other flows\' route and neighbour events stay out', async () => {
  for (const args of [['--filter-dst-ip', '203.0.113.1'], ['dst host 203.0.113.1']]) {
    const t = await startTracer(['--filter-netns', A, '--output-route', '--output-neigh', ...args]);
    await lab.exec(A, ['ping', '-c', '1', '-W', '2', '198.51.100.2']);
    await lab.exec(A, ['ping', '-c', '1', '-W', '2', '203.0.113.1']);
    const r = await t.stop();
    assert.equal(r.code, 0, r.stderr);
    const all = routes(r.events);
    assert.ok(all.length > 0, args.join(' '));
    assert.ok(all.every((e) => e.tuple?.daddr === '203.0.113.1'), `${args.join(' ')}:\n${show(all)}`);
    // The next hop (192.0.2.1) is not the destination the filter names.
    assert.deepEqual(neighs(r.events), []);
  }
});
