/**
 * The BPF programs and links loaded on this machine, whoever loaded them:
 * walked by id (BPF_PROG_GET_NEXT_ID, BPF_LINK_GET_NEXT_ID), described by
 * BPF_OBJ_GET_INFO_BY_FD, and what is attached to a device's tcx hook
 * (BPF_PROG_QUERY). Type numbers are named from the kernel's BTF by the
 * caller; offsets are those of struct bpf_prog_info and struct bpf_link_info
 * (test/unit/objects.test.ts holds them against the kernel's BTF).
 */
import { AttachType } from './abi.js';
import { Btf } from './btf/btf.js';
import { Fd } from './fd.js';
import { type BpfObjectKind, enableStats, fdById, nextId, objGetInfoByFd, progQuery } from './attr.js';
import { c } from './native/libc.js';
import { withNativeMemory } from './native/memory.js';

const BPF_STATS_RUN_TIME = 0;

export const PROG_INFO = {
  size: 232, type: 0, id: 4, tag: 8, xlated_prog_len: 20, xlated_prog_insns: 32, name: 64, ifindex: 80, netns_ino: 96, btf_id: 128, func_info_rec_size: 132, func_info: 136, nr_func_info: 144,
  run_time_ns: 192, run_cnt: 200, attach_btf_id: 224,
} as const;
export const BTF_INFO = { size: 32, btf: 0, btf_size: 8 } as const;
export const LINK_INFO = { size: 64, type: 0, id: 4, prog_id: 8, union: 16 } as const;
export const MAP_INFO = {
  size: 88, type: 0, id: 4, key_size: 8, value_size: 12, name: 24, btf_id: 64, btf_key_type_id: 68, btf_value_type_id: 72,
} as const;

export interface ProgInfo {
  id: number;
  type: number;
  name: string;
  /** Hex of the 8-byte tag: a hash of the instructions, the same wherever the program is loaded. */
  tag: string;
  /** Time spent in the program and runs, counted while run-time stats are on (enableRunStats). */
  runTimeNs: bigint;
  runCount: bigint;
  /** BTF-typed programs (tp_btf, fentry): the kernel BTF id of what they attach to. */
  attachBtfId: number;
}

export interface LinkInfo {
  id: number;
  type: number;
  progId: number;
  /** The type-specific part of struct bpf_link_info (16 bytes on): read by the caller who knows the type. */
  detail: Buffer;
}

function nextIds(kind: Exclude<BpfObjectKind, 'btf'>): number[] {
  const ids: number[] = [];
  for (let id = nextId(kind, 0); id !== null; id = nextId(kind, id)) ids.push(id);
  return ids;
}

/**
 * BPF_OBJ_GET_INFO_BY_FD: `infoSize` bytes of info (of `size` in all), into
 * memory that starts with `init(address)` for infos that carry pointers to more.
 */
function infoByFd(fd: number, size: number, infoSize = size, init?: (address: bigint) => Buffer): Buffer | null {
  const { result, bytes } = withNativeMemory(size, (address) => objGetInfoByFd(fd, infoSize, address), init);
  return result < 0 ? null : bytes;
}

/** The id of the program behind a program fd (e.g. one pktpath loaded); 0 when the kernel does not say. */
export function progIdOfFd(fd: Fd): number {
  const b = infoByFd(fd.raw, PROG_INFO.size);
  return b ? b.readUInt32LE(PROG_INFO.id) : 0;
}

function progInfoOfFd(fd: number): ProgInfo | null {
  const b = infoByFd(fd, PROG_INFO.size);
  if (!b) return null;
  return {
    id: b.readUInt32LE(PROG_INFO.id),
    type: b.readUInt32LE(PROG_INFO.type),
    name: objName(b, PROG_INFO.name),
    tag: b.subarray(PROG_INFO.tag, PROG_INFO.tag + 8).toString('hex'),
    runTimeNs: b.readBigUInt64LE(PROG_INFO.run_time_ns),
    runCount: b.readBigUInt64LE(PROG_INFO.run_cnt),
    attachBtfId: b.readUInt32LE(PROG_INFO.attach_btf_id),
  };
}

/** Info of the program with this id; null when it is gone. */
export function progInfoById(id: number): ProgInfo | null {
  const fd = fdById('prog', id);
  if (fd < 0) return null;
  try {
    return progInfoOfFd(fd);
  } finally {
    c.close(fd);
  }
}

/** Info of every program loaded (those that went away while walking are skipped). */
export function programs(): ProgInfo[] {
  return nextIds('prog').map(progInfoById).filter((p): p is ProgInfo => p !== null);
}

