/**
 * From what the user asked (an AttachSelection) and what the kernel offers
 * (a KernelView) to a ProbePlan: which probes go where, at which priority, and
 * what cannot be observed on this kernel. Pure: no system calls.
 */
import {
  FREEING_POINTS, type NfFamily, type NfHookName, NF_FAMILIES, NF_HOOKS, TC_DIRECTIONS, nfPointName, tcPointName,
} from '../decode/points.js';
import { RoutePointKind } from '../decode/layout.js';
import type { Iface, Netns } from '../kernel/netns.js';
import type { KernelView, TracepointParam } from '../kernel/view.js';
import type { AttachPlan, FunctionAttachment, FunctionBackend, ProgramHook, TracepointAttachment } from '../trace/attachments.js';
import { DECISION_TRACEPOINTS, NF_NAT_PRIORITY, NF_NAT_PRIORITY_LAST, NF_PRIORITY, NF_PRIORITY_LAST, SKB_TRACEPOINTS } from './catalog.js';

export type Family = 'tracepoints' | 'functions' | 'tc' | 'netfilter';
export const FAMILIES: readonly Family[] = ['tracepoints', 'functions', 'tc', 'netfilter'];

/** --backend: how kernel functions are probed; auto picks by trying. */
export type BackendChoice = 'auto' | FunctionBackend;
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'kprobe-multi', 'kprobe', 'fentry'];
/** Up to this many functions, auto prefers fentry (one program each, cheapest per event); beyond, one kprobe-multi link per skb position. */
export const FENTRY_PREFERRED_MAX = 64;

/** Which observation points the user wants. */
export interface AttachSelection {
  families: Set<Family>;
  /** Full-name match of the points to attach (--filter-func); null for all. */
  filterFunc: RegExp | null;
  /** A second netfilter look after NAT (--output-ct). */
  afterNat: boolean;
  backend: BackendChoice;
  /** The user asked for functions (--backend, or --attach naming them): say why none are probed. */
  functionsAsked: boolean;
  /** --filter-trace-tc, --filter-trace-xdp: trace the other programs at those hooks (fentry/fexit on them). */
  tracePrograms: ReadonlySet<ProgramHook>;
  /** --filter-track-bpf-helpers: the helper calls of the traced programs, at the kernel functions they land in. */
  trackBpfHelpers?: boolean;
  /** --filter-track-skb: the frees the selection leaves out are watched all the same (`forgets`), clones and copies seen made where fexit is allowed. */
  trackSkb: boolean;
  /** --filter-non-skb-funcs: functions without an skb, reported in the window of a wanted skb's function. */
  nonSkbFuncs?: readonly string[];
  /** --output-route, --output-neigh: the route and neighbour tracepoints (whatever --attach says: they are asked for by name). */
  decisions?: { route: boolean; neigh: boolean };
  /** --tc-devices: `auto` is resolved by prepare (tcDevicePlacement) before planning; all when absent. */
  tcDevices?: TcDevices;
  /** The user asked for tc points by name (--attach tc, or --filter-func finding them): `auto` observes every device. */
  tcAsked?: boolean;
  /** --filter-kprobe-batch: kprobes made between two looks at the event loop (kprobe backend); null: the default. */
  kprobeBatch?: number | null;
  /** Functions of kernel modules too, as pwru: those of the modules named (--kmods), or of all (--all-kmods); none by default. */
  kmods?: 'all' | readonly string[];
}

export const TC_DEVICE_CHOICES = ['auto', 'all', 'programs'] as const;
export type TcDevices = (typeof TC_DEVICE_CHOICES)[number];
export type TcPlacement = Exclude<TcDevices, 'auto'>;

/**
 * Beyond this many devices `auto` puts tc observers only where other tc
 * programs run. Each tcx link attached or released waits for an RCU grace
 * period under rtnl, one after another (~10 ms each on a busy machine): a
 * node of 110 pods has 330 devices, ~7 s each way. Where no program runs, a
 * tc hook decides nothing, and the device tracepoints see the packet there.
 */
