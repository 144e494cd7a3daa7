/**
 * `pktpath merge`: per-node traces in, one trace out. Regular files are read
 * twice: first to pair packets across the wire and bound the clocks'
 * offsets (./pairing.ts, ./offsets.ts), then to write every record with its
 * node, its journey and its time on the reference node's clock, in time order
 * (./kway.ts). Streams (FIFOs, stdin, --follow) are read once: the offsets
 * come from the pairs of their first window, held before the header is
 * written. Memory is bounded by the window, not by the traces.
 *
 * A merged trace is an input like the others, one clock for all its nodes:
 * its records keep their node and journey (./pairing.ts), its nodes'
 * offsets and pairs are carried into the new header, and the offsets found
 * now are its clock's against the other inputs'.
 */
import { escapeJsonLine, jsonText } from '../../output/escape.js';
import { formatTime } from '../../output/format.js';
import { parseJsonTime } from '../../output/json-read.js';
import type { JsonHeaderRecord, JsonMerged, JsonMergedNode, JsonRecord } from '../../output/json.js';
import { InputFileError } from '../errors.js';
import { type NumberedLine, classifyBatches } from '../records.js';
import { HeldHeap, type MergeInputLoop, runWindowed } from './kway.js';
import { OffsetBounds, type NodeOffset, solveOffsets } from './offsets.js';
import { type Ambiguity, type Instance, type Pair, Pairer } from './pairing.js';

export interface MergeSource {
  /** As named on the command line (`-` for stdin). */
  name: string;
  /** Its lines, read from the start: called once per pass (a stream: once). */
  lines(): AsyncIterable<string[]>;
  /** A FIFO, stdin or a followed file: read once. */
  stream: boolean;
  /**
   * A regular file's identity and state (device, inode, size, times): the same before and after the
   * second pass, the file is what the first pass read and checked, and its lines are not checked again.
   */
  stamp?(): string;
  /** Its node, from --node-of; else its header's (a merged trace's: its header's nodes). */
  node?: string;
}

