/**
 * --output-nft: nftables' own tracing, beside the ring. In each traced
 * namespace pktpath adds one table of its own (`inet pktpath_trace_<pid>`,
 * owned by its netlink socket, so the kernel removes it when pktpath exits,
 * however it exits) that sets `nftrace` on the packets pktpath traces, and
 * listens to the namespace's `nftrace` group. Each rule evaluation reported
 * becomes an event at its hook, tied to the skb whose headers it carries.
 */
import { FREEING_POINTS } from '../decode/points.js';
import { type Netns } from '../kernel/netns.js';
import { type NftTrace, NftTraceMonitor } from '../kernel/nft-trace.js';
import {
  NFT_HOOKS, Nft, type NftCondition, TRACE_TABLE_PREFIX, TraceTable, chainRules, listNft, removeStaleTraceTables,
} from '../kernel/nftables.js';
import type { TraceEvent } from '../output/event.js';
import type { NameBook } from './names.js';
import { type TraceRead, type TraceStart, TraceTies } from './nft-ties.js';

interface Traced {
  netns: Netns;
  /** Closing it removes the table. */
  table: TraceTable;
  monitor: NftTraceMonitor;
  /** `family table chain` → hook name (base chains), read again when a chain is unknown. */
  hooks: Map<string, string>;
  /** `family table chain` → rule handle → text. */
  rules: Map<string, Map<number, string>>;
  /** The monitor's drop count when last read. */
  lost: number;
}

/** Trace events read, not yet tied to their skb. */
export type PendingTrace = TraceRead<Traced>;

export class NftTracer {
  private readonly traced = new Map<number, Traced>();
  readonly table = `${TRACE_TABLE_PREFIX}${process.pid}`;
  private readonly ties = new TraceTies<Traced>(this.table);
  /** When the last poll began reading, since the trace's start. */
  private readStartNs = 0n;
  /** Trace messages read, and dropped by the kernel (queue full), in every namespace since the start. */
  private readBefore = 0;
  private lostTotal = 0;
  private lostReported = 0;

  /** `matches`: pktpath's filter as nft rules (null: every packet of the namespace). */
  constructor(
    private readonly matches: NftCondition[][] | null,
    private readonly names: NameBook,
    private readonly status: (line: string) => void,
  ) {}

  get namespaceCount(): number {
    return this.traced.size;
  }

  /** Adds the trace table and the monitor in a namespace; throws when nftables refuses. */
  add(netns: Netns): void {
    if (this.traced.has(netns.inode)) return;
    const stale = Nft.with(netns, (nft) => removeStaleTraceTables(netns, listNft(nft)));
    if (stale.length > 0) this.status(`pktpath: removed stale nft table ${stale.join(', ')} (netns ${netns.name || netns.inode})`);
    // The monitor first: no trace of the first packets is missed.
    const monitor = NftTraceMonitor.open(netns);
    try {
      const table = TraceTable.create(netns, this.table, this.matches ?? [[]]);
      this.traced.set(netns.inode, { netns, table, monitor, hooks: new Map(), rules: new Map(), lost: 0 });
    } catch (e) {
      monitor.close();
      throw e;
    }
  }

  remove(inode: number): void {
    const t = this.traced.get(inode);
    if (!t) return;
    this.countLost(t);
    this.readBefore += t.monitor.read;
    this.traced.delete(inode);
    t.monitor.close();
    t.table.close();
  }

  close(): void {
    for (const inode of [...this.traced.keys()]) this.remove(inode);
  }

  /** The monitors' fds: one is readable when nftables traced a packet. */
  pollFds(): number[] {
    return [...this.traced.values()].map((t) => t.monitor.pollFd);
  }

  /** Trace messages read from nftables since the start. */
  get read(): number {
    let n = this.readBefore;
    for (const t of this.traced.values()) n += t.monitor.read;
    return n;
  }

  /** Trace messages the kernel dropped since the start (the monitors' queues were full): exact, its own count. */
  lost(): number {
    for (const t of this.traced.values()) this.countLost(t);
    return this.lostTotal;
  }

  /** Messages lost since the last call, and since the start. */
  newlyLost(): { count: number; total: number } {
    const total = this.lost();
    const count = total - this.lostReported;
    this.lostReported = total;
    return { count, total };
  }

  private countLost(t: Traced): void {
    let now: number;
    try {
      now = t.monitor.lost();
    } catch {
      return; // A namespace on its way out.
    }
    this.lostTotal += now - t.lost;
    t.lost = now;
  }

  /** Remembers where an skb was seen, so later trace events of its packet find it. */
  note(e: TraceEvent): void {
    this.ties.note(e);
  }