/** The info of every object of one kind, walked by id; those that went away while walking are skipped. */
function allInfos<T>(kind: 'map' | 'link', size: number, read: (info: Buffer, id: number) => T): T[] {
  const out: T[] = [];
  for (const id of nextIds(kind)) {
    const fd = fdById(kind, id);
    if (fd < 0) continue;
    try {
      const b = infoByFd(fd, size);
      if (b) out.push(read(b, id));
    } finally {
      c.close(fd);
    }
  }
  return out;
}

/** A NUL-terminated name of at most 16 bytes at `at`. */
function objName(b: Buffer, at: number): string {
  const end = b.indexOf(0, at);
  return b.toString('latin1', at, end < 0 || end > at + 16 ? at + 16 : end);
}

/** Every map loaded: id and name. */
export function mapInfos(): Array<{ id: number; name: string }> {
  return allInfos('map', MAP_INFO.size, (b, id) => ({ id, name: objName(b, MAP_INFO.name) }));
}

/** Info of every link. */
export function linkInfos(): LinkInfo[] {
  return allInfos('link', LINK_INFO.size, (b) => ({
    id: b.readUInt32LE(LINK_INFO.id),
    type: b.readUInt32LE(LINK_INFO.type),
    progId: b.readUInt32LE(LINK_INFO.prog_id),
    detail: b.subarray(LINK_INFO.union),
  }));
}

export interface TcxChain {
  /** Program ids in the order they run. */
  progIds: number[];
  /** The link of each, 0 for programs attached without one. */
  linkIds: number[];
  /** Bumped by the kernel on every change of the chain. */
  revision: bigint;
}

const MAX_CHAIN = 64;

/** The tcx chain of a device of the calling thread's namespace; null where the kernel has no tcx. */
export function tcxChain(ifindex: number, direction: 'ingress' | 'egress'): TcxChain | null {
  const ids = MAX_CHAIN * 4;
  const { result, bytes } = withNativeMemory(ids * 2, (address) => {
    const q = progQuery({
      target: ifindex, attachType: direction === 'ingress' ? AttachType.TCX_INGRESS : AttachType.TCX_EGRESS,
      progIds: address, linkIds: address + BigInt(ids), room: MAX_CHAIN,
    });
    return q.rc < 0 ? null : q;
  });
  if (result === null) return null;
  const n = Math.min(result.count, MAX_CHAIN);
  const progIds: number[] = [];
  const linkIds: number[] = [];
  for (let i = 0; i < n; i++) {
    progIds.push(bytes.readUInt32LE(i * 4));
    linkIds.push(bytes.readUInt32LE(ids + i * 4));
  }
  return { progIds, linkIds, revision: result.revision };
}

/** How many programs a device's tcx chain holds (calling thread's namespace): a count-only query, 0 where the kernel has no tcx. */
export function tcxChainLength(ifindex: number, direction: 'ingress' | 'egress'): number {
  const q = progQuery({
    target: ifindex, attachType: direction === 'ingress' ? AttachType.TCX_INGRESS : AttachType.TCX_EGRESS, progIds: 0n, linkIds: 0n, room: 0,
  });
  return q.rc < 0 ? 0 : q.count;
}

/** A loaded program to trace with fentry/fexit: an fd that holds it (the caller's to close), and its main function as its BTF names it. */
export interface TraceTarget {
  fd: Fd;
  func: string;
}

/** struct bpf_func_info: insn_off, type_id. */
const FUNC_INFO_SIZE = 8;

/**
 * Opens program `id` for tracing. The target of a trampoline is a function of
 * the program's BTF: its first func_info (instruction 0) names the main one
 * (the program's own name is cut at 16 bytes). A string says why it cannot be.
 */
export function traceTarget(id: number): TraceTarget | string {
  const fd = fdById('prog', id);
  if (fd < 0) return 'the program is gone';
  const why = (() => {
    const info = infoByFd(fd, PROG_INFO.size + FUNC_INFO_SIZE, PROG_INFO.size, (address) => {
      const b = Buffer.alloc(PROG_INFO.size);
      b.writeUInt32LE(FUNC_INFO_SIZE, PROG_INFO.func_info_rec_size);
      b.writeUInt32LE(1, PROG_INFO.nr_func_info);
      b.writeBigUInt64LE(address + BigInt(PROG_INFO.size), PROG_INFO.func_info);
      return b;
    });
    if (!info) return 'its info cannot be read';
    const btfId = info.readUInt32LE(PROG_INFO.btf_id);
    if (btfId === 0 || info.readUInt32LE(PROG_INFO.nr_func_info) === 0) return 'it was loaded without BTF';
    const func = btfById(btfId)?.nameOf(info.readUInt32LE(PROG_INFO.size + 4)) ?? '';
    return func ? { fd: Fd.own(fd), func } : `its BTF (id ${btfId}) does not name its main function`;
  })();
  if (typeof why === 'string') c.close(fd);
  return why;
}

