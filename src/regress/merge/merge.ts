/**
 * `pktpath merge`: per-node traces in, one trace out. Regular files are read
 * twice: first to pair packets across the wire and bound the clocks'
 * offsets (./pairing.ts, ./offsets.ts), then to write every record with its
 * node, its journey and its time on the reference node's clock, in time order
 * (./kway.ts). Streams (FIFOs, stdin, --follow) are read once: the offsets
 * come from the pairs of their first window, held before the header is
 * written. Memory is bounded by the window, not by the traces.
 */
import { escapeJsonLine, jsonText } from '../../output/escape.js';
import { formatTime } from '../../output/format.js';
import { parseJsonTime } from '../../output/json-read.js';
import type { JsonHeaderRecord, JsonMerged, JsonRecord } from '../../output/json.js';
import { InputFileError } from '../errors.js';
import { type TraceLine, classifyLines } from '../records.js';
import { HeldHeap, type MergeInputLoop, runWindowed } from './kway.js';
import { OffsetBounds, type NodeOffset, solveOffsets } from './offsets.js';
import { type Ambiguity, type Instance, Pairer } from './pairing.js';

export interface MergeSource {
  /** As named on the command line (`-` for stdin). */
  name: string;
  /** Its lines, read from the start: called once per pass (a stream: once). */
  lines(): AsyncIterable<string[]>;
  /** A FIFO, stdin or a followed file: read once. */
  stream: boolean;
  /** Its node, from --node-of; else its header's. */
  node?: string;
}

export interface MergeOptions {
  windowMs: number;
  /** The node whose clock is kept; default the first input's. */
  reference?: string;
  /** A stream quiet this long is not waited for, ms. */
  idleMs?: number;
  /** pktpath's version and argv, for the merged header. */
  version: string;
  argv: string[];
  stopped?(): boolean;
  ambiguous?(a: Ambiguity, nodes: readonly string[]): void;
}

export interface MergeResult {
  merged: JsonMerged;
  offsets: NodeOffset[];
  written: number;
  /** Records written after later ones (a stream quiet past the window, or a node out of order by more). */
  late: number;
  /**
   * The pairs and ambiguous arrivals of the journeys written, with the clocks aligned (a departure no later than its
   * arrival): the header's are those that bounded the offsets, a window either side, and may count more ambiguous.
   */
  writtenPairs: { pairs: number; ambiguous: number };
}

type Line = TraceLine & { line: number; text: string };

interface Opened {
  source: MergeSource;
  header: JsonHeaderRecord | null;
  node: string;
  lines: AsyncIterable<Line>;
}

/** The first line apart: the header, if any, and the lines after it. */
async function openSource(s: MergeSource): Promise<{ header: JsonHeaderRecord | null; lines: AsyncIterable<Line> }> {
  const it = classifyLines(s.name, s.lines())[Symbol.asyncIterator]();
  const first = await it.next();
  const header = !first.done && first.value.kind === 'header' ? first.value.record : null;
  if (header?.merged) throw new InputFileError(s.name, 1, 'a merged trace: merge takes the per-node traces it was made from');
  async function* rest(): AsyncGenerator<Line> {
    if (!first.done && first.value.kind !== 'header') yield first.value;
    for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
  }
  return { header, lines: rest() };
}

async function openAll(sources: readonly MergeSource[]): Promise<Opened[]> {
  const out: Opened[] = [];
  const byNode = new Map<string, string>();
  for (const source of sources) {
    const { header, lines } = await openSource(source);
    const node = source.node ?? header?.node;
    if (node === undefined) {
      throw new InputFileError(source.name, 0, 'names no node (no header, or a header without one: --output-json-file); name it with --node-of FILE=NODE');
    }
    const twice = byNode.get(node);
    if (twice !== undefined) throw new InputFileError(source.name, 0, `is node ${node}, as ${twice} is: merge takes one trace per node`);
    byNode.set(node, source.name);
    out.push({ source, header, node, lines });
  }
  return out;
}

/** Times in ns since the first read, as doubles (exact for 104 days): the merge compares millions of them. */
class Clock {
  base: bigint | null = null;
  of(text: string, where: () => string): number {
    const ns = parseJsonTime(text);
    if (ns === null) throw new Error(`${where()}: time ${JSON.stringify(text.slice(0, 40))} is not a UTC time`);
    this.base ??= ns;
    return Number(ns - this.base);
  }
  text(t: number): string {
    return formatTime(this.base! + BigInt(Math.round(t)));
  }
}

const timeText = (l: Line): string => (l.kind === 'lost' ? l.time : (l as { record: { time: string } }).record.time);

/** A line's time on its node's clock; null for a header; a normalised trace is refused. */
function timeOf(name: string, l: Line, clock: Clock): number | null {
  if (l.kind === 'normalized' || l.kind === 'packet') throw new InputFileError(name, l.line, 'a normalised trace: merge reads recorded ones (`pktpath record`, --output-json-file)');
  if (l.kind === 'header') return null;
  return clock.of(timeText(l), () => `${name}:${l.line}`);
}

