/**
 * Journeys: the canonical, per-packet form of a trace that `normalize`,
 * `diff` and `assert` share. The events of one skb, from its first point to
 * the point that frees it, become one journey: the ordered hops with
 * namespace and device names, conntrack states and rewrites, and how it
 * ended. Kernel addresses, times, pids and CPUs are gone. Built from a
 * stream, in memory bounded by the skbs in flight and the distinct paths.
 *
 * The normalised form (FlowSet) goes further, to what the datapath decides
 * and timing does not: per flow, each distinct path a kind of packet took
 * (see `packetKind`), once; values that differ per run as placeholders
 * (./vars.ts), numbered in the order of the output.
 */
import { FREEING_POINTS, expectedFree } from '../decode/points.js';
import { PORTED_PROTOCOLS, protocolName, protocolNumber } from '../decode/protocols.js';
import { turnedAround } from '../decode/tuple.js';
import { formatEndpoint } from '../output/format.js';
import { NodePath, packetKey } from '../output/packets.js';
import type { JsonHeaderRecord, JsonRecord } from '../output/json.js';
import type { JsonTuple } from '../output/tuple.js';
import { NO_VARS, Placeholders, type VarOptions } from './vars.js';

export type { FlowTuple, Hop, HopVerdict, Ending, Journey, NormalizedHop, NormalizedPacket, NormalizedHeader } from './journey-shapes.js';
import type { FlowTuple, Hop, HopVerdict, Ending, Journey, NormalizedHop, NormalizedPacket } from './journey-shapes.js';

export interface JourneyOptions {
  vars: VarOptions;
  /** Keep ARP and IPv6 neighbour discovery (link-local, multicast): timing decides whether they happen. */
  keepNeighbour: boolean;
}

/** For assertions: raw values, everything kept. */
export const RAW_JOURNEYS: JourneyOptions = { vars: NO_VARS, keepNeighbour: true };

/** The values a text form takes, raw or as placeholders. */
interface Names {
  address(a: string): string;
  port(p: string): string;
  netns(n: string): string;
  node(n: string): string;
}

const RAW: Names = { address: (a) => a, port: (p) => p, netns: (n) => n, node: (n) => n };

function endpoint(addr: string, port: string, ported: boolean, n: Names): string {
  return formatEndpoint(n.address(addr), ported ? n.port(port) : port, ported);
}

/** `192.0.2.1:$p1 > 192.0.2.2:80`; addresses alone for protocols without ports. */
export function tupleText(t: FlowTuple, n: Names = RAW): string {
  return `${endpoint(t.saddr, t.sport, t.ported, n)} > ${endpoint(t.daddr, t.dport, t.ported, n)}`;
}

function rewriteText(a: FlowTuple, b: FlowTuple, n: Names): string {
  if (a.proto !== b.proto) return `tuple ${a.proto} ${tupleText(a, n)} → ${b.proto} ${tupleText(b, n)}`;
  const parts: string[] = [];
  if (a.daddr !== b.daddr || a.dport !== b.dport) {
    parts.push(`DNAT ${endpoint(a.daddr, a.dport, a.ported, n)} → ${endpoint(b.daddr, b.dport, b.ported, n)}`);
  }
  if (a.saddr !== b.saddr || a.sport !== b.sport) {
    parts.push(`SNAT ${endpoint(a.saddr, a.sport, a.ported, n)} → ${endpoint(b.saddr, b.sport, b.ported, n)}`);
  }
  return parts.join(' ');
}

/** The hop as normalised output writes it: names through `n`, the rewrite in words. */
export function normalizedHop(h: Hop, n: Names = RAW): NormalizedHop {
  const out: NormalizedHop = { at: h.at, netns: n.netns(h.netns), iface: h.iface };
  if (h.node !== undefined) out.node = n.node(h.node);
  if (h.ct !== undefined) out.ct = h.ct;
  if (h.rewrite) out.nat = rewriteText(h.rewrite.from, h.rewrite.to, n);
  if (h.verdict) out.verdict = verdictText(h.verdict, n);
  if (h.nft !== undefined) out.nft = h.nft;
  return out;
}