export const TC_DEVICE_BUDGET = 32;

/**
 * What `--tc-devices` comes to: `auto` is all while the traced devices are
 * few, or named (--filter-netns, --filter-pod, --filter-ifname), or tc
 * points were asked for by name.
 */
export function tcDevicePlacement(choice: TcDevices, deviceCount: number, named: boolean): TcPlacement {
  if (choice !== 'auto') return choice;
  return named || deviceCount <= TC_DEVICE_BUDGET ? 'all' : 'programs';
}

export interface ProbePlan extends AttachPlan {
  /** What will not be observed, and why; shown to the user. */
  notes: string[];
}

const SKB_PTR = /^(const )?struct sk_buff \*$/;
const DROP_REASON = /^(const )?enum skb_drop_reason$/;
const VOID_PTR = /^(const )?void \*$/;
const DEV_PTR = /^(const )?struct net_device \*$/;

/** Where the skb, drop reason and caller sit in a tracepoint's arguments; null without an skb. */
export function tracepointPoint(name: string, params: TracepointParam[]): TracepointAttachment | null {
  const skb = params.find((p) => SKB_PTR.test(p.typeName));
  if (!skb) return null;
  const reason = params.find((p) => DROP_REASON.test(p.typeName));
  const location = params.find((p) => VOID_PTR.test(p.typeName));
  const dev = params.find((p) => DEV_PTR.test(p.typeName));
  return {
    name,
    skbArg: skb.index,
    reasonArg: reason?.index ?? -1,
    locationArg: location?.index ?? -1,
    devArg: dev?.index ?? -1,
  };
}

/**
 * Narrows where tc and netfilter observers go to what the filter allows: one
 * namespace (--filter-netns), one device (--filter-ifname).
 */
export function narrowView(kernel: KernelView, only: { namespaces: readonly Netns[] | null; ifindex: number }, ifacesOf: (n: Netns) => Iface[]): KernelView {
  let namespaces = kernel.namespaces;
  if (only.namespaces) {
    namespaces = only.namespaces.map((want) => namespaces.find((n) => n.netns.inode === want.inode) ?? { netns: want, ifaces: ifacesOf(want) });
  }
  if (only.ifindex) {
    namespaces = namespaces.slice(0, 1).map((n) => ({ ...n, ifaces: n.ifaces.filter((i) => i.ifindex === only.ifindex) }));
  }
  return { ...kernel, namespaces };
}

function wants(sel: AttachSelection, family: Family, pointName: string): boolean {
  return sel.families.has(family) && (sel.filterFunc === null || sel.filterFunc.test(pointName));
}

