import type { Fd } from '../bpf/fd.js';
/**
 * rtnetlink queries of the calling thread's namespace: devices with their
 * XDP program, the BPF filters of legacy tc (clsact, cls_bpf), pktpath's own
 * filters where tcx is missing, and the device events a live trace follows.
 */
import {
  NETLINK_ROUTE, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NetlinkError, type NetlinkSocket, attrStr, attrString, attrU32, attrs, nested,
} from './netlink.js';

const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const RTM_GETLINK = 18;
const RTM_NEWQDISC = 36;
const RTM_DELQDISC = 37;
const RTM_GETQDISC = 38;
const RTM_GETTFILTER = 46;
const IFLA_IFNAME = 3;
const IFLA_XDP = 43;
const IFLA_XDP_ATTACHED = 2;
const IFLA_XDP_PROG_ID = 4;
const TCA_KIND = 1;
const TCA_OPTIONS = 2;
const TCA_BPF_NAME = 7;
const TCA_BPF_FLAGS = 8;
const TCA_BPF_TAG = 10;
const TCA_BPF_ID = 11;
const TCA_BPF_FLAG_ACT_DIRECT = 1;
/** TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS / TC_H_MIN_EGRESS) */
const CLSACT_PARENT = { ingress: 0xfffffff2, egress: 0xfffffff3 } as const;

export const RTNLGRP_LINK = 1;
export { NETLINK_ROUTE };

export type XdpMode = 'native' | 'generic' | 'offload' | 'multi';
const XDP_MODES: Record<number, XdpMode> = { 1: 'native', 2: 'generic', 3: 'offload', 4: 'multi' };

export interface LinkDevice {
  ifindex: number;
  name: string;
  xdp: { mode: XdpMode; progId: number } | null;
}

function ifinfo(ifindex = 0): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(0, 0); // AF_UNSPEC
  b.writeInt32LE(ifindex, 4);
  return b;
}

function device(payload: Buffer): LinkDevice {
  const a = attrs(payload, 16);
  const xdp = a.get(IFLA_XDP);
  let x: LinkDevice['xdp'] = null;
  if (xdp) {
    const xa = attrs(xdp);
    const mode = xa.get(IFLA_XDP_ATTACHED)?.readUInt8(0) ?? 0;
    if (mode !== 0) x = { mode: XDP_MODES[mode] ?? 'multi', progId: xa.get(IFLA_XDP_PROG_ID)?.readUInt32LE(0) ?? 0 };
  }
  return { ifindex: payload.readInt32LE(4), name: attrStr(a.get(IFLA_IFNAME)) ?? '', xdp: x };
}

/** Every device of the socket's namespace. */
export function listDevices(sock: NetlinkSocket): LinkDevice[] {
  return sock.request(RTM_GETLINK, NLM_F_DUMP, ifinfo(), 'listing devices')
    .filter((m) => m.type === RTM_NEWLINK).map((m) => device(m.payload));
}

export interface TcBpfFilter {
  direction: 'ingress' | 'egress';
  /** tc's priority (`pref`) and handle. */
  priority: number;
  handle: number;
  progId: number;
  /** What tc calls it: the object file and section it was loaded from, e.g. `policy.bpf.o:[tc]`. */
  name: string;
  tag: string;
  /** direct-action (`da`): the program's return is the verdict. */
  directAction: boolean;
}

/** The devices of the socket's namespace with a clsact or ingress qdisc: the only ones legacy tc filters can be on at those hooks. */
export function devicesWithClsact(sock: NetlinkSocket): Set<number> {
  const out = new Set<number>();
  for (const m of sock.request(RTM_GETQDISC, NLM_F_DUMP, Buffer.alloc(20), 'listing qdiscs')) {
    if (m.type !== RTM_NEWQDISC) continue;
    const kind = attrStr(attrs(m.payload, 20).get(TCA_KIND));
    if (kind === 'clsact' || kind === 'ingress') out.add(m.payload.readInt32LE(4));
  }
  return out;
}

/** The cls_bpf filters of a device's clsact qdisc, in the order tc runs them (by priority). */
export function tcBpfFilters(sock: NetlinkSocket, ifindex: number): TcBpfFilter[] {
  const out: TcBpfFilter[] = [];
  for (const direction of ['ingress', 'egress'] as const) {
    const req = Buffer.alloc(20);
    req.writeInt32LE(ifindex, 4);
    req.writeUInt32LE(CLSACT_PARENT[direction], 12);
    let msgs;
    try {
      msgs = sock.request(RTM_GETTFILTER, NLM_F_DUMP, req, `listing tc filters of ifindex ${ifindex}`);
    } catch {
      // No clsact qdisc: no filters.
      continue;
    }
    for (const m of msgs) {
      const a = attrs(m.payload, 20);
      if (attrStr(a.get(TCA_KIND)) !== 'bpf') continue;
      const opts = a.get(TCA_OPTIONS);
      if (!opts) continue;
      const o = attrs(opts);
      const id = o.get(TCA_BPF_ID)?.readUInt32LE(0);
      if (id === undefined) continue;
      const info = m.payload.readUInt32LE(16);
      out.push({
        direction,
        priority: info >>> 16,
        handle: m.payload.readUInt32LE(8),
        progId: id,
        name: attrStr(o.get(TCA_BPF_NAME)) ?? '',
        tag: o.get(TCA_BPF_TAG)?.toString('hex') ?? '',
        directAction: ((o.get(TCA_BPF_FLAGS)?.readUInt32LE(0) ?? 0) & TCA_BPF_FLAG_ACT_DIRECT) !== 0,
      });
    }
  }
  return out.sort((x, y) => (x.direction === y.direction ? x.priority - y.priority : x.direction === 'ingress' ? -1 : 1));
}

