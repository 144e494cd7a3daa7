/**
 * `--group-by ct`: the packets of one connection printed together, both
 * directions, in time order. Packets are gathered per skb (PacketCollector);
 * a complete packet joins the connection its conntrack entry names (the
 * entry's address, the same for every packet of the connection), or, where
 * conntrack is not active, the connection its 5-tuple names in either
 * direction. A connection is printed once it has been idle for a while
 * (default 2 s) or when the trace stops.
 *
 *   connection 0xffff888104a0b200 tcp 192.0.2.1:43210 ⇄ 192.0.2.2:8080  3 packets in 1.234ms  status=SEEN_REPLY|ASSURED|CONFIRMED
 *     reply tuple 198.51.100.2:8080 -> 198.51.100.1:43210 (NAT)
 *     +0.000µs     →  SYN      0xffff888103238a00  nf:ipv4:local_out → tc:egress → … → consume_skb  consumed
 *     +41.210µs    ←  SYN|ACK  0xffff888103238f00  nf:ipv4:local_out → … → consume_skb  consumed
 */
import type { CtInfo } from '../decode/ct.js';
import { IPPROTO, protocolName, tcpFlagNames } from '../decode/protocols.js';
import type { LostNotice, TraceEvent, Tuple } from './event.js';
import { escapeText } from './escape.js';
import { formatDuration, formatEndpoint, formatSkb } from './format.js';
import { type CollectorOptions, type EndKind, PacketCollector, describeEnding } from './packets.js';
import { type ColorLevel, type Styles, stylesFor } from './paint.js';
import type { Sink } from './pipeline.js';
import type { BatchedWriter } from './stream.js';
import { formatLost } from './text.js';

export const DEFAULT_CONNECTION_IDLE_MS = 2000;

export interface ConnectionOptions extends CollectorOptions {
  color: boolean;
  colorLevel?: ColorLevel;
  /** A connection with no packet for this long is printed. Default 2 s. */
  connectionIdleMs?: number;
}

interface Packet {
  events: TraceEvent[];
  how: EndKind;
  /** Direction within the connection: from conntrack where a point knew it. */
  reply: boolean | null;
}

interface Connection {
  key: string;
  /** Every key that names it: in a merged trace, each node's conntrack entry its packets carried. */
  keys: Set<string>;
  ct: CtInfo | null;
  /** The first packet's tuple: the original direction when conntrack did not say. */
  first: Tuple | null;
  packets: Packet[];
  lastSeen: number;
}

const endpoint = (addr: string, port: number) => formatEndpoint(addr, port, true);

/** The same key for both directions of a flow. */
export function flowKey(t: Tuple): string {
  const a = endpoint(t.saddr, t.sport);
  const b = endpoint(t.daddr, t.dport);
  return `${t.l4proto} ${a < b ? `${a} ${b}` : `${b} ${a}`}`;
}

/**
 * The conntrack entries a packet's events name, as keys: one per node a
 * merged journey crossed (entries are a node's own; their addresses may
 * repeat on another node).
 */
function ctKeys(events: readonly TraceEvent[]): string[] {
  const keys = new Set<string>();
  for (const e of events) {
    if (e.ct && e.ct.found && e.ct.id !== 0n) keys.add(`ct ${e.node ?? ''} ${e.ct.id}`);
  }
  return [...keys];
}

function knownCt(events: readonly TraceEvent[]): CtInfo | null {
  // The entry attached to the skb is the authority; a tc lookup is next best.
  let lookup: CtInfo | null = null;
  for (const e of events) {
    const ct = e.ct;
    if (!ct || !ct.found || ct.id === 0n) continue;
    if (ct.source === 'nfct') return ct;
    lookup ??= ct;
  }
  return lookup;
}

export class ConnectionSink implements Sink {
  private readonly packets: PacketCollector;
  private readonly connections = new Map<string, Connection>();
  private readonly idleMs: number;
  private readonly paint: Styles;
  private closed = false;

  constructor(private readonly out: BatchedWriter, opts: ConnectionOptions) {
    this.idleMs = opts.connectionIdleMs ?? DEFAULT_CONNECTION_IDLE_MS;
    this.paint = stylesFor(opts.color, opts.colorLevel);
    this.packets = new PacketCollector(opts, (events, how) => this.addPacket(events, how), (now) => this.flushIdle(now));
  }

  event(e: TraceEvent): void {
    if (this.closed || this.out.closed) return;
    this.packets.add(e);
  }

