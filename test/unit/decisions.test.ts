/**
 * Route and neighbour decisions (--output-route, --output-neigh): their
 * sections decoded from records as the probe writes them, named, as text,
 * as JSON and back, valid against the schema; their points planned where
 * the kernel has them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeEvent } from '../../src/decode/event.js';
import { EVENT_LAYOUT, ROUTE_POINT_LAYOUT, RoutePointKind } from '../../src/decode/layout.js';
import { encodeRouteSlots } from '../../src/decode/probe-config.js';
import { eventFromJson } from '../../src/output/json-read.js';
import { toJsonRecord } from '../../src/output/json.js';
import { neighSection, nudName } from '../../src/output/sections/neigh.js';
import { SECTION_DECODERS, sectionMask } from '../../src/output/sections/registry.js';
import { routeOutcome, routeSection, tableName } from '../../src/output/sections/route.js';
import { TextFormatter } from '../../src/output/text.js';
import { type AttachSelection, planProbes } from '../../src/plan/plan.js';
import { Enricher } from '../../src/trace/enrich.js';
import { NameBook } from '../../src/trace/names.js';
import type { KernelView } from '../../src/kernel/view.js';
import { validateJsonLine } from '../helpers/schema.js';
import { recordWith, struct } from '../helpers/sections.js';

const NETNS = 4026532999;
const R = routeSection.layout.fields;
const N = neighSection.layout.fields;

function enricher(): Enricher {
  const names = NameBook.of([{ netns: { inode: NETNS, name: 'rt30-router' }, ifaces: [{ ifindex: 2, name: 'veth0' }, { ifindex: 3, name: 'veth1' }] as never }]);
  return new Enricher({
    points: [{ type: 'tracepoint', name: 'fib:fib_table_lookup', flow: true }, { type: 'tracepoint', name: 'neigh:neigh_timer_handler', flow: true }],
    names, dropReasons: new Map(), startMonoNs: 0n, startWallNs: 0n, symbols: null, stacks: null, tupleChanges: true, redirectFlags: null,
  });
}

/** A record of point `pointId` in the test's namespace with one section. */
function record(pointId: number, kind: number, body: Uint8Array) {
  const r = recordWith([{ kind, body }]);
  r.view.setUint32(r.at + EVENT_LAYOUT.fields.netns, NETNS, true);
  r.view.setUint32(r.at + EVENT_LAYOUT.fields.point_id, pointId, true);
  return decodeEvent(r.view, r.bytes, r.at, SECTION_DECODERS)!;
}

const text = new TextFormatter({ tuple: false, meta: false, stack: false, caller: false, tcpFlags: false, timestamp: 'none', color: false });

test('a forwarded lookup: table, type from the next hop, gateway, devices named in the event\'s namespace; no prefix from fib4', () => {
  const body = struct(routeSection.layout.size, (v, b) => {
    b.set([192, 0, 2, 1], R.gateway);
    v.setUint32(R.table, 254, true);
    v.setUint32(R.oif, 3, true);
    v.setUint32(R.iif, 2, true);
    v.setUint32(R.mark, 7, true);
    b[R.family] = 4;
    b[R.type] = 1;
    b[R.gw_family] = 4;
    b[R.prefix_len] = 0xff;
  });
  const e = enricher().enrich(record(0, routeSection.kind, body));
  assert.deepEqual(e.route, {
    family: 4, table: 254, tableName: 'main', result: 'unicast', error: null, oif: 3, oifName: 'veth1', gateway: '192.0.2.1', prefix: null,
    iif: 2, iifName: 'veth0', mark: 7,
  });
  assert.match(text.formatEvent(e), / route main unicast via 192\.0\.2\.1 dev veth1$/);
  const json = toJsonRecord(e, { stack: false });
  assert.equal(validateJsonLine(JSON.stringify(json)), null);
  assert.deepEqual(eventFromJson(json as never, 0n).route, e.route);
});

test('errors name the result: no match in a table (EAGAIN), an unreachable route, fib6\'s null entry; IPv6 prefixes', () => {
  assert.deepEqual(routeOutcome({ family: 4, error: -11, type: null, noMatch: false }), { result: 'error', error: 'EAGAIN' });
  assert.deepEqual(routeOutcome({ family: 4, error: -113, type: null, noMatch: false }), { result: 'unreachable', error: 'EHOSTUNREACH' });
  assert.deepEqual(routeOutcome({ family: 4, error: -13, type: null, noMatch: false }), { result: 'prohibit', error: 'EACCES' });
  assert.deepEqual(routeOutcome({ family: 6, error: 0, type: 7, noMatch: true }), { result: 'unreachable', error: 'ENETUNREACH' });
  assert.deepEqual(routeOutcome({ family: 6, error: 0, type: 6, noMatch: false }), { result: 'blackhole', error: 'EINVAL' });
  assert.deepEqual(routeOutcome({ family: 4, error: 0, type: null, noMatch: false }), { result: null, error: null });
  assert.deepEqual([254, 255, 253, 100].map(tableName), ['main', 'local', 'default', '100']);

  const body = struct(routeSection.layout.size, (v, b) => {
    b.set([0x20, 0x01, 0x0d, 0xb8], R.prefix);
    v.setUint32(R.table, 254, true);
    b[R.family] = 6;
    b[R.type] = 7;
    b[R.prefix_len] = 32;
  });
  const e = enricher().enrich(record(0, routeSection.kind, body));
  assert.equal(e.route!.prefix, '2001:db8::/32');
  assert.match(text.formatEvent(e), / route main unreachable \(EHOSTUNREACH\) \(2001:db8::\/32\)$/);
  const err = struct(routeSection.layout.size, (v, b) => {
    v.setUint32(R.table, 254, true);
    v.setInt32(R.error, -11, true);
    b[R.family] = 4;
    b[R.type] = 0xff;
    b[R.prefix_len] = 0xff;
  });
  assert.match(text.formatEvent(enricher().enrich(record(0, routeSection.kind, err))), / route main error EAGAIN$/);
});

