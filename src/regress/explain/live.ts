/**
 * `--explain` on a live trace: the engine behind the output's
 * JourneyExplainer. Each journey's events, as the grouped output ends it,
 * go through the JSON form the engine reads; its explanations come back as
 * text and records. Settings and route or neighbour events tied to no skb
 * come as they arrive (`settings()`, `decision()`).
 */
import type { TraceEvent } from '../../output/event.js';
import { type Explained, type JourneyExplainer, isUntiedDecision } from '../../output/explained.js';
import { toJsonRecord } from '../../output/json.js';
import type { EndKind } from '../../output/packets.js';
import { type SettingsNotice, toJsonSettings } from '../../output/settings.js';
import { Explainer } from './engine.js';
import { explanationText } from './file.js';
import type { ExplanationRecord } from './inputs.js';

export class LiveExplainer implements JourneyExplainer {
  private told: Explained[] = [];
  private readonly explainer = new Explainer((e: ExplanationRecord) => this.told.push({ text: explanationText(e), record: e }));

  /** A namespace's settings, as the session reads them (at start and on change). */
  settings(notice: SettingsNotice): void {
    this.explainer.settings(toJsonSettings(notice));
  }

  decision(e: TraceEvent): void {
    this.explainer.event(toJsonRecord(e, { stack: false }));
  }

  journey(events: readonly TraceEvent[], _how: EndKind): Explained[] {
    // Untied decisions came through decision() as they arrived.
    for (const e of events) if (!isUntiedDecision(e)) this.explainer.event(toJsonRecord(e, { stack: false }));
    // A journey the output ended because it went idle stays open here: an skb
    // may wait seconds on a neighbour's queue and go on (or be dropped) after.
    // What never went on is told when the trace stops (end()).
    return this.take();
  }

  end(): Explained[] {
    this.explainer.end();
    return this.take();
  }

  private take(): Explained[] {
    const out = this.told;
    this.told = [];
    return out;
  }
}
