/**
 * The sinks an OutputConfig asks for: text or JSON lines (or grouped blocks)
 * on stdout or --output-file, and pcapng beside them. Every output of a run
 * is built here.
 */
import fs from 'node:fs';
import type { Writable } from 'node:stream';
import type { OutputConfig, OutputFileOptions } from './config.js';
import { type InputFile, OUTPUT_FILE_MODE, type OpenedOutput, OutputPathError, ReadyFile, checkDistinct, checkLaterOutputs, discardOutput, openOutputs } from './files.js';
import { ConnectionSink } from './connections.js';
import { JourneySink, type JourneyOptions } from './journey.js';
import { ExplainSink, ExplainerInputs, type JourneyExplainer } from './explained.js';
import { colorFor } from './paint.js';
import type { CollectorOptions } from './packets.js';
import { PcapngSink } from './pcapng.js';
import { RotatingFileWriter } from './rotate.js';
import type { Sink } from './pipeline.js';
import { JsonSink, TextSink } from './line-sinks.js';
import { BatchedWriter } from './stream.js';

/** Colour only for a terminal, never with NO_COLOR or into a file, unless forced. */
export function useColor(out: OutputConfig, isTTY: boolean, env = process.env): boolean {
  return colorFor(out.color, isTTY && out.file === null && !out.json, env);
}

type RotationOptions = Pick<OutputFileOptions, 'maxSize' | 'maxBackups' | 'maxAgeDays' | 'compress'>;

/** Refuses a rotation that would rename a device or replace files not pktpath's (rotated names that exist, without --force). */
function checkRotation(flag: string, path: string | null, opts: RotationOptions & { force: boolean }, inputs: readonly InputFile[]): void {
  if (path === null || opts.maxSize === null) return;
  checkLaterOutputs(flag, RotatingFileWriter.backups(path, opts), opts.force, inputs);
}

/** The destination of --output-file (opened and checked by openOutputs): rotating when a maximum size is set. */
export function openOutputFile(file: OpenedOutput, opts: RotationOptions): Writable {
  if (opts.maxSize === null) return fs.createWriteStream(file.path, { fd: file.fd });
  if (!file.regular) {
    throw new OutputPathError(`--output-file-max-size: '${file.path}' is not a regular file; only a file pktpath makes is rotated`);
  }
  return new RotatingFileWriter(file.path, file.fd, {
    maxSize: opts.maxSize, maxBackups: opts.maxBackups, maxAgeDays: opts.maxAgeDays, compress: opts.compress,
  });
}

export interface OutputSinkContext {
  /** The main output (stdout or --output-file) the text sink would write to. */
  writer: BatchedWriter;
  /** The text sink's options; grouped blocks follow its colour, timestamps, flags and stacks. */
  text: Omit<JourneyOptions, 'idleMs' | 'maxOpen' | 'clock' | 'every'>;
  /** The collectors' clock and sweeps (--group-by): recorded time in a replay; default: the real ones. */
  timing?: Pick<CollectorOptions, 'clock' | 'every'>;
  /** --explain: the engine that says why a journey did not arrive; null or absent: none. */
  explainer?: JourneyExplainer | null;
  /** A side output failed (e.g. the pcap file); the message names the file. */
  onError: (message: string) => void;
  /** Opens the pcapng file. Default: a stream on the file openOutputs opened. */
  openPcap?: (path: string) => Writable;
  /** The pcapng file, opened and checked before anything was attached. */
  pcapFile?: OpenedOutput;
  /** The --output-json-file, opened and checked before anything was attached. */
  jsonFile?: OpenedOutput;
  /** The JSON side output's options (stacks, when asked for). */
  json?: { stack: boolean };
}

export interface OutputSinks {
  /** Takes the place of the text sink on the main writer when set (--group-by). */
  main: Sink | null;
  /** Written to alongside the main sink (--output-pcap, --output-json-file). */
  extra: Sink[];
}

/** The sinks the file options add to, or put in place of, the text/JSON sink. */
export function createOutputSinks(opts: OutputFileOptions, ctx: OutputSinkContext): OutputSinks {
  const grouped = { ...ctx.text, ...ctx.timing, explainer: ctx.explainer ?? null };
  const main = opts.groupBy === 'skb' ? new JourneySink(ctx.writer, grouped)
    : opts.groupBy === 'ct' ? new ConnectionSink(ctx.writer, grouped) : null;
  const extra: Sink[] = [];
  if (opts.pcap !== null) {
    const path = opts.pcap;
    const opened = ctx.pcapFile;
    const dest = ctx.openPcap ? ctx.openPcap(path)
      : opened ? fs.createWriteStream(path, { fd: opened.fd })
      : fs.createWriteStream(path, { flags: 'w', mode: OUTPUT_FILE_MODE });
    extra.push(new PcapngSink(dest, {
      snaplen: opts.snaplen,
      onError: (err) => ctx.onError(`cannot write ${path}: ${err.message}`),
    }));
  }
  if (opts.jsonFile !== null) {
    const path = opts.jsonFile;
    const opened = ctx.jsonFile;
    const dest = opened ? fs.createWriteStream(path, { fd: opened.fd }) : fs.createWriteStream(path, { flags: 'w', mode: OUTPUT_FILE_MODE });
    const writer = new BatchedWriter(dest, { onError: (err) => ctx.onError(`cannot write ${path}: ${err.message}`) });
    extra.push(new JsonSink(writer, ctx.json ?? { stack: false }));
  }
  return { main, extra };
}

