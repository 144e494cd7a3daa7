import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { BatchedWriter } from '../../src/output/stream.js';
import { TextSink } from '../../src/output/line-sinks.js';
import { TextFormatter, formatLost, processColumn, skbColorIndex, type TextOptions } from '../../src/output/text.js';
import type { TraceEvent } from '../../src/output/event.js';

import { Collect, loadFixture, root } from '../helpers/fixtures.js';

const ESC = /\u001b\[/;
const { events, lost } = loadFixture();

const all: TextOptions = { tuple: true, meta: true, stack: true, caller: true, tcpFlags: true, timestamp: 'absolute', color: false };

test('golden: every column, stacks, callers, drop reasons, lost notice', async () => {
  const out = new Collect();
  const sink = new TextSink(new BatchedWriter(out, { isTTY: false }), { ...all, header: true });
  for (const e of events) sink.event(e);
  for (const n of lost) sink.lost(n);
  await sink.close();
  const golden = new URL('fixtures/golden/basic.txt', root);
  if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(golden, out.text);
  assert.equal(out.text, readFileSync(golden, 'utf8'));
});

test('header follows pwru order for each option set', () => {
  const base: TextOptions = { tuple: false, meta: false, stack: false, caller: false, tcpFlags: false, timestamp: 'none', color: false };
  const words = (o: Partial<TextOptions>): string[] => new TextFormatter({ ...base, ...o }).header().split(/ +/);
  assert.deepEqual(words({}), ['SKB', 'CPU', 'PROCESS', 'FUNC']);
  assert.deepEqual(words({ tuple: true }), ['SKB', 'CPU', 'PROCESS', 'TUPLE', 'FUNC']);
  assert.deepEqual(words({ meta: true, tuple: true }), [
    'SKB', 'CPU', 'PROCESS', 'NETNS', 'MARK/x', 'IFACE', 'PROTO', 'MTU', 'LEN', 'TUPLE', 'FUNC',
  ]);
  assert.deepEqual(words({ caller: true, timestamp: 'current' }), ['TIME', 'SKB', 'CPU', 'PROCESS', 'FUNC', 'CALLER']);
});

test('columns line up with the header', () => {
  const f = new TextFormatter({ ...all, stack: false, timestamp: 'none' });
  const header = f.header();
  const line = f.formatEvent(events[0]!);
  for (const col of ['CPU', 'PROCESS', 'NETNS', 'MARK/x', 'IFACE', 'PROTO', 'MTU', 'LEN', 'TUPLE', 'FUNC', 'CALLER']) {
    const at = header.indexOf(col);
    assert.equal(line[at - 1], ' ', `column ${col} starts after a space`);
    assert.notEqual(line[at], ' ', `column ${col} has a value at its start`);
  }
});

test('no trailing spaces and no escape codes without colour', () => {
  const f = new TextFormatter({ ...all, timestamp: 'relative' });
  for (const s of [f.header(), ...events.map((e) => f.formatEvent(e)), f.formatLost(lost[0]!)]) {
    assert.doesNotMatch(s, ESC);
    for (const line of s.split('\n')) assert.equal(line, line.trimEnd());
  }
});

test('colour: escape codes present, header bold, drop reason red', () => {
  const f = new TextFormatter({ ...all, color: true, colorLevel: 1 });
  assert.match(f.header(), /^\u001b\[1m/);
  for (const e of events) assert.match(f.formatEvent(e), ESC);
  const drop = events.find((e) => e.dropReason !== null)!;
  assert.ok(f.formatEvent(drop).includes('\u001b[31mreason=NETFILTER_DROP\u001b[39m'));
  assert.match(f.formatLost(lost[0]!), ESC);
  // Without the escapes the line is the plain one.
  const plain = new TextFormatter({ ...all, color: false });
  const strip = (s: string): string => s.replace(/\u001b\[[0-9;]*m/g, '');
  for (const e of events) assert.equal(strip(f.formatEvent(e)), plain.formatEvent(e));
});

test('colour: same skb same colour, different skbs mostly different', () => {
  const f = new TextFormatter({ ...all, color: true, colorLevel: 3 });
  const skbColour = (e: TraceEvent): string => /^(?:\S+ )?(\u001b\[[0-9;]*m)0x/.exec(f.formatEvent(e))![1]!;
  const sameSkb = events.filter((e) => e.skb === events[0]!.skb);
  assert.ok(sameSkb.length > 1);
  assert.equal(new Set(sameSkb.map(skbColour)).size, 1);

  // Slab-allocated skbs: 256-byte aligned neighbours.
  const base = 0xffff8880045c0000n;
  let differ = 0;
  const seen = new Set<number>();
  for (let i = 0n; i < 200n; i++) {
    const a = skbColorIndex(base + i * 0x100n);
    const b = skbColorIndex(base + (i + 1n) * 0x100n);
    seen.add(a);
    if (a !== b) differ++;
  }
  assert.ok(differ >= 150, `neighbouring skbs differ in ${differ}/200`);
  assert.equal(seen.size, 10, 'every palette colour gets used');
  assert.equal(skbColorIndex(base), skbColorIndex(base));
});

test('process column: comm:pid, long names cut from the left with ~', () => {
  assert.equal(processColumn('curl', 4242), 'curl:4242');
  assert.equal(processColumn('systemd-resolved', 612), '~md-resolved:612');
  assert.equal(processColumn('systemd-resolved', 612).length, 16);
  assert.equal(processColumn('abcdefghijk', 1234), 'abcdefghijk:1234');
});

test('stack frames: one indented line each, only with the stack option', () => {
  const drop = events.find((e) => e.stack !== null && e.stack.length > 0)!;
  const withStack = new TextFormatter({ ...all, timestamp: 'none' }).formatEvent(drop).split('\n');
  assert.equal(withStack.length, 1 + drop.stack!.length);
  assert.deepEqual(withStack.slice(1), drop.stack!.map((s) => '    ' + s));
  const without = new TextFormatter({ ...all, stack: false }).formatEvent(drop);
  assert.ok(!without.includes('\n'));
});

test('minimal columns', () => {
  const f = new TextFormatter({ tuple: false, meta: false, stack: false, caller: false, tcpFlags: false, timestamp: 'none', color: false });
  assert.equal(f.header(), 'SKB                CPU PROCESS          FUNC');
  assert.equal(f.formatEvent(events[0]!), '0xffff8880045c3e00 2   curl:4242        net_dev_queue');
  assert.equal(
    f.formatEvent(events[4]!),
    '0xffff8880045c3e00 2   curl:4242        kfree_skb reason=NETFILTER_DROP',
  );
});

test('lost notice', () => {
  assert.equal(
    formatLost({ timeNs: 0n, count: 12, total: 34 }),
    '!! lost 12 records (total 34): ring full; raise --ring-size or narrow the filter',
  );
  assert.match(formatLost({ timeNs: 0n, count: 1, total: 1 }), /^!! lost 1 record \(total 1\)/);
  assert.equal(formatLost({ timeNs: 0n, count: 3, total: 5, source: 'nft' }),
    '!! lost 3 nft trace events (total 5): nftables\' trace socket full; narrow the filter (the --filter-* flags limit what nftables traces)');
});

test('cached columns follow every value they are built from', () => {
  const f = new TextFormatter({ ...all, stack: false, timestamp: 'none' });
  const plain = events[0]!;
  const variants: Array<[Partial<TraceEvent>, string]> = [
    [{ comm: 'swapper/1', pid: 0 }, ' swapper/1:0 '],
    [{ comm: 'swapper/3', pid: 0 }, ' swapper/3:0 '],
    [{ comm: 'purl' }, ' purl:4242 '],
    [{ cpu: 17 }, ' 17  curl:4242'],
    [{ cpu: 0 }, ' 0   curl:4242'],
    [{ len: 1514 }, ' 1500  1514  192.0.2.1'],
    [{ len: 200000 }, ' 1500  200000 192.0.2.1'],
    [{ mtu: 9000 }, ' 9000  74    '],
    [{ mark: 0xffffffff }, ' 0xffffffff veth-cli:7 '],
    [{ ifname: 'eth1' }, ' eth1:7           0x0800 '],
    [{ protocol: 0x86dd }, ' 0x86dd 1500 '],
    [{ netns: 4026532449 }, ' 4026532449 0x0 '],
    [{ tuple: { ...plain.tuple!, dport: 8080 } }, '192.0.2.2:8080(tcp:SYN)'],
    [{ tuple: { ...plain.tuple!, tcpFlags: 0x12 } }, '192.0.2.2:80(tcp:SYN|ACK)'],
    [{ tuple: null }, ' ' + ' '.repeat(48) + ' net_dev_queue'],
    [{ func: 'tc:egress', caller: 'sch_direct_xmit+0x2a' }, ' tc:egress                sch_direct_xmit+0x2a'],
    [{ func: 'tc:egress', caller: null }, ' tc:egress                -'],
    [{ dropReason: 'NO_SOCKET' }, ' - reason=NO_SOCKET'],
  ];
  // Twice over, so the second round reads what the first one cached.
  for (let round = 0; round < 2; round++) {
    for (const [change, expected] of variants) {
      const line = f.formatEvent({ ...plain, ...change });
      assert.ok(line.includes(expected), `${JSON.stringify(change)}: ${line}`);
      assert.ok(f.formatEvent(plain).includes(' 2   curl:4242        4026531840 0x0        veth-cli:7       0x0800 1500  74    192.0.2.1:43210->192.0.2.2:80(tcp:SYN)'));
    }
  }
});

test('colour: FUNC takes the colour of its skb, also when the point repeats', () => {
  const f = new TextFormatter({ ...all, stack: false, timestamp: 'none', color: true, colorLevel: 3 });
  const base = events[0]!;
  for (let round = 0; round < 2; round++) {
    for (let i = 0n; i < 20n; i++) {
      const line = f.formatEvent({ ...base, skb: base.skb + i * 0x100n });
      const m = /^(\u001b\[[0-9;]*m)0x\S+\u001b\[[0-9;]*m .* (\u001b\[[0-9;]*m)net_dev_queue/.exec(line);
      assert.ok(m, line);
      assert.equal(m[2], m[1]);
    }
  }
});

test('tuple change and conntrack go between CALLER and the drop reason', () => {
  const f = new TextFormatter({ ...all, stack: false, timestamp: 'none', ct: true });
  const drop = events.find((e) => e.dropReason !== null && e.tuple !== null)!;
  const e: TraceEvent = {
    ...drop,
    tupleBefore: { ...drop.tuple!, daddr: '203.0.113.1' },
    ct: { source: 'nfct', found: true, state: 'NEW', dir: 'orig', id: 1n, status: [], zone: 0, mark: 0, error: 0, orig: null, reply: null },
  };
  const line = f.formatEvent(e);
  assert.match(line, / nf_hook_slow\+0x91 DNAT 203\.0\.113\.1:\d+ \u2192 192\.0\.2\.2:\d+ ct:NEW reason=NETFILTER_DROP$/);
  // The same point without them is unchanged.
  assert.match(f.formatEvent(drop), / nf_hook_slow\+0x91 reason=NETFILTER_DROP$/);
});

test('VLAN ids after FUNC, outer first, with the tuple or the metadata columns', () => {
  const e: TraceEvent = { ...events[0]!, caller: null, dropReason: null, vlan: [200, 100] };
  for (const cols of [{ tuple: true, meta: false }, { tuple: false, meta: true }]) {
    const f = new TextFormatter({ ...all, ...cols, stack: false, caller: false, timestamp: 'none' });
    assert.match(f.formatEvent(e), / net_dev_queue vlan=200\.100$/);
    assert.match(f.formatEvent({ ...e, vlan: [0] }), / net_dev_queue vlan=0$/);
    assert.match(f.formatEvent({ ...e, vlan: null }), / net_dev_queue$/);
  }
  const bare = new TextFormatter({ ...all, tuple: false, meta: false, stack: false, caller: false, timestamp: 'none' });
  assert.match(bare.formatEvent(e), / net_dev_queue$/);
});
