/**
 * Reading trace files line by line, in bounded memory: a recorded or plain
 * JSON-lines trace (`pktpath record`, `--output-json`), or a normalised one
 * (`pktpath normalize`). Every problem names the file and line.
 */
import fs from 'node:fs';
import readline from 'node:readline';
import { JSON_SCHEMA_VERSION, type JsonHeaderRecord, type JsonRecord } from '../output/json.js';
import { InputFileError } from './errors.js';
import type { NormalizedHeader, NormalizedPacket } from './journeys.js';

/** A trace file that cannot be read as one: `FILE:LINE: what`. */
export class TraceFileError extends InputFileError {
  override name = 'TraceFileError';
}

export type TraceLine =
  | { kind: 'header'; record: JsonHeaderRecord }
  | { kind: 'event'; record: JsonRecord }
  | { kind: 'lost'; count: number; total: number; time: string }
  | { kind: 'normalized'; record: NormalizedHeader }
  | { kind: 'packet'; record: NormalizedPacket };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The fields normalisation reads, checked for their types (not the whole schema: a trace has millions of lines). */
function checkEvent(r: Record<string, unknown>): string | null {
  if (typeof r.skb !== 'string' || !/^0x[0-9a-f]+$/.test(r.skb)) return 'skb is not an address';
  if (typeof r.func !== 'string') return 'func is missing';
  if (typeof r.time !== 'string') return 'time is missing';
  if (typeof r.netns !== 'number' || typeof r.netns_name !== 'string') return 'netns is missing';
  if (typeof r.iface !== 'string') return 'iface is missing';
  if (r.tuple !== null && !(isObject(r.tuple) && typeof r.tuple.saddr === 'string' && typeof r.tuple.dport === 'number')) {
    return 'tuple is not a tuple';
  }
  if (r.drop_reason !== null && typeof r.drop_reason !== 'string') return 'drop_reason is not a string';
  if (r.ct !== undefined && !(isObject(r.ct) && typeof r.ct.state === 'string')) return 'ct is not a conntrack record';
  return null;
}

/** What one line is; throws a message (without the place) when it is none of them. */
export function classify(text: string): TraceLine {
  let r: unknown;
  try {
    r = JSON.parse(text);
  } catch {
    throw new Error('not JSON (a truncated line?)');
  }
  if (!isObject(r)) throw new Error('not a JSON object');
  if (r.v !== JSON_SCHEMA_VERSION) throw new Error(`schema version ${JSON.stringify(r.v)}; this pktpath reads version ${JSON_SCHEMA_VERSION}`);
  switch (r.type) {
    case undefined: {
      const problem = checkEvent(r);
      if (problem) throw new Error(`not an event: ${problem}`);
      return { kind: 'event', record: r as unknown as JsonRecord };
    }
    case 'lost':
      if (typeof r.count !== 'number') throw new Error('lost record without a count');
      return { kind: 'lost', count: r.count, total: typeof r.total === 'number' ? r.total : r.count, time: typeof r.time === 'string' ? r.time : '' };
    case 'header':
      if (!Array.isArray(r.namespaces) || !Array.isArray(r.points)) throw new Error('header without namespaces or points');
      return { kind: 'header', record: r as unknown as JsonHeaderRecord };
    case 'normalized':
      return { kind: 'normalized', record: r as unknown as NormalizedHeader };
    case 'packet':
      if (typeof r.flow !== 'string' || !Array.isArray(r.hops) || !isObject(r.end) || typeof r.end.how !== 'string' ||
          (r.dir !== '>' && r.dir !== '<')) {
        throw new Error('not a normalised packet: flow, dir, hops or end missing');
      }
      if (!r.hops.every((h: unknown) => isObject(h) && typeof h.at === 'string' && typeof h.netns === 'string')) {
        throw new Error('not a normalised packet: a hop without its point or namespace');
      }
      return { kind: 'packet', record: r as unknown as NormalizedPacket };
    default:
      throw new Error(`unknown record type ${JSON.stringify(r.type)}`);
  }
}

/** Throws TraceFileError unless `file` is a readable file: callers check before they write anything. */
export function checkTraceFile(file: string): void {
  try {
    fs.accessSync(file, fs.constants.R_OK);
  } catch (e) {
    throw new TraceFileError(file, 0, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (fs.statSync(file).isDirectory()) throw new TraceFileError(file, 0, 'is a directory');
}

/** The lines of a trace file, classified, with their numbers. Empty lines are skipped; an empty file is an error. */
export async function* readTrace(file: string): AsyncGenerator<TraceLine & { line: number }> {
  checkTraceFile(file);
  const input = fs.createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 });
  const lines = readline.createInterface({ input, crlfDelay: Infinity });
  let n = 0;
  let any = false;
  try {
    for await (const text of lines) {
      n++;
      if (text.trim() === '') continue;
      any = true;
      try {
        yield { ...classify(text), line: n };
      } catch (e) {
        throw new TraceFileError(file, n, (e as Error).message);
      }
    }
  } finally {
    lines.close();
    input.destroy();
  }
  if (!any) throw new TraceFileError(file, 0, 'is empty: no records');
}
