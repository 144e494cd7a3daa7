/**
 * Network namespaces: naming them, entering them on the calling thread (where
 * netfilter links, tcx links and interface lookups apply), and listing their
 * devices.
 */
import fs from 'node:fs';
import { c, errno, interfaces } from '../bpf/native/libc.js';

const CLONE_NEWNET = 0x40000000;
const O_RDONLY = 0;
const O_CLOEXEC = 0o2000000;
export const NETNS_RUN_DIR = '/run/netns';

export interface Netns {
  /** Inode of the namespace: what probes report. */
  inode: number;
  /** Name under /run/netns, '' for the namespace pktpath runs in (when unnamed). */
  name: string;
  /** Path to open it. */
  path: string;
}

export function inodeOf(path: string): number {
  return fs.statSync(path).ino;
}

export function currentNetns(): Netns {
  const path = `/proc/self/task/${c.gettid()}/ns/net`;
  return { inode: inodeOf(path), name: '', path };
}

let nsfsDevice: number | null = null;

/**
 * Whether `path` is a namespace file (of nsfs), not the plain file `ip netns
 * add` creates first and mounts the namespace on a moment later.
 */
export function isNamespaceFile(st: fs.Stats): boolean {
  nsfsDevice ??= fs.statSync('/proc/self/ns/net').dev;
  return st.dev === nsfsDevice;
}

/** Namespaces named under /run/netns (where `ip netns` and CNIs name them). */
export function namedNetns(dir = NETNS_RUN_DIR): Netns[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const out: Netns[] = [];
  for (const name of names.sort()) {
    const path = `${dir}/${name}`;
    try {
      const st = fs.statSync(path);
      if (isNamespaceFile(st)) out.push({ inode: st.ino, name, path });
    } catch {
      // A stale name whose namespace is gone.
    }
  }
  return out;
}

/** Runs fn with the calling thread inside the namespace at `path`, then returns to where it was. */
export function withNetns<T>(path: string, fn: () => T): T {
  const here = `/proc/self/task/${c.gettid()}/ns/net`;
  if (inodeOf(path) === inodeOf(here)) return fn();
  const origin = c.open(here, O_RDONLY | O_CLOEXEC) as number;
  if (origin < 0) throw new Error(`cannot open ${here}: errno ${errno()}`);
  const target = c.open(path, O_RDONLY | O_CLOEXEC) as number;
  if (target < 0) {
    c.close(origin);
    throw new Error(`cannot open network namespace ${path}: errno ${errno()}`);
  }
  try {
    if ((c.setns(target, CLONE_NEWNET) as number) < 0) {
      throw new Error(`cannot enter network namespace ${path}: errno ${errno()}`);
    }
    try {
      return fn();
    } finally {
      if ((c.setns(origin, CLONE_NEWNET) as number) < 0) {
        // Staying in the wrong namespace would misplace every later attachment.
        throw new Error(`cannot return from network namespace ${path}: errno ${errno()}`);
      }
    }
  } finally {
    c.close(target);
    c.close(origin);
  }
}

export interface Iface {
  ifindex: number;
  name: string;
}

/** Devices of the calling thread's namespace. */
export function listIfaces(): Iface[] {
  return interfaces();
}

export class NetnsNotFound extends Error {
  override name = 'NetnsNotFound';
}

/**
 * --filter-netns: `/proc/PID/ns/net` (or any nsfs path), `/run/netns/NAME`, a
 * bare NAME, or `inode:N` (looked up among named namespaces and processes).
 */
export function resolveNetns(spec: string, dir = NETNS_RUN_DIR): Netns {
  const named = namedNetns(dir);
  const byInode = (inode: number) => named.find((n) => n.inode === inode);
  const inodeMatch = /^inode:(\d+)$/.exec(spec);
  if (inodeMatch) {
    const inode = Number(inodeMatch[1]);
    const hit = byInode(inode);
    if (hit) return hit;
    for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      const path = `/proc/${pid}/ns/net`;
      try {
        if (inodeOf(path) === inode) return { inode, name: '', path };
      } catch {
        // The process went away.
      }
    }
    throw new NetnsNotFound(`--filter-netns: no network namespace with inode ${inode}`);
  }
  const path = spec.includes('/') ? spec : `${dir}/${spec}`;
  let inode: number;
  try {
    inode = inodeOf(path);
  } catch {
    throw new NetnsNotFound(`--filter-netns: no network namespace '${spec}'${spec.includes('/') ? '' : ` (not in ${dir})`}`);
  }
  const kind = namespaceKind(path);
  if (kind !== 'net') {
    throw new NetnsNotFound(`--filter-netns: '${spec}' is not a network namespace` +
      (kind === null ? '' : ` (it is a ${kind} namespace)`) + '; give /proc/PID/ns/net, /run/netns/NAME, NAME or inode:N');
  }
  const hit = byInode(inode);
  return hit ?? { inode, name: '', path };
}

const NS_GET_NSTYPE = 0xb703;
const NS_TYPES: Readonly<Record<number, string>> = {
  [CLONE_NEWNET]: 'net', 0x00020000: 'mount', 0x20000000: 'pid', 0x10000000: 'user', 0x04000000: 'uts',
  0x08000000: 'ipc', 0x02000000: 'cgroup', 0x00000080: 'time',
};

/** The kind of namespace a file is (`net`, `pid`, …), or null when it is no namespace file at all. */
export function namespaceKind(path: string): string | null {
  const fd = c.open(path, O_RDONLY | O_CLOEXEC) as number;
  if (fd < 0) return null;
  try {
    const type = c.ioctl(fd, NS_GET_NSTYPE, 0);
    return type < 0 ? null : NS_TYPES[type] ?? `type ${type}`;
  } finally {
    c.close(fd);
  }
}