export function planProbes(sel: AttachSelection, kernel: KernelView): ProbePlan {
  const plan: ProbePlan = {
    tracepoints: [], forgets: [], functions: [], decisions: [], functionBackends: [], tc: [], tcAside: [], tcMode: 'tcx', netfilter: [], nfHookFunction: null,
    tracePrograms: [], template: { tcDirections: [], tcDevices: 'all', netfilter: [] }, notes: [],
  };
  const fentry = kernel.functions?.backends.find((b) => b.backend === 'fentry');

  if (sel.families.has('tracepoints')) {
    if (!kernel.features.tracing) {
      plan.notes.push('tracepoints: this kernel has no BTF-typed tracepoints (tp_btf); skb tracepoints are not observed');
    } else {
      for (const name of SKB_TRACEPOINTS) {
        if (!wants(sel, 'tracepoints', name)) continue;
        const params = kernel.tracepoints.get(name);
        if (!params) {
          plan.notes.push(`tracepoint ${name}: not in this kernel`);
          continue;
        }
        const point = tracepointPoint(name, params);
        if (point) plan.tracepoints.push(point);
        else plan.notes.push(`tracepoint ${name}: carries no skb in this kernel`);
      }
    }
  }

  if (sel.decisions?.route || sel.decisions?.neigh) planDecisions(sel, kernel, plan);
  if (sel.trackSkb) planForgets(kernel, plan);
  if (sel.families.has('functions')) planFunctions(sel, kernel, plan);
  if (sel.trackSkb) planCopies(sel, kernel, plan);
  if (sel.nonSkbFuncs?.length) plan.nonSkbFuncs = [...sel.nonSkbFuncs];
  planKprobeBatch(sel, kernel, plan);

  const tcWanted = TC_DIRECTIONS.filter((d) => wants(sel, 'tc', tcPointName(d)));
  if (tcWanted.length > 0) {
    if (!kernel.features.tcx) {
      plan.tcMode = 'clsact';
      plan.notes.push(`tc: this kernel has no tcx links (Linux 6.6+): tc is observed through cls_bpf filters named pktpath_PID ` +
        'on clsact qdiscs, removed on exit (and by `pktpath cleanup` after a kill); other programs\' verdicts are inferred');
    }
    plan.template.tcDirections = [...tcWanted];
    plan.template.tcDevices = sel.tcDevices === 'programs' ? 'programs' : 'all';
    for (const { netns, ifaces, tcBusy } of kernel.namespaces) {
      for (const iface of ifaces) {
        if (plan.template.tcDevices === 'programs' && !tcBusy?.has(iface.ifindex)) plan.tcAside.push({ netns, iface });
        else for (const direction of tcWanted) plan.tc.push({ netns, iface, direction });
      }
    }
    if (plan.template.tcDevices === 'programs') {
      const devices = new Set(plan.tc.map((t) => `${t.netns.inode}:${t.iface.ifindex}`)).size;
      plan.notes.push(`tc: observed at the ${devices} ${devices === 1 ? 'device' : 'devices'} where other tc programs run; ` +
        `the ${plan.tcAside.length} others (no tc program: their packets show at the device tracepoints) get observers when one is attached there` +
        (sel.tcDevices === 'programs' ? '' : ` (more than ${TC_DEVICE_BUDGET} devices: each tcx link waits for an RCU grace period; --tc-devices all observes every one)`));
    }
  }

  const nfWanted: Array<{ family: NfFamily; hook: NfHookName }> = [];
  for (const family of NF_FAMILIES) {
    for (const hook of NF_HOOKS) if (wants(sel, 'netfilter', nfPointName(family, hook))) nfWanted.push({ family, hook });
  }
  if (nfWanted.length > 0) {
    if (!kernel.features.netfilter && fentry?.ok) {
      plan.nfHookFunction = { hooks: nfWanted };
      plan.notes.push('netfilter: this kernel has no BPF netfilter links (Linux 6.4+): hooks are observed at the exit of ' +
        'nf_hook_slow, after their whole chain (conntrack and NAT done), where they have rules or conntrack');
    } else if (!kernel.features.netfilter) {
      plan.notes.push('netfilter: this kernel has no BPF netfilter links (Linux 6.4+) and refuses fentry ' +
        `(${fentry?.detail ?? 'not tried'}); netfilter hooks are not observed`);
    } else {
      const hooks = nfWanted.map((w) => ({ ...w, priority: NF_PRIORITY, priorityLast: NF_PRIORITY_LAST, afterNat: false }));
      // Where NAT rewrites the packet, a second look right after it shows the new tuple on the same hook.
      if (sel.afterNat) {
        for (const w of nfWanted) {
          const priority = NF_NAT_PRIORITY[w.hook];
          const priorityLast = NF_NAT_PRIORITY_LAST[w.hook];
          if (priority !== undefined && priorityLast !== undefined) hooks.push({ ...w, priority, priorityLast, afterNat: true });
        }
      }
      plan.template.netfilter = hooks;
      for (const afterNat of [false, true]) {
        for (const { netns } of kernel.namespaces) {
          for (const h of hooks) if (h.afterNat === afterNat) plan.netfilter.push({ netns, ...h });
        }
      }
    }
  }
  // Trampolines on BPF programs need what fentry needs (prepare() refuses the option where it does not work).
  // Where tc is not observed (--attach none: BPF programs only), the programs family reads each device's tc hooks itself.
  plan.tracePrograms = fentry?.ok === true ? [...sel.tracePrograms] : [];
  plan.trackBpfHelpers = plan.tracePrograms.length > 0 && sel.trackBpfHelpers === true;
  return plan;
}

