/**
 * rtnetlink queries of the calling thread's namespace: devices with their
 * XDP program, the BPF filters of legacy tc (clsact, cls_bpf), and the
 * device events a live trace follows.
 */
import { NETLINK_ROUTE, NLM_F_DUMP, type NetlinkSocket, attrStr, attrs } from './netlink.js';

const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const RTM_GETLINK = 18;
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