export interface LinkEvent {
  kind: 'new' | 'del';
  device: LinkDevice;
}

/** What a link monitor (a socket in RTNLGRP_LINK) has seen since last asked. */
export function linkEvents(sock: NetlinkSocket): LinkEvent[] {
  return sock.poll()
    .filter((m) => m.type === RTM_NEWLINK || m.type === RTM_DELLINK)
    .map((m) => ({ kind: m.type === RTM_NEWLINK ? 'new' : 'del', device: device(m.payload) }));
}

/* ---- legacy tc: pktpath's own cls_bpf filters, on kernels without tcx ---- */

const RTM_NEWTFILTER = 44;
const RTM_DELTFILTER = 45;
const TCA_BPF_FD = 6;
/** TC_H_CLSACT (= TC_H_INGRESS): the clsact qdisc's parent, and its handle ffff:0. */
const TC_H_CLSACT = 0xfffffff1;
const CLSACT_HANDLE = 0xffff0000;
const ETH_P_ALL = 0x0003;
const EEXIST = 17;
const ENOENT = 2;

/** The name pktpath's filters carry (`tc filter show` prints it): the owner's pid, so a stale one can be told from a live one. */
export const PKTPATH_FILTER_PREFIX = 'pktpath_';
export const pktpathFilterName = (pid = process.pid) => `${PKTPATH_FILTER_PREFIX}${pid}`;

function tcmsg(ifindex: number, parent: number, handle = 0, info = 0): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt8(0, 0); // AF_UNSPEC
  b.writeInt32LE(ifindex, 4);
  b.writeUInt32LE(handle, 8);
  b.writeUInt32LE(parent, 12);
  b.writeUInt32LE(info, 16);
  return b;
}

/** Adds a clsact qdisc to a device; false when it has one already (someone else's: never removed by pktpath). */
export function addClsact(sock: NetlinkSocket, ifindex: number): boolean {
  try {
    sock.request(RTM_NEWQDISC, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, Buffer.concat([tcmsg(ifindex, TC_H_CLSACT, CLSACT_HANDLE), attrString(TCA_KIND, 'clsact')]),
      `adding a clsact qdisc to ifindex ${ifindex}`);
    return true;
  } catch (e) {
    if (e instanceof NetlinkError && e.errno === EEXIST) return false;
    throw e;
  }
}

export function deleteClsact(sock: NetlinkSocket, ifindex: number): void {
  try {
    sock.request(RTM_DELQDISC, NLM_F_ACK, tcmsg(ifindex, TC_H_CLSACT, CLSACT_HANDLE), `removing the clsact qdisc of ifindex ${ifindex}`);
  } catch (e) {
    if (!(e instanceof NetlinkError && e.errno === ENOENT)) throw e;
  }
}

/** tcm_info of a filter: its priority, and the protocol it matches (every one) in network order. */
const filterInfo = (priority: number) => (((priority & 0xffff) << 16) | (ETH_P_ALL >> 8) | ((ETH_P_ALL & 0xff) << 8)) >>> 0;

/** A direct-action cls_bpf filter of program `prog` at tc priority `priority`; returns its handle (the kernel picks it). */
export function addBpfFilter(sock: NetlinkSocket, ifindex: number, direction: 'ingress' | 'egress', prog: Fd, name: string,
  priority: number): number {
  const payload = Buffer.concat([
    tcmsg(ifindex, CLSACT_PARENT[direction], 0, filterInfo(priority)),
    attrString(TCA_KIND, 'bpf'),
    nested(TCA_OPTIONS, attrU32(TCA_BPF_FD, prog.raw), attrString(TCA_BPF_NAME, name), attrU32(TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT)),
  ]);
  sock.request(RTM_NEWTFILTER, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, payload, `adding a tc ${direction} filter to ifindex ${ifindex}`);
  const mine = tcBpfFilters(sock, ifindex).find((f) => f.direction === direction && f.priority === priority && f.name === name);
  return mine?.handle ?? 0;
}

export function deleteBpfFilter(sock: NetlinkSocket, ifindex: number, direction: 'ingress' | 'egress', priority: number, handle: number): void {
  try {
    sock.request(RTM_DELTFILTER, NLM_F_ACK, Buffer.concat([tcmsg(ifindex, CLSACT_PARENT[direction], handle, filterInfo(priority)), attrString(TCA_KIND, 'bpf')]),
      `removing a tc ${direction} filter of ifindex ${ifindex}`);
  } catch (e) {
    if (!(e instanceof NetlinkError && e.errno === ENOENT)) throw e;
  }
}
