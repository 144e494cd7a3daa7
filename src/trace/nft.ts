/**
 * --output-nft: nftables' own tracing, beside the ring. In each traced
 * namespace pktpath adds one table of its own (`inet pktpath_trace_<pid>`,
 * owned by its netlink socket, so the kernel removes it when pktpath exits,
 * however it exits) that sets `nftrace` on the packets pktpath traces, and
 * listens to the namespace's `nftrace` group. Each rule evaluation reported
 * becomes an event at its hook, tied to the skb whose headers it carries.
 */
import { type Tuple, tupleFromHeaders } from '../decode/tuple.js';
import { type Netns } from '../kernel/netns.js';
import {
  NFT_HOOKS, Nft, type NftTrace, NftTraceMonitor, TRACE_TABLE_PREFIX, chainRules, listNft, removeStaleTraceTables,
  traceTableRuleset,
} from '../kernel/nftables.js';
import type { TraceEvent } from '../output/event.js';
import type { NameBook } from './enrich.js';

interface Traced {
  netns: Netns;
  /** Owns the table: freeing it removes the table. */
  owner: Nft;
  /** For rule texts and chain hooks. */
  reader: Nft;
  monitor: NftTraceMonitor;
  /** `family table chain` → hook name (base chains), read again when a chain is unknown. */
  hooks: Map<string, string>;
  /** `family table chain` → rule handle → text. */
  rules: Map<string, Map<number, string>>;
  /**
   * What the first event of a packet's trace said (only it carries the
   * headers; jumps name the chain jumped to, not the base chain).
   */
  traces: Map<number, TraceStart>;
}

interface TraceStart {
  hook: string | null;
  tuple: Tuple | null;
  seen: Seen | undefined;
}

/** Where an skb was last seen with a tuple, to tie trace events to it. */
interface Seen {
  skb: bigint;
  timeNs: bigint;
  cpu: number;
  pid: number;
  comm: string;
  len: number;
}

const MAX_REMEMBERED = 65536;
const tupleKey = (netns: number, t: Tuple) => `${netns}|${t.l4proto}|${t.saddr}|${t.sport}|${t.daddr}|${t.dport}`;

export class NftTracer {
  private readonly traced = new Map<number, Traced>();
  private readonly seen = new Map<string, Seen>();
  readonly table = `${TRACE_TABLE_PREFIX}${process.pid}`;

  /** `matches`: nft conditions of pktpath's filter (null: every packet of the namespace). */
  constructor(
    private readonly matches: string[] | null,
    private readonly names: NameBook,
    private readonly status: (line: string) => void,
  ) {}

  get namespaceCount(): number {
    return this.traced.size;
  }

  /** Adds the trace table and the monitor in a namespace; throws when nftables refuses. */
  add(netns: Netns): void {
    if (this.traced.has(netns.inode)) return;
    const reader = Nft.open(netns);
    let owner: Nft | null = null;
    let monitor: NftTraceMonitor | null = null;
    try {
      const json = Nft.open(netns, true);
      try {
        const stale = removeStaleTraceTables(json, listNft(json));
        if (stale.length > 0) this.status(`pktpath: removed stale nft table ${stale.join(', ')} (netns ${netns.name || netns.inode})`);
      } finally {
        json.close();
      }
      // The monitor first: no trace of the first packets is missed.
      monitor = NftTraceMonitor.open(netns);
      owner = Nft.open(netns);
      owner.run(traceTableRuleset(this.table, this.matches ?? ['']), `adding nft table inet ${this.table}`);
      this.traced.set(netns.inode, {
        netns, owner, reader, monitor, hooks: new Map(), rules: new Map(), traces: new Map(),
      });
    } catch (e) {
      monitor?.close();
      owner?.close();
      reader.close();
      throw e;
    }
  }

  remove(inode: number): void {
    const t = this.traced.get(inode);
    if (!t) return;
    this.traced.delete(inode);
    t.monitor.close();
    t.owner.close();
    t.reader.close();
  }

