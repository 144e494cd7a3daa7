/**
 * `--explain` on a live trace: the engine behind the output's
 * JourneyExplainer. Each journey's events, as the grouped output ends it,
 * go through the JSON form the engine reads; its explanations come back as
 * text and records. The session hands settings records to `settings()`.
 */
import type { TraceEvent } from '../../output/event.js';
import type { Explained, JourneyExplainer } from '../../output/explained.js';
import { formatSkb } from '../../output/format.js';
import { toJsonRecord } from '../../output/json.js';
import type { EndKind } from '../../output/packets.js';
import { Explainer } from './engine.js';
import { explanationText } from './file.js';
import type { ExplanationRecord, SettingsRecord } from './inputs.js';

export class LiveExplainer implements JourneyExplainer {
  private told: Explained[] = [];
  private readonly explainer = new Explainer((e: ExplanationRecord) => this.told.push({ text: explanationText(e), record: e }));

  /** A namespace's settings, as the session reads them (at start and on change). */
  settings(s: SettingsRecord): void {
    this.explainer.settings(s);
  }

  journey(events: readonly TraceEvent[], how: EndKind): Explained[] {
    for (const e of events) this.explainer.event(toJsonRecord(e, { stack: false }));
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
