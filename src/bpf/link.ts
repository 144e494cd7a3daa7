/**
 * Attachments. Every one is a handle that owns a BPF link file descriptor, so
 * the kernel detaches it when the handle is closed or when the process dies,
 * even by SIGKILL.
 */
import fs from 'node:fs';
import { AttachType } from './abi.js';
import { type LinkTarget, linkCreate as bpfLinkCreate } from './attr.js';
import { BpfError, remedyFor } from './errors.js';
import { logMark, logTailSince } from './log.js';
import { libbpf } from './native/libbpf.js';
import { c, errno, sysPerfEventOpen } from './native/libc.js';
import { type Ptr, isNull, nativeStrings } from './native/memory.js';
import type { Fd } from './fd.js';
import type { BpfProgram } from './object.js';

export interface Link {
  /** What this link attaches, for messages: e.g. "tcx ingress on veth0 (netns pp-b)". */
  readonly description: string;
  close(): void;
  /** The same off the main thread, where closing blocks in the kernel (kprobes). */
  closeAsync?(): Promise<void>;
}

/** What attaching needs of a loaded program: its fd (from an object or built from instructions). */
export interface LoadedProgram {
  readonly fd: Fd;
}

/** A link created by libbpf (tp_btf, fentry, ...). */
class LibbpfLink implements Link {
  private ptr: Ptr | null;
  constructor(ptr: Ptr, readonly description: string) {
    this.ptr = ptr;
  }
  close(): void {
    if (this.ptr === null) return;
    libbpf.link__destroy(this.ptr);
    this.ptr = null;
  }
}

/** A link that is a file descriptor (BPF_LINK_CREATE, BPF_RAW_TRACEPOINT_OPEN): closing it detaches. */
class FdLink implements Link {
  private fd: number;
  constructor(fd: number, readonly description: string) {
    this.fd = fd;
  }
  close(): void {
    if (this.fd < 0) return;
    c.close(this.fd);
    this.fd = -1;
  }
  async closeAsync(): Promise<void> {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    await c.closeAsync(fd);
  }
}

/** Attaches a BTF-typed program of an object (tp_btf, fentry) to the target it was loaded for. */
export function attachTracing(prog: BpfProgram, description: string): Link {
  const mark = logMark();
  const ptr = libbpf.program__attach(prog.ptr) as Ptr | null;
  if (isNull(ptr)) {
    const e = -errno();
    throw new BpfError(`attaching ${description}`, e, logTailSince(mark), remedyFor(e));
  }
  return new LibbpfLink(ptr!, description);
}

/**
 * BPF_RAW_TRACEPOINT_OPEN: a raw_tp program to tracepoint `name`, or a
 * BTF-typed program (tp_btf, fentry) to the target it was loaded for (name null).
 */
export function attachRawTracepoint(prog: LoadedProgram, name: string | null, description: string): Link {
  const fd = libbpf.raw_tracepoint_open(name, prog.fd.raw);
  if (fd < 0) throw new BpfError(`attaching ${description}`, fd, [], remedyFor(fd));
  return new FdLink(fd, description);
}

function linkCreate(prog: LoadedProgram, target: number, attachType: number, how: LinkTarget, description: string): Link {
  const fd = bpfLinkCreate(prog.fd.raw, target, attachType, how);
  if (fd < 0) throw new BpfError(`attaching ${description}`, fd, [], remedyFor(fd));
  return new FdLink(fd, description);
}

export type TcDirection = 'ingress' | 'egress';

/** BPF_F_BEFORE / BPF_F_AFTER without a relative program: the front or the end of a tcx chain. */
const TCX_FLAGS = { first: 1 << 3, last: 1 << 4 } as const;

/**
 * A tcx link on a device of the calling thread's network namespace (Linux 6.6+),
 * at the end of the chain (after the programs already there) or at its front.
 */
export function attachTcx(prog: LoadedProgram, ifindex: number, direction: TcDirection, description: string,
  position: 'first' | 'last' = 'last'): Link {
  const type = direction === 'ingress' ? AttachType.TCX_INGRESS : AttachType.TCX_EGRESS;
  return linkCreate(prog, ifindex, type, { kind: 'tcx', flags: TCX_FLAGS[position] }, description);
}

export const NfProto = { ipv4: 2, ipv6: 10 } as const;
export const NfHook = { pre_routing: 0, local_in: 1, forward: 2, local_out: 3, post_routing: 4 } as const;
export type NfHookName = keyof typeof NfHook;
export type NfFamily = keyof typeof NfProto;

