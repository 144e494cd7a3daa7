/** What a session counts of the events it hands out: per point, drops by reason and site, normal frees apart. */
import { expectedFree } from '../decode/points.js';
import type { TraceEvent } from '../output/event.js';
import type { TraceSummary } from '../output/summary.js';

const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);

export class EventCounts {
  events = 0;
  readonly perPoint = new Map<string, number>();
  readonly drops = new Map<string, number>();
  /** `REASON\tcaller` */
  readonly dropSites = new Map<string, number>();
  /** kfree_skb with a reason on a normal path (decode/points.ts): counted apart from drops. */
  readonly expectedFrees = new Map<string, number>();

  count(e: TraceEvent): void {
    this.events++;
    bump(this.perPoint, e.func);
    if (e.dropReason === null || e.func !== 'kfree_skb') return;
    const site = `${e.dropReason}\t${e.caller ?? '?'}`;
    if (expectedFree(e.func, e.dropReason, e.caller) !== null) {
      bump(this.expectedFrees, site);
    } else {
      bump(this.drops, e.dropReason);
      bump(this.dropSites, site);
    }
  }

  summary(): Pick<TraceSummary, 'events' | 'perPoint' | 'drops' | 'dropSites' | 'expectedFrees'> {
    return { events: this.events, perPoint: this.perPoint, drops: this.drops, dropSites: this.dropSites, expectedFrees: this.expectedFrees };
  }
}
