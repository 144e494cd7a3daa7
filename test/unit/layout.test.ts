/**
 * The kernel↔user layout is written once in C (probes/include/event.h) and
 * mirrored once in TS (src/decode/layout.ts). These tests hold the TS offsets
 * and enum values against the BTF clang emits for the C header and for the
 * built probes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Btf } from '../../src/bpf/btf/btf.js';
import { readElfSection } from '../helpers/elf.js';
import {
  CONFIG_LAYOUT, ConfigFlags, CtSource, ROUTE_POINT_LAYOUT, RoutePointKind, EVENT_LAYOUT, EventFlags, RecordType, SECTION_HEAD, SectionKind, TP_POINT_LAYOUT, TrackStat,
} from '../../src/decode/layout.js';
import { sectionDescriptions } from '../../src/output/sections/registry.js';
import { ROUTE_SLOTS, TP_SLOTS } from '../../src/trace/builds.js';
import { PROBE, eventBtf, root } from '../helpers/probe-btf.js';

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

/** Every value of the TS mirror is the C enum's, and every C value (but counts) has a TS name. */
function assertEnum(btf: Btf, name: string, prefix: string, mirror: Record<string, number>): void {
  const values = btf.enumValues(name);
  assert.ok(values, `enum ${name} missing`);
  const cNames = new Map([...values].map(([v, n]) => [n, v]));
  const upper = (key: string) => prefix + key.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase();
  for (const [key, value] of Object.entries(mirror)) {
    assert.equal(cNames.get(upper(key)), value, `${upper(key)} of enum ${name}`);
  }
  const mirrored = new Set(Object.keys(mirror).map(upper));
  for (const cName of cNames.keys()) {
    if (cName.endsWith('_STATS')) continue;
    assert.ok(mirrored.has(cName), `enum ${name}: ${cName} has no TS counterpart`);
  }
}

test('enums of event.h match src/decode/layout.ts', (t) => {
  const got = eventBtf();
  if (typeof got === 'string') return t.skip(got);
  if (got.from === PROBE) return t.skip('no clang: the built probe carries the structs, not the enums');
  try {
    assertEnum(got.btf, 'record_type', 'RECORD_', RecordType);
    assertEnum(got.btf, 'event_flags', 'EVENT_HAS_', EventFlags);
    assertEnum(got.btf, 'config_flags', 'CONFIG_', ConfigFlags);
    assertEnum(got.btf, 'track_stat', 'TRACK_', TrackStat);
    assertEnum(got.btf, 'ct_source', 'CT_SOURCE_', CtSource);
    assertEnum(got.btf, 'section_kind', 'SECTION_', SectionKind);
  } finally {
    got.cleanup();
  }
});

test('struct event, tuple, section_head, ct_section, ct_tuple and verdict_section match src/decode/layout.ts', (t) => {
  const got = eventBtf();
  if (typeof got === 'string') return t.skip(got);
  try {
    assertStruct(got.btf, 'event', EVENT_LAYOUT);
    assertStruct(got.btf, 'tuple', EVENT_LAYOUT.tuple);
    assertStruct(got.btf, 'section_head', SECTION_HEAD);
    assertStruct(got.btf, 'ct_section', EVENT_LAYOUT.ct_section);
    assertStruct(got.btf, 'ct_tuple', EVENT_LAYOUT.ct_tuple);
    assertStruct(got.btf, 'verdict_section', EVENT_LAYOUT.verdict_section);
  } finally {
    got.cleanup();
  }
});

test('every optional section\'s struct and kind match its module (src/output/sections/)', (t) => {
  const sections = sectionDescriptions();
  const got = eventBtf(sections.map((s) => ({ header: s.header, struct: s.layout.struct })));
  if (typeof got === 'string') return t.skip(got);
  try {
    for (const s of sections) {
      assertStruct(got.btf, s.layout.struct, s.layout);
      const text = readFileSync(join(root, 'probes/include/sections', s.header), 'utf8');
      const kinds = [...text.matchAll(/^#define SECTION_\w+ (\d+)$/gm)].map((m) => Number(m[1]));
      assert.deepEqual(kinds, [s.kind], `the kind of sections/${s.header}`);
    }
  } finally {
    got.cleanup();
  }
});

test('struct config matches src/decode/layout.ts, CONFIG at the start of .rodata', (t) => {
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

test('struct tp_point matches src/decode/layout.ts; TP_POINTS fills .rodata.points, TP_SLOTS programs', (t) => {
  if (!existsSync(PROBE)) return t.skip('probes not built');
  const btf = Btf.parse(readElfSection(PROBE, '.BTF')!);
  assertStruct(btf, 'tp_point', TP_POINT_LAYOUT);
  const points = btf.typeAs(btf.findOne('.rodata.points', 'DATASEC')!, 'DATASEC');
  // The slot map is written whole from encodeTracepointSlots().
  assert.equal(points.vars.length, 1);
  assert.equal(btf.typeAs(points.vars[0]!.type, 'VAR').name, 'TP_POINTS');
  assert.equal(points.vars[0]!.offset, 0);
  assert.equal(points.vars[0]!.size, TP_POINT_LAYOUT.size * TP_SLOTS);
  const programs = [...btf.idsOfKind('FUNC')].map((id) => btf.typeAs(id, 'FUNC').name).filter((n) => n.startsWith('pktpath_tp_'));
  assert.deepEqual(programs.sort(), Array.from({ length: TP_SLOTS }, (_, i) => `pktpath_tp_${i}`).sort());
});

test('struct route_point and enum route_point_kind match src/decode/layout.ts; ROUTE_POINTS fills .rodata.points, ROUTE_SLOTS programs', (t) => {
  const object = join(root, 'probes/build/route.bpf.o');
  if (!existsSync(object)) return t.skip('probes not built');
  const btf = Btf.parse(readElfSection(object, '.BTF')!);
  assertStruct(btf, 'route_point', ROUTE_POINT_LAYOUT);
  const points = btf.typeAs(btf.findOne('.rodata.points', 'DATASEC')!, 'DATASEC');
  assert.equal(points.vars.length, 1);
  assert.equal(btf.typeAs(points.vars[0]!.type, 'VAR').name, 'ROUTE_POINTS');
  assert.equal(points.vars[0]!.size, ROUTE_POINT_LAYOUT.size * ROUTE_SLOTS);
  const programs = [...btf.idsOfKind('FUNC')].map((id) => btf.typeAs(id, 'FUNC').name).filter((n) => n.startsWith('pktpath_route_'));
  assert.deepEqual(programs.sort(), Array.from({ length: ROUTE_SLOTS }, (_, i) => `pktpath_route_${i}`).sort());
  // The enum is only used as constants (no BTF of it): read from the source.
  const text = readFileSync(join(root, 'probes/route.bpf.c'), 'utf8');
  const kinds = Object.fromEntries([...text.matchAll(/^\tROUTE_POINT_(\w+) = (\d+),$/gm)].map((m) => [m[1]!, Number(m[2])]));
  const upper = (key: string) => key.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase();
  assert.deepEqual(Object.fromEntries(Object.entries(RoutePointKind).map(([k, v]) => [upper(k), v])), kinds);
  assert.match(text, new RegExp(`#define ROUTE_SLOTS ${ROUTE_SLOTS}\\b`));
});
