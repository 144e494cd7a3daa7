/** --output-skb-queue, the section built on the registry alone: from the ring to text, JSON and back, and its option. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeEvent } from '../../src/decode/event.js';
import { eventFromJson } from '../../src/output/json-read.js';
import { jsonLine, toJsonRecord } from '../../src/output/json.js';
import { SECTION_DECODERS, askedSections, sectionMask } from '../../src/output/sections/registry.js';
import { skbQueueSection } from '../../src/output/sections/skb-queue.js';
import { TextFormatter } from '../../src/output/text.js';
import { Enricher } from '../../src/trace/enrich.js';
import { NameBook } from '../../src/trace/names.js';
import { validateJsonLine } from '../helpers/schema.js';
import { recordWith, struct } from '../helpers/sections.js';

const L = skbQueueSection.layout;

test('the skb\'s priority and queue: decoded, named, in text and JSON, and read back', () => {
  const body = struct(L.size, (v) => {
    v.setUint32(L.fields.priority, 0x10006, true);
    v.setUint16(L.fields.queue_mapping, 3, true);
  });
  const { view, bytes, at } = recordWith([{ kind: skbQueueSection.kind, body }]);
  const enricher = new Enricher({
    points: [{ type: 'tracepoint', name: 'net_dev_queue' }], names: new NameBook(), dropReasons: new Map(), startMonoNs: 0n, startWallNs: 0n,
    symbols: null, stacks: null, tupleChanges: false, redirectFlags: null,
  });
  const e = enricher.enrich(decodeEvent(view, bytes, at, SECTION_DECODERS)!);
  assert.deepEqual(e.skbQueue, { priority: 0x10006, queueMapping: 3 });
  const text = new TextFormatter({ tuple: false, meta: false, stack: false, caller: false, tcpFlags: false, timestamp: 'none', color: false });
  assert.match(text.formatEvent(e), / net_dev_queue priority=65542 queue=3$/);
  const line = jsonLine(e, { stack: false });
  assert.equal(validateJsonLine(line), null);
  assert.deepEqual(JSON.parse(line).skb_queue, { priority: 65542, queue_mapping: 3 });
  assert.deepEqual(JSON.parse(line), toJsonRecord(e, { stack: false }));
  assert.deepEqual(eventFromJson(JSON.parse(line), 0n).skbQueue, e.skbQueue);
});

test('--output-skb-queue asks the probes for the section (its bit of CONFIG.sections)', () => {
  assert.deepEqual(askedSections({ outputSkbQueue: true }), ['skbQueue']);
  assert.equal(sectionMask(askedSections({ outputSkbQueue: true })), 1 << skbQueueSection.kind);
});
