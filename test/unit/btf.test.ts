import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Btf, BtfKind } from '../../src/bpf/btf/btf.js';
import { vmlinuxBtf } from '../../src/bpf/btf/vmlinux.js';
import { spellType } from '../../src/bpf/btf/spell.js';
import { functionsTakingPointerTo, tracepointProto } from '../../src/kernel/btf.js';
import { eventBtf } from '../helpers/probe-btf.js';
import { readElfSection } from '../helpers/elf.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const VMLINUX = '/sys/kernel/btf/vmlinux';
const PROBE = join(root, 'probes/build/tracepoint.bpf.o');

/** Assembles a little-endian BTF blob from raw type records. */
class BtfBuilder {
  private readonly strings: string[] = [];
  private readonly strOffsets = new Map<string, number>();
  private strLen = 0;
  private readonly words: number[] = [];
  private nextId: number;

  /** For split BTF, ids and string offsets continue from the base. */
  constructor(firstId = 1, private readonly strBase = 0) {
    this.nextId = firstId;
    if (strBase === 0) {
      this.strings.push('');
      this.strOffsets.set('', 0);
      this.strLen = 1;
    }
  }

  str(s: string): number {
    let off = this.strOffsets.get(s);
    if (off === undefined) {
      off = this.strBase + this.strLen;
      this.strOffsets.set(s, off);
      this.strings.push(s);
      this.strLen += Buffer.byteLength(s) + 1;
    }
    return off;
  }

  type(name: string, kind: number, vlen: number, kindFlag: boolean, sizeOrType: number, extra: number[] = []): number {
    const info = ((kindFlag ? 1 : 0) << 31) | (kind << 24) | vlen;
    this.words.push(name ? this.str(name) : 0, info >>> 0, sizeOrType >>> 0, ...extra.map((w) => w >>> 0));
    return this.nextId++;
  }

  build(): Uint8Array {
    const strs = Buffer.from(this.strings.map((s) => `${s}\0`).join(''));
    const typeLen = this.words.length * 4;
    const out = Buffer.alloc(24 + typeLen + strs.length);
    out.writeUInt16LE(0xeb9f, 0);
    out.writeUInt8(1, 2);
    out.writeUInt32LE(24, 4);
    out.writeUInt32LE(0, 8);
    out.writeUInt32LE(typeLen, 12);
    out.writeUInt32LE(typeLen, 16);
    out.writeUInt32LE(strs.length, 20);
    this.words.forEach((w, i) => out.writeUInt32LE(w, 24 + i * 4));
    strs.copy(out, 24 + typeLen);
    // An odd offset into a larger buffer, as a section inside a file would be.
    const padded = new Uint8Array(out.length + 3);
    padded.set(out, 3);
    return padded.subarray(3);
  }
}

const K = BtfKind;
const INT_SIGNED = 1 << 24;

function syntheticBlob(): Uint8Array {
  const b = new BtfBuilder();
  const int = b.type('int', K.INT, 0, false, 4, [INT_SIGNED | 32]); // 1
  const fooPtr = b.type('', K.PTR, 0, false, 3); // 2
  // kind_flag: member offsets carry (bitfield size << 24) | bit offset.
  const foo = b.type('foo', K.STRUCT, 3, true, 8, [
    b.str('a'), int, (3 << 24) | 0,
    b.str('b'), int, (5 << 24) | 3,
    b.str('c'), int, 32,
  ]); // 3
  const fooT = b.type('foo_t', K.TYPEDEF, 0, false, foo); // 4
  b.type('', K.CONST, 0, false, fooT); // 5
  b.type('color', K.ENUM, 2, true, 4, [b.str('RED'), -1, b.str('GREEN'), 2]); // 6
  b.type('big', K.ENUM64, 2, false, 8, [b.str('SMALL'), 7, 0, b.str('HUGE'), 1, 0xffffffff]); // 7
  const proto = b.type('', K.FUNC_PROTO, 2, false, int, [b.str('x'), fooPtr, b.str('y'), int]); // 8
  b.type('do_foo', K.FUNC, 1, false, proto); // 9
  const arr = b.type('', K.ARRAY, 0, false, 0, [int, int, 4]); // 10
  b.type('btf_trace_foo_tp', K.TYPEDEF, 0, false, 12); // 11
  b.type('', K.PTR, 0, false, 13); // 12
  b.type('', K.FUNC_PROTO, 2, false, 0, [0, 14, 0, fooPtr]); // 13
  b.type('', K.PTR, 0, false, 0); // 14: void *
  b.type('bar', K.FWD, 0, true, 0); // 15
  const anon = b.type('', K.UNION, 2, false, 4, [b.str('u'), int, 0, b.str('w'), int, 0]); // 16
  b.type('outer', K.STRUCT, 3, false, 24, [b.str('x'), int, 0, 0, anon, 32, b.str('arr'), arr, 64]); // 17
  const v = b.type('v', K.VAR, 0, false, int, [1]); // 18
  b.type('.data', K.DATASEC, 1, false, 4, [v, 0, 4]); // 19
  b.type('double', K.FLOAT, 0, false, 8); // 20
  b.type('tag', K.DECL_TAG, 0, false, 9, [-1]); // 21
  const tagged = b.type('user', K.TYPE_TAG, 0, false, foo); // 22
  b.type('', K.PTR, 0, false, tagged); // 23
  b.type('', K.FUNC_PROTO, 2, false, int, [b.str('fmt'), fooPtr, 0, 0]); // 24: variadic
  b.type('', K.VOLATILE, 0, false, int); // 25
  b.type('', K.RESTRICT, 0, false, fooPtr); // 26
  b.type('', K.PTR, 0, false, proto); // 27: function pointer
  b.type('other', K.FUNC, 0, false, 24); // 28: struct foo * via fmt, position 1
  return b.build();
}

