/**
 * `pktpath normalize`: a trace in its canonical form — a header, then one
 * journey per line, flows in order of their names, each flow in time order —
 * so that two runs of one scenario give the same file. Also the reader every
 * comparison starts from: a raw trace is normalised on the fly, a normalised
 * one is read back as it is.
 */
import type { Writable } from 'node:stream';
import {
  FlowSet, type Journey, JourneyBuilder, type JourneyOptions, type NormalizedHeader, type NormalizedHop, type NormalizedPacket,
} from './journeys.js';
import { TraceFileError, readTrace } from './records.js';

export interface Normalized {
  header: NormalizedHeader;
  packets: NormalizedPacket[];
}

/** Every journey of a trace file, raw (as `assert` reads them), in the order they end. */
export async function journeysOf(file: string, opts: Pick<JourneyOptions, 'keepNeighbour'>, each: (j: Journey) => void): Promise<{ lost: number }> {
  const builder = new JourneyBuilder(opts, each);
  for await (const line of readTrace(file)) {
    if (line.kind === 'event') builder.event(line.record);
    else if (line.kind === 'header') builder.header(line.record);
    else if (line.kind === 'lost') builder.lost += line.count;
    else throw new TraceFileError(file, line.line, 'a normalised trace: this needs the recorded one');
  }
  builder.end();
  return { lost: builder.lost };
}

/** The normalised form of a trace file, raw or already normalised. */
export async function normalizeFile(file: string, opts: JourneyOptions, varsText: string[]): Promise<Normalized> {
  const flows = new FlowSet();
  const builder = new JourneyBuilder(opts, (j) => flows.add(j));
  let source: { kernel: string | null; command: string[] | null } = { kernel: null, command: null };
  let normalized: NormalizedHeader | null = null;
  const packets: NormalizedPacket[] = [];
  for await (const line of readTrace(file)) {
    switch (line.kind) {
      case 'header':
        builder.header(line.record);
        source = { kernel: line.record.kernel, command: line.record.command };
        break;
      case 'event':
        builder.event(line.record);
        break;
      case 'lost':
        builder.lost += line.count;
        break;
      case 'normalized':
        normalized = line.record;
        break;
      case 'packet':
        packets.push(line.record);
        break;
    }
  }
  if (normalized !== null) return { header: normalized, packets };
  builder.end();
  const out = flows.packets(opts.vars);
  return {
    header: { v: 1, type: 'normalized', ...source, vars: varsText, packets: out.length, lost: builder.lost },
    packets: out,
  };
}

export interface WriteOptions {
  /** Write how many packets took each path: timing decides them, so two runs differ there. */
  counts: boolean;
}

/** Writes the normalised form as JSON lines. */
export function writeNormalized(n: Normalized, out: Writable, opts: WriteOptions = { counts: false }): void {
  out.write(`${JSON.stringify(n.header)}\n`);
  for (const p of n.packets) {
    if (opts.counts) out.write(`${JSON.stringify(p)}\n`);
    else {
      const { repeat: _repeat, ...path } = p;
      out.write(`${JSON.stringify(path)}\n`);
    }
  }
}

/** One hop as a person reads it: `nf:ipv4:local_in b/veth-b ct=NEW DNAT a → b`. */
export function hopText(h: NormalizedHop): string {
  let s = `${h.at} ${h.netns}${h.iface ? `/${h.iface}` : ''}`;
  if (h.ct) s += ` ct=${h.ct}`;
  if (h.nat) s += ` ${h.nat}`;
  return s;
}

export function endText(e: NormalizedPacket['end']): string {
  if (e.how !== 'dropped') return e.how;
  return `dropped: ${e.reason} at ${e.netns}${e.iface ? `/${e.iface}` : ''}${e.by ? ` by ${e.by}` : ''}`;
}

/** The normalised form for a person: a block per flow, a line per hop. */
export function writeNormalizedText(n: Normalized, out: Writable, opts: WriteOptions = { counts: false }): void {
  let flow = '';
  for (const p of n.packets) {
    if (p.flow !== flow) {
      flow = p.flow;
      out.write(`flow ${flow}\n`);
    }
    out.write(`  ${p.dir} ${p.tuple}${p.flags ? ` ${p.flags}` : ''}${opts.counts ? ` ×${p.repeat}` : ''}\n`);
    for (const h of p.hops) out.write(`      ${hopText(h)}\n`);
    out.write(`      ${endText(p.end)}\n`);
  }
  if (n.header.lost > 0) out.write(`(${n.header.lost} records were lost while recording: hops may be missing)\n`);
}
