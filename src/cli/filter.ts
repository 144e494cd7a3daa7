/** Turns the filter the user asked for into the one the probes run: compiled, resolved against this system. */
import type { ActiveFilter } from '../filter/active.js';
import { compileFilter } from '../filter/expression.js';
import { FilterError } from '../filter/pcap.js';
import { SkbExprError, compileSkbExpr } from '../filter/skb-expr.js';
import { compileInnerFilter } from '../filter/inner-packet.js';
import { vmlinuxBtf } from '../bpf/btf/vmlinux.js';
import type { Btf } from '../bpf/btf/btf.js';
import { XDP_ROOT } from '../filter/skb-expr-resolve.js';
import { InjectError } from '../filter/inject.js';
import { NetnsNotFound, currentNetns, listIfaces, resolveNetns, withNetns } from '../kernel/netns.js';
import type { FilterConfig } from './trace-config.js';
import { UsageError } from './values.js';

/** Every problem here is the user's input: a UsageError (exit 2), before anything is attached. */
/** What `compile` makes of an expression with the kernel's BTF; its errors a usage error naming `flag`. */
export function withBtf<T>(flag: string, compile: (btf: Btf) => T): T {
  const btf = vmlinuxBtf();
  if (btf === null) throw new UsageError(`${flag}: this kernel has no BTF (/sys/kernel/btf/vmlinux) to find the fields in`);
  try {
    return compile(btf);
  } catch (e) {
    if (e instanceof SkbExprError) throw new UsageError(`${flag}: ${e.message}`);
    throw e;
  }
}

export function activateFilter(f: FilterConfig): { filter: ActiveFilter; notes: string[] } {
  let compiled = null;
  const notes: string[] = [];
  if (f.expression) {
    try {
      compiled = compileFilter(f.expression);
    } catch (e) {
      if (e instanceof FilterError || e instanceof InjectError) {
        throw new UsageError(e.message);
      }
      throw e;
    }
    notes.push(...compiled.notes);
  }
  let netns = null;
  const namespaces = f.netns.map((spec) => {
    try {
      return resolveNetns(spec);
    } catch (e) {
      if (e instanceof NetnsNotFound) throw new UsageError(e.message);
      throw e;
    }
  });
  const only = namespaces.length > 1 || f.pods.length > 0 ? { namespaces, pods: f.pods } : null;
  if (only === null && namespaces.length === 1) netns = namespaces[0]!;
  let ifindex = 0;
  if (f.ifname !== null) {
    if (only !== null) throw new UsageError('--filter-ifname names a device in one namespace: give one --filter-netns with it, no --filter-pod');
    const where = netns ?? currentNetns();
    const iface = withNetns(where.path, listIfaces).find((i) => i.name === f.ifname);
    if (!iface) {
      throw new UsageError(`--filter-ifname: no device '${f.ifname}' in network namespace ${where.name || where.inode}`);
    }
    ifindex = iface.ifindex;
    netns = where;
  }
  const skbExpr = f.skbExpr === null ? null : withBtf('--filter-skb-expr', (btf) => compileSkbExpr(f.skbExpr!, btf));
  const xdpExpr = f.xdpExpr === null ? null : withBtf('--filter-xdp-expr', (btf) => compileSkbExpr(f.xdpExpr!, btf, XDP_ROOT));
  let inner = null;
  try {
    inner = compileInnerFilter(f.inner.l2, f.inner.l3);
  } catch (e) {
    if (e instanceof FilterError) throw new UsageError(e.message);
    throw e;
  }
  return { filter: { compiled, netns, only, ifindex, ifname: f.ifname, mark: f.mark, skbExpr, xdpExpr, inner, trackSkb: f.trackSkb, trackStack: f.trackStack }, notes };
}
