/**
 * What observing costs traffic that is not traced (root). Side by side in
 * one run, on the same veth between two namespaces of the bench's own:
 * iperf3 TCP throughput and 64-byte UDP rate with nothing attached, with the
 * floor (pktpath's probes built to return at once: the kernel's dispatch
 * alone), with pktpath (every family, and tracepoints only; a filter matching
 * none of the traffic), with tcpdump writing one veth, with bpftrace where it
 * is installed, and with nothing again. During pktpath's UDP run, each of its
 * programs' nanoseconds per run from the kernel's run-time stats, beside the
 * floor's and those of two partial builds (probes/include/bench.h: returning
 * before the packet is located, and once it is), which say where the cost of
 * a packet the filter does not want goes. Prints figures; asserts nothing.
 * With --decisions: nothing attached, the floor and pktpath whole, each with
 * --output-route --output-neigh, for the route and neighbour programs' ns
 * per run beside the skb tracepoints' (a ping flood after the UDP one makes
 * the route lookups the UDP flood's connected sockets skip).
 *
 *   node dist/bench/cost.js [seconds per measurement, default 3] [--decisions]
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { vmlinuxBtf } from '../src/bpf/btf/vmlinux.js';
import { enableRunStats, linkInfos, programs } from '../src/bpf/loaded.js';
import { Lab, twoHosts } from '../src/lab/lab.js';
import { bpftraceScript, hasBpftrace, mountTracefs, startBpftrace } from './bpftrace.js';
import { stopped, whenReady } from './child.js';

const PKTPATH = fileURLToPath(new URL('../../bin/pktpath', import.meta.url));
const FLOOR_DIR = fileURLToPath(new URL('../../probes/build/floor', import.meta.url));
const stageDir = (stage: number) => fileURLToPath(new URL(`../../probes/build/stage${stage}`, import.meta.url));
const ARGS = process.argv.slice(2);
const SECONDS = Number(ARGS.find((a) => !a.startsWith('--')) ?? 3);
/** --decisions: the route and neighbour points attached too (their programs run on lookups, not on every packet). */
const DECISIONS = ARGS.includes('--decisions');
const DECISION_OPTIONS = DECISIONS ? ['--output-route', '--output-neigh'] : [];
/** --decisions: echo requests sent after the UDP flood, each a route lookup. */
const PING_FLOOD = 50_000;
/** A filter none of the traffic matches: every probe runs it to the end and says no. */
const NO_MATCH = ['udp', 'port', '9'];

interface Observer {
  name: string;
  start(lab: Lab, ns: { a: string; b: string; obs: string }): Promise<() => Promise<void>>;
}

