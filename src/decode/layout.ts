/**
 * The kernel↔user layout of probes/include/event.h, mirrored once in TS:
 * offsets of every struct, and the values of its enums. test/unit/layout.test.ts
 * holds all of it against the BTF clang emits for the header.
 */

/** enum record_type: the first u32 of every ring record. */
export const RecordType = { event: 1 } as const;

/** enum event_flags: which optional parts of an event hold data. */
export const EventFlags = {
  tuple: 1 << 0,
  stack: 1 << 1,
  reason: 1 << 2,
  caller: 1 << 3,
  nfHook: 1 << 4,
  tcDir: 1 << 5,
  packet: 1 << 6,
  ct: 1 << 7,
  ownSrcMac: 1 << 8,
  func: 1 << 9,
  verdict: 1 << 10,
} as const;

/** enum config_flags */
export const ConfigFlags = {
  stack: 1 << 0, filter: 1 << 1, mark: 1 << 2, track: 1 << 3, noTask: 1 << 4, skbExpr: 1 << 5, innerL2: 1 << 6, innerL3: 1 << 7,
  dumpSkb: 1 << 9, dumpShinfo: 1 << 10, dumpCb: 1 << 11, directLoads: 1 << 12, neighAll: 1 << 13, xdpExpr: 1 << 14, progRun: 1 << 15,
  trackStack: 1 << 16, window: 1 << 17,
} as const;

/**
 * enum section_kind: the sections a point writes of its own. The optional
 * sections' kinds are their modules' (src/output/sections/), from 8 up.
 */
export const SectionKind = { ct: 1, verdict: 2 } as const;

/** struct section_head: in front of every section, its kind and its length (head included). */
export const SECTION_HEAD = { size: 8, fields: { kind: 0, len: 2 } } as const;

/** enum track_stat: indices of the per-CPU track_stats counters. */
export const TrackStat = { added: 0, freed: 1, stale: 2, moved: 3, byStack: 4, copied: 5 } as const;

/** enum ct_source: where a conntrack section came from. */
export const CtSource = { nfct: 1, lookup: 2 } as const;
/** ct_section.ctinfo for untracked packets, and for lookups (which have none). */
export const CT_CTINFO_UNTRACKED = 7;
export const CT_CTINFO_NONE = 0xff;
/** event.vlan: a tag is there (its id may be 0), and the id's bits. */
export const VLAN_TAGGED = 0x8000;
export const VLAN_VID_MASK = 0x0fff;

/**
 * A record is a struct event, then its sections (each behind a struct
 * section_head), then the captured packet bytes at cap_offset.
 */
export const EVENT_LAYOUT = {
  size: 160,
  fields: {
    type: 0, flags: 4, ts_ns: 8, skb: 16, caller: 24, point_id: 32, cpu: 36, pid: 40,
    netns: 44, mark: 48, ifindex: 52, len: 56, mtu: 60, stack_id: 64, drop_reason: 68,
    protocol: 72, hook: 74, pf: 75, vlan: 76, comm: 80, tuple: 96, cap_len: 136, cap_orig_len: 140, cap_l2: 144,
    cap_offset: 146, func_ip: 152,
  },
  tuple: { size: 40, fields: { saddr: 0, daddr: 16, sport: 32, dport: 34, l3: 36, l4proto: 37, tcp_flags: 38 } },
  ct_section: {
    size: 112,
    fields: { id: 0, status: 8, mark: 12, error: 16, zone: 20, source: 22, ctinfo: 23, dir: 24, orig: 32, reply: 72 },
  },
  ct_tuple: { size: 40, fields: { saddr: 0, daddr: 16, sport: 32, dport: 34, l3: 36, l4proto: 37 } },
  verdict_section: { size: 16, fields: { retval: 0, redirect_ifindex: 4, redirect_flags: 8 } },
} as const;

/** struct config: the read-only settings each probe instance is loaded with. */
export const CONFIG_LAYOUT = {
  size: 48,
  fields: {
    point_id: 0, flags: 4, skb_arg: 8, netns: 12, ifindex: 16, mark: 20, mark_mask: 24, snaplen: 28, nf_hooks: 32, sections: 36,
    dump_skb_room: 40, dump_shinfo_room: 42, skb_meta_bytes: 44, xdp_meta_bytes: 46,
  },
} as const;

/** struct route_point: one program's slot of ROUTE_POINTS (probes/route.bpf.c). */
export const ROUTE_POINT_LAYOUT = { size: 8, fields: { point_id: 0, kind: 4 } } as const;

/** enum route_point_kind of probes/route.bpf.c: which tracepoint a route object's program serves. */
export const RoutePointKind = {
  fib4: 1, fib6: 2, neighCreate: 3, neighUpdate: 4, neighUpdateDone: 5, neighTimer: 6, neighSendDone: 7, neighSendDead: 8, neighRelease: 9,
} as const;

/** struct tp_point: one tracepoint program's slot of TP_POINTS (probes/tracepoint.bpf.c). */
export const TP_POINT_LAYOUT = {
  size: 28,
  fields: { point_id: 0, frees: 4, silent: 8, skb_arg: 12, reason_arg: 16, location_arg: 20, dev_arg: 24 },
} as const;
