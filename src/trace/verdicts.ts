/**
 * Verdicts of other programs at tc hooks, without fentry. Where programs
 * other than pktpath's run, pktpath observes the hook twice: first in the
 * tcx chain (before them) and last (after them). An skb seen by both passed
 * them; one seen only first got a verdict, which its next observation tells:
 *
 *   freed next (kfree_skb)                           → dropped, with the kernel's reason
 *   next at tc ingress of another device             → peer redirect (no transmit between)
 *   next at netif_rx of another device               → plain redirect to that device's ingress
 *   next at tc egress of another device              → redirect to its egress: neighbour when the
 *                                                      frame's source is that device's own address
 *                                                      (the neighbour code built the header), else plain
 *   next elsewhere on the same device                → passed
 *
 * Legacy tc (clsact) runs after the whole tcx chain, where no observer can
 * follow it: its verdicts are always read from the next observation. Every
 * verdict read that way says so (`inferred`).
 *
 * The stage holds the stream in order while a verdict is open, so lines stay
 * in the order they happened; an skb not seen again within the hold time gets
 * `unknown`.
 */
import { FREEING_POINTS } from '../decode/points.js';
import type { ProgRef } from '../kernel/datapath.js';
import type { TcVerdict, TraceEvent } from '../output/event.js';
import type { RedirectKind, VerdictTarget } from '../decode/verdict.js';

export type Direction = 'ingress' | 'egress';

/** Other programs at one tc hook, relative to pktpath's observers there. */
export interface HookPrograms {
  /** tcx programs between pktpath's first and last observer. */
  between: ProgRef[];
  /** Programs after pktpath's last observer: tcx programs attached after it, then legacy clsact. */
  after: ProgRef[];
}

export type HookLookup = (netns: number, ifindex: number, direction: Direction) => HookPrograms | undefined;

/** Which of pktpath's tc observers wrote an event. */
export type TcPosition = 'first' | 'last';

interface Open {
  event: TraceEvent;
  direction: Direction;
  programs: HookPrograms;
  /** Whose verdict is awaited: the tcx programs between the observers, or the ones after. */
  stage: 'between' | 'after';
  sinceMs: number;
  settled: boolean;
}

interface Entry {
  event: TraceEvent;
  open: Open | null;
}

const EGRESS_POINTS: ReadonlySet<string> = new Set(['net_dev_queue', 'qdisc_enqueue', 'net_dev_start_xmit', 'net_dev_xmit']);
/** Beyond this many held events the oldest open verdict is given up, so memory stays bounded. */
const MAX_HELD = 65536;

const directionOf = (e: TraceEvent): Direction => (e.func === 'tc:egress' ? 'egress' : 'ingress');

export class VerdictStage {
  private readonly queue: Entry[] = [];
  private head = 0;
  private readonly openBySkb = new Map<bigint, Open>();

  constructor(
    private readonly lookup: HookLookup,
    private readonly emit: (e: TraceEvent) => void,
    private readonly holdMs = 500,
  ) {}

  /** One event, in ring order. `position`: which tc observer wrote it (null for other points). */
  push(e: TraceEvent, position: TcPosition | null, nowMs: number): void {
    // Most events meet no open verdict: skip hashing the skb (a BigInt) then.
    const open = this.openBySkb.size === 0 ? undefined : this.openBySkb.get(e.skb);
    if (open !== undefined && this.advance(open, e, position)) return;
    let mine: Open | null = null;
    if (e.probe.type === 'tc' && position !== null) mine = this.opened(e, position, nowMs);
    if (mine === null && this.queue.length === this.head) {
      this.emit(e);
      return;
    }
    this.queue.push({ event: e, open: mine });
    if (this.queue.length - this.head > MAX_HELD) this.giveUp(this.queue[this.head]!, 'too many events held');
    this.release();
  }

  /** Events held for a verdict: tick() must be called until none is. */
  get holding(): boolean {
    return this.queue.length > this.head;
  }

  /** Gives up verdicts older than the hold time; call it regularly. */
  tick(nowMs: number): void {
    for (let i = this.head; i < this.queue.length; i++) {
      const o = this.queue[i]!.open;
      if (o === null || o.settled) continue;
      if (nowMs - o.sinceMs < this.holdMs) break;
      this.giveUp(this.queue[i]!, `no later observation of the skb within ${this.holdMs} ms`);
    }
    this.release();
  }

