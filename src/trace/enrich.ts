/** RawEvent → TraceEvent: numbers become the names a user reads. */
import { EventFlags, type RawEvent, type Tuple } from '../decode/event.js';
import type { Kallsyms } from '../kernel/kallsyms.js';
import {
  FREEING_POINTS, NF_AFTER_NAT, NF_AFTER_NAT_SUFFIX, NF_FAMILY_BY_PROTO, NF_HOOK_BY_NUMBER, nfPointName, tcPointName,
} from '../plan/catalog.js';
import { ctInfo } from './ct.js';
import type { ProbeType, TraceEvent } from './event.js';

/** What each point id stands for; tc and netfilter probes name their hook at run time. */
export interface PointInfo {
  type: ProbeType;
  name: string;
}

export interface NameBook {
  netns: Map<number, string>;
  /** `${netns}:${ifindex}` → device name. */
  ifaces: Map<string, string>;
}

export interface EnrichOptions {
  points: PointInfo[];
  names: NameBook;
  dropReasons: Map<number, string>;
  /** CLOCK_MONOTONIC ns when the trace started, and the wall clock then. */
  startMonoNs: bigint;
  startWallNs: bigint;
  symbols: Kallsyms | null;
  /** Reads a stack by id (innermost first); null when stacks are off. */
  readStack: ((id: number) => bigint[]) | null;
  /** Note where an skb's tuple changes between points (costs a map lookup per event). */
  tupleChanges: boolean;
}

/** Skbs whose last tuple is remembered; beyond this the oldest are forgotten. */
const MAX_REMEMBERED_SKBS = 65536;

export function sameTuple(a: Tuple, b: Tuple): boolean {
  return a.saddr === b.saddr && a.daddr === b.daddr && a.sport === b.sport && a.dport === b.dport &&
    a.l4proto === b.l4proto;
}

interface NamedPoint {
  func: string;
  /** Shared by every event of the point: sinks only read it. */
  probe: { type: ProbeType; name: string };
}

export class Enricher {
  private readonly stackCache = new Map<number, string[]>();
  private readonly lastTuple = new Map<bigint, Tuple>();
  private readonly ifacesByNetns = new Map<number, Map<number, string>>();

  /** Named points by (point id, hook, family): names are built once, not per event. */
  private readonly named = new Map<number, NamedPoint>();

  constructor(private readonly o: EnrichOptions) {}

  private point(raw: RawEvent): NamedPoint {
    const key = raw.pointId * 0x40000 + (raw.flags & (EventFlags.nfHook | EventFlags.tcDir) ? (raw.hook << 8) | raw.pf | 0x10000 : 0);
    let p = this.named.get(key);
    if (p === undefined) {
      const n = this.pointName(raw);
      p = { func: n.func, probe: { type: n.type, name: n.name } };
      this.named.set(key, p);
    }
    return p;
  }

  pointName(raw: RawEvent): { type: ProbeType; name: string; func: string } {
    const p = this.o.points[raw.pointId] ?? { type: 'tracepoint' as ProbeType, name: `point#${raw.pointId}` };
    if (raw.flags & EventFlags.nfHook) {
      const family = NF_FAMILY_BY_PROTO[raw.pf];
      const hook = NF_HOOK_BY_NUMBER[raw.hook];
      const base = family && hook ? nfPointName(family, hook) : `nf:${raw.pf}:${raw.hook}`;
      // The second netfilter observer sits after NAT on the same hook.
      const func = p.name === NF_AFTER_NAT ? `${base}${NF_AFTER_NAT_SUFFIX}` : base;
      return { type: p.type, name: func, func };
    }
    if (raw.flags & EventFlags.tcDir) {
      const func = tcPointName(raw.hook === 0 ? 'ingress' : 'egress');
      return { type: p.type, name: func, func };
    }
    return { type: p.type, name: p.name, func: p.name };
  }

  enrich(raw: RawEvent): TraceEvent {
    const point = this.point(raw);
    const sinceStartNs = raw.tsNs - this.o.startMonoNs;
    let dropReason: string | null = null;
    if (raw.flags & EventFlags.reason) {
      dropReason = this.o.dropReasons.get(raw.dropReason) ?? `reason#${raw.dropReason}`;
    }
    let caller: string | null = null;
    if ((raw.flags & EventFlags.caller) && raw.caller !== 0n && this.o.symbols) {
      caller = this.o.symbols.format(raw.caller);
    }
    let stack: string[] | null = null;
    if ((raw.flags & EventFlags.stack) && this.o.readStack) stack = this.stack(raw.stackId);
    const tupleBefore = this.o.tupleChanges ? this.tupleChange(raw.skb, raw.tuple, point.func) : null;
    return {
      timeNs: this.o.startWallNs + sinceStartNs,
      sinceStartNs,
      skb: raw.skb,
      cpu: raw.cpu,
      pid: raw.pid,
      comm: raw.comm,
      netns: raw.netns,
      netnsName: this.o.names.netns.get(raw.netns) ?? '',
      mark: raw.mark,
      ifindex: raw.ifindex,
      ifname: this.ifaceName(raw.netns, raw.ifindex),
      protocol: raw.protocol,
      mtu: raw.mtu,
      len: raw.len,
      tuple: raw.tuple,
      func: point.func,
      probe: point.probe,
      dropReason,
      caller,
      stack,
      packet: raw.packet,
      ct: raw.ct === null ? null : ctInfo(raw.ct),
      // Always present (null when unchanged): one object shape for every event keeps the sinks fast.
      tupleBefore,
    };
  }

  /** Device names per namespace, without building a key string per event. */
  private ifaceName(netns: number, ifindex: number): string {
    let byIndex = this.ifacesByNetns.get(netns);
    if (byIndex === undefined) {
      byIndex = new Map();
      for (const [key, name] of this.o.names.ifaces) {
        const [ns, idx] = key.split(':');
        if (Number(ns) === netns) byIndex.set(Number(idx), name);
      }
      this.ifacesByNetns.set(netns, byIndex);
    }
    return byIndex.get(ifindex) ?? '';
  }

  /** The skb's previous tuple when it differs from this one. */
  private tupleChange(skb: bigint, tuple: Tuple | null, func: string): Tuple | null {
    const before = this.lastTuple.get(skb);
    if (FREEING_POINTS.has(func)) this.lastTuple.delete(skb);
    else if (tuple) {
      if (before === undefined && this.lastTuple.size >= MAX_REMEMBERED_SKBS) {
        this.lastTuple.delete(this.lastTuple.keys().next().value!);
      }
      this.lastTuple.set(skb, tuple);
    }
    return before && tuple && !sameTuple(before, tuple) ? before : null;
  }

  /** Stack ids are stable (no BPF_F_REUSE_STACKID), so a symbolized stack is cached. */
  private stack(id: number): string[] {
    let s = this.stackCache.get(id);
    if (!s) {
      const ips = this.o.readStack!(id);
      s = dropProbeFrames(ips.map((ip) => (this.o.symbols ? this.o.symbols.format(ip) : `0x${ip.toString(16)}`)));
      this.stackCache.set(id, s);
    }
    return s;
  }
}

/** The innermost frames are pktpath's own program and the tracepoint glue that called it: not the packet's story. */
export function dropProbeFrames(frames: string[]): string[] {
  let i = 0;
  while (i < frames.length && /( \[bpf\]$|^bpf_trace_run\d|^__bpf_trace_|^__traceiter_)/.test(frames[i]!)) i++;
  return i < frames.length ? frames.slice(i) : frames;
}
