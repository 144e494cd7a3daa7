/**
 * `pktpath show` on a trace of about a gigabyte (2.5 million records by
 * default, written like a recorded veth flood): records/s and peak RSS for
 * text, a filter, --group-by skb and JSON, each its own process writing to
 * /dev/null. Memory must not grow with the trace. Prints figures; asserts nothing.
 *
 *   node dist/bench/show.js [records]
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, writeTrace } from './traces.js';

const records = Number(process.argv[2] ?? 2_500_000);
const dir = mkdtempSync(join(tmpdir(), 'pktpath-bench-show-'));
try {
  const trace = join(dir, 'trace.jsonl');
  await writeTrace(trace, records, true);
  console.log(`pktpath show: a trace of ${records} records (${(statSync(trace).size / 2 ** 20).toFixed(0)} MiB), to /dev/null`);
  const cases: Array<[string, string[]]> = [
    ['text, tuple and meta', ['--output-tuple', '--output-meta']],
    ['a filter (udp port 40001)', ['udp port 40001']],
    ['--group-by skb', ['--group-by', 'skb']],
    ['JSON again', ['--output-json']],
  ];
  for (const [name, args] of cases) {
    const m = run(['show', trace, ...args, '--output-file', '/dev/null', '--force']);
    console.log(`  ${name.padEnd(28)} ${m.seconds.toFixed(1).padStart(6)} s  ${(records / m.seconds / 1e3).toFixed(0).padStart(5)}k records/s  ` +
      `peak RSS ${m.rssMiB.toFixed(0)} MiB (exit ${m.code})`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
