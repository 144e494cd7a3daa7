/**
 * nftables of one network namespace: its tables and base chains, its rules'
 * text (through libnftables, the library behind `nft`, so rules read exactly
 * as `nft list` prints them, iptables-nft's included), pktpath's own trace
 * table, and the trace events of the `nftrace` netlink group.
 */
import { NftOutput, type NftContextHandle, libnftables } from '../bpf/native.js';
import { NETLINK_NETFILTER, NetlinkSocket, attrStr, attrs } from './netlink.js';
import { type Netns, withNetns } from './netns.js';

/** nfgenmsg.nfgen_family → nft's family names. */
const FAMILY_NAMES: Readonly<Record<number, string>> = { 1: 'inet', 2: 'ip', 3: 'arp', 5: 'netdev', 7: 'bridge', 10: 'ip6' };

/** nft's hook names → pktpath's netfilter hook names (the inet hooks; ingress/egress are netdev's). */
export const NFT_HOOKS: Readonly<Record<string, string>> = {
  prerouting: 'pre_routing', input: 'local_in', forward: 'forward', output: 'local_out', postrouting: 'post_routing',
};

export class NftError extends Error {
  override name = 'NftError';
}

/** An nft context bound to a namespace: its commands act there, whichever thread runs them later. */
export class Nft {
  private constructor(private readonly ctx: NftContextHandle, readonly netns: Netns) {}

  /** `json`: output as nft's JSON (for listings read by code), else text with rule handles, without counter values. */
  static open(netns: Netns, json = false): Nft {
    const flags = json ? NftOutput.json : NftOutput.handle | NftOutput.stateless;
    const ctx = withNetns(netns.path, () => libnftables().newContext(flags));
    return new Nft(ctx, netns);
  }

  run(commands: string, what: string): string {
    const r = this.ctx.run(commands);
    if (!r.ok) throw new NftError(`${what} (netns ${this.netns.name || this.netns.inode}): ${r.error.split('\n')[0]}`);
    return r.output;
  }

  close(): void {
    this.ctx.free();
  }
}

export interface NftTable {
  family: string;
  name: string;
  handle: number;
  /** e.g. `owner` (the table lives as long as the socket that made it). */
  flags: string[];
}

export interface NftBaseChain {
  family: string;
  table: string;
  name: string;
  handle: number;
  type: string;
  /** nft's hook name (prerouting, input, …, ingress). */
  hook: string;
  priority: number;
  policy: string;
  /** The device of netdev-family chains. */
  devices: string[];
}

export interface NftListing {
  tables: NftTable[];
  /** Chains with a hook only: the ones packets enter. */
  baseChains: NftBaseChain[];
}

const asArray = (v: unknown): string[] => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);

/** Tables and base chains, from `nft -j list chains` / `list tables` (a JSON context). */
export function listNft(nft: Nft): NftListing {
  type Item = { table?: Record<string, unknown>; chain?: Record<string, unknown> };
  const items = (text: string): Item[] => (JSON.parse(text || '{"nftables":[]}') as { nftables: Item[] }).nftables;
  const tables = items(nft.run('list tables', 'listing nft tables')).flatMap((i) => (i.table ? [i.table] : []))
    .map((t) => ({ family: String(t.family), name: String(t.name), handle: Number(t.handle), flags: asArray(t.flags) }));
  const baseChains = items(nft.run('list chains', 'listing nft chains')).flatMap((i) => (i.chain?.hook ? [i.chain] : []))
    .map((c) => ({
      family: String(c.family), table: String(c.table), name: String(c.name), handle: Number(c.handle),
      type: String(c.type), hook: String(c.hook), priority: Number(c.prio), policy: String(c.policy ?? 'accept'),
      devices: asArray(c.dev),
    }));
  return { tables, baseChains };
}

/** Rule handle → rule text (as `nft list` prints it, without the handle comment) of one chain. */
export function chainRules(nft: Nft, family: string, table: string, chain: string): Map<number, string> {
  const out = new Map<number, string>();
  const text = nft.run(`list chain ${family} ${quoteName(table)} ${quoteName(chain)}`, `listing nft chain ${family} ${table} ${chain}`);
  for (const line of text.split('\n')) {
    const m = /^\s+(.*\S)\s+# handle (\d+)$/.exec(line);
    if (m && !/^(type|policy) /.test(m[1]!)) out.set(Number(m[2]), m[1]!);
  }
  return out;
}

/** Names nft would read as keywords are quoted. */
const quoteName = (name: string) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : `"${name.replace(/"/g, '')}"`);

/* ---- pktpath's trace table ---- */

/** Every table pktpath makes is named so: `pktpath_trace_<pid>`. */
export const TRACE_TABLE_PREFIX = 'pktpath_trace_';
/** Before anything else of netfilter (NF_IP_PRI_FIRST): conntrack, raw and every rule see the mark. */
const EARLIEST = -2147483648;

/**
 * pktpath's table in the `inet` family: at prerouting and output, before
 * anything else, it sets `nftrace` on packets matching `matches` (nft
 * conditions, each alternative one rule; [''] for every packet). Flag
 * `owner` ties the table to this context's socket: the kernel removes it when
 * the context is freed or the process dies, even by SIGKILL.
 */
export function traceTableRuleset(name: string, matches: string[]): string {
  const rules = matches.map((m) => `    ${m ? `${m} ` : ''}meta nftrace set 1 comment "pktpath --output-nft"`).join('\n');
  const chain = (chainName: string, hook: string) =>
    `  chain ${chainName} {\n    type filter hook ${hook} priority ${EARLIEST}; policy accept;\n${rules}\n  }`;
  return `table inet ${name} {\n  flags owner\n${chain('trace_prerouting', 'prerouting')}\n${chain('trace_output', 'output')}\n}\n`;
}