/** Program ids and whether it was inferred differ between runs; what was done, where to and by whom do not. */
function verdictText(v: HopVerdict, n: Names): string {
  let s = v.action.toUpperCase();
  if (v.kind !== undefined) s += ` ${v.kind} \u2192 ${v.iface ?? ''}@${n.netns(v.netns ?? '')}`;
  if (v.by.length > 0) s += ` by ${v.by.join(', ')}`;
  return s;
}

/** An nft evaluation without its rule handle (handles number rules per ruleset load). */
function nftText(r: NonNullable<JsonRecord['nft']>): string {
  let s = `${r.family} ${r.table} ${r.chain}`;
  if (r.kind !== 'rule') s += ` ${r.kind}`;
  if (r.rule !== null) s += ` ${JSON.stringify(r.rule)}`;
  return `${s} \u2192 ${r.verdict.toUpperCase()}${r.target ? ` ${r.target}` : ''}`;
}

const sameTuple = (a: FlowTuple, b: FlowTuple) =>
  a.proto === b.proto && a.saddr === b.saddr && a.sport === b.sport && a.daddr === b.daddr && a.dport === b.dport;

/** IPv6 link-local and multicast: neighbour discovery, router solicitations, MLD. */
const isNeighbourAddress = (a: string) => /^(fe[89ab][0-9a-f]:|ff[0-9a-f]{2}:)/i.test(a);

/** A JSON tuple with its protocol by name where pktpath has one (sctp too, which JSON leaves a number). */
function flowTuple(t: JsonTuple): FlowTuple {
  const number = typeof t.proto === 'number' ? t.proto : protocolNumber(t.proto) ?? -1;
  return {
    proto: protocolName(number) ?? String(t.proto),
    saddr: t.saddr, sport: String(t.sport), daddr: t.daddr, dport: String(t.dport),
    ported: PORTED_PROTOCOLS.has(number),
  };
}

interface Open {
  time: string;
  /** (point, netns, device, tuple) of every hop: a packet passes each once, so a second time is another packet. */
  seen: Set<string>;
  first: FlowTuple | null;
  /** Every tuple it had, in order (more than one where it was rewritten). */
  tuples: FlowTuple[];
  flags: string;
  ctOrig: FlowTuple | null;
  hops: Hop[];
  last: FlowTuple | null;
  neighbour: boolean;
  /** Every record of it, in order, when the builder keeps them (explain reads them back). */
  records?: JsonRecord[];
  /** A merged trace's journey: where it has been (NodePath). */
  path?: NodePath;
  /** How it ended where it was held (NodePath), if it does not go on. */
  held: Ending | null;
}

/**
 * Whether an event on an open journey's skb belongs to another packet: the
 * kernel frees some skbs where no tracepoint sees it (TCP, GRO, UDP reads),
 * a trace may leave out the namespace or the point where one was freed, and
 * the next packet may get the same memory. Wherever it is seen — a socket's
 * read and a free too — a packet does not turn around (a tuple the reverse of
 * one it had: a reply, not a NAT) and does not change its TCP flags. And it
 * passes each point of each device once, but for a socket's reads (one skb
 * may take several) and its free (which ends it).
 */
function anotherPacket(j: Open, r: JsonRecord, t: FlowTuple | null, seenKey: string): boolean {
  if (t !== null && j.tuples.some((had) => turnedAround(had, t))) return true;
  if (r.tuple !== null && r.tuple.proto === 'tcp' && j.first?.proto === 'tcp' && r.tuple.flags !== j.flags) return true;
  if (r.func === 'skb_copy_datagram_iovec' || FREEING_POINTS.has(r.func)) return false;
  return j.seen.has(seenKey);
}

/** Events in, journeys out (`done`), in the order they end; raw values. */
export class JourneyBuilder {
  private readonly open = new Map<string, Open>();
  private selfNetns = -1;
  lost = 0;

  constructor(
    private readonly opts: Pick<JourneyOptions, 'keepNeighbour'> & { keepRecords?: boolean },
    private readonly done: (j: Journey) => void,
  ) {}

  /** A record about an open journey's skb that is no hop of it (a route lookup made for it): kept with its records. */
  attach(r: JsonRecord): boolean {
    const j = this.open.get(packetKey(r.skb, r.node, r.journey));
    if (j?.records === undefined) return false;
    j.records.push(r);
    return true;
  }

