/**
 * `normalize` and `diff` on two traces of a million records each, written
 * here like a recorded veth flood (UDP from many client ports, a TCP
 * connection, drops): wall time and peak RSS of each command, run as its
 * own process. Prints figures; asserts nothing.
 *
 *   node dist/bench/regress.js [records]
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, writeTrace } from './traces.js';


const records = Number(process.argv[2] ?? 1_000_000);
const dir = mkdtempSync(join(tmpdir(), 'pktpath-bench-regress-'));
try {
  const a = join(dir, 'a.jsonl');
  const b = join(dir, 'b.jsonl');
  await writeTrace(a, records, false);
  await writeTrace(b, records, true);
  const mb = (f: string) => (statSync(f).size / 2 ** 20).toFixed(0);
  console.log(`traces: ${records} records each (${mb(a)} MiB, ${mb(b)} MiB)`);
  for (const [name, args] of [['normalize', ['normalize', a]], ['diff', ['diff', a, b, '--json']]] as const) {
    const m = run([...args]);
    console.log(`${name}: ${m.seconds.toFixed(1)} s, peak RSS ${m.rssMiB.toFixed(0)} MiB, ` +
      `${(records * (name === 'diff' ? 2 : 1) / m.seconds / 1e3).toFixed(0)}k records/s (exit ${m.code})`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
