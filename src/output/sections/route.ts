/**
 * The route section (--output-route, probes/include/sections/route.h): one
 * routing table lookup at fib:fib_table_lookup or fib6:fib6_table_lookup.
 * Text: `route main unicast via 192.0.2.1 dev veth0 (192.0.2.0/24)`,
 * `route main error EAGAIN`.
 */
import { errnoName } from '../../bpf/errors.js';
import { formatAddress } from '../../decode/addr.js';
import { escapeText } from '../escape.js';
import { section } from './section.js';

export interface RouteRaw {
  family: 4 | 6;
  table: number;
  /** 0 or -errno (fib4: the tracepoint's). */
  error: number;
  /** RTN_*; null where the lookup does not say (a nexthop object's route). */
  type: number | null;
  gateway: string | null;
  prefix: string | null;
  oif: number;
  iif: number;
  mark: number;
  /** fib6: the table had no route (its null entry). */
  noMatch: boolean;
}

export interface Route {
  family: 4 | 6;
  table: number;
  tableName: string;
  /** RTN_* in lower case, "error" for an error with no type; null when the kernel did not say. */
  result: string | null;
  error: string | null;
  oif: number;
  oifName: string;
  gateway: string | null;
  prefix: string | null;
  iif: number;
  iifName: string;
  mark: number;
}

export interface JsonRoute {
  family: 4 | 6;
  table: number;
  table_name: string;
  result: string | null;
  error: string | null;
  oif: number;
  oif_name: string;
  gateway: string | null;
  prefix: string | null;
  iif: number;
  iif_name: string;
  mark: number;
}

const LAYOUT = {
  struct: 'route_section', size: 64,
  fields: { gateway: 0, prefix: 16, table: 32, error: 36, oif: 40, iif: 44, mark: 48, family: 52, type: 53, gw_family: 54, prefix_len: 55, flags: 56 },
} as const;
const TYPE_UNKNOWN = 0xff;
const PREFIX_UNKNOWN = 0xff;
const ROUTE_NO_MATCH = 1;

/** RTN_* by number (include/uapi/linux/rtnetlink.h). */
const RTN = ['unspec', 'unicast', 'local', 'broadcast', 'anycast', 'multicast', 'blackhole', 'unreachable', 'prohibit', 'throw', 'nat', 'xresolve'];
/** The error a route of each type gives (fib_props / fib6_prop): a lookup's error names its type. */
const TYPE_ERRORS: Readonly<Record<string, string>> = { blackhole: 'EINVAL', unreachable: 'EHOSTUNREACH', prohibit: 'EACCES', throw: 'EAGAIN' };
const TYPE_OF_ERROR: Readonly<Record<string, string>> = { EHOSTUNREACH: 'unreachable', EACCES: 'prohibit', EINVAL: 'blackhole' };

/** RT_TABLE_* names; others by number. */
export function tableName(id: number): string {
  return id === 254 ? 'main' : id === 255 ? 'local' : id === 253 ? 'default' : String(id);
}


/** What the lookup decided: its result type and error, from what each tracepoint gives. */
export function routeOutcome(r: Pick<RouteRaw, 'family' | 'error' | 'type' | 'noMatch'>): { result: string | null; error: string | null } {
  const type = r.type === null ? null : RTN[r.type] ?? String(r.type);
  if (r.family === 6) {
    if (r.noMatch) return { result: 'unreachable', error: 'ENETUNREACH' };
    return { result: type, error: type === null ? null : TYPE_ERRORS[type] ?? null };
  }
  if (r.error === 0) return { result: type, error: null };
  const error = errnoName(r.error);
  return { result: TYPE_OF_ERROR[error] ?? 'error', error };
}

const ADDR: Readonly<Record<number, 4 | 6>> = { 4: 4, 6: 6 };

