/**
 * A long run next to steady traffic while namespaces come and go (root):
 * pktpath traces ping and UDP between two namespaces of its own, and every few
 * seconds a pod-like namespace with a veth is created and deleted. Prints
 * pktpath's RSS and open fds at the start, their peak and at the end, what it
 * followed, and whether anything of it was left in the kernel. Exits 1 when
 * fds grow, when anything is left, or when the end RSS is far above the start.
 *
 *   node dist/bench/soak.js [seconds]      (default 600; the tests run it for 20)
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { linkInfos, mapInfos, programs } from '../src/bpf/loaded.js';
import { Lab, twoHosts } from '../src/lab/lab.js';

const PKTPATH = fileURLToPath(new URL('../../bin/pktpath', import.meta.url));
const CHURN_MS = 3000;
/** The end may sit this far above the start once settled (caches fill): more is a leak. */
const RSS_GROWTH_LIMIT_MB = 40;

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
const fds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

export interface SoakResult {
  seconds: number;
  rss: { start: number; peak: number; end: number };
  fds: { start: number; peak: number; end: number };
  namespacesAdded: number;
  events: number;
  lost: number;
  leftovers: string[];
  problems: string[];
}

export async function soak(seconds: number, say: (line: string) => void = () => {}): Promise<SoakResult> {
  const lab = new Lab(`ppsk${process.pid % 10000}`);
  const mapsBefore = Math.max(0, ...mapInfos().map((m) => m.id));
  const problems: string[] = [];
  try {
    const { a, b } = twoHosts(lab);
    // pktpath's own namespace is the lab's b: it observes only what the soak makes.
    const child = spawn('ip', ['netns', 'exec', b, PKTPATH, '--filter-ip', '192.0.2.2',
      '--output-file', '/dev/null'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    for (let i = 0; i < 300 && !/attached/.test(stderr); i++) await new Promise((r) => setTimeout(r, 100));
    if (!/attached/.test(stderr)) throw new Error(`pktpath did not attach:\n${stderr}`);
    const pid = child.pid!;
    const ping = lab.spawn(a, ['ping', '-i', '0.01', '192.0.2.2']);
    const udp = lab.spawn(a, ['bash', '-c', 'while sleep 0.05; do echo x > /dev/udp/192.0.2.2/9; done']);
    const sample = () => ({ rss: rssMb(pid), fds: fds(pid) });
    // The start is taken once the first churn has been followed: what a steady run looks like.
    await new Promise((r) => setTimeout(r, 1000));
    const start = sample();
    const peak = { ...start };
    let churned = 0;
    const until = Date.now() + seconds * 1000;
    let pod: string | null = null;
    while (Date.now() < until) {
      if (pod !== null) {
        lab.removeNetns(pod);
        pod = null;
      } else {
        pod = lab.netns(`pod${churned % 2}`);
        const peer = lab.netns(`peer${churned % 2}`);
        lab.veth({ ns: pod, ifname: 'eth0', addrs: ['203.0.113.1/24'] }, { ns: peer, ifname: 'lxc0', addrs: ['203.0.113.2/24'] });
        lab.removeNetns(peer);
        churned++;
      }
      await new Promise((r) => setTimeout(r, Math.min(CHURN_MS, Math.max(0, until - Date.now()))));
      const s = sample();
      peak.rss = Math.max(peak.rss, s.rss);
      peak.fds = Math.max(peak.fds, s.fds);
      say(`soak: ${Math.round((until - Date.now()) / 1000)} s left: rss ${s.rss.toFixed(1)} MB, ${s.fds} fds`);
    }
    if (pod !== null) lab.removeNetns(pod);
    await new Promise((r) => setTimeout(r, 1000));
    const end = sample();
    ping.kill();
    udp.kill();
    child.kill('SIGINT');
    await exited;
    const summary = /pktpath: (\d+) events, (\d+) lost/.exec(stderr);
    const added = /namespaces \+(\d+)/.exec(stderr);
    if (!summary) problems.push(`no summary:\n${stderr}`);
    if (end.fds > start.fds + 2) problems.push(`fds grew: ${start.fds} → ${end.fds}`);
    if (end.rss > start.rss + RSS_GROWTH_LIMIT_MB) problems.push(`rss grew: ${start.rss.toFixed(1)} → ${end.rss.toFixed(1)} MB`);
    if (churned > 1 && !added) problems.push('no namespace was followed');
    // Release by the kernel is asynchronous.
    let leftovers: string[] = [];
    for (let i = 0; i < 50; i++) {
      const progs = programs().filter((p) => p.name.startsWith('pktpath_'));
      const ids = new Set(progs.map((p) => p.id));
      leftovers = [...progs.map((p) => `program ${p.name}`), ...linkInfos().filter((l) => ids.has(l.progId)).map((l) => `link ${l.id}`),
        ...mapInfos().filter((m) => m.id > mapsBefore && /^(events|lost|stacks|tracked_skbs|tracked_heads|track_stats)$/.test(m.name)).map((m) => `map ${m.name}`)];
      if (leftovers.length === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    if (leftovers.length > 0) problems.push(`left in the kernel: ${leftovers.join(', ')}`);
    return {
      seconds, rss: { start: start.rss, peak: peak.rss, end: end.rss }, fds: { start: start.fds, peak: peak.fds, end: end.fds },
      namespacesAdded: Number(added?.[1] ?? 0), events: Number(summary?.[1] ?? 0), lost: Number(summary?.[2] ?? 0),
      leftovers, problems,
    };
  } finally {
    lab.cleanup();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const seconds = Number(process.argv[2] ?? 600);
  const r = await soak(seconds, (line) => process.stderr.write(`${line}\n`));
  const f = (n: number) => n.toFixed(1);
  process.stdout.write(`soak ${r.seconds} s: rss MB start ${f(r.rss.start)} peak ${f(r.rss.peak)} end ${f(r.rss.end)}; ` +
    `fds start ${r.fds.start} peak ${r.fds.peak} end ${r.fds.end}; namespaces followed +${r.namespacesAdded}; ` +
    `${r.events} events, ${r.lost} lost; left in the kernel: ${r.leftovers.length === 0 ? 'nothing' : r.leftovers.join(', ')}\n`);
  for (const p of r.problems) process.stdout.write(`soak: ${p}\n`);
  process.exit(r.problems.length > 0 ? 1 : 0);
}
