/** Recorded events of fixtures/events (bigints stored as strings), and a Writable that keeps what it is given. */
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import type { LostNotice, TraceEvent } from '../../src/output/event.js';

export const root = new URL('../../../', import.meta.url);

interface RawFixture {
  events: Array<Omit<TraceEvent, 'timeNs' | 'sinceStartNs' | 'skb'> & { timeNs: string; sinceStartNs: string; skb: string }>;
  lost: Array<Omit<LostNotice, 'timeNs'> & { timeNs: string }>;
}

export function loadFixture(name = 'basic'): { events: TraceEvent[]; lost: LostNotice[] } {
  const raw = JSON.parse(readFileSync(new URL(`fixtures/events/${name}.json`, root), 'utf8')) as RawFixture;
  return {
    events: raw.events.map((e) => ({ ...e, timeNs: BigInt(e.timeNs), sinceStartNs: BigInt(e.sinceStartNs), skb: BigInt(e.skb) })),
    lost: raw.lost.map((n) => ({ ...n, timeNs: BigInt(n.timeNs) })),
  };
}

export class Collect extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.text += chunk.toString('utf8');
    cb();
  }
}