/** pktpath in a namespace of the bench's own: it observes that one and the bench's named ones. */
const pktpath = (name: string, args: string[], env: Record<string, string> = {}): Observer => ({
  name,
  async start(_lab, ns) {
    const child = spawn('ip', ['netns', 'exec', ns.obs, PKTPATH, ...args, ...DECISION_OPTIONS, '--output-file', '/dev/null', ...NO_MATCH],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
    await whenReady(child, /attached/, name);
    return () => stopped(child);
  },
});

const ALL_OBSERVERS: Observer[] = [
  { name: 'nothing attached', start: async () => async () => {} },
  pktpath('floor: pktpath\'s programs returning at once', [], { PKTPATH_PROBES_DIR: FLOOR_DIR }),
  pktpath('pktpath, returning before it locates the packet', [], { PKTPATH_PROBES_DIR: stageDir(1) }),
  pktpath('pktpath, returning once the packet is located', [], { PKTPATH_PROBES_DIR: stageDir(2) }),
  pktpath('pktpath, every family, filter matching nothing', []),
  pktpath('pktpath, tracepoints only, filter matching nothing', ['--attach', 'tracepoints']),
  pktpath('pktpath, every family, --filter-track-skb, filter matching nothing', ['--filter-track-skb']),
  // The frees --filter-func leaves out are watched for tracking alone: programs that only forget.
  pktpath('pktpath, --filter-track-skb --filter-func \'^netif_rx$\', filter matching nothing', ['--filter-track-skb', '--filter-func', '^netif_rx$']),
  {
    name: 'tcpdump -w on one veth',
    async start(lab, ns) {
      const child = lab.spawn(ns.b, ['tcpdump', '-i', 'veth-b', '-w', '/dev/null', '-U']);
      await whenReady(child, /listening on/, 'tcpdump');
      return () => stopped(child);
    },
  },
  {
    name: 'bpftrace, 6 tracepoints reading the IP header, filter matching nothing',
    async start() {
      const unmount = mountTracefs();
      // No traffic goes to this address: every probe reads the header and says no.
      const child = await startBpftrace(bpftraceScript(17, '203.0.113.9', '@n = count();'));
      await new Promise((r) => setTimeout(r, 500));
      return async () => {
        await stopped(child);
        unmount();
      };
    },
  },
  { name: 'nothing attached, again', start: async () => async () => {} },
];
const DECISION_ROWS = new Set(['nothing attached', 'floor: pktpath\'s programs returning at once', 'pktpath, every family, filter matching nothing']);
const OBSERVERS = DECISIONS ? ALL_OBSERVERS.filter((o) => DECISION_ROWS.has(o.name)) : ALL_OBSERVERS;


/** enum bpf_link_type */
const LINK_NAMES: Readonly<Record<number, string>> = { 10: 'netfilter', 11: 'tc (tcx)' };

/** Programs loaded from now on have ids above this one. */
const lastProgramId = () => programs().reduce((max, p) => Math.max(max, p.id), 0);

/**
 * pktpath's programs by id, named by what they are attached to (tracepoint,
 * tc, netfilter): those loaded after `since`, so that another pktpath running
 * on the machine is not counted.
 */
function pktpathPoints(since: number): Map<number, string> {
  const btf = vmlinuxBtf();
  const out = new Map<number, string>();
  for (const p of programs()) {
    if (!p.name.startsWith('pktpath_') || p.id <= since) continue;
    // tp_btf programs name their tracepoint by BTF id (btf_trace_<name>).
    const target = p.attachBtfId && btf ? btf.nameOf(p.attachBtfId) : '';
    if (target) out.set(p.id, target.replace(/^btf_trace_/, ''));
  }
  for (const l of linkInfos()) if (!out.has(l.progId) && l.progId > since && LINK_NAMES[l.type]) out.set(l.progId, LINK_NAMES[l.type]!);
  return out;
}

/** ns per run of each point of pktpath's programs, over `during`. */
async function nsPerRun(since: number, during: () => Promise<void>): Promise<Map<string, { ns: number; runs: number }>> {
  const names = pktpathPoints(since);
  const stats = enableRunStats();
  try {
    const before = new Map(programs().map((p) => [p.id, p]));
    await during();
    const out = new Map<string, { ns: number; runs: number }>();
    for (const p of programs()) {
      const name = names.get(p.id);
      const b = before.get(p.id);
      if (!name || !b) continue;
      const runs = Number(p.runCount - b.runCount);
      const ns = Number(p.runTimeNs - b.runTimeNs);
      const prev = out.get(name) ?? { ns: 0, runs: 0 };
      out.set(name, { ns: prev.ns + ns, runs: prev.runs + runs });
    }
    return out;
  } finally {
    stats.close();
  }
}

async function main(): Promise<void> {
  const lab = new Lab('ppcost');
  try {
    const { a, b } = twoHosts(lab);
    const obs = lab.netns('obs');
    const server = lab.spawn(b, ['iperf3', '-s', '-B', '192.0.2.2', '--forceflush']);
    await new Promise((r) => server.stdout!.once('data', r));
    const iperf = async (args: string[]) => {
      const r = await lab.exec(a, ['iperf3', '-c', '192.0.2.2', '-t', String(SECONDS), '-J', ...args], 60_000);
      return JSON.parse(r.stdout) as { end: { sum_received?: { bits_per_second: number }; sum?: { packets: number; lost_packets: number; seconds: number } } };
    };
    const tcp = async () => (await iperf([])).end.sum_received!.bits_per_second / 1e9;
    const udp = async () => {
      const s = (await iperf(['-u', '-b', '0', '-l', '64'])).end.sum!;
      return (s.packets - s.lost_packets) / s.seconds / 1e3;
    };

    const rows: Array<{ name: string; tcp: number; udp: number }> = [];
    const perPoint = new Map<string, Map<string, { ns: number; runs: number }>>();
    for (const o of OBSERVERS) {
      if (o.name.startsWith('bpftrace') && !hasBpftrace()) {
        console.log(`  (${o.name}: skipped, bpftrace is not installed: apt-get install bpftrace)`);
        continue;
      }
      const since = lastProgramId();
      const stop = await o.start(lab, { a, b, obs });
      try {
        const t = await tcp();
        let u = 0;
        if (o.name.startsWith('floor') || o.name.startsWith('pktpath, returning') || o.name.startsWith('pktpath, every') ||
          o.name.startsWith('pktpath, --filter-track-skb')) {
          perPoint.set(o.name, await nsPerRun(since, async () => {
            u = await udp();
            // The flood's connected sockets skip the route lookup: a ping flood's unconnected socket looks each echo up.
            if (DECISIONS) await lab.exec(a, ['ping', '-q', '-f', '-c', String(PING_FLOOD), '192.0.2.2'], 120_000);
          }));
        } else {
          u = await udp();
        }
        rows.push({ name: o.name, tcp: t, udp: u });
      } finally {
        await stop();
      }
    }

    const base = rows[0]!;
    console.log(`no-match cost: iperf3 over veth, ${SECONDS} s each, measured in this order; ratios to the first row`);
    console.log(`  ${'observer'.padEnd(72)} ${'TCP Gbit/s'.padStart(10)} ${'ratio'.padStart(6)} ${'UDP-64 kpps'.padStart(11)} ${'ratio'.padStart(6)}`);
    for (const r of rows) {
      console.log(`  ${r.name.padEnd(72)} ${r.tcp.toFixed(2).padStart(10)} ${(r.tcp / base.tcp).toFixed(2).padStart(6)} ` +
        `${r.udp.toFixed(0).padStart(11)} ${(r.udp / base.udp).toFixed(2).padStart(6)}`);
    }
    const stats = (prefix: string) => [...perPoint].find(([k]) => k.startsWith(prefix))?.[1];
    const floor = stats('floor');
    const before = stats('pktpath, returning before');
    const located = stats('pktpath, returning once');
    const traced = stats('pktpath, every family, filter');
    const tracking = stats('pktpath, every family, --filter-track-skb');
    const forgetting = stats('pktpath, --filter-track-skb');
    if (floor && traced) {
      const nsOf = (m: typeof floor | undefined, name: string) => {
        const s = m?.get(name);
        return s && s.runs > 0 ? s.ns / s.runs : NaN;
      };
      const above = (ns: number, base: number) => `${ns.toFixed(0).padStart(5)} (${ns >= base ? '+' : ''}${(ns - base).toFixed(0)})`.padEnd(13);
      console.log(`per program, during the UDP-64 flood${DECISIONS ? ` and ${PING_FLOOD} echo requests flooded (each a route lookup)` : ''} ` +
        '(kernel run-time stats): ns per run, and above the floor, of the');
      console.log('floor, the builds returning before the packet is located and once it is, and pktpath whole (filter matching nothing)');
      console.log(`  ${'point'.padEnd(26)} ${'floor'.padStart(5)}   ${'before packet'.padEnd(13)} ${'located'.padEnd(13)} ${'whole'.padEnd(13)} runs (whole)`);
      for (const [name, s] of [...traced].sort((x, y) => y[1].runs - x[1].runs)) {
        if (s.runs === 0) continue;
        const f = nsOf(floor, name);
        console.log(`  ${name.padEnd(26)} ${f.toFixed(0).padStart(5)}   ${above(nsOf(before, name), f)} ${above(nsOf(located, name), f)} ` +
          `${above(s.ns / s.runs, f)} ${s.runs}`);
      }
      console.log('--filter-track-skb, during the same flood: ns per run, and above the floor, of each program with tracking on');
      console.log('(every family: the match path looks the skb up first), and of the programs that only forget (--filter-func leaving the frees out)');
      console.log(`  ${'point'.padEnd(26)} ${'floor'.padStart(5)}   ${'tracking'.padEnd(13)} ${'forgetting'.padEnd(13)} runs (forgetting)`);
      for (const name of [...traced.keys()].sort((x, y) => (traced.get(y)!.runs - traced.get(x)!.runs))) {
        const t = nsOf(tracking, name);
        const f = nsOf(forgetting, name);
        if (Number.isNaN(t) && Number.isNaN(f)) continue;
        const base = nsOf(floor, name);
        console.log(`  ${name.padEnd(26)} ${base.toFixed(0).padStart(5)}   ${Number.isNaN(t) ? '-'.padEnd(13) : above(t, base)} ` +
          `${Number.isNaN(f) ? '-'.padEnd(13) : above(f, base)} ${forgetting?.get(name)?.runs ?? 0}`);
      }
    }
  } finally {
    lab.cleanup();
  }
}

await main();