  /**
   * The trace events that have arrived. Read them before the ring: nftables
   * queues an event while the packet is at the hook, so every ring record of
   * the packet before that hook is in the ring by then (`events()` ties them).
   * `sinceStartNs`: the trace's clock; what it says before and after the
   * reads bounds when each event was queued.
   */
  poll(sinceStartNs: () => bigint): PendingTrace[] {
    const startNs = sinceStartNs();
    const out: PendingTrace[] = [];
    for (const t of this.traced.values()) {
      for (const trace of t.monitor.poll()) out.push({ from: t, netns: t.netns.inode, trace, afterNs: this.readStartNs, byNs: 0n });
    }
    const byNs = sinceStartNs();
    for (const r of out) r.byNs = byNs;
    this.readStartNs = startNs;
    return out;
  }

  /**
   * Pending traces as events of the stream, once the ring's records read
   * after them are noted; those whose packet the ring has not shown yet wait
   * for the next call (`last`: none waits). `startWallNs`: the wall clock at the trace's start.
   */
  events(pending: PendingTrace[], startWallNs: bigint, last = false): TraceEvent[] {
    const out: TraceEvent[] = [];
    for (const { read, start } of this.ties.settle(pending, last)) {
      const { from: t, trace } = read;
      this.placeHook(t, trace, start);
      // Every event is read for its headers (only a chain's first carries them), but pktpath's own
      // table's, and the end of a chain (a rule trace without a handle: its policy or return follows).
      if (trace.table === this.table && trace.family === 'inet') continue;
      if (trace.type === 'rule' && trace.handle === null) continue;
      // Without the filter in the table, nftables traces every packet: keep those of the packets pktpath traces.
      if (this.matches === null && start.seen === undefined) continue;
      // Tied, it is dated at its packet's first record: placeTraceEvents looks for it from there.
      const atNs = start.seen?.firstNs ?? read.byNs;
      out.push(this.event(t, trace, start, startWallNs + atNs, atNs));
    }
    return out;
  }

  private event(t: Traced, trace: NftTrace, start: TraceStart, nowNs: bigint, sinceStartNs: bigint): TraceEvent {
    const netns = t.netns.inode;
    const { tuple, seen, hook } = start;
    const ifindex = start.iif || start.oif;
    const family = trace.nfproto === 10 ? 'ipv6' : 'ipv4';
    return {
      timeNs: nowNs,
      sinceStartNs,
      skb: seen?.skb ?? 0n,
      cpu: seen?.cpu ?? 0,
      pid: seen?.pid ?? 0,
      comm: seen?.comm ?? '',
      netns,
      netnsName: this.names.netnsName(netns),
      pod: this.names.podOf(netns),
      mark: start.mark,
      ifindex,
      ifname: this.names.ifname(netns, ifindex),
      protocol: trace.nfproto === 10 ? 0x86dd : 0x0800,
      mtu: 0,
      len: seen?.len ?? 0,
      tuple,
      tupleBefore: null,
      func: hook ? `nf:${family}:${hook}` : `nf:${family}`,
      probe: { type: 'nft', name: 'nft' },
      dropReason: null,
      caller: null,
      stack: null,
      packet: null,
      ct: null,
      verdict: null,
      nft: {
        family: trace.family, table: trace.table, chain: trace.chain, handle: trace.handle,
        rule: trace.handle === null ? null : this.ruleText(t, trace),
        kind: trace.type, verdict: trace.verdict, target: trace.target, traceId: trace.id,
      },
      ownSrcMac: false,
    };
  }

  /** The hook of the trace: its base chain's, kept for the regular chains it jumps to. */
  private placeHook(t: Traced, trace: NftTrace, start: TraceStart): void {
    const hook = this.baseChainHook(t, trace);
    if (hook !== null) start.hook = hook;
  }

  /** pktpath's name of the hook of a base chain; null for a regular chain (entered by a jump). */
  private baseChainHook(t: Traced, trace: NftTrace): string | null {
    const k = `${trace.family} ${trace.table} ${trace.chain}`;
    let nftHook = t.hooks.get(k);
    if (nftHook === undefined) {
      try {
        for (const c of Nft.with(t.netns, listNft).baseChains) t.hooks.set(`${c.family} ${c.table} ${c.name}`, c.hook);
      } catch {
        // Listing failed: the hook stays unknown.
      }
      nftHook = t.hooks.get(k);
      // Remembered as regular, so a jump target is not listed again for every packet.
      if (nftHook === undefined) t.hooks.set(k, '');
    }
    return nftHook ? (NFT_HOOKS[nftHook] ?? nftHook) : null;
  }

