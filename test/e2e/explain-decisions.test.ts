/**
 * `pktpath explain` on real packets whose fate the kernel's routing decided:
 * a router namespace between a client and a server that does not forward,
 * has no route, filters by reverse path or has a smaller MTU (on a veth, and
 * under a VXLAN tunnel), and a routed pod whose gateway nobody answers for
 * (and, with proxy ARP, the host side does). Each records a trace with
 * `--explain` and checks the first line explain prints; a working exchange
 * through the router is told nothing.
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CNI, cniNode } from '../../src/lab/cni.js';
import { Lab } from '../../src/lab/lab.js';
import { root } from '../helpers/probe-btf.js';
import { waitNoPrograms } from '../helpers/tracer.js';
import { firstLine, inNs, recordAndExplain as recordAndExplainIn } from '../helpers/explained.js';

const PEER = join(root, 'dist/src/lab/peer.js');
const lab = new Lab('ex3d');
// client 192.0.2.130 — 192.0.2.129 router 198.51.100.129 — 198.51.100.130 server
const CLIENT = '192.0.2.130';
const ROUTER_IN = '192.0.2.129';
const ROUTER_OUT = '198.51.100.129';
const SERVER = '198.51.100.130';
let C = '';
let R = '';
let S = '';
const dir = mkdtempSync(join(tmpdir(), 'pktpath-explain-decisions-'));

before(() => {
  C = lab.netns('c');
  R = lab.netns('r');
  S = lab.netns('s');
  lab.veth({ ns: C, ifname: 'veth-c', addrs: [`${CLIENT}/28`] }, { ns: R, ifname: 'veth-r0', addrs: [`${ROUTER_IN}/28`] });
  lab.veth({ ns: R, ifname: 'veth-r1', addrs: [`${ROUTER_OUT}/28`] }, { ns: S, ifname: 'veth-s', addrs: [`${SERVER}/28`] });
  lab.execSync(C, ['ip', 'route', 'add', 'default', 'via', ROUTER_IN]);
  lab.execSync(S, ['ip', 'route', 'add', 'default', 'via', ROUTER_OUT]);
  sysctl(R, 'net.ipv4.ip_forward=1');
});
after(() => {
  lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  assert.deepEqual(await waitNoPrograms(), [], 'programs of pktpath left loaded');
});

function sysctl(ns: string, ...settings: string[]): void {
  lab.execSync(ns, ['sysctl', '-qw', ...settings]);
}

/** Records `shell` with `--explain`, narrowed to `namespaces`, then explains the trace. */
const recordAndExplain = (name: string, namespaces: string[], filter: string, shell: string) =>
  recordAndExplainIn(dir, name, ['--explain', ...namespaces.flatMap((n) => ['--filter-netns', n]), filter], shell);
/** One ping that may fail: the trace, not ping's status, is what is checked. */
const pingOnce = (ns: string, args: string) => `${inNs(ns, `ping -c 1 -W 1 ${args}`)} >/dev/null; true`;
/** The router lab's namespaces, which pktpath is narrowed to. */
const routed = () => [C, R, S];

test('forwarding disabled: the router takes the ping in and sends it nowhere', async () => {
  sysctl(R, 'net.ipv4.ip_forward=0');
  try {
    const { text } = await recordAndExplain('forwarding', routed(), `icmp and host ${SERVER}`, pingOnce(C, SERVER));
    assert.equal(firstLine(text), `forwarding-disabled: not forwarded: net.ipv4.ip_forward=0 and forwarding=0 on veth-r0 in ${R}`);
  } finally {
    sysctl(R, 'net.ipv4.ip_forward=1');
  }
});