/** Whether a process with this pid is alive (a table of a dead session is stale). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes trace tables whose session is gone (a kernel without owner tables
 * keeps them after a SIGKILL); returns their names. Owned tables of live
 * sessions are left alone: the kernel refuses anyone else anyway.
 */
export function removeStaleTraceTables(nft: Nft, listing: NftListing): string[] {
  const removed: string[] = [];
  for (const t of listing.tables) {
    if (t.family !== 'inet' || !t.name.startsWith(TRACE_TABLE_PREFIX)) continue;
    const pid = Number(t.name.slice(TRACE_TABLE_PREFIX.length));
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) continue;
    nft.run(`delete table inet ${t.name}`, `removing stale trace table ${t.name}`);
    removed.push(t.name);
  }
  return removed;
}

/* ---- trace events (NFT_MSG_TRACE in NFNLGRP_NFTRACE) ---- */

const NFNL_SUBSYS_NFTABLES = 10;
const NFT_MSG_TRACE = 17;
const NFNLGRP_NFTRACE = 9;
const A = {
  table: 1, chain: 2, ruleHandle: 3, type: 4, verdict: 5, id: 6, networkHeader: 8, transportHeader: 9,
  iif: 10, oif: 12, mark: 14, nfproto: 15, policy: 16,
} as const;
const VERDICT_CODE = 1;
const VERDICT_CHAIN = 2;
const TRACE_TYPES: Readonly<Record<number, NftTraceType>> = { 1: 'policy', 2: 'return', 3: 'rule' };

export type NftTraceType = 'rule' | 'return' | 'policy';

/** NF_* and NFT_* verdict codes as nft prints them. */
const VERDICTS: Readonly<Record<number, string>> = {
  0: 'drop', 1: 'accept', 2: 'stolen', 3: 'queue', 4: 'repeat', [-1]: 'continue', [-2]: 'break', [-3]: 'jump',
  [-4]: 'goto', [-5]: 'return',
};

/** One evaluation nftables reports: a rule that matched, a chain's policy, or a return from a chain. */
export interface NftTrace {
  /** The kernel's id for the packet's trace: the same for every evaluation of one packet at one hook pass. */
  id: number;
  family: string;
  table: string;
  chain: string;
  /** The rule's handle; null for a policy or return. */
  handle: number | null;
  type: NftTraceType;
  /** e.g. accept, drop, continue, jump; for jumps and gotos `target` names the chain. */
  verdict: string;
  target: string | null;
  /** NFPROTO of the packet (2 IPv4, 10 IPv6). */
  nfproto: number;
  iif: number;
  oif: number;
  mark: number;
  /** The packet's headers from the network header on, as the kernel copied them. */
  network: Buffer | null;
  transport: Buffer | null;
}

const be32 = (b: Buffer | undefined) => (b && b.length >= 4 ? b.readUInt32BE(0) : 0);

/** Parses the payload of one NFT_MSG_TRACE message (nfgenmsg, then big-endian attributes). */
export function parseTrace(payload: Buffer): NftTrace | null {
  const a = attrs(payload, 4);
  const type = TRACE_TYPES[be32(a.get(A.type))];
  if (type === undefined) return null;
  let verdict = type === 'return' ? 'return' : 'continue';
  let target: string | null = null;
  const v = a.get(A.verdict);
  if (v) {
    const va = attrs(v);
    const code = va.get(VERDICT_CODE);
    if (code) verdict = VERDICTS[code.readInt32BE(0)] ?? `verdict#${code.readInt32BE(0)}`;
    target = attrStr(va.get(VERDICT_CHAIN)) ?? null;
  } else if (type === 'policy') {
    verdict = VERDICTS[be32(a.get(A.policy))] ?? 'accept';
  }
  const handle = a.get(A.ruleHandle);
  return {
    id: be32(a.get(A.id)),
    family: FAMILY_NAMES[payload.readUInt8(0)] ?? `family#${payload.readUInt8(0)}`,
    table: attrStr(a.get(A.table)) ?? '',
    chain: attrStr(a.get(A.chain)) ?? '',
    handle: handle && handle.length >= 8 ? Number(handle.readBigUInt64BE(0)) : null,
    type,
    verdict,
    target,
    nfproto: be32(a.get(A.nfproto)),
    iif: be32(a.get(A.iif)),
    oif: be32(a.get(A.oif)),
    mark: be32(a.get(A.mark)),
    network: a.get(A.networkHeader) ?? null,
    transport: a.get(A.transportHeader) ?? null,
  };
}

/** A socket in a namespace's `nftrace` group: what nftables traces there. */
export class NftTraceMonitor {
  private constructor(private readonly sock: NetlinkSocket, readonly netns: Netns) {}

  static open(netns: Netns): NftTraceMonitor {
    return new NftTraceMonitor(withNetns(netns.path, () => NetlinkSocket.open(NETLINK_NETFILTER, [NFNLGRP_NFTRACE])), netns);
  }

  /** The trace events that arrived since the last call. */
  poll(): NftTrace[] {
    const out: NftTrace[] = [];
    for (const m of this.sock.poll()) {
      if (m.type !== ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_TRACE)) continue;
      const t = parseTrace(m.payload);
      if (t) out.push(t);
    }
    return out;
  }

  close(): void {
    this.sock.close();
  }
}
