/**
 * The builds of pktpath's probes (probes/*.bpf.c, built by
 * scripts/build-probes.sh): for each kind of observation point, the object
 * files to try in order, and what each does without.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Fd } from '../bpf/fd.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));

export function probesDir(): string {
  return process.env.PKTPATH_PROBES_DIR ?? path.resolve(HERE, '../../../probes/build');
}

/**
 * One build of a probe: its object file and program. Where a kernel refuses
 * part of a probe (a kfunc), a later build that does without it is tried;
 * where it refuses the current task's helpers to the program type (tc and
 * netfilter on 6.12), the same build without them. The session says what is
 * missing, and why.
 */
export interface ProbeBuild {
  file: string;
  program: string;
  /** The object's other programs, not loaded with this one. */
  others?: string[];
  /** What this build does without, for the note. */
  lacks?: string;
  /** Instructions of its filter regions, where fewer than the widest: a filter that needs more skips it. */
  filterRegion?: number;
  /**
   * The object carries this many copies of the program, `program` + slot
   * index, each configured by its slot of `slotMap`: one object is loaded
   * for many points of the kind.
   */
  slots?: { count: number; slotMap: string };
  /**
   * 'direct': the filter reads packet bytes in place, not from a copy
   * (PacketLoads in src/filter/cbpf-to-ebpf.ts). Tried first where the kernel
   * allows it (6.17+: the capability model's 'direct-packet-loads'); a
   * refusal falls back to the same object with copies.
   */
  packetLoads?: 'direct';
  /** The program filters nothing (it sends what another program matched): no code is written into it. */
  unfiltered?: true;
}

/** TP_SLOTS of probes/tracepoint.bpf.c: tracepoint programs per object. */
export const TP_SLOTS = 24;

/** ROUTE_SLOTS of probes/route.bpf.c: route and neighbour tracepoint programs in its object. */
export const ROUTE_SLOTS = 9;

const PROGRAM_TRACERS = ['pktpath_prog_entry', 'pktpath_prog_exit', 'pktpath_xdp_entry', 'pktpath_xdp_exit',
  'pktpath_helper', 'pktpath_map_update', 'pktpath_map_delete', 'pktpath_map_lookup', 'pktpath_htab_lookup'];
const progProbe = (program: string): ProbeBuild => ({ file: 'bpfprog.bpf.o', program, others: PROGRAM_TRACERS.filter((p) => p !== program) });

const TRACKERS = ['pktpath_copy_exit', 'pktpath_under', 'pktpath_window_exit'];
// Exits that follow or close, and report nothing: no code is theirs to run.
const trackProbe = (program: string): ProbeBuild => ({ file: 'track.bpf.o', program, others: TRACKERS.filter((p) => p !== program), unfiltered: true });
const KPROBE_PROGRAMS = ['pktpath_kprobe', 'pktpath_kprobe_multi', 'pktpath_kretprobe', 'pktpath_kretprobe_multi'];
const kprobeProbe = (program: string): ProbeBuild => ({ file: 'kprobe.bpf.o', program, others: KPROBE_PROGRAMS.filter((p) => p !== program) });

const TP_PROGRAMS = { program: 'pktpath_tp_', slots: { count: TP_SLOTS, slotMap: '.rodata.points' } };

