/** Builds the sinks a TraceConfig asks for. */
import fs from 'node:fs';
import type { Writable } from 'node:stream';
import type { OutputConfig } from './config.js';
import { JsonSink, TextSink } from '../output/sinks.js';
import type { Sink } from '../output/sink.js';
import { BatchedWriter } from '../output/stream.js';

export interface SinkSetup {
  sinks: Sink[];
  /** Called when the reader of stdout went away (`| head`). */
  onClosed: (fn: () => void) => void;
}

/** Colour only for a terminal, never with NO_COLOR or into a file, unless forced. */
export function useColor(out: OutputConfig, isTTY: boolean, env = process.env): boolean {
  if (out.color === 'always') return true;
  if (out.color === 'never') return false;
  return isTTY && out.file === null && !out.json && !('NO_COLOR' in env && env.NO_COLOR !== '');
}

export function createSinks(out: OutputConfig, stdout: Writable & { isTTY?: boolean } = process.stdout): SinkSetup {
  let closedHandler: () => void = () => {};
  const dest: Writable = out.file !== null ? fs.createWriteStream(out.file, { flags: 'w' }) : stdout;
  const writer = new BatchedWriter(dest, {
    onClosed: () => closedHandler(),
    onError: (err) => {
      process.stderr.write(`pktpath: cannot write output: ${err.message}\n`);
      closedHandler();
    },
  });
  const sink: Sink = out.json
    ? new JsonSink(writer, { stack: out.stack })
    : new TextSink(writer, {
      header: true,
      tuple: out.tuple,
      meta: out.meta,
      stack: out.stack,
      caller: out.caller,
      tcpFlags: out.tcpFlags,
      timestamp: out.timestamp,
      color: useColor(out, stdout.isTTY === true),
    });
  return { sinks: [sink], onClosed: (fn) => (closedHandler = fn) };
}
