/**
 * `--explain` live: at the end of each packet's journey (where `--group-by
 * skb` ends one: freed, idle, or the trace stopped), why it did not arrive,
 * after it. The output only writes what an explainer hands it: the engine
 * (src/regress/explain/) sits above this layer and is handed in.
 */
import type { LostNotice, TraceEvent } from './event.js';
import { jsonText } from './escape.js';
import { type CollectorOptions, type EndKind, PacketCollector } from './packets.js';
import type { Sink } from './pipeline.js';
import type { SettingsNotice } from './settings.js';
import type { BatchedWriter } from './stream.js';

/** One explanation: its text for a person (escaped, ending in a newline) and its JSON record. */
export interface Explained {
  text: string;
  record: object;
}

export interface JourneyExplainer {
  /** One packet's events as its journey ends: what is to be said of it. */
  journey(events: readonly TraceEvent[], how: EndKind): Explained[];
  /** The trace stopped: what can be said only once every journey ended (a request whose reply was dropped). */
  end(): Explained[];
  /** A traced namespace's settings, as first read and on change. */
  settings(notice: SettingsNotice): void;
  /** A route lookup or neighbour change tied to no skb, as it comes: the context of journeys still to end. */
  decision(e: TraceEvent): void;
}

/** An event the journeys do not hold: a route lookup or neighbour change tied to no skb. */
export function isUntiedDecision(e: TraceEvent): boolean {
  return e.skb === 0n && (!!e.route || !!e.neigh);
}

/** What an explainer reads beside the journeys, as it comes: settings and untied decisions (a sink among the others). */
export class ExplainerInputs implements Sink {
  constructor(private readonly explainer: JourneyExplainer) {}

  event(e: TraceEvent): void {
    if (isUntiedDecision(e)) this.explainer.decision(e);
  }

  lost(): void {}

  settings(notice: SettingsNotice): void {
    this.explainer.settings(notice);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Writes explanations on `out`, as text (their lines) or JSON lines. */
export function writeExplained(out: BatchedWriter, list: readonly Explained[], json: boolean): void {
  for (const e of list) out.write(json ? jsonText(e.record) : e.text.replace(/\n$/, ''));
}

/**
 * The main text or JSON sink with explanations after the journeys they
 * explain, on its writer: each event goes to the main sink first, so a
 * journey's explanation follows its last line; those told at the end are
 * written before the main sink closes its writer.
 */
export class ExplainSink implements Sink {
  private readonly packets: PacketCollector;
  private closed = false;

  constructor(
    private readonly main: Sink,
    private readonly out: BatchedWriter,
    private readonly explainer: JourneyExplainer,
    private readonly json: boolean,
    timing: CollectorOptions = {},
  ) {
    this.packets = new PacketCollector(timing, (events, how) => {
      if (!out.closed) writeExplained(out, explainer.journey(events, how), json);
    });
  }

  event(e: TraceEvent): void {
    this.main.event(e);
    if (!this.closed && !this.out.closed) this.packets.add(e);
  }

  lost(notice: LostNotice): void {
    this.main.lost(notice);
  }

  /** The main sink writes settings records (JSON) or lines (--output-settings): explaining them must not hide them. */
  settings(notice: SettingsNotice): void {
    this.main.settings?.(notice);
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.packets.stop();
      if (!this.out.closed) writeExplained(this.out, this.explainer.end(), this.json);
    }
    return this.main.close();
  }
}
