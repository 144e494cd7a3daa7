/**
 * pktpath benchmarks on the real kernel (root). Prints figures; asserts nothing.
 * pktpath always runs in a namespace of the bench's own and observes that one
 * and the bench's, never the machine's interfaces.
 *   1. start → attached and SIGINT → exited, with 1, 10, 50 and 110 namespaces
 *      of a veth each (a node's pods), --tc-devices auto and all side by side:
 *      wall time (Node's start included), the attach pktpath reports, peak RSS,
 *      and the CPU an idle trace takes following them (2 s, once attached).
 *   2. every packet of a flow traced to a file, text and JSON: the highest
 *      lossless record rate (bounded UDP floods at fixed rates, doubled until
 *      records are lost, then bisected), and an unbounded flood (UDP 64-byte
 *      and TCP): records delivered and lost, traffic beside the same flood
 *      untraced, peak RSS.
 *   3. the in-kernel filter's cost to traffic it rejects (3 alternated rounds).
 *
 *   node dist/bench/run.js [--only=attach|flood|filter]
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Lab, twoHosts } from '../src/lab/lab.js';
import { bpftraceScript, hasBpftrace, mountTracefs, startBpftrace } from './bpftrace.js';
import { stopped } from './child.js';
import { pktpathNodeFlags } from './node-flags.js';

const PKTPATH = fileURLToPath(new URL('../../bin/pktpath', import.meta.url));

interface Stopped {
  events: number;
  lost: number;
  seconds: number;
  /** SIGINT → exit. */
  detachMs: number;
  /** Peak resident set over the whole run (VmHWM). */
  peakRssMb: number;
  stderr: string;
}

interface Run {
  attachedAfterMs: number;
  reportedAttachMs: number;
  /** The process's CPU time (user + system) so far, ms. */
  cpuMs(): number;
  stop(): Promise<Stopped>;
}

const ATTACHED = /attached .*\((\d+) ms\)/;

/** pktpath inside `netns` (`ip netns exec` execs it: the pid is pktpath's own). */
function startPktpath(netns: string, args: string[]): Promise<Run> {
  const t0 = performance.now();
  const child = spawn('ip', ['netns', 'exec', netns, PKTPATH, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      const before = stderr;
      stderr += d.toString();
      const m = ATTACHED.exec(stderr);
      if (!m || ATTACHED.test(before)) return;
      resolve({
        attachedAfterMs: performance.now() - t0,
        reportedAttachMs: Number(m[1]),
        cpuMs: () => cpuMs(child.pid!),
        async stop() {
          const peakRssMb = peakRss(child.pid!);
          const t1 = performance.now();
          child.kill('SIGINT');
          await exited;
          const detachMs = performance.now() - t1;
          const s = /pktpath: (\d+) events, (\d+) lost, in ([\d.]+) s/.exec(stderr);
          if (!s) throw new Error(`no summary from pktpath:\n${stderr}`);
          return { events: Number(s[1]), lost: Number(s[2]), seconds: Number(s[3]), detachMs, peakRssMb, stderr };
        },
      });
    });
    void exited.then(() => reject(new Error(`pktpath exited early:\n${stderr}`)));
  });
}

function peakRss(pid: number): number {
  try {
    return Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
  } catch {
    return NaN;
  }
}

/** utime + stime of a process, ms (clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pad = (v: string | number, n: number) => String(v).padStart(n);

/** pktpath's own namespace and `count` others, each joined to it by a veth (a node and its pods). */
function podsLab(tag: string, count: number): { lab: Lab; obs: string } {
  const lab = new Lab(tag);
  const obs = lab.netns('obs');
  for (let i = 0; i < count; i++) {
    const pod = lab.netns(`p${i}`);
    lab.veth({ ns: obs, ifname: `lxc${i}`, addrs: [] }, { ns: pod, ifname: 'eth0', addrs: [] });
  }
  return { lab, obs };
}

