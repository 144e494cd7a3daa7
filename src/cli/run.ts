/**
 * The one assembly of a trace: config → filter → kernel view → plan →
 * session → sinks. `pktpath` itself and the demo run through runTrace();
 * `pktpath list` stops after prepare(), at the plan.
 */
import { clockJson } from '../trace/clock.js';
import { useKernelBtf, vmlinuxBtf } from '../bpf/btf/vmlinux.js';
import { InputFileRefused } from '../bpf/input-file.js';
import type { CompiledSkbFetch } from '../filter/skb-expr.js';
import { type Netns, currentNetns, namedNetns } from '../kernel/netns.js';
import { PodCatalog, podLabel } from '../kernel/pods.js';
import { kernelRelease } from '../kernel/mechanisms.js';
import { moduleBtf, moduleHasBtf, moduleLoaded } from '../kernel/functions.js';
import { capability } from '../kernel/caps.js';
import { gatherKernelView, ifacesOf, type KernelView, tracedNamespaces, withTcPrograms } from '../kernel/view.js';
import { createSinks } from '../output/create.js';
import { LiveExplainer } from '../regress/explain/live.js';
import { escapeLines, escapeMessage } from '../output/escape.js';
import { enableDebugLog } from '../bpf/log.js';
import { JsonSink } from '../output/line-sinks.js';
import { formatTime } from '../output/format.js';
import { JSON_SCHEMA_VERSION, type JsonHeaderRecord } from '../output/json.js';
import { prepareSections, sectionMask } from '../output/sections/registry.js';
import type { SectionContext } from '../output/sections/section.js';
import type { TraceSummary } from '../output/summary.js';
import { DECISION_TRACEPOINTS, SKB_TRACEPOINTS } from '../plan/catalog.js';
import { type ProbePlan, narrowView, planPointNames, planProbes, tcDevicePlacement } from '../plan/plan.js';
import { type SessionOptions, TraceSession } from '../trace/session.js';
import type { ActiveFilter } from '../filter/active.js';
import { expressionToNft } from '../filter/nft-rules.js';
import { XT_BPF_MAX_INSNS } from '../kernel/nftables.js';
import { type TraceConfig, usage } from './trace-config.js';
import { activateFilter } from './filter.js';
import { checkXdpExpressions } from './xdp-expr.js';
import { UsageError } from './values.js';
import { VERSION } from './version.js';
import { readKernelSymbolsAhead } from '../kernel/kallsyms.js';

export interface Prepared {
  filter: ActiveFilter;
  /** What the optional sections asked for need (fields compiled against the kernel's BTF). */
  sections: SectionContext;
  kernel: KernelView;
  plan: ProbePlan;
  /** The namespaces a live trace follows. */
  scope: () => Netns[];
  /** The pods of this node, when a container runtime answers. */
  pods: PodCatalog | null;
}

/**
 * The container runtime's pods, asked before the plan: --filter-pod needs
 * them, and names are better with them. A node without a runtime socket hears
 * nothing of it unless --filter-pod was given.
 */
export function openPods(cfg: TraceConfig, say: (line: string) => void): Promise<PodCatalog> {
  return PodCatalog.open({ socket: cfg.filter.criSocket, needed: cfg.filter.pods.length > 0, say: (line) => say(escapeMessage(line)) });
}

/**
 * The filter, kernel view and plan of a run; usage errors surface here,
 * before anything is attached. `only` narrows the namespaces considered (the demo's own).
 */
/** prepare() for a trace that runs next: the kernel's symbols are read on a thread of their own meanwhile. */
export function prepareTrace(cfg: TraceConfig, only?: (netnsName: string) => boolean, pods: PodCatalog | null = null): Prepared {
  readKernelSymbolsAhead();
  return prepare(cfg, only, pods);
}

