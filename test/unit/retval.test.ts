/** --output-retval: a function's return value read by its BTF type, from the ring to text, JSON and back. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { vmlinuxBtf } from '../../src/bpf/btf/vmlinux.js';
import { decodeEvent } from '../../src/decode/event.js';
import { eventFromJson } from '../../src/output/json-read.js';
import { jsonLine } from '../../src/output/json.js';
import { SECTION_DECODERS, askedSections, sectionMask } from '../../src/output/sections/registry.js';
import { formatReturn, functionReturn, retvalSection } from '../../src/output/sections/retval.js';
import { TextFormatter } from '../../src/output/text.js';
import { Enricher } from '../../src/trace/enrich.js';
import { NameBook } from '../../src/trace/names.js';
import { validateJsonLine } from '../helpers/schema.js';
import { recordWith, struct } from '../helpers/sections.js';

const L = retvalSection.layout;
const INT = { kind: 'int', size: 4, signed: true } as const;

test('negative ints are errno names, the kernel\'s own codes too; others are numbers', () => {
  assert.deepEqual(formatReturn(0xffffff8fn, INT), { value: -113, text: '-EHOSTUNREACH' });
  assert.deepEqual(formatReturn(BigInt.asUintN(64, -113n), INT), { value: -113, text: '-EHOSTUNREACH' });
  assert.deepEqual(formatReturn(BigInt.asUintN(32, -524n), INT), { value: -524, text: '-ENOTSUPP' });
  assert.deepEqual(formatReturn(1n, INT), { value: 1, text: '1' });
  assert.deepEqual(formatReturn(BigInt.asUintN(32, -5000n), INT), { value: -5000, text: '-5000' });
  // Upper bits of the register are not the int's.
  assert.deepEqual(formatReturn(0xdead_0000_0000n, INT), { value: 0, text: '0' });
  assert.deepEqual(formatReturn(0xffff_ffffn, { kind: 'int', size: 4, signed: false }), { value: 4294967295, text: '4294967295' });
  // An unknown type reads as a long.
  assert.deepEqual(formatReturn(BigInt.asUintN(64, -22n), null), { value: -22, text: '-EINVAL' });
});

test('pointers are NULL, an error pointer or an address; bool and enum by name', () => {
  assert.deepEqual(formatReturn(0n, { kind: 'pointer' }), { value: '0x0', text: 'NULL' });
  assert.deepEqual(formatReturn(BigInt.asUintN(64, -12n), { kind: 'pointer' }), { value: '0xfffffffffffffff4', text: 'ERR_PTR(-ENOMEM)' });
  assert.deepEqual(formatReturn(0xffff888012345600n, { kind: 'pointer' }), { value: '0xffff888012345600', text: '0xffff888012345600' });
  assert.deepEqual(formatReturn(0x100n, { kind: 'bool' }), { value: 0, text: 'false' });
  assert.deepEqual(formatReturn(1n, { kind: 'bool' }), { value: 1, text: 'true' });
  const names = new Map([[0, 'NOT_SPECIFIED'], [2, 'NO_SOCKET']]);
  assert.deepEqual(formatReturn(2n, { kind: 'enum', size: 4, names }), { value: 2, text: 'NO_SOCKET' });
  assert.deepEqual(formatReturn(7n, { kind: 'enum', size: 4, names }), { value: 7, text: '7' });
});

test('a function\'s argument count and return type come from BTF; void functions have no return value', () => {
  const btf = vmlinuxBtf();
  assert.ok(btf, 'this machine has vmlinux BTF');
  assert.deepEqual(functionReturn(btf, 'ip_rcv'), { nargs: 4, shape: INT });
  assert.deepEqual(functionReturn(btf, 'skb_clone'), { nargs: 2, shape: { kind: 'pointer' } });
  assert.equal(functionReturn(btf, 'kfree_skb_partial'), null);
  assert.equal(functionReturn(btf, 'no_such_function_here'), null);
});

test('the exit\'s record: its value named by the function\'s type, in text and JSON, and read back', () => {
  const body = struct(L.size, (v) => {
    v.setBigUint64(L.fields.value, 0xffffff8fn, true);
    v.setBigUint64(L.fields.duration_ns, 3140n, true);
  });
  const { view, bytes, at } = recordWith([{ kind: retvalSection.kind, body }]);
  const enricher = new Enricher({
    points: [{ type: 'fexit', name: 'ip_route_input_noref' }], names: new NameBook(), dropReasons: new Map(), startMonoNs: 0n, startWallNs: 0n,
    symbols: null, stacks: null, tupleChanges: false, redirectFlags: null,
    returns: (func) => (func === 'ip_route_input_noref' ? INT : null),
  });
  const e = enricher.enrich(decodeEvent(view, bytes, at, SECTION_DECODERS)!);
  assert.deepEqual(e.retval, { value: -113, text: '-EHOSTUNREACH', durationNs: 3140 });
  const text = new TextFormatter({ tuple: false, meta: false, stack: false, caller: false, tcpFlags: false, timestamp: 'none', color: false });
  assert.match(text.formatEvent(e), / ip_route_input_noref → -EHOSTUNREACH \(3\.1µs\)$/);
  const line = jsonLine(e, { stack: false });
  assert.equal(validateJsonLine(line), null);
  assert.deepEqual(JSON.parse(line).retval, { value: -113, text: '-EHOSTUNREACH', duration_ns: 3140 });
  assert.deepEqual(JSON.parse(line).probe, { type: 'fexit', name: 'ip_route_input_noref' });
  assert.deepEqual(eventFromJson(JSON.parse(line), 0n).retval, e.retval);
});

test('--output-retval asks the probes for the section (its bit of CONFIG.sections)', () => {
  assert.deepEqual(askedSections({ outputRetval: true }), ['retval']);
  assert.equal(sectionMask(['retval']), 1 << retvalSection.kind);
});
