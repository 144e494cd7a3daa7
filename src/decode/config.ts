/**
 * Encoder of `struct config` (probes/include/event.h): the read-only settings
 * each probe instance is loaded with. Offsets are checked against the BTF of
 * the compiled probes by test/unit/layout.test.ts.
 */
import type { Addr } from '../cli/config.js';

export const CONFIG_LAYOUT = {
  size: 92,
  fields: { point_id: 0, flags: 4, skb_arg: 8, reason_arg: 12, location_arg: 16, dev_arg: 20, has_filter: 24, filter: 28 },
  filter: {
    size: 64,
    fields: {
      saddr: 0, daddr: 16, addr: 32, saddr_l3: 48, daddr_l3: 49, addr_l3: 50, l4proto: 51, has_l4proto: 52,
      sport: 56, dport: 58, port: 60,
    },
  },
} as const;

export const ConfigFlags = { stack: 1 << 0 } as const;

export interface TupleFilter {
  srcIp?: Addr;
  dstIp?: Addr;
  ip?: Addr;
  proto?: number;
  srcPort?: number;
  dstPort?: number;
  port?: number;
}

export interface ProbeConfig {
  pointId: number;
  stack: boolean;
  skbArg: number;
  reasonArg: number;
  locationArg: number;
  devArg: number;
  filter: TupleFilter;
}

export function filterIsEmpty(f: TupleFilter): boolean {
  return !f.srcIp && !f.dstIp && !f.ip && f.proto === undefined && !f.srcPort && !f.dstPort && !f.port;
}

export function encodeConfig(cfg: ProbeConfig): Buffer {
  const F = CONFIG_LAYOUT.fields;
  const b = Buffer.alloc(CONFIG_LAYOUT.size);
  b.writeUInt32LE(cfg.pointId, F.point_id);
  b.writeUInt32LE(cfg.stack ? ConfigFlags.stack : 0, F.flags);
  b.writeInt32LE(cfg.skbArg, F.skb_arg);
  b.writeInt32LE(cfg.reasonArg, F.reason_arg);
  b.writeInt32LE(cfg.locationArg, F.location_arg);
  b.writeInt32LE(cfg.devArg, F.dev_arg);
  const f = cfg.filter;
  b.writeUInt32LE(filterIsEmpty(f) ? 0 : 1, F.has_filter);
  const at = F.filter;
  const FF = CONFIG_LAYOUT.filter.fields;
  const putAddr = (a: Addr | undefined, addrOff: number, l3Off: number) => {
    if (!a) return;
    b.set(a.bytes, at + addrOff);
    b.writeUInt8(a.l3, at + l3Off);
  };
  putAddr(f.srcIp, FF.saddr, FF.saddr_l3);
  putAddr(f.dstIp, FF.daddr, FF.daddr_l3);
  putAddr(f.ip, FF.addr, FF.addr_l3);
  if (f.proto !== undefined) {
    b.writeUInt8(f.proto, at + FF.l4proto);
    b.writeUInt8(1, at + FF.has_l4proto);
  }
  b.writeUInt16LE(f.srcPort ?? 0, at + FF.sport);
  b.writeUInt16LE(f.dstPort ?? 0, at + FF.dport);
  b.writeUInt16LE(f.port ?? 0, at + FF.port);
  return b;
}
