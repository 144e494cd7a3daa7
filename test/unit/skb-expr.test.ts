/**
 * --filter-skb-expr without the kernel: the grammar, the errors and their
 * columns, and fields resolved against this machine's BTF (offsets, sizes,
 * pointers followed, bitfields, byte order) as the compiled code reads them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { vmlinuxBtf } from '../../src/bpf/btf/vmlinux.js';
import { type ExprNode, SkbExprError, parseSkbExpr } from '../../src/filter/skb-expr-parse.js';
import { readFileSync } from 'node:fs';
import {
  SKB_EXPR_MAGIC, SKB_EXPR_REGION_INSNS, SKB_META_MAGIC, SKB_META_REGION_INSNS, XDP_EXPR_MAGIC, XDP_META_MAGIC, compileSkbExpr, compileSkbFetch, resolveField,
} from '../../src/filter/skb-expr.js';
import { formatSkbMeta, skbMetaValues, toJsonSkbMeta } from '../../src/output/sections/skb-meta.js';
import { INNER_MAGIC, INNER_REGION_INSNS } from '../../src/filter/inner-packet.js';
import { root } from '../helpers/fixtures.js';

const btf = vmlinuxBtf();
const skipNoBtf = btf === null ? 'this kernel has no BTF' : false;

/** The tree as a compact string: (and (> skb->len 1000) …). */
function show(n: ExprNode): string {
  const op = (o: Extract<ExprNode, { kind: 'cmp' }>['left']) =>
    o.kind === 'field' ? o.text + (o.mask !== null ? ` & ${o.mask}` : '') : o.kind === 'number' ? String(o.value) : JSON.stringify(o.value);
  switch (n.kind) {
    case 'and':
    case 'or':
      return `(${n.kind} ${show(n.left)} ${show(n.right)})`;
    case 'not':
      return `(not ${show(n.operand)})`;
    case 'cmp':
      return `(${n.op} ${op(n.left)} ${op(n.right)})`;
    case 'truthy':
      return `(? ${op(n.value)})`;
  }
}

test('grammar: && before ||, & before ==, parentheses and !', () => {
  assert.equal(show(parseSkbExpr('skb->len > 1000 && skb->dev->name == "eth0"')), '(and (> skb->len 1000) (== skb->dev->name "eth0"))');
  assert.equal(show(parseSkbExpr('a->x == 1 || b->y == 2 && c->z == 3')), '(or (== a->x 1) (and (== b->y 2) (== c->z 3)))');
  assert.equal(show(parseSkbExpr('skb->mark & 0xff == 0x42')), '(== skb->mark & 255 66)');
  assert.equal(show(parseSkbExpr('(skb->mark & 0xff) == 0x42')), '(== skb->mark & 255 66)');
  assert.equal(show(parseSkbExpr('!(skb->len < -1) || !skb->sk')), '(or (not (< skb->len -1)) (not (? skb->sk)))');
  assert.equal(show(parseSkbExpr('0x5000 == skb->sk->__sk_common.skc_dport')), '(== 20480 skb->sk->__sk_common.skc_dport)');
});

test('syntax errors carry their column', () => {
  const cases: Array<[string, number, RegExp]> = [
    ['', 1, /empty/],
    ['skb->len >', 11, /expected, not the end/],
    ['skb->len > 1 skb->mark', 14, /unexpected 'skb'/],
    ['(skb->len > 1', 14, /'\)' expected for the '\(' at column 1/],
    ['skb-> > 1', 7, /a field name expected after '->'/],
    ['skb->name == "eth0', 14, /not closed/],
    ['skb->len > 12ab', 12, /'12a' is not a number/],
    ['skb->len @ 1', 10, /unexpected '@'/],
    ['skb->mark & x', 13, /a number expected after &/],
  ];
  for (const [text, column, re] of cases) {
    assert.throws(() => parseSkbExpr(text), (e: unknown) => e instanceof SkbExprError && e.column === column && re.test(e.what), text);
  }
});

