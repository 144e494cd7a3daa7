/**
 * `pktpath normalize`: a trace in its canonical form — a header, then one
 * path per line (./journeys.ts says which, and in what order) — so that two
 * runs of one scenario give the same lines. Also the reader every comparison
 * starts from: a raw trace is normalised on the fly, a normalised one is read
 * back as it is.
 */
import type { Writable } from 'node:stream';
import { escapeText, jsonText } from '../output/escape.js';
import {
  FlowSet, type Journey, JourneyBuilder, type JourneyOptions, type NormalizedHeader, type NormalizedHop, type NormalizedPacket,
} from './journeys.js';
import { TraceFileError, readTrace } from './records.js';
import { Held, pathBytes } from './held.js';
import { ExplainContext } from './explain/context.js';
import { causeOnEnd, feedEvent } from './explain/engine.js';

export interface Normalized {
  header: NormalizedHeader;
  packets: NormalizedPacket[];
}

type Source = Pick<NormalizedHeader, 'kernel' | 'command'>;

/**
 * Reads a trace file into `builder` (a recorded or plain one), or returns
 * what a normalised one holds; the one loop over a file's lines. What the
 * caller keeps counts against `held` (the builder's callback adds it): past
 * its bound, reading stops at that line.
 */
async function read(file: string, builder: JourneyBuilder, held: Held, ctx: ExplainContext | null = null): Promise<{ source: Source; normalized: Normalized | null }> {
  let source: Source = { kernel: null, command: null };
  let normalized: Normalized | null = null;
  let events = false;
  for await (const line of readTrace(file)) {
    switch (line.kind) {
      case 'header':
        builder.header(line.record);
        source = { kernel: line.record.kernel, command: line.record.command };
        break;
      case 'event':
        if (normalized) throw new TraceFileError(file, line.line, 'an event in a normalised trace');
        events = true;
        if (ctx) feedEvent(builder, ctx, line.record);
        else builder.event(line.record);
        break;
      case 'settings':
        // Not part of a normalised trace: read only for the causes the paths carry.
        ctx?.addSettings(line.record);
        break;
      case 'lost':
        builder.lost += line.count;
        if (ctx) ctx.lost += line.count;
        break;
      case 'normalized':
        if (events || normalized) throw new TraceFileError(file, line.line, 'a normalised header in the middle of a trace');
        normalized = { header: line.record, packets: [] };
        break;
      case 'packet':
        if (!normalized) throw new TraceFileError(file, line.line, 'a normalised packet before the normalised header');
        normalized.packets.push({ ...line.record, repeat: line.record.repeat ?? 1 });
        held.bytes += pathBytes(line.record.hops, line.record.end, line.record.flow, line.record.tuple);
        break;
    }
    const over = held.over();
    if (over !== null) throw new TraceFileError(file, line.line, over);
  }
  builder.end();
  return { source, normalized };
}

/** Every journey of a recorded trace, raw (as `assert` reads them), in the order they end; the caller keeps them all. */
export async function journeysOf(file: string, opts: Pick<JourneyOptions, 'keepNeighbour'>, each: (j: Journey) => void): Promise<{ lost: number }> {
  const held = new Held('its journeys');
  const builder = new JourneyBuilder(opts, (j) => {
    held.bytes += pathBytes(j.hops, j.end);
    each(j);
  });
  const { normalized } = await read(file, builder, held);
  if (normalized) throw new TraceFileError(file, 1, 'a normalised trace: this needs the recorded one');
  return { lost: builder.lost };
}

/** The normalised form of a trace file, raw or already normalised. */
export async function normalizeFile(file: string, opts: JourneyOptions, varsText: string[]): Promise<Normalized> {
  const flows = new FlowSet();
  const held = new Held('its distinct paths');
  const ctx = new ExplainContext();
  const builder = new JourneyBuilder({ ...opts, keepRecords: true }, (j) => {
    causeOnEnd(j, ctx);
    if (flows.add(j)) held.bytes += pathBytes(j.hops, j.end);
  });
  const { source, normalized } = await read(file, builder, held, ctx);
  if (normalized) return normalized;
  const packets = flows.packets(opts.vars);
  return { header: { v: 1, type: 'normalized', ...source, vars: varsText, packets: packets.length, lost: builder.lost }, packets };
}

export interface WriteOptions {
  /** Write how many packets took each path: timing decides them, so two runs differ there. */
  counts: boolean;
  /** Leave out where the trace came from (kernel, command): for golden files shared between machines. */
  noSource?: boolean;
}

/** Writes the normalised form as JSON lines. */
export function writeNormalized(n: Normalized, out: Writable, opts: WriteOptions = { counts: false }): void {
  out.write(`${jsonText(opts.noSource ? { ...n.header, kernel: null, command: null } : n.header)}\n`);
  for (const p of n.packets) {
    if (opts.counts) out.write(`${jsonText(p)}\n`);
    else {
      const { repeat: _repeat, ...path } = p;
      out.write(`${jsonText(path)}\n`);
    }
  }
}

/** ` on NODE` for a place on a node (merged traces), else nothing. */
export const onNode = (node: string | undefined) => (node !== undefined ? ` on ${node}` : '');

/** One hop as a person reads it: `nf:ipv4:local_in b/veth-b ct=NEW DNAT a → b` (`… b/veth-b on node2 …` in a merged trace). */
export function hopText(h: NormalizedHop): string {
  let s = `${h.at} ${h.netns}${h.iface ? `/${h.iface}` : ''}${onNode(h.node)}`;
  if (h.ct) s += ` ct=${h.ct}`;
  if (h.nat) s += ` ${h.nat}`;
  if (h.verdict) s += ` ${h.verdict}`;
  if (h.nft) s += ` nft ${h.nft}`;
  return s;
}

export function endText(e: NormalizedPacket['end']): string {
  const cause = e.cause ? `, cause ${e.cause}` : '';
  if (e.how !== 'dropped') return `${e.how}${cause}`;
  return `dropped: ${e.reason} at ${e.netns}${e.iface ? `/${e.iface}` : ''}${onNode(e.node)}${e.by ? ` by ${e.by}` : ''}${cause}`;
}

/** The normalised form for a person: a block per flow, a line per hop; each line escaped (./escape.ts). */
export function writeNormalizedText(n: Normalized, out: Writable, opts: WriteOptions = { counts: false }): void {
  const line = (text: string) => out.write(`${escapeText(text)}\n`);
  let flow = '';
  for (const p of n.packets) {
    if (p.flow !== flow) {
      flow = p.flow;
      line(`flow ${flow}`);
    }
    line(`  ${p.dir} ${p.tuple}${p.flags ? ` ${p.flags}` : ''}${opts.counts ? ` ×${p.repeat}` : ''}`);
    for (const h of p.hops) line(`      ${hopText(h)}`);
    line(`      ${endText(p.end)}`);
  }
  if (n.header.lost > 0) out.write(`(${n.header.lost} records were lost while recording: hops may be missing)\n`);
}