  close(): void {
    for (const inode of [...this.traced.keys()]) this.remove(inode);
  }

  /** Remembers where an skb was seen, so later trace events of its packet find it. */
  note(e: TraceEvent): void {
    if (e.tuple === null || e.probe.type === 'nft') return;
    const k = tupleKey(e.netns, e.tuple);
    if (!this.seen.has(k) && this.seen.size >= MAX_REMEMBERED) this.seen.delete(this.seen.keys().next().value!);
    this.seen.set(k, { skb: e.skb, timeNs: e.timeNs, cpu: e.cpu, pid: e.pid, comm: e.comm, len: e.len });
  }

  /** The trace events that arrived, as events of the stream. */
  poll(nowNs: bigint, sinceStartNs: bigint): TraceEvent[] {
    const out: TraceEvent[] = [];
    for (const t of this.traced.values()) {
      for (const trace of t.monitor.poll()) {
        // Every event is read for its headers (only a chain's first carries them), but pktpath's own
        // table's, and the end of a chain (a rule trace without a handle: its policy or return follows).
        const start = this.traceStart(t, trace);
        if (trace.table === this.table && trace.family === 'inet') continue;
        if (trace.type === 'rule' && trace.handle === null) continue;
        out.push(this.event(t, trace, start, nowNs, sinceStartNs));
      }
    }
    return out;
  }

  private event(t: Traced, trace: NftTrace, start: TraceStart, nowNs: bigint, sinceStartNs: bigint): TraceEvent {
    const netns = t.netns.inode;
    const { tuple, seen, hook } = start;
    const family = trace.nfproto === 10 ? 'ipv6' : 'ipv4';
    const ifindex = trace.iif || trace.oif;
    return {
      timeNs: nowNs,
      sinceStartNs,
      skb: seen?.skb ?? 0n,
      cpu: seen?.cpu ?? 0,
      pid: seen?.pid ?? 0,
      comm: seen?.comm ?? '',
      netns,
      netnsName: this.names.netns.get(netns) ?? '',
      mark: trace.mark,
      ifindex,
      ifname: this.names.ifaces.get(netns)?.get(ifindex) ?? '',
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

  /** The start of the packet's trace: its headers, skb and hook, from its first event. */
  private traceStart(t: Traced, trace: NftTrace): TraceStart {
    let start = t.traces.get(trace.id);
    const baseHook = this.baseChainHook(t, trace);
    if (start === undefined || trace.network !== null) {
      const tuple = trace.network ? tupleFromHeaders(trace.network, trace.transport) : null;
      start = { hook: baseHook, tuple, seen: tuple ? this.seen.get(tupleKey(t.netns.inode, tuple)) : undefined };
      if (t.traces.size >= MAX_REMEMBERED) t.traces.delete(t.traces.keys().next().value!);
      t.traces.set(trace.id, start);
    } else if (baseHook !== null) {
      start.hook = baseHook;
    }
    return start;
  }

  /** pktpath's name of the hook of a base chain; null for a regular chain (entered by a jump). */
  private baseChainHook(t: Traced, trace: NftTrace): string | null {
    const k = `${trace.family} ${trace.table} ${trace.chain}`;
    let nftHook = t.hooks.get(k);
    if (nftHook === undefined) {
      try {
        const json = Nft.open(t.netns, true);
        try {
          for (const c of listNft(json).baseChains) t.hooks.set(`${c.family} ${c.table} ${c.name}`, c.hook);
        } finally {
          json.close();
        }
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
        rules = chainRules(t.reader, trace.family, trace.table, trace.chain);
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
    let json: Nft;
    try {
      json = Nft.open(netns, true);
    } catch {
      continue; // A namespace that went away.
    }
    try {
      for (const name of removeStaleTraceTables(json, listNft(json))) removed.push(`${name} (netns ${netns.name || netns.inode})`);
    } finally {
      json.close();
    }
  }
  return removed;
}