test('fields from BTF: offsets, sizes, pointers followed, bitfields and byte order', { skip: skipNoBtf }, () => {
  const field = (text: string) => {
    const n = parseSkbExpr(text);
    assert.equal(n.kind, 'truthy');
    return resolveField(btf!, (n as Extract<ExprNode, { kind: 'truthy' }>).value as never);
  };
  const skb = btf!.structLayout('sk_buff')!;
  const len = field('skb->len');
  assert.deepEqual([len.derefs, len.offset, len.size, len.kind, len.signed], [[], skb.members.get('len')!.offset, 4, 'int', false]);
  const name = field('skb->dev->name');
  assert.deepEqual(name.derefs, [skb.members.get('dev')!.offset]);
  assert.equal(name.offset, btf!.structLayout('net_device')!.members.get('name')!.offset);
  assert.deepEqual([name.kind, name.size], ['chars', 16]);
  const dport = field('skb->sk->__sk_common.skc_dport');
  assert.equal(dport.derefs.length, 1);
  assert.equal(dport.size, 2);
  assert.equal(dport.bigEndian, true, '__be16');
  assert.equal(field('skb->protocol').bigEndian, true);
  const pktType = field('skb->pkt_type');
  assert.equal(pktType.bitSize, 3);
  assert.equal(pktType.offset * 8 + pktType.bitShift, skb.members.get('pkt_type')!.bitOffset);
  assert.equal(field('skb->sk').kind, 'pointer');
});

test('type errors name the field and what it is', { skip: skipNoBtf }, () => {
  const cases: Array<[string, RegExp]> = [
    ['skb->lenn > 1', /^at column 6: struct sk_buff has no field 'lenn' \(did you mean 'len'\?\)$/],
    ['skb->dev->nmae == "x"', /struct net_device has no field 'nmae' \(did you mean 'name'\?\)/],
    ['skb->len->x == 1', /skb->len is unsigned int, not a pointer: use '\.'/],
    ['skb->dev.name == "x"', /a pointer: use '->'/],
    ['skb.len == 1', /skb is a pointer: use '->'/],
    ['sock->len == 1', /fields start at skb/],
    ['skb->len == "x"', /not a char array: compare it with a number/],
    ['skb->dev->name == 1', /char\[16\]: compare it with a string/],
    ['skb->dev->name < "a"', /strings compare with == and != only/],
    ['skb->dev->name == "0123456789abcdefg"', /longer than skb->dev->name \(char\[16\]\)/],
    ['skb->mark == 0x100000000', /does not fit in skb->mark/],
    ['skb->pkt_type == 8', /does not fit in skb->pkt_type/],
    ['skb->len == skb->mark', /not with another field/],
    ['1 == 2', /compare a field/],
  ];
  for (const [text, re] of cases) {
    assert.throws(() => compileSkbExpr(text, btf!), (e: unknown) => e instanceof SkbExprError && re.test(e.message), text);
  }
  // A bare pointer is a condition (not NULL); a bare struct is not.
  assert.doesNotThrow(() => compileSkbExpr('skb->sk', btf!));
  assert.throws(() => compileSkbExpr('skb->headers', btf!), /compare one of its fields/);
});

test('compiled code fits the region and ends by falling through with r0 set', { skip: skipNoBtf }, () => {
  const c = compileSkbExpr('skb->len > 1000 && (skb->dev->name == "eth0" || skb->mark & 0xff == 0x42) && !skb->sk', btf!);
  assert.ok(c.code.length < SKB_EXPR_REGION_INSNS);
  // Every jump lands inside the code or right at its end (the region's fall-through).
  c.code.forEach((i, at) => {
    const isJump = (i.code & 0x07) === 0x05 || (i.code & 0x07) === 0x06;
    const op = i.code & 0xf0;
    if (isJump && op !== 0x80 && op !== 0x90) {
      const to = at + 1 + i.off;
      assert.ok(to > at && to <= c.code.length, `jump at ${at} to ${to}`);
    }
  });
  const long = Array.from({ length: 60 }, (_, i) => `skb->dev->name == "e${i}"`).join(' || ');
  assert.throws(() => compileSkbExpr(long, btf!), /the probes have room for 256/);
});

test('the regions\' sizes and markers are the probes\' (probes/include/skb_expr.h, tunnel.h)', () => {
  const define = (file: string, name: string) => {
    const m = new RegExp(`#define ${name} (0x[0-9a-f]+|\\d+)`).exec(readFileSync(new URL(`probes/include/${file}`, root), 'utf8'));
    assert.ok(m, `${name} in ${file}`);
    return Number(m[1]);
  };
  assert.equal(define('skb_expr.h', 'SKB_EXPR_REGION_INSNS'), SKB_EXPR_REGION_INSNS);
  assert.equal(define('skb_expr.h', 'SKB_EXPR_MAGIC'), SKB_EXPR_MAGIC);
  assert.equal(define('skb_expr.h', 'XDP_EXPR_MAGIC'), XDP_EXPR_MAGIC);
  assert.equal(define('sections/skb_meta.h', 'SKB_META_REGION_INSNS'), SKB_META_REGION_INSNS);
  assert.equal(define('sections/skb_meta.h', 'SKB_META_MAGIC'), SKB_META_MAGIC);
  assert.equal(define('sections/xdp_meta.h', 'XDP_META_REGION_INSNS'), SKB_META_REGION_INSNS);
  assert.equal(define('sections/xdp_meta.h', 'XDP_META_MAGIC'), XDP_META_MAGIC);
  assert.equal(define('tunnel.h', 'INNER_REGION_INSNS'), INNER_REGION_INSNS);
  assert.equal(define('tunnel.h', 'FILTER_MAGIC_INNER_L2'), INNER_MAGIC.l2);
  assert.equal(define('tunnel.h', 'FILTER_MAGIC_INNER_L3'), INNER_MAGIC.l3);
});