/** The route and neighbour tracepoints asked for that this kernel has (--filter-func narrows them too). */
function planDecisions(sel: AttachSelection, kernel: KernelView, plan: ProbePlan): void {
  const flag = (section: 'route' | 'neigh') => `--output-${section}`;
  for (const d of DECISION_TRACEPOINTS) {
    if (!sel.decisions?.[d.section] || (sel.filterFunc !== null && !sel.filterFunc.test(d.name))) continue;
    if (!kernel.features.tracing) {
      plan.notes.push(`${flag(d.section)}: this kernel has no BTF-typed tracepoints (tp_btf); ${d.name} is not observed`);
    } else if (!kernel.tracepoints.get(d.tracepoint)) {
      // neigh_cleanup_and_release is optional: older kernels lack it and nothing else depends on it.
      if (d.kind !== RoutePointKind.neighRelease) plan.notes.push(`${flag(d.section)}: tracepoint ${d.name}: not in this kernel`);
    } else {
      plan.decisions.push({ tracepoint: d.tracepoint, name: d.name, kind: d.kind });
    }
  }
}

/**
 * --filter-track-skb: the tracepoints that free skbs and that the plan does
 * not observe, attached all the same to forget what they free, reporting
 * nothing. Without them an skb freed there stays followed, and the next skb
 * given its address is taken for it.
 */
function planForgets(kernel: KernelView, plan: ProbePlan): void {
  if (!kernel.features.tracing) {
    plan.notes.push('--filter-track-skb: this kernel has no BTF-typed tracepoints (tp_btf): frees are not seen; a followed skb ' +
      'is forgotten when its address holds another data buffer, or evicted for room');
    return;
  }
  const observed = new Set(plan.tracepoints.map((t) => t.name));
  for (const name of FREEING_POINTS) {
    if (observed.has(name)) continue;
    const params = kernel.tracepoints.get(name);
    const point = params ? tracepointPoint(name, params) : null;
    if (point) plan.forgets.push(point);
    else plan.notes.push(`--filter-track-skb: tracepoint ${name}: ${params ? 'carries no skb' : 'not'} in this kernel; ` +
      'skbs freed there stay followed until their address holds another data buffer');
  }
}

/**
 * The backends to try, in order. An explicit choice is the only one; auto
 * takes those that work here, fentry first for a small set (cheapest per
 * event), kprobe-multi first for a large one (one link per skb position).
 */
export function backendOrder(choice: BackendChoice, usable: readonly FunctionBackend[], count: number): FunctionBackend[] {
  if (choice !== 'auto') return usable.includes(choice) ? [choice] : [];
  const order: FunctionBackend[] = count <= FENTRY_PREFERRED_MAX ? ['fentry', 'kprobe-multi', 'kprobe'] : ['kprobe-multi', 'kprobe', 'fentry'];
  return order.filter((b) => usable.includes(b));
}