test('synthetic BTF: header and every kind decode', () => {
  const btf = Btf.parse(syntheticBlob());
  assert.equal(btf.header.magic, 0xeb9f);
  assert.equal(btf.header.version, 1);
  assert.equal(btf.header.hdrLen, 24);
  assert.equal(btf.maxId, 28);
  assert.deepEqual(btf.type(0), { kind: 'VOID', id: 0, name: '' });

  const int = btf.typeAs(1, 'INT');
  assert.equal(int.name, 'int');
  assert.equal(int.size, 4);
  assert.equal(int.bits, 32);
  assert.equal(int.signed, true);

  const foo = btf.typeAs(3, 'STRUCT');
  assert.equal(foo.size, 8);
  assert.deepEqual(foo.members, [
    { name: 'a', type: 1, bitOffset: 0, bitSize: 3 },
    { name: 'b', type: 1, bitOffset: 3, bitSize: 5 },
    { name: 'c', type: 1, bitOffset: 32, bitSize: 0 },
  ]);

  const color = btf.typeAs(6, 'ENUM');
  assert.equal(color.signed, true);
  assert.deepEqual(color.values, [{ name: 'RED', value: -1 }, { name: 'GREEN', value: 2 }]);

  const big = btf.typeAs(7, 'ENUM64');
  assert.deepEqual(big.values, [{ name: 'SMALL', value: 7n }, { name: 'HUGE', value: 0xffffffff00000001n }]);

  const proto = btf.typeAs(8, 'FUNC_PROTO');
  assert.equal(proto.ret, 1);
  assert.deepEqual(proto.params, [{ name: 'x', type: 2 }, { name: 'y', type: 1 }]);
  assert.equal(proto.variadic, false);
  assert.deepEqual(btf.type(9), { kind: 'FUNC', id: 9, name: 'do_foo', type: 8, linkage: 'global' });
  assert.deepEqual(btf.type(10), { kind: 'ARRAY', id: 10, name: '', type: 1, indexType: 1, nelems: 4 });
  assert.deepEqual(btf.type(15), { kind: 'FWD', id: 15, name: 'bar', fwdKind: 'union' });
  assert.deepEqual(btf.type(18), { kind: 'VAR', id: 18, name: 'v', type: 1, linkage: 'global' });
  assert.deepEqual(btf.type(19), { kind: 'DATASEC', id: 19, name: '.data', size: 4, vars: [{ type: 18, offset: 0, size: 4 }] });
  assert.deepEqual(btf.type(20), { kind: 'FLOAT', id: 20, name: 'double', size: 8 });
  assert.deepEqual(btf.type(21), { kind: 'DECL_TAG', id: 21, name: 'tag', type: 9, componentIdx: -1 });
  assert.deepEqual(btf.type(22), { kind: 'TYPE_TAG', id: 22, name: 'user', type: 3 });
  const variadic = btf.typeAs(24, 'FUNC_PROTO');
  assert.equal(variadic.variadic, true);
  assert.equal(variadic.params.length, 1);

  assert.throws(() => btf.type(29), /no type 29/);
  assert.throws(() => btf.typeAs(1, 'PTR'), /is INT, not PTR/);
});

