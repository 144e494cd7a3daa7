/** The tunnel section as the probe writes it (probes/include/sections/tunnel.h): decoded, its text and JSON. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAddress } from '../../src/decode/addr.js';
import { decodeEvent } from '../../src/decode/event.js';
import { EVENT_LAYOUT } from '../../src/decode/layout.js';
import { SECTION_DECODERS } from '../../src/output/sections/registry.js';
import { type TunnelInfo, formatTunnel, tunnelSection } from '../../src/output/sections/tunnel.js';
import { recordWith, struct } from '../helpers/sections.js';

const L = tunnelSection.layout;
const TF = EVENT_LAYOUT.tuple.fields;

/** A tunnel section: kind (TUNNEL_*), the VNI or key (null: none), the inner tuple (null: not IP). */
function tunnel(kind: number, vni: number | null, inner: { s: string; d: string; proto: number; dport?: number } | null): Uint8Array {
  return struct(L.size, (v, b) => {
    b[L.fields.kind] = kind;
    if (vni !== null) {
      b[L.fields.has_vni] = 1;
      v.setUint32(L.fields.vni, vni, true);
    }
    if (inner) {
      const s = parseAddress(inner.s)!;
      b.set(s.bytes, L.fields.inner + TF.saddr);
      b.set(parseAddress(inner.d)!.bytes, L.fields.inner + TF.daddr);
      b[L.fields.inner + TF.l3] = s.l3;
      b[L.fields.inner + TF.l4proto] = inner.proto;
      if (inner.dport) {
        v.setUint16(L.fields.inner + TF.sport, 40000, true);
        v.setUint16(L.fields.inner + TF.dport, inner.dport, true);
      }
    }
  });
}

function decoded(body: Uint8Array): TunnelInfo | null | undefined {
  const { view, bytes, at } = recordWith([{ kind: tunnelSection.kind, body }]);
  return decodeEvent(view, bytes, at, SECTION_DECODERS)!.sections?.tunnel as TunnelInfo | null | undefined;
}

test('VXLAN with its VNI and the inner tuple; GRE with a key; IP-in-IP without one', () => {
  const vx = decoded(tunnel(1, 42, { s: '10.0.0.1', d: '10.0.0.2', proto: 1 }))!;
  assert.equal(formatTunnel(vx), 'vxlan vni=42 inner 10.0.0.1->10.0.0.2(icmp)');
  const gre = decoded(tunnel(3, 5, { s: '10.0.0.1', d: '10.0.0.2', proto: 6, dport: 80 }));
  assert.equal(formatTunnel(gre!), 'gre key=5 inner 10.0.0.1:40000->10.0.0.2:80(tcp)');
  const geneve = decoded(tunnel(2, 9, { s: '2001:db8::1', d: '2001:db8::2', proto: 17, dport: 53 }));
  assert.deepEqual([geneve?.kind, geneve?.vni, geneve?.inner?.daddr], ['geneve', 9, '2001:db8::2']);
  assert.deepEqual(decoded(tunnel(4, null, { s: '10.0.0.1', d: '10.0.0.2', proto: 1 })),
    { kind: 'ipip', vni: null, inner: { l3: 4, saddr: '10.0.0.1', daddr: '10.0.0.2', sport: 0, dport: 0, l4proto: 1, tcpFlags: 0 } });
});

test('not a tunnel (kind 0) is no section; an inner frame that is not IP has no inner tuple', () => {
  assert.equal(decoded(tunnel(0, null, null)), null);
  const arp = decoded(tunnel(1, 42, null));
  assert.deepEqual(arp, { kind: 'vxlan', vni: 42, inner: null });
  assert.equal(formatTunnel(arp!), 'vxlan vni=42 inner -');
});

test('JSON: the section and back', () => {
  const t = decoded(tunnel(1, 42, { s: '10.0.0.1', d: '10.0.0.2', proto: 1 }))!;
  const j = tunnelSection.toJson(t);
  assert.deepEqual(j, { kind: 'vxlan', vni: 42, inner: { saddr: '10.0.0.1', daddr: '10.0.0.2', sport: 0, dport: 0, proto: 'icmp', flags: '' } });
  assert.deepEqual(tunnelSection.fromJson(JSON.parse(JSON.stringify(j))), t);
});
