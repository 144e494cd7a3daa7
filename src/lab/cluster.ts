/**
 * A small cluster on one kernel, for the tests of merged traces: nodes are
 * network namespaces on an underlay bridge (a namespace of its own), each
 * with one pod behind it (a veth into the pod's namespace, routed by the
 * node), and between the nodes the pod networks go over VXLAN, Geneve, or
 * the underlay itself (plain routes, no tunnel). On request, what a cluster
 * adds: a Service address DNATed on node 1 to the pod on node 2, as
 * kube-proxy does, and an nft drop on node 2. Documentation addresses only;
 * everything lives in the lab's namespaces, so its cleanup removes it all.
 *
 *   underlay  192.0.2.0/24: node k's eth0 is 192.0.2.(10+k), br0 in the underlay namespace joins them
 *   overlay   203.0.113.k on the tunnel devices (VXLAN vx0, one Geneve device per peer)
 *   pods      node k's pod network 198.51.100.(16k)/28: its lxc0 .16k+1, its pod's eth0 .16k+2
 *   Service   203.0.113.200 (ping, and TCP 80 → 8080) on node 1, to node 2's pod
 */
import { execFileSync } from 'node:child_process';
import type { Lab } from './lab.js';

export type Underlay = 'vxlan' | 'geneve' | 'routed';

export const UNDERLAYS: readonly Underlay[] = ['vxlan', 'geneve', 'routed'];

export const CLUSTER = {
  vni: 42,
  vxlanPort: 4789,
  genevePort: 6081,
  service: { addr: '203.0.113.200', port: 80, targetPort: 8080 },
  /** Pods get a smaller MTU than the tunnels, as CNIs set it: no packet of theirs needs fragmenting. */
  podMtu: 1400,
} as const;

export interface ClusterPod {
  /** Its namespace's full name (the lab's tag in front). */
  ns: string;
  addr: string;
}

export interface ClusterNode {
  /** The node's name, as `record --node` gives it: node1, node2, … */
  name: string;
  ns: string;
  /** Its address on the underlay. */
  underlay: string;
  /** Its address inside the tunnels (none on a routed underlay). */
  overlay: string;
  pod: ClusterPod;
  /** The devices its packets to node `peer` (1-based) leave by. */
  tunnelTo(peer: number): string;
}

export interface Cluster {
  underlay: Underlay;
  /** The underlay bridge's namespace. */
  wire: string;
  nodes: ClusterNode[];
}

const underlayAddr = (k: number) => `192.0.2.${10 + k}`;
const overlayAddr = (k: number) => `203.0.113.${k}`;
const podNet = (k: number) => `198.51.100.${16 * k}/28`;
const podGateway = (k: number) => `198.51.100.${16 * k + 1}`;
const podAddr = (k: number) => `198.51.100.${16 * k + 2}`;
/** One Geneve device per peer (Geneve devices have one remote each). */
const genevePeer = (k: number) => `gnv${k}`;
/**
 * Fixed link addresses, so that neighbours are written in, not asked for:
 * no ARP crosses a tunnel or the underlay while a test traces (flannel
 * writes its VXLAN neighbours and forwarding entries the same way).
 */
const mac = (kind: number, k: number, p = 0) => `02:00:00:${kind.toString(16).padStart(2, '0')}:0${k}:0${p}`;
const MAC = { underlay: 1, vxlan: 2, geneve: 3 } as const;

/** Whether this kernel makes devices of the kind (Geneve and VXLAN may be left out of a build). */
export function canMakeLink(kind: 'vxlan' | 'geneve'): boolean {
  const probe = `pp-probe-${process.pid % 100000}`;
  try {
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'ignore' });
    const args = kind === 'vxlan' ? ['id', '1', 'dstport', '4789'] : ['id', '1', 'remote', '192.0.2.1'];
    execFileSync('ip', ['-n', probe, 'link', 'add', 'probe0', 'type', kind, ...args], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    try {
      execFileSync('ip', ['netns', 'del', probe], { stdio: 'ignore' });
    } catch {
      // Not made.
    }
  }
}