export function prepare(cfg: TraceConfig, only?: (netnsName: string) => boolean, pods: PodCatalog | null = null): Prepared {
  // Before the kernel is tried: its trials load programs too.
  if (cfg.debug) enableDebugLog((text) => process.stderr.write(escapeLines(text)));
  if (cfg.kernelBtf !== null) {
    try {
      useKernelBtf(cfg.kernelBtf);
    } catch (e) {
      throw new UsageError(`--kernel-btf: ${cfg.kernelBtf}: ${e instanceof InputFileRefused ? e.what : `not a BTF file (${(e as Error).message})`}`);
    }
  }
  const { filter, notes } = activateFilter(cfg.filter);
  let view = gatherKernelView([...SKB_TRACEPOINTS, ...DECISION_TRACEPOINTS.map((d) => d.tracepoint)], cfg.attach.families.has('functions') ? 'if-probeable' : cfg.attach.tracePrograms.size > 0 ? 'backends' : 'no');
  const asked = cfg.attach.backend;
  const refused = asked !== 'auto' ? view.functions?.backends.find((b) => b.backend === asked && !b.ok) : undefined;
  if (refused) {
    throw new Error(`--backend ${asked}: this kernel refuses it (${refused.detail}); \`pktpath doctor\` shows what works, --backend auto picks it`);
  }
  const fentry = view.functions?.backends.find((b) => b.backend === 'fentry');
  checkXdpExpressions(cfg, fentry);
  if (cfg.attach.trackBpfHelpers && !fentry?.ok) {
    throw new Error(`--filter-track-bpf-helpers${cfg.output.sections.includes('bpfmap') ? ', --output-bpfmap' : ''}: helper calls are seen through fentry/fexit ` +
      `on the traced programs and the helpers' kernel functions, which this kernel refuses (${fentry?.detail ?? 'not tried'}); \`pktpath doctor\` shows what works`);
  }
  if (cfg.attach.tracePrograms.size > 0 && !fentry?.ok) {
    throw new Error(`--filter-trace-${[...cfg.attach.tracePrograms].join('/--filter-trace-')}: tracing BPF programs needs fentry, which this kernel refuses (${fentry?.detail ?? 'not tried'}); ` +
      '`pktpath doctor` shows what works');
  }
  checkNonSkbFuncs(cfg, fentry);
  const kmods = cfg.attach.kmods;
  const absent = cfg.attach.families.has('functions') && Array.isArray(kmods) ? kmods.find((m) => !moduleHasBtf(m)) : undefined;
  if (absent !== undefined) {
    // Loaded yet without BTF: the kernel (before 5.11, or without CONFIG_DEBUG_INFO_BTF_MODULES) gives modules none.
    throw new UsageError(moduleLoaded(absent)
      ? `--kmods: module '${absent}' is loaded but has no BTF (no /sys/kernel/btf/${absent}: module BTF needs Linux 5.11+ built with CONFIG_DEBUG_INFO_BTF_MODULES): leave it out`
      : `--kmods: module '${absent}' is not loaded with BTF (no /sys/kernel/btf/${absent}): load it (modprobe ${absent}) or leave it out`);
  }
  if (cfg.output.sections.includes('retval')) {
    if (!cfg.attach.families.has('functions')) throw new UsageError('--output-retval: return values are those of kernel functions: --attach needs functions');
    // fexit where fentry may be used, else kretprobes of the kprobe backends (src/trace/functions.ts, returnProbe).
    const backends = (view.functions?.backends ?? []).filter((b) => asked === 'auto' || b.backend === asked);
    if (!backends.some((b) => b.ok)) {
      const why = backends.map((b) => `${b.backend}: ${b.detail}`).join('; ') || 'no function backend';
      throw new Error(`--output-retval: return values need fexit or kretprobes, which this kernel refuses (${why}); ` +
        '`pktpath doctor` shows what works');
    }
    const funcIp = capability('helper-get-func-ip');
    if (!funcIp.ok) throw new Error(`--output-retval: return values need the helper bpf_get_func_ip, which this kernel lacks (${funcIp.detail})`);
  }
  if (only) view = { ...view, namespaces: view.namespaces.filter((n) => only(n.netns.name)) };
  const scope = traceScope(filter, only, pods);
  let kernel = narrowView(view, { namespaces: filter.only ? scope() : filter.netns ? [filter.netns] : null, ifindex: filter.ifindex }, ifacesOf);
  const tcDevices = tcDevicePlacement(cfg.attach.tcDevices ?? 'auto', kernel.namespaces.reduce((n, s) => n + s.ifaces.length, 0),
    filter.only !== null || filter.netns !== null || filter.ifindex !== 0 || cfg.attach.tcAsked === true);
  if (tcDevices === 'programs') kernel = withTcPrograms(kernel);
  const plan = planProbes({ ...cfg.attach, tcDevices }, kernel);
  if (cfg.attach.filterFunc !== null && planPointNames(plan).length === 0 && plan.template.tcDirections.length === 0 &&
      plan.template.netfilter.length === 0) {
    throw new UsageError(`--filter-func: '${cfg.attach.filterFunc.source}' finds no observation point on this kernel; ` +
      '`pktpath list` without it names them all');
  }
  if (cfg.attach.nonSkbFuncs?.length && plan.functions.length === 0) {
    throw new UsageError('--filter-non-skb-funcs: no skb function is probed (see --filter-func and --attach): their calls open the window the functions are reported in');
  }
  plan.notes.unshift(...notes);
  if (cfg.output.stack && (plan.tc.length > 0 || plan.netfilter.length > 0)) {
    plan.notes.push(`--output-stack: ${[plan.tc.length > 0 ? 'tc' : '', plan.netfilter.length > 0 ? 'netfilter (BPF link)' : ''].filter(Boolean).join(' and ')} ` +
      'points have no stack: their program types may not read one (tracepoints and function probes do)');
  }
  if (cfg.output.nft && cfg.filter.nftMatch === null && (filter.compiled === null || expressionToNft(filter.compiled) === null)) {
    plan.notes.push(`--output-nft: nftables' bpf match cannot be given this expression (${XT_BPF_MAX_INSNS} instructions at most, ` +
      'from the IP header): nftables traces every packet of the traced namespaces, and pktpath shows the rules of the packets it traces');
  }
  if (filter.only && pods?.live) {
    const absent = filter.only.pods.filter((s) => !pods.pods.some((p) => p.namespace === s.namespace && p.name === s.name));
    if (absent.length > 0) plan.notes.push(`--filter-pod: no pod ${absent.map(podLabel).join(', ')} on this node yet: traced once the runtime runs it`);
  }
  return { filter, kernel, plan, scope, pods, sections: usage(() => prepareSections(cfg.output.sectionValues)) };
}

