/** Output on real traces: pcapng read by tshark, line limits, rotation, pipes, colour, journeys. */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, twoHosts } from '../../src/lab/lab.js';
import { PKTPATH, startTracer, waitNoPrograms } from '../helpers/tracer.js';

const lab = new Lab();
let A = '';
const dir = mkdtempSync(join(tmpdir(), 'pktpath-out-'));

before(() => {
  ({ a: A } = twoHosts(lab));
});
after(() => {
  lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  assert.deepEqual(await waitNoPrograms(), [], 'programs of pktpath left loaded');
});

const ping = (count = 1, interval = '0.2') => lab.exec(A, ['ping', '-c', String(count), '-i', interval, '-W', '2', '192.0.2.2']);

/** Runs `pktpath args` under `sh -c` (for pipes and env), sends traffic once attached, waits for it to end. */
async function runWithTraffic(shell: string, traffic: () => Promise<unknown>, env: NodeJS.ProcessEnv = {}) {
  // Its own process group, so a stop reaches pktpath and not only the shell.
  const child = spawn('bash', ['-o', 'pipefail', '-c', shell], {
    env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
  });
  let stdout = '';
  let stderr = '';
  // Under a terminal (script), stderr arrives on stdout too: watch both.
  const attached = new Promise<void>((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (/pktpath: attached/.test(stdout)) resolve();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/pktpath: attached/.test(stderr)) resolve();
    });
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  await Promise.race([attached, exited]);
  await traffic();
  const timer = setTimeout(() => process.kill(-child.pid!, 'SIGINT'), 5000);
  const code = await exited;
  clearTimeout(timer);
  return { code, stdout, stderr };
}

const pktpath = `${process.execPath} ${PKTPATH}`;

test('--output-pcap: tshark reads the echo request at several observation points, with comments', async () => {
  const file = join(dir, 'trace.pcapng');
  const tracer = await startTracer(['--filter-dst-ip', '192.0.2.2', '--filter-proto', 'icmp', '--output-pcap', file]);
  assert.equal((await ping()).code, 0);
  const { events } = await tracer.stop();
  const out = execFileSync('tshark', ['-r', file, '-T', 'fields', '-e', 'frame.comment', '-e', 'icmp.type', '-e', 'ip.dst'], { encoding: 'utf8' });
  const rows = out.trim().split('\n').map((l) => l.split('\t'));
  assert.equal(rows.length, events.length, 'one packet per event');
  const requests = rows.filter((r) => r[1] === '8' && r[2] === '192.0.2.2');
  const points = new Set(requests.map((r) => r[0]!.split(' ')[0]));
  for (const p of ['nf:ipv4:local_out', 'tc:egress', 'netif_receive_skb', 'nf:ipv4:local_in']) assert.ok(points.has(p), `${p} in ${[...points]}`);
  assert.match(requests[0]![0]!, /skb=0xffff[0-9a-f]{12}/);
});

test('--output-limit-lines stops the trace by itself after N events, exit 0', async () => {
  const r = await runWithTraffic(`${pktpath} --filter-dst-ip 192.0.2.2 --output-limit-lines 3`, () => ping(3));
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1 + 3, r.stdout);
  assert.match(lines[0]!, /^SKB\s+CPU\s+PROCESS/);
});

test('--output-file with rotation keeps every file under the limit', async () => {
  const file = join(dir, 'rot.txt');
  const r = await runWithTraffic(
    `${pktpath} --filter-dst-ip 192.0.2.2 --output-tuple --output-file ${file} --output-file-max-size 4K --output-file-max-backups 2`,
    () => ping(20, '0.01'),
  );
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(`${file}.1`) && existsSync(`${file}.2`) && !existsSync(`${file}.3`));
  for (const f of [file, `${file}.1`, `${file}.2`]) assert.ok(statSync(f).size <= 4096, `${f}: ${statSync(f).size}`);
  assert.ok(readFileSync(`${file}.1`, 'utf8').split('\n').filter(Boolean).every((l) => /^0x[0-9a-f]{16} /.test(l)), 'whole lines only');
});

test('| head -n 5 ends quietly: exit 0, no stack trace, nothing left attached', async () => {
  // Like any writer, pktpath learns that the reader left at its next write: more packets follow.
  const r = await runWithTraffic(`${pktpath} --filter-dst-ip 192.0.2.2 | head -n 5`, async () => {
    await ping(5, '0.05');
    await new Promise((res) => setTimeout(res, 300));
    await ping(3, '0.05');
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n').length, 5);
  assert.doesNotMatch(r.stderr, /Error|at .*\.js:\d+/);
});

test('colour: never with --color never or NO_COLOR, always with --color always, per skb on a terminal', async () => {
  const esc = /\u001b\[/;
  const never = await runWithTraffic(`${pktpath} --filter-dst-ip 192.0.2.2 --color never`, () => ping());
  assert.doesNotMatch(never.stdout, esc);
  const always = await runWithTraffic(`${pktpath} --filter-dst-ip 192.0.2.2 --color always`, () => ping());
  assert.match(always.stdout, esc);
  // A real terminal (script gives one): colour by default, none with NO_COLOR.
  const tty = (env: NodeJS.ProcessEnv) => runWithTraffic(
    `script -qfec "${pktpath} --filter-dst-ip 192.0.2.2 --duration 3" /dev/null`, () => ping(), env);
  const onTty = await tty({});
  assert.match(onTty.stdout, esc);
  const noColor = await tty({ NO_COLOR: '1' });
  assert.ok(noColor.stdout.includes('nf:ipv4:local_out'), noColor.stdout);
  assert.doesNotMatch(noColor.stdout.replace(/\u001b\[\?[0-9;]*[a-zA-Z]/g, ''), esc);
});

test('--group-by skb: one block per packet, its hops in order, how it ended', async () => {
  const r = await runWithTraffic(`${pktpath} --filter-dst-ip 192.0.2.2 --output-tuple --group-by skb`, () => ping());
  assert.equal(r.code, 0, r.stderr);
  const block = r.stdout.split('\n\n').find((b) => b.includes('192.0.2.1->192.0.2.2(icmp)') && b.includes('consumed'));
  assert.ok(block, r.stdout);
  const hops = block.split('\n').slice(1).map((l) => l.trim().split(/\s+/)[1]);
  const order = ['nf:ipv4:local_out', 'tc:egress', 'netif_receive_skb', 'nf:ipv4:local_in', 'consume_skb'];
  let at = -1;
  for (const p of order) {
    const i = hops.indexOf(p, at + 1);
    assert.ok(i > at, `${p} after position ${at} in ${hops.join(' ')}`);
    at = i;
  }
});

test('a ring too small for the traffic: records are lost, and the stream says so in-band, never silently', async () => {
  const tracer = await startTracer(['--filter-dst-ip', '192.0.2.2', '--ring-size', '4K']);
  // A burst: far more records than a 4 KiB ring holds between two reads.
  await lab.exec(A, ['ping', '-f', '-c', '300', '-W', '1', '192.0.2.2']);
  const { stdout, stderr } = await tracer.stop();
  const lost = stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type?: string; count?: number; total?: number })
    .filter((r) => r.type === 'lost');
  assert.ok(lost.length > 0, 'no in-band lost record');
  const total = lost[lost.length - 1]!.total!;
  assert.equal(lost.reduce((n, r) => n + r.count!, 0), total);
  const summary = /pktpath: \d+ events, (\d+) lost/.exec(stderr);
  assert.equal(Number(summary?.[1]), total, stderr);
});
