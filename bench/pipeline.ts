/**
 * The whole user-space pipeline on recorded kernel records, no kernel: ring
 * records (struct event, built with the layout of src/decode/layout.ts) are
 * decoded, enriched, put in time order and formatted to a discarding writer,
 * as the session does.
 * Prints records/s for text and JSON lines (IPv4, and JSON for IPv6 too):
 * the median of ROUNDS rounds each and their range (one round can swing by
 * half on these machines). Each round is a process of its own running one
 * format, as a session runs one sink (call sites that see one sink class
 * stay monomorphic, as they are in a trace), with the flags bin/pktpath
 * gives Node (its young generation's size among them).
 *
 *   node dist/bench/pipeline.js [count per round]
 */
import { execFileSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pktpathNodeFlags } from './node-flags.js';
import { parseAddress } from '../src/decode/addr.js';
import { decodeEvent } from '../src/decode/event.js';
import { EVENT_LAYOUT, EventFlags, RecordType } from '../src/decode/layout.js';
import { SECTION_DECODERS } from '../src/output/sections/registry.js';
import { JsonSink, TextSink } from '../src/output/line-sinks.js';
import { BatchedWriter } from '../src/output/stream.js';
import type { Sink } from '../src/output/pipeline.js';
import { Enricher } from '../src/trace/enrich.js';
import { NameBook } from '../src/trace/names.js';
import { RecordOrder, halves, nsSince } from '../src/trace/order.js';
import { ORDER_WINDOW_NS, RECORDS_PER_TURN } from '../src/trace/session.js';

const F = EVENT_LAYOUT.fields;
const TF = EVENT_LAYOUT.tuple.fields;
const RECORDS = 4096;
const STRIDE = EVENT_LAYOUT.size + 8;

/** A ring-like buffer of records: ~12 points per packet, ~340 packets, like a veth flood. */
function records(l3: 4 | 6): { view: DataView; bytes: Uint8Array } {
  const buf = new ArrayBuffer(RECORDS * STRIDE);
  const view = new DataView(buf);
  const bytes = new Uint8Array(buf);
  const s = parseAddress(l3 === 4 ? '192.0.2.1' : '2001:db8::1')!.bytes;
  const d = parseAddress(l3 === 4 ? '192.0.2.2' : '2001:db8::2')!.bytes;
  for (let i = 0; i < RECORDS; i++) {
    const at = i * STRIDE + 8;
    view.setUint32(at + F.type, RecordType.event, true);
    view.setUint32(at + F.flags, EventFlags.tuple, true);
    view.setBigUint64(at + F.skb, 0xffff888100000000n + BigInt((i / 12) | 0) * 0x100n, true);
    view.setUint32(at + F.point_id, i % 12, true);
    view.setUint32(at + F.cpu, i & 1, true);
    view.setUint32(at + F.pid, 4242, true);
    view.setUint32(at + F.netns, 4026531840 + (i % 2), true);
    view.setUint32(at + F.ifindex, 2, true);
    view.setUint32(at + F.len, 92, true);
    view.setUint32(at + F.mtu, 1500, true);
    view.setInt32(at + F.stack_id, -1, true);
    view.setUint16(at + F.protocol, l3 === 4 ? 0x0800 : 0x86dd, true);
    // No sections: the packet bytes (none) start where the core ends, as the probes write it.
    view.setUint16(at + F.cap_offset, EVENT_LAYOUT.size, true);
    bytes.set(Buffer.from('iperf3'), at + F.comm);
    bytes.set(s, at + F.tuple + TF.saddr);
    bytes.set(d, at + F.tuple + TF.daddr);
    view.setUint16(at + F.tuple + TF.sport, 40000 + (((i / 12) | 0) % 7), true);
    view.setUint16(at + F.tuple + TF.dport, 5201, true);
    bytes[at + F.tuple + TF.l3] = l3;
    bytes[at + F.tuple + TF.l4proto] = 17;
  }
  return { view, bytes };
}

/**
 * Times for the `cycle`th pass over the records: 800 ns apart, going on from
 * the pass before; one record in 1024 stamped 20 µs early, as a record whose
 * probe was interrupted between reserving it and reading the clock.
 */
function stamp(view: DataView, cycle: number): void {
  for (let i = 0; i < RECORDS; i++) {
    const ns = 1_000_000_000 + (cycle * RECORDS + i) * 800 - (i % 1024 === 1023 ? 20_000 : 0);
    view.setBigUint64(i * STRIDE + 8 + F.ts_ns, BigInt(ns), true);
  }
}