test('a neighbour that never answered: NUD names, probes, no link-layer address; JSON and back, valid', () => {
  const body = struct(neighSection.layout.size, (v, b) => {
    b.set([192, 0, 2, 99], N.address);
    v.setUint32(N.ifindex, 2, true);
    v.setUint32(N.probes, 3, true);
    v.setInt32(N.error, 0, true);
    b[N.event] = 4;
    b[N.family] = 4;
    b[N.state] = 0x20;
    b[N.flags] = 2;
  });
  const e = enricher().enrich(record(1, neighSection.kind, body));
  assert.deepEqual(e.neigh, {
    event: 'timer', family: 4, address: '192.0.2.99', ifindex: 2, iface: 'veth0', lladdr: null, state: 'FAILED', oldState: null, probes: 3, error: null,
  });
  assert.match(text.formatEvent(e), / neigh timer 192\.0\.2\.99 dev veth0 FAILED probes=3$/);
  const json = toJsonRecord(e, { stack: false });
  assert.equal(validateJsonLine(JSON.stringify(json)), null);
  assert.deepEqual(eventFromJson(json as never, 0n).neigh, e.neigh);
  // An update: the state before it, the address it sets.
  const update = struct(neighSection.layout.size, (_v, b) => {
    b.set([192, 0, 2, 1], N.address);
    b.set([2, 0, 0, 0, 0, 1], N.lladdr);
    b[N.lladdr_len] = 6;
    b[N.event] = 2;
    b[N.family] = 4;
    b[N.state] = 0x02;
    b[N.old_state] = 0x01;
    b[N.flags] = 1;
  });
  assert.match(text.formatEvent(enricher().enrich(record(1, neighSection.kind, update))), / neigh update 192\.0\.2\.1 dev if0 INCOMPLETE→REACHABLE lladdr 02:00:00:00:00:01 probes=0$/);
  assert.equal(nudName(0), 'NONE');
  assert.equal(nudName(0x80), 'PERMANENT');
});

test('the route object\'s slots: each program\'s point and kind', () => {
  const b = encodeRouteSlots([{ pointId: 5, kind: RoutePointKind.fib6 }], 9);
  assert.equal(b.length, ROUTE_POINT_LAYOUT.size * 9);
  assert.equal(b.readUInt32LE(ROUTE_POINT_LAYOUT.fields.point_id), 5);
  assert.equal(b.readUInt32LE(ROUTE_POINT_LAYOUT.fields.kind), 2);
  assert.throws(() => encodeRouteSlots(Array(10).fill({ pointId: 0, kind: 1 }), 9), RangeError);
  assert.notEqual(sectionMask(['route']) & (1 << routeSection.kind), 0);
});

test('the points are planned where the kernel has them; a missing one is said, the optional release is not', () => {
  const kernel = {
    tracepoints: new Map([['fib_table_lookup', []], ['neigh_update', []], ['fib6_table_lookup', null]]),
    features: { tracing: true, tcx: true, netfilter: true }, functions: null, namespaces: [],
  } as unknown as KernelView;
  const sel: AttachSelection = {
    families: new Set(), filterFunc: null, afterNat: false, backend: 'auto', functionsAsked: false, tracePrograms: new Set(), trackSkb: false,
    decisions: { route: true, neigh: true },
  };
  const plan = planProbes(sel, kernel);
  assert.deepEqual(plan.decisions.map((d) => d.name), ['fib:fib_table_lookup', 'neigh:neigh_update']);
  assert.ok(plan.notes.some((n) => /--output-route: tracepoint fib6:fib6_table_lookup: not in this kernel/.test(n)));
  assert.ok(plan.notes.some((n) => /neigh:neigh_create/.test(n)));
  assert.ok(!plan.notes.some((n) => /neigh_cleanup_and_release/.test(n)));
  assert.deepEqual(planProbes({ ...sel, decisions: { route: false, neigh: false } }, kernel).decisions, []);
  assert.deepEqual(planProbes({ ...sel, filterFunc: /^fib:/ }, kernel).decisions.map((d) => d.name), ['fib:fib_table_lookup']);
});
