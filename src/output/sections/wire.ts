/**
 * The wire section (--output-wire, probes/include/sections/wire.h; on with
 * `record --node`): what identifies a packet on the wire between nodes, of
 * its IP packet and of the one inside a tunnel: the IPv4 id, the IP length,
 * the L4 identity (TCP sequence, ICMP echo id << 16 | sequence, UDP
 * checksum). `pktpath merge` pairs by them (src/regress/merge/wire.ts).
 * Text: `id=4660 len=84 l4=0x00010001`, then ` inner …` in a tunnel.
 */
import { section } from './section.js';

export interface WireIds {
  /** IPv4's id; null for IPv6. */
  ipId: number | null;
  ipLen: number;
  /** Null where it was not read (another protocol, a later fragment, IPv6 extension headers). */
  l4Id: number | null;
}

export interface Wire {
  outer: WireIds;
  inner: WireIds | null;
}

export interface JsonWireIds {
  ip_id: number | null;
  ip_len: number;
  l4_id: number | null;
}

export interface JsonWire extends JsonWireIds {
  inner: JsonWireIds | null;
}

const IDS = { ip_id: 0, ip_len: 2, l4_id: 4, l3: 8, has_l4: 9 } as const;
const LAYOUT = { struct: 'wire_section', size: 24, fields: { outer: 0, inner: 12 } } as const;

function decodeIds(view: DataView, bytes: Uint8Array, at: number): WireIds | null {
  const l3 = bytes[at + IDS.l3];
  if (l3 !== 4 && l3 !== 6) return null;
  return {
    ipId: l3 === 4 ? view.getUint16(at + IDS.ip_id, true) : null,
    ipLen: view.getUint16(at + IDS.ip_len, true),
    l4Id: bytes[at + IDS.has_l4] ? view.getUint32(at + IDS.l4_id, true) : null,
  };
}

const idsText = (w: WireIds) => `id=${w.ipId ?? '-'} len=${w.ipLen} l4=${w.l4Id === null ? '-' : `0x${w.l4Id.toString(16).padStart(8, '0')}`}`;
const idsJson = (w: WireIds): JsonWireIds => ({ ip_id: w.ipId, ip_len: w.ipLen, l4_id: w.l4Id });
const idsFromJson = (j: JsonWireIds): WireIds => ({ ipId: j.ip_id, ipLen: j.ip_len, l4Id: j.l4_id });

const IDS_SCHEMA = {
  ip_id: { description: 'IPv4\'s id; null for IPv6.', anyOf: [{ $ref: '#/$defs/u16' }, { type: 'null' }] },
  ip_len: { description: 'The IP packet\'s length (IPv6: payload + 40).', $ref: '#/$defs/u16' },
  l4_id: {
    description: 'TCP sequence; ICMP/ICMPv6 echo id << 16 | sequence; UDP checksum; null where not read (another protocol, a later fragment, IPv6 extension headers).',
    anyOf: [{ $ref: '#/$defs/u32' }, { type: 'null' }],
  },
};

export const wireSection = section({
  key: 'wire',
  kind: 14,
  header: 'wire.h',
  layout: LAYOUT,
  decode(view, bytes, at): Wire | null {
    const outer = decodeIds(view, bytes, at + LAYOUT.fields.outer);
    return outer === null ? null : { outer, inner: decodeIds(view, bytes, at + LAYOUT.fields.inner) };
  },
  enrich: (w: Wire) => w,
  text: (w: Wire) => idsText(w.outer) + (w.inner ? ' inner ' + idsText(w.inner) : ''),
  jsonKey: 'wire',
  toJson: (w: Wire): JsonWire => ({ ...idsJson(w.outer), inner: w.inner && idsJson(w.inner) }),
  fromJson: (j: JsonWire): Wire => ({ outer: idsFromJson(j), inner: j.inner === null ? null : idsFromJson(j.inner) }),
  schema: {
    description: 'With --output-wire (on with `record --node`): what identifies the packet on the wire between nodes, and the same of the packet inside a tunnel; `pktpath merge` pairs packets across nodes by it.',
    type: 'object',
    properties: {
      ...IDS_SCHEMA,
      inner: {
        anyOf: [{ type: 'object', properties: IDS_SCHEMA, required: ['ip_id', 'ip_len', 'l4_id'], additionalProperties: false }, { type: 'null' }],
      },
    },
    required: ['ip_id', 'ip_len', 'l4_id', 'inner'],
    additionalProperties: false,
  },
  options: [{
    flags: '--output-wire',
    description: 'what identifies each packet on the wire (IPv4 id, IP length, TCP sequence, ICMP echo id and sequence, UDP checksum; also inside a tunnel): what `pktpath merge` pairs nodes\' traces by',
    live: false,
  }],
});
