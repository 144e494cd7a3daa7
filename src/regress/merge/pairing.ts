/**
 * Pairing across the wire: the packet leaving node A and the same packet
 * arriving on node B become one journey. An skb's records on one node, from
 * its first to the point that frees it, are one instance; its journey is
 * `<node>:<skb>` of its first record, or, once paired as an arrival, the
 * journey of the departure it was paired with (so a DNAT or an encapsulation
 * on A, which keep A's skb, keep one identity across the wire). The
 * departure is A's last sending point with a key (./wire.ts), the arrival
 * B's first receiving point of an skb that came from outside B (no sending
 * point before it), with the same key, within the window of each other;
 * decided once every input has been read past it, so that every candidate
 * is known. An arrival whose key finds departures of more than one journey is
 * ambiguous: counted and reported, never guessed. Memory: the instances and
 * keys of the last two windows.
 *
 * A merged trace merged again keeps its journeys: a record that carries one
 * joins the instance that first carried it on its input (paired there
 * already), and only that first instance may arrive from a node of another
 * input; a departure is never looked for again on the arrival's own input.
 */
import { FREEING_POINTS } from '../../decode/points.js';
import type { JsonRecord } from '../../output/json.js';
import { heldPacket, pointDirection, wireKey } from './wire.js';

/** Sending points that fire after the device took the packet (and may have delivered it). */
const AFTER_HANDOFF: ReadonlySet<string> = new Set(['net_dev_xmit']);

/** One skb on one node, from its first record to the one that frees it. */
export class Instance {
  /** The instance whose journey this one continues (its departure), null for a journey's first. */
  parent: Instance | null = null;
  /** Last sending time per key (made at its first); the first receiving time with a key (the pairing's times). */
  tx: Map<string, number> | null = null;
  rxT = 0;
  /** Its skb came from outside the node, so far: no sending point yet, no receiving point with a key. */
  mayArrive = true;
  /** The packet its skb holds (heldPacket), once a record says. */
  held: string | null = null;
  lastT: number;
  /** @param carried the journey its records came with (a merged trace merged again), else null */
  constructor(readonly node: number, readonly label: string, t: number, readonly carried: string | null = null) {
    this.lastT = t;
  }

  /** The instance that started the journey. */
  root(): Instance {
    let i: Instance = this;
    while (i.parent !== null) i = i.parent;
    return i;
  }

  get journey(): string {
    return this.root().label;
  }
}

/** A departure paired with an arrival: `dep`'s node sent at depT what `arr`'s node received at arrT (times as given to ingest). */
export interface Pair {
  from: number;
  to: number;
  depT: number;
  arrT: number;
}

export interface Ambiguity {
  node: number;
  skb: string;
  key: string;
  /** The journeys the arrival could continue. */
  journeys: string[];
  t: number;
}

interface Entry {
  inst: Instance;
  t: number;
}

export interface PairerOptions {
  /** Node names by index (labels `<node>:<skb>`). */
  nodes: readonly string[];
  /** Each node's input (nodes of one merged trace share one, and were paired there); default a node its own. */
  inputOf?: readonly number[];
  /** How far apart a departure and its arrival may be, ns (in the times given). */
  windowNs: number;
  /**
   * With the clocks aligned: how much later than its arrival a departure may
   * seem (their uncertainty); an arrival is decided once every input has
   * read this far past it. Null while the clocks are not aligned: a
   * departure may be a window either side, and the arrival waits a window.
   */
  slackNs: number | null;
  onPair?(p: Pair): void;
  onAmbiguous?(a: Ambiguity): void;
}

export class Pairer {
  private readonly instances = new Map<string, Instance>();
  /** How many instances each `<node>:<skb>` has had: the second is named `<node>:<skb>#2`, so that journeys' names are never reused. */
  private readonly named = new Map<string, number>();
  /** The first instance of each journey records came with, and when the journey was last seen. */
  private readonly carried = new Map<string, { inst: Instance; lastT: number }>();
  /** Departures by key: every instance that sent it, in the last two windows. */
  private readonly entries = new Map<string, Entry[]>();
  /** Keys in the order first indexed, with when: what expires. */
  private readonly expiry: Array<{ key: string; t: number }> = [];
  private expiryAt = 0;
  /** Arrivals not yet decided: their departure may still be read. */
  private readonly arrivals: Array<{ inst: Instance; key: string; t: number }> = [];
  /** Pairs made, finished (their times read) when they expire: the departure's last sending point may come later. */
  private readonly open: Array<{ dep: Instance; arr: Instance; key: string; t: number }> = [];
  private lastSweep = -Infinity;
  pairs = 0;
  ambiguous = 0;

  constructor(private readonly o: PairerOptions) {}

  private inputOf(node: number): number {
    return this.o.inputOf?.[node] ?? node;
  }

