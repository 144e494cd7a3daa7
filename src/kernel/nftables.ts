/**
 * nftables of one network namespace: its tables and base chains, its rules'
 * text (through libnftables, the library behind `nft`, so rules read exactly
 * as `nft list` prints them, iptables-nft's included), pktpath's own trace
 * table (made over nfnetlink directly: it must live exactly as long as one
 * socket). The trace events it turns on are read in ./nft-trace.ts.
 */
import { NftOutput, type NftContextHandle, libnftables } from '../bpf/native/libnftables.js';
import {
  NETLINK_NETFILTER, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NetlinkSocket, attr, attrString, attrU32BE, nested,
} from './netlink.js';
import { type Netns, withNetns } from './netns.js';
import { processAlive } from './process.js';

/** nfgenmsg.nfgen_family → nft's family names. */
export const FAMILY_NAMES: Readonly<Record<number, string>> = { 1: 'inet', 2: 'ip', 3: 'arp', 5: 'netdev', 7: 'bridge', 10: 'ip6' };

/** nft's hook names → pktpath's netfilter hook names (the inet hooks; ingress/egress are netdev's). */
export const NFT_HOOKS: Readonly<Record<string, string>> = {
  prerouting: 'pre_routing', input: 'local_in', forward: 'forward', output: 'local_out', postrouting: 'post_routing',
};

export class NftError extends Error {
  override name = 'NftError';
}

/**
 * An nft context bound to a namespace: its commands act there, whichever
 * thread runs them later. libnftables keeps state shared by its contexts (an
 * interface cache that freeing any context releases): pktpath keeps at most
 * one alive at a time, through `Nft.with`.
 */
export class Nft {
  private constructor(private readonly ctx: NftContextHandle, readonly netns: Netns) {}

  /** Runs `fn` with a context of `netns`, freed afterwards. */
  static with<T>(netns: Netns, fn: (nft: Nft) => T): T {
    const nft = Nft.open(netns);
    try {
      return fn(nft);
    } finally {
      nft.close();
    }
  }