export const routeSection = section({
  key: 'route',
  kind: 12,
  header: 'route.h',
  layout: LAYOUT,
  decode: (view, bytes, at): RouteRaw | null => {
    const F = LAYOUT.fields;
    const family = ADDR[bytes[at + F.family]!];
    if (family === undefined) return null;
    const gwFamily = ADDR[bytes[at + F.gw_family]!];
    const plen = bytes[at + F.prefix_len]!;
    const type = bytes[at + F.type]!;
    return {
      family,
      table: view.getUint32(at + F.table, true),
      error: view.getInt32(at + F.error, true),
      type: type === TYPE_UNKNOWN ? null : type,
      gateway: gwFamily === undefined ? null : formatAddress(bytes, at + F.gateway, gwFamily),
      prefix: plen === PREFIX_UNKNOWN ? null : `${formatAddress(bytes, at + F.prefix, family)}/${plen}`,
      oif: view.getUint32(at + F.oif, true),
      iif: view.getUint32(at + F.iif, true),
      mark: view.getUint32(at + F.mark, true),
      noMatch: (bytes[at + F.flags]! & ROUTE_NO_MATCH) !== 0,
    };
  },
  enrich: (r: RouteRaw, ctx, event): Route => {
    const name = (ifindex: number) => (ifindex === 0 || !ctx.ifname || !event ? '' : ctx.ifname(event.netns, ifindex));
    return {
      family: r.family, table: r.table, tableName: tableName(r.table), ...routeOutcome(r),
      oif: r.oif, oifName: name(r.oif), gateway: r.gateway, prefix: r.prefix, iif: r.iif, iifName: name(r.iif), mark: r.mark,
    };
  },
  text: (r: Route) => {
    let out = `route ${escapeText(r.tableName)} ${r.result ?? 'unknown'}`;
    if (r.error !== null && r.result !== 'unreachable' && r.result !== 'prohibit' && r.result !== 'blackhole') out += ` ${r.error}`;
    else if (r.error !== null) out += ` (${r.error})`;
    if (r.gateway !== null) out += ` via ${r.gateway}`;
    if (r.oif !== 0) out += ` dev ${r.oifName !== '' ? escapeText(r.oifName) : `if${r.oif}`}`;
    if (r.prefix !== null) out += ` (${r.prefix})`;
    return out;
  },
  jsonKey: 'route',
  toJson: (r: Route): JsonRoute => ({
    family: r.family, table: r.table, table_name: r.tableName, result: r.result, error: r.error, oif: r.oif, oif_name: r.oifName,
    gateway: r.gateway, prefix: r.prefix, iif: r.iif, iif_name: r.iifName, mark: r.mark,
  }),
  fromJson: (j: JsonRoute): Route => ({
    family: j.family, table: j.table, tableName: j.table_name, result: j.result, error: j.error, oif: j.oif, oifName: j.oif_name,
    gateway: j.gateway, prefix: j.prefix, iif: j.iif, iifName: j.iif_name, mark: j.mark,
  }),
  schema: {
    description: 'With --output-route, at fib:fib_table_lookup and fib6:fib6_table_lookup: the table looked up and what it decided. ' +
      'prefix is null where the kernel does not expose it (IPv4: the tracepoint passes no fib_result); result null where it does not say the type (a nexthop object\'s route).',
    type: 'object',
    properties: {
      family: { enum: [4, 6] },
      table: { $ref: '#/$defs/u32' },
      table_name: { type: 'string' },
      result: { type: ['string', 'null'] },
      error: { type: ['string', 'null'] },
      oif: { $ref: '#/$defs/u32' },
      oif_name: { type: 'string' },
      gateway: { type: ['string', 'null'] },
      prefix: { type: ['string', 'null'] },
      iif: { $ref: '#/$defs/u32' },
      iif_name: { type: 'string' },
      mark: { $ref: '#/$defs/u32' },
    },
    required: ['family', 'table', 'table_name', 'result', 'error', 'oif', 'oif_name', 'gateway', 'prefix', 'iif', 'iif_name', 'mark'],
    additionalProperties: false,
  },
  options: [{
    flags: '--output-route',
    description: 'trace route lookups (fib:fib_table_lookup, fib6:fib6_table_lookup): table, result, error, gateway, device; ' +
      'the filter sees the flow looked up (a header made from it), the event\'s skb is the packet it was made for where it can be told (else 0)',
    live: true,
  }],
});