export interface SinkSetup {
  sinks: Sink[];
  /** The sink on stdout or --output-file. */
  main: Sink;
  /** Called when the reader of the main output went away (`| head`) or it failed. */
  onClosed: (fn: () => void) => void;
  /** Lines and bytes of the main output dropped because its reader did not keep up. */
  dropped: () => { lines: number; bytes: number };
  /** Resolves when the main output can take more (a reader that waits, as `pktpath show` does, drops nothing). */
  drain: () => Promise<void>;
  /** --ready-file, checked with the outputs: made once attached, removed at the end. */
  ready: ReadyFile | null;
}

/** Where a command's sinks write, besides what OutputConfig says. */
export interface SinkPlaces {
  /** The main output when there is no --output-file. */
  stdout?: Writable & { isTTY?: boolean };
  /** The flag that names the main output file (`record` calls it --out). */
  fileFlag?: string;
  /** The collectors' clock and sweeps (a replay's recorded time). */
  timing?: OutputSinkContext['timing'];
  explainer?: JourneyExplainer | null;
  /** The files the command reads: no output may be one of them. */
  inputs?: readonly InputFile[];
  /** --ready-file's path; null or absent: none. */
  readyFile?: string | null;
}

/**
 * Every sink of a run. The files are opened first, synchronously: a path
 * pktpath will not write throws OutputPathError before anything is attached.
 * Problems writing later are told through `warn` (a line for a person).
 */
export function createSinks(out: OutputConfig, warn: (line: string) => void, places: SinkPlaces = {}): SinkSetup {
  const { stdout = process.stdout, fileFlag = '--output-file', timing, inputs = [], readyFile = null, explainer = null } = places;
  let closedHandler: () => void = () => {};
  // All at once first: --force replaces nothing while another path of the command is still to be refused.
  checkDistinct([
    { flag: fileFlag, path: out.file }, { flag: '--output-pcap', path: out.files.pcap },
    { flag: '--output-json-file', path: out.files.jsonFile }, { flag: '--ready-file', path: readyFile },
  ], inputs);
  checkRotation(fileFlag, out.file, { ...out.files }, inputs);
  const files = openOutputs([
    { flag: fileFlag, path: out.file },
    { flag: '--output-pcap', path: out.files.pcap },
    { flag: '--output-json-file', path: out.files.jsonFile },
  ], out.files.force, inputs);
  let ready: ReadyFile | null = null;
  let dest: Writable = stdout;
  try {
    if (readyFile !== null) ready = ReadyFile.check('--ready-file', readyFile, out.files.force, files, inputs);
    const file = files.get(fileFlag);
    if (file) dest = openOutputFile(file, out.files);
  } catch (e) {
    for (const o of files.values()) discardOutput(o);
    throw e;
  }
  const writer = new BatchedWriter(dest, {
    onClosed: () => closedHandler(),
    onError: (err) => {
      warn(`cannot write output: ${err.message}`);
      closedHandler();
    },
    onDropped: () => warn('output: its reader does not keep up; lines are dropped (counted at the end) rather than held in memory'),
  });
  const text = {
    tuple: out.tuple,
    meta: out.meta,
    stack: out.stack,
    caller: out.caller,
    tcpFlags: out.tcpFlags,
    ct: out.ct,
    netnsNames: out.netnsNames,
    netnsNamesMax: out.netnsNamesMax ?? 0,
    node: out.node === true,
    timestamp: out.timestamp,
    color: useColor(out, stdout.isTTY === true),
  };
  const more = createOutputSinks(out.files, {
    writer, text, timing, explainer, onError: warn, pcapFile: files.get('--output-pcap'), jsonFile: files.get('--output-json-file'), json: { stack: out.stack },
  });
  const main: Sink = more.main ??
    (out.json ? new JsonSink(writer, { stack: out.stack }) : new TextSink(writer, { header: true, ...text, settings: out.settings ?? false }));
  // Grouped blocks say it after each block themselves; text and JSON lines through the explaining sink around them.
  const first = explainer && !(more.main instanceof JourneySink) ? new ExplainSink(main, writer, explainer, out.json, timing) : main;
  return {
    sinks: [first, ...more.extra, ...(explainer ? [new ExplainerInputs(explainer)] : [])], main, onClosed: (fn) => (closedHandler = fn), dropped: () => writer.dropped, drain: () => writer.drain(), ready,
  };
}
