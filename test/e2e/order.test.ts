/**
 * Records in time order under a flood: two TCP streams sent from two CPUs
 * (taskset) into a traced namespace. The ring hands records over in the order
 * their probes reserved them, which is not quite the order of their times;
 * the file must never go back in time.
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, twoHosts } from '../../src/lab/lab.js';
import { parseJsonTime } from '../../src/output/json-read.js';
import { pktpathPrivately, waitNoPrograms } from '../helpers/tracer.js';

const lab = new Lab();
let A = '';
let B = '';
const dir = mkdtempSync(join(tmpdir(), 'pktpath-order-'));
const PORTS = [5201, 5202];

before(async () => {
  ({ a: A, b: B } = twoHosts(lab));
  for (const port of PORTS) {
    const server = lab.spawn(B, ['iperf3', '-s', '-B', '192.0.2.2', '-p', String(port), '--forceflush']);
    await new Promise((r) => server.stdout!.once('data', r));
  }
});
after(() => {
  lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  assert.deepEqual(await waitNoPrograms(), [], 'programs of pktpath left loaded');
});

/** pktpath with `args` until the traffic has run, then SIGINT; its stderr. */
async function traceAround(args: string[], traffic: () => Promise<unknown>): Promise<{ code: number | null; stderr: string }> {
  const [cmd, argv] = pktpathPrivately(args);
  const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/pktpath: attached /.test(stderr)) resolve();
    });
    void exited.then(() => reject(new Error(`pktpath exited before attaching:\n${stderr}`)));
  });
  const sent = await traffic().then(() => null, (e: unknown) => e);
  child.kill('SIGINT');
  const code = await exited;
  if (sent) throw sent;
  return { code, stderr };
}

test('a JSON file written under a flood from two CPUs never goes back in time', async () => {
  const file = join(dir, 'flood.jsonl');
  const r = await traceAround(['--filter-netns', B, '--output-json-file', file, '--output-file', '/dev/null'], () =>
    Promise.all(PORTS.map(async (port, cpu) => {
      const c = await lab.exec(A, ['taskset', '-c', String(cpu), 'iperf3', '-c', '192.0.2.2', '-p', String(port), '-t', '2'], 30_000);
      assert.equal(c.code, 0, c.stdout + c.stderr);
    })));
  assert.equal(r.code, 0, r.stderr);
  const records = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type?: string; time: string; cpu: number; func: string });
  // Lost-record notices carry the time the loss was seen, not a packet's: events only.
  const events = records.filter((e) => e.type === undefined);
  assert.ok(events.length > 10_000, `${events.length} events`);
  assert.deepEqual(new Set(events.map((e) => e.cpu)), new Set([0, 1]), 'events from both CPUs');
  const back: string[] = [];
  let last = 0n;
  let lastText = '';
  for (const e of events) {
    const t = parseJsonTime(e.time)!;
    if (t < last) back.push(`${lastText} → cpu ${e.cpu} ${e.func} ${e.time} (${(last - t) / 1000n} µs back)`);
    else [last, lastText] = [t, `cpu ${e.cpu} ${e.func} ${e.time}`];
  }
  assert.deepEqual(back.slice(0, 5), [], `${back.length} of ${events.length} events go back in time`);
  assert.doesNotMatch(r.stderr, /out of time order/);
});
