/**
 * Reading trace files line by line, in bounded memory: a recorded or plain
 * JSON-lines trace (`pktpath record`, `--output-json`), or a normalised one
 * (`pktpath normalize`). Every problem names the file and line.
 */
import { MiB } from '../bpf/input-file.js';
import { JSON_SCHEMA_VERSION, type JsonHeaderRecord, type JsonRecord } from '../output/json.js';
import type { JsonSettingsRecord } from '../output/settings.js';
import { InputFileError } from './errors.js';
import type { NormalizedHeader, NormalizedPacket } from './journeys.js';
import type { ExplanationRecord } from './explain/inputs.js';
import { checkReadableFile, lineBatches, streamLineBatches } from './lines.js';
import * as schema from './schema-checks.js';

/** A trace file that cannot be read as one: `FILE:LINE: what`. */
export class TraceFileError extends InputFileError {
  override name = 'TraceFileError';
}

/**
 * The longest line read: a trace line pktpath writes is under 1 MiB (the
 * largest: a packet of --pcap-snaplen 65535 in base64, 85 KiB; an --output-skb
 * dump, a 127-frame stack, a header naming thousands of points).
 */
export const TRACE_LINE_LIMIT = 16 * MiB;

export type TraceLine =
  | { kind: 'header'; record: JsonHeaderRecord }
  | { kind: 'event'; record: JsonRecord }
  | { kind: 'lost'; count: number; total: number; time: string; source?: 'nft'; node?: string }
  | { kind: 'settings'; record: JsonSettingsRecord }
  | { kind: 'normalized'; record: NormalizedHeader }
  | { kind: 'packet'; record: NormalizedPacket }
  /** Why a journey did not arrive (`--explain`, `pktpath explain --json`). */
  | { kind: 'explanation'; record: ExplanationRecord };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A name from the file, as a message shows it: quoted and short (the message is escaped once, where it is printed). */
function quoted(name: string): string {
  return `"${name.length > 60 ? `${name.slice(0, 60)}…` : name}"`;
}

/** A value from the file, as a message shows it: a string quoted, a structure by its kind. */
function shown(v: unknown): string {
  if (typeof v === 'string') return quoted(v);
  if (v === undefined) return 'none';
  return typeof v === 'object' && v !== null ? `(${Array.isArray(v) ? 'an array' : 'an object'})` : JSON.stringify(v);
}

/** A JSON pointer (`/tuple/daddr`, `/stack/3`) as a field's name: `tuple.daddr`, `stack[3]`, `skb_metadata["skb->hash"]`. */
function fieldName(pointer: string, last?: unknown): string {
  const parts = pointer === '' ? [] : pointer.slice(1).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (last !== undefined) parts.push(String(last));
  return parts.reduce((out, p) => (/^\d+$/.test(p) ? `${out}[${p}]` : /^[a-z_][a-z0-9_]*$/i.test(p) ? `${out}${out ? '.' : ''}${p}` : `${out}[${quoted(p)}]`), '');
}

/** The first thing the schema found wrong, naming the field. */
function schemaProblem(check: schema.SchemaCheck): string {
  const err = check.errors?.[0];
  if (!err) return 'does not match the schema';
  const params = err.params as { missingProperty?: string; additionalProperty?: string; allowedValues?: unknown[] };
  switch (err.keyword) {
    case 'required': return `${fieldName(err.instancePath, params.missingProperty)} is missing`;
    case 'additionalProperties': return `unknown field ${quoted(params.additionalProperty!)}${err.instancePath ? ` in ${fieldName(err.instancePath)}` : ''}`;
    case 'enum': return `${fieldName(err.instancePath)} must be one of ${params.allowedValues!.map((v) => JSON.stringify(v)).join(', ')}`;
    default: return `${fieldName(err.instancePath) || 'the record'} ${err.message ?? 'is not valid'}`;
  }
}

/** `r` checked against its kind's schema (schema/event.v1.json, schema/normalized.v1.json); `check` false: a line checked before. */
function checked(check: schema.SchemaCheck, r: Record<string, unknown>, kind: string, again = true): void {
  if (again && !check(r)) throw new Error(`not ${kind}: ${schemaProblem(check)}`);
}

function notJson(text: string): Error {
  const nul = text.indexOf('\0');
  return new Error(nul < 0 ? 'not JSON (a truncated line?)'
    : `not text: a NUL byte at column ${nul + 1} (a binary file, or UTF-16 without a byte-order mark?)`);
}

/**
 * What one line is, checked against the schema; throws a message (without the place) when it is none of them.
 * `check` false: only its type read, for a line read and checked before (merge's second pass over a file unchanged).
 */
