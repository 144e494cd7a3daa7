/** Recorded traces written like a veth flood, and pktpath commands timed under GNU time: for bench/regress.ts and bench/show.ts. */
import { spawnSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { fileURLToPath } from 'node:url';

const PKTPATH = fileURLToPath(new URL('../../bin/pktpath', import.meta.url));
const POINTS = [
  ['nf:ipv4:local_out', 'a', 'veth-a'], ['nf:ipv4:post_routing', 'a', 'veth-a'], ['tc:egress', 'a', 'veth-a'],
  ['net_dev_queue', 'a', 'veth-a'], ['net_dev_start_xmit', 'a', 'veth-a'], ['netif_rx', 'b', 'veth-b'],
  ['net_dev_xmit', 'a', 'veth-a'], ['netif_receive_skb', 'b', 'veth-b'], ['tc:ingress', 'b', 'veth-b'],
  ['nf:ipv4:pre_routing', 'b', 'veth-b'], ['nf:ipv4:local_in', 'b', 'veth-b'],
] as const;

/** A trace of about `records` events: 12 per packet, one UDP flow per 64 packets, every 100th packet dropped when `drops`. */
export async function writeTrace(path: string, records: number, drops: boolean): Promise<void> {
  const out = createWriteStream(path);
  const write = (line: string) => (out.write(line + '\n') ? Promise.resolve() : new Promise<void>((r) => out.once('drain', () => r())));
  const packets = Math.ceil(records / (POINTS.length + 1));
  let ns = 0;
  for (let p = 0; p < packets; p++) {
    const skb = `0xffff8881${(0x100000 + (p % 4096) * 0x100).toString(16).padStart(8, '0')}`;
    const tuple = { saddr: '192.0.2.1', daddr: '192.0.2.2', sport: 40000 + Math.floor(p / 64) % 20000, dport: 5201, proto: 'udp', flags: '' };
    const dropped = drops && p % 100 === 0;
    const points = dropped ? POINTS.slice(0, 9) : POINTS;
    for (const [func, netns, iface] of points) {
      ns += 700;
      const time = `2026-12-01T00:00:${String(Math.floor(ns / 1e9) % 60).padStart(2, '0')}.${String(ns % 1e9).padStart(9, '0')}Z`;
      await write(JSON.stringify({
        v: 1, time, skb, cpu: p & 1, process: 'iperf3:4242', pid: 4242, netns: 4026532000, netns_name: netns, mark: 0,
        iface: `${iface}:2`, ifindex: 2, proto: 2048, mtu: 1500, len: 92, tuple, func, probe: { type: 'tracepoint', name: func },
        drop_reason: null, caller: null,
      }));
    }
    const end = dropped ? 'kfree_skb' : 'consume_skb';
    await write(JSON.stringify({
      v: 1, time: '2026-12-01T00:00:59.999999999Z', skb, cpu: 0, process: 'iperf3:4242', pid: 4242, netns: 4026532000,
      netns_name: 'b', mark: 0, iface: 'veth-b:2', ifindex: 2, proto: 2048, mtu: 1500, len: 92, tuple, func: end,
      probe: { type: 'tracepoint', name: end }, drop_reason: dropped ? 'NETFILTER_DROP' : null, caller: dropped ? 'nf_hook_slow+0x9e' : null,
    }));
  }
  await new Promise<void>((resolve) => out.end(() => resolve()));
}

/**
 * Runs a pktpath command (this checkout's, or `pktpath` another's) as its own process under GNU time: wall seconds, CPU seconds (user + system: what the
 * command cost, whatever else the machine runs) and peak RSS as the kernel accounts them.
 */
export function run(args: string[], pktpath = PKTPATH): { seconds: number; cpuSeconds: number; rssMiB: number; code: number | null } {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M %U %S', pktpath, ...args], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  const seconds = (performance.now() - t0) / 1000;
  const [kib, user, sys] = (r.stderr.trim().split('\n').pop() ?? '').split(' ').map(Number);
  return { seconds, cpuSeconds: user! + sys!, rssMiB: kib! / 1024, code: r.status };
}