test('synthetic BTF: names, resolve, sizeof, typeName', () => {
  const btf = Btf.parse(syntheticBlob());
  assert.deepEqual(btf.findByName('foo'), [3]);
  assert.deepEqual(btf.findByName('foo', 'STRUCT'), [3]);
  assert.deepEqual(btf.findByName('foo', 'TYPEDEF'), []);
  assert.deepEqual(btf.findByName('nope'), []);
  assert.equal(btf.findOne('foo_t'), 4);

  assert.equal(btf.resolve(5), 3); // const -> typedef -> struct
  assert.equal(btf.resolve(25), 1);
  assert.equal(btf.resolve(2), 2); // a pointer is not a modifier

  assert.equal(btf.sizeof(1), 4);
  assert.equal(btf.sizeof(2), 8);
  assert.equal(btf.sizeof(5), 8);
  assert.equal(btf.sizeof(6), 4);
  assert.equal(btf.sizeof(7), 8);
  assert.equal(btf.sizeof(10), 16);
  assert.equal(btf.sizeof(17), 24);
  assert.equal(btf.sizeof(18), 4);
  assert.throws(() => btf.sizeof(0), /no size/);
  assert.throws(() => btf.sizeof(9), /no size/);
  assert.throws(() => btf.sizeof(15), /no size/);

  assert.equal(spellType(btf, 0), 'void');
  assert.equal(spellType(btf, 1), 'int');
  assert.equal(spellType(btf, 2), 'struct foo *');
  assert.equal(spellType(btf, 3), 'struct foo');
  assert.equal(spellType(btf, 4), 'foo_t');
  assert.equal(spellType(btf, 5), 'const foo_t');
  assert.equal(spellType(btf, 6), 'enum color');
  assert.equal(spellType(btf, 7), 'enum big');
  assert.equal(spellType(btf, 10), 'int[4]');
  assert.equal(spellType(btf, 14), 'void *');
  assert.equal(spellType(btf, 15), 'union bar');
  assert.equal(spellType(btf, 16), 'union (anon)');
  assert.equal(spellType(btf, 23), 'struct foo *');
  assert.equal(spellType(btf, 24), 'int(struct foo *, ...)');
  assert.equal(spellType(btf, 25), 'volatile int');
  assert.equal(spellType(btf, 26), 'struct foo * restrict');
  assert.equal(spellType(btf, 27), 'int (*)(struct foo *, int)');
});

test('synthetic BTF: tracepoint, enum, layout and function helpers', () => {
  const btf = Btf.parse(syntheticBlob());
  assert.deepEqual(tracepointProto(btf, 'foo_tp'), [{ index: 0, typeId: 2, typeName: 'struct foo *' }]);
  assert.equal(tracepointProto(btf, 'missing'), null);

  assert.deepEqual(btf.enumValues('color'), new Map([[-1, 'RED'], [2, 'GREEN']]));
  assert.deepEqual(btf.enumValues('big'), new Map([[7, 'SMALL'], [Number(0xffffffff00000001n), 'HUGE']]));
  assert.equal(btf.enumValues('foo'), null);

  const outer = btf.structLayout('outer');
  assert.ok(outer);
  assert.equal(outer.size, 24);
  assert.deepEqual([...outer.members.keys()], ['x', 'u', 'w', 'arr']);
  assert.deepEqual(outer.members.get('u'), { offset: 4, bitOffset: 32, bitSize: 0, typeId: 1 });
  assert.deepEqual(outer.members.get('arr'), { offset: 8, bitOffset: 64, bitSize: 0, typeId: 10 });
  const foo = btf.structLayout('foo');
  assert.deepEqual(foo?.members.get('b'), { offset: 0, bitOffset: 3, bitSize: 5, typeId: 1 });
  assert.equal(btf.structLayout('color'), null);

  assert.deepEqual(functionsTakingPointerTo(btf, 'foo'), [
    { name: 'do_foo', id: 9, position: 1 },
    { name: 'other', id: 28, position: 1 },
  ]);
  assert.deepEqual(functionsTakingPointerTo(btf, 'outer'), []);
  assert.deepEqual([...btf.idsOfKind('FUNC')], [9, 28]);
});

