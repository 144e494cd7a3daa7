/**
 * union bpf_attr, packed in one place: a typed builder per bpf(2) command
 * pktpath issues itself (libbpf issues the rest), each writing its fields at
 * the kernel's offsets (include/uapi/linux/bpf.h) and reading back what the
 * kernel writes there. Each returns what bpf(2) does: an fd or 0, or a
 * negative errno.
 */
import { sysBpf } from './native/libc.js';

/** bpf(2) commands. */
const Cmd = {
  PROG_GET_FD_BY_ID: 13,
  PROG_GET_NEXT_ID: 11,
  MAP_GET_NEXT_ID: 12,
  MAP_GET_FD_BY_ID: 14,
  OBJ_GET_INFO_BY_FD: 15,
  PROG_QUERY: 16,
  BTF_GET_FD_BY_ID: 19,
  LINK_CREATE: 28,
  LINK_GET_FD_BY_ID: 30,
  LINK_GET_NEXT_ID: 31,
  ENABLE_STATS: 32,
} as const;

/**
 * Where each command's fields sit in union bpf_attr (test/unit/attr.test.ts
 * holds them against the kernel's BTF); members of a nested struct
 * (link_create.netfilter) at their offsets from the attr's start.
 */
export const ATTR = {
  getId: { start_id: 0, next_id: 4 },
  getFdById: { prog_id: 0 },
  info: { bpf_fd: 0, info_len: 4, info: 8 },
  query: { target_fd: 0, attach_type: 4, prog_ids: 16, prog_cnt: 24, link_ids: 40, revision: 56 },
  linkCreate: { prog_fd: 0, target_fd: 4, attach_type: 8, flags: 12 },
  linkCreateNetfilter: { pf: 16, hooknum: 20, priority: 24 },
  linkCreateKprobeMulti: { flags: 16, cnt: 20, syms: 24 },
  enableStats: { type: 0 },
} as const;

export type BpfObjectKind = 'prog' | 'map' | 'link' | 'btf';

const NEXT_ID: Record<Exclude<BpfObjectKind, 'btf'>, number> = {
  prog: Cmd.PROG_GET_NEXT_ID, map: Cmd.MAP_GET_NEXT_ID, link: Cmd.LINK_GET_NEXT_ID,
};
const FD_BY_ID: Record<BpfObjectKind, number> = {
  prog: Cmd.PROG_GET_FD_BY_ID, map: Cmd.MAP_GET_FD_BY_ID, link: Cmd.LINK_GET_FD_BY_ID, btf: Cmd.BTF_GET_FD_BY_ID,
};

/** BPF_*_GET_NEXT_ID: the id after `start` (0: the first); null after the last. */
export function nextId(kind: Exclude<BpfObjectKind, 'btf'>, start: number): number | null {
  const attr = Buffer.alloc(16);
  attr.writeUInt32LE(start, ATTR.getId.start_id);
  return sysBpf(NEXT_ID[kind], attr) < 0 ? null : attr.readUInt32LE(ATTR.getId.next_id);
}

/** BPF_*_GET_FD_BY_ID: an fd of object `id` (the caller's to close). */
export function fdById(kind: BpfObjectKind, id: number): number {
  const attr = Buffer.alloc(16);
  attr.writeUInt32LE(id, ATTR.getFdById.prog_id);
  return sysBpf(FD_BY_ID[kind], attr);
}

/** BPF_OBJ_GET_INFO_BY_FD: up to `infoLen` bytes of the object's info, written at native address `info`. */
export function objGetInfoByFd(fd: number, infoLen: number, info: bigint): number {
  const attr = Buffer.alloc(16);
  attr.writeUInt32LE(fd, ATTR.info.bpf_fd);
  attr.writeUInt32LE(infoLen, ATTR.info.info_len);
  attr.writeBigUInt64LE(info, ATTR.info.info);
  return sysBpf(Cmd.OBJ_GET_INFO_BY_FD, attr);
}

export interface ProgQuery {
  /** A device's ifindex (tcx) or a cgroup's fd. */
  target: number;
  attachType: number;
  /** Native arrays of `room` u32s each, for the kernel to fill. */
  progIds: bigint;
  linkIds: bigint;
  room: number;
}

/** BPF_PROG_QUERY: how many programs are attached (the ids written up to `room`), and the chain's revision. */
export function progQuery(q: ProgQuery): { rc: number; count: number; revision: bigint } {
  const attr = Buffer.alloc(72);
  const at = ATTR.query;
  attr.writeUInt32LE(q.target, at.target_fd); // or target_ifindex
  attr.writeUInt32LE(q.attachType, at.attach_type);
  attr.writeBigUInt64LE(q.progIds, at.prog_ids);
  attr.writeUInt32LE(q.room, at.prog_cnt);
  attr.writeBigUInt64LE(q.linkIds, at.link_ids);
  const rc = sysBpf(Cmd.PROG_QUERY, attr);
  return { rc, count: attr.readUInt32LE(at.prog_cnt), revision: attr.readBigUInt64LE(at.revision) };
}

/** The part of BPF_LINK_CREATE's attr that depends on the attach type. */
export type LinkTarget =
  | { kind: 'plain' }
  /** BPF_F_BEFORE / BPF_F_AFTER and the like (tcx). */
  | { kind: 'tcx'; flags: number }
  | { kind: 'netfilter'; pf: number; hooknum: number; priority: number }
  /** `syms`: a native array of `count` C strings. */
  | { kind: 'kprobe-multi'; count: number; syms: bigint; retprobe?: boolean };

/** BPF_LINK_CREATE: a link of program `progFd` to `target` (an ifindex, a perf event's fd, or 0). */
export function linkCreate(progFd: number, target: number, attachType: number, how: LinkTarget): number {
  return sysBpf(Cmd.LINK_CREATE, packLinkCreate(progFd, target, attachType, how));
}

/** BPF_LINK_CREATE's attr. */
export function packLinkCreate(progFd: number, target: number, attachType: number, how: LinkTarget): Buffer {
  const attr = Buffer.alloc(64);
  const at = ATTR.linkCreate;
  attr.writeUInt32LE(progFd, at.prog_fd);
  attr.writeUInt32LE(target, at.target_fd); // or target_ifindex
  attr.writeUInt32LE(attachType, at.attach_type);
  switch (how.kind) {
    case 'tcx':
      attr.writeUInt32LE(how.flags, at.flags);
      break;
    case 'netfilter':
      attr.writeUInt32LE(how.pf, ATTR.linkCreateNetfilter.pf);
      attr.writeUInt32LE(how.hooknum, ATTR.linkCreateNetfilter.hooknum);
      attr.writeInt32LE(how.priority, ATTR.linkCreateNetfilter.priority);
      break;
    case 'kprobe-multi':
      // BPF_F_KPROBE_MULTI_RETURN: at the functions' returns.
      if (how.retprobe) attr.writeUInt32LE(1, ATTR.linkCreateKprobeMulti.flags);
      attr.writeUInt32LE(how.count, ATTR.linkCreateKprobeMulti.cnt);
      attr.writeBigUInt64LE(how.syms, ATTR.linkCreateKprobeMulti.syms);
      break;
    case 'plain':
      break;
  }
  return attr;
}

/** BPF_ENABLE_STATS: an fd that keeps the kernel's run-time stats of BPF programs on while open. */
export function enableStats(type: number): number {
  const attr = Buffer.alloc(8);
  attr.writeUInt32LE(type, ATTR.enableStats.type);
  return sysBpf(Cmd.ENABLE_STATS, attr);
}
