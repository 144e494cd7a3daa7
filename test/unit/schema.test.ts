import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { jsonLine } from '../../src/output/json.js';
import type { TraceEvent } from '../../src/output/event.js';
import { validateJsonLine } from '../helpers/schema.js';

const root = new URL('../../../', import.meta.url);
const lines = readFileSync(new URL('fixtures/golden/basic.jsonl', root), 'utf8').split('\n').filter(Boolean);
const eventLine = lines.find((l) => !l.includes('"type":"lost"'))!;
const lostLine = lines.find((l) => l.includes('"type":"lost"'))!;

/** The first event line, changed by `edit`, as a line again. */
function mutated(line: string, edit: (r: Record<string, unknown>) => void): string {
  const r = JSON.parse(line) as Record<string, unknown>;
  edit(r);
  return JSON.stringify(r);
}

test('every line of the golden JSON output validates', () => {
  assert.ok(lines.length >= 2);
  for (const line of lines) assert.equal(validateJsonLine(line), null, line);
});

test('lines without stacks, and zero values, validate', () => {
  const raw = JSON.parse(readFileSync(new URL('fixtures/events/basic.json', root), 'utf8')) as {
    events: Array<Omit<TraceEvent, 'timeNs' | 'sinceStartNs' | 'skb'> & { timeNs: string; sinceStartNs: string; skb: string }>;
  };
  for (const r of raw.events) {
    const e: TraceEvent = { ...r, timeNs: BigInt(r.timeNs), sinceStartNs: BigInt(r.sinceStartNs), skb: BigInt(r.skb) };
    assert.equal(validateJsonLine(jsonLine(e, { stack: false })), null);
    const zero = { ...e, cpu: 0, pid: 0, netns: 0, mark: 0, ifindex: 0, ifname: '', mtu: 0, len: 0, protocol: 0 };
    assert.equal(validateJsonLine(jsonLine(zero, { stack: false })), null);
  }
});

test('a conntrack section validates', () => {
  const ct = { source: 'nfct', found: true, state: 'ESTABLISHED', dir: 'reply', id: '0xffff888104870900',
    status: ['SEEN_REPLY', 'ASSURED', 'CONFIRMED', 'DST_NAT', 'DST_NAT_DONE'], zone: 0, mark: 0, error: 0,
    orig: { saddr: '192.0.2.1', daddr: '203.0.113.1', sport: 43210, dport: 80, proto: 'tcp' },
    reply: { saddr: '198.51.100.2', daddr: '192.0.2.1', sport: 8080, dport: 43210, proto: 'tcp' } };
  assert.equal(validateJsonLine(mutated(eventLine, (r) => (r['ct'] = ct))), null);
  const untracked = { ...ct, state: 'UNTRACKED', dir: 'orig', id: '0x0000000000000000', status: [], orig: null, reply: null };
  assert.equal(validateJsonLine(mutated(eventLine, (r) => (r['ct'] = untracked))), null);
  const bad = mutated(eventLine, (r) => (r['ct'] = { ...ct, zone: 'zero' }));
  assert.match(validateJsonLine(bad) ?? '', /\/ct\/zone must be integer/);
  const numeric = mutated(eventLine, (r) => (r['ct'] = { ...ct, status: 0x18a }));
  assert.match(validateJsonLine(numeric) ?? '', /\/ct\/status must be array/);
});

test('a missing field fails', () => {
  for (const field of ['v', 'time', 'skb', 'netns_name', 'tuple', 'func', 'probe', 'drop_reason', 'caller']) {
    const err = validateJsonLine(mutated(eventLine, (r) => delete r[field]));
    assert.match(err ?? '', new RegExp(`must have required property '${field}'`), field);
  }
  const noCount = mutated(lostLine, (r) => delete r['count']);
  assert.match(validateJsonLine(noCount) ?? '', /must have required property 'count'/);
});

test('a wrong type fails', () => {
  const cases: Array<[string, (r: Record<string, unknown>) => void, RegExp]> = [
    ['cpu as string', (r) => (r['cpu'] = '2'), /\/cpu must be integer/],
    ['mark negative', (r) => (r['mark'] = -1), /\/mark must be >= 0/],
    ['mark over 32 bits', (r) => (r['mark'] = 2 ** 32), /\/mark must be <= 4294967295/],
    ['v 2', (r) => (r['v'] = 2), /\/v must be equal to constant/],
    ['skb as number', (r) => (r['skb'] = 1), /\/skb must be string/],
    ['skb not hex', (r) => (r['skb'] = '0xffff88800zzz3e00'), /\/skb must match pattern/],
    ['time in ms', (r) => (r['time'] = '2026-11-27T05:30:00.123Z'), /\/time must match pattern/],
    ['drop_reason as number', (r) => (r['drop_reason'] = 2), /\/drop_reason must be string,null/],
    ['tuple as string', (r) => (r['tuple'] = '192.0.2.1'), /\/tuple must be (object|null)/],
    ['tuple port out of range', (r) => ((r['tuple'] as Record<string, unknown>)['sport'] = 70000), /\/tuple\/sport must be <= 65535/],
    ['tuple proto name', (r) => ((r['tuple'] as Record<string, unknown>)['proto'] = 'sctp'), /\/tuple\/proto/],
    ['tuple flags', (r) => ((r['tuple'] as Record<string, unknown>)['flags'] = 'SYN,ACK'), /\/tuple\/flags must match pattern/],
    ['probe type', (r) => ((r['probe'] as Record<string, unknown>)['type'] = 'uprobe'), /\/probe\/type must be equal to one of/],
    ['stack of numbers', (r) => (r['stack'] = [1]), /\/stack\/0 must be string/],
  ];
  for (const [what, edit, want] of cases) {
    assert.match(validateJsonLine(mutated(eventLine, edit)) ?? '', want, what);
  }
  assert.match(validateJsonLine(mutated(lostLine, (r) => (r['total'] = 1.5))) ?? '', /\/total must be integer/);
  assert.match(validateJsonLine(mutated(lostLine, (r) => (r['type'] = 'gone'))) ?? '', /must NOT have additional properties \(type\)/);
});

test('unknown top-level fields fail', () => {
  assert.match(validateJsonLine(mutated(eventLine, (r) => (r['extra'] = 1))) ?? '', /must NOT have additional properties \(extra\)/);
  assert.match(validateJsonLine(mutated(lostLine, (r) => (r['skb'] = '0x0'))) ?? '', /must NOT have additional properties \(skb\)/);
  assert.match(validateJsonLine(mutated(eventLine, (r) => ((r['probe'] as Record<string, unknown>)['id'] = 3))) ?? '', /additional properties \(id\)/);
});

test('what is not one JSON object fails', () => {
  assert.match(validateJsonLine('{"v":1,') ?? '', /^not JSON/);
  assert.notEqual(validateJsonLine('[]'), null);
  assert.notEqual(validateJsonLine('null'), null);
});