test('--output-skb-metadata: up to 16 fields, each in its own slot after the mask word; only the slots asked for', { skip: skipNoBtf }, () => {
  const f = compileSkbFetch(['skb->mark', 'skb->hash', 'skb->dev->ifindex', 'skb->sk'], btf!);
  assert.deepEqual(f.fields, ['skb->mark', 'skb->hash', 'skb->dev->ifindex', 'skb->sk']);
  assert.deepEqual(f.signed, [false, false, true, false]);
  assert.deepEqual(f.slots.map((s) => s.offset), [0, 8, 16, 24]);
  assert.equal(f.bytes, 32);
  assert.ok(f.code.length < SKB_META_REGION_INSNS);
  // One store of each value to its slot (behind the 8 bytes of the mask), and the mask's own stores.
  const stores = f.code.filter((i) => i.code === 0x7b && i.dst === 9).map((i) => i.off);
  assert.deepEqual(stores.filter((o) => o !== 0), [8, 16, 24, 32]);
  assert.equal(stores.filter((o) => o === 0).length, 4);
  // Byte ranges take their length rounded up to 8; casts read from the address they sum.
  const wide = compileSkbFetch([
    'skb->head[skb->mac_header:14]', '((struct iphdr *)(skb->head + skb->network_header))->ttl', 'skb->cb[0:8]', 'skb->len',
  ], btf!);
  assert.deepEqual(wide.slots, [{ offset: 0, size: 16, bytes: 14 }, { offset: 16, size: 8, bytes: 0 }, { offset: 24, size: 8, bytes: 8 }, { offset: 32, size: 8, bytes: 0 }]);
  assert.equal(wide.bytes, 40);
  // Sixteen of the costliest kind fit the region.
  const sixteen = Array.from({ length: 16 }, (_, i) => i % 2 ? `((struct iphdr *)(skb->head + skb->network_header))->daddr` : `skb->head[skb->mac_header:${64 - i}]`);
  assert.ok(compileSkbFetch(sixteen, btf!).code.length <= SKB_META_REGION_INSNS);
  assert.throws(() => compileSkbFetch(['skb->dev->name'], btf!), /char\[16\]: only numbers and pointers can be printed \(or a byte range of it: \[0:16\]\)/);
  assert.doesNotThrow(() => compileSkbFetch(['skb->dev->name[0:16]'], btf!));
  assert.throws(() => compileSkbFetch(['skb->mark > 1'], btf!), /is not a field/);
  assert.throws(() => compileSkbFetch(Array.from({ length: 17 }, () => 'skb->len'), btf!), /1 to 16 fields/);
  assert.throws(() => compileSkbFetch(['skb->hsah'], btf!), /did you mean 'hash'/);
  assert.throws(() => compileSkbFetch(['skb->len[0:4]'], btf!), /skb->len is unsigned int: a byte range needs a pointer or an array/);
  assert.throws(() => compileSkbFetch(['skb->cb[40:16]'], btf!), /goes past the end of char\[48\] \(48 bytes\)/);
  assert.throws(() => compileSkbFetch(['((struct nosuch *)skb->head)->x'], btf!), /has no struct nosuch/);
  assert.throws(() => compileSkbFetch(['((struct iphdr *)(skb->head + skb->cb))->ttl'], btf!), /skb->cb is char\[48\], not a number or a pointer/);
  assert.throws(() => compileSkbFetch(['((struct iphdr *)skb->head)->tll'], btf!), /struct iphdr has no field 'tll' \(did you mean 'ttl'\?\)/);
  const values = [{ field: 'skb->mark', value: 0x42n }, { field: 'skb->sk', value: null }, { field: 'skb->x', value: -1n }, { field: 'skb->head[0:2]', value: { hex: '0a0b' } }];
  assert.equal(formatSkbMeta(values), 'skb->mark=0x42 skb->sk=? skb->x=-0x1 skb->head[0:2]=0a0b');
  assert.deepEqual(toJsonSkbMeta([...values, { field: 'big', value: 2n ** 63n }]),
    { 'skb->mark': 66, 'skb->sk': null, 'skb->x': -1, 'skb->head[0:2]': { hex: '0a0b' }, big: '9223372036854775808' });
});