/**
 * --filter-non-skb-funcs: a window opened at a traced skb function's fentry
 * and closed at its fexit (probes/include/window.h), so fentry it is; and
 * functions this kernel has.
 */
function checkNonSkbFuncs(cfg: TraceConfig, fentry: { ok: boolean; detail: string } | undefined): void {
  const names = cfg.attach.nonSkbFuncs ?? [];
  if (names.length === 0) return;
  const flag = '--filter-non-skb-funcs';
  if (!cfg.attach.families.has('functions')) throw new UsageError(`${flag}: reported in the window of a traced skb function: --attach needs functions`);
  const asked = cfg.attach.backend;
  if (asked !== 'auto' && asked !== 'fentry') {
    throw new UsageError(`${flag}: the window closes at each skb function's fexit, which --backend ${asked} has not: give --backend fentry or leave it out`);
  }
  if (!fentry?.ok) {
    throw new Error(`${flag}: needs fentry and fexit (a traced skb function opens the window at its entry and closes it at its exit), ` +
      `which this kernel refuses (${fentry?.detail ?? 'not tried'}); \`pktpath doctor\` shows what works`);
  }
  const btf = vmlinuxBtf();
  const kmods = cfg.attach.kmods;
  const btfs = [btf, ...(Array.isArray(kmods) ? kmods.map((m) => moduleBtf(m)) : [])].filter((b) => b !== null);
  const absent = names.find((f) => !btfs.some((b) => b.findOne(f, 'FUNC') !== null));
  if (absent !== undefined) throw new UsageError(`${flag}: no function '${absent}' in this kernel's BTF (nor in --kmods' modules): \`pktpath list --funcs\` names skb functions; see /proc/kallsyms`);
}

/**
 * The namespaces a live trace follows: --filter-netns's and --filter-pod's
 * (the pods' as the runtime last answered), else pktpath's own and every
 * named one (narrowed by `only`).
 */
export function traceScope(filter: ActiveFilter, only?: (netnsName: string) => boolean, pods: PodCatalog | null = null): () => Netns[] {
  const selected = filter.only;
  if (selected !== null) {
    return () => {
      const out = [...selected.namespaces];
      if (selected.pods.length === 0 || pods === null) return out;
      const named = namedNetns();
      for (const p of pods.pods) {
        if (!selected.pods.some((s) => s.namespace === p.namespace && s.name === p.name) || out.some((n) => n.inode === p.netns)) continue;
        out.push(named.find((n) => n.inode === p.netns) ?? { inode: p.netns, name: '', path: p.netnsPath });
      }
      return out;
    };
  }
  const fixed = filter.netns;
  if (fixed !== null) return () => [fixed];
  return only ? () => tracedNamespaces().filter((n) => only(n.name)) : tracedNamespaces;
}

