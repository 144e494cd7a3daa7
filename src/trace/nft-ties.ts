/**
 * Which skb an nftables trace event is of. The events carry the packet's
 * headers, never its skb: pktpath ties each packet's trace to an skb the
 * ring saw of the same flow (namespace and tuple). The two sources are read
 * at different moments, so a tie goes by when each thing could have happened:
 *
 * - A packet's trace starts in pktpath's own table, first at prerouting and
 *   output: that event is tied, the rest of the trace (its id) follows it.
 * - Each sighting (one skb of a flow in a namespace) starts one trace at
 *   most, and a flow's traces take its sightings in order, the earliest
 *   untied first: two packets of a flow between two reads each get theirs.
 * - A sighting that ended (freed, or seen in another namespace) before the
 *   previous read of the socket began is not a candidate: its trace, queued
 *   before it ended, was read then.
 * - A trace read by time T is of a packet seen by T, but at output the table
 *   runs before any observer (the netfilter one follows it, microseconds
 *   later): a start with no candidate waits for the next read of the ring.
 *
 * Only times taken around the reads decide, never the moment a pump began:
 * a trace queued between that moment and the read is tied like any other.
 * What no rule can tell apart is a busy flow whose trace events were lost:
 * its later traces may then take the sightings of the packets before them.
 */
import { FREEING_POINTS } from '../decode/points.js';
import { type HeadersTuple, tupleFromHeaders } from '../decode/ip.js';
import { PORTED_PROTOCOLS } from '../decode/protocols.js';
import type { Tuple } from '../decode/tuple.js';
import type { NftTrace } from '../kernel/nft-trace.js';
import type { TraceEvent } from '../output/event.js';

/** One skb of a flow in a namespace, from the ring. */
export interface Sighting {
  skb: bigint;
  /** The flow's tuple, as the probes read it. */
  tuple: Tuple;
  /** Its first record, since the trace's start (monotonic, the records' clock). */
  firstNs: bigint;
  /** When it was freed or went on to another namespace or tuple; null while it may still be here. */
  endNs: bigint | null;
  /** A trace start took it. */
  tied: boolean;
  cpu: number;
  pid: number;
  comm: string;
  len: number;
}

/** A trace event as one poll of a namespace's monitor read it. */
export interface TraceRead<F = unknown> {
  /** The namespace's state, handed back with the tie. */
  from: F;
  netns: number;
  trace: NftTrace;
  /** When the previous poll began reading (since the start): whatever was queued before, it read. */
  afterNs: bigint;
  /** When this poll had read everything it returned. */
  byNs: bigint;
}

/** What the first event of a packet's trace said: its headers, skb and hook. */
export interface TraceStart {
  tuple: Tuple | null;
  seen: Sighting | undefined;
  /** Devices and mark: with the headers, only in the first event. */
  iif: number;
  oif: number;
  mark: number;
  /** pktpath's name of the base chain's hook, kept by the caller across the trace's chains. */
  hook: string | null;
}

export interface TiedTrace<F> {
  read: TraceRead<F>;
  start: TraceStart;
}

/**
 * How long after a trace was read its packet may first show in the ring: at
 * output the netfilter observer runs microseconds after pktpath's table; a
 * later packet of the flow first seen past this is not the trace's.
 */
export const OUTPUT_SLACK_NS = 1_000_000n;
const MAX_REMEMBERED = 65536;
/**
 * Sightings kept per flow, and in all: the packets of a flow between two
 * reads. A read is 5 ms after the last but can be late (a first record that
 * names a caller parses the kernel's symbols; a loaded machine), and a late
 * read's traces still each find their packet: 4,096 packets of one flow
 * (0.8 s of a ping flood), 262,144 in all. Those no trace can take any more
 * are let go first (`keepUsable`).
 */
const SIGHTINGS = 4096;
const ALL_SIGHTINGS = 262_144;
const WAIT = Symbol('wait');

export const flowKey = (netns: number, t: Tuple) => `${netns}|${t.l4proto}|${t.saddr}|${t.sport}|${t.daddr}|${t.dport}`;
const addressKey = (netns: number, t: Tuple) => `${netns}|${t.saddr}|${t.daddr}`;

/**
 * The flows a trace start's headers may be of, the likeliest first: one when
 * they name its protocol; when IPv6 extension headers hid it (nftables copies
 * none of them), those between the same addresses whose ports the transport
 * copy holds, then those it cannot tell apart (no ports: other protocols, and
 * later fragments, whose transport copy is payload).
 */
