/**
 * `pktpath merge TRACE… [--out FILE] [--follow] [--window MS] [--node-of FILE=NODE] [--reference NODE]`:
 * per-node traces (files, FIFOs, `-` for stdin, files still written with
 * --follow) into one trace whose records carry their node and journey, on
 * one clock (src/regress/merge/). Needs no root. Exit 0 merged, 2 bad input
 * or usage (one line), 1 a failure while writing.
 */
import fs from 'node:fs';
import net from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { escapeText } from '../output/escape.js';
import { type OpenedOutput, discardOutput, openOutputPath } from '../output/files.js';
import { openForWriting } from '../kernel/process.js';
import type { MergeSource } from '../regress/merge/merge.js';
import { EXIT_OK } from './exit.js';
import { isNodeName } from './node-name.js';
import { UsageError, parseCount } from './values.js';
import { VERSION } from './version.js';

export interface MergeFlags {
  out?: string;
  force?: boolean;
  follow?: boolean;
  window?: string;
  nodeOf: string[];
  reference?: string;
}

/** Ambiguous pairs told one line each, up to this many; the rest counted. */
const AMBIGUOUS_LINES = 20;
/** How often a followed file is looked at again once read to its end, ms. */
const FOLLOW_POLL_MS = 100;
/** A followed file unchanged this long is asked whether anyone still writes it, ms. */
const FOLLOW_QUIET_MS = 500;

const say = (line: string) => process.stderr.write(`pktpath: ${escapeText(line)}\n`);

/** `FILE=NODE` pairs, checked. */
export function parseNodeOf(values: readonly string[], traces: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of values) {
    const eq = v.lastIndexOf('=');
    const file = v.slice(0, eq);
    const node = v.slice(eq + 1);
    if (eq <= 0 || node === '') throw new UsageError(`--node-of: '${v}' is not FILE=NODE`);
    if (!isNodeName(node)) throw new UsageError(`--node-of: '${node}' is not a node name: lowercase letters, digits, '-' and '.' (DNS-1123)`);
    if (!traces.includes(file)) throw new UsageError(`--node-of: '${file}' is not one of the traces merged`);
    out.set(file, node);
  }
  return out;
}

/** A FIFO's or stdin's bytes as they come (a socket on the fd: no thread of libuv's pool held per input). */
async function streamOf(path: string): Promise<AsyncIterable<Buffer>> {
  if (path === '-') return process.stdin;
  // Opening blocks until a writer opens it too: on the pool, not the loop.
  const handle = await fs.promises.open(path, fs.constants.O_RDONLY);
  return new net.Socket({ fd: handle.fd, readable: true, writable: false });
}

/** A followed file read on while it grows, or while a process has it open for writing: it ends once neither. */
function following(path: string, stopped: () => boolean): () => Promise<boolean> {
  const st = fs.statSync(path);
  let size = st.size;
  let quietMs = 0;
  return async () => {
    if (stopped()) return false;
    await sleep(FOLLOW_POLL_MS);
    const now = fs.statSync(path).size;
    if (now !== size) {
      size = now;
      quietMs = 0;
      return true;
    }
    quietMs += FOLLOW_POLL_MS;
    if (quietMs < FOLLOW_QUIET_MS) return true;
    quietMs = 0;
    return !stopped() && openForWriting(st.dev, st.ino);
  };
}

async function sources(traces: readonly string[], f: MergeFlags, stopped: () => boolean): Promise<MergeSource[]> {
  const { checkTraceFile, followTraceLines, readTraceLines, streamTraceLines } = await import('../regress/records.js');
  const nodeOf = parseNodeOf(f.nodeOf, traces);
  if (traces.filter((t) => t === '-').length > 1) throw new UsageError('merge: stdin (-) can be one input only');
  return Promise.all(traces.map(async (name): Promise<MergeSource> => {
    const node = nodeOf.get(name);
    let fifo = name === '-';
    if (!fifo) {
      try {
        fifo = fs.statSync(name).isFIFO();
      } catch {
        // Not there: the file check names it.
      }
    }
    if (fifo) {
      const stream = await streamOf(name);
      return { name, stream: true, node, lines: () => streamTraceLines(name, stream) };
    }
    checkTraceFile(name);
    if (f.follow) return { name, stream: true, node, lines: () => followTraceLines(name, following(name, stopped)) };
    const stamp = () => {
      const st = fs.statSync(name, { bigint: true });
      return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    };
    return { name, stream: false, node, stamp, lines: () => readTraceLines(name) };
  }));
}

