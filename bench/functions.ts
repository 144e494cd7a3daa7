/**
 * What function probes cost traffic they do not match, beside pktpath's own
 * tracepoints on the same traffic, side by side in one run of one kernel
 * (root; meant for the stock kernels under qemu, where kprobes and fentry
 * are allowed: `npm run bench:kernels`). On a veth between two namespaces of
 * the bench's own, a 64-byte UDP flood (iperf3) with nothing attached, with
 * pktpath's tracepoints, with the same dozen skb functions on the path by each
 * function backend the kernel allows, and with every skb function by
 * kprobe-multi where the kernel has it; a filter matching none of the
 * traffic. The rows alternate over several rounds and the medians are
 * printed: under emulation only the ratios mean anything, and the programs'
 * own nanoseconds (kernel run-time stats) are steadier than the rate.
 * Prints figures; asserts nothing.
 *
 *   node dist/bench/functions.js [seconds per measurement, default 4] [rounds, default 3]
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { enableRunStats, programs } from '../src/bpf/loaded.js';
import { functionBackends } from '../src/kernel/functions.js';
import { Lab, twoHosts } from '../src/lab/lab.js';
import { stopped, whenReady } from './child.js';

const PKTPATH = fileURLToPath(new URL('../../bin/pktpath', import.meta.url));
const SECONDS = Number(process.argv[2] ?? 4);
const ROUNDS = Number(process.argv[3] ?? 3);
/** The UDP flood's way out of A and into B: a dozen skb functions every datagram meets. */
const PATH_FUNCS = '^(ip_output|ip_finish_output2|__dev_queue_xmit|dev_hard_start_xmit|veth_xmit|__netif_rx|netif_receive_skb|' +
  '__netif_receive_skb_core|ip_rcv|ip_rcv_finish|ip_local_deliver|__udp4_lib_rcv|udp_queue_rcv_skb)$';
/** A filter none of the traffic matches: every probe runs it to the end and says no. */
const NO_MATCH = ['udp', 'port', '9'];
/** Attaching hundreds of kprobes or loading a program per function takes minutes under emulation. */
const ATTACH_MS = 600_000;

interface Sample { kpps: number; nsPerPacket: number; nsPerRun: number; programs: number; attached: string }

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? NaN;

async function main(): Promise<void> {
  const backends = functionBackends().filter((b) => b.ok).map((b) => b.backend);
  const observers: Array<{ name: string; args: string[] | null }> = [
    { name: 'nothing attached', args: null },
    { name: 'tracepoints (pktpath\'s default points)', args: ['--attach', 'tracepoints'] },
    ...backends.map((b) => ({ name: `${b}: the path's skb functions`, args: ['--attach', 'functions', '--backend', b, '--filter-func', PATH_FUNCS] })),
    ...(backends.includes('kprobe-multi') ? [{ name: 'kprobe-multi: every skb function', args: ['--attach', 'functions', '--backend', 'kprobe-multi'] }] : []),
  ];
  const lab = new Lab('ppfn');
  try {
    const { a, b } = twoHosts(lab);
    const obs = lab.netns('obs');
    const server = lab.spawn(b, ['iperf3', '-s', '-B', '192.0.2.2', '--forceflush']);
    await new Promise((r) => server.stdout!.once('data', r));
    const udpFlood = async () => {
      const r = await lab.exec(a, ['iperf3', '-c', '192.0.2.2', '-t', String(SECONDS), '-J', '-u', '-b', '0', '-l', '64'], 120_000);
      const s = (JSON.parse(r.stdout) as { end: { sum: { packets: number; lost_packets: number; seconds: number } } }).end.sum;
      return { received: s.packets - s.lost_packets, seconds: s.seconds };
    };
    /** One flood with pktpath started with `args` (null: nothing attached). */
    const measure = async (args: string[] | null): Promise<Sample> => {
      const since = programs().reduce((max, p) => Math.max(max, p.id), 0);
      let stop = async () => {};
      let attached = '';
      if (args) {
        const child = spawn('ip', ['netns', 'exec', obs, PKTPATH, ...args, '--output-file', '/dev/null', ...NO_MATCH], { stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
        await whenReady(child, /attached/, args.join(' '), ATTACH_MS);
        attached = /functions: (\d+) with ([\w-]+)/.exec(err)?.slice(1).join(' by ') ?? 'tracepoints';
        stop = () => stopped(child);
      }
      try {
        // The kernel's run-time stats of pktpath's programs during the flood: what they cost per datagram.
        const stats = enableRunStats();
        const ours = () => programs().filter((p) => p.name.startsWith('pktpath_') && p.id > since);
        const before = new Map(ours().map((p) => [p.id, p]));
        let flood: Awaited<ReturnType<typeof udpFlood>>;
        try {
          flood = await udpFlood();
        } finally {
          stats.close();
        }
        let ns = 0;
        let runs = 0;
        for (const p of ours()) {
          const b = before.get(p.id);
          if (!b) continue;
          ns += Number(p.runTimeNs - b.runTimeNs);
          runs += Number(p.runCount - b.runCount);
        }
        return { kpps: flood.received / flood.seconds / 1e3, nsPerPacket: ns / Math.max(1, flood.received), nsPerRun: ns / Math.max(1, runs),
          programs: before.size, attached };
      } finally {
        await stop();
      }
    };
    const samples = new Map<string, Sample[]>(observers.map((o) => [o.name, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const o of observers) samples.get(o.name)!.push(await measure(o.args));
    }
    const rows = observers.map((o) => {
      const s = samples.get(o.name)!;
      return { name: o.name, attached: s[0]!.attached, programs: s[0]!.programs, kpps: median(s.map((x) => x.kpps)),
        nsPerPacket: median(s.map((x) => x.nsPerPacket)), nsPerRun: median(s.map((x) => x.nsPerRun)) };
    });
    const [base, tracepoints] = [rows[0]!, rows[1]!];
    console.log(`function probes' no-match cost on ${process.env.PKTPATH_GUEST_KERNEL ?? 'this kernel'}: UDP-64 over veth (iperf3), ${SECONDS} s each, ` +
      `rows alternated over ${ROUNDS} rounds, medians`);
    console.log('rate against nothing attached; pktpath\'s programs\' ns per datagram (kernel run-time stats) against the tracepoints\'; ns per program run');
    console.log(`  ${'observer'.padEnd(40)} ${'attached'.padEnd(26)} ${'kpps'.padStart(7)} ${'ratio'.padStart(6)} ${'ns/datagram'.padStart(12)} ${'vs tp'.padStart(6)} ${'ns/run'.padStart(7)}`);
    for (const r of rows) {
      const ours = r.programs > 0;
      console.log(`  ${r.name.padEnd(40)} ${r.attached.padEnd(26)} ${r.kpps.toFixed(1).padStart(7)} ${(r.kpps / base.kpps).toFixed(2).padStart(6)} ` +
        `${(ours ? r.nsPerPacket.toFixed(0) : '-').padStart(12)} ${(ours ? (r.nsPerPacket / tracepoints.nsPerPacket).toFixed(2) : '-').padStart(6)} ` +
        `${(ours ? r.nsPerRun.toFixed(0) : '-').padStart(7)}`);
    }
  } finally {
    lab.cleanup();
  }
}

await main();