/** `count` nodes (2 to 9) on a bridge, a pod behind each, pod networks over `underlay`. */
export function cluster(lab: Lab, underlay: Underlay, count = 3): Cluster {
  if (count < 2 || count > 9) throw new Error(`cluster: ${count} nodes; between 2 and 9`);
  const sh = (ns: string, ...cmd: string[]) => lab.execSync(ns, cmd);
  const wire = lab.netns('wire');
  sh(wire, 'ip', 'link', 'add', 'br0', 'type', 'bridge');
  sh(wire, 'ip', 'link', 'set', 'br0', 'up');
  const ks = Array.from({ length: count }, (_, i) => i + 1);
  const nodes = ks.map((k): ClusterNode => {
    const name = `node${k}`;
    const ns = lab.netns(name);
    lab.veth({ ns, ifname: 'eth0', addrs: [`${underlayAddr(k)}/24`] }, { ns: wire, ifname: name, addrs: [] });
    sh(ns, 'ip', 'link', 'set', 'eth0', 'address', mac(MAC.underlay, k));
    sh(wire, 'ip', 'link', 'set', name, 'master', 'br0');
    sh(ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
    const pod = lab.netns(`${name}-pod`);
    lab.veth({ ns, ifname: 'lxc0', addrs: [`${podGateway(k)}/28`] }, { ns: pod, ifname: 'eth0', addrs: [`${podAddr(k)}/28`] });
    sh(pod, 'ip', 'link', 'set', 'eth0', 'mtu', String(CLUSTER.podMtu));
    sh(pod, 'ip', 'route', 'add', 'default', 'via', podGateway(k));
    const tunnelTo = (peer: number) => (underlay === 'vxlan' ? 'vx0' : underlay === 'geneve' ? genevePeer(peer) : 'eth0');
    return { name, ns, underlay: underlayAddr(k), overlay: underlay === 'routed' ? '' : overlayAddr(k), pod: { ns: pod, addr: podAddr(k) }, tunnelTo };
  });
  for (const [i, node] of nodes.entries()) {
    const k = i + 1;
    const sh1 = (...cmd: string[]) => sh(node.ns, ...cmd);
    if (underlay === 'vxlan') {
      // One multipoint device; each peer's address and forwarding entry written in, as flannel does.
      sh1('ip', 'link', 'add', 'vx0', 'address', mac(MAC.vxlan, k), 'type', 'vxlan', 'id', String(CLUSTER.vni), 'local', node.underlay,
        'dstport', String(CLUSTER.vxlanPort), 'dev', 'eth0', 'nolearning');
      sh1('ip', 'addr', 'add', `${node.overlay}/24`, 'dev', 'vx0');
      sh1('ip', 'link', 'set', 'vx0', 'up');
    }
    for (const [j, peer] of nodes.entries()) {
      if (peer === node) continue;
      const p = j + 1;
      const neigh = (addr: string, lladdr: string, dev: string) =>
        sh1('ip', 'neigh', 'replace', addr, 'lladdr', lladdr, 'dev', dev, 'nud', 'permanent');
      if (underlay === 'vxlan') {
        sh1('bridge', 'fdb', 'append', mac(MAC.vxlan, p), 'dev', 'vx0', 'dst', peer.underlay);
        neigh(peer.overlay, mac(MAC.vxlan, p), 'vx0');
      } else if (underlay === 'geneve') {
        // Point to point: this node's overlay address paired with the peer's on a device per peer.
        const dev = genevePeer(p);
        sh1('ip', 'link', 'add', dev, 'address', mac(MAC.geneve, k, p), 'type', 'geneve', 'id', String(CLUSTER.vni),
          'remote', peer.underlay, 'dstport', String(CLUSTER.genevePort));
        sh1('ip', 'addr', 'add', node.overlay, 'peer', peer.overlay, 'dev', dev);
        sh1('ip', 'link', 'set', dev, 'up');
        neigh(peer.overlay, mac(MAC.geneve, p, k), dev);
      }
      neigh(peer.underlay, mac(MAC.underlay, p), 'eth0');
      const via = underlay === 'routed' ? peer.underlay : peer.overlay;
      sh1('ip', 'route', 'add', podNet(p), 'via', via, 'dev', node.tunnelTo(p));
    }
  }
  return { underlay, wire, nodes };
}

/**
 * The Service on node 1: its address DNATed to node 2's pod (ping, and TCP
 * port 80 to 8080) in prerouting, before the route to node 2 is chosen —
 * the packet leaves node 1 already rewritten, as with kube-proxy.
 */
export function serviceDnat(lab: Lab, c: Cluster): void {
  const s = CLUSTER.service;
  const target = c.nodes[1]!.pod.addr;
  lab.nft(c.nodes[0]!.ns, `table ip pktpath-svc {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr ${s.addr} tcp dport ${s.port} dnat to ${target}:${s.targetPort}
    ip daddr ${s.addr} ip protocol icmp dnat to ${target}
  }
}
`);
}

/** An nft drop on node 2: echo requests forwarded to its pod. */
export function dropOnNode2(lab: Lab, c: Cluster): void {
  lab.nft(c.nodes[1]!.ns, `table inet pktpath-drop {
  chain forward {
    type filter hook forward priority 0; policy accept;
    ip daddr ${c.nodes[1]!.pod.addr} icmp type echo-request counter drop
  }
}
`);
}