  /**
   * The instance a record belongs to, with what it sent noted and its
   * arrival queued; `t` in ns, as ordered. An instance is an arrival when its
   * skb appeared on the node from outside: its first sending point has not
   * come before its first receiving point with a key.
   */
  ingest(node: number, r: JsonRecord, t: number): Instance {
    const id = `${node}:${r.skb}`;
    let inst = this.instances.get(id);
    const held = heldPacket(r);
    const carried = r.journey ?? null;
    // Its address holds another packet now: the last one's free went unseen (or the merge before said so).
    if (inst !== undefined && ((held !== null && inst.held !== null && held !== inst.held) || inst.carried !== carried)) inst = undefined;
    if (inst === undefined) {
      const n = (this.named.get(id) ?? 0) + 1;
      this.named.set(id, n);
      const first = carried === null ? undefined : this.carried.get(carried);
      inst = new Instance(node, carried !== null && first === undefined ? carried : `${this.o.nodes[node]}:${r.skb}${n > 1 ? `#${n}` : ''}`, t, carried);
      if (first !== undefined) {
        // Paired already, by the merge that wrote it.
        inst.parent = first.inst;
        inst.mayArrive = false;
      } else if (carried !== null) this.carried.set(carried, { inst, lastT: t });
      this.instances.set(id, inst);
    }
    const journey = carried === null ? undefined : this.carried.get(carried);
    if (journey !== undefined) journey.lastT = t;
    if (held !== null) inst.held = held;
    inst.lastT = t;
    const dir = pointDirection(r.func);
    const wk = dir === null ? null : wireKey(r);
    if (dir === 'tx') {
      inst.mayArrive = false;
      if (wk !== null) {
        inst.tx ??= new Map();
        const known = inst.tx.has(wk.key);
        if (!known) this.index(wk.key, { inst, t });
        // net_dev_xmit fires once the driver returns: a veth's peer has received the packet by then. Not a departure time.
        if (!known || !AFTER_HANDOFF.has(r.func)) inst.tx.set(wk.key, t);
      }
    } else if (dir === 'rx' && wk !== null && inst.mayArrive) {
      inst.mayArrive = false;
      inst.rxT = t;
      this.arrivals.push({ inst, key: wk.key, t });
    }
    if (FREEING_POINTS.has(r.func)) this.instances.delete(id);
    return inst;
  }

  private index(key: string, e: Entry): void {
    let list = this.entries.get(key);
    if (list === undefined) {
      list = [];
      this.entries.set(key, list);
      this.expiry.push({ key, t: e.t });
    }
    list.push(e);
  }

  /** Links an arrival to the one journey its key finds sent from another node in the window; more than one: ambiguous. */
  private decide(arr: Instance, key: string, t: number): void {
    const w = this.o.windowNs;
    const slack = this.o.slackNs;
    let best: Instance | null = null;
    let bestT = -Infinity;
    const journeys = new Set<string>();
    for (const e of this.entries.get(key) ?? []) {
      const sent = e.inst.tx!.get(key)!;
      if (this.inputOf(e.inst.node) === this.inputOf(arr.node) || Math.abs(sent - t) > w || (slack !== null && sent > t + slack)) continue;
      const root = e.inst.root();
      if (root === arr) continue;
      journeys.add(root.label);
      if (sent > bestT) {
        best = e.inst;
        bestT = sent;
      }
    }
    if (best === null) return;
    if (journeys.size > 1) {
      this.ambiguous++;
      this.o.onAmbiguous?.({ node: arr.node, skb: arr.label.slice(arr.label.lastIndexOf(':') + 1).replace(/#\d+$/, ''), key, journeys: [...journeys].sort(), t });
      return;
    }
    arr.parent = best;
    this.pairs++;
    this.open.push({ dep: best, arr, key, t });
  }

  /** Decides the arrivals every input has read far enough past. */
  private settle(now: number): void {
    const wait = this.o.slackNs ?? this.o.windowNs;
    let i = 0;
    for (; i < this.arrivals.length && this.arrivals[i]!.t + wait <= now; i++) {
      const a = this.arrivals[i]!;
      this.decide(a.inst, a.key, a.t);
    }
    if (i > 0) this.arrivals.splice(0, i);
  }

  /** Forgets what is older than two windows before `now` (the slowest input's time): pairs are finished, keys and idle skbs dropped. */
  expire(now: number): void {
    this.settle(now);
    const horizon = now - 2 * this.o.windowNs;
    while (this.open.length > 0 && this.open[0]!.t < horizon) this.finish(this.open.shift()!);
    while (this.expiryAt < this.expiry.length && this.expiry[this.expiryAt]!.t < horizon) {
      const { key } = this.expiry[this.expiryAt++]!;
      const list = this.entries.get(key);
      if (list === undefined) continue;
      const kept = list.filter((e) => e.inst.lastT >= horizon);
      if (kept.length === 0) this.entries.delete(key);
      else {
        this.entries.set(key, kept);
        this.expiry.push({ key, t: Math.max(...kept.map((e) => e.inst.lastT)) });
      }
    }
    if (this.expiryAt > 4096 && this.expiryAt * 2 > this.expiry.length) {
      this.expiry.splice(0, this.expiryAt);
      this.expiryAt = 0;
    }
    // An skb whose free was not recorded: forgotten after two idle windows (its next record starts a new instance).
    if (now - this.lastSweep >= this.o.windowNs) {
      this.lastSweep = now;
      for (const [id, inst] of this.instances) if (inst.lastT < horizon) this.instances.delete(id);
      for (const [j, c] of this.carried) if (c.lastT < horizon) this.carried.delete(j);
    }
  }

  /** Finishes every pair (the inputs ended). */
  end(): void {
    this.settle(Infinity);
    for (const p of this.open.splice(0)) this.finish(p);
  }

  private finish(p: { dep: Instance; arr: Instance; key: string }): void {
    this.o.onPair?.({ from: p.dep.node, to: p.arr.node, depT: p.dep.tx!.get(p.key)!, arrT: p.arr.rxT });
  }
}