export const PROBES = {
  tracepoint: [
    // Filter regions of 1024 instructions: 17 programs verify faster with less to walk (probes/include/filter.h).
    { file: 'tracepoint.bpf.o', ...TP_PROGRAMS, filterRegion: 1024, packetLoads: 'direct' },
    { file: 'tracepoint.bpf.o', ...TP_PROGRAMS, filterRegion: 1024 },
    // Before 6.2 (no bpf_rdonly_cast): the same probe, slower to verify (probes/include/kread.h).
    { file: 'tracepoint_nocast.bpf.o', ...TP_PROGRAMS, filterRegion: 1024 },
    // A filter that does not fit: regions of 4096.
    { file: 'tracepoint_wide.bpf.o', ...TP_PROGRAMS, packetLoads: 'direct' },
    { file: 'tracepoint_wide.bpf.o', ...TP_PROGRAMS },
    { file: 'tracepoint_wide_nocast.bpf.o', ...TP_PROGRAMS },
  ],
  fentry: [
    { file: 'fentry.bpf.o', program: 'pktpath_fentry', others: ['pktpath_fexit'] },
    { file: 'fentry_nofuncip.bpf.o', program: 'pktpath_fentry', others: ['pktpath_fexit'], lacks: 'bpf_get_func_ip (5.15+), which return values need' },
  ],
  /** A function's return (--output-retval): its entry's record again, with the value. */
  fexit: [{ file: 'fentry.bpf.o', program: 'pktpath_fexit', others: ['pktpath_fentry'], unfiltered: true }],
  kprobe: [
    kprobeProbe('pktpath_kprobe'),
    // Before 5.15: the function from the probe's address.
    { ...kprobeProbe('pktpath_kprobe'), file: 'kprobe_nofuncip.bpf.o', lacks: 'bpf_get_func_ip (5.15+; the function is found from the probe\'s address)' },
  ],
  'kprobe-multi': [kprobeProbe('pktpath_kprobe_multi')],
  /** A function's return where fexit is not used (--output-retval with kprobes): as fexit's, the entry's record again. */
  kretprobe: [{ ...kprobeProbe('pktpath_kretprobe'), unfiltered: true }],
  'kretprobe-multi': [{ ...kprobeProbe('pktpath_kretprobe_multi'), unfiltered: true }],
  tc: [
    { file: 'tc.bpf.o', program: 'pktpath_tc', packetLoads: 'direct' },
    { file: 'tc.bpf.o', program: 'pktpath_tc' },
    { file: 'tc_noct.bpf.o', program: 'pktpath_tc', lacks: 'the conntrack lookup' },
    { file: 'tc_untyped.bpf.o', program: 'pktpath_tc', lacks: 'the conntrack lookup and typed reads (bpf_cast_to_kern_ctx)' },
  ],
  netfilter: [
    { file: 'netfilter.bpf.o', program: 'pktpath_nf', others: ['pktpath_nf_hook_exit'], packetLoads: 'direct' },
    { file: 'netfilter.bpf.o', program: 'pktpath_nf', others: ['pktpath_nf_hook_exit'] },
  ],
  /** Netfilter where the kernel has no netfilter links: fexit of nf_hook_slow (before 6.2, the build without bpf_rdonly_cast). */
  'nf-hook': [
    { file: 'netfilter.bpf.o', program: 'pktpath_nf_hook_exit', others: ['pktpath_nf'] },
    { file: 'netfilter_nocast.bpf.o', program: 'pktpath_nf_hook_exit', others: ['pktpath_nf'] },
  ],
  /** --filter-track-skb where fexit is allowed: the skb a clone or copy function made, followed when its source is. */
  'copy-exit': [trackProbe('pktpath_copy_exit')],
  /** --filter-non-skb-funcs: a function without an skb, reported in its CPU's window (probes/include/window.h). */
  under: [
    { file: 'track.bpf.o', program: 'pktpath_under', others: TRACKERS.filter((p) => p !== 'pktpath_under') },
    { file: 'track_nofuncip.bpf.o', program: 'pktpath_under', others: TRACKERS.filter((p) => p !== 'pktpath_under'), lacks: 'bpf_get_func_ip (5.15+)' },
  ],
  /** The exit of an observed skb function: it closes its CPU's window. */
  'window-exit': [trackProbe('pktpath_window_exit')],
  /** Route and neighbour tracepoints (--output-route, --output-neigh): one object, a program per point. */
  route: [{ file: 'route.bpf.o', program: 'pktpath_route_', slots: { count: ROUTE_SLOTS, slotMap: '.rodata.points' } }],
  /** Entry and exit of another tc or XDP program (--filter-trace-tc, --filter-trace-xdp). */
  'prog-entry': [progProbe('pktpath_prog_entry')],
  'prog-exit': [progProbe('pktpath_prog_exit')],
  'prog-xdp-entry': [progProbe('pktpath_xdp_entry')],
  'prog-xdp-exit': [progProbe('pktpath_xdp_exit')],
  /** The kernel functions traced programs' helper calls land in (--filter-track-bpf-helpers): they send the run's record, filtering nothing. */
  helper: [{ ...progProbe('pktpath_helper'), unfiltered: true }],
  'map-update': [{ ...progProbe('pktpath_map_update'), unfiltered: true }],
  'map-delete': [{ ...progProbe('pktpath_map_delete'), unfiltered: true }],
  'map-lookup': [{ ...progProbe('pktpath_map_lookup'), unfiltered: true }],
  'htab-lookup': [{ ...progProbe('pktpath_htab_lookup'), unfiltered: true }],
} as const satisfies Record<string, readonly ProbeBuild[]>;
export type ProbeKind = keyof typeof PROBES;

/** Kinds whose programs are loaded for one kernel function, tracepoint or BPF program (BTF-typed: fentry, fexit, tp_btf). */
export const TARGETED: ReadonlySet<ProbeKind> = new Set(['tracepoint', 'route', 'fentry', 'fexit', 'copy-exit', 'under', 'window-exit', 'nf-hook', 'prog-entry', 'prog-exit',
  'prog-xdp-entry', 'prog-xdp-exit', 'helper', 'map-update', 'map-delete', 'map-lookup', 'htab-lookup']);

/** What a targeted probe is loaded for: a kernel function or tracepoint by name, or a function of a loaded BPF program. */
export type AttachTarget = string | { progFd: Fd; func: string };

/**
 * The first build of `builds` from `from` on whose filter regions hold a
 * filter of `insns` instructions, and that reads packets in place only where
 * `direct` says the kernel may.
 */
export function nextFitting(builds: readonly ProbeBuild[], from: number, insns: number, direct: boolean): number {
  const fits = (b: ProbeBuild) => (b.filterRegion === undefined || insns <= b.filterRegion) && (direct || b.packetLoads !== 'direct');
  let i = from;
  while (i < builds.length && !fits(builds[i]!)) i++;
  return i;
}