class Discard extends Writable {
  override _write(_c: unknown, _e: BufferEncoding, cb: () => void): void {
    cb();
  }
}

/** Records per second through decode, enrich, format and write. */
async function run(makeSink: (w: BatchedWriter) => Sink, count: number, l3: 4 | 6): Promise<number> {
  const { view, bytes } = records(l3);
  const points = ['net_dev_queue', 'net_dev_start_xmit', 'net_dev_xmit', 'netif_rx', 'netif_receive_skb', 'consume_skb',
    'tc', 'tc', 'netfilter', 'netfilter', 'netfilter', 'netfilter'].map((n) => ({ type: 'tracepoint' as const, name: n }));
  const enricher = new Enricher({
    points,
    names: NameBook.of([
      { netns: { inode: 4026531840, name: '' }, ifaces: [{ ifindex: 2, name: 'veth-a' }] },
      { netns: { inode: 4026531841, name: 'b' }, ifaces: [{ ifindex: 2, name: 'veth-b' }] },
    ]),
    dropReasons: new Map(),
    startMonoNs: 1_000_000_000n,
    startWallNs: 1_795_000_000_000_000_000n,
    symbols: null,
    stacks: null,
    tupleChanges: true,
    redirectFlags: { neigh: 1 << 16, peer: 1 << 17 },
  });
  const sink = makeSink(new BatchedWriter(new Discard(), { isTTY: false }));
  const order = new RecordOrder(ORDER_WINDOW_NS, (v, b, at) => {
    const raw = decodeEvent(v, b, at, SECTION_DECODERS);
    if (raw) sink.event(enricher.enrich(raw));
  });
  const start = halves(1_000_000_000n);
  const t0 = performance.now();
  for (let n = 0; n < count; n++) {
    if (n % RECORDS === 0) stamp(view, n / RECORDS);
    const at = (n % RECORDS) * STRIDE + 8;
    order.push(view, bytes, at, EVENT_LAYOUT.size, nsSince(view, at + F.ts_ns, start));
    // As the session does: a turn of the event loop every so many records, so
    // finished writes call back and their buffers are reused; the ring's
    // records still waiting are copied before it is read again.
    if (n % RECORDS_PER_TURN === RECORDS_PER_TURN - 1 || n % RECORDS === RECORDS - 1) order.settle();
    if (n % RECORDS_PER_TURN === RECORDS_PER_TURN - 1) await new Promise(setImmediate);
  }
  order.flush();
  await sink.close();
  return count / ((performance.now() - t0) / 1000);
}

const ROUNDS = 5;
const count = Number(process.argv[2] ?? 1_000_000);
const text = { tuple: true, meta: false, stack: false, caller: false, tcpFlags: false, timestamp: 'none' as const, color: false };
const formats = [
  { name: 'text', l3: 4 as const, sink: (w: BatchedWriter): Sink => new TextSink(w, { header: true, ...text }) },
  { name: 'json', l3: 4 as const, sink: (w: BatchedWriter): Sink => new JsonSink(w, { stack: false }) },
  { name: 'json, IPv6', l3: 6 as const, sink: (w: BatchedWriter): Sink => new JsonSink(w, { stack: false }) },
];
const only = process.argv[3];
if (only !== undefined) {
  // One round of one format: its rate on stdout.
  const f = formats.find((x) => x.name === only)!;
  console.log(await run(f.sink, count, f.l3));
  process.exit(0);
}
const rates = formats.map((): number[] => []);
for (let round = 0; round < ROUNDS; round++) {
  for (const [i, f] of formats.entries()) {
    const args = [...pktpathNodeFlags(), fileURLToPath(import.meta.url), String(count), f.name];
    rates[i]!.push(Number(execFileSync(process.execPath, args, { encoding: 'utf8' })));
  }
}
const m = (r: number) => (r / 1e6).toFixed(2);
for (const [i, f] of formats.entries()) {
  const sorted = [...rates[i]!].sort((a, b) => a - b);
  console.log(`${f.name}: ${m(sorted[ROUNDS >> 1]!)}M records/s (decode, enrich, format, write; median of ${ROUNDS}, ` +
    `${m(sorted[0]!)}–${m(sorted[ROUNDS - 1]!)})`);
}