test('synthetic BTF: split BTF continues ids and strings of its base', () => {
  const base = Btf.parse(syntheticBlob());
  const b = new BtfBuilder(base.maxId + 1, base.header.strLen);
  const id = b.type('mod_s', K.STRUCT, 1, false, 8, [b.str('f'), 2, 0]);
  const split = Btf.parse(b.build(), base);
  assert.equal(id, 29);
  assert.equal(split.firstId, 29);
  assert.equal(split.maxId, 29);
  assert.equal(spellType(split, 29), 'struct mod_s');
  assert.equal(spellType(split, 2), 'struct foo *');
  assert.deepEqual(split.findByName('mod_s'), [29]);
  assert.deepEqual(split.findByName('foo'), [3]);
  // Base types first, then the module's; other kinds and names left out.
  assert.deepEqual([...split.namedWithPrefix('', 'STRUCT')].filter(([n]) => n === 'foo' || n === 'mod_s'), [['foo', [3]], ['mod_s', [29]]]);
  assert.deepEqual([...split.namedWithPrefix('mod_', 'STRUCT')], [['mod_s', [29]]]);
  assert.deepEqual([...split.namedWithPrefix('mod_', 'TYPEDEF')], []);
  assert.equal(split.structLayout('mod_s')?.members.get('f')?.typeId, 2);
});

test('synthetic BTF: a Buffer at an odd offset (a section in a file read whole) parses as a Uint8Array does', () => {
  const blob = syntheticBlob();
  const file = Buffer.alloc(blob.length + 1);
  file.set(blob, 1);
  const fromBuffer = Btf.parse(file.subarray(1));
  const plain = Btf.parse(blob);
  assert.equal(fromBuffer.ownCount, plain.ownCount);
  for (let id = 1; id <= plain.maxId; id++) assert.deepEqual(fromBuffer.type(id), plain.type(id));
});

test('BTF: malformed blobs are rejected', () => {
  const good = syntheticBlob();
  assert.throws(() => Btf.parse(new Uint8Array(10)), /too short/);
  const bad = good.slice();
  bad[0] = 0;
  assert.throws(() => Btf.parse(bad), /bad magic/);
  const be = good.slice();
  be[0] = 0xeb;
  be[1] = 0x9f;
  assert.throws(() => Btf.parse(be), /big-endian/);
  // Section lengths past the end.
  assert.throws(() => Btf.parse(good.subarray(0, good.length - 4)), /past the end/);
  // A type section that ends in the middle of a record.
  const cut = good.slice();
  new DataView(cut.buffer, cut.byteOffset).setUint32(12, 20, true);
  assert.throws(() => Btf.parse(cut), /truncated|extends past/);
  // Unknown kind 31.
  const unk = good.slice();
  unk[24 + 7] = 31;
  assert.throws(() => Btf.parse(unk), /unknown kind/);
});

const haveVmlinux = existsSync(VMLINUX);
let vmlinux: Btf | null = null;
let parseMs = 0;
if (haveVmlinux) {
  const t0 = performance.now();
  vmlinux = Btf.loadVmlinux();
  parseMs = performance.now() - t0;
}
const skipVm = haveVmlinux ? false : `${VMLINUX} not present`;

