/**
 * A namespace's network configuration over rtnetlink, as `ip link`, `ip
 * addr`, `ip route show table all` and `ip rule` list it: devices with their
 * MTU, state, kind and addresses, the routes of every table, the policy
 * rules. The parsers take one message's payload (unit-tested on bytes the
 * tests build); names from the kernel are kept as they are (escaped where
 * printed).
 */
import { NLM_F_DUMP, type NetlinkMessage, type NetlinkSocket, attrStr, attrs } from './netlink.js';

const RTM_NEWLINK = 16;
const RTM_GETLINK = 18;
const RTM_NEWADDR = 20;
const RTM_GETADDR = 22;
const RTM_NEWROUTE = 24;
const RTM_GETROUTE = 26;
const RTM_NEWRULE = 32;
const RTM_GETRULE = 34;

const AF_INET = 2;
const AF_INET6 = 10;
const IFF_UP = 0x1;

const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_LINKINFO = 18;
const IFLA_INFO_KIND = 1;

const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;

const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_PREFSRC = 7;
const RTA_MULTIPATH = 9;
const RTA_TABLE = 15;
const RTA_VIA = 18;

const FRA_DST = 1;
const FRA_SRC = 2;
const FRA_IIFNAME = 3;
const FRA_GOTO = 4;
const FRA_PRIORITY = 6;
const FRA_FWMARK = 10;
const FRA_TABLE = 15;
const FRA_FWMASK = 16;
const FRA_OIFNAME = 17;
const FIB_RULE_INVERT = 0x2;
const FR_ACT_TO_TBL = 1;

/** Most entries of each list read from one namespace: a dump past it is cut (and said so). */
export const CONFIG_LIMITS = { devices: 1024, addresses: 64, routes: 4096, rules: 1024 } as const;

export interface DeviceConfig {
  ifindex: number;
  name: string;
  mtu: number;
  /** Administratively up (IFF_UP). */
  up: boolean;
  /** The link kind (`veth`, `bridge`, `vxlan`…); '' for devices without one (loopback, physical). */
  kind: string;
  /** `address/prefix`, IPv4 then IPv6, in the kernel's order. */
  addresses: string[];
  /** The link-layer address; null without one. */
  lladdr: string | null;
}

export interface RouteConfig {
  family: 4 | 6;
  /** main, local, default, or the table's number as text. */
  table: string;
  /** `prefix/len` (`0.0.0.0/0`, `::/0` for a default route). */
  dst: string;
  gateway: string | null;
  /** The output device's name ('' without one, or where the device is not known). */
  dev: string;
  /** RTN_* in lower case: unicast local broadcast blackhole unreachable prohibit throw … */
  type: string;
  /** The preferred source address; null without one. */
  src: string | null;
}

export interface RuleConfig {
  family: 4 | 6;
  priority: number;
  /** The table it looks up (name or number), or its action where it looks none up (`blackhole`, `goto 100`, …). */
  table: string;
  /** What it matches, as `ip rule` says it: `from all`, `not from 192.0.2.0/24 iif veth0 fwmark 0x1/0xff`. */
  selector: string;
}

export interface NamespaceConfig {
  devices: DeviceConfig[];
  routes: RouteConfig[];
  rules: RuleConfig[];
  /** Lists cut at CONFIG_LIMITS: their names. */
  truncated: string[];
}

const RTN_TYPES = ['unspec', 'unicast', 'local', 'broadcast', 'anycast', 'multicast', 'blackhole', 'unreachable', 'prohibit', 'throw', 'nat', 'xresolve'];
const RULE_ACTIONS: Readonly<Record<number, string>> = { 3: 'nop', 6: 'blackhole', 7: 'unreachable', 8: 'prohibit' };
const TABLE_NAMES: Readonly<Record<number, string>> = { 253: 'default', 254: 'main', 255: 'local' };

export const tableName = (id: number): string => TABLE_NAMES[id] ?? String(id);
export const routeTypeName = (t: number): string => RTN_TYPES[t] ?? `type ${t}`;