  private ruleText(t: Traced, trace: NftTrace): string | null {
    const k = `${trace.family} ${trace.table} ${trace.chain}`;
    let rules = t.rules.get(k);
    if (rules === undefined || !rules.has(trace.handle!)) {
      try {
        rules = Nft.with(t.netns, (nft) => chainRules(nft, trace.family, trace.table, trace.chain));
        t.rules.set(k, rules);
      } catch {
        return null;
      }
    }
    return rules.get(trace.handle!) ?? null;
  }
}

/** `pktpath cleanup`: removes trace tables of sessions that are gone, in each namespace. */
export function cleanupTraceTables(namespaces: Netns[]): string[] {
  const removed: string[] = [];
  for (const netns of namespaces) {
    let stale: string[];
    try {
      stale = Nft.with(netns, (nft) => removeStaleTraceTables(netns, listNft(nft)));
    } catch {
      continue; // A namespace that went away.
    }
    for (const name of stale) removed.push(`${name} (netns ${netns.name || netns.inode})`);
  }
  return removed;
}

/**
 * Ring records wait one pump for nftables' events of their packets. The
 * reader polls nftables, then drains the ring, while the packets go on on
 * the other CPUs: a record read in one pump can be followed, microseconds
 * later, by its packet's trace event at the same hook, which only the next
 * poll sees. Placed among the records held back, it lands where it happened.
 */
export class TraceInterleave<T extends { e: TraceEvent }> {
  private held: T[] = [];

  constructor(private readonly wrap: (e: TraceEvent) => T) {}

  /** Records held back for the next pump. */
  get holding(): boolean {
    return this.held.length > 0;
  }

  /** A pump's records and the trace events polled before them: what can go out now, in order. */
  next(batch: T[], traces: TraceEvent[]): T[] {
    const last = this.held[this.held.length - 1];
    const placed = placeTraceEvents(this.held.length > 0 ? this.held.concat(batch) : batch, traces, this.wrap);
    // Out: everything up to the last record held back (and trace events placed right after it).
    let cut = last === undefined ? 0 : placed.lastIndexOf(last) + 1;
    while (cut < placed.length && placed[cut]!.e.probe.type === 'nft') cut++;
    this.held = placed.slice(cut);
    return cut === placed.length ? placed : placed.slice(0, cut);
  }

  /** At the end: the records held back, with the last trace events. */
  flush(traces: TraceEvent[]): T[] {
    const placed = placeTraceEvents(this.held, traces, this.wrap);
    this.held = [];
    return placed;
  }
}

/**
 * Puts trace events where they happened in a batch of ring events: after the
 * last event of their skb at the same hook (the BPF observer runs there too),
 * else before their skb's end (a drop is decided before the skb is freed),
 * else at the end. Each takes the time of the event it follows. A trace event
 * comes dated at its packet's first record: an skb's address is reused for
 * later packets, so only its events from then to its end are its packet's.
 */
export function placeTraceEvents<T extends { e: TraceEvent }>(batch: T[], traces: TraceEvent[], wrap: (e: TraceEvent) => T): T[] {
  if (traces.length === 0) return batch;
  const after = new Map<number, TraceEvent[]>();
  const tail: TraceEvent[] = [];
  for (const n of traces) {
    let at = -1;
    let end = -1;
    if (n.skb !== 0n) {
      for (let i = 0; i < batch.length; i++) {
        const e = batch[i]!.e;
        if (e.skb !== n.skb || e.sinceStartNs < n.sinceStartNs) continue;
        if (e.func === n.func) {
          at = i;
        } else if (FREEING_POINTS.has(e.func)) {
          end = i;
          break;
        }
      }
    }
    if (at < 0 && end >= 0) at = end - 1;
    if (at < 0 && end < 0) {
      tail.push(n);
      continue;
    }
    const list = after.get(at) ?? [];
    list.push(n);
    after.set(at, list);
  }
  const out: T[] = [];
  // Each placed event is a copy dated at the record it follows: the events handed in stay as they came.
  const place = (list: TraceEvent[] | undefined, like: TraceEvent | undefined) => {
    for (const n of list ?? []) out.push(wrap(like ? { ...n, timeNs: like.timeNs, sinceStartNs: like.sinceStartNs } : n));
  };
  place(after.get(-1), batch[0]?.e);
  for (let i = 0; i < batch.length; i++) {
    out.push(batch[i]!);
    place(after.get(i), batch[i]!.e);
  }
  place(tail, undefined);
  return out;
}