/** Node's own start as bin/pktpath's `#!` line makes it (without NODE_EXTRA_CA_CERTS, the same flags): ms, median of 5. */
function nodeStartMs(): number {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    spawnSync(process.execPath, [...pktpathNodeFlags(), '-e', '0'], { env, stdio: 'ignore' });
    times.push(performance.now() - t0);
  }
  return median(times);
}

async function benchAttach(): Promise<void> {
  console.log('start → attached (wall, Node\'s start included) and SIGINT → exited; default plan, filter --filter-dst-ip 192.0.2.2; medians of 3');
  console.log('  each namespace count twice, side by side: --tc-devices auto (the default: beyond ' +
    '32 devices, tc observers only where other tc programs run) and --tc-devices all (every device)');
  console.log(`  Node's own start (node -e 0, as bin/pktpath starts it): ${nodeStartMs().toFixed(0)} ms of each wall figure`);
  console.log(`  ${'namespaces'.padEnd(32)} ${'tc devices'.padEnd(10)} ${'wall ms'.padStart(8)} ${'attach ms'.padStart(10)} ` +
    `${'detach ms'.padStart(10)} ${'peak RSS MB'.padStart(12)} ${'idle CPU %'.padStart(11)}  links`);
  for (const count of [0, 1, 10, 50, 110]) {
    const { lab, obs } = podsLab(`ppat${count}`, count);
    try {
      const what = count === 0 ? 'pktpath\'s own, no veth' : `${count} + pktpath's own, a veth each`;
      for (const tcDevices of ['auto', 'all']) {
        const wall: number[] = [], inner: number[] = [], detach: number[] = [], rss: number[] = [], idle: number[] = [];
        let links = '';
        for (let i = 0; i < 3; i++) {
          const run = await startPktpath(obs, ['--filter-dst-ip', '192.0.2.2', '--tc-devices', tcDevices, '--output-file', '/dev/null']);
          wall.push(run.attachedAfterMs);
          inner.push(run.reportedAttachMs);
          // What following the namespaces costs once attached and nothing happens: CPU over 2 s, a second after the attached line.
          await new Promise((r) => setTimeout(r, 1000));
          const cpu0 = run.cpuMs();
          await new Promise((r) => setTimeout(r, 2000));
          idle.push((run.cpuMs() - cpu0) / 20);
          const res = await run.stop();
          detach.push(res.detachMs);
          rss.push(res.peakRssMb);
          links = /attached (\d+ links)/.exec(res.stderr)?.[1] ?? '?';
        }
        console.log(`  ${what.padEnd(32)} ${tcDevices.padEnd(10)} ${pad(median(wall).toFixed(0), 8)} ${pad(median(inner).toFixed(0), 10)} ` +
          `${pad(median(detach).toFixed(0), 10)} ${pad(median(rss).toFixed(0), 12)} ${pad(median(idle).toFixed(1), 11)}  ${links}`);
      }
    } finally {
      lab.cleanup();
    }
  }
}

interface IperfEnd {
  end: { sum_received?: { bits_per_second: number }; sum?: { packets: number; lost_packets: number; seconds: number } };
}

/** iperf3 UDP 64-byte datagrams at `pps` (0: as fast as it goes) for `seconds`: packets received per second. */
async function udpFlood(lab: Lab, a: string, pps: number, seconds: number): Promise<number> {
  const rate = pps === 0 ? '0' : String(pps * 64 * 8);
  const r = await lab.exec(a, ['iperf3', '-c', '192.0.2.2', '-u', '-b', rate, '-l', '64', '-t', String(seconds), '-J'], 60_000);
  const s = (JSON.parse(r.stdout) as IperfEnd).end.sum!;
  return (s.packets - s.lost_packets) / s.seconds;
}

async function tcpFlood(lab: Lab, a: string, seconds: number): Promise<number> {
  const r = await lab.exec(a, ['iperf3', '-c', '192.0.2.2', '-t', String(seconds), '-J'], 60_000);
  return (JSON.parse(r.stdout) as IperfEnd).end.sum_received!.bits_per_second / 1e9;
}

