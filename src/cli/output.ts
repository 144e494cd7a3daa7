/** Builds the sinks a TraceConfig asks for. */
import type { Writable } from 'node:stream';
import type { OutputConfig } from './config.js';
import { JsonSink, TextSink } from '../output/sinks.js';
import { createOutputSinks, openOutputFile } from './output-options.js';
import type { Sink } from '../output/sink.js';
import { BatchedWriter } from '../output/stream.js';

export interface SinkSetup {
  sinks: Sink[];
  /** Called when the reader of stdout went away (`| head`). */
  onClosed: (fn: () => void) => void;
}

/** Colour only for a terminal, never with NO_COLOR or into a file, unless forced. */
export function useColor(out: OutputConfig, isTTY: boolean, env = process.env): boolean {
  return colorFor(out.color, isTTY && out.file === null && !out.json, env);
}

/** --color for one stream: `auto` colours a terminal unless NO_COLOR is set. */
export function colorFor(mode: OutputConfig['color'], isTTY: boolean, env = process.env): boolean {
  if (mode === 'always') return true;
  if (mode === 'never') return false;
  return isTTY && !('NO_COLOR' in env && env.NO_COLOR !== '');
}

export function createSinks(out: OutputConfig, stdout: Writable & { isTTY?: boolean } = process.stdout): SinkSetup {
  let closedHandler: () => void = () => {};
  const dest: Writable = out.file !== null ? openOutputFile(out.file, out.files) : stdout;
  const writer = new BatchedWriter(dest, {
    onClosed: () => closedHandler(),
    onError: (err) => {
      process.stderr.write(`pktpath: cannot write output: ${err.message}\n`);
      closedHandler();
    },
  });
  const text = {
    tuple: out.tuple,
    meta: out.meta,
    stack: out.stack,
    caller: out.caller,
    tcpFlags: out.tcpFlags,
    ct: out.ct,
    timestamp: out.timestamp,
    color: useColor(out, stdout.isTTY === true),
  };
  const more = createOutputSinks(out.files, {
    writer,
    text,
    onError: (m) => process.stderr.write(`pktpath: ${m}\n`),
  });
  const main: Sink = more.main ??
    (out.json ? new JsonSink(writer, { stack: out.stack }) : new TextSink(writer, { header: true, ...text }));
  return { sinks: [main, ...more.extra], onClosed: (fn) => (closedHandler = fn) };
}
