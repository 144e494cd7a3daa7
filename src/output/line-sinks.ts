/** Text and JSON-lines sinks over a BatchedWriter. */
import type { LostNotice, TraceEvent } from './event.js';
import { jsonText } from './escape.js';
import { type JsonHeaderRecord, encodeJsonLine, lostRecord } from './json.js';
import type { Sink } from './pipeline.js';
import { type SettingsNotice, settingsNoticeText, toJsonSettings } from './settings.js';
import type { BatchedWriter } from './stream.js';
import { TextFormatter, type TextOptions } from './text.js';

export interface TextSinkOptions extends TextOptions {
  /** Print the column header once, when the sink is created. */
  header: boolean;
  /** --output-settings: each namespace's settings at the start, a line per change. */
  settings?: boolean;
}

export class TextSink implements Sink {
  private readonly formatter: TextFormatter;
  private readonly showSettings: boolean;

  constructor(
    private readonly out: BatchedWriter,
    opts: TextSinkOptions,
  ) {
    this.formatter = new TextFormatter(opts);
    this.showSettings = opts.settings ?? false;
    if (opts.header) out.write(this.formatter.header());
  }

  settings(notice: SettingsNotice): void {
    if (!this.showSettings || this.out.closed) return;
    for (const line of settingsNoticeText(notice)) this.out.write(line);
  }

  event(e: TraceEvent): void {
    // Skip the formatting work once the reader has gone away.
    if (this.out.closed) return;
    this.formatter.encodeEvent(e, this.out.beginLine());
    this.out.endLine();
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
}

export class JsonSink implements Sink {
  private readonly opts: JsonSinkOptions;

  constructor(
    private readonly out: BatchedWriter,
    opts: JsonSinkOptions,
  ) {
    this.opts = { stack: opts.stack };
  }

  /** The line a recorded trace starts with: call before the first event. */
  header(h: JsonHeaderRecord): void {
    this.out.write(jsonText(h));
  }

  event(e: TraceEvent): void {
    if (this.out.closed) return;
    encodeJsonLine(e, this.opts, this.out.beginLine());
    this.out.endLine();
  }

  lost(notice: LostNotice): void {
    if (this.out.closed) return;
    this.out.write(jsonText(lostRecord(notice)));
  }

  settings(notice: SettingsNotice): void {
    if (this.out.closed) return;
    this.out.write(jsonText(toJsonSettings(notice)));
  }

  close(): Promise<void> {
    return this.out.close();
  }
}
