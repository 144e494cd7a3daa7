/**
 * What explain reads beside the journeys, as the trace's JSON has it: an
 * event's route and neighbour sections (their modules under
 * output/sections/) and the `settings` records (output/settings.ts); and what
 * it writes, the `explanation` record and its causes.
 */
import type { JsonRecord } from '../../output/json.js';
import type { JsonNeigh } from '../../output/sections/neigh.js';
import type { JsonRoute } from '../../output/sections/route.js';
import type { DeviceConfig, JsonSettingsRecord, RouteConfig } from '../../output/settings.js';

// Explain reads the forms their modules define, and only needs some fields of
// each: what it reads may lack the rest (older traces, hand-written records).
/** The `route` section: one FIB lookup, at `fib:fib_table_lookup` / `fib6:fib6_table_lookup`. */
export type RouteSection = Partial<JsonRoute> & Pick<JsonRoute, 'result'>;
/** The `neigh` section: a neighbour entry's change. */
export type NeighSection = Partial<JsonNeigh> & Pick<JsonNeigh, 'event' | 'address' | 'state'>;
/** An event as explain reads it: the JSON event, its route and neighbour sections as above. */
export type ExplainEvent = Omit<JsonRecord, 'route' | 'neigh'> & { route?: RouteSection; neigh?: NeighSection };

/** One device's (or all's, default's) IPv4 configuration, as a settings record has it. */
export interface Ipv4Conf {
  forwarding?: number;
  rp_filter?: number;
  proxy_arp?: number;
  arp_ignore?: number;
  accept_local?: number;
  route_localnet?: number;
}

export type SettingsDevice = Partial<DeviceConfig> & Pick<DeviceConfig, 'ifindex' | 'name'>;
/** A `settings` record: one namespace's settings from `time` on. */
export type SettingsRecord = Pick<JsonSettingsRecord, 'v' | 'type' | 'time' | 'netns'> & Partial<Pick<JsonSettingsRecord, 'netns_name'>> & {
  ipv4?: { forwarding?: number; conf?: Record<string, Ipv4Conf> };
  ipv6?: { conf?: Record<string, { forwarding?: number; disable_ipv6?: number }> };
  devices?: SettingsDevice[];
  routes?: Array<Partial<RouteConfig> & Pick<RouteConfig, 'dst' | 'dev'>>;
};

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
