/** `pktpath doctor`: what this kernel allows (the capability model, src/kernel/caps.ts), and what pktpath will use. */
import fs from 'node:fs';
import Table from 'cli-table3';
import { vmlinuxBtf } from '../bpf/btf/vmlinux.js';
import { CAPABILITIES, capability, capabilityLabel, has } from '../kernel/caps.js';
import { describeRefusal, kernelRelease } from '../kernel/mechanisms.js';
import { missingPrivileges } from '../kernel/privileges.js';
import { probeLoads } from '../trace/probes.js';
import { discoverSkbFunctions, functionBackends } from '../kernel/functions.js';
import { FENTRY_PREFERRED_MAX, backendOrder } from '../plan/plan.js';
import { datapathInventory } from '../kernel/datapath.js';
import { tracedNamespaces } from '../kernel/view.js';
import { datapathSummary } from './datapath.js';
import { EXIT_FAILURE, EXIT_OK } from './exit.js';

function lockdown(): string {
  try {
    const text = fs.readFileSync('/sys/kernel/security/lockdown', 'utf8');
    return /\[(\w+)\]/.exec(text)?.[1] ?? text.trim();
  } catch {
    return 'unknown';
  }
}

export async function doctor(): Promise<number> {
  const out = process.stdout;
  out.write(`kernel:   ${kernelRelease()}\n`);
  const btf = vmlinuxBtf();
  out.write(`BTF:      ${btf ? '/sys/kernel/btf/vmlinux'
    : 'missing (CONFIG_DEBUG_INFO_BTF): tracepoint probes cannot load; --kernel-btf FILE gives the other probes their types'}\n`);
  out.write(`lockdown: ${lockdown()}\n`);
  const missing = missingPrivileges();
  if (missing) {
    out.write(`privileges: missing ${missing}; run as root to measure what the kernel allows\n`);
    return EXIT_FAILURE;
  }

  const table = new Table({ head: ['the kernel allows', 'status', 'detail'], style: { head: [], border: [] } });
  for (const cap of CAPABILITIES) {
    const r = capability(cap);
    table.push([capabilityLabel(cap), r.ok ? 'yes' : r.error ? 'refused' : 'no', r.ok ? '' : r.detail]);
  }
  out.write(`${table.toString()}\n`);

  // The mechanism working is not enough: pktpath's own probe must pass this kernel's verifier too.
  const loads = probeLoads();
  const probes = new Table({ head: ['pktpath probe', 'status', 'detail'], style: { head: [], border: [] } });
  for (const [kind, r] of Object.entries(loads)) {
    probes.push([kind, r.error ? 'refused' : r.degraded ? 'loads, reduced' : 'loads', r.error ? describeRefusal(r.error) : r.degraded ?? '']);
  }
  out.write(`${probes.toString()}\n`);

  const loaded = (kind: string) => loads[kind]?.error === null;
  const uses: string[] = [];
  if (has('tp_btf') && loaded('tracepoint')) uses.push('skb tracepoints (tp_btf)');
  if (has('tcx') && has('tcx-attach-type') && loaded('tc')) uses.push('tc ingress/egress (tcx links)');
  else if (loaded('tc')) uses.push('tc ingress/egress (cls_bpf filters on clsact: no tcx links here)');
  if (has('netfilter') && loaded('netfilter')) uses.push('netfilter hooks (BPF links, IPv4 and IPv6)');
  else if (!has('netfilter-attach-type') && loaded('nf-hook')) uses.push('netfilter hooks (fexit of nf_hook_slow: no netfilter links here)');
  const backends = functionBackends().filter((b) => b.ok && loaded(b.backend)).map((b) => b.backend);
  if (backends.length > 0) {
    const many = backendOrder('auto', backends, FENTRY_PREFERRED_MAX + 1)[0]!;
    const few = backendOrder('auto', backends, 1)[0]!;
    uses.push(`skb functions (${discoverSkbFunctions().functions.length}; --backend auto: ${many}` +
      (few !== many ? `, ${few} for up to ${FENTRY_PREFERRED_MAX} functions` : '') + ')');
  }
  if (backends.includes('fentry')) uses.push('tc program tracing (--filter-trace-tc: fentry/fexit on them)');
  // Return values need bpf_get_func_ip (5.15) whichever probe reads them: --output-retval refuses them without it (src/cli/run.ts).
  const returns = [...(has('fentry') && loaded('fexit') ? ['fexit'] : []),
    ...(backends.some((b) => b !== 'fentry') ? ['kretprobes with --backend kprobe/kprobe-multi'] : [])];
  if (returns.length > 0 && has('helper-get-func-ip')) uses.push(`return values of skb functions (--output-retval: ${returns.join('; ')})`);
  out.write(`pktpath will use: ${uses.join(', ') || 'nothing: no mechanism works'}\n`);
  if (backends.length === 0) {
    out.write('skb functions: no backend works here (kprobe, kprobe-multi and fentry are refused above); --backend auto ' +
      'observes the path at tracepoints, tc and netfilter\n');
  }
  // Other programs and rules on the packet path (`pktpath datapath` lists them).
  try {
    for (const line of datapathSummary(datapathInventory(tracedNamespaces()))) out.write(`${line}\n`);
  } catch (e) {
    out.write(`datapath: not read (${(e as Error).message})\n`);
  }
  return uses.length > 0 ? EXIT_OK : EXIT_FAILURE;
}