  header(h: JsonHeaderRecord): void {
    this.selfNetns = h.namespaces.find((n) => n.self)?.inode ?? -1;
  }

  private netnsName(r: JsonRecord): string {
    if (r.netns_name !== '') return r.netns_name;
    return r.netns === this.selfNetns ? 'self' : r.netns === 0 ? '' : 'unnamed';
  }

  event(r: JsonRecord): void {
    // A merged trace's journey spans nodes: its events share it, whatever their skbs.
    const key = packetKey(r.skb, r.node, r.journey);
    let j = this.open.get(key);
    if (j?.path?.another(r.node, r.func)) {
      // A merged journey's name taken by another packet (NodePath): it ended before.
      this.open.delete(key);
      this.finish(j, j.held ?? { how: 'ended' });
      j = undefined;
    }
    if (r.nft) {
      // nftables' own trace of a packet: a hop of the journey it belongs to, if it is tied to one.
      if (j !== undefined) {
        j.hops.push({ at: r.func, netns: this.netnsName(r), iface: r.iface.replace(/:\d+$/, ''), nft: nftText(r.nft) });
        j.records?.push(r);
      }
      return;
    }
    const t = r.tuple === null ? null : flowTuple(r.tuple);
    const netns = this.netnsName(r);
    const colon = r.iface.lastIndexOf(':');
    const iface = colon > 0 ? r.iface.slice(0, colon) : '';
    const seenKey = `${r.func} ${r.node ?? ''} ${netns} ${iface} ${t ? tupleText(t) : ''}`;
    if (j !== undefined && anotherPacket(j, r, t, seenKey)) {
      // The skb was freed where no tracepoint sees it, and its memory holds a new packet.
      this.open.delete(key);
      this.finish(j, { how: 'ended' });
      j = undefined;
    }
    if (j === undefined) {
      j = {
        time: r.time, seen: new Set(), first: t, tuples: t ? [t] : [], flags: r.tuple?.flags ?? '', ctOrig: null, hops: [], last: t,
        neighbour: false, held: null,
      };
      if (r.journey !== undefined) j.path = new NodePath(r.node);
      if (this.opts.keepRecords) j.records = [];
      this.open.set(key, j);
    }
    j.records?.push(r);
    if (r.tuple !== null && (isNeighbourAddress(r.tuple.saddr) || isNeighbourAddress(r.tuple.daddr))) j.neighbour = true;
    if (j.first === null && t !== null) {
      j.first = t;
      j.flags = r.tuple!.flags;
    }
    if (FREEING_POINTS.has(r.func)) {
      const dropped = r.func === 'kfree_skb' && r.drop_reason !== null && r.drop_reason !== 'NOT_SPECIFIED' &&
        expectedFree(r.func, r.drop_reason, r.caller) === null;
      const end: Ending = dropped
        ? { how: 'dropped', reason: r.drop_reason!, netns, iface, ...(r.node !== undefined ? { node: r.node } : {}),
          by: (r.caller ?? '').replace(/\+0x[0-9a-f]+.*$/, '') }
        : { how: 'ended' };
      // In a merged trace, freed where it started it may have been sent on; freed where it was sent from, it goes on.
      const merged = j.path ? j.path.note({ func: r.func, dropReason: r.drop_reason, caller: r.caller, node: r.node }) : 'end';
      if (merged === 'hold') j.held = end;
      if (merged !== 'end') return;
      this.open.delete(key);
      this.finish(j, end);
      return;
    }
    if (j.path) {
      j.path.note({ func: r.func, dropReason: null, caller: null, node: r.node });
      if (!j.path.held) j.held = null;
    }
    // A retransmission is the same packet again: the point that says so is not part of its path.
    if (r.func === 'tcp_retransmit_skb') return;
    j.seen.add(seenKey);
    // A socket may read one skb in several calls.
    if (r.func === 'skb_copy_datagram_iovec' && j.hops[j.hops.length - 1]?.at === r.func) return;
    const hop: Hop = { at: r.func, netns, iface };
    if (r.node !== undefined) hop.node = r.node;
    if (r.pod) hop.pod = `${r.pod.namespace}/${r.pod.name}`;
    if (r.ct) {
      hop.ct = r.ct.found ? r.ct.state + (r.ct.dir === 'reply' ? '/REPLY' : '') : r.ct.state === 'UNTRACKED' ? 'UNTRACKED' : 'NONE';
      if (j.ctOrig === null && r.ct.orig) j.ctOrig = flowTuple({ ...r.ct.orig, flags: '' });
    }
    if (t !== null) {
      if (j.last === null) {
        j.tuples.push(t);
      } else if (!sameTuple(j.last, t)) {
        hop.rewrite = { from: j.last, to: t };
        j.tuples.push(t);
      }
      j.last = t;
    }
    // A verdict that waited for an observation that never came says nothing about the datapath.
    if (r.verdict && r.verdict.action !== 'unknown') {
      const v = r.verdict;
      hop.verdict = { action: v.action, by: v.by.map((p) => p.name) };
      if (v.target) Object.assign(hop.verdict, { kind: v.target.kind, iface: v.target.iface, netns: v.target.netns_name || 'unnamed' });
    }
    j.hops.push(hop);
  }

