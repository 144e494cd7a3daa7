/**
 * What explain reads beside the journeys, as the trace's JSON has it: an
 * event's route and neighbour sections and the `settings` records
 * (SPEC: schema/event.v1.json). Only the fields explain reads, each
 * optional where a kernel or an older trace may leave it out: the sections'
 * own modules own the whole forms.
 */
import type { JsonRecord } from '../../output/json.js';

/** The `route` section: one FIB lookup, at `fib:fib_table_lookup` / `fib6:fib6_table_lookup`. */
export interface RouteSection {
  family?: number;
  table?: number;
  table_name?: string;
  /** RTN_* in lower case (unicast, local, blackhole, unreachable, prohibit, throw, …) or "error". */
  result: string;
  /** The errno name of a failed lookup; EAGAIN: this table had no match and the next rule is tried. */
  error?: string | null;
  oif?: number;
  oif_name?: string;
  gateway?: string | null;
  prefix?: string | null;
  iif?: number;
  iif_name?: string;
}

/** The `neigh` section: a neighbour entry's change. */
export interface NeighSection {
  event: string;
  family?: number;
  /** The neighbour's protocol address. */
  address: string;
  ifindex?: number;
  iface?: string;
  lladdr?: string | null;
  /** NUD_* name: INCOMPLETE REACHABLE STALE DELAY PROBE FAILED NOARP PERMANENT NONE. */
  state: string;
  old_state?: string | null;
  probes?: number;
  error?: string | null;
}

/** An event as explain reads it: the JSON event, with the sections other parts of the trace add. */
export type ExplainEvent = JsonRecord & { route?: RouteSection; neigh?: NeighSection };

/** One device's (or all's, default's) IPv4 configuration, as a settings record has it. */
export interface Ipv4Conf {
  forwarding?: number;
  rp_filter?: number;
  proxy_arp?: number;
  arp_ignore?: number;
  accept_local?: number;
  route_localnet?: number;
}

export interface SettingsDevice {
  ifindex: number;
  name: string;
  mtu?: number;
  up?: boolean;
  kind?: string;
  /** `192.0.2.1/24`, `2001:db8::1/64`. */
  addresses?: string[];
  lladdr?: string | null;
}

/** A `settings` record: one namespace's settings from `time` on. */
export interface SettingsRecord {
  v: 1;
  type: 'settings';
  time: string;
  netns: number;
  netns_name?: string;
  ipv4?: { forwarding?: number; conf?: Record<string, Ipv4Conf> };
  ipv6?: { conf?: Record<string, { forwarding?: number; disable_ipv6?: number }> };
  devices?: SettingsDevice[];
}

/** Cause codes: docs/EXPLAIN.md tells each. */
export const CAUSES = [
  'nft-drop', 'tc-drop', 'tc-redirect', 'xdp-drop', 'forwarding-disabled', 'no-route', 'rp-filter', 'neigh-failed',
  'proxy-arp', 'mtu', 'ct-invalid', 'no-socket', 'socket-full', 'reply-dropped', 'dropped', 'unfinished',
] as const;
export type Cause = (typeof CAUSES)[number];

/** One line of evidence, and the time of the event or settings record it rests on (null: none in particular). */
export interface Evidence {
  text: string;
  time: string | null;
}

/** The `explanation` record, written after the journey it explains. */
export interface ExplanationRecord {
  v: 1;
  type: 'explanation';
  /** The journey's first time. */
  time: string;
  skb: string;
  /** `udp 192.0.2.1:40000 > 198.51.100.2:9999`; '' when the packet had no tuple. */
  flow: string;
  cause: Cause;
  sentence: string;
  evidence: Evidence[];
}
