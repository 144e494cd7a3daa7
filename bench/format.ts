/**
 * Formatting throughput: the fixture events (re-addressed so most skbs are
 * distinct, with advancing timestamps) formatted 1M times as text and as JSON
 * lines, through the sinks and a BatchedWriter into a writer that discards;
 * and the same events carrying 128-byte packets, as pcapng.
 *
 *   node dist/bench/format.js [count]
 */
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { PcapngSink } from '../src/output/pcapng.js';
import { JsonSink, TextSink } from '../src/output/line-sinks.js';
import { BatchedWriter } from '../src/output/stream.js';
import type { TextOptions } from '../src/output/text.js';
import type { Sink } from '../src/output/pipeline.js';
import type { TraceEvent } from '../src/output/event.js';
import { RECORDS_PER_TURN } from '../src/trace/session.js';

interface RawEvent extends Omit<TraceEvent, 'timeNs' | 'sinceStartNs' | 'skb'> {
  timeNs: string;
  sinceStartNs: string;
  skb: string;
}

function loadEvents(): TraceEvent[] {
  const raw = JSON.parse(
    readFileSync(new URL('../../fixtures/events/basic.json', import.meta.url), 'utf8'),
  ) as { events: RawEvent[] };
  return raw.events.map((e) => ({
    ...e,
    timeNs: BigInt(e.timeNs),
    sinceStartNs: BigInt(e.sinceStartNs),
    skb: BigInt(e.skb),
  }));
}

/**
 * 8192 variants, 1 µs apart in time, each skb address shared by ~4 events (a
 * packet seen at a few points) and ~2000 addresses in all, so the formatters'
 * caches see misses as well as hits.
 */
function variants(base: TraceEvent[]): TraceEvent[] {
  const out: TraceEvent[] = [];
  const t0 = base[0]!.timeNs;
  for (let i = 0; i < 8192; i++) {
    const e = base[i % base.length]!;
    out.push({
      ...e,
      timeNs: t0 + BigInt(i) * 1000n,
      sinceStartNs: BigInt(i) * 1000n,
      skb: e.skb + BigInt((i >> 2) % 512) * 0x100n,
    });
  }
  return out;
}

class NullWriter extends Writable {
  bytes = 0;
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.bytes += chunk.length;
    cb();
  }
}

/** The variants with 128 bytes of packet each, half from the MAC header and half from the IP header. */
function withPackets(events: TraceEvent[]): TraceEvent[] {
  const data = new Uint8Array(128).map((_, i) => i);
  return events.map((e, i) => ({ ...e, packet: { data, origLen: Math.max(e.len, 128), l2: i % 2 === 0 } }));
}

async function run(name: string, make: (w: BatchedWriter) => Sink, events: TraceEvent[], count: number): Promise<void> {
  await runSink(name, make(new BatchedWriter(new NullWriter(), { isTTY: false, maxDelayMs: 0 })), events, count);
}

async function runSink(name: string, sink: Sink, events: TraceEvent[], count: number): Promise<void> {
  // Warm up the JIT before timing.
  for (let i = 0; i < 50_000; i++) sink.event(events[i % events.length]!);
  const n = events.length;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    sink.event(events[i % n]!);
    // As the session does: a turn of the event loop every so many events, so finished writes
    // call back and their buffers are reused (bench/pipeline.ts).
    if (i % RECORDS_PER_TURN === RECORDS_PER_TURN - 1) await new Promise(setImmediate);
  }
  await sink.close();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`${name}: ${(count / s / 1e6).toFixed(2)}M events/s`);
}

const count = Number(process.argv[2] ?? 1_000_000);
const events = variants(loadEvents());
const plain: TextOptions = { tuple: false, meta: false, stack: false, caller: false, tcpFlags: false, timestamp: 'none', color: false };
const full: TextOptions = { tuple: true, meta: true, stack: false, caller: true, tcpFlags: true, timestamp: 'absolute', color: false };

await run('text', (w) => new TextSink(w, { ...plain, tuple: true, header: false }), events, count);
await run('text (all columns, absolute time)', (w) => new TextSink(w, { ...full, header: false }), events, count);
await run('text (all columns, colour)', (w) => new TextSink(w, { ...full, color: true, header: false }), events, count);
await run('json', (w) => new JsonSink(w, { stack: false }), events, count);
await runSink('pcapng (128-byte packets)', new PcapngSink(new NullWriter(), { snaplen: 256, maxDelayMs: 0 }), withPackets(events), count);
