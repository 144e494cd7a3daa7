/**
 * The tunnel section (--output-tunnel, probes/include/sections/tunnel.h): for
 * a VXLAN, Geneve, GRE or IP-in-IP packet, the probe writes what encapsulates
 * it, its VNI or GRE key, and the inner packet's tuple. Text:
 * `vxlan vni=42 inner 10.0.0.1->10.0.0.2(icmp)`.
 */
import { type Tuple, decodeTuple } from '../../decode/tuple.js';
import { EVENT_LAYOUT } from '../../decode/layout.js';
import { escapeText } from '../escape.js';
import { type JsonTuple, formatTuple, jsonTuple, tupleFromJson } from '../tuple.js';
import { section } from './section.js';

export type TunnelKind = 'vxlan' | 'geneve' | 'gre' | 'ipip';

export interface TunnelInfo {
  kind: TunnelKind;
  /** VXLAN and Geneve: the VNI; GRE: the key, when it has one; null otherwise. */
  vni: number | null;
  /** The inner packet's tuple; null when it is not IP (ARP inside VXLAN). */
  inner: Tuple | null;
}

export interface JsonTunnel {
  kind: TunnelKind;
  /** VXLAN/Geneve VNI, GRE key; null without one. */
  vni: number | null;
  inner: JsonTuple | null;
}

/** TUNNEL_* of probes/include/tunnel.h, by number. */
const KINDS: ReadonlyArray<TunnelKind | undefined> = [undefined, 'vxlan', 'geneve', 'gre', 'ipip'];
const LAYOUT = { struct: 'tunnel_section', size: 48, fields: { kind: 0, has_vni: 1, vni: 4, inner: 8 } } as const;

export function formatTunnel(t: TunnelInfo): string {
  let s = t.kind;
  if (t.vni !== null) s += (t.kind === 'gre' ? ' key=' : ' vni=') + t.vni;
  return escapeText(s) + ' inner ' + (t.inner === null ? '-' : formatTuple(t.inner, { tcpFlags: false }));
}

export const tunnelSection = section({
  key: 'tunnel',
  kind: 10,
  header: 'tunnel.h',
  layout: LAYOUT,
  decode(view, bytes, at): TunnelInfo | null {
    const kind = KINDS[bytes[at + LAYOUT.fields.kind]!];
    if (kind === undefined) return null;
    const inner = at + LAYOUT.fields.inner;
    return {
      kind,
      vni: bytes[at + LAYOUT.fields.has_vni] ? view.getUint32(at + LAYOUT.fields.vni, true) : null,
      inner: bytes[inner + EVENT_LAYOUT.tuple.fields.l3] ? decodeTuple(view, bytes, inner) : null,
    };
  },
  enrich: (t: TunnelInfo) => t,
  text: formatTunnel,
  jsonKey: 'tunnel',
  toJson: (t: TunnelInfo): JsonTunnel => ({ kind: t.kind, vni: t.vni, inner: jsonTuple(t.inner) }),
  fromJson: (t: JsonTunnel): TunnelInfo => ({ kind: t.kind, vni: t.vni, inner: t.inner === null ? null : tupleFromJson(t.inner) }),
  schema: {
    description: 'With --output-tunnel, on encapsulated packets: the tunnel (VXLAN, Geneve, GRE, IP-in-IP), its VNI or GRE key, and the inner tuple.',
    type: 'object',
    properties: {
      kind: { enum: ['vxlan', 'geneve', 'gre', 'ipip'] },
      vni: { anyOf: [{ $ref: '#/$defs/u32' }, { type: 'null' }] },
      inner: { anyOf: [{ $ref: '#/$defs/tuple' }, { type: 'null' }] },
    },
    required: ['kind', 'vni', 'inner'],
    additionalProperties: false,
  },
  options: [{
    flags: '--output-tunnel',
    description: 'for VXLAN, Geneve, GRE and IP-in-IP packets: the tunnel, its VNI or key, and the inner tuple (the probes read them from the packet)',
    live: false,
  }],
});