/** Bytes of a program's translated instructions read at most (a program has at most a million instructions; helpers are what is looked for). */
const MAX_XLATED_BYTES = 1 << 20;

/** bpf_insn: code, dst/src registers, off, imm. BPF_JMP | BPF_CALL, and the call of a helper or kernel function: src_reg 0. */
const INSN_SIZE = 8;
const BPF_CALL_CODE = 0x85;

/**
 * The helper functions program `id` calls, as their offsets from the kernel's
 * __bpf_call_base: its translated instructions (after the verifier's
 * rewrites, so map helpers name the map's own functions, and inlined helpers
 * are gone). Empty where the kernel hides them (imm 0 without the right to
 * read kernel addresses); null when the program is gone.
 */
export function progHelperCalls(id: number): number[] | null {
  const fd = fdById('prog', id);
  if (fd < 0) return null;
  try {
    const len = Math.min(infoByFd(fd, PROG_INFO.size)?.readUInt32LE(PROG_INFO.xlated_prog_len) ?? 0, MAX_XLATED_BYTES);
    if (len === 0) return [];
    const bytes = infoByFd(fd, PROG_INFO.size + len, PROG_INFO.size, (address) => {
      const b = Buffer.alloc(PROG_INFO.size);
      b.writeUInt32LE(len, PROG_INFO.xlated_prog_len);
      b.writeBigUInt64LE(address + BigInt(PROG_INFO.size), PROG_INFO.xlated_prog_insns);
      return b;
    });
    if (!bytes) return [];
    const calls = new Set<number>();
    for (let at = PROG_INFO.size; at + INSN_SIZE <= bytes.length; at += INSN_SIZE) {
      const imm = bytes.readInt32LE(at + 4);
      if (bytes[at] === BPF_CALL_CODE && (bytes[at + 1]! >> 4) === 0 && imm !== 0) calls.add(imm);
    }
    return [...calls];
  } finally {
    c.close(fd);
  }
}

/** A map as BPF_OBJ_GET_INFO_BY_FD describes it, with its BTF when it was created with one. */
export interface MapTypes {
  id: number;
  name: string;
  keySize: number;
  valueSize: number;
  /** The map's BTF and its key and value types in it; null without BTF (or when it cannot be read). */
  btf: { btf: Btf; key: number; value: number } | null;
}

/** Map `id` described; null when it is gone. */
export function mapTypes(id: number): MapTypes | null {
  const fd = fdById('map', id);
  if (fd < 0) return null;
  let b: Buffer | null;
  try {
    b = infoByFd(fd, MAP_INFO.size);
  } finally {
    c.close(fd);
  }
  if (!b) return null;
  const btfId = b.readUInt32LE(MAP_INFO.btf_id);
  const key = b.readUInt32LE(MAP_INFO.btf_key_type_id);
  const value = b.readUInt32LE(MAP_INFO.btf_value_type_id);
  const btf = btfId !== 0 && value !== 0 ? btfById(btfId) : null;
  return {
    id, name: objName(b, MAP_INFO.name), keySize: b.readUInt32LE(MAP_INFO.key_size), valueSize: b.readUInt32LE(MAP_INFO.value_size),
    btf: btf ? { btf, key, value } : null,
  };
}

/** The BTF object `id` (a program's), parsed; null when it cannot be read. */
function btfById(id: number): Btf | null {
  const fd = fdById('btf', id);
  if (fd < 0) return null;
  try {
    const size = infoByFd(fd, BTF_INFO.size)?.readUInt32LE(BTF_INFO.btf_size) ?? 0;
    if (size === 0) return null;
    const bytes = infoByFd(fd, BTF_INFO.size + size, BTF_INFO.size, (address) => {
      const b = Buffer.alloc(BTF_INFO.size);
      b.writeBigUInt64LE(address + BigInt(BTF_INFO.size), BTF_INFO.btf);
      b.writeUInt32LE(size, BTF_INFO.btf_size);
      return b;
    });
    return bytes ? Btf.parse(bytes.subarray(BTF_INFO.size)) : null;
  } catch {
    return null;
  } finally {
    c.close(fd);
  }
}

/**
 * Turns on the kernel's run-time stats of every BPF program (BPF_ENABLE_STATS,
 * as kernel.bpf_stats_enabled does) until the returned close(); they cost a
 * few nanoseconds per run, so only benchmarks ask.
 */
export function enableRunStats(): { close(): void } {
  const fd = enableStats(BPF_STATS_RUN_TIME);
  if (fd < 0) throw new Error(`BPF_ENABLE_STATS: ${fd}`);
  return { close: () => void c.close(fd) };
}
