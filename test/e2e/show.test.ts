/**
 * `pktpath show` on a real recording: one live run prints text and writes
 * JSON beside it (with packet bytes); the recording, rendered again, gives
 * the same text, journeys and pcapng that match it, and the filters applied
 * to it select what they would have live. Profiles applied to real plans.
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, twoHosts } from '../../src/lab/lab.js';
import type { JsonRecord } from '../../src/output/json.js';
import { PKTPATH, runPktpath, waitNoPrograms } from '../helpers/tracer.js';
import { validateJsonLine } from '../helpers/schema.js';

const lab = new Lab();
const dir = mkdtempSync(join(tmpdir(), 'pktpath-show-'));
const recording = join(dir, 'trace.jsonl');
const bare = join(dir, 'bare.jsonl');
let live = '';
/** The recording's events; `lines`: every record of it (the namespaces' settings too). */
let records: JsonRecord[] = [];
let lines: Array<JsonRecord & { type?: string }> = [];
/** A JSON output's events: the settings records pass whatever the filter (they are no events). */
const eventsOf = (stdout: string) => stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as JsonRecord & { type?: string })
  .filter((r) => r.type === undefined);
const COLUMNS = ['--output-tuple', '--output-meta', '--color', 'never'];

/** pktpath narrowed to `netns` until `traffic` is done; its stdout. */
async function trace(netns: string, args: string[], traffic: () => Promise<unknown>): Promise<string> {
  const ready = join(dir, `ready-${Date.now()}`);
  const child = spawn(process.execPath, [PKTPATH, '--filter-netns', netns, '--ready-file', ready, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  for (let i = 0; i < 300 && !/pktpath: attached/.test(stderr); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(stderr, /pktpath: attached/);
  await traffic();
  await new Promise((r) => setTimeout(r, 300));
  child.kill('SIGINT');
  assert.equal(await exited, 0, stderr);
  return stdout;
}

const show = (args: string[]) => runPktpath(['show', ...args]);

before(async () => {
  const { a, b } = twoHosts(lab);
  const ping = () => lab.exec(a, ['ping', '-c', '3', '-i', '0.2', '-W', '2', '192.0.2.2']);
  live = await trace(b, [...COLUMNS, '--output-json-file', recording, '--output-packet'], ping);
  lines = readFileSync(recording, 'utf8').trim().split('\n').map((l) => {
    assert.equal(validateJsonLine(l), null, l);
    return JSON.parse(l) as JsonRecord;
  });
  records = lines.filter((r) => r.type === undefined);
  assert.ok(lines.some((r) => r.type === 'settings'), 'the recording holds the traced namespace\'s settings');
  await trace(b, ['--output-json', '--output-file', bare], ping);
});
after(() => {
  lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  assert.deepEqual(await waitNoPrograms(), [], 'programs of pktpath left loaded');
});

test('the recording rendered as text is the live text of the same run', () => {
  assert.ok(records.length >= 3 * 2 * 4, `${records.length} events for 3 pings`);
  const r = show([recording, ...COLUMNS]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, live);
  assert.match(r.stderr, new RegExp(`pktpath: ${records.length} of ${records.length} events shown`));
});

test('JSON again: the same records, field for field; with a filter, the ones it selects', () => {
  const all = show([recording, '--output-json']);
  assert.equal(all.code, 0, all.stderr);
  assert.deepEqual(all.stdout.trim().split('\n').map((l) => JSON.parse(l)), lines);
  const replies = show([recording, '--output-json', 'icmp[icmptype] == icmp-echoreply']);
  const got = eventsOf(replies.stdout);
  assert.deepEqual(replies.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type?: string }).filter((r) => r.type === 'settings'),
    lines.filter((r) => r.type === 'settings'));
  const want = records.filter((e) => e.tuple?.saddr === '192.0.2.2' && e.tuple.proto === 'icmp');
  assert.ok(want.length >= 3, 'the replies were traced');
  assert.deepEqual(got, want);
});

test('without packet bytes the tuple decides: host and protocol filters on a bare recording', () => {
  const bareRecords = eventsOf(readFileSync(bare, 'utf8'));
  assert.ok(bareRecords.every((e) => e.packet === undefined));
  const r = show([bare, '--output-json', '--filter-src-ip', '192.0.2.2', '--filter-proto', 'icmp']);
  assert.equal(r.code, 0, r.stderr);
  const got = eventsOf(r.stdout);
  const want = bareRecords.filter((e) => e.tuple?.saddr === '192.0.2.2' && e.tuple.proto === 'icmp');
  assert.ok(want.length >= 3);
  assert.deepEqual(got, want);
});

test('--group-by skb: the journeys hold every event once, requests end consumed', () => {
  const r = show([recording, '--group-by', 'skb', '--output-tuple', '--color', 'never', 'icmp']);
  assert.equal(r.code, 0, r.stderr);
  const heads = [...r.stdout.matchAll(/^(0x[0-9a-f]+) (\S+) .*?\s(\d+) hops? in .*, (consumed|unfinished.*)$/gm)];
  // The replies leave for a namespace not traced: their skbs are not freed where pktpath looks, so a later
  // packet on the same address joins them until they go idle (in recorded time, as live).
  const consumed = heads.filter((m) => m[2] === '192.0.2.1->192.0.2.2(icmp)' && m[4] === 'consumed');
  assert.ok(consumed.length >= 1, r.stdout);
  const icmp = records.filter((e) => e.tuple?.proto === 'icmp');
  const perSkb = new Map<string, number>();
  for (const e of icmp) perSkb.set(e.skb, (perSkb.get(e.skb) ?? 0) + 1);
  assert.equal(heads.reduce((n, m) => n + Number(m[3]), 0), icmp.length, r.stdout);
  for (const m of heads) assert.ok(perSkb.has(m[1]!), `${m[1]} is a recorded skb`);
});

test('--output-pcap from the recording: tshark reads every captured packet, with its point', () => {
  const pcap = join(dir, 'replay.pcapng');
  const r = show([recording, '--output-pcap', pcap, '--output-file', '/dev/null', 'icmp']);
  assert.equal(r.code, 0, r.stderr);
  const out = execFileSync('tshark', ['-r', pcap, '-T', 'fields', '-e', 'frame.comment', '-e', 'icmp.type', '-e', 'ip.dst'], { encoding: 'utf8' });
  const rows = out.trim().split('\n').map((l) => l.split('\t'));
  const icmp = records.filter((e) => e.tuple?.proto === 'icmp' && e.packet);
  assert.equal(rows.length, icmp.length);
  assert.deepEqual(rows.map((row) => row[0]!.split(' ')[0]), icmp.map((e) => e.func));
  assert.ok(rows.some((row) => row[1] === '8' && row[2] === '192.0.2.2'), 'an echo request');
});

test('the other filters and the limit on recorded events', () => {
  const points = show([recording, '--output-json', '--filter-func', '^tc:', '--output-limit-lines', '2']);
  const got = eventsOf(points.stdout);
  assert.deepEqual(got, records.filter((e) => e.func.startsWith('tc:')).slice(0, 2));
  const none = show([recording, '--output-json', '--filter-ifname', 'nope0']);
  assert.deepEqual(eventsOf(none.stdout), []);
  assert.match(none.stderr, /0 of \d+ events shown/);
});

test('bad input: one line, exit 2, before any output', () => {
  for (const args of [[recording, 'icmp and'], [join(dir, 'none.jsonl')], [dir], [recording, '--filter-src-ip', 'x']]) {
    const r = show(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});

test('profiles: built-in and user profiles shape the plan; a broken file is one line naming file and line', () => {
  const drops = runPktpath(['list', '--profile', 'drops']);
  assert.equal(drops.code, 0, drops.stderr);
  assert.deepEqual(drops.stdout.trim().split('\n'), ['kfree_skb']);
  const home = join(dir, 'config');
  mkdirSync(join(home, 'pktpath', 'profiles'), { recursive: true });
  writeFileSync(join(home, 'pktpath', 'profiles', 'tc.yaml'), 'description: tc only\noptions:\n  filter-func: "^tc:"\n');
  writeFileSync(join(home, 'pktpath', 'profiles', 'broken.yaml'), 'description: x\noptions:\n  output-tuple: true\n  output-stak: true\n');
  const env = { XDG_CONFIG_HOME: home };
  const tc = runPktpath(['list', '--profile', 'tc'], { env });
  assert.equal(tc.code, 0, tc.stderr);
  assert.deepEqual(tc.stdout.trim().split('\n').sort(), ['tc:egress', 'tc:ingress']);
  // The command line wins over the profile.
  const over = runPktpath(['list', '--profile', 'tc', '--filter-func', '^consume_skb$'], { env });
  assert.deepEqual(over.stdout.trim().split('\n'), ['consume_skb']);
  const broken = runPktpath(['--profile', 'broken'], { env });
  assert.equal(broken.code, 2);
  assert.equal(broken.stderr, `pktpath: profile ${join(home, 'pktpath', 'profiles', 'broken.yaml')}:4: unknown option 'output-stak' (did you mean 'output-stack'?)\n`);
  const listed = runPktpath(['profiles'], { env });
  assert.match(listed.stdout, /^tc\t\(.*tc\.yaml\)\ttc only$/m);
  assert.match(listed.stdout, /^drops\t\(built-in\)/m);
  // Listed all the same, and said where errors go: a broken profile is bad input.
  assert.equal(listed.code, 2, listed.stderr);
  assert.match(listed.stderr, /^pktpath: profile .*broken\.yaml:4: unknown option 'output-stak'/m);
});
