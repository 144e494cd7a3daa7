/**
 * `normalize` and `diff` on two traces of a million records each, written
 * here like a recorded veth flood (UDP from many client ports, a TCP
 * connection, drops): wall time and peak RSS of each command, run as its
 * own process. Then `diff` of two normalised traces holding one flow of
 * many distinct paths each, every path of the second changed (one hop
 * more, or a device in another namespace): what aligning paths costs as
 * their number grows. Prints figures;
 * asserts nothing.
 *
 *   node dist/bench/regress.js [records] [paths,paths,…]
 */
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, writeTrace } from './traces.js';

const FLOW = 'udp 192.0.2.1:$p1 > 192.0.2.2:5201';

/** A normalised trace of one flow with `paths` distinct paths; `changed`: each passes one point more or its device is in another namespace. */
async function writeNormalizedFlow(path: string, paths: number, changed: boolean): Promise<void> {
  const out = createWriteStream(path);
  const write = (line: string) => (out.write(line + '\n') ? Promise.resolve() : new Promise<void>((r) => out.once('drain', () => r())));
  await write(JSON.stringify({ v: 1, type: 'normalized', kernel: null, command: null, vars: [], packets: paths, lost: 0 }));
  for (let i = 0; i < paths; i++) {
    const hops = [
      { at: 'nf:ipv4:local_out', netns: 'a', iface: '' },
      { at: 'net_dev_queue', netns: changed && i % 2 === 0 ? 'c' : 'a', iface: `veth-${i}` },
      ...(changed && i % 2 === 1 ? [{ at: 'nf:ipv4:forward', netns: 'r', iface: 'br0' }] : []),
      { at: 'netif_receive_skb', netns: 'b', iface: 'veth-b' },
      { at: 'nf:ipv4:local_in', netns: 'b', iface: 'veth-b', ct: 'NEW' },
    ];
    await write(JSON.stringify({ v: 1, type: 'packet', flow: FLOW, dir: '>', flags: '', tuple: FLOW.slice(4), hops, end: { how: 'ended' } }));
  }
  await new Promise<void>((resolve) => out.end(() => resolve()));
}

const records = Number(process.argv[2] ?? 1_000_000);
const pathCounts = (process.argv[3] ?? '1000,10000,30000,100000').split(',').map(Number);
const dir = mkdtempSync(join(tmpdir(), 'pktpath-bench-regress-'));
try {
  const a = join(dir, 'a.jsonl');
  const b = join(dir, 'b.jsonl');
  const mb = (f: string) => (statSync(f).size / 2 ** 20).toFixed(0);
  if (records > 0) {
    await writeTrace(a, records, false);
    await writeTrace(b, records, true);
    console.log(`traces: ${records} records each (${mb(a)} MiB, ${mb(b)} MiB)`);
    for (const [name, args] of [['normalize', ['normalize', a]], ['diff', ['diff', a, b, '--json']]] as const) {
      const m = run([...args]);
      console.log(`${name}: ${m.seconds.toFixed(1)} s, peak RSS ${m.rssMiB.toFixed(0)} MiB, ` +
        `${(records * (name === 'diff' ? 2 : 1) / m.seconds / 1e3).toFixed(0)}k records/s (exit ${m.code})`);
    }
  }
  console.log('diff of one flow, distinct paths per side, every one changed in the second:');
  for (const paths of pathCounts) {
    await writeNormalizedFlow(a, paths, false);
    await writeNormalizedFlow(b, paths, true);
    const m = run(['diff', a, b, '--json']);
    console.log(`  ${String(paths).padStart(7)} paths (${mb(a).padStart(3)} MiB): ${m.seconds.toFixed(2).padStart(7)} s, ` +
      `peak RSS ${m.rssMiB.toFixed(0)} MiB (exit ${m.code})`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
