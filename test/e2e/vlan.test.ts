/**
 * VLAN-tagged frames on real traffic: two namespaces joined by two veth pairs,
 * one carrying 802.1Q id 100, the other QinQ (802.1ad id 200 outside 802.1Q
 * id 100), tagged as VLAN subinterfaces tag them on a veth (src/lab/vlan.ts):
 * the outer tag offloaded into the skb's metadata, QinQ's inner one in the
 * frame. A third, 802.1Q id 300 on a VXLAN device, which offloads no tag: the
 * stack pushes it into the frame before the device sends it, leaving the
 * network header at the IP header, and the frame comes out of the tunnel
 * tagged. Every point that sees a tagged frame gives its tuple and its ids.
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Lab } from '../../src/lab/lab.js';
import { tagDevice } from '../../src/lab/vlan.js';
import { root } from '../helpers/probe-btf.js';
import { type JsonEvent, startTracer, waitNoPrograms } from '../helpers/tracer.js';

const lab = new Lab();
let A = '';
let B = '';
const objects = join(root, 'probes/build');
const FLOWS = [
  { name: '802.1Q', a: 'vq-a', b: 'vq-b', net: '192.0.2', tags: { id: 100 }, ids: [100] },
  { name: 'QinQ', a: 'qq-a', b: 'qq-b', net: '198.51.100', tags: { id: 100, outer: 200 }, ids: [200, 100] },
  { name: '802.1Q on VXLAN', a: 'vx0', b: 'vx0', net: '203.0.113', tags: { id: 300 }, ids: [300] },
] as const;

before(async () => {
  A = lab.netns('a');
  B = lab.netns('b');
  // IPv4 alone, neighbours known: every frame of the test is an IP packet of its pings (no ARP, no IPv6 chatter).
  for (const ns of [A, B]) lab.execSync(ns, ['sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  for (const f of FLOWS) {
    if (f.a === 'vx0') {
      // Over the 802.1Q veth: its underlay packets are tagged 100 on their way.
      for (const [ns, local, remote, addr] of [[A, '192.0.2.1', '192.0.2.2', `${f.net}.1/24`], [B, '192.0.2.2', '192.0.2.1', `${f.net}.2/24`]] as const) {
        lab.execSync(ns, ['ip', 'link', 'add', 'vx0', 'type', 'vxlan', 'id', '42', 'local', local, 'remote', remote, 'dstport', '4789']);
        lab.execSync(ns, ['ip', 'addr', 'add', addr, 'dev', 'vx0']);
        lab.execSync(ns, ['ip', 'link', 'set', 'vx0', 'up']);
      }
    } else {
      lab.veth({ ns: A, ifname: f.a, addrs: [`${f.net}.1/24`] }, { ns: B, ifname: f.b, addrs: [`${f.net}.2/24`] });
    }
    const mac = (ns: string, dev: string) => /link\/ether (\S+)/.exec(lab.execSync(ns, ['ip', 'link', 'show', 'dev', dev]))![1]!;
    lab.execSync(A, ['ip', 'neigh', 'replace', `${f.net}.2`, 'lladdr', mac(B, f.b), 'dev', f.a, 'nud', 'permanent']);
    lab.execSync(B, ['ip', 'neigh', 'replace', `${f.net}.1`, 'lladdr', mac(A, f.a), 'dev', f.b, 'nud', 'permanent']);
    await tagDevice(lab, objects, A, f.a, f.tags);
    await tagDevice(lab, objects, B, f.b, f.tags);
  }
});
after(() => lab.cleanup());
afterEach(async () => {
  assert.deepEqual(await waitNoPrograms(), [], 'programs of pktpath left loaded');
});

async function trace(args: string[]): Promise<JsonEvent[]> {
  const t = await startTracer(['--filter-netns', B, ...args]);
  const pings = await Promise.all(FLOWS.map((f) => lab.exec(A, ['ping', '-c', '2', '-i', '0.2', '-W', '2', `${f.net}.2`])));
  const r = await t.stop();
  for (const p of pings) assert.equal(p.code, 0, p.stdout + p.stderr);
  assert.equal(r.code, 0, r.stderr);
  return r.events;
}

test('tagged frames carry their tuple and VLAN ids at every point, the tag offloaded or in the frame', async () => {
  // Local messages in B (pktpath's own netlink, following B's devices) have neither protocol nor device.
  const events = (await trace(['--output-tuple'])).filter((e) => e.proto !== 0 || e.ifindex !== 0);
  const where = (e: JsonEvent) => `${e.func}@${e.iface} proto 0x${e.proto.toString(16)} vlan ${JSON.stringify(e.vlan)}`;
  // Every frame is a ping's: each event has its tuple.
  const without = events.filter((e) => e.tuple === null);
  assert.deepEqual(without.map(where), [], 'events without a tuple');
  for (const f of FLOWS) {
    const flow = events.filter((e) => e.tuple!.saddr.startsWith(f.net + '.'));
    assert.ok(flow.length > 0, `no events of the ${f.name} pings`);
    const tagged = flow.filter((e) => e.vlan !== undefined);
    for (const e of tagged) assert.deepEqual(e.vlan, f.ids, where(e));
    // Received tagged (before the tags come off at tc ingress) and sent tagged (after they go on at tc egress).
    const points = new Set(tagged.map((e) => `${e.func}:${e.tuple!.daddr === `${f.net}.2` ? 'request' : 'reply'}`));
    for (const p of ['netif_receive_skb:request', 'net_dev_start_xmit:reply']) assert.ok(points.has(p), `${f.name}: no tagged ${p} in ${[...points].join(', ')}`);
  }
  // QinQ's inner tag and the VXLAN device's are in the frame: skb->protocol is 802.1Q there, and the tuple
  // is read behind the tags. The single tag on the veth never is.
  const inFrame = events.filter((e) => e.proto === 0x8100);
  for (const net of ['198.51.100.', '203.0.113.']) {
    assert.ok(inFrame.filter((e) => e.tuple!.saddr.startsWith(net)).length >= 4, `${net}x: tags in the frame\n${inFrame.map(where).join('\n')}`);
  }
  assert.ok(inFrame.every((e) => !e.tuple!.saddr.startsWith('192.0.2.')), inFrame.map(where).join('\n'));
});
