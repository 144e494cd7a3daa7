/**
 * The explain engine: the records of a trace in order (header, events,
 * settings, lost) in, one explanation per journey that did not arrive out,
 * as each journey ends. Journeys are built as `normalize` and `assert` build
 * them (../journeys.ts), with their records kept. Route lookups and
 * neighbour changes are no hops: a lookup tied to a journey's skb is kept
 * with its records, the rest in the context. A request whose reply was
 * dropped is told at the end, when every journey of its flow has ended.
 */
import type { JsonHeaderRecord, JsonRecord } from '../../output/json.js';
import type { Journey } from '../journey-shapes.js';
import { JourneyBuilder, flowOf } from '../journeys.js';
import { ExplainContext } from './context.js';
import { type Finding, explainJourney, flowText } from './causes.js';
import type { Cause, ExplainEvent, ExplanationRecord, NeighSection, SettingsRecord } from './inputs.js';

/** Causes that do not stop a packet, or do not say its flow's other side dropped it. */
const NOT_A_DROP: ReadonlySet<Cause> = new Set(['unfinished', 'proxy-arp', 'reply-dropped']);

/** What the reply pairing keeps of each journey: a few strings. */
interface Summary {
  time: string;
  skb: string;
  flow: string;
  key: string;
  /** `>` or `<`: the side of its flow it came from. */
  dir: string;
  explained: ExplanationRecord | null;
}

/** The most journeys kept for the pairing; past it the oldest go (a request older than that is not told). */
const SUMMARIES = 1 << 20;

export function explanationRecord(j: Journey, f: Finding): ExplanationRecord {
  return { v: 1, type: 'explanation', time: j.time, skb: j.records?.[0]?.skb ?? '0x0', flow: flowText(j), cause: f.cause, sentence: f.sentence, evidence: f.evidence };
}

/** An event into journeys: route lookups and neighbour changes into the context (or the records of the journey they are tied to). */
export function feedEvent(builder: JourneyBuilder, ctx: ExplainContext, r: JsonRecord): void {
  if (r.neigh !== undefined) {
    ctx.addNeigh(r as ExplainEvent & { neigh: NeighSection });
    return;
  }
  if (r.route !== undefined) {
    if (r.skb === '0x0' || !builder.attach(r)) ctx.addUntiedRoute(r);
    return;
  }
  builder.event(r);
}

/**
 * The normalised form's cause: the journey's own explanation at its end (a
 * request is not told of its reply there: the reply's path carries its
 * cause), but for `unfinished` and `proxy-arp` (told once, on whichever
 * journey came first), which timing decides. The records go.
 */
export function causeOnEnd(j: Journey, ctx: ExplainContext): void {
  const f = explainJourney(j, ctx);
  if (f !== null && f.cause !== 'unfinished' && f.cause !== 'proxy-arp') j.end = { ...j.end, cause: f.cause };
  delete j.records;
}

export class Explainer {
  readonly ctx = new ExplainContext();
  private readonly builder: JourneyBuilder;
  private readonly summaries: Summary[] = [];

  /** `emit` gets each explanation as its journey ends, and the requests whose replies were dropped at `end()`. */
  constructor(private readonly emit: (e: ExplanationRecord) => void) {
    this.builder = new JourneyBuilder({ keepNeighbour: false, keepRecords: true }, (j) => this.journey(j));
  }

  header(h: JsonHeaderRecord): void {
    this.builder.header(h);
  }

  event(r: JsonRecord): void {
    feedEvent(this.builder, this.ctx, r);
  }

  settings(s: SettingsRecord): void {
    this.ctx.addSettings(s);
  }

  lost(count: number): void {
    this.ctx.lost += count;
  }

  /** A journey that went idle, live: the skb's open journey ends here. */
  endSkb(skb: string): void {
    this.builder.endSkb(skb);
  }

  /** The trace ended: journeys still open end, then the requests whose replies were dropped are told. */
  end(): void {
    this.builder.end();
    this.pairReplies();
  }

  private journey(j: Journey): void {
    const f = explainJourney(j, this.ctx);
    const e = f === null ? null : explanationRecord(j, f);
    if (e) this.emit(e);
    if (j.first === null) return;
    this.summaries.push({
      time: j.time, skb: j.records?.[0]?.skb ?? '0x0', flow: flowText(j), key: flowOf(j).key,
      dir: `${j.first.saddr} ${j.first.sport}`, explained: e,
    });
    if (this.summaries.length > SUMMARIES) this.summaries.shift();
    // Only its flow and its side count: the records are not needed any more.
    delete j.records;
  }

  /**
   * In time order, per flow: a journey that arrived waits for its answer; a
   * journey of the other side that arrived answers it; one that was dropped
   * makes it a request whose reply was dropped.
   */
  private pairReplies(): void {
    const waiting = new Map<string, Summary>();
    const byTime = [...this.summaries].sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
    for (const s of byTime) {
      const other = [...waiting.entries()].find(([k, w]) => k.startsWith(`${s.key}\n`) && w.dir !== s.dir);
      if (s.explained && NOT_A_DROP.has(s.explained.cause)) continue;
      if (s.explained) {
        if (!other) continue;
        waiting.delete(other[0]);
        const request = other[1];
        const reply = s.explained;
        this.emit({
          v: 1, type: 'explanation', time: request.time, skb: request.skb, flow: request.flow, cause: 'reply-dropped',
          sentence: `the reply was dropped: ${reply.sentence}`,
          evidence: [{ text: `reply ${reply.flow} (skb ${reply.skb}): ${reply.cause}`, time: reply.time }, ...reply.evidence],
        });
        continue;
      }
      if (other) waiting.delete(other[0]);
      waiting.set(`${s.key}\n${s.dir}`, s);
    }
  }
}
