/**
 * Attachments. Every one is a handle that owns a BPF link file descriptor, so
 * the kernel detaches it when the handle is closed or when the process dies,
 * even by SIGKILL.
 */
import { BpfError, remedyFor } from './errors.js';
import { logMark, logTailSince } from './log.js';
import { type Ptr, c, errno, isNull, libbpf, sysBpf } from './native.js';
import { AttachType, type BpfProgram } from './object.js';

const BPF_LINK_CREATE = 28;

export interface Link {
  /** What this link attaches, for messages: e.g. "tcx ingress on veth0 (netns pp-b)". */
  readonly description: string;
  close(): void;
}

/** A link created by libbpf (tp_btf, raw_tp, kprobe...). */
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

/** A link created with BPF_LINK_CREATE: closing the fd detaches it. */
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
}

/** Attaches a BTF-typed program (tp_btf, fentry) to the target it was loaded for. */
export function attachTracing(prog: BpfProgram, description: string): Link {
  const mark = logMark();
  const ptr = libbpf.program__attach(prog.ptr) as Ptr | null;
  if (isNull(ptr)) {
    const e = -errno();
    throw new BpfError(`attaching ${description}`, e, logTailSince(mark), remedyFor(e));
  }
  return new LibbpfLink(ptr!, description);
}

function linkCreate(prog: BpfProgram, target: number, attachType: number, extra: (attr: Buffer) => void,
  description: string): Link {
  const attr = Buffer.alloc(64);
  attr.writeUInt32LE(prog.fd, 0);
  attr.writeUInt32LE(target, 4);
  attr.writeUInt32LE(attachType, 8);
  attr.writeUInt32LE(0, 12);
  extra(attr);
  const fd = sysBpf(BPF_LINK_CREATE, attr);
  if (fd < 0) throw new BpfError(`attaching ${description}`, fd, [], remedyFor(fd));
  return new FdLink(fd, description);
}

export type TcDirection = 'ingress' | 'egress';

/**
 * A tcx link on a device of the calling thread's network namespace (Linux 6.6+).
 * It runs after the programs already there and does not change their verdicts.
 */
export function attachTcx(prog: BpfProgram, ifindex: number, direction: TcDirection, description: string): Link {
  const type = direction === 'ingress' ? AttachType.TCX_INGRESS : AttachType.TCX_EGRESS;
  return linkCreate(prog, ifindex, type, () => {}, description);
}

export const NfProto = { ipv4: 2, ipv6: 10 } as const;
export const NfHook = { pre_routing: 0, local_in: 1, forward: 2, local_out: 3, post_routing: 4 } as const;
export type NfHookName = keyof typeof NfHook;
export type NfFamily = keyof typeof NfProto;

/** A netfilter hook in the calling thread's network namespace (Linux 6.4+). */
export function attachNetfilter(prog: BpfProgram, family: NfFamily, hook: NfHookName, priority: number,
  description: string): Link {
  return linkCreate(prog, 0, AttachType.NETFILTER, (attr) => {
    attr.writeUInt32LE(NfProto[family], 16);
    attr.writeUInt32LE(NfHook[hook], 20);
    attr.writeInt32LE(priority, 24);
    attr.writeUInt32LE(0, 28);
  }, description);
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