  /** At the end of the trace: every open verdict is unknown, everything held goes out. */
  flush(): void {
    for (let i = this.head; i < this.queue.length; i++) this.giveUp(this.queue[i]!, 'the trace ended before the skb was seen again');
    this.release();
  }

  private opened(e: TraceEvent, position: TcPosition, nowMs: number): Open | null {
    const direction = directionOf(e);
    const programs = this.lookup(e.netns, e.ifindex, direction);
    if (programs === undefined) return null;
    let stage: Open['stage'];
    if (position === 'first' && programs.between.length > 0) stage = 'between';
    else if (programs.after.length > 0) stage = 'after';
    else return null;
    const o: Open = { event: e, direction, programs, stage, sinceMs: nowMs, settled: false };
    this.openBySkb.set(e.skb, o);
    return o;
  }

  /** The next observation of an skb with an open verdict; true when it is absorbed (pktpath's last observer). */
  private advance(o: Open, e: TraceEvent, position: TcPosition | null): boolean {
    const first = o.event;
    const sameDevice = e.netns === first.netns && e.ifindex === first.ifindex;
    const sameHook = e.probe.type === 'tc' && sameDevice && directionOf(e) === o.direction;
    if (sameHook && position === 'last') {
      if (o.stage === 'after') return true;
      if (o.programs.after.length > 0) {
        // Passed the tcx programs; the ones after decide next.
        o.stage = 'after';
        return true;
      }
      this.settle(o, { action: 'pass', target: null, by: o.programs.between, reason: null, inferred: false,
        evidence: "seen after them by pktpath's last observer in the chain" });
      return true;
    }
    const by = o.stage === 'between' ? o.programs.between : o.programs.after;
    const verdict = (action: TcVerdict['action'], evidence: string, target: VerdictTarget | null = null, reason: string | null = null) =>
      this.settle(o, { action, target, by, reason, inferred: true, evidence });
    if (e.func === 'kfree_skb') {
      verdict('drop', 'freed next (kfree_skb)', null, e.dropReason);
    } else if (FREEING_POINTS.has(e.func)) {
      verdict('stolen', `consumed next (${e.func}) without a drop`);
    } else if (!sameDevice && e.ifindex !== 0) {
      const to = (kind: RedirectKind, direction: Direction): VerdictTarget =>
        ({ kind, direction, ifindex: e.ifindex, ifname: e.ifname, netns: e.netns, netnsName: e.netnsName });
      const dev = `${e.ifname || `if${e.ifindex}`}${e.netnsName ? `@${e.netnsName}` : ''}`;
      if (e.func === 'tc:ingress') {
        verdict('redirect', `next seen at tc ingress of ${dev}, no transmit between`, to('peer', 'ingress'));
      } else if (e.func === 'netif_rx') {
        verdict('redirect', `next seen entering ${dev} through netif_rx`, to('plain', 'ingress'));
      } else if (e.func === 'tc:egress') {
        const neigh = e.ownSrcMac === true;
        verdict('redirect', neigh
          ? `next seen at tc egress of ${dev} with that device's own source address (a header built by the neighbour code)`
          : `next seen at tc egress of ${dev} with the frame's old source address`, to(neigh ? 'neigh' : 'plain', 'egress'));
      } else if (EGRESS_POINTS.has(e.func)) {
        verdict('redirect', `next seen at ${e.func} of ${dev}; neighbour or plain not told apart without its tc egress`,
          to('unknown', 'egress'));
      } else {
        verdict('redirect', `next seen at ${e.func} of ${dev}`, to('unknown', 'ingress'));
      }
    } else {
      verdict('pass', `next seen at ${e.func} on the same device`);
    }
    return false;
  }

  private settle(o: Open, v: TcVerdict): void {
    o.event.verdict = v;
    o.settled = true;
    if (this.openBySkb.get(o.event.skb) === o) this.openBySkb.delete(o.event.skb);
    this.release();
  }

  private giveUp(entry: Entry, why: string): void {
    const o = entry.open;
    if (o === null || o.settled) return;
    const by = o.stage === 'between' ? o.programs.between : o.programs.after;
    this.settle(o, { action: 'unknown', target: null, by, reason: null, inferred: true, evidence: why });
  }

  private release(): void {
    const q = this.queue;
    while (this.head < q.length) {
      const entry = q[this.head]!;
      if (entry.open !== null && !entry.open.settled) break;
      this.head++;
      this.emit(entry.event);
    }
    if (this.head === q.length) {
      q.length = 0;
      this.head = 0;
    } else if (this.head > 4096) {
      q.splice(0, this.head);
      this.head = 0;
    }
  }
}
