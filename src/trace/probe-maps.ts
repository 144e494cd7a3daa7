/**
 * The maps of probes/include/maps.h that every probe instance of a session
 * shares: one ring buffer, one lost counter, one stack map, the
 * skb-tracking maps, the skb each CPU last reported (for route and neighbour points) and the
 * function calls in flight (their entries' records, for their exits: --output-retval), the traced BPF program running on each CPU (--filter-track-bpf-helpers). Made from the first object's definitions before any
 * object loads, and reused by every one, so that objects can load at once.
 */
import type { Fd } from '../bpf/fd.js';
import { HashMap, LoadedMap, PerCpuArray, StackTraceMap } from '../bpf/maps.js';
import type { BpfObject } from '../bpf/object.js';

const SHARED_MAPS = ['events', 'lost', 'stacks', 'tracked_skbs', 'tracked_heads', 'track_stats', 'stack_skbs', 'skb_stacks', 'cpu_windows', 'cpu_skbs', 'calls',
  'prog_runs'] as const;
type SharedMap = (typeof SHARED_MAPS)[number];

/** The shared maps as user space reads them. */
export interface ProbeMaps {
  /** The ring buffer, for the reader to map. */
  events: LoadedMap;
  lost: PerCpuArray;
  stacks: StackTraceMap;
  trackedSkbs: HashMap;
  /** Indexed by TrackStat. */
  trackStats: PerCpuArray;
}

export class SharedMaps {
  readonly maps: ProbeMaps;

  private constructor(private readonly fds: Record<SharedMap, Fd>) {
    this.maps = {
      events: new LoadedMap(fds.events),
      lost: new PerCpuArray(fds.lost),
      stacks: new StackTraceMap(fds.stacks),
      trackedSkbs: new HashMap(fds.tracked_skbs, 8),
      trackStats: new PerCpuArray(fds.track_stats),
    };
  }

  /**
   * The maps, made from `object`'s definitions (every probe has them): a ring
   * of `ringSize` bytes; without `stacks`, a stack map of one entry, not 16 MiB of them;
   * without `calls` (return values), a calls map of one entry.
   */
  static createFrom(object: BpfObject, ringSize: number, stacks: boolean, calls: boolean): SharedMaps {
    object.map('events').setMaxEntries(ringSize);
    if (!stacks) object.map('stacks').setMaxEntries(1);
    if (!calls) object.map('calls').setMaxEntries(1);
    const fds: Partial<Record<SharedMap, Fd>> = {};
    try {
      for (const name of SHARED_MAPS) fds[name] = object.map(name).createLike();
    } catch (e) {
      for (const fd of Object.values(fds)) fd.close();
      throw e;
    }
    return new SharedMaps(fds as Record<SharedMap, Fd>);
  }

  /** An object about to load takes these maps for its own (before load). */
  shareWith(object: BpfObject): void {
    for (const name of SHARED_MAPS) object.map(name).reuseFd(this.fds[name]);
  }

  /** Lets go of the maps (the objects that reuse them keep their own references while open). */
  close(): void {
    for (const fd of Object.values(this.fds)) fd.close();
  }
}