test('no route: the router has none to the destination, then an unreachable one', async () => {
  const far = '203.0.113.140';
  const none = await recordAndExplain('no-route', routed(), `icmp and host ${far}`, pingOnce(C, far));
  assert.equal(firstLine(none.text), `no-route: no route to ${far} in ${R}`);
  lab.execSync(R, ['ip', 'route', 'add', 'unreachable', `${far}/32`]);
  try {
    const unreachable = await recordAndExplain('unreachable', routed(), `icmp and host ${far}`, pingOnce(C, far));
    assert.equal(firstLine(unreachable.text), `no-route: no route to ${far} in ${R}`);
  } finally {
    lab.execSync(R, ['ip', 'route', 'del', 'unreachable', `${far}/32`]);
  }
});

test('rp_filter: strict drops a source routed back elsewhere, loose one not routed at all', async () => {
  // The client sends from addresses of its own that the router's routes do not lead back to through veth-r0.
  const elsewhere = '198.51.100.140';
  const nowhere = '203.0.113.150';
  lab.execSync(C, ['ip', 'addr', 'add', `${elsewhere}/32`, 'dev', 'lo']);
  lab.execSync(C, ['ip', 'addr', 'add', `${nowhere}/32`, 'dev', 'lo']);
  try {
    sysctl(R, 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.veth-r0.rp_filter=1');
    const strict = await recordAndExplain('rp-strict', routed(), `icmp and host ${SERVER}`, pingOnce(C, `-I ${elsewhere} ${SERVER}`));
    assert.equal(firstLine(strict.text), `rp-filter: dropped by reverse-path filtering on veth-r0 in ${R} (rp_filter=1, strict): the way back to ${elsewhere} is not through veth-r0`);
    sysctl(R, 'net.ipv4.conf.veth-r0.rp_filter=2');
    const loose = await recordAndExplain('rp-loose', routed(), `icmp and host ${SERVER}`, pingOnce(C, `-I ${nowhere} ${SERVER}`));
    assert.equal(firstLine(loose.text), `rp-filter: dropped by reverse-path filtering on veth-r0 in ${R} (rp_filter=2, loose): the way back to ${nowhere} is not through veth-r0`);
  } finally {
    sysctl(R, 'net.ipv4.conf.veth-r0.rp_filter=0');
    lab.execSync(C, ['ip', 'addr', 'flush', 'dev', 'lo']);
    lab.execSync(C, ['ip', 'link', 'set', 'lo', 'up']);
  }
});

test('MTU: the router\'s way out is smaller than a packet that may not be fragmented', async () => {
  lab.execSync(R, ['ip', 'link', 'set', 'veth-r1', 'mtu', '1280']);
  try {
    const { text } = await recordAndExplain('mtu', routed(), `icmp and host ${SERVER}`, pingOnce(C, `-M do -s 1400 ${SERVER}`));
    assert.equal(firstLine(text), `mtu: too big for veth-r1 in ${R}: 1428 bytes, mtu 1280`);
  } finally {
    lab.execSync(R, ['ip', 'link', 'set', 'veth-r1', 'mtu', '1500']);
  }
});

test('MTU in a tunnel: VXLAN (df set) over an underlay smaller than the tunnel\'s MTU', async () => {
  const [inner, far] = ['203.0.113.161', '203.0.113.162'];
  const vxlan = (ns: string, local: string, remote: string, dev: string, addr: string) => {
    lab.execSync(ns, ['ip', 'link', 'add', 'vx0', 'type', 'vxlan', 'id', '42', 'local', local, 'remote', remote, 'dstport', '4789', 'dev', dev, 'df', 'set']);
    lab.execSync(ns, ['ip', 'addr', 'add', `${addr}/30`, 'dev', 'vx0']);
    lab.execSync(ns, ['ip', 'link', 'set', 'vx0', 'up']);
  };
  vxlan(R, ROUTER_OUT, SERVER, 'veth-r1', inner);
  try {
    vxlan(S, SERVER, ROUTER_OUT, 'veth-s', far);
    // vx0 took its MTU (1450) from the underlay before the underlay shrank: the encapsulated packet no longer fits.
    lab.execSync(R, ['ip', 'link', 'set', 'veth-r1', 'mtu', '1280']);
    // A small ping first resolves the tunnel's neighbours: the ARP inside the tunnel, which the filter leaves
    // out once decapsulated, would otherwise look like outer packets that stopped at veth-s.
    lab.execSync(C, ['ping', '-c', '1', '-W', '5', far]);
    const { text } = await recordAndExplain('mtu-vxlan', routed(), `host ${far} or udp port 4789`, pingOnce(C, `-M do -s 1400 ${far}`));
    assert.equal(firstLine(text), `mtu: too big for veth-r1 in ${R}: 1478 bytes, mtu 1280`);
    assert.match(text, new RegExp(`icmp_send: ${ROUTER_OUT.replace(/\./g, '\\.')} is told`));
  } finally {
    lab.execSync(R, ['ip', 'link', 'set', 'veth-r1', 'mtu', '1500']);
    for (const ns of [R, S]) lab.execSync(ns, ['sh', '-c', 'ip link del vx0 2>/dev/null; true']);
  }
});

test('no false causes: ping, UDP and TCP through the router are told nothing', async () => {
  const servers = [lab.spawn(S, [process.execPath, PEER, 'udp-serve', '47105']), lab.spawn(S, [process.execPath, PEER, 'tcp-serve', '47106'])];
  await Promise.all(servers.map((s) => new Promise((resolve) => s.stdout!.once('data', resolve))));
  const traffic = [
    `${inNs(C, `ping -c 2 -i 0.2 -W 1 ${SERVER}`)} >/dev/null`,
    inNs(C, `${process.execPath} ${PEER} udp-send ${SERVER} 47105 hello`),
    inNs(C, `${process.execPath} ${PEER} tcp-connect ${SERVER} 47106 hello`),
  ].join(' && ');
  const { text, json } = await recordAndExplain('working', routed(), `host ${SERVER}`, traffic);
  assert.deepEqual(json, [], text);
  assert.match(text, /^nothing to explain/);
  assert.ok(readFileSync(join(dir, 'working.jsonl'), 'utf8').split('\n').length > 50, 'the working exchange was traced');
});

test('neighbour failed: a routed pod whose gateway nobody answers for; with proxy ARP, answered', async () => {
  for (const proxyArp of [false, true]) {
    const cni = new Lab(proxyArp ? 'ex3d-p' : 'ex3d-n');
    try {
      const node = await cniNode(cni, { objects: join(root, 'probes/build'), nft: false, redirect: false, policy: false, routedPod: { proxyArp } });
      const podC = node.podC!;
      // Without an answer the kernel probes three times, a second apart, before the entry fails.
      const ping = `${inNs(podC, `ping -c 1 -W 5 ${CNI.podA.addr}`)} >/dev/null; true`;
      const { text, json } = await recordAndExplain(`neigh-${proxyArp}`, [node.host, podC, node.podA], `icmp and host ${CNI.podA.addr}`, ping);
      if (!proxyArp) {
        assert.equal(firstLine(text), `neigh-failed: no neighbour answered for ${CNI.podC.gateway} on eth0 in ${podC} (FAILED after 3 probes)`);
        assert.match(text, new RegExp(`proxy_arp=0 on lxc-c`));
      } else {
        // The host side answered with its own address for one it does not have: told once, and nothing failed.
        const lladdr = /link\/ether ([0-9a-f:]+)/.exec(cni.execSync(node.host, ['ip', 'link', 'show', 'lxc-c']))![1];
        assert.deepEqual(json.map((e) => e['cause']), ['proxy-arp'], text);
        assert.equal(firstLine(text), `proxy-arp: ${CNI.podC.gateway} was answered by proxy ARP: lxc-c in ${node.host} (proxy_arp=1) answered with its own address ${lladdr}`);
        const trace = readFileSync(join(dir, `neigh-${proxyArp}.jsonl`), 'utf8');
        assert.match(trace, new RegExp(`"netns_name":"${podC}"[^\n]*"saddr":"${CNI.podA.addr}","daddr":"${CNI.podC.addr}"`), 'the reply came back to pod C');
      }
    } finally {
      cni.cleanup();
    }
  }
});
