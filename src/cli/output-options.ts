/**
 * Output options beyond the pwru set: file rotation, pcapng, per-packet
 * grouping. Parsing is pure and each bad value is a one-line UsageError; the
 * sink builders turn the parsed options into sinks and destinations.
 */
import fs from 'node:fs';
import type { Writable } from 'node:stream';
import { Command, Option } from 'commander';
import { ConnectionSink } from '../output/connections.js';
import { JourneySink, type JourneyOptions } from '../output/journey.js';
import { DEFAULT_SNAPLEN, MAX_SNAPLEN, PcapngSink } from '../output/pcapng.js';
import { RotatingFileWriter } from '../output/rotate.js';
import type { Sink } from '../output/sink.js';
import type { BatchedWriter } from '../output/stream.js';
import { UsageError, parseCount } from './config.js';

export const DEFAULT_MAX_BACKUPS = 5;
const MAX_BACKUPS = 1000;

export type GroupBy = 'skb' | 'ct';

export interface OutputFileOptions {
  /** Rotate --output-file before it passes this many bytes; null: never. */
  maxSize: number | null;
  maxBackups: number;
  /** pcapng file for packet bytes; null: none. */
  pcap: string | null;
  /** Bytes of each packet captured and written. */
  snaplen: number;
  groupBy: GroupBy | null;
}

/** The option values as commander hands them over (with the flags they depend on). */
export interface RawOutputFileOptions {
  outputFile?: string;
  outputJson?: boolean;
  outputFileMaxSize?: string;
  outputFileMaxBackups?: string;
  outputPcap?: string;
  pcapSnaplen?: string;
  groupBy?: string;
}

export function addOutputFileOptions(cmd: Command): Command {
  return cmd
    .option('--output-file-max-size <bytes>', 'rotate --output-file before it grows past this size (e.g. 100M)')
    .addOption(
      new Option('--output-file-max-backups <n>', 'rotated files to keep: FILE.1 (newest) to FILE.n')
        .default(String(DEFAULT_MAX_BACKUPS)),
    )
    .option('--output-pcap <path>', 'also write the captured packets as pcapng, one comment per observation point')
    .addOption(
      new Option('--pcap-snaplen <bytes>', `bytes of each packet to capture (1-${MAX_SNAPLEN})`).default(String(DEFAULT_SNAPLEN)),
    )
    .option('--group-by <what>', 'skb: each packet\'s path as one block when it ends; ct: the packets of each connection together');
}

const UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** Bytes, or a number with K, M, G or T (powers of 1024; `KiB`, `kb` and `k` alike), e.g. `100M`, `1.5G`. */
export function parseByteSize(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`${flag}: '${text}' is not a size (e.g. 100M)`);
  const bytes = Math.floor(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!);
  if (bytes < 1) throw new UsageError(`${flag}: '${text}' is less than 1 byte`);
  if (!Number.isSafeInteger(bytes)) throw new UsageError(`${flag}: '${text}' is too large`);
  return bytes;
}

function parseRange(flag: string, text: string, min: number, max: number): number {
  const n = parseCount(flag, text);
  if (n < min || n > max) throw new UsageError(`${flag}: '${text}' is out of range (${min}-${max})`);
  return n;
}

function parseGroupBy(text: string): GroupBy {
  const t = text.trim().toLowerCase();
  if (t === 'skb' || t === 'ct') return t;
  throw new UsageError(`--group-by: '${text}' is not one of skb, ct`);
}

export function parseOutputFileOptions(raw: RawOutputFileOptions): OutputFileOptions {
  const file = raw.outputFile ?? null;
  let maxSize: number | null = null;
  if (raw.outputFileMaxSize !== undefined) {
    maxSize = parseByteSize('--output-file-max-size', raw.outputFileMaxSize);
    if (file === null) throw new UsageError('--output-file-max-size: rotation needs --output-file');
  }
  const maxBackups = raw.outputFileMaxBackups === undefined
    ? DEFAULT_MAX_BACKUPS
    : parseRange('--output-file-max-backups', raw.outputFileMaxBackups, 0, MAX_BACKUPS);

  let pcap: string | null = null;
  if (raw.outputPcap !== undefined) {
    pcap = raw.outputPcap.trim();
    if (pcap === '') throw new UsageError('--output-pcap: needs a file name');
    if (pcap === file) throw new UsageError(`--output-pcap: '${pcap}' is also the --output-file`);
  }
  const snaplen = raw.pcapSnaplen === undefined ? DEFAULT_SNAPLEN : parseRange('--pcap-snaplen', raw.pcapSnaplen, 1, MAX_SNAPLEN);

  const groupBy = raw.groupBy === undefined ? null : parseGroupBy(raw.groupBy);
  if (groupBy !== null && raw.outputJson === true) {
    throw new UsageError('--group-by: prints text blocks; it does not combine with --output-json');
  }
  return { maxSize, maxBackups, pcap, snaplen, groupBy };
}

/** The destination of --output-file: rotating when a maximum size is set. */
export function openOutputFile(path: string, opts: Pick<OutputFileOptions, 'maxSize' | 'maxBackups'>): Writable {
  if (opts.maxSize === null) return fs.createWriteStream(path, { flags: 'w' });
  return new RotatingFileWriter(path, { maxSize: opts.maxSize, maxBackups: opts.maxBackups });
}

export interface OutputSinkContext {
  /** The main output (stdout or --output-file) the text sink would write to. */
  writer: BatchedWriter;
  /** The text sink's options; grouped blocks follow its colour, timestamps, flags and stacks. */
  text: Omit<JourneyOptions, 'idleMs' | 'maxOpen' | 'clock' | 'every'>;
  /** A side output failed (e.g. the pcap file); the message names the file. */
  onError: (message: string) => void;
  /** Opens the pcapng file. Default: a new file stream. */
  openPcap?: (path: string) => Writable;
}

export interface OutputSinks {
  /** Takes the place of the text sink on the main writer when set (--group-by). */
  main: Sink | null;
  /** Written to alongside the main sink (--output-pcap). */
  extra: Sink[];
}

/** The sinks these options add to, or put in place of, the text/JSON sink. */
export function createOutputSinks(opts: OutputFileOptions, ctx: OutputSinkContext): OutputSinks {
  const main = opts.groupBy === 'skb' ? new JourneySink(ctx.writer, ctx.text)
    : opts.groupBy === 'ct' ? new ConnectionSink(ctx.writer, ctx.text) : null;
  const extra: Sink[] = [];
  if (opts.pcap !== null) {
    const path = opts.pcap;
    const dest = (ctx.openPcap ?? ((p: string) => fs.createWriteStream(p, { flags: 'w' })))(path);
    extra.push(new PcapngSink(dest, {
      snaplen: opts.snaplen,
      onError: (err) => ctx.onError(`cannot write ${path}: ${err.message}`),
    }));
  }
  return { main, extra };
}