/** An address of `family` from its bytes; null when the bytes are not one. */
export function ipText(family: number, b: Buffer | undefined): string | null {
  if (b === undefined) return null;
  if (family === AF_INET && b.length >= 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (family !== AF_INET6 || b.length < 16) return null;
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(b.readUInt16BE(i));
  // RFC 5952: the longest run of two or more zero words becomes '::'.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

const zeroAddress = (family: number) => (family === AF_INET ? '0.0.0.0' : '::');
const familyOf = (f: number): 4 | 6 | null => (f === AF_INET ? 4 : f === AF_INET6 ? 6 : null);

function lladdrText(b: Buffer | undefined): string | null {
  if (b === undefined || b.length === 0 || b.length > 32) return null;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** An RTM_NEWLINK payload: the device without its addresses. */
export function parseLink(payload: Buffer): DeviceConfig | null {
  if (payload.length < 16) return null;
  const a = attrs(payload, 16);
  const info = a.get(IFLA_LINKINFO);
  return {
    ifindex: payload.readInt32LE(4),
    name: attrStr(a.get(IFLA_IFNAME)) ?? '',
    mtu: a.get(IFLA_MTU)?.readUInt32LE(0) ?? 0,
    up: (payload.readUInt32LE(8) & IFF_UP) !== 0,
    kind: (info && attrStr(attrs(info).get(IFLA_INFO_KIND))) ?? '',
    addresses: [],
    lladdr: lladdrText(a.get(IFLA_ADDRESS)),
  };
}

/** An RTM_NEWADDR payload: the device's index and `address/prefix`. */
export function parseAddress(payload: Buffer): { ifindex: number; family: 4 | 6; address: string } | null {
  if (payload.length < 8) return null;
  const family = familyOf(payload[0]!);
  if (family === null) return null;
  const a = attrs(payload, 8);
  // IFA_LOCAL is the device's own address; IFA_ADDRESS the peer's on point-to-point links (IPv6 has only it).
  const ip = ipText(payload[0]!, a.get(IFA_LOCAL) ?? a.get(IFA_ADDRESS));
  if (ip === null) return null;
  return { ifindex: payload.readUInt32LE(4), family, address: `${ip}/${payload[1]}` };
}

/** The first next hop of an RTA_MULTIPATH: its device and gateway. */
function firstHop(family: number, mp: Buffer): { oif: number; gateway: string | null } | null {
  if (mp.length < 8) return null;
  const len = mp.readUInt16LE(0);
  if (len < 8 || len > mp.length) return null;
  const a = attrs(mp.subarray(8, len));
  return { oif: mp.readInt32LE(4), gateway: gatewayOf(family, a) };
}

/** RTA_GATEWAY, or RTA_VIA (an IPv6 next hop of an IPv4 route: family, then address). */
function gatewayOf(family: number, a: Map<number, Buffer>): string | null {
  const gw = ipText(family, a.get(RTA_GATEWAY));
  if (gw !== null) return gw;
  const via = a.get(RTA_VIA);
  return via && via.length >= 2 ? ipText(via.readUInt16LE(0), via.subarray(2)) : null;
}

/** An RTM_NEWROUTE payload; `names`: the namespace's device names by index. */
export function parseRoute(payload: Buffer, names: ReadonlyMap<number, string>): RouteConfig | null {
  if (payload.length < 12) return null;
  const family = familyOf(payload[0]!);
  if (family === null) return null;
  const a = attrs(payload, 12);
  let oif = a.get(RTA_OIF)?.readInt32LE(0) ?? 0;
  let gateway = gatewayOf(payload[0]!, a);
  const mp = a.get(RTA_MULTIPATH);
  if (mp && oif === 0 && gateway === null) {
    const hop = firstHop(payload[0]!, mp);
    if (hop) ({ oif, gateway } = hop);
  }
  const table = a.get(RTA_TABLE)?.readUInt32LE(0) ?? payload[4]!;
  return {
    family,
    table: tableName(table),
    dst: `${ipText(payload[0]!, a.get(RTA_DST)) ?? zeroAddress(payload[0]!)}/${payload[1]}`,
    gateway,
    dev: oif > 0 ? names.get(oif) ?? '' : '',
    type: routeTypeName(payload[7]!),
    src: ipText(payload[0]!, a.get(RTA_PREFSRC)),
  };
}

/** An RTM_NEWRULE payload (struct fib_rule_hdr, then FRA_* attributes). */
export function parseRule(payload: Buffer): RuleConfig | null {
  if (payload.length < 12) return null;
  const af = payload[0]!;
  const family = familyOf(af);
  if (family === null) return null;
  const a = attrs(payload, 12);
  const action = payload[7]!;
  const parts: string[] = [];
  const src = ipText(af, a.get(FRA_SRC));
  parts.push(src === null ? 'from all' : `from ${src}/${payload[2]}`);
  const dst = ipText(af, a.get(FRA_DST));
  if (dst !== null) parts.push(`to ${dst}/${payload[1]}`);
  if (payload[3]) parts.push(`tos 0x${payload[3].toString(16)}`);
  const mark = a.get(FRA_FWMARK)?.readUInt32LE(0);
  const mask = a.get(FRA_FWMASK)?.readUInt32LE(0);
  if (mark !== undefined && (mark !== 0 || (mask !== undefined && mask !== 0))) {
    parts.push(`fwmark 0x${mark.toString(16)}${mask !== undefined && mask !== 0xffffffff ? `/0x${mask.toString(16)}` : ''}`);
  }
  const iif = attrStr(a.get(FRA_IIFNAME));
  if (iif) parts.push(`iif ${iif}`);
  const oif = attrStr(a.get(FRA_OIFNAME));
  if (oif) parts.push(`oif ${oif}`);
  const table = a.get(FRA_TABLE)?.readUInt32LE(0) ?? payload[4]!;
  const target = action === FR_ACT_TO_TBL ? tableName(table)
    : action === 2 ? `goto ${a.get(FRA_GOTO)?.readUInt32LE(0) ?? '?'}` : RULE_ACTIONS[action] ?? `action ${action}`;
  return {
    family,
    priority: a.get(FRA_PRIORITY)?.readUInt32LE(0) ?? 0,
    table: target,
    selector: `${(payload.readUInt32LE(8) & FIB_RULE_INVERT) !== 0 ? 'not ' : ''}${parts.join(' ')}`,
  };
}

/** rtgenmsg-sized requests: a family byte, padded (the kernel reads the header its dump expects). */
function dumpRequest(size: number): Buffer {
  return Buffer.alloc(size); // AF_UNSPEC: every family.
}

function dump(sock: NetlinkSocket, type: number, size: number, what: string, answer: number): NetlinkMessage[] {
  return sock.request(type, NLM_F_DUMP, dumpRequest(size), what).filter((m) => m.type === answer);
}

function capped<T>(items: T[], limit: number, name: string, truncated: string[]): T[] {
  if (items.length <= limit) return items;
  truncated.push(name);
  return items.slice(0, limit);
}

/** The configuration of the socket's namespace: devices, addresses, routes of every table, rules. */
export function readNamespaceConfig(sock: NetlinkSocket): NamespaceConfig {
  const truncated: string[] = [];
  const devices = capped(dump(sock, RTM_GETLINK, 16, 'listing devices', RTM_NEWLINK)
    .map((m) => parseLink(m.payload)).filter((d): d is DeviceConfig => d !== null)
    .sort((x, y) => x.ifindex - y.ifindex), CONFIG_LIMITS.devices, 'devices', truncated);
  const byIndex = new Map(devices.map((d) => [d.ifindex, d]));
  const addrs = dump(sock, RTM_GETADDR, 8, 'listing addresses', RTM_NEWADDR).map((m) => parseAddress(m.payload))
    .filter((x): x is NonNullable<typeof x> => x !== null)
    .sort((x, y) => x.family - y.family);
  for (const x of addrs) {
    const d = byIndex.get(x.ifindex);
    if (!d) continue;
    if (d.addresses.length < CONFIG_LIMITS.addresses) d.addresses.push(x.address);
    else if (!truncated.includes('addresses')) truncated.push('addresses');
  }
  const names = new Map(devices.map((d) => [d.ifindex, d.name]));
  const routes = capped(dump(sock, RTM_GETROUTE, 12, 'listing routes', RTM_NEWROUTE)
    .map((m) => parseRoute(m.payload, names)).filter((r): r is RouteConfig => r !== null), CONFIG_LIMITS.routes, 'routes', truncated);
  const rules = capped(dump(sock, RTM_GETRULE, 12, 'listing rules', RTM_NEWRULE)
    .map((m) => parseRule(m.payload)).filter((r): r is RuleConfig => r !== null)
    .sort((x, y) => x.family - y.family || x.priority - y.priority), CONFIG_LIMITS.rules, 'rules', truncated);
  return { devices, routes, rules, truncated };
}