  /**
   * Text output, as `nft -a -s -y` prints it: handles, no counter values,
   * numeric priorities. (Not JSON: libnftables 1.0.6 stops its JSON in the
   * middle at a table with flag `owner`.)
   */
  private static open(netns: Netns): Nft {
    const flags = NftOutput.handle | NftOutput.stateless | NftOutput.numericPriority;
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
  /** The devices of netdev-family chains. */
  devices: string[];
}

export interface NftListing {
  tables: NftTable[];
  /** Chains with a hook only: the ones packets enter. */
  baseChains: NftBaseChain[];
}

const TABLE_LINE = /^table (\S+) (\S+) \{$/;
const CHAIN_LINE = /^\s+chain (\S+) \{ # handle (\d+)$/;
const HOOK_LINE = /^\s+type (\S+) hook (\S+)(?: device "([^"]*)"| devices = \{ ([^}]*) \})? priority (-?\d+); policy (\w+);$/;

/** Tables and base chains of `nft list chains` text (handles on, numeric priorities). */
export function parseChains(text: string): NftListing {
  const tables: NftTable[] = [];
  const baseChains: NftBaseChain[] = [];
  let table: NftTable | null = null;
  let chain: { name: string; handle: number } | null = null;
  for (const line of text.split('\n')) {
    let m = TABLE_LINE.exec(line);
    if (m) {
      tables.push((table = { family: m[1]!, name: unquote(m[2]!) }));
      continue;
    }
    m = CHAIN_LINE.exec(line);
    if (m) {
      chain = { name: unquote(m[1]!), handle: Number(m[2]) };
      continue;
    }
    m = HOOK_LINE.exec(line);
    if (m && table && chain) {
      const devices = m[3] !== undefined ? [m[3]] : m[4] !== undefined ? m[4].split(',').map((d) => unquote(d.trim())) : [];
      baseChains.push({
        family: table.family, table: table.name, name: chain.name, handle: chain.handle, type: m[1]!, hook: m[2]!,
        priority: Number(m[5]), policy: m[6]!, devices,
      });
    }
  }
  return { tables, baseChains };
}

const unquote = (s: string) => s.replace(/^"(.*)"$/, '$1');

/** Tables and base chains of a namespace. */
export function listNft(nft: Nft): NftListing {
  return parseChains(nft.run('list chains', 'listing nft chains'));
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

/** One condition of a trace-table rule (the classic filter flags or a tcpdump expression, see src/filter/nft-rules.ts). */
export type NftCondition =
  | { kind: 'addr'; field: 'saddr' | 'daddr'; l3: 4 | 6; bytes: number[]; text: string }
  | { kind: 'l4proto'; proto: number }
  | { kind: 'port'; field: 'sport' | 'dport'; port: number }
  | { kind: 'mark'; value: number; mask: number }
  /** Classic BPF from the IP header on (libpcap's raw-IP program), run by iptables' bpf match through nft_compat. */
  | { kind: 'bpf'; insns: ReadonlyArray<{ code: number; jt: number; jf: number; k: number }>; text: string };

/** The most instructions the bpf match takes (XT_BPF_MAX_NUM_INSTR). */
export const XT_BPF_MAX_INSNS = 64;

/** A condition as nft prints it. */
export function nftConditionText(c: NftCondition): string {
  switch (c.kind) {
    case 'addr': return `${c.l3 === 4 ? 'ip' : 'ip6'} ${c.field} ${c.text}`;
    case 'l4proto': return `meta l4proto ${c.proto}`;
    case 'port': return `th ${c.field} ${c.port}`;
    case 'mark': return c.mask === 0xffffffff ? `meta mark 0x${c.value.toString(16)}` : `meta mark & 0x${c.mask.toString(16)} == 0x${c.value.toString(16)}`;
    case 'bpf': return `xt match bpf "${c.text}"`;
  }
}

/* nfnetlink, as nf_tables.h defines it (values checked against the kernel's BTF by test/unit/nftables.test.ts). */
export const NFNL_SUBSYS_NFTABLES = 10;
const NFNL_MSG_BATCH_BEGIN = 0x10;
const NFNL_MSG_BATCH_END = 0x11;
const NFT_MSG = { newTable: 0, newChain: 3, newRule: 6, delTable: 2 } as const;
const NLM_F_APPEND = 0x800;
const NFPROTO_INET = 1;
const NFT_TABLE_F_OWNER = 2;
const NF_ACCEPT = 1;
const NFT_REG_1 = 1;
const NFT_CMP_EQ = 0;
const NFT_META = { mark: 3, nftrace: 12, nfproto: 15, l4proto: 16 } as const;
const NFT_PAYLOAD = { network: 1, transport: 2 } as const;
const NFT_UDATA_RULE_COMMENT = 0;
const NF_HOOK_NUMBERS = { prerouting: 0, output: 3 } as const;

const nfgen = (family: number, resId = 0) => {
  const b = Buffer.alloc(4);
  b.writeUInt8(family, 0);
  b.writeUInt16BE(resId, 2);
  return b;
};
const u8s = (...bytes: number[]) => Buffer.from(bytes);
const be16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
const nativeU32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};
const data = (type: number, value: Buffer) => nested(type, attr(1 /* NFTA_DATA_VALUE */, value));

function expr(name: string, ...body: Buffer[]): Buffer {
  return nested(1 /* NFTA_LIST_ELEM */, attrString(1 /* NFTA_EXPR_NAME */, name), nested(2 /* NFTA_EXPR_DATA */, ...body));
}
const metaLoad = (key: number) => expr('meta', attrU32BE(2, key), attrU32BE(1, NFT_REG_1));
const cmpEq = (value: Buffer) => expr('cmp', attrU32BE(1, NFT_REG_1), attrU32BE(2, NFT_CMP_EQ), data(3, value));
const payload = (base: number, offset: number, len: number) =>
  expr('payload', attrU32BE(1, NFT_REG_1), attrU32BE(2, base), attrU32BE(3, offset), attrU32BE(4, len));

/** The expressions of one condition: loads into register 1, compares. Marks and metadata are in host order. */
function conditionExprs(c: NftCondition): Buffer[] {
  switch (c.kind) {
    case 'addr': {
      const v4 = c.l3 === 4;
      const offset = v4 ? (c.field === 'saddr' ? 12 : 16) : (c.field === 'saddr' ? 8 : 24);
      return [metaLoad(NFT_META.nfproto), cmpEq(u8s(v4 ? 2 : 10)), payload(NFT_PAYLOAD.network, offset, v4 ? 4 : 16), cmpEq(Buffer.from(c.bytes))];
    }
    case 'l4proto':
      return [metaLoad(NFT_META.l4proto), cmpEq(u8s(c.proto))];
    case 'port':
      return [payload(NFT_PAYLOAD.transport, c.field === 'sport' ? 0 : 2, 2), cmpEq(be16(c.port))];
    case 'mark':
      return [
        metaLoad(NFT_META.mark),
        expr('bitwise', attrU32BE(1, NFT_REG_1), attrU32BE(2, NFT_REG_1), attrU32BE(3, 4), data(4, nativeU32(c.mask)), data(5, nativeU32(0))),
        cmpEq(nativeU32(c.value & c.mask)),
      ];
    case 'bpf':
      return [expr('match', attrString(1 /* NAME */, 'bpf'), attrU32BE(2 /* REV */, 0), attr(3 /* INFO */, xtBpfInfo(c.insns)))];
  }
}

/**
 * struct xt_bpf_info (revision 0), in host order: the program's length (u16),
 * its instructions from byte 4 (struct sock_filter: u16 code, u8 jt, u8 jf,
 * u32 k), room for 64, then the kernel's pointer to the loaded program.
 */
function xtBpfInfo(insns: ReadonlyArray<{ code: number; jt: number; jf: number; k: number }>): Buffer {
  if (insns.length > XT_BPF_MAX_INSNS) throw new RangeError(`a bpf match takes ${XT_BPF_MAX_INSNS} instructions at most`);
  const b = Buffer.alloc(4 + 8 * XT_BPF_MAX_INSNS + 4 /* pointer alignment */ + 8);
  b.writeUInt16LE(insns.length, 0);
  insns.forEach((i, n) => {
    b.writeUInt16LE(i.code, 4 + 8 * n);
    b.writeUInt8(i.jt, 6 + 8 * n);
    b.writeUInt8(i.jf, 7 + 8 * n);
    b.writeUInt32LE(i.k >>> 0, 8 + 8 * n);
  });
  return b;
}

const COMMENT = 'pktpath --output-nft';

/** The messages of the trace table: the table, a chain at prerouting and at output, a rule per alternative. */
export function traceTableMessages(name: string, rules: NftCondition[][]): Array<{ type: number; flags: number; payload: Buffer }> {
  const type = (m: number) => (NFNL_SUBSYS_NFTABLES << 8) | m;
  const create = NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK;
  const head = nfgen(NFPROTO_INET);
  const msgs = [{
    type: type(NFT_MSG.newTable), flags: create,
    payload: Buffer.concat([head, attrString(1 /* NAME */, name), attrU32BE(2 /* FLAGS */, NFT_TABLE_F_OWNER)]),
  }];
  const comment = Buffer.from(`${COMMENT}\0`);
  const udata = Buffer.concat([u8s(NFT_UDATA_RULE_COMMENT, comment.length), comment]);
  for (const [chain, hook] of [['trace_prerouting', 'prerouting'], ['trace_output', 'output']] as const) {
    msgs.push({
      type: type(NFT_MSG.newChain), flags: create,
      payload: Buffer.concat([head, attrString(1 /* TABLE */, name), attrString(3 /* NAME */, chain),
        nested(4 /* HOOK */, attrU32BE(1 /* HOOKNUM */, NF_HOOK_NUMBERS[hook]), attrU32BE(2 /* PRIORITY */, EARLIEST)),
        attrU32BE(5 /* POLICY */, NF_ACCEPT), attrString(7 /* TYPE */, 'filter')]),
    });
    for (const r of rules) {
      const exprs = [...r.flatMap(conditionExprs),
        expr('immediate', attrU32BE(1 /* DREG */, NFT_REG_1), data(2 /* DATA */, u8s(1))),
        expr('meta', attrU32BE(2 /* KEY */, NFT_META.nftrace), attrU32BE(3 /* SREG */, NFT_REG_1))];
      msgs.push({
        type: type(NFT_MSG.newRule), flags: NLM_F_CREATE | NLM_F_APPEND | NLM_F_ACK,
        payload: Buffer.concat([head, attrString(1 /* TABLE */, name), attrString(2 /* CHAIN */, chain),
          nested(4 /* EXPRESSIONS */, ...exprs), attr(7 /* USERDATA */, udata)]),
      });
    }
  }
  return msgs;
}

/** One nftables transaction (a batch): all of it applies, or none. */
function batch(sock: NetlinkSocket, msgs: Array<{ type: number; flags: number; payload: Buffer }>, what: string): void {
  const resId = nfgen(0, NFNL_SUBSYS_NFTABLES);
  sock.transaction([{ type: NFNL_MSG_BATCH_BEGIN, flags: 0, payload: resId }, ...msgs, { type: NFNL_MSG_BATCH_END, flags: 0, payload: resId }], what);
}

/**
 * pktpath's table in a namespace (`inet pktpath_trace_<pid>`): before
 * anything else at prerouting and output, it sets `nftrace` on the packets
 * its rules match, and does nothing else. Its flag `owner` ties it to this
 * handle's socket: the kernel removes it when the handle is closed or the
 * process dies, even by SIGKILL.
 */
export class TraceTable {
  private constructor(private readonly sock: NetlinkSocket, readonly name: string) {}

  static create(netns: Netns, name: string, rules: NftCondition[][]): TraceTable {
    const sock = withNetns(netns.path, () => NetlinkSocket.open(NETLINK_NETFILTER));
    try {
      batch(sock, traceTableMessages(name, rules), `adding nft table inet ${name} (netns ${netns.name || netns.inode})`);
    } catch (e) {
      sock.close();
      throw e;
    }
    return new TraceTable(sock, name);
  }

  close(): void {
    this.sock.close();
  }
}

/** Deletes a table (a stale trace table of a kernel without owner tables). */
function deleteTable(netns: Netns, family: number, name: string): void {
  const sock = withNetns(netns.path, () => NetlinkSocket.open(NETLINK_NETFILTER));
  try {
    batch(sock, [{ type: (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG.delTable, flags: NLM_F_ACK,
      payload: Buffer.concat([nfgen(family), attrString(1, name)]) }], `removing nft table ${name}`);
  } finally {
    sock.close();
  }
}

/**
 * Removes trace tables whose session is gone (a kernel without owner tables
 * keeps them after a SIGKILL); returns their names. Owned tables of live
 * sessions are left alone: the kernel refuses anyone else anyway.
 */
export function removeStaleTraceTables(netns: Netns, listing: NftListing): string[] {
  const removed: string[] = [];
  for (const t of listing.tables) {
    if (t.family !== 'inet' || !t.name.startsWith(TRACE_TABLE_PREFIX)) continue;
    const pid = Number(t.name.slice(TRACE_TABLE_PREFIX.length));
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) continue;
    deleteTable(netns, NFPROTO_INET, t.name);
    removed.push(t.name);
  }
  return removed;
}