  lost(notice: LostNotice): void {
    if (this.closed || this.out.closed) return;
    this.out.write(formatLost(notice));
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.packets.stop();
      for (const c of [...new Set(this.connections.values())].sort((a, b) => startOf(a) - startOf(b))) this.print(c);
      this.connections.clear();
    }
    return this.out.close();
  }

  private addPacket(events: TraceEvent[], how: EndKind): void {
    const ct = knownCt(events);
    const tuple = events.find((e) => e.tuple !== null)?.tuple ?? null;
    const keys = ctKeys(events);
    if (keys.length === 0) keys.push(tuple ? `flow ${flowKey(tuple)}` : 'other');
    // A packet that crossed nodes names each node's entry: the connections they named are one.
    const found = [...new Set(keys.map((k) => this.connections.get(k)).filter((c) => c !== undefined))];
    let conn = found[0];
    if (!conn) conn = { key: keys[0]!, keys: new Set(), ct, first: tuple, packets: [], lastSeen: 0 };
    for (const other of found.slice(1)) {
      conn.packets.push(...other.packets);
      for (const k of other.keys) keys.push(k);
    }
    for (const k of keys) {
      conn.keys.add(k);
      this.connections.set(k, conn);
    }
    if (ct) conn.ct = ct; // the latest status (SEEN_REPLY, ASSURED …)
    conn.packets.push({ events, how, reply: ct ? ct.dir === 'reply' : null });
    conn.lastSeen = this.packets.clock();
  }

  private flushIdle(now: number): void {
    if (this.out.closed) return;
    for (const c of new Set(this.connections.values())) {
      if (now - c.lastSeen >= this.idleMs) {
        for (const k of c.keys) this.connections.delete(k);
        this.print(c);
      }
    }
  }

  private print(c: Connection): void {
    if (this.out.closed) return;
    this.out.write(this.format(c));
  }

  /** One connection's block, without a trailing newline. Addresses, statuses and points are escaped (a recorded trace's are any strings). */
  format(c: Connection): string {
    const packets = [...c.packets].sort((a, b) => Number(a.events[0]!.timeNs - b.events[0]!.timeNs));
    const t0 = packets[0]!.events[0]!.timeNs;
    const tEnd = packets[packets.length - 1]!.events[packets[packets.length - 1]!.events.length - 1]!.timeNs;
    const orig = c.ct?.orig ?? null;
    const id = c.ct ? formatSkb(c.ct.id) : '(no conntrack)';
    const proto = c.first ? protocolName(c.first.l4proto) ?? String(c.first.l4proto) : '?';
    const ends = escapeText(orig
      ? `${endpoint(orig.saddr, orig.sport)} ⇄ ${endpoint(orig.daddr, orig.dport)}`
      : c.first ? `${endpoint(c.first.saddr, c.first.sport)} ⇄ ${endpoint(c.first.daddr, c.first.dport)}` : '-');
    let s = this.paint.header(`connection ${id} ${proto} ${ends}`) +
      `  ${packets.length} packet${packets.length === 1 ? '' : 's'} in ${formatDuration(tEnd - t0)}`;
    if (c.ct && c.ct.status.length > 0) s += `  status=${escapeText(c.ct.status.join('|'))}`;
    const reply = c.ct?.reply ?? null;
    if (orig && reply && (reply.saddr !== orig.daddr || reply.sport !== orig.dport || reply.daddr !== orig.saddr ||
        reply.dport !== orig.sport)) {
      s += `\n    reply tuple ${escapeText(`${endpoint(reply.saddr, reply.sport)} -> ${endpoint(reply.daddr, reply.dport)}`)} (NAT)`;
    }
    let prev = t0;
    for (const p of packets) {
      const first = p.events[0]!;
      const last = p.events[p.events.length - 1]!;
      const t = first.tuple;
      const reply = p.reply ?? (t !== null && c.first !== null && !(t.saddr === c.first.saddr && t.sport === c.first.sport));
      const flags = t && t.l4proto === IPPROTO.TCP ? tcpFlagNames(t.tcpFlags) || '-' : '';
      // In a merged trace each node's stretch is named where it starts.
      const path = escapeText(p.events.map((e, i) => (e.node !== undefined && e.node !== p.events[i - 1]?.node ? `${e.node}: ` : '') + e.func).join(' → '));
      const end = describeEnding(last, p.how, this.paint);
      s += `\n    ${this.paint.dim(('+' + formatDuration(first.timeNs - prev)).padEnd(12))} ${reply ? '←' : '→'}  ` +
        `${flags.padEnd(8)} ${formatSkb(first.skb)}  ${path}  ${end}`;
      prev = first.timeNs;
    }
    return s;
  }
}

function startOf(c: Connection): number {
  return Number(c.packets[0]?.events[0]?.timeNs ?? 0n);
}
