/** RawEvent → TraceEvent: numbers become the names a user reads. */
import { AddressText, SlotCache } from '../decode/cache.js';
import { ctInfo } from '../decode/ct.js';
import type { RawEvent } from '../decode/event.js';
import type { CompiledSkbFetch } from '../filter/skb-expr.js';
import { enrichSections } from '../output/sections/registry.js';
import type { SectionContext } from '../output/sections/section.js';
import type { ReturnShape } from '../output/sections/retval.js';
import { EventFlags } from '../decode/layout.js';
import { FREEING_POINTS, type PointInfo, type ProbeType, recordPointName } from '../decode/points.js';
import { type Tuple, sameTuple, turnedAround } from '../decode/tuple.js';
import type { RedirectFlags } from '../kernel/btf.js';
import type { Symbols } from '../kernel/kallsyms.js';
import type { NameBook } from './names.js';
import type { TraceEvent } from '../output/event.js';
import { type TcVerdict, returnedVerdict } from '../decode/verdict.js';
import type { StackSymbols } from './stacks.js';

export interface EnrichOptions {
  points: PointInfo[];
  names: NameBook;
  dropReasons: Map<number, string>;
  /** CLOCK_MONOTONIC ns when the trace started, and the wall clock then. */
  startMonoNs: bigint;
  startWallNs: bigint;
  symbols: Symbols | null;
  /** Symbolizes stacks by id; null when stacks are off. */
  stacks: Pick<StackSymbols, 'frames'> | null;
  /** Note where an skb's tuple changes between points (costs a map lookup per event). */
  tupleChanges: boolean;
  /** The fields the skb metadata section holds, in order (compiled from the kernel's BTF). */
  skbMeta?: CompiledSkbFetch | null;
  /** The fields the XDP metadata section holds, in order. */
  xdpMeta?: CompiledSkbFetch | null;
  /** The kernel's redirect flags, for traced programs' verdicts; null when no program is traced (reading them scans the kernel's BTF). */
  redirectFlags: RedirectFlags | null;
  /** How a traced function's return value reads (--output-retval). */
  returns?: (func: string) => ReturnShape | null;
}

/**
 * Skbs whose last tuple is remembered; beyond this the oldest are forgotten.
 * An skb is forgotten when freed, but not when its free record was lost, so
 * under a flood that loses records the map fills: far more than the skbs in
 * flight at once, far less than a flood's worth of memory.
 */
const MAX_REMEMBERED_SKBS = 16384;

interface NamedPoint {
  func: string;
  /** Shared by every event of the point: sinks only read it. */
  probe: { type: ProbeType; name: string };
  /** The skb is freed here (its remembered tuple goes with it). */
  frees: boolean;
  /** A route or neighbour point: its tuple is a flow's, not the skb's headers. */
  flow: boolean;
}

export class Enricher {
  private readonly lastTuple = new Map<bigint, Tuple>();

  /** Named points by (point id, hook, family): names are built once, not per event. */
  private readonly named = new Map<number, NamedPoint>();
  private readonly recentPoints = new SlotCache(256, (): { key: number; point: NamedPoint | null } => ({ key: -1, point: null }));

  /** Callers by address: a flood's frees come from a handful of call sites. */
  private readonly callers: AddressText | null;

  /** What the optional sections name their values from. */
  private readonly sections: SectionContext;

  constructor(private readonly o: EnrichOptions) {
    this.sections = { skbMeta: o.skbMeta ?? null, xdpMeta: o.xdpMeta ?? null, ifname: (netns, ifindex) => o.names.ifname(netns, ifindex), returns: o.returns };
    const symbols = o.symbols;
    this.callers = symbols === null ? null : new AddressText(1024, (a) => symbols.format(a));
  }

  /** Functions of programs that serve many (kprobes; kretprobes: their returns), by address. */
  private readonly functions = new Map<bigint, NamedPoint>();
  private readonly returning = new Map<bigint, NamedPoint>();

  private point(raw: RawEvent): NamedPoint {
    if (raw.flags & EventFlags.func && this.o.points[raw.pointId]?.byAddress) return this.functionPoint(raw.funcIp, this.o.points[raw.pointId]!.type);
    const key = raw.pointId * 0x40000 + (raw.flags & (EventFlags.nfHook | EventFlags.tcDir) ? (raw.hook << 8) | raw.pf | 0x10000 : 0);
    // A slot by key before the map: a flood's dozen points each find theirs in one comparison.
    const slot = this.recentPoints.at(key ^ (key >>> 8) ^ (key >>> 18));
    if (slot.key === key) return slot.point!;
    let p = this.named.get(key);
    if (p === undefined) {
      const n = this.pointName(raw);
      p = { func: n.func, probe: { type: n.type, name: n.func }, frees: FREEING_POINTS.has(n.func), flow: this.o.points[raw.pointId]?.flow === true };
      this.named.set(key, p);
    }
    slot.key = key;
    slot.point = p;
    return p;
  }