/** Packet bytes each event captures: --pcap-snaplen's for pcapng and --output-packet. */
function capturedBytes(out: TraceConfig['output']): number {
  return out.files.pcap !== null || out.packet ? out.files.snaplen : 0;
}

export function sessionOptions(cfg: TraceConfig, scope: (() => Netns[]) | null = null,
  meta: { skbMeta?: CompiledSkbFetch | null; xdpMeta?: CompiledSkbFetch | null } = {}): SessionOptions {
  const out = cfg.output;
  return {
    nft: out.nft ? { matches: cfg.filter.nftMatch } : null,
    scope,
    ringSize: cfg.ringSize,
    duration: cfg.duration,
    limit: out.limitLines,
    stack: out.stack,
    snaplen: capturedBytes(out),
    tupleChanges: out.ct || out.json || out.files.jsonFile !== null,
    settings: out.json || out.files.jsonFile !== null || (out.settings ?? false) || cfg.explain,
    skbMeta: meta.skbMeta ?? null,
    xdpMeta: meta.xdpMeta ?? null,
    sections: sectionMask(out.sections),
    neighAll: out.neighAll ?? false,
    dump: out.dump,
    pods: null,
  };
}

/** The record a recorded trace starts with: what made it. */
export function traceHeader(prepared: Prepared, argv: string[], command: string[] | null, notObserved: string[], node: string): JsonHeaderRecord {
  const self = currentNetns().inode;
  return {
    v: JSON_SCHEMA_VERSION,
    type: 'header',
    pktpath: VERSION,
    kernel: kernelRelease(),
    node,
    time: formatTime(BigInt(Date.now()) * 1_000_000n),
    argv,
    command,
    points: planPointNames(prepared.plan),
    notes: [...prepared.plan.notes, ...notObserved.map((n) => `not observed: ${n}`)],
    namespaces: prepared.kernel.namespaces.map(({ netns }) => ({ inode: netns.inode, name: netns.name, self: netns.inode === self })),
  };
}

export interface RunHooks {
  /** A line for a person (stderr). */
  say(line: string): void;
  /** Called with the session once it exists, to stop it (signals, the demo's end). */
  started?(session: TraceSession): void;
  /** Everything that could be attached is: traffic may start. */
  attached?(): void;
  /** The flag that names the main output file in this command's words (`record`'s --out). */
  fileFlag?: string;
  /** The record JSON output starts with, made once attached (`pktpath record`). */
  header?: (notObserved: string[]) => JsonHeaderRecord;
}

/**
 * Runs a trace to its end: the plan's notes, the session, the sinks, the
 * ready file while attached; returns what the session reports.
 */
export async function runTrace(cfg: TraceConfig, prepared: Prepared, hooks: RunHooks): Promise<TraceSummary> {
  const { filter, kernel, plan } = prepared;
  for (const note of plan.notes) hooks.say(`pktpath: ${note}`);
  const { sinks, main, onClosed, dropped, ready } = createSinks(cfg.output, (line) => hooks.say(`pktpath: ${line}`),
    { inputs: cfg.inputs, readyFile: cfg.readyFile, fileFlag: hooks.fileFlag, explainer: cfg.explain ? new LiveExplainer() : null });
  let failed: Error | null = null;
  const session = new TraceSession({ ...sessionOptions(cfg, prepared.scope, prepared.sections), pods: prepared.pods }, plan, kernel, filter, sinks, {
    status: (line) => hooks.say(escapeMessage(line)),
    attached: (notObserved) => {
      if (hooks.header && main instanceof JsonSink) main.header({ ...hooks.header(notObserved), clock: clockJson(session.clock) });
      try {
        ready?.create();
      } catch (e) {
        // Its path was checked before attaching: something made a file there since (a runtime failure, exit 1).
        failed = new Error((e as Error).message);
        session.stop('ready file');
        return;
      }
      hooks.attached?.();
    },
  });
  onClosed(() => session.stop('output closed'));
  hooks.started?.(session);
  try {
    const summary = await session.run();
    if (failed) throw failed;
    return summary;
  } finally {
    ready?.remove();
    const d = dropped();
    if (d.bytes > 0) hooks.say(`pktpath: output: ${d.lines} lines (${d.bytes} bytes) dropped: the reader did not keep up`);
  }
}