export function classify(text: string, check = true): TraceLine {
  let r: unknown;
  try {
    r = JSON.parse(text);
  } catch {
    throw notJson(text);
  }
  if (!isObject(r)) throw new Error('not a JSON object');
  if (r.v !== JSON_SCHEMA_VERSION) throw new Error(`schema version ${shown(r.v)}; this pktpath reads version ${JSON_SCHEMA_VERSION}`);
  switch (r.type) {
    case undefined:
      checked(schema.event, r, 'an event', check);
      return { kind: 'event', record: r as unknown as JsonRecord };
    case 'lost':
      checked(schema.lost, r, 'a lost record', check);
      return { kind: 'lost', count: r.count as number, total: r.total as number, time: r.time as string, ...(r.source === 'nft' ? { source: 'nft' as const } : {}),
        ...(typeof r.node === 'string' ? { node: r.node } : {}) };
    case 'settings':
      checked(schema.settings, r, 'a settings record', check);
      return { kind: 'settings', record: r as unknown as JsonSettingsRecord };
    case 'header':
      checked(schema.header, r, 'a header', check);
      return { kind: 'header', record: r as unknown as JsonHeaderRecord };
    case 'normalized':
      checked(schema.normalized, r, 'a normalised header', check);
      return { kind: 'normalized', record: r as unknown as NormalizedHeader };
    case 'packet':
      checked(schema.packet, r, 'a normalised packet', check);
      return { kind: 'packet', record: r as unknown as NormalizedPacket };
    case 'explanation':
      checked(schema.explanation, r, 'an explanation', check);
      return { kind: 'explanation', record: r as unknown as ExplanationRecord };
    default:
      throw new Error(`unknown record type ${shown(r.type)}`);
  }
}

/** Throws InputFileError unless `file` is a regular file pktpath may read: callers check before they write anything. */
export function checkTraceFile(file: string): void {
  checkReadableFile(file);
}

const TOO_LONG = 'a trace line pktpath writes is under 1 MiB';

/**
 * The lines of a trace file, classified, with their numbers, in memory
 * bounded whatever a line holds (./lines.ts). Empty lines are skipped; an
 * empty file is an error, and so is a header anywhere but first.
 */
export function readTrace(file: string): AsyncGenerator<TraceLine & { line: number }> {
  return classifyLines(file, readTraceLines(file));
}

/** A trace file's lines in batches, unclassified (classifyLines classifies them). */
export function readTraceLines(file: string): AsyncGenerator<string[]> {
  return lineBatches(file, TRACE_LINE_LIMIT, TOO_LONG);
}

/** A trace's lines as a FIFO or stdin gives them (`merge`), bounded as a file's. */
export function streamTraceLines(name: string, stream: AsyncIterable<Buffer>): AsyncGenerator<string[]> {
  return streamLineBatches(name, stream, TRACE_LINE_LIMIT, TOO_LONG);
}

/** A file's lines read on while `atEnd` says it is still being written (`merge --follow`). */
export function followTraceLines(file: string, atEnd: () => Promise<boolean>): AsyncGenerator<string[]> {
  return lineBatches(file, TRACE_LINE_LIMIT, TOO_LONG, atEnd);
}

export type NumberedLine = TraceLine & { line: number; text: string };

/** Batches of a trace's lines, classified (readTrace's rules), `name` in every message. */
export async function* classifyLines(file: string, batches: AsyncIterable<string[]>): AsyncGenerator<NumberedLine> {
  for await (const batch of classifyBatches(file, batches)) yield* batch;
}

/** classifyLines a batch at a time (no promise per line); `check` false: lines checked before, only parsed (see classify). */
export async function* classifyBatches(file: string, batches: AsyncIterable<string[]>, check = true): AsyncGenerator<NumberedLine[]> {
  let n = 0;
  let records = 0;
  let headers = 0;
  let events = 0;
  for await (const batch of batches) {
    const out: NumberedLine[] = [];
    for (const text of batch) {
      n++;
      if (text.trim() === '') continue;
      let line: NumberedLine;
      try {
        // Its own object, fresh from JSON: numbered in place.
        line = classify(text, check) as NumberedLine;
      } catch (e) {
        throw new TraceFileError(file, n, (e as Error).message);
      }
      if (line.kind === 'header' || line.kind === 'normalized') {
        if (headers++ > 0) throw new TraceFileError(file, n, 'a second header: a trace has one, on its first line (two traces joined?)');
        if (records > 0) throw new TraceFileError(file, n, `a header after ${events > 0 ? 'events' : 'other records'}: a trace's header is its first line`);
      }
      if (line.kind === 'event' || line.kind === 'packet') events++;
      records++;
      line.line = n;
      line.text = text;
      out.push(line);
    }
    if (out.length > 0) yield out;
  }
  if (records === 0) throw new TraceFileError(file, 0, 'is empty: no records');
}