async function benchFlood(): Promise<void> {
  const lab = new Lab('ppflood');
  try {
    const { a, b } = twoHosts(lab);
    const obs = lab.netns('obs');
    const server = lab.spawn(b, ['iperf3', '-s', '-B', '192.0.2.2', '--forceflush']);
    await new Promise((r) => server.stdout!.once('data', r));
    const formats = { text: [] as string[], json: ['--output-json'] };
    const trace = (format: keyof typeof formats) =>
      startPktpath(obs, ['--filter-dst-ip', '192.0.2.2', '--output-tuple', ...formats[format], '--output-file', '/dev/null']);

    // Records per packet: what one traced packet costs the ring at the default plan.
    console.log('every packet of a UDP flow (64-byte datagrams, 192.0.2.1 → 192.0.2.2 over veth) traced to a file, default ring');
    console.log('  highest lossless rate: bounded floods of 2 s, the rate doubled until records are lost, then bisected 3 times');
    for (const format of ['text', 'json'] as const) {
      const tries: string[] = [];
      const lossless = async (pps: number) => {
        const run = await trace(format);
        const got = await udpFlood(lab, a, pps, 2);
        const res = await run.stop();
        tries.push(`${(pps / 1e3).toFixed(0)}k pps → ${(res.events / 2 / 1e6).toFixed(2)}M rec/s ${res.lost === 0 ? 'lossless' : `${res.lost} lost`}`);
        return { ok: res.lost === 0, recordsPerS: res.events / 2, pps: got };
      };
      let good = 0, goodRate = 0, bad = 0;
      for (let pps = 10_000; pps <= 1_280_000; pps *= 2) {
        const r = await lossless(pps);
        if (!r.ok) {
          bad = pps;
          break;
        }
        good = pps;
        goodRate = r.recordsPerS;
        // The sender cannot go faster: the limit is not pktpath's.
        if (r.pps < pps * 0.8) break;
      }
      for (let i = 0; bad > 0 && i < 3; i++) {
        const mid = Math.round((good + bad) / 2);
        const r = await lossless(mid);
        if (r.ok) {
          good = mid;
          goodRate = r.recordsPerS;
        } else {
          bad = mid;
        }
      }
      console.log(`  ${format.padEnd(5)} lossless up to ${(goodRate / 1e6).toFixed(2)}M records/s (${(good / 1e3).toFixed(0)}k pps)` +
        `${bad === 0 ? ', the most the sender made' : ''}`);
      console.log(`        ${tries.join('; ')}`);
    }

    console.log('  unbounded floods, 3 s: traffic beside the same flood untraced (measured just before), records delivered and lost');
    console.log(`  ${'flow'.padEnd(12)} ${'format'.padEnd(15)} ${'untraced'.padStart(12)} ${'traced'.padStart(12)} ${'ratio'.padStart(6)} ` +
      `${'delivered'.padStart(10)} ${'lost'.padStart(10)} ${'lost %'.padStart(7)} ${'rec/s'.padStart(8)} ${'peak RSS MB'.padStart(12)}`);
    for (const flow of ['UDP-64', 'TCP'] as const) {
      const flood = () => (flow === 'TCP' ? tcpFlood(lab, a, 3) : udpFlood(lab, a, 0, 3));
      const show = (v: number) => (flow === 'TCP' ? `${v.toFixed(2)} Gbit/s` : `${(v / 1e3).toFixed(0)} kpps`);
      const row = (output: string, untraced: number, traced: number, delivered: number, lost: number, rss: string) =>
        console.log(`  ${flow.padEnd(12)} ${output.padEnd(15)} ${pad(show(untraced), 12)} ${pad(show(traced), 12)} ` +
          `${pad((traced / untraced).toFixed(2), 6)} ${pad((delivered / 1e6).toFixed(2) + 'M', 10)} ${pad((lost / 1e6).toFixed(2) + 'M', 10)} ` +
          `${pad((delivered + lost ? (100 * lost) / (delivered + lost) : 0).toFixed(1), 7)} ${pad((delivered / 3 / 1e6).toFixed(2) + 'M', 8)} ${pad(rss, 12)}`);
      for (const format of ['text', 'json'] as const) {
        const untraced = await flood();
        const run = await trace(format);
        const traced = await flood();
        const res = await run.stop();
        row(format, untraced, traced, res.events, res.lost, res.peakRssMb.toFixed(0));
      }
      if (!hasBpftrace()) {
        console.log(`  ${flow.padEnd(12)} bpftrace: skipped, not installed (apt-get install bpftrace)`);
        continue;
      }
      // bpftrace printing a line per event of the flow on its 6 tracepoints, read by the bench.
      const untraced = await flood();
      const unmount = mountTracefs();
      try {
        const child = await startBpftrace(bpftraceScript(flow === 'TCP' ? 6 : 17, '192.0.2.2', 'printf("%lx %d %s\\n", $s, cpu, probe);'));
        let lines = 0;
        let said = '';
        child.stdout!.on('data', (d: Buffer) => {
          for (let i = d.indexOf(10); i >= 0; i = d.indexOf(10, i + 1)) lines++;
          if (said.length < 4096) said += d.toString('latin1').match(/Lost \d+ events/g)?.join('\n') ?? '';
        });
        child.stderr!.on('data', (d: Buffer) => (said += d.toString()));
        const traced = await flood();
        await stopped(child);
        const lost = [...said.matchAll(/Lost (\d+) events/g)].reduce((n, m) => n + Number(m[1]), 0);
        row('bpftrace printf', untraced, traced, lines, lost, '—');
      } finally {
        unmount();
      }
    }
  } finally {
    lab.cleanup();
  }
}

