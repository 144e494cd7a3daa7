/**
 * The kernel↔user layout is written once in C (probes/include/event.h) and
 * once in TS (src/decode). These tests hold the TS offsets against the BTF
 * clang emits for the C header and for the built probes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { Btf } from '../../src/bpf/btf/btf.js';
import { readElfSection } from '../../src/bpf/elf.js';
import { CONFIG_LAYOUT, EVENT_LAYOUT } from '../../src/decode/layout.js';
import { PROBE, eventBtf } from '../helpers/probe-btf.js';

function assertStruct(btf: Btf, name: string, layout: { size: number; fields: Record<string, number> }): void {
  const s = btf.structLayout(name);
  assert.ok(s, `struct ${name} missing`);
  assert.equal(s.size, layout.size, `sizeof(struct ${name})`);
  for (const [field, offset] of Object.entries(layout.fields)) {
    assert.equal(s.members.get(field)?.offset, offset, `offsetof(struct ${name}, ${field})`);
  }
  // Every C member that is not padding is decoded or encoded somewhere.
  const known = new Set(Object.keys(layout.fields));
  for (const member of s.members.keys()) {
    if (member.startsWith('_pad')) continue;
    assert.ok(known.has(member), `struct ${name}.${member} has no TS counterpart`);
  }
}

test('struct event, tuple, ct_section and ct_tuple match src/decode/event.ts', (t) => {
  const got = eventBtf();
  if (typeof got === 'string') return t.skip(got);
  try {
    assertStruct(got.btf, 'event', EVENT_LAYOUT);
    assertStruct(got.btf, 'tuple', EVENT_LAYOUT.tuple);
    assertStruct(got.btf, 'ct_section', EVENT_LAYOUT.ct_section);
    assertStruct(got.btf, 'ct_tuple', EVENT_LAYOUT.ct_tuple);
  } finally {
    got.cleanup();
  }
});

test('struct config matches src/decode/config.ts, CONFIG at the start of .rodata', (t) => {
  if (!existsSync(PROBE)) return t.skip('probes not built');
  const btf = Btf.parse(readElfSection(PROBE, '.BTF')!);
  assertStruct(btf, 'config', CONFIG_LAYOUT);
  const rodata = btf.typeAs(btf.findOne('.rodata', 'DATASEC')!, 'DATASEC');
  // The probe instance's .rodata is written whole from encodeConfig().
  assert.equal(rodata.vars.length, 1);
  assert.equal(btf.typeAs(rodata.vars[0]!.type, 'VAR').name, 'CONFIG');
  assert.equal(rodata.vars[0]!.offset, 0);
  assert.equal(rodata.vars[0]!.size, CONFIG_LAYOUT.size);
});