/** A netfilter hook in the calling thread's network namespace (Linux 6.4+). */
export function attachNetfilter(prog: LoadedProgram, family: NfFamily, hook: NfHookName, priority: number,
  description: string): Link {
  return linkCreate(prog, 0, AttachType.NETFILTER, { kind: 'netfilter', pf: NfProto[family], hooknum: NfHook[hook], priority }, description);
}

const KPROBE_PMU_TYPE = '/sys/bus/event_source/devices/kprobe/type';
const PERF_ATTR_SIZE = 128;
const PERF_FLAG_FD_CLOEXEC = 8;
const PERF_EVENT_IOC_ENABLE = 0x2400;
const PERF_EVENT_IOC_SET_BPF = 0x40042408;

/**
 * A kprobe on `func` (its return with `retprobe`: a kretprobe) through the kprobe PMU (perf_event_open): a BPF_PERF_EVENT
 * link (Linux 5.15+), else the program set on the perf event itself, whose fd
 * then is the link.
 */
export function attachKprobe(prog: LoadedProgram, func: string, description: string, retprobe = false): Link {
  let pmuType: number;
  try {
    pmuType = Number(fs.readFileSync(KPROBE_PMU_TYPE, 'utf8').trim());
  } catch {
    throw new BpfError(`attaching ${description}`, -2, [], 'this kernel has no kprobe PMU (CONFIG_KPROBES)');
  }
  const name = nativeStrings([func]);
  try {
    const attr = Buffer.alloc(PERF_ATTR_SIZE);
    attr.writeUInt32LE(pmuType, 0);
    attr.writeUInt32LE(PERF_ATTR_SIZE, 4);
    // The PMU's `retprobe` format bit (config:0): a kretprobe.
    if (retprobe) attr.writeBigUInt64LE(1n, 8);
    attr.writeBigUInt64LE(name.addresses[0]!, 56); // kprobe_func (config1)
    let perfFd = sysPerfEventOpen(attr, -1, 0, PERF_FLAG_FD_CLOEXEC);
    if (perfFd < 0) throw new BpfError(`attaching ${description}`, perfFd, [], remedyFor(perfFd));
    try {
      // The link keeps its own reference to the perf event.
      return linkCreate(prog, perfFd, AttachType.PERF_EVENT, { kind: 'plain' }, description);
    } catch (e) {
      if (!(e instanceof BpfError) || e.errno !== -22) throw e;
      // Before BPF_PERF_EVENT links: the perf event holds the program.
      if (c.ioctl(perfFd, PERF_EVENT_IOC_SET_BPF, prog.fd.raw) < 0 || c.ioctl(perfFd, PERF_EVENT_IOC_ENABLE, 0) < 0) {
        const err = -errno();
        throw new BpfError(`attaching ${description}`, err, [], remedyFor(err));
      }
      const link = new FdLink(perfFd, description);
      perfFd = -1;
      return link;
    } finally {
      if (perfFd >= 0) c.close(perfFd);
    }
  } finally {
    name.free();
  }
}

/** kprobe-multi: one link for every function in `funcs` (Linux 5.18+, CONFIG_FPROBE), at their returns with `retprobe`. */
export function attachKprobeMulti(prog: LoadedProgram, funcs: string[], description: string, retprobe = false): Link {
  const names = nativeStrings(funcs);
  try {
    return linkCreate(prog, 0, AttachType.TRACE_KPROBE_MULTI, { kind: 'kprobe-multi', count: funcs.length, syms: names.array, retprobe }, description);
  } finally {
    names.free();
  }
}

/** libuv's default thread pool: more closes at once would only queue. */
export const CLOSE_WIDTH = 4;

/**
 * Closes links `width` at a time on libuv's threads, where each close waits
 * in the kernel (a kprobe's perf event waits for an RCU grace period: waits
 * that overlap end together); never throws.
 */
export async function closeAllParallel(links: Link[], width = CLOSE_WIDTH): Promise<void> {
  const todo = links.splice(0).reverse();
  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const link = todo[next++]!;
      try {
        if (link.closeAsync) await link.closeAsync();
        else link.close();
      } catch {
        // Released with the process.
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, todo.length) }, worker));
}

/** Closes links in reverse order of creation; never throws. */
export function closeAll(links: Link[]): void {
  for (let i = links.length - 1; i >= 0; i--) {
    try {
      links[i]!.close();
    } catch {
      // A link that cannot be closed is released with the process.
    }
  }
  links.length = 0;
}
