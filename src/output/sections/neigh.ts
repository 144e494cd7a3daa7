/**
 * The neighbour section (--output-neigh, probes/include/sections/neigh.h): one
 * step of ARP or NDP resolution at a neigh:* tracepoint.
 * Text: `neigh 192.0.2.1 dev veth0 INCOMPLETE→FAILED probes=3`.
 */
import { formatAddress } from '../../decode/addr.js';
import { escapeText } from '../escape.js';
import { errnoName } from '../../bpf/errors.js';
import { section } from './section.js';

export type NeighEventName = 'create' | 'update' | 'update_done' | 'timer' | 'send_done' | 'send_dead' | 'release';

export interface NeighRaw {
  event: NeighEventName;
  family: 4 | 6;
  address: string;
  ifindex: number;
  lladdr: string | null;
  state: number;
  oldState: number | null;
  probes: number;
  error: number | null;
}

export interface Neigh {
  event: NeighEventName;
  family: 4 | 6;
  address: string;
  ifindex: number;
  iface: string;
  lladdr: string | null;
  state: string;
  oldState: string | null;
  probes: number;
  error: string | null;
}

export interface JsonNeigh {
  event: NeighEventName;
  family: 4 | 6;
  address: string;
  ifindex: number;
  iface: string;
  lladdr: string | null;
  state: string;
  old_state: string | null;
  probes: number;
  error: string | null;
}

const LAYOUT = {
  struct: 'neigh_section', size: 48,
  fields: { address: 0, lladdr: 16, ifindex: 24, error: 28, probes: 32, event: 36, family: 37, state: 38, old_state: 39, lladdr_len: 40, flags: 41 },
} as const;
const HAS_OLD_STATE = 1;
const HAS_ERROR = 2;

/** enum neigh_event by number. */
const EVENTS: readonly NeighEventName[] = ['create', 'update', 'update_done', 'timer', 'send_done', 'send_dead', 'release'];
/** NUD_* bits (include/uapi/linux/neighbour.h), lowest first. */
const NUD = ['INCOMPLETE', 'REACHABLE', 'STALE', 'DELAY', 'PROBE', 'FAILED', 'NOARP', 'PERMANENT'];

/** NUD_* names of a state: one bit each, NONE for none. */
export function nudName(state: number): string {
  const names = NUD.filter((_, i) => state & (1 << i));
  return names.length === 0 ? 'NONE' : names.join('|');
}

const hex = (b: number) => b.toString(16).padStart(2, '0');

export const neighSection = section({
  key: 'neigh',
  kind: 13,
  header: 'neigh.h',
  layout: LAYOUT,
  decode: (view, bytes, at): NeighRaw | null => {
    const F = LAYOUT.fields;
    const event = EVENTS[bytes[at + F.event]! - 1];
    const fam = bytes[at + F.family];
    if (event === undefined || (fam !== 4 && fam !== 6)) return null;
    const flags = bytes[at + F.flags]!;
    const lllen = Math.min(bytes[at + F.lladdr_len]!, 8);
    return {
      event,
      family: fam,
      address: formatAddress(bytes, at + F.address, fam),
      ifindex: view.getUint32(at + F.ifindex, true),
      lladdr: lllen === 0 ? null : Array.from(bytes.subarray(at + F.lladdr, at + F.lladdr + lllen), hex).join(':'),
      state: bytes[at + F.state]!,
      oldState: flags & HAS_OLD_STATE ? bytes[at + F.old_state]! : null,
      probes: view.getUint32(at + F.probes, true),
      error: flags & HAS_ERROR ? view.getInt32(at + F.error, true) : null,
    };
  },
  enrich: (n: NeighRaw, ctx, event): Neigh => ({
    event: n.event, family: n.family, address: n.address, ifindex: n.ifindex,
    iface: ctx.ifname && event ? ctx.ifname(event.netns, n.ifindex) : '',
    lladdr: n.lladdr, state: nudName(n.state), oldState: n.oldState === null ? null : nudName(n.oldState), probes: n.probes,
    // Positive: not an error (neigh_event_send_done's 1: the packet waits for the resolution).
    error: n.error === null || n.error >= 0 ? null : errnoName(n.error),
  }),
  text: (n: Neigh) => {
    let out = `neigh ${n.event} ${n.address} dev ${n.iface !== '' ? escapeText(n.iface) : `if${n.ifindex}`} `;
    out += n.oldState !== null ? `${n.oldState}→${n.state}` : n.state;
    if (n.lladdr !== null) out += ` lladdr ${n.lladdr}`;
    out += ` probes=${n.probes}`;
    if (n.error !== null) out += ` ${n.error}`;
    return out;
  },
  jsonKey: 'neigh',
  toJson: (n: Neigh): JsonNeigh => ({
    event: n.event, family: n.family, address: n.address, ifindex: n.ifindex, iface: n.iface, lladdr: n.lladdr, state: n.state,
    old_state: n.oldState, probes: n.probes, error: n.error,
  }),
  fromJson: (j: JsonNeigh): Neigh => ({
    event: j.event, family: j.family, address: j.address, ifindex: j.ifindex, iface: j.iface, lladdr: j.lladdr, state: j.state,
    oldState: j.old_state, probes: j.probes, error: j.error,
  }),
  schema: {
    description: 'With --output-neigh, at the neigh:* tracepoints: the neighbour (ARP, NDP) entry and its state; ' +
      'old_state where the point has the state before it (update), error where the point carries one.',
    type: 'object',
    properties: {
      event: { enum: [...EVENTS] },
      family: { enum: [4, 6] },
      address: { type: 'string' },
      ifindex: { $ref: '#/$defs/u32' },
      iface: { type: 'string' },
      lladdr: { type: ['string', 'null'] },
      state: { type: 'string' },
      old_state: { type: ['string', 'null'] },
      probes: { $ref: '#/$defs/u32' },
      error: { type: ['string', 'null'] },
    },
    required: ['event', 'family', 'address', 'ifindex', 'iface', 'lladdr', 'state', 'old_state', 'probes', 'error'],
    additionalProperties: false,
  },
  options: [
    {
      flags: '--output-neigh',
      description: 'trace neighbour resolution (ARP, NDP: the neigh:* tracepoints): address, device, state changes, probes; the filter ' +
        'sees a header whose destination is the neighbour\'s address (the next hop), the event\'s skb is the packet being sent where it can be told (else 0)',
      live: true,
    },
    {
      flags: '--output-neigh-all',
      description: 'with --output-neigh: every neighbour event of the traced namespaces, whatever the filter',
      live: true,
    },
  ],
});
