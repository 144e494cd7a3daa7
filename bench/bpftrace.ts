/**
 * bpftrace beside pktpath in the benchmarks (Debian's, set up by `npm run
 * bench`): the same tracepoints, a script reading the IP header of each skb.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { whenReady } from './child.js';

/** The skb tracepoints both tools observe. */
export const BPFTRACE_POINTS = ['net:net_dev_queue', 'net:netif_receive_skb', 'net:net_dev_xmit', 'net:netif_rx', 'skb:consume_skb', 'skb:kfree_skb'];

/** An IPv4 address as bpftrace reads `iphdr.daddr` on a little-endian machine. */
const daddrWord = (a: string) => a.split('.').reduceRight((w, b) => w * 256 + Number(b), 0);

/**
 * A script over BPFTRACE_POINTS for IP protocol `proto` to `daddr`: `action`
 * runs for each match (a count for the no-match cost, a printf for every event).
 */
export function bpftraceScript(proto: number, daddr: string, action: string): string {
  return `${BPFTRACE_POINTS.map((p) => `tracepoint:${p}`).join(', ')} { $s = (struct sk_buff *)args->skbaddr; ` +
    `$ip = (struct iphdr *)($s->head + $s->network_header); if ($ip->protocol == ${proto} && $ip->daddr == ${daddrWord(daddr)}) { ${action} } }`;
}

export function hasBpftrace(): boolean {
  try {
    execFileSync('bpftrace', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** bpftrace needs tracefs: mounted for it when it is not, and unmounted after. */
export function mountTracefs(): () => void {
  if (existsSync('/sys/kernel/tracing/events')) return () => {};
  execFileSync('mount', ['-t', 'tracefs', 'nodev', '/sys/kernel/tracing']);
  return () => execFileSync('umount', ['/sys/kernel/tracing']);
}

/** bpftrace running `script`, once its probes are attached. */
export async function startBpftrace(script: string): Promise<ChildProcess> {
  const child = spawn('bpftrace', ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  await whenReady(child, /Attaching \d+ probes/, 'bpftrace');
  return child;
}
