/**
 * A CNI-style node, for the demo and the tests: a host namespace and two pods,
 * each pod's eth0 paired with a host-side veth (lxc-a, lxc-b), the host
 * routing between them. On top, what a CNI would add: a tc program on lxc-a's
 * ingress (tcx link) that sends packets for pod B straight into it with
 * bpf_redirect_peer, a policy program on lxc-b's ingress (legacy
 * `tc filter … bpf da`) that drops UDP to port 9999, and an nft rule in the
 * host that drops forwarded UDP to port 8888.
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
} as const;

export interface CniNode {
  host: string;
  podA: string;
  podB: string;
  /** Program ids of the redirect (tcx) and policy (clsact) programs, 0 where not loaded. */
  redirectId: number;
  policyId: number;
}

export interface CniOptions {
  /** Where the built objects are (probes/build). */
  objects: string;
  redirect?: boolean;
  policy?: boolean;
  nft?: boolean;
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
  return { host, podA, podB, redirectId, policyId };
}
