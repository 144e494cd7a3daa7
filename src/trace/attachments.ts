/**
 * What a session can attach, as the planner (src/plan) hands it over: each
 * tracepoint with where its arguments are, each tc hook on each device, each
 * netfilter hook in each namespace at its priority. The session decides
 * nothing about placement; it loads, attaches and reports.
 */
import type { NfFamily, NfHookName, TcDirection } from '../decode/points.js';
import type { FunctionBackend } from '../kernel/functions.js';
import type { Iface, Netns } from '../kernel/netns.js';

export type { FunctionBackend };

/** Where other programs are traced (fentry/fexit on them). */
export type ProgramHook = 'tc' | 'xdp';

export interface TracepointAttachment {
  name: string;
  /** Argument positions (from the tracepoint's BTF prototype); -1 where it has none. */
  skbArg: number;
  reasonArg: number;
  locationArg: number;
  devArg: number;
}

/** A kernel function taking an skb. */
export interface FunctionAttachment {
  name: string;
  /** 0-based argument position of the skb. */
  skbArg: number;
  /** The module whose BTF declares it; null (or absent) for the core kernel. */
  module?: string | null;
}

export interface TcAttachment {
  netns: Netns;
  iface: Iface;
  direction: TcDirection;
}

export interface NfAttachment {
  netns: Netns;
  family: NfFamily;
  hook: NfHookName;
  priority: number;
  /** The last priority to try when another holds `priority` (a second session): the ordering stays the same up to it. */
  priorityLast: number;
  /** The second look, after NAT (--output-ct): its points are named with `:nat`. */
  afterNat: boolean;
}

/** A route or neighbour tracepoint (probes/route.bpf.c): no skb; what its program makes of its arguments is `kind`. */
export interface DecisionAttachment {
  /** The tracepoint, as BTF names it (btf_trace_<tracepoint>). */
  tracepoint: string;
  /** Its point name: system:event. */
  name: string;
  /** RoutePointKind (src/decode/layout.ts). */
  kind: number;
}

export interface AttachPlan {
  tracepoints: TracepointAttachment[];
  /**
   * Internal points, never reported: with --filter-track-skb, the tracepoints
   * that free skbs and that `tracepoints` leaves out, attached only to forget
   * the followed skbs freed there.
   */
  forgets: TracepointAttachment[];
  functions: FunctionAttachment[];
  /** Route and neighbour decisions (--output-route, --output-neigh). */
  decisions: DecisionAttachment[];
  /** The backends to try for functions, in order: a function one refuses goes to the next. */
  functionBackends: FunctionBackend[];
  /** The kprobe backend: kprobes made between two looks at the event loop (--filter-kprobe-batch). */
  kprobeBatch?: number;
  tc: TcAttachment[];
  /** Devices left without tc observers (--tc-devices programs): observed once another tc program is attached there. */
  tcAside: Array<{ netns: Netns; iface: Iface }>;
  netfilter: NfAttachment[];
  /** tc through tcx links, or cls_bpf filters on clsact qdiscs where the kernel has no tcx. */
  tcMode: 'tcx' | 'clsact';
  /**
   * Where the kernel has no netfilter links: the hooks observed at the exit
   * of nf_hook_slow (one program for every namespace), else null.
   */
  nfHookFunction: { hooks: Array<{ family: NfFamily; hook: NfHookName }> } | null;
  /** --filter-trace-tc, --filter-trace-xdp: the entry and exit of every other program at these hooks of the traced devices. */
  tracePrograms: ProgramHook[];
  /** --filter-track-bpf-helpers: their helper calls too (probes/include/prog_run.h). */
  trackBpfHelpers?: boolean;
  /** --filter-track-skb where fexit is allowed: the functions that make clones and copies, whose exits follow what they made. */
  copies?: string[];
  /** --filter-non-skb-funcs: functions without an skb, reported in the window of a wanted skb's function (fentry; `functions` get fexits too). */
  nonSkbFuncs?: string[];
  /** What a namespace or device that appears while tracing gets (the same as the ones there at the start). */
  template: {
    tcDirections: TcDirection[];
    /** Every device, or only those where other tc programs run (--tc-devices). */
    tcDevices: 'all' | 'programs';
    netfilter: Array<Omit<NfAttachment, 'netns'>>;
  };
}
