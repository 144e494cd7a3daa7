/**
 * The registry of optional sections (src/output/sections/registry.ts): each
 * found in a record by its head, whatever its place; each written to JSON and
 * read back; each described in schema/event.v1.json as its module says.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { decodeEvent } from '../../src/decode/event.js';
import { EVENT_LAYOUT, EventFlags, SECTION_HEAD, SectionKind } from '../../src/decode/layout.js';
import { eventFromJson } from '../../src/output/json-read.js';
import { toJsonRecord } from '../../src/output/json.js';
import {
  SECTIONS, SECTION_DECODERS, SectionOptionError, optionName, sectionDescriptions, sectionMask, sectionValues,
} from '../../src/output/sections/registry.js';
import { skbMetaSection } from '../../src/output/sections/skb-meta.js';
import { xdpMetaSection } from '../../src/output/sections/xdp-meta.js';
import { TextFormatter } from '../../src/output/text.js';
import { Enricher } from '../../src/trace/enrich.js';
import { NameBook } from '../../src/trace/names.js';
import { FULL_EVENT } from '../helpers/records.js';
import { SCHEMA_URL } from '../helpers/schema.js';
import { recordWith, struct } from '../helpers/sections.js';

const M = skbMetaSection.layout;
/** The section with two numbers' slots after the struct: 0x42 (read) and 7 (not). */
const meta = struct(M.size + 16, (v) => {
  v.setBigUint64(M.size, 0x42n, true);
  v.setBigUint64(M.size + 8, 7n, true);
  v.setUint16(M.fields.bytes, 16, true);
  v.setUint32(M.fields.valid, 0b01, true);
});
const META_DATA = new Uint8Array([0x42, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]);

test('kinds are distinct, above the point\'s own, and each asks for its bit of CONFIG.sections', () => {
  const kinds = sectionDescriptions().map((s) => s.kind);
  assert.equal(new Set(kinds).size, kinds.length);
  assert.ok(kinds.every((k) => k >= 8 && k < 32 && !(Object.values(SectionKind) as number[]).includes(k)));
  assert.equal(sectionMask(['skbMeta']), 1 << skbMetaSection.kind);
  assert.equal(sectionMask([]), 0);
  assert.equal(optionName('--output-skb-metadata <fields>'), 'outputSkbMetadata');
});

test('options\' values are checked by their sections, a wrong one named by its option', () => {
  assert.deepEqual(sectionValues({ outputSkbMetadata: ' skb->mark, skb->hash ', outputTunnel: true }), { outputSkbMetadata: ['skb->mark', 'skb->hash'] });
  assert.throws(() => sectionValues({ outputSkbMetadata: ' , ' }),
    (e: unknown) => e instanceof SectionOptionError && /^--output-skb-metadata: name 1 to 16 fields/.test(e.message));
});

test('sections are found by their heads in any order; kinds the reader does not know are skipped; a bad length ends the walk', () => {
  const unknown = { kind: 31, body: new Uint8Array(24).fill(0xee) };
  const a = recordWith([unknown, { kind: skbMetaSection.kind, body: meta }]);
  const raw = decodeEvent(a.view, a.bytes, a.at, SECTION_DECODERS)!;
  assert.deepEqual(raw.sections, { skbMeta: { valid: 1, data: META_DATA } });
  // Without decoders (or without sections) the record is its core.
  assert.equal(decodeEvent(a.view, a.bytes, a.at)!.sections, null);
  // A head whose length runs past the sections: nothing is read from it.
  a.view.setUint16(a.at + EVENT_LAYOUT.size + SECTION_HEAD.fields.len, 4000, true);
  assert.equal(decodeEvent(a.view, a.bytes, a.at, SECTION_DECODERS)!.sections, null);
});