/** The pairing pass over regular files: pairs and their bounds, on each node's own clock. */
async function pairingPass(opened: Opened[], o: MergeOptions, clock: Clock, nodes: string[]): Promise<{ bounds: OffsetBounds; records: number[]; firstT: number[]; pairs: number; ambiguous: number }> {
  const bounds = new OffsetBounds(nodes.length);
  const records = new Array<number>(nodes.length).fill(0);
  const firstT = new Array<number>(nodes.length).fill(Infinity);
  const windowNs = o.windowMs * 1e6;
  const pairer = new Pairer({ nodes, windowNs, slackNs: null, onPair: (p) => bounds.add(p.from, p.to, p.depT, p.arrT) });
  await runWindowed(opened.map((x): MergeInputLoop<Line> => ({ items: x.lines, stream: false })), {
    windowNs, idleMs: o.idleMs ?? 1000, offsets: new Array<number>(nodes.length).fill(0), stopped: o.stopped,
    timeOf: (i, l) => timeOf(opened[i]!.source.name, l, clock),
    read: (i, l, t) => {
      records[i]!++;
      if (t < firstT[i]!) firstT[i] = t;
      if (l.kind === 'event') pairer.ingest(i, l.record, t);
    },
    progress: (s) => pairer.expire(s),
  }, async () => {});
  pairer.end();
  return { bounds, records, firstT, pairs: pairer.pairs, ambiguous: pairer.ambiguous };
}

interface HeldRecord {
  t: number;
  node: number;
  seq: number;
  raw: number;
  /** The line as read (valid JSON, checked): written with node, journey and time spliced in, not parsed again. */
  text: string;
  /** Its time as written, to be replaced when its node's offset is not 0. */
  time: string;
  inst: Instance | null;
  /** Held only while the offsets are not known (a stream's first window): what pairing reads. */
  record: JsonRecord | null;
}

/** The merged trace's header: what every input's said, and how they were merged. */
export function mergedHeader(opened: ReadonlyArray<{ header: JsonHeaderRecord | null; node: string }>, merged: JsonMerged, o: MergeOptions, time: string): JsonHeaderRecord {
  const uniq = (xs: string[]) => [...new Set(xs)];
  const namespaces = new Map<string, { inode: number; name: string; self: boolean }>();
  for (const x of opened) for (const n of x.header?.namespaces ?? []) namespaces.set(`${n.inode}:${n.name}`, { ...n, self: false });
  return {
    v: 1,
    type: 'header',
    pktpath: o.version,
    kernel: uniq(opened.map((x) => x.header?.kernel ?? '').filter((k) => k !== '')).join(', '),
    time,
    argv: o.argv,
    command: null,
    points: uniq(opened.flatMap((x) => x.header?.points ?? [])),
    notes: opened.flatMap((x) => (x.header?.notes ?? []).map((n) => `${x.node}: ${n}`)),
    namespaces: [...namespaces.values()],
    merged,
  };
}

/**
 * Merges the sources into `write` (one string of lines at a time): the
 * header first, then every record. Throws InputFileError on bad input (before
 * anything is written for regular files).
 */
