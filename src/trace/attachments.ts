/**
 * What a session can attach, as the planner (src/plan) hands it over: each
 * tracepoint with where its arguments are, each tc hook on each device, each
 * netfilter hook in each namespace at its priority. The session decides
 * nothing about placement; it loads, attaches and reports.
 */
import type { NfFamily, NfHookName, TcDirection } from '../decode/points.js';
import type { Iface, Netns } from '../kernel/netns.js';

export interface TracepointAttachment {
  name: string;
  /** Argument positions (from the tracepoint's BTF prototype); -1 where it has none. */
  skbArg: number;
  reasonArg: number;
  locationArg: number;
  devArg: number;
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

export interface AttachPlan {
  tracepoints: TracepointAttachment[];
  tc: TcAttachment[];
  netfilter: NfAttachment[];
  /** What a namespace or device that appears while tracing gets (the same as the ones there at the start). */
  template: {
    tcDirections: TcDirection[];
    netfilter: Array<Omit<NfAttachment, 'netns'>>;
  };
}