  /** The journey on `skb` ended where no point of the trace saw it end (idle, live): it ends now. */
  endSkb(skb: string): void {
    const j = this.open.get(skb);
    if (j === undefined) return;
    this.open.delete(skb);
    this.finish(j, j.held ?? { how: 'ended' });
  }

  /** Packets still in flight when the trace ended. */
  end(): void {
    for (const j of this.open.values()) this.finish(j, j.held ?? { how: 'ended' });
    this.open.clear();
  }

  private finish(j: Open, end: Ending): void {
    // Not IP (ARP) or IPv6 link-local and multicast (neighbour discovery, MLD).
    if ((j.first === null || j.neighbour) && !this.opts.keepNeighbour) return;
    // Seen only where it was freed: nothing of a path to compare (a drop is still news).
    if (j.hops.length === 0 && end.how !== 'dropped') return;
    const journey: Journey = { time: j.time, first: j.first, last: j.last, flags: j.flags, ctOrig: j.ctOrig, hops: j.hops, end };
    if (j.records) journey.records = j.records;
    this.done(journey);
  }
}

/**
 * The flow a journey belongs to: its conntrack entry's original direction
 * where a point showed it (so both directions and both sides of a NAT are one
 * flow), else its first tuple; the key is the same for both directions.
 */
export function flowOf(j: Journey): { key: string; named: FlowTuple | null } {
  const t = j.ctOrig ?? j.first;
  if (!t) return { key: 'other', named: null };
  const a = endpoint(t.saddr, t.sport, t.ported, RAW);
  const b = endpoint(t.daddr, t.dport, t.ported, RAW);
  return { key: `${t.proto} ${a < b ? `${a} ${b}` : `${b} ${a}`}`, named: t };
}

/** `>` when the journey comes from the side that opened its flow. */
export function directionIn(j: Journey, opener: FlowTuple | null): '>' | '<' {
  return !opener || !j.first || (j.first.saddr === opener.saddr && j.first.sport === opener.sport) ? '>' : '<';
}

/**
 * The kinds of packet a flow's paths are told apart by. A TCP connection's
 * opening (SYN, SYN|ACK) and resets have paths of their own; how the rest is
 * cut into segments, which carry ACK, PSH or FIN, and in what order they
 * cross is timing, so they are one kind.
 */
export function packetKind(j: Pick<Journey, 'flags'>): string {
  const f = new Set(j.flags.split('|'));
  if (f.has('RST')) return 'RST';
  if (f.has('SYN')) return f.has('ACK') ? 'SYN|ACK' : 'SYN';
  return '';
}

const KIND_ORDER: Record<string, number> = { SYN: 0, 'SYN|ACK': 1, '': 2, RST: 3 };

interface Path {
  /** Where its first tuple comes from: the direction, once the flow's name is known. */
  from: string;
  kind: string;
  journey: Journey;
  repeat: number;
}

