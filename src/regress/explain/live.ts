/**
 * `--explain` on a live trace: the engine behind the output's
 * JourneyExplainer. Each journey's events, as the grouped output ends it,
 * go through the JSON form the engine reads; its explanations come back as
 * text and records. Settings and route or neighbour events tied to no skb
 * come as they arrive (`settings()`, `decision()`).
 */
import type { TraceEvent } from '../../output/event.js';
import { type Explained, type JourneyExplainer, isUntiedDecision } from '../../output/explained.js';
import { formatSkb } from '../../output/format.js';
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

  journey(events: readonly TraceEvent[], how: EndKind): Explained[] {
    // Untied decisions came through decision() as they arrived.
    for (const e of events) if (!isUntiedDecision(e)) this.explainer.event(toJsonRecord(e, { stack: false }));
    if (how !== 'end' && events.length > 0) this.explainer.endSkb(formatSkb(events[0]!.skb));
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
