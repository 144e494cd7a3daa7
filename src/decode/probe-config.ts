/**
 * Encoders of `struct config` and `struct tp_point` (probes/include/event.h):
 * the read-only settings each probe instance is loaded with.
 */
import { CONFIG_LAYOUT, ConfigFlags, ROUTE_POINT_LAYOUT, TP_POINT_LAYOUT } from './layout.js';

export interface ProbeConfig {
  pointId: number;
  stack: boolean;
  /** Run the pcap filter injected into the probe. */
  filter: boolean;
  /** Run the --filter-skb-expr injected into the probe. */
  skbExpr?: boolean;
  /** Run the --filter-xdp-expr injected into the probe (XDP program probes). */
  xdpExpr?: boolean;
  /** Run the inner-packet filters on encapsulated packets (src/filter/inner-packet.ts). */
  innerL2?: boolean;
  innerL3?: boolean;
  /** The optional sections to write (src/output/sections/registry.ts, sectionMask): bit k for kind k. */
  sections?: number;
  /** --output-skb-metadata: bytes of its values (CompiledSkbFetch.bytes). */
  skbMetaBytes?: number;
  /** --output-xdp-metadata: bytes of its values (sections/xdp_meta.h). */
  xdpMetaBytes?: number;
  /** --output-skb, --output-skb-shared-info, --output-skb-cb; the rooms of the texts (--set-percpu-buf). */
  dump?: { skb: boolean; sharedInfo: boolean; cb: boolean; room?: { skb: number; sharedInfo: number } };
  /** Functions: the argument holding the skb. */
  skbArg: number;
  /** Only this namespace (inode) and device (ifindex in it); 0 for any. */
  netns: number;
  ifindex: number;
  mark: { value: number; mask: number } | null;
  /** Follow matched skbs (--filter-track-skb). */
  track: boolean;
  /** And the skbs seen on a followed skb's kernel stack (--filter-track-skb-by-stackid). */
  trackStack?: boolean;
  /** Function observers open their CPU's window on a wanted skb (--filter-non-skb-funcs). */
  window?: boolean;
  /** Packet bytes to capture per event (0: none). */
  snaplen: number;
  /** Leave out the current task (pid, comm): the kernel refuses those helpers to this program type. */
  noTask?: boolean;
  /** The filter injected reads packet bytes in place (a build's packetLoads): no prefetch for it. */
  directLoads?: boolean;
  /** Every neighbour event of the traced namespace, whatever the filter (--output-neigh-all). */
  neighAll?: boolean;
  /** A traced BPF program's entry keeps its run for its helpers' records (--filter-track-bpf-helpers). */
  progRun?: boolean;
  /** nf_hook_slow observer: the hooks wanted (nfHookMask), 0 for all. */
  nfHooks?: number;
}

/** The nf_hooks bits of netfilter hooks: IPv4's from bit 0, IPv6's from bit 8, by hook number. */
export function nfHookMask(hooks: ReadonlyArray<{ ipv6: boolean; hook: number }>): number {
  let mask = 0;
  for (const h of hooks) mask |= 1 << ((h.ipv6 ? 8 : 0) + h.hook);
  return mask;
}