test('the section\'s values decode by their slots: numbers, byte ranges, what could not be read', () => {
  const data = new Uint8Array(32);
  const v = new DataView(data.buffer);
  v.setBigUint64(0, 0xfffffffffffffffen, true);
  data.set([0x02, 0x00, 0xc0, 0x00, 0x02, 0x01, 0x08, 0x00], 8);
  data.set([0x02, 0x00, 0xc0, 0x00, 0x02, 0x02], 16);
  v.setBigUint64(24, 64n, true);
  const fetch = {
    fields: ['a', 'b[0:6]', 'c[0:6]', 'ttl'], signed: [true, false, false, false],
    slots: [{ offset: 0, bytes: 0 }, { offset: 8, bytes: 6 }, { offset: 16, bytes: 6 }, { offset: 24, bytes: 0 }],
  };
  assert.deepEqual(skbMetaValues({ valid: 0b1011, data }, fetch), [
    { field: 'a', value: -2n }, { field: 'b[0:6]', value: { hex: '0200c0000201' } }, { field: 'c[0:6]', value: null }, { field: 'ttl', value: 64n },
  ]);
  // A section shorter than the slots (a recorded one, a wrong build): what is not there is unread.
  assert.deepEqual(skbMetaValues({ valid: 0b1111, data: data.subarray(0, 12) }, fetch).map((x) => x.value), [-2n, null, null, null]);
});

test('casts and byte ranges parse with their columns; what is wrong says where', () => {
  const v = (text: string) => (parseSkbExpr(text) as Extract<ExprNode, { kind: 'truthy' }>).value as Extract<ExprNode, { kind: 'truthy' }>['value'] & { kind: 'field' };
  const cast = v('((struct iphdr *)(skb->head + skb->network_header + 2))->ttl');
  assert.equal(cast.root, '');
  assert.equal(cast.cast!.struct, 'iphdr');
  assert.deepEqual(cast.cast!.terms.map((t) => t.kind === 'field' ? t.text : String((t as { value: bigint }).value)), ['skb->head', 'skb->network_header', '2']);
  assert.deepEqual(cast.path.map((p) => p.name), ['ttl']);
  assert.equal(cast.text, '((struct iphdr *)(skb->head + skb->network_header + 2))->ttl');
  assert.equal(v('((struct tcphdr *)skb->data)->dest').cast!.terms.length, 1);
  const range = v('skb->head[skb->mac_header:14]');
  assert.equal(range.range!.length, 14);
  assert.equal((range.range!.index as { text: string }).text, 'skb->mac_header');
  assert.equal(range.text, 'skb->head[skb->mac_header:14]');
  assert.equal((v('skb->cb[4:4]').range!.index as { value: bigint }).value, 4n);
  // A cast compared, and a group still a group.
  assert.equal(parseSkbExpr('((struct iphdr *)skb->data)->ttl == 64').kind, 'cmp');
  assert.equal(parseSkbExpr('(skb->len > 1) && !(skb->mark == 0)').kind, 'and');
  const cases: Array<[string, RegExp]> = [
    ['skb->head[0:65]', /^at column 13: a length of 1 to 64 bytes expected, not '65'$/],
    ['skb->head[0:0]', /a length of 1 to 64 bytes expected/],
    ['skb->head[0 14]', /^at column 13: ':' expected between the index and the length/],
    ['skb->head[0:4', /^at column 14: '\]' expected to close the range, not the end$/],
    ['((struct iphdr)skb->head)->ttl', /^at column 15: '\*' expected in the cast/],
    ['((struct iphdr *)skb->head).ttl', /'->' expected after the cast to struct iphdr \*/],
    ['((struct iphdr *)(skb->head + ))->ttl', /a field \(skb->…\), a number or a string expected, not '\)'/],
  ];
  for (const [text, re] of cases) assert.throws(() => parseSkbExpr(text), (e: unknown) => e instanceof SkbExprError && re.test(e.message), text);
});

test('a byte range is printed, not compared; a cast compares as any field', { skip: skipNoBtf }, () => {
  assert.throws(() => compileSkbExpr('skb->head[0:2] == 1', btf!), /at column 10: a byte range can be printed \(--output-skb-metadata\), not compared/);
  assert.ok(compileSkbExpr('((struct iphdr *)(skb->head + skb->network_header))->ttl == 64', btf!).code.length < SKB_EXPR_REGION_INSNS);
  assert.throws(() => compileSkbExpr('((struct iphdr *)(skb->head + skb->network_header))->ttl == 256', btf!), /256 does not fit/);
});
