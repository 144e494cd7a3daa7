/**
 * pktpath's own probe objects (probes/*.bpf.c), instantiated per observation
 * point. All instances share one ring buffer, one lost counter, one stack map
 * and the skb-tracking maps: the first instance creates them, the others
 * reuse them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AttachType, ProgType } from '../bpf/abi.js';
import { BpfError } from '../bpf/errors.js';
import { HashMap, PerCpuArray, StackTraceMap } from '../bpf/maps.js';
import { BpfObject, type BpfProgram } from '../bpf/object.js';
import { type ProbeConfig, encodeConfig } from '../decode/config.js';
import type { CompiledFilter } from '../filter/expression.js';
import { FILTER_MAGIC, injectRegion } from '../filter/inject.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));

export function probesDir(): string {
  return process.env.PKTPATH_PROBES_DIR ?? path.resolve(HERE, '../../../probes/build');
}

export const PROBE_OBJECTS = {
  tracepoint: { file: 'tracepoint.bpf.o', program: 'pktpath_tp' },
  tc: { file: 'tc.bpf.o', program: 'pktpath_tc' },
  netfilter: { file: 'netfilter.bpf.o', program: 'pktpath_nf' },
} as const;
export type ProbeKind = keyof typeof PROBE_OBJECTS;

/** The maps of probes/include/maps.h every instance shares. */
const SHARED_MAPS = ['events', 'lost', 'stacks', 'tracked_skbs', 'tracked_heads', 'track_stats'] as const;
type SharedMap = (typeof SHARED_MAPS)[number];

/** The shared maps as user space reads them. */
export interface ProbeMaps {
  /** The ring buffer's fd, for the reader to map. */
  eventsFd: number;
  lost: PerCpuArray;
  stacks: StackTraceMap;
  trackedSkbs: HashMap;
  /** Indexed by TrackStat. */
  trackStats: PerCpuArray;
}

export interface ProbeInstance {
  object: BpfObject;
  program: BpfProgram;
}

export class ProbeSet {
  private readonly instances: ProbeInstance[] = [];
  /** The shared maps' fds (for the next instances to reuse) and their handles, once the first instance is loaded. */
  private shared: { fds: Record<SharedMap, number>; maps: ProbeMaps } | null = null;

  constructor(readonly ringSize: number, readonly dir = probesDir()) {}

  /**
   * Loads one instance of a probe; `attachTarget` names the tracepoint for
   * tracepoint probes, `filter` is injected into its filter regions.
   */
  load(kind: ProbeKind, config: ProbeConfig, label: string, attachTarget?: string,
    filter: CompiledFilter | null = null): ProbeInstance {
    const spec = PROBE_OBJECTS[kind];
    const file = path.join(this.dir, spec.file);
    if (!fs.existsSync(file)) {
      throw new BpfError(`opening probe ${file}`, -2, [], 'run `npm run build` to build the probes');
    }
    const object = BpfObject.open(file, label);
    try {
      const program = object.program(spec.program);
      object.rodata().setInitialValue(encodeConfig(config));
      if (this.shared) {
        for (const name of SHARED_MAPS) object.map(name).reuseFd(this.shared.fds[name]);
      } else {
        object.map('events').setMaxEntries(this.ringSize);
      }
      if (kind === 'tracepoint') program.setAttachTarget(attachTarget!);
      if (filter) {
        let insns = program.insns();
        insns = injectRegion(insns, FILTER_MAGIC.l2, filter.l2.ebpf, `${label}: L2 filter`);
        insns = injectRegion(insns, FILTER_MAGIC.l3, filter.l3.ebpf, `${label}: L3 filter`);
        program.setInsns(insns);
      }
      // libbpf 1.1 does not know the "netfilter" section: say what it is.
      if (kind === 'netfilter') program.setType(ProgType.NETFILTER, AttachType.NETFILTER);
      object.load();
      if (!this.shared) {
        const fds = Object.fromEntries(SHARED_MAPS.map((m) => [m, object.map(m).fd])) as Record<SharedMap, number>;
        this.shared = {
          fds,
          maps: {
            eventsFd: fds.events,
            lost: new PerCpuArray(fds.lost),
            stacks: new StackTraceMap(fds.stacks),
            trackedSkbs: new HashMap(fds.tracked_skbs, 8),
            trackStats: new PerCpuArray(fds.track_stats),
          },
        };
      }
      const inst = { object, program };
      this.instances.push(inst);
      return inst;
    } catch (e) {
      object.close();
      throw e;
    }
  }

  /** The shared maps; null until the first instance is loaded. */
  get maps(): ProbeMaps | null {
    return this.shared?.maps ?? null;
  }

  /** Unloads every instance (links must be closed first). */
  close(): void {
    for (const inst of this.instances.splice(0).reverse()) inst.object.close();
    this.shared = null;
  }
}

/** A configuration that loads a probe with every optional part off: what `pktpath doctor` tries. */
const PLAIN: ProbeConfig = {
  pointId: 0, stack: false, filter: false, skbArg: 0, reasonArg: -1, locationArg: -1, devArg: -1,
  netns: 0, ifindex: 0, mark: null, track: false, frees: false, snaplen: 0,
};

/**
 * Whether each of pktpath's own probes loads on this kernel (the verifier
 * accepts it, its helpers and kfuncs resolve), without attaching anything:
 * null when it does, else why not.
 */
export function probeLoads(): Record<ProbeKind, Error | null> {
  const out = {} as Record<ProbeKind, Error | null>;
  for (const kind of Object.keys(PROBE_OBJECTS) as ProbeKind[]) {
    const set = new ProbeSet(1 << 16);
    try {
      set.load(kind, PLAIN, `pktpath's ${kind} probe`, kind === 'tracepoint' ? 'netif_receive_skb' : undefined);
      out[kind] = null;
    } catch (e) {
      out[kind] = e as Error;
    } finally {
      set.close();
    }
  }
  return out;
}

