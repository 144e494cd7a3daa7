/**
 * `pktpath merge` of per-node traces: `nodes` traces of `records` records
 * each (default 10 × 1,000,000), written here like UDP packets sent from each
 * node to the next one (six sending points on the sender, six receiving ones
 * on the receiver, the wire section on each, the receiver freeing it), 50,000
 * records a second in all, each node's clock a millisecond further off. The merge runs as its own process under GNU time, to
 * /dev/null: wall time, records per second (both passes over the files) and
 * peak RSS. With --against, another checkout's bin/pktpath merges the same
 * traces right after, and the two are compared (ratios: the other's over
 * this one's). The traces are removed after. Prints figures; asserts nothing.
 *
 *   node dist/bench/merge.js [nodes] [records] [--against OTHER/bin/pktpath]
 */
import { createWriteStream, mkdtempSync, rmSync, statSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './traces.js';

const SEND = ['nf:ipv4:local_out', 'nf:ipv4:post_routing', 'tc:egress', 'net_dev_queue', 'net_dev_start_xmit', 'net_dev_xmit'];
const RECEIVE = ['netif_rx', 'netif_receive_skb', 'tc:ingress', 'nf:ipv4:pre_routing', 'nf:ipv4:local_in', 'consume_skb'];
// (The sender's skb is the receiver's too in a lab on one kernel; here each node's skbs are its own.)

const args = process.argv.slice(2);
const against = args.includes('--against') ? args.splice(args.indexOf('--against'), 2)[1] : undefined;
const nodes = Number(args[0] ?? 10);
const records = Number(args[1] ?? 1_000_000);
const dir = mkdtempSync(join(tmpdir(), 'pktpath-bench-merge-'));

function time(ns: number): string {
  return `2026-12-01T00:${String(Math.floor(ns / 60e9) % 60).padStart(2, '0')}:${String(Math.floor(ns / 1e9) % 60).padStart(2, '0')}.${String(ns % 1e9).padStart(9, '0')}Z`;
}

async function writeTraces(): Promise<string[]> {
  const files = Array.from({ length: nodes }, (_, i) => join(dir, `node-${i}.jsonl`));
  const outs: WriteStream[] = files.map((f) => createWriteStream(f));
  const pending: string[][] = outs.map(() => []);
  const flush = async (i: number) => {
    const out = outs[i]!;
    if (!out.write(pending[i]!.join(''))) await new Promise<void>((r) => out.once('drain', () => r()));
    pending[i] = [];
  };
  for (let i = 0; i < nodes; i++) {
    pending[i]!.push(JSON.stringify({ v: 1, type: 'header', pktpath: '0.1.0', kernel: 'Linux 6.18 x86_64', node: `node-${i}`, time: time(0),
      argv: ['record'], command: null, points: [...SEND, ...RECEIVE], notes: [], namespaces: [{ inode: 4026532000, name: 'host', self: true }] }) + '\n');
  }
  // Each packet: 6 records on its sender, 6 on the next node; every node sends as many as it receives.
  const packets = Math.round((records * nodes) / 12);
  let ns = 1e9;
  for (let p = 0; p < packets; p++) {
    const from = p % nodes;
    const to = (from + 1) % nodes;
    const skb = `0xffff8881${(0x100000 + (p % 0xfff000) * 0x100).toString(16).padStart(8, '0').slice(-8)}`;
    const tuple = { saddr: `192.0.2.${from + 1}`, daddr: `192.0.2.${to + 1}`, sport: 40000 + (p % 20000), dport: 5201, proto: 'udp', flags: '' };
    const wire = { ip_id: p & 0xffff, ip_len: 92, l4_id: (p * 2654435761) % 0xffff, inner: null };
    const emit = (node: number, func: string) => {
      // 20 µs apart across all nodes: 50,000 records a second merged, a 2 s window holds 100,000 of them.
      ns += 20_000;
      pending[node]!.push(JSON.stringify({
        v: 1, time: time(ns + node * 1e6), skb, cpu: p & 1, process: 'iperf3:4242', pid: 4242, netns: 4026532000, netns_name: '', mark: 0,
        iface: 'eth0:2', ifindex: 2, proto: 2048, mtu: 1500, len: 92, tuple, func, probe: { type: 'tracepoint', name: func },
        drop_reason: null, caller: null, wire,
      }) + '\n');
    };
    for (const f of SEND) emit(from, f);
    for (const f of RECEIVE) emit(to, f);
    if (p % 512 === 511) for (let i = 0; i < nodes; i++) await flush(i);
  }
  for (let i = 0; i < nodes; i++) {
    await flush(i);
    await new Promise<void>((resolve) => outs[i]!.end(() => resolve()));
  }
  return files;
}

try {
  const t0 = performance.now();
  const files = await writeTraces();
  const bytes = files.reduce((n, f) => n + statSync(f).size, 0);
  console.log(`merge: ${nodes} traces × ~${records.toLocaleString('en')} records (${(bytes / 2 ** 30).toFixed(2)} GiB) written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const total = nodes * records;
  const rate = (s: number) => Math.round(total / s).toLocaleString('en');
  const measure = (who: string, pktpath?: string) => {
    const r = run(['merge', ...files, '--out', '/dev/null'], pktpath);
    console.log(`merge (${who}): ${r.seconds.toFixed(1)} s wall (${rate(r.seconds)} records/s), ${r.cpuSeconds.toFixed(1)} s CPU (${rate(r.cpuSeconds)} records/s of one core), ` +
      `two passes over the files; peak RSS ${r.rssMiB.toFixed(0)} MiB; exit ${r.code}`);
    return r;
  };
  const r = measure('this checkout');
  if (against !== undefined) {
    const o = measure(against, against);
    console.log(`merge: ${against} over this checkout: wall ×${(o.seconds / r.seconds).toFixed(2)}, CPU ×${(o.cpuSeconds / r.cpuSeconds).toFixed(2)}, ` +
      `peak RSS ×${(o.rssMiB / r.rssMiB).toFixed(2)}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
