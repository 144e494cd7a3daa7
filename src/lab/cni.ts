/**
 * A CNI-style node, for the demo and the tests: a host namespace and two pods,
 * each pod's eth0 paired with a host-side veth (lxc-a, lxc-b), the host
 * routing between them. On top, what a CNI would add: a tc program on lxc-a's
 * ingress (tcx link) that sends packets for pod B straight into it with
 * bpf_redirect_peer, a policy program on lxc-b's ingress (legacy
 * `tc filter … bpf da`) that drops UDP to port 9999, and an nft rule in the
 * host that drops forwarded UDP to port 8888. On request a third pod set up
 * as routed CNIs set theirs up: a /32 address and a gateway no one owns, that
 * the host-side veth (lxc-c) answers for by proxy ARP — or, with proxy ARP
 * left off, never answers: the pod's packets wait for a neighbour that fails.
 */
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import type { Lab } from './lab.js';
import { holdTcx } from './tcx.js';

export const CNI = {
  podA: { addr: '192.0.2.10', gateway: '192.0.2.1' },
  podB: { addr: '198.51.100.10', gateway: '198.51.100.1' },
  /** Dropped by the policy program at lxc-b's tc ingress. */
  tcDroppedPort: 9999,
  /** Dropped by the host's nft forward chain. */
  nftDroppedPort: 8888,
  nftComment: 'cni: block udp 8888',
  /** The routed pod: its only route is via a gateway address nothing on the node owns. */
  podC: { addr: '203.0.113.10', gateway: '203.0.113.1' },
} as const;

export interface CniNode {
  host: string;
  podA: string;
  podB: string;
  /** Program ids of the redirect (tcx) and policy (clsact) programs, 0 where not loaded. */
  redirectId: number;
  policyId: number;
  /** The routed pod's namespace, when asked for. */
  podC: string | null;
}

export interface CniOptions {
  /** Where the built objects are (probes/build). */
  objects: string;
  redirect?: boolean;
  policy?: boolean;
  nft?: boolean;
  /** The routed /32 pod behind lxc-c; `proxyArp` says whether lxc-c answers for its gateway. */
  routedPod?: { proxyArp: boolean };
}

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function ifindexOf(ns: string, dev: string): number {
  return Number(/^(\d+):/.exec(ip('-n', ns, '-o', 'link', 'show', 'dev', dev))![1]);
}

/**
 * Another agent's program at the front of a host-side veth's tcx chain
 * (`monitor.bpf.o`: decides nothing); resolves with its program id.
 */
export function attachMonitor(lab: Lab, node: CniNode, objects: string, ifname = 'lxc-a'): Promise<{ id: number; detach(): void }> {
  return holdTcx(lab, node.host, { object: path.join(objects, 'monitor.bpf.o'), program: 'cni_monitor', ifname, direction: 'ingress', first: true });
}

export async function cniNode(lab: Lab, o: CniOptions): Promise<CniNode> {
  const host = lab.netns('host');
  const podA = lab.netns('pod-a');
  const podB = lab.netns('pod-b');
  lab.veth({ ns: host, ifname: 'lxc-a', addrs: [`${CNI.podA.gateway}/24`] }, { ns: podA, ifname: 'eth0', addrs: [`${CNI.podA.addr}/24`] });
  lab.veth({ ns: host, ifname: 'lxc-b', addrs: [`${CNI.podB.gateway}/24`] }, { ns: podB, ifname: 'eth0', addrs: [`${CNI.podB.addr}/24`] });
  ip('-n', podA, 'route', 'add', 'default', 'via', CNI.podA.gateway);
  ip('-n', podB, 'route', 'add', 'default', 'via', CNI.podB.gateway);
  lab.execSync(host, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);

  let redirectId = 0;
  if (o.redirect !== false) {
    const rodata = Buffer.alloc(8);
    Buffer.from(CNI.podB.addr.split('.').map(Number)).copy(rodata, 0);
    rodata.writeUInt32LE(ifindexOf(host, 'lxc-b'), 4);
    redirectId = (await holdTcx(lab, host, {
      object: path.join(o.objects, 'redirect_peer.bpf.o'), program: 'cni_redirect', ifname: 'lxc-a', direction: 'ingress', rodata,
    })).id;
  }
  let policyId = 0;
  if (o.policy !== false) {
    lab.execSync(host, ['tc', 'qdisc', 'add', 'dev', 'lxc-b', 'clsact']);
    lab.execSync(host, ['tc', 'filter', 'add', 'dev', 'lxc-b', 'ingress', 'bpf', 'da', 'obj',
      path.join(o.objects, 'policy_drop.bpf.o'), 'sec', 'tc']);
    const shown = lab.execSync(host, ['tc', 'filter', 'show', 'dev', 'lxc-b', 'ingress']);
    policyId = Number(/ id (\d+)/.exec(shown)?.[1] ?? 0);
  }
  if (o.nft !== false) {
    lab.nft(host, `table inet cni {
  chain forward {
    type filter hook forward priority 0; policy accept;
    udp dport ${CNI.nftDroppedPort} counter drop comment "${CNI.nftComment}"
  }
}
`);
  }
  const podC = o.routedPod ? routedPod(lab, host, o.routedPod.proxyArp) : null;
  return { host, podA, podB, redirectId, policyId, podC };
}

/** Pod C: 203.0.113.10/32, its default route via 203.0.113.1 on-link; the host routes to it over lxc-c. */
function routedPod(lab: Lab, host: string, proxyArp: boolean): string {
  const pod = lab.netns('pod-c');
  lab.veth({ ns: host, ifname: 'lxc-c', addrs: [] }, { ns: pod, ifname: 'eth0', addrs: [`${CNI.podC.addr}/32`] });
  ip('-n', pod, 'route', 'add', `${CNI.podC.gateway}/32`, 'dev', 'eth0', 'scope', 'link');
  ip('-n', pod, 'route', 'add', 'default', 'via', CNI.podC.gateway, 'dev', 'eth0');
  ip('-n', host, 'route', 'add', `${CNI.podC.addr}/32`, 'dev', 'lxc-c');
  // Proxy ARP answers for an address the host routes out of another device
  // and does not own: the gateway's route points at a device of its own
  // (a veth pair of the host's own: this kernel may have no dummy device).
  lab.veth({ ns: host, ifname: 'cni-gw', addrs: [] }, { ns: host, ifname: 'cni-gw-peer', addrs: [] });
  ip('-n', host, 'route', 'add', `${CNI.podC.gateway}/32`, 'dev', 'cni-gw');
  // Answered at once, as routed CNIs set it (the default delays each answer up to 0.8 s).
  lab.execSync(host, ['sysctl', '-qw', `net.ipv4.conf.lxc-c.proxy_arp=${proxyArp ? 1 : 0}`, 'net.ipv4.neigh.lxc-c.proxy_delay=0']);
  return pod;
}
