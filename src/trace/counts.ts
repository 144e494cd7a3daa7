/** What a session counts of the events it hands out: per point, drops by reason and site, normal frees apart. */
import { expectedFree } from '../decode/points.js';
import type { TraceEvent } from '../output/event.js';
import type { TraceSummary } from '../output/summary.js';
import { SlotCache } from '../decode/cache.js';

/** Slots of the per-point counts (a plan has a few dozen points at most; more share slots). */
const POINT_SLOTS = 64;

const bump = (m: Map<string, number>, k: string, n = 1) => m.set(k, (m.get(k) ?? 0) + n);

export class EventCounts {
  events = 0;
  private readonly perPointMap = new Map<string, number>();
  /**
   * Counts by point in slots before the map: a flood's dozen points each
   * count in one comparison (the point's name is one string per point), not
   * a string-keyed map update per event.
   */
  private readonly pointSlots = new SlotCache(POINT_SLOTS, () => ({ func: '', n: 0 }));
  readonly drops = new Map<string, number>();
  /** `REASON\tcaller` */
  readonly dropSites = new Map<string, number>();
  /** kfree_skb with a reason on a normal path (decode/points.ts): counted apart from drops. */
  readonly expectedFrees = new Map<string, number>();

  count(e: TraceEvent): void {
    this.events++;
    const f = e.func;
    const slot = this.pointSlots.at(f.length === 0 ? 0 : Math.imul(f.length, 31) + f.charCodeAt(f.length - 1));
    if (slot.func === f) {
      slot.n++;
    } else {
      if (slot.n > 0) bump(this.perPointMap, slot.func, slot.n);
      slot.func = f;
      slot.n = 1;
    }
    if (e.dropReason === null || e.func !== 'kfree_skb') return;
    const site = `${e.dropReason}\t${e.caller ?? '?'}`;
    if (expectedFree(e.func, e.dropReason, e.caller) !== null) {
      bump(this.expectedFrees, site);
    } else {
      bump(this.drops, e.dropReason);
      bump(this.dropSites, site);
    }
  }

  /** Events by point so far. */
  get perPoint(): Map<string, number> {
    for (let i = 0; i < POINT_SLOTS; i++) {
      const slot = this.pointSlots.at(i);
      if (slot.n > 0) bump(this.perPointMap, slot.func, slot.n);
      slot.n = 0;
    }
    return this.perPointMap;
  }

  summary(): Pick<TraceSummary, 'events' | 'perPoint' | 'drops' | 'dropSites' | 'expectedFrees'> {
    return { events: this.events, perPoint: this.perPoint, drops: this.drops, dropSites: this.dropSites, expectedFrees: this.expectedFrees };
  }
}