export interface MergeOptions {
  windowMs: number;
  /** A node of the input whose clock is kept; default the first input's. */
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

type Line = NumberedLine;

interface Opened {
  source: MergeSource;
  header: JsonHeaderRecord | null;
  /** Its nodes: one, or a merged trace's. */
  nodes: string[];
  /** A merged trace's nodes as its header gives them; null for a node's own trace. */
  carried: JsonMergedNode[] | null;
  lines: AsyncIterable<Line[]>;
}

/** The first line apart: the header, if any, and the lines after it, in batches; `check` false: lines checked by a pass before. */
async function openSource(s: MergeSource, check: boolean): Promise<{ header: JsonHeaderRecord | null; lines: AsyncIterable<Line[]> }> {
  const it = classifyBatches(s.name, s.lines(), check)[Symbol.asyncIterator]();
  const first = await it.next();
  const header = !first.done && first.value[0]!.kind === 'header' ? first.value[0]!.record : null;
  async function* rest(): AsyncGenerator<Line[]> {
    if (!first.done) yield header === null ? first.value : first.value.slice(1);
    for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
  }
  return { header, lines: rest() };
}

async function openAll(sources: readonly MergeSource[], check = true): Promise<Opened[]> {
  const out: Opened[] = [];
  const byNode = new Map<string, string>();
  for (const source of sources) {
    const { header, lines } = await openSource(source, check);
    const carried = header?.merged?.nodes ?? null;
    if (carried !== null && source.node !== undefined) throw new InputFileError(source.name, 0, 'a merged trace names its nodes: --node-of is for a trace whose header names none');
    const node = source.node ?? header?.node;
    if (carried === null && node === undefined) {
      throw new InputFileError(source.name, 0, 'names no node (no header, or a header without one: --output-json-file); name it with --node-of FILE=NODE');
    }
    const nodes = carried?.map((n) => n.node) ?? [node!];
    for (const n of nodes) {
      const twice = byNode.get(n);
      if (twice !== undefined) throw new InputFileError(source.name, 0, `has node ${n}, as ${twice} has: merge takes each node's records from one input`);
      byNode.set(n, source.name);
    }
    out.push({ source, header, nodes, carried, lines });
  }
  return out;
}

/** The nodes of every input, indexed as pairing names them, each with its input (whose clock it shares). */
interface NodeIndex {
  names: string[];
  inputOf: number[];
  /** The node of input `i`'s line: the input's, or a merged trace's record's own. */
  of(i: number, l: Line): number;
}

function indexNodes(opened: readonly Opened[]): NodeIndex {
  const names: string[] = [];
  const inputOf: number[] = [];
  const index = new Map<string, number>();
  opened.forEach((x, i) => x.nodes.forEach((n) => {
    index.set(n, names.length);
    names.push(n);
    inputOf.push(i);
  }));
  const firsts = opened.map((x) => index.get(x.nodes[0]!)!);
  const of = (i: number, l: Line): number => {
    const x = opened[i]!;
    if (x.carried === null) return firsts[i]!;
    const n = l.kind === 'event' ? l.record.node : l.kind === 'lost' ? l.node : l.kind === 'settings' ? (l.record as { node?: string }).node : undefined;
    const g = n === undefined ? undefined : index.get(n);
    if (g === undefined || inputOf[g] !== i) {
      throw new InputFileError(x.source.name, l.line, n === undefined ? 'a record of a merged trace without its node' : `a record of node ${n}, which its header does not name`);
    }
    if (l.kind === 'event' && l.record.journey === undefined) throw new InputFileError(x.source.name, l.line, 'an event of a merged trace without its journey');
    return g;
  };
  return { names, inputOf, of };
}

/** Times in ns since the first read, as doubles (exact for 104 days): the merge compares millions of them. */
class Clock {
  base: bigint | null = null;
  /** The last full second parsed (`YYYY-MM-DDTHH:MM:SS`) and its time: most times share it, and need only their nanoseconds read. */
  private second = '';
  private secondT = 0;
  of(text: string, where: () => string): number {
    if (this.second !== '' && text.length === 30 && text.charCodeAt(19) === 46 /* . */ && text.charCodeAt(29) === 90 /* Z */ && text.startsWith(this.second)) {
      let ns = 0;
      for (let i = 20; i < 29; i++) {
        const d = text.charCodeAt(i) - 48;
        if (d < 0 || d > 9) return this.parsed(text, where);
        ns = ns * 10 + d;
      }
      return this.secondT + ns;
    }
    return this.parsed(text, where);
  }
  private parsed(text: string, where: () => string): number {
    const ns = parseJsonTime(text);
    if (ns === null) throw new Error(`${where()}: time ${JSON.stringify(text.slice(0, 40))} is not a UTC time`);
    this.base ??= ns;
    if (text.length === 30 && text.charCodeAt(19) === 46) {
      this.second = text.slice(0, 19);
      this.secondT = Number(ns - BigInt(text.slice(20, 29)) - this.base);
    }
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
async function pairingPass(opened: Opened[], o: MergeOptions, clock: Clock, nodes: NodeIndex, count: PairCount): Promise<{ firstT: number[]; pairs: number; ambiguous: number }> {
  const firstT = new Array<number>(opened.length).fill(Infinity);
  const windowNs = o.windowMs * 1e6;
  const pairer = new Pairer({ nodes: nodes.names, inputOf: nodes.inputOf, windowNs, slackNs: null, onPair: count.pair });
  await runWindowed(opened.map((x): MergeInputLoop<Line> => ({ items: x.lines, stream: false })), {
    windowNs, idleMs: o.idleMs ?? 1000, offsets: new Array<number>(opened.length).fill(0), stopped: o.stopped,
    timeOf: (i, l) => timeOf(opened[i]!.source.name, l, clock),
    read: (i, l, t) => {
      const node = nodes.of(i, l);
      count.records[node]!++;
      if (t < firstT[i]!) firstT[i] = t;
      if (l.kind === 'event') pairer.ingest(node, l.record, t);
    },
    progress: (s) => pairer.expire(s),
  }, async () => {});
  pairer.end();
  return { firstT, pairs: pairer.pairs, ambiguous: pairer.ambiguous };
}

/** What the offsets are solved from: the pairs between inputs, bounds on their clocks; records and pairs per node, for the header. */
class PairCount {
  readonly bounds: OffsetBounds;
  readonly records: number[];
  readonly pairsOf: number[];
  constructor(private readonly nodes: NodeIndex, inputs: number) {
    this.bounds = new OffsetBounds(inputs);
    this.records = new Array<number>(nodes.names.length).fill(0);
    this.pairsOf = new Array<number>(nodes.names.length).fill(0);
  }
  readonly pair = (p: Pair) => {
    this.pairsOf[p.from]!++;
    this.pairsOf[p.to]!++;
    this.bounds.add(this.nodes.inputOf[p.from]!, this.nodes.inputOf[p.to]!, p.depT, p.arrT);
  };
}

interface HeldRecord {
  t: number;
  /** Its input (the clock it is on): what the merge orders by. */
  node: number;
  seq: number;
  /** Its node, as pairing names it. */
  of: number;
  raw: number;
  /** The line as read (valid JSON, checked): written with node, journey and time spliced in, not parsed again. */
  text: string;
  /** Its time as written, to be replaced when its node's offset is not 0. */
  time: string;
  inst: Instance | null;
  /** Held only while the offsets are not known (a stream's first window): what pairing reads. */
  record: JsonRecord | null;
}

/** A merged trace's record with the journey it came with, `was`, now `now` (it arrived from another input's node). */
function rejourneyed(text: string, was: string, now: string): string {
  const at = `"journey":${JSON.stringify(was)}`;
  if (text.includes(at)) return text.replace(at, `"journey":${JSON.stringify(now)}`);
  // Written with other escapes than pktpath's: written again.
  return JSON.stringify({ ...(JSON.parse(text) as object), journey: now });
}

/** The merged trace's header: what every input's said, and how they were merged. */
export function mergedHeader(opened: ReadonlyArray<{ header: JsonHeaderRecord | null; nodes: string[]; carried: unknown }>, merged: JsonMerged, o: MergeOptions, time: string): JsonHeaderRecord {
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
    // A merged trace's notes name their nodes already.
    notes: opened.flatMap((x) => (x.header?.notes ?? []).map((n) => (x.carried === null ? `${x.nodes[0]}: ${n}` : n))),
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
  const stamps = sources.map((s) => s.stamp?.());
  // Every file as the first pass read it: its lines were checked then.
  const unchanged = () => sources.every((s, i) => stamps[i] !== undefined && s.stamp!() === stamps[i]);
  let checkedAgain = true;
  let opened = await openAll(sources);
  let nodes = indexNodes(opened);
  const named = o.reference === undefined ? 0 : nodes.names.indexOf(o.reference);
  if (named < 0) throw new InputFileError('--reference', 0, `no input has node ${o.reference}; the nodes are ${nodes.names.join(', ')}`);
  // The clock kept is an input's: a merged trace's is its own reference node's.
  const reference = nodes.inputOf[named]!;
  const referenceNode = opened[reference]!.header?.merged?.reference ?? nodes.names[named]!;
  const windowNs = o.windowMs * 1e6;
  const offsetsNow = new Array<number>(opened.length).fill(0);
  let solved: NodeOffset[] = opened.map(() => ({ offsetNs: 0, uncertaintyNs: null, inconsistent: false }));
  let merged: JsonMerged | null = null;

  const summary = (count: PairCount, pairs: number, ambiguous: number): JsonMerged => {
    solved = solveOffsets(count.bounds, reference);
    solved.forEach((s, i) => (offsetsNow[i] = s.offsetNs));
    // A merged trace's nodes: what was added to their times before, and now.
    const carried = opened.flatMap((x) => x.carried ?? [null]);
    const before = opened.map((x) => x.header?.merged);
    return {
      nodes: nodes.names.map((node, g) => {
        const i = nodes.inputOf[g]!;
        const c = carried[g] ?? null;
        const now = solved[i]!;
        return { node, source: c?.source ?? opened[i]!.source.name, records: count.records[g]!, offset_ns: (c?.offset_ns ?? 0) + now.offsetNs,
          uncertainty_ns: now.uncertaintyNs === null || c?.uncertainty_ns === null ? null : now.uncertaintyNs + (c?.uncertainty_ns ?? 0),
          pairs: (c?.pairs ?? 0) + count.pairsOf[g]! };
      }),
      reference: referenceNode, window_ms: o.windowMs,
      pairs: pairs + before.reduce((n, m) => n + (m?.pairs ?? 0), 0), ambiguous: ambiguous + before.reduce((n, m) => n + (m?.ambiguous ?? 0), 0),
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
    nodes: nodes.names, inputOf: nodes.inputOf, windowNs, slackNs: Math.min(windowNs, Math.max(...solved.map((x) => x.uncertaintyNs ?? windowNs))),
    onAmbiguous: (a) => o.ambiguous?.(a, nodes.names),
  });
  let headerTime: string | null = null;
  if (!streaming) {
    const count = new PairCount(nodes, opened.length);
    const first = await pairingPass(opened, o, clock, nodes, count);
    merged = summary(count, first.pairs, first.ambiguous);
    const earliest = Math.min(...first.firstT.map((t, i) => t + offsetsNow[i]!));
    headerTime = Number.isFinite(earliest) ? clock.text(earliest) : formatTime(BigInt(Date.now()) * 1_000_000n);
    checkedAgain = !unchanged();
    opened = await openAll(sources, checkedAgain);
    nodes = indexNodes(opened);
    pairer = alignedPairer();
    await writeHeader(headerTime);
  }

  const heap = new HeldHeap<HeldRecord>();
  // A stream's first window: held with its pairs found on each node's own clock, until the offsets are known.
  const calibration: HeldRecord[] | null = streaming ? [] : null;
  const calibrating = new PairCount(nodes, opened.length);
  const calibrator = streaming ? new Pairer({ nodes: nodes.names, inputOf: nodes.inputOf, windowNs, slackNs: null, onPair: calibrating.pair }) : null;
  let firstT: number | null = null;
  let seq = 0;
  let written = 0;
  let late = 0;
  let lastOut = -Infinity;

  const place = (h: HeldRecord, record: JsonRecord | null) => {
    h.t = h.raw + offsetsNow[h.node]!;
    h.inst = record !== null ? pairer!.ingest(h.of, record, h.t) : null;
    h.record = null;
    heap.push(h);
  };
  const nodeFields = nodes.names.map((n) => `,"node":${JSON.stringify(n)}`);
  const out = (h: HeldRecord) => {
    if (h.t < lastOut) late++;
    else lastOut = h.t;
    let text = h.text;
    if (offsetsNow[h.node] !== 0) text = text.replace(`"time":${JSON.stringify(h.time)}`, `"time":"${clock.text(h.t)}"`);
    if (opened[h.node]!.carried === null) {
      const end = text.lastIndexOf('}');
      text = text.slice(0, end) + nodeFields[h.of] + (h.inst !== null ? `,"journey":${JSON.stringify(h.inst.journey)}` : '') + text.slice(end);
    } else if (h.inst !== null && h.inst.journey !== h.inst.carried) text = rejourneyed(text, h.inst.carried!, h.inst.journey);
    batch += escapeJsonLine(text) + '\n';
    written++;
  };
  const endCalibration = async (upTo: number) => {
    calibrator!.end();
    merged = summary(calibrating, calibrator!.pairs, calibrator!.ambiguous);
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
      const of = nodes.of(i, l);
      const h: HeldRecord = { t, node: i, seq: seq++, of, raw: t, text: l.text, time: timeText(l), inst: null, record };
      firstT ??= t;
      if (calibration !== null && merged === null) {
        calibrating.records[of]!++;
        if (record !== null) calibrator!.ingest(of, record, t);
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
  if (!checkedAgain && !unchanged()) {
    const changed = sources.find((s, i) => s.stamp!() !== stamps[i])!;
    throw new InputFileError(changed.name, 0, 'changed while it was merged (merge reads a file twice): merge a copy, or use --follow for a file still written');
  }
  return { merged: merged!, offsets: solved, written, late, writtenPairs: { pairs: pairer!.pairs, ambiguous: pairer!.ambiguous } };
}
