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
import { SKB_EXPR_MAGIC, SKB_EXPR_REGION_INSNS, SKB_META_MAGIC, SKB_META_REGION_INSNS, compileSkbExpr, compileSkbFetch, resolveField } from '../../src/filter/skb-expr.js';
import { formatSkbMeta, toJsonSkbMeta } from '../../src/output/sections/skb-meta.js';
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
  assert.equal(define('sections/skb_meta.h', 'SKB_META_REGION_INSNS'), SKB_META_REGION_INSNS);
  assert.equal(define('sections/skb_meta.h', 'SKB_META_MAGIC'), SKB_META_MAGIC);
  assert.equal(define('tunnel.h', 'INNER_REGION_INSNS'), INNER_REGION_INSNS);
  assert.equal(define('tunnel.h', 'FILTER_MAGIC_INNER_L2'), INNER_MAGIC.l2);
  assert.equal(define('tunnel.h', 'FILTER_MAGIC_INNER_L3'), INNER_MAGIC.l3);
});

test('--output-skb-metadata: up to 4 numeric fields, each stored in its slot; text and JSON', { skip: skipNoBtf }, () => {
  const f = compileSkbFetch(['skb->mark', 'skb->hash', 'skb->dev->ifindex', 'skb->sk'], btf!);
  assert.deepEqual(f.fields, ['skb->mark', 'skb->hash', 'skb->dev->ifindex', 'skb->sk']);
  assert.deepEqual(f.signed, [false, false, true, false]);
  assert.ok(f.code.length < SKB_META_REGION_INSNS);
  // One store per field, to the slots after the reads' 32 bytes of scratch.
  const stores = f.code.filter((i) => i.code === 0x7b && i.dst === 9).map((i) => i.off);
  assert.deepEqual(stores, [32, 40, 48, 56]);
  assert.throws(() => compileSkbFetch(['skb->dev->name'], btf!), /char\[16\]: only numbers and pointers/);
  assert.throws(() => compileSkbFetch(['skb->mark > 1'], btf!), /is not a field/);
  assert.throws(() => compileSkbFetch(['skb->a', 'skb->b', 'skb->c', 'skb->d', 'skb->e'], btf!), /1 to 4 fields/);
  assert.throws(() => compileSkbFetch(['skb->hsah'], btf!), /did you mean 'hash'/);
  const values = [{ field: 'skb->mark', value: 0x42n }, { field: 'skb->sk', value: null }, { field: 'skb->x', value: -1n }];
  assert.equal(formatSkbMeta(values), 'skb->mark=0x42 skb->sk=? skb->x=-0x1');
  assert.deepEqual(toJsonSkbMeta([...values, { field: 'big', value: 2n ** 63n }]), { 'skb->mark': 66, 'skb->sk': null, 'skb->x': -1, big: '9223372036854775808' });
});