test(`vmlinux: ${vmlinux?.ownCount ?? 0} types parsed in ${parseMs.toFixed(1)} ms`, { skip: skipVm }, () => {
  const btf = vmlinux!;
  assert.ok(btf.ownCount > 10_000);
  assert.ok(parseMs < 1000, `parse took ${parseMs} ms`);
  const t0 = performance.now();
  const ids = btf.findByName('sk_buff', 'STRUCT');
  const indexMs = performance.now() - t0;
  assert.equal(ids.length, 1);
  assert.ok(indexMs < 1000, `name index took ${indexMs} ms`);
  // Every record decodes.
  const counts = new Map<string, number>();
  for (let id = 1; id <= btf.maxId; id++) {
    const kind = btf.type(id).kind;
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
  for (const kind of ['INT', 'PTR', 'ARRAY', 'STRUCT', 'UNION', 'ENUM', 'TYPEDEF', 'CONST', 'FUNC', 'FUNC_PROTO']) {
    assert.ok((counts.get(kind) ?? 0) > 0, `no ${kind}`);
  }
  // The kernel's, as pktpath's queries get it (mapped where the kernel lets it be), and read: the same types.
  const kernel = vmlinuxBtf()!;
  assert.equal(kernel.ownCount, btf.ownCount);
  assert.deepEqual(kernel.findByName('sk_buff', 'STRUCT'), ids);
  assert.deepEqual(kernel.type(ids[0]!), btf.type(ids[0]!));
});

test('vmlinux: the btf_trace_ typedefs found in one pass are the ones found by name', { skip: skipVm }, () => {
  const btf = vmlinux!;
  const byPrefix = btf.namedWithPrefix('btf_trace_', 'TYPEDEF');
  let typedefs = 0;
  for (const id of btf.idsOfKind('TYPEDEF')) if (btf.nameOf(id).startsWith('btf_trace_')) typedefs++;
  assert.ok(byPrefix.size > 100);
  assert.equal([...byPrefix.values()].reduce((n, ids) => n + ids.length, 0), typedefs);
  for (const name of ['btf_trace_kfree_skb', 'btf_trace_net_dev_xmit', 'btf_trace_consume_skb', ...[...byPrefix.keys()].slice(0, 20)]) {
    assert.deepEqual(byPrefix.get(name), btf.findByName(name, 'TYPEDEF'), name);
  }
});

test('vmlinux: kfree_skb tracepoint prototype', { skip: skipVm }, () => {
  const args = tracepointProto(vmlinux!, 'kfree_skb');
  assert.deepEqual(args?.map((a) => [a.index, a.typeName]), [
    [0, 'struct sk_buff *'],
    [1, 'void *'],
    [2, 'enum skb_drop_reason'],
    [3, 'struct sock *'],
  ]);
  assert.equal(vmlinux!.resolve(vmlinux!.typeAs(args![0]!.typeId, 'PTR').type), vmlinux!.findOne('sk_buff', 'STRUCT'));
});

test('vmlinux: skb argument positions of other tracepoints', { skip: skipVm }, () => {
  const btf = vmlinux!;
  const xmit = tracepointProto(btf, 'net_dev_start_xmit');
  assert.match(xmit?.[0]?.typeName ?? '', /^(const )?struct sk_buff \*$/);
  const deq = tracepointProto(btf, 'qdisc_dequeue');
  assert.equal(deq?.[3]?.typeName, 'struct sk_buff *');
  assert.notEqual(deq?.[0]?.typeName, 'struct sk_buff *');
  assert.equal(tracepointProto(btf, 'no_such_tracepoint_xyz'), null);
  assert.equal(tracepointProto(btf, ''), null);
});

test('vmlinux: skb_drop_reason values by name', { skip: skipVm }, () => {
  const reasons = vmlinux!.enumValues('skb_drop_reason');
  assert.ok(reasons);
  const byName = new Map([...reasons].map(([v, n]) => [n, v]));
  const nf = byName.get('SKB_DROP_REASON_NETFILTER_DROP');
  assert.ok(nf !== undefined && nf > 2 && nf < 64, `NETFILTER_DROP = ${nf}`);
  assert.equal(byName.get('SKB_DROP_REASON_NOT_SPECIFIED'), 2);
  assert.ok(reasons.size > 50);
  assert.equal(vmlinux!.enumValues('no_such_enum_xyz'), null);
});

test('vmlinux: struct sk_buff layout and common type names', { skip: skipVm }, () => {
  const btf = vmlinux!;
  const skb = btf.structLayout('sk_buff');
  assert.ok(skb);
  assert.ok(skb.size >= 200 && skb.size <= 512, `size ${skb.size}`);
  for (const name of ['len', 'mark', 'head', 'data', 'dev', 'protocol']) {
    const m = skb.members.get(name);
    assert.ok(m, `no member ${name}`);
    assert.ok(m.offset + btf.sizeof(m.typeId) <= skb.size);
  }
  assert.equal(spellType(btf, skb.members.get('len')!.typeId), 'unsigned int');
  assert.equal(spellType(btf, skb.members.get('head')!.typeId), 'unsigned char *');
  assert.equal(spellType(btf, skb.members.get('dev')!.typeId), 'struct net_device *');
  assert.equal(btf.sizeof(skb.members.get('mark')!.typeId), 4);
  assert.equal(btf.sizeof(skb.id), skb.size);
  assert.ok(!skb.members.has(''));

  const u32 = btf.findOne('u32', 'TYPEDEF')!;
  assert.equal(spellType(btf, u32), 'u32');
  assert.equal(btf.sizeof(u32), 4);
  assert.equal(spellType(btf, btf.resolve(u32)), 'unsigned int');
});

test('vmlinux: functions taking struct sk_buff *', { skip: skipVm }, () => {
  const btf = vmlinux!;
  const t0 = performance.now();
  const fns = functionsTakingPointerTo(btf, 'sk_buff');
  const ms = performance.now() - t0;
  assert.ok(fns.length > 500, `${fns.length} functions`);
  assert.ok(ms < 2000, `${ms} ms`);
  const byName = new Map(fns.map((f) => [f.name, f.position]));
  assert.equal(byName.get('ip_rcv'), 1);
  assert.equal(byName.get('ip_finish_output'), 3);
  for (const f of fns) {
    const proto = btf.typeAs(btf.typeAs(f.id, 'FUNC').type, 'FUNC_PROTO');
    assert.match(spellType(btf, proto.params[f.position - 1]!.type), /struct sk_buff \*/);
    assert.ok(f.position >= 1 && f.position <= 5);
  }
  const first = functionsTakingPointerTo(btf, 'sk_buff', 1);
  assert.ok(first.every((f) => f.position === 1));
  assert.ok(!first.some((f) => f.name === 'ip_finish_output'));
  assert.ok(first.some((f) => f.name === 'ip_rcv'));
});

const haveProbe = existsSync(PROBE);

test('tracepoint.bpf.o: .BTF parses, struct config and globals', { skip: haveProbe ? false : `${PROBE} not built` }, () => {
  const raw = readElfSection(PROBE, '.BTF');
  assert.ok(raw);
  const btf = Btf.parse(raw);
  assert.ok(btf.ownCount > 10);
  const config = btf.structLayout('config');
  assert.ok(config);
  // Offsets are held against src/decode/layout.ts by layout.test.ts.
  assert.equal(config.members.get('point_id')?.offset, 0);
  assert.equal(spellType(btf, config.members.get('skb_arg')!.typeId), '__s32');

  // `const volatile struct config CONFIG` lives in .rodata.
  const rodata = btf.findOne('.rodata', 'DATASEC');
  assert.ok(rodata !== null);
  const vars = btf.typeAs(rodata, 'DATASEC').vars.map((v) => btf.typeAs(v.type, 'VAR'));
  const cfg = vars.find((v) => v.name === 'CONFIG');
  assert.ok(cfg);
  assert.equal(btf.resolve(cfg.type), config.id);
  assert.equal(spellType(btf, cfg.type), 'const volatile struct config');
  assert.ok(btf.findOne('LICENSE', 'VAR') !== null);
  assert.ok([...btf.idsOfKind('FUNC')].length >= 1);
});

test('probe BTF: struct event layout', (t) => {
  const got = eventBtf();
  if (typeof got === 'string') { t.skip(got); return; }
  try {
    const { btf } = got;
    const event = btf.structLayout('event');
    assert.ok(event, `no struct event in ${got.from}`);
    const tuple = event.members.get('tuple');
    assert.ok(tuple);
    assert.equal(tuple.offset, 96);
    assert.equal(spellType(btf, tuple.typeId), 'struct tuple');
    assert.equal(btf.sizeof(tuple.typeId), 40);
    // Offsets are held against src/decode/layout.ts by layout.test.ts.
    assert.ok(event.size >= 136);
    assert.equal(event.members.get('ts_ns')?.offset, 8);
    assert.equal(event.members.get('comm')?.offset, 80);
    assert.equal(spellType(btf, event.members.get('comm')!.typeId), 'char[16]');
  } finally {
    got.cleanup();
  }
});

test('the kernel\'s redirect flags are read from BTF, anonymous enum and all', async (t) => {
  const { redirectFlags } = await import('../../src/kernel/btf.js');
  const { vmlinuxBtf } = await import('../../src/bpf/btf/vmlinux.js');
  if (!vmlinuxBtf()) return t.skip('no kernel BTF');
  const f = redirectFlags();
  // Two distinct single bits, neither BPF_F_INGRESS.
  for (const bit of [f.neigh, f.peer]) assert.ok(bit > 1 && (bit & (bit - 1)) === 0, String(bit));
  assert.notEqual(f.neigh, f.peer);
});