/**
 * What the in-kernel filter costs traffic it rejects: iperf3 TCP throughput and
 * small-packet UDP rate over veth, without pktpath and with pktpath attached
 * (every family, an expression matching none of it), alternated in one run.
 */
async function benchFilterCost(): Promise<void> {
  const lab = new Lab('ppfcost');
  try {
    const { a, b } = twoHosts(lab);
    const obs = lab.netns('obs');
    const server = lab.spawn(b, ['iperf3', '-s', '-B', '192.0.2.2', '--forceflush']);
    await new Promise((r) => server.stdout!.once('data', r));
    const expression = ['udp', 'port', '9'];
    const results = { tcp: { base: [] as number[], traced: [] as number[] }, udp: { base: [] as number[], traced: [] as number[] } };
    for (let round = 0; round < 3; round++) {
      results.tcp.base.push(await tcpFlood(lab, a, 3));
      results.udp.base.push(await udpFlood(lab, a, 0, 3) / 1e3);
      const run = await startPktpath(obs, [...expression, '--output-file', '/dev/null']);
      results.tcp.traced.push(await tcpFlood(lab, a, 3));
      results.udp.traced.push(await udpFlood(lab, a, 0, 3) / 1e3);
      const res = await run.stop();
      if (res.events !== 0) console.log(`  (the expression matched ${res.events} events)`);
    }
    console.log(`filter cost: pktpath attached to every point, expression '${expression.join(' ')}' matching none of the traffic; medians of 3 alternated runs`);
    const t = { base: median(results.tcp.base), traced: median(results.tcp.traced) };
    const u = { base: median(results.udp.base), traced: median(results.udp.traced) };
    console.log(`  TCP throughput:        ${t.base.toFixed(2)} Gbit/s without, ${t.traced.toFixed(2)} with: ratio ${(t.traced / t.base).toFixed(3)} (goal ≥ 0.95)`);
    console.log(`  UDP 64-byte datagrams: ${u.base.toFixed(0)} kpps without, ${u.traced.toFixed(0)} with: ratio ${(u.traced / u.base).toFixed(3)}`);
  } finally {
    lab.cleanup();
  }
}

const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7);
if (!only || only === 'attach') await benchAttach();
if (!only || only === 'flood') await benchFlood();
if (!only || only === 'filter') await benchFilterCost();