test('the enricher names each section; events without one have every section\'s field, null', () => {
  const enricher = new Enricher({
    points: [{ type: 'tracepoint', name: 'net_dev_queue' }], names: new NameBook(), dropReasons: new Map(), startMonoNs: 0n, startWallNs: 0n,
    symbols: null, stacks: null, tupleChanges: false, redirectFlags: null,
    skbMeta: { fields: ['skb->mark', 'skb->hash'], signed: [false, false], slots: [{ offset: 0, size: 8, bytes: 0 }, { offset: 8, size: 8, bytes: 0 }], bytes: 16, code: [] },
  });
  const a = recordWith([{ kind: skbMetaSection.kind, body: meta }], EventFlags.tuple);
  const e = enricher.enrich(decodeEvent(a.view, a.bytes, a.at, SECTION_DECODERS)!);
  assert.deepEqual(e.skbMeta, [{ field: 'skb->mark', value: 0x42n }, { field: 'skb->hash', value: null }]);
  const plain = recordWith([]);
  const p = enricher.enrich(decodeEvent(plain.view, plain.bytes, plain.at, SECTION_DECODERS)!);
  for (const s of SECTIONS) assert.equal((p as unknown as Record<string, unknown>)[s.key], null, s.key);
  const text = new TextFormatter({ tuple: false, meta: false, stack: false, caller: false, tcpFlags: false, timestamp: 'none', color: false });
  assert.match(text.formatEvent(e), / skb->mark=0x42 skb->hash=\?$/);
});

test('the XDP metadata section is named by --output-xdp-metadata\'s fields, beside the skb\'s; text and JSON as the skb\'s', () => {
  const fetch = (fields: string[]) => ({ fields, signed: fields.map(() => false), slots: fields.map((_, i) => ({ offset: 8 * i, size: 8, bytes: 0 })), bytes: 8 * fields.length, code: [] });
  const enricher = new Enricher({
    points: [{ type: 'fentry', name: 'bpf:xdp_policy' }], names: new NameBook(), dropReasons: new Map(), startMonoNs: 0n, startWallNs: 0n,
    symbols: null, stacks: null, tupleChanges: false, redirectFlags: null,
    skbMeta: fetch(['skb->mark', 'skb->hash']), xdpMeta: fetch(['xdp->rxq->queue_index', 'xdp->frame_sz']),
  });
  const a = recordWith([{ kind: xdpMetaSection.kind, body: meta }], EventFlags.tuple);
  const e = enricher.enrich(decodeEvent(a.view, a.bytes, a.at, SECTION_DECODERS)!);
  assert.deepEqual(e.xdpMeta, [{ field: 'xdp->rxq->queue_index', value: 0x42n }, { field: 'xdp->frame_sz', value: null }]);
  assert.equal(e.skbMeta, null);
  const text = new TextFormatter({ tuple: false, meta: false, stack: false, caller: false, tcpFlags: false, timestamp: 'none', color: false });
  assert.match(text.formatEvent(e), / xdp->rxq->queue_index=0x42 xdp->frame_sz=\?$/);
  assert.deepEqual((toJsonRecord(e, { stack: false }) as unknown as Record<string, unknown>).xdp_metadata, { 'xdp->rxq->queue_index': 66, 'xdp->frame_sz': null });
});

test('each section\'s JSON reads back into the same event, in the order JSON writes them', () => {
  const e = eventFromJson(FULL_EVENT as never, 0n);
  const back = toJsonRecord(e, { stack: true }) as unknown as Record<string, unknown>;
  for (const s of SECTIONS) {
    const j = (FULL_EVENT as Record<string, unknown>)[s.jsonKey];
    if (j !== undefined) assert.deepEqual(back[s.jsonKey], j, s.jsonKey);
  }
  const keys = Object.keys(back).filter((k) => SECTIONS.some((s) => s.jsonKey === k));
  assert.deepEqual(keys, SECTIONS.map((s) => s.jsonKey).filter((k) => k in FULL_EVENT));
});

test('schema/event.v1.json describes each section as its module does', () => {
  const schema = JSON.parse(readFileSync(SCHEMA_URL, 'utf8')) as { $defs: { event: { properties: Record<string, unknown> } } };
  for (const s of sectionDescriptions()) assert.deepEqual(schema.$defs.event.properties[s.jsonKey], s.schema, s.jsonKey);
});