async function merge(traces: string[], f: MergeFlags, argv: string[]): Promise<number> {
  if (traces.length === 0) throw new UsageError('merge: name the per-node traces to merge');
  const windowMs = parseCount('--window', f.window ?? '2000');
  if (windowMs < 1) throw new UsageError('--window: at least 1 ms');
  if (f.reference !== undefined && !isNodeName(f.reference)) throw new UsageError(`--reference: '${f.reference}' is not a node name`);
  const opened: OpenedOutput | null = f.out === undefined ? null
    : openOutputPath('--out', f.out, !!f.force, traces.filter((t) => t !== '-').map((path) => ({ flag: 'TRACE', path })));
  let stop = false;
  const onSignal = () => {
    stop = true;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const { mergeTraces } = await import('../regress/merge/merge.js');
  let shown = 0;
  const write = async (text: string) => {
    if (opened) {
      await new Promise<void>((resolve, reject) => fs.write(opened.fd, text, (e) => (e ? reject(e) : resolve())));
    } else if (!process.stdout.write(text)) await once(process.stdout, 'drain');
  };
  try {
    const result = await mergeTraces(await sources(traces, f, () => stop), {
      windowMs, reference: f.reference, version: VERSION, argv, stopped: () => stop,
      ambiguous: (a, nodes) => {
        if (++shown > AMBIGUOUS_LINES) return;
        say(`merge: ambiguous: ${nodes[a.node]} skb ${a.skb} received what ${a.journeys.join(' and ')} each sent (${a.key}); not paired`);
      },
    }, write);
    result.offsets.forEach((x, i) => {
      if (x.inconsistent) say(`merge: the pairs of ${result.merged.nodes[i]!.node} contradict each other (a clock stepped during the trace, or a packet was paired wrongly): its offset is their middle, unbounded`);
    });
    if (shown > AMBIGUOUS_LINES) say(`merge: ${shown - AMBIGUOUS_LINES} more ambiguous pairs not shown`);
    const m = result.merged;
    const offsets = m.nodes.map((n) => `${n.node} ${n.offset_ns >= 0 ? '+' : ''}${n.offset_ns} ns${n.uncertainty_ns === null ? ' (unbounded)' : ` ±${n.uncertainty_ns}`}`);
    const w = result.writtenPairs;
    const paired = w.pairs === m.pairs && w.ambiguous === m.ambiguous ? '' : ` (clocks aligned: ${w.pairs} pairs, ${w.ambiguous} ambiguous)`;
    say(`merge: ${result.written} records of ${m.nodes.length} nodes; ${m.pairs} pairs, ${m.ambiguous} ambiguous${paired}; offsets to ${m.reference}: ${offsets.join(', ')}` +
      (result.late > 0 ? `; ${result.late} records written late (out of order by more than --window)` : ''));
  } catch (e) {
    // A merge that did not finish leaves no half-written trace behind.
    if (opened) discardOutput(opened);
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (opened) fs.closeSync(opened.fd);
  return EXIT_OK;
}

export function addMergeCommand(program: Command, run: (p: Promise<number>) => void, argv: string[]): void {
  program.command('merge')
    .argument('<trace...>', 'per-node traces (`pktpath record --node`, or --output-json-file with --node-of); a FIFO, or - for stdin')
    .description('merge per-node traces into one: records keep their node, each packet one journey across nodes, clocks aligned by paired packets')
    .option('--out <file>', 'write here instead of stdout (made 0600; an existing file is replaced only with --force)')
    .option('--force', 'replace the --out file if it exists')
    .option('--follow', 'read files as they grow; stop on SIGINT, or once no process writes any of them')
    .option('--window <ms>', 'how far out of order records may be, and how far apart a packet\'s departure and arrival', '2000')
    .option('--node-of <file=node>', 'the node of a trace whose header names none; repeatable', (v: string, p: string[]) => [...p, v], [])
    .option('--reference <node>', 'the node whose clock the others are aligned to (default: the first input\'s)')
    .action((traces: string[], f: MergeFlags) => run(merge(traces, f, argv.slice(2))));
}
