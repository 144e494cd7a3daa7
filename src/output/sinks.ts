/** Text and JSON-lines sinks over a BatchedWriter. */
import type { LostNotice, TraceEvent } from './event.js';
import { type JsonHeaderRecord, jsonLine, lostRecord } from './json.js';
import type { Sink } from './sink.js';
import type { BatchedWriter } from './stream.js';
import { TextFormatter, type TextOptions } from './text.js';

export interface TextSinkOptions extends TextOptions {
  /** Print the column header once, when the sink is created. */
  header: boolean;
}

export class TextSink implements Sink {
  private readonly formatter: TextFormatter;

  constructor(
    private readonly out: BatchedWriter,
    opts: TextSinkOptions,
  ) {
    this.formatter = new TextFormatter(opts);
    if (opts.header) out.write(this.formatter.header());
  }

  event(e: TraceEvent): void {
    // Skip the formatting work once the reader has gone away.
    if (this.out.closed) return;
    this.out.write(this.formatter.formatEvent(e));
  }

  lost(notice: LostNotice): void {
    if (this.out.closed) return;
    this.out.write(this.formatter.formatLost(notice));
  }

  close(): Promise<void> {
    return this.out.close();
  }
}

export interface JsonSinkOptions {
  stack: boolean;
  /** Written as the first line (`pktpath record`). */
  header?: JsonHeaderRecord;
}

export class JsonSink implements Sink {
  private readonly opts: JsonSinkOptions;

  constructor(
    private readonly out: BatchedWriter,
    opts: JsonSinkOptions,
  ) {
    this.opts = { stack: opts.stack };
    if (opts.header) out.write(JSON.stringify(opts.header));
  }

  event(e: TraceEvent): void {
    if (this.out.closed) return;
    this.out.write(jsonLine(e, this.opts));
  }

  lost(notice: LostNotice): void {
    if (this.out.closed) return;
    this.out.write(JSON.stringify(lostRecord(notice)));
  }

  close(): Promise<void> {
    return this.out.close();
  }
}