export async function mergeTraces(sources: readonly MergeSource[], o: MergeOptions, write: (text: string) => Promise<void>): Promise<MergeResult> {
  const clock = new Clock();
  const streaming = sources.some((s) => s.stream);
  let opened = await openAll(sources);
  const nodes = opened.map((x) => x.node);
  const reference = o.reference === undefined ? 0 : nodes.indexOf(o.reference);
  if (reference < 0) throw new InputFileError('--reference', 0, `no input is node ${o.reference}; the nodes are ${nodes.join(', ')}`);
  const windowNs = o.windowMs * 1e6;
  const offsetsNow = new Array<number>(nodes.length).fill(0);
  let solved: NodeOffset[] = nodes.map(() => ({ offsetNs: 0, uncertaintyNs: null, inconsistent: false }));
  let merged: JsonMerged | null = null;

  const summary = (bounds: OffsetBounds, records: number[], pairs: number, ambiguous: number): JsonMerged => {
    solved = solveOffsets(bounds, reference);
    solved.forEach((s, i) => (offsetsNow[i] = s.offsetNs));
    return {
      nodes: opened.map((x, i) => ({ node: x.node, source: x.source.name, records: records[i]!, offset_ns: solved[i]!.offsetNs,
        uncertainty_ns: solved[i]!.uncertaintyNs, pairs: bounds.pairsOf[i]! })),
      reference: nodes[reference]!, window_ms: o.windowMs, pairs, ambiguous,
    };
  };
  let batch = '';
  const flush = async () => {
    if (batch === '') return;
    const b = batch;
    batch = '';
    await write(b);
  };
  const writeHeader = async (firstTime: string) => {
    batch += jsonText(mergedHeader(opened, merged!, o, firstTime)) + '\n';
    await flush();
  };

  // Made once the offsets are known: a departure may seem later than its arrival by their uncertainty, no more.
  let pairer: Pairer | null = null;
  const alignedPairer = () => new Pairer({
    nodes, windowNs, slackNs: Math.min(windowNs, Math.max(...solved.map((x) => x.uncertaintyNs ?? windowNs))),
    onAmbiguous: (a) => o.ambiguous?.(a, nodes),
  });
  let headerTime: string | null = null;
  if (!streaming) {
    const first = await pairingPass(opened, o, clock, nodes);
    merged = summary(first.bounds, first.records, first.pairs, first.ambiguous);
    const earliest = Math.min(...first.firstT.map((t, i) => t + offsetsNow[i]!));
    headerTime = Number.isFinite(earliest) ? clock.text(earliest) : formatTime(BigInt(Date.now()) * 1_000_000n);
    opened = await openAll(sources);
    pairer = alignedPairer();
    await writeHeader(headerTime);
  }

  const heap = new HeldHeap<HeldRecord>();
  // A stream's first window: held with its pairs found on each node's own clock, until the offsets are known.
  const calibration: HeldRecord[] | null = streaming ? [] : null;
  const calibrationBounds = new OffsetBounds(nodes.length);
  const calibrationRecords = new Array<number>(nodes.length).fill(0);
  const calibrator = streaming ? new Pairer({ nodes, windowNs, slackNs: null, onPair: (p) => calibrationBounds.add(p.from, p.to, p.depT, p.arrT) }) : null;
  let firstT: number | null = null;
  let seq = 0;
  let written = 0;
  let late = 0;
  let lastOut = -Infinity;

  const place = (h: HeldRecord, record: JsonRecord | null) => {
    h.t = h.raw + offsetsNow[h.node]!;
    h.inst = record !== null ? pairer!.ingest(h.node, record, h.t) : null;
    h.record = null;
    heap.push(h);
  };
  const nodeFields = nodes.map((n) => `,"node":${JSON.stringify(n)}`);
  const out = (h: HeldRecord) => {
    if (h.t < lastOut) late++;
    else lastOut = h.t;
    let text = h.text;
    if (offsetsNow[h.node] !== 0) text = text.replace(`"time":${JSON.stringify(h.time)}`, `"time":"${clock.text(h.t)}"`);
    const end = text.lastIndexOf('}');
    batch += escapeJsonLine(text.slice(0, end) + nodeFields[h.node] + (h.inst !== null ? `,"journey":${JSON.stringify(h.inst.journey)}` : '') + text.slice(end)) + '\n';
    written++;
  };
  const endCalibration = async (upTo: number) => {
    calibrator!.end();
    merged = summary(calibrationBounds, calibrationRecords, calibrator!.pairs, calibrator!.ambiguous);
    pairer = alignedPairer();
    const held = calibration!.splice(0);
    for (const h of held) h.t = h.raw + offsetsNow[h.node]!;
    held.sort((a, b) => a.t - b.t || a.node - b.node || a.seq - b.seq);
    // All placed before anything is awaited: records read meanwhile come after them.
    batch += jsonText(mergedHeader(opened, merged!, o, held.length > 0 ? clock.text(held[0]!.t) : formatTime(BigInt(Date.now()) * 1_000_000n))) + '\n';
    for (const h of held) place(h, h.record);
    // The held records' arrivals decided as far as the inputs have been read (progress came before there was a pairer).
    if (upTo !== Infinity) pairer.expire(upTo + windowNs);
    await flush();
  };

  await runWindowed(opened.map((x): MergeInputLoop<Line> => ({ items: x.lines, stream: x.source.stream })), {
    windowNs, idleMs: o.idleMs ?? 1000, offsets: offsetsNow, stopped: o.stopped,
    timeOf: (i, l) => timeOf(opened[i]!.source.name, l, clock),
    read: (i, l, t) => {
      const record = l.kind === 'event' ? l.record : null;
      const h: HeldRecord = { t, node: i, seq: seq++, raw: t, text: l.text, time: timeText(l), inst: null, record };
      firstT ??= t;
      if (calibration !== null && merged === null) {
        calibrationRecords[i]!++;
        if (record !== null) calibrator!.ingest(i, record, t);
        calibration.push(h);
      } else place(h, record);
    },
    progress: (s) => {
      pairer?.expire(s);
      calibrator?.expire(s);
    },
  }, async (upTo) => {
    if (merged === null) {
      if (upTo !== Infinity && (firstT === null || upTo < firstT)) return;
      await endCalibration(upTo);
    }
    // The inputs ended: every arrival is decided before the last records leave.
    if (upTo === Infinity) pairer!.end();
    for (let h = heap.peek(); h !== undefined && h.t <= upTo; h = heap.peek()) {
      out(heap.pop()!);
      if (batch.length >= 1 << 20) await flush();
    }
    await flush();
  });
  return { merged: merged!, offsets: solved, written, late, writtenPairs: { pairs: pairer!.pairs, ambiguous: pairer!.ambiguous } };
}