function flowsOf(sightings: Sightings, netns: number, h: HeadersTuple, transport: Uint8Array | null): string[][] {
  if (h.l4Known) return [[flowKey(netns, h.tuple)]];
  const byPorts: string[] = [];
  const portless: string[] = [];
  const ports = transport !== null && transport.length >= 4 ? (transport[0]! << 24 | transport[1]! << 16 | transport[2]! << 8 | transport[3]!) >>> 0 : -1;
  for (const [key, t] of sightings.flowsBetween(netns, h.tuple)) {
    const ported = PORTED_PROTOCOLS.has(t.l4proto);
    if (!ported || (t.sport === 0 && t.dport === 0)) portless.push(key);
    else if (ports === ((t.sport << 16 | t.dport) >>> 0)) byPorts.push(key);
  }
  return [byPorts, portless];
}

/** The flows' sightings, and which trace took which. */
export class Sightings {
  private readonly flows = new Map<string, Sighting[]>();
  /** The flows between two addresses in a namespace, with their tuples. */
  private readonly between = new Map<string, Map<string, Tuple>>();
  /** Sightings not ended, by skb: a record of the skb elsewhere ends them. */
  private readonly open = new Map<bigint, { key: string; s: Sighting }>();
  private count = 0;

  note(e: TraceEvent): void {
    const at = this.open.get(e.skb);
    const key = e.tuple === null ? null : flowKey(e.netns, e.tuple);
    if (at !== undefined && (key === null || at.key === key)) {
      if (FREEING_POINTS.has(e.func)) this.end(e.skb, at.s, e.sinceStartNs);
      return;
    }
    if (at !== undefined) this.end(e.skb, at.s, e.sinceStartNs);
    if (key === null) return;
    while (this.count >= ALL_SIGHTINGS) this.forgetOldestFlow();
    let list = this.flows.get(key);
    if (list === undefined) {
      if (this.flows.size >= MAX_REMEMBERED) this.forgetOldestFlow();
      this.flows.set(key, (list = []));
      const ends = addressKey(e.netns, e.tuple!);
      let flows = this.between.get(ends);
      if (flows === undefined) this.between.set(ends, (flows = new Map()));
      flows.set(key, e.tuple!);
    }
    if (list.length >= SIGHTINGS) list = this.keepUsable(key, list, -1n);
    if (list.length >= SIGHTINGS) {
      list.shift();
      this.count--;
    }
    this.count++;
    const s: Sighting = {
      skb: e.skb, tuple: e.tuple!, firstNs: e.sinceStartNs, endNs: null, tied: false, cpu: e.cpu, pid: e.pid, comm: e.comm, len: e.len,
    };
    list.push(s);
    if (FREEING_POINTS.has(e.func)) {
      s.endNs = e.sinceStartNs;
      return;
    }
    if (this.open.size >= MAX_REMEMBERED) this.open.delete(this.open.keys().next().value!);
    this.open.set(e.skb, { key, s });
  }

  /**
   * The sighting a trace start read in (afterNs, byNs] ties to: the earliest
   * untied one that may be its packet, of the first group of flows that has
   * one. None yet: WAIT, unless this is the last try, which also takes an skb
   * already tied that is still in the namespace (a packet entering it again,
   * through loopback).
   */
  tie(groups: readonly string[][], afterNs: bigint, byNs: bigint, last: boolean): Sighting | undefined | typeof WAIT {
    for (const keys of groups) {
      let best: Sighting | undefined;
      for (const key of keys) {
        const s = this.untied(key, afterNs, byNs);
        if (s !== undefined && (best === undefined || s.firstNs < best.firstNs)) best = s;
      }
      if (best !== undefined) {
        best.tied = true;
        return best;
      }
    }
    if (!last) return WAIT;
    for (const keys of groups) {
      for (const key of keys) {
        const list = this.flows.get(key) ?? [];
        for (let i = list.length - 1; i >= 0; i--) {
          const s = list[i]!;
          if (s.tied && s.endNs === null && s.firstNs <= byNs + OUTPUT_SLACK_NS) return s;
        }
      }
    }
    return undefined;
  }

  /** The flow's earliest sighting a trace read in (afterNs, byNs] may take. */
  private untied(key: string, afterNs: bigint, byNs: bigint): Sighting | undefined {
    const list = this.flows.get(key);
    if (list === undefined) return undefined;
    for (const s of this.keepUsable(key, list, afterNs)) {
      if (s.firstNs > byNs + OUTPUT_SLACK_NS) break;
      if (s.tied || (s.endNs !== null && s.endNs < afterNs)) continue;
      return s;
    }
    return undefined;
  }