function planFunctions(sel: AttachSelection, kernel: KernelView, plan: ProbePlan): void {
  const fn = kernel.functions;
  if (!fn) return;
  const usable = fn.backends.filter((b) => b.ok).map((b) => b.backend);
  if (usable.length === 0 || !fn.discovery) {
    if (sel.functionsAsked) {
      const why = fn.backends.map((b) => `${b.backend}: ${b.detail}`).join('; ');
      plan.notes.push(`functions: this kernel lets no backend probe them (${why}); the path is observed at tracepoints, tc and netfilter`);
    }
    return;
  }
  // A tracepoint of the same name (consume_skb) already shows the function: it is not probed twice.
  const tracepoints = new Set(plan.tracepoints.map((t) => t.name));
  const functions: FunctionAttachment[] = [];
  const kmods = sel.kmods ?? [];
  for (const f of fn.discovery.functions) {
    if (f.module !== null && kmods !== 'all' && !kmods.includes(f.module)) continue;
    if (tracepoints.has(f.name) || !wants(sel, 'functions', f.name)) continue;
    functions.push({ name: f.name, skbArg: f.skbArg, module: f.module });
  }
  plan.functions = functions;
  // The window of --filter-non-skb-funcs closes at each function's fexit: the functions go to fentry.
  plan.functionBackends = sel.nonSkbFuncs?.length ? usable.filter((b) => b === 'fentry') : backendOrder(sel.backend, usable, functions.length);
}

/** The functions that make a clone or copy of an skb (pskb_copy is inline: __pskb_copy_fclone is what runs). */
export const COPY_FUNCTIONS = ['skb_clone', 'skb_copy', '__pskb_copy_fclone', 'skb_copy_expand'] as const;

/**
 * --filter-track-skb: a clone shares its source's data and is followed by it
 * anywhere; a copy has data of its own, and is followed only where fexit sees
 * it made. Where the kernel refuses fexit, one line says what is lost.
 */
function planCopies(sel: AttachSelection, kernel: KernelView, plan: ProbePlan): void {
  const fentry = kernel.functions?.backends.find((b) => b.backend === 'fentry');
  const found = new Set(kernel.functions?.discovery?.functions.map((f) => f.name) ?? []);
  if (fentry?.ok && found.size > 0) {
    plan.copies = COPY_FUNCTIONS.filter((f) => found.has(f));
    return;
  }
  const why = !sel.families.has('functions') ? '--attach leaves out functions' : `this kernel refuses fexit (${fentry?.detail ?? 'not tried'})`;
  plan.notes.push(`--filter-track-skb: copies of followed skbs (skb_copy, pskb_copy, skb_copy_expand) are not followed: ${why}; ` +
    'clones are, by the data they share');
}

/** --filter-kprobe-batch: said in one line where the kprobe backend is not used (pwru's flag has no other meaning). */
function planKprobeBatch(sel: AttachSelection, kernel: KernelView, plan: ProbePlan): void {
  if (sel.kprobeBatch === undefined || sel.kprobeBatch === null) return;
  plan.kprobeBatch = sel.kprobeBatch;
  if (plan.functionBackends.includes('kprobe')) return;
  const kprobe = kernel.functions?.backends.find((b) => b.backend === 'kprobe');
  const why = !sel.families.has('functions') ? '--attach leaves out functions'
    : kprobe && !kprobe.ok ? `this kernel refuses kprobes: ${kprobe.detail}`
      : plan.functions.length === 0 ? 'no function is probed' : `--backend ${sel.backend} does not use it`;
  plan.notes.push(`--filter-kprobe-batch: applies to the kprobe backend, not used here (${why}); ignored`);
}

/** Every observation point name the plan attaches, deduplicated, for `pktpath list`. */
export function planPointNames(plan: AttachPlan): string[] {
  const names = plan.tracepoints.map((t) => t.name);
  for (const d of plan.decisions) names.push(d.name);
  for (const f of plan.functions) names.push(f.name);
  for (const t of plan.tc) names.push(tcPointName(t.direction));
  for (const n of plan.netfilter) names.push(nfPointName(n.family, n.hook));
  for (const h of plan.nfHookFunction?.hooks ?? []) names.push(nfPointName(h.family, h.hook));
  return [...new Set(names)];
}