  /** The function at `ip` (the kernel may report it a few bytes in: after an endbr64). */
  private functionPoint(ip: bigint, type: ProbeType): NamedPoint {
    const known = type === 'kretprobe' ? this.returning : this.functions;
    let p = known.get(ip);
    if (p === undefined) {
      const name = this.o.symbols?.lookup(ip)?.name.replace(/ \[.*\]$/, '') ?? `0x${ip.toString(16)}`;
      p = { func: name, probe: { type, name }, frees: type !== 'kretprobe' && FREEING_POINTS.has(name), flow: false };
      known.set(ip, p);
    }
    return p;
  }

  pointName(raw: RawEvent): { type: ProbeType; func: string } {
    const byAddress = raw.flags & EventFlags.func ? this.o.points[raw.pointId] : undefined;
    if (byAddress?.byAddress) return { type: byAddress.type, func: this.functionPoint(raw.funcIp, byAddress.type).func };
    const p = this.o.points[raw.pointId] ?? { type: 'tracepoint' as ProbeType, name: `point#${raw.pointId}` };
    return { type: p.type, func: recordPointName(p, raw.flags, raw.hook, raw.pf) };
  }

  enrich(raw: RawEvent): TraceEvent {
    const point = this.point(raw);
    const where = this.o.names.where(raw.netns, raw.ifindex);
    const sinceStartNs = raw.tsNs - this.o.startMonoNs;
    let dropReason: string | null = null;
    if (raw.flags & EventFlags.reason) {
      dropReason = this.o.dropReasons.get(raw.dropReason) ?? `reason#${raw.dropReason}`;
    }
    let caller: string | null = null;
    if ((raw.flags & EventFlags.caller) && raw.caller !== 0n && this.callers !== null) caller = this.callers.get(raw.caller);
    let stack: string[] | null = null;
    if ((raw.flags & EventFlags.stack) && this.o.stacks) stack = this.o.stacks.frames(raw.stackId);
    const tupleBefore = this.o.tupleChanges && !point.flow ? this.tupleChange(raw.skb, raw.tuple, point.frees) : null;
    const event: TraceEvent = {
      timeNs: this.o.startWallNs + sinceStartNs,
      sinceStartNs,
      skb: raw.skb,
      cpu: raw.cpu,
      pid: raw.pid,
      comm: raw.comm,
      netns: raw.netns,
      netnsName: where.netnsName,
      pod: where.pod,
      mark: raw.mark,
      ifindex: raw.ifindex,
      ifname: where.ifname,
      protocol: raw.protocol,
      mtu: raw.mtu,
      len: raw.len,
      tuple: raw.tuple,
      vlan: raw.vlan,
      func: point.func,
      probe: point.probe,
      dropReason,
      caller,
      stack,
      packet: raw.packet,
      ct: raw.ct === null ? null : ctInfo(raw.ct),
      // Always present (null when unchanged): one object shape for every event keeps the sinks fast.
      tupleBefore,
      verdict: raw.verdict ? this.returned(raw) : null,
      nft: null,
      ownSrcMac: (raw.flags & EventFlags.ownSrcMac) !== 0,
    };
    enrichSections(event, raw.sections, this.sections);
    return event;
  }

  /** The verdict a traced program's exit returned; the redirect target is named in the event's namespace. */
  private returned(raw: RawEvent): TcVerdict | null {
    const program = this.o.points[raw.pointId]?.program;
    if (!program || !raw.verdict || !this.o.redirectFlags) return null;
    const netnsName = this.o.names.netnsName(raw.netns);
    return returnedVerdict(raw.verdict, program, (ifindex) => ({ ifname: this.o.names.ifname(raw.netns, ifindex), netns: raw.netns, netnsName }),
      this.o.redirectFlags);
  }

  /**
   * The skb last seen, and its tuple: an skb's records mostly come one after
   * another, so the map (keyed by BigInt, slow to hash) is only touched when
   * the skb changes.
   */
  private recentSkb: bigint | null = null;
  private recentTuple: Tuple | null = null;

  /** The skb's previous tuple when it differs from this one; not when it is this one's reverse (another packet at the address). */
  private tupleChange(skb: bigint, tuple: Tuple | null, frees: boolean): Tuple | null {
    let before: Tuple | null | undefined;
    if (skb === this.recentSkb) {
      before = this.recentTuple;
    } else {
      if (this.recentSkb !== null && this.recentTuple !== null) this.remember(this.recentSkb, this.recentTuple);
      before = this.lastTuple.get(skb);
      this.recentSkb = skb;
      this.recentTuple = before ?? null;
    }
    if (frees) {
      this.lastTuple.delete(skb);
      this.recentSkb = null;
      this.recentTuple = null;
    } else if (tuple) {
      this.recentTuple = tuple;
    }
    return before && tuple && !sameTuple(before, tuple) && !turnedAround(before, tuple) ? before : null;
  }

  private remember(skb: bigint, tuple: Tuple): void {
    if (this.lastTuple.size >= MAX_REMEMBERED_SKBS && !this.lastTuple.has(skb)) {
      this.lastTuple.delete(this.lastTuple.keys().next().value!);
    }
    this.lastTuple.set(skb, tuple);
  }
}