interface Flow {
  /** What names the flow: its conntrack entry's original direction, else its earliest packet's tuple. */
  named: FlowTuple | null;
  byCt: boolean;
  time: string;
  paths: Map<string, Path>;
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Journeys gathered into flows, and each flow into its distinct paths: one
 * per direction, kind of packet and way through the kernel, with how many
 * packets took it. Nothing timing decides reaches the output: a flow is
 * named from its conntrack entry or its earliest packet, whatever order its
 * packets ended in; placeholders are numbered within each flow (its name
 * first, then its paths in an order computed with the variable values
 * masked); flows that then have the same name (two connections of one
 * client to one service) are one, their paths united; flows are written by
 * name, paths by kind, direction and way.
 */
export class FlowSet {
  private readonly flows = new Map<string, Flow>();

  /** Adds the journey's path, or counts it again; true when the path is new. */
  add(j: Journey): boolean {
    const { key } = flowOf(j);
    let flow = this.flows.get(key);
    if (!flow) {
      flow = { named: j.ctOrig ?? j.first, byCt: j.ctOrig !== null, time: j.time, paths: new Map() };
      this.flows.set(key, flow);
    } else if (j.ctOrig !== null && !flow.byCt) {
      flow.named = j.ctOrig;
      flow.byCt = true;
    } else if (!flow.byCt && j.time < flow.time && j.first !== null) {
      flow.named = j.first;
    }
    if (j.time < flow.time) flow.time = j.time;
    const from = j.first ? `${j.first.saddr} ${j.first.sport}` : '';
    const kind = packetKind(j);
    const sig = JSON.stringify([from, kind, j.hops.map((h) => normalizedHop(h)), j.end]);
    const path = flow.paths.get(sig);
    if (path) path.repeat++;
    else flow.paths.set(sig, { from, kind, journey: j, repeat: 1 });
    return path === undefined;
  }

  /** Every path of every flow, normalised with `vars`. */
  packets(vars: VarOptions): NormalizedPacket[] {
    const masked = new Placeholders(vars, true);
    const render = (n: Names, flow: Flow, p: Path): NormalizedPacket => ({
      v: 1,
      type: 'packet',
      flow: flowName(flow.named, n),
      dir: directionIn(p.journey, flow.named),
      flags: p.kind,
      tuple: p.journey.first ? tupleText(p.journey.first, n) : '',
      hops: p.journey.hops.map((h) => normalizedHop(h, n)),
      end: p.journey.end.how === 'dropped' ? droppedEnd(p.journey.end, n) : p.journey.end,
      repeat: p.repeat,
    });
    const byName = new Map<string, Map<string, NormalizedPacket>>();
    for (const f of this.flows.values()) {
      const names = new Placeholders(vars);
      const name = flowName(f.named, names);
      const paths = [...f.paths.values()].map((p) => ({ p, key: pathKey(render(masked, f, p)) }));
      paths.sort((a, b) => compare(a.key, b.key));
      let united = byName.get(name);
      if (!united) byName.set(name, (united = new Map()));
      for (const { p } of paths) {
        const packet = render(names, f, p);
        const key = pathKey(packet);
        const same = united.get(key);
        if (same) same.repeat += packet.repeat;
        else united.set(key, packet);
      }
    }
    const out: NormalizedPacket[] = [];
    for (const name of [...byName.keys()].sort(compare)) {
      const paths = [...byName.get(name)!.entries()].sort((a, b) => compare(a[0], b[0]));
      for (const [, p] of paths) out.push(p);
    }
    return out;
  }
}

function droppedEnd(end: Ending, n: Names): Ending {
  const out = { ...end, netns: n.netns(end.netns ?? '') };
  if (end.node !== undefined) out.node = n.node(end.node);
  return out;
}

function flowName(named: FlowTuple | null, n: Names): string {
  return named ? `${named.proto} ${tupleText(named, n)}` : 'other (not IP)';
}

/** Orders paths: by kind (SYN, SYN|ACK, the rest, RST), direction, then way; counts aside. */
function pathKey(p: NormalizedPacket): string {
  const { repeat: _repeat, ...rest } = p;
  return `${KIND_ORDER[p.flags]} ${p.dir === '>' ? 0 : 1} ${JSON.stringify(rest)}`;
}
