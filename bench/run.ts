/**
 * pktpath benchmarks on the real kernel (root). Prints figures; asserts nothing.
 *   1. start → attached: wall time of `pktpath` until it reports being attached.
 *   2. a bounded UDP flood between two namespaces (iperf3, 64-byte datagrams at
 *      fixed rates), traced to a file: records/s decoded and formatted, records lost.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab, twoHosts } from '../src/lab/lab.js';

const PKTPATH = fileURLToPath(new URL('../../bin/pktpath', import.meta.url));

interface Run {
  attachedAfterMs: number;
  reportedAttachMs: number;
  stop(): Promise<{ events: number; lost: number; seconds: number; stderr: string }>;
}

function startPktpath(args: string[]): Promise<Run> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [PKTPATH, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      const before = stderr;
      stderr += d.toString();
      const m = /attached .*\((\d+) ms\)/.exec(stderr);
      if (m && !/attached .*\((\d+) ms\)/.test(before)) {
        resolve({
          attachedAfterMs: performance.now() - t0,
          reportedAttachMs: Number(m[1]),
          async stop() {
            child.kill('SIGINT');
            await exited;
            const s = /pktpath: (\d+) events, (\d+) lost, in ([\d.]+) s/.exec(stderr);
            if (!s) throw new Error(`no summary from pktpath:\n${stderr}`);
            return { events: Number(s[1]), lost: Number(s[2]), seconds: Number(s[3]), stderr };
          },
        });
      }
    });
    void exited.then(() => reject(new Error(`pktpath exited early:\n${stderr}`)));
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function benchAttach(): Promise<void> {
  const wall: number[] = [];
  const inner: number[] = [];
  for (let i = 0; i < 5; i++) {
    const run = await startPktpath(['--filter-dst-ip', '192.0.2.2']);
    wall.push(run.attachedAfterMs);
    inner.push(run.reportedAttachMs);
    await run.stop();
  }
  console.log(`start → attached (process start included): median ${median(wall).toFixed(0)} ms ` +
    `(min ${Math.min(...wall).toFixed(0)}, max ${Math.max(...wall).toFixed(0)}, 5 runs)`);
  console.log(`  of which loading and attaching probes: median ${median(inner).toFixed(0)} ms`);
}

async function benchFlood(): Promise<void> {
  const lab = new Lab('ppbench');
  const dir = mkdtempSync(join(tmpdir(), 'pktpath-bench-'));
  try {
    const { a, b } = twoHosts(lab);
    const server = lab.spawn(b, ['iperf3', '-s', '-B', '192.0.2.2', '--forceflush']);
    await new Promise((r) => server.stdout!.once('data', r));
    console.log('flood: iperf3 UDP, 64-byte datagrams, 3 s per rate, 192.0.2.1 → 192.0.2.2 over veth, traced to a file');
    console.log('  rate (Mbit/s)  packets/s  records  records/s  records/packet  lost  output MiB');
    for (const mbit of [5, 20, 50]) {
      for (const format of ['text', 'json', 'pcap'] as const) {
        const out = join(dir, `trace.${format}`);
        const args = ['--filter-dst-ip', '192.0.2.2', '--filter-proto', 'udp', '--output-tuple'];
        if (format === 'json') args.push('--output-json');
        // pcapng beside the text output, which goes nowhere.
        args.push(...(format === 'pcap' ? ['--output-pcap', out, '--output-file', '/dev/null'] : ['--output-file', out]));
        const run = await startPktpath(args);
        const t0 = performance.now();
        const client = await lab.exec(a, ['iperf3', '-c', '192.0.2.2', '-u', '-b', `${mbit}M`, '-l', '64', '-t', '3', '-J'], 30_000);
        const floodS = (performance.now() - t0) / 1000;
        const res = await run.stop();
        let packets = 0;
        try {
          packets = (JSON.parse(client.stdout) as { end: { sum: { packets: number } } }).end.sum.packets;
        } catch {
          // iperf3 failed: reported below as 0 packets.
        }
        const size = statSync(out).size / (1 << 20);
        console.log(`  ${String(mbit).padStart(5)} ${format.padEnd(5)}  ${(packets / 3).toFixed(0).padStart(9)}  ` +
          `${String(res.events).padStart(7)}  ${(res.events / floodS).toFixed(0).padStart(9)}  ` +
          `${(packets ? res.events / packets : 0).toFixed(1).padStart(14)}  ${String(res.lost).padStart(4)}  ${size.toFixed(1).padStart(10)}`);
      }
    }
  } finally {
    lab.cleanup();
    rmSync(dir, { recursive: true, force: true });
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
    const server = lab.spawn(b, ['iperf3', '-s', '-B', '192.0.2.2', '--forceflush']);
    await new Promise((r) => server.stdout!.once('data', r));
    const iperf = async (args: string[]) => {
      const r = await lab.exec(a, ['iperf3', '-c', '192.0.2.2', '-t', '3', '-J', ...args], 30_000);
      return JSON.parse(r.stdout) as { end: { sum_received?: { bits_per_second: number }; sum?: { packets: number; lost_packets: number; seconds: number } } };
    };
    const tcp = async () => (await iperf([])).end.sum_received!.bits_per_second / 1e9;
    const udp = async () => {
      const s = (await iperf(['-u', '-b', '0', '-l', '64'])).end.sum!;
      return (s.packets - s.lost_packets) / s.seconds / 1e3;
    };
    const expression = ['udp', 'port', '9'];
    const results = { tcp: { base: [] as number[], traced: [] as number[] }, udp: { base: [] as number[], traced: [] as number[] } };
    for (let round = 0; round < 3; round++) {
      results.tcp.base.push(await tcp());
      results.udp.base.push(await udp());
      const run = await startPktpath(expression);
      results.tcp.traced.push(await tcp());
      results.udp.traced.push(await udp());
      const res = await run.stop();
      if (res.events !== 0) console.log(`  (the expression matched ${res.events} events)`);
    }
    console.log(`filter cost: pktpath attached to every point, expression '${expression.join(' ')}' matching none of the traffic; medians of 3 alternated runs`);
    const t = { base: median(results.tcp.base), traced: median(results.tcp.traced) };
    const u = { base: median(results.udp.base), traced: median(results.udp.traced) };
    console.log(`  TCP throughput:        ${t.base.toFixed(2)} Gbit/s without, ${t.traced.toFixed(2)} with: ratio ${(t.traced / t.base).toFixed(3)} (goal ≥ 0.95)`);
    console.log(`  UDP 64-byte datagrams: ${u.base.toFixed(0)} kpps without, ${u.traced.toFixed(0)} with: ratio ${(u.traced / u.base).toFixed(3)} (goal ≥ 0.85)`);
  } finally {
    lab.cleanup();
  }
}

const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7);
if (!only || only === 'attach') await benchAttach();
if (!only || only === 'flood') await benchFlood();
if (!only || only === 'filter') await benchFilterCost();