  /** The flows between the tuple's addresses in the namespace, by key. */
  flowsBetween(netns: number, t: Tuple): ReadonlyMap<string, Tuple> {
    return this.between.get(addressKey(netns, t)) ?? new Map<string, Tuple>();
  }

  /** Sightings held, in all flows. */
  get size(): number {
    return this.count;
  }

  /**
   * The flow's sightings some trace may still take: not those tied and
   * ended, nor those that ended before `afterNs`. Reads come in order and the
   * starts left waiting try again before any later read, so no later tie
   * looks before the `afterNs` of the one looking now.
   */
  private keepUsable(key: string, list: Sighting[], afterNs: bigint): Sighting[] {
    const kept = list.filter((s) => s.endNs === null || (!s.tied && s.endNs >= afterNs));
    if (kept.length === list.length) return list;
    this.count -= list.length - kept.length;
    this.flows.set(key, kept);
    return kept;
  }

  private forgetOldestFlow(): void {
    const [key, list] = this.flows.entries().next().value!;
    this.flows.delete(key);
    this.count -= list.length;
    const [netns, , saddr, , daddr] = key.split('|');
    const ends = `${netns}|${saddr}|${daddr}`;
    const flows = this.between.get(ends);
    flows?.delete(key);
    if (flows?.size === 0) this.between.delete(ends);
  }

  private end(skb: bigint, s: Sighting, atNs: bigint): void {
    s.endNs = atNs;
    this.open.delete(skb);
  }
}

/**
 * Trace events in, trace events with their start (skb, headers) out, in the
 * order read; a start that waits holds back the events of its trace that
 * follow it, until the next call.
 */
export class TraceTies<F> {
  readonly sightings = new Sightings();
  private readonly starts = new Map<string, Start<F>>();
  private waiting: Array<TiedTrace<F> & { start: Start<F> }> = [];

  /** `ownTable`: pktpath's trace table (family inet), where every packet's trace starts. */
  constructor(private readonly ownTable: string) {}

  /** A ring record, noted before the trace events read with it are settled. */
  note(e: TraceEvent): void {
    if (e.probe.type !== 'nft') this.sightings.note(e);
  }

  /**
   * The events read now, after those left waiting the last time, with the
   * start of their trace; `last`: nothing waits any more (the end of the trace).
   */
  settle(reads: Array<TraceRead<F>>, last = false): Array<TiedTrace<F>> {
    const out: Array<TiedTrace<F>> = [];
    // Left waiting: their packet's records have been read since; a start tries once more, its events follow it.
    for (const w of this.waiting) {
      if (w.start.by === w.read) this.tie(w.start, true);
      out.push(w);
    }
    this.waiting = [];
    for (const read of reads) {
      const start = this.startOf(read, last);
      if (start.waiting) this.waiting.push({ read, start });
      else out.push({ read, start });
    }
    return out;
  }

  private startOf(r: TraceRead<F>, last: boolean): Start<F> {
    const { trace } = r;
    const key = `${r.netns}|${trace.id}`;
    let start = this.starts.get(key);
    // A new packet (trace ids repeat when an skb is reused for the next packet of a flow), or a trace whose start was lost.
    if (start === undefined || (trace.network !== null && trace.table === this.ownTable && trace.family === 'inet')) {
      const headers = trace.network ? tupleFromHeaders(trace.network, trace.transport) : null;
      start = {
        tuple: headers?.tuple ?? null, headers, seen: undefined, waiting: false, by: r, iif: trace.iif, oif: trace.oif, mark: trace.mark, hook: null,
      };
      this.tie(start, last);
      if (this.starts.size >= MAX_REMEMBERED) this.starts.delete(this.starts.keys().next().value!);
      this.starts.set(key, start);
    }
    return start;
  }

  private tie(start: Start<F>, last: boolean): void {
    const { headers, by } = start;
    // Computed at each try: a flow the ring shows only after the trace was read counts too.
    const flows = headers === null ? [] : flowsOf(this.sightings, by.netns, headers, by.trace.transport);
    const seen = this.sightings.tie(flows, start.by.afterNs, start.by.byNs, last);
    start.waiting = seen === WAIT;
    start.seen = seen === WAIT ? undefined : seen;
    // The headers may not have named its transport protocol (IPv6 extension headers): the skb's tuple does.
    if (start.seen !== undefined && headers !== null && !headers.l4Known) start.tuple = start.seen.tuple;
  }
}

interface Start<F> extends TraceStart {
  /** What its headers say of its packet's flow. */
  headers: HeadersTuple | null;
  /** Its sighting is not in the ring yet. */
  waiting: boolean;
  /** The event that started it. */
  by: TraceRead<F>;
}
