/**
 * The skb queue section (--output-skb-queue, probes/include/sections/skb_queue.h):
 * the skb's priority (SO_PRIORITY, `meta priority set`, tc's skbedit) and the
 * transmit queue it is mapped to. Text: `priority=6 queue=0`.
 */
import { section } from './section.js';

export interface SkbQueue {
  priority: number;
  queueMapping: number;
}

export interface JsonSkbQueue {
  priority: number;
  queue_mapping: number;
}

const LAYOUT = { struct: 'skb_queue_section', size: 8, fields: { priority: 0, queue_mapping: 4 } } as const;

export const skbQueueSection = section({
  key: 'skbQueue',
  kind: 11,
  header: 'skb_queue.h',
  layout: LAYOUT,
  decode: (view, _bytes, at): SkbQueue => ({
    priority: view.getUint32(at + LAYOUT.fields.priority, true),
    queueMapping: view.getUint16(at + LAYOUT.fields.queue_mapping, true),
  }),
  enrich: (q: SkbQueue) => q,
  text: (q: SkbQueue) => 'priority=' + q.priority + ' queue=' + q.queueMapping,
  jsonKey: 'skb_queue',
  toJson: (q: SkbQueue): JsonSkbQueue => ({ priority: q.priority, queue_mapping: q.queueMapping }),
  fromJson: (j: JsonSkbQueue): SkbQueue => ({ priority: j.priority, queueMapping: j.queue_mapping }),
  schema: {
    description: 'With --output-skb-queue: the skb\'s priority and the transmit queue it is mapped to.',
    type: 'object',
    properties: { priority: { $ref: '#/$defs/u32' }, queue_mapping: { $ref: '#/$defs/u16' } },
    required: ['priority', 'queue_mapping'],
    additionalProperties: false,
  },
  options: [{ flags: '--output-skb-queue', description: 'print the skb\'s priority and transmit queue (skb->priority, skb->queue_mapping) at every point', live: true }],
});