export function encodeConfig(cfg: ProbeConfig): Buffer {
  const F = CONFIG_LAYOUT.fields;
  const b = Buffer.alloc(CONFIG_LAYOUT.size);
  b.writeUInt32LE(cfg.pointId, F.point_id);
  const flags = (cfg.stack ? ConfigFlags.stack : 0) | (cfg.filter ? ConfigFlags.filter : 0) |
    (cfg.mark ? ConfigFlags.mark : 0) | (cfg.track ? ConfigFlags.track : 0) | (cfg.noTask ? ConfigFlags.noTask : 0) |
    (cfg.skbExpr ? ConfigFlags.skbExpr : 0) | (cfg.innerL2 ? ConfigFlags.innerL2 : 0) | (cfg.innerL3 ? ConfigFlags.innerL3 : 0) |
    (cfg.dump?.skb ? ConfigFlags.dumpSkb : 0) |
    (cfg.dump?.sharedInfo ? ConfigFlags.dumpShinfo : 0) | (cfg.dump?.cb ? ConfigFlags.dumpCb : 0) |
    (cfg.directLoads ? ConfigFlags.directLoads : 0) | (cfg.neighAll ? ConfigFlags.neighAll : 0) | (cfg.xdpExpr ? ConfigFlags.xdpExpr : 0) |
    (cfg.progRun ? ConfigFlags.progRun : 0) |
    (cfg.trackStack ? ConfigFlags.trackStack : 0) | (cfg.window ? ConfigFlags.window : 0);
  b.writeUInt32LE(flags, F.flags);
  b.writeInt32LE(cfg.skbArg, F.skb_arg);
  b.writeUInt32LE(cfg.netns, F.netns);
  b.writeUInt32LE(cfg.ifindex, F.ifindex);
  b.writeUInt32LE(cfg.mark?.value ?? 0, F.mark);
  b.writeUInt32LE(cfg.mark?.mask ?? 0, F.mark_mask);
  b.writeUInt32LE(cfg.snaplen, F.snaplen);
  b.writeUInt32LE(cfg.nfHooks ?? 0, F.nf_hooks);
  b.writeUInt32LE(cfg.sections ?? 0, F.sections);
  b.writeUInt16LE(cfg.dump?.skb ? cfg.dump.room?.skb ?? 0 : 0, F.dump_skb_room);
  b.writeUInt16LE(cfg.dump?.sharedInfo ? cfg.dump.room?.sharedInfo ?? 0 : 0, F.dump_shinfo_room);
  b.writeUInt16LE(cfg.skbMetaBytes ?? 0, F.skb_meta_bytes);
  b.writeUInt16LE(cfg.xdpMetaBytes ?? 0, F.xdp_meta_bytes);
  return b;
}

/** One tracepoint program's settings: its point and where its arguments are (-1: it has none). */
export interface TracepointSlot {
  pointId: number;
  /** The point frees the skb (kfree_skb, consume_skb): followed skbs are forgotten there. */
  frees: boolean;
  /** An internal point (a free --filter-func left out, for --filter-track-skb): it forgets followed skbs and reports nothing. */
  silent?: boolean;
  skbArg: number;
  reasonArg: number;
  locationArg: number;
  devArg: number;
}

/** TP_POINTS, slot by slot; slots past the given ones stay zero (their programs are not loaded). */
export function encodeTracepointSlots(slots: readonly TracepointSlot[], count: number): Buffer {
  if (slots.length > count) throw new RangeError(`${slots.length} tracepoints for ${count} slots`);
  const F = TP_POINT_LAYOUT.fields;
  const b = Buffer.alloc(TP_POINT_LAYOUT.size * count);
  slots.forEach((s, i) => {
    const at = i * TP_POINT_LAYOUT.size;
    b.writeUInt32LE(s.pointId, at + F.point_id);
    b.writeUInt32LE(s.frees ? 1 : 0, at + F.frees);
    b.writeUInt32LE(s.silent ? 1 : 0, at + F.silent);
    b.writeInt32LE(s.skbArg, at + F.skb_arg);
    b.writeInt32LE(s.reasonArg, at + F.reason_arg);
    b.writeInt32LE(s.locationArg, at + F.location_arg);
    b.writeInt32LE(s.devArg, at + F.dev_arg);
  });
  return b;
}

/** One route object program's settings: its point and which tracepoint it serves (RoutePointKind). */
export interface RouteSlot {
  pointId: number;
  kind: number;
}

/** ROUTE_POINTS, slot by slot; slots past the given ones stay zero (their programs are not loaded). */
export function encodeRouteSlots(slots: readonly RouteSlot[], count: number): Buffer {
  if (slots.length > count) throw new RangeError(`${slots.length} route points for ${count} slots`);
  const F = ROUTE_POINT_LAYOUT.fields;
  const b = Buffer.alloc(ROUTE_POINT_LAYOUT.size * count);
  slots.forEach((s, i) => {
    b.writeUInt32LE(s.pointId, i * ROUTE_POINT_LAYOUT.size + F.point_id);
    b.writeUInt32LE(s.kind, i * ROUTE_POINT_LAYOUT.size + F.kind);
  });
  return b;
}
