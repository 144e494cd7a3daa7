/** Gathers the KernelView the planner needs: tracepoint prototypes, features, namespaces and devices. */
import { Btf } from '../bpf/btf.js';
import type { KernelView, TracepointParam } from '../plan/plan.js';
import { SKB_TRACEPOINTS } from '../plan/catalog.js';
import { kernelFeatures } from './features.js';
import { type Iface, type Netns, currentNetns, listIfaces, namedNetns, withNetns } from './netns.js';

let vmlinux: Btf | null | undefined;

/** The running kernel's BTF, parsed once; null when the kernel has none. */
export function kernelBtf(): Btf | null {
  if (vmlinux === undefined) {
    try {
      vmlinux = Btf.loadVmlinux();
    } catch {
      vmlinux = null;
    }
  }
  return vmlinux;
}

/** The namespace pktpath runs in, then every named one; each once. */
export function tracedNamespaces(): Netns[] {
  const here = currentNetns();
  const named = namedNetns();
  const own = named.find((n) => n.inode === here.inode);
  return [own ?? here, ...named.filter((n) => n.inode !== here.inode)];
}

export function ifacesOf(netns: Netns): Iface[] {
  return withNetns(netns.path, listIfaces);
}

export function gatherKernelView(): KernelView {
  const btf = kernelBtf();
  const tracepoints = new Map<string, TracepointParam[] | null>();
  for (const name of SKB_TRACEPOINTS) {
    const proto = btf?.tracepointProto(name) ?? null;
    tracepoints.set(name, proto && proto.map((p) => ({ index: p.index, typeName: p.typeName })));
  }
  const namespaces = tracedNamespaces().map((netns) => {
    let ifaces: Iface[] = [];
    try {
      ifaces = ifacesOf(netns);
    } catch {
      // A namespace that vanished while listing: nothing to attach there.
    }
    return { netns, ifaces };
  });
  return { tracepoints, features: kernelFeatures(btf), namespaces };
}

/** skb_drop_reason value → name without its SKB_DROP_REASON_ prefix. */
export function dropReasonNames(): Map<number, string> {
  const out = new Map<number, string>();
  const values = kernelBtf()?.enumValues('skb_drop_reason');
  if (values) for (const [v, name] of values) out.set(v, name.replace(/^SKB_DROP_REASON_/, ''));
  return out;
}
