/**
 * The KernelView: what the planner needs to know of the running kernel and
 * system — tracepoint prototypes, features, namespaces and their devices —
 * gathered once, as plain data, so planning stays a pure function.
 */
import { vmlinuxBtf } from '../bpf/btf/vmlinux.js';
import { tracepointProto } from './btf.js';
import { type KernelFeatures, kernelFeatures } from './caps.js';
import { type BackendAvailability, type FunctionDiscovery, discoverSkbFunctions, functionBackends } from './functions.js';
import { ProgramBook, devicesWithTcPrograms } from './datapath.js';
import { NETLINK_ROUTE, NetlinkSocket } from './netlink.js';
import { type Iface, type Netns, currentNetns, listIfaces, namedNetns, withNetns } from './netns.js';

/** One parameter of a tracepoint, as BTF describes it (without the leading context pointer). */
export interface TracepointParam {
  index: number;
  typeName: string;
}

export interface KernelView {
  /** Prototype of each tracepoint asked about, null when this kernel lacks it. */
  tracepoints: Map<string, TracepointParam[] | null>;
  features: KernelFeatures;
  /** Function probing, when asked about: each backend tried, and the skb functions (null when none can be probed and none were asked for by name). */
  functions: { backends: BackendAvailability[]; discovery: FunctionDiscovery | null } | null;
  /** Namespaces where tc and netfilter observers may go, with their devices. */
  namespaces: Array<{ netns: Netns; ifaces: Iface[]; tcBusy?: ReadonlySet<number> }>;
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

/** The view with each namespace's devices where other tc programs run (`tcBusy`), for --tc-devices programs. */
export function withTcPrograms(view: KernelView): KernelView {
  const book = new ProgramBook();
  const namespaces = view.namespaces.map((n) => {
    try {
      return { ...n, tcBusy: withNetns(n.netns.path, () => {
        const rtnl = NetlinkSocket.open(NETLINK_ROUTE);
        try {
          return devicesWithTcPrograms(book, rtnl, n.ifaces.map((i) => i.ifindex));
        } finally {
          rtnl.close();
        }
      }) };
    } catch {
      return { ...n, tcBusy: new Set<number>() }; // Gone while listing: nothing to attach there.
    }
  });
  return { ...view, namespaces };
}

/**
 * The view for a plan over `tracepoints` (the names pktpath knows);
 * `functions`: try the function backends (`backends`), and list the skb
 * functions where one works (`if-probeable`, or `always`, for `pktpath list
 * --funcs`). The backends are tried whatever is asked where the kernel has no
 * netfilter links: netfilter is then observed with fexit.
 */
export function gatherKernelView(tracepoints: readonly string[],
  functions: 'no' | 'backends' | 'if-probeable' | 'always' = 'no'): KernelView {
  const btf = vmlinuxBtf();
  const protos = new Map<string, TracepointParam[] | null>();
  for (const name of tracepoints) {
    const proto = btf ? tracepointProto(btf, name) : null;
    protos.set(name, proto && proto.map((p) => ({ index: p.index, typeName: p.typeName })));
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
  const features = kernelFeatures();
  let fn: KernelView['functions'] = null;
  if (functions !== 'no' || !features.netfilter) {
    const backends = functionBackends();
    const list = functions === 'always' || (functions === 'if-probeable' && backends.some((b) => b.ok));
    fn = { backends, discovery: list ? discoverSkbFunctions() : null };
  }
  return { tracepoints: protos, features, functions: fn, namespaces };
}
